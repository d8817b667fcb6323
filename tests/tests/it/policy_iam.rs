//! `webhook policy` against IAM as moto enforces it: a role carrying exactly the generated policy
//! lets the real injector, under web identity for that role, fetch every object of the pod; the
//! same policy without any one of its statements makes it fail with AccessDenied in the
//! termination message. For a Secrets Manager prefix, moto does not check the `GetSecretValue`
//! inside a batch: the statements it can check are `ListSecrets` and `BatchGetSecretValue`
//! (the `GetSecretValue` statement and its tag condition are held by a golden file and
//! parliament, in the webhook's tests).
//!
//! moto (started with `INITIAL_NO_AUTH_ACTION_COUNT`) enforces IAM after its first N calls, and
//! those N include the setup calls and the injector's unsigned `AssumeRoleWithWebIdentity` (a
//! call past N with the seeding keys is refused as `InvalidClientTokenId`, an
//! `AssumeRoleWithWebIdentity` past N fails with HTTP 500). So N is the setup calls plus one.
//! moto matches SSM and Secrets Manager calls against resource `*` only, so the statements'
//! resources are widened to `*` here: this checks the actions; the ARNs are checked by the unit
//! tests and parliament. moto writes its denials as XML whatever the service; the test proxy
//! gives them to the injector in the JSON protocol that SSM and Secrets Manager use, as AWS does.

use std::path::Path;
use std::process::Command;

use secrets_injector_e2e::moto::Moto;
use secrets_injector_e2e::proxy::Proxy;
use secrets_injector_e2e::seed::{self, call, parameter, secret};
use secrets_injector_e2e::tools::{workspace_binary, workspace_root};
use serde_json::{Value, json};

const REGION: &str = "us-east-1";
/// moto's account.
const ACCOUNT: &str = "123456789012";
const ROLE_NAME: &str = "app";

fn fixture(name: &str) -> std::path::PathBuf {
    workspace_root().join("webhook/tests/fixtures").join(name)
}

