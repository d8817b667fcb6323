//! The injection: what the webhook adds to a pod (or pod template) and why it denies one.
//!
//! `mutate` runs the capabilities in a fixed order over one `Edit` (what the pod should have),
//! each reading the pod, the flags and what the ones before it added, and none calling another:
//! `mesh` (the pod's service mesh: the user the webhook's containers run as under `mesh-bypass`,
//! and the mesh's reasons to deny, told at the end only when the webhook changes the pod),
//! `inject` (the pod's own objects: the webhook's volume, its init container, the mounts),
//! `csi` (CSI volumes rewritten, each with an init container), `templates` (files rendered from
//! the pod's own objects' values, checked and handed to its init container), `env` (`secrets-env` for the
//! containers that want variables), `refresh` (a sidecar after each init container that fills a
//! volume). Then `assemble` turns the pod and the edit into the one JSON patch, with the init
//! containers in `order`'s order; `owned` (at the crate's root, shared with the pod reader) says
//! which entries are the webhook's. A new capability is a file here and one line in
//! `CAPABILITIES`.
//!
//! Support: `container` (the injector's container and what it takes from the app), `config` (the
//! flags, shared by `webhook serve` and `webhook inject`), `resources` and `quantity`,
//! `plan_cache`, `classes`, `class_names` and `provider_class` (SecretProviderClasses: where
//! they come from, which a pod names so they are looked up before the mutation runs, what they
//! give), `assume_role`.

pub(crate) mod assemble;
pub(crate) mod assume_role;
pub mod class_names;
pub(crate) mod classes;
pub(crate) mod config;
pub(crate) mod container;
pub(crate) mod csi;
pub(crate) mod edit;
pub(crate) mod env;
pub(crate) mod inject;
pub(crate) mod mesh;
pub(crate) mod order;
pub(crate) mod plan_cache;
pub(crate) mod provider_class;
pub(crate) mod quantity;
pub(crate) mod refresh;
pub(crate) mod resources;
pub(crate) mod templates;

use std::sync::Arc;

use json_patch::Patch;
use serde_json::Value;

use secrets_injector_objects::error;
use secrets_injector_objects::plan::Plan;

use crate::owned;
use crate::pod::{self, ContainerList};

pub use class_names::ClassNames;
pub use classes::{
    ClassSource, Classes, Context, DocumentClasses, Lookup, MAX_CLASS_NAMES, NoClasses,
    ResolvedClass, ReviewClasses,
};
pub use config::{CsiVolumes, InjectorUser, MutationConfig};
pub use container::INJECTOR_PATH;
pub use edit::Edit;
pub use plan_cache::{PlanCache, TemplateCache};
pub use quantity::Quantity;

/// What the webhook answers for a pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The pod does not ask for objects: allowed unchanged.
    Skip,
    /// Allowed with these operations (none when the pod is already converged) and warnings.
    Patch { patch: Patch, warnings: Vec<String> },
    /// Rejected with this message.
    Deny(String),
}

