//! The crate's one error type: a problem with one annotation, or with one object of the
//! `secrets-injector.io/objects` list.

use std::fmt;

use crate::annotations::OBJECTS;

/// One problem found in the pod's annotations. Messages say what is wrong and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A problem with a whole annotation (its size, its YAML, a setting).
    #[error("annotation {annotation}: {message}")]
    Annotation {
        annotation: &'static str,
        message: String,
    },
    /// A problem with one item of `secrets-injector.io/objects`, named by its label.
    #[error("annotation secrets-injector.io/objects: {label}: {message}")]
    Object { label: String, message: String },
}

impl Error {
    pub fn annotation(annotation: &'static str, message: impl Into<String>) -> Self {
        Self::Annotation {
            annotation,
            message: message.into(),
        }
    }

    pub fn object(label: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Object {
            label: label.into(),
            message: message.into(),
        }
    }

    /// The annotation this error is about.
    pub fn annotation_name(&self) -> &'static str {
        match self {
            Self::Annotation { annotation, .. } => annotation,
            Self::Object { .. } => OBJECTS,
        }
    }
}

/// Every problem found, so the user can fix them all at once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Errors(pub Vec<Error>);

/// How many problems a message lists before it only counts the rest: a denial is shown by
/// kubectl and stored in events, so it must stay short even for a list of thousands of objects.
pub const MAX_LISTED: usize = 20;

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().take(MAX_LISTED).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        if self.0.len() > MAX_LISTED {
            write!(f, "; and {} more problems", self.0.len() - MAX_LISTED)?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

impl From<Error> for Errors {
    fn from(error: Error) -> Self {
        Self(vec![error])
    }
}

impl From<Vec<Error>> for Errors {
    fn from(errors: Vec<Error>) -> Self {
        Self(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_join_with_semicolons() {
        let errors = Errors(vec![
            Error::annotation("secrets-injector.io/region", "is empty; set it"),
            Error::object("objects[0] (objectName \"a\")", "bad; fix it"),
        ]);
        assert_eq!(
            errors.to_string(),
            "annotation secrets-injector.io/region: is empty; set it; \
             annotation secrets-injector.io/objects: objects[0] (objectName \"a\"): bad; fix it"
        );
        assert_eq!(errors.0[1].annotation_name(), OBJECTS);
    }

    #[test]
    fn a_long_list_of_problems_is_cut_and_counted() {
        let errors = Errors(
            (0..25)
                .map(|i| Error::object(format!("objects[{i}] (objectName \"x\")"), "bad"))
                .collect(),
        );
        let text = errors.to_string();
        assert!(text.contains("objects[19]"));
        assert!(!text.contains("objects[20]"));
        assert!(text.ends_with("; and 5 more problems"), "{text}");
    }
}
