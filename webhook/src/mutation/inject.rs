//! The pod's own objects (the `objects` annotation, or the class `secret-provider-class` names):
//! the annotations read and checked, and, when they are good, the webhook's volume, its init
//! container `secrets-injector` and a read-only mount in each target container added to the edit.
//! The object list itself is parsed and checked by `secrets_injector_objects`, the same code the
//! injector runs.

use std::collections::HashSet;

use serde_json::{Value, json};

use secrets_injector_objects::annotations::{self, PREFIX};
use secrets_injector_objects::error::Error;
use secrets_injector_objects::mode::FileMode;
use secrets_injector_objects::settings::Settings;
use secrets_injector_objects::translation::PathTranslation;

use super::assume_role;
use super::classes::Context;
use super::config::MutationConfig;
use super::container::{self, Filler, INJECTOR_PATH};
use super::edit::{Edit, Injected, OwnedInit};
use super::provider_class::{self, FromClass, Source};
use super::resources;
use crate::owned;
use crate::pod::{self, ContainerRef, Targets};

/// Reads and checks the pod's annotations against the webhook's settings, for a pod in a
/// namespace (where its SecretProviderClass is looked up), into the edit.
pub fn add(pod: &Value, cfg: &MutationConfig, ctx: &Context<'_>, edit: &mut Edit) {
    let (class, annotation) = match provider_class::source(pod, cfg, ctx) {
        Source::None => return,
        Source::Deny(message) => return edit.deny(message),
        Source::Annotation(objects) => (None, objects),
        Source::Class(from) => (Some(*from), ""),
    };
    let objects = class
        .as_ref()
        .map_or(annotation, |class| &class.spec.objects);
    if !pod.get("spec").is_some_and(Value::is_object) {
        return edit.deny("the pod has no spec");
    }
    if pod::is_windows(pod) {
        return edit.deny(format!(
            "annotation {}: the pod runs on Windows (spec.os.name: windows), and the injector's init \
             container needs Linux security settings that a Windows pod cannot have; run the pod on \
             Linux or remove the annotation",
            annotations::OBJECTS
        ));
    }
    let mut problems: Vec<String> = Vec::new();
    edit.warnings.extend(unknown_annotation_warnings(pod));

    let targets = resolve_targets(pod, &mut edit.warnings);
    let first = targets.first(pod);
    let identity = pod::identity(pod, first);

    let mount_path = pod::annotation(pod, annotations::MOUNT_PATH)
        .unwrap_or(annotations::DEFAULT_MOUNT_PATH)
        .to_owned();
    match check_mount_path(&mount_path) {
        Ok(()) => problems.extend(mount_clashes(pod, &targets, &mount_path)),
        Err(message) => problems.push(format!("annotation {}: {message}", annotations::MOUNT_PATH)),
    }
    problems.extend(writable_volume_mounts(pod, &targets));
    let (copied_env, copied_mounts) =
        container::copied(pod, targets.first_at(pod), edit, &mut problems);

    let init_first = match pod::annotation(pod, annotations::INIT_FIRST) {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            problems.push(format!(
                "annotation {}: {other:?} is not a boolean; write \"true\" or \"false\"",
                annotations::INIT_FIRST
            ));
            true
        }
    };

    let resources = match pod::annotation(pod, annotations::INJECTOR_RESOURCES) {
        None => resources::from_config(cfg),
        Some(text) => resources::parse_annotation(text).unwrap_or_else(|message| {
            problems.push(format!(
                "annotation {}: {message}",
                annotations::INJECTOR_RESOURCES
            ));
            Value::Null
        }),
    };
    // A class's role (its `assumeRole*` parameters, checked with the class) or the pod's own
    // annotations.
    let assume_role = match class.as_ref().and_then(|c| c.spec.assume_role.as_ref()) {
        Some(role) => assume_role::class_args(role),
        None => assume_role::injector_args(pod, &mut problems),
    };
    let settings = settings(pod, cfg, first, class.as_ref(), &mut problems);
    // What the capabilities after this one read, even when the pod is denied, so their problems
    // are told in the same answer.
    edit.injected = Some(Injected {
        targets: targets.clone(),
        identity,
        mount_path: mount_path.clone(),
        init_first,
        plan: None,
        templates: Vec::new(),
    });

    let parsed = settings.map(|settings| cfg.plans.parse(objects, settings));
    let plan = match parsed {
        Some(Ok(plan)) if problems.is_empty() => plan,
        parsed => {
            edit.problems.extend(problems.into_iter().map(Error::pod));
            match (parsed, &class) {
                (Some(Err(errors)), Some(class)) => edit.problems.extend(class.errors(&errors).0),
                (Some(Err(errors)), None) => edit.problems.extend(errors.0.iter().cloned()),
                _ => {}
            }
            return;
        }
    };

    let unreadable = plan.unreadable(container::app_identity(&identity, edit.mesh.bypass));
    if !unreadable.is_empty() {
        edit.problems.extend(unreadable);
        return;
    }
    if let Some(class) = &class {
        edit.warnings.extend(class.warnings(&plan.warnings));
    } else {
        edit.warnings.extend(plan.warnings.iter().cloned());
    }
    let mut args = injector_args(pod, &mount_path, &plan.settings, class.as_ref(), objects);
    // The object list stays the last word: the longest, and the one people look for.
    let objects_arg = args.pop();
    args.extend(assume_role);
    args.extend(objects_arg);

    edit.annotate(annotations::STATUS, annotations::STATUS_INJECTED);
    edit.add_volume(json!({
        "name": annotations::VOLUME_NAME,
        "emptyDir": {"medium": "Memory", "sizeLimit": cfg.volume_size_limit.as_str()},
    }));
    let mount =
        json!({"name": annotations::VOLUME_NAME, "mountPath": mount_path, "readOnly": true});
    for &at in &targets.found {
        edit.mounts.push((at, mount.clone()));
    }
    let fields = container::fields(
        Filler {
            name: annotations::INIT_CONTAINER_NAME.to_owned(),
            volume: annotations::VOLUME_NAME.to_owned(),
            mount_path,
            args,
            copied_env,
            copied_mounts,
            resources,
            identity,
            run_as: edit.mesh.run_as,
        },
        cfg,
    );
    edit.init.push(OwnedInit {
        name: annotations::INIT_CONTAINER_NAME.to_owned(),
        fields,
        volume: annotations::VOLUME_NAME.to_owned(),
        sidecar_of: None,
    });
    edit.plans.push(plan.clone());
    if let Some(injected) = &mut edit.injected {
        injected.plan = Some(plan);
    }
}

