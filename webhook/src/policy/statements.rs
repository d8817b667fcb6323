//! The pure rules of `webhook policy`: from the objects pods ask for to IAM statements, and the
//! checks of the identifiers the flags give (account, partition, KMS keys, roles).

use std::collections::{BTreeMap, BTreeSet};

/// Shared with the webhook's admission rules and the injector (`objects`).
pub use secrets_injector_objects::arn::check_role_arn;
use secrets_injector_objects::arn::{Arn, is_account_id};
use secrets_injector_objects::kind::{AwsCall, Service};
use secrets_injector_objects::object::Object;
use secrets_injector_objects::settings::is_valid_region;

/// The policy language version every document carries.
pub const POLICY_VERSION: &str = "2012-10-17";

/// Partitions, the prefix of their region names, and the DNS suffix of their service endpoints
/// (which `kms:ViaService` names). `aws` last: its regions have no prefix of their own.
const PARTITIONS: [(&str, &str, &str); 8] = [
    ("aws-cn", "cn-", "amazonaws.com.cn"),
    ("aws-us-gov", "us-gov-", "amazonaws.com"),
    ("aws-iso", "us-iso-", "c2s.ic.gov"),
    ("aws-iso-b", "us-isob-", "sc2s.sgov.gov"),
    ("aws-iso-e", "eu-isoe-", "cloud.adc-e.uk"),
    ("aws-iso-f", "us-isof-", "csp.hci.ic.gov"),
    ("aws-eusc", "eusc-", "amazonaws.eu"),
    ("aws", "", "amazonaws.com"),
];

/// The IAM actions the injector calls, in the order their statements are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    GetParameters,
    GetParametersByPath,
    GetSecretValue,
    DescribeSecret,
    ListSecrets,
    BatchGetSecretValue,
    Decrypt,
    AssumeRole,
    AssumeRoleWithWebIdentity,
}

impl From<AwsCall> for Action {
    fn from(call: AwsCall) -> Self {
        match call {
            AwsCall::GetParameters => Self::GetParameters,
            AwsCall::GetParametersByPath => Self::GetParametersByPath,
            AwsCall::GetSecretValue => Self::GetSecretValue,
            AwsCall::DescribeSecret => Self::DescribeSecret,
            AwsCall::ListSecrets => Self::ListSecrets,
            AwsCall::BatchGetSecretValue => Self::BatchGetSecretValue,
        }
    }
}

impl Action {
    /// The action as IAM names it.
    pub fn iam(self) -> &'static str {
        match self {
            Self::GetParameters => "ssm:GetParameters",
            Self::GetParametersByPath => "ssm:GetParametersByPath",
            Self::GetSecretValue => "secretsmanager:GetSecretValue",
            Self::DescribeSecret => "secretsmanager:DescribeSecret",
            Self::ListSecrets => "secretsmanager:ListSecrets",
            Self::BatchGetSecretValue => "secretsmanager:BatchGetSecretValue",
            Self::Decrypt => "kms:Decrypt",
            Self::AssumeRole => "sts:AssumeRole",
            Self::AssumeRoleWithWebIdentity => "sts:AssumeRoleWithWebIdentity",
        }
    }

    /// The service that decrypts with a KMS key on the role's behalf for this action.
    fn decrypting_service(self) -> Option<&'static str> {
        match self {
            Self::GetParameters | Self::GetParametersByPath => Some("ssm"),
            Self::GetSecretValue => Some("secretsmanager"),
            _ => None,
        }
    }

    /// The action's name without its service, the start of its statements' `Sid`.
    fn sid(self) -> &'static str {
        self.iam().split_once(':').map_or("", |(_, name)| name)
    }
}

/// One `Allow` statement: one action, on resources (sorted) or for a principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: String,
    pub action: Action,
    pub principal: Option<Principal>,
    pub resources: Vec<String>,
    pub conditions: Vec<Condition>,
}

/// Who may assume a role (trust policies only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `AWS` or `Federated`.
    pub kind: &'static str,
    pub identifier: String,
}

/// One condition: `test` (`StringEquals`) on `variable`, any of `values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub test: &'static str,
    pub variable: String,
    pub values: Vec<String>,
}

/// One policy document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    pub statements: Vec<Statement>,
}

/// One permission on one resource in one region (the region decides the statement), only on
/// resources that carry `tags` when there are any.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Grant {
    pub action: Action,
    /// Empty for an action that takes no resource (`Resource: "*"`, in every region).
    pub region: String,
    pub resource: String,
    /// Tag key and value pairs the resource must carry (`secretsmanager:ResourceTag/KEY`).
    pub tags: Vec<(String, String)>,
}

/// What the flags say about the ARNs to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub partition: String,
    /// `--account`: the account of objects named by name rather than ARN.
    pub account: Option<String>,
}

/// What one pod (or pod template) asks for, as the webhook resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRequest {
    /// How messages name the pod (`Deployment web (document 1)`).
    pub name: String,
    pub region: String,
    pub failover_region: Option<String>,
    pub objects: Vec<Object>,
    /// `refresh-interval` is set: the sidecar also calls `DescribeSecret`.
    pub refresh: bool,
    pub assume_role: Option<AssumeRole>,
}

/// `assume-role-arn` (checked) and `assume-role-external-id` of a pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    pub role: String,
    pub external_id: Option<String>,
}

/// A checked `--kms-key`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct KmsKey {
    pub arn: String,
    pub region: String,
}

/// `--account`: twelve digits.
pub fn check_account(text: &str) -> Result<String, String> {
    if is_account_id(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "--account {text:?} is not an AWS account id; give the twelve digits, such as 111122223333"
        ))
    }
}

/// `--partition`: one of the AWS partitions.
pub fn check_partition(text: &str) -> Result<String, String> {
    if PARTITIONS.iter().any(|(name, _, _)| *name == text) {
        Ok(text.to_owned())
    } else {
        let known: Vec<&str> = PARTITIONS.iter().map(|(name, _, _)| *name).collect();
        Err(format!(
            "--partition {text:?} is not an AWS partition; use one of {}",
            known.join(", ")
        ))
    }
}

