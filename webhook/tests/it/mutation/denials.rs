//! Every reason the webhook denies a pod, with the message the user sees; the pods it lets
//! through unchanged; and the warnings it gives.

use crate::support::mutate::*;
use secrets_injector_webhook::mutation::{Decision, mutate};
use serde_json::{Value, json};

const ONE_OBJECT: &str = "- objectName: /app/db\n  objectType: ssmparameter\n";

fn pod_with(annotations: &[(&str, &str)]) -> Value {
    let mut pod = fixture("minimal-pod.yaml");
    annotate(&mut pod, annotations);
    pod
}

fn assert_denied(pod: &Value, expected: &str) -> String {
    let message = denial(pod, &cfg());
    assert!(
        message.contains(expected),
        "expected {expected:?} in:\n{message}"
    );
    message
}

#[test]
fn pods_not_asking_are_skipped() {
    let mut plain = fixture("minimal-pod.yaml");
    plain["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    assert_eq!(mutate(&plain, &cfg()), Decision::Skip);
    let opted_out = pod_with(&[("secrets-injector.io/inject", "false")]);
    assert_eq!(mutate(&opted_out, &cfg()), Decision::Skip);
    let empty = pod_with(&[("secrets-injector.io/objects", "")]);
    assert_eq!(mutate(&empty, &cfg()), Decision::Skip);
    // Only "false" opts out.
    let other = pod_with(&[("secrets-injector.io/inject", "true")]);
    assert!(matches!(mutate(&other, &cfg()), Decision::Patch { .. }));
    // Even a Windows pod or one with bad settings is left alone when it does not ask.
    let mut windows = plain.clone();
    windows["spec"]["os"] = json!({"name": "windows"});
    annotate(
        &mut windows,
        &[("secrets-injector.io/mount-path", "relative")],
    );
    assert_eq!(mutate(&windows, &cfg()), Decision::Skip);
}

#[test]
fn mount_path_must_be_absolute_and_normal() {
    let cases = [
        ("relative/path", "\"relative/path\" is not an absolute path"),
        ("", "\"\" is not an absolute path"),
        ("/", "\"/\" would hide the container's whole filesystem"),
        ("/mnt/../etc", "\"/mnt/../etc\" is not a normal path"),
        ("/mnt/./secrets", "\"/mnt/./secrets\" is not a normal path"),
        ("/mnt//secrets", "\"/mnt//secrets\" is not a normal path"),
        ("/mnt/secrets/", "\"/mnt/secrets/\" is not a normal path"),
        ("/mnt/se\0crets", "is not a normal path"),
    ];
    for (path, expected) in cases {
        let message = assert_denied(
            &pod_with(&[("secrets-injector.io/mount-path", path)]),
            expected,
        );
        assert!(
            message.starts_with("annotation secrets-injector.io/mount-path: "),
            "{message}"
        );
    }
}

#[test]
fn mount_path_must_not_cover_what_the_injector_needs() {
    for (path, need) in [
        ("/usr/local/bin", "/usr/local/bin/injector"),
        ("/usr", "/usr/local/bin/injector"),
        ("/dev", "/dev"),
        ("/dev/shm", "/dev"),
        ("/proc/self", "/proc"),
        ("/sys", "/sys"),
        ("/etc", "/etc/ssl"),
        ("/etc/ssl/certs", "/etc/ssl"),
    ] {
        let message = assert_denied(&pod_with(&[("secrets-injector.io/mount-path", path)]), "");
        assert_eq!(
            message,
            format!(
                "annotation secrets-injector.io/mount-path: {path} would cover {need}, which the injector's init container needs from its image; choose a directory such as /mnt/secrets-store"
            )
        );
    }
    // Next to them is fine.
    for path in [
        "/usr/local/share/secrets",
        "/etc/app",
        "/devices",
        "/run/secrets",
    ] {
        assert!(
            matches!(
                mutate(
                    &pod_with(&[("secrets-injector.io/mount-path", path)]),
                    &cfg()
                ),
                Decision::Patch { .. }
            ),
            "{path}"
        );
    }
}

#[test]
fn a_copied_mount_must_not_hide_the_injector_binary() {
    let mut pod = fixture("eks-irsa-pod.json");
    let app = &mut pod["spec"]["containers"][0];
    app["volumeMounts"][1]["mountPath"] = json!("/usr/local/bin");
    app["env"][5]["value"] = json!("/usr/local/bin/token");
    assert_denied(
        &pod,
        "container \"web\" mounts volume \"aws-iam-token\" at /usr/local/bin, which the init container would copy (an AWS token or a path in a copied variable), but there it would hide the injector's binary /usr/local/bin/injector; mount it elsewhere",
    );
}

#[test]
fn mount_path_must_not_clash_with_a_mount_of_a_target_container() {
    let pod = fixture("sidecars-pod.yaml");
    let with_path = |path: &str| {
        let mut pod = pod.clone();
        annotate(&mut pod, &[("secrets-injector.io/mount-path", path)]);
        pod
    };
    assert_denied(
        &with_path("/var/cache/api"),
        "annotation secrets-injector.io/mount-path: /var/cache/api is the same path as the mount /var/cache/api (volume \"cache\") of container \"api\"; choose a mount path that neither contains nor lies inside an existing mount",
    );
    assert_denied(
        &with_path("/var/cache"),
        "/var/cache contains the mount /var/cache/api (volume \"cache\") of container \"api\"",
    );
    assert_denied(
        &with_path("/etc/corp-ca/extra"),
        "/etc/corp-ca/extra lies inside the mount /etc/corp-ca (volume \"corp-ca\") of container \"api\"",
    );
    // log-shipper, a target too, mounts the cache as well: both clashes are reported.
    let message = denial(&with_path("/var/cache/api"), &cfg());
    assert!(
        message.contains("of container \"log-shipper\""),
        "{message}"
    );
    // A path next to a mount, sharing only a prefix of its name, is fine.
    assert!(matches!(
        mutate(&with_path("/var/cache/api-secrets"), &cfg()),
        Decision::Patch { .. }
    ));
}

#[test]
fn mount_path_clash_with_a_named_init_container_or_sidecar() {
    let mut pod = fixture("sidecars-pod.yaml");
    pod["spec"]["initContainers"][1]["volumeMounts"] =
        json!([{"name": "cache", "mountPath": "/etc/envoy"}]);
    annotate(
        &mut pod,
        &[("secrets-injector.io/mount-path", "/etc/envoy/secrets")],
    );
    assert_denied(
        &pod,
        "lies inside the mount /etc/envoy (volume \"cache\") of container \"envoy\"",
    );
    // Not a target: no clash.
    annotate(&mut pod, &[("secrets-injector.io/containers", "api")]);
    assert!(matches!(mutate(&pod, &cfg()), Decision::Patch { .. }));
}

#[test]
fn container_named_like_the_init_container_is_denied() {
    let mut pod = fixture("minimal-pod.yaml");
    pod["spec"]["containers"][0]["name"] = json!("secrets-injector");
    assert_denied(
        &pod,
        "container name \"secrets-injector\" is reserved for the webhook's init containers; rename the container",
    );
}

#[test]
fn no_region_is_denied() {
    let mut cfg = cfg();
    cfg.default_region = None;
    let pod = fixture("minimal-pod.yaml");
    let message = denial(&pod, &cfg);
    assert!(
        message.contains(
            "no region: set the annotation secrets-injector.io/region, give the first target container a literal AWS_REGION or AWS_DEFAULT_REGION env value, or start the webhook with --default-region"
        ),
        "{message}"
    );
    // valueFrom is not read: still no region.
    let mut pod = fixture("minimal-pod.yaml");
    pod["spec"]["containers"][0]["env"] = json!([{"name": "AWS_REGION", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "region"}}}]);
    assert!(denial(&pod, &cfg).contains("no region"));
    // AWS_DEFAULT_REGION is read when AWS_REGION is not a literal.
    pod["spec"]["containers"][0]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "AWS_DEFAULT_REGION", "value": "ap-southeast-2"}));
    let (out, _) = mutated(&pod, &cfg);
    let args = injector(&out)["args"].clone();
    assert_eq!(args[1], "--region=ap-southeast-2");
}

