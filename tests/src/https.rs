//! HTTPS for the webhook's tests: a small blocking HTTP/1.1 client over rustls (aws-lc-rs) that
//! trusts only the CAs it is given, can pin the TLS version, keeps one connection alive across
//! requests and shows the certificate the server presented; a raw ClientHello probe for the
//! protocol versions no rustls client can offer; and a launcher for `webhook serve` and
//! `webhook certs`.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ProtocolVersion, RootCertStore, StreamOwned};

/// The name the API server uses for the webhook's Service with `webhook certs`' defaults.
pub const SERVICE_NAME: &str = "secrets-injector.secrets-injector.svc";

/// The allocator's settings the webhook's Deployment (and chart) set, for tests that measure its
/// memory: arena memory committed only as it is used, and memory a review freed given back
/// after 10 ms rather than a second, so that the next review (on another thread) does not add
/// its memory to what the last one still holds.
pub const ALLOCATOR_ENV: [(&str, &str); 2] = [
    ("MIMALLOC_ARENA_EAGER_COMMIT", "0"),
    ("MIMALLOC_PURGE_DELAY", "10"),
];

/// A client for one server, trusting only the given CA certificates.
#[derive(Clone, Debug)]
pub struct Client {
    config: Arc<ClientConfig>,
    addr: SocketAddr,
    server_name: ServerName<'static>,
    timeout: Duration,
}

impl Client {
    /// Offers TLS 1.3 and 1.2.
    pub fn new(addr: SocketAddr, server_name: &str, ca_files: &[&Path]) -> Self {
        Self::with_versions(
            addr,
            server_name,
            ca_files,
            &[&rustls::version::TLS13, &rustls::version::TLS12],
        )
    }

    /// Offers exactly these TLS versions.
    pub fn with_versions(
        addr: SocketAddr,
        server_name: &str,
        ca_files: &[&Path],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Self {
        let mut roots = RootCertStore::empty();
        for file in ca_files {
            for cert in CertificateDer::pem_file_iter(file)
                .unwrap_or_else(|e| panic!("reading CA {}: {e}", file.display()))
            {
                let cert = cert.unwrap_or_else(|e| panic!("CA {}: {e}", file.display()));
                roots.add(cert).expect("CA certificate");
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Every connection makes a full handshake, so each one shows the certificate served now.
        config.resumption = rustls::client::Resumption::disabled();
        Self {
            config: Arc::new(config),
            addr,
            server_name: ServerName::try_from(server_name.to_owned()).expect("server name"),
            timeout: Duration::from_secs(30),
        }
    }

    /// Opens a connection and completes the TLS handshake.
    pub fn connect(&self) -> io::Result<Connection> {
        let mut socket = TcpStream::connect_timeout(&self.addr, self.timeout)?;
        socket.set_read_timeout(Some(self.timeout))?;
        socket.set_write_timeout(Some(self.timeout))?;
        socket.set_nodelay(true)?;
        let mut tls = ClientConnection::new(Arc::clone(&self.config), self.server_name.clone())
            .map_err(io::Error::other)?;
        while tls.is_handshaking() {
            tls.complete_io(&mut socket)?;
        }
        Ok(Connection {
            stream: StreamOwned::new(tls, socket),
            buffered: Vec::new(),
        })
    }

    /// `GET path` on a new connection.
    pub fn get(&self, path: &str) -> io::Result<Response> {
        self.connect()?.request("GET", path, None)
    }

    /// `POST path` with a JSON body on a new connection.
    pub fn post_json(&self, path: &str, body: &[u8]) -> io::Result<Response> {
        self.connect()?
            .request("POST", path, Some(("application/json", body)))
    }
}

/// An HTTP/1.1 response.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }
}

/// One TLS connection, kept alive across requests.
pub struct Connection {
    stream: StreamOwned<ClientConnection, TcpStream>,
    buffered: Vec<u8>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("version", &self.protocol_version())
            .finish()
    }
}

impl Connection {
    /// The negotiated TLS version.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.stream.conn.protocol_version()
    }

