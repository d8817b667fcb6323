//! Refresh while running: the `refresh-interval`, `refresh-signal` and `refresh-url` annotations
//! checked at admission, and a native sidecar (an init container with `restartPolicy: Always`)
//! that runs `injector refresh` for each init container the edit has that fills a volume: the
//! webhook's own (`secrets-injector-refresh`) and each rewritten CSI volume's
//! (`secrets-injector-refresh-<volume>`), which `order` puts right after it. A sidecar is its
//! init container with another command, more flags and its own resources, so it runs under the
//! same identity, mounts and hardening; each notifies after a swap of its own volume.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use secrets_injector_objects::annotations::{
    BIN_VOLUME_NAME, MESH_BYPASS, REFRESH_INTERVAL, REFRESH_SIGNAL, REFRESH_URL,
};
use secrets_injector_objects::refresh::{Interval, RefreshUrl, Signal};

use super::config::{MutationConfig, refresh_memory_limit};
use super::container;
use super::edit::{Edit, OwnedInit};
use crate::owned;
use crate::pod::{self, ContainerList, Identity, Targets};

/// The sidecar's flags besides the init container's, each one `--flag=value` word with the
/// annotation's value as written (so no value can be read as another flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refresh {
    pub args: Vec<String>,
}

/// The sidecar's `resources`, from the flags (the pod's `injector-resources` sizes the init
/// container's first fetch only).
fn resources(cfg: &MutationConfig) -> Value {
    json!({
        "limits": {
            "cpu": cfg.refresh_cpu_limit.as_str(),
            "memory": refresh_memory_limit(cfg).as_str(),
        },
        "requests": {
            "cpu": cfg.refresh_cpu_request.as_str(),
            "memory": cfg.refresh_memory_request.as_str(),
        },
    })
}

/// Reads the refresh annotations against the containers the edit serves, and adds a sidecar
/// after each init container of the edit that fills a volume.
pub fn add(pod: &Value, cfg: &MutationConfig, edit: &mut Edit) {
    let asked = [REFRESH_INTERVAL, REFRESH_SIGNAL, REFRESH_URL]
        .iter()
        .any(|name| pod::annotation(pod, name).is_some());
    if !edit.asks() || !asked {
        return;
    }
    // The pod's own objects' targets; else every container that mounts a rewritten volume (now
    // or before).
    let targets = match &edit.injected {
        Some(injected) => injected.targets.clone(),
        None => {
            let mut found = Vec::new();
            let mut seen = HashSet::new();
            for rewritten in &edit.rewritten {
                for &at in &rewritten.mounting.found {
                    if seen.insert(at) {
                        found.push(at);
                    }
                }
            }
            Targets {
                found,
                missing: Vec::new(),
            }
        }
    };
    let identity = match &edit.injected {
        Some(injected) => injected.identity,
        None => pod::identity(pod, targets.first(pod)),
    };
    let mut problems = Vec::new();
    let refresh = read(
        pod,
        cfg,
        &targets,
        &identity,
        edit.mesh.bypass,
        &mut problems,
    );
    for problem in problems {
        edit.problem(problem);
    }
    let Some(refresh) = refresh else {
        return;
    };
    let volumes: HashSet<&str> = edit
        .init
        .iter()
        .filter(|init| init.is_filler())
        .map(|init| init.volume.as_str())
        .collect();
    let warnings = sub_path_warnings(pod, edit, &volumes);
    edit.warnings.extend(warnings);
    let sidecars: Vec<OwnedInit> = edit
        .init
        .iter()
        .filter(|init| init.is_filler())
        .map(|filler| {
            let name = owned::refresh_of(&filler.name, &filler.volume);
            OwnedInit {
                fields: desired_sidecar(&filler.fields, &name, refresh.clone(), cfg),
                name,
                volume: filler.volume.clone(),
                sidecar_of: Some(filler.name.clone()),
            }
        })
        .collect();
    edit.init.extend(sidecars);
}

/// Reads and checks the refresh annotations. `None` when the pod does not refresh, or when a
/// problem was found (it is in `problems`). `bypass`: the sidecar runs as a mesh proxy's user
/// (`mesh-bypass`).
fn read(
    pod: &Value,
    cfg: &MutationConfig,
    targets: &Targets,
    identity: &Identity,
    bypass: bool,
    problems: &mut Vec<String>,
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
    if signal.is_some() && bypass {
        problems.push(format!(
            "annotation {REFRESH_SIGNAL}: with {MESH_BYPASS} \"true\" the sidecar runs as the mesh \
             proxy's user, and a process without capabilities may signal only processes of its \
             own user; have the app reload on a POST to {REFRESH_URL} instead, or remove \
             {MESH_BYPASS}"
        ));
    } else if let Some(text) = signal {
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
    let sidecar = container::injector_user(identity, cfg);
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

/// A warning for each mount of one of the files' `volumes` with `subPath`: the runtime resolves
/// it once, when the container starts, so that container keeps the first values.
fn sub_path_warnings(pod: &Value, edit: &Edit, volumes: &HashSet<&str>) -> Vec<String> {
    let mut warnings = Vec::new();
    for list in ContainerList::ALL {
        for container in pod::containers(pod, list) {
            let name = pod::name(container);
            if list == ContainerList::InitContainers && edit.owns_init(name) {
                continue;
            }
            for mount in pod::mounts(container) {
                let volume = mount.get("name").and_then(Value::as_str).unwrap_or("");
                if !volumes.contains(volume) {
                    continue;
                }
                if let Some(key) = pod::sub_path(mount) {
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
fn desired_sidecar(
    init: &Map<String, Value>,
    name: &str,
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
    sidecar.insert("name".to_owned(), json!(name));
    sidecar.insert("command".to_owned(), Value::Array(command));
    sidecar.insert("args".to_owned(), Value::Array(args));
    sidecar.insert("resources".to_owned(), resources(cfg));
    sidecar.insert("restartPolicy".to_owned(), json!("Always"));
    sidecar
}
