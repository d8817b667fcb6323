//! Every use of minijinja: the environment a template is compiled in (no loader, no auto-escaping,
//! strict undefined, fuel, a low recursion limit, the extra filters), the admission checks that
//! read a compiled template (its filters, tests and variables, with their lines), rendering
//! within the output limit, and the words of a failed render, which never carry a value.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;

use minijinja::machinery::{Instruction, Instructions, get_compiled_template};
use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};

use super::bounds;
use super::filters::{self, BINARY_MARK, OWN};
use super::{FUEL, MAX_OUTPUT_BYTES, RECURSION_LIMIT};
use crate::error::MAX_LISTED;

/// The name every template has in its own environment (messages use the template's label).
const NAME: &str = "template";

/// The list of minijinja's builtin filters and tests, for messages.
const BUILTINS: &str = "https://docs.rs/minijinja/3.1.0/minijinja/filters/index.html";

/// A template's environment: minijinja's builtins and this project's filters, the template's
/// delimiters, and the rules of SPEC "Rules". No loader is ever installed, and `multi_template`
/// is not compiled in, so `include`, `import` and `extends` find nothing; `debug` is not compiled
/// in either, so no error carries the values a template referenced.
pub(super) fn environment(
    delimiters: Option<(&str, &str)>,
) -> Result<Environment<'static>, String> {
    let mut env = Environment::new();
    // minijinja picks escaping from the name (.html, .json, .yaml); files are written as rendered.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    // `debug()` prints every variable; nothing a file needs.
    env.remove_global("debug");
    env.set_syntax(syntax(delimiters)?);
    filters::add(&mut env);
    Ok(env)
}

/// The syntax of a template with these delimiters.
fn syntax(delimiters: Option<(&str, &str)>) -> Result<SyntaxConfig, String> {
    let mut syntax = SyntaxConfig::builder();
    // A template's text is the file: its last newline stays.
    syntax.keep_trailing_newline(true);
    if let Some((start, end)) = delimiters {
        syntax.variable_delimiters(start.to_owned(), end.to_owned());
    }
    syntax.build().map_err(|e| {
        format!(
            "delimiters {:?} cannot be used: {}; choose a pair that differs from {{% %}} and \
             {{# #}}, such as [\"[[\", \"]]\"]",
            delimiters.map(|(s, e)| [s, e]).unwrap_or_default(),
            e.detail().unwrap_or("invalid custom delimiters")
        )
    })
}

/// The template's environment, once its shape is within the bounds minijinja's parser and
/// compiler can take (`bounds`).
fn checked_environment(
    source: &str,
    delimiters: Option<(&str, &str)>,
) -> Result<Environment<'static>, String> {
    let env = environment(delimiters)?;
    match bounds::check(source, env.syntax().clone()) {
        Some(problem) => Err(problem),
        None => Ok(env),
    }
}

/// A compiled template, ready to render.
pub(super) struct Compiled {
    env: Environment<'static>,
}

impl Compiled {
    /// Compiles `source`; the error is the syntax error with its line.
    pub(super) fn new(source: &str, delimiters: Option<(&str, &str)>) -> Result<Self, String> {
        let mut env = checked_environment(source, delimiters)?;
        env.add_template_owned(NAME, source.to_owned())
            .map_err(|e| syntax_error(&e))?;
        Ok(Self { env })
    }

    /// Renders over `root`, within the fuel and output limits. The error says what went wrong
    /// and where, without a value.
    pub(super) fn render(&self, root: &Value) -> Result<Vec<u8>, String> {
        let template = self
            .env
            .get_template(NAME)
            .map_err(|e| describe(&e, None, root, false))?;
        let mut out = Limited::default();
        match template.render_captured_to(root.clone(), &mut out) {
            Ok(_) => {}
            Err(e) => {
                let instructions = &get_compiled_template(&template).instructions;
                return Err(describe(&e, Some(instructions), root, out.over));
            }
        }
        if out
            .bytes
            .utf8_chunks()
            .any(|chunk| chunk.valid().contains(BINARY_MARK))
        {
            let instructions = &get_compiled_template(&template).instructions;
            let binary = binaries_referenced(instructions, root);
            return Err(format!(
                "a binary value (not UTF-8) was used as text{}; only b64encode and length accept \
                 one",
                if binary.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", binary.join(", "))
                }
            ));
        }
        Ok(out.bytes)
    }
}

/// A syntax error (or another compile error) with its line. Its detail comes from the
/// template's own text, never from a value.
fn syntax_error(e: &Error) -> String {
    let at = e.line().map(|l| format!("line {l}: ")).unwrap_or_default();
    match e.detail() {
        Some(detail) => format!("{at}{}: {detail}", e.kind()),
        None => format!("{at}{}", e.kind()),
    }
}

