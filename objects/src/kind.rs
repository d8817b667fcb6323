//! What each `objectType` is, in one table ([`KindFacts`]): the service that holds it, how the
//! injector reads it and checks it for changes (and so the AWS calls its IAM policy needs), what
//! it writes and which fields it allows. Code that differs by kind reads these facts instead of
//! naming kinds, so a new kind is one variant and one row.

use std::fmt;
use std::str::FromStr;

/// What an object names, and so which API fetches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectType {
    /// An SSM Parameter Store parameter (`GetParameters`).
    SsmParameter,
    /// A Secrets Manager secret (`GetSecretValue`).
    SecretsManager,
    /// Every parameter under an SSM path (`GetParametersByPath`), an extension of ASCP.
    SsmParameterPath,
    /// Every Secrets Manager secret whose name starts with a prefix and carries the object's
    /// tags (`ListSecrets`, then `BatchGetSecretValue`), an extension of ASCP.
    SecretsManagerPath,
}

/// The facts of every kind, in the order of [`ObjectType`]'s variants (a test checks it).
const KINDS: [KindFacts; 4] = [
    KindFacts {
        kind: ObjectType::SsmParameter,
        name: "ssmparameter",
        article: "an",
        service: Service::Ssm,
        arn_resource: Some("parameter/"),
        name_form: None,
        fetch: Fetch::Parameters,
        check: Check::ParameterVersions,
        directory: false,
        jmes_path: true,
        object_version: true,
        object_version_label: true,
        failover_object: true,
        tags: false,
        failover_whole: false,
    },
    KindFacts {
        kind: ObjectType::SecretsManager,
        name: "secretsmanager",
        article: "a",
        service: Service::SecretsManager,
        arn_resource: Some("secret:"),
        name_form: None,
        fetch: Fetch::SecretValue,
        check: Check::SecretVersion,
        directory: false,
        jmes_path: true,
        object_version: true,
        object_version_label: true,
        failover_object: true,
        tags: false,
        failover_whole: false,
    },
    KindFacts {
        kind: ObjectType::SsmParameterPath,
        name: "ssmparameterpath",
        article: "an",
        service: Service::Ssm,
        arn_resource: None,
        name_form: Some(NameForm {
            what: "a parameter path starting with '/'",
            starts_with: "/",
            example: "/app/config",
            reads: "the current value of every parameter under the path",
            chars: None,
        }),
        fetch: Fetch::ParametersByPath,
        check: Check::PathVersions,
        directory: true,
        jmes_path: false,
        object_version: false,
        object_version_label: false,
        failover_object: true,
        tags: false,
        failover_whole: false,
    },
    KindFacts {
        kind: ObjectType::SecretsManagerPath,
        name: "secretsmanagerpath",
        article: "a",
        service: Service::SecretsManager,
        arn_resource: None,
        name_form: Some(NameForm {
            what: "a secret name prefix",
            starts_with: "",
            example: "prod/payments/",
            reads: "the current version (AWSCURRENT) of every secret whose name starts with the \
                    prefix",
            chars: Some(NameChars {
                symbols: SECRET_NAME_SYMBOLS,
                what: "ASCII letters, digits and the characters /_+=.@-",
                max_len: MAX_SECRET_NAME_LEN,
            }),
        }),
        fetch: Fetch::SecretsByPrefix,
        check: Check::SecretList,
        directory: true,
        jmes_path: false,
        object_version: false,
        object_version_label: false,
        failover_object: false,
        tags: true,
        failover_whole: true,
    },
];

