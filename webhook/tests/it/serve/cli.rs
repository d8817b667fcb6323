//! The `webhook` binary's offline subcommands: `certs`, which makes what the HTTPS listener
//! serves, and `inject`, the same mutation as `/mutate` for manifests on disk.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrets_injector_e2e::validate::validate_files;

const IMAGE: &str = "registry.example.com/secrets-injector/injector:1.0.0";

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_webhook"))
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn certs_writes_a_valid_secret_a_ca_bundle_and_a_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = Command::new(program())
        .args(["certs", "--service", "hook", "--namespace", "infra"])
        .args([
            "--extra-san",
            "hook.example.com",
            "--extra-san",
            "127.0.0.1",
        ])
        .args(["--days", "90", "--secret-name", "hook-tls", "--out-dir"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    for file in [
        "ca.crt",
        "tls.crt",
        "tls.key",
        "secret.yaml",
        "ca-bundle.txt",
    ] {
        assert!(
            stdout.contains(&format!("wrote {}", out.join(file).display())),
            "{stdout}"
        );
    }

    validate_files(&[out.join("secret.yaml")]).expect("secret.yaml is a valid Secret");
    let secret: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(out.join("secret.yaml")).unwrap()).unwrap();
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert_eq!(secret["metadata"]["name"], "hook-tls");
    assert_eq!(secret["metadata"]["namespace"], "infra");
    let b64 = base64::engine::general_purpose::STANDARD;
    let ca = std::fs::read(out.join("ca.crt")).unwrap();
    assert_eq!(
        b64.decode(secret["data"]["ca.crt"].as_str().unwrap())
            .unwrap(),
        ca
    );
    assert_eq!(
        b64.decode(secret["data"]["tls.key"].as_str().unwrap())
            .unwrap(),
        std::fs::read(out.join("tls.key")).unwrap()
    );
    let bundle = std::fs::read_to_string(out.join("ca-bundle.txt")).unwrap();
    assert_eq!(b64.decode(bundle.trim_end()).unwrap(), ca);

    let cert = CertificateDer::from_pem_file(out.join("tls.crt")).unwrap();
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert).unwrap();
    let sans = parsed.subject_alternative_name().unwrap().unwrap();
    let names: Vec<String> = sans
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    for name in [
        "hook",
        "hook.infra",
        "hook.infra.svc",
        "hook.infra.svc.cluster.local",
        "hook.example.com",
    ] {
        assert!(
            names.iter().any(|n| n.contains(name)),
            "{name} not in {names:?}"
        );
    }
    let lifetime =
        parsed.validity().not_after.timestamp() - parsed.validity().not_before.timestamp();
    assert_eq!(lifetime / 86_400, 90, "90 days and the hour of clock skew");

    let bad = Command::new(program())
        .args(["certs", "--namespace", "Infra", "--out-dir"])
        .arg(dir.path().join("bad"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).starts_with(
            "certificate generation: --namespace \"Infra\" is not a valid Kubernetes name"
        ),
        "{bad:?}"
    );
    assert!(
        !dir.path().join("bad").exists(),
        "nothing written on failure"
    );
}

