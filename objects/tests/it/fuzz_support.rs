//! What the fuzz targets (fuzz/fuzz_targets/objects_parse.rs) and the property tests of
//! `objects/tests/it/fuzz_annotation.rs` share: a byte source that turns any input into choices,
//! a generator of hostile object lists (and templates lists) built from those choices, and the
//! invariants every result of `parse` (and of `template::parse`, and of a render) must keep
//! whatever the input.

#![allow(
    dead_code,
    unused_imports,
    reason = "each including target uses a different part"
)]

use secrets_injector_objects::annotations::{MAX_OBJECTS_AND_TEMPLATES_BYTES, MAX_OBJECTS_BYTES};
use secrets_injector_objects::error::{MAX_LISTED, MAX_PROBLEM_BYTES};
use secrets_injector_objects::relpath::MAX_NAME_BYTES;
use secrets_injector_objects::relpath::RelPath;
use secrets_injector_objects::template::{self, MAX_OUTPUT_BYTES, MAX_TEMPLATES};
use secrets_injector_objects::{FileMode, PathTranslation, Plan, Settings, parse};

/// A denial message is for `kubectl`: it must stay readable whatever the annotation holds. The
/// bound the message cap gives (the first problems, each cut, and the count of the rest), with
/// room for the webhook's prefix on a workload's template.
pub const MAX_MESSAGE_BYTES: usize = MAX_LISTED * (MAX_PROBLEM_BYTES + 2) + 128;

/// Turns fuzzer bytes (or pseudo-random bytes) into choices; past the end it gives zeros, so
/// every input, even an empty one, decodes to something.
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        let wide = u16::from_le_bytes([self.byte(), self.byte()]);
        usize::from(wide) % n
    }

    pub fn flip(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    pub fn pick<'v, T>(&mut self, items: &'v [T]) -> &'v T {
        &items[self.below(items.len())]
    }

    /// Up to `max` raw bytes of the input, as (lossy) text.
    pub fn raw_text(&mut self, max: usize) -> String {
        let len = self.below(max + 1);
        let bytes: Vec<u8> = (0..len).map(|_| self.byte()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The rest of the input.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.data.get(self.pos..).unwrap_or(&[]);
        self.pos = self.data.len();
        rest
    }
}

/// A small, fast, seedable generator for the property tests (xorshift64*), so a failure names
/// the seed that reproduces it.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Names that try every way out of the mount directory, and some ordinary ones.
pub const HOSTILE_NAMES: &[&str] = &[
    "/app/db",
    "app/secret",
    "db",
    "..",
    ".",
    "",
    "../../etc/passwd",
    "/etc/passwd",
    "a/../../b",
    "..data",
    "..2026_11_23",
    "creds/user",
    "a\0b",
    "\0",
    "x/",
    "/",
    "//",
    "a//b",
    "./a",
    "a/.",
    "C:\\windows",
    "..\\..\\etc",
    "%2e%2e%2fetc",
    "\u{2215}etc\u{2215}passwd",
    "ENV",
    "env",
    "SECRET_USERNAME",
    "arn:aws:ssm:us-east-1:123456789012:parameter/app/db",
    "arn:aws:ssm:eu-west-1:123456789012:parameter/app/db",
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
    "arn:aws:secretsmanager:us-east-1.evil.example:1:secret:x",
    "arn:aws:s3:::bucket/key",
    "arn:aws:ssm:us-east-1:123456789012:parameter",
    "arn:",
    "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/x",
    "https://evil.example/x",
    "@evil.example",
];

