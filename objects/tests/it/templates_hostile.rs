//! Hostile templates: each is denied at admission where that can be known, else fails its render
//! naming the limit, having done a bounded amount of work (counted in fuel, not timed); no
//! template reaches the environment, a file or the network; no message carries a value.

use secrets_injector_objects::relpath::RelPath;
use secrets_injector_objects::template::{self, FUEL, MAX_OUTPUT_BYTES, Templates};
use secrets_injector_objects::{Plan, Settings, parse};

const OBJECTS: &str = "- objectName: test/secret\n  objectType: secretsmanager\n  jmesPath:\n    \
                       - {path: password, objectAlias: SECRET_PASSWORD}\n";

/// A value no message may show.
const SECRET: &str = "hunter2-S3cr3t-value";

fn plan() -> Plan {
    parse(OBJECTS, Settings::new("us-east-1")).unwrap()
}

fn one(text: &str) -> String {
    format!(
        "- name: out\n  template: {}\n",
        serde_json::Value::from(text)
    )
}

fn check(text: &str) -> Result<Templates, String> {
    template::parse(&one(text), OBJECTS.len(), Some(&plan())).map_err(|e| e.to_string())
}

fn denied(text: &str) -> String {
    match check(text) {
        Ok(_) => panic!("accepted: {text}"),
        Err(message) => message,
    }
}

fn files(password: &str) -> Vec<(RelPath, Vec<u8>)> {
    let secret = serde_json::json!({"password": password}).to_string();
    vec![
        ("test_secret".parse().unwrap(), secret.into_bytes()),
        (
            "SECRET_PASSWORD".parse().unwrap(),
            password.as_bytes().to_vec(),
        ),
    ]
}

/// The message of a render that must fail.
fn render_fails(text: &str) -> String {
    let templates = check(text).unwrap_or_else(|e| panic!("denied: {e}"));
    let compiled = templates.compile().unwrap();
    let files = files(SECRET);
    match compiled.render(files.iter().map(|(p, v)| (p, v.as_slice()))) {
        Ok(out) => panic!("rendered {} bytes: {text}", out[0].bytes.len()),
        Err(errors) => {
            let message = errors[0].to_string();
            assert!(!message.contains(SECRET), "{message}");
            message
        }
    }
}

#[test]
fn a_loop_without_end_runs_out_of_fuel() {
    let err = render_fails(
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    );
    assert!(err.contains("line 1: the render ran out of fuel"), "{err}");
    assert!(err.contains(&FUEL.to_string()), "{err}");
}

#[test]
fn a_huge_string_runs_out_of_fuel_before_it_is_made() {
    let err = render_fails("{{ 'x' * 10**9 }}");
    assert!(err.contains("ran out of fuel"), "{err}");
    // Doubling in a loop is stopped the same way.
    let err = render_fails(
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
    );
    assert!(err.contains("ran out of fuel"), "{err}");
}

#[test]
fn output_over_the_limit_fails_naming_it() {
    // 2 MiB of output is within the fuel, but over the file limit.
    let err = render_fails("{% for i in range(2048) %}{{ 'y' * 1024 }}{% endfor %}");
    assert!(
        err.contains("the output is over the limit of 1 MiB"),
        "{err}"
    );
    assert_eq!(MAX_OUTPUT_BYTES, 1 << 20);
}

#[test]
fn macros_and_other_templates_are_not_available() {
    for text in [
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
        "{% include 'other' %}",
        "{% include '/etc/passwd' %}",
        "{% import '/etc/passwd' as p %}",
        "{% from 'x' import y %}",
        "{% extends '/etc/passwd' %}",
        "{% call f() %}{% endcall %}",
    ] {
        let err = denied(text);
        assert!(err.contains("line 1: syntax error"), "{text}: {err}");
    }
}

#[test]
fn recursion_through_recursive_loops_stops_at_the_limit() {
    let err = render_fails("{% for x in [[1]] recursive %}{{ loop([x, x]) }}{% endfor %}");
    assert!(
        err.contains("recursion limit exceeded") || err.contains("ran out of fuel"),
        "{err}"
    );
}