#[test]
fn region_precedence() {
    let mut pod = fixture("seeds-example-pod.yaml");
    // AWS_REGION us-east-1 on the container beats --default-region us-west-2.
    let (out, _) = mutated(&pod, &cfg());
    assert_eq!(injector(&out)["args"][1], "--region=us-east-1");
    // The annotation beats both.
    annotate(&mut pod, &[("secrets-injector.io/region", "eu-north-1")]);
    let (out, _) = mutated(&pod, &cfg());
    assert_eq!(injector(&out)["args"][1], "--region=eu-north-1");
}

/// A region that looks like a flag is denied from every source, so it never reaches the
/// injector's command line.
#[test]
fn flag_like_regions_are_denied_from_every_source() {
    for region in ["--help", "-x", "us-east-1 --x"] {
        let pod = pod_with(&[("secrets-injector.io/region", region)]);
        assert_denied(
            &pod,
            &format!("annotation secrets-injector.io/region: {region:?} is not a region name"),
        );
        let pod = pod_with(&[
            ("secrets-injector.io/region", "eu-west-1"),
            ("secrets-injector.io/failover-region", region),
        ]);
        assert_denied(
            &pod,
            &format!(
                "annotation secrets-injector.io/failover-region: {region:?} is not a region name"
            ),
        );
        for variable in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
            let mut pod = pod_with(&[]);
            pod["spec"]["containers"][0]["env"] = json!([{"name": variable, "value": region}]);
            assert_denied(
                &pod,
                &format!("{variable} {region:?} of container \"app\" is not an AWS region name"),
            );
        }
    }
}

