//! AWS clients of one region, and what an SDK error means for retries, failover and the report.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::ecs::EcsCredentialsProvider;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::web_identity_token::WebIdentityTokenCredentialsProvider;
use aws_credential_types::provider::error::CredentialsError;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::{Error, Kind};

/// The clients of one region. Both come from one `SdkConfig`, so they share its credentials
/// cache: the credentials chain (see [`credentials_chain`]) is asked once per region.
pub struct Clients {
    pub region: String,
    pub ssm: aws_sdk_ssm::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Clients {
    /// The region comes from the flags, never from the environment; endpoints
    /// (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`) come from the environment as the SDK
    /// reads them, and credentials only from [`credentials_chain`].
    pub async fn load(region: &str) -> Clients {
        let region = aws_config::Region::new(region.to_owned());
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(20))
            .build();
        let provider_config = ProviderConfig::without_region()
            .with_region(Some(region.clone()))
            .with_timeout_config(timeouts.clone());
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(region.clone())
            .timeout_config(timeouts)
            .credentials_provider(credentials_chain(&provider_config))
            .load()
            .await;
        // Our own loop retries these calls (see retry.rs); the STS client behind the
        // credentials keeps the SDK's standard retry.
        let ssm = aws_sdk_ssm::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .build();
        let secrets = aws_sdk_secretsmanager::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .build();
        Clients {
            region: region.to_string(),
            ssm: aws_sdk_ssm::Client::from_conf(ssm),
            secrets: aws_sdk_secretsmanager::Client::from_conf(secrets),
        }
    }
}

/// The only places the injector takes credentials from, in this order: static keys the pod
/// put in its own environment, its web identity (IRSA), its container credentials (EKS Pod
/// Identity). Never the shared config files (they can name any command as a
/// `credential_process`) and never the node's instance role (IMDS).
fn credentials_chain(config: &ProviderConfig) -> CredentialsProviderChain {
    CredentialsProviderChain::first_try(
        "Environment",
        EnvironmentVariableCredentialsProvider::new(),
    )
    .or_else(
        "WebIdentityToken",
        WebIdentityTokenCredentialsProvider::builder()
            .configure(config)
            .build(),
    )
    .or_else(
        "EcsContainer",
        EcsCredentialsProvider::builder().configure(config).build(),
    )
}

/// Why the pod has no AWS identity the injector may use, from its environment as `var` reads
/// it: none of static keys, a web identity or container credentials is set. Checked before any
/// call, so a pod without one fails at once instead of at the deadline.
pub fn missing_identity(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    let set = |name: &str| var(name).is_some_and(|value| !value.is_empty());
    let static_keys = set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY");
    let web_identity = set("AWS_ROLE_ARN") && set("AWS_WEB_IDENTITY_TOKEN_FILE");
    let container = (set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        && set("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"))
        || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    if static_keys || web_identity || container {
        return None;
    }
    Some(
        "NoIdentity: the pod has no AWS identity: neither AWS_ROLE_ARN with \
         AWS_WEB_IDENTITY_TOKEN_FILE (an IAM role for the service account, IRSA) nor \
         AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE (an EKS \
         Pod Identity association) is set in its environment; annotate the pod's service \
         account with eks.amazonaws.com/role-arn, or create a Pod Identity association for it \
         (the injector never uses the node's instance role, nor credentials from shared config \
         files)"
            .to_owned(),
    )
}

/// An SDK error reduced to what the injector acts on. `message` is AWS's own text (it names
/// resources and actions, never values), or the transport error chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: String,
    pub message: String,
    pub kind: Kind,
}

impl Failure {
    /// The failure as an error carrying AWS's code and message; the callers word the hint
    /// for each object once the retries are over.
    pub fn into_raw(self) -> Error {
        Error::object(self.code, self.message, self.kind)
    }
}

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "TooManyUpdates",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "PriorRequestNotComplete",
    "LimitExceededException",
];

const NOT_FOUND: &[&str] = &[
    "ParameterNotFound",
    "ParameterVersionNotFound",
    "ResourceNotFoundException",
];

