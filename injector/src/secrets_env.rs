//! `secrets-env` for the containers whose command the webhook wraps (`env-containers`): the
//! injector copies it from its own image into the pod's `secrets-injector-bin` volume, so the
//! image needs no shell to do it. Those containers exec the copy, so it is put in place whole or
//! not at all: written to a temporary file in the same directory, synced, then renamed.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The file name, in the image (beside the injector) and in the volume.
pub const FILE_NAME: &str = "secrets-env";
/// Readable and executable by every user: the app containers may run as another user.
const MODE: u32 = 0o555;
/// The temporary name while the copy is written; hidden, and never executed.
const TEMP_NAME: &str = ".secrets-env.tmp";

/// `secrets-env` beside the injector's own executable (`/proc/self/exe`).
pub fn default_source() -> Result<PathBuf, Error> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::io("find the injector's own executable", "/proc/self/exe", e))?;
    Ok(exe.with_file_name(FILE_NAME))
}

/// Copies `source` to `dir/secrets-env` with mode 0555; returns the path written. A temporary
/// file an earlier attempt left is replaced, and removed again when this copy fails.
pub fn install(source: &Path, dir: &Path) -> Result<PathBuf, Error> {
    let mut input = File::open(source).map_err(|e| Error::io("open", source, e))?;
    let temp = dir.join(TEMP_NAME);
    let target = dir.join(FILE_NAME);
    match fs::remove_file(&temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(Error::io("remove", &temp, e));
        }
        _ => {}
    }
    let result = (|| {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(MODE)
            .open(&temp)
            .map_err(|e| Error::io("create", &temp, e))?;
        io::copy(&mut input, &mut out).map_err(|e| Error::io("copy into", &temp, e))?;
        // The umask may have taken bits away at creation.
        out.set_permissions(Permissions::from_mode(MODE))
            .map_err(|e| Error::io("set the mode of", &temp, e))?;
        out.sync_all().map_err(|e| Error::io("sync", &temp, e))?;
        fs::rename(&temp, &target).map_err(|e| Error::io("rename into place", &temp, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map(|()| target)
}