/// A flag-like value of another annotation stays inside its own `--flag=value` argument (the
/// injector's `Cli` reads it as the env file's name: `injector/src/cli.rs`).
#[test]
fn a_flag_like_env_file_stays_the_env_files_value() {
    let pod = pod_with(&[("secrets-injector.io/env-file", "--mount-path=/etc")]);
    let (out, _) = mutated(&pod, &cfg());
    let args = injector(&out)["args"].as_array().unwrap().clone();
    assert_eq!(args[0], "--mount-path=/mnt/secrets-store");
    assert!(
        args.contains(&json!("--env-file=--mount-path=/etc")),
        "{args:?}"
    );
    assert_eq!(
        args.iter()
            .filter(|a| a.as_str().unwrap().starts_with("--mount-path"))
            .count(),
        1,
        "{args:?}"
    );
}

#[test]
fn invalid_regions_are_denied() {
    let mut pod = fixture("seeds-example-pod.yaml");
    pod["spec"]["containers"][0]["env"][0]["value"] = json!("US_EAST_1");
    assert_denied(
        &pod,
        "AWS_REGION \"US_EAST_1\" of container \"app\" is not an AWS region name; fix it or set the annotation secrets-injector.io/region",
    );
    let pod = pod_with(&[("secrets-injector.io/region", "Europe")]);
    assert_denied(
        &pod,
        "annotation secrets-injector.io/region: \"Europe\" is not a region name",
    );
    let pod = pod_with(&[
        ("secrets-injector.io/region", "eu-west-1"),
        ("secrets-injector.io/failover-region", "eu-west-1"),
    ]);
    assert_denied(
        &pod,
        "annotation secrets-injector.io/failover-region: \"eu-west-1\" is the region itself",
    );
}

#[test]
fn windows_pods_are_denied() {
    let mut pod = fixture("minimal-pod.yaml");
    pod["spec"]["os"] = json!({"name": "windows"});
    assert_denied(
        &pod,
        "annotation secrets-injector.io/objects: the pod runs on Windows (spec.os.name: windows), and the injector's init container needs Linux security settings that a Windows pod cannot have",
    );
}

#[test]
fn invalid_injector_resources_are_denied() {
    let cases = [
        (
            "limits: [",
            "annotation secrets-injector.io/injector-resources: is not valid YAML",
        ),
        (
            "limits: {memory: 64Mi}\nrequests: {memory: 1Gi}",
            "annotation secrets-injector.io/injector-resources: requests.memory 1Gi is more than limits.memory 64Mi",
        ),
        (
            "requests: {cpu: lots}",
            "requests.cpu: \"lots\" is not a Kubernetes quantity",
        ),
        (
            "limits: {nvidia.com/gpu: 1}",
            "limits.nvidia.com/gpu: not supported for the init container",
        ),
        (
            "resources: {}",
            "unknown field \"resources\"; only limits and requests are accepted",
        ),
    ];
    for (text, expected) in cases {
        assert_denied(
            &pod_with(&[("secrets-injector.io/injector-resources", text)]),
            expected,
        );
    }
}