const DENIED: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ExpiredTokenException",
    "ExpiredToken",
    "IncompleteSignature",
    "MissingAuthenticationToken",
];

/// STS answers to AssumeRoleWithWebIdentity that no retry can change: an expired or rejected
/// token, or a role that does not trust it.
const FINAL_CREDENTIAL_CODES: &[&str] = &[
    "ExpiredToken",
    "InvalidIdentityToken",
    "IDPRejectedClaim",
    "AccessDenied",
    "InvalidClientTokenId",
];

/// Classifies a service answer by its code, message and HTTP status.
pub fn classify_service(code: Option<&str>, message: Option<&str>, status: u16) -> Failure {
    let message = message.unwrap_or_default().to_owned();
    let kind = match code {
        Some(c) if THROTTLING.contains(&c) => Kind::Throttled,
        _ if message.contains("Rate exceeded") => Kind::Throttled,
        _ if status >= 500 => Kind::Transient,
        Some(c) if NOT_FOUND.contains(&c) => Kind::NotFound,
        Some(c) if DENIED.contains(&c) => Kind::Denied,
        _ if status == 403 => Kind::Denied,
        _ => Kind::Final,
    };
    let code = match code {
        Some(c) if !c.is_empty() => c.to_owned(),
        _ => format!("HTTP{status}"),
    };
    Failure {
        code,
        message,
        kind,
    }
}

/// Classifies any SDK error of an SSM or Secrets Manager call.
pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ServiceError(service) => classify_service(
            service.err().code(),
            service.err().message(),
            service.raw().status().as_u16(),
        ),
        SdkError::TimeoutError(_) => transport("Timeout", err, Kind::Transient),
        SdkError::ResponseError(_) => transport("ResponseError", err, Kind::Transient),
        SdkError::DispatchFailure(dispatch) => {
            if let Some(credentials) = find_credentials_error(err) {
                let failure = transport("CredentialsError", err, Kind::Transient);
                let kind = match credentials {
                    CredentialsError::CredentialsNotLoaded(_)
                    | CredentialsError::InvalidConfiguration(_) => Kind::Final,
                    // STS refused the token itself: asking again cannot help.
                    _ if FINAL_CREDENTIAL_CODES
                        .iter()
                        .any(|code| failure.message.contains(code)) =>
                    {
                        Kind::Final
                    }
                    _ => Kind::Transient,
                };
                Failure { kind, ..failure }
            } else if dispatch.is_timeout() {
                transport("Timeout", err, Kind::Transient)
            } else if dispatch.is_user() {
                transport("RequestError", err, Kind::Final)
            } else {
                transport("NetworkError", err, Kind::Transient)
            }
        }
        _ => transport("RequestError", err, Kind::Final),
    }
}

fn transport(code: &str, err: &(dyn std::error::Error + 'static), kind: Kind) -> Failure {
    Failure {
        code: code.to_owned(),
        message: error_chain(err),
        kind,
    }
}

fn find_credentials_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a CredentialsError> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<CredentialsError>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// Every message of the source chain, joined with ": ", at most 400 bytes. Display only:
/// the Debug forms of SDK errors carry raw HTTP responses.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    let mut joined = parts.join(": ");
    if joined.len() > 400 {
        let mut cut = 400;
        while !joined.is_char_boundary(cut) {
            cut -= 1;
        }
        joined.truncate(cut);
        joined.push_str("...");
    }
    joined
}

/// The partition of a region, for the ARNs in the hints.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("eu-isoe-") {
        "aws-iso-e"
    } else if region.starts_with("us-isof-") {
        "aws-iso-f"
    } else {
        "aws"
    }
}

