//! Parameter Store: `GetParameters` in batches, `GetParametersByPath` for path objects.

use std::collections::HashMap;

use aws_sdk_ssm::types::{Parameter, ParameterType};
use secrets_injector_objects::arn::Arn;

use crate::aws::paging::{self, Pages, Stop};
use crate::aws::{self, Clients};
use crate::call::{Call, Run, Target};
use crate::error::{Error, Failure, Kind, with_message};

/// At most this many names in one `GetParameters` call (the API's limit).
pub const BATCH_SIZE: usize = 10;
/// Page size of `GetParametersByPath` (the API's largest).
pub const PAGE_SIZE: i32 = 10;
/// Parameters a region of an account can hold (10,000 standard and 100,000 advanced): a path
/// listing that goes on past their pages is not Parameter Store's answer.
const MOST_PARAMETERS: usize = 110_000;

/// The name as `GetParameters` takes it: `name`, `name:3` or `name:label`.
pub fn selector(target: &Target<'_>) -> String {
    match (target.version, target.label) {
        (Some(version), _) => format!("{}:{version}", target.name),
        (None, Some(label)) => format!("{}:{label}", target.name),
        (None, None) => target.name.to_owned(),
    }
}

/// What identifies a parameter in a response, whether it was asked for by name or ARN: the
/// name below `parameter/` of an ARN, without its leading '/'. (AWS answers an ARN with the
/// bare name, and moto does not return `Selector`, so results are matched by this key and two
/// requests with one key never share a call.)
pub fn name_key(name: &str) -> &str {
    let bare = if Arn::is_arn(name) {
        name.splitn(6, ':')
            .nth(5)
            .and_then(|resource| resource.strip_prefix("parameter"))
            .unwrap_or(name)
    } else {
        name
    };
    bare.strip_prefix('/').unwrap_or(bare)
}

/// Splits parameter targets into `GetParameters` calls: at most [`BATCH_SIZE`] each, never two
/// targets with one [`name_key`] in a call. Returns indices into `targets`, in order.
pub fn batches(targets: &[Target<'_>]) -> Vec<Vec<usize>> {
    let mut batches: Vec<Vec<usize>> = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let key = name_key(target.name);
        let fits = batches.iter_mut().find(|batch| {
            batch.len() < BATCH_SIZE && batch.iter().all(|&j| name_key(targets[j].name) != key)
        });
        match fits {
            Some(batch) => batch.push(i),
            None => batches.push(vec![i]),
        }
    }
    batches
}

/// One `GetParameters` call for `batch`, with decryption: each target's value.
pub async fn get_parameters(
    run: &Run,
    clients: &Clients,
    batch: &[Target<'_>],
) -> Vec<(usize, Result<Vec<u8>, Error>)> {
    let region = clients.region.as_str();
    get_parameters_as(run, clients, batch, true)
        .await
        .into_iter()
        .map(|(i, result)| {
            let value = result.and_then(|p| p.value.ok_or_else(|| not_found(region)));
            (i, value.map(String::into_bytes))
        })
        .collect()
}

/// A parameter's version as `GetParameters` without decryption gives it (no KMS call), with
/// its value when that is not encrypted (a `String` or `StringList`), since it then needs no
/// second call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub version: i64,
    pub plain: Option<Vec<u8>>,
}

