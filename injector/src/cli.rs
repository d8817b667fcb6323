//! The command line the webhook writes into the init container (see the webhook's injector args).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrets_injector_objects::arn::check_role_arn;
use secrets_injector_objects::assume_role::{
    DEFAULT_DURATION_SECONDS, check_external_id, parse_duration_seconds,
};
use secrets_injector_objects::kind::{
    DEFAULT_MAX_SECRETS_PER_OBJECT, parse_max_secrets_per_object,
};
use secrets_injector_objects::refresh::{Interval, RefreshUrl, Signal};

#[derive(Debug, Parser)]
#[command(
    name = "injector",
    version,
    about = "Fetches SSM parameters and Secrets Manager secrets under the pod's own AWS identity \
             and writes them as files",
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The flags of a one-time run (the init container); `None` only with a subcommand.
    #[command(flatten)]
    pub once: Option<Common>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Keeps the files current while the pod runs (the refresh sidecar): re-reads the objects
    /// every interval and swaps in a new generation when a value changed.
    Refresh(Refresh),
}

#[derive(Debug, Args)]
pub struct Refresh {
    #[command(flatten)]
    pub common: Common,

    /// How often to re-read the objects: a whole number and s, m or h ("90s", "5m", "1h").
    #[arg(long, env = "SECRETS_INJECTOR_REFRESH_INTERVAL", value_parser = Interval::parse)]
    pub interval: Interval,

    /// After each update, send this signal to the processes of this name ("SIGHUP nginx").
    #[arg(long, env = "SECRETS_INJECTOR_REFRESH_SIGNAL", value_parser = Signal::parse)]
    pub signal: Option<Signal>,

    /// After each update, POST with an empty body to this loopback URL.
    #[arg(long, env = "SECRETS_INJECTOR_REFRESH_URL", value_parser = RefreshUrl::parse)]
    pub url: Option<RefreshUrl>,
}

/// The flags the init container and the refresh sidecar share.
#[derive(Debug, Args)]
pub struct Common {
    /// The secrets-injector.io/objects annotation text (YAML or JSON list of objects).
    /// A YAML list starts with "- ", so values that look like flags are taken as they are.
    #[arg(long, env = "SECRETS_INJECTOR_OBJECTS", allow_hyphen_values = true)]
    pub objects: String,

    /// The secrets-injector.io/templates annotation text (YAML or JSON list of templates): files
    /// rendered from the objects' values, written with them.
    #[arg(long, env = "SECRETS_INJECTOR_TEMPLATES", allow_hyphen_values = true)]
    pub templates: Option<String>,

    /// Directory the files are written to (the pod's emptyDir); its contents are replaced.
    #[arg(long, env = "SECRETS_INJECTOR_MOUNT_PATH")]
    pub mount_path: PathBuf,

    /// Region of names that are not ARNs.
    #[arg(long, env = "SECRETS_INJECTOR_REGION")]
    pub region: String,

    /// Region of the failoverObject entries.
    #[arg(long, env = "SECRETS_INJECTOR_FAILOVER_REGION")]
    pub failover_region: Option<String>,

    /// One character that replaces '/' in file names, or "False" for subdirectories.
    #[arg(long, env = "SECRETS_INJECTOR_PATH_TRANSLATION", default_value = "_")]
    pub path_translation: String,

    /// Default mode of every file, four octal digits.
    #[arg(long, env = "SECRETS_INJECTOR_FILE_PERMISSION", default_value = "0644")]
    pub file_permission: String,

    /// Also write this file with one NAME='value' line per top-level file named like an env variable.
    #[arg(long, env = "SECRETS_INJECTOR_ENV_FILE")]
    pub env_file: Option<String>,

    /// Time allowed for the whole run, retries included ("120s", "2m", "500ms").
    #[arg(long, env = "SECRETS_INJECTOR_DEADLINE", default_value = "120s", value_parser = parse_duration)]
    pub deadline: Duration,

    /// Where the failure message goes for `kubectl describe pod`; skipped when not writable.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_TERMINATION_LOG",
        default_value = "/dev/termination-log"
    )]
    pub termination_log: PathBuf,

    /// Copy secrets-env into this directory (the pod's secrets-injector-bin volume) for the
    /// containers whose command runs it; the webhook sets it for env-containers.
    #[arg(long, env = "SECRETS_INJECTOR_SECRETS_ENV_DIR")]
    pub secrets_env_dir: Option<PathBuf>,

    /// The secrets-env to copy; default: secrets-env beside the injector's own executable.
    #[arg(long, env = "SECRETS_INJECTOR_SECRETS_ENV_SOURCE")]
    pub secrets_env_source: Option<PathBuf>,

    /// Assume this IAM role (STS AssumeRole, with the pod's own credentials) before fetching.
    #[arg(long, env = "SECRETS_INJECTOR_ASSUME_ROLE_ARN", value_parser = parse_role_arn)]
    pub assume_role_arn: Option<String>,

    /// The external id the role's trust policy asks for.
    #[arg(long, env = "SECRETS_INJECTOR_ASSUME_ROLE_EXTERNAL_ID", requires = "assume_role_arn", value_parser = parse_external_id)]
    pub assume_role_external_id: Option<String>,

    /// Length of the assumed role's session, 900 to 3600 seconds.
    #[arg(long, env = "SECRETS_INJECTOR_ASSUME_ROLE_DURATION_SECONDS", requires = "assume_role_arn",
          default_value_t = DEFAULT_DURATION_SECONDS, value_parser = parse_duration_seconds)]
    pub assume_role_duration_seconds: u32,

    /// Most secrets one secretsmanagerpath object may find; more fails that object.
    #[arg(long, env = "SECRETS_INJECTOR_MAX_SECRETS_PER_OBJECT", default_value_t = DEFAULT_MAX_SECRETS_PER_OBJECT,
          value_parser = parse_max_secrets_per_object)]
    pub max_secrets_per_object: usize,

    /// Log format; the level comes from RUST_LOG (default info).
    #[arg(long, env = "SECRETS_INJECTOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

