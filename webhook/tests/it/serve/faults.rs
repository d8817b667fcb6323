//! `webhook serve` under faults: certificate files missing or corrupt at start, replaced by
//! garbage while serving, SIGTERM with reviews in flight, slow and stalled clients, old TLS and
//! plain HTTP, and hostile bodies. Against the built binary, over real TLS on 127.0.0.1.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use secrets_injector_e2e::admission;
use secrets_injector_e2e::https::{
    self, ALLOCATOR_ENV, Client, HelloAnswer, SERVICE_NAME, SecretVolume, Webhook,
};
use serde_json::{Value, json};

const IMAGE: &str = "registry.example.com/secrets-injector/injector:1.0.0";
/// The server's handshake, header and body timeout (server.rs), and what a test allows past it.
const SERVER_TIMEOUT: Duration = Duration::from_secs(10);
const SLACK: Duration = Duration::from_secs(5);

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_webhook"))
}

fn serve_args(cert: &Path, key: &Path, extra: &[&str]) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec![
        "--tls-cert".into(),
        cert.into(),
        "--tls-key".into(),
        key.into(),
        "--injector-image".into(),
        IMAGE.into(),
        "--default-region".into(),
        "us-east-1".into(),
    ];
    args.extend(extra.iter().map(Into::into));
    args
}

/// A certificate directory made by `webhook certs`.
fn certs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    https::make_certs(program(), dir.path(), &[]);
    dir
}

fn review(uid: &str, annotations: Value) -> Vec<u8> {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}
    });
    admission::body(&admission::create_review(uid, &pod, "apps"))
}

fn objects() -> Value {
    json!({"secrets-injector.io/objects": "- objectName: /app/db\n  objectType: ssmparameter\n"})
}

/// Runs `webhook serve` (with `extra` flags) that must fail to start; returns its exit status
/// and output.
fn failed_start(cert: &Path, key: &Path, extra: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = https::serve_command(program())
        .args(serve_args(cert, key, extra))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start webhook serve");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("webhook serve kept running with broken certificate files");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut output = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut output)
        .expect("stdout");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut output)
        .expect("stderr");
    (status, output)
}

#[test]
fn missing_or_corrupt_certificates_stop_the_start_with_a_clear_error() {
    let good = certs();
    let other = certs();
    let bad = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, content: &[u8]| -> PathBuf {
        let path = bad.path().join(name);
        std::fs::write(&path, content).expect("write");
        path
    };
    let cert = good.path().join("tls.crt");
    let key = good.path().join("tls.key");
    let key_pem = std::fs::read_to_string(&key).expect("key");
    let key_body: String = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let cases: Vec<(&str, PathBuf, PathBuf, PathBuf)> = vec![
        (
            "missing certificate",
            bad.path().join("absent.crt"),
            key.clone(),
            bad.path().join("absent.crt"),
        ),
        (
            "missing key",
            cert.clone(),
            bad.path().join("absent.key"),
            bad.path().join("absent.key"),
        ),
        (
            "garbage certificate",
            write("garbage.crt", b"\x00\xffnot a certificate"),
            key.clone(),
            bad.path().join("garbage.crt"),
        ),
        (
            "garbage key",
            cert.clone(),
            write(
                "garbage.key",
                b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
            ),
            bad.path().join("garbage.key"),
        ),
        (
            "empty certificate",
            write("empty.crt", b""),
            key.clone(),
            bad.path().join("empty.crt"),
        ),
        (
            "empty key",
            cert.clone(),
            write("empty.key", b""),
            bad.path().join("empty.key"),
        ),
        (
            "key of another certificate",
            cert.clone(),
            other.path().join("tls.key"),
            other.path().join("tls.key"),
        ),
        (
            "certificate and key swapped",
            key.clone(),
            cert.clone(),
            key.clone(),
        ),
        (
            "a directory",
            bad.path().to_path_buf(),
            key.clone(),
            bad.path().to_path_buf(),
        ),
    ];
    for (what, cert, key, at_fault) in cases {
        let started = Instant::now();
        let (status, output) = failed_start(&cert, &key, &[]);
        assert!(!status.success(), "{what}: exit {status}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: took {:?}",
            started.elapsed()
        );
        assert!(
            !output.contains("\"message\":\"serving\""),
            "{what}: it served:\n{output}"
        );
        assert!(
            output.contains(&at_fault.display().to_string()),
            "{what}: the error does not name {}:\n{output}",
            at_fault.display()
        );
        assert!(
            !output.contains(&key_body[..40]),
            "{what}: the private key is in the output"
        );
    }
}

