//! `webhook serve` over real HTTPS: AdmissionReviews built from real pod manifests, HTTP errors,
//! health, metrics, logs and TLS versions, against the built binary.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrets_injector_e2e::admission;
use secrets_injector_e2e::https::{self, Client, HelloAnswer, SERVICE_NAME, Webhook};
use secrets_injector_e2e::validate::validate_manifests;
use serde_json::{Value, json};

const INJECTOR_IMAGE: &str = "registry.example.com/secrets-injector/injector:1.0.0";

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

/// A webhook of its own for each test: a process in a static would outlive the test binary.
struct Server {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    webhook: Webhook,
}

impl Server {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        https::make_certs(program(), dir.path(), &[]);
        let webhook = Webhook::start(
            program(),
            [
                "--tls-cert".into(),
                dir.path().join("tls.crt").into_os_string(),
                "--tls-key".into(),
                dir.path().join("tls.key").into_os_string(),
                "--injector-image".into(),
                INJECTOR_IMAGE.into(),
                "--default-region".into(),
                std::ffi::OsString::from("eu-west-1"),
            ],
        );
        Self {
            ca: dir.path().join("ca.crt"),
            _dir: dir,
            webhook,
        }
    }

    fn client(&self) -> Client {
        Client::new(self.webhook.addr, SERVICE_NAME, &[&self.ca])
    }

    fn post_review(&self, review: &Value) -> Value {
        let response = self
            .client()
            .post_json("/mutate?timeout=10s", &admission::body(review))
            .expect("POST /mutate");
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.header("content-type"), Some("application/json"));
        let body = response.json();
        assert_eq!(body["apiVersion"], "admission.k8s.io/v1", "{body}");
        assert_eq!(body["kind"], "AdmissionReview", "{body}");
        assert_eq!(body["response"]["uid"], review["request"]["uid"], "{body}");
        body["response"].clone()
    }
}

/// An AdmissionReview as the API server sends it for creating `object`.
fn review(uid: &str, object: &Value, namespace: &str) -> Value {
    admission::create_review(uid, object, namespace)
}

/// Applies the response's JSONPatch to the object of the review.
fn patched(review: &Value, response: &Value) -> Value {
    assert_eq!(response["patchType"], "JSONPatch", "{response}");
    admission::apply_patch(&review["request"]["object"], response)
}

fn named<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|item| item["name"] == name)
}

#[test]
fn a_pod_that_asks_for_the_seeds_objects_is_mutated() {
    let server = Server::start();
    let review = review(
        "7d6f2a10-0000-4000-8000-000000000001",
        &fixture("seeds-example-pod.yaml"),
        "default",
    );
    let response = server.post_review(&review);
    assert_eq!(response["allowed"], true, "{response}");
    let pod = patched(&review, &response);

    let init = named(&pod["spec"]["initContainers"], "secrets-injector").expect("init container");
    assert_eq!(init["image"], INJECTOR_IMAGE);
    let volume = named(&pod["spec"]["volumes"], "secrets-injector").expect("volume");
    assert_eq!(volume["emptyDir"]["medium"], "Memory", "{volume}");
    let app = named(&pod["spec"]["containers"], "app").expect("app container");
    let mount = named(&app["volumeMounts"], "secrets-injector").expect("app mount");
    assert_eq!(mount["mountPath"], "/mnt/secrets-store");
    assert_eq!(mount["readOnly"], true);
    assert_eq!(
        pod["metadata"]["annotations"]["secrets-injector.io/status"],
        "injected"
    );
    validate_manifests(&[("seeds-pod.json".into(), pod.to_string())])
        .expect("the mutated pod passes the Kubernetes schema");
}

#[test]
fn real_eks_pods_are_mutated_into_valid_pods() {
    let server = Server::start();
    let mut manifests = Vec::new();
    for (i, name) in [
        "eks-irsa-pod.json",
        "pod-identity-pod.json",
        "sidecars-pod.yaml",
        "minimal-pod.yaml",
    ]
    .into_iter()
    .enumerate()
    {
        let review = review(
            &format!("9b1e0c55-0000-4000-8000-00000000010{i}"),
            &fixture(name),
            "shop",
        );
        let response = server.post_review(&review);
        assert_eq!(response["allowed"], true, "{name}: {response}");
        let pod = patched(&review, &response);
        assert!(
            named(&pod["spec"]["initContainers"], "secrets-injector").is_some(),
            "{name}: no init container in {pod}"
        );
        manifests.push((format!("{i}-{name}.json"), pod.to_string()));
    }
    validate_manifests(&manifests).expect("every mutated pod passes the Kubernetes schema");
}

