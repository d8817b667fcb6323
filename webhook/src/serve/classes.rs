//! The SecretProviderClasses of the cluster, for `--secret-provider-classes` (and
//! `--csi-volumes=rewrite`): a watch-backed cache (kube-runtime's reflector over a watcher of
//! every namespace, which relists after `410 Gone` and reconnects with backoff when the API
//! server goes away), and on a miss one live GET with a short timeout, so a class created a
//! moment before its pod is found. Read-only: get, list and watch on `secretproviderclasses`.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use serde_json::Value;

use secrets_injector_objects::class::{Class, GROUP, KIND, RESOURCE};

use crate::mutation::{ClassSource, Lookup};
use crate::{Error, Result};

/// The version watched (the CSI driver's storage version).
const VERSION: &str = "v1";
/// How long a live GET on a cache miss may take before the class counts as missing.
pub const GET_TIMEOUT: Duration = Duration::from_secs(2);

/// What the watch knows about classes as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// The first list has not come back yet.
    Listing,
    /// Listed (the cache is complete, up to the watch's delay).
    Ready,
    /// The API server has no SecretProviderClass resource (404): the CRD is not installed.
    NotInstalled,
    /// The webhook may not list classes (403): its RBAC is missing.
    Forbidden(String),
}

/// The cache; cheap to share.
pub struct ClusterClasses {
    store: Store<DynamicObject>,
    status: Arc<Mutex<Status>>,
    client: Client,
    resource: ApiResource,
}

// The store and the status are only ever replaced whole (under their locks), so a review that
// panics cannot leave them half-changed for the next one.
impl std::panic::RefUnwindSafe for ClusterClasses {}

/// The kube client: from `--kubeconfig` when given, else the pod's service account (in-cluster).
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| Error::Config(format!("--kubeconfig {}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| Error::Config(format!("--kubeconfig {}: {e}", path.display())))?
        }
        None => Config::incluster().map_err(|e| {
            Error::Config(format!(
                "--secret-provider-classes needs the API server: {e}; run the webhook in the \
                 cluster (with its service account) or give --kubeconfig"
            ))
        })?,
    };
    Client::try_from(config).map_err(|e| Error::Config(format!("the kube client: {e}")))
}

impl ClusterClasses {
    /// Starts the watch on the current runtime; `status` tells when the first list is in.
    pub fn start(client: Client) -> Arc<Self> {
        let gvk = GroupVersionKind::gvk(GROUP, VERSION, KIND);
        let resource = ApiResource::from_gvk_with_plural(&gvk, RESOURCE);
        let writer = reflector::store::Writer::<DynamicObject>::new(resource.clone());
        let store = writer.as_reader();
        let status = Arc::new(Mutex::new(Status::Listing));
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let stream = reflector::reflector(
            writer,
            watcher(api, watcher::Config::default()).default_backoff(),
        );
        let watch_status = Arc::clone(&status);
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                let next = match &event {
                    Ok(watcher::Event::InitDone) => Some(Status::Ready),
                    Ok(_) => None,
                    Err(error) => Some(classify(error)),
                };
                if let Some(next) = next {
                    set_status(&watch_status, next, event.as_ref().err());
                }
            }
        });
        Arc::new(Self {
            store,
            status,
            client,
            resource,
        })
    }

    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Readiness: the first list is in, or the API server gave a final answer (no CRD, no
    /// access), after which pods that need a class are denied saying why and others are served.
    pub fn is_ready(&self) -> bool {
        self.status() != Status::Listing
    }

    /// One live GET, bounded by [`GET_TIMEOUT`]; `None` when it found nothing or did not answer.
    fn get_live(&self, namespace: &str, name: &str) -> Option<DynamicObject> {
        let handle = tokio::runtime::Handle::try_current().ok()?;
        // A review is answered on a worker of the multi-threaded runtime: blocking it briefly
        // moves its other tasks elsewhere. Elsewhere (a current-thread runtime) there is no GET.
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return None;
        }
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &self.resource);
        let found = tokio::task::block_in_place(|| {
            handle.block_on(tokio::time::timeout(GET_TIMEOUT, api.get_opt(name)))
        });
        match found {
            Ok(Ok(object)) => object,
            Ok(Err(e)) => {
                tracing::warn!(namespace, name, error = %e, "live GET of a SecretProviderClass failed");
                None
            }
            Err(_) => {
                tracing::warn!(
                    namespace,
                    name,
                    timeout_ms = GET_TIMEOUT.as_millis() as u64,
                    "live GET of a SecretProviderClass timed out"
                );
                None
            }
        }
    }
}

