//! The SecretProviderClasses one request's pod or pod template names (the ones `respond` will
//! have the mutation look up), found the way `respond` finds the pod, so `webhook serve` can look
//! them up before the mutation runs.

use serde_json::Value;

use super::respond::template_location;
use super::review::{Object, Operation, Request};
use crate::mutation::class_names::{self, ClassNames};
use crate::mutation::{Context, MutationConfig};

/// The classes to look up for `req` (none when its answer looks up none).
pub fn class_names(req: &Request<'_>, cfg: &MutationConfig) -> ClassNames {
    let none = ClassNames::default();
    if !cfg.classes_enabled() || req.sub_resource.is_some() {
        return none;
    }
    let Some(object) = &req.object else {
        return none;
    };
    let (group, kind) = (req.kind.group.as_ref(), req.kind.kind.as_ref());
    let (template, pointer) = if (group, kind) == ("", "Pod") {
        if req.operation != Operation::Create {
            return none;
        }
        (false, "")
    } else {
        match template_location(group, kind) {
            Some((pointer, _))
                if matches!(req.operation, Operation::Create | Operation::Update) =>
            {
                (true, pointer)
            }
            _ => return none,
        }
    };
    let ctx = Context {
        namespace: req.namespace.as_deref(),
        template,
    };
    let raw = match object {
        Object::Pod(pod) if !template => return class_names::in_pod(pod, &ctx, cfg),
        Object::Pod(_) => return none,
        Object::Raw(raw) => raw.get(),
    };
    if !class_names::may_name_classes(raw, cfg) {
        return none;
    }
    // Unreadable: `respond` denies it without looking anything up.
    let Ok(object) = serde_json::from_str::<Value>(raw) else {
        return none;
    };
    match object.pointer(pointer) {
        Some(pod) => class_names::in_pod(pod, &ctx, cfg),
        None => none,
    }
}