const TYPES: &[&str] = &[
    "ssmparameter",
    "secretsmanager",
    "ssmparameterpath",
    "secretsmanagerpath",
    "SSMParameter",
    "SecretsManager",
    "",
    "s3",
];
/// Tag pairs: usable ones first, then what AWS refuses in a tag.
const TAGS: &[(&str, &str)] = &[
    ("team", "payments"),
    ("env", ""),
    ("équipe", "paiements"),
    ("", "x"),
    ("team*", "x"),
    ("k", "a\"b"),
    ("!neg", "x"),
];
const VERSIONS: &[&str] = &["1", "3", "0", "-1", "abc", "1.5", "99999999999999999999999"];
const LABELS: &[&str] = &["AWSCURRENT", "AWSPREVIOUS", "stable", "", "a:b"];
const MODES: &[&str] = &[
    "\"0644\"",
    "\"0600\"",
    "\"0640\"",
    "\"0400\"",
    "\"0000\"",
    "\"0777\"",
    "\"0800\"",
    "\"7777\"",
    "\"644\"",
    "644",
    "0644",
    "0o644",
    "\"0x1a4\"",
    "-1",
    "true",
    "[]",
];
const JMES: &[&str] = &[
    "username",
    "password",
    "a.b",
    "[",
    "`1`",
    "foo | bar",
    "*",
    "[0]",
    "@",
    "a[?b == `1`]",
    "",
    "length(@)",
    "\u{0}",
];
const EXTRA_FIELDS: &[&str] = &["objectAlais", "objecttype", "region", "image", "privileged"];

/// One YAML scalar for `text`: quoted as JSON (valid YAML) or, when safe enough, plain.
fn scalar(b: &mut Bytes<'_>, text: &str) -> String {
    if b.flip()
        && !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_-.".contains(c))
    {
        text.to_owned()
    } else {
        serde_json::to_string(text).expect("a string serialises")
    }
}

const TAME_NAMES: &[&str] = &[
    "/app/db",
    "/app/cache",
    "app/secret",
    "db",
    "creds/user",
    "token",
    "ENV_VALUE",
];

/// A name: an ordinary one when `tame` (most of the time), else one of the hostile ones.
fn name(b: &mut Bytes<'_>, tame: bool) -> String {
    if tame && b.below(16) != 0 {
        let base = *b.pick(TAME_NAMES);
        return format!("{base}{}", b.below(50));
    }
    match b.below(8) {
        0 => "x".repeat(MAX_NAME_BYTES + b.below(3)),
        1 => b.raw_text(24),
        _ => (*b.pick(HOSTILE_NAMES)).to_owned(),
    }
}

/// One object as a list of `key: value` fields.
fn object(b: &mut Bytes<'_>, depth: usize, tame: bool) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    if b.below(if tame { 64 } else { 8 }) != 0 {
        let value = name(b, tame);
        fields.push(("objectName".to_owned(), scalar(b, &value)));
    }
    if b.below(if tame { 64 } else { 4 }) != 0 {
        let value = if tame && b.below(16) != 0 {
            *b.pick(&TYPES[..2])
        } else {
            *b.pick(TYPES)
        };
        fields.push(("objectType".to_owned(), scalar(b, value)));
    }
    if b.flip() {
        let value = name(b, tame);
        fields.push(("objectAlias".to_owned(), scalar(b, &value)));
    }
    if b.below(if tame { 16 } else { 4 }) == 0 {
        let value = if tame {
            *b.pick(&VERSIONS[..2])
        } else {
            *b.pick(VERSIONS)
        };
        let value = if b.flip() {
            value.to_owned()
        } else {
            scalar(b, value)
        };
        fields.push(("objectVersion".to_owned(), value));
    }
    if b.below(if tame { 16 } else { 4 }) == 0 {
        let value = *b.pick(LABELS);
        fields.push(("objectVersionLabel".to_owned(), scalar(b, value)));
    }
    if b.below(3) == 0 {
        let modes = if tame { &MODES[..4] } else { MODES };
        fields.push(("filePermission".to_owned(), (*b.pick(modes)).to_owned()));
    }
    if b.below(4) == 0 {
        let values = ["true", "false", "yes", "1", "\"true\""];
        let value = if tame {
            *b.pick(&values[..2])
        } else {
            *b.pick(&values)
        };
        fields.push(("optional".to_owned(), value.to_owned()));
    }
    if b.below(if tame { 8 } else { 5 }) == 0 && depth == 0 {
        let pairs: Vec<String> = (0..b.below(if tame { 3 } else { 13 }))
            .map(|_| {
                let (key, value) = if tame {
                    TAGS[b.below(2)]
                } else {
                    *b.pick(TAGS)
                };
                format!("{}: {}", scalar(b, key), scalar(b, value))
            })
            .collect();
        fields.push(("tags".to_owned(), format!("{{{}}}", pairs.join(", "))));
    }
    if b.below(3) == 0 && depth == 0 {
        let entries: Vec<String> = (0..b.below(4))
            .map(|_| {
                let mut entry = Vec::new();
                if b.below(if tame { 64 } else { 6 }) != 0 {
                    let path = if tame {
                        *b.pick(&JMES[..3])
                    } else {
                        *b.pick(JMES)
                    };
                    entry.push(format!("path: {}", scalar(b, path)));
                }
                if b.below(if tame { 64 } else { 6 }) != 0 {
                    let alias = name(b, tame);
                    entry.push(format!("objectAlias: {}", scalar(b, &alias)));
                }
                if b.below(4) == 0 {
                    let modes = if tame { &MODES[..4] } else { MODES };
                    entry.push(format!("filePermission: {}", b.pick(modes)));
                }
                format!("{{{}}}", entry.join(", "))
            })
            .collect();
        fields.push(("jmesPath".to_owned(), format!("[{}]", entries.join(", "))));
    }
    if b.below(if tame { 40 } else { 5 }) == 0 && depth == 0 {
        let inner: Vec<String> = object(b, 1, tame)
            .into_iter()
            .filter(|(k, _)| k.starts_with("objectName") || k.starts_with("objectVersion"))
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        fields.push((
            "failoverObject".to_owned(),
            format!("{{{}}}", inner.join(", ")),
        ));
    }
    if b.below(if tame { 32 } else { 6 }) == 0 {
        let key = *b.pick(EXTRA_FIELDS);
        fields.push((key.to_owned(), "x".to_owned()));
    }
    fields
}

