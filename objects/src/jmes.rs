//! The bounds on a `jmesPath[].path` expression, checked before the `jmespath` crate sees it.
//!
//! The crate parses recursively and builds an AST that it evaluates and drops recursively, with
//! no depth limit: a few KB of `!!!!…`, `((((…` or `a.a.a…` overflow a 2 MiB thread stack and
//! abort the whole process (the webhook serving every review, or the injector). Every compile
//! goes through [`compile`], so admission and the injector apply the same bounds.

use jmespath::{ErrorReason, Expression, JmespathError};

/// The longest expression, in bytes. Real ones are a few dozen bytes (`username`,
/// `[?name=='x'].value | [0]`); the nesting bound below is what keeps the parser and the AST
/// shallow, this one keeps the scan, the parse and the messages that quote the expression small.
pub const MAX_BYTES: usize = 1024;

/// The most operators that nest, as [`nesting`] counts them. Real expressions have a handful
/// (`[?name=='x'].value | [0]` has 5); 32 leaves room for any hand-written one. Measured in a
/// debug build on a 2 MiB stack (a tokio worker's, and the test harness's), compiling,
/// evaluating and dropping the most expensive kind, a chain of flattens `a[][]…`, overflows between
/// 96 and 128 levels; every other kind goes past 190. 32 keeps a margin of more than three for
/// the frames of the server around the review (release frames are far smaller).
/// `the_worst_expressions_within_the_limits_are_safe` runs each kind at the limit on such a
/// stack.
pub const MAX_NESTING: usize = 32;

/// Why `path` must not reach the parser, in words that say how to fix it; `None` when it may.
pub fn check(path: &str) -> Option<String> {
    if path.len() > MAX_BYTES {
        return Some(format!(
            "the JMESPath expression is {} bytes, over the limit of {MAX_BYTES} bytes; shorten it \
             (select the value with a shorter path, or split it across jmesPath entries)",
            path.len()
        ));
    }
    let nesting = nesting(path);
    if nesting > MAX_NESTING {
        return Some(format!(
            "the JMESPath expression has {nesting} operators that nest (. [ ( {{ | & ! * and \
             comparisons), over the limit of {MAX_NESTING}; write a shorter expression, or split \
             it across jmesPath entries"
        ));
    }
    None
}

/// Compiles `path` if it is within the bounds; a bound exceeded is a parse error at offset 0.
pub fn compile(path: &str) -> Result<Expression<'static>, JmespathError> {
    match check(path) {
        // The error quotes the expression: only the start of it, it is over a limit.
        Some(problem) => Err(JmespathError::new(
            &shorten(path, 64),
            0,
            ErrorReason::Parse(problem),
        )),
        None => jmespath::compile(path),
    }
}

