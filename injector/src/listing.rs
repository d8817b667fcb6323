//! What a refresh cycle makes of a secret prefix object's listing, against the secrets it holds:
//! which to read again (new, or their `AWSCURRENT` version moved), which stay as they are, and
//! which go. `ListSecrets` is eventually consistent (it "might not reflect changes from the last
//! five minutes"), so one listing without a secret is not enough to remove its file: it goes
//! only when two listings in a row lack it. (An empty listing never gets here: it changes
//! nothing and fails the cycle.) Pure.

use std::collections::{BTreeMap, BTreeSet};

use crate::aws::secrets_by_prefix::Listed;
use crate::call::Secret;

/// The outcome of one listing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Held secrets whose listing shows the version they hold: kept as they are.
    pub unchanged: Vec<Secret>,
    /// Held secrets missing from this listing for the first time: kept one cycle more.
    pub kept_missing: Vec<Secret>,
    /// Listed secrets that are new, or whose current version is not the one held: to read.
    pub to_read: Vec<Listed>,
    /// Held secrets missing from this listing and the one before: their files go.
    pub gone: Vec<String>,
}

impl Step {
    /// The names missing once, for the next listing.
    pub fn missing_once(&self) -> BTreeSet<String> {
        self.kept_missing.iter().map(|s| s.name.clone()).collect()
    }

    /// The secrets after the cycle: those kept and those read, sorted by name.
    pub fn into_secrets(self, read: Vec<Secret>) -> Vec<Secret> {
        let mut secrets: Vec<Secret> = self
            .unchanged
            .into_iter()
            .chain(self.kept_missing)
            .chain(read)
            .collect();
        secrets.sort_by(|a, b| a.name.cmp(&b.name));
        secrets
    }
}

/// Compares a listing with what is held. `missing_before` holds the names the previous listing
/// lacked. A secret is the same secret only under the same ARN (deleted and created again, it
/// is read again).
pub fn step(held: &[Secret], missing_before: &BTreeSet<String>, listed: &[Listed]) -> Step {
    let listed_by_name: BTreeMap<&str, &Listed> =
        listed.iter().map(|l| (l.name.as_str(), l)).collect();
    let held_by_name: BTreeMap<&str, &Secret> = held.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut step = Step::default();
    for secret in held {
        match listed_by_name.get(secret.name.as_str()) {
            Some(l) if l.arn == secret.arn && l.current == secret.version => {
                step.unchanged.push(secret.clone());
            }
            // Listed, but moved: read below.
            Some(_) => {}
            None if missing_before.contains(&secret.name) => step.gone.push(secret.name.clone()),
            None => step.kept_missing.push(secret.clone()),
        }
    }
    for l in listed {
        let same = held_by_name
            .get(l.name.as_str())
            .is_some_and(|s| s.arn == l.arn && l.current == s.version);
        if !same {
            step.to_read.push(l.clone());
        }
    }
    step
}

