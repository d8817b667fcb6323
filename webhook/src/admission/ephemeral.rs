//! `pods/ephemeralcontainers` UPDATE (`kubectl debug`): the API server lets an ephemeral container
//! be added to a running pod, with volume mounts of the pod's volumes. A writable mount of a
//! volume the webhook's init containers fill would let it plant files the refresh sidecar or
//! `secrets-env` trust, so each ephemeral container new in this update is denied such a mount
//! (read-only ones are allowed), and the process namespace of the webhook's containers
//! (`targetContainerName`), where their writable mounts are in reach. In a pod whose containers
//! share one process namespace (`spec.shareProcessNamespace`, which `refresh-signal` needs), a
//! process of the user of the webhook's refresh sidecar reaches the sidecar's mounts through
//! `/proc/<pid>/root`, and root can become that user: there a new ephemeral container must run as
//! a known user that is neither. The answer is allow or deny, never a patch.
//!
//! Both pods are read only for what the rule needs (init and ephemeral containers' names, mounts,
//! targets, users and `restartPolicy`; the pod's `shareProcessNamespace` and user), borrowing from
//! the body, with a budget on how many containers and mounts are kept: the body comes from the
//! network and its lists can be as long as it is.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use secrets_injector_objects::error::{self, Error};

use crate::owned;
use crate::pod::pruned::Key;

/// The most init containers, ephemeral containers and volume mounts of theirs, together, read of
/// one pod. Real pods have tens; a pod over it is denied rather than read without bound.
pub const MAX_ENTRIES: usize = 10_000;

/// The subresource whose UPDATE adds ephemeral containers.
pub const SUBRESOURCE: &str = "ephemeralcontainers";

/// Reviews an update of a pod's ephemeral containers: `None` when allowed, else the denial.
/// `old` is the pod as stored (a review without it counts every ephemeral container as new).
pub fn review(object: &RawValue, old: Option<&RawValue>) -> Option<String> {
    let new = match read(object) {
        Ok(pod) => pod,
        Err(refusal) => return Some(refusal.to_string()),
    };
    let old = match old.map(read).transpose() {
        Ok(pod) => pod.unwrap_or_default(),
        Err(refusal) => return Some(refusal.to_string()),
    };
    let problems = judge(&new, &old);
    (!problems.is_empty()).then(|| error::message(&problems))
}

/// What the rule reads of one pod.
#[derive(Debug, Default, PartialEq, Eq)]
struct PodView<'a> {
    /// The names of the webhook's init containers.
    own: Vec<Cow<'a, str>>,
    /// The volumes the webhook's init containers mount writable: those they fill.
    written: Vec<Cow<'a, str>>,
    /// The webhook's init containers that keep running (`restartPolicy: Always`), with the user
    /// of their own `securityContext`.
    sidecars: Vec<(Cow<'a, str>, Option<i64>)>,
    /// `spec.shareProcessNamespace: true`.
    shared_processes: bool,
    /// `spec.securityContext.runAsUser`.
    user: Option<i64>,
    ephemeral: Vec<Container<'a>>,
}

#[derive(Debug, PartialEq, Eq)]
struct Container<'a> {
    name: Cow<'a, str>,
    /// `targetContainerName`: the container whose process namespace it joins.
    target: Option<Cow<'a, str>>,
    mounts: Vec<Mount<'a>>,
    /// `securityContext.runAsUser`.
    user: Option<i64>,
    /// `restartPolicy: Always` (an init container's: a native sidecar).
    native: bool,
}

/// The fields of a `securityContext` the rule reads (the pod's or a container's).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecurityContext {
    #[serde(default)]
    run_as_user: Option<i64>,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mount<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    mount_path: Option<Cow<'a, str>>,
    #[serde(default)]
    read_only: Option<bool>,
}

impl Mount<'_> {
    fn writable(&self) -> bool {
        self.read_only != Some(true)
    }

    fn volume(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}

