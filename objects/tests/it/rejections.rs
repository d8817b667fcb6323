//! Every rule of SPEC's "Rejected at admission" list that concerns the objects, each with
//! bad input and a check that the message names the annotation, the object and the rule: one
//! table of cases (`cases`), then the few checks of another shape (several problems at once, and
//! the modes the app could not read, which are found after parsing).

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

/// One annotation that must be refused with exactly one message, one line, that starts with
/// `start` and holds every part of `holds`.
struct Case {
    name: String,
    annotation: String,
    settings: Settings,
    start: String,
    holds: Vec<String>,
    shorter_than: Option<usize>,
}

fn case(name: impl Into<String>, annotation: impl Into<String>, settings: Settings) -> Case {
    Case {
        name: name.into(),
        annotation: annotation.into(),
        settings,
        start: String::new(),
        holds: Vec::new(),
        shorter_than: None,
    }
}

impl Case {
    /// The message is about this object of the list (`objects[0] (objectName "x")`).
    fn object(mut self, label: &str) -> Self {
        self.start = format!("{OBJECTS}{label}: ");
        self
    }

    fn starts(mut self, start: impl Into<String>) -> Self {
        self.start = start.into();
        self
    }

    fn holds<S: Into<String>>(mut self, parts: impl IntoIterator<Item = S>) -> Self {
        self.holds.extend(parts.into_iter().map(Into::into));
        self
    }

    fn shorter_than(mut self, bytes: usize) -> Self {
        self.shorter_than = Some(bytes);
        self
    }

    /// What is wrong with the answer to this case, if anything.
    fn problem(&self) -> Option<String> {
        let errors = match parse(&self.annotation, self.settings.clone()) {
            Ok(plan) => return Some(format!("accepted: {plan:?}")),
            Err(errors) => errors.0,
        };
        if errors.len() != 1 {
            return Some(format!("{} errors, not one: {errors:#?}", errors.len()));
        }
        let message = errors[0].to_string();
        if !message.starts_with(&self.start) {
            return Some(format!("does not start with {:?}: {message:?}", self.start));
        }
        if let Some(part) = self
            .holds
            .iter()
            .find(|part| !message.contains(part.as_str()))
        {
            return Some(format!("has no {part:?}: {message:?}"));
        }
        if message.contains('\n') {
            return Some(format!("is not one line: {message:?}"));
        }
        if let Some(bytes) = self.shorter_than.filter(|&bytes| message.len() >= bytes) {
            return Some(format!(
                "is {} bytes, not under {bytes}: {message:?}",
                message.len()
            ));
        }
        None
    }
}

