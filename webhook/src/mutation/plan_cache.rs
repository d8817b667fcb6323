//! Checked object lists and templates, remembered by their text and what else they were checked
//! under. Every replica of a workload sends the same `objects` (and `templates`) annotation, and
//! reading it (YAML, then every rule; for templates, compiling each) is the largest part of a
//! review; `secrets_injector_objects::plan::parse` and `template::parse` are pure functions of
//! their inputs, so their answers can be reused as they are.
//!
//! Each cache is bounded in entries and in bytes of text; when full it starts over, which costs
//! one check per distinct text and keeps the worst case (a stream of distinct texts) at the cost
//! of no cache.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use secrets_injector_objects::error::Errors;
use secrets_injector_objects::plan::{self, Plan};
use secrets_injector_objects::settings::Settings;
use secrets_injector_objects::template::{self, Templates};

/// Distinct (text, key) pairs kept by each cache.
const MAX_ENTRIES: usize = 64;
/// Text kept by each cache, in bytes (an annotation is at most 64 KiB).
const MAX_BYTES: usize = 256 << 10;

/// What `plan::parse` answered.
pub type Parsed = Result<Arc<Plan>, Arc<Errors>>;

/// What `template::parse` answered.
pub type CheckedTemplates = Result<Arc<Templates>, Arc<Errors>>;

/// Checked object lists, by the annotation's text and the settings; shared by every review of
/// the process (cloning shares it).
#[derive(Clone, Default)]
pub struct PlanCache(Memo<Settings, Parsed>);

impl PlanCache {
    /// `plan::parse(objects, settings)`, from memory when this pair was parsed before.
    pub fn parse(&self, objects: &str, settings: Settings) -> Parsed {
        self.0.get_or_compute(objects, settings, 0, |settings| {
            plan::parse(objects, settings.clone())
                .map(Arc::new)
                .map_err(Arc::new)
        })
    }

    /// How many (list, settings) pairs are kept.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Checked (and compiled) templates, by the `templates` annotation's text and the plan they
/// were checked against (named by its own inputs: the `objects` text and the settings, of which
/// the plan is a pure function).
#[derive(Clone, Default)]
pub struct TemplateCache(Memo<(String, Settings), CheckedTemplates>);

impl TemplateCache {
    /// `template::parse(templates, objects.len(), Some(plan))` for the plan of `objects`, from
    /// memory when this pair was checked before.
    pub fn check(&self, templates: &str, objects: &str, plan: &Plan) -> CheckedTemplates {
        let key = (objects.to_owned(), plan.settings.clone());
        self.0.get_or_compute(templates, key, objects.len(), |_| {
            template::parse(templates, objects.len(), Some(plan))
                .map(Arc::new)
                .map_err(Arc::new)
        })
    }

    /// How many (templates, objects) pairs are kept.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Answers remembered by a text and a key.
struct Memo<K, V> {
    inner: Arc<Mutex<Entries<K, V>>>,
}

impl<K, V> Clone for Memo<K, V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Entries {
                answers: HashMap::new(),
                entries: 0,
                bytes: 0,
            })),
        }
    }
}

struct Entries<K, V> {
    /// By text; a text is nearly always read under one key.
    answers: HashMap<String, Vec<(K, V)>>,
    entries: usize,
    bytes: usize,
}

impl<K: PartialEq, V: Clone> Memo<K, V> {
    /// The answer for (`text`, `key`): remembered, or computed outside the lock (two reviews of a
    /// new text may both compute it; neither waits) and remembered. `key_bytes` is what the key
    /// holds beyond its text, counted against the bound.
    fn get_or_compute(
        &self,
        text: &str,
        key: K,
        key_bytes: usize,
        compute: impl FnOnce(&K) -> V,
    ) -> V {
        if let Some(answer) = self.lookup(text, &key) {
            return answer;
        }
        let answer = compute(&key);
        self.remember(text, key, key_bytes, answer.clone());
        answer
    }

    fn len(&self) -> usize {
        self.entries().entries
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries<K, V>> {
        // The map is never left half-updated, so a panic elsewhere does not spoil it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lookup(&self, text: &str, key: &K) -> Option<V> {
        let entries = self.entries();
        entries
            .answers
            .get(text)?
            .iter()
            .find(|(kept, _)| kept == key)
            .map(|(_, answer)| answer.clone())
    }

    fn remember(&self, text: &str, key: K, key_bytes: usize, answer: V) {
        let size = text.len() + key_bytes;
        if size > MAX_BYTES {
            return;
        }
        let mut entries = self.entries();
        if entries
            .answers
            .get(text)
            .is_some_and(|kept| kept.iter().any(|(k, _)| *k == key))
        {
            return;
        }
        if entries.entries >= MAX_ENTRIES || entries.bytes + size > MAX_BYTES {
            *entries = Entries {
                answers: HashMap::new(),
                entries: 0,
                bytes: 0,
            };
        }
        entries.entries += 1;
        entries.bytes += key_bytes;
        match entries.answers.get_mut(text) {
            Some(kept) => kept.push((key, answer)),
            None => {
                entries.bytes += text.len();
                entries.answers.insert(text.to_owned(), vec![(key, answer)]);
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

impl fmt::Debug for TemplateCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemplateCache")
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
            assert!(cache.0.entries().bytes <= MAX_BYTES);
        }
    }

    const TEMPLATES: &str = "- {name: out, template: \"{{ files['_app_db'] }}\"}\n";

    #[test]
    fn checked_templates_are_remembered_under_their_objects_and_settings() {
        let plans = PlanCache::default();
        let templates = TemplateCache::default();
        let plan = plans.parse(OBJECTS, Settings::new("eu-west-1")).unwrap();
        let first = templates.check(TEMPLATES, OBJECTS, &plan);
        let again = templates.check(TEMPLATES, OBJECTS, &plan);
        assert!(Arc::ptr_eq(
            first.as_ref().unwrap(),
            again.as_ref().unwrap()
        ));
        assert_eq!(templates.len(), 1);
        // Another objects list is checked again: a name the template reads may be gone.
        let other = "- objectName: /app/other\n  objectType: ssmparameter\n";
        let other_plan = plans.parse(other, Settings::new("eu-west-1")).unwrap();
        assert!(templates.check(TEMPLATES, other, &other_plan).is_ok());
        let reads_db = "- {name: out, template: \"{{ _app_db }}\"}\n";
        assert!(templates.check(reads_db, OBJECTS, &plan).is_ok());
        let denied = templates.check(reads_db, other, &other_plan).unwrap_err();
        assert!(
            denied.to_string().contains("_app_db is not a file"),
            "{denied}"
        );
        assert_eq!(templates.len(), 4);
        for i in 0..200 {
            let text = format!("- {{name: out, template: \"{i}{}\"}}\n", "x".repeat(10_000));
            assert!(templates.check(&text, OBJECTS, &plan).is_ok());
            assert!(templates.len() <= MAX_ENTRIES);
            assert!(templates.0.entries().bytes <= MAX_BYTES);
        }
    }
}
