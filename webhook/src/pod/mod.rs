//! The pod, as the mutation sees it: `pruned` reads a pod being created from the review's body,
//! keeping only the fields the mutation looks at; the accessors here read what the mutation needs
//! from that pod (or a workload's pod template) as JSON: annotations, target containers, the app's
//! identity and security context, and the AWS identity env and mounts the init container copies.
//! They work on `serde_json::Value` so fields this version of the API does not know survive
//! untouched.
//!
//! THE RULE: `pruned` keeps every field that these accessors and the mutation's capabilities
//! read. A new read of a field `pruned` skips makes the webhook decide on a pod
//! it never saw whole (the field reads as absent). `webhook/tests/it/pod/pruned.rs`
//! runs the mutation over a corpus of real and generated pods, pruned and whole, and fails when the
//! answers differ: extend `pruned` in the same change as the new read.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use secrets_injector_objects::annotations;

use crate::{mesh, owned};

pub mod pruned;

/// Whether a pod with these `objects` and `inject` annotations asks for objects: a non-blank
/// list, not switched off.
pub fn asks(objects: Option<&str>, inject: Option<&str>) -> bool {
    objects.is_some_and(|objects| !objects.trim().is_empty()) && inject != Some("false")
}

/// Whether a pod with these `status` and `inject` annotations was changed by the webhook already
/// (a re-invocation, or a pod of a template `webhook inject` printed): the volumes it rewrote then
/// are read as its own (`mutation::csi`), so the spec is read even when nothing else asks.
pub fn injected(status: Option<&str>, inject: Option<&str>) -> bool {
    status == Some(annotations::STATUS_INJECTED) && inject != Some("false")
}

/// The container lists of a pod: a target is in one of the first two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContainerList {
    Containers,
    InitContainers,
    EphemeralContainers,
}

impl ContainerList {
    /// Every list, in the order of the pod spec.
    pub const ALL: [Self; 3] = [
        Self::InitContainers,
        Self::Containers,
        Self::EphemeralContainers,
    ];

    /// The key in the pod spec.
    pub fn key(self) -> &'static str {
        match self {
            Self::Containers => "containers",
            Self::InitContainers => "initContainers",
            Self::EphemeralContainers => "ephemeralContainers",
        }
    }
}

/// A container of the pod, by list and index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ContainerRef {
    pub list: ContainerList,
    pub index: usize,
}

/// The containers that get the read-only mount.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Targets {
    /// In pod order: regular containers first, then init containers.
    pub found: Vec<ContainerRef>,
    /// Names the `containers` annotation gives that the pod does not have (yet).
    pub missing: Vec<String>,
}

impl Targets {
    /// "The first target container", whose user, AWS env and region the injector takes: the
    /// first target in `spec.containers` order, else the first named init container; never a
    /// mesh's proxy, even when the `containers` annotation names it (Linkerd puts its proxy
    /// first).
    pub fn first<'a>(&self, pod: &'a Value) -> Option<&'a Value> {
        container(pod, self.first_at(pod)?)
    }

    /// Where [`Targets::first`] is in the pod.
    pub fn first_at(&self, pod: &Value) -> Option<ContainerRef> {
        // Names are unique in a pod: at most one proxy per mesh is passed over.
        self.found
            .iter()
            .copied()
            .find(|&at| container(pod, at).is_some_and(|c| !mesh::is_proxy(name(c))))
    }
}

/// The app's effective identity, from the first target container and the pod.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
    pub run_as_non_root: Option<bool>,
    pub fs_group: Option<i64>,
}

/// The names of the pod's annotations (none when it has none).
pub fn annotation_names(pod: &Value) -> impl Iterator<Item = &str> {
    pod.get("metadata")
        .and_then(|metadata| metadata.get("annotations"))
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|annotations| annotations.keys().map(String::as_str))
}

/// One annotation's value, when it is a string.
pub fn annotation<'a>(pod: &'a Value, name: &str) -> Option<&'a str> {
    pod.get("metadata")?.get("annotations")?.get(name)?.as_str()
}

