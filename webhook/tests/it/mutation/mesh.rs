//! Meshed pods (SPEC "Service meshes"): pods exactly as Istio and Linkerd write them, in every
//! mode (`tests/fixtures/mesh`, each naming its source), mutated in both orders of the two
//! webhooks. Mesh first: the fixture is what this webhook sees. This webhook first: it sees the
//! pod without the mesh's containers, the mesh then injects them into the result as its own
//! code does (Istio: the template's entries appended, then `reorderPod`; Linkerd: `patch.json`'s
//! indexes), and this webhook runs again (`reinvocationPolicy: IfNeeded`). Either way the
//! webhook's containers end where the rules say, a pod already right gets an empty patch, and
//! Istio's reordering of the result changes nothing (no back and forth). Also: a proxy is never
//! a target, the CNI denial and its two ways out, the bypass's user, group, mode and signal
//! rules, `webhook inject` and `webhook policy`, and kubernetes-validate on the mutated pods.

use std::sync::Arc;

use crate::support::mutate::*;
use secrets_injector_webhook::inject;
use secrets_injector_webhook::mutation::{
    Classes, Context, CsiVolumes, Decision, DocumentClasses, MutationConfig, mutate, plans,
};
use secrets_injector_webhook::pod::pruned;
use serde_json::value::RawValue;
use serde_json::{Value, json};

const INJECTOR: &str = "secrets-injector";
const BYPASS: &str = "secrets-injector.io/mesh-bypass";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mesh {
    Istio,
    Linkerd,
    /// Istio ambient: nothing in the pod.
    Ambient,
}

/// One fixture and where the webhook's init container must end: its own init containers in
/// order, `secrets-injector` where it goes by default (`init-first`) and with `init-first:
/// "false"`. `None`: the layout is denied without the bypass.
struct Layout {
    file: &'static str,
    mesh: Mesh,
    first: Option<&'static [&'static str]>,
    last: Option<&'static [&'static str]>,
}

const LAYOUTS: [Layout; 7] = [
    Layout {
        file: "istio-native",
        mesh: Mesh::Istio,
        first: Some(&["istio-init", "istio-proxy", INJECTOR, "migrate"]),
        last: Some(&["istio-init", "istio-proxy", "migrate", INJECTOR]),
    },
    Layout {
        file: "istio-classic",
        mesh: Mesh::Istio,
        first: Some(&[INJECTOR, "migrate", "istio-init"]),
        last: Some(&["migrate", INJECTOR, "istio-init"]),
    },
    Layout {
        file: "istio-cni",
        mesh: Mesh::Istio,
        first: None,
        last: None,
    },
    Layout {
        file: "istio-ambient",
        mesh: Mesh::Ambient,
        first: Some(&[INJECTOR, "migrate"]),
        last: Some(&["migrate", INJECTOR]),
    },
    Layout {
        file: "linkerd-native",
        mesh: Mesh::Linkerd,
        first: Some(&["linkerd-init", "linkerd-proxy", INJECTOR, "migrate"]),
        last: Some(&["linkerd-init", "linkerd-proxy", "migrate", INJECTOR]),
    },
    Layout {
        file: "linkerd-classic",
        mesh: Mesh::Linkerd,
        first: Some(&[INJECTOR, "migrate", "linkerd-init"]),
        last: Some(&["migrate", INJECTOR, "linkerd-init"]),
    },
    Layout {
        file: "linkerd-cni",
        mesh: Mesh::Linkerd,
        first: None,
        last: None,
    },
];

fn layout(file: &str) -> &'static Layout {
    LAYOUTS.iter().find(|l| l.file == file).unwrap()
}

fn mesh_pod(file: &str) -> Value {
    fixture(&format!("mesh/{file}.yaml"))
}

fn names<'a>(pod: &'a Value, key: &str) -> Vec<&'a str> {
    list(pod, key)
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