/// The partition a region belongs to.
pub fn partition_of(region: &str) -> &'static str {
    PARTITIONS
        .iter()
        .find(|(_, prefix, _)| region.starts_with(prefix))
        .map_or("aws", |(name, _, _)| *name)
}

/// The DNS suffix of a partition's service endpoints.
fn dns_suffix(partition: &str) -> &'static str {
    PARTITIONS
        .iter()
        .find(|(name, _, _)| *name == partition)
        .map_or("amazonaws.com", |(_, _, suffix)| *suffix)
}

/// A region of a pod must be in `--partition`.
pub fn check_region_partition(pod: &str, region: &str, partition: &str) -> Result<(), String> {
    let own = partition_of(region);
    if own == partition {
        Ok(())
    } else {
        Err(format!(
            "{pod}: region {region} is in partition {own}, not {partition}; pass --partition {own}"
        ))
    }
}

/// `--kms-key`: a key ARN (`arn:PARTITION:kms:REGION:ACCOUNT:key/ID`) in `partition`.
/// `kms:Decrypt` is authorized on the key's ARN, never on an alias's.
pub fn check_kms_key(text: &str, partition: &str) -> Result<KmsKey, String> {
    let bad = |why: &str| {
        format!(
            "--kms-key {text:?} {why}; give a key ARN such as \
             arn:{partition}:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        )
    };
    let arn: Arn = text
        .parse()
        .map_err(|_| bad("is not an ARN (arn:PARTITION:kms:REGION:ACCOUNT:key/ID)"))?;
    if arn.service != "kms" {
        return Err(bad(&format!("names service {:?}, not kms", arn.service)));
    }
    if arn.resource.starts_with("alias/") {
        return Err(bad(
            "is an alias; kms:Decrypt is granted on the key itself (aws kms describe-key --key-id ALIAS shows its ARN)",
        ));
    }
    let id = arn.resource.strip_prefix("key/").unwrap_or_default();
    if id.is_empty() || id.contains(['/', '*', '?']) {
        return Err(bad("does not name one key (key/ID)"));
    }
    if !is_valid_region(&arn.region) {
        return Err(bad("has no valid region"));
    }
    check_account(&arn.account).map_err(|_| bad("has no twelve-digit account id"))?;
    if arn.partition != partition {
        return Err(bad(&format!(
            "is in partition {}, not {partition} (--partition)",
            arn.partition
        )));
    }
    Ok(KmsKey {
        arn: text.to_owned(),
        region: arn.region,
    })
}

/// `--oidc-provider`: the cluster's IAM OIDC provider ARN; returns its host (and path), the
/// prefix of the condition keys.
pub fn check_oidc_provider(text: &str) -> Result<String, String> {
    let bad = |why: &str| {
        format!(
            "--oidc-provider {text:?} {why}; give the ARN of the cluster's IAM OIDC provider, such as \
             arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE \
             (aws eks describe-cluster shows the issuer; aws iam list-open-id-connect-providers the ARN)"
        )
    };
    let arn: Arn = text.parse().map_err(|_| bad("is not an ARN"))?;
    let host = arn
        .resource
        .strip_prefix("oidc-provider/")
        .unwrap_or_default();
    if arn.service != "iam" || host.is_empty() || host.contains(['*', '?', ':']) {
        return Err(bad("is not an OIDC provider ARN"));
    }
    check_account(&arn.account).map_err(|_| bad("has no twelve-digit account id"))?;
    Ok(host.to_owned())
}

/// `--service-account NAMESPACE/NAME`: both parts DNS labels or subdomains as Kubernetes names
/// them (lowercase letters, digits, `-` and `.`).
pub fn check_service_account(text: &str) -> Result<(String, String), String> {
    let name_ok = |part: &str| {
        !part.is_empty()
            && part.len() <= 253
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    match text.split_once('/') {
        Some((namespace, name)) if name_ok(namespace) && name_ok(name) => {
            Ok((namespace.to_owned(), name.to_owned()))
        }
        _ => Err(format!(
            "--service-account {text:?} is not NAMESPACE/NAME; give the service account the pod \
             runs as, such as secrets-demo/app"
        )),
    }
}

/// `us-east-1` as a `Sid` part: `UsEast1` (a `Sid` takes letters and digits only).
pub fn region_sid(region: &str) -> String {
    region
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// The account of an object named by name: `--account`, or an error saying to pass it.
fn account<'a>(target: &'a Target, object: &Object, name: &str) -> Result<&'a str, String> {
    target.account.as_deref().ok_or_else(|| {
        format!(
            "{}: {name:?} is a name, not an ARN, so its account is not known; pass --account \
             with the twelve-digit account id that holds it",
            object.label()
        )
    })
}

/// An ARN written in `objectName`, with a twelve-digit account (a policy needs one).
fn object_arn(object: &Object, name: &str) -> Result<Arn, String> {
    let arn: Arn = name
        .parse()
        .map_err(|problem| format!("{}: {problem}", object.label()))?;
    check_account(&arn.account).map_err(|_| {
        format!(
            "{}: the ARN {name:?} has no twelve-digit account id; write the account into the ARN",
            object.label()
        )
    })?;
    Ok(arn)
}

/// `arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME` for a parameter's name (its leading `/` not
/// doubled) or its ARN as written, and the region it is in. Selectors (`objectVersion`,
/// `objectVersionLabel`) are not part of the ARN.
pub fn parameter_arn(
    object: &Object,
    name: &str,
    region: &str,
    target: &Target,
) -> Result<(String, String), String> {
    if Arn::is_arn(name) {
        let arn = object_arn(object, name)?;
        return Ok((arn.region.clone(), arn.to_string()));
    }
    let account = account(target, object, name)?;
    let name = name.strip_prefix('/').unwrap_or(name);
    Ok((
        region.to_owned(),
        format!(
            "arn:{}:ssm:{region}:{account}:parameter/{name}",
            target.partition
        ),
    ))
}

/// The path of an `ssmparameterpath` object and everything under it:
/// `.../parameter/app/config` and `.../parameter/app/config/*`.
pub fn path_arns(
    object: &Object,
    path: &str,
    region: &str,
    target: &Target,
) -> Result<[String; 2], String> {
    let account = account(target, object, path)?;
    let below = path.trim_matches('/');
    let base = format!("arn:{}:ssm:{region}:{account}:parameter", target.partition);
    Ok(if below.is_empty() {
        [format!("{base}/"), format!("{base}/*")]
    } else {
        [format!("{base}/{below}"), format!("{base}/{below}/*")]
    })
}

/// Whether a secret ARN is complete: Secrets Manager ends every secret's ARN with `-` and six
/// random letters or digits. A partial ARN (the ARN without those) whose name itself ends that
/// way (`app/db-prod01`) is taken as complete: that is the heuristic's one blind spot, and
/// writing the complete ARN avoids it.
pub fn is_complete_secret_arn(arn: &str) -> bool {
    let Some((_, suffix)) = arn.rsplit_once('-') else {
        return false;
    };
    let name_start = arn.find(":secret:").map_or(0, |at| at + ":secret:".len());
    suffix.len() == 6
        && suffix.bytes().all(|b| b.is_ascii_alphanumeric())
        && arn.len() - 7 > name_start
}

/// The secret's ARN as IAM sees it on `GetSecretValue`: a complete ARN as written; a name or a
/// partial ARN with `-??????` for the six characters Secrets Manager appends. Returns the region
/// too.
pub fn secret_arn(
    object: &Object,
    name: &str,
    region: &str,
    target: &Target,
) -> Result<(String, String), String> {
    if Arn::is_arn(name) {
        let arn = object_arn(object, name)?;
        let text = arn.to_string();
        let resource = if is_complete_secret_arn(&text) {
            text
        } else {
            format!("{text}-??????")
        };
        return Ok((arn.region, resource));
    }
    let account = account(target, object, name)?;
    Ok((
        region.to_owned(),
        format!(
            "arn:{}:secretsmanager:{region}:{account}:secret:{name}-??????",
            target.partition
        ),
    ))
}

/// The secrets whose names start with `prefix`, as IAM sees them on `GetSecretValue`:
/// `arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:PREFIX*` (the `*` covers the rest of
/// each name and the six characters Secrets Manager appends).
pub fn prefix_arn(
    object: &Object,
    prefix: &str,
    region: &str,
    target: &Target,
) -> Result<String, String> {
    let account = account(target, object, prefix)?;
    Ok(format!(
        "arn:{}:secretsmanager:{region}:{account}:secret:{prefix}*",
        target.partition
    ))
}

/// What one object needs: the actions of its kind's fetch (and, when the pod refreshes, of its
/// change check: `DescribeSecret` for a secret) on its own name in the pod's region, and on its
/// `failoverObject`'s (or, for a kind that fails over whole, its own) in the failover region.
/// A secret prefix needs `ListSecrets` and `BatchGetSecretValue` on `*` (they take no resource)
/// and `GetSecretValue` on the prefix's secrets, only those with the object's tags.
pub fn object_grants(
    object: &Object,
    region: &str,
    failover_region: Option<&str>,
    refresh: bool,
    target: &Target,
) -> Result<Vec<Grant>, String> {
    let facts = object.object_type.facts();
    let mut places = vec![(object.name.as_str(), region)];
    if let Some(failover_region) = failover_region {
        if let Some(failover) = &object.failover {
            places.push((failover.name.as_str(), failover_region));
        } else if facts.failover_whole {
            places.push((object.name.as_str(), failover_region));
        }
    }
    let tags: Vec<(String, String)> = object
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut grants = Vec::new();
    for (name, region) in places {
        let grant = |action, region: &str, resource| Grant {
            action,
            region: region.to_owned(),
            resource,
            tags: Vec::new(),
        };
        // Where the values are, as IAM names them (with the region of an ARN as written).
        let resources: Vec<(String, String)> = match (facts.service, facts.directory) {
            (Service::Ssm, false) => vec![parameter_arn(object, name, region, target)?],
            (Service::Ssm, true) => path_arns(object, name, region, target)?
                .into_iter()
                .map(|arn| (region.to_owned(), arn))
                .collect(),
            (Service::SecretsManager, false) => vec![secret_arn(object, name, region, target)?],
            (Service::SecretsManager, true) => {
                vec![(region.to_owned(), prefix_arn(object, name, region, target)?)]
            }
        };
        for call in facts.actions(refresh) {
            if call.resourceless() {
                grants.push(grant(Action::from(call), "", "*".to_owned()));
                continue;
            }
            for (region, arn) in &resources {
                grants.push(Grant {
                    tags: tags.clone(),
                    ..grant(Action::from(call), region, arn.clone())
                });
            }
        }
    }
    Ok(grants)
}

/// Every grant the pods' objects need.
pub fn pod_grants<'a>(
    pods: impl IntoIterator<Item = &'a PodRequest>,
    target: &Target,
) -> Result<BTreeSet<Grant>, String> {
    let mut grants = BTreeSet::new();
    for pod in pods {
        check_region_partition(&pod.name, &pod.region, &target.partition)?;
        if let Some(failover) = &pod.failover_region {
            check_region_partition(&pod.name, failover, &target.partition)?;
        }
        for object in &pod.objects {
            let needed = object_grants(
                object,
                &pod.region,
                pod.failover_region.as_deref(),
                pod.refresh,
                target,
            )
            .map_err(|problem| format!("{}: {problem}", pod.name))?;
            grants.extend(needed);
        }
    }
    Ok(grants)
}

