//! Graceful degradation in the cluster, as the shipped manifests decide it: when the webhook is
//! down or times out, pod creation in an opted-in namespace fails loudly (failurePolicy Fail:
//! a pod never runs without its secrets), and no other namespace ever calls the webhook
//! (namespaceSelector), so a webhook outage cannot stop kube-system or the webhook itself.
//! Renders the manifests with `kubectl kustomize`, as `kubectl apply -k` would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The documents `kubectl kustomize DIR` renders.
fn kustomize(dir: &Path) -> Vec<Value> {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("kubectl is needed to render the manifests ({e}); install kubectl")
        });
    assert!(
        output.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).expect("UTF-8 manifests");
    serde_saphyr::from_multiple(&text).expect("rendered manifests are YAML")
}

fn webhook_configurations(documents: &[Value]) -> Vec<&Value> {
    let found: Vec<&Value> = documents
        .iter()
        .filter(|d| d["kind"] == "MutatingWebhookConfiguration")
        .collect();
    assert_eq!(found.len(), 1, "one MutatingWebhookConfiguration");
    found
}

/// Whether a label selector (matchLabels and matchExpressions) selects these labels.
fn selects(selector: &Value, labels: &BTreeMap<&str, &str>) -> bool {
    let labels_match = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k.as_str()).copied() == v.as_str());
    let expressions_match = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e["key"].as_str().expect("key");
            let values: Vec<&str> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let value = labels.get(key).copied();
            match e["operator"].as_str().expect("operator") {
                "In" => value.is_some_and(|v| values.contains(&v)),
                "NotIn" => value.is_none_or(|v| !values.contains(&v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                other => panic!("unknown operator {other}"),
            }
        });
    labels_match && expressions_match
}

fn namespace(
    name: &'static str,
    inject: Option<&'static str>,
) -> BTreeMap<&'static str, &'static str> {
    let mut labels = BTreeMap::from([("kubernetes.io/metadata.name", name)]);
    if let Some(value) = inject {
        labels.insert("secrets-injector.io/inject", value);
    }
    labels
}

