//! One AdmissionRequest in, one AdmissionResponse out: pods being created are mutated; the pod
//! templates of workloads are checked with the same rules and denied when bad, never changed.

use kube_core::DynamicObject;
use kube_core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube_core::response::Status;

use crate::config::MutationConfig;
use crate::mutate::{Decision, mutate};

/// The response and what was decided, for logs and metrics.
#[derive(Debug)]
pub struct Outcome {
    pub response: AdmissionResponse,
    /// `skipped`, `mutated`, `unchanged`, `denied` or `checked`.
    pub decision: &'static str,
}

/// Where a workload kind keeps its pod template, as a JSON pointer and as a field path for
/// messages.
pub(crate) fn template_location(group: &str, kind: &str) -> Option<(&'static str, &'static str)> {
    match (group, kind) {
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") | ("batch", "Job") => {
            Some(("/spec/template", "spec.template"))
        }
        ("batch", "CronJob") => Some((
            "/spec/jobTemplate/spec/template",
            "spec.jobTemplate.spec.template",
        )),
        _ => None,
    }
}

/// Answers one admission request.
pub fn respond(req: &AdmissionRequest<DynamicObject>, cfg: &MutationConfig) -> Outcome {
    let allowed = AdmissionResponse::from(req);
    let skipped = || Outcome {
        response: AdmissionResponse::from(req),
        decision: "skipped",
    };
    if req.sub_resource.is_some() {
        return skipped();
    }
    let Some(object) = &req.object else {
        return skipped();
    };
    let object = match serde_json::to_value(object) {
        Ok(object) => object,
        Err(e) => return denied(allowed, &format!("the object cannot be read: {e}")),
    };
    let (group, kind) = (req.kind.group.as_str(), req.kind.kind.as_str());
    if (group, kind) == ("", "Pod") {
        if !matches!(req.operation, Operation::Create) {
            return skipped();
        }
        return match mutate(&object, cfg) {
            Decision::Skip => skipped(),
            Decision::Deny(message) => denied(allowed, &message),
            Decision::Patch { patch, warnings } => {
                let decision = if patch.0.is_empty() {
                    "unchanged"
                } else {
                    "mutated"
                };
                let response = with_warnings(allowed, warnings);
                let response = if patch.0.is_empty() {
                    Ok(response)
                } else {
                    response.with_patch(patch)
                };
                match response {
                    Ok(response) => Outcome { response, decision },
                    Err(e) => denied(
                        AdmissionResponse::from(req),
                        &format!("the patch cannot be written: {e}"),
                    ),
                }
            }
        };
    }
    let Some((pointer, field)) = template_location(group, kind) else {
        return skipped();
    };
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return skipped();
    }
    let Some(template) = object.pointer(pointer) else {
        return skipped();
    };
    match mutate(template, cfg) {
        Decision::Skip => skipped(),
        Decision::Deny(message) => denied(allowed, &format!("{field}: {message}")),
        Decision::Patch { warnings, .. } => Outcome {
            response: with_warnings(allowed, prefixed(field, warnings)),
            decision: "checked",
        },
    }
}

fn prefixed(field: &str, warnings: Vec<String>) -> Vec<String> {
    warnings
        .into_iter()
        .map(|w| format!("{field}: {w}"))
        .collect()
}

fn with_warnings(mut response: AdmissionResponse, warnings: Vec<String>) -> AdmissionResponse {
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
    }
    response
}

/// `allowed: false` with status code 400 and the message: the object is what is wrong.
fn denied(response: AdmissionResponse, message: &str) -> Outcome {
    let mut response = response.deny(message);
    response.result = Status::failure(message, "BadRequest").with_code(400);
    Outcome {
        response,
        decision: "denied",
    }
}

/// The review-level tests use whole AdmissionReview bodies as the API server sends them.
#[cfg(test)]
mod tests {
    use kube_core::admission::AdmissionReview;
    use serde_json::{Value, json};

    use super::*;

