//! `secrets-injector.io/env-containers` (SPEC "Environment variables"): the wrapped command, the
//! bin volume and its mounts, the injector's flag, each rule's denial, the clash warnings,
//! convergence, workload templates through `webhook inject`, the pruned pod, and `webhook policy`.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::mutate::*;
use secrets_injector_webhook::inject;
use secrets_injector_webhook::mutation::{Decision, mutate};
use secrets_injector_webhook::pod::pruned;
use serde_json::value::RawValue;
use serde_json::{Value, json};

const ENV_CONTAINERS: &str = "secrets-injector.io/env-containers";
const SECRETS_ENV: &str = "/secrets-injector/bin/secrets-env";

/// The seeds' example with its app container's command as an image would have it, and args.
fn seeds_pod(env_containers: &str) -> Value {
    let mut pod = fixture("seeds-example-pod.yaml");
    pod["spec"]["containers"][0]["command"] = json!(["/app/server"]);
    pod["spec"]["containers"][0]["args"] = json!(["--port", "8080"]);
    annotate(&mut pod, &[(ENV_CONTAINERS, env_containers)]);
    pod
}

fn wrapped(mount_path: &str, own: &[&str]) -> Value {
    let mut command = vec![
        json!(SECRETS_ENV),
        json!("--dir"),
        json!(mount_path),
        json!("--"),
    ];
    command.extend(own.iter().map(|word| json!(word)));
    Value::Array(command)
}

fn assert_denied(pod: &Value, expected: &[&str]) -> String {
    assert_denied_with(pod, &cfg(), expected)
}

#[test]
fn the_command_is_wrapped_and_secrets_env_gets_its_volume() {
    let pod = seeds_pod("app");
    let (out, warnings) = mutated(&pod, &cfg());
    assert!(warnings.is_empty(), "{warnings:?}");
    let app = named(&out, "containers", "app");
    assert_eq!(
        app["command"],
        wrapped("/mnt/secrets-store", &["/app/server"])
    );
    assert_eq!(app["args"], json!(["--port", "8080"]));
    assert_eq!(
        app["volumeMounts"],
        json!([
            {"name": "secrets-injector", "mountPath": "/mnt/secrets-store", "readOnly": true},
            {"name": "secrets-injector-bin", "mountPath": "/secrets-injector/bin", "readOnly": true},
        ])
    );
    assert_eq!(
        named(&out, "volumes", "secrets-injector-bin"),
        &json!({"name": "secrets-injector-bin", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}})
    );
    let init = injector(&out);
    assert_eq!(
        init["volumeMounts"],
        json!([
            {"name": "secrets-injector", "mountPath": "/mnt/secrets-store"},
            {"name": "secrets-injector-bin", "mountPath": "/secrets-injector/bin"},
        ])
    );
    let args: Vec<&str> = init["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.contains(&"--secrets-env-dir=/secrets-injector/bin"),
        "{args:?}"
    );
    assert!(args.last().unwrap().starts_with("--objects="), "{args:?}");
    validate(&[("env-containers", &out)]);
    // Mutated again (a re-invocation, or `webhook inject` of its own output): wrapped once.
    assert_converged(&out, &cfg());
}

#[test]
fn without_the_annotation_nothing_of_it_is_added() {
    let mut pod = seeds_pod("app");
    pod["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove(ENV_CONTAINERS);
    let (out, _) = mutated(&pod, &cfg());
    assert_eq!(
        named(&out, "containers", "app")["command"],
        json!(["/app/server"])
    );
    assert!(
        list(&out, "volumes")
            .iter()
            .all(|v| v["name"] != "secrets-injector-bin")
    );
    let init = injector(&out);
    assert_eq!(init["volumeMounts"].as_array().unwrap().len(), 1);
    assert!(
        !init["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().starts_with("--secrets-env-dir"))
    );
    // An annotation that names nothing is the same, with a warning.
    annotate(&mut pod, &[(ENV_CONTAINERS, " , ")]);
    let (blank, warnings) = mutated(&pod, &cfg());
    assert_eq!(blank["spec"], out["spec"]);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("annotation secrets-injector.io/env-containers names no container")),
        "{warnings:?}"
    );
}

#[test]
fn a_container_without_a_command_is_denied_saying_to_set_it() {
    for command in [None, Some(json!([]))] {
        let mut pod = seeds_pod("app");
        let app = pod["spec"]["containers"][0].as_object_mut().unwrap();
        app.remove("command");
        if let Some(command) = command {
            app.insert("command".to_owned(), command);
        }
        assert_denied(
            &pod,
            &[
                "annotation secrets-injector.io/env-containers: container \"app\" has no command",
                "the webhook never asks the registry",
                "set command (and args) to what the image runs",
            ],
        );
    }
}

