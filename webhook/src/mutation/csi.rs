//! `--csi-volumes=rewrite`: a pod volume of the Secrets Store CSI driver whose SecretProviderClass
//! is an AWS one becomes an in-memory volume under its own name, filled by an init container of
//! its own (`secrets-injector-csi-<volume>`) from the class's objects. The app's mounts of it
//! (paths and `subPath` included) stay as they are, made read-only. A class of another provider,
//! or one that syncs a Secret, is left to the CSI driver with a warning.

use std::sync::Arc;

use json_patch::PatchOperation;
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, ReplaceOperation};
use serde_json::{Map, Value, json};

use secrets_injector_objects::annotations::{
    BIN_VOLUME_NAME, DEFAULT_MOUNT_PATH, INIT_CONTAINER_NAME, INJECT, REFRESH_CONTAINER_NAME,
    VOLUME_NAME,
};
use secrets_injector_objects::class::{self, ClassSpec, KIND, Refusal};
use secrets_injector_objects::error;
use secrets_injector_objects::mode::{AppIdentity, FileMode};
use secrets_injector_objects::plan::Plan;
use secrets_injector_objects::settings::Settings;

use super::assume_role;
use super::classes::Context;
use super::config::{CsiVolumes, MutationConfig};
use super::env::EnvContainers;
use super::injection::{Injection, copied_mount_problems, resolve_region};
use super::patch;
use super::provider_class::{self, Found};
use super::resources;
use crate::pod::{self, ContainerList, ContainerRef, Targets};

/// Prefix of the init container of each rewritten volume.
pub const CONTAINER_PREFIX: &str = "secrets-injector-csi-";
/// The longest container name the API server accepts (a DNS label).
const MAX_NAME: usize = 63;

/// One volume to rewrite: where it is and the init container that fills it.
#[derive(Debug)]
pub struct Rewrite {
    pub volume: String,
    pub volume_index: usize,
    pub container: Map<String, Value>,
    /// What the init container fetches (`webhook policy` reads it).
    pub plan: Arc<Plan>,
}

/// What the pod's CSI volumes ask for.
#[derive(Debug, Default)]
pub struct CsiAsk {
    pub rewrites: Vec<Rewrite>,
    pub warnings: Vec<String>,
    /// Reasons to deny the pod.
    pub problems: Vec<String>,
}

/// The init container's name for a volume: the prefix and the volume's name, shortened to the
/// 63-character limit with a stable hash of the whole name, so two long names never share one.
pub fn container_name(volume: &str) -> String {
    named(CONTAINER_PREFIX, volume)
}

/// `prefix` and the volume's name, shortened as [`container_name`] is.
pub(super) fn named(prefix: &str, volume: &str) -> String {
    let name = format!("{prefix}{volume}");
    if name.len() <= MAX_NAME {
        return name;
    }
    // FNV-1a: stable across versions and platforms, unlike the standard library's hasher.
    let hash = volume
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    let suffix = format!("-{:08x}", hash as u32);
    let mut cut = MAX_NAME - suffix.len();
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", name[..cut].trim_end_matches('-'))
}

/// The class a volume names when it is a volume of the Secrets Store CSI driver (`Some("")` when
/// it names none).
fn csi_class(volume: &Value) -> Option<&str> {
    let csi = volume.get("csi")?;
    if csi.get("driver").and_then(Value::as_str) != Some(class::CSI_DRIVER) {
        return None;
    }
    Some(
        csi.get("volumeAttributes")
            .and_then(|a| a.get(class::CSI_CLASS_ATTRIBUTE))
            .and_then(Value::as_str)
            .unwrap_or(""),
    )
}

