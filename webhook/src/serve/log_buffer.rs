//! Log lines collected in memory and written to standard error by a thread of their own, every
//! `FLUSH_INTERVAL` or as soon as `FLUSH_BYTES` are waiting. A review only appends its line under
//! a lock: it never waits on the log pipe, so a log collector that stops reading cannot stall pod
//! admission, and a busy webhook makes one write for hundreds of lines instead of one per review.
//! When `MAX_BYTES` are waiting (the pipe is stalled), new lines are dropped and counted, and the
//! count is reported once lines flow again.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Longest a line waits in memory.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Waiting bytes that wake the writer before the interval is up.
const FLUSH_BYTES: usize = 64 << 10;
/// Waiting bytes past which lines are dropped.
const MAX_BYTES: usize = 4 << 20;

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    dropped: u64,
    closing: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

impl Shared {
    fn pending(&self) -> MutexGuard<'_, Pending> {
        // Appending bytes cannot leave the buffer half-updated, so a panic elsewhere does not
        // spoil it.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `MakeWriter` of the subscriber: every line it gets goes into the buffer.
#[derive(Clone)]
pub struct LogBuffer {
    shared: Arc<Shared>,
}

/// Writes out what is waiting and stops the writer thread when dropped: keep it until the process
/// ends.
#[must_use = "lines still waiting are lost when the guard is dropped early"]
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A buffer writing to `out` from a thread of its own.
pub fn start(out: impl Write + Send + 'static) -> io::Result<(LogBuffer, Flusher)> {
    let shared = Arc::new(Shared::default());
    let thread = std::thread::Builder::new()
        .name("log-writer".to_owned())
        .spawn({
            let shared = Arc::clone(&shared);
            move || write_out(&shared, out)
        })?;
    Ok((
        LogBuffer {
            shared: Arc::clone(&shared),
        },
        Flusher {
            shared,
            thread: Some(thread),
        },
    ))
}

fn write_out(shared: &Shared, mut out: impl Write) {
    let mut batch = Vec::new();
    loop {
        let (dropped, closing) = {
            let mut pending = shared.pending();
            if pending.bytes.len() < FLUSH_BYTES && !pending.closing {
                pending = shared
                    .wake
                    .wait_timeout(pending, FLUSH_INTERVAL)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            // Swap buffers: reviews keep appending while this batch is written.
            std::mem::swap(&mut batch, &mut pending.bytes);
            (std::mem::take(&mut pending.dropped), pending.closing)
        };
        if dropped > 0 {
            let note = format!(
                "{{\"level\":\"WARN\",\"message\":\"log lines dropped: the log output was not read fast enough\",\"dropped\":{dropped}}}\n"
            );
            batch.extend_from_slice(note.as_bytes());
        }
        if !batch.is_empty() {
            // Nowhere to report a failed write to: the line is the report.
            let _ = out.write_all(&batch);
            let _ = out.flush();
            batch.clear();
        }
        if closing {
            return;
        }
    }
}

impl LogBuffer {
    fn append(&self, line: &[u8]) {
        let mut pending = self.shared.pending();
        if pending.bytes.len() + line.len() > MAX_BYTES {
            pending.dropped += 1;
            return;
        }
        let was_below = pending.bytes.len() < FLUSH_BYTES;
        pending.bytes.extend_from_slice(line);
        if was_below && pending.bytes.len() >= FLUSH_BYTES {
            self.shared.wake.notify_one();
        }
    }
}

impl Write for LogBuffer {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        self.append(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.pending().closing = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// A writer that hands every batch to the test.
    struct Batches(mpsc::Sender<Vec<u8>>);

    impl Write for Batches {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let _ = self.0.send(bytes.to_vec());
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_come_out_whole_in_order_and_within_the_interval() {
        let (tx, rx) = mpsc::channel();
        let (mut buffer, flusher) = start(Batches(tx)).unwrap();
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        for line in expected.split_inclusive('\n') {
            buffer.write_all(line.as_bytes()).unwrap();
        }
        let mut text = Vec::new();
        while text.len() < expected.len() {
            let batch = rx
                .recv_timeout(FLUSH_INTERVAL * 20)
                .expect("a batch within the interval");
            text.extend(batch);
        }
        assert_eq!(String::from_utf8(text).unwrap(), expected);
        drop(flusher);
    }

    #[test]
    fn the_guard_writes_out_what_is_waiting() {
        let (tx, rx) = mpsc::channel();
        let (mut buffer, flusher) = start(Batches(tx)).unwrap();
        buffer.write_all(b"last words\n").unwrap();
        drop(flusher);
        let all: Vec<u8> = rx.try_iter().flatten().collect();
        assert_eq!(all, b"last words\n");
    }

    /// A writer that blocks until released, like a pipe nobody reads, then keeps what it gets.
    struct Stalled {
        gate: Arc<(Mutex<bool>, Condvar)>,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Stalled {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let (released, wake) = &*self.gate;
            let mut released = released.lock().unwrap();
            while !*released {
                released = wake.wait(released).unwrap();
            }
            self.got.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Opens the gate when dropped, also when the test fails: the writer thread can then finish
    /// and the flusher's join return.
    struct Release(Arc<(Mutex<bool>, Condvar)>);

    impl Drop for Release {
        fn drop(&mut self) {
            *self.0.0.lock().unwrap_or_else(PoisonError::into_inner) = true;
            self.0.1.notify_all();
        }
    }

    #[test]
    fn a_stalled_output_drops_lines_past_the_limit_counts_them_and_never_blocks() {
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let got = Arc::new(Mutex::new(Vec::new()));
        let stalled = Stalled {
            gate: Arc::clone(&gate),
            got: Arc::clone(&got),
        };
        let (mut buffer, flusher) = start(stalled).unwrap();
        // Dropped before the flusher.
        let release = Release(gate);
        let mut line = vec![b'x'; 1023];
        line.push(b'\n');
        let lines = 3 * MAX_BYTES / line.len();
        let started = std::time::Instant::now();
        for _ in 0..lines {
            buffer.write_all(&line).unwrap();
            assert!(buffer.shared.pending().bytes.len() <= MAX_BYTES);
        }
        let elapsed = started.elapsed();
        drop(release);
        drop(flusher);
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        // Every line is either written or counted in a note.
        let got = String::from_utf8(got.lock().unwrap().clone()).unwrap();
        let written = got.lines().filter(|l| l.starts_with('x')).count();
        let dropped: usize = got
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|note| note["dropped"].as_u64())
            .map(|n| n as usize)
            .sum();
        assert!(dropped > 0, "nothing dropped");
        assert_eq!(written + dropped, lines);
    }
}
