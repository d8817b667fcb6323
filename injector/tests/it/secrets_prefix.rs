//! `objectType: secretsmanagerpath` against moto, through the counting proxy: exactly the
//! secrets asked for (AWS's filters let more through), the calls it costs (the proxy holds every
//! `BatchGetSecretValue` to AWS's 20, which moto does not), its limits and failures, failover,
//! and the refresh sidecar's listing: secrets added, rotated and removed, and an empty listing.

use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::Tag;

use crate::support::*;

const PAYMENTS: &str = "- {objectName: prod/payments/, objectType: secretsmanagerpath, \
                        objectAlias: payments, tags: {team: payments}}";

/// Creates a secret with these tags: a string, or bytes when `value` is not UTF-8.
fn create(aws: &Seeder, name: &str, value: &[u8], tags: &[(&str, &str)]) -> String {
    let tags: Vec<Tag> = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
        .collect();
    let request = aws.secrets.create_secret().name(name).set_tags(Some(tags));
    let request = match std::str::from_utf8(value) {
        Ok(text) => request.secret_string(text),
        Err(_) => request.secret_binary(Blob::new(value)),
    };
    let out = aws
        .block_on(request.send())
        .unwrap_or_else(|e| panic!("create secret {name}: {e:?}"));
    out.arn().expect("arn").to_owned()
}

const TEAM: &[(&str, &str)] = &[("team", "payments")];

/// Three secrets the object asks for, and six that AWS's filters (or a careless prefix) would
/// let through.
fn seed_payments(aws: &Seeder) {
    create(aws, "prod/payments/db", b"db-SENTINEL", TEAM);
    create(
        aws,
        "prod/payments/api/key",
        b"key-SENTINEL",
        &[("env", "prod"), ("team", "payments")],
    );
    create(aws, "prod/payments/cert", &[0, 1, 0xfe, 0xff], TEAM);
    // tag-key "team" and tag-value "payments" each match, but not as one pair.
    create(
        aws,
        "prod/payments/ops",
        b"ops-SENTINEL",
        &[("team", "ops"), ("env", "payments")],
    );
    // The filters match prefixes of values and keys.
    create(
        aws,
        "prod/payments/old",
        b"old-SENTINEL",
        &[("team", "payments-old")],
    );
    create(
        aws,
        "prod/payments/teams",
        b"teams-SENTINEL",
        &[("teams", "payments")],
    );
    create(aws, "prod/payments/untagged", b"untagged-SENTINEL", &[]);
    // Outside the prefix: one word longer, and another case.
    create(aws, "prod/paymentsX", b"x-SENTINEL", TEAM);
    create(aws, "Prod/payments/upper", b"upper-SENTINEL", TEAM);
}

fn file_names(pod: &Pod) -> Vec<String> {
    pod.files().into_keys().collect()
}

#[test]
fn only_the_secrets_asked_for_are_written_in_two_calls() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    seed_payments(&aws);
    let pod = Pod::new(&proxy.endpoint());
    let out = pod.run(PAYMENTS, &[]);
    out.assert_success();
    assert_eq!(
        pod.files(),
        expect_files(&[
            ("payments/api_key", b"key-SENTINEL", 0o644),
            ("payments/cert", &[0, 1, 0xfe, 0xff], 0o644),
            ("payments/db", b"db-SENTINEL", 0o644),
        ])
    );
    assert_eq!(proxy.count("ListSecrets"), 1, "{:?}", proxy.records());
    assert_eq!(proxy.items("BatchGetSecretValue"), [3]);
    assert_eq!(proxy.count("GetSecretValue"), 0);
    let summary = out.summary();
    assert_eq!(summary["list_secrets"], 1);
    assert_eq!(summary["batch_get_secret_value"], 1);
    assert_eq!(summary["files"], 3);
}

