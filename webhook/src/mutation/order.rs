//! Where the webhook's init containers go: every ordering rule in one function over the final
//! list, so a new rule (a mesh's proxy, say) is a change here alone.
//!
//! Today's rules:
//! - `secrets-injector` (and its refresh sidecar) first, so the pod's own init containers can
//!   read the files; with `init-first: "false"` last, or where it already is;
//! - the init container of each rewritten CSI volume (and its sidecar) after it, before the pod's
//!   own init containers, which may read the files as they could read the CSI driver's;
//! - each refresh sidecar right after the init container it follows;
//! - the pod's own init containers keep their order.

use secrets_injector_objects::annotations::INIT_CONTAINER_NAME;

use super::edit::OwnedInit;

/// An entry of the final list of init containers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The pod's own init container at this index of the pod's list.
    Pod(usize),
    /// The edit's init container at this index of `Edit::init`.
    Owned(usize),
}

/// The final order of the init containers. `pod` gives, for each of the pod's init containers,
/// `Some(k)` when it is the edit's `owned[k]` (present already) and `None` when it is the pod's
/// own; the webhook's stale ones are already left out of it.
pub fn init_containers(
    pod: &[(usize, Option<usize>)],
    owned: &[OwnedInit],
    init_first: bool,
) -> Vec<Slot> {
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
    let own: Vec<Slot> = pod
        .iter()
        .filter(|(_, owned)| owned.is_none())
        .map(|&(index, _)| Slot::Pod(index))
        .collect();

    let mut order = Vec::with_capacity(main.len() + csi.len() + own.len());
    if init_first {
        order.extend(main);
        order.extend(csi);
        order.extend(own);
        return order;
    }
    order.extend(csi);
    // Appended, or kept where it is among the pod's own: another webhook may append after it.
    let present = injector.and_then(|k| {
        pod.iter()
            .filter(|(_, owned)| owned.is_none() || *owned == Some(k))
            .position(|(_, owned)| *owned == Some(k))
    });
    match present {
        Some(before) => {
            order.extend(own[..before].iter().copied());
            order.extend(main);
            order.extend(own[before..].iter().copied());
        }
        None => {
            order.extend(own);
            order.extend(main);
        }
    }
    order
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

    #[test]
    fn the_webhooks_containers_go_first_each_filler_before_its_sidecar() {
        let pod = [(0, None), (1, None)];
        assert_eq!(
            init_containers(&pod, &edit(), true),
            [
                Slot::Owned(0),
                Slot::Owned(2),
                Slot::Owned(1),
                Slot::Owned(3),
                Slot::Pod(0),
                Slot::Pod(1)
            ]
        );
    }

    #[test]
    fn init_first_false_appends_or_keeps_the_place() {
        let pod = [(0, None), (1, None)];
        assert_eq!(
            init_containers(&pod, &edit(), false),
            [
                Slot::Owned(1),
                Slot::Owned(3),
                Slot::Pod(0),
                Slot::Pod(1),
                Slot::Owned(0),
                Slot::Owned(2)
            ]
        );
        let placed = [(0, None), (1, Some(0)), (2, None)];
        assert_eq!(
            init_containers(&placed, &edit()[..1], false),
            [Slot::Pod(0), Slot::Owned(0), Slot::Pod(2)]
        );
    }
}