/// One statement per action, region and set of tags, resources sorted and unique, `Sid` =
/// action and region (`GetParametersUsEast1`; `ListSecrets` for an action on `*`), then
/// `Tags1`, `Tags2`... for the statements whose resources must carry tags, each tag a
/// `StringEquals` on `secretsmanager:ResourceTag/KEY`.
pub fn grant_statements(grants: &BTreeSet<Grant>) -> Vec<Statement> {
    type Key<'a> = (Action, &'a str, &'a [(String, String)]);
    let mut grouped: BTreeMap<Key<'_>, BTreeSet<&str>> = BTreeMap::new();
    for grant in grants {
        grouped
            .entry((grant.action, &grant.region, &grant.tags))
            .or_default()
            .insert(&grant.resource);
    }
    let mut tagged: BTreeMap<(Action, &str), usize> = BTreeMap::new();
    grouped
        .into_iter()
        .map(|((action, region, tags), resources)| {
            let mut sid = format!("{}{}", action.sid(), region_sid(region));
            if !tags.is_empty() {
                let n = tagged.entry((action, region)).or_default();
                *n += 1;
                sid.push_str(&format!("Tags{n}"));
            }
            Statement {
                sid,
                action,
                principal: None,
                resources: resources.into_iter().map(str::to_owned).collect(),
                conditions: tags
                    .iter()
                    .map(|(key, value)| Condition {
                        test: "StringEquals",
                        variable: format!("secretsmanager:ResourceTag/{key}"),
                        values: vec![value.clone()],
                    })
                    .collect(),
            }
        })
        .collect()
}