#[test]
fn a_name_that_is_not_a_container_of_the_pod_is_denied() {
    assert_denied(
        &seeds_pod("app, web"),
        &[
            "annotation secrets-injector.io/env-containers: the pod has no container \"web\"",
            "name containers of the pod",
        ],
    );
}

#[test]
fn a_container_that_is_not_a_target_is_denied() {
    let mut pod = seeds_pod("app,sidecar");
    pod["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "sidecar", "image": "envoy", "command": ["envoy"]}));
    annotate(&mut pod, &[("secrets-injector.io/containers", "app")]);
    assert_denied(
        &pod,
        &[
            "container \"sidecar\" is not a target container",
            "add it to the annotation secrets-injector.io/containers",
        ],
    );
}

#[test]
fn the_webhooks_own_init_container_is_denied() {
    assert_denied(
        &seeds_pod("app,secrets-injector"),
        &["\"secrets-injector\" is the webhook's own init container"],
    );
}

#[test]
fn an_init_container_that_may_run_before_the_injector_is_denied() {
    let mut pod = seeds_pod("migrate");
    pod["spec"]["initContainers"] =
        json!([{"name": "migrate", "image": "app", "command": ["/app/migrate"]}]);
    annotate(
        &mut pod,
        &[("secrets-injector.io/containers", "app,migrate")],
    );
    // First by default: allowed, and wrapped.
    let (out, _) = mutated(&pod, &cfg());
    assert_eq!(
        named(&out, "initContainers", "migrate")["command"],
        wrapped("/mnt/secrets-store", &["/app/migrate"])
    );
    validate(&[("env-init-container", &out)]);
    annotate(&mut pod, &[("secrets-injector.io/init-first", "false")]);
    assert_denied(
        &pod,
        &[
            "init container \"migrate\" may run before the webhook's init container has copied secrets-env",
            "secrets-injector.io/init-first",
        ],
    );
}

/// With a mesh's proxy as a native sidecar the webhook's init containers go right after it
/// (SPEC "Service meshes"): an init container listed before the proxy runs before secrets-env is
/// copied, and is denied as one with `init-first: "false"` is; one after the proxy is wrapped.
#[test]
fn an_init_container_before_a_native_proxy_runs_before_the_injector_and_is_denied() {
    let mut pod = seeds_pod("migrate");
    let init =
        |name: &str| json!({"name": name, "image": "app", "command": [format!("/app/{name}")]});
    let validator = json!({"name": "linkerd-network-validator", "image": "cr.l5d.io/linkerd/proxy-init:v2",
        "command": ["/usr/lib/linkerd/linkerd2-network-validator"]});
    let proxy = json!({"name": "linkerd-proxy", "image": "cr.l5d.io/linkerd/proxy:edge-25.8.2",
        "restartPolicy": "Always", "securityContext": {"runAsUser": 2102}});
    pod["spec"]["initContainers"] = json!([validator, init("migrate"), proxy, init("seed")]);
    annotate(
        &mut pod,
        &[("secrets-injector.io/containers", "app,migrate,seed")],
    );
    let message = assert_denied(
        &pod,
        &[
            "init container \"migrate\" runs before the webhook's init container \"secrets-injector\" has copied secrets-env",
            "here after \"linkerd-proxy\"",
            ENV_CONTAINERS,
        ],
    );
    assert!(!message.contains("init-first"), "{message}");
    // After the proxy: wrapped, the webhook's init container between the two.
    annotate(&mut pod, &[(ENV_CONTAINERS, "seed")]);
    let (out, _) = mutated(&pod, &cfg());
    let names: Vec<&str> = list(&out, "initContainers")
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "linkerd-network-validator",
            "migrate",
            "linkerd-proxy",
            "secrets-injector",
            "seed"
        ]
    );
    assert_eq!(
        named(&out, "initContainers", "seed")["command"],
        wrapped("/mnt/secrets-store", &["/app/seed"])
    );
    assert_converged(&out, &cfg());
    validate(&[("env-after-native-proxy", &out)]);
    // Without the proxy the webhook's go first, after the validator: both are wrapped.
    pod["spec"]["initContainers"]
        .as_array_mut()
        .unwrap()
        .remove(2);
    annotate(&mut pod, &[(ENV_CONTAINERS, "migrate,seed")]);
    let (out, _) = mutated(&pod, &cfg());
    for name in ["migrate", "seed"] {
        assert_eq!(
            named(&out, "initContainers", name)["command"],
            wrapped("/mnt/secrets-store", &[&format!("/app/{name}")])
        );
    }
}

