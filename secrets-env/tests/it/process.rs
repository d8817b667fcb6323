//! The built `secrets-env` run as the kubelet runs a container's command: what the app gets
//! (variables, arguments, its own pid, exit code and signals) and how each failure is reported
//! (stderr, the termination log, the exit code), never with a value.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_secrets-env");
/// A value that must never show up in anything `secrets-env` prints.
const SECRET: &str = "s3cr3t-V4LUE-q7Zx9";

struct Run {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: String,
    termination_log: String,
}

/// Runs `secrets-env ARGS` with a clean environment plus `env`, and a termination log that
/// exists (as the kubelet's does).
fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let scratch = TempDir::new().unwrap();
    let log = scratch.path().join("termination-log");
    fs::write(&log, "").unwrap();
    let out = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().copied())
        .env("SECRETS_ENV_TERMINATION_LOG", &log)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    Run {
        status: out.status,
        stdout: out.stdout,
        stderr: String::from_utf8(out.stderr).unwrap(),
        termination_log: fs::read_to_string(&log).unwrap(),
    }
}

/// The environment `/usr/bin/env -0` printed, as (name, value) pairs.
fn env_of(stdout: &[u8]) -> Vec<(String, Vec<u8>)> {
    stdout
        .split(|b| *b == 0)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let eq = entry.iter().position(|b| *b == b'=').unwrap();
            (
                String::from_utf8(entry[..eq].to_vec()).unwrap(),
                entry[eq + 1..].to_vec(),
            )
        })
        .collect()
}

fn value<'a>(env: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    env.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A volume laid out as the injector writes it (SPEC: the volume's layout).
fn volume(files: &[(&str, &[u8])]) -> TempDir {
    let dir = TempDir::new().unwrap();
    let generation = "..2026_11_30_10_55_09.123456789";
    fs::create_dir(dir.path().join(generation)).unwrap();
    for (name, value) in files {
        fs::write(dir.path().join(generation).join(name), value).unwrap();
        symlink(format!("..data/{name}"), dir.path().join(name)).unwrap();
    }
    symlink(generation, dir.path().join("..data")).unwrap();
    dir
}

/// The failure's one line is on stderr and in the termination log, and it carries no value.
fn assert_reported(run: &Run, code: i32, says: &[&str]) {
    assert_eq!(run.status.code(), Some(code), "{}", run.stderr);
    assert!(run.stderr.starts_with("secrets-env: "), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "one line: {}", run.stderr);
    assert_eq!(run.termination_log, run.stderr);
    for part in says {
        assert!(run.stderr.contains(part), "{part:?} not in {}", run.stderr);
    }
    assert!(run.stdout.is_empty());
    assert_no_value(run);
}

fn assert_no_value(run: &Run) {
    for text in [&run.stderr, &run.termination_log] {
        assert!(!text.contains(SECRET), "a value was printed: {text}");
    }
    assert!(!String::from_utf8_lossy(&run.stdout).contains(SECRET));
}

#[test]
fn files_become_variables_and_replace_inherited_ones() {
    let dir = volume(&[
        ("SECRET_PASSWORD", SECRET.as_bytes()),
        ("FROM_SPEC", b"from the file"),
        ("ODD", b"two\nlines, $HOME `x` 'q' \"dq\" \\ \xff"),
        ("EMPTY", b""),
    ]);
    let run = run(
        &["--dir", path(dir.path()), "--", "/usr/bin/env", "-0"],
        &[("FROM_SPEC", "from the spec"), ("KEPT", "kept")],
    );
    assert!(run.status.success(), "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    let env = env_of(&run.stdout);
    assert_eq!(value(&env, "SECRET_PASSWORD"), Some(SECRET.as_bytes()));
    assert_eq!(value(&env, "FROM_SPEC"), Some(&b"from the file"[..]));
    assert_eq!(
        value(&env, "ODD"),
        Some(&b"two\nlines, $HOME `x` 'q' \"dq\" \\ \xff"[..])
    );
    assert_eq!(value(&env, "EMPTY"), Some(&b""[..]));
    assert_eq!(value(&env, "KEPT"), Some(&b"kept"[..]));
    let names: Vec<_> = env.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names.iter().filter(|n| **n == "FROM_SPEC").count(),
        1,
        "{names:?}"
    );
}

