//! A Secrets Store CSI driver `SecretProviderClass` (`secrets-store.csi.x-k8s.io/v1`, or
//! `v1alpha1`) read as this project's settings and objects: ASCP's class parameters `objects`,
//! `region`, `failoverRegion`, `pathTranslation` (`usePodIdentity`, `preferredAddressType`
//! accepted and needing nothing), and the extensions `assumeRoleArn`, `assumeRoleExternalId`,
//! `assumeRoleDurationSeconds`. A class comes from whoever can create one in the namespace: its
//! sizes are bounded before anything in it is parsed.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::annotations::{OBJECTS, closest};
use crate::arn::check_role_arn;
use crate::assume_role::{check_external_id, parse_duration_seconds};
use crate::error::{Error, Errors, capped_warnings};
use crate::settings::{is_valid_region, region_problem};
use crate::translation::PathTranslation;

mod read;

/// The API group of the class, as `apiVersion` writes it before the version.
pub const GROUP: &str = "secrets-store.csi.x-k8s.io";
/// The versions read (the CSI driver serves both).
pub const VERSIONS: [&str; 2] = ["v1", "v1alpha1"];
pub const KIND: &str = "SecretProviderClass";
/// The plural resource name (RBAC, API paths).
pub const RESOURCE: &str = "secretproviderclasses";
/// The CSI driver whose volumes name a class.
pub const CSI_DRIVER: &str = "secrets-store.csi.k8s.io";
/// The CSI volume attribute that names the class.
pub const CSI_CLASS_ATTRIBUTE: &str = "secretProviderClass";
/// The only provider this project serves.
pub const PROVIDER: &str = "aws";

/// Parameters a class may hold, besides `objects` (which may be as large as the annotation).
pub const PARAMETERS: &[&str] = &[
    "objects",
    "region",
    "failoverRegion",
    "pathTranslation",
    "usePodIdentity",
    "preferredAddressType",
    "assumeRoleArn",
    "assumeRoleExternalId",
    "assumeRoleDurationSeconds",
];
/// At most this many parameters are read; a class with more is refused unread.
pub const MAX_PARAMETERS: usize = 64;
/// The longest parameter name and value (other than `objects`) read.
pub const MAX_PARAMETER_BYTES: usize = 2048;
/// The longest class name (a Kubernetes object name).
pub const MAX_NAME_BYTES: usize = 253;
/// The longest name of an unknown parameter kept, for its warning.
pub const MAX_UNKNOWN_NAME_BYTES: usize = 128;
/// How many unknown parameters are named in warnings; the rest are counted.
pub const MAX_NAMED_UNKNOWN: usize = 5;
/// The longest unknown parameter name compared with the known ones for a "did you mean": a typo
/// of a parameter name is short, and the comparison costs the product of the lengths.
pub const MAX_SUGGESTED_NAME_BYTES: usize = 64;

/// A class document, read pruned (`read.rs`) but not yet checked as settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    /// Empty when the document has no name, or one longer than [`MAX_NAME_BYTES`].
    pub name: String,
    /// `None` when the document does not say (a manifest applied to the current namespace).
    pub namespace: Option<String>,
    /// `metadata.resourceVersion` (set by the API server).
    pub resource_version: Option<String>,
    /// `spec.provider` as written (`None` when absent or not a string).
    pub provider: Option<String>,
    /// The parameters the AWS provider reads ([`PARAMETERS`]), each a string within its limit.
    pub parameters: BTreeMap<String, String>,
    /// The first [`MAX_NAMED_UNKNOWN`] names of parameters it does not read, each cut to
    /// [`MAX_UNKNOWN_NAME_BYTES`]; [`Class::unknown_count`] counts them all.
    pub unknown: Vec<String>,
    pub unknown_count: usize,
    /// `spec.secretObjects` lists something: the class asks the driver to sync a Secret.
    pub secret_objects: bool,
    /// What is wrong with the document's shape (a parameter that is not a string, too many or
    /// too large parameters), each naming the field.
    pub problems: Vec<String>,
    /// Bytes of every name and string value of `spec.parameters` as written, kept or not.
    pub parameter_bytes: usize,
}

