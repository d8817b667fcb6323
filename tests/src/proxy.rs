//! A small HTTP proxy in front of moto that counts AWS calls by operation and region, and
//! answers chosen calls itself with throttling, 503 or access denied, as AWS would. It also
//! counts the names each batch call carries and refuses a batch over the API's limit as AWS
//! does, where moto does not (`BatchGetSecretValue` takes at most 20 secrets).
//!
//! Point `AWS_ENDPOINT_URL` at [`Proxy::endpoint`]. The operation comes from `X-Amz-Target`
//! (JSON protocol: SSM, Secrets Manager) or the `Action` form field (query protocol: STS); the
//! region from the credential scope of the SigV4 `Authorization` header. [`Proxy::start_tls`]
//! serves HTTPS instead, with a certificate of the test's own CA.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `GetParameters`, `GetSecretValue`, `AssumeRoleWithWebIdentity`, ...
    pub operation: String,
    /// The region it was signed for; `None` for unsigned calls (AssumeRoleWithWebIdentity).
    pub region: Option<String>,
    /// Whether the proxy answered it with a fault instead of forwarding it.
    pub faulted: bool,
    /// How many names or ids a batch call carried (see [`BATCH_LIMITS`]); `None` for others.
    pub items: Option<usize>,
}

/// The batch calls whose list the proxy counts, the list's field and AWS's limit on it. A call
/// over the limit is answered with AWS's `ValidationException`, never forwarded.
pub const BATCH_LIMITS: [(&str, &str, usize); 2] = [
    ("BatchGetSecretValue", "SecretIdList", 20),
    ("GetParameters", "Names", 10),
];

/// What a fault answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// HTTP 400 `ThrottlingException` "Rate exceeded" (JSON protocol).
    Throttling,
    /// HTTP 503 `ServiceUnavailable`.
    Unavailable,
    /// HTTP 400 `AccessDeniedException`.
    AccessDenied,
    /// `BatchGetSecretValue` forwarded, then the secrets whose ARN holds the fault's
    /// `body_contains` text moved from `SecretValues` to `Errors` as `AccessDeniedException`:
    /// AWS's answer when the caller may not `GetSecretValue` one of them (moto checks no
    /// permission inside a batch).
    DeniedInBatch,
}

/// Which calls a fault hits, and how many of them: `fail` out of every `of` matching calls
/// (the first `fail` of each group of `of`), so runs are deterministic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    /// Only calls signed for this region.
    pub region: Option<String>,
    /// Only this operation; JSON-protocol calls only when `None`.
    pub operation: Option<String>,
    /// Only requests whose body contains this text (a parameter name, say).
    pub body_contains: Option<String>,
    pub fail: u32,
    pub of: u32,
    /// Count each call apart (its retries carry the same body): every call's first `fail`
    /// attempts of each `of` fail, whatever other calls run at the same time.
    pub per_call: bool,
}

impl Fault {
    /// Every JSON-protocol call (SSM, Secrets Manager), whatever its region.
    pub fn always(kind: FaultKind) -> Fault {
        Fault {
            kind,
            region: None,
            operation: None,
            body_contains: None,
            fail: 1,
            of: 1,
            per_call: false,
        }
    }

    /// `fail` out of every `of` JSON-protocol calls.
    pub fn share(kind: FaultKind, fail: u32, of: u32) -> Fault {
        assert!(fail <= of && of > 0, "fail {fail} of {of}");
        Fault {
            fail,
            of,
            ..Fault::always(kind)
        }
    }

    pub fn in_region(mut self, region: &str) -> Fault {
        self.region = Some(region.to_owned());
        self
    }

    pub fn for_operation(mut self, operation: &str) -> Fault {
        self.operation = Some(operation.to_owned());
        self
    }

    /// Counts each call's attempts apart from the others' (see `per_call`).
    pub fn per_call(mut self) -> Fault {
        self.per_call = true;
        self
    }

    pub fn when_body_contains(mut self, text: &str) -> Fault {
        self.body_contains = Some(text.to_owned());
        self
    }
}

#[derive(Default)]
struct State {
    records: Vec<Record>,
    faults: Vec<(Fault, u32)>,
    /// Attempts seen per (fault, request body), for `per_call` faults.
    attempts: std::collections::HashMap<(usize, Vec<u8>), u32>,
    /// Rewrite moto's XML error bodies on JSON-protocol calls as JSON (see
    /// [`Proxy::json_errors`]).
    json_errors: bool,
    /// Backdate the credentials STS hands out (see [`Proxy::expire_credentials`]).
    expire_credentials: bool,
}

