//! End to end, with nothing faked of our own: a pod manifest goes through the real `webhook
//! serve` over HTTPS as an AdmissionReview; the returned JSONPatch is applied; the mutated pod is
//! validated against the Kubernetes 1.33 schemas; its containers run with podman as a node runs
//! them (tests/src/pod_runner.rs: the injector image built by scripts/images.sh, command, args,
//! env, mounts, read-only root, non-root user); the real injector fetches from moto with
//! web-identity credentials; and the app container's view of the volume is checked.

use std::path::PathBuf;

use secrets_injector_e2e::admission::{self, apply_patch, create_review};
use secrets_injector_e2e::https::{self, Client, Webhook};
use secrets_injector_e2e::moto::Moto;
use secrets_injector_e2e::pod_runner::{self, ContainerRun, PodRun, Volumes};
use secrets_injector_e2e::podman::{self, APP_IMAGE, INJECTOR_IMAGE};
use secrets_injector_e2e::proxy::Proxy;
use secrets_injector_e2e::seed::{self, call, parameter, secret};
use secrets_injector_e2e::tools::{workspace_binary, workspace_root};
use secrets_injector_e2e::{eks, validate};
use serde_json::{Value, json};

const REGION: &str = "us-east-1";
const SERVICE_NAME: &str = "secrets-injector.secrets-injector.svc";
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
    world_with(&[])
}

/// [`world`] with more flags for `webhook serve`.
fn world_with(flags: &[&str]) -> World {
    podman::test_images();
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
            INJECTOR_IMAGE.into(),
        ]
        .into_iter()
        .chain(flags.iter().map(|flag| std::ffi::OsString::from(*flag))),
    );
    World {
        moto,
        webhook,
        ca: certs.path().join("ca.crt"),
        _certs: certs,
    }
}

/// The example pod, its app container running `script` (busybox sh) in the busybox image
/// instead of nginx, which cannot be pulled here.
fn example_pod(script: &str) -> Value {
    let text = std::fs::read_to_string(workspace_root().join("manifests/examples/pod.yaml"))
        .expect("manifests/examples/pod.yaml");
    let mut pod: Value = serde_saphyr::from_str(&text).expect("the example pod parses");
    let app = &mut pod["spec"]["containers"][0];
    app["image"] = json!(APP_IMAGE);
    app["command"] = json!(["/bin/busybox", "sh", "-c", script]);
    pod
}

