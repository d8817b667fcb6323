//! From the plan to values: which objects go into which calls, how many run at once, and which
//! go to the failover region. The calls themselves are in `aws`.

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use futures::future::{FutureExt, LocalBoxFuture};
use futures::stream::{self, StreamExt};
use secrets_injector_objects::kind::Fetch;
use secrets_injector_objects::object::Object;
use secrets_injector_objects::plan::Plan;
use tokio::sync::OnceCell;

use crate::aws::{Clients, secrets_by_prefix, secretsmanager, ssm};
use crate::call::{Fetched, NO_TAGS, Run, Target};
use crate::error::Error;

pub use crate::call::CONCURRENCY;

/// The targets of the plan's objects in the primary region.
pub fn primary_targets(plan: &Plan) -> Vec<Target<'_>> {
    plan.objects
        .iter()
        .enumerate()
        .map(|(i, o)| Target {
            object: i,
            name: &o.name,
            version: o.version.as_deref(),
            label: o.version_label.as_deref(),
            kind: o.object_type,
            tags: &o.tags,
        })
        .collect()
}

/// Whether the object is fetched in the failover region when its primary fetch fails in a way
/// failover covers: it has a `failoverObject`, or its kind fails over as a whole
/// (secretsmanagerpath, under its own name and tags); and the pod has a failover region.
pub fn fails_over(plan: &Plan, object: &Object) -> bool {
    plan.settings.failover_region.is_some()
        && (object.failover.is_some() || object.object_type.facts().failover_whole)
}

/// The failover targets of the objects whose primary fetch failed in a way that failover
/// covers (exhausted throttling retries, 5xx, network). Not found and access denied are final.
/// `results` holds one slot per object; `None` for the objects not fetched.
pub fn failover_targets<'a>(
    plan: &'a Plan,
    results: &[Option<Result<Fetched, Error>>],
) -> Vec<Target<'a>> {
    if plan.settings.failover_region.is_none() {
        return Vec::new();
    }
    plan.objects
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            if !matches!(&results[i], Some(Err(e)) if e.kind().fails_over()) {
                return None;
            }
            match &o.failover {
                Some(failover) => Some(Target {
                    object: i,
                    name: &failover.name,
                    version: failover.version.as_deref(),
                    label: failover.version_label.as_deref(),
                    kind: o.object_type,
                    tags: &NO_TAGS,
                }),
                // The whole object, as it is, in the other region.
                None if o.object_type.facts().failover_whole => Some(Target {
                    object: i,
                    name: &o.name,
                    version: None,
                    label: None,
                    kind: o.object_type,
                    tags: &o.tags,
                }),
                None => None,
            }
        })
        .collect()
}

/// The clients of the primary and failover regions, each loaded at its first use and kept, so
/// that the refresh sidecar reuses them, and their credentials cache, every cycle.
pub struct Regions {
    http: SharedHttpClient,
    /// The chained role's credentials (`--assume-role-arn`), for every region, instead of the
    /// pod's own.
    credentials: Option<SharedCredentialsProvider>,
    primary: OnceCell<Clients>,
    failover: OnceCell<Clients>,
}

impl Regions {
    /// `http` is the HTTPS client of every call (see `aws::https_client`); `credentials`, those
    /// of a chained role, replace the pod's own.
    pub fn new(http: SharedHttpClient, credentials: Option<SharedCredentialsProvider>) -> Regions {
        Regions {
            http,
            credentials,
            primary: OnceCell::new(),
            failover: OnceCell::new(),
        }
    }

    pub async fn primary(&self, plan: &Plan) -> &Clients {
        self.primary
            .get_or_init(|| {
                Clients::load(&plan.settings.region, &self.http, self.credentials.clone())
            })
            .await
    }

    async fn failover(&self, region: &str) -> &Clients {
        self.failover
            .get_or_init(|| Clients::load(region, &self.http, self.credentials.clone()))
            .await
    }
}

/// Fetches every object of the plan (see [`fetch_some`]). One result per object, in plan order.
pub async fn fetch_all(plan: &Plan, run: &Run, regions: &Regions) -> Vec<Result<Fetched, Error>> {
    let all: Vec<usize> = (0..plan.objects.len()).collect();
    fetch_some(plan, run, regions, &all)
        .await
        .into_iter()
        .map(|slot| slot.expect("every object was fetched"))
        .collect()
}