/// The rules every shipped configuration keeps, whichever way it selects pods.
fn check_degradation(configuration: &Value) {
    let webhooks = configuration["webhooks"].as_array().expect("webhooks");
    let names: Vec<&str> = webhooks.iter().filter_map(|w| w["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "pods.secrets-injector.io",
            "workloads.secrets-injector.io",
            "ephemeral.secrets-injector.io"
        ],
        "pods, workloads and ephemeral containers"
    );
    for webhook in webhooks {
        let name = webhook["name"].as_str().expect("name");
        // Down or slow means the request fails, never that the pod starts without its secrets.
        assert_eq!(webhook["failurePolicy"], "Fail", "{name}");
        assert_eq!(
            webhook["sideEffects"], "None",
            "{name}: dry runs must be safe"
        );
        let timeout = webhook["timeoutSeconds"].as_u64().expect("timeoutSeconds");
        assert!(
            (1..=10).contains(&timeout),
            "{name}: timeoutSeconds {timeout}"
        );
        assert_eq!(
            webhook["clientConfig"]["service"]["path"], "/mutate",
            "{name}"
        );
        // kube-system and the webhook's own namespace are never sent to it, whatever their
        // labels: the control plane and the webhook's own pods start while it is down.
        let selector = &webhook["namespaceSelector"];
        for excluded in ["kube-system", "secrets-injector"] {
            assert!(
                !selects(selector, &namespace(excluded, Some("enabled"))),
                "{name}: namespace {excluded} would call the webhook"
            );
        }
        let operations: Vec<&str> = webhook["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .flat_map(|r| r["operations"].as_array().expect("operations"))
            .filter_map(Value::as_str)
            .collect();
        assert!(
            !operations.contains(&"DELETE") && !operations.contains(&"*"),
            "{name}: {operations:?}"
        );
        let resources: Vec<&str> = webhook["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .flat_map(|r| r["resources"].as_array().expect("resources"))
            .filter_map(Value::as_str)
            .collect();
        // No wildcard, and of the subresources only the one `kubectl debug` adds containers by.
        assert!(
            !resources
                .iter()
                .any(|r| r.contains('*') || (r.contains('/') && *r != "pods/ephemeralcontainers")),
            "{name}: {resources:?}"
        );
    }
}

#[test]
fn the_default_install_fails_closed_in_opted_in_namespaces_only() {
    let documents = kustomize(&root().join("manifests"));
    let configuration = webhook_configurations(&documents)[0];
    check_degradation(configuration);
    for webhook in configuration["webhooks"].as_array().expect("webhooks") {
        let name = webhook["name"].as_str().expect("name");
        let selector = &webhook["namespaceSelector"];
        assert!(
            webhook.get("objectSelector").is_none_or(Value::is_null),
            "{name}"
        );
        assert!(
            selects(selector, &namespace("apps", Some("enabled"))),
            "{name}: an opted-in namespace is not selected"
        );
        for (ns, label) in [
            ("default", None),
            ("apps", Some("disabled")),
            ("apps", Some("true")),
            ("apps", Some("")),
        ] {
            assert!(
                !selects(selector, &namespace(ns, label)),
                "{name}: namespace {ns} {label:?} would call the webhook"
            );
        }
    }
    // Pods pass through the pods webhook only (UPDATEs to be denied when they change the
    // injector's image); workloads are checked, not mutated; ephemeral containers are checked
    // when added.
    let pods = &configuration["webhooks"][0];
    assert_eq!(pods["rules"][0]["resources"], serde_json::json!(["pods"]));
    assert_eq!(
        pods["rules"][0]["operations"],
        serde_json::json!(["CREATE", "UPDATE"])
    );
    let ephemeral = &configuration["webhooks"][2];
    assert_eq!(
        ephemeral["rules"][0]["resources"],
        serde_json::json!(["pods/ephemeralcontainers"])
    );
    assert_eq!(
        ephemeral["rules"][0]["operations"],
        serde_json::json!(["UPDATE"])
    );
}

#[test]
fn the_webhook_itself_survives_node_loss_and_drains() {
    let documents = kustomize(&root().join("manifests"));
    let deployment = documents
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("the webhook's Deployment");
    // With failurePolicy Fail, an outage blocks pods in opted-in namespaces: keep one up.
    assert!(
        deployment["spec"]["replicas"]
            .as_u64()
            .is_some_and(|r| r >= 2),
        "{}",
        deployment["spec"]["replicas"]
    );
    let pdb = documents
        .iter()
        .find(|d| d["kind"] == "PodDisruptionBudget")
        .expect("a PodDisruptionBudget");
    assert!(
        pdb["spec"]["minAvailable"].as_u64().is_some_and(|m| m >= 1)
            || pdb["spec"]["maxUnavailable"] == 1,
        "{pdb}"
    );
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    // Readiness drops before the listener closes (SIGTERM), so the Service stops sending first.
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"], "/readyz",
        "{container}"
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["scheme"], "HTTPS",
        "{container}"
    );
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    assert!(
        grace >= 10,
        "terminationGracePeriodSeconds {grace}: too short to drain"
    );
    // The webhook needs no Kubernetes API access and no AWS credentials.
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert!(
        !serde_json::to_string(pod).expect("json").contains("AWS_"),
        "the webhook gets AWS settings"
    );
}

#[test]
fn the_object_selector_component_keeps_the_same_guarantees() {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = root().join("manifests/base");
    let component = root().join("manifests/components/object-selector");
    let relative = |p: &Path| -> String {
        // kustomize wants paths relative to the kustomization; go up from the temp dir.
        let up = "../".repeat(dir.path().components().count() - 1);
        format!(
            "{up}{}",
            p.canonicalize()
                .expect("path")
                .display()
                .to_string()
                .trim_start_matches('/')
        )
    };
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - {}\ncomponents:\n  - {}\n",
            relative(&base),
            relative(&component)
        ),
    )
    .expect("write the overlay");
    let documents = kustomize(dir.path());
    let configuration = webhook_configurations(&documents)[0];
    check_degradation(configuration);
    for webhook in configuration["webhooks"].as_array().expect("webhooks") {
        let name = webhook["name"].as_str().expect("name");
        if name == "ephemeral.secrets-injector.io" {
            // Pod labels may change after injection: its matchCondition selects the pods.
            assert!(
                webhook.get("objectSelector").is_none_or(Value::is_null),
                "{name}"
            );
            assert!(webhook["matchConditions"].is_array(), "{name}");
            continue;
        }
        let objects = &webhook["objectSelector"];
        let opted_in = BTreeMap::from([("secrets-injector.io/inject", "true")]);
        assert!(
            selects(objects, &opted_in),
            "{name}: a labelled pod is not selected"
        );
        assert!(
            !selects(objects, &BTreeMap::new()),
            "{name}: an unlabelled pod would call the webhook"
        );
        assert!(
            !selects(
                objects,
                &BTreeMap::from([("secrets-injector.io/inject", "false")])
            ),
            "{name}: a pod labelled false would call the webhook"
        );
    }
}

#[test]
fn the_cert_manager_overlay_keeps_the_same_guarantees() {
    let documents = kustomize(&root().join("manifests/overlays/cert-manager"));
    let configuration = webhook_configurations(&documents)[0];
    check_degradation(configuration);
    assert!(
        configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].is_string(),
        "the caBundle comes from cert-manager"
    );
}