/// A hostile (often, but not always, invalid) `secrets-injector.io/objects` annotation, in block
/// YAML, flow YAML or JSON, sometimes with anchors, comments, or bytes spliced in.
pub fn objects_annotation(b: &mut Bytes<'_>) -> String {
    let tame = b.flip();
    objects_annotation_with(b, tame)
}

/// As [`objects_annotation`]; `tame` makes a valid list likely.
pub fn objects_annotation_with(b: &mut Bytes<'_>, tame: bool) -> String {
    let count = match b.below(10) {
        0 => 0,
        1 => 11 + b.below(30),
        _ => 1 + b.below(4),
    };
    let objects: Vec<Vec<(String, String)>> = (0..count).map(|_| object(b, 0, tame)).collect();
    let mut text = match b.below(3) {
        0 => objects
            .iter()
            .map(|fields| {
                if fields.is_empty() {
                    return "- {}\n".to_owned();
                }
                fields
                    .iter()
                    .enumerate()
                    .map(|(i, (k, v))| format!("{}{k}: {v}\n", if i == 0 { "- " } else { "  " }))
                    .collect::<String>()
            })
            .collect::<String>(),
        1 => format!(
            "[{}]",
            objects
                .iter()
                .map(|fields| format!(
                    "{{{}}}",
                    fields
                        .iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        _ => format!(
            "[{}]",
            objects
                .iter()
                .map(|fields| format!(
                    "{{{}}}",
                    fields
                        .iter()
                        .map(|(k, v)| format!("{}: {v}", serde_json::to_string(k).expect("key")))
                        .collect::<Vec<_>>()
                        .join(",")
                ))
                .collect::<Vec<_>>()
                .join(",")
        ),
    };
    match b.below(if tame { 48 } else { 12 }) {
        0 => text = format!("a: &a [{text}]\nb: [*a, *a, *a]\n"),
        1 => text = format!("# comment\n{text}"),
        2 => text.insert_str(0, "%YAML 1.2\n---\n"),
        3 => text.push_str("\n---\n- objectName: /second/document\n"),
        4 => {
            let at = b.below(text.len() + 1);
            let at = (0..=at)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            let splice = b.raw_text(16);
            text.insert_str(at, &splice);
        }
        5 => text = "[".repeat(b.below(200)) + &text,
        _ => {}
    }
    text
}

/// Settings the other annotations could give, valid or not.
pub fn settings(b: &mut Bytes<'_>) -> Settings {
    let regions = [
        "us-east-1",
        "eu-west-1",
        "us-east-1",
        "eu-west-1",
        "",
        "US-EAST-1",
        "evil.example",
        "us-east-1/x",
    ];
    let region = if b.below(8) == 0 {
        *b.pick(&regions[4..])
    } else {
        *b.pick(&regions[..4])
    }
    .to_owned();
    let failover_region = match b.below(4) {
        0 => Some((*b.pick(&["us-west-2", "us-east-1", "evil.example:443", ""])).to_owned()),
        _ => None,
    };
    let path_translation = *b.pick(&[
        PathTranslation::Replace('_'),
        PathTranslation::Replace('-'),
        PathTranslation::Replace('.'),
        PathTranslation::Directories,
    ]);
    let default_mode = *b.pick(&[FileMode::DEFAULT, FileMode::from_bits(0o600).expect("mode")]);
    let env_file = match b.below(4) {
        0 => Some(
            (*b.pick(&[
                "ENV",
                "env",
                "../env",
                "/env",
                "a/b",
                "",
                ".",
                "SECRET_USERNAME",
            ]))
            .to_owned(),
        ),
        _ => None,
    };
    Settings {
        region,
        failover_region,
        path_translation,
        default_mode,
        env_file,
    }
}

/// Parses `text` under `settings` and checks every invariant; panics (which the fuzzer reports
/// as a crash) when one breaks. Returns the plan when the text was accepted.
pub fn check_parse(text: &str, settings: Settings) -> Option<Plan> {
    let result = parse(text, settings.clone());
    // The work is bounded, not timed (the fuzzer's own -timeout catches a slow input): past the
    // size limit nothing is parsed, and below it the YAML parser's event, node and alias budget
    // stops the rest.
    if text.len() > MAX_OBJECTS_BYTES {
        let refused = result.as_ref().err().map(ToString::to_string);
        assert!(
            refused.as_deref().is_some_and(
                |m| m.contains(&format!("over the limit of {MAX_OBJECTS_BYTES} bytes"))
            ),
            "{} bytes parsed past the size limit: {refused:?}",
            text.len()
        );
    }
    // Parsing is a pure function: the same input gives the same answer.
    assert_eq!(
        result,
        parse(text, settings.clone()),
        "parse is not deterministic"
    );
    match result {
        Ok(plan) => {
            check_plan(&plan);
            Some(plan)
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an error with no problem in it");
            let message = errors.to_string();
            assert!(
                message.starts_with("annotation secrets-injector.io/"),
                "a denial must name its annotation: {message:.300}"
            );
            assert!(
                !message.contains('\n'),
                "denials are one line: {message:.300}"
            );
            assert!(
                message.len() <= MAX_MESSAGE_BYTES,
                "the denial is {} bytes for a {}-byte annotation; cap it: {:.300}",
                message.len(),
                text.len(),
                message
            );
            None
        }
    }
}

/// What an accepted plan guarantees the injector: every file it will write stays inside the
/// mount directory, and no two entries write one file.
pub fn check_plan(plan: &Plan) {
    assert!(!plan.objects.is_empty(), "an accepted plan has objects");
    let mut files: Vec<&str> = Vec::new();
    for object in &plan.objects {
        check_inside(object.file.as_str());
        for entry in &object.jmes_path {
            check_inside(entry.file.as_str());
        }
    }
    for (file, mode) in plan.static_files() {
        check_inside(file.as_str());
        assert!(mode.bits() <= 0o777, "mode {:o} of {file}", mode.bits());
        assert!(!files.contains(&file.as_str()), "two entries write {file}");
        files.push(file.as_str());
    }
    // A directory object's directory holds only what the injector finds under its name.
    for object in &plan.objects {
        if object.object_type.facts().directory {
            let dir = object.file.as_str();
            for file in &files {
                assert!(
                    *file != dir && !file.starts_with(&format!("{dir}/")),
                    "{file} is inside the directory {dir} of {}",
                    object.label()
                );
            }
        }
    }
    if let Some(env) = &plan.env_file {
        check_inside(env.as_str());
        assert!(
            !files.contains(&env.as_str()),
            "the env file is also an object's file: {env}"
        );
    }
    // Files and directories never overlap: one file cannot be another's directory.
    for a in &files {
        for b in &files {
            assert!(
                a == b || !b.starts_with(&format!("{a}/")),
                "{a} is a file and a directory of {b}"
            );
        }
    }
}

/// A path the injector may join onto the mount directory.
pub fn check_inside(path: &str) {
    assert!(!path.is_empty(), "an empty path");
    assert!(!path.starts_with('/'), "absolute path {path:?}");
    for component in path.split('/') {
        assert!(
            !component.is_empty() && component != "." && component != "..",
            "path {path:?} has the component {component:?}"
        );
        assert!(!component.contains('\0'), "NUL in {path:?}");
        assert!(
            component.len() <= MAX_NAME_BYTES,
            "component over 255 bytes in {path:.80}"
        );
    }
}

/// The fuzz target's whole body. An input that starts with a control byte (other than tab and
/// line breaks) is decoded into settings and a generated list; any other input is the
/// annotation text itself, under the default settings, so plain-text seeds work as they are.
pub fn fuzz_one(data: &[u8]) {
    match data.first() {
        Some(&first) if first < 0x20 && !matches!(first, b'\t' | b'\n' | b'\r') => {
            let mut b = Bytes::new(&data[1..]);
            let settings = settings(&mut b);
            let text = objects_annotation(&mut b);
            let plan = check_parse(&text, settings);
            // Templates over the list, from the rest of the input.
            if !b.is_empty() {
                let templates = templates_annotation(&mut b);
                check_templates(&templates, text.len(), plan.as_ref());
            }
        }
        _ => {
            let text = String::from_utf8_lossy(data);
            check_parse(&text, Settings::new("us-east-1"));
        }
    }
}

/// Names a template may try: ordinary ones, the seeds' files, and every kind of bad one.
const TEMPLATE_NAMES: &[&str] = &[
    "out",
    "config.yaml",
    "DATABASE_URL",
    "index.html",
    "SECRET_PASSWORD",
    "files",
    "..data",
    "a/b",
    "",
    ".",
    "..",
    "token0",
];

/// Pieces of template text: reads of files, filters (known and not), statements, hostile
/// constructs and broken syntax.
const TEMPLATE_PIECES: &[&str] = &[
    // Valid over any plan.
    "text ",
    "\n",
    "{{ files | tojson }}",
    "{% for k, v in files | items %}{{ k | urlencode }}={{ v | shellquote }}\n{% endfor %}",
    "{{ files.db1 | default('none') }}",
    // The rest: valid over some plans only, or never.
    "{{ SECRET_PASSWORD }}",
    "{{ files.db1 }}",
    "{{ files['/app/db1'] | default('') }}",
    "{{ files | toyaml }}",
    "{{ (files.db1 | fromjson).password }}",
    "{{ files.db1 | b64encode | b64decode }}",
    "{{ token0 | upper }}",
    "{{ out }}",
    "{{ nope }}",
    "{{ x | nofilter }}",
    "{% if x is notatest %}{% endif %}",
    "{{ 'x' * 10**9 }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for x in [[1]] recursive %}{{ loop([x, x]) }}{% endfor %}",
    "{% for i in range(3000) %}{{ 'y' * 1000 }}{% endfor %}",
    "{% macro f() %}{{ f() }}{% endmacro %}",
    "{% include '/etc/passwd' %}",
    "{{ env }}",
    "{{",
    "}}",
    "{% if %}",
    "[[ SECRET_PASSWORD ]]",
    "((((((((((((((((((((",
    "{{ SECRET_PASSWORD // 0 }}",
];

/// A templates list: YAML items with a name, a text of pieces, and sometimes a mode, delimiters or
/// an unknown field; sometimes too many, sometimes huge.
pub fn templates_annotation(b: &mut Bytes<'_>) -> String {
    templates_annotation_with(b, false)
}

/// A templates list; when `tame`, one or two plausible templates that are valid over any plan.
pub fn templates_annotation_with(b: &mut Bytes<'_>, tame: bool) -> String {
    if tame {
        return (0..1 + b.below(2))
            .map(|i| {
                let body: String = (0..1 + b.below(3))
                    .map(|_| *b.pick(&TEMPLATE_PIECES[..5]))
                    .collect();
                format!(
                    "- name: t{i}\n  template: {}\n",
                    serde_json::Value::from(body)
                )
            })
            .collect();
    }
    if b.below(16) == 0 {
        return b.raw_text(256);
    }
    let count = match b.below(16) {
        0 => MAX_TEMPLATES + 1 + b.below(4),
        _ => 1 + b.below(4),
    };
    let mut text = String::new();
    for _ in 0..count {
        let name = match b.below(16) {
            0 => "n".repeat(MAX_NAME_BYTES + 1),
            1 => b.raw_text(12),
            2..=7 => format!("t{}", b.below(100)),
            _ => (*b.pick(TEMPLATE_NAMES)).to_owned(),
        };
        let mut body = String::new();
        for _ in 0..1 + b.below(4) {
            let piece = if b.flip() {
                *b.pick(&TEMPLATE_PIECES[..5])
            } else {
                *b.pick(TEMPLATE_PIECES)
            };
            body.push_str(piece);
        }
        if b.below(32) == 0 {
            body.push_str(&"z".repeat(MAX_OBJECTS_AND_TEMPLATES_BYTES));
        }
        text.push_str(&format!(
            "- name: {}\n  template: {}\n",
            serde_json::Value::from(name),
            serde_json::Value::from(body)
        ));
        match b.below(8) {
            0 => text.push_str(&format!("  filePermission: {:?}\n", b.pick(MODES))),
            1 => text.push_str("  delimiters: [\"[[\", \"]]\"]\n"),
            2 => text.push_str("  delimiters: [\"{%\", \"%}\"]\n"),
            3 => text.push_str("  mode: \"0400\"\n"),
            _ => {}
        }
    }
    text
}

/// The invariants of `template::parse` over a plan (or none), and of rendering what it accepts
/// over values that hold a marker no message may show: no panic, a one-line denial naming the
/// annotation and capped, accepted names that stay inside the mount directory and clash with
/// nothing, outputs within the limit, render failures that name their template and never a
/// value.
pub fn check_templates(text: &str, objects_bytes: usize, plan: Option<&Plan>) {
    const MARK: &str = "MARK-of-a-value";
    let result = template::parse(text, objects_bytes, plan);
    if text.len() + objects_bytes > MAX_OBJECTS_AND_TEMPLATES_BYTES {
        assert!(
            result
                .as_ref()
                .is_err_and(|e| e.to_string().contains("(64 KiB) for both")),
            "{} bytes of templates checked past the size limit",
            text.len()
        );
    }
    let templates = match result {
        Ok(templates) => templates,
        Err(errors) => {
            let message = errors.to_string();
            assert!(
                message.starts_with("annotation secrets-injector.io/"),
                "a denial must name its annotation: {message:.300}"
            );
            assert!(
                !message.contains('\n'),
                "denials are one line: {message:.300}"
            );
            assert!(
                message.len() <= MAX_MESSAGE_BYTES,
                "{} bytes",
                message.len()
            );
            return;
        }
    };
    assert!(templates.items.len() <= MAX_TEMPLATES);
    let mut names = Vec::new();
    for t in &templates.items {
        check_inside(t.name.as_str());
        assert!(t.name.is_top_level() && !t.name.is_reserved(), "{}", t.name);
        assert_ne!(t.name.as_str(), template::RESERVED_NAME);
        assert!(!names.contains(&t.name), "two templates write {}", t.name);
        names.push(t.name.clone());
    }
    let Some(plan) = plan else { return };
    for (file, _) in plan.static_files() {
        let top = file.components().next().unwrap();
        assert!(
            names.iter().all(|n| n.as_str() != top),
            "template {top} writes an object's file"
        );
    }
    let compiled = templates.compile().expect("accepted templates compile");
    let files: Vec<(RelPath, Vec<u8>)> = plan
        .static_files()
        .map(|(path, _)| {
            let value = if path.as_str().len() % 3 == 0 {
                vec![0xff, 0xfe]
            } else {
                format!("{{\"password\": \"{MARK}\"}}").into_bytes()
            };
            (path.clone(), value)
        })
        .collect();
    match compiled.render(files.iter().map(|(p, v)| (p, v.as_slice()))) {
        Ok(rendered) => {
            for file in rendered {
                assert!(file.bytes.len() <= MAX_OUTPUT_BYTES);
            }
        }
        Err(failures) => {
            for failure in failures {
                let shown = format!("{failure} {failure:?}");
                assert!(shown.starts_with("templates["), "{shown:.300}");
                assert!(
                    !shown.contains(MARK),
                    "a render failure shows a value: {shown:.300}"
                );
                assert!(!shown.contains('\n'), "{shown:.300}");
            }
        }
    }
}
