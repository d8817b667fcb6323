//! Values as environment variables (`env-containers`, SPEC "Environment variables"): each
//! container it names runs `secrets-env` before its own command. The init container copies
//! `secrets-env` into a second in-memory volume; the webhook checks the names and commands, wraps
//! each command once with a `--dir` for each secrets volume the container mounts (its own wrapper
//! is recognised whatever its `--dir` list, and corrected), adds the volume and its mounts, and
//! warns of env entries a file will override. A pod with rewritten CSI volumes but no objects of
//! its own has the first CSI init container copy `secrets-env`.

use json_patch::PatchOperation;
use serde_json::{Map, Value, json};

use secrets_injector_objects::annotations::{
    BIN_MOUNT_PATH, BIN_VOLUME_NAME, CONTAINERS, DEFAULT_MOUNT_PATH, ENV_CONTAINERS,
    INIT_CONTAINER_NAME, INIT_FIRST, MOUNT_PATH, SECRETS_ENV_PATH, VOLUME_NAME,
};
use secrets_injector_objects::envfile::is_env_name;
use secrets_injector_objects::plan::Plan;

use super::csi;
use super::injection::mount_index;
use super::patch;
use super::quantity::Quantity;
use crate::pod::{self, ContainerList, ContainerRef, Targets};

/// `sizeLimit` of the bin volume: room for `secrets-env` (about 1.2 MB), counted against the
/// pod's memory.
pub const BIN_VOLUME_SIZE_LIMIT: &str = "8Mi";

/// The containers whose command runs `secrets-env`, each with its own command (unwrapped).
#[derive(Debug, Default)]
pub struct EnvContainers {
    pub found: Vec<(ContainerRef, Vec<Value>)>,
    /// For each of `found`, the directories `secrets-env` reads, in mount order (`read_dirs`).
    pub dirs: Vec<Vec<String>>,
}

