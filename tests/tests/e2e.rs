//! End to end, with nothing faked of our own: a pod manifest goes through the real `webhook
//! serve` over HTTPS as an AdmissionReview; the returned JSONPatch is applied; the mutated pod is
//! validated against the Kubernetes 1.33 schemas; its init container runs like the kubelet runs it
//! (command, args, env, mounts, read-only root, non-root user); the real injector fetches from
//! moto with web-identity credentials; and the app container's view of the volume is checked.

use std::path::PathBuf;

use secrets_injector_e2e::admission::{self, apply_patch, create_review};
use secrets_injector_e2e::https::{self, Client, Webhook};
use secrets_injector_e2e::kubelet::{self, Run, Volumes};
use secrets_injector_e2e::moto::Moto;
use secrets_injector_e2e::proxy::Proxy;
use secrets_injector_e2e::seed::{self, call, parameter, secret};
use secrets_injector_e2e::tools::{workspace_binary, workspace_root};
use secrets_injector_e2e::{eks, validate};
use serde_json::{Value, json};

const REGION: &str = "us-east-1";
const SERVICE_NAME: &str = "secrets-injector.secrets-injector.svc";
const IMAGE: &str = "ghcr.io/secrets-injector/injector:0.1.0";
const ROLE: &str = "arn:aws:iam::123456789012:role/app";

struct World {
    moto: Moto,
    webhook: Webhook,
    ca: PathBuf,
    _certs: tempfile::TempDir,
}

/// A moto and a webhook of the test's own; both stop when it is dropped (a `static` would
/// never be dropped and would leave the processes running).
fn world() -> World {
    let moto = Moto::start();
    seed::seed(
        &moto.endpoint(),
        REGION,
        &[
            parameter("/test/parameter", "gonitest", "SecureString"),
            secret(
                "test/secret",
                r#"{"username":"example","password":"example1234"}"#,
            ),
        ],
    );
    let certs = tempfile::tempdir().expect("temp dir");
    let program = workspace_binary("webhook");
    https::make_certs(&program, certs.path(), &[]);
    let path = |name: &str| certs.path().join(name).into_os_string();
    let webhook = Webhook::start(
        &program,
        [
            "--tls-cert".into(),
            path("tls.crt"),
            "--tls-key".into(),
            path("tls.key"),
            "--injector-image".into(),
            IMAGE.into(),
        ],
    );
    World {
        moto,
        webhook,
        ca: certs.path().join("ca.crt"),
        _certs: certs,
    }
}

fn example_pod() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("manifests/examples/pod.yaml"))
        .expect("manifests/examples/pod.yaml");
    serde_saphyr::from_str(&text).expect("the example pod parses")
}

/// A pod with one app container, these annotations and this pod securityContext.
fn pod(name: &str, annotations: Value, security: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "team-a", "annotations": annotations},
        "spec": {
            "serviceAccountName": "app",
            "securityContext": security,
            "containers": [{"name": "app", "image": "busybox:1.37", "command": ["sleep", "3600"]}]
        }
    })
}

/// Sends `pod` (as EKS hands it over, with IRSA pointing at `endpoint`) through the webhook over
/// HTTPS and returns the mutated pod, checked against the official schemas.
fn admit(world: &World, pod: &Value, endpoint: &str) -> Value {
    let mut pod = pod.clone();
    eks::add_irsa(&mut pod, ROLE, REGION, &[("AWS_ENDPOINT_URL", endpoint)]);
    let review = create_review("4f9c7a52-3c3e-4d5e-9a7e-0c1e2f3a4b5c", &pod, "team-a");
    let client = Client::new(world.webhook.addr, SERVICE_NAME, &[&world.ca]);
    let answer = client
        .post_json("/mutate", &admission::body(&review))
        .expect("POST /mutate");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = answer.json();
    let response = &answer["response"];
    assert_eq!(response["uid"], review["request"]["uid"]);
    assert_eq!(response["allowed"], true, "denied: {response}");
    let mutated = apply_patch(&pod, response);
    validate::validate_manifests(&[(
        "pod.json".to_string(),
        serde_json::to_string(&mutated).expect("JSON"),
    )])
    .expect("the mutated pod is a valid Kubernetes 1.33 pod");
    mutated
}

fn run(mutated: &Value) -> Run {
    let volumes = Volumes::for_pod(mutated, "web-identity-token");
    kubelet::run_init_container(mutated, &volumes, &workspace_binary("injector"))
}

fn assert_no_leak(run: &Run, values: &[&str]) {
    let output = run.all_output();
    for value in values {
        assert!(
            !output.contains(value),
            "a secret value leaked into the output:\n{output}"
        );
    }
}