#[test]
fn a_pod_that_refreshes_gets_its_sidecar_and_a_bad_refresh_is_denied() {
    let server = Server::start();
    let mut pod = fixture("refresh-pod.yaml");
    pod["spec"]["containers"][1]["volumeMounts"] = json!([
        {"name": "secrets-injector", "mountPath": "/etc/user", "subPath": "SECRET_USERNAME", "readOnly": true}
    ]);
    let good = review("3e1d-refresh", &pod, "shop");
    let response = server.post_review(&good);
    assert_eq!(response["allowed"], true, "{response}");
    let warnings = response["warnings"].as_array().expect("warnings");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0]
            .as_str()
            .unwrap()
            .contains("with subPath, which is resolved once"),
        "{warnings:?}"
    );
    let pod = patched(&good, &response);
    let init = pod["spec"]["initContainers"].as_array().expect("init");
    assert_eq!(init[0]["name"], "secrets-injector");
    assert_eq!(init[1]["name"], "secrets-injector-refresh");
    assert_eq!(init[1]["restartPolicy"], "Always");
    assert_eq!(
        init[1]["command"],
        json!(["/usr/local/bin/injector", "refresh"])
    );
    validate_manifests(&[("refresh-pod.json".into(), pod.to_string())])
        .expect("the mutated pod passes the Kubernetes schema");

    let mut bad = fixture("refresh-pod.yaml");
    bad["metadata"]["annotations"]["secrets-injector.io/refresh-url"] =
        json!("http://169.254.169.254/latest/meta-data/");
    let response = server.post_review(&review("3e1d-bad-refresh", &bad, "shop"));
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 400, "{response}");
    let message = response["status"]["message"].as_str().expect("message");
    assert!(
        message.starts_with(
            "annotation secrets-injector.io/refresh-url: host \"169.254.169.254\" is not the pod's own loopback"
        ),
        "{message}"
    );
}

#[test]
fn a_pod_that_does_not_ask_is_allowed_unchanged() {
    let server = Server::start();
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "plain", "annotations": {"team": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}
    });
    let response = server.post_review(&review("1f3c-plain", &pod, "default"));
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response.get("patch").is_none(), "{response}");
    assert!(response.get("patchType").is_none(), "{response}");
}

#[test]
fn a_bad_objects_annotation_is_denied_with_the_rule() {
    let server = Server::start();
    let mut pod = fixture("seeds-example-pod.yaml");
    pod["metadata"]["annotations"]["secrets-injector.io/objects"] =
        json!("- objectName: db-password\n");
    let response = server.post_review(&review("5a5a-bad", &pod, "default"));
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 400, "{response}");
    let message = response["status"]["message"].as_str().expect("message");
    assert!(message.contains("secrets-injector.io/objects"), "{message}");
    assert!(message.contains("objects[0]"), "{message}");
    assert!(message.contains("objectType"), "{message}");
    assert!(response.get("patch").is_none(), "{response}");
}

#[test]
fn a_deployment_with_a_bad_template_is_denied_and_a_good_one_allowed() {
    let server = Server::start();
    let pod = fixture("seeds-example-pod.yaml");
    let deployment = |objects: &str| {
        let mut template = pod.clone();
        template["metadata"]["annotations"]["secrets-injector.io/objects"] = json!(objects);
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}, "annotations": template["metadata"]["annotations"]},
                    "spec": template["spec"]
                }
            }
        })
    };
    let bad = server.post_review(&review(
        "d3d3-bad",
        &deployment("- objectName: \"/test/parameter\"\n  objectType: \"SSMParameter\"\n"),
        "default",
    ));
    assert_eq!(bad["allowed"], false, "{bad}");
    let message = bad["status"]["message"].as_str().expect("message");
    assert!(message.contains("objectType"), "{message}");
    assert!(bad.get("patch").is_none(), "{bad}");

    let good = server.post_review(&review(
        "d3d3-good",
        &deployment("- objectName: \"/test/parameter\"\n  objectType: \"ssmparameter\"\n"),
        "default",
    ));
    assert_eq!(good["allowed"], true, "{good}");
    assert!(
        good.get("patch").is_none(),
        "a workload is never changed: {good}"
    );
}

