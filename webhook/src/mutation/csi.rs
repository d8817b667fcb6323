//! `--csi-volumes=rewrite`: a pod volume of the Secrets Store CSI driver whose SecretProviderClass
//! is an AWS one becomes an in-memory volume under its own name, filled by an init container of
//! its own (`secrets-injector-csi-<volume>`) from the class's objects. The app's mounts of it
//! (paths and `subPath` included) stay as they are, made read-only. A class of another provider,
//! or one that syncs a Secret, is left to the CSI driver with a warning. Volumes rewritten by an
//! earlier mutation (their init container is there, and the pod's status says so) are adopted as
//! they are: their class is no longer written in the pod, but the webhook still places and
//! converges their init containers, so such a pod is one the webhook changes.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use secrets_injector_objects::annotations::{DEFAULT_MOUNT_PATH, INJECT, STATUS, STATUS_INJECTED};
use secrets_injector_objects::class::{self, ClassSpec, KIND, Refusal};
use secrets_injector_objects::error;
use secrets_injector_objects::mode::FileMode;
use secrets_injector_objects::settings::Settings;

use super::assume_role;
use super::classes::Context;
use super::config::{CsiVolumes, MutationConfig};
use super::container::{self, Filler};
use super::edit::{Edit, OwnedInit, Rewritten};
use super::provider_class::{self, Found};
use super::resources;
use crate::owned;
use crate::pod::{self, ContainerList, ContainerRef, Targets};

