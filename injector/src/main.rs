//! The init container of an injected pod: fetches the pod's SSM parameters and Secrets Manager
//! secrets under its own AWS identity and writes them as files, all or nothing. As
//! `injector refresh`, the pod's sidecar: keeps those files current while the pod runs.

mod aws;
mod call;
mod cli;
mod error;
mod extract;
mod fetch;
mod notify;
mod refresh;
mod report;
mod retry;
mod secrets_env;
mod stage;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use secrets_injector_objects::error as objects_error;
use secrets_injector_objects::plan::{self, Plan};
use secrets_injector_objects::{FileMode, PathTranslation, Settings};
use tokio::time::Instant;
use tracing_subscriber::EnvFilter;

use crate::aws::{AssumeRole, ChainedRole};
use crate::call::{Call, Fetched, Run};
use crate::cli::{Cli, Command, Common, LogFormat};
use crate::error::Kind;
use crate::extract::File;
use crate::fetch::Regions;
use crate::retry::Policy;

/// Exit code of a run that wrote nothing because an object failed.
const FAILED: u8 = 1;

fn main() -> anyhow::Result<ExitCode> {
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
            Ok(runtime.block_on(run(&common, settings)))
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

async fn run(cli: &Common, settings: Settings) -> ExitCode {
    let started = Instant::now();
    let mount = cli.mount_path.as_path();
    match stage::empty_dir(mount) {
        Ok(0) => {}
        Ok(removed) => tracing::info!(removed, "emptied the mount directory of an earlier attempt"),
        Err(e) => return fail(cli, "cannot prepare the mount directory", &[e.to_string()]),
    }
    if let Err(code) = copy_secrets_env(cli) {
        return code;
    }
    let (plan, regions, chained) = match prepare(cli, settings) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };

    let run = Run::new(Policy::DEFAULT, cli.deadline);
    // Every call already stops at the deadline; this only bounds what lies outside them
    // (loading the SDK configuration), a moment later so the calls' own errors come first.
    let backstop = run.deadline + Duration::from_secs(1);
    // Role chaining: assumed once, before any fetch, so that a refused role is named at once.
    if let Some(chained) = &chained {
        let assumed = tokio::time::timeout_at(backstop, chained.credentials())
            .await
            .unwrap_or_else(|_elapsed| {
                Err(format!(
                    "AssumeRoleFailed: no answer from STS for the role {} within the --deadline \
                     of {}",
                    chained.role_arn(),
                    error::humanize(cli.deadline)
                ))
            });
        if let Err(problem) = assumed {
            return fail(
                cli,
                "the role could not be assumed; nothing was fetched",
                &[problem],
            );
        }
        tracing::info!(role = %chained.role_arn(), "role assumed");
    }
    let results =
        match tokio::time::timeout_at(backstop, fetch::fetch_all(&plan, &run, &regions)).await {
            Ok(results) => results,
            Err(_elapsed) => plan
                .objects
                .iter()
                .map(|_| Err(error::Error::Deadline(cli.deadline)))
                .collect(),
        };
    let (mut files, failures, skipped) = collect_files(&plan, results);

    if !failures.is_empty() {
        let header = format!(
            "{} of {} objects failed; nothing was written to {}",
            failures.len(),
            plan.objects.len(),
            mount.display()
        );
        let code = fail(cli, &header, &failures);
        summary(&plan, &run, 0, skipped, started, false);
        return code;
    }

    add_env_file(&plan, &mut files);

    if let Err(e) = stage::install(mount, &files) {
        let code = fail(
            cli,
            "cannot write the files; nothing was written",
            &[e.to_string()],
        );
        summary(&plan, &run, 0, skipped, started, false);
        return code;
    }
    summary(&plan, &run, files.len(), skipped, started, true);
    ExitCode::SUCCESS
}

/// Copies `secrets-env` into `--secrets-env-dir` when it is set (`env-containers`), before
/// anything is fetched; `Err` is the exit code of a copy that failed.
fn copy_secrets_env(cli: &Common) -> Result<(), ExitCode> {
    let Some(dir) = &cli.secrets_env_dir else {
        return Ok(());
    };
    let source = match &cli.secrets_env_source {
        Some(source) => Ok(source.clone()),
        None => secrets_env::default_source(),
    };
    match source.and_then(|source| secrets_env::install(&source, dir)) {
        Ok(path) => {
            tracing::debug!(path = %path.display(), "secrets-env copied");
            Ok(())
        }
        Err(e) => Err(fail(
            cli,
            "cannot copy secrets-env for the containers that get environment variables; \
             nothing was fetched",
            &[format!(
                "{e}; the injector image must hold secrets-env beside the injector (or \
                 --secrets-env-source must name it), and --secrets-env-dir must be a \
                 writable directory (the secrets-injector-bin volume)"
            )],
        )),
    }
}