#[test]
fn bodies_that_are_not_admission_reviews_get_400() {
    let server = Server::start();
    let client = server.client();
    let not_json = client.post_json("/mutate", b"hello").expect("POST");
    assert_eq!(not_json.status, 400);
    assert!(
        not_json
            .text()
            .starts_with("request body is not valid JSON"),
        "{}",
        not_json.text()
    );

    let pod = client
        .post_json(
            "/mutate",
            fixture("minimal-pod.yaml").to_string().as_bytes(),
        )
        .expect("POST");
    assert_eq!(pod.status, 400);
    assert_eq!(
        pod.text(),
        "expected kind AdmissionReview of apiVersion admission.k8s.io/v1\n"
    );

    let empty = client
        .post_json(
            "/mutate",
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
        )
        .expect("POST");
    assert_eq!(empty.status, 400);
    assert_eq!(empty.text(), "the AdmissionReview has no request\n");

    let get = client.get("/mutate").expect("GET");
    assert_eq!(get.status, 405);
    assert_eq!(client.get("/nothing").expect("GET").status, 404);
}

#[test]
fn a_body_over_the_limit_gets_413() {
    let server = Server::start();
    let mut pod = fixture("minimal-pod.yaml");
    pod["metadata"]["annotations"]["padding"] = json!("x".repeat(9 * 1024 * 1024));
    let body = review("big", &pod, "default").to_string();
    let response = server
        .client()
        .post_json("/mutate", body.as_bytes())
        .expect("POST");
    assert_eq!(response.status, 413, "{}", response.text());
    assert_eq!(
        response.text(),
        "request body is larger than 8388608 bytes\n"
    );
}

#[test]
fn health_and_readiness_answer_200() {
    let server = Server::start();
    let client = server.client();
    let health = client.get("/healthz").expect("GET /healthz");
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    let ready = client.get("/readyz").expect("GET /readyz");
    assert_eq!((ready.status, ready.text().as_str()), (200, "ready\n"));
}

#[test]
fn metrics_and_logs_count_reviews_without_annotation_values() {
    let server = Server::start();
    let uid = "4c4c-metrics";
    let response = server.post_review(&review(uid, &fixture("seeds-example-pod.yaml"), "team-a"));
    assert_eq!(response["allowed"], true);

    let metrics = server.webhook.metrics();
    let value = |prefix: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"))
    };
    assert!(
        value("secrets_injector_admission_reviews_total{decision=\"mutated\",kind=\"Pod\"}") >= 1.0
    );
    assert!(value("secrets_injector_admission_review_duration_seconds_count") >= 1.0);
    assert!(
        metrics.contains("# TYPE secrets_injector_admission_review_duration_seconds histogram")
    );
    assert!(metrics.contains("# TYPE secrets_injector_certificate_reloads counter"));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let expiry = value("secrets_injector_certificate_expiry_timestamp_seconds");
    assert!(expiry > now + 300.0 * 86_400.0, "expiry {expiry}");
    for value in ["/test/parameter", "test/secret", "SECRET_USERNAME"] {
        assert!(!metrics.contains(value), "{value} in metrics:\n{metrics}");
    }

    let line = server
        .webhook
        .wait_for_log(uid, Duration::from_secs(5))
        .expect("a log line for the review");
    let event: Value = serde_json::from_str(&line).expect("JSON log line");
    assert_eq!(event["message"], "review", "{line}");
    assert_eq!(event["kind"], "Pod", "{line}");
    assert_eq!(event["namespace"], "team-a", "{line}");
    assert_eq!(event["name"], "seeds-example", "{line}");
    assert_eq!(event["operation"], "CREATE", "{line}");
    assert_eq!(event["decision"], "mutated", "{line}");
    assert!(event["duration_ms"].as_f64().is_some(), "{line}");
    for line in server.webhook.logs() {
        for value in [
            "/test/parameter",
            "test/secret",
            "SECRET_USERNAME",
            "PRIVATE KEY",
        ] {
            assert!(!line.contains(value), "{value} in a log line: {line}");
        }
    }
}