/// The admission checks of one template: it compiles, and every filter and test it uses exists
/// (read from its compiled instructions: minijinja finds unknown ones only when it renders). Each
/// problem names its line; past the first [`MAX_LISTED`] unknown filters (or tests), one
/// problem counts the rest. One pass over the instructions, whatever their number. `variables` also gives the names it reads, each with the line of its
/// first use, for the caller to check against the files.
pub(super) struct Checked {
    pub problems: Vec<String>,
    /// Top-level names the template reads that it does not set itself, with a line.
    pub variables: BTreeMap<String, Option<usize>>,
    /// minijinja's global functions (`range`, `dict`, `namespace`), which are not files.
    pub globals: BTreeSet<String>,
}

pub(super) fn check(source: &str, delimiters: Option<(&str, &str)>) -> Checked {
    let mut checked = Checked {
        problems: Vec::new(),
        variables: BTreeMap::new(),
        globals: BTreeSet::new(),
    };
    let env = match checked_environment(source, delimiters) {
        Ok(env) => env,
        Err(problem) => {
            checked.problems.push(problem);
            return checked;
        }
    };
    checked.globals = env.globals().map(|(name, _)| name.to_owned()).collect();
    let template = match env.template_from_str(source) {
        Ok(template) => template,
        Err(e) => {
            checked.problems.push(syntax_error(&e));
            return checked;
        }
    };
    let instructions = &get_compiled_template(&template).instructions;
    let state = env.empty_state();
    let mut reported = BTreeSet::new();
    // How many unknown filters and tests were found; those beyond the first MAX_LISTED of each
    // kind are only counted.
    let mut unknown: BTreeMap<&str, usize> = BTreeMap::new();
    // The line of each name's first read, found in the same pass.
    let mut first_read: HashMap<&str, Option<usize>> = HashMap::new();
    for (pc, instruction) in each(instructions) {
        let (what, name, known) = match instruction {
            Instruction::Lookup(name) | Instruction::CallFunction(name, _) => {
                first_read
                    .entry(*name)
                    .or_insert_with(|| instructions.get_line(pc));
                continue;
            }
            Instruction::ApplyFilter(name, _, _) => {
                ("filter", *name, minijinja::tests::is_filter(&state, name))
            }
            Instruction::PerformTest(name, _, _) => {
                ("test", *name, minijinja::tests::is_test(&state, name))
            }
            _ => continue,
        };
        if known || !reported.insert((what, name)) {
            continue;
        }
        let count = unknown.entry(what).or_default();
        *count += 1;
        if *count > MAX_LISTED {
            continue;
        }
        let line = line_of(instructions, pc);
        checked.problems.push(format!(
            "{line}unknown {what} {name:?}; the {what}s are minijinja's builtins ({BUILTINS}){}",
            if what == "filter" {
                format!(" and {}", filters::NAMES)
            } else {
                String::new()
            }
        ));
    }
    checked.problems.extend(
        unknown
            .iter()
            .filter(|(_, n)| **n > MAX_LISTED)
            .map(|(what, n)| format!("and {} more unknown {what}s", n - MAX_LISTED)),
    );
    let undeclared = template.undeclared_variables(false);
    for name in undeclared {
        let line = first_read.get(name.as_str()).copied().flatten();
        checked.variables.insert(name, line);
    }
    checked
}

/// Each instruction with its index. Every check that reads the instructions goes through here,
/// so the tests count the work they do.
fn each<'i, 's>(
    instructions: &'i Instructions<'s>,
) -> impl Iterator<Item = (u32, &'i Instruction<'s>)> {
    (0u32..).map_while(move |pc| {
        #[cfg(test)]
        tests::VISITED.with(|visited| visited.set(visited.get() + 1));
        instructions.get(pc).map(|i| (pc, i))
    })
}

fn line_of(instructions: &Instructions<'_>, pc: u32) -> String {
    instructions
        .get_line(pc)
        .map(|l| format!("line {l}: "))
        .unwrap_or_default()
}

/// The output, at most [`MAX_OUTPUT_BYTES`]; a write past it fails the render.
#[derive(Default)]
struct Limited {
    bytes: Vec<u8>,
    over: bool,
}