fn cases() -> Vec<Case> {
    let mut cases = vec![
        // File names.
        case(
            "empty_file_name",
            "- {objectName: x, objectType: secretsmanager, objectAlias: /}",
            directories(),
        )
        .object("objects[0] (objectName \"x\")")
        .holds([
            "objectAlias \"/\" gives no valid file name",
            "would be empty",
            "set objectAlias",
        ]),
        case(
            "dot_file_name",
            "- {objectName: x, objectType: secretsmanager, objectAlias: .}",
            settings(),
        )
        .object("objects[0] (objectName \"x\")")
        .holds(["\".\" is not allowed"]),
        case(
            "dot_dot_file_name",
            "- {objectName: x, objectType: secretsmanager, objectAlias: ..}",
            settings(),
        )
        .object("objects[0] (objectName \"x\")")
        .holds(["\"..\" is not allowed"]),
        // Names starting with ".." are the volume layout's own (..data, ..<timestamp>).
        case(
            "reserved_alias",
            "- {objectName: x, objectType: secretsmanager, objectAlias: ..data}",
            settings(),
        )
        .object("objects[0] (objectName \"x\")")
        .holds([
            "the file of objects[0] (objectName \"x\") is \"..data\", which starts with \"..\"",
            "reserved for the volume's own entries",
            "set objectAlias to a name that does not start with \"..\"",
        ]),
        case(
            "reserved_name",
            "- {objectName: ..token, objectType: ssmparameter}",
            settings(),
        )
        .object("objects[0] (objectName \"..token\")")
        .holds(["\"..token\", which starts with \"..\""]),
        case(
            "reserved_after_path_translation",
            "- {objectName: /.hidden, objectType: ssmparameter}",
            Settings {
                path_translation: PathTranslation::Replace('.'),
                ..settings()
            },
        )
        .object("objects[0] (objectName \"/.hidden\")")
        .holds(["\"..hidden\", which starts with \"..\""]),
        case(
            "reserved_directory_with_false",
            "- {objectName: /..2026_11_30/db, objectType: ssmparameter}",
            directories(),
        )
        .object("objects[0] (objectName \"/..2026_11_30/db\")")
        .holds(["\"..2026_11_30/db\", which starts with \"..\""]),
        case(
            "reserved_jmes_alias",
            "- objectName: s\n  objectType: secretsmanager\n  jmesPath: [{path: a, objectAlias: ..user}]",
            settings(),
        )
        .object("objects[0] (objectName \"s\")")
        .holds(["the file of jmesPath[0] (path \"a\")", "\"..user\", which starts with \"..\""]),
        case(
            "reserved_path_directory",
            "- {objectName: /app, objectType: ssmparameterpath, objectAlias: ..config}",
            settings(),
        )
        .object("objects[0] (objectName \"/app\")")
        .holds(["the directory of objects[0]", "\"..config\", which starts with \"..\""]),
        case(
            "reserved_env_file",
            "- {objectName: x, objectType: secretsmanager}",
            Settings {
                env_file: Some("..env".into()),
                ..settings()
            },
        )
        .starts("annotation secrets-injector.io/env-file: the env file is \"..env\"")
        .holds(["choose an env-file name that does not start with \"..\""]),
        case(
            "nul_in_file_name",
            "- {objectName: x, objectType: secretsmanager, objectAlias: \"a\\0b\"}",
            settings(),
        )
        .object("objects[0] (objectName \"x\")")
        .holds(["contains a NUL byte"]),
        case(
            "slash_parts_must_each_be_valid_with_false",
            "- {objectName: x, objectType: secretsmanager, objectAlias: \"a//b\"}",
            directories(),
        )
        .object("objects[0] (objectName \"x\")")
        .holds(["would be empty"]),
        case(
            "file_name_over_255_bytes (alias)",
            format!(
                "- {{objectName: x, objectType: secretsmanager, objectAlias: {}}}",
                "a".repeat(256)
            ),
            settings(),
        )
        .object("objects[0] (objectName \"x\")")
        .holds(["is 256 bytes, over the 255-byte limit"]),
        case(
            "file_name_over_255_bytes (name)",
            format!(
                "- {{objectName: /{}, objectType: ssmparameter}}",
                "p".repeat(255)
            ),
            settings(),
        )
        .holds(["objectName \"/ppp", "set objectAlias"]),
        case(
            "jmes_alias_leaving_the_directory",
            "- objectName: x\n  objectType: secretsmanager\n  jmesPath: [{path: a, objectAlias: ../etc/passwd}]",
            directories(),
        )
        .object("objects[0] (objectName \"x\")")
        .holds([
            "jmesPath[0] (path \"a\"): objectAlias \"../etc/passwd\" gives no valid file name",
            "\"..\" is not allowed",
        ]),
        // Two entries, one file.
        case(
            "two_objects_with_one_file",
            "- {objectName: secret1, objectType: ssmparameter}\n- {objectName: secret1, objectType: ssmparameter}",
            settings(),
        )
        .object("objects[1] (objectName \"secret1\")")
        .holds([
            "the file of objects[1] (objectName \"secret1\") is \"secret1\", which is also the file of objects[0] (objectName \"secret1\")",
            "change an objectAlias",
        ]),
        case(
            "same_name_with_different_labels_and_no_alias_still_collide",
            "- {objectName: s, objectType: secretsmanager, objectVersionLabel: AWSCURRENT}\n\
             - {objectName: s, objectType: secretsmanager, objectVersionLabel: AWSPREVIOUS}",
            settings(),
        )
        .holds(["is \"s\", which is also the file of objects[0]"]),
        case(
            "alias_colliding_with_another_object",
            "- {objectName: secret1, objectType: ssmparameter, objectAlias: aliasOne}\n\
             - {objectName: secret2, objectType: ssmparameter, objectAlias: aliasOne}",
            settings(),
        )
        .object("objects[1] (objectName \"secret2\")")
        .holds(["is \"aliasOne\", which is also"]),
        case(
            "names_that_translate_to_one_file",
            "- {objectName: /a/b, objectType: ssmparameter}\n- {objectName: _a_b, objectType: secretsmanager}",
            settings(),
        )
        .holds(["is \"_a_b\", which is also the file of objects[0]"]),
        case(
            "jmes_alias_colliding_with_an_object",
            "- {objectName: secret1, objectType: ssmparameter, objectAlias: aliasOne}\n\
             - objectName: secret2\n  objectType: ssmparameter\n  jmesPath: [{path: username, objectAlias: aliasOne}]",
            settings(),
        )
        .object("objects[1] (objectName \"secret2\")")
        .holds([
            "the file of jmesPath[0] (path \"username\") of objects[1] (objectName \"secret2\") is \"aliasOne\"",
            "also the file of objects[0]",
        ]),
        case(
            "two_jmes_aliases_in_one_object",
            "- objectName: s\n  objectType: secretsmanager\n  jmesPath:\n    - {path: a, objectAlias: X}\n    - {path: b, objectAlias: X}",
            settings(),
        )
        .holds([
            "jmesPath[1] (path \"b\")",
            "also the file of jmesPath[0] (path \"a\")",
        ]),
        case(
            "jmes_alias_equal_to_its_own_object_file",
            "- objectName: s\n  objectType: secretsmanager\n  jmesPath: [{path: a, objectAlias: s}]",
            settings(),
        )
        .holds(["is \"s\", which is also the file of objects[0] (objectName \"s\")"]),
        case(
            "env_file_colliding_with_an_object",
            "- {objectName: /test/parameter, objectType: ssmparameter}",
            Settings {
                env_file: Some("_test_parameter".into()),
                ..settings()
            },
        )
        .starts("annotation secrets-injector.io/env-file: the env file is \"_test_parameter\"")
        .holds(["also the file of objects[0] (objectName \"/test/parameter\")"]),
        case(
            "file_inside_a_path_directory",
            "- {objectName: /app, objectType: ssmparameterpath, objectAlias: config}\n\
             - {objectName: x, objectType: secretsmanager, objectAlias: config/x}",
            directories(),
        )
        .object("objects[1] (objectName \"x\")")
        .holds([
            "inside the directory of objects[0] (objectName \"/app\")",
            "choose a name outside that directory",
        ]),
        case(
            "file_equal_to_a_path_directory",
            "- {objectName: /app, objectType: ssmparameterpath, objectAlias: config}\n\
             - {objectName: config, objectType: secretsmanager}",
            settings(),
        )
        .holds(["also the directory of objects[0] (objectName \"/app\")"]),
        case(
            "file_that_must_also_be_a_directory",
            "- {objectName: /a, objectType: ssmparameter}\n- {objectName: /a/b, objectType: ssmparameter}",
            directories(),
        )
        .object("objects[1] (objectName \"/a/b\")")
        .holds(["is \"a/b\", which needs \"a\" to be a directory, but that is the file of objects[0]"]),
        // Names and types.
        case(
            "missing_object_name",
            "- {objectType: ssmparameter, objectAlias: x}",
            settings(),
        )
        .object("objects[0]")
        .holds(["objectName is required"]),
        case(
            "missing_object_name (empty)",
            "- {objectName: \"\", objectType: ssmparameter, objectAlias: x}",
            settings(),
        )
        .object("objects[0]")
        .holds(["objectName is required"]),
        case(
            "name_without_object_type",
            "- objectName: SomeSecret",
            settings(),
        )
        .object("objects[0] (objectName \"SomeSecret\")")
        .holds([
            "objectType is required when objectName is not an ARN",
            "set objectType: ssmparameter, secretsmanager, ssmparameterpath or secretsmanagerpath",
        ]),
        case("arn_that_does_not_parse", "- objectName: \"arn::\"", settings())
            .object("objects[0] (objectName \"arn::\")")
            .holds([
                "objectName \"arn::\" is not a valid ARN",
                "arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE",
            ]),
        case(
            "arn_of_another_service",
            "- objectName: arn:aws:sts:us-east-1:123456789012:parameter/feaw",
            settings(),
        )
        .object("objects[0] (objectName \"arn:aws:sts:us-east-1:123456789012:parameter/feaw\")")
        .holds(["is an ARN of service \"sts\" that names no SSM parameter or Secrets Manager secret"]),
        case(
            "object_type_contradicting_the_arn",
            "- objectName: arn:aws:secretsmanager:us-east-1:123456789012:secret:/feaw\n  objectType: ssmparameter",
            settings(),
        )
        .object("objects[0] (objectName \"arn:aws:secretsmanager:us-east-1:123456789012:secret:/feaw\")")
        .holds([
            "objectType ssmparameter (the object's type) contradicts objectName, an ARN whose type is secretsmanager",
        ]),
        case(
            "object_name_arn_in_another_region",
            "- {objectName: \"arn:aws:secretsmanager:us-west-1:123456789012:secret:secret1\", objectAlias: test}",
            Settings::new("us-west-2"),
        )
        .object("objects[0] (objectName \"arn:aws:secretsmanager:us-west-1:123456789012:secret:secret1\")")
        .holds([
            "objectName is an ARN in region \"us-west-1\", but the region (secrets-injector.io/region) is \"us-west-2\"",
        ]),
        case(
            "path_object_with_an_arn",
            "- {objectName: \"arn:aws:ssm:us-east-1:123456789012:parameter/app\", objectType: ssmparameterpath, objectAlias: app}",
            settings(),
        )
        .holds(["an ssmparameterpath object takes a parameter path starting with '/'"]),
        case(
            "path_object_not_starting_with_a_slash",
            "- {objectName: app/config, objectType: ssmparameterpath, objectAlias: app}",
            settings(),
        )
        .object("objects[0] (objectName \"app/config\")")
        .holds(["must be a parameter path starting with '/'"]),
        case(
            "path_object_without_alias",
            "- {objectName: /app/config, objectType: ssmparameterpath}",
            settings(),
        )
        .object("objects[0] (objectName \"/app/config\")")
        .holds(["an ssmparameterpath object needs objectAlias"]),
        // Versions.
        case(
            "ssm_version_and_label_together",
            "- {objectName: SomeParameter, objectType: ssmparameter, objectVersion: 3, objectVersionLabel: SomeLabel}",
            settings(),
        )
        .object("objects[0] (objectName \"SomeParameter\")")
        .holds(["objectVersion and objectVersionLabel cannot both be set on an SSM parameter"]),
        case(
            "ssm_label_that_begins_with_a_digit",
            "- {objectName: p, objectType: ssmparameter, objectVersionLabel: \"3\"}",
            settings(),
        )
        .object("objects[0] (objectName \"p\")")
        .holds(["begins with a digit"]),
        case(
            "versions_on_a_path_object",
            "- {objectName: /app, objectType: ssmparameterpath, objectAlias: app, objectVersion: 2}",
            settings(),
        )
        .holds(["do not apply to an ssmparameterpath object"]),
        // jmesPath.
        case(
            "jmes_path_on_a_path_object",
            "- objectName: /app\n  objectType: ssmparameterpath\n  objectAlias: app\n  jmesPath: [{path: a, objectAlias: A}]",
            settings(),
        )
        .object("objects[0] (objectName \"/app\")")
        .holds(["jmesPath does not apply to an ssmparameterpath object"]),
        case(
            "jmes_expression_that_does_not_compile",
            "- objectName: s\n  objectType: secretsmanager\n  jmesPath: [{path: \"user[\", objectAlias: U}]",
            settings(),
        )
        .object("objects[0] (objectName \"s\")")
        .holds([
            "jmesPath[0] (path \"user[\"): the JMESPath expression \"user[\" does not compile: Parse error:",
            "at column",
        ]),
        // A path the parser would recurse on until the stack overflows is refused before it:
        // too long, or nesting too deep. The message names the entry (with only the start of the
        // path), the limit, and how to fix it.
        case(
            "jmes_expression_over_the_limits (5001 bytes)",
            jmes_object(&format!("{}a", "!".repeat(5000))),
            settings(),
        )
        .object("objects[0] (objectName \"s\")")
        .holds([
            "jmesPath[0] (path \"!!!!!!!!",
            "…\"): the JMESPath expression is 5001 bytes, over the limit of 1024 bytes; shorten it",
        ])
        .shorter_than(400),
        case(
            "jmes_expression_over_the_limits (30000 bytes)",
            jmes_object(&"(".repeat(30_000)),
            settings(),
        )
        .holds(["is 30000 bytes, over the limit of 1024 bytes"]),
        case(
            "jmes_expression_over_the_limits (40 nested operators)",
            jmes_object(&"a[]".repeat(40)),
            settings(),
        )
        .object("objects[0] (objectName \"s\")")
        .holds([
            "the JMESPath expression has 40 operators that nest",
            "over the limit of 32;",
        ]),
        case(
            "jmes_entry_without_path",
            "- objectName: secret2\n  objectType: ssmparameter\n  jmesPath: [{objectAlias: aliasOne}]",
            settings(),
        )
        .object("objects[0] (objectName \"secret2\")")
        .holds(["jmesPath[0]: path is required"]),
        case(
            "jmes_entry_without_alias",
            "- objectName: secret2\n  objectType: ssmparameter\n  jmesPath: [{path: username}]",
            settings(),
        )
        .object("objects[0] (objectName \"secret2\")")
        .holds(["jmesPath[0] (path \"username\"): objectAlias is required"]),
        case(
            "jmes_path_that_is_not_a_list",
            "- objectName: s\n  objectType: secretsmanager\n  jmesPath: {path: a, objectAlias: A}",
            settings(),
        )
        .object("objects[0] (objectName \"s\")")
        .holds(["jmesPath is a mapping, not a list"]),
        // File modes.
        case(
            "yaml_number_file_permission_follows_the_same_rule",
            "- {objectName: s, objectType: secretsmanager, filePermission: 644}",
            settings(),
        )
        .holds(["filePermission \"644\" is not a file mode of four octal digits"]),
        case(
            "jmes_file_permission_not_four_octal_digits",
            "- objectName: s\n  objectType: secretsmanager\n  jmesPath: [{path: a, objectAlias: A, filePermission: efgh}]",
            settings(),
        )
        .object("objects[0] (objectName \"s\")")
        .holds([
            "jmesPath[0] (path \"a\"): filePermission \"efgh\" is not a file mode of four octal digits",
        ]),
        // Failover.
        case(
            "failover_without_alias",
            "- objectName: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:secret1\"\n  \
               failoverObject:\n    objectName: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:secret1\"",
            with_failover(),
        )
        .holds(["failoverObject needs objectAlias on the object"]),
        case(
            "failover_without_failover_region",
            "- objectName: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:secret1\"\n  objectAlias: test\n  \
               failoverObject: {objectName: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:secret1\"}",
            settings(),
        )
        .holds([
            "failoverObject needs a failover region; set the annotation secrets-injector.io/failover-region",
        ]),
        case(
            "failover_region_equal_to_the_region",
            "- {objectName: s, objectType: secretsmanager}",
            Settings {
                failover_region: Some("us-east-1".into()),
                ..settings()
            },
        )
        .starts("annotation secrets-injector.io/failover-region: \"us-east-1\" is the region itself"),
        case(
            "failover_version_differing_from_the_primary",
            "- objectName: MySecret1\n  objectType: ssmparameter\n  objectVersion: 1\n  objectAlias: test\n  \
               failoverObject: {objectName: MySecretInAnotherRegion, objectVersion: 2}",
            with_failover(),
        )
        .object("objects[0] (objectName \"MySecret1\")")
        .holds(["failoverObject.objectVersion (\"2\") differs from objectVersion (\"1\")"]),
        case(
            "failover_version_differing_from_the_primary (not set)",
            "- objectName: s\n  objectType: secretsmanager\n  objectVersion: v1\n  objectAlias: test\n  \
               failoverObject: {objectName: s}",
            with_failover(),
        )
        .holds(["failoverObject.objectVersion (not set) differs from objectVersion (\"v1\")"]),
        case(
            "failover_arn_outside_the_failover_region",
            "- objectName: \"arn:aws:secretsmanager:us-west-1:123456789012:secret:secret1\"\n  objectAlias: test\n  \
               failoverObject: {objectName: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:secret1\"}",
            Settings {
                failover_region: Some("us-east-2".into()),
                ..Settings::new("us-west-1")
            },
        )
        .holds([
            "failoverObject.objectName is an ARN in region \"us-west-2\", but the region \
             (secrets-injector.io/failover-region) is \"us-east-2\"",
        ]),
        case(
            "failover_name_without_object_type_as_in_ascp",
            "- objectName: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:secret1\"\n  objectAlias: test\n  \
               failoverObject: {objectName: MySecret}",
            with_failover(),
        )
        .holds(["objectType is required when failoverObject.objectName is not an ARN"]),
        case(
            "failover_arn_of_another_kind",
            "- objectName: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:secret1\"\n  objectAlias: test\n  \
               failoverObject: {objectName: \"arn:aws:ssm:us-west-2:123456789012:parameter/secret1\"}",
            with_failover(),
        )
        .holds(["contradicts failoverObject.objectName, an ARN whose type is ssmparameter"]),
        case(
            "failover_arn_of_another_kind (unknown service)",
            "- objectName: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:secret1\"\n  objectAlias: test\n  \
               failoverObject: {objectName: \"arn:aws:bad:us-west-2:123456789012:secret:secret1\"}",
            with_failover(),
        )
        .holds(["an ARN of service \"bad\""]),
        case(
            "failover_ssm_version_and_label_together",
            "- objectName: MySecret1\n  objectType: ssmparameter\n  objectVersion: 2\n  objectAlias: test\n  \
               failoverObject:\n    objectName: MySecretInAnotherRegion\n    objectVersion: 2\n    objectVersionLabel: MyLabel",
            with_failover(),
        )
        .holds([
            "failoverObject.objectVersion and failoverObject.objectVersionLabel cannot both be set",
        ]),
        case(
            "failover_without_object_name",
            "- {objectName: s, objectType: secretsmanager, objectAlias: t, failoverObject: {objectVersionLabel: x}}",
            with_failover(),
        )
        .holds(["failoverObject.objectName is required"]),
        // Field types.
        case(
            "names_must_be_strings",
            "- {objectName: s, objectType: secretsmanager, objectAlias: [a]}",
            settings(),
        )
        .holds(["objectAlias is a list, not a string"]),
        // The list as a whole.
        case(
            "yaml_that_does_not_parse",
            "- objectName: secret1\n  objectType: secretsmanager\n- {",
            settings(),
        )
        .starts(format!("{OBJECTS}is not valid YAML: "))
        .holds(["write a YAML (or JSON) list of objects"]),
        case(
            "yaml_with_a_duplicate_key",
            "- {objectName: a, objectName: b, objectType: secretsmanager}",
            settings(),
        )
        .holds(["duplicate mapping key: objectName"]),
        case(
            "yaml_that_is_not_a_list_of_mappings (mapping)",
            "objectName: x\nobjectType: ssmparameter",
            settings(),
        )
        .starts(format!("{OBJECTS}is a mapping, not a list of objects")),
        case(
            "yaml_that_is_not_a_list_of_mappings (string)",
            "- just-a-name",
            settings(),
        )
        .object("objects[0]")
        .holds(["is a string, not a mapping"]),
        case(
            "annotation_over_64_kib",
            format!(
                "- {{objectName: s, objectType: secretsmanager}}\n#{}",
                "x".repeat(64 * 1024)
            ),
            settings(),
        )
        .holds(["over the limit of 65536 bytes"]),
    ];
    // The rules ASCP refuses traversal with: ".." is refused whatever the translation.
    for (i, annotation) in [
        "- objectName: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:/../pathTest-abc123\"",
        "- objectName: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:mypath/../../pathTest-abc123\"",
        "- objectName: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:mypath/..\"",
        "- {objectName: \"../mypath\", objectType: secretsmanager}",
        "- {objectName: \"mypath/../../param\", objectType: secretsmanager}",
        "- {objectName: \"mypath/..\", objectType: ssmparameter}",
    ]
    .into_iter()
    .enumerate()
    {
        cases.push(
            case(
                format!("traversal_with_false_translation_as_in_ascp[{i}]"),
                annotation,
                directories(),
            )
            .holds(["\"..\" is not allowed", "objectName \""]),
        );
    }
    for bad in ["SSMParameter", "ssm", "sts"] {
        cases.push(
            case(
                format!("unknown_object_type_case_matters ({bad})"),
                format!("- {{objectName: x, objectType: {bad}}}"),
                settings(),
            )
            .object("objects[0] (objectName \"x\")")
            .holds([
                format!("objectType \"{bad}\" is not known (spelling and case matter)"),
                "use ssmparameter, secretsmanager, ssmparameterpath or secretsmanagerpath"
                    .to_owned(),
            ]),
        );
    }
    for bad in ["VersionId", "0", "-1", "1.5"] {
        cases.push(
            case(
                format!("ssm_version_that_is_not_a_number ({bad})"),
                format!("- {{objectName: p, objectType: ssmparameter, objectVersion: \"{bad}\"}}"),
                settings(),
            )
            .object("objects[0] (objectName \"p\")")
            .holds([format!(
                "objectVersion \"{bad}\" of an SSM parameter must be a version number"
            )]),
        );
    }
    for bad in ["abc9", "000", "00000", "0888", "1777", "640"] {
        cases.push(
            case(
                format!("file_permission_not_four_octal_digits ({bad})"),
                format!(
                    "- {{objectName: s, objectType: secretsmanager, filePermission: \"{bad}\"}}"
                ),
                settings(),
            )
            .object("objects[0] (objectName \"s\")")
            .holds([format!(
                "filePermission \"{bad}\" is not a file mode of four octal digits at most 0777"
            )]),
        );
    }
    for bad in ["yes", "\"true\"", "1"] {
        cases.push(
            case(
                format!("optional_must_be_a_boolean ({bad})"),
                format!("- {{objectName: s, objectType: secretsmanager, optional: {bad}}}"),
                settings(),
            )
            .object("objects[0] (objectName \"s\")")
            .holds(["optional is", "not a boolean; write true or false"]),
        );
    }
    for empty in ["[]", "", "# nothing\n", "~"] {
        cases.push(
            case(
                format!("list_with_no_objects ({empty:?})"),
                empty,
                settings(),
            )
            .starts(format!("{OBJECTS}lists no objects")),
        );
    }
    cases
}

fn jmes_object(path: &str) -> String {
    format!(
        "- objectName: s\n  objectType: secretsmanager\n  jmesPath: [{{path: '{path}', objectAlias: U}}]"
    )
}

#[test]
fn every_case_is_refused_with_its_message() {
    let cases = cases();
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    assert!(
        names.windows(2).all(|w| w[0] != w[1]),
        "two cases share a name"
    );
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| c.problem().map(|problem| format!("{}: {problem}", c.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

// Checks of another shape.

/// ASCP's own example: ".username" does not compile either, and both problems are reported.
#[test]
fn jmes_entry_without_alias_and_a_path_that_does_not_compile() {
    let errors = rejected_with(
        "- objectName: secret2\n  objectType: ssmparameter\n  jmesPath: [{path: .username}]",
        settings(),
    );
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].to_string().contains("does not compile"));
    assert!(errors[1].to_string().contains("objectAlias is required"));
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
        ..AppIdentity::default()
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
        ..AppIdentity::default()
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
            ..AppIdentity::default()
        })
        .is_empty()
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
