//! The injector against a real moto server: values, file names, modes, the env file, optional
//! objects, and failures that leave the directory empty. No value may appear in any output
//! (every run is checked by `Pod::run`).

use aws_sdk_ssm::types::ParameterType;

use crate::support::*;

const SEEDS_OBJECTS: &str = r#"
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

#[test]
fn the_seeds_example_gives_four_files() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    aws.put("/test/parameter", "gonitest", ParameterType::SecureString);
    let json = r#"{"username":"example","password":"example1234"}"#;
    aws.secret("test/secret", json);
    let mut pod = Pod::new(&moto.endpoint());
    pod.secret_values = vec!["gonitest".into(), "example1234".into()];

    let out = pod.run(SEEDS_OBJECTS, &[]);
    out.assert_success();
    assert_eq!(
        pod.files(),
        expect_files(&[
            ("_test_parameter", b"gonitest", 0o644),
            ("test_secret", json.as_bytes(), 0o644),
            ("SECRET_USERNAME", b"example", 0o644),
            ("SECRET_PASSWORD", b"example1234", 0o644),
        ])
    );
    let summary = out.summary();
    assert_eq!(summary["objects"], 2);
    assert_eq!(summary["files"], 4);
    assert_eq!(summary["get_parameters"], 1);
    assert_eq!(summary["get_secret_value"], 1);
    assert!(summary["duration_ms"].is_u64());
    assert_eq!(summary["level"], "INFO");
}

#[test]
fn parameter_types_versions_labels_and_arns() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    aws.put("/app/string", "string-SENTINEL", ParameterType::String);
    aws.put(
        "/app/secure",
        "secure-SENTINEL",
        ParameterType::SecureString,
    );
    aws.put("/app/list", "a-SENTINEL,b,c", ParameterType::StringList);
    let v1 = aws.string("/app/versioned", "v1-SENTINEL");
    let v2 = aws.string("/app/versioned", "v2-SENTINEL");
    aws.string("/app/versioned", "v3-SENTINEL");
    aws.label("/app/versioned", v1, "stable");
    aws.string("/app/by-arn", "arn-SENTINEL");
    aws.string("plain", "plain-SENTINEL");
    let objects = format!(
        r#"
- {{objectName: /app/string, objectType: ssmparameter}}
- {{objectName: /app/secure, objectType: ssmparameter}}
- {{objectName: /app/list, objectType: ssmparameter}}
- {{objectName: /app/versioned, objectType: ssmparameter, objectVersion: "{v1}", objectAlias: v1}}
- {{objectName: /app/versioned, objectType: ssmparameter, objectVersion: {v2}, objectAlias: v2}}
- {{objectName: /app/versioned, objectType: ssmparameter, objectVersionLabel: stable, objectAlias: stable}}
- {{objectName: /app/versioned, objectType: ssmparameter, objectAlias: latest}}
- {{objectName: "arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/by-arn"}}
- {{objectName: "arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/app/by-arn", objectAlias: by-arn}}
- {{objectName: plain, objectType: ssmparameter}}
"#
    );
    let pod = Pod::new(&moto.endpoint());
    let out = pod.run(&objects, &[]);
    out.assert_success();
    assert_eq!(
        pod.files(),
        expect_files(&[
            ("_app_string", b"string-SENTINEL", 0o644),
            ("_app_secure", b"secure-SENTINEL", 0o644),
            ("_app_list", b"a-SENTINEL,b,c", 0o644),
            ("v1", b"v1-SENTINEL", 0o644),
            ("v2", b"v2-SENTINEL", 0o644),
            ("stable", b"v1-SENTINEL", 0o644),
            ("latest", b"v3-SENTINEL", 0o644),
            (
                "arn:aws:ssm:us-east-1:123456789012:parameter_app_by-arn",
                b"arn-SENTINEL",
                0o644
            ),
            ("by-arn", b"arn-SENTINEL", 0o644),
            ("plain", b"plain-SENTINEL", 0o644),
        ])
    );
    // Four selectors of /app/versioned (and two of /app/by-arn) never share a call.
    assert_eq!(out.summary()["get_parameters"], 4);
}

