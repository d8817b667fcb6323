//! The one place that writes RFC 6902 operations: the pod and the finished edit in, the patch
//! out. Each list is walked once and matched by name, never by a position an earlier capability
//! computed: the webhook's entries that are present and wanted are converged (the fields it owns;
//! quantities and defaulted fields compared by meaning), moved when out of place; its init
//! containers that are no longer wanted (or were forged) are removed; missing entries are added.
//! The operations come out in a fixed order by construction: the annotation, the volumes, the
//! mounts and commands of the pod's containers (at the pod's own positions), then the init
//! containers' list, put in `order`'s order step by step, each step addressed against the list as
//! the steps before it left it.

use std::collections::BTreeMap;

use json_patch::jsonptr::PointerBuf;
use json_patch::{
    AddOperation, MoveOperation, Patch, PatchOperation, RemoveOperation, ReplaceOperation,
};
use serde_json::{Map, Value, json};

use super::edit::{Edit, OwnedInit};
use super::order::{self, Slot};
use super::quantity::Quantity;
use super::resources;
use crate::pod::{self, ContainerList};

/// Fields of the webhook's init containers it does not own but keeps: the API server defaults
/// them.
const KEPT_FIELDS: [&str; 3] = ["name", "imagePullPolicy", "terminationMessagePath"];

/// The patch that brings `pod` to what `edit` says.
pub fn patch(pod: &Value, edit: &mut Edit) -> Patch {
    let mut ops = Vec::new();
    annotations(pod, edit, &mut ops);
    volumes(pod, edit, &mut ops);
    containers(pod, edit, &mut ops);
    init_containers(pod, edit, &mut ops);
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

fn annotations(pod: &Value, edit: &Edit, ops: &mut Vec<PatchOperation>) {
    let metadata = pod.get("metadata");
    let mut missing: Map<String, Value> = Map::new();
    for (key, value) in &edit.annotations {
        if pod::annotation(pod, key) != Some(value) {
            missing.insert((*key).to_owned(), json!(value));
        }
    }
    if missing.is_empty() {
        return;
    }
    if !metadata.is_some_and(Value::is_object) {
        ops.push(add(ptr(&["metadata"]), json!({"annotations": missing})));
    } else if !has_container(metadata, "annotations") {
        ops.push(add(
            ptr(&["metadata", "annotations"]),
            Value::Object(missing),
        ));
    } else {
        for (key, value) in missing {
            ops.push(add(ptr(&["metadata", "annotations", &key]), value));
        }
    }
}

/// Whether an existing volume is the wanted one: the same fields, an `emptyDir`'s size compared
/// as a quantity (the API server may write it in another form).
fn same_volume(existing: &Value, desired: &Value) -> bool {
    if existing == desired {
        return true;
    }
    let (Some(existing), Some(desired)) = (existing.as_object(), desired.as_object()) else {
        return false;
    };
    let (Some(have), Some(want)) = (
        existing.get("emptyDir").and_then(Value::as_object),
        desired.get("emptyDir").and_then(Value::as_object),
    ) else {
        return false;
    };
    let size = |dir: &Map<String, Value>| {
        dir.get("sizeLimit")
            .and_then(Value::as_str)
            .and_then(|text| text.parse::<Quantity>().ok())
    };
    existing.len() == desired.len()
        && existing.get("name") == desired.get("name")
        && have.len() == want.len()
        && have.get("medium") == want.get("medium")
        && size(have).is_some()
        && size(have) == size(want)
}

fn volumes(pod: &Value, edit: &mut Edit, ops: &mut Vec<PatchOperation>) {
    if edit.volumes.is_empty() {
        return;
    }
    let existing = pod::volumes(pod);
    edit.work.charge(existing.len());
    // The pod's first volume of each wanted name, in one walk (the wanted are a few: a scan of
    // them beats hashing every volume's name).
    let mut at: Vec<Option<usize>> = vec![None; edit.volumes.len()];
    for (index, volume) in existing.iter().enumerate() {
        let name = volume.get("name").and_then(Value::as_str).unwrap_or("");
        if let Some(k) = edit
            .volumes
            .iter()
            .position(|v| v.get("name").and_then(Value::as_str) == Some(name))
            && at[k].is_none()
        {
            at[k] = Some(index);
        }
    }
    let mut appended = Vec::new();
    for (desired, at) in edit.volumes.iter().zip(at) {
        match at {
            Some(i) if same_volume(&existing[i], desired) => {}
            Some(i) => ops.push(replace(
                ptr(&["spec", "volumes", &i.to_string()]),
                desired.clone(),
            )),
            None => appended.push(desired.clone()),
        }
    }
    if appended.is_empty() {
    } else if has_container(pod.get("spec"), "volumes") {
        for volume in appended {
            ops.push(add(ptr(&["spec", "volumes", "-"]), volume));
        }
    } else {
        ops.push(add(ptr(&["spec", "volumes"]), Value::Array(appended)));
    }
}

/// A container's place, for walking the pod's lists in order.
fn list_rank(list: ContainerList) -> u8 {
    match list {
        ContainerList::InitContainers => 0,
        ContainerList::Containers => 1,
        ContainerList::EphemeralContainers => 2,
    }
}

/// What one of the pod's containers should have.
#[derive(Default)]
struct Wanted<'a> {
    mounts: Vec<&'a Value>,
    command: Option<&'a Value>,
}