#[test]
fn inject_reads_a_file_or_standard_input_and_prints_the_mutated_manifest() {
    let from_file = Command::new(program())
        .args(["inject", "--injector-image", IMAGE, "-f"])
        .arg(fixture("seeds-example-pod.yaml"))
        .output()
        .unwrap();
    assert!(from_file.status.success(), "{from_file:?}");
    let pod: serde_json::Value =
        serde_saphyr::from_str(&String::from_utf8(from_file.stdout.clone()).unwrap()).unwrap();
    let init = &pod["spec"]["initContainers"][0];
    assert_eq!(init["name"], "secrets-injector");
    assert_eq!(init["image"], IMAGE);

    let mut child = Command::new(program())
        .args(["inject", "--injector-image", IMAGE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(fixture("seeds-example-pod.yaml")).unwrap())
        .unwrap();
    let from_stdin = child.wait_with_output().unwrap();
    assert!(from_stdin.status.success());
    assert_eq!(
        from_stdin.stdout, from_file.stdout,
        "same output from standard input"
    );

    // Flags come from the environment too.
    let from_env = Command::new(program())
        .args(["inject", "--filename"])
        .arg(fixture("seeds-example-pod.yaml"))
        .env("SECRETS_INJECTOR_INJECTOR_IMAGE", IMAGE)
        .output()
        .unwrap();
    assert_eq!(from_env.stdout, from_file.stdout);
}

#[test]
fn inject_fails_with_the_admission_message_and_exit_1() {
    let mut child = Command::new(program())
        .args([
            "inject",
            "--injector-image",
            IMAGE,
            "--default-region",
            "eu-west-1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\n  annotations:\n    \
              secrets-injector.io/objects: |\n      - objectName: db\n        \
              objectType: ssmparameter\n    secrets-injector.io/region: eu-west-1\n\
              spec:\n  containers:\n    - name: app\n      image: nginx\n      \
              securityContext:\n        runAsUser: 1000\n---\n\
              apiVersion: v1\nkind: Pod\nmetadata:\n  name: worse\n  annotations:\n    \
              secrets-injector.io/objects: \"- objectName: x\"\n\
              spec:\n  containers:\n    - name: app\n      image: nginx\n",
        )
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("worse"),
        "the message names the document: {stderr}"
    );
    assert!(
        stderr.contains("objectType"),
        "the message names the rule: {stderr}"
    );

    let missing = Command::new(program())
        .args([
            "inject",
            "--injector-image",
            IMAGE,
            "-f",
            "/nonexistent/pods.yaml",
        ])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .starts_with("reading /nonexistent/pods.yaml: No such file or directory"),
        "{missing:?}"
    );

    let no_image = Command::new(program())
        .args(["inject", "-f"])
        .arg(fixture("seeds-example-pod.yaml"))
        .env_remove("SECRETS_INJECTOR_INJECTOR_IMAGE")
        .output()
        .unwrap();
    assert_eq!(
        no_image.status.code(),
        Some(2),
        "a missing flag is a usage error"
    );
    assert!(String::from_utf8_lossy(&no_image.stderr).contains("--injector-image"));
}

#[test]
fn inject_takes_the_refresh_flags_and_refuses_a_sidecar_limit_below_the_volume() {
    let run = |args: &[&str], env: &[(&str, &str)]| {
        Command::new(program())
            .args(["inject", "--injector-image", IMAGE, "-f"])
            .arg(fixture("refresh-pod.yaml"))
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let sized = run(
        &["--refresh-cpu-limit=250m", "--volume-size-limit=32Mi"],
        &[("SECRETS_INJECTOR_REFRESH_MEMORY_REQUEST", "24Mi")],
    );
    assert!(sized.status.success(), "{sized:?}");
    let pod: serde_json::Value =
        serde_saphyr::from_str(&String::from_utf8(sized.stdout).unwrap()).unwrap();
    let sidecar = &pod["spec"]["initContainers"][1];
    assert_eq!(sidecar["name"], "secrets-injector-refresh");
    assert_eq!(
        sidecar["resources"],
        serde_json::json!({"limits": {"cpu": "250m", "memory": "64Mi"}, "requests": {"cpu": "10m", "memory": "24Mi"}})
    );

    let too_small = run(&["--refresh-memory-limit=32Mi"], &[]);
    assert_eq!(too_small.status.code(), Some(1), "{too_small:?}");
    let stderr = String::from_utf8_lossy(&too_small.stderr);
    assert!(
        stderr.contains(
            "--refresh-memory-limit 32Mi is less than the refresh sidecar needs with --volume-size-limit 16Mi: 40Mi"
        ),
        "{stderr}"
    );

    let stricter = run(&[], &[("SECRETS_INJECTOR_REFRESH_MIN_INTERVAL", "10m")]);
    assert_eq!(stricter.status.code(), Some(1), "{stricter:?}");
    let stderr = String::from_utf8_lossy(&stricter.stderr);
    assert!(
        stderr.contains("5m is shorter than this cluster's minimum, 10m"),
        "{stderr}"
    );

    let bad_flag = run(&["--refresh-min-interval=30"], &[]);
    assert_eq!(bad_flag.status.code(), Some(2), "{bad_flag:?}");
    assert!(String::from_utf8_lossy(&bad_flag.stderr).contains("\"30\" has no unit"));
}
