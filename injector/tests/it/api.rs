//! The injector's AWS calls, seen through a counting proxy in front of moto: API economy,
//! credentials once per region, throttling, failover, access denied and the deadline.

use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;

use crate::support::*;

fn many_objects(aws: &Seeder, parameters: usize, secrets: usize) -> String {
    let mut objects = String::new();
    for i in 0..parameters {
        aws.put(
            &format!("/bulk/p{i:02}"),
            &format!("p{i}-SENTINEL"),
            ParameterType::SecureString,
        );
        objects.push_str(&format!(
            "- {{objectName: /bulk/p{i:02}, objectType: ssmparameter}}\n"
        ));
    }
    for i in 0..secrets {
        aws.secret(&format!("bulk/s{i:02}"), &format!("s{i}-SENTINEL"));
        objects.push_str(&format!(
            "- {{objectName: bulk/s{i:02}, objectType: secretsmanager}}\n"
        ));
    }
    objects
}

#[test]
fn calls_are_batched_and_credentials_fetched_once() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    let mut objects = many_objects(&aws, 25, 10);
    for i in 0..23 {
        aws.string(&format!("/tree/n{i:02}"), &format!("t{i}-SENTINEL"));
    }
    objects.push_str("- {objectName: /tree, objectType: ssmparameterpath, objectAlias: tree}\n");
    let pod = Pod::new(&proxy.endpoint());
    let out = pod.run(&objects, &[]);
    out.assert_success();
    assert_eq!(pod.files().len(), 25 + 10 + 23);
    assert_eq!(pod.read_string("_bulk_p24"), "p24-SENTINEL");
    assert_eq!(pod.read_string("tree/n22"), "t22-SENTINEL");
    assert!(proxy.count("GetParameters") <= 3, "{:?}", proxy.records());
    assert_eq!(proxy.count("GetSecretValue"), 10);
    assert_eq!(proxy.count("GetParametersByPath"), 3);
    assert_eq!(proxy.count("AssumeRoleWithWebIdentity"), 1);
    assert_eq!(
        proxy.count_in("GetParameters", REGION),
        proxy.count("GetParameters")
    );
    assert_eq!(
        proxy.records().len(),
        proxy.count("GetParameters") + 10 + 3 + 1
    );
    let summary = out.summary();
    assert_eq!(summary["get_parameters"], proxy.count("GetParameters"));
    assert_eq!(summary["get_secret_value"], 10);
    assert_eq!(summary["get_parameters_by_path"], 3);
}

#[test]
fn throttling_is_ridden_out() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    let mut objects = many_objects(&aws, 25, 10);
    for i in 0..12 {
        aws.string(&format!("/tree/n{i:02}"), &format!("t{i}-SENTINEL"));
    }
    objects.push_str("- {objectName: /tree, objectType: ssmparameterpath, objectAlias: tree}\n");
    // Two of every three SSM and Secrets Manager calls are throttled.
    proxy.set_faults(vec![Fault::share(FaultKind::Throttling, 2, 3)]);
    let pod = Pod::new(&proxy.endpoint());
    let out = pod.run(&objects, &[]);
    out.assert_success();
    assert_eq!(pod.files().len(), 25 + 10 + 12);
    assert!(proxy.faulted() > 10, "{:?}", proxy.records());
    let summary = out.summary();
    let counted = summary["get_parameters"].as_u64().unwrap()
        + summary["get_secret_value"].as_u64().unwrap()
        + summary["get_parameters_by_path"].as_u64().unwrap();
    assert_eq!(
        counted as usize,
        proxy.records().len() - 1,
        "every attempt is counted"
    );
    assert_eq!(proxy.count("AssumeRoleWithWebIdentity"), 1);
}

#[test]
fn a_region_that_fails_with_5xx_fails_over_with_its_own_credentials() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let east = Seeder::new(&moto.endpoint(), REGION);
    let west = Seeder::new(&moto.endpoint(), FAILOVER_REGION);
    east.string("/app/db", "east-SENTINEL");
    west.string("/app/db-west", "west-SENTINEL");
    east.secret("app/secret", "east-secret-SENTINEL");
    west.secret("app/secret-west", "west-secret-SENTINEL");
    let v2 = west.put_secret("app/secret-west", "west-secret-2-SENTINEL");
    assert!(!v2.is_empty());
    west.string("/west/cfg/a", "west-a-SENTINEL");
    east.string("/east/only", "east-only-SENTINEL");
    let objects = r#"
- objectName: /app/db
  objectType: ssmparameter
  objectAlias: db
  failoverObject: {objectName: /app/db-west}
- objectName: app/secret
  objectType: secretsmanager
  objectAlias: secret
  failoverObject: {objectName: app/secret-west, objectVersionLabel: AWSPREVIOUS}
- objectName: /east/cfg
  objectType: ssmparameterpath
  objectAlias: cfg
  failoverObject: {objectName: /west/cfg}
