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
use super::injection::{INJECTOR_PATH, Injection, own_mount_index};
use super::quantity::Quantity;
use super::resources;
use crate::pod::{self, ContainerList, Identity};

/// Fields of the init container the webhook does not own but keeps: the API server defaults them.
pub(super) const KEPT_FIELDS: [&str; 3] = ["name", "imagePullPolicy", "terminationMessagePath"];

/// The operations that bring `pod` to the injected state.
pub fn build(pod: &Value, injection: Injection, cfg: &MutationConfig) -> Patch {
    let mut ops = Vec::new();
    status_annotation(pod, &mut ops);
    volume(pod, cfg, &mut ops);
    target_mounts(pod, &injection, &mut ops);
    init_container(pod, injection, cfg, &mut ops);
    Patch(ops)
}

fn ptr(tokens: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(tokens.iter().copied())
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

fn replace(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Replace(ReplaceOperation { path, value })
}

fn remove(path: PointerBuf) -> PatchOperation {
    PatchOperation::Remove(RemoveOperation { path })
}

/// Whether `parent[key]` holds a JSON object or array (as opposed to missing or null), so an
/// operation can go inside it.
fn has_container(parent: Option<&Value>, key: &str) -> bool {
    parent
        .and_then(|p| p.get(key))
        .is_some_and(|v| v.is_object() || v.is_array())
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

fn desired_volume(cfg: &MutationConfig) -> Value {
    json!({
        "name": VOLUME_NAME,
        "emptyDir": {"medium": "Memory", "sizeLimit": cfg.volume_size_limit.as_str()},
    })
}

/// Whether an existing volume is the webhook's volume as it would write it now (the size limit
/// compared as a quantity, since the API server may write it in another form).
fn same_volume(existing: &Value, cfg: &MutationConfig) -> bool {
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
        && size.as_ref() == Some(&cfg.volume_size_limit)
}

fn volume(pod: &Value, cfg: &MutationConfig, ops: &mut Vec<PatchOperation>) {
    let volumes = pod::volumes(pod);
    let own = volumes
        .iter()
        .position(|v| v.get("name").and_then(Value::as_str) == Some(VOLUME_NAME));
    match own {
        Some(i) if same_volume(&volumes[i], cfg) => {}
        Some(i) => ops.push(replace(
            ptr(&["spec", "volumes", &i.to_string()]),
            desired_volume(cfg),
        )),
        None if has_container(pod.get("spec"), "volumes") => {
            ops.push(add(ptr(&["spec", "volumes", "-"]), desired_volume(cfg)));
        }
        None => ops.push(add(ptr(&["spec", "volumes"]), json!([desired_volume(cfg)]))),
    }
}

/// The read-only mount of the webhook's volume in each target container.
fn target_mounts(pod: &Value, injection: &Injection, ops: &mut Vec<PatchOperation>) {
    let desired = json!({"name": VOLUME_NAME, "mountPath": injection.mount_path, "readOnly": true});
    for &at in &injection.targets.found {
        let Some(container) = pod::container(pod, at) else {
            continue;
        };
        let index = at.index.to_string();
        let base = ["spec", at.list.key(), index.as_str(), "volumeMounts"];
        match own_mount_index(container) {
            Some(i) if pod::mounts(container)[i] == desired => {}
            Some(i) => {
                let i = i.to_string();
                ops.push(replace(
                    ptr(&[&base[..], &[i.as_str()]].concat()),
                    desired.clone(),
                ));
            }
            None if has_container(Some(container), "volumeMounts") => {
                ops.push(add(ptr(&[&base[..], &["-"]].concat()), desired.clone()));
            }
            None => ops.push(add(ptr(&base), json!([desired.clone()]))),
        }
    }
}

/// The init container's security context: non-root, no privilege escalation, read-only root,
/// no capabilities, the runtime's seccomp profile; the app's user and group when it has a
/// non-root one, so the files belong to it.
fn security_context(identity: &Identity, cfg: &MutationConfig) -> Value {
    let app_user = identity.run_as_user.filter(|&user| user != 0);
    let configured = match cfg.injector_user {
        InjectorUser::Id(id) => Some(id),
        InjectorUser::Unset => None,
    };
    let user = app_user.or(configured);
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
        ..
    } = injection;
    let mut mounts = Vec::with_capacity(1 + copied_mounts.len());
    mounts.push(json!({"name": VOLUME_NAME, "mountPath": mount_path}));
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
    injection: Injection,
    cfg: &MutationConfig,
    ops: &mut Vec<PatchOperation>,
) {
    let init_first = injection.init_first;
    let desired = desired_container(injection, cfg);
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
        ops.push(PatchOperation::Move(MoveOperation {
            from: ptr(&["spec", "initContainers", &index.to_string()]),
            path: ptr(&["spec", "initContainers", "0"]),
        }));
        index = 0;
    }
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
        assert!(same_volume(&desired_volume(&cfg), &cfg));
        let other_form =
            json!({"name": VOLUME_NAME, "emptyDir": {"medium": "Memory", "sizeLimit": "16384Ki"}});
        assert!(same_volume(&other_form, &cfg));
        let disk = json!({"name": VOLUME_NAME, "emptyDir": {"sizeLimit": "16Mi"}});
        assert!(!same_volume(&disk, &cfg));
        let host = json!({"name": VOLUME_NAME, "hostPath": {"path": "/"}});
        assert!(!same_volume(&host, &cfg));
    }
}