/// Whether a container is the mesh's (what the test strips and the mesh injects again).
fn is_mesh_container(name: &str) -> bool {
    name.starts_with("istio-") || name.starts_with("linkerd-") || name == "enable-core-dump"
}

/// The pod as this webhook sees it before the mesh's webhook: without the mesh's containers.
fn without_mesh(pod: &Value) -> Value {
    let mut pod = pod.clone();
    for key in ["initContainers", "containers"] {
        if let Some(list) = pod["spec"][key].as_array_mut() {
            list.retain(|c| !is_mesh_container(c["name"].as_str().unwrap()));
        }
    }
    pod
}

/// The mesh's containers of `fixture`, as (init containers, containers), in the fixture's order.
fn mesh_parts(fixture: &Value) -> (Vec<Value>, Vec<Value>) {
    let take = |key: &str| -> Vec<Value> {
        list(fixture, key)
            .iter()
            .filter(|c| is_mesh_container(c["name"].as_str().unwrap()))
            .cloned()
            .collect()
    };
    (take("initContainers"), take("containers"))
}

/// Istio's `modifyContainers`: the container named `name` moved first or last.
fn modify(list: &mut Vec<Value>, name: &str, first: bool) {
    if let Some(at) = list.iter().position(|c| c["name"] == name) {
        let container = list.remove(at);
        if first {
            list.insert(0, container);
        } else {
            list.push(container);
        }
    }
}

/// Istio's `reorderPod` (pkg/kube/inject/webhook.go), without holdApplicationUntilProxyStarts.
fn istio_reorder(pod: &mut Value) {
    let spec = pod["spec"].as_object_mut().unwrap();
    let mut containers: Vec<Value> = spec["containers"].as_array().unwrap().clone();
    modify(&mut containers, "istio-proxy", false);
    spec.insert("containers".into(), Value::Array(containers));
    let mut init: Vec<Value> = spec
        .get("initContainers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if init.iter().any(|c| c["name"] == "istio-proxy") {
        for name in [
            "enable-core-dump",
            "istio-proxy",
            "istio-validation",
            "istio-init",
        ] {
            modify(&mut init, name, true);
        }
    } else {
        modify(&mut init, "istio-validation", true);
        modify(&mut init, "istio-init", false);
        modify(&mut init, "enable-core-dump", false);
    }
    spec.insert("initContainers".into(), Value::Array(init));
}

