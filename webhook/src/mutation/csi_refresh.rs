//! `refresh-interval` on a pod with rewritten CSI volumes: each rewritten volume gets a native
//! sidecar of its own (`secrets-injector-refresh-<volume>`) right after its init container, which
//! it is, with `refresh` and the refresh flags, as `refresh` makes the webhook's own. Each sidecar
//! notifies (`--signal`, `--url`) after a swap of its own volume.

use json_patch::PatchOperation;
use serde_json::{Map, Value, json};

use super::config::MutationConfig;
use super::csi::{self, CsiAsk, Rewrite};
use super::injection::Ask;
use super::patch;
use super::refresh::{self, Refresh};
use crate::pod::{self, ContainerList, Targets};

/// Prefix of the refresh sidecar of each rewritten volume. Not under the init containers' prefix,
/// so no volume's init container can take the name of another volume's sidecar.
pub const CONTAINER_PREFIX: &str = "secrets-injector-refresh-";

/// The refresh sidecar's name for a volume, shortened as the init container's is.
pub fn container_name(volume: &str) -> String {
    csi::named(CONTAINER_PREFIX, volume)
}

/// The refresh flags of the rewritten volumes: the injection's when the pod has one (its
/// annotations are checked there), else the annotations checked here against the containers that
/// mount the volumes. Problems and warnings go to `ask`.
pub fn read(pod: &Value, cfg: &MutationConfig, main: &Ask, ask: &mut CsiAsk) -> Option<Refresh> {
    if ask.rewrites.is_empty() {
        return None;
    }
    let refresh = match main {
        Ask::Inject(injection) => injection.refresh.clone(),
        Ask::Deny(_) => None,
        Ask::None => {
            let mut targets = Targets {
                found: Vec::new(),
                missing: Vec::new(),
            };
            for rewrite in &ask.rewrites {
                for at in csi::mounting(pod, &rewrite.volume).found {
                    if !targets.found.contains(&at) {
                        targets.found.push(at);
                    }
                }
            }
            let first = targets.first().and_then(|at| pod::container(pod, at));
            let identity = pod::identity(pod, first);
            if let Some(clash) = pod::containers(pod, ContainerList::Containers)
                .iter()
                .find(|c| pod::is_own_container(pod::name(c)))
            {
                ask.problems.push(format!(
                    "container name {:?} is reserved for the webhook's init containers; rename \
                     the container",
                    pod::name(clash)
                ));
            }
            refresh::read(
                pod,
                cfg,
                &targets,
                &identity,
                &mut ask.problems,
                &mut ask.warnings,
            )
        }
    };
    if refresh.is_some() {
        for rewrite in &ask.rewrites {
            ask.warnings
                .extend(refresh::sub_path_warnings(pod, &rewrite.volume));
        }
    }
    refresh
}

/// Each rewrite's init container name, its sidecar's name and the sidecar (`None` when the pod
/// does not refresh).
pub type Sidecars = Vec<(String, String, Option<Map<String, Value>>)>;

/// The sidecars the rewrites ask for, built from their init containers.
pub fn desired(rewrites: &[Rewrite], refresh: Option<&Refresh>, cfg: &MutationConfig) -> Sidecars {
    rewrites
        .iter()
        .map(|rewrite| {
            let name = container_name(&rewrite.volume);
            let sidecar = refresh.map(|refresh| {
                let mut sidecar =
                    refresh::desired_sidecar(&rewrite.container, refresh.clone(), cfg);
                sidecar.insert("name".to_owned(), json!(name));
                sidecar
            });
            (csi::container_name(&rewrite.volume), name, sidecar)
        })
        .collect()
}

/// The operations that put each sidecar right after its init container, or converge it, and
/// remove every sidecar under the prefix no rewrite asks for (the pod no longer refreshes, or
/// forged it). `ops` are the operations so far on `pod`.
pub fn ops(pod: &Value, sidecars: Sidecars, ops: &mut Vec<PatchOperation>) {
    let mut after = pod.clone();
    if json_patch::patch(&mut after, ops).is_err() {
        return;
    }
    let init = pod::containers(&after, ContainerList::InitContainers);
    let wanted = |name: &str| {
        sidecars
            .iter()
            .any(|(_, own, sidecar)| sidecar.is_some() && own == name)
    };
    // The last first, so the positions of those still to remove hold.
    for index in (0..init.len()).rev() {
        let name = pod::name(&init[index]);
        if name.starts_with(CONTAINER_PREFIX) && !wanted(name) {
            ops.push(patch::remove(patch::ptr(&[
                "spec",
                "initContainers",
                &index.to_string(),
            ])));
        }
    }
    for (anchor, name, sidecar) in sidecars {
        if sidecar.is_some() {
            refresh::sidecar_after(pod, &anchor, &name, sidecar, ops);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_names_fit_and_differ_from_every_init_container() {
        assert_eq!(
            container_name("secrets"),
            "secrets-injector-refresh-secrets"
        );
        let long = "v".repeat(63);
        let name = container_name(&long);
        assert!(
            name.len() <= 63 && name.starts_with(CONTAINER_PREFIX),
            "{name}"
        );
        assert_ne!(name, container_name(&format!("{long}w")));
        assert!(!container_name("x").starts_with(csi::CONTAINER_PREFIX));
    }
}
