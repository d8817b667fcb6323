//! SecretProviderClasses: the `secret-provider-class` annotation, and `--csi-volumes=rewrite` on
//! the pods users of the Secrets Store CSI driver already have, with every rule of denial and
//! warning. Mutated pods are checked against the API server's rules and kubernetes-validate.

use std::sync::Arc;

use crate::support::mutate::*;
use secrets_injector_webhook::admission::{self, Object};
use secrets_injector_webhook::inject;
use secrets_injector_webhook::mutation::{
    Classes, Context, CsiVolumes, Decision, DocumentClasses, MutationConfig, mutate, mutate_in,
};
use serde_json::{Value, json};

const ONE_OBJECT: &str = "- objectName: /app/db\n  objectType: ssmparameter\n";

/// The webhook's settings with the feature on and these classes.
fn cfg_with(classes: &[Value], csi: CsiVolumes) -> MutationConfig {
    let mut cfg = cfg();
    cfg.secret_provider_classes = true;
    cfg.csi_volumes = csi;
    let (found, problems) = DocumentClasses::from_documents(classes);
    assert!(problems.is_empty(), "{problems:?}");
    cfg.classes = Classes(Arc::new(found));
    cfg
}

fn class(name: &str, parameters: Value) -> Value {
    json!({
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": {"name": name},
        "spec": {"provider": "aws", "parameters": parameters},
    })
}

fn pod_naming(class: &str) -> Value {
    let mut pod = fixture("minimal-pod.yaml");
    pod["metadata"]["annotations"] = json!({"secrets-injector.io/secret-provider-class": class});
    pod
}

/// One of the two manifests users of the CSI driver already have (tests/csi-driver, as the
/// seeds wrote them): (class, pod).
fn seed(name: &str) -> (Value, Value) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/csi-driver")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let documents: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    (documents[0].clone(), documents[1].clone())
}

fn args(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_annotation_takes_objects_and_settings_from_the_class() {
    let cfg = cfg_with(
        &[class(
            "app",
            json!({"objects": ONE_OBJECT, "region": "eu-west-1", "failoverRegion": "eu-central-1",
                   "pathTranslation": "-", "usePodIdentity": "true", "preferredAddressType": "ipv4"}),
        )],
        CsiVolumes::Ignore,
    );
    let pod = pod_naming("app");
    let (out, warnings) = mutated(&pod, &cfg);
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        args(injector(&out)),
        [
            "--mount-path=/mnt/secrets-store",
            "--region=eu-west-1",
            "--failover-region=eu-central-1",
            "--path-translation=-",
            &format!("--objects={ONE_OBJECT}"),
        ]
    );
    assert_eq!(
        out["metadata"]["annotations"]["secrets-injector.io/status"],
        "injected"
    );
    assert_converged(&out, &cfg);
    validate(&[("class-annotation", &out)]);
}

#[test]
fn the_annotation_needs_the_feature_and_a_usable_class() {
    let pod = pod_naming("app");
    // Feature off.
    assert_denied_with(
        &pod,
        &cfg(),
        &[
            "annotation secrets-injector.io/secret-provider-class: this webhook does not read SecretProviderClasses",
            "--secret-provider-classes",
            "components/secret-provider-classes",
        ],
    );
    // Missing in the namespace.
    let cfg = cfg_with(&[], CsiVolumes::Ignore);
    assert_denied_with(
        &pod,
        &cfg,
        &["SecretProviderClass \"app\" does not exist in namespace \"default\"; create it"],
    );
    // Another provider; secretObjects.
    let mut azure = class("app", json!({"objects": ONE_OBJECT}));
    azure["spec"]["provider"] = json!("azure");
    assert_denied_with(
        &pod,
        &cfg_with(&[azure], CsiVolumes::Ignore),
        &["SecretProviderClass app cannot be used: its spec.provider is \"azure\", not \"aws\""],
    );
    let mut syncing = class("app", json!({"objects": ONE_OBJECT}));
    syncing["spec"]["secretObjects"] = json!([{"secretName": "db", "type": "Opaque"}]);
    assert_denied_with(
        &pod,
        &cfg_with(&[syncing], CsiVolumes::Ignore),
        &[
            "SecretProviderClass app cannot be used",
            "never writes Secrets",
        ],
    );
    // Both the class and the objects annotation.
    let mut both = pod.clone();
    annotate(&mut both, &[("secrets-injector.io/objects", ONE_OBJECT)]);
    assert_denied_with(
        &both,
        &cfg_with(
            &[class("app", json!({"objects": ONE_OBJECT}))],
            CsiVolumes::Ignore,
        ),
        &["are both set; a pod takes its objects from one of them"],
    );
    // Opted out: nothing is looked up.
    let mut opted_out = pod.clone();
    annotate(&mut opted_out, &[("secrets-injector.io/inject", "false")]);
    assert_eq!(
        mutate(&opted_out, &crate::support::mutate::cfg()),
        Decision::Skip
    );
}

