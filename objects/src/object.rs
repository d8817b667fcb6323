//! One validated item of the `objects` list.

use std::fmt;
use std::str::FromStr;

use crate::mode::FileMode;
use crate::relpath::RelPath;

/// What an object names, and so which API fetches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectType {
    /// An SSM Parameter Store parameter (`GetParameters`).
    SsmParameter,
    /// A Secrets Manager secret (`GetSecretValue`).
    SecretsManager,
    /// Every parameter under an SSM path (`GetParametersByPath`), an extension of ASCP.
    SsmParameterPath,
}

impl ObjectType {
    pub const ALL: [ObjectType; 3] = [
        Self::SsmParameter,
        Self::SecretsManager,
        Self::SsmParameterPath,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SsmParameter => "ssmparameter",
            Self::SecretsManager => "secretsmanager",
            Self::SsmParameterPath => "ssmparameterpath",
        }
    }

    /// Whether SSM fetches it (versions are `name:3` and labels `name:label`).
    pub fn is_ssm(self) -> bool {
        matches!(self, Self::SsmParameter | Self::SsmParameterPath)
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ObjectType {
    type Err = String;

    /// The exact spelling (case matters, as in ASCP).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "objectType {s:?} is not known (spelling and case matter); use ssmparameter, \
                     secretsmanager or ssmparameterpath"
                )
            })
    }
}

/// One item of `secrets-injector.io/objects`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Position in the list, from 0.
    pub index: usize,
    /// `objectName` as written: a name, a path (ssmparameterpath) or an ARN.
    pub name: String,
    pub object_type: ObjectType,
    /// `objectVersion`: a Secrets Manager `VersionId` or an SSM version number.
    pub version: Option<String>,
    /// `objectVersionLabel`: a Secrets Manager `VersionStage` or an SSM label.
    pub version_label: Option<String>,
    /// Where the value goes; for [`ObjectType::SsmParameterPath`], the directory of its files.
    pub file: RelPath,
    pub mode: FileMode,
    pub jmes_path: Vec<JmesEntry>,
    pub failover: Option<Failover>,
    /// A missing object is logged instead of failing the pod.
    pub optional: bool,
}

impl Object {
    /// How messages name the object: `objects[3] (objectName "/app/db")`.
    pub fn label(&self) -> String {
        label(self.index, Some(&self.name))
    }
}

/// How messages name item `index`, with its `objectName` when it has one.
pub fn label(index: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("objects[{index}] (objectName {name:?})"),
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
    fn object_types_are_spelled_as_in_ascp() {
        assert_eq!(ObjectType::SsmParameter.to_string(), "ssmparameter");
        assert_eq!(ObjectType::SecretsManager.to_string(), "secretsmanager");
        assert_eq!(ObjectType::SsmParameterPath.to_string(), "ssmparameterpath");
        for t in ObjectType::ALL {
            assert_eq!(t.to_string().parse::<ObjectType>(), Ok(t));
        }
    }

    #[test]
    fn object_type_case_matters() {
        for bad in ["SSMParameter", "SecretsManager", "ssm", "secret", ""] {
            let err = bad.parse::<ObjectType>().unwrap_err();
            assert!(
                err.contains("ssmparameter, secretsmanager or ssmparameterpath"),
                "{err}"
            );
        }
    }

    #[test]
    fn labels_name_index_and_object_name() {
        assert_eq!(
            label(3, Some("/app/db")),
            "objects[3] (objectName \"/app/db\")"
        );
        assert_eq!(label(0, None), "objects[0]");
    }
}