/// `webhook policy` for the pod in `fixture`, as JSON.
fn generated_policy(fixture: &Path) -> Value {
    let output = Command::new(workspace_binary("webhook"))
        .arg("policy")
        .arg("-f")
        .arg(fixture)
        .args(["--account", ACCOUNT])
        .output()
        .expect("run webhook policy");
    assert!(
        output.status.success(),
        "webhook policy failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("a JSON policy")
}

/// The init container's `args`, as `webhook inject` writes them for the pod in `fixture`.
fn injector_args(fixture: &Path) -> Vec<String> {
    let output = Command::new(workspace_binary("webhook"))
        .arg("inject")
        .arg("-f")
        .arg(fixture)
        .args(["--injector-image", "injector:test"])
        .output()
        .expect("run webhook inject");
    assert!(
        output.status.success(),
        "webhook inject failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pod: Value =
        serde_saphyr::from_str(&String::from_utf8_lossy(&output.stdout)).expect("YAML pod");
    pod["spec"]["initContainers"]
        .as_array()
        .and_then(|containers| containers.iter().find(|c| c["name"] == "secrets-injector"))
        .and_then(|c| c["args"].as_array())
        .expect("the injector's init container")
        .iter()
        .map(|arg| arg.as_str().expect("string arg").to_owned())
        .collect()
}

/// The policy with every resource widened to `*` (what moto can check), without the statement
/// `without`.
fn for_moto(policy: &Value, without: Option<&str>) -> Value {
    let statements: Vec<Value> = policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .filter(|s| Some(s["Sid"].as_str().expect("Sid")) != without)
        .map(|s| {
            json!({"Sid": s["Sid"], "Effect": s["Effect"], "Action": s["Action"], "Resource": "*"})
        })
        .collect();
    json!({"Version": policy["Version"], "Statement": statements})
}

/// What one run of the injector left.
struct Outcome {
    code: Option<i32>,
    stderr: String,
    termination_log: String,
    files: Vec<String>,
}

/// Starts moto enforcing IAM, creates the role with `policy` and the objects, and runs the real
/// injector under web identity for the role with the init container's own arguments.
fn run_injector(fixture: &Path, policy: &Value, objects: &[Value]) -> Outcome {
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.example")},
            "Action": "sts:AssumeRoleWithWebIdentity"
        }]
    });
    let mut calls = vec![
        call(
            "iam",
            "create_role",
            json!({"RoleName": ROLE_NAME, "AssumeRolePolicyDocument": trust.to_string()}),
        ),
        call(
            "iam",
            "put_role_policy",
            json!({"RoleName": ROLE_NAME, "PolicyName": "secrets", "PolicyDocument": policy.to_string()}),
        ),
    ];
    calls.extend_from_slice(objects);
    // Every setup call, and the injector's one AssumeRoleWithWebIdentity.
    let moto = Moto::start_enforcing_iam(calls.len() + 1);
    seed::seed(&moto.endpoint(), REGION, &calls);
    let proxy = Proxy::start(moto.addr());
    proxy.json_errors();

    let dir = tempfile::tempdir().expect("temp dir");
    let mount = dir.path().join("mnt");
    std::fs::create_dir(&mount).expect("mount dir");
    let token = dir.path().join("token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.e30.sig").expect("token");
    let termination_log = dir.path().join("termination-log");
    std::fs::write(&termination_log, "").expect("termination log");
    let args: Vec<String> = injector_args(fixture)
        .into_iter()
        .map(|arg| {
            if arg.starts_with("--mount-path=") {
                format!("--mount-path={}", mount.display())
            } else {
                arg
            }
        })
        .collect();
    let output = Command::new(workspace_binary("injector"))
        .env_clear()
        .env("HOME", dir.path())
        .env(
            "AWS_ROLE_ARN",
            format!("arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}"),
        )
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token)
        .env("AWS_ENDPOINT_URL", proxy.endpoint())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(&args)
        .arg(format!("--termination-log={}", termination_log.display()))
        .args(["--deadline=30s", "--log-format=text"])
        .output()
        .expect("run the injector");
    let mut files: Vec<String> = std::fs::read_dir(&mount)
        .expect("read the mount")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with(".."))
        .collect();
    files.sort();
    Outcome {
        code: output.status.code(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        termination_log: std::fs::read_to_string(&termination_log).expect("termination log"),
        files,
    }
}

impl Outcome {
    /// The run succeeded and wrote exactly these top-level names.
    #[track_caller]
    fn assert_wrote(&self, names: &[&str]) {
        assert_eq!(
            self.code,
            Some(0),
            "the injector failed: {}\n{}",
            self.stderr,
            self.termination_log
        );
        assert_eq!(self.files, names);
    }
}

fn seeds_objects() -> Vec<Value> {
    vec![
        parameter("/test/parameter", "gonitest", "SecureString"),
        secret(
            "test/secret",
            r#"{"username":"example","password":"example1234"}"#,
        ),
    ]
}

fn every_kind_objects() -> Vec<Value> {
    let mut objects = seeds_objects();
    objects.extend([
        parameter("/app/db", "db-value", "String"),
        call(
            "ssm",
            "label_parameter_version",
            json!({"Name": "/app/db", "ParameterVersion": 1, "Labels": ["stable"]}),
        ),
        parameter("/app/config/a", "1", "String"),
        parameter("/app/config/b/c", "2", "String"),
        secret("app/api-key", "key-value"),
    ]);
    objects
}

#[test]
fn seeds_example_runs_with_exactly_its_policy() {
    let fixture = fixture("seeds-example-pod.yaml");
    let policy = for_moto(&generated_policy(&fixture), None);
    let outcome = run_injector(&fixture, &policy, &seeds_objects());
    outcome.assert_wrote(&[
        "SECRET_PASSWORD",
        "SECRET_USERNAME",
        "_test_parameter",
        "test_secret",
    ]);
}