/// Every reason to deny: each new ephemeral container's writable mount of a volume the webhook
/// fills, its joining the process namespace of one of the webhook's containers, and its user
/// where the pod shares one process namespace with the webhook's sidecar. Linear: the names are
/// put in sets once.
fn judge(new: &PodView<'_>, old: &PodView<'_>) -> Vec<Error> {
    let filled: HashSet<&str> = new
        .written
        .iter()
        .chain(&old.written)
        .map(Cow::as_ref)
        .collect();
    let sidecars = Sidecars::of(new);
    let own: HashSet<&str> = new.own.iter().chain(&old.own).map(Cow::as_ref).collect();
    let existing: HashMap<&str, &Container<'_>> =
        old.ephemeral.iter().map(|c| (c.name.as_ref(), c)).collect();
    let mut problems = Vec::new();
    for container in &new.ephemeral {
        let name = container.name.as_ref();
        // One the pod already had was judged when it was added (or predates the rule); the API
        // server refuses any change to it.
        if existing.get(name).is_some_and(|old| *old == container) {
            continue;
        }
        if let Some(target) = container.target.as_deref().filter(|t| own.contains(t)) {
            problems.push(Error::pod(format!(
                "ephemeral container {name:?} targets the webhook's container {target:?} \
                 (targetContainerName), whose process can write the secrets volume; target an \
                 app container instead"
            )));
        }
        if let Some(problem) = sidecars
            .as_ref()
            .and_then(|sidecars| sidecars.problem(name, container.user.or(new.user)))
        {
            problems.push(Error::pod(problem));
        }
        for mount in &container.mounts {
            let volume = mount.volume();
            if mount.writable() && (owned::is_own_volume(volume) || filled.contains(volume)) {
                problems.push(Error::pod(format!(
                    "ephemeral container {name:?} mounts the volume {:?} at {} writable, and only \
                     the webhook's init containers may write it; set readOnly: true on the mount \
                     (read-only mounts are allowed) or leave it out",
                    mount.volume(),
                    mount.mount_path.as_deref().unwrap_or("")
                )));
            }
        }
    }
    problems
}

/// The webhook's sidecars a new ephemeral container would share the pod's process namespace
/// with, by user (each its own `runAsUser`, else the pod's).
struct Sidecars<'a> {
    /// The first of them, with its user.
    first: (&'a str, Option<i64>),
    /// Each known user, with the first sidecar running as it.
    by_user: HashMap<i64, &'a str>,
    /// The first whose user is not known (its image's).
    unknown: Option<&'a str>,
}

impl<'a> Sidecars<'a> {
    /// `None` when the pod's containers do not share one process namespace, or the webhook has no
    /// sidecar in it. Spec fields of a running pod do not change: the new pod's are the pod's.
    fn of(pod: &'a PodView<'_>) -> Option<Self> {
        if !pod.shared_processes {
            return None;
        }
        let mut all = pod
            .sidecars
            .iter()
            .map(|(name, user)| (name.as_ref(), user.or(pod.user)));
        let first = all.next()?;
        let mut sidecars = Self {
            first,
            by_user: HashMap::new(),
            unknown: None,
        };
        for (name, user) in std::iter::once(first).chain(all) {
            match user {
                Some(user) => {
                    sidecars.by_user.entry(user).or_insert(name);
                }
                None => {
                    sidecars.unknown.get_or_insert(name);
                }
            }
        }
        Some(sidecars)
    }

