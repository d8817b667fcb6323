//! Pods written for the Secrets Store CSI driver and ASCP, end to end without the driver: the two
//! manifests users already have (a SecretProviderClass and a pod with a CSI volume, in
//! webhook/tests/csi-driver as the seeds wrote them): the class is created on an API server
//! (tests/src/apiserver.rs), the pod goes through `webhook serve --csi-volumes=rewrite` over HTTPS
//! (and `webhook inject --csi-volumes=rewrite` gives the same pod offline); the mutated pod is
//! validated against the Kubernetes 1.33 schemas and run with podman (tests/src/pod_runner.rs);
//! the real injector fetches from moto under web-identity credentials; and the app container
//! finds the files at its own mount path, `/var/secrets`, as the CSI driver would have put them.

use std::process::Command;

use secrets_injector_e2e::admission::{self, apply_patch, create_review};
use secrets_injector_e2e::apiserver::ApiServer;
use secrets_injector_e2e::https::{self, Client, SERVICE_NAME, Webhook};
use secrets_injector_e2e::moto::Moto;
use secrets_injector_e2e::pod_runner::{self, Volumes};
use secrets_injector_e2e::podman::{self, APP_IMAGE, INJECTOR_IMAGE};
use secrets_injector_e2e::seed::{self, parameter, secret};
use secrets_injector_e2e::tools::{workspace_binary, workspace_root};
use secrets_injector_e2e::{eks, validate};
use serde_json::{Value, json};

const REGION: &str = "us-east-1";
const NAMESPACE: &str = "default";
const ROLE: &str = "arn:aws:iam::123456789012:role/ascp-test";

/// The app's view of its mount: one `NAME=VALUE` line per file, then whether it can write there.
const SCRIPT: &str = "cd /var/secrets && for f in *; do echo \"$f=$(busybox cat \"$f\")\"; done \
                      && (busybox touch new 2>/dev/null && echo writable || echo read-only)";

/// The manifest's documents, with what EKS adds to the pod (IRSA, here pointed at moto) and an
/// app image that runs here (nginx cannot be pulled): everything else as written.
fn documents(file: &str, endpoint: &str) -> Vec<Value> {
    let path = workspace_root().join("webhook/tests/csi-driver").join(file);
    let text = std::fs::read_to_string(&path).expect("the CSI driver manifest");
    let mut documents: Vec<Value> = serde_saphyr::from_multiple(&text).expect("YAML documents");
    let pod = &mut documents[1];
    eks::add_irsa(pod, ROLE, REGION, &[("AWS_ENDPOINT_URL", endpoint)]);
    let app = &mut pod["spec"]["containers"][0];
    app["image"] = json!(APP_IMAGE);
    app["command"] = json!(["/bin/busybox", "sh", "-c", SCRIPT]);
    documents
}

/// `webhook inject --csi-volumes=rewrite` over the documents, as YAML in and out.
fn inject(documents: &[Value]) -> Vec<Value> {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("manifest.yaml");
    let text = serde_saphyr::to_string_multiple(documents).expect("YAML");
    std::fs::write(&input, text).expect("write the manifest");
    let out = Command::new(workspace_binary("webhook"))
        .args(["inject", "-f"])
        .arg(&input)
        .args([
            "--csi-volumes=rewrite",
            &format!("--injector-image={INJECTOR_IMAGE}"),
        ])
        .output()
        .expect("run webhook inject");
    assert!(
        out.status.success(),
        "webhook inject failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 output");
    serde_saphyr::from_multiple(&text).expect("the output is YAML")
}

/// The pod's answer from `webhook serve` over HTTPS, applied.
fn admit(client: &Client, pod: &Value) -> Value {
    let review = create_review("5d1c0e7a-6b2f-4c1d-9e8a-2f3b4c5d6e7f", pod, NAMESPACE);
    let answer = client
        .post_json("/mutate", &admission::body(&review))
        .expect("POST /mutate");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let response = answer.json()["response"].clone();
    assert_eq!(response["allowed"], true, "denied: {response}");
    assert_eq!(response["warnings"], Value::Null, "{response}");
    apply_patch(pod, &response)
}

/// An API server that holds the classes, and `webhook serve --csi-volumes=rewrite` (and `extra`
/// flags) reading them from it.
struct Served {
    client: Client,
    api: ApiServer,
    _webhook: Webhook,
    _certs: tempfile::TempDir,
}