/// The DER of the certificate the server presents now.
fn presented(client: &Client) -> Vec<u8> {
    client
        .connect()
        .expect("connect")
        .peer_certificate()
        .expect("a certificate")
}

fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn certificates_replaced_by_garbage_keep_the_last_good_one_serving() {
    let first = certs();
    let second = certs();
    let garbage = tempfile::tempdir().expect("temp dir");
    for name in ["tls.crt", "tls.key", "ca.crt"] {
        std::fs::write(garbage.path().join(name), "garbage\n").expect("write");
    }
    let volume_dir = tempfile::tempdir().expect("temp dir");
    let mut volume = SecretVolume::new(volume_dir.path(), first.path());
    let webhook = Webhook::start(program(), serve_args(&volume.cert(), &volume.key(), &[]));
    let cas = [first.path().join("ca.crt"), second.path().join("ca.crt")];
    let client = Client::new(webhook.addr, SERVICE_NAME, &[&cas[0], &cas[1]]);
    let good = presented(&client);

    volume.update(garbage.path());
    let line = webhook
        .wait_for_log("cannot be served", Duration::from_secs(15))
        .expect("the rejected files are logged");
    assert!(line.contains("keeping the current certificate"), "{line}");
    assert!(
        !line.contains("garbage"),
        "the log quotes the files: {line}"
    );
    // Still serving, with the last good certificate, for reviews and health.
    for _ in 0..5 {
        assert_eq!(presented(&client), good);
    }
    let response = client
        .post_json("/mutate", &review("after-garbage", objects()))
        .expect("POST");
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["response"]["uid"], "after-garbage");
    assert_eq!(client.get("/readyz").expect("readyz").status, 200);
    assert!(
        webhook
            .metrics()
            .contains("secrets_injector_certificate_reloads_total{result=\"failure\"} 1")
    );

    // Half a pair (the certificate of one, the key of another) is no better.
    let mixed = tempfile::tempdir().expect("temp dir");
    std::fs::copy(second.path().join("tls.crt"), mixed.path().join("tls.crt")).expect("copy");
    std::fs::copy(first.path().join("tls.key"), mixed.path().join("tls.key")).expect("copy");
    std::fs::copy(second.path().join("ca.crt"), mixed.path().join("ca.crt")).expect("copy");
    volume.update(mixed.path());
    wait_for(Duration::from_secs(15), || {
        webhook
            .metrics()
            .contains("secrets_injector_certificate_reloads_total{result=\"failure\"} 2")
            .then_some(())
    })
    .expect("the mismatched pair is refused");
    assert_eq!(presented(&client), good);

    // A good pair afterwards is served within the 10 s the SPEC allows.
    volume.update(second.path());
    let swapped = wait_for(Duration::from_secs(12), || {
        (presented(&client) != good).then_some(())
    });
    assert!(
        swapped.is_some(),
        "the new certificate was not served within 12 s"
    );
}

