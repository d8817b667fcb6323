//! The test harness shared by every test of the workspace: the real tools the tests talk to
//! (moto, kubernetes-validate, podman), an HTTPS client for the webhook, and a pod runner that
//! runs an injected pod's containers on a real container runtime. Tests fail with a clear
//! message when a tool is missing.

pub mod admission;
pub mod apiserver;
pub mod eks;
pub mod https;
pub mod moto;
pub mod netns;
pub mod pod_runner;
pub mod podman;
pub mod proxy;
pub mod seed;
pub mod tools;
pub mod validate;
