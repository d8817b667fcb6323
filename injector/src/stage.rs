//! The mount directory: emptied first, then every file staged in a hidden directory on the
//! same filesystem and renamed into place only once all of them are written.

use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::Error;
use crate::extract::File;

/// Name of the staging directory inside the mount directory (hidden, so an app listing the
/// directory during a failed run's cleanup sees nothing it could mistake for a value).
const STAGING: &str = ".secrets-injector-staging";
/// Staging is for this process's user only until its entries are renamed out.
const STAGING_MODE: u32 = 0o700;
/// Subdirectories (path translation `False`, parameter paths): names are not secret.
const DIR_MODE: u32 = 0o755;

/// Removes everything inside `dir` (not `dir` itself, which is a mount point), creating `dir`
/// when it does not exist. Returns the number of entries removed.
pub fn empty_dir(dir: &Path) -> Result<usize, Error> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
        return Ok(0);
    }
    let mut removed = 0;
    for entry in fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|e| Error::io("inspect", &path, e))?;
        if file_type.is_dir() {
            fs::remove_dir_all(&path).map_err(|e| Error::io("remove", &path, e))?;
        } else {
            fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        }
        removed += 1;
    }
    Ok(removed)
}

/// The top-level names of `files`, in order of first appearance.
pub fn top_level(files: &[File]) -> Vec<&str> {
    let mut seen = BTreeSet::new();
    files
        .iter()
        .filter_map(|f| f.path.components().next())
        .filter(|name| seen.insert(*name))
        .collect()
}

/// A staging name that none of the files uses.
fn staging_name(tops: &[&str]) -> String {
    let mut name = STAGING.to_owned();
    let mut n = 0;
    while tops.contains(&name.as_str()) {
        n += 1;
        name = format!("{STAGING}-{n}");
    }
    name
}

/// Writes every file into `dir`, all or nothing. On error, whatever was created is removed.
pub fn install(dir: &Path, files: &[File]) -> Result<(), Error> {
    let tops = top_level(files);
    let staging = dir.join(staging_name(&tops));
    let result = write_staged(&staging, files).and_then(|()| rename_into(dir, &staging, &tops));
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
        for top in &tops {
            let path = dir.join(top);
            let _ = fs::remove_dir_all(&path).or_else(|_| fs::remove_file(&path));
        }
    }
    result
}

fn write_staged(staging: &Path, files: &[File]) -> Result<(), Error> {
    make_dir(staging, STAGING_MODE)?;
    for file in files {
        let path = staging.join(file.path.as_str());
        let mut parent = staging.to_path_buf();
        let components: Vec<&str> = file.path.components().collect();
        for component in &components[..components.len() - 1] {
            parent.push(component);
            if !parent.is_dir() {
                make_dir(&parent, DIR_MODE)?;
            }
        }
        write_file(&path, file)?;
    }
    Ok(())
}

fn make_dir(path: &Path, mode: u32) -> Result<(), Error> {
    DirBuilder::new()
        .mode(mode)
        .create(path)
        .map_err(|e| Error::io("create", path, e))?;
    // Keep the setgid bit the directory inherited: with a pod fsGroup the kubelet marks the
    // emptyDir setgid so every file belongs to that group, which group-readable modes rely on.
    let inherited = fs::metadata(path)
        .map_err(|e| Error::io("stat", path, e))?
        .permissions()
        .mode()
        & 0o2000;
    fs::set_permissions(path, Permissions::from_mode(mode | inherited))
        .map_err(|e| Error::io("set the mode of", path, e))
}

/// Created with its final mode, so it is never readable by more than it should be; the mode is
/// set again after creation because the umask may have taken bits away.
fn write_file(path: &Path, file: &File) -> Result<(), Error> {
    let mode = file.mode.bits();
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| Error::io("create", path, e))?;
    out.set_permissions(Permissions::from_mode(mode))
        .map_err(|e| Error::io("set the mode of", path, e))?;
    out.write_all(&file.bytes)
        .map_err(|e| Error::io("write", path, e))
}

fn rename_into(dir: &Path, staging: &Path, tops: &[&str]) -> Result<(), Error> {
    for top in tops {
        let from = staging.join(top);
        fs::rename(&from, dir.join(top)).map_err(|e| Error::io("move into place", &from, e))?;
    }
    fs::remove_dir(staging).map_err(|e| Error::io("remove", staging, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrets_injector_objects::mode::FileMode;
    use secrets_injector_objects::relpath::RelPath;
    use std::os::unix::fs::MetadataExt;

    fn file(path: &str, mode: u32, bytes: &[u8]) -> File {
        File {
            path: RelPath::from_components(path.split('/')).unwrap(),
            mode: FileMode::from_bits(mode).unwrap(),
            bytes: bytes.to_vec(),
        }
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("injector-stage-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn empties_files_directories_and_symlinks_but_keeps_the_directory() {
        let dir = temp_dir("empty");
        fs::write(dir.join("old"), "x").unwrap();
        fs::write(dir.join(".hidden"), "x").unwrap();
        fs::create_dir_all(dir.join("sub/deeper")).unwrap();
        fs::write(dir.join("sub/deeper/f"), "x").unwrap();
        std::os::unix::fs::symlink("/etc", dir.join("link")).unwrap();
        assert_eq!(empty_dir(&dir).unwrap(), 4);
        assert!(dir.is_dir());
        assert!(listing(&dir).is_empty());
        assert!(Path::new("/etc").is_dir());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn installs_files_with_exact_modes_despite_the_umask() {
        let dir = temp_dir("install");
        let files = vec![
            file("a", 0o644, b"A"),
            file("secret", 0o600, b"S"),
            file("open", 0o666, b"O"),
            file("cfg/db/user", 0o640, b"U"),
            file("cfg/port", 0o640, b"P"),
        ];
        install(&dir, &files).unwrap();
        assert_eq!(listing(&dir), vec!["a", "cfg", "open", "secret"]);
        for f in &files {
            let path = dir.join(f.path.as_str());
            assert_eq!(fs::read(&path).unwrap(), f.bytes);
            assert_eq!(
                fs::metadata(&path).unwrap().mode() & 0o777,
                f.mode.bits(),
                "{}",
                f.path
            );
        }
        assert_eq!(
            fs::metadata(dir.join("cfg/db")).unwrap().mode() & 0o777,
            0o755
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_install_leaves_nothing_behind() {
        let dir = temp_dir("fail");
        // The second file needs "a" to be a directory, but it is a file: the write fails.
        let files = vec![file("a", 0o644, b"A"), file("a/b", 0o644, b"B")];
        let err = install(&dir, &files).unwrap_err();
        assert!(err.to_string().starts_with("cannot create"), "{err}");
        assert!(listing(&dir).is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn staging_avoids_names_the_files_use() {
        assert_eq!(staging_name(&["a"]), STAGING);
        assert_eq!(staging_name(&[STAGING]), format!("{STAGING}-1"));
    }

    #[test]
    fn top_level_names_in_first_appearance_order() {
        let files = vec![
            file("b/x", 0o644, b""),
            file("a", 0o644, b""),
            file("b/y", 0o644, b""),
        ];
        assert_eq!(top_level(&files), vec!["b", "a"]);
    }
}
