//! Refresh while running: the `refresh-interval`, `refresh-signal` and `refresh-url` annotations
//! checked at admission, and the native sidecar `secrets-injector-refresh` (an init container
//! with `restartPolicy: Always`) that runs `injector refresh` right after the init container.
//! The sidecar is the init container with another command, more flags and its own resources, so
//! it runs under the same identity, mounts and hardening.

use std::time::Duration;

use json_patch::PatchOperation;
use serde_json::{Map, Value, json};

use secrets_injector_objects::annotations::{
    BIN_VOLUME_NAME, INIT_CONTAINER_NAME, REFRESH_CONTAINER_NAME, REFRESH_INTERVAL, REFRESH_SIGNAL,
    REFRESH_URL, VOLUME_NAME,
};
use secrets_injector_objects::refresh::{Interval, RefreshUrl, Signal};

use super::config::MutationConfig;
use super::patch;
use super::quantity::Quantity;
use crate::pod::{self, ContainerList, Identity, Targets};
use crate::{Error, Result};

/// The injector's own needs besides the files: its peak RSS is about 13 MiB (BENCHMARKS.md).
const PROCESS_MEMORY: u128 = 16 << 20;

/// The sidecar's flags besides the init container's, each one `--flag=value` word with the
/// annotation's value as written (so no value can be read as another flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    pub args: Vec<String>,
}

/// `--refresh-min-interval`: written as the annotation is (`30s`, `5m`).
pub(crate) fn parse_min_interval(text: &str) -> Result<Duration, String> {
    Interval::parse(text).map(|interval| interval.duration())
}

/// The bytes of memory the sidecar needs at least: the volume's files (a memory-backed
/// `emptyDir` is a tmpfs of `sizeLimit`, and what the sidecar writes is charged to it), the
/// values of one generation held while they are written (at most half the volume, which must hold
/// two generations during a swap), and the process.
fn required_memory(cfg: &MutationConfig) -> u128 {
    let volume = cfg.volume_size_limit.nanos().div_ceil(1_000_000_000);
    volume + volume.div_ceil(2) + PROCESS_MEMORY
}

/// A whole number of bytes as a quantity, in `Mi` or `Ki` when it is a multiple.
fn bytes_quantity(bytes: u128) -> Quantity {
    let text = if bytes.is_multiple_of(1 << 20) {
        format!("{}Mi", bytes >> 20)
    } else if bytes.is_multiple_of(1 << 10) {
        format!("{}Ki", bytes >> 10)
    } else {
        bytes.to_string()
    };
    text.parse()
        .expect("a whole number of bytes is a Kubernetes quantity")
}

/// `--refresh-memory-limit`, or what the sidecar needs when it is not set.
pub(crate) fn memory_limit(cfg: &MutationConfig) -> Quantity {
    cfg.refresh_memory_limit
        .clone()
        .unwrap_or_else(|| bytes_quantity(required_memory(cfg)))
}

/// The sidecar's `resources`, from the flags (the pod's `injector-resources` sizes the init
/// container's first fetch only).
fn resources(cfg: &MutationConfig) -> Value {
    json!({
        "limits": {
            "cpu": cfg.refresh_cpu_limit.as_str(),
            "memory": memory_limit(cfg).as_str(),
        },
        "requests": {
            "cpu": cfg.refresh_cpu_request.as_str(),
            "memory": cfg.refresh_memory_request.as_str(),
        },
    })
}

