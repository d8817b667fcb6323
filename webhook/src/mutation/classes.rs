//! Where the mutation finds SecretProviderClasses: "the class NAME in namespace NS", behind a
//! small interface, so the mutation stays pure and does not know whether classes come from the
//! API server (`webhook serve`, which looks up the classes a review needs before the mutation
//! runs and hands it a [`ReviewClasses`]) or from the documents of the input (`webhook inject`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use prometheus_client::metrics::counter::Counter;
use serde_json::Value;

use secrets_injector_objects::class::{Class, ClassSpec, KIND, Refusal};

/// A class as found, with what it gives the injector derived at most once however many volumes
/// and reviews use it (the derivation checks every parameter and words a warning for each
/// unknown one).
pub struct ResolvedClass {
    pub class: Class,
    spec: OnceLock<Result<ClassSpec, Refusal>>,
    /// Counts derivations (`webhook serve`'s metric).
    derivations: Option<Counter>,
}

impl ResolvedClass {
    pub fn new(class: Class) -> Self {
        Self {
            class,
            spec: OnceLock::new(),
            derivations: None,
        }
    }

    /// Counts each derivation on `counter`.
    pub fn counted(mut self, counter: Counter) -> Self {
        self.derivations = Some(counter);
        self
    }

    /// `Class::spec`, derived on first use.
    pub fn spec(&self) -> &Result<ClassSpec, Refusal> {
        self.spec.get_or_init(|| {
            if let Some(counter) = &self.derivations {
                counter.inc();
            }
            self.class.spec()
        })
    }
}

impl fmt::Debug for ResolvedClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.class.fmt(f)
    }
}

impl PartialEq for ResolvedClass {
    fn eq(&self, other: &Self) -> bool {
        self.class == other.class
    }
}

impl Eq for ResolvedClass {}

/// The most distinct classes one review looks up (the annotation and a few CSI volumes are
/// what real pods name).
pub const MAX_CLASS_NAMES: usize = 20;

/// What looking up one class found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    Found(Arc<ResolvedClass>),
    /// No class of that name in the namespace.
    Missing,
    /// Classes cannot be read at all (the CRD is not installed, the webhook may not read them,
    /// the API server does not answer): the reason, worded for a denial.
    Unavailable(String),
}

/// A source of classes by namespace and name (`RefUnwindSafe`: a review that panics must not
/// leave the source half-changed for the next).
pub trait ClassSource: Send + Sync + std::panic::RefUnwindSafe {
    fn class(&self, namespace: &str, name: &str) -> Lookup;
}

/// No source: every class is missing (the feature off, or tests).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoClasses;

impl ClassSource for NoClasses {
    fn class(&self, _namespace: &str, _name: &str) -> Lookup {
        Lookup::Missing
    }
}

/// Classes given as documents (`webhook inject -f`). A class without a namespace matches any
/// namespace, as `kubectl apply` puts both it and the pod in the current one.
#[derive(Clone, Debug, Default)]
pub struct DocumentClasses {
    classes: Vec<Arc<ResolvedClass>>,
}

impl DocumentClasses {
    /// The classes among `documents` (a `List`'s items included), and the problems of documents
    /// that are classes but cannot be read, each naming its document.
    pub fn from_documents(documents: &[Value]) -> (Self, Vec<String>) {
        let mut found = Self::default();
        let mut problems = Vec::new();
        for (index, document) in documents.iter().enumerate() {
            found.collect(document, &format!("document {}", index + 1), &mut problems);
        }
        (found, problems)
    }

    fn collect(&mut self, document: &Value, label: &str, problems: &mut Vec<String>) {
        let kind = document.get("kind").and_then(Value::as_str).unwrap_or("");
        if kind == "List" || kind.ends_with("List") {
            let items = document.get("items").and_then(Value::as_array);
            for (index, item) in items.into_iter().flatten().enumerate() {
                self.collect(item, &format!("{label}, items[{index}]"), problems);
            }
            return;
        }
        if !secrets_injector_objects::class::is_class(document) {
            return;
        }
        match Class::read(document) {
            Ok(class) => self.classes.push(Arc::new(ResolvedClass::new(class))),
            Err(problem) => problems.push(format!("{label}: {problem}")),
        }
    }

    pub fn len(&self) -> usize {
        self.classes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }
}

impl ClassSource for DocumentClasses {
    fn class(&self, namespace: &str, name: &str) -> Lookup {
        self.classes
            .iter()
            .rev()
            .find(|found| {
                let class = &found.class;
                class.name == name && class.namespace.as_deref().is_none_or(|ns| ns == namespace)
            })
            .map_or(Lookup::Missing, |class| Lookup::Found(class.clone()))
    }
}

/// The classes one review needs, looked up before the mutation runs (`webhook serve`): by name,
/// in the namespace of the pod. A class the review did not look up is asked of `rest` (the
/// cache, which makes no request).
pub struct ReviewClasses {
    namespace: String,
    found: HashMap<String, Lookup>,
    /// Distinct names the pod gave past [`MAX_CLASS_NAMES`], not looked up.
    more: usize,
    rest: Classes,
}

