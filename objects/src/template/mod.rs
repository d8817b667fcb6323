//! The `secrets-injector.io/templates` annotation (SPEC "Templates: files rendered from several
//! values"): files rendered with minijinja from the values the pod's objects fetch. The one place
//! both binaries use the engine, so the rules are the same in both: the webhook checks a pod's
//! templates with [`parse`] (and [`Templates::unreadable`]); the injector parses the same text,
//! [`Templates::compile`]s it once and [`Compiled::render`]s it after every fetch.
//!
//! `read` reads the list's items, `engine` holds every use of minijinja (the environment,
//! compiling, the checks that read a compiled template, rendering, the words of a failed render),
//! `filters` the filters beyond minijinja's builtins, `context` what a template sees.

mod bounds;
mod context;
mod engine;
mod filters;
mod read;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::annotations::{FILE_PERMISSION, MAX_OBJECTS_AND_TEMPLATES_BYTES, OBJECTS, TEMPLATES};
use crate::envfile::is_env_name;
use crate::error::{Error, Errors, MAX_LISTED};
use crate::mode::{AppIdentity, FileMode};
use crate::object::MAX_LABEL_NAME_BYTES;
use crate::plan::Plan;
use crate::relpath::{RESERVED_PREFIX, RelPath};
use crate::yaml;

/// The most templates one pod may have.
pub const MAX_TEMPLATES: usize = 32;
/// The largest file a template may write.
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;
/// The work one render may do (minijinja's fuel: one per instruction, one per 64 bytes of text
/// made). A render that needs more fails: loops without end, `"x" * 10**9`. A template of a
/// config file over hundreds of values needs a few thousand.
pub const FUEL: u64 = 250_000;
/// How deep calls and recursive loops may nest (minijinja allows 500, which a debug build's
/// stack may not hold).
pub const RECURSION_LIMIT: usize = 64;
/// The longest a delimiter may be: a few characters are all one needs, and the lexer compares
/// them at every position of the text.
pub const MAX_DELIMITER_BYTES: usize = 8;
/// The name of the map of every file; no file may take it when a pod has templates.
pub const RESERVED_NAME: &str = "files";

pub use bounds::{MAX_BLOCK_DEPTH, MAX_OPERATORS};

/// One checked item of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Position in the list, from 0.
    pub index: usize,
    /// The file it writes: one top-level name.
    pub name: RelPath,
    pub mode: FileMode,
    pub source: String,
    /// Replacements of `{{` and `}}`.
    pub delimiters: Option<(String, String)>,
}

impl Template {
    /// How messages name it: `templates[1] (name "config.yaml")`.
    pub fn label(&self) -> String {
        label(self.index, Some(self.name.as_str()))
    }
}

/// As [`crate::object::label`], a long name by its start.
fn label(index: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!(
            "templates[{index}] (name {:?})",
            crate::jmes::shorten(name, MAX_LABEL_NAME_BYTES)
        ),
        None => format!("templates[{index}]"),
    }
}

/// The checked list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Templates {
    pub items: Vec<Template>,
    /// Unknown fields, named.
    pub warnings: Vec<String>,
}

