//! The checked `objects` list: every rule of admission applied to the whole list at once.

use std::collections::BTreeMap;

use crate::annotations::{
    ENV_FILE, FAILOVER_REGION, FILE_PERMISSION, MAX_OBJECTS_BYTES, OBJECTS, REGION,
};
use crate::arn::Arn;
use crate::envfile;
use crate::error::{Error, Errors};
use crate::jmes;
use crate::kind::{ObjectType, Service};
use crate::mode::{AppIdentity, FileMode};
use crate::object::{Failover, JmesEntry, Object, label};
use crate::raw::{self, RawFailover, RawObject};
use crate::relpath::RelPath;
use crate::settings::Settings;
use crate::translation::PathTranslation;
use crate::yaml;

/// What the injector will write, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub settings: Settings,
    pub objects: Vec<Object>,
    pub env_file: Option<RelPath>,
    /// Things worth telling the user that do not stop the pod (unknown fields).
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

    /// The files whose values can go into the env file: top-level files named like environment
    /// variables (the injector's rule, see `envfile`). `secrets-env` sets the same ones.
    pub fn env_file_sources(&self) -> impl Iterator<Item = (&RelPath, FileMode)> {
        self.static_files()
            .filter(|(path, _)| path.is_top_level() && envfile::is_env_name(path.as_str()))
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

    /// Every file known before fetching, with its mode: objects' files and `jmesPath` files
    /// (not the files inside the directories of ssmparameterpath objects, nor the env file).
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
    let file = translation.file_path(below).map_err(|problem| {
        format!("parameter {parameter_name:?} gives no valid file name: {problem}")
    })?;
    Ok(obj.file.join(&file))
}

/// Checks one object, noting its problems and the files it claims.
struct Check<'a> {
    settings: &'a Settings,
    problems: Vec<String>,
    claims: &'a mut Vec<Claim>,
    label: &'a str,
}

