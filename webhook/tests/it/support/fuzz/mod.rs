//! What the fuzz targets (fuzz/fuzz_targets/admission_review.rs, pod_annotations.rs) and the
//! property tests of `webhook/tests/it/admission/fuzz.rs` share: a generator of hostile pods (forged
//! init containers and volumes, root and privileged security contexts, annotations that try
//! every escape) and the invariants every answer of `admission::respond` must keep.

#![allow(
    dead_code,
    unused_imports,
    reason = "each including target uses a different part"
)]

#[path = "../../../../../objects/tests/it/fuzz_support.rs"]
pub mod objects;

use secrets_injector_objects::annotations::{
    self, INIT_CONTAINER_NAME, REFRESH_CONTAINER_NAME, VOLUME_NAME,
};
use secrets_injector_webhook::admission::{self, Operation, Request};
use secrets_injector_webhook::admission::{Outcome, Verdict};
use secrets_injector_webhook::mutation::INJECTOR_PATH;
use secrets_injector_webhook::mutation::{Decision, mutate};
use secrets_injector_webhook::mutation::{InjectorUser, MutationConfig};
use secrets_injector_webhook::pod;
use serde_json::{Map, Value, json};

pub use objects::{Bytes, Rng};

/// The image every injected pod must run, whatever it asks for.
pub const IMAGE: &str = "registry.example.com/secrets-injector/injector:1.0.0";
pub const UID: &str = "0f0e0d0c-0b0a-0908-0706-050403020100";

pub fn config(b: &mut Bytes<'_>) -> MutationConfig {
    let mut cfg = MutationConfig::for_tests(IMAGE);
    if b.below(4) != 0 {
        cfg.default_region = Some("eu-west-1".to_owned());
    }
    if b.below(6) == 0 {
        cfg.injector_user = InjectorUser::Unset;
    }
    cfg
}

const ANNOTATION_VALUES: &[(&str, &[&str])] = &[
    (
        annotations::REFRESH_INTERVAL,
        &["5m", "1s", "0s", "25h", "5", "-1m", "1h30m", "--help", ""],
    ),
    (
        annotations::REFRESH_SIGNAL,
        &[
            "SIGHUP app",
            "SIGTERM app",
            "SIGKILL sidecar",
            "SIGSTOP app",
            "SIGHUP /bin/sh",
            "SIGHUP a-process-name-too-long",
            "SIGHUP app --objects=x",
        ],
    ),
    (
        annotations::REFRESH_URL,
        &[
            "http://127.0.0.1:9090/-/reload",
            "http://169.254.169.254/latest/meta-data/",
            "http://evil.example@127.0.0.1/",
            "https://localhost/",
            "http://localhost/\r\nX: y",
        ],
    ),
    (
        annotations::MOUNT_PATH,
        &[
            "/mnt/secrets-store",
            "/",
            "relative",
            "/etc",
            "/mnt/../etc",
            "/mnt/x/",
            "/usr/local/bin",
            "/var/run/secrets/eks.amazonaws.com/serviceaccount",
            "/mnt/\u{0}x",
            "/data",
            "/data/inner",
            "/mnt",
            "//mnt//secrets",
            "/dev/termination-log",
            "/proc/self",
        ],
    ),
    (
        annotations::CONTAINERS,
        &[
            "app",
            "sidecar",
            "app,sidecar",
            "secrets-injector",
            "ghost",
            "",
            " , ",
            "setup",
            "app,secrets-injector",
            "proxy",
        ],
    ),
    (
        annotations::REGION,
        &[
            "us-east-1",
            "eu-west-1",
            "evil.example",
            "US-EAST-1",
            "",
            "us-east-1/../x",
            "localhost:8080",
            "us-east-1.evil.example",
            "169.254.169.254",
        ],
    ),
    (
        annotations::FAILOVER_REGION,
        &["us-west-2", "eu-west-1", "evil.example:443", ""],
    ),
    (
        annotations::PATH_TRANSLATION,
        &["_", "False", "false", "/", "", "ab", "\u{0}", "-", "."],
    ),
    (
        annotations::FILE_PERMISSION,
        &[
            "0644", "0600", "0640", "0400", "0000", "0800", "644", "7777",
        ],
    ),
    (
        annotations::ENV_FILE,
        &[
            "ENV",
            "../env",
            ".env",
            "a/b",
            "",
            "/etc/profile",
            "..",
            "SECRET_USERNAME",
        ],
    ),
    (annotations::INIT_FIRST, &["true", "false", "yes", ""]),
    (
        annotations::INJECTOR_RESOURCES,
        &[
            "{limits: {memory: 128Mi}, requests: {cpu: 50m}}",
            "limits: {memory: 1Ei}",
            "requests: {cpu: -1}",
            "limits: {nvidia.com/gpu: 1}",
            "[",
            "privileged: true",
            "{limits: {cpu: 1m}, requests: {cpu: 2}}",
            "a: &a [x,x,x]\nb: [*a,*a,*a]",
            "",
        ],
    ),
    (annotations::INJECT, &["true", "false", "False", ""]),
    (annotations::STATUS, &["injected", "evil"]),
    ("secrets-injector.io/image", &["evil.example/miner:latest"]),
    ("secrets-injector.io/privileged", &["true"]),
    ("secrets-injector.io/run-as-user", &["0"]),
    ("secrets-injector.io/objets", &["x"]),
];