/// Reads the pod's CSI volumes and checks their classes.
pub fn build(pod: &Value, cfg: &MutationConfig, ctx: &Context<'_>) -> CsiAsk {
    let mut ask = CsiAsk::default();
    if cfg.csi_volumes != CsiVolumes::Rewrite || pod::annotation(pod, INJECT) == Some("false") {
        return ask;
    }
    let namespace = ctx.namespace(pod);
    for (index, volume) in pod::volumes(pod).iter().enumerate() {
        let Some(class_name) = csi_class(volume) else {
            continue;
        };
        let name = volume.get("name").and_then(Value::as_str).unwrap_or("");
        let label = format!("volume {name:?} (CSI, {KIND} {class_name:?})");
        if pod::is_windows(pod) {
            // The injector's init container needs Linux; the driver serves Windows nodes.
            ask.warnings.push(format!(
                "{label}: left to the CSI driver: the pod runs on Windows (spec.os.name: windows)"
            ));
            continue;
        }
        if [VOLUME_NAME, BIN_VOLUME_NAME].contains(&name) {
            ask.problems.push(format!(
                "{label}: the volume name {name:?} is the webhook's own; rename the volume (and \
                 its mounts)"
            ));
            continue;
        }
        if class_name.is_empty() {
            ask.warnings.push(format!(
                "volume {name:?}: a {} volume without volumeAttributes.{} is left to the CSI driver",
                class::CSI_DRIVER,
                class::CSI_CLASS_ATTRIBUTE
            ));
            continue;
        }
        // A pod's controller retries a denial; a workload applied before its classes (Helm
        // orders custom resources last) must not be refused for it.
        let mut not_there = |reason: String| {
            if ctx.template {
                ask.warnings.push(format!(
                    "{label}: {reason}; pods of this template will be denied until it exists"
                ));
            } else {
                ask.problems.push(format!("{label}: {reason}"));
            }
        };
        let spec = match provider_class::find(cfg, namespace, class_name) {
            Found::Spec(spec) => spec,
            Found::Missing => {
                not_there(provider_class::missing(class_name, namespace));
                continue;
            }
            Found::Unavailable(reason) => {
                not_there(provider_class::unavailable(class_name, &reason));
                continue;
            }
            Found::Refused(Refusal::Invalid(errors)) => {
                ask.problems.push(format!("volume {name:?}: {errors}"));
                continue;
            }
            Found::Refused(refusal) => {
                ask.warnings.push(format!(
                    "{label}: left to the CSI driver: {}",
                    refusal.reason()
                ));
                continue;
            }
        };
        let clash = pod::containers(pod, ContainerList::Containers)
            .iter()
            .any(|c| pod::name(c) == container_name(name));
        if clash {
            ask.problems.push(format!(
                "container name {:?} is reserved for the init container of {label}; rename the container",
                container_name(name)
            ));
            continue;
        }
        match rewrite(pod, cfg, index, name, class_name, spec) {
            Ok((rewrite, warnings)) => {
                ask.rewrites.push(rewrite);
                ask.warnings.extend(warnings);
            }
            Err(problems) => ask.problems.extend(
                problems
                    .into_iter()
                    .map(|problem| format!("volume {name:?}: {problem}")),
            ),
        }
    }
    ask
}

/// The containers that mount the volume, regular ones first (the first of them is whose
/// identity and AWS env the init container takes), else every regular container.
pub(super) fn mounting(pod: &Value, volume: &str) -> Targets {
    let mut found = Vec::new();
    for list in [ContainerList::Containers, ContainerList::InitContainers] {
        for (index, container) in pod::containers(pod, list).iter().enumerate() {
            let mounts_it = pod::mounts(container)
                .iter()
                .any(|m| m.get("name").and_then(Value::as_str) == Some(volume));
            if mounts_it {
                found.push(ContainerRef { list, index });
            }
        }
    }
    if found.is_empty() {
        found = (0..pod::containers(pod, ContainerList::Containers).len())
            .map(|index| ContainerRef {
                list: ContainerList::Containers,
                index,
            })
            .collect();
    }
    Targets {
        found,
        missing: Vec::new(),
    }
}

