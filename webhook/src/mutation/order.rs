//! Where the webhook's init containers go: every ordering rule in one function over the final
//! list.
//!
//! The rules (SPEC "Pod annotations" `init-first`, "Service meshes"):
//! - the pod's own init containers keep their order; the webhook's go into it at one place;
//! - that place is right after the last mesh proxy running as a native sidecar (`istio-proxy`,
//!   `linkerd-proxy` with `restartPolicy: Always`) and the mesh's init containers right after it
//!   (Istio moves `enable-core-dump` there): anything before the proxy would run behind the
//!   mesh's redirect with no proxy to take its traffic. Without one, it is the start of the list,
//!   after a mesh's CNI validators at its head (`istio-validation`, which Istio moves first: the
//!   place must be one the mesh's own reordering keeps, or the two webhooks would move the
//!   containers back and forth);
//! - there go `secrets-injector` and its refresh sidecar, then the init container of each
//!   rewritten CSI volume and its sidecar, so the pod's own init containers after them can read
//!   the files as they could read the CSI driver's;
//! - with `init-first: "false"`, `secrets-injector` (and its sidecar) goes last instead, or
//!   stays where it already is, but always before a classic mesh's own init container
//!   (`istio-init`, `linkerd-init`: once it has run, the redirect is in place and the proxy, a
//!   regular container, is not running yet); the CSI volumes' init containers stay at the place;
//! - each refresh sidecar comes right after the init container it follows.

use secrets_injector_objects::annotations::INIT_CONTAINER_NAME;

use super::edit::OwnedInit;
use crate::mesh::{self, Role};

/// An entry of the final list of init containers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The pod's own init container at this index of the pod's list.
    Pod(usize),
    /// The edit's init container at this index of `Edit::init`.
    Owned(usize),
}

/// One of the pod's init containers, as the order sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodInit<'a> {
    /// Its index in the pod's list.
    pub index: usize,
    /// `Some(k)` when it is the edit's `owned[k]` (present already), `None` when it is the pod's
    /// own.
    pub owned: Option<usize>,
    pub name: &'a str,
    /// `restartPolicy: Always`: a native sidecar.
    pub native: bool,
}

