//! A small HTTPS server that answers for SecretProviderClasses as the Kubernetes API server does,
//! for the webhook's watch-backed cache: list (with `metadata.resourceVersion`, items without
//! `apiVersion`/`kind`), watch (chunked JSON lines of `ADDED`/`MODIFIED`/`DELETED` events from a
//! resource version, and an `ERROR` event with a `410 Gone` Status for one too old), and GET one
//! (404 `NotFound` when missing). It can answer everything with 404 (the CRD not installed) or
//! 403 (no RBAC), go away (connections closed at once, open watches ended) and come back, hold
//! back watch events, expire every resource version seen so far, and refuse GETs of one class,
//! so tests can tell which path found a class. For the bounds on what the webhook asks and keeps,
//! it can also stall GETs (answer them only when released), answer every GET with a given object
//! (another namespace's class), serve lists in pages (`limit` and `continue`), and it counts GETs
//! per class and records the path of every request that is not a list or a watch.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PREFIX: &str = "/apis/secrets-store.csi.x-k8s.io/v1";
/// The longest a watch stays open without events when the client asks for no timeout.
const MAX_WATCH: Duration = Duration::from_secs(300);

/// How every request is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Serving,
    /// 404: the CRD is not installed.
    NotInstalled,
    /// 403: the caller may not read classes.
    Forbidden,
    /// Connections are closed without an answer, as if the server were gone.
    Down,
}

#[derive(Default)]
struct Inner {
    mode: Option<Mode>,
    /// By (namespace, name), each with `metadata.resourceVersion` set.
    objects: BTreeMap<(String, String), Value>,
    resource_version: u64,
    /// Every change: (resource version, event type, object).
    events: Vec<(u64, &'static str, Value)>,
    /// Watches from a version below this get `410 Gone`.
    oldest: u64,
    /// While set, watches send nothing new.
    hold: bool,
    /// While set, a GET of one class answers 404 whether it exists or not.
    refuse_gets: bool,
    /// Bumped to end every open watch.
    generation: u64,
    /// Requests by kind: "list" (one per page), "watch", "get" (every other request).
    requests: BTreeMap<&'static str, usize>,
    /// GETs by (namespace, name), for well-formed paths.
    gets: BTreeMap<(String, String), usize>,
    /// The path and query of every request that is not a list or a watch, as received.
    get_targets: Vec<String>,
    /// While set, a GET of one class is held without an answer.
    stall_gets: bool,
    /// When set, every GET of one class is answered with this object.
    answer_gets_with: Option<Value>,
}

/// The server; stops when dropped.
pub struct ApiServer {
    pub addr: SocketAddr,
    state: Arc<(Mutex<Inner>, Condvar)>,
    stop: Arc<AtomicBool>,
}

impl ApiServer {
    /// Serves on an ephemeral 127.0.0.1 port with this certificate (which must name 127.0.0.1).
    pub fn start(cert: &Path, key: &Path) -> ApiServer {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(cert)
            .expect("read the certificate")
            .collect::<Result<Vec<_>, _>>()
            .expect("PEM certificates");
        let key = PrivateKeyDer::from_pem_file(key).expect("read the key");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .expect("certificate and key"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("address");
        let state = Arc::new((Mutex::new(Inner::default()), Condvar::new()));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let state = Arc::clone(&state);
                    let config = Arc::clone(&config);
                    let stop = Arc::clone(&stop);
                    std::thread::spawn(move || {
                        if lock(&state).mode == Some(Mode::Down) {
                            return;
                        }
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                        let Ok(conn) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        serve(rustls::StreamOwned::new(conn, stream), &state, &stop);
                    });
                }
            });
        }
        ApiServer { addr, state, stop }
    }

    /// A kubeconfig for this server, trusting `ca`, written into `dir`.
    pub fn kubeconfig(&self, dir: &Path, ca: &Path) -> PathBuf {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: \
             https://{}\n    certificate-authority: {}\nusers:\n- name: webhook\n  user:\n    \
             token: test-token\ncontexts:\n- name: test\n  context:\n    cluster: test\n    \
             user: webhook\ncurrent-context: test\n",
            self.addr,
            ca.display()
        );
        let path = dir.join("kubeconfig");
        std::fs::write(&path, text).expect("write the kubeconfig");
        path
    }

    pub fn set_mode(&self, mode: Mode) {
        let mut inner = lock(&self.state);
        inner.mode = Some(mode);
        inner.generation += 1;
        self.state.1.notify_all();
    }

    /// Creates or replaces a class (the namespace and name from its metadata).
    pub fn apply(&self, class: &Value) {
        let mut inner = lock(&self.state);
        let key = key_of(class);
        let kind = if inner.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        inner.resource_version += 1;
        let mut class = class.clone();
        class["metadata"]["resourceVersion"] = json!(inner.resource_version.to_string());
        let rv = inner.resource_version;
        inner.events.push((rv, kind, class.clone()));
        inner.objects.insert(key, class);
        self.state.1.notify_all();
    }

    pub fn delete(&self, namespace: &str, name: &str) {
        let mut inner = lock(&self.state);
        let key = (namespace.to_owned(), name.to_owned());
        if let Some(mut class) = inner.objects.remove(&key) {
            inner.resource_version += 1;
            class["metadata"]["resourceVersion"] = json!(inner.resource_version.to_string());
            let rv = inner.resource_version;
            inner.events.push((rv, "DELETED", class));
        }
        self.state.1.notify_all();
    }

    /// While held, watches send nothing new (only a list or a GET can find a change).
    pub fn hold_watch_events(&self, hold: bool) {
        lock(&self.state).hold = hold;
        self.state.1.notify_all();
    }

    /// While set, GETs of one class answer 404 (only the list and the watch can find one).
    pub fn refuse_gets(&self, refuse: bool) {
        lock(&self.state).refuse_gets = refuse;
    }

    /// While set, GETs of one class get no answer (until it is cleared, or 60 s): an API server
    /// that stalls.
    pub fn stall_gets(&self, stall: bool) {
        lock(&self.state).stall_gets = stall;
        self.state.1.notify_all();
    }

    /// While set, every GET of one class is answered with `object`, whatever was asked.
    pub fn answer_gets_with(&self, object: Option<Value>) {
        lock(&self.state).answer_gets_with = object;
    }

    /// How many GETs of this class were received.
    pub fn gets_of(&self, namespace: &str, name: &str) -> usize {
        let key = (namespace.to_owned(), name.to_owned());
        lock(&self.state).gets.get(&key).copied().unwrap_or(0)
    }

    /// The path and query of every request that was not a list or a watch, in order.
    pub fn get_targets(&self) -> Vec<String> {
        lock(&self.state).get_targets.clone()
    }

    /// Every resource version so far is too old: open watches end, and watching from one of
    /// them gets `410 Gone`, so the client must list again.
    pub fn expire_versions(&self) {
        let mut inner = lock(&self.state);
        inner.oldest = inner.resource_version + 1;
        inner.generation += 1;
        self.state.1.notify_all();
    }

    /// How many requests of a kind ("list", "watch", "get") were answered.
    /// (A list counts once per page.)
    pub fn requests(&self, kind: &str) -> usize {
        lock(&self.state).requests.get(kind).copied().unwrap_or(0)
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.set_mode(Mode::Down);
        // Wakes the accept loop so it sees the stop.
        let _ = TcpStream::connect(self.addr);
    }
}

