//! `injector refresh` as the sidecar runs it, a real process against real moto (through the
//! fault proxy where calls are counted or faulted), with one-second intervals. Waits count the
//! sidecar's cycles (its "refresh cycle" log lines), never seconds.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_ssm::types::ParameterType;

use crate::support::*;

const OBJECTS: &str = r#"
- {objectName: /app/param, objectType: ssmparameter, objectAlias: PARAM}
- {objectName: /app/plain, objectType: ssmparameter, objectAlias: PLAIN}
- objectName: app/db
  objectType: secretsmanager
  objectAlias: db
  jmesPath:
    - {path: username, objectAlias: SECRET_USERNAME}
    - {path: password, objectAlias: SECRET_PASSWORD}
"#;

const FAST: &[&str] = &["--interval=1s", "--deadline=3s"];

fn db(n: u32) -> String {
    format!(r#"{{"username":"u-{n}-SENTINEL","password":"p-{n}-SENTINEL"}}"#)
}

/// Seeds the three objects at version `n` of their values (creating the secret when `n` is 0).
fn seed(aws: &Seeder, n: u32) {
    aws.put(
        "/app/param",
        &format!("param-{n}-SENTINEL"),
        ParameterType::SecureString,
    );
    aws.string("/app/plain", &format!("plain-{n}-SENTINEL"));
    if n == 0 {
        aws.secret("app/db", &db(0));
    } else {
        aws.put_secret("app/db", &db(n));
    }
}

fn outcomes(cycles: &[serde_json::Value]) -> Vec<&str> {
    cycles
        .iter()
        .map(|c| c["outcome"].as_str().expect("outcome"))
        .collect()
}

/// Waits for `n` more cycles that failed, and returns all cycles.
#[track_caller]
fn wait_failed(sidecar: &mut Refresh, n: usize) -> Vec<serde_json::Value> {
    let before = sidecar.cycles().len();
    sidecar.wait_for(&format!("{n} failed cycles"), |cycles| {
        outcomes(&cycles[before.min(cycles.len())..])
            .iter()
            .filter(|o| **o == "failed")
            .count()
            >= n
    })
}

/// The failure lines logged so far.
fn failures(sidecar: &Refresh) -> Vec<String> {
    sidecar
        .logs()
        .into_iter()
        .filter(|l| l["message"] == "object failed")
        .map(|l| l["failure"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn changes_reach_the_files_at_the_next_cycle_and_a_quiet_cycle_costs_two_calls() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    seed(&aws, 0);
    let pod = Pod::new(&proxy.endpoint());
    pod.run(OBJECTS, &[]).assert_success();
    let first = pod.generation();
    let files = pod.files();

    let mut sidecar = pod.start_refresh(OBJECTS, FAST);
    let cycles = sidecar.wait_cycles(3);
    assert_eq!(outcomes(&cycles), ["unchanged"; 3]);
    // After the first cycle (which reads every value once): one GetParameters without
    // decryption for both parameters, one DescribeSecret, and no value read.
    for quiet in &cycles[1..] {
        assert_eq!(quiet["get_parameters"], 1, "{quiet}");
        assert_eq!(quiet["describe_secret"], 1, "{quiet}");
        assert_eq!(quiet["get_secret_value"], 0, "{quiet}");
        assert_eq!(quiet["get_parameters_by_path"], 0, "{quiet}");
    }
    assert_eq!(
        pod.generation(),
        first,
        "nothing written when nothing changed"
    );
    assert_eq!(pod.generations(), std::slice::from_ref(&first));
    assert_eq!(pod.files(), files);

    seed(&aws, 1);
    let changed_at = sidecar.cycles().len();
    let cycles = sidecar.wait_for("the new values", |_| {
        pod.read_string("PARAM") == "param-1-SENTINEL"
            && pod.read_string("PLAIN") == "plain-1-SENTINEL"
            && pod.read_string("SECRET_PASSWORD") == "p-1-SENTINEL"
    });
    // The cycle running when the values changed may have missed them; the next one did not.
    let updates: Vec<usize> = outcomes(&cycles)
        .iter()
        .enumerate()
        .filter(|(_, o)| **o == "updated")
        .map(|(i, _)| i)
        .collect();
    assert!(
        !updates.is_empty() && *updates.last().unwrap() <= changed_at + 1,
        "updated in cycles {updates:?}, values changed before cycle {changed_at}"
    );
    // The previous generation stays until the next swap.
    let current = pod.generation();
    assert_ne!(current, first);
    assert!(pod.generations().contains(&current) && pod.generations().len() <= 2);
    assert!(sidecar.terminate().success());
}

#[test]
fn a_reader_of_one_generation_never_sees_a_mixed_pair_or_a_partial_file() {
    const SWAPS: u64 = 6;
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    aws.secret("app/db", &db(0));
    let objects = r#"
- objectName: app/db
  objectType: secretsmanager
  jmesPath:
    - {path: username, objectAlias: SECRET_USERNAME}
    - {path: password, objectAlias: SECRET_PASSWORD}
"#;
    let pod = Pod::new(&moto.endpoint());
    pod.run(objects, &[]).assert_success();
    let mut sidecar = pod.start_refresh(objects, FAST);

    let newest = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (newest, stop, data) = (
            Arc::clone(&newest),
            Arc::clone(&stop),
            pod.mount().join("..data"),
        );
        std::thread::spawn(move || {
            let mut reads = 0u64;
            let mut seen = BTreeSet::new();
            while !stop.load(Ordering::SeqCst) {
                // Open ..data once, then read both files relative to that directory.
                let generation = std::fs::File::open(&data).expect("open ..data");
                let at = format!("/proc/self/fd/{}", generation.as_raw_fd());
                let user = std::fs::read_to_string(format!("{at}/SECRET_USERNAME"))
                    .expect("SECRET_USERNAME of the opened generation");
                let password = std::fs::read_to_string(format!("{at}/SECRET_PASSWORD"))
                    .expect("SECRET_PASSWORD of the opened generation");
                let n: u64 = user
                    .strip_prefix("u-")
                    .and_then(|rest| rest.strip_suffix("-SENTINEL"))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("partial username file: {user:?}"));
                assert_eq!(password, format!("p-{n}-SENTINEL"), "a mixed pair");
                newest.fetch_max(n, Ordering::SeqCst);
                seen.insert(n);
                reads += 1;
            }
            (reads, seen)
        })
    };
    for n in 1..=SWAPS {
        aws.put_secret("app/db", &db(n as u32));
        sidecar.wait_for(&format!("swap {n}"), |_| {
            newest.load(Ordering::SeqCst) >= n || reader.is_finished()
        });
        assert!(!reader.is_finished(), "the reader stopped");
    }
    stop.store(true, Ordering::SeqCst);
    let (reads, seen) = reader.join().expect("the reader saw only whole pairs");
    assert_eq!(seen, (0..=SWAPS).collect::<BTreeSet<u64>>());
    assert!(reads > SWAPS * 10, "{reads} reads");
    // Two generations at most: the current and the one before it.
    assert_eq!(pod.generations().len(), 2, "{:?}", pod.entries());
    assert!(sidecar.terminate().success());
}

/// A loopback HTTP listener that records each request's head and answers 204.
fn listener() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
            assert!(rest.is_empty(), "a body after the head: {rest:?}");
            seen.lock().unwrap().push(head);
        }
    });
    (port, requests)
}

