//! The edit: what the pod should have, as the capabilities say it in turn. Each capability reads
//! the pod, the flags and what earlier capabilities added here, and adds to it; none writes patch
//! operations or calls another. `assemble` turns the pod and the finished edit into the one JSON
//! patch, matching by name.

use std::sync::Arc;

use serde_json::{Map, Value};

use secrets_injector_objects::error::Error;
use secrets_injector_objects::plan::Plan;

use crate::owned;
use crate::pod::{ContainerRef, Identity, Targets};

/// One of the webhook's init containers, as it should be.
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedInit {
    pub name: String,
    /// The fields the webhook owns, with their values.
    pub fields: Map<String, Value>,
    /// The volume it writes.
    pub volume: String,
    /// `Some(filler)` for a refresh sidecar: the init container it follows.
    pub sidecar_of: Option<String>,
}

impl OwnedInit {
    /// Whether it fills a volume before the app starts (not a refresh sidecar).
    pub fn is_filler(&self) -> bool {
        self.sidecar_of.is_none()
    }
}

/// What the capabilities read of the pod's mesh.
#[derive(Clone, Debug, Default)]
pub struct MeshLayout {
    /// `mesh-bypass: "true"`. Its rules on file modes and `refresh-signal` hold whether or not
    /// the proxy is there yet (a workload's template, or a pod this webhook sees before the
    /// mesh's webhook does), so a pod is refused at the first look.
    pub bypass: bool,
    /// The user the webhook's containers run as instead of the app's: the mesh proxy's, with the
    /// bypass and a proxy in the pod.
    pub run_as: Option<i64>,
    /// Reasons to deny the pod, worded whole, told only when the webhook changes it.
    pub(super) denials: Vec<String>,
}

/// What the pod's own objects (the `objects` annotation or its class) asked for, for the
/// capabilities after `inject`.
#[derive(Clone, Debug)]
pub struct Injected {
    pub targets: Targets,
    pub identity: Identity,
    pub mount_path: String,
    pub init_first: bool,
    /// The checked plan, once it is known to be good.
    pub plan: Option<Arc<Plan>>,
    /// The files the pod's templates write, once they are known to be good.
    pub templates: Vec<String>,
}

/// A CSI volume rewritten by this mutation, or by an earlier one (`adopted`: its init container
/// is there and the volume is no longer a CSI one, so its class is not known again).
#[derive(Clone, Debug)]
pub struct Rewritten {
    pub volume: String,
    /// The containers that mount it (whose identity its init container takes).
    pub mounting: Targets,
    pub adopted: bool,
}

/// What the fillers taking one container copy from it (`container::copied`).
#[derive(Clone, Debug)]
pub struct Copied {
    pub env: Vec<Value>,
    pub mounts: Vec<Value>,
    pub problems: Vec<String>,
}

/// The work a review may do, in units (one unit: looking at one container, mount, env entry,
/// volume or object once). Counted, not timed, so a denial for it is the same on every machine.
#[derive(Clone, Debug)]
pub struct Work {
    used: u64,
    budget: u64,
}

impl Work {
    pub fn new(budget: u64) -> Self {
        Self { used: 0, budget }
    }

    /// Counts `units`; `false` once the budget is spent.
    pub fn charge(&mut self, units: usize) -> bool {
        self.used = self.used.saturating_add(units as u64);
        self.used <= self.budget
    }

    pub fn used(&self) -> u64 {
        self.used
    }

    pub fn budget(&self) -> u64 {
        self.budget
    }

    pub fn exceeded(&self) -> bool {
        self.used > self.budget
    }
}