#[test]
fn a_bad_class_is_denied_naming_the_class_and_field() {
    for (parameters, expected) in [
        (
            json!({"objects": "- objectName: /a\n  objectType: nope\n"}),
            "SecretProviderClass app: spec.parameters.objects: objects[0] (objectName \"/a\")",
        ),
        (
            json!({"objects": "- [unclosed"}),
            "SecretProviderClass app: spec.parameters.objects is not valid YAML",
        ),
        (
            json!({"region": "eu-west-1"}),
            "spec.parameters.objects is missing",
        ),
        (
            json!({"objects": ONE_OBJECT, "region": "Europe"}),
            "spec.parameters.region: \"Europe\" is not a region name",
        ),
        (
            json!({"objects": ONE_OBJECT, "assumeRoleArn": "arn:aws:iam::111122223333:role/reader",
                   "assumeRoleDurationSeconds": "7200"}),
            "from 900 to 3600",
        ),
    ] {
        let cfg = cfg_with(&[class("app", parameters.clone())], CsiVolumes::Ignore);
        let message = denial(&pod_naming("app"), &cfg);
        assert!(message.contains(expected), "{parameters}: {message}");
        assert!(
            !message.contains("annotation secrets-injector.io/objects"),
            "{message}"
        );
    }
}

#[test]
fn unknown_parameters_and_fields_are_warnings_naming_the_class() {
    let objects = "- objectName: /app/db\n  objectType: ssmparameter\n  objectAlais: db\n";
    let cfg = cfg_with(
        &[class(
            "app",
            json!({"objects": objects, "regoin": "eu-west-1"}),
        )],
        CsiVolumes::Ignore,
    );
    let (_, warnings) = mutated(&pod_naming("app"), &cfg);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("unknown parameter \"regoin\" ignored; did you mean region?"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].starts_with("SecretProviderClass app: spec.parameters.objects: objects[0]"),
        "{warnings:?}"
    );
}

#[test]
fn the_seeds_csi_pods_are_rewritten() {
    let mut out_pods = Vec::new();
    for (file, volume, class_name) in [
        (
            "mypod_parameter_store.yaml",
            "parameter-store",
            "aws-secrets-parameter-store",
        ),
        (
            "mypod_secrets_manager.yaml",
            "secrets-manager",
            "aws-secrets-secrets-manager",
        ),
    ] {
        let (class, pod) = seed(file);
        let cfg = cfg_with(std::slice::from_ref(&class), CsiVolumes::Rewrite);
        let (out, warnings) = mutated(&pod, &cfg);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": volume, "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}])
        );
        let app = named(&out, "containers", "nginx");
        assert_eq!(
            app["volumeMounts"],
            json!([{"mountPath": "/var/secrets", "name": volume, "readOnly": true}])
        );
        let init = list(&out, "initContainers");
        assert_eq!(init.len(), 1, "{init:?}");
        let injector = &init[0];
        assert_eq!(injector["name"], format!("secrets-injector-csi-{volume}"));
        assert_eq!(injector["image"], IMAGE);
        assert_eq!(injector["command"], json!(["/usr/local/bin/injector"]));
        let objects = class["spec"]["parameters"]["objects"].as_str().unwrap();
        assert_eq!(
            args(injector),
            [
                "--mount-path=/mnt/secrets-store",
                "--region=us-west-2",
                &format!("--objects={objects}"),
            ],
            "{class_name}"
        );
        assert_eq!(
            injector["volumeMounts"],
            json!([{"name": volume, "mountPath": "/mnt/secrets-store"}])
        );
        assert_eq!(injector["securityContext"]["runAsNonRoot"], true);
        assert!(injector["resources"]["limits"]["memory"].is_string());
        assert_eq!(
            out["metadata"]["annotations"]["secrets-injector.io/status"],
            "injected"
        );
        // Rewritten, the pod has no CSI volume left: a re-invocation leaves it as it is.
        assert_converged(&out, &cfg);
        out_pods.push((volume, out));
    }
    let pods: Vec<(&str, &Value)> = out_pods.iter().map(|(n, p)| (*n, p)).collect();
    validate(&pods);
}

#[test]
fn csi_volumes_are_left_alone_without_rewrite() {
    let (class, pod) = seed("mypod_parameter_store.yaml");
    let cfg = cfg_with(std::slice::from_ref(&class), CsiVolumes::Ignore);
    assert_eq!(mutate(&pod, &cfg), Decision::Skip);
    let mut rewrite = cfg_with(&[class], CsiVolumes::Rewrite);
    assert!(matches!(mutate(&pod, &rewrite), Decision::Patch { .. }));
    // Opted out.
    let mut opted_out = pod.clone();
    annotate(&mut opted_out, &[("secrets-injector.io/inject", "false")]);
    assert_eq!(mutate(&opted_out, &rewrite), Decision::Skip);
    // Another driver's CSI volume is not looked at.
    let mut other = pod.clone();
    other["spec"]["volumes"][0]["csi"]["driver"] = json!("ebs.csi.aws.com");
    rewrite.classes = Classes::default();
    assert_eq!(mutate(&other, &rewrite), Decision::Skip);
}

#[test]
fn csi_classes_of_other_providers_are_left_to_the_driver_with_a_warning() {
    let (mut class, pod) = seed("mypod_parameter_store.yaml");
    class["spec"]["provider"] = json!("vault");
    let cfg = cfg_with(std::slice::from_ref(&class), CsiVolumes::Rewrite);
    let (patch, warnings) = patch_of(&pod, &cfg);
    assert!(patch.0.is_empty(), "{patch:?}");
    assert_eq!(warnings.len(), 1);
    assert!(
        warnings[0].starts_with(
            "volume \"parameter-store\" (CSI, SecretProviderClass \"aws-secrets-parameter-store\"): left to the CSI driver: its spec.provider is \"vault\""
        ),
        "{warnings:?}"
    );
    class["spec"]["provider"] = json!("aws");
    class["spec"]["secretObjects"] = json!([{"secretName": "s", "type": "Opaque"}]);
    let cfg = cfg_with(&[class], CsiVolumes::Rewrite);
    let (patch, warnings) = patch_of(&pod, &cfg);
    assert!(patch.0.is_empty());
    assert!(warnings[0].contains("never writes Secrets"), "{warnings:?}");
}