    /// The DER of the certificate the server presented.
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        self.stream
            .conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|cert| cert.as_ref().to_vec())
    }

    /// Sends a request and reads its response.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
    ) -> io::Result<Response> {
        let length = body.map(|(_, b)| b.len());
        self.send_head(method, path, body.map(|(t, _)| t), length)?;
        if let Some((_, bytes)) = body {
            // A server may answer (413) and close before reading everything: still read that answer.
            if let Err(e) = self.send_body(bytes)
                && !matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                )
            {
                return Err(e);
            }
        }
        self.read_response()
    }

    /// Sends the request line and headers only, so a test can hold a request in flight.
    pub fn send_head(
        &mut self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        content_length: Option<usize>,
    ) -> io::Result<()> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {SERVICE_NAME}\r\n");
        if let Some(content_type) = content_type {
            head.push_str(&format!("Content-Type: {content_type}\r\n"));
        }
        if let Some(length) = content_length {
            head.push_str(&format!("Content-Length: {length}\r\n"));
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes())?;
        self.stream.flush()
    }

    /// Sends (part of) a request body.
    pub fn send_body(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// Reads one response: headers, then a Content-Length, chunked or read-to-close body.
    pub fn read_response(&mut self) -> io::Result<Response> {
        let (status, headers, head_len) = loop {
            let mut parsed_headers = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut parsed_headers);
            match parsed.parse(&self.buffered).map_err(io::Error::other)? {
                httparse::Status::Complete(len) => {
                    let headers = parsed
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_owned(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect::<Vec<_>>();
                    break (parsed.code.unwrap_or(0), headers, len);
                }
                httparse::Status::Partial => {
                    if self.fill()? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "connection closed before a response",
                        ));
                    }
                }
            }
        };
        self.buffered.drain(..head_len);
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let body = if let Some(length) = header("content-length") {
            let length: usize = length.trim().parse().map_err(io::Error::other)?;
            self.take(length)?
        } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            self.read_chunked()?
        } else {
            while self.fill()? > 0 {}
            std::mem::take(&mut self.buffered)
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// Reads more bytes into the buffer; 0 at the end of the stream. Reads below the stream
    /// adapter, which would first try to flush pending writes: a server that answered early and
    /// closed (413) has broken the write side, and its answer is still there to read.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.conn.reader().read(&mut chunk) {
                Ok(n) => {
                    self.buffered.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // A peer that closes without close_notify: the end, as far as HTTP is concerned.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            if self.stream.conn.read_tls(&mut self.stream.sock)? == 0 {
                self.stream
                    .conn
                    .process_new_packets()
                    .map_err(io::Error::other)?;
                return match self.stream.conn.reader().read(&mut chunk) {
                    Ok(n) => {
                        self.buffered.extend_from_slice(&chunk[..n]);
                        Ok(n)
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                    Err(e) => Err(e),
                };
            }
            self.stream
                .conn
                .process_new_packets()
                .map_err(io::Error::other)?;
        }
    }

    fn take(&mut self, length: usize) -> io::Result<Vec<u8>> {
        while self.buffered.len() < length {
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a body",
                ));
            }
        }
        Ok(self.buffered.drain(..length).collect())
    }

    fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = self.buffered.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buffered[..end]).into_owned();
                self.buffered.drain(..end + 2);
                return Ok(line);
            }
            if self.fill()? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a chunk",
                ));
            }
        }
    }

    fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line()?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size, 16).map_err(io::Error::other)?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.read_line()?.is_empty() {}
                return Ok(body);
            }
            body.extend(self.take(size)?);
            self.read_line()?;
        }
    }
}

/// What a server answered to a hand-made ClientHello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HelloAnswer {
    /// A ServerHello choosing this (legacy) version.
    ServerHello { version: u16 },
    /// A TLS alert (level, description); 70 is protocol_version, 40 handshake_failure.
    Alert { level: u8, description: u8 },
    /// The server closed the connection without a word.
    Closed,
}

/// Sends a TLS 1.2-style ClientHello offering only `version` (0x0302 is TLS 1.1, 0x0303 TLS 1.2)
/// with ECDHE suites that exist in both, and reports the first record of the answer.
pub fn probe_client_hello(addr: SocketAddr, version: u16) -> io::Result<HelloAnswer> {
    let mut socket = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    socket.set_read_timeout(Some(Duration::from_secs(10)))?;
    socket.write_all(&client_hello(version, SERVICE_NAME))?;
    let mut header = [0u8; 5];
    if let Err(e) = socket.read_exact(&mut header) {
        return match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => {
                Ok(HelloAnswer::Closed)
            }
            _ => Err(e),
        };
    }
    let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
    let mut record = vec![0u8; length];
    socket.read_exact(&mut record)?;
    match header[0] {
        // handshake: type(1) length(3) version(2)
        0x16 if record.len() >= 6 && record[0] == 2 => Ok(HelloAnswer::ServerHello {
            version: u16::from_be_bytes([record[4], record[5]]),
        }),
        0x15 if record.len() >= 2 => Ok(HelloAnswer::Alert {
            level: record[0],
            description: record[1],
        }),
        other => Err(io::Error::other(format!(
            "unexpected TLS record type {other} in answer to a ClientHello"
        ))),
    }
}

