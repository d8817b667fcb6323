//! The SecretProviderClasses of the cluster, for `--secret-provider-classes` (and
//! `--csi-volumes=rewrite`): a watch-backed cache (kube-runtime's watcher over every namespace,
//! which relists after `410 Gone` and reconnects with backoff when the API server goes away), and
//! for the names a review needs that it does not hold, live GETs, so a class created a moment
//! before its pod is found. Read-only: get, list and watch on `secretproviderclasses`.
//!
//! Anyone who can create a class in any namespace decides what this cache is fed, so it is held
//! to bounds: classes are read pruned while they are parsed (`objects::class`, only what a lookup
//! needs, each field bounded), listed in small pages, and a class whose parameters exceed
//! `--class-max-bytes` is kept as a marker that is refused as too large when a pod uses it. A
//! review looks up at most one GET per distinct name, all at once, within
//! `--class-lookup-budget`; a GET that failed or timed out is remembered briefly, a 404 more
//! briefly still (each until a watch event for that name). A name is checked before it goes into a request path, and
//! an answer is used only when it is the class asked for.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kube::api::{Api, ApiResource, GroupVersionKind, ObjectMeta};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::DynamicResourceScope;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config, Resource};
use serde::Deserialize;

use secrets_injector_objects::class::{self, Class, GROUP, KIND, RESOURCE};

use super::metrics::ClassMetrics;
use crate::mutation::{ClassNames, ClassSource, Classes, Lookup, ResolvedClass, ReviewClasses};
use crate::{Error, Result};

/// The version watched (the CSI driver's storage version).
const VERSION: &str = "v1";
/// Live GETs in flight at once, all reviews together: an answer is read whole before it is
/// parsed, and a class may be as large as the API server stores (about 1.5 MB). A GET waiting
/// for its turn counts against its own timeout.
const MAX_GETS_IN_FLIGHT: usize = 4;
/// How long a failed or timed-out GET is remembered (unless a watch event for the name comes
/// first): a stalled API server then costs one timeout per name, not one per review.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(10);
/// Failures remembered at most (names of every namespace together).
const MAX_FAILURES: usize = 1024;

/// The bounds of the cache and of the lookups (flags of `webhook serve`).
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// All the GETs of one review together.
    pub lookup_budget: Duration,
    /// One GET.
    pub get_timeout: Duration,
    /// Bytes of `spec.parameters` (names and values) of a class kept; a larger one is refused.
    pub max_class_bytes: usize,
    /// Bytes of every class kept together; a class beyond them is left to live GETs.
    pub max_cache_bytes: usize,
    /// Classes per page of a list: a page is read whole before it is parsed, and a class may be
    /// as large as the API server stores (about 1.5 MB).
    pub page_size: u32,
}

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

/// A class as the API server sends it, read pruned (`Class`'s own deserializer): the metadata
/// kube's watcher needs (name, namespace, resourceVersion) and what a lookup needs.
#[derive(Clone, Debug)]
pub struct WatchedClass {
    metadata: ObjectMeta,
    class: Class,
}

impl<'de> Deserialize<'de> for WatchedClass {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let class = Class::deserialize(deserializer)?;
        let metadata = ObjectMeta {
            name: Some(class.name.clone()).filter(|name| !name.is_empty()),
            namespace: class.namespace.clone(),
            resource_version: class.resource_version.clone(),
            ..ObjectMeta::default()
        };
        Ok(Self { metadata, class })
    }
}

impl Resource for WatchedClass {
    type DynamicType = ApiResource;
    type Scope = DynamicResourceScope;

    fn kind(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.kind.as_str().into()
    }

    fn group(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.group.as_str().into()
    }

    fn version(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.version.as_str().into()
    }

    fn api_version(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.api_version.as_str().into()
    }

