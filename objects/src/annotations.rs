//! Names of the pod annotations the webhook reads and writes, and their limits.

/// Every annotation of the product starts with this prefix.
pub const PREFIX: &str = "secrets-injector.io/";

pub const OBJECTS: &str = "secrets-injector.io/objects";
pub const INJECT: &str = "secrets-injector.io/inject";
pub const MOUNT_PATH: &str = "secrets-injector.io/mount-path";
pub const CONTAINERS: &str = "secrets-injector.io/containers";
pub const REGION: &str = "secrets-injector.io/region";
pub const FAILOVER_REGION: &str = "secrets-injector.io/failover-region";
pub const PATH_TRANSLATION: &str = "secrets-injector.io/path-translation";
pub const FILE_PERMISSION: &str = "secrets-injector.io/file-permission";
pub const ENV_FILE: &str = "secrets-injector.io/env-file";
pub const INIT_FIRST: &str = "secrets-injector.io/init-first";
pub const MESH_BYPASS: &str = "secrets-injector.io/mesh-bypass";
pub const INJECTOR_RESOURCES: &str = "secrets-injector.io/injector-resources";
pub const STATUS: &str = "secrets-injector.io/status";
pub const REFRESH_INTERVAL: &str = "secrets-injector.io/refresh-interval";
pub const REFRESH_SIGNAL: &str = "secrets-injector.io/refresh-signal";
pub const REFRESH_URL: &str = "secrets-injector.io/refresh-url";
pub const ENV_CONTAINERS: &str = "secrets-injector.io/env-containers";
pub const SECRET_PROVIDER_CLASS: &str = "secrets-injector.io/secret-provider-class";
pub const ASSUME_ROLE_ARN: &str = "secrets-injector.io/assume-role-arn";
pub const ASSUME_ROLE_EXTERNAL_ID: &str = "secrets-injector.io/assume-role-external-id";
pub const ASSUME_ROLE_DURATION_SECONDS: &str = "secrets-injector.io/assume-role-duration-seconds";
pub const TEMPLATES: &str = "secrets-injector.io/templates";

/// All annotations under [`PREFIX`] that mean something; any other gets a warning.
pub const KNOWN: &[&str] = &[
    OBJECTS,
    INJECT,
    MOUNT_PATH,
    CONTAINERS,
    REGION,
    FAILOVER_REGION,
    PATH_TRANSLATION,
    FILE_PERMISSION,
    ENV_FILE,
    INIT_FIRST,
    MESH_BYPASS,
    INJECTOR_RESOURCES,
    STATUS,
    REFRESH_INTERVAL,
    REFRESH_SIGNAL,
    REFRESH_URL,
    ENV_CONTAINERS,
    ASSUME_ROLE_ARN,
    ASSUME_ROLE_EXTERNAL_ID,
    ASSUME_ROLE_DURATION_SECONDS,
    SECRET_PROVIDER_CLASS,
    TEMPLATES,
];

pub const DEFAULT_MOUNT_PATH: &str = "/mnt/secrets-store";
/// Largest `objects` annotation accepted; it also keeps the injector's argument under the
/// kernel's 128 KiB limit for one argument.
pub const MAX_OBJECTS_BYTES: usize = 64 * 1024;
/// Largest the `objects` and `templates` annotations may be together: each is one argument of the
/// injector, and together they stay well under the API server's 256 KiB for all annotations.
pub const MAX_OBJECTS_AND_TEMPLATES_BYTES: usize = 64 * 1024;
/// Value of [`STATUS`] once the webhook has injected the pod.
pub const STATUS_INJECTED: &str = "injected";
/// Name of the in-memory volume the webhook adds.
pub const VOLUME_NAME: &str = "secrets-injector";
/// Name of the init container the webhook adds (the same as its volume's, so `kubectl describe`
/// pairs them).
pub const INIT_CONTAINER_NAME: &str = "secrets-injector";
/// Name of the native sidecar that refreshes the files (`refresh-interval`).
pub const REFRESH_CONTAINER_NAME: &str = "secrets-injector-refresh";
/// Name of the in-memory volume that carries `secrets-env` (`env-containers`).
pub const BIN_VOLUME_NAME: &str = "secrets-injector-bin";
/// Where [`BIN_VOLUME_NAME`] is mounted, read-only, in the containers that get variables.
pub const BIN_MOUNT_PATH: &str = "/secrets-injector/bin";
/// `secrets-env` as the rewritten `command[0]` names it.
pub const SECRETS_ENV_PATH: &str = "/secrets-injector/bin/secrets-env";

