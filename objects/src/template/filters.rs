//! The filters templates have beyond minijinja's builtins (`fromjson`, `b64encode`, `b64decode`,
//! `toyaml`, `shellquote`, and this project's `urlencode` and `length`), the binary values only
//! `b64encode` and `length` accept, and the formatter that refuses to print one.
//!
//! Their errors never carry a value: each is one of the fixed messages below, marked with
//! [`OWN`] so that the engine's description of a failed render can tell them (safe to show)
//! from minijinja's own details (which can quote values, and are never shown).

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Output, State, Value};

use crate::decode::{base64_decode, base64_encode};
use crate::envfile::shell_quote;

/// The start of every error detail this module writes.
pub(super) const OWN: &str = "\u{1}secrets-injector: ";

/// Stands in for a binary value that was turned into text (by `~`, say); a render whose output
/// holds one fails. U+FFFF is a noncharacter, never in text meant for interchange.
pub(super) const BINARY_MARK: char = '\u{FFFF}';

/// How deep `toyaml` goes; values from `fromjson` are at most 128 deep (serde_json's limit).
const MAX_YAML_DEPTH: usize = 128;

pub(super) fn add(env: &mut Environment<'static>) {
    env.add_filter("fromjson", fromjson);
    env.add_filter("b64encode", b64encode);
    env.add_filter("b64decode", b64decode);
    env.add_filter("toyaml", toyaml);
    env.add_filter("shellquote", shellquote);
    env.add_filter("urlencode", urlencode);
    env.add_filter("length", length);
    env.add_filter("count", length);
    env.set_formatter(formatter);
}

/// The names of the filters this module adds, for messages.
pub(super) const NAMES: &str = "fromjson, b64encode, b64decode, toyaml, shellquote";

fn own(kind: ErrorKind, message: impl fmt::Display) -> Error {
    Error::new(kind, format!("{OWN}{message}"))
}

/// A file's value that is not UTF-8: `files[name]` and the identifiers give one of these.
pub(super) struct Binary {
    pub file: String,
    pub bytes: Arc<[u8]>,
}

impl fmt::Debug for Binary {
    // Never the bytes: a Debug form can end up in a message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<binary value of {}>", self.file)
    }
}

impl Object for Binary {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result
    where
        Self: Sized + 'static,
    {
        use fmt::Write as _;
        f.write_char(BINARY_MARK)
    }
}

pub(super) fn binary_message(file: &str) -> String {
    format!(
        "the value of {file:?} is binary (not UTF-8): only b64encode and length accept it; \
         write {{{{ files[{file:?}] | b64encode }}}}, or give the object decode: base64 only if \
         its value is base64 text"
    )
}

/// Prints values as minijinja does, but refuses a binary value, naming its file.
fn formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    if let Some(binary) = value.downcast_object_ref::<Binary>() {
        return Err(own(
            ErrorKind::InvalidOperation,
            binary_message(&binary.file),
        ));
    }
    minijinja::escape_formatter(out, state, value)
}

/// The text of a value that must be text; a binary value is refused naming its file.
fn text<'a>(value: &'a Value, filter: &str) -> Result<&'a str, Error> {
    if let Some(binary) = value.downcast_object_ref::<Binary>() {
        return Err(own(
            ErrorKind::InvalidOperation,
            binary_message(&binary.file),
        ));
    }
    value.as_str().ok_or_else(|| {
        own(
            ErrorKind::InvalidOperation,
            format!("{filter} takes text, not {}", value.kind()),
        )
    })
}

/// `(files.test_secret | fromjson).password`: a JSON text to a value.
fn fromjson(value: &Value) -> Result<Value, Error> {
    let text = text(value, "fromjson")?;
    // serde_json's own message can quote the text: never shown.
    let json: serde_json::Value = serde_json::from_str(text).map_err(|_| {
        own(
            ErrorKind::InvalidOperation,
            "fromjson: the value is not JSON",
        )
    })?;
    Ok(from_json(json))
}

pub(super) fn from_json(json: serde_json::Value) -> Value {
    use serde_json::Value as Json;
    match json {
        Json::Null => Value::from(()),
        Json::Bool(b) => Value::from(b),
        Json::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(u)) => Value::from(u),
            _ => Value::from(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::from(s),
        Json::Array(items) => Value::from(items.into_iter().map(from_json).collect::<Vec<_>>()),
        Json::Object(map) => Value::from(
            map.into_iter()
                .map(|(k, v)| (k, from_json(v)))
                .collect::<std::collections::BTreeMap<String, Value>>(),
        ),
    }
}

/// Standard base64 of a text or a binary value.
fn b64encode(value: &Value) -> Result<String, Error> {
    if let Some(binary) = value.downcast_object_ref::<Binary>() {
        return Ok(base64_encode(&binary.bytes));
    }
    if let Some(bytes) = value.as_bytes() {
        return Ok(base64_encode(bytes));
    }
    Err(own(
        ErrorKind::InvalidOperation,
        format!("b64encode takes text, not {}", value.kind()),
    ))
}

/// The text a base64 value holds; a value that is not base64, or whose bytes are not UTF-8, is
/// an error (which never quotes it).
fn b64decode(value: &Value) -> Result<String, Error> {
    let text = text(value, "b64decode")?;
    let bytes = base64_decode(text.as_bytes()).ok_or_else(|| {
        own(
            ErrorKind::InvalidOperation,
            "b64decode: the value is not base64",
        )
    })?;
    String::from_utf8(bytes).map_err(|_| {
        own(
            ErrorKind::InvalidOperation,
            "b64decode: the decoded bytes are not UTF-8 text; b64decode gives text only (a \
             binary value is written as a file with decode: base64 on its object)",
        )
    })
}

