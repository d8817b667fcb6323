//! Secrets Manager by name prefix and tags (secretsmanagerpath): `ListSecrets` with the prefix
//! and tags as filters, every page, checked again exactly on this side; then
//! `BatchGetSecretValue` by ARN, [`BATCH_SIZE`] a call, the calls side by side.
//!
//! Why the second check: AWS matches the `name`, `tag-key` and `tag-value` filters as prefixes,
//! and `tag-key` and `tag-value` separately, so a secret tagged `team=ops, env=payments` passes
//! the filters of `team=payments`. Only secrets whose name starts with the prefix exactly and
//! that carry every tag with exactly its value are ever read.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, SecretListEntry};
use futures::future::try_join_all;

use crate::aws::paging::{self, Pages, Stop};
use crate::aws::{self, Clients};
use crate::call::{Call, Run, Secret, Target};
use crate::error::{Error, Failure, Kind, with_message};

/// Page size of `ListSecrets` (the API's largest).
pub const PAGE_SIZE: i32 = 100;
/// At most this many ARNs in one `BatchGetSecretValue` call (the API's limit).
pub const BATCH_SIZE: usize = 20;
/// A listing reads at least this many pages before it gives up (see [`max_pages`]).
const MIN_PAGES: usize = 50;
/// `ListSecrets` takes at most ten filters: the name, then two per tag. The tags past the first
/// four are checked on this side only.
const MAX_FILTERED_TAGS: usize = 4;
/// The stage every read returns: `BatchGetSecretValue` reads no other.
const CURRENT: &str = "AWSCURRENT";

/// One secret of a listing that passed the exact check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub arn: String,
    /// The version that holds `AWSCURRENT`.
    pub current: String,
}

/// The filters of the listing: the prefix as `name`, and each of the first tags as `tag-key`
/// and `tag-value` (a value the filter syntax cannot carry is left to the exact check).
pub fn filters(prefix: &str, tags: &BTreeMap<String, String>) -> Vec<Filter> {
    let filter = |key: FilterNameStringType, value: &str| {
        Filter::builder().key(key).values(value.to_owned()).build()
    };
    let mut filters = vec![filter(FilterNameStringType::Name, prefix)];
    for (key, value) in tags
        .iter()
        .filter(|(key, _)| filterable(key))
        .take(MAX_FILTERED_TAGS)
    {
        filters.push(filter(FilterNameStringType::TagKey, key));
        if filterable(value) {
            filters.push(filter(FilterNameStringType::TagValue, value));
        }
    }
    filters
}

/// Whether a filter value carries `text` as it is: ASCII letters, digits and ` :_@/+=.-`
/// (the API's pattern), not empty and not starting with `!` (a negation).
fn filterable(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 512
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " :_@/+=.-".contains(c))
}

/// The exact check: the name starts with the prefix (case matters) and every wanted tag is
/// there with exactly its value.
pub fn matches<'a>(
    prefix: &str,
    wanted: &BTreeMap<String, String>,
    name: &str,
    tags: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
) -> bool {
    name.starts_with(prefix)
        && wanted.iter().all(|(key, value)| {
            tags.clone()
                .into_iter()
                .any(|(k, v)| k == key && v == value)
        })
}

/// The pages a listing for at most `max` secrets reads: enough for ten times as many entries
/// (AWS's filters let through secrets the exact check drops), and at least [`MIN_PAGES`].
pub fn max_pages(max: usize) -> usize {
    max.saturating_mul(10)
        .div_ceil(PAGE_SIZE as usize)
        .max(MIN_PAGES)
}

