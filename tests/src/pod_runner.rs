//! Runs a pod's containers with podman, as a node's kubelet and container runtime would: the init
//! containers one after the other (stopping at the first that fails, as the pod would wait there),
//! then the app containers. An init container with `restartPolicy: Always` (a native sidecar) is
//! started in the background once the init containers before it finished, counts as started once
//! it runs and its `startupProbe` (when it has one) succeeded, keeps running while the rest of the
//! pod runs, and is stopped (SIGTERM, then SIGKILL after the pod's
//! `terminationGracePeriodSeconds`, here 10 s when unset) after the app containers ended, the
//! last started first, as the kubelet does. The containers share the host's network, or a network
//! namespace of the test's own ([`Network`]). Each runs from the image its spec names (built
//! locally: nothing is pulled) with:
//!
//! | pod spec | podman |
//! | --- | --- |
//! | `command`, `args` | `--entrypoint` (JSON, which also drops the image's `CMD`, as Kubernetes does), then the args |
//! | `env` (`value`; `valueFrom.fieldRef` of `metadata.name`/`metadata.namespace`) | `--env NAME=VALUE` |
//! | `runAsUser`, `runAsGroup` (container, else pod) | `--user UID[:GID]` |
//! | `fsGroup`, `supplementalGroups` | `--group-add` |
//! | `runAsNonRoot` | refused before the start, with the kubelet's message, when the user is root |
//! | `readOnlyRootFilesystem` | `--read-only --read-only-tmpfs=false` (podman would add tmpfs at /tmp, /run; Kubernetes does not) |
//! | `capabilities.drop` / `add` | `--cap-drop` / `--cap-add` |
//! | `allowPrivilegeEscalation: false` | `--security-opt no-new-privileges` |
//! | `seccompProfile` `RuntimeDefault` / `Unconfined` | podman's default profile / `--security-opt seccomp=unconfined` |
//! | `privileged` | `--privileged` |
//! | `resources.limits` `memory`, `cpu` | `--memory`, `--cpus` |
//! | `workingDir` | `--workdir` |
//! | `volumeMounts` (`subPath`, `readOnly`) | `--volume HOST:PATH[:ro]` |
//! | `emptyDir` | one host directory shared by the containers: mode 0777, with `fsGroup` its group and setgid, as the kubelet makes it |
//! | projected `serviceAccountToken` | a file holding the token at the projection's path |
//! | `hostPath` | that host path |
//! | `terminationMessagePath` | a host file mounted there (0666), read back after the run |
//! | `terminationMessagePolicy: FallbackToLogsOnError` | [`ContainerRun::termination_message`] falls back to the log's tail |
//! | `startupProbe.tcpSocket` of a native sidecar (`port`, a number or the name of one of its `ports`; `initialDelaySeconds`, `periodSeconds`, `timeoutSeconds`, `failureThreshold`, with Kubernetes' defaults) | a TCP connect to 127.0.0.1:PORT in the pod's network (the kubelet connects to the pod's IP from the node), until it succeeds; after `failureThreshold` failures the sidecar is stopped and the pod ends there (the kubelet would restart the sidecar) |
//! | `terminationGracePeriodSeconds` | `podman stop --time` of the sidecars (10 when unset; Kubernetes' default is 30) |
//! | the pod's network | [`Network`]: `--network host`, or `--network ns:/run/netns/NAME` for every container |
//! | `shareProcessNamespace: true` | a stand-in for the pod's pause container (busybox `sleep`, as user 65535, PID 1 of the namespace) started first; every container joins its PID namespace with `--pid container:NAME`, as the kubelet joins them to the sandbox's (podman's `--pod` would need its own pause image, which cannot be pulled here) |
//!
//! Not mapped, and why:
//! - the pod network: by default every container gets `--network host`, so it reaches the AWS
//!   emulator on the host's loopback (a pod's own network namespace with a CNI setup is more than
//!   this machine has); [`Network::Namespace`] gives them a namespace of the test's own instead,
//!   made and wired by the test (tests/src/netns.rs);
//! - `emptyDir.medium: Memory` and `sizeLimit`: the directory is on disk, unbounded (a tmpfs
//!   cannot be shared between containers without mounting it on the host for each test);
//! - app containers run one after the other, each to its end, not side by side: the tests give
//!   them commands that look at the volume and exit;
//! - restarts (`restartPolicy`, back-off): a failed init container ends the run, and the result
//!   says so; a sidecar that ends before it is stopped is not started again, and its run (exit
//!   code, output) says so;
//! - `resources.requests` (scheduling only), probes other than a native sidecar's `tcpSocket`
//!   startup probe, ports (but a probe's named port), lifecycle hooks;
//! - `seccompProfile: Localhost`, AppArmor, SELinux options, `procMount`: podman takes them but
//!   the profiles named live on the node; a spec that asks for them panics;
//! - `runAsGroup` without `runAsUser` in a non-numeric image user (podman needs `--user U:G`);
//! - podman adds `HOSTNAME`, `HOME`, `container=podman` and, when the image has none, `PATH`
//!   to the environment (containerd adds `HOSTNAME` and `PATH`); its default capability set is
//!   a little smaller than containerd's (no `NET_RAW`, `MKNOD`, `AUDIT_WRITE`), which changes
//!   nothing for containers that drop `ALL`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::netns;
use crate::podman;

