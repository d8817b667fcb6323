//! Values as environment variables (`env-containers`, SPEC "Environment variables"): each
//! container it names runs `secrets-env` before its own command. The first init container that
//! fills a volume copies `secrets-env` into a second in-memory volume; the webhook checks the
//! names and commands, wraps each command once with a `--dir` for each secrets volume the
//! container mounts (its own wrapper is recognised whatever its `--dir` list, and corrected), adds
//! the volume and its mounts, and warns of env entries a file will override. A pod with rewritten
//! CSI volumes but no objects of its own has the first CSI init container copy `secrets-env`.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use secrets_injector_objects::annotations::{
    BIN_MOUNT_PATH, BIN_VOLUME_NAME, CONTAINERS, DEFAULT_MOUNT_PATH, ENV_CONTAINERS,
    INIT_CONTAINER_NAME, INIT_FIRST, MOUNT_PATH, SECRETS_ENV_PATH, VOLUME_NAME,
};
use secrets_injector_objects::envfile::is_env_name;
use secrets_injector_objects::plan::Plan;

use super::edit::Edit;
use super::order::{self, Before, RunBefore};
use crate::owned;
use crate::pod::{self, ContainerList, ContainerRef, Targets};

/// `sizeLimit` of the bin volume: room for `secrets-env` (about 1.2 MB), counted against the
/// pod's memory.
pub const BIN_VOLUME_SIZE_LIMIT: &str = "8Mi";

/// A container whose command runs `secrets-env`, with its own command (unwrapped).
struct EnvContainer {
    at: ContainerRef,
    own: Vec<Value>,
}

/// Reads `env-containers` against what the edit already holds, and adds the bin volume, its
/// mounts, the wrapped commands and the copy of `secrets-env` by the first filler.
pub fn add(pod: &Value, edit: &mut Edit) {
    let annotation = pod::annotation(pod, ENV_CONTAINERS);
    let Some(names) = pod::named_containers(annotation) else {
        if annotation.is_some() && edit.asks() {
            edit.warnings.push(format!(
                "annotation {ENV_CONTAINERS} names no container; no container gets environment variables"
            ));
        }
        return;
    };
    let (targets, own_mount, filler) = match &edit.injected {
        Some(injected) => (
            injected.targets.clone(),
            Some(injected.mount_path.clone()),
            INIT_CONTAINER_NAME.to_owned(),
        ),
        None => match edit.rewritten.iter().find(|r| !r.adopted) {
            // Every container of the pod may be named.
            Some(first) => (
                every_container(pod, edit),
                None,
                owned::csi_filler(&first.volume),
            ),
            None => return,
        },
    };
    let mount_path = own_mount.as_deref().unwrap_or(DEFAULT_MOUNT_PATH);
    // The pod's init containers that run before the filler copies `secrets-env`: `order`'s
    // answer, from the one order the patch will write.
    let init = pod::containers(pod, ContainerList::InitContainers);
    edit.work.charge(init.len());
    let (init, _) = order::read(init, &edit.init);
    let before = order::run_before(&init, &edit.init, edit.init_first(), &filler);
    let mut problems = Vec::new();
    let found = resolve(
        pod,
        &targets,
        &names,
        mount_path,
        &before,
        &filler,
        &mut problems,
    );
    let csi_volumes: HashSet<&str> = edit.rewritten.iter().map(|r| r.volume.as_str()).collect();
    let dirs = read_dirs(
        pod,
        &found,
        own_mount.as_deref(),
        &csi_volumes,
        &mut problems,
        &mut edit.warnings,
    );
    if let Some(injected) = &edit.injected
        && let Some(plan) = &injected.plan
    {
        let warnings = clash_warnings(pod, &found, plan, &injected.templates);
        edit.warnings.extend(warnings);
    }
    for problem in problems {
        edit.problem(problem);
    }
    if found.is_empty() {
        return;
    }
    edit.add_volume(json!({
        "name": BIN_VOLUME_NAME,
        "emptyDir": {"medium": "Memory", "sizeLimit": BIN_VOLUME_SIZE_LIMIT},
    }));
    let mount = json!({"name": BIN_VOLUME_NAME, "mountPath": BIN_MOUNT_PATH, "readOnly": true});
    for (EnvContainer { at, own }, dirs) in found.iter().zip(dirs) {
        edit.mounts.push((*at, mount.clone()));
        edit.commands.push((*at, wrapped(own, &dirs)));
    }
    if let Some(filler) = edit.init.iter_mut().find(|init| init.name == filler) {
        fill_from(&mut filler.fields);
    }
}

