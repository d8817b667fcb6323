//! The checks of one object of the list: its type, file, mode and `failoverObject`, with the
//! rules of its names (`names`), versions (`versions`), `jmesPath` entries (`jmes_entries`)
//! and `tags` (`tags`); every problem is noted, not only the first.

use crate::annotations::{FAILOVER_REGION, REGION};
use crate::decode::Decode;
use crate::kind::ObjectType;
use crate::mode::FileMode;
use crate::object::{Failover, MAX_LABEL_NAME_BYTES, Object};
use crate::raw::{RawFailover, RawObject};
use crate::relpath::RelPath;
use crate::settings::Settings;

use super::claims::{Claim, Owner};

/// Checks one object, noting its problems and the files it claims.
pub(super) struct Check<'a> {
    pub(super) settings: &'a Settings,
    pub(super) problems: Vec<String>,
    pub(super) claims: &'a mut Vec<Claim>,
    pub(super) label: &'a str,
}

impl Check<'_> {
    pub(super) fn object(&mut self, index: usize, raw: RawObject) -> Option<Object> {
        let settings = self.settings;
        let written_type = raw.object_type.as_deref().and_then(|t| {
            t.parse::<ObjectType>()
                .map_err(|problem| self.problems.push(problem))
                .ok()
        });
        let object_type = raw.object_name.as_deref().and_then(|name| {
            self.name_type(
                "objectName",
                name,
                written_type,
                raw.object_type.is_some(),
                &settings.region,
                REGION,
            )
        });

        if let Some(t) = object_type {
            self.versions(
                "",
                t,
                raw.object_version.as_deref(),
                raw.object_version_label.as_deref(),
            );
        }

        let mode = self.mode(
            "filePermission",
            raw.file_permission.as_deref(),
            settings.default_mode,
        );
        let decode = self.decode("decode", raw.decode.as_deref());
        let file = self.file(object_type, &raw);
        let jmes_path = self.jmes_path(object_type, &raw, mode);
        let failover = raw
            .failover_object
            .as_ref()
            .and_then(|f| self.failover(f, object_type, written_type.is_some(), &raw));
        let tags = self.tags(object_type, raw.tags.as_deref());

        if !self.problems.is_empty() {
            return None;
        }
        Some(Object {
            index,
            name: raw.object_name?,
            object_type: object_type?,
            version: raw.object_version,
            version_label: raw.object_version_label,
            file: file?,
            mode,
            jmes_path: jmes_path?,
            failover,
            optional: raw.optional.unwrap_or(false),
            tags,
            decode,
        })
    }
}

impl Check<'_> {
    /// `decode` (`field` names it in messages), when it is written and known.
    pub(super) fn decode(&mut self, field: &str, written: Option<&str>) -> Option<Decode> {
        written.and_then(|text| {
            text.parse()
                .map_err(|problem| self.problems.push(format!("{field} {problem}")))
                .ok()
        })
    }

    pub(super) fn mode(
        &mut self,
        field: &str,
        written: Option<&str>,
        inherited: FileMode,
    ) -> FileMode {
        match written {
            None => inherited,
            Some(text) => text.parse().unwrap_or_else(|problem| {
                self.problems.push(format!("{field} {problem}"));
                inherited
            }),
        }
    }

    /// The object's file (or directory, for the kinds that write one).
    fn file(&mut self, object_type: Option<ObjectType>, raw: &RawObject) -> Option<RelPath> {
        let translation = self.settings.path_translation;
        let facts = object_type.map(ObjectType::facts);
        let directory = facts.is_some_and(|f| f.directory);
        let (field, source) = match (&raw.object_alias, &raw.object_name, facts) {
            (Some(alias), _, _) => ("objectAlias", alias),
            (None, _, Some(facts)) if facts.requires_alias() => {
                self.problems.push(format!(
                    "{} needs objectAlias: the directory that receives one file per {}; set \
                     objectAlias, such as objectAlias: config",
                    facts.an_object(),
                    facts.service.item()
                ));
                return None;
            }
            (None, Some(name), _) => ("objectName", name),
            (None, None, _) => return None,
        };
        match translation.file_path(source) {
            Ok(path) => {
                self.claim(path.clone(), directory, String::new());
                Some(path)
            }
            Err(problem) => {
                self.problems.push(format!(
                    "{field} {:?} gives no valid file name with path translation {:?}: \
                     {problem}; set objectAlias to a valid file name",
                    crate::jmes::shorten(source, MAX_LABEL_NAME_BYTES),
                    translation.to_string()
                ));
                None
            }
        }
    }

    fn failover(
        &mut self,
        raw_failover: &RawFailover,
        object_type: Option<ObjectType>,
        type_written: bool,
        raw: &RawObject,
    ) -> Option<Failover> {
        if let Some(facts) = object_type.map(ObjectType::facts)
            && !facts.failover_object
        {
            let whole = if facts.failover_whole {
                format!(
                    " (with {FAILOVER_REGION}, the whole object is listed and read in the \
                     failover region when the region fails)"
                )
            } else {
                String::new()
            };
            self.problems.push(format!(
                "failoverObject does not apply to {}; remove it{whole}",
                facts.an_object()
            ));
            return None;
        }
        if raw.object_alias.is_none() {
            self.problems.push(
                "failoverObject needs objectAlias on the object, so that its file has the same \
                 name whichever region the value comes from; set objectAlias"
                    .to_owned(),
            );
        }
        let failover_region = self.settings.failover_region.as_deref();
        if failover_region.is_none() {
            self.problems.push(format!(
                "failoverObject needs a failover region; set the annotation {FAILOVER_REGION}, \
                 or remove failoverObject"
            ));
        }
        let Some(name) = raw_failover.object_name.as_deref() else {
            self.problems.push(
                "failoverObject.objectName is required; set it to the name or ARN of the object \
                 in the failover region"
                    .to_owned(),
            );
            return None;
        };
        if let Some(region) = failover_region {
            let failover_type = self.name_type(
                "failoverObject.objectName",
                name,
                object_type,
                type_written,
                region,
                FAILOVER_REGION,
            );
            if let Some(t) = failover_type.or(object_type) {
                self.versions(
                    "failoverObject.",
                    t,
                    raw_failover.object_version.as_deref(),
                    raw_failover.object_version_label.as_deref(),
                );
            }
        }
        if raw_failover.object_version != raw.object_version {
            self.problems.push(format!(
                "failoverObject.objectVersion ({}) differs from objectVersion ({}); they must be \
                 the same (as in ASCP), or both left out",
                shown(raw_failover.object_version.as_deref()),
                shown(raw.object_version.as_deref()),
            ));
        }
        Some(Failover {
            name: name.to_owned(),
            version: raw_failover.object_version.clone(),
            version_label: raw_failover.object_version_label.clone(),
        })
    }

    pub(super) fn claim(&mut self, path: RelPath, directory: bool, entry: String) {
        let what = match (directory, entry.is_empty()) {
            (true, _) => format!("the directory of {}", self.label),
            (false, true) => format!("the file of {}", self.label),
            (false, false) => format!("the file of {entry} of {}", self.label),
        };
        self.claims.push(Claim {
            path,
            directory,
            owner: Owner::Object(self.label.to_owned()),
            what,
        });
    }
}

fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "not set".to_owned(), |v| format!("{v:?}"))
}