/// The init container's name, which is also the name of its volume.
pub const INJECTOR: &str = "secrets-injector";

/// The bound of one container's run.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// How long a sidecar is given to end after SIGTERM when the pod does not say.
const DEFAULT_GRACE_SECONDS: u64 = 10;
/// The largest grace period the runner waits (the bound of a run must hold).
const MAX_GRACE_SECONDS: u64 = 60;

/// The network a pod's containers share.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Network {
    /// The host's (`--network host`).
    #[default]
    Host,
    /// The network namespace at `/run/netns/NAME` (`ip netns add NAME`; [`netns::NetNs`]).
    Namespace(String),
}

impl Network {
    /// The value of podman's `--network`.
    fn podman_value(&self) -> String {
        match self {
            Network::Host => "host".to_owned(),
            Network::Namespace(name) => format!("ns:/run/netns/{name}"),
        }
    }

    /// A TCP connection to `addr` made from this network.
    fn connect(&self, addr: std::net::SocketAddr, timeout: Duration) -> std::io::Result<()> {
        match self {
            Network::Host => std::net::TcpStream::connect_timeout(&addr, timeout).map(drop),
            Network::Namespace(name) => {
                netns::connect_in(&Path::new("/run/netns").join(name), addr, timeout).map(drop)
            }
        }
    }
}

/// What the kubelet keeps of a failed container's log for the termination message.
const FALLBACK_LINES: usize = 80;
const FALLBACK_BYTES: usize = 2048;

/// One file of a volume as the app container sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileView {
    pub content: Vec<u8>,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// One container's run.
#[derive(Debug)]
pub struct ContainerRun {
    pub name: String,
    /// The container's exit code; 125 to 127 are podman's own (it could not start it), -1 a
    /// container the kubelet would have refused to start (`runAsNonRoot`).
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The termination-message file as the container left it.
    pub termination_log: String,
    /// What `kubectl describe pod` shows: the file, else (`FallbackToLogsOnError`, failed) the
    /// log's tail; for a sidecar whose startup probe failed, that failure.
    pub termination_message: String,
    /// How many times its startup probe was tried (a native sidecar with one; else 0).
    pub startup_probes: u32,
    /// When the runner ran it, for timing a pod's start (`None`: it was refused, never run).
    pub times: Option<RunTimes>,
}

/// When the runner started a container's `podman run` and when that returned (wall clock), and
/// the name podman knew the container by: podman's events of that name (`podman events
/// --filter container=NAME`) say when its process started and ended.
#[derive(Debug, Clone)]
pub struct RunTimes {
    pub run_name: String,
    pub invoked: SystemTime,
    pub returned: SystemTime,
}

