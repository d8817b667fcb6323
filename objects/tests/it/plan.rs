//! Object lists that are accepted, and the files they give.

use secrets_injector_objects::{
    AppIdentity, FileMode, ObjectType, PathTranslation, Plan, Settings, parse, path_parameter_file,
};

fn settings() -> Settings {
    Settings::new("us-east-1")
}

fn plan(annotation: &str) -> Plan {
    plan_with(annotation, settings())
}

fn plan_with(annotation: &str, settings: Settings) -> Plan {
    match parse(annotation, settings) {
        Ok(plan) => plan,
        Err(errors) => panic!("rejected: {errors}"),
    }
}

fn files(plan: &Plan) -> Vec<String> {
    plan.static_files()
        .map(|(path, _)| path.to_string())
        .collect()
}

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

#[test]
fn seeds_example_gives_the_four_files_of_spec() {
    let plan = plan(SEEDS);
    assert_eq!(
        files(&plan),
        [
            "_test_parameter",
            "test_secret",
            "SECRET_USERNAME",
            "SECRET_PASSWORD"
        ]
    );
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    let [parameter, secret] = &plan.objects[..] else {
        panic!("two objects expected");
    };
    assert_eq!(parameter.index, 0);
    assert_eq!(parameter.name, "/test/parameter");
    assert_eq!(parameter.object_type, ObjectType::SsmParameter);
    assert_eq!(parameter.mode, FileMode::DEFAULT);
    assert_eq!(
        parameter.label(),
        "objects[0] (objectName \"/test/parameter\")"
    );
    assert!(!parameter.optional);
    assert_eq!(secret.object_type, ObjectType::SecretsManager);
    assert_eq!(secret.jmes_path.len(), 2);
    assert_eq!(secret.jmes_path[0].path, "username");
    assert_eq!(secret.jmes_path[0].file.as_str(), "SECRET_USERNAME");
    let value = serde_json::json!({"username": "example", "password": "example1234"});
    let result = secret.jmes_path[1]
        .compile()
        .unwrap()
        .search(value)
        .unwrap();
    assert_eq!(result.as_string().map(String::as_str), Some("example1234"));
}

#[test]
fn json_is_accepted_too() {
    let plan = plan(
        r#"[{"objectName": "/test/parameter", "objectType": "ssmparameter"},
            {"objectName": "test/secret", "objectType": "secretsmanager",
             "jmesPath": [{"path": "username", "objectAlias": "SECRET_USERNAME"}]}]"#,
    );
    assert_eq!(
        files(&plan),
        ["_test_parameter", "test_secret", "SECRET_USERNAME"]
    );
}

#[test]
fn aliases_are_translated() {
    let plan = plan(
        "- {objectName: /app/user, objectType: ssmparameter, objectAlias: creds/user}\n\
         - {objectName: db, objectType: secretsmanager, objectAlias: plain}",
    );
    assert_eq!(files(&plan), ["creds_user", "plain"]);
}

#[test]
fn false_translation_makes_subdirectories_without_the_leading_slash() {
    let mut settings = settings();
    settings.path_translation = "False".parse().unwrap();
    let plan = plan_with(
        "- {objectName: /test/parameter, objectType: ssmparameter}\n\
         - {objectName: test/secret, objectType: secretsmanager}\n\
         - {objectName: x, objectType: secretsmanager, objectAlias: creds/user,\n\
            jmesPath: [{path: a, objectAlias: creds/a}]}",
        settings,
    );
    assert_eq!(
        files(&plan),
        ["test/parameter", "test/secret", "creds/user", "creds/a"]
    );
    assert!(!plan.objects[0].file.is_top_level());
}

#[test]
fn custom_translation_character() {
    let mut settings = settings();
    settings.path_translation = PathTranslation::Replace('-');
    let plan = plan_with(
        "- {objectName: /test/parameter, objectType: ssmparameter}\n\
         - {objectName: test/secret, objectType: secretsmanager}",
        settings,
    );
    assert_eq!(files(&plan), ["-test-parameter", "test-secret"]);
}

