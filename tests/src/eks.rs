//! What EKS adds to a pod before this webhook sees it (or after, on re-invocation): the
//! pod-identity webhook's IRSA variables, projected token volume and mounts.

use serde_json::{Value, json};

pub const TOKEN_DIR: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";

/// Adds IRSA as the EKS pod-identity webhook does for a service account annotated with
/// `eks.amazonaws.com/role-arn`: env in every container and init container, the `aws-iam-token`
/// projected volume, and its read-only mount. Extra variables (such as `AWS_ENDPOINT_URL`, to
/// point the SDK at an emulator) go into the same containers.
pub fn add_irsa(pod: &mut Value, role_arn: &str, region: &str, extra_env: &[(&str, &str)]) {
    let mut env = vec![
        ("AWS_STS_REGIONAL_ENDPOINTS", "regional"),
        ("AWS_DEFAULT_REGION", region),
        ("AWS_REGION", region),
        ("AWS_ROLE_ARN", role_arn),
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
        ),
    ];
    env.extend_from_slice(extra_env);
    let spec = pod["spec"].as_object_mut().expect("pod spec");
    for list in ["initContainers", "containers"] {
        for container in spec
            .get_mut(list)
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let c = container.as_object_mut().expect("container");
            let vars = c
                .entry("env")
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .expect("env list");
            for (name, value) in &env {
                if !vars.iter().any(|v| v["name"] == *name) {
                    vars.push(json!({"name": name, "value": value}));
                }
            }
            c.entry("volumeMounts")
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .expect("mount list")
                .push(json!({"name": "aws-iam-token", "mountPath": TOKEN_DIR, "readOnly": true}));
        }
    }
    spec.entry("volumes")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .expect("volume list")
        .push(json!({
            "name": "aws-iam-token",
            "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {
                "audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"
            }}]}
        }));
}
