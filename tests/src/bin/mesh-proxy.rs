//! A stand-in for a service mesh's proxy (Istio's Envoy, linkerd2-proxy) in the service-mesh
//! end-to-end test: it accepts the connections a pod's iptables redirect sends to its port
//! (Istio's 15001), reads each one's original destination (`SO_ORIGINAL_DST`, which the NAT
//! redirect keeps) and forwards the bytes both ways. It has to run as the proxy's user (1337):
//! the redirect lets that user's traffic through, else its own connections to the destination
//! would be redirected back to it.
//!
//! `mesh-proxy [PORT]` (default 15001). One line on stdout per connection, for the test to count:
//! `forward PEER -> DESTINATION` (then `failed ...` when the destination refused), or `direct
//! PEER` for a connection made to the port itself (a startup probe), which is closed at once.
//! Standard library and socket2 only, so it builds small and static for a scratch image
//! (tests/images/mesh-proxy).

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The most connections forwarded at once; more are closed (a test needs a handful).
const MAX_CONNECTIONS: usize = 256;
/// How long connecting to a destination may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let port = match std::env::args().nth(1).map(|p| p.parse::<u16>()) {
        None => 15001,
        Some(Ok(port)) => port,
        Some(Err(_)) => {
            eprintln!("usage: mesh-proxy [PORT]");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("mesh-proxy: cannot listen on port {port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    say(&format!("listening on {port}"));
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        let active = Arc::clone(&active);
        std::thread::spawn(move || {
            serve(stream);
            active.fetch_sub(1, Ordering::SeqCst);
        });
    }
    ExitCode::SUCCESS
}

/// One line on stdout, flushed at once (the test reads the log after the container stops).
fn say(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn serve(client: TcpStream) {
    let peer = client
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let local = client.local_addr().ok();
    // Without a redirect (a connection to the port itself) there is no NAT entry, or its
    // original destination is the port itself.
    let original = match original_destination(&client) {
        Some(original) if Some(original) != local => original,
        _ => {
            say(&format!("direct {peer}"));
            return;
        }
    };
    say(&format!("forward {peer} -> {original}"));
    let upstream = match TcpStream::connect_timeout(&original, CONNECT_TIMEOUT) {
        Ok(upstream) => upstream,
        Err(e) => {
            say(&format!("failed {peer} -> {original}: {e}"));
            return;
        }
    };
    let (Ok(client_read), Ok(upstream_write)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || relay(client_read, upstream_write));
    relay(upstream, client);
    let _ = up.join();
}

/// The destination the connection had before the redirect.
fn original_destination(stream: &TcpStream) -> Option<SocketAddr> {
    socket2::SockRef::from(stream)
        .original_dst_v4()
        .ok()
        .and_then(|address| address.as_socket())
}

/// Copies until `from` ends, then ends the writing half of `to`.
fn relay(mut from: TcpStream, mut to: TcpStream) {
    let _ = io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}
