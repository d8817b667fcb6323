//! A service mesh's redirect, for real (no mesh runs here): the pod's containers share a network
//! namespace of the test's own where iptables redirects outbound TCP as Istio's CNI plugin does,
//! and the AWS emulator listens on the other end of a veth pair, in a second namespace of the
//! test's own. What SPEC's "Service meshes" says, shown with the real injector:
//!
//! - with nothing listening on the proxy's port (classic mode, where the proxy only starts with
//!   the app containers), the injector as the app's user is refused, and says so;
//! - as the proxy's user (what `secrets-injector.io/mesh-bypass: "true"` makes of the webhook's
//!   containers) its traffic is let through and the files are there;
//! - in the native-sidecar layout, with a stand-in proxy (tests/src/bin/mesh-proxy.rs, as the
//!   proxy's user, forwarding each connection to its original destination) started before it
//!   and probed as the kubelet does, the injector placed after the proxy succeeds through it,
//!   and placed before it fails: where the webhook puts it decides.
//!
//! The pods come from the webhook's own mutation (`mutation::mutate`), on pods shaped as Istio's
//! injector writes them, with stand-in images (nothing can be pulled here).
//!
//! Addresses are from the documentation range 192.0.2.0/24 and exist only in the two namespaces,
//! which are removed when a test ends, failed or not. Needs root, `ip` (iproute2) and `iptables`
//! (scripts/system-tools.sh), podman, and moto (SECRETS_INJECTOR_VENV or .venv).

use std::net::{IpAddr, Ipv4Addr};

use secrets_injector_e2e::eks;
use secrets_injector_e2e::moto::Moto;
use secrets_injector_e2e::netns::{self, NetNs};
use secrets_injector_e2e::pod_runner::{self, INJECTOR, Network, PodRun, Volumes};
use secrets_injector_e2e::podman::{self, APP_IMAGE, INJECTOR_IMAGE};
use secrets_injector_e2e::seed::{self, parameter, secret};
use secrets_injector_webhook::mutation::{Decision, MutationConfig, mutate};
use serde_json::{Value, json};

const REGION: &str = "us-east-1";
const ROLE: &str = "arn:aws:iam::123456789012:role/app";
/// The pod's address and the emulator's, on the two ends of the veth pair.
const POD_CIDR: &str = "192.0.2.1/24";
const AWS_CIDR: &str = "192.0.2.2/24";
const AWS_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// Istio's proxy user, and the port its redirect sends outbound traffic to.
const PROXY_UID: u64 = 1337;
const PROXY_PORT: u16 = 15001;
/// The app's user when the pod sets none: the webhook's `--injector-user` default.
const APP_UID: u32 = 65532;

/// The outbound half of the redirect Istio installs in a pod's namespace (its CNI plugin, or
/// `istio-init`; `istio-iptables` with its defaults, as its golden files in
/// tools/istio-iptables/pkg/capture/testdata show it): in `nat OUTPUT`, loopback traffic and the
/// proxy's own (uid or gid 1337) return; every other TCP connection is redirected to 15001. The
/// inbound half (PREROUTING to 15006) is left out: nothing comes in here.
const ISTIO_OUTBOUND: &str = "\
*nat
:ISTIO_REDIRECT - [0:0]
:ISTIO_IN_REDIRECT - [0:0]
:ISTIO_OUTPUT - [0:0]
-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT
-A ISTIO_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN
-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN
-A ISTIO_OUTPUT -j ISTIO_REDIRECT
COMMIT
";

/// Two namespaces joined by a veth pair, moto in one, the redirect in the other (the pod's).
/// Fields drop in order: moto first, so no process is left in a namespace when it is deleted.
struct Mesh {
    _moto: Moto,
    pod: NetNs,
    _aws: NetNs,
}

impl Mesh {
    fn new() -> Mesh {
        podman::test_images();
        podman::app_image();
        podman::mesh_proxy_image();
        let pod = NetNs::create();
        let aws = NetNs::create();
        netns::veth(&pod, "eth0", POD_CIDR, &aws, "eth0", AWS_CIDR);
        let moto = Moto::start_in(&aws, IpAddr::V4(AWS_IP));
        seed::seed_in(
            &aws,
            &moto.endpoint(),
            REGION,
            &[
                parameter("/test/parameter", "gonitest", "SecureString"),
                secret(
                    "test/secret",
                    r#"{"username":"example","password":"example1234"}"#,
                ),
            ],
        );
        pod.iptables_restore(ISTIO_OUTBOUND);
        Mesh {
            _moto: moto,
            pod,
            _aws: aws,
        }
    }