/// A pod with one app container, these annotations and this pod securityContext.
fn pod(name: &str, annotations: Value, security: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "team-a", "annotations": annotations},
        "spec": {
            "serviceAccountName": "app",
            "securityContext": security,
            "containers": [{"name": "app", "image": APP_IMAGE, "command": ["/bin/busybox", "true"]}]
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

fn run(mutated: &Value) -> PodRun {
    let volumes = Volumes::for_pod(mutated, "web-identity-token");
    pod_runner::run_pod(mutated, &volumes)
}

/// No value in what the injector printed or left as its termination message.
fn assert_no_leak(run: &ContainerRun, values: &[&str]) {
    let output = format!(
        "{}\n{}\n{}",
        run.stdout, run.stderr, run.termination_message
    );
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
    let script = "cd /mnt/secrets-store && busybox ls -lnL && busybox cat SECRET_USERNAME && echo \
                  && (busybox touch new 2>/dev/null && echo writable || echo read-only)";
    let mutated = admit(&world, &example_pod(script), &world.moto.endpoint());

    let app = pod_runner::container(&mutated, "nginx");
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
    let injector = run.injector();
    assert_eq!(injector.exit_code, 0, "{injector:#?}");
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
    assert!(injector.termination_log.is_empty());
    assert_no_leak(injector, &["gonitest", "example1234"]);

    // What the app container sees, from inside it: its own user, the files read-only.
    let app = run.container("nginx");
    assert_eq!(app.exit_code, 0, "{app:#?}");
    let listing: Vec<&str> = app.stdout.lines().collect();
    for name in [
        "SECRET_PASSWORD",
        "SECRET_USERNAME",
        "_test_parameter",
        "test_secret",
    ] {
        assert!(
            listing.iter().any(|l| l.starts_with("-rw-r--r--")
                && l.contains(" 65532 ")
                && l.ends_with(&format!(" {name}"))),
            "{name} in the app's listing:\n{}",
            app.stdout
        );
    }
    assert!(
        app.stdout.ends_with("\nexample\nread-only\n"),
        "{}",
        app.stdout
    );
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
    let init = pod_runner::container(&mutated, "secrets-injector");
    assert_eq!(init["securityContext"]["runAsUser"], 1000);
    assert_eq!(init["securityContext"]["runAsGroup"], 3000);

    let run = run(&mutated);
    let injector = run.injector();
    assert_eq!(injector.exit_code, 0, "{injector:#?}");
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
        injector,
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
    let injector = run.injector();
    assert_ne!(injector.exit_code, 0);
    assert_eq!(run.containers.len(), 1, "the app never starts");
    assert!(run.entries.is_empty(), "nothing written: {:?}", run.entries);
    let message = &injector.termination_log;
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
    assert_no_leak(injector, &["present-value"]);
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
    let injector = run.injector();
    assert_eq!(injector.exit_code, 0, "{injector:#?}");
    assert_eq!(run.files.len(), 28);
    assert_eq!(run.text("_batch_p24"), "value-24");
    assert_eq!(proxy.count("AssumeRoleWithWebIdentity"), 1);
    assert_eq!(proxy.count("GetParameters"), 3);
    assert_eq!(proxy.count("GetSecretValue"), 3);
}

#[test]
fn a_secret_prefix_gives_a_directory_of_exactly_the_tagged_secrets() {
    let world = world();
    let tagged = |name: &str, value: &str, tags: Value| {
        call(
            "secretsmanager",
            "create_secret",
            json!({"Name": name, "SecretString": value, "Tags": tags}),
        )
    };
    let team = json!([{"Key": "team", "Value": "payments"}]);
    let mut calls = vec![
        // What AWS's filters let through for team=payments, and the object does not ask for.
        tagged(
            "prod/payments/ops",
            "ops-value",
            json!([{"Key": "team", "Value": "ops"}, {"Key": "env", "Value": "payments"}]),
        ),
        tagged("prod/paymentsX", "outside-value", team.clone()),
    ];
    for i in 0..23 {
        calls.push(tagged(
            &format!("prod/payments/s{i:02}"),
            &format!("value-{i}"),
            team.clone(),
        ));
    }
    seed::seed(&world.moto.endpoint(), REGION, &calls);
    let proxy = Proxy::start(world.moto.addr());
    let payments = pod(
        "payments",
        json!({
            "secrets-injector.io/objects":
                "- {objectName: prod/payments/, objectType: secretsmanagerpath, \
                   objectAlias: payments, filePermission: '0440', tags: {team: payments}}",
            "secrets-injector.io/path-translation": "False",
        }),
        json!({"runAsUser": 1000, "fsGroup": 2000}),
    );
    let mutated = admit(&world, &payments, &proxy.endpoint());
    let run = run(&mutated);
    let injector = run.injector();
    assert_eq!(injector.exit_code, 0, "{injector:#?}");
    let names: Vec<&str> = run.files.keys().map(String::as_str).collect();
    let want: Vec<String> = (0..23).map(|i| format!("payments/s{i:02}")).collect();
    assert_eq!(names, want);
    assert_eq!(run.text("payments/s07"), "value-7");
    for file in run.files.values() {
        assert_eq!((file.mode, file.uid), (0o440, 1000));
    }
    // One listing, two batches (20 and 3), one credential call.
    assert_eq!(proxy.count("AssumeRoleWithWebIdentity"), 1);
    assert_eq!(proxy.count("ListSecrets"), 1);
    assert_eq!(proxy.items("BatchGetSecretValue").iter().sum::<usize>(), 23);
    assert_eq!(proxy.count("BatchGetSecretValue"), 2);
    assert_eq!(proxy.count("GetSecretValue"), 0);
    assert_no_leak(injector, &["value-7", "ops-value"]);

    // A field of one secret on a prefix is denied at admission, naming the object and the rule.
    let bad = json!({
        "secrets-injector.io/objects":
            "- {objectName: prod/payments/, objectType: secretsmanagerpath, objectAlias: p, \
               jmesPath: [{path: a, objectAlias: A}]}",
    });
    let mut denied_pod = pod("bad", bad, json!({}));
    eks::add_irsa(&mut denied_pod, ROLE, REGION, &[]);
    let review = create_review(
        "6a1b2c3d-0000-4000-8000-000000000001",
        &denied_pod,
        "team-a",
    );
    let client = Client::new(world.webhook.addr, SERVICE_NAME, &[&world.ca]);
    let answer = client
        .post_json("/mutate", &admission::body(&review))
        .expect("POST /mutate")
        .json();
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    let message = answer["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains(
            "objects[0] (objectName \"prod/payments/\"): jmesPath does not apply to a \
             secretsmanagerpath object"
        ),
        "{message}"
    );
}

