//! `webhook inject`: documents in, mutated YAML out, in the same order.

use crate::support::mutate::*;
use secrets_injector_webhook::inject;
use serde_json::{Value, json};

const INPUT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
      annotations:
        secrets-injector.io/objects: |
          - objectName: /shop/db-password
            objectType: ssmparameter
        secrets-injector.io/file-permission: "0644"
        secrets-injector.io/path-translation: "False"
    spec:
      serviceAccountName: web
      containers:
        - name: web
          image: registry.example.com/shop/web:1.4.2
          env:
            - name: AWS_REGION
              value: eu-west-1
            - name: ENABLED
              value: "true"
            - name: WORKERS
              value: "4"
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: nightly-report
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          annotations:
            secrets-injector.io/objects: '[{"objectName": "reports/smtp", "objectType": "secretsmanager"}]'
        spec:
          restartPolicy: OnFailure
          containers:
            - name: report
              image: registry.example.com/reports:2026.11
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata:
      name: debug
      annotations:
        secrets-injector.io/objects: |
          - objectName: /debug/token
            objectType: ssmparameter
    spec:
      containers:
        - name: shell
          image: busybox:1.36
  - apiVersion: v1
    kind: Service
    metadata:
      name: web
    spec:
      selector:
        app: web
      ports:
        - port: 80
          targetPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  annotations:
    secrets-injector.io/objects: "this is not a pod"
data:
  mode: "0640"
  enabled: "false"
  multi: |
    line one
    line two
"#;

fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(yaml).unwrap()
}

fn injector_of(template: &Value) -> &Value {
    template["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "secrets-injector")
        .unwrap()
}

#[test]
fn multi_document_input_is_mutated_in_order() {
    let output = inject::run(INPUT, &cfg()).unwrap();
    let input = documents(INPUT);
    let out = documents(&output);
    assert_eq!(out.len(), 4);
    let kinds: Vec<&str> = out.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Deployment", "CronJob", "List", "ConfigMap"]);

    // Deployment: the template got exactly what the webhook would add to its pods.
    let template = &out[0]["spec"]["template"];
    let init = injector_of(template);
    assert_eq!(init["image"], IMAGE);
    assert_eq!(
        init["env"],
        json!([{"name": "AWS_REGION", "value": "eu-west-1"}])
    );
    assert_eq!(
        template["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": "secrets-injector", "mountPath": "/mnt/secrets-store", "readOnly": true}])
    );
    assert_eq!(
        template["metadata"]["annotations"]["secrets-injector.io/status"],
        "injected"
    );
    // Strings that look like numbers or booleans stay strings.
    assert_eq!(
        template["metadata"]["annotations"]["secrets-injector.io/file-permission"],
        "0644"
    );
    assert_eq!(
        template["metadata"]["annotations"]["secrets-injector.io/path-translation"],
        "False"
    );
    assert_eq!(template["spec"]["containers"][0]["env"][1]["value"], "true");
    assert_eq!(template["spec"]["containers"][0]["env"][2]["value"], "4");
    assert_eq!(out[0]["spec"]["replicas"], 2);
    // The rest of the Deployment is untouched.
    let mut restored = out[0].clone();
    restored["spec"]["template"] = input[0]["spec"]["template"].clone();
    assert_eq!(restored, input[0]);

    // CronJob: spec.jobTemplate.spec.template, with its JSON annotation passed verbatim.
    let template = &out[1]["spec"]["jobTemplate"]["spec"]["template"];
    let init = injector_of(template);
    assert_eq!(init["args"][1], "--region=us-west-2");
    assert_eq!(
        init["args"].as_array().unwrap().last().unwrap(),
        r#"--objects=[{"objectName": "reports/smtp", "objectType": "secretsmanager"}]"#
    );

    // List: the Pod mutated, the Service untouched.
    let items = out[2]["items"].as_array().unwrap();
    assert_eq!(injector_of(&items[0])["image"], IMAGE);
    assert_eq!(items[1], input[2]["items"][1]);

    // ConfigMap: untouched, multi-line and quoted values included.
    assert_eq!(out[3], input[3]);

    // Every mutated document is a valid object of its kind.
    let docs: Vec<(String, &Value)> = out
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("document-{i}"), d))
        .collect();
    let batch: Vec<(&str, &Value)> = docs.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    validate(&batch);
}

#[test]
fn inject_is_idempotent() {
    let once = inject::run(INPUT, &cfg()).unwrap();
    let twice = inject::run(&once, &cfg()).unwrap();
    assert_eq!(documents(&once), documents(&twice));
    assert_eq!(once, twice);
}

#[test]
fn the_pod_template_gets_what_a_pod_from_it_gets() {
    let output = inject::run(INPUT, &cfg()).unwrap();
    let template = documents(&output)[0]["spec"]["template"].clone();
    let mut pod = documents(INPUT)[0]["spec"]["template"].clone();
    pod["apiVersion"] = json!("v1");
    pod["kind"] = json!("Pod");
    let (mutated, _) = mutated(&pod, &cfg());
    assert_eq!(mutated["spec"], template["spec"]);
    assert_eq!(mutated["metadata"], template["metadata"]);
}

#[test]
fn json_input_works() {
    let pod = fixture("eks-irsa-pod.json");
    let output = inject::run(&serde_json::to_string_pretty(&pod).unwrap(), &cfg()).unwrap();
    let out = documents(&output);
    assert_eq!(out.len(), 1);
    let (expected, _) = mutated(&pod, &cfg());
    assert_eq!(out[0], expected);
}

#[test]
fn a_denied_template_fails_naming_the_document() {
    let input = INPUT.replace(
        "secrets-injector.io/path-translation: \"False\"",
        "secrets-injector.io/mount-path: relative",
    );
    let err = inject::run(&input, &cfg()).unwrap_err().to_string();
    assert_eq!(
        err,
        "Deployment web (document 1): spec.template: annotation secrets-injector.io/mount-path: \"relative\" is not an absolute path; write it like /mnt/secrets-store"
    );
    let input = INPUT.replace(
        "objectName: /debug/token",
        "objectName: /debug/token\n            objectVersion: 1\n            objectVersionLabel: x",
    );
    let err = inject::run(&input, &cfg()).unwrap_err().to_string();
    assert!(
        err.starts_with(
            "Pod debug (document 3, items[0]): annotation secrets-injector.io/objects: objects[0]"
        ),
        "{err}"
    );
}

#[test]
fn unreadable_input_is_an_error() {
    let err = inject::run("kind: [unclosed", &cfg())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("the input is not YAML or JSON: "), "{err}");
}

#[test]
fn empty_input_gives_empty_output() {
    assert_eq!(inject::run("", &cfg()).unwrap(), "");
}
