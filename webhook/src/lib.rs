//! The mutating admission webhook: decides, from a pod's annotations, what the injector needs and
//! patches the pod to run it.
//!
//! A request goes `serve` (HTTPS) -> `admission` (the AdmissionReview read, answered) ->
//! `pod` (the pod read, pruned to what the mutation looks at) -> `mutation` (what is added, or
//! why the pod is denied). `owned` is the one list of what in a pod is the webhook's, and `mesh`
//! the one list of what is a service mesh's, below both. `inject` runs the same mutation over
//! manifests offline; `certs` makes the webhook's certificates. Everything but `serve` is pure.

pub mod admission;
pub mod certs;
pub mod error;
pub mod inject;
pub mod mesh;
pub mod mutation;
pub mod owned;
pub mod pod;
pub mod policy;
pub mod serve;

pub use error::{Error, Result};