/// Fetches the objects at `wanted` (indices into the plan): primary region first, then the
/// failover region for the objects that need it. One slot per object of the plan, `None` for
/// those not wanted.
pub async fn fetch_some(
    plan: &Plan,
    run: &Run,
    regions: &Regions,
    wanted: &[usize],
) -> Vec<Option<Result<Fetched, Error>>> {
    let primary = regions.primary(plan).await;
    crate::timing::mark("SDK clients");
    let targets: Vec<Target<'_>> = primary_targets(plan)
        .into_iter()
        .filter(|t| wanted.contains(&t.object))
        .collect();
    let mut results: Vec<Option<Result<Fetched, Error>>> =
        (0..plan.objects.len()).map(|_| None).collect();
    for (i, result) in fetch_targets(run, primary, &targets).await {
        results[i] = Some(result);
    }
    let retry = failover_targets(plan, &results);
    let Some(failover_region) = plan.settings.failover_region.as_deref() else {
        return results;
    };
    if retry.is_empty() {
        return results;
    }
    for target in &retry {
        if let Some(Err(error)) = &results[target.object] {
            tracing::warn!(
                object = %plan.objects[target.object].label(),
                from = %primary.region,
                to = failover_region,
                error = %error,
                "fetching in the failover region"
            );
        }
    }
    let failover = regions.failover(failover_region).await;
    for (i, result) in fetch_targets(run, failover, &retry).await {
        let primary_result = results[i]
            .take()
            .expect("a failover follows a primary fetch");
        results[i] = Some(match result {
            Ok(fetched) => Ok(fetched),
            Err(error) => Err(after_failover(error, &primary.region, &primary_result)),
        });
    }
    results
}

/// The failover region's error, followed by what the primary region said.
fn after_failover(error: Error, primary_region: &str, primary: &Result<Fetched, Error>) -> Error {
    match (error, primary) {
        (Error::Object { code, hint, kind }, Err(first)) => Error::Object {
            code,
            hint: format!("{hint} (failover region; {primary_region} failed first: {first})"),
            kind,
        },
        (error, _) => error,
    }
}