fn serve(extra: &[&str]) -> Served {
    let certs = tempfile::tempdir().expect("temp dir");
    let program = workspace_binary("webhook");
    https::make_certs(&program, certs.path(), &["--extra-san", "127.0.0.1"]);
    let path = |name: &str| certs.path().join(name);
    let api = ApiServer::start(&path("tls.crt"), &path("tls.key"));
    let kubeconfig = api.kubeconfig(certs.path(), &path("ca.crt"));
    let mut args: Vec<std::ffi::OsString> = vec![
        "--tls-cert".into(),
        path("tls.crt").into_os_string(),
        "--tls-key".into(),
        path("tls.key").into_os_string(),
        format!("--injector-image={INJECTOR_IMAGE}").into(),
        "--csi-volumes=rewrite".into(),
        "--kubeconfig".into(),
        kubeconfig.into_os_string(),
    ];
    args.extend(extra.iter().map(Into::into));
    let webhook = Webhook::start(&program, args);
    let client = Client::new(webhook.addr, SERVICE_NAME, &[&path("ca.crt")]);
    Served {
        client,
        api,
        _webhook: webhook,
        _certs: certs,
    }
}

/// The class in the test's namespace on the API server.
fn apply_class(api: &ApiServer, class: &Value) {
    let mut class = class.clone();
    class["metadata"]["namespace"] = json!(NAMESPACE);
    api.apply(&class);
}

#[test]
fn the_csi_drivers_manifests_give_the_same_files_at_the_pods_own_path() {
    podman::test_images();
    let Served { client, api, .. } = &serve(&[]);
    let moto = Moto::start();
    let endpoint = moto.endpoint();
    seed::seed(
        &endpoint,
        REGION,
        &[
            parameter("/test/parameter", "gonitest", "SecureString"),
            secret(
                "test/secret",
                r#"{"username":"example","password":"example1234"}"#,
            ),
        ],
    );
    let cases = [
        (
            "mypod_parameter_store.yaml",
            "parameter-store",
            vec!["_test_parameter=gonitest"],
        ),
        (
            "mypod_secrets_manager.yaml",
            "secrets-manager",
            vec![
                "SECRET_PASSWORD=example1234",
                "SECRET_USERNAME=example",
                r#"test_secret={"username":"example","password":"example1234"}"#,
            ],
        ),
    ];
    for (file, volume, expected) in cases {
        let input = documents(file, &endpoint);
        apply_class(api, &input[0]);
        let mut served = admit(client, &input[1]);
        // Offline, the same pod (the API server's namespace aside).
        let output = inject(&input);
        assert_eq!(output.len(), 2, "{file}");
        assert_eq!(output[0], input[0], "the class is printed as it was");
        served["metadata"]
            .as_object_mut()
            .expect("metadata")
            .remove("namespace");
        assert_eq!(output[1], served, "inject and serve give the same pod");
        let pod = &output[1];
        validate::validate_manifests(&[(
            format!("{volume}.json"),
            serde_json::to_string(pod).expect("JSON"),
        )])
        .expect("the mutated pod is a valid Kubernetes 1.33 pod");

        let volumes = Volumes::for_pod(pod, "web-identity-token");
        let run = pod_runner::run_pod(pod, &volumes);
        let injector = run.container(&format!("secrets-injector-csi-{volume}"));
        assert_eq!(injector.exit_code, 0, "{injector:#?}");
        let app = run.container("nginx");
        assert_eq!(app.exit_code, 0, "{app:#?}");
        let mut lines: Vec<&str> = app.stdout.lines().collect();
        assert_eq!(lines.pop(), Some("read-only"), "{}", app.stdout);
        assert_eq!(lines, expected, "{file}");
        let output = run.all_output();
        for value in ["gonitest", "example1234"] {
            assert!(
                !format!("{}{}", injector.stdout, injector.stderr).contains(value),
                "a value leaked into the injector's output:\n{output}"
            );
        }
    }
}