/// The role the injector assumes before fetching (the `assumeRole*` extensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    pub arn: String,
    pub external_id: Option<String>,
    pub duration_seconds: Option<u32>,
}

/// What a class gives the injector, checked except for the objects list, which
/// `plan::parse` checks under the pod's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassSpec {
    /// The `objects` parameter, verbatim (the injector parses the same text).
    pub objects: String,
    pub region: Option<String>,
    pub failover_region: Option<String>,
    /// `pathTranslation` as written, and as read.
    pub path_translation: Option<(String, PathTranslation)>,
    pub assume_role: Option<AssumeRole>,
    /// Unknown parameters, named.
    pub warnings: Vec<String>,
}

/// Why a class gives no spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `spec.provider` is not `aws`: the class is another provider's (or has none).
    NotAws(Option<String>),
    /// The class asks for `secretObjects`, which this project never writes.
    SecretObjects,
    /// The class is for `aws` but cannot work; every problem, each naming its field.
    Invalid(Errors),
}

impl Refusal {
    /// The reason, for a denial or a warning that names the class before it.
    pub fn reason(&self) -> String {
        match self {
            Self::NotAws(provider) => format!(
                "its spec.provider is {}, not \"aws\"; only classes of the AWS provider can be \
                 served without the CSI driver",
                provider
                    .as_deref()
                    .map_or_else(|| "not set".to_owned(), |p| format!("{p:?}"))
            ),
            Self::SecretObjects => "it sets spec.secretObjects (sync into a Kubernetes Secret), \
                 and this project never writes Secrets; remove secretObjects and read the files, \
                 or keep the pod on the CSI driver"
                .to_owned(),
            Self::Invalid(errors) => errors.to_string(),
        }
    }
}

/// Whether a document is a SecretProviderClass of a version read here.
pub fn is_class(document: &Value) -> bool {
    let api_version = document.get("apiVersion").and_then(Value::as_str);
    document.get("kind").and_then(Value::as_str) == Some(KIND)
        && api_version
            .and_then(|v| v.strip_prefix(GROUP))
            .and_then(|v| v.strip_prefix('/'))
            .is_some_and(|version| VERSIONS.contains(&version))
}

/// Checks a class name as the API server does (a DNS subdomain, RFC 1123), before it is put in
/// a request path: at most 253 characters of lowercase letters, digits, `-` and `.`, each
/// dot-separated part starting and ending with a letter or digit. So no name can carry `/`,
/// `..`, `?` or `%` into a request.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name.split('.').all(|part| {
            let bytes = part.as_bytes();
            let alphanumeric = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            bytes.first().is_some_and(alphanumeric)
                && bytes.last().is_some_and(alphanumeric)
                && bytes.iter().all(|b| alphanumeric(b) || *b == b'-')
        });
    if valid {
        return Ok(());
    }
    Err(format!(
        "{KIND} name {} is not valid: a class name is a DNS subdomain (RFC 1123): at most \
         {MAX_NAME_BYTES} characters, lowercase letters, digits, '-' and '.', each part between \
         dots starting and ending with a letter or digit; fix the name",
        shown(name)
    ))
}

/// A name from a pod, quoted for a message: its first 64 characters.
fn shown(name: &str) -> String {
    match name.char_indices().nth(64) {
        Some((cut, _)) => format!("{:?}…", &name[..cut]),
        None => format!("{name:?}"),
    }
}

impl Class {
    /// A class with nothing read yet.
    fn empty() -> Self {
        Self {
            name: String::new(),
            namespace: None,
            resource_version: None,
            provider: None,
            parameters: BTreeMap::new(),
            unknown: Vec::new(),
            unknown_count: 0,
            secret_objects: false,
            problems: Vec::new(),
            parameter_bytes: 0,
        }
    }