#[test]
fn a_missing_csi_class_denies_a_pod_and_warns_on_a_template() {
    let (_, pod) = seed("mypod_secrets_manager.yaml");
    let cfg = cfg_with(&[], CsiVolumes::Rewrite);
    let message = denial(&pod, &cfg);
    assert_eq!(
        message,
        "volume \"secrets-manager\" (CSI, SecretProviderClass \"aws-secrets-secrets-manager\"): \
         SecretProviderClass \"aws-secrets-secrets-manager\" does not exist in namespace \
         \"default\"; create it there (before the pod), or fix the name"
    );
    let ctx = Context {
        namespace: Some("team"),
        template: true,
    };
    match mutate_in(&pod, &ctx, &cfg) {
        Decision::Patch { patch, warnings } => {
            assert!(patch.0.is_empty());
            assert!(
                warnings[0].contains("does not exist in namespace \"team\"")
                    && warnings[0]
                        .ends_with("pods of this template will be denied until it exists"),
                "{warnings:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A bad AWS class is a denial for a template too.
    let bad = class("aws-secrets-secrets-manager", json!({"objects": "{}"}));
    let cfg = cfg_with(&[bad], CsiVolumes::Rewrite);
    assert!(
        matches!(mutate_in(&pod, &ctx, &cfg), Decision::Deny(m) if m.starts_with("volume \"secrets-manager\": SecretProviderClass aws-secrets-secrets-manager: spec.parameters.objects is a mapping"))
    );
}

#[test]
fn sub_paths_other_containers_and_long_names_are_kept_right() {
    let long = "v".repeat(63);
    let classes = [class(
        "one",
        json!({"objects": ONE_OBJECT, "region": "eu-west-1"}),
    )];
    let cfg = cfg_with(&classes, CsiVolumes::Rewrite);
    let csi = |volume: &str| {
        json!({"name": volume, "csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": true,
               "volumeAttributes": {"secretProviderClass": "one"}}})
    };
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "annotations": {
            "secrets-injector.io/objects": "- objectName: /app/other\n  objectType: ssmparameter\n"}},
        "spec": {
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
            "volumes": [{"name": "data", "emptyDir": {}}, csi("secrets"), csi(&long)],
            "initContainers": [{"name": "migrate", "image": "m",
                "volumeMounts": [{"name": "secrets", "mountPath": "/s"}]}],
            "containers": [
                {"name": "app", "image": "a",
                 "env": [{"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::111122223333:role/app"}],
                 "volumeMounts": [
                    {"name": "secrets", "mountPath": "/etc/app/db", "subPath": "_app_db"},
                    {"name": &long, "mountPath": "/long", "readOnly": false}]},
                {"name": "other", "image": "o"}
            ]
        }
    });
    let (out, warnings) = mutated(&pod, &cfg);
    assert!(warnings.is_empty(), "{warnings:?}");
    let names: Vec<&str> = list(&out, "initContainers")
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let long_name = names[2];
    assert_eq!(
        names[..2],
        ["secrets-injector", "secrets-injector-csi-secrets"]
    );
    assert!(long_name.starts_with("secrets-injector-csi-vvv") && long_name.len() == 63);
    assert_eq!(names[3], "migrate");
    let app = named(&out, "containers", "app");
    assert_eq!(
        app["volumeMounts"][0],
        json!({"name": "secrets", "mountPath": "/etc/app/db", "subPath": "_app_db", "readOnly": true})
    );
    assert_eq!(app["volumeMounts"][1]["readOnly"], true);
    assert_eq!(
        named(&out, "initContainers", "migrate")["volumeMounts"][0]["readOnly"],
        true
    );
    let csi_injector = named(&out, "initContainers", "secrets-injector-csi-secrets");
    assert_eq!(csi_injector["securityContext"]["runAsUser"], 1000);
    assert_eq!(
        csi_injector["env"],
        json!([{"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::111122223333:role/app"}])
    );
    assert!(args(csi_injector).contains(&"--region=eu-west-1".to_owned()));
    assert_eq!(out["spec"]["volumes"][1]["emptyDir"]["medium"], "Memory");
    assert_eq!(
        out["spec"]["volumes"][0],
        json!({"name": "data", "emptyDir": {}})
    );
    assert_converged(&out, &cfg);
    validate(&[("csi-mixed", &out)]);

    // A regular container may not take the name.
    let mut clash = pod.clone();
    clash["spec"]["containers"][1]["name"] = json!("secrets-injector-csi-secrets");
    let message = denial(&clash, &cfg);
    assert!(
        message.contains("container name \"secrets-injector-csi-secrets\" is reserved"),
        "{message}"
    );
}

#[test]
fn a_csi_class_without_a_region_needs_one() {
    let (class, pod) = seed("mypod_parameter_store.yaml");
    let mut cfg = cfg_with(&[class], CsiVolumes::Rewrite);
    cfg.default_region = None;
    let message = denial(&pod, &cfg);
    assert!(
        message.starts_with("volume \"parameter-store\": no region"),
        "{message}"
    );
}

