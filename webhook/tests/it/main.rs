//! The webhook's integration tests, one binary, with a module for each room of the code:
//! `admission` (the AdmissionReview read and answered), `mutation` (what the webhook adds to a pod
//! and why it denies one, by capability), `pod` (the pod reader), `serve` (the HTTPS server, run
//! as a process: admission, classes, limits, rotation, load, faults), `policy` (`webhook
//! policy`); `support` holds what they share.

mod admission;
mod mutation;
mod pod;
mod policy;
mod serve;
mod support;