#[test]
fn arn_without_alias_is_named_by_the_whole_arn_as_in_ascp() {
    let plan = plan(
        "- objectName: arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-AbCdEf\n\
         - objectName: arn:aws:ssm:us-east-1:123456789012:parameter/app/config",
    );
    assert_eq!(
        files(&plan),
        [
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:app_db-AbCdEf",
            "arn:aws:ssm:us-east-1:123456789012:parameter_app_config",
        ]
    );
    assert_eq!(plan.objects[0].object_type, ObjectType::SecretsManager);
    assert_eq!(plan.objects[1].object_type, ObjectType::SsmParameter);
}

#[test]
fn arn_with_matching_object_type_is_accepted() {
    let plan = plan(
        "- objectName: arn:aws:secretsmanager:us-east-1:123456789012:secret:db\n  \
           objectType: secretsmanager\n  objectAlias: db",
    );
    assert_eq!(files(&plan), ["db"]);
}

#[test]
fn names_that_only_look_like_traversal_are_accepted_with_false_as_in_ascp() {
    let mut settings = Settings::new("us-west-2");
    settings.path_translation = PathTranslation::Directories;
    for name in [
        "arn:aws:secretsmanager:us-west-2:123456789012:secret:/..pathTest-abc123",
        "arn:aws:secretsmanager:us-west-2:123456789012:secret:..pathTest-abc123",
        "arn:aws:secretsmanager:us-west-2:123456789012:secret:mypath../pathTest-abc123",
        "arn:aws:secretsmanager:us-west-2:123456789012:secret:mypath..",
    ] {
        plan_with(&format!("- objectName: \"{name}\""), settings.clone());
    }
    // A top-level name starting with ".." is the volume layout's own (rejections.rs);
    // deeper down such names are free.
    for name in ["/mypath/..param", "mypath../param", "mypath.."] {
        plan_with(
            &format!("- {{objectName: \"{name}\", objectType: ssmparameter}}"),
            settings.clone(),
        );
    }
}

#[test]
fn yaml_numbers_are_read_as_their_digits() {
    let plan = plan(
        "- objectName: /app/db\n  objectType: ssmparameter\n  objectVersion: 3\n  filePermission: 0640\n\
         - objectName: db\n  objectType: secretsmanager\n  objectVersion: 0123\n  filePermission: \"0400\"",
    );
    assert_eq!(plan.objects[0].version.as_deref(), Some("3"));
    assert_eq!(plan.objects[0].mode, "0640".parse().unwrap());
    assert_eq!(plan.objects[1].version.as_deref(), Some("0123"));
    assert_eq!(plan.objects[1].mode.bits(), 0o400);
}

#[test]
fn versions_labels_and_optional_are_kept() {
    let plan = plan(
        "- {objectName: db, objectType: secretsmanager, objectVersion: v-1, objectVersionLabel: AWSPREVIOUS}\n\
         - {objectName: /app/db, objectType: ssmparameter, objectVersionLabel: stable, optional: true}",
    );
    assert_eq!(plan.objects[0].version.as_deref(), Some("v-1"));
    assert_eq!(
        plan.objects[0].version_label.as_deref(),
        Some("AWSPREVIOUS")
    );
    assert_eq!(plan.objects[1].version, None);
    assert_eq!(plan.objects[1].version_label.as_deref(), Some("stable"));
    assert!(plan.objects[1].optional);
}

