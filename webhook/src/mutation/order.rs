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
//!
//! Which of the pod's own init containers run before one of the webhook's (`env-containers` may
//! not name those: `secrets-env` is not there yet) is answered here too, by `run_before`, from the
//! same places.

use serde_json::Value;

use secrets_injector_objects::annotations::INIT_CONTAINER_NAME;

use super::edit::OwnedInit;
use crate::mesh::{self, Role};
use crate::owned::{self, Kind};
use crate::pod;

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

/// The pod's init containers as the order reads them, matched by name with the edit's
/// (`owned`): each the pod's own, or the edit's `owned[k]` present already; and the indexes of
/// the webhook's stale ones, left out of the order (removed by `assemble`).
pub fn read<'a>(existing: &'a [Value], owned: &[OwnedInit]) -> (Vec<PodInit<'a>>, Vec<usize>) {
    // The edit's init containers are a few (the webhook's, and one or two per rewritten CSI
    // volume): found by a scan, not a hash of every container's name.
    let wanted = |name: &str| owned.iter().position(|init| init.name == name);
    let mut matched = vec![false; owned.len()];
    let mut current: Vec<PodInit<'_>> = Vec::with_capacity(existing.len());
    let mut stale = Vec::new();
    for (index, container) in existing.iter().enumerate() {
        let name = pod::name(container);
        match wanted(name) {
            Some(k) if !matched[k] => {
                matched[k] = true;
                current.push(pod_init(index, container, Some(k)));
            }
            // A second of one name, or one no capability asks for: only the webhook names these.
            // A CSI volume's init container whose volume is gone is left: its class cannot be
            // known again, and its name may be the pod's own.
            Some(_) => stale.push(index),
            None if matches!(
                owned::kind(name),
                Some(Kind::Injector | Kind::Refresh | Kind::CsiRefresh)
            ) =>
            {
                stale.push(index);
            }
            None => current.push(pod_init(index, container, None)),
        }
    }
    (current, stale)
}

fn pod_init(index: usize, container: &Value, owned: Option<usize>) -> PodInit<'_> {
    PodInit {
        index,
        owned,
        name: pod::name(container),
        native: pod::is_native_sidecar(container),
    }
}

/// The final order of the init containers. `pod` is the pod's list as `read` gives it, the
/// webhook's stale entries left out.
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
    let Places { place, late } = places(pod, &own, injector);

    let mut order = Vec::with_capacity(main.len() + csi.len() + own.len());
    order.extend(own[..place].iter().map(|init| Slot::Pod(init.index)));
    if init_first {
        order.extend(main);
        order.extend(csi);
        order.extend(own[place..].iter().map(|init| Slot::Pod(init.index)));
        return order;
    }
    order.extend(csi);
    order.extend(own[place..late].iter().map(|init| Slot::Pod(init.index)));
    order.extend(main);
    order.extend(own[late..].iter().map(|init| Slot::Pod(init.index)));
    order
}

/// Where the webhook's init containers go among the pod's own (`own`, in the pod's order): how
/// many of them come before every filler (`place`), and before `secrets-injector` under
/// `init-first: "false"` (`late`).
struct Places {
    place: usize,
    late: usize,
}

fn places(pod: &[PodInit<'_>], own: &[&PodInit<'_>], injector: Option<usize>) -> Places {
    let place = place(own);
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
    let late = present
        .filter(|at| (place..=last).contains(at))
        .unwrap_or(last);
    Places { place, late }
}

/// Why one of the pod's own init containers runs before one of the webhook's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Before<'a> {
    /// It comes before the place of the webhook's init containers, which is after the mesh's
    /// (its proxy as a native sidecar, its CNI validators): the last of them is named.
    Place { after: &'a str },
    /// `init-first: "false"` puts `secrets-injector` after it.
    InitFirst,
}

/// The pod's own init containers that run before one of the webhook's, as `init_containers`
/// orders them: always the first few of the pod's own, so two bounds on their index in the pod's
/// list.
#[derive(Clone, Copy, Debug)]
pub struct RunBefore<'a> {
    place: usize,
    late: usize,
    after: &'a str,
}

impl<'a> RunBefore<'a> {
    /// Whether, and why, the pod's own init container at `index` of its list runs before.
    pub fn why(&self, index: usize) -> Option<Before<'a>> {
        if index < self.place {
            Some(Before::Place { after: self.after })
        } else if index < self.late {
            Some(Before::InitFirst)
        } else {
            None
        }
    }
}

/// Which of the pod's own init containers (`pod`, as `read` gives them) run before the webhook's
/// init container `filler`, present or to be added, when `owned` are the edit's: the question of
/// a capability that has one of them use what the filler writes.
pub fn run_before<'a>(
    pod: &[PodInit<'a>],
    owned: &[OwnedInit],
    init_first: bool,
    filler: &str,
) -> RunBefore<'a> {
    let injector = owned.iter().position(|o| o.name == INIT_CONTAINER_NAME);
    let own: Vec<&PodInit<'a>> = pod.iter().filter(|init| init.owned.is_none()).collect();
    let Places { place, late } = places(pod, &own, injector);
    let late = if filler == INIT_CONTAINER_NAME && !init_first {
        late
    } else {
        place
    };
    let bound = |at: usize| own.get(at).map_or(usize::MAX, |init| init.index);
    RunBefore {
        place: bound(place),
        late: bound(late),
        after: place.checked_sub(1).map_or("", |at| own[at].name),
    }
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
    fn run_before_answers_from_the_same_places() {
        let late = pod(&[
            "linkerd-network-validator",
            "migrate",
            "!linkerd-proxy",
            "seed",
        ]);
        let main = run_before(&late, &edit(), true, "secrets-injector");
        let after = "linkerd-proxy";
        assert_eq!(
            (0..4).map(|i| main.why(i)).collect::<Vec<_>>(),
            [
                Some(Before::Place { after }),
                Some(Before::Place { after }),
                Some(Before::Place { after }),
                None
            ]
        );
        // `init-first: "false"` moves `secrets-injector` alone.
        let last = run_before(&late, &edit(), false, "secrets-injector");
        assert_eq!(last.why(3), Some(Before::InitFirst));
        let csi = run_before(&late, &edit(), false, "secrets-injector-csi-a");
        assert_eq!(csi.why(3), None);
        // No mesh: nothing runs before the webhook's, whatever its name.
        let plain = run_before(&pod(&["migrate"]), &[], true, "secrets-injector");
        assert_eq!(plain.why(0), None);
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