/// POSIX shell single quoting, as the env file writes values.
fn shellquote(value: &Value) -> Result<String, Error> {
    scalar_text(value, "shellquote").map(|text| shell_quote(&text))
}

/// Every byte outside RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`) percent-encoded,
/// `/` included (minijinja's and Jinja2's `urlencode` leave `/`, which breaks a password in a
/// URL). A mapping gives `key=value` pairs joined with `&`.
fn urlencode(value: &Value) -> Result<String, Error> {
    if value.kind() == ValueKind::Map {
        let mut pairs = Vec::new();
        for key in value.try_iter()? {
            let item = value.get_item(&key)?;
            pairs.push(format!(
                "{}={}",
                percent_encode(&scalar_text(&key, "urlencode")?),
                percent_encode(&scalar_text(&item, "urlencode")?)
            ));
        }
        return Ok(pairs.join("&"));
    }
    scalar_text(value, "urlencode").map(|text| percent_encode(&text))
}

pub(super) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A string, number or boolean as text (none as the empty text); anything else is an error.
fn scalar_text(value: &Value, filter: &str) -> Result<String, Error> {
    match value.kind() {
        ValueKind::String => Ok(text(value, filter)?.to_owned()),
        ValueKind::Number | ValueKind::Bool => Ok(value.to_string()),
        ValueKind::None => Ok(String::new()),
        _ if value.downcast_object_ref::<Binary>().is_some() => {
            text(value, filter).map(str::to_owned)
        }
        kind => Err(own(
            ErrorKind::InvalidOperation,
            format!("{filter} takes text, not {kind}"),
        )),
    }
}

/// minijinja's `length`, which also counts the bytes of a binary value.
fn length(value: &Value) -> Result<usize, Error> {
    match value.downcast_object_ref::<Binary>() {
        Some(binary) => Ok(binary.bytes.len()),
        None => value.len().ok_or_else(|| {
            own(
                ErrorKind::InvalidOperation,
                format!("length of {} is not known", value.kind()),
            )
        }),
    }
}

/// A value as block YAML: mappings and sequences one entry per line (indented by two per
/// level), strings always double-quoted with JSON escapes (a quote, backslash, newline or `{{`
/// in a password stays inside its string), numbers, booleans and null bare. No trailing
/// newline, so `key: {{ value | toyaml }}` works for a string; a mapping or sequence starts on
/// a line of its own (`key:\n{{ value | toyaml | indent(2, true) }}`).
fn toyaml(value: &Value) -> Result<String, Error> {
    let mut out = String::new();
    yaml(value, 0, &mut out)?;
    Ok(out)
}

fn yaml(value: &Value, depth: usize, out: &mut String) -> Result<(), Error> {
    if depth > MAX_YAML_DEPTH {
        return Err(own(
            ErrorKind::InvalidOperation,
            format!("toyaml: the value nests more than {MAX_YAML_DEPTH} levels deep"),
        ));
    }
    let indent = "  ".repeat(depth);
    match value.kind() {
        ValueKind::Map => {
            let keys: Vec<Value> = value.try_iter()?.collect();
            if keys.is_empty() {
                out.push_str("{}");
            }
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                    out.push_str(&indent);
                }
                yaml_key(key, out)?;
                out.push(':');
                let item = value.get_item(key)?;
                if is_nonempty_container(&item) {
                    out.push('\n');
                    out.push_str(&indent);
                    out.push_str("  ");
                    yaml(&item, depth + 1, out)?;
                } else {
                    out.push(' ');
                    yaml(&item, depth + 1, out)?;
                }
            }
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
            }
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                    out.push_str(&indent);
                }
                out.push('-');
                if is_nonempty_container(item) {
                    out.push('\n');
                    out.push_str(&indent);
                    out.push_str("  ");
                } else {
                    out.push(' ');
                }
                yaml(item, depth + 1, out)?;
            }
        }
        ValueKind::None | ValueKind::Undefined => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            let text = value.to_string();
            // A float YAML would not read as one (inf, NaN) is quoted.
            if text.parse::<f64>().is_ok_and(f64::is_finite) {
                out.push_str(&text);
            } else {
                json_string(&text, out);
            }
        }
        _ => json_string(text(value, "toyaml")?, out),
    }
    Ok(())
}

fn is_nonempty_container(value: &Value) -> bool {
    matches!(
        value.kind(),
        ValueKind::Map | ValueKind::Seq | ValueKind::Iterable
    ) && value.len().is_some_and(|n| n > 0)
}

/// A key bare when YAML reads it back as the same string, else double-quoted.
fn yaml_key(key: &Value, out: &mut String) -> Result<(), Error> {
    let text = match key.as_str() {
        Some(text) => text.to_owned(),
        None => key.to_string(),
    };
    let bare = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && text
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if bare {
        out.push_str(&text);
    } else {
        json_string(&text, out);
    }
    Ok(())
}

/// A JSON string, which is a YAML double-quoted scalar too.
fn json_string(text: &str, out: &mut String) {
    out.push_str(&serde_json::Value::from(text).to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_leaves_only_unreserved_characters() {
        assert_eq!(percent_encode("p/q"), "p%2Fq");
        assert_eq!(percent_encode("a-b.c_d~e"), "a-b.c_d~e");
        assert_eq!(percent_encode("&@:?#% é"), "%26%40%3A%3F%23%25%20%C3%A9");
    }
}
