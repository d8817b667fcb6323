//! Templates rendered by the injector against a real moto: the files they write beside the
//! values (and in the env file), a render that fails the init container naming the template and
//! line (nothing written, never a value), `decode: base64`, and the refresh sidecar rendering
//! again in the same swap as the values, keeping the files when a render fails.

use aws_sdk_ssm::types::ParameterType;

use crate::support::*;

const OBJECTS: &str = r#"
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

const TEMPLATES: &str = r#"
- name: DATABASE_URL
  template: "postgres://{{ SECRET_USERNAME | urlencode }}:{{ SECRET_PASSWORD | urlencode }}@db:5432/app"
- name: config.yaml
  filePermission: "0600"
  delimiters: ["[[", "]]"]
  template: |
    database:
      user: [[ SECRET_USERNAME | tojson ]]
      password: [[ SECRET_PASSWORD | tojson ]]
    parameter: [[ files._test_parameter | tojson ]]
    api_key: [[ (files.test_secret | fromjson).api_key | default("none") | tojson ]]
"#;

fn secret(user: &str, password: &str) -> String {
    serde_json::json!({"username": user, "password": password}).to_string()
}

fn templates_arg(templates: &str) -> String {
    format!("--templates={templates}")
}

#[test]
fn templates_are_written_beside_the_values_and_in_the_env_file() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    aws.put(
        "/test/parameter",
        "gonitest-SENTINEL",
        ParameterType::SecureString,
    );
    let password = "p/w\"SENTINEL'{{x}}";
    aws.secret("test/secret", &secret("example", password));
    let pod = Pod::new(&moto.endpoint());
    let out = pod.run(OBJECTS, &[&templates_arg(TEMPLATES), "--env-file=env"]);
    out.assert_success();
    let files = pod.files();
    let url = "postgres://example:p%2Fw%22SENTINEL%27%7B%7Bx%7D%7D@db:5432/app";
    assert_eq!(files["DATABASE_URL"], (url.as_bytes().to_vec(), 0o644));
    let (config, mode) = &files["config.yaml"];
    assert_eq!(*mode, 0o600);
    let config: serde_json::Value = serde_saphyr::from_slice(config).unwrap();
    assert_eq!(config["database"]["password"], password);
    assert_eq!(config["database"]["user"], "example");
    assert_eq!(config["parameter"], "gonitest-SENTINEL");
    assert_eq!(config["api_key"], "none");
    // The env file lists the template named like a variable, and is no more open than it.
    let (env, env_mode) = &files["env"];
    let env = String::from_utf8(env.clone()).unwrap();
    assert!(env.contains(&format!("DATABASE_URL='{url}'\n")), "{env}");
    assert_eq!(*env_mode, 0o644);
    assert_eq!(files.len(), 7, "{:?}", files.keys());
    assert_eq!(out.summary()["files"], 7);
}

#[test]
fn a_render_that_fails_fails_the_init_container_naming_the_template_and_line() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    aws.put(
        "/test/parameter",
        "gonitest-SENTINEL",
        ParameterType::SecureString,
    );
    aws.secret("test/secret", &secret("example", "pw-SENTINEL"));
    let pod = Pod::new(&moto.endpoint());
    let templates = r#"
- name: ok
  template: "{{ SECRET_USERNAME }}"
- name: config.yaml
  template: "a: 1\nkey: {{ (files.test_secret | fromjson).api_key }}\n"
- name: math
  template: "{{ SECRET_PASSWORD // 2 }}"
"#;
    let out = pod.run(OBJECTS, &[&templates_arg(templates)]);
    out.assert_failure();
    assert!(
        pod.files().is_empty(),
        "nothing written: {:?}",
        pod.entries()
    );
    let log = &out.termination_log;
    assert!(
        log.starts_with("secrets-injector: 2 of 3 templates failed; nothing was written to"),
        "{log}"
    );
    assert!(
        log.contains(
            "templates[1] (name \"config.yaml\"): line 2: undefined value: (…).api_key does not exist"
        ),
        "{log}"
    );
    assert!(
        log.contains("templates[2] (name \"math\"): line 1: invalid operation"),
        "{log}"
    );
    assert_eq!(out.summary()["files"], 0);
}

#[test]
fn invalid_templates_fail_before_any_fetch() {
    let moto = Moto::start();
    let pod = Pod::new(&moto.endpoint());
    let out = pod.run(
        OBJECTS,
        &[&templates_arg("- name: x\n  template: \"{{ NOPE }}\"\n")],
    );
    out.assert_failure();
    assert!(
        out.termination_log.starts_with(
            "secrets-injector: the templates are invalid; nothing was written\n\
             annotation secrets-injector.io/templates: templates[0] (name \"x\"): line 1: NOPE is \
             not a file the objects write"
        ),
        "{}",
        out.termination_log
    );
}

