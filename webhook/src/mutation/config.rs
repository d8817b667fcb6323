//! The mutation settings shared by `webhook serve` and `webhook inject`: what the init container
//! the webhook adds looks like when the pod does not say otherwise.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use secrets_injector_objects::refresh::Interval;

use super::classes::Classes;
use super::plan_cache::{PlanCache, TemplateCache};
use super::quantity::Quantity;
use crate::{Error, Result};

/// The user the init container runs as when the app container has no `runAsUser` of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectorUser {
    /// This user id (and group id).
    Id(i64),
    /// Leave `runAsUser`/`runAsGroup` unset, for platforms that assign user ids (OpenShift).
    Unset,
}

impl FromStr for InjectorUser {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "none" {
            return Ok(Self::Unset);
        }
        match text.parse::<i64>() {
            Ok(id) if (1..=i64::from(i32::MAX)).contains(&id) => Ok(Self::Id(id)),
            _ => Err(format!(
                "{text:?} is not a non-root user id; give a number from 1 to {} or \"none\"",
                i32::MAX
            )),
        }
    }
}

impl fmt::Display for InjectorUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "{id}"),
            Self::Unset => f.write_str("none"),
        }
    }
}

/// The mutation flags; each can also be set with the environment variable named after it.
#[derive(clap::Args, Clone, Debug)]
pub struct MutationConfig {
    /// Image of the init container (the injector); pods cannot choose another.
    #[arg(long, env = "SECRETS_INJECTOR_INJECTOR_IMAGE", value_parser = parse_image)]
    pub injector_image: String,

    /// Region for pods that set none (no region annotation, no AWS_REGION or AWS_DEFAULT_REGION).
    #[arg(long, env = "SECRETS_INJECTOR_DEFAULT_REGION", value_parser = parse_region)]
    pub default_region: Option<String>,

    /// `sizeLimit` of the in-memory volume that holds the files.
    #[arg(long, env = "SECRETS_INJECTOR_VOLUME_SIZE_LIMIT", default_value = "16Mi", value_parser = Quantity::parse_flag)]
    pub volume_size_limit: Quantity,

    /// CPU request of the init container.
    #[arg(long, env = "SECRETS_INJECTOR_INJECTOR_CPU_REQUEST", default_value = "50m", value_parser = Quantity::parse_flag)]
    pub injector_cpu_request: Quantity,

    /// Memory request of the init container.
    #[arg(long, env = "SECRETS_INJECTOR_INJECTOR_MEMORY_REQUEST", default_value = "32Mi", value_parser = Quantity::parse_flag)]
    pub injector_memory_request: Quantity,

    /// CPU limit of the init container.
    #[arg(long, env = "SECRETS_INJECTOR_INJECTOR_CPU_LIMIT", default_value = "200m", value_parser = Quantity::parse_flag)]
    pub injector_cpu_limit: Quantity,

    /// Memory limit of the init container.
    #[arg(long, env = "SECRETS_INJECTOR_INJECTOR_MEMORY_LIMIT", default_value = "64Mi", value_parser = Quantity::parse_flag)]
    pub injector_memory_limit: Quantity,

    /// User (and group) id of the init container when the app has none, or "none" to leave it unset.
    #[arg(long, env = "SECRETS_INJECTOR_INJECTOR_USER", default_value = "65532", value_parser = InjectorUser::from_str)]
    pub injector_user: InjectorUser,

    /// Shortest `refresh-interval` a pod may ask for (every cycle calls AWS for every object).
    #[arg(long, env = "SECRETS_INJECTOR_REFRESH_MIN_INTERVAL", default_value = "30s", value_parser = parse_min_interval)]
    pub refresh_min_interval: Duration,

    /// CPU request of the refresh sidecar (on Fargate it adds to the pod's size).
    #[arg(long, env = "SECRETS_INJECTOR_REFRESH_CPU_REQUEST", default_value = "10m", value_parser = Quantity::parse_flag)]
    pub refresh_cpu_request: Quantity,

    /// Memory request of the refresh sidecar (on Fargate it adds to the pod's size).
    #[arg(long, env = "SECRETS_INJECTOR_REFRESH_MEMORY_REQUEST", default_value = "16Mi", value_parser = Quantity::parse_flag)]
    pub refresh_memory_request: Quantity,

