//! Templates (SPEC "Templates: files rendered from several values"): the `templates` annotation
//! checked at admission against the files the pod's own objects write (the plan `inject` checked),
//! each template compiled (through `secrets_injector_objects::template`, the injector's own rules)
//! and remembered in the template cache; then handed to the init container `secrets-injector` as
//! one `--templates=` word before the object list, which stays last. The refresh sidecar copies
//! its init container's arguments, so it renders the same templates.
//!
//! Templates render the `objects` annotation's values: a pod whose objects come from a
//! SecretProviderClass, or that has only CSI volumes, is denied.

use serde_json::{Value, json};

use secrets_injector_objects::annotations::{
    INIT_CONTAINER_NAME, INJECT, OBJECTS, SECRET_PROVIDER_CLASS, TEMPLATES,
};
use secrets_injector_objects::template;

use super::config::MutationConfig;
use super::container;
use super::edit::Edit;
use crate::pod;

/// Reads and checks the `templates` annotation against what `inject` found, and passes the
/// templates to the init container that fills the webhook's volume.
pub fn add(pod: &Value, cfg: &MutationConfig, edit: &mut Edit) {
    let Some(text) = pod::annotation(pod, TEMPLATES) else {
        return;
    };
    if pod::annotation(pod, INJECT) == Some("false") {
        return;
    }
    let non_blank = |name| pod::annotation(pod, name).filter(|t| !t.trim().is_empty());
    let Some(objects) = non_blank(OBJECTS) else {
        let why = if non_blank(SECRET_PROVIDER_CLASS).is_some() {
            format!(
                "the pod takes its objects from a SecretProviderClass ({SECRET_PROVIDER_CLASS}); \
                 list them in the annotation {OBJECTS} instead"
            )
        } else if edit.asks() {
            format!(
                "the pod's only objects are those of its CSI volumes; list the objects the \
                 templates read in the annotation {OBJECTS}"
            )
        } else {
            format!("the pod has no objects; add the annotation {OBJECTS}, or remove {TEMPLATES}")
        };
        return edit.deny(format!(
            "annotation {TEMPLATES}: templates render the values of the annotation {OBJECTS}, \
             and {why}"
        ));
    };
    let Some(injected) = &edit.injected else {
        // `inject` denied the pod before it read the objects (a Windows pod, no spec).
        return;
    };
    let checked = match &injected.plan {
        Some(plan) => cfg.templates.check(text, objects, plan),
        // The objects are denied already; the templates' own problems are told with them.
        None => template::parse(text, objects.len(), None)
            .map(std::sync::Arc::new)
            .map_err(std::sync::Arc::new),
    };
    let templates = match checked {
        Ok(templates) => templates,
        Err(errors) => return edit.problems.extend(errors.0.iter().cloned()),
    };
    let Some(plan) = &injected.plan else {
        return;
    };
    // Whom the files belong to: the app's user, or the mesh proxy's under the bypass.
    let app = container::app_identity(&injected.identity, edit.mesh.bypass);
    let unreadable = templates.unreadable(plan, app);
    if !unreadable.is_empty() {
        return edit.problems.extend(unreadable);
    }
    edit.warnings.extend(templates.warnings.iter().cloned());
    if let Some(injected) = &mut edit.injected {
        injected.templates = templates.items.iter().map(|t| t.name.to_string()).collect();
    }
    let Some(filler) = edit
        .init
        .iter_mut()
        .find(|init| init.name == INIT_CONTAINER_NAME)
    else {
        return;
    };
    if let Some(args) = filler.fields.get_mut("args").and_then(Value::as_array_mut) {
        // The object list stays the last word: the longest, and the one people look for.
        let at = args.len().saturating_sub(1);
        args.insert(at, json!(format!("--templates={text}")));
    }
}
