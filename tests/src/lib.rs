//! The test harness shared by every test of the workspace: the real tools the tests talk to
//! (moto, kubernetes-validate), an HTTPS client for the webhook, and a kubelet-like runner for
//! the injected init container. Tests fail with a clear message when a tool is missing.

pub mod admission;
pub mod eks;
pub mod https;
pub mod kubelet;
pub mod moto;
pub mod proxy;
pub mod seed;
pub mod tools;
pub mod validate;
