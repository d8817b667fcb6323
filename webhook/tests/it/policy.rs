//! `webhook policy` as users run it: the real binary on the seeds' example and the shipped
//! example manifests, its exit codes and messages, and every generated permission policy linted
//! by parliament (unknown actions, resource ARNs that do not fit the action).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use secrets_injector_e2e::tools::{venv_program, workspace_root};
use serde_json::{Value, json};

const ACCOUNT: &str = "111122223333";
const KMS_KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const OIDC_PROVIDER: &str = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn policy(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_webhook"))
        .arg("policy")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run webhook policy");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("webhook policy output")
}

/// Runs `webhook policy` and returns its standard output, which must be there.
#[track_caller]
fn ok(args: &[&str]) -> String {
    let output = policy(args, None);
    assert!(
        output.status.success(),
        "webhook policy {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Runs `webhook policy`, which must fail; returns its standard error.
#[track_caller]
fn fails(args: &[&str]) -> String {
    let output = policy(args, None);
    assert_eq!(output.status.code(), Some(1), "webhook policy {args:?}");
    assert!(output.stdout.is_empty(), "a failed run prints no policy");
    String::from_utf8(output.stderr).expect("UTF-8 stderr")
}

/// Lints one policy document with parliament (from the test virtualenv); fails with the
/// findings.
#[track_caller]
fn assert_parliament_clean(document: &str) {
    const SCRIPT: &str = r#"
import sys
try:
    import parliament
except ImportError as error:
    sys.exit(f"parliament is not installed in {sys.executable} ({error}): run ./scripts/venv.sh")
findings = parliament.analyze_policy_string(sys.stdin.read()).findings
for finding in findings:
    print(finding)
sys.exit(1 if findings else 0)
"#;
    let mut child = Command::new(venv_program("python"))
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run parliament");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(document.as_bytes())
        .expect("write the policy");
    let output = child.wait_with_output().expect("parliament output");
    assert!(
        output.status.success(),
        "parliament has findings on\n{document}\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The seeds' example's policy, as docs/iam.md shows it.
fn seeds_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "GetParametersUsEast1",
                "Effect": "Allow",
                "Action": "ssm:GetParameters",
                "Resource": ["arn:aws:ssm:us-east-1:111122223333:parameter/test/parameter"]
            },
            {
                "Sid": "GetSecretValueUsEast1",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": ["arn:aws:secretsmanager:us-east-1:111122223333:secret:test/secret-??????"]
            }
        ]
    })
}

#[test]
fn seeds_example_gets_exactly_its_two_objects() {
    let path = fixture("seeds-example-pod.yaml");
    let text = ok(&["-f", path.to_str().unwrap(), "--account", ACCOUNT]);
    let value: Value = serde_json::from_str(&text).expect("JSON policy");
    assert_eq!(value, seeds_policy());
    // docs/iam.md shows this output verbatim.
    let doc = std::fs::read_to_string(workspace_root().join("docs/iam.md")).expect("docs/iam.md");
    assert!(
        doc.contains(&text),
        "docs/iam.md does not show the seeds' example policy:\n{text}"
    );
    // Deterministic: the same input gives the same bytes.
    assert_eq!(
        text,
        ok(&["-f", path.to_str().unwrap(), "--account", ACCOUNT])
    );
}

/// Templates make no AWS call: the seeds' pod with templates (refreshing too) needs exactly
/// the seeds' policy, and a pod whose templates are invalid is refused as at admission.
#[test]
fn templates_need_no_extra_permission() {
    let mut pod: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(fixture("seeds-example-pod.yaml")).unwrap(),
    )
    .unwrap();
    pod["metadata"]["annotations"]["secrets-injector.io/templates"] = json!(
        "- name: DATABASE_URL\n  template: \"postgres://{{ SECRET_USERNAME }}:{{ SECRET_PASSWORD | urlencode }}@db/app\"\n"
    );
    let text = serde_json::to_string(&pod).unwrap();
    let output = policy(&["--account", ACCOUNT], Some(&text));
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        serde_json::from_slice::<Value>(&output.stdout).unwrap(),
        seeds_policy()
    );
    pod["metadata"]["annotations"]["secrets-injector.io/templates"] =
        json!("- {name: x, template: \"{{ NOPE }}\"}");
    let output = policy(
        &["--account", ACCOUNT],
        Some(&serde_json::to_string(&pod).unwrap()),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("NOPE is not a file the objects write"),
        "{stderr}"
    );
}

