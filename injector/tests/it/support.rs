//! What the injector's tests share: seeding moto with the AWS SDK, and running the injector
//! binary the way the init container runs it (web identity env, endpoint, emptyDir).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_ssm::types::ParameterType;

pub use secrets_injector_e2e::moto::Moto;
pub use secrets_injector_e2e::proxy::{Fault, FaultKind, Proxy};

pub const REGION: &str = "us-east-1";
pub const FAILOVER_REGION: &str = "us-west-2";
pub const ACCOUNT: &str = "123456789012";
/// Every value seeded by the tests contains this, so a leak into any output is caught.
pub const MARK: &str = "SENTINEL";

/// Writes parameters and secrets into moto with static test keys.
pub struct Seeder {
    runtime: tokio::runtime::Runtime,
    pub ssm: aws_sdk_ssm::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
}

impl Seeder {
    pub fn new(endpoint: &str, region: &str) -> Seeder {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let credentials = aws_sdk_ssm::config::Credentials::new("test", "test", None, None, "test");
        let ssm = aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new(region.to_owned()))
            .endpoint_url(endpoint)
            .credentials_provider(credentials.clone())
            .build();
        let secrets = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new(
                region.to_owned(),
            ))
            .endpoint_url(endpoint)
            .credentials_provider(credentials)
            .build();
        Seeder {
            runtime,
            ssm: aws_sdk_ssm::Client::from_conf(ssm),
            secrets: aws_sdk_secretsmanager::Client::from_conf(secrets),
        }
    }

    /// Runs one SDK call of the seeding clients to its end.
    pub fn block_on<F: std::future::Future>(&self, call: F) -> F::Output {
        self.runtime.block_on(call)
    }

    /// Puts (or overwrites) a parameter; returns its version.
    pub fn put(&self, name: &str, value: &str, kind: ParameterType) -> i64 {
        self.runtime
            .block_on(
                self.ssm
                    .put_parameter()
                    .name(name)
                    .value(value)
                    .r#type(kind)
                    .overwrite(true)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("put parameter {name}: {e:?}"))
            .version()
    }

    pub fn string(&self, name: &str, value: &str) -> i64 {
        self.put(name, value, ParameterType::String)
    }

    pub fn label(&self, name: &str, version: i64, label: &str) {
        self.runtime
            .block_on(
                self.ssm
                    .label_parameter_version()
                    .name(name)
                    .parameter_version(version)
                    .labels(label)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("label {name}: {e:?}"));
    }

    /// Creates a string secret; returns (ARN, version id).
    pub fn secret(&self, name: &str, value: &str) -> (String, String) {
        let out = self
            .runtime
            .block_on(
                self.secrets
                    .create_secret()
                    .name(name)
                    .secret_string(value)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("create secret {name}: {e:?}"));
        (
            out.arn().expect("arn").to_owned(),
            out.version_id().expect("version id").to_owned(),
        )
    }

    pub fn binary_secret(&self, name: &str, value: &[u8]) -> String {
        let out = self
            .runtime
            .block_on(
                self.secrets
                    .create_secret()
                    .name(name)
                    .secret_binary(Blob::new(value))
                    .send(),
            )
            .unwrap_or_else(|e| panic!("create secret {name}: {e:?}"));
        out.arn().expect("arn").to_owned()
    }

    /// Deletes a secret with a recovery window (it can be restored), as a mistaken delete does.
    pub fn delete_secret(&self, name: &str) {
        self.runtime
            .block_on(self.secrets.delete_secret().secret_id(name).send())
            .unwrap_or_else(|e| panic!("delete secret {name}: {e:?}"));
    }

    pub fn restore_secret(&self, name: &str) {
        self.runtime
            .block_on(self.secrets.restore_secret().secret_id(name).send())
            .unwrap_or_else(|e| panic!("restore secret {name}: {e:?}"));
    }

    /// A new current version of a secret; returns its version id.
    pub fn put_secret(&self, name: &str, value: &str) -> String {
        let out = self
            .runtime
            .block_on(
                self.secrets
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(value)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("put secret value {name}: {e:?}"));
        out.version_id().expect("version id").to_owned()
    }
}