#[test]
fn sigterm_drops_readiness_first_and_finishes_the_reviews_in_flight() {
    let dir = certs();
    let mut webhook = Webhook::start(
        program(),
        serve_args(
            &dir.path().join("tls.crt"),
            &dir.path().join("tls.key"),
            &[
                "--shutdown-delay-seconds",
                "2",
                "--shutdown-timeout-seconds",
                "20",
            ],
        ),
    );
    let client = Client::new(webhook.addr, SERVICE_NAME, &[&dir.path().join("ca.crt")]);
    // Reviews in flight: headers and half of each body sent, the rest held back.
    let mut in_flight = Vec::new();
    for i in 0..8 {
        let body = review(&format!("in-flight-{i}"), objects());
        let mut connection = client.connect().expect("connect");
        connection
            .send_head(
                "POST",
                "/mutate",
                Some("application/json"),
                Some(body.len()),
            )
            .expect("head");
        let half = body.len() / 2;
        connection.send_body(&body[..half]).expect("half a body");
        in_flight.push((connection, body, half));
    }
    let signalled = Instant::now();
    webhook.signal("TERM");
    // Readiness turns 503 at once, while the listener still accepts.
    let not_ready = wait_for(Duration::from_secs(2), || {
        client
            .get("/readyz")
            .ok()
            .filter(|r| r.status == 503)
            .map(|r| r.text())
    });
    assert!(not_ready.is_some(), "readiness did not drop after SIGTERM");
    assert!(signalled.elapsed() < Duration::from_secs(2));
    // Past the delay the listener is closed; the reviews in flight still get their answers.
    std::thread::sleep(Duration::from_millis(2500));
    let refused = wait_for(Duration::from_secs(3), || {
        client.connect().is_err().then_some(())
    });
    assert!(
        refused.is_some(),
        "new connections are still accepted after the shutdown delay"
    );
    for (mut connection, body, half) in in_flight {
        connection
            .send_body(&body[half..])
            .expect("rest of the body");
        let response = connection
            .read_response()
            .expect("the review in flight is answered");
        assert_eq!(response.status, 200, "{}", response.text());
        let answer = response.json();
        let uid = answer["response"]["uid"].as_str().expect("uid");
        assert!(uid.starts_with("in-flight-"), "{answer}");
        assert_eq!(answer["response"]["allowed"], true);
        assert_eq!(answer["response"]["patchType"], "JSONPatch");
    }
    let status = webhook
        .wait_exit(Duration::from_secs(25))
        .expect("the webhook exits");
    assert!(status.success(), "exit {status}");
    let logs = webhook.logs().join("\n");
    let order = [
        "received signal",
        "readiness is now failing",
        "no longer accepting connections",
        "stopped",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|m| {
            logs.find(m)
                .unwrap_or_else(|| panic!("no log line {m:?}:\n{logs}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "shutdown out of order:\n{logs}"
    );
}

/// Whether the server closed `stream` (EOF or reset) within `within`.
fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut buf = [0u8; 1024];
    while started.elapsed() < within {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

#[test]
fn slow_clients_are_cut_off_and_cannot_exhaust_the_server() {
    let dir = certs();
    let webhook = Webhook::start(
        program(),
        serve_args(
            &dir.path().join("tls.crt"),
            &dir.path().join("tls.key"),
            &[],
        ),
    );
    let addr = webhook.addr;
    let client = Client::new(addr, SERVICE_NAME, &[&dir.path().join("ca.crt")]);

    // A slowloris: hundreds of connections that never finish a handshake or a request.
    let mut idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    let mut trickling: Vec<_> = (0..20)
        .map(|_| {
            let mut c = client.connect().expect("connect");
            c.send_body(b"POST /mutate HTTP/1.1\r\nHost: x\r\n")
                .expect("partial head");
            c
        })
        .collect();
    // A body that trickles in: the whole body has 10 s, however it arrives.
    let body = review("slow-body", objects());
    let mut slow_body = client.connect().expect("connect");
    slow_body
        .send_head(
            "POST",
            "/mutate",
            Some("application/json"),
            Some(body.len()),
        )
        .expect("head");

    // Meanwhile a real review is answered at once.
    let started = Instant::now();
    let response = client
        .post_json("/mutate", &review("during-slowloris", objects()))
        .expect("POST during a slowloris");
    assert_eq!(response.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a review took {:?} under a slowloris",
        started.elapsed()
    );

    let trickle_started = Instant::now();
    let mut sent = 0;
    let timed_out = loop {
        if sent < body.len() {
            if slow_body.send_body(&body[sent..sent + 1]).is_err() {
                break None;
            }
            sent += 1;
        }
        for c in &mut trickling {
            let _ = c.send_body(b"X");
        }
        std::thread::sleep(Duration::from_millis(500));
        if trickle_started.elapsed() > SERVER_TIMEOUT + Duration::from_secs(1) {
            break Some(slow_body.read_response());
        }
    };
    if let Some(Ok(response)) = timed_out {
        assert_eq!(response.status, 408, "{}", response.text());
    }
    // Every stalled connection is gone by the timeout.
    for stream in idle.iter_mut().take(20) {
        let closed = closed_within(stream, SLACK);
        assert!(
            closed.is_some(),
            "a connection that never sent a ClientHello is still open"
        );
    }
    assert!(trickle_started.elapsed() < SERVER_TIMEOUT + SLACK + SLACK);
    drop(idle);
    drop(trickling);
    // And the server is as good as new.
    let response = client
        .post_json("/mutate", &review("after-slowloris", objects()))
        .expect("POST after");
    assert_eq!(response.status, 200);
}

#[test]
fn old_tls_and_plain_http_are_refused() {
    let dir = certs();
    let webhook = Webhook::start(
        program(),
        serve_args(
            &dir.path().join("tls.crt"),
            &dir.path().join("tls.key"),
            &[],
        ),
    );
    for (name, version) in [
        ("SSL 3.0", 0x0300),
        ("TLS 1.0", 0x0301),
        ("TLS 1.1", 0x0302),
    ] {
        let answer = https::probe_client_hello(webhook.addr, version).expect("probe");
        assert!(
            !matches!(answer, HelloAnswer::ServerHello { .. }),
            "{name} was accepted: {answer:?}"
        );
    }
    assert!(matches!(
        https::probe_client_hello(webhook.addr, 0x0303).expect("probe"),
        HelloAnswer::ServerHello { version: 0x0303 }
    ));
    for plain in [
        &b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &b"POST /mutate HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}"[..],
        &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..],
    ] {
        let mut stream = TcpStream::connect(webhook.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream.write_all(plain).expect("send");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        assert!(
            !answer.starts_with(b"HTTP/"),
            "plain HTTP was answered: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    // The plain-HTTP metrics listener never serves the admission API.
    let mut stream = TcpStream::connect(webhook.metrics_addr).expect("connect");
    let body = review("over-plain-http", objects());
    stream
        .write_all(format!("POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).as_bytes())
        .expect("send");
    stream.write_all(&body).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(!answer.contains("over-plain-http"), "{answer}");
}

fn post_raw(client: &Client, content_type: &str, body: &[u8]) -> (u16, String, Duration) {
    let started = Instant::now();
    let response = client
        .connect()
        .expect("connect")
        .request("POST", "/mutate", Some((content_type, body)))
        .expect("POST");
    (response.status, response.text(), started.elapsed())
}

#[test]
fn hostile_bodies_get_a_clear_400_413_or_denial_fast() {
    let dir = certs();
    let webhook = Webhook::start(
        program(),
        serve_args(
            &dir.path().join("tls.crt"),
            &dir.path().join("tls.key"),
            &[],
        ),
    );
    let client = Client::new(webhook.addr, SERVICE_NAME, &[&dir.path().join("ca.crt")]);
    let fast = Duration::from_secs(3);

    // Declared too large: refused before a byte of the body is read.
    let mut connection = client.connect().expect("connect");
    connection
        .send_head(
            "POST",
            "/mutate",
            Some("application/json"),
            Some(9 * 1024 * 1024),
        )
        .expect("head");
    let response = connection.read_response().expect("413 without the body");
    assert_eq!(response.status, 413, "{}", response.text());

    // Streamed without a length, past the limit.
    let mut connection = client.connect().expect("connect");
    connection
        .send_head(
            "POST",
            "/mutate",
            Some("application/json\r\nTransfer-Encoding: chunked"),
            None,
        )
        .expect("head");
    let chunk = vec![b' '; 1024 * 1024];
    let mut refused = None;
    for _ in 0..10 {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        if connection.send_body(&framed).is_err() {
            break;
        }
    }
    if let Ok(response) = connection.read_response() {
        refused = Some(response.status);
    }
    assert_eq!(refused, Some(413), "a streamed body over the limit");

    let nested = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000));
    let huge_annotation = {
        let mut annotations = objects();
        annotations["secrets-injector.io/objects"] =
            json!("- objectName: /a\n  objectType: ssmparameter\n".repeat(3 * 1024 * 1024 / 44));
        review("huge-annotation", annotations)
    };
    let many_containers = {
        let mut body: Value =
            serde_json::from_slice(&review("many-containers", objects())).expect("json");
        let containers: Vec<Value> = (0..10_000)
            .map(|i| json!({"name": format!("c{i}"), "image": "app:1"}))
            .collect();
        body["request"]["object"]["spec"]["containers"] = Value::Array(containers);
        serde_json::to_vec(&body).expect("json")
    };
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("invalid UTF-8", b"{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":\xff\xfe}".to_vec(), 400),
        ("binary noise", (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect(), 400),
        ("deep JSON", nested.into_bytes(), 400),
        ("empty", Vec::new(), 400),
        ("YAML, not JSON", b"apiVersion: admission.k8s.io/v1\nkind: AdmissionReview\n".to_vec(), 400),
        ("a 3 MiB annotation", huge_annotation, 200),
        ("10,000 containers", many_containers, 200),
    ];
    for (what, body, status) in cases {
        let (got, text, elapsed) = post_raw(&client, "application/json", &body);
        assert_eq!(got, status, "{what}: {text:.300}");
        assert!(elapsed < fast, "{what}: took {elapsed:?}");
        if status == 400 {
            assert!(text.len() < 300 && !text.is_empty(), "{what}: {text:.300}");
        }
        if what == "a 3 MiB annotation" {
            let answer: Value = serde_json::from_str(&text).expect("review");
            assert_eq!(answer["response"]["allowed"], false, "{what}");
            assert_eq!(answer["response"]["status"]["code"], 400, "{what}");
            let message = answer["response"]["status"]["message"]
                .as_str()
                .expect("message");
            assert!(
                message.contains("over the limit of 65536 bytes"),
                "{what}: {message:.300}"
            );
        }
    }
    // Still healthy afterwards.
    assert_eq!(client.get("/healthz").expect("healthz").status, 200);
    let _: SocketAddr = webhook.addr;
}

/// A log collector that stops reading (a full pipe) must not stop admission: the webhook keeps
/// answering while its log lines cannot be written. Each review logs a line of about 300 bytes,
/// so 1,500 reviews are several times what a pipe holds.
#[test]
fn a_log_pipe_nobody_reads_does_not_stall_reviews() {
    use std::io::BufRead;

    let dir = certs();
    let mut command = https::serve_command(program());
    command.args(serve_args(
        &dir.path().join("tls.crt"),
        &dir.path().join("tls.key"),
        &[],
    ));
    let mut child = https::spawn_logging(command);
    // Read up to the line naming the port, then never again.
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    let addr = loop {
        line.clear();
        if stderr.read_line(&mut line).expect("read the log") == 0 {
            let _ = child.kill();
            panic!("webhook serve exited before serving");
        }
        if line.contains("\"message\":\"serving\"") {
            break https::serving_addrs(&line).0;
        }
    };
    let client = Client::new(addr, SERVICE_NAME, &[&dir.path().join("ca.crt")]);
    let started = Instant::now();
    for i in 0..1500 {
        let uid = format!("stalled-log-{i}");
        let response = client
            .post_json("/mutate", &review(&uid, objects()))
            .unwrap_or_else(|e| panic!("review {i} with the log pipe full: {e}"));
        assert_eq!(response.status, 200);
        assert_eq!(response.json()["response"]["uid"], uid.as_str());
    }
    let elapsed = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    drop(stderr);
    assert!(
        elapsed < Duration::from_secs(60),
        "1,500 reviews took {elapsed:?}"
    );
}

#[test]
fn a_body_budget_that_cannot_hold_one_largest_body_stops_the_start() {
    let dir = certs();
    let (status, output) = failed_start(
        &dir.path().join("tls.crt"),
        &dir.path().join("tls.key"),
        &["--max-body-bytes-in-flight", "8388608"],
    );
    assert!(!status.success());
    assert!(
        output.contains(
            "--max-body-bytes-in-flight 8388608 is too small for --max-body-bytes 8388608"
        ) && output.contains("at least 11184811"),
        "{output}"
    );
}

/// A field of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("process status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The value of one series in the metrics text, 0 when absent.
fn series(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0, |value| value.trim().parse().expect("counter value"))
}

/// The Deployment's memory limit is 128 Mi. 40 bodies of the largest accepted size (8 MiB) sent
/// at once must leave the webhook's peak RSS under 96 MiB, the reviews the API server really
/// sends must be answered meanwhile, every large body gets an answer, a 503 with Retry-After or
/// a 413, and a second burst fits under the same bound (the first one's memory was given back).
#[test]
fn a_burst_of_large_bodies_stays_within_the_memory_limit() {
    const LARGE: usize = 40;
    const MAX_BODY: usize = 8 * 1024 * 1024;
    const PEAK_BOUND_KIB: u64 = 96 * 1024;
    const MAX_NORMAL: usize = 2000;
    let dir = certs();
    for manifest in [
        "manifests/base/deployment.yaml",
        "manifests/helm/secrets-injector/templates/deployment.yaml",
    ] {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(manifest),
        )
        .expect("the Deployment manifest");
        for (name, value) in ALLOCATOR_ENV {
            assert!(
                text.contains(&format!("- name: {name}\n              value: \"{value}\"")),
                "{manifest} no longer sets {name}={value}"
            );
        }
    }
    let webhook = Webhook::start_with_env(
        program(),
        serve_args(
            &dir.path().join("tls.crt"),
            &dir.path().join("tls.key"),
            &[],
        ),
        ALLOCATOR_ENV,
    );
    let pid = webhook.pid();
    let client = Client::new(webhook.addr, SERVICE_NAME, &[&dir.path().join("ca.crt")]);
    for i in 0..5 {
        let response = client
            .post_json("/mutate", &review(&format!("warm-{i}"), objects()))
            .expect("POST");
        assert_eq!(response.status, 200);
    }
    let baseline = status_kib(pid, "VmRSS");

    // A review with one huge annotation, padded to exactly the largest accepted size.
    let large = {
        let mut annotations = objects();
        annotations["secrets-injector.io/pad"] = json!("");
        let empty = review("large", annotations.clone()).len();
        annotations["secrets-injector.io/pad"] = json!("a".repeat(MAX_BODY - empty));
        review("large", annotations)
    };
    assert_eq!(large.len(), MAX_BODY);

    // Two bursts: the second must fit under the same bound, so what the first held was given
    // back (to the allocator for reuse, or to the system), not kept on top.
    let mut refused_total = 0;
    for round in 0..2 {
        let finished = std::sync::atomic::AtomicUsize::new(0);
        let start = std::sync::Barrier::new(LARGE + 1);
        let (outcomes, normal) = std::thread::scope(|scope| {
            let senders: Vec<_> = (0..LARGE)
                .map(|_| {
                    scope.spawn(|| {
                        let mut connection = client.connect().expect("connect");
                        start.wait();
                        // Written once; the answer may be lost when the server refuses the body
                        // and closes the connection while it is still being written.
                        let outcome = connection.request(
                            "POST",
                            "/mutate",
                            Some(("application/json", &large)),
                        );
                        finished.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        outcome
                    })
                })
                .collect();
            start.wait();
            let mut normal = 0;
            while finished.load(std::sync::atomic::Ordering::SeqCst) < LARGE && normal < MAX_NORMAL
            {
                let uid = format!("during-burst-{round}-{normal}");
                let response = client
                    .post_json("/mutate", &review(&uid, objects()))
                    .expect("a review during the burst");
                assert_eq!(response.status, 200, "{}", response.text());
                assert_eq!(response.json()["response"]["uid"], uid.as_str());
                normal += 1;
            }
            let outcomes: Vec<_> = senders
                .into_iter()
                .map(|sender| sender.join().expect("sender thread"))
                .collect();
            (outcomes, normal)
        });
        let peak = status_kib(pid, "VmHWM");
        assert!(
            peak < PEAK_BOUND_KIB,
            "burst {round}: peak RSS {peak} KiB over the bound of {PEAK_BOUND_KIB} KiB \
             (baseline {baseline} KiB)"
        );
        eprintln!(
            "burst {round}: baseline {baseline} KiB, peak {peak} KiB, {normal} reviews during the burst"
        );
        assert!(normal > 0, "no review was sent during the burst");

        let mut answered = 0;
        for outcome in outcomes {
            match outcome {
                Ok(response) if response.status == 200 => answered += 1,
                Ok(response) if response.status == 503 => {
                    assert_eq!(response.header("retry-after"), Some("1"));
                }
                Ok(response) => assert_eq!(response.status, 413, "{}", response.text()),
                Err(e) => assert!(
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::BrokenPipe
                            | std::io::ErrorKind::UnexpectedEof
                    ),
                    "a large body: {e}"
                ),
            }
        }
        // Every large body was either answered or counted as refused.
        let metrics = webhook.metrics();
        let refused = series(
            &metrics,
            "secrets_injector_rejected_requests_total{reason=\"bodies_in_flight\"}",
        );
        assert!(refused > refused_total, "no body was refused:\n{metrics}");
        assert_eq!(
            answered + (refused - refused_total) as usize,
            LARGE,
            "{metrics}"
        );
        refused_total = refused;
    }
}