#[test]
fn after_a_change_the_named_processes_get_the_signal_and_the_url_one_post() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    seed(&aws, 0);
    let pod = Pod::new(&moto.endpoint());
    pod.run(OBJECTS, &[]).assert_success();

    // A process of this user with a chosen kernel name (prctl PR_SET_NAME) that SIGHUP ends:
    // its default action is set here, since a run under `nohup` ignores SIGHUP and exec keeps
    // that.
    let script = "import ctypes, signal\n\
                  ctypes.CDLL(None).prctl(15, b'reload-target', 0, 0, 0)\n\
                  signal.signal(signal.SIGHUP, signal.SIG_DFL)\n\
                  print('ready', flush=True)\n\
                  signal.pause()\n";
    let mut target = std::process::Command::new("python3")
        .args(["-c", script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the target (python3)");
    let mut ready = String::new();
    BufReader::new(target.stdout.take().expect("stdout"))
        .read_line(&mut ready)
        .expect("read the target's first line");
    assert_eq!(ready, "ready\n", "the target did not start");
    let (port, posts) = listener();

    let url = format!("--url=http://127.0.0.1:{port}/-/reload");
    let mut sidecar = pod.start_refresh(
        OBJECTS,
        &[FAST, &["--signal=SIGHUP reload-target", &url]].concat(),
    );
    let cycles = sidecar.wait_cycles(3);
    assert_eq!(outcomes(&cycles), ["unchanged"; 3]);
    assert!(posts.lock().unwrap().is_empty(), "a POST without a change");
    assert!(
        target.try_wait().unwrap().is_none(),
        "a signal without a change"
    );

    aws.put(
        "/app/param",
        "param-1-SENTINEL",
        ParameterType::SecureString,
    );
    sidecar.wait_for("the signal and the POST", |_| {
        !posts.lock().unwrap().is_empty() && target.try_wait().unwrap().is_some()
    });
    let status = target.wait().expect("target status");
    assert_eq!(status.signal(), Some(1), "ended by SIGHUP: {status:?}");
    let settled = sidecar.cycles().len();
    sidecar.wait_cycles(settled + 2);
    let posts = posts.lock().unwrap().clone();
    assert_eq!(posts.len(), 1, "one POST per change: {posts:?}");
    assert!(
        posts[0].starts_with("POST /-/reload HTTP/1.1\r\n")
            && posts[0].contains("Content-Length: 0\r\n"),
        "{}",
        posts[0]
    );
    assert_eq!(pod.read_string("PARAM"), "param-1-SENTINEL");
    assert!(sidecar.terminate().success());
}

#[test]
fn faults_keep_the_files_and_the_sidecar_running_until_they_end() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    seed(&aws, 0);
    let pod = Pod::new(&proxy.endpoint());
    pod.run(OBJECTS, &[]).assert_success();
    let mut sidecar = pod.start_refresh(OBJECTS, FAST);
    sidecar.wait_cycles(2);

    let mut n = 0;
    for (kind, code) in [
        (FaultKind::Throttling, "ThrottlingException"),
        (FaultKind::Unavailable, "ServiceUnavailable"),
        (FaultKind::AccessDenied, "AccessDeniedException"),
    ] {
        proxy.set_faults(vec![Fault::always(kind)]);
        wait_failed(&mut sidecar, 1);
        let generation = pod.generation();
        let files = pod.files();
        // Changed in AWS while the calls fail: nothing may move.
        n += 1;
        seed(&aws, n);
        wait_failed(&mut sidecar, 2);
        assert_eq!(pod.generation(), generation, "{code}");
        assert_eq!(pod.files(), files, "{code}");
        assert!(
            failures(&sidecar).iter().any(|f| f.contains(code)),
            "no failure naming {code}: {:?}",
            failures(&sidecar)
        );
        // Recovery: the values changed meanwhile arrive once the calls pass again.
        proxy.set_faults(Vec::new());
        sidecar.wait_for("recovery", |_| {
            pod.read_string("PARAM") == format!("param-{n}-SENTINEL")
                && pod.read_string("SECRET_PASSWORD") == format!("p-{n}-SENTINEL")
        });
    }
    let recovered = pod.files();

    // A deleted secret (restorable): the files stay as they are until it is restored.
    aws.delete_secret("app/db");
    wait_failed(&mut sidecar, 1);
    aws.string("/app/plain", "plain-3-SENTINEL");
    wait_failed(&mut sidecar, 2);
    assert_eq!(pod.files(), recovered);
    assert!(
        failures(&sidecar)
            .iter()
            .any(|f| f.contains("objectName \"app/db\"")),
        "{:?}",
        failures(&sidecar)
    );
    aws.restore_secret("app/db");
    sidecar.wait_for("the restored secret", |_| {
        pod.read_string("PLAIN") == "plain-3-SENTINEL"
    });
    assert!(sidecar.terminate().success());
}