/// `kms:Decrypt` on the keys of each region the grants fetch in, only through the services
/// that fetch there (`kms:ViaService`). Keys of other regions are left to other documents.
pub fn kms_statements(
    grants: &BTreeSet<Grant>,
    keys: &[KmsKey],
    partition: &str,
) -> Vec<Statement> {
    let mut services: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for grant in grants {
        if let Some(service) = grant.action.decrypting_service() {
            services.entry(&grant.region).or_default().insert(service);
        }
    }
    let mut by_region: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for key in keys {
        if services.contains_key(key.region.as_str()) {
            by_region.entry(&key.region).or_default().insert(&key.arn);
        }
    }
    by_region
        .into_iter()
        .map(|(region, arns)| Statement {
            sid: format!("{}{}", Action::Decrypt.sid(), region_sid(region)),
            action: Action::Decrypt,
            principal: None,
            resources: arns.into_iter().map(str::to_owned).collect(),
            conditions: vec![Condition {
                test: "StringEquals",
                variable: "kms:ViaService".to_owned(),
                values: services[region]
                    .iter()
                    .map(|service| format!("{service}.{region}.{}", dns_suffix(partition)))
                    .collect(),
            }],
        })
        .collect()
}

/// Every key must be in a region some pod fetches in: a key elsewhere decrypts nothing the
/// injector reads.
pub fn check_kms_regions(keys: &[KmsKey], grants: &BTreeSet<Grant>) -> Result<(), String> {
    let regions: BTreeSet<&str> = grants
        .iter()
        .filter(|g| g.action.decrypting_service().is_some())
        .map(|g| g.region.as_str())
        .collect();
    match keys
        .iter()
        .find(|key| !regions.contains(key.region.as_str()))
    {
        None => Ok(()),
        Some(key) => Err(format!(
            "--kms-key {} is in region {}, where no pod fetches anything (they fetch in {}); \
             give the ARN of the key in a region they use (a multi-Region key has one per region)",
            key.arn,
            key.region,
            regions.into_iter().collect::<Vec<_>>().join(", ")
        )),
    }
}

/// A fetch document: the grants' statements, then the KMS statements.
pub fn fetch_document(grants: &BTreeSet<Grant>, keys: &[KmsKey], partition: &str) -> Document {
    let mut statements = grant_statements(grants);
    statements.extend(kms_statements(grants, keys, partition));
    Document { statements }
}

/// `sts:AssumeRole` on exactly the chained role. (`sts:TagSession` is not needed: the injector
/// passes no session tags.)
pub fn assume_role_statement(role: &str) -> Statement {
    Statement {
        sid: "AssumeChainedRole".to_owned(),
        action: Action::AssumeRole,
        principal: None,
        resources: vec![role.to_owned()],
        conditions: Vec::new(),
    }
}

/// The IRSA trust policy of the pod's role: the cluster's OIDC provider may give web identity
/// tokens of exactly this service account, for STS.
pub fn irsa_trust(provider_arn: &str, host: &str, namespace: &str, name: &str) -> Document {
    Document {
        statements: vec![Statement {
            sid: "ServiceAccountWebIdentity".to_owned(),
            action: Action::AssumeRoleWithWebIdentity,
            principal: Some(Principal {
                kind: "Federated",
                identifier: provider_arn.to_owned(),
            }),
            resources: Vec::new(),
            conditions: vec![
                Condition {
                    test: "StringEquals",
                    variable: format!("{host}:aud"),
                    values: vec!["sts.amazonaws.com".to_owned()],
                },
                Condition {
                    test: "StringEquals",
                    variable: format!("{host}:sub"),
                    values: vec![format!("system:serviceaccount:{namespace}:{name}")],
                },
            ],
        }],
    }
}

/// The trust policy of the chained role: the pod's role may assume it, with the external id
/// when the pods set one.
pub fn chained_trust(pod_role: &str, external_id: Option<&str>) -> Document {
    Document {
        statements: vec![Statement {
            sid: "PodRoleAssumes".to_owned(),
            action: Action::AssumeRole,
            principal: Some(Principal {
                kind: "AWS",
                identifier: pod_role.to_owned(),
            }),
            resources: Vec::new(),
            conditions: external_id
                .map(|id| Condition {
                    test: "StringEquals",
                    variable: "sts:ExternalId".to_owned(),
                    values: vec![id.to_owned()],
                })
                .into_iter()
                .collect(),
        }],
    }
}

