//! `injector refresh`, the pod's sidecar: every interval (from a random phase, with a small
//! jitter) it asks AWS which objects changed, at the cost of no value and no KMS decrypt,
//! fetches only those, renders the templates again over the new values, and swaps in a new
//! generation of files when any file would differ.
//!
//! A cycle's calls: one `GetParameters` without decryption per batch of ten parameters (its
//! `Version`, and the value itself for an unencrypted `String`), one `GetParametersByPath`
//! without decryption per page of a path, one `DescribeSecret` per secret (the version id that
//! holds the wanted stage), one `ListSecrets` pass per secret prefix (its entries carry the
//! version that holds `AWSCURRENT`); then, only for what changed, the same calls as the init
//! container (for a prefix, `BatchGetSecretValue` of the secrets that appeared or moved only).
//! Objects pinned by `objectVersion` are read once, never again. What a prefix's listing means
//! for its files (one that lacks a secret twice in a row removes it; an empty one changes
//! nothing and fails the cycle) is `listing`; until the sidecar's own first listing, what a
//! prefix holds is the files of its directory (a restarted sidecar too).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use futures::FutureExt;
use futures::future::LocalBoxFuture;
use futures::stream::{self, StreamExt};
use secrets_injector_objects::decode::base64_encode;
use secrets_injector_objects::kind::Check;
use secrets_injector_objects::object::{Decode, Object};
use secrets_injector_objects::plan::{Plan, prefix_secret_file};
use secrets_injector_objects::settings::Settings;
use secrets_injector_objects::translation::PathTranslation;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;

use crate::aws::secrets_by_prefix::{self, Listed};
use crate::aws::{Clients, secretsmanager, ssm};
use crate::call::{Call, Fetched, Run, Secret, Target};
use crate::cli::Refresh;
use crate::error::{Error, Kind};
use crate::fetch::{self, Regions};
use crate::listing::{self, Step};
use crate::pipeline::{Prepared, Rendering, add_rendered, collect_files, fail, prepare};
use crate::retry::Policy;
use crate::{notify, stage};

/// Largest share of the interval a cycle is moved by, either way.
const JITTER: f64 = 0.1;
/// Cycles that failed on throttling in a row lengthen the wait by this much per cycle, doubling,
/// up to [`MAX_THROTTLED_EXTRA`] (the calls inside a cycle already back off).
const THROTTLED_STEPS: u32 = 3;
const MAX_THROTTLED_EXTRA: Duration = Duration::from_secs(10 * 60);

/// What identifies the version of an object's value, as the cheap check reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stamp {
    Parameter(i64),
    Path(Vec<(String, i64)>),
    Secret(String),
    /// A secret prefix: the names the last listing lacked (each secret's version is in the
    /// value, [`Fetched::Secrets`]).
    Listing(BTreeSet<String>),
}

/// What the sidecar last read of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Known {
    /// `None` when the check could not say (the object is then fetched at every cycle).
    stamp: Option<Stamp>,
    /// `None` for an optional object that does not exist.
    value: Option<Fetched>,
}

/// What the check said about one object.
enum Checked {
    /// Not checked: pinned by `objectVersion` and already read.
    Pinned,
    /// Pinned by `objectVersion` and not read yet: fetched once.
    Unread,
    Stamp(Stamp, Option<Fetched>),
    /// A secret prefix's listing, checked exactly.
    Listed(Vec<Listed>),
    Failed(Error),
}

/// How a cycle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Unchanged,
    Updated,
    Failed { throttled: bool },
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Unchanged => "unchanged",
            Outcome::Updated => "updated",
            Outcome::Failed { .. } => "failed",
        }
    }
}

