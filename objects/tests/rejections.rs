//! Every rule of SPEC's "Rejected at admission" list that concerns the objects, each with
//! bad input and a check that the message names the annotation, the object and the rule.

use secrets_injector_objects::{AppIdentity, Error, PathTranslation, Settings, parse};

const OBJECTS: &str = "annotation secrets-injector.io/objects: ";

fn settings() -> Settings {
    Settings::new("us-east-1")
}

fn with_failover() -> Settings {
    let mut settings = settings();
    settings.failover_region = Some("us-west-2".into());
    settings
}

fn directories() -> Settings {
    let mut settings = settings();
    settings.path_translation = PathTranslation::Directories;
    settings
}

fn rejected_with(annotation: &str, settings: Settings) -> Vec<Error> {
    match parse(annotation, settings) {
        Ok(plan) => panic!("accepted: {plan:?}"),
        Err(errors) => errors.0,
    }
}

/// The one error `annotation` gives, as text.
fn rejection(annotation: &str, settings: Settings) -> String {
    let errors = rejected_with(annotation, settings);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors[0].to_string()
}

/// Asserts the message names the annotation, the object and every part of the rule given.
fn assert_object_error(message: &str, label: &str, rule: &[&str]) {
    let prefix = format!("{OBJECTS}{label}: ");
    assert!(
        message.starts_with(&prefix),
        "expected prefix {prefix:?} in {message:?}"
    );
    for part in rule {
        assert!(message.contains(part), "expected {part:?} in {message:?}");
    }
}

// File names.

