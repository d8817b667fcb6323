//! podman, as the tests and `scripts/demo.sh` call it, and the images they run.
//!
//! Every call is bounded (coreutils `timeout`, then a kill), and carries this machine's quirks
//! (also in `scripts/images.sh` and docs/images.md): `--runtime runc`, because crun fails with
//! "cgroups in hybrid mode not supported"; on `run`, `--ulimit nofile=1024:1024 --ulimit
//! nproc=1024:1024`, because rlimits cannot be raised, and `--network host`, to reach moto on the
//! host's loopback (or, for the service-mesh test, `--network ns:/run/netns/NAME`: a namespace of
//! the test's own). Nothing is ever pulled (`--pull=never`): no registry is reachable.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use crate::tools::workspace_root;

/// The tag of the test images: `test`, or `SECRETS_INJECTOR_TEST_TAG` at build time (build.rs).
pub const TEST_TAG: &str = env!("SECRETS_INJECTOR_TEST_TAG");
/// The injector image the tests run (`scripts/images.sh --profile dev --tag test`).
pub const INJECTOR_IMAGE: &str = concat!(
    "ghcr.io/secrets-injector/injector:",
    env!("SECRETS_INJECTOR_TEST_TAG")
);
/// The webhook image built with it.
pub const WEBHOOK_IMAGE: &str = concat!(
    "ghcr.io/secrets-injector/webhook:",
    env!("SECRETS_INJECTOR_TEST_TAG")
);
/// The app image: a static busybox at `/bin/busybox` in an otherwise empty image.
pub const APP_IMAGE: &str = concat!(
    "localhost/secrets-injector/busybox:",
    env!("SECRETS_INJECTOR_TEST_TAG")
);

/// The stand-in mesh proxy's image (tests/src/bin/mesh-proxy.rs, static, in a scratch image).
pub const MESH_PROXY_IMAGE: &str = concat!(
    "localhost/secrets-injector/mesh-proxy:",
    env!("SECRETS_INJECTOR_TEST_TAG")
);

/// The bound of one image build (a cached one takes a second).
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);
/// The bound of a call that only reads or removes.
const QUICK_TIMEOUT: Duration = Duration::from_secs(120);

/// The podman program, or a failure that says how to install it: never a silent pass.
pub fn podman_program() -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let path = Path::new(dir).join("podman");
        if path.is_file() {
            for runc in ["/usr/bin/runc", "/usr/sbin/runc", "/usr/local/bin/runc"] {
                if Path::new(runc).is_file() {
                    return path;
                }
            }
            panic!(
                "runc is not installed (podman here needs it: crun fails with cgroups in hybrid \
                 mode): apt-get install -y runc, or run ./scripts/test.sh, which installs it"
            );
        }
    }
    panic!(
        "podman is not installed: the end-to-end tests run the pod's containers with it. \
         apt-get install -y podman runc, or run ./scripts/test.sh, which installs them"
    );
}

/// `timeout podman --runtime runc ARGS`: killed when it outlives `bound`.
pub fn podman(bound: Duration, args: &[&str]) -> Command {
    let mut command = Command::new("timeout");
    command
        .arg("--kill-after=10")
        .arg(bound.as_secs().to_string())
        .arg(podman_program())
        .args(["--runtime", "runc"])
        .args(args);
    command
}

/// The options every `podman run` of the tests starts with, on the host's network.
pub fn run_args(name: &str) -> Vec<String> {
    run_args_on(name, "host")
}