/// Runs until SIGTERM (exit 0). Exits non-zero only when it cannot start (invalid objects, no
/// identity), never because a cycle failed.
pub async fn run(refresh: &Refresh, settings: Settings) -> ExitCode {
    let common = &refresh.common;
    let Prepared {
        plan,
        templates,
        regions,
        chained: _chained,
    } = match prepare(common, settings) {
        Ok(prepared) => prepared,
        Err(code) => return code,
    };
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return fail(
            common,
            "cannot handle SIGTERM",
            &["the signal handler could not be installed".to_owned()],
        );
    };
    let mut sidecar = Sidecar {
        refresh,
        known: vec![None; plan.objects.len()],
        plan,
        templates,
        regions,
    };
    tokio::select! {
        () = sidecar.cycles() => ExitCode::SUCCESS,
        _ = term.recv() => stopped("SIGTERM"),
        _ = int.recv() => stopped("SIGINT"),
    }
}

fn stopped(signal: &str) -> ExitCode {
    tracing::info!(signal, "stopping");
    ExitCode::SUCCESS
}

struct Sidecar<'a> {
    refresh: &'a Refresh,
    plan: Plan,
    templates: Option<Rendering>,
    regions: Regions,
    known: Vec<Option<Known>>,
}

impl Sidecar<'_> {
    async fn cycles(&mut self) {
        let interval = self.refresh.interval.duration();
        let phase = interval.mul_f64(rand::random::<f64>());
        tracing::info!(
            interval = %self.refresh.interval,
            first_in_ms = phase.as_millis() as u64,
            objects = self.plan.objects.len(),
            "refreshing"
        );
        let mut next = Instant::now() + phase;
        let mut throttled = 0;
        loop {
            tokio::time::sleep_until(next).await;
            let started = Instant::now();
            let outcome = self.cycle().await;
            throttled = match outcome {
                Outcome::Failed { throttled: true } => throttled + 1,
                _ => 0,
            };
            next = started + wait(interval, throttled, rand::random::<f64>());
        }
    }

    /// One cycle: check, fetch what changed, swap when a file differs, notify.
    async fn cycle(&mut self) -> Outcome {
        let started = Instant::now();
        let mut run = Run::new(Policy::DEFAULT, self.refresh.common.deadline);
        run.max_secrets = self.refresh.common.max_secrets_per_object;
        let outcome = tokio::time::timeout_at(
            run.deadline + Duration::from_secs(1),
            self.check_and_fetch(&run),
        )
        .await
        .unwrap_or_else(|_| {
            tracing::error!(
                deadline_s = self.refresh.common.deadline.as_secs(),
                "the cycle ran past --deadline; the current files stay, next try at the next cycle"
            );
            Outcome::Failed { throttled: false }
        });
        let calls = &run.calls;
        tracing::info!(
            outcome = outcome.name(),
            get_parameters = calls.get(Call::GetParameters),
            get_parameters_by_path = calls.get(Call::GetParametersByPath),
            describe_secret = calls.get(Call::DescribeSecret),
            get_secret_value = calls.get(Call::GetSecretValue),
            list_secrets = calls.get(Call::ListSecrets),
            batch_get_secret_value = calls.get(Call::BatchGetSecretValue),
            duration_ms = started.elapsed().as_millis() as u64,
            "refresh cycle"
        );
        outcome
    }

    async fn check_and_fetch(&mut self, run: &Run) -> Outcome {
        let plan = &self.plan;
        let clients = self.regions.primary(plan).await;
        let checked = check(plan, run, clients, &self.known).await;
        let mut next = self.known.clone();
        let mut stamps: Vec<Option<Stamp>> = vec![None; plan.objects.len()];
        let mut wanted = Vec::new();
        // Secret prefixes whose listing asks to read some of their secrets.
        let mut reads: Vec<(usize, Step, BTreeSet<String>)> = Vec::new();
        let mut failures = Vec::new();
        let mut throttled = false;
        let mount = self.refresh.common.mount_path.as_path();
        let translation = &plan.settings.path_translation;
        let targets = fetch::primary_targets(plan);
        for (i, checked) in checked.into_iter().enumerate() {
            let object = &plan.objects[i];
            match checked {
                Checked::Pinned => {}
                Checked::Listed(listed) => {
                    let on_disk = || on_disk(mount, object, translation);
                    let known = self.known[i].as_ref();
                    match take_listing(object, translation, known, &listed, on_disk) {
                        Listing::Known(known) => next[i] = Some(known),
                        Listing::Read(step, missing) => reads.push((i, step, missing)),
                        Listing::Empty => failures.push(empty_listing_failure(
                            object,
                            &format!(
                                "ListSecrets in {} found no secret under the prefix",
                                clients.region
                            ),
                        )),
                        Listing::NoneFound => {
                            let e = secrets_by_prefix::none_found(&targets[i], &clients.region);
                            failures.push(format!("{}: {e}", object.label()));
                        }
                    }
                }
                Checked::Failed(e)
                    if object.object_type.facts().check == Check::SecretList
                        && !(e.kind().fails_over() && fetch::fails_over(plan, object)) =>
                {
                    // The listing is the fetch's own first call: reading would fail the same way.
                    throttled |= e.kind() == Kind::Throttled;
                    failures.push(format!("{}: {e}", object.label()));
                }
                Checked::Unread => wanted.push(i),
                Checked::Stamp(stamp, value) => {
                    let known = self.known[i].as_ref();
                    let same = known.is_some_and(|k| k.stamp.as_ref() == Some(&stamp));
                    if same {
                        continue;
                    }
                    match value {
                        Some(value) => {
                            next[i] = Some(Known {
                                stamp: Some(stamp),
                                value: Some(value),
                            });
                        }
                        None => {
                            stamps[i] = Some(stamp);
                            wanted.push(i);
                        }
                    }
                }
                Checked::Failed(e) if e.kind() == Kind::NotFound && object.optional => {
                    next[i] = Some(Known {
                        stamp: None,
                        value: None,
                    });
                }
                Checked::Failed(e) if e.kind().fails_over() && !fetch::fails_over(plan, object) => {
                    throttled |= e.kind() == Kind::Throttled;
                    failures.push(format!("{}: {e}", object.label()));
                }
                Checked::Failed(e) => {
                    // The value itself says more (or works: the role may lack only the check's
                    // permission, such as secretsmanager:DescribeSecret).
                    tracing::warn!(object = %object.label(), error = %e, "checking the version failed; fetching the value");
                    wanted.push(i);
                }
            }
        }
        let partial_reads =
            futures::future::join_all(reads.into_iter().map(|(i, step, missing)| {
                let target = &targets[i];
                async move {
                    let read = secrets_by_prefix::read(run, clients, target, &step.to_read).await;
                    (i, read.map(|read| (step.into_secrets(read), missing)))
                }
            }));
        let whole_fetches = async {
            if wanted.is_empty() {
                Vec::new()
            } else {
                fetch::fetch_some(plan, run, &self.regions, &wanted).await
            }
        };
        let (partial_reads, results) = futures::join!(partial_reads, whole_fetches);
        for (i, read) in partial_reads {
            match read {
                Ok((secrets, missing)) => {
                    next[i] = Some(Known {
                        stamp: Some(Stamp::Listing(missing)),
                        value: Some(Fetched::Secrets(secrets)),
                    });
                }
                Err(e) => {
                    throttled |= e.kind() == Kind::Throttled;
                    failures.push(format!("{}: {e}", plan.objects[i].label()));
                }
            }
        }
        for (i, result) in results.into_iter().enumerate() {
            let Some(result) = result else { continue };
            let object = &plan.objects[i];
            match result {
                Ok(Fetched::Secrets(read)) => {
                    // A whole read (after a failover) keeps the rule of two listings.
                    let (held, missing_before) = held_secrets(self.known[i].as_ref(), || {
                        on_disk(mount, object, translation)
                    });
                    let (secrets, missing) =
                        listing::step_read(&held, &missing_before, read, |name| {
                            prefix_secret_file(object, translation, name).ok()
                        });
                    next[i] = Some(Known {
                        stamp: Some(Stamp::Listing(missing)),
                        value: Some(Fetched::Secrets(secrets)),
                    });
                }
                Ok(value) => {
                    next[i] = Some(Known {
                        stamp: stamps[i].take(),
                        value: Some(value),
                    });
                }
                // A whole read of a prefix whose listing came back empty (after a failover):
                // an empty listing, as the check's.
                Err(e)
                    if e.kind() == Kind::NotFound
                        && object.object_type.facts().check == Check::SecretList =>
                {
                    let (held, _) = held_secrets(self.known[i].as_ref(), || {
                        on_disk(mount, object, translation)
                    });
                    match empty_listing(object, !held.is_empty()) {
                        Listing::Known(known) => next[i] = Some(known),
                        Listing::Empty => {
                            failures.push(empty_listing_failure(object, &e.to_string()));
                        }
                        Listing::Read(..) | Listing::NoneFound => {
                            failures.push(format!("{}: {e}", object.label()));
                        }
                    }
                }
                Err(e) if e.kind() == Kind::NotFound && object.optional => {
                    next[i] = Some(Known {
                        stamp: None,
                        value: None,
                    });
                }
                Err(e) => {
                    throttled |= e.kind() == Kind::Throttled;
                    failures.push(format!("{}: {e}", object.label()));
                }
            }
        }
        if !failures.is_empty() {
            return failed(plan, &failures, throttled);
        }
        let fetched = Instant::now();
        let values_changed = next
            .iter()
            .zip(&self.known)
            .any(|(new, old)| new.as_ref().map(|k| &k.value) != old.as_ref().map(|k| &k.value));
        if !values_changed {
            self.known = next;
            return Outcome::Unchanged;
        }
        let results = next
            .iter()
            .map(|known| match known.as_ref().and_then(|k| k.value.clone()) {
                Some(value) => Ok(value),
                None => Err(Error::object("NotFound", "", Kind::NotFound)),
            })
            .collect();
        let (mut files, failures, _skipped) = collect_files(plan, results);
        if !failures.is_empty() {
            return failed(plan, &failures, false);
        }
        // A value changed: the templates are rendered again, into the same new generation.
        if let Err(failures) = add_rendered(plan, self.templates.as_ref(), &mut files) {
            tracing::error!(
                failed = failures.len(),
                "a template failed to render; the current files stay, next try at the next cycle"
            );
            for line in &failures {
                tracing::error!(failure = %line, "template failed");
            }
            return Outcome::Failed { throttled: false };
        }
        let mount = self.refresh.common.mount_path.as_path();
        if stage::is_current(mount, &files) {
            self.known = next;
            return Outcome::Unchanged;
        }
        if let Err(e) = stage::publish(mount, &files) {
            tracing::error!(error = %e, "cannot write the new files; the current ones stay");
            return Outcome::Failed { throttled: false };
        }
        self.known = next;
        tracing::info!(
            files = files.len(),
            swap_us = fetched.elapsed().as_micros() as u64,
            "new files in place"
        );
        if let Some(signal) = &self.refresh.signal {
            notify::signal(signal);
        }
        if let Some(url) = &self.refresh.url {
            notify::post(url).await;
        }
        Outcome::Updated
    }
}

