//! The injector copies `secrets-env` into the `secrets-injector-bin` volume for the containers
//! whose command the webhook wrapped (`--secrets-env-dir`): from beside its own executable, mode
//! 0555, replacing what an earlier attempt left; a missing source fails the run at once, naming
//! the file and the fix, before anything is fetched.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::*;

const OBJECTS: &str = "- objectName: /app/user\n  objectType: ssmparameter\n";

/// Every entry of a directory, hidden ones included, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("UTF-8"))
        .collect();
    names.sort();
    names
}

#[test]
fn secrets_env_beside_the_injector_is_copied_whole_with_mode_0555() {
    let moto = Moto::start();
    Seeder::new(&moto.endpoint(), REGION).string("/app/user", "user-SENTINEL");
    // An image's /usr/local/bin: the injector (hard-linked, as /proc/self/exe resolves links)
    // with a secrets-env beside it.
    let image = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    std::fs::hard_link(
        env!("CARGO_BIN_EXE_injector"),
        image.path().join("injector"),
    )
    .expect("hard link the injector");
    let program: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(image.path().join("secrets-env"), &program).expect("write secrets-env");
    // The bin volume after an attempt that was killed mid-copy, and one that finished.
    let bin = tempfile::tempdir().expect("bin volume");
    std::fs::write(bin.path().join(".secrets-env.tmp"), b"half").expect("stale temp file");
    std::fs::write(bin.path().join("secrets-env"), b"old").expect("old copy");

    let mut pod = Pod::new(&moto.endpoint());
    pod.program = image.path().join("injector");
    let dir_flag = format!("--secrets-env-dir={}", bin.path().display());
    for _ in 0..2 {
        let out = pod.run(OBJECTS, &[&dir_flag]);
        out.assert_success();
        assert_eq!(entries(bin.path()), ["secrets-env"]);
        let copy = bin.path().join("secrets-env");
        assert_eq!(std::fs::read(&copy).expect("read the copy"), program);
        let mode = std::fs::metadata(&copy).expect("stat").permissions().mode();
        assert_eq!(mode & 0o7777, 0o555, "{mode:o}");
        assert_eq!(pod.read_string("_app_user"), "user-SENTINEL");
    }
}

#[test]
fn a_missing_secrets_env_fails_before_fetching_naming_the_file_and_the_fix() {
    // Never reached: the run must stop before any call.
    let pod = Pod::new("http://127.0.0.1:9");
    let bin = tempfile::tempdir().expect("bin volume");
    let missing = bin.path().join("nowhere/secrets-env");
    let out = pod.run(
        OBJECTS,
        &[
            &format!("--secrets-env-dir={}", bin.path().display()),
            &format!("--secrets-env-source={}", missing.display()),
        ],
    );
    out.assert_failure();
    for text in [&out.stderr, &out.termination_log] {
        assert!(
            text.starts_with(
                "secrets-injector: cannot copy secrets-env for the containers that get \
                 environment variables; nothing was fetched\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(&format!("cannot open {}: ", missing.display()))
                && text.contains("the injector image must hold secrets-env beside the injector"),
            "{text}"
        );
    }
    assert!(entries(bin.path()).is_empty());
    assert!(pod.entries().is_empty());
    assert!(!out.stdout.contains("files written"), "{}", out.stdout);
}

#[test]
fn without_the_flag_nothing_is_copied() {
    let moto = Moto::start();
    Seeder::new(&moto.endpoint(), REGION).string("/app/user", "user-SENTINEL");
    let pod = Pod::new(&moto.endpoint());
    // The default source does not exist beside the test build's injector: not looked at.
    let out = pod.run(OBJECTS, &["--secrets-env-source=/nonexistent/secrets-env"]);
    out.assert_success();
    assert_eq!(pod.read_string("_app_user"), "user-SENTINEL");
}