"#;
    proxy.set_faults(vec![
        Fault::always(FaultKind::Unavailable).in_region(REGION),
    ]);
    let pod = Pod::new(&proxy.endpoint());
    let out = pod.run(
        objects,
        &[
            "--failover-region",
            FAILOVER_REGION,
            "--path-translation",
            "False",
        ],
    );
    out.assert_success();
    assert_eq!(
        pod.files(),
        expect_files(&[
            ("db", b"west-SENTINEL", 0o644),
            ("secret", b"west-secret-SENTINEL", 0o644),
            ("cfg/a", b"west-a-SENTINEL", 0o644),
        ])
    );
    // Credentials once per region; the primary retried a few times, the failover once each.
    assert_eq!(proxy.count("AssumeRoleWithWebIdentity"), 2);
    assert_eq!(proxy.count_in("GetParameters", FAILOVER_REGION), 1);
    assert_eq!(proxy.count_in("GetSecretValue", FAILOVER_REGION), 1);
    assert_eq!(proxy.count_in("GetParametersByPath", FAILOVER_REGION), 1);
    assert!(proxy.count_in("GetParameters", REGION) > 1);
    let warnings = out
        .logs()
        .into_iter()
        .filter(|l| l["message"] == "fetching in the failover region")
        .count();
    assert_eq!(warnings, 3);

    // Without a failoverObject, the same outage fails the object after a few quick attempts.
    proxy.clear();
    let out = pod.run(
        "- {objectName: /east/only, objectType: ssmparameter}",
        &["--failover-region", FAILOVER_REGION],
    );
    out.assert_failure();
    assert!(
        out.stderr.contains(
            r#"objects[0] (objectName "/east/only"): ServiceUnavailable: Parameter Store in us-east-1 did not answer ssm:GetParameters"#
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("gave up after 5 attempts"),
        "{}",
        out.stderr
    );
    assert_eq!(proxy.count_in("GetParameters", REGION), 5);
    assert_eq!(proxy.count_in("GetParameters", FAILOVER_REGION), 0);
    assert!(out.elapsed < Duration::from_secs(20), "{:?}", out.elapsed);
}

#[test]
fn not_found_and_access_denied_never_fail_over() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let west = Seeder::new(&moto.endpoint(), FAILOVER_REGION);
    west.string("/app/db-west", "west-SENTINEL");
    west.secret("app/secret-west", "west-secret-SENTINEL");
    let objects = r#"
- objectName: /app/db
  objectType: ssmparameter
  objectAlias: db
  failoverObject: {objectName: /app/db-west}
- objectName: app/secret
  objectType: secretsmanager
  objectAlias: secret
  failoverObject: {objectName: app/secret-west}
"#;
    let pod = Pod::new(&proxy.endpoint());
    let out = pod.run(objects, &["--failover-region", FAILOVER_REGION]);
    out.assert_failure();
    assert!(out.stderr.contains("ParameterNotFound"), "{}", out.stderr);
    assert!(
        out.stderr.contains("ResourceNotFoundException"),
        "{}",
        out.stderr
    );

    proxy.set_faults(vec![
        Fault::always(FaultKind::AccessDenied).for_operation("GetSecretValue"),
    ]);
    let out = pod.run(objects, &["--failover-region", FAILOVER_REGION]);
    out.assert_failure();
    assert!(out.stderr.contains(r#"objects[1] (objectName "app/secret"): AccessDeniedException: the role of this pod's service account needs secretsmanager:GetSecretValue on arn:aws:secretsmanager:us-east-1:*:secret:app/secret-*"#), "{}", out.stderr);
    assert_eq!(
        proxy
            .records()
            .iter()
            .filter(|r| r.region.as_deref() == Some(FAILOVER_REGION))
            .count(),
        0
    );
    assert!(pod.entries().is_empty());
}

#[test]
fn a_batch_refused_as_a_whole_is_asked_name_by_name() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    let mut objects = String::new();
    for name in ["/app/a", "/app/b", "/app/denied", "/app/c", "/app/d"] {
        aws.string(name, "v-SENTINEL");
        objects.push_str(&format!(
            "- {{objectName: {name}, objectType: ssmparameter}}\n"
        ));
    }
    proxy.set_faults(vec![
        Fault::always(FaultKind::AccessDenied)
            .for_operation("GetParameters")
            .when_body_contains("/app/denied"),
    ]);
    let pod = Pod::new(&proxy.endpoint());
    let out = pod.run(&objects, &[]);
    out.assert_failure();
    let failed: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("objects["))
        .collect();
    assert_eq!(
        failed,
        vec![
            r#"objects[2] (objectName "/app/denied"): AccessDeniedException: the role of this pod's service account needs ssm:GetParameters on arn:aws:ssm:us-east-1:*:parameter/app/denied (and kms:Decrypt on the key of a SecureString with a customer-managed key)"#
        ],
        "{}",
        out.stderr
    );
    // One refused batch, then one call per name.
    assert_eq!(proxy.count("GetParameters"), 1 + 5);
    assert!(pod.entries().is_empty());
}

#[test]
fn endless_throttling_stops_at_the_deadline() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    let objects = many_objects(&aws, 3, 2);
    proxy.set_faults(vec![Fault::always(FaultKind::Throttling)]);
    let pod = Pod::new(&proxy.endpoint());
    let out = pod.run(&objects, &["--deadline", "3s"]);
    out.assert_failure();
    assert!(out.elapsed < Duration::from_secs(10), "{:?}", out.elapsed);
    let failed: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("objects["))
        .collect();
    assert_eq!(failed.len(), 5, "{}", out.stderr);
    for line in failed {
        assert!(
            line.contains("ThrottlingException") || line.contains("DeadlineExceeded"),
            "{line}"
        );
    }
    assert!(pod.entries().is_empty());
}

#[test]
fn endpoint_per_service_is_honoured() {
    let moto = Moto::start();
    let ssm_proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    aws.string("/app/p", "p-SENTINEL");
    aws.secret("app/s", "s-SENTINEL");
    let mut pod = Pod::new(&moto.endpoint());
    pod.env
        .push(("AWS_ENDPOINT_URL_SSM".into(), ssm_proxy.endpoint()));
    let out = pod.run(
        "- {objectName: /app/p, objectType: ssmparameter}\n- {objectName: app/s, objectType: secretsmanager}",
        &[],
    );
    out.assert_success();
    assert_eq!(ssm_proxy.count("GetParameters"), 1);
    assert_eq!(ssm_proxy.count("GetSecretValue"), 0);
    assert_eq!(pod.read_string("app_s"), "s-SENTINEL");
}
