//! Bounds on a template's shape, checked on its tokens before minijinja parses it: minijinja's
//! parser guards most of its recursion (150 levels), but not a run of unary operators (`- - -`,
//! `not not`) or of `else` branches, and the trees of long operator chains (`a ~ b ~ c ...`,
//! `x | f | f ...`) are walked recursively when compiled, checked and dropped: 20,000 `-` in one
//! expression overflow the stack of the webhook's review thread. The lexer is a loop, so reading
//! the tokens first is safe whatever the text, and the bounds below leave every real template
//! far inside them. As the JMESPath bound in `jmes.rs`.

use minijinja::machinery::{Token, tokenize};
use minijinja::syntax::SyntaxConfig;

/// The most operators one expression tag (`{{ ... }}` or `{% ... %}`) may hold.
pub const MAX_OPERATORS: usize = 64;
/// The deepest blocks (`{% if %}`, `{% for %}`, ...) may nest.
pub const MAX_BLOCK_DEPTH: usize = 32;

/// Statements that open a block closed by `end...`.
const BLOCKS: &[&str] = &[
    "if",
    "for",
    "with",
    "filter",
    "autoescape",
    "macro",
    "call",
    "raw",
];

/// The problem with the template's shape, with its line; `None` when it is within the bounds (or
/// does not lex, which the compiler then reports with its line).
pub(super) fn check(source: &str, syntax: SyntaxConfig) -> Option<String> {
    let mut operators = 0;
    let mut depth: usize = 0;
    // Of the current block tag: its statement's name, whether it assigns (`set x = 1`), and how
    // many tokens it has so far.
    let mut statement: Option<&str> = None;
    let mut assigns = false;
    let mut tokens = 0;
    let mut in_block = false;
    for item in tokenize(source, false, syntax) {
        let Ok((token, span)) = item else {
            return None;
        };
        let line = span.start_line;
        match &token {
            Token::VariableStart => {
                operators = 0;
                continue;
            }
            Token::BlockStart => {
                operators = 0;
                in_block = true;
                statement = None;
                assigns = false;
                tokens = 0;
                continue;
            }
            Token::BlockEnd => {
                in_block = false;
                let opens = match statement {
                    Some(name) if BLOCKS.contains(&name) => true,
                    // `{% set x %}...{% endset %}` opens a block; `{% set x = 1 %}` does not.
                    Some("set") => !assigns,
                    _ => false,
                };
                let closes = statement.is_some_and(|name| name.starts_with("end"));
                if opens {
                    depth += 1;
                    if depth > MAX_BLOCK_DEPTH {
                        return Some(format!(
                            "line {line}: blocks ({{% if %}}, {{% for %}}, {{% with %}}, ...) nest \
                             more than {MAX_BLOCK_DEPTH} deep; flatten them"
                        ));
                    }
                } else if closes {
                    depth = depth.saturating_sub(1);
                }
                continue;
            }
            _ => {}
        }
        if in_block {
            if tokens == 0
                && let Token::Ident(name) = token
            {
                statement = Some(name);
            }
            assigns |= matches!(token, Token::Assign);
            tokens += 1;
        }
        let operator = matches!(
            token,
            Token::Plus
                | Token::Minus
                | Token::Mul
                | Token::Div
                | Token::FloorDiv
                | Token::Pow
                | Token::Mod
                | Token::Dot
                | Token::Tilde
                | Token::Pipe
                | Token::Eq
                | Token::Ne
                | Token::Gt
                | Token::Gte
                | Token::Lt
                | Token::Lte
                | Token::BracketOpen
                | Token::ParenOpen
                | Token::BraceOpen
                | Token::Ident("not" | "and" | "or" | "if" | "else" | "is" | "in")
        );
        if operator {
            operators += 1;
            if operators > MAX_OPERATORS {
                return Some(format!(
                    "line {line}: an expression with more than {MAX_OPERATORS} operators \
                     (`-`, `not`, `.`, `|`, `~`, brackets, ...), which nest too deep to compile \
                     safely; split it with {{% set %}}"
                ));
            }
        }
    }
    None
}