/// A whole read of the object (every secret listed and read, as after a failover), against what
/// is held: the same rules as [`step`], with the values already there. Returns the secrets
/// after the cycle and the names missing once.
pub fn step_read(
    held: &[Secret],
    missing_before: &BTreeSet<String>,
    read: Vec<Secret>,
) -> (Vec<Secret>, BTreeSet<String>) {
    let listed: Vec<Listed> = read
        .iter()
        .map(|s| Listed {
            name: s.name.clone(),
            arn: s.arn.clone(),
            current: s.version.clone(),
        })
        .collect();
    let step = step(held, missing_before, &listed);
    let missing = step.missing_once();
    let to_read: BTreeSet<&str> = step.to_read.iter().map(|l| l.name.as_str()).collect();
    let fresh: Vec<Secret> = read
        .into_iter()
        .filter(|s| to_read.contains(s.name.as_str()))
        .collect();
    (step.into_secrets(fresh), missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(name: &str, version: &str) -> Secret {
        Secret {
            name: name.to_owned(),
            arn: format!("arn:{name}"),
            version: version.to_owned(),
            value: format!("{name}@{version}").into_bytes(),
        }
    }

    fn listed(name: &str, version: &str) -> Listed {
        Listed {
            name: name.to_owned(),
            arn: format!("arn:{name}"),
            current: version.to_owned(),
        }
    }

    /// Nothing to read and nothing gone.
    fn quiet(step: &Step) -> bool {
        step.to_read.is_empty() && step.gone.is_empty()
    }

    fn names(secrets: &[Secret]) -> Vec<&str> {
        secrets.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn a_quiet_listing_reads_nothing() {
        let h = [held("a", "1"), held("b", "1")];
        let s = step(&h, &BTreeSet::new(), &[listed("a", "1"), listed("b", "1")]);
        assert!(quiet(&s));
        assert_eq!(names(&s.unchanged), ["a", "b"]);
        assert_eq!(s.into_secrets(Vec::new()), h);
    }

    #[test]
    fn added_and_rotated_secrets_are_read() {
        let h = [held("a", "1"), held("b", "1")];
        let s = step(
            &h,
            &BTreeSet::new(),
            &[listed("a", "2"), listed("b", "1"), listed("c", "1")],
        );
        let to_read: Vec<&str> = s.to_read.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(to_read, ["a", "c"]);
        assert_eq!(names(&s.unchanged), ["b"]);
        let after = s.into_secrets(vec![held("a", "2"), held("c", "1")]);
        assert_eq!(after, [held("a", "2"), held("b", "1"), held("c", "1")]);
    }

    #[test]
    fn a_secret_goes_only_after_two_listings_without_it() {
        let h = [held("a", "1"), held("b", "1")];
        let first = step(&h, &BTreeSet::new(), &[listed("a", "1")]);
        assert_eq!(names(&first.kept_missing), ["b"]);
        assert!(first.gone.is_empty());
        let missing = first.missing_once();
        let kept = first.into_secrets(Vec::new());
        assert_eq!(kept, h, "one listing without it keeps its file");

        let second = step(&kept, &missing, &[listed("a", "1")]);
        assert_eq!(second.gone, ["b"]);
        assert!(!quiet(&second));
        assert!(second.missing_once().is_empty());
        assert_eq!(second.into_secrets(Vec::new()), [held("a", "1")]);
    }

    #[test]
    fn a_secret_back_in_the_next_listing_stays() {
        let h = [held("a", "1"), held("b", "1")];
        let first = step(&h, &BTreeSet::new(), &[listed("a", "1")]);
        let missing = first.missing_once();
        let kept = first.into_secrets(Vec::new());
        let second = step(&kept, &missing, &[listed("a", "1"), listed("b", "1")]);
        assert!(quiet(&second));
        assert!(second.missing_once().is_empty());
    }

    #[test]
    fn a_whole_read_follows_the_same_rules() {
        let h = [held("a", "1"), held("b", "1")];
        let (after, missing) = step_read(&h, &BTreeSet::new(), vec![held("a", "2")]);
        assert_eq!(after, [held("a", "2"), held("b", "1")]);
        assert_eq!(missing, BTreeSet::from(["b".to_owned()]));
        let (after, missing) = step_read(&after, &missing, vec![held("a", "2")]);
        assert_eq!(after, [held("a", "2")]);
        assert!(missing.is_empty());
    }

    #[test]
    fn a_secret_created_again_is_read() {
        let h = [held("a", "1"), held("b", "1")];
        let mut recreated = listed("a", "1");
        recreated.arn = "arn:a-new".to_owned();
        let s = step(&h, &BTreeSet::new(), &[recreated, listed("b", "1")]);
        let to_read: Vec<&str> = s.to_read.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(to_read, ["a"]);
        assert_eq!(names(&s.unchanged), ["b"]);
    }
}
