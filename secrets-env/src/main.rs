//! `secrets-env --dir DIR [--dir DIR ...] -- COMMAND [ARG ...]`: sets every top-level file of
//! the secrets directories whose name is an environment variable name as that variable (the
//! first directory's value wins, a file replaces an inherited variable), then replaces itself
//! with the command (`execvp`), so the app keeps the process, its signals and its exit code.
//!
//! It is copied into app containers of any image, so it stays small, static and free of
//! anything that needs a libc's name services. It never prints a value.

mod cli;
mod error;
mod vars;

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use crate::cli::Parsed;
use crate::error::Error;

/// Where the kubelet reads a container's termination message from.
const TERMINATION_LOG: &str = "/dev/termination-log";
/// Overrides [`TERMINATION_LOG`] (for tests).
const TERMINATION_LOG_ENV: &str = "SECRETS_ENV_TERMINATION_LOG";

fn main() {
    let error = match cli::parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Help) => {
            println!("{}", error::USAGE);
            return;
        }
        Ok(Parsed::Run(args)) => match vars::read(&args.dirs) {
            Ok(vars) => exec(args.command, args.args, vars),
            Err(e) => e,
        },
        Err(e) => e,
    };
    report(&error);
    std::process::exit(error.exit_code());
}

/// Replaces this process with `command`; returns only if that failed.
fn exec(command: OsString, args: Vec<OsString>, vars: Vec<(String, OsString)>) -> Error {
    let source = Command::new(&command).args(args).envs(vars).exec();
    Error::exec(command, source)
}

/// One line on stderr and in the termination log, which is written only when it exists and is
/// writable (the kubelet creates it; outside Kubernetes there is none, and none is made).
fn report(error: &Error) {
    let line = format!("secrets-env: {error}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    let path = std::env::var_os(TERMINATION_LOG_ENV)
        .map_or_else(|| PathBuf::from(TERMINATION_LOG), PathBuf::from);
    if let Ok(mut file) = OpenOptions::new().write(true).truncate(true).open(path) {
        let _ = file.write_all(line.as_bytes());
    }
}
