//! Role chaining (`assume-role-arn`, `assume-role-external-id`, `assume-role-duration-seconds`):
//! the rules the webhook checks at admission and the injector checks on its flags. The role ARN
//! itself is `arn::check_role_arn`.

/// Shortest session STS grants.
pub const MIN_DURATION_SECONDS: u32 = 900;
/// Longest: AWS caps a session assumed with a role's own credentials (role chaining) at an hour.
pub const MAX_DURATION_SECONDS: u32 = 3600;
/// The session length when the pod sets none.
pub const DEFAULT_DURATION_SECONDS: u32 = MAX_DURATION_SECONDS;

/// The external id as STS accepts it: 2 to 1224 characters of letters, digits and `_+=,.@:/-`.
pub fn check_external_id(text: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c);
    if !(2..=1224).contains(&text.len()) || !text.chars().all(allowed) {
        return Err(format!(
            "is not an external id STS accepts: 2 to 1224 characters of letters, digits and \
             _+=,.@:/- (it is {} bytes long); use the id the role's trust policy names in its \
             sts:ExternalId condition",
            text.len()
        ));
    }
    Ok(())
}

/// A session length in whole seconds, from 900 to 3600.
pub fn parse_duration_seconds(text: &str) -> Result<u32, String> {
    text.parse::<u32>()
        .ok()
        .filter(|s| (MIN_DURATION_SECONDS..=MAX_DURATION_SECONDS).contains(s))
        .ok_or_else(|| {
            format!(
                "{text:?} is not a whole number of seconds from {MIN_DURATION_SECONDS} to \
                 {MAX_DURATION_SECONDS} (AWS caps a chained role session at one hour)"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_ids() {
        for good in ["ab", "tenant-42", "a_b+c=d,e.f@g:h/i-j", &"x".repeat(1224)] {
            assert!(check_external_id(good).is_ok(), "{good}");
        }
        for bad in ["", "a", "has space", "quote'", "é1", &"x".repeat(1225)] {
            let err = check_external_id(bad).unwrap_err();
            assert!(err.contains("2 to 1224 characters"), "{err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_seconds("900"), Ok(900));
        assert_eq!(parse_duration_seconds("3600"), Ok(3600));
        for bad in ["899", "3601", "1h", "", "-1", "900.0"] {
            let err = parse_duration_seconds(bad).unwrap_err();
            assert!(err.contains("from 900 to 3600"), "{bad}: {err}");
        }
    }
}