/// The secrets under the target's prefix that carry its tags, sorted by name: every page of
/// `ListSecrets`, checked exactly. More than `max` fails (the listing stops there), and so do
/// more pages than [`max_pages`] or a page token given twice (see `paging`). An empty result is
/// not an error here: the caller decides what it means.
pub async fn list(
    run: &Run,
    clients: &Clients,
    target: &Target<'_>,
    max: usize,
) -> Result<Vec<Listed>, Error> {
    let filters = filters(target.name, target.tags);
    let mut listed = Vec::new();
    let mut next_token: Option<String> = None;
    let mut pages = Pages::new(max_pages(max));
    // Entries the pages held, before the exact check.
    let mut examined = 0usize;
    loop {
        let token = next_token.take();
        let page = run
            .retry(Call::ListSecrets, || {
                let request = clients
                    .secrets
                    .list_secrets()
                    .set_filters(Some(filters.clone()))
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
            .map_err(|error| describe(Call::ListSecrets, target, &clients.region, &error))?;
        examined += page.secret_list().len();
        for entry in page.secret_list() {
            let Some(found) = exact(target, entry) else {
                continue;
            };
            listed.push(found);
            if listed.len() > max {
                return Err(Error::object(
                    "TooManySecrets",
                    format!(
                        "more than {max} secrets in {} match, over the limit of \
                         --max-secrets-per-object ({max}); narrow the prefix or add tags, or \
                         raise the limit",
                        clients.region
                    ),
                    Kind::Final,
                ));
            }
        }
        match pages.next(page.next_token()) {
            Ok(Some(token)) => next_token = Some(token),
            Ok(None) => break,
            Err(Stop::Repeated { page }) => {
                return Err(paging::looped(Call::ListSecrets, &clients.region, page));
            }
            Err(Stop::TooMany { max: pages }) => {
                return Err(too_long(
                    &clients.region,
                    pages,
                    examined,
                    listed.len(),
                    max,
                ));
            }
        }
    }
    listed.sort_by(|a, b| a.name.cmp(&b.name));
    // The same secret on two pages (the list changed while it was read) is read once.
    listed.dedup_by(|a, b| a.arn == b.arn);
    Ok(listed)
}

/// A listing that went on past its pages: mostly secrets that pass AWS's filters but not the
/// exact check (tags that match apart, other cases of the name).
fn too_long(region: &str, pages: usize, examined: usize, matched: usize, max: usize) -> Error {
    Error::object(
        "ListingTooLong",
        format!(
            "ListSecrets in {region} went on past {pages} pages: {examined} secrets passed its \
             filters and {matched} of them have the prefix and tags exactly; a listing reads at \
             most the pages for ten times --max-secrets-per-object ({max}) secrets, and at least \
             {MIN_PAGES}: narrow the prefix, or add tags, so that fewer secrets pass AWS's \
             filters"
        ),
        Kind::Final,
    )
}

/// One entry of a listing, if it passes the exact check and has a value to read.
fn exact(target: &Target<'_>, entry: &SecretListEntry) -> Option<Listed> {
    let (name, arn) = (entry.name()?, entry.arn()?);
    let tags = entry
        .tags()
        .iter()
        .filter_map(|tag| Some((tag.key()?, tag.value().unwrap_or_default())));
    if !matches(target.name, target.tags, name, tags) {
        return None;
    }
    let current = entry
        .secret_versions_to_stages()
        .into_iter()
        .flatten()
        .find(|(_, stages)| stages.iter().any(|s| s == CURRENT));
    let Some((current, _)) = current else {
        // Created without a value: there is nothing to read or write yet.
        tracing::info!(
            secret = name,
            "secret has no AWSCURRENT version yet; skipped"
        );
        return None;
    };
    Some(Listed {
        name: name.to_owned(),
        arn: arn.to_owned(),
        current: current.clone(),
    })
}

/// Every listed secret's current value, [`BATCH_SIZE`] a `BatchGetSecretValue` call, the calls
/// side by side (within the run's concurrency). Any secret that fails fails the whole, naming
/// it. Sorted by name.
pub async fn read(
    run: &Run,
    clients: &Clients,
    target: &Target<'_>,
    listed: &[Listed],
) -> Result<Vec<Secret>, Error> {
    let batches = listed
        .chunks(BATCH_SIZE)
        .map(|batch| read_batch(run, clients, target, batch));
    let mut secrets: Vec<Secret> = try_join_all(batches).await?.concat();
    secrets.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(secrets)
}

/// Lists, then reads every secret found. None found is `SecretsNotFound` (what `optional`
/// forgives).
pub async fn fetch(
    run: &Run,
    clients: &Clients,
    target: &Target<'_>,
) -> Result<Vec<Secret>, Error> {
    let listed = list(run, clients, target, run.max_secrets).await?;
    if listed.is_empty() {
        return Err(none_found(target, &clients.region));
    }
    read(run, clients, target, &listed).await
}

/// No secret in `region` under the target's prefix with its tags.
pub fn none_found(target: &Target<'_>, region: &str) -> Error {
    let tags = if target.tags.is_empty() {
        String::new()
    } else {
        let pairs: Vec<String> = target
            .tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(" with the tags {}", pairs.join(", "))
    };
    Error::object(
        "SecretsNotFound",
        format!(
            "no secret in {region} has a name starting with {:?}{tags}",
            target.name
        ),
        Kind::NotFound,
    )
}

/// One `BatchGetSecretValue` call for at most [`BATCH_SIZE`] secrets.
async fn read_batch(
    run: &Run,
    clients: &Clients,
    target: &Target<'_>,
    batch: &[Listed],
) -> Result<Vec<Secret>, Error> {
    let arns: Vec<String> = batch.iter().map(|s| s.arn.clone()).collect();
    let output = run
        .retry(Call::BatchGetSecretValue, || {
            let request = clients
                .secrets
                .batch_get_secret_value()
                .set_secret_id_list(Some(arns.clone()));
            async move {
                request
                    .send()
                    .await
                    .map_err(|err| Error::Aws(aws::classify(&err)))
            }
        })
        .await
        .map_err(|error| describe(Call::BatchGetSecretValue, target, &clients.region, &error))?;
    if let Some(failed) = output.errors().first() {
        let name = batch
            .iter()
            .find(|s| failed.secret_id() == Some(s.arn.as_str()))
            .map_or_else(|| failed.secret_id().unwrap_or_default(), |s| &s.name);
        return Err(secret_failed(
            name,
            failed.error_code().unwrap_or("Error"),
            failed.message().unwrap_or_default(),
            &clients.region,
        ));
    }
    let by_arn: HashMap<&str, _> = output
        .secret_values()
        .iter()
        .filter_map(|entry| Some((entry.arn()?, entry)))
        .collect();
    batch
        .iter()
        .map(|listed| {
            let entry = by_arn.get(listed.arn.as_str()).ok_or_else(|| {
                Error::object(
                    "SecretMissing",
                    format!(
                        "secret {:?}: BatchGetSecretValue in {} answered neither its value nor \
                         an error",
                        listed.name, clients.region
                    ),
                    Kind::Transient,
                )
            })?;
            let value = if let Some(text) = entry.secret_string() {
                text.as_bytes().to_vec()
            } else if let Some(blob) = entry.secret_binary() {
                blob.as_ref().to_vec()
            } else {
                return Err(Error::object(
                    "EmptySecret",
                    format!(
                        "secret {:?}: its current version in {} has neither SecretString nor \
                         SecretBinary",
                        listed.name, clients.region
                    ),
                    Kind::Final,
                ));
            };
            Ok(Secret {
                name: listed.name.clone(),
                arn: listed.arn.clone(),
                version: entry.version_id().unwrap_or_default().to_owned(),
                value,
            })
        })
        .collect()
}

/// One secret that failed inside a batch (its `Errors` entry), as a single secret's failure
/// reads. A secret that vanished between the listing and the read is no `optional` miss: the
/// object as a whole exists.
fn secret_failed(name: &str, code: &str, message: &str, region: &str) -> Error {
    let failure = aws::classify_service(Some(code), Some(message), 400);
    let kind = match failure.kind {
        Kind::NotFound => Kind::Final,
        kind => kind,
    };
    let hint = match (failure.kind, code) {
        (Kind::Denied, _) => format!(
            "the role of this pod's service account needs secretsmanager:GetSecretValue on \
             this secret ({}; kms:Decrypt too when its key is customer-managed)",
            secret_pattern(name, region)
        ),
        (_, "DecryptionFailure") => with_message(
            "the role of this pod's service account needs kms:Decrypt on the secret's KMS key"
                .to_owned(),
            message,
        ),
        (Kind::NotFound, _) => format!(
            "it was listed but is gone from {region} (deleted or renamed meanwhile); the next \
             try lists again"
        ),
        _ => with_message(format!("reading it failed in {region}"), message),
    };
    Error::object(code, format!("secret {name:?}: {hint}"), kind)
}

/// The ARN pattern of one secret by name, for hints.
fn secret_pattern(name: &str, region: &str) -> String {
    format!(
        "arn:{}:secretsmanager:{region}:*:secret:{name}-??????",
        aws::partition(region)
    )
}

/// A whole call that failed, as the report shows it. Neither action takes a resource, which
/// makes a missing one the commonest mistake: the hint names it, and `Resource: "*"`.
fn describe(call: Call, target: &Target<'_>, region: &str, error: &Error) -> Error {
    let Error::Aws(failure) = error else {
        return error.copy_other();
    };
    let Failure { code, kind, .. } = failure;
    let message = &failure.detail();
    let action = call.iam();
    let hint = match kind {
        Kind::Denied => {
            let read = if call == Call::BatchGetSecretValue {
                format!(
                    ", and secretsmanager:GetSecretValue on arn:{}:secretsmanager:{region}:*:\
                     secret:{}*",
                    aws::partition(region),
                    target.name
                )
            } else {
                String::new()
            };
            with_message(
                format!(
                    "the role of this pod's service account needs {action} on Resource \"*\" \
                     (it takes no resource){read}"
                ),
                message,
            )
        }
        Kind::Throttled => with_message(
            format!(
                "Secrets Manager in {region} kept throttling {action} (100 calls a second per \
                 account and region)"
            ),
            message,
        ),
        Kind::Transient => with_message(
            format!("Secrets Manager in {region} did not answer {action}"),
            message,
        ),
        Kind::NotFound | Kind::Final => {
            with_message(format!("{action} failed in {region}"), message)
        }
    };
    Error::object(code.clone(), hint, *kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::NO_TAGS;
    use secrets_injector_objects::object::ObjectType;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn target<'a>(prefix: &'a str, tags: &'a BTreeMap<String, String>) -> Target<'a> {
        Target {
            object: 0,
            name: prefix,
            version: None,
            label: None,
            kind: ObjectType::SecretsManagerPath,
            tags,
        }
    }

    #[test]
    fn the_pair_is_checked_not_the_key_and_the_value_apart() {
        let wanted = tags(&[("team", "payments")]);
        // What AWS's separate tag-key and tag-value filters let through.
        let ops = [("team", "ops"), ("env", "payments")];
        assert!(!matches("prod/", &wanted, "prod/a", ops));
        assert!(matches(
            "prod/",
            &wanted,
            "prod/a",
            [("env", "x"), ("team", "payments")]
        ));
        // Prefixes of keys and values are not the tag.
        assert!(!matches(
            "prod/",
            &wanted,
            "prod/a",
            [("team", "payments-old")]
        ));
        assert!(!matches(
            "prod/",
            &wanted,
            "prod/a",
            [("teams", "payments")]
        ));
        assert!(!matches("prod/", &wanted, "prod/a", [("Team", "payments")]));
        // Every wanted tag must be there.
        let two = tags(&[("team", "payments"), ("env", "prod")]);
        assert!(!matches("prod/", &two, "prod/a", [("team", "payments")]));
    }

    #[test]
    fn the_name_must_start_with_the_prefix_exactly() {
        assert!(matches("prod/payments/", &NO_TAGS, "prod/payments/db", []));
        // AWS's name filter matches more than the exact prefix.
        assert!(!matches("prod/payments/", &NO_TAGS, "Prod/payments/db", []));
        assert!(!matches(
            "prod/payments/",
            &NO_TAGS,
            "other/prod/payments/db",
            []
        ));
        assert!(!matches("prod/payments/", &NO_TAGS, "prod/payments", []));
    }

    #[test]
    fn filters_carry_the_prefix_and_the_first_four_tags() {
        let keys_values = |filters: &[Filter]| -> Vec<(String, String)> {
            filters
                .iter()
                .map(|f| {
                    (
                        f.key().map(|k| k.as_str().to_owned()).unwrap_or_default(),
                        f.values().join(","),
                    )
                })
                .collect()
        };
        let many = tags(&[
            ("a", "1"),
            ("b", ""),
            ("c", "é"),
            ("d", "4"),
            ("e", "5"),
            ("f", "6"),
            ("équipe", "x"),
        ]);
        let got = keys_values(&filters("prod/", &many));
        assert_eq!(
            got,
            [
                ("name", "prod/"),
                ("tag-key", "a"),
                ("tag-value", "1"),
                ("tag-key", "b"),
                ("tag-key", "c"),
                ("tag-key", "d"),
                ("tag-value", "4"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert!(got.len() <= 10);
        assert_eq!(keys_values(&filters("p", &NO_TAGS)).len(), 1);
    }

    #[test]
    fn a_missing_permission_is_named_with_resource_star() {
        let t = target("prod/payments/", &NO_TAGS);
        let denied = Error::Aws(Failure::new("AccessDeniedException", "", Kind::Denied));
        let e = describe(Call::ListSecrets, &t, "us-east-1", &denied);
        assert_eq!(
            e.to_string(),
            "AccessDeniedException: the role of this pod's service account needs \
             secretsmanager:ListSecrets on Resource \"*\" (it takes no resource)"
        );
        assert_eq!(e.kind(), Kind::Denied);
        let e = describe(Call::BatchGetSecretValue, &t, "us-east-1", &denied);
        assert_eq!(
            e.to_string(),
            "AccessDeniedException: the role of this pod's service account needs \
             secretsmanager:BatchGetSecretValue on Resource \"*\" (it takes no resource), and \
             secretsmanager:GetSecretValue on \
             arn:aws:secretsmanager:us-east-1:*:secret:prod/payments/*"
        );
    }

    #[test]
    fn a_secret_that_fails_in_a_batch_is_named_with_its_code() {
        let e = secret_failed(
            "prod/payments/db",
            "AccessDeniedException",
            "no",
            "us-east-1",
        );
        assert_eq!(
            e.to_string(),
            "AccessDeniedException: secret \"prod/payments/db\": the role of this pod's service \
             account needs secretsmanager:GetSecretValue on this secret \
             (arn:aws:secretsmanager:us-east-1:*:secret:prod/payments/db-??????; kms:Decrypt too \
             when its key is customer-managed)"
        );
        assert_eq!(e.kind(), Kind::Denied);
        let e = secret_failed(
            "prod/payments/db",
            "ResourceNotFoundException",
            "gone",
            "us-east-1",
        );
        assert!(e.to_string().starts_with(
            "ResourceNotFoundException: secret \"prod/payments/db\": it was listed but is gone"
        ));
        // Not what optional forgives: the object itself exists.
        assert_eq!(e.kind(), Kind::Final);
        let e = secret_failed("s", "DecryptionFailure", "key disabled", "us-east-1");
        assert!(e.to_string().contains("kms:Decrypt"), "{e}");
    }

    #[test]
    fn a_listing_reads_the_pages_for_ten_times_the_limit_and_at_least_fifty() {
        assert_eq!(max_pages(500), 50);
        assert_eq!(max_pages(1), 50);
        assert_eq!(max_pages(10_000), 1_000);
        assert_eq!(max_pages(1_001), 101);
        let e = too_long("us-east-1", 50, 5_000, 3, 500);
        assert_eq!(
            e.to_string(),
            "ListingTooLong: ListSecrets in us-east-1 went on past 50 pages: 5000 secrets passed \
             its filters and 3 of them have the prefix and tags exactly; a listing reads at most \
             the pages for ten times --max-secrets-per-object (500) secrets, and at least 50: \
             narrow the prefix, or add tags, so that fewer secrets pass AWS's filters"
        );
        assert_eq!(e.kind(), Kind::Final);
    }

    #[test]
    fn none_found_names_the_prefix_and_tags() {
        let wanted = tags(&[("team", "payments")]);
        let e = none_found(&target("prod/", &wanted), "us-west-2");
        assert_eq!(
            e.to_string(),
            "SecretsNotFound: no secret in us-west-2 has a name starting with \"prod/\" with \
             the tags team=payments"
        );
        assert_eq!(e.kind(), Kind::NotFound);
    }
}