#[test]
fn file_modes_are_inherited() {
    let mut settings = settings();
    settings.default_mode = "0640".parse().unwrap();
    let plan = plan_with(
        "- objectName: a\n  objectType: secretsmanager\n  filePermission: \"0600\"\n  jmesPath:\n\
         \x20   - {path: x, objectAlias: X}\n\
         \x20   - {path: y, objectAlias: Y, filePermission: \"0444\"}\n\
         - {objectName: b, objectType: secretsmanager}",
        settings,
    );
    let modes: Vec<String> = plan
        .static_files()
        .map(|(_, mode)| mode.to_string())
        .collect();
    assert_eq!(modes, ["0600", "0600", "0444", "0640"]);
}

#[test]
fn failover_object_is_accepted_as_in_ascp() {
    let mut settings = Settings::new("us-west-1");
    settings.failover_region = Some("us-west-2".into());
    let plan = plan_with(
        r#"
- objectName: "arn:aws:secretsmanager:us-west-1:123456789012:secret:secret1"
  failoverObject: {objectName: "arn:aws:secretsmanager:us-west-2:123456789012:secret:secret1"}
  objectAlias: test
- objectName: MySecret1
  objectType: ssmparameter
  objectVersion: 2
  failoverObject:
    objectName: MySecretInAnotherRegion
    objectVersion: "2"
  objectAlias: test2
"#,
        settings,
    );
    let failover = plan.objects[0].failover.as_ref().unwrap();
    assert_eq!(
        failover.name,
        "arn:aws:secretsmanager:us-west-2:123456789012:secret:secret1"
    );
    assert_eq!(files(&plan), ["test", "test2"]);
    let failover = plan.objects[1].failover.as_ref().unwrap();
    assert_eq!(failover.name, "MySecretInAnotherRegion");
    assert_eq!(failover.version.as_deref(), Some("2"));
}

#[test]
fn unknown_fields_are_warnings_naming_them() {
    let plan = plan(
        "- objectName: x\n  objectType: secretsmanager\n  objectAlais: y\n  color: blue\n  \
           jmesPath: [{path: a, objectAlias: A, alais: b}]",
    );
    assert_eq!(
        plan.warnings,
        [
            "annotation secrets-injector.io/objects: objects[0] (objectName \"x\"): unknown field \
             \"jmesPath[0].alais\" ignored; did you mean objectAlias?",
            "annotation secrets-injector.io/objects: objects[0] (objectName \"x\"): unknown field \
             \"color\" ignored; the known fields are objectName, objectType, objectAlias, \
             objectVersion, objectVersionLabel, jmesPath, filePermission, failoverObject, optional, tags, \
             decode",
            "annotation secrets-injector.io/objects: objects[0] (objectName \"x\"): unknown field \
             \"objectAlais\" ignored; did you mean objectAlias?",
        ]
    );
    assert_eq!(files(&plan), ["x", "A"]);
}

#[test]
fn a_jmes_entry_narrower_than_its_object_is_a_warning_naming_both() {
    let seeds = plan(
        "- {objectName: /test/parameter, objectType: ssmparameter}\n\
         - objectName: test/secret\n  objectType: secretsmanager\n  jmesPath:\n\
         \x20   - {path: username, objectAlias: SECRET_USERNAME}\n\
         \x20   - {path: password, objectAlias: SECRET_PASSWORD, filePermission: \"0400\"}",
    );
    assert_eq!(
        seeds.warnings,
        [
            "annotation secrets-injector.io/objects: objects[1] (objectName \"test/secret\"): \
             jmesPath entry SECRET_PASSWORD (jmesPath[1]) has filePermission 0400, but the \
             object's own file test_secret, which holds the whole value, keeps 0644; give the \
             object filePermission 0400 too"
        ]
    );
    // Modes neither of which holds the other: the fix is what both allow.
    let crossed = plan(
        "- objectName: s\n  objectType: secretsmanager\n  filePermission: \"0604\"\n  \
           jmesPath: [{path: p, objectAlias: P, filePermission: \"0640\"}]",
    );
    assert_eq!(crossed.warnings.len(), 1, "{:?}", crossed.warnings);
    assert!(
        crossed.warnings[0].ends_with(
            "jmesPath entry P (jmesPath[0]) has filePermission 0640, but the object's own file \
             s, which holds the whole value, keeps 0604; give the object filePermission 0600, \
             no more open than either"
        ),
        "{:?}",
        crossed.warnings
    );
}

