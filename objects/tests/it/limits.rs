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
