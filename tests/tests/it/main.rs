//! The end-to-end tests, one binary, a module for each thing shown end to end: the seeds' pod and
//! every mode through the real webhook and the real injector (`e2e`), the CSI driver's manifests
//! unchanged (`csi_driver`), the IAM policy the webhook writes against IAM as moto enforces it
//! (`policy_iam`), meshed pods under a real redirect (`mesh_redirect`), and what the harness
//! itself must hold to: the images (`images`) and the pod runner (`pod_runner`).

mod csi_driver;
mod e2e;
mod images;
mod mesh_redirect;
mod pod_runner;
mod policy_iam;