/// What a secret prefix's listing means for the cycle.
enum Listing {
    /// Nothing to read: the object as it is now (unchanged, or with secrets missing once or gone).
    Known(Known),
    /// Secrets to read (new, or their version moved), and the names missing once.
    Read(Step, BTreeSet<String>),
    /// An empty listing while the object has files: they stay, and the cycle fails.
    Empty,
    /// An empty listing of an object that has nothing and is not optional.
    NoneFound,
}

/// Takes one listing of a secret prefix against what the object holds (`known`; `None` before
/// the sidecar's first listing of its own, when it holds the files `on_disk` gives). A stale
/// answer must never wipe the directory, so an empty listing changes nothing.
fn take_listing(
    object: &Object,
    translation: &PathTranslation,
    known: Option<&Known>,
    listed: &[Listed],
    on_disk: impl FnOnce() -> Vec<Secret>,
) -> Listing {
    let (held, missing_before) = held_secrets(known, on_disk);
    if listed.is_empty() {
        return empty_listing(object, !held.is_empty());
    }
    let step = listing::step(&held, &missing_before, listed, |name| {
        prefix_secret_file(object, translation, name).ok()
    });
    log_step(object, &step, &missing_before);
    let missing = step.missing_once();
    if step.to_read.is_empty() {
        Listing::Known(Known {
            stamp: Some(Stamp::Listing(missing)),
            value: Some(Fetched::Secrets(step.into_secrets(Vec::new()))),
        })
    } else {
        Listing::Read(step, missing)
    }
}