impl ReviewClasses {
    pub fn new(
        namespace: String,
        found: HashMap<String, Lookup>,
        more: usize,
        rest: Classes,
    ) -> Self {
        Self {
            namespace,
            found,
            more,
            rest,
        }
    }
}

impl ClassSource for ReviewClasses {
    fn class(&self, namespace: &str, name: &str) -> Lookup {
        if namespace == self.namespace
            && let Some(found) = self.found.get(name)
        {
            return found.clone();
        }
        match self.rest.0.class(namespace, name) {
            Lookup::Missing if self.more > 0 => Lookup::Unavailable(format!(
                "the pod names more than {MAX_CLASS_NAMES} {KIND}es, and only the first \
                 {MAX_CLASS_NAMES} are looked up; use fewer classes"
            )),
            other => other,
        }
    }
}

/// The source the mutation asks, shared by every review (not a flag). Cloning shares it.
#[derive(Clone)]
pub struct Classes(pub Arc<dyn ClassSource>);

impl Default for Classes {
    fn default() -> Self {
        Self(Arc::new(NoClasses))
    }
}

impl fmt::Debug for Classes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Classes")
    }
}

/// Where the pod being mutated is: its namespace (the request's; else the pod's own; else
/// `default`), and whether it is a workload's pod template rather than a pod being created.
#[derive(Clone, Copy, Debug, Default)]
pub struct Context<'a> {
    pub namespace: Option<&'a str>,
    pub template: bool,
}

impl Context<'_> {
    /// The namespace classes are looked up in.
    pub fn namespace<'p>(&'p self, pod: &'p Value) -> &'p str {
        self.namespace
            .filter(|ns| !ns.is_empty())
            .or_else(|| pod.pointer("/metadata/namespace").and_then(Value::as_str))
            .filter(|ns| !ns.is_empty())
            .unwrap_or("default")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn class(name: &str, namespace: Option<&str>) -> Value {
        let mut metadata = json!({"name": name});
        if let Some(ns) = namespace {
            metadata["namespace"] = json!(ns);
        }
        json!({"apiVersion": "secrets-store.csi.x-k8s.io/v1", "kind": "SecretProviderClass",
               "metadata": metadata, "spec": {"provider": "aws"}})
    }

    #[test]
    fn documents_are_found_by_namespace_and_name() {
        let documents = [
            class("a", None),
            json!({"kind": "List", "items": [class("b", Some("team"))]}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}),
            json!({"apiVersion": "secrets-store.csi.x-k8s.io/v1", "kind": "SecretProviderClass", "metadata": {}}),
        ];
        let (classes, problems) = DocumentClasses::from_documents(&documents);
        assert_eq!(classes.len(), 2);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].starts_with("document 4: "), "{problems:?}");
        assert!(matches!(classes.class("any", "a"), Lookup::Found(c) if c.class.name == "a"));
        assert!(matches!(classes.class("team", "b"), Lookup::Found(_)));
        assert_eq!(classes.class("other", "b"), Lookup::Missing);
        assert_eq!(classes.class("team", "c"), Lookup::Missing);
        assert_eq!(NoClasses.class("team", "a"), Lookup::Missing);
    }

    #[test]
    fn a_review_answers_from_what_it_looked_up_then_from_the_rest() {
        let (rest, _) = DocumentClasses::from_documents(&[class("cached", Some("team"))]);
        let looked_up = HashMap::from([
            ("gone".to_owned(), Lookup::Missing),
            ("slow".to_owned(), Lookup::Unavailable("no answer".into())),
        ]);
        let rest = Classes(Arc::new(rest));
        let review = ReviewClasses::new("team".into(), looked_up.clone(), 0, rest.clone());
        assert_eq!(review.class("team", "gone"), Lookup::Missing);
        assert_eq!(
            review.class("team", "slow"),
            Lookup::Unavailable("no answer".into())
        );
        // Another namespace is not what was looked up.
        assert_eq!(review.class("other", "slow"), Lookup::Missing);
        assert!(matches!(review.class("team", "cached"), Lookup::Found(_)));
        // A pod that named more classes than are looked up is told so.
        let review = ReviewClasses::new("team".into(), looked_up, 3, rest);
        assert!(matches!(review.class("team", "extra"),
            Lookup::Unavailable(reason) if reason.contains("more than 20 SecretProviderClasses")));
    }

    #[test]
    fn a_class_is_derived_once() {
        let counter = Counter::default();
        let read = Class::read(&class("a", None)).unwrap();
        let resolved = ResolvedClass::new(read).counted(counter.clone());
        for _ in 0..5 {
            assert!(resolved.spec().is_err(), "no objects");
        }
        assert_eq!(counter.get(), 1);
    }

    #[test]
    fn the_namespace_is_the_requests_then_the_pods() {
        let pod = json!({"metadata": {"namespace": "own"}});
        let ctx = Context {
            namespace: Some("request"),
            template: false,
        };
        assert_eq!(ctx.namespace(&pod), "request");
        assert_eq!(Context::default().namespace(&pod), "own");
        assert_eq!(Context::default().namespace(&json!({})), "default");
    }
}