/// What a run of the pod produced.
#[derive(Debug)]
pub struct PodRun {
    /// The containers that ran, in order.
    pub containers: Vec<ContainerRun>,
    /// Every regular file of the injector's volume after the run, by its path in the volume.
    pub files: BTreeMap<String, FileView>,
    /// Every entry of that volume (files and directories), to prove nothing else is left.
    pub entries: Vec<String>,
}

impl PodRun {
    /// The run of the container `name`; panics when it did not run.
    pub fn container(&self, name: &str) -> &ContainerRun {
        self.containers
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| {
                panic!(
                    "container {name} did not run; the runs: {:#?}",
                    self.containers
                )
            })
    }

    /// The run of the injector's init container.
    pub fn injector(&self) -> &ContainerRun {
        self.container(INJECTOR)
    }

    pub fn file(&self, path: &str) -> &FileView {
        self.files.get(path).unwrap_or_else(|| {
            panic!(
                "no file {path} in the volume; files: {:?}; runs: {:#?}",
                self.files.keys().collect::<Vec<_>>(),
                self.containers
            )
        })
    }

    pub fn text(&self, path: &str) -> String {
        String::from_utf8(self.file(path).content.clone()).expect("UTF-8 file")
    }

    /// Everything every container printed or left for the user, to search for leaked values.
    pub fn all_output(&self) -> String {
        self.containers
            .iter()
            .map(|c| format!("{}\n{}\n{}\n", c.stdout, c.stderr, c.termination_message))
            .collect()
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
            if let Some(path) = volume["hostPath"]["path"].as_str() {
                dirs.insert(name.to_string(), PathBuf::from(path));
                continue;
            }
            let dir = temp.path().join(name);
            fs::create_dir_all(&dir).expect("volume dir");
            if volume.get("emptyDir").is_some() {
                // The kubelet makes emptyDir volumes world-writable; with fsGroup it hands the
                // group to the pod and sets the setgid bit so new files inherit it.
                let mut mode = 0o777;
                if let Some(group) = pod["spec"]["securityContext"]["fsGroup"].as_u64() {
                    std::os::unix::fs::chown(&dir, None, Some(group as u32)).expect("chown");
                    mode |= 0o2000;
                }
                fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).expect("chmod");
            } else {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod");
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

/// Runs the pod on the host's network: its init containers in order (sidecars started in the
/// background), then, when they all succeeded, its app containers; then stops the sidecars and
/// reads back the injector's volume (when the pod has one).
pub fn run_pod(pod: &Value, volumes: &Volumes) -> PodRun {
    run_pod_on(pod, volumes, &Network::Host)
}

/// [`run_pod`] with every container in `network`.
pub fn run_pod_on(pod: &Value, volumes: &Volumes, network: &Network) -> PodRun {
    let sandbox = Sandbox::start(pod, network);
    let node = Node {
        volumes,
        pid: sandbox.as_ref().map(|sandbox| sandbox.name.as_str()),
        network,
    };
    let mut containers = Vec::new();
    let mut sidecars = Vec::new();
    let inits = pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten();
    let mut failed = false;
    for spec in inits {
        if spec["restartPolicy"] == "Always" {
            match Sidecar::start(pod, spec, &node) {
                Ok(sidecar) => sidecars.push(sidecar),
                Err(run) => {
                    containers.push(*run);
                    failed = true;
                    break;
                }
            }
            continue;
        }
        let run = run_kept(pod, spec, &node);
        failed = run.exit_code != 0;
        containers.push(run);
        if failed {
            break;
        }
    }
    if !failed {
        for spec in pod["spec"]["containers"].as_array().into_iter().flatten() {
            containers.push(run_kept(pod, spec, &node));
        }
    }
    let ran: Vec<String> = containers
        .iter()
        .filter_map(|c| c.times.as_ref().map(|t| t.run_name.clone()))
        .collect();
    containers.extend(sidecars.into_iter().rev().map(Sidecar::stop));
    for name in &ran {
        podman::remove_container(name);
    }
    drop(sandbox);
    let (files, entries) = match volumes.dirs.get(INJECTOR) {
        Some(dir) => read_volume(dir),
        None => (BTreeMap::new(), Vec::new()),
    };
    PodRun {
        containers,
        files,
        entries,
    }
}

/// Where a pod's containers run: its volumes, the PID namespace they join (the pause
/// container's, when they share one) and their network.
struct Node<'a> {
    volumes: &'a Volumes,
    pid: Option<&'a str>,
    network: &'a Network,
}

