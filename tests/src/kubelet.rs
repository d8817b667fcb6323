//! A kubelet-like runner for the injected init container.
//!
//! It runs the container the way the kubelet and the container runtime would: in a private mount
//! namespace (`unshare -m`), chrooted into a root that holds only the host's `/usr` and `/etc`
//! (read-only, standing in for the image's libraries), the binary at the path of `command[0]`,
//! one bind mount per `volumeMount` (read-only when the mount says so), and `/dev/termination-log`;
//! the root itself is read-only, as `readOnlyRootFilesystem: true` makes it. The process gets
//! exactly the container's `env`, `command` and `args`, and the user, group and supplementary
//! groups of its securityContext and the pod's `fsGroup` (with `setpriv`, no new privileges).
//! The files are then read back from the volume's host directory, as the app container sees them.
//!
//! Needs root, `unshare`, `setpriv` and `chroot` (util-linux and coreutils).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The init container's name, which is also the name of its volume.
pub const INJECTOR: &str = "secrets-injector";

/// The image's default user (distroless `nonroot`), used when the securityContext sets none.
const IMAGE_USER: u32 = 65532;

/// One file of a volume as the app container sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileView {
    pub content: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// What a run of the init container produced.
#[derive(Debug)]
pub struct Run {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    pub termination_log: String,
    /// Every regular file of the injector's volume, by its path relative to the volume.
    pub files: BTreeMap<String, FileView>,
    /// Every entry of the volume (files and directories), to prove nothing else is left.
    pub entries: Vec<String>,
}

impl Run {
    pub fn file(&self, path: &str) -> &FileView {
        self.files.get(path).unwrap_or_else(|| {
            panic!(
                "no file {path} in the volume; files: {:?}; stderr: {}",
                self.files.keys().collect::<Vec<_>>(),
                self.stderr
            )
        })
    }

    pub fn text(&self, path: &str) -> String {
        String::from_utf8(self.file(path).content.clone()).expect("UTF-8 file")
    }

    /// Everything the run printed or left for the user, to search for leaked values.
    pub fn all_output(&self) -> String {
        format!("{}\n{}\n{}", self.stdout, self.stderr, self.termination_log)
    }
}

/// Host directories standing in for the pod's volumes.
pub struct Volumes {
    dirs: BTreeMap<String, PathBuf>,
    _temp: tempfile::TempDir,
}

impl Volumes {
    /// An empty directory for every `emptyDir` volume of the pod, and for every projected
    /// service-account token volume (`aws-iam-token`, `eks-pod-identity-token`) a directory
    /// holding `token` at each path the projection names.
    pub fn for_pod(pod: &Value, token: &str) -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut dirs = BTreeMap::new();
        for volume in pod["spec"]["volumes"].as_array().into_iter().flatten() {
            let name = volume["name"].as_str().expect("volume name");
            let dir = temp.path().join(name);
            fs::create_dir_all(&dir).expect("volume dir");
            if volume.get("emptyDir").is_some() {
                // The kubelet makes emptyDir volumes world-writable; with fsGroup it hands the
                // group to the pod and sets the setgid bit so new files inherit it.
                let mut mode = 0o777;
                if let Some(group) = pod["spec"]["securityContext"]["fsGroup"].as_u64() {
                    chown(&dir, None, Some(group as u32));
                    mode |= 0o2000;
                }
                fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).expect("chmod");
            }
            for source in volume["projected"]["sources"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(path) = source["serviceAccountToken"]["path"].as_str() {
                    let file = dir.join(path);
                    fs::create_dir_all(file.parent().expect("token dir")).expect("token dir");
                    fs::write(&file, token).expect("token file");
                    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
                }
            }
            dirs.insert(name.to_string(), dir);
        }
        Volumes { dirs, _temp: temp }
    }

    pub fn dir(&self, volume: &str) -> &Path {
        self.dirs
            .get(volume)
            .unwrap_or_else(|| panic!("the pod has no volume {volume}"))
    }
}

/// Finds a container by name in `spec.initContainers` or `spec.containers`.
pub fn container<'a>(pod: &'a Value, name: &str) -> &'a Value {
    ["initContainers", "containers"]
        .iter()
        .flat_map(|list| pod["spec"][*list].as_array().into_iter().flatten())
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("the pod has no container {name}"))
}