/// The containers of one list (empty when the list is missing or null).
pub fn containers(pod: &Value, list: ContainerList) -> &[Value] {
    pod.get("spec")
        .and_then(|spec| spec.get(list.key()))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The container a reference points at.
pub fn container(pod: &Value, at: ContainerRef) -> Option<&Value> {
    containers(pod, at.list).get(at.index)
}

/// A container's `name` (empty when missing).
pub fn name(container: &Value) -> &str {
    container.get("name").and_then(Value::as_str).unwrap_or("")
}

/// The pod's volumes (empty when missing or null).
pub fn volumes(pod: &Value) -> &[Value] {
    pod.get("spec")
        .and_then(|spec| spec.get("volumes"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A container's volume mounts (empty when missing or null).
pub fn mounts(container: &Value) -> &[Value] {
    container
        .get("volumeMounts")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The index of the container's (first) mount of the volume `volume`.
pub fn mount_index(container: &Value, volume: &str) -> Option<usize> {
    mounts(container)
        .iter()
        .position(|m| m.get("name").and_then(Value::as_str) == Some(volume))
}

/// Each writable mount of the volume `volume` in the pod's containers, with its container: all
/// but those of the init containers `skip` names (the webhook's, which write it), and the first
/// one in each container of `converged` (the webhook's own mount there, which it makes
/// read-only).
pub fn writable_mounts<'a>(
    pod: &'a Value,
    volume: &str,
    converged: &HashSet<ContainerRef>,
    skip: impl Fn(&str) -> bool,
) -> Vec<(&'a Value, &'a Value)> {
    let mut found = Vec::new();
    for list in ContainerList::ALL {
        for (index, container) in containers(pod, list).iter().enumerate() {
            if list == ContainerList::InitContainers && skip(name(container)) {
                continue;
            }
            let own = converged
                .contains(&ContainerRef { list, index })
                .then(|| mount_index(container, volume))
                .flatten();
            for (i, mount) in mounts(container).iter().enumerate() {
                if Some(i) != own
                    && mount.get("name").and_then(Value::as_str) == Some(volume)
                    && mount.get("readOnly").and_then(Value::as_bool) != Some(true)
                {
                    found.push((container, mount));
                }
            }
        }
    }
    found
}

/// Whether a mount takes a part of its volume (`subPath` or `subPathExpr`, not empty): which of
/// the two, when it does. The runtime resolves it once, when the container starts.
pub fn sub_path(mount: &Value) -> Option<&'static str> {
    ["subPath", "subPathExpr"].into_iter().find(|key| {
        mount
            .get(*key)
            .and_then(Value::as_str)
            .is_some_and(|text| !text.is_empty())
    })
}

/// Whether a container is an init container that keeps running beside the app (`restartPolicy:
/// Always`, a native sidecar).
pub fn is_native_sidecar(container: &Value) -> bool {
    container.get("restartPolicy").and_then(Value::as_str) == Some("Always")
}

/// A mount's `mountPath` (empty when missing).
pub fn mount_path(mount: &Value) -> &str {
    mount.get("mountPath").and_then(Value::as_str).unwrap_or("")
}

/// `spec.os.name: windows`.
pub fn is_windows(pod: &Value) -> bool {
    pod.get("spec")
        .and_then(|spec| spec.get("os"))
        .and_then(|os| os.get("name"))
        .and_then(Value::as_str)
        == Some("windows")
}

/// The names of the `containers` annotation: comma-separated, blanks ignored. `None` when the
/// annotation is absent or names nothing.
pub fn named_containers(value: Option<&str>) -> Option<Vec<String>> {
    let names: Vec<String> = value?
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    (!names.is_empty()).then_some(names)
}

/// The target containers: those `names` gives (regular or init), else every regular container
/// but a mesh's proxy. The webhook's own init containers are never targets.
pub fn targets(pod: &Value, names: Option<&[String]>) -> Targets {
    let regular = containers(pod, ContainerList::Containers);
    let init = containers(pod, ContainerList::InitContainers);
    let Some(names) = names else {
        return Targets {
            found: (0..regular.len())
                .filter(|&i| {
                    let n = name(&regular[i]);
                    !owned::is_reserved_name(n) && !mesh::is_proxy(n)
                })
                .map(|index| ContainerRef {
                    list: ContainerList::Containers,
                    index,
                })
                .collect(),
            missing: Vec::new(),
        };
    };
    // Sets, not scans: a pod may have tens of thousands of containers and names.
    let named: HashSet<&str> = names.iter().map(String::as_str).collect();
    let wanted = |container: &Value| {
        let n = name(container);
        !owned::is_reserved_name(n) && named.contains(n)
    };
    let mut found: Vec<ContainerRef> = (0..regular.len())
        .filter(|&i| wanted(&regular[i]))
        .map(|index| ContainerRef {
            list: ContainerList::Containers,
            index,
        })
        .collect();
    found.extend(
        (0..init.len())
            .filter(|&i| wanted(&init[i]))
            .map(|index| ContainerRef {
                list: ContainerList::InitContainers,
                index,
            }),
    );
    let present: HashSet<&str> = regular.iter().chain(init).map(name).collect();
    let mut missing: Vec<String> = Vec::new();
    let mut told = HashSet::new();
    for wanted_name in names {
        if !present.contains(wanted_name.as_str())
            && !owned::is_reserved_name(wanted_name)
            && told.insert(wanted_name.as_str())
        {
            missing.push(wanted_name.clone());
        }
    }
    Targets { found, missing }
}

/// The entries of a container's `env` (empty when missing).
fn env(container: &Value) -> &[Value] {
    container
        .get("env")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The literal, non-empty `value` of an env variable, as the container would see it: the last
/// entry of that name wins, and one set with `valueFrom` is not read.
pub fn literal_env<'a>(container: &'a Value, variable: &str) -> Option<&'a str> {
    let entry = env(container)
        .iter()
        .rev()
        .find(|entry| entry.get("name").and_then(Value::as_str) == Some(variable))?;
    if entry.get("valueFrom").is_some() {
        return None;
    }
    entry
        .get("value")
        .and_then(Value::as_str)
        .filter(|value| !value.is_empty())
}

/// Whether the init container copies a variable of this name: every `AWS_*` and the proxy
/// variables, in either case.
pub fn is_copied_env(variable: &str) -> bool {
    variable.starts_with("AWS_")
        || ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"]
            .iter()
            .any(|proxy| variable.eq_ignore_ascii_case(proxy))
}

/// The env entries the init container copies, as written and in the container's order.
pub fn copied_env(container: &Value) -> Vec<Value> {
    env(container)
        .iter()
        .filter(|entry| {
            entry
                .get("name")
                .and_then(Value::as_str)
                .is_some_and(is_copied_env)
        })
        .cloned()
        .collect()
}

/// Names of the volumes whose mounts carry the pod's AWS identity tokens (IRSA and EKS Pod
/// Identity).
pub const TOKEN_VOLUMES: [&str; 2] = ["aws-iam-token", "eks-pod-identity-token"];

/// The container's mounts the init container needs too, made read-only: those of the token
/// volumes, and for every copied variable whose literal value is an absolute path, the mount
/// that holds the path (the deepest one; the last of those at one path). One per mount path, in
/// the container's order. `units` counts the work: the mounts, the variables and each directory
/// of their paths looked up.
pub fn copied_mounts(container: &Value, copied_env: &[Value], units: &mut usize) -> Vec<Value> {
    let container_mounts = mounts(container);
    *units += container_mounts.len() + copied_env.len();
    // Each mount's path, normalised, and the mount at each path: every variable's path is then
    // looked up one directory at a time, from the deepest, instead of against every mount.
    let paths: Vec<String> = container_mounts
        .iter()
        .map(|mount| normalised(mount_path(mount)))
        .collect();
    let at: HashMap<&str, usize> = paths
        .iter()
        .enumerate()
        .map(|(i, path)| (path.as_str(), i))
        .collect();
    let mut wanted: Vec<bool> = container_mounts
        .iter()
        .map(|mount| {
            let volume = mount.get("name").and_then(Value::as_str).unwrap_or("");
            TOKEN_VOLUMES.contains(&volume)
        })
        .collect();
    for entry in copied_env {
        let Some(path) = entry.get("value").and_then(Value::as_str) else {
            continue;
        };
        if !path.starts_with('/') || entry.get("valueFrom").is_some() {
            continue;
        }
        let path = normalised(path);
        let mut dir = path.as_str();
        loop {
            *units += 1;
            if let Some(&i) = at.get(dir) {
                wanted[i] = true;
                break;
            }
            match dir.rfind('/') {
                Some(0) if dir.len() > 1 => dir = "/",
                Some(cut) if cut > 0 => dir = &dir[..cut],
                _ => break,
            }
        }
    }
    let mut copied: Vec<Value> = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    for ((mount, path), _) in container_mounts
        .iter()
        .zip(&paths)
        .zip(&wanted)
        .filter(|(_, w)| **w)
    {
        let volume = mount.get("name").and_then(Value::as_str).unwrap_or("");
        if volume == annotations::VOLUME_NAME || !seen.insert(path) {
            continue;
        }
        let mut mount = mount.clone();
        if let Some(fields) = mount.as_object_mut() {
            fields.insert("readOnly".to_owned(), Value::Bool(true));
        }
        copied.push(mount);
    }
    copied
}

/// A path as `components` resolves it, written `/a/b` (`/` for the root), so two paths name one
/// directory exactly when these are equal, and a path's directories are its prefixes up to a `/`.
fn normalised(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for part in components(path) {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The components of a path after lexical normalisation: empty and `.` parts dropped, `..`
/// removing the part before it (never above `/`). A mount path is resolved so by the runtime, so
/// a mount written `/usr/local/bin/x/..` covers `/usr/local/bin`.
pub fn components(path: &str) -> impl Iterator<Item = &str> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.into_iter()
}

/// Whether `components` gives exactly the '/'-separated parts of `path` (absolute, no empty, `.`
/// or `..` parts), so paths can be compared as strings: what nearly every pod has.
fn is_plain(path: &str) -> bool {
    path.strip_prefix('/').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..")
    })
}

/// Whether two paths name one directory.
pub fn same_path(a: &str, b: &str) -> bool {
    if is_plain(a) && is_plain(b) {
        return a == b;
    }
    components(a).eq(components(b))
}

/// How two paths lie: one directory, or one inside the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    Same,
    /// The first holds the second.
    Holds,
    /// The first lies inside the second.
    Inside,
}