#[test]
fn jmes_entries_as_open_as_their_object_or_more_are_no_warning() {
    for (object, entry) in [
        (None, None),
        (Some("0400"), Some("0400")),
        (Some("0400"), Some("0644")),
        (Some("0640"), None),
    ] {
        let object_mode = object
            .map(|m| format!("\n  filePermission: \"{m}\""))
            .unwrap_or_default();
        let entry_mode = entry
            .map(|m| format!(", filePermission: \"{m}\""))
            .unwrap_or_default();
        let plan = plan(&format!(
            "- objectName: s\n  objectType: secretsmanager{object_mode}\n  \
               jmesPath: [{{path: p, objectAlias: P{entry_mode}}}]"
        ));
        assert!(
            plan.warnings.is_empty(),
            "{object:?} {entry:?}: {:?}",
            plan.warnings
        );
    }
}

#[test]
fn path_objects_write_one_file_per_parameter_inside_their_directory() {
    let plan =
        plan("- {objectName: /app/config, objectType: ssmparameterpath, objectAlias: config}");
    let object = &plan.objects[0];
    assert_eq!(object.object_type, ObjectType::SsmParameterPath);
    assert_eq!(object.file.as_str(), "config");
    assert_eq!(
        files(&plan),
        Vec::<String>::new(),
        "directories are not static files"
    );

    let underscore = PathTranslation::default();
    let file = |t: &PathTranslation, name: &str| {
        path_parameter_file(object, t, name).map(|p| p.to_string())
    };
    assert_eq!(file(&underscore, "/app/config/db").unwrap(), "config/db");
    assert_eq!(
        file(&underscore, "/app/config/db/password").unwrap(),
        "config/db_password"
    );
    assert_eq!(
        file(&PathTranslation::Replace('.'), "/app/config/db/password").unwrap(),
        "config/db.password"
    );
    assert_eq!(
        file(&PathTranslation::Directories, "/app/config/db/password").unwrap(),
        "config/db/password"
    );
    for outside in [
        "/app/configuration/x",
        "/app/config",
        "/app/config/",
        "/other/x",
        "app/config/x",
    ] {
        let err = file(&underscore, outside).unwrap_err();
        assert!(
            err.contains("is not below the path \"/app/config\""),
            "{outside}: {err}"
        );
    }
    let err = file(&PathTranslation::Directories, "/app/config/a/../b").unwrap_err();
    assert!(err.contains("gives no valid file name"), "{err}");
}

#[test]
fn path_object_at_the_root_or_with_a_trailing_slash() {
    let plan = plan(
        "- {objectName: /, objectType: ssmparameterpath, objectAlias: all}\n\
         - {objectName: /app/, objectType: ssmparameterpath, objectAlias: app}",
    );
    let t = PathTranslation::default();
    assert_eq!(
        path_parameter_file(&plan.objects[0], &t, "/app/db")
            .unwrap()
            .as_str(),
        "all/app_db"
    );
    assert_eq!(
        path_parameter_file(&plan.objects[1], &t, "/app/db")
            .unwrap()
            .as_str(),
        "app/db"
    );
}

#[test]
fn env_file_is_planned() {
    let mut settings = settings();
    settings.env_file = Some("env".into());
    let plan = plan_with(SEEDS, settings);
    assert_eq!(plan.env_file.as_ref().map(|p| p.as_str()), Some("env"));
}

