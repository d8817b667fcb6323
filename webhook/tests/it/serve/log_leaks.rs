//! The webhook never holds a secret value, but a pod can carry credentials in literal env values
//! (AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) that the init container copies, and the webhook
//! holds its own TLS private key. None of them may appear in a log line (JSON and text, every
//! level up to RUST_LOG=trace, the HTTP and TLS crates included), a metric, or a denial.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrets_injector_e2e::admission;
use secrets_injector_e2e::https::{self, Client, SERVICE_NAME};
use serde_json::{Value, json};

const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/CANARYsecretKEY9f2";
const SESSION_TOKEN: &str = "IQoJb3JpZ2luX2VjEC4NARYsessionTOKENd81";
const CANARY_IN_BAD_ENV: &str = "CANARY-region-value-0c1";

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_webhook"))
}

/// `webhook serve` with this RUST_LOG and log format, its stderr collected.
struct Server {
    child: Child,
    addr: SocketAddr,
    metrics_addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(dir: &Path, rust_log: &str, format: &str) -> Server {
        let mut child = https::serve_command(program())
            .args(["--log-format", format])
            .arg("--tls-cert")
            .arg(dir.join("tls.crt"))
            .arg("--tls-key")
            .arg(dir.join("tls.key"))
            .args([
                "--injector-image",
                "registry.example.com/injector:1",
                "--default-region",
                "us-east-1",
            ])
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start webhook serve");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stderr.take().expect("stderr")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().expect("stdout")),
        ] {
            let sink = Arc::clone(&logs);
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("serving") && line.contains("metrics_addr") {
                        let _ = tx.send(line.clone());
                    }
                    sink.lock().expect("logs").push(line);
                }
            });
        }
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "webhook did not start:\n{}",
                    logs.lock().expect("logs").join("\n")
                )
            });
        let find = |field: &str| -> SocketAddr {
            let at = line
                .find(field)
                .unwrap_or_else(|| panic!("no {field} in {line}"));
            let rest = &line[at + field.len()..];
            let rest = rest.trim_start_matches(['"', ':', '=']);
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
                .unwrap_or(rest.len());
            rest[..end]
                .parse()
                .unwrap_or_else(|e| panic!("{field} in {line}: {e}"))
        };
        Server {
            addr: find("addr"),
            metrics_addr: find("metrics_addr"),
            child,
            logs,
        }
    }

    fn logs(&self) -> String {
        self.logs.lock().expect("logs").join("\n")
    }

    fn metrics(&self) -> String {
        use std::io::{Read, Write};
        let mut socket = std::net::TcpStream::connect(self.metrics_addr).expect("metrics");
        socket
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut out = String::new();
        socket.read_to_string(&mut out).expect("read");
        out
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn review(uid: &str, annotations: Value, env: Value) -> Vec<u8> {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "app:1", "env": env}]}
    });
    admission::body(&admission::create_review(uid, &pod, "apps"))
}

#[test]
fn credentials_in_pods_and_the_tls_key_never_reach_logs_metrics_or_denials() {
    let dir = tempfile::tempdir().expect("temp dir");
    https::make_certs(program(), dir.path(), &[]);
    let key_pem = std::fs::read_to_string(dir.path().join("tls.key")).expect("key");
    let key_lines: Vec<&str> = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .collect();
    let credentials = json!([
        {"name": "AWS_ACCESS_KEY_ID", "value": "AKIACANARYACCESSKEY1"},
        {"name": "AWS_SECRET_ACCESS_KEY", "value": SECRET_KEY},
        {"name": "AWS_SESSION_TOKEN", "value": SESSION_TOKEN},
        {"name": "AWS_REGION", "value": "us-east-1"}
    ]);
    let objects = json!({"secrets-injector.io/objects": "- objectName: /app/db\n  objectType: ssmparameter\n"});
    let bad = json!({"secrets-injector.io/objects": "- objectName: /app/db\n", "secrets-injector.io/mount-path": "relative"});
    for (rust_log, format) in [
        ("trace", "json"),
        ("trace", "text"),
        ("debug", "json"),
        ("info", "json"),
    ] {
        let server = Server::start(dir.path(), rust_log, format);
        let client = Client::new(server.addr, SERVICE_NAME, &[&dir.path().join("ca.crt")]);
        let mut denials = Vec::new();
        for (uid, annotations, env) in [
            ("mutated", objects.clone(), credentials.clone()),
            ("denied", bad.clone(), credentials.clone()),
            (
                "bad-region",
                objects.clone(),
                json!([{"name": "AWS_REGION", "value": CANARY_IN_BAD_ENV}, {"name": "AWS_SECRET_ACCESS_KEY", "value": SECRET_KEY}]),
            ),
        ] {
            let response = client
                .post_json("/mutate", &review(uid, annotations, env))
                .expect("POST");
            assert_eq!(response.status, 200, "{}", response.text());
            let answer = response.json();
            if answer["response"]["allowed"] == false {
                denials.push(
                    answer["response"]["status"]["message"]
                        .as_str()
                        .expect("message")
                        .to_owned(),
                );
            }
        }
        // Broken bodies that quote a credential must not echo it either.
        let broken = format!(
            "{{\"kind\":\"AdmissionReview\",\"apiVersion\":\"admission.k8s.io/v1\",\"request\":{{\"uid\":[\"{SECRET_KEY}\"]}}}}"
        );
        let response = client
            .post_json("/mutate", broken.as_bytes())
            .expect("POST");
        assert_eq!(response.status, 400);
        assert!(!response.text().contains(SECRET_KEY), "{}", response.text());
        let _ = client.get("/healthz");
        // Lines reach the log within the writer's flush interval, in order: wait for the last.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.logs().contains("request to /mutate rejected") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let logs = server.logs();
        let metrics = server.metrics();
        assert!(
            logs.lines().count() >= 3,
            "{rust_log}: nothing logged:\n{logs}"
        );
        for (what, text) in [
            ("logs", &logs),
            ("metrics", &metrics),
            ("denials", &denials.join("\n")),
        ] {
            for secret in [SECRET_KEY, SESSION_TOKEN, "AKIACANARYACCESSKEY1"] {
                assert!(
                    !text.contains(secret),
                    "{rust_log} {format}: {what} show {secret}:\n{text}"
                );
            }
            for line in &key_lines {
                assert!(
                    !text.contains(line),
                    "{rust_log} {format}: {what} show the TLS key"
                );
            }
        }
        assert_eq!(denials.len(), 2, "{denials:?}");
    }
}
