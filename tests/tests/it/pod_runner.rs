//! The pod runner must give the containers what a node gives them, and no more: these tests hold
//! it to that with the busybox app image, so that the end-to-end tests prove something about a
//! real pod.
//!
//! The startup-probe tests make a network namespace of their own (root, `ip` from iproute2).

use secrets_injector_e2e::netns::NetNs;
use secrets_injector_e2e::pod_runner::{Network, Volumes, run_pod, run_pod_on};
use secrets_injector_e2e::podman::app_image;
use serde_json::{Value, json};

/// A pod whose init container runs `script` (busybox sh) with the injector's security context,
/// and whose app container runs `app_script` with the volume mounted read-only.
fn pod(script: &str, app_script: &str) -> Value {
    let image = app_image();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "team-a"},
        "spec": {
            "securityContext": {"fsGroup": 2000, "supplementalGroups": [3000]},
            "initContainers": [{
                "name": "secrets-injector", "image": image,
                "command": ["/bin/busybox", "sh", "-c"], "args": [script],
                "env": [
                    {"name": "GREETING", "value": "it's here"},
                    {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                ],
                "securityContext": {
                    "runAsUser": 1234, "runAsGroup": 4321, "runAsNonRoot": true,
                    "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}
                },
                "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "volumeMounts": [
                    {"name": "secrets-injector", "mountPath": "/mnt/secrets-store"},
                    {"name": "aws-iam-token", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount", "readOnly": true}
                ]
            }],
            "containers": [{
                "name": "app", "image": image,
                "command": ["/bin/busybox", "sh", "-c", app_script],
                "securityContext": {"runAsUser": 1000},
                "volumeMounts": [{"name": "secrets-injector", "mountPath": "/mnt/secrets-store", "readOnly": true}]
            }],
            "volumes": [
                {"name": "secrets-injector", "emptyDir": {"medium": "Memory"}},
                {"name": "aws-iam-token", "projected": {"sources": [
                    {"serviceAccountToken": {"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}
                ]}}
            ]
        }
    })
}

