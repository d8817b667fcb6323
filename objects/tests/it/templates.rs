//! The `templates` annotation: what is accepted and what a render writes, every admission check
//! (with the template and line in the message), the filters, strict undefined, the limits that
//! stop hostile templates, and that no message ever carries a value.

use secrets_injector_objects::annotations::{MAX_OBJECTS_AND_TEMPLATES_BYTES, TEMPLATES};
use secrets_injector_objects::relpath::RelPath;
use secrets_injector_objects::template::{self, Rendered, Templates};
use secrets_injector_objects::{AppIdentity, FileMode, Plan, Settings, parse};

const SEEDS: &str = r#"
- objectName: "/test/parameter"
  objectType: "ssmparameter"
- objectName: "test/secret"
  objectType: "secretsmanager"
  jmesPath:
    - path: "username"
      objectAlias: "SECRET_USERNAME"
    - path: "password"
      objectAlias: "SECRET_PASSWORD"
"#;

const PASSWORD: &str = "example1234";

fn plan(objects: &str) -> Plan {
    parse(objects, Settings::new("us-east-1")).unwrap_or_else(|e| panic!("objects rejected: {e}"))
}

fn accepted(templates: &str) -> Templates {
    let plan = plan(SEEDS);
    template::parse(templates, SEEDS.len(), Some(&plan))
        .unwrap_or_else(|e| panic!("templates rejected: {e}"))
}

/// The one-line denial of `templates` over the seeds' objects.
fn denied(templates: &str) -> String {
    let plan = plan(SEEDS);
    match template::parse(templates, SEEDS.len(), Some(&plan)) {
        Ok(t) => panic!("accepted: {t:?}"),
        Err(errors) => errors.to_string(),
    }
}

/// The seeds' files with these values.
fn seed_files(password: &str) -> Vec<(RelPath, Vec<u8>)> {
    let secret = serde_json::json!({"username": "example", "password": password}).to_string();
    [
        ("_test_parameter", "gonitest".as_bytes().to_vec()),
        ("test_secret", secret.into_bytes()),
        ("SECRET_USERNAME", b"example".to_vec()),
        ("SECRET_PASSWORD", password.as_bytes().to_vec()),
    ]
    .into_iter()
    .map(|(p, v)| (p.parse().unwrap(), v))
    .collect()
}

fn render_over(
    templates: &Templates,
    files: &[(RelPath, Vec<u8>)],
) -> Result<Vec<Rendered>, Vec<template::RenderError>> {
    let compiled = templates.compile().expect("accepted templates compile");
    compiled.render(files.iter().map(|(p, v)| (p, v.as_slice())))
}

/// The text of the only template of `templates`, rendered over the seeds' files.
fn rendered(templates: &str, password: &str) -> String {
    let out = render_over(&accepted(templates), &seed_files(password))
        .unwrap_or_else(|e| panic!("render failed: {e:?}"));
    String::from_utf8(out[0].bytes.clone()).unwrap()
}