/// The facts of one kind of object.
#[derive(Debug, PartialEq, Eq)]
pub struct KindFacts {
    pub kind: ObjectType,
    /// `objectType` as written (case matters, as in ASCP).
    pub name: &'static str,
    /// "a" or "an", as messages say "an ssmparameterpath object".
    pub article: &'static str,
    pub service: Service,
    /// The start of the resource of an ARN that names one (`parameter/`, `secret:`), after the
    /// service's name; `None` when `objectName` cannot be an ARN.
    pub arn_resource: Option<&'static str>,
    /// What `objectName` must be when it is not the name of one parameter or secret.
    pub name_form: Option<NameForm>,
    /// How the injector reads the values.
    pub fetch: Fetch,
    /// How the refresh sidecar learns whether the values changed, without reading them.
    pub check: Check,
    /// One file per value found, inside the directory `objectAlias`, instead of one file.
    pub directory: bool,
    /// Which fields of the object it allows.
    pub jmes_path: bool,
    pub object_version: bool,
    pub object_version_label: bool,
    pub failover_object: bool,
    /// `tags`: the values found must carry these tags.
    pub tags: bool,
    /// With a failover region, the whole object is read there (under its own name) when the
    /// primary region fails, with no `failoverObject`.
    pub failover_whole: bool,
}

/// `objectName` of a kind that names many values (a path, a prefix).
#[derive(Debug, PartialEq, Eq)]
pub struct NameForm {
    /// For messages: "a parameter path starting with '/'".
    pub what: &'static str,
    /// What every such name starts with ("" for no rule).
    pub starts_with: &'static str,
    /// For messages: "/app/config".
    pub example: &'static str,
    /// For messages: what a fetch reads, "the current value of every parameter under the path".
    pub reads: &'static str,
    /// The characters the name may hold, when the kind's API restricts them.
    pub chars: Option<NameChars>,
}

/// The characters a [`NameForm`] allows (ASCII letters and digits, and `symbols`), and its
/// longest length.
#[derive(Debug, PartialEq, Eq)]
pub struct NameChars {
    pub symbols: &'static str,
    /// For messages: "ASCII letters, digits and the characters /_+=.@-".
    pub what: &'static str,
    pub max_len: usize,
}

impl NameChars {
    /// What is wrong with `name`, if anything.
    pub fn problem(&self, name: &str) -> Option<String> {
        if name.len() > self.max_len {
            return Some(format!(
                "is {} bytes long, over the limit of {}",
                name.len(),
                self.max_len
            ));
        }
        name.chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || self.symbols.contains(c)))
            .map(|c| format!("holds {c:?} (only {} are allowed)", self.what))
    }
}

/// Longest secret name Secrets Manager accepts.
pub const MAX_SECRET_NAME_LEN: usize = 512;

/// Secrets one `secretsmanagerpath` object may find unless the injector's
/// `--max-secrets-per-object` (set through the webhook's flag of the same name) says otherwise.
pub const DEFAULT_MAX_SECRETS_PER_OBJECT: usize = 500;

/// Highest `--max-secrets-per-object`: the listing and the values are held in memory.
pub const MAX_SECRETS_PER_OBJECT_LIMIT: usize = 10_000;

/// A `--max-secrets-per-object` value, as the injector and the webhook both read it.
pub fn parse_max_secrets_per_object(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_SECRETS_PER_OBJECT_LIMIT).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} is not a whole number from 1 to {MAX_SECRETS_PER_OBJECT_LIMIT}"
        )),
    }
}

/// The characters of a Secrets Manager secret name besides ASCII letters and digits (all of
/// which the `name` filter of `ListSecrets` accepts).
pub const SECRET_NAME_SYMBOLS: &str = "/_+=.@-";

impl KindFacts {
    /// `objectAlias` is required: a directory has no name of its own to fall back on.
    pub const fn requires_alias(&self) -> bool {
        self.directory
    }

    /// How messages name an object of this kind: "an ssmparameterpath object".
    pub fn an_object(&self) -> String {
        format!("{} {} object", self.article, self.name)
    }

    /// Every action the pod's role needs for objects of this kind: those of the fetch, and of
    /// the change check when the pod refreshes its files. Each once, in that order.
    pub fn actions(&self, refresh: bool) -> Vec<AwsCall> {
        let mut actions = self.fetch.calls().to_vec();
        if refresh {
            for &call in self.check.calls() {
                if !actions.contains(&call) {
                    actions.push(call);
                }
            }
        }
        actions
    }

