//! Faults on the injector's path to AWS: unreachable, silent, slower than the deadline, 5xx
//! bursts and outages, throttling storms, an expired, missing or late web-identity token. Each
//! run must end with every file, or with a clear failure that names the objects and an empty
//! directory, within the deadline: never a hang, never half the files.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;

use crate::support::*;

/// Time a run may take past its `--deadline`: process start, the report, a debug build on a
/// loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(5);

/// Three parameters and two secrets (one with jmesPath), and the files they give.
fn seed(aws: &Seeder) -> (&'static str, Vec<&'static str>) {
    for i in 0..3 {
        aws.put(
            &format!("/faults/p{i}"),
            &format!("p{i}-SENTINEL"),
            ParameterType::SecureString,
        );
    }
    aws.secret("faults/s0", "s0-SENTINEL");
    aws.secret(
        "faults/s1",
        r#"{"user":"u-SENTINEL","password":"pw-SENTINEL"}"#,
    );
    let objects = "\
- {objectName: /faults/p0, objectType: ssmparameter}
- {objectName: /faults/p1, objectType: ssmparameter}
- {objectName: /faults/p2, objectType: ssmparameter}
- {objectName: faults/s0, objectType: secretsmanager}
- objectName: faults/s1
  objectType: secretsmanager
  jmesPath: [{path: user, objectAlias: USER}, {path: password, objectAlias: PASSWORD}]
";
    let files = vec![
        "USER",
        "PASSWORD",
        "_faults_p0",
        "_faults_p1",
        "_faults_p2",
        "faults_s0",
        "faults_s1",
    ];
    (objects, files)
}

/// Every file, or a clear failure and an empty directory; within the deadline either way.
#[track_caller]
fn all_or_nothing(pod: &Pod, out: &Outcome, files: &[&str], deadline: Duration) -> bool {
    assert!(
        out.elapsed < deadline + SLACK,
        "the run took {:?} with a deadline of {deadline:?}:\n{out:#?}",
        out.elapsed
    );
    if out.code == 0 {
        let mut expected: Vec<String> = files.iter().map(|f| (*f).to_owned()).collect();
        expected.sort();
        let written: Vec<String> = pod.files().into_keys().collect();
        assert_eq!(written, expected, "a successful run writes every file");
        return true;
    }
    out.assert_failure();
    assert!(
        pod.entries().is_empty(),
        "a failed run leaves {:?}",
        pod.entries()
    );
    assert!(
        out.stderr.starts_with("secrets-injector: "),
        "the failure says what happened:\n{}",
        out.stderr
    );
    assert!(
        !out.termination_log.is_empty(),
        "kubectl describe pod shows nothing"
    );
    assert!(out.termination_log.len() <= 4096);
    false
}

/// Lines of the report naming a failed object.
fn failed_objects(out: &Outcome) -> Vec<&str> {
    out.stderr
        .lines()
        .filter(|l| l.starts_with("objects["))
        .collect()
}

