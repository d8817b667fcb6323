//! Role chaining (`--assume-role-arn`): the injector assumes the role once for the run, with the
//! pod's own (web identity) credentials, before fetching, and fetches with the role's; a refused
//! AssumeRole fails the run at once, naming the role, with nothing fetched. Against moto's STS,
//! the calls counted by the proxy.

use secrets_injector_e2e::seed::{self, call, parameter};
use serde_json::json;

use crate::support::*;

const ROLE: &str = "arn:aws:iam::123456789012:role/secrets-reader";
const OBJECTS: &str = "\
- objectName: /app/user
  objectType: ssmparameter
- objectName: /app/host
  objectType: ssmparameter
- objectName: app/db
  objectType: secretsmanager
- objectName: app/api
  objectType: secretsmanager
";

fn seeded() -> (Moto, Proxy) {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    aws.string("/app/user", "user-SENTINEL");
    aws.string("/app/host", "host-SENTINEL");
    aws.secret("app/db", "db-SENTINEL");
    aws.secret("app/api", "api-SENTINEL");
    let proxy = Proxy::start(moto.addr());
    (moto, proxy)
}

#[test]
fn the_role_is_assumed_once_before_every_fetch() {
    let (_moto, proxy) = seeded();
    let pod = Pod::new(&proxy.endpoint());
    let out = pod.run(
        OBJECTS,
        &[
            &format!("--assume-role-arn={ROLE}"),
            "--assume-role-external-id=tenant-42",
            "--assume-role-duration-seconds=900",
        ],
    );
    out.assert_success();
    assert_eq!(pod.read_string("_app_user"), "user-SENTINEL");
    assert_eq!(pod.read_string("app_api"), "api-SENTINEL");
    // The pod's own credentials once, the role once, then the fetches: four objects, two
    // services, one AssumeRole.
    assert_eq!(
        proxy.count("AssumeRoleWithWebIdentity"),
        1,
        "{:?}",
        proxy.records()
    );
    assert_eq!(proxy.count("AssumeRole"), 1, "{:?}", proxy.records());
    assert_eq!(proxy.count("GetParameters"), 1);
    assert_eq!(proxy.count("GetSecretValue"), 2);
    let records = proxy.records();
    let first_fetch = records
        .iter()
        .position(|r| r.operation.starts_with("Get"))
        .expect("a fetch");
    let assume = records
        .iter()
        .position(|r| r.operation == "AssumeRole")
        .expect("AssumeRole");
    assert!(assume < first_fetch, "{records:?}");
    let role_line = out
        .logs()
        .into_iter()
        .find(|l| l["message"] == "role assumed")
        .expect("a log line for the assumed role");
    assert_eq!(role_line["role"], ROLE);
}

#[test]
fn a_refused_assume_role_fails_at_once_naming_the_role() {
    // (moto's denial is not in STS's error shape, so the SDK finds no code in it and the message
    // gives the status; AWS's own says AccessDenied and the action.)
    // The pod's role "app" may fetch but not sts:AssumeRole, and moto enforces IAM after the
    // setup calls and the unsigned web identity call, so STS refuses the role as AWS would.
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["ssm:GetParameters", "secretsmanager:GetSecretValue"],
            "Resource": "*"
        }]
    });
    let calls = [
        call(
            "iam",
            "create_role",
            json!({"RoleName": "app", "AssumeRolePolicyDocument": "{}"}),
        ),
        call(
            "iam",
            "put_role_policy",
            json!({"RoleName": "app", "PolicyName": "fetch", "PolicyDocument": policy.to_string()}),
        ),
        parameter("/app/user", "user-SENTINEL", "String"),
    ];
    let moto = Moto::start_enforcing_iam(calls.len() + 1);
    seed::seed(&moto.endpoint(), REGION, &calls);
    let proxy = Proxy::start(moto.addr());
    let pod = Pod::new(&proxy.endpoint());
    let out = pod.run(OBJECTS, &[&format!("--assume-role-arn={ROLE}")]);
    out.assert_failure();
    for text in [&out.stderr, &out.termination_log] {
        assert!(
            text.starts_with(
                "secrets-injector: the role could not be assumed; nothing was fetched\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "AssumeRoleFailed: cannot assume the role {ROLE} with the pod's own credentials: HTTP 403 from STS;"
            )) && text.contains("the role's trust policy must allow the pod's role"),
            "{text}"
        );
    }
    assert!(!out.stderr.contains("ASIA"), "{}", out.stderr);
    assert_eq!(
        proxy.count("GetParameters") + proxy.count("GetSecretValue"),
        0
    );
    assert!(pod.entries().is_empty());
}

#[test]
fn bad_role_flags_are_usage_errors() {
    let pod = Pod::new("http://127.0.0.1:9");
    let role = format!("--assume-role-arn={ROLE}");
    let cases: [(&[&str], &str); 3] = [
        (
            &["--assume-role-arn=arn:aws:iam::123456789012:user/bob"],
            "is not the ARN of one IAM role",
        ),
        (
            &[&role, "--assume-role-duration-seconds=7200"],
            "from 900 to 3600",
        ),
        (
            &["--assume-role-external-id=tenant-42"],
            "--assume-role-arn",
        ),
    ];
    for (args, expected) in cases {
        let out = pod.run(OBJECTS, args);
        assert_eq!(out.code, 2, "{args:?}: {out:#?}");
        assert!(out.stderr.contains(expected), "{args:?}: {}", out.stderr);
    }
}