const ENV: &[(&str, &str)] = &[
    ("AWS_REGION", "us-east-1"),
    ("AWS_REGION", "EVIL"),
    ("AWS_DEFAULT_REGION", "eu-west-1"),
    ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/app"),
    (
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
    ),
    (
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "http://169.170.34.2/v1/credentials",
    ),
    (
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token",
    ),
    ("AWS_ENDPOINT_URL", "http://evil.example"),
    ("AWS_CA_BUNDLE", "/etc/pki/ca.pem"),
    ("AWS_SHARED_CREDENTIALS_FILE", "/data/credentials"),
    ("AWS_X", "/usr/local/bin/injector"),
    ("HTTPS_PROXY", "http://proxy:3128"),
    ("no_proxy", "169.254.169.254"),
    ("HOME", "/root"),
    ("LD_PRELOAD", "/data/evil.so"),
    ("PATH", "/data"),
];

const MOUNTS: &[(&str, &str)] = &[
    (
        "aws-iam-token",
        "/var/run/secrets/eks.amazonaws.com/serviceaccount",
    ),
    (
        "eks-pod-identity-token",
        "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount",
    ),
    ("pki", "/etc/pki"),
    ("data", "/data"),
    ("data", "/mnt/secrets-store"),
    ("data", "/mnt"),
    ("bin", "/usr/local/bin"),
    ("bin", "/usr/local/bin/x/.."),
    ("bin", "/usr/local//bin"),
    ("data", "/x/../data"),
    ("secrets-injector", "/x"),
    ("secrets-injector", "/mnt/secrets-store"),
    ("ghost-volume", "/ghost"),
    ("host", "/host"),
];

const VOLUMES: &[&str] = &[
    "aws-iam-token",
    "eks-pod-identity-token",
    "pki",
    "data",
    "bin",
    "host",
    "secrets-injector",
];

