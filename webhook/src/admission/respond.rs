//! One AdmissionRequest in, one AdmissionResponse out: pods being created are mutated; a pod
//! UPDATE is denied when it changes the injector's image, never changed; an UPDATE of a pod's
//! ephemeral containers is denied when a new one could write the webhook's volumes, never
//! changed; the pod templates of workloads are checked with the same rules and denied when bad,
//! never changed.

use serde_json::Value;

use serde_json::value::RawValue;

use super::ephemeral;
use super::review::{self, Object, Operation, Request, Response};
use crate::mutation::{Context, CsiVolumes, Decision, MutationConfig, check_template, mutate_in};
use crate::pod::pruned;

/// The response and what was decided, for logs and metrics.
#[derive(Debug)]
pub struct Outcome {
    pub response: Response,
    pub verdict: Verdict,
    /// The object's name, or its `generateName` when it has none yet (empty when neither was
    /// read).
    pub name: String,
}

/// What was decided about a request, as logs and metrics name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not a request the webhook looks at, or a pod that does not ask for objects.
    Skipped,
    /// A pod being created, patched.
    Mutated,
    /// A pod being created that already has everything: allowed without a patch.
    Unchanged,
    Denied,
    /// A workload's pod template, a pod UPDATE or an UPDATE of its ephemeral containers, found
    /// good (never patched).
    Checked,
}

impl Verdict {
    /// The `decision` label of logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Skipped => "skipped",
            Self::Mutated => "mutated",
            Self::Unchanged => "unchanged",
            Self::Denied => "denied",
            Self::Checked => "checked",
        }
    }
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
pub fn respond(req: &Request<'_>, cfg: &MutationConfig) -> Outcome {
    let name = req.name.as_deref().unwrap_or_default();
    let skipped = |name: &str| Outcome {
        response: Response::allow(&req.uid),
        verdict: Verdict::Skipped,
        name: name.to_owned(),
    };
    let Some(object) = &req.object else {
        return skipped(name);
    };
    let (group, kind) = (req.kind.group.as_ref(), req.kind.kind.as_ref());
    if let Some(sub_resource) = req.sub_resource.as_deref() {
        return match (group, kind, sub_resource, req.operation, object) {
            ("", "Pod", ephemeral::SUBRESOURCE, Operation::Update, Object::Raw(raw)) => {
                ephemeral_update(req, raw, name)
            }
            _ => skipped(name),
        };
    }
    if (group, kind) == ("", "Pod") {
        if req.operation == Operation::Update {
            return match object {
                Object::Raw(raw) => pod_update(req, raw, name),
                Object::Pod(_) => skipped(name),
            };
        }
        if req.operation != Operation::Create {
            return skipped(name);
        }
        let read;
        let object = match object {
            Object::Pod(pod) => pod,
            Object::Raw(raw) => match read_pod(raw, cfg) {
                Ok(pod) => {
                    read = pod;
                    &read
                }
                Err(e) => return unreadable(req, name, &e),
            },
        };
        let name = name_of(name, object);
        let outcome = |response, verdict| Outcome {
            response,
            verdict,
            name: name.to_owned(),
        };
        let ctx = Context {
            namespace: req.namespace.as_deref(),
            template: false,
        };
        return match mutate_in(object, &ctx, cfg) {
            Decision::Skip => skipped(name),
            Decision::Deny(message) => outcome(Response::deny(&req.uid, message), Verdict::Denied),
            Decision::Patch { patch, warnings } => {
                let mut response = Response::allow(&req.uid);
                response.warnings = warnings;
                if patch.0.is_empty() {
                    return outcome(response, Verdict::Unchanged);
                }
                // A pod's patch is a few KiB: one allocation instead of a series of doublings.
                let mut bytes = Vec::with_capacity(4096);
                match serde_json::to_writer(&mut bytes, &patch) {
                    Ok(()) => {
                        response.patch = Some(bytes);
                        outcome(response, Verdict::Mutated)
                    }
                    Err(e) => outcome(
                        Response::deny(&req.uid, format!("the patch cannot be written: {e}")),
                        Verdict::Denied,
                    ),
                }
            }
        };
    }
    let Some((pointer, field)) = template_location(group, kind) else {
        return skipped(name);
    };
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return skipped(name);
    }
    // Only a pod being created is read pruned; a workload's object is always raw.
    let Object::Raw(raw) = object else {
        return skipped(name);
    };
    let object: Value = match serde_json::from_str(raw.get()) {
        Ok(object) => object,
        Err(e) => return unreadable(req, name, &e),
    };
    let name = name_of(name, &object);
    let Some(template) = object.pointer(pointer) else {
        return skipped(name);
    };
    let ctx = Context {
        namespace: req.namespace.as_deref(),
        template: true,
    };
    let response = match check_template(template, &ctx, cfg) {
        Decision::Skip => return skipped(name),
        Decision::Deny(message) => {
            return Outcome {
                response: Response::deny(&req.uid, format!("{field}: {message}")),
                verdict: Verdict::Denied,
                name: name.to_owned(),
            };
        }
        Decision::Patch { warnings, .. } => {
            let mut response = Response::allow(&req.uid);
            response.warnings = prefixed(field, warnings);
            response
        }
    };
    Outcome {
        response,
        verdict: Verdict::Checked,
        name: name.to_owned(),
    }
}