#[test]
fn moto_down_for_a_while_keeps_the_files_and_the_sidecar_recovers() {
    let mut moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    seed(&aws, 0);
    let pod = Pod::new(&moto.endpoint());
    pod.run(OBJECTS, &[]).assert_success();
    let files = pod.files();
    let mut sidecar = pod.start_refresh(OBJECTS, FAST);
    sidecar.wait_cycles(2);

    moto.stop();
    wait_failed(&mut sidecar, 2);
    assert_eq!(pod.files(), files);

    moto.restart();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    seed(&aws, 0);
    seed(&aws, 1);
    // Seeding is not atomic: a cycle may take the new parameter with the old secret, and the
    // next one the new secret; recovery is both.
    sidecar.wait_for("recovery", |_| {
        pod.read_string("PARAM") == "param-1-SENTINEL"
            && pod.read_string("SECRET_USERNAME") == "u-1-SENTINEL"
    });
    assert!(sidecar.terminate().success());
}

#[test]
fn credentials_are_renewed_from_the_token_file_as_it_is_replaced() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    seed(&aws, 0);
    let pod = Pod::new(&proxy.endpoint());
    std::fs::write(pod.token(), "eyJhbGciOiJSUzI1NiJ9.e30.first").unwrap();
    pod.run(OBJECTS, &[]).assert_success();
    // Every credential STS hands out has expired: the SDK renews before each use.
    proxy.expire_credentials();
    let mut sidecar = pod.start_refresh(OBJECTS, FAST);
    sidecar.wait_cycles(3);
    let renewals = proxy.count("AssumeRoleWithWebIdentity");
    assert!(
        renewals >= 3,
        "{renewals} AssumeRoleWithWebIdentity in 3 cycles"
    );

    // The first token expires: STS refuses it, every cycle fails, the files stay.
    proxy.set_faults(vec![
        Fault::always(FaultKind::AccessDenied)
            .for_operation("AssumeRoleWithWebIdentity")
            .when_body_contains("e30.first"),
    ]);
    wait_failed(&mut sidecar, 1);
    seed(&aws, 1);
    wait_failed(&mut sidecar, 2);
    assert_eq!(pod.read_string("PARAM"), "param-0-SENTINEL");

    // The kubelet replaces the token file (a rename, as its atomic writer does): the next
    // renewal reads the new token.
    let next = pod.token().with_extension("new");
    std::fs::write(&next, "eyJhbGciOiJSUzI1NiJ9.e30.second").unwrap();
    std::fs::rename(&next, pod.token()).unwrap();
    sidecar.wait_for("the new token's credentials", |_| {
        pod.read_string("PARAM") == "param-1-SENTINEL"
    });
    assert!(sidecar.terminate().success());
}