#[test]
fn n_secrets_cost_a_listing_per_hundred_and_a_read_per_twenty() {
    const N: usize = 205;
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    for i in 0..N {
        let value = format!("v{i}-SENTINEL");
        create(&aws, &format!("bulk/s{i:03}"), value.as_bytes(), &[]);
    }
    create(&aws, "bulkhead/not-below", b"no-SENTINEL", &[]);
    let pod = Pod::new(&proxy.endpoint());
    let objects = "- {objectName: bulk/, objectType: secretsmanagerpath, objectAlias: bulk}";
    let out = pod.run(objects, &[]);
    out.assert_success();
    let files = pod.files();
    assert_eq!(files.len(), N);
    assert_eq!(files["bulk/s204"].0, b"v204-SENTINEL");
    assert_eq!(proxy.count("ListSecrets"), N.div_ceil(100));
    let batches = proxy.items("BatchGetSecretValue");
    assert_eq!(batches.len(), N.div_ceil(20), "{batches:?}");
    assert!(batches.iter().all(|&n| n <= 20), "{batches:?}");
    assert_eq!(batches.iter().sum::<usize>(), N);
    assert_eq!(proxy.faulted(), 0, "no call over AWS's limits");
    assert_eq!(out.summary()["batch_get_secret_value"], N.div_ceil(20));
}

#[test]
fn over_the_limit_fails_before_reading_anything() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    for i in 0..5 {
        create(&aws, &format!("many/s{i}"), b"SENTINEL", &[]);
    }
    let pod = Pod::new(&proxy.endpoint());
    let objects = "- {objectName: many/, objectType: secretsmanagerpath, objectAlias: many}";
    let out = pod.run(objects, &["--max-secrets-per-object=3"]);
    out.assert_failure();
    assert!(
        out.termination_log.contains(
            "objects[0] (objectName \"many/\"): TooManySecrets: more than 3 secrets in \
             us-east-1 match, over the limit of --max-secrets-per-object (3)"
        ),
        "{}",
        out.termination_log
    );
    assert_eq!(proxy.count("BatchGetSecretValue"), 0);
    assert!(pod.entries().is_empty(), "{:?}", pod.entries());
    // The flag is bounded.
    let out = pod.run(objects, &["--max-secrets-per-object=0"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("not a whole number from 1 to 10000"),
        "{}",
        out.stderr
    );
}

#[test]
fn two_secrets_that_give_one_file_are_named_both() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    create(&aws, "app/db/user", b"a-SENTINEL", &[]);
    create(&aws, "app/db_user", b"b-SENTINEL", &[]);
    let pod = Pod::new(&moto.endpoint());
    let out = pod.run(
        "- {objectName: app/, objectType: secretsmanagerpath, objectAlias: app}",
        &[],
    );
    out.assert_failure();
    assert!(
        out.termination_log.contains(
            "FileConflict: secrets \"app/db/user\" and \"app/db_user\" both need the file \
             app/db_user (path translation _)"
        ),
        "{}",
        out.termination_log
    );
    // With subdirectories they are two files.
    let out = pod.run(
        "- {objectName: app/, objectType: secretsmanagerpath, objectAlias: app}",
        &["--path-translation=False"],
    );
    out.assert_success();
    assert_eq!(file_names(&pod), ["app/db/user", "app/db_user"]);
}

#[test]
fn nothing_found_fails_unless_optional() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    create(
        &aws,
        "prod/payments/ops",
        b"SENTINEL",
        &[("team", "ops"), ("env", "payments")],
    );
    let pod = Pod::new(&moto.endpoint());
    let out = pod.run(PAYMENTS, &[]);
    out.assert_failure();
    assert!(
        out.termination_log.contains(
            "SecretsNotFound: no secret in us-east-1 has a name starting with \"prod/payments/\" \
             with the tags team=payments"
        ),
        "{}",
        out.termination_log
    );
    let optional = "- {objectName: prod/payments/, objectType: secretsmanagerpath, \
                    objectAlias: payments, tags: {team: payments}, optional: true}";
    let out = pod.run(optional, &[]);
    out.assert_success();
    assert_eq!(out.summary()["skipped"], 1);
    assert!(pod.files().is_empty());
}

#[test]
fn a_missing_permission_is_named() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    seed_payments(&aws);
    let pod = Pod::new(&proxy.endpoint());
    let cases = [
        (
            Fault::always(FaultKind::AccessDenied).for_operation("ListSecrets"),
            "AccessDeniedException: the role of this pod's service account needs \
             secretsmanager:ListSecrets on Resource \"*\" (it takes no resource)",
        ),
        (
            Fault::always(FaultKind::AccessDenied).for_operation("BatchGetSecretValue"),
            "AccessDeniedException: the role of this pod's service account needs \
             secretsmanager:BatchGetSecretValue on Resource \"*\" (it takes no resource), and \
             secretsmanager:GetSecretValue on \
             arn:aws:secretsmanager:us-east-1:*:secret:prod/payments/*",
        ),
        (
            Fault::always(FaultKind::DeniedInBatch)
                .for_operation("BatchGetSecretValue")
                .when_body_contains("prod/payments/db"),
            "AccessDeniedException: secret \"prod/payments/db\": the role of this pod's service \
             account needs secretsmanager:GetSecretValue on this secret",
        ),
    ];
    for (fault, message) in cases {
        proxy.set_faults(vec![fault]);
        let out = pod.run(PAYMENTS, &[]);
        out.assert_failure();
        assert!(
            out.termination_log.contains(&format!(
                "objects[0] (objectName \"prod/payments/\"): {message}"
            )),
            "expected {message:?} in\n{}",
            out.termination_log
        );
        assert!(pod.entries().is_empty(), "{:?}", pod.entries());
    }
}