    /// Runs the pod's containers in the pod's namespace.
    fn run(&self, pod: &Value) -> PodRun {
        let volumes = Volumes::for_pod(pod, "web-identity-token");
        pod_runner::run_pod_on(
            pod,
            &volumes,
            &Network::Namespace(self.pod.name().to_owned()),
        )
    }

    /// The packets the nat rule `rule` (as `iptables-save` writes it) matched so far.
    fn packets(&self, rule: &str) -> u64 {
        let table = self.pod.iptables_save("nat");
        let line = table
            .lines()
            .find(|line| line.ends_with(rule))
            .unwrap_or_else(|| panic!("no rule {rule:?} in the pod's nat table:\n{table}"));
        // [PACKETS:BYTES] -A ...
        line.trim_start_matches('[')
            .split(':')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no counter in {line:?}"))
    }

    /// Connections sent to the proxy's port.
    fn redirected(&self) -> u64 {
        self.packets("-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001")
    }

    /// Connections of the proxy's user let through.
    fn let_through(&self) -> u64 {
        self.packets("-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN")
    }
}

/// A parameter, a secret, and one key of the secret.
const OBJECTS: &str = r#"
- {objectName: /test/parameter, objectType: ssmparameter}
- objectName: test/secret
  objectType: secretsmanager
  jmesPath: [{path: username, objectAlias: SECRET_USERNAME}]
"#;

/// The seeds' example (a parameter, a secret and two keys of it), for an app container that
/// lists the files, as EKS hands the pod over (IRSA, the SDK pointed at the emulator).
fn app_pod() -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "mesh", "namespace": "team-a", "annotations": {
            "secrets-injector.io/objects": OBJECTS
        }},
        "spec": {
            "serviceAccountName": "app",
            // The stand-in proxy, PID 1 of its container, does not handle SIGTERM.
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "app", "image": APP_IMAGE,
                "command": ["/bin/busybox", "sh", "-c", "busybox cat /mnt/secrets-store/SECRET_USERNAME"]
            }]
        }
    });
    let endpoint = format!("http://{AWS_IP}:5000");
    eks::add_irsa(
        &mut pod,
        ROLE,
        REGION,
        &[("AWS_ENDPOINT_URL", endpoint.as_str())],
    );
    pod
}

/// The security context Istio gives its containers.
fn istio_security() -> Value {
    json!({
        "runAsUser": PROXY_UID, "runAsGroup": PROXY_UID, "runAsNonRoot": true,
        "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
        "privileged": false, "capabilities": {"drop": ["ALL"]}
    })
}

/// `istio-validation`, the init container Istio's CNI mode adds to check the redirect is in
/// place; the stand-in only ends.
fn istio_validation() -> Value {
    json!({
        "name": "istio-validation", "image": APP_IMAGE,
        "command": ["/bin/busybox", "true"],
        "securityContext": istio_security()
    })
}

/// `istio-proxy` as a native sidecar: the stand-in proxy, probed on its port (Istio probes
/// `/healthz/ready` on 15021 every second; the runner maps `tcpSocket` probes).
fn istio_proxy_native() -> Value {
    json!({
        "name": "istio-proxy", "image": podman::MESH_PROXY_IMAGE,
        "args": [PROXY_PORT.to_string()],
        "restartPolicy": "Always",
        "ports": [{"name": "outbound", "containerPort": PROXY_PORT}],
        "startupProbe": {
            "tcpSocket": {"port": PROXY_PORT},
            "periodSeconds": 1, "timeoutSeconds": 3, "failureThreshold": 60
        },
        "securityContext": istio_security()
    })
}

/// Istio's native-sidecar layout with its CNI plugin: its init containers, then the proxy, then
/// every other init container (`reorderPod`); the app's containers as they were.
fn istio_native(mut pod: Value) -> Value {
    let spec = pod["spec"].as_object_mut().expect("spec");
    let inits = spec
        .entry("initContainers")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .expect("init containers");
    inits.splice(0..0, [istio_validation(), istio_proxy_native()]);
    pod
}

/// Istio's classic layout with its CNI plugin: `istio-validation` as an init container and the
/// proxy as a regular container, which only starts with the app, after every init container.
/// The runner runs regular containers one after the other to their end, so the stand-in there
/// ends at once: what matters is that nothing listens on 15001 while the init containers run.
fn istio_classic_cni(mut pod: Value) -> Value {
    let spec = pod["spec"].as_object_mut().expect("spec");
    spec.entry("initContainers")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .expect("init containers")
        .insert(0, istio_validation());
    spec["containers"]
        .as_array_mut()
        .expect("containers")
        .push(json!({
            "name": "istio-proxy", "image": APP_IMAGE,
            "command": ["/bin/busybox", "true"],
            "ports": [{"name": "http-envoy-prom", "containerPort": 15090}],
            "securityContext": istio_security()
        }));
    pod
}

