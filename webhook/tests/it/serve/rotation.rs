//! Certificate rotation as a Secret volume does it (a `..data` symlink swap), under continuous
//! load, and bad files after start, against the built `webhook serve`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrets_injector_e2e::https::{self, Client, SERVICE_NAME, SecretVolume, Webhook};

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_webhook"))
}

fn der(pem_file: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(pem_file)
        .expect("PEM certificate")
        .as_ref()
        .to_vec()
}

fn start(volume: &SecretVolume) -> Webhook {
    Webhook::start(
        program(),
        [
            "--tls-cert".into(),
            volume.cert().into_os_string(),
            "--tls-key".into(),
            volume.key().into_os_string(),
            "--injector-image".into(),
            std::ffi::OsString::from("registry.example.com/secrets-injector/injector:1.0.0"),
        ],
    )
}

fn metric(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
}

#[test]
fn a_swapped_secret_volume_is_served_within_10s_without_a_failed_request() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    https::make_certs(program(), first.path(), &[]);
    https::make_certs(program(), second.path(), &[]);
    let mounted = tempfile::tempdir().unwrap();
    let mut volume = SecretVolume::new(mounted.path(), first.path());
    let webhook = start(&volume);

    let first_ca = first.path().join("ca.crt");
    let second_ca = second.path().join("ca.crt");
    // The client trusts both CAs, as the caBundle does during a CA rotation.
    let client = Client::new(webhook.addr, SERVICE_NAME, &[&first_ca, &second_ca]);
    let (old_der, new_der) = (
        der(&first.path().join("tls.crt")),
        der(&second.path().join("tls.crt")),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let new_seen = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let load = {
        let (stop, sent, new_seen, client) =
            (stop.clone(), sent.clone(), new_seen.clone(), client.clone());
        let (old_der, new_der) = (old_der.clone(), new_der.clone());
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                sent.fetch_add(1, Ordering::SeqCst);
                // A new connection each time: only a handshake shows which certificate is served.
                let result = client.connect().and_then(|mut connection| {
                    let cert = connection.peer_certificate();
                    let response = connection.request("GET", "/readyz", None)?;
                    Ok((cert, response.status))
                });
                match result {
                    Ok((Some(cert), 200)) if cert == new_der => {
                        new_seen.lock().unwrap().get_or_insert_with(Instant::now);
                    }
                    Ok((Some(cert), 200)) if cert == old_der => {}
                    other => failures.push(format!("{other:?}")),
                }
            }
            failures
        })
    };

    std::thread::sleep(Duration::from_secs(1));
    let swapped = Instant::now();
    volume.update(second.path());
    let deadline = swapped + Duration::from_secs(10);
    while new_seen.lock().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Keep the load on a little after the swap, then stop.
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::SeqCst);
    let failures = load.join().unwrap();
    let sent = sent.load(Ordering::SeqCst);
    let seen_after = new_seen.lock().unwrap().map(|t| t.duration_since(swapped));
    println!(
        "rotation: {sent} requests sent, {} failed, new certificate seen {:.2} s after the ..data swap",
        failures.len(),
        seen_after.map_or(f64::NAN, |d| d.as_secs_f64())
    );
    assert!(
        failures.is_empty(),
        "failed requests during rotation: {failures:?}"
    );
    let seen_after = seen_after.expect("the new certificate was not served within 10 s");
    assert!(seen_after <= Duration::from_secs(10), "{seen_after:?}");
    assert!(sent > 20, "only {sent} requests: the load did not run");

    // A client that trusts only the new CA can connect now.
    let only_new = Client::new(webhook.addr, SERVICE_NAME, &[&second_ca]);
    assert_eq!(only_new.get("/healthz").unwrap().status, 200);

    let line = webhook
        .wait_for_log("serving a new certificate", Duration::from_secs(2))
        .expect("a log line for the new certificate");
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(
        event["not_after"].as_str().is_some_and(|t| !t.is_empty()),
        "{line}"
    );
    let metrics = webhook.metrics();
    assert_eq!(
        metric(
            &metrics,
            "secrets_injector_certificate_reloads_total{result=\"success\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            "secrets_injector_certificate_reloads_total{result=\"failure\"}"
        ),
        0.0
    );
    let (_, parsed) = x509_parser::parse_x509_certificate(&new_der).unwrap();
    assert_eq!(
        metric(
            &metrics,
            "secrets_injector_certificate_expiry_timestamp_seconds"
        ),
        parsed.validity().not_after.timestamp() as f64
    );
}

#[test]
fn bad_files_after_start_keep_the_last_good_certificate() {
    let good = tempfile::tempdir().unwrap();
    https::make_certs(program(), good.path(), &[]);
    let other = tempfile::tempdir().unwrap();
    https::make_certs(program(), other.path(), &[]);
    let mounted = tempfile::tempdir().unwrap();
    let mut volume = SecretVolume::new(mounted.path(), good.path());
    let webhook = start(&volume);
    let client = Client::new(webhook.addr, SERVICE_NAME, &[&good.path().join("ca.crt")]);
    let good_der = der(&good.path().join("tls.crt"));

    // Garbage in place of both files.
    let garbage = tempfile::tempdir().unwrap();
    for file in ["tls.crt", "tls.key", "ca.crt"] {
        std::fs::write(garbage.path().join(file), "not PEM at all\n").unwrap();
    }
    volume.update(garbage.path());
    let line = webhook
        .wait_for_log("cannot be served", Duration::from_secs(10))
        .expect("a warning about the bad files");
    assert!(line.contains("\"level\":\"WARN\""), "{line}");
    assert!(line.contains("tls.crt: no certificate found"), "{line}");
    let mut connection = client.connect().expect("still served");
    assert_eq!(connection.peer_certificate().unwrap(), good_der);
    assert_eq!(
        connection.request("GET", "/healthz", None).unwrap().status,
        200
    );

    // A valid certificate with the key of another one.
    let mismatched = tempfile::tempdir().unwrap();
    std::fs::copy(
        other.path().join("tls.crt"),
        mismatched.path().join("tls.crt"),
    )
    .unwrap();
    std::fs::copy(
        good.path().join("tls.key"),
        mismatched.path().join("tls.key"),
    )
    .unwrap();
    std::fs::copy(
        other.path().join("ca.crt"),
        mismatched.path().join("ca.crt"),
    )
    .unwrap();
    volume.update(mismatched.path());
    let line = webhook
        .wait_for_log("does not match", Duration::from_secs(10))
        .expect("a warning about the mismatched pair");
    assert!(
        line.contains("tls.key: the private key does not match the certificate"),
        "{line}"
    );
    assert_eq!(
        client.connect().unwrap().peer_certificate().unwrap(),
        good_der
    );

    // Each bad pair is reported once, not on every poll.
    std::thread::sleep(Duration::from_secs(5));
    let warnings = webhook
        .logs()
        .iter()
        .filter(|l| l.contains("cannot be served"))
        .count();
    assert_eq!(warnings, 2, "{:#?}", webhook.logs());
    let metrics = webhook.metrics();
    assert_eq!(
        metric(
            &metrics,
            "secrets_injector_certificate_reloads_total{result=\"failure\"}"
        ),
        2.0
    );
    assert_eq!(
        metric(
            &metrics,
            "secrets_injector_certificate_reloads_total{result=\"success\"}"
        ),
        0.0
    );
    assert!(
        webhook.logs().iter().all(|l| !l.contains("PRIVATE KEY")),
        "key material in the logs"
    );
}
