//! The injector's container as the webhook writes it, for every init container that fills a
//! volume (the webhook's own and each rewritten CSI volume's): image, command, args, the AWS
//! identity copied from the app, the hardened security context, resources. What the injector
//! takes from the app container (its identity, region and AWS env) is read here too, so every
//! filler takes it by the same rules.

use serde_json::{Map, Value, json};

use secrets_injector_objects::annotations;
use secrets_injector_objects::mode::{AppIdentity, Owner};

use super::config::{InjectorUser, MutationConfig};
use super::edit::{Copied, Edit};
use crate::pod::{self, ContainerRef, Identity};

/// Absolute path of the injector binary in its image (the init container's `command[0]`).
pub const INJECTOR_PATH: &str = "/usr/local/bin/injector";

/// What a filler needs to be written.
#[derive(Debug)]
pub struct Filler {
    pub name: String,
    /// The volume it writes, mounted read-write at `mount_path`.
    pub volume: String,
    pub mount_path: String,
    pub args: Vec<String>,
    /// The env entries and (read-only) mounts of the first target container it copies.
    pub copied_env: Vec<Value>,
    pub copied_mounts: Vec<Value>,
    pub resources: Value,
    pub identity: Identity,
    /// The user it runs as instead of the app's: the mesh proxy's (`mesh-bypass`).
    pub run_as: Option<i64>,
}

/// The fields of the filler the webhook owns, with their current values.
pub fn fields(filler: Filler, cfg: &MutationConfig) -> Map<String, Value> {
    let Filler {
        name,
        volume,
        mount_path,
        args,
        copied_env,
        copied_mounts,
        resources,
        identity,
        run_as,
    } = filler;
    let mut mounts = Vec::with_capacity(1 + copied_mounts.len());
    mounts.push(json!({"name": volume, "mountPath": mount_path}));
    mounts.extend(copied_mounts);
    let mut container = Map::new();
    container.insert("name".to_owned(), json!(name));
    container.insert("image".to_owned(), json!(cfg.injector_image));
    container.insert("command".to_owned(), json!([INJECTOR_PATH]));
    // The cluster's settings come first, the pod's (the object list last) after.
    let cluster = cfg
        .max_secrets_per_object
        .map(|max| format!("--max-secrets-per-object={max}"));
    container.insert(
        "args".to_owned(),
        Value::Array(cluster.into_iter().chain(args).map(Value::String).collect()),
    );
    if !copied_env.is_empty() {
        container.insert("env".to_owned(), Value::Array(copied_env));
    }
    container.insert("resources".to_owned(), resources);
    container.insert(
        "securityContext".to_owned(),
        security_context(&identity, run_as, cfg),
    );
    container.insert(
        "terminationMessagePolicy".to_owned(),
        json!("FallbackToLogsOnError"),
    );
    container.insert("volumeMounts".to_owned(), Value::Array(mounts));
    container
}

/// The init container's security context: non-root, no privilege escalation, read-only root,
/// no capabilities, the runtime's seccomp profile; the app's user and group when it has a
/// non-root one, so the files belong to it. `run_as` (the mesh proxy's user, `mesh-bypass`)
/// replaces the app's user, not its group, so the app can read the files through their group.
pub fn security_context(identity: &Identity, run_as: Option<i64>, cfg: &MutationConfig) -> Value {
    let app_user = identity.run_as_user.filter(|&user| user != 0);
    let configured = configured_user(cfg);
    let user = run_as.or_else(|| injector_user(identity, cfg));
    let group = app_group(identity).or(if app_user.is_none() || run_as.is_some() {
        configured
    } else {
        None
    });
    let mut context = json!({
        "allowPrivilegeEscalation": false,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": true,
        "runAsNonRoot": true,
        "seccompProfile": {"type": "RuntimeDefault"},
    });
    if let Some(fields) = context.as_object_mut() {
        if let Some(user) = user {
            fields.insert("runAsUser".to_owned(), json!(user));
        }
        if let Some(group) = group {
            fields.insert("runAsGroup".to_owned(), json!(group));
        }
    }
    context
}

