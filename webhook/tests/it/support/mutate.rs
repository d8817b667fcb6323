//! Shared by the `mutate_*` tests: fixtures, applying decisions, and the checks the API server
//! makes on the mutated pod.

use std::collections::BTreeSet;
use std::path::PathBuf;

use json_patch::Patch;
use secrets_injector_webhook::mutation::MutationConfig;
use secrets_injector_webhook::mutation::{Decision, mutate};
use serde_json::Value;

pub const IMAGE: &str = "public.ecr.aws/example/secrets-injector:0.1.0";

/// The webhook's default settings with a default region.
pub fn cfg() -> MutationConfig {
    let mut cfg = MutationConfig::for_tests(IMAGE);
    cfg.default_region = Some("us-west-2".to_owned());
    cfg
}

/// A fixture under tests/fixtures, JSON or YAML by extension.
pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if name.ends_with(".json") {
        serde_json::from_str(&text).unwrap()
    } else {
        serde_saphyr::from_str(&text).unwrap()
    }
}

/// The patch and warnings; panics on a skip or a denial.
pub fn patch_of(pod: &Value, cfg: &MutationConfig) -> (Patch, Vec<String>) {
    match mutate(pod, cfg) {
        Decision::Patch { patch, warnings } => (patch, warnings),
        other => panic!("expected a patch, got {other:?}"),
    }
}

/// The denial message; panics otherwise.
pub fn denial(pod: &Value, cfg: &MutationConfig) -> String {
    match mutate(pod, cfg) {
        Decision::Deny(message) => message,
        other => panic!("expected a denial, got {other:?}"),
    }
}

/// The pod after its patch, checked against the API server's rules.
pub fn mutated(pod: &Value, cfg: &MutationConfig) -> (Value, Vec<String>) {
    let (patch, warnings) = patch_of(pod, cfg);
    let mut out = pod.clone();
    json_patch::patch(&mut out, &patch).unwrap_or_else(|e| {
        panic!(
            "patch {} does not apply: {e}",
            serde_json::to_string(&patch).unwrap()
        )
    });
    if let Err(problem) = api_rules(&out) {
        panic!("the mutated pod breaks the API server's rules: {problem}\n{out:#}");
    }
    (out, warnings)
}

/// Mutating again changes nothing.
pub fn assert_converged(pod: &Value, cfg: &MutationConfig) {
    let (patch, _) = patch_of(pod, cfg);
    assert!(
        patch.0.is_empty(),
        "mutating again gave {}",
        serde_json::to_string(&patch).unwrap()
    );
}

/// Sets annotations (creating metadata.annotations as needed).
pub fn annotate(pod: &mut Value, pairs: &[(&str, &str)]) {
    let annotations = pod
        .as_object_mut()
        .unwrap()
        .entry("metadata")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()
        .unwrap()
        .entry("annotations")
        .or_insert_with(|| serde_json::json!({}));
    for (key, value) in pairs {
        annotations[*key] = Value::String((*value).to_owned());
    }
}

pub fn list<'a>(pod: &'a Value, key: &str) -> &'a [Value] {
    pod["spec"][key].as_array().map_or(&[], Vec::as_slice)
}

pub fn named<'a>(pod: &'a Value, key: &str, name: &str) -> &'a Value {
    list(pod, key)
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {key} named {name}"))
}

/// The webhook's init container.
pub fn injector(pod: &Value) -> &Value {
    named(pod, "initContainers", "secrets-injector")
}

/// The mount of the webhook's volume in a container, if any.
pub fn own_mount(container: &Value) -> Option<&Value> {
    container["volumeMounts"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == "secrets-injector")
}

/// The checks of the API server's pod validation that a patch can break: unique container names
/// (across regular and init containers), unique volume names, every mount naming a volume, no two
/// mounts at one path in a container.
pub fn api_rules(pod: &Value) -> Result<(), String> {
    let mut names = BTreeSet::new();
    for key in ["initContainers", "containers"] {
        for container in list(pod, key) {
            let name = container["name"]
                .as_str()
                .ok_or("a container has no name")?;
            if !names.insert(name.to_owned()) {
                return Err(format!("container name {name} is not unique"));
            }
        }
    }
    let mut volumes = BTreeSet::new();
    for volume in list(pod, "volumes") {
        let name = volume["name"].as_str().ok_or("a volume has no name")?;
        if !volumes.insert(name.to_owned()) {
            return Err(format!("volume name {name} is not unique"));
        }
    }
    for key in ["initContainers", "containers"] {
        for container in list(pod, key) {
            let mut paths = BTreeSet::new();
            for mount in container["volumeMounts"]
                .as_array()
                .map_or(&[][..], Vec::as_slice)
            {
                let volume = mount["name"].as_str().ok_or("a mount has no name")?;
                if !volumes.contains(volume) {
                    return Err(format!(
                        "mount of {volume} in {} names no volume",
                        container["name"]
                    ));
                }
                let path = mount["mountPath"].as_str().ok_or("a mount has no path")?;
                if !paths.insert(path.to_owned()) {
                    return Err(format!("two mounts at {path} in {}", container["name"]));
                }
            }
        }
    }
    Ok(())
}

/// Validates pods with kubernetes-validate (strict, Kubernetes 1.33) in one run.
pub fn validate(pods: &[(&str, &Value)]) {
    validate_for(&[secrets_injector_e2e::validate::KUBERNETES_VERSION], pods);
}

/// [`validate`] against the schemas of each of `versions`.
pub fn validate_for(versions: &[&str], pods: &[(&str, &Value)]) {
    let manifests: Vec<(String, String)> = pods
        .iter()
        .map(|(name, pod)| {
            (
                format!("{name}.json"),
                serde_json::to_string_pretty(pod).unwrap(),
            )
        })
        .collect();
    if let Err(report) =
        secrets_injector_e2e::validate::validate_manifests_for(versions, &manifests)
    {
        panic!("{report}");
    }
}

/// The denial of `pod` under `cfg`, checked to contain every one of `expected`.
pub fn assert_denied_with(pod: &Value, cfg: &MutationConfig, expected: &[&str]) -> String {
    let message = denial(pod, cfg);
    for part in expected {
        assert!(message.contains(part), "expected {part:?} in:\n{message}");
    }
    message
}
