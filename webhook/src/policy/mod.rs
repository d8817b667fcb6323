//! `webhook policy`: the least-privilege IAM policy a pod's role needs, from the pod's own
//! manifest. The pods are read as `webhook inject` reads them and resolved by the webhook's own
//! admission rules (`mutation::plans`), so the policy
//! grants exactly what the injector will call.

pub mod render;
pub mod statements;

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::ValueEnum;
use serde_json::Value;

use crate::mutation::{self, Classes, Context, CsiVolumes, DocumentClasses, MutationConfig};
use crate::{Error, Result, inject, pod};
use render::Role;
use statements::{AssumeRole, Document, KmsKey, PodRequest, Target};

/// SPEC's role chaining annotations (the policy for the chained role), and the refresh
/// annotation (the sidecar also calls `DescribeSecret`).
pub use secrets_injector_objects::annotations::{
    ASSUME_ROLE_ARN, ASSUME_ROLE_EXTERNAL_ID, REFRESH_INTERVAL,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Terraform,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleChoice {
    /// The pod's own role (its service account's).
    Pod,
    /// The role named by `secrets-injector.io/assume-role-arn`.
    Assumed,
}

/// `webhook policy` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct PolicyArgs {
    /// File of YAML or JSON documents; standard input when absent or "-".
    #[arg(short = 'f', long = "filename")]
    pub file: Option<PathBuf>,
    /// Account (twelve digits) of the objects named by name rather than ARN.
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// AWS partition of the ARNs written for names.
    #[arg(long, default_value = "aws")]
    pub partition: String,
    /// ARN of a customer-managed KMS key that encrypts some of the objects (repeatable).
    #[arg(long = "kms-key", value_name = "ARN")]
    pub kms_keys: Vec<String>,
    /// Output: IAM policy JSON, or Terraform aws_iam_policy_document data sources.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Region of pods that set none, as the webhook's --default-region.
    #[arg(long, value_name = "REGION", value_parser = crate::mutation::config::parse_region)]
    pub default_region: Option<String>,
    /// Print only this role's document; both, labelled, when the pods assume a role.
    #[arg(long, value_enum)]
    pub role: Option<RoleChoice>,
    /// Print the roles' trust policies instead of their permissions.
    #[arg(long)]
    pub trust: bool,
    /// With --trust: ARN of the cluster's IAM OIDC provider (IRSA).
    #[arg(long, value_name = "ARN", requires = "trust")]
    pub oidc_provider: Option<String>,
    /// With --trust: the pod's service account, NAMESPACE/NAME.
    #[arg(long, value_name = "NAMESPACE/NAME", requires = "trust")]
    pub service_account: Option<String>,
    /// With --trust: ARN of the pod's role, which the assumed role must trust.
    #[arg(long, value_name = "ARN", requires = "trust")]
    pub pod_role_arn: Option<String>,
}

/// The flags, checked.
struct Options {
    target: Target,
    kms_keys: Vec<KmsKey>,
}

fn options(args: &PolicyArgs) -> Result<Options> {
    let partition = statements::check_partition(&args.partition).map_err(Error::Policy)?;
    let account = args
        .account
        .as_deref()
        .map(statements::check_account)
        .transpose()
        .map_err(Error::Policy)?;
    let kms_keys = args
        .kms_keys
        .iter()
        .map(|key| statements::check_kms_key(key, &partition))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(Error::Policy)?;
    Ok(Options {
        target: Target { partition, account },
        kms_keys,
    })
}

/// The policy (or trust policy) for the pods in `input`, rendered as `args.format` says.
pub fn run(input: &str, args: &PolicyArgs) -> Result<String> {
    let options = options(args)?;
    let pods = read_pods(input, args.default_region.clone())?;
    if pods.is_empty() {
        return Err(Error::Policy(format!(
            "no pod in the input asks for objects (annotation {}); there is nothing to allow",
            secrets_injector_objects::annotations::OBJECTS
        )));
    }
    let chained = statements::chained_role(&pods).map_err(Error::Policy)?;
    let roles = roles(args.role, chained.as_ref())?;
    let documents = if args.trust {
        trust_documents(args, chained.as_ref(), &roles)?
    } else {
        let (pod_role, assumed) = permission_documents(&pods, &options, chained.as_ref())?;
        roles
            .iter()
            .map(|&role| match role {
                Role::Pod => (role, pod_role.clone()),
                Role::Assumed => (role, assumed.clone().unwrap_or_default()),
            })
            .collect()
    };
    Ok(match args.format {
        Format::Json => render::json(&documents),
        Format::Terraform => render::terraform(&documents, args.trust),
    })
}