/// What one run of the injector left: exit code, outputs, termination log.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub termination_log: String,
    pub elapsed: Duration,
}

impl Outcome {
    #[track_caller]
    pub fn assert_success(&self) {
        assert_eq!(self.code, 0, "injector failed:\n{self:#?}");
        assert!(
            self.stderr.is_empty(),
            "stderr of a good run: {}",
            self.stderr
        );
        assert!(self.termination_log.is_empty());
    }

    #[track_caller]
    pub fn assert_failure(&self) {
        assert_eq!(self.code, 1, "injector did not fail with 1:\n{self:#?}");
    }

    /// The JSON log lines on stdout.
    pub fn logs(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"))
            })
            .collect()
    }

    /// The summary line's fields.
    pub fn summary(&self) -> serde_json::Value {
        self.logs()
            .into_iter()
            .rev()
            .find(|l| l["message"] == "files written" || l["message"] == "nothing written")
            .unwrap_or_else(|| panic!("no summary line in\n{}", self.stdout))
    }
}

/// A pod: the emptyDir, the web identity token and the termination log, in one temp dir.
pub struct Pod {
    dir: tempfile::TempDir,
    endpoint: String,
    /// Values besides those holding [`MARK`] that must never show up in any output.
    pub secret_values: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Variables of the usual environment (web identity, `AWS_EC2_METADATA_DISABLED`) to leave
    /// out of this pod's.
    pub unset: Vec<&'static str>,
    /// The injector binary to run: the one Cargo built, unless a test runs it from elsewhere.
    pub program: PathBuf,
}