/// The objects, the AWS clients and the chained role (`--assume-role-arn`) if any, or the exit
/// code of a run that cannot start: invalid objects, no AWS identity, a CA bundle that cannot be
/// used.
fn prepare(
    cli: &Common,
    settings: Settings,
) -> Result<(Plan, Regions, Option<ChainedRole>), ExitCode> {
    let plan = match plan::parse(&cli.objects, settings) {
        Ok(plan) => plan,
        Err(errors) => {
            let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
            return Err(fail(
                cli,
                "the objects are invalid; nothing was written",
                &lines,
            ));
        }
    };
    // Capped as at admission: a list of thousands of objects must not flood the pod's log.
    for warning in objects_error::capped_warnings(plan.warnings.iter().map(String::as_str)) {
        tracing::warn!(warning = %warning, "objects annotation");
    }
    if let Some(problem) = aws::missing_identity(|name| std::env::var(name).ok()) {
        return Err(fail(
            cli,
            "no AWS identity; nothing was fetched",
            &[problem],
        ));
    }
    match aws::https_client(std::env::var_os("AWS_CA_BUNDLE").as_deref()) {
        Ok(http) => {
            let chained = cli.assume_role_arn.as_ref().map(|role_arn| {
                let role = AssumeRole {
                    role_arn: role_arn.clone(),
                    external_id: cli.assume_role_external_id.clone(),
                    duration_seconds: cli.assume_role_duration_seconds,
                };
                ChainedRole::new(role, &plan.settings.region, http.clone())
            });
            let regions = Regions::new(http, chained.as_ref().map(ChainedRole::provider));
            Ok((plan, regions, chained))
        }
        Err(problem) => Err(fail(
            cli,
            "the CA bundle cannot be used; nothing was fetched",
            &[problem],
        )),
    }
}

/// Adds the env file, when the plan has one, over the top-level files.
fn add_env_file(plan: &Plan, files: &mut Vec<File>) {
    if let Some(env_path) = &plan.env_file {
        let (env, left_out) = extract::env_file(env_path, plan.env_file_mode(), files);
        for name in left_out {
            tracing::warn!(
                file = %name,
                env_file = %env_path,
                "value left out of the env file: not UTF-8 or contains NUL"
            );
        }
        files.push(env);
    }
}

/// Every object's files, the report lines of the objects that failed, and the number of
/// optional objects skipped because they do not exist.
fn collect_files(
    plan: &Plan,
    results: Vec<Result<Fetched, error::Error>>,
) -> (Vec<File>, Vec<String>, usize) {
    let mut files: Vec<File> = Vec::new();
    let mut failures = Vec::new();
    let mut skipped = 0;
    for (object, result) in plan.objects.iter().zip(results) {
        let label = object.label();
        let outcome = result.and_then(|fetched| {
            extract::object_files(object, fetched, &plan.settings.path_translation)
        });
        match outcome {
            Ok(new) => {
                let before = files.len();
                let mut conflict = None;
                for file in new {
                    let taken = extract::clash(&file.path, files.iter().map(|f| &f.path))
                        || plan
                            .env_file
                            .as_ref()
                            .is_some_and(|env| extract::clash(&file.path, std::iter::once(env)));
                    if taken {
                        conflict = Some(file.path.to_string());
                        break;
                    }
                    files.push(file);
                }
                if let Some(path) = conflict {
                    files.truncate(before);
                    failures.push(format!(
                        "{label}: FileConflict: the file {path} is also written by another \
                         object or parameter; give one of them another objectAlias or path \
                         translation"
                    ));
                } else {
                    tracing::debug!(object = %label, files = files.len() - before, "fetched");
                }
            }
            Err(e) if e.kind() == Kind::NotFound && object.optional => {
                skipped += 1;
                tracing::info!(object = %label, error = %e, "optional object not found; no file written");
            }
            Err(e) => failures.push(format!("{label}: {e}")),
        }
    }
    (files, failures, skipped)
}

/// The one summary line of the run: counts and durations only.
fn summary(plan: &Plan, run: &Run, files: usize, skipped: usize, started: Instant, ok: bool) {
    let duration_ms = started.elapsed().as_millis() as u64;
    let calls = &run.calls;
    if ok {
        tracing::info!(
            objects = plan.objects.len(),
            files,
            skipped,
            get_parameters = calls.get(Call::GetParameters),
            get_parameters_by_path = calls.get(Call::GetParametersByPath),
            get_secret_value = calls.get(Call::GetSecretValue),
            duration_ms,
            "files written"
        );
    } else {
        tracing::error!(
            objects = plan.objects.len(),
            files,
            skipped,
            get_parameters = calls.get(Call::GetParameters),
            get_parameters_by_path = calls.get(Call::GetParametersByPath),
            get_secret_value = calls.get(Call::GetSecretValue),
            duration_ms,
            "nothing written"
        );
    }
}

/// Reports a failed run on stderr and in the termination log, and gives its exit code.
fn fail(cli: &Common, header: &str, lines: &[String]) -> ExitCode {
    let header = format!("secrets-injector: {header}");
    eprint!("{}", report::full(&header, lines));
    let text = report::truncated(&header, lines, report::TERMINATION_LOG_LIMIT);
    if !report::write_termination_log(&cli.termination_log, &text) {
        tracing::debug!(path = %cli.termination_log.display(), "termination log not writable");
    }
    for line in lines {
        tracing::error!(failure = %line, "object failed");
    }
    ExitCode::from(FAILED)
}
