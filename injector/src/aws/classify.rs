//! What an SDK error means for retries, failover and the report: its code, AWS's own message and
//! its [`Kind`], kept as they came until a service module describes them for one object.

use aws_credential_types::provider::error::CredentialsError;
use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::{Failure, Kind};

/// Throttling codes beyond the SDK's own list (`THROTTLING_ERRORS`, which the SDK's retry uses):
/// Parameter Store answers `TooManyUpdates` when a parameter changes too often.
const MORE_THROTTLING: &[&str] = &["TooManyUpdates"];

fn is_throttling(code: &str) -> bool {
    THROTTLING_ERRORS.contains(&code) || MORE_THROTTLING.contains(&code)
}

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
        Some(c) if is_throttling(c) => Kind::Throttled,
        Some(c) if TRANSIENT_ERRORS.contains(&c) => Kind::Transient,
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
        gave_up_after: None,
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
    Failure::new(code, error_chain(err), kind)
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
    fn the_sdks_throttling_and_transient_codes_are_used() {
        for code in THROTTLING_ERRORS {
            assert_eq!(
                classify_service(Some(code), None, 400).kind,
                Kind::Throttled,
                "{code}"
            );
        }
        for code in TRANSIENT_ERRORS {
            assert_eq!(
                classify_service(Some(code), None, 400).kind,
                Kind::Transient,
                "{code}"
            );
        }
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
}