/// The pod as the webhook mutates it (`mutate`, the webhook's defaults and the test image).
fn webhook(pod: &Value) -> Value {
    match mutate(pod, &MutationConfig::for_tests(INJECTOR_IMAGE)) {
        Decision::Patch { patch, .. } => {
            let mut mutated = pod.clone();
            json_patch::patch(&mut mutated, &patch).expect("the webhook's patch applies");
            mutated
        }
        other => panic!("the webhook did not patch the pod: {other:?}"),
    }
}

fn init_names(pod: &Value) -> Vec<&str> {
    pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["name"].as_str().expect("name"))
        .collect()
}

/// The pod with its init containers in this order (by name).
fn reordered(pod: &Value, order: &[&str]) -> Value {
    let mut pod = pod.clone();
    let inits = pod["spec"]["initContainers"]
        .as_array()
        .expect("init containers")
        .clone();
    assert_eq!(inits.len(), order.len(), "{:?}", init_names(&pod));
    pod["spec"]["initContainers"] = order
        .iter()
        .map(|name| {
            inits
                .iter()
                .find(|c| c["name"] == *name)
                .unwrap_or_else(|| panic!("no init container {name}"))
                .clone()
        })
        .collect();
    pod
}

/// The injector failed on a refused connection, and what it wrote to /dev/termination-log (what
/// `kubectl describe pod` shows) says so for every object.
fn assert_refused(run: &PodRun) {
    let injector = run.injector();
    assert_ne!(injector.exit_code, 0, "{run:#?}");
    let log = &injector.termination_log;
    assert!(
        log.starts_with("secrets-injector: 2 of 2 objects failed"),
        "{injector:#?}"
    );
    let objects: Vec<&str> = log.lines().filter(|l| l.starts_with("objects[")).collect();
    assert_eq!(objects.len(), 2, "{injector:#?}");
    for line in objects {
        assert!(
            line.contains("Connection refused (os error 111)"),
            "the termination message names the refused connection: {line}"
        );
    }
    assert!(run.files.is_empty(), "{:?}", run.files.keys());
    assert!(
        run.containers.iter().all(|c| c.name != "app"),
        "the app never starts: {run:#?}"
    );
}

/// The injector wrote the files and the app read them.
fn assert_fetched(run: &PodRun) {
    let injector = run.injector();
    assert_eq!(injector.exit_code, 0, "{run:#?}");
    assert_eq!(
        run.entries,
        ["SECRET_USERNAME", "_test_parameter", "test_secret"]
    );
    assert_eq!(run.text("_test_parameter"), "gonitest");
    assert_eq!(run.text("SECRET_USERNAME"), "example");
    let app = run.container("app");
    assert_eq!(app.exit_code, 0, "{app:#?}");
    assert_eq!(app.stdout, "example");
}

/// Lines of the stand-in proxy's log: `forward PEER -> DESTINATION` per forwarded connection.
fn forwarded_to_aws(run: &PodRun) -> usize {
    let proxy = run.container("istio-proxy");
    let destination = format!("-> {AWS_IP}:5000");
    assert!(
        !proxy.stdout.contains("failed "),
        "the proxy could not reach a destination: {proxy:#?}"
    );
    proxy
        .stdout
        .lines()
        .filter(|line| line.starts_with("forward ") && line.ends_with(&destination))
        .count()
}

/// Classic mode with the CNI redirect and no proxy running yet: the injector, as the app's
/// user, is redirected to a port where nothing listens. (The webhook saw the pod before Istio
/// added its containers, so it could not know; this is the failure the rules are for.)
#[test]
fn in_the_redirect_without_a_proxy_the_injector_as_the_apps_user_is_refused() {
    let mesh = Mesh::new();
    let pod = istio_classic_cni(webhook(&app_pod()));
    assert_eq!(
        pod_runner::container(&pod, INJECTOR)["securityContext"]["runAsUser"],
        json!(APP_UID)
    );

    let run = mesh.run(&pod);
    assert_refused(&run);
    assert!(mesh.redirected() > 0, "the redirect took its connections");
    assert_eq!(mesh.let_through(), 0);
}