impl Pod {
    pub fn new(endpoint: &str) -> Pod {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("mnt")).expect("mount dir");
        std::fs::write(dir.path().join("token"), "eyJhbGciOiJSUzI1NiJ9.e30.sig").expect("token");
        Pod {
            dir,
            endpoint: endpoint.to_owned(),
            secret_values: Vec::new(),
            env: Vec::new(),
            unset: Vec::new(),
            program: PathBuf::from(env!("CARGO_BIN_EXE_injector")),
        }
    }

    pub fn mount(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    pub fn termination_log(&self) -> PathBuf {
        self.dir.path().join("termination-log")
    }

    /// The web identity token file.
    pub fn token(&self) -> PathBuf {
        self.dir.path().join("token")
    }

    /// Runs the injector with `--objects objects`, the region, the mount path and the
    /// termination log, plus `args`; checks that no value leaked into any output.
    pub fn run(&self, objects: &str, args: &[&str]) -> Outcome {
        std::fs::write(self.termination_log(), "").expect("termination log");
        let started = Instant::now();
        let output = self
            .command(None, objects, args)
            .output()
            .expect("run the injector");
        let outcome = Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
            termination_log: std::fs::read_to_string(self.termination_log())
                .expect("termination log"),
            elapsed: started.elapsed(),
        };
        self.assert_no_value_in(&outcome);
        outcome
    }

    /// Starts `injector refresh` as the sidecar runs it: the same flags as [`Pod::run`] plus
    /// `args` (`--interval=1s`, ...), its outputs in files of the pod's directory.
    pub fn start_refresh(&self, objects: &str, args: &[&str]) -> Refresh {
        let stdout = self.dir.path().join("refresh.stdout");
        let stderr = self.dir.path().join("refresh.stderr");
        let child = self
            .command(Some("refresh"), objects, args)
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start injector refresh");
        Refresh {
            child,
            stdout,
            stderr,
            values: std::iter::once(MARK.to_owned())
                .chain(self.secret_values.iter().cloned())
                .collect(),
        }
    }

    fn command(&self, subcommand: Option<&str>, objects: &str, args: &[&str]) -> Command {
        let mut command = Command::new(&self.program);
        command.args(subcommand);
        command
            .env_clear()
            .env("HOME", self.dir.path())
            .env("AWS_ROLE_ARN", format!("arn:aws:iam::{ACCOUNT}:role/app"))
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", self.dir.path().join("token"))
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .arg("--objects")
            .arg(objects)
            .arg("--mount-path")
            .arg(self.mount())
            .args(["--region", REGION])
            .arg("--termination-log")
            .arg(self.termination_log())
            .args(args);
        for name in &self.unset {
            command.env_remove(name);
        }
        command
    }

    #[track_caller]
    fn assert_no_value_in(&self, outcome: &Outcome) {
        let values = std::iter::once(MARK).chain(self.secret_values.iter().map(String::as_str));
        for value in values {
            for (stream, text) in [
                ("stdout", &outcome.stdout),
                ("stderr", &outcome.stderr),
                ("termination log", &outcome.termination_log),
            ] {
                assert!(
                    !text.contains(value),
                    "{stream} shows the value {value:?}:\n{text}"
                );
            }
        }
    }

    /// Every file of the current generation, as the app sees it: relative path -> (contents,
    /// mode). Checks the volume's layout first (see [`Pod::generation`]); empty when nothing was
    /// written.
    pub fn files(&self) -> BTreeMap<String, (Vec<u8>, u32)> {
        let mut files = BTreeMap::new();
        if self.entries().is_empty() {
            return files;
        }
        let generation = self.mount().join(self.generation());
        walk(&generation, &generation, &mut files);
        files
    }

    /// The current generation's directory name, once the layout is checked: `..data` links to
    /// a `..<timestamp>` directory of the mount, and every other entry not starting with `..`
    /// is a link `NAME -> ..data/NAME` for each top-level name of that generation, and only
    /// those. Generations beside the current one are allowed (a refresh keeps the previous).
    #[track_caller]
    pub fn generation(&self) -> String {
        let mount = self.mount();
        let data = std::fs::read_link(mount.join("..data"))
            .unwrap_or_else(|e| panic!("..data is not a symlink ({e}): {:?}", self.entries()))
            .into_os_string()
            .into_string()
            .expect("UTF-8 generation");
        assert!(
            is_generation(&data),
            "..data -> {data}, not a ..<timestamp> directory"
        );
        assert!(
            mount.join(&data).is_dir(),
            "..data -> {data}, which is missing"
        );
        let mut tops: Vec<String> = std::fs::read_dir(mount.join(&data))
            .expect("read the generation")
            .map(|e| e.expect("entry").file_name().into_string().expect("UTF-8"))
            .collect();
        tops.sort();
        let mut links = Vec::new();
        for name in self.entries() {
            if name == "..data" {
                continue;
            }
            if name.starts_with("..") {
                assert!(is_generation(&name), "unexpected entry {name} in the mount");
                continue;
            }
            let target = std::fs::read_link(mount.join(&name))
                .unwrap_or_else(|e| panic!("{name} is not a symlink: {e}"));
            assert_eq!(target, Path::new("..data").join(&name), "{name}'s link");
            links.push(name);
        }
        assert_eq!(
            links, tops,
            "top-level links against the generation's names"
        );
        data
    }

    /// The generation directories in the mount (`..<timestamp>`), sorted (oldest first).
    pub fn generations(&self) -> Vec<String> {
        self.entries()
            .into_iter()
            .filter(|name| is_generation(name))
            .collect()
    }

    /// Every entry directly in the mount directory, hidden ones included.
    pub fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.mount())
            .expect("read mount")
            .map(|e| {
                e.expect("entry")
                    .file_name()
                    .into_string()
                    .expect("UTF-8 name")
            })
            .collect();
        names.sort();
        names
    }

    pub fn read(&self, path: &str) -> Vec<u8> {
        std::fs::read(self.mount().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
    }

    pub fn read_string(&self, path: &str) -> String {
        String::from_utf8(self.read(path)).expect("UTF-8 file")
    }
}