/// Which documents to print: `--role`, else the pod's role and, when the pods assume one, the
/// assumed role too.
fn roles(choice: Option<RoleChoice>, chained: Option<&AssumeRole>) -> Result<Vec<Role>> {
    match (choice, chained) {
        (Some(RoleChoice::Pod), _) | (None, None) => Ok(vec![Role::Pod]),
        (Some(RoleChoice::Assumed), Some(_)) => Ok(vec![Role::Assumed]),
        (None, Some(_)) => Ok(vec![Role::Pod, Role::Assumed]),
        (Some(RoleChoice::Assumed), None) => Err(Error::Policy(format!(
            "--role assumed: no pod sets {ASSUME_ROLE_ARN}, so there is no assumed role; leave \
             --role out or use --role pod"
        ))),
    }
}

/// The pod role's document and, with role chaining, the assumed role's. Pods without
/// `assume-role-arn` fetch with the pod's role; the others with the assumed role, which the
/// pod's role may then only assume.
fn permission_documents(
    pods: &[PodRequest],
    options: &Options,
    chained: Option<&AssumeRole>,
) -> Result<(Document, Option<Document>)> {
    let partition = &options.target.partition;
    let direct = statements::pod_grants(
        pods.iter().filter(|p| p.assume_role.is_none()),
        &options.target,
    )
    .map_err(Error::Policy)?;
    let through = statements::pod_grants(
        pods.iter().filter(|p| p.assume_role.is_some()),
        &options.target,
    )
    .map_err(Error::Policy)?;
    let all: BTreeSet<_> = direct.union(&through).cloned().collect();
    statements::check_kms_regions(&options.kms_keys, &all).map_err(Error::Policy)?;
    let mut pod_role = statements::fetch_document(&direct, &options.kms_keys, partition);
    let assumed = chained.map(|chained| {
        pod_role
            .statements
            .push(statements::assume_role_statement(&chained.role));
        statements::fetch_document(&through, &options.kms_keys, partition)
    });
    Ok((pod_role, assumed))
}

/// The trust policies of the roles asked for.
fn trust_documents(
    args: &PolicyArgs,
    chained: Option<&AssumeRole>,
    roles: &[Role],
) -> Result<Vec<(Role, Document)>> {
    let missing = |flag: &str, why: &str| Error::Policy(format!("--trust needs {flag}: {why}"));
    roles
        .iter()
        .map(|&role| match role {
            Role::Pod => {
                let provider = args.oidc_provider.as_deref().ok_or_else(|| {
                    missing(
                        "--oidc-provider ARN",
                        "the pod's role trusts the cluster's IAM OIDC provider (IRSA)",
                    )
                })?;
                let account = args.service_account.as_deref().ok_or_else(|| {
                    missing(
                        "--service-account NAMESPACE/NAME",
                        "the pod's role trusts only the pod's service account",
                    )
                })?;
                let host = statements::check_oidc_provider(provider).map_err(Error::Policy)?;
                let (namespace, name) =
                    statements::check_service_account(account).map_err(Error::Policy)?;
                Ok((
                    role,
                    statements::irsa_trust(provider, &host, &namespace, &name),
                ))
            }
            Role::Assumed => {
                let pod_role = args.pod_role_arn.as_deref().ok_or_else(|| {
                    missing(
                        "--pod-role-arn ARN",
                        "the assumed role trusts the pod's role, which assumes it",
                    )
                })?;
                let pod_role = statements::check_role_arn(pod_role, "--pod-role-arn")
                    .map_err(Error::Policy)?;
                let external_id = chained.and_then(|c| c.external_id.as_deref());
                Ok((role, statements::chained_trust(&pod_role, external_id)))
            }
        })
        .collect()
}

