//! Startup, shutdown and slow clients of the built `webhook serve`: clear startup errors, flags
//! from the environment, SIGTERM finishing the reviews in flight, and timeouts for clients that
//! stall.

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use secrets_injector_e2e::admission;
use secrets_injector_e2e::https::{self, Client, SERVICE_NAME, Webhook};
use serde_json::json;

const IMAGE: &str = "registry.example.com/secrets-injector/injector:1.0.0";

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_webhook"))
}

/// Runs `webhook serve` expecting it to fail at startup; returns its exit code and stderr.
fn serve_failing(cert: &Path, key: &Path) -> (Option<i32>, String) {
    let output = https::serve_command(program())
        .arg("--tls-cert")
        .arg(cert)
        .arg("--tls-key")
        .arg(key)
        .args(["--injector-image", IMAGE])
        .output()
        .expect("run webhook serve");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn startup_with_unusable_certificate_files_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    https::make_certs(program(), dir.path(), &[]);
    let other = tempfile::tempdir().unwrap();
    https::make_certs(program(), other.path(), &[]);
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));

    let missing = dir.path().join("missing.key");
    let (code, stderr) = serve_failing(&cert, &missing);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: No such file or directory", missing.display())),
        "{stderr}"
    );
    assert!(stderr.contains("\"level\":\"ERROR\""), "{stderr}");

    let corrupt = dir.path().join("corrupt.crt");
    std::fs::write(
        &corrupt,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let (code, stderr) = serve_failing(&corrupt, &key);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: not a PEM certificate chain",
            corrupt.display()
        )),
        "{stderr}"
    );

    let empty = dir.path().join("empty.crt");
    std::fs::write(&empty, "").unwrap();
    let (code, stderr) = serve_failing(&empty, &key);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: no certificate found", empty.display())),
        "{stderr}"
    );

    let (code, stderr) = serve_failing(&other.path().join("tls.crt"), &key);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: the private key does not match the certificate in {}",
            key.display(),
            other.path().join("tls.crt").display()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
}

#[test]
fn flags_come_from_the_environment_too() {
    let dir = tempfile::tempdir().unwrap();
    https::make_certs(program(), dir.path(), &[]);
    let webhook = Webhook::start_with_env(
        program(),
        std::iter::empty::<&str>(),
        [
            ("SECRETS_INJECTOR_TLS_CERT", dir.path().join("tls.crt")),
            ("SECRETS_INJECTOR_TLS_KEY", dir.path().join("tls.key")),
            ("SECRETS_INJECTOR_INJECTOR_IMAGE", IMAGE.into()),
            ("SECRETS_INJECTOR_MAX_BODY_BYTES", "1000".into()),
        ],
    );
    let client = Client::new(webhook.addr, SERVICE_NAME, &[&dir.path().join("ca.crt")]);
    assert_eq!(client.get("/readyz").unwrap().status, 200);
    let response = client.post_json("/mutate", &[b' '; 1001]).unwrap();
    assert_eq!(response.status, 413);
    assert_eq!(response.text(), "request body is larger than 1000 bytes\n");
}

fn review_body(uid: &str) -> Vec<u8> {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "plain"},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}
    });
    admission::body(&admission::create_review(uid, &pod, "default"))
}

