//! The modes of the plan's files: which the app could not read under its identity, the env
//! file's (never more open than the files whose values it holds), and the `jmesPath` entries
//! whose narrower mode the object's own file undoes.

use crate::annotations::{ENV_FILE, FILE_PERMISSION};
use crate::error::Error;
use crate::mode::{AppIdentity, FileMode};
use crate::object::Object;

use super::Plan;

impl Plan {
    /// The files the app could not read under its identity (the `filePermission` rule),
    /// named by object and `jmesPath` entry, or by the `file-permission` annotation when
    /// the default mode is the one at fault.
    pub fn unreadable(&self, app: AppIdentity) -> Vec<Error> {
        let default = self.settings.default_mode;
        let mut errors = Vec::new();
        let mut default_used = false;
        if self.env_file.is_some() {
            let mode = self.env_file_mode();
            if mode == default {
                default_used = true;
            } else if let Err(problem) = mode.readable_by_app(app) {
                errors.push(self.unreadable_env_file(mode, &problem));
            }
        }
        for object in &self.objects {
            // `None` for the object's own file, else the jmesPath entry's index.
            let files = std::iter::once((object.mode, None)).chain(
                object
                    .jmes_path
                    .iter()
                    .enumerate()
                    .map(|(j, entry)| (entry.mode, Some(j))),
            );
            for (mode, entry) in files {
                if mode == default {
                    default_used = true;
                } else if let Err(problem) = mode.readable_by_app(app) {
                    // Labels are built only for a problem: this runs on every admitted pod.
                    let field = match entry {
                        None => "filePermission".to_owned(),
                        Some(j) => format!("jmesPath[{j}].filePermission"),
                    };
                    errors.push(Error::object(object.label(), format!("{field} {problem}")));
                }
            }
        }
        if default_used && let Err(problem) = default.readable_by_app(app) {
            errors.insert(
                0,
                Error::annotation(
                    FILE_PERMISSION,
                    format!("the default file mode: {problem}, or give the objects their own filePermission"),
                ),
            );
        }
        errors
    }

    /// The mode of the env file: the default mode narrowed by the mode of every file whose value
    /// can go into it, so the env file is never more open than the most restrictive of them.
    pub fn env_file_mode(&self) -> FileMode {
        self.env_file_sources()
            .fold(self.settings.default_mode, |mode, (_, own)| {
                mode.narrowed_by(own)
            })
    }

    /// The denial of an env file the app could not read, naming the files that narrowed it.
    fn unreadable_env_file(&self, mode: FileMode, problem: &str) -> Error {
        const SHOWN: usize = 5;
        let default = self.settings.default_mode;
        let narrowing: Vec<String> = self
            .env_file_sources()
            .filter(|(_, own)| default.narrowed_by(*own) != default)
            .map(|(path, own)| format!("{path} ({own})"))
            .collect();
        let mut named = narrowing[..narrowing.len().min(SHOWN)].join(", ");
        if narrowing.len() > SHOWN {
            named.push_str(&format!(" and {} more", narrowing.len() - SHOWN));
        }
        Error::annotation(
            ENV_FILE,
            format!(
                "the env file gets mode {mode}, the default mode {default} narrowed by the \
                 filePermission of the files it holds: {named}; it is never more open than \
                 the files whose values it holds, and {problem}; give those files a mode with \
                 the read access the app needs, give them a name that is not an environment \
                 variable name (objectAlias) to keep them out of the env file, or drop the \
                 env-file annotation"
            ),
        )
    }
}

/// A warning for each `jmesPath` entry of `object` whose file is closed to someone the object's
/// own file is open to: that file holds the whole value, the entry's part included, so the
/// entry's narrower mode keeps it from no one. Names and modes only, never a value.
pub(super) fn wider_own_file(object: &Object) -> Vec<String> {
    // An object that writes a directory has no file of its own (nor jmesPath entries).
    if object.object_type.facts().directory {
        return Vec::new();
    }
    let own = object.mode;
    object
        .jmes_path
        .iter()
        .enumerate()
        .filter(|(_, entry)| own.narrowed_by(entry.mode) != own)
        .map(|(j, entry)| {
            let both = own.narrowed_by(entry.mode);
            let fix = if both == entry.mode {
                format!("give the object filePermission {both} too")
            } else {
                format!("give the object filePermission {both}, no more open than either")
            };
            format!(
                "jmesPath entry {} (jmesPath[{j}]) has filePermission {}, but the object's own \
                 file {}, which holds the whole value, keeps {own}; {fix}",
                entry.file, entry.mode, object.file
            )
        })
        .collect()
}
