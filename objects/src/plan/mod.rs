//! The checked `objects` list: every rule of admission applied to the whole list at once.
//! [`parse`] reads the annotation and checks each object (`check`, with its names, versions
//! and `jmesPath` entries in modules of their own), then the paths the objects claim (`claims`);
//! the [`Plan`] it gives answers for its files (`files`) and their modes (`modes`).

mod check;
mod claims;
mod files;
mod jmes_entries;
mod modes;
mod names;
mod tags;
mod versions;

use crate::annotations::{MAX_OBJECTS_BYTES, OBJECTS};
use crate::error::{Error, Errors};
use crate::object::{Object, label};
use crate::raw;
use crate::relpath::RelPath;
use crate::settings::Settings;
use crate::yaml;

use check::Check;
use claims::{Claim, Owner, collisions, reserved};
pub use files::{path_parameter_file, prefix_secret_file};
pub use tags::{MAX_TAG_KEY_CHARS, MAX_TAG_VALUE_CHARS, MAX_TAGS};

/// What the injector will write, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub settings: Settings,
    pub objects: Vec<Object>,
    pub env_file: Option<RelPath>,
    /// Things worth telling the user that do not stop the pod (unknown fields, a `jmesPath`
    /// entry narrower than its object's own file).
    pub warnings: Vec<String>,
}

/// Parses and checks the `secrets-injector.io/objects` annotation under `settings`,
/// reporting every problem found (with the settings' own), not only the first.
pub fn parse(objects_annotation: &str, settings: Settings) -> Result<Plan, Errors> {
    let mut errors = settings.validate();
    if objects_annotation.len() > MAX_OBJECTS_BYTES {
        errors.push(Error::annotation(
            OBJECTS,
            format!(
                "is {} bytes, over the limit of {MAX_OBJECTS_BYTES} bytes (64 KiB); split the \
                 objects across pods, or fetch many parameters at once with objectType: \
                 ssmparameterpath",
                objects_annotation.len()
            ),
        ));
        return Err(Errors(errors));
    }
    let items = match yaml::parse_list(objects_annotation) {
        Ok(items) => items,
        Err(problem) => {
            errors.push(Error::annotation(OBJECTS, problem));
            return Err(Errors(errors));
        }
    };
    let env_file = settings.env_file_path().ok().flatten();

    let mut warnings = Vec::new();
    let mut objects = Vec::new();
    let mut claims = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let read = raw::read_object(item);
        let label = label(index, read.object.object_name.as_deref());
        warnings.extend(
            read.warnings
                .into_iter()
                .map(|warning| format!("annotation {OBJECTS}: {label}: {warning}")),
        );
        let mut check = Check {
            settings: &settings,
            problems: read.problems,
            claims: &mut claims,
            label: &label,
        };
        let object = check.object(index, read.object);
        if let Some(object) = &object {
            warnings.extend(
                modes::wider_own_file(object)
                    .into_iter()
                    .map(|warning| format!("annotation {OBJECTS}: {label}: {warning}")),
            );
        }
        errors.extend(
            check
                .problems
                .into_iter()
                .map(|p| Error::object(label.clone(), p)),
        );
        objects.extend(object);
    }
    if let Some(env_file) = &env_file {
        claims.push(Claim {
            path: env_file.clone(),
            directory: false,
            owner: Owner::EnvFile,
            what: "the env file".to_owned(),
        });
    }
    errors.extend(collisions(&claims));
    errors.extend(reserved(&claims));

    if errors.is_empty() {
        Ok(Plan {
            settings,
            objects,
            env_file,
            warnings,
        })
    } else {
        Err(Errors(errors))
    }
}
