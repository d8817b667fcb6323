//! The mount directory, laid out as the kubelet's atomic writer lays out ConfigMap and Secret
//! volumes: the files of one generation in `..<timestamp>/`, `..data -> ..<timestamp>`, and one
//! link `NAME -> ..data/NAME` per top-level name. A new generation is written in full, then
//! swapped in by renaming one symlink, so a reader sees either the old set or the new one.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Kind};
use crate::extract::File;

/// The link to the current generation.
pub const DATA: &str = "..data";
/// The new `..data` link, renamed over the old one.
const DATA_TMP: &str = "..data_tmp";
/// A generation is for this process's user only until every file is written.
const STAGING_MODE: u32 = 0o700;
/// A complete generation, and subdirectories (path translation `False`, parameter paths):
/// names are not secret; each file keeps its own mode.
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
        remove_entry(&entry.path())?;
        removed += 1;
    }
    Ok(removed)
}

/// Removes a file, symlink or directory tree (never following a symlink).
fn remove_entry(path: &Path) -> Result<(), Error> {
    let file_type = fs::symlink_metadata(path)
        .map_err(|e| Error::io("inspect", path, e))?
        .file_type();
    if file_type.is_dir() {
        fs::remove_dir_all(path).map_err(|e| Error::io("remove", path, e))
    } else {
        fs::remove_file(path).map_err(|e| Error::io("remove", path, e))
    }
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

/// The first write of an emptied directory, all or nothing: on error the directory is emptied
/// again. Nothing is there to keep or replace, so the links are made in place (a name something
/// else created meanwhile is still replaced, as [`publish`] does).
pub fn install(dir: &Path, files: &[File]) -> Result<(), Error> {
    let tops = reserved_checked(files)?;
    let generation = new_generation(dir)?;
    let staged = dir.join(&generation);
    write_generation(&staged, files)
        .and_then(|()| link(dir, Path::new(&generation), DATA))
        .and_then(|()| {
            tops.iter()
                .try_for_each(|top| link(dir, &Path::new(DATA).join(top), top))
        })
        .inspect_err(|_| {
            let _ = empty_dir(dir);
        })
}

/// Writes `files` as a new generation and makes it the current one. The generation `..data`
/// pointed to stays until the next call (a reader that resolved `..data` before this swap can
/// finish reading it); older ones, and any left by an interrupted call, are removed first. On
/// error before the swap, the current generation and links are untouched.
pub fn publish(dir: &Path, files: &[File]) -> Result<(), Error> {
    let tops = reserved_checked(files)?;
    let current = fs::read_link(dir.join(DATA)).ok();
    remove_old_generations(dir, current.as_deref())?;
    let generation = new_generation(dir)?;
    let staged = dir.join(&generation);
    let written = write_generation(&staged, files).and_then(|()| {
        let tmp = dir.join(DATA_TMP);
        symlink(&generation, &tmp).map_err(|e| Error::io("create", &tmp, e))?;
        fs::rename(&tmp, dir.join(DATA)).map_err(|e| Error::io("move into place", &tmp, e))
    });
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&staged);
        let _ = fs::remove_file(dir.join(DATA_TMP));
        return Err(e);
    }
    link_top_level(dir, &tops)
}

/// The top-level names of `files`, none of which may start with "..".
fn reserved_checked(files: &[File]) -> Result<Vec<&str>, Error> {
    let tops = top_level(files);
    if let Some(reserved) = tops.iter().find(|name| name.starts_with("..")) {
        return Err(Error::object(
            "ReservedFileName",
            format!(
                "the file name {reserved:?} starts with \"..\", which the volume's layout \
                 reserves; give the object another objectAlias"
            ),
            Kind::Final,
        ));
    }
    Ok(tops)
}

/// `dir/name -> target`: made in place, or aside and renamed over whatever holds the name.
fn link(dir: &Path, target: &Path, name: &str) -> Result<(), Error> {
    let path = dir.join(name);
    match symlink(target, &path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => replace_link(dir, target, name),
        Err(e) => Err(Error::io("create", &path, e)),
    }
}

/// `dir/name -> target`, made aside and renamed into place, so the name is never missing when
/// something else held it.
fn replace_link(dir: &Path, target: &Path, name: &str) -> Result<(), Error> {
    let tmp = dir.join(format!("..{name}_tmp"));
    let _ = fs::remove_file(&tmp);
    symlink(target, &tmp).map_err(|e| Error::io("create", &tmp, e))?;
    fs::rename(&tmp, dir.join(name)).map_err(|e| Error::io("move into place", &tmp, e))
}

/// Removes every generation but `keep` (the current one), and a `..data_tmp` left behind.
fn remove_old_generations(dir: &Path, keep: Option<&Path>) -> Result<(), Error> {
    for entry in fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let is_generation = is_generation_name(name);
        if (is_generation && keep != Some(Path::new(name))) || name == DATA_TMP {
            remove_entry(&entry.path())?;
        }
    }
    Ok(())
}