#[test]
fn no_environment_file_or_network() {
    // Nothing names the process environment, a file or a URL: unknown names are denied.
    for (text, name) in [
        ("{{ env.AWS_SECRET_ACCESS_KEY }}", "env"),
        ("{{ environ['HOME'] }}", "environ"),
        ("{{ open('/etc/passwd') }}", "open"),
        ("{{ lookup('file', '/etc/passwd') }}", "lookup"),
        ("{{ url('http://169.254.169.254/') }}", "url"),
        ("{{ now() }}", "now"),
        ("{{ debug() }}", "debug"),
    ] {
        let err = denied(text);
        assert!(
            err.contains(&format!("line 1: {name} is not a file the objects write")),
            "{text}: {err}"
        );
    }
    let err = denied("{{ '/etc/passwd' | include }}");
    assert!(err.contains("unknown filter \"include\""), "{err}");
}

/// The debug form of minijinja's errors prints the values a template referenced; no message
/// here is built from it, and this test runs in a debug build, where minijinja's debug mode
/// would be on by default if it were compiled in.
#[test]
fn a_failed_render_never_prints_a_value() {
    for text in [
        "{{ SECRET_PASSWORD // 0 }}",
        "{{ SECRET_PASSWORD - 1 }}",
        "{{ -SECRET_PASSWORD }}",
        "{{ SECRET_PASSWORD | int + {} }}",
        "{{ SECRET_PASSWORD.nope }}",
        "{{ SECRET_PASSWORD() }}",
        "{{ SECRET_PASSWORD | fromjson }}",
        "{{ SECRET_PASSWORD | b64decode }}",
        "{{ files[SECRET_PASSWORD] }}",
        "{{ (files.test_secret | fromjson)[SECRET_PASSWORD] }}",
        "{% for a, b in SECRET_PASSWORD %}{% endfor %}",
        "{{ SECRET_PASSWORD | batch(0) }}",
        "{{ SECRET_PASSWORD | round }}",
        "{{ SECRET_PASSWORD | sum }}",
        "{{ SECRET_PASSWORD | join(1) | attr(SECRET_PASSWORD) }}",
        "{{ SECRET_PASSWORD | format(1) | int(SECRET_PASSWORD) }}",
    ] {
        let templates = check(text).unwrap_or_else(|e| panic!("{text}: denied: {e}"));
        let files = files(SECRET);
        let result = templates
            .compile()
            .unwrap()
            .render(files.iter().map(|(p, v)| (p, v.as_slice())));
        if let Err(errors) = result {
            for error in errors {
                let shown = format!("{error} {error:?}");
                assert!(!shown.contains(SECRET), "{text}: {shown}");
                assert!(!shown.contains("hunter2"), "{text}: {shown}");
                assert!(shown.contains("templates[0] (name \"out\")"), "{shown}");
            }
        }
    }
}

#[test]
fn sixty_four_kib_of_templates_is_checked_in_bounded_work() {
    // 32 templates filling the 64 KiB between them, each full of expressions: every check
    // runs, and the answer is one message.
    let room = 65_536 - OBJECTS.len();
    let each = room / 32 - 40;
    let body = "{{ SECRET_PASSWORD | upper }}".repeat(each / 29);
    let all: String = (0..32)
        .map(|i| {
            format!(
                "- name: t{i}\n  template: {}\n",
                serde_json::Value::from(body.as_str())
            )
        })
        .collect();
    assert!(all.len() <= room, "{}", all.len());
    let templates = template::parse(&all, OBJECTS.len(), Some(&plan())).unwrap();
    assert_eq!(templates.items.len(), 32);
    let files = files(SECRET);
    let out = templates
        .compile()
        .unwrap()
        .render(files.iter().map(|(p, v)| (p, v.as_slice())))
        .unwrap();
    assert_eq!(out.len(), 32);
}