/// The mounts (by volume) and command each of the pod's containers should have, and the
/// read-only rule, in one walk of every container's mounts.
fn containers(pod: &Value, edit: &mut Edit, ops: &mut Vec<PatchOperation>) {
    let mut wanted: BTreeMap<(u8, usize), Wanted<'_>> = BTreeMap::new();
    for (at, mount) in &edit.mounts {
        let entry = wanted.entry((list_rank(at.list), at.index)).or_default();
        entry.mounts.push(mount);
    }
    for (at, command) in &edit.commands {
        let entry = wanted.entry((list_rank(at.list), at.index)).or_default();
        entry.command = Some(command);
    }
    let read_only: Vec<&str> = edit.read_only.iter().map(String::as_str).collect();
    let mut units = 0;
    for list in ContainerList::ALL {
        for (index, container) in pod::containers(pod, list).iter().enumerate() {
            let mounts = pod::mounts(container);
            units += 1 + mounts.len();
            let own = list == ContainerList::InitContainers && edit.owns_init(pod::name(container));
            let want = wanted.remove(&(list_rank(list), index));
            if own || (read_only.is_empty() && want.is_none()) {
                continue;
            }
            let (desired_mounts, command) = match &want {
                Some(want) => (want.mounts.as_slice(), want.command),
                None => (&[][..], None),
            };
            container_ops(
                container,
                list,
                index,
                desired_mounts,
                command,
                &read_only,
                ops,
            );
        }
    }
    edit.work.charge(units);
}

fn volume_of(mount: &Value) -> &str {
    mount.get("name").and_then(Value::as_str).unwrap_or("")
}

fn container_ops(
    container: &Value,
    list: ContainerList,
    index: usize,
    desired: &[&Value],
    command: Option<&Value>,
    read_only: &[&str],
    ops: &mut Vec<PatchOperation>,
) {
    let index = index.to_string();
    let base = ["spec", list.key(), index.as_str(), "volumeMounts"];
    let at = |i: usize, rest: &[&str]| {
        let i = i.to_string();
        let mut tokens = base.to_vec();
        tokens.push(&i);
        tokens.extend_from_slice(rest);
        ptr(&tokens)
    };
    let mounts = pod::mounts(container);
    // The first mount of each wanted volume is the webhook's (the wanted are one or two).
    let mut first: Vec<Option<usize>> = vec![None; desired.len()];
    for (i, mount) in mounts.iter().enumerate() {
        let volume = volume_of(mount);
        if let Some(k) = desired.iter().position(|d| volume_of(d) == volume)
            && first[k].is_none()
        {
            first[k] = Some(i);
        }
    }
    for (i, mount) in mounts.iter().enumerate() {
        let volume = volume_of(mount);
        if first.contains(&Some(i)) {
            continue;
        }
        if read_only.contains(&volume) && mount.get("readOnly") != Some(&Value::Bool(true)) {
            ops.push(add(at(i, &["readOnly"]), Value::Bool(true)));
        }
    }
    let mut appended = Vec::new();
    for (desired, first) in desired.iter().zip(first) {
        match first {
            Some(i) if mounts[i] == **desired => {}
            Some(i) => ops.push(replace(at(i, &[]), (*desired).clone())),
            None => appended.push((*desired).clone()),
        }
    }
    if !appended.is_empty() {
        if has_container(Some(container), "volumeMounts") {
            for mount in appended {
                ops.push(add(ptr(&[&base[..], &["-"]].concat()), mount));
            }
        } else {
            ops.push(add(ptr(&base), Value::Array(appended)));
        }
    }
    if let Some(command) = command
        && container.get("command") != Some(command)
    {
        ops.push(replace(
            ptr(&["spec", list.key(), &index, "command"]),
            command.clone(),
        ));
    }
}