/// Parses and checks the annotation: its size together with the objects annotation
/// (`objects_bytes`), its YAML, at most [`MAX_TEMPLATES`] items, each item's fields, name and
/// mode, and each template's syntax, filters and tests; then, against `plan` (the files the pod's
/// objects write), that every variable a template reads is `files` or one of those files, and
/// that no name is taken twice. Without a plan (the objects are invalid themselves) only the
/// templates' own rules are checked. Every problem is reported, each naming the template and,
/// for the text, its line.
pub fn parse(text: &str, objects_bytes: usize, plan: Option<&Plan>) -> Result<Templates, Errors> {
    let total = text.len().saturating_add(objects_bytes);
    if total > MAX_OBJECTS_AND_TEMPLATES_BYTES {
        return Err(Error::annotation(
            TEMPLATES,
            format!(
                "is {} bytes and the annotation {OBJECTS} {objects_bytes}: {total} together, over \
                 the limit of {MAX_OBJECTS_AND_TEMPLATES_BYTES} bytes (64 KiB) for both; move \
                 the long constant text of a template into a parameter or secret of its own, or \
                 split the pod",
                text.len()
            ),
        )
        .into());
    }
    let items = yaml::parse_items(text, &read::LIST)
        .map_err(|problem| Errors::from(Error::annotation(TEMPLATES, problem)))?;
    if items.len() > MAX_TEMPLATES {
        return Err(Error::annotation(
            TEMPLATES,
            format!(
                "lists {} templates, over the limit of {MAX_TEMPLATES}; render several files' \
                 worth of text in fewer templates, or split the pod",
                items.len()
            ),
        )
        .into());
    }
    let known = plan.map(Known::of);
    let default_mode = plan.map_or(FileMode::DEFAULT, |p| p.settings.default_mode);
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut templates = Vec::new();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let reads: Vec<read::Read> = items.iter().map(read::read_template).collect();
    for (index, read) in reads.iter().enumerate() {
        if let Some(name) = &read.raw.name {
            names.entry(name.clone()).or_insert(index);
        }
    }
    for (index, read) in reads.into_iter().enumerate() {
        let label = label(index, read.raw.name.as_deref());
        warnings.extend(
            read.warnings
                .iter()
                .map(|w| format!("annotation {TEMPLATES}: {label}: {w}")),
        );
        let mut problems = read.problems;
        let raw = read.raw;
        let name = raw
            .name
            .as_deref()
            .and_then(|name| check_name(name, index, &names, known.as_ref(), &mut problems));
        let mode = match raw.file_permission.as_deref() {
            None => default_mode,
            Some(text) => text.parse().unwrap_or_else(|problem| {
                problems.push(format!("filePermission {problem}"));
                default_mode
            }),
        };
        if let Some(source) = &raw.template {
            let delimiters = raw
                .delimiters
                .as_ref()
                .map(|(s, e)| (s.as_str(), e.as_str()));
            let checked = engine::check(source, delimiters);
            problems.extend(checked.problems);
            if let Some(known) = &known {
                problems.extend(unknown_variables(
                    &checked.variables,
                    &checked.globals,
                    known,
                    &names,
                ));
            }
        }
        if problems.is_empty()
            && let (Some(name), Some(source)) = (name, raw.template)
        {
            templates.push(Template {
                index,
                name,
                mode,
                source,
                delimiters: raw.delimiters,
            });
        }
        errors.extend(
            problems
                .into_iter()
                .map(|p| Error::annotation(TEMPLATES, format!("{label}: {p}"))),
        );
    }
    if let Some(known) = &known
        && known.files.contains(RESERVED_NAME)
    {
        errors.push(Error::annotation(
            OBJECTS,
            format!(
                "a file is named {RESERVED_NAME:?}, the name templates use for the map of every \
                 file; give that object another objectAlias"
            ),
        ));
    }
    if errors.is_empty() {
        Ok(Templates {
            items: templates,
            warnings,
        })
    } else {
        Err(Errors(errors))
    }
}

/// What the checks know of the files the objects write.
struct Known {
    /// Every top-level name the objects and the env file take (a directory's included).
    files: BTreeSet<String>,
    /// The top-level files a template may read by name.
    identifiers: BTreeSet<String>,
}

