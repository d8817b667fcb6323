//! `webhook serve --csi-volumes=rewrite` reading SecretProviderClasses from an API server (the
//! small HTTPS one of tests/src/apiserver.rs, which lists, watches, expires versions, goes away
//! and answers 404 or 403 as the real one does): readiness waits for the first list; classes
//! created, changed and deleted while the webhook runs are picked up, one created a moment before
//! its pod included; the webhook survives `410 Gone` and the API server going away; a missing CRD
//! and missing RBAC are clear denials and log lines.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use secrets_injector_e2e::admission;
use secrets_injector_e2e::apiserver::{ApiServer, Mode};
use secrets_injector_e2e::https::{self, Client, SERVICE_NAME, Webhook};
use serde_json::{Value, json};

const NAMESPACE: &str = "team-a";
/// Bounds a wait for the webhook to see a change; the watch delivers within a second, and a
/// reconnection takes the watcher's backoff (at most 30 s).
const CHANGE: Duration = Duration::from_secs(90);

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_webhook"))
}

/// One of the manifests users of the CSI driver have: (class in NAMESPACE, pod).
fn seed(name: &str) -> (Value, Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/csi-driver")
        .join(name);
    let text = std::fs::read_to_string(path).unwrap();
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let mut class = documents[0].clone();
    class["metadata"]["namespace"] = json!(NAMESPACE);
    (class, documents[1].clone())
}

fn class(name: &str, objects: &str) -> Value {
    json!({
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"provider": "aws", "parameters": {"objects": objects}},
    })
}

fn pod_naming(class: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app", "annotations": {"secrets-injector.io/secret-provider-class": class}},
        "spec": {"containers": [{"name": "app", "image": "app"}]}
    })
}