/// The known annotation closest to `name` (a full annotation name, or only the part after
/// the prefix), for the warning on an unknown one. `None` when nothing is close.
pub fn closest_known(name: &str) -> Option<&'static str> {
    let short = name.strip_prefix(PREFIX).unwrap_or(name);
    let suffixes: Vec<&'static str> = KNOWN.iter().map(|known| &known[PREFIX.len()..]).collect();
    let suffix = closest(short, &suffixes)?;
    KNOWN
        .iter()
        .copied()
        .find(|known| &known[PREFIX.len()..] == suffix)
}

/// The candidate closest to `name` by edit distance (ignoring case), when it is close enough
/// to be a plausible typo: at most a third of the longer name, and at least 2 edits allowed.
/// A name of 4 or more characters is also compared with the end of each candidate, so that
/// `alias` suggests `objectAlias`.
pub fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let wanted = name.to_lowercase();
    let wanted_len = wanted.chars().count();
    candidates
        .iter()
        .filter_map(|candidate| {
            let lower = candidate.to_lowercase();
            let longest = wanted_len.max(lower.chars().count());
            let whole = edit_distance(&wanted, &lower);
            if whole <= (longest / 3).max(2) {
                return Some((whole, *candidate));
            }
            let tail_len = lower.chars().count().checked_sub(wanted_len)?;
            let tail: String = lower.chars().skip(tail_len).collect();
            let distance = edit_distance(&wanted, &tail);
            (wanted_len >= 4 && distance <= (wanted_len / 3).max(2))
                .then_some((distance + 1, *candidate))
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_carry_the_prefix() {
        assert_eq!(KNOWN.len(), 22);
        for name in KNOWN {
            assert!(name.starts_with(PREFIX), "{name}");
        }
        assert_eq!(OBJECTS, "secrets-injector.io/objects");
        assert_eq!(MOUNT_PATH, "secrets-injector.io/mount-path");
    }

    #[test]
    fn closest_known_finds_typos() {
        assert_eq!(closest_known("secrets-injector.io/objcts"), Some(OBJECTS));
        assert_eq!(
            closest_known("secrets-injector.io/mountpath"),
            Some(MOUNT_PATH)
        );
        assert_eq!(closest_known("secrets-injector.io/Region"), Some(REGION));
        assert_eq!(
            closest_known("secrets-injector.io/failover-regoin"),
            Some(FAILOVER_REGION)
        );
        assert_eq!(closest_known("envfile"), Some(ENV_FILE));
        assert_eq!(
            closest_known("secrets-injector.io/container"),
            Some(CONTAINERS)
        );
        assert_eq!(
            closest_known("secrets-injector.io/refresh-intervall"),
            Some(REFRESH_INTERVAL)
        );
        assert_eq!(closest_known("refresh-signa"), Some(REFRESH_SIGNAL));
    }

    #[test]
    fn closest_known_gives_nothing_for_unrelated_names() {
        assert_eq!(
            closest_known("secrets-injector.io/something-else-entirely"),
            None
        );
        assert_eq!(closest_known("secrets-injector.io/x"), None);
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
        let fields = [
            "objectName",
            "objectType",
            "objectAlias",
            "objectVersion",
            "path",
        ];
        assert_eq!(closest("objectAlais", &fields), Some("objectAlias"));
        assert_eq!(closest("alias", &fields), Some("objectAlias"));
        assert_eq!(closest("alais", &fields), Some("objectAlias"));
        assert_eq!(closest("name", &fields), Some("objectName"));
        assert_eq!(closest("Path", &fields), Some("path"));
        assert_eq!(closest("paths", &fields), Some("path"));
        assert_eq!(closest("x", &fields), None);
        assert_eq!(closest("color", &fields), None);
    }
}