/// The mesh's webhook on `pod`, adding the mesh's containers of `fixture` as its own code does.
fn mesh_injects(mesh: Mesh, pod: &Value, fixture: &Value) -> Value {
    let mut pod = pod.clone();
    let (init, regular) = mesh_parts(fixture);
    let spec = pod["spec"].as_object_mut().unwrap();
    let mut own_init: Vec<Value> = spec
        .get("initContainers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut own: Vec<Value> = spec["containers"].as_array().unwrap().clone();
    match mesh {
        Mesh::Ambient => {}
        // The template's entries, merged by name: new ones appended; then reorderPod.
        Mesh::Istio => {
            own_init.extend(init);
            own.extend(regular);
        }
        // patch.json: native, the init container at 0 and the proxy at 1; classic, the init
        // container appended and the proxy at containers/0 (proxy.await).
        Mesh::Linkerd => {
            let native = init.iter().any(|c| c["restartPolicy"] == "Always");
            if native {
                for (at, container) in init.into_iter().enumerate() {
                    own_init.insert(at, container);
                }
            } else {
                own_init.extend(init);
                for container in regular.into_iter().rev() {
                    own.insert(0, container);
                }
            }
        }
    }
    spec.insert("initContainers".into(), Value::Array(own_init));
    spec.insert("containers".into(), Value::Array(own));
    if mesh == Mesh::Istio {
        istio_reorder(&mut pod);
    }
    pod
}

/// `pod` after this webhook's patch (checked against the API server's rules).
fn after(pod: &Value, cfg: &MutationConfig) -> Value {
    mutated(pod, cfg).0
}

/// The checks every admitted meshed pod passes: the order, no mount in a proxy, the injector
/// taking the app's user, env and region; the patch converged, and Istio's reordering a no-op.
#[track_caller]
fn assert_placed(pod: &Value, mesh: Mesh, expected: &[&str], cfg: &MutationConfig) {
    assert_eq!(names(pod, "initContainers"), expected, "{pod:#}");
    assert_converged(pod, cfg);
    if mesh == Mesh::Istio {
        let mut reordered = pod.clone();
        istio_reorder(&mut reordered);
        assert_eq!(&reordered, pod, "Istio's reorderPod moves the result");
    }
    for key in ["initContainers", "containers"] {
        for container in list(pod, key) {
            let name = container["name"].as_str().unwrap();
            if name.ends_with("-proxy") {
                assert!(own_mount(container).is_none(), "{name} got the secrets");
            }
        }
    }
}

/// The injector as the app's: user, group, env and region.
#[track_caller]
fn assert_app_identity(pod: &Value, user: i64) {
    let injector = injector(pod);
    assert_eq!(injector["securityContext"]["runAsUser"], json!(user));
    assert_eq!(injector["securityContext"]["runAsGroup"], json!(3000));
    let env: Vec<&str> = injector["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        env,
        ["AWS_REGION", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"]
    );
    assert!(
        injector["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--region=eu-west-1")),
        "{injector:#}"
    );
}

/// Mesh first, this webhook first, each with `init-first` true and false: the placements.
fn every_order(cfg: &MutationConfig, annotate_pod: &dyn Fn(&mut Value)) -> Vec<(String, Value)> {
    let mut results = Vec::new();
    for layout in &LAYOUTS {
        for (init_first, expected) in [("true", layout.first), ("false", layout.last)] {
            let Some(expected) = expected else { continue };
            let mut fixture = mesh_pod(layout.file);
            annotate(
                &mut fixture,
                &[("secrets-injector.io/init-first", init_first)],
            );
            annotate_pod(&mut fixture);

            // The mesh's webhook first.
            let mesh_first = after(&fixture, cfg);
            assert_placed(&mesh_first, layout.mesh, expected, cfg);

            // This webhook first; the mesh's webhook; this webhook again.
            let ours = after(&without_mesh(&fixture), cfg);
            let meshed = mesh_injects(layout.mesh, &ours, &fixture);
            let (patch, _) = patch_of(&meshed, cfg);
            assert!(
                patch.0.is_empty(),
                "{} (init-first {init_first}): the re-invocation gave {}",
                layout.file,
                serde_json::to_string(&patch).unwrap()
            );
            assert_placed(&meshed, layout.mesh, expected, cfg);
            assert_eq!(
                names(&meshed, "containers"),
                names(&mesh_first, "containers")
            );
            results.push((format!("{}-{init_first}", layout.file), mesh_first));
        }
    }
    results
}

#[test]
fn every_layout_in_both_orders_of_the_webhooks_ends_where_the_rules_say() {
    let cfg = cfg();
    let results = every_order(&cfg, &|_| {});
    assert_eq!(results.len(), 10);
    for (name, pod) in &results {
        assert_app_identity(pod, 1000);
        let app = named(pod, "containers", "app");
        assert!(own_mount(app).is_some(), "{name}: the app has no mount");
    }
    let pods: Vec<(&str, &Value)> = results.iter().map(|(n, p)| (n.as_str(), p)).collect();
    validate(&pods);
}

/// The webhook's settings with `--csi-volumes=rewrite` and the class `web`.
fn csi_cfg() -> MutationConfig {
    let class = json!({
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": {"name": "web"},
        "spec": {"provider": "aws", "parameters": {
            "objects": "- objectName: /shop/tls\n  objectType: ssmparameter\n"}},
    });
    let mut cfg = cfg();
    cfg.secret_provider_classes = true;
    cfg.csi_volumes = CsiVolumes::Rewrite;
    let (found, problems) = DocumentClasses::from_documents(&[class]);
    assert!(problems.is_empty(), "{problems:?}");
    cfg.classes = Classes(Arc::new(found));
    cfg
}

/// A CSI volume `tls` of the class `web`, mounted in `app` and `migrate`.
fn with_csi(pod: &mut Value) {
    pod["spec"]["volumes"].as_array_mut().unwrap().push(json!({
        "name": "tls", "csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": true,
        "volumeAttributes": {"secretProviderClass": "web"}}}));
    for key in ["initContainers", "containers"] {
        for container in pod["spec"][key].as_array_mut().unwrap() {
            if ["app", "migrate"].contains(&container["name"].as_str().unwrap()) {
                container["volumeMounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "tls", "mountPath": "/etc/tls", "readOnly": true}));
            }
        }
    }
}

/// The user the init container of the volume `tls` runs as.
fn filler_user(pod: &Value) -> Value {
    named(pod, "initContainers", "secrets-injector-csi-tls")["securityContext"]["runAsUser"].clone()
}

#[test]
fn rewritten_csi_volumes_follow_a_native_proxy_too() {
    let cfg = csi_cfg();
    for (file, bypass, user, expected) in [
        (
            "istio-native",
            "false",
            1000,
            &[
                "istio-init",
                "istio-proxy",
                INJECTOR,
                "secrets-injector-csi-tls",
                "migrate",
            ][..],
        ),
        (
            "linkerd-classic",
            "false",
            1000,
            &[
                INJECTOR,
                "secrets-injector-csi-tls",
                "migrate",
                "linkerd-init",
            ][..],
        ),
        (
            "istio-cni",
            "true",
            1337,
            &[
                "istio-validation",
                INJECTOR,
                "secrets-injector-csi-tls",
                "migrate",
            ][..],
        ),
    ] {
        let mut fixture = mesh_pod(file);
        with_csi(&mut fixture);
        annotate(&mut fixture, &[(BYPASS, bypass)]);
        let out = after(&fixture, &cfg);
        assert_placed(&out, layout(file).mesh, expected, &cfg);
        assert_eq!(filler_user(&out), json!(user));
        // Placed by the webhook before the mesh's, then put right on the re-invocation, the
        // rewritten volume's init container (no longer knowing its class) taking the proxy's
        // user under the bypass.
        let ours = after(&without_mesh(&fixture), &cfg);
        assert_eq!(filler_user(&ours), json!(1000));
        let meshed = mesh_injects(layout(file).mesh, &ours, &fixture);
        let again = after(&meshed, &cfg);
        assert_placed(&again, layout(file).mesh, expected, &cfg);
        assert_eq!(filler_user(&again), json!(user));
        validate(&[(file, &again)]);
    }
}

/// The pod as the server reads it from a review's body (its spec skipped when its annotations
/// say it asks for nothing).
fn read_pruned(pod: &Value) -> Value {
    let raw = RawValue::from_string(serde_json::to_string(pod).unwrap()).unwrap();
    pruned::read(&raw).unwrap()
}

/// A pod whose only secrets are CSI volumes this webhook rewrote already (a re-invocation, or a
/// Deployment printed by `webhook inject`): no objects annotation, each volume's init container
/// there, its class no longer known. The webhook still changes such a pod (it places and
/// converges those init containers), so the mesh's rules hold for it: under Istio's CNI plugin it
/// is denied with the two ways out, and the bypass gives the init container the proxy's user, in
/// both orders of the webhooks, whether or not the webhook rewrites CSI volumes itself, read
/// whole or pruned.
#[test]
fn a_pod_whose_only_secrets_are_rewritten_csi_volumes_follows_the_mesh_rules() {
    let rewrite = csi_cfg();
    let plain = cfg();
    let mut fixture = mesh_pod("istio-cni");
    fixture["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("secrets-injector.io/objects");
    with_csi(&mut fixture);
    let expected = cni_message(
        "Istio",
        "istio-proxy",
        "istio-validation",
        "sidecar.istio.io/nativeSidecar",
    );
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    // The mesh's webhook first: the CSI volume asks, denied.
    assert_denied_with(&fixture, &rewrite, &expected);
    // This webhook first: the volume rewritten, the result converged; then the mesh's parts.
    let ours = after(&without_mesh(&fixture), &rewrite);
    assert_eq!(
        names(&ours, "initContainers"),
        ["secrets-injector-csi-tls", "migrate"]
    );
    let meshed = mesh_injects(Mesh::Istio, &ours, &fixture);
    for cfg in [&rewrite, &plain] {
        assert_converged(&ours, cfg);
        assert_denied_with(&meshed, cfg, &expected);
        assert_eq!(mutate(&read_pruned(&meshed), cfg), mutate(&meshed, cfg));
    }

    // The bypass: the proxy's user, whichever webhook ran first.
    annotate(&mut fixture, &[(BYPASS, "true")]);
    let order = ["istio-validation", "secrets-injector-csi-tls", "migrate"];
    let out = after(&fixture, &rewrite);
    assert_placed(&out, Mesh::Istio, &order, &rewrite);
    assert_eq!(filler_user(&out), json!(1337));
    let ours = after(&without_mesh(&fixture), &rewrite);
    assert_eq!(filler_user(&ours), json!(1000));
    let meshed = mesh_injects(Mesh::Istio, &ours, &fixture);
    for cfg in [&rewrite, &plain] {
        let decision = mutate(&meshed, cfg);
        assert_eq!(mutate(&read_pruned(&meshed), cfg), decision);
        let again = after(&meshed, cfg);
        assert_placed(&again, Mesh::Istio, &order, cfg);
        assert_eq!(filler_user(&again), json!(1337));
        assert_eq!(again, out);
    }
    validate(&[("istio-cni-csi-only", &out)]);
}

#[test]
fn a_proxy_is_never_a_target_nor_the_container_the_injector_copies() {
    let cfg = cfg();
    // Linkerd's proxy first in `containers`, with AWS env of its own (proxy.additionalEnv), and
    // an app without a user of its own: the injector takes nothing from the proxy.
    let mut pod = mesh_pod("linkerd-classic");
    let proxy = &mut pod["spec"]["containers"][0];
    assert_eq!(proxy["name"], "linkerd-proxy");
    proxy["env"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "AWS_REGION", "value": "us-east-1"}));
    let app = &mut pod["spec"]["containers"][1];
    app["securityContext"] = json!({});
    let out = after(&pod, &cfg);
    let injector = injector(&out);
    assert_eq!(injector["securityContext"]["runAsUser"], json!(65532));
    assert!(
        injector["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--region=eu-west-1"))
    );
    assert!(own_mount(&out["spec"]["containers"][0]).is_none());

    // Named, a proxy gets the mount, and still is not the first target.
    for (file, proxy) in [
        ("linkerd-classic", "linkerd-proxy"),
        ("istio-native", "istio-proxy"),
    ] {
        let mut pod = mesh_pod(file);
        annotate(
            &mut pod,
            &[("secrets-injector.io/containers", &format!("{proxy},app"))],
        );
        let out = after(&pod, &cfg);
        let key = if file == "istio-native" {
            "initContainers"
        } else {
            "containers"
        };
        assert!(own_mount(named(&out, key, proxy)).is_some());
        assert_app_identity(&out, 1000);
    }
}

