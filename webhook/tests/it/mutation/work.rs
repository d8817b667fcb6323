//! The work of one review is linear in the pod and counted: a pod built to make the webhook work
//! hard (tens of thousands of containers, volumes, names) costs work units in proportion to its
//! size, a budget in units (not time) denies the same pods on every machine, rewritten CSI volumes
//! are capped, and a class named by many volumes is looked up once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::mutate::*;
use secrets_injector_objects::class::Class;
use secrets_injector_webhook::mutation::{
    ClassSource, Classes, Context, CsiVolumes, Decision, Lookup, ResolvedClass, mutate, mutate_in,
    work_units,
};
use serde_json::{Value, json};

const OBJECTS: &str = "- objectName: /app/db\n  objectType: ssmparameter\n";

/// A pod with `n` init containers and `n` volumes (each init container mounting one), `n` names
/// in `containers` and `env-containers`: what made the webhook's work grow with the square.
fn wide_pod(n: usize) -> Value {
    let init: Vec<Value> = (0..n)
        .map(|i| {
            json!({"name": format!("init-{i}"), "image": "busybox",
                   "command": ["/bin/true"],
                   "volumeMounts": [{"name": format!("v-{i}"), "mountPath": "/data"}]})
        })
        .collect();
    let volumes: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("v-{i}"), "emptyDir": {}}))
        .collect();
    let names: Vec<String> = (0..n).map(|i| format!("init-{i}")).collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "wide", "annotations": {
            "secrets-injector.io/objects": OBJECTS,
            "secrets-injector.io/containers": format!("app,{}", names.join(",")),
            "secrets-injector.io/env-containers": format!("app,{}", names.join(",")),
            "secrets-injector.io/refresh-interval": "5m",
        }},
        "spec": {
            "containers": [{"name": "app", "image": "app", "command": ["/app"]}],
            "initContainers": init,
            "volumes": volumes,
        }
    })
}

#[test]
fn the_work_grows_linearly_with_the_pod() {
    let cfg = cfg();
    let ctx = Context::default();
    let small = work_units(&wide_pod(1_000), &ctx, &cfg);
    let large = work_units(&wide_pod(4_000), &ctx, &cfg);
    // Four times the pod, about four times the work (a square would be sixteen).
    assert!(
        large <= small * 9 / 2,
        "1,000 parts: {small} units; 4,000 parts: {large} units"
    );
    // A few walks of the pod per capability, nothing per pair of parts.
    let parts = 4_000 * 3 + 2;
    assert!(large < parts * 40, "{large} units for {parts} parts");
}

#[test]
fn the_pod_that_took_twenty_seconds_is_answered_within_the_budget() {
    // 12,000 init containers and 12,000 volumes (818 KB): linear now, and within the default
    // budget, so it gets an answer (the injector may run before all of them).
    let pod = wide_pod(12_000);
    let cfg = cfg();
    let used = work_units(&pod, &Context::default(), &cfg);
    assert!(used < cfg.review_work_budget, "{used} units");
    assert!(matches!(
        mutate(&pod, &cfg),
        Decision::Patch { .. } | Decision::Deny(_)
    ));
}

#[test]
fn a_pod_over_the_work_budget_is_denied_the_same_way_every_time() {
    let pod = wide_pod(2_000);
    let mut cfg = cfg();
    let needed = work_units(&pod, &Context::default(), &cfg);
    cfg.review_work_budget = needed / 2;
    for _ in 0..3 {
        let message = denial(&pod, &cfg);
        assert!(
            message.starts_with("the pod is too large for one review")
                && message.contains(&format!("{} units of work", needed / 2))
                && message.contains("--review-work-budget"),
            "{message}"
        );
    }
    // The units counted stop soon after the budget is spent: the rest is not done.
    assert!(work_units(&pod, &Context::default(), &cfg) < needed);
    cfg.review_work_budget = needed;
    assert!(matches!(mutate(&pod, &cfg), Decision::Patch { .. }));
}

/// Classes by name, counting the lookups.
#[derive(Default)]
struct Counted {
    lookups: AtomicUsize,
}

impl ClassSource for Counted {
    fn class(&self, namespace: &str, name: &str) -> Lookup {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let document = json!({
            "apiVersion": "secrets-store.csi.x-k8s.io/v1", "kind": "SecretProviderClass",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"provider": "aws", "parameters": {"objects": OBJECTS, "region": "eu-west-1",
                     "unknownParameter": "x"}}
        });
        Lookup::Found(Arc::new(ResolvedClass::new(
            Class::read(&document).unwrap(),
        )))
    }
}

fn csi_pod(volumes: usize, class: impl Fn(usize) -> String) -> Value {
    let volumes: Vec<Value> = (0..volumes)
        .map(|i| {
            json!({"name": format!("secrets-{i}"), "csi": {"driver": "secrets-store.csi.k8s.io",
                   "readOnly": true, "volumeAttributes": {"secretProviderClass": class(i)}}})
        })
        .collect();
    let mounts: Vec<Value> = (0..volumes.len())
        .map(|i| json!({"name": format!("secrets-{i}"), "mountPath": format!("/mnt/s{i}")}))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "csi", "namespace": "apps"},
        "spec": {"containers": [{"name": "app", "image": "app", "volumeMounts": mounts}],
                 "volumes": volumes}
    })
}