#[test]
fn decode_base64_writes_bytes_a_template_reads_as_binary_or_text() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    let der = [0x30u8, 0x82, 0xff, 0x00];
    aws.string(
        "/app/der",
        &secrets_injector_objects::decode::base64_encode(&der),
    );
    aws.secret(
        "app/creds",
        r#"{"token":"dG9rZW4tU0VOVElORUw=","other":"x-SENTINEL"}"#,
    );
    aws.string("/app/bad", "not base64 SENTINEL!");
    let objects = r#"
- {objectName: /app/der, objectType: ssmparameter, objectAlias: cert.der, decode: base64}
- objectName: app/creds
  objectType: secretsmanager
  jmesPath:
    - {path: token, objectAlias: TOKEN, decode: base64}
"#;
    let templates =
        "- name: out\n  template: \"{{ files['cert.der'] | b64encode }} {{ TOKEN }}\"\n";
    let mut pod = Pod::new(&moto.endpoint());
    pod.secret_values = vec!["token-SENTINEL".into(), "dG9rZW4tU0VOVElORUw".into()];
    pod.run(objects, &[&templates_arg(templates)])
        .assert_success();
    assert_eq!(pod.read("cert.der"), der);
    assert_eq!(pod.read_string("TOKEN"), "token-SENTINEL");
    assert_eq!(pod.read_string("out"), "MIL/AA== token-SENTINEL");

    let out = pod.run(
        "- {objectName: /app/bad, objectType: ssmparameter, objectAlias: bad, decode: base64}",
        &[],
    );
    out.assert_failure();
    assert!(
        out.termination_log.contains(
            "objects[0] (objectName \"/app/bad\"): InvalidEncoding: the value for bad is not \
             valid base64"
        ),
        "{}",
        out.termination_log
    );
}

#[test]
fn refresh_renders_again_in_the_same_swap_and_keeps_the_files_when_a_render_fails() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    aws.put(
        "/test/parameter",
        "gonitest-SENTINEL",
        ParameterType::SecureString,
    );
    let with_key = |n: u32| {
        serde_json::json!({"username": "u", "password": format!("pw-{n}-SENTINEL"), "key": n})
            .to_string()
    };
    aws.secret("test/secret", &with_key(0));
    let templates = r#"
- name: DATABASE_URL
  template: "postgres://{{ SECRET_USERNAME }}:{{ SECRET_PASSWORD }}@db/app"
- name: key
  template: "{{ (files.test_secret | fromjson).key }}"
"#;
    let pod = Pod::new(&moto.endpoint());
    let arg = templates_arg(templates);
    pod.run(OBJECTS, &[&arg]).assert_success();
    let mut sidecar = pod.start_refresh(OBJECTS, &[&arg, "--interval=1s", "--deadline=3s"]);
    sidecar.wait_cycles(1);

    // A rotated password reaches the rendered file in the same generation as the value.
    aws.put_secret("test/secret", &with_key(1));
    sidecar.wait_for("the rotated password", |_| {
        pod.read_string("SECRET_PASSWORD") == "pw-1-SENTINEL"
    });
    let generation = pod.generation();
    let files = pod.files();
    assert_eq!(
        files["DATABASE_URL"].0, b"postgres://u:pw-1-SENTINEL@db/app",
        "generation {generation}"
    );
    assert_eq!(files["key"].0, b"1");

    // A value the template cannot render: the cycle fails, the files stay.
    aws.put_secret(
        "test/secret",
        &serde_json::json!({"username": "u", "password": "pw-2-SENTINEL"}).to_string(),
    );
    sidecar.wait_for("a failed render", |logs| {
        logs.iter().any(|l| l["outcome"] == "failed")
    });
    assert_eq!(pod.generation(), generation);
    assert_eq!(pod.files(), files);
    let failure = sidecar
        .logs()
        .into_iter()
        .find(|l| l["message"] == "template failed")
        .expect("a template failure logged");
    assert!(
        failure["failure"]
            .as_str()
            .unwrap()
            .starts_with("templates[1] (name \"key\"): line 1: undefined value"),
        "{failure}"
    );
    // Fixed: the next cycle renders and swaps.
    aws.put_secret("test/secret", &with_key(3));
    sidecar.wait_for("the fixed value", |_| pod.read_string("key") == "3");
    assert_eq!(
        pod.read_string("DATABASE_URL"),
        "postgres://u:pw-3-SENTINEL@db/app"
    );
    sidecar.assert_running();
    assert!(sidecar.terminate().success());
}
