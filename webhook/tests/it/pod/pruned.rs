//! The rule of `webhook/src/pod/mod.rs`: the pod reader (`pod::pruned`) keeps every field the
//! mutation reads. The server decides on the pruned pod, so a new read of a field the reader skips
//! would decide on a pod it never saw whole; these tests fail when that happens.

use std::path::{Path, PathBuf};

use secrets_injector_webhook::mutation::{Decision, InjectorUser, MutationConfig, mutate};
use secrets_injector_webhook::pod::pruned;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::support::fuzz::{Bytes, Rng};

const FIXTURES: &[&str] = &[
    "eks-irsa-pod.json",
    "minimal-pod.yaml",
    "pod-identity-pod.json",
    "refresh-pod.yaml",
    "seeds-example-pod.yaml",
    "sidecars-pod.yaml",
    "mesh/istio-native.yaml",
    "mesh/istio-classic.yaml",
    "mesh/istio-cni.yaml",
    "mesh/istio-ambient.yaml",
    "mesh/linkerd-native.yaml",
    "mesh/linkerd-classic.yaml",
    "mesh/linkerd-cni.yaml",
];

/// Generated hostile pods per run, on top of the fixtures and the fuzz corpus.
const GENERATED: u64 = 500;

fn configs() -> Vec<MutationConfig> {
    let with_region = crate::support::mutate::cfg();
    let mut no_user = crate::support::mutate::cfg();
    no_user.injector_user = InjectorUser::Unset;
    let no_region = MutationConfig::for_tests(crate::support::mutate::IMAGE);
    vec![with_region, no_user, no_region]
}

/// The pod as the server reads it from a review's body.
fn read_pruned(pod: &Value) -> Value {
    let text = serde_json::to_string(pod).expect("a pod serialises");
    let raw: Box<RawValue> = RawValue::from_string(text).expect("JSON");
    pruned::read(&raw).expect("a pod that is JSON is read")
}

/// Every pod being created in the admission-review fuzz corpus (real reviews and what the fuzzer
/// grew from them), named by file.
fn corpus_pods() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/admission_review");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .filter_map(|path| {
            let review: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
            let request = review.get("request")?;
            let is_pod = request.pointer("/kind/kind") == Some(&Value::from("Pod"))
                && request.pointer("/kind/group") == Some(&Value::from(""));
            let object = request.get("object").filter(|o| o.is_object())?;
            is_pod.then(|| (name_of(path), object.clone()))
        })
        .collect()
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The fields of `pod` that the pruned pod lacks and whose absence changes the decision: what a
/// failure names.
fn dropped_reads(pod: &Value, cfg: &MutationConfig) -> Vec<String> {
    let pruned = read_pruned(pod);
    let decision = mutate(pod, cfg);
    let mut paths = Vec::new();
    key_paths(pod, &mut Vec::new(), &mut paths);
    paths
        .iter()
        .map(|path| (pointer(path), path))
        .filter(|(at, path)| {
            pruned.pointer(at).is_none() && mutate(&without(pod, path), cfg) != decision
        })
        .map(|(at, _)| at)
        .collect()
}

/// Every object key under `value`, as a path of keys and indexes.
fn key_paths(value: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                at.push(key.clone());
                out.push(at.clone());
                key_paths(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                at.push(index.to_string());
                key_paths(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn pointer(path: &[String]) -> String {
    path.iter()
        .map(|part| format!("/{}", part.replace('~', "~0").replace('/', "~1")))
        .collect()
}

fn without(pod: &Value, path: &[String]) -> Value {
    let mut pod = pod.clone();
    let (last, parent) = path.split_last().expect("a path has a key");
    if let Some(Value::Object(map)) = pod.pointer_mut(&pointer(parent)) {
        map.remove(last);
    }
    pod
}

/// The fixtures, and the meshed ones under the CNI plugin with `mesh-bypass` too (which reads
/// the proxy's user).
fn real_pods() -> Vec<(String, Value)> {
    let mut pods: Vec<(String, Value)> = FIXTURES
        .iter()
        .map(|name| ((*name).to_owned(), crate::support::mutate::fixture(name)))
        .collect();
    for name in ["mesh/istio-cni.yaml", "mesh/linkerd-cni.yaml"] {
        let mut pod = crate::support::mutate::fixture(name);
        crate::support::mutate::annotate(&mut pod, &[("secrets-injector.io/mesh-bypass", "true")]);
        pods.push((format!("{name} with mesh-bypass"), pod));
    }
    pods
}

#[test]
fn the_mutation_decides_the_same_on_pruned_and_whole_pods() {
    let mut pods = real_pods();
    let from_corpus = corpus_pods();
    assert!(
        from_corpus.len() >= 50,
        "only {} pods in the corpus",
        from_corpus.len()
    );
    pods.extend(from_corpus);
    for seed in 0..GENERATED {
        let data = Rng::new(seed).bytes(2048);
        pods.push((
            format!("generated seed {seed}"),
            crate::support::fuzz::pod(&mut Bytes::new(&data)),
        ));
    }
    let (mut patched, mut denied) = (0, 0);
    for cfg in configs() {
        for (source, pod) in &pods {
            let whole = mutate(pod, &cfg);
            let pruned = mutate(&read_pruned(pod), &cfg);
            if pruned != whole {
                panic!(
                    "{source}: the pruned pod is decided differently; pod::pruned must keep {:?}, which the mutation reads\nwhole: {whole:?}\npruned: {pruned:?}",
                    dropped_reads(pod, &cfg)
                );
            }
            match whole {
                Decision::Patch { .. } => patched += 1,
                Decision::Deny(_) => denied += 1,
                Decision::Skip => {}
            }
        }
    }
    // Both ways out must be taken, or the comparison proves little.
    assert!(patched > 100, "only {patched} pods were patched");
    assert!(denied > 100, "only {denied} pods were denied");
}

/// The real pods with any one field taken out (a missing name, mount path, security context,
/// annotation...): still decided the same pruned and whole.
#[test]
fn pods_missing_a_field_are_decided_the_same_pruned_and_whole() {
    let cfg = crate::support::mutate::cfg();
    let mut variants = 0;
    for (name, pod) in real_pods() {
        let mut paths = Vec::new();
        key_paths(&pod, &mut Vec::new(), &mut paths);
        for path in &paths {
            let variant = without(&pod, path);
            let whole = mutate(&variant, &cfg);
            let pruned = mutate(&read_pruned(&variant), &cfg);
            assert_eq!(
                pruned,
                whole,
                "{name} without {}: the pruned pod is decided differently",
                pointer(path)
            );
            variants += 1;
        }
    }
    assert!(variants > 100, "only {variants} variants");
}