/// Every container of the pod but the webhook's: regular ones, then init containers.
fn every_container(pod: &Value, edit: &Edit) -> Targets {
    let mut found = Vec::new();
    for list in [ContainerList::Containers, ContainerList::InitContainers] {
        for (index, container) in pod::containers(pod, list).iter().enumerate() {
            if list == ContainerList::Containers || !edit.owns_init(pod::name(container)) {
                found.push(ContainerRef { list, index });
            }
        }
    }
    Targets {
        found,
        missing: Vec::new(),
    }
}

/// Checks `env-containers`: every name a target container of the pod that runs after `filler`,
/// the init container that copies `secrets-env` (`before` says which do not), with a `command`;
/// the bin volume's mount clear of the files' mount and of the container's own mounts.
fn resolve(
    pod: &Value,
    targets: &Targets,
    names: &[String],
    mount_path: &str,
    before: &RunBefore<'_>,
    filler: &str,
    problems: &mut Vec<String>,
) -> Vec<EnvContainer> {
    let by_name: HashMap<&str, ContainerRef> = targets
        .found
        .iter()
        .rev()
        .filter_map(|&at| Some((pod::name(pod::container(pod, at)?), at)))
        .collect();
    let present: HashSet<&str> = [ContainerList::Containers, ContainerList::InitContainers]
        .iter()
        .flat_map(|&list| pod::containers(pod, list).iter().map(pod::name))
        .collect();
    let mut found = Vec::new();
    // A set, not a scan of the names before: a pod may write tens of thousands of names.
    let mut seen = HashSet::with_capacity(names.len());
    for name in names {
        if !seen.insert(name.as_str()) {
            continue;
        }
        match check_container(pod, &by_name, &present, name, before, filler) {
            Ok(entry) => found.push(entry),
            Err(problem) => problems.push(format!("annotation {ENV_CONTAINERS}: {problem}")),
        }
    }
    if pod::relation(mount_path, BIN_MOUNT_PATH).is_some() {
        problems.push(format!(
            "annotation {MOUNT_PATH}: {mount_path} contains or lies inside {BIN_MOUNT_PATH}, where \
             the containers of {ENV_CONTAINERS} get secrets-env; choose a mount path such as \
             /mnt/secrets-store"
        ));
    }
    for entry in &found {
        problems.extend(bin_mount_clashes(pod, entry.at));
    }
    problems.extend(writable_bin_mounts(pod, &found, filler));
    found.sort_by_key(|entry| (entry.at.list != ContainerList::Containers, entry.at.index));
    found
}