    fn request(
        kind: (&str, &str, &str),
        operation: &str,
        object: Value,
    ) -> AdmissionRequest<DynamicObject> {
        let (group, version, kind_name) = kind;
        let resource = format!("{}s", kind_name.to_lowercase());
        let body = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                "kind": {"group": group, "version": version, "kind": kind_name},
                "resource": {"group": group, "version": version, "resource": resource},
                "name": "web",
                "namespace": "apps",
                "operation": operation,
                "userInfo": {"username": "admin"},
                "object": object,
                "dryRun": false
            }
        });
        let review: AdmissionReview<DynamicObject> = serde_json::from_value(body).unwrap();
        review.try_into().unwrap()
    }

    fn pod(annotations: Value) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web", "namespace": "apps", "annotations": annotations},
            "spec": {"containers": [{"name": "app", "image": "nginx"}]}
        })
    }

    fn cfg() -> MutationConfig {
        let mut cfg = MutationConfig::for_tests("injector:1");
        cfg.default_region = Some("eu-west-1".to_owned());
        cfg
    }

    const OBJECTS: &str = "- objectName: /app/db\n  objectType: ssmparameter\n";

    #[test]
    fn created_pod_is_mutated() {
        let req = request(
            ("", "v1", "Pod"),
            "CREATE",
            pod(json!({"secrets-injector.io/objects": OBJECTS})),
        );
        let outcome = respond(&req, &cfg());
        assert_eq!(outcome.decision, "mutated");
        assert!(outcome.response.allowed);
        assert_eq!(outcome.response.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
        let patch: json_patch::Patch =
            serde_json::from_slice(outcome.response.patch.as_deref().unwrap()).unwrap();
        assert!(!patch.0.is_empty());
        let review = serde_json::to_value(outcome.response.into_review()).unwrap();
        assert_eq!(review["response"]["patchType"], json!("JSONPatch"));
    }

    #[test]
    fn pod_not_asking_is_skipped() {
        let req = request(("", "v1", "Pod"), "CREATE", pod(json!({"other": "x"})));
        let outcome = respond(&req, &cfg());
        assert_eq!(outcome.decision, "skipped");
        assert!(outcome.response.allowed);
        assert!(outcome.response.patch.is_none());
    }

    #[test]
    fn only_pod_creation_mutates() {
        let req = request(
            ("", "v1", "Pod"),
            "UPDATE",
            pod(json!({"secrets-injector.io/objects": OBJECTS})),
        );
        let outcome = respond(&req, &cfg());
        assert_eq!(outcome.decision, "skipped");
        assert!(outcome.response.allowed);
        assert!(outcome.response.patch.is_none());
    }

    #[test]
    fn bad_pod_is_denied_with_400() {
        let req = request(
            ("", "v1", "Pod"),
            "CREATE",
            pod(json!({"secrets-injector.io/objects": "[]"})),
        );
        let outcome = respond(&req, &cfg());
        assert_eq!(outcome.decision, "denied");
        assert!(!outcome.response.allowed);
        assert_eq!(outcome.response.result.code, 400);
        assert!(
            outcome
                .response
                .result
                .message
                .contains("secrets-injector.io/objects")
        );
        let review = serde_json::to_value(outcome.response.into_review()).unwrap();
        assert_eq!(review["response"]["status"]["code"], json!(400));
        assert!(review["response"].get("patch").is_none());
    }

    #[test]
    fn converged_pod_is_unchanged() {
        let cfg = cfg();
        let mut object = pod(json!({"secrets-injector.io/objects": OBJECTS}));
        let Decision::Patch { patch, .. } = mutate(&object, &cfg) else {
            panic!("expected a patch");
        };
        json_patch::patch(&mut object, &patch).unwrap();
        let outcome = respond(&request(("", "v1", "Pod"), "CREATE", object), &cfg);
        assert_eq!(outcome.decision, "unchanged");
        assert!(outcome.response.allowed);
        assert!(outcome.response.patch.is_none());
    }

    fn deployment(annotations: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "apps"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}, "annotations": annotations},
                    "spec": {"containers": [{"name": "app", "image": "nginx"}]}
                }
            }
        })
    }

    #[test]
    fn workload_templates_are_checked_not_patched() {
        let good = deployment(
            json!({"secrets-injector.io/objects": OBJECTS, "secrets-injector.io/regoin": "x"}),
        );
        for operation in ["CREATE", "UPDATE"] {
            let outcome = respond(
                &request(("apps", "v1", "Deployment"), operation, good.clone()),
                &cfg(),
            );
            assert_eq!(outcome.decision, "checked");
            assert!(outcome.response.allowed);
            assert!(outcome.response.patch.is_none());
            let warnings = outcome.response.warnings.unwrap();
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(
                warnings[0].starts_with(
                    "spec.template: annotation secrets-injector.io/regoin is not known"
                ),
                "{warnings:?}"
            );
        }
        let bad = deployment(
            json!({"secrets-injector.io/objects": OBJECTS, "secrets-injector.io/mount-path": "relative"}),
        );
        let outcome = respond(
            &request(("apps", "v1", "Deployment"), "UPDATE", bad),
            &cfg(),
        );
        assert_eq!(outcome.decision, "denied");
        assert_eq!(outcome.response.result.code, 400);
        assert!(
            outcome.response.result.message.starts_with(
                "spec.template: annotation secrets-injector.io/mount-path: \"relative\" is not an absolute path"
            ),
            "{}",
            outcome.response.result.message
        );
        let outcome = respond(
            &request(
                ("apps", "v1", "Deployment"),
                "DELETE",
                deployment(json!({})),
            ),
            &cfg(),
        );
        assert_eq!(outcome.decision, "skipped");
    }

    #[test]
    fn cronjob_template_is_checked() {
        let cronjob = json!({
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "nightly"},
            "spec": {
                "schedule": "0 3 * * *",
                "jobTemplate": {"spec": {"template": {
                    "metadata": {"annotations": {"secrets-injector.io/objects": OBJECTS, "secrets-injector.io/init-first": "yes"}},
                    "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "job", "image": "busybox"}]}
                }}}
            }
        });
        let outcome = respond(
            &request(("batch", "v1", "CronJob"), "CREATE", cronjob),
            &cfg(),
        );
        assert_eq!(outcome.decision, "denied");
        assert!(
            outcome.response.result.message.starts_with(
                "spec.jobTemplate.spec.template: annotation secrets-injector.io/init-first: \"yes\" is not a boolean"
            ),
            "{}",
            outcome.response.result.message
        );
    }

    #[test]
    fn other_kinds_are_skipped() {
        let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "annotations": {"secrets-injector.io/objects": "[]"}}});
        let outcome = respond(
            &request(("", "v1", "ConfigMap"), "CREATE", config_map),
            &cfg(),
        );
        assert_eq!(outcome.decision, "skipped");
        assert!(outcome.response.allowed);
    }
}