/// A bound on how deeply the parser recurses and the AST nests, counted in one lexical pass
/// without parsing: every token that can put the rest of the expression (or its left side)
/// one level down. Chains count too: `a.b.c` parses in a loop, but its AST nests one level per
/// dot, and evaluating and dropping it recurse that deep. So it is the number of `.`, `[`,
/// `(`, `{`, `|` or `||`, `&` or `&&`, `!` or `!=`, `*`, `==`, `<`, `<=`, `>`, `>=`; identifiers,
/// commas and closing brackets do not nest. Quoted identifiers and raw strings are skipped: they
/// are one token each. In a JSON literal (backticks) only `[` and `{` count, the nesting of the
/// JSON value. Over-counting is harmless (the limit is far above real expressions),
/// under-counting is not.
pub fn nesting(path: &str) -> usize {
    let bytes = path.as_bytes();
    let mut count = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    if quote == b'`' && matches!(bytes[i], b'[' | b'{') {
                        count += 1;
                    }
                    // A backslash escapes the next character, the quote included.
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'.' | b'[' | b'(' | b'{' | b'*' | b'<' | b'>' => count += 1,
            // Two-character tokens count once: `||`, `&&`, `!=`, `==`.
            first @ (b'|' | b'&' | b'!' | b'=') => {
                count += 1;
                let second = if first == b'!' { b'=' } else { first };
                if bytes.get(i + 1) == Some(&second) {
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    count
}

/// The first `max` bytes of `text` (at a character boundary), marked when cut.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let end = (0..=max)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(path: &str) -> String {
        check(path).unwrap_or_else(|| panic!("{:?} passed the check", shorten(path, 40)))
    }

    /// Runs `f` on a thread with the 2 MiB stack of a tokio worker (and of the test harness),
    /// so an overflow shows here as an abort of the test binary.
    fn on_small_stack(f: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap();
    }

    /// One expression of each kind that nests, `levels` deep, each level one counted operator
    /// (two for `[*]` and `.*`).
    fn every_kind(levels: usize) -> Vec<String> {
        vec![
            format!("{}a", "!".repeat(levels)),
            format!("{}a{}", "(".repeat(levels), ")".repeat(levels)),
            format!("{}1{}", "[".repeat(levels), "]".repeat(levels)),
            format!("{}a{}", "{a:".repeat(levels), "}".repeat(levels)),
            // Spaced: `&&` is the binary and, `& &` two prefixes.
            format!("{}a", "& ".repeat(levels)),
            format!("{}a{}", "f(".repeat(levels), ")".repeat(levels)),
            format!("a{}", "[]".repeat(levels)),
            format!("a{}", "[?a]".repeat(levels)),
            format!("a{}", "[0]".repeat(levels)),
            format!("a{}", "[*]".repeat(levels / 2)),
            format!("a{}", ".*".repeat(levels / 2)),
            format!("a{}", ".a".repeat(levels)),
            format!("a{}", "||a".repeat(levels)),
            format!("a{}", "|a".repeat(levels)),
            format!("a{}", "&&a".repeat(levels)),
            format!("a{}", "==a".repeat(levels)),
            format!("a{}", "!=a".repeat(levels)),
            format!("a{}", "<=a".repeat(levels / 2)),
        ]
    }

    #[test]
    fn real_expressions_are_far_inside_the_limits() {
        for path in [
            "username",
            "db.password",
            "items[0].value",
            "to_string(port)",
            "[?name=='x'].value | [0]",
            "\"quoted key\".value",
            "{user: username, pass: password}",
            "items[*].name",
            "!enabled",
            "sort_by(items, &name)[0]",
            "[?name=='x' && env!='prod'].value | [0]",
        ] {
            assert_eq!(check(path), None, "{path}");
            assert!(nesting(path) <= 8, "{path}: {}", nesting(path));
            compile(path).unwrap();
        }
        assert_eq!(nesting("[?name=='x'].value | [0]"), 5);
    }

    #[test]
    fn nasty_expressions_are_rejected_before_the_parser() {
        let long = rejected(&format!("{}a", "!".repeat(5000)));
        assert!(
            long.contains("is 5001 bytes, over the limit of 1024 bytes"),
            "{long}"
        );
        rejected(&"(".repeat(30_000));
        rejected(&format!("a{}", ".a".repeat(5000)));
        for nasty in every_kind(MAX_NESTING + 2) {
            let message = rejected(&nasty);
            assert!(
                message.contains(&format!("over the limit of {MAX_NESTING};")),
                "{message}"
            );
            let err = compile(&nasty).unwrap_err();
            assert!(err.to_string().contains("over the limit"), "{err}");
        }
        let literal = format!("`{}1{}`", "[".repeat(40), "]".repeat(40));
        assert_eq!(nesting(&literal), 40);
        rejected(&literal);
    }

    #[test]
    fn quoted_literals_do_not_count() {
        let inside = "((((]]]]}}}}!!!!&&&&****....||||".repeat(4);
        for path in [
            format!("'{inside}'"),
            format!("\"{inside}\""),
            format!("`\"{inside}\"`"),
            format!("[?name=='{inside}'].value"),
            format!("'it\\'s {inside}'"),
            format!("\"a \\\" {inside}\""),
        ] {
            assert!(nesting(&path) <= 3, "{path}: {}", nesting(&path));
            assert_eq!(check(&path), None, "{path}");
        }
    }

    #[test]
    fn the_worst_expressions_within_the_limits_are_safe() {
        let mut worst = every_kind(MAX_NESTING);
        worst.push(format!(
            "`{}1{}`",
            "[".repeat(MAX_NESTING),
            "]".repeat(MAX_NESTING)
        ));
        worst.push(format!("a{}", "x".repeat(MAX_BYTES - 1)));
        on_small_stack(move || {
            let data =
                jmespath::Rcvar::new(jmespath::Variable::from_json(r#"{"a":{"a":[1]}}"#).unwrap());
            for path in worst {
                assert!(path.len() <= MAX_BYTES, "{}", path.len());
                assert_eq!(check(&path), None, "{}", shorten(&path, 40));
                if let Ok(expression) = compile(&path) {
                    let _ = expression.search(data.clone());
                }
            }
        });
    }
}