#[test]
fn a_pod_the_webhook_denies_never_reaches_the_injector() {
    let world = world();
    let mut bad = example_pod("true");
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

/// The injector in its image trusts the CA bundle at `/etc/ssl/certs/ca-certificates.crt`, the
/// file the AWS SDK's HTTPS client (rustls-native-certs) reads: moto behind an HTTPS proxy whose
/// certificate comes from a CA of the test's own is refused with the image's bundle (Debian's
/// public CAs: no fallback trusts it), and reached when a bundle holding that CA is mounted at
/// that path and nowhere else (no `SSL_CERT_FILE`, nothing else in the pod changed).
#[test]
fn the_injector_in_its_image_trusts_the_ca_bundle_at_the_sdk_path() {
    let world = world();
    let (proxy, certs) = tls_proxy(&world);
    let mut mutated = admit(&world, &example_pod("true"), &proxy.endpoint());

    let refused = run(&mutated);
    let injector = refused.injector();
    assert_ne!(injector.exit_code, 0, "{injector:#?}");
    assert!(
        injector
            .termination_message
            .contains("invalid peer certificate: UnknownIssuer"),
        "{injector:#?}"
    );
    assert!(
        proxy.records().is_empty(),
        "no request got past the TLS handshake: {:?}",
        proxy.records()
    );
    assert!(refused.entries.is_empty());

    let bundle_file = bundle_with_test_ca(certs.path());
    mutated["spec"]["volumes"]
        .as_array_mut()
        .expect("volumes")
        .push(json!({"name": "ca-bundle", "hostPath": {"path": bundle_file, "type": "File"}}));
    let init = mutated["spec"]["initContainers"]
        .as_array_mut()
        .expect("init containers")
        .iter_mut()
        .find(|c| c["name"] == "secrets-injector")
        .expect("the injector");
    init["volumeMounts"]
        .as_array_mut()
        .expect("mounts")
        .push(json!({
            "name": "ca-bundle",
            "mountPath": "/etc/ssl/certs/ca-certificates.crt",
            "readOnly": true
        }));

    let trusted = run(&mutated);
    let injector = trusted.injector();
    assert_eq!(injector.exit_code, 0, "{injector:#?}");
    assert_eq!(trusted.text("SECRET_USERNAME"), "example");
    assert_eq!(proxy.count("AssumeRoleWithWebIdentity"), 1);
    assert!(proxy.count("GetParameters") >= 1);
}

/// moto behind an HTTPS proxy whose certificate (for 127.0.0.1) comes from a CA of the test's
/// own, made by `webhook certs`; the directory holds `ca.crt`.
fn tls_proxy(world: &World) -> (Proxy, tempfile::TempDir) {
    let certs = tempfile::tempdir().expect("temp dir");
    https::make_certs(
        &workspace_binary("webhook"),
        certs.path(),
        &["--extra-san", "127.0.0.1"],
    );
    let proxy = Proxy::start_tls(
        world.moto.addr(),
        &certs.path().join("tls.crt"),
        &certs.path().join("tls.key"),
    );
    assert!(proxy.endpoint().starts_with("https://127.0.0.1:"));
    (proxy, certs)
}

/// Debian's CA bundle (the one scripts/images.sh puts in the image) plus the test CA.
fn bundle_with_test_ca(certs: &std::path::Path) -> PathBuf {
    let mut bundle = std::fs::read("/etc/ssl/certs/ca-certificates.crt")
        .expect("Debian's CA bundle (ca-certificates)");
    bundle.extend(std::fs::read(certs.join("ca.crt")).expect("the test CA"));
    let file = certs.join("bundle.crt");
    std::fs::write(&file, bundle).expect("write the bundle");
    file
}

/// The sidecar ran until it was stopped; a failure naming the missing half of the feature when
/// the injector has no `refresh` subcommand, so that can never pass.
fn assert_the_sidecar_ran(sidecar: &ContainerRun) {
    assert!(
        !sidecar.stderr.contains("unexpected argument 'refresh'"),
        "the injector in {INJECTOR_IMAGE} has no `refresh` subcommand, which the sidecar the \
         webhook adds runs (SPEC \"Refresh while running\"): build the injector side of refresh \
         first. The sidecar's run: {sidecar:#?}"
    );
    assert_eq!(
        sidecar.exit_code, 0,
        "the sidecar ends with 0 only when stopped (SIGTERM): {sidecar:#?}"
    );
}

#[test]
fn the_sidecar_refreshes_a_rotated_value_and_signals_the_app() {
    let world = world_with(&["--refresh-min-interval=1s"]);
    // The app records the first value where the test sees it, waits until the file holds
    // another, then until its SIGHUP came (the sidecar signals after the swap). It gives up when
    // the sidecar's process is gone (it shares the pod's process namespace).
    let script = r#"
        cd /mnt/secrets-store
        hups=0
        trap 'hups=$((hups+1))' HUP
        first=$(busybox cat _test_parameter)
        echo "$first" > /scratch/started
        until [ "$(busybox cat _test_parameter)" != "$first" ]; do
            busybox pidof injector >/dev/null || { echo "the sidecar is gone" >&2; exit 3; }
            busybox sleep 0.2
        done
        echo "first=$first now=$(busybox cat _test_parameter) user=$(busybox cat SECRET_USERNAME)"
        until [ "$hups" -gt 0 ]; do busybox sleep 0.2; done
        echo "hups=$hups"
        busybox ls -a
    "#;
    let mut pod = example_pod(script);
    let annotations = &mut pod["metadata"]["annotations"];
    annotations["secrets-injector.io/refresh-interval"] = json!("2s");
    annotations["secrets-injector.io/refresh-signal"] = json!("SIGHUP busybox");
    pod["spec"]["shareProcessNamespace"] = json!(true);
    pod["spec"]["securityContext"] = json!({"runAsUser": 1000, "runAsGroup": 1000});
    pod["spec"]["volumes"] = json!([{"name": "scratch", "emptyDir": {}}]);
    pod["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "scratch", "mountPath": "/scratch"}]);
    let mutated = admit(&world, &pod, &world.moto.endpoint());

    let sidecar = pod_runner::container(&mutated, "secrets-injector-refresh");
    assert_eq!(sidecar["restartPolicy"], "Always");
    assert_eq!(
        sidecar["command"],
        json!(["/usr/local/bin/injector", "refresh"])
    );
    let args = sidecar["args"].as_array().expect("args");
    assert_eq!(
        args[args.len() - 2..],
        [json!("--interval=2s"), json!("--signal=SIGHUP busybox")]
    );

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
                &world.moto.endpoint(),
                REGION,
                &[parameter("/test/parameter", "rotated", "SecureString")],
            );
        }
        running.join().expect("the pod run")
    });

    let injector = run.injector();
    assert_eq!(injector.exit_code, 0, "{injector:#?}");
    let sidecar = run.container("secrets-injector-refresh");
    assert_the_sidecar_ran(sidecar);
    assert_no_leak(sidecar, &["gonitest", "rotated", "example1234"]);
    let app = run.container("nginx");
    assert_eq!(app.exit_code, 0, "{app:#?}");
    let lines: Vec<&str> = app.stdout.lines().collect();
    assert_eq!(
        lines[..2],
        ["first=gonitest now=rotated user=example", "hups=1"],
        "{app:#?}"
    );
    assert!(lines.contains(&"..data"), "the atomic layout: {lines:?}");
}