#[test]
fn the_containers_get_their_user_groups_env_mounts_and_a_read_only_root() {
    let init = r#"
        cd /mnt/secrets-store
        echo "$(busybox id -u) $(busybox id -g) $(busybox id -G)" > id
        echo "$GREETING from $POD" > env
        (busybox touch /not-writable 2>/dev/null && echo writable || echo read-only) > root
        (busybox touch /tmp/x 2>/dev/null && echo writable || echo read-only) > tmp
        (echo x > /var/run/secrets/eks.amazonaws.com/serviceaccount/token 2>/dev/null && echo writable || echo read-only) > token-mount
        busybox cat /var/run/secrets/eks.amazonaws.com/serviceaccount/token > token
        busybox grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status > status
        { busybox cat /sys/fs/cgroup/memory.max 2>/dev/null || busybox cat /sys/fs/cgroup/memory/memory.limit_in_bytes; } > memory
        echo done > /dev/termination-log
    "#;
    let app = r#"
        busybox id -u
        busybox cat /mnt/secrets-store/env
        busybox touch /mnt/secrets-store/new 2>/dev/null && echo volume-writable || echo volume-read-only
    "#;
    let pod = pod(init, app);
    let volumes = Volumes::for_pod(&pod, "the-token");
    let run = run_pod(&pod, &volumes);
    let init = run.injector();
    assert_eq!(init.exit_code, 0, "{init:#?}");
    assert_eq!(
        run.text("id"),
        "1234 4321 4321 2000 3000\n",
        "runAsUser, runAsGroup, then fsGroup and supplementalGroups"
    );
    assert_eq!(run.text("env"), "it's here from p\n");
    assert_eq!(run.text("root"), "read-only\n");
    assert_eq!(run.text("tmp"), "read-only\n", "no tmpfs added at /tmp");
    assert_eq!(run.text("token-mount"), "read-only\n");
    assert_eq!(run.text("token"), "the-token");
    let status = run.text("status");
    assert!(status.contains("CapEff:\t0000000000000000"), "{status}");
    assert!(status.contains("CapBnd:\t0000000000000000"), "{status}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert_eq!(run.text("memory").trim(), (64u64 << 20).to_string());
    assert_eq!(init.termination_log, "done\n");
    let id = run.file("id");
    assert_eq!(
        (id.uid, id.gid),
        (1234, 2000),
        "fsGroup owns files in the emptyDir"
    );

    let app = run.container("app");
    assert_eq!(app.exit_code, 0, "{app:#?}");
    assert_eq!(
        app.stdout, "1000\nit's here from p\nvolume-read-only\n",
        "{app:#?}"
    );
    assert!(!run.files.contains_key("new"));
}

#[test]
fn a_failing_init_container_stops_the_pod_and_its_log_is_the_message() {
    let pod = pod("echo nope >&2; exit 3", "echo app ran");
    let volumes = Volumes::for_pod(&pod, "token");
    let run = run_pod(&pod, &volumes);
    assert_eq!(run.containers.len(), 1, "the app never starts: {run:#?}");
    let init = run.injector();
    assert_eq!(init.exit_code, 3);
    assert!(init.stderr.contains("nope"));
    assert_eq!(init.termination_log, "");
    assert_eq!(init.termination_message, "nope", "FallbackToLogsOnError");
    assert!(run.files.is_empty());
}

#[test]
fn run_as_non_root_refuses_a_root_user() {
    let mut pod = pod("true", "true");
    pod["spec"]["initContainers"][0]["securityContext"]["runAsUser"] = json!(0);
    let volumes = Volumes::for_pod(&pod, "token");
    let run = run_pod(&pod, &volumes);
    let init = run.injector();
    assert_eq!(init.exit_code, -1);
    assert_eq!(
        init.termination_message,
        "container has runAsNonRoot and image will run as root"
    );
    assert_eq!(run.containers.len(), 1);
}

/// A pod with a native sidecar between two init containers, the sidecar writing a heartbeat
/// until it is stopped; `app_script` runs in the app container.
fn sidecar_pod(share: bool, app_script: &str) -> Value {
    let image = app_image();
    let user = json!({"runAsUser": 1234, "runAsGroup": 1234});
    let hardened = json!({
        "runAsUser": 1234, "runAsGroup": 1234, "runAsNonRoot": true,
        "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}
    });
    let rw = json!([{"name": "secrets-injector", "mountPath": "/v"}]);
    let sidecar = r#"
        trap 'echo stopped > /v/sidecar-stopped; exit 0' TERM
        busybox cat /v/first > /v/sidecar-saw-first 2>/dev/null || echo missing > /v/sidecar-saw-first
        busybox id -u > /v/sidecar-id
        (busybox touch /x 2>/dev/null && echo writable || echo read-only) > /v/sidecar-root
        i=0
        while true; do i=$((i+1)); echo $i > /v/beat; busybox sleep 0.1; done
    "#;
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "sc", "namespace": "team-a"},
        "spec": {
            "shareProcessNamespace": share,
            "initContainers": [
                {"name": "first", "image": image, "command": ["/bin/busybox", "sh", "-c", "echo done > /v/first"],
                 "securityContext": user, "volumeMounts": rw},
                {"name": "sidecar", "image": image, "restartPolicy": "Always",
                 "command": ["/bin/busybox", "sh", "-c", sidecar],
                 "securityContext": hardened, "volumeMounts": rw},
                {"name": "second", "image": image,
                 "command": ["/bin/busybox", "sh", "-c", "until [ -e /v/beat ]; do busybox sleep 0.1; done; echo ok > /v/second"],
                 "securityContext": user, "volumeMounts": rw}
            ],
            "containers": [{
                "name": "app", "image": image,
                "command": ["/bin/busybox", "sh", "-c", app_script],
                "securityContext": user,
                "volumeMounts": [{"name": "secrets-injector", "mountPath": "/v", "readOnly": true}]
            }],
            "volumes": [{"name": "secrets-injector", "emptyDir": {"medium": "Memory"}}]
        }
    })
}

/// The app waits for a new heartbeat (so the sidecar runs beside it), then says whether it sees
/// the sidecar's process.
const WATCH_SIDECAR: &str = r#"
    b=$(busybox cat /v/beat)
    until [ "$(busybox cat /v/beat)" != "$b" ]; do busybox sleep 0.1; done
    echo sidecar-running
    if busybox ps -o user,args | busybox grep -q '[s]idecar-stopped'; then echo visible; else echo not-visible; fi
"#;

#[test]
fn a_native_sidecar_runs_beside_the_app_and_is_stopped_at_the_end() {
    for share in [true, false] {
        let pod = sidecar_pod(share, WATCH_SIDECAR);
        let volumes = Volumes::for_pod(&pod, "token");
        let run = run_pod(&pod, &volumes);
        let names: Vec<&str> = run.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["first", "second", "app", "sidecar"],
            "the sidecar's run ends last: {run:#?}"
        );
        for container in &run.containers {
            assert_eq!(container.exit_code, 0, "{container:#?}");
        }
        assert_eq!(
            run.text("sidecar-saw-first"),
            "done\n",
            "started after the init container before it ended"
        );
        assert_eq!(run.text("second"), "ok\n", "the next one waited for it");
        assert_eq!(run.text("sidecar-id"), "1234\n");
        assert_eq!(run.text("sidecar-root"), "read-only\n");
        assert_eq!(
            run.text("sidecar-stopped"),
            "stopped\n",
            "SIGTERM at the end"
        );
        let app = run.container("app");
        let seen = if share { "visible" } else { "not-visible" };
        assert_eq!(
            app.stdout,
            format!("sidecar-running\n{seen}\n"),
            "shareProcessNamespace: {share}"
        );
    }
}