    /// The kind of the same service that names one value and allows `jmesPath`, for the hint to
    /// list a value of a directory kind as its own object (`ssmparameter` for
    /// `ssmparameterpath`).
    pub fn single(&self) -> Option<&'static KindFacts> {
        KINDS
            .iter()
            .find(|k| k.service == self.service && !k.directory && k.jmes_path)
    }
}

/// The AWS service that holds a kind of object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Ssm,
    SecretsManager,
}

impl Service {
    /// The service's name in ARNs and IAM actions.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Ssm => "ssm",
            Self::SecretsManager => "secretsmanager",
        }
    }

    /// What the service calls one value, for messages.
    pub const fn item(self) -> &'static str {
        match self {
            Self::Ssm => "parameter",
            Self::SecretsManager => "secret",
        }
    }
}

/// An AWS API operation the injector calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AwsCall {
    GetParameters,
    GetParametersByPath,
    GetSecretValue,
    DescribeSecret,
    ListSecrets,
    BatchGetSecretValue,
}

impl AwsCall {
    pub const ALL: [AwsCall; 6] = [
        Self::GetParameters,
        Self::GetParametersByPath,
        Self::GetSecretValue,
        Self::DescribeSecret,
        Self::ListSecrets,
        Self::BatchGetSecretValue,
    ];

    /// The action as IAM names it: `ssm:GetParameters`.
    pub const fn iam(self) -> &'static str {
        match self {
            Self::GetParameters => "ssm:GetParameters",
            Self::GetParametersByPath => "ssm:GetParametersByPath",
            Self::GetSecretValue => "secretsmanager:GetSecretValue",
            Self::DescribeSecret => "secretsmanager:DescribeSecret",
            Self::ListSecrets => "secretsmanager:ListSecrets",
            Self::BatchGetSecretValue => "secretsmanager:BatchGetSecretValue",
        }
    }

    pub const fn service(self) -> Service {
        match self {
            Self::GetParameters | Self::GetParametersByPath => Service::Ssm,
            Self::GetSecretValue
            | Self::DescribeSecret
            | Self::ListSecrets
            | Self::BatchGetSecretValue => Service::SecretsManager,
        }
    }

    /// The action takes no resource: IAM allows it only on `Resource: "*"`.
    pub const fn resourceless(self) -> bool {
        matches!(self, Self::ListSecrets | Self::BatchGetSecretValue)
    }
}

impl fmt::Display for AwsCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.iam())
    }
}

/// How the injector reads the values of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fetch {
    /// `GetParameters` with decryption, up to ten names a call.
    Parameters,
    /// `GetParametersByPath` with decryption, recursive, every page.
    ParametersByPath,
    /// `GetSecretValue`, one call per secret.
    SecretValue,
    /// `ListSecrets` by name prefix and tags (100 a page, every page), checked again exactly,
    /// then `BatchGetSecretValue` by ARN, twenty a call.
    SecretsByPrefix,
}

impl Fetch {
    /// The actions the pod's role needs for it: the calls it makes, and for
    /// `BatchGetSecretValue` `GetSecretValue` on each secret it reads.
    pub const fn calls(self) -> &'static [AwsCall] {
        match self {
            Self::Parameters => &[AwsCall::GetParameters],
            Self::ParametersByPath => &[AwsCall::GetParametersByPath],
            Self::SecretValue => &[AwsCall::GetSecretValue],
            Self::SecretsByPrefix => &[
                AwsCall::ListSecrets,
                AwsCall::BatchGetSecretValue,
                AwsCall::GetSecretValue,
            ],
        }
    }
}

