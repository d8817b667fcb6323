//! File modes (`filePermission`, `file-permission`) and whether the app can read a file.

use std::fmt;
use std::str::FromStr;

use crate::annotations::MESH_BYPASS;

/// A file mode of four octal digits, at most `0777`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileMode(u32);

impl FileMode {
    /// ASCP's default mode.
    pub const DEFAULT: FileMode = FileMode(0o644);

    /// The mode from its bits; `None` above `0o777` (no setuid, setgid or sticky bits).
    pub fn from_bits(bits: u32) -> Option<Self> {
        (bits <= 0o777).then_some(Self(bits))
    }

    pub fn bits(self) -> u32 {
        self.0
    }

    /// The access both modes give (bitwise AND): a file holding the contents of files of both
    /// modes must be no more open than either.
    pub fn narrowed_by(self, other: FileMode) -> FileMode {
        FileMode(self.0 & other.0)
    }

    /// Whether the app's containers can read a file of this mode, given what the webhook
    /// knows of the app's identity. The injector runs as the app's `runAsUser` when there is
    /// one, so the app owns the files; else as another user, and the files belong to the
    /// pod's `fsGroup` when it has one (the kubelet makes the volume set-group-ID).
    /// With `mesh-bypass` the files belong to the mesh proxy's user, never the app's: the kernel
    /// checks the group bits when the app is in the files' group, else the others bits.
    pub fn readable_by_app(self, app: AppIdentity) -> Result<(), String> {
        const OWNER_READ: u32 = 0o400;
        const GROUP_READ: u32 = 0o040;
        const OTHERS_READ: u32 = 0o004;
        let mode = self.0;
        if let Owner::MeshProxy { shares_group } = app.owner {
            let bypass =
                format!("with {MESH_BYPASS} \"true\" the files belong to the mesh proxy's user");
            return match (
                shares_group,
                mode & GROUP_READ != 0,
                mode & OTHERS_READ != 0,
            ) {
                (true, true, _) | (false, _, true) => Ok(()),
                (true, false, _) => Err(format!(
                    "mode {self} does not let the file's group read it, and {bypass}, so the app \
                     reads them as a member of their group (the pod's fsGroup, or the app's \
                     runAsGroup); use a mode with group read access such as 0440, 0640 or 0644"
                )),
                (false, true, false) => Err(format!(
                    "mode {self} lets only the file's owner and group read it, and {bypass}, but \
                     the app is in no group of theirs: the pod sets neither fsGroup nor a \
                     runAsGroup for the app; set one of them, or use a mode such as 0644"
                )),
                (false, false, false) => Err(format!(
                    "mode {self} lets no one but the file's owner read it, and {bypass}, not the \
                     app's; use a mode such as 0644, or 0640 with the pod's fsGroup"
                )),
            };
        }
        if app.run_as_user.is_some() {
            // The app owns the file, and the kernel then checks only the owner bits.
            return if mode & OWNER_READ != 0 {
                Ok(())
            } else {
                Err(format!(
                    "mode {self} does not let the file's owner read it, and the files belong to \
                     the app's runAsUser; use a mode with owner read access such as 0400, 0440 or 0644"
                ))
            };
        }
        if mode & OTHERS_READ != 0 {
            return Ok(());
        }
        if mode & GROUP_READ != 0 {
            return if app.fs_group.is_some() {
                Ok(())
            } else {
                Err(format!(
                    "mode {self} lets only the file's owner and group read it, but the pod sets \
                     neither runAsUser nor fsGroup, so the app would be neither; set runAsUser \
                     (on the container or the pod) or the pod's fsGroup, or use a mode such as 0644"
                ))
            };
        }
        if mode & OWNER_READ != 0 {
            return Err(format!(
                "mode {self} lets only the file's owner read it, but the app's user is not known \
                 (no runAsUser on the first target container or the pod), so the files cannot \
                 belong to it; set runAsUser, or use a mode such as 0644"
            ));
        }
        Err(format!(
            "mode {self} lets no one read the file; use a mode with read access such as 0400, 0440 or 0644"
        ))
    }
}

impl Default for FileMode {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl FromStr for FileMode {
    type Err = String;

    /// Exactly four octal digits, at most `0777` (ASCP's format), e.g. `0640`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            format!(
                "{s:?} is not a file mode of four octal digits at most 0777; write it like \"0640\" (quoted)"
            )
        };
        if s.len() != 4 || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Err(invalid());
        }
        let bits = u32::from_str_radix(s, 8).map_err(|_| invalid())?;
        Self::from_bits(bits).ok_or_else(invalid)
    }
}

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

/// What the webhook knows of the user the app's containers run as: the effective `runAsUser`
/// of the first target container (its own, else the pod's), the pod's `fsGroup`, and whose the
/// files are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AppIdentity {
    pub run_as_user: Option<i64>,
    pub fs_group: Option<i64>,
    pub owner: Owner,
}