impl Known {
    fn of(plan: &Plan) -> Known {
        let mut files = BTreeSet::new();
        let mut identifiers = BTreeSet::new();
        for (path, _) in plan.static_files() {
            let top = path.components().next().unwrap_or_default();
            files.insert(top.to_owned());
            if path.is_top_level() && context::is_identifier(top) {
                identifiers.insert(top.to_owned());
            }
        }
        for object in &plan.objects {
            if object.object_type.facts().directory {
                files.insert(
                    object
                        .file
                        .components()
                        .next()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
        if let Some(env) = &plan.env_file {
            files.insert(env.components().next().unwrap_or_default().to_owned());
        }
        Known { files, identifiers }
    }
}

/// The name's own rules, and that no other file takes it.
fn check_name(
    name: &str,
    index: usize,
    names: &BTreeMap<String, usize>,
    known: Option<&Known>,
    problems: &mut Vec<String>,
) -> Option<RelPath> {
    let path = match RelPath::file(name) {
        Ok(path) => path,
        Err(problem) => {
            problems.push(format!(
                "name: {problem}; a template writes one file directly in the mount directory, \
                 named without '/'"
            ));
            return None;
        }
    };
    let before = problems.len();
    if path.is_reserved() {
        problems.push(format!(
            "name {name:?} starts with {RESERVED_PREFIX:?}: names starting with \"..\" are \
             reserved for the volume's own entries (..data and the timestamped directory an \
             update swaps in); choose another name"
        ));
    }
    if name == RESERVED_NAME {
        problems.push(format!(
            "name {RESERVED_NAME:?} is reserved: templates see the map of every file under that \
             name; choose another name"
        ));
    }
    if let Some(&first) = names.get(name)
        && first != index
    {
        problems.push(format!(
            "name {name:?} is also the name of templates[{first}]; every file needs its own name"
        ));
    }
    if known.is_some_and(|known| known.files.contains(name)) {
        problems.push(format!(
            "name {name:?} is also a file (or directory) the objects or the env file write; \
             every file needs its own name: choose another name, or change an objectAlias"
        ));
    }
    (problems.len() == before).then_some(path)
}

/// A problem for each variable a template reads that is neither `files`, one of minijinja's
/// global functions, nor a top-level file the objects write whose name is an identifier: the
/// first [`MAX_LISTED`], then how many more.
fn unknown_variables(
    variables: &BTreeMap<String, Option<usize>>,
    globals: &BTreeSet<String>,
    known: &Known,
    templates: &BTreeMap<String, usize>,
) -> Vec<String> {
    const SHOWN: usize = 8;
    let mut problems = Vec::new();
    let mut more = 0;
    for (name, line) in variables {
        if name == RESERVED_NAME || globals.contains(name) || known.identifiers.contains(name) {
            continue;
        }
        if problems.len() == MAX_LISTED {
            more += 1;
            continue;
        }
        let at = line.map(|l| format!("line {l}: ")).unwrap_or_default();
        if let Some(other) = templates.get(name) {
            problems.push(format!(
                "{at}{name} is the file of templates[{other}], and a template cannot read \
                 another template's output; build it from the values that template reads"
            ));
            continue;
        }
        let mut some: Vec<&str> = known
            .identifiers
            .iter()
            .map(String::as_str)
            .take(SHOWN)
            .collect();
        if known.identifiers.len() > SHOWN {
            some.push("…");
        }
        let which = if some.is_empty() {
            "no file of the objects has a name that is an identifier".to_owned()
        } else {
            format!("the files that are: {}", some.join(", "))
        };
        let hint = if known.files.contains(name) {
            format!(
                "; {name:?} is a directory or a file below one: read it through files, such as \
                 files[{name:?}]"
            )
        } else {
            String::new()
        };
        problems.push(format!(
            "{at}{name} is not a file the objects write{hint}; a template reads files \
             (files[\"NAME\"], every file the objects write) and, by name, the top-level files \
             whose name is an identifier ({which})"
        ));
    }
    if more > 0 {
        problems.push(format!(
            "and {more} more names that are not files the objects write"
        ));
    }
    problems
}

impl Templates {
    /// The templates' files the app could not read under its identity (the `filePermission`
    /// rule of objects), and the env file when the templates narrow it so far that the app could
    /// not read it. Call it after [`Plan::unreadable`] found nothing.
    pub fn unreadable(&self, plan: &Plan, app: AppIdentity) -> Vec<Error> {
        let default = plan.settings.default_mode;
        let mut errors = Vec::new();
        let mut default_used = false;
        for template in &self.items {
            if template.mode == default {
                default_used = true;
            } else if let Err(problem) = template.mode.readable_by_app(app) {
                errors.push(Error::annotation(
                    TEMPLATES,
                    format!("{}: filePermission {problem}", template.label()),
                ));
            }
        }
        if default_used && let Err(problem) = default.readable_by_app(app) {
            errors.push(Error::annotation(
                FILE_PERMISSION,
                format!("the default file mode: {problem}, or give the templates their own filePermission"),
            ));
        }
        if plan.env_file.is_some() {
            let mode = self.env_file_mode(plan);
            if mode != plan.env_file_mode()
                && let Err(problem) = mode.readable_by_app(app)
            {
                errors.push(Error::annotation(
                    TEMPLATES,
                    format!(
                        "the env file gets mode {mode}, narrowed by the filePermission of the \
                         templates whose files it holds, and {problem}; give those templates a \
                         mode with the read access the app needs, or a name that is not an \
                         environment variable name"
                    ),
                ));
            }
        }
        errors
    }

    /// The env file's mode: the plan's, narrowed by the mode of every template whose file it
    /// holds (a top-level name that is an environment variable name).
    pub fn env_file_mode(&self, plan: &Plan) -> FileMode {
        self.items
            .iter()
            .filter(|t| is_env_name(t.name.as_str()))
            .fold(plan.env_file_mode(), |mode, t| mode.narrowed_by(t.mode))
    }

    /// Every template compiled, ready to render.
    pub fn compile(&self) -> Result<Compiled, Errors> {
        let mut compiled = Vec::with_capacity(self.items.len());
        let mut errors = Vec::new();
        for template in &self.items {
            let delimiters = template
                .delimiters
                .as_ref()
                .map(|(s, e)| (s.as_str(), e.as_str()));
            match engine::Compiled::new(&template.source, delimiters) {
                Ok(engine) => compiled.push((template.clone(), engine)),
                Err(problem) => errors.push(Error::annotation(
                    TEMPLATES,
                    format!("{}: {problem}", template.label()),
                )),
            }
        }
        if errors.is_empty() {
            Ok(Compiled {
                templates: compiled,
            })
        } else {
            Err(Errors(errors))
        }
    }
}

/// The templates compiled, each in its own environment.
pub struct Compiled {
    templates: Vec<(Template, engine::Compiled)>,
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.templates.iter().map(|(t, _)| t.label()))
            .finish()
    }
}

/// One rendered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub path: RelPath,
    pub mode: FileMode,
    pub bytes: Vec<u8>,
}

/// A render that failed: which template, and what went wrong where (never a value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{template}: {message}")]
pub struct RenderError {
    /// The template's label.
    pub template: String,
    pub message: String,
}

impl Compiled {
    /// Renders every template over `files` (every file the objects wrote, by path), in order.
    /// Every template is rendered, so every failure is reported.
    pub fn render<'a>(
        &self,
        files: impl IntoIterator<Item = (&'a RelPath, &'a [u8])>,
    ) -> Result<Vec<Rendered>, Vec<RenderError>> {
        let root = context::root(files);
        let mut rendered = Vec::with_capacity(self.templates.len());
        let mut failures = Vec::new();
        for (template, engine) in &self.templates {
            match engine.render(&root) {
                Ok(bytes) => rendered.push(Rendered {
                    path: template.name.clone(),
                    mode: template.mode,
                    bytes,
                }),
                Err(message) => failures.push(RenderError {
                    template: template.label(),
                    message,
                }),
            }
        }
        if failures.is_empty() {
            Ok(rendered)
        } else {
            Err(failures)
        }
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }
}
