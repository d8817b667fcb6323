//! Templates on the webhook's side: the checks at admission (with the template and line in the
//! message), the denials of pods whose objects are not the `objects` annotation's, the 64 KiB
//! limit of both annotations, and the `--templates=` word the init container and its refresh
//! sidecar get (before the object list, which stays last), converged.

use std::sync::Arc;

use crate::support::mutate::*;
use secrets_injector_webhook::mutation::{Classes, CsiVolumes, DocumentClasses, mutate};
use serde_json::{Value, json};

const TEMPLATES: &str = "secrets-injector.io/templates";
const OBJECTS: &str = "secrets-injector.io/objects";

const TWO: &str = r#"- name: DATABASE_URL
  template: "postgres://{{ SECRET_USERNAME | urlencode }}:{{ SECRET_PASSWORD | urlencode }}@db/app"
- name: config.yaml
  delimiters: ["[[", "]]"]
  template: |
    password: [[ SECRET_PASSWORD | tojson ]]
"#;

fn seeds_with(templates: &str) -> Value {
    let mut pod = fixture("seeds-example-pod.yaml");
    annotate(&mut pod, &[(TEMPLATES, templates)]);
    pod
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
fn the_templates_go_to_the_init_container_before_the_objects() {
    let pod = seeds_with(TWO);
    let (out, warnings) = mutated(&pod, &cfg());
    assert!(warnings.is_empty(), "{warnings:?}");
    let args = args(injector(&out));
    let n = args.len();
    assert_eq!(args[n - 2], format!("--templates={TWO}"));
    assert!(args[n - 1].starts_with("--objects="), "{args:?}");
    validate(&[("templates", &out)]);
    assert_converged(&out, &cfg());
    // The refresh sidecar renders the same templates: it copies the init container's words.
    let mut refreshing = pod.clone();
    annotate(
        &mut refreshing,
        &[("secrets-injector.io/refresh-interval", "5m")],
    );
    let (out, _) = mutated(&refreshing, &cfg());
    let sidecar = named(&out, "initContainers", "secrets-injector-refresh");
    assert!(super::templates::args(sidecar).contains(&format!("--templates={TWO}")));
    // With env-containers too, the copy of secrets-env goes before the objects as well.
    let mut env = pod.clone();
    env["spec"]["containers"][0]["command"] = json!(["/app"]);
    let name = env["spec"]["containers"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    annotate(&mut env, &[("secrets-injector.io/env-containers", &name)]);
    let (out, _) = mutated(&env, &cfg());
    let args = super::templates::args(injector(&out));
    assert!(args.last().unwrap().starts_with("--objects="), "{args:?}");
    assert!(args.contains(&format!("--templates={TWO}")));
    assert!(args.iter().any(|a| a.starts_with("--secrets-env-dir=")));
    assert_converged(&out, &cfg());
}

#[test]
fn admission_checks_name_the_template_and_line() {
    let cases = [
        (
            "- {name: a, template: \"x\\n{{ SECRET_PASWORD }}\"}",
            "templates[0] (name \"a\"): line 2: SECRET_PASWORD is not a file the objects write",
        ),
        (
            "- {name: a, template: \"{{ x \"}",
            "templates[0] (name \"a\"): line 1: syntax error",
        ),
        (
            "- {name: a, template: \"\\n{{ SECRET_PASSWORD | nope }}\"}",
            "line 2: unknown filter \"nope\"",
        ),
        (
            "- {name: SECRET_PASSWORD, template: x}",
            "also a file (or directory) the objects",
        ),
        (
            "- {name: a, template: x}\n- {name: a, template: y}",
            "also the name of templates[0]",
        ),
        (
            "- {name: a, template: \"{{ b }}\"}\n- {name: b, template: y}",
            "b is the file of templates[1]",
        ),
        ("- {name: ../a, template: x}", "contains '/'"),
        (
            "- {name: a, template: x, filePermission: '0000'}",
            "lets no one read the file",
        ),
        (
            "- {name: a, template: \"{% include 'b' %}\"}",
            "line 1: syntax error",
        ),
    ];
    for (templates, wanted) in cases {
        let message = denial(&seeds_with(templates), &cfg());
        assert!(
            message.contains(&format!("annotation {TEMPLATES}")) && message.contains(wanted),
            "{templates}: {message}"
        );
    }
    // An owner-only template needs the app's user, as an object's file does.
    let message = denial(
        &seeds_with("- {name: a, template: x, filePermission: '0400'}"),
        &cfg(),
    );
    assert!(message.contains("the app's user is not known"), "{message}");
    // Unknown fields are warnings.
    let (_, warnings) = mutated(
        &seeds_with("- {name: a, template: x, mode: '0400'}"),
        &cfg(),
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("unknown field \"mode\" ignored")),
        "{warnings:?}"
    );
}

#[test]
fn the_objects_problems_and_the_templates_are_told_together() {
    let mut pod = seeds_with("- {name: a, template: \"{{ x \"}");
    annotate(
        &mut pod,
        &[(OBJECTS, "- objectName: /a\n  objectType: nope\n")],
    );
    let message = denial(&pod, &cfg());
    assert!(message.contains("objectType"), "{message}");
    assert!(
        message.contains("templates[0] (name \"a\"): line 1: syntax error"),
        "{message}"
    );
}

#[test]
fn pods_without_the_objects_annotation_cannot_have_templates() {
    // A class.
    let mut pod = fixture("minimal-pod.yaml");
    pod["metadata"]["annotations"] = json!({
        "secrets-injector.io/secret-provider-class": "db",
        TEMPLATES: "- {name: a, template: x}",
    });
    let class = json!({
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": {"name": "db"},
        "spec": {"provider": "aws", "parameters": {"objects": "- objectName: /a\n  objectType: ssmparameter\n"}},
    });
    let mut cfg = cfg();
    cfg.secret_provider_classes = true;
    cfg.csi_volumes = CsiVolumes::Rewrite;
    let (found, _) = DocumentClasses::from_documents(std::slice::from_ref(&class));
    cfg.classes = Classes(Arc::new(found));
    let message = denial(&pod, &cfg);
    assert!(
        message
            .contains("templates render the values of the annotation secrets-injector.io/objects")
            && message.contains("from a SecretProviderClass"),
        "{message}"
    );
    // Only CSI volumes.
    let mut csi = fixture("minimal-pod.yaml");
    csi["metadata"]["annotations"] = json!({TEMPLATES: "- {name: a, template: x}"});
    csi["spec"]["volumes"] = json!([{
        "name": "secrets",
        "csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": true,
                "volumeAttributes": {"secretProviderClass": "db"}},
    }]);
    csi["spec"]["containers"][0]["volumeMounts"] =
        json!([{"name": "secrets", "mountPath": "/mnt/secrets", "readOnly": true}]);
    let message = denial(&csi, &cfg);
    assert!(
        message.contains("only objects are those of its CSI volumes"),
        "{message}"
    );
    // No objects at all.
    let mut bare = fixture("minimal-pod.yaml");
    bare["metadata"]["annotations"] = json!({TEMPLATES: "- {name: a, template: x}"});
    assert!(denial(&bare, &cfg).contains("the pod has no objects"));
    // Opted out: nothing to say.
    bare["metadata"]["annotations"]["secrets-injector.io/inject"] = json!("false");
    assert_eq!(
        mutate(&bare, &cfg),
        secrets_injector_webhook::mutation::Decision::Skip
    );
}