/// The directories each container's `secrets-env` reads: one per secrets volume it mounts, in
/// the order of its mounts; the webhook's own at `own_mount` (last when not mounted yet: its mount
/// is added at the end). A `subPath` mount is a file, not a directory: left out.
fn read_dirs(
    pod: &Value,
    found: &[EnvContainer],
    own_mount: Option<&str>,
    csi_volumes: &HashSet<&str>,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Vec<Vec<String>> {
    let mut all = Vec::with_capacity(found.len());
    for EnvContainer { at, .. } in found {
        let container = pod::container(pod, *at).unwrap_or(&Value::Null);
        let mut dirs: Vec<String> = Vec::new();
        // A set, not a scan of the dirs before: a container may mount a volume many times.
        let mut seen: HashSet<&str> = HashSet::new();
        let mut own_seen = false;
        for mount in pod::mounts(container) {
            let volume = mount.get("name").and_then(Value::as_str).unwrap_or("");
            let path = match own_mount {
                Some(own) if volume == VOLUME_NAME => {
                    own_seen = true;
                    own
                }
                _ if csi_volumes.contains(volume) => {
                    if pod::sub_path(mount).is_some() {
                        warnings.push(format!(
                            "annotation {ENV_CONTAINERS}: container {:?} mounts the secrets \
                             volume {volume:?} at {} with a subPath, a single file that \
                             secrets-env cannot read as a directory: its values are not in the \
                             environment; mount the whole volume to have them",
                            pod::name(container),
                            pod::mount_path(mount)
                        ));
                        continue;
                    }
                    pod::mount_path(mount)
                }
                _ => continue,
            };
            if seen.insert(path) {
                dirs.push(path.to_owned());
            }
        }
        if let Some(own) = own_mount.filter(|_| !own_seen) {
            dirs.push(own.to_owned());
        }
        if dirs.is_empty() {
            problems.push(format!(
                "annotation {ENV_CONTAINERS}: container {:?} mounts no secrets volume as a \
                 directory, so secrets-env would have nothing to read; mount a rewritten CSI \
                 volume without subPath in it, or leave it out of {ENV_CONTAINERS}",
                pod::name(container)
            ));
        }
        all.push(dirs);
    }
    all
}

/// Has an init container copy `secrets-env` too: its flag (before the object list, which stays
/// last) and a writable mount of the bin volume, right after the mount of the volume it fills.
fn fill_from(container: &mut Map<String, Value>) {
    if let Some(args) = container.get_mut("args").and_then(Value::as_array_mut) {
        let at = args.len().saturating_sub(1);
        args.insert(at, json!(format!("--secrets-env-dir={BIN_MOUNT_PATH}")));
    }
    if let Some(mounts) = container
        .get_mut("volumeMounts")
        .and_then(Value::as_array_mut)
    {
        mounts.insert(
            1.min(mounts.len()),
            json!({"name": BIN_VOLUME_NAME, "mountPath": BIN_MOUNT_PATH}),
        );
    }
}

/// The container named `name`, checked, with its command unwrapped.
fn check_container(
    pod: &Value,
    targets: &HashMap<&str, ContainerRef>,
    present: &HashSet<&str>,
    name: &str,
    before: &RunBefore<'_>,
    filler: &str,
) -> Result<EnvContainer, String> {
    if name == INIT_CONTAINER_NAME {
        return Err(format!(
            "{name:?} is the webhook's own init container; name the containers whose process gets \
             the variables"
        ));
    }
    let Some(&at) = targets.get(name) else {
        return Err(if present.contains(name) {
            format!(
                "container {name:?} is not a target container, so it does not get the files; add \
                 it to the annotation {CONTAINERS} or leave it out of {ENV_CONTAINERS}"
            )
        } else {
            format!(
                "the pod has no container {name:?}; name containers of the pod, comma-separated"
            )
        });
    };
    let why = (at.list == ContainerList::InitContainers)
        .then(|| before.why(at.index))
        .flatten();
    match why {
        None => {}
        Some(Before::InitFirst) => {
            return Err(format!(
                "init container {name:?} may run before the webhook's init container has copied \
                 secrets-env, as the annotation {INIT_FIRST} is \"false\"; remove that annotation \
                 or leave {name:?} out of {ENV_CONTAINERS}"
            ));
        }
        Some(Before::Place { after }) => {
            return Err(format!(
                "init container {name:?} runs before the webhook's init container {filler:?} has \
                 copied secrets-env: the webhook's init containers go after the mesh's (a proxy \
                 running as a native sidecar, the mesh's own init containers), so that they can \
                 reach AWS, here after {after:?}; list {name:?} after {after:?}, or leave it out \
                 of {ENV_CONTAINERS}"
            ));
        }
    }
    let container = pod::container(pod, at).unwrap_or(&Value::Null);
    let command = container
        .get("command")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let own = unwrap(command);
    if own.is_empty() || !own.iter().all(Value::is_string) {
        return Err(format!(
            "container {name:?} has no command, and the webhook never asks the registry for the \
             image's entrypoint; set command (and args) to what the image runs (its ENTRYPOINT and \
             CMD)"
        ));
    }
    Ok(EnvContainer {
        at,
        own: own.to_vec(),
    })
}

/// The container's own command: what follows the webhook's wrapper, whatever `--dir` list the
/// wrapper was written with, or the whole command when it is not wrapped.
fn unwrap(command: &[Value]) -> &[Value] {
    let Some((program, mut rest)) = command.split_first() else {
        return command;
    };
    if program != SECRETS_ENV_PATH {
        return command;
    }
    let mut dirs = 0;
    while let [flag, _dir, after @ ..] = rest {
        if flag != "--dir" {
            break;
        }
        rest = after;
        dirs += 1;
    }
    match rest.split_first() {
        Some((separator, own)) if dirs > 0 && separator == "--" => own,
        _ => command,
    }
}

/// The wrapped command: `secrets-env` reads `dirs` (the first value of a name wins), then runs
/// `own`.
fn wrapped(own: &[Value], dirs: &[String]) -> Value {
    let mut command = vec![json!(SECRETS_ENV_PATH)];
    for dir in dirs {
        command.push(json!("--dir"));
        command.push(json!(dir));
    }
    command.push(json!("--"));
    command.extend(own.iter().cloned());
    Value::Array(command)
}

/// A denial for each mount of the container that the bin volume's mount would clash with.
fn bin_mount_clashes(pod: &Value, at: ContainerRef) -> Vec<String> {
    let Some(container) = pod::container(pod, at) else {
        return Vec::new();
    };
    pod::mounts(container)
        .iter()
        .filter(|mount| mount.get("name").and_then(Value::as_str) != Some(BIN_VOLUME_NAME))
        .filter(|mount| {
            let path = pod::mount_path(mount);
            pod::relation(path, BIN_MOUNT_PATH).is_some()
        })
        .map(|mount| {
            format!(
                "annotation {ENV_CONTAINERS}: container {:?} mounts volume {:?} at {}, which \
                 holds or lies inside {BIN_MOUNT_PATH}, where it gets secrets-env; mount it \
                 elsewhere",
                pod::name(container),
                mount.get("name").and_then(Value::as_str).unwrap_or(""),
                pod::mount_path(mount)
            )
        })
        .collect()
}

/// A denial for each writable mount of the bin volume outside the webhook's own parts: what is
/// there runs as the app's command.
fn writable_bin_mounts(pod: &Value, found: &[EnvContainer], filler: &str) -> Vec<String> {
    let converged: HashSet<ContainerRef> = found.iter().map(|entry| entry.at).collect();
    pod::writable_mounts(pod, BIN_VOLUME_NAME, &converged, |name| name == filler)
        .into_iter()
        .map(|(container, mount)| {
            format!(
                "container {:?} mounts the volume {BIN_VOLUME_NAME:?} at {} writable, and only \
                 the injector may write secrets-env there; remove the mount or set readOnly: true",
                pod::name(container),
                pod::mount_path(mount)
            )
        })
        .collect()
}

/// A warning for each env entry of a container of `env-containers` that a file will replace
/// (`envFrom` and entries added later are not seen).
fn clash_warnings(
    pod: &Value,
    found: &[EnvContainer],
    plan: &Plan,
    templates: &[String],
) -> Vec<String> {
    let mut files: HashSet<&str> = plan
        .env_file_sources()
        .map(|(path, _)| path.as_str())
        .collect();
    files.extend(
        plan.env_file
            .as_ref()
            .map(|path| path.as_str())
            .filter(|name| is_env_name(name)),
    );
    // A template's file is a top-level file like an object's.
    files.extend(
        templates
            .iter()
            .map(String::as_str)
            .filter(|name| is_env_name(name)),
    );
    let mut warnings = Vec::new();
    for EnvContainer { at, .. } in found {
        let Some(container) = pod::container(pod, *at) else {
            continue;
        };
        let entries = container
            .get("env")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let mut named: Vec<&str> = Vec::new();
        let mut seen = HashSet::new();
        for name in entries
            .iter()
            .filter_map(|entry| entry.get("name").and_then(Value::as_str))
        {
            if files.contains(name) && seen.insert(name) {
                named.push(name);
            }
        }
        for name in named {
            warnings.push(format!(
                "annotation {ENV_CONTAINERS}: container {:?} sets the variable {name} in its env, \
                 and the file {name} replaces it: its process sees the file's value; rename the \
                 variable or give the object another objectAlias (or the template another name)",
                pod::name(container)
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(words: &[&str]) -> Vec<Value> {
        words.iter().map(|w| json!(w)).collect()
    }

    #[test]
    fn the_wrapper_is_recognised_whatever_its_mount_path() {
        let own = strings(&["/app/server", "--port", "8080"]);
        let once = wrapped(&own, &["/mnt/secrets-store".to_owned()]);
        assert_eq!(
            once,
            json!([
                SECRETS_ENV_PATH,
                "--dir",
                "/mnt/secrets-store",
                "--",
                "/app/server",
                "--port",
                "8080"
            ])
        );
        assert_eq!(unwrap(once.as_array().unwrap()), own.as_slice());
        let older = wrapped(&own, &["/etc/old".to_owned()]);
        assert_eq!(unwrap(older.as_array().unwrap()), own.as_slice());
        let several = wrapped(&own, &["/mnt/a".to_owned(), "/var/secrets".to_owned()]);
        assert_eq!(unwrap(several.as_array().unwrap()), own.as_slice());
        // A secrets-env command without a `--dir` or its `--` is the container's own.
        let bare = strings(&[SECRETS_ENV_PATH, "--", "/app"]);
        assert_eq!(unwrap(&bare), bare.as_slice());
        let open = strings(&[SECRETS_ENV_PATH, "--dir", "/x", "/app"]);
        assert_eq!(unwrap(&open), open.as_slice());
        assert_eq!(unwrap(&own), own.as_slice());
        // Another program's `--dir` is the container's own command.
        let other = strings(&["/bin/env-loader", "--dir", "/x", "--", "/app"]);
        assert_eq!(unwrap(&other), other.as_slice());
    }

    #[test]
    fn the_bin_volume_size_is_a_quantity() {
        BIN_VOLUME_SIZE_LIMIT
            .parse::<super::super::quantity::Quantity>()
            .unwrap();
    }
}