    fn plural(dt: &ApiResource) -> std::borrow::Cow<'_, str> {
        dt.plural.as_str().into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

type Key = (String, String);

/// The classes, by (namespace, name), with the bytes they hold.
#[derive(Default)]
struct Store {
    classes: HashMap<Key, Arc<ResolvedClass>>,
    bytes: usize,
    /// A relist under way: it replaces `classes` once complete.
    next: Option<(HashMap<Key, Arc<ResolvedClass>>, usize)>,
}

/// What one class holds in the cache: what it kept of itself, and its key.
fn held_bytes(key: &Key, class: &ResolvedClass) -> usize {
    class.class.kept_bytes() + key.0.len() + key.1.len()
}

/// Keeps `class` under `key` when it fits within `max` bytes with the others (replacing what the
/// key held); else drops what the key held, so a lookup asks the API server, and returns false.
fn put(
    map: &mut HashMap<Key, Arc<ResolvedClass>>,
    bytes: &mut usize,
    max: usize,
    key: Key,
    class: Arc<ResolvedClass>,
) -> bool {
    if let Some(old) = map.remove(&key) {
        *bytes -= held_bytes(&key, &old);
    }
    let size = held_bytes(&key, &class);
    if bytes.saturating_add(size) > max {
        return false;
    }
    *bytes += size;
    map.insert(key, class);
    true
}

/// How long a 404 is remembered (unless a watch event for the name comes first, as it does when
/// the class is created): a pod naming many missing classes costs their GETs once in a while,
/// not on every review, and a class created a moment after is found once the watch sees it.
pub const MISS_MEMORY: Duration = Duration::from_secs(2);

/// A GET that failed (`reason`) or found no class (`None`), remembered until `until`.
struct Failure {
    until: Instant,
    reason: Option<String>,
}

/// The cache; cheap to share.
pub struct ClusterClasses {
    store: RwLock<Store>,
    failures: Mutex<HashMap<Key, Failure>>,
    status: Mutex<Status>,
    client: Client,
    resource: ApiResource,
    bounds: Bounds,
    metrics: ClassMetrics,
    gets_in_flight: tokio::sync::Semaphore,
    /// The last class offered to the cache did not fit.
    full: std::sync::atomic::AtomicBool,
}

// The store, the failures and the status are only ever changed whole under their locks, so a
// review that panics cannot leave them half-changed for the next one.
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

/// `--class-lookup-budget` and `--class-get-timeout`: `500ms` or `3s`, at most 9 s (the API
/// server gives a webhook at most 10 s in all).
pub fn parse_lookup_time(text: &str) -> std::result::Result<Duration, String> {
    let hint = "write a whole number of milliseconds or seconds, such as 500ms or 3s, at most 9s";
    let (digits, unit) = match text.strip_suffix("ms") {
        Some(digits) => (digits, 1),
        None => match text.strip_suffix('s') {
            Some(digits) => (digits, 1000),
            None => return Err(format!("{text:?} has no unit: {hint}")),
        },
    };
    let millis = digits
        .parse::<u64>()
        .ok()
        .filter(|n| digits.len() <= 5 && *n > 0)
        .map(|n| n * unit)
        .ok_or_else(|| format!("{text:?} is not a duration: {hint}"))?;
    if millis > 9000 {
        return Err(format!("{text:?} is longer than 9s: {hint}"));
    }
    Ok(Duration::from_millis(millis))
}

impl ClusterClasses {
    /// Starts the watch on the current runtime; `status` tells when the first list is in.
    pub fn start(client: Client, bounds: Bounds, metrics: ClassMetrics) -> Arc<Self> {
        let gvk = GroupVersionKind::gvk(GROUP, VERSION, KIND);
        let resource = ApiResource::from_gvk_with_plural(&gvk, RESOURCE);
        let classes = Arc::new(Self {
            store: RwLock::new(Store::default()),
            failures: Mutex::new(HashMap::new()),
            status: Mutex::new(Status::Listing),
            client: client.clone(),
            resource: resource.clone(),
            bounds,
            metrics,
            gets_in_flight: tokio::sync::Semaphore::new(MAX_GETS_IN_FLIGHT),
            full: std::sync::atomic::AtomicBool::new(false),
        });
        let api: Api<WatchedClass> = Api::all_with(client, &resource);
        let stream =
            watcher(api, watcher::Config::default().page_size(bounds.page_size)).default_backoff();
        let watching = Arc::clone(&classes);
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(event) => {
                        let listed = matches!(event, watcher::Event::InitDone);
                        watching.apply(event);
                        if listed {
                            watching.set_status(Status::Ready, None);
                        }
                    }
                    Err(error) => watching.set_status(classify(&error), Some(&error)),
                }
            }
        });
        classes
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

    /// A class as kept: bounded, derived at most once.
    fn resolved(&self, class: Class) -> Arc<ResolvedClass> {
        let class = class.bounded(
            self.bounds.max_class_bytes,
            " (the webhook's --class-max-bytes)",
        );
        Arc::new(ResolvedClass::new(class).counted(self.metrics.derivations.clone()))
    }

    /// One watch event into the store.
    fn apply(&self, event: watcher::Event<WatchedClass>) {
        let keyed = |watched: WatchedClass| {
            let namespace = watched.class.namespace.clone()?;
            (!watched.class.name.is_empty())
                .then(|| ((namespace, watched.class.name.clone()), watched.class))
        };
        let mut changed = None;
        let max = self.bounds.max_cache_bytes;
        {
            let mut store = self.store.write().unwrap_or_else(PoisonError::into_inner);
            let store = &mut *store;
            match event {
                watcher::Event::Init => store.next = Some((HashMap::new(), 0)),
                watcher::Event::InitApply(watched) => {
                    if let (Some((key, class)), Some((next, bytes))) =
                        (keyed(watched), &mut store.next)
                    {
                        let kept = put(next, bytes, max, key, self.resolved(class));
                        self.note_left_out(kept);
                    }
                }
                watcher::Event::InitDone => {
                    if let Some((classes, bytes)) = store.next.take() {
                        store.classes = classes;
                        store.bytes = bytes;
                    }
                }
                watcher::Event::Apply(watched) => {
                    if let Some((key, class)) = keyed(watched) {
                        let kept = put(
                            &mut store.classes,
                            &mut store.bytes,
                            max,
                            key.clone(),
                            self.resolved(class),
                        );
                        self.note_left_out(kept);
                        changed = Some(key);
                    }
                }
                watcher::Event::Delete(watched) => {
                    if let Some((key, _)) = keyed(watched) {
                        if let Some(old) = store.classes.remove(&key) {
                            store.bytes -= held_bytes(&key, &old);
                        }
                        changed = Some(key);
                    }
                }
            }
            let pending = store
                .next
                .as_ref()
                .map_or((0, 0), |(next, bytes)| (next.len(), *bytes));
            self.metrics
                .cache_bytes
                .set(i64::try_from(store.bytes + pending.1).unwrap_or(i64::MAX));
            self.metrics
                .cache_classes
                .set(i64::try_from(store.classes.len() + pending.0).unwrap_or(i64::MAX));
        }
        // What the watch says of a name replaces what a failed GET said of it.
        if let Some(key) = changed {
            self.failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
        }
    }

    /// Counts a class left out of the full cache, with a log line the first time since the last
    /// one kept (not one per class of a list).
    fn note_left_out(&self, kept: bool) {
        let was_full = self.full.swap(!kept, std::sync::atomic::Ordering::Relaxed);
        if kept {
            return;
        }
        self.metrics.left_out.inc();
        if !was_full {
            tracing::warn!(
                max_bytes = self.bounds.max_cache_bytes,
                "the SecretProviderClass cache is full (--class-cache-bytes): classes that do \
                 not fit are read by a live GET when a pod uses them"
            );
        }
    }

    /// What the cache alone says of a class: `None` when it does not hold it and the API server
    /// may.
    fn cached(&self, namespace: &str, name: &str) -> Option<Lookup> {
        let store = self.store.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(class) = store.classes.get(&(namespace.to_owned(), name.to_owned())) {
            return Some(Lookup::Found(Arc::clone(class)));
        }
        drop(store);
        match self.status() {
            Status::NotInstalled => Some(Lookup::Unavailable(format!(
                "the cluster has no {KIND} resource ({RESOURCE}.{GROUP}: the CRD of the Secrets \
                 Store CSI driver is not installed); install the CRD and create the class, or \
                 list the objects in the annotation secrets-injector.io/objects"
            ))),
            Status::Forbidden(message) => Some(Lookup::Unavailable(format!(
                "the webhook may not read {KIND}es ({message}); give its service account get, \
                 list and watch on {RESOURCE} (the Helm value secretProviderClasses.enabled or \
                 the kustomize component components/secret-provider-classes adds that RBAC)"
            ))),
            Status::Listing | Status::Ready => None,
        }
    }

    /// What a GET of this class said less than [`FAILURE_MEMORY`] ([`MISS_MEMORY`] for a 404)
    /// ago, when it did not find the class.
    fn remembered(&self, key: &Key) -> Option<Lookup> {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures
            .get(key)
            .filter(|failure| failure.until > Instant::now())
            .map(|failure| match &failure.reason {
                Some(reason) => Lookup::Unavailable(reason.clone()),
                None => Lookup::Missing,
            })
    }

    fn remember(&self, key: Key, reason: &str) {
        let reason = format!(
            "{reason} (remembered for {} s, or until the class changes)",
            FAILURE_MEMORY.as_secs()
        );
        self.keep(key, Some(reason), FAILURE_MEMORY);
    }

    fn keep(&self, key: Key, reason: Option<String>, memory: Duration) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if failures.len() >= MAX_FAILURES {
            failures.retain(|_, failure| failure.until > now);
        }
        if failures.len() < MAX_FAILURES {
            failures.insert(
                key,
                Failure {
                    until: now + memory,
                    reason,
                },
            );
        }
    }

    /// The classes one review needs: from the cache, else by live GETs, one per distinct name,
    /// all at once, within the lookup budget.
    pub async fn resolve(self: &Arc<Self>, names: ClassNames) -> ReviewClasses {
        let ClassNames {
            namespace,
            names,
            more,
        } = names;
        let mut found = HashMap::new();
        let mut gets = tokio::task::JoinSet::new();
        let mut asked = Vec::new();
        let timeout = self.bounds.get_timeout.min(self.bounds.lookup_budget);
        for name in names {
            if let Some(lookup) = self.cached(&namespace, &name) {
                found.insert(name, lookup);
                continue;
            }
            let key = (namespace.clone(), name);
            if let Some(lookup) = self.remembered(&key) {
                self.metrics.observe_get("remembered");
                found.insert(key.1, lookup);
                continue;
            }
            asked.push(key.1.clone());
            let classes = Arc::clone(self);
            gets.spawn(async move {
                let lookup = classes.get(&key.0, &key.1, timeout).await;
                (key.1, lookup)
            });
        }
        // Every GET has its own timeout, within the budget; this bounds the whole anyway.
        let deadline = tokio::time::Instant::now() + self.bounds.lookup_budget;
        while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, gets.join_next()).await {
            if let Ok((name, lookup)) = joined {
                found.insert(name, lookup);
            }
        }
        // A GET still running (or one that panicked) is cancelled and counts as unanswered: the
        // mutation must not take the class for missing.
        for name in asked {
            found
                .entry(name)
                .or_insert_with(|| Lookup::Unavailable(self.timed_out(timeout)));
        }
        let rest = Classes(Arc::clone(self) as Arc<dyn ClassSource>);
        ReviewClasses::new(namespace, found, more, rest)
    }

    /// Why a class whose GET did not answer in `timeout` is not known.
    fn timed_out(&self, timeout: Duration) -> String {
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        format!(
            "the class is not in the webhook's cache and the API server did not answer the GET \
             within {millis} ms, so whether it exists is not known; retry, and if it lasts check \
             the API server (the webhook's --class-get-timeout and --class-lookup-budget bound \
             the wait)"
        )
    }

    /// One live GET of a class the cache does not hold.
    async fn get(&self, namespace: &str, name: &str, timeout: Duration) -> Lookup {
        // Never put a name the API server could not hold into a request path.
        if let Err(problem) = class::check_name(name) {
            return Lookup::Unavailable(problem);
        }
        let api: Api<WatchedClass> =
            Api::namespaced_with(self.client.clone(), namespace, &self.resource);
        let key = (namespace.to_owned(), name.to_owned());
        let get = async {
            let _turn = self.gets_in_flight.acquire().await;
            api.get_opt(name).await
        };
        match tokio::time::timeout(timeout, get).await {
            Ok(Ok(Some(watched))) => {
                let class = watched.class;
                if class.namespace.as_deref() != Some(namespace) || class.name != name {
                    self.metrics.observe_get("other_object");
                    tracing::warn!(
                        namespace,
                        name,
                        answered_namespace = class.namespace.as_deref().unwrap_or(""),
                        answered_name = %class.name,
                        "the API server answered a GET of a SecretProviderClass with another \
                         object; it is not used"
                    );
                    let reason = format!(
                        "the API server answered with another object than {KIND} {name:?} of \
                         namespace {namespace:?}, which is not used; check what answers for the \
                         API server"
                    );
                    self.remember(key, &reason);
                    return Lookup::Unavailable(reason);
                }
                self.metrics.observe_get("found");
                Lookup::Found(self.resolved(class))
            }
            Ok(Ok(None)) => {
                // Briefly: the class may be created the next moment, before its pod, and its
                // watch event ends the memory at once.
                self.metrics.observe_get("missing");
                self.keep(key, None, MISS_MEMORY);
                Lookup::Missing
            }
            Ok(Err(error)) => {
                self.metrics.observe_get("error");
                tracing::warn!(namespace, name, error = %error, "live GET of a SecretProviderClass failed");
                let reason = format!(
                    "the class is not in the webhook's cache and the API server answered the GET \
                     with an error ({error}); retry, and if it lasts check the API server and \
                     the webhook's access to it"
                );
                self.remember(key, &reason);
                Lookup::Unavailable(reason)
            }
            Err(_) => {
                self.metrics.observe_get("timeout");
                tracing::warn!(
                    namespace,
                    name,
                    timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
                    "live GET of a SecretProviderClass timed out"
                );
                let reason = self.timed_out(timeout);
                self.remember(key, &reason);
                Lookup::Unavailable(reason)
            }
        }
    }

    /// Records the new status, with a log line when it changes, and one for each connection
    /// failure (the watcher retries with backoff, so these are spaced out).
    fn set_status(&self, next: Status, error: Option<&watcher::Error>) {
        let mut current = self.status.lock().unwrap_or_else(PoisonError::into_inner);
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
                "the SecretProviderClass CRD ({RESOURCE}.{GROUP}) is not installed; pods that \
                 name a class are denied until it is"
            ),
            Status::Forbidden(message) => tracing::error!(
                message = %message,
                "the webhook may not list SecretProviderClasses: give its service account get, \
                 list and watch on {RESOURCE}"
            ),
            Status::Listing => {}
        }
        *current = next;
    }
}