#[test]
fn both_annotations_together_are_at_most_64_kib() {
    let pod = fixture("seeds-example-pod.yaml");
    let objects = pod["metadata"]["annotations"][OBJECTS]
        .as_str()
        .unwrap()
        .len();
    let head = "- name: big\n  template: \"";
    let room = 65_536 - objects;
    let fits = format!("{head}{}\"\n", "x".repeat(room - head.len() - 2));
    let (out, _) = mutated(&seeds_with(&fits), &cfg());
    assert!(args(injector(&out)).contains(&format!("--templates={fits}")));
    let over = format!("{head}{}\"\n", "x".repeat(room - head.len() - 1));
    let message = denial(&seeds_with(&over), &cfg());
    assert!(
        message.contains("over the limit of 65536 bytes (64 KiB) for both"),
        "{message}"
    );
}

#[test]
fn the_templates_cache_holds_each_check_once() {
    let cfg = cfg();
    let pod = seeds_with(TWO);
    for _ in 0..5 {
        mutated(&pod, &cfg);
    }
    assert_eq!(cfg.templates.len(), 1);
    assert_eq!(cfg.plans.len(), 1);
    // Other objects are checked again: the names a template reads may not be there.
    let mut other = pod.clone();
    annotate(
        &mut other,
        &[(OBJECTS, "- {objectName: /other, objectType: ssmparameter}")],
    );
    assert!(denial(&other, &cfg).contains("SECRET_USERNAME is not a file"));
    assert_eq!(cfg.templates.len(), 2);
}

#[test]
fn a_template_that_replaces_a_variable_of_the_container_is_warned_of() {
    let mut pod = seeds_with(TWO);
    pod["spec"]["containers"][0]["command"] = json!(["/app"]);
    pod["spec"]["containers"][0]["env"] = json!([{"name": "DATABASE_URL", "value": "x"}]);
    let name = pod["spec"]["containers"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    annotate(&mut pod, &[("secrets-injector.io/env-containers", &name)]);
    let (_, warnings) = mutated(&pod, &cfg());
    assert!(
        warnings.iter().any(|w| w.contains(
            "sets the variable DATABASE_URL in its env, and the file DATABASE_URL replaces it"
        )),
        "{warnings:?}"
    );
}
