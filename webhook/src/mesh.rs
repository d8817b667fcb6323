//! The service meshes the webhook knows (SPEC "Service meshes"), as their own injectors write
//! pods: the names of their containers and the user their proxy runs as unless configured
//! otherwise. The one place these facts live: the pod reader's targets, the mutation's mesh rules
//! and the order of init containers all ask here.
//!
//! - Istio (`pkg/kube/inject/webhook.go` `reorderPod` and the injection template): `istio-proxy`,
//!   a regular container (classic) or a native sidecar init container; `istio-init` sets up the
//!   redirect (classic: moved last among the init containers; native: first), or, with Istio's
//!   CNI plugin, `istio-validation` checks it (moved first); `enable-core-dump` is moved right
//!   after a native proxy. The proxy runs as 1337.
//! - Linkerd (`charts/patch/templates/patch.json`, `charts/partials`): `linkerd-proxy`, a regular
//!   container (classic, put first in `containers`) or a native sidecar at index 1 of the init
//!   containers; `linkerd-init` sets up the redirect (classic: appended; native: index 0), or,
//!   with Linkerd's CNI plugin, `linkerd-network-validator` checks it (same places). The proxy
//!   runs as 2102.

/// A service mesh whose pods the webhook places its containers in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mesh {
    Istio,
    Linkerd,
}

impl Mesh {
    pub const ALL: [Mesh; 2] = [Mesh::Istio, Mesh::Linkerd];

    /// The mesh's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Mesh::Istio => "Istio",
            Mesh::Linkerd => "Linkerd",
        }
    }

    /// The proxy's container, regular or native sidecar.
    pub fn proxy(self) -> &'static str {
        match self {
            Mesh::Istio => "istio-proxy",
            Mesh::Linkerd => "linkerd-proxy",
        }
    }

    /// The init container that sets up the redirect when the mesh has no CNI plugin.
    pub fn init(self) -> &'static str {
        match self {
            Mesh::Istio => "istio-init",
            Mesh::Linkerd => "linkerd-init",
        }
    }

    /// The init container that checks the redirect the mesh's CNI plugin set up.
    pub fn validator(self) -> &'static str {
        match self {
            Mesh::Istio => "istio-validation",
            Mesh::Linkerd => "linkerd-network-validator",
        }
    }

    /// The user the proxy runs as unless the mesh is configured otherwise; the redirect lets its
    /// traffic through.
    pub fn default_proxy_user(self) -> i64 {
        match self {
            Mesh::Istio => 1337,
            Mesh::Linkerd => 2102,
        }
    }

    /// The pod annotation that makes the mesh inject its proxy as a native sidecar.
    pub fn native_sidecar_annotation(self) -> &'static str {
        match self {
            Mesh::Istio => "sidecar.istio.io/nativeSidecar",
            Mesh::Linkerd => "config.linkerd.io/proxy-enable-native-sidecar",
        }
    }

    /// The mesh's other init containers, which do not touch the network.
    fn helpers(self) -> &'static [&'static str] {
        match self {
            Mesh::Istio => &["enable-core-dump"],
            Mesh::Linkerd => &[],
        }
    }
}

/// What a container is to its mesh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The proxy (`istio-proxy`, `linkerd-proxy`).
    Proxy,
    /// The init container that sets up the redirect (`istio-init`, `linkerd-init`).
    Init,
    /// The init container that checks a CNI plugin's redirect (`istio-validation`,
    /// `linkerd-network-validator`).
    Validator,
    /// Another init container of the mesh's (`enable-core-dump`).
    Helper,
}

/// The mesh a container of this name belongs to, and what it is there; `None` for every other
/// container.
pub fn role(name: &str) -> Option<(Mesh, Role)> {
    Mesh::ALL.into_iter().find_map(|mesh| {
        let role = if name == mesh.proxy() {
            Role::Proxy
        } else if name == mesh.init() {
            Role::Init
        } else if name == mesh.validator() {
            Role::Validator
        } else if mesh.helpers().contains(&name) {
            Role::Helper
        } else {
            return None;
        };
        Some((mesh, role))
    })
}

/// The mesh whose proxy a container of this name is.
pub fn proxy_of(name: &str) -> Option<Mesh> {
    match role(name) {
        Some((mesh, Role::Proxy)) => Some(mesh),
        _ => None,
    }
}

/// Whether a container of this name is a mesh's proxy.
pub fn is_proxy(name: &str) -> bool {
    proxy_of(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_the_mesh_and_the_role() {
        assert_eq!(role("istio-proxy"), Some((Mesh::Istio, Role::Proxy)));
        assert_eq!(role("linkerd-proxy"), Some((Mesh::Linkerd, Role::Proxy)));
        assert_eq!(role("istio-init"), Some((Mesh::Istio, Role::Init)));
        assert_eq!(role("linkerd-init"), Some((Mesh::Linkerd, Role::Init)));
        assert_eq!(
            role("istio-validation"),
            Some((Mesh::Istio, Role::Validator))
        );
        assert_eq!(
            role("linkerd-network-validator"),
            Some((Mesh::Linkerd, Role::Validator))
        );
        assert_eq!(role("enable-core-dump"), Some((Mesh::Istio, Role::Helper)));
        assert_eq!(role("app"), None);
        assert_eq!(role("istio-proxy-2"), None);
        assert!(is_proxy("linkerd-proxy") && !is_proxy("linkerd-init"));
        assert_eq!(Mesh::Istio.default_proxy_user(), 1337);
        assert_eq!(Mesh::Linkerd.default_proxy_user(), 2102);
    }
}