impl Check<'_> {
    fn object(&mut self, index: usize, raw: RawObject) -> Option<Object> {
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
        let file = self.file(object_type, &raw);
        let jmes_path = self.jmes_path(object_type, &raw, mode);
        let failover = raw
            .failover_object
            .as_ref()
            .and_then(|f| self.failover(f, object_type, written_type.is_some(), &raw));

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
        })
    }

    /// Checks a name (`objectName` or `failoverObject.objectName`) against the object's
    /// type and the region it must be in, and returns the object's type: the one written,
    /// else the one its ARN names.
    fn name_type(
        &mut self,
        field: &str,
        name: &str,
        written: Option<ObjectType>,
        type_written: bool,
        region: &str,
        region_annotation: &str,
    ) -> Option<ObjectType> {
        if !Arn::is_arn(name) {
            if !type_written {
                self.problems.push(format!(
                    "objectType is required when {field} is not an ARN; set objectType: {}",
                    ObjectType::spellings()
                ));
            } else if let Some(t) = written
                && let Some(form) = &t.facts().name_form
                && !name.starts_with(form.starts_with)
            {
                self.problems.push(format!(
                    "{field} {name:?} of {} must be {}, such as {}",
                    t.facts().an_object(),
                    form.what,
                    form.example
                ));
            }
            return written;
        }
        let arn = match name.parse::<Arn>() {
            Ok(arn) => arn,
            Err(problem) => {
                self.problems.push(format!("{field} {problem}"));
                return written;
            }
        };
        let Some(arn_type) = arn.object_type() else {
            self.problems.push(format!(
                "{field} {name:?} is an ARN of service {:?} that names no SSM parameter or \
                 Secrets Manager secret; use an ARN like arn:aws:ssm:REGION:ACCOUNT:parameter/NAME \
                 or arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME",
                arn.service
            ));
            return written;
        };
        match written {
            Some(t) if t.facts().arn_resource.is_none() => {
                let (what, example) = t
                    .facts()
                    .name_form
                    .as_ref()
                    .map_or(("a name", ""), |form| (form.what, form.example));
                self.problems.push(format!(
                    "{field} is an ARN, but {} takes {what}; set {field} to one, such as {example}",
                    t.facts().an_object()
                ));
            }
            Some(t) if t != arn_type => self.problems.push(format!(
                "objectType {t} (the object's type) contradicts {field}, an ARN whose type \
                 is {arn_type}; make them agree (objectType may be left out when \
                 objectName is an ARN)"
            )),
            _ => {}
        }
        if !region.is_empty() && arn.region != region {
            self.problems.push(format!(
                "{field} is an ARN in region {:?}, but the region ({region_annotation}) is \
                 {region:?}; use the ARN of the object in {region:?}, or set {region_annotation} \
                 to {:?}",
                arn.region, arn.region
            ));
        }
        Some(written.unwrap_or(arn_type))
    }

    /// Version rules of the object (`prefix` empty) or of its failover
    /// (`prefix` "failoverObject.").
    fn versions(
        &mut self,
        prefix: &str,
        t: ObjectType,
        version: Option<&str>,
        label: Option<&str>,
    ) {
        let facts = t.facts();
        let denied = (version.is_some() && !facts.object_version)
            || (label.is_some() && !facts.object_version_label);
        if denied {
            // Every version field the kind denies, whichever of them was written.
            let fields: Vec<String> = [
                (facts.object_version, "objectVersion"),
                (facts.object_version_label, "objectVersionLabel"),
            ]
            .into_iter()
            .filter(|(allowed, _)| !allowed)
            .map(|(_, field)| format!("{prefix}{field}"))
            .collect();
            let (verb, them) = if fields.len() > 1 {
                ("do", "them")
            } else {
                ("does", "it")
            };
            let reads = facts
                .name_form
                .as_ref()
                .map(|form| format!(", which fetches {}", form.reads))
                .unwrap_or_default();
            self.problems.push(format!(
                "{} {verb} not apply to {}{reads}; remove {them}",
                fields.join(" and "),
                facts.an_object()
            ));
            return;
        }
        if facts.service != Service::Ssm {
            return;
        }
        if version.is_some() && label.is_some() {
            self.problems.push(format!(
                "{prefix}objectVersion and {prefix}objectVersionLabel cannot both be set \
                 on an SSM parameter (it is selected by name:version or name:label); keep one"
            ));
        }
        if let Some(version) = version
            && !is_positive_integer(version)
        {
            self.problems.push(format!(
                "{prefix}objectVersion {version:?} of an SSM parameter must be a version \
                 number such as 3"
            ));
        }
        if let Some(label) = label
            && label.starts_with(|c: char| c.is_ascii_digit())
        {
            self.problems.push(format!(
                "{prefix}objectVersionLabel {label:?} begins with a digit, which SSM \
                 labels cannot; for a version number use {prefix}objectVersion"
            ));
        }
    }

    fn mode(&mut self, field: &str, written: Option<&str>, inherited: FileMode) -> FileMode {
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
                    "{field} {source:?} gives no valid file name with path translation {:?}: \
                     {problem}; set objectAlias to a valid file name",
                    translation.to_string()
                ));
                None
            }
        }
    }

    fn jmes_path(
        &mut self,
        object_type: Option<ObjectType>,
        raw: &RawObject,
        object_mode: FileMode,
    ) -> Option<Vec<JmesEntry>> {
        if let Some(facts) = object_type.map(ObjectType::facts)
            && !facts.jmes_path
            && !raw.jmes_path.is_empty()
        {
            let single = facts
                .single()
                .map(|single| {
                    format!(
                        ", or list the {} as its own {} object with jmesPath",
                        facts.service.item(),
                        single.name
                    )
                })
                .unwrap_or_default();
            self.problems.push(format!(
                "jmesPath does not apply to {}; remove it{single}",
                facts.an_object()
            ));
            return None;
        }
        let translation = self.settings.path_translation;
        let mut entries = Vec::new();
        let mut complete = true;
        for (j, entry) in raw.jmes_path.iter().enumerate() {
            let name = match &entry.path {
                // Only the start of a long path: the name is repeated in every message.
                Some(path) => format!("jmesPath[{j}] (path {:?})", jmes::shorten(path, 64)),
                None => format!("jmesPath[{j}]"),
            };
            let before = self.problems.len();
            match &entry.path {
                None => self.problems.push(format!(
                    "{name}: path is required; set it to a JMESPath expression over the JSON \
                     value, such as username"
                )),
                Some(path) => {
                    if let Some(problem) = jmes::check(path) {
                        self.problems.push(format!("{name}: {problem}"));
                    } else if let Err(err) = jmes::compile(path) {
                        self.problems.push(format!(
                            "{name}: the JMESPath expression {path:?} does not compile: {} at \
                             column {}; fix the expression (see https://jmespath.org)",
                            err.reason, err.column
                        ));
                    }
                }
            }
            let file = match &entry.object_alias {
                None => {
                    self.problems.push(format!(
                        "{name}: objectAlias is required, it names the file the result goes to; \
                         set objectAlias, such as objectAlias: USERNAME"
                    ));
                    None
                }
                Some(alias) => match translation.file_path(alias) {
                    Ok(file) => {
                        self.claim(file.clone(), false, name.clone());
                        Some(file)
                    }
                    Err(problem) => {
                        self.problems.push(format!(
                            "{name}: objectAlias {alias:?} gives no valid file name with path \
                             translation {:?}: {problem}; set objectAlias to a valid file name",
                            translation.to_string()
                        ));
                        None
                    }
                },
            };
            let mode = self.mode(
                &format!("{name}: filePermission"),
                entry.file_permission.as_deref(),
                object_mode,
            );
            match (&entry.path, file) {
                (Some(path), Some(file)) if self.problems.len() == before => {
                    entries.push(JmesEntry {
                        path: path.clone(),
                        file,
                        mode,
                    })
                }
                _ => complete = false,
            }
        }
        complete.then_some(entries)
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
            self.problems.push(format!(
                "failoverObject does not apply to {}; remove it",
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

    fn claim(&mut self, path: RelPath, directory: bool, entry: String) {
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

fn is_positive_integer(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u64>().is_ok_and(|n| n > 0)
}

/// A path in the mount directory that something will write.
struct Claim {
    path: RelPath,
    /// The directory of an object whose kind writes one, filled at run time.
    directory: bool,
    owner: Owner,
    /// How messages name it, e.g. `the file of objects[0] (objectName "a")`.
    what: String,
}

enum Owner {
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
fn reserved(claims: &[Claim]) -> Vec<Error> {
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
fn collisions(claims: &[Claim]) -> Vec<Error> {
    let mut errors = Vec::new();
    let mut first: BTreeMap<&RelPath, &Claim> = BTreeMap::new();
    for claim in claims {
        match first.get(&claim.path) {
            Some(earlier) => errors.push(claim.error(format!(
                "{} is {:?}, which is also {}; every file needs its own name: change an \
                 objectAlias (or the env-file name)",
                claim.what,
                claim.path.as_str(),
                earlier.what
            ))),
            None => {
                first.insert(&claim.path, claim);
            }
        }
    }
    for claim in claims {
        let Some((parent, holder)) = claim
            .path
            .parents()
            .find_map(|parent| first.get(&parent).map(|holder| (parent, *holder)))
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
                parent.as_str()
            )
        } else {
            format!(
                "{} is {:?}, which needs {:?} to be a directory, but that is {}; change one of \
                 the objectAlias values",
                claim.what,
                claim.path.as_str(),
                parent.as_str(),
                holder.what
            )
        };
        errors.push(claim.error(message));
    }
    errors
}