/// Reads and checks `env-containers`: every name a target container of the pod, with a
/// `command`; the bin volume's mount clear of the files' mount and of the container's own mounts.
/// `filler` is the init container that copies `secrets-env`.
pub fn resolve(
    pod: &Value,
    targets: &Targets,
    mount_path: &str,
    init_first: bool,
    filler: &str,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> EnvContainers {
    let annotation = pod::annotation(pod, ENV_CONTAINERS);
    let Some(names) = pod::named_containers(annotation) else {
        if annotation.is_some() {
            warnings.push(format!(
                "annotation {ENV_CONTAINERS} names no container; no container gets environment variables"
            ));
        }
        return EnvContainers::default();
    };
    let mut found = Vec::new();
    // A set, not a scan of the names before: a pod may write tens of thousands of names.
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    for name in &names {
        if !seen.insert(name.as_str()) {
            continue;
        }
        match check_container(pod, targets, name, init_first) {
            Ok(entry) => found.push(entry),
            Err(problem) => problems.push(format!("annotation {ENV_CONTAINERS}: {problem}")),
        }
    }
    if pod::path_holds(mount_path, BIN_MOUNT_PATH) || pod::path_holds(BIN_MOUNT_PATH, mount_path) {
        problems.push(format!(
            "annotation {MOUNT_PATH}: {mount_path} contains or lies inside {BIN_MOUNT_PATH}, where \
             the containers of {ENV_CONTAINERS} get secrets-env; choose a mount path such as \
             /mnt/secrets-store"
        ));
    }
    for (at, _) in &found {
        problems.extend(bin_mount_clashes(pod, *at));
    }
    problems.extend(writable_bin_mounts(pod, &found, filler));
    found.sort_by_key(|(at, _)| (at.list != ContainerList::Containers, at.index));
    EnvContainers {
        found,
        dirs: Vec::new(),
    }
}

/// `env-containers` on a pod without objects of its own whose CSI volumes are rewritten: every
/// container of the pod may be named, and the first CSI init container (`filler`) copies
/// `secrets-env`, before the pod's own init containers.
pub fn resolve_for_csi(
    pod: &Value,
    filler: &str,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> EnvContainers {
    let mut found = Vec::new();
    for list in [ContainerList::Containers, ContainerList::InitContainers] {
        for (index, container) in pod::containers(pod, list).iter().enumerate() {
            let name = pod::name(container);
            if !pod::is_own_container(name) && !name.starts_with(csi::CONTAINER_PREFIX) {
                found.push(ContainerRef { list, index });
            }
        }
    }
    let targets = Targets {
        found,
        missing: Vec::new(),
    };
    resolve(
        pod,
        &targets,
        DEFAULT_MOUNT_PATH,
        true,
        filler,
        problems,
        warnings,
    )
}

/// The pod's rewritten CSI volumes: those rewritten now and those an earlier mutation rewrote
/// (their init container is there).
pub fn csi_volumes<'a>(pod: &Value, rewritten: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut volumes: Vec<String> = rewritten.map(str::to_owned).collect();
    let init = pod::containers(pod, ContainerList::InitContainers);
    for volume in pod::volumes(pod) {
        let name = volume.get("name").and_then(Value::as_str).unwrap_or("");
        let filled = init
            .iter()
            .any(|c| pod::name(c) == csi::container_name(name));
        if filled && !volumes.iter().any(|v| v == name) {
            volumes.push(name.to_owned());
        }
    }
    volumes
}

/// Sets the directories each container's `secrets-env` reads: one per secrets volume it mounts,
/// in the order of its mounts; the webhook's own at `own_mount` (last when not mounted yet: its
/// mount is added at the end). A `subPath` mount is a file, not a directory: left out.
pub fn read_dirs(
    pod: &Value,
    env: &mut EnvContainers,
    own_mount: Option<&str>,
    csi_volumes: &[String],
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    env.dirs.clear();
    for (at, _) in &env.found {
        let container = pod::container(pod, *at).unwrap_or(&Value::Null);
        let mut dirs: Vec<String> = Vec::new();
        let mut own_seen = false;
        for mount in pod::mounts(container) {
            let volume = mount.get("name").and_then(Value::as_str).unwrap_or("");
            let path = match own_mount {
                Some(own) if volume == VOLUME_NAME => {
                    own_seen = true;
                    own
                }
                _ if csi_volumes.iter().any(|v| v == volume) => {
                    let sub_path = ["subPath", "subPathExpr"].iter().any(|key| {
                        mount
                            .get(key)
                            .and_then(Value::as_str)
                            .is_some_and(|s| !s.is_empty())
                    });
                    if sub_path {
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
            if !dirs.iter().any(|d| d == path) {
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
        env.dirs.push(dirs);
    }
}

/// Has a CSI volume's init container copy `secrets-env` too: its flag (before the object list,
/// which stays last) and a writable mount of the bin volume.
pub fn fill_from(container: &mut Map<String, Value>) {
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
    targets: &Targets,
    name: &str,
    init_first: bool,
) -> Result<(ContainerRef, Vec<Value>), String> {
    if name == INIT_CONTAINER_NAME {
        return Err(format!(
            "{name:?} is the webhook's own init container; name the containers whose process gets \
             the variables"
        ));
    }
    let Some(&at) = targets
        .found
        .iter()
        .find(|&&at| pod::container(pod, at).map(pod::name) == Some(name))
    else {
        let exists = [ContainerList::Containers, ContainerList::InitContainers]
            .iter()
            .any(|&list| {
                pod::containers(pod, list)
                    .iter()
                    .any(|c| pod::name(c) == name)
            });
        return Err(if exists {
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
    if at.list == ContainerList::InitContainers && !init_first {
        return Err(format!(
            "init container {name:?} may run before the webhook's init container has copied \
             secrets-env, as the annotation {INIT_FIRST} is \"false\"; remove that annotation or \
             leave {name:?} out of {ENV_CONTAINERS}"
        ));
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
    Ok((at, own.to_vec()))
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
            pod::path_holds(path, BIN_MOUNT_PATH) || pod::path_holds(BIN_MOUNT_PATH, path)
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
fn writable_bin_mounts(
    pod: &Value,
    found: &[(ContainerRef, Vec<Value>)],
    filler: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    for list in ContainerList::ALL {
        for (index, container) in pod::containers(pod, list).iter().enumerate() {
            if list == ContainerList::InitContainers && pod::name(container) == filler {
                continue;
            }
            let converged = found
                .iter()
                .any(|(at, _)| *at == ContainerRef { list, index })
                .then(|| mount_index(container, BIN_VOLUME_NAME))
                .flatten();
            for (i, mount) in pod::mounts(container).iter().enumerate() {
                if Some(i) == converged
                    || mount.get("name").and_then(Value::as_str) != Some(BIN_VOLUME_NAME)
                    || mount.get("readOnly").and_then(Value::as_bool) == Some(true)
                {
                    continue;
                }
                problems.push(format!(
                    "container {:?} mounts the volume {BIN_VOLUME_NAME:?} at {} writable, and \
                     only the injector may write secrets-env there; remove the mount or set \
                     readOnly: true",
                    pod::name(container),
                    pod::mount_path(mount)
                ));
            }
        }
    }
    problems
}

/// A warning for each env entry of a container of `env-containers` that a file will replace
/// (`envFrom` and entries added later are not seen).
pub fn clash_warnings(pod: &Value, env: &EnvContainers, plan: &Plan) -> Vec<String> {
    let mut files: Vec<&str> = plan
        .env_file_sources()
        .map(|(path, _)| path.as_str())
        .collect();
    files.extend(
        plan.env_file
            .as_ref()
            .map(|path| path.as_str())
            .filter(|name| is_env_name(name)),
    );
    let mut warnings = Vec::new();
    for (at, _) in &env.found {
        let Some(container) = pod::container(pod, *at) else {
            continue;
        };
        let entries = container
            .get("env")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let mut named: Vec<&str> = Vec::new();
        for name in entries
            .iter()
            .filter_map(|entry| entry.get("name").and_then(Value::as_str))
        {
            if files.contains(&name) && !named.contains(&name) {
                named.push(name);
            }
        }
        for name in named {
            warnings.push(format!(
                "annotation {ENV_CONTAINERS}: container {:?} sets the variable {name} in its env, \
                 and the file {name} replaces it: its process sees the file's value; rename the \
                 variable or give the object another objectAlias",
                pod::name(container)
            ));
        }
    }
    warnings
}

/// The init container's mount of the bin volume (read-write: it copies `secrets-env` there).
pub fn init_mount(env: &EnvContainers) -> Option<Value> {
    (!env.found.is_empty()).then(|| json!({"name": BIN_VOLUME_NAME, "mountPath": BIN_MOUNT_PATH}))
}

/// The injector's flag that has it copy `secrets-env` into the bin volume.
pub fn injector_arg(env: &EnvContainers) -> Option<String> {
    (!env.found.is_empty()).then(|| format!("--secrets-env-dir={BIN_MOUNT_PATH}"))
}

/// The bin volume, its read-only mount and the wrapped command in each container (its
/// directories set by `read_dirs`).
pub fn patch(pod: &Value, env: &EnvContainers, ops: &mut Vec<PatchOperation>) {
    if env.found.is_empty() {
        return;
    }
    let size: Quantity = BIN_VOLUME_SIZE_LIMIT
        .parse()
        .expect("built-in bin volume size");
    patch::volume(pod, BIN_VOLUME_NAME, &size, ops);
    let mount = json!({"name": BIN_VOLUME_NAME, "mountPath": BIN_MOUNT_PATH, "readOnly": true});
    for ((at, own), dirs) in env.found.iter().zip(&env.dirs) {
        patch::mount(pod, *at, &mount, ops);
        let desired = wrapped(own, dirs);
        let current = pod::container(pod, *at).and_then(|c| c.get("command"));
        if current != Some(&desired) {
            let index = at.index.to_string();
            ops.push(patch::replace(
                patch::ptr(&["spec", at.list.key(), &index, "command"]),
                desired,
            ));
        }
    }
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
        BIN_VOLUME_SIZE_LIMIT.parse::<Quantity>().unwrap();
    }
}
