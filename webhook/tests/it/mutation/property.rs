//! Many generated pods (seeded, so every run checks the same ones): the patch applies to any
//! shape of pod, the result passes the API server's rules and kubernetes-validate, a clash of the
//! mount path is denied exactly when there is one, and mutating twice equals mutating once.

use std::collections::BTreeSet;

use crate::support::mutate::*;
use secrets_injector_webhook::mutation::{Decision, mutate};
use serde_json::{Map, Value, json};

const PODS: usize = 400;

/// SplitMix64: small, deterministic, good enough to spread the cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Volumes a generated container may mount, with where.
const MOUNTABLE: [(&str, &str); 5] = [
    ("data", "/data"),
    ("cache", "/var/cache/app"),
    ("config", "/etc/app"),
    (
        "aws-iam-token",
        "/var/run/secrets/eks.amazonaws.com/serviceaccount",
    ),
    ("corp-ca", "/etc/pki/corp"),
];

const MOUNT_PATHS: [&str; 6] = [
    "/mnt/secrets-store",
    "/run/secrets/app",
    "/etc/app/secrets",
    "/data",
    "/var/cache",
    "/etc/pki/corp/extra",
];

fn gen_env(rng: &mut Rng) -> Vec<Value> {
    let candidates = [
        json!({"name": "AWS_REGION", "value": "eu-west-1"}),
        json!({"name": "AWS_DEFAULT_REGION", "value": "eu-west-1"}),
        json!({"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::123456789012:role/app"}),
        json!({"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}),
        json!({"name": "AWS_CA_BUNDLE", "value": "/etc/pki/corp/ca.pem"}),
        json!({"name": "AWS_PROFILE", "valueFrom": {"configMapKeyRef": {"name": "aws", "key": "profile"}}}),
        json!({"name": "https_proxy", "value": "http://proxy:3128"}),
        json!({"name": "NO_PROXY", "value": ".svc"}),
        json!({"name": "HOME", "value": "/home/app"}),
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}),
    ];
    candidates.into_iter().filter(|_| rng.percent(35)).collect()
}

fn gen_container(rng: &mut Rng, name: &str, volumes: &mut BTreeSet<&'static str>) -> Value {
    let mut container = Map::new();
    container.insert("name".into(), json!(name));
    container.insert(
        "image".into(),
        json!(format!("registry.example.com/{name}:1")),
    );
    if rng.percent(60) {
        container.insert("env".into(), Value::Array(gen_env(rng)));
    }
    if rng.percent(60) {
        let mut mounts: Vec<Value> = Vec::new();
        for (volume, path) in MOUNTABLE {
            if rng.percent(40) {
                volumes.insert(volume);
                mounts
                    .push(json!({"name": volume, "mountPath": path, "readOnly": rng.percent(50)}));
            }
        }
        container.insert("volumeMounts".into(), Value::Array(mounts));
    }
    if rng.percent(40) {
        let mut context = Map::new();
        if rng.percent(60) {
            context.insert("runAsUser".into(), json!(*rng.pick(&[0, 1000, 10001])));
        }
        if rng.percent(40) {
            context.insert("runAsGroup".into(), json!(*rng.pick(&[0, 3000])));
        }
        if rng.percent(30) {
            context.insert("readOnlyRootFilesystem".into(), json!(true));
        }
        container.insert("securityContext".into(), Value::Object(context));
    }
    Value::Object(container)
}

