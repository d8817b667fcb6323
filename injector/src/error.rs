//! The injector's one error type. Messages name objects, codes, regions and IAM actions; they
//! never hold a parameter or secret value.

use std::path::PathBuf;
use std::time::Duration;

/// What a failed fetch means for retries, failover and `optional`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The name, version or label does not exist: final, and what `optional` forgives.
    NotFound,
    /// The role may not read it: final.
    Denied,
    /// Throttled: retried; failover once the retries are exhausted.
    Throttled,
    /// 5xx, network or timeout: retried; failover once the retries are exhausted.
    Transient,
    /// Anything else (bad request, value that does not fit the object): final.
    Final,
}

impl Kind {
    /// Whether a failure of this kind in the primary region is fetched again in the failover region.
    pub fn fails_over(self) -> bool {
        matches!(self, Kind::Throttled | Kind::Transient)
    }
}

/// An AWS answer or transport failure as it came: the code, AWS's own text (it names resources
/// and actions, never values) or the transport's error chain, and what it means. A service
/// module turns it into an [`Error::Object`] with a hint once the retries are over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: String,
    pub message: String,
    pub kind: Kind,
    /// Attempts made when the retries ran out (`None` when the failure was final at once).
    pub gave_up_after: Option<u32>,
}

impl Failure {
    pub fn new(code: impl Into<String>, message: impl Into<String>, kind: Kind) -> Self {
        Failure {
            code: code.into(),
            message: message.into(),
            kind,
            gave_up_after: None,
        }
    }

    /// AWS's message, with the number of attempts when the retries ran out.
    pub fn detail(&self) -> String {
        match self.gave_up_after {
            None => self.message.clone(),
            Some(n) if self.message.is_empty() => format!("(gave up after {n} attempts)"),
            Some(n) => format!("{} (gave up after {n} attempts)", self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A failed AWS call, not yet described for an object (see [`Failure`]).
    #[error("{}: {}", .0.code, .0.detail())]
    Aws(Failure),

    /// One object could not be fetched or turned into files.
    #[error("{code}: {hint}")]
    Object {
        code: String,
        hint: String,
        kind: Kind,
    },

    /// The run's `--deadline` passed before the object arrived.
    #[error("DeadlineExceeded: no answer within the --deadline of {}", humanize(*.0))]
    Deadline(Duration),

    /// Filesystem work in the mount directory failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    pub fn object(code: impl Into<String>, hint: impl Into<String>, kind: Kind) -> Self {
        Error::Object {
            code: code.into(),
            hint: hint.into(),
            kind,
        }
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// A copy of an error that is not a raw AWS failure, to report it for several objects.
    pub fn copy_other(&self) -> Error {
        match self {
            Error::Deadline(d) => Error::Deadline(*d),
            Error::Aws(failure) => Error::Aws(failure.clone()),
            other => Error::object("Error", other.to_string(), other.kind()),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Error::Aws(failure) => failure.kind,
            Error::Object { kind, .. } => *kind,
            Error::Deadline(_) | Error::Io { .. } => Kind::Final,
        }
    }
}

/// `hint`, then AWS's own message after a colon when it has one.
pub fn with_message(hint: String, message: &str) -> String {
    if message.is_empty() {
        hint
    } else {
        format!("{hint}: {message}")
    }
}

/// "120s", "1.5s", "500ms": the form the `--deadline` flag accepts.
pub fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throttling_and_transient_failures_fail_over() {
        assert!(Kind::Throttled.fails_over());
        assert!(Kind::Transient.fails_over());
        assert!(!Kind::NotFound.fails_over());
        assert!(!Kind::Denied.fails_over());
        assert!(!Kind::Final.fails_over());
    }

    #[test]
    fn object_error_shows_code_then_hint() {
        let e = Error::object(
            "ParameterNotFound",
            "does not exist in us-east-1",
            Kind::NotFound,
        );
        assert_eq!(
            e.to_string(),
            "ParameterNotFound: does not exist in us-east-1"
        );
        assert_eq!(e.kind(), Kind::NotFound);
    }

    #[test]
    fn an_aws_failure_shows_its_code_message_and_attempts() {
        let mut failure = Failure::new("ThrottlingException", "Rate exceeded", Kind::Throttled);
        assert_eq!(
            Error::Aws(failure.clone()).to_string(),
            "ThrottlingException: Rate exceeded"
        );
        failure.gave_up_after = Some(15);
        let error = Error::Aws(failure);
        assert_eq!(
            error.to_string(),
            "ThrottlingException: Rate exceeded (gave up after 15 attempts)"
        );
        assert_eq!(error.kind(), Kind::Throttled);
        assert_eq!(error.copy_other().to_string(), error.to_string());
    }

    #[test]
    fn deadline_names_the_flag_value() {
        let e = Error::Deadline(Duration::from_secs(120));
        assert_eq!(
            e.to_string(),
            "DeadlineExceeded: no answer within the --deadline of 120s"
        );
        assert_eq!(
            Error::Deadline(Duration::from_millis(1500)).to_string(),
            "DeadlineExceeded: no answer within the --deadline of 1500ms"
        );
    }
}