/// SPEC "Environment variables": the example pod with `env-containers`, its app container in a
/// root filesystem with no libc and no shell (only a static busybox), printing its environment.
/// The values reach the app process as variables, and none of them is in the pod spec.
#[test]
fn env_containers_give_the_app_process_the_values_as_variables() {
    let world = world();
    let mut pod = example_pod("unused");
    pod["metadata"]["annotations"]["secrets-injector.io/env-containers"] = json!("nginx");
    pod["spec"]["containers"][0]["command"] = json!(["/bin/busybox"]);
    pod["spec"]["containers"][0]["args"] = json!(["env"]);
    let mutated = admit(&world, &pod, &world.moto.endpoint());

    let app = pod_runner::container(&mutated, "nginx");
    assert_eq!(
        app["command"],
        json!([
            "/secrets-injector/bin/secrets-env",
            "--dir",
            "/mnt/secrets-store",
            "--",
            "/bin/busybox"
        ])
    );
    assert_eq!(app["args"], json!(["env"]));
    let spec = serde_json::to_string(&mutated).expect("JSON");
    for value in [
        "gonitest",
        "example1234",
        "SECRET_USERNAME=",
        "SECRET_PASSWORD=",
    ] {
        assert!(
            !spec.contains(value),
            "{value:?} is in the mutated pod:\n{spec}"
        );
    }

    let run = run(&mutated);
    let injector = run.injector();
    assert_eq!(injector.exit_code, 0, "{injector:#?}");
    assert_no_leak(injector, &["gonitest", "example1234"]);
    let app = run.container("nginx");
    assert_eq!(app.exit_code, 0, "{app:#?}");
    let environment: Vec<&str> = app.stdout.lines().collect();
    for variable in [
        "SECRET_USERNAME=example",
        "SECRET_PASSWORD=example1234",
        "_test_parameter=gonitest",
        "AWS_REGION=us-east-1",
    ] {
        assert!(
            environment.contains(&variable),
            "{variable} is not in the app's environment:\n{}",
            app.stdout
        );
    }
}

