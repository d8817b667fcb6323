//! The threads that do a review's CPU work (reading the body as a review, deciding, writing the
//! answer), so that no review, however costly its pod, runs on the async runtime's workers: those
//! keep answering `/healthz`, `/readyz` and `/metrics` (and reading bodies) whatever the reviews
//! cost. A fixed number of reviews run at once, within a budget of the memory they are expected
//! to hold; a few more may wait for both, for a bounded time; beyond that a review is refused at
//! once rather than left to queue past the API server's timeout (10 s at most).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::metrics::PoolMetrics;

/// How long a review may wait for a thread at most. The API server gives a review 10 s at most,
/// and the review still needs its own time once it has a thread: one that waited this long is
/// refused.
pub const QUEUE_WAIT: Duration = Duration::from_secs(3);

/// How long a review may wait for a thread: a third of the time the API server gives it (its
/// `timeout` parameter, the webhook's `timeoutSeconds`), at most [`QUEUE_WAIT`].
pub fn queue_wait(timeout: Option<Duration>) -> Duration {
    timeout.map_or(QUEUE_WAIT, |timeout| (timeout / 3).min(QUEUE_WAIT))
}

/// The review memory is counted in KiB so that any budget fits tokio's `u32` permit counts.
const MEMORY_UNIT: usize = 1024;
const MIB: usize = 1024 * 1024;

/// The memory a review is expected to hold while it is worked on, known from its body before it
/// is read as a review. A pod is read into a tree of JSON values in which every object kept
/// costs one map node (about 0.6 KiB however few its keys, allocator overhead on top) and every
/// string a copy: a pod of 12,000 small init containers and as many volumes, 1.8 MB of body,
/// held about 30 MiB. Counting each `{` of the body (objects, and braces inside strings, which
/// only overestimate) bounds the one, twice the body the other. The count is one pass over bytes
/// just received, as cheap as receiving them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    pub body: usize,
    pub objects: usize,
}

impl Cost {
    /// What one JSON object kept in the tree is expected to hold.
    pub const OBJECT_BYTES: usize = 800;

    pub fn of(body: &[u8]) -> Self {
        Self {
            body: body.len(),
            objects: body.iter().filter(|&&byte| byte == b'{').count(),
        }
    }

    /// The expected bytes.
    pub fn bytes(&self) -> usize {
        self.body
            .saturating_mul(2)
            .saturating_add(self.objects.saturating_mul(Self::OBJECT_BYTES))
    }

    fn units(&self) -> usize {
        self.bytes().div_ceil(MEMORY_UNIT).max(1)
    }
}

/// Why a review was not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotRun {
    /// Every thread (or the review memory) was in use and the queue full, or the wait for them
    /// ran out.
    Busy(Busy),
    /// The review alone would hold more than the whole review memory: it can never run.
    TooCostly(TooCostly),
    /// The work panicked (a bug): the request gets an HTTP 500, the server lives on.
    Panicked,
}

/// What a review waited for until it was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// A review thread, all of them being in use.
    Thread(Duration),
    /// Its share of the review memory (in bytes), the running reviews holding the rest.
    Memory(Duration, usize),
}

/// The pool's state when it refused a review, for the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Busy {
    pub threads: usize,
    pub queue: usize,
    /// --review-memory-bytes.
    pub memory: usize,
    /// What the review waited for, and how long (`None`: refused at once, the queue was full).
    pub waited: Option<Waited>,
    /// Threads in use and bytes of review memory held when the review was refused (with what
    /// the reviews waiting for memory have been handed of it so far).
    pub in_use: (usize, usize),
}

impl Busy {
    /// What the denial says: the cause, the flags, and that a retry is the fix.
    pub fn message(&self) -> String {
        let Self {
            threads,
            queue,
            memory,
            ..
        } = self;
        let (threads_in_use, memory_held) = self.in_use;
        let cause = match self.waited {
            None => format!(
                "review threads in use: {threads_in_use} of {threads}, review memory held or \
                 waited for: {} of {} MiB, reviews waiting: {queue} of {queue}",
                memory_held.div_ceil(MIB),
                memory / MIB
            ),
            Some(Waited::Thread(waited)) => format!(
                "this review waited {:.1} s for a review thread, all {threads} being in use",
                waited.as_secs_f64()
            ),
            Some(Waited::Memory(waited, needed)) => format!(
                "this review waited {:.1} s for the {} MiB of memory it needs, the reviews in \
                 progress holding the rest of {} MiB",
                waited.as_secs_f64(),
                needed.div_ceil(MIB),
                memory / MIB
            ),
        };
        format!(
            "the webhook is busy: {cause} (--review-threads={threads}, --review-queue={queue}, \
             --review-memory-bytes={memory}); retry shortly (controllers retry by themselves); \
             if this persists, look for pods whose reviews are unusually costly, or run more \
             replicas"
        )
    }
}