/// Every kind of deep or long nesting, at sizes that overflowed the stack before the bounds
/// (20,000 `-` did, in minijinja's parser), checked on a thread with the 2 MiB stack of the
/// webhook's review threads: each is denied with its line, none crashes.
#[test]
fn deep_nesting_of_every_kind_is_denied_before_the_parser() {
    use secrets_injector_objects::template::{MAX_BLOCK_DEPTH, MAX_OPERATORS};
    let chain = |op: &str, n: usize| format!("{{{{ 1{} }}}}", format!(" {op} 1").repeat(n));
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "minus",
            format!("{{{{ {}1 }}}}", "-".repeat(20_000)),
            "operators",
        ),
        (
            "not",
            format!("{{{{ {}1 }}}}", "not ".repeat(10_000)),
            "operators",
        ),
        (
            "paren",
            format!("{{{{ {}1{} }}}}", "(".repeat(20_000), ")".repeat(20_000)),
            "operators",
        ),
        (
            "list",
            format!("{{{{ {}1{} }}}}", "[".repeat(20_000), "]".repeat(20_000)),
            "operators",
        ),
        (
            "map",
            format!("{{{{ {}1{} }}}}", "{'a': ".repeat(5_000), "}".repeat(5_000)),
            "operators",
        ),
        (
            "else",
            format!("{{{{ 1{} }}}}", " if 1 else 1".repeat(3_000)),
            "operators",
        ),
        ("concat", chain("~", 10_000), "operators"),
        ("plus", chain("+", 10_000), "operators"),
        (
            "filters",
            format!("{{{{ 1{} }}}}", " | abs".repeat(8_000)),
            "operators",
        ),
        (
            "attributes",
            format!("{{{{ files{} }}}}", ".a".repeat(10_000)),
            "operators",
        ),
        (
            "items",
            format!("{{{{ files{} }}}}", "[0]".repeat(10_000)),
            "operators",
        ),
        (
            "calls",
            format!("{{{{ range{} }}}}", "(1)".repeat(10_000)),
            "operators",
        ),
        (
            "if",
            format!(
                "{}x{}",
                "{% if true %}".repeat(2_000),
                "{% endif %}".repeat(2_000)
            ),
            "blocks",
        ),
        (
            "for",
            format!(
                "{}{}",
                "{% for a in files %}".repeat(1_500),
                "{% endfor %}".repeat(1_500)
            ),
            "blocks",
        ),
        (
            "set",
            format!(
                "{}{}",
                "{% set x %}".repeat(2_000),
                "{% endset %}".repeat(2_000)
            ),
            "blocks",
        ),
        (
            "with",
            format!(
                "{}{}",
                "{% with x = 1 %}".repeat(2_000),
                "{% endwith %}".repeat(2_000)
            ),
            "blocks",
        ),
        (
            "filter",
            format!(
                "{}{}",
                "{% filter upper %}".repeat(1_500),
                "{% endfilter %}".repeat(1_500)
            ),
            "blocks",
        ),
        (
            "autoescape",
            format!(
                "{}{}",
                "{% autoescape false %}".repeat(1_500),
                "{% endautoescape %}".repeat(1_500)
            ),
            "blocks",
        ),
        (
            "for else",
            format!(
                "{}{}",
                "{% for a in files %}{% else %}".repeat(1_000),
                "{% endfor %}".repeat(1_000)
            ),
            "blocks",
        ),
        (
            "statement",
            format!("{{% set x = {}1 %}}", "-".repeat(20_000)),
            "operators",
        ),
    ];
    for (name, text, wanted) in cases {
        let handle = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || check(&text).map(|_| ()))
            .unwrap();
        let err = handle.join().unwrap_or_else(|_| panic!("{name}: panicked"));
        let err = err.expect_err(name);
        assert!(
            err.contains("line 1: ") && err.contains(wanted),
            "{name}: {err:.300}"
        );
        assert!(err.len() < 600, "{name}: {}", err.len());
    }
    // At the bounds, accepted.
    let ops = format!("{{{{ {}1 }}}}", "-".repeat(MAX_OPERATORS));
    check(&ops).unwrap();
    let blocks = format!(
        "{}x{}",
        "{% if true %}".repeat(MAX_BLOCK_DEPTH),
        "{% endif %}".repeat(MAX_BLOCK_DEPTH)
    );
    check(&blocks).unwrap();
    // Flat is fine however long: a loop over many lines, a list of many items.
    let flat = format!(
        "{{{{ [{}] | length }}}}{}",
        "1, ".repeat(5_000),
        "{% if true %}x{% endif %}".repeat(500)
    );
    check(&flat).unwrap();
}

