//! What the init container's run (`init`) and the refresh sidecar's cycles (`refresh`) share,
//! from the objects to the files: the plan, templates and AWS clients a run starts from, the
//! files of the fetched values (two objects writing one path fail), the templates' files and the
//! env file over them, and the report of a run that failed. Fetching is `fetch`, one object's files `extract`, writing `stage`.

use std::process::ExitCode;

use secrets_injector_objects::error as objects_error;
use secrets_injector_objects::plan::{self, Plan};
use secrets_injector_objects::template::{self, Compiled, Templates};
use secrets_injector_objects::{FileMode, Settings};

use crate::aws::{self, AssumeRole, ChainedRole};
use crate::call::Fetched;
use crate::cli::Common;
use crate::error::{self, Kind};
use crate::extract::{self, File};
use crate::fetch::Regions;
use crate::report;

/// Exit code of a run that wrote nothing because an object failed.
const FAILED: u8 = 1;

/// What a run starts from: the objects, the templates (checked and compiled), the AWS clients
/// and the chained role (`--assume-role-arn`) if any.
pub struct Prepared {
    pub plan: Plan,
    pub templates: Option<Rendering>,
    pub regions: Regions,
    pub chained: Option<ChainedRole>,
}

/// The pod's templates, checked as at admission and compiled once for every render.
pub struct Rendering {
    templates: Templates,
    compiled: Compiled,
}

/// What a run starts from, or the exit code of a run that cannot start: invalid objects or
/// templates, no AWS identity, a CA bundle that cannot be used.
pub fn prepare(cli: &Common, settings: Settings) -> Result<Prepared, ExitCode> {
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
    let templates = match &cli.templates {
        None => None,
        Some(text) => {
            let checked = template::parse(text, cli.objects.len(), Some(&plan))
                .and_then(|templates| templates.compile().map(|compiled| (templates, compiled)));
            match checked {
                Ok((templates, compiled)) => Some(Rendering {
                    templates,
                    compiled,
                }),
                Err(errors) => {
                    let lines: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
                    return Err(fail(
                        cli,
                        "the templates are invalid; nothing was written",
                        &lines,
                    ));
                }
            }
        }
    };
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
            Ok(Prepared {
                plan,
                templates,
                regions,
                chained,
            })
        }
        Err(problem) => Err(fail(
            cli,
            "the CA bundle cannot be used; nothing was fetched",
            &[problem],
        )),
    }
}

/// Adds the templates' files, rendered over the objects' files, then the env file over every
/// top-level file. `Err` holds a line for each template that failed (its label, line and what
/// went wrong, never a value); `files` is then as it was.
pub fn add_rendered(
    plan: &Plan,
    templates: Option<&Rendering>,
    files: &mut Vec<File>,
) -> Result<(), Vec<String>> {
    if let Some(rendering) = templates {
        let rendered = rendering
            .compiled
            .render(files.iter().map(|f| (&f.path, f.bytes.as_slice())))
            .map_err(|failures| failures.iter().map(ToString::to_string).collect::<Vec<_>>())?;
        files.extend(rendered.into_iter().map(|r| File {
            path: r.path,
            mode: r.mode,
            bytes: r.bytes,
        }));
    }
    let env_mode = match templates {
        Some(rendering) => rendering.templates.env_file_mode(plan),
        None => plan.env_file_mode(),
    };
    add_env_file(plan, env_mode, files);
    Ok(())
}

impl Rendering {
    /// How many templates there are.
    pub fn len(&self) -> usize {
        self.compiled.len()
    }
}

/// Adds the env file, when the plan has one, over the top-level files.
fn add_env_file(plan: &Plan, mode: FileMode, files: &mut Vec<File>) {
    if let Some(env_path) = &plan.env_file {
        let (env, left_out) = extract::env_file(env_path, mode, files);
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
pub fn collect_files(
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

/// Reports a failed run on stderr and in the termination log, and gives its exit code.
pub fn fail(cli: &Common, header: &str, lines: &[String]) -> ExitCode {
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
