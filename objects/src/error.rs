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
    /// A problem the webhook finds in the rest of the pod (a container, a mount), worded whole.
    #[error("{0}")]
    Pod(String),
    /// A problem with a SecretProviderClass the pod uses, named by the class.
    #[error("SecretProviderClass {class}: {message}")]
    Class { class: String, message: String },
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

    pub fn pod(message: impl Into<String>) -> Self {
        Self::Pod(message.into())
    }

    pub fn class(class: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Class {
            class: class.into(),
            message: message.into(),
        }
    }

    /// The annotation this error is about; empty for a problem of the rest of the pod.
    pub fn annotation_name(&self) -> &'static str {
        match self {
            Self::Annotation { annotation, .. } => annotation,
            Self::Object { .. } => OBJECTS,
            Self::Pod(_) | Self::Class { .. } => "",
        }
    }
}

/// Every problem found, so the user can fix them all at once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Errors(pub Vec<Error>);

/// How many problems a message lists (and warnings an answer carries) before it only counts
/// the rest: a denial is shown by kubectl and stored in events, so it must stay short even for
/// a list of thousands of objects.
pub const MAX_LISTED: usize = 20;

/// The longest a listed problem gets; a longer one (a label or a value quoted from a huge
/// annotation) loses its middle, keeping what is wrong and how to fix it. With [`MAX_LISTED`],
/// a message is at most about 10.5 KB whatever the pod holds.
pub const MAX_PROBLEM_BYTES: usize = 512;

/// The longest a warning gets, and the most bytes the listed warnings take together: the API
/// server keeps at most 4096 characters of warnings per answer (and may cut one past 256), so
/// what is listed stays under that with room for the count of the rest.
pub const MAX_WARNING_BYTES: usize = 512;
pub const MAX_WARNINGS_BYTES: usize = 3584;

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&message(&self.0))
    }
}

/// The one message that says every problem: the first [`MAX_LISTED`], each at most
/// [`MAX_PROBLEM_BYTES`], joined with "; ", then how many more there are. The objects
/// annotation is named once before a run of its objects' problems, not before every one:
/// `annotation secrets-injector.io/objects: objects[0] (…): …; objects[1] (…): …; and 480 more
/// problems`.
pub fn message<'a>(errors: impl IntoIterator<Item = &'a Error>) -> String {
    let mut text = String::new();
    let mut previous: Option<&Error> = None;
    let mut total = 0;
    for error in errors {
        total += 1;
        if total > MAX_LISTED {
            continue;
        }
        if previous.is_some() {
            text.push_str("; ");
        }
        let problem = match error {
            Error::Object { label, message }
                if previous.is_some_and(|p| p.annotation_name() == OBJECTS) =>
            {
                format!("{label}: {message}")
            }
            error => error.to_string(),
        };
        text.push_str(&cut_middle(&problem, MAX_PROBLEM_BYTES));
        previous = Some(error);
    }
    if total > MAX_LISTED {
        text.push_str(&format!("; and {} more problems", total - MAX_LISTED));
    }
    text
}

/// The warnings an answer carries: the first [`MAX_LISTED`], each at most
/// [`MAX_WARNING_BYTES`] and together at most [`MAX_WARNINGS_BYTES`], then one that counts the
/// rest.
pub fn capped_warnings<'a>(warnings: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut capped = Vec::new();
    let (mut bytes, mut more) = (0, 0);
    for warning in warnings {
        let warning = cut_middle(warning, MAX_WARNING_BYTES);
        if more == 0 && capped.len() < MAX_LISTED && bytes + warning.len() <= MAX_WARNINGS_BYTES {
            bytes += warning.len();
            capped.push(warning);
        } else {
            more += 1;
        }
    }
    if more > 0 {
        capped.push(format!("and {more} more warnings"));
    }
    capped
}

/// `text` if it fits in `max` bytes, else its start and end around "…" (at character
/// boundaries), at most `max` bytes in all.
fn cut_middle(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let ellipsis = "…";
    let room = max - ellipsis.len();
    let mut head = room * 2 / 3;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - (room - head);
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}{ellipsis}{}", &text[..head], &text[tail..])
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

    #[test]
    fn the_objects_annotation_is_named_once_before_its_objects() {
        let mut errors = vec![Error::pod(
            "container name \"secrets-injector\" is reserved",
        )];
        errors.extend((0..500).map(|i| {
            Error::object(
                format!("objects[{i}] (objectName \"x\")"),
                "objectType \"bogus\" is not known",
            )
        }));
        let text = message(&errors);
        assert!(
            text.starts_with(
                "container name \"secrets-injector\" is reserved; \
                 annotation secrets-injector.io/objects: objects[0] (objectName \"x\"): \
                 objectType \"bogus\" is not known; objects[1] (objectName \"x\"): "
            ),
            "{text}"
        );
        assert_eq!(
            text.matches("annotation secrets-injector.io/objects")
                .count(),
            1
        );
        assert!(
            text.contains("objects[18]") && !text.contains("objects[19]"),
            "{text}"
        );
        assert!(text.ends_with("; and 481 more problems"), "{text}");
        assert!(text.len() < 2048, "{}", text.len());
    }

    #[test]
    fn a_huge_problem_keeps_its_start_and_its_fix() {
        let name = "n".repeat(60_000);
        let errors: Vec<Error> = (0..30)
            .map(|i| Error::object(format!("objects[{i}] (objectName {name:?})"), "bad; fix it"))
            .collect();
        let text = message(&errors);
        assert!(
            text.len() <= MAX_LISTED * (MAX_PROBLEM_BYTES + 2) + 40,
            "{}",
            text.len()
        );
        assert!(
            text.starts_with(
                "annotation secrets-injector.io/objects: objects[0] (objectName \"nnn"
            )
        );
        assert_eq!(text.matches("n\"): bad; fix it").count(), MAX_LISTED);
        assert_eq!(text.matches('…').count(), MAX_LISTED);
        assert!(text.ends_with("; and 10 more problems"));
        let cut = cut_middle("é".repeat(300).as_str(), 101);
        assert!(
            cut.len() <= 101 && cut.starts_with("éé") && cut.ends_with("é"),
            "{cut}"
        );
    }

    #[test]
    fn warnings_are_capped_and_counted() {
        let many: Vec<String> = (0..21_000)
            .map(|i| {
                format!(
                    "objects[{i}]: field {:?} is not known and is ignored",
                    "x".repeat(500)
                )
            })
            .collect();
        let capped = capped_warnings(many.iter().map(String::as_str));
        assert!(capped.len() <= MAX_LISTED + 1);
        assert!(capped.iter().all(|w| w.len() <= MAX_WARNING_BYTES));
        assert!(capped[0].starts_with("objects[0]: field"), "{}", capped[0]);
        assert_eq!(
            capped.last().unwrap(),
            &format!("and {} more warnings", 21_000 - (capped.len() - 1))
        );
        assert!(capped.iter().map(String::len).sum::<usize>() < 4096);
        let short: Vec<String> = (0..100).map(|i| format!("warning {i}")).collect();
        let capped = capped_warnings(short.iter().map(String::as_str));
        assert_eq!(capped.len(), MAX_LISTED + 1);
        assert_eq!(capped[MAX_LISTED], "and 80 more warnings");
        assert_eq!(capped_warnings(["a", "b"]), ["a", "b"]);
    }
}
