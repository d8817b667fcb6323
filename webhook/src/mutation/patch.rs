//! From a checked injection to RFC 6902 operations on the pod. The webhook recognises its parts by
//! name and converges them: missing parts are added, parts that differ from the current settings
//! are replaced, parts that already match produce no operation, and fields the API server
//! defaults (`imagePullPolicy`, `terminationMessagePath`) are left alone.

use json_patch::jsonptr::PointerBuf;
use json_patch::{
    AddOperation, MoveOperation, Patch, PatchOperation, RemoveOperation, ReplaceOperation,
};
use serde_json::{Map, Value, json};

use secrets_injector_objects::annotations::{
    INIT_CONTAINER_NAME, STATUS, STATUS_INJECTED, VOLUME_NAME,
};

use super::config::{InjectorUser, MutationConfig};
use super::env;
use super::injection::{INJECTOR_PATH, Injection, mount_index};
use super::quantity::Quantity;
use super::refresh;
use super::resources;
use crate::pod::{self, ContainerList, ContainerRef, Identity};

/// Fields of the init container the webhook does not own but keeps: the API server defaults them.
pub(super) const KEPT_FIELDS: [&str; 3] = ["name", "imagePullPolicy", "terminationMessagePath"];

/// The operations that bring `pod` to the injected state.
pub fn build(pod: &Value, mut injection: Injection, cfg: &MutationConfig) -> Patch {
    let mut ops = Vec::new();
    status_annotation(pod, &mut ops);
    volume(pod, VOLUME_NAME, &cfg.volume_size_limit, &mut ops);
    target_mounts(pod, &injection, &mut ops);
    let sidecar = injection.refresh.take();
    let init_first = injection.init_first;
    env::patch(pod, &injection.env, &mut ops);
    let desired = desired_container(injection, cfg);
    let sidecar = sidecar.map(|sidecar| refresh::desired_sidecar(&desired, sidecar, cfg));
    init_container(pod, desired, init_first, &mut ops);
    refresh::sidecar(pod, sidecar, &mut ops);
    Patch(ops)
}

pub(super) fn ptr(tokens: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(tokens.iter().copied())
}

pub(super) fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

pub(super) fn replace(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Replace(ReplaceOperation { path, value })
}

pub(super) fn remove(path: PointerBuf) -> PatchOperation {
    PatchOperation::Remove(RemoveOperation { path })
}

/// Whether `parent[key]` holds a JSON object or array (as opposed to missing or null), so an
/// operation can go inside it.
fn has_container(parent: Option<&Value>, key: &str) -> bool {
    parent
        .and_then(|p| p.get(key))
        .is_some_and(|v| v.is_object() || v.is_array())
}

/// Whether an earlier operation adds `path` (a list the pod did not have).
fn added(ops: &[PatchOperation], path: &PointerBuf) -> bool {
    ops.iter()
        .any(|op| matches!(op, PatchOperation::Add(op) if op.path == *path))
}

pub(super) fn status_annotation(pod: &Value, ops: &mut Vec<PatchOperation>) {
    if pod::annotation(pod, STATUS) == Some(STATUS_INJECTED) {
        return;
    }
    let metadata = pod.get("metadata");
    if !pod.get("metadata").is_some_and(Value::is_object) {
        ops.push(add(
            ptr(&["metadata"]),
            json!({"annotations": {STATUS: STATUS_INJECTED}}),
        ));
    } else if !has_container(metadata, "annotations") {
        ops.push(add(
            ptr(&["metadata", "annotations"]),
            json!({STATUS: STATUS_INJECTED}),
        ));
    } else {
        ops.push(add(
            ptr(&["metadata", "annotations", STATUS]),
            json!(STATUS_INJECTED),
        ));
    }
}

fn desired_volume(name: &str, size_limit: &Quantity) -> Value {
    json!({
        "name": name,
        "emptyDir": {"medium": "Memory", "sizeLimit": size_limit.as_str()},
    })
}

