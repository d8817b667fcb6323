//! The injection: what the webhook adds to a pod (or pod template) and why it denies one. The
//! decision is `mutate`'s: skip the pod, patch it, or deny it. `injection` reads and checks the
//! pod's annotations into an `Injection` (or every reason to deny); `patch` writes the JSONPatch
//! that adds the init container, its volume and mounts; `config` is the flags that shape them
//! (shared by `webhook serve` and `webhook inject`); `resources` and `quantity` are the init
//! container's resources; `plan_cache` keeps object lists already checked; `refresh` is the
//! refresh annotations and the native sidecar that re-reads the objects. A new capability (a
//! container, volume or env the webhook adds) is a file of its own here, called from `patch`.

pub(crate) mod assume_role;
pub(crate) mod config;
pub(crate) mod env;
pub(crate) mod injection;
pub(crate) mod patch;
pub(crate) mod plan_cache;
pub(crate) mod quantity;
pub(crate) mod refresh;
pub(crate) mod resources;

use json_patch::Patch;
use serde_json::Value;

use injection::Ask;

pub use config::{InjectorUser, MutationConfig};
pub use injection::INJECTOR_PATH;
pub use plan_cache::PlanCache;
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

/// Decides what to do with a pod: `pod` is the pod as JSON (`metadata` and `spec`; a pod
/// template works too, the patch paths are relative to it).
pub fn mutate(pod: &Value, cfg: &MutationConfig) -> Decision {
    match injection::build(pod, cfg) {
        Ask::None => Decision::Skip,
        Ask::Deny(message) => Decision::Deny(message),
        Ask::Inject(injection) => {
            let mut injection = *injection;
            let warnings = std::mem::take(&mut injection.warnings);
            Decision::Patch {
                patch: patch::build(pod, injection, cfg),
                warnings,
            }
        }
    }
}