#[test]
fn owner_only_modes_need_the_apps_user() {
    let objects =
        "- objectName: /app/key\n  objectType: ssmparameter\n  filePermission: \"0600\"\n";
    let pod = pod_with(&[("secrets-injector.io/objects", objects)]);
    assert_denied(
        &pod,
        "annotation secrets-injector.io/objects: objects[0] (objectName \"/app/key\"): filePermission mode 0600 lets only the file's owner read it",
    );
    // With the container's runAsUser, the injector writes as that user: allowed.
    let mut with_user = pod.clone();
    with_user["spec"]["containers"][0]["securityContext"] = json!({"runAsUser": 1000});
    let (out, _) = mutated(&with_user, &cfg());
    assert_eq!(injector(&out)["securityContext"]["runAsUser"], 1000);
    // The pod's runAsUser counts too.
    let mut pod_level = pod.clone();
    pod_level["spec"]["securityContext"] = json!({"runAsUser": 1000});
    assert!(matches!(mutate(&pod_level, &cfg()), Decision::Patch { .. }));
    // Root cannot be the injector's user (runAsNonRoot), so it does not count.
    let mut root = pod.clone();
    root["spec"]["securityContext"] = json!({"runAsUser": 0});
    assert!(denial(&root, &cfg()).contains("mode 0600 lets only the file's owner read it"));
}

#[test]
fn group_only_modes_need_the_apps_user_or_fs_group() {
    let objects =
        "- objectName: /app/key\n  objectType: ssmparameter\n  filePermission: \"0640\"\n";
    let pod = pod_with(&[("secrets-injector.io/objects", objects)]);
    assert_denied(
        &pod,
        "mode 0640 lets only the file's owner and group read it, but the pod sets neither runAsUser nor fsGroup",
    );
    let mut with_fs_group = pod.clone();
    with_fs_group["spec"]["securityContext"] = json!({"fsGroup": 2000});
    assert!(matches!(
        mutate(&with_fs_group, &cfg()),
        Decision::Patch { .. }
    ));
}

#[test]
fn default_file_permission_is_checked_too() {
    let pod = pod_with(&[("secrets-injector.io/file-permission", "0400")]);
    assert_denied(
        &pod,
        "annotation secrets-injector.io/file-permission: the default file mode: mode 0400",
    );
    let pod = pod_with(&[("secrets-injector.io/file-permission", "644")]);
    assert_denied(
        &pod,
        "annotation secrets-injector.io/file-permission: \"644\" is not a file mode of four octal digits",
    );
}

#[test]
fn bad_path_translation_and_init_first_are_denied() {
    assert_denied(
        &pod_with(&[("secrets-injector.io/path-translation", "//")]),
        "annotation secrets-injector.io/path-translation: \"//\" is neither False nor one character",
    );
    assert_denied(
        &pod_with(&[("secrets-injector.io/init-first", "yes")]),
        "annotation secrets-injector.io/init-first: \"yes\" is not a boolean; write \"true\" or \"false\"",
    );
}

#[test]
fn object_list_problems_come_from_the_object_model() {
    assert_denied(
        &pod_with(&[("secrets-injector.io/objects", "- objectName: db\n")]),
        "annotation secrets-injector.io/objects: objects[0] (objectName \"db\"): ",
    );
    assert_denied(
        &pod_with(&[("secrets-injector.io/objects", "[]")]),
        "annotation secrets-injector.io/objects: ",
    );
    assert_denied(
        &pod_with(&[("secrets-injector.io/objects", "- [unclosed")]),
        "annotation secrets-injector.io/objects: ",
    );
}

#[test]
fn objects_annotation_over_64_kib_is_denied() {
    let mut objects = String::new();
    let mut i = 0;
    while objects.len() <= 64 * 1024 {
        objects.push_str(&format!(
            "- objectName: /app/parameter-{i:05}\n  objectType: ssmparameter\n"
        ));
        i += 1;
    }
    let message = assert_denied(
        &pod_with(&[("secrets-injector.io/objects", &objects)]),
        "over the limit of 65536 bytes",
    );
    assert!(
        message.starts_with("annotation secrets-injector.io/objects: is "),
        "{message}"
    );
    // Just under the limit is fine, and the whole text goes to the injector as one argument.
    while objects.len() > 64 * 1024 {
        let cut = objects[..objects.len() - 1].rfind("- objectName").unwrap();
        objects.truncate(cut);
    }
    let (out, _) = mutated(
        &pod_with(&[("secrets-injector.io/objects", &objects)]),
        &cfg(),
    );
    let args = injector(&out)["args"].as_array().unwrap().clone();
    assert_eq!(args.last().unwrap(), &json!(format!("--objects={objects}")));
}

