//! The `secrets-injector.io/secret-provider-class` annotation: a pod's objects and settings taken
//! from a SecretProviderClass of its namespace instead of the `objects` annotation, and the
//! lookup of a class shared with the CSI volume rewrite (`csi`).

use serde_json::Value;

use secrets_injector_objects::annotations::{INJECT, OBJECTS, SECRET_PROVIDER_CLASS};
use secrets_injector_objects::class::{self, ClassSpec, KIND, Refusal};
use secrets_injector_objects::error::{Error, Errors};

use super::classes::{Context, Lookup};
use super::config::MutationConfig;
use crate::pod;

/// How to turn the feature on, for denials that need it.
pub const HOW_TO_ENABLE: &str = "start the webhook with --secret-provider-classes (Helm value \
     secretProviderClasses.enabled: true, or the kustomize component \
     components/secret-provider-classes)";

/// Where a pod's objects come from.
pub enum Source<'a> {
    /// The pod asks for nothing.
    None,
    Deny(String),
    /// The `objects` annotation.
    Annotation(&'a str),
    /// The class the `secret-provider-class` annotation names, checked.
    Class(Box<FromClass>),
}

/// A class's settings and objects, with the class's name for messages.
#[derive(Debug)]
pub struct FromClass {
    pub name: String,
    pub spec: ClassSpec,
}

impl FromClass {
    /// Problems of the class's objects list, named by the class.
    pub fn errors(&self, errors: &Errors) -> Errors {
        class::class_errors(&self.name, errors)
    }

    /// The class's own warnings, then the objects list's, named by the class.
    pub fn warnings(&self, plan_warnings: &[String]) -> Vec<String> {
        let own = self.spec.warnings.iter().cloned();
        own.chain(
            plan_warnings
                .iter()
                .map(|warning| class::class_warning(&self.name, warning)),
        )
        .collect()
    }
}

/// What the pod's annotations ask for.
pub fn source<'a>(pod: &'a Value, cfg: &MutationConfig, ctx: &Context<'_>) -> Source<'a> {
    let non_blank = |name| pod::annotation(pod, name).filter(|text| !text.trim().is_empty());
    if pod::annotation(pod, INJECT) == Some("false") {
        return Source::None;
    }
    match (non_blank(OBJECTS), non_blank(SECRET_PROVIDER_CLASS)) {
        (None, None) => Source::None,
        (Some(objects), None) => Source::Annotation(objects),
        (Some(_), Some(_)) => Source::Deny(format!(
            "annotations {OBJECTS} and {SECRET_PROVIDER_CLASS} are both set; a pod takes its \
             objects from one of them: remove one"
        )),
        (None, Some(name)) if !cfg.classes_enabled() => Source::Deny(format!(
            "annotation {SECRET_PROVIDER_CLASS}: this webhook does not read {KIND}es; {HOW_TO_ENABLE}, \
             or list the objects in the annotation {OBJECTS} instead of naming class {name:?}"
        )),
        (None, Some(name)) => {
            if let Err(problem) = class::check_name(name) {
                return Source::Deny(format!("annotation {SECRET_PROVIDER_CLASS}: {problem}"));
            }
            let namespace = ctx.namespace(pod);
            match find(cfg, namespace, name) {
                Found::Spec(spec) => Source::Class(Box::new(FromClass {
                    name: name.to_owned(),
                    spec,
                })),
                Found::Missing => Source::Deny(format!(
                    "annotation {SECRET_PROVIDER_CLASS}: {}",
                    missing(name, namespace)
                )),
                Found::Unavailable(reason) => Source::Deny(format!(
                    "annotation {SECRET_PROVIDER_CLASS}: {}",
                    unavailable(name, &reason)
                )),
                Found::Refused(Refusal::Invalid(errors)) => Source::Deny(errors.to_string()),
                Found::Refused(refusal) => Source::Deny(format!(
                    "annotation {SECRET_PROVIDER_CLASS}: {KIND} {name} cannot be used: {}",
                    refusal.reason()
                )),
            }
        }
    }
}

/// What looking up a class for the injector found.
pub enum Found {
    Spec(ClassSpec),
    Missing,
    Unavailable(String),
    Refused(Refusal),
}

/// The class `name` of `namespace`, checked for the injector. A name the API server could not
/// hold is refused before it is looked up (so it never reaches a request path).
pub fn find(cfg: &MutationConfig, namespace: &str, name: &str) -> Found {
    if let Err(problem) = class::check_name(name) {
        return Found::Refused(Refusal::Invalid(Errors(vec![Error::pod(problem)])));
    }
    match cfg.classes.0.class(namespace, name) {
        Lookup::Missing => Found::Missing,
        Lookup::Unavailable(reason) => Found::Unavailable(reason),
        // Derived once per class, however many volumes name it.
        Lookup::Found(class) => match class.spec() {
            Err(refusal) => Found::Refused(refusal.clone()),
            Ok(spec) => Found::Spec(spec.clone()),
        },
    }
}

/// A class that does not exist.
pub fn missing(name: &str, namespace: &str) -> String {
    format!(
        "{KIND} {name:?} does not exist in namespace {namespace:?}; create it there (before the \
         pod), or fix the name"
    )
}

/// Classes that cannot be read.
pub fn unavailable(name: &str, reason: &str) -> String {
    format!("{KIND} {name:?} cannot be read: {reason}")
}
