//! `webhook serve` over real HTTPS answering `pods/ephemeralcontainers` UPDATEs (`kubectl debug`)
//! as the API server sends them: the pod as stored is `oldObject`, the pod with the new ephemeral
//! container is `object`. A new ephemeral container may mount the webhook's volumes (its own, the
//! `secrets-env` one, and the CSI volumes it rewrote) read-only only; the answer is never a patch.

use std::path::{Path, PathBuf};

use secrets_injector_e2e::admission;
use secrets_injector_e2e::apiserver::{ApiServer, Mode};
use secrets_injector_e2e::https::{self, Certified, Client, SERVICE_NAME, Webhook};
use secrets_injector_webhook::admission::MAX_EPHEMERAL_REVIEW_ENTRIES;
use serde_json::{Value, json};

const NAMESPACE: &str = "shop";

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_webhook"))
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn start() -> Certified {
    Certified::start(
        program(),
        "registry.example.com/secrets-injector/injector:1.0.0",
        &["--default-region=eu-west-1"],
    )
}

/// POSTs a review to /mutate and returns its `response`.
fn post(client: &Client, review: &Value) -> Value {
    let answer = client
        .post_json("/mutate?timeout=10s", &admission::body(review))
        .expect("POST /mutate");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["response"]["uid"], review["request"]["uid"], "{body}");
    body["response"].clone()
}

/// `pod` as the API server stores it once the webhook has answered its creation.
fn created(client: &Client, pod: &Value) -> Value {
    let review = admission::create_review("create", pod, NAMESPACE);
    let response = post(client, &review);
    assert_eq!(response["allowed"], true, "{response}");
    admission::apply_patch(&review["request"]["object"], &response)
}

/// The review `kubectl debug` makes the API server send: an UPDATE of the pod's
/// `ephemeralcontainers` subresource whose object is the pod with `added` appended.
fn debug_review(stored: &Value, added: &[Value]) -> Value {
    let mut new = stored.clone();
    let list = new["spec"]["ephemeralContainers"].take();
    let mut list = list.as_array().cloned().unwrap_or_default();
    list.extend(added.iter().cloned());
    new["spec"]["ephemeralContainers"] = Value::Array(list);
    let mut review = admission::update_review("debug", stored, &new, NAMESPACE);
    review["request"]["subResource"] = json!("ephemeralcontainers");
    review["request"]["requestSubResource"] = json!("ephemeralcontainers");
    review
}

fn debugger(name: &str, mounts: Value) -> Value {
    json!({
        "name": name,
        "image": "busybox:1.36",
        "command": ["sh"],
        "stdin": true,
        "tty": true,
        "terminationMessagePolicy": "File",
        "volumeMounts": mounts,
    })
}

fn mount(volume: &str, path: &str, read_only: Option<bool>) -> Value {
    let mut mount = json!({"name": volume, "mountPath": path});
    if let Some(read_only) = read_only {
        mount["readOnly"] = json!(read_only);
    }
    mount
}

/// Asserts an allowed answer that carries no patch.
fn assert_allowed(response: &Value) {
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response.get("patch").is_none(), "{response}");
    assert!(response.get("patchType").is_none(), "{response}");
}

/// Asserts a denial and returns its message.
fn denial(response: &Value) -> String {
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 400, "{response}");
    assert!(response.get("patch").is_none(), "{response}");
    response["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_debug_container_mounting_the_files_writable_is_denied_and_read_only_allowed() {
    let server = start();
    let client = server.client();
    let mut pod = fixture("seeds-example-pod.yaml");
    pod["metadata"]["annotations"]["secrets-injector.io/env-containers"] = json!("app");
    let stored = created(&client, &pod);
    for volume in ["secrets-injector", "secrets-injector-bin"] {
        let review = debug_review(
            &stored,
            &[debugger("debug", json!([mount(volume, "/s", None)]))],
        );
        let message = denial(&post(&client, &review));
        assert_eq!(
            message,
            format!(
                "ephemeral container \"debug\" mounts the volume {volume:?} at /s writable, and \
                 only the webhook's init containers may write it; set readOnly: true on the \
                 mount (read-only mounts are allowed) or leave it out"
            )
        );
        let review = debug_review(
            &stored,
            &[debugger("debug", json!([mount(volume, "/s", Some(false))]))],
        );
        denial(&post(&client, &review));
        let review = debug_review(
            &stored,
            &[debugger("debug", json!([mount(volume, "/s", Some(true))]))],
        );
        assert_allowed(&post(&client, &review));
    }
    // A debug container without mounts, as `kubectl debug` makes by default.
    let review = debug_review(&stored, &[debugger("debug", json!(null))]);
    assert_allowed(&post(&client, &review));
}