#[test]
fn a_mount_path_around_the_bin_directory_is_denied() {
    for path in ["/secrets-injector", "/secrets-injector/bin/values"] {
        let mut pod = seeds_pod("app");
        annotate(&mut pod, &[("secrets-injector.io/mount-path", path)]);
        assert_denied(
            &pod,
            &[
                &format!(
                    "annotation secrets-injector.io/mount-path: {path} contains or lies inside /secrets-injector/bin"
                ),
                "choose a mount path such as /mnt/secrets-store",
            ],
        );
    }
}

#[test]
fn a_mount_of_the_container_around_the_bin_directory_is_denied() {
    let mut pod = seeds_pod("app");
    pod["spec"]["volumes"] = json!([{"name": "tools", "emptyDir": {}}]);
    pod["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "tools", "mountPath": "/secrets-injector"}]);
    assert_denied(
        &pod,
        &[
            "container \"app\" mounts volume \"tools\" at /secrets-injector, which holds or lies inside /secrets-injector/bin",
            "mount it elsewhere",
        ],
    );
}

#[test]
fn a_writable_mount_of_the_bin_volume_is_denied() {
    let mut pod = seeds_pod("app");
    pod["spec"]["containers"].as_array_mut().unwrap().push(
        json!({"name": "writer", "image": "busybox", "command": ["sh"],
            "volumeMounts": [{"name": "secrets-injector-bin", "mountPath": "/bin-volume"}]}),
    );
    annotate(&mut pod, &[("secrets-injector.io/containers", "app")]);
    assert_denied(
        &pod,
        &[
            "container \"writer\" mounts the volume \"secrets-injector-bin\" at /bin-volume writable",
            "set readOnly: true",
        ],
    );
}

#[test]
fn every_problem_is_in_one_denial() {
    let mut pod = seeds_pod("app,web");
    pod["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("command");
    annotate(
        &mut pod,
        &[("secrets-injector.io/mount-path", "/secrets-injector")],
    );
    assert_denied(
        &pod,
        &[
            "has no command",
            "no container \"web\"",
            "contains or lies inside",
        ],
    );
}

#[test]
fn env_entries_a_file_replaces_are_warned_of() {
    let mut pod = seeds_pod("app");
    let env = pod["spec"]["containers"][0]["env"].as_array_mut().unwrap();
    env.push(json!({"name": "SECRET_PASSWORD", "value": "placeholder"}));
    env.push(json!({"name": "LOG_LEVEL", "value": "info"}));
    env.push(
        json!({"name": "test_secret", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
    );
    let (out, warnings) = mutated(&pod, &cfg());
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(
        warnings[0].contains(
            "container \"app\" sets the variable SECRET_PASSWORD in its env, and the file SECRET_PASSWORD replaces it"
        ) && warnings[0].contains("rename the variable or give the object another objectAlias"),
        "{warnings:#?}"
    );
    assert!(
        warnings[1].contains("the variable test_secret"),
        "{warnings:#?}"
    );
    // The env itself is left as it is.
    assert_eq!(
        named(&out, "containers", "app")["env"],
        pod["spec"]["containers"][0]["env"]
    );
}

#[test]
fn a_wrapper_for_another_mount_path_is_corrected_not_nested() {
    // As an older `webhook inject` left it, or a pod whose mount path changed since.
    let mut pod = seeds_pod("app");
    pod["spec"]["containers"][0]["command"] = wrapped("/etc/old", &["/app/server"]);
    let (out, _) = mutated(&pod, &cfg());
    assert_eq!(
        named(&out, "containers", "app")["command"],
        wrapped("/mnt/secrets-store", &["/app/server"])
    );
    assert_converged(&out, &cfg());

    let mut moved = out.clone();
    annotate(
        &mut moved,
        &[("secrets-injector.io/mount-path", "/var/run/values")],
    );
    let (out, _) = mutated(&moved, &cfg());
    assert_eq!(
        named(&out, "containers", "app")["command"],
        wrapped("/var/run/values", &["/app/server"])
    );
    validate(&[("env-moved", &out)]);
    assert_converged(&out, &cfg());
}

#[test]
fn reinvocation_after_another_webhook_added_a_container_wraps_nothing_twice() {
    let (mut out, _) = mutated(&seeds_pod("app"), &cfg());
    // Another webhook adds a sidecar and an env entry to the app; the pod is mutated again.
    out["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "proxy", "image": "envoy", "command": ["envoy"]}));
    out["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "TRACE", "value": "1"}));
    let (again, _) = mutated(&out, &cfg());
    assert_eq!(
        named(&again, "containers", "app")["command"],
        wrapped("/mnt/secrets-store", &["/app/server"])
    );
    let proxy = named(&again, "containers", "proxy");
    assert_eq!(proxy["command"], json!(["envoy"]));
    assert_eq!(
        proxy["volumeMounts"],
        json!([{"name": "secrets-injector", "mountPath": "/mnt/secrets-store", "readOnly": true}])
    );
    assert_eq!(
        list(&again, "volumes")
            .iter()
            .filter(|v| v["name"] == "secrets-injector-bin")
            .count(),
        1
    );
    assert_converged(&again, &cfg());
}

#[test]
fn names_that_need_json_pointer_escaping() {
    let mut pod = seeds_pod("a/b~c");
    pod["spec"]["containers"][0]["name"] = json!("a/b~c");
    pod["spec"]["volumes"] = json!([{"name": "x~1/y", "emptyDir": {}}]);
    pod["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "x~1/y", "mountPath": "/data"}]);
    let (out, _) = mutated(&pod, &cfg());
    let app = named(&out, "containers", "a/b~c");
    assert_eq!(
        app["command"],
        wrapped("/mnt/secrets-store", &["/app/server"])
    );
    assert_eq!(app["volumeMounts"].as_array().unwrap().len(), 3);
    assert_converged(&out, &cfg());
}

#[test]
fn the_pruned_pod_gets_the_same_answer() {
    let mut clash = seeds_pod("app");
    clash["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "SECRET_USERNAME", "value": "x"}));
    let mut no_command = seeds_pod("app");
    no_command["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("command");
    let (converged, _) = mutated(&seeds_pod("app"), &cfg());
    for pod in [seeds_pod("app"), clash, no_command, converged] {
        let raw = RawValue::from_string(pod.to_string()).unwrap();
        let read = pruned::read(&raw).unwrap();
        let (whole, from_pruned) = (mutate(&pod, &cfg()), mutate(&read, &cfg()));
        assert_eq!(whole, from_pruned);
        assert!(!matches!(whole, Decision::Skip));
    }
}

#[test]
fn workload_templates_through_webhook_inject() {
    let input = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
      annotations:
        secrets-injector.io/objects: |
          - objectName: /app/db
            objectType: ssmparameter
        secrets-injector.io/env-containers: web
    spec:
      containers:
        - name: web
          image: web:1
          command: ["/web"]
          args: ["--listen", ":8080"]
"#;
    let once = inject::run(input, &cfg()).unwrap();
    let doc: Value = serde_saphyr::from_str(&once).unwrap();
    let web = &doc["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(web["command"], wrapped("/mnt/secrets-store", &["/web"]));
    assert_eq!(web["args"], json!(["--listen", ":8080"]));
    validate(&[("env-deployment", &doc)]);
    assert_eq!(inject::run(&once, &cfg()).unwrap(), once);

    let bad = input.replace("          command: [\"/web\"]\n", "");
    let err = inject::run(&bad, &cfg()).unwrap_err().to_string();
    assert!(err.contains("container \"web\" has no command"), "{err}");
}

#[test]
fn webhook_policy_reads_past_the_annotation() {
    let policy = |pod: &Value| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_webhook"))
            .args(["policy", "--account", "123456789012"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run webhook policy");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(pod.to_string().as_bytes()).unwrap();
        drop(stdin);
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let plain = fixture("seeds-example-pod.yaml");
    assert_eq!(policy(&seeds_pod("app")), policy(&plain));
}

/// With `refresh-interval` too, only the init container copies `secrets-env`: the sidecar has
/// neither the flag nor the bin volume, and stays valid when converged again.
#[test]
fn the_refresh_sidecar_neither_copies_secrets_env_nor_mounts_its_volume() {
    let mut pod = seeds_pod("app");
    annotate(&mut pod, &[("secrets-injector.io/refresh-interval", "5m")]);
    let (out, warnings) = mutated(&pod, &cfg());
    assert!(warnings.is_empty(), "{warnings:?}");
    let has_flag = |container: &Value| {
        container["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|arg| arg.as_str().unwrap().starts_with("--secrets-env-dir="))
    };
    let mounts_bin = |container: &Value| {
        container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|mount| mount["name"] == "secrets-injector-bin")
    };
    assert!(has_flag(injector(&out)) && mounts_bin(injector(&out)));
    let sidecar = named(&out, "initContainers", "secrets-injector-refresh");
    assert!(!has_flag(sidecar), "{sidecar:#}");
    assert!(!mounts_bin(sidecar), "{sidecar:#}");
    assert!(
        sidecar["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--interval=5m"))
    );
    let (again, _) = mutated(&out, &cfg());
    assert_eq!(again, out, "a second mutation changes nothing");
}
