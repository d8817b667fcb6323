//! Amazon Resource Names in `objectName`.

use std::fmt;
use std::str::FromStr;

use crate::kind::ObjectType;

/// `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account: String,
    pub resource: String,
}

impl Arn {
    /// Whether `name` is meant as an ARN (ASCP's test: it starts with `arn:`).
    pub fn is_arn(name: &str) -> bool {
        name.starts_with("arn:")
    }

    /// The kind of object the ARN names: an SSM parameter (`ssm`, `parameter/...`) or a
    /// Secrets Manager secret (`secretsmanager`, `secret:...`); `None` for anything else.
    pub fn object_type(&self) -> Option<ObjectType> {
        ObjectType::of_arn(&self.service, &self.resource)
    }
}

impl FromStr for Arn {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |why: &str| {
            format!(
                "{s:?} is not a valid ARN ({why}); write it as \
                 arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE, e.g. \
                 arn:aws:secretsmanager:us-east-1:123456789012:secret:name"
            )
        };
        let rest = s
            .strip_prefix("arn:")
            .ok_or_else(|| invalid("it does not start with arn:"))?;
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [partition, service, region, account, resource] = parts[..] else {
            return Err(invalid("it has fewer than six ':'-separated parts"));
        };
        if partition.is_empty() {
            return Err(invalid("the partition is empty"));
        }
        if service.is_empty() {
            return Err(invalid("the service is empty"));
        }
        if resource.is_empty() {
            return Err(invalid("the resource is empty"));
        }
        Ok(Self {
            partition: partition.to_owned(),
            service: service.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            resource: resource.to_owned(),
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account, self.resource
        )
    }
}

/// Whether `text` is an AWS account id: twelve digits.
pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// An IAM role ARN (`arn:PARTITION:iam::ACCOUNT:role/NAME`, the name possibly under a path),
/// for `assume-role-arn` (the webhook and the injector) and `webhook policy --pod-role-arn`;
/// `what` names where it came from in the message.
pub fn check_role_arn(text: &str, what: &str) -> Result<String, String> {
    let bad = |why: &str| {
        format!(
            "{what} {text:?} {why}; give a role ARN such as arn:aws:iam::111122223333:role/NAME"
        )
    };
    let arn: Arn = text.parse().map_err(|_| bad("is not an ARN"))?;
    let name = arn.resource.strip_prefix("role/").unwrap_or_default();
    if arn.service != "iam" || name.is_empty() || name.contains(['*', '?']) {
        return Err(bad("is not the ARN of one IAM role"));
    }
    if !arn.region.is_empty() {
        return Err(bad("has a region, and IAM ARNs have none"));
    }
    if !is_account_id(&arn.account) {
        return Err(bad("has no twelve-digit account id"));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_secrets_manager_and_ssm_arns() {
        let arn: Arn = "arn:aws:secretsmanager:us-west-2:123456789012:secret:app/db-AbCdEf"
            .parse()
            .unwrap();
        assert_eq!(arn.partition, "aws");
        assert_eq!(arn.service, "secretsmanager");
        assert_eq!(arn.region, "us-west-2");
        assert_eq!(arn.account, "123456789012");
        assert_eq!(arn.resource, "secret:app/db-AbCdEf");
        assert_eq!(arn.object_type(), Some(ObjectType::SecretsManager));
        assert_eq!(
            arn.to_string(),
            "arn:aws:secretsmanager:us-west-2:123456789012:secret:app/db-AbCdEf"
        );

        let arn: Arn = "arn:aws-cn:ssm:cn-north-1:123456789012:parameter/app/db"
            .parse()
            .unwrap();
        assert_eq!(arn.object_type(), Some(ObjectType::SsmParameter));
    }

    #[test]
    fn other_services_and_resources_have_no_object_type() {
        for other in [
            "arn:aws:sts:us-west-2:123456789012:parameter/feaw",
            "arn:aws:ssm:us-west-2:123456789012:document/x",
            "arn:aws:secretsmanager:us-west-2:123456789012:other:x",
            "arn:aws:s3:::bucket",
        ] {
            let arn: Arn = other.parse().unwrap();
            assert_eq!(arn.object_type(), None, "{other}");
        }
    }

    #[test]
    fn rejects_malformed_arns() {
        for bad in [
            "arn::",
            "arn:aws:ssm",
            "arn:aws:ssm:us-west-2:1",
            "arn::ssm:r:a:parameter/x",
            "arn:aws::r:a:x",
            "arn:aws:ssm:r:a:",
            "aws:ssm:r:a:x:y",
        ] {
            let err = bad.parse::<Arn>().unwrap_err();
            assert!(err.contains("is not a valid ARN"), "{bad}: {err}");
        }
        assert!(Arn::is_arn("arn:x"));
        assert!(!Arn::is_arn("/arn:x"));
    }
}