/// `..2026_11_30_10_55_09.123456789`, as [`generation_name`] writes them.
fn is_generation_name(name: &str) -> bool {
    name.len() == 2 + 19 + 1 + 9
        && name.starts_with("..")
        && name[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// The name of a generation written at `since_epoch` (UTC), like the kubelet's.
pub fn generation_name(since_epoch: std::time::Duration) -> String {
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_date(secs / 86_400);
    let of_day = secs % 86_400;
    format!(
        "..{year:04}_{month:02}_{day:02}_{:02}_{:02}_{:02}.{:09}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        since_epoch.subsec_nanos()
    )
}

/// Year, month and day of a day count since 1970-01-01 (the proleptic Gregorian calendar).
fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// A generation name that does not exist yet in `dir`.
fn new_generation(dir: &Path) -> Result<String, Error> {
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let name = generation_name(now);
        match fs::symlink_metadata(dir.join(&name)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(name),
            Err(e) => return Err(Error::io("inspect", dir.join(&name), e)),
            Ok(_) => std::thread::yield_now(),
        }
    }
}

fn write_generation(staging: &Path, files: &[File]) -> Result<(), Error> {
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
    set_dir_mode(staging, DIR_MODE)
}

/// `NAME -> ..data/NAME` for every top-level name; links of names no longer written go.
fn link_top_level(dir: &Path, tops: &[&str]) -> Result<(), Error> {
    for top in tops {
        let path = dir.join(top);
        let target = Path::new(DATA).join(top);
        if fs::read_link(&path).is_ok_and(|existing| existing == target) {
            continue;
        }
        replace_link(dir, &target, top)?;
    }
    for entry in fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("..") || tops.contains(&name) {
            continue;
        }
        let path = entry.path();
        if fs::read_link(&path).is_ok_and(|target| target == Path::new(DATA).join(name)) {
            fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        }
    }
    Ok(())
}

/// The files of the current generation: relative path -> (mode, contents); `None` when there
/// is no current generation or it cannot be read.
pub fn current_files(dir: &Path) -> Option<BTreeMap<String, (u32, Vec<u8>)>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (u32, Vec<u8>)>) -> Option<()> {
        for entry in fs::read_dir(dir).ok()? {
            let path = entry.ok()?.path();
            let meta = fs::symlink_metadata(&path).ok()?;
            if meta.is_dir() {
                walk(root, &path, out)?;
            } else {
                let rel = path.strip_prefix(root).ok()?.to_str()?.to_owned();
                out.insert(
                    rel,
                    (meta.permissions().mode() & 0o7777, fs::read(&path).ok()?),
                );
            }
        }
        Some(())
    }
    let generation: PathBuf = dir.join(fs::read_link(dir.join(DATA)).ok()?);
    let mut out = BTreeMap::new();
    walk(&generation, &generation, &mut out)?;
    Some(out)
}

/// Whether `files` are exactly the current generation's files: same paths, modes and contents.
pub fn is_current(dir: &Path, files: &[File]) -> bool {
    let Some(current) = current_files(dir) else {
        return false;
    };
    current.len() == files.len()
        && files.iter().all(|f| {
            current
                .get(f.path.as_str())
                .is_some_and(|(mode, bytes)| *mode == f.mode.bits() && *bytes == f.bytes)
        })
}

fn make_dir(path: &Path, mode: u32) -> Result<(), Error> {
    DirBuilder::new()
        .mode(mode)
        .create(path)
        .map_err(|e| Error::io("create", path, e))?;
    set_dir_mode(path, mode)
}