/// A warning for every annotation under the prefix that means nothing, with the closest name.
fn unknown_annotation_warnings(pod: &Value) -> Vec<String> {
    pod::annotation_names(pod)
        .filter(|name| name.starts_with(PREFIX) && !annotations::KNOWN.contains(name))
        .map(|name| match annotations::closest_known(name) {
            Some(known) => {
                format!("annotation {name} is not known and is ignored; did you mean {known}?")
            }
            // The names without their common prefix, so the whole list fits in one warning.
            None => format!(
                "annotation {name} is not known and is ignored; known annotations: {PREFIX} \
                 followed by {}",
                annotations::KNOWN
                    .iter()
                    .map(|known| &known[PREFIX.len()..])
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
        .collect()
}

/// The target containers, with a warning for each name of the `containers` annotation that is
/// not there (yet), or that cannot be a target.
fn resolve_targets(pod: &Value, warnings: &mut Vec<String>) -> Targets {
    let annotation = pod::annotation(pod, annotations::CONTAINERS);
    let names = pod::named_containers(annotation);
    if annotation.is_some() && names.is_none() {
        warnings.push(format!(
            "annotation {} names no container; every regular container gets the mount",
            annotations::CONTAINERS
        ));
    }
    for own in names
        .iter()
        .flatten()
        .filter(|name| owned::is_reserved_name(name))
    {
        warnings.push(format!(
            "annotation {}: {own:?} is the webhook's own init container and is ignored",
            annotations::CONTAINERS,
        ));
    }
    let targets = pod::targets(pod, names.as_deref());
    for missing in &targets.missing {
        warnings.push(format!(
            "annotation {}: the pod has no container {missing:?} (yet); it gets the mount if it is added before the webhook runs again",
            annotations::CONTAINERS
        ));
    }
    targets
}

/// What the init container needs from its image and the kernel, which the files' volume must not
/// hide or sit inside: its binary, the kernel filesystems (and the termination log in /dev), and
/// the CA certificates it trusts.
const INJECTOR_NEEDS: [&str; 5] = [INJECTOR_PATH, "/dev", "/proc", "/sys", "/etc/ssl"];

/// The mount path must be absolute and normal (no empty, `.` or `..` parts, no trailing `/`),
/// not `/`, and clear of what the injector needs in its own container.
fn check_mount_path(path: &str) -> Result<(), String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!(
            "{path:?} is not an absolute path; write it like /mnt/secrets-store"
        ));
    };
    if rest.is_empty() {
        return Err("\"/\" would hide the container's whole filesystem; choose a directory such as /mnt/secrets-store".to_owned());
    }
    let abnormal = rest.contains('\0')
        || rest
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if abnormal {
        return Err(format!(
            "{path:?} is not a normal path (empty, \".\" or \"..\" parts, a trailing '/' or a NUL byte); write it like /mnt/secrets-store"
        ));
    }
    if let Some(need) = INJECTOR_NEEDS
        .iter()
        .find(|need| pod::relation(path, need).is_some())
    {
        return Err(format!(
            "{path} would cover {need}, which the injector's init container needs from its image; choose a directory such as /mnt/secrets-store"
        ));
    }
    Ok(())
}