/// A chained role (`--assume-role-arn`) lasts an hour at most, less than a sidecar lives: the
/// sidecar assumes it again, with the pod's own credentials, before its session ends.
#[test]
fn a_chained_role_is_assumed_again_before_its_session_ends() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    seed(&aws, 0);
    let pod = Pod::new(&proxy.endpoint());
    let role = "--assume-role-arn=arn:aws:iam::123456789012:role/secrets-reader";
    pod.run(OBJECTS, &[role]).assert_success();
    assert_eq!(
        proxy.count("AssumeRole"),
        1,
        "one AssumeRole for the init run"
    );
    // Every session STS hands out has ended: the role must be assumed again before each use.
    proxy.expire_credentials();
    proxy.clear();
    let args: Vec<&str> = FAST.iter().copied().chain([role]).collect();
    let mut sidecar = pod.start_refresh(OBJECTS, &args);
    sidecar.wait_cycles(3);
    let assumed = proxy.count("AssumeRole");
    assert!(assumed >= 3, "{assumed} AssumeRole in 3 cycles");
    seed(&aws, 1);
    sidecar.wait_for("the change under the renewed role", |_| {
        pod.read_string("PARAM") == "param-1-SENTINEL"
    });
    assert!(sidecar.terminate().success());
}

#[test]
fn sigterm_ends_the_sidecar_at_once_with_exit_0() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    seed(&aws, 0);
    let pod = Pod::new(&moto.endpoint());
    pod.run(OBJECTS, &[]).assert_success();
    // A long interval: SIGTERM arrives while it waits.
    let mut sidecar = pod.start_refresh(OBJECTS, &["--interval=1h"]);
    sidecar.wait_log("refreshing");
    let status = sidecar.terminate();
    assert!(status.success(), "{status:?}");
}

