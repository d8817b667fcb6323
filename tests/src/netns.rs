//! Network namespaces of a test's own making (`ip netns add`), removed when dropped, and what a
//! test does in them: run a program there, connect there, join two with a veth pair, install
//! iptables rules. The pod runner puts a pod's containers in one
//! ([`crate::pod_runner::Network::Namespace`]).
//!
//! Only the namespaces made here are touched, and only by name; addresses given to them stay
//! inside them (the tests use the documentation range 192.0.2.0/24). Making them needs root.
//! A namespace left behind by a test process that was killed (no drop ran) is removed by the next
//! test that makes one: the name carries the process id.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// What every namespace made here is named after: `PREFIX-PID-N`.
const PREFIX: &str = "secrets-injector-test";

/// Where `ip netns` keeps the namespaces it names.
const NETNS_DIR: &str = "/run/netns";

/// The bound of one `ip` or `iptables` call.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A program from a Debian package the tests install with `scripts/system-tools.sh`: its path,
/// or a failure that names the package and the script (never a silent pass).
fn system_program(name: &str, package: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed (Debian package {package}): the service-mesh test makes \
                 network namespaces and a mesh's redirect with it. Run ./scripts/system-tools.sh \
                 as root (./scripts/test.sh does), or apt-get install -y {package}"
            )
        })
}

/// `ip`, from iproute2.
pub fn ip_program() -> PathBuf {
    system_program("ip", "iproute2")
}

/// `iptables-restore`, from iptables.
pub fn iptables_restore_program() -> PathBuf {
    system_program("iptables-restore", "iptables")
}

/// `iptables-save`, from iptables.
pub fn iptables_save_program() -> PathBuf {
    system_program("iptables-save", "iptables")
}

/// Runs `program args` to its end within [`CALL_TIMEOUT`], with `input` on stdin; panics with
/// its output when it fails.
fn call(program: &Path, args: &[&str], input: Option<&str>) -> Output {
    let what = format!("{} {}", program.display(), args.join(" "));
    let mut child = Command::new("timeout")
        .arg("--kill-after=10")
        .arg(CALL_TIMEOUT.as_secs().to_string())
        .arg(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start timeout: {e}"));
    if let Some(input) = input {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("{what}: writing its input: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}){}: {}",
        out.status,
        if is_root() {
            ""
        } else {
            " (network namespaces need root)"
        },
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A network namespace named `/run/netns/NAME`, with its loopback up; deleted on drop, with
/// every interface in it (a veth's peer goes with it). Processes still inside keep it alive
/// unnamed: stop them first.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Makes a new namespace (and first removes those a killed test process left).
    pub fn create() -> NetNs {
        remove_stale();
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{PREFIX}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        call(&ip_program(), &["netns", "add", &name], None);
        let netns = NetNs { name };
        netns.ip(&["link", "set", "lo", "up"]);
        netns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/NAME`, which podman joins with `--network ns:PATH`.
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    /// `ip -n NAME ARGS`, to its end; panics when it fails.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&call(&ip_program(), &all, None).stdout).into_owned()
    }

    /// A command that runs `program` inside the namespace (`ip netns exec NAME PROGRAM`; `ip`
    /// execs it, so the child's pid is the program's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(ip_program());
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Loads iptables rules in `iptables-restore` format into the namespace, leaving the rest of
    /// its tables as they are (`--noflush`).
    pub fn iptables_restore(&self, rules: &str) {
        call(
            &ip_program(),
            &[
                "netns",
                "exec",
                &self.name,
                &iptables_restore_program().to_string_lossy(),
                "--noflush",
            ],
            Some(rules),
        );
    }

    /// `iptables-save -t TABLE` in the namespace, with packet counters: what the rules matched.
    pub fn iptables_save(&self, table: &str) -> String {
        let out = call(
            &ip_program(),
            &[
                "netns",
                "exec",
                &self.name,
                &iptables_save_program().to_string_lossy(),
                "--counters",
                "-t",
                table,
            ],
            None,
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A TCP connection made from inside the namespace (the socket stays in it, whichever thread
    /// uses it after).
    pub fn connect(&self, addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
        connect_in(&self.path(), addr, timeout)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new(ip_program())
            .args(["netns", "delete", &self.name])
            .stdin(Stdio::null())
            .output();
    }
}

/// Joins two namespaces with a veth pair: `a_name` in `a` with address `a_addr`, `b_name` in `b`
/// with `b_addr` (CIDR, e.g. `192.0.2.1/24`), both up. The pair is made inside the namespaces,
/// never in the host's.
pub fn veth(a: &NetNs, a_name: &str, a_addr: &str, b: &NetNs, b_name: &str, b_addr: &str) {
    a.ip(&[
        "link",
        "add",
        a_name,
        "type",
        "veth",
        "peer",
        "name",
        b_name,
        "netns",
        b.name(),
    ]);
    a.ip(&["address", "add", a_addr, "dev", a_name]);
    b.ip(&["address", "add", b_addr, "dev", b_name]);
    a.ip(&["link", "set", a_name, "up"]);
    b.ip(&["link", "set", b_name, "up"]);
}

/// A TCP connection from inside the network namespace at `path`: a thread of its own joins the
/// namespace (setns affects only the calling thread), connects and ends.
pub fn connect_in(path: &Path, addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let file = std::fs::File::open(path)?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                rustix::thread::move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&file),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )?;
                TcpStream::connect_timeout(&addr, timeout)
            })
            .join()
            .expect("the connecting thread")
    })
}

/// Deletes the namespaces of this module's naming whose process is gone.
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = Command::new(ip_program())
                .args(["netns", "delete", &name])
                .stdin(Stdio::null())
                .output();
        }
    }
}