/// What an empty listing of a secret prefix means, from the check or from a whole read:
/// nothing changes when the object holds files (`holds`), as a stale answer must never wipe the
/// directory; else the object is as at start (nothing, or not found).
fn empty_listing(object: &Object, holds: bool) -> Listing {
    if holds {
        Listing::Empty
    } else if object.optional {
        Listing::Known(Known {
            stamp: None,
            value: None,
        })
    } else {
        Listing::NoneFound
    }
}

/// The failure line of an empty listing (`found` says where) of an object that holds files.
fn empty_listing_failure(object: &Object, found: &str) -> String {
    format!(
        "{}: EmptyListing: {found}; the files stay (ListSecrets is eventually consistent, so an \
         empty answer is never taken as the truth)",
        object.label()
    )
}

/// Names the secrets a listing found missing: once (the file stays), or twice (it goes).
fn log_step(object: &Object, step: &Step, missing_before: &BTreeSet<String>) {
    for secret in &step.kept_missing {
        if !missing_before.contains(&secret.name) {
            tracing::info!(
                object = %object.label(),
                secret = %secret.name,
                "secret missing from the listing; its file stays unless the next listing lacks \
                 it too"
            );
        }
    }
    for name in &step.gone {
        tracing::info!(
            object = %object.label(),
            secret = %name,
            "secret missing from two listings in a row; its file goes"
        );
    }
    for (name, by) in &step.replaced {
        tracing::info!(
            object = %object.label(),
            secret = %name,
            listed = %by,
            "a listed secret now writes the file of a secret missing from the listing; the \
             missing one's file goes at once"
        );
    }
}