/// A capability: reads the pod and the edit so far, adds to the edit.
type Capability = fn(&Value, &MutationConfig, &Context<'_>, &mut Edit);

/// The capabilities, in the order they run: each may read what the ones before it added.
const CAPABILITIES: [(&str, Capability); 6] = [
    ("mesh", mesh::add),
    ("inject", inject::add),
    ("csi", csi::add),
    ("templates", |pod, cfg, _, edit| {
        templates::add(pod, cfg, edit)
    }),
    ("env", |pod, _, _, edit| env::add(pod, edit)),
    ("refresh", |pod, cfg, _, edit| refresh::add(pod, cfg, edit)),
];

/// Decides what to do with a pod: `pod` is the pod as JSON (`metadata` and `spec`; a pod
/// template works too, the patch paths are relative to it).
pub fn mutate(pod: &Value, cfg: &MutationConfig) -> Decision {
    mutate_in(pod, &Context::default(), cfg)
}

/// `mutate` for a pod in a namespace, or a workload's pod template (`ctx`): the namespace is
/// where its SecretProviderClasses are looked up.
pub fn mutate_in(pod: &Value, ctx: &Context<'_>, cfg: &MutationConfig) -> Decision {
    let mut edit = check(pod, ctx, cfg);
    decide(pod, &mut edit, true)
}

/// `mutate_in` for a workload's pod template, which is checked, never changed: the decision
/// without building a patch (`Decision::Patch` carries none).
pub fn check_template(template: &Value, ctx: &Context<'_>, cfg: &MutationConfig) -> Decision {
    let mut edit = check(template, ctx, cfg);
    decide(template, &mut edit, false)
}

/// The edit for a pod: every capability's part, and every reason to deny it, without a patch
/// (workload templates are checked with it, and `webhook policy` reads the plans).
pub fn check(pod: &Value, ctx: &Context<'_>, cfg: &MutationConfig) -> Edit {
    let mut edit = Edit::new(cfg.review_work_budget);
    // Every capability walks the pod a few times: what that costs is known before any of them
    // runs, so a pod too large for one review is denied before the work is done.
    let size = pod_units(pod);
    for (_, capability) in CAPABILITIES {
        if !edit.work.charge(size) {
            break;
        }
        capability(pod, cfg, ctx, &mut edit);
        if edit.work.exceeded() {
            break;
        }
    }
    if edit.work.exceeded() {
        edit.problems.clear();
        edit.denials.clear();
        edit.deny(format!(
            "the pod is too large for one review: it needs more than {} units of work \
             (containers, mounts, env entries and volumes looked at, per capability), the \
             webhook's --review-work-budget; split it, or raise the budget",
            edit.work.budget()
        ));
        return edit;
    }
    if edit.asks() {
        reserved_names(pod, &mut edit);
    }
    mesh::tell(&mut edit);
    edit
}

/// The plans of every init container the webhook would add, or the denial.
pub fn plans(
    pod: &Value,
    ctx: &Context<'_>,
    cfg: &MutationConfig,
) -> Result<Vec<Arc<Plan>>, String> {
    let edit = check(pod, ctx, cfg);
    match edit.denial() {
        None => Ok(edit.plans),
        Some(denial) => Err(denial),
    }
}

/// The decision for a checked edit: denied with every problem, skipped when nothing asks, else
/// the patch (`patch`: built; else left empty).
fn decide(pod: &Value, edit: &mut Edit, patch: bool) -> Decision {
    if let Some(denial) = edit.denial() {
        return Decision::Deny(denial);
    }
    if !edit.asks() && edit.warnings.is_empty() {
        return Decision::Skip;
    }
    let warnings = error::capped_warnings(edit.warnings.iter().map(String::as_str));
    let patch = if patch && edit.asks() {
        assemble::patch(pod, edit)
    } else {
        Patch(Vec::new())
    };
    Decision::Patch { patch, warnings }
}

/// The pod's regular containers may not take the names only the webhook gives.
fn reserved_names(pod: &Value, edit: &mut Edit) {
    if let Some(clash) = pod::containers(pod, ContainerList::Containers)
        .iter()
        .find(|c| owned::is_reserved_name(pod::name(c)))
    {
        edit.problem(format!(
            "container name {:?} is reserved for the webhook's init containers; rename the container",
            pod::name(clash)
        ));
    }
}

/// The units of work of one walk of the pod: its containers, their mounts and env entries, and
/// its volumes.
fn pod_units(pod: &Value) -> usize {
    let mut units = pod::volumes(pod).len();
    for list in ContainerList::ALL {
        for container in pod::containers(pod, list) {
            units += 1 + pod::mounts(container).len();
            units += container
                .get("env")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
        }
    }
    units
}

/// The work units a review of `pod` used (for the tests and the benchmark).
pub fn work_units(pod: &Value, ctx: &Context<'_>, cfg: &MutationConfig) -> u64 {
    let mut edit = check(pod, ctx, cfg);
    if !edit.denied() && edit.asks() {
        assemble::patch(pod, &mut edit);
    }
    edit.work.used()
}