/// How the refresh sidecar learns whether a kind's values changed, at the cost of no value and
/// no KMS decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Check {
    /// `GetParameters` without decryption, ten names a call: the version (and the value of an
    /// unencrypted `String`, which then needs no fetch).
    ParameterVersions,
    /// `GetParametersByPath` without decryption: every parameter's name and version.
    PathVersions,
    /// `DescribeSecret`: the version id that holds the wanted stage.
    SecretVersion,
    /// One `ListSecrets` pass: every secret's name, ARN and the version id that holds
    /// `AWSCURRENT` (`SecretVersionsToStages`).
    SecretList,
}

impl Check {
    /// The calls it makes, each an action the pod's role needs.
    pub const fn calls(self) -> &'static [AwsCall] {
        match self {
            Self::ParameterVersions => &[AwsCall::GetParameters],
            Self::PathVersions => &[AwsCall::GetParametersByPath],
            Self::SecretVersion => &[AwsCall::DescribeSecret],
            Self::SecretList => &[AwsCall::ListSecrets],
        }
    }
}

impl ObjectType {
    pub const ALL: [ObjectType; 4] = [
        Self::SsmParameter,
        Self::SecretsManager,
        Self::SsmParameterPath,
        Self::SecretsManagerPath,
    ];

    /// Everything that differs by kind.
    pub const fn facts(self) -> &'static KindFacts {
        &KINDS[self as usize]
    }

    pub fn as_str(self) -> &'static str {
        self.facts().name
    }

    /// Whether SSM fetches it (versions are `name:3` and labels `name:label`).
    pub fn is_ssm(self) -> bool {
        self.facts().service == Service::Ssm
    }

    /// The kind an ARN of `service` with `resource` names, if any.
    pub fn of_arn(service: &str, resource: &str) -> Option<ObjectType> {
        Self::ALL.into_iter().find(|t| {
            let facts = t.facts();
            facts.service.name() == service
                && facts
                    .arn_resource
                    .is_some_and(|start| resource.starts_with(start))
        })
    }

    /// Every spelling, for messages: "ssmparameter, secretsmanager, ssmparameterpath or
    /// secretsmanagerpath".
    pub fn spellings() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|t| t.as_str()).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.concat(),
        }
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ObjectType {
    type Err = String;

    /// The exact spelling (case matters, as in ASCP).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "objectType {s:?} is not known (spelling and case matter); use {}",
                    Self::spellings()
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_row() {
        assert_eq!(KINDS.len(), ObjectType::ALL.len());
        for t in ObjectType::ALL {
            assert_eq!(t.facts().kind, t);
        }
    }

    #[test]
    fn rows_agree_with_themselves() {
        for facts in &KINDS {
            let name = facts.name;
            for call in facts.fetch.calls().iter().chain(facts.check.calls()) {
                assert_eq!(call.service(), facts.service, "{name}: {call}");
            }
            // A directory's files are named by what is found under its name, never by an ARN.
            assert_eq!(facts.directory, facts.name_form.is_some(), "{name}");
            assert_eq!(facts.directory, facts.arn_resource.is_none(), "{name}");
            // jmesPath selects from one JSON value, and a directory holds many.
            assert!(!(facts.directory && facts.jmes_path), "{name}");
            // A kind fails over either through failoverObject or as a whole, never both.
            assert!(!(facts.failover_object && facts.failover_whole), "{name}");
            // Tags select among many values.
            assert!(!facts.tags || facts.directory, "{name}");
            assert!(matches!(facts.article, "a" | "an"), "{name}");
        }
    }

    #[test]
    fn object_types_are_spelled_as_in_ascp() {
        assert_eq!(ObjectType::SsmParameter.to_string(), "ssmparameter");
        assert_eq!(ObjectType::SecretsManager.to_string(), "secretsmanager");
        assert_eq!(ObjectType::SsmParameterPath.to_string(), "ssmparameterpath");
        assert_eq!(
            ObjectType::SecretsManagerPath.to_string(),
            "secretsmanagerpath"
        );
        for t in ObjectType::ALL {
            assert_eq!(t.to_string().parse::<ObjectType>(), Ok(t));
        }
        assert_eq!(
            ObjectType::spellings(),
            "ssmparameter, secretsmanager, ssmparameterpath or secretsmanagerpath"
        );
    }

    #[test]
    fn object_type_case_matters() {
        for bad in ["SSMParameter", "SecretsManager", "ssm", "secret", ""] {
            let err = bad.parse::<ObjectType>().unwrap_err();
            assert!(
                err.contains(
                    "ssmparameter, secretsmanager, ssmparameterpath or secretsmanagerpath"
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn arns_name_the_kinds_of_one_value() {
        assert_eq!(
            ObjectType::of_arn("ssm", "parameter/app/db"),
            Some(ObjectType::SsmParameter)
        );
        assert_eq!(
            ObjectType::of_arn("secretsmanager", "secret:db-AbCdEf"),
            Some(ObjectType::SecretsManager)
        );
        assert_eq!(ObjectType::of_arn("ssm", "document/x"), None);
        assert_eq!(ObjectType::of_arn("s3", "parameter/x"), None);
    }

    #[test]
    fn actions_are_the_fetch_and_on_refresh_the_check() {
        let secret = ObjectType::SecretsManager.facts();
        assert_eq!(secret.actions(false), [AwsCall::GetSecretValue]);
        assert_eq!(
            secret.actions(true),
            [AwsCall::GetSecretValue, AwsCall::DescribeSecret]
        );
        // The check of a parameter is the fetch's own call, without decryption.
        let parameter = ObjectType::SsmParameter.facts();
        assert_eq!(parameter.actions(true), [AwsCall::GetParameters]);
        assert_eq!(
            ObjectType::SsmParameterPath.facts().actions(true),
            [AwsCall::GetParametersByPath]
        );
    }

    #[test]
    fn a_prefix_of_secrets_is_listed_then_read_in_batches() {
        let prefix = ObjectType::SecretsManagerPath.facts();
        assert_eq!(
            prefix.actions(false),
            [
                AwsCall::ListSecrets,
                AwsCall::BatchGetSecretValue,
                AwsCall::GetSecretValue
            ]
        );
        // The refresh check is the listing the fetch already needs.
        assert_eq!(prefix.actions(true), prefix.actions(false));
        assert!(AwsCall::ListSecrets.resourceless());
        assert!(AwsCall::BatchGetSecretValue.resourceless());
        assert!(!AwsCall::GetSecretValue.resourceless());
        assert_eq!(
            prefix.single().map(|k| k.kind),
            Some(ObjectType::SecretsManager)
        );
        assert_eq!(prefix.an_object(), "a secretsmanagerpath object");
        assert!(prefix.requires_alias() && prefix.tags && prefix.failover_whole);
    }

    #[test]
    fn secret_prefixes_hold_only_secret_name_characters() {
        let chars = ObjectType::SecretsManagerPath
            .facts()
            .name_form
            .as_ref()
            .and_then(|form| form.chars.as_ref())
            .expect("a rule for the characters");
        assert_eq!(chars.problem("prod/pay_ments+=.@-9/"), None);
        // "!" would make the name filter a negation, and "*" is no character of a name.
        for bad in ["!prod", "prod/*", "prod payments", "pr\u{e9}d"] {
            let problem = chars.problem(bad).expect(bad);
            assert!(problem.contains("(only ASCII letters"), "{problem}");
        }
        assert!(
            chars
                .problem(&"a".repeat(513))
                .unwrap()
                .contains("over the limit of 512")
        );
    }

    #[test]
    fn directory_kinds_point_to_their_single_kind() {
        let path = ObjectType::SsmParameterPath.facts();
        assert_eq!(
            path.single().map(|k| k.kind),
            Some(ObjectType::SsmParameter)
        );
        assert!(path.requires_alias());
        assert_eq!(path.an_object(), "an ssmparameterpath object");
        assert_eq!(
            ObjectType::SecretsManager.facts().an_object(),
            "a secretsmanager object"
        );
    }
}