/// The resource ARN an AccessDenied message names ("... on resource: arn:..."), if any.
pub fn denied_resource(message: &str) -> Option<&str> {
    let after = &message[message.find("resource: ")?..];
    let rest = &after[after.find("arn:")?..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == ',' || c == '"' || c == '\'')
        .unwrap_or(rest.len());
    Some(rest[..end].trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_is_recognised_by_code_or_message() {
        let f = classify_service(Some("ThrottlingException"), Some("Rate exceeded"), 400);
        assert_eq!(f.kind, Kind::Throttled);
        assert_eq!(f.code, "ThrottlingException");
        assert_eq!(
            classify_service(Some("TooManyUpdates"), None, 400).kind,
            Kind::Throttled
        );
        assert_eq!(
            classify_service(Some("Whatever"), Some("Rate exceeded"), 400).kind,
            Kind::Throttled
        );
    }

    #[test]
    fn server_errors_are_transient_and_keep_a_code() {
        let f = classify_service(None, None, 503);
        assert_eq!(f.kind, Kind::Transient);
        assert_eq!(f.code, "HTTP503");
        assert_eq!(
            classify_service(Some("InternalServerError"), None, 500).kind,
            Kind::Transient
        );
    }

    #[test]
    fn not_found_and_denied_are_final_kinds() {
        assert_eq!(
            classify_service(Some("ResourceNotFoundException"), None, 400).kind,
            Kind::NotFound
        );
        assert_eq!(
            classify_service(Some("ParameterVersionNotFound"), None, 400).kind,
            Kind::NotFound
        );
        assert_eq!(
            classify_service(Some("AccessDeniedException"), None, 400).kind,
            Kind::Denied
        );
        assert_eq!(classify_service(None, None, 403).kind, Kind::Denied);
        assert_eq!(
            classify_service(Some("ValidationException"), Some("bad name"), 400).kind,
            Kind::Final
        );
    }

    #[test]
    fn partitions_follow_the_region() {
        assert_eq!(partition("us-east-1"), "aws");
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
    }

    #[test]
    fn denied_resource_is_taken_from_the_aws_message() {
        let m = "User: arn:aws:sts::1:assumed-role/app/x is not authorized to perform: \
                 ssm:GetParameters on resource: arn:aws:ssm:us-east-1:1:parameter/app/db because \
                 no identity-based policy allows the ssm:GetParameters action";
        // The first ARN is the caller; the resource comes after "on resource: ".
        assert_eq!(
            denied_resource(m),
            Some("arn:aws:ssm:us-east-1:1:parameter/app/db")
        );
        assert_eq!(
            denied_resource("User: arn:aws:sts::1:x is not authorized"),
            None
        );
    }

    #[test]
    fn error_chain_joins_sources_and_caps_length() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("dispatch failure")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("connection refused"));
        assert_eq!(error_chain(&e), "dispatch failure: connection refused");
        let long = Outer(std::io::Error::other("x".repeat(1000)));
        assert!(error_chain(&long).len() <= 403);
    }

    #[test]
    fn an_identity_is_web_identity_container_credentials_or_static_keys() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        for enough in [
            &[
                ("AWS_ROLE_ARN", "arn:aws:iam::1:role/app"),
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"),
            ][..],
            &[
                (
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    "http://169.254.170.23/v1/credentials",
                ),
                ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/t"),
            ],
            &[(
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "/v2/credentials/x",
            )],
            &[
                ("AWS_ACCESS_KEY_ID", "AKIA"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
            ],
        ] {
            assert_eq!(missing_identity(env(enough)), None, "{enough:?}");
        }
        for missing in [
            &[][..],
            &[("AWS_ROLE_ARN", "arn:aws:iam::1:role/app")],
            &[("AWS_WEB_IDENTITY_TOKEN_FILE", "/t"), ("AWS_ROLE_ARN", "")],
            &[(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://169.254.170.23/v1/credentials",
            )],
            &[("AWS_ACCESS_KEY_ID", "AKIA")],
            &[("AWS_CONFIG_FILE", "/c"), ("AWS_PROFILE", "p")],
        ] {
            let message = missing_identity(env(missing)).expect("no identity");
            assert!(
                message.contains("eks.amazonaws.com/role-arn")
                    && message.contains("Pod Identity association"),
                "{message}"
            );
        }
    }
}