/// The review path reads pods pruned: a CSI pod and a class-annotation pod get the same answer
/// read pruned as read whole.
#[test]
fn pruned_pods_get_the_same_answer() {
    let (class, pod) = seed("mypod_secrets_manager.yaml");
    let cfg = cfg_with(
        &[class, self::class("app", json!({"objects": ONE_OBJECT}))],
        CsiVolumes::Rewrite,
    );
    let mut refreshes = pod.clone();
    annotate(
        &mut refreshes,
        &[
            ("secrets-injector.io/refresh-interval", "5m"),
            ("secrets-injector.io/refresh-url", "http://localhost/reload"),
        ],
    );
    for (pod, is_csi) in [(pod, true), (refreshes, true), (pod_naming("app"), false)] {
        let whole = mutate(&pod, &cfg);
        assert!(matches!(whole, Decision::Patch { .. }), "{whole:?}");
        // In the API server's order: kind and operation before the object.
        let body = format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"1","kind":{{"group":"","version":"v1","kind":"Pod"}},"resource":{{"group":"","version":"v1","resource":"pods"}},"operation":"CREATE","userInfo":{{}},"object":{pod}}}}}"#
        )
        .into_bytes();
        let read = |specs| match admission::parse_with(&body, specs).unwrap().object {
            Some(Object::Pod(pod)) => pod,
            other => panic!("{other:?}"),
        };
        assert_eq!(mutate(&read(true), &cfg), whole);
        // Without the rewrite, a pod that only has a CSI volume is not read further.
        assert_eq!(mutate(&read(false), &cfg) == whole, !is_csi);
    }
}

/// `webhook inject -f` reads the classes of its input: the seed file (class, then pod) prints the
/// pod rewritten, and the class as it was.
#[test]
fn inject_reads_the_classes_of_its_input() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/csi-driver/mypod_secrets_manager.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut rewrite = crate::support::mutate::cfg();
    rewrite.csi_volumes = CsiVolumes::Rewrite;
    let output = inject::run(&text, &rewrite).unwrap();
    let documents: Vec<Value> = serde_saphyr::from_multiple(&output).unwrap();
    let (class, pod) = seed("mypod_secrets_manager.yaml");
    assert_eq!(documents[0], class);
    assert_eq!(
        documents[1]["spec"]["volumes"][0],
        json!({"name": "secrets-manager", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}})
    );
    assert_eq!(
        documents[1]["spec"]["initContainers"][0]["name"],
        "secrets-injector-csi-secrets-manager"
    );
    // Without the flag, the CSI volume stays the driver's.
    let output = inject::run(&text, &crate::support::mutate::cfg()).unwrap();
    let documents: Vec<Value> = serde_saphyr::from_multiple(&output).unwrap();
    assert_eq!(documents[1], pod);
    // A class the pod needs that the input lacks is the admission message.
    let pod_only = text.split("---").nth(1).unwrap();
    let err = inject::run(pod_only, &rewrite).unwrap_err().to_string();
    assert!(
        err.contains("SecretProviderClass \"aws-secrets-secrets-manager\" does not exist"),
        "{err}"
    );
    // A class document that cannot be read is named.
    let nameless =
        "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\nspec: {}\n";
    let err = inject::run(nameless, &rewrite).unwrap_err().to_string();
    assert!(
        err.starts_with("document 1: a SecretProviderClass without a valid metadata.name"),
        "{err}"
    );
}

#[test]
fn windows_pods_and_the_webhooks_volume_names() {
    let (class, pod) = seed("mypod_parameter_store.yaml");
    let cfg = cfg_with(&[class], CsiVolumes::Rewrite);
    let mut windows = pod.clone();
    windows["spec"]["os"] = json!({"name": "windows"});
    let (patch, warnings) = patch_of(&windows, &cfg);
    assert!(patch.0.is_empty());
    assert!(
        warnings[0]
            .ends_with("left to the CSI driver: the pod runs on Windows (spec.os.name: windows)"),
        "{warnings:?}"
    );
    for reserved in ["secrets-injector", "secrets-injector-bin"] {
        let mut named = pod.clone();
        named["spec"]["volumes"][0]["name"] = json!(reserved);
        named["spec"]["containers"][0]["volumeMounts"][0]["name"] = json!(reserved);
        let message = denial(&named, &cfg);
        assert!(
            message.contains(&format!(
                "the volume name \"{reserved}\" is the webhook's own; rename the volume"
            )),
            "{message}"
        );
    }
}