#[test]
fn the_first_dir_wins_and_dir_equals_form_works() {
    let first = volume(&[("SHARED", b"first"), ("ONLY_FIRST", b"1")]);
    let second = TempDir::new().unwrap();
    fs::write(second.path().join("SHARED"), "second").unwrap();
    fs::write(second.path().join("ONLY_SECOND"), "2").unwrap();
    let run = run(
        &[
            &format!("--dir={}", path(first.path())),
            "--dir",
            path(second.path()),
            "--",
            "/usr/bin/env",
            "-0",
        ],
        &[],
    );
    assert!(run.status.success(), "{}", run.stderr);
    let env = env_of(&run.stdout);
    assert_eq!(value(&env, "SHARED"), Some(&b"first"[..]));
    assert_eq!(value(&env, "ONLY_FIRST"), Some(&b"1"[..]));
    assert_eq!(value(&env, "ONLY_SECOND"), Some(&b"2"[..]));
}

#[test]
fn only_top_level_files_with_env_names_are_read() {
    let dir = volume(&[("GOOD", b"yes"), ("not-a-name", b"x"), ("9LIVES", b"x")]);
    let d = dir.path();
    // A directory object, linked like the files, and a nested file.
    fs::create_dir(d.join("..2026_11_30_10_55_09.123456789/CERTS")).unwrap();
    fs::write(d.join("..2026_11_30_10_55_09.123456789/CERTS/INNER"), "x").unwrap();
    symlink("..data/CERTS", d.join("CERTS")).unwrap();
    fs::write(d.join("..RESERVED"), "x").unwrap();
    let run = run(&["--dir", path(d), "--", "/usr/bin/env", "-0"], &[]);
    assert!(run.status.success(), "{}", run.stderr);
    let mut names: Vec<_> = env_of(&run.stdout).into_iter().map(|(n, _)| n).collect();
    names.sort();
    assert_eq!(names, ["GOOD", "PATH", "SECRETS_ENV_TERMINATION_LOG"]);
}

#[test]
fn the_command_is_found_on_path_including_a_path_from_a_file() {
    let bin = TempDir::new().unwrap();
    let app = bin.path().join("my-app");
    fs::write(&app, "#!/bin/sh\nprintf '%s' \"$GREETING\"\n").unwrap();
    fs::set_permissions(&app, fs::Permissions::from_mode(0o755)).unwrap();
    let dir = volume(&[("GREETING", b"hello")]);

    let search = format!("/usr/bin:{}:/bin", path(bin.path()));
    let run1 = run(
        &["--dir", path(dir.path()), "--", "my-app"],
        &[("PATH", &search)],
    );
    assert!(run1.status.success(), "{}", run1.stderr);
    assert_eq!(run1.stdout, b"hello");

    // A file named PATH is a variable like any other, and the lookup uses the app's PATH.
    fs::write(dir.path().join("PATH"), search).unwrap();
    let run2 = run(&["--dir", path(dir.path()), "--", "my-app"], &[]);
    assert!(run2.status.success(), "{}", run2.stderr);
    assert_eq!(run2.stdout, b"hello");
}

#[test]
fn arguments_pass_unchanged() {
    let dir = volume(&[]);
    let args = [
        "two words",
        "'single'",
        "\"double\"",
        "$HOME and $(id) and `id`",
        "line one\nline two",
        "-n",
        "--dir",
        "--",
        "",
        "*",
        "back\\slash",
    ];
    let mut argv = vec![
        "--dir",
        path(dir.path()),
        "--",
        "/bin/sh",
        "-c",
        "printf '%s\\n' \"$@\"",
        "sh",
    ];
    argv.extend(args);
    let run = run(&argv, &[]);
    assert!(run.status.success(), "{}", run.stderr);
    let expected: String = args.iter().map(|a| format!("{a}\n")).collect();
    assert_eq!(String::from_utf8(run.stdout).unwrap(), expected);
}