/// How `a` and `b` lie, when they overlap: each path is looked at once (a pod's mounts are
/// compared with the mount path one by one, on every review).
pub fn relation(a: &str, b: &str) -> Option<Relation> {
    if is_plain(a) && is_plain(b) {
        return match (a.len(), b.len()) {
            _ if a == b => Some(Relation::Same),
            (la, lb) if la < lb && b.starts_with(a) && b.as_bytes()[la] == b'/' => {
                Some(Relation::Holds)
            }
            (la, lb) if lb < la && a.starts_with(b) && a.as_bytes()[lb] == b'/' => {
                Some(Relation::Inside)
            }
            _ => None,
        };
    }
    let (mut a, mut b) = (components(a), components(b));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Some(Relation::Same),
            (None, Some(_)) => return Some(Relation::Holds),
            (Some(_), None) => return Some(Relation::Inside),
            (Some(x), Some(y)) if x == y => {}
            _ => return None,
        }
    }
}

/// Whether `path` is `dir` or lies inside it.
pub fn path_holds(dir: &str, path: &str) -> bool {
    if is_plain(dir) && is_plain(path) {
        return path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    }
    let mut path_parts = components(path);
    components(dir).all(|part| path_parts.next() == Some(part))
}

/// The app's effective identity: the container's own securityContext, else the pod's.
pub fn identity(pod: &Value, container: Option<&Value>) -> Identity {
    let pod_context = pod.get("spec").and_then(|spec| spec.get("securityContext"));
    let own_context = container.and_then(|c| c.get("securityContext"));
    let int = |field: &str| {
        own_context
            .and_then(|c| c.get(field))
            .and_then(Value::as_i64)
            .or_else(|| {
                pod_context
                    .and_then(|c| c.get(field))
                    .and_then(Value::as_i64)
            })
    };
    Identity {
        run_as_user: int("runAsUser"),
        run_as_group: int("runAsGroup"),
        run_as_non_root: own_context
            .and_then(|c| c.get("runAsNonRoot"))
            .and_then(Value::as_bool)
            .or_else(|| {
                pod_context
                    .and_then(|c| c.get("runAsNonRoot"))
                    .and_then(Value::as_bool)
            }),
        fs_group: pod_context
            .and_then(|c| c.get("fsGroup"))
            .and_then(Value::as_i64),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn relation_agrees_with_same_path_and_path_holds() {
        let paths = [
            "/",
            "/a",
            "/a/",
            "/a/b",
            "/a/b/c",
            "/ab",
            "/a/./b",
            "/a//b",
            "/a/x/../b",
            "/b",
            "//a",
            "/a/b/..",
            "a/b",
            "/mnt/secrets-store",
            "/mnt/secrets-store-2",
            "/mnt",
        ];
        for a in paths {
            for b in paths {
                let expected = if same_path(a, b) {
                    Some(Relation::Same)
                } else if path_holds(a, b) {
                    Some(Relation::Holds)
                } else if path_holds(b, a) {
                    Some(Relation::Inside)
                } else {
                    None
                };
                assert_eq!(relation(a, b), expected, "{a} {b}");
            }
        }
    }

    fn pod() -> Value {
        json!({
            "metadata": {"annotations": {"a": "b", "n": 1}},
            "spec": {
                "securityContext": {"runAsUser": 1000, "fsGroup": 2000, "runAsNonRoot": true},
                "initContainers": [
                    {"name": "setup", "image": "i"},
                    {"name": "proxy", "image": "i", "restartPolicy": "Always"}
                ],
                "containers": [
                    {
                        "name": "app",
                        "image": "i",
                        "securityContext": {"runAsUser": 1001, "runAsGroup": 3000},
                        "env": [
                            {"name": "AWS_REGION", "value": "eu-west-1"},
                            {"name": "AWS_DEFAULT_REGION", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
                            {"name": "http_proxy", "value": "http://proxy:3128"},
                            {"name": "AWSX", "value": "no"},
                            {"name": "HOME", "value": "/root"},
                            {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"},
                            {"name": "AWS_CA_BUNDLE", "value": "/etc/pki/./corp/ca.pem"},
                            {"name": "AWS_REGION", "value": "eu-west-2"}
                        ],
                        "volumeMounts": [
                            {"name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount", "readOnly": true},
                            {"name": "pki", "mountPath": "/etc/pki"},
                            {"name": "corp", "mountPath": "/etc/pki/corp/"},
                            {"name": "data", "mountPath": "/data"}
                        ]
                    },
                    {"name": "sidecar", "image": "i"}
                ]
            }
        })
    }

    #[test]
    fn reads_annotations() {
        let pod = pod();
        assert_eq!(annotation(&pod, "a"), Some("b"));
        assert_eq!(annotation(&pod, "n"), None);
        assert_eq!(annotation(&json!({}), "a"), None);
        assert_eq!(annotation_names(&json!({"metadata": {}})).count(), 0);
        assert_eq!(annotation_names(&pod).count(), 2);
    }

    #[test]
    fn targets_default_to_every_regular_container() {
        let pod = pod();
        let targets = targets(&pod, None);
        assert_eq!(
            targets.found,
            vec![
                ContainerRef {
                    list: ContainerList::Containers,
                    index: 0
                },
                ContainerRef {
                    list: ContainerList::Containers,
                    index: 1
                }
            ]
        );
        assert!(targets.missing.is_empty());
    }

    #[test]
    fn named_targets_include_init_containers_and_report_missing_names() {
        let pod = pod();
        let names = named_containers(Some(" proxy, sidecar,,ghost ,ghost")).unwrap();
        let targets = targets(&pod, Some(&names));
        assert_eq!(
            targets.found,
            vec![
                ContainerRef {
                    list: ContainerList::Containers,
                    index: 1
                },
                ContainerRef {
                    list: ContainerList::InitContainers,
                    index: 1
                }
            ]
        );
        assert_eq!(targets.missing, vec!["ghost".to_owned()]);
        assert_eq!(targets.first(&pod).map(name), Some("sidecar"));
        assert_eq!(named_containers(Some(" , ")), None);
        assert_eq!(named_containers(None), None);
    }

    #[test]
    fn a_mesh_proxy_is_a_target_only_when_named_and_never_the_first() {
        let pod = json!({"spec": {"containers": [
            {"name": "linkerd-proxy"}, {"name": "app"}, {"name": "istio-proxy"}
        ]}});
        let app = ContainerRef {
            list: ContainerList::Containers,
            index: 1,
        };
        assert_eq!(targets(&pod, None).found, vec![app]);
        let names = named_containers(Some("linkerd-proxy,app")).unwrap();
        let named = targets(&pod, Some(&names));
        assert_eq!(named.found.len(), 2);
        assert_eq!(named.first(&pod).map(name), Some("app"));
        let proxy_only = named_containers(Some("linkerd-proxy")).unwrap();
        assert_eq!(targets(&pod, Some(&proxy_only)).first(&pod), None);
    }

    #[test]
    fn literal_env_takes_the_last_literal_value() {
        let pod = pod();
        let app = &containers(&pod, ContainerList::Containers)[0];
        assert_eq!(literal_env(app, "AWS_REGION"), Some("eu-west-2"));
        assert_eq!(literal_env(app, "AWS_DEFAULT_REGION"), None);
        assert_eq!(literal_env(app, "MISSING"), None);
    }

    #[test]
    fn copies_aws_and_proxy_env_in_order() {
        let pod = pod();
        let app = &containers(&pod, ContainerList::Containers)[0];
        let copied = copied_env(app);
        let names: Vec<&str> = copied.iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            [
                "AWS_REGION",
                "AWS_DEFAULT_REGION",
                "http_proxy",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CA_BUNDLE",
                "AWS_REGION"
            ]
        );
    }

    #[test]
    fn copies_token_mounts_and_the_deepest_mount_holding_each_path() {
        let pod = pod();
        let app = &containers(&pod, ContainerList::Containers)[0];
        let mut units = 0;
        let mounts = copied_mounts(app, &copied_env(app), &mut units);
        assert!(units > 0);
        assert_eq!(
            mounts,
            vec![
                json!({"name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount", "readOnly": true}),
                json!({"name": "corp", "mountPath": "/etc/pki/corp/", "readOnly": true}),
            ]
        );
    }

    /// The copied mounts agree with the plain reading of the rule (every mount holding each
    /// path compared, the deepest and last one taken, duplicates by `same_path` dropped) on mounts
    /// and variables drawn from paths written in every way.
    #[test]
    fn copied_mounts_agree_with_the_rule_read_plainly() {
        let paths = [
            "/",
            "",
            "/a",
            "/a/",
            "/a/b",
            "/a/./b",
            "/a//b",
            "/a/x/../b",
            "/ab",
            "a/b",
            "/a/b/c",
            "/../a",
        ];
        let oracle = |container: &Value, env: &[Value]| -> Vec<Value> {
            let all = mounts(container);
            let mut wanted = vec![false; all.len()];
            for entry in env {
                let path = entry["value"].as_str().unwrap();
                if !path.starts_with('/') {
                    continue;
                }
                let holder = all
                    .iter()
                    .enumerate()
                    .filter(|(_, m)| path_holds(mount_path(m), path))
                    .max_by_key(|(_, m)| components(mount_path(m)).count());
                if let Some((i, _)) = holder {
                    wanted[i] = true;
                }
            }
            let mut copied: Vec<Value> = Vec::new();
            for (mount, _) in all.iter().zip(&wanted).filter(|(_, w)| **w) {
                if !copied
                    .iter()
                    .any(|c| same_path(mount_path(c), mount_path(mount)))
                {
                    let mut mount = mount.clone();
                    mount["readOnly"] = json!(true);
                    copied.push(mount);
                }
            }
            copied
        };
        for (k, env_path) in paths.iter().enumerate() {
            for skip in 0..paths.len() {
                let mounts: Vec<Value> = paths
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .map(|(i, p)| json!({"name": format!("v{i}"), "mountPath": p}))
                    .collect();
                let container = json!({"volumeMounts": mounts});
                let env = [
                    json!({"name": "AWS_A", "value": env_path}),
                    json!({"name": "AWS_B", "value": paths[(k + skip) % paths.len()]}),
                ];
                let mut units = 0;
                assert_eq!(
                    copied_mounts(&container, &env, &mut units),
                    oracle(&container, &env),
                    "{env:?} with {mounts:?}"
                );
            }
        }
    }

    #[test]
    fn identity_prefers_the_container() {
        let pod = pod();
        let app = &containers(&pod, ContainerList::Containers)[0];
        let sidecar = &containers(&pod, ContainerList::Containers)[1];
        assert_eq!(
            identity(&pod, Some(app)),
            Identity {
                run_as_user: Some(1001),
                run_as_group: Some(3000),
                run_as_non_root: Some(true),
                fs_group: Some(2000)
            }
        );
        assert_eq!(identity(&pod, Some(sidecar)).run_as_user, Some(1000));
        assert_eq!(identity(&pod, Some(sidecar)).run_as_group, None);
        assert_eq!(identity(&json!({}), None), Identity::default());
    }

    #[test]
    fn paths_compare_by_component() {
        assert!(path_holds("/mnt/secrets", "/mnt/secrets/x"));
        assert!(path_holds("/mnt/secrets/", "/mnt//secrets"));
        assert!(!path_holds("/mnt/secrets", "/mnt/secrets-store"));
        assert!(path_holds("/", "/anything"));
        assert!(same_path("/a/./b/", "/a/b"));
        assert!(!same_path("/a/b", "/a"));
        assert!(same_path("/a/x/../b", "/a//b"));
        assert!(same_path("/../../a", "/a"));
        assert!(path_holds("/usr/local/bin/x/..", "/usr/local/bin/injector"));
        assert!(path_holds("/usr/local/./bin", "/usr/local/bin/injector"));
        assert!(!path_holds("/a/b/..", "/ab"));
    }

    /// The string comparison of plain paths agrees with the normalised component one on every path
    /// of up to three parts drawn from names, prefixes of each other, `.`, `..` and empty parts.
    #[test]
    fn plain_paths_compare_as_their_components_do() {
        let parts = ["a", "ab", "b", ".", "..", "", ".a", "..a"];
        let mut paths = vec!["/".to_owned(), String::new()];
        for x in parts {
            paths.push(format!("/{x}"));
            for y in parts {
                paths.push(format!("/{x}/{y}"));
                for z in parts {
                    paths.push(format!("/{x}/{y}/{z}"));
                }
            }
        }
        // An independent oracle: resolve each path to a string ("/" or "/x/y") and compare those.
        let resolve = |path: &str| {
            let mut resolved = String::new();
            for part in path.split('/') {
                match part {
                    "" | "." => {}
                    ".." => resolved.truncate(resolved.rfind('/').unwrap_or(0)),
                    part => {
                        resolved.push('/');
                        resolved.push_str(part);
                    }
                }
            }
            resolved
        };
        let resolved: Vec<String> = paths.iter().map(|p| resolve(p)).collect();
        for (a, ra) in paths.iter().zip(&resolved) {
            for (b, rb) in paths.iter().zip(&resolved) {
                let holds = rb == ra || rb.starts_with(&format!("{ra}/"));
                assert_eq!(path_holds(a, b), holds, "path_holds({a:?}, {b:?})");
                assert_eq!(same_path(a, b), ra == rb, "same_path({a:?}, {b:?})");
            }
        }
    }

    #[test]
    fn detects_windows() {
        assert!(is_windows(&json!({"spec": {"os": {"name": "windows"}}})));
        assert!(!is_windows(&json!({"spec": {"os": {"name": "linux"}}})));
        assert!(!is_windows(&json!({"spec": {}})));
    }
}
