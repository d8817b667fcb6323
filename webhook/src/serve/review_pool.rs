//! The threads that do a review's CPU work (reading the body as a review, deciding, writing the
//! answer), so that no review, however costly its pod, runs on the async runtime's workers: those
//! keep answering `/healthz`, `/readyz` and `/metrics` (and reading bodies) whatever the reviews
//! cost. A fixed number of reviews run at once; a few more may wait for a thread, for a bounded
//! time; beyond that a review is refused at once rather than left to queue past the API server's
//! timeout (10 s at most).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

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

/// Why a review was not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotRun {
    /// Every thread was busy and the queue full, or the wait for a thread ran out.
    Busy(Busy),
    /// The work panicked (a bug): the request gets an HTTP 500, the server lives on.
    Panicked,
}

/// The pool's state when it refused a review, for the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Busy {
    pub threads: usize,
    pub queue: usize,
    /// The review waited this long for a thread (`None`: refused at once, the queue was full).
    pub waited: Option<Duration>,
}

impl Busy {
    /// What the denial says: the cause, the flags, and that a retry is the fix.
    pub fn message(&self) -> String {
        let Self { threads, queue, .. } = self;
        let cause = match self.waited {
            None => format!(
                "review threads in use: {threads} of {threads}, reviews waiting for one: \
                 {queue} of {queue}"
            ),
            Some(waited) => format!(
                "this review waited {:.1} s for a review thread, all {threads} being in use",
                waited.as_secs_f64()
            ),
        };
        format!(
            "the webhook is busy: {cause} (--review-threads={threads}, \
             --review-queue={queue}); retry shortly (controllers retry by themselves); if this \
             persists, look for pods whose reviews are unusually costly, or run more replicas"
        )
    }
}

/// The pool; cheap to clone (all clones share the threads and the queue).
#[derive(Clone, Debug)]
pub struct ReviewPool {
    threads: Arc<Semaphore>,
    size: usize,
    queue: usize,
    waiting: Arc<AtomicUsize>,
    metrics: PoolMetrics,
}

impl ReviewPool {
    /// `threads` reviews at once (at least one), `queue` more waiting.
    pub fn new(threads: usize, queue: usize, metrics: PoolMetrics) -> Self {
        let threads = threads.max(1);
        Self {
            threads: Arc::new(Semaphore::new(threads)),
            size: threads,
            queue,
            waiting: Arc::new(AtomicUsize::new(0)),
            metrics,
        }
    }

