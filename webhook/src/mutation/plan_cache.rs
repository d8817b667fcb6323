//! Checked object lists, remembered by their text and settings. Every replica of a workload sends
//! the same `objects` annotation, and reading it (YAML, then every rule) is the largest part of a
//! review; `secrets_injector_objects::plan::parse` is a pure function of the two, so its answer
//! can be reused as it is.
//!
//! Bounded in entries and in annotation bytes; when full it starts over, which costs one parse
//! per distinct list and keeps the worst case (a stream of distinct lists) at today's cost.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use secrets_injector_objects::error::Errors;
use secrets_injector_objects::plan::{self, Plan};
use secrets_injector_objects::settings::Settings;

/// Distinct (list, settings) pairs kept.
const MAX_ENTRIES: usize = 64;
/// Annotation text kept, in bytes (a list is at most 64 KiB).
const MAX_BYTES: usize = 256 << 10;

/// What `plan::parse` answered.
pub type Parsed = Result<Arc<Plan>, Arc<Errors>>;

/// Shared by every review of the process; cloning shares it.
#[derive(Clone, Default)]
pub struct PlanCache {
    inner: Arc<Mutex<Entries>>,
}

#[derive(Default)]
struct Entries {
    /// By annotation text; a text is nearly always read under one set of settings.
    plans: HashMap<String, Vec<(Settings, Parsed)>>,
    entries: usize,
    bytes: usize,
}

impl PlanCache {
    /// `plan::parse(objects, settings)`, from memory when this pair was parsed before.
    pub fn parse(&self, objects: &str, settings: Settings) -> Parsed {
        if let Some(parsed) = self.lookup(objects, &settings) {
            return parsed;
        }
        // Parsed outside the lock: two reviews of a new list may both parse it, neither waits.
        let parsed: Parsed = plan::parse(objects, settings.clone())
            .map(Arc::new)
            .map_err(Arc::new);
        self.remember(objects, settings, parsed.clone());
        parsed
    }

    /// How many (list, settings) pairs are kept.
    pub fn len(&self) -> usize {
        self.entries().entries
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries> {
        // The map is never left half-updated, so a panic elsewhere does not spoil it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lookup(&self, objects: &str, settings: &Settings) -> Option<Parsed> {
        let entries = self.entries();
        entries
            .plans
            .get(objects)?
            .iter()
            .find(|(kept, _)| kept == settings)
            .map(|(_, parsed)| parsed.clone())
    }

    fn remember(&self, objects: &str, settings: Settings, parsed: Parsed) {
        if objects.len() > MAX_BYTES {
            return;
        }
        let mut entries = self.entries();
        if entries
            .plans
            .get(objects)
            .is_some_and(|kept| kept.iter().any(|(s, _)| *s == settings))
        {
            return;
        }
        if entries.entries >= MAX_ENTRIES || entries.bytes + objects.len() > MAX_BYTES {
            *entries = Entries::default();
        }
        entries.entries += 1;
        match entries.plans.get_mut(objects) {
            Some(kept) => kept.push((settings, parsed)),
            None => {
                entries.bytes += objects.len();
                entries
                    .plans
                    .insert(objects.to_owned(), vec![(settings, parsed)]);
            }
        }
    }
}

impl fmt::Debug for PlanCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlanCache")
            .field("entries", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OBJECTS: &str = "- objectName: /app/db\n  objectType: ssmparameter\n";

    #[test]
    fn a_remembered_answer_is_the_parse_itself() {
        let cache = PlanCache::default();
        let settings = Settings::new("eu-west-1");
        let first = cache.parse(OBJECTS, settings.clone());
        let again = cache.parse(OBJECTS, settings.clone());
        assert!(Arc::ptr_eq(
            first.as_ref().unwrap(),
            again.as_ref().unwrap()
        ));
        assert_eq!(
            **again.as_ref().unwrap(),
            plan::parse(OBJECTS, settings).unwrap()
        );
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn other_settings_are_parsed_again() {
        let cache = PlanCache::default();
        let west = cache.parse(OBJECTS, Settings::new("eu-west-1")).unwrap();
        let east = cache.parse(OBJECTS, Settings::new("us-east-1")).unwrap();
        assert_eq!(west.settings.region, "eu-west-1");
        assert_eq!(east.settings.region, "us-east-1");
        assert_eq!(cache.len(), 2);
        // An ARN in another region is refused under one region and accepted under its own.
        let arn = "- objectName: arn:aws:ssm:us-east-1:111122223333:parameter/app/db\n";
        assert!(cache.parse(arn, Settings::new("eu-west-1")).is_err());
        assert!(cache.parse(arn, Settings::new("us-east-1")).is_ok());
    }

    #[test]
    fn refusals_are_remembered_with_every_problem() {
        let cache = PlanCache::default();
        let bad = "- objectName: /a\n  objectType: nope\n- objectName: ''\n";
        let first = cache.parse(bad, Settings::new("eu-west-1")).unwrap_err();
        let again = cache.parse(bad, Settings::new("eu-west-1")).unwrap_err();
        assert_eq!(first, again);
        assert_eq!(
            *first,
            plan::parse(bad, Settings::new("eu-west-1")).unwrap_err()
        );
        assert!(first.0.len() >= 2, "{first:?}");
    }

    #[test]
    fn it_stays_within_its_bounds() {
        let cache = PlanCache::default();
        for i in 0..(MAX_ENTRIES * 2 + 7) {
            let objects = format!("- objectName: /app/p{i}\n  objectType: ssmparameter\n");
            assert!(cache.parse(&objects, Settings::new("eu-west-1")).is_ok());
            assert!(cache.len() <= MAX_ENTRIES);
        }
        let big = format!(
            "- objectName: /app/big\n  objectType: ssmparameter\n#{}\n",
            "x".repeat(60_000)
        );
        for i in 0..100 {
            let settings = Settings::new(format!("eu-west-{}", i % 3 + 1));
            let objects = format!("{big}#{i}\n");
            let _ = cache.parse(&objects, settings);
            assert!(cache.entries().bytes <= MAX_BYTES);
        }
    }
}