#[test]
fn the_seeds_example_gives_the_four_files_in_the_app_container() {
    let world = world();
    let mutated = admit(&world, &example_pod(), &world.moto.endpoint());

    let app = kubelet::container(&mutated, "nginx");
    let mount = app["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .find(|m| m["name"] == "secrets-injector")
        .expect("the app container mounts the volume");
    assert_eq!(mount["mountPath"], "/mnt/secrets-store");
    assert_eq!(mount["readOnly"], true);
    assert_eq!(
        mutated["metadata"]["annotations"]["secrets-injector.io/status"],
        "injected"
    );

    let run = run(&mutated);
    assert_eq!(run.exit_code, 0, "stderr: {}", run.stderr);
    assert_eq!(
        run.entries,
        [
            "SECRET_PASSWORD",
            "SECRET_USERNAME",
            "_test_parameter",
            "test_secret"
        ]
    );
    assert_eq!(run.text("_test_parameter"), "gonitest");
    assert_eq!(
        run.text("test_secret"),
        r#"{"username":"example","password":"example1234"}"#
    );
    assert_eq!(run.text("SECRET_USERNAME"), "example");
    assert_eq!(run.text("SECRET_PASSWORD"), "example1234");
    for file in run.files.values() {
        assert_eq!(file.mode, 0o644);
        assert_eq!(
            file.uid, 65532,
            "no runAsUser in the pod: the injector's default user"
        );
    }
    assert!(run.termination_log.is_empty());
    assert_no_leak(&run, &["gonitest", "example1234"]);
}

#[test]
fn every_kind_of_object_lands_with_the_app_user_and_modes() {
    let world = world();
    let endpoint = world.moto.endpoint();
    seed::seed(
        &endpoint,
        REGION,
        &[
            parameter("/kinds/plain", "plain-value", "String"),
            parameter("/kinds/list", "a,b,c", "StringList"),
            parameter("/kinds/versioned", "v1-value", "String"),
            parameter("/kinds/versioned", "v2-value", "String"),
            call(
                "ssm",
                "label_parameter_version",
                json!({"Name": "/kinds/versioned", "ParameterVersion": 1, "Labels": ["stable"]}),
            ),
            parameter("/kinds/tree/db/host", "db.internal", "String"),
            parameter("/kinds/tree/db/port", "5432", "String"),
            parameter("/kinds/tree/mode", "fast", "SecureString"),
            secret(
                "kinds/json",
                r#"{"port":5432,"tls":true,"user":"svc","nested":{"a":[1,2]}}"#,
            ),
            call(
                "secretsmanager",
                "create_secret",
                json!({"Name": "kinds/binary", "SecretBinary": "AAEC/w=="}),
            ),
        ],
    );
    let objects = r#"
- objectName: /kinds/plain
  objectType: ssmparameter
  objectAlias: PLAIN
- objectName: /kinds/list
  objectType: ssmparameter
  objectAlias: LIST
- objectName: /kinds/versioned
  objectType: ssmparameter
  objectVersion: 2
  objectAlias: v2
- objectName: /kinds/versioned
  objectType: ssmparameter
  objectVersionLabel: stable
  objectAlias: stable
- objectName: /kinds/tree
  objectType: ssmparameterpath
  objectAlias: tree
- objectName: kinds/json
  objectType: secretsmanager
  filePermission: "0600"
  jmesPath:
    - path: port
      objectAlias: PORT
    - path: tls
      objectAlias: TLS
    - path: nested
      objectAlias: nested.json
    - path: user
      objectAlias: DB_USER
- objectName: arn:aws:secretsmanager:us-east-1:123456789012:secret:kinds/binary
  objectAlias: binary
- objectName: /kinds/absent
  objectType: ssmparameter
  optional: true
"#;
    let pod = pod(
        "kinds",
        json!({
            "secrets-injector.io/objects": objects,
            "secrets-injector.io/file-permission": "0640",
            "secrets-injector.io/env-file": "app.env",
        }),
        json!({"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000}),
    );
    let mutated = admit(&world, &pod, &endpoint);
    let init = kubelet::container(&mutated, "secrets-injector");
    assert_eq!(init["securityContext"]["runAsUser"], 1000);
    assert_eq!(init["securityContext"]["runAsGroup"], 3000);

    let run = run(&mutated);
    assert_eq!(run.exit_code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.text("PLAIN"), "plain-value");
    assert_eq!(run.text("LIST"), "a,b,c");
    assert_eq!(run.text("v2"), "v2-value");
    assert_eq!(run.text("stable"), "v1-value");
    assert_eq!(run.text("tree/db_host"), "db.internal");
    assert_eq!(run.text("tree/db_port"), "5432");
    assert_eq!(run.text("tree/mode"), "fast");
    assert_eq!(run.text("PORT"), "5432");
    assert_eq!(run.text("TLS"), "true");
    assert_eq!(run.text("nested.json"), r#"{"a":[1,2]}"#);
    assert_eq!(run.text("DB_USER"), "svc");
    assert_eq!(run.file("binary").content, [0x00, 0x01, 0x02, 0xff]);
    assert!(
        !run.files.contains_key("_kinds_absent"),
        "optional and missing"
    );
    for (path, file) in &run.files {
        assert_eq!(
            (file.uid, file.gid),
            (1000, 2000),
            "{path} belongs to the app"
        );
        // The env file holds PORT, TLS, DB_USER and kinds_json: it is no more open than they.
        let want = if [
            "kinds_json",
            "PORT",
            "TLS",
            "nested.json",
            "DB_USER",
            "app.env",
        ]
        .contains(&path.as_str())
        {
            0o600
        } else {
            0o640
        };
        assert_eq!(file.mode, want, "mode of {path}");
    }
    // Only top-level files with environment-variable names, shell-quoted.
    let env = run.text("app.env");
    for line in [
        "PLAIN='plain-value'",
        "LIST='a,b,c'",
        "PORT='5432'",
        "TLS='true'",
        "DB_USER='svc'",
    ] {
        assert!(env.lines().any(|l| l == line), "{line} in app.env:\n{env}");
    }
    assert!(
        !env.lines().any(|l| l.starts_with("nested")),
        "nested.json is not an environment name:\n{env}"
    );
    assert_no_leak(
        &run,
        &["plain-value", "v2-value", "db.internal", "example1234"],
    );
}

#[test]
fn a_missing_parameter_leaves_the_volume_empty_and_says_why() {
    let world = world();
    seed::seed(
        &world.moto.endpoint(),
        REGION,
        &[parameter("/fail/present", "present-value", "SecureString")],
    );
    let objects = r#"
- objectName: /fail/present
  objectType: ssmparameter
- objectName: /fail/missing
  objectType: ssmparameter
- objectName: fail/no-such-secret
  objectType: secretsmanager
"#;
    let pod = pod(
        "fails",
        json!({"secrets-injector.io/objects": objects}),
        json!({}),
    );
    let mutated = admit(&world, &pod, &world.moto.endpoint());
    let run = run(&mutated);
    assert_ne!(run.exit_code, 0);
    assert!(run.entries.is_empty(), "nothing written: {:?}", run.entries);
    let message = &run.termination_log;
    assert!(
        message.contains(r#"objects[1] (objectName "/fail/missing")"#)
            && message.contains("ParameterNotFound"),
        "termination message: {message}"
    );
    assert!(
        message.contains(r#"objects[2] (objectName "fail/no-such-secret")"#)
            && message.contains("ResourceNotFoundException"),
        "termination message: {message}"
    );
    assert!(
        !message.contains("objects[0]"),
        "the present one did not fail"
    );
    assert_no_leak(&run, &["present-value"]);
}

#[test]
fn the_injector_makes_one_credential_call_and_batched_fetches() {
    let world = world();
    let mut calls = Vec::new();
    let mut objects = String::new();
    for i in 0..25 {
        calls.push(parameter(
            &format!("/batch/p{i}"),
            &format!("value-{i}"),
            "String",
        ));
        objects.push_str(&format!(
            "- {{objectName: /batch/p{i}, objectType: ssmparameter}}\n"
        ));
    }
    for i in 0..3 {
        calls.push(secret(&format!("batch/s{i}"), &format!("secret-{i}")));
        objects.push_str(&format!(
            "- {{objectName: batch/s{i}, objectType: secretsmanager}}\n"
        ));
    }
    seed::seed(&world.moto.endpoint(), REGION, &calls);
    let proxy = Proxy::start(world.moto.addr());
    let pod = pod(
        "batch",
        json!({"secrets-injector.io/objects": objects}),
        json!({}),
    );
    let mutated = admit(&world, &pod, &proxy.endpoint());
    let run = run(&mutated);
    assert_eq!(run.exit_code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.files.len(), 28);
    assert_eq!(run.text("_batch_p24"), "value-24");
    assert_eq!(proxy.count("AssumeRoleWithWebIdentity"), 1);
    assert_eq!(proxy.count("GetParameters"), 3);
    assert_eq!(proxy.count("GetSecretValue"), 3);
}

#[test]
fn a_pod_the_webhook_denies_never_reaches_the_injector() {
    let world = world();
    let mut bad = example_pod();
    bad["metadata"]["annotations"]["secrets-injector.io/objects"] =
        json!("- objectName: /x\n  objectAlias: \"..\"\n  objectType: ssmparameter\n");
    eks::add_irsa(&mut bad, ROLE, REGION, &[]);
    let review = create_review("a1b2", &bad, "team-a");
    let client = Client::new(world.webhook.addr, SERVICE_NAME, &[&world.ca]);
    let answer = client
        .post_json("/mutate", &admission::body(&review))
        .expect("POST /mutate")
        .json();
    let response = &answer["response"];
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 400);
    let message = response["status"]["message"].as_str().expect("message");
    assert!(
        message.contains("secrets-injector.io/objects") && message.contains("objects[0]"),
        "{message}"
    );
    assert!(response.get("patch").is_none_or(Value::is_null));
}
