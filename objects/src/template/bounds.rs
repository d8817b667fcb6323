//! Bounds on a template's shape, checked on its tokens before minijinja parses it: minijinja's
//! parser guards most of its recursion (150 levels), but not a run of unary operators (`- - -`,
//! `not not`), of `else` branches, or of `{% elif %}` tags (each is parsed, compiled and dropped
//! as an `if` inside the one before it), and the trees of long operator chains (`a ~ b ~ c ...`,
//! `x | f | f ...`) are walked recursively when compiled, checked and dropped: 20,000 `-` in one
//! expression, or 6,000 `{% elif %}` in one chain, overflow the stack of the webhook's review
//! thread. The lexer is a loop, so reading
//! the tokens first is safe whatever the text, and the bounds below leave every real template
//! far inside them. As the JMESPath bound in `jmes.rs`.

use minijinja::machinery::{Token, tokenize};
use minijinja::syntax::SyntaxConfig;

/// The most operators one expression tag (`{{ ... }}` or `{% ... %}`) may hold.
pub const MAX_OPERATORS: usize = 64;
/// The deepest blocks (`{% if %}`, `{% for %}`, ...) may nest, each `{% elif %}` counting as
/// one more level of the `if` it continues.
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
    // The levels each open block takes: one, and one more for each of its `elif`s; and their sum.
    let mut open: Vec<usize> = Vec::new();
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
                    open.push(1);
                    depth += 1;
                } else if statement == Some("elif") {
                    // Outside an `if` it is a syntax error, found without recursion.
                    if let Some(levels) = open.last_mut() {
                        *levels += 1;
                        depth += 1;
                    }
                } else if closes {
                    depth -= open.pop().unwrap_or(0);
                }
                if depth > MAX_BLOCK_DEPTH {
                    return Some(format!(
                        "line {line}: blocks ({{% if %}}, {{% for %}}, {{% with %}}, ...) nest \
                         more than {MAX_BLOCK_DEPTH} deep, each {{% elif %}} counting as one \
                         more level (it is an if inside the one before it); flatten them, or \
                         replace a long if/elif chain with a lookup in a mapping, such as \
                         {{{{ {{\"a\": \"x\", \"b\": \"y\"}}[name] }}}}"
                    ));
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