#[test]
fn the_failover_region_lists_and_reads_the_whole_object() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let west = Seeder::new(&moto.endpoint(), FAILOVER_REGION);
    create(&west, "prod/payments/db", b"west-SENTINEL", TEAM);
    create(
        &west,
        "prod/payments/ops",
        b"ops-SENTINEL",
        &[("team", "ops")],
    );
    proxy.set_faults(vec![
        Fault::always(FaultKind::Unavailable)
            .for_operation("ListSecrets")
            .in_region(REGION),
    ]);
    let pod = Pod::new(&proxy.endpoint());
    let out = pod.run(PAYMENTS, &["--failover-region", FAILOVER_REGION]);
    out.assert_success();
    assert_eq!(
        pod.files(),
        expect_files(&[("payments/db", b"west-SENTINEL", 0o644)])
    );
    assert!(proxy.count_in("ListSecrets", REGION) >= 1);
    assert_eq!(proxy.count_in("ListSecrets", FAILOVER_REGION), 1);
    assert_eq!(proxy.count_in("BatchGetSecretValue", FAILOVER_REGION), 1);
    assert_eq!(proxy.count_in("BatchGetSecretValue", REGION), 0);
}

#[test]
fn decode_base64_writes_every_secret_decoded_and_names_one_that_is_not() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    create(&aws, "certs/a", b"aGk=", &[]);
    create(&aws, "certs/b", b"/wCA", &[]);
    let pod = Pod::new(&moto.endpoint());
    let objects = "- {objectName: certs/, objectType: secretsmanagerpath, objectAlias: certs, \
                   decode: base64}";
    pod.run(objects, &[]).assert_success();
    assert_eq!(
        pod.files(),
        expect_files(&[
            ("certs/a", b"hi", 0o644),
            ("certs/b", &[0xff, 0x00, 0x80], 0o644)
        ])
    );
    create(&aws, "certs/c", b"not-base64-SENTINEL!", &[]);
    let out = pod.run(objects, &[]);
    out.assert_failure();
    assert!(
        out.termination_log.contains(
            "objects[0] (objectName \"certs/\"): InvalidEncoding: the value for certs/c (secret \
             \"certs/c\") is not valid base64 (decode: base64)"
        ),
        "{}",
        out.termination_log
    );
}

const FAST: &[&str] = &["--interval=1s", "--deadline=3s"];

fn outcomes(cycles: &[serde_json::Value]) -> Vec<&str> {
    cycles
        .iter()
        .map(|c| c["outcome"].as_str().expect("outcome"))
        .collect()
}