/// SPEC "SecretProviderClass and CSI volumes": the seeds' CSI pod with `refresh-interval`. Its
/// volume's refresh sidecar (the init container running `refresh`) brings a value rotated in moto
/// to the app's own mount while the app runs.
#[test]
fn a_rewritten_csi_volume_is_refreshed_while_the_app_runs() {
    podman::test_images();
    let Served { client, api, .. } = &serve(&["--refresh-min-interval=1s"]);
    let moto = Moto::start();
    let endpoint = moto.endpoint();
    seed::seed(
        &endpoint,
        REGION,
        &[parameter("/test/parameter", "gonitest", "SecureString")],
    );
    // The app records the first value where the test sees it, then waits until the file holds
    // another; it gives up when the sidecar's process is gone (they share a process namespace).
    let script = r#"
        cd /var/secrets
        first=$(busybox cat _test_parameter)
        echo "$first" > /scratch/started
        until [ "$(busybox cat _test_parameter)" != "$first" ]; do
            busybox pidof injector >/dev/null || { echo "the sidecar is gone" >&2; exit 3; }
            busybox sleep 0.2
        done
        echo "first=$first now=$(busybox cat _test_parameter)"
    "#;
    let mut input = documents("mypod_parameter_store.yaml", &endpoint);
    apply_class(api, &input[0]);
    let pod = &mut input[1];
    pod["metadata"]["annotations"]["secrets-injector.io/refresh-interval"] = json!("2s");
    pod["spec"]["shareProcessNamespace"] = json!(true);
    pod["spec"]["volumes"]
        .as_array_mut()
        .expect("volumes")
        .push(json!({"name": "scratch", "emptyDir": {}}));
    let app = &mut pod["spec"]["containers"][0];
    app["command"] = json!(["/bin/busybox", "sh", "-c", script]);
    app["volumeMounts"]
        .as_array_mut()
        .expect("mounts")
        .push(json!({"name": "scratch", "mountPath": "/scratch"}));
    let mutated = admit(client, pod);

    let name = "secrets-injector-refresh-parameter-store";
    let sidecar = pod_runner::container(&mutated, name);
    assert_eq!(sidecar["restartPolicy"], "Always");
    assert_eq!(
        sidecar["command"],
        json!(["/usr/local/bin/injector", "refresh"])
    );
    let args = sidecar["args"].as_array().expect("args");
    assert_eq!(args.last(), Some(&json!("--interval=2s")));
    validate::validate_manifests_for(
        &validate::KUBERNETES_VERSIONS,
        &[(
            "csi-refresh.json".to_owned(),
            serde_json::to_string(&mutated).expect("JSON"),
        )],
    )
    .expect("the mutated pod is valid for every supported Kubernetes version");

    let volumes = Volumes::for_pod(&mutated, "web-identity-token");
    let started = volumes.dir("scratch").join("started");
    let run = std::thread::scope(|scope| {
        let running = scope.spawn(|| pod_runner::run_pod(&mutated, &volumes));
        // Rotate only once the app has read the first value.
        while !started.exists() && !running.is_finished() {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if started.exists() {
            seed::seed(
                &endpoint,
                REGION,
                &[parameter("/test/parameter", "rotated", "SecureString")],
            );
        }
        running.join().expect("the pod run")
    });

    let injector = run.container("secrets-injector-csi-parameter-store");
    assert_eq!(injector.exit_code, 0, "{injector:#?}");
    let sidecar = run.container(name);
    assert_eq!(
        sidecar.exit_code, 0,
        "the sidecar ends with 0 only when stopped (SIGTERM): {sidecar:#?}"
    );
    let app = run.container("nginx");
    assert_eq!(app.exit_code, 0, "{app:#?}");
    assert_eq!(app.stdout.trim(), "first=gonitest now=rotated", "{app:#?}");
    for container in [injector, sidecar] {
        let output = format!("{}{}", container.stdout, container.stderr);
        for value in ["gonitest", "rotated"] {
            assert!(
                !output.contains(value),
                "a value leaked into the output of a container:\n{output}"
            );
        }
    }
}

/// SPEC "SecretProviderClass and CSI volumes": the seeds' Secrets Manager pod with
/// `env-containers` and nothing else of the webhook's: its CSI init container copies
/// `secrets-env`, which reads the rewritten volume at the pod's own path, and the app process
/// (a static busybox printing its environment) has the values as variables.
#[test]
fn a_csi_pods_env_containers_get_the_volumes_values_as_variables() {
    podman::test_images();
    let Served { client, api, .. } = &serve(&[]);
    let moto = Moto::start();
    let endpoint = moto.endpoint();
    seed::seed(
        &endpoint,
        REGION,
        &[secret(
            "test/secret",
            r#"{"username":"example","password":"example1234"}"#,
        )],
    );
    let input = documents("mypod_secrets_manager.yaml", &endpoint);
    apply_class(api, &input[0]);
    let mut pod = input[1].clone();
    pod["metadata"]["annotations"] = json!({"secrets-injector.io/env-containers": "nginx"});
    pod["spec"]["containers"][0]["command"] = json!(["/bin/busybox"]);
    pod["spec"]["containers"][0]["args"] = json!(["env"]);
    let mutated = admit(client, &pod);
    let app = pod_runner::container(&mutated, "nginx");
    assert_eq!(
        app["command"],
        json!([
            "/secrets-injector/bin/secrets-env",
            "--dir",
            "/var/secrets",
            "--",
            "/bin/busybox"
        ])
    );
    validate::validate_manifests(&[(
        "csi-env.json".to_owned(),
        serde_json::to_string(&mutated).expect("JSON"),
    )])
    .expect("the mutated pod is a valid Kubernetes 1.33 pod");

    let volumes = Volumes::for_pod(&mutated, "web-identity-token");
    let run = pod_runner::run_pod(&mutated, &volumes);
    let injector = run.container("secrets-injector-csi-secrets-manager");
    assert_eq!(injector.exit_code, 0, "{injector:#?}");
    let app = run.container("nginx");
    assert_eq!(app.exit_code, 0, "{app:#?}");
    let environment: Vec<&str> = app.stdout.lines().collect();
    for variable in ["SECRET_USERNAME=example", "SECRET_PASSWORD=example1234"] {
        assert!(
            environment.contains(&variable),
            "{variable} is not in the app's environment:\n{}",
            app.stdout
        );
    }
    let output = format!("{}{}", injector.stdout, injector.stderr);
    assert!(
        !output.contains("example1234"),
        "a value leaked into the injector's output:\n{output}"
    );
}
