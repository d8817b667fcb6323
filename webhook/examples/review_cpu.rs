//! The CPU one review takes in process (AdmissionReview bytes in, answer out, as `/mutate` runs
//! it minus HTTP and TLS), for BENCHMARKS.md ("Templates"): the seeds' pod with IRSA as EKS hands
//! it over, without templates, with the two templates of the docs' example, and with 32 templates;
//! the plan and template caches warm, as they are for every replica of a workload after the first.
//! CPU time is the thread's own (`/proc/thread-self/schedstat`), so other load on the machine
//! does not count.
//!
//!   cargo run --release -p secrets-injector-webhook --example review_cpu [RUNS]

use secrets_injector_e2e::admission::{body, create_review};
use secrets_injector_e2e::eks::add_irsa;
use secrets_injector_webhook::admission::{self, Verdict};
use secrets_injector_webhook::mutation::MutationConfig;
use serde_json::{Value, json};

const TWO: &str = r#"- name: DATABASE_URL
  template: "postgres://{{ SECRET_USERNAME | urlencode }}:{{ SECRET_PASSWORD | urlencode }}@db:5432/app"
- name: config.yaml
  delimiters: ["[[", "]]"]
  template: |
    database:
      user: [[ SECRET_USERNAME | tojson ]]
      password: [[ SECRET_PASSWORD | tojson ]]
    api_key: [[ (files.test_secret | fromjson).api_key | default("none") | tojson ]]
"#;

/// This thread's CPU time so far, in nanoseconds.
fn cpu_ns() -> u64 {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("CPU time")
}

fn pod(templates: Option<&str>) -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/seeds-example-pod.yaml"
    );
    let mut pod: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    add_irsa(
        &mut pod,
        "arn:aws:iam::123456789012:role/app",
        "us-east-1",
        &[],
    );
    if let Some(templates) = templates {
        pod["metadata"]["annotations"]["secrets-injector.io/templates"] = json!(templates);
    }
    body(&create_review(
        "4f9c7a52-3c3e-4d5e-9a7e-0c1e2f3a4b5c",
        &pod,
        "team-a",
    ))
}

fn main() {
    let runs: u64 = std::env::args()
        .nth(1)
        .map_or(20_000, |n| n.parse().expect("RUNS is a number"));
    let many: String = (0..32)
        .map(|i| {
            format!(
                "- name: out{i}\n  template: \"{{{{ SECRET_USERNAME | urlencode }}}}:{{{{ \
                 (files.test_secret | fromjson).password | tojson }}}} {{{{ files._test_parameter \
                 | default('') }}}}\"\n"
            )
        })
        .collect();
    let cases = [
        ("no templates", None),
        ("2 templates (the docs' example)", Some(TWO)),
        ("32 templates", Some(many.as_str())),
    ];
    println!("per review, {runs} reviews each:");
    for (name, templates) in cases {
        let body = pod(templates);
        let cfg = MutationConfig {
            default_region: Some("us-east-1".to_owned()),
            ..MutationConfig::for_tests("public.ecr.aws/example/secrets-injector:0.1.0")
        };
        let review = |cfg: &MutationConfig| {
            let request = admission::parse(&body).expect("a review");
            let outcome = admission::respond(&request, cfg);
            assert!(matches!(outcome.verdict, Verdict::Mutated), "{name}");
        };
        for _ in 0..200 {
            review(&cfg);
        }
        // Caches cold: a fresh configuration for each review (the first replica of a workload).
        let cold_runs = (runs / 100).max(20);
        let configs: Vec<MutationConfig> = (0..cold_runs)
            .map(|_| MutationConfig {
                default_region: Some("us-east-1".to_owned()),
                ..MutationConfig::for_tests("public.ecr.aws/example/secrets-injector:0.1.0")
            })
            .collect();
        let started = cpu_ns();
        for cold in &configs {
            review(cold);
        }
        let cold = (cpu_ns() - started) as f64 / cold_runs as f64 / 1e3;
        // The least of five rounds: the round least disturbed by the rest of the machine.
        let warm = (0..5)
            .map(|_| {
                let started = cpu_ns();
                for _ in 0..runs / 5 {
                    review(&cfg);
                }
                (cpu_ns() - started) as f64 / (runs / 5) as f64 / 1e3
            })
            .fold(f64::INFINITY, f64::min);
        println!(
            "  {name}: {warm:.1} us of CPU with the caches warm, {cold:.1} us cold ({} bytes of \
             review)",
            body.len()
        );
    }
}
