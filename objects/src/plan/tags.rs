//! `tags` of an object: only on the kinds that select values by tag (secretsmanagerpath), at
//! most [`MAX_TAGS`], each key and value within AWS's lengths and of the characters AWS allows
//! in a tag, so that every tag can go into a `ListSecrets` filter or an IAM condition as it is.

use std::collections::BTreeMap;

use crate::jmes::shorten;
use crate::kind::ObjectType;

use super::Check;

/// Tags one object may ask for. A secret carries at most 50; an object that needs more than a
/// few to pick its secrets is better served by a name prefix.
pub const MAX_TAGS: usize = 10;
/// AWS's limits on a tag, in characters.
pub const MAX_TAG_KEY_CHARS: usize = 128;
pub const MAX_TAG_VALUE_CHARS: usize = 256;

/// A character AWS allows in a tag key or value: letters and digits (any script), the space,
/// and `_ . : / = + - @`.
fn is_tag_char(c: char) -> bool {
    c.is_alphanumeric() || " _.:/=+-@".contains(c)
}

impl Check<'_> {
    /// The object's tags, checked. Empty when none are written.
    pub(super) fn tags(
        &mut self,
        object_type: Option<ObjectType>,
        written: Option<&[(String, String)]>,
    ) -> BTreeMap<String, String> {
        let Some(written) = written else {
            return BTreeMap::new();
        };
        if let Some(facts) = object_type.map(ObjectType::facts)
            && !facts.tags
        {
            let selecting: Vec<&str> = ObjectType::ALL
                .iter()
                .map(|t| t.facts())
                .filter(|f| f.tags)
                .map(|f| f.name)
                .collect();
            self.problems.push(format!(
                "tags does not apply to {}; remove it (only {} selects values by tag)",
                facts.an_object(),
                selecting.join(", ")
            ));
            return BTreeMap::new();
        }
        if written.len() > MAX_TAGS {
            self.problems.push(format!(
                "tags has {} entries, over the limit of {MAX_TAGS}; select by a longer name \
                 prefix instead",
                written.len()
            ));
            return BTreeMap::new();
        }
        let mut tags = BTreeMap::new();
        for (key, value) in written {
            let shown = shorten(key, 64);
            if let Some(problem) = tag_problem(key, 1, MAX_TAG_KEY_CHARS) {
                self.problems.push(format!(
                    "tags key {shown:?} {problem}; use a tag key as AWS allows it"
                ));
            }
            if let Some(problem) = tag_problem(value, 0, MAX_TAG_VALUE_CHARS) {
                self.problems.push(format!(
                    "tags.{shown} has a value that {problem}; use a tag value as AWS allows it"
                ));
            }
            tags.insert(key.clone(), value.clone());
        }
        tags
    }
}

/// What is wrong with a tag key or value of `min..=max` characters, if anything.
fn tag_problem(text: &str, min: usize, max: usize) -> Option<String> {
    let chars = text.chars().count();
    if chars < min {
        return Some("is empty".to_owned());
    }
    if chars > max {
        return Some(format!(
            "is {chars} characters long, over AWS's limit of {max}"
        ));
    }
    text.chars().find(|&c| !is_tag_char(c)).map(|c| {
        format!(
            "holds {c:?} (a tag holds only letters, digits, spaces and the characters _.:/=+-@)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_hold_what_aws_allows() {
        assert_eq!(tag_problem("team", 1, MAX_TAG_KEY_CHARS), None);
        assert_eq!(tag_problem("aws:cloudformation:stack-name", 1, 128), None);
        assert_eq!(tag_problem("équipe paiements/2 @x+y=z", 0, 256), None);
        assert_eq!(tag_problem("", 0, 256), None);
        assert_eq!(tag_problem("", 1, 128).as_deref(), Some("is empty"));
        assert!(
            tag_problem(&"k".repeat(129), 1, 128)
                .unwrap()
                .contains("129 characters")
        );
        for bad in ["a\nb", "a*", "!a", "a\"b"] {
            assert!(tag_problem(bad, 0, 256).unwrap().contains("holds"), "{bad}");
        }
    }
}