/// The same pod with the injector as the proxy's user, by hand: the redirect lets it through,
/// and the files belong to that user (mode 0644: the app reads them).
#[test]
fn as_the_proxys_user_the_injector_passes_the_redirect() {
    let mesh = Mesh::new();
    let mut pod = istio_classic_cni(webhook(&app_pod()));
    let inits = pod["spec"]["initContainers"]
        .as_array_mut()
        .expect("init containers");
    let injector = inits
        .iter_mut()
        .find(|c| c["name"] == INJECTOR)
        .expect("the injector");
    injector["securityContext"]["runAsUser"] = json!(PROXY_UID);

    let run = mesh.run(&pod);
    assert_fetched(&run);
    assert_eq!(run.file("_test_parameter").uid, PROXY_UID as u32);
    assert_eq!(run.file("_test_parameter").mode, 0o644);
    assert_eq!(mesh.redirected(), 0, "nothing was redirected");
    assert!(mesh.let_through() > 0, "the proxy's user's rule let it out");
}

/// `mesh-bypass: "true"` on a pod in Istio's classic CNI layout: the webhook runs its containers
/// as the proxy's user (read from the proxy's `runAsUser`), and the injector passes.
#[test]
fn with_mesh_bypass_the_webhooks_injector_passes_the_redirect() {
    let mesh = Mesh::new();
    let mut pod = istio_classic_cni(app_pod());
    pod["metadata"]["annotations"]["secrets-injector.io/mesh-bypass"] = json!("true");
    let pod = webhook(&pod);
    assert_eq!(
        pod_runner::container(&pod, INJECTOR)["securityContext"]["runAsUser"],
        json!(PROXY_UID),
        "mesh-bypass runs the injector as the proxy's user"
    );

    let run = mesh.run(&pod);
    assert_fetched(&run);
    assert_eq!(run.file("_test_parameter").uid, PROXY_UID as u32);
    assert_eq!(mesh.redirected(), 0);
    assert!(mesh.let_through() > 0);
}

/// Istio's native layout: the webhook puts the injector after the proxy, whose startup probe
/// the runner waits for as the kubelet does; the injector, as the app's user, is redirected to
/// the proxy, which forwards its calls to the emulator.
#[test]
fn in_the_native_layout_the_webhook_puts_the_injector_after_the_proxy_and_it_passes() {
    let mesh = Mesh::new();
    let pod = webhook(&istio_native(app_pod()));
    assert_eq!(
        init_names(&pod),
        ["istio-validation", "istio-proxy", INJECTOR],
        "the injector goes right after the mesh's proxy"
    );

    let run = mesh.run(&pod);
    assert_through_the_proxy(&mesh, &run);
}

/// The rule itself, with the order set by hand (whatever the webhook does): in the native
/// layout, after the proxy the injector passes through it; before it (where `init-first` used
/// to put it), nothing listens on 15001 yet and it is refused.
#[test]
fn in_the_native_layout_the_injector_passes_after_the_proxy_and_is_refused_before_it() {
    let mesh = Mesh::new();
    let pod = webhook(&istio_native(app_pod()));

    let after = reordered(&pod, &["istio-validation", "istio-proxy", INJECTOR]);
    let run = mesh.run(&after);
    assert_through_the_proxy(&mesh, &run);

    let redirected = mesh.redirected();
    let before = reordered(&pod, &[INJECTOR, "istio-validation", "istio-proxy"]);
    let run = mesh.run(&before);
    assert_refused(&run);
    assert!(
        run.containers.iter().all(|c| c.name != "istio-proxy"),
        "the proxy never started: {run:#?}"
    );
    assert!(mesh.redirected() > redirected, "the redirect took them");
}

/// The injector ran as the app's user after the proxy started (its probe passed), its calls
/// were redirected to the proxy and forwarded to the emulator, and the app read the files.
fn assert_through_the_proxy(mesh: &Mesh, run: &PodRun) {
    let names: Vec<&str> = run.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["istio-validation", INJECTOR, "app", "istio-proxy"],
        "{run:#?}"
    );
    let proxy = run.container("istio-proxy");
    assert!(
        proxy.startup_probes >= 1,
        "the runner probed the proxy before the injector: {proxy:#?}"
    );
    assert!(
        proxy
            .stdout
            .starts_with(&format!("listening on {PROXY_PORT}\n")),
        "{proxy:#?}"
    );
    assert_fetched(run);
    assert_eq!(run.file("_test_parameter").uid, APP_UID);
    let forwarded = forwarded_to_aws(run);
    // STS, GetParameters and GetSecretValue, over one connection or more.
    assert!(forwarded >= 1, "nothing forwarded: {proxy:#?}");
    assert!(
        mesh.redirected() >= forwarded as u64,
        "every forwarded connection came through the redirect"
    );
    assert!(mesh.let_through() >= forwarded as u64, "the proxy's own");
}
