//! A real moto server (SSM, Secrets Manager and STS on one port) for one test, killed on drop.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::netns::{self, NetNs};
use crate::tools::venv_program;

/// moto's port inside a namespace of the test's own, where nothing else listens.
const PORT_IN_NETNS: u16 = 5000;

/// How long moto may take to answer after it starts (it imports a lot of Python).
const STARTUP: Duration = Duration::from_secs(60);

/// A running `moto_server` on a free port of 127.0.0.1, or on an address of a network namespace.
pub struct Moto {
    child: Child,
    addr: SocketAddr,
    env: Vec<(String, String)>,
    /// The namespace it runs in (`/run/netns/NAME`), when not the host's.
    netns: Option<PathBuf>,
}

impl Moto {
    /// Starts moto and waits until it answers HTTP. Panics with moto's own output when it
    /// does not come up.
    pub fn start() -> Moto {
        Self::start_with_env(&[])
    }

    /// Starts moto enforcing IAM policies after its first `free_calls` calls (setup calls, and
    /// each unsigned `AssumeRoleWithWebIdentity`, count too; a call past the count without valid
    /// credentials is refused). For SSM and Secrets Manager moto checks the action only: every
    /// call is matched against resource `*`.
    pub fn start_enforcing_iam(free_calls: usize) -> Moto {
        Self::start_with_env(&[("INITIAL_NO_AUTH_ACTION_COUNT", &free_calls.to_string())])
    }

    /// Starts moto with these extra environment variables.
    pub fn start_with_env(env: &[(&str, &str)]) -> Moto {
        let program = venv_program("moto_server");
        let mut last_error = String::new();
        // The free port is found by binding port 0 and releasing it, so another process can
        // take it in between: try a few ports.
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        for _ in 0..5 {
            let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            match Self::spawn(&program, addr, &env, None) {
                Ok(moto) => return moto,
                Err(e) => last_error = e,
            }
        }
        panic!("moto_server did not start: {last_error}");
    }

    /// Starts moto inside the network namespace `netns`, listening on `ip` (an address of one
    /// of its interfaces), port 5000; only that namespace can reach it.
    pub fn start_in(netns: &NetNs, ip: IpAddr) -> Moto {
        let program = venv_program("moto_server");
        let addr = SocketAddr::new(ip, PORT_IN_NETNS);
        Self::spawn(&program, addr, &[], Some(netns))
            .unwrap_or_else(|e| panic!("moto_server did not start in {}: {e}", netns.name()))
    }

    fn spawn(
        program: &Path,
        addr: SocketAddr,
        env: &[(String, String)],
        netns: Option<&NetNs>,
    ) -> Result<Moto, String> {
        static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let log = std::env::temp_dir().join(format!(
            "moto-{}-{}-{}.log",
            addr.port(),
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        let log_file = std::fs::File::create(&log).expect("create the moto log file");
        let mut command = match netns {
            Some(netns) => netns.command(program),
            None => Command::new(program),
        };
        let child = command
            .args(["-H", &addr.ip().to_string(), "-p", &addr.port().to_string()])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone the moto log file"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let mut moto = Moto {
            child,
            addr,
            env: env.to_vec(),
            netns: netns.map(NetNs::path),
        };
        let ready = moto.wait_until_ready();
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        ready
            .map(|()| moto)
            .map_err(|e| format!("{e}\nmoto output:\n{output}"))
    }

    /// Stops moto: its port refuses connections until [`Moto::restart`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts moto again on the same port, empty (moto keeps nothing across a restart).
    pub fn restart(&mut self) {
        self.stop();
        assert!(
            self.netns.is_none(),
            "restart is for a moto on the host's loopback"
        );
        let program = venv_program("moto_server");
        *self = Self::spawn(&program, self.addr, &self.env, None)
            .unwrap_or_else(|e| panic!("moto_server did not start again: {e}"));
    }

    fn wait_until_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        while started.elapsed() < STARTUP {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("moto_server exited with {status}"));
            }
            if self.answers() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "moto_server did not answer on {} within {STARTUP:?}",
            self.addr
        ))
    }

    fn answers(&self) -> bool {
        let timeout = Duration::from_millis(500);
        let connected = match &self.netns {
            Some(path) => netns::connect_in(path, self.addr, timeout),
            None => TcpStream::connect_timeout(&self.addr, timeout),
        };
        let Ok(mut stream) = connected else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request = format!(
            "GET /moto-api/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
    }

    /// `http://ADDRESS:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port of 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port on 127.0.0.1")
        .port()
}