/// A second kind of root filesystem, made offline from this machine's Debian: its dynamically
/// linked `env` (coreutils) and the glibc it loads, found on `PATH`. Built once per test process.
fn glibc_image() -> String {
    let image = format!("localhost/secrets-injector/glibc-env:{}", podman::TEST_TAG);
    let ldd = std::process::Command::new("ldd")
        .arg("/usr/bin/env")
        .output()
        .expect("run ldd (Debian's libc-bin)");
    let text = String::from_utf8(ldd.stdout).expect("ldd output");
    // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
    let libraries = text.lines().filter_map(|line| {
        let path = line.split("=>").last()?.split_whitespace().next()?;
        path.starts_with('/').then(|| path.to_owned())
    });
    let context = tempfile::tempdir().expect("temp dir");
    let root = context.path().join("root");
    for path in std::iter::once("/usr/bin/env".to_owned()).chain(libraries) {
        let target = root.join(&path[1..]);
        std::fs::create_dir_all(target.parent().expect("parent")).expect("create dir");
        std::fs::copy(&path, &target).unwrap_or_else(|e| panic!("copy {path}: {e}"));
    }
    let containerfile = context.path().join("Containerfile");
    std::fs::write(
        &containerfile,
        "FROM scratch\nCOPY . /\nENV PATH=/usr/local/bin:/usr/bin:/bin\nUSER 65532:65532\n",
    )
    .expect("write the Containerfile");
    let out = podman::output(
        &mut podman::podman(
            std::time::Duration::from_secs(600),
            &[
                "build",
                "--pull=never",
                "--quiet",
                "-f",
                &containerfile.to_string_lossy(),
                "-t",
                &image,
                &root.to_string_lossy(),
            ],
        ),
        "podman build of the glibc app image",
    );
    assert!(
        out.status.success(),
        "podman build of {image} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    image
}

/// The same wrapper in a root with a dynamic glibc, its command looked up on `PATH`.
#[test]
fn env_containers_work_in_a_glibc_root_with_the_command_on_path() {
    let world = world();
    let mut pod = example_pod("unused");
    pod["metadata"]["annotations"]["secrets-injector.io/env-containers"] = json!("nginx");
    pod["spec"]["containers"][0]["image"] = json!(glibc_image());
    pod["spec"]["containers"][0]["command"] = json!(["env"]);
    let mutated = admit(&world, &pod, &world.moto.endpoint());
    let run = run(&mutated);
    assert_eq!(run.injector().exit_code, 0, "{:#?}", run.injector());
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
}

/// The templates of SPEC "Templates", as a user writes them beside the seeds' objects.
const TEMPLATES: &str = r#"- name: DATABASE_URL
  template: "postgres://{{ SECRET_USERNAME | urlencode }}:{{ SECRET_PASSWORD | urlencode }}@db:5432/app"
- name: config.yaml
  filePermission: "0400"
  delimiters: ["[[", "]]"]
  template: |
    database:
      user: [[ SECRET_USERNAME | tojson ]]
      password: [[ SECRET_PASSWORD | tojson ]]
    parameter: [[ files._test_parameter | tojson ]]
"#;

/// SPEC "Templates": the seeds' objects plus a `config.yaml` and a `DATABASE_URL` template. The
/// app container reads the rendered files, and with `env-containers` its process has
/// `DATABASE_URL` (built from the username and the password) as a variable.
#[test]
fn templates_render_files_the_app_reads_and_a_variable_its_process_gets() {
    let world = world();
    let mut pod = example_pod("unused");
    let annotations = &mut pod["metadata"]["annotations"];
    annotations["secrets-injector.io/templates"] = json!(TEMPLATES);
    annotations["secrets-injector.io/env-containers"] = json!("nginx");
    pod["spec"]["securityContext"] = json!({"runAsUser": 1000, "runAsGroup": 1000});
    pod["spec"]["containers"][0]["command"] = json!(["/bin/busybox"]);
    pod["spec"]["containers"][0]["args"] = json!([
        "sh",
        "-c",
        "busybox env; echo ---; busybox cat /mnt/secrets-store/config.yaml; \
         busybox ls -ln /mnt/secrets-store/..data/"
    ]);
    let mutated = admit(&world, &pod, &world.moto.endpoint());
    let args = pod_runner::container(&mutated, "secrets-injector")["args"]
        .as_array()
        .expect("args")
        .clone();
    assert!(args.contains(&json!(format!("--templates={TEMPLATES}"))));

    let run = run(&mutated);
    let injector = run.injector();
    assert_eq!(injector.exit_code, 0, "{injector:#?}");
    assert_no_leak(injector, &["gonitest", "example1234"]);
    let url = "postgres://example:example1234@db:5432/app";
    assert_eq!(run.text("DATABASE_URL"), url);
    assert_eq!(run.files["config.yaml"].mode, 0o400);
    assert_eq!(run.files["config.yaml"].uid, 1000);
    let app = run.container("nginx");
    assert_eq!(app.exit_code, 0, "{app:#?}");
    let (environment, files) = app.stdout.split_once("---\n").expect("both parts");
    let environment: Vec<&str> = environment.lines().collect();
    assert!(
        environment.contains(&format!("DATABASE_URL={url}").as_str()),
        "DATABASE_URL is not in the app's environment:\n{}",
        app.stdout
    );
    assert!(
        files.starts_with(
            "database:\n  user: \"example\"\n  password: \"example1234\"\nparameter: \"gonitest\"\n"
        ),
        "{}",
        app.stdout
    );
}

/// With `refresh-interval`, a rotated password reaches the rendered `DATABASE_URL` in the same
/// swap as `SECRET_PASSWORD`: the app, reading both through one `..data`, never sees them differ.
#[test]
fn a_rotated_password_reaches_the_rendered_file_in_the_same_swap() {
    let world = world_with(&["--refresh-min-interval=1s"]);
    let script = r#"
        cd /mnt/secrets-store
        echo started > /scratch/started
        until [ "$(busybox cat SECRET_PASSWORD)" != "example1234" ]; do
            busybox pidof injector >/dev/null || { echo "the sidecar is gone" >&2; exit 3; }
            busybox sleep 0.2
        done
        d=$(busybox readlink ..data)
        echo "password=$(busybox cat $d/SECRET_PASSWORD)"
        echo "url=$(busybox cat $d/DATABASE_URL)"
    "#;
    let mut pod = example_pod(script);
    let annotations = &mut pod["metadata"]["annotations"];
    annotations["secrets-injector.io/templates"] = json!(TEMPLATES);
    annotations["secrets-injector.io/refresh-interval"] = json!("2s");
    // The app sees the sidecar's process, so it stops waiting when the sidecar is gone.
    pod["spec"]["shareProcessNamespace"] = json!(true);
    pod["spec"]["securityContext"] = json!({"runAsUser": 1000, "runAsGroup": 1000});
    pod["spec"]["volumes"] = json!([{"name": "scratch", "emptyDir": {}}]);
    pod["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "scratch", "mountPath": "/scratch"}]);
    let mutated = admit(&world, &pod, &world.moto.endpoint());
    let sidecar = pod_runner::container(&mutated, "secrets-injector-refresh");
    assert!(
        sidecar["args"]
            .as_array()
            .expect("args")
            .contains(&json!(format!("--templates={TEMPLATES}"))),
        "the sidecar renders the same templates"
    );

    let volumes = Volumes::for_pod(&mutated, "web-identity-token");
    let started = volumes.dir("scratch").join("started");
    let run = std::thread::scope(|scope| {
        let running = scope.spawn(|| pod_runner::run_pod(&mutated, &volumes));
        while !started.exists() && !running.is_finished() {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        if started.exists() {
            seed::seed(
                &world.moto.endpoint(),
                REGION,
                &[call(
                    "secretsmanager",
                    "put_secret_value",
                    json!({
                        "SecretId": "test/secret",
                        "SecretString": r#"{"username":"example","password":"rotated/pw"}"#,
                    }),
                )],
            );
        }
        running.join().expect("the pod run")
    });
    let injector = run.injector();
    assert_eq!(injector.exit_code, 0, "{injector:#?}");
    let sidecar = run.container("secrets-injector-refresh");
    assert_the_sidecar_ran(sidecar);
    assert_no_leak(sidecar, &["gonitest", "rotated/pw", "example1234"]);
    let app = run.container("nginx");
    assert_eq!(app.exit_code, 0, "{app:#?}");
    assert_eq!(
        app.stdout, "password=rotated/pw\nurl=postgres://example:rotated%2Fpw@db:5432/app\n",
        "{app:#?}"
    );
}
