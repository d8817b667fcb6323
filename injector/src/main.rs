//! The init container of an injected pod: fetches the pod's SSM parameters and Secrets Manager
//! secrets under its own AWS identity and writes them as files, all or nothing. As
//! `injector refresh`, the pod's sidecar: keeps those files current while the pod runs.
//!
//! This file is the command line: the flags become settings and logging, then `init` (the init
//! container's one run) or `refresh` (the sidecar) takes over; both build on `pipeline`.

mod aws;
mod call;
mod cli;
mod error;
mod extract;
mod fetch;
mod init;
mod listing;
mod notify;
mod pipeline;
mod refresh;
mod report;
mod retry;
mod secrets_env;
mod stage;
mod timing;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use secrets_injector_objects::{FileMode, PathTranslation, Settings};
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command, Common, LogFormat};

fn main() -> anyhow::Result<ExitCode> {
    timing::start();
    let cli = Cli::parse();
    // One thread: the work is a few concurrent HTTPS calls, and the refresh sidecar stays small.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Some(Command::Refresh(refresh)) => {
            let settings = settings(&refresh.common).unwrap_or_else(|e| e.exit());
            init_logging(refresh.common.log_format);
            Ok(runtime.block_on(refresh::run(&refresh, settings)))
        }
        None => {
            let common = cli
                .once
                .expect("clap requires the flags when there is no subcommand");
            let settings = settings(&common).unwrap_or_else(|e| e.exit());
            init_logging(common.log_format);
            timing::mark("flags and logging");
            Ok(runtime.block_on(init::run(&common, settings)))
        }
    }
}

/// The flags the object model checks; a bad one is a usage error (exit 2), like clap's own.
fn settings(cli: &Common) -> Result<Settings, clap::Error> {
    let invalid = |flag: &str, problem: String| {
        Cli::command().error(
            clap::error::ErrorKind::InvalidValue,
            format!("invalid --{flag}: {problem}"),
        )
    };
    let path_translation: PathTranslation = cli
        .path_translation
        .parse()
        .map_err(|p| invalid("path-translation", p))?;
    let default_mode: FileMode = cli
        .file_permission
        .parse()
        .map_err(|p| invalid("file-permission", p))?;
    let settings = Settings {
        region: cli.region.clone(),
        failover_region: cli.failover_region.clone(),
        path_translation,
        default_mode,
        env_file: cli.env_file.clone(),
    };
    let problems = settings.validate();
    if !problems.is_empty() {
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(invalid(
            "region, --failover-region or --env-file",
            text.join("; "),
        ));
    }
    Ok(settings)
}

/// Logs go to stdout (JSON by default); the failure report goes to stderr. The SDK's own
/// crates are held at warn whatever RUST_LOG says: their debug and trace output can carry
/// HTTP bodies, which hold values.
fn init_logging(format: LogFormat) {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    for target in [
        "aws_config",
        "aws_runtime",
        "aws_sdk_secretsmanager",
        "aws_sdk_ssm",
        "aws_sdk_sts",
        "aws_smithy_http",
        "aws_smithy_http_client",
        "aws_smithy_runtime",
        "aws_smithy_runtime_api",
        "h2",
        "hyper",
        "hyper_util",
        "rustls",
    ] {
        filter = filter.add_directive(format!("{target}=warn").parse().expect("valid directive"));
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(std::io::stdout().is_terminal()).init(),
    }
}