/// Runs `f` on a thread with the 2 MiB stack of the webhook's review threads; a stack overflow
/// there aborts the whole process, so a test that overflows fails loudly.
fn on_review_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

/// minijinja nests each `{% elif %}` inside the `if` before it, and parses, compiles and drops
/// that chain recursively without a guard: 6,000 of them (60 KB, within the annotation's limit)
/// overflowed the stack. Each counts as a level of nesting, in the webhook's check and in the
/// injector's compile alike.
#[test]
fn a_long_elif_chain_is_denied_before_the_parser() {
    use secrets_injector_objects::template::{MAX_BLOCK_DEPTH, Template};
    let chain = |name: &str, elifs: usize| {
        format!(
            "{{%if {name}%}}{}{{%endif%}}",
            format!("{{%elif {name}%}}").repeat(elifs)
        )
    };
    let long = chain("a", 6_000);
    assert!(one(&long).len() + OBJECTS.len() <= 65_536);
    let source = long.clone();
    let err = on_review_stack(move || check(&source).map(|_| ())).expect_err("accepted");
    assert!(
        err.contains("line 1: ") && err.contains("nest more than 32 deep"),
        "{err:.300}"
    );
    assert!(err.contains("{% elif %}"), "{err:.300}");
    assert!(err.len() < 600, "{}", err.len());
    // The injector compiles what it is given with the same bounds.
    let templates = Templates {
        items: vec![Template {
            index: 0,
            name: "out".parse().unwrap(),
            mode: secrets_injector_objects::FileMode::DEFAULT,
            source: long,
            delimiters: None,
        }],
        warnings: Vec::new(),
    };
    let err = on_review_stack(move || templates.compile().map(|_| ()))
        .expect_err("compiled")
        .to_string();
    assert!(err.contains("nest more than 32 deep"), "{err:.300}");
    // Levels add up: inside blocks, fewer elifs are left.
    let nested = |outer: usize, elifs: usize| {
        format!(
            "{}{}{}",
            "{% if true %}".repeat(outer),
            chain("SECRET_PASSWORD", elifs),
            "{% endif %}".repeat(outer)
        )
    };
    check(&nested(0, MAX_BLOCK_DEPTH - 1)).unwrap();
    check(&nested(10, MAX_BLOCK_DEPTH - 11)).unwrap();
    let err = check(&nested(10, MAX_BLOCK_DEPTH - 10)).unwrap_err();
    assert!(err.contains("nest more than 32 deep"), "{err}");
    // A chain closed gives its levels back; `else` adds none.
    let many = format!(
        "{}{{% if true %}}x{{% else %}}y{{% endif %}}",
        chain("SECRET_PASSWORD", MAX_BLOCK_DEPTH - 1).repeat(20)
    );
    check(&many).unwrap();
}

/// A template's name is in each of its problems: a 60 KB one by its start only.
#[test]
fn a_long_template_name_is_shortened_in_each_problem() {
    let filters: String = (0..100).map(|i| format!("{{{{1|f{i}}}}}")).collect();
    let text = format!(
        "- name: {}\n  template: {}\n",
        "n".repeat(60_000),
        serde_json::Value::from(filters)
    );
    let errors = template::parse(&text, OBJECTS.len(), Some(&plan())).unwrap_err();
    // The name's own problem, 20 filters, and the count of the rest.
    assert_eq!(errors.0.len(), 22, "{}", errors.0.len());
    let bytes: usize = errors.0.iter().map(|e| e.to_string().len()).sum();
    assert!(bytes < errors.0.len() * 512, "{bytes} bytes");
    let first = errors.0[0].to_string();
    assert!(
        first.contains(&format!("templates[0] (name \"{}…\")", "n".repeat(128))),
        "{first:.300}"
    );
}