fn lock(state: &(Mutex<Inner>, Condvar)) -> MutexGuard<'_, Inner> {
    state.0.lock().unwrap_or_else(|e| e.into_inner())
}

fn key_of(class: &Value) -> (String, String) {
    let text = |field: &str| {
        class["metadata"][field]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    (text("namespace"), text("name"))
}

/// A list item or watch object as the API server writes it for a CRD.
fn with_type(object: &Value) -> Value {
    let mut object = object.clone();
    object["apiVersion"] = json!("secrets-store.csi.x-k8s.io/v1");
    object["kind"] = json!("SecretProviderClass");
    object
}

/// One request: its path and query, and the target as received.
fn read_request<S: std::io::Read>(reader: &mut BufReader<S>) -> Option<(String, String, String)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let target = line.split_whitespace().nth(1)?.to_owned();
    loop {
        let mut header = String::new();
        let read = reader.read_line(&mut header).ok()?;
        if read == 0 || header == "\r\n" {
            break;
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some((path.to_owned(), query.to_owned(), target.clone()))
}

fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn respond<S: Write>(stream: &mut S, code: u16, body: &Value) {
    let text = body.to_string();
    let reason = match code {
        200 => "OK",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Error",
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.flush();
}

fn serve<S: std::io::Read + Write>(
    stream: S,
    state: &Arc<(Mutex<Inner>, Condvar)>,
    stop: &AtomicBool,
) {
    let mut reader = BufReader::new(stream);
    let Some((path, query, target)) = read_request(&mut reader) else {
        return;
    };
    let stream = reader.get_mut();
    let mode = lock(state).mode.unwrap_or(Mode::Serving);
    match mode {
        Mode::Down => return,
        Mode::NotInstalled => {
            return respond(
                stream,
                404,
                &status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ),
            );
        }
        Mode::Forbidden => {
            return respond(
                stream,
                403,
                &status(
                    403,
                    "Forbidden",
                    "secretproviderclasses.secrets-store.csi.x-k8s.io is forbidden: User \
                     \"system:serviceaccount:secrets-injector:secrets-injector\" cannot list \
                     resource \"secretproviderclasses\" in API group \
                     \"secrets-store.csi.x-k8s.io\" at the cluster scope",
                ),
            );
        }
        Mode::Serving => {}
    }
    if path == format!("{PREFIX}/secretproviderclasses") {
        let watching = matches!(query_value(&query, "watch"), Some("true" | "1"));
        if watching {
            watch(stream, state, stop, &query);
        } else {
            let mut inner = lock(state);
            *inner.requests.entry("list").or_default() += 1;
            // A page of `limit` items from the offset in `continue`, as the API server pages.
            let from: usize = query_value(&query, "continue")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let limit: usize = query_value(&query, "limit")
                .and_then(|v| v.parse().ok())
                .filter(|&limit| limit > 0)
                .unwrap_or(usize::MAX);
            // List items carry no apiVersion or kind, as the API server writes them.
            let items: Vec<Value> = inner
                .objects
                .values()
                .skip(from)
                .take(limit)
                .cloned()
                .collect();
            let mut metadata = json!({"resourceVersion": inner.resource_version.to_string()});
            if from.saturating_add(limit) < inner.objects.len() {
                metadata["continue"] = json!((from + limit).to_string());
            }
            let body = json!({
                "apiVersion": "secrets-store.csi.x-k8s.io/v1",
                "kind": "SecretProviderClassList",
                "metadata": metadata,
                "items": items,
            });
            drop(inner);
            respond(stream, 200, &body);
        }
        return;
    }
    let parts: Vec<&str> = path
        .strip_prefix(PREFIX)
        .unwrap_or("")
        .trim_start_matches('/')
        .split('/')
        .collect();
    let mut inner = lock(state);
    *inner.requests.entry("get").or_default() += 1;
    inner.get_targets.push(target);
    if let ["namespaces", namespace, "secretproviderclasses", name] = parts[..] {
        *inner
            .gets
            .entry((namespace.to_owned(), name.to_owned()))
            .or_default() += 1;
        let held = Instant::now() + Duration::from_secs(60);
        while inner.stall_gets && !stop.load(Ordering::SeqCst) && Instant::now() < held {
            inner = state
                .1
                .wait_timeout(inner, Duration::from_millis(200))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let found = match &inner.answer_gets_with {
            Some(object) => Some(with_type(object)),
            None => inner
                .objects
                .get(&(namespace.to_owned(), name.to_owned()))
                .filter(|_| !inner.refuse_gets)
                .map(with_type),
        };
        drop(inner);
        match found {
            Some(object) => respond(stream, 200, &object),
            None => respond(
                stream,
                404,
                &status(
                    404,
                    "NotFound",
                    &format!(
                        "secretproviderclasses.secrets-store.csi.x-k8s.io \"{name}\" not found"
                    ),
                ),
            ),
        }
        return;
    }
    drop(inner);
    respond(
        stream,
        404,
        &status(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ),
    );
}

/// A watch: chunked JSON lines from the resource version asked for, until it times out, the
/// server goes away or versions expire.
fn watch<S: Write>(
    stream: &mut S,
    state: &Arc<(Mutex<Inner>, Condvar)>,
    stop: &AtomicBool,
    query: &str,
) {
    let from: u64 = query_value(query, "resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = query_value(query, "timeoutSeconds")
        .and_then(|v| v.parse().ok())
        .map_or(MAX_WATCH, Duration::from_secs)
        .min(MAX_WATCH);
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: \
                chunked\r\nConnection: close\r\n\r\n";
    let chunk = |stream: &mut S, line: String| -> bool {
        let line = format!("{line}\n");
        write!(stream, "{:x}\r\n{line}\r\n", line.len()).is_ok() && stream.flush().is_ok()
    };
    let mut inner = lock(state);
    *inner.requests.entry("watch").or_default() += 1;
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    if inner.oldest > 0 && from < inner.oldest {
        let gone = status(
            410,
            "Expired",
            &format!("too old resource version: {from} ({})", inner.oldest),
        );
        drop(inner);
        chunk(stream, json!({"type": "ERROR", "object": gone}).to_string());
        let _ = stream.write_all(b"0\r\n\r\n");
        return;
    }
    let generation = inner.generation;
    let deadline = Instant::now() + timeout;
    let mut sent = from;
    loop {
        if stop.load(Ordering::SeqCst)
            || inner.generation != generation
            || inner.mode.unwrap_or(Mode::Serving) != Mode::Serving
        {
            break;
        }
        if !inner.hold {
            let pending: Vec<String> = inner
                .events
                .iter()
                .filter(|(rv, _, _)| *rv > sent)
                .map(|(_, kind, object)| {
                    json!({"type": kind, "object": with_type(object)}).to_string()
                })
                .collect();
            sent = inner.resource_version.max(sent);
            if !pending.is_empty() {
                drop(inner);
                for line in pending {
                    if !chunk(stream, line) {
                        return;
                    }
                }
                inner = lock(state);
                continue;
            }
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let wait = (deadline - now).min(Duration::from_millis(500));
        inner = state
            .1
            .wait_timeout(inner, wait)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    drop(inner);
    let _ = stream.write_all(b"0\r\n\r\n");
    let _ = stream.flush();
}