#[test]
fn sigterm_fails_readiness_finishes_reviews_in_flight_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    https::make_certs(program(), dir.path(), &[]);
    let mut webhook = Webhook::start(
        program(),
        [
            "--tls-cert".into(),
            dir.path().join("tls.crt").into_os_string(),
            "--tls-key".into(),
            dir.path().join("tls.key").into_os_string(),
            "--injector-image".into(),
            IMAGE.into(),
            "--shutdown-delay-seconds".into(),
            std::ffi::OsString::from("2"),
        ],
    );
    let client = Client::new(webhook.addr, SERVICE_NAME, &[&dir.path().join("ca.crt")]);

    // Two reviews in flight: their bodies are half sent when the signal comes.
    let bodies = [review_body("inflight-1"), review_body("inflight-2")];
    let mut in_flight = Vec::new();
    for body in &bodies {
        let mut connection = client.connect().unwrap();
        connection
            .send_head(
                "POST",
                "/mutate",
                Some("application/json"),
                Some(body.len()),
            )
            .unwrap();
        connection.send_body(&body[..body.len() / 2]).unwrap();
        in_flight.push(connection);
    }
    std::thread::sleep(Duration::from_millis(200));

    webhook.signal("TERM");
    let signalled = Instant::now();
    let mut not_ready = None;
    while signalled.elapsed() < Duration::from_secs(2) {
        let status = client.get("/readyz").map(|r| r.status);
        if status.as_ref().is_ok_and(|s| *s == 503) {
            not_ready = Some(signalled.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let not_ready = not_ready.expect("/readyz never answered 503 after SIGTERM");
    assert_eq!(
        client.get("/healthz").unwrap().status,
        200,
        "still alive while draining"
    );

    webhook
        .wait_for_log("no longer accepting connections", Duration::from_secs(5))
        .expect("the listener closes after the delay");
    std::thread::sleep(Duration::from_millis(200));
    let refused = TcpStream::connect_timeout(&webhook.addr, Duration::from_secs(2));
    assert!(
        refused.is_err(),
        "new connections must be refused once draining"
    );

    for (connection, body) in in_flight.iter_mut().zip(&bodies) {
        connection.send_body(&body[body.len() / 2..]).unwrap();
    }
    for (i, connection) in in_flight.iter_mut().enumerate() {
        let response = connection
            .read_response()
            .expect("the review in flight is answered");
        assert_eq!(response.status, 200, "{}", response.text());
        let review = response.json();
        assert_eq!(review["response"]["uid"], format!("inflight-{}", i + 1));
        assert_eq!(review["response"]["allowed"], true);
    }

    let status = webhook
        .wait_exit(Duration::from_secs(10))
        .expect("the webhook exits after draining");
    println!(
        "SIGTERM: /readyz 503 after {:.0} ms, exit {:?} {:.2} s after the signal",
        not_ready.as_secs_f64() * 1000.0,
        status.code(),
        signalled.elapsed().as_secs_f64()
    );
    assert_eq!(status.code(), Some(0), "{:#?}", webhook.logs());
    assert!(
        webhook
            .logs()
            .iter()
            .any(|l| l.contains("\"message\":\"stopped\""))
    );
}

#[test]
fn sigint_stops_an_idle_webhook_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    https::make_certs(program(), dir.path(), &[]);
    let mut webhook = Webhook::start(
        program(),
        [
            "--tls-cert".into(),
            dir.path().join("tls.crt").into_os_string(),
            "--tls-key".into(),
            dir.path().join("tls.key").into_os_string(),
            "--injector-image".into(),
            IMAGE.into(),
            "--shutdown-delay-seconds".into(),
            std::ffi::OsString::from("0"),
        ],
    );
    // An idle keep-alive connection must not hold the shutdown up.
    let client = Client::new(webhook.addr, SERVICE_NAME, &[&dir.path().join("ca.crt")]);
    let mut idle = client.connect().unwrap();
    assert_eq!(idle.request("GET", "/healthz", None).unwrap().status, 200);
    webhook.signal("INT");
    let status = webhook.wait_exit(Duration::from_secs(5)).expect("exits");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn stalled_clients_are_cut_off_after_the_timeouts() {
    let dir = tempfile::tempdir().unwrap();
    https::make_certs(program(), dir.path(), &[]);
    let webhook = Webhook::start(
        program(),
        [
            "--tls-cert".into(),
            dir.path().join("tls.crt").into_os_string(),
            "--tls-key".into(),
            dir.path().join("tls.key").into_os_string(),
            "--injector-image".into(),
            std::ffi::OsString::from(IMAGE),
        ],
    );
    let client = Client::new(webhook.addr, SERVICE_NAME, &[&dir.path().join("ca.crt")]);

    // Headers that never end.
    let headers = {
        let client = client.clone();
        std::thread::spawn(move || {
            let mut connection = client.connect().unwrap();
            connection
                .send_body(b"POST /mutate HTTP/1.1\r\nHost: secrets-injector\r\n")
                .unwrap();
            let started = Instant::now();
            let result = connection.read_response();
            (started.elapsed(), result.map(|r| r.status))
        })
    };
    // A body that never ends.
    let body = {
        let client = client.clone();
        std::thread::spawn(move || {
            let mut connection = client.connect().unwrap();
            connection
                .send_head("POST", "/mutate", Some("application/json"), Some(1000))
                .unwrap();
            connection.send_body(b"{\"apiVersion\":").unwrap();
            let started = Instant::now();
            let result = connection.read_response();
            (started.elapsed(), result.map(|r| (r.status, r.text())))
        })
    };
    // A TCP connection that never starts TLS.
    let silent = std::thread::spawn({
        let addr = webhook.addr;
        move || {
            let mut socket = TcpStream::connect(addr).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let started = Instant::now();
            let mut buf = [0u8; 16];
            let read = socket.read(&mut buf);
            (started.elapsed(), read.map_err(|e| e.kind()))
        }
    });

    let (elapsed, result) = headers.join().unwrap();
    println!("stalled headers: closed after {elapsed:?}: {result:?}");
    assert!(
        result.is_err(),
        "no response to headers that never end: {result:?}"
    );
    assert!(elapsed < Duration::from_secs(13), "{elapsed:?}");

    let (elapsed, result) = body.join().unwrap();
    println!("stalled body: answered after {elapsed:?}: {result:?}");
    assert_eq!(
        result.unwrap(),
        (408, "request body not received in time\n".to_owned())
    );
    assert!(
        (Duration::from_secs(9)..Duration::from_secs(13)).contains(&elapsed),
        "{elapsed:?}"
    );

    let (elapsed, read) = silent.join().unwrap();
    println!("silent TCP connection: closed after {elapsed:?}: {read:?}");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(elapsed < Duration::from_secs(13), "{elapsed:?}");

    // The server is still fine.
    assert_eq!(client.get("/healthz").unwrap().status, 200);
}
