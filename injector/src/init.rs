//! `injector` with no subcommand, the pod's init container: empties the mount directory, copies
//! `secrets-env` when asked, fetches every object once, renders the templates over the values
//! and writes all the files, or none.

use std::process::ExitCode;
use std::time::Duration;

use secrets_injector_objects::Settings;
use secrets_injector_objects::plan::Plan;
use tokio::time::Instant;

use crate::call::{Call, Run};
use crate::cli::Common;
use crate::pipeline::{Prepared, add_rendered, collect_files, fail, prepare};
use crate::retry::Policy;
use crate::{error, fetch, secrets_env, stage, timing};

/// The whole run; its exit code is the pod's init container's.
pub async fn run(cli: &Common, settings: Settings) -> ExitCode {
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
    let Prepared {
        plan,
        templates,
        regions,
        chained,
    } = match prepare(cli, settings) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    timing::mark("mount emptied, objects parsed");

    let mut run = Run::new(Policy::DEFAULT, cli.deadline);
    run.max_secrets = cli.max_secrets_per_object;
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
    timing::mark("fetched");
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

    // After every fetch succeeded, into the same generation as the values.
    if let Err(failures) = add_rendered(&plan, templates.as_ref(), &mut files) {
        let header = format!(
            "{} of {} templates failed; nothing was written to {}",
            failures.len(),
            templates.as_ref().map_or(0, |t| t.len()),
            mount.display()
        );
        let code = fail(cli, &header, &failures);
        summary(&plan, &run, 0, skipped, started, false);
        return code;
    }
    timing::mark("files built");

    if let Err(e) = stage::install(mount, &files) {
        let code = fail(
            cli,
            "cannot write the files; nothing was written",
            &[e.to_string()],
        );
        summary(&plan, &run, 0, skipped, started, false);
        return code;
    }
    timing::mark("files written");
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
            list_secrets = calls.get(Call::ListSecrets),
            batch_get_secret_value = calls.get(Call::BatchGetSecretValue),
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
            list_secrets = calls.get(Call::ListSecrets),
            batch_get_secret_value = calls.get(Call::BatchGetSecretValue),
            duration_ms,
            "nothing written"
        );
    }
}
