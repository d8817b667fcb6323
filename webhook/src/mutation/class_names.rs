//! The SecretProviderClasses a pod (or pod template) names, listed before the mutation runs so
//! `webhook serve` can look each up once, all at the same time, instead of once per volume while
//! the mutation waits: the `secret-provider-class` annotation and, under `--csi-volumes=rewrite`,
//! the `secretProviderClass` attribute of each Secrets Store CSI volume. Distinct names, in the
//! order the pod gives them, at most [`MAX_CLASS_NAMES`]; a name the API server could not hold
//! (not a DNS subdomain) is left out, as the mutation denies it without looking it up.

use serde_json::Value;

use secrets_injector_objects::annotations::{INJECT, SECRET_PROVIDER_CLASS};
use secrets_injector_objects::class::{self, CSI_CLASS_ATTRIBUTE, CSI_DRIVER};

use super::classes::{Context, MAX_CLASS_NAMES};
use super::config::{CsiVolumes, MutationConfig};
use crate::pod;

/// The classes to look up for one pod.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassNames {
    /// Where the mutation looks them up (`Context::namespace`).
    pub namespace: String,
    pub names: Vec<String>,
    /// Distinct valid names past [`MAX_CLASS_NAMES`], not listed.
    pub more: usize,
}

impl ClassNames {
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.more == 0
    }

    fn add(&mut self, name: &str) {
        if name.is_empty()
            || class::check_name(name).is_err()
            || self.names.iter().any(|n| n == name)
        {
            return;
        }
        if self.names.len() < MAX_CLASS_NAMES {
            self.names.push(name.to_owned());
        } else {
            // Counted, not deduplicated: only whether there are more matters.
            self.more += 1;
        }
    }
}

/// The classes `pod` names that the mutation under `cfg` will look up.
pub fn in_pod(pod: &Value, ctx: &Context<'_>, cfg: &MutationConfig) -> ClassNames {
    let mut names = ClassNames {
        namespace: ctx.namespace(pod).to_owned(),
        ..ClassNames::default()
    };
    if !cfg.classes_enabled() || pod::annotation(pod, INJECT) == Some("false") {
        return names;
    }
    if let Some(name) = pod::annotation(pod, SECRET_PROVIDER_CLASS) {
        names.add(name);
    }
    let volumes = pod::volumes(pod);
    // More CSI volumes than are rewritten: the mutation denies the pod without a lookup.
    let too_many = || {
        volumes
            .iter()
            .filter(|v| v.pointer("/csi/driver").and_then(Value::as_str) == Some(CSI_DRIVER))
            .nth(cfg.max_csi_volumes)
            .is_some()
    };
    if cfg.csi_volumes == CsiVolumes::Rewrite && !pod::is_windows(pod) && !too_many() {
        for volume in volumes {
            let csi = volume.get("csi");
            if csi.and_then(|c| c.get("driver")).and_then(Value::as_str) != Some(CSI_DRIVER) {
                continue;
            }
            let name = csi
                .and_then(|c| c.get("volumeAttributes"))
                .and_then(|a| a.get(CSI_CLASS_ATTRIBUTE))
                .and_then(Value::as_str);
            if let Some(name) = name {
                names.add(name);
            }
        }
    }
    names
}

/// Whether raw JSON may name a class: a cheap test before reading a large object whole. A key
/// written with escapes (`\u0073...`) escapes it; the mutation then finds the class in the cache
/// or says it was not looked up, never more.
pub fn may_name_classes(raw: &str, cfg: &MutationConfig) -> bool {
    cfg.classes_enabled()
        && (raw.contains(SECRET_PROVIDER_CLASS)
            || (cfg.csi_volumes == CsiVolumes::Rewrite && raw.contains(CSI_DRIVER)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn cfg(csi: CsiVolumes) -> MutationConfig {
        let mut cfg = MutationConfig::for_tests("injector:1");
        cfg.secret_provider_classes = true;
        cfg.csi_volumes = csi;
        cfg
    }

    fn csi(name: &str, class: &str) -> Value {
        json!({"name": name, "csi": {"driver": CSI_DRIVER, "volumeAttributes": {CSI_CLASS_ATTRIBUTE: class}}})
    }

    #[test]
    fn distinct_valid_names_in_order_and_bounded() {
        let mut volumes = vec![
            csi("a", "shared"),
            csi("b", "shared"),
            csi("c", "x/../../../other/secretproviderclasses/victim?a=b"),
            json!({"name": "d", "csi": {"driver": "other.csi", "volumeAttributes": {CSI_CLASS_ATTRIBUTE: "other"}}}),
            csi("e", "second"),
        ];
        volumes.extend((0..30).map(|i| csi(&format!("v{i}"), &format!("class-{i}"))));
        let pod = json!({
            "metadata": {"namespace": "own", "annotations": {SECRET_PROVIDER_CLASS: "first"}},
            "spec": {"volumes": volumes},
        });
        let ctx = Context {
            namespace: Some("team"),
            template: false,
        };
        let mut rewrite = cfg(CsiVolumes::Rewrite);
        // Past --max-csi-volumes the mutation denies the pod unlooked: only the annotation.
        let names = in_pod(&pod, &ctx, &rewrite);
        assert_eq!(names.names, ["first"]);
        rewrite.max_csi_volumes = 64;
        let names = in_pod(&pod, &ctx, &rewrite);
        assert_eq!(names.namespace, "team");
        assert_eq!(&names.names[..3], ["first", "shared", "second"]);
        assert_eq!(names.names.len(), MAX_CLASS_NAMES);
        assert_eq!(names.more, 33 - MAX_CLASS_NAMES);
        // Without the rewrite, only the annotation; with injection off, nothing.
        let names = in_pod(&pod, &Context::default(), &cfg(CsiVolumes::Ignore));
        assert_eq!(
            (names.namespace.as_str(), &names.names[..]),
            ("own", &["first".to_owned()][..])
        );
        let mut off = pod.clone();
        off["metadata"]["annotations"][INJECT] = json!("false");
        assert!(in_pod(&off, &ctx, &rewrite).is_empty());
        assert!(in_pod(&pod, &ctx, &MutationConfig::for_tests("i")).is_empty());
    }
}
