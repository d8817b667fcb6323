//! Validated relative paths inside the mount directory.

use std::fmt;
use std::str::FromStr;

/// Longest file name most Linux file systems (and tmpfs) accept.
pub const MAX_NAME_BYTES: usize = 255;

/// Longest path, as Linux's `PATH_MAX`, and the most components one may have: far beyond any
/// real name (SSM names are at most 1,011 bytes and 15 levels deep), and small enough that the
/// checks that walk a path's directories (each against every claimed path) stay cheap.
pub const MAX_PATH_BYTES: usize = 4096;
pub const MAX_COMPONENTS: usize = 64;

/// Top-level names starting with this belong to the volume's layout (`..data` and the
/// timestamped directories an update swaps in), as in the kubelet's atomic writer.
pub const RESERVED_PREFIX: &str = "..";

/// A relative path inside the mount directory: one or more components joined by `/`, none
/// empty, `.` or `..`, none with a NUL byte, none longer than 255 bytes; at most
/// [`MAX_COMPONENTS`] of them and [`MAX_PATH_BYTES`] in all. So it can never leave the
/// directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelPath(String);

impl RelPath {
    /// A path of one component.
    pub fn file(name: &str) -> Result<Self, String> {
        check_name(name)?;
        Ok(Self(name.to_owned()))
    }

    /// A path from its components, each checked as a file name, within the bounds (read no
    /// further than they allow).
    pub fn from_components<'a>(
        components: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, String> {
        let mut path = String::new();
        for (count, component) in components.into_iter().enumerate() {
            check_name(component)?;
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(component);
            check_size(count + 1, path.len())?;
        }
        if path.is_empty() {
            return Err("the file name is empty".to_owned());
        }
        Ok(Self(path))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn components(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.split('/')
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// Whether the top-level name starts with [`RESERVED_PREFIX`], which the volume's layout
    /// keeps for itself (names deeper down are inside a generation's directory, and free).
    pub fn is_reserved(&self) -> bool {
        self.0.starts_with(RESERVED_PREFIX)
    }

    /// Whether the path is one file name directly in the mount directory.
    pub fn is_top_level(&self) -> bool {
        !self.0.contains('/')
    }

    /// `other` below `self`, within the bounds.
    pub fn join(&self, other: &RelPath) -> Result<RelPath, String> {
        let components = self.components().count() + other.components().count();
        check_size(components, self.0.len() + 1 + other.0.len())?;
        Ok(RelPath(format!("{}/{}", self.0, other.0)))
    }

    /// Whether `dir`'s components are the first components of `self` (true when equal).
    pub fn starts_with_dir(&self, dir: &RelPath) -> bool {
        match self.0.strip_prefix(dir.as_str()) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }

    /// The directories that hold this path, outermost first (`a/b/c` gives `a`, `a/b`), as
    /// slices of it.
    pub fn parents(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.match_indices('/').map(|(at, _)| &self.0[..at])
    }
}

impl FromStr for RelPath {
    type Err = String;

    /// A `/`-separated relative path; a leading `/` is an error.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with('/') {
            return Err(format!(
                "{s:?} is absolute; give a path relative to the mount directory"
            ));
        }
        Self::from_components(s.split('/'))
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for RelPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Checks a path's count of components and its length against the bounds.
fn check_size(components: usize, bytes: usize) -> Result<(), String> {
    if components > MAX_COMPONENTS {
        return Err(format!(
            "the path has more than {MAX_COMPONENTS} components (directories and the file's \
             name); use fewer '/'"
        ));
    }
    if bytes > MAX_PATH_BYTES {
        return Err(format!(
            "the path is over the limit of {MAX_PATH_BYTES} bytes; shorten it"
        ));
    }
    Ok(())
}

/// Checks one path component, saying what is wrong with it.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a file name would be empty (check for a trailing or doubled '/')".to_owned());
    }
    if name == "." || name == ".." {
        return Err(format!(
            "the file name {name:?} is not allowed, it names a directory"
        ));
    }
    if name.contains('\0') {
        return Err(format!("the file name {name:?} contains a NUL byte"));
    }
    if name.contains('/') {
        return Err(format!("the file name {name:?} contains '/'"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "the file name {:?}... is {} bytes, over the {MAX_NAME_BYTES}-byte limit",
            name.chars().take(40).collect::<String>(),
            name.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> RelPath {
        s.parse().unwrap()
    }

    #[test]
    fn accepts_relative_paths() {
        let p = path("a/b/c");
        assert_eq!(p.as_str(), "a/b/c");
        assert_eq!(p.components().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(p.file_name(), "c");
        assert!(!p.is_top_level());
        assert!(path("x").is_top_level());
        assert_eq!(path("..a").as_str(), "..a");
        assert!(path("..a").is_reserved() && path("..data/x").is_reserved());
        assert!(!path("a/..b").is_reserved() && !path(".a").is_reserved());
        assert_eq!(p.to_string(), "a/b/c");
        assert_eq!(p.parents().collect::<Vec<_>>(), ["a", "a/b"]);
    }

    #[test]
    fn rejects_bad_components() {
        for bad in ["", ".", "..", "a/../b", "a//b", "a/", "/a", "a\0b", "./a"] {
            assert!(bad.parse::<RelPath>().is_err(), "{bad:?}");
        }
        let long = "x".repeat(256);
        let err = RelPath::file(&long).unwrap_err();
        assert!(err.contains("255-byte limit"), "{err}");
        assert!(RelPath::file(&"x".repeat(255)).is_ok());
        assert!(RelPath::file("a/b").unwrap_err().contains("'/'"));
        assert!(RelPath::from_components(Vec::<&str>::new()).is_err());
    }

    #[test]
    fn join_and_prefix_are_component_wise() {
        let dir = path("config");
        let joined = dir.join(&path("db/password")).unwrap();
        assert_eq!(joined.as_str(), "config/db/password");
        assert!(joined.starts_with_dir(&dir));
        assert!(dir.starts_with_dir(&dir));
        assert!(!path("configuration").starts_with_dir(&dir));
        assert!(!dir.starts_with_dir(&joined));
    }

    #[test]
    fn a_path_is_bounded_in_components_and_bytes() {
        let deep = vec!["a"; MAX_COMPONENTS].join("/");
        assert!(deep.parse::<RelPath>().is_ok());
        let err = format!("{deep}/a").parse::<RelPath>().unwrap_err();
        assert!(err.contains("more than 64 components"), "{err}");
        // Read no further than the bound: the rest is never checked.
        let err = RelPath::from_components(std::iter::repeat_n("a", 1 << 40)).unwrap_err();
        assert!(err.contains("more than 64 components"), "{err}");
        let long = vec!["x".repeat(255); 16].join("/");
        assert_eq!(long.len(), MAX_PATH_BYTES - 1);
        assert!(long.parse::<RelPath>().is_ok());
        let err = format!("{long}/x").parse::<RelPath>().unwrap_err();
        assert!(err.contains("over the limit of 4096 bytes"), "{err}");
        // Joined, the same bounds.
        let dir = path(&vec!["x".repeat(255); 15].join("/"));
        let name = "x".repeat(255);
        assert_eq!(dir.join(&path(&name)).unwrap().as_str(), long);
        let err = dir.join(&path(&format!("{name}/x"))).unwrap_err();
        assert!(err.contains("4096 bytes"), "{err}");
        let half = path(&vec!["a"; 32].join("/"));
        assert!(half.join(&half).is_ok());
        let err = half.join(&path("a").join(&half).unwrap()).unwrap_err();
        assert!(err.contains("more than 64 components"), "{err}");
    }
}