#[test]
fn every_problem_is_reported_at_once() {
    let pod = pod_with(&[
        ("secrets-injector.io/mount-path", "relative"),
        ("secrets-injector.io/init-first", "maybe"),
        ("secrets-injector.io/injector-resources", "limits: {cpu: x}"),
        ("secrets-injector.io/objects", "- objectName: db\n"),
    ]);
    let message = denial(&pod, &cfg());
    for expected in [
        "annotation secrets-injector.io/mount-path:",
        "annotation secrets-injector.io/init-first:",
        "annotation secrets-injector.io/injector-resources:",
        "annotation secrets-injector.io/objects: objects[0]",
    ] {
        assert!(
            message.contains(expected),
            "{expected} missing from {message}"
        );
    }
}

#[test]
fn unknown_annotations_get_a_warning_with_the_closest_name() {
    let pod = pod_with(&[
        ("secrets-injector.io/mount-pth", "/x"),
        ("secrets-injector.io/something-else-entirely", "1"),
        ("other.example.com/mount-pth", "ignored"),
    ]);
    let (_, warnings) = mutated(&pod, &cfg());
    assert_eq!(
        warnings,
        [
            "annotation secrets-injector.io/mount-pth is not known and is ignored; did you mean secrets-injector.io/mount-path?",
            "annotation secrets-injector.io/something-else-entirely is not known and is ignored; known annotations: secrets-injector.io/ followed by objects, inject, mount-path, containers, region, failover-region, path-translation, file-permission, env-file, init-first, mesh-bypass, injector-resources, status, refresh-interval, refresh-signal, refresh-url, env-containers, assume-role-arn, assume-role-external-id, assume-role-duration-seconds, secret-provider-class, templates",
        ]
    );
}

#[test]
fn containers_annotation_warnings() {
    let pod = pod_with(&[("secrets-injector.io/containers", "app, later")]);
    let (out, warnings) = mutated(&pod, &cfg());
    assert_eq!(
        warnings,
        [
            "annotation secrets-injector.io/containers: the pod has no container \"later\" (yet); it gets the mount if it is added before the webhook runs again"
        ]
    );
    assert!(own_mount(named(&out, "containers", "app")).is_some());

    let pod = pod_with(&[("secrets-injector.io/containers", " , ")]);
    let (out, warnings) = mutated(&pod, &cfg());
    assert_eq!(
        warnings,
        [
            "annotation secrets-injector.io/containers names no container; every regular container gets the mount"
        ]
    );
    assert!(own_mount(named(&out, "containers", "app")).is_some());

    let pod = pod_with(&[("secrets-injector.io/containers", "secrets-injector,app")]);
    let (_, warnings) = mutated(&pod, &cfg());
    assert_eq!(
        warnings,
        [
            "annotation secrets-injector.io/containers: \"secrets-injector\" is the webhook's own init container and is ignored"
        ]
    );
}

#[test]
fn containers_annotation_naming_nothing_present_still_injects() {
    // The named container may come from another webhook later: the init container is added now,
    // with no identity to copy and the webhook's defaults.
    let pod = pod_with(&[("secrets-injector.io/containers", "later")]);
    let (out, warnings) = mutated(&pod, &cfg());
    assert_eq!(warnings.len(), 1);
    assert!(own_mount(named(&out, "containers", "app")).is_none());
    assert_eq!(injector(&out)["args"][1], "--region=us-west-2");
}

#[test]
fn unknown_object_fields_are_warnings() {
    let pod = pod_with(&[(
        "secrets-injector.io/objects",
        "- objectName: /app/db\n  objectType: ssmparameter\n  objectAlais: db\n",
    )]);
    let (_, warnings) = mutated(&pod, &cfg());
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(
            "annotation secrets-injector.io/objects: objects[0] (objectName \"/app/db\"): "
        ),
        "{warnings:?}"
    );
    assert!(warnings[0].contains("objectAlais"), "{warnings:?}");
}

#[test]
fn one_object_is_enough() {
    let (out, warnings) = mutated(
        &pod_with(&[("secrets-injector.io/objects", ONE_OBJECT)]),
        &cfg(),
    );
    assert!(warnings.is_empty());
    assert_eq!(
        injector(&out)["args"].as_array().unwrap().last().unwrap(),
        &format!("--objects={ONE_OBJECT}")
    );
}
