//! The init container's `resources`: from the webhook's flags, or from the pod's
//! `injector-resources` annotation, checked as the API server would check them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::config::MutationConfig;
use super::quantity::Quantity;

/// The resources the init container may ask for. Extended resources and claims belong to the app.
const RESOURCE_NAMES: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];

/// A `ResourceRequirements` needs a few hundred bytes; the cap keeps parsing cheap for text
/// anyone who can create a pod controls.
const MAX_ANNOTATION_BYTES: usize = 4096;

/// Limits for parsing the annotation: no deep nesting, and no alias expansion worth the name
/// ("billion laughs").
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 8,
            flow_nesting_limit: 8,
            max_aliases: 16,
            max_anchors: 16,
            max_documents: 1,
            max_nodes: 1_000,
            max_events: 4_000,
            max_recorded_anchor_events: 1_000,
            // Counted in nodes above, in bytes here: aliases of a long value may not replay it
            // into more than twice the text itself.
            max_recorded_anchor_bytes: 2 * MAX_ANNOTATION_BYTES,
            max_total_scalar_bytes: 2 * MAX_ANNOTATION_BYTES,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: 1_000,
            max_replay_stack_depth: 8,
        },
        with_snippet: false,
    }
}

/// The `resources` of the init container from the webhook's flags: requests and limits of CPU and
/// memory (limits too, so namespaces whose ResourceQuota tracks limits admit the pod).
pub fn from_config(cfg: &MutationConfig) -> Value {
    json!({
        "limits": {
            "cpu": cfg.injector_cpu_limit.as_str(),
            "memory": cfg.injector_memory_limit.as_str(),
        },
        "requests": {
            "cpu": cfg.injector_cpu_request.as_str(),
            "memory": cfg.injector_memory_request.as_str(),
        },
    })
}

