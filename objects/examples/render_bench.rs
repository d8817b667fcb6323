//! The cost of templates, for BENCHMARKS.md ("Templates"): 32 templates over 50 values (40
//! parameters and 10 JSON secrets), compiled once as the injector does, then rendered as the
//! init container (and each refresh that changed a value) renders them; and the admission check
//! of the same list, without a cache.
//!
//!   cargo run --release -p secrets-injector-objects --example render_bench [RUNS]

use std::time::{Duration, Instant};

use secrets_injector_objects::relpath::RelPath;
use secrets_injector_objects::template;
use secrets_injector_objects::{Settings, parse};

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map_or(2000, |n| n.parse().expect("RUNS is a number"));
    let mut objects = String::new();
    let mut files: Vec<(RelPath, Vec<u8>)> = Vec::new();
    for i in 0..40 {
        objects.push_str(&format!(
            "- {{objectName: /app/param{i}, objectType: ssmparameter, objectAlias: PARAM_{i}}}\n"
        ));
        files.push((
            format!("PARAM_{i}").parse().unwrap(),
            format!("value-{i}-with/some:chars\"'").into_bytes(),
        ));
    }
    for i in 0..10 {
        objects.push_str(&format!(
            "- {{objectName: app/secret{i}, objectType: secretsmanager, objectAlias: secret{i}}}\n"
        ));
        let value = serde_json::json!({
            "username": format!("user{i}"),
            "password": format!("p/{i}\"x'y\\z{{{{"),
            "host": "db.internal",
            "port": 5432,
        });
        files.push((
            format!("secret{i}").parse().unwrap(),
            value.to_string().into_bytes(),
        ));
    }
    let plan = parse(&objects, Settings::new("us-east-1")).expect("objects");
    let mut templates = String::new();
    for t in 0..32 {
        let s = t % 10;
        let p = t % 40;
        let body = match t % 4 {
            0 => format!(
                "{{% set c = files.secret{s} | fromjson %}}postgres://{{{{ c.username | urlencode }}}}:\
                 {{{{ c.password | urlencode }}}}@{{{{ c.host }}}}:{{{{ c.port }}}}/app?opt={{{{ PARAM_{p} | urlencode }}}}"
            ),
            1 => format!(
                "database:\n  user: {{{{ (files.secret{s} | fromjson).username | tojson }}}}\n  \
                 password: {{{{ (files.secret{s} | fromjson).password | tojson }}}}\n  \
                 option: {{{{ PARAM_{p} | toyaml }}}}\n"
            ),
            2 => "{% for name, value in files | items %}{% if name is startingwith('PARAM') %}\
                  {{ name }}={{ value | shellquote }}\n{% endif %}{% endfor %}"
                .to_owned(),
            _ => format!(
                "whole:\n  {{{{ files.secret{s} | fromjson | toyaml | indent(2) }}}}\n\
                 b64: {{{{ PARAM_{p} | b64encode }}}}\n"
            ),
        };
        templates.push_str(&format!(
            "- name: out{t}\n  template: {}\n",
            serde_json::Value::from(body)
        ));
    }

    let checks: Vec<Duration> = (0..runs.min(500))
        .map(|_| {
            let started = Instant::now();
            let checked = template::parse(&templates, objects.len(), Some(&plan));
            let elapsed = started.elapsed();
            checked.expect("templates accepted");
            elapsed
        })
        .collect();
    let checked = template::parse(&templates, objects.len(), Some(&plan)).unwrap();
    let started = Instant::now();
    let compiled = checked.compile().expect("compiles");
    let compile = started.elapsed();
    let mut renders: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            let out = compiled
                .render(files.iter().map(|(p, v)| (p, v.as_slice())))
                .expect("renders");
            let elapsed = started.elapsed();
            assert_eq!(out.len(), 32);
            elapsed
        })
        .collect();
    let bytes: usize = compiled
        .render(files.iter().map(|(p, v)| (p, v.as_slice())))
        .unwrap()
        .iter()
        .map(|r| r.bytes.len())
        .sum();
    renders.sort();
    let mut checks = checks;
    checks.sort();
    let pct = |v: &[Duration], p: f64| v[((v.len() - 1) as f64 * p) as usize];
    println!(
        "32 templates over 50 values ({} bytes of templates, {bytes} bytes rendered), {runs} runs",
        templates.len()
    );
    println!(
        "render all 32: median {:.1} us, p99 {:.1} us",
        pct(&renders, 0.5).as_secs_f64() * 1e6,
        pct(&renders, 0.99).as_secs_f64() * 1e6
    );
    println!("compile all 32 once: {:.1} us", compile.as_secs_f64() * 1e6);
    println!(
        "admission check of all 32 (parse, compile, names, filters): median {:.1} us, p99 {:.1} us",
        pct(&checks, 0.5).as_secs_f64() * 1e6,
        pct(&checks, 0.99).as_secs_f64() * 1e6
    );
}