#[test]
fn tls_1_2_and_1_3_are_accepted_and_1_1_refused() {
    let server = Server::start();
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let client =
            Client::with_versions(server.webhook.addr, SERVICE_NAME, &[&server.ca], &[version]);
        let mut connection = client.connect().expect("handshake");
        assert_eq!(connection.protocol_version(), Some(version.version));
        let response = connection.request("GET", "/healthz", None).expect("GET");
        assert_eq!(response.status, 200);
    }

    // No rustls client offers TLS 1.1, so the ClientHello is written by hand; the same hello
    // offering TLS 1.2 gets a ServerHello, which shows the probe itself is sound.
    assert_eq!(
        https::probe_client_hello(server.webhook.addr, 0x0303).expect("probe TLS 1.2"),
        HelloAnswer::ServerHello { version: 0x0303 }
    );
    assert_eq!(
        https::probe_client_hello(server.webhook.addr, 0x0302).expect("probe TLS 1.1"),
        HelloAnswer::Alert {
            level: 2,
            description: 70
        },
        "TLS 1.1 must get a fatal protocol_version alert"
    );
    assert_eq!(
        https::probe_client_hello(server.webhook.addr, 0x0301).expect("probe TLS 1.0"),
        HelloAnswer::Alert {
            level: 2,
            description: 70
        }
    );

    // A client that does not trust the webhook's CA fails the handshake.
    let other = tempfile::tempdir().unwrap();
    https::make_certs(program(), other.path(), &[]);
    let untrusting = Client::new(
        server.webhook.addr,
        SERVICE_NAME,
        &[&other.path().join("ca.crt")],
    );
    let err = untrusting.connect().expect_err("unknown CA");
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
}

/// The seeds pod as the API server stores it once the webhook mutated it.
fn injected_pod(server: &Server) -> Value {
    let review = review(
        "7d6f2a10-0000-4000-8000-0000000000a0",
        &fixture("seeds-example-pod.yaml"),
        "default",
    );
    let response = server.post_review(&review);
    assert_eq!(response["allowed"], true, "{response}");
    patched(&review, &response)
}

fn update(server: &Server, old: &Value, new: &Value) -> Value {
    let review =
        admission::update_review("7d6f2a10-0000-4000-8000-0000000000a1", old, new, "default");
    server.post_review(&review)
}

fn injector_at(pod: &Value) -> usize {
    pod["spec"]["initContainers"]
        .as_array()
        .and_then(|list| list.iter().position(|c| c["name"] == "secrets-injector"))
        .expect("the injector init container")
}

#[test]
fn a_pod_update_changing_the_injector_image_is_denied() {
    let server = Server::start();
    let old = injected_pod(&server);
    let mut new = old.clone();
    new["spec"]["initContainers"][injector_at(&old)]["image"] = json!("evil.example/miner:1");
    let response = update(&server, &old, &new);
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 400, "{response}");
    let message = response["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("init container \"secrets-injector\"")
            && message.contains("cannot be changed on a running pod; recreate the pod"),
        "{message}"
    );
    assert!(response.get("patch").is_none(), "{response}");
}

#[test]
fn a_pod_update_changing_a_label_is_allowed_with_no_patch() {
    let server = Server::start();
    let old = injected_pod(&server);
    let mut new = old.clone();
    new["metadata"]["labels"]["release"] = json!("canary");
    let response = update(&server, &old, &new);
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response.get("patch").is_none(), "{response}");
    // Removing a finalizer from an injected pod too.
    let mut old = new.clone();
    old["metadata"]["finalizers"] = json!(["example.com/cleanup"]);
    let response = update(&server, &old, &new);
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response.get("patch").is_none(), "{response}");
}

#[test]
fn a_pod_update_with_a_forged_injector_gets_no_patch() {
    // A pod carrying an unconverged injector container (it was never mutated: created while the
    // namespace was not opted in, say): an UPDATE is never the moment to change it.
    let server = Server::start();
    let mut old = fixture("seeds-example-pod.yaml");
    old["spec"]["initContainers"] = json!([{
        "name": "secrets-injector", "image": "evil.example/miner:1",
        "command": ["/bin/sh"], "args": ["--region", "us-east-1"]
    }]);
    let mut new = old.clone();
    new["metadata"]["labels"]["release"] = json!("canary");
    let response = update(&server, &old, &new);
    assert_eq!(response["allowed"], true, "{response}");
    assert!(response.get("patch").is_none(), "{response}");
    assert!(response.get("patchType").is_none(), "{response}");
}
