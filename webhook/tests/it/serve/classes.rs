//! `webhook serve --csi-volumes=rewrite` reading SecretProviderClasses from an API server (the
//! small HTTPS one of tests/src/apiserver.rs, which lists, watches, expires versions, goes away
//! and answers 404 or 403 as the real one does): readiness waits for the first list; classes
//! created, changed and deleted while the webhook runs are picked up, one created a moment before
//! its pod included; the webhook survives `410 Gone` and the API server going away; a missing CRD
//! and missing RBAC are clear denials and log lines. And the bounds that keep a hostile pod or
//! class from stopping it: one GET per distinct name per review, within the lookup budget, a
//! failure remembered; names checked before any request; an answer for another class ignored;
//! huge classes kept as small markers, listed in pages; a class derived once.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use secrets_injector_e2e::admission;
use secrets_injector_e2e::apiserver::{ApiServer, Mode};
use secrets_injector_e2e::https::{self, Client, SERVICE_NAME, Webhook};
use serde_json::{Value, json};

const NAMESPACE: &str = "team-a";
/// Bounds a wait for the webhook to see a change; the watch delivers within a second, and a
/// reconnection takes the watcher's backoff (at most 30 s).
const CHANGE: Duration = Duration::from_secs(90);

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_webhook"))
}

/// One of the manifests users of the CSI driver have: (class in NAMESPACE, pod).
fn seed(name: &str) -> (Value, Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/csi-driver")
        .join(name);
    let text = std::fs::read_to_string(path).unwrap();
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let mut class = documents[0].clone();
    class["metadata"]["namespace"] = json!(NAMESPACE);
    (class, documents[1].clone())
}

fn class(name: &str, objects: &str) -> Value {
    json!({
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"provider": "aws", "parameters": {"objects": objects}},
    })
}

fn pod_naming(class: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app", "annotations": {"secrets-injector.io/secret-provider-class": class}},
        "spec": {"containers": [{"name": "app", "image": "app"}]}
    })
}

