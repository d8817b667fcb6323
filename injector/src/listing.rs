//! What a refresh cycle makes of a secret prefix object's listing, against the secrets it holds:
//! which to read again (new, or their `AWSCURRENT` version moved), which stay as they are, and
//! which go. `ListSecrets` is eventually consistent (it "might not reflect changes from the last
//! five minutes"), so one listing without a secret is not enough to remove its file: it goes
//! only when two listings in a row lack it, or at once when a listed secret now writes its file
//! (two secrets for one file would fail every cycle, and the listed one is what AWS holds). (An
//! empty listing never gets here: it changes nothing and fails the cycle.) Pure.

use std::collections::{BTreeMap, BTreeSet};

use secrets_injector_objects::relpath::RelPath;

use crate::aws::secrets_by_prefix::Listed;
use crate::call::Secret;
use crate::extract::taken_by;

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
    /// Held secrets missing from this listing whose file a listed secret writes (its path, or
    /// one inside or around it), with that secret's name: their files go at once.
    pub replaced: Vec<(String, String)>,
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
/// lacked; `file` gives the file of a secret by name. A secret is the same secret only under
/// the same ARN (deleted and created again, it is read again). A held secret without an ARN is
/// a file found before any listing, named by its path: the listed secret that writes its file,
/// whatever its name, takes it silently.
pub fn step(
    held: &[Secret],
    missing_before: &BTreeSet<String>,
    listed: &[Listed],
    file: impl Fn(&str) -> Option<RelPath>,
) -> Step {
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
    if !step.kept_missing.is_empty() {
        // Path -> the listed secret that writes it.
        let listed_files: BTreeMap<String, String> = listed
            .iter()
            .filter_map(|l| Some((file(&l.name)?.to_string(), l.name.clone())))
            .collect();
        let replaced = &mut step.replaced;
        step.kept_missing.retain(|secret| {
            let by = file(&secret.name).and_then(|path| taken_by(&listed_files, &path));
            match by {
                // A file held under a name of its own (no ARN) is the listed secret's file.
                Some(_) if secret.arn.is_empty() => false,
                Some(by) => {
                    replaced.push((secret.name.clone(), by.to_owned()));
                    false
                }
                None => true,
            }
        });
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
    file: impl Fn(&str) -> Option<RelPath>,
) -> (Vec<Secret>, BTreeSet<String>) {
    let listed: Vec<Listed> = read
        .iter()
        .map(|s| Listed {
            name: s.name.clone(),
            arn: s.arn.clone(),
            current: s.version.clone(),
        })
        .collect();
    let step = step(held, missing_before, &listed, file);
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

    /// Each secret's file is its name, as under `False` path translation.
    fn file(name: &str) -> Option<RelPath> {
        RelPath::from_components(name.split('/')).ok()
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
        let s = step(
            &h,
            &BTreeSet::new(),
            &[listed("a", "1"), listed("b", "1")],
            file,
        );
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
            file,
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
        let first = step(&h, &BTreeSet::new(), &[listed("a", "1")], file);
        assert_eq!(names(&first.kept_missing), ["b"]);
        assert!(first.gone.is_empty());
        let missing = first.missing_once();
        let kept = first.into_secrets(Vec::new());
        assert_eq!(kept, h, "one listing without it keeps its file");

        let second = step(&kept, &missing, &[listed("a", "1")], file);
        assert_eq!(second.gone, ["b"]);
        assert!(!quiet(&second));
        assert!(second.missing_once().is_empty());
        assert_eq!(second.into_secrets(Vec::new()), [held("a", "1")]);
    }

    #[test]
    fn a_secret_back_in_the_next_listing_stays() {
        let h = [held("a", "1"), held("b", "1")];
        let first = step(&h, &BTreeSet::new(), &[listed("a", "1")], file);
        let missing = first.missing_once();
        let kept = first.into_secrets(Vec::new());
        let second = step(&kept, &missing, &[listed("a", "1"), listed("b", "1")], file);
        assert!(quiet(&second));
        assert!(second.missing_once().is_empty());
    }

    #[test]
    fn a_whole_read_follows_the_same_rules() {
        let h = [held("a", "1"), held("b", "1")];
        let (after, missing) = step_read(&h, &BTreeSet::new(), vec![held("a", "2")], file);
        assert_eq!(after, [held("a", "2"), held("b", "1")]);
        assert_eq!(missing, BTreeSet::from(["b".to_owned()]));
        let (after, missing) = step_read(&after, &missing, vec![held("a", "2")], file);
        assert_eq!(after, [held("a", "2")]);
        assert!(missing.is_empty());
    }

    #[test]
    fn a_listed_secret_that_writes_the_file_of_a_missing_one_replaces_it_at_once() {
        // b/c gone and b created: b's file is where b/c's directory was. Two files for one path
        // would fail every cycle while b/c is kept one listing more.
        let h = [held("a", "1"), held("b/c", "1")];
        let s = step(
            &h,
            &BTreeSet::new(),
            &[listed("a", "1"), listed("b", "1")],
            file,
        );
        assert!(s.kept_missing.is_empty());
        assert_eq!(s.replaced, [("b/c".to_owned(), "b".to_owned())]);
        assert!(s.missing_once().is_empty());
        let after = s.into_secrets(vec![held("b", "1")]);
        assert_eq!(after, [held("a", "1"), held("b", "1")]);
        // The other way round, and one file under two names (as `_` path translation gives).
        let underscored = |name: &str| RelPath::file(&name.replace('/', "_")).ok();
        let h = [held("b", "1"), held("x/y", "1")];
        let s = step(
            &h,
            &BTreeSet::new(),
            &[listed("b/c", "1"), listed("x_y", "1")],
            |n: &str| {
                if n == "x_y" || n == "x/y" {
                    underscored(n)
                } else {
                    file(n)
                }
            },
        );
        assert_eq!(
            s.replaced,
            [
                ("b".to_owned(), "b/c".to_owned()),
                ("x/y".to_owned(), "x_y".to_owned())
            ]
        );
        // A file found before any listing (no ARN) is the listed secret's own, whatever names.
        let found = Secret {
            arn: String::new(),
            ..held("x_y", "")
        };
        let s = step(
            &[found],
            &BTreeSet::new(),
            &[listed("x/y", "1")],
            underscored,
        );
        assert!(s.kept_missing.is_empty() && s.replaced.is_empty() && s.gone.is_empty());
        assert_eq!(names(&s.into_secrets(Vec::new())), Vec::<&str>::new());
        // A name that only starts like another's file is no clash: kept once, as any other.
        let h = [held("b", "1")];
        let s = step(&h, &BTreeSet::new(), &[listed("b2", "1")], file);
        assert_eq!(names(&s.kept_missing), ["b"]);
        assert!(s.replaced.is_empty());
    }

    #[test]
    fn a_secret_created_again_is_read() {
        let h = [held("a", "1"), held("b", "1")];
        let mut recreated = listed("a", "1");
        recreated.arn = "arn:a-new".to_owned();
        let s = step(&h, &BTreeSet::new(), &[recreated, listed("b", "1")], file);
        let to_read: Vec<&str> = s.to_read.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(to_read, ["a"]);
        assert_eq!(names(&s.unchanged), ["b"]);
    }
}