/// The checked plan and the init container of one volume, or every problem.
fn rewrite(
    pod: &Value,
    cfg: &MutationConfig,
    volume_index: usize,
    volume: &str,
    class_name: &str,
    spec: ClassSpec,
) -> Result<(Rewrite, Vec<String>), Vec<String>> {
    let targets = mounting(pod, volume);
    let first = targets.first().and_then(|at| pod::container(pod, at));
    let identity = pod::identity(pod, first);
    let mut problems = Vec::new();
    let region = match spec.region.clone() {
        Some(region) => Some(region),
        None => resolve_region(pod, cfg, first, &mut problems),
    };
    let copied_env = first.map(pod::copied_env).unwrap_or_default();
    let copied_mounts = first
        .map(|first| pod::copied_mounts(first, &copied_env))
        .unwrap_or_default();
    if let Some(first) = first {
        problems.extend(copied_mount_problems(first, &copied_mounts));
    }
    let Some(region) = region.filter(|_| problems.is_empty()) else {
        return Err(problems);
    };
    let settings = Settings {
        region,
        failover_region: spec.failover_region.clone(),
        path_translation: spec
            .path_translation
            .as_ref()
            .map(|(_, read)| *read)
            .unwrap_or_default(),
        default_mode: FileMode::DEFAULT,
        env_file: None,
    };
    let plan = cfg
        .plans
        .parse(&spec.objects, settings)
        .map_err(|errors| vec![class::class_errors(class_name, &errors).to_string()])?;
    let app = AppIdentity {
        run_as_user: identity.run_as_user.filter(|&user| user != 0),
        fs_group: identity.fs_group,
    };
    let unreadable = plan.unreadable(app);
    if !unreadable.is_empty() {
        return Err(vec![format!(
            "{KIND} {class_name}: {}",
            error::message(&unreadable)
        )]);
    }
    let mut args = vec![
        format!("--mount-path={DEFAULT_MOUNT_PATH}"),
        format!("--region={}", plan.settings.region),
    ];
    if let Some(failover) = &spec.failover_region {
        args.push(format!("--failover-region={failover}"));
    }
    if let Some((text, _)) = &spec.path_translation {
        args.push(format!("--path-translation={text}"));
    }
    if let Some(role) = &spec.assume_role {
        args.extend(assume_role::class_args(role));
    }
    args.push(format!("--objects={}", spec.objects));
    let mut warnings = spec.warnings.clone();
    warnings.extend(
        plan.warnings
            .iter()
            .map(|warning| class::class_warning(class_name, warning)),
    );
    let injection = Injection {
        plan: Arc::clone(&plan),
        mount_path: DEFAULT_MOUNT_PATH.to_owned(),
        targets,
        identity,
        init_first: true,
        resources: resources::from_config(cfg),
        args,
        copied_env,
        copied_mounts,
        refresh: None,
        env: EnvContainers::default(),
        warnings: Vec::new(),
    };
    let mut container = patch::desired_container(injection, cfg);
    container.insert("name".to_owned(), json!(container_name(volume)));
    // The injector writes into this volume (its first mount), not the webhook's own.
    if let Some(mount) = container
        .get_mut("volumeMounts")
        .and_then(Value::as_array_mut)
        .and_then(|mounts| mounts.first_mut())
    {
        mount["name"] = json!(volume);
    }
    Ok((
        Rewrite {
            volume: volume.to_owned(),
            volume_index,
            container,
            plan,
        },
        warnings,
    ))
}

