//! ASCP's `pathTranslation`: how an object name or alias becomes a path in the mount directory.

use std::fmt;
use std::str::FromStr;

use crate::relpath::RelPath;

/// How `/` in a name is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathTranslation {
    /// Every `/` becomes this character, so the name is one file name (ASCP's default `_`).
    Replace(char),
    /// ASCP's `False`: a leading `/` is dropped and the rest makes subdirectories.
    Directories,
}

impl Default for PathTranslation {
    fn default() -> Self {
        Self::Replace('_')
    }
}

impl PathTranslation {
    /// The path `name` (an `objectName` or `objectAlias`) gives.
    pub fn file_path(&self, name: &str) -> Result<RelPath, String> {
        match self {
            Self::Replace(c) => {
                let translated = name.replace('/', c.encode_utf8(&mut [0; 4]));
                RelPath::file(&translated)
            }
            Self::Directories => {
                let rest = name.strip_prefix('/').unwrap_or(name);
                RelPath::from_components(rest.split('/'))
            }
        }
    }
}

impl FromStr for PathTranslation {
    type Err = String;

    /// `False` (in any case, as ASCP), or one character other than `/` and NUL. An empty
    /// value means the default, as in ASCP.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Ok(Self::default());
        }
        if s.eq_ignore_ascii_case("false") {
            return Ok(Self::Directories);
        }
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) if c != '/' && c != '\0' => Ok(Self::Replace(c)),
            _ => Err(format!(
                "{s:?} is neither False nor one character other than '/'; use \"_\" (the default), \
                 another single character, or False"
            )),
        }
    }
}

impl fmt::Display for PathTranslation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Replace(c) => write!(f, "{c}"),
            Self::Directories => f.write_str("False"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(t: PathTranslation, name: &str) -> String {
        t.file_path(name).unwrap().to_string()
    }

    #[test]
    fn default_replaces_slashes_with_underscores() {
        let t = PathTranslation::default();
        assert_eq!(file(t, "/test/parameter"), "_test_parameter");
        assert_eq!(file(t, "test/secret"), "test_secret");
        assert_eq!(file(t, "creds/user"), "creds_user");
        assert_eq!(file(t, "plain"), "plain");
        assert_eq!(
            file(t, "arn:aws:ssm:us-west-2:123456789012:parameter/app/db"),
            "arn:aws:ssm:us-west-2:123456789012:parameter_app_db"
        );
    }

    #[test]
    fn custom_character() {
        let t: PathTranslation = "-".parse().unwrap();
        assert_eq!(t, PathTranslation::Replace('-'));
        assert_eq!(file(t, "/test/parameter"), "-test-parameter");
        let t: PathTranslation = "é".parse().unwrap();
        assert_eq!(file(t, "a/b"), "aéb");
    }

    #[test]
    fn false_makes_directories() {
        let t: PathTranslation = "False".parse().unwrap();
        assert_eq!(t, PathTranslation::Directories);
        assert_eq!(file(t, "/test/parameter"), "test/parameter");
        assert_eq!(file(t, "test/secret"), "test/secret");
        assert_eq!(file(t, "plain"), "plain");
        assert_eq!(
            "false".parse::<PathTranslation>().unwrap(),
            PathTranslation::Directories
        );
    }

    #[test]
    fn directories_refuse_bad_parts() {
        let t = PathTranslation::Directories;
        for bad in ["../x", "a/../../b", "a/..", "a//b", "a/", "//a", "/", ""] {
            assert!(t.file_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn replace_refuses_bad_names() {
        let t = PathTranslation::default();
        for bad in ["", ".", "..", "a\0b"] {
            assert!(t.file_path(bad).is_err(), "{bad:?}");
        }
        // Once translated, "../x" is a plain name.
        assert_eq!(file(t, "../x"), ".._x");
        assert!(
            t.file_path(&"a".repeat(256))
                .unwrap_err()
                .contains("255-byte")
        );
    }

    #[test]
    fn parses_and_displays_the_annotation_form() {
        for s in ["_", "-", ".", "False"] {
            assert_eq!(s.parse::<PathTranslation>().unwrap().to_string(), s);
        }
        assert_eq!(
            "".parse::<PathTranslation>().unwrap(),
            PathTranslation::Replace('_')
        );
        for bad in ["/", "--", "\0", "no"] {
            let err = bad.parse::<PathTranslation>().unwrap_err();
            assert!(
                err.contains("neither False nor one character"),
                "{bad:?}: {err}"
            );
        }
    }
}