fn volume(b: &mut Bytes<'_>, name: &str) -> Value {
    match name {
        "aws-iam-token" => {
            json!({"name": name, "projected": {"sources": [{"serviceAccountToken": {"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}}]}})
        }
        "eks-pod-identity-token" => {
            json!({"name": name, "projected": {"sources": [{"serviceAccountToken": {"audience": "pods.eks.amazonaws.com", "expirationSeconds": 86400, "path": "eks-pod-identity-token"}}]}})
        }
        "host" => json!({"name": name, "hostPath": {"path": "/"}}),
        "secrets-injector" => match b.below(4) {
            0 => json!({"name": name, "hostPath": {"path": "/etc"}}),
            1 => json!({"name": name, "emptyDir": {}}),
            2 => json!({"name": name, "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}),
            _ => json!({"name": name, "persistentVolumeClaim": {"claimName": "stolen"}}),
        },
        _ => json!({"name": name, "emptyDir": {}}),
    }
}

fn security_context(b: &mut Bytes<'_>) -> Option<Value> {
    let mut context = Map::new();
    for (key, values) in [
        ("runAsUser", &[json!(0), json!(1000), json!(65534)][..]),
        ("runAsGroup", &[json!(0), json!(3000)][..]),
        ("runAsNonRoot", &[json!(true), json!(false)][..]),
        ("privileged", &[json!(true)][..]),
        ("allowPrivilegeEscalation", &[json!(true)][..]),
        (
            "capabilities",
            &[json!({"add": ["SYS_ADMIN", "NET_ADMIN"]})][..],
        ),
        ("readOnlyRootFilesystem", &[json!(false)][..]),
    ] {
        if b.below(4) == 0 {
            context.insert(key.to_owned(), b.pick(values).clone());
        }
    }
    (!context.is_empty()).then_some(Value::Object(context))
}

fn container(b: &mut Bytes<'_>, name: &str, tame: bool) -> Value {
    let mut c = Map::new();
    c.insert("name".to_owned(), json!(name));
    c.insert("image".to_owned(), json!("app:1"));
    let env: Vec<Value> = (0..b.below(6))
        .map(|_| {
            let (n, v) = *b.pick(ENV);
            if b.below(6) == 0 {
                json!({"name": n, "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}})
            } else {
                json!({"name": n, "value": v})
            }
        })
        .collect();
    if !env.is_empty() {
        c.insert("env".to_owned(), Value::Array(env));
    }
    let mut mounts: Vec<Value> = Vec::new();
    for _ in 0..b.below(5) {
        let (volume, path) = if tame {
            *b.pick(&MOUNTS[..4])
        } else {
            *b.pick(MOUNTS)
        };
        let mut mount = json!({"name": volume, "mountPath": path});
        if b.flip() {
            mount["readOnly"] = json!(b.flip());
        }
        mounts.push(mount);
    }
    if !mounts.is_empty() {
        c.insert("volumeMounts".to_owned(), Value::Array(mounts));
    }
    if let Some(context) = security_context(b) {
        c.insert("securityContext".to_owned(), context);
    }
    if b.below(8) == 0 {
        c.insert(
            "envFrom".to_owned(),
            json!([{"configMapRef": {"name": "evil-endpoints"}}]),
        );
    }
    Value::Object(c)
}

/// A forged `secrets-injector` init container: what a pod would send to run something else,
/// or the injector as root, under the webhook's name.
fn forged_injector(b: &mut Bytes<'_>) -> Value {
    let mut c = container(b, INIT_CONTAINER_NAME, false);
    let fields = c.as_object_mut().expect("object");
    fields.insert(
        "image".to_owned(),
        json!(*b.pick(&["evil.example/miner:latest", IMAGE])),
    );
    if b.flip() {
        fields.insert(
            "command".to_owned(),
            json!(*b.pick(&[
                &["/bin/sh", "-c", "cat /etc/shadow"][..],
                &[INJECTOR_PATH][..]
            ])),
        );
    }
    fields.insert(
        "securityContext".to_owned(),
        json!({"privileged": true, "runAsUser": 0, "runAsNonRoot": false, "allowPrivilegeEscalation": true, "capabilities": {"add": ["ALL"]}}),
    );
    if b.flip() {
        fields.insert(
            "envFrom".to_owned(),
            json!([{"secretRef": {"name": "aws-keys"}}]),
        );
    }
    if b.flip() {
        fields.insert(
            "volumeDevices".to_owned(),
            json!([{"name": "data", "devicePath": "/dev/xvda"}]),
        );
    }
    if b.flip() {
        fields.insert("workingDir".to_owned(), json!("/host"));
        fields.insert("stdin".to_owned(), json!(true));
    }
    c
}

/// A hostile pod: annotations from [`ANNOTATION_VALUES`] and a generated objects list, containers
/// with AWS env and mounts, sometimes a forged init container and volume of the webhook's name.
pub fn pod(b: &mut Bytes<'_>) -> Value {
    // Half the pods are plausible (so the injected result gets checked), half anything goes.
    let tame = b.flip();
    let mut annotations = Map::new();
    if b.below(8) != 0 {
        annotations.insert(
            annotations::OBJECTS.to_owned(),
            json!(objects::objects_annotation_with(b, tame)),
        );
    }
    for (name, values) in ANNOTATION_VALUES {
        if b.below(if tame { 12 } else { 6 }) == 0 {
            let value = if tame { values[0] } else { *b.pick(values) };
            annotations.insert((*name).to_owned(), json!(value));
        }
    }
    let names = ["sidecar", "proxy", "app", INIT_CONTAINER_NAME];
    let mut containers = vec![container(b, "app", tame)];
    for _ in 0..b.below(3) {
        let name = if tame {
            *b.pick(&names[..2])
        } else {
            *b.pick(&names)
        };
        containers.push(container(b, name, tame));
    }
    let mut init: Vec<Value> = Vec::new();
    for _ in 0..b.below(3) {
        match b.below(4) {
            0 => init.push(forged_injector(b)),
            3 => {
                let mut forged = forged_injector(b);
                forged["name"] = json!(REFRESH_CONTAINER_NAME);
                forged["restartPolicy"] = json!("Always");
                init.push(forged);
            }
            1 => {
                let mut sidecar = container(b, "proxy", tame);
                sidecar["restartPolicy"] = json!("Always");
                init.push(sidecar);
            }
            _ => init.push(container(b, "setup", tame)),
        }
    }
    let mut volumes: Vec<Value> = Vec::new();
    for name in VOLUMES {
        if b.below(if tame { 16 } else { 3 }) != 0 {
            volumes.push(volume(b, name));
        }
    }
    let mut spec = Map::new();
    spec.insert("serviceAccountName".to_owned(), json!("app"));
    spec.insert("containers".to_owned(), Value::Array(containers));
    if !init.is_empty() || b.below(8) == 0 {
        spec.insert("initContainers".to_owned(), Value::Array(init));
    }
    if !volumes.is_empty() || b.below(8) == 0 {
        spec.insert("volumes".to_owned(), Value::Array(volumes));
    }
    if let Some(mut context) = security_context(b) {
        if b.flip() {
            context["fsGroup"] = json!(*b.pick(&[0, 2000]));
        }
        spec.insert("securityContext".to_owned(), context);
    }
    if b.below(if tame { 64 } else { 12 }) == 0 {
        spec.insert("os".to_owned(), json!({"name": "windows"}));
    }
    if b.below(12) == 0 {
        spec.insert("hostPID".to_owned(), json!(true));
    }
    if b.below(3) == 0 {
        spec.insert("shareProcessNamespace".to_owned(), json!(b.flip()));
    }
    if b.below(6) == 0 {
        spec.insert(
            "restartPolicy".to_owned(),
            json!(*b.pick(&["Always", "OnFailure", "Never"])),
        );
    }
    // Templates last, so the rest of a pod generated before they existed is unchanged.
    if b.below(if tame { 3 } else { 6 }) == 0 {
        annotations.insert(
            annotations::TEMPLATES.to_owned(),
            json!(objects::templates_annotation_with(b, tame)),
        );
    }
    let mut metadata = json!({"name": "web", "namespace": "apps"});
    if !annotations.is_empty() || b.below(4) == 0 {
        metadata["annotations"] = Value::Object(annotations);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}

/// An AdmissionReview as the API server sends it, for `object` of this kind and operation.
pub fn review(
    object: &Value,
    kind: (&str, &str, &str),
    operation: &str,
    sub_resource: Option<&str>,
) -> Value {
    let (group, version, kind_name) = kind;
    let resource = format!("{}s", kind_name.to_ascii_lowercase());
    let mut request = json!({
        "uid": UID,
        "kind": {"group": group, "version": version, "kind": kind_name},
        "resource": {"group": group, "version": version, "resource": resource},
        "name": "web",
        "namespace": "apps",
        "operation": operation,
        "userInfo": {"username": "system:serviceaccount:apps:deployer"},
        "object": object,
        "dryRun": false
    });
    if let Some(sub) = sub_resource {
        request["subResource"] = json!(sub);
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

/// A generated review: usually a pod being created, sometimes a workload, an update, a
/// subresource or another kind.
pub fn generated_review(b: &mut Bytes<'_>) -> Value {
    let pod = pod(b);
    match b.below(10) {
        0 => {
            let template =
                json!({"metadata": pod["metadata"].clone(), "spec": pod["spec"].clone()});
            let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template}});
            review(
                &deployment,
                ("apps", "v1", "Deployment"),
                operation(b, &["CREATE", "UPDATE", "DELETE"]),
                None,
            )
        }
        1 => {
            let template =
                json!({"metadata": pod["metadata"].clone(), "spec": pod["spec"].clone()});
            let cronjob = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
                "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}}});
            review(&cronjob, ("batch", "v1", "CronJob"), "CREATE", None)
        }
        2 => review(
            &pod,
            ("", "v1", "Pod"),
            operation(b, &["UPDATE", "DELETE", "CONNECT"]),
            None,
        ),
        3 => review(
            &pod,
            ("", "v1", "Pod"),
            "CREATE",
            Some(*b.pick(&["ephemeralcontainers", "status", "binding"])),
        ),
        _ => review(&pod, ("", "v1", "Pod"), "CREATE", None),
    }
}

fn operation(b: &mut Bytes<'_>, operations: &[&'static str]) -> &'static str {
    operations[b.below(operations.len())]
}

/// Runs one review and checks every invariant of the answer. Panics when one breaks.
pub fn check_review(review_json: &Value, cfg: &MutationConfig) -> Outcome {
    // In the API server's field order, so a pod being created is read in the review's own pass.
    let body = secrets_injector_e2e::admission::body(review_json);
    let request = admission::parse(&body)
        .unwrap_or_else(|reason| panic!("a generated review is refused: {reason}"));
    check_request(&request, review_json.pointer("/request/object"), cfg)
}

/// The invariants of one answer to `request` (whose object, as JSON, is `object`).
pub fn check_request(
    request: &Request<'_>,
    object: Option<&Value>,
    cfg: &MutationConfig,
) -> Outcome {
    let outcome = admission::respond(request, cfg);
    let response = &outcome.response;
    same_as_the_whole_pod(request, object, &outcome, cfg);
    assert_eq!(
        response.uid, request.uid,
        "the answer must carry the request's uid"
    );
    let rendered: Value =
        serde_json::from_slice(&outcome.response.to_review_json()).expect("review answer is JSON");
    assert_eq!(rendered["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(rendered["kind"], "AdmissionReview");
    if !response.allowed {
        assert_eq!(outcome.verdict, Verdict::Denied);
        let denial = response.denial.as_ref().expect("a denial has a status");
        assert_eq!(denial.code, 400, "denials are 400");
        assert_eq!(rendered["response"]["status"]["code"], 400);
        let message = &denial.message;
        assert!(!message.is_empty(), "a denial says why");
        assert!(
            !message.contains('\n'),
            "denials are one line: {message:.300}"
        );
        assert!(response.patch.is_none(), "a denial carries no patch");
        assert!(
            message.len() <= objects::MAX_MESSAGE_BYTES,
            "a denial of {} bytes cannot be read in kubectl",
            message.len()
        );
        return outcome;
    }
    let pod_create = request.creates_pod();
    let Some(patch) = &response.patch else {
        return outcome;
    };
    assert!(
        pod_create,
        "only pods being created are patched, not a {} {:?}",
        request.kind.kind, request.operation
    );
    // No object as sent only when the body nests past serde_json's limit elsewhere (`fuzz_raw`):
    // the answer's other invariants are checked, the patch cannot be applied here.
    let Some(object) = object else {
        return outcome;
    };
    let patch: json_patch::Patch = serde_json::from_slice(patch).expect("the patch is a JSONPatch");
    let mut pod = object.clone();
    json_patch::patch(&mut pod, &patch).unwrap_or_else(|e| panic!("the patch does not apply: {e}"));
    check_injected(object, &pod, cfg);
    outcome
}

/// The server reads a pod being created pruned to the fields the mutation looks at: its answer
/// must be the one the whole pod gets.
fn same_as_the_whole_pod(
    request: &Request<'_>,
    object: Option<&Value>,
    outcome: &Outcome,
    cfg: &MutationConfig,
) {
    let pod_create = request.creates_pod();
    let Some(object) = object.filter(|_| pod_create) else {
        return;
    };
    let response = &outcome.response;
    match mutate(object, cfg) {
        Decision::Skip => assert_eq!(outcome.verdict, Verdict::Skipped),
        Decision::Deny(message) => {
            assert_eq!(
                response.denial.as_ref().map(|d| d.message.as_str()),
                Some(message.as_str())
            );
        }
        Decision::Patch { patch, warnings } => {
            assert!(response.allowed);
            assert_eq!(response.warnings, warnings);
            let sent: Option<json_patch::Patch> = response
                .patch
                .as_deref()
                .map(|bytes| serde_json::from_slice(bytes).expect("the patch is a JSONPatch"));
            assert_eq!(sent.unwrap_or_default(), patch);
        }
    }
}

fn list<'a>(pod: &'a Value, key: &str) -> &'a [Value] {
    pod["spec"][key].as_array().map_or(&[], Vec::as_slice)
}

fn name_of(v: &Value) -> &str {
    v["name"].as_str().unwrap_or("")
}

fn path_holds(dir: &str, path: &str) -> bool {
    let (dir, path) = (normal(dir), normal(path));
    path == dir || dir.is_empty() || path.starts_with(&format!("{dir}/"))
}

/// Whether the pod, as sent, is one the API server would have accepted in the respects the
/// mutation must preserve: unique names, mounts of existing volumes, one mount per path.
pub fn structurally_valid(pod: &Value) -> bool {
    let containers: Vec<&Value> = list(pod, "initContainers")
        .iter()
        .chain(list(pod, "containers"))
        .collect();
    let mut names: Vec<&str> = containers.iter().map(|c| name_of(c)).collect();
    names.sort_unstable();
    let unique_containers = names.windows(2).all(|w| w[0] != w[1]);
    let mut volumes: Vec<&str> = list(pod, "volumes").iter().map(name_of).collect();
    volumes.sort_unstable();
    let unique_volumes = volumes.windows(2).all(|w| w[0] != w[1]);
    let mounts_ok = containers.iter().all(|c| {
        let mounts = c["volumeMounts"].as_array().map_or(&[][..], Vec::as_slice);
        let mut paths: Vec<String> = mounts
            .iter()
            .map(|m| normal(m["mountPath"].as_str().unwrap_or("")))
            .collect();
        paths.sort();
        mounts.iter().all(|m| volumes.contains(&name_of(m)))
            && paths.windows(2).all(|w| w[0] != w[1])
    });
    unique_containers && unique_volumes && mounts_ok
}

/// The pod's own containers (not a forged injector or refresh sidecar).
fn app_containers(pod: &Value) -> impl Iterator<Item = &Value> {
    list(pod, "containers")
        .iter()
        .chain(list(pod, "initContainers"))
        .filter(|c| name_of(c) != INIT_CONTAINER_NAME && name_of(c) != REFRESH_CONTAINER_NAME)
}

/// The path as the runtime resolves it, without its leading '/': empty and `.` parts dropped,
/// `..` removing the part before it.
fn normal(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// What an injected pod guarantees, whatever the pod asked for.
pub fn check_injected(before: &Value, pod: &Value, cfg: &MutationConfig) {
    assert_eq!(
        pod.pointer("/metadata/annotations/secrets-injector.io~1status"),
        Some(&json!("injected"))
    );
    // The webhook's volume: exactly one, in memory, bounded.
    let own_volumes: Vec<&Value> = list(pod, "volumes")
        .iter()
        .filter(|v| name_of(v) == VOLUME_NAME)
        .collect();
    assert_eq!(
        own_volumes.len(),
        1,
        "one {VOLUME_NAME} volume: {own_volumes:?}"
    );
    let volume = own_volumes[0].as_object().expect("volume object");
    assert_eq!(
        volume.len(),
        2,
        "the volume is only an emptyDir: {volume:?}"
    );
    assert_eq!(volume["emptyDir"]["medium"], "Memory", "{volume:?}");
    assert_eq!(
        volume["emptyDir"]["sizeLimit"],
        json!(cfg.volume_size_limit.as_str()),
        "{volume:?}"
    );

    // The init container: exactly one, the webhook's image and command, locked down.
    let injectors: Vec<&Value> = list(pod, "initContainers")
        .iter()
        .filter(|c| name_of(c) == INIT_CONTAINER_NAME)
        .collect();
    // A pod with two containers of one name is refused by the API server whatever the webhook
    // does; for every other pod the webhook's container is the only one of its name.
    assert!(!injectors.is_empty(), "no injector init container");
    if structurally_valid(before) {
        assert_eq!(injectors.len(), 1, "one injector init container");
    }
    let injector = injectors[0];
    assert_eq!(injector["image"], json!(IMAGE), "the pod chose the image");
    assert_eq!(
        injector["command"],
        json!([INJECTOR_PATH]),
        "the pod chose the command"
    );
    for key in [
        "envFrom",
        "volumeDevices",
        "workingDir",
        "stdin",
        "tty",
        "ports",
        "lifecycle",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "restartPolicy",
    ] {
        assert!(
            injector.get(key).is_none(),
            "the injector keeps a forged {key}: {}",
            injector[key]
        );
    }
    let context = &injector["securityContext"];
    assert_eq!(context["runAsNonRoot"], json!(true), "{context}");
    assert_eq!(
        context["allowPrivilegeEscalation"],
        json!(false),
        "{context}"
    );
    assert_eq!(context["readOnlyRootFilesystem"], json!(true), "{context}");
    assert_eq!(
        context["capabilities"],
        json!({"drop": ["ALL"]}),
        "{context}"
    );
    assert_eq!(
        context["seccompProfile"],
        json!({"type": "RuntimeDefault"}),
        "{context}"
    );
    assert!(context.get("privileged").is_none(), "{context}");
    for id in ["runAsUser", "runAsGroup"] {
        if let Some(value) = context.get(id) {
            assert!(
                value.as_i64().is_some_and(|v| v > 0),
                "{id} {value} in {context}"
            );
        }
    }
    if cfg.injector_user != InjectorUser::Unset {
        assert!(
            context.get("runAsUser").is_some(),
            "no user for the injector: {context}"
        );
    }

    // Its env: exactly what the first target container has of AWS_* and proxies.
    let names = pod::named_containers(pod::annotation(before, annotations::CONTAINERS));
    let targets = pod::targets(before, names.as_deref());
    let first = targets.first(before);
    let env = injector["env"].as_array().map_or(&[][..], Vec::as_slice);
    let expected: Vec<&Value> = first
        .and_then(|c| c["env"].as_array())
        .map(|entries| {
            entries
                .iter()
                .filter(|e| pod::is_copied_env(name_of(e)))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        env.iter().collect::<Vec<_>>(),
        expected,
        "the injector's env is not the first target's"
    );
    for entry in env {
        let name = name_of(entry);
        assert!(
            name.starts_with("AWS_")
                || ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"]
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(name)),
            "the injector gets the variable {name}"
        );
        assert!(
            app_containers(before).any(|c| c["env"].as_array().is_some_and(|e| e.contains(entry))),
            "the injector's {entry} comes from no container of the pod"
        );
    }

    // Its mounts: its own volume read-write at the mount path; every other one read-only and
    // taken from the first target container.
    let args: Vec<&str> = injector["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("arg"))
        .collect();
    // Every argument is one `--flag=value` word, so no value can be read as a flag.
    assert!(
        args.iter().all(|a| a.starts_with("--") && a.contains('=')),
        "{args:?}"
    );
    let flag = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
    };
    let mount_path = flag("--mount-path").expect("--mount-path");
    let region = flag("--region").expect("--region");
    assert!(
        secrets_injector_objects::settings::is_valid_region(region),
        "region {region:?}"
    );
    if let Some(failover) = flag("--failover-region") {
        assert!(
            secrets_injector_objects::settings::is_valid_region(failover),
            "failover region {failover:?}"
        );
    }
    assert_eq!(
        Some(
            pod.pointer("/metadata/annotations/secrets-injector.io~1objects")
                .and_then(Value::as_str)
                .expect("objects")
        ),
        flag("--objects"),
        "the objects reach the injector verbatim"
    );
    assert!(
        args.last().is_some_and(|a| a.starts_with("--objects=")),
        "the object list is the init container's last word: {args:?}"
    );
    // Templates reach it verbatim too, and only when they were checked: a pod whose templates
    // are invalid is never injected.
    let templates = pod
        .pointer("/metadata/annotations/secrets-injector.io~1templates")
        .and_then(Value::as_str);
    assert_eq!(
        templates,
        flag("--templates"),
        "the templates reach the injector verbatim"
    );
    if let Some(text) = templates {
        let objects = flag("--objects").unwrap_or_default();
        assert!(
            secrets_injector_objects::template::parse(text, objects.len(), None).is_ok(),
            "injected with invalid templates: {text:.200}"
        );
    }
    assert!(
        mount_path.starts_with('/')
            && mount_path != "/"
            && !mount_path
                .split('/')
                .skip(1)
                .any(|p| p.is_empty() || p == "." || p == ".."),
        "mount path {mount_path:?}"
    );
    let mounts = injector["volumeMounts"]
        .as_array()
        .expect("injector mounts");
    let own: Vec<&Value> = mounts
        .iter()
        .filter(|m| name_of(m) == VOLUME_NAME)
        .collect();
    assert_eq!(own.len(), 1, "the injector mounts its volume once");
    assert_eq!(own[0]["mountPath"], json!(mount_path));
    assert_ne!(own[0]["readOnly"], json!(true));
    // No mount hides the binary: the pod never chooses what runs as the injector.
    for mount in mounts {
        let path = mount["mountPath"].as_str().unwrap_or("");
        assert!(
            !path_holds(path, INJECTOR_PATH),
            "{mount} hides {INJECTOR_PATH}"
        );
    }
    for mount in mounts.iter().filter(|m| name_of(m) != VOLUME_NAME) {
        assert_eq!(
            mount["readOnly"],
            json!(true),
            "the injector writes only to its volume: {mount}"
        );
        assert!(
            app_containers(before).any(|c| c["volumeMounts"].as_array().is_some_and(|ms| ms
                .iter()
                .any(|m| {
                    name_of(m) == name_of(mount)
                        && m["mountPath"] == mount["mountPath"]
                        && m.get("subPath") == mount.get("subPath")
                }))),
            "the injector's mount {mount} comes from no container of the pod"
        );
        assert!(
            !path_holds(mount["mountPath"].as_str().unwrap_or(""), mount_path),
            "{mount} hides the files"
        );
        assert!(
            !path_holds(mount_path, mount["mountPath"].as_str().unwrap_or("")),
            "{mount} is inside the files"
        );
    }

    check_sidecar(before, pod, injector);

    // Only the injector and its sidecar can write the files: every other mount of the volume
    // is read-only.
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        for c in list(pod, key) {
            let own = name_of(c) == INIT_CONTAINER_NAME || name_of(c) == REFRESH_CONTAINER_NAME;
            if key == "initContainers" && own {
                continue;
            }
            for mount in c["volumeMounts"].as_array().map_or(&[][..], Vec::as_slice) {
                if name_of(mount) == VOLUME_NAME {
                    assert_eq!(
                        mount["readOnly"],
                        json!(true),
                        "container {} can write the files: {mount}",
                        name_of(c)
                    );
                }
            }
        }
    }

    // The targets: read-only mounts of the volume at the mount path.
    for at in &targets.found {
        // Found in the pod as sent; the injected pod has one more init container.
        let target_name = pod::container(before, *at)
            .map(pod::name)
            .expect("a target");
        let c = list(pod, at.list.key())
            .iter()
            .find(|c| name_of(c) == target_name)
            .expect("a target stays");
        for mount in c["volumeMounts"].as_array().map_or(&[][..], Vec::as_slice) {
            let added = name_of(mount) == VOLUME_NAME && mount["mountPath"] == json!(mount_path);
            if added {
                assert_eq!(
                    mount["readOnly"],
                    json!(true),
                    "container {} can write the files",
                    name_of(c)
                );
            }
        }
    }
    if structurally_valid(before) {
        assert!(
            structurally_valid(pod),
            "a valid pod became invalid: {}",
            pod["spec"]
        );
    }
}

/// The refresh sidecar: there exactly when the pod asks for a refresh, right after the injector,
/// which it is but for its command (`refresh` added), its extra `--flag=value` arguments, its
/// resources and `restartPolicy: Always`.
fn check_sidecar(before: &Value, pod: &Value, injector: &Value) {
    let init = list(pod, "initContainers");
    let sidecars: Vec<usize> = (0..init.len())
        .filter(|&i| name_of(&init[i]) == REFRESH_CONTAINER_NAME)
        .collect();
    let asks = pod::annotation(pod, annotations::REFRESH_INTERVAL).is_some();
    if !asks {
        assert!(sidecars.is_empty(), "a sidecar the pod does not ask for");
        return;
    }
    assert!(!sidecars.is_empty(), "no refresh sidecar");
    // As for the injector: a pod with two containers of one name is refused by the API server.
    if structurally_valid(before) {
        assert_eq!(sidecars.len(), 1, "one refresh sidecar");
    }
    let sidecar = &init[sidecars[0]];
    assert_eq!(
        name_of(&init[sidecars[0] - 1]),
        INIT_CONTAINER_NAME,
        "the sidecar is right after the injector"
    );
    assert_eq!(sidecar["image"], json!(IMAGE), "the pod chose the image");
    assert_eq!(sidecar["command"], json!([INJECTOR_PATH, "refresh"]));
    assert_eq!(sidecar["restartPolicy"], json!("Always"));
    for key in ["env", "volumeMounts", "securityContext"] {
        assert_eq!(sidecar.get(key), injector.get(key), "the sidecar's {key}");
    }
    let args = sidecar["args"].as_array().expect("sidecar args");
    let injector_args = injector["args"].as_array().expect("args");
    assert_eq!(&args[..injector_args.len()], &injector_args[..]);
    for arg in &args[injector_args.len()..] {
        let arg = arg.as_str().expect("arg");
        assert!(
            ["--interval=", "--signal=", "--url="]
                .iter()
                .any(|flag| arg.starts_with(flag)),
            "{arg:?}"
        );
    }
    let mut keys: Vec<&String> = sidecar.as_object().expect("object").keys().collect();
    keys.retain(|k| !injector.as_object().expect("object").contains_key(*k));
    assert_eq!(keys, ["restartPolicy"], "the sidecar keeps a forged field");
}

/// The structured fuzz target: a generated review under a generated configuration.
pub fn fuzz_structured(data: &[u8]) {
    let mut b = Bytes::new(data);
    let cfg = config(&mut b);
    let review = generated_review(&mut b);
    check_review(&review, &cfg);
}

/// The raw fuzz target: any bytes as a request body. Whatever parses is answered with the
/// invariants kept; the rest is what the server answers 400 to.
pub fn fuzz_raw(data: &[u8]) {
    // Not timed: the fuzzer's own -timeout catches a slow input, and a test on a loaded machine
    // would fail for the machine's sake.
    let parsed = admission::parse(data);
    match parsed {
        Ok(request) => {
            // The object as sent (the request may hold it pruned). A body nested past
            // serde_json's recursion limit in a field the review skips (iteratively) parses as a
            // review but not as a `Value`: its answer is checked without the object.
            let body: Option<Value> = match serde_json::from_slice(data) {
                Ok(body) => Some(body),
                Err(e) if e.to_string().starts_with("recursion limit exceeded") => None,
                Err(e) => panic!("a parsed body is not JSON: {e}"),
            };
            let object = body
                .as_ref()
                .and_then(|body| body.pointer("/request/object"))
                .filter(|o| !o.is_null());
            let cfg = MutationConfig {
                default_region: Some("eu-west-1".to_owned()),
                ..MutationConfig::for_tests(IMAGE)
            };
            check_request(&request, object, &cfg);
        }
        Err(refusal) => {
            let reason = refusal.to_string();
            assert!(
                !reason.is_empty() && reason.len() < 200,
                "reason {reason:?}"
            );
            assert!(!reason.contains('\n'), "reason {reason:?}");
        }
    }
}