#[test]
fn refresh_adds_rotates_and_removes_secrets_after_two_listings() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    seed_payments(&aws);
    let pod = Pod::new(&proxy.endpoint());
    pod.run(PAYMENTS, &[]).assert_success();
    let mut sidecar = pod.start_refresh(PAYMENTS, FAST);

    // A quiet cycle costs the listing only (the first one reads every value once).
    let cycles = sidecar.wait_cycles(3);
    assert_eq!(outcomes(&cycles), ["unchanged"; 3]);
    for quiet in &cycles[1..] {
        assert_eq!(quiet["list_secrets"], 1, "{quiet}");
        assert_eq!(quiet["batch_get_secret_value"], 0, "{quiet}");
        assert_eq!(quiet["describe_secret"], 0, "{quiet}");
        assert_eq!(quiet["get_secret_value"], 0, "{quiet}");
    }

    // Added (and one the object does not ask for), and rotated.
    let reads_before = proxy.count("BatchGetSecretValue");
    create(&aws, "prod/payments/new", b"new-SENTINEL", TEAM);
    create(
        &aws,
        "prod/payments/ops2",
        b"ops2-SENTINEL",
        &[("team", "ops"), ("env", "payments")],
    );
    aws.put_secret("prod/payments/db", "db-2-SENTINEL");
    let before = sidecar.cycles().len();
    let cycles = sidecar.wait_for("the added and rotated secrets", |_| {
        pod.read_string("payments/db") == "db-2-SENTINEL"
            && pod.files().contains_key("payments/new")
    });
    assert_eq!(pod.read_string("payments/new"), "new-SENTINEL");
    assert!(!pod.files().contains_key("payments/ops2"));
    // Only what moved was read: two secrets, in one or two cycles, each at most one batch.
    let reads: u64 = cycles[before..]
        .iter()
        .map(|c| c["batch_get_secret_value"].as_u64().expect("count"))
        .sum();
    assert!((1..=2).contains(&reads), "{:?}", &cycles[before..]);
    let sizes = proxy.items("BatchGetSecretValue");
    assert!(sizes[reads_before..].iter().all(|&n| n <= 2), "{sizes:?}");

    // Removed: its file stays through the first listing without it and goes at the second.
    aws.delete_secret("prod/payments/cert");
    wait_removed(&pod, &mut sidecar, "prod/payments/cert", "payments/cert");
    assert_eq!(
        file_names(&pod),
        ["payments/api_key", "payments/db", "payments/new"]
    );
    assert!(sidecar.terminate().success());
}

/// Waits until the file of `secret`, gone from AWS, goes; checks that the first listing without
/// it changed no file and the second removed it.
#[track_caller]
fn wait_removed(pod: &Pod, sidecar: &mut Refresh, secret: &str, file: &str) {
    let cycles = sidecar.wait_for("its file to go", |_| !pod.files().contains_key(file));
    // The line of the cycle that removed it follows the files: one more cycle is sure to hold it.
    sidecar.wait_cycles(cycles.len() + 1);
    let logs = sidecar.logs();
    let messages: Vec<&str> = logs
        .iter()
        .map(|l| l["message"].as_str().unwrap_or_default())
        .collect();
    let missing = messages
        .iter()
        .position(|m| m.starts_with("secret missing from the listing"))
        .expect("a first miss was logged");
    let gone = messages
        .iter()
        .position(|m| m.starts_with("secret missing from two listings"))
        .expect("the second miss was logged");
    let cycles_between: Vec<&serde_json::Value> = logs[missing..gone]
        .iter()
        .filter(|l| l["message"] == "refresh cycle")
        .collect();
    assert_eq!(
        cycles_between.len(),
        1,
        "one cycle ends between the two misses"
    );
    assert_eq!(
        cycles_between[0]["outcome"], "unchanged",
        "the first miss changes no file"
    );
    assert_eq!(logs[missing]["secret"], secret);
    assert_eq!(logs[gone]["secret"], secret);
    let after_gone = logs[gone..]
        .iter()
        .find(|l| l["message"] == "refresh cycle")
        .expect("the cycle of the second miss");
    assert_eq!(after_gone["outcome"], "updated");
}

/// The sidecar's first listing may be older than the init container's (`ListSecrets` lags up to
/// five minutes): a secret it lacks keeps its file through that listing, at the start and after
/// a restart alike, and goes when the next listing lacks it too.
#[test]
fn a_secret_missing_from_the_first_listing_of_a_sidecar_goes_only_at_the_second() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    create(&aws, "prod/payments/a", b"a-SENTINEL", TEAM);
    create(&aws, "prod/payments/b", b"b-SENTINEL", TEAM);
    let pod = Pod::new(&moto.endpoint());
    pod.run(PAYMENTS, &[]).assert_success();
    assert_eq!(file_names(&pod), ["payments/a", "payments/b"]);

    aws.delete_secret("prod/payments/b");
    let mut sidecar = pod.start_refresh(PAYMENTS, FAST);
    wait_removed(&pod, &mut sidecar, "prod/payments/b", "payments/b");
    assert_eq!(outcomes(&sidecar.cycles())[..2], ["unchanged", "updated"]);
    assert_eq!(file_names(&pod), ["payments/a"]);

    // Back: the sidecar writes it again; then it is killed (as an OOM kill does), the secret
    // goes, and a new sidecar starts from the files the first one wrote.
    aws.restore_secret("prod/payments/b");
    sidecar.wait_for("the restored secret", |_| {
        pod.files().contains_key("payments/b")
    });
    drop(sidecar);
    let generation = pod.generation();
    aws.delete_secret("prod/payments/b");
    let mut restarted = pod.start_refresh(PAYMENTS, FAST);
    wait_removed(&pod, &mut restarted, "prod/payments/b", "payments/b");
    assert_eq!(outcomes(&restarted.cycles())[..2], ["unchanged", "updated"]);
    assert_ne!(pod.generation(), generation);
    assert_eq!(file_names(&pod), ["payments/a"]);
    assert!(restarted.terminate().success());
}