#[test]
fn a_sidecar_that_ends_early_is_reported_with_its_output() {
    let mut pod = sidecar_pod(false, "echo app ran");
    let inits = pod["spec"]["initContainers"].as_array_mut().unwrap();
    inits.pop();
    inits[1]["command"] = json!([
        "/bin/busybox",
        "sh",
        "-c",
        "echo no such subcommand >&2; exit 2"
    ]);
    inits[1]["terminationMessagePolicy"] = json!("FallbackToLogsOnError");
    let volumes = Volumes::for_pod(&pod, "token");
    let run = run_pod(&pod, &volumes);
    // Whether the app got to run depends on when the runner looked (the kubelet would restart
    // the sidecar); the sidecar's own run says what happened either way.
    let sidecar = run.container("sidecar");
    assert_eq!(sidecar.exit_code, 2, "{run:#?}");
    assert_eq!(sidecar.termination_message, "no such subcommand");
    assert_eq!(run.containers.last().unwrap().name, "sidecar");
}

#[test]
fn a_sidecar_signals_the_app_in_the_shared_process_namespace() {
    // What `refresh-signal` needs of the node: the sidecar, as the app's user and with no
    // capabilities, sees and signals the app's processes by name (the pause container's, of
    // another user, refuse it).
    let app = r#"
        trap 'echo got-hup; exit 0' HUP
        while true; do busybox sleep 0.1; done
    "#;
    let mut pod = sidecar_pod(true, app);
    pod["spec"]["initContainers"][1]["command"] = json!([
        "/bin/busybox",
        "sh",
        "-c",
        // This busybox has no pkill: the same by hand, every process named busybox (the
        // sidecar's own ignore it).
        "trap '' HUP; echo x > /v/beat; while true; do \
         for p in /proc/[0-9]*; do \
         [ \"$(busybox cat $p/comm 2>/dev/null)\" = busybox ] && kill -HUP ${p#/proc/} 2>/dev/null; \
         done; busybox sleep 0.2; done"
    ]);
    let volumes = Volumes::for_pod(&pod, "token");
    let run = run_pod(&pod, &volumes);
    let app = run.container("app");
    assert_eq!(app.exit_code, 0, "{run:#?}");
    assert_eq!(app.stdout, "got-hup\n");
}

/// A pod in a network namespace of the test's own whose native sidecar listens on port 8080
/// after `delay` seconds (never, when `None`), with a startup probe on it; the init container
/// after it connects to that port.
fn probed_pod(delay: Option<u32>) -> Value {
    let image = app_image();
    let rw = json!([{"name": "secrets-injector", "mountPath": "/v"}]);
    let listen = match delay {
        Some(delay) => {
            format!("busybox sleep {delay}; exec busybox nc -ll -p 8080 -e /bin/busybox true")
        }
        None => "exec busybox sleep 600".to_owned(),
    };
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "probed", "namespace": "team-a"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "initContainers": [
                {"name": "listener", "image": image, "restartPolicy": "Always",
                 "command": ["/bin/busybox", "sh", "-c", listen],
                 "ports": [{"name": "web", "containerPort": 8080}],
                 "startupProbe": {"tcpSocket": {"port": "web"}, "periodSeconds": 1, "failureThreshold": 2}},
                {"name": "client", "image": image,
                 "command": ["/bin/busybox", "sh", "-c",
                             "busybox nc -w 5 127.0.0.1 8080 </dev/null && echo connected > /v/client"],
                 "volumeMounts": rw}
            ],
            "containers": [{"name": "app", "image": image, "command": ["/bin/busybox", "true"]}],
            "volumes": [{"name": "secrets-injector", "emptyDir": {}}]
        }
    })
}

#[test]
fn the_next_init_container_waits_for_a_sidecars_startup_probe_in_the_pods_network() {
    let netns = NetNs::create();
    let network = Network::Namespace(netns.name().to_owned());
    let mut pod = probed_pod(Some(3));
    pod["spec"]["initContainers"][0]["startupProbe"]["failureThreshold"] = json!(60);
    let volumes = Volumes::for_pod(&pod, "token");
    let run = run_pod_on(&pod, &volumes, &network);
    let names: Vec<&str> = run.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["client", "app", "listener"], "{run:#?}");
    assert_eq!(run.text("client"), "connected\n", "{run:#?}");
    let listener = run.container("listener");
    assert!(listener.startup_probes >= 1, "{listener:#?}");
}

#[test]
fn a_sidecar_whose_startup_probe_fails_stops_the_pod_there() {
    let netns = NetNs::create();
    let network = Network::Namespace(netns.name().to_owned());
    let pod = probed_pod(None);
    let volumes = Volumes::for_pod(&pod, "token");
    let run = run_pod_on(&pod, &volumes, &network);
    let names: Vec<&str> = run.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["listener"], "nothing after it starts: {run:#?}");
    let listener = run.container("listener");
    assert_eq!(
        listener.startup_probes, 2,
        "failureThreshold: {listener:#?}"
    );
    assert!(
        listener
            .termination_message
            .starts_with("Startup probe failed: dial tcp 127.0.0.1:8080: Connection refused"),
        "{listener:#?}"
    );
}