    /// CPU limit of the refresh sidecar.
    #[arg(long, env = "SECRETS_INJECTOR_REFRESH_CPU_LIMIT", default_value = "100m", value_parser = Quantity::parse_flag)]
    pub refresh_cpu_limit: Quantity,

    /// Memory limit of the refresh sidecar; at least, and by default, the volume's size limit and
    /// half of it again plus 16Mi (the files it writes are charged to it).
    #[arg(long, env = "SECRETS_INJECTOR_REFRESH_MEMORY_LIMIT", value_parser = Quantity::parse_flag)]
    pub refresh_memory_limit: Option<Quantity>,
    /// Read SecretProviderClasses: the `secret-provider-class` annotation takes a pod's objects
    /// from one (needs get, list and watch on secretproviderclasses).
    #[arg(long, env = "SECRETS_INJECTOR_SECRET_PROVIDER_CLASSES")]
    pub secret_provider_classes: bool,

    /// `rewrite`: serve the Secrets Store CSI driver's volumes of AWS classes with the injector
    /// (implies --secret-provider-classes); `ignore`: leave them to the driver.
    #[arg(long, env = "SECRETS_INJECTOR_CSI_VOLUMES", value_enum, default_value_t = CsiVolumes::Ignore)]
    pub csi_volumes: CsiVolumes,

    /// With --csi-volumes=rewrite: the most CSI volumes of the Secrets Store CSI driver one pod
    /// may have rewritten; a pod with more is denied (each is an init container, and a lookup).
    #[arg(long, env = "SECRETS_INJECTOR_MAX_CSI_VOLUMES", default_value_t = DEFAULT_MAX_CSI_VOLUMES)]
    pub max_csi_volumes: usize,

    /// The most secrets one `secretsmanagerpath` object may find (1 to 10000), passed to every
    /// injector as its --max-secrets-per-object; the injector's default (500) when unset.
    #[arg(long, env = "SECRETS_INJECTOR_MAX_SECRETS_PER_OBJECT",
          value_parser = secrets_injector_objects::kind::parse_max_secrets_per_object)]
    pub max_secrets_per_object: Option<usize>,

    /// The work one review may do, in units (one unit: one container, mount, env entry, volume
    /// or object looked at once); a pod that needs more is denied. Counted, not timed, so the
    /// answer is the same on every machine: the default is hundreds of times what a large real
    /// pod needs.
    #[arg(long, env = "SECRETS_INJECTOR_REVIEW_WORK_BUDGET", default_value_t = DEFAULT_REVIEW_WORK_BUDGET)]
    pub review_work_budget: u64,

    /// Object lists already checked, shared by every review (not a flag).
    #[arg(skip)]
    pub plans: PlanCache,

    /// Templates already checked and compiled, shared by every review (not a flag).
    #[arg(skip)]
    pub templates: TemplateCache,

    /// Where SecretProviderClasses are looked up (not a flag).
    #[arg(skip)]
    pub classes: Classes,
}

/// `--max-csi-volumes` by default.
pub const DEFAULT_MAX_CSI_VOLUMES: usize = 16;
/// `--review-work-budget` by default: a real pod of 50 containers needs a few thousand units.
pub const DEFAULT_REVIEW_WORK_BUDGET: u64 = 2_000_000;

/// What the webhook does with a pod's Secrets Store CSI volumes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CsiVolumes {
    /// Leave them to the CSI driver.
    #[default]
    Ignore,
    /// Replace each volume of an AWS class with the in-memory volume and an init container.
    Rewrite,
}