impl io::Write for Limited {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_OUTPUT_BYTES {
            self.over = true;
            return Err(io::Error::other("output limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What went wrong in a render, where, and what to do, never with a value: minijinja's details
/// can quote the values (`unable to calculate {lhs} {op} {rhs}`), so only this project's own
/// (marked [`OWN`]) and those that name only the template's own words are shown.
fn describe(
    e: &Error,
    instructions: Option<&Instructions<'_>>,
    root: &Value,
    over: bool,
) -> String {
    let at = e.line().map(|l| format!("line {l}: ")).unwrap_or_default();
    let detail = e.detail().unwrap_or_default();
    let what = match e.kind() {
        ErrorKind::OutOfFuel => format!(
            "the render ran out of fuel, the limit of work one render may do ({FUEL}: one per \
             step, and one per 64 bytes made); the template loops or builds text far beyond a \
             file's needs"
        ),
        ErrorKind::WriteFailure if over => format!(
            "the output is over the limit of {} MiB; a template writes one file of at most that",
            MAX_OUTPUT_BYTES >> 20
        ),
        ErrorKind::UndefinedError => undefined(e.line(), instructions, root),
        ErrorKind::UnknownFilter
        | ErrorKind::UnknownTest
        | ErrorKind::UnknownFunction
        | ErrorKind::UnknownMethod => match e.detail() {
            // "filter x is unknown", "string has no method named x": the template's words.
            Some(detail) => format!("{}: {detail}", e.kind()),
            None => e.kind().to_string(),
        },
        _ if detail.starts_with(OWN) => detail[OWN.len()..].to_owned(),
        _ if detail == "recursion limit exceeded" => format!(
            "recursion limit exceeded: calls and recursive loops nest at most {RECURSION_LIMIT} \
             deep"
        ),
        kind => format!("{kind} (minijinja's details are not shown: they can hold values)"),
    };
    format!("{at}{what}")
}

/// The undefined name: the first expression on the failing line (a name and its attributes, as
/// the template writes them) that does not resolve in `root`, else the expressions the line
/// reads. Only the template's own words and file names, never a value.
fn undefined(line: Option<usize>, instructions: Option<&Instructions<'_>>, root: &Value) -> String {
    const SHOWN: usize = 5;
    let (Some(line), Some(instructions)) = (line, instructions) else {
        return "undefined value: a name, key or attribute does not exist; check the names \
                against the files the objects write, or use default(...) or `is defined`"
            .to_owned();
    };
    let locals: BTreeSet<&str> = each(instructions)
        .filter_map(|(_, i)| match i {
            Instruction::StoreLocal(name) => Some(*name),
            _ => None,
        })
        .collect();
    let chains = expressions(instructions, Some(line));
    let missing = chains
        .iter()
        .find(|chain| !locals.contains(chain.root.as_str()) && chain.is_undefined_in(root));
    let fix = "check the name against the files the objects write (files[\"NAME\"] for any \
               of them), or use default(...) or `is defined` for one that may be missing";
    match missing {
        Some(chain) => format!("undefined value: {} does not exist; {fix}", chain.text),
        None => {
            // Those that could not be followed (a local's, or after a filter): every other one
            // was found.
            let unresolved = |c: &&Chain| c.root.is_empty() || locals.contains(c.root.as_str());
            let mut shown: Vec<&str> = if chains.iter().any(|c| unresolved(&c)) {
                chains
                    .iter()
                    .filter(unresolved)
                    .map(|c| c.text.as_str())
                    .collect()
            } else {
                chains.iter().map(|c| c.text.as_str()).collect()
            };
            let mut seen = BTreeSet::new();
            shown.retain(|text| seen.insert(*text));
            shown.truncate(SHOWN);
            match shown.as_slice() {
                [] => format!("undefined value: a name, key or attribute does not exist; {fix}"),
                [only] => format!("undefined value: {only} does not exist; {fix}"),
                some => format!(
                    "undefined value: one of {} does not exist; {fix}",
                    some.join(", ")
                ),
            }
        }
    }
}

/// How a chain whose base is not a name (a filter's or a call's result) is written.
const UNNAMED: &str = "(…)";

/// A name and the attributes and constant keys read from it, as the template wrote them.
struct Chain {
    /// Empty when the base is not a name.
    root: String,
    /// Attributes and keys after the root, in order.
    path: Vec<String>,
    text: String,
}

impl Chain {
    /// Whether the chain, read in `root` (the render's variables), is undefined: only names of
    /// the render's own variables are followed (`files.x.y`), never a local.
    fn is_undefined_in(&self, root: &Value) -> bool {
        if self.root.is_empty() {
            return false;
        }
        let Ok(mut value) = root.get_attr(&self.root) else {
            return false;
        };
        if value.is_undefined() {
            return true;
        }
        for key in &self.path {
            value = match value.get_attr(key) {
                Ok(v) if !v.is_undefined() => v,
                Ok(_) => match value.get_item(&Value::from(key.as_str())) {
                    Ok(v) if !v.is_undefined() => v,
                    _ => return true,
                },
                Err(_) => return false,
            };
        }
        false
    }
}

/// The chains the instructions read (those of `line` only, when given), in one pass: `Lookup`
/// then `GetAttr` and constant `GetItem`s, a chain never running from one line to the next.
fn expressions(instructions: &Instructions<'_>, line: Option<usize>) -> Vec<Chain> {
    const MAX_LEN: usize = 120;
    let mut chains = Vec::new();
    let mut current: Option<Chain> = None;
    let mut constant: Option<String> = None;
    let mut previous = None;
    for (pc, instruction) in each(instructions) {
        let this = instructions.get_line(pc);
        if line.is_some_and(|line| this != Some(line)) || this != previous {
            chains.extend(current.take());
            constant = None;
        }
        previous = this;
        if line.is_some_and(|line| this != Some(line)) {
            continue;
        }
        match instruction {
            Instruction::Lookup(name) => {
                chains.extend(current.take());
                current = Some(Chain {
                    root: (*name).to_owned(),
                    path: Vec::new(),
                    text: (*name).to_owned(),
                });
            }
            Instruction::GetAttr(attr) => {
                // After a filter or a call the base is not a name: `(…).api_key`.
                let chain = current.get_or_insert_with(|| Chain {
                    root: String::new(),
                    path: Vec::new(),
                    text: UNNAMED.to_owned(),
                });
                chain.path.push((*attr).to_owned());
                chain.text.push('.');
                chain.text.push_str(attr);
            }
            Instruction::LoadConst(value) => {
                constant = value.as_str().map(str::to_owned);
                continue;
            }
            Instruction::GetItem => match (&mut current, constant.take()) {
                (Some(chain), Some(key)) => {
                    chain.text.push_str(&format!("[{key:?}]"));
                    chain.path.push(key);
                }
                _ => chains.extend(current.take()),
            },
            _ => chains.extend(current.take()),
        }
        constant = None;
    }
    chains.extend(current);
    for chain in &mut chains {
        if chain.text.len() > MAX_LEN {
            let mut end = MAX_LEN;
            while !chain.text.is_char_boundary(end) {
                end -= 1;
            }
            chain.text.truncate(end);
            chain.text.push('…');
        }
    }
    chains
}

/// The binary files the template reads by name (`files["cert.der"]`, `CERT`).
fn binaries_referenced(instructions: &Instructions<'_>, root: &Value) -> Vec<String> {
    let mut names = BTreeSet::new();
    for chain in expressions(instructions, None) {
        let mut value = root.get_attr(&chain.root).ok();
        for key in &chain.path {
            value = value.and_then(|v| v.get_item(&Value::from(key.as_str())).ok());
        }
        if let Some(binary) = value
            .as_ref()
            .and_then(|v| v.downcast_object_ref::<filters::Binary>())
        {
            names.insert(format!("{:?}", binary.file));
        }
    }
    names.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::relpath::RelPath;

    thread_local! {
        /// Instructions read by [`each`] on this thread.
        pub(super) static VISITED: Cell<usize> = const { Cell::new(0) };
    }

    /// The instructions `source` compiles to, and the instructions `f` reads.
    fn work(source: &str, f: impl FnOnce()) -> (usize, usize) {
        let env = environment(None).unwrap();
        let template = env.template_from_str(source).unwrap();
        let count = each(&get_compiled_template(&template).instructions).count();
        VISITED.with(|visited| visited.set(0));
        f();
        (count, VISITED.with(Cell::get))
    }

    /// The first line of each of thousands of names is found in one pass, not one per name.
    #[test]
    fn the_check_reads_the_instructions_once() {
        let source: String = (0..7_000).map(|i| format!("{{{{a{i:04}}}}}\n")).collect();
        let (count, visited) = work(&source, || {
            let checked = check(&source, None);
            assert_eq!(checked.variables.len(), 7_000);
            assert_eq!(checked.variables["a6999"], Some(7_000));
        });
        assert!(count > 7_000, "{count}");
        assert!(
            visited <= count + 1,
            "{visited} reads of {count} instructions"
        );
    }

    /// The binary files a failed render read are found in one pass, not one per line.
    #[test]
    fn the_binaries_are_found_in_one_pass() {
        let source = format!("{}{{{{ CERT ~ 'x' }}}}\n", "{{ 1 }}\n".repeat(5_000));
        let path: RelPath = "CERT".parse().unwrap();
        let root = super::super::context::root([(&path, [0xff_u8, 0].as_slice())]);
        let compiled = Compiled::new(&source, None).unwrap();
        let (count, visited) = work(&source, || {
            let err = compiled.render(&root).unwrap_err();
            assert!(err.contains("(\"CERT\")"), "{err}");
        });
        assert!(
            visited <= count + 1,
            "{visited} reads of {count} instructions"
        );
    }
}
