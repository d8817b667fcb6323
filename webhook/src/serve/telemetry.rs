//! Logging set-up: structured JSON lines by default (what log pipelines parse), plain text for
//! people reading a terminal. Logs go to standard error so `webhook inject` keeps standard output
//! for its manifests. The level comes from `RUST_LOG` (default `info`).
//!
//! Lines are written by a thread of their own, in batches (see `log_buffer`): a review never waits
//! on the log pipe.

use std::io;

use tracing_subscriber::EnvFilter;

use super::log_buffer::{self, Flusher};

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
pub fn init(format: LogFormat) -> io::Result<Flusher> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = log_buffer::start(io::stderr())?;
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
    Ok(guard)
}
