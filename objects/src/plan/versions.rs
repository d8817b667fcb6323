//! `objectVersion` and `objectVersionLabel`, of the object or of its `failoverObject`: which
//! kinds allow them, and the forms SSM takes (`name:3`, `name:label`).

use crate::kind::{ObjectType, Service};

use super::Check;

impl Check<'_> {
    /// Version rules of the object (`prefix` empty) or of its failover
    /// (`prefix` "failoverObject.").
    pub(super) fn versions(
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
}

fn is_positive_integer(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u64>().is_ok_and(|n| n > 0)
}