#[test]
fn an_empty_listing_changes_nothing_and_fails_the_cycle() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    create(&aws, "prod/payments/db", b"db-SENTINEL", TEAM);
    create(&aws, "prod/payments/key", b"key-SENTINEL", TEAM);
    let pod = Pod::new(&moto.endpoint());
    pod.run(PAYMENTS, &[]).assert_success();
    let generation = pod.generation();
    let files = pod.files();

    // Every secret gone at once: an empty answer, as a stale listing can give.
    aws.delete_secret("prod/payments/db");
    aws.delete_secret("prod/payments/key");
    let mut sidecar = pod.start_refresh(PAYMENTS, FAST);
    let cycles = sidecar.wait_cycles(3);
    assert_eq!(outcomes(&cycles), ["failed"; 3]);
    assert_eq!(pod.generation(), generation);
    assert_eq!(pod.files(), files);
    let failures: Vec<String> = sidecar
        .logs()
        .into_iter()
        .filter(|l| l["message"] == "object failed")
        .map(|l| l["failure"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        failures.iter().all(|f| f.contains(
            "EmptyListing: ListSecrets in us-east-1 found no secret under the prefix; the files \
             stay"
        )),
        "{failures:?}"
    );

    // Back again: the cycles succeed, and nothing changed on disk.
    aws.restore_secret("prod/payments/db");
    aws.restore_secret("prod/payments/key");
    let before = sidecar.cycles().len();
    let cycles = sidecar.wait_for("a good cycle", |cycles| {
        cycles[before..].iter().any(|c| c["outcome"] != "failed")
    });
    assert_eq!(cycles.last().unwrap()["outcome"], "unchanged");
    assert_eq!(pod.generation(), generation);
    assert!(sidecar.terminate().success());
}

/// A listing that fails in the primary region sends the cycle to a whole read, which fails over;
/// an empty listing there is still an empty listing: the files of an optional object stay.
#[test]
fn an_empty_listing_in_the_failover_region_changes_nothing() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    create(&aws, "prod/payments/db", b"db-SENTINEL", TEAM);
    let optional = "- {objectName: prod/payments/, objectType: secretsmanagerpath, \
                    objectAlias: payments, tags: {team: payments}, optional: true}";
    let failover = ["--failover-region", FAILOVER_REGION];
    let pod = Pod::new(&proxy.endpoint());
    pod.run(optional, &failover).assert_success();
    let generation = pod.generation();
    let files = pod.files();
    assert_eq!(file_names(&pod), ["payments/db"]);

    proxy.set_faults(vec![
        Fault::always(FaultKind::Unavailable)
            .for_operation("ListSecrets")
            .in_region(REGION),
    ]);
    // Room for the retries in both regions within a cycle.
    let args = [&["--interval=1s", "--deadline=30s"], &failover[..]].concat();
    let mut sidecar = pod.start_refresh(optional, &args);
    let cycles = sidecar.wait_cycles(2);
    assert_eq!(outcomes(&cycles), ["failed"; 2]);
    assert_eq!(pod.generation(), generation);
    assert_eq!(pod.files(), files);
    assert!(proxy.count_in("ListSecrets", FAILOVER_REGION) >= 2);
    let failures: Vec<String> = sidecar
        .logs()
        .into_iter()
        .filter(|l| l["message"] == "object failed")
        .map(|l| l["failure"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        failures.iter().all(|f| f
            .contains("EmptyListing: SecretsNotFound: no secret in us-west-2")
            && f.contains("the files stay")),
        "{failures:?}"
    );

    // The primary region answers again: the cycles succeed, and nothing changed on disk.
    proxy.set_faults(Vec::new());
    let before = sidecar.cycles().len();
    let cycles = sidecar.wait_for("a good cycle", |cycles| {
        cycles[before..].iter().any(|c| c["outcome"] != "failed")
    });
    assert_eq!(cycles.last().unwrap()["outcome"], "unchanged");
    assert_eq!(pod.generation(), generation);
    assert!(sidecar.terminate().success());
}
