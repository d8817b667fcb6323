//! Meshed pods (SPEC "Service meshes"): the mesh's side of the pod read once, first, into
//! `Edit::mesh`, where the capabilities after it find what they need: the user the webhook's
//! containers run as under `mesh-bypass` (`inject` and `csi` write it, `refresh` copies it), and
//! whether the bypass's rules on file modes and `refresh-signal` hold. (`order` reads the mesh's
//! init containers itself, from the pod.) The reasons to deny a meshed pod are kept here and told
//! by `tell` once every capability has run, and only when the webhook changes the pod: a meshed
//! pod that asks for nothing is none of its business.
//!
//! The denial: a mesh's proxy as a regular container with the mesh's CNI plugin (its validator
//! init container) redirects the pod's traffic before any init container runs, and starts only
//! with the app, so the webhook's init containers could not reach AWS. Unless `mesh-bypass:
//! "true"` runs them as the proxy's user, whose traffic the redirect lets through.

use serde_json::Value;

use secrets_injector_objects::annotations::MESH_BYPASS;

use super::classes::Context;
use super::config::MutationConfig;
use super::edit::{Edit, MeshLayout as Layout};
use crate::mesh::{self, Mesh, Role};
use crate::pod::{self, ContainerList};

/// A proxy that runs: a regular container, or an init container that is a native sidecar.
struct Proxy<'a> {
    mesh: Mesh,
    native: bool,
    container: &'a Value,
}

/// Reads the pod's mesh into `edit.mesh`.
pub fn add(pod: &Value, _: &MutationConfig, _: &Context<'_>, edit: &mut Edit) {
    let mut layout = Layout::default();
    match pod::annotation(pod, MESH_BYPASS) {
        None | Some("false") => {}
        Some("true") => layout.bypass = true,
        Some(other) => layout.denials.push(format!(
            "annotation {MESH_BYPASS}: {other:?} is not a boolean; write \"true\" or \"false\""
        )),
    }
    let mut proxies: Vec<Proxy<'_>> = Vec::new();
    let mut validators: Vec<Mesh> = Vec::new();
    for list in [ContainerList::Containers, ContainerList::InitContainers] {
        for container in pod::containers(pod, list) {
            let native = pod::is_native_sidecar(container);
            match mesh::role(pod::name(container)) {
                Some((mesh, Role::Proxy)) if list == ContainerList::Containers || native => {
                    proxies.push(Proxy {
                        mesh,
                        native,
                        container,
                    });
                }
                // At most one entry per mesh, so the check below stays linear.
                Some((mesh, Role::Validator))
                    if list == ContainerList::InitContainers && !validators.contains(&mesh) =>
                {
                    validators.push(mesh);
                }
                _ => {}
            }
        }
    }
    for proxy in proxies.iter().filter(|p| !p.native) {
        if validators.contains(&proxy.mesh) && !layout.bypass {
            layout.denials.push(cni_denial(proxy.mesh));
        }
    }
    if layout.bypass {
        layout.run_as = proxy_user(&proxies, &mut layout.denials);
    }
    edit.mesh = layout;
}

/// The mesh's reasons to deny the pod, into the edit when the webhook changes the pod.
pub fn tell(edit: &mut Edit) {
    if edit.asks() {
        let denials = std::mem::take(&mut edit.mesh.denials);
        for denial in denials {
            edit.deny(denial);
        }
    }
}

/// The denial of a classic proxy under the mesh's CNI plugin, with the two ways out.
fn cni_denial(mesh: Mesh) -> String {
    let name = mesh.name();
    format!(
        "the pod runs {name}'s proxy as a regular container ({proxy}) with {name}'s CNI plugin \
         (init container {validator}): the plugin redirects the pod's traffic to the proxy before \
         any init container runs, and the proxy starts only with the app's containers, so the \
         webhook's init containers could not reach AWS. Either have {name} run its proxy as a \
         native sidecar (pod annotation {native}: \"true\"; the webhook then puts its init \
         containers after it), or set the annotation {MESH_BYPASS}: \"true\" to run them as the \
         proxy's user, whose traffic the redirect lets through (their AWS calls then leave the \
         mesh's policy)",
        proxy = mesh.proxy(),
        validator = mesh.validator(),
        native = mesh.native_sidecar_annotation(),
    )
}

/// The user of the pod's mesh proxies, read from their own `runAsUser` (the redirect exempts the
/// user the mesh was configured with, which its injector writes there). `None` when the pod has
/// no proxy (yet: the mesh's webhook may add one before this one runs again), or with a denial
/// when the user is not known, is root, or differs between two proxies.
fn proxy_user(proxies: &[Proxy<'_>], denials: &mut Vec<String>) -> Option<i64> {
    let mut user: Option<(&Proxy<'_>, i64)> = None;
    for proxy in proxies {
        let name = mesh_name(proxy);
        let own = proxy
            .container
            .get("securityContext")
            .and_then(|context| context.get("runAsUser"))
            .and_then(Value::as_i64);
        match (own, user) {
            (None, _) => {
                denials.push(format!(
                    "annotation {MESH_BYPASS}: {name} has no runAsUser in its securityContext, so \
                     the user its redirect lets through is not known ({} writes {} unless \
                     configured otherwise); have the mesh write it, or remove the annotation",
                    proxy.mesh.name(),
                    proxy.mesh.default_proxy_user()
                ));
                return None;
            }
            (Some(0), _) => {
                denials.push(format!(
                    "annotation {MESH_BYPASS}: {name} runs as root, and the webhook's containers \
                     never do; run the proxy as a non-root user, or remove the annotation"
                ));
                return None;
            }
            (Some(own), Some((first, other))) if own != other => {
                denials.push(format!(
                    "annotation {MESH_BYPASS}: {} runs as {other} and {name} as {own}, and the \
                     webhook's containers can run as only one of them; remove the annotation",
                    mesh_name(first)
                ));
                return None;
            }
            (Some(own), _) => user = Some(user.unwrap_or((proxy, own))),
        }
    }
    user.map(|(_, id)| id)
}

/// `Istio's proxy "istio-proxy"`, for messages.
fn mesh_name(proxy: &Proxy<'_>) -> String {
    format!("{}'s proxy {:?}", proxy.mesh.name(), proxy.mesh.proxy())
}