/// A server that accepts connections, reads what comes, and answers nothing for `delay`
/// (forever when `None`), then closes: an endpoint that is down in the worst way.
struct Silent {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Silent {
    fn start(delay: Option<Duration>) -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let flag = Arc::clone(&flag);
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
                    let started = std::time::Instant::now();
                    let mut buf = [0u8; 4096];
                    while !flag.load(Ordering::SeqCst)
                        && delay.is_none_or(|d| started.elapsed() < d)
                    {
                        if let Ok(0) = stream.read(&mut buf) {
                            return;
                        }
                    }
                });
            }
        });
        Silent {
            addr,
            stop,
            accept: Some(accept),
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// An STS endpoint that answers every call with this query-protocol error.
fn sts_error(code: &'static str, message: &'static str) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = std::thread::spawn(move || {
        listener.set_nonblocking(false).expect("blocking");
        for stream in listener.incoming().take(1000) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut request = Vec::new();
            let mut buf = [0u8; 8192];
            // The SDK sends a small form body; read until it stops coming.
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
                if request.windows(4).any(|w| w == b"\r\n\r\n") && request.ends_with(b"2011-06-15")
                {
                    break;
                }
            }
            let body = format!(
                "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
                 <Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-1</RequestId></ErrorResponse>"
            );
            let response = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (addr, handle)
}

#[test]
fn aws_unreachable_fails_clearly_and_fast() {
    let closed = secrets_injector_e2e::moto::free_port();
    let pod = Pod::new(&format!("http://127.0.0.1:{closed}"));
    let deadline = Duration::from_secs(30);
    let out = pod.run("- {objectName: /faults/p0, objectType: ssmparameter}\n- {objectName: faults/s0, objectType: secretsmanager}", &["--deadline", "30s"]);
    assert!(!all_or_nothing(&pod, &out, &[], deadline));
    // Refused connections are retried a few times, not until the deadline.
    assert!(out.elapsed < Duration::from_secs(20), "{:?}", out.elapsed);
    let failed = failed_objects(&out);
    assert_eq!(failed.len(), 2, "{}", out.stderr);
    for line in failed {
        assert!(
            line.contains("NetworkError") || line.contains("CredentialsError"),
            "{line}"
        );
    }
}

#[test]
fn an_endpoint_that_never_answers_ends_at_the_deadline() {
    let silent = Silent::start(None);
    let pod = Pod::new(&silent.endpoint());
    let deadline = Duration::from_secs(4);
    let out = pod.run("- {objectName: /faults/p0, objectType: ssmparameter}\n- {objectName: faults/s0, objectType: secretsmanager}", &["--deadline", "4s"]);
    assert!(!all_or_nothing(&pod, &out, &[], deadline));
    for line in failed_objects(&out) {
        assert!(
            line.contains("DeadlineExceeded") || line.contains("Timeout"),
            "{line}"
        );
    }
    assert!(
        out.elapsed >= deadline - Duration::from_millis(500),
        "gave up early: {:?}",
        out.elapsed
    );
}

#[test]
fn answers_that_come_after_the_deadline_are_not_waited_for() {
    let slow = Silent::start(Some(Duration::from_secs(30)));
    let pod = Pod::new(&slow.endpoint());
    let deadline = Duration::from_secs(3);
    let out = pod.run(
        "- {objectName: faults/s0, objectType: secretsmanager}",
        &["--deadline", "3s"],
    );
    assert!(!all_or_nothing(&pod, &out, &[], deadline));
    assert!(out.stderr.contains("DeadlineExceeded"), "{}", out.stderr);
}

#[test]
fn bursts_of_5xx_are_ridden_out() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    let (objects, files) = seed(&aws);
    // Two of every three attempts of each call fail: each call needs three attempts of its five.
    // (Counted per call: with one counter for all, concurrent calls could take every good slot
    // from one call and fail it five times in a row.)
    proxy.set_faults(vec![Fault::share(FaultKind::Unavailable, 2, 3).per_call()]);
    let pod = Pod::new(&proxy.endpoint());
    let out = pod.run(objects, &["--deadline", "60s"]);
    assert!(
        all_or_nothing(&pod, &out, &files, Duration::from_secs(60)),
        "{out:#?}"
    );
    assert!(proxy.faulted() >= 4, "{:?}", proxy.records());
    assert_eq!(pod.read_string("PASSWORD"), "pw-SENTINEL");
}

#[test]
fn an_outage_fails_clearly_after_a_few_retries() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    let (objects, _) = seed(&aws);
    proxy.set_faults(vec![Fault::always(FaultKind::Unavailable)]);
    let pod = Pod::new(&proxy.endpoint());
    let deadline = Duration::from_secs(60);
    let out = pod.run(objects, &["--deadline", "60s"]);
    assert!(!all_or_nothing(&pod, &out, &[], deadline));
    // 5xx gets the small budget: an outage is reported in seconds, not at the deadline.
    assert!(out.elapsed < Duration::from_secs(20), "{:?}", out.elapsed);
    let failed = failed_objects(&out);
    assert_eq!(failed.len(), 5, "{}", out.stderr);
    for line in failed {
        assert!(
            line.contains("ServiceUnavailable") || line.contains("503"),
            "{line}"
        );
        assert!(line.contains("gave up after"), "{line}");
    }
}