fn rewrite_cfg(source: Arc<Counted>) -> secrets_injector_webhook::mutation::MutationConfig {
    let mut cfg = cfg();
    cfg.csi_volumes = CsiVolumes::Rewrite;
    cfg.classes = Classes(source);
    cfg
}

#[test]
fn rewritten_csi_volumes_are_capped_before_any_lookup() {
    let source = Arc::new(Counted::default());
    let cfg = rewrite_cfg(source.clone());
    let ctx = Context {
        namespace: Some("apps"),
        template: false,
    };
    for count in [17, 20_000] {
        let pod = csi_pod(count, |i| format!("class-{i}"));
        let Decision::Deny(message) = mutate_in(&pod, &ctx, &cfg) else {
            panic!("{count} CSI volumes must be denied");
        };
        assert!(
            message.contains(&format!(
                "the pod has {count} volumes of the Secrets Store CSI driver"
            )) && message.contains("at most 16")
                && message.contains("--max-csi-volumes"),
            "{message}"
        );
        // A short answer, whatever the pod's size.
        assert!(message.len() < 512, "{} bytes", message.len());
    }
    assert_eq!(source.lookups.load(Ordering::SeqCst), 0);
    let pod = csi_pod(16, |i| format!("class-{i}"));
    assert!(matches!(
        mutate_in(&pod, &ctx, &cfg),
        Decision::Patch { .. }
    ));
    assert_eq!(source.lookups.load(Ordering::SeqCst), 16);
}

#[test]
fn a_class_named_by_many_volumes_is_looked_up_and_read_once() {
    let source = Arc::new(Counted::default());
    let cfg = rewrite_cfg(source.clone());
    let ctx = Context {
        namespace: Some("apps"),
        template: false,
    };
    let pod = csi_pod(16, |_| "shared".to_owned());
    let Decision::Patch { patch, warnings } = mutate_in(&pod, &ctx, &cfg) else {
        panic!("expected the pod to be injected");
    };
    assert_eq!(source.lookups.load(Ordering::SeqCst), 1);
    // The class's warning once, not once per volume.
    let unknown: Vec<&String> = warnings
        .iter()
        .filter(|w| w.contains("unknownParameter"))
        .collect();
    assert_eq!(unknown.len(), 1, "{warnings:?}");
    let mut out = pod.clone();
    json_patch::patch(&mut out, &patch).unwrap();
    assert_eq!(list(&out, "initContainers").len(), 16);
}

/// A pod whose app container has `n` mounts and `n` `AWS_*` variables, each (with `paths`) naming
/// a file under one of those mounts, which the init container then mounts too; and `csi` CSI
/// volumes the app mounts, whose init containers copy the same.
fn copying_pod(n: usize, paths: bool, csi: usize) -> Value {
    let mut pod = csi_pod(csi, |_| "shared".to_owned());
    pod["metadata"]["annotations"] = json!({"secrets-injector.io/objects": OBJECTS});
    let app = &mut pod["spec"]["containers"][0];
    let mounts = app["volumeMounts"].as_array_mut().unwrap();
    mounts.extend(
        (0..n).map(|i| json!({"name": format!("v-{i}"), "mountPath": format!("/aws/{i}")})),
    );
    app["env"] = (0..n)
        .map(|i| {
            let value = if paths {
                format!("/aws/{i}/token")
            } else {
                "x".to_owned()
            };
            json!({"name": format!("AWS_FILE_{i}"), "value": value})
        })
        .collect();
    let volumes = pod["spec"]["volumes"].as_array_mut().unwrap();
    volumes.extend((0..n).map(|i| json!({"name": format!("v-{i}"), "emptyDir": {}})));
    pod
}

/// What the init containers copy from the app (its AWS env, and each mount that holds a path one
/// of those variables names) is found in one walk of the app's env and mounts, counted, and once
/// for every init container that takes the same app.
#[test]
fn the_mounts_the_init_containers_copy_are_found_in_linear_counted_work() {
    let cfg = rewrite_cfg(Arc::new(Counted::default()));
    let ctx = Context {
        namespace: Some("apps"),
        template: false,
    };
    let units = |n, paths, csi| work_units(&copying_pod(n, paths, csi), &ctx, &cfg);
    let small = units(1_000, true, 0);
    let large = units(4_000, true, 0);
    assert!(
        large <= small * 9 / 2,
        "1,000 variables and mounts: {small} units; 4,000: {large} units"
    );
    // The paths' directories looked up are counted: at least one per variable.
    let copy = small - units(1_000, false, 0);
    assert!(copy >= 1_000, "{copy} units for the copy of 1,000 paths");
    // Sixteen more init containers taking the same app: the copy is not done again.
    let copy_csi = units(1_000, true, 16) - units(1_000, false, 16);
    assert!(
        copy_csi < 2 * copy,
        "{copy_csi} units with 17 init containers, {copy} with one"
    );
    let mut out = copying_pod(1_000, true, 16);
    let Decision::Patch { patch, .. } = mutate_in(&out, &ctx, &cfg) else {
        panic!("expected a patch");
    };
    json_patch::patch(&mut out, &patch).unwrap();
    for init in list(&out, "initContainers") {
        // Its own volume, then the app's 1,000 mounts.
        assert_eq!(
            init["volumeMounts"].as_array().unwrap().len(),
            1_001,
            "{}",
            init["name"]
        );
    }
}