/// The secrets a prefix object holds, and the names its last listing lacked. Before the
/// sidecar's first listing of its own (`known` is `None`) it holds the files `on_disk` gives,
/// none of them missing yet.
fn held_secrets(
    known: Option<&Known>,
    on_disk: impl FnOnce() -> Vec<Secret>,
) -> (Cow<'_, [Secret]>, BTreeSet<String>) {
    let Some(known) = known else {
        return (Cow::Owned(on_disk()), BTreeSet::new());
    };
    let secrets = match &known.value {
        Some(Fetched::Secrets(secrets)) => secrets.as_slice(),
        _ => &[],
    };
    let missing = match &known.stamp {
        Some(Stamp::Listing(missing)) => missing.clone(),
        _ => BTreeSet::new(),
    };
    (Cow::Borrowed(secrets), missing)
}

/// The files of a prefix object's directory in the current generation (the init container's,
/// or a sidecar's before this one started), as held secrets, so that a sidecar that has not
/// listed yet still removes a file only after two listings without it: the first may be older
/// than the files (`ListSecrets` lags up to five minutes). Each is named by the prefix and its
/// path in the directory, which path translation turns back into that path (a file it does not
/// is left out), with no ARN or version, so that a listed secret of that name is read again;
/// its value is the file's bytes as they were fetched (encoded again when the object decodes).
fn on_disk(mount: &Path, object: &Object, translation: &PathTranslation) -> Vec<Secret> {
    let Some(files) = stage::current_files(mount) else {
        return Vec::new();
    };
    let directory = format!("{}/", object.file);
    files
        .into_iter()
        .filter_map(|(path, (_, bytes))| {
            let below = path.strip_prefix(&directory)?;
            let name = format!("{}{below}", object.name);
            let file = prefix_secret_file(object, translation, &name).ok()?;
            (file.as_str() == path).then(|| Secret {
                name,
                arn: String::new(),
                version: String::new(),
                value: as_fetched(object.decode, bytes),
            })
        })
        .collect()
}

