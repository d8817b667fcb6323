//! The admission decision for one pod (or pod template): skip it, patch it, or deny it.

use json_patch::Patch;
use serde_json::Value;

use crate::config::MutationConfig;
use crate::patch;
use crate::plan::{self, Request};

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
    match plan::build(pod, cfg) {
        Request::None => Decision::Skip,
        Request::Deny(message) => Decision::Deny(message),
        Request::Inject(injection) => {
            let mut injection = *injection;
            let warnings = std::mem::take(&mut injection.warnings);
            Decision::Patch {
                patch: patch::build(pod, injection, cfg),
                warnings,
            }
        }
    }
}
