//! Secrets Manager: one `GetSecretValue` per secret (the caller runs them concurrently).

use secrets_injector_objects::arn::Arn;

use crate::aws::{self, Clients};
use crate::call::{Call, Run, Target};
use crate::error::{Error, Failure, Kind, with_message};

/// The secret's value: `SecretString` as it is, `SecretBinary` as its raw bytes.
pub async fn get_secret_value(
    run: &Run,
    clients: &Clients,
    target: &Target<'_>,
) -> Result<Vec<u8>, Error> {
    let output = run
        .retry(Call::GetSecretValue, || {
            let request = clients
                .secrets
                .get_secret_value()
                .secret_id(target.name)
                .set_version_id(target.version.map(str::to_owned))
                .set_version_stage(target.label.map(str::to_owned));
            async move {
                request
                    .send()
                    .await
                    .map_err(|err| Error::Aws(aws::classify(&err)))
            }
        })
        .await
        .map_err(|error| describe(target, &clients.region, &error))?;
    if let Some(text) = output.secret_string {
        Ok(text.into_bytes())
    } else if let Some(blob) = output.secret_binary {
        Ok(blob.into_inner())
    } else {
        Err(Error::object(
            "EmptySecret",
            format!(
                "the secret version in {} has neither SecretString nor SecretBinary",
                clients.region
            ),
            Kind::Final,
        ))
    }
}

/// The stage `GetSecretValue` reads when the object names none.
const CURRENT: &str = "AWSCURRENT";

/// The id of the version that holds the target's stage (its `objectVersionLabel`, else
/// `AWSCURRENT`), from `DescribeSecret`: no value and no KMS decrypt, so the refresh asks this
/// first and reads the value only when the id changed.
pub async fn current_version(
    run: &Run,
    clients: &Clients,
    target: &Target<'_>,
) -> Result<String, Error> {
    let output = run
        .retry(Call::DescribeSecret, || {
            let request = clients.secrets.describe_secret().secret_id(target.name);
            async move {
                request
                    .send()
                    .await
                    .map_err(|err| Error::Aws(aws::classify(&err)))
            }
        })
        .await
        .map_err(|error| describe_as("DescribeSecret", target, &clients.region, &error))?;
    if output.deleted_date().is_some() {
        return Err(Error::object(
            "SecretMarkedForDeletion",
            format!(
                "the secret is scheduled for deletion in {}; restore it (RestoreSecret) or \
                 remove the object",
                clients.region
            ),
            Kind::Final,
        ));
    }
    let stage = target.label.unwrap_or(CURRENT);
    output
        .version_ids_to_stages()
        .into_iter()
        .flatten()
        .find(|(_, stages)| stages.iter().any(|s| s == stage))
        .map(|(id, _)| id.clone())
        .ok_or_else(|| {
            Error::object(
                "ResourceNotFoundException",
                format!(
                    "no version of the secret holds the stage {stage} in {}",
                    clients.region
                ),
                Kind::NotFound,
            )
        })
}

/// The ARN pattern an IAM policy must allow for `name` (Secrets Manager adds a random suffix
/// to secret ARNs, hence the `-*`).
fn secret_arn(name: &str, region: &str) -> String {
    if Arn::is_arn(name) {
        return name.to_owned();
    }
    format!(
        "arn:{}:secretsmanager:{region}:*:secret:{name}-*",
        aws::partition(region)
    )
}

/// A raw `GetSecretValue` failure as the report shows it: the code and what to do about it.
fn describe(target: &Target<'_>, region: &str, error: &Error) -> Error {
    describe_as("GetSecretValue", target, region, error)
}

/// A raw failure of the Secrets Manager `action` as the report shows it.
fn describe_as(action: &str, target: &Target<'_>, region: &str, error: &Error) -> Error {
    let Error::Aws(failure) = error else {
        return error.copy_other();
    };
    let Failure { code, kind, .. } = failure;
    let message = &failure.detail();
    let hint = match (kind, code.as_str()) {
        (Kind::NotFound, _) => format!("the secret, version or stage does not exist in {region}"),
        (Kind::Denied, _) => {
            let arn = aws::denied_resource(message)
                .map(str::to_owned)
                .unwrap_or_else(|| secret_arn(target.name, region));
            format!(
                "the role of this pod's service account needs secretsmanager:{action} on \
                 {arn} (and kms:Decrypt on the key of a secret with a customer-managed key)"
            )
        }
        (_, "DecryptionFailure") => with_message(
            "the role of this pod's service account needs kms:Decrypt on the secret's KMS key"
                .to_owned(),
            message,
        ),
        (Kind::Throttled, _) => with_message(
            format!("Secrets Manager in {region} kept throttling {action}"),
            message,
        ),
        (Kind::Transient, _) => with_message(
            format!("Secrets Manager in {region} did not answer {action}"),
            message,
        ),
        (Kind::Final, _) => with_message(format!("{action} failed in {region}"), message),
    };
    Error::object(code.clone(), hint, *kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrets_injector_objects::object::ObjectType;

    fn target(name: &str) -> Target<'_> {
        Target {
            object: 0,
            name,
            version: None,
            label: None,
            kind: ObjectType::SecretsManager,
            tags: &crate::call::NO_TAGS,
        }
    }

    #[test]
    fn not_found_names_the_region() {
        let raw = Error::Aws(Failure::new(
            "ResourceNotFoundException",
            "can't find",
            Kind::NotFound,
        ));
        assert_eq!(
            describe(&target("test/secret"), "us-west-2", &raw).to_string(),
            "ResourceNotFoundException: the secret, version or stage does not exist in us-west-2"
        );
    }

    #[test]
    fn denied_names_the_action_and_an_arn_pattern() {
        let raw = Error::Aws(Failure::new("AccessDeniedException", "", Kind::Denied));
        let e = describe(&target("test/secret"), "us-east-1", &raw);
        assert!(
            e.to_string().starts_with(
                "AccessDeniedException: the role of this pod's service account needs \
                 secretsmanager:GetSecretValue on arn:aws:secretsmanager:us-east-1:*:secret:test/secret-*"
            ),
            "{e}"
        );
        assert_eq!(e.kind(), Kind::Denied);
    }

    #[test]
    fn decryption_failure_asks_for_kms_decrypt() {
        let raw = Error::Aws(Failure::new(
            "DecryptionFailure",
            "key disabled",
            Kind::Final,
        ));
        assert_eq!(
            describe(&target("s"), "us-east-1", &raw).to_string(),
            "DecryptionFailure: the role of this pod's service account needs kms:Decrypt on \
             the secret's KMS key: key disabled"
        );
    }

    #[test]
    fn deadline_passes_through() {
        let raw = Error::Deadline(std::time::Duration::from_secs(5));
        let e = describe(&target("s"), "us-east-1", &raw);
        assert_eq!(
            e.to_string(),
            "DeadlineExceeded: no answer within the --deadline of 5s"
        );
    }

    #[test]
    fn arn_names_are_kept() {
        let arn = "arn:aws:secretsmanager:us-east-1:1:secret:x-AbCdEf";
        assert_eq!(secret_arn(arn, "us-east-1"), arn);
    }
}