/// The running proxy; stops accepting on drop.
pub struct Proxy {
    addr: SocketAddr,
    scheme: &'static str,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream` (moto's address).
    pub fn start(upstream: SocketAddr) -> Proxy {
        Proxy::listen(upstream, None)
    }

    /// Like [`Proxy::start`], serving HTTPS with this PEM certificate chain and key.
    pub fn start_tls(upstream: SocketAddr, cert: &Path, key: &Path) -> Proxy {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(cert)
            .expect("read the proxy's certificate")
            .collect::<Result<Vec<_>, _>>()
            .expect("PEM certificates");
        let key = PrivateKeyDer::from_pem_file(key).expect("read the proxy's key");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the proxy's certificate and key");
        Proxy::listen(upstream, Some(Arc::new(config)))
    }

    fn listen(upstream: SocketAddr, tls: Option<Arc<rustls::ServerConfig>>) -> Proxy {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let state = Arc::clone(&state);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
                    let state = Arc::clone(&state);
                    let tls = tls.clone();
                    std::thread::spawn(move || match tls {
                        None => serve(stream, upstream, &state),
                        Some(config) => {
                            let Ok(conn) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            serve(rustls::StreamOwned::new(conn, stream), upstream, &state);
                        }
                    });
                }
            })
        };
        Proxy {
            addr,
            scheme,
            state,
            stop,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS), for `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Replaces the faults (and restarts their counters).
    pub fn set_faults(&self, faults: Vec<Fault>) {
        let mut state = self.lock();
        state.faults = faults.into_iter().map(|f| (f, 0)).collect();
        state.attempts.clear();
    }

    /// Answers moto's own errors to JSON-protocol calls (SSM, Secrets Manager) in that
    /// protocol: moto writes the errors of its IAM enforcement (`AccessDenied`) as XML whatever
    /// the service, which no SDK of a JSON-protocol service can read. The status, the code and the
    /// message stay moto's; only the body's format changes, to what AWS sends.
    pub fn json_errors(&self) {
        self.lock().json_errors = true;
    }

    /// Answers `AssumeRoleWithWebIdentity` and `AssumeRole` with credentials that have already
    /// expired (moto's own, dated in the year 2000), so that a client renews them (reading its
    /// token file again, or assuming its chained role again) before every call instead of once
    /// an hour.
    pub fn expire_credentials(&self) {
        self.lock().expire_credentials = true;
    }

    /// Forgets the records.
    pub fn clear(&self) {
        self.lock().records.clear();
    }

    pub fn records(&self) -> Vec<Record> {
        self.lock().records.clone()
    }

    /// Calls of `operation` seen, faulted ones included.
    pub fn count(&self, operation: &str) -> usize {
        self.lock()
            .records
            .iter()
            .filter(|r| r.operation == operation)
            .count()
    }

    /// Calls of `operation` signed for `region`, faulted ones included.
    pub fn count_in(&self, operation: &str, region: &str) -> usize {
        self.lock()
            .records
            .iter()
            .filter(|r| r.operation == operation && r.region.as_deref() == Some(region))
            .count()
    }

    /// The number of names or ids each call of `operation` carried, in order (see
    /// [`BATCH_LIMITS`]).
    pub fn items(&self, operation: &str) -> Vec<usize> {
        self.lock()
            .records
            .iter()
            .filter(|r| r.operation == operation)
            .filter_map(|r| r.items)
            .collect()
    }

    /// Calls the proxy answered with a fault.
    pub fn faulted(&self) -> usize {
        self.lock().records.iter().filter(|r| r.faulted).count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// A parsed HTTP/1.1 request: head lines and body.
struct Request {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn operation(&self) -> String {
        if let Some(target) = self.header("x-amz-target") {
            return target.rsplit('.').next().unwrap_or(target).to_owned();
        }
        let body = String::from_utf8_lossy(&self.body);
        body.split('&')
            .find_map(|pair| pair.strip_prefix("Action="))
            .map(str::to_owned)
            .unwrap_or_else(|| "Unknown".to_owned())
    }

    /// The length of the list a batch call carries, and whether it is over AWS's limit.
    fn batch(&self, operation: &str) -> Option<(usize, bool)> {
        let (_, field, limit) = BATCH_LIMITS.iter().find(|(op, _, _)| *op == operation)?;
        let body: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        let n = body.get(*field)?.as_array()?.len();
        Some((n, n > *limit))
    }

    /// `Credential=AKID/DATE/REGION/SERVICE/aws4_request` in the Authorization header.
    fn region(&self) -> Option<String> {
        let auth = self.header("authorization")?;
        let credential = auth.split("Credential=").nth(1)?;
        credential.split('/').nth(2).map(str::to_owned)
    }
}

/// Serves one client connection: one or more requests, each forwarded on a fresh upstream
/// connection (or faulted).
fn serve<S: Read + Write>(stream: S, upstream: SocketAddr, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let operation = request.operation();
        let region = request.region();
        let batch = request.batch(&operation);
        let oversized = batch.is_some_and(|(_, over)| over);
        let fault = pick_fault(state, &request, &operation, region.as_deref());
        let json_errors = request.header("x-amz-target").is_some()
            && state.lock().unwrap_or_else(|e| e.into_inner()).json_errors;
        let backdate = matches!(
            operation.as_str(),
            "AssumeRoleWithWebIdentity" | "AssumeRole"
        ) && state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .expire_credentials;
        state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .records
            .push(Record {
                operation,
                region,
                faulted: fault.is_some() || oversized,
                items: batch.map(|(n, _)| n),
            });
        let response = match fault {
            _ if oversized => oversized_response(batch.map_or(0, |(n, _)| n)),
            Some((FaultKind::DeniedInBatch, text)) => forward(&request, upstream)
                .map(|response| denied_in_batch(&response, text.as_deref().unwrap_or_default()))
                .unwrap_or_else(|| fault_response(FaultKind::Unavailable)),
            Some((kind, _)) => fault_response(kind),
            None => match forward(&request, upstream) {
                Some(response) if json_errors => xml_error_as_json(&response).unwrap_or(response),
                Some(response) if backdate => backdated(response),
                Some(response) => response,
                None => fault_response(FaultKind::Unavailable),
            },
        };
        let writer = reader.get_mut();
        if writer
            .write_all(&response)
            .and_then(|()| writer.flush())
            .is_err()
        {
            return;
        }
    }
}

fn pick_fault(
    state: &Mutex<State>,
    request: &Request,
    operation: &str,
    region: Option<&str>,
) -> Option<(FaultKind, Option<String>)> {
    let json_protocol = request.header("x-amz-target").is_some();
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let State {
        faults, attempts, ..
    } = &mut *state;
    for (index, (fault, seen)) in faults.iter_mut().enumerate() {
        let matches = match &fault.operation {
            Some(op) => op == operation,
            None => json_protocol,
        } && fault.region.as_deref().is_none_or(|r| Some(r) == region)
            && fault
                .body_contains
                .as_deref()
                .is_none_or(|text| String::from_utf8_lossy(&request.body).contains(text));
        if matches {
            let seen = if fault.per_call {
                attempts.entry((index, request.body.clone())).or_insert(0)
            } else {
                seen
            };
            let position = *seen % fault.of;
            *seen += 1;
            if position < fault.fail {
                return Some((fault.kind, fault.body_contains.clone()));
            }
        }
    }
    None
}

fn read_request<S: Read>(reader: &mut BufReader<S>) -> Option<Request> {
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let request_line = request_line.trim_end().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        request_line,
        headers,
        body,
    })
}

/// Sends the request to moto on its own connection and returns moto's response, re-framed
/// with a Content-Length so the client connection can carry on.
fn forward(request: &Request, upstream: SocketAddr) -> Option<Vec<u8>> {
    let mut conn = TcpStream::connect(upstream).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let mut out = Vec::with_capacity(request.body.len() + 1024);
    out.extend_from_slice(request.request_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &request.headers {
        if name.eq_ignore_ascii_case("connection") {
            continue;
        }
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&request.body);
    conn.write_all(&out).ok()?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).ok()?;
    reframe(&raw)
}

/// The response with the year of its `<Expiration>` replaced by 2000 (same length, so its
/// `Content-Length` holds).
fn backdated(mut response: Vec<u8>) -> Vec<u8> {
    const TAG: &[u8] = b"<Expiration>";
    if let Some(at) = response.windows(TAG.len()).position(|w| w == TAG) {
        let year = at + TAG.len();
        if response.len() >= year + 4 {
            response[year..year + 4].copy_from_slice(b"2000");
        }
    }
    response
}

/// A reframed response whose body is an XML `<ErrorResponse>`, with the same status, code and
/// message as a JSON-protocol error; `None` for any other response.
fn xml_error_as_json(response: &[u8]) -> Option<Vec<u8>> {
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status_line = std::str::from_utf8(&response[..split])
        .ok()?
        .lines()
        .next()?;
    let body = std::str::from_utf8(&response[split + 4..]).ok()?;
    if !body.contains("<ErrorResponse") {
        return None;
    }
    let element = |name: &str| {
        let start = body.find(&format!("<{name}>"))? + name.len() + 2;
        let end = start + body[start..].find(&format!("</{name}>"))?;
        let text = &body[start..end];
        Some(
            text.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        )
    };
    let code = element("Code")?;
    let message = element("Message").unwrap_or_default();
    let json = serde_json::json!({"__type": code, "message": message}).to_string();
    Some(
        format!(
            "{status_line}\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: {code}\r\nContent-Length: {}\r\n\r\n{json}",
            json.len()
        )
        .into_bytes(),
    )
}

/// Rewrites an upstream response (read to EOF) with `Content-Length` and keep-alive.
fn reframe(raw: &[u8]) -> Option<Vec<u8>> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut headers: Vec<(&str, &str)> = Vec::new();
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
            continue;
        }
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
            continue;
        }
        if name.eq_ignore_ascii_case("connection") {
            continue;
        }
        headers.push((name, value));
    }
    if chunked {
        body = dechunk(&body)?;
    } else if let Some(length) = length {
        body.truncate(length);
    }
    let mut out = Vec::with_capacity(body.len() + head.len() + 64);
    out.extend_from_slice(status_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(&body);
    Some(out)
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// A `BatchGetSecretValue` answer with the secrets whose ARN holds `text` moved to `Errors`
/// as denied (see [`FaultKind::DeniedInBatch`]); any other answer as it is.
fn denied_in_batch(response: &[u8], text: &str) -> Vec<u8> {
    let Some(split) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        return response.to_vec();
    };
    let Ok(mut body) = serde_json::from_slice::<serde_json::Value>(&response[split + 4..]) else {
        return response.to_vec();
    };
    let Some(values) = body
        .get_mut("SecretValues")
        .and_then(serde_json::Value::as_array_mut)
    else {
        return response.to_vec();
    };
    let mut errors = Vec::new();
    values.retain(|entry| {
        let arn = entry["ARN"].as_str().unwrap_or_default();
        if arn.contains(text) {
            errors.push(serde_json::json!({
                "SecretId": arn,
                "ErrorCode": "AccessDeniedException",
                "Message": "User: arn:aws:sts::123456789012:assumed-role/app/test is not \
                            authorized to perform: secretsmanager:GetSecretValue",
            }));
            false
        } else {
            true
        }
    });
    body["Errors"] = serde_json::Value::Array(errors);
    let body = body.to_string();
    let head = String::from_utf8_lossy(&response[..split]);
    let mut out = String::new();
    for line in head.split("\r\n") {
        if !line.to_ascii_lowercase().starts_with("content-length:") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    format!("{out}Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

/// AWS's answer to a batch over its limit.
fn oversized_response(n: usize) -> Vec<u8> {
    let body = serde_json::json!({
        "__type": "ValidationException",
        "message": format!(
            "1 validation error detected: the list of {n} members failed to satisfy constraint: \
             Member must have length less than or equal to the API's limit"
        ),
    })
    .to_string();
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\n\
         x-amzn-RequestId: proxy-oversized\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn fault_response(kind: FaultKind) -> Vec<u8> {
    let (status, body) = match kind {
        FaultKind::Throttling => (
            "400 Bad Request",
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
        ),
        FaultKind::Unavailable => (
            "503 Service Unavailable",
            r#"{"__type":"ServiceUnavailable","message":"Service Unavailable"}"#,
        ),
        FaultKind::AccessDenied => (
            "400 Bad Request",
            r#"{"__type":"AccessDeniedException","message":"User: arn:aws:sts::123456789012:assumed-role/app/test is not authorized to perform this operation"}"#,
        ),
        // Forwarded and rewritten (see `denied_in_batch`); as a plain fault, a server error.
        FaultKind::DeniedInBatch => (
            "500 Internal Server Error",
            r#"{"__type":"InternalServiceError","message":"no upstream answer"}"#,
        ),
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         x-amzn-RequestId: proxy-fault\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reframes_chunked_and_closing_responses() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\nX-A: b\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let out = String::from_utf8(reframe(raw).unwrap()).unwrap();
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nX-A: b\r\nContent-Length: 5\r\n\r\nabcde"
        );
        let raw = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        let out = String::from_utf8(reframe(raw).unwrap()).unwrap();
        assert_eq!(out, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi");
    }

    #[test]
    fn operation_and_region_from_the_request() {
        let request = Request {
            request_line: "POST / HTTP/1.1".into(),
            headers: vec![
                ("X-Amz-Target".into(), "AmazonSSM.GetParameters".into()),
                (
                    "Authorization".into(),
                    "AWS4-HMAC-SHA256 Credential=ASIA/20260101/us-west-2/ssm/aws4_request, \
                     SignedHeaders=host, Signature=x"
                        .into(),
                ),
            ],
            body: Vec::new(),
        };
        assert_eq!(request.operation(), "GetParameters");
        assert_eq!(request.region().as_deref(), Some("us-west-2"));
        let sts = Request {
            request_line: "POST / HTTP/1.1".into(),
            headers: Vec::new(),
            body: b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15".to_vec(),
        };
        assert_eq!(sts.operation(), "AssumeRoleWithWebIdentity");
        assert_eq!(sts.region(), None);
    }

    #[test]
    fn batch_calls_are_counted_and_held_to_the_limit() {
        let call = |operation: &str, body: &str| Request {
            request_line: "POST / HTTP/1.1".into(),
            headers: vec![("X-Amz-Target".into(), format!("secretsmanager.{operation}"))],
            body: body.as_bytes().to_vec(),
        };
        let ids = |n: usize| {
            let ids: Vec<String> = (0..n).map(|i| format!("arn:{i}")).collect();
            serde_json::json!({ "SecretIdList": ids }).to_string()
        };
        assert_eq!(
            call("BatchGetSecretValue", &ids(20)).batch("BatchGetSecretValue"),
            Some((20, false))
        );
        assert_eq!(
            call("BatchGetSecretValue", &ids(21)).batch("BatchGetSecretValue"),
            Some((21, true))
        );
        assert_eq!(call("ListSecrets", "{}").batch("ListSecrets"), None);
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n{\"SecretValues\":[{\"ARN\":\"arn:a-1\"},{\"ARN\":\"arn:b-2\"}],\"Errors\":[]}";
        let rewritten = String::from_utf8(denied_in_batch(answer, "arn:b")).unwrap();
        let (head, body) = rewritten.split_once("\r\n\r\n").unwrap();
        assert!(
            head.ends_with(&format!("Content-Length: {}", body.len())),
            "{head}"
        );
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["SecretValues"][0]["ARN"], "arn:a-1");
        assert_eq!(body["SecretValues"].as_array().unwrap().len(), 1);
        assert_eq!(body["Errors"][0]["SecretId"], "arn:b-2");
        assert_eq!(body["Errors"][0]["ErrorCode"], "AccessDeniedException");
        let refused = String::from_utf8(oversized_response(21)).unwrap();
        assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
        assert!(refused.contains("ValidationException"), "{refused}");
    }

    #[test]
    fn shares_are_deterministic() {
        let state = Mutex::new(State {
            records: Vec::new(),
            faults: vec![(Fault::share(FaultKind::Throttling, 1, 3), 0)],
            ..State::default()
        });
        let request = Request {
            request_line: "POST / HTTP/1.1".into(),
            headers: vec![(
                "X-Amz-Target".into(),
                "secretsmanager.GetSecretValue".into(),
            )],
            body: Vec::new(),
        };
        let hits: Vec<bool> = (0..6)
            .map(|_| pick_fault(&state, &request, "GetSecretValue", None).is_some())
            .collect();
        assert_eq!(hits, vec![true, false, false, true, false, false]);
    }

    #[test]
    fn per_call_shares_count_each_call_apart() {
        let state = Mutex::new(State {
            faults: vec![(Fault::share(FaultKind::Unavailable, 2, 3).per_call(), 0)],
            ..State::default()
        });
        let call = |body: &str| Request {
            request_line: "POST / HTTP/1.1".into(),
            headers: vec![("X-Amz-Target".into(), "AmazonSSM.GetParameters".into())],
            body: body.as_bytes().to_vec(),
        };
        let (a, b) = (call(r#"{"Names":["/a"]}"#), call(r#"{"Names":["/b"]}"#));
        let hit = |r: &Request| pick_fault(&state, r, "GetParameters", None).is_some();
        // Interleaved, each call still fails its first two attempts and passes its third.
        let seen = [hit(&a), hit(&b), hit(&a), hit(&b), hit(&a), hit(&b)];
        assert_eq!(seen, [true, true, true, true, false, false]);
    }
}