/// The app's group, when it is not root's.
fn app_group(identity: &Identity) -> Option<i64> {
    identity.run_as_group.filter(|&group| group != 0)
}

/// What the file-mode rules know of the app (`filePermission`): its user and `fsGroup`, and
/// whose the files are: with `mesh-bypass` the mesh proxy's user's, and the app shares their group
/// when the pod has an `fsGroup` or the app a group (which the webhook's containers then run
/// with, `security_context`).
pub fn app_identity(identity: &Identity, bypass: bool) -> AppIdentity {
    let owner = if bypass {
        Owner::MeshProxy {
            shares_group: identity.fs_group.is_some() || app_group(identity).is_some(),
        }
    } else {
        Owner::App
    };
    AppIdentity {
        // The injector runs as the app's user only when that user is not root (runAsNonRoot).
        run_as_user: identity.run_as_user.filter(|&user| user != 0),
        fs_group: identity.fs_group,
        owner,
    }
}

/// The `--injector-user` id, when it sets one.
fn configured_user(cfg: &MutationConfig) -> Option<i64> {
    match cfg.injector_user {
        InjectorUser::Id(id) => Some(id),
        InjectorUser::Unset => None,
    }
}

/// The user the webhook's containers run as: the app's when it is not root, else the flag's
/// (`None`: left to the platform).
pub fn injector_user(identity: &Identity, cfg: &MutationConfig) -> Option<i64> {
    identity
        .run_as_user
        .filter(|&user| user != 0)
        .or(configured_user(cfg))
}

/// What a filler takes from the first target container (at `first`): its AWS env and the mounts
/// that go with it, with a problem for each copied mount that would hide the injector's binary.
/// Found once per container, counted, and kept in the edit: every filler taking the same container
/// (the webhook's own and each rewritten CSI volume's) copies the same.
pub fn copied(
    pod: &Value,
    first: Option<ContainerRef>,
    edit: &mut Edit,
    problems: &mut Vec<String>,
) -> (Vec<Value>, Vec<Value>) {
    let Some((at, container)) = first.and_then(|at| Some((at, pod::container(pod, at)?))) else {
        return (Vec::new(), Vec::new());
    };
    // A few: one per container some filler takes.
    if let Some((_, known)) = edit.copied.iter().find(|(of, _)| *of == at) {
        problems.extend(known.problems.iter().cloned());
        return (known.env.clone(), known.mounts.clone());
    }
    let env = pod::copied_env(container);
    let mut units = 0;
    let mounts = pod::copied_mounts(container, &env, &mut units);
    edit.work.charge(units);
    let mut own = Vec::new();
    for mount in &mounts {
        if pod::path_holds(pod::mount_path(mount), INJECTOR_PATH) {
            let volume = mount.get("name").and_then(Value::as_str).unwrap_or("");
            own.push(format!(
                "container {:?} mounts volume {volume:?} at {}, which the init container would copy (an AWS token or a path in a copied variable), but there it would hide the injector's binary {INJECTOR_PATH}; mount it elsewhere",
                pod::name(container),
                pod::mount_path(mount)
            ));
        }
    }
    problems.extend(own.iter().cloned());
    edit.copied.push((
        at,
        Copied {
            env: env.clone(),
            mounts: mounts.clone(),
            problems: own,
        },
    ));
    (env, mounts)
}