#[test]
fn secret_versions_stages_binaries_and_arns() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    let (arn, first) = aws.secret("app/json", r#"{"v":"one-SENTINEL"}"#);
    aws.put_secret("app/json", r#"{"v":"two-SENTINEL"}"#);
    let binary = [0u8, 0x9f, 0x92, 0x96, 0xff, b'\n', 0x00];
    aws.binary_secret("app/binary", &binary);
    let objects = format!(
        r#"
- {{objectName: app/json, objectType: secretsmanager, objectAlias: current}}
- {{objectName: app/json, objectType: secretsmanager, objectVersion: "{first}", objectAlias: first}}
- {{objectName: app/json, objectType: secretsmanager, objectVersionLabel: AWSPREVIOUS, objectAlias: previous}}
- {{objectName: "{arn}", objectAlias: by-arn, jmesPath: [{{path: v, objectAlias: v}}]}}
- {{objectName: app/binary, objectType: secretsmanager}}
"#
    );
    let pod = Pod::new(&moto.endpoint());
    let out = pod.run(&objects, &[]);
    out.assert_success();
    assert_eq!(
        pod.files(),
        expect_files(&[
            ("current", br#"{"v":"two-SENTINEL"}"#, 0o644),
            ("first", br#"{"v":"one-SENTINEL"}"#, 0o644),
            ("previous", br#"{"v":"one-SENTINEL"}"#, 0o644),
            ("by-arn", br#"{"v":"two-SENTINEL"}"#, 0o644),
            ("v", b"two-SENTINEL", 0o644),
            ("app_binary", &binary, 0o644),
        ])
    );
    assert_eq!(out.summary()["get_secret_value"], 5);
}

#[test]
fn parameter_paths_give_one_file_per_parameter_on_every_page() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    for i in 0..20 {
        aws.string(&format!("/app/cfg/p{i:02}"), &format!("p{i}-SENTINEL"));
    }
    aws.put(
        "/app/cfg/db/user",
        "user-SENTINEL",
        ParameterType::SecureString,
    );
    aws.put(
        "/app/cfg/db/pass",
        "pass-SENTINEL",
        ParameterType::SecureString,
    );
    aws.string("/app/cfg/deep/a/b", "deep-SENTINEL");
    aws.string("/app/other", "other-SENTINEL");
    let objects = r#"
- {objectName: /app/cfg, objectType: ssmparameterpath, objectAlias: cfg, filePermission: "0640"}
- {objectName: /app/other, objectType: ssmparameter, objectAlias: other}
"#;
    let pod = Pod::new(&moto.endpoint());
    let out = pod.run(objects, &[]);
    out.assert_success();
    let files = pod.files();
    assert_eq!(files.len(), 24, "{:?}", files.keys());
    assert_eq!(files["cfg/p07"], (b"p7-SENTINEL".to_vec(), 0o640));
    assert_eq!(files["cfg/db_user"], (b"user-SENTINEL".to_vec(), 0o640));
    assert_eq!(files["cfg/db_pass"], (b"pass-SENTINEL".to_vec(), 0o640));
    assert_eq!(files["cfg/deep_a_b"], (b"deep-SENTINEL".to_vec(), 0o640));
    assert_eq!(files["other"], (b"other-SENTINEL".to_vec(), 0o644));
    // 23 parameters at 10 a page.
    assert_eq!(out.summary()["get_parameters_by_path"], 3);

    // The same pod again with directories: the earlier files go, the new layout comes.
    let out = pod.run(objects, &["--path-translation", "False"]);
    out.assert_success();
    let files = pod.files();
    assert_eq!(files.len(), 24, "{:?}", files.keys());
    assert_eq!(files["cfg/db/user"], (b"user-SENTINEL".to_vec(), 0o640));
    assert_eq!(files["cfg/deep/a/b"], (b"deep-SENTINEL".to_vec(), 0o640));
    assert!(!files.contains_key("cfg/db_user"));
}

#[test]
fn the_env_file_holds_top_level_env_names() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    aws.string("/app/user", "user-SENTINEL");
    aws.secret("app/pass", "it's-SENTINEL");
    aws.binary_secret("app/bin", &[0xff, 0xfe, b'S']);
    aws.secret("app/json", r#"{"key":"key-SENTINEL","port":5432}"#);
    let objects = r#"
- {objectName: /app/user, objectType: ssmparameter, objectAlias: DB_USER}
- {objectName: app/pass, objectType: secretsmanager, objectAlias: DB_PASS}
- {objectName: app/bin, objectType: secretsmanager, objectAlias: BIN_VALUE}
- objectName: app/json
  objectType: secretsmanager
  objectAlias: json
  jmesPath:
    - {path: key, objectAlias: API_KEY}
    - {path: port, objectAlias: DB_PORT}
"#;
    let pod = Pod::new(&moto.endpoint());
    let out = pod.run(objects, &["--env-file", "env", "--file-permission", "0640"]);
    out.assert_success();
    let (env, mode) = &pod.files()["env"];
    assert_eq!(
        String::from_utf8(env.clone()).unwrap(),
        "DB_USER='user-SENTINEL'\nDB_PASS='it'\\''s-SENTINEL'\njson='{\"key\":\"key-SENTINEL\",\"port\":5432}'\n\
         API_KEY='key-SENTINEL'\nDB_PORT='5432'\n"
    );
    assert_eq!(*mode, 0o640);
    let left_out: Vec<_> = out
        .logs()
        .into_iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .unwrap_or("")
                .contains("left out of the env file")
        })
        .collect();
    assert_eq!(left_out.len(), 1, "{}", out.stdout);
    assert_eq!(left_out[0]["file"], "BIN_VALUE");
    assert_eq!(pod.read("BIN_VALUE"), vec![0xff, 0xfe, b'S']);
}

#[test]
fn optional_objects_that_do_not_exist_are_logged_not_written() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    aws.string("/app/present", "present-SENTINEL");
    let objects = r#"
- {objectName: /app/present, objectType: ssmparameter, objectAlias: present}
- {objectName: /app/missing, objectType: ssmparameter, objectAlias: missing, optional: true}
- {objectName: app/missing, objectType: secretsmanager, objectAlias: missing-secret, optional: true}
- {objectName: /app/nothing-here, objectType: ssmparameterpath, objectAlias: nothing, optional: true}
"#;
    let pod = Pod::new(&moto.endpoint());
    let out = pod.run(objects, &[]);
    out.assert_success();
    assert_eq!(
        pod.files(),
        expect_files(&[("present", b"present-SENTINEL", 0o644)])
    );
    let skipped: Vec<String> = out
        .logs()
        .into_iter()
        .filter(|l| l["message"] == "optional object not found; no file written")
        .map(|l| l["object"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        skipped,
        vec![
            r#"objects[1] (objectName "/app/missing")"#,
            r#"objects[2] (objectName "app/missing")"#,
            r#"objects[3] (objectName "/app/nothing-here")"#,
        ]
    );
    assert_eq!(out.summary()["skipped"], 3);
}

#[test]
fn jmes_path_results_follow_the_value_rules() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    aws.secret(
        "app/json",
        r#"{"s":"str-SENTINEL","n":42,"f":1.5,"b":true,"o":{"k":[1,2]},"a":["x"],"z":null}"#,
    );
    aws.string("/app/not-json", "not json SENTINEL");
    let good = r#"
- objectName: app/json
  objectType: secretsmanager
  jmesPath:
    - {path: s, objectAlias: s}
    - {path: n, objectAlias: n}
    - {path: f, objectAlias: f}
    - {path: b, objectAlias: b}
    - {path: o, objectAlias: o}
    - {path: a, objectAlias: a}
    - {path: "o.k[1]", objectAlias: k1}
    - {path: "length(a)", objectAlias: len}
"#;
    let pod = Pod::new(&moto.endpoint());
    pod.run(good, &[]).assert_success();
    for (file, want) in [
        ("s", "str-SENTINEL"),
        ("n", "42"),
        ("f", "1.5"),
        ("b", "true"),
        ("o", r#"{"k":[1,2]}"#),
        ("a", r#"["x"]"#),
        ("k1", "2"),
        ("len", "1"),
    ] {
        assert_eq!(pod.read_string(file), want, "{file}");
    }

    let bad = r#"
- objectName: app/json
  objectType: secretsmanager
  jmesPath:
    - {path: z, objectAlias: z}
- objectName: app/json
  objectType: secretsmanager
  objectAlias: again
  jmesPath:
    - {path: missing.deeper, objectAlias: missing}
- objectName: /app/not-json
  objectType: ssmparameter
  jmesPath:
    - {path: s, objectAlias: s2}
"#;
    let out = pod.run(bad, &[]);
    out.assert_failure();
    assert!(pod.entries().is_empty(), "{:?}", pod.entries());
    for line in [
        r#"objects[0] (objectName "app/json"): JmesPathNull: jmesPath "z" gives null or nothing"#,
        r#"objects[1] (objectName "app/json"): JmesPathNull: jmesPath "missing.deeper" gives null or nothing"#,
        r#"objects[2] (objectName "/app/not-json"): ValueNotJson: the value is not JSON, so its jmesPath entries cannot apply"#,
    ] {
        assert!(out.stderr.contains(line), "{line}\nnot in\n{}", out.stderr);
        assert!(out.termination_log.contains(line), "{line}");
    }
}

#[test]
fn file_permissions_apply_to_every_file() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    aws.string("/app/a", "a-SENTINEL");
    aws.string("/app/b", "b-SENTINEL");
    aws.string("/app/dir/x", "x-SENTINEL");
    aws.secret("app/s", r#"{"u":"u-SENTINEL","p":"p-SENTINEL"}"#);
    let objects = r#"
- {objectName: /app/a, objectType: ssmparameter, objectAlias: A}
- {objectName: /app/b, objectType: ssmparameter, objectAlias: B, filePermission: "0600"}
- {objectName: /app/dir, objectType: ssmparameterpath, objectAlias: dir, filePermission: "0444"}
- objectName: app/s
  objectType: secretsmanager
  objectAlias: s
  filePermission: "0660"
  jmesPath:
    - {path: u, objectAlias: U}
    - {path: p, objectAlias: P, filePermission: "0400"}
"#;
    let pod = Pod::new(&moto.endpoint());
    pod.run(objects, &["--file-permission", "0640", "--env-file", "env"])
        .assert_success();
    let modes: Vec<(String, u32)> = pod
        .files()
        .into_iter()
        .map(|(path, (_, mode))| (path, mode))
        .collect();
    let want: Vec<(String, u32)> = [
        ("A", 0o640),
        ("B", 0o600),
        ("P", 0o400),
        ("U", 0o660),
        ("dir/x", 0o444),
        // It holds A, B, P, U and s: never more open than the most restrictive of them.
        ("env", 0o400),
        ("s", 0o660),
    ]
    .iter()
    .map(|(p, m)| ((*p).to_owned(), *m))
    .collect();
    assert_eq!(modes, want);
}

/// The env file holds the values of other files, so it gets the default mode ANDed with theirs:
/// a `0400` password does not become readable by everyone through it.
#[test]
fn the_env_file_is_never_more_open_than_the_files_it_holds() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    aws.string("/app/password", "pw-SENTINEL");
    aws.string("/app/user", "user-SENTINEL");
    aws.string("/app/dir/x", "x-SENTINEL");
    let cases = [
        (
            r#"
- {objectName: /app/password, objectType: ssmparameter, objectAlias: DB_PASSWORD, filePermission: "0400"}
- {objectName: /app/user, objectType: ssmparameter, objectAlias: DB_USER}
"#,
            0o400,
        ),
        (
            r#"
- {objectName: /app/password, objectType: ssmparameter, objectAlias: DB_PASSWORD, filePermission: "0440"}
- {objectName: /app/user, objectType: ssmparameter, objectAlias: DB_USER, filePermission: "0644"}
"#,
            0o440,
        ),
        // Files inside an ssmparameterpath directory never go into the env file.
        (
            r#"
- {objectName: /app/user, objectType: ssmparameter, objectAlias: DB_USER}
- {objectName: /app/dir, objectType: ssmparameterpath, objectAlias: dir, filePermission: "0400"}
"#,
            0o644,
        ),
    ];
    for (objects, want) in cases {
        let pod = Pod::new(&moto.endpoint());
        pod.run(objects, &["--env-file", "app.env"])
            .assert_success();
        let (env, mode) = &pod.files()["app.env"];
        assert_eq!(*mode, want, "mode of the env file for {objects}");
        assert!(
            String::from_utf8_lossy(env).contains("DB_USER='user-SENTINEL'"),
            "{objects}"
        );
    }
}

#[test]
fn a_failed_run_leaves_the_directory_empty_and_names_every_failed_object() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    aws.string("/app/good", "good-SENTINEL");
    aws.string("/app/versioned", "v1-SENTINEL");
    aws.secret("app/good", r#"{"a":"a-SENTINEL"}"#);
    let pod = Pod::new(&moto.endpoint());
    // An earlier attempt left files behind.
    std::fs::write(pod.mount().join("stale"), "stale-SENTINEL").unwrap();
    std::fs::create_dir_all(pod.mount().join("cfg/sub")).unwrap();
    std::fs::write(pod.mount().join("cfg/sub/x"), "x").unwrap();
    std::fs::create_dir(pod.mount().join(".secrets-injector-staging")).unwrap();
    let objects = r#"
- {objectName: /app/good, objectType: ssmparameter}
- {objectName: /app/missing, objectType: ssmparameter}
- {objectName: /app/versioned, objectType: ssmparameter, objectVersion: "9", objectAlias: v9}
- {objectName: app/missing, objectType: secretsmanager}
- objectName: app/good
  objectType: secretsmanager
  jmesPath: [{path: b, objectAlias: b}]
- {objectName: /app/no-such-path, objectType: ssmparameterpath, objectAlias: p}
"#;
    let out = pod.run(objects, &[]);
    out.assert_failure();
    assert!(pod.entries().is_empty(), "{:?}", pod.entries());
    let lines = [
        r#"secrets-injector: 5 of 6 objects failed; nothing was written to "#,
        r#"objects[1] (objectName "/app/missing"): ParameterNotFound: the parameter, version or label does not exist in us-east-1"#,
        r#"objects[2] (objectName "/app/versioned"): ParameterNotFound: the parameter, version or label does not exist in us-east-1"#,
        r#"objects[3] (objectName "app/missing"): ResourceNotFoundException: the secret, version or stage does not exist in us-east-1"#,
        r#"objects[4] (objectName "app/good"): JmesPathNull: jmesPath "b" gives null or nothing"#,
        r#"objects[5] (objectName "/app/no-such-path"): ParametersNotFound: no parameters under the path /app/no-such-path in us-east-1"#,
    ];
    for line in lines {
        assert!(
            out.stderr.contains(line),
            "{line}\nnot in stderr:\n{}",
            out.stderr
        );
        assert!(
            out.termination_log.contains(line),
            "{line}\nnot in termination log:\n{}",
            out.termination_log
        );
    }
    assert!(!out.stderr.contains("objects[0]"));
    assert_eq!(out.summary()["message"], "nothing written");
}

#[test]
fn the_termination_log_is_cut_at_4_kib_and_says_how_many_more() {
    let moto = Moto::start();
    let pod = Pod::new(&moto.endpoint());
    let objects: String = (0..80)
        .map(|i| {
            format!("- {{objectName: /app/missing/number-{i:03}, objectType: ssmparameter}}\n")
        })
        .collect();
    let out = pod.run(&objects, &[]);
    out.assert_failure();
    assert_eq!(
        out.stderr
            .lines()
            .filter(|l| l.contains("ParameterNotFound"))
            .count(),
        80
    );
    let log = &out.termination_log;
    assert!(log.len() <= 4096, "{}", log.len());
    let shown = log
        .lines()
        .filter(|l| l.contains("ParameterNotFound"))
        .count();
    assert!(shown > 20 && shown < 80, "{shown}");
    assert!(
        log.ends_with(&format!("... and {} more\n", 80 - shown)),
        "{log}"
    );
    assert_eq!(out.summary()["get_parameters"], 8);
}

#[test]
fn leftovers_of_an_earlier_attempt_are_replaced() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    aws.string("/app/a", "a-SENTINEL");
    let pod = Pod::new(&moto.endpoint());
    std::fs::write(pod.mount().join("A"), "old").unwrap();
    std::fs::write(pod.mount().join("old"), "old").unwrap();
    std::fs::write(pod.mount().join(".hidden"), "old").unwrap();
    std::fs::create_dir_all(pod.mount().join(".secrets-injector-staging/x")).unwrap();
    std::os::unix::fs::symlink("/", pod.mount().join("link")).unwrap();
    let out = pod.run(
        "- {objectName: /app/a, objectType: ssmparameter, objectAlias: A}",
        &[],
    );
    out.assert_success();
    let generation = pod.generation();
    assert_eq!(pod.entries(), vec![generation.as_str(), "..data", "A"]);
    assert_eq!(pod.read_string("A"), "a-SENTINEL");
    let emptied = out
        .logs()
        .into_iter()
        .find(|l| l["message"] == "emptied the mount directory of an earlier attempt")
        .expect("a log line about the leftovers");
    assert_eq!(emptied["removed"], 5);
}

#[test]
fn invalid_objects_fail_with_every_problem_and_write_nothing() {
    let moto = Moto::start();
    let pod = Pod::new(&moto.endpoint());
    std::fs::write(pod.mount().join("stale"), "x").unwrap();
    let objects = r#"
- {objectName: no-type}
- {objectName: /a, objectType: SSMParameter}
"#;
    let out = pod.run(objects, &[]);
    out.assert_failure();
    assert!(pod.entries().is_empty());
    assert!(
        out.stderr
            .starts_with("secrets-injector: the objects are invalid; nothing was written\n"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(r#"objects[0] (objectName "no-type")"#),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(r#"objects[1] (objectName "/a")"#),
        "{}",
        out.stderr
    );
    assert!(
        out.termination_log.contains("objectType"),
        "{}",
        out.termination_log
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    let moto = Moto::start();
    let pod = Pod::new(&moto.endpoint());
    let objects = "- {objectName: /a, objectType: ssmparameter}";
    for args in [
        vec!["--file-permission", "999"],
        vec!["--path-translation", "ab"],
        vec!["--deadline", "5 minutes"],
        vec!["--log-format", "xml"],
        vec!["--failover-region", "us-east-1"],
    ] {
        let out = pod.run(objects, &args);
        assert_eq!(out.code, 2, "{args:?}: {out:#?}");
        assert!(
            out.stderr.contains(args[0]) || out.stderr.contains(args[1]),
            "{args:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn text_logs_for_humans() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    aws.string("/app/a", "a-SENTINEL");
    let pod = Pod::new(&moto.endpoint());
    let out = pod.run(
        "- {objectName: /app/a, objectType: ssmparameter}",
        &["--log-format", "text"],
    );
    out.assert_success();
    assert!(out.stdout.contains("files written"), "{}", out.stdout);
    assert!(!out.stdout.trim_start().starts_with('{'));
}

#[test]
fn parameters_that_give_one_file_name_fail_the_object() {
    let moto = Moto::start();
    let aws = Seeder::new(&moto.endpoint(), REGION);
    aws.string("/app/cfg/a/b", "ab-SENTINEL");
    aws.string("/app/cfg/a_b", "a_b-SENTINEL");
    let pod = Pod::new(&moto.endpoint());
    let out = pod.run(
        "- {objectName: /app/cfg, objectType: ssmparameterpath, objectAlias: cfg}",
        &[],
    );
    out.assert_failure();
    assert!(
        out.stderr.contains(
            r#"objects[0] (objectName "/app/cfg"): FileConflict: the file cfg/a_b is also written by another object or parameter"#
        ),
        "{}",
        out.stderr
    );
    assert!(pod.entries().is_empty());
}
