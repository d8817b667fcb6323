//! Real pod manifests, as the API server sends them, mutated: what the webhook adds, checked
//! field by field, against the API server's rules and kubernetes-validate.

use crate::support::mutate::*;
use secrets_injector_objects::{PathTranslation, Settings};
use serde_json::{Value, json};

const OBJECTS: &str = "secrets-injector.io/objects";

fn args_of(pod: &Value) -> Vec<String> {
    injector(pod)["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

fn env_names(container: &Value) -> Vec<&str> {
    container["env"]
        .as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect()
}

#[test]
fn eks_irsa_pod() {
    let pod = fixture("eks-irsa-pod.json");
    let (out, warnings) = mutated(&pod, &cfg());
    assert!(warnings.is_empty(), "{warnings:?}");

    let objects = pod["metadata"]["annotations"][OBJECTS].as_str().unwrap();
    let init = injector(&out);
    assert_eq!(out["spec"]["initContainers"][0]["name"], "secrets-injector");
    assert_eq!(init["image"], IMAGE);
    assert_eq!(init["command"], json!(["/usr/local/bin/injector"]));
    assert_eq!(
        args_of(&out),
        [
            "--mount-path=/mnt/secrets-store".to_owned(),
            "--region=eu-west-1".to_owned(),
            "--env-file=env".to_owned(),
            format!("--objects={objects}")
        ]
    );
    assert_eq!(
        init["env"],
        json!([
            {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
            {"name": "AWS_DEFAULT_REGION", "value": "eu-west-1"},
            {"name": "AWS_REGION", "value": "eu-west-1"},
            {"name": "AWS_ROLE_ARN", "value": "arn:aws:iam::123456789012:role/shop-web"},
            {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}
        ])
    );
    assert_eq!(
        init["volumeMounts"],
        json!([
            {"name": "secrets-injector", "mountPath": "/mnt/secrets-store"},
            {"name": "aws-iam-token", "readOnly": true, "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount"}
        ])
    );
    assert_eq!(
        init["securityContext"],
        json!({
            "runAsNonRoot": true,
            "runAsUser": 10001,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}
        })
    );
    assert_eq!(
        init["resources"],
        json!({"limits": {"cpu": "200m", "memory": "64Mi"}, "requests": {"cpu": "50m", "memory": "32Mi"}})
    );
    assert_eq!(init["terminationMessagePolicy"], "FallbackToLogsOnError");
    assert!(init.get("imagePullPolicy").is_none());

    assert_eq!(
        named(&out, "volumes", "secrets-injector"),
        &json!({"name": "secrets-injector", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}})
    );
    let web = named(&out, "containers", "web");
    assert_eq!(
        own_mount(web),
        Some(
            &json!({"name": "secrets-injector", "mountPath": "/mnt/secrets-store", "readOnly": true})
        )
    );
    // The app's own mounts and env are untouched.
    assert_eq!(web["volumeMounts"].as_array().unwrap().len(), 3);
    assert_eq!(web["env"], pod["spec"]["containers"][0]["env"]);
    assert_eq!(
        out["metadata"]["annotations"]["secrets-injector.io/status"],
        "injected"
    );
    // Everything the webhook does not own is as it was.
    let mut restored = out.clone();
    restored["spec"]["initContainers"].take();
    restored["spec"]
        .as_object_mut()
        .unwrap()
        .remove("initContainers");
    restored["spec"]["volumes"].as_array_mut().unwrap().pop();
    restored["spec"]["containers"][0]["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .pop();
    restored["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("secrets-injector.io/status");
    assert_eq!(restored, pod);

    assert_converged(&out, &cfg());
    validate(&[("eks-irsa", &out)]);
}

#[test]
fn the_status_annotation_key_is_escaped_in_the_patch() {
    let pod = fixture("eks-irsa-pod.json");
    let (patch, _) = patch_of(&pod, &cfg());
    let text = serde_json::to_string(&patch).unwrap();
    assert!(
        text.contains(r#""path":"/metadata/annotations/secrets-injector.io~1status""#),
        "{text}"
    );
}

#[test]
fn pod_identity_pod() {
    let pod = fixture("pod-identity-pod.json");
    let (out, warnings) = mutated(&pod, &cfg());
    // The password's own file is 0440, but the secret's whole JSON, password included, is 0644.
    assert_eq!(
        warnings,
        [
            "annotation secrets-injector.io/objects: objects[0] (objectName \"reports/smtp\"): \
             jmesPath entry SMTP_PASSWORD (jmesPath[1]) has filePermission 0440, but the object's \
             own file reports_smtp, which holds the whole value, keeps 0644; give the object \
             filePermission 0440 too"
        ]
    );
    let init = injector(&out);
    assert_eq!(
        env_names(init),
        [
            "AWS_STS_REGIONAL_ENDPOINTS",
            "AWS_DEFAULT_REGION",
            "AWS_REGION",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
        ]
    );
    assert_eq!(
        init["volumeMounts"],
        json!([
            {"name": "secrets-injector", "mountPath": "/run/secrets/app"},
            {"name": "eks-pod-identity-token", "readOnly": true, "mountPath": "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount"}
        ])
    );
    assert_eq!(init["securityContext"]["runAsUser"], 2000);
    assert_eq!(init["securityContext"]["runAsGroup"], 2000);
    assert_eq!(
        &args_of(&out)[..2],
        ["--mount-path=/run/secrets/app", "--region=us-east-2"]
    );
    assert_eq!(
        own_mount(named(&out, "containers", "reports")),
        Some(
            &json!({"name": "secrets-injector", "mountPath": "/run/secrets/app", "readOnly": true})
        )
    );
    assert_converged(&out, &cfg());
    validate(&[("pod-identity", &out)]);
}

#[test]
fn minimal_pod_gets_every_list_created() {
    let pod = fixture("minimal-pod.yaml");
    assert!(pod["spec"].get("initContainers").is_none());
    assert!(pod["spec"].get("volumes").is_none());
    let (out, _) = mutated(&pod, &cfg());
    let init = injector(&out);
    assert!(init.get("env").is_none(), "nothing to copy: {init}");
    assert_eq!(
        init["volumeMounts"],
        json!([{"name": "secrets-injector", "mountPath": "/mnt/secrets-store"}])
    );
    assert_eq!(init["securityContext"]["runAsUser"], 65532);
    assert_eq!(init["securityContext"]["runAsGroup"], 65532);
    // No region on the pod: the webhook's --default-region.
    assert_eq!(args_of(&out)[1], "--region=us-west-2");
    assert_eq!(list(&out, "volumes").len(), 1);
    assert_eq!(
        named(&out, "containers", "app")["volumeMounts"],
        json!([{"name": "secrets-injector", "mountPath": "/mnt/secrets-store", "readOnly": true}])
    );
    assert_converged(&out, &cfg());
    validate(&[("minimal", &out)]);
}

#[test]
fn null_lists_are_replaced() {
    // JSON clients may send `null` for an empty list; the patch must not add into it.
    let mut pod = fixture("minimal-pod.yaml");
    pod["spec"]["initContainers"] = Value::Null;
    pod["spec"]["volumes"] = Value::Null;
    pod["spec"]["containers"][0]["volumeMounts"] = Value::Null;
    let (out, _) = mutated(&pod, &cfg());
    assert_eq!(list(&out, "initContainers").len(), 1);
    assert_eq!(list(&out, "volumes").len(), 1);
    assert_eq!(
        out["spec"]["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_converged(&out, &cfg());
}

#[test]
fn pod_with_init_containers_native_sidecar_and_security_contexts() {
    let pod = fixture("sidecars-pod.yaml");
    let (out, warnings) = mutated(&pod, &cfg());
    assert!(warnings.is_empty(), "{warnings:?}");
    let init_names: Vec<&str> = list(&out, "initContainers")
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        init_names,
        ["secrets-injector", "migrate", "envoy"],
        "init-first by default"
    );
    for (key, name) in [
        ("containers", "api"),
        ("containers", "log-shipper"),
        ("initContainers", "migrate"),
        ("initContainers", "envoy"),
    ] {
        assert_eq!(
            own_mount(named(&out, key, name)),
            Some(
                &json!({"name": "secrets-injector", "mountPath": "/mnt/secrets-store", "readOnly": true})
            ),
            "{name}"
        );
    }
    let init = injector(&out);
    // First target container: api (spec.containers order). Its AWS_REGION is valueFrom: copied
    // as written, not read; the region comes from the annotation.
    assert_eq!(
        init["env"],
        json!([
            {"name": "AWS_REGION", "valueFrom": {"configMapKeyRef": {"name": "aws", "key": "region"}}},
            {"name": "HTTPS_PROXY", "value": "http://egress.payments:3128"},
            {"name": "no_proxy", "value": "169.254.169.254,.svc,.cluster.local"},
            {"name": "AWS_CA_BUNDLE", "value": "/etc/corp-ca/bundle.pem"}
        ])
    );
    assert_eq!(
        init["volumeMounts"],
        json!([
            {"name": "secrets-injector", "mountPath": "/mnt/secrets-store"},
            {"name": "corp-ca", "mountPath": "/etc/corp-ca", "readOnly": true}
        ])
    );
    // The container's own user, the pod's group.
    assert_eq!(init["securityContext"]["runAsUser"], 1001);
    assert_eq!(init["securityContext"]["runAsGroup"], 3000);
    let objects = pod["metadata"]["annotations"][OBJECTS].as_str().unwrap();
    assert_eq!(
        args_of(&out),
        [
            "--mount-path=/mnt/secrets-store".to_owned(),
            "--region=eu-central-1".to_owned(),
            "--failover-region=eu-west-1".to_owned(),
            "--path-translation=False".to_owned(),
            "--file-permission=0640".to_owned(),
            format!("--objects={objects}")
        ]
    );
    // The native sidecar keeps its restartPolicy and its place after the injector.
    assert_eq!(
        named(&out, "initContainers", "envoy")["restartPolicy"],
        "Always"
    );
    assert_converged(&out, &cfg());
    validate(&[("sidecars", &out)]);
}

#[test]
fn init_first_false_appends_the_init_container() {
    let mut pod = fixture("sidecars-pod.yaml");
    annotate(&mut pod, &[("secrets-injector.io/init-first", "false")]);
    let (out, _) = mutated(&pod, &cfg());
    let init_names: Vec<&str> = list(&out, "initContainers")
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(init_names, ["migrate", "envoy", "secrets-injector"]);
    assert_converged(&out, &cfg());
}

#[test]
fn seeds_example_gives_the_four_files() {
    let pod = fixture("seeds-example-pod.yaml");
    let (out, warnings) = mutated(&pod, &cfg());
    assert!(warnings.is_empty(), "{warnings:?}");
    let args = args_of(&out);
    assert_eq!(
        &args[..2],
        ["--mount-path=/mnt/secrets-store", "--region=us-east-1"]
    );
    // The injector parses the same text with the same code: these are the files it writes.
    let objects = args
        .iter()
        .find_map(|a| a.strip_prefix("--objects="))
        .unwrap();
    let plan = secrets_injector_objects::parse(objects, Settings::new("us-east-1")).unwrap();
    assert_eq!(
        plan.settings.path_translation,
        PathTranslation::Replace('_')
    );
    let files: Vec<&str> = plan.static_files().map(|(path, _)| path.as_str()).collect();
    assert_eq!(
        files,
        [
            "_test_parameter",
            "test_secret",
            "SECRET_USERNAME",
            "SECRET_PASSWORD"
        ]
    );
    assert_eq!(
        own_mount(named(&out, "containers", "app")).unwrap()["mountPath"],
        "/mnt/secrets-store"
    );
    validate(&[("seeds-example", &out)]);
}

#[test]
fn injector_user_none_leaves_the_user_to_the_platform() {
    let mut cfg = cfg();
    cfg.injector_user = secrets_injector_webhook::mutation::InjectorUser::Unset;
    let (out, _) = mutated(&fixture("minimal-pod.yaml"), &cfg);
    let context = &injector(&out)["securityContext"];
    assert!(context.get("runAsUser").is_none(), "{context}");
    assert!(context.get("runAsGroup").is_none(), "{context}");
    assert_eq!(context["runAsNonRoot"], true);
    // The app's own user still wins.
    let (out, _) = mutated(&fixture("eks-irsa-pod.json"), &cfg);
    assert_eq!(injector(&out)["securityContext"]["runAsUser"], 10001);
}

#[test]
fn flags_shape_the_init_container() {
    let mut cfg = cfg();
    cfg.volume_size_limit = "1Mi".parse().unwrap();
    cfg.injector_cpu_limit = "1".parse().unwrap();
    cfg.injector_memory_request = "48Mi".parse().unwrap();
    let (out, _) = mutated(&fixture("minimal-pod.yaml"), &cfg);
    assert_eq!(
        named(&out, "volumes", "secrets-injector")["emptyDir"]["sizeLimit"],
        "1Mi"
    );
    assert_eq!(
        injector(&out)["resources"],
        json!({"limits": {"cpu": "1", "memory": "64Mi"}, "requests": {"cpu": "50m", "memory": "48Mi"}})
    );
}

#[test]
fn injector_resources_annotation_replaces_the_flags() {
    let mut pod = fixture("minimal-pod.yaml");
    annotate(
        &mut pod,
        &[(
            "secrets-injector.io/injector-resources",
            "limits:\n  memory: 128Mi\nrequests:\n  cpu: 0.1\n  memory: 96Mi\n",
        )],
    );
    let (out, _) = mutated(&pod, &cfg());
    assert_eq!(
        injector(&out)["resources"],
        json!({"limits": {"memory": "128Mi"}, "requests": {"cpu": "0.1", "memory": "96Mi"}})
    );
    assert_converged(&out, &cfg());
    validate(&[("resources", &out)]);
}

#[test]
fn the_validation_used_here_catches_invalid_pods() {
    // Guards the checks above: a pod the API server would refuse fails them.
    let (mut out, _) = mutated(&fixture("minimal-pod.yaml"), &cfg());
    out["spec"]["initContainers"][0]["securityContext"]["runAsNonRoot"] = json!("yes");
    let manifests = [("bad.json".to_owned(), serde_json::to_string(&out).unwrap())];
    let report = secrets_injector_e2e::validate::validate_manifests(&manifests).unwrap_err();
    assert!(report.contains("runAsNonRoot"), "{report}");
    out["spec"]["containers"][0]["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "missing", "mountPath": "/x"}));
    assert!(api_rules(&out).unwrap_err().contains("names no volume"));
}