/// The message of a render that fails.
fn failed(templates: &str, password: &str) -> String {
    match render_over(&accepted(templates), &seed_files(password)) {
        Ok(out) => panic!("rendered {:?}", out),
        Err(errors) => errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn one(name: &str, text: &str) -> String {
    format!(
        "- name: {name}\n  template: {}\n",
        serde_json::Value::from(text)
    )
}

#[test]
fn the_spec_example_renders_both_files() {
    let templates = accepted(
        r#"
- name: DATABASE_URL
  template: "postgres://{{ SECRET_USERNAME | urlencode }}:{{ SECRET_PASSWORD | urlencode }}@db:5432/app"
- name: config.yaml
  filePermission: "0400"
  delimiters: ["[[", "]]"]
  template: |
    database:
      user: [[ SECRET_USERNAME | tojson ]]
      password: [[ SECRET_PASSWORD | tojson ]]
    api_key: [[ (files.test_secret | fromjson).api_key | default("none") | tojson ]]
"#,
    );
    assert!(templates.warnings.is_empty(), "{:?}", templates.warnings);
    assert_eq!(templates.items[1].mode.bits(), 0o400);
    assert_eq!(templates.items[0].mode, FileMode::DEFAULT);
    let out = render_over(&templates, &seed_files("p/q@x")).unwrap();
    assert_eq!(out[0].path.as_str(), "DATABASE_URL");
    assert_eq!(
        String::from_utf8(out[0].bytes.clone()).unwrap(),
        "postgres://example:p%2Fq%40x@db:5432/app"
    );
    assert_eq!(
        String::from_utf8(out[1].bytes.clone()).unwrap(),
        "database:\n  user: \"example\"\n  password: \"p/q@x\"\napi_key: \"none\"\n"
    );
}

#[test]
fn files_reaches_every_file_and_path_objects_are_nested_maps() {
    let objects = "- {objectName: /app/cfg, objectType: ssmparameterpath, objectAlias: cfg}\n\
                   - {objectName: /app/one, objectType: ssmparameter, objectAlias: one.txt}\n";
    let plan = plan(objects);
    let templates = template::parse(
        &one(
            "out",
            "{{ files.cfg.db_user }} {{ files['one.txt'] }} {% for k in files.cfg %}{{ k }},{% endfor %}",
        ),
        objects.len(),
        Some(&plan),
    )
    .unwrap();
    let files: Vec<(RelPath, Vec<u8>)> =
        [("cfg/db_user", "u"), ("cfg/port", "5432"), ("one.txt", "1")]
            .into_iter()
            .map(|(p, v)| (p.parse().unwrap(), v.as_bytes().to_vec()))
            .collect();
    let out = render_over(&templates, &files).unwrap();
    assert_eq!(out[0].bytes, b"u 1 db_user,port,");
    // A path object's directory is not a variable of its own.
    let err = template::parse(&one("out", "{{ cfg }}"), objects.len(), Some(&plan))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("line 1: cfg is not a file the objects write"),
        "{err}"
    );
    assert!(err.contains("files[\"cfg\"]"), "{err}");
}

#[test]
fn syntax_errors_are_denied_with_the_template_and_line() {
    let err = denied(&one("a.conf", "line one\nline two {{ SECRET_USERNAME \n"));
    assert!(
        err.starts_with(&format!(
            "annotation {TEMPLATES}: templates[0] (name \"a.conf\"): line 2: syntax error"
        )),
        "{err}"
    );
    let err = denied(&one("b", "{% if x %}"));
    assert!(err.contains("line 1: syntax error"), "{err}");
}

#[test]
fn unknown_names_filters_and_tests_are_denied_with_their_line() {
    let err = denied(&one("a", "ok {{ SECRET_USERNAME }}\n{{ SECRET_PASWORD }}"));
    assert!(
        err.contains(
            "templates[0] (name \"a\"): line 2: SECRET_PASWORD is not a file the objects write"
        ),
        "{err}"
    );
    assert!(err.contains("SECRET_PASSWORD, SECRET_USERNAME"), "{err}");
    let err = denied(&one("a", "\n\n{{ SECRET_USERNAME | frobnicate }}"));
    assert!(
        err.contains("line 3: unknown filter \"frobnicate\""),
        "{err}"
    );
    assert!(err.contains("fromjson, b64encode"), "{err}");
    let err = denied(&one("a", "{% if SECRET_USERNAME is frob %}x{% endif %}"));
    assert!(err.contains("line 1: unknown test \"frob\""), "{err}");
    // Loop variables, set variables and minijinja's globals are not files, and need not be.
    accepted(&one(
        "a",
        "{% set n = namespace(c=0) %}{% for k in range(3) %}{{ loop.index }}{{ k }}{% endfor %}\
         {% for k, v in files | items %}{{ k }}{% endfor %}{% with x = 1 %}{{ x }}{% endwith %}",
    ));
}

#[test]
fn names_follow_the_file_rules_and_clash_with_nothing() {
    let cases = [
        (one("a/b", "x"), "contains '/'"),
        (one("..data", "x"), "starts with \"..\""),
        (one("files", "x"), "name \"files\" is reserved"),
        (
            one("SECRET_PASSWORD", "x"),
            "also a file (or directory) the objects",
        ),
        (
            one("test_secret", "x"),
            "also a file (or directory) the objects",
        ),
        (
            format!("{}{}", one("dup", "x"), one("dup", "y")),
            "also the name of templates[0]",
        ),
        (one(&"n".repeat(256), "x"), "255-byte limit"),
        ("- template: x\n".to_owned(), "name is required"),
        ("- name: x\n".to_owned(), "template is required"),
        (
            "- name: x\n  template: y\n  filePermission: '0999'\n".to_owned(),
            "filePermission",
        ),
        (
            "- name: x\n  template: y\n  delimiters: ['{%', '%}']\n".to_owned(),
            "delimiters",
        ),
        (
            "- name: x\n  template: y\n  delimiters: ['[[']\n".to_owned(),
            "pair of strings",
        ),
        ("name: x\n".to_owned(), "not a list of templates"),
        ("[]".to_owned(), "lists no templates"),
        ("- [".to_owned(), "is not valid YAML"),
    ];
    for (templates, wanted) in cases {
        let err = denied(&templates);
        assert!(err.contains(wanted), "{templates:?}: {err}");
        assert!(err.starts_with(&format!("annotation {TEMPLATES}")), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
    // The env file's name is taken too.
    let settings = Settings {
        env_file: Some("env".into()),
        ..Settings::new("us-east-1")
    };
    let with_env = parse(SEEDS, settings).unwrap();
    let err = template::parse(&one("env", "x"), 0, Some(&with_env)).unwrap_err();
    assert!(err.to_string().contains("also a file"), "{err}");
    // An object's file named `files` is refused when the pod has templates.
    let objects = "- {objectName: /a, objectType: ssmparameter, objectAlias: files}\n";
    let err = template::parse(&one("x", "y"), 0, Some(&plan(objects))).unwrap_err();
    assert!(
        err.to_string().contains("a file is named \"files\""),
        "{err}"
    );
}

#[test]
fn unknown_fields_are_warnings() {
    let templates = accepted("- name: x\n  template: y\n  mode: '0400'\n");
    assert_eq!(templates.warnings.len(), 1);
    assert!(
        templates.warnings[0].contains("unknown field \"mode\""),
        "{:?}",
        templates.warnings
    );
}

#[test]
fn at_most_32_templates_and_64_kib_with_the_objects() {
    let many: String = (0..33).map(|i| one(&format!("t{i}"), "x")).collect();
    assert!(denied(&many).contains("lists 33 templates, over the limit of 32"));
    let many: String = (0..32).map(|i| one(&format!("t{i}"), "x")).collect();
    assert_eq!(accepted(&many).items.len(), 32);
    let room = MAX_OBJECTS_AND_TEMPLATES_BYTES - SEEDS.len();
    let head = "- name: big\n  template: \"";
    let fits = format!("{head}{}\"\n", "x".repeat(room - head.len() - 2));
    assert_eq!(fits.len(), room);
    assert_eq!(accepted(&fits).items.len(), 1);
    let over = format!("{head}{}\"\n", "x".repeat(room - head.len() - 1));
    let err = denied(&over);
    assert!(
        err.contains("over the limit of 65536 bytes (64 KiB) for both"),
        "{err}"
    );
}

#[test]
fn templates_cannot_read_each_others_output() {
    // 32 templates, each reading the next one's name: every one is denied, each named.
    let ring: String = (0..32)
        .map(|i| one(&format!("T{i}"), &format!("{{{{ T{} }}}}", (i + 1) % 32)))
        .collect();
    let err = denied(&ring);
    assert!(
        err.contains("templates[0] (name \"T0\"): line 1: T1 is the file of templates[1], and a template cannot read another template's output"),
        "{err}"
    );
    assert!(err.contains("and 12 more problems"), "{err}");
}

#[test]
fn strict_undefined_names_the_template_line_and_name_and_default_works() {
    let err = failed(
        &one(
            "cfg",
            "a\nkey: {{ (files.test_secret | fromjson).api_key }}",
        ),
        PASSWORD,
    );
    assert!(
        err.starts_with("templates[0] (name \"cfg\"): line 2: undefined value"),
        "{err}"
    );
    assert!(err.contains("api_key"), "{err}");
    let err = failed(&one("cfg", "{{ files.nope }}"), PASSWORD);
    assert!(
        err.contains("line 1: undefined value: files.nope does not exist"),
        "{err}"
    );
    let err = failed(&one("cfg", "{{ files['no.pe'] }}"), PASSWORD);
    assert!(err.contains("files[\"no.pe\"] does not exist"), "{err}");
    assert_eq!(
        rendered(
            &one(
                "cfg",
                "{{ (files.test_secret | fromjson).api_key | default('none') }} \
                 {{ files.nope is defined }} {{ files.nope | default('d') }}"
            ),
            PASSWORD
        ),
        "none False d"
    );
}

#[test]
fn an_optional_objects_missing_file_is_undefined_at_render_only() {
    let objects =
        "- {objectName: /a, objectType: ssmparameter, objectAlias: OPT, optional: true}\n";
    let plan = plan(objects);
    let templates = template::parse(
        &one(
            "x",
            "{% if OPT is defined %}{{ OPT }}{% else %}none{% endif %}|{{ OPT }}",
        ),
        objects.len(),
        Some(&plan),
    )
    .unwrap();
    let err = render_over(&templates, &[]).unwrap_err();
    assert!(
        err[0]
            .to_string()
            .contains("line 1: undefined value: OPT does not exist"),
        "{:?}",
        err
    );
}

#[test]
fn tojson_and_toyaml_keep_a_hostile_password_a_string() {
    let hostile = "a\"b'c\\d\ne\r\t{{ x }} {% y %} #z: - [1] &a *a !t \u{2028}é";
    let json = rendered(
        &one("c.json", "{\"p\": {{ SECRET_PASSWORD | tojson }}}"),
        hostile,
    );
    let back: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(back["p"], hostile);
    let yaml = rendered(
        &one(
            "c.yaml",
            "db:\n  password: {{ SECRET_PASSWORD | toyaml }}\n  user: {{ SECRET_USERNAME | tojson }}\n",
        ),
        hostile,
    );
    let back: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(back["db"]["password"], hostile, "{yaml}");
    assert_eq!(back["db"]["user"], "example");
    // A whole value as YAML, nested under a key with indent.
    let yaml = rendered(
        &one(
            "d.yaml",
            "secret:\n  {{ files.test_secret | fromjson | toyaml | indent(2) }}\nlist: {{ [] | toyaml }}\n",
        ),
        hostile,
    );
    let back: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(back["secret"]["password"], hostile, "{yaml}");
    assert_eq!(back["secret"]["username"], "example", "{yaml}");
    assert_eq!(back["list"], serde_json::json!([]), "{yaml}");
    let nested = rendered(
        &one(
            "e.yaml",
            "{{ {'a': [1, {'b': none, 'yes': true}], 'k e y': 'v', 'n': 1.5} | toyaml }}",
        ),
        hostile,
    );
    let back: serde_json::Value = serde_saphyr::from_str(&nested).unwrap();
    assert_eq!(
        back,
        serde_json::json!({"a": [1, {"b": null, "yes": true}], "k e y": "v", "n": 1.5}),
        "{nested}"
    );
}

#[test]
fn a_pem_block_goes_into_yaml_with_indent() {
    let pem =
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\nAbCd==\n-----END CERTIFICATE-----\n";
    let yaml = rendered(
        &one(
            "tls.yaml",
            "tls:\n  cert: |\n    {{ SECRET_PASSWORD | indent(4) }}\n",
        ),
        pem,
    );
    let back: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(back["tls"]["cert"], pem, "{yaml}");
}

#[test]
fn the_extra_filters() {
    let cases = [
        ("{{ 'a b/c' | urlencode }}", "a%20b%2Fc"),
        ("{{ {'k': 'v w'} | urlencode }}", "k=v%20w"),
        ("{{ \"it's\" | shellquote }}", "'it'\\''s'"),
        ("{{ 'aGVsbG8=' | b64decode }}", "hello"),
        ("{{ 'hello' | b64encode }}", "aGVsbG8="),
        ("{{ (files.test_secret | fromjson).username }}", "example"),
        ("{{ '[1, 2]' | fromjson | length }}", "2"),
        ("{{ SECRET_USERNAME | upper }}", "EXAMPLE"),
    ];
    for (text, want) in cases {
        assert_eq!(rendered(&one("x", text), PASSWORD), want, "{text}");
    }
    for (text, want) in [
        (
            "{{ 'not json' | fromjson }}",
            "fromjson: the value is not JSON",
        ),
        (
            "{{ '!!' | b64decode }}",
            "b64decode: the value is not base64",
        ),
        (
            "{{ '//79' | b64decode }}",
            "the decoded bytes are not UTF-8",
        ),
    ] {
        let err = failed(&one("x", text), PASSWORD);
        assert!(err.contains(want), "{text}: {err}");
    }
}

#[test]
fn binary_values_go_only_through_b64encode_and_length() {
    let objects = "- {objectName: /bin, objectType: ssmparameter, objectAlias: CERT}\n";
    let plan = plan(objects);
    let files: Vec<(RelPath, Vec<u8>)> = vec![("CERT".parse().unwrap(), vec![0xff, 0x00, 0x80])];
    let ok = template::parse(
        &one("x", "{{ CERT | b64encode }} {{ files.CERT | length }}"),
        0,
        Some(&plan),
    )
    .unwrap();
    assert_eq!(render_over(&ok, &files).unwrap()[0].bytes, b"/wCA 3");
    for text in [
        "{{ CERT }}",
        "{{ files['CERT'] ~ 'x' }}",
        "{{ CERT | upper }}",
        "{{ CERT | fromjson }}",
    ] {
        let t = template::parse(&one("x", text), 0, Some(&plan)).unwrap();
        let err = render_over(&t, &files).unwrap_err()[0].to_string();
        assert!(
            err.contains("binary") && err.contains("CERT"),
            "{text}: {err}"
        );
    }
}

#[test]
fn no_auto_escaping_whatever_the_name_and_the_last_newline_stays() {
    for name in ["a.html", "a.json", "a.yaml", "a.js", "a.xml"] {
        assert_eq!(
            rendered(&one(name, "{{ SECRET_PASSWORD }}\n"), "<&'\">"),
            "<&'\">\n",
            "{name}"
        );
    }
}

#[test]
fn template_modes_are_checked_against_the_app() {
    let plan = plan(SEEDS);
    let templates = template::parse(
        "- {name: a, template: x, filePermission: '0400'}\n",
        0,
        Some(&plan),
    )
    .unwrap();
    let unknown_user = AppIdentity::default();
    let errors = templates.unreadable(&plan, unknown_user);
    assert!(
        errors[0]
            .to_string()
            .contains("templates[0] (name \"a\"): filePermission mode 0400"),
        "{errors:?}"
    );
    let app = AppIdentity {
        run_as_user: Some(1000),
        fs_group: None,
        ..AppIdentity::default()
    };
    assert!(templates.unreadable(&plan, app).is_empty());
    // The env file holds a template named like a variable: never more open than it.
    let settings = Settings {
        env_file: Some("env".into()),
        ..Settings::new("us-east-1")
    };
    let with_env = parse(SEEDS, settings).unwrap();
    let t = template::parse(
        "- {name: DATABASE_URL, template: x, filePermission: '0440'}\n",
        0,
        Some(&with_env),
    )
    .unwrap();
    assert_eq!(t.env_file_mode(&with_env).bits(), 0o440);
}
