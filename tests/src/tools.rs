//! Locates the test tools that `scripts/venv.sh` installs into `.venv`.

use std::path::PathBuf;

/// The workspace root (the directory holding the workspace `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The path of a program installed in the test virtualenv. Panics, saying how to install it,
/// when it is missing: a test that needs a real tool must fail, not pass silently.
pub fn venv_program(name: &str) -> PathBuf {
    let venv = std::env::var_os("SECRETS_INJECTOR_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"));
    let path = venv.join("bin").join(name);
    assert!(
        path.is_file(),
        "{name} is not installed at {}: run ./scripts/venv.sh (or ./scripts/test.sh), \
         or point SECRETS_INJECTOR_VENV at a virtualenv that has scripts/requirements-test.txt",
        path.display()
    );
    path
}

/// A built binary of the workspace (`webhook` or `injector`), from the target directory of the
/// running test. `cargo test --workspace` builds both before it runs any test.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it first with `cargo build --workspace` (cargo test --workspace does)",
        path.display()
    );
    path
}