#[test]
fn every_object_kind_runs_and_each_statement_is_needed() {
    let fixture = fixture("every-object-kind-pod.yaml");
    let generated = generated_policy(&fixture);
    let outcome = run_injector(&fixture, &for_moto(&generated, None), &every_kind_objects());
    outcome.assert_wrote(&[
        "SECRET_USERNAME",
        "_test_parameter",
        "api-key",
        "config",
        "db",
        "test_secret",
    ]);

    let statements: Vec<(&str, &str)> = generated["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .map(|s| {
            (
                s["Sid"].as_str().expect("Sid"),
                s["Action"].as_str().expect("Action"),
            )
        })
        .collect();
    let sids: Vec<&str> = statements.iter().map(|(sid, _)| *sid).collect();
    assert_eq!(
        sids,
        [
            "GetParametersUsEast1",
            "GetParametersByPathUsEast1",
            "GetSecretValueUsEast1"
        ]
    );
    for (sid, action) in statements {
        let policy = for_moto(&generated, Some(sid));
        let outcome = run_injector(&fixture, &policy, &every_kind_objects());
        assert_eq!(
            outcome.code,
            Some(1),
            "without {sid} the injector must fail: {}",
            outcome.stderr
        );
        assert!(
            outcome.termination_log.contains("AccessDenied"),
            "without {sid} the termination message names no AccessDenied:\n{}",
            outcome.termination_log
        );
        assert!(
            outcome
                .termination_log
                .contains(&format!("needs {action} on")),
            "without {sid} the termination message does not say {action} is needed:\n{}",
            outcome.termination_log
        );
        assert!(
            outcome.files.is_empty(),
            "a failed run writes nothing: {:?}",
            outcome.files
        );
    }
}

/// Two secrets the prefix pod asks for, and one AWS's filters would let through.
fn prefix_objects() -> Vec<Value> {
    let tagged = |name: &str, value: &str, tags: Value| {
        call(
            "secretsmanager",
            "create_secret",
            json!({"Name": name, "SecretString": value, "Tags": tags}),
        )
    };
    vec![
        tagged(
            "prod/payments/db",
            "db-value",
            json!([{"Key": "team", "Value": "payments"}]),
        ),
        tagged(
            "prod/payments/api/key",
            "key-value",
            json!([{"Key": "team", "Value": "payments"}]),
        ),
        tagged(
            "prod/payments/ops",
            "ops-value",
            json!([{"Key": "team", "Value": "ops"}, {"Key": "env", "Value": "payments"}]),
        ),
    ]
}

#[test]
fn a_secret_prefix_runs_with_its_policy_and_needs_list_and_batch() {
    let fixture = fixture("secrets-prefix-pod.yaml");
    let generated = generated_policy(&fixture);
    let outcome = run_injector(&fixture, &for_moto(&generated, None), &prefix_objects());
    outcome.assert_wrote(&["payments"]);
    for (sid, action) in [
        ("ListSecrets", "secretsmanager:ListSecrets"),
        ("BatchGetSecretValue", "secretsmanager:BatchGetSecretValue"),
    ] {
        let outcome = run_injector(
            &fixture,
            &for_moto(&generated, Some(sid)),
            &prefix_objects(),
        );
        assert_eq!(
            outcome.code,
            Some(1),
            "without {sid} the injector must fail: {}",
            outcome.stderr
        );
        assert!(
            outcome.termination_log.contains("AccessDenied")
                && outcome.termination_log.contains(&format!(
                    "the role of this pod's service account needs {action} on Resource \"*\""
                )),
            "without {sid} the termination message does not name {action}:\n{}",
            outcome.termination_log
        );
        assert!(
            outcome.files.is_empty(),
            "a failed run writes nothing: {:?}",
            outcome.files
        );
    }
}
