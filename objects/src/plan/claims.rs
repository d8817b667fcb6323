//! The paths in the mount directory the objects and the env file claim, and the claims that
//! cannot all be written: one path twice, a path inside another's file or directory, or a name
//! the volume's layout keeps for itself.

use std::collections::BTreeMap;

use crate::annotations::ENV_FILE;
use crate::error::Error;
use crate::relpath::RelPath;

/// A path in the mount directory that something will write.
pub(super) struct Claim {
    pub(super) path: RelPath,
    /// The directory of an object whose kind writes one, filled at run time.
    pub(super) directory: bool,
    pub(super) owner: Owner,
    /// How messages name it, e.g. `the file of objects[0] (objectName "a")`.
    pub(super) what: String,
}

pub(super) enum Owner {
    Object(String),
    EnvFile,
}

impl Claim {
    fn error(&self, message: String) -> Error {
        match &self.owner {
            Owner::Object(label) => Error::object(label.clone(), message),
            Owner::EnvFile => Error::annotation(ENV_FILE, message),
        }
    }
}

/// A claim whose top-level name starts with `..`: the volume's layout keeps those names for the
/// directory the files live in and the link to it, which a file of that name would replace.
pub(super) fn reserved(claims: &[Claim]) -> Vec<Error> {
    claims
        .iter()
        .filter(|claim| claim.path.is_reserved())
        .map(|claim| {
            let fix = match claim.owner {
                Owner::Object(_) => "set objectAlias to a name that does not start with \"..\"",
                Owner::EnvFile => "choose an env-file name that does not start with \"..\"",
            };
            claim.error(format!(
                "{} is {:?}, which starts with \"..\": names starting with \"..\" are reserved \
                 for the volume's own entries (..data and the timestamped directory an update \
                 swaps in, as in ConfigMap volumes); {fix}",
                claim.what,
                claim.path.as_str()
            ))
        })
        .collect()
}

/// Two claims on one path, or a path inside another claim's file or directory.
pub(super) fn collisions(claims: &[Claim]) -> Vec<Error> {
    let mut errors = Vec::new();
    let mut first: BTreeMap<&str, &Claim> = BTreeMap::new();
    for claim in claims {
        match first.get(claim.path.as_str()) {
            Some(earlier) => errors.push(claim.error(format!(
                "{} is {:?}, which is also {}; every file needs its own name: change an \
                 objectAlias (or the env-file name)",
                claim.what,
                claim.path.as_str(),
                earlier.what
            ))),
            None => {
                first.insert(claim.path.as_str(), claim);
            }
        }
    }
    for claim in claims {
        let Some((parent, holder)) = claim
            .path
            .parents()
            .find_map(|parent| first.get(parent).map(|holder| (parent, *holder)))
        else {
            continue;
        };
        let message = if holder.directory {
            format!(
                "{} is {:?}, inside {} ({:?}), whose files come from the parameters under its \
                 path; choose a name outside that directory",
                claim.what,
                claim.path.as_str(),
                holder.what,
                parent
            )
        } else {
            format!(
                "{} is {:?}, which needs {:?} to be a directory, but that is {}; change one of \
                 the objectAlias values",
                claim.what,
                claim.path.as_str(),
                parent,
                holder.what
            )
        };
        errors.push(claim.error(message));
    }
    errors
}
