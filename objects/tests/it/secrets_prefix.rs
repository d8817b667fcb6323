//! `objectType: secretsmanagerpath`: the objects accepted (a prefix, tags, the directory they
//! write), the files the secrets found under the prefix give, and every rule that refuses one.

use secrets_injector_objects::{
    Error, ObjectType, PathTranslation, Plan, Settings, parse, prefix_secret_file,
};

const OBJECTS: &str = "annotation secrets-injector.io/objects: ";

fn settings() -> Settings {
    Settings::new("us-east-1")
}

fn plan_with(annotation: &str, settings: Settings) -> Plan {
    match parse(annotation, settings) {
        Ok(plan) => plan,
        Err(errors) => panic!("rejected: {errors}"),
    }
}

fn rejected_with(annotation: &str, settings: Settings) -> Vec<String> {
    match parse(annotation, settings) {
        Ok(plan) => panic!("accepted: {plan:?}"),
        Err(errors) => errors.0.iter().map(Error::to_string).collect(),
    }
}

/// Refused with exactly one message, naming the object, holding every part of `holds`.
#[track_caller]
fn refused(annotation: &str, settings: Settings, holds: &[&str]) {
    let errors = rejected_with(annotation, settings);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let message = &errors[0];
    assert!(
        message.starts_with(&format!("{OBJECTS}objects[0] (objectName ")),
        "{message}"
    );
    for part in holds {
        assert!(message.contains(part), "expected {part:?} in {message:?}");
    }
}

const PAYMENTS: &str = r#"
- objectName: "prod/payments/"
  objectType: "secretsmanagerpath"
  objectAlias: "payments"
  filePermission: "0640"
  optional: true
  tags:
    team: payments
    tier: 2
"#;

#[test]
fn a_prefix_with_tags_is_a_directory() {
    let plan = plan_with(PAYMENTS, settings());
    let object = &plan.objects[0];
    assert_eq!(object.object_type, ObjectType::SecretsManagerPath);
    assert_eq!(object.name, "prod/payments/");
    assert_eq!(object.file.as_str(), "payments");
    assert!(object.optional);
    let tags: Vec<(&str, &str)> = object
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(tags, [("team", "payments"), ("tier", "2")]);
    assert_eq!(
        plan.static_files().count(),
        0,
        "a directory is not a static file"
    );
    assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
}

#[test]
fn tags_are_optional_and_no_other_kind_has_them() {
    let plan = plan_with(
        "- {objectName: prod/payments, objectType: secretsmanagerpath, objectAlias: p}",
        settings(),
    );
    assert!(plan.objects[0].tags.is_empty());
    for kind in ["ssmparameter", "secretsmanager", "ssmparameterpath"] {
        let name = if kind.starts_with("ssm") { "/a" } else { "a" };
        refused(
            &format!(
                "- {{objectName: {name}, objectType: {kind}, objectAlias: x, tags: {{team: a}}}}"
            ),
            settings(),
            &[
                "tags does not apply to ",
                kind,
                "only secretsmanagerpath selects values by tag",
            ],
        );
    }
}

#[test]
fn secrets_below_the_prefix_are_named_as_parameters_below_a_path() {
    let plan = plan_with(
        "- {objectName: prod/payments/, objectType: secretsmanagerpath, objectAlias: payments}\n\
         - {objectName: prod/payments, objectType: secretsmanagerpath, objectAlias: bare}\n\
         - {objectName: prod/pay, objectType: secretsmanagerpath, objectAlias: word}",
        settings(),
    );
    let file = |i: usize, t: &PathTranslation, name: &str| {
        prefix_secret_file(&plan.objects[i], t, name).map(|p| p.to_string())
    };
    let underscore = PathTranslation::default();
    assert_eq!(
        file(0, &underscore, "prod/payments/db").unwrap(),
        "payments/db"
    );
    assert_eq!(
        file(0, &underscore, "prod/payments/db/user").unwrap(),
        "payments/db_user"
    );
    assert_eq!(
        file(0, &PathTranslation::Directories, "prod/payments/db/user").unwrap(),
        "payments/db/user"
    );
    // A prefix without the trailing '/' names the same files.
    assert_eq!(
        file(1, &underscore, "prod/payments/db/user").unwrap(),
        "bare/db_user"
    );
    // A prefix that ends inside a word: the rest of the word is the name.
    assert_eq!(
        file(2, &underscore, "prod/payments/db").unwrap(),
        "word/ments_db"
    );

    let err = file(1, &underscore, "prod/payments").unwrap_err();
    assert!(err.contains("named exactly the prefix"), "{err}");
    let err = file(0, &underscore, "Prod/payments/db").unwrap_err();
    assert!(err.contains("does not start with the prefix"), "{err}");
    let err = file(0, &PathTranslation::Directories, "prod/payments/a//b").unwrap_err();
    assert!(err.contains("gives no valid file name"), "{err}");
}