/// Whether an existing volume is the webhook's volume as it would write it now (the size limit
/// compared as a quantity, since the API server may write it in another form).
fn same_volume(existing: &Value, size_limit: &Quantity) -> bool {
    let Some(fields) = existing.as_object() else {
        return false;
    };
    let Some(empty_dir) = existing.get("emptyDir").and_then(Value::as_object) else {
        return false;
    };
    let size = empty_dir
        .get("sizeLimit")
        .and_then(Value::as_str)
        .and_then(|text| text.parse::<Quantity>().ok());
    fields.len() == 2
        && empty_dir.len() == 2
        && empty_dir.get("medium") == Some(&json!("Memory"))
        && size.as_ref() == Some(size_limit)
}

/// The webhook's in-memory volume `name`, added or converged.
pub(super) fn volume(
    pod: &Value,
    name: &str,
    size_limit: &Quantity,
    ops: &mut Vec<PatchOperation>,
) {
    let volumes = pod::volumes(pod);
    let own = volumes
        .iter()
        .position(|v| v.get("name").and_then(Value::as_str) == Some(name));
    let desired = || desired_volume(name, size_limit);
    match own {
        Some(i) if same_volume(&volumes[i], size_limit) => {}
        Some(i) => ops.push(replace(
            ptr(&["spec", "volumes", &i.to_string()]),
            desired(),
        )),
        None if has_container(pod.get("spec"), "volumes")
            || added(ops, &ptr(&["spec", "volumes"])) =>
        {
            ops.push(add(ptr(&["spec", "volumes", "-"]), desired()));
        }
        None => ops.push(add(ptr(&["spec", "volumes"]), json!([desired()]))),
    }
}

/// The read-only mount of the webhook's volume in each target container.
fn target_mounts(pod: &Value, injection: &Injection, ops: &mut Vec<PatchOperation>) {
    let desired = json!({"name": VOLUME_NAME, "mountPath": injection.mount_path, "readOnly": true});
    for &at in &injection.targets.found {
        mount(pod, at, &desired, ops);
    }
}

/// The mount `desired` of one of the webhook's volumes in a container, added or converged (the
/// container's mount of that volume is the webhook's).
pub(super) fn mount(pod: &Value, at: ContainerRef, desired: &Value, ops: &mut Vec<PatchOperation>) {
    let Some(container) = pod::container(pod, at) else {
        return;
    };
    let volume = desired.get("name").and_then(Value::as_str).unwrap_or("");
    let index = at.index.to_string();
    let base = ["spec", at.list.key(), index.as_str(), "volumeMounts"];
    match mount_index(container, volume) {
        Some(i) if pod::mounts(container)[i] == *desired => {}
        Some(i) => {
            let i = i.to_string();
            ops.push(replace(
                ptr(&[&base[..], &[i.as_str()]].concat()),
                desired.clone(),
            ));
        }
        None if has_container(Some(container), "volumeMounts") || added(ops, &ptr(&base)) => {
            ops.push(add(ptr(&[&base[..], &["-"]].concat()), desired.clone()));
        }
        None => ops.push(add(ptr(&base), json!([desired.clone()]))),
    }
}

/// The init container's security context: non-root, no privilege escalation, read-only root,
/// no capabilities, the runtime's seccomp profile; the app's user and group when it has a
/// non-root one, so the files belong to it.
fn security_context(identity: &Identity, cfg: &MutationConfig) -> Value {
    let app_user = identity.run_as_user.filter(|&user| user != 0);
    let configured = configured_user(cfg);
    let user = injector_user(identity, cfg);
    let group = identity
        .run_as_group
        .filter(|&group| group != 0)
        .or(if app_user.is_none() { configured } else { None });
    let mut context = json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": true,
        "runAsNonRoot": true,
        "seccompProfile": {"type": "RuntimeDefault"},
    });
    if let Some(fields) = context.as_object_mut() {
        if let Some(user) = user {
            fields.insert("runAsUser".to_owned(), json!(user));
        }
        if let Some(group) = group {
            fields.insert("runAsGroup".to_owned(), json!(group));
        }
    }
    context
}