/// One `GetParameters` call for `batch` without decryption: each target's [`Version`].
pub async fn get_versions(
    run: &Run,
    clients: &Clients,
    batch: &[Target<'_>],
) -> Vec<(usize, Result<Version, Error>)> {
    get_parameters_as(run, clients, batch, false)
        .await
        .into_iter()
        .map(|(i, result)| {
            let version = result.map(|p| {
                let plain = matches!(
                    p.r#type,
                    Some(ParameterType::String | ParameterType::StringList)
                );
                Version {
                    version: p.version,
                    plain: p.value.filter(|_| plain).map(String::into_bytes),
                }
            });
            (i, version)
        })
        .collect()
}

/// One `GetParameters` call; when the whole call is refused (access denied to one name refuses
/// them all, as does one malformed name), each name is asked alone to say which.
async fn get_parameters_as(
    run: &Run,
    clients: &Clients,
    batch: &[Target<'_>],
    decrypt: bool,
) -> Vec<(usize, Result<Parameter, Error>)> {
    let region = clients.region.as_str();
    match call_get_parameters(run, clients, batch, decrypt).await {
        Ok(results) => results,
        Err(error) if batch.len() > 1 && refused_as_a_whole(&error) => {
            tracing::info!(
                region,
                names = batch.len(),
                "GetParameters refused for the whole batch; asking name by name"
            );
            let singles = batch.iter().map(|target| async move {
                match call_get_parameters(run, clients, std::slice::from_ref(target), decrypt).await
                {
                    Ok(mut results) => results.pop().expect("one result per target"),
                    Err(error) => (
                        target.object,
                        Err(describe(Call::GetParameters, target, region, &error)),
                    ),
                }
            });
            futures::future::join_all(singles).await
        }
        Err(error) => batch
            .iter()
            .map(|target| {
                (
                    target.object,
                    Err(describe(Call::GetParameters, target, region, &error)),
                )
            })
            .collect(),
    }
}

fn refused_as_a_whole(error: &Error) -> bool {
    matches!(error, Error::Aws(Failure { code, kind, .. })
        if *kind == Kind::Denied || code == "ValidationException")
}

/// One call with retries. Errors are raw (AWS code and message); [`describe`] words them for
/// each target.
async fn call_get_parameters(
    run: &Run,
    clients: &Clients,
    batch: &[Target<'_>],
    decrypt: bool,
) -> Result<Vec<(usize, Result<Parameter, Error>)>, Error> {
    let selectors: Vec<String> = batch.iter().map(selector).collect();
    let output = run
        .retry(Call::GetParameters, || {
            let request = clients
                .ssm
                .get_parameters()
                .set_names(Some(selectors.clone()))
                .with_decryption(decrypt);
            async move {
                request
                    .send()
                    .await
                    .map_err(|err| Error::Aws(aws::classify(&err)))
            }
        })
        .await?;
    Ok(match_results(batch, output.parameters(), &clients.region))
}

/// Pairs each target of one call with its parameter, or with ParameterNotFound when the
/// response lists it in InvalidParameters (or leaves it out).
fn match_results(
    batch: &[Target<'_>],
    parameters: &[Parameter],
    region: &str,
) -> Vec<(usize, Result<Parameter, Error>)> {
    let by_key: HashMap<&str, &Parameter> = parameters
        .iter()
        .filter_map(|parameter| Some((name_key(parameter.name()?), parameter)))
        .collect();
    batch
        .iter()
        .map(|target| {
            let result = match by_key.get(name_key(target.name)) {
                Some(parameter) => Ok((*parameter).clone()),
                None => Err(not_found(region)),
            };
            (target.object, result)
        })
        .collect()
}

fn not_found(region: &str) -> Error {
    Error::object(
        "ParameterNotFound",
        format!("the parameter, version or label does not exist in {region}"),
        Kind::NotFound,
    )
}

/// The ARN an IAM policy must allow for `name` (an ARN already, or a name in `region`).
fn parameter_arn(name: &str, region: &str) -> String {
    if Arn::is_arn(name) {
        return name.to_owned();
    }
    let slash = if name.starts_with('/') { "" } else { "/" };
    format!(
        "arn:{}:ssm:{region}:*:parameter{slash}{name}",
        aws::partition(region)
    )
}

/// A raw SSM failure of `call` as the report shows it for `target`: the code and what to do
/// about it.
pub fn describe(call: Call, target: &Target<'_>, region: &str, error: &Error) -> Error {
    let Error::Aws(failure) = error else {
        return error.copy_other();
    };
    let Failure { code, kind, .. } = failure;
    let message = &failure.detail();
    let action = call.iam();
    let hint = match kind {
        Kind::NotFound => return not_found(region),
        Kind::Denied => {
            let arn = aws::denied_resource(message)
                .map(str::to_owned)
                .unwrap_or_else(|| parameter_arn(target.name, region));
            format!(
                "the role of this pod's service account needs {action} on {arn} \
                 (and kms:Decrypt on the key of a SecureString with a customer-managed key)"
            )
        }
        Kind::Throttled => with_message(
            format!("Parameter Store in {region} kept throttling {action}"),
            message,
        ),
        Kind::Transient => with_message(
            format!("Parameter Store in {region} did not answer {action}"),
            message,
        ),
        Kind::Final => with_message(format!("{action} failed in {region}"), message),
    };
    Error::object(code.clone(), hint, *kind)
}

/// Every parameter under the target's path, recursively, every page: (name, value) pairs.
pub async fn get_parameters_by_path(
    run: &Run,
    clients: &Clients,
    target: &Target<'_>,
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let parameters = parameters_by_path(run, clients, target, true).await?;
    Ok(parameters
        .into_iter()
        .filter_map(|p| Some((p.name?, p.value?.into_bytes())))
        .collect())
}

/// Every parameter under the target's path with its version, without decryption (no KMS call):
/// (name, version) pairs sorted by name.
pub async fn get_path_versions(
    run: &Run,
    clients: &Clients,
    target: &Target<'_>,
) -> Result<Vec<(String, i64)>, Error> {
    let parameters = parameters_by_path(run, clients, target, false).await?;
    let mut versions: Vec<(String, i64)> = parameters
        .into_iter()
        .filter_map(|p| Some((p.name?, p.version)))
        .collect();
    versions.sort();
    Ok(versions)
}

async fn parameters_by_path(
    run: &Run,
    clients: &Clients,
    target: &Target<'_>,
    decrypt: bool,
) -> Result<Vec<Parameter>, Error> {
    let mut parameters = Vec::new();
    let mut next_token: Option<String> = None;
    let mut pages = Pages::new(MOST_PARAMETERS.div_ceil(PAGE_SIZE as usize));
    loop {
        let token = next_token.take();
        let page = run
            .retry(Call::GetParametersByPath, || {
                let request = clients
                    .ssm
                    .get_parameters_by_path()
                    .path(target.name)
                    .recursive(true)
                    .with_decryption(decrypt)
                    .max_results(PAGE_SIZE)
                    .set_next_token(token.clone());
                async move {
                    request
                        .send()
                        .await
                        .map_err(|err| Error::Aws(aws::classify(&err)))
                }
            })
            .await
            .map_err(|error| {
                describe(Call::GetParametersByPath, target, &clients.region, &error)
            })?;
        parameters.extend(
            page.parameters()
                .iter()
                .filter(|p| p.name().is_some() && p.value().is_some())
                .cloned(),
        );
        match pages.next(page.next_token()) {
            Ok(Some(token)) => next_token = Some(token),
            Ok(None) => break,
            Err(Stop::Repeated { page }) => {
                return Err(paging::looped(
                    Call::GetParametersByPath,
                    &clients.region,
                    page,
                ));
            }
            Err(Stop::TooMany { max }) => return Err(too_long(&clients.region, max)),
        }
    }
    if parameters.is_empty() {
        return Err(Error::object(
            "ParametersNotFound",
            format!(
                "no parameters under the path {} in {}",
                target.name, clients.region
            ),
            Kind::NotFound,
        ));
    }
    Ok(parameters)
}

/// A path listing that went on past the pages of every parameter a region can hold.
fn too_long(region: &str, pages: usize) -> Error {
    Error::object(
        "ListingTooLong",
        format!(
            "GetParametersByPath in {region} went on past {pages} pages, the pages of the \
             {MOST_PARAMETERS} parameters a region can hold at most: not Parameter Store's own \
             answer, so the listing stops (the next try lists again)"
        ),
        Kind::Transient,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrets_injector_objects::object::ObjectType;

    fn target(object: usize, name: &str) -> Target<'_> {
        Target {
            object,
            name,
            version: None,
            label: None,
            kind: ObjectType::SsmParameter,
            tags: &crate::call::NO_TAGS,
        }
    }

    #[test]
    fn a_path_listing_stops_past_the_pages_of_a_full_region() {
        let e = too_long("us-east-1", MOST_PARAMETERS.div_ceil(PAGE_SIZE as usize));
        assert_eq!(
            e.to_string(),
            "ListingTooLong: GetParametersByPath in us-east-1 went on past 11000 pages, the \
             pages of the 110000 parameters a region can hold at most: not Parameter Store's \
             own answer, so the listing stops (the next try lists again)"
        );
    }

    #[test]
    fn selectors_carry_version_or_label() {
        let mut t = target(0, "/app/db");
        assert_eq!(selector(&t), "/app/db");
        t.version = Some("3");
        assert_eq!(selector(&t), "/app/db:3");
        t.version = None;
        t.label = Some("stable");
        assert_eq!(selector(&t), "/app/db:stable");
    }

    #[test]
    fn name_keys_match_names_and_arns() {
        assert_eq!(name_key("/app/db"), "app/db");
        assert_eq!(
            name_key("arn:aws:ssm:us-east-1:123456789012:parameter/app/db"),
            "app/db"
        );
        assert_eq!(name_key("plain"), "plain");
        assert_eq!(
            name_key("arn:aws:ssm:us-east-1:123456789012:parameter/plain"),
            "plain"
        );
    }

    #[test]
    fn batches_hold_at_most_ten_names() {
        let names: Vec<String> = (0..25).map(|i| format!("/p/{i}")).collect();
        let targets: Vec<Target<'_>> = names
            .iter()
            .enumerate()
            .map(|(i, n)| target(i, n))
            .collect();
        let b = batches(&targets);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 5]);
        let flat: Vec<usize> = b.concat();
        assert_eq!(flat, (0..25).collect::<Vec<_>>());
    }

    #[test]
    fn one_name_never_appears_twice_in_a_call() {
        let names = [
            "/app/db",
            "/app/db",
            "arn:aws:ssm:us-east-1:123456789012:parameter/app/db",
            "/other",
        ];
        let mut targets: Vec<Target<'_>> = names
            .iter()
            .enumerate()
            .map(|(i, n)| target(i, n))
            .collect();
        targets[0].version = Some("1");
        targets[1].label = Some("stable");
        let b = batches(&targets);
        assert_eq!(b, vec![vec![0, 3], vec![1], vec![2]]);
    }

    #[test]
    fn arns_for_hints() {
        assert_eq!(
            parameter_arn("/app/db", "us-east-1"),
            "arn:aws:ssm:us-east-1:*:parameter/app/db"
        );
        assert_eq!(
            parameter_arn("plain", "cn-north-1"),
            "arn:aws-cn:ssm:cn-north-1:*:parameter/plain"
        );
        let arn = "arn:aws:ssm:us-east-1:123456789012:parameter/x";
        assert_eq!(parameter_arn(arn, "us-east-1"), arn);
    }

    #[test]
    fn denied_hint_names_the_action_and_resource() {
        let t = target(0, "/app/db");
        let raw = Error::Aws(Failure::new("AccessDeniedException", "", Kind::Denied));
        let e = describe(Call::GetParameters, &t, "us-east-1", &raw);
        assert_eq!(
            e.to_string(),
            "AccessDeniedException: the role of this pod's service account needs \
             ssm:GetParameters on arn:aws:ssm:us-east-1:*:parameter/app/db (and kms:Decrypt on \
             the key of a SecureString with a customer-managed key)"
        );
        assert_eq!(e.kind(), Kind::Denied);
    }

    #[test]
    fn results_are_matched_by_name_and_missing_ones_are_not_found() {
        let targets = [
            target(4, "arn:aws:ssm:us-east-1:1:parameter/a"),
            target(7, "/b"),
        ];
        let parameters = [Parameter::builder().name("/a").value("va").build()];
        let out = match_results(&targets, &parameters, "eu-west-1");
        assert_eq!(out[0].0, 4);
        assert_eq!(out[0].1.as_ref().unwrap().value(), Some("va"));
        assert_eq!(out[1].0, 7);
        assert_eq!(
            out[1].1.as_ref().unwrap_err().to_string(),
            "ParameterNotFound: the parameter, version or label does not exist in eu-west-1"
        );
    }
}
