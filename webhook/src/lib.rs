//! The mutating admission webhook: decides, from a pod's annotations, what the injector needs and
//! patches the pod to run it. The logic (`mutate`, `review`, `inject`) is pure; `server` is the
//! thin HTTPS transport around it.

pub mod admission;
pub mod certs;
pub mod config;
pub mod error;
pub mod inject;
pub mod log_buffer;
pub mod metrics;
pub mod mutate;
pub mod patch;
pub mod plan;
pub mod plan_cache;
pub mod pod;
pub mod policy;
pub mod pruned;
pub mod quantity;
pub mod resources;
pub mod review;
pub mod server;
pub mod telemetry;
pub mod tls;

pub use error::{Error, Result};
