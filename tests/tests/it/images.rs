//! The images `scripts/images.sh` builds hold what their Containerfiles promise and nothing
//! else: the static binaries and the CA bundle in an image from scratch, run as 65532:65532.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use secrets_injector_e2e::podman::{self, INJECTOR_IMAGE, WEBHOOK_IMAGE};
use serde_json::{Value, json};

const BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

/// Every regular file of the image's filesystem, by path, with its mode.
fn files(image: &str) -> BTreeMap<String, (Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let name = format!("images-test-{}-{}", std::process::id(), image.len());
    let work = tempfile::tempdir().expect("temp dir");
    let tar = work.path().join("rootfs.tar");
    let bound = Duration::from_secs(120);
    let create = podman::output(
        &mut podman::podman(bound, &["create", "--pull=never", "--name", &name, image]),
        "podman create",
    );
    assert!(
        create.status.success(),
        "podman create {image}: {}",
        String::from_utf8_lossy(&create.stderr)
    );
    let export = podman::output(
        &mut podman::podman(bound, &["export", "-o", &tar.to_string_lossy(), &name]),
        "podman export",
    );
    podman::remove_container(&name);
    assert!(export.status.success(), "podman export {image}");
    let root = work.path().join("root");
    fs::create_dir(&root).expect("root dir");
    let untar = Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&root)
        .status()
        .expect("run tar");
    assert!(untar.success(), "tar -xf the exported image");
    let mut out = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            let meta = fs::symlink_metadata(&path).expect("stat");
            if meta.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(&root).expect("inside").to_string_lossy();
                let content = if meta.is_file() {
                    fs::read(&path).expect("read")
                } else {
                    Vec::new()
                };
                out.insert(
                    relative.into_owned(),
                    (content, meta.permissions().mode() & 0o7777),
                );
            }
        }
    }
    out
}

fn config(image: &str) -> Value {
    let out = podman::output(
        &mut podman::podman(
            Duration::from_secs(120),
            &["image", "inspect", "--format", "{{json .Config}}", image],
        ),
        "podman image inspect",
    );
    assert!(out.status.success(), "podman image inspect {image}");
    serde_json::from_slice(&out.stdout).expect("image config JSON")
}

/// Files podman creates in every container's root as mount points; not from the image.
fn from_the_image(files: &BTreeMap<String, (Vec<u8>, u32)>) -> Vec<&str> {
    files
        .iter()
        .filter(|(path, (content, _))| {
            !(content.is_empty()
                && [
                    "etc/hosts",
                    "etc/hostname",
                    "etc/resolv.conf",
                    "run/.containerenv",
                ]
                .contains(&path.as_str()))
        })
        .map(|(path, _)| path.as_str())
        .collect()
}

fn is_static(content: &[u8]) -> bool {
    // An ELF executable with no PT_INTERP program header asks for no dynamic loader.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bin");
    fs::write(&path, content).expect("write");
    let out = Command::new("file")
        .arg(&path)
        .output()
        .expect("file(1) is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    text.contains("statically linked") || text.contains("static-pie linked")
}

fn host_bundle() -> Vec<u8> {
    fs::read(Path::new("/").join(BUNDLE)).expect("Debian's CA bundle (ca-certificates)")
}

#[test]
fn the_injector_image_holds_its_two_static_binaries_and_the_ca_bundle_only() {
    podman::test_images();
    let files = files(INJECTOR_IMAGE);
    assert_eq!(
        from_the_image(&files),
        [
            BUNDLE,
            "usr/local/bin/injector",
            "usr/local/bin/secrets-env"
        ]
    );
    assert_eq!(files[BUNDLE].0, host_bundle());
    for bin in ["usr/local/bin/injector", "usr/local/bin/secrets-env"] {
        let (content, mode) = &files[bin];
        assert_eq!(*mode, 0o755, "{bin}");
        assert!(is_static(content), "{bin} is not statically linked");
    }
    let config = config(INJECTOR_IMAGE);
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(config["Entrypoint"], json!(["/usr/local/bin/injector"]));
}

#[test]
fn the_webhook_image_holds_its_static_binary_and_the_ca_bundle_only() {
    podman::test_images();
    let files = files(WEBHOOK_IMAGE);
    assert_eq!(from_the_image(&files), [BUNDLE, "usr/local/bin/webhook"]);
    assert_eq!(files[BUNDLE].0, host_bundle());
    assert!(is_static(&files["usr/local/bin/webhook"].0));
    let config = config(WEBHOOK_IMAGE);
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(config["Entrypoint"], json!(["/usr/local/bin/webhook"]));
    assert_eq!(config["Cmd"], json!(["serve"]));
}

/// The webhook binary runs in its image as its default user: `webhook certs` writes a CA and a
/// serving certificate into a mounted directory.
#[test]
fn the_webhook_runs_in_its_image_as_its_default_user() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    podman::test_images();
    let out_dir = tempfile::tempdir().expect("temp dir");
    fs::set_permissions(out_dir.path(), fs::Permissions::from_mode(0o777)).expect("chmod");
    let name = format!("images-test-webhook-{}", std::process::id());
    let mut args = podman::run_args(&name);
    args.extend(
        [
            "--read-only",
            "--cap-drop",
            "ALL",
            "--volume",
            &format!("{}:/out", out_dir.path().display()),
            WEBHOOK_IMAGE,
            "certs",
            "--out-dir",
            "/out",
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = podman::output(
        &mut podman::podman(Duration::from_secs(300), &args),
        "podman run webhook certs",
    );
    podman::remove_container(&name);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cert = fs::metadata(out_dir.path().join("tls.crt")).expect("tls.crt written");
    assert_eq!(cert.uid(), 65532, "written by the image's user");
}
