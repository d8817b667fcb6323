//! The object model shared by the webhook and the injector: the pod annotations, the
//! `secrets-injector.io/objects` list (ASCP's `objects` syntax), its validation, and the
//! files it gives. Pure: no I/O.

pub mod annotations;
pub mod arn;
pub mod assume_role;
pub mod class;
pub mod decode;
pub mod envfile;
pub mod error;
pub mod jmes;
pub mod kind;
pub mod mode;
pub mod object;
pub mod plan;
mod raw;
pub mod refresh;
pub mod relpath;
pub mod settings;
pub mod template;
pub mod translation;
mod yaml;

pub use arn::Arn;
pub use error::{Error, Errors};
pub use kind::{KindFacts, ObjectType};
pub use mode::{AppIdentity, FileMode, Owner};
pub use object::{Failover, JmesEntry, Object};
pub use plan::{Plan, parse, path_parameter_file, prefix_secret_file};
pub use relpath::RelPath;
pub use settings::Settings;
pub use translation::PathTranslation;