    /// Why the new ephemeral container `name`, running as `user`, could reach a sidecar's
    /// volume through `/proc/<pid>/root`, if it could.
    fn problem(&self, name: &str, user: Option<i64>) -> Option<String> {
        let (sidecar, why) = match user {
            None => (
                self.first.0,
                "has no runAsUser (in its securityContext or the pod's), so it may run as root or \
                 as the sidecar's user"
                    .to_owned(),
            ),
            Some(0) => (
                self.first.0,
                "runs as root, which can take the sidecar's user".to_owned(),
            ),
            Some(user) => match (self.by_user.get(&user), self.unknown) {
                (Some(sidecar), _) => (*sidecar, format!("runs as {user}, the sidecar's user")),
                (None, Some(sidecar)) => (
                    sidecar,
                    format!(
                        "runs as {user}, and the sidecar runs as its image's user, not known \
                         here, which may be the same"
                    ),
                ),
                (None, None) => return None,
            },
        };
        let copy = "debug a copy of the pod (kubectl debug --copy-to)";
        let way_out = if self.unknown.is_some() {
            copy.to_owned()
        } else {
            // A few: a pod has one sidecar per volume the webhook fills.
            let mut users: Vec<i64> = self.by_user.keys().copied().collect();
            users.sort_unstable();
            let more = if users.len() > 3 { ", ..." } else { "" };
            let users: Vec<String> = users.iter().take(3).map(i64::to_string).collect();
            format!(
                "give it a runAsUser in its securityContext other than 0 and the sidecars' ({}{more}), \
                 or {copy}",
                users.join(", ")
            )
        };
        Some(format!(
            "ephemeral container {name:?} shares the pod's process namespace \
             (spec.shareProcessNamespace: true) with the webhook's sidecar {sidecar:?}, and {why}: \
             a process of the sidecar's user reaches the volume it writes through \
             /proc/<pid>/root; {way_out}"
        ))
    }
}

/// Why a pod was not read.
#[derive(Debug)]
enum Refusal {
    /// More than [`MAX_ENTRIES`] containers and mounts.
    TooLarge,
    Json(serde_json::Error),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => write!(
                f,
                "the pod has more than {MAX_ENTRIES} init containers, ephemeral containers and \
                 volume mounts of theirs, more than the webhook reviews before adding an \
                 ephemeral container; recreate the pod with fewer to debug it"
            ),
            Self::Json(e) => write!(f, "the object cannot be read: {e}"),
        }
    }
}

/// Reads what the rule needs of a pod, within the budget.
fn read(pod: &RawValue) -> Result<PodView<'_>, Refusal> {
    let budget = Budget::new();
    let mut view = PodView::default();
    let mut deserializer = serde_json::Deserializer::from_str(pod.get());
    let read = PodSeed {
        budget: &budget,
        view: &mut view,
    }
    .deserialize(&mut deserializer)
    .and_then(|()| deserializer.end());
    match read {
        Ok(()) => Ok(view),
        Err(_) if budget.over.get() => Err(Refusal::TooLarge),
        Err(e) => Err(Refusal::Json(e)),
    }
}

/// How many more containers and mounts may be kept, and whether the pod went over.
struct Budget {
    left: Cell<usize>,
    over: Cell<bool>,
}

impl Budget {
    fn new() -> Self {
        Self {
            left: Cell::new(MAX_ENTRIES),
            over: Cell::new(false),
        }
    }

    /// Spends one entry, or stops the reader when none is left.
    fn take<E: de::Error>(&self) -> Result<(), E> {
        let Some(left) = self.left.get().checked_sub(1) else {
            self.over.set(true);
            return Err(E::custom(format_args!("more than {MAX_ENTRIES} entries")));
        };
        self.left.set(left);
        Ok(())
    }
}

/// Fills a field once; a second key of the same name is an error, as in serde's derived code.
fn once<E: de::Error>(seen: &mut bool, field: &'static str) -> Result<(), E> {
    if std::mem::replace(seen, true) {
        return Err(E::duplicate_field(field));
    }
    Ok(())
}