/// A file's bytes as its value was fetched: the inverse of `decode`.
fn as_fetched(decode: Option<Decode>, bytes: Vec<u8>) -> Vec<u8> {
    match decode {
        None => bytes,
        Some(Decode::Base64) => base64_encode(&bytes).into_bytes(),
    }
}

fn failed(plan: &Plan, failures: &[String], throttled: bool) -> Outcome {
    tracing::error!(
        failed = failures.len(),
        objects = plan.objects.len(),
        "refresh failed; the current files stay, next try at the next cycle"
    );
    for line in failures {
        tracing::error!(failure = %line, "object failed");
    }
    Outcome::Failed { throttled }
}

/// The wait from one cycle's start to the next: the interval moved by up to [`JITTER`] of it
/// either way (`unit` in [0, 1)), plus a growing pause after cycles that failed on throttling.
fn wait(interval: Duration, throttled_cycles: u32, unit: f64) -> Duration {
    let jitter = interval.mul_f64(JITTER * (2.0 * unit.clamp(0.0, 1.0) - 1.0).abs());
    let base = if unit < 0.5 {
        interval.saturating_sub(jitter)
    } else {
        interval + jitter
    };
    let steps = throttled_cycles.min(THROTTLED_STEPS);
    let extra = interval
        .saturating_mul((1u32 << steps) - 1)
        .min(MAX_THROTTLED_EXTRA);
    base + extra
}

