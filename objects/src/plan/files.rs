//! The files a plan writes: those known before fetching, those the env file takes values
//! from, and the name of each value found under a directory object.

use crate::envfile;
use crate::mode::FileMode;
use crate::object::Object;
use crate::relpath::RelPath;
use crate::translation::PathTranslation;

use super::Plan;

impl Plan {
    /// The files whose values can go into the env file: top-level files named like environment
    /// variables (the injector's rule, see `envfile`). `secrets-env` sets the same ones.
    pub fn env_file_sources(&self) -> impl Iterator<Item = (&RelPath, FileMode)> {
        self.static_files()
            .filter(|(path, _)| path.is_top_level() && envfile::is_env_name(path.as_str()))
    }

    /// Every file known before fetching, with its mode: objects' files and `jmesPath` files
    /// (not the files inside the directory of an object whose kind writes one, such as
    /// ssmparameterpath, nor the env file).
    pub fn static_files(&self) -> impl Iterator<Item = (&RelPath, FileMode)> {
        self.objects.iter().flat_map(|object| {
            let own =
                (!object.object_type.facts().directory).then_some((&object.file, object.mode));
            own.into_iter().chain(
                object
                    .jmes_path
                    .iter()
                    .map(|entry| (&entry.file, entry.mode)),
            )
        })
    }
}

/// Where parameter `parameter_name`, found under ssmparameterpath object `obj`, is written:
/// its name below `objectName`, translated, inside the object's directory.
pub fn path_parameter_file(
    obj: &Object,
    translation: &PathTranslation,
    parameter_name: &str,
) -> Result<RelPath, String> {
    let base = obj.name.trim_end_matches('/');
    let below = parameter_name
        .strip_prefix(base)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|rest| !rest.is_empty())
        .ok_or_else(|| {
            format!(
                "parameter {parameter_name:?} is not below the path {:?}",
                obj.name
            )
        })?;
    translation
        .file_path(below)
        .and_then(|file| obj.file.join(&file))
        .map_err(|problem| {
            format!("parameter {parameter_name:?} gives no valid file name: {problem}")
        })
}

/// Where secret `secret_name`, found under secretsmanagerpath object `obj`, is written: its name
/// after the prefix `objectName` (and after the `/` that follows a prefix not ending in one),
/// translated, inside the object's directory. `prod/payments/db/user` under `prod/payments/`
/// (or `prod/payments`) gives `db_user` with the default translation.
pub fn prefix_secret_file(
    obj: &Object,
    translation: &PathTranslation,
    secret_name: &str,
) -> Result<RelPath, String> {
    let rest = secret_name.strip_prefix(obj.name.as_str()).ok_or_else(|| {
        format!(
            "secret {secret_name:?} does not start with the prefix {:?}",
            obj.name
        )
    })?;
    let below = rest.strip_prefix('/').unwrap_or(rest);
    if below.is_empty() {
        return Err(format!(
            "secret {secret_name:?} is named exactly the prefix {:?}, so nothing of its name is \
             left for its file; end objectName with '/' to read only the secrets below it",
            obj.name
        ));
    }
    translation
        .file_path(below)
        .and_then(|file| obj.file.join(&file))
        .map_err(|problem| format!("secret {secret_name:?} gives no valid file name: {problem}"))
}
