//! `objectName` and `failoverObject.objectName` against the object's type and the region the
//! object must be in: which kinds take an ARN, and what the others' names look like.

use crate::arn::Arn;
use crate::kind::ObjectType;

use super::Check;

impl Check<'_> {
    /// Checks a name (`objectName` or `failoverObject.objectName`) against the object's
    /// type and the region it must be in, and returns the object's type: the one written,
    /// else the one its ARN names.
    pub(super) fn name_type(
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
            {
                if !name.starts_with(form.starts_with) {
                    self.problems.push(format!(
                        "{field} {name:?} of {} must be {}, such as {}",
                        t.facts().an_object(),
                        form.what,
                        form.example
                    ));
                } else if let Some(problem) = form.chars.as_ref().and_then(|c| c.problem(name)) {
                    self.problems.push(format!(
                        "{field} {:?} of {} {problem}; write {}, such as {}",
                        crate::jmes::shorten(name, 64),
                        t.facts().an_object(),
                        form.what,
                        form.example
                    ));
                }
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
}
