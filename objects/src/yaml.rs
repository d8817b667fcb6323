//! Parsing the annotation's YAML into a generic value, with tight resource limits: the
//! annotation comes from whoever can create a pod, and the webhook parses it on every
//! admission.

use serde_json::Value;

use crate::raw::kind;

/// Structural depth the objects list needs is 4 (list, object, jmesPath list, entry); some
/// room is left for flow-style values, none for deliberately deep documents.
const MAX_DEPTH: usize = 16;
/// Aliases are legal YAML but an objects list needs few; these caps stop alias bombs
/// ("billion laughs") long before they cost time or memory.
const MAX_ALIASES: usize = 256;
const MAX_REPLAYED_EVENTS: usize = 10_000;

fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_DEPTH,
            flow_nesting_limit: MAX_DEPTH,
            max_aliases: MAX_ALIASES,
            max_anchors: MAX_ALIASES,
            max_documents: 1,
            max_nodes: 100_000,
            max_events: 200_000,
            // Anchoring is cheap (an anchor on the whole list is fine); replaying is not.
            max_recorded_anchor_events: 100_000,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_REPLAYED_EVENTS,
            max_replay_stack_depth: MAX_DEPTH,
        },
        // `filePermission: 0640` stays the text "0640" instead of the number 640.
        leading_zero_numbers_as_strings: true,
        // Only true/false are booleans: `optional: yes` is refused rather than guessed.
        strict_booleans: true,
        with_snippet: false,
    }
}

/// The items of the list, or what is wrong with the text as a whole.
pub(crate) fn parse_list(text: &str) -> Result<Vec<Value>, String> {
    let value: Value = serde_saphyr::from_str_with_options(text, options()).map_err(|err| {
        let detail = one_line(&err.to_string())
            .replace(", set DuplicateKeyPolicy in Options if acceptable", "");
        if ["budget breached", "recursion limit", "replay limit"]
            .iter()
            .any(|limit| detail.contains(limit))
        {
            format!(
                "is not valid YAML for an objects list: it expands too much through aliases, \
                 or nests too deeply ({detail}); write the objects out without deep aliases \
                 or nesting"
            )
        } else {
            format!(
                "is not valid YAML: {detail}; write a YAML (or JSON) list of objects, each a \
                 mapping such as {{objectName: /app/db, objectType: ssmparameter}}"
            )
        }
    })?;
    match value {
        Value::Array(items) if !items.is_empty() => Ok(items),
        Value::Null | Value::Array(_) => Err("lists no objects; add at least one object \
             (- objectName: /app/db, objectType: ssmparameter), or remove the annotation"
            .to_owned()),
        other => Err(format!(
            "is {}, not a list of objects; start each object with \"- \", e.g. \
             \"- objectName: /app/db\"",
            kind(&other)
        )),
    }
}

/// Admission messages are one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