struct World {
    api: ApiServer,
    webhook: Webhook,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl World {
    fn start(mode: Mode, classes: &[Value]) -> World {
        Self::start_with(mode, classes, &[])
    }

    /// As `start`, with more flags.
    fn start_with(mode: Mode, classes: &[Value], flags: &[&str]) -> World {
        let dir = tempfile::tempdir().unwrap();
        https::make_certs(program(), dir.path(), &["--extra-san", "127.0.0.1"]);
        let (cert, key, ca) = (
            dir.path().join("tls.crt"),
            dir.path().join("tls.key"),
            dir.path().join("ca.crt"),
        );
        let api = ApiServer::start(&cert, &key);
        api.set_mode(mode);
        for class in classes {
            api.apply(class);
        }
        let kubeconfig = api.kubeconfig(dir.path(), &ca);
        let mut args: Vec<std::ffi::OsString> = vec![
            "--tls-cert".into(),
            cert.into_os_string(),
            "--tls-key".into(),
            key.into_os_string(),
            "--injector-image=injector:1".into(),
            "--default-region=eu-west-1".into(),
            "--csi-volumes=rewrite".into(),
            "--kubeconfig".into(),
            kubeconfig.into_os_string(),
        ];
        args.extend(flags.iter().map(Into::into));
        // As the Deployment runs it: arena memory committed as it is used.
        let webhook = Webhook::start_with_env(program(), args, https::ALLOCATOR_ENV);
        World {
            api,
            webhook,
            ca,
            _dir: dir,
        }
    }

    fn client(&self) -> Client {
        Client::new(self.webhook.addr, SERVICE_NAME, &[&self.ca])
    }

    fn readyz(&self) -> (u16, String) {
        let response = self.client().get("/readyz").expect("GET /readyz");
        (response.status, response.text())
    }

    /// The answer to a review of creating `pod` in NAMESPACE.
    fn review(&self, pod: &Value) -> Value {
        let review = admission::create_review("1", pod, NAMESPACE);
        let answer = self
            .client()
            .post_json("/mutate", &admission::body(&review))
            .expect("POST /mutate");
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()["response"].clone()
    }

    /// The pod's patch as text, or the denial message prefixed with "denied: ".
    fn answer(&self, pod: &Value) -> String {
        let response = self.review(pod);
        if response["allowed"] == true {
            let patch = response["patch"].as_str().unwrap_or_default();
            let bytes = base64_decode(patch);
            String::from_utf8(bytes).unwrap()
        } else {
            format!("denied: {}", response["status"]["message"])
        }
    }

    /// Waits until the answer for `pod` contains `needle`; panics with the last answer.
    fn wait_for_answer(&self, pod: &Value, needle: &str) -> String {
        let deadline = Instant::now() + CHANGE;
        loop {
            let answer = self.answer(pod);
            if answer.contains(needle) {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "no answer with {needle:?}; the last:\n{answer}\nlogs:\n{}",
                self.webhook.logs().join("\n")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn wait_ready(&self) -> String {
        let deadline = Instant::now() + CHANGE;
        loop {
            let (status, text) = self.readyz();
            if status == 200 {
                return text;
            }
            assert!(Instant::now() < deadline, "never ready: {status} {text}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The value of one series in the webhook's metrics (0 when absent).
fn metric(world: &World, series: &str) -> f64 {
    let text = world.webhook.metrics();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().expect("a number"))
}

/// A pod with `count` CSI volumes, all naming `class`.
fn pod_with_volumes(class: &str, count: usize) -> Value {
    let volumes: Vec<Value> = (0..count)
        .map(|i| {
            json!({"name": format!("secrets-{i}"), "csi": {"driver": "secrets-store.csi.k8s.io",
                   "readOnly": true, "volumeAttributes": {"secretProviderClass": class}}})
        })
        .collect();
    let mounts: Vec<Value> = (0..count)
        .map(|i| json!({"name": format!("secrets-{i}"), "mountPath": format!("/mnt/s{i}")}))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app"},
        "spec": {"volumes": volumes,
                 "containers": [{"name": "app", "image": "app", "volumeMounts": mounts}]}
    })
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_default()
}

#[test]
fn classes_follow_the_api_server_through_410_and_outages() {
    let (store_class, store_pod) = seed("mypod_parameter_store.yaml");
    let (manager_class, manager_pod) = seed("mypod_secrets_manager.yaml");
    let world = World::start(Mode::Serving, std::slice::from_ref(&store_class));
    world.wait_ready();

    // A class that was there before the webhook started.
    let answer = world.answer(&store_pod);
    assert!(
        answer.contains("secrets-injector-csi-parameter-store"),
        "{answer}"
    );

    // One created a moment before its pod, while the watch has not delivered it: the live GET
    // finds it.
    world.api.hold_watch_events(true);
    let gets = world.api.requests("get");
    world.api.apply(&manager_class);
    let answer = world.answer(&manager_pod);
    assert!(
        answer.contains("secrets-injector-csi-secrets-manager"),
        "{answer}"
    );
    assert_eq!(world.api.requests("get"), gets + 1);
    world.api.hold_watch_events(false);

    // From here GETs find nothing: what the webhook knows comes from the list and the watch.
    world.api.refuse_gets(true);
    let mut changed = store_class.clone();
    changed["spec"]["parameters"]["objects"] = json!(
        "- objectName: /test/parameter\n  objectType: ssmparameter\n  objectAlias: renamed\n"
    );
    world.api.apply(&changed);
    world.wait_for_answer(&store_pod, "objectAlias: renamed");

    world.api.delete(NAMESPACE, "aws-secrets-parameter-store");
    let denied = world.wait_for_answer(&store_pod, "denied: ");
    assert!(
        denied.contains(
            "SecretProviderClass \\\"aws-secrets-parameter-store\\\" does not exist in namespace \\\"team-a\\\""
        ),
        "{denied}"
    );

    // 410 Gone: the watch must list again, and still sees new classes.
    let lists = world.api.requests("list");
    world.api.expire_versions();
    world.api.apply(&class(
        "after-gone",
        "- objectName: /gone\n  objectType: ssmparameter\n",
    ));
    world.wait_for_answer(&pod_naming("after-gone"), "objectName: /gone");
    assert!(world.api.requests("list") > lists);

    // The API server goes away: the classes already read keep working, the failure is logged,
    // and once it is back the watch reconnects and sees what changed.
    world.api.set_mode(Mode::Down);
    assert!(
        world
            .webhook
            .wait_for_log("SecretProviderClass watch failed", CHANGE)
            .is_some()
    );
    let answer = world.answer(&manager_pod);
    assert!(
        answer.contains("secrets-injector-csi-secrets-manager"),
        "{answer}"
    );
    assert_eq!(world.readyz().0, 200);
    world.api.set_mode(Mode::Serving);
    world.api.apply(&class(
        "after-outage",
        "- objectName: /back\n  objectType: ssmparameter\n",
    ));
    world.wait_for_answer(&pod_naming("after-outage"), "objectName: /back");
    assert!(
        !world.webhook.logs().join("\n").contains("example1234"),
        "no value in the logs"
    );
}

#[test]
fn readiness_waits_for_the_first_list_and_crd_or_rbac_problems_are_clear() {
    let world = World::start(Mode::Down, &[]);
    let (status, text) = world.readyz();
    assert_eq!(status, 503);
    assert_eq!(
        text,
        "waiting for the first list of SecretProviderClasses\n"
    );

    // No CRD: ready (other pods are served), pods that need a class are denied saying why.
    world.api.set_mode(Mode::NotInstalled);
    world.wait_ready();
    let denied = world.wait_for_answer(&pod_naming("app"), "denied: ");
    assert!(
        denied.contains("the cluster has no SecretProviderClass resource")
            && denied.contains("the CRD of the Secrets Store CSI driver is not installed"),
        "{denied}"
    );
    assert!(
        world
            .webhook
            .wait_for_log("the SecretProviderClass CRD", CHANGE)
            .is_some()
    );
    let plain = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"},
                       "spec": {"containers": [{"name": "app", "image": "app"}]}});
    assert_eq!(world.review(&plain)["allowed"], true);

    // No RBAC.
    world.api.set_mode(Mode::Forbidden);
    let denied = world.wait_for_answer(&pod_naming("app"), "may not read");
    assert!(
        denied.contains("give its service account get, list and watch on secretproviderclasses"),
        "{denied}"
    );
    assert!(
        world
            .webhook
            .wait_for_log("the webhook may not list SecretProviderClasses", CHANGE)
            .is_some()
    );

    // Fixed: the class is found.
    world.api.set_mode(Mode::Serving);
    world.api.apply(&class(
        "app",
        "- objectName: /fixed\n  objectType: ssmparameter\n",
    ));
    world.wait_for_answer(&pod_naming("app"), "objectName: /fixed");
}

#[test]
fn a_stalled_api_server_costs_one_get_per_name_within_the_budget_and_is_named() {
    let world = World::start(Mode::Serving, &[]);
    world.wait_ready();
    world.api.stall_gets(true);
    // Six volumes naming one class that is not in the cache.
    let pod = pod_with_volumes("ghost", 6);
    let started = Instant::now();
    let denied = world.answer(&pod);
    let took = started.elapsed();
    assert_eq!(
        world.api.gets_of(NAMESPACE, "ghost"),
        1,
        "one GET for the name"
    );
    assert!(denied.starts_with("denied: "), "{denied}");
    assert!(
        denied.contains("the API server did not answer the GET within 2000 ms")
            && denied.contains("whether it exists is not known"),
        "{denied}"
    );
    assert!(!denied.contains("does not exist"), "{denied}");
    // Well under the API server's 10 s (one GET timeout, 2 s, not six).
    eprintln!("answered in {took:?} with the API server stalled");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(
        metric(
            &world,
            "secrets_injector_class_gets_total{result=\"timeout\"}"
        ),
        1.0
    );

    // The failure is remembered: the next review makes no GET and says so.
    let again = world.answer(&pod);
    assert_eq!(world.api.gets_of(NAMESPACE, "ghost"), 1);
    assert!(
        again.contains("did not answer") && again.contains("remembered for 10 s"),
        "{again}"
    );
    assert!(
        metric(
            &world,
            "secrets_injector_class_gets_total{result=\"remembered\"}"
        ) >= 1.0
    );

    // A watch event for the name replaces what was remembered.
    world.api.stall_gets(false);
    world.api.apply(&class(
        "ghost",
        "- objectName: /found\n  objectType: ssmparameter\n",
    ));
    world.wait_for_answer(&pod, "objectName: /found");
    assert_eq!(world.api.gets_of(NAMESPACE, "ghost"), 1);
}

/// A 404 is remembered briefly (2 s): a pod naming a missing class reviewed again at once costs
/// no second GET and gets the same denial; the class's creation, once the watch sees it, ends the
/// memory at once.
#[test]
fn a_missing_class_is_remembered_briefly_and_its_creation_ends_the_memory() {
    let world = World::start(Mode::Serving, &[]);
    world.wait_ready();
    let pod = pod_naming("later");
    let first = world.answer(&pod);
    assert!(first.starts_with("denied: "), "{first}");
    assert_eq!(world.api.gets_of(NAMESPACE, "later"), 1);
    let started = Instant::now();
    let second = world.answer(&pod);
    assert_eq!(second, first, "the same denial");
    // Back to back: within the memory unless the machine stalled this thread for 2 s.
    if started.elapsed() < Duration::from_secs(1) {
        assert_eq!(world.api.gets_of(NAMESPACE, "later"), 1, "remembered");
        assert!(
            metric(
                &world,
                "secrets_injector_class_gets_total{result=\"remembered\"}"
            ) >= 1.0
        );
    }
    world.api.apply(&class(
        "later",
        "- objectName: /later\n  objectType: ssmparameter\n",
    ));
    world.wait_for_answer(&pod, "objectName: /later");
}

#[test]
fn class_names_that_are_not_dns_subdomains_never_reach_the_api_server() {
    let world = World::start(Mode::Serving, &[]);
    world.wait_ready();
    let hostile = "x/../../../other/secretproviderclasses/victim?a=b";
    let denied = world.answer(&pod_with_volumes(hostile, 1));
    assert!(
        denied.contains("volume \\\"secrets-0\\\": SecretProviderClass name")
            && denied.contains("is not valid: a class name is a DNS subdomain (RFC 1123)"),
        "{denied}"
    );
    for name in ["../victim", "Victim", "a?b=c", "a%2fb"] {
        let denied = world.answer(&pod_naming(name));
        assert!(
            denied.contains(
                "annotation secrets-injector.io/secret-provider-class: SecretProviderClass name"
            ) && denied.contains("DNS subdomain"),
            "{name}: {denied}"
        );
    }
    assert_eq!(
        world.api.requests("get"),
        0,
        "{:?}",
        world.api.get_targets()
    );
}

#[test]
fn an_answer_that_is_not_the_class_asked_for_is_not_used() {
    let world = World::start(Mode::Serving, &[]);
    world.wait_ready();
    // What answers for the API server returns another namespace's class, with its role.
    let mut victim = class(
        "app",
        "- objectName: /victim/db\n  objectType: ssmparameter\n",
    );
    victim["metadata"]["namespace"] = json!("other");
    victim["spec"]["parameters"]["assumeRoleArn"] = json!("arn:aws:iam::111122223333:role/victim");
    victim["spec"]["parameters"]["assumeRoleExternalId"] = json!("victim-external-id");
    world.api.answer_gets_with(Some(victim));
    let denied = world.answer(&pod_naming("app"));
    assert_eq!(world.api.gets_of(NAMESPACE, "app"), 1);
    assert!(
        denied.contains("the API server answered with another object"),
        "{denied}"
    );
    assert!(!denied.contains("victim"), "{denied}");
    assert_eq!(
        metric(
            &world,
            "secrets_injector_class_gets_total{result=\"other_object\"}"
        ),
        1.0
    );
}

/// A class of about 1.5 MB: 100,000 empty parameters (valid for the CRD), or a few large values.
fn huge_class(namespace: &str, name: &str, many_keys: bool) -> Value {
    let parameters: serde_json::Map<String, Value> = if many_keys {
        (0..100_000)
            .map(|i| (format!("p{i:07}"), json!("")))
            .collect()
    } else {
        (0..60)
            .map(|i| (format!("p{i}"), json!("v".repeat(25_000))))
            .collect()
    };
    json!({
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"provider": "aws", "parameters": parameters},
    })
}

/// VmHWM (peak resident set) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn huge_classes_are_listed_in_pages_and_kept_as_small_markers() {
    // 15 MB of classes in a namespace no pod of this test uses, and one in the pods' namespace.
    let mut classes: Vec<Value> = (0..9)
        .map(|i| huge_class("elsewhere", &format!("huge-{i}"), i % 3 == 0))
        .collect();
    classes.push(huge_class(NAMESPACE, "big", true));
    classes.push(class(
        "small",
        "- objectName: /small\n  objectType: ssmparameter\n",
    ));
    let world = World::start(Mode::Serving, &classes);
    world.wait_ready();
    assert!(world.api.requests("list") >= 6, "listed in pages of 2");
    assert_eq!(metric(&world, "secrets_injector_class_cache_classes"), 11.0);
    let bytes = metric(&world, "secrets_injector_class_cache_bytes");
    assert!(bytes > 0.0 && bytes < 64.0 * 1024.0, "{bytes}");
    eprintln!(
        "cache: {bytes} bytes for 11 classes (15 MB sent); webhook peak RSS {} KiB",
        peak_rss_kib(world.webhook.pid())
    );

    let denied = world.answer(&pod_naming("big"));
    assert!(
        denied.contains("SecretProviderClass big: spec.parameters is too large: 800000 bytes")
            && denied.contains("over the limit of 131072 bytes (the webhook's --class-max-bytes)"),
        "{denied}"
    );
    let denied = world.answer(&pod_with_volumes("big", 1));
    assert!(denied.contains("too large"), "{denied}");
    assert!(
        world
            .answer(&pod_naming("small"))
            .contains("objectName: /small")
    );
    assert_eq!(
        world.api.requests("get"),
        0,
        "everything came from the cache"
    );
}

#[test]
fn a_class_is_derived_once_however_many_volumes_and_reviews_use_it() {
    // 63 unknown parameter names of 2 KB each: every one a warning, none worth a suggestion.
    let mut parameters: serde_json::Map<String, Value> = (0..63)
        .map(|i| (format!("{i:02}{}", "k".repeat(2046)), json!("")))
        .collect();
    parameters.insert(
        "objects".into(),
        json!("- objectName: /odd\n  objectType: ssmparameter\n"),
    );
    let odd = json!({
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": {"name": "odd", "namespace": NAMESPACE},
        "spec": {"provider": "aws", "parameters": parameters},
    });
    let world = World::start(Mode::Serving, &[odd]);
    world.wait_ready();
    assert_eq!(
        metric(&world, "secrets_injector_class_derivations_total"),
        0.0
    );
    let pod = pod_with_volumes("odd", 12);
    for _ in 0..3 {
        let response = world.review(&pod);
        assert_eq!(response["allowed"], true, "{response}");
        let warnings = response["warnings"].as_array().unwrap();
        assert!(warnings.len() <= 21, "{}", warnings.len());
        assert!(
            warnings
                .iter()
                .all(|w| !w.as_str().unwrap().contains("did you mean")),
            "{warnings:?}"
        );
    }
    assert_eq!(
        metric(&world, "secrets_injector_class_derivations_total"),
        1.0
    );
}

/// The cache holds at most --class-cache-bytes, all classes together: the classes that do not fit
/// are not kept (and counted), and a pod that uses one is still served, by a live GET of it.
#[test]
fn classes_beyond_the_cache_bytes_are_read_by_live_gets() {
    const CLASSES: usize = 11;
    const MAX: f64 = 8192.0;
    let objects = |i: usize| -> String {
        (0..40)
            .map(|j| {
                format!(
                    "- objectName: /class-{i:02}/parameter-{j:02}\n  objectType: ssmparameter\n"
                )
            })
            .collect()
    };
    let classes: Vec<Value> = (0..CLASSES)
        .map(|i| class(&format!("c{i:02}"), &objects(i)))
        .collect();
    let world = World::start_with(Mode::Serving, &classes, &["--class-cache-bytes=8192"]);
    world.wait_ready();
    let bytes = metric(&world, "secrets_injector_class_cache_bytes");
    let held = metric(&world, "secrets_injector_class_cache_classes");
    let left_out = metric(&world, "secrets_injector_class_cache_left_out_total");
    assert!(bytes > 0.0 && bytes <= MAX, "{bytes}");
    assert!(held >= 1.0 && held < CLASSES as f64, "{held}");
    assert_eq!(held + left_out, CLASSES as f64);
    assert!(
        world
            .webhook
            .logs()
            .iter()
            .filter(|line| line.contains("the SecretProviderClass cache is full"))
            .count()
            == 1,
        "one log line for the whole list"
    );
    // Every pod is served with its own class, those left out by one GET each.
    for i in 0..CLASSES {
        let answer = world.answer(&pod_naming(&format!("c{i:02}")));
        assert!(
            answer.contains(&format!("objectName: /class-{i:02}/parameter-39")),
            "c{i:02}: {answer:.300}"
        );
    }
    assert_eq!(world.api.requests("get") as f64, left_out);
}