/// A denial for each mount of a target container that the new mount would clash with: the same
/// path, one inside it, or one holding it. The webhook's own mount (converged in place) does not
/// count.
fn mount_clashes(pod: &Value, targets: &Targets, mount_path: &str) -> Vec<String> {
    let mut clashes = Vec::new();
    for &at in &targets.found {
        let Some(container) = pod::container(pod, at) else {
            continue;
        };
        let own = own_mount_index(container);
        for (i, mount) in pod::mounts(container).iter().enumerate() {
            let existing = pod::mount_path(mount);
            if Some(i) == own {
                continue;
            }
            let relation = match pod::relation(existing, mount_path) {
                Some(pod::Relation::Same) => "is the same path as",
                Some(pod::Relation::Inside) => "contains",
                Some(pod::Relation::Holds) => "lies inside",
                None => continue,
            };
            let volume = mount.get("name").and_then(Value::as_str).unwrap_or("");
            clashes.push(format!(
                "annotation {}: {mount_path} {relation} the mount {existing} (volume {volume:?}) of container {:?}; choose a mount path that neither contains nor lies inside an existing mount",
                annotations::MOUNT_PATH,
                pod::name(container)
            ));
        }
    }
    clashes
}

/// A denial for each mount of the webhook's volume that could write the files, in any container
/// but the webhook's own init container: only the injector writes them. The webhook's own mount
/// in a target container does not count, as the webhook makes it read-only.
fn writable_volume_mounts(pod: &Value, targets: &Targets) -> Vec<String> {
    let targets: HashSet<ContainerRef> = targets.found.iter().copied().collect();
    pod::writable_mounts(pod, annotations::VOLUME_NAME, &targets, owned::is_reserved_name)
        .into_iter()
        .map(|(container, mount)| {
            format!(
                "container {:?} mounts the volume {:?} at {} writable, and only the injector may write the files; remove the mount or set readOnly: true",
                pod::name(container),
                annotations::VOLUME_NAME,
                pod::mount_path(mount)
            )
        })
        .collect()
}

/// The index of the container's mount of the webhook's volume, which the webhook owns.
fn own_mount_index(container: &Value) -> Option<usize> {
    pod::mount_index(container, annotations::VOLUME_NAME)
}

/// The injector's settings from the annotations, the first target container and the flags.
/// `None` (with the reasons in `problems`) when they are not valid.
/// A class's `region`, `failoverRegion` and `pathTranslation` come before the annotations.
fn settings(
    pod: &Value,
    cfg: &MutationConfig,
    first: Option<&Value>,
    class: Option<&FromClass>,
    problems: &mut Vec<String>,
) -> Option<Settings> {
    let before = problems.len();
    let spec = class.map(|class| &class.spec);
    let region = match spec.and_then(|spec| spec.region.clone()) {
        Some(region) => Some(region),
        None => container::region(pod, cfg, first, problems),
    };
    let class_translation = spec.and_then(|spec| spec.path_translation.as_ref());
    let path_translation = match pod::annotation(pod, annotations::PATH_TRANSLATION) {
        _ if class_translation.is_some() => {
            class_translation.map(|(_, read)| *read).unwrap_or_default()
        }
        None => PathTranslation::default(),
        Some(text) => text.parse().unwrap_or_else(|message| {
            problems.push(format!(
                "annotation {}: {message}",
                annotations::PATH_TRANSLATION
            ));
            PathTranslation::default()
        }),
    };
    let default_mode = match pod::annotation(pod, annotations::FILE_PERMISSION) {
        None => FileMode::DEFAULT,
        Some(text) => text.parse().unwrap_or_else(|message| {
            problems.push(format!(
                "annotation {}: {message}",
                annotations::FILE_PERMISSION
            ));
            FileMode::DEFAULT
        }),
    };
    let region = region?;
    (problems.len() == before).then(|| Settings {
        region,
        failover_region: spec
            .and_then(|spec| spec.failover_region.clone())
            .or_else(|| pod::annotation(pod, annotations::FAILOVER_REGION).map(str::to_owned)),
        path_translation,
        default_mode,
        env_file: pod::annotation(pod, annotations::ENV_FILE).map(str::to_owned),
    })
}

/// The injector's command-line arguments (see the injector's flags): optional settings only when
/// their annotation is set, verbatim, and the object list verbatim. Each is one `--flag=value`
/// word, so no value (a region of `--help`, an env file of `--mount-path=/etc`) can be read as a
/// flag.
/// A class's settings come before the annotations.
fn injector_args(
    pod: &Value,
    mount_path: &str,
    settings: &Settings,
    class: Option<&FromClass>,
    objects: &str,
) -> Vec<String> {
    let mut args = vec![
        format!("--mount-path={mount_path}"),
        format!("--region={}", settings.region),
    ];
    let spec = class.map(|class| &class.spec);
    let optional = [
        (
            "--failover-region",
            annotations::FAILOVER_REGION,
            spec.and_then(|spec| spec.failover_region.as_deref()),
        ),
        (
            "--path-translation",
            annotations::PATH_TRANSLATION,
            spec.and_then(|spec| spec.path_translation.as_ref())
                .map(|(text, _)| text.as_str()),
        ),
        ("--file-permission", annotations::FILE_PERMISSION, None),
        ("--env-file", annotations::ENV_FILE, None),
    ];
    for (flag, annotation, from_class) in optional {
        if let Some(value) = from_class.or_else(|| pod::annotation(pod, annotation)) {
            args.push(format!("{flag}={value}"));
        }
    }
    args.push(format!("--objects={objects}"));
    args
}