/// A class's role chaining (`assumeRoleArn`, `assumeRoleExternalId`,
/// `assumeRoleDurationSeconds`) becomes the injector's flags, for the annotation and for a
/// rewritten CSI volume alike.
#[test]
fn a_class_role_becomes_the_injectors_flags() {
    let parameters = json!({
        "objects": ONE_OBJECT,
        "assumeRoleArn": "arn:aws:iam::111122223333:role/reader",
        "assumeRoleExternalId": "tenant-42",
        "assumeRoleDurationSeconds": "1800",
    });
    let expected = [
        "--assume-role-arn=arn:aws:iam::111122223333:role/reader",
        "--assume-role-external-id=tenant-42",
        "--assume-role-duration-seconds=1800",
    ];
    let cfg = cfg_with(&[class("app", parameters.clone())], CsiVolumes::Ignore);
    let (out, _) = mutated(&pod_naming("app"), &cfg);
    let words = args(injector(&out));
    for flag in expected {
        assert!(words.iter().any(|w| w == flag), "{flag} in {words:?}");
    }
    assert!(words.last().unwrap().starts_with("--objects="), "{words:?}");

    let cfg = cfg_with(&[class("app", parameters)], CsiVolumes::Rewrite);
    let mut pod = fixture("minimal-pod.yaml");
    pod["spec"]["volumes"] = json!([{"name": "secrets", "csi": {
        "driver": "secrets-store.csi.k8s.io", "readOnly": true,
        "volumeAttributes": {"secretProviderClass": "app"}}}]);
    pod["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "secrets", "mountPath": "/var/secrets", "readOnly": true}]);
    let (out, _) = mutated(&pod, &cfg);
    let init = out["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "secrets-injector-csi-secrets")
        .expect("the CSI volume's init container");
    let words = args(init);
    for flag in expected {
        assert!(words.iter().any(|w| w == flag), "{flag} in {words:?}");
    }
}

const ENV_CONTAINERS: &str = "secrets-injector.io/env-containers";
const SECRETS_ENV: &str = "/secrets-injector/bin/secrets-env";

/// The seeds' parameter-store pod with a command for nginx and `env-containers: nginx`.
fn seed_with_env() -> (Value, Value) {
    let (class, mut pod) = seed("mypod_parameter_store.yaml");
    pod["spec"]["containers"][0]["command"] = json!(["nginx", "-g", "daemon off;"]);
    annotate(&mut pod, &[(ENV_CONTAINERS, "nginx")]);
    (class, pod)
}

fn env_wrapped(dirs: &[&str], own: &[&str]) -> Value {
    let mut command = vec![json!(SECRETS_ENV)];
    for dir in dirs {
        command.extend([json!("--dir"), json!(dir)]);
    }
    command.push(json!("--"));
    command.extend(own.iter().map(|word| json!(word)));
    Value::Array(command)
}

#[test]
fn env_containers_read_every_secrets_volume_in_mount_order() {
    let (class, mut pod) = seed_with_env();
    annotate(&mut pod, &[("secrets-injector.io/objects", ONE_OBJECT)]);
    pod["spec"]["containers"][0]["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "parameter-store", "mountPath": "/etc/one", "subPath": "_test_parameter"}));
    let cfg = cfg_with(&[class], CsiVolumes::Rewrite);
    let (out, warnings) = mutated(&pod, &cfg);
    let nginx = named(&out, "containers", "nginx");
    // The CSI volume is mounted first; the webhook's own mount is added after it.
    assert_eq!(
        nginx["command"],
        env_wrapped(
            &["/var/secrets", "/mnt/secrets-store"],
            &["nginx", "-g", "daemon off;"]
        )
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    for part in [
        "container \"nginx\"",
        "\"parameter-store\" at /etc/one with a subPath",
    ] {
        assert!(warnings[0].contains(part), "{part:?} in {warnings:?}");
    }
    // The webhook's init container copies secrets-env; the CSI one does not.
    assert!(args(injector(&out)).contains(&"--secrets-env-dir=/secrets-injector/bin".to_owned()));
    let csi_init = named(
        &out,
        "initContainers",
        "secrets-injector-csi-parameter-store",
    );
    assert!(
        !args(csi_init)
            .iter()
            .any(|a| a.starts_with("--secrets-env-dir"))
    );
    assert_converged(&out, &cfg);

    // A wrapper written with another `--dir` list is corrected, not nested.
    let mut older = out.clone();
    older["spec"]["containers"][0]["command"] =
        env_wrapped(&["/mnt/secrets-store"], &["nginx", "-g", "daemon off;"]);
    let (again, _) = mutated(&older, &cfg);
    assert_eq!(again, out);
    validate(&[("csi-env-mixed", &out)]);
}

#[test]
fn a_csi_pod_without_objects_gets_env_containers_from_its_csi_init_container() {
    let (class, pod) = seed_with_env();
    let cfg = cfg_with(&[class], CsiVolumes::Rewrite);
    let (out, warnings) = mutated(&pod, &cfg);
    assert!(warnings.is_empty(), "{warnings:?}");
    let nginx = named(&out, "containers", "nginx");
    assert_eq!(
        nginx["command"],
        env_wrapped(&["/var/secrets"], &["nginx", "-g", "daemon off;"])
    );
    assert_eq!(
        nginx["volumeMounts"],
        json!([
            {"mountPath": "/var/secrets", "name": "parameter-store", "readOnly": true},
            {"name": "secrets-injector-bin", "mountPath": "/secrets-injector/bin", "readOnly": true},
        ])
    );
    assert_eq!(
        named(&out, "volumes", "secrets-injector-bin"),
        &json!({"name": "secrets-injector-bin", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}})
    );
    let init = list(&out, "initContainers");
    assert_eq!(init.len(), 1, "{init:?}");
    let csi_args = args(&init[0]);
    assert_eq!(
        csi_args[csi_args.len() - 2],
        "--secrets-env-dir=/secrets-injector/bin"
    );
    assert!(csi_args.last().unwrap().starts_with("--objects="));
    assert_eq!(
        init[0]["volumeMounts"],
        json!([
            {"name": "parameter-store", "mountPath": "/mnt/secrets-store"},
            {"name": "secrets-injector-bin", "mountPath": "/secrets-injector/bin"},
        ])
    );
    // Rewritten, the pod has no CSI volume left: a re-invocation leaves it as it is.
    assert_converged(&out, &cfg);
    validate(&[("csi-env-only", &out)]);
}

#[test]
fn env_containers_rules_hold_on_a_csi_pod_without_objects() {
    let (class, pod) = seed_with_env();
    let cfg = cfg_with(&[class], CsiVolumes::Rewrite);

    let mut no_command = pod.clone();
    no_command["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("command");
    assert_denied_with(&no_command, &cfg, &["container \"nginx\" has no command"]);

    let mut unknown = pod.clone();
    annotate(&mut unknown, &[(ENV_CONTAINERS, "web")]);
    assert_denied_with(&unknown, &cfg, &["the pod has no container \"web\""]);

    // A container that reads the volume only through subPath, or not at all, has no directory.
    let mut sub_path = pod.clone();
    sub_path["spec"]["containers"][0]["volumeMounts"][0]["subPath"] = json!("_test_parameter");
    let mut other = pod.clone();
    other["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "side", "image": "s", "command": ["/side"]}));
    annotate(&mut other, &[(ENV_CONTAINERS, "side")]);
    for (pod, name) in [(&sub_path, "nginx"), (&other, "side")] {
        assert_denied_with(
            pod,
            &cfg,
            &[
                &format!("container \"{name}\" mounts no secrets volume as a directory"),
                "without subPath",
            ],
        );
    }

    // Only the CSI init container may write where secrets-env is copied.
    let mut writable = pod.clone();
    writable["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({
        "name": "side", "image": "s",
        "volumeMounts": [{"name": "secrets-injector-bin", "mountPath": "/opt/bin"}]}));
    assert_denied_with(
        &writable,
        &cfg,
        &["only the injector may write secrets-env"],
    );
}

/// Two CSI volumes (one with a name at the length limit) and the webhook's own volume, the pod
/// asking for a refresh every 30 seconds with a reload URL.
fn csi_pod_that_refreshes() -> (Value, MutationConfig) {
    let classes = [class(
        "one",
        json!({"objects": ONE_OBJECT, "region": "eu-west-1"}),
    )];
    let mut cfg = cfg_with(&classes, CsiVolumes::Rewrite);
    cfg.refresh_min_interval = std::time::Duration::from_secs(1);
    let csi = |volume: &str| {
        json!({"name": volume, "csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": true,
               "volumeAttributes": {"secretProviderClass": "one"}}})
    };
    let long = "v".repeat(63);
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app", "annotations": {
            "secrets-injector.io/objects": "- objectName: /app/other\n  objectType: ssmparameter\n",
            "secrets-injector.io/refresh-interval": "30s",
            "secrets-injector.io/refresh-url": "http://localhost:8080/reload"}},
        "spec": {
            "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
            "volumes": [csi("secrets"), csi(&long)],
            "initContainers": [{"name": "migrate", "image": "m",
                "volumeMounts": [{"name": "secrets", "mountPath": "/s"}]}],
            "containers": [{"name": "app", "image": "a", "volumeMounts": [
                {"name": "secrets", "mountPath": "/etc/app/db", "subPath": "_app_db"},
                {"name": &long, "mountPath": "/long"}]}]
        }
    });
    (pod, cfg)
}