    /// Reads a class document. `Err` when it is not a SecretProviderClass of a version read here,
    /// or has no name; a document of the right kind with bad fields is read with `problems`.
    pub fn read(document: &Value) -> Result<Self, String> {
        if !is_class(document) {
            return Err(format!(
                "is not a {KIND} (apiVersion {GROUP}/v1 or {GROUP}/v1alpha1)"
            ));
        }
        let class = Self::deserialize(document).map_err(|e| format!("cannot be read: {e}"))?;
        if class.name.is_empty() {
            return Err(format!("a {KIND} without a valid metadata.name"));
        }
        Ok(class)
    }

    /// The class itself when its parameters take at most `max_bytes` (names and values as
    /// written); else a class that says so and keeps nothing else of them (`how` says which
    /// setting holds the limit).
    pub fn bounded(self, max_bytes: usize, how: &str) -> Self {
        if self.parameter_bytes <= max_bytes {
            return self;
        }
        let problem = format!(
            "spec.parameters is too large: {} bytes of names and values, over the limit of \
             {max_bytes} bytes{how}; keep only the parameters the AWS provider reads ({})",
            self.parameter_bytes,
            PARAMETERS.join(", ")
        );
        Self {
            parameters: BTreeMap::new(),
            unknown: Vec::new(),
            unknown_count: 0,
            problems: vec![problem],
            ..self
        }
    }

    /// About how many bytes of memory the class holds (its strings, and the structure).
    pub fn kept_bytes(&self) -> usize {
        let strings = [&self.name]
            .into_iter()
            .chain(&self.namespace)
            .chain(&self.resource_version)
            .chain(&self.provider)
            .chain(&self.unknown)
            .chain(&self.problems)
            .map(String::len)
            .sum::<usize>();
        let parameters = self
            .parameters
            .iter()
            .map(|(k, v)| k.len() + v.len() + 64)
            .sum::<usize>();
        std::mem::size_of::<Self>()
            + strings
            + parameters
            + 24 * (self.unknown.len() + self.problems.len())
    }

