//! Hostile annotations are stopped at a limit, with a clear message.

use secrets_injector_objects::{Settings, parse};

/// The denial of a hostile annotation. The work is bounded, not timed: each test checks the
/// message names the limit that stopped it (the size, before the parser reads a byte; or the
/// parser's alias and depth budget), so the work stops there whatever the machine's load.
fn rejected(annotation: &str) -> String {
    parse(annotation, Settings::new("us-east-1"))
        .expect_err("must be rejected")
        .to_string()
}

#[test]
fn three_mib_annotation_is_rejected_before_parsing() {
    let item = "- objectName: /app/db\n  objectType: ssmparameter\n";
    let annotation = item.repeat(3 * 1024 * 1024 / item.len() + 1);
    assert!(annotation.len() > 3 * 1024 * 1024);
    let message = rejected(&annotation);
    assert!(
        message.starts_with("annotation secrets-injector.io/objects: is "),
        "{message}"
    );
    assert!(
        message.contains("over the limit of 65536 bytes (64 KiB)"),
        "{message}"
    );
}

#[test]
fn just_over_64_kib_is_rejected_and_64_kib_is_not() {
    let head = "- objectName: /app/db\n  objectType: ssmparameter\n";
    let pad = |total: usize| format!("{head}#{}\n", "x".repeat(total - head.len() - 2));
    let at_limit = pad(64 * 1024);
    assert_eq!(at_limit.len(), 64 * 1024);
    assert!(parse(&at_limit, Settings::new("us-east-1")).is_ok());
    let over = pad(64 * 1024 + 1);
    let message = rejected(&over);
    assert!(
        message.contains("is 65537 bytes, over the limit"),
        "{message}"
    );
}

#[test]
fn billion_laughs_is_rejected() {
    let annotation = r#"
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"#;
    let message = rejected(annotation);
    assert!(
        message.starts_with(
            "annotation secrets-injector.io/objects: is not valid YAML for an objects list: \
             it expands too much through aliases"
        ),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn billion_laughs_inside_an_object_list_is_rejected() {
    let annotation = r#"
- objectName: &n /app/db
  objectType: ssmparameter
  x1: &a [*n,*n,*n,*n,*n,*n,*n,*n,*n,*n]
  x2: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
  x3: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
  x4: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
  x5: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
  x6: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]
  x7: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]
"#;
    let message = rejected(annotation);
    assert!(
        message.contains("expands too much through aliases"),
        "{message}"
    );
}

#[test]
fn deep_nesting_is_rejected() {
    let annotation = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let message = rejected(&annotation);
    assert!(message.contains("nests too deeply"), "{message}");

    let block: String = (0..200)
        .map(|depth| format!("{}- \n", "  ".repeat(depth)))
        .collect();
    let message = rejected(&block);
    assert!(message.contains("nests too deeply"), "{message}");
}

#[test]
fn a_few_aliases_are_still_fine() {
    let annotation = r#"
- objectName: /app/db
  objectType: &t ssmparameter
- objectName: /app/cache
  objectType: *t
"#;
    let plan = parse(annotation, Settings::new("us-east-1")).expect("valid");
    assert_eq!(plan.objects.len(), 2);
}

/// Few aliases of a long scalar: 99 aliases and about 2,500 replayed events are within those
/// caps, but would replay 60 KB each time, 144 MB in all. The bytes an expansion replays are
/// capped at twice the annotation's limit, so the parser stops after the first few.
#[test]
fn aliases_of_a_long_scalar_are_stopped_at_a_small_multiple_of_the_text() {
    let annotation = format!(
        "- objectName: &n /{}\n  objectType: ssmparameter\n  x: &s [{}]\n  y: [{}]\n",
        "a".repeat(60_000),
        vec!["*n"; 40].join(", "),
        vec!["*s"; 59].join(", "),
    );
    assert!(annotation.len() <= 64 * 1024);
    let message = rejected(&annotation);
    assert!(
        message.starts_with(
            "annotation secrets-injector.io/objects: is not valid YAML for an objects list: \
             through aliases it expands to more than 131072 bytes of values, twice the most the \
             annotations may hold"
        ),
        "{message:.400}"
    );
    assert!(
        message.ends_with("write the objects out without aliases of long values"),
        "{message}"
    );
    // The parser's own count of the bytes it had replayed when it stopped: the first alias
    // over the cap, not 64 MiB (its default).
    let replayed: usize = message
        .split("total_scalar_bytes: ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no count of bytes in: {message}"));
    assert!(replayed <= 2 * 65_536 + 60_001, "{replayed}");
    assert!(message.len() < 1024, "{}", message.len());
    // The templates annotation is read with the same bounds.
    let templates = format!(
        "- name: &n {}\n  template: x\n  x: &s [{}]\n  y: [{}]\n",
        "a".repeat(60_000),
        vec!["*n"; 40].join(", "),
        vec!["*s"; 59].join(", "),
    );
    let message = secrets_injector_objects::template::parse(&templates, 0, None)
        .expect_err("must be rejected")
        .to_string();
    assert!(
        message.contains("through aliases it expands to more than 131072 bytes"),
        "{message:.400}"
    );
    // Anchoring a long value once is fine.
    let once = format!(
        "- objectName: &n /{}\n  objectType: ssmparameter\n  objectAlias: x\n- objectName: *n\n  \
         objectType: ssmparameter\n  objectAlias: y\n",
        "a".repeat(250)
    );
    parse(&once, Settings::new("us-east-1")).expect("valid");
}