/// `..2026_11_30_10_55_09.123456789`
pub fn is_generation(name: &str) -> bool {
    name.len() == 31
        && name.starts_with("..")
        && name[2..]
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// A running `injector refresh`; killed on drop. Its JSON log is read from a file as it grows.
pub struct Refresh {
    child: std::process::Child,
    stdout: PathBuf,
    stderr: PathBuf,
    /// Values that must never show up in its outputs.
    values: Vec<String>,
}

/// How long any wait on the sidecar may take before the test gives up: a guard against a hang,
/// far beyond what the waits need; the tests count cycles, not seconds.
const GIVE_UP: Duration = Duration::from_secs(180);

impl Refresh {
    /// Every JSON log line so far, checked for values.
    #[track_caller]
    pub fn logs(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.stdout).expect("refresh stdout");
        let errors = std::fs::read_to_string(&self.stderr).expect("refresh stderr");
        for value in &self.values {
            assert!(
                !text.contains(value.as_str()),
                "stdout shows {value:?}:\n{text}"
            );
            assert!(
                !errors.contains(value.as_str()),
                "stderr shows {value:?}:\n{errors}"
            );
        }
        text.lines()
            .filter(|line| line.ends_with('}'))
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"))
            })
            .collect()
    }

    /// The "refresh cycle" lines so far.
    pub fn cycles(&self) -> Vec<serde_json::Value> {
        self.logs()
            .into_iter()
            .filter(|l| l["message"] == "refresh cycle")
            .collect()
    }

    /// Waits for a log line with this message.
    #[track_caller]
    pub fn wait_log(&mut self, message: &str) {
        let started = Instant::now();
        while !self.logs().iter().any(|l| l["message"] == message) {
            self.assert_running();
            assert!(
                started.elapsed() < GIVE_UP,
                "no log line {message:?} in {GIVE_UP:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until `n` cycles in all have ended; returns them.
    #[track_caller]
    pub fn wait_cycles(&mut self, n: usize) -> Vec<serde_json::Value> {
        self.wait_for(&format!("{n} cycles"), |cycles| cycles.len() >= n)
    }

    /// Waits until the cycles so far satisfy `done`; returns them. Panics when the sidecar
    /// exits meanwhile.
    #[track_caller]
    pub fn wait_for(
        &mut self,
        what: &str,
        mut done: impl FnMut(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let started = Instant::now();
        loop {
            let cycles = self.cycles();
            if done(&cycles) {
                return cycles;
            }
            self.assert_running();
            assert!(
                started.elapsed() < GIVE_UP,
                "no {what} in {GIVE_UP:?}; log:\n{}",
                std::fs::read_to_string(&self.stdout).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[track_caller]
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!(
                "injector refresh exited with {status}:\n{}\n{}",
                std::fs::read_to_string(&self.stdout).unwrap_or_default(),
                std::fs::read_to_string(&self.stderr).unwrap_or_default()
            );
        }
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
        let status = self.child.wait().expect("wait");
        let _ = self.logs();
        status
    }
}

impl Drop for Refresh {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn walk(root: &Path, dir: &Path, files: &mut BTreeMap<String, (Vec<u8>, u32)>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let meta = std::fs::symlink_metadata(&path).expect("metadata");
        if meta.is_dir() {
            walk(root, &path, files);
        } else {
            let rel = path
                .strip_prefix(root)
                .expect("inside root")
                .to_string_lossy()
                .into_owned();
            files.insert(
                rel,
                (std::fs::read(&path).expect("read"), meta.mode() & 0o7777),
            );
        }
    }
}

/// `(path, contents, mode)` triples as [`Pod::files`] gives them.
pub fn expect_files(entries: &[(&str, &[u8], u32)]) -> BTreeMap<String, (Vec<u8>, u32)> {
    entries
        .iter()
        .map(|(p, c, m)| ((*p).to_owned(), (c.to_vec(), *m)))
        .collect()
}
