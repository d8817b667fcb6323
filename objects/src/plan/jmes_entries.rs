//! The `jmesPath` entries of one object: each a compiled expression within the bounds of
//! `jmes`, a file named by its `objectAlias`, and a mode.

use crate::jmes;
use crate::kind::ObjectType;
use crate::mode::FileMode;
use crate::object::JmesEntry;
use crate::raw::RawObject;

use super::Check;

impl Check<'_> {
    pub(super) fn jmes_path(
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
            let decode = self.decode(&format!("{name}: decode"), entry.decode.as_deref());
            match (&entry.path, file) {
                (Some(path), Some(file)) if self.problems.len() == before => {
                    entries.push(JmesEntry {
                        path: path.clone(),
                        file,
                        mode,
                        decode,
                    })
                }
                _ => complete = false,
            }
        }
        complete.then_some(entries)
    }
}