/// Whose the files are: the user the injector runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Owner {
    /// The app's user when it is known (`run_as_user`), else the injector's own.
    #[default]
    App,
    /// The mesh proxy's user (`mesh-bypass`), so that a mesh's redirect lets the injector's
    /// traffic through. `shares_group`: the app is in the files' group (the pod's `fsGroup`, or
    /// the app's `runAsGroup`, which the injector then runs with).
    MeshProxy { shares_group: bool },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(s: &str) -> FileMode {
        s.parse().unwrap()
    }

    #[test]
    fn parses_four_octal_digits() {
        assert_eq!(mode("0644").bits(), 0o644);
        assert_eq!(mode("0400").bits(), 0o400);
        assert_eq!(mode("0777").bits(), 0o777);
        assert_eq!(mode("0000").bits(), 0);
        assert_eq!(FileMode::DEFAULT, mode("0644"));
        assert_eq!(FileMode::default(), FileMode::DEFAULT);
    }

    #[test]
    fn rejects_anything_else() {
        for bad in [
            "644", "00644", "0844", "abc9", "1777", "4755", "", "0x1f", "+644", " 644", "０644",
        ] {
            let err = bad.parse::<FileMode>().unwrap_err();
            assert!(
                err.contains("four octal digits at most 0777"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn displays_four_digits() {
        assert_eq!(mode("0644").to_string(), "0644");
        assert_eq!(mode("0007").to_string(), "0007");
        assert_eq!(FileMode::from_bits(0o600).unwrap().to_string(), "0600");
        assert_eq!(FileMode::from_bits(0o1000), None);
    }

    const NOBODY: AppIdentity = AppIdentity {
        run_as_user: None,
        fs_group: None,
        owner: Owner::App,
    };
    const USER: AppIdentity = AppIdentity {
        run_as_user: Some(1000),
        fs_group: None,
        owner: Owner::App,
    };
    const GROUP: AppIdentity = AppIdentity {
        run_as_user: None,
        fs_group: Some(2000),
        owner: Owner::App,
    };

    fn bypass(shares_group: bool) -> AppIdentity {
        AppIdentity {
            run_as_user: Some(1000),
            fs_group: shares_group.then_some(2000),
            owner: Owner::MeshProxy { shares_group },
        }
    }

    #[test]
    fn under_the_mesh_bypass_the_app_reads_by_group_or_as_others() {
        // The app is not the owner, whatever its runAsUser: owner-only modes never do.
        for shares_group in [true, false] {
            for m in ["0600", "0400", "0700"] {
                let err = mode(m).readable_by_app(bypass(shares_group)).unwrap_err();
                assert!(err.contains("mesh-bypass") && err.contains(m), "{err}");
            }
            assert_eq!(mode("0644").readable_by_app(bypass(shares_group)), Ok(()));
        }
        assert_eq!(mode("0640").readable_by_app(bypass(true)), Ok(()));
        assert_eq!(mode("0440").readable_by_app(bypass(true)), Ok(()));
        let err = mode("0640").readable_by_app(bypass(false)).unwrap_err();
        assert!(
            err.contains("fsGroup") && err.contains("runAsGroup"),
            "{err}"
        );
        // In the files' group, the kernel reads the group bits, not the others bits.
        let err = mode("0604").readable_by_app(bypass(true)).unwrap_err();
        assert!(err.contains("group read access"), "{err}");
        assert_eq!(mode("0604").readable_by_app(bypass(false)), Ok(()));
    }

    #[test]
    fn others_readable_is_always_fine_without_a_user() {
        for m in ["0644", "0444", "0604", "0004", "0755"] {
            assert_eq!(mode(m).readable_by_app(NOBODY), Ok(()), "{m}");
            assert_eq!(mode(m).readable_by_app(GROUP), Ok(()), "{m}");
        }
    }

    #[test]
    fn group_readable_needs_user_or_fs_group() {
        assert_eq!(mode("0640").readable_by_app(USER), Ok(()));
        assert_eq!(mode("0640").readable_by_app(GROUP), Ok(()));
        assert_eq!(mode("0440").readable_by_app(GROUP), Ok(()));
        let err = mode("0640").readable_by_app(NOBODY).unwrap_err();
        assert!(
            err.contains("0640") && err.contains("fsGroup") && err.contains("runAsUser"),
            "{err}"
        );
    }

    #[test]
    fn owner_readable_needs_user() {
        assert_eq!(mode("0600").readable_by_app(USER), Ok(()));
        assert_eq!(mode("0400").readable_by_app(USER), Ok(()));
        for app in [NOBODY, GROUP] {
            let err = mode("0600").readable_by_app(app).unwrap_err();
            assert!(
                err.contains("only the file's owner") && err.contains("runAsUser"),
                "{err}"
            );
        }
    }

    #[test]
    fn unreadable_mode_is_refused() {
        for app in [NOBODY, USER, GROUP] {
            let err = mode("0200").readable_by_app(app).unwrap_err();
            assert!(err.contains("0200"), "{err}");
        }
        let err = mode("0000").readable_by_app(NOBODY).unwrap_err();
        assert!(err.contains("lets no one read"), "{err}");
    }

    #[test]
    fn owner_bits_decide_when_the_app_owns_the_file() {
        // The kernel checks only the owner bits for the owner.
        let err = mode("0044").readable_by_app(USER).unwrap_err();
        assert!(err.contains("owner"), "{err}");
        assert!(mode("0004").readable_by_app(USER).is_err());
    }
}