/// The class a volume names when it is a volume of the Secrets Store CSI driver (`Some("")` when
/// it names none).
pub fn csi_class(volume: &Value) -> Option<&str> {
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

/// Reads the pod's CSI volumes, checks their classes, and adds each rewrite to the edit; adopts
/// the volumes an earlier mutation rewrote.
pub fn add(pod: &Value, cfg: &MutationConfig, ctx: &Context<'_>, edit: &mut Edit) {
    if pod::annotation(pod, INJECT) == Some("false") {
        return;
    }
    let volumes = pod::volumes(pod);
    let init = pod::containers(pod, ContainerList::InitContainers);
    edit.work.charge(volumes.len() + init.len());
    adopt(pod, cfg, volumes, init, edit);
    if cfg.csi_volumes != CsiVolumes::Rewrite {
        return;
    }
    let csi: Vec<(&str, &str)> = volumes
        .iter()
        .filter_map(|volume| Some((name_of(volume), csi_class(volume)?)))
        .collect();
    if csi.is_empty() {
        return;
    }
    if csi.len() > cfg.max_csi_volumes && !pod::is_windows(pod) {
        return edit.problem(format!(
            "the pod has {} volumes of the Secrets Store CSI driver ({}), and this webhook rewrites \
             at most {} in one pod (--max-csi-volumes); give the pod fewer CSI volumes (one class \
             can list every object it needs)",
            csi.len(),
            class::CSI_DRIVER,
            cfg.max_csi_volumes
        ));
    }
    let mounting = mounting(pod, edit);
    let regular: HashSet<&str> = pod::containers(pod, ContainerList::Containers)
        .iter()
        .map(pod::name)
        .collect();
    let namespace = ctx.namespace(pod);
    // One lookup and one derivation per class, whatever the number of volumes naming it.
    let mut classes: HashMap<&str, Found> = HashMap::new();
    for (name, class_name) in csi {
        let label = format!("volume {name:?} (CSI, {KIND} {class_name:?})");
        if pod::is_windows(pod) {
            // The injector's init container needs Linux; the driver serves Windows nodes.
            edit.warnings.push(format!(
                "{label}: left to the CSI driver: the pod runs on Windows (spec.os.name: windows)"
            ));
            continue;
        }
        if owned::is_own_volume(name) {
            edit.problem(format!(
                "{label}: the volume name {name:?} is the webhook's own; rename the volume (and \
                 its mounts)"
            ));
            continue;
        }
        if class_name.is_empty() {
            edit.warnings.push(format!(
                "volume {name:?}: a {} volume without volumeAttributes.{} is left to the CSI driver",
                class::CSI_DRIVER,
                class::CSI_CLASS_ATTRIBUTE
            ));
            continue;
        }
        let first_use = !classes.contains_key(class_name);
        let found = classes
            .entry(class_name)
            .or_insert_with(|| provider_class::find(cfg, namespace, class_name));
        // A pod's controller retries a denial; a workload applied before its classes (Helm
        // orders custom resources last) must not be refused for it.
        let not_there = |edit: &mut Edit, reason: String| {
            if ctx.template {
                edit.warnings.push(format!(
                    "{label}: {reason}; pods of this template will be denied until it exists"
                ));
            } else {
                edit.problem(format!("{label}: {reason}"));
            }
        };
        let spec = match found {
            Found::Spec(spec) => spec,
            Found::Missing => {
                not_there(edit, provider_class::missing(class_name, namespace));
                continue;
            }
            Found::Unavailable(reason) => {
                let reason = provider_class::unavailable(class_name, reason);
                not_there(edit, reason);
                continue;
            }
            Found::Refused(Refusal::Invalid(errors)) => {
                edit.problem(format!("volume {name:?}: {errors}"));
                continue;
            }
            Found::Refused(refusal) => {
                edit.warnings.push(format!(
                    "{label}: left to the CSI driver: {}",
                    refusal.reason()
                ));
                continue;
            }
        };
        let filler = owned::csi_filler(name);
        if regular.contains(filler.as_str()) {
            edit.problem(format!(
                "container name {filler:?} is reserved for the init container of {label}; rename the container"
            ));
            continue;
        }
        if first_use {
            edit.warnings.extend(spec.warnings.iter().cloned());
        }
        // A volume no container mounts serves them all (a mesh's proxy excepted).
        let targets = mounting
            .get(name)
            .cloned()
            .unwrap_or_else(|| pod::targets(pod, None));
        match rewrite(pod, cfg, name, class_name, spec, &targets, edit, first_use) {
            Ok(()) => {
                edit.volumes.push(json!({
                    "name": name,
                    "emptyDir": {"medium": "Memory", "sizeLimit": cfg.volume_size_limit.as_str()},
                }));
                edit.read_only.push(name.to_owned());
                edit.rewritten.push(Rewritten {
                    volume: name.to_owned(),
                    mounting: targets,
                    adopted: false,
                });
                edit.annotate(STATUS, STATUS_INJECTED);
            }
            Err(problems) => {
                for problem in problems {
                    edit.problem(format!("volume {name:?}: {problem}"));
                }
            }
        }
    }
}

fn name_of(volume: &Value) -> &str {
    volume.get("name").and_then(Value::as_str).unwrap_or("")
}

/// The volumes an earlier mutation rewrote: no longer CSI volumes, with their init container
/// there, which is kept as it is (its class is not written in the pod any more), but for its
/// user under `mesh-bypass`: the mesh's webhook may have added the proxy since. Only in a pod
/// whose status says the webhook changed it, as the pod reader reads the spec of such a pod alone
/// (`pod::injected`).
fn adopt(pod: &Value, cfg: &MutationConfig, volumes: &[Value], init: &[Value], edit: &mut Edit) {
    if !pod::injected(pod::annotation(pod, STATUS), pod::annotation(pod, INJECT)) {
        return;
    }
    let fillers: HashMap<&str, &Value> = init
        .iter()
        .filter(|c| owned::kind(pod::name(c)) == Some(owned::Kind::CsiFiller))
        .map(|c| (pod::name(c), c))
        .collect();
    if fillers.is_empty() {
        return;
    }
    let mut mounting: Option<HashMap<String, Targets>> = None;
    for volume in volumes {
        let name = name_of(volume);
        if csi_class(volume).is_some() {
            continue;
        }
        let filler = owned::csi_filler(name);
        let Some(existing) = fillers.get(filler.as_str()) else {
            continue;
        };
        let Some(fields) = existing.as_object() else {
            continue;
        };
        if edit.init_named(&filler).is_some() {
            continue;
        }
        let mounting = mounting.get_or_insert_with(|| self::mounting(pod, edit));
        let targets = mounting.get(name).cloned().unwrap_or_default();
        let mut fields = fields.clone();
        if edit.mesh.run_as.is_some() {
            let identity = pod::identity(pod, targets.first(pod));
            fields.insert(
                "securityContext".to_owned(),
                container::security_context(&identity, edit.mesh.run_as, cfg),
            );
        }
        edit.init.push(OwnedInit {
            name: filler,
            fields,
            volume: name.to_owned(),
            sidecar_of: None,
        });
        edit.rewritten.push(Rewritten {
            volume: name.to_owned(),
            mounting: targets,
            adopted: true,
        });
    }
}

/// For every volume, the containers that mount it, regular ones first (the first of them is
/// whose identity and AWS env its init container takes), in one walk of the pod.
fn mounting(pod: &Value, edit: &mut Edit) -> HashMap<String, Targets> {
    let mut found: HashMap<String, Targets> = HashMap::new();
    let mut units = 0;
    for list in [ContainerList::Containers, ContainerList::InitContainers] {
        for (index, container) in pod::containers(pod, list).iter().enumerate() {
            // Read before the edit has every filler: any init container the webhook may name
            // is left out, so none is whose identity a filler takes.
            if list == ContainerList::InitContainers
                && owned::is_init_container(pod::name(container))
            {
                continue;
            }
            let mut seen: HashSet<&str> = HashSet::new();
            for mount in pod::mounts(container) {
                units += 1;
                let volume = name_of(mount);
                if seen.insert(volume) {
                    found
                        .entry(volume.to_owned())
                        .or_default()
                        .found
                        .push(ContainerRef { list, index });
                }
            }
        }
    }
    edit.work.charge(units);
    found
}

/// The checked plan and the init container of one volume into the edit, or every problem.
#[allow(clippy::too_many_arguments)]
fn rewrite(
    pod: &Value,
    cfg: &MutationConfig,
    volume: &str,
    class_name: &str,
    spec: &ClassSpec,
    targets: &Targets,
    edit: &mut Edit,
    first_use: bool,
) -> Result<(), Vec<String>> {
    let first = targets.first(pod);
    let identity = pod::identity(pod, first);
    let mut problems = Vec::new();
    let region = match spec.region.clone() {
        Some(region) => Some(region),
        None => container::region(pod, cfg, first, &mut problems),
    };
    let (copied_env, copied_mounts) =
        container::copied(pod, targets.first_at(pod), edit, &mut problems);
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
    let unreadable = plan.unreadable(container::app_identity(&identity, edit.mesh.bypass));
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
    if first_use {
        edit.warnings.extend(
            plan.warnings
                .iter()
                .map(|warning| class::class_warning(class_name, warning)),
        );
    }
    let name = owned::csi_filler(volume);
    let fields = container::fields(
        Filler {
            name: name.clone(),
            // The injector writes into this volume, not the webhook's own.
            volume: volume.to_owned(),
            mount_path: DEFAULT_MOUNT_PATH.to_owned(),
            args,
            copied_env,
            copied_mounts,
            resources: resources::from_config(cfg),
            identity,
            run_as: edit.mesh.run_as,
        },
        cfg,
    );
    edit.init.push(OwnedInit {
        name,
        fields,
        volume: volume.to_owned(),
        sidecar_of: None,
    });
    edit.plans.push(plan);
    Ok(())
}
