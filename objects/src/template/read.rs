//! The templates list as written: each item read out of the generic YAML value, field by field,
//! so that a wrong type is a precise problem and an unknown field only a warning (as objects).

use serde_json::{Map, Value};

use crate::annotations::closest;
use crate::raw::kind;
use crate::yaml::ListOf;

use super::MAX_DELIMITER_BYTES;

pub(super) const FIELDS: &[&str] = &["name", "template", "filePermission", "delimiters"];

/// How messages speak of the templates list.
pub(super) const LIST: ListOf = ListOf {
    a_list: "a templates list",
    items: "templates",
    one: "template",
    example: "{name: DATABASE_URL, template: \"postgres://{{ SECRET_USERNAME }}@db/app\"}",
    start: "- name: config.yaml",
    add: "(- name: config.yaml, template: \"...\")",
};

/// One item of the list. Empty strings count as absent, except for `template` (an empty file
/// is a file).
#[derive(Debug, Default)]
pub(super) struct RawTemplate {
    pub name: Option<String>,
    pub template: Option<String>,
    pub file_permission: Option<String>,
    pub delimiters: Option<(String, String)>,
}

/// What reading an item found, with the problems (wrong types, missing fields) and warnings
/// (unknown fields), without the item's label.
#[derive(Debug, Default)]
pub(super) struct Read {
    pub raw: RawTemplate,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

pub(super) fn read_template(value: &Value) -> Read {
    let mut read = Read::default();
    let Value::Object(map) = value else {
        read.problems.push(format!(
            "is {}, not a mapping; each item of the list is a mapping such as {}",
            kind(value),
            LIST.example
        ));
        return read;
    };
    let raw = &mut read.raw;
    raw.name = string(map, "name", &mut read.problems).filter(|name| !name.is_empty());
    if raw.name.is_none() && !read.problems.iter().any(|p| p.starts_with("name ")) {
        read.problems.push(
            "name is required: the name of the file the template writes, such as config.yaml"
                .to_owned(),
        );
    }
    raw.template = string(map, "template", &mut read.problems);
    if !map.contains_key("template") || map.get("template") == Some(&Value::Null) {
        read.problems.push(
            "template is required: the text to render, such as \"postgres://{{ SECRET_USERNAME \
             }}@db/app\""
                .to_owned(),
        );
    }
    raw.file_permission = match map.get("filePermission") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            read.problems.push(format!(
                "filePermission is {}, not a string; write it like \"0640\" (quoted)",
                kind(other)
            ));
            None
        }
    };
    raw.delimiters = match map.get("delimiters") {
        None | Some(Value::Null) => None,
        Some(Value::Array(pair)) => match pair.as_slice() {
            [Value::String(start), Value::String(end)]
                if start.len().max(end.len()) > MAX_DELIMITER_BYTES =>
            {
                read.problems.push(format!(
                    "delimiters: each is at most {MAX_DELIMITER_BYTES} bytes; use a short pair, \
                     such as [\"[[\", \"]]\"]"
                ));
                None
            }
            [Value::String(start), Value::String(end)] => Some((start.clone(), end.clone())),
            _ => {
                read.problems.push(DELIMITERS_FORM.to_owned());
                None
            }
        },
        Some(_) => {
            read.problems.push(DELIMITERS_FORM.to_owned());
            None
        }
    };
    read.warnings.extend(
        map.keys()
            .filter(|k| !FIELDS.contains(&k.as_str()))
            .map(|key| match closest(key, FIELDS) {
                Some(suggestion) => {
                    format!("unknown field {key:?} ignored; did you mean {suggestion}?")
                }
                None => format!(
                    "unknown field {key:?} ignored; the known fields are {}",
                    FIELDS.join(", ")
                ),
            }),
    );
    read
}

const DELIMITERS_FORM: &str = "delimiters is not a pair of strings; write it as a list of two, \
     the start and the end of an expression, such as [\"[[\", \"]]\"]";

fn string(map: &Map<String, Value>, key: &str, problems: &mut Vec<String>) -> Option<String> {
    match map.get(key)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => {
            problems.push(format!(
                "{key} is {}, not a string; quote the value",
                kind(other)
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_every_field() {
        let read = read_template(&json!({
            "name": "config.yaml",
            "template": "a: {{ A }}",
            "filePermission": "0400",
            "delimiters": ["[[", "]]"],
        }));
        assert!(read.problems.is_empty(), "{:?}", read.problems);
        assert!(read.warnings.is_empty(), "{:?}", read.warnings);
        assert_eq!(read.raw.name.as_deref(), Some("config.yaml"));
        assert_eq!(read.raw.file_permission.as_deref(), Some("0400"));
        assert_eq!(
            read.raw.delimiters,
            Some(("[[".to_owned(), "]]".to_owned()))
        );
    }

    #[test]
    fn wrong_types_and_missing_fields_are_problems_unknown_fields_warnings() {
        let read = read_template(&json!({
            "name": 3,
            "delimiters": ["[["],
            "filePermision": "0400",
        }));
        let all = read.problems.join("\n");
        assert!(all.contains("name is a number, not a string"), "{all}");
        assert!(all.contains("template is required"), "{all}");
        assert!(all.contains("delimiters is not a pair of strings"), "{all}");
        assert!(!all.contains("name is required"), "{all}");
        assert_eq!(
            read.warnings,
            ["unknown field \"filePermision\" ignored; did you mean filePermission?"]
        );
        let read = read_template(&json!("x"));
        assert!(read.problems[0].contains("is a string, not a mapping"));
        let read = read_template(&json!({"template": ""}));
        assert_eq!(read.problems.len(), 1, "{:?}", read.problems);
        assert!(read.problems[0].starts_with("name is required"));
    }
}