#[test]
fn example_manifests_and_standard_input() {
    let examples = workspace_root().join("manifests/examples");
    for file in ["pod.yaml", "deployment.yaml"] {
        let path = examples.join(file);
        let text = ok(&["-f", path.to_str().unwrap(), "--account", ACCOUNT]);
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            seeds_policy(),
            "{file}"
        );
    }
    // Both at once, from standard input (with and without "-f -"): the same statements once.
    let both = format!(
        "{}\n---\n{}",
        std::fs::read_to_string(examples.join("pod.yaml")).unwrap(),
        std::fs::read_to_string(examples.join("deployment.yaml")).unwrap()
    );
    for args in [
        &["--account", ACCOUNT][..],
        &["-f", "-", "--account", ACCOUNT],
    ] {
        let output = policy(args, Some(&both));
        assert!(output.status.success(), "{output:?}");
        assert_eq!(
            serde_json::from_slice::<Value>(&output.stdout).unwrap(),
            seeds_policy()
        );
    }
}

#[test]
fn shipped_example_policy_is_the_commands_output() {
    let examples = workspace_root().join("manifests/examples");
    let pod = examples.join("pod.yaml");
    let text = ok(&[
        "-f",
        pod.to_str().unwrap(),
        "--account",
        ACCOUNT,
        "--kms-key",
        KMS_KEY,
    ]);
    let shipped =
        std::fs::read_to_string(examples.join("iam-policy.json")).expect("iam-policy.json");
    assert_eq!(
        shipped, text,
        "manifests/examples/iam-policy.json is not what webhook policy writes for pod.yaml"
    );
}

#[test]
fn terraform_for_the_seeds_example() {
    let path = fixture("seeds-example-pod.yaml");
    let text = ok(&[
        "-f",
        path.to_str().unwrap(),
        "--account",
        ACCOUNT,
        "--format",
        "terraform",
    ]);
    assert_eq!(
        text,
        r#"data "aws_iam_policy_document" "pod_role" {
  statement {
    sid       = "GetParametersUsEast1"
    effect    = "Allow"
    actions   = ["ssm:GetParameters"]
    resources = ["arn:aws:ssm:us-east-1:111122223333:parameter/test/parameter"]
  }

  statement {
    sid       = "GetSecretValueUsEast1"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = ["arn:aws:secretsmanager:us-east-1:111122223333:secret:test/secret-??????"]
  }
}
"#
    );
}

#[test]
fn trust_policy_for_the_service_account() {
    let path = fixture("seeds-example-pod.yaml");
    let text = ok(&[
        "-f",
        path.to_str().unwrap(),
        "--trust",
        "--oidc-provider",
        OIDC_PROVIDER,
        "--service-account",
        "secrets-demo/app",
    ]);
    let value: Value = serde_json::from_str(&text).unwrap();
    let statement = &value["Statement"][0];
    assert_eq!(statement["Principal"]["Federated"], OIDC_PROVIDER);
    assert_eq!(statement["Action"], "sts:AssumeRoleWithWebIdentity");
    let host = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
    assert_eq!(
        statement["Condition"]["StringEquals"],
        json!({
            format!("{host}:aud"): ["sts.amazonaws.com"],
            format!("{host}:sub"): ["system:serviceaccount:secrets-demo:app"],
        })
    );
}

#[test]
fn errors_name_the_problem_and_exit_non_zero() {
    let path = fixture("seeds-example-pod.yaml");
    let path = path.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["-f", path], "pass --account"),
        (
            &["-f", path, "--account", "1234"],
            "--account \"1234\" is not an AWS account id",
        ),
        (
            &["-f", path, "--account", ACCOUNT, "--partition", "aws-moon"],
            "--partition \"aws-moon\" is not an AWS partition",
        ),
        (
            &[
                "-f",
                path,
                "--account",
                ACCOUNT,
                "--kms-key",
                "arn:aws:kms:us-east-1:111122223333:alias/app",
            ],
            "is an alias",
        ),
        (
            &["-f", "/nonexistent/pod.yaml", "--account", ACCOUNT],
            "reading /nonexistent/pod.yaml",
        ),
        (
            &[
                "-f",
                path,
                "--trust",
                "--service-account",
                "secrets-demo/app",
            ],
            "--trust needs --oidc-provider",
        ),
    ];
    for (args, want) in cases {
        let stderr = fails(args);
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
    // A pod the webhook would deny: the admission message.
    let denied = policy(
        &["--account", ACCOUNT, "--default-region", "us-east-1"],
        Some(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\n  annotations:\n    secrets-injector.io/objects: '- {objectName: x}'\nspec:\n  containers: [{name: a, image: a}]\n",
        ),
    );
    assert_eq!(denied.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains("Pod bad (document 1): ") && stderr.contains("objectType is required"),
        "{stderr}"
    );
}

