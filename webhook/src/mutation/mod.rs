//! The injection: what the webhook adds to a pod (or pod template) and why it denies one. The
//! decision is `mutate`'s: skip the pod, patch it, or deny it. `injection` reads and checks the
//! pod's annotations into an `Injection` (or every reason to deny); `patch` writes the JSONPatch
//! that adds the init container, its volume and mounts; `config` is the flags that shape them
//! (shared by `webhook serve` and `webhook inject`); `resources` and `quantity` are the init
//! container's resources; `plan_cache` keeps object lists already checked; `refresh` is the
//! refresh annotations and the native sidecar that re-reads the objects; `csi` rewrites CSI
//! volumes and `csi_refresh` gives each its sidecar. A new capability (a container, volume or env
//! the webhook adds) is a file of its own here, called from `patch`.

pub(crate) mod assume_role;
pub mod class_names;
pub(crate) mod classes;
pub(crate) mod config;
pub(crate) mod csi;
pub(crate) mod csi_refresh;
pub(crate) mod env;
pub(crate) mod injection;
pub(crate) mod patch;
pub(crate) mod plan_cache;
pub(crate) mod provider_class;
pub(crate) mod quantity;
pub(crate) mod refresh;
pub(crate) mod resources;

use json_patch::Patch;
use serde_json::Value;

use injection::Ask;

pub use class_names::{ClassNames, MAX_CLASS_NAMES};
pub use classes::{
    ClassSource, Classes, Context, DocumentClasses, Lookup, NoClasses, ResolvedClass, ReviewClasses,
};
pub use config::{CsiVolumes, InjectorUser, MutationConfig};
pub use csi::CONTAINER_PREFIX as CSI_CONTAINER_PREFIX;
pub use csi_refresh::CONTAINER_PREFIX as CSI_REFRESH_PREFIX;
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
    mutate_in(pod, &Context::default(), cfg)
}

/// `mutate` for a pod in a namespace, or a workload's pod template (`ctx`): the namespace is
/// where its SecretProviderClasses are looked up.
pub fn mutate_in(pod: &Value, ctx: &Context<'_>, cfg: &MutationConfig) -> Decision {
    let mut main = injection::build_in(pod, cfg, ctx);
    let mut csi = csi::build(pod, cfg, ctx);
    let refresh = csi_refresh::read(pod, cfg, &main, &mut csi);
    // `secrets-env` reads every secrets volume a container mounts: the webhook's own and the
    // rewritten CSI ones.
    let csi_volumes = env::csi_volumes(pod, csi.rewrites.iter().map(|r| r.volume.as_str()));
    let mut csi_env = env::EnvContainers::default();
    match &mut main {
        Ask::Inject(injection) => env::read_dirs(
            pod,
            &mut injection.env,
            Some(&injection.mount_path),
            &csi_volumes,
            &mut csi.problems,
            &mut csi.warnings,
        ),
        Ask::None if !csi.rewrites.is_empty() => {
            let filler = csi::container_name(&csi.rewrites[0].volume);
            csi_env = env::resolve_for_csi(pod, &filler, &mut csi.problems, &mut csi.warnings);
            env::read_dirs(
                pod,
                &mut csi_env,
                None,
                &csi_volumes,
                &mut csi.problems,
                &mut csi.warnings,
            );
        }
        _ => {}
    }
    if !csi.problems.is_empty() {
        let mut problems: Vec<String> = match main {
            Ask::Deny(message) => vec![message],
            _ => Vec::new(),
        };
        problems.extend(csi.problems);
        let errors: Vec<_> = problems
            .into_iter()
            .map(secrets_injector_objects::Error::pod)
            .collect();
        return Decision::Deny(secrets_injector_objects::error::message(&errors));
    }
    let (mut patch, mut warnings) = match main {
        Ask::None if csi.rewrites.is_empty() && csi.warnings.is_empty() => return Decision::Skip,
        Ask::None => (Patch(Vec::new()), Vec::new()),
        Ask::Deny(message) => return Decision::Deny(message),
        Ask::Inject(injection) => {
            let mut injection = *injection;
            let warnings = std::mem::take(&mut injection.warnings);
            (patch::build(pod, injection, cfg), warnings)
        }
    };
    if !csi_env.found.is_empty() {
        env::patch(pod, &csi_env, &mut patch.0);
        if let Some(first) = csi.rewrites.first_mut() {
            env::fill_from(&mut first.container);
        }
    }
    if !csi.rewrites.is_empty() {
        // The rewrite's positions are those of the pod after the other operations.
        let patched;
        let base = if patch.0.is_empty() {
            pod
        } else {
            let mut copy = pod.clone();
            if json_patch::patch(&mut copy, &patch).is_err() {
                return Decision::Deny("the webhook's own patch does not apply to the pod".into());
            }
            patched = copy;
            &patched
        };
        let sidecars = csi_refresh::desired(&csi.rewrites, refresh.as_ref(), cfg);
        let mut ops = csi::ops(base, csi.rewrites, cfg);
        csi_refresh::ops(base, sidecars, &mut ops);
        patch.0.extend(ops);
    }
    if !csi.warnings.is_empty() {
        warnings.extend(csi.warnings);
        warnings =
            secrets_injector_objects::error::capped_warnings(warnings.iter().map(String::as_str));
    }
    Decision::Patch { patch, warnings }
}