impl ClassSource for ClusterClasses {
    fn class(&self, namespace: &str, name: &str) -> Lookup {
        let key = ObjectRef::new_with(name, self.resource.clone()).within(namespace);
        if let Some(object) = self.store.get(&key) {
            return read(&object);
        }
        match self.status() {
            Status::NotInstalled => {
                return Lookup::Unavailable(format!(
                    "the cluster has no {KIND} resource ({RESOURCE}.{GROUP}: the CRD of the \
                     Secrets Store CSI driver is not installed); install the CRD and create the \
                     class, or list the objects in the annotation secrets-injector.io/objects"
                ));
            }
            Status::Forbidden(message) => {
                return Lookup::Unavailable(format!(
                    "the webhook may not read {KIND}es ({message}); give its service account \
                     get, list and watch on {RESOURCE} (the Helm value \
                     secretProviderClasses.enabled or the kustomize component \
                     components/secret-provider-classes adds that RBAC)"
                ));
            }
            Status::Listing | Status::Ready => {}
        }
        match self.get_live(namespace, name) {
            Some(object) => read(&object),
            None => Lookup::Missing,
        }
    }
}

/// A class from the cache. List items come without `apiVersion` and `kind`.
fn read(object: &DynamicObject) -> Lookup {
    let mut value = match serde_json::to_value(object) {
        Ok(value) => value,
        Err(e) => return Lookup::Unavailable(format!("the class cannot be read: {e}")),
    };
    if let Some(fields) = value.as_object_mut() {
        fields.insert(
            "apiVersion".to_owned(),
            Value::String(format!("{GROUP}/{VERSION}")),
        );
        fields.insert("kind".to_owned(), Value::String(KIND.to_owned()));
    }
    match Class::read(&value) {
        Ok(class) => Lookup::Found(Arc::new(class)),
        Err(problem) => Lookup::Unavailable(format!("the class {problem}")),
    }
}

/// What a watch error says about classes as a whole: 404 and 403 on the list are final answers
/// (until they change); anything else is a connection problem the watcher retries.
fn classify(error: &watcher::Error) -> Status {
    let status = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status)) => Some(status),
        _ => None,
    };
    match status.map(|s| (s.code, s.message.clone())) {
        Some((404, _)) => Status::NotInstalled,
        Some((403, message)) => Status::Forbidden(message),
        _ => Status::Listing,
    }
}

/// Records the new status, with a log line when it changes, and one for each connection
/// failure (the watcher retries with backoff, so these are spaced out).
fn set_status(status: &Mutex<Status>, next: Status, error: Option<&watcher::Error>) {
    let mut current = status.lock().unwrap_or_else(PoisonError::into_inner);
    if let (Status::Listing, Some(error)) = (&next, error) {
        tracing::warn!(
            error = %error,
            "SecretProviderClass watch failed; retrying (the classes already read are kept)"
        );
    }
    // A connection failure after the first list keeps the cache, and readiness, as they are.
    let next = match (&*current, next) {
        (Status::Ready, Status::Listing) => Status::Ready,
        (_, next) => next,
    };
    if *current == next {
        return;
    }
    match &next {
        Status::Ready => tracing::info!("SecretProviderClasses listed; watching for changes"),
        Status::NotInstalled => tracing::warn!(
            "the SecretProviderClass CRD ({RESOURCE}.{GROUP}) is not installed; pods that name a \
             class are denied until it is"
        ),
        Status::Forbidden(message) => tracing::error!(
            message = %message,
            "the webhook may not list SecretProviderClasses: give its service account get, list \
             and watch on {RESOURCE}"
        ),
        Status::Listing => {}
    }
    *current = next;
}