/// Every target in one region, each read as its kind says: SSM names in batches of ten, paths
/// and secrets one call each, a secret prefix by its listing and then batches of twenty; at
/// most [`CONCURRENCY`] objects, and calls, at once.
async fn fetch_targets(
    run: &Run,
    clients: &Clients,
    targets: &[Target<'_>],
) -> Vec<(usize, Result<Fetched, Error>)> {
    type Job<'f> = LocalBoxFuture<'f, Vec<(usize, Result<Fetched, Error>)>>;
    let parameters: Vec<Target<'_>> = targets
        .iter()
        .filter(|t| t.kind.facts().fetch == Fetch::Parameters)
        .copied()
        .collect();
    let mut jobs: Vec<Job<'_>> = Vec::new();
    for batch in ssm::batches(&parameters) {
        let batch: Vec<Target<'_>> = batch.iter().map(|&i| parameters[i]).collect();
        jobs.push(
            async move {
                ssm::get_parameters(run, clients, &batch)
                    .await
                    .into_iter()
                    .map(|(i, r)| (i, r.map(Fetched::Value)))
                    .collect()
            }
            .boxed_local(),
        );
    }
    for target in targets.iter().copied() {
        match target.kind.facts().fetch {
            // In the batches above.
            Fetch::Parameters => {}
            Fetch::ParametersByPath => jobs.push(
                async move {
                    let result = ssm::get_parameters_by_path(run, clients, &target)
                        .await
                        .map(|parameters| Fetched::Path {
                            base: target.name.to_owned(),
                            parameters,
                        });
                    vec![(target.object, result)]
                }
                .boxed_local(),
            ),
            Fetch::SecretValue => jobs.push(
                async move {
                    let result = secretsmanager::get_secret_value(run, clients, &target)
                        .await
                        .map(Fetched::Value);
                    vec![(target.object, result)]
                }
                .boxed_local(),
            ),
            Fetch::SecretsByPrefix => jobs.push(
                async move {
                    let result = secrets_by_prefix::fetch(run, clients, &target)
                        .await
                        .map(Fetched::Secrets);
                    vec![(target.object, result)]
                }
                .boxed_local(),
            ),
        }
    }
    stream::iter(jobs)
        .buffer_unordered(CONCURRENCY)
        .flat_map(stream::iter)
        .collect()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;
    use secrets_injector_objects::object::ObjectType;
    use secrets_injector_objects::plan;
    use secrets_injector_objects::settings::Settings;

    fn plan(objects: &str, failover_region: Option<&str>) -> Plan {
        let settings = Settings {
            failover_region: failover_region.map(str::to_owned),
            ..Settings::new("us-east-1")
        };
        plan::parse(objects, settings).unwrap()
    }

    const TWO_WITH_FAILOVER: &str = r#"
- objectName: /a
  objectType: ssmparameter
  objectAlias: a
  failoverObject: {objectName: /a-west}
- objectName: s
  objectType: secretsmanager
  objectAlias: s
  failoverObject: {objectName: s-west, objectVersionLabel: AWSPREVIOUS}
- objectName: /c
  objectType: ssmparameter
"#;

    #[test]
    fn primary_targets_follow_the_objects() {
        let p = plan(TWO_WITH_FAILOVER, Some("us-west-2"));
        let t = primary_targets(&p);
        assert_eq!(t.len(), 3);
        assert_eq!(
            (t[1].object, t[1].name, t[1].kind),
            (1, "s", ObjectType::SecretsManager)
        );
    }

    #[test]
    fn only_retryable_failures_with_a_failover_object_fail_over() {
        let p = plan(TWO_WITH_FAILOVER, Some("us-west-2"));
        let results = vec![
            Some(Err(Error::object("HTTP503", "down", Kind::Transient))),
            Some(Err(Error::object(
                "ThrottlingException",
                "Rate exceeded",
                Kind::Throttled,
            ))),
            Some(Err(Error::object("HTTP503", "down", Kind::Transient))),
        ];
        let t = failover_targets(&p, &results);
        // objects[2] has no failoverObject.
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].object, t[0].name), (0, "/a-west"));
        assert_eq!(
            (t[1].object, t[1].name, t[1].label),
            (1, "s-west", Some("AWSPREVIOUS"))
        );
    }

    #[test]
    fn not_found_and_denied_never_fail_over() {
        let p = plan(TWO_WITH_FAILOVER, Some("us-west-2"));
        let results = vec![
            Some(Err(Error::object(
                "ParameterNotFound",
                "no",
                Kind::NotFound,
            ))),
            Some(Err(Error::object(
                "AccessDeniedException",
                "no",
                Kind::Denied,
            ))),
            Some(Ok(Fetched::Value(b"x".to_vec()))),
        ];
        assert!(failover_targets(&p, &results).is_empty());
        // Objects not fetched this time never fail over.
        assert!(failover_targets(&p, &[None, None, None]).is_empty());
    }

    #[test]
    fn a_secret_prefix_fails_over_whole_under_its_own_name_and_tags() {
        let yaml = "- {objectName: prod/payments/, objectType: secretsmanagerpath, objectAlias: p, \
                    tags: {team: payments}}";
        let transient = || vec![Some(Err(Error::object("HTTP503", "down", Kind::Transient)))];
        let p = plan(yaml, Some("us-west-2"));
        assert!(fails_over(&p, &p.objects[0]));
        let t = failover_targets(&p, &transient());
        assert_eq!(t.len(), 1);
        assert_eq!(
            (t[0].name, t[0].version, t[0].label),
            ("prod/payments/", None, None)
        );
        assert_eq!(t[0].tags.get("team").map(String::as_str), Some("payments"));
        // Without a failover region, nothing fails over.
        let p = plan(yaml, None);
        assert!(!fails_over(&p, &p.objects[0]));
        assert!(failover_targets(&p, &transient()).is_empty());
    }

    #[test]
    fn failover_error_keeps_the_primary_error() {
        let primary = Err(Error::object("HTTP503", "down", Kind::Transient));
        let e = after_failover(
            Error::object("ResourceNotFoundException", "missing", Kind::NotFound),
            "us-east-1",
            &primary,
        );
        assert_eq!(
            e.to_string(),
            "ResourceNotFoundException: missing (failover region; us-east-1 failed first: \
             HTTP503: down)"
        );
        assert_eq!(e.kind(), Kind::NotFound);
    }
}