fn client_hello(version: u16, host: &str) -> Vec<u8> {
    fn with_u16_len(body: &[u8]) -> Vec<u8> {
        let mut out = u16::try_from(body.len())
            .expect("short")
            .to_be_bytes()
            .to_vec();
        out.extend_from_slice(body);
        out
    }
    fn extension(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut out = kind.to_be_bytes().to_vec();
        out.extend(with_u16_len(body));
        out
    }
    let mut server_name = vec![0u8]; // host_name
    server_name.extend(with_u16_len(host.as_bytes()));
    let mut extensions = Vec::new();
    extensions.extend(extension(0x0000, &with_u16_len(&server_name)));
    // supported_groups: x25519, secp256r1
    extensions.extend(extension(0x000a, &with_u16_len(&[0x00, 0x1d, 0x00, 0x17])));
    // ec_point_formats: uncompressed
    extensions.extend(extension(0x000b, &[0x01, 0x00]));
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256
    extensions.extend(extension(
        0x000d,
        &with_u16_len(&[0x04, 0x03, 0x08, 0x04, 0x04, 0x01]),
    ));

    let mut hello = version.to_be_bytes().to_vec();
    hello.extend((0u8..32).collect::<Vec<_>>()); // random
    hello.push(0); // no session id
    // ECDHE-ECDSA/RSA with AES-GCM (TLS 1.2) and AES-CBC-SHA (TLS 1.0 to 1.2)
    hello.extend(with_u16_len(&[
        0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x09, 0xc0, 0x13,
    ]));
    hello.extend([0x01, 0x00]); // compression: null
    hello.extend(with_u16_len(&extensions));

    let mut handshake = vec![0x01]; // ClientHello
    let length = u32::try_from(hello.len()).expect("short").to_be_bytes();
    handshake.extend(&length[1..]);
    handshake.extend(hello);

    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(with_u16_len(&handshake));
    record
}