struct PodSeed<'b, 'a> {
    budget: &'b Budget,
    view: &'b mut PodView<'a>,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for PodSeed<'_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for PodSeed<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a pod")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut spec = false;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            if key == "spec" {
                once(&mut spec, "spec")?;
                map.next_value_seed(Nullable(SpecSeed {
                    budget: self.budget,
                    view: &mut *self.view,
                }))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// `T`'s seed, or nothing for JSON `null` (the API's absent list or spec).
struct Nullable<S>(S);

impl<'de, S: DeserializeSeed<'de, Value = ()>> DeserializeSeed<'de> for Nullable<S> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de, Value = ()>> Visitor<'de> for Nullable<S> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null or a value")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.0.deserialize(deserializer)
    }
}

struct SpecSeed<'b, 'a> {
    budget: &'b Budget,
    view: &'b mut PodView<'a>,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for SpecSeed<'_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for SpecSeed<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a pod spec")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (mut init, mut ephemeral) = (false, false);
        let (mut shared, mut context) = (false, false);
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let list = match key.as_ref() {
                "shareProcessNamespace" => {
                    once(&mut shared, "shareProcessNamespace")?;
                    let value: Option<bool> = map.next_value()?;
                    self.view.shared_processes = value == Some(true);
                    continue;
                }
                "securityContext" => {
                    once(&mut context, "securityContext")?;
                    let value: Option<SecurityContext> = map.next_value()?;
                    self.view.user = value.and_then(|c| c.run_as_user);
                    continue;
                }
                "initContainers" => {
                    once(&mut init, "initContainers")?;
                    List::Init
                }
                "ephemeralContainers" => {
                    once(&mut ephemeral, "ephemeralContainers")?;
                    List::Ephemeral
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            map.next_value_seed(Nullable(ListSeed {
                list,
                budget: self.budget,
                view: &mut *self.view,
            }))?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum List {
    Init,
    Ephemeral,
}

/// A container list: each container read whole (its name may follow its mounts), then kept as
/// the rule needs it.
struct ListSeed<'b, 'a> {
    list: List,
    budget: &'b Budget,
    view: &'b mut PodView<'a>,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for ListSeed<'_, 'a> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for ListSeed<'_, 'a> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of containers")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(container) = seq.next_element_seed(ContainerSeed(self.budget))? {
            match self.list {
                List::Init if owned::is_init_container(&container.name) => {
                    if container.native {
                        self.view
                            .sidecars
                            .push((container.name.clone(), container.user));
                    }
                    self.view.written.extend(
                        container
                            .mounts
                            .into_iter()
                            .filter(Mount::writable)
                            .filter_map(|m| m.name),
                    );
                    self.view.own.push(container.name);
                }
                List::Init => {}
                List::Ephemeral => self.view.ephemeral.push(container),
            }
        }
        Ok(())
    }
}

/// One container: its name, target and mounts; each container and mount spends the budget.
struct ContainerSeed<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for ContainerSeed<'_> {
    type Value = Container<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ContainerSeed<'_> {
    type Value = Container<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a container")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Container<'de>, A::Error> {
        self.0.take()?;
        let (mut name, mut target, mut mounts) = (None, None, None);
        let (mut context, mut restart) = (None, None);
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "name" => {
                    let value: Option<Cow<'de, str>> = map.next_value()?;
                    if name.replace(value).is_some() {
                        return Err(de::Error::duplicate_field("name"));
                    }
                }
                "targetContainerName" => {
                    let value: Option<Cow<'de, str>> = map.next_value()?;
                    if target.replace(value).is_some() {
                        return Err(de::Error::duplicate_field("targetContainerName"));
                    }
                }
                "volumeMounts" => {
                    let value = map.next_value_seed(MountsSeed(self.0))?;
                    if mounts.replace(value).is_some() {
                        return Err(de::Error::duplicate_field("volumeMounts"));
                    }
                }
                "securityContext" => {
                    let value: Option<SecurityContext> = map.next_value()?;
                    if context.replace(value).is_some() {
                        return Err(de::Error::duplicate_field("securityContext"));
                    }
                }
                "restartPolicy" => {
                    let value: Option<Cow<'de, str>> = map.next_value()?;
                    if restart.replace(value).is_some() {
                        return Err(de::Error::duplicate_field("restartPolicy"));
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Container {
            name: name.flatten().unwrap_or_default(),
            target: target.flatten(),
            mounts: mounts.unwrap_or_default(),
            user: context.flatten().and_then(|c| c.run_as_user),
            native: restart.flatten().as_deref() == Some("Always"),
        })
    }
}