#[test]
fn non_utf8_arguments_pass_unchanged() {
    let dir = volume(&[]);
    let arg = std::ffi::OsStr::from_bytes(b"caf\xe9");
    let out = Command::new(BIN)
        .args(["--dir", path(dir.path()), "--", "/bin/sh", "-c"])
        .arg("printf '%s' \"$1\"")
        .arg("sh")
        .arg(arg)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"caf\xe9");
}

#[test]
fn the_app_replaces_the_wrapper_and_its_exit_code_and_signals_are_its_own() {
    let dir = volume(&[("SECRET", SECRET.as_bytes())]);
    let d = path(dir.path());

    // Same process: the shell's pid is the one the wrapper was started as.
    let child = Command::new(BIN)
        .args(["--dir", d, "--", "/bin/sh", "-c", "echo $$"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        pid.to_string()
    );

    let run1 = run(&["--dir", d, "--", "/bin/sh", "-c", "exit 42"], &[]);
    assert_eq!(run1.status.code(), Some(42));
    assert!(run1.stderr.is_empty(), "{}", run1.stderr);
    assert!(run1.termination_log.is_empty());

    let run2 = run(&["--dir", d, "--", "/bin/sh", "-c", "kill -TERM $$"], &[]);
    assert_eq!(run2.status.signal(), Some(15), "{:?}", run2.status);
    assert!(run2.stderr.is_empty(), "{}", run2.stderr);
}

#[test]
fn a_missing_directory_fails_with_exit_1() {
    let scratch = TempDir::new().unwrap();
    let missing = scratch.path().join("not-mounted");
    let run = run(&["--dir", path(&missing), "--", "/bin/true"], &[]);
    assert_reported(
        &run,
        1,
        &[
            &format!("cannot read the secrets directory {missing:?}"),
            "No such file or directory",
            "mounted",
        ],
    );
}

#[test]
fn an_unreadable_directory_fails_with_exit_1() {
    // A file where the directory should be: the same failure for root and everyone else.
    let scratch = TempDir::new().unwrap();
    let file = scratch.path().join("a-file");
    fs::write(&file, SECRET).unwrap();
    let run = run(&["--dir", path(&file), "--", "/bin/true"], &[]);
    assert_reported(
        &run,
        1,
        &[
            &format!("cannot read the secrets directory {file:?}"),
            "Not a directory",
        ],
    );
}

#[test]
fn an_unreadable_file_names_the_variable_with_exit_1() {
    let dir = volume(&[("SECRET", SECRET.as_bytes())]);
    symlink("LOOP", dir.path().join("LOOP")).unwrap();
    let run = run(&["--dir", path(dir.path()), "--", "/bin/true"], &[]);
    assert_reported(
        &run,
        1,
        &[
            &format!("cannot read {:?} (variable LOOP)", dir.path().join("LOOP")),
            "symbolic links",
        ],
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = volume(&[("SECRET", SECRET.as_bytes())]);
    let d = path(dir.path());
    for (args, says) in [
        (&["--dir", d, "--"][..], "no command after `--`"),
        (&["--dir", d][..], "no `--` and command after the options"),
        (&["--", "/bin/true"][..], "at least one --dir DIR is needed"),
        (
            &["--bogus", "--", "/bin/true"][..],
            "unknown argument \"--bogus\"",
        ),
    ] {
        let run = run(args, &[]);
        assert_reported(
            &run,
            2,
            &[
                says,
                "usage: secrets-env --dir DIR [--dir DIR ...] -- COMMAND [ARG ...]",
            ],
        );
    }
}

#[test]
fn help_prints_usage_and_exits_0() {
    let run = run(&["--help"], &[]);
    assert!(run.status.success());
    assert_eq!(
        String::from_utf8(run.stdout).unwrap(),
        "usage: secrets-env --dir DIR [--dir DIR ...] -- COMMAND [ARG ...]\n"
    );
}

#[test]
fn a_nul_byte_names_the_variable_and_file_with_exit_1() {
    let dir = volume(&[
        ("GOOD", b"fine"),
        ("BINARY_KEY", b"s3cr3t-V4LUE-q7Zx9\0tail"),
    ]);
    let run = run(&["--dir", path(dir.path()), "--", "/bin/true"], &[]);
    assert_reported(
        &run,
        1,
        &[
            "the value of BINARY_KEY",
            &format!("{:?}", dir.path().join("BINARY_KEY")),
            "NUL byte",
        ],
    );
}

#[test]
fn a_command_not_found_exits_127() {
    let dir = volume(&[("SECRET", SECRET.as_bytes())]);
    let d = path(dir.path());
    for command in ["no-such-app-anywhere", "/no/such/app"] {
        let run = run(&["--dir", d, "--", command, SECRET], &[]);
        assert_reported(
            &run,
            127,
            &[&format!("command {command:?} not found"), "command"],
        );
    }
}

#[test]
fn a_command_that_cannot_run_exits_126() {
    let dir = volume(&[("SECRET", SECRET.as_bytes())]);
    let d = path(dir.path());
    let not_executable = dir.path().join("..2026_11_30_10_55_09.123456789/SECRET");
    for command in [path(&not_executable), "/tmp"] {
        let run = run(&["--dir", d, "--", command], &[]);
        assert_reported(
            &run,
            126,
            &[
                &format!("cannot run {command:?}"),
                "Permission denied",
                "executable",
            ],
        );
    }
}

#[test]
fn variables_too_large_for_the_kernel_exit_126() {
    // Linux takes at most 128 KiB per variable.
    let big = SECRET.repeat(200 * 1024 / SECRET.len());
    let dir = volume(&[("BIG", big.as_bytes())]);
    let run = run(&["--dir", path(dir.path()), "--", "/bin/true"], &[]);
    assert_reported(
        &run,
        126,
        &["cannot run \"/bin/true\"", "larger than the kernel allows"],
    );
}

#[test]
fn no_value_is_printed_by_any_failure() {
    let dir = volume(&[
        ("SECRET", SECRET.as_bytes()),
        ("NUL", b"s3cr3t-V4LUE-q7Zx9\0"),
    ]);
    let clean = volume(&[("SECRET", SECRET.as_bytes())]);
    let (d, c) = (path(dir.path()), path(clean.path()));
    let failures: Vec<Vec<&str>> = vec![
        vec!["--dir", d, "--", "/bin/true"],
        vec!["--dir", c, "--", "not-found", SECRET],
        vec!["--dir", c, "--", "/tmp", SECRET],
        vec!["--dir", c, "--"],
        vec!["--dir", c, "--", ""],
        vec!["--dir", c],
    ];
    for args in failures {
        let run = run(&args, &[("SPEC_VALUE", SECRET)]);
        assert!(!run.status.success(), "{args:?}");
        assert!(!run.stderr.is_empty(), "{args:?}");
        assert_no_value(&run);
    }
}

#[test]
fn without_a_termination_log_stderr_and_the_exit_code_remain() {
    let scratch = TempDir::new().unwrap();
    let log = scratch.path().join("absent/termination-log");
    let out = Command::new(BIN)
        .args(["--dir", "/nonexistent-secrets", "--", "/bin/true"])
        .env("SECRETS_ENV_TERMINATION_LOG", &log)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("/nonexistent-secrets")
    );
    assert!(!log.exists() && !log.parent().unwrap().exists());
    // Nor is one made where the kubelet made none.
    let log = scratch.path().join("termination-log");
    let out = Command::new(BIN)
        .args(["--dir", "/nonexistent-secrets", "--", "/bin/true"])
        .env("SECRETS_ENV_TERMINATION_LOG", &log)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!log.exists());
}