/// IAM as moto enforces it, for a role that may read values but not `DescribeSecret`: the
/// sidecar falls back to reading the secret at every cycle, keeps refreshing, and says which
/// permission would make its cycles cheaper.
#[test]
fn a_role_without_describe_secret_still_refreshes_by_reading_the_value() {
    use secrets_injector_e2e::seed::{self, call, parameter, secret};
    use serde_json::json;
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.example")},
            "Action": "sts:AssumeRoleWithWebIdentity"
        }]
    });
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["ssm:GetParameters", "secretsmanager:GetSecretValue"],
            "Resource": "*"
        }]
    });
    let calls = vec![
        call(
            "iam",
            "create_role",
            json!({"RoleName": "app", "AssumeRolePolicyDocument": trust.to_string()}),
        ),
        call(
            "iam",
            "put_role_policy",
            json!({"RoleName": "app", "PolicyName": "secrets", "PolicyDocument": policy.to_string()}),
        ),
        parameter("/app/param", "param-0-SENTINEL", "SecureString"),
        secret("app/db", &db(0)),
    ];
    // The setup calls and the sidecar's one AssumeRoleWithWebIdentity are free; every later
    // call is checked against the role's policy.
    let moto = Moto::start_enforcing_iam(calls.len() + 1);
    seed::seed(&moto.endpoint(), REGION, &calls);
    let proxy = Proxy::start(moto.addr());
    proxy.json_errors();
    let objects = r#"
- {objectName: /app/param, objectType: ssmparameter, objectAlias: PARAM}
- objectName: app/db
  objectType: secretsmanager
  jmesPath:
    - {path: password, objectAlias: SECRET_PASSWORD}
"#;
    let pod = Pod::new(&proxy.endpoint());
    // No init run here: moto would refuse the sidecar's own AssumeRoleWithWebIdentity past the
    // free calls. The first cycle writes the files.
    let mut sidecar = pod.start_refresh(objects, FAST);
    let cycles = sidecar.wait_cycles(3);
    assert_eq!(outcomes(&cycles), ["updated", "unchanged", "unchanged"]);
    assert_eq!(pod.read_string("PARAM"), "param-0-SENTINEL");
    assert_eq!(pod.read_string("SECRET_PASSWORD"), "p-0-SENTINEL");
    for quiet in &cycles[1..] {
        assert_eq!(quiet["describe_secret"], 1, "{quiet}");
        assert_eq!(quiet["get_secret_value"], 1, "{quiet}");
        assert_eq!(quiet["get_parameters"], 1, "{quiet}");
    }
    let warned = sidecar.logs().into_iter().any(|l| {
        l["message"] == "checking the version failed; fetching the value"
            && l["error"]
                .as_str()
                .is_some_and(|e| e.contains("secretsmanager:DescribeSecret"))
    });
    assert!(warned, "no warning naming secretsmanager:DescribeSecret");
    assert!(sidecar.terminate().success());
}

#[test]
fn objects_pinned_by_object_version_are_read_once_and_never_again() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    let version = aws.put(
        "/app/param",
        "param-0-SENTINEL",
        ParameterType::SecureString,
    );
    let (_, secret_version) = aws.secret("app/db", &db(0));
    let objects = format!(
        r#"
- {{objectName: /app/param, objectType: ssmparameter, objectAlias: PARAM, objectVersion: "{version}"}}
- objectName: app/db
  objectType: secretsmanager
  objectVersion: "{secret_version}"
  jmesPath:
    - {{path: password, objectAlias: SECRET_PASSWORD}}
"#
    );
    let pod = Pod::new(&moto.endpoint());
    pod.run(&objects, &[]).assert_success();
    let generation = pod.generation();
    let mut sidecar = pod.start_refresh(&objects, FAST);
    seed(&aws, 1);
    let cycles = sidecar.wait_cycles(4);
    assert_eq!(outcomes(&cycles), ["unchanged"; 4]);
    // The first cycle reads each pinned object once; then no call at all.
    for quiet in &cycles[1..] {
        for call in [
            "get_parameters",
            "get_parameters_by_path",
            "describe_secret",
            "get_secret_value",
        ] {
            assert_eq!(quiet[call], 0, "{quiet}");
        }
    }
    assert_eq!(pod.generation(), generation);
    assert_eq!(pod.read_string("PARAM"), "param-0-SENTINEL");
    assert!(sidecar.terminate().success());
}