    /// The class's settings and objects text, or why it gives none. The provider is checked
    /// first: a class of another provider is not this project's to judge.
    pub fn spec(&self) -> Result<ClassSpec, Refusal> {
        if self.provider.as_deref() != Some(PROVIDER) {
            return Err(Refusal::NotAws(self.provider.clone()));
        }
        if self.secret_objects {
            return Err(Refusal::SecretObjects);
        }
        let mut problems = self.problems.clone();
        let get = |key: &str| {
            self.parameters
                .get(key)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let objects = get("objects");
        if objects.is_none() && problems.is_empty() {
            problems.push(
                "spec.parameters.objects is missing or empty; list the objects as in the \
                 secrets-injector.io/objects annotation (objects: | then - objectName: ...)"
                    .to_owned(),
            );
        }
        let region = get("region").map(str::to_owned);
        if let Some(region) = &region
            && !is_valid_region(region)
        {
            problems.push(format!(
                "spec.parameters.region: {}",
                region_problem(region)
            ));
        }
        let failover_region = get("failoverRegion").map(str::to_owned);
        if let Some(failover) = &failover_region {
            if !is_valid_region(failover) {
                problems.push(format!(
                    "spec.parameters.failoverRegion: {}",
                    region_problem(failover)
                ));
            } else if region.as_ref() == Some(failover) {
                problems.push(format!(
                    "spec.parameters.failoverRegion {failover:?} is the region itself; a \
                     failover region must be another region, or leave it out"
                ));
            }
        }
        let path_translation = get("pathTranslation").and_then(|text| {
            text.parse::<PathTranslation>()
                .map(|read| (text.to_owned(), read))
                .map_err(|problem| {
                    problems.push(format!("spec.parameters.pathTranslation: {problem}"))
                })
                .ok()
        });
        for flag in ["usePodIdentity"] {
            if let Some(value) = get(flag)
                && !["true", "false"].contains(&value.to_ascii_lowercase().as_str())
            {
                problems.push(format!(
                    "spec.parameters.{flag} {value:?} is not \"true\" or \"false\""
                ));
            }
        }
        let assume_role = self.assume_role(&mut problems);
        let warnings = self.warnings();
        if !problems.is_empty() {
            let errors = problems
                .into_iter()
                .map(|message| Error::class(&self.name, message))
                .collect();
            return Err(Refusal::Invalid(Errors(errors)));
        }
        Ok(ClassSpec {
            objects: objects.unwrap_or_default().to_owned(),
            region,
            failover_region,
            path_translation,
            assume_role,
            warnings,
        })
    }

    /// A warning for each unknown parameter, the first ones named (a "did you mean" only for
    /// short names), the rest counted: the work and the text are bounded whatever the class holds.
    fn warnings(&self) -> Vec<String> {
        let mut warnings: Vec<String> = self
            .unknown
            .iter()
            .take(MAX_NAMED_UNKNOWN)
            .map(|key| {
                let suggestion = (key.len() <= MAX_SUGGESTED_NAME_BYTES)
                    .then(|| closest(key, PARAMETERS))
                    .flatten();
                match suggestion {
                    Some(known) => format!(
                        "{KIND} {}: unknown parameter {key:?} ignored; did you mean {known}?",
                        self.name
                    ),
                    None => format!(
                        "{KIND} {}: unknown parameter {key:?} ignored; the AWS provider's \
                         parameters are {}",
                        self.name,
                        PARAMETERS.join(", ")
                    ),
                }
            })
            .collect();
        if self.unknown_count > warnings.len() {
            warnings.push(format!(
                "{KIND} {}: and {} more unknown parameters ignored",
                self.name,
                self.unknown_count - warnings.len()
            ));
        }
        capped_warnings(warnings.iter().map(String::as_str))
    }

    /// The `assumeRole*` parameters, checked: an IAM role ARN, an external id STS accepts, a
    /// duration STS accepts for a chained session.
    fn assume_role(&self, problems: &mut Vec<String>) -> Option<AssumeRole> {
        let get = |key: &str| {
            self.parameters
                .get(key)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let arn = get("assumeRoleArn");
        let external_id = get("assumeRoleExternalId");
        let duration = get("assumeRoleDurationSeconds");
        let Some(arn) = arn else {
            if external_id.is_some() || duration.is_some() {
                problems.push(
                    "spec.parameters.assumeRoleExternalId and assumeRoleDurationSeconds need \
                     assumeRoleArn; set the role to assume, or remove them"
                        .to_owned(),
                );
            }
            return None;
        };
        if let Err(problem) = check_role_arn(arn, "spec.parameters.assumeRoleArn") {
            problems.push(problem);
        }
        if let Some(id) = external_id
            && let Err(problem) = check_external_id(id)
        {
            problems.push(format!("spec.parameters.assumeRoleExternalId {problem}"));
        }
        let duration_seconds = duration.and_then(|text| match parse_duration_seconds(text) {
            Ok(seconds) => Some(seconds),
            Err(problem) => {
                problems.push(format!(
                    "spec.parameters.assumeRoleDurationSeconds: {problem}"
                ));
                None
            }
        });
        Some(AssumeRole {
            arn: arn.to_owned(),
            external_id: external_id.map(str::to_owned),
            duration_seconds,
        })
    }
}

/// Problems of a class's objects list (found by `plan::parse` under the pod's settings), named
/// by the class instead of the annotation.
pub fn class_errors(class: &str, errors: &Errors) -> Errors {
    Errors(
        errors
            .0
            .iter()
            .map(|error| match error {
                Error::Object { label, message } => Error::class(
                    class,
                    format!("spec.parameters.objects: {label}: {message}"),
                ),
                Error::Annotation {
                    annotation,
                    message,
                } if *annotation == OBJECTS => {
                    Error::class(class, format!("spec.parameters.objects {message}"))
                }
                other => other.clone(),
            })
            .collect(),
    )
}

/// A warning of a class's objects list, named by the class instead of the annotation.
pub fn class_warning(class: &str, warning: &str) -> String {
    let annotation = format!("annotation {OBJECTS}: ");
    match warning.strip_prefix(&annotation) {
        Some(rest) => format!("{KIND} {class}: spec.parameters.objects: {rest}"),
        None => format!("{KIND} {class}: {warning}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::annotations::MAX_OBJECTS_BYTES;

    fn class(parameters: Value) -> Value {
        json!({
            "apiVersion": "secrets-store.csi.x-k8s.io/v1",
            "kind": "SecretProviderClass",
            "metadata": {"name": "app", "namespace": "team"},
            "spec": {"provider": "aws", "parameters": parameters},
        })
    }

    const OBJECTS_TEXT: &str = "- objectName: /app/db\n  objectType: ssmparameter\n";

    fn refusal(document: Value) -> String {
        Class::read(&document).unwrap().spec().unwrap_err().reason()
    }

    #[test]
    fn reads_ascp_parameters() {
        let doc = class(json!({
            "objects": OBJECTS_TEXT,
            "region": "eu-west-1",
            "failoverRegion": "eu-central-1",
            "pathTranslation": "False",
            "usePodIdentity": "true",
            "preferredAddressType": "ipv6",
        }));
        let read = Class::read(&doc).unwrap();
        assert_eq!(read.name, "app");
        assert_eq!(read.namespace.as_deref(), Some("team"));
        let spec = read.spec().unwrap();
        assert_eq!(spec.objects, OBJECTS_TEXT);
        assert_eq!(spec.region.as_deref(), Some("eu-west-1"));
        assert_eq!(spec.failover_region.as_deref(), Some("eu-central-1"));
        assert_eq!(
            spec.path_translation,
            Some(("False".to_owned(), PathTranslation::Directories))
        );
        assert_eq!(spec.assume_role, None);
        assert!(spec.warnings.is_empty(), "{:?}", spec.warnings);
    }

    #[test]
    fn both_versions_and_only_this_kind() {
        let mut doc = class(json!({"objects": OBJECTS_TEXT}));
        assert!(is_class(&doc));
        doc["apiVersion"] = json!("secrets-store.csi.x-k8s.io/v1alpha1");
        assert!(Class::read(&doc).unwrap().spec().is_ok());
        for (api_version, kind) in [
            ("secrets-store.csi.x-k8s.io/v2", KIND),
            ("secrets-store.csi.x-k8s.io", KIND),
            ("v1", KIND),
            (
                "secrets-store.csi.x-k8s.io/v1",
                "SecretProviderClassPodStatus",
            ),
        ] {
            doc["apiVersion"] = json!(api_version);
            doc["kind"] = json!(kind);
            assert!(!is_class(&doc), "{api_version} {kind}");
            assert!(Class::read(&doc).is_err());
        }
        let nameless = json!({"apiVersion": "secrets-store.csi.x-k8s.io/v1", "kind": KIND,
            "metadata": {}, "spec": {}});
        assert!(
            Class::read(&nameless)
                .unwrap_err()
                .contains("metadata.name")
        );
    }

    #[test]
    fn other_providers_and_secret_objects_are_refused_by_kind() {
        let mut doc = class(json!({"objects": OBJECTS_TEXT}));
        doc["spec"]["provider"] = json!("azure");
        let read = Class::read(&doc).unwrap();
        assert_eq!(
            read.spec().unwrap_err(),
            Refusal::NotAws(Some("azure".into()))
        );
        assert!(refusal(doc.clone()).contains("\"azure\", not \"aws\""));
        doc["spec"].as_object_mut().unwrap().remove("provider");
        assert!(refusal(doc).contains("spec.provider is not set"));

        let mut doc = class(json!({"objects": OBJECTS_TEXT}));
        doc["spec"]["secretObjects"] = json!([{"secretName": "s", "type": "Opaque"}]);
        assert_eq!(
            Class::read(&doc).unwrap().spec().unwrap_err(),
            Refusal::SecretObjects
        );
        assert!(refusal(doc).contains("never writes Secrets"));
        let mut doc = class(json!({"objects": OBJECTS_TEXT}));
        doc["spec"]["secretObjects"] = json!([]);
        assert!(Class::read(&doc).unwrap().spec().is_ok());
    }

    #[test]
    fn bad_parameters_are_named() {
        for (parameters, expected) in [
            (json!({}), "spec.parameters.objects is missing"),
            (json!({"objects": ""}), "spec.parameters.objects is missing"),
            (
                json!({"objects": OBJECTS_TEXT, "region": "EU-WEST-1"}),
                "SecretProviderClass app: spec.parameters.region: \"EU-WEST-1\" is not a region",
            ),
            (
                json!({"objects": OBJECTS_TEXT, "region": "--help"}),
                "command-line flag",
            ),
            (
                json!({"objects": OBJECTS_TEXT, "region": "eu-west-1", "failoverRegion": "eu-west-1"}),
                "failoverRegion \"eu-west-1\" is the region itself",
            ),
            (
                json!({"objects": OBJECTS_TEXT, "failoverRegion": "x"}),
                "spec.parameters.failoverRegion: \"x\" is not a region",
            ),
            (
                json!({"objects": OBJECTS_TEXT, "pathTranslation": "ab"}),
                "spec.parameters.pathTranslation: \"ab\" is neither False",
            ),
            (
                json!({"objects": OBJECTS_TEXT, "usePodIdentity": "yes"}),
                "usePodIdentity \"yes\" is not",
            ),
            (
                json!({"objects": [{"objectName": "a"}]}),
                "spec.parameters.objects is a list, not a string",
            ),
            (
                json!({"objects": OBJECTS_TEXT, "region": 7}),
                "spec.parameters.region is a number, not a string",
            ),
        ] {
            let reason = refusal(class(parameters.clone()));
            assert!(reason.contains(expected), "{parameters}: {reason}");
        }
        let mut doc = class(json!({}));
        doc["spec"]["parameters"] = json!("objects");
        assert!(refusal(doc).contains("spec.parameters is a string, not a mapping"));
    }

    #[test]
    fn sizes_are_bounded_before_parsing() {
        let big = format!("{OBJECTS_TEXT}#{}\n", "x".repeat(MAX_OBJECTS_BYTES));
        let reason = refusal(class(json!({"objects": big})));
        assert!(
            reason.contains("spec.parameters.objects is 65") && reason.contains("over the limit"),
            "{reason}"
        );
        let reason = refusal(class(
            json!({"objects": OBJECTS_TEXT, "region": "x".repeat(5000)}),
        ));
        assert!(
            reason.contains("spec.parameters.region is 5000 bytes"),
            "{reason}"
        );
        let many: serde_json::Map<String, Value> = (0..=MAX_PARAMETERS)
            .map(|i| (format!("p{i}"), json!("v")))
            .collect();
        let reason = refusal(class(Value::Object(many)));
        assert!(reason.contains("more than the 64 read"), "{reason}");
        let long_name = json!({"objects": OBJECTS_TEXT, "k".repeat(3000): "v"});
        assert!(refusal(class(long_name)).contains("a name of 3000 bytes"));
    }

    #[test]
    fn unknown_parameters_are_warnings() {
        let doc = class(json!({"objects": OBJECTS_TEXT, "regoin": "eu-west-1", "colour": "blue"}));
        let spec = Class::read(&doc).unwrap().spec().unwrap();
        assert_eq!(spec.warnings.len(), 2);
        assert!(
            spec.warnings
                .iter()
                .any(|w| w.contains("\"regoin\" ignored; did you mean region?")),
            "{:?}",
            spec.warnings
        );
        assert!(
            spec.warnings
                .iter()
                .any(|w| w.starts_with("SecretProviderClass app: unknown parameter \"colour\"")),
            "{:?}",
            spec.warnings
        );
    }

    #[test]
    fn assume_role_is_checked() {
        let doc = class(json!({
            "objects": OBJECTS_TEXT,
            "assumeRoleArn": "arn:aws:iam::111122223333:role/reader",
            "assumeRoleExternalId": "team-42",
            "assumeRoleDurationSeconds": "900",
        }));
        let spec = Class::read(&doc).unwrap().spec().unwrap();
        assert_eq!(
            spec.assume_role,
            Some(AssumeRole {
                arn: "arn:aws:iam::111122223333:role/reader".into(),
                external_id: Some("team-42".into()),
                duration_seconds: Some(900),
            })
        );
        for (parameters, expected) in [
            (
                json!({"assumeRoleArn": "arn:aws:s3:::bucket"}),
                "is not the ARN of one IAM role",
            ),
            (json!({"assumeRoleArn": "reader"}), "is not an ARN"),
            (
                json!({"assumeRoleArn": "arn:aws:iam::1:role/r", "assumeRoleDurationSeconds": "899"}),
                "from 900 to 3600",
            ),
            (
                json!({"assumeRoleArn": "arn:aws:iam::1:role/r", "assumeRoleDurationSeconds": "3601"}),
                "from 900 to 3600",
            ),
            (
                json!({"assumeRoleArn": "arn:aws:iam::1:role/r", "assumeRoleDurationSeconds": "1h"}),
                "from 900 to 3600",
            ),
            (
                json!({"assumeRoleArn": "arn:aws:iam::1:role/r", "assumeRoleExternalId": "a b"}),
                "assumeRoleExternalId is not an external id STS accepts",
            ),
            (
                json!({"assumeRoleExternalId": "team"}),
                "need assumeRoleArn",
            ),
        ] {
            let mut all = parameters.as_object().unwrap().clone();
            all.insert("objects".into(), json!(OBJECTS_TEXT));
            let reason = refusal(class(Value::Object(all)));
            assert!(reason.contains(expected), "{parameters}: {reason}");
        }
    }

    #[test]
    fn names_are_dns_subdomains() {
        for good in ["app", "a", "aws-secrets.v2", "0app", &"a".repeat(253)] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "x/../../../other/secretproviderclasses/victim?a=b",
            "..",
            "a..b",
            ".a",
            "a.",
            "-a",
            "a-",
            "App",
            "a b",
            "a%2fb",
            "a_b",
            "é",
            &"a".repeat(254),
        ] {
            let problem = check_name(bad).unwrap_err();
            assert!(
                problem.contains("is not valid: a class name is a DNS subdomain (RFC 1123)"),
                "{problem}"
            );
        }
        // A huge name is quoted by its start only.
        let problem = check_name(&"A".repeat(100_000)).unwrap_err();
        assert!(problem.len() < 400, "{}", problem.len());
    }

    #[test]
    fn unknown_parameters_cost_bounded_work_and_text() {
        // 63 unknown names of 2 KB: none compared for a suggestion, the warnings capped.
        let mut parameters: serde_json::Map<String, Value> = (0..63)
            .map(|i| (format!("{i:02}{}", "k".repeat(2046)), json!("")))
            .collect();
        parameters.insert("objects".into(), json!(OBJECTS_TEXT));
        let read = Class::read(&class(Value::Object(parameters))).unwrap();
        assert_eq!(read.unknown_count, 63);
        assert_eq!(read.unknown.len(), MAX_NAMED_UNKNOWN);
        assert!(
            read.unknown
                .iter()
                .all(|k| k.len() <= MAX_UNKNOWN_NAME_BYTES + 3)
        );
        let spec = read.spec().unwrap();
        assert_eq!(spec.warnings.len(), MAX_NAMED_UNKNOWN + 1);
        assert!(spec.warnings.iter().all(|w| !w.contains("did you mean")));
        assert!(
            spec.warnings
                .iter()
                .any(|w| w.ends_with("and 58 more unknown parameters ignored")),
            "{:?}",
            spec.warnings
        );
        let bytes: usize = spec.warnings.iter().map(String::len).sum();
        assert!(bytes < 4096, "{bytes}");
    }

    #[test]
    fn a_huge_class_is_read_pruned_and_can_be_marked_too_large() {
        // 100,000 empty parameters (valid for the CRD, 1.5 MB), and metadata that is skipped.
        let mut text = String::from(
            r#"{"metadata":{"name":"big","namespace":"team","resourceVersion":"7","annotations":{"a":""#,
        );
        text.push_str(&"x".repeat(500_000));
        text.push_str(r#""}},"spec":{"provider":"aws","parameters":{"#);
        for i in 0..100_000 {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&format!(r#""p{i:07}":"""#));
        }
        text.push_str("}}}");
        let read: Class = serde_json::from_str(&text).unwrap();
        assert_eq!(read.name, "big");
        assert_eq!(read.namespace.as_deref(), Some("team"));
        assert_eq!(read.resource_version.as_deref(), Some("7"));
        assert!(read.parameters.is_empty() && read.unknown.is_empty());
        assert_eq!(read.parameter_bytes, 100_000 * 8);
        assert!(read.problems[0].contains("100000 entries, more than the 64 read"));
        assert!(read.kept_bytes() < 2048, "{}", read.kept_bytes());
        let marked = read.bounded(64 * 1024, " (--limit)");
        assert_eq!(marked.problems.len(), 1);
        let reason = marked.spec().unwrap_err().reason();
        assert!(
            reason
                .starts_with("SecretProviderClass big: spec.parameters is too large: 800000 bytes")
                && reason.contains("over the limit of 65536 bytes (--limit)"),
            "{reason}"
        );
        // Within the limit, nothing changes.
        let small = Class::read(&class(json!({"objects": OBJECTS_TEXT}))).unwrap();
        assert_eq!(small.clone().bounded(1024, ""), small);
    }

    #[test]
    fn fields_of_the_wrong_shape_are_problems_not_failures() {
        for (document, expected) in [
            (json!({"metadata": "x", "spec": {"provider": "aws"}}), None),
            (
                json!({"metadata": {"name": "a"}, "spec": {"provider": "aws", "parameters": [1, 2]}}),
                Some("spec.parameters is a list, not a mapping of strings"),
            ),
            (
                json!({"metadata": {"name": "a", "namespace": 7}, "spec": [1]}),
                None,
            ),
            (
                json!({"metadata": {"name": "a"}, "spec": {"provider": {"x": 1}, "secretObjects": {}}}),
                None,
            ),
        ] {
            let read: Class = serde_json::from_value(document.clone()).unwrap();
            match expected {
                Some(expected) => assert!(read.problems.iter().any(|p| p.contains(expected))),
                None => assert!(read.problems.is_empty(), "{document}: {:?}", read.problems),
            }
        }
        let read: Class = serde_json::from_value(json!({"metadata": {"name": "a"},
            "spec": {"provider": {"x": 1}, "secretObjects": {}}}))
        .unwrap();
        assert_eq!(read.provider, None);
        assert!(read.secret_objects);
    }

    #[test]
    fn object_problems_are_named_by_the_class() {
        let errors = crate::plan::parse(
            "- objectName: /a\n  objectType: nope\n",
            crate::Settings::new("eu-west-1"),
        )
        .unwrap_err();
        let text = class_errors("app", &errors).to_string();
        assert!(
            text.starts_with("SecretProviderClass app: spec.parameters.objects: objects[0]"),
            "{text}"
        );
        assert!(!text.contains("annotation"), "{text}");
        let errors = crate::plan::parse("{}", crate::Settings::new("eu-west-1")).unwrap_err();
        let text = class_errors("app", &errors).to_string();
        assert!(
            text.starts_with("SecretProviderClass app: spec.parameters.objects is a mapping"),
            "{text}"
        );
        assert_eq!(
            class_warning(
                "app",
                "annotation secrets-injector.io/objects: objects[0]: unknown field"
            ),
            "SecretProviderClass app: spec.parameters.objects: objects[0]: unknown field"
        );
    }
}