/// A review that would need more than the whole review memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooCostly {
    pub cost: Cost,
    /// --review-memory-bytes.
    pub memory: usize,
}

impl TooCostly {
    /// What the denial says: how big, why, and the two ways out.
    pub fn message(&self) -> String {
        let Self { cost, memory } = self;
        format!(
            "this review would hold about {} MiB while it is worked on ({} JSON objects in a \
             body of {} KiB), more than all reviews together may hold (--review-memory-bytes=\
             {memory}); make the object smaller (a real pod is far below this), or raise \
             --review-memory-bytes together with the webhook's memory limit",
            cost.bytes().div_ceil(MIB),
            cost.objects,
            cost.body.div_ceil(1024)
        )
    }
}

/// The units of a budget of `bytes`: at least one, and few enough for one permit count.
fn budget_units(bytes: usize) -> usize {
    bytes
        .div_ceil(MEMORY_UNIT)
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize))
}

/// The pool; cheap to clone (all clones share the threads, the memory and the queue).
#[derive(Clone, Debug)]
pub struct ReviewPool {
    threads: Arc<Semaphore>,
    size: usize,
    /// The review memory, in [`MEMORY_UNIT`]s.
    memory: Arc<Semaphore>,
    memory_bytes: usize,
    queue: usize,
    waiting: Arc<AtomicUsize>,
    metrics: PoolMetrics,
}

/// What a review holds while it runs: a thread and its share of the memory.
struct Held {
    _thread: OwnedSemaphorePermit,
    _memory: OwnedSemaphorePermit,
}

impl ReviewPool {
    /// `threads` reviews at once (at least one), holding `memory` bytes together at most (at
    /// least one unit), `queue` more waiting.
    pub fn new(threads: usize, queue: usize, memory: usize, metrics: PoolMetrics) -> Self {
        let threads = threads.max(1);
        Self {
            threads: Arc::new(Semaphore::new(threads)),
            size: threads,
            memory: Arc::new(Semaphore::new(budget_units(memory))),
            memory_bytes: memory,
            queue,
            waiting: Arc::new(AtomicUsize::new(0)),
            metrics,
        }
    }

    /// Runs `work`, expected to hold `cost`, on a blocking thread of the runtime once one of the
    /// pool's threads and the memory it needs are free (waiting at most `wait`), and returns
    /// what it returns. Both are taken before the work is handed over and given back when the
    /// work ends, even if the caller stops waiting for it (a client that goes away does not
    /// free a thread still working for it). Async steps a review needs (a lookup on the API
    /// server) go before or between calls, holding neither.
    pub async fn run<F, R>(&self, wait: Duration, cost: Cost, work: F) -> Result<R, NotRun>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let units = cost.units();
        // Checked, not clamped: a review that needs more than the whole budget never runs.
        let Ok(units) = u32::try_from(units) else {
            return Err(self.too_costly(cost));
        };
        if units as usize > budget_units(self.memory_bytes) {
            return Err(self.too_costly(cost));
        }
        let held = match self.take_now(units) {
            Some(held) => held,
            None => self.wait_for(wait, units, cost.bytes()).await?,
        };
        let (running, memory) = (self.metrics.running.clone(), self.metrics.memory.clone());
        let bytes = i64::try_from(cost.bytes()).unwrap_or(i64::MAX);
        let work = move || {
            running.inc();
            memory.inc_by(bytes);
            let _running = Decrement(running, 1);
            let _memory = Decrement(memory, bytes);
            // Given back when the work ends, panicking or not; declared last, so dropped first:
            // the thread and the memory are free again before the gauges say so.
            let _held = held;
            work()
        };
        tokio::task::spawn_blocking(work).await.map_err(|error| {
            tracing::error!(error = %error, "a review failed");
            NotRun::Panicked
        })
    }

    /// A thread and the memory if both are free now, else neither.
    fn take_now(&self, units: u32) -> Option<Held> {
        let memory = Arc::clone(&self.memory)
            .try_acquire_many_owned(units)
            .ok()?;
        let thread = Arc::clone(&self.threads).try_acquire_owned().ok()?;
        Some(Held {
            _thread: thread,
            _memory: memory,
        })
    }

    /// Joins the queue if it has room, and waits at most `wait` in all for the memory, then for
    /// a thread. The semaphores hand out in order, so a review that arrives later cannot
    /// overtake those waiting; the memory is taken first so that a waiting review holds no
    /// thread a smaller review could use.
    async fn wait_for(&self, wait: Duration, units: u32, bytes: usize) -> Result<Held, NotRun> {
        let joined = self
            .waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.queue).then_some(n + 1)
            });
        if joined.is_err() {
            return Err(self.refuse(None));
        }
        self.metrics.waiting.inc();
        let _queued = Leave(self);
        let deadline = tokio::time::Instant::now() + wait;
        // The semaphores are never closed; a closed one would be a pool being dropped.
        let memory = match tokio::time::timeout_at(
            deadline,
            Arc::clone(&self.memory).acquire_many_owned(units),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) | Err(_) => return Err(self.refuse(Some(Waited::Memory(wait, bytes)))),
        };
        match tokio::time::timeout_at(deadline, Arc::clone(&self.threads).acquire_owned()).await {
            Ok(Ok(thread)) => Ok(Held {
                _thread: thread,
                _memory: memory,
            }),
            Ok(Err(_)) | Err(_) => Err(self.refuse(Some(Waited::Thread(wait)))),
        }
    }

    fn refuse(&self, waited: Option<Waited>) -> NotRun {
        self.metrics.refused.inc();
        let free_units = self.memory.available_permits();
        NotRun::Busy(Busy {
            threads: self.size,
            queue: self.queue,
            memory: self.memory_bytes,
            waited,
            in_use: (
                self.size - self.threads.available_permits(),
                budget_units(self.memory_bytes).saturating_sub(free_units) * MEMORY_UNIT,
            ),
        })
    }

    fn too_costly(&self, cost: Cost) -> NotRun {
        NotRun::TooCostly(TooCostly {
            cost,
            memory: self.memory_bytes,
        })
    }

    /// Reviews running now.
    pub fn running(&self) -> i64 {
        self.metrics.running.get()
    }

    /// Reviews waiting for a thread now.
    pub fn waiting(&self) -> i64 {
        self.metrics.waiting.get()
    }

    /// Reviews refused so far.
    pub fn refused(&self) -> u64 {
        self.metrics.refused.get()
    }

    /// Bytes the running reviews are expected to hold now.
    pub fn memory_held(&self) -> i64 {
        self.metrics.memory.get()
    }
}