/// Runs `webhook certs` into `out_dir` with these extra flags; panics with its output on failure.
pub fn make_certs(program: &Path, out_dir: &Path, extra: &[&str]) {
    let output = Command::new(program)
        .arg("certs")
        .arg("--out-dir")
        .arg(out_dir)
        .args(extra)
        .output()
        .expect("run webhook certs");
    assert!(
        output.status.success(),
        "webhook certs failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `program serve` on ephemeral 127.0.0.1 ports (HTTPS and metrics); the caller adds the rest.
pub fn serve_command(program: &Path) -> Command {
    let mut command = Command::new(program);
    command.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    command
}

/// Starts `command` (a `webhook serve`) at log level info with its log (standard error) piped for
/// the caller to read, and nothing else attached.
pub fn spawn_logging(mut command: Command) -> Child {
    command
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start webhook serve")
}

/// The HTTPS and metrics addresses the "serving" JSON log line names.
pub fn serving_addrs(line: &str) -> (SocketAddr, SocketAddr) {
    let event: serde_json::Value = serde_json::from_str(line).expect("JSON log line");
    let addr = |field: &str| -> SocketAddr {
        event[field]
            .as_str()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {line}"))
    };
    (addr("addr"), addr("metrics_addr"))
}

/// A running `webhook serve` on ephemeral 127.0.0.1 ports, its JSON log lines collected. It is
/// killed when dropped; statics are never dropped, so keep it out of a `static` (a `OnceLock`
/// shared by tests would leave the process running after the test binary exits).
pub struct Webhook {
    child: Child,
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("pid", &self.child.id())
            .field("addr", &self.addr)
            .finish()
    }
}

impl Webhook {
    /// Starts `program serve --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 ARGS` and waits
    /// for its "serving" log line, which names the ports it got.
    pub fn start<I, S>(program: &Path, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Self::start_with_env(program, args, std::iter::empty::<(&str, &str)>())
    }

    /// As [`Webhook::start`], with these environment variables set too.
    pub fn start_with_env<I, S, E, K, V>(program: &Path, args: I, env: E) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
        E: IntoIterator<Item = (K, V)>,
        K: AsRef<std::ffi::OsStr>,
        V: AsRef<std::ffi::OsStr>,
    {
        let mut command = serve_command(program);
        command.args(args.into_iter().map(Into::into)).envs(env);
        let mut child = spawn_logging(command);
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (serving_tx, serving_rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("\"message\":\"serving\"") {
                    let _ = serving_tx.send(line.clone());
                }
                sink.lock().expect("logs").push(line);
            }
        });
        let line = match serving_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "webhook serve did not start (exit {status:?}); its log:\n{}",
                    logs.lock().expect("logs").join("\n")
                );
            }
        };
        let (addr, metrics_addr) = serving_addrs(&line);
        Self {
            addr,
            metrics_addr,
            child,
            logs,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log lines so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("logs").clone()
    }

    /// Waits for a log line containing `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.logs().into_iter().find(|l| l.contains(needle)) {
                return Some(line);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET /metrics` on the plain-HTTP metrics listener.
    pub fn metrics(&self) -> String {
        let mut socket = TcpStream::connect(self.metrics_addr).expect("connect to metrics");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        socket
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: metrics\r\nConnection: close\r\n\r\n")
            .expect("send");
        let mut raw = Vec::new();
        socket.read_to_end(&mut raw).expect("read metrics");
        let raw = String::from_utf8(raw).expect("UTF-8 metrics");
        let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP response");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(body)
        } else {
            body.to_owned()
        }
    }

    /// Sends a signal by name (`TERM`, `INT`) with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

/// A certificate directory laid out as the kubelet lays out a Secret volume:
/// `tls.crt -> ..data/tls.crt`, `..data -> ..<timestamp>`, updated by swapping `..data`.
#[derive(Debug)]
pub struct SecretVolume {
    pub dir: PathBuf,
    generation: u32,
}

impl SecretVolume {
    /// Creates the layout in `dir` with the files of `source` (a `webhook certs` output).
    pub fn new(dir: &Path, source: &Path) -> Self {
        let mut volume = Self {
            dir: dir.to_path_buf(),
            generation: 0,
        };
        volume.update(source);
        for name in ["tls.crt", "tls.key", "ca.crt"] {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name))
                .expect("file symlink");
        }
        volume
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.join("tls.crt")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.join("tls.key")
    }

    /// Writes a new timestamped directory with the files from `source`, then atomically renames
    /// a new `..data` symlink over the old one, and removes the old directory: as the kubelet does.
    pub fn update(&mut self, source: &Path) {
        self.generation += 1;
        let name = format!(
            "..2026_11_23_10_00_{:02}.{}",
            self.generation,
            std::process::id()
        );
        let target = self.dir.join(&name);
        std::fs::create_dir_all(&target).expect("data directory");
        for file in ["tls.crt", "tls.key", "ca.crt"] {
            std::fs::copy(source.join(file), target.join(file)).expect("copy certificate file");
        }
        let old = std::fs::read_link(self.dir.join("..data")).ok();
        let tmp = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&name, &tmp).expect("..data_tmp symlink");
        std::fs::rename(&tmp, self.dir.join("..data")).expect("swap ..data");
        if let Some(old) = old {
            std::fs::remove_dir_all(self.dir.join(old)).expect("remove old data directory");
        }
    }
}

/// A `webhook serve` with certificates of its own from `webhook certs` (in a temp dir that lives
/// as long as it does), started with `--tls-cert`, `--tls-key`, `--injector-image image` and
/// `extra`; [`Certified::client`] trusts its CA.
#[derive(Debug)]
pub struct Certified {
    dir: tempfile::TempDir,
    pub webhook: Webhook,
}

impl Certified {
    pub fn start(program: &Path, image: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        make_certs(program, dir.path(), &[]);
        let mut args: Vec<OsString> = vec![
            "--tls-cert".into(),
            dir.path().join("tls.crt").into(),
            "--tls-key".into(),
            dir.path().join("tls.key").into(),
            "--injector-image".into(),
            image.into(),
        ];
        args.extend(extra.iter().map(OsString::from));
        let webhook = Webhook::start(program, args);
        Self { dir, webhook }
    }

    pub fn client(&self) -> Client {
        Client::new(
            self.webhook.addr,
            SERVICE_NAME,
            &[&self.dir.path().join("ca.crt")],
        )
    }
}