    /// Runs `work` on a blocking thread of the runtime once one of the pool's threads is free
    /// (waiting at most `wait`), and returns what it returns. The thread is taken before the work is handed over and given
    /// back when the work ends, even if the caller stops waiting for it (a client that goes
    /// away does not free a thread still working for it). Async steps a review needs (a lookup
    /// on the API server) go before or between calls, holding no thread.
    pub async fn run<F, R>(&self, wait: Duration, work: F) -> Result<R, NotRun>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let permit = match Arc::clone(&self.threads).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => self.wait_for_thread(wait).await?,
        };
        let running = self.metrics.running.clone();
        let work = move || {
            running.inc();
            let _running = Decrement(running);
            // Given back when the work ends, panicking or not; declared last, so dropped first:
            // the thread is free again before the gauge says so.
            let _permit = permit;
            work()
        };
        tokio::task::spawn_blocking(work).await.map_err(|error| {
            tracing::error!(error = %error, "a review failed");
            NotRun::Panicked
        })
    }

    /// Joins the queue if it has room, and waits for a thread at most `wait`. The semaphore
    /// hands threads to waiters in order, so a review that arrives later cannot overtake them.
    async fn wait_for_thread(
        &self,
        wait: Duration,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, NotRun> {
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
        match tokio::time::timeout(wait, Arc::clone(&self.threads).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; a closed one would be a pool being dropped.
            Ok(Err(_)) | Err(_) => Err(self.refuse(Some(wait))),
        }
    }

    fn refuse(&self, waited: Option<Duration>) -> NotRun {
        self.metrics.refused.inc();
        NotRun::Busy(Busy {
            threads: self.size,
            queue: self.queue,
            waited,
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
}

struct Decrement(prometheus_client::metrics::gauge::Gauge);

impl Drop for Decrement {
    fn drop(&mut self) {
        self.0.dec();
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
        let pool = ReviewPool::new(2, 0, PoolMetrics::default());
        let mut finishers = Vec::new();
        let mut running = Vec::new();
        for _ in 0..2 {
            let (work, started, finish) = blocked();
            let pool = pool.clone();
            running.push(tokio::spawn(
                async move { pool.run(QUEUE_WAIT, work).await },
            ));
            tokio::task::spawn_blocking(move || started.recv().expect("started"))
                .await
                .expect("join");
            finishers.push(finish);
        }
        assert_eq!(pool.running(), 2);

        // No queue: the third is refused without waiting, and says why.
        let refused = pool.run(QUEUE_WAIT, || 0).await;
        let Err(NotRun::Busy(busy)) = refused else {
            panic!("not refused: {refused:?}");
        };
        assert_eq!(busy.waited, None);
        assert!(
            busy.message().starts_with(
                "the webhook is busy: review threads in use: 2 of 2, reviews waiting for \
                 one: 0 of 0 (--review-threads=2, --review-queue=0); retry shortly"
            ),
            "{}",
            busy.message()
        );
        assert_eq!(pool.refused(), 1);
        assert_eq!(pool.running(), 2);

        // One finishes: the next is admitted, and runs.
        finishers.pop().expect("finisher").send(()).expect("finish");
        until(|| pool.running() == 1).await;
        assert_eq!(pool.run(QUEUE_WAIT, || 5).await, Ok(5));
        assert_eq!(pool.refused(), 1);
        finishers.pop().expect("finisher").send(()).expect("finish");
        for task in running {
            assert_eq!(task.await.expect("join"), Ok(7));
        }
        assert_eq!(pool.running(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queued_review_runs_when_a_thread_frees_and_the_queue_is_bounded() {
        let pool = ReviewPool::new(1, 1, PoolMetrics::default());
        let (work, started, finish) = blocked();
        let first = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(QUEUE_WAIT, work).await }
        });
        tokio::task::spawn_blocking(move || started.recv().expect("started"))
            .await
            .expect("join");
        let queued = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(QUEUE_WAIT, || 9).await }
        });
        until(|| pool.waiting() == 1).await;
        // The queue holds one: the next is refused at once.
        assert!(matches!(
            pool.run(QUEUE_WAIT, || 0).await,
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
        let pool = ReviewPool::new(1, 4, PoolMetrics::default());
        let (work, started, finish) = blocked();
        let first = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(QUEUE_WAIT, work).await }
        });
        tokio::task::spawn_blocking(move || started.recv().expect("started"))
            .await
            .expect("join");
        let waited = pool.run(wait, || 0).await;
        let Err(NotRun::Busy(busy)) = waited else {
            panic!("not refused: {waited:?}");
        };
        assert_eq!(
            busy,
            Busy {
                threads: 1,
                queue: 4,
                waited: Some(wait)
            }
        );
        assert_eq!((pool.running(), pool.waiting(), pool.refused()), (1, 0, 1));
        let message = Busy {
            waited: Some(QUEUE_WAIT),
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_review_gives_its_thread_back() {
        let pool = ReviewPool::new(1, 0, PoolMetrics::default());
        let failed = pool.run(QUEUE_WAIT, || -> u32 { panic!("a bug") }).await;
        assert_eq!(failed, Err(NotRun::Panicked));
        assert_eq!(pool.running(), 0);
        assert_eq!(pool.run(QUEUE_WAIT, || 3).await, Ok(3));
    }
}