/// The `--injector-user` id, when it sets one.
fn configured_user(cfg: &MutationConfig) -> Option<i64> {
    match cfg.injector_user {
        InjectorUser::Id(id) => Some(id),
        InjectorUser::Unset => None,
    }
}

/// The user the webhook's containers run as: the app's when it is not root, else the flag's
/// (`None`: left to the platform).
pub(super) fn injector_user(identity: &Identity, cfg: &MutationConfig) -> Option<i64> {
    identity
        .run_as_user
        .filter(|&user| user != 0)
        .or(configured_user(cfg))
}

/// Whether an existing security context is the desired one. `procMount: Default` is what the
/// API server may fill in.
fn same_security_context(existing: Option<&Value>, desired: &Value) -> bool {
    let Some(Value::Object(existing)) = existing else {
        return false;
    };
    let mut existing = existing.clone();
    if existing.get("procMount") == Some(&json!("Default")) {
        existing.remove("procMount");
    }
    Some(&existing) == desired.as_object()
}

/// The fields of the init container the webhook owns, with their current values (the injection's
/// parts move into it).
pub(super) fn desired_container(injection: Injection, cfg: &MutationConfig) -> Map<String, Value> {
    let Injection {
        mount_path,
        args,
        copied_env: env,
        copied_mounts,
        resources,
        identity,
        env: env_containers,
        ..
    } = injection;
    let mut mounts = Vec::with_capacity(2 + copied_mounts.len());
    mounts.push(json!({"name": VOLUME_NAME, "mountPath": mount_path}));
    mounts.extend(env::init_mount(&env_containers));
    mounts.extend(copied_mounts);
    let mut container = Map::new();
    container.insert("name".to_owned(), json!(INIT_CONTAINER_NAME));
    container.insert("image".to_owned(), json!(cfg.injector_image));
    container.insert("command".to_owned(), json!([INJECTOR_PATH]));
    container.insert(
        "args".to_owned(),
        Value::Array(args.into_iter().map(Value::String).collect()),
    );
    if !env.is_empty() {
        container.insert("env".to_owned(), Value::Array(env));
    }
    container.insert("resources".to_owned(), resources);
    container.insert(
        "securityContext".to_owned(),
        security_context(&identity, cfg),
    );
    container.insert(
        "terminationMessagePolicy".to_owned(),
        json!("FallbackToLogsOnError"),
    );
    container.insert("volumeMounts".to_owned(), Value::Array(mounts));
    container
}

fn init_container(
    pod: &Value,
    desired: Map<String, Value>,
    init_first: bool,
    ops: &mut Vec<PatchOperation>,
) {
    let init = pod::containers(pod, ContainerList::InitContainers);
    let Some(mut index) = init
        .iter()
        .position(|c| pod::name(c) == INIT_CONTAINER_NAME)
    else {
        let container = Value::Object(desired);
        if !has_container(pod.get("spec"), "initContainers") {
            ops.push(add(ptr(&["spec", "initContainers"]), json!([container])));
        } else if init_first {
            ops.push(add(ptr(&["spec", "initContainers", "0"]), container));
        } else {
            ops.push(add(ptr(&["spec", "initContainers", "-"]), container));
        }
        return;
    };
    let existing = &init[index];
    if init_first && index != 0 {
        // Another webhook put its init container first since; the files must come first.
        ops.push(move_init_container(index, 0));
        index = 0;
    }
    converge_container(existing, desired, index, ops);
}

/// Moves the init container at `from` to `to`.
pub(super) fn move_init_container(from: usize, to: usize) -> PatchOperation {
    PatchOperation::Move(MoveOperation {
        from: ptr(&["spec", "initContainers", &from.to_string()]),
        path: ptr(&["spec", "initContainers", &to.to_string()]),
    })
}

