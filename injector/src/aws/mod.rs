//! Everything that talks to AWS: the clients of a region, what an SDK error means, and one
//! module per service (Secrets Manager's prefix objects in a module of their own). `fetch`
//! decides what to call; these modules make the calls.

mod classify;
mod clients;
mod https;
mod paging;
pub mod secrets_by_prefix;
pub mod secretsmanager;
pub mod ssm;
mod trust;

pub use classify::{classify, classify_service, denied_resource, partition};
pub use clients::{AssumeRole, ChainedRole, Clients, missing_identity};
pub use trust::https_client;
