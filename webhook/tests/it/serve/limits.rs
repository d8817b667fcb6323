//! `webhook serve` over real HTTPS and `webhook inject`, against the built binary, given what a
//! pod controls at its most hostile: JMESPath expressions, JSON and YAML nested until a recursive
//! parser would overflow its stack, quantities with huge exponents, and object lists that give
//! thousands of problems or warnings. The process must live, answer each with a short message
//! that says what is wrong, and then still answer a normal review.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use secrets_injector_e2e::admission;
use secrets_injector_e2e::https::Certified;
use serde_json::{Value, json};

const IMAGE: &str = "registry.example.com/secrets-injector/injector:1.0.0";
/// Nesting far past what any recursive parser survives on a 2 MiB stack.
const DEEP: usize = 100_000;
/// The bound on a whole denial answer (an AdmissionReview carrying the capped message): 20
/// problems of at most 512 bytes each, JSON-escaped, and the envelope.
const MAX_ANSWER_BYTES: usize = 12 * 1024;

fn program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_webhook"))
}

struct Server(Certified);

impl Server {
    fn start() -> Self {
        Self(Certified::start(
            program(),
            IMAGE,
            &["--default-region", "eu-west-1"],
        ))
    }

    /// Posts `body`; the status and the answer's bytes.
    fn post(&mut self, body: &[u8]) -> (u16, Vec<u8>) {
        let response = self
            .0
            .client()
            .post_json("/mutate?timeout=10s", body)
            .expect("POST /mutate: the server answers");
        assert!(self.alive(), "the webhook exited");
        (response.status, response.body)
    }

    /// The `response` of a review that must be answered with 200.
    fn answer(&mut self, body: &[u8]) -> (Value, usize) {
        let (status, bytes) = self.post(body);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        let review: Value = serde_json::from_slice(&bytes).expect("the answer is JSON");
        (review["response"].clone(), bytes.len())
    }

    /// The denial message of a review that must be denied.
    fn denial(&mut self, body: &[u8]) -> (String, usize) {
        let (response, len) = self.answer(body);
        assert_eq!(response["allowed"], false, "{response}");
        let message = response["status"]["message"]
            .as_str()
            .expect("a denial has a message")
            .to_owned();
        (message, len)
    }

    fn alive(&mut self) -> bool {
        self.0.webhook.wait_exit(Duration::ZERO).is_none()
    }

    /// A normal pod is still mutated: the server survived what came before.
    fn still_serves(&mut self) {
        let (response, _) = self.answer(&pod_review("after", &objects(NORMAL)));
        assert_eq!(response["allowed"], true, "{response}");
        assert!(response["patch"].is_string(), "{response}");
    }
}

const NORMAL: &str = "- objectName: /app/db\n  objectType: ssmparameter\n";

fn objects(list: &str) -> Value {
    json!({"secrets-injector.io/objects": list})
}

fn pod(annotations: &Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}
    })
}

fn pod_review(uid: &str, annotations: &Value) -> Vec<u8> {
    admission::body(&admission::create_review(uid, &pod(annotations), "apps"))
}

fn deployment(annotations: &Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}, "annotations": annotations},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]}
            }
        }
    })
}

/// An UPDATE of a Deployment whose pod template gets `annotations`.
fn deployment_update(uid: &str, annotations: &Value) -> Vec<u8> {
    let mut review = admission::create_review(uid, &deployment(annotations), "apps");
    review["request"]["operation"] = json!("UPDATE");
    review["request"]["oldObject"] = deployment(&json!({}));
    review["request"]["options"]["kind"] = json!("UpdateOptions");
    admission::body(&review)
}

/// One object whose single jmesPath entry is `path`.
fn jmes_list(path: &str) -> String {
    format!(
        "- objectName: db\n  objectType: secretsmanager\n  jmesPath:\n    - path: '{path}'\n      objectAlias: user\n"
    )
}

