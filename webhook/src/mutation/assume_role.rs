//! Role chaining (SPEC "Pod annotations": `assume-role-arn`, `assume-role-external-id`,
//! `assume-role-duration-seconds`): checked here, passed to the injector as flags; the injector
//! assumes the role with the pod's own credentials before fetching.

use serde_json::Value;

use secrets_injector_objects::annotations::{
    ASSUME_ROLE_ARN, ASSUME_ROLE_DURATION_SECONDS, ASSUME_ROLE_EXTERNAL_ID,
};
use secrets_injector_objects::arn::check_role_arn;
use secrets_injector_objects::assume_role::{check_external_id, parse_duration_seconds};
use secrets_injector_objects::class;

use crate::pod;

/// The injector's flags for a SecretProviderClass's role chaining (`assumeRoleArn`,
/// `assumeRoleExternalId`, `assumeRoleDurationSeconds`, checked when the class was read).
pub fn class_args(role: &class::AssumeRole) -> Vec<String> {
    let mut args = vec![format!("--assume-role-arn={}", role.arn)];
    args.extend(
        role.external_id
            .as_ref()
            .map(|id| format!("--assume-role-external-id={id}")),
    );
    args.extend(
        role.duration_seconds
            .map(|seconds| format!("--assume-role-duration-seconds={seconds}")),
    );
    args
}

/// The injector's flags for the pod's role chaining (none without `assume-role-arn`); a problem
/// for each annotation that is not valid, or that means nothing without the role.
pub fn injector_args(pod: &Value, problems: &mut Vec<String>) -> Vec<String> {
    let external_id = pod::annotation(pod, ASSUME_ROLE_EXTERNAL_ID);
    let duration = pod::annotation(pod, ASSUME_ROLE_DURATION_SECONDS);
    let Some(role) = pod::annotation(pod, ASSUME_ROLE_ARN) else {
        for (name, value) in [
            (ASSUME_ROLE_EXTERNAL_ID, external_id),
            (ASSUME_ROLE_DURATION_SECONDS, duration),
        ] {
            if value.is_some() {
                problems.push(format!(
                    "annotation {name} means nothing without {ASSUME_ROLE_ARN}; set the role to \
                     assume, or remove it"
                ));
            }
        }
        return Vec::new();
    };
    let mut args = Vec::new();
    match check_role_arn(role, &format!("annotation {ASSUME_ROLE_ARN}")) {
        Ok(role) => args.push(format!("--assume-role-arn={role}")),
        Err(message) => problems.push(message),
    }
    if let Some(id) = external_id {
        match check_external_id(id) {
            Ok(()) => args.push(format!("--assume-role-external-id={id}")),
            Err(message) => problems.push(format!(
                "annotation {ASSUME_ROLE_EXTERNAL_ID}: the value {message}"
            )),
        }
    }
    if let Some(text) = duration {
        match parse_duration_seconds(text) {
            Ok(seconds) => args.push(format!("--assume-role-duration-seconds={seconds}")),
            Err(message) => problems.push(format!(
                "annotation {ASSUME_ROLE_DURATION_SECONDS}: {message}"
            )),
        }
    }
    args
}