/// The stand-in for the pod's pause container when its containers share one process namespace:
/// PID 1 of that namespace, removed when dropped.
struct Sandbox {
    name: String,
}

impl Sandbox {
    fn start(pod: &Value, network: &Network) -> Option<Self> {
        if pod["spec"]["shareProcessNamespace"] != true {
            return None;
        }
        let pod_name = pod["metadata"]["name"].as_str().unwrap_or("pod");
        let name = unique_name(pod_name, "pause");
        let mut args = podman::run_args_on(&name, &network.podman_value());
        args.extend(
            [
                "--detach",
                "--read-only",
                "--user",
                "65535:65535",
                "--cap-drop",
                "ALL",
                "--entrypoint",
                r#"["/bin/busybox","sleep","2147483647"]"#,
                podman::app_image(),
            ]
            .map(str::to_string),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = podman::output(
            &mut podman::podman(RUN_TIMEOUT, &args),
            "podman run of the pod's pause container",
        );
        assert!(
            out.status.success(),
            "podman run of the pause container: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Sandbox { name })
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        podman::remove_container(&self.name);
    }
}

/// A native sidecar running in the background.
struct Sidecar {
    prepared: Prepared,
    child: std::process::Child,
    /// When its `podman run` was started.
    invoked: SystemTime,
    /// SIGTERM to SIGKILL, in seconds.
    grace: u64,
    /// Startup probes tried.
    probes: u32,
}

/// How many times a starting sidecar is looked at before the runner gives up on it.
const START_POLLS: u32 = 1200;

impl Sidecar {
    /// Starts the sidecar and waits until it runs and its startup probe succeeded (`Err`: it
    /// could not start, ended first, or its probe failed).
    fn start(pod: &Value, spec: &Value, node: &Node<'_>) -> Result<Self, Box<ContainerRun>> {
        let prepared = prepare(pod, spec, node)?;
        let output = |name: &str| {
            fs::File::create(prepared.work.path().join(name)).expect("sidecar output file")
        };
        let args: Vec<&str> = prepared.args.iter().map(String::as_str).collect();
        let invoked = SystemTime::now();
        let child = podman::podman(RUN_TIMEOUT, &args)
            .stdout(output("stdout"))
            .stderr(output("stderr"))
            .spawn()
            .unwrap_or_else(|e| panic!("podman run of sidecar {}: {e}", prepared.container));
        let grace = pod["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .unwrap_or(DEFAULT_GRACE_SECONDS)
            .min(MAX_GRACE_SECONDS);
        let mut sidecar = Sidecar {
            prepared,
            child,
            invoked,
            grace,
            probes: 0,
        };
        for _ in 0..START_POLLS {
            if podman::is_running(&sidecar.prepared.run_name) {
                return match StartupProbe::of(spec) {
                    None => Ok(sidecar),
                    Some(probe) => sidecar.wait_until_started(&probe, node.network),
                };
            }
            if sidecar.child.try_wait().expect("podman run").is_some() {
                return Err(Box::new(sidecar.stop()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let name = sidecar.prepared.container.clone();
        let run = sidecar.stop();
        panic!("sidecar {name} was not running after {START_POLLS} looks: {run:#?}");
    }

    /// Probes the running sidecar as the kubelet does until the probe succeeds (`Ok`), the
    /// probe failed `failureThreshold` times in a row, or the sidecar ended (`Err`, its run).
    fn wait_until_started(
        mut self,
        probe: &StartupProbe,
        network: &Network,
    ) -> Result<Self, Box<ContainerRun>> {
        std::thread::sleep(probe.initial_delay);
        let started = std::time::Instant::now();
        let mut last_error = String::new();
        for attempt in 1..=probe.failure_threshold {
            // However the probe is set, a run stays bounded.
            if started.elapsed() > RUN_TIMEOUT {
                break;
            }
            if self.child.try_wait().expect("podman run").is_some() {
                return Err(Box::new(self.stop()));
            }
            self.probes += 1;
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], probe.port));
            match network.connect(addr, probe.timeout) {
                Ok(()) => return Ok(self),
                Err(e) => last_error = e.to_string(),
            }
            if attempt < probe.failure_threshold {
                std::thread::sleep(probe.period);
            }
        }
        let mut run = self.stop();
        if run.termination_message.is_empty() {
            run.termination_message = format!(
                "Startup probe failed: dial tcp 127.0.0.1:{}: {last_error} ({} times)",
                probe.port, probe.failure_threshold
            );
        }
        Err(Box::new(run))
    }

    /// Stops the sidecar as the kubelet does at the pod's end, and collects its run.
    fn stop(mut self) -> ContainerRun {
        let name = self.prepared.run_name.clone();
        if self.child.try_wait().expect("podman run").is_none() {
            let grace = self.grace.to_string();
            let _ = podman::podman(RUN_TIMEOUT, &["stop", "--time", &grace, &name]).output();
        }
        let status = self.child.wait().expect("podman run of a sidecar");
        podman::remove_container(&name);
        let read = |file: &str| fs::read(self.prepared.work.path().join(file)).unwrap_or_default();
        let (stdout, stderr) = (read("stdout"), read("stderr"));
        let mut run =
            self.prepared
                .finish(&stdout, &stderr, status.code().unwrap_or(-1), self.invoked);
        run.startup_probes = self.probes;
        run
    }
}

/// A native sidecar's `startupProbe` with a `tcpSocket` action, with Kubernetes' defaults.
#[derive(Debug, PartialEq, Eq)]
struct StartupProbe {
    port: u16,
    initial_delay: Duration,
    period: Duration,
    timeout: Duration,
    failure_threshold: u32,
}

impl StartupProbe {
    /// The container's startup probe; `None` when it has none. Another kind of probe (exec,
    /// httpGet, grpc) is not mapped and panics.
    fn of(spec: &Value) -> Option<StartupProbe> {
        let probe = spec.get("startupProbe")?;
        let name = spec["name"].as_str().unwrap_or("?");
        let port = &probe["tcpSocket"]["port"];
        let port = match port {
            Value::Number(n) => n.as_u64(),
            Value::String(named) => spec["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["name"] == named.as_str())
                .and_then(|p| p["containerPort"].as_u64()),
            _ => {
                panic!("startupProbe of {name}: only tcpSocket probes are mapped by the pod runner")
            }
        }
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or_else(|| panic!("startupProbe of {name}: port {port} is not a port"));
        let seconds = |key: &str, default: u64| {
            Duration::from_secs(
                probe[key]
                    .as_u64()
                    .unwrap_or(default)
                    .min(RUN_TIMEOUT.as_secs()),
            )
        };
        Some(StartupProbe {
            port,
            initial_delay: seconds("initialDelaySeconds", 0),
            period: seconds("periodSeconds", 10),
            timeout: seconds("timeoutSeconds", 1),
            failure_threshold: probe["failureThreshold"]
                .as_u64()
                .unwrap_or(3)
                .clamp(1, u64::from(START_POLLS)) as u32,
        })
    }
}

/// Runs one container of `pod` to its end, on the host's network.
pub fn run_container(pod: &Value, spec: &Value, volumes: &Volumes) -> ContainerRun {
    let node = Node {
        volumes,
        pid: None,
        network: &Network::Host,
    };
    run_in(pod, spec, &node)
}

/// Runs one container of `pod` to its end on `node`.
fn run_in(pod: &Value, spec: &Value, node: &Node<'_>) -> ContainerRun {
    let run = run_kept(pod, spec, node);
    if let Some(times) = &run.times {
        podman::remove_container(&times.run_name);
    }
    run
}

/// [`run_in`], leaving the container for the caller to remove: `podman run --rm` removes it when
/// it ends, so a pod removes what is left only after its last container, and the next container
/// starts right after this one ended, as on a node.
fn run_kept(pod: &Value, spec: &Value, node: &Node<'_>) -> ContainerRun {
    let prepared = match prepare(pod, spec, node) {
        Ok(prepared) => prepared,
        Err(refused) => return *refused,
    };
    let args: Vec<&str> = prepared.args.iter().map(String::as_str).collect();
    let invoked = SystemTime::now();
    let output = podman::output(
        &mut podman::podman(RUN_TIMEOUT, &args),
        &format!(
            "podman run of container {} ({})",
            prepared.container, prepared.image
        ),
    );
    prepared.finish(
        &output.stdout,
        &output.stderr,
        output.status.code().unwrap_or(-1),
        invoked,
    )
}

/// A name for a podman container no other run of this process or another uses.
fn unique_name(pod_name: &str, container: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{pod_name}-{container}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A container ready to run: its `podman run` arguments and where its results go.
struct Prepared {
    container: String,
    image: String,
    run_name: String,
    args: Vec<String>,
    fallback: bool,
    /// Holds the termination-message file (and a sidecar's output).
    work: tempfile::TempDir,
}

impl Prepared {
    fn termination_log(&self) -> PathBuf {
        self.work.path().join("termination-log")
    }

    fn finish(
        self,
        stdout: &[u8],
        stderr: &[u8],
        exit_code: i32,
        invoked: SystemTime,
    ) -> ContainerRun {
        let times = Some(RunTimes {
            run_name: self.run_name.clone(),
            invoked,
            returned: SystemTime::now(),
        });
        let stdout = String::from_utf8_lossy(stdout).into_owned();
        let stderr = String::from_utf8_lossy(stderr).into_owned();
        let termination_log = fs::read_to_string(self.termination_log()).unwrap_or_default();
        let termination_message = if termination_log.is_empty() && self.fallback && exit_code != 0 {
            log_tail(&format!("{stdout}{stderr}"))
        } else {
            termination_log.clone()
        };
        ContainerRun {
            name: self.container,
            exit_code,
            stdout,
            stderr,
            termination_log,
            termination_message,
            startup_probes: 0,
            times,
        }
    }
}

/// The `podman run` arguments for one container of `pod`, or (`Err`) the run of a container the
/// kubelet would refuse to start.
fn prepare(pod: &Value, spec: &Value, node: &Node<'_>) -> Result<Prepared, Box<ContainerRun>> {
    let container = spec["name"].as_str().expect("container name").to_string();
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or("pod");
    let image = spec["image"].as_str().expect("container image");
    let run_name = unique_name(pod_name, &container);
    let work = tempfile::tempdir().expect("temp dir");
    fs::set_permissions(work.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
    let termination_log = work.path().join("termination-log");
    fs::write(&termination_log, b"").expect("termination log");
    fs::set_permissions(&termination_log, fs::Permissions::from_mode(0o666)).expect("chmod");

    let mut args = podman::run_args_on(&run_name, &node.network.podman_value());
    flag(&mut args, "--hostname", pod_name.to_string());
    if let Some(pid) = node.pid {
        flag(&mut args, "--pid", format!("container:{pid}"));
    }
    let security = &spec["securityContext"];
    let pod_security = &pod["spec"]["securityContext"];
    let id = |key: &str| {
        security[key]
            .as_u64()
            .or_else(|| pod_security[key].as_u64())
    };
    let (uid, gid) = (id("runAsUser"), id("runAsGroup"));
    let user = match (uid, gid) {
        (Some(u), Some(g)) => Some(format!("{u}:{g}")),
        (Some(u), None) => Some(u.to_string()),
        (None, Some(g)) => {
            let image_user = podman::image_user(image);
            let image_uid = image_user.split(':').next().unwrap_or("");
            assert!(
                image_uid.parse::<u32>().is_ok(),
                "runAsGroup without runAsUser needs a numeric image user; {image} has {image_user:?}"
            );
            Some(format!("{image_uid}:{g}"))
        }
        (None, None) => None,
    };
    let non_root = security["runAsNonRoot"]
        .as_bool()
        .or_else(|| pod_security["runAsNonRoot"].as_bool())
        == Some(true);
    if non_root {
        let effective = match uid {
            Some(u) => u.to_string(),
            None => podman::image_user(image),
        };
        let effective = effective.split(':').next().unwrap_or("").to_string();
        if effective.is_empty() || effective == "0" || effective == "root" {
            let message = "container has runAsNonRoot and image will run as root".to_string();
            return Err(Box::new(ContainerRun {
                name: container,
                exit_code: -1,
                stdout: String::new(),
                stderr: message.clone(),
                termination_log: String::new(),
                termination_message: message,
                startup_probes: 0,
                times: None,
            }));
        }
        assert!(
            effective.parse::<u32>().is_ok(),
            "container has runAsNonRoot and image has non-numeric user ({effective}), \
             cannot verify user is non-root"
        );
    }
    if let Some(user) = user {
        flag(&mut args, "--user", user);
    }
    let groups = pod_security["supplementalGroups"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(pod_security.get("fsGroup"));
    for group in groups {
        flag(
            &mut args,
            "--group-add",
            group.as_u64().expect("numeric group").to_string(),
        );
    }
    if security["readOnlyRootFilesystem"].as_bool() == Some(true) {
        args.push("--read-only".into());
        args.push("--read-only-tmpfs=false".into());
    }
    for cap in security["capabilities"]["drop"]
        .as_array()
        .into_iter()
        .flatten()
    {
        flag(
            &mut args,
            "--cap-drop",
            cap.as_str().expect("capability").to_string(),
        );
    }
    for cap in security["capabilities"]["add"]
        .as_array()
        .into_iter()
        .flatten()
    {
        flag(
            &mut args,
            "--cap-add",
            cap.as_str().expect("capability").to_string(),
        );
    }
    if security["allowPrivilegeEscalation"].as_bool() == Some(false) {
        flag(&mut args, "--security-opt", "no-new-privileges".into());
    }
    if security["privileged"].as_bool() == Some(true) {
        args.push("--privileged".into());
    }
    let seccomp = security["seccompProfile"]["type"]
        .as_str()
        .or_else(|| pod_security["seccompProfile"]["type"].as_str());
    match seccomp {
        None | Some("RuntimeDefault") => {}
        Some("Unconfined") => flag(&mut args, "--security-opt", "seccomp=unconfined".into()),
        Some(other) => panic!("seccompProfile {other} is not mapped (the profile lives on a node)"),
    }
    for key in ["appArmorProfile", "seLinuxOptions", "procMount"] {
        assert!(
            security.get(key).is_none(),
            "securityContext.{key} is not mapped by the pod runner"
        );
    }
    let limits = &spec["resources"]["limits"];
    if let Some(memory) = limits["memory"].as_str() {
        flag(&mut args, "--memory", bytes(memory).to_string());
    }
    if let Some(cpu) = limits["cpu"].as_str() {
        flag(&mut args, "--cpus", cpus(cpu));
    }
    if let Some(dir) = spec["workingDir"].as_str() {
        flag(&mut args, "--workdir", dir.to_string());
    }
    for var in spec["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().expect("env name");
        let value = match var["value"].as_str() {
            Some(value) => value.to_string(),
            None => match var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                Some("metadata.name") => pod_name.to_string(),
                Some("metadata.namespace") => pod["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string(),
                _ => panic!(
                    "env {name} of {container}: the runner resolves `value` and the fieldRefs \
                     metadata.name and metadata.namespace only"
                ),
            },
        };
        flag(&mut args, "--env", format!("{name}={value}"));
    }
    for mount in spec["volumeMounts"].as_array().into_iter().flatten() {
        let name = mount["name"].as_str().expect("mount name");
        let path = mount["mountPath"].as_str().expect("mountPath");
        let mut host = node.volumes.dir(name).to_path_buf();
        if let Some(sub) = mount["subPath"].as_str() {
            host = host.join(sub);
        }
        let mut volume = format!("{}:{path}", host.display());
        if mount["readOnly"].as_bool() == Some(true) {
            volume.push_str(":ro");
        }
        flag(&mut args, "--volume", volume);
    }
    let message_path = spec["terminationMessagePath"]
        .as_str()
        .unwrap_or("/dev/termination-log");
    flag(
        &mut args,
        "--volume",
        format!("{}:{message_path}", termination_log.display()),
    );
    let words = |key: &str| -> Vec<String> {
        spec[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| w.as_str().expect("string").to_string())
            .collect()
    };
    let command = words("command");
    if !command.is_empty() {
        flag(
            &mut args,
            "--entrypoint",
            serde_json::to_string(&command).expect("JSON"),
        );
    }
    args.push(image.to_string());
    args.extend(words("args"));

    Ok(Prepared {
        container,
        image: image.to_string(),
        run_name,
        args,
        fallback: spec["terminationMessagePolicy"] == "FallbackToLogsOnError",
        work,
    })
}

/// Adds `--name value`.
fn flag(args: &mut Vec<String>, name: &str, value: String) {
    args.push(name.to_string());
    args.push(value);
}

/// The last 80 lines of a log, at most 2048 bytes: what the kubelet takes.
fn log_tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let tail = lines[lines.len().saturating_sub(FALLBACK_LINES)..].join("\n");
    let mut start = tail.len().saturating_sub(FALLBACK_BYTES);
    while !tail.is_char_boundary(start) {
        start += 1;
    }
    tail[start..].to_string()
}

/// A Kubernetes memory quantity in bytes (`64Mi`, `1G`, `1048576`).
fn bytes(quantity: &str) -> u64 {
    let units: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    for (suffix, factor) in units {
        if let Some(number) = quantity.strip_suffix(suffix) {
            return number.parse::<u64>().expect("memory quantity") * factor;
        }
    }
    quantity.parse().expect("memory quantity")
}

/// A Kubernetes CPU quantity as podman's `--cpus` (`200m` is `0.2`).
fn cpus(quantity: &str) -> String {
    match quantity.strip_suffix('m') {
        Some(milli) => format!(
            "{:.3}",
            milli.parse::<f64>().expect("cpu quantity") / 1000.0
        ),
        None => quantity.to_string(),
    }
}

/// The volume as an app reads it: the generation `..data` links to (the volume's layout), or
/// the directory itself when nothing was written.
fn read_volume(volume: &Path) -> (BTreeMap<String, FileView>, Vec<String>) {
    let generation = fs::canonicalize(volume.join("..data")).ok();
    let dir = generation.as_deref().unwrap_or(volume);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(bytes("64Mi"), 64 << 20);
        assert_eq!(bytes("1G"), 1_000_000_000);
        assert_eq!(bytes("4096"), 4096);
        assert_eq!(cpus("200m"), "0.200");
        assert_eq!(cpus("2"), "2");
    }

    #[test]
    fn a_startup_probe_takes_kubernetes_defaults_and_named_ports() {
        let spec = serde_json::json!({
            "name": "proxy",
            "ports": [{"name": "outbound", "containerPort": 15001}],
            "startupProbe": {"tcpSocket": {"port": "outbound"}, "periodSeconds": 1}
        });
        assert_eq!(
            StartupProbe::of(&spec),
            Some(StartupProbe {
                port: 15001,
                initial_delay: Duration::ZERO,
                period: Duration::from_secs(1),
                timeout: Duration::from_secs(1),
                failure_threshold: 3,
            })
        );
        assert_eq!(StartupProbe::of(&serde_json::json!({"name": "app"})), None);
    }

    #[test]
    fn the_log_tail_keeps_the_last_lines_and_bytes() {
        let log: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let tail = log_tail(&log);
        assert!(tail.starts_with("line 20\n") && tail.ends_with("line 99"));
        let long = "x".repeat(5000);
        assert_eq!(log_tail(&long).len(), FALLBACK_BYTES);
    }
}
