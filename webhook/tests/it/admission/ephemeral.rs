//! `pods/ephemeralcontainers` UPDATEs (`kubectl debug`) as the API server sends them, answered by
//! `admission::respond`: in a pod whose containers share one process namespace, a debug
//! container of the webhook's refresh sidecar's user (or root, or of no known user) can reach the
//! sidecar's writable volume through `/proc/<pid>/root`, so it is denied; one of another user is
//! allowed.

use secrets_injector_e2e::admission::{body, update_review};
use secrets_injector_webhook::admission::{self, Verdict, respond};
use serde_json::{Value, json};

use crate::support::mutate::{cfg, fixture, mutated};

/// The refresh fixture as the API server stores it: `shareProcessNamespace`, the pod's user 101,
/// and the webhook's sidecar `secrets-injector-refresh` running as that user (`refresh-signal`
/// needs it).
fn stored() -> Value {
    let (pod, _) = mutated(&fixture("refresh-pod.yaml"), &cfg());
    let sidecar = pod["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "secrets-injector-refresh")
        .expect("the refresh sidecar");
    assert_eq!(sidecar["securityContext"]["runAsUser"], 101);
    pod
}

/// The answer to adding `added` to `stored`'s ephemeral containers: `None` when allowed, else
/// the denial.
fn debug(stored: &Value, added: Value) -> Option<String> {
    let mut new = stored.clone();
    new["spec"]["ephemeralContainers"] = json!([added]);
    let mut review = update_review("debug", stored, &new, "shop");
    review["request"]["subResource"] = json!("ephemeralcontainers");
    review["request"]["requestSubResource"] = json!("ephemeralcontainers");
    let bytes = body(&review);
    let outcome = respond(&admission::parse(&bytes).unwrap(), &cfg());
    assert!(outcome.response.patch.is_none());
    match outcome.verdict {
        Verdict::Denied => Some(outcome.response.denial.unwrap().message),
        _ => {
            assert!(outcome.response.allowed);
            None
        }
    }
}

fn debugger(security_context: Option<Value>) -> Value {
    let mut container = json!({"name": "debug", "image": "busybox:1.36", "command": ["sh"],
        "stdin": true, "tty": true, "targetContainerName": "nginx"});
    if let Some(context) = security_context {
        container["securityContext"] = context;
    }
    container
}

#[test]
fn a_debug_container_that_can_reach_the_sidecar_through_the_shared_process_namespace_is_denied() {
    let stored = stored();
    // The pod's user, which is the sidecar's: denied, naming both and the way out.
    let message = debug(&stored, debugger(None)).expect("denied");
    for part in [
        "ephemeral container \"debug\"",
        "spec.shareProcessNamespace",
        "\"secrets-injector-refresh\"",
        "runs as 101",
        "/proc",
        "runAsUser",
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    for context in [json!({"runAsUser": 101}), json!({"runAsUser": 0})] {
        assert!(
            debug(&stored, debugger(Some(context.clone()))).is_some(),
            "{context}"
        );
    }
    // Without a user anywhere it may be root or the sidecar's.
    let mut no_user = stored.clone();
    no_user["spec"]["securityContext"]
        .as_object_mut()
        .unwrap()
        .remove("runAsUser");
    let message = debug(&no_user, debugger(Some(json!({"runAsNonRoot": true})))).expect("denied");
    assert!(message.contains("no runAsUser"), "{message}");
    // Another user: allowed.
    assert_eq!(
        debug(&stored, debugger(Some(json!({"runAsUser": 4242})))),
        None
    );
    // Processes apart: the pod's own user is allowed.
    let mut apart = stored.clone();
    apart["spec"]["shareProcessNamespace"] = json!(false);
    assert_eq!(debug(&apart, debugger(None)), None);
    // No sidecar of the webhook's: nothing of it runs to be reached.
    let (plain, _) = mutated(
        &{
            let mut pod = fixture("refresh-pod.yaml");
            let annotations = pod["metadata"]["annotations"].as_object_mut().unwrap();
            for name in ["refresh-interval", "refresh-signal", "refresh-url"] {
                annotations.remove(&format!("secrets-injector.io/{name}"));
            }
            pod
        },
        &cfg(),
    );
    assert_eq!(debug(&plain, debugger(None)), None);
}
