//! Logging set-up: structured JSON lines by default (what log pipelines parse), plain text for
//! people reading a terminal. Logs go to standard error so `webhook inject` keeps standard output
//! for its manifests. The level comes from `RUST_LOG` (default `info`).
//!
//! Lines are written by a thread of their own, in batches: a review never waits on the log pipe
//! (a stalled log collector must not stall pod admission; when 16 Ki lines, a few MiB, are
//! waiting, new ones are dropped), and a busy webhook makes one write for many lines instead of
//! one per review.

use std::io::{self, BufWriter};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, event fields at the top level.
    Json,
    /// Human-readable lines.
    Text,
}

/// Installs the global subscriber. Call once, before anything logs, and keep the guard until the
/// process ends: dropping it writes out the lines still waiting.
#[must_use = "lines still queued are lost when the guard is dropped early"]
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(16 * 1024)
        .thread_name("log-writer")
        .finish(BufWriter::new(io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
    guard
}