#[test]
fn a_throttling_storm_is_ridden_out() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    let (objects, files) = seed(&aws);
    // Four of every five calls are throttled, as in a rollout of hundreds of pods.
    proxy.set_faults(vec![Fault::share(FaultKind::Throttling, 4, 5)]);
    let pod = Pod::new(&proxy.endpoint());
    let out = pod.run(objects, &["--deadline", "90s"]);
    assert!(
        all_or_nothing(&pod, &out, &files, Duration::from_secs(90)),
        "{out:#?}"
    );
    assert!(proxy.faulted() >= 12, "{:?}", proxy.records());
}

#[test]
fn an_sts_outage_fails_clearly_within_the_deadline() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    let (objects, _) = seed(&aws);
    proxy.set_faults(vec![
        Fault::always(FaultKind::Unavailable).for_operation("AssumeRoleWithWebIdentity"),
    ]);
    let pod = Pod::new(&proxy.endpoint());
    let deadline = Duration::from_secs(30);
    let out = pod.run(objects, &["--deadline", "30s"]);
    assert!(!all_or_nothing(&pod, &out, &[], deadline));
    assert_eq!(
        proxy.count("GetParameters") + proxy.count("GetSecretValue"),
        0,
        "{:?}",
        proxy.records()
    );
    assert_eq!(failed_objects(&out).len(), 5, "{}", out.stderr);
}

#[test]
fn an_expired_web_identity_token_fails_clearly() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    let (objects, _) = seed(&aws);
    let (sts, _server) = sts_error(
        "ExpiredTokenException",
        "Token expired: current date/time 1700000000 must be before the expiration date/time 1600000000",
    );
    let mut pod = Pod::new(&moto.endpoint());
    pod.env
        .push(("AWS_ENDPOINT_URL_STS".to_owned(), format!("http://{sts}")));
    let deadline = Duration::from_secs(30);
    let out = pod.run(objects, &["--deadline", "30s"]);
    assert!(!all_or_nothing(&pod, &out, &[], deadline));
    // Renewing the token is the kubelet's job; the message must say it is the token.
    assert!(out.stderr.contains("ExpiredToken"), "{}", out.stderr);
    // An expired token is final: the run ends at once instead of retrying until the deadline.
    assert!(
        out.elapsed < Duration::from_secs(10),
        "took {:?}",
        out.elapsed
    );
    eprintln!(
        "expired token: failed after {:?}:\n{}",
        out.elapsed, out.stderr
    );
}

#[test]
fn a_missing_web_identity_token_fails_clearly() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    let (objects, _) = seed(&aws);
    let mut pod = Pod::new(&moto.endpoint());
    let missing = pod.mount().with_file_name("no-such-token");
    pod.env.push((
        "AWS_WEB_IDENTITY_TOKEN_FILE".to_owned(),
        missing.display().to_string(),
    ));
    let deadline = Duration::from_secs(30);
    let out = pod.run(objects, &["--deadline", "30s"]);
    assert!(!all_or_nothing(&pod, &out, &[], deadline));
    assert!(
        out.stderr.contains("no-such-token") || out.stderr.contains("CredentialsError"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_token_file_that_appears_late_ends_with_every_file_or_a_clear_failure() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    let (objects, files) = seed(&aws);
    let mut pod = Pod::new(&moto.endpoint());
    let late = pod.mount().with_file_name("late-token");
    pod.env.push((
        "AWS_WEB_IDENTITY_TOKEN_FILE".to_owned(),
        late.display().to_string(),
    ));
    let writer = {
        let late = late.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1500));
            std::fs::write(&late, "eyJhbGciOiJSUzI1NiJ9.e30.sig").expect("write the token");
        })
    };
    let deadline = Duration::from_secs(20);
    let out = pod.run(objects, &["--deadline", "20s"]);
    writer.join().expect("token writer");
    let succeeded = all_or_nothing(&pod, &out, &files, deadline);
    eprintln!(
        "a token that appears after 1.5 s: {}",
        if succeeded {
            "every file"
        } else {
            "a clear failure"
        }
    );
}