/// Sets the fields the webhook owns of its init container `existing`, now at `index`, to
/// `desired`, and removes the fields it does not keep.
pub(super) fn converge_container(
    existing: &Value,
    desired: Map<String, Value>,
    index: usize,
    ops: &mut Vec<PatchOperation>,
) {
    let index = index.to_string();
    let field = |key: &str| ptr(&["spec", "initContainers", index.as_str(), key]);
    let Some(fields) = existing.as_object() else {
        ops.push(replace(
            ptr(&["spec", "initContainers", index.as_str()]),
            Value::Object(desired),
        ));
        return;
    };
    for (key, value) in &desired {
        let current = fields.get(key);
        let same = match key.as_str() {
            "resources" => resources::same(current, Some(value)),
            "securityContext" => same_security_context(current, value),
            _ => current == Some(value),
        };
        match current {
            _ if same => {}
            Some(_) => ops.push(replace(field(key), value.clone())),
            None => ops.push(add(field(key), value.clone())),
        }
    }
    for key in fields.keys() {
        if !desired.contains_key(key) && !KEPT_FIELDS.contains(&key.as_str()) {
            ops.push(remove(field(key)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_context_uses_the_app_user_when_not_root() {
        let cfg = MutationConfig::for_tests("i");
        let app = Identity {
            run_as_user: Some(1000),
            run_as_group: Some(3000),
            ..Identity::default()
        };
        let context = security_context(&app, &cfg);
        assert_eq!(context["runAsUser"], json!(1000));
        assert_eq!(context["runAsGroup"], json!(3000));
        assert_eq!(context["runAsNonRoot"], json!(true));
        assert_eq!(context["allowPrivilegeEscalation"], json!(false));
        assert_eq!(context["readOnlyRootFilesystem"], json!(true));
        assert_eq!(context["capabilities"], json!({"drop": ["ALL"]}));
        assert_eq!(context["seccompProfile"], json!({"type": "RuntimeDefault"}));
    }

    #[test]
    fn security_context_falls_back_to_the_flag() {
        let cfg = MutationConfig::for_tests("i");
        let root = Identity {
            run_as_user: Some(0),
            run_as_group: Some(0),
            ..Identity::default()
        };
        let context = security_context(&root, &cfg);
        assert_eq!(context["runAsUser"], json!(65532));
        assert_eq!(context["runAsGroup"], json!(65532));
        let user_only = Identity {
            run_as_user: Some(1000),
            ..Identity::default()
        };
        let context = security_context(&user_only, &cfg);
        assert_eq!(context["runAsUser"], json!(1000));
        assert!(context.get("runAsGroup").is_none());
    }

    #[test]
    fn security_context_can_leave_the_user_unset() {
        let mut cfg = MutationConfig::for_tests("i");
        cfg.injector_user = InjectorUser::Unset;
        let context = security_context(&Identity::default(), &cfg);
        assert!(context.get("runAsUser").is_none());
        assert!(context.get("runAsGroup").is_none());
        assert_eq!(context["runAsNonRoot"], json!(true));
        let app = Identity {
            run_as_user: Some(1000),
            ..Identity::default()
        };
        assert_eq!(security_context(&app, &cfg)["runAsUser"], json!(1000));
    }

    #[test]
    fn defaulted_proc_mount_is_the_same_context() {
        let cfg = MutationConfig::for_tests("i");
        let desired = security_context(&Identity::default(), &cfg);
        let mut defaulted = desired.clone();
        defaulted["procMount"] = json!("Default");
        assert!(same_security_context(Some(&defaulted), &desired));
        let mut privileged = desired.clone();
        privileged["privileged"] = json!(true);
        assert!(!same_security_context(Some(&privileged), &desired));
        assert!(!same_security_context(None, &desired));
    }

    #[test]
    fn volume_sameness_compares_the_size_as_a_quantity() {
        let cfg = MutationConfig::for_tests("i");
        let size = &cfg.volume_size_limit;
        assert!(same_volume(&desired_volume(VOLUME_NAME, size), size));
        let other_form =
            json!({"name": VOLUME_NAME, "emptyDir": {"medium": "Memory", "sizeLimit": "16384Ki"}});
        assert!(same_volume(&other_form, size));
        let disk = json!({"name": VOLUME_NAME, "emptyDir": {"sizeLimit": "16Mi"}});
        assert!(!same_volume(&disk, size));
        let host = json!({"name": VOLUME_NAME, "hostPath": {"path": "/"}});
        assert!(!same_volume(&host, size));
    }
}
