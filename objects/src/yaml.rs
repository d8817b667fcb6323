//! Parsing the annotation's YAML into a generic value, with tight resource limits: the
//! annotation comes from whoever can create a pod, and the webhook parses it on every
//! admission.

use serde_json::Value;

use crate::annotations::MAX_OBJECTS_BYTES;
use crate::raw::kind;

/// Structural depth the objects list needs is 4 (list, object, jmesPath list, entry); some
/// room is left for flow-style values, none for deliberately deep documents.
const MAX_DEPTH: usize = 16;
/// Aliases are legal YAML but an objects list needs few; these caps stop alias bombs
/// ("billion laughs") long before they cost time or memory.
const MAX_ALIASES: usize = 256;
const MAX_REPLAYED_EVENTS: usize = 10_000;
/// The most bytes of values (scalars, and tags as spelled out) a document may expand to, and
/// the most an anchor may keep copies of: twice the most the annotations may hold. The caps on
/// aliases and events count nodes, not their size: 99 aliases of one 60 KB value stay within
/// them, and would replay 144 MB.
pub(crate) const MAX_EXPANDED_BYTES: usize = 2 * MAX_OBJECTS_BYTES;

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
            max_recorded_anchor_bytes: MAX_EXPANDED_BYTES,
            max_total_scalar_bytes: MAX_EXPANDED_BYTES,
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

/// The words messages use for one kind of list.
pub(crate) struct ListOf {
    /// "an objects list"
    pub a_list: &'static str,
    /// "objects"
    pub items: &'static str,
    /// "object"
    pub one: &'static str,
    /// An item, "{objectName: /app/db, objectType: ssmparameter}"
    pub example: &'static str,
    /// The start of an item, "- objectName: /app/db"
    pub start: &'static str,
    /// How to add one, "(- objectName: /app/db, objectType: ssmparameter)"
    pub add: &'static str,
}

pub(crate) const OBJECTS: ListOf = ListOf {
    a_list: "an objects list",
    items: "objects",
    one: "object",
    example: "{objectName: /app/db, objectType: ssmparameter}",
    start: "- objectName: /app/db",
    add: "(- objectName: /app/db, objectType: ssmparameter)",
};

/// The items of the objects list, or what is wrong with the text as a whole.
pub(crate) fn parse_list(text: &str) -> Result<Vec<Value>, String> {
    parse_items(text, &OBJECTS)
}

/// The items of a list, or what is wrong with the text as a whole.
pub(crate) fn parse_items(text: &str, list: &ListOf) -> Result<Vec<Value>, String> {
    let ListOf {
        a_list,
        items,
        one,
        example,
        start,
        add,
    } = list;
    let value: Value = serde_saphyr::from_str_with_options(text, options()).map_err(|err| {
        let detail = one_line(&err.to_string())
            .replace(", set DuplicateKeyPolicy in Options if acceptable", "");
        if ["ScalarBytes", "RecordedAnchorBytes"]
            .iter()
            .any(|limit| detail.contains(limit))
        {
            format!(
                "is not valid YAML for {a_list}: through aliases it expands to more than \
                 {MAX_EXPANDED_BYTES} bytes of values, twice the most the annotations may hold \
                 ({detail}); write the {items} out without aliases of long values"
            )
        } else if ["budget breached", "recursion limit", "replay limit"]
            .iter()
            .any(|limit| detail.contains(limit))
        {
            format!(
                "is not valid YAML for {a_list}: it expands too much through aliases, \
                 or nests too deeply ({detail}); write the {items} out without deep aliases \
                 or nesting"
            )
        } else {
            format!(
                "is not valid YAML: {detail}; write a YAML (or JSON) list of {items}, each a \
                 mapping such as {example}"
            )
        }
    })?;
    match value {
        Value::Array(list) if !list.is_empty() => Ok(list),
        Value::Null | Value::Array(_) => Err(format!(
            "lists no {items}; add at least one {one} {add}, or remove the annotation"
        )),
        other => Err(format!(
            "is {}, not a list of {items}; start each {one} with \"- \", e.g. \"{start}\"",
            kind(&other)
        )),
    }
}

/// Admission messages are one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}