/// The cache alone, with no request: what the mutation sees of a class the review did not look
/// up.
impl ClassSource for ClusterClasses {
    fn class(&self, namespace: &str, name: &str) -> Lookup {
        self.cached(namespace, name).unwrap_or(Lookup::Missing)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_times_are_short_durations() {
        assert_eq!(parse_lookup_time("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_lookup_time("500ms"), Ok(Duration::from_millis(500)));
        for bad in ["", "3", "0s", "10s", "9001ms", "-1s", "1.5s", "99999999s"] {
            assert!(parse_lookup_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_class_is_read_pruned_with_the_metadata_the_watcher_needs() {
        let text = r#"{"metadata":{"name":"app","namespace":"team","resourceVersion":"42",
            "managedFields":[{"manager":"kubectl"}]},"spec":{"provider":"aws",
            "parameters":{"objects":"- objectName: a\n"}}}"#;
        let watched: WatchedClass = serde_json::from_str(text).unwrap();
        assert_eq!(watched.metadata.name.as_deref(), Some("app"));
        assert_eq!(watched.metadata.namespace.as_deref(), Some("team"));
        assert_eq!(watched.metadata.resource_version.as_deref(), Some("42"));
        assert_eq!(watched.metadata.managed_fields, None);
        assert_eq!(watched.class.parameters.len(), 1);
    }
}