/// The init containers' list, step by step from the pod's to `order`'s: the webhook's stale ones
/// removed (the last first), then each place filled in turn, by the entry already there, one
/// moved from further on, or one added; a webhook entry in a place another should have is moved
/// to the end, to be placed when its turn comes. Every step is addressed against the list the
/// steps before it left.
fn init_containers(pod: &Value, edit: &mut Edit, ops: &mut Vec<PatchOperation>) {
    let existing = pod::containers(pod, ContainerList::InitContainers);
    edit.work.charge(existing.len());
    let (current, stale) = order::read(existing, &edit.init);
    let order = order::init_containers(&current, &edit.init, edit.init_first());
    if order.is_empty() && stale.is_empty() {
        return;
    }
    if !has_container(pod.get("spec"), "initContainers") || existing.is_empty() {
        let all: Vec<Value> = order
            .iter()
            .filter_map(|slot| match slot {
                Slot::Owned(k) => Some(Value::Object(edit.init[*k].fields.clone())),
                Slot::Pod(_) => None,
            })
            .collect();
        if !all.is_empty() {
            ops.push(add(ptr(&["spec", "initContainers"]), Value::Array(all)));
        }
        return;
    }
    let at = |i: usize| ptr(&["spec", "initContainers", &i.to_string()]);
    for &index in stale.iter().rev() {
        ops.push(remove(at(index)));
    }
    // The list as the operations so far leave it.
    let mut list: Vec<Slot> = current
        .iter()
        .map(|init| init.owned.map_or(Slot::Pod(init.index), Slot::Owned))
        .collect();
    let mut existing_at: Vec<Option<usize>> = vec![None; edit.init.len()];
    for init in &current {
        if let Some(k) = init.owned {
            existing_at[k] = Some(init.index);
        }
    }
    let mut pos = 0;
    let mut moved_to_end = 0;
    while pos < order.len() {
        let target = order[pos];
        match (target, list.get(pos)) {
            (_, Some(&slot)) if slot == target => {}
            // The pod's own entry belongs here and one of the webhook's holds the place: that one
            // goes to the end, to be placed when its turn comes (once each).
            (Slot::Pod(_), Some(&Slot::Owned(_))) if moved_to_end < edit.init.len() => {
                ops.push(PatchOperation::Move(MoveOperation {
                    from: at(pos),
                    path: at(list.len() - 1),
                }));
                let slot = list.remove(pos);
                list.push(slot);
                moved_to_end += 1;
                continue;
            }
            _ => match list[pos..].iter().position(|slot| *slot == target) {
                Some(offset) => {
                    let from = pos + offset;
                    ops.push(PatchOperation::Move(MoveOperation {
                        from: at(from),
                        path: at(pos),
                    }));
                    let slot = list.remove(from);
                    list.insert(pos, slot);
                }
                None => {
                    if let Slot::Owned(k) = target {
                        ops.push(add(at(pos), Value::Object(edit.init[k].fields.clone())));
                        list.insert(pos, target);
                    }
                    // (The pod's own entries are all in the list: `None` is only an addition.)
                    pos += 1;
                    continue;
                }
            },
        }
        if let Slot::Owned(k) = target
            && let Some(index) = existing_at[k]
        {
            converge(&existing[index], &edit.init[k], pos, ops);
        }
        pos += 1;
    }
}

/// Sets the fields the webhook owns of its init container `existing`, now at `index`, to the
/// edit's, and removes the fields it does not keep.
fn converge(existing: &Value, desired: &OwnedInit, index: usize, ops: &mut Vec<PatchOperation>) {
    let index = index.to_string();
    let field = |key: &str| ptr(&["spec", "initContainers", index.as_str(), key]);
    let Some(fields) = existing.as_object() else {
        ops.push(replace(
            ptr(&["spec", "initContainers", index.as_str()]),
            Value::Object(desired.fields.clone()),
        ));
        return;
    };
    for (key, value) in &desired.fields {
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
        if !desired.fields.contains_key(key) && !KEPT_FIELDS.contains(&key.as_str()) {
            ops.push(remove(field(key)));
        }
    }
}

/// Whether an existing security context is the desired one. `procMount: Default` is what the
/// API server may fill in.
fn same_security_context(existing: Option<&Value>, desired: &Value) -> bool {
    let Some(Value::Object(existing)) = existing else {
        return false;
    };
    if existing.get("procMount") == Some(&json!("Default")) {
        let mut existing = existing.clone();
        existing.remove("procMount");
        return Some(&existing) == desired.as_object();
    }
    Some(existing) == desired.as_object()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaulted_proc_mount_is_the_same_context() {
        let desired = json!({"runAsNonRoot": true});
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
        let desired = json!({"name": "v", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}});
        assert!(same_volume(&desired, &desired));
        let other_form =
            json!({"name": "v", "emptyDir": {"medium": "Memory", "sizeLimit": "16384Ki"}});
        assert!(same_volume(&other_form, &desired));
        let disk = json!({"name": "v", "emptyDir": {"sizeLimit": "16Mi"}});
        assert!(!same_volume(&disk, &desired));
        let host = json!({"name": "v", "hostPath": {"path": "/"}});
        assert!(!same_volume(&host, &desired));
    }
}