struct World {
    api: ApiServer,
    webhook: Webhook,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl World {
    fn start(mode: Mode, classes: &[Value]) -> World {
        let dir = tempfile::tempdir().unwrap();
        https::make_certs(program(), dir.path(), &["--extra-san", "127.0.0.1"]);
        let (cert, key, ca) = (
            dir.path().join("tls.crt"),
            dir.path().join("tls.key"),
            dir.path().join("ca.crt"),
        );
        let api = ApiServer::start(&cert, &key);
        api.set_mode(mode);
        for class in classes {
            api.apply(class);
        }
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
        World {
            api,
            webhook,
            ca,
            _dir: dir,
        }
    }

    fn client(&self) -> Client {
        Client::new(self.webhook.addr, SERVICE_NAME, &[&self.ca])
    }

    fn readyz(&self) -> (u16, String) {
        let response = self.client().get("/readyz").expect("GET /readyz");
        (response.status, response.text())
    }

    /// The answer to a review of creating `pod` in NAMESPACE.
    fn review(&self, pod: &Value) -> Value {
        let review = admission::create_review("1", pod, NAMESPACE);
        let answer = self
            .client()
            .post_json("/mutate", &admission::body(&review))
            .expect("POST /mutate");
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()["response"].clone()
    }

    /// The pod's patch as text, or the denial message prefixed with "denied: ".
    fn answer(&self, pod: &Value) -> String {
        let response = self.review(pod);
        if response["allowed"] == true {
            let patch = response["patch"].as_str().unwrap_or_default();
            let bytes = base64_decode(patch);
            String::from_utf8(bytes).unwrap()
        } else {
            format!("denied: {}", response["status"]["message"])
        }
    }

    /// Waits until the answer for `pod` contains `needle`; panics with the last answer.
    fn wait_for_answer(&self, pod: &Value, needle: &str) -> String {
        let deadline = Instant::now() + CHANGE;
        loop {
            let answer = self.answer(pod);
            if answer.contains(needle) {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "no answer with {needle:?}; the last:\n{answer}\nlogs:\n{}",
                self.webhook.logs().join("\n")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn wait_ready(&self) -> String {
        let deadline = Instant::now() + CHANGE;
        loop {
            let (status, text) = self.readyz();
            if status == 200 {
                return text;
            }
            assert!(Instant::now() < deadline, "never ready: {status} {text}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_default()
}

#[test]
fn classes_follow_the_api_server_through_410_and_outages() {
    let (store_class, store_pod) = seed("mypod_parameter_store.yaml");
    let (manager_class, manager_pod) = seed("mypod_secrets_manager.yaml");
    let world = World::start(Mode::Serving, std::slice::from_ref(&store_class));
    world.wait_ready();

    // A class that was there before the webhook started.
    let answer = world.answer(&store_pod);
    assert!(
        answer.contains("secrets-injector-csi-parameter-store"),
        "{answer}"
    );

    // One created a moment before its pod, while the watch has not delivered it: the live GET
    // finds it.
    world.api.hold_watch_events(true);
    let gets = world.api.requests("get");
    world.api.apply(&manager_class);
    let answer = world.answer(&manager_pod);
    assert!(
        answer.contains("secrets-injector-csi-secrets-manager"),
        "{answer}"
    );
    assert_eq!(world.api.requests("get"), gets + 1);
    world.api.hold_watch_events(false);

    // From here GETs find nothing: what the webhook knows comes from the list and the watch.
    world.api.refuse_gets(true);
    let mut changed = store_class.clone();
    changed["spec"]["parameters"]["objects"] = json!(
        "- objectName: /test/parameter\n  objectType: ssmparameter\n  objectAlias: renamed\n"
    );
    world.api.apply(&changed);
    world.wait_for_answer(&store_pod, "objectAlias: renamed");

    world.api.delete(NAMESPACE, "aws-secrets-parameter-store");
    let denied = world.wait_for_answer(&store_pod, "denied: ");
    assert!(
        denied.contains(
            "SecretProviderClass \\\"aws-secrets-parameter-store\\\" does not exist in namespace \\\"team-a\\\""
        ),
        "{denied}"
    );

    // 410 Gone: the watch must list again, and still sees new classes.
    let lists = world.api.requests("list");
    world.api.expire_versions();
    world.api.apply(&class(
        "after-gone",
        "- objectName: /gone\n  objectType: ssmparameter\n",
    ));
    world.wait_for_answer(&pod_naming("after-gone"), "objectName: /gone");
    assert!(world.api.requests("list") > lists);

    // The API server goes away: the classes already read keep working, the failure is logged,
    // and once it is back the watch reconnects and sees what changed.
    world.api.set_mode(Mode::Down);
    assert!(
        world
            .webhook
            .wait_for_log("SecretProviderClass watch failed", CHANGE)
            .is_some()
    );
    let answer = world.answer(&manager_pod);
    assert!(
        answer.contains("secrets-injector-csi-secrets-manager"),
        "{answer}"
    );
    assert_eq!(world.readyz().0, 200);
    world.api.set_mode(Mode::Serving);
    world.api.apply(&class(
        "after-outage",
        "- objectName: /back\n  objectType: ssmparameter\n",
    ));
    world.wait_for_answer(&pod_naming("after-outage"), "objectName: /back");
    assert!(
        !world.webhook.logs().join("\n").contains("example1234"),
        "no value in the logs"
    );
}

#[test]
fn readiness_waits_for_the_first_list_and_crd_or_rbac_problems_are_clear() {
    let world = World::start(Mode::Down, &[]);
    let (status, text) = world.readyz();
    assert_eq!(status, 503);
    assert_eq!(
        text,
        "waiting for the first list of SecretProviderClasses\n"
    );

    // No CRD: ready (other pods are served), pods that need a class are denied saying why.
    world.api.set_mode(Mode::NotInstalled);
    world.wait_ready();
    let denied = world.wait_for_answer(&pod_naming("app"), "denied: ");
    assert!(
        denied.contains("the cluster has no SecretProviderClass resource")
            && denied.contains("the CRD of the Secrets Store CSI driver is not installed"),
        "{denied}"
    );
    assert!(
        world
            .webhook
            .wait_for_log("the SecretProviderClass CRD", CHANGE)
            .is_some()
    );
    let plain = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"},
                       "spec": {"containers": [{"name": "app", "image": "app"}]}});
    assert_eq!(world.review(&plain)["allowed"], true);

    // No RBAC.
    world.api.set_mode(Mode::Forbidden);
    let denied = world.wait_for_answer(&pod_naming("app"), "may not read");
    assert!(
        denied.contains("give its service account get, list and watch on secretproviderclasses"),
        "{denied}"
    );
    assert!(
        world
            .webhook
            .wait_for_log("the webhook may not list SecretProviderClasses", CHANGE)
            .is_some()
    );

    // Fixed: the class is found.
    world.api.set_mode(Mode::Serving);
    world.api.apply(&class(
        "app",
        "- objectName: /fixed\n  objectType: ssmparameter\n",
    ));
    world.wait_for_answer(&pod_naming("app"), "objectName: /fixed");
}