/// The cheap check of every object (see the module's comment). Objects never read before are
/// checked too, so their stamp is never newer than their value.
async fn check(plan: &Plan, run: &Run, clients: &Clients, known: &[Option<Known>]) -> Vec<Checked> {
    type Job<'f> = LocalBoxFuture<'f, Vec<(usize, Checked)>>;
    let mut checked: Vec<Option<Checked>> = (0..plan.objects.len()).map(|_| None).collect();
    let mut parameters = Vec::new();
    let mut singles: Vec<Job<'_>> = Vec::new();
    for target in fetch::primary_targets(plan) {
        if target.version.is_some() {
            checked[target.object] = Some(if known[target.object].is_some() {
                Checked::Pinned
            } else {
                Checked::Unread
            });
            continue;
        }
        let stamp = match target.kind.facts().check {
            // Ten to a call, below.
            Check::ParameterVersions => {
                parameters.push(target);
                continue;
            }
            Check::PathVersions => async move {
                ssm::get_path_versions(run, clients, &target)
                    .await
                    .map(Stamp::Path)
            }
            .boxed_local(),
            Check::SecretVersion => async move {
                secretsmanager::current_version(run, clients, &target)
                    .await
                    .map(Stamp::Secret)
            }
            .boxed_local(),
            Check::SecretList => {
                singles.push(
                    async move {
                        let checked =
                            match secrets_by_prefix::list(run, clients, &target, run.max_secrets)
                                .await
                            {
                                Ok(listed) => Checked::Listed(listed),
                                Err(e) => Checked::Failed(e),
                            };
                        vec![(target.object, checked)]
                    }
                    .boxed_local(),
                );
                continue;
            }
        };
        singles.push(
            async move {
                let checked = match stamp.await {
                    Ok(stamp) => Checked::Stamp(stamp, None),
                    Err(e) => Checked::Failed(e),
                };
                vec![(target.object, checked)]
            }
            .boxed_local(),
        );
    }
    let mut jobs: Vec<Job<'_>> = Vec::new();
    for batch in ssm::batches(&parameters) {
        let batch: Vec<Target<'_>> = batch.iter().map(|&i| parameters[i]).collect();
        jobs.push(
            async move {
                ssm::get_versions(run, clients, &batch)
                    .await
                    .into_iter()
                    .map(|(i, r)| {
                        let checked = match r {
                            Ok(v) => Checked::Stamp(
                                Stamp::Parameter(v.version),
                                v.plain.map(Fetched::Value),
                            ),
                            Err(e) => Checked::Failed(e),
                        };
                        (i, checked)
                    })
                    .collect()
            }
            .boxed_local(),
        );
    }
    jobs.extend(singles);
    let done: Vec<(usize, Checked)> = stream::iter(jobs)
        .buffer_unordered(fetch::CONCURRENCY)
        .flat_map(stream::iter)
        .collect()
        .await;
    for (i, c) in done {
        checked[i] = Some(c);
    }
    checked
        .into_iter()
        .map(|c| c.expect("every object is checked"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract;

    const MINUTE: Duration = Duration::from_secs(60);

    fn prefix_object(optional: bool) -> Object {
        let yaml = format!(
            "- {{objectName: p/, objectType: secretsmanagerpath, objectAlias: p, optional: {optional}}}"
        );
        let mut plan =
            secrets_injector_objects::plan::parse(&yaml, Settings::new("us-east-1")).unwrap();
        plan.objects.remove(0)
    }

    fn secret(name: &str) -> Secret {
        Secret {
            name: name.to_owned(),
            arn: format!("arn:{name}"),
            version: "1".to_owned(),
            value: b"v".to_vec(),
        }
    }

    fn holding(names: &[&str]) -> Known {
        Known {
            stamp: Some(Stamp::Listing(BTreeSet::new())),
            value: Some(Fetched::Secrets(names.iter().map(|n| secret(n)).collect())),
        }
    }

    #[test]
    fn an_empty_listing_never_removes_files() {
        let object = prefix_object(true);
        let held = holding(&["p/a"]);
        let t = PathTranslation::default();
        assert!(matches!(
            take_listing(&object, &t, Some(&held), &[], Vec::new),
            Listing::Empty
        ));
        // Before the first cycle, the init container's files are what there is to keep.
        assert!(matches!(
            take_listing(&object, &t, None, &[], || vec![secret("p/a")]),
            Listing::Empty
        ));
        // Nothing there: an optional object stays empty, another fails as at start.
        assert!(matches!(
            take_listing(&object, &t, None, &[], Vec::new),
            Listing::Known(Known { value: None, .. })
        ));
        let empty = Known {
            stamp: None,
            value: None,
        };
        assert!(matches!(
            take_listing(&object, &t, Some(&empty), &[], || vec![secret("p/a")]),
            Listing::Known(Known { value: None, .. })
        ));
        assert!(matches!(
            take_listing(&prefix_object(false), &t, None, &[], Vec::new),
            Listing::NoneFound
        ));
    }

    #[test]
    fn a_listing_keeps_reads_or_drops() {
        let object = prefix_object(false);
        let listed = |name: &str| Listed {
            name: name.to_owned(),
            arn: format!("arn:{name}"),
            current: "1".to_owned(),
        };
        let t = PathTranslation::default();
        let held = holding(&["p/a", "p/b"]);
        let Listing::Known(first) =
            take_listing(&object, &t, Some(&held), &[listed("p/a")], Vec::new)
        else {
            panic!("nothing to read");
        };
        assert_eq!(first.value, held.value, "missing once: the file stays");
        let Listing::Known(second) =
            take_listing(&object, &t, Some(&first), &[listed("p/a")], Vec::new)
        else {
            panic!("nothing to read");
        };
        assert_eq!(
            second.value,
            holding(&["p/a"]).value,
            "missing twice: it goes"
        );
        let Listing::Read(step, _) = take_listing(
            &object,
            &t,
            Some(&second),
            &[listed("p/a"), listed("p/c")],
            Vec::new,
        ) else {
            panic!("a new secret is read");
        };
        assert_eq!(step.to_read, [listed("p/c")]);
    }

    #[test]
    fn the_first_listing_keeps_the_files_it_lacks_one_listing_more() {
        let object = prefix_object(false);
        let t = PathTranslation::default();
        let unknown = |name: &str| Secret {
            arn: String::new(),
            version: String::new(),
            ..secret(name)
        };
        let on_disk = || vec![unknown("p/a"), unknown("p/b")];
        let listed = Listed {
            name: "p/a".to_owned(),
            arn: "arn:p/a".to_owned(),
            current: "1".to_owned(),
        };
        let Listing::Read(step, missing) =
            take_listing(&object, &t, None, std::slice::from_ref(&listed), on_disk)
        else {
            panic!("the listed secret is read");
        };
        assert_eq!(step.to_read, std::slice::from_ref(&listed));
        assert_eq!(missing, BTreeSet::from(["p/b".to_owned()]));
        let first = Known {
            stamp: Some(Stamp::Listing(missing)),
            value: Some(Fetched::Secrets(step.into_secrets(vec![secret("p/a")]))),
        };
        assert_eq!(
            first.value,
            Some(Fetched::Secrets(vec![secret("p/a"), unknown("p/b")])),
            "missing once: the file stays"
        );
        let Listing::Known(second) = take_listing(&object, &t, Some(&first), &[listed], Vec::new)
        else {
            panic!("nothing to read");
        };
        assert_eq!(
            second.value,
            holding(&["p/a"]).value,
            "missing twice: it goes"
        );
    }

    #[test]
    fn files_on_disk_are_held_under_names_that_give_them_back() {
        let names = ["p/db/user", "p/key", "p/a.b/c"];
        for translation in ["_", "False", "-"] {
            for prefix in ["p/", "p"] {
                for decode in ["", ", decode: base64"] {
                    let yaml = format!(
                        "- {{objectName: {prefix}, objectType: secretsmanagerpath, \
                         objectAlias: dir{decode}}}\n\
                         - {{objectName: /other, objectType: ssmparameter, objectAlias: dirx}}"
                    );
                    let translation: PathTranslation = translation.parse().unwrap();
                    let settings = Settings {
                        path_translation: translation,
                        ..Settings::new("us-east-1")
                    };
                    let plan = secrets_injector_objects::plan::parse(&yaml, settings).unwrap();
                    let object = &plan.objects[0];
                    let read: Vec<Secret> = names
                        .iter()
                        .map(|n| Secret {
                            value: b"aGk=".to_vec(),
                            ..secret(n)
                        })
                        .collect();
                    let mut files =
                        extract::object_files(object, Fetched::Secrets(read), &translation)
                            .unwrap();
                    let other = Fetched::Value(b"x".to_vec());
                    files.extend(
                        extract::object_files(&plan.objects[1], other, &translation).unwrap(),
                    );
                    let mount = tempfile::tempdir().unwrap();
                    stage::install(mount.path(), &files).unwrap();

                    let held = on_disk(mount.path(), object, &translation);
                    assert_eq!(held.len(), names.len(), "{yaml} {translation}");
                    let again = extract::object_files(object, Fetched::Secrets(held), &translation)
                        .unwrap();
                    let mut want = files[..names.len()].to_vec();
                    want.sort_by(|a, b| a.path.cmp(&b.path));
                    let mut again = again;
                    again.sort_by(|a, b| a.path.cmp(&b.path));
                    assert_eq!(again, want, "{yaml} {translation}");
                }
            }
        }
        // No generation yet: nothing held.
        let empty = tempfile::tempdir().unwrap();
        let t = PathTranslation::default();
        assert!(on_disk(empty.path(), &prefix_object(false), &t).is_empty());
    }

    #[test]
    fn cycles_stay_within_a_tenth_of_the_interval() {
        for i in 0..=100 {
            let unit = f64::from(i) / 100.0;
            let w = wait(MINUTE, 0, unit);
            assert!(
                w >= MINUTE.mul_f64(0.9) && w <= MINUTE.mul_f64(1.1),
                "{unit}: {w:?}"
            );
        }
        assert_eq!(wait(MINUTE, 0, 0.5), MINUTE);
    }

    #[test]
    fn throttled_cycles_wait_longer_up_to_a_bound() {
        assert_eq!(wait(MINUTE, 1, 0.5), 2 * MINUTE);
        assert_eq!(wait(MINUTE, 2, 0.5), 4 * MINUTE);
        assert_eq!(wait(MINUTE, 3, 0.5), 8 * MINUTE);
        assert_eq!(wait(MINUTE, 9, 0.5), 8 * MINUTE);
        let hour = 60 * MINUTE;
        assert_eq!(wait(hour, 5, 0.5), hour + MAX_THROTTLED_EXTRA);
    }
}
