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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::admission::parse_with;
    use crate::mutation::CsiVolumes;

    fn review(kind: (&str, &str), operation: &str, object: serde_json::Value) -> Vec<u8> {
        let body = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "1", "kind": {"group": kind.0, "version": "v1", "kind": kind.1},
                "resource": {"group": kind.0, "version": "v1", "resource": "x"},
                "namespace": "team", "operation": operation,
                "userInfo": {"username": "u"}, "object": object,
            }
        });
        serde_json::to_vec(&body).unwrap()
    }

    fn pod(class: &str) -> serde_json::Value {
        json!({"metadata": {"annotations": {"secrets-injector.io/secret-provider-class": "annotated"}},
               "spec": {"containers": [{"name": "a", "image": "a"}],
                        "volumes": [{"name": "v", "csi": {"driver": "secrets-store.csi.k8s.io",
                                     "volumeAttributes": {"secretProviderClass": class}}}]}})
    }

    fn names(body: &[u8], cfg: &MutationConfig) -> Vec<String> {
        let request = parse_with(body, cfg.csi_volumes == CsiVolumes::Rewrite).unwrap();
        let names = class_names(&request, cfg);
        if !names.names.is_empty() {
            assert_eq!(names.namespace, "team");
        }
        names.names
    }

    #[test]
    fn the_classes_of_pods_and_templates_as_respond_reads_them() {
        let mut cfg = MutationConfig::for_tests("i");
        cfg.csi_volumes = CsiVolumes::Rewrite;
        assert_eq!(
            names(&review(("", "Pod"), "CREATE", pod("vol")), &cfg),
            ["annotated", "vol"]
        );
        assert!(names(&review(("", "Pod"), "UPDATE", pod("vol")), &cfg).is_empty());
        let deployment = json!({"spec": {"template": pod("dep")}});
        assert_eq!(
            names(&review(("apps", "Deployment"), "UPDATE", deployment), &cfg),
            ["annotated", "dep"]
        );
        let cron = json!({"spec": {"jobTemplate": {"spec": {"template": pod("cron")}}}});
        assert_eq!(
            names(&review(("batch", "CronJob"), "CREATE", cron), &cfg),
            ["annotated", "cron"]
        );
        assert!(names(&review(("", "ConfigMap"), "CREATE", pod("x")), &cfg).is_empty());
        // The feature off: nothing to look up.
        let off = MutationConfig::for_tests("i");
        assert!(names(&review(("", "Pod"), "CREATE", pod("vol")), &off).is_empty());
        cfg.csi_volumes = CsiVolumes::Ignore;
        cfg.secret_provider_classes = true;
        assert_eq!(
            names(&review(("", "Pod"), "CREATE", pod("vol")), &cfg),
            ["annotated"]
        );
    }
}