/// The final order of the init containers. `pod` is the pod's list, the webhook's stale entries
/// already left out of it.
pub fn init_containers(pod: &[PodInit<'_>], owned: &[OwnedInit], init_first: bool) -> Vec<Slot> {
    let injector = owned.iter().position(|o| o.name == INIT_CONTAINER_NAME);
    // Each filler followed by its sidecar.
    let block = |filler: usize| {
        let name = owned[filler].name.as_str();
        let sidecar = owned
            .iter()
            .position(|o| o.sidecar_of.as_deref() == Some(name));
        std::iter::once(Slot::Owned(filler)).chain(sidecar.map(Slot::Owned))
    };
    let main: Vec<Slot> = injector.into_iter().flat_map(block).collect();
    let csi: Vec<Slot> = (0..owned.len())
        .filter(|&k| owned[k].is_filler() && Some(k) != injector)
        .flat_map(block)
        .collect();
    let own: Vec<&PodInit<'_>> = pod.iter().filter(|init| init.owned.is_none()).collect();
    let place = place(&own);

    let mut order = Vec::with_capacity(main.len() + csi.len() + own.len());
    order.extend(own[..place].iter().map(|init| Slot::Pod(init.index)));
    if init_first {
        order.extend(main);
        order.extend(csi);
        order.extend(own[place..].iter().map(|init| Slot::Pod(init.index)));
        return order;
    }
    order.extend(csi);
    // Last among the pod's own, but before a classic mesh's init container.
    let native = own
        .iter()
        .any(|init| init.native && mesh::is_proxy(init.name));
    let last = own[place..]
        .iter()
        .position(|init| !native && matches!(mesh::role(init.name), Some((_, Role::Init))))
        .map_or(own.len(), |at| place + at);
    // Or kept where it is among the pod's own, when that is between: another webhook may append
    // after it.
    let present = injector.and_then(|k| {
        pod.iter()
            .filter(|init| init.owned.is_none() || init.owned == Some(k))
            .position(|init| init.owned == Some(k))
    });
    let at = present
        .filter(|at| (place..=last).contains(at))
        .unwrap_or(last);
    order.extend(own[place..at].iter().map(|init| Slot::Pod(init.index)));
    order.extend(main);
    order.extend(own[at..].iter().map(|init| Slot::Pod(init.index)));
    order
}

/// How many of the pod's own init containers come before the webhook's: up to the last mesh
/// proxy native sidecar and the mesh's init containers right after it; without one, the mesh
/// CNI validators at the head of the list.
fn place(own: &[&PodInit<'_>]) -> usize {
    let proxy = own
        .iter()
        .rposition(|init| init.native && mesh::is_proxy(init.name));
    let start = proxy.map_or(0, |at| at + 1);
    let follows = |init: &&&PodInit<'_>| match mesh::role(init.name) {
        Some((_, Role::Validator)) => true,
        Some((_, Role::Init | Role::Helper)) => proxy.is_some(),
        _ => false,
    };
    start + own[start..].iter().take_while(follows).count()
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    fn owned(name: &str, sidecar_of: Option<&str>) -> OwnedInit {
        OwnedInit {
            name: name.to_owned(),
            fields: Map::new(),
            volume: String::new(),
            sidecar_of: sidecar_of.map(str::to_owned),
        }
    }

    fn edit() -> Vec<OwnedInit> {
        vec![
            owned("secrets-injector", None),
            owned("secrets-injector-csi-a", None),
            owned("secrets-injector-refresh", Some("secrets-injector")),
            owned("secrets-injector-refresh-a", Some("secrets-injector-csi-a")),
        ]
    }

    /// The pod's own init containers of these names (`!` marks a native sidecar).
    fn pod(names: &[&'static str]) -> Vec<PodInit<'static>> {
        names
            .iter()
            .enumerate()
            .map(|(index, name)| PodInit {
                index,
                owned: None,
                name: name.trim_start_matches('!'),
                native: name.starts_with('!'),
            })
            .collect()
    }

    const MAIN: [Slot; 2] = [Slot::Owned(0), Slot::Owned(2)];
    const CSI: [Slot; 2] = [Slot::Owned(1), Slot::Owned(3)];

    fn slots(parts: &[&[Slot]]) -> Vec<Slot> {
        parts.concat()
    }

    #[test]
    fn the_webhooks_containers_go_first_each_filler_before_its_sidecar() {
        assert_eq!(
            init_containers(&pod(&["a", "b"]), &edit(), true),
            slots(&[&MAIN, &CSI, &[Slot::Pod(0), Slot::Pod(1)]])
        );
    }

    #[test]
    fn init_first_false_appends_or_keeps_the_place() {
        assert_eq!(
            init_containers(&pod(&["a", "b"]), &edit(), false),
            slots(&[&CSI, &[Slot::Pod(0), Slot::Pod(1)], &MAIN])
        );
        let mut placed = pod(&["a", "secrets-injector", "c"]);
        placed[1].owned = Some(0);
        assert_eq!(
            init_containers(&placed, &edit()[..1], false),
            [Slot::Pod(0), Slot::Owned(0), Slot::Pod(2)]
        );
    }

    #[test]
    fn after_a_native_proxy_and_the_mesh_init_containers_right_after_it() {
        let istio = pod(&["istio-init", "!istio-proxy", "enable-core-dump", "migrate"]);
        let head = [Slot::Pod(0), Slot::Pod(1), Slot::Pod(2)];
        assert_eq!(
            init_containers(&istio, &edit(), true),
            slots(&[&head, &MAIN, &CSI, &[Slot::Pod(3)]])
        );
        assert_eq!(
            init_containers(&istio, &edit(), false),
            slots(&[&head, &CSI, &[Slot::Pod(3)], &MAIN])
        );
        // The last proxy counts, wherever it is.
        let late = pod(&[
            "linkerd-network-validator",
            "migrate",
            "!linkerd-proxy",
            "seed",
        ]);
        assert_eq!(
            init_containers(&late, &edit(), true),
            slots(&[
                &[Slot::Pod(0), Slot::Pod(1), Slot::Pod(2)],
                &MAIN,
                &CSI,
                &[Slot::Pod(3)]
            ])
        );
        // A proxy init container that is not a native sidecar is no anchor.
        assert_eq!(
            init_containers(&pod(&["istio-proxy", "migrate"]), &edit(), true),
            slots(&[&MAIN, &CSI, &[Slot::Pod(0), Slot::Pod(1)]])
        );
    }

    #[test]
    fn init_first_false_never_follows_a_classic_mesh_init_container() {
        let istio = pod(&["migrate", "istio-init", "enable-core-dump"]);
        assert_eq!(
            init_containers(&istio, &edit(), true),
            slots(&[&MAIN, &CSI, &[Slot::Pod(0), Slot::Pod(1), Slot::Pod(2)]])
        );
        assert_eq!(
            init_containers(&istio, &edit(), false),
            slots(&[&CSI, &[Slot::Pod(0)], &MAIN, &[Slot::Pod(1), Slot::Pod(2)]])
        );
        // Present after it (another webhook appended it), it moves back before it.
        let mut after = pod(&["migrate", "linkerd-init", "secrets-injector"]);
        after[2].owned = Some(0);
        assert_eq!(
            init_containers(&after, &edit()[..1], false),
            [Slot::Pod(0), Slot::Owned(0), Slot::Pod(1)]
        );
        // Present before a native proxy, it moves after it.
        let mut before = pod(&["secrets-injector", "linkerd-init", "!linkerd-proxy"]);
        before[0].owned = Some(0);
        assert_eq!(
            init_containers(&before, &edit()[..1], false),
            [Slot::Pod(1), Slot::Pod(2), Slot::Owned(0)]
        );
    }

    #[test]
    fn after_the_cni_validators_at_the_head_without_a_native_proxy() {
        assert_eq!(
            init_containers(&pod(&["istio-validation", "migrate"]), &edit(), true),
            slots(&[&[Slot::Pod(0)], &MAIN, &CSI, &[Slot::Pod(1)]])
        );
        // Linkerd appends its validator: first stays first.
        assert_eq!(
            init_containers(
                &pod(&["migrate", "linkerd-network-validator"]),
                &edit(),
                true
            ),
            slots(&[&MAIN, &CSI, &[Slot::Pod(0), Slot::Pod(1)]])
        );
        // A classic init container at the head is never passed.
        assert_eq!(
            init_containers(&pod(&["istio-init", "migrate"]), &edit(), true),
            slots(&[&MAIN, &CSI, &[Slot::Pod(0), Slot::Pod(1)]])
        );
    }
}
