//! What the other annotations (in the webhook) or the injector's flags decide for every object.

use crate::annotations::{ENV_FILE, FAILOVER_REGION, REGION};
use crate::error::Error;
use crate::mode::FileMode;
use crate::relpath::RelPath;
use crate::translation::PathTranslation;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Settings {
    /// Region for names that are not ARNs; every `objectName` ARN must be in it.
    pub region: String,
    /// ASCP's `failoverRegion`; every `failoverObject` ARN must be in it.
    pub failover_region: Option<String>,
    pub path_translation: PathTranslation,
    /// Mode of every file without its own `filePermission`.
    pub default_mode: FileMode,
    /// The env file's name (`secrets-injector.io/env-file`), as written.
    pub env_file: Option<String>,
}

impl Settings {
    /// Settings with the region and every default.
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            failover_region: None,
            path_translation: PathTranslation::default(),
            default_mode: FileMode::DEFAULT,
            env_file: None,
        }
    }

    /// Problems with the settings themselves, each naming its annotation.
    pub fn validate(&self) -> Vec<Error> {
        let mut errors = Vec::new();
        if self.region.is_empty() {
            errors.push(Error::annotation(
                REGION,
                "no region: set this annotation, or AWS_REGION on the first target container \
                 (a literal value), or the webhook's --default-region",
            ));
        } else if !is_valid_region(&self.region) {
            errors.push(Error::annotation(REGION, region_problem(&self.region)));
        }
        if let Some(failover) = &self.failover_region {
            if !is_valid_region(failover) {
                errors.push(Error::annotation(FAILOVER_REGION, region_problem(failover)));
            } else if *failover == self.region {
                errors.push(Error::annotation(
                    FAILOVER_REGION,
                    format!(
                        "{failover:?} is the region itself; a failover region must be another \
                         region, or leave the annotation out"
                    ),
                ));
            }
        }
        if let Err(error) = self.env_file_path() {
            errors.push(error);
        }
        errors
    }

    /// The env file as a path in the mount directory.
    pub fn env_file_path(&self) -> Result<Option<RelPath>, Error> {
        self.env_file
            .as_deref()
            .map(|name| {
                name.parse::<RelPath>().map_err(|problem| {
                    Error::annotation(
                        ENV_FILE,
                        format!("{problem}; name a file in the mount directory, such as \"env\""),
                    )
                })
            })
            .transpose()
    }
}

/// How a region name is written, for messages.
pub const REGION_RULE: &str = "a region is lowercase words joined by '-': two or more letters, \
     one or more words, then a number, such as \"us-east-1\" or \"us-gov-west-1\"";

/// A region name: parts joined by `-`, two or more lowercase letters, then one or more lowercase
/// words, then a number (`us-east-1`, `us-gov-west-1`, `us-isob-east-1`). Never starts with `-`,
/// so the injector cannot read one as a flag.
pub fn is_valid_region(region: &str) -> bool {
    let mut parts = region.split('-');
    let is_word = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase());
    let first = parts.next().unwrap_or_default();
    let Some(number) = parts.next_back() else {
        return false;
    };
    let words = parts.clone().count();
    first.len() >= 2
        && is_word(first)
        && words >= 1
        && parts.all(is_word)
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// Why a region is refused, and how to write one.
pub fn region_problem(region: &str) -> String {
    let flag = if region.starts_with('-') {
        " (it would be read as a command-line flag)"
    } else {
        ""
    };
    format!("{region:?} is not a region name{flag}; {REGION_RULE}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names() {
        for good in [
            "us-east-1",
            "eu-central-2",
            "cn-north-1",
            "us-gov-west-1",
            "ap-southeast-7",
            "us-isob-east-1",
            "mx-central-1",
            "eu-west-10",
        ] {
            assert!(is_valid_region(good), "{good}");
        }
        for bad in [
            "",
            "US-EAST-1",
            "us_east_1",
            "us-east-1 ",
            "ü",
            "--help",
            "-x",
            "-us-east-1",
            "us-east-1 --x",
            "us-east-1-",
            "us--east-1",
            "u-east-1",
            "us-1",
            "us-east",
            "us-east-1a",
            "us-3ast-1",
            "1us-east-1",
            "-",
            "us-east-",
        ] {
            assert!(!is_valid_region(bad), "{bad:?}");
        }
        assert!(region_problem("--help").contains("command-line flag"));
        assert!(region_problem("us east").contains("us-gov-west-1"));
    }

    #[test]
    fn default_settings_are_valid() {
        let settings = Settings::new("us-east-1");
        assert_eq!(settings.validate(), Vec::new());
        assert_eq!(settings.path_translation, PathTranslation::Replace('_'));
        assert_eq!(settings.default_mode, FileMode::DEFAULT);
    }

    #[test]
    fn bad_settings_name_their_annotation() {
        let mut settings = Settings::new("");
        let errors = settings.validate();
        assert_eq!(errors[0].annotation_name(), REGION);
        assert!(errors[0].to_string().contains("no region"), "{}", errors[0]);

        settings.region = "Us-East-1".into();
        assert!(
            settings.validate()[0]
                .to_string()
                .contains("is not a region name")
        );

        settings.region = "us-east-1".into();
        settings.failover_region = Some("us-east-1".into());
        let errors = settings.validate();
        assert_eq!(errors[0].annotation_name(), FAILOVER_REGION);
        assert!(
            errors[0].to_string().contains("is the region itself"),
            "{}",
            errors[0]
        );

        settings.failover_region = Some("us west 2".into());
        assert!(
            settings.validate()[0]
                .to_string()
                .contains("is not a region name")
        );

        settings.failover_region = None;
        settings.env_file = Some("../env".into());
        let errors = settings.validate();
        assert_eq!(errors[0].annotation_name(), ENV_FILE);
        assert!(errors[0].to_string().contains("\"..\""), "{}", errors[0]);
    }

    #[test]
    fn env_file_is_a_relative_path() {
        let mut settings = Settings::new("us-east-1");
        settings.env_file = Some("env".into());
        assert_eq!(settings.env_file_path().unwrap().unwrap().as_str(), "env");
        settings.env_file = Some("/env".into());
        assert!(
            settings
                .env_file_path()
                .unwrap_err()
                .to_string()
                .contains("absolute")
        );
    }
}
