//! One validated item of the `objects` list.

use std::collections::BTreeMap;

pub use crate::decode::Decode;
pub use crate::kind::ObjectType;
use crate::mode::FileMode;
use crate::relpath::RelPath;

/// One item of `secrets-injector.io/objects`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Position in the list, from 0.
    pub index: usize,
    /// `objectName` as written: a name, a path (ssmparameterpath), a name prefix
    /// (secretsmanagerpath) or an ARN.
    pub name: String,
    pub object_type: ObjectType,
    /// `objectVersion`: a Secrets Manager `VersionId` or an SSM version number.
    pub version: Option<String>,
    /// `objectVersionLabel`: a Secrets Manager `VersionStage` or an SSM label.
    pub version_label: Option<String>,
    /// Where the value goes; for the kinds that write a directory
    /// ([`ObjectType::SsmParameterPath`], [`ObjectType::SecretsManagerPath`]), the directory of
    /// its files.
    pub file: RelPath,
    pub mode: FileMode,
    pub jmes_path: Vec<JmesEntry>,
    pub failover: Option<Failover>,
    /// A missing object is logged instead of failing the pod.
    pub optional: bool,
    /// `tags` (secretsmanagerpath only): every value found carries each of these tags with
    /// exactly this value. Empty when not set.
    pub tags: BTreeMap<String, String>,
    /// `decode`: how the value becomes the bytes of the object's own file (and of each file of a
    /// path object); its `jmesPath` entries read the value as fetched.
    pub decode: Option<Decode>,
}

impl Object {
    /// How messages name the object: `objects[3] (objectName "/app/db")`.
    pub fn label(&self) -> String {
        label(self.index, Some(&self.name))
    }
}

/// The most bytes of a name a label shows: it is repeated in each of the item's problems, and
/// the index names the item anyway.
pub const MAX_LABEL_NAME_BYTES: usize = 128;

/// How messages name item `index`, with its `objectName` when it has one (its start, when it is
/// longer than [`MAX_LABEL_NAME_BYTES`]).
pub fn label(index: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!(
            "objects[{index}] (objectName {:?})",
            crate::jmes::shorten(name, MAX_LABEL_NAME_BYTES)
        ),
        None => format!("objects[{index}]"),
    }
}

/// One `jmesPath` entry: the expression's result goes to its own file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JmesEntry {
    /// The expression text, compiled again where it is used.
    pub path: String,
    pub file: RelPath,
    pub mode: FileMode,
    /// `decode`: how the expression's result becomes the file's bytes.
    pub decode: Option<Decode>,
}

impl JmesEntry {
    /// The compiled expression, within the bounds of [`crate::jmes`]. Plans only hold entries
    /// whose expression compiled.
    pub fn compile(&self) -> Result<jmespath::Expression<'static>, jmespath::JmespathError> {
        crate::jmes::compile(&self.path)
    }
}

/// `failoverObject`: what to fetch in the failover region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failover {
    pub name: String,
    pub version: Option<String>,
    pub version_label: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_index_and_object_name() {
        assert_eq!(
            label(3, Some("/app/db")),
            "objects[3] (objectName \"/app/db\")"
        );
        assert_eq!(label(0, None), "objects[0]");
        let long = "é".repeat(100);
        assert_eq!(
            label(1, Some(&long)),
            format!("objects[1] (objectName \"{}…\")", "é".repeat(64))
        );
    }
}
