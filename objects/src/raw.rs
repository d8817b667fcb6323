//! The objects list as written: each item read out of the generic YAML value, field by
//! field, so that a wrong type is a precise problem and an unknown field only a warning.

use serde_json::{Map, Value};

use crate::annotations::closest;

pub(crate) const OBJECT_FIELDS: &[&str] = &[
    "objectName",
    "objectType",
    "objectAlias",
    "objectVersion",
    "objectVersionLabel",
    "jmesPath",
    "filePermission",
    "failoverObject",
    "optional",
    "tags",
    "decode",
];
pub(crate) const JMES_FIELDS: &[&str] = &["path", "objectAlias", "filePermission", "decode"];
pub(crate) const FAILOVER_FIELDS: &[&str] = &["objectName", "objectVersion", "objectVersionLabel"];

/// One item of the list. Empty strings count as absent, as in ASCP.
#[derive(Debug, Default)]
pub(crate) struct RawObject {
    pub object_name: Option<String>,
    pub object_type: Option<String>,
    pub object_alias: Option<String>,
    pub object_version: Option<String>,
    pub object_version_label: Option<String>,
    pub jmes_path: Vec<RawJmes>,
    pub file_permission: Option<String>,
    pub failover_object: Option<RawFailover>,
    pub optional: Option<bool>,
    /// `tags` as written, in the mapping's order; `None` when absent.
    pub tags: Option<Vec<(String, String)>>,
    /// `decode`, as written.
    pub decode: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct RawJmes {
    pub path: Option<String>,
    pub object_alias: Option<String>,
    pub file_permission: Option<String>,
    pub decode: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct RawFailover {
    pub object_name: Option<String>,
    pub object_version: Option<String>,
    pub object_version_label: Option<String>,
}

/// What reading an item found: the fields, the problems (wrong types) and the warnings
/// (unknown fields), the last two without the item's label.
#[derive(Debug, Default)]
pub(crate) struct Read {
    pub object: RawObject,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

pub(crate) fn read_object(value: &Value) -> Read {
    let mut read = Read::default();
    let Value::Object(map) = value else {
        read.problems.push(format!(
            "is {}, not a mapping; each item of the list is a mapping such as \
             {{objectName: /app/db, objectType: ssmparameter}}",
            kind(value)
        ));
        return read;
    };
    let mut fields = Fields {
        map,
        prefix: String::new(),
        problems: &mut read.problems,
    };
    let object = &mut read.object;
    object.object_name = fields.string("objectName");
    if matches!(map.get("objectName"), None | Some(Value::Null))
        || map.get("objectName").and_then(Value::as_str) == Some("")
    {
        fields.problems.push(
            "objectName is required; set it to the name, path or ARN of the parameter or secret"
                .to_owned(),
        );
    }
    object.object_type = fields.string("objectType");
    object.object_alias = fields.string("objectAlias");
    object.object_version = fields.string_or_number("objectVersion");
    object.object_version_label = fields.string("objectVersionLabel");
    object.file_permission = fields.string_or_number("filePermission");
    object.optional = fields.boolean("optional");
    object.decode = fields.string("decode");
    object.jmes_path = read_jmes_list(map.get("jmesPath"), &mut read.problems, &mut read.warnings);
    object.failover_object = read_failover(
        map.get("failoverObject"),
        &mut read.problems,
        &mut read.warnings,
    );
    object.tags = read_tags(map.get("tags"), &mut read.problems);
    read.warnings.extend(unknown_fields(map, OBJECT_FIELDS, ""));
    read
}

fn read_jmes_list(
    value: Option<&Value>,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Vec<RawJmes> {
    let items = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            problems.push(format!(
                "jmesPath is {}, not a list; write it as a list of entries such as \
                 [{{path: username, objectAlias: USERNAME}}]",
                kind(other)
            ));
            return Vec::new();
        }
    };
    let mut entries = Vec::new();
    for (j, item) in items.iter().enumerate() {
        let Value::Object(map) = item else {
            problems.push(format!(
                "jmesPath[{j}] is {}, not a mapping; write it as {{path: username, objectAlias: USERNAME}}",
                kind(item)
            ));
            continue;
        };
        let prefix = format!("jmesPath[{j}].");
        let mut fields = Fields {
            map,
            prefix: prefix.clone(),
            problems,
        };
        entries.push(RawJmes {
            path: fields.string("path"),
            object_alias: fields.string("objectAlias"),
            file_permission: fields.string_or_number("filePermission"),
            decode: fields.string("decode"),
        });
        warnings.extend(unknown_fields(map, JMES_FIELDS, &prefix));
    }
    entries
}

fn read_failover(
    value: Option<&Value>,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<RawFailover> {
    let map = match value {
        None | Some(Value::Null) => return None,
        Some(Value::Object(map)) => map,
        Some(other) => {
            problems.push(format!(
                "failoverObject is {}, not a mapping; write it as {{objectName: NAME}}",
                kind(other)
            ));
            return None;
        }
    };
    let prefix = "failoverObject.";
    let mut fields = Fields {
        map,
        prefix: prefix.to_owned(),
        problems,
    };
    let failover = RawFailover {
        object_name: fields.string("objectName"),
        object_version: fields.string_or_number("objectVersion"),
        object_version_label: fields.string("objectVersionLabel"),
    };
    warnings.extend(unknown_fields(map, FAILOVER_FIELDS, prefix));
    Some(failover)
}

/// `tags`: a mapping of tag keys to values, each a string (a whole number is read as its
/// digits, as `objectVersion`). Its size and contents are checked with the object (`plan`).
fn read_tags(value: Option<&Value>, problems: &mut Vec<String>) -> Option<Vec<(String, String)>> {
    let map = match value {
        None | Some(Value::Null) => return None,
        Some(Value::Object(map)) => map,
        Some(other) => {
            problems.push(format!(
                "tags is {}, not a mapping; write it as {{team: payments}}",
                kind(other)
            ));
            return None;
        }
    };
    let mut tags = Vec::with_capacity(map.len());
    for (key, value) in map {
        match value {
            Value::String(text) => tags.push((key.clone(), text.clone())),
            Value::Number(n) if n.is_u64() || n.is_i64() => tags.push((key.clone(), n.to_string())),
            other => problems.push(format!(
                "tags.{key} is {}, not a string; quote the value",
                kind(other)
            )),
        }
    }
    Some(tags)
}

/// Reads typed fields of one mapping, noting wrong types.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    /// Where the mapping is, e.g. `jmesPath[0].`, for messages.
    prefix: String,
    problems: &'a mut Vec<String>,
}

impl Fields<'_> {
    fn string(&mut self, key: &str) -> Option<String> {
        match self.map.get(key)? {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            Value::String(s) => Some(s.clone()),
            other => {
                self.problems.push(format!(
                    "{}{key} is {}, not a string; quote the value",
                    self.prefix,
                    kind(other)
                ));
                None
            }
        }
    }

    /// A string, or a number read as the text of its digits (`objectVersion: 3`).
    fn string_or_number(&mut self, key: &str) -> Option<String> {
        match self.map.get(key)? {
            Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
            Value::Number(_) => {
                self.problems.push(format!(
                    "{}{key} is a number that is not a whole number of usable size; quote the value",
                    self.prefix
                ));
                None
            }
            _ => self.string(key),
        }
    }

    fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.map.get(key)? {
            Value::Null => None,
            Value::Bool(b) => Some(*b),
            other => {
                self.problems.push(format!(
                    "{}{key} is {}, not a boolean; write true or false (unquoted)",
                    self.prefix,
                    kind(other)
                ));
                None
            }
        }
    }
}