fn init_names(pod: &Value) -> Vec<&str> {
    list(pod, "initContainers")
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

#[test]
fn refresh_interval_gives_each_rewritten_volume_its_own_sidecar() {
    let (pod, cfg) = csi_pod_that_refreshes();
    let (out, warnings) = mutated(&pod, &cfg);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(
            "container \"app\" mounts the volume \"secrets\" at /etc/app/db with subPath"
        ),
        "{warnings:?}"
    );
    let names = init_names(&out);
    assert_eq!(names.len(), 7, "{names:?}");
    assert_eq!(
        names[..4],
        [
            "secrets-injector",
            "secrets-injector-refresh",
            "secrets-injector-csi-secrets",
            "secrets-injector-refresh-secrets"
        ]
    );
    let (long_init, long_sidecar) = (names[4], names[5]);
    assert!(
        long_init.starts_with("secrets-injector-csi-vvv"),
        "{names:?}"
    );
    assert!(
        long_sidecar.starts_with("secrets-injector-refresh-vvv") && long_sidecar.len() == 63,
        "{names:?}"
    );
    assert_eq!(names[6], "migrate");
    let own = named(&out, "initContainers", "secrets-injector-refresh");
    for (init, sidecar) in [
        (
            "secrets-injector-csi-secrets",
            "secrets-injector-refresh-secrets",
        ),
        (long_init, long_sidecar),
    ] {
        let init = named(&out, "initContainers", init).as_object().unwrap();
        let sidecar = named(&out, "initContainers", sidecar).as_object().unwrap();
        for (key, value) in init {
            if !["name", "command", "args", "resources"].contains(&key.as_str()) {
                assert_eq!(sidecar.get(key), Some(value), "{key}");
            }
        }
        assert_eq!(sidecar["restartPolicy"], "Always");
        assert_eq!(
            sidecar["command"],
            json!(["/usr/local/bin/injector", "refresh"])
        );
        let mut expected = args(&Value::Object(init.clone()));
        expected.extend([
            "--interval=30s".to_owned(),
            "--url=http://localhost:8080/reload".to_owned(),
        ]);
        assert_eq!(args(&Value::Object(sidecar.clone())), expected);
        // The refresh flags' resources, as the webhook's own sidecar has them.
        assert_eq!(sidecar["resources"], own["resources"]);
        assert_eq!(sidecar.len(), init.len() + 1, "{sidecar:?}");
    }
    assert_converged(&out, &cfg);
    validate_for(
        &secrets_injector_e2e::validate::KUBERNETES_VERSIONS,
        &[("csi-refresh", &out)],
    );

    // Without the webhook's own volume, the sidecars are the only ones.
    let mut csi_only = pod.clone();
    csi_only["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("secrets-injector.io/objects");
    let (csi_only, _) = mutated(&csi_only, &cfg);
    assert_eq!(init_names(&csi_only)[..2], names[2..4]);
    // Admitted again, its volumes (rewritten before) keep their sidecars.
    assert_converged(&csi_only, &cfg);
    validate_for(
        &secrets_injector_e2e::validate::KUBERNETES_VERSIONS,
        &[("csi-only-refresh", &csi_only)],
    );
}

#[test]
fn csi_sidecars_converge_and_go_when_the_pod_no_longer_refreshes() {
    let (pod, cfg) = csi_pod_that_refreshes();
    let (out, _) = mutated(&pod, &cfg);
    // The pod as mutated, but with its CSI volumes again (as a re-invocation of a pod another
    // webhook gave them back would be).
    let mut again = out.clone();
    again["spec"]["volumes"] = pod["spec"]["volumes"].clone();
    again["spec"]["volumes"]
        .as_array_mut()
        .unwrap()
        .push(out["spec"]["volumes"][2].clone());
    let restored = |pod: &Value| {
        let mut pod = pod.clone();
        pod["spec"]["volumes"] = out["spec"]["volumes"].clone();
        pod
    };
    let (same, _) = mutated(&again, &cfg);
    assert_eq!(restored(&same), out);

    // A forged sidecar is set to the current one, one moved away comes back after its init
    // container, and one for no volume goes.
    let mut forged = again.clone();
    let init = forged["spec"]["initContainers"].as_array_mut().unwrap();
    init[3]["command"] = json!(["sh", "-c", "cat /mnt/secrets-store/*"]);
    init[3]["workingDir"] = json!("/tmp");
    let moved = init.remove(5);
    init.push(moved);
    init.push(json!({"name": "secrets-injector-refresh-nothing", "image": "x"}));
    let (fixed, _) = mutated(&forged, &cfg);
    assert_eq!(restored(&fixed), out);

    // Without refresh-interval, the sidecars go, the webhook's own with them.
    let mut stopped = forged.clone();
    for name in [
        "secrets-injector.io/refresh-interval",
        "secrets-injector.io/refresh-url",
    ] {
        stopped["metadata"]["annotations"]
            .as_object_mut()
            .unwrap()
            .remove(name);
    }
    let (stopped, _) = mutated(&stopped, &cfg);
    assert_eq!(
        init_names(&stopped)[..3],
        [
            "secrets-injector",
            "secrets-injector-csi-secrets",
            init_names(&out)[4]
        ]
    );
    assert!(
        init_names(&stopped)
            .iter()
            .all(|name| !name.starts_with("secrets-injector-refresh")),
        "{:?}",
        init_names(&stopped)
    );
}

#[test]
fn csi_only_pods_are_held_to_the_refresh_rules() {
    let (mut pod, cfg) = csi_pod_that_refreshes();
    pod["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("secrets-injector.io/objects");
    let mut fast = pod.clone();
    annotate(
        &mut fast,
        &[("secrets-injector.io/refresh-interval", "500ms")],
    );
    assert_denied_with(
        &fast,
        &cfg,
        &["annotation secrets-injector.io/refresh-interval"],
    );
    let mut no_interval = pod.clone();
    no_interval["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("secrets-injector.io/refresh-interval");
    assert_denied_with(
        &no_interval,
        &cfg,
        &[
            "annotation secrets-injector.io/refresh-url is set without secrets-injector.io/refresh-interval",
        ],
    );
    let mut signal = pod.clone();
    annotate(
        &mut signal,
        &[("secrets-injector.io/refresh-signal", "SIGHUP app")],
    );
    assert_denied_with(&signal, &cfg, &["spec.shareProcessNamespace: true"]);
    signal["spec"]["shareProcessNamespace"] = json!(true);
    let (out, _) = mutated(&signal, &cfg);
    let sidecar = named(&out, "initContainers", "secrets-injector-refresh-secrets");
    assert!(args(sidecar).contains(&"--signal=SIGHUP app".to_owned()));
    let mut clash = pod.clone();
    clash["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "secrets-injector-refresh-secrets", "image": "x"}));
    assert_denied_with(
        &clash,
        &cfg,
        &["container name \"secrets-injector-refresh-secrets\" is reserved"],
    );
}

/// A pod with only CSI volumes, `env-containers` and `refresh-interval`: the CSI init container
/// copies `secrets-env`; its refresh sidecar neither copies it again nor mounts its volume.
#[test]
fn a_csi_refresh_sidecar_neither_copies_secrets_env_nor_mounts_its_volume() {
    let (class, mut pod) = seed_with_env();
    annotate(&mut pod, &[("secrets-injector.io/refresh-interval", "5m")]);
    let cfg = cfg_with(&[class], CsiVolumes::Rewrite);
    let (out, _) = mutated(&pod, &cfg);
    let init = list(&out, "initContainers");
    let names: Vec<&str> = init.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "secrets-injector-csi-parameter-store",
            "secrets-injector-refresh-parameter-store"
        ]
    );
    let copies = |c: &Value| args(c).iter().any(|a| a.starts_with("--secrets-env-dir="));
    let mounts_bin = |c: &Value| {
        c["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "secrets-injector-bin")
    };
    assert!(copies(&init[0]) && mounts_bin(&init[0]), "{:#}", init[0]);
    assert!(!copies(&init[1]) && !mounts_bin(&init[1]), "{:#}", init[1]);
    validate(&[("csi-env-refresh", &out)]);
}

/// Names a pod gives for a class are checked as the API server checks object names before
/// anything looks them up: a path, a query or `..` in one is a denial naming where it was
/// written, for a template too.
#[test]
fn class_names_that_are_not_dns_subdomains_are_denied_where_they_are_written() {
    let cfg = cfg_with(
        &[class("app", json!({"objects": ONE_OBJECT}))],
        CsiVolumes::Rewrite,
    );
    let hostile = "x/../../../other/secretproviderclasses/victim?a=b";
    assert_denied_with(
        &pod_naming(hostile),
        &cfg,
        &[
            "annotation secrets-injector.io/secret-provider-class: SecretProviderClass name \"x/../../../other/secretproviderclasses/victim?a=b\" is not valid",
            "a DNS subdomain (RFC 1123)",
        ],
    );
    let (_, mut pod) = seed("mypod_secrets_manager.yaml");
    pod["spec"]["volumes"][0]["csi"]["volumeAttributes"]["secretProviderClass"] = json!(hostile);
    for template in [false, true] {
        let ctx = Context {
            namespace: Some("team"),
            template,
        };
        match mutate_in(&pod, &ctx, &cfg) {
            Decision::Deny(message) => assert!(
                message.starts_with("volume \"secrets-manager\": SecretProviderClass name \"x/../")
                    && message.contains("DNS subdomain"),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
    }
}

/// A source that counts how often it is asked, and gives one class whose derivation is counted.
struct Counting {
    class: Arc<secrets_injector_webhook::mutation::ResolvedClass>,
    asked: std::sync::atomic::AtomicUsize,
}

impl secrets_injector_webhook::mutation::ClassSource for Counting {
    fn class(&self, _namespace: &str, _name: &str) -> secrets_injector_webhook::mutation::Lookup {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        secrets_injector_webhook::mutation::Lookup::Found(Arc::clone(&self.class))
    }
}

#[test]
fn a_class_named_by_many_volumes_is_derived_once() {
    let document = class(
        "shared",
        json!({"objects": ONE_OBJECT, "regoin": "eu-west-1", "region": "eu-west-1"}),
    );
    let derivations = prometheus_client::metrics::counter::Counter::<u64>::default();
    let resolved = secrets_injector_webhook::mutation::ResolvedClass::new(
        secrets_injector_objects::class::Class::read(&document).unwrap(),
    )
    .counted(derivations.clone());
    let source = Arc::new(Counting {
        class: Arc::new(resolved),
        asked: Default::default(),
    });
    let mut cfg = cfg();
    cfg.csi_volumes = CsiVolumes::Rewrite;
    cfg.classes = Classes(source.clone());
    let volumes: Vec<Value> = (0..8)
        .map(|i| {
            json!({"name": format!("s{i}"), "csi": {"driver": "secrets-store.csi.k8s.io",
                        "volumeAttributes": {"secretProviderClass": "shared"}}})
        })
        .collect();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app"},
                     "spec": {"volumes": volumes, "containers": [{"name": "app", "image": "a"}]}});
    for _ in 0..2 {
        let (out, warnings) = mutated(&pod, &cfg);
        assert_eq!(list(&out, "initContainers").len(), 8);
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("\"regoin\" ignored; did you mean region?")),
            "{warnings:?}"
        );
    }
    // Asked once per review (not once per volume), derived once in all.
    assert_eq!(source.asked.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(derivations.get(), 1);
}

/// An init container of the pod's own whose name has the CSI prefix, for no volume the webhook
/// rewrites, is the pod's (only what the edit matched is the webhook's): its mount of a rewritten
/// volume is made read-only like any other, and it keeps its place after the webhook's.
#[test]
fn a_pod_init_container_with_the_csi_prefix_is_the_pods_own() {
    let classes = [class(
        "one",
        json!({"objects": ONE_OBJECT, "region": "eu-west-1"}),
    )];
    let cfg = cfg_with(&classes, CsiVolumes::Rewrite);
    let mount = json!([{"name": "secrets", "mountPath": "/s"}]);
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "app"},
        "spec": {
            "volumes": [{"name": "secrets", "csi": {"driver": "secrets-store.csi.k8s.io",
                "readOnly": true, "volumeAttributes": {"secretProviderClass": "one"}}}],
            "initContainers": [{"name": "secrets-injector-csi-tools", "image": "tools",
                "volumeMounts": mount}],
            "containers": [{"name": "app", "image": "a", "volumeMounts": mount}]
        }
    });
    let (out, _) = mutated(&pod, &cfg);
    assert_eq!(
        init_names(&out),
        ["secrets-injector-csi-secrets", "secrets-injector-csi-tools"]
    );
    for (key, name) in [
        ("initContainers", "secrets-injector-csi-tools"),
        ("containers", "app"),
    ] {
        assert_eq!(
            named(&out, key, name)["volumeMounts"],
            json!([{"name": "secrets", "mountPath": "/s", "readOnly": true}]),
            "{name}"
        );
    }
    assert_converged(&out, &cfg);
    validate(&[("csi-prefix-own", &out)]);
}