/// The one chained role of the pods that assume one, and its external id. Pods that assume
/// different roles, or the same role with different external ids, need separate runs.
pub fn chained_role(pods: &[PodRequest]) -> Result<Option<AssumeRole>, String> {
    let roles: BTreeSet<(&str, Option<&str>)> = pods
        .iter()
        .filter_map(|pod| pod.assume_role.as_ref())
        .map(|role| (role.role.as_str(), role.external_id.as_deref()))
        .collect();
    let mut roles = roles.into_iter();
    let first = roles.next();
    if let Some(other) = roles.next() {
        let (first_role, _) = first.unwrap_or_default();
        let why = if first_role == other.0 {
            format!("role {first_role} with different external ids (or with and without one)")
        } else {
            format!("different roles ({first_role} and {})", other.0)
        };
        return Err(format!(
            "the pods assume {why}; a policy is for one role: run webhook policy on each \
             workload's manifests separately"
        ));
    }
    Ok(first.map(|(role, external_id)| AssumeRole {
        role: role.to_owned(),
        external_id: external_id.map(str::to_owned),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrets_injector_objects::plan::parse;
    use secrets_injector_objects::settings::Settings;

    const ACCOUNT: &str = "111122223333";

    fn target() -> Target {
        Target {
            partition: "aws".to_owned(),
            account: Some(ACCOUNT.to_owned()),
        }
    }

    fn objects(yaml: &str, region: &str, failover: Option<&str>) -> Vec<Object> {
        let mut settings = Settings::new(region);
        settings.failover_region = failover.map(str::to_owned);
        parse(yaml, settings).expect("valid objects").objects
    }

    fn pod(yaml: &str) -> PodRequest {
        PodRequest {
            name: "Pod app (document 1)".to_owned(),
            region: "us-east-1".to_owned(),
            failover_region: None,
            objects: objects(yaml, "us-east-1", None),
            refresh: false,
            assume_role: None,
        }
    }

    fn resources(grants: &BTreeSet<Grant>, action: Action) -> Vec<&str> {
        grants
            .iter()
            .filter(|g| g.action == action)
            .map(|g| g.resource.as_str())
            .collect()
    }

    #[test]
    fn parameter_names_get_the_account_and_one_slash() {
        let objs = objects(
            "- {objectName: /test/parameter, objectType: ssmparameter}\n\
             - {objectName: plain, objectType: ssmparameter, objectVersion: 3}\n",
            "us-east-1",
            None,
        );
        let t = target();
        assert_eq!(
            parameter_arn(&objs[0], &objs[0].name, "us-east-1", &t).unwrap(),
            (
                "us-east-1".to_owned(),
                "arn:aws:ssm:us-east-1:111122223333:parameter/test/parameter".to_owned()
            )
        );
        // The version selector is not part of the ARN.
        assert_eq!(
            parameter_arn(&objs[1], &objs[1].name, "us-east-1", &t)
                .unwrap()
                .1,
            "arn:aws:ssm:us-east-1:111122223333:parameter/plain"
        );
    }

    #[test]
    fn parameter_arns_keep_their_own_account_and_partition() {
        let arn = "arn:aws:ssm:us-east-1:444455556666:parameter/shared/db";
        let objs = objects(&format!("- objectName: {arn}\n"), "us-east-1", None);
        let t = Target {
            partition: "aws".to_owned(),
            account: None,
        };
        assert_eq!(
            parameter_arn(&objs[0], arn, "us-east-1", &t).unwrap(),
            ("us-east-1".to_owned(), arn.to_owned())
        );
        let cn = "arn:aws-cn:ssm:cn-north-1:444455556666:parameter/db";
        let objs = objects(&format!("- objectName: {cn}\n"), "cn-north-1", None);
        assert_eq!(parameter_arn(&objs[0], cn, "cn-north-1", &t).unwrap().1, cn);
    }

    #[test]
    fn partitions_shape_names() {
        let objs = objects(
            "- {objectName: /db, objectType: ssmparameter}\n- {objectName: db, objectType: secretsmanager}\n",
            "us-gov-west-1",
            None,
        );
        let t = Target {
            partition: "aws-us-gov".to_owned(),
            account: Some(ACCOUNT.to_owned()),
        };
        assert_eq!(
            parameter_arn(&objs[0], "/db", "us-gov-west-1", &t)
                .unwrap()
                .1,
            "arn:aws-us-gov:ssm:us-gov-west-1:111122223333:parameter/db"
        );
        assert_eq!(
            secret_arn(&objs[1], "db", "us-gov-west-1", &t).unwrap().1,
            "arn:aws-us-gov:secretsmanager:us-gov-west-1:111122223333:secret:db-??????"
        );
        assert_eq!(partition_of("cn-northwest-1"), "aws-cn");
        assert_eq!(partition_of("us-gov-east-1"), "aws-us-gov");
        assert_eq!(partition_of("eu-west-1"), "aws");
        assert_eq!(partition_of("us-isob-east-1"), "aws-iso-b");
        let err = check_region_partition("Pod p", "cn-north-1", "aws").unwrap_err();
        assert_eq!(
            err,
            "Pod p: region cn-north-1 is in partition aws-cn, not aws; pass --partition aws-cn"
        );
        assert!(check_region_partition("Pod p", "cn-north-1", "aws-cn").is_ok());
    }

    #[test]
    fn a_name_without_account_asks_for_the_flag() {
        let objs = objects(
            "- {objectName: /a, objectType: ssmparameter}\n",
            "us-east-1",
            None,
        );
        let t = Target {
            partition: "aws".to_owned(),
            account: None,
        };
        let err = parameter_arn(&objs[0], "/a", "us-east-1", &t).unwrap_err();
        assert!(err.contains("objects[0] (objectName \"/a\")"), "{err}");
        assert!(err.contains("pass --account"), "{err}");
        let err = path_arns(&objs[0], "/a", "us-east-1", &t).unwrap_err();
        assert!(err.contains("pass --account"), "{err}");
        let err = secret_arn(&objs[0], "s", "us-east-1", &t).unwrap_err();
        assert!(err.contains("pass --account"), "{err}");
    }

    #[test]
    fn an_arn_without_account_is_an_error() {
        let arn = "arn:aws:ssm:us-east-1::parameter/a";
        let objs = objects(&format!("- objectName: {arn}\n"), "us-east-1", None);
        let err = parameter_arn(&objs[0], arn, "us-east-1", &target()).unwrap_err();
        assert!(err.contains("no twelve-digit account id"), "{err}");
    }

    #[test]
    fn paths_cover_the_path_and_what_is_under_it() {
        let objs = objects(
            "- {objectName: /app/config/, objectType: ssmparameterpath, objectAlias: config}\n",
            "us-east-1",
            None,
        );
        assert_eq!(
            path_arns(&objs[0], &objs[0].name, "us-east-1", &target()).unwrap(),
            [
                "arn:aws:ssm:us-east-1:111122223333:parameter/app/config",
                "arn:aws:ssm:us-east-1:111122223333:parameter/app/config/*"
            ]
        );
        assert_eq!(
            path_arns(&objs[0], "/", "us-east-1", &target()).unwrap(),
            [
                "arn:aws:ssm:us-east-1:111122223333:parameter/",
                "arn:aws:ssm:us-east-1:111122223333:parameter/*"
            ]
        );
        // The injector calls only GetParametersByPath for them.
        let grants = pod_grants(
            [&pod(
                "- {objectName: /app/config, objectType: ssmparameterpath, objectAlias: config}\n",
            )],
            &target(),
        )
        .unwrap();
        assert!(
            grants
                .iter()
                .all(|g| g.action == Action::GetParametersByPath)
        );
        assert_eq!(grants.len(), 2);
    }

    #[test]
    fn a_secret_prefix_lists_and_batches_on_star_and_reads_the_tagged_prefix() {
        let mut p = pod(
            "- {objectName: prod/payments/, objectType: secretsmanagerpath, objectAlias: p, \
               tags: {team: payments, env: prod}}\n\
             - {objectName: prod/shared/, objectType: secretsmanagerpath, objectAlias: s}\n\
             - {objectName: test/secret, objectType: secretsmanager}\n",
        );
        p.refresh = true;
        let grants = pod_grants([&p], &target()).unwrap();
        let statements = grant_statements(&grants);
        let summary: Vec<(&str, &str, Vec<&str>)> = statements
            .iter()
            .map(|s| {
                (
                    s.sid.as_str(),
                    s.action.iam(),
                    s.resources.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "GetSecretValueUsEast1",
                    "secretsmanager:GetSecretValue",
                    vec![
                        "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/shared/*",
                        "arn:aws:secretsmanager:us-east-1:111122223333:secret:test/secret-??????"
                    ]
                ),
                (
                    "GetSecretValueUsEast1Tags1",
                    "secretsmanager:GetSecretValue",
                    vec!["arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/payments/*"]
                ),
                (
                    "DescribeSecretUsEast1",
                    "secretsmanager:DescribeSecret",
                    vec!["arn:aws:secretsmanager:us-east-1:111122223333:secret:test/secret-??????"]
                ),
                ("ListSecrets", "secretsmanager:ListSecrets", vec!["*"]),
                (
                    "BatchGetSecretValue",
                    "secretsmanager:BatchGetSecretValue",
                    vec!["*"]
                ),
            ]
        );
        // One condition per tag, on the tagged prefix's statement only.
        let conditions: Vec<(&str, &str, &str)> = statements[1]
            .conditions
            .iter()
            .map(|c| (c.test, c.variable.as_str(), c.values[0].as_str()))
            .collect();
        assert_eq!(
            conditions,
            [
                ("StringEquals", "secretsmanager:ResourceTag/env", "prod"),
                (
                    "StringEquals",
                    "secretsmanager:ResourceTag/team",
                    "payments"
                ),
            ]
        );
        assert!(
            statements
                .iter()
                .filter(|s| s.sid != statements[1].sid)
                .all(|s| s.conditions.is_empty())
        );
    }

    #[test]
    fn a_secret_prefix_fails_over_whole_and_two_tag_sets_get_two_statements() {
        let yaml = "- {objectName: a/, objectType: secretsmanagerpath, objectAlias: a, tags: {t: '1'}}\n\
                    - {objectName: b/, objectType: secretsmanagerpath, objectAlias: b, tags: {t: '2'}}\n";
        let mut p = pod("- {objectName: /x, objectType: ssmparameter}\n");
        p.failover_region = Some("us-west-2".to_owned());
        p.objects = objects(yaml, "us-east-1", Some("us-west-2"));
        let grants = pod_grants([&p], &target()).unwrap();
        let sids: Vec<String> = grant_statements(&grants)
            .into_iter()
            .map(|s| s.sid)
            .collect();
        assert_eq!(
            sids,
            [
                "GetSecretValueUsEast1Tags1",
                "GetSecretValueUsEast1Tags2",
                "GetSecretValueUsWest2Tags1",
                "GetSecretValueUsWest2Tags2",
                "ListSecrets",
                "BatchGetSecretValue"
            ]
        );
        assert!(
            resources(&grants, Action::GetSecretValue)
                .contains(&"arn:aws:secretsmanager:us-west-2:111122223333:secret:b/*")
        );
        // No KMS statement for the actions on "*": the keys decrypt through GetSecretValue's
        // regions.
        let key = check_kms_key("arn:aws:kms:us-east-1:111122223333:key/k", "aws").unwrap();
        let kms = kms_statements(&grants, &[key], "aws");
        assert_eq!(kms.len(), 1);
        assert_eq!(
            kms[0].conditions[0].values,
            ["secretsmanager.us-east-1.amazonaws.com"]
        );
        // A prefix needs the account, as a name does.
        let t = Target {
            partition: "aws".to_owned(),
            account: None,
        };
        let err = pod_grants([&p], &t).unwrap_err();
        assert!(err.contains("pass --account"), "{err}");
    }

    #[test]
    fn secret_suffix_heuristic() {
        assert!(is_complete_secret_arn(
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbC123"
        ));
        for partial in [
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db",
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbC12",
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbC1234",
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbC_12",
            // The name alone is no complete ARN: something must come before the suffix.
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:-AbC123",
        ] {
            assert!(!is_complete_secret_arn(partial), "{partial}");
        }
        let complete = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbC123";
        let partial = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db";
        let objs = objects(
            &format!(
                "- objectName: {complete}\n- objectName: {partial}\n- {{objectName: test/secret, objectType: secretsmanager}}\n"
            ),
            "us-east-1",
            None,
        );
        let t = target();
        assert_eq!(
            secret_arn(&objs[0], complete, "us-east-1", &t).unwrap().1,
            complete
        );
        assert_eq!(
            secret_arn(&objs[1], partial, "us-east-1", &t).unwrap().1,
            format!("{partial}-??????")
        );
        assert_eq!(
            secret_arn(&objs[2], "test/secret", "us-east-1", &t)
                .unwrap()
                .1,
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:test/secret-??????"
        );
    }

    #[test]
    fn failover_objects_are_granted_in_the_failover_region() {
        let yaml = "- objectName: /db\n  objectType: ssmparameter\n  objectAlias: db\n  failoverObject: {objectName: /db-west}\n\
                    - objectName: s\n  objectType: secretsmanager\n  objectAlias: s\n  failoverObject: {objectName: s-west}\n";
        let mut p = pod("- {objectName: /x, objectType: ssmparameter}\n");
        p.failover_region = Some("us-west-2".to_owned());
        p.objects = objects(yaml, "us-east-1", Some("us-west-2"));
        let grants = pod_grants([&p], &target()).unwrap();
        let statements = grant_statements(&grants);
        let sids: Vec<&str> = statements.iter().map(|s| s.sid.as_str()).collect();
        assert_eq!(
            sids,
            [
                "GetParametersUsEast1",
                "GetParametersUsWest2",
                "GetSecretValueUsEast1",
                "GetSecretValueUsWest2"
            ]
        );
        assert_eq!(
            statements[1].resources,
            ["arn:aws:ssm:us-west-2:111122223333:parameter/db-west"]
        );
        assert_eq!(
            statements[3].resources,
            ["arn:aws:secretsmanager:us-west-2:111122223333:secret:s-west-??????"]
        );
    }

    #[test]
    fn refresh_adds_describe_secret_on_the_same_arns() {
        let yaml = "- {objectName: test/secret, objectType: secretsmanager}\n- {objectName: /p, objectType: ssmparameter}\n";
        let mut p = pod(yaml);
        let without = pod_grants([&p], &target()).unwrap();
        assert!(resources(&without, Action::DescribeSecret).is_empty());
        p.refresh = true;
        let with = pod_grants([&p], &target()).unwrap();
        assert_eq!(
            resources(&with, Action::DescribeSecret),
            resources(&with, Action::GetSecretValue)
        );
        assert_eq!(resources(&with, Action::DescribeSecret).len(), 1);
    }

    #[test]
    fn kms_keys_decrypt_only_via_the_services_used_in_their_region() {
        let mut p = pod("- {objectName: s, objectType: secretsmanager}\n");
        p.failover_region = Some("us-west-2".to_owned());
        p.objects = objects(
            "- objectName: /db\n  objectType: ssmparameter\n  objectAlias: db\n  failoverObject: {objectName: /db}\n\
             - {objectName: s, objectType: secretsmanager}\n",
            "us-east-1",
            Some("us-west-2"),
        );
        let grants = pod_grants([&p], &target()).unwrap();
        let key = |region: &str, id: &str| {
            check_kms_key(
                &format!("arn:aws:kms:{region}:111122223333:key/{id}"),
                "aws",
            )
            .unwrap()
        };
        let keys = [
            key("us-west-2", "k3"),
            key("us-east-1", "k2"),
            key("us-east-1", "k1"),
            key("us-east-1", "k1"),
        ];
        check_kms_regions(&keys, &grants).unwrap();
        let statements = kms_statements(&grants, &keys, "aws");
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0].sid, "DecryptUsEast1");
        assert_eq!(
            statements[0].resources,
            [
                "arn:aws:kms:us-east-1:111122223333:key/k1",
                "arn:aws:kms:us-east-1:111122223333:key/k2"
            ]
        );
        assert_eq!(
            statements[0].conditions,
            [Condition {
                test: "StringEquals",
                variable: "kms:ViaService".to_owned(),
                values: vec![
                    "secretsmanager.us-east-1.amazonaws.com".to_owned(),
                    "ssm.us-east-1.amazonaws.com".to_owned()
                ],
            }]
        );
        assert_eq!(statements[1].sid, "DecryptUsWest2");
        assert_eq!(
            statements[1].conditions[0].values,
            ["ssm.us-west-2.amazonaws.com"]
        );
        let err = check_kms_regions(&[key("eu-west-1", "k")], &grants).unwrap_err();
        assert!(
            err.contains("is in region eu-west-1, where no pod fetches anything (they fetch in us-east-1, us-west-2)"),
            "{err}"
        );
        // China's endpoints have their own DNS suffix.
        let cn = BTreeSet::from([Grant {
            action: Action::GetParameters,
            region: "cn-north-1".to_owned(),
            resource: "arn:aws-cn:ssm:cn-north-1:111122223333:parameter/x".to_owned(),
            tags: Vec::new(),
        }]);
        let cn_key =
            check_kms_key("arn:aws-cn:kms:cn-north-1:111122223333:key/k", "aws-cn").unwrap();
        assert_eq!(
            kms_statements(&cn, &[cn_key], "aws-cn")[0].conditions[0].values,
            ["ssm.cn-north-1.amazonaws.com.cn"]
        );
    }

    #[test]
    fn statements_are_sorted_unique_and_named() {
        let a = pod(
            "- {objectName: /b, objectType: ssmparameter}\n- {objectName: /a, objectType: ssmparameter}\n- {objectName: s, objectType: secretsmanager}\n",
        );
        let b = pod("- {objectName: /a, objectType: ssmparameter}\n");
        let grants = pod_grants([&a, &b], &target()).unwrap();
        let document = fetch_document(&grants, &[], "aws");
        assert_eq!(document.statements.len(), 2);
        assert_eq!(document.statements[0].sid, "GetParametersUsEast1");
        assert_eq!(document.statements[0].action.iam(), "ssm:GetParameters");
        assert_eq!(
            document.statements[0].resources,
            [
                "arn:aws:ssm:us-east-1:111122223333:parameter/a",
                "arn:aws:ssm:us-east-1:111122223333:parameter/b"
            ]
        );
        assert_eq!(document.statements[1].sid, "GetSecretValueUsEast1");
        assert_eq!(region_sid("us-gov-west-1"), "UsGovWest1");
        // The same input in another order gives the same document.
        assert_eq!(
            fetch_document(&pod_grants([&b, &a], &target()).unwrap(), &[], "aws"),
            document
        );
    }

    #[test]
    fn flags_are_checked() {
        assert_eq!(check_account("111122223333").unwrap(), "111122223333");
        for bad in ["11112222333", "1111222233334", "11112222333x", ""] {
            let err = check_account(bad).unwrap_err();
            assert!(err.contains("twelve digits"), "{err}");
        }
        assert!(check_partition("aws-cn").is_ok());
        let err = check_partition("aws-mars").unwrap_err();
        assert!(
            err.contains("not an AWS partition; use one of aws-cn"),
            "{err}"
        );

        let key = check_kms_key(
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "aws",
        )
        .unwrap();
        assert_eq!(key.region, "us-east-1");
        for (bad, why) in [
            ("key/1234", "is not an ARN"),
            (
                "arn:aws:s3:us-east-1:111122223333:key/x",
                "names service \"s3\"",
            ),
            (
                "arn:aws:kms:us-east-1:111122223333:alias/app",
                "is an alias",
            ),
            (
                "arn:aws:kms:us-east-1:111122223333:key/",
                "does not name one key",
            ),
            (
                "arn:aws:kms:us-east-1:111122223333:key/*",
                "does not name one key",
            ),
            ("arn:aws:kms::111122223333:key/k", "no valid region"),
            ("arn:aws:kms:us-east-1:1111:key/k", "twelve-digit account"),
            (
                "arn:aws-cn:kms:cn-north-1:111122223333:key/k",
                "partition aws-cn, not aws",
            ),
        ] {
            let err = check_kms_key(bad, "aws").unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.starts_with(&format!("--kms-key {bad:?}")), "{err}");
        }

        assert!(check_role_arn("arn:aws:iam::111122223333:role/path/x", "r").is_ok());
        for bad in [
            "role/x",
            "arn:aws:iam::111122223333:user/x",
            "arn:aws:iam::111122223333:role/*",
            "arn:aws:iam:us-east-1:111122223333:role/x",
            "arn:aws:iam::1:role/x",
        ] {
            let err = check_role_arn(bad, "--pod-role-arn").unwrap_err();
            assert!(err.starts_with("--pod-role-arn"), "{err}");
        }

        let provider =
            "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC";
        assert_eq!(
            check_oidc_provider(provider).unwrap(),
            "oidc.eks.us-east-1.amazonaws.com/id/ABC"
        );
        for bad in [
            "oidc.eks",
            "arn:aws:iam::111122223333:role/x",
            "arn:aws:iam::111122223333:oidc-provider/",
        ] {
            assert!(
                check_oidc_provider(bad)
                    .unwrap_err()
                    .contains("--oidc-provider")
            );
        }

        assert_eq!(
            check_service_account("secrets-demo/app").unwrap(),
            ("secrets-demo".to_owned(), "app".to_owned())
        );
        for bad in ["app", "/app", "ns/", "NS/app", "ns/a/b"] {
            assert!(
                check_service_account(bad)
                    .unwrap_err()
                    .contains("NAMESPACE/NAME"),
                "{bad}"
            );
        }
    }

    #[test]
    fn assume_role_statement_is_exact() {
        let role = "arn:aws:iam::444455556666:role/reader";
        let statement = assume_role_statement(role);
        assert_eq!(statement.action.iam(), "sts:AssumeRole");
        assert_eq!(statement.resources, [role]);
        assert!(statement.conditions.is_empty());
    }

    #[test]
    fn one_chained_role_per_run() {
        let role = |arn: &str, id: Option<&str>| {
            let mut p = pod("- {objectName: /a, objectType: ssmparameter}\n");
            p.assume_role = Some(AssumeRole {
                role: arn.to_owned(),
                external_id: id.map(str::to_owned),
            });
            p
        };
        let plain = pod("- {objectName: /a, objectType: ssmparameter}\n");
        let a = "arn:aws:iam::444455556666:role/a";
        assert_eq!(chained_role(std::slice::from_ref(&plain)).unwrap(), None);
        let chained = chained_role(&[role(a, Some("x")), plain.clone(), role(a, Some("x"))])
            .unwrap()
            .unwrap();
        assert_eq!(chained.role, a);
        assert_eq!(chained.external_id.as_deref(), Some("x"));
        let err = chained_role(&[
            role(a, None),
            role("arn:aws:iam::444455556666:role/b", None),
        ])
        .unwrap_err();
        assert!(err.contains("different roles"), "{err}");
        let err = chained_role(&[role(a, None), role(a, Some("x"))]).unwrap_err();
        assert!(err.contains("different external ids"), "{err}");
    }

    #[test]
    fn trust_policies() {
        let provider =
            "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC";
        let doc = irsa_trust(
            provider,
            "oidc.eks.us-east-1.amazonaws.com/id/ABC",
            "ns",
            "app",
        );
        let statement = &doc.statements[0];
        assert_eq!(statement.action.iam(), "sts:AssumeRoleWithWebIdentity");
        assert_eq!(
            statement.principal,
            Some(Principal {
                kind: "Federated",
                identifier: provider.to_owned()
            })
        );
        assert!(statement.resources.is_empty());
        let conditions: Vec<(&str, &str)> = statement
            .conditions
            .iter()
            .map(|c| (c.variable.as_str(), c.values[0].as_str()))
            .collect();
        assert_eq!(
            conditions,
            [
                (
                    "oidc.eks.us-east-1.amazonaws.com/id/ABC:aud",
                    "sts.amazonaws.com"
                ),
                (
                    "oidc.eks.us-east-1.amazonaws.com/id/ABC:sub",
                    "system:serviceaccount:ns:app"
                )
            ]
        );

        let pod_role = "arn:aws:iam::111122223333:role/app";
        let doc = chained_trust(pod_role, Some("ext-1"));
        let statement = &doc.statements[0];
        assert_eq!(statement.action, Action::AssumeRole);
        assert_eq!(statement.principal.as_ref().unwrap().kind, "AWS");
        assert_eq!(statement.principal.as_ref().unwrap().identifier, pod_role);
        assert_eq!(statement.conditions[0].variable, "sts:ExternalId");
        assert_eq!(statement.conditions[0].values, ["ext-1"]);
        assert!(
            chained_trust(pod_role, None).statements[0]
                .conditions
                .is_empty()
        );
    }
}