impl MutationConfig {
    /// The defaults of every flag, with this image: for tests and for embedding.
    pub fn for_tests(image: &str) -> Self {
        let quantity = |text: &str| text.parse::<Quantity>().expect("built-in default quantity");
        Self {
            injector_image: image.to_owned(),
            default_region: None,
            volume_size_limit: quantity("16Mi"),
            injector_cpu_request: quantity("50m"),
            injector_memory_request: quantity("32Mi"),
            injector_cpu_limit: quantity("200m"),
            injector_memory_limit: quantity("64Mi"),
            injector_user: InjectorUser::Id(65532),
            refresh_min_interval: secrets_injector_objects::refresh::DEFAULT_MIN_INTERVAL,
            refresh_cpu_request: quantity("10m"),
            refresh_memory_request: quantity("16Mi"),
            refresh_cpu_limit: quantity("100m"),
            refresh_memory_limit: None,
            secret_provider_classes: false,
            csi_volumes: CsiVolumes::Ignore,
            max_csi_volumes: DEFAULT_MAX_CSI_VOLUMES,
            max_secrets_per_object: None,
            review_work_budget: DEFAULT_REVIEW_WORK_BUDGET,
            plans: PlanCache::default(),
            templates: TemplateCache::default(),
            classes: Classes::default(),
        }
    }

    /// Whether SecretProviderClasses are read (`--csi-volumes=rewrite` implies it).
    pub fn classes_enabled(&self) -> bool {
        self.secret_provider_classes || self.csi_volumes == CsiVolumes::Rewrite
    }

    /// Checks what one flag alone cannot: requests must not exceed limits, or the API server
    /// would reject every injected pod. Call it once at startup.
    pub fn validate(&self) -> Result<()> {
        let pairs = [
            ("cpu", &self.injector_cpu_request, &self.injector_cpu_limit),
            (
                "memory",
                &self.injector_memory_request,
                &self.injector_memory_limit,
            ),
        ];
        for (resource, request, limit) in pairs {
            if request.nanos() > limit.nanos() {
                return Err(Error::Config(format!(
                    "--injector-{resource}-request {request} is more than --injector-{resource}-limit {limit}; \
                     the API server would reject every injected pod"
                )));
            }
        }
        if self.volume_size_limit.nanos() == 0 {
            return Err(Error::Config(
                "--volume-size-limit must be more than 0: the files need room".to_owned(),
            ));
        }
        validate_refresh(self)
    }
}

/// The injector's own needs besides the files: its peak RSS is about 13 MiB (BENCHMARKS.md).
const PROCESS_MEMORY: u128 = 16 << 20;

/// `--refresh-min-interval`: written as the annotation is (`30s`, `5m`).
pub(crate) fn parse_min_interval(text: &str) -> Result<Duration, String> {
    Interval::parse(text).map(|interval| interval.duration())
}

/// The bytes of memory the sidecar needs at least: the volume's files (a memory-backed
/// `emptyDir` is a tmpfs of `sizeLimit`, and what the sidecar writes is charged to it), the
/// values of one generation held while they are written (at most half the volume, which must hold
/// two generations during a swap), and the process.
fn required_memory(cfg: &MutationConfig) -> u128 {
    let volume = cfg.volume_size_limit.nanos().div_ceil(1_000_000_000);
    volume + volume.div_ceil(2) + PROCESS_MEMORY
}

/// A whole number of bytes as a quantity, in `Mi` or `Ki` when it is a multiple.
fn bytes_quantity(bytes: u128) -> Quantity {
    let text = if bytes.is_multiple_of(1 << 20) {
        format!("{}Mi", bytes >> 20)
    } else if bytes.is_multiple_of(1 << 10) {
        format!("{}Ki", bytes >> 10)
    } else {
        bytes.to_string()
    };
    text.parse()
        .expect("a whole number of bytes is a Kubernetes quantity")
}

/// `--refresh-memory-limit`, or what the sidecar needs when it is not set.
pub(crate) fn refresh_memory_limit(cfg: &MutationConfig) -> Quantity {
    cfg.refresh_memory_limit
        .clone()
        .unwrap_or_else(|| bytes_quantity(required_memory(cfg)))
}

/// What the refresh flags must satisfy together, checked once at startup.
fn validate_refresh(cfg: &MutationConfig) -> Result<()> {
    let required = required_memory(cfg);
    if let Some(limit) = &cfg.refresh_memory_limit
        && limit.nanos() < required * 1_000_000_000
    {
        return Err(Error::Config(format!(
            "--refresh-memory-limit {limit} is less than the refresh sidecar needs with \
             --volume-size-limit {}: {} (the volume, half of it again for the values held while \
             a new generation is written, and 16Mi for the process), or the kernel would kill it \
             mid-swap; raise it, or leave it unset to have it computed",
            cfg.volume_size_limit,
            bytes_quantity(required)
        )));
    }
    let memory = refresh_memory_limit(cfg);
    let pairs = [
        ("cpu", &cfg.refresh_cpu_request, &cfg.refresh_cpu_limit),
        ("memory", &cfg.refresh_memory_request, &memory),
    ];
    for (resource, request, limit) in pairs {
        if request.nanos() > limit.nanos() {
            return Err(Error::Config(format!(
                "--refresh-{resource}-request {request} is more than the refresh sidecar's \
                 {resource} limit {limit}; the API server would reject every pod that refreshes"
            )));
        }
    }
    Ok(())
}