#[test]
fn fields_of_one_secret_are_refused() {
    let object = |extra: &str| {
        format!(
            "- {{objectName: prod/payments/, objectType: secretsmanagerpath, objectAlias: p, {extra}}}"
        )
    };
    refused(
        &object("objectVersion: v1"),
        settings(),
        &[
            "objectVersion and objectVersionLabel do not apply to a secretsmanagerpath object",
            "AWSCURRENT",
        ],
    );
    refused(
        &object("objectVersionLabel: AWSPREVIOUS"),
        settings(),
        &["objectVersionLabel do not apply to a secretsmanagerpath object"],
    );
    refused(
        &object("jmesPath: [{path: a, objectAlias: A}]"),
        settings(),
        &[
            "jmesPath does not apply to a secretsmanagerpath object",
            "as its own secretsmanager object with jmesPath",
        ],
    );
    let mut failover = settings();
    failover.failover_region = Some("us-west-2".into());
    refused(
        &object("failoverObject: {objectName: prod/payments/}"),
        failover,
        &[
            "failoverObject does not apply to a secretsmanagerpath object",
            "the whole object is listed and read in the failover region",
        ],
    );
}

#[test]
fn the_directory_and_the_prefix_are_required_and_checked() {
    refused(
        "- {objectName: prod/payments/, objectType: secretsmanagerpath}",
        settings(),
        &[
            "a secretsmanagerpath object needs objectAlias",
            "one file per secret",
        ],
    );
    refused(
        "- {objectName: 'prod/pay ments/', objectType: secretsmanagerpath, objectAlias: p}",
        settings(),
        &[
            "objectName \"prod/pay ments/\" of a secretsmanagerpath object holds ' '",
            "only ASCII letters, digits and the characters /_+=.@- are allowed",
            "write a secret name prefix, such as prod/payments/",
        ],
    );
    // "!" would turn the name filter into a negation.
    refused(
        "- {objectName: '!prod', objectType: secretsmanagerpath, objectAlias: p}",
        settings(),
        &["holds '!'"],
    );
    refused(
        &format!(
            "- {{objectName: {}, objectType: secretsmanagerpath, objectAlias: p}}",
            "a".repeat(513)
        ),
        settings(),
        &["is 513 bytes long, over the limit of 512"],
    );
    refused(
        "- {objectName: 'arn:aws:secretsmanager:us-east-1:111122223333:secret:prod', objectType: secretsmanagerpath, objectAlias: p}",
        settings(),
        &["is an ARN, but a secretsmanagerpath object takes a secret name prefix"],
    );
}

#[test]
fn tags_are_bounded_and_hold_what_aws_allows() {
    let with_tags = |tags: &str| {
        format!(
            "- {{objectName: prod/, objectType: secretsmanagerpath, objectAlias: p, tags: {tags}}}"
        )
    };
    let eleven: Vec<String> = (0..11).map(|i| format!("k{i}: v")).collect();
    refused(
        &with_tags(&format!("{{{}}}", eleven.join(", "))),
        settings(),
        &["tags has 11 entries, over the limit of 10"],
    );
    refused(
        &with_tags(&format!("{{{}: v}}", "k".repeat(129))),
        settings(),
        &["is 129 characters long, over AWS's limit of 128"],
    );
    refused(
        &with_tags(&format!("{{team: {}}}", "v".repeat(257))),
        settings(),
        &["tags.team has a value that is 257 characters long, over AWS's limit of 256"],
    );
    refused(
        &with_tags("{'team*': a}"),
        settings(),
        &["tags key \"team*\" holds '*'"],
    );
    refused(
        &with_tags("{team: 'a\"b'}"),
        settings(),
        &["tags.team has a value that holds '\"'"],
    );
    refused(
        &with_tags("[team]"),
        settings(),
        &["tags is a list, not a mapping"],
    );
    // An empty value is a tag AWS allows; a value of any script too.
    let plan = plan_with(&with_tags("{team: '', équipe: paiements}"), settings());
    assert_eq!(plan.objects[0].tags.len(), 2);
}