/// The bytes of every problem of a denial, each with its label, as the webhook holds them.
fn held_bytes(annotation: &str) -> (usize, usize) {
    let errors = parse(annotation, Settings::new("us-east-1")).expect_err("must be rejected");
    let bytes = errors.0.iter().map(|e| e.to_string().len()).sum();
    (errors.0.len(), bytes)
}

/// A 60 KB objectName is named in each of its object's problems: by its start, not whole, so
/// 100 problems do not hold 100 copies of it.
#[test]
fn a_long_object_name_is_shortened_in_each_problem() {
    let name = format!("/{}", "n".repeat(60_000));
    let missing_aliases = format!(
        "- objectName: {name}\n  objectType: secretsmanager\n  jmesPath: [{}]\n",
        vec!["{path: a}"; 100].join(", ")
    );
    let one_alias = format!(
        "- objectName: {name}\n  objectType: secretsmanager\n  jmesPath: [{}]\n",
        vec!["{path: a, objectAlias: x}"; 100].join(", ")
    );
    for annotation in [missing_aliases, one_alias] {
        assert!(annotation.len() <= 64 * 1024);
        let (count, bytes) = held_bytes(&annotation);
        assert!(count >= 99, "{count}");
        assert!(bytes < count * 1024, "{count} problems, {bytes} bytes");
        let message = rejected(&annotation);
        assert!(
            message.contains(&format!(
                "objects[0] (objectName \"/{}…\")",
                "n".repeat(127)
            )),
            "{message:.400}"
        );
    }
}

/// With path translation False, every '/' of an objectAlias makes a directory: a path is at most
/// 4,096 bytes and 64 components, checked as it is read, so the check of the paths the objects
/// claim (each path against every directory above it) stays linear.
#[test]
fn a_path_of_thousands_of_directories_is_denied() {
    use secrets_injector_objects::relpath::{MAX_COMPONENTS, MAX_PATH_BYTES};
    let mut settings = Settings::new("us-east-1");
    settings.path_translation = secrets_injector_objects::PathTranslation::Directories;
    let object = |alias: &str| {
        format!("- {{objectName: /app/db, objectType: ssmparameter, objectAlias: {alias}}}\n")
    };
    let deep = "a/".repeat(30_000) + "a";
    let errors = parse(&object(&deep), settings.clone()).expect_err("must be rejected");
    let message = errors.to_string();
    assert!(
        message.contains(&format!(
            "the path has more than {MAX_COMPONENTS} components"
        )),
        "{message:.400}"
    );
    assert!(message.len() < 1024, "{}", message.len());
    // 99 objects sharing a path of 250 directories: one problem each, naming the limit.
    let shared = "a/".repeat(250) + "a";
    let many = object(&shared).repeat(99);
    assert!(many.len() <= 64 * 1024);
    let errors = parse(&many, settings.clone()).expect_err("must be rejected");
    assert_eq!(errors.0.len(), 99, "{errors}");
    assert!(errors.to_string().contains("more than 64 components"));
    // Long components: the bytes are capped too.
    let long = vec!["x".repeat(255); 20].join("/");
    assert!(long.len() > MAX_PATH_BYTES);
    let message = parse(&object(&long), settings.clone())
        .expect_err("must be rejected")
        .to_string();
    assert!(
        message.contains(&format!("over the limit of {MAX_PATH_BYTES} bytes")),
        "{message:.600}"
    );
    // At the limits, accepted.
    let at = vec!["a"; MAX_COMPONENTS].join("/");
    parse(&object(&at), settings.clone()).expect("64 components");
    let at = vec!["x".repeat(255); 16].join("/");
    assert_eq!(at.len(), MAX_PATH_BYTES - 1);
    parse(&object(&at), settings).expect("4,095 bytes");
}
