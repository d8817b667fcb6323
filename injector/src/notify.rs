//! After a swap, the app is told: a signal to its processes by name, and/or an empty POST to its
//! loopback URL. Neither ever fails the sidecar: what went wrong is logged.

use std::time::Duration;

use rustix::process::{Pid, Signal as RawSignal, kill_process};
use secrets_injector_objects::refresh::{RefreshUrl, Signal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// For sending the request and reading the status line.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of the answer read: its status line is all that is used.
const MAX_HEAD: usize = 1024;

/// Sends the signal to every process whose kernel name (`/proc/PID/comm`) is exactly the one
/// asked for, as `pkill -x` does, except this one. Returns how many were signalled.
pub fn signal(signal: &Signal) -> usize {
    let own = std::process::id();
    let mut sent = 0;
    for pid in processes_named(&signal.process) {
        if pid == own {
            continue;
        }
        let (Some(target), Some(number)) = (
            i32::try_from(pid).ok().and_then(Pid::from_raw),
            RawSignal::from_named_raw(signal.signal.number()),
        ) else {
            continue;
        };
        if let Err(error) = kill_process(target, number) {
            tracing::warn!(pid, signal = signal.signal.name(), process = %signal.process, %error,
                "cannot signal the process (a process of another user needs the pod's shared runAsUser; a process that ended is gone)");
        } else {
            sent += 1;
        }
    }
    if sent == 0 {
        tracing::warn!(signal = signal.signal.name(), process = %signal.process,
            "no process of that name could be signalled; is spec.shareProcessNamespace true?");
    } else {
        tracing::info!(signal = signal.signal.name(), process = %signal.process, processes = sent, "signalled");
    }
    sent
}

/// The pids whose `/proc/PID/comm` is `name`.
fn processes_named(name: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read(entry.path().join("comm")).ok()?;
            (comm.strip_suffix(b"\n").unwrap_or(&comm) == name.as_bytes()).then_some(pid)
        })
        .collect()
}

/// One HTTP/1.1 POST with an empty body; logs the answer's status, or why there was none.
pub async fn post(url: &RefreshUrl) {
    match post_once(url).await {
        Ok(status) if (200..300).contains(&status) => {
            tracing::info!(url = %url, status, "reload URL notified");
        }
        Ok(status) => tracing::warn!(url = %url, status, "the reload URL answered an error"),
        Err(error) => tracing::warn!(url = %url, %error, "cannot notify the reload URL"),
    }
}

async fn post_once(url: &RefreshUrl) -> Result<u16, String> {
    let mut stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(url.socket_addr()))
        .await
        .map_err(|_| format!("no connection within {}s", CONNECT_TIMEOUT.as_secs()))?
        .map_err(|e| format!("cannot connect: {e}"))?;
    let request = request(url);
    let head = tokio::time::timeout(ANSWER_TIMEOUT, async {
        stream.write_all(request.as_bytes()).await?;
        let mut head = Vec::new();
        let mut buf = [0u8; 256];
        while !head.windows(2).any(|w| w == b"\r\n") && head.len() < MAX_HEAD {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(head)
    })
    .await
    .map_err(|_| format!("no answer within {}s", ANSWER_TIMEOUT.as_secs()))?
    .map_err(|e| format!("cannot send or read: {e}"))?;
    status(&head).ok_or_else(|| "the answer is not HTTP".to_owned())
}

/// The request: the URL is plain ASCII without spaces (see `RefreshUrl::parse`).
fn request(url: &RefreshUrl) -> String {
    format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: secrets-injector-refresh\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n",
        url.path, url.host, url.port
    )
}

/// The status code of an answer's first line, `HTTP/1.1 200 OK`.
fn status(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split(' ');
    words.next().filter(|v| v.starts_with("HTTP/"))?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_a_bodiless_post_to_the_path() {
        let url = RefreshUrl::parse("http://localhost:9090/-/reload?x=1").unwrap();
        assert_eq!(
            request(&url),
            "POST /-/reload?x=1 HTTP/1.1\r\nHost: localhost:9090\r\nUser-Agent: \
             secrets-injector-refresh\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn status_lines() {
        assert_eq!(status(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(status(b"HTTP/1.0 500 x\r\nA: b\r\n"), Some(500));
        assert_eq!(status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status(b""), None);
    }

    #[test]
    fn processes_are_found_by_their_exact_kernel_name() {
        let own = std::process::id();
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        let name = comm.trim_end();
        assert!(processes_named(name).contains(&own));
        assert!(!processes_named(&name[..name.len() - 1]).contains(&own));
    }
}
