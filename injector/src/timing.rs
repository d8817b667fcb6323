//! Where a run's time goes, for whoever asks with `RUST_LOG=injector::timing=debug`: one event
//! per step of the init container's run, with the microseconds since `main` began (the breakdown
//! in BENCHMARKS.md comes from them). Off, each mark costs one check of the log filter.

use std::sync::OnceLock;
use std::time::Instant;

static STARTED: OnceLock<Instant> = OnceLock::new();

/// The moment the marks count from: called first thing in `main`.
pub fn start() {
    STARTED.get_or_init(Instant::now);
}

/// Logs that `step` is done, when timing is asked for.
pub fn mark(step: &'static str) {
    if tracing::enabled!(target: "injector::timing", tracing::Level::DEBUG) {
        let at_us = STARTED.get().map_or(0, |t| t.elapsed().as_micros() as u64);
        tracing::debug!(target: "injector::timing", step, at_us, "timing");
    }
}
