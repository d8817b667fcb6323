//! Offline schema validation of Kubernetes manifests with `kubernetes-validate` (the official
//! JSON schemas of one Kubernetes version, `--strict` rejecting unknown fields). It is slow to
//! start, so a whole batch goes through one process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::tools::venv_program;

/// The Kubernetes version the manifests are checked against.
pub const KUBERNETES_VERSION: &str = "1.33.0";

/// Every version the product supports (native sidecars need 1.29), as
/// `tests/manifests/support.py` lists them.
pub const KUBERNETES_VERSIONS: [&str; 5] = ["1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0"];

/// Validates these manifest files (YAML or JSON) in one run. `Err` holds the tool's report when
/// any file fails.
pub fn validate_files(paths: &[PathBuf]) -> Result<(), String> {
    validate_files_for(KUBERNETES_VERSION, paths)
}

/// [`validate_files`] against the schemas of another Kubernetes version.
pub fn validate_files_for(version: &str, paths: &[PathBuf]) -> Result<(), String> {
    if paths.is_empty() {
        return Ok(());
    }
    let output = Command::new(venv_program("kubernetes-validate"))
        .args(["--strict", "--quiet", "--kubernetes-version", version])
        .args(paths)
        .output()
        .map_err(|e| format!("kubernetes-validate did not run: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "kubernetes-validate rejected a manifest for Kubernetes {version} ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Validates manifests given as text, each written to its own file named `name` (with its
/// extension, `.json` or `.yaml`) in a fresh directory that is removed afterwards.
pub fn validate_manifests(manifests: &[(String, String)]) -> Result<(), String> {
    validate_manifests_for(&[KUBERNETES_VERSION], manifests)
}

/// [`validate_manifests`] against the schemas of each of `versions`.
pub fn validate_manifests_for(
    versions: &[&str],
    manifests: &[(String, String)],
) -> Result<(), String> {
    static BATCH: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "secrets-injector-validate-{}-{}",
        std::process::id(),
        BATCH.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = write_all(&dir, manifests).and_then(|paths| {
        versions
            .iter()
            .try_for_each(|version| validate_files_for(version, &paths))
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn write_all(dir: &Path, manifests: &[(String, String)]) -> Result<Vec<PathBuf>, String> {
    manifests
        .iter()
        .map(|(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(path)
        })
        .collect()
}