/// A pod UPDATE: the webhook set its init containers' image when the pod was created, and the API
/// server lets an UPDATE change an init container's image, so one that changes it is denied.
/// Nothing else is checked and nothing is patched: the rest of a running pod's spec is immutable,
/// and label or finalizer changes on injected pods must keep working.
fn pod_update(req: &Request<'_>, object: &RawValue, name: &str) -> Outcome {
    let read = review::injector_images;
    let (new, old) = match (read(object), req.old_object.map(read).transpose()) {
        (Ok(new), Ok(old)) => (new, old.unwrap_or_default()),
        (Err(e), _) | (_, Err(e)) => return unreadable(req, name, &e),
    };
    if new == old {
        return Outcome {
            response: Response::allow(&req.uid),
            verdict: Verdict::Checked,
            name: name.to_owned(),
        };
    }
    // The first container whose image is new, position by position (an UPDATE cannot add or
    // remove init containers, so the lists line up; comparing each entry with every other would
    // grow with the square of a list the body can make 100,000 long); else one that went away.
    let (container, image) = new
        .iter()
        .zip(&old)
        .find(|(new, old)| new != old)
        .map(|(new, _)| new)
        .or_else(|| new.get(old.len()))
        .or_else(|| old.get(new.len()))
        .map_or(("", None), |(container, image)| {
            (container.as_ref(), image.as_deref())
        });
    let image = image.map_or_else(|| "no image".to_owned(), |image| format!("image {image:?}"));
    Outcome {
        response: Response::deny(
            &req.uid,
            format!(
                "init container {container:?} ({image} in this update): the injector's image is set by the webhook and cannot be changed on a running pod; recreate the pod (delete it, or roll out its workload) to run another injector image"
            ),
        ),
        verdict: Verdict::Denied,
        name: name.to_owned(),
    }
}

/// An UPDATE of `pods/ephemeralcontainers` (`kubectl debug`): allowed or denied, never patched.
fn ephemeral_update(req: &Request<'_>, object: &RawValue, name: &str) -> Outcome {
    let (response, verdict) = match ephemeral::review(object, req.old_object) {
        None => (Response::allow(&req.uid), Verdict::Checked),
        Some(message) => (Response::deny(&req.uid, message), Verdict::Denied),
    };
    Outcome {
        response,
        verdict,
        name: name.to_owned(),
    }
}

/// A pod kept raw, read pruned; with its spec whatever its annotations say when CSI volumes are
/// rewritten.
fn read_pod(raw: &RawValue, cfg: &MutationConfig) -> serde_json::Result<Value> {
    if cfg.csi_volumes == CsiVolumes::Rewrite {
        pruned::read_with::<true>(raw)
    } else {
        pruned::read(raw)
    }
}