/// What the refresh flags must satisfy together, checked once at startup.
pub(crate) fn validate_config(cfg: &MutationConfig) -> Result<()> {
    let required = required_memory(cfg);
    if let Some(limit) = &cfg.refresh_memory_limit
        && limit.nanos() < required * 1_000_000_000
    {
        return Err(Error::Config(format!(
            "--refresh-memory-limit {limit} is less than the refresh sidecar needs with \
             --volume-size-limit {}: {} (the volume, half of it again for the values held while \
             a new generation is written, and 16Mi for the process), or the kernel would kill it \
             mid-swap; raise it, or leave it unset to have it computed",
            cfg.volume_size_limit,
            bytes_quantity(required)
        )));
    }
    let memory = memory_limit(cfg);
    let pairs = [
        ("cpu", &cfg.refresh_cpu_request, &cfg.refresh_cpu_limit),
        ("memory", &cfg.refresh_memory_request, &memory),
    ];
    for (resource, request, limit) in pairs {
        if request.nanos() > limit.nanos() {
            return Err(Error::Config(format!(
                "--refresh-{resource}-request {request} is more than the refresh sidecar's \
                 {resource} limit {limit}; the API server would reject every pod that refreshes"
            )));
        }
    }
    Ok(())
}

/// Reads and checks the refresh annotations. `None` when the pod does not refresh, or when a
/// problem was found (it is in `problems`).
pub fn read(
    pod: &Value,
    cfg: &MutationConfig,
    targets: &Targets,
    identity: &Identity,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<Refresh> {
    let signal = pod::annotation(pod, REFRESH_SIGNAL);
    let url = pod::annotation(pod, REFRESH_URL);
    let Some(interval) = pod::annotation(pod, REFRESH_INTERVAL) else {
        // A denial rather than a warning: the pod would run without the reloads it asks for,
        // and nothing would show it until a rotated secret broke the app.
        for (name, value) in [(REFRESH_SIGNAL, signal), (REFRESH_URL, url)] {
            if value.is_some() {
                problems.push(format!(
                    "annotation {name} is set without {REFRESH_INTERVAL}, so the files would be \
                     read once and nothing would ever be notified; add {REFRESH_INTERVAL} (such \
                     as 5m), or remove {name}"
                ));
            }
        }
        return None;
    };
    let before = problems.len();
    let checked =
        Interval::parse(interval).and_then(|parsed| parsed.at_least(cfg.refresh_min_interval));
    if let Err(message) = checked {
        problems.push(format!("annotation {REFRESH_INTERVAL}: {message}"));
    }
    if let Some(text) = signal {
        match Signal::parse(text) {
            Ok(parsed) => problems.extend(
                signal_problems(pod, cfg, targets, identity, &parsed)
                    .into_iter()
                    .map(|problem| format!("annotation {REFRESH_SIGNAL}: {problem}")),
            ),
            Err(message) => problems.push(format!("annotation {REFRESH_SIGNAL}: {message}")),
        }
    }
    if let Some(text) = url
        && let Err(message) = RefreshUrl::parse(text)
    {
        problems.push(format!("annotation {REFRESH_URL}: {message}"));
    }
    warnings.extend(sub_path_warnings(pod, VOLUME_NAME));
    if problems.len() != before {
        return None;
    }
    let mut args = vec![format!("--interval={interval}")];
    args.extend(signal.map(|text| format!("--signal={text}")));
    args.extend(url.map(|text| format!("--url={text}")));
    Some(Refresh { args })
}

/// Why the sidecar could not deliver `signal`: the kernel lets a process without capabilities
/// signal only processes of its own user, and only those it can see.
fn signal_problems(
    pod: &Value,
    cfg: &MutationConfig,
    targets: &Targets,
    identity: &Identity,
    signal: &Signal,
) -> Vec<String> {
    let instead = format!("or have the app reload on a POST to {REFRESH_URL} instead");
    let spec = pod.get("spec");
    let mut problems = Vec::new();
    if spec
        .and_then(|spec| spec.get("shareProcessNamespace"))
        .and_then(Value::as_bool)
        != Some(true)
    {
        problems.push(format!(
            "the sidecar can see process {:?} only in a process namespace shared by the pod's \
             containers; set spec.shareProcessNamespace: true, {instead}",
            signal.process
        ));
    }
    if let Some(reason) = user_mismatch(pod, cfg, targets, identity) {
        problems.push(format!(
            "a process without capabilities may signal only processes of its own user, so the \
             target containers and the sidecar need one known non-root runAsUser, but {reason}; \
             {instead}"
        ));
    }
    if signal.signal.is_restart() {
        let policy = spec
            .and_then(|spec| spec.get("restartPolicy"))
            .and_then(Value::as_str)
            .unwrap_or("Always");
        if policy != "Always" {
            problems.push(format!(
                "{} ends the process, and only the pod's restartPolicy: Always starts the \
                 container again, but it is {policy}; send a reload signal such as SIGHUP, {instead}",
                signal.signal.name()
            ));
        }
    }
    problems
}

/// Why the target containers and the sidecar do not share one known non-root user, if they
/// do not.
fn user_mismatch(
    pod: &Value,
    cfg: &MutationConfig,
    targets: &Targets,
    identity: &Identity,
) -> Option<String> {
    let mut shared: Option<(&str, i64)> = None;
    for &at in &targets.found {
        let container = pod::container(pod, at)?;
        let name = pod::name(container);
        match pod::identity(pod, Some(container)).run_as_user {
            None => {
                return Some(format!(
                    "container {name:?} has no runAsUser (in its securityContext or the pod's); \
                     set one"
                ));
            }
            Some(0) => {
                return Some(format!(
                    "container {name:?} runs as root, which the non-root sidecar may not signal; \
                     give it a non-root runAsUser"
                ));
            }
            Some(user) => match shared {
                Some((first, other)) if other != user => {
                    return Some(format!(
                        "container {first:?} runs as {other} and {name:?} as {user}; give them \
                         one runAsUser"
                    ));
                }
                _ => shared = Some(shared.unwrap_or((name, user))),
            },
        }
    }
    let sidecar = patch::injector_user(identity, cfg);
    match (sidecar, shared) {
        (None, _) => Some(
            "the sidecar's user is left to the platform (the webhook runs with \
             --injector-user=none); set a runAsUser on the target containers"
                .to_owned(),
        ),
        (Some(sidecar), Some((name, user))) if sidecar != user => Some(format!(
            "the sidecar runs as {sidecar} and container {name:?} as {user}"
        )),
        _ => None,
    }
}

/// A warning for each mount of the files' volume `volume` with `subPath`: the runtime resolves it
/// once, when the container starts, so that container keeps the first values.
pub(super) fn sub_path_warnings(pod: &Value, volume: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    for list in ContainerList::ALL {
        for container in pod::containers(pod, list) {
            let name = pod::name(container);
            if list == ContainerList::InitContainers && pod::is_own_container(name) {
                continue;
            }
            for mount in pod::mounts(container) {
                if mount.get("name").and_then(Value::as_str) != Some(volume) {
                    continue;
                }
                let sub_path = ["subPath", "subPathExpr"].into_iter().find(|key| {
                    mount
                        .get(*key)
                        .and_then(Value::as_str)
                        .is_some_and(|text| !text.is_empty())
                });
                if let Some(key) = sub_path {
                    warnings.push(format!(
                        "annotation {REFRESH_INTERVAL}: container {name:?} mounts the volume \
                         {volume:?} at {} with {key}, which is resolved once, when the \
                         container starts: it never sees a refresh; read the file through a \
                         mount of the whole volume instead",
                        pod::mount_path(mount)
                    ));
                }
            }
        }
    }
    warnings
}

/// The sidecar's fields the webhook owns: the init container's (`init`), with its own name,
/// `command` (the init container's plus `refresh`), `args` (the init container's plus the refresh
/// flags), resources and `restartPolicy: Always`, which makes it a native sidecar.
pub fn desired_sidecar(
    init: &Map<String, Value>,
    refresh: Refresh,
    cfg: &MutationConfig,
) -> Map<String, Value> {
    let mut sidecar = init.clone();
    let words = |key: &str| {
        init.get(key)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut command = words("command");
    command.push(json!("refresh"));
    // `secrets-env` is copied once, by the init container: the sidecar neither copies it nor
    // mounts its volume.
    let mut args = words("args");
    args.retain(|arg| {
        !arg.as_str()
            .is_some_and(|arg| arg.starts_with("--secrets-env-dir="))
    });
    args.extend(refresh.args.into_iter().map(Value::String));
    let mut mounts = words("volumeMounts");
    mounts.retain(|mount| mount.get("name").and_then(Value::as_str) != Some(BIN_VOLUME_NAME));
    sidecar.insert("volumeMounts".to_owned(), Value::Array(mounts));
    sidecar.insert("name".to_owned(), json!(REFRESH_CONTAINER_NAME));
    sidecar.insert("command".to_owned(), Value::Array(command));
    sidecar.insert("args".to_owned(), Value::Array(args));
    sidecar.insert("resources".to_owned(), resources(cfg));
    sidecar.insert("restartPolicy".to_owned(), json!("Always"));
    sidecar
}

/// The operations that put the sidecar right after the init container (added, moved there, or
/// converged field by field), or remove one the pod's annotations no longer ask for, which also
/// drops one a pod forged. `ops` are the operations so far, which may have added or moved the
/// init container.
pub fn sidecar(pod: &Value, desired: Option<Map<String, Value>>, ops: &mut Vec<PatchOperation>) {
    sidecar_after(
        pod,
        INIT_CONTAINER_NAME,
        REFRESH_CONTAINER_NAME,
        desired,
        ops,
    );
}

/// [`sidecar`] for the sidecar `name` of the init container `anchor`.
pub(super) fn sidecar_after(
    pod: &Value,
    anchor: &str,
    name: &str,
    desired: Option<Map<String, Value>>,
    ops: &mut Vec<PatchOperation>,
) {
    let own = |container: &Value| pod::name(container) == name;
    let present = pod::containers(pod, ContainerList::InitContainers)
        .iter()
        .any(own);
    if desired.is_none() && !present {
        return;
    }
    // Positions are those after the operations so far, which were built for this very pod and
    // apply to it; were they not to, the API server would refuse the whole patch anyway.
    let mut after = pod.clone();
    if json_patch::patch(&mut after, ops).is_err() {
        return;
    }
    let init = pod::containers(&after, ContainerList::InitContainers);
    let injector = init.iter().position(|c| pod::name(c) == anchor);
    let current = init.iter().position(own);
    match (desired, current) {
        (None, None) => {}
        (None, Some(_)) => {
            // Every one, the last first: a pod the API server will refuse for its duplicate
            // names still gets none from the webhook.
            for index in (0..init.len()).rev().filter(|&i| own(&init[i])) {
                ops.push(patch::remove(patch::ptr(&[
                    "spec",
                    "initContainers",
                    &index.to_string(),
                ])));
            }
        }
        (Some(desired), None) => {
            let at = injector.map_or(0, |i| i + 1).to_string();
            ops.push(patch::add(
                patch::ptr(&["spec", "initContainers", &at]),
                Value::Object(desired),
            ));
        }
        (Some(desired), Some(index)) => {
            // Moving removes first: one before the init container lands right after it at the
            // init container's own index.
            let at = match injector {
                Some(i) if index < i => i,
                Some(i) => i + 1,
                None => 0,
            };
            if at != index {
                ops.push(patch::move_init_container(index, at));
            }
            patch::converge_container(&init[index], desired, at, ops);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_limit_covers_the_volume_and_the_process() {
        let mut cfg = MutationConfig::for_tests("i");
        assert_eq!(memory_limit(&cfg).as_str(), "40Mi");
        cfg.volume_size_limit = "1Gi".parse().unwrap();
        assert_eq!(memory_limit(&cfg).as_str(), "1552Mi");
        cfg.volume_size_limit = "1000k".parse().unwrap();
        assert_eq!(bytes_quantity(required_memory(&cfg)).as_str(), "18277216");
        cfg.refresh_memory_limit = Some("2Gi".parse().unwrap());
        assert_eq!(memory_limit(&cfg).as_str(), "2Gi");
    }
}