fn unknown_fields<'a>(
    map: &'a Map<String, Value>,
    known: &'a [&'a str],
    prefix: &'a str,
) -> impl Iterator<Item = String> + 'a {
    map.keys()
        .filter(|key| !known.contains(&key.as_str()))
        .map(move |key| {
            let field = format!("{prefix}{key}");
            match closest(key, known) {
                Some(suggestion) => {
                    format!("unknown field {field:?} ignored; did you mean {suggestion}?")
                }
                None => format!(
                    "unknown field {field:?} ignored; the known fields are {}",
                    known.join(", ")
                ),
            }
        })
}

/// How a value is named in messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_every_field() {
        let read = read_object(&json!({
            "objectName": "/app/db",
            "objectType": "ssmparameter",
            "objectAlias": "db",
            "objectVersion": 3,
            "objectVersionLabel": "",
            "filePermission": "0640",
            "optional": true,
            "jmesPath": [{"path": "a", "objectAlias": "A", "filePermission": "0600"}],
            "failoverObject": {"objectName": "/app/db2", "objectVersion": "3"},
            "tags": {"team": "payments", "tier": 2},
        }));
        assert!(read.problems.is_empty(), "{:?}", read.problems);
        assert!(read.warnings.is_empty(), "{:?}", read.warnings);
        let o = read.object;
        assert_eq!(o.object_name.as_deref(), Some("/app/db"));
        assert_eq!(o.object_version.as_deref(), Some("3"));
        assert_eq!(o.object_version_label, None);
        assert_eq!(o.optional, Some(true));
        assert_eq!(o.jmes_path[0].file_permission.as_deref(), Some("0600"));
        assert_eq!(
            o.failover_object.unwrap().object_version.as_deref(),
            Some("3")
        );
        let tags = o.tags.unwrap();
        assert!(tags.contains(&("team".to_owned(), "payments".to_owned())));
        assert!(tags.contains(&("tier".to_owned(), "2".to_owned())));
    }

    #[test]
    fn wrong_types_are_problems() {
        let read = read_object(&json!({
            "objectName": 12,
            "optional": "yes",
            "objectVersion": 1.5,
            "jmesPath": {"path": "a"},
            "failoverObject": "x",
            "tags": {"team": ["a"], "env": null},
        }));
        let all = read.problems.join("\n");
        assert!(
            all.contains("objectName is a number, not a string"),
            "{all}"
        );
        assert!(all.contains("optional is a string, not a boolean"), "{all}");
        assert!(
            all.contains("objectVersion is a number that is not a whole number"),
            "{all}"
        );
        assert!(all.contains("jmesPath is a mapping, not a list"), "{all}");
        assert!(
            all.contains("failoverObject is a string, not a mapping"),
            "{all}"
        );
        assert!(all.contains("tags.team is a list, not a string"), "{all}");
        assert!(all.contains("tags.env is empty, not a string"), "{all}");
        let read = read_object(&json!({"objectName": "a", "tags": ["team=x"]}));
        assert!(
            read.problems[0].contains("tags is a list, not a mapping"),
            "{:?}",
            read.problems
        );
    }

    #[test]
    fn unknown_fields_are_warnings_with_suggestions() {
        let read = read_object(&json!({
            "objectName": "a",
            "objectAlais": "b",
            "zzz": 1,
            "jmesPath": [{"path": "a", "objectAlias": "b", "alias": "c"}],
            "failoverObject": {"objectName": "x", "objectVersoin": "1"},
        }));
        assert_eq!(read.problems, Vec::<String>::new());
        let all = read.warnings.join("\n");
        assert!(
            all.contains("unknown field \"objectAlais\" ignored; did you mean objectAlias?"),
            "{all}"
        );
        assert!(
            all.contains("unknown field \"zzz\" ignored; the known fields are objectName"),
            "{all}"
        );
        assert!(
            all.contains("unknown field \"jmesPath[0].alias\" ignored"),
            "{all}"
        );
        assert!(
            all.contains("\"failoverObject.objectVersoin\" ignored; did you mean objectVersion?"),
            "{all}"
        );
    }

    #[test]
    fn items_must_be_mappings() {
        let read = read_object(&json!("just a string"));
        assert!(read.problems[0].contains("is a string, not a mapping"));
    }
}