/// The env file's mode is the default mode ANDed with the mode of every file that can go into
/// it: top-level files with environment-variable names, objects' own and jmesPath ones.
#[test]
fn the_env_file_is_never_more_open_than_the_files_it_holds() {
    let env_mode = |annotation: &str| {
        let mut settings = settings();
        settings.env_file = Some("env".into());
        plan_with(annotation, settings).env_file_mode().to_string()
    };
    assert_eq!(
        env_mode("- {objectName: /a, objectType: ssmparameter, objectAlias: A}"),
        "0644"
    );
    assert_eq!(
        env_mode(
            "- {objectName: /a, objectType: ssmparameter, objectAlias: DB_PASSWORD, filePermission: \"0400\"}\n\
             - {objectName: /b, objectType: ssmparameter, objectAlias: B}"
        ),
        "0400"
    );
    assert_eq!(
        env_mode(
            "- {objectName: /a, objectType: ssmparameter, objectAlias: A, filePermission: \"0440\"}\n\
             - {objectName: /b, objectType: ssmparameter, objectAlias: B, filePermission: \"0644\"}"
        ),
        "0440"
    );
    // jmesPath files count, and so does the object's own file.
    assert_eq!(
        env_mode(
            "- objectName: s\n  objectType: secretsmanager\n  objectAlias: S\n  filePermission: \"0660\"\n  \
               jmesPath: [{path: p, objectAlias: P, filePermission: \"0604\"}]"
        ),
        "0600"
    );
    // Files that cannot go into it do not narrow it: names that are not environment variable
    // names, and the files inside ssmparameterpath directories.
    assert_eq!(
        env_mode(
            "- {objectName: /a, objectType: ssmparameter, objectAlias: db.json, filePermission: \"0400\"}\n\
             - {objectName: /dir, objectType: ssmparameterpath, objectAlias: dir, filePermission: \"0400\"}\n\
             - {objectName: /c, objectType: ssmparameter, objectAlias: C}"
        ),
        "0644"
    );
}

#[test]
fn readable_modes_pass_the_app_check() {
    let plan = plan(SEEDS);
    assert!(plan.unreadable(AppIdentity::default()).is_empty());
    let plan = plan_with_modes("0640", None);
    let group = AppIdentity {
        run_as_user: None,
        fs_group: Some(2000),
        ..AppIdentity::default()
    };
    assert!(plan.unreadable(group).is_empty());
    let user = AppIdentity {
        run_as_user: Some(1000),
        fs_group: None,
        ..AppIdentity::default()
    };
    let plan = plan_with_modes("0400", Some("0600"));
    assert!(plan.unreadable(user).is_empty());
}

fn plan_with_modes(object: &str, entry: Option<&str>) -> Plan {
    let entry_mode = entry
        .map(|m| format!(", filePermission: \"{m}\""))
        .unwrap_or_default();
    plan(&format!(
        "- objectName: s\n  objectType: secretsmanager\n  filePermission: \"{object}\"\n  \
           jmesPath: [{{path: a, objectAlias: A{entry_mode}}}]"
    ))
}

#[test]
fn decode_base64_on_objects_and_jmes_entries() {
    use secrets_injector_objects::object::Decode;
    let plan = plan(
        "- objectName: cert\n  objectType: secretsmanager\n  decode: base64\n  jmesPath:\n    \
         - {path: key, objectAlias: KEY, decode: base64}\n    - {path: name, objectAlias: NAME}\n",
    );
    let object = &plan.objects[0];
    assert_eq!(object.decode, Some(Decode::Base64));
    assert_eq!(object.jmes_path[0].decode, Some(Decode::Base64));
    assert_eq!(object.jmes_path[1].decode, None);
    let err = parse(
        "- {objectName: a, objectType: ssmparameter, decode: hex}\n- objectName: b\n  \
         objectType: ssmparameter\n  jmesPath: [{path: x, objectAlias: X, decode: b64}]\n",
        settings(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("objects[0] (objectName \"a\"): decode \"hex\" is not known; the only decoding is base64"),
        "{err}"
    );
    assert!(
        err.contains("jmesPath[0] (path \"x\"): decode \"b64\" is not known"),
        "{err}"
    );
}
