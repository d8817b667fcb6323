//! Every way `secrets-env` can fail before the app runs. No message carries a value: only
//! variable names, paths, the command's name and the operating system's reason.

use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

pub const USAGE: &str = "usage: secrets-env --dir DIR [--dir DIR ...] -- COMMAND [ARG ...]";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}; {USAGE}")]
    Usage(String),

    #[error(
        "cannot read the secrets directory {dir:?}: {source}; check that the secrets volume is \
         mounted at that path in this container"
    )]
    Dir { dir: PathBuf, source: io::Error },

    #[error("cannot read {path:?} (variable {name}): {source}")]
    File {
        name: String,
        path: PathBuf,
        source: io::Error,
    },

    #[error(
        "the value of {name} ({path:?}) contains a NUL byte, which no environment variable can \
         hold; remove it from the secret, or have the app read the file instead"
    )]
    Nul { name: String, path: PathBuf },

    #[error(
        "command {0:?} not found (searched PATH unless it contains a '/'); set the container's \
         command to the program the image runs"
    )]
    NotFound(OsString),

    #[error(
        "cannot run {command:?}: the variables and arguments are larger than the kernel allows \
         ({source}; at most 128 KiB per variable); have the app read its largest files instead"
    )]
    TooLarge {
        command: OsString,
        source: io::Error,
    },

    #[error("cannot run {command:?}: {source}; check that it is an executable program")]
    NotExecutable {
        command: OsString,
        source: io::Error,
    },
}

impl Error {
    /// The exit codes a shell gives: 2 for usage, 127 for a command not found, 126 for one
    /// found but not runnable, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Dir { .. } | Error::File { .. } | Error::Nul { .. } => 1,
            Error::NotFound(_) => 127,
            Error::TooLarge { .. } | Error::NotExecutable { .. } => 126,
        }
    }

    /// Sorts the error of a failed `execvp` of `command`.
    pub fn exec(command: OsString, source: io::Error) -> Error {
        match source.kind() {
            io::ErrorKind::NotFound => Error::NotFound(command),
            io::ErrorKind::ArgumentListTooLong => Error::TooLarge { command, source },
            _ => Error::NotExecutable { command, source },
        }
    }
}
