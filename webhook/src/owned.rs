//! What in a pod is the webhook's: the one list of its containers and volumes, by name and name
//! prefix. The pod reader (which reads these whole), the mutation (which converges them and
//! removes stale ones) and the admission checks all ask here, so no other module decides it. A
//! name with a CSI volume's prefix is not reserved: in the mutation such an init container is
//! the webhook's only when the edit has it (`Edit::owns_init`, `order::read`).
//!
//! - `secrets-injector`: the init container that fills the webhook's volume, and that volume;
//! - `secrets-injector-refresh`: its refresh sidecar;
//! - `secrets-injector-csi-<volume>`: the init container that fills a rewritten CSI volume (the
//!   volume keeps the user's name);
//! - `secrets-injector-refresh-<volume>`: that volume's refresh sidecar;
//! - `secrets-injector-bin`: the volume that carries `secrets-env`.

use secrets_injector_objects::annotations::{
    BIN_VOLUME_NAME, INIT_CONTAINER_NAME, REFRESH_CONTAINER_NAME, VOLUME_NAME,
};

/// Prefix of the init container of each rewritten CSI volume.
pub const CSI_PREFIX: &str = "secrets-injector-csi-";
/// Prefix of the refresh sidecar of each rewritten CSI volume. Not under [`CSI_PREFIX`], so no
/// volume's init container can take the name of another volume's sidecar.
pub const CSI_REFRESH_PREFIX: &str = "secrets-injector-refresh-";
/// The longest container name the API server accepts (a DNS label).
const MAX_NAME: usize = 63;

/// What one of the webhook's init containers is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `secrets-injector`, which fills the webhook's own volume.
    Injector,
    /// `secrets-injector-refresh`.
    Refresh,
    /// `secrets-injector-csi-<volume>`.
    CsiFiller,
    /// `secrets-injector-refresh-<volume>`.
    CsiRefresh,
}

/// The kind of the webhook's init container `name`, or `None` when it is not one of them.
pub fn kind(name: &str) -> Option<Kind> {
    if name == INIT_CONTAINER_NAME {
        Some(Kind::Injector)
    } else if name == REFRESH_CONTAINER_NAME {
        Some(Kind::Refresh)
    } else if name.starts_with(CSI_PREFIX) {
        Some(Kind::CsiFiller)
    } else if name.starts_with(CSI_REFRESH_PREFIX) {
        Some(Kind::CsiRefresh)
    } else {
        None
    }
}

/// Whether the init container `name` is the webhook's (any kind).
pub fn is_init_container(name: &str) -> bool {
    kind(name).is_some()
}

/// Whether `name` is a container only the webhook may name, which is never a target: the
/// injector and every refresh sidecar. A CSI filler's name follows its volume's, so a pod's own
/// container may carry the prefix when no volume of that name is rewritten.
pub fn is_reserved_name(name: &str) -> bool {
    matches!(
        kind(name),
        Some(Kind::Injector | Kind::Refresh | Kind::CsiRefresh)
    )
}

/// Whether the volume `name` is one the webhook adds under its own name.
pub fn is_own_volume(name: &str) -> bool {
    name == VOLUME_NAME || name == BIN_VOLUME_NAME
}

/// The init container that fills the rewritten CSI volume `volume`: the prefix and the volume's
/// name, shortened to the 63-character limit with a stable hash of the whole name, so two long
/// names never share one.
pub fn csi_filler(volume: &str) -> String {
    named(CSI_PREFIX, volume)
}

/// The refresh sidecar of the rewritten CSI volume `volume`, shortened as [`csi_filler`] is.
pub fn csi_refresh(volume: &str) -> String {
    named(CSI_REFRESH_PREFIX, volume)
}

/// The refresh sidecar of the init container `filler`, which fills `volume`.
pub fn refresh_of(filler: &str, volume: &str) -> String {
    if filler == INIT_CONTAINER_NAME {
        REFRESH_CONTAINER_NAME.to_owned()
    } else {
        csi_refresh(volume)
    }
}

fn named(prefix: &str, volume: &str) -> String {
    let name = format!("{prefix}{volume}");
    if name.len() <= MAX_NAME {
        return name;
    }
    // FNV-1a: stable across versions and platforms, unlike the standard library's hasher.
    let hash = volume
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    let suffix = format!("-{:08x}", hash as u32);
    let mut cut = MAX_NAME - suffix.len();
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", name[..cut].trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_names_fit_and_stay_distinct() {
        assert_eq!(csi_filler("secrets"), "secrets-injector-csi-secrets");
        let long_a = format!("{}a", "v".repeat(62));
        let long_b = format!("{}b", "v".repeat(62));
        let (a, b) = (csi_filler(&long_a), csi_filler(&long_b));
        assert!(a.len() <= MAX_NAME && b.len() <= MAX_NAME, "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(a, csi_filler(&long_a));
        assert!(a.starts_with(CSI_PREFIX));
        let exact = "v".repeat(MAX_NAME - CSI_PREFIX.len());
        assert_eq!(csi_filler(&exact), format!("{CSI_PREFIX}{exact}"));
        // A cut that would end in '-' does not leave "--" before the hash.
        let dashes = format!("{}-{}", "v".repeat(32), "w".repeat(40));
        assert!(!csi_filler(&dashes).contains("--"));
    }

    #[test]
    fn sidecar_names_fit_and_differ_from_every_filler() {
        assert_eq!(csi_refresh("secrets"), "secrets-injector-refresh-secrets");
        let long = "v".repeat(63);
        let name = csi_refresh(&long);
        assert!(
            name.len() <= 63 && name.starts_with(CSI_REFRESH_PREFIX),
            "{name}"
        );
        assert_ne!(name, csi_refresh(&format!("{long}w")));
        assert!(!csi_refresh("x").starts_with(CSI_PREFIX));
        assert_eq!(
            refresh_of(INIT_CONTAINER_NAME, VOLUME_NAME),
            REFRESH_CONTAINER_NAME
        );
        assert_eq!(refresh_of(&csi_filler("v"), "v"), csi_refresh("v"));
    }

    #[test]
    fn kinds_come_from_the_one_list() {
        assert_eq!(kind("secrets-injector"), Some(Kind::Injector));
        assert_eq!(kind("secrets-injector-refresh"), Some(Kind::Refresh));
        assert_eq!(kind("secrets-injector-csi-a"), Some(Kind::CsiFiller));
        assert_eq!(kind("secrets-injector-refresh-a"), Some(Kind::CsiRefresh));
        assert_eq!(kind("app"), None);
        assert!(is_reserved_name("secrets-injector-refresh-a"));
        assert!(!is_reserved_name("secrets-injector-csi-a"));
        assert!(is_own_volume(BIN_VOLUME_NAME) && !is_own_volume("data"));
    }
}