/// A container's `volumeMounts` (null for none).
struct MountsSeed<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for MountsSeed<'_> {
    type Value = Vec<Mount<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for MountsSeed<'_> {
    type Value = Vec<Mount<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of volume mounts")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut mounts = Vec::new();
        while let Some(mount) = seq.next_element::<Mount<'de>>()? {
            self.0.take()?;
            mounts.push(mount);
        }
        Ok(mounts)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn raw(value: &Value) -> Box<RawValue> {
        RawValue::from_string(value.to_string()).unwrap()
    }

    fn pod(init: Value, ephemeral: Value) -> Value {
        json!({
            "metadata": {"name": "web"},
            "spec": {
                "volumes": [{"name": "secrets-injector", "emptyDir": {"medium": "Memory"}}],
                "initContainers": init,
                "containers": [{"name": "app", "image": "nginx"}],
                "ephemeralContainers": ephemeral
            }
        })
    }

    fn injector() -> Value {
        json!([{"name": "secrets-injector", "image": "injector:1",
                "volumeMounts": [{"name": "secrets-injector", "mountPath": "/mnt/secrets-store"}]}])
    }

    fn debug(mounts: Value) -> Value {
        json!({"name": "debug", "image": "busybox", "volumeMounts": mounts})
    }

    fn answer(new: &Value, old: &Value) -> Option<String> {
        review(&raw(new), Some(&raw(old)))
    }

    #[test]
    fn a_new_writable_mount_of_the_webhooks_volume_is_denied_and_a_read_only_one_allowed() {
        let old = pod(injector(), json!(null));
        let writable = pod(
            injector(),
            json!([debug(
                json!([{"name": "secrets-injector", "mountPath": "/s"}])
            )]),
        );
        assert_eq!(
            answer(&writable, &old).as_deref(),
            Some(
                "ephemeral container \"debug\" mounts the volume \"secrets-injector\" at /s \
                 writable, and only the webhook's init containers may write it; set readOnly: \
                 true on the mount (read-only mounts are allowed) or leave it out"
            )
        );
        for read_only in [json!(false), json!(null)] {
            let new = pod(
                injector(),
                json!([debug(
                    json!([{"name": "secrets-injector", "mountPath": "/s", "readOnly": read_only}])
                )]),
            );
            assert!(answer(&new, &old).is_some(), "readOnly {read_only}");
        }
        let read_only = pod(
            injector(),
            json!([debug(
                json!([{"name": "secrets-injector", "mountPath": "/s", "readOnly": true}])
            )]),
        );
        assert_eq!(answer(&read_only, &old), None);
    }

    #[test]
    fn the_bin_volume_is_the_webhooks_and_other_volumes_are_not() {
        let old = pod(injector(), json!([]));
        let new = pod(
            injector(),
            json!([debug(json!([
                {"name": "data", "mountPath": "/data"},
                {"name": "secrets-injector-bin", "mountPath": "/bin2", "subPath": "x"}
            ]))]),
        );
        let message = answer(&new, &old).expect("denied");
        assert!(
            message.starts_with(
                "ephemeral container \"debug\" mounts the volume \"secrets-injector-bin\" at /bin2 writable"
            ),
            "{message}"
        );
        assert!(!message.contains("\"data\""), "{message}");
    }

    #[test]
    fn volumes_the_csi_init_containers_fill_are_the_webhooks() {
        let init = json!([
            {"name": "secrets-injector-csi-store", "volumeMounts": [
                {"name": "store", "mountPath": "/mnt/secrets-store"},
                {"name": "aws-iam-token", "mountPath": "/var/run/token", "readOnly": true}
            ]},
            {"name": "setup", "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]}
        ]);
        let old = pod(init.clone(), json!([]));
        let verdict = |volume: &str| {
            answer(
                &pod(
                    init.clone(),
                    json!([debug(json!([{"name": volume, "mountPath": "/v"}]))]),
                ),
                &old,
            )
        };
        let denied = verdict("store").expect("the CSI volume is filled by the webhook");
        assert!(
            denied.contains("the volume \"store\" at /v writable"),
            "{denied}"
        );
        // Read-only in the webhook's container: not one it fills. A user's init container's
        // volume is the user's.
        assert_eq!(verdict("aws-iam-token"), None);
        assert_eq!(verdict("scratch"), None);
    }

    #[test]
    fn containers_the_pod_already_had_are_not_judged_again() {
        let before = debug(json!([{"name": "secrets-injector", "mountPath": "/s"}]));
        let old = pod(injector(), json!([before]));
        let mut added = debug(json!([{"name": "secrets-injector", "mountPath": "/t"}]));
        added["name"] = json!("debug-2");
        let kept = pod(injector(), json!([before.clone()]));
        assert_eq!(answer(&kept, &old), None);
        let new = pod(injector(), json!([before.clone(), added]));
        let message = answer(&new, &old).expect("denied");
        assert!(
            message.starts_with("ephemeral container \"debug-2\""),
            "{message}"
        );
        assert!(!message.contains("\"debug\""), "{message}");
        // The same name with other mounts is not the container the pod had.
        let changed = pod(
            injector(),
            json!([debug(
                json!([{"name": "secrets-injector", "mountPath": "/u"}])
            )]),
        );
        assert!(answer(&changed, &old).is_some());
        // Without oldObject every ephemeral container is new.
        assert!(review(&raw(&kept), None).is_some());
    }

    #[test]
    fn joining_the_process_namespace_of_the_webhooks_container_is_denied() {
        let init = json!([
            {"name": "secrets-injector"},
            {"name": "secrets-injector-refresh", "restartPolicy": "Always"}
        ]);
        let old = pod(init.clone(), json!([]));
        let mut targeting = debug(json!(null));
        targeting["targetContainerName"] = json!("secrets-injector-refresh");
        let message = answer(&pod(init.clone(), json!([targeting])), &old).expect("denied");
        assert!(
            message.starts_with(
                "ephemeral container \"debug\" targets the webhook's container \"secrets-injector-refresh\""
            ),
            "{message}"
        );
        let mut app = debug(json!(null));
        app["targetContainerName"] = json!("app");
        assert_eq!(answer(&pod(init, json!([app])), &old), None);
    }

    #[test]
    fn with_shared_processes_a_sidecar_of_an_unknown_user_allows_no_debug_container() {
        let init = json!([
            {"name": "secrets-injector-csi-a", "securityContext": {"runAsUser": 101}},
            {"name": "secrets-injector-refresh-a", "restartPolicy": "Always",
             "securityContext": {"runAsUser": 101}},
            {"name": "secrets-injector-refresh-b", "restartPolicy": "Always"}
        ]);
        let mut debugger = debug(json!(null));
        debugger["securityContext"] = json!({"runAsUser": 4242});
        let mut old = pod(init.clone(), json!([]));
        old["spec"]["shareProcessNamespace"] = json!(true);
        let mut new = old.clone();
        new["spec"]["ephemeralContainers"] = json!([debugger]);
        let message = answer(&new, &old).expect("denied");
        assert!(
            message.contains("sidecar \"secrets-injector-refresh-b\"")
                && message.contains("kubectl debug --copy-to"),
            "{message}"
        );
        // Every sidecar's user known, and not the debug container's: allowed.
        let known = |pod: &mut Value| {
            pod["spec"]["initContainers"][2]["securityContext"] = json!({"runAsUser": 102});
        };
        known(&mut old);
        known(&mut new);
        assert_eq!(answer(&new, &old), None);
        new["spec"]["ephemeralContainers"][0]["securityContext"]["runAsUser"] = json!(102);
        let message = answer(&new, &old).expect("denied");
        assert!(
            message.contains("sidecar \"secrets-injector-refresh-b\", and runs as 102")
                && message.contains("other than 0 and the sidecars' (101, 102)"),
            "{message}"
        );
    }

    #[test]
    fn a_pod_without_the_webhooks_volumes_is_allowed() {
        let plain = json!({"spec": {"containers": [{"name": "app"}],
            "volumes": [{"name": "data", "emptyDir": {}}]}});
        let mut new = plain.clone();
        new["spec"]["ephemeralContainers"] =
            json!([debug(json!([{"name": "data", "mountPath": "/data"}]))]);
        assert_eq!(answer(&new, &plain), None);
        assert_eq!(answer(&json!({}), &json!({"spec": null})), None);
    }

    #[test]
    fn every_problem_is_said_and_the_message_stays_short() {
        let old = pod(injector(), json!([]));
        let many: Vec<Value> = (0..1000)
            .map(|i| {
                json!({"name": format!("debug-{i}"),
                       "volumeMounts": [{"name": "secrets-injector", "mountPath": "/s"}]})
            })
            .collect();
        let message = answer(&pod(injector(), json!(many)), &old).expect("denied");
        assert!(message.ends_with("; and 980 more problems"), "{message}");
        assert!(message.len() <= 12 * 1024, "{} bytes", message.len());
    }

    #[test]
    fn the_budget_counts_containers_and_mounts_of_either_list() {
        let containers = |n: usize| -> Value {
            (0..n)
                .map(|i| json!({"name": format!("d{i}")}))
                .collect::<Vec<_>>()
                .into()
        };
        let at_limit = pod(json!([]), containers(MAX_ENTRIES));
        assert_eq!(read(&raw(&at_limit)).unwrap().ephemeral.len(), MAX_ENTRIES);
        let over = pod(json!([]), containers(MAX_ENTRIES + 1));
        let message = review(&raw(&over), Some(&raw(&at_limit))).expect("denied");
        assert!(
            message.starts_with("the pod has more than 10000 init containers"),
            "{message}"
        );
        let mounts: Vec<Value> = (0..MAX_ENTRIES)
            .map(|i| json!({"name": "data", "mountPath": format!("/{i}")}))
            .collect();
        let over = pod(
            json!([{"name": "setup", "volumeMounts": mounts}]),
            json!([]),
        );
        assert!(matches!(read(&raw(&over)), Err(Refusal::TooLarge)));
        let under = pod(
            json!([{"name": "setup", "volumeMounts": mounts[1..]}]),
            json!([]),
        );
        assert!(read(&raw(&under)).is_ok());
    }

    #[test]
    fn a_pod_not_shaped_as_the_api_writes_pods_is_denied_as_unreadable() {
        for bad in [
            json!({"spec": {"ephemeralContainers": {"name": "debug"}}}),
            json!({"spec": {"ephemeralContainers": [{"volumeMounts": [{"readOnly": "yes"}]}]}}),
            json!([]),
        ] {
            let message = review(&raw(&bad), None).expect("denied");
            assert!(
                message.starts_with("the object cannot be read: "),
                "{message}"
            );
        }
        let twice = RawValue::from_string(
            r#"{"spec":{"ephemeralContainers":[],"ephemeralContainers":[{"name":"x"}]}}"#.into(),
        )
        .unwrap();
        assert!(review(&twice, None).is_some(), "a list given twice");
    }
}