/// Parses and checks the `injector-resources` annotation: YAML (or JSON) of a
/// `ResourceRequirements` with `limits` and/or `requests` of cpu, memory and ephemeral-storage,
/// no request above its limit. Returns the normalized `resources` (quantities as strings).
pub fn parse_annotation(text: &str) -> Result<Value, String> {
    if text.len() > MAX_ANNOTATION_BYTES {
        return Err(format!(
            "is {} bytes, over the limit of {MAX_ANNOTATION_BYTES} bytes; give only limits and requests of cpu, memory and ephemeral-storage",
            text.len()
        ));
    }
    let document: Value = serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| {
        let detail = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
        let detail: String = detail.chars().take(200).collect();
        format!("is not valid YAML ({detail}); write e.g. {{limits: {{memory: 128Mi}}, requests: {{cpu: 50m, memory: 64Mi}}}}")
    })?;
    let Value::Object(fields) = document else {
        return Err(
            "must be a mapping with limits and/or requests, e.g. {limits: {memory: 128Mi}, requests: {cpu: 50m}}"
                .to_owned(),
        );
    };
    let mut problems = Vec::new();
    let mut normalized = Map::new();
    let mut values: BTreeMap<&str, BTreeMap<String, Quantity>> = BTreeMap::new();
    for (key, section) in &fields {
        let kind = match key.as_str() {
            "limits" => "limits",
            "requests" => "requests",
            "claims" => {
                problems.push(
                    "claims are not supported for the init container; remove them".to_owned(),
                );
                continue;
            }
            other => {
                problems.push(format!(
                    "unknown field {other:?}; only limits and requests are accepted"
                ));
                continue;
            }
        };
        let entries = match section {
            Value::Object(entries) => entries,
            Value::Null => continue,
            _ => {
                problems.push(format!(
                    "{kind} must be a mapping of resource names to quantities"
                ));
                continue;
            }
        };
        let mut out = Map::new();
        for (resource, raw) in entries {
            if !RESOURCE_NAMES.contains(&resource.as_str()) {
                problems.push(format!(
                    "{kind}.{resource}: not supported for the init container; use cpu, memory or ephemeral-storage"
                ));
                continue;
            }
            let text = match raw {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                _ => {
                    problems.push(format!(
                        "{kind}.{resource}: must be a quantity such as 64Mi or 100m"
                    ));
                    continue;
                }
            };
            match text.parse::<Quantity>() {
                Ok(quantity) => {
                    out.insert(resource.clone(), Value::String(text));
                    values
                        .entry(kind)
                        .or_default()
                        .insert(resource.clone(), quantity);
                }
                Err(message) => problems.push(format!("{kind}.{resource}: {message}")),
            }
        }
        if !out.is_empty() {
            normalized.insert(kind.to_owned(), Value::Object(out));
        }
    }
    if let (Some(limits), Some(requests)) = (values.get("limits"), values.get("requests")) {
        for (resource, request) in requests {
            if let Some(limit) = limits.get(resource)
                && request.nanos() > limit.nanos()
            {
                problems.push(format!(
                    "requests.{resource} {request} is more than limits.{resource} {limit}; a request must not exceed its limit"
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(Value::Object(normalized))
    } else {
        Err(problems.join("; "))
    }
}

/// Whether two `resources` mean the same thing to the API server: equal quantities
/// (`0.5` is `500m`), a request left out equal to its limit (the API server fills it in).
pub fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (effective(a), effective(b)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

type Effective = (BTreeMap<String, u128>, BTreeMap<String, u128>);

/// Limits and requests in nano units, requests defaulted from limits; `None` when something
/// else is there (claims, an unparsable quantity), which never matches.
fn effective(resources: Option<&Value>) -> Option<Effective> {
    let empty = Map::new();
    let fields = match resources {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(fields)) => fields,
        Some(_) => return None,
    };
    if fields.keys().any(|k| k != "limits" && k != "requests") {
        return None;
    }
    let section = |name: &str| -> Option<BTreeMap<String, u128>> {
        match fields.get(name) {
            None | Some(Value::Null) => Some(BTreeMap::new()),
            Some(Value::Object(entries)) => entries
                .iter()
                .map(|(resource, value)| {
                    let text = match value {
                        Value::String(text) => text.clone(),
                        Value::Number(number) => number.to_string(),
                        _ => return None,
                    };
                    let quantity: Quantity = text.parse().ok()?;
                    Some((resource.clone(), quantity.nanos()))
                })
                .collect(),
            Some(_) => None,
        }
    };
    let limits = section("limits")?;
    let mut requests = section("requests")?;
    for (resource, limit) in &limits {
        requests.entry(resource.clone()).or_insert(*limit);
    }
    Some((limits, requests))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_gives_requests_and_limits() {
        let cfg = MutationConfig::for_tests("i");
        assert_eq!(
            from_config(&cfg),
            json!({"limits": {"cpu": "200m", "memory": "64Mi"}, "requests": {"cpu": "50m", "memory": "32Mi"}})
        );
    }

    /// 15 aliases of a 3.5 KB value would replay 50 KB from 4 KiB of text: stopped at twice the
    /// text, with a message that says the YAML is not accepted.
    #[test]
    fn aliases_of_a_long_value_are_stopped() {
        let long = "x".repeat(3500);
        let aliases = (0..15).map(|i| format!("  k{i}: *v\n")).collect::<String>();
        let text = format!("limits:\n  cpu: &v {long}\nrequests:\n{aliases}");
        assert!(text.len() <= MAX_ANNOTATION_BYTES, "{}", text.len());
        let error = parse_annotation(&text).unwrap_err();
        assert!(error.contains("is not valid YAML"), "{error}");
        assert!(error.len() < 1024, "{}", error.len());
    }

    #[test]
    fn annotation_is_normalized() {
        let value =
            parse_annotation("limits:\n  memory: 128Mi\n  cpu: 1\nrequests:\n  cpu: 0.25\n")
                .unwrap();
        assert_eq!(
            value,
            json!({"limits": {"memory": "128Mi", "cpu": "1"}, "requests": {"cpu": "0.25"}})
        );
        let value = parse_annotation(r#"{"requests": {"ephemeral-storage": "1Gi"}}"#).unwrap();
        assert_eq!(value, json!({"requests": {"ephemeral-storage": "1Gi"}}));
        assert_eq!(parse_annotation("{}").unwrap(), json!({}));
    }

    #[test]
    fn bad_annotations_say_what_is_wrong() {
        let cases = [
            ("limits: [", "is not valid YAML"),
            ("- cpu", "must be a mapping with limits and/or requests"),
            ("", "must be a mapping with limits and/or requests"),
            (
                "limit: {cpu: 1}",
                "unknown field \"limit\"; only limits and requests are accepted",
            ),
            (
                "claims: [{name: gpu}]",
                "claims are not supported for the init container",
            ),
            (
                "limits: 1",
                "limits must be a mapping of resource names to quantities",
            ),
            (
                "limits: {nvidia.com/gpu: 1}",
                "limits.nvidia.com/gpu: not supported for the init container",
            ),
            (
                "requests: {memory: 64MB}",
                "requests.memory: \"64MB\" is not a Kubernetes quantity",
            ),
            (
                "requests: {memory: [1]}",
                "requests.memory: must be a quantity",
            ),
            ("requests: {cpu: -1}", "requests.cpu: \"-1\" is negative"),
            (
                "limits: {memory: 64Mi}\nrequests: {memory: 128Mi}",
                "requests.memory 128Mi is more than limits.memory 64Mi; a request must not exceed its limit",
            ),
        ];
        for (text, expected) in cases {
            let err = parse_annotation(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn hostile_yaml_is_refused_quickly() {
        let laughs = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n\
                      c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n\
                      e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nlimits: {memory: 64Mi}\n";
        let deep = format!("limits: {}1{}", "[".repeat(500), "]".repeat(500));
        let big = format!("limits: {{memory: 64Mi}}\n#{}", "x".repeat(5000));
        for text in [laughs.to_owned(), deep] {
            let started = std::time::Instant::now();
            let err = parse_annotation(&text).unwrap_err();
            assert!(started.elapsed() < std::time::Duration::from_millis(500));
            assert!(err.starts_with("is not valid YAML ("), "{err}");
            assert!(err.len() < 400, "{err}");
        }
        let err = parse_annotation(&big).unwrap_err();
        assert!(
            err.starts_with(&format!(
                "is {} bytes, over the limit of 4096 bytes",
                big.len()
            )),
            "{err}"
        );
    }

    #[test]
    fn all_problems_are_reported() {
        let err = parse_annotation("limits: {gpu: 1, memory: x}\nfoo: 1").unwrap_err();
        assert!(err.contains("unknown field \"foo\""), "{err}");
        assert!(err.contains("limits.gpu: not supported"), "{err}");
        assert!(
            err.contains("limits.memory: \"x\" is not a Kubernetes quantity"),
            "{err}"
        );
    }

    #[test]
    fn sameness_is_semantic() {
        let a = json!({"limits": {"cpu": "0.5", "memory": "1Gi"}, "requests": {"cpu": "0.5", "memory": "1024Mi"}});
        let b = json!({"limits": {"cpu": "500m", "memory": "1024Mi"}});
        assert!(same(Some(&a), Some(&b)));
        assert!(!same(Some(&a), Some(&json!({"limits": {"cpu": "500m"}}))));
        assert!(same(None, Some(&json!({}))));
        assert!(!same(Some(&json!({"claims": []})), Some(&json!({}))));
        assert!(!same(
            Some(&json!({"limits": {"cpu": "x"}})),
            Some(&json!({"limits": {"cpu": "x"}}))
        ));
    }
}