/// Every pod and pod template of the input that asks for objects, resolved by the webhook's
/// admission rules; a template the webhook would deny is an error with its admission message.
/// The SecretProviderClasses of the input are read too: a pod that names one (annotation or
/// CSI volume) needs what the class lists, whether the injector or the CSI driver fetches it.
fn read_pods(input: &str, default_region: Option<String>) -> Result<Vec<PodRequest>> {
    let mut documents = inject::read_documents(input)?;
    let (classes, problems) = DocumentClasses::from_documents(&documents);
    if let Some(problem) = problems.into_iter().next() {
        return Err(Error::Input(problem));
    }
    let cfg = MutationConfig {
        default_region,
        secret_provider_classes: true,
        csi_volumes: CsiVolumes::Rewrite,
        classes: Classes(std::sync::Arc::new(classes)),
        ..MutationConfig::for_tests("policy")
    };
    let mut pods = Vec::new();
    inject::for_each_pod(&mut documents, &mut |pod, name, field| {
        let prefix = field.map(|f| format!("{f}: ")).unwrap_or_default();
        let denied = |message: String| Error::Denied {
            document: name.to_owned(),
            message: format!("{prefix}{message}"),
        };
        let ctx = Context {
            namespace: None,
            template: field.is_some(),
        };
        let plans = mutation::plans(pod, &ctx, &cfg).map_err(denied)?;
        for plan in &plans {
            pods.push(pod_request(pod, name, &prefix, plan)?);
        }
        Ok(())
    })?;
    Ok(pods)
}