/// The request's name, or the object's `generateName` while the API server has not named it yet
/// (pods of a ReplicaSet), so logs say which workload it was.
fn name_of<'a>(name: &'a str, object: &'a Value) -> &'a str {
    if !name.is_empty() {
        return name;
    }
    object
        .pointer("/metadata/generateName")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The object is not JSON (the review around it was): denied, naming the problem.
fn unreadable(req: &Request<'_>, name: &str, e: &serde_json::Error) -> Outcome {
    Outcome {
        response: Response::deny(&req.uid, format!("the object cannot be read: {e}")),
        verdict: Verdict::Denied,
        name: name.to_owned(),
    }
}

fn prefixed(field: &str, warnings: Vec<String>) -> Vec<String> {
    warnings
        .into_iter()
        .map(|w| format!("{field}: {w}"))
        .collect()
}

/// The review-level tests use whole AdmissionReview bodies as the API server sends them.
#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::admission;
    use crate::mutation::mutate;

    use super::*;

    fn request(kind: (&str, &str, &str), operation: &str, object: Value) -> Vec<u8> {
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
        serde_json::to_vec(&body).unwrap()
    }

    /// The answer to a review body, parsed as the server parses it.
    fn answer(body: &[u8], cfg: &MutationConfig) -> Outcome {
        respond(&admission::parse(body).unwrap(), cfg)
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
        let outcome = answer(&req, &cfg());
        assert_eq!(outcome.verdict, Verdict::Mutated);
        assert!(outcome.response.allowed);
        assert_eq!(outcome.response.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
        let patch: json_patch::Patch =
            serde_json::from_slice(outcome.response.patch.as_deref().unwrap()).unwrap();
        assert!(!patch.0.is_empty());
        let review = serde_json::from_slice::<Value>(&outcome.response.to_review_json()).unwrap();
        assert_eq!(review["response"]["patchType"], json!("JSONPatch"));
    }

    #[test]
    fn pod_not_asking_is_skipped() {
        let req = request(("", "v1", "Pod"), "CREATE", pod(json!({"other": "x"})));
        let outcome = answer(&req, &cfg());
        assert_eq!(outcome.verdict, Verdict::Skipped);
        assert!(outcome.response.allowed);
        assert!(outcome.response.patch.is_none());
    }

    /// An UPDATE of `old` to `new`, as the API server sends it.
    fn update(old: Value, new: Value) -> Vec<u8> {
        let mut body: Value =
            serde_json::from_slice(&request(("", "v1", "Pod"), "UPDATE", new)).unwrap();
        body["request"]["oldObject"] = old;
        serde_json::to_vec(&body).unwrap()
    }

    /// The injected pod, as the API server stores it.
    fn injected() -> Value {
        let mut object = pod(json!({"secrets-injector.io/objects": OBJECTS}));
        let Decision::Patch { patch, .. } = mutate(&object, &cfg()) else {
            panic!("expected a patch");
        };
        json_patch::patch(&mut object, &patch).unwrap();
        object
    }

    #[test]
    fn a_pod_update_is_never_patched() {
        // Not injected yet, forged, or injected: whatever else changes, no patch.
        let mut forged = pod(json!({"secrets-injector.io/objects": OBJECTS}));
        forged["spec"]["initContainers"] =
            json!([{"name": "secrets-injector", "image": "evil:1", "args": ["--steal"]}]);
        for old in [
            pod(json!({"secrets-injector.io/objects": OBJECTS})),
            forged,
            injected(),
        ] {
            let mut new = old.clone();
            new["metadata"]["labels"] = json!({"app": "web"});
            let outcome = answer(&update(old, new), &cfg());
            assert_eq!(outcome.verdict, Verdict::Checked);
            assert!(outcome.response.allowed);
            assert!(outcome.response.patch.is_none());
        }
    }

    #[test]
    fn a_pod_update_changing_the_injector_image_is_denied() {
        let old = injected();
        for container in ["secrets-injector", "secrets-injector-2"] {
            let mut old = old.clone();
            old["spec"]["initContainers"][0]["name"] = json!(container);
            let mut new = old.clone();
            new["spec"]["initContainers"][0]["image"] = json!("evil.example/miner:1");
            let outcome = answer(&update(old.clone(), new.clone()), &cfg());
            assert_eq!(outcome.verdict, Verdict::Denied, "{container}");
            let message = &outcome.response.denial.as_ref().unwrap().message;
            assert!(
                message.starts_with(&format!(
                    "init container {container:?} (image \"evil.example/miner:1\" in this update): the injector's image is set by the webhook and cannot be changed on a running pod; recreate the pod"
                )),
                "{message}"
            );
            // Its image removed: denied too.
            new["spec"]["initContainers"][0]
                .as_object_mut()
                .unwrap()
                .remove("image");
            let outcome = answer(&update(old, new), &cfg());
            assert_eq!(outcome.verdict, Verdict::Denied, "{container}");
        }
        // Another init container's image may change (the API server allows it): not ours.
        let mut old = old;
        old["spec"]["initContainers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "setup", "image": "busybox:1"}));
        let mut new = old.clone();
        new["spec"]["initContainers"][1]["image"] = json!("busybox:2");
        let outcome = answer(&update(old, new), &cfg());
        assert_eq!(outcome.verdict, Verdict::Checked);
        assert!(outcome.response.allowed);
    }

    /// 30,000 init containers under the webhook's prefix, the last one's image changed: the
    /// lists are compared position by position, and the denial names that one.
    #[test]
    fn a_pod_update_with_thousands_of_injector_like_containers_names_the_changed_one() {
        let containers: Vec<Value> = (0..30_000)
            .map(|i| json!({"name": format!("secrets-injector-{i}"), "image": "injector:1"}))
            .collect();
        let mut old = injected();
        old["spec"]["initContainers"] = Value::Array(containers);
        let mut new = old.clone();
        new["spec"]["initContainers"][29_999]["image"] = json!("evil:1");
        let outcome = answer(&update(old, new), &cfg());
        assert_eq!(outcome.verdict, Verdict::Denied);
        let message = &outcome.response.denial.as_ref().unwrap().message;
        assert!(
            message.starts_with("init container \"secrets-injector-29999\" (image \"evil:1\""),
            "{message}"
        );
    }

    #[test]
    fn bad_pod_is_denied_with_400() {
        let req = request(
            ("", "v1", "Pod"),
            "CREATE",
            pod(json!({"secrets-injector.io/objects": "[]"})),
        );
        let outcome = answer(&req, &cfg());
        assert_eq!(outcome.verdict, Verdict::Denied);
        assert!(!outcome.response.allowed);
        assert_eq!(outcome.response.denial.as_ref().unwrap().code, 400);
        assert!(
            outcome
                .response
                .denial
                .as_ref()
                .unwrap()
                .message
                .contains("secrets-injector.io/objects")
        );
        let review = serde_json::from_slice::<Value>(&outcome.response.to_review_json()).unwrap();
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
        let outcome = answer(&request(("", "v1", "Pod"), "CREATE", object), &cfg);
        assert_eq!(outcome.verdict, Verdict::Unchanged);
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
            let outcome = answer(
                &request(("apps", "v1", "Deployment"), operation, good.clone()),
                &cfg(),
            );
            assert_eq!(outcome.verdict, Verdict::Checked);
            assert!(outcome.response.allowed);
            assert!(outcome.response.patch.is_none());
            let warnings = outcome.response.warnings;
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
        let outcome = answer(
            &request(("apps", "v1", "Deployment"), "UPDATE", bad),
            &cfg(),
        );
        assert_eq!(outcome.verdict, Verdict::Denied);
        assert_eq!(outcome.response.denial.as_ref().unwrap().code, 400);
        assert!(
            outcome.response.denial.as_ref().unwrap().message.starts_with(
                "spec.template: annotation secrets-injector.io/mount-path: \"relative\" is not an absolute path"
            ),
            "{}",
            outcome.response.denial.as_ref().unwrap().message
        );
        let outcome = answer(
            &request(
                ("apps", "v1", "Deployment"),
                "DELETE",
                deployment(json!({})),
            ),
            &cfg(),
        );
        assert_eq!(outcome.verdict, Verdict::Skipped);
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
        let outcome = answer(
            &request(("batch", "v1", "CronJob"), "CREATE", cronjob),
            &cfg(),
        );
        assert_eq!(outcome.verdict, Verdict::Denied);
        assert!(
            outcome.response.denial.as_ref().unwrap().message.starts_with(
                "spec.jobTemplate.spec.template: annotation secrets-injector.io/init-first: \"yes\" is not a boolean"
            ),
            "{}",
            outcome.response.denial.as_ref().unwrap().message
        );
    }

    #[test]
    fn other_kinds_are_skipped() {
        let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "annotations": {"secrets-injector.io/objects": "[]"}}});
        let outcome = answer(
            &request(("", "v1", "ConfigMap"), "CREATE", config_map),
            &cfg(),
        );
        assert_eq!(outcome.verdict, Verdict::Skipped);
        assert!(outcome.response.allowed);
    }

    /// The pod is read pruned on CREATE: the ephemeral containers' mounts are kept for the check.
    #[test]
    fn a_writable_mount_of_the_files_in_an_ephemeral_container_is_denied() {
        let mut object = pod(json!({"secrets-injector.io/objects": OBJECTS}));
        object["spec"]["ephemeralContainers"] = json!([{
            "name": "debug", "image": "busybox",
            "volumeMounts": [{"name": "secrets-injector", "mountPath": "/s"}]
        }]);
        let outcome = answer(&request(("", "v1", "Pod"), "CREATE", object), &cfg());
        assert_eq!(outcome.verdict, Verdict::Denied);
        let message = &outcome.response.denial.as_ref().unwrap().message;
        assert!(
            message.contains(
                "container \"debug\" mounts the volume \"secrets-injector\" at /s writable"
            ),
            "{message}"
        );
    }

    #[test]
    fn only_an_update_of_the_ephemeral_containers_is_reviewed_among_subresources() {
        let old = injected();
        let mut new = old.clone();
        new["spec"]["ephemeralContainers"] = json!([{
            "name": "debug", "image": "busybox",
            "volumeMounts": [{"name": "secrets-injector", "mountPath": "/s"}]
        }]);
        let with = |new: &Value, sub_resource: &str, operation: &str| {
            let mut body: Value =
                serde_json::from_slice(&update(old.clone(), new.clone())).unwrap();
            body["request"]["subResource"] = json!(sub_resource);
            body["request"]["operation"] = json!(operation);
            answer(&serde_json::to_vec(&body).unwrap(), &cfg())
        };
        let outcome = with(&new, "ephemeralcontainers", "UPDATE");
        assert_eq!(outcome.verdict, Verdict::Denied);
        assert!(outcome.response.patch.is_none());
        for (sub_resource, operation) in [
            ("status", "UPDATE"),
            ("ephemeralcontainers", "CREATE"),
            ("binding", "CREATE"),
        ] {
            let outcome = with(&new, sub_resource, operation);
            assert_eq!(
                outcome.verdict,
                Verdict::Skipped,
                "{sub_resource} {operation}"
            );
        }
        new["spec"]["ephemeralContainers"][0]["volumeMounts"][0]["readOnly"] = json!(true);
        let outcome = with(&new, "ephemeralcontainers", "UPDATE");
        assert_eq!(outcome.verdict, Verdict::Checked);
        assert!(outcome.response.allowed);
        assert!(outcome.response.patch.is_none());
    }

    #[test]
    fn the_pruned_and_the_whole_pod_agree_on_who_asks() {
        let cfg = cfg();
        let cases = [
            json!({"secrets-injector.io/objects": OBJECTS}),
            json!({"secrets-injector.io/objects": ""}),
            json!({"secrets-injector.io/objects": OBJECTS, "secrets-injector.io/inject": "false"}),
            json!({"secrets-injector.io/objects": OBJECTS, "secrets-injector.io/inject": "no"}),
            json!({"secrets-injector.io/objects": 7}),
            json!({"secrets-injector.io/inject": "true"}),
            json!({}),
        ];
        for annotations in cases {
            let object = pod(annotations.clone());
            let full = !matches!(mutate(&object, &cfg), Decision::Skip);
            let outcome = answer(&request(("", "v1", "Pod"), "CREATE", object), &cfg);
            assert_eq!(outcome.verdict != Verdict::Skipped, full, "{annotations}");
        }
    }
}