/// [`run_args`] with this `--network` value (`host`, or `ns:/run/netns/NAME`).
pub fn run_args_on(name: &str, network: &str) -> Vec<String> {
    [
        "run",
        "--rm",
        "--pull=never",
        "--network",
        network,
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        "--name",
        name,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Runs `command` to its end; panics, naming what ran, when `timeout` had to stop it.
pub fn output(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start timeout/podman: {e}"));
    // timeout(1) exits 124 when it stopped the command, 137 when it had to kill it.
    if matches!(output.status.code(), Some(124) | Some(137)) {
        panic!(
            "{what} did not finish in time; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    output
}

/// Removes a container that may be left after a stopped run.
pub fn remove_container(name: &str) {
    let _ = podman(QUICK_TIMEOUT, &["rm", "--force", "--ignore", name]).output();
}

/// Whether the container `name` exists and runs.
pub fn is_running(name: &str) -> bool {
    podman(
        QUICK_TIMEOUT,
        &[
            "container",
            "inspect",
            "--format",
            "{{.State.Running}}",
            name,
        ],
    )
    .output()
    .is_ok_and(|out| out.status.success() && out.stdout.starts_with(b"true"))
}

/// The `User` of an image's configuration (empty: root).
pub fn image_user(image: &str) -> String {
    let out = output(
        &mut podman(
            QUICK_TIMEOUT,
            &["image", "inspect", "--format", "{{.Config.User}}", image],
        ),
        "podman image inspect",
    );
    assert!(
        out.status.success(),
        "podman image inspect {image}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Builds, once per test process, the images the tests run: the injector and webhook images
/// with `scripts/images.sh --profile dev --tag test` (a rebuild of what changed, so a test never
/// runs a stale binary) and the busybox app image. `scripts/test.sh` builds them first, so here
/// it is only a check.
pub fn test_images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        podman_program();
        let root = workspace_root();
        let out = Command::new(root.join("scripts/images.sh"))
            .args(["--profile", "dev", "--tag", TEST_TAG])
            .current_dir(&root)
            .output()
            .expect("run scripts/images.sh");
        assert!(
            out.status.success(),
            "scripts/images.sh --profile dev --tag test failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        app_image();
    });
}

/// Builds (once per process) the stand-in mesh proxy's image from
/// `tests/images/mesh-proxy/Containerfile`: `mesh-proxy` built static with
/// `scripts/build-static.sh --profile dev` (a rebuild of what changed) in a scratch image.
pub fn mesh_proxy_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        podman_program();
        let root = workspace_root();
        let out = Command::new(root.join("scripts/build-static.sh"))
            .args(["--profile", "dev", "mesh-proxy"])
            .current_dir(&root)
            .output()
            .expect("run scripts/build-static.sh");
        assert!(
            out.status.success(),
            "scripts/build-static.sh --profile dev mesh-proxy failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let binary = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let context = tempfile::tempdir().expect("temp dir");
        std::fs::copy(&binary, context.path().join("mesh-proxy"))
            .unwrap_or_else(|e| panic!("copy {binary}: {e}"));
        build_image(
            &root.join("tests/images/mesh-proxy/Containerfile"),
            context.path(),
            MESH_PROXY_IMAGE,
        );
    });
    MESH_PROXY_IMAGE
}

/// `podman build` of `containerfile` with `context` as `name`; the image the name had before is
/// removed unless in use.
fn build_image(containerfile: &Path, context: &Path, name: &str) {
    let previous = image_id(name);
    let out = output(
        &mut podman(
            BUILD_TIMEOUT,
            &[
                "build",
                "--pull=never",
                "--quiet",
                "-f",
                &containerfile.to_string_lossy(),
                "-t",
                name,
                &context.to_string_lossy(),
            ],
        ),
        &format!("podman build of {name}"),
    );
    assert!(
        out.status.success(),
        "podman build of {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if let Some(previous) = previous.filter(|p| Some(p) != image_id(name).as_ref()) {
        let _ = podman(QUICK_TIMEOUT, &["rmi", &previous]).output();
    }
}

/// The id of a local image, `None` when there is none.
fn image_id(image: &str) -> Option<String> {
    let out = podman(
        QUICK_TIMEOUT,
        &["image", "inspect", "--format", "{{.Id}}", image],
    )
    .output()
    .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Builds the busybox app image (once per process) from `tests/images/busybox/Containerfile`.
pub fn app_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "no static busybox: apt-get install -y busybox-static \
                     (./scripts/test.sh installs it)"
                )
            });
        let context = tempfile::tempdir().expect("temp dir");
        std::fs::copy(busybox, context.path().join("busybox")).expect("copy busybox");
        let containerfile = workspace_root().join("tests/images/busybox/Containerfile");
        build_image(&containerfile, context.path(), APP_IMAGE);
    });
    APP_IMAGE
}
