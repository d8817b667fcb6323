//! Offline schema validation of Kubernetes manifests with `kubernetes-validate` (the official
//! JSON schemas of one Kubernetes version, `--strict` rejecting unknown fields). It is slow to
//! start, so a whole batch goes through one process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::tools::venv_program;

/// The Kubernetes version the manifests are checked against.
pub const KUBERNETES_VERSION: &str = "1.33.0";

/// Validates these manifest files (YAML or JSON) in one run. `Err` holds the tool's report when
/// any file fails.
pub fn validate_files(paths: &[PathBuf]) -> Result<(), String> {
    if paths.is_empty() {
        return Ok(());
    }
    let output = Command::new(venv_program("kubernetes-validate"))
        .args([
            "--strict",
            "--quiet",
            "--kubernetes-version",
            KUBERNETES_VERSION,
        ])
        .args(paths)
        .output()
        .map_err(|e| format!("kubernetes-validate did not run: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "kubernetes-validate rejected a manifest ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Validates manifests given as text, each written to its own file named `name` (with its
/// extension, `.json` or `.yaml`) in a fresh directory that is removed afterwards.
pub fn validate_manifests(manifests: &[(String, String)]) -> Result<(), String> {
    static BATCH: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "secrets-injector-validate-{}-{}",
        std::process::id(),
        BATCH.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let result = write_all(&dir, manifests).and_then(|paths| validate_files(&paths));
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