fn cni_message(mesh: &str, proxy: &str, validator: &str, native: &str) -> Vec<String> {
    vec![
        format!("{mesh}'s proxy as a regular container ({proxy})"),
        format!("{mesh}'s CNI plugin (init container {validator})"),
        "could not reach AWS".to_owned(),
        format!("native sidecar (pod annotation {native}: \"true\""),
        format!("{BYPASS}: \"true\""),
    ]
}

#[test]
fn a_classic_proxy_under_the_cni_plugin_is_denied_with_the_two_ways_out() {
    let cfg = cfg();
    for (file, expected) in [
        (
            "istio-cni",
            cni_message(
                "Istio",
                "istio-proxy",
                "istio-validation",
                "sidecar.istio.io/nativeSidecar",
            ),
        ),
        (
            "linkerd-cni",
            cni_message(
                "Linkerd",
                "linkerd-proxy",
                "linkerd-network-validator",
                "config.linkerd.io/proxy-enable-native-sidecar",
            ),
        ),
    ] {
        let pod = mesh_pod(file);
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        assert_denied_with(&pod, &cfg, &expected);
        // This webhook first: admitted (no proxy yet), denied when it runs again.
        let ours = after(&without_mesh(&pod), &cfg);
        let meshed = mesh_injects(layout(file).mesh, &ours, &pod);
        assert_denied_with(&meshed, &cfg, &expected);
        // A meshed pod that asks for nothing is none of the webhook's business.
        let mut quiet = pod.clone();
        quiet["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove("secrets-injector.io/objects");
        assert_eq!(mutate(&quiet, &cfg), Decision::Skip);
        // Native sidecars with the CNI plugin: after the proxy, admitted.
        let mut native = pod.clone();
        let proxy_at = list(&native, "containers")
            .iter()
            .position(|c| c["name"].as_str().unwrap().ends_with("-proxy"))
            .unwrap();
        let mut proxy = native["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .remove(proxy_at);
        proxy["restartPolicy"] = json!("Always");
        proxy.as_object_mut().unwrap().remove("lifecycle");
        let init = native["spec"]["initContainers"].as_array_mut().unwrap();
        let validator_at = init
            .iter()
            .position(|c| c["name"].as_str().unwrap().contains("valid"))
            .unwrap();
        let validator = init.remove(validator_at);
        init.insert(0, validator);
        init.insert(1, proxy);
        let out = after(&native, &cfg);
        let mesh = layout(file).mesh;
        let expected_order = match mesh {
            Mesh::Istio => ["istio-validation", "istio-proxy", INJECTOR, "migrate"],
            _ => [
                "linkerd-network-validator",
                "linkerd-proxy",
                INJECTOR,
                "migrate",
            ],
        };
        assert_placed(&out, mesh, &expected_order, &cfg);
    }
}

fn bypassed(file: &str, pairs: &[(&str, &str)]) -> Value {
    let mut pod = mesh_pod(file);
    annotate(&mut pod, &[(BYPASS, "true")]);
    annotate(&mut pod, pairs);
    pod
}

#[test]
fn the_bypass_runs_the_webhooks_containers_as_the_proxys_user_in_both_orders() {
    let cfg = cfg();
    let mut validated = Vec::new();
    for (file, user, expected) in [
        (
            "istio-cni",
            1337,
            &["istio-validation", INJECTOR, "migrate"][..],
        ),
        (
            "linkerd-cni",
            2102,
            &[INJECTOR, "migrate", "linkerd-network-validator"][..],
        ),
    ] {
        let mesh = layout(file).mesh;
        let pod = bypassed(file, &[]);
        let out = after(&pod, &cfg);
        assert_placed(&out, mesh, expected, &cfg);
        let context = &injector(&out)["securityContext"];
        assert_eq!(context["runAsUser"], json!(user));
        // The app's group, so the files can be read through it.
        assert_eq!(context["runAsGroup"], json!(3000));
        assert_eq!(context["runAsNonRoot"], json!(true));

        // This webhook first: the app's user while there is no proxy; the proxy's once the mesh
        // added it, on the re-invocation; then nothing more.
        let ours = after(&without_mesh(&pod), &cfg);
        assert_eq!(injector(&ours)["securityContext"]["runAsUser"], json!(1000));
        let meshed = mesh_injects(mesh, &ours, &pod);
        let again = after(&meshed, &cfg);
        assert_eq!(
            injector(&again)["securityContext"]["runAsUser"],
            json!(user)
        );
        assert_placed(&again, mesh, expected, &cfg);
        assert_eq!(again, out);
        validated.push((file, out));
    }
    // The user is the proxy's own runAsUser, not the mesh's default.
    let mut pod = bypassed("istio-cni", &[]);
    let proxy = list(&pod, "containers")
        .iter()
        .position(|c| c["name"] == "istio-proxy")
        .unwrap();
    pod["spec"]["containers"][proxy]["securityContext"]["runAsUser"] = json!(4242);
    assert_eq!(
        injector(&after(&pod, &cfg))["securityContext"]["runAsUser"],
        json!(4242)
    );
    let pods: Vec<(&str, &Value)> = validated.iter().map(|(n, p)| (*n, p)).collect();
    validate(&pods);
}

#[test]
fn the_bypass_needs_a_known_non_root_proxy_user_and_a_boolean() {
    let cfg = cfg();
    let proxy_index = |pod: &Value| {
        list(pod, "containers")
            .iter()
            .position(|c| c["name"] == "linkerd-proxy")
            .unwrap()
    };
    let mut unknown = bypassed("linkerd-cni", &[]);
    let at = proxy_index(&unknown);
    unknown["spec"]["containers"][at]["securityContext"]
        .as_object_mut()
        .unwrap()
        .remove("runAsUser");
    assert_denied_with(
        &unknown,
        &cfg,
        &[BYPASS, "\"linkerd-proxy\" has no runAsUser", "2102"],
    );
    let mut root = bypassed("linkerd-cni", &[]);
    let at = proxy_index(&root);
    root["spec"]["containers"][at]["securityContext"]["runAsUser"] = json!(0);
    assert_denied_with(&root, &cfg, &[BYPASS, "runs as root"]);
    let mut yes = mesh_pod("istio-cni");
    annotate(&mut yes, &[(BYPASS, "yes")]);
    assert_denied_with(&yes, &cfg, &[BYPASS, "\"yes\" is not a boolean"]);
    // "false" is no bypass: the CNI denial stands.
    let mut no = mesh_pod("istio-cni");
    annotate(&mut no, &[(BYPASS, "false")]);
    assert_denied_with(&no, &cfg, &["Istio's CNI plugin"]);
}

#[test]
fn under_the_bypass_the_app_reads_the_files_by_group_or_as_others() {
    let cfg = cfg();
    // Owner-only modes: the files are the proxy's user's.
    for pairs in [
        &[("secrets-injector.io/file-permission", "0600")][..],
        &[("secrets-injector.io/file-permission", "0400")][..],
    ] {
        assert_denied_with(
            &bypassed("istio-cni", pairs),
            &cfg,
            &["file-permission", "belong to the mesh proxy's user"],
        );
    }
    let mut object_mode = bypassed("istio-cni", &[]);
    annotate(
        &mut object_mode,
        &[(
            "secrets-injector.io/objects",
            "- objectName: /shop/db\n  objectType: ssmparameter\n  filePermission: \"0400\"\n",
        )],
    );
    assert_denied_with(&object_mode, &cfg, &["/shop/db", "mesh proxy's user"]);

    // A group mode: with the pod's fsGroup (the fixtures have one), or the app's group.
    let group = [("secrets-injector.io/file-permission", "0640")];
    let out = after(&bypassed("istio-cni", &group), &cfg);
    assert_eq!(injector(&out)["securityContext"]["runAsGroup"], json!(3000));
    let mut no_fs_group = bypassed("istio-cni", &group);
    no_fs_group["spec"]["securityContext"]
        .as_object_mut()
        .unwrap()
        .remove("fsGroup");
    let out = after(&no_fs_group, &cfg);
    assert_eq!(injector(&out)["securityContext"]["runAsGroup"], json!(3000));
    // Neither: denied, naming both.
    let app = list(&no_fs_group, "containers")
        .iter()
        .position(|c| c["name"] == "app")
        .unwrap();
    no_fs_group["spec"]["containers"][app]["securityContext"]
        .as_object_mut()
        .unwrap()
        .remove("runAsGroup");
    assert_denied_with(&no_fs_group, &cfg, &["fsGroup", "runAsGroup", BYPASS]);

    // The rules hold before the proxy is there (a template, or this webhook first).
    assert_denied_with(
        &without_mesh(&bypassed(
            "istio-cni",
            &[("secrets-injector.io/file-permission", "0600")],
        )),
        &cfg,
        &["belong to the mesh proxy's user"],
    );
}

#[test]
fn under_the_bypass_refresh_signal_is_refused_and_refresh_url_works() {
    let mut cfg = cfg();
    cfg.refresh_min_interval = std::time::Duration::from_secs(1);
    let mut signal = bypassed(
        "linkerd-cni",
        &[
            ("secrets-injector.io/refresh-interval", "5m"),
            ("secrets-injector.io/refresh-signal", "SIGHUP web"),
        ],
    );
    signal["spec"]["shareProcessNamespace"] = json!(true);
    let message = assert_denied_with(
        &signal,
        &cfg,
        &["refresh-signal", BYPASS, "secrets-injector.io/refresh-url"],
    );
    assert!(!message.contains("runs as 2102"), "{message}");
    let url = bypassed(
        "linkerd-cni",
        &[
            ("secrets-injector.io/refresh-interval", "5m"),
            (
                "secrets-injector.io/refresh-url",
                "http://127.0.0.1:8080/reload",
            ),
        ],
    );
    let out = after(&url, &cfg);
    assert_placed(
        &out,
        Mesh::Linkerd,
        &[
            INJECTOR,
            "secrets-injector-refresh",
            "migrate",
            "linkerd-network-validator",
        ],
        &cfg,
    );
    let sidecar = named(&out, "initContainers", "secrets-injector-refresh");
    assert_eq!(sidecar["securityContext"]["runAsUser"], json!(2102));
    validate(&[("bypass-refresh-url", &out)]);
}

#[test]
fn webhook_inject_and_webhook_policy_follow_the_same_rules() {
    let cfg = cfg();
    let yaml = |pod: &Value| serde_saphyr::to_string(pod).unwrap();
    let out = inject::run(&yaml(&mesh_pod("linkerd-native")), &cfg).unwrap();
    let printed: Value = serde_saphyr::from_str(&out).unwrap();
    assert_eq!(
        names(&printed, "initContainers"),
        ["linkerd-init", "linkerd-proxy", INJECTOR, "migrate"]
    );
    let denied = inject::run(&yaml(&mesh_pod("istio-cni")), &cfg).unwrap_err();
    assert!(
        denied.to_string().contains("Istio's CNI plugin"),
        "{denied}"
    );
    let bypass = bypassed("istio-cni", &[]);
    let out = inject::run(&yaml(&bypass), &cfg).unwrap();
    let printed: Value = serde_saphyr::from_str(&out).unwrap();
    assert_eq!(
        injector(&printed)["securityContext"]["runAsUser"],
        json!(1337)
    );

    let ctx = Context::default();
    let denial = plans(&mesh_pod("linkerd-cni"), &ctx, &cfg).unwrap_err();
    assert!(denial.contains("Linkerd's CNI plugin"), "{denial}");
    assert_eq!(
        plans(&mesh_pod("linkerd-classic"), &ctx, &cfg)
            .unwrap()
            .len(),
        1
    );
}