#[test]
fn only_new_debug_containers_are_judged_and_pods_without_the_webhooks_volumes_are_left_alone() {
    let server = start();
    let client = server.client();
    let injected = created(&client, &fixture("seeds-example-pod.yaml"));
    // A debug container added before the webhook reviewed them, with a writable mount: the pod
    // keeps it, and can still be debugged read-only.
    let earlier = debugger("debug", json!([mount("secrets-injector", "/s", None)]));
    let mut stored = injected.clone();
    stored["spec"]["ephemeralContainers"] = json!([earlier]);
    let read_only = debugger(
        "debug-2",
        json!([mount("secrets-injector", "/s", Some(true))]),
    );
    assert_allowed(&post(&client, &debug_review(&stored, &[read_only])));
    let writable = debugger("debug-2", json!([mount("secrets-injector", "/t", None)]));
    let message = denial(&post(&client, &debug_review(&stored, &[writable])));
    assert!(
        message.starts_with(
            "ephemeral container \"debug-2\" mounts the volume \"secrets-injector\" at /t writable"
        ),
        "{message}"
    );
    assert!(!message.contains("\"debug\""), "{message}");

    // A pod that does not ask for objects: its volumes are its own.
    let plain = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "plain"},
        "spec": {
            "containers": [{"name": "app", "image": "busybox:1.36"}],
            "volumes": [{"name": "scratch", "emptyDir": {}}]
        }
    });
    let plain = created(&client, &plain);
    let writable = debugger("debug", json!([mount("scratch", "/scratch", None)]));
    assert_allowed(&post(&client, &debug_review(&plain, &[writable])));

    // The refresh sidecar writes the files: a debug container may not join its processes.
    let refreshing = created(&client, &fixture("refresh-pod.yaml"));
    let mut targeting = debugger("debug", json!(null));
    targeting["targetContainerName"] = json!("secrets-injector-refresh");
    let message = denial(&post(&client, &debug_review(&refreshing, &[targeting])));
    assert!(
        message.starts_with(
            "ephemeral container \"debug\" targets the webhook's container \"secrets-injector-refresh\""
        ),
        "{message}"
    );
    let mut app = debugger("debug", json!(null));
    app["targetContainerName"] = json!("nginx");
    // The pod shares its process namespace: a user other than the sidecar's (and root).
    app["securityContext"] = json!({"runAsUser": 4242});
    assert_allowed(&post(&client, &debug_review(&refreshing, &[app])));
}

#[test]
fn thousands_of_debug_containers_get_one_short_answer() {
    let server = start();
    let client = server.client();
    let stored = created(&client, &fixture("seeds-example-pod.yaml"));
    // Each writable: every one is a problem, the message lists 20 and counts the rest.
    let many: Vec<Value> = (0..4_000)
        .map(|i| {
            debugger(
                &format!("debug-{i}"),
                json!([mount("secrets-injector", "/s", None)]),
            )
        })
        .collect();
    let message = denial(&post(&client, &debug_review(&stored, &many)));
    assert!(
        message.ends_with("; and 3980 more problems"),
        "{message:.300}"
    );
    assert!(message.len() <= 12 * 1024, "{} bytes", message.len());
    // Over the budget: denied before more is read, naming the limit.
    let too_many: Vec<Value> = (0..=MAX_EPHEMERAL_REVIEW_ENTRIES)
        .map(|i| json!({"name": format!("d{i}"), "image": "busybox"}))
        .collect();
    let message = denial(&post(&client, &debug_review(&stored, &too_many)));
    assert!(
        message.starts_with(&format!(
            "the pod has more than {MAX_EPHEMERAL_REVIEW_ENTRIES} init containers, ephemeral containers and volume mounts"
        )),
        "{message}"
    );
    // The server goes on answering.
    let fine = debugger(
        "debug",
        json!([mount("secrets-injector", "/s", Some(true))]),
    );
    assert_allowed(&post(&client, &debug_review(&stored, &[fine])));
}

/// A webhook rewriting CSI volumes, reading its classes from a small API server.
struct CsiWorld {
    _api: ApiServer,
    webhook: Webhook,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl CsiWorld {
    fn start(class: &Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        https::make_certs(program(), dir.path(), &["--extra-san", "127.0.0.1"]);
        let (cert, key, ca) = (
            dir.path().join("tls.crt"),
            dir.path().join("tls.key"),
            dir.path().join("ca.crt"),
        );
        let api = ApiServer::start(&cert, &key);
        api.set_mode(Mode::Serving);
        api.apply(class);
        let kubeconfig = api.kubeconfig(dir.path(), &ca);
        let webhook = Webhook::start(
            program(),
            [
                "--tls-cert".into(),
                cert.into_os_string(),
                "--tls-key".into(),
                key.into_os_string(),
                "--injector-image=injector:1".into(),
                "--default-region=eu-west-1".into(),
                "--csi-volumes=rewrite".into(),
                "--kubeconfig".into(),
                kubeconfig.into_os_string(),
            ],
        );
        Self {
            _api: api,
            webhook,
            ca,
            _dir: dir,
        }
    }

    fn client(&self) -> Client {
        Client::new(self.webhook.addr, SERVICE_NAME, &[&self.ca])
    }

    fn wait_ready(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        loop {
            let status = self.client().get("/readyz").map(|r| r.status).ok();
            if status == Some(200) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the webhook never became ready: {status:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

#[test]
fn a_csi_volume_the_webhook_rewrote_is_its_own() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/csi-driver/mypod_parameter_store.yaml");
    let documents: Vec<Value> =
        serde_saphyr::from_multiple(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (mut class, pod) = (documents[0].clone(), documents[1].clone());
    class["metadata"]["namespace"] = json!(NAMESPACE);
    let world = CsiWorld::start(&class);
    world.wait_ready();
    let client = world.client();
    let stored = created(&client, &pod);
    let filler = stored["spec"]["initContainers"]
        .as_array()
        .and_then(|list| {
            list.iter()
                .find(|c| c["name"] == "secrets-injector-csi-parameter-store")
        })
        .unwrap_or_else(|| panic!("no CSI init container: {stored}"));
    assert_eq!(
        filler["volumeMounts"][0]["name"], "parameter-store",
        "{filler}"
    );

    let writable = debugger("debug", json!([mount("parameter-store", "/p", None)]));
    let message = denial(&post(&client, &debug_review(&stored, &[writable])));
    assert!(
        message.starts_with(
            "ephemeral container \"debug\" mounts the volume \"parameter-store\" at /p writable"
        ),
        "{message}"
    );
    let read_only = debugger("debug", json!([mount("parameter-store", "/p", Some(true))]));
    assert_allowed(&post(&client, &debug_review(&stored, &[read_only])));
}