fn pod_request(
    pod: &Value,
    name: &str,
    prefix: &str,
    plan: &secrets_injector_objects::Plan,
) -> Result<PodRequest> {
    let assume_role = pod::annotation(pod, ASSUME_ROLE_ARN)
        .map(|arn| {
            let role = statements::check_role_arn(arn, &format!("annotation {ASSUME_ROLE_ARN}"))
                .map_err(|message| Error::Denied {
                    document: name.to_owned(),
                    message: format!("{prefix}{message}"),
                })?;
            Ok::<_, Error>(AssumeRole {
                role,
                external_id: pod::annotation(pod, ASSUME_ROLE_EXTERNAL_ID).map(str::to_owned),
            })
        })
        .transpose()?;
    Ok(PodRequest {
        name: name.to_owned(),
        region: plan.settings.region.clone(),
        failover_region: plan.settings.failover_region.clone(),
        objects: plan.objects.clone(),
        refresh: pod::annotation(pod, REFRESH_INTERVAL).is_some_and(|v| !v.trim().is_empty()),
        assume_role,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: PolicyArgs,
    }

    fn args(flags: &[&str]) -> PolicyArgs {
        let mut argv = vec!["policy"];
        argv.extend_from_slice(flags);
        Cli::try_parse_from(argv).expect("valid flags").args
    }

    const SEEDS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: seeds-example
  annotations:
    secrets-injector.io/objects: |
      - objectName: "/test/parameter"
        objectType: "ssmparameter"
      - objectName: "test/secret"
        objectType: "secretsmanager"
        jmesPath:
          - path: "username"
            objectAlias: "SECRET_USERNAME"
spec:
  containers:
    - name: app
      image: busybox
      env:
        - {name: AWS_REGION, value: us-east-1}
"#;

    fn chained(extra: &str) -> String {
        format!(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  template:
    metadata:
      annotations:
        secrets-injector.io/region: eu-west-1
        secrets-injector.io/assume-role-arn: arn:aws:iam::444455556666:role/reader
        secrets-injector.io/objects: "- {{objectName: db, objectType: secretsmanager}}"
{extra}
    spec:
      containers: [{{name: app, image: app}}]
"#
        )
    }

    fn json(input: &str, flags: &[&str]) -> serde_json::Value {
        serde_json::from_str(&run(input, &args(flags)).expect("a policy")).expect("JSON")
    }

    #[test]
    fn the_seeds_example() {
        let policy = json(SEEDS, &["--account", "111122223333"]);
        assert_eq!(
            policy,
            serde_json::json!({
                "Version": "2012-10-17",
                "Statement": [
                    {"Sid": "GetParametersUsEast1", "Effect": "Allow", "Action": "ssm:GetParameters",
                     "Resource": ["arn:aws:ssm:us-east-1:111122223333:parameter/test/parameter"]},
                    {"Sid": "GetSecretValueUsEast1", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                     "Resource": ["arn:aws:secretsmanager:us-east-1:111122223333:secret:test/secret-??????"]}
                ]
            })
        );
    }

    /// The CSI driver's manifests (a class and a pod with a CSI volume, and a pod naming a class)
    /// need what their classes list.
    #[test]
    fn pods_of_secret_provider_classes() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/csi-driver/mypod_secrets_manager.yaml");
        let manifest = std::fs::read_to_string(path).expect("the CSI driver manifest");
        let policy = json(
            &manifest,
            &["--account", "111122223333", "--default-region", "us-east-1"],
        );
        assert_eq!(
            policy["Statement"],
            serde_json::json!([{"Sid": "GetSecretValueUsEast1", "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": ["arn:aws:secretsmanager:us-east-1:111122223333:secret:test/secret-??????"]}])
        );
        let named = format!(
            "{}---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: named\n  annotations:\n    \
             secrets-injector.io/secret-provider-class: aws-secrets-secrets-manager\nspec:\n  \
             containers: [{{name: app, image: app}}]\n",
            manifest.split("---").next().unwrap_or_default()
        );
        let policy = json(
            &named,
            &["--account", "111122223333", "--default-region", "us-east-1"],
        );
        assert_eq!(policy["Statement"][0]["Sid"], "GetSecretValueUsEast1");
        let missing = manifest.split("---").nth(1).unwrap_or_default();
        let err = run(missing, &args(&["--account", "111122223333"])).unwrap_err();
        assert!(
            err.to_string()
                .contains("SecretProviderClass \"aws-secrets-secrets-manager\" does not exist"),
            "{err}"
        );
    }

    #[test]
    fn region_comes_from_the_webhook_rules() {
        let no_region = SEEDS.replace("        - {name: AWS_REGION, value: us-east-1}\n", "");
        let no_region = no_region.replace("      env:\n", "");
        let err = run(&no_region, &args(&["--account", "111122223333"])).unwrap_err();
        assert!(err.to_string().contains("no region"), "{err}");
        let policy = json(
            &no_region,
            &["--account", "111122223333", "--default-region", "eu-west-1"],
        );
        assert_eq!(policy["Statement"][0]["Sid"], "GetParametersEuWest1");
    }

    #[test]
    fn denied_pods_are_errors_with_the_admission_message() {
        let bad = chained("").replace("objectType: secretsmanager", "objectType: secret");
        let err = run(&bad, &args(&["--account", "111122223333"])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("Deployment web (document 1): spec.template: "),
            "{text}"
        );
        assert!(
            text.contains("objectType \"secret\" is not known"),
            "{text}"
        );
    }

    #[test]
    fn pods_that_ask_for_nothing_contribute_nothing() {
        let other = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, image: a}]\n";
        let both = format!("{other}---\n{SEEDS}");
        assert_eq!(
            json(&both, &["--account", "111122223333"]),
            json(SEEDS, &["--account", "111122223333"])
        );
        let err = run(other, &args(&["--account", "111122223333"])).unwrap_err();
        assert!(
            err.to_string()
                .contains("no pod in the input asks for objects"),
            "{err}"
        );
    }

    #[test]
    fn missing_account_says_to_pass_it() {
        let err = run(SEEDS, &args(&[])).unwrap_err().to_string();
        assert!(
            err.contains("Pod seeds-example (document 1): objects[0]"),
            "{err}"
        );
        assert!(err.contains("pass --account"), "{err}");
    }

    #[test]
    fn bad_flags_are_errors() {
        for (flags, why) in [
            (&["--account", "12345"][..], "is not an AWS account id"),
            (
                &["--account", "111122223333", "--partition", "aws-moon"],
                "not an AWS partition",
            ),
            (
                &["--account", "111122223333", "--kms-key", "alias/x"],
                "--kms-key \"alias/x\"",
            ),
            (
                &[
                    "--account",
                    "111122223333",
                    "--kms-key",
                    "arn:aws:kms:eu-west-1:111122223333:key/k",
                ],
                "where no pod fetches anything",
            ),
            (
                &["--account", "111122223333", "--partition", "aws-cn"],
                "pass --partition aws",
            ),
            (
                &["--account", "111122223333", "--role", "assumed"],
                "no assumed role",
            ),
        ] {
            let err = run(SEEDS, &args(flags)).unwrap_err().to_string();
            assert!(err.contains(why), "{flags:?}: {err}");
        }
    }

    #[test]
    fn assume_role_splits_the_policy() {
        let input = format!("{}---\n{SEEDS}", chained(""));
        let both = json(
            &input,
            &[
                "--account",
                "111122223333",
                "--kms-key",
                "arn:aws:kms:eu-west-1:444455556666:key/k",
            ],
        );
        let pod_sids: Vec<&str> = both["podRole"]["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        // The seeds' pod fetches with the pod's role; the Deployment through the chained role.
        assert_eq!(
            pod_sids,
            [
                "GetParametersUsEast1",
                "GetSecretValueUsEast1",
                "AssumeChainedRole"
            ]
        );
        assert_eq!(
            both["podRole"]["Statement"][2]["Resource"],
            serde_json::json!(["arn:aws:iam::444455556666:role/reader"])
        );
        let assumed = &both["assumedRole"]["Statement"];
        assert_eq!(assumed[0]["Sid"], "GetSecretValueEuWest1");
        assert_eq!(
            assumed[0]["Resource"][0],
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:db-??????"
        );
        assert_eq!(assumed[1]["Sid"], "DecryptEuWest1");

        let pod_only = json(&input, &["--account", "111122223333", "--role", "pod"]);
        // The KMS key is in the assumed role's region only, so the pod role has no Decrypt.
        assert_eq!(pod_only, both["podRole"]);
        let assumed_only = json(
            &chained(""),
            &["--account", "111122223333", "--role", "assumed"],
        );
        assert_eq!(assumed_only["Statement"][0]["Sid"], "GetSecretValueEuWest1");
        // A pod role that only assumes: one statement.
        let only = json(
            &chained(""),
            &["--account", "111122223333", "--role", "pod"],
        );
        assert_eq!(only["Statement"].as_array().unwrap().len(), 1);
        assert_eq!(only["Statement"][0]["Action"], "sts:AssumeRole");

        let bad = chained("").replace("role/reader", "user/reader");
        let err = run(&bad, &args(&["--account", "111122223333"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("Deployment web (document 1): spec.template: annotation secrets-injector.io/assume-role-arn"),
            "{err}"
        );
    }

    #[test]
    fn refresh_interval_adds_describe_secret() {
        let input = SEEDS.replace(
            "  annotations:\n",
            "  annotations:\n    secrets-injector.io/refresh-interval: 5m\n",
        );
        let policy = json(&input, &["--account", "111122223333"]);
        let sids: Vec<&str> = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Sid"].as_str().unwrap())
            .collect();
        assert_eq!(
            sids,
            [
                "GetParametersUsEast1",
                "GetSecretValueUsEast1",
                "DescribeSecretUsEast1"
            ]
        );
        assert_eq!(
            policy["Statement"][2]["Resource"],
            policy["Statement"][1]["Resource"]
        );
    }

    #[test]
    fn trust_policies() {
        let provider =
            "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC";
        let trust = json(
            SEEDS,
            &[
                "--trust",
                "--oidc-provider",
                provider,
                "--service-account",
                "secrets-demo/app",
            ],
        );
        assert_eq!(
            trust["Statement"][0]["Condition"]["StringEquals"]["oidc.eks.us-east-1.amazonaws.com/id/ABC:sub"],
            serde_json::json!(["system:serviceaccount:secrets-demo:app"])
        );
        assert_eq!(trust["Statement"][0]["Principal"]["Federated"], provider);

        let input = chained("        secrets-injector.io/assume-role-external-id: ext-42");
        let both = json(
            &input,
            &[
                "--trust",
                "--oidc-provider",
                provider,
                "--service-account",
                "web/web",
                "--pod-role-arn",
                "arn:aws:iam::111122223333:role/web",
            ],
        );
        assert_eq!(
            both["podRole"]["Statement"][0]["Action"],
            "sts:AssumeRoleWithWebIdentity"
        );
        assert_eq!(
            both["assumedRole"]["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"],
            serde_json::json!(["ext-42"])
        );
        assert_eq!(
            both["assumedRole"]["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::111122223333:role/web"
        );

        for (flags, why) in [
            (
                &["--trust", "--service-account", "a/b"][..],
                "--trust needs --oidc-provider",
            ),
            (
                &["--trust", "--oidc-provider", provider],
                "--trust needs --service-account",
            ),
            (
                &["--trust", "--role", "assumed"],
                "--trust needs --pod-role-arn",
            ),
            (
                &["--trust", "--role", "assumed", "--pod-role-arn", "x"],
                "--pod-role-arn \"x\"",
            ),
        ] {
            let err = run(&input, &args(flags)).unwrap_err().to_string();
            assert!(err.contains(why), "{flags:?}: {err}");
        }
    }

    #[test]
    fn terraform_format() {
        let text = run(
            SEEDS,
            &args(&["--account", "111122223333", "--format", "terraform"]),
        )
        .unwrap();
        assert!(text.starts_with("data \"aws_iam_policy_document\" \"pod_role\" {\n  statement {\n    sid       = \"GetParametersUsEast1\"\n"), "{text}");
        assert!(text.contains("resources = [\"arn:aws:secretsmanager:us-east-1:111122223333:secret:test/secret-??????\"]"), "{text}");
    }
}