#[test]
fn parliament_finds_nothing_in_the_generated_policies() {
    let seeds = fixture("seeds-example-pod.yaml");
    assert_parliament_clean(&ok(&["-f", seeds.to_str().unwrap(), "--account", ACCOUNT]));

    let every = fixture("every-object-kind-pod.yaml");
    let every = every.to_str().unwrap();
    let text = ok(&["-f", every, "--account", ACCOUNT, "--kms-key", KMS_KEY]);
    let value: Value = serde_json::from_str(&text).unwrap();
    let actions: Vec<&str> = value["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "ssm:GetParameters",
            "ssm:GetParametersByPath",
            "secretsmanager:GetSecretValue",
            "kms:Decrypt"
        ]
    );
    assert_parliament_clean(&text);

    // With refresh and role chaining: both documents.
    let chained = std::fs::read_to_string(every).unwrap().replace(
        "  annotations:\n",
        "  annotations:\n    secrets-injector.io/refresh-interval: 5m\n    \
             secrets-injector.io/assume-role-arn: arn:aws:iam::123456789012:role/reader\n",
    );
    let output = policy(
        &["--account", ACCOUNT, "--kms-key", KMS_KEY],
        Some(&chained),
    );
    assert!(output.status.success(), "{output:?}");
    let both: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(both["podRole"]["Statement"][0]["Action"], "sts:AssumeRole");
    assert_eq!(
        both["assumedRole"]["Statement"][3]["Action"],
        "secretsmanager:DescribeSecret"
    );
    for role in ["podRole", "assumedRole"] {
        assert_parliament_clean(&serde_json::to_string_pretty(&both[role]).unwrap());
    }
}

#[test]
fn a_secret_prefix_policy_is_its_golden_file_and_parliament_finds_nothing() {
    let pod = fixture("secrets-prefix-pod.yaml");
    let pod = pod.to_str().unwrap();
    let text = ok(&["-f", pod, "--account", ACCOUNT]);
    let golden = std::fs::read_to_string(fixture("secrets-prefix-policy.json"))
        .expect("secrets-prefix-policy.json");
    assert_eq!(
        text, golden,
        "webhook policy no longer writes webhook/tests/fixtures/secrets-prefix-policy.json for \
         secrets-prefix-pod.yaml"
    );
    // docs/iam.md shows it verbatim.
    let doc = std::fs::read_to_string(workspace_root().join("docs/iam.md")).expect("docs/iam.md");
    assert!(
        doc.contains(&text),
        "docs/iam.md does not show the secret prefix policy:\n{text}"
    );
    assert_parliament_clean(&text);

    // With refresh, a failover region and a KMS key: still what parliament accepts, the listing
    // and the batch still on "*" once, the tagged read in both regions.
    let input = std::fs::read_to_string(pod).unwrap().replace(
        "  annotations:\n",
        "  annotations:\n    secrets-injector.io/refresh-interval: 5m\n    \
         secrets-injector.io/failover-region: us-west-2\n",
    );
    let output = policy(&["--account", ACCOUNT, "--kms-key", KMS_KEY], Some(&input));
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    let sids: Vec<&str> = value["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap())
        .collect();
    assert_eq!(
        sids,
        [
            "GetSecretValueUsEast1Tags1",
            "GetSecretValueUsWest2Tags1",
            "ListSecrets",
            "BatchGetSecretValue",
            "DecryptUsEast1"
        ]
    );
    assert_eq!(
        value["Statement"][1]["Condition"]["StringEquals"]["secretsmanager:ResourceTag/team"],
        json!(["payments"])
    );
    assert_parliament_clean(&text);
}