fn parse_image(text: &str) -> Result<String, String> {
    if text.trim().is_empty() || text.trim() != text || text.contains(char::is_whitespace) {
        return Err(format!("{text:?} is not an image reference"));
    }
    Ok(text.to_owned())
}

/// A region flag: a region name, or the reason it is not one.
pub(crate) fn parse_region(text: &str) -> Result<String, String> {
    if secrets_injector_objects::settings::is_valid_region(text) {
        Ok(text.to_owned())
    } else {
        Err(secrets_injector_objects::settings::region_problem(text))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        mutation: MutationConfig,
    }

    fn parse(args: &[&str]) -> Result<MutationConfig, String> {
        let argv = std::iter::once("webhook").chain(args.iter().copied());
        Cli::try_parse_from(argv)
            .map(|cli| cli.mutation)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_match_for_tests() {
        let cfg = parse(&["--injector-image", "injector:1"]).unwrap();
        let expected = MutationConfig::for_tests("injector:1");
        assert_eq!(cfg.injector_image, expected.injector_image);
        assert_eq!(cfg.default_region, None);
        assert_eq!(cfg.volume_size_limit.as_str(), "16Mi");
        assert_eq!(cfg.injector_cpu_request.as_str(), "50m");
        assert_eq!(cfg.injector_memory_request.as_str(), "32Mi");
        assert_eq!(cfg.injector_cpu_limit.as_str(), "200m");
        assert_eq!(cfg.injector_memory_limit.as_str(), "64Mi");
        assert_eq!(cfg.injector_user, InjectorUser::Id(65532));
        assert!(!cfg.secret_provider_classes && !expected.secret_provider_classes);
        assert_eq!(cfg.csi_volumes, CsiVolumes::Ignore);
        assert!(!cfg.classes_enabled());
        cfg.validate().unwrap();
        expected.validate().unwrap();
    }

    #[test]
    fn image_is_required() {
        let err = parse(&[]).unwrap_err();
        assert!(err.contains("--injector-image"), "{err}");
    }

    #[test]
    fn flags_are_parsed() {
        let cfg = parse(&[
            "--injector-image=reg/injector@sha256:abc",
            "--default-region=eu-west-1",
            "--volume-size-limit=1Mi",
            "--injector-cpu-request=0.1",
            "--injector-memory-request=16Mi",
            "--injector-cpu-limit=1",
            "--injector-memory-limit=1Gi",
            "--injector-user=none",
        ])
        .unwrap();
        assert_eq!(cfg.default_region.as_deref(), Some("eu-west-1"));
        assert_eq!(cfg.injector_user, InjectorUser::Unset);
        assert_eq!(cfg.injector_cpu_request.as_str(), "0.1");
        cfg.validate().unwrap();
        let cfg = parse(&["--injector-image=i", "--csi-volumes=rewrite"]).unwrap();
        assert_eq!(cfg.csi_volumes, CsiVolumes::Rewrite);
        assert!(cfg.classes_enabled() && !cfg.secret_provider_classes);
        let cfg = parse(&["--injector-image=i", "--secret-provider-classes"]).unwrap();
        assert!(cfg.classes_enabled());
        let err = parse(&["--injector-image=i", "--csi-volumes=sync"]).unwrap_err();
        assert!(err.contains("ignore, rewrite"), "{err}");
    }

    #[test]
    fn bad_quantities_fail_at_startup() {
        let err = parse(&["--injector-image=i", "--injector-memory-limit=64MB"]).unwrap_err();
        assert!(
            err.contains("\"64MB\" is not a Kubernetes quantity"),
            "{err}"
        );
        let err = parse(&["--injector-image=i", "--volume-size-limit=-1Mi"]).unwrap_err();
        assert!(err.contains("is negative"), "{err}");
    }

    #[test]
    fn bad_user_and_region_fail_at_startup() {
        let err = parse(&["--injector-image=i", "--injector-user=0"]).unwrap_err();
        assert!(err.contains("\"0\" is not a non-root user id"), "{err}");
        let err = parse(&["--injector-image=i", "--injector-user=root"]).unwrap_err();
        assert!(err.contains("\"root\" is not a non-root user id"), "{err}");
        let err = parse(&["--injector-image=i", "--default-region=EU_WEST_1"]).unwrap_err();
        assert!(err.contains("is not a region name"), "{err}");
        for flag_like in ["--help", "-x", "us-east-1 --x"] {
            let err = parse(&[
                "--injector-image=i",
                &format!("--default-region={flag_like}"),
            ])
            .unwrap_err();
            assert!(err.contains("is not a region name"), "{flag_like}: {err}");
        }
        let err = parse(&["--injector-image= injector"]).unwrap_err();
        assert!(err.contains("is not an image reference"), "{err}");
    }

    #[test]
    fn request_above_limit_fails_validation() {
        let cfg = parse(&[
            "--injector-image=i",
            "--injector-cpu-request=1",
            "--injector-cpu-limit=500m",
        ])
        .unwrap();
        let err = cfg.validate().unwrap_err().to_string();
        assert_eq!(
            err,
            "--injector-cpu-request 1 is more than --injector-cpu-limit 500m; the API server would reject every injected pod"
        );
        let cfg = parse(&["--injector-image=i", "--injector-memory-request=128Mi"]).unwrap();
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.starts_with(
                "--injector-memory-request 128Mi is more than --injector-memory-limit 64Mi"
            ),
            "{err}"
        );
        let cfg = parse(&["--injector-image=i", "--volume-size-limit=0"]).unwrap();
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("--volume-size-limit must be more than 0"),
            "{err}"
        );
    }

    #[test]
    fn the_memory_limit_covers_the_volume_and_the_process() {
        let mut cfg = MutationConfig::for_tests("i");
        assert_eq!(refresh_memory_limit(&cfg).as_str(), "40Mi");
        cfg.volume_size_limit = "1Gi".parse().unwrap();
        assert_eq!(refresh_memory_limit(&cfg).as_str(), "1552Mi");
        cfg.volume_size_limit = "1000k".parse().unwrap();
        assert_eq!(bytes_quantity(required_memory(&cfg)).as_str(), "18277216");
        cfg.refresh_memory_limit = Some("2Gi".parse().unwrap());
        assert_eq!(refresh_memory_limit(&cfg).as_str(), "2Gi");
    }

    #[test]
    fn every_flag_has_its_environment_variable() {
        use clap::CommandFactory;
        let cmd = Cli::command();
        let mut checked = 0;
        for arg in cmd.get_arguments().filter(|arg| arg.get_long().is_some()) {
            let long = arg.get_long().unwrap();
            let env = arg.get_env().map(|env| env.to_string_lossy().into_owned());
            let expected = format!("SECRETS_INJECTOR_{}", long.replace('-', "_").to_uppercase());
            assert_eq!(env.as_deref(), Some(expected.as_str()), "--{long}");
            checked += 1;
        }
        assert_eq!(checked, 18);
    }

    #[test]
    fn max_secrets_per_object_is_passed_on_within_the_injectors_range() {
        assert_eq!(
            parse(&["--injector-image", "i:1"])
                .unwrap()
                .max_secrets_per_object,
            None
        );
        let cfg = parse(&[
            "--injector-image",
            "i:1",
            "--max-secrets-per-object",
            "2000",
        ])
        .unwrap();
        assert_eq!(cfg.max_secrets_per_object, Some(2000));
        for bad in ["0", "10001", "1e3", "many"] {
            let error =
                parse(&["--injector-image", "i:1", "--max-secrets-per-object", bad]).unwrap_err();
            assert!(
                error.contains("--max-secrets-per-object")
                    && error.contains("is not a whole number from 1 to 10000"),
                "{bad}: {error}"
            );
        }
    }
}
