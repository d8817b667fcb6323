//! The runner must give the init container what a real kubelet gives it, and no more: these
//! tests hold it to that, so that the end-to-end tests prove something about a real pod.

use secrets_injector_e2e::kubelet::{Volumes, run_init_container};
use serde_json::json;
use std::path::Path;

fn pod(command: &[&str], args: &[&str], security: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "securityContext": {"fsGroup": 2000},
            "initContainers": [{
                "name": "secrets-injector", "image": "x",
                "command": command, "args": args,
                "env": [{"name": "GREETING", "value": "it's here"}],
                "securityContext": security,
                "volumeMounts": [{"name": "secrets-injector", "mountPath": "/mnt/secrets-store"}]
            }],
            "containers": [{"name": "app", "image": "nginx"}],
            "volumes": [{"name": "secrets-injector", "emptyDir": {"medium": "Memory"}}]
        }
    })
}

#[test]
fn runs_as_the_container_user_with_only_its_mounts_writable() {
    let pod = pod(
        &["/usr/local/bin/injector"],
        &[
            "-c",
            "touch /mnt/secrets-store/ok && echo \"$GREETING\" > /mnt/secrets-store/env && (touch /not-writable 2>/dev/null && echo root-writable || echo root-read-only) > /mnt/secrets-store/root && id -u > /mnt/secrets-store/uid && echo bye > /dev/termination-log",
        ],
        json!({"runAsUser": 1234, "runAsGroup": 4321}),
    );
    let volumes = Volumes::for_pod(&pod, "token");
    let run = run_init_container(&pod, &volumes, Path::new("/bin/sh"));
    assert_eq!(run.exit_code, 0, "stderr: {}", run.stderr);
    assert_eq!(run.text("uid"), "1234\n");
    assert_eq!(run.text("root"), "root-read-only\n");
    assert_eq!(run.text("env"), "it's here\n");
    assert_eq!(run.termination_log, "bye\n");
    let ok = run.file("ok");
    assert_eq!(
        (ok.uid, ok.gid),
        (1234, 2000),
        "fsGroup owns files in the emptyDir"
    );
}

#[test]
fn reports_a_failing_container() {
    let pod = pod(
        &["/usr/local/bin/injector"],
        &["-c", "echo nope >&2; exit 3"],
        json!({}),
    );
    let volumes = Volumes::for_pod(&pod, "token");
    let run = run_init_container(&pod, &volumes, Path::new("/bin/sh"));
    assert_eq!(run.exit_code, 3);
    assert!(run.stderr.contains("nope"));
    assert!(run.files.is_empty());
}
