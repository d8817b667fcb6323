//! Secrets never leak from the injector: distinctive values are seeded in moto, and no log line
//! (JSON and text, every level, RUST_LOG=trace and the SDK's own crates asked for trace too),
//! no error, no report and no termination message shows any of them, on success and on every
//! failure path. The web-identity token, a credential too, never shows either. Files are written
//! with their final mode into the mount directory only, and nothing is left anywhere else.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_ssm::types::ParameterType;

use crate::support::*;

/// What Pod::new writes as the web-identity token: a credential, never to be shown.
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.e30.sig";

const LOG_SETTINGS: &[(&str, &str)] = &[
    ("trace", "json"),
    ("trace", "text"),
    (
        "trace,aws_smithy_runtime=trace,aws_smithy_http_client=trace,aws_smithy_runtime_api=trace,\
         aws_sdk_ssm=trace,aws_sdk_secretsmanager=trace,aws_sdk_sts=trace,aws_config=trace,\
         aws_sigv4=trace,aws_runtime=trace,hyper=trace,hyper_util=trace,h2=trace,rustls=trace",
        "json",
    ),
    ("debug", "json"),
    ("info", "json"),
    ("error", "text"),
];

/// Values that look like nothing else: any of them in an output is a leak.
struct Canaries {
    parameter: &'static str,
    secret_user: &'static str,
    secret_password: &'static str,
    binary: &'static [u8],
}

const CANARIES: Canaries = Canaries {
    parameter: "pAr4m-CANARY-7f3a9c",
    secret_user: "us3r-CANARY-b81d2e",
    secret_password: "p4ss'w0rd\"CANARY\\e5c0{}",
    binary: b"\x00\x01bin4ry-CANARY-99d1\xff",
};

fn seed(aws: &Seeder) -> String {
    aws.put(
        "/leaks/param",
        &format!("{}-SENTINEL", CANARIES.parameter),
        ParameterType::SecureString,
    );
    let json = serde_json::json!({"user": CANARIES.secret_user, "password": CANARIES.secret_password, "nested": {"n": 1}});
    aws.secret("leaks/json", &json.to_string());
    aws.binary_secret("leaks/binary", CANARIES.binary);
    "\
- {objectName: /leaks/param, objectType: ssmparameter, objectAlias: PARAM, filePermission: \"0600\"}
- objectName: leaks/json
  objectType: secretsmanager
  objectAlias: json
  jmesPath: [{path: user, objectAlias: USER}, {path: password, objectAlias: PASSWORD, filePermission: \"0400\"}]
- {objectName: leaks/binary, objectType: secretsmanager, objectAlias: BINARY}
"
    .to_owned()
}

fn canary_pod(endpoint: &str, rust_log: &str, format: &str) -> Pod {
    let mut pod = Pod::new(endpoint);
    pod.secret_values = vec![
        CANARIES.parameter.to_owned(),
        CANARIES.secret_user.to_owned(),
        CANARIES.secret_password.to_owned(),
        "bin4ry-CANARY".to_owned(),
        // serde_json's escaped form of the password, as a JSON log line would carry it.
        serde_json::to_string(CANARIES.secret_password)
            .expect("json")
            .trim_matches('"')
            .to_owned(),
        TOKEN.to_owned(),
    ];
    pod.env.push(("RUST_LOG".to_owned(), rust_log.to_owned()));
    pod.env
        .push(("SECRETS_INJECTOR_LOG_FORMAT".to_owned(), format.to_owned()));
    pod
}

#[test]
fn no_value_in_any_output_of_a_good_run_at_any_log_level() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    let objects = seed(&aws);
    for (rust_log, format) in LOG_SETTINGS {
        // Pod::run checks stdout, stderr and the termination log for every value.
        let pod = canary_pod(&moto.endpoint(), rust_log, format);
        let out = pod.run(&objects, &["--env-file", "ENV"]);
        out.assert_success();
        assert_eq!(pod.read("USER"), CANARIES.secret_user.as_bytes());
        assert_eq!(pod.read("BINARY"), CANARIES.binary);
        if *rust_log == "trace" {
            assert!(
                out.stdout.lines().count() > 1,
                "trace logged nothing: {}",
                out.stdout
            );
        }
    }
}

#[test]
fn no_value_in_any_output_of_a_failed_run() {
    let moto = Moto::start();
    let proxy = Proxy::start(moto.addr());
    let aws = Seeder::new(&moto.endpoint(), REGION);
    let objects = seed(&aws);
    // Some objects fetched (their values in memory), then failures of every kind.
    let failures = [
        (
            "a missing object",
            format!("{objects}- {{objectName: /leaks/missing, objectType: ssmparameter}}\n"),
            None,
        ),
        (
            "a JMESPath that finds nothing",
            format!(
                "{objects}- {{objectName: leaks/json, objectType: secretsmanager, objectAlias: j2, jmesPath: [{{path: nope, objectAlias: NOPE}}]}}\n"
            ),
            None,
        ),
        (
            "JMESPath over a value that is not JSON",
            format!(
                "{objects}- {{objectName: /leaks/param, objectType: ssmparameter, objectAlias: p2, jmesPath: [{{path: a, objectAlias: A}}]}}\n"
            ),
            None,
        ),
        (
            "a value that is not JSON for a jmesPath on a binary",
            format!(
                "{objects}- {{objectName: leaks/binary, objectType: secretsmanager, objectAlias: b2, jmesPath: [{{path: a, objectAlias: B}}]}}\n"
            ),
            None,
        ),
        (
            "access denied on secrets",
            objects.clone(),
            Some(Fault::always(FaultKind::AccessDenied).for_operation("GetSecretValue")),
        ),
        (
            "throttling to the deadline",
            objects.clone(),
            Some(Fault::always(FaultKind::Throttling).for_operation("GetSecretValue")),
        ),
    ];
    for (what, objects, fault) in &failures {
        proxy.set_faults(fault.iter().cloned().collect());
        for (rust_log, format) in &LOG_SETTINGS[..3] {
            let pod = canary_pod(&proxy.endpoint(), rust_log, format);
            let out = pod.run(objects, &["--deadline", "4s"]);
            assert_eq!(out.code, 1, "{what}: {out:#?}");
            assert!(pod.entries().is_empty(), "{what}: {:?}", pod.entries());
            assert!(!out.termination_log.is_empty(), "{what}");
        }
    }
}

#[test]
fn files_get_their_mode_from_the_start_and_only_the_mount_directory_is_written() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    let objects = seed(&aws);
    let pod = canary_pod(&moto.endpoint(), "info", "json");
    let mount = pod.mount();
    let root = mount.parent().expect("pod dir").to_path_buf();
    let before: Vec<String> = listing(&root);
    // Watch the mount directory while the injector works: nothing in it may ever be readable
    // by more than its final mode allows, and the staging directory is the injector's own.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = Arc::clone(&stop);
        let mount = mount.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                walk_modes(&mount, &mount, &mut seen);
            }
            seen
        })
    };
    let out = pod.run(&objects, &["--env-file", "ENV"]);
    stop.store(true, Ordering::SeqCst);
    let seen = watcher.join().expect("watcher");
    out.assert_success();
    let final_modes = pod.files();
    for (path, mode) in &seen {
        // A generation is the injector's own (0700) until every file is in it (0755).
        let Some((generation, path)) = path.split_once('/') else {
            assert!(
                *mode == 0o700 || *mode == 0o755,
                "the generation directory {path} was {mode:o}"
            );
            continue;
        };
        assert!(
            crate::support::is_generation(generation),
            "{generation}/{path}"
        );
        if let Some((_, final_mode)) = final_modes.get(path) {
            assert_eq!(
                mode, final_mode,
                "{path} was seen with mode {mode:o}, not {final_mode:o}"
            );
        }
    }
    assert_eq!(final_modes["PARAM"].1, 0o600);
    assert_eq!(final_modes["PASSWORD"].1, 0o400);
    assert_eq!(final_modes["USER"].1, 0o644);
    // Nothing new beside the mount directory, and no temporary file left in it: one
    // generation, ..data and the links.
    assert_eq!(listing(&root), before);
    let generation = pod.generation();
    assert!(
        pod.entries()
            .iter()
            .all(|e| !e.starts_with('.') || *e == generation || e == "..data"),
        "{:?}",
        pod.entries()
    );
}

