//! The AdmissionReview, request in, answer out: `review` reads the `admission.k8s.io/v1` body
//! the API server sends and writes the answer; `respond` decides the answer for one request;
//! `ephemeral` judges the ephemeral containers `kubectl debug` adds to a running pod.
//!
//! The review types are hand-written rather than kube-core's `AdmissionReview<DynamicObject>`:
//! read in one pass that borrows from the body, a pod being created is read pruned as it goes by,
//! where kube-core's flattened `DynamicObject` buffered the whole pod first; that took a
//! mutating review from 189 to 62-71 µs of CPU (BENCHMARKS.md, "Webhook"). kube-core stays a
//! dev-dependency: `webhook/tests/it/admission/kube_core.rs` holds these types to it, reading every
//! fixture and corpus review and every answer the same way.

mod classes;
mod ephemeral;
mod respond;
mod review;

pub use classes::class_names;
pub use ephemeral::MAX_ENTRIES as MAX_EPHEMERAL_REVIEW_ENTRIES;
pub(crate) use respond::template_location;
pub use respond::{Outcome, Verdict, respond};
pub use review::{
    API_VERSION, Denial, InjectorImages, KIND, Kind, Object, Operation, PEEK_BYTES, Refusal,
    Request, Response, injector_images, parse, parse_with, peek_uid,
};
