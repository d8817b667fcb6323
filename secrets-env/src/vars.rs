//! Reading the secrets volumes into variables.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use secrets_injector_objects::envfile::is_env_name;

use crate::error::Error;

/// The link to the current generation of files (SPEC: the volume's layout).
const DATA: &str = "..data";

/// Every variable of `dirs`, name and value, read in the order of `dirs`: a name already read
/// from an earlier directory is not read again (the first value wins).
pub fn read(dirs: &[PathBuf]) -> Result<Vec<(String, OsString)>, Error> {
    let mut seen = HashSet::new();
    let mut vars = Vec::new();
    for dir in dirs {
        Snapshot::resolve(dir)?.read(&mut seen, &mut vars)?;
    }
    Ok(vars)
}

/// One secrets directory with its `..data` link resolved once: every `NAME -> ..data/NAME` is
/// read through that one generation, so a refresh that swaps `..data` meanwhile cannot mix old
/// and new values (the previous generation is removed only at the next swap).
struct Snapshot<'a> {
    dir: &'a Path,
    generation: Option<PathBuf>,
}

impl<'a> Snapshot<'a> {
    fn resolve(dir: &'a Path) -> Result<Self, Error> {
        let generation = match fs::canonicalize(dir.join(DATA)) {
            Ok(generation) => Some(generation),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(Error::Dir {
                    dir: dir.to_owned(),
                    source,
                });
            }
        };
        Ok(Snapshot { dir, generation })
    }

    /// Reads the top-level files whose names are environment variable names (which skips the
    /// reserved `..` names), following symlinks; directories and special files are skipped.
    fn read(
        &self,
        seen: &mut HashSet<String>,
        vars: &mut Vec<(String, OsString)>,
    ) -> Result<(), Error> {
        let dir = self.dir;
        let dir_error = |source| Error::Dir {
            dir: dir.to_owned(),
            source,
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(dir_error)? {
            let entry = entry.map_err(dir_error)?;
            if let Ok(name) = entry.file_name().into_string()
                && is_env_name(&name)
                && !seen.contains(&name)
            {
                names.push(name);
            }
        }
        names.sort_unstable();
        for name in names {
            let top = dir.join(&name);
            let path = match &self.generation {
                Some(generation)
                    if fs::read_link(&top).is_ok_and(|t| t == Path::new(DATA).join(&name)) =>
                {
                    generation.join(&name)
                }
                _ => top.clone(),
            };
            let file_error = |source| Error::File {
                name: name.clone(),
                path: top.clone(),
                source,
            };
            // A link whose file is gone is a name that a refresh has just removed: not a variable.
            let value = match fs::metadata(&path) {
                Ok(meta) if meta.is_file() => match fs::read(&path) {
                    Ok(value) => value,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(file_error(e)),
                },
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(file_error(e)),
            };
            if value.contains(&0) {
                return Err(Error::Nul { name, path: top });
            }
            seen.insert(name.clone());
            vars.push((name, OsString::from_vec(value)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn write(dir: &Path, name: &str, value: &[u8]) {
        fs::write(dir.join(name), value).unwrap();
    }

    fn pairs(vars: &[(String, OsString)]) -> Vec<(&str, &[u8])> {
        use std::os::unix::ffi::OsStrExt;
        vars.iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect()
    }

    /// A volume laid out as the injector writes it: `..gen/NAME`, `..data -> ..gen`,
    /// `NAME -> ..data/NAME`.
    fn volume(dir: &Path, generation: &str, files: &[(&str, &[u8])]) {
        fs::create_dir(dir.join(generation)).unwrap();
        for (name, value) in files {
            write(&dir.join(generation), name, value);
            symlink(Path::new(DATA).join(name), dir.join(name)).unwrap();
        }
        symlink(generation, dir.join(DATA)).unwrap();
    }

    #[test]
    fn reads_files_skipping_bad_names_directories_and_reserved_names() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "B_VALUE", b"two\nlines $HOME 'q' \xff");
        write(d, "A", b"");
        write(d, "not-a-name", b"x");
        write(d, "1X", b"x");
        write(d, ".hidden", b"x");
        write(d, "..reserved", b"x");
        fs::create_dir(d.join("SUBDIR")).unwrap();
        write(&d.join("SUBDIR"), "INNER", b"x");
        let vars = read(&[d.to_owned()]).unwrap();
        assert_eq!(
            pairs(&vars),
            [("A", &b""[..]), ("B_VALUE", b"two\nlines $HOME 'q' \xff")]
        );
    }

    #[test]
    fn reads_the_atomic_layout_through_its_links() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        volume(
            d,
            "..2026_11_30_10_55_09.123456789",
            &[("SECRET_PASSWORD", b"pw"), ("USER", b"u")],
        );
        // A directory object, linked the same way, is not a variable.
        fs::create_dir(d.join("..2026_11_30_10_55_09.123456789/certs")).unwrap();
        symlink("..data/certs", d.join("certs")).unwrap();
        let vars = read(&[d.to_owned()]).unwrap();
        assert_eq!(
            pairs(&vars),
            [("SECRET_PASSWORD", &b"pw"[..]), ("USER", b"u")]
        );
    }

    #[test]
    fn a_dangling_link_is_a_removed_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        volume(d, "..gen1", &[("KEPT", b"k")]);
        symlink("..data/GONE", d.join("GONE")).unwrap();
        let vars = read(&[d.to_owned()]).unwrap();
        assert_eq!(pairs(&vars), [("KEPT", &b"k"[..])]);
    }

    #[test]
    fn one_generation_is_read_when_data_is_swapped_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        volume(
            d,
            "..gen1",
            &[("USER", b"old-user"), ("PASSWORD", b"old-pw")],
        );
        let snapshot = Snapshot::resolve(d).unwrap();
        // A refresh's swap between resolving and reading: a new generation with a new name,
        // `..data` replaced, the new name's link added.
        fs::create_dir(d.join("..gen2")).unwrap();
        write(&d.join("..gen2"), "USER", b"new-user");
        write(&d.join("..gen2"), "PASSWORD", b"new-pw");
        write(&d.join("..gen2"), "ADDED", b"new");
        symlink("..gen2", d.join("..data.tmp")).unwrap();
        fs::rename(d.join("..data.tmp"), d.join(DATA)).unwrap();
        symlink("..data/ADDED", d.join("ADDED")).unwrap();

        let (mut seen, mut vars) = (HashSet::new(), Vec::new());
        snapshot.read(&mut seen, &mut vars).unwrap();
        assert_eq!(
            pairs(&vars),
            [("PASSWORD", &b"old-pw"[..]), ("USER", b"old-user")],
            "one generation, whole"
        );
        let vars = read(&[d.to_owned()]).unwrap();
        assert_eq!(
            pairs(&vars),
            [
                ("ADDED", &b"new"[..]),
                ("PASSWORD", b"new-pw"),
                ("USER", b"new-user")
            ],
            "the next start reads the new generation, whole"
        );
    }

    #[test]
    fn first_directory_wins_and_later_values_are_not_read() {
        let first = tempfile::tempdir().unwrap();
        let second = tempfile::tempdir().unwrap();
        write(first.path(), "SHARED", b"first");
        write(second.path(), "SHARED", b"bad\0value");
        write(second.path(), "ONLY_SECOND", b"2");
        let vars = read(&[first.path().to_owned(), second.path().to_owned()]).unwrap();
        assert_eq!(
            pairs(&vars),
            [("SHARED", &b"first"[..]), ("ONLY_SECOND", b"2")]
        );
    }

    #[test]
    fn a_nul_byte_names_the_variable_and_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "BINARY", b"qz7k\0w8vx");
        let err = read(&[dir.path().to_owned()]).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, Error::Nul { ref name, .. } if name == "BINARY"));
        assert!(message.contains("BINARY"), "{message}");
        assert!(
            message.contains(&format!("{:?}", dir.path().join("BINARY"))),
            "{message}"
        );
        assert!(
            !message.contains("qz7k") && !message.contains("w8vx"),
            "{message}"
        );
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let err = read(std::slice::from_ref(&missing)).unwrap_err();
        assert!(
            matches!(err, Error::Dir { ref dir, .. } if *dir == missing),
            "{err:?}"
        );
        assert_eq!(err.exit_code(), 1);
    }
}