/// Sets `mode`, keeping the setgid bit the directory inherited: with a pod fsGroup the kubelet
/// marks the emptyDir setgid so every file belongs to that group, which group-readable modes
/// rely on.
fn set_dir_mode(path: &Path, mode: u32) -> Result<(), Error> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use secrets_injector_objects::mode::FileMode;
    use secrets_injector_objects::relpath::RelPath;
    use std::os::unix::fs::MetadataExt;
    use std::time::Duration;

    fn file(path: &str, mode: u32, bytes: &[u8]) -> File {
        File {
            path: RelPath::from_components(path.split('/')).unwrap(),
            mode: FileMode::from_bits(mode).unwrap(),
            bytes: bytes.to_vec(),
        }
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn generations(dir: &Path) -> Vec<String> {
        listing(dir)
            .into_iter()
            .filter(|n| is_generation_name(n))
            .collect()
    }

    fn data(dir: &Path) -> String {
        fs::read_link(dir.join(DATA))
            .unwrap()
            .into_os_string()
            .into_string()
            .unwrap()
    }

    #[test]
    fn empties_files_directories_and_symlinks_but_keeps_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        fs::write(dir.join("old"), "x").unwrap();
        fs::write(dir.join(".hidden"), "x").unwrap();
        fs::create_dir_all(dir.join("sub/deeper")).unwrap();
        fs::write(dir.join("sub/deeper/f"), "x").unwrap();
        symlink("/etc", dir.join("link")).unwrap();
        assert_eq!(empty_dir(dir).unwrap(), 4);
        assert!(dir.is_dir());
        assert!(listing(dir).is_empty());
        assert!(Path::new("/etc").is_dir());
    }

    #[test]
    fn installs_a_generation_with_links_and_exact_modes_despite_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let files = vec![
            file("a", 0o644, b"A"),
            file("secret", 0o600, b"S"),
            file("open", 0o666, b"O"),
            file("cfg/db/user", 0o640, b"U"),
            file("cfg/port", 0o640, b"P"),
        ];
        install(dir, &files).unwrap();
        let generation = data(dir);
        assert!(is_generation_name(&generation), "{generation}");
        assert_eq!(
            listing(dir),
            vec![generation.as_str(), DATA, "a", "cfg", "open", "secret"]
        );
        for top in ["a", "cfg", "open", "secret"] {
            assert_eq!(
                fs::read_link(dir.join(top)).unwrap(),
                Path::new("..data").join(top)
            );
        }
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
        for sub in [generation.as_str(), "cfg", "cfg/db"] {
            assert_eq!(fs::metadata(dir.join(sub)).unwrap().mode() & 0o777, 0o755);
        }
        assert!(is_current(dir, &files));
        assert!(!is_current(dir, &files[1..]));
        let mut other_mode = files.clone();
        other_mode[0].mode = FileMode::from_bits(0o600).unwrap();
        assert!(!is_current(dir, &other_mode));
    }

    #[test]
    fn an_install_replaces_a_name_something_else_made_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        fs::write(dir.join("a"), "stray").unwrap();
        symlink("elsewhere", dir.join(DATA)).unwrap();
        let files = vec![file("a", 0o644, b"A"), file("b", 0o600, b"B")];
        install(dir, &files).unwrap();
        let generation = data(dir);
        assert!(is_generation_name(&generation), "{generation}");
        assert_eq!(fs::read(dir.join("a")).unwrap(), b"A");
        assert_eq!(
            fs::read_link(dir.join("a")).unwrap(),
            Path::new(DATA).join("a")
        );
        assert_eq!(listing(dir), vec![generation.as_str(), DATA, "a", "b"]);
        assert!(is_current(dir, &files));
    }

    #[test]
    fn a_failed_install_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        // The second file needs "a" to be a directory, but it is a file: the write fails.
        let files = vec![file("a", 0o644, b"A"), file("a/b", 0o644, b"B")];
        let err = install(dir, &files).unwrap_err();
        assert!(err.to_string().starts_with("cannot create"), "{err}");
        assert!(listing(dir).is_empty());
    }

    #[test]
    fn a_failed_publish_keeps_the_current_generation() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        install(dir, &[file("a", 0o644, b"A")]).unwrap();
        let before = listing(dir);
        let bad = vec![file("a", 0o644, b"new"), file("a/b", 0o644, b"B")];
        publish(dir, &bad).unwrap_err();
        assert_eq!(listing(dir), before);
        assert_eq!(fs::read(dir.join("a")).unwrap(), b"A");
    }

    #[test]
    fn the_previous_generation_stays_until_the_next_swap() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        install(dir, &[file("a", 0o644, b"1"), file("gone", 0o644, b"g")]).unwrap();
        let first = data(dir);
        publish(dir, &[file("a", 0o644, b"2"), file("new/x", 0o600, b"n")]).unwrap();
        let second = data(dir);
        assert_ne!(first, second);
        assert_eq!(generations(dir), vec![first.clone(), second.clone()]);
        // A reader that resolved ..data before the swap still reads the old set.
        assert_eq!(fs::read(dir.join(&first).join("gone")).unwrap(), b"g");
        assert_eq!(fs::read(dir.join("a")).unwrap(), b"2");
        assert_eq!(fs::read(dir.join("new/x")).unwrap(), b"n");
        assert!(
            fs::symlink_metadata(dir.join("gone")).is_err(),
            "{:?}",
            listing(dir)
        );
        publish(dir, &[file("a", 0o644, b"3")]).unwrap();
        let third = data(dir);
        assert_eq!(generations(dir), vec![second.clone(), third.clone()]);
        assert_eq!(
            listing(dir),
            vec![second.as_str(), third.as_str(), DATA, "a"]
        );
    }

    #[test]
    fn names_the_layout_reserves_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = install(dir.path(), &[file("..data", 0o644, b"x")]).unwrap_err();
        assert!(err.to_string().starts_with("ReservedFileName: "), "{err}");
        assert!(listing(dir.path()).is_empty());
    }

    #[test]
    fn generation_names_are_utc_timestamps_to_the_nanosecond() {
        assert_eq!(
            generation_name(Duration::new(1_796_036_109, 123_456_789)),
            "..2026_11_30_10_55_09.123456789"
        );
        assert_eq!(
            generation_name(Duration::ZERO),
            "..1970_01_01_00_00_00.000000000"
        );
        assert_eq!(
            generation_name(Duration::from_secs(951_782_400 + 86_399)),
            "..2000_02_29_23_59_59.000000000"
        );
        assert!(is_generation_name("..2026_11_30_10_55_09.123456789"));
        assert!(!is_generation_name("..data"));
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