/// Runs the injected init container of `pod`, with `binary` standing at the path of its
/// `command[0]`, and returns what it did. Files are read back from the injector's volume.
pub fn run_init_container(pod: &Value, volumes: &Volumes, binary: &Path) -> Run {
    let spec = container(pod, INJECTOR);
    let work = tempfile::tempdir().expect("temp dir");
    let root = work.path().join("root");
    fs::create_dir(&root).expect("root dir");
    let termination_log = work.path().join("termination-log");
    fs::write(&termination_log, b"").expect("termination log");
    fs::set_permissions(&termination_log, fs::Permissions::from_mode(0o666)).expect("chmod");

    let words = |key: &str| -> Vec<String> {
        spec[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| w.as_str().expect("string").to_string())
            .collect()
    };
    let command = words("command");
    assert!(!command.is_empty(), "the init container has no command");
    let program = &command[0];
    assert!(
        program.starts_with('/'),
        "command[0] must be absolute: {program}"
    );

    let mut script = String::from("set -eu\n");
    let mut line = |s: String| {
        script.push_str(&s);
        script.push('\n');
    };
    let r = sh_quote(&root.to_string_lossy());
    line(format!("mount -t tmpfs -o mode=0755 tmpfs {r}"));
    line(format!("mkdir -p {r}/usr {r}/etc {r}/dev {r}/proc"));
    line(format!(
        "ln -s usr/lib {r}/lib && ln -s usr/lib64 {r}/lib64"
    ));
    line(format!("ln -s usr/bin {r}/bin"));
    for dir in ["usr", "etc"] {
        line(format!("mount --bind /{dir} {r}/{dir}"));
        line(format!("mount -o remount,bind,ro {r}/{dir}"));
    }
    for dev in ["null", "zero", "urandom", "random"] {
        line(format!(
            "touch {r}/dev/{dev} && mount --bind /dev/{dev} {r}/dev/{dev}"
        ));
    }
    line(format!(
        "touch {r}/dev/termination-log && mount --bind {} {r}/dev/termination-log",
        sh_quote(&termination_log.to_string_lossy())
    ));
    // The image holds only the binary in its directory: a tmpfs there hides the host's files
    // and gives the bind mount a target without touching the host.
    let target = format!("{r}{}", sh_quote(program));
    line(format!(
        "bin_dir=\"$(dirname {target})\"; mkdir -p \"$bin_dir\" 2>/dev/null || true"
    ));
    line("mount -t tmpfs -o mode=0755 tmpfs \"$bin_dir\" && touch ".to_string() + &target);
    line(format!(
        "mount --bind {} {target} && mount -o remount,bind,ro {target}",
        sh_quote(&binary.to_string_lossy())
    ));
    for mount in spec["volumeMounts"].as_array().into_iter().flatten() {
        let name = mount["name"].as_str().expect("mount name");
        let path = mount["mountPath"].as_str().expect("mountPath");
        let mut host = volumes.dir(name).to_path_buf();
        if let Some(sub) = mount["subPath"].as_str() {
            host = host.join(sub);
        }
        let at = format!("{r}{}", sh_quote(path));
        line(format!("mkdir -p {at}"));
        line(format!(
            "mount --bind {} {at}",
            sh_quote(&host.to_string_lossy())
        ));
        if mount["readOnly"].as_bool() == Some(true) {
            line(format!("mount -o remount,bind,ro {at}"));
        }
    }
    // readOnlyRootFilesystem: the root is read-only; only the volume mounts are writable.
    line(format!("mount -o remount,ro {r}"));

    let security = &spec["securityContext"];
    let pod_security = &pod["spec"]["securityContext"];
    let id = |key: &str| {
        security[key]
            .as_u64()
            .or_else(|| pod_security[key].as_u64())
            .map(|v| v as u32)
    };
    let uid = id("runAsUser").unwrap_or(IMAGE_USER);
    let gid = id("runAsGroup").unwrap_or(uid);
    let groups = pod_security["fsGroup"]
        .as_u64()
        .map(|g| format!("--groups={g}"))
        .unwrap_or_else(|| "--clear-groups".to_string());
    let mut exec = format!(
        "exec chroot {r} /usr/bin/setpriv --reuid={uid} --regid={gid} {groups} --no-new-privs \
         --inh-caps=-all --bounding-set=-all /usr/bin/env -i"
    );
    for var in spec["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().expect("env name");
        // valueFrom (fieldRef, secretKeyRef) is resolved by the kubelet; tests use literal values.
        let value = var["value"].as_str().unwrap_or_else(|| {
            panic!("env {name} has no literal value; the runner resolves only `value`")
        });
        exec.push(' ');
        exec.push_str(&sh_quote(&format!("{name}={value}")));
    }
    for word in command.iter().chain(words("args").iter()) {
        exec.push(' ');
        exec.push_str(&sh_quote(word));
    }
    line(exec);

    let output = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("run unshare (util-linux) as root");
    let volume = volumes.dir(INJECTOR);
    let (files, entries) = read_volume(volume);
    Run {
        exit_code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        termination_log: fs::read_to_string(&termination_log).unwrap_or_default(),
        files,
        entries,
    }
}

fn read_volume(dir: &Path) -> (BTreeMap<String, FileView>, Vec<String>) {
    let mut files = BTreeMap::new();
    let mut entries = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).expect("read volume") {
            let entry = entry.expect("volume entry");
            let path = entry.path();
            let relative = path
                .strip_prefix(dir)
                .expect("inside the volume")
                .to_string_lossy()
                .into_owned();
            let meta = fs::symlink_metadata(&path).expect("stat");
            entries.push(relative.clone());
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                files.insert(
                    relative,
                    FileView {
                        content: fs::read(&path).expect("read file"),
                        mode: meta.mode() & 0o7777,
                        uid: meta.uid(),
                        gid: meta.gid(),
                    },
                );
            }
        }
    }
    entries.sort();
    (files, entries)
}

fn chown(path: &Path, uid: Option<u32>, gid: Option<u32>) {
    std::os::unix::fs::chown(path, uid, gid).expect("chown");
}

/// Quotes a word for `sh`: single quotes, with `'` written as `'\''`.
pub fn sh_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}
