//! The SSM and Secrets Manager clients of one region, and the only credentials behind them.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::SdkConfig;
use aws_config::ecs::EcsCredentialsProvider;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::web_identity_token::WebIdentityTokenCredentialsProvider;
use std::sync::Arc;

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use std::time::SystemTime;

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
    /// reads them, and credentials only from [`credentials_chain`]. `http` is the HTTPS client
    /// of every call, STS's included (see `trust`).
    /// `chained` replaces the chain: the credentials of a role the pod chains to (see
    /// [`ChainedRole`]), for every region.
    pub async fn load(
        region: &str,
        http: &SharedHttpClient,
        chained: Option<SharedCredentialsProvider>,
    ) -> Clients {
        let config = sdk_config(region, http, chained).await;
        // Our own loop retries these calls (see retry.rs); the STS client behind the
        // credentials keeps the SDK's standard retry.
        let ssm = aws_sdk_ssm::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .build();
        let secrets = aws_sdk_secretsmanager::config::Builder::from(&config)
            .retry_config(RetryConfig::disabled())
            .build();
        Clients {
            region: region.to_owned(),
            ssm: aws_sdk_ssm::Client::from_conf(ssm),
            secrets: aws_sdk_secretsmanager::Client::from_conf(secrets),
        }
    }
}

/// The SDK configuration of one region: credentials from [`credentials_chain`], or `chained`.
async fn sdk_config(
    region: &str,
    http: &SharedHttpClient,
    chained: Option<SharedCredentialsProvider>,
) -> SdkConfig {
    let region = aws_config::Region::new(region.to_owned());
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(20))
        .build();
    // The same timeouts everywhere: the HTTPS client keeps one connector per timeout setting.
    let provider_config = ProviderConfig::without_region()
        .with_region(Some(region.clone()))
        .with_timeout_config(timeouts.clone())
        .with_http_client(http.clone());
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region.clone())
        .timeout_config(timeouts)
        .http_client(http.clone());
    match chained {
        Some(provider) => loader.credentials_provider(provider),
        None => loader.credentials_provider(credentials_chain(&provider_config)),
    }
    .load()
    .await
}

/// The role a pod chains to (`assume-role-arn`): its ARN, the external id its trust policy may
/// ask for, and the session's length.
#[derive(Debug, Clone)]
pub struct AssumeRole {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub duration_seconds: u32,
}

/// The credentials of a chained role, assumed with the pod's own credentials when first asked
/// for and again when they are within [`RENEW_BEFORE`] of their end: the refresh sidecar outlives
/// a chained session (an hour at most). One provider serves every region, so a run assumes the
/// role once.
#[derive(Debug, Clone)]
pub struct ChainedRole {
    role: AssumeRole,
    region: String,
    http: SharedHttpClient,
    current: Arc<tokio::sync::Mutex<Option<Credentials>>>,
}

/// How long before their end chained credentials are replaced (the SDK's cache asks again
/// shortly before the end; earlier asks get the same credentials).
const RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

impl ChainedRole {
    /// STS is called in `region` (the primary one) through `http`.
    pub fn new(role: AssumeRole, region: &str, http: SharedHttpClient) -> ChainedRole {
        ChainedRole {
            role,
            region: region.to_owned(),
            http,
            current: Arc::default(),
        }
    }

    pub fn role_arn(&self) -> &str {
        &self.role.role_arn
    }

    /// The current credentials, assuming the role when there are none or they end soon.
    pub async fn credentials(&self) -> Result<Credentials, String> {
        let mut current = self.current.lock().await;
        if let Some(credentials) = current.as_ref() {
            let ends_soon = credentials
                .expiry()
                .is_some_and(|end| end <= SystemTime::now() + RENEW_BEFORE);
            if !ends_soon {
                return Ok(credentials.clone());
            }
        }
        let fresh = assume_role(&self.role, &self.region, &self.http).await?;
        *current = Some(fresh.clone());
        Ok(fresh)
    }

    pub fn provider(&self) -> SharedCredentialsProvider {
        SharedCredentialsProvider::new(self.clone())
    }
}

impl ProvideCredentials for ChainedRole {
    fn provide_credentials<'a>(&'a self) -> provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        provider::future::ProvideCredentials::new(async move {
            self.credentials()
                .await
                .map_err(CredentialsError::provider_error)
        })
    }
}

/// Assumes the role with the pod's own credentials (STS `AssumeRole` in `region`). `Err` names
/// the role, STS's code and message (never a credential) and what to check.
async fn assume_role(
    role: &AssumeRole,
    region: &str,
    http: &SharedHttpClient,
) -> Result<Credentials, String> {
    let config = sdk_config(region, http, None).await;
    let sts = aws_sdk_sts::Client::new(&config);
    let failed = |detail: String| {
        format!(
            "AssumeRoleFailed: cannot assume the role {} with the pod's own credentials: \
             {detail}; the pod's role needs sts:AssumeRole on it, and the role's trust policy \
             must allow the pod's role (with the sts:ExternalId the pod's \
             assume-role-external-id gives, when it asks for one)",
            role.role_arn
        )
    };
    let answer = sts
        .assume_role()
        .role_arn(&role.role_arn)
        .role_session_name(SESSION_NAME)
        .set_external_id(role.external_id.clone())
        .duration_seconds(i32::try_from(role.duration_seconds).unwrap_or(i32::MAX))
        .send()
        .await
        .map_err(|e| {
            // STS's code and message, or the status of an answer it could not read (never the
            // raw answer), or the transport's error chain.
            let detail = match (e.code(), e.raw_response()) {
                (Some(code), _) => format!("{code}: {}", e.message().unwrap_or_default()),
                (None, Some(raw)) => format!("HTTP {} from STS", raw.status().as_u16()),
                (None, None) => DisplayErrorContext(&e).to_string(),
            };
            failed(detail)
        })?;
    let keys = answer
        .credentials()
        .ok_or_else(|| failed("STS answered without credentials".to_owned()))?;
    let expiry = SystemTime::try_from(*keys.expiration()).ok();
    Ok(Credentials::new(
        keys.access_key_id(),
        keys.secret_access_key(),
        Some(keys.session_token().to_owned()),
        expiry,
        "AssumeRole",
    ))
}

/// The session name CloudTrail shows for the injector's calls under an assumed role.
const SESSION_NAME: &str = "secrets-injector";

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

#[cfg(test)]
mod tests {
    use super::*;

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