fn ptr(tokens: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(tokens.iter().copied())
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

/// The operations of the rewrites on `pod` (the pod as it is after the webhook's other
/// operations, so positions are right).
pub fn ops(pod: &Value, rewrites: Vec<Rewrite>, cfg: &MutationConfig) -> Vec<PatchOperation> {
    let mut ops = Vec::new();
    if rewrites.is_empty() {
        return ops;
    }
    patch::status_annotation(pod, &mut ops);
    for rewrite in &rewrites {
        let index = rewrite.volume_index.to_string();
        ops.push(PatchOperation::Replace(ReplaceOperation {
            path: ptr(&["spec", "volumes", &index]),
            value: json!({
                "name": rewrite.volume,
                "emptyDir": {"medium": "Memory", "sizeLimit": cfg.volume_size_limit.as_str()},
            }),
        }));
        read_only_mounts(pod, &rewrite.volume, &mut ops);
    }
    init_containers(pod, rewrites, &mut ops);
    ops
}

/// Every mount of the volume, in any container, made read-only: only its init container (and
/// refresh sidecar) writes.
fn read_only_mounts(pod: &Value, volume: &str, ops: &mut Vec<PatchOperation>) {
    for list in ContainerList::ALL {
        for (c, container) in pod::containers(pod, list).iter().enumerate() {
            let name = pod::name(container);
            if list == ContainerList::InitContainers
                && (name.starts_with(CONTAINER_PREFIX) || pod::is_own_container(name))
            {
                continue;
            }
            for (m, mount) in pod::mounts(container).iter().enumerate() {
                if mount.get("name").and_then(Value::as_str) == Some(volume)
                    && mount.get("readOnly") != Some(&Value::Bool(true))
                {
                    let (c, m) = (c.to_string(), m.to_string());
                    ops.push(add(
                        ptr(&["spec", list.key(), &c, "volumeMounts", &m, "readOnly"]),
                        Value::Bool(true),
                    ));
                }
            }
        }
    }
}

/// The init containers: one already there (a re-invocation) is set to the current one; new ones
/// go right after the webhook's own, before the pod's init containers, which may read the files
/// as they could read the CSI driver's.
fn init_containers(pod: &Value, rewrites: Vec<Rewrite>, ops: &mut Vec<PatchOperation>) {
    let init = pod::containers(pod, ContainerList::InitContainers);
    let mut at = init
        .iter()
        .take_while(|c| [INIT_CONTAINER_NAME, REFRESH_CONTAINER_NAME].contains(&pod::name(c)))
        .count();
    let has_list = pod
        .get("spec")
        .and_then(|spec| spec.get("initContainers"))
        .is_some_and(Value::is_array);
    let mut new = Vec::new();
    for Rewrite { container, .. } in rewrites {
        let name = container.get("name").and_then(Value::as_str).unwrap_or("");
        match init.iter().position(|c| pod::name(c) == name) {
            Some(i) => {
                let existing = init[i].as_object();
                let same = existing.is_some_and(|fields| {
                    container.iter().all(|(k, v)| match k.as_str() {
                        "resources" => resources::same(fields.get(k), Some(v)),
                        _ => fields.get(k) == Some(v),
                    }) && fields.keys().all(|k| {
                        container.contains_key(k) || patch::KEPT_FIELDS.contains(&k.as_str())
                    })
                });
                if !same {
                    let mut desired = container;
                    for kept in patch::KEPT_FIELDS {
                        if let Some(value) = existing.and_then(|fields| fields.get(kept)) {
                            desired.insert(kept.to_owned(), value.clone());
                        }
                    }
                    ops.push(PatchOperation::Replace(ReplaceOperation {
                        path: ptr(&["spec", "initContainers", &i.to_string()]),
                        value: Value::Object(desired),
                    }));
                }
            }
            None => new.push(Value::Object(container)),
        }
    }
    if !has_list {
        if !new.is_empty() {
            ops.push(add(ptr(&["spec", "initContainers"]), Value::Array(new)));
        }
        return;
    }
    for container in new {
        ops.push(add(
            ptr(&["spec", "initContainers", &at.to_string()]),
            container,
        ));
        at += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_fit_and_stay_distinct() {
        assert_eq!(container_name("secrets"), "secrets-injector-csi-secrets");
        let long_a = format!("{}a", "v".repeat(62));
        let long_b = format!("{}b", "v".repeat(62));
        let (a, b) = (container_name(&long_a), container_name(&long_b));
        assert!(a.len() <= MAX_NAME && b.len() <= MAX_NAME, "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(a, container_name(&long_a));
        assert!(a.starts_with(CONTAINER_PREFIX));
        let exact = "v".repeat(MAX_NAME - CONTAINER_PREFIX.len());
        assert_eq!(container_name(&exact), format!("{CONTAINER_PREFIX}{exact}"));
        // A cut that would end in '-' does not leave "--" before the hash.
        let dashes = format!("{}-{}", "v".repeat(32), "w".repeat(40));
        assert!(!container_name(&dashes).contains("--"));
    }
}