fn parse_role_arn(text: &str) -> Result<String, String> {
    check_role_arn(text, "--assume-role-arn")
}

fn parse_external_id(text: &str) -> Result<String, String> {
    check_external_id(text).map(|()| text.to_owned())
}

/// A positive whole number followed by one unit: "ms", "s", "m" or "h".
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit; write it like 120s, 2m or 500ms"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| {
        format!("{text:?} does not start with a number; write it like 120s, 2m or 500ms")
    })?;
    let duration = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => {
            return Err(format!(
                "{text:?} has the unknown unit {unit:?}; use ms, s, m or h"
            ));
        }
    };
    if duration.is_zero() {
        return Err(format!("{text:?} is zero; the run needs some time"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn bad_durations_say_how_to_write_them() {
        assert!(parse_duration("120").unwrap_err().contains("has no unit"));
        assert!(
            parse_duration("s")
                .unwrap_err()
                .contains("does not start with a number")
        );
        assert!(
            parse_duration("3d")
                .unwrap_err()
                .contains("unknown unit \"d\"")
        );
        assert!(parse_duration("0s").unwrap_err().contains("is zero"));
        assert!(
            parse_duration("1.5s")
                .unwrap_err()
                .contains("unknown unit \".5s\"")
        );
    }

    fn once(args: &[&str]) -> Common {
        let cli = Cli::try_parse_from(args).unwrap();
        assert!(cli.command.is_none());
        cli.once.expect("the flags of a one-time run")
    }

    #[test]
    fn flags_have_the_contract_defaults() {
        Cli::command().debug_assert();
        let cli = once(&[
            "injector",
            "--objects",
            "- objectName: x",
            "--mount-path",
            "/mnt/secrets-store",
            "--region",
            "us-east-1",
        ]);
        assert_eq!(cli.path_translation, "_");
        assert_eq!(cli.file_permission, "0644");
        assert_eq!(cli.deadline, Duration::from_secs(120));
        assert_eq!(cli.termination_log, PathBuf::from("/dev/termination-log"));
        assert_eq!(cli.log_format, LogFormat::Json);
        assert_eq!(cli.failover_region, None);
        assert_eq!(cli.env_file, None);
        assert_eq!(cli.templates, None);
        assert_eq!(cli.secrets_env_dir, None);
        assert_eq!(cli.secrets_env_source, None);
        assert_eq!(cli.assume_role_arn, None);
        assert_eq!(cli.assume_role_external_id, None);
        assert_eq!(cli.assume_role_duration_seconds, 3600);
    }

    /// The webhook writes each flag as one `--flag=value` word: a value that looks like a flag
    /// stays a value.
    #[test]
    fn flag_equals_value_words_keep_flag_like_values() {
        let cli = once(&[
            "injector",
            "--mount-path=/mnt/secrets-store",
            "--region=us-east-1",
            "--env-file=--mount-path=/etc",
            "--templates=- name: --region=x",
            "--objects=- objectName: x",
        ]);
        assert_eq!(cli.templates.as_deref(), Some("- name: --region=x"));
        assert_eq!(cli.env_file.as_deref(), Some("--mount-path=/etc"));
        assert_eq!(cli.mount_path, PathBuf::from("/mnt/secrets-store"));
        assert_eq!(cli.objects, "- objectName: x");
    }

    #[test]
    fn missing_required_flag_is_a_usage_error() {
        let err = Cli::try_parse_from(["injector", "--region", "us-east-1"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--objects"));
    }

    #[test]
    fn refresh_takes_the_same_flags_plus_interval_and_notifications() {
        let cli = Cli::try_parse_from([
            "injector",
            "refresh",
            "--mount-path=/mnt/secrets-store",
            "--region=us-east-1",
            "--objects=- objectName: x",
            "--interval=5m",
            "--signal=SIGHUP nginx",
            "--url=http://127.0.0.1:9090/-/reload",
        ])
        .unwrap();
        let Some(Command::Refresh(refresh)) = cli.command else {
            panic!("no refresh subcommand");
        };
        assert_eq!(refresh.common.objects, "- objectName: x");
        assert_eq!(refresh.common.deadline, Duration::from_secs(120));
        assert_eq!(refresh.interval.duration(), Duration::from_secs(300));
        assert_eq!(refresh.signal.unwrap().to_string(), "SIGHUP nginx");
        assert_eq!(
            refresh.url.unwrap().to_string(),
            "http://127.0.0.1:9090/-/reload"
        );
    }

    #[test]
    fn refresh_needs_a_valid_interval() {
        let base = [
            "injector",
            "refresh",
            "--mount-path=/m",
            "--region=us-east-1",
            "--objects=- objectName: x",
        ];
        let err = Cli::try_parse_from(base).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--interval"), "{err}");
        let err = Cli::try_parse_from([&base[..], &["--interval=5d"]].concat()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("has no unit"), "{err}");
        let err = Cli::try_parse_from(
            [&base[..], &["--interval=1s", "--url=http://example.com/"]].concat(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
    }
}