struct Decrement(prometheus_client::metrics::gauge::Gauge, i64);

impl Drop for Decrement {
    fn drop(&mut self) {
        self.0.dec_by(self.1);
    }
}

/// Leaves the queue, whether the review got a thread, timed out or its caller went away.
struct Leave<'a>(&'a ReviewPool);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
        self.0.metrics.waiting.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    const MEMORY: usize = 64 * MIB;
    /// A review of a few KiB, as the API server sends them.
    const SMALL: Cost = Cost {
        body: 8 * 1024,
        objects: 40,
    };

    /// A closure that occupies a thread until told to finish, and says when it has started.
    fn blocked() -> (
        impl FnOnce() -> u32 + Send + 'static,
        mpsc::Receiver<()>,
        mpsc::Sender<()>,
    ) {
        let (started_tx, started) = mpsc::channel();
        let (finish, finish_rx) = mpsc::channel::<()>();
        let work = move || {
            started_tx.send(()).expect("started");
            finish_rx.recv().expect("finish");
            7
        };
        (work, started, finish)
    }

    /// Polls the runtime until `done` holds; bounded by iterations, not by time.
    async fn until(done: impl Fn() -> bool) {
        for _ in 0..100_000 {
            if done() {
                return;
            }
            tokio::task::yield_now().await;
        }
        panic!("the pool never reached the expected state");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_pool_refuses_at_once_and_a_freed_thread_admits_the_next() {
        let pool = ReviewPool::new(2, 0, MEMORY, PoolMetrics::default());
        let mut finishers = Vec::new();
        let mut running = Vec::new();
        for _ in 0..2 {
            let (work, started, finish) = blocked();
            let pool = pool.clone();
            running.push(tokio::spawn(async move {
                pool.run(QUEUE_WAIT, SMALL, work).await
            }));
            tokio::task::spawn_blocking(move || started.recv().expect("started"))
                .await
                .expect("join");
            finishers.push(finish);
        }
        assert_eq!(pool.running(), 2);

        // No queue: the third is refused without waiting, and says why.
        let refused = pool.run(QUEUE_WAIT, SMALL, || 0).await;
        let Err(NotRun::Busy(busy)) = refused else {
            panic!("not refused: {refused:?}");
        };
        assert_eq!(busy.waited, None);
        assert!(
            busy.message().starts_with(
                "the webhook is busy: review threads in use: 2 of 2, review memory held or \
                 waited for: 1 of 64 MiB, reviews waiting: 0 of 0 (--review-threads=2, --review-queue=0, \
                 --review-memory-bytes=67108864); retry shortly"
            ),
            "{}",
            busy.message()
        );
        assert_eq!(pool.refused(), 1);
        assert_eq!(pool.running(), 2);

        // One finishes: the next is admitted, and runs.
        finishers.pop().expect("finisher").send(()).expect("finish");
        until(|| pool.running() == 1).await;
        assert_eq!(pool.run(QUEUE_WAIT, SMALL, || 5).await, Ok(5));
        assert_eq!(pool.refused(), 1);
        finishers.pop().expect("finisher").send(()).expect("finish");
        for task in running {
            assert_eq!(task.await.expect("join"), Ok(7));
        }
        assert_eq!(pool.running(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queued_review_runs_when_a_thread_frees_and_the_queue_is_bounded() {
        let pool = ReviewPool::new(1, 1, MEMORY, PoolMetrics::default());
        let (work, started, finish) = blocked();
        let first = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(QUEUE_WAIT, SMALL, work).await }
        });
        tokio::task::spawn_blocking(move || started.recv().expect("started"))
            .await
            .expect("join");
        let queued = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(QUEUE_WAIT, SMALL, || 9).await }
        });
        until(|| pool.waiting() == 1).await;
        // The queue holds one: the next is refused at once.
        assert!(matches!(
            pool.run(QUEUE_WAIT, SMALL, || 0).await,
            Err(NotRun::Busy(Busy { waited: None, .. }))
        ));
        assert_eq!(pool.refused(), 1);
        finish.send(()).expect("finish");
        assert_eq!(first.await.expect("join"), Ok(7));
        assert_eq!(queued.await.expect("join"), Ok(9));
        assert_eq!((pool.running(), pool.waiting(), pool.refused()), (0, 0, 1));
    }

    /// The thread never frees here, so the outcome does not depend on how long anything takes:
    /// the waiting review is refused once its (short) wait runs out, saying so.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_review_that_waited_too_long_is_refused() {
        let wait = Duration::from_millis(20);
        let pool = ReviewPool::new(1, 4, MEMORY, PoolMetrics::default());
        let (work, started, finish) = blocked();
        let first = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(QUEUE_WAIT, SMALL, work).await }
        });
        tokio::task::spawn_blocking(move || started.recv().expect("started"))
            .await
            .expect("join");
        let waited = pool.run(wait, SMALL, || 0).await;
        let Err(NotRun::Busy(busy)) = waited else {
            panic!("not refused: {waited:?}");
        };
        assert_eq!(
            busy,
            Busy {
                threads: 1,
                queue: 4,
                memory: MEMORY,
                waited: Some(Waited::Thread(wait)),
                // The running review's memory and the waiting one's, which took its share
                // before waiting for the thread.
                in_use: (1, 2 * SMALL.units() * MEMORY_UNIT),
            }
        );
        assert_eq!((pool.running(), pool.waiting(), pool.refused()), (1, 0, 1));
        let message = Busy {
            waited: Some(Waited::Thread(QUEUE_WAIT)),
            ..busy
        }
        .message();
        assert!(
            message.contains("this review waited 3.0 s for a review thread, all 1 being in use"),
            "{message}"
        );
        finish.send(()).expect("finish");
        assert_eq!(first.await.expect("join"), Ok(7));
    }

    #[test]
    fn the_wait_is_a_third_of_the_api_servers_timeout_at_most_3_s() {
        assert_eq!(queue_wait(None), QUEUE_WAIT);
        assert_eq!(queue_wait(Some(Duration::from_secs(10))), QUEUE_WAIT);
        assert_eq!(
            queue_wait(Some(Duration::from_secs(2))),
            Duration::from_secs(2) / 3
        );
    }

    /// A cost of `mib` MiB: objects only.
    fn cost_of_mib(mib: usize) -> Cost {
        Cost {
            body: 0,
            objects: mib * MIB / Cost::OBJECT_BYTES,
        }
    }

    #[test]
    fn the_cost_counts_every_brace_and_twice_the_body() {
        let body = br#"{"a":{"b":"{"},"c":[{},{}]}"#;
        let cost = Cost::of(body);
        assert_eq!(cost.objects, 5);
        assert_eq!(cost.bytes(), 2 * body.len() + 5 * Cost::OBJECT_BYTES);
        assert_eq!(Cost::of(b"").bytes(), 0);
        assert_eq!(Cost::of(b"").units(), 1, "every review holds a unit");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_review_that_needs_more_than_all_the_memory_is_denied_at_once() {
        let pool = ReviewPool::new(2, 4, 16 * MIB, PoolMetrics::default());
        let cost = Cost {
            body: 3_000_000,
            objects: 60_000,
        };
        let denied = pool.run(QUEUE_WAIT, cost, || 0).await;
        let Err(NotRun::TooCostly(too_costly)) = denied else {
            panic!("not denied: {denied:?}");
        };
        assert_eq!(
            too_costly.message(),
            "this review would hold about 52 MiB while it is worked on (60000 JSON objects in \
             a body of 2930 KiB), more than all reviews together may hold \
             (--review-memory-bytes=16777216); make the object smaller (a real pod is far \
             below this), or raise --review-memory-bytes together with the webhook's memory \
             limit"
        );
        // Not busy: the same review would be denied again.
        assert_eq!((pool.running(), pool.waiting(), pool.refused()), (0, 0, 0));
        // Just the whole budget runs.
        assert_eq!(pool.run(QUEUE_WAIT, cost_of_mib(16), || 1).await, Ok(1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_review_waits_for_memory_while_a_thread_is_free() {
        let pool = ReviewPool::new(2, 1, 48 * MIB, PoolMetrics::default());
        let (work, started, finish) = blocked();
        let first = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(QUEUE_WAIT, cost_of_mib(30), work).await }
        });
        tokio::task::spawn_blocking(move || started.recv().expect("started"))
            .await
            .expect("join");
        let held = pool.memory_held();
        assert!(
            (29 * MIB as i64..=30 * MIB as i64).contains(&held),
            "{held}"
        );
        // A thread is free, but not 30 MiB more: the second waits in the queue.
        let second = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(QUEUE_WAIT, cost_of_mib(30), || 2).await }
        });
        until(|| pool.waiting() == 1).await;
        assert_eq!(pool.running(), 1);
        // A small one meanwhile finds the queue full and is refused at once, saying what is held:
        // the waiting review has been handed the 18 MiB left.
        let refused = pool.run(QUEUE_WAIT, SMALL, || 0).await;
        let Err(NotRun::Busy(busy)) = refused else {
            panic!("not refused: {refused:?}");
        };
        assert!(
            busy.message().starts_with(
                "the webhook is busy: review threads in use: 1 of 2, review memory held or \
                 waited for: 48 of 48 MiB, reviews waiting: 1 of 1"
            ),
            "{}",
            busy.message()
        );
        finish.send(()).expect("finish");
        assert_eq!(first.await.expect("join"), Ok(7));
        assert_eq!(second.await.expect("join"), Ok(2));
        assert_eq!((pool.running(), pool.waiting(), pool.refused()), (0, 0, 1));
        assert_eq!(pool.memory_held(), 0);
    }

    /// The memory never frees here: the waiting review is refused once its wait runs out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_review_that_waited_too_long_for_memory_is_refused() {
        let wait = Duration::from_millis(20);
        let pool = ReviewPool::new(2, 1, 48 * MIB, PoolMetrics::default());
        let (work, started, finish) = blocked();
        let first = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(QUEUE_WAIT, cost_of_mib(40), work).await }
        });
        tokio::task::spawn_blocking(move || started.recv().expect("started"))
            .await
            .expect("join");
        let waited = pool.run(wait, cost_of_mib(20), || 0).await;
        let Err(NotRun::Busy(busy)) = waited else {
            panic!("not refused: {waited:?}");
        };
        assert_eq!(
            busy.waited,
            Some(Waited::Memory(wait, cost_of_mib(20).bytes()))
        );
        let message = Busy {
            waited: Some(Waited::Memory(QUEUE_WAIT, cost_of_mib(20).bytes())),
            ..busy
        }
        .message();
        assert!(
            message.starts_with(
                "the webhook is busy: this review waited 3.0 s for the 20 MiB of memory it \
                 needs, the reviews in progress holding the rest of 48 MiB"
            ),
            "{message}"
        );
        assert_eq!((pool.running(), pool.waiting(), pool.refused()), (1, 0, 1));
        finish.send(()).expect("finish");
        assert_eq!(first.await.expect("join"), Ok(7));
        assert_eq!(pool.memory_held(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_review_gives_its_thread_back() {
        let pool = ReviewPool::new(1, 0, MEMORY, PoolMetrics::default());
        let failed = pool
            .run(QUEUE_WAIT, SMALL, || -> u32 { panic!("a bug") })
            .await;
        assert_eq!(failed, Err(NotRun::Panicked));
        assert_eq!(pool.running(), 0);
        assert_eq!(pool.run(QUEUE_WAIT, SMALL, || 3).await, Ok(3));
    }
}