fn gen_volume(name: &str) -> Value {
    match name {
        "aws-iam-token" => {
            json!({"name": name, "projected": {"sources": [{"serviceAccountToken": {"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}})
        }
        "config" | "corp-ca" => json!({"name": name, "configMap": {"name": name}}),
        _ => json!({"name": name, "emptyDir": {}}),
    }
}

fn gen_pod(rng: &mut Rng, index: usize) -> Value {
    let mut volumes: BTreeSet<&'static str> = BTreeSet::new();
    let regular_names = ["app", "sidecar", "metrics"];
    let regular: Vec<Value> = regular_names[..1 + rng.below(3)]
        .iter()
        .map(|name| gen_container(rng, name, &mut volumes))
        .collect();
    let init_names = ["setup", "proxy"];
    let init: Option<Vec<Value>> = match rng.below(3) {
        0 => None,
        1 => Some(Vec::new()),
        _ => Some(
            init_names[..1 + rng.below(2)]
                .iter()
                .map(|name| {
                    let mut container = gen_container(rng, name, &mut volumes);
                    if *name == "proxy" {
                        container["restartPolicy"] = json!("Always");
                    }
                    container
                })
                .collect(),
        ),
    };
    let mut annotations = Map::new();
    // Keys that need JSON-pointer escaping ('/' as ~1, '~' as ~0) around the webhook's own.
    annotations.insert("team.example.com/owner".into(), json!("payments"));
    if rng.percent(30) {
        annotations.insert("example.com/odd~key".into(), json!("x"));
    }
    if rng.percent(90) {
        annotations.insert(
            "secrets-injector.io/objects".into(),
            json!("- objectName: /app/db\n  objectType: ssmparameter\n- objectName: app/api\n  objectType: secretsmanager\n"),
        );
    }
    if rng.percent(5) {
        annotations.insert("secrets-injector.io/inject".into(), json!("false"));
    }
    if rng.percent(50) {
        annotations.insert(
            "secrets-injector.io/mount-path".into(),
            json!(*rng.pick(&MOUNT_PATHS)),
        );
    }
    if rng.percent(30) {
        let names = ["app", "sidecar", "metrics", "setup", "proxy", "ghost"];
        let chosen: Vec<&str> = names.iter().copied().filter(|_| rng.percent(40)).collect();
        annotations.insert(
            "secrets-injector.io/containers".into(),
            json!(chosen.join(",")),
        );
    }
    if rng.percent(20) {
        annotations.insert(
            "secrets-injector.io/init-first".into(),
            json!(*rng.pick(&["true", "false"])),
        );
    }
    if rng.percent(10) {
        annotations.insert("secrets-injector.io/status".into(), json!("stale"));
    }
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(format!("generated-{index}")));
    metadata.insert("annotations".into(), Value::Object(annotations));

    let mut spec = Map::new();
    spec.insert("containers".into(), Value::Array(regular));
    if let Some(init) = init {
        spec.insert("initContainers".into(), Value::Array(init));
    }
    let mut volume_list: Vec<Value> = volumes.iter().map(|name| gen_volume(name)).collect();
    if rng.percent(20) {
        volume_list.push(json!({"name": "unused", "emptyDir": {}}));
    }
    if !volume_list.is_empty() || rng.percent(50) {
        spec.insert("volumes".into(), Value::Array(volume_list));
    }
    if rng.percent(50) {
        let mut context = Map::new();
        if rng.percent(50) {
            context.insert("runAsUser".into(), json!(2000));
        }
        if rng.percent(50) {
            context.insert("fsGroup".into(), json!(2000));
        }
        spec.insert("securityContext".into(), Value::Object(context));
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}

/// An independent statement of the clash rule over the generated (normal) paths.
fn expect_clash(pod: &Value) -> bool {
    let annotations = &pod["metadata"]["annotations"];
    let mount_path = annotations["secrets-injector.io/mount-path"]
        .as_str()
        .unwrap_or("/mnt/secrets-store");
    let named: Option<Vec<&str>> = annotations["secrets-injector.io/containers"]
        .as_str()
        .map(|text| {
            text.split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .collect()
        })
        .filter(|names: &Vec<&str>| !names.is_empty());
    let is_target = |key: &str, container: &Value| match &named {
        Some(names) => names.contains(&container["name"].as_str().unwrap()),
        None => key == "containers",
    };
    let inside =
        |outer: &str, inner: &str| inner == outer || inner.starts_with(&format!("{outer}/"));
    ["containers", "initContainers"].iter().any(|key| {
        list(pod, key)
            .iter()
            .filter(|c| is_target(key, c))
            .any(|container| {
                container["volumeMounts"]
                    .as_array()
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    .filter(|m| m["name"] != "secrets-injector")
                    .any(|m| {
                        let existing = m["mountPath"].as_str().unwrap();
                        inside(existing, mount_path) || inside(mount_path, existing)
                    })
            })
    })
}

fn asks(pod: &Value) -> bool {
    let annotations = &pod["metadata"]["annotations"];
    annotations.get("secrets-injector.io/objects").is_some()
        && annotations["secrets-injector.io/inject"] != "false"
}

#[test]
fn generated_pods_mutate_soundly_and_converge() {
    let cfg = cfg();
    let mut rng = Rng(0x5EC2_E75F_1A7E_C702);
    let mut to_validate: Vec<(String, Value)> = Vec::new();
    let (mut patched, mut denied, mut skipped) = (0, 0, 0);
    for index in 0..PODS {
        let pod = gen_pod(&mut rng, index);
        match mutate(&pod, &cfg) {
            Decision::Skip => {
                assert!(!asks(&pod), "pod {index} asks but was skipped:\n{pod:#}");
                skipped += 1;
            }
            Decision::Deny(message) => {
                assert!(asks(&pod));
                assert!(
                    expect_clash(&pod),
                    "pod {index} denied without a clash: {message}\n{pod:#}"
                );
                assert!(
                    message.starts_with("annotation secrets-injector.io/mount-path: "),
                    "{message}"
                );
                denied += 1;
            }
            Decision::Patch { patch, .. } => {
                assert!(asks(&pod));
                assert!(
                    !expect_clash(&pod),
                    "pod {index} has a clash but was patched:\n{pod:#}"
                );
                let mut once = pod.clone();
                json_patch::patch(&mut once, &patch).unwrap_or_else(|e| {
                    panic!(
                        "pod {index}: {e}\npatch {}\n{pod:#}",
                        serde_json::to_string(&patch).unwrap()
                    )
                });
                api_rules(&once).unwrap_or_else(|e| panic!("pod {index}: {e}\n{once:#}"));
                // Mutating twice equals mutating once.
                match mutate(&once, &cfg) {
                    Decision::Patch { patch, .. } => assert!(
                        patch.0.is_empty(),
                        "pod {index}: second mutation gave {}",
                        serde_json::to_string(&patch).unwrap()
                    ),
                    other => panic!("pod {index}: second mutation gave {other:?}"),
                }
                // Everything the pod had is still there.
                assert_eq!(
                    once["metadata"]["annotations"]["team.example.com/owner"],
                    "payments"
                );
                assert_eq!(
                    once["metadata"]["annotations"]["secrets-injector.io/status"],
                    "injected"
                );
                assert_eq!(
                    list(&once, "containers").len(),
                    list(&pod, "containers").len()
                );
                assert_eq!(
                    list(&once, "initContainers").len(),
                    list(&pod, "initContainers").len() + 1
                );
                to_validate.push((format!("generated-{index}"), once));
                patched += 1;
            }
        }
    }
    // The generator must reach every outcome, or the test proves little.
    assert!(patched > PODS / 2, "patched {patched}");
    assert!(denied > 10, "denied {denied}");
    assert!(skipped > 10, "skipped {skipped}");
    let batch: Vec<(&str, &Value)> = to_validate.iter().map(|(n, p)| (n.as_str(), p)).collect();
    validate(&batch);
}

#[test]
fn generated_pods_with_the_webhooks_parts_already_there_converge_in_one_step() {
    // A pod produced by another configuration (other image, size, mount path) or forged: one
    // mutation brings it to the current state.
    let mut rng = Rng(0xC0FF_EE00_D15E_A5E5);
    let mut other = cfg();
    other.injector_image = "old.example.com/injector:0.0.1".to_owned();
    other.volume_size_limit = "4Mi".parse().unwrap();
    other.injector_cpu_limit = "1".parse().unwrap();
    let current = cfg();
    let mut checked = 0;
    for index in 0..PODS {
        let pod = gen_pod(&mut rng, index);
        let Decision::Patch { patch, .. } = mutate(&pod, &other) else {
            continue;
        };
        let mut old = pod.clone();
        json_patch::patch(&mut old, &patch).unwrap();
        let Decision::Patch { patch, .. } = mutate(&old, &current) else {
            panic!("pod {index}: the current settings must accept what older ones accepted");
        };
        let mut now = old.clone();
        json_patch::patch(&mut now, &patch).unwrap();
        api_rules(&now).unwrap_or_else(|e| panic!("pod {index}: {e}"));
        let fresh = {
            let Decision::Patch { patch, .. } = mutate(&pod, &current) else {
                unreachable!("accepted above");
            };
            let mut fresh = pod.clone();
            json_patch::patch(&mut fresh, &patch).unwrap();
            fresh
        };
        assert_eq!(
            now, fresh,
            "pod {index}: converging differs from injecting afresh"
        );
        checked += 1;
    }
    assert!(checked > PODS / 2, "checked {checked}");
}

/// Containers only the webhook names, as a pod might carry them: forged (another image, junk
/// fields), stale (a sidecar no annotation asks for), or twice.
fn forged_container(rng: &mut Rng) -> Value {
    let name = *rng.pick(&[
        "secrets-injector",
        "secrets-injector-refresh",
        "secrets-injector-refresh-gone",
    ]);
    let mut container = json!({"name": name, "image": "evil.example.com/x:1"});
    if rng.percent(50) {
        container["command"] = json!(["/bin/sh", "-c", "cat /mnt/secrets-store/*"]);
    }
    if rng.percent(50) {
        container["restartPolicy"] = json!("Always");
    }
    if rng.percent(30) {
        container["securityContext"] = json!({"privileged": true});
    }
    container
}

#[test]
fn forged_misplaced_or_stale_parts_converge_in_one_step() {
    // Whatever of the webhook's containers a pod carries, and wherever: one mutation gives what
    // a fresh injection gives (the pod's own containers untouched, in their order), and a second
    // mutation changes nothing.
    let cfg = cfg();
    let mut rng = Rng(0xF0E6_ED00_0B5E_55ED);
    let mut checked = 0;
    for index in 0..PODS {
        let mut pod = gen_pod(&mut rng, index);
        if rng.percent(50) {
            pod["metadata"]["annotations"]["secrets-injector.io/refresh-interval"] = json!("5m");
        }
        let clean = pod.clone();
        let init = pod["spec"]
            .as_object_mut()
            .unwrap()
            .entry("initContainers")
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .unwrap();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(init.len() + 1);
            init.insert(at, forged_container(&mut rng));
        }
        let forged = pod.clone();
        let Decision::Patch { patch, .. } = mutate(&forged, &cfg) else {
            continue;
        };
        let mut once = forged.clone();
        json_patch::patch(&mut once, &patch).unwrap_or_else(|e| {
            panic!(
                "pod {index}: {e}\npatch {}\n{forged:#}",
                serde_json::to_string(&patch).unwrap()
            )
        });
        api_rules(&once).unwrap_or_else(|e| panic!("pod {index}: {e}\n{once:#}"));
        match mutate(&once, &cfg) {
            Decision::Patch { patch, .. } => assert!(
                patch.0.is_empty(),
                "pod {index}: second mutation gave {}\n{once:#}",
                serde_json::to_string(&patch).unwrap()
            ),
            other => panic!("pod {index}: second mutation gave {other:?}"),
        }
        let Decision::Patch { patch, .. } = mutate(&clean, &cfg) else {
            panic!("pod {index}: the clean pod must be injected as the forged one was");
        };
        let mut fresh = clean.clone();
        json_patch::patch(&mut fresh, &patch).unwrap();
        let init_first =
            clean["metadata"]["annotations"]["secrets-injector.io/init-first"] != "false";
        if init_first {
            // (With init-first "false" a forged injector keeps its place among the pod's own.)
            assert_eq!(
                list(&once, "initContainers"),
                list(&fresh, "initContainers"),
                "pod {index}: the forged pod's init containers differ from a fresh injection's"
            );
        }
        assert_eq!(list(&once, "containers"), list(&fresh, "containers"));
        checked += 1;
    }
    assert!(checked > PODS / 2, "checked {checked}");
}
