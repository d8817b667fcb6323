//! The SSM and Secrets Manager clients of one region, and the credentials behind them.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// The clients of one region. Both come from one `SdkConfig`, so they share its credentials
/// cache: the default chain (web identity, EKS Pod Identity, ...) is asked once per region.
pub struct Clients {
    pub region: String,
    pub ssm: aws_sdk_ssm::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Clients {
    /// The region comes from the flags, never from the environment; endpoints
    /// (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`) and credentials come from the
    /// environment as the SDK reads them.
    pub async fn load(region: &str) -> Clients {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(20))
                    .build(),
            )
            .load()
            .await;
        // Our own loop retries these calls (see retry.rs); the STS client behind the
        // credentials keeps the SDK's standard retry from `config`.
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