/// What the pod should have.
#[derive(Debug)]
pub struct Edit {
    /// The webhook's init containers, fillers and sidecars, in the order they were added (their
    /// place in the pod is `order`'s).
    pub init: Vec<OwnedInit>,
    /// Volumes the pod should have, whole: added when missing, replaced in place when different
    /// (a rewritten CSI volume keeps its name and position).
    pub volumes: Vec<Value>,
    /// Mounts of the webhook's volumes in the pod's containers, by (container, volume name).
    pub mounts: Vec<(ContainerRef, Value)>,
    /// Volumes whose every mount outside the webhook's init containers is made read-only.
    pub read_only: Vec<String>,
    /// Commands rewritten, by container.
    pub commands: Vec<(ContainerRef, Value)>,
    /// Annotations set on the pod.
    pub annotations: Vec<(&'static str, &'static str)>,
    pub warnings: Vec<String>,
    /// Reasons to deny the pod.
    pub problems: Vec<Error>,
    /// Reasons to deny the pod already worded whole (told as they are when alone, not cut).
    pub denials: Vec<String>,
    /// What the pod's mesh asks of the webhook's containers (read first).
    pub mesh: MeshLayout,
    /// What the pod's own objects asked for (`None`: it has none, or does not ask).
    pub injected: Option<Injected>,
    pub rewritten: Vec<Rewritten>,
    /// The checked object lists of every init container the edit adds (`webhook policy`).
    pub plans: Vec<Arc<Plan>>,
    /// What the fillers copy, by the container they take it from.
    pub copied: Vec<(ContainerRef, Copied)>,
    pub work: Work,
}

impl Edit {
    pub fn new(work_budget: u64) -> Self {
        Self {
            init: Vec::new(),
            volumes: Vec::new(),
            mounts: Vec::new(),
            read_only: Vec::new(),
            commands: Vec::new(),
            annotations: Vec::new(),
            warnings: Vec::new(),
            problems: Vec::new(),
            denials: Vec::new(),
            mesh: MeshLayout::default(),
            injected: None,
            rewritten: Vec::new(),
            plans: Vec::new(),
            copied: Vec::new(),
            work: Work::new(work_budget),
        }
    }

    /// A reason to deny the pod, worded whole.
    pub fn deny(&mut self, message: impl Into<String>) {
        self.denials.push(message.into());
    }

    /// Whether the pod is denied.
    pub fn denied(&self) -> bool {
        !self.problems.is_empty() || !self.denials.is_empty()
    }

    /// The denial: a whole-worded reason alone as it is, else every reason in one capped message.
    pub fn denial(&self) -> Option<String> {
        match (self.denials.as_slice(), self.problems.is_empty()) {
            ([], true) => None,
            ([only], true) => Some(only.clone()),
            (denials, _) => {
                let denials: Vec<Error> = denials.iter().cloned().map(Error::pod).collect();
                Some(secrets_injector_objects::error::message(
                    denials.iter().chain(&self.problems),
                ))
            }
        }
    }

    pub fn problem(&mut self, message: impl Into<String>) {
        self.problems.push(Error::pod(message.into()));
    }

    /// Whether anything asks the webhook to act: the pod's objects, or a CSI volume rewritten,
    /// now or by an earlier mutation (the webhook places and converges that volume's init
    /// containers, so the mesh's rules and the refresh sidecars hold for it as for any other).
    /// The one answer to "does the webhook change this pod": the decision, the mesh's denials and
    /// every capability ask it.
    pub fn asks(&self) -> bool {
        self.injected.is_some() || !self.rewritten.is_empty()
    }

    /// `init-first`, as the pod's own objects say it (`true` without them: the CSI volumes' init
    /// containers always go first).
    pub fn init_first(&self) -> bool {
        self.injected.as_ref().is_none_or(|i| i.init_first)
    }

    /// Whether the pod's init container `name` is the webhook's: one the edit has (matched by
    /// name), or one only the webhook names (`owned::is_reserved_name`), stale. An init container
    /// with a CSI volume's prefix that the edit does not have is the pod's own: its name may be
    /// (`order::read` reads the pod's list by the same rule).
    pub fn owns_init(&self, name: &str) -> bool {
        owned::is_reserved_name(name) || self.init_named(name).is_some()
    }

    /// The init container named `name`, when the edit has it.
    pub fn init_named(&self, name: &str) -> Option<&OwnedInit> {
        self.init.iter().find(|init| init.name == name)
    }

    /// A volume the edit adds, by name.
    pub fn add_volume(&mut self, volume: Value) {
        let name = volume.get("name").and_then(Value::as_str).unwrap_or("");
        if !self
            .volumes
            .iter()
            .any(|v| v.get("name").and_then(Value::as_str) == Some(name))
        {
            self.volumes.push(volume);
        }
    }

    pub fn annotate(&mut self, key: &'static str, value: &'static str) {
        if !self.annotations.iter().any(|(k, _)| *k == key) {
            self.annotations.push((key, value));
        }
    }
}