/// 64 KiB of distinct unknown names (`{{a0001}}{{a0002}}...`, about 7,000) or unknown filters:
/// each template lists the first 20 problems of a kind and counts the rest, so a denial holds a
/// few KB whatever the text.
#[test]
fn thousands_of_unknown_names_are_listed_twenty_then_counted() {
    use secrets_injector_objects::error::MAX_LISTED;
    let room = 65_536 - OBJECTS.len() - 40;
    let names: String = (0..room / 9).map(|i| format!("{{{{a{i:04}}}}}")).collect();
    let filters: String = (0..room / 11)
        .map(|i| format!("{{{{1|f{i:04}}}}}"))
        .collect();
    for (text, kind) in [
        (names, "names that are not files the objects write"),
        (filters, "unknown filters"),
    ] {
        let count = text.matches("{{").count();
        assert!(count > 5_000, "{count}");
        let errors = template::parse(&one(&text), OBJECTS.len(), Some(&plan())).unwrap_err();
        assert_eq!(errors.0.len(), MAX_LISTED + 1, "{kind}");
        let last = errors.0.last().unwrap().to_string();
        assert!(
            last.ends_with(&format!("and {} more {kind}", count - MAX_LISTED)),
            "{last}"
        );
        let bytes: usize = errors.0.iter().map(|e| e.to_string().len()).sum();
        assert!(bytes < 32 * 1024, "{kind}: {bytes}");
    }
    // Each listed name is on the line of its first use.
    let text = "{{ x1 }}\n{{ x2 }}{{ x1 }}\n{{ x3 }}{{ x2 }}";
    let err = denied(text);
    for (line, name) in [(1, "x1"), (2, "x2"), (3, "x3")] {
        assert!(
            err.contains(&format!("line {line}: {name} is not a file")),
            "{err}"
        );
    }
}

/// Delimiters are a few characters: a long one would be compared at every position of the
/// text.
#[test]
fn long_delimiters_are_denied() {
    let text = |start: &str, end: &str| {
        format!(
            "- name: out\n  template: \"{start} SECRET_PASSWORD {end}\"\n  delimiters: [{}, {}]\n",
            serde_json::Value::from(start),
            serde_json::Value::from(end)
        )
    };
    let long = "<".repeat(20_000);
    for (start, end) in [
        (long.as_str(), ">>"),
        ("<<", long.as_str()),
        ("<<<<<<<<<", ">>"),
    ] {
        let err = template::parse(&text(start, end), OBJECTS.len(), Some(&plan()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("delimiters: each is at most 8 bytes"),
            "{err:.300}"
        );
        assert!(err.len() < 600, "{}", err.len());
    }
    template::parse(&text("<<<<<<<<", ">>>>>>>>"), OBJECTS.len(), Some(&plan())).unwrap();
}

/// A binary file used as text is named from the line that used it, in one pass over the
/// template however many lines it has.
#[test]
fn a_binary_used_as_text_is_named_among_thousands_of_lines() {
    let objects = "- {objectName: /bin, objectType: ssmparameter, objectAlias: CERT}\n";
    let plan = parse(objects, Settings::new("us-east-1")).unwrap();
    let mut text = "{{ 1 }}\n".repeat(5_000);
    text.push_str("{{ CERT ~ 'x' }}\n");
    let templates = template::parse(&one(&text), 0, Some(&plan)).unwrap();
    let files: Vec<(RelPath, Vec<u8>)> = vec![("CERT".parse().unwrap(), vec![0xff, 0x00])];
    let err = templates
        .compile()
        .unwrap()
        .render(files.iter().map(|(p, v)| (p, v.as_slice())))
        .unwrap_err()[0]
        .to_string();
    assert!(
        err.contains("a binary value (not UTF-8) was used as text (\"CERT\")"),
        "{err}"
    );
}
