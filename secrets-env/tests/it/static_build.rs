//! The static build (`scripts/build-secrets-env.sh`) runs where there is no libc at all: a root
//! that holds only `secrets-env` and Debian's static busybox, entered with `chroot` (the tests
//! run as root). A dynamic program in the same root fails, which shows the root has no libc.
//! Nothing of glibc's name services is linked in.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// Builds the static binary (a no-op when it is up to date) and gives its path.
fn static_build() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = Command::new(root.join("scripts/build-secrets-env.sh"))
        .current_dir(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/build-secrets-env.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// The first of `candidates` that exists, or a failure that says how to install it.
fn tool(candidates: &[&str], install: &str) -> PathBuf {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("none of {candidates:?} exists: {install}"))
}

fn chroot(root: &Path, command: &[&str]) -> Output {
    let chroot = tool(
        &["/usr/sbin/chroot", "/usr/bin/chroot"],
        "install coreutils",
    );
    Command::new(chroot)
        .arg(root)
        .args(command)
        .env_clear()
        .env("PATH", "/bin")
        .env("FROM_SPEC", "from the spec")
        .output()
        .unwrap()
}

#[test]
fn the_static_build_runs_in_a_root_without_a_libc() {
    let busybox = tool(
        &["/bin/busybox", "/usr/bin/busybox"],
        "this test needs Debian's static busybox: apt-get install -y busybox-static \
         (scripts/test.sh installs it)",
    );
    let binary = static_build();
    // glibc's name services (users, hosts) load shared libraries named in nsswitch.conf at run
    // time, which a static binary cannot do in an image without that glibc: none is linked in.
    let bytes = fs::read(&binary).unwrap();
    assert!(
        !bytes
            .windows(b"nsswitch.conf".len())
            .any(|w| w == b"nsswitch.conf"),
        "{} links glibc's name services (NSS): it would need glibc's shared libraries at run time",
        binary.display()
    );

    let root = TempDir::new().unwrap();
    let r = root.path();
    fs::create_dir(r.join("bin")).unwrap();
    fs::copy(&binary, r.join("secrets-env")).unwrap();
    fs::copy(&busybox, r.join("bin/busybox")).unwrap();
    // Two volumes: the injector's layout, and a plain directory that also sets SHARED.
    let store = r.join("mnt/secrets-store");
    let generation = store.join("..2026_11_30_10_55_09.123456789");
    fs::create_dir_all(&generation).unwrap();
    for (name, value) in [
        ("SECRET_PASSWORD", "pw with spaces"),
        ("FROM_SPEC", "from the file"),
        ("SHARED", "first"),
    ] {
        fs::write(generation.join(name), value).unwrap();
        symlink(format!("..data/{name}"), store.join(name)).unwrap();
    }
    symlink("..2026_11_30_10_55_09.123456789", store.join("..data")).unwrap();
    fs::create_dir_all(r.join("mnt/csi")).unwrap();
    fs::write(r.join("mnt/csi/SHARED"), "second").unwrap();
    fs::write(r.join("mnt/csi/ONLY_CSI"), "csi").unwrap();

    // Control: the busybox is static (it runs here), a dynamic program does not.
    let out = chroot(r, &["/bin/busybox", "true"]);
    assert!(
        out.status.success(),
        "{} does not run without a libc: install Debian's busybox-static, not busybox: {}",
        busybox.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    fs::copy("/bin/true", r.join("bin/dynamic-true")).unwrap();
    let out = chroot(r, &["/bin/dynamic-true"]);
    assert!(!out.status.success(), "the root has a libc");
    fs::remove_file(r.join("bin/dynamic-true")).unwrap();

    let out = chroot(
        r,
        &[
            "/secrets-env",
            "--dir",
            "/mnt/secrets-store",
            "--dir=/mnt/csi",
            "--",
            "busybox",
            "env",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let mut lines: Vec<_> = stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "FROM_SPEC=from the file",
            "ONLY_CSI=csi",
            "PATH=/bin",
            "SECRET_PASSWORD=pw with spaces",
            "SHARED=first",
        ]
    );

    // Failures are reported from the static build as well (stderr, exit code).
    let out = chroot(
        r,
        &["/secrets-env", "--dir", "/mnt/csi", "--", "no-such-app"],
    );
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).lines().next().unwrap(),
        "secrets-env: command \"no-such-app\" not found (searched PATH unless it contains a \
         '/'); set the container's command to the program the image runs"
    );
    let out = chroot(
        r,
        &["/secrets-env", "--dir", "/not-mounted", "--", "busybox"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("No such file or directory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
