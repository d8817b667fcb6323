//! AdmissionReview bodies as the API server sends them, and the patch of the answer applied as
//! the API server applies it (RFC 6902).

use base64::Engine;
use serde_json::{Value, json};

/// An `admission.k8s.io/v1` AdmissionReview for creating `object` (a Pod or a workload).
pub fn create_review(uid: &str, object: &Value, namespace: &str) -> Value {
    let kind = object["kind"].as_str().unwrap_or("Pod");
    let api_version = object["apiVersion"].as_str().unwrap_or("v1");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = format!("{}s", kind.to_lowercase());
    // The API server fills in the namespace of the request before it calls webhooks.
    let mut object = object.clone();
    object["metadata"]["namespace"] = json!(namespace);
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "requestKind": {"group": group, "version": version, "kind": kind},
            "requestResource": {"group": group, "version": version, "resource": resource},
            "name": object["metadata"]["name"].as_str().unwrap_or(""),
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": object,
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}

/// Applies the JSONPatch of an AdmissionReview answer's `response` to `object`; an answer with
/// no patch leaves it as it is.
pub fn apply_patch(object: &Value, response: &Value) -> Value {
    let mut object = object.clone();
    if let Some(encoded) = response["patch"].as_str() {
        assert_eq!(response["patchType"], "JSONPatch");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .expect("patch is base64");
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("a JSONPatch");
        json_patch::patch(&mut object, &patch).expect("the patch applies");
    }
    object
}
