//! What a template sees (SPEC "What a template sees"): `files`, a map from every file the objects
//! wrote to its value (a nested map for a directory), and every top-level file whose name is an
//! identifier, directly. Values are text when they are UTF-8, else a binary value.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::Value;

use crate::envfile::is_env_name;
use crate::relpath::RelPath;

use super::RESERVED_NAME;
use super::filters::Binary;

enum Node<'a> {
    File(&'a RelPath, &'a [u8]),
    Dir(BTreeMap<&'a str, Node<'a>>),
}

/// The root value of a render over these files (paths relative to the mount directory).
pub(super) fn root<'a>(files: impl IntoIterator<Item = (&'a RelPath, &'a [u8])>) -> Value {
    let mut tree: BTreeMap<&str, Node<'_>> = BTreeMap::new();
    for (path, bytes) in files {
        insert(&mut tree, path, bytes);
    }
    let mut root: BTreeMap<String, Value> = BTreeMap::new();
    for (name, node) in &tree {
        if let Node::File(path, bytes) = node
            && is_identifier(name)
        {
            root.insert((*name).to_owned(), value(path, bytes));
        }
    }
    root.insert(RESERVED_NAME.to_owned(), dir(&tree));
    Value::from(root)
}

/// Whether a top-level file of this name is a variable of its own: the env file's rule for
/// names, which is also minijinja's for identifiers (ASCII), and not `files`.
pub(super) fn is_identifier(name: &str) -> bool {
    is_env_name(name) && name != RESERVED_NAME
}

fn insert<'a>(tree: &mut BTreeMap<&'a str, Node<'a>>, path: &'a RelPath, bytes: &'a [u8]) {
    let mut level = tree;
    let mut parts = path.components().peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            level.insert(part, Node::File(path, bytes));
            return;
        }
        let node = level
            .entry(part)
            .or_insert_with(|| Node::Dir(BTreeMap::new()));
        // The plan's checks keep a file and a directory from sharing a path.
        let Node::Dir(next) = node else { return };
        level = next;
    }
}

fn dir(tree: &BTreeMap<&str, Node<'_>>) -> Value {
    Value::from(
        tree.iter()
            .map(|(name, node)| {
                let item = match node {
                    Node::File(path, bytes) => value(path, bytes),
                    Node::Dir(inner) => dir(inner),
                };
                ((*name).to_owned(), item)
            })
            .collect::<BTreeMap<String, Value>>(),
    )
}

fn value(path: &RelPath, bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => Value::from(text),
        Err(_) => Value::from_object(Binary {
            file: path.to_string(),
            bytes: Arc::from(bytes),
        }),
    }
}