/// JSON `[[[…]]]` nested `depth` deep, as text: serde_json cannot build or drop such a value.
fn deep_json(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// `body` with the JSON string `"DEEP"` replaced by a value nested [`DEEP`] levels.
fn with_deep(body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(body.to_vec()).expect("UTF-8");
    assert_eq!(text.matches("\"DEEP\"").count(), 1, "{text}");
    text.replace("\"DEEP\"", &deep_json(DEEP)).into_bytes()
}

fn inject(input: &[u8]) -> Output {
    let mut child = Command::new(program())
        .args([
            "inject",
            "--injector-image",
            IMAGE,
            "--default-region",
            "eu-west-1",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("webhook inject");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write the manifest");
    child.wait_with_output().expect("wait")
}

/// `webhook inject` failed with its error exit (1), not a signal, and its message.
#[track_caller]
fn inject_failed(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(1),
        "exit {:?} (no code: killed by a signal): {}",
        output.status,
        &stderr[..stderr.len().min(2000)]
    );
    stderr
}

/// A pod manifest for `webhook inject` with these annotations (a JSON document is YAML).
fn pod_manifest(annotations: &Value) -> Vec<u8> {
    serde_json::to_vec(&pod(annotations)).expect("JSON")
}

#[test]
fn jmes_paths_deep_enough_to_overflow_the_parser_are_denied_and_the_server_lives() {
    let mut server = Server::start();
    let nasty = [
        (
            format!("{}a", "!".repeat(5000)),
            "is 5001 bytes, over the limit of 1024 bytes",
        ),
        (
            "(".repeat(30_000),
            "is 30000 bytes, over the limit of 1024 bytes",
        ),
        ("a[]".repeat(40), "has 40 operators that nest"),
    ];
    for (i, (path, limit)) in nasty.iter().enumerate() {
        let annotations = objects(&jmes_list(path));
        let (message, _) = server.denial(&pod_review(&format!("pod-{i}"), &annotations));
        assert!(
            message.starts_with(&format!(
                "annotation secrets-injector.io/objects: objects[0] (objectName \"db\"): \
                 jmesPath[0] (path \"{}",
                &path[..8]
            )) && message.contains(limit),
            "{message}"
        );
        assert!(message.contains("over the limit of"), "{message}");
        assert!(message.len() < 600, "{message}");

        let (message, _) =
            server.denial(&deployment_update(&format!("deployment-{i}"), &annotations));
        assert!(
            message.starts_with("spec.template: annotation secrets-injector.io/objects: ")
                && message.contains(limit),
            "{message}"
        );
        server.still_serves();
    }
}

#[test]
fn inject_refuses_a_deep_jmes_path_with_its_error_exit() {
    let path = format!("{}a", "!".repeat(20_000));
    let output = inject(&pod_manifest(&objects(&jmes_list(&path))));
    let stderr = inject_failed(&output);
    assert!(
        stderr.contains("is 20001 bytes, over the limit of 1024 bytes"),
        "{stderr}"
    );
    assert!(stderr.len() < 1024, "{stderr}");
}

#[test]
fn json_nested_100000_deep_anywhere_in_a_review_gets_a_clean_answer() {
    let mut server = Server::start();
    let mut in_pod = pod(&objects(NORMAL));
    in_pod["spec"]["unknownField"] = json!("DEEP");
    let mut in_annotations = pod(&objects(NORMAL));
    in_annotations["metadata"]["annotations"]["other"] = json!("DEEP");
    let mut in_container = pod(&objects(NORMAL));
    in_container["spec"]["containers"][0]["env"] = json!("DEEP");
    let mut in_request = admission::create_review("request", &pod(&objects(NORMAL)), "apps");
    in_request["request"]["unknownField"] = json!("DEEP");
    let mut in_old = admission::create_review("old", &pod(&objects(NORMAL)), "apps");
    in_old["request"]["oldObject"] = json!("DEEP");
    let mut in_template = deployment(&objects(NORMAL));
    in_template["spec"]["template"]["spec"]["unknownField"] = json!("DEEP");
    let mut in_options = admission::create_review("options", &pod(&objects(NORMAL)), "apps");
    in_options["request"]["options"] = json!("DEEP");

    // Whether the review is admitted: a field the webhook skips is skipped without recursion
    // (serde's skipping is iterative); one it reads is refused at serde_json's recursion limit.
    let cases = [
        (
            "in the pod",
            admission::create_review("pod", &in_pod, "apps"),
            true,
        ),
        (
            "in an annotation",
            admission::create_review("annotation", &in_annotations, "apps"),
            true,
        ),
        (
            "in a container",
            admission::create_review("container", &in_container, "apps"),
            false,
        ),
        ("in an unknown request field", in_request, true),
        ("in oldObject", in_old, true),
        ("in options", in_options, true),
        (
            "in a workload's template",
            admission::create_review("template", &in_template, "apps"),
            false,
        ),
    ];
    for (place, review, admitted) in cases {
        let (status, bytes) = server.post(&with_deep(&admission::body(&review)));
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(status, 200, "{place}: {text}");
        let answer: Value = serde_json::from_slice(&bytes).expect("JSON");
        let response = &answer["response"];
        assert_eq!(response["allowed"], admitted, "{place}: {text}");
        if !admitted {
            let message = response["status"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("cannot be read") && message.contains("recursion limit"),
                "{place}: {message}"
            );
            assert!(text.len() < 1024, "{place}: {text}");
        }
        server.still_serves();
    }
    // A whole body nested that deep is no review at all.
    let (status, bytes) = server.post(deep_json(DEEP).as_bytes());
    let text = String::from_utf8_lossy(&bytes);
    assert_eq!(status, 400, "{text}");
    assert!(text.len() < 1024, "{text}");
    server.still_serves();
}

#[test]
fn yaml_nested_deep_in_an_annotation_is_denied() {
    let mut server = Server::start();
    let cases = [
        (
            objects(&"[".repeat(60_000)),
            "annotation secrets-injector.io/objects: ",
        ),
        (
            objects(&format!("- {}", "{a: ".repeat(16_000))),
            "annotation secrets-injector.io/objects: ",
        ),
        (
            json!({
                "secrets-injector.io/objects": NORMAL,
                "secrets-injector.io/injector-resources": "[".repeat(4000),
            }),
            "annotation secrets-injector.io/injector-resources: ",
        ),
        (
            json!({
                "secrets-injector.io/objects": NORMAL,
                "secrets-injector.io/injector-resources": format!("limits: {}", "{a: ".repeat(1000)),
            }),
            "annotation secrets-injector.io/injector-resources: ",
        ),
    ];
    for (i, (annotations, start)) in cases.iter().enumerate() {
        let (message, _) = server.denial(&pod_review(&format!("yaml-{i}"), annotations));
        assert!(message.starts_with(start), "{message}");
        assert!(message.len() < 1024, "{message}");
        server.still_serves();
    }
}

#[test]
fn inject_refuses_a_document_nested_100000_deep_with_its_error_exit() {
    for document in [
        "[".repeat(DEEP).into_bytes(),
        format!("a: {}", "{a: ".repeat(DEEP)).into_bytes(),
        format!("{}\n", "- ".repeat(DEEP)).into_bytes(),
        deep_json(DEEP).into_bytes(),
    ] {
        let stderr = inject_failed(&inject(&document));
        assert!(
            stderr.starts_with("the input is not YAML or JSON: "),
            "{stderr}"
        );
        assert!(stderr.len() < 1024, "{stderr}");
    }
}

#[test]
fn quantities_with_huge_numbers_and_exponents_are_answered() {
    let mut server = Server::start();
    for (i, quantity) in [
        "1e999999999999999999".to_owned(),
        "1e-999999999999999999".to_owned(),
        "9".repeat(3000),
        format!("0.{}1", "0".repeat(3000)),
        format!("{}Ei", "9".repeat(3000)),
    ]
    .iter()
    .enumerate()
    {
        let annotations = json!({
            "secrets-injector.io/objects": NORMAL,
            "secrets-injector.io/injector-resources": format!("limits: {{memory: '{quantity}'}}"),
        });
        let (response, _) = server.answer(&pod_review(&format!("quantity-{i}"), &annotations));
        if response["allowed"] == false {
            let message = response["status"]["message"].as_str().unwrap_or_default();
            assert!(
                message.starts_with("annotation secrets-injector.io/injector-resources: "),
                "{message}"
            );
            assert!(message.len() < 1024, "{}", message.len());
        }
        server.still_serves();
    }
}

/// 500 objects with an unknown objectType, and 21,000 empty objects: a problem each.
/// A pod read into memory holds far more than its body: one map node per JSON object kept. A
/// pod of 70,000 volumes (2.6 MB, under --max-body-bytes) would hold about 110 MiB while it is
/// worked on, more than all reviews together may hold (48 MiB by default): it is denied before
/// it is read, saying how much it would hold and which flag bounds it, and counted.
#[test]
fn a_pod_that_would_hold_more_than_the_review_memory_is_denied_before_it_is_read() {
    const VOLUMES: usize = 70_000;
    let mut server = Server::start();
    let mut big = pod(&objects(NORMAL));
    big["spec"]["volumes"] = (0..VOLUMES)
        .map(|i| json!({"name": format!("v{i}"), "emptyDir": {}}))
        .collect();
    let body = admission::body(&admission::create_review("big", &big, "apps"));
    assert!(body.iter().filter(|&&b| b == b'{').count() > 2 * VOLUMES);
    let (response, len) = server.answer(&body);
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["uid"], "big");
    assert_eq!(
        (
            response["status"]["code"].as_u64(),
            response["status"]["reason"].as_str()
        ),
        (Some(413), Some("RequestEntityTooLarge"))
    );
    let message = response["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("this review would hold about ")
            && message.contains(&format!(
                "MiB while it is worked on ({} JSON objects in a body of {} KiB), more than all \
                 reviews together may hold (--review-memory-bytes=50331648)",
                body.iter().filter(|&&b| b == b'{').count(),
                body.len().div_ceil(1024)
            )),
        "{message}"
    );
    assert!(len < 1024, "{len}");
    let metrics = server.0.webhook.metrics();
    assert!(
        metrics
            .lines()
            .any(|l| l == "secrets_injector_rejected_requests_total{reason=\"review_memory\"} 1"),
        "{metrics}"
    );
    server.still_serves();
}

fn many_problems() -> [(String, &'static str); 2] {
    let unknown: String = (0..500)
        .map(|i| format!("- {{objectName: o{i}, objectType: bogus}}\n"))
        .collect();
    let empty = format!("[{}{{}}]", "{},".repeat(20_999));
    assert!(empty.len() < 64 * 1024);
    [
        (unknown, "; and 480 more problems"),
        (empty, "; and 20980 more problems"),
    ]
}

#[test]
fn denials_list_the_first_problems_and_count_the_rest() {
    let mut server = Server::start();
    let [(unknown, unknown_end), (empty, empty_end)] = many_problems();

    let (message, len) = server.denial(&pod_review("unknown", &objects(&unknown)));
    assert!(
        message.starts_with(
            "annotation secrets-injector.io/objects: objects[0] (objectName \"o0\"): objectType \
             \"bogus\" is not known (spelling and case matter); use ssmparameter, secretsmanager, \
             ssmparameterpath or secretsmanagerpath; objects[1] (objectName \"o1\"): objectType \
             \"bogus\""
        ),
        "{message}"
    );
    assert_eq!(
        message
            .matches("annotation secrets-injector.io/objects")
            .count(),
        1
    );
    assert!(message.contains("objects[19] ") && !message.contains("objects[20] "));
    assert!(message.ends_with(unknown_end), "{message}");
    assert!(message.len() < 4096, "{}", message.len());
    assert!(len < MAX_ANSWER_BYTES, "{len}");

    let (message, len) = server.denial(&pod_review("empty", &objects(&empty)));
    assert!(
        message.starts_with("annotation secrets-injector.io/objects: objects[0]: "),
        "{message}"
    );
    assert!(message.ends_with(empty_end), "{message}");
    assert!(len < MAX_ANSWER_BYTES, "the answer is {len} bytes");

    let (message, len) = server.denial(&deployment_update("deployment", &objects(&empty)));
    assert!(
        message.starts_with("spec.template: annotation "),
        "{message}"
    );
    assert!(message.ends_with(empty_end), "{message}");
    assert!(len < MAX_ANSWER_BYTES, "the answer is {len} bytes");
    server.still_serves();
}

#[test]
fn inject_says_the_first_problems_and_counts_the_rest() {
    for (list, end) in many_problems() {
        let stderr = inject_failed(&inject(&pod_manifest(&objects(&list))));
        assert!(
            stderr.contains("annotation secrets-injector.io/objects: objects[0]"),
            "{stderr}"
        );
        assert!(stderr.trim_end().ends_with(end), "{stderr}");
        assert!(stderr.len() < MAX_ANSWER_BYTES, "{}", stderr.len());
    }
}

/// As many admitted objects as fit in the annotation, each with an unknown field.
fn many_warnings() -> (String, usize) {
    let mut list = String::new();
    let mut count = 0;
    loop {
        let item = format!("- {{objectName: /p/{count}, objectType: ssmparameter, unknown: 1}}\n");
        if list.len() + item.len() > 64 * 1024 {
            return (list, count);
        }
        list.push_str(&item);
        count += 1;
    }
}

#[test]
fn warnings_list_the_first_and_count_the_rest() {
    let (list, count) = many_warnings();
    assert!(count > 1000, "{count}");
    let mut server = Server::start();
    let (response, _) = server.answer(&pod_review("warnings", &objects(&list)));
    assert_eq!(response["allowed"], true, "{response}");
    let warnings: Vec<&str> = response["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w.as_str().expect("a string"))
        .collect();
    assert!(warnings.len() <= 21, "{warnings:?}");
    assert!(warnings[0].starts_with("annotation secrets-injector.io/objects: objects[0]"));
    let listed = warnings.len() - 1;
    assert_eq!(
        warnings[listed],
        format!("and {} more warnings", count - listed)
    );
    // The API server keeps 4096 bytes of warnings in all.
    assert!(warnings.iter().map(|w| w.len()).sum::<usize>() < 4096);

    let output = inject(&pod_manifest(&objects(&list)));
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), listed + 1, "{stderr}");
    assert!(stderr.contains(&format!("and {} more warnings", count - listed)));
}

/// Hostile templates through `webhook serve`: deep nesting of every kind the parser knows, 64 KiB
/// of expressions, 32 templates reading each other, a loop without end and a huge string (which
/// the webhook compiles but never renders). Each is answered (denied where admission can know),
/// the answer stays short, and the server goes on serving.
#[test]
fn hostile_templates_are_answered_and_the_server_lives() {
    let mut server = Server::start();
    let template = |text: &str| {
        format!(
            "- name: out\n  template: {}\n",
            serde_json::Value::from(text)
        )
    };
    let deep = |open: &str, close: &str, n: usize| {
        template(&format!("{{{{ {}1{} }}}}", open.repeat(n), close.repeat(n)))
    };
    let ring: String = (0..32)
        .map(|i| {
            format!(
                "- name: T{i}\n  template: \"{{{{ T{} }}}}\"\n",
                (i + 1) % 32
            )
        })
        .collect();
    let expressions = template(&"{{ files | tojson }}".repeat(3_000));
    let denied = [
        (deep("(", ")", 20_000), "more than 64 operators"),
        (deep("[", "]", 20_000), "more than 64 operators"),
        (deep("{'a': ", "}", 5_000), "more than 64 operators"),
        (deep("-", "", 20_000), "more than 64 operators"),
        (deep("not ", "", 10_000), "more than 64 operators"),
        (deep("1 ~ ", "", 10_000), "more than 64 operators"),
        (
            template(&format!(
                "{}x{}",
                "{% if true %}".repeat(2_000),
                "{% endif %}".repeat(2_000)
            )),
            "nest more than 32 deep",
        ),
        (
            template(&format!(
                "{}{}",
                "{% for a in files %}".repeat(1_500),
                "{% endfor %}".repeat(1_500)
            )),
            "nest more than 32 deep",
        ),
        (ring, "is the file of templates[1]"),
        (
            template("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"),
            "syntax error",
        ),
    ];
    for (i, (templates, wanted)) in denied.iter().enumerate() {
        let mut annotations = objects(NORMAL);
        annotations["secrets-injector.io/templates"] = json!(templates);
        let (message, bytes) = server.denial(&pod_review(&format!("pod-{i}"), &annotations));
        assert!(
            message.starts_with("annotation secrets-injector.io/templates: ")
                && message.contains(wanted),
            "{i}: {message:.300}"
        );
        assert!(bytes < MAX_ANSWER_BYTES, "{bytes}");
        server.still_serves();
    }
    // Known only when rendered: admitted here, the injector stops them (fuel). And 3,000 flat
    // expressions filling the 64 KiB: compiled and checked in one review.
    for (i, templates) in [
        template(
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        ),
        template("{{ 'x' * 10**9 }}"),
        expressions,
    ]
    .iter()
    .enumerate()
    {
        let mut annotations = objects(NORMAL);
        annotations["secrets-injector.io/templates"] = json!(templates);
        let (answer, _) = server.answer(&pod_review(&format!("admitted-{i}"), &annotations));
        assert_eq!(answer["allowed"], true, "{:.300}", answer.to_string());
        server.still_serves();
    }
}
