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

/// An `admission.k8s.io/v1` AdmissionReview for updating `old` to `new` (a Pod or a workload).
pub fn update_review(uid: &str, old: &Value, new: &Value, namespace: &str) -> Value {
    let mut review = create_review(uid, new, namespace);
    let mut old = old.clone();
    old["metadata"]["namespace"] = json!(namespace);
    let request = &mut review["request"];
    request["operation"] = json!("UPDATE");
    request["oldObject"] = old;
    request["options"] = json!({"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"});
    review
}

/// The fields of `request` in the order the API server writes them (the Go struct's order):
/// `kind` and `operation` come before `object`.
const REQUEST_ORDER: [&str; 15] = [
    "uid",
    "kind",
    "resource",
    "subResource",
    "requestKind",
    "requestResource",
    "requestSubResource",
    "name",
    "namespace",
    "operation",
    "userInfo",
    "object",
    "oldObject",
    "dryRun",
    "options",
];

/// A review as the bytes the API server sends: `apiVersion`, `kind`, then `request` with its
/// fields in the API server's order (a `serde_json::Value` would sort them, putting `object`
/// before `operation`). Fields the API does not have follow, sorted.
pub fn body(review: &Value) -> Vec<u8> {
    let text = |v: &Value| serde_json::to_string(v).expect("JSON");
    let Some(request) = review.get("request").and_then(Value::as_object) else {
        return serde_json::to_vec(review).expect("JSON");
    };
    let mut fields: Vec<String> = REQUEST_ORDER
        .iter()
        .filter_map(|key| {
            request
                .get(*key)
                .map(|v| format!("{}:{}", text(&json!(key)), text(v)))
        })
        .collect();
    fields.extend(
        request
            .iter()
            .filter(|(key, _)| !REQUEST_ORDER.contains(&key.as_str()))
            .map(|(key, v)| format!("{}:{}", text(&json!(key)), text(v))),
    );
    let mut head = serde_json::Map::new();
    for (key, v) in review.as_object().into_iter().flatten() {
        if key != "request" {
            head.insert(key.clone(), v.clone());
        }
    }
    let head = text(&Value::Object(head));
    let head = head.strip_suffix('}').expect("an object");
    let comma = if head.len() > 1 { "," } else { "" };
    format!("{head}{comma}\"request\":{{{}}}}}", fields.join(",")).into_bytes()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_keeps_the_api_servers_order_and_every_field() {
        let review = create_review(
            "u",
            &json!({"kind": "Pod", "metadata": {"name": "p"}}),
            "ns",
        );
        let body = body(&review);
        let text = std::str::from_utf8(&body).unwrap();
        let at = |key: &str| text.find(&format!("\"{key}\":")).unwrap();
        assert!(
            at("uid") < at("operation") && at("operation") < at("object"),
            "{text}"
        );
        assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), review);
    }
}