/// Names directly in `dir`, but the termination log, which every run writes.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name != "termination-log")
        .collect();
    names.sort();
    names
}

fn walk_modes(root: &Path, dir: &Path, seen: &mut Vec<(String, u32)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let rel = path
            .strip_prefix(root)
            .expect("inside")
            .to_string_lossy()
            .into_owned();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.is_dir() {
            if !rel.contains('/') {
                seen.push((rel, mode));
            }
            walk_modes(root, &path, seen);
        } else if meta.is_file() {
            seen.push((rel, mode));
        }
    }
}

#[test]
fn symlinks_left_in_the_volume_are_removed_not_followed() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    let objects = seed(&aws);
    let pod = canary_pod(&moto.endpoint(), "info", "json");
    let outside = tempfile::tempdir().expect("temp dir");
    let target = outside.path().join("victim");
    std::fs::write(&target, "untouched").expect("victim");
    // A file, a directory, ..data and a generation's name, each a symlink out of the volume.
    std::os::unix::fs::symlink(&target, pod.mount().join("PARAM")).expect("symlink");
    std::os::unix::fs::symlink(outside.path(), pod.mount().join("json")).expect("symlink");
    std::os::unix::fs::symlink(outside.path(), pod.mount().join("..data")).expect("symlink");
    std::os::unix::fs::symlink(
        outside.path(),
        pod.mount().join("..2026_11_30_10_55_09.123456789"),
    )
    .expect("symlink");
    let out = pod.run(&objects, &[]);
    out.assert_success();
    assert_eq!(
        std::fs::read_to_string(&target).expect("victim"),
        "untouched"
    );
    assert_eq!(listing(outside.path()), vec!["victim".to_owned()]);
    let generation = pod.mount().join(pod.generation());
    for name in ["PARAM", "json"] {
        let meta = std::fs::symlink_metadata(generation.join(name)).expect("file");
        assert!(meta.is_file(), "{name} is not a regular file");
    }
    assert_eq!(
        pod.read("PARAM"),
        format!("{}-SENTINEL", CANARIES.parameter).as_bytes()
    );
}