#[test]
fn empty_file_name() {
    let message = rejection(
        "- {objectName: x, objectType: secretsmanager, objectAlias: /}",
        directories(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"x\")",
        &[
            "objectAlias \"/\" gives no valid file name",
            "would be empty",
            "set objectAlias",
        ],
    );
}

#[test]
fn dot_file_name() {
    let message = rejection(
        "- {objectName: x, objectType: secretsmanager, objectAlias: .}",
        settings(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"x\")",
        &["\".\" is not allowed"],
    );
}

#[test]
fn dot_dot_file_name() {
    let message = rejection(
        "- {objectName: x, objectType: secretsmanager, objectAlias: ..}",
        settings(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"x\")",
        &["\"..\" is not allowed"],
    );
}

#[test]
fn traversal_with_false_translation_as_in_ascp() {
    let cases = [
        "- objectName: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:/../pathTest-abc123\"",
        "- objectName: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:mypath/../../pathTest-abc123\"",
        "- objectName: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:mypath/..\"",
        "- {objectName: \"../mypath\", objectType: secretsmanager}",
        "- {objectName: \"mypath/../../param\", objectType: secretsmanager}",
        "- {objectName: \"mypath/..\", objectType: ssmparameter}",
    ];
    for case in cases {
        let message = rejection(case, directories());
        assert!(
            message.contains("\"..\" is not allowed"),
            "{case}: {message}"
        );
        assert!(message.contains("objectName \""), "{message}");
    }
}

#[test]
fn nul_in_file_name() {
    let message = rejection(
        "- {objectName: x, objectType: secretsmanager, objectAlias: \"a\\0b\"}",
        settings(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"x\")",
        &["contains a NUL byte"],
    );
}

#[test]
fn slash_parts_must_each_be_valid_with_false() {
    let message = rejection(
        "- {objectName: x, objectType: secretsmanager, objectAlias: \"a//b\"}",
        directories(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"x\")",
        &["would be empty"],
    );
}

#[test]
fn file_name_over_255_bytes() {
    let alias = "a".repeat(256);
    let message = rejection(
        &format!("- {{objectName: x, objectType: secretsmanager, objectAlias: {alias}}}"),
        settings(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"x\")",
        &["is 256 bytes, over the 255-byte limit"],
    );
    let name = format!("/{}", "p".repeat(255));
    let message = rejection(
        &format!("- {{objectName: {name}, objectType: ssmparameter}}"),
        settings(),
    );
    assert!(message.contains("objectName \"/ppp"), "{message}");
    assert!(message.contains("set objectAlias"), "{message}");
}

#[test]
fn jmes_alias_leaving_the_directory() {
    let message = rejection(
        "- objectName: x\n  objectType: secretsmanager\n  jmesPath: [{path: a, objectAlias: ../etc/passwd}]",
        directories(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"x\")",
        &[
            "jmesPath[0] (path \"a\"): objectAlias \"../etc/passwd\" gives no valid file name",
            "\"..\" is not allowed",
        ],
    );
}

// Two entries, one file.

#[test]
fn two_objects_with_one_file() {
    let message = rejection(
        "- {objectName: secret1, objectType: ssmparameter}\n- {objectName: secret1, objectType: ssmparameter}",
        settings(),
    );
    assert_object_error(
        &message,
        "objects[1] (objectName \"secret1\")",
        &[
            "the file of objects[1] (objectName \"secret1\") is \"secret1\", which is also the file of objects[0] (objectName \"secret1\")",
            "change an objectAlias",
        ],
    );
}

#[test]
fn same_name_with_different_labels_and_no_alias_still_collide() {
    let message = rejection(
        "- {objectName: s, objectType: secretsmanager, objectVersionLabel: AWSCURRENT}\n\
         - {objectName: s, objectType: secretsmanager, objectVersionLabel: AWSPREVIOUS}",
        settings(),
    );
    assert!(
        message.contains("is \"s\", which is also the file of objects[0]"),
        "{message}"
    );
}

#[test]
fn alias_colliding_with_another_object() {
    let message = rejection(
        "- {objectName: secret1, objectType: ssmparameter, objectAlias: aliasOne}\n\
         - {objectName: secret2, objectType: ssmparameter, objectAlias: aliasOne}",
        settings(),
    );
    assert_object_error(
        &message,
        "objects[1] (objectName \"secret2\")",
        &["is \"aliasOne\", which is also"],
    );
}

#[test]
fn names_that_translate_to_one_file() {
    let message = rejection(
        "- {objectName: /a/b, objectType: ssmparameter}\n- {objectName: _a_b, objectType: secretsmanager}",
        settings(),
    );
    assert!(
        message.contains("is \"_a_b\", which is also the file of objects[0]"),
        "{message}"
    );
}

#[test]
fn jmes_alias_colliding_with_an_object() {
    let message = rejection(
        "- {objectName: secret1, objectType: ssmparameter, objectAlias: aliasOne}\n\
         - objectName: secret2\n  objectType: ssmparameter\n  jmesPath: [{path: username, objectAlias: aliasOne}]",
        settings(),
    );
    assert_object_error(
        &message,
        "objects[1] (objectName \"secret2\")",
        &[
            "the file of jmesPath[0] (path \"username\") of objects[1] (objectName \"secret2\") is \"aliasOne\"",
            "also the file of objects[0]",
        ],
    );
}

#[test]
fn two_jmes_aliases_in_one_object() {
    let message = rejection(
        "- objectName: s\n  objectType: secretsmanager\n  jmesPath:\n    - {path: a, objectAlias: X}\n    - {path: b, objectAlias: X}",
        settings(),
    );
    assert!(message.contains("jmesPath[1] (path \"b\")"), "{message}");
    assert!(
        message.contains("also the file of jmesPath[0] (path \"a\")"),
        "{message}"
    );
}

#[test]
fn jmes_alias_equal_to_its_own_object_file() {
    let message = rejection(
        "- objectName: s\n  objectType: secretsmanager\n  jmesPath: [{path: a, objectAlias: s}]",
        settings(),
    );
    assert!(
        message.contains("is \"s\", which is also the file of objects[0] (objectName \"s\")"),
        "{message}"
    );
}

#[test]
fn env_file_colliding_with_an_object() {
    let mut settings = settings();
    settings.env_file = Some("_test_parameter".into());
    let errors = rejected_with(
        "- {objectName: /test/parameter, objectType: ssmparameter}",
        settings,
    );
    assert_eq!(errors.len(), 1);
    let message = errors[0].to_string();
    assert!(
        message.starts_with(
            "annotation secrets-injector.io/env-file: the env file is \"_test_parameter\""
        ),
        "{message}"
    );
    assert!(
        message.contains("also the file of objects[0] (objectName \"/test/parameter\")"),
        "{message}"
    );
}

#[test]
fn file_inside_a_path_directory() {
    let message = rejection(
        "- {objectName: /app, objectType: ssmparameterpath, objectAlias: config}\n\
         - {objectName: x, objectType: secretsmanager, objectAlias: config/x}",
        directories(),
    );
    assert_object_error(
        &message,
        "objects[1] (objectName \"x\")",
        &[
            "inside the directory of objects[0] (objectName \"/app\")",
            "choose a name outside that directory",
        ],
    );
}

#[test]
fn file_equal_to_a_path_directory() {
    let message = rejection(
        "- {objectName: /app, objectType: ssmparameterpath, objectAlias: config}\n\
         - {objectName: config, objectType: secretsmanager}",
        settings(),
    );
    assert!(
        message.contains("also the directory of objects[0] (objectName \"/app\")"),
        "{message}"
    );
}

#[test]
fn file_that_must_also_be_a_directory() {
    let message = rejection(
        "- {objectName: /a, objectType: ssmparameter}\n- {objectName: /a/b, objectType: ssmparameter}",
        directories(),
    );
    assert_object_error(
        &message,
        "objects[1] (objectName \"/a/b\")",
        &["is \"a/b\", which needs \"a\" to be a directory, but that is the file of objects[0]"],
    );
}

// Names and types.

#[test]
fn missing_object_name() {
    let message = rejection("- {objectType: ssmparameter, objectAlias: x}", settings());
    assert_object_error(&message, "objects[0]", &["objectName is required"]);
    let message = rejection(
        "- {objectName: \"\", objectType: ssmparameter, objectAlias: x}",
        settings(),
    );
    assert_object_error(&message, "objects[0]", &["objectName is required"]);
}

#[test]
fn name_without_object_type() {
    let message = rejection("- objectName: SomeSecret", settings());
    assert_object_error(
        &message,
        "objects[0] (objectName \"SomeSecret\")",
        &[
            "objectType is required when objectName is not an ARN",
            "set objectType: ssmparameter, secretsmanager or ssmparameterpath",
        ],
    );
}

#[test]
fn arn_that_does_not_parse() {
    let message = rejection("- objectName: \"arn::\"", settings());
    assert_object_error(
        &message,
        "objects[0] (objectName \"arn::\")",
        &[
            "objectName \"arn::\" is not a valid ARN",
            "arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE",
        ],
    );
}

#[test]
fn arn_of_another_service() {
    let message = rejection(
        "- objectName: arn:aws:sts:us-east-1:123456789012:parameter/feaw",
        settings(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"arn:aws:sts:us-east-1:123456789012:parameter/feaw\")",
        &["is an ARN of service \"sts\" that names no SSM parameter or Secrets Manager secret"],
    );
}

#[test]
fn unknown_object_type_case_matters() {
    for bad in ["SSMParameter", "ssm", "sts"] {
        let message = rejection(
            &format!("- {{objectName: x, objectType: {bad}}}"),
            settings(),
        );
        assert_object_error(
            &message,
            "objects[0] (objectName \"x\")",
            &[
                &format!("objectType \"{bad}\" is not known (spelling and case matter)"),
                "use ssmparameter, secretsmanager or ssmparameterpath",
            ],
        );
    }
}

#[test]
fn object_type_contradicting_the_arn() {
    let message = rejection(
        "- objectName: arn:aws:secretsmanager:us-east-1:123456789012:secret:/feaw\n  objectType: ssmparameter",
        settings(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"arn:aws:secretsmanager:us-east-1:123456789012:secret:/feaw\")",
        &[
            "objectType ssmparameter (the object's type) contradicts objectName, an ARN whose type is secretsmanager",
        ],
    );
}

#[test]
fn object_name_arn_in_another_region() {
    let message = rejection(
        "- {objectName: \"arn:aws:secretsmanager:us-west-1:123456789012:secret:secret1\", objectAlias: test}",
        Settings::new("us-west-2"),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"arn:aws:secretsmanager:us-west-1:123456789012:secret:secret1\")",
        &[
            "objectName is an ARN in region \"us-west-1\", but the region (secrets-injector.io/region) is \"us-west-2\"",
        ],
    );
}

#[test]
fn path_object_with_an_arn() {
    let message = rejection(
        "- {objectName: \"arn:aws:ssm:us-east-1:123456789012:parameter/app\", objectType: ssmparameterpath, objectAlias: app}",
        settings(),
    );
    assert!(
        message.contains("an ssmparameterpath object takes a parameter path starting with '/'"),
        "{message}"
    );
}

#[test]
fn path_object_not_starting_with_a_slash() {
    let message = rejection(
        "- {objectName: app/config, objectType: ssmparameterpath, objectAlias: app}",
        settings(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"app/config\")",
        &["must be a parameter path starting with '/'"],
    );
}

#[test]
fn path_object_without_alias() {
    let message = rejection(
        "- {objectName: /app/config, objectType: ssmparameterpath}",
        settings(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"/app/config\")",
        &["an ssmparameterpath object needs objectAlias"],
    );
}

// Versions.

#[test]
fn ssm_version_and_label_together() {
    let message = rejection(
        "- {objectName: SomeParameter, objectType: ssmparameter, objectVersion: 3, objectVersionLabel: SomeLabel}",
        settings(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"SomeParameter\")",
        &["objectVersion and objectVersionLabel cannot both be set on an SSM parameter"],
    );
}

#[test]
fn ssm_version_that_is_not_a_number() {
    for bad in ["VersionId", "0", "-1", "1.5"] {
        let message = rejection(
            &format!("- {{objectName: p, objectType: ssmparameter, objectVersion: \"{bad}\"}}"),
            settings(),
        );
        assert_object_error(
            &message,
            "objects[0] (objectName \"p\")",
            &[&format!(
                "objectVersion \"{bad}\" of an SSM parameter must be a version number"
            )],
        );
    }
}

#[test]
fn ssm_label_that_begins_with_a_digit() {
    let message = rejection(
        "- {objectName: p, objectType: ssmparameter, objectVersionLabel: \"3\"}",
        settings(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"p\")",
        &["begins with a digit"],
    );
}

#[test]
fn versions_on_a_path_object() {
    let message = rejection(
        "- {objectName: /app, objectType: ssmparameterpath, objectAlias: app, objectVersion: 2}",
        settings(),
    );
    assert!(
        message.contains("do not apply to an ssmparameterpath object"),
        "{message}"
    );
}

// jmesPath.

#[test]
fn jmes_path_on_a_path_object() {
    let message = rejection(
        "- objectName: /app\n  objectType: ssmparameterpath\n  objectAlias: app\n  jmesPath: [{path: a, objectAlias: A}]",
        settings(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"/app\")",
        &["jmesPath does not apply to an ssmparameterpath object"],
    );
}

#[test]
fn jmes_expression_that_does_not_compile() {
    let message = rejection(
        "- objectName: s\n  objectType: secretsmanager\n  jmesPath: [{path: \"user[\", objectAlias: U}]",
        settings(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"s\")",
        &[
            "jmesPath[0] (path \"user[\"): the JMESPath expression \"user[\" does not compile: Parse error:",
            "at column",
        ],
    );
    assert!(!message.contains('\n'), "{message}");
}

/// A path the parser would recurse on until the stack overflows is refused before it: too
/// long, or nesting too deep. The message names the entry (with only the start of the path),
/// the limit, and how to fix it.
#[test]
fn jmes_expression_over_the_limits() {
    let object = |path: &str| {
        format!(
            "- objectName: s\n  objectType: secretsmanager\n  jmesPath: [{{path: '{path}', objectAlias: U}}]"
        )
    };
    let message = rejection(&object(&format!("{}a", "!".repeat(5000))), settings());
    assert_object_error(
        &message,
        "objects[0] (objectName \"s\")",
        &[
            "jmesPath[0] (path \"!!!!!!!!",
            "…\"): the JMESPath expression is 5001 bytes, over the limit of 1024 bytes; shorten it",
        ],
    );
    assert!(message.len() < 400, "{message}");
    let message = rejection(&object(&"(".repeat(30_000)), settings());
    assert!(
        message.contains("is 30000 bytes, over the limit of 1024 bytes"),
        "{message}"
    );
    let message = rejection(&object(&"a[]".repeat(40)), settings());
    assert_object_error(
        &message,
        "objects[0] (objectName \"s\")",
        &[
            "the JMESPath expression has 40 operators that nest",
            "over the limit of 32;",
        ],
    );
}

#[test]
fn jmes_entry_without_path() {
    let message = rejection(
        "- objectName: secret2\n  objectType: ssmparameter\n  jmesPath: [{objectAlias: aliasOne}]",
        settings(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"secret2\")",
        &["jmesPath[0]: path is required"],
    );
}

#[test]
fn jmes_entry_without_alias() {
    let message = rejection(
        "- objectName: secret2\n  objectType: ssmparameter\n  jmesPath: [{path: username}]",
        settings(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"secret2\")",
        &["jmesPath[0] (path \"username\"): objectAlias is required"],
    );
    // ASCP's own example: ".username" does not compile either, and both are reported.
    let errors = rejected_with(
        "- objectName: secret2\n  objectType: ssmparameter\n  jmesPath: [{path: .username}]",
        settings(),
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].to_string().contains("does not compile"));
    assert!(errors[1].to_string().contains("objectAlias is required"));
}

#[test]
fn jmes_path_that_is_not_a_list() {
    let message = rejection(
        "- objectName: s\n  objectType: secretsmanager\n  jmesPath: {path: a, objectAlias: A}",
        settings(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"s\")",
        &["jmesPath is a mapping, not a list"],
    );
}

// File modes.

#[test]
fn file_permission_not_four_octal_digits() {
    for bad in ["abc9", "000", "00000", "0888", "1777", "640"] {
        let message = rejection(
            &format!("- {{objectName: s, objectType: secretsmanager, filePermission: \"{bad}\"}}"),
            settings(),
        );
        assert_object_error(
            &message,
            "objects[0] (objectName \"s\")",
            &[&format!(
                "filePermission \"{bad}\" is not a file mode of four octal digits at most 0777"
            )],
        );
    }
}

#[test]
fn yaml_number_file_permission_follows_the_same_rule() {
    let message = rejection(
        "- {objectName: s, objectType: secretsmanager, filePermission: 644}",
        settings(),
    );
    assert!(
        message.contains("filePermission \"644\" is not a file mode of four octal digits"),
        "{message}"
    );
}

#[test]
fn jmes_file_permission_not_four_octal_digits() {
    let message = rejection(
        "- objectName: s\n  objectType: secretsmanager\n  jmesPath: [{path: a, objectAlias: A, filePermission: efgh}]",
        settings(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"s\")",
        &[
            "jmesPath[0] (path \"a\"): filePermission \"efgh\" is not a file mode of four octal digits",
        ],
    );
}

#[test]
fn file_permission_the_app_could_not_read() {
    let plan = parse(
        "- objectName: s\n  objectType: secretsmanager\n  filePermission: \"0600\"\n  \
           jmesPath: [{path: a, objectAlias: A, filePermission: \"0640\"}]",
        settings(),
    )
    .unwrap();
    let errors = plan.unreadable(AppIdentity::default());
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_object_error(
        &errors[0].to_string(),
        "objects[0] (objectName \"s\")",
        &[
            "filePermission mode 0600 lets only the file's owner read it",
            "set runAsUser",
        ],
    );
    assert_object_error(
        &errors[1].to_string(),
        "objects[0] (objectName \"s\")",
        &[
            "jmesPath[0].filePermission mode 0640 lets only the file's owner and group read it",
            "fsGroup",
        ],
    );
}

#[test]
fn default_file_permission_the_app_could_not_read() {
    let mut settings = settings();
    settings.default_mode = "0400".parse().unwrap();
    let plan = parse("- {objectName: s, objectType: secretsmanager}", settings).unwrap();
    let errors = plan.unreadable(AppIdentity {
        run_as_user: None,
        fs_group: Some(1),
    });
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let message = errors[0].to_string();
    assert!(
        message.starts_with(
            "annotation secrets-injector.io/file-permission: the default file mode: mode 0400"
        ),
        "{message}"
    );
}

#[test]
fn an_env_file_narrowed_until_the_app_could_not_read_it() {
    let mut settings = settings();
    settings.env_file = Some("app.env".into());
    // Each file alone is readable under fsGroup (group read, others read), but the env file
    // holding both gets 0400, which only its owner can read.
    let plan = parse(
        "- {objectName: /a, objectType: ssmparameter, objectAlias: DB_PASSWORD, filePermission: \"0440\"}\n\
         - {objectName: /b, objectType: ssmparameter, objectAlias: API_KEY, filePermission: \"0604\"}\n\
         - {objectName: /c, objectType: ssmparameter, objectAlias: PLAIN}",
        settings,
    )
    .unwrap();
    assert_eq!(plan.env_file_mode().to_string(), "0400");
    let errors = plan.unreadable(AppIdentity {
        run_as_user: None,
        fs_group: Some(2000),
    });
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let message = errors[0].to_string();
    for part in [
        "annotation secrets-injector.io/env-file: the env file gets mode 0400",
        "DB_PASSWORD (0440), API_KEY (0604)",
        "mode 0400 lets only the file's owner read it",
        "objectAlias",
        "drop the env-file annotation",
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    assert!(!message.contains("PLAIN"), "{message}");
    // With runAsUser the app owns the env file, and 0400 is enough.
    assert!(
        plan.unreadable(AppIdentity {
            run_as_user: Some(1000),
            fs_group: None,
        })
        .is_empty()
    );
}

// Failover.

#[test]
fn failover_without_alias() {
    let message = rejection(
        "- objectName: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:secret1\"\n  \
           failoverObject:\n    objectName: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:secret1\"",
        with_failover(),
    );
    assert!(
        message.contains("failoverObject needs objectAlias on the object"),
        "{message}"
    );
}

#[test]
fn failover_without_failover_region() {
    let message = rejection(
        "- objectName: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:secret1\"\n  objectAlias: test\n  \
           failoverObject: {objectName: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:secret1\"}",
        settings(),
    );
    assert!(message.contains("failoverObject needs a failover region; set the annotation secrets-injector.io/failover-region"), "{message}");
}

#[test]
fn failover_region_equal_to_the_region() {
    let mut settings = settings();
    settings.failover_region = Some("us-east-1".into());
    let message = rejection("- {objectName: s, objectType: secretsmanager}", settings);
    assert!(
        message.starts_with(
            "annotation secrets-injector.io/failover-region: \"us-east-1\" is the region itself"
        ),
        "{message}"
    );
}

#[test]
fn failover_version_differing_from_the_primary() {
    let message = rejection(
        "- objectName: MySecret1\n  objectType: ssmparameter\n  objectVersion: 1\n  objectAlias: test\n  \
           failoverObject: {objectName: MySecretInAnotherRegion, objectVersion: 2}",
        with_failover(),
    );
    assert_object_error(
        &message,
        "objects[0] (objectName \"MySecret1\")",
        &["failoverObject.objectVersion (\"2\") differs from objectVersion (\"1\")"],
    );
    let message = rejection(
        "- objectName: s\n  objectType: secretsmanager\n  objectVersion: v1\n  objectAlias: test\n  \
           failoverObject: {objectName: s}",
        with_failover(),
    );
    assert!(
        message
            .contains("failoverObject.objectVersion (not set) differs from objectVersion (\"v1\")"),
        "{message}"
    );
}

#[test]
fn failover_arn_outside_the_failover_region() {
    let mut settings = Settings::new("us-west-1");
    settings.failover_region = Some("us-east-2".into());
    let message = rejection(
        "- objectName: \"arn:aws:secretsmanager:us-west-1:123456789012:secret:secret1\"\n  objectAlias: test\n  \
           failoverObject: {objectName: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:secret1\"}",
        settings,
    );
    assert!(
        message.contains(
            "failoverObject.objectName is an ARN in region \"us-west-2\", but the region \
             (secrets-injector.io/failover-region) is \"us-east-2\""
        ),
        "{message}"
    );
}

#[test]
fn failover_name_without_object_type_as_in_ascp() {
    let message = rejection(
        "- objectName: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:secret1\"\n  objectAlias: test\n  \
           failoverObject: {objectName: MySecret}",
        with_failover(),
    );
    assert!(
        message.contains("objectType is required when failoverObject.objectName is not an ARN"),
        "{message}"
    );
}

#[test]
fn failover_arn_of_another_kind() {
    let message = rejection(
        "- objectName: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:secret1\"\n  objectAlias: test\n  \
           failoverObject: {objectName: \"arn:aws:ssm:us-west-2:123456789012:parameter/secret1\"}",
        with_failover(),
    );
    assert!(
        message
            .contains("contradicts failoverObject.objectName, an ARN whose type is ssmparameter"),
        "{message}"
    );
    let message = rejection(
        "- objectName: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:secret1\"\n  objectAlias: test\n  \
           failoverObject: {objectName: \"arn:aws:bad:us-west-2:123456789012:secret:secret1\"}",
        with_failover(),
    );
    assert!(message.contains("an ARN of service \"bad\""), "{message}");
}

#[test]
fn failover_ssm_version_and_label_together() {
    let message = rejection(
        "- objectName: MySecret1\n  objectType: ssmparameter\n  objectVersion: 2\n  objectAlias: test\n  \
           failoverObject:\n    objectName: MySecretInAnotherRegion\n    objectVersion: 2\n    objectVersionLabel: MyLabel",
        with_failover(),
    );
    assert!(
        message.contains(
            "failoverObject.objectVersion and failoverObject.objectVersionLabel cannot both be set"
        ),
        "{message}"
    );
}

#[test]
fn failover_without_object_name() {
    let message = rejection(
        "- {objectName: s, objectType: secretsmanager, objectAlias: t, failoverObject: {objectVersionLabel: x}}",
        with_failover(),
    );
    assert!(
        message.contains("failoverObject.objectName is required"),
        "{message}"
    );
}

// Field types.

#[test]
fn optional_must_be_a_boolean() {
    for bad in ["yes", "\"true\"", "1"] {
        let message = rejection(
            &format!("- {{objectName: s, objectType: secretsmanager, optional: {bad}}}"),
            settings(),
        );
        assert_object_error(
            &message,
            "objects[0] (objectName \"s\")",
            &["optional is", "not a boolean; write true or false"],
        );
    }
}

#[test]
fn names_must_be_strings() {
    let message = rejection(
        "- {objectName: s, objectType: secretsmanager, objectAlias: [a]}",
        settings(),
    );
    assert!(
        message.contains("objectAlias is a list, not a string"),
        "{message}"
    );
}

// The list as a whole.

#[test]
fn list_with_no_objects() {
    for empty in ["[]", "", "# nothing\n", "~"] {
        let message = rejection(empty, settings());
        assert!(
            message.starts_with(&format!("{OBJECTS}lists no objects")),
            "{empty:?}: {message}"
        );
    }
}

#[test]
fn yaml_that_does_not_parse() {
    let message = rejection(
        "- objectName: secret1\n  objectType: secretsmanager\n- {",
        settings(),
    );
    assert!(
        message.starts_with(&format!("{OBJECTS}is not valid YAML: ")),
        "{message}"
    );
    assert!(
        message.contains("write a YAML (or JSON) list of objects"),
        "{message}"
    );
}

#[test]
fn yaml_with_a_duplicate_key() {
    let message = rejection(
        "- {objectName: a, objectName: b, objectType: secretsmanager}",
        settings(),
    );
    assert!(
        message.contains("duplicate mapping key: objectName"),
        "{message}"
    );
}

#[test]
fn yaml_that_is_not_a_list_of_mappings() {
    let message = rejection("objectName: x\nobjectType: ssmparameter", settings());
    assert!(
        message.starts_with(&format!("{OBJECTS}is a mapping, not a list of objects")),
        "{message}"
    );
    let message = rejection("- just-a-name", settings());
    assert_object_error(&message, "objects[0]", &["is a string, not a mapping"]);
}

#[test]
fn annotation_over_64_kib() {
    let annotation = format!(
        "- {{objectName: s, objectType: secretsmanager}}\n#{}",
        "x".repeat(64 * 1024)
    );
    let message = rejection(&annotation, settings());
    assert!(
        message.contains("over the limit of 65536 bytes"),
        "{message}"
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut settings = settings();
    settings.region = "US".into();
    let errors = rejected_with(
        "- objectName: a\n\
         - {objectName: b, objectType: SecretsManager, filePermission: \"9\"}\n\
         - {objectName: c, objectType: secretsmanager}\n\
         - {objectName: c, objectType: secretsmanager}",
        settings,
    );
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 5, "{text:#?}");
    assert!(
        text[0].starts_with("annotation secrets-injector.io/region: \"US\" is not a region name")
    );
    assert!(text[1].contains("objects[0] (objectName \"a\"): objectType is required"));
    assert!(
        text[2]
            .contains("objects[1] (objectName \"b\"): objectType \"SecretsManager\" is not known")
    );
    assert!(text[3].contains("objects[1] (objectName \"b\"): filePermission \"9\""));
    assert!(text[4].contains("objects[3] (objectName \"c\"): the file of objects[3]"));
}

#[test]
fn bad_env_file_and_region_name_their_annotations() {
    let mut settings = Settings::new("");
    settings.env_file = Some("a/../b".into());
    let errors = rejected_with("- {objectName: s, objectType: secretsmanager}", settings);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0].annotation_name(), "secrets-injector.io/region");
    assert_eq!(errors[1].annotation_name(), "secrets-injector.io/env-file");
}