/// SPEC "Region": the annotation; else a literal AWS_REGION, then AWS_DEFAULT_REGION, of the
/// first target container; else `--default-region`.
pub fn region(
    pod: &Value,
    cfg: &MutationConfig,
    first: Option<&Value>,
    problems: &mut Vec<String>,
) -> Option<String> {
    if let Some(region) = pod::annotation(pod, annotations::REGION) {
        return Some(region.to_owned());
    }
    for variable in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        if let Some(region) = first.and_then(|c| pod::literal_env(c, variable)) {
            if !secrets_injector_objects::settings::is_valid_region(region) {
                problems.push(format!(
                    "{variable} {region:?} of container {:?} is not an AWS region name; fix it or set the annotation {} ({})",
                    first.map(pod::name).unwrap_or_default(),
                    annotations::REGION,
                    secrets_injector_objects::settings::REGION_RULE
                ));
                return None;
            }
            return Some(region.to_owned());
        }
    }
    if let Some(region) = &cfg.default_region {
        return Some(region.clone());
    }
    problems.push(format!(
        "no region: set the annotation {}, give the first target container a literal AWS_REGION or AWS_DEFAULT_REGION env value, or start the webhook with --default-region",
        annotations::REGION
    ));
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_context_uses_the_app_user_when_not_root() {
        let cfg = MutationConfig::for_tests("i");
        let app = Identity {
            run_as_user: Some(1000),
            run_as_group: Some(3000),
            ..Identity::default()
        };
        let context = security_context(&app, None, &cfg);
        assert_eq!(context["runAsUser"], json!(1000));
        assert_eq!(context["runAsGroup"], json!(3000));
        assert_eq!(context["runAsNonRoot"], json!(true));
        assert_eq!(context["allowPrivilegeEscalation"], json!(false));
        assert_eq!(context["readOnlyRootFilesystem"], json!(true));
        assert_eq!(context["capabilities"], json!({"drop": ["ALL"]}));
        assert_eq!(context["seccompProfile"], json!({"type": "RuntimeDefault"}));
    }

    #[test]
    fn security_context_falls_back_to_the_flag() {
        let cfg = MutationConfig::for_tests("i");
        let root = Identity {
            run_as_user: Some(0),
            run_as_group: Some(0),
            ..Identity::default()
        };
        let context = security_context(&root, None, &cfg);
        assert_eq!(context["runAsUser"], json!(65532));
        assert_eq!(context["runAsGroup"], json!(65532));
        let user_only = Identity {
            run_as_user: Some(1000),
            ..Identity::default()
        };
        let context = security_context(&user_only, None, &cfg);
        assert_eq!(context["runAsUser"], json!(1000));
        assert!(context.get("runAsGroup").is_none());
    }

    #[test]
    fn the_mesh_proxys_user_replaces_the_apps_but_not_its_group() {
        let cfg = MutationConfig::for_tests("i");
        let app = Identity {
            run_as_user: Some(1000),
            run_as_group: Some(3000),
            ..Identity::default()
        };
        let context = security_context(&app, Some(1337), &cfg);
        assert_eq!(context["runAsUser"], json!(1337));
        assert_eq!(context["runAsGroup"], json!(3000));
        let user_only = Identity {
            run_as_user: Some(1000),
            ..Identity::default()
        };
        // Never root's group: the flag's.
        let context = security_context(&user_only, Some(2102), &cfg);
        assert_eq!(context["runAsUser"], json!(2102));
        assert_eq!(context["runAsGroup"], json!(65532));
        assert_eq!(
            app_identity(&app, true).owner,
            Owner::MeshProxy { shares_group: true }
        );
        assert_eq!(
            app_identity(&user_only, true).owner,
            Owner::MeshProxy {
                shares_group: false
            }
        );
        assert_eq!(app_identity(&user_only, false).owner, Owner::App);
    }

    #[test]
    fn security_context_can_leave_the_user_unset() {
        let mut cfg = MutationConfig::for_tests("i");
        cfg.injector_user = InjectorUser::Unset;
        let context = security_context(&Identity::default(), None, &cfg);
        assert!(context.get("runAsUser").is_none());
        assert!(context.get("runAsGroup").is_none());
        assert_eq!(context["runAsNonRoot"], json!(true));
        let app = Identity {
            run_as_user: Some(1000),
            ..Identity::default()
        };
        assert_eq!(security_context(&app, None, &cfg)["runAsUser"], json!(1000));
    }
}
