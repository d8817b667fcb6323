//! `webhook serve`: the HTTPS transport around `admission::respond`, the health endpoints, the
//! metrics listener and graceful shutdown; `review_pool` runs the reviews' CPU work off the async
//! workers, `tls` reloads the serving certificate, `metrics` and `telemetry` (with `log_buffer`,
//! its non-blocking writer) are what the server tells about itself.

pub mod classes;
pub(crate) mod log_buffer;
pub(crate) mod metrics;
pub mod review_pool;
pub mod telemetry;
pub(crate) mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_server::Handle;
use axum_server::accept::NoDelayAcceptor;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use http_body_util::BodyExt;
use rustls::crypto::CryptoProvider;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::admission;
use crate::mutation::MutationConfig;
use crate::{Error, Result};
use metrics::Metrics;
use review_pool::{NotRun, ReviewPool};
use telemetry::LogFormat;
use tls::{CertPaths, Reloader, Resolver};

/// How long a client may take for the TLS handshake, for a request's headers and for its body:
/// the API server sends a review in milliseconds, so this only bounds slow or stalled clients.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the certificate files are compared with what is served.
const CERT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// `webhook serve` flags (the mutation flags are shared with `webhook inject`).
#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    /// Address of the HTTPS listener (/mutate, /healthz, /readyz).
    #[arg(long, env = "SECRETS_INJECTOR_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// PEM certificate chain served on the HTTPS listener; re-read when it changes.
    #[arg(long, env = "SECRETS_INJECTOR_TLS_CERT")]
    pub tls_cert: PathBuf,
    /// PEM private key of the certificate; re-read when it changes.
    #[arg(long, env = "SECRETS_INJECTOR_TLS_KEY")]
    pub tls_key: PathBuf,
    /// Address of the plain-HTTP metrics listener (/metrics).
    #[arg(
        long,
        env = "SECRETS_INJECTOR_METRICS_LISTEN",
        default_value = "0.0.0.0:9090"
    )]
    pub metrics_listen: SocketAddr,
    /// Largest AdmissionReview body accepted, in bytes; a larger one gets HTTP 413.
    #[arg(long, env = "SECRETS_INJECTOR_MAX_BODY_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Bytes of request bodies held at once, all requests together; a quarter of it is kept for
    /// bodies up to 256 KiB (every real review), so large bodies cannot crowd them out. A body
    /// that does not fit gets HTTP 503 with Retry-After. At least 4/3 of --max-body-bytes.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_MAX_BODY_BYTES_IN_FLIGHT",
        default_value_t = 16 * 1024 * 1024
    )]
    pub max_body_bytes_in_flight: usize,
    /// Reviews worked on at once, each on a thread of its own, never on the threads that answer
    /// /healthz, /readyz and /metrics. A review takes well under a millisecond; each running
    /// review holds a few times its body in memory, hence a small number.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_REVIEW_THREADS",
        default_value_t = 2,
        value_parser = clap::value_parser!(u16).range(1..=64)
    )]
    pub review_threads: u16,
    /// Reviews that may wait for a review thread (a burst of pod creations), each for a third of
    /// the API server's timeout, 3 s at most; beyond that a review is denied at once saying the
    /// webhook is busy. A waiting review holds only its body (--max-body-bytes-in-flight bounds
    /// those).
    #[arg(
        long,
        env = "SECRETS_INJECTOR_REVIEW_QUEUE",
        default_value_t = 256,
        value_parser = clap::value_parser!(u16).range(0..=4096)
    )]
    pub review_queue: u16,
    /// Bytes of memory the reviews being worked on may hold together, as expected from their
    /// bodies (about 0.8 KiB per JSON object and twice the body; a real pod review a few
    /// hundred KiB at most). A review that would go past it waits in the queue; one that needs
    /// more than all of it is denied. With --max-body-bytes-in-flight, --class-cache-bytes and
    /// the process's own 20 MiB or so, it must fit the webhook's memory limit.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_REVIEW_MEMORY_BYTES",
        default_value_t = 48 * 1024 * 1024,
        value_parser = clap::value_parser!(u64).range(1024 * 1024..=1 << 40)
    )]
    pub review_memory_bytes: u64,
    /// Log format.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_LOG_FORMAT",
        value_enum,
        default_value = "json"
    )]
    pub log_format: LogFormat,
    /// Seconds between SIGTERM (when /readyz turns 503) and closing the listener, so the
    /// endpoints drop this pod before it stops accepting.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_SHUTDOWN_DELAY_SECONDS",
        default_value_t = 5
    )]
    pub shutdown_delay_seconds: u64,
    /// Seconds the reviews in flight get to finish once the listener is closed.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_SHUTDOWN_TIMEOUT_SECONDS",
        default_value_t = 20
    )]
    pub shutdown_timeout_seconds: u64,
    /// Kubeconfig for reading SecretProviderClasses (--secret-provider-classes); the pod's
    /// service account (in-cluster) when absent.
    #[arg(long, env = "SECRETS_INJECTOR_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Time one review may spend on live GETs of the SecretProviderClasses its pod names that
    /// are not in the cache (one GET per distinct name, all at once): well under the 10 s the API
    /// server gives the webhook. `500ms` or `3s`, at most 9s.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_CLASS_LOOKUP_BUDGET",
        default_value = "3s",
        value_parser = classes::parse_lookup_time
    )]
    pub class_lookup_budget: Duration,
    /// Time one live GET of a SecretProviderClass may take (within --class-lookup-budget).
    #[arg(
        long,
        env = "SECRETS_INJECTOR_CLASS_GET_TIMEOUT",
        default_value = "2s",
        value_parser = classes::parse_lookup_time
    )]
    pub class_get_timeout: Duration,
    /// Largest `spec.parameters` of a SecretProviderClass kept, in bytes of names and values; a
    /// larger class is kept as a marker, and a pod that uses it is denied as too large.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_CLASS_MAX_BYTES",
        default_value_t = 128 * 1024
    )]
    pub class_max_bytes: usize,
    /// Bytes the SecretProviderClass cache holds at most, all classes together (anyone who may
    /// create a class in any namespace feeds it). A class that does not fit is not kept: a pod
    /// that uses it is served by a live GET of that class, as if the cache had not seen it yet.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_CLASS_CACHE_BYTES",
        default_value_t = 16 * 1024 * 1024
    )]
    pub class_cache_bytes: usize,
    /// SecretProviderClasses per page when the cache lists them: a page is read whole before it
    /// is parsed, and a class may be as large as the API server stores (about 1.5 MB), so small
    /// pages keep a hostile namespace's classes from pushing the webhook past its memory limit.
    #[arg(
        long,
        env = "SECRETS_INJECTOR_CLASS_LIST_PAGE_SIZE",
        default_value_t = 2,
        value_parser = clap::value_parser!(u32).range(1..=500)
    )]
    pub class_list_page_size: u32,
    #[command(flatten)]
    pub mutation: MutationConfig,
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    mutation: Arc<MutationConfig>,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    max_body_bytes: usize,
    budget: BodyBudget,
    reviews: ReviewPool,
    /// The SecretProviderClass cache, when classes are read: ready once listed.
    classes: Option<Arc<classes::ClusterClasses>>,
}

impl AppState {
    pub fn new(
        mutation: MutationConfig,
        metrics: Arc<Metrics>,
        max_body_bytes: usize,
        budget: BodyBudget,
        reviews: ReviewPool,
    ) -> Self {
        Self {
            mutation: Arc::new(mutation),
            metrics,
            ready: Arc::new(AtomicBool::new(false)),
            max_body_bytes,
            budget,
            reviews,
            classes: None,
        }
    }

    /// Readiness waits for this cache's first list too.
    pub fn with_classes(mut self, classes: Arc<classes::ClusterClasses>) -> Self {
        self.classes = Some(classes);
        self
    }

    /// Whether /readyz answers 200.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}

/// The routes of the HTTPS listener.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

/// The routes of the metrics listener.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = Arc::clone(&metrics);
            async move {
                (
                    [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
                    metrics.encode(),
                )
            }
        }),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if state.classes.as_ref().is_some_and(|c| !c.is_ready()) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the first list of SecretProviderClasses\n",
        )
    } else if state.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    }
}

/// Bodies up to this size draw on the share of the in-flight budget kept for them; a real pod
/// review is about 7 KiB, and the largest seen in practice about 100 KiB.
pub const SMALL_BODY_BYTES: usize = 256 * 1024;
/// The budget is counted in KiB so that any size fits tokio's `u32` permit counts.
const BUDGET_UNIT: usize = 1024;

/// The memory all request bodies may hold at once, in two pools: a quarter for bodies up to
/// [`SMALL_BODY_BYTES`] and the rest for larger ones, so a burst of large bodies is refused
/// while the reviews the API server really sends are still read.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    small: Arc<Semaphore>,
    large: Arc<Semaphore>,
}

impl BodyBudget {
    /// Checks that a body of `max_body_bytes` fits its pool (else it could never be read).
    pub fn new(in_flight: usize, max_body_bytes: usize) -> Result<Self> {
        let minimum = Self::minimum(max_body_bytes);
        if in_flight < minimum {
            return Err(Error::Serve(format!(
                "--max-body-bytes-in-flight {in_flight} is too small for --max-body-bytes \
                 {max_body_bytes}: a quarter of it is kept for bodies up to {SMALL_BODY_BYTES} \
                 bytes and the rest must hold one body of --max-body-bytes; set it to at least \
                 {minimum}"
            )));
        }
        let small = in_flight / 4;
        let permits = |bytes: usize| bytes.div_ceil(BUDGET_UNIT).min(Semaphore::MAX_PERMITS);
        Ok(Self {
            small: Arc::new(Semaphore::new(permits(small))),
            large: Arc::new(Semaphore::new(permits(in_flight - small))),
        })
    }

    /// The smallest budget whose large pool holds one body of `max_body_bytes` and whose small
    /// pool holds one body of up to [`SMALL_BODY_BYTES`].
    pub fn minimum(max_body_bytes: usize) -> usize {
        max_body_bytes
            .saturating_mul(4)
            .div_ceil(3)
            .max(4 * max_body_bytes.min(SMALL_BODY_BYTES))
    }
}

/// The part of the budget one body holds; given back when dropped.
#[derive(Debug)]
pub struct BodyClaim {
    budget: BodyBudget,
    permit: Option<OwnedSemaphorePermit>,
    large: bool,
}

impl BodyClaim {
    fn new(budget: &BodyBudget) -> Self {
        Self {
            budget: budget.clone(),
            permit: None,
            large: false,
        }
    }

    fn units(&self) -> usize {
        self.permit
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Holds `bytes` of the budget, or refuses at once: a body never waits while holding part
    /// of the budget, so partly received bodies cannot block each other (and each has the
    /// body deadline).
    fn grow_to(&mut self, bytes: usize) -> std::result::Result<(), BodyRejection> {
        let units = bytes.div_ceil(BUDGET_UNIT);
        if bytes > SMALL_BODY_BYTES && !self.large {
            // A body that outgrows the small pool holds its whole size in the large pool and
            // gives back what it held in the small one.
            let permit = take(&self.budget.large, units)?;
            self.permit = Some(permit);
            self.large = true;
            return Ok(());
        }
        let held = self.units();
        if units <= held {
            return Ok(());
        }
        let pool = if self.large {
            &self.budget.large
        } else {
            &self.budget.small
        };
        let more = take(pool, units - held)?;
        match &mut self.permit {
            Some(permit) => permit.merge(more),
            None => self.permit = Some(more),
        }
        Ok(())
    }
}

fn take(
    pool: &Arc<Semaphore>,
    units: usize,
) -> std::result::Result<OwnedSemaphorePermit, BodyRejection> {
    let units = u32::try_from(units).map_err(|_| BodyRejection::Busy)?;
    Arc::clone(pool)
        .try_acquire_many_owned(units)
        .map_err(|_| BodyRejection::Busy)
}

/// Why a request body was not read into a review.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyRejection {
    TooLarge { limit: usize },
    Busy,
    TimedOut,
    Broken,
}

impl BodyRejection {
    fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::TimedOut => StatusCode::REQUEST_TIMEOUT,
            Self::Broken => StatusCode::BAD_REQUEST,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Busy => "bodies_in_flight",
            Self::TimedOut => "body_timeout",
            Self::Broken => "body_error",
        }
    }

    fn message(&self) -> String {
        match self {
            Self::TooLarge { limit } => format!("request body is larger than {limit} bytes\n"),
            Self::Busy => "too many request bodies are being read at once \
                           (--max-body-bytes-in-flight); retry shortly\n"
                .to_owned(),
            Self::TimedOut => "request body not received in time\n".to_owned(),
            Self::Broken => "request body could not be read\n".to_owned(),
        }
    }

    fn into_response(self) -> Response {
        let mut response = text(self.status(), self.message());
        if self == Self::Busy {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// Reads the whole body, at most `limit` bytes, within `deadline` in total (a per-read timeout
/// would let a client trickle a byte at a time forever). The buffer grows as data arrives (a
/// declared length is only a claim on the budget), and the returned claim holds the body's
/// share of `budget` until dropped.
pub async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    budget: &BodyBudget,
    deadline: Duration,
) -> std::result::Result<(Bytes, BodyClaim), BodyRejection> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(BodyRejection::TooLarge { limit });
    }
    // At most `limit`, checked above.
    let declared = declared.map(|len| len as usize);
    let mut claim = BodyClaim::new(budget);
    // Claiming the declared length first refuses a body that cannot fit before reading it.
    claim.grow_to(declared.unwrap_or(0))?;
    let collect = async {
        let mut body = body;
        let mut buf = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| BodyRejection::Broken)?;
            if let Ok(data) = frame.into_data() {
                let needed = buf.len() + data.len();
                if needed > limit {
                    return Err(BodyRejection::TooLarge { limit });
                }
                if needed > buf.capacity() {
                    // Doubling, but never past the declared length or the limit: the claim
                    // covers what is allocated, not only what was received.
                    let capacity = needed
                        .max(buf.capacity() * 2)
                        .max(8 * 1024)
                        .min(declared.unwrap_or(limit).max(needed));
                    claim.grow_to(capacity)?;
                    buf.reserve_exact(capacity - buf.len());
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(Bytes::from(buf))
    };
    let bytes = tokio::time::timeout(deadline, collect)
        .await
        .map_err(|_| BodyRejection::TimedOut)??;
    Ok((bytes, claim))
}

fn text(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

async fn mutate(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let (bytes, claim) = match read_body(
        &headers,
        body,
        state.max_body_bytes,
        &state.budget,
        REQUEST_TIMEOUT,
    )
    .await
    {
        Ok(read) => read,
        Err(rejection) => {
            state.metrics.observe_rejected_request(rejection.reason());
            tracing::warn!(reason = rejection.reason(), "request to /mutate rejected");
            return rejection.into_response();
        }
    };
    // What a refused review is answered from (the uid is at the start of the body); a copy, so
    // the body's memory goes with its claim.
    let head = bytes[..bytes.len().min(admission::PEEK_BYTES)].to_vec();
    let wait = review_pool::queue_wait(api_server_timeout(uri.query()));
    let cost = review_pool::Cost::of(&bytes);
    let refused = |not_run: NotRun| match not_run {
        NotRun::Busy(busy) => busy_answer(&state, &head, &busy),
        NotRun::TooCostly(too_costly) => too_costly_answer(&state, &head, &too_costly),
        NotRun::Panicked => {
            state.metrics.observe_rejected_request("review_failed");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the review failed; see the webhook's log\n".to_owned(),
            )
        }
    };
    // Everything that costs CPU in proportion to the body runs on a review thread. The one async
    // step a review needs, looking up the SecretProviderClasses its pod names on the API server,
    // runs between two such steps and holds no thread: the first reads the names, the second
    // decides with their answers.
    let mutation = match &state.classes {
        None => Arc::clone(&state.mutation),
        Some(classes) => {
            let names = {
                let (state, bytes) = (state.clone(), bytes.clone());
                move || class_names(&state, &bytes)
            };
            match state.reviews.run(wait, cost, names).await {
                Ok(None) => Arc::clone(&state.mutation),
                Ok(Some(names)) => {
                    let review = classes.resolve(names).await;
                    let mut mutation = (*state.mutation).clone();
                    mutation.classes = crate::mutation::Classes(Arc::new(review));
                    Arc::new(mutation)
                }
                Err(not_run) => return refused(not_run),
            }
        }
    };
    let work = {
        let state = state.clone();
        move || {
            // The claim is held until the answer is built, as long as the body is: if the
            // client goes away, the work still holds both until it ends.
            let _claim = claim;
            review(&state, &bytes, &mutation, started)
        }
    };
    // One wait for the whole review: what the first step (and the lookup) used is not waited
    // again, so the review stays within the third of the API server's time set aside for it.
    let wait = wait.saturating_sub(started.elapsed());
    match state.reviews.run(wait, cost, work).await {
        Ok(response) => response,
        Err(not_run) => refused(not_run),
    }
}

/// The SecretProviderClasses a review's pod names, on a review thread (`None`: none, or a body
/// the review itself will refuse).
fn class_names(state: &AppState, bytes: &[u8]) -> Option<crate::mutation::ClassNames> {
    let specs = state.mutation.csi_volumes == crate::mutation::CsiVolumes::Rewrite;
    let request = admission::parse_with(bytes, specs).ok()?;
    let names = admission::class_names(&request, &state.mutation);
    (!names.is_empty()).then_some(names)
}

/// The time the API server gives the review: its `timeout` parameter, which it writes as Go
/// writes a duration of whole seconds under a minute (`10s`, the webhook's `timeoutSeconds`).
fn api_server_timeout(query: Option<&str>) -> Option<Duration> {
    let value = query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("timeout="))?;
    let seconds: u64 = value.strip_suffix('s')?.parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// One review, on a review thread: the body read as a review, the decision, the answer.
fn review(state: &AppState, bytes: &[u8], mutation: &MutationConfig, started: Instant) -> Response {
    // CSI volumes may be in any pod: every pod's spec is read when they are rewritten.
    let specs = state.mutation.csi_volumes == crate::mutation::CsiVolumes::Rewrite;
    let request = match admission::parse_with(bytes, specs) {
        Ok(request) => request,
        Err(reason) => {
            state
                .metrics
                .observe_rejected_request("not_admission_review");
            tracing::warn!(reason = %reason, "request to /mutate rejected");
            return text(StatusCode::BAD_REQUEST, format!("{reason}\n"));
        }
    };
    let outcome = admission::respond(&request, mutation);
    let elapsed = started.elapsed();
    state
        .metrics
        .observe_review(&request.kind.kind, outcome.verdict.as_str(), elapsed);
    tracing::info!(
        uid = %request.uid,
        kind = %request.kind.kind,
        namespace = request.namespace.as_deref().unwrap_or(""),
        name = %outcome.name,
        operation = request.operation.as_str(),
        decision = outcome.verdict.as_str(),
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "review"
    );
    (
        [(header::CONTENT_TYPE, "application/json")],
        outcome.response.to_review_json(),
    )
        .into_response()
}

/// The answer to a review no thread was free for: a denial (code 429) carrying the request's
/// uid and saying why, which the API server shows to whoever created the object. A 503 would
/// end the same way under `failurePolicy: Fail`, as the API server's terse "failed calling
/// webhook", and under `Ignore` would admit the pod without its secrets. Only a body whose uid
/// is not at its start (not what the API server sends) gets a 503 with Retry-After.
fn busy_answer(state: &AppState, head: &[u8], busy: &review_pool::Busy) -> Response {
    let message = busy.message();
    let Some(uid) = admission::peek_uid(head) else {
        state.metrics.observe_rejected_request("busy");
        tracing::warn!(reason = "busy", "request to /mutate rejected");
        let mut response = text(StatusCode::SERVICE_UNAVAILABLE, format!("{message}\n"));
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    tracing::warn!(
        uid = %uid,
        threads = busy.threads,
        queue = busy.queue,
        waited_for = match busy.waited {
            None => "",
            Some(review_pool::Waited::Thread(_)) => "thread",
            Some(review_pool::Waited::Memory(..)) => "memory",
        },
        "review denied: the webhook is busy"
    );
    (
        [(header::CONTENT_TYPE, "application/json")],
        admission::Response::busy(&uid, message).to_review_json(),
    )
        .into_response()
}

/// The answer to a review that alone would hold more than the whole review memory: a denial
/// saying so (an HTTP 413 when the body has no uid to answer with).
fn too_costly_answer(
    state: &AppState,
    head: &[u8],
    too_costly: &review_pool::TooCostly,
) -> Response {
    state.metrics.observe_rejected_request("review_memory");
    let message = too_costly.message();
    let Some(uid) = admission::peek_uid(head) else {
        tracing::warn!(reason = "review_memory", "request to /mutate rejected");
        return text(StatusCode::PAYLOAD_TOO_LARGE, format!("{message}\n"));
    };
    tracing::warn!(
        uid = %uid,
        expected_bytes = too_costly.cost.bytes(),
        objects = too_costly.cost.objects,
        "review denied: it would hold more than the review memory"
    );
    (
        [(header::CONTENT_TYPE, "application/json")],
        admission::Response::too_costly(&uid, message).to_review_json(),
    )
        .into_response()
}

/// Serves until SIGTERM or SIGINT, then drains. Startup errors (certificate files, listeners) are
/// returned before anything is served.
pub async fn serve(args: ServeArgs, provider: Arc<CryptoProvider>) -> Result<()> {
    let budget = BodyBudget::new(args.max_body_bytes_in_flight, args.max_body_bytes)?;
    let metrics = Arc::new(Metrics::new());
    let paths = CertPaths {
        cert: args.tls_cert.clone(),
        key: args.tls_key.clone(),
    };
    let (serving, seen) = tls::load(&paths, &provider)?;
    metrics.set_certificate_expiry(serving.not_after);
    tls::warn_if_expired(&serving);
    tracing::info!(
        cert = %paths.cert.display(),
        subject = %serving.subject,
        not_after = %serving.not_after_text,
        not_after_unix = serving.not_after,
        "loaded the serving certificate"
    );
    let resolver = Arc::new(Resolver::new(Arc::clone(&serving.certified)));
    let tls_config = tls::server_config(Arc::clone(&resolver), Arc::clone(&provider))?;
    let reloader = Reloader::new(paths, Arc::clone(&provider), resolver, seen);
    let reload_task = tokio::spawn(reloader.run(CERT_POLL_INTERVAL, Arc::clone(&metrics)));

    let listener = bind(args.listen, "--listen").await?;
    let metrics_listener = bind(args.metrics_listen, "--metrics-listen").await?;
    let addr = local_addr(&listener)?;
    let metrics_addr = local_addr(&metrics_listener)?;

    let mut mutation = args.mutation;
    let cache = if mutation.classes_enabled() {
        let bounds = classes::Bounds {
            lookup_budget: args.class_lookup_budget,
            get_timeout: args.class_get_timeout,
            max_class_bytes: args.class_max_bytes,
            max_cache_bytes: args.class_cache_bytes,
            page_size: args.class_list_page_size,
        };
        let client = classes::client(args.kubeconfig.as_deref()).await?;
        let cache = classes::ClusterClasses::start(client, bounds, metrics.classes.clone());
        mutation.classes = crate::mutation::Classes(cache.clone());
        Some(cache)
    } else {
        None
    };
    let reviews = ReviewPool::new(
        usize::from(args.review_threads),
        usize::from(args.review_queue),
        usize::try_from(args.review_memory_bytes).unwrap_or(usize::MAX),
        metrics.pool(),
    );
    let mut state = AppState::new(
        mutation,
        Arc::clone(&metrics),
        args.max_body_bytes,
        budget,
        reviews,
    );
    if let Some(cache) = cache {
        state = state.with_classes(cache);
    }
    let handle: Handle<SocketAddr> = Handle::new();
    // Without TCP_NODELAY a response written in two segments can wait for a delayed ACK.
    let acceptor = RustlsAcceptor::new(RustlsConfig::from_config(Arc::new(tls_config)))
        .handshake_timeout(REQUEST_TIMEOUT)
        .acceptor(NoDelayAcceptor::new());
    let mut server = axum_server::Server::from_listener(listener)
        .acceptor(acceptor)
        .handle(handle.clone())
        .first_request_timeout(REQUEST_TIMEOUT);
    server
        .http_builder()
        .http1()
        .header_read_timeout(REQUEST_TIMEOUT);
    let app = router(state.clone());
    let mut https = tokio::spawn(server.serve(app.into_make_service()));

    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics_server = tokio::spawn(
        axum::serve(metrics_listener, metrics_router(Arc::clone(&metrics)))
            .with_graceful_shutdown(async {
                let _ = metrics_stopped.await;
            })
            .into_future(),
    );

    state.set_ready(true);
    tracing::info!(addr = %addr, metrics_addr = %metrics_addr, "serving");

    tokio::select! {
        signal = shutdown_signal() => signal?,
        // The listener only stops by itself on an error: report it rather than wait for a signal.
        stopped = &mut https => {
            let reason = match stopped {
                Ok(Ok(())) => "stopped".to_owned(),
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            return Err(Error::Serve(format!("HTTPS listener on {addr}: {reason}")));
        }
    }
    state.set_ready(false);
    tracing::info!(
        delay_seconds = args.shutdown_delay_seconds,
        "shutdown requested; readiness is now failing"
    );
    tokio::time::sleep(Duration::from_secs(args.shutdown_delay_seconds)).await;
    tracing::info!(
        in_flight_connections = handle.connection_count(),
        "no longer accepting connections; finishing the reviews in flight"
    );
    handle.graceful_shutdown(Some(Duration::from_secs(args.shutdown_timeout_seconds)));
    let served = https
        .await
        .map_err(|e| Error::Serve(format!("HTTPS listener task: {e}")))?;
    reload_task.abort();
    let _ = stop_metrics.send(());
    let metrics_served = metrics_server
        .await
        .map_err(|e| Error::Serve(format!("metrics listener task: {e}")))?;
    served.map_err(|e| Error::Serve(format!("HTTPS listener on {addr}: {e}")))?;
    metrics_served.map_err(|e| Error::Serve(format!("metrics listener on {metrics_addr}: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}

async fn bind(addr: SocketAddr, flag: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Serve(format!("{flag} {addr}: cannot listen: {e}")))
}

fn local_addr(listener: &tokio::net::TcpListener) -> Result<SocketAddr> {
    listener
        .local_addr()
        .map_err(|e| Error::Serve(format!("listener address: {e}")))
}

/// Resolves on the first SIGTERM (what the kubelet sends) or SIGINT.
async fn shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Error::Serve(format!("cannot handle SIGTERM: {e}")))?;
    let mut int = signal(SignalKind::interrupt())
        .map_err(|e| Error::Serve(format!("cannot handle SIGINT: {e}")))?;
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "received signal");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_length: Option<usize>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(len) = content_length {
            headers.insert(header::CONTENT_LENGTH, len.into());
        }
        headers
    }

    fn budget() -> BodyBudget {
        BodyBudget::new(32 * 1024 * 1024, 8 * 1024 * 1024).expect("budget")
    }

    async fn read(
        content_length: Option<usize>,
        body: Body,
        limit: usize,
        budget: &BodyBudget,
    ) -> std::result::Result<(Bytes, BodyClaim), BodyRejection> {
        read_body(
            &headers(content_length),
            body,
            limit,
            budget,
            REQUEST_TIMEOUT,
        )
        .await
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused_declared_or_streamed() {
        let budget = budget();
        let declared = read(Some(11), Body::from("x".repeat(11)), 10, &budget).await;
        assert_eq!(
            declared.map(|(b, _)| b),
            Err(BodyRejection::TooLarge { limit: 10 })
        );
        let streamed = read(None, Body::from("x".repeat(11)), 10, &budget).await;
        assert_eq!(
            streamed.map(|(b, _)| b),
            Err(BodyRejection::TooLarge { limit: 10 })
        );
        let fits = read(None, Body::from("x".repeat(10)), 10, &budget).await;
        assert_eq!(fits.unwrap().0.len(), 10);
    }

    #[tokio::test]
    async fn a_body_that_never_ends_times_out() {
        let (_sender, stalled) = http_body_util::Channel::<Bytes>::new(1);
        let deadline = Duration::from_millis(50);
        let result = read_body(&headers(None), Body::new(stalled), 10, &budget(), deadline).await;
        assert_eq!(result.map(|(b, _)| b), Err(BodyRejection::TimedOut));
    }

    #[tokio::test]
    async fn large_bodies_beyond_the_budget_are_refused_while_small_ones_are_read() {
        const MIB: usize = 1024 * 1024;
        let budget = budget();
        let large = || Body::from(vec![b' '; 8 * MIB]);
        // The large pool (24 MiB) holds three 8 MiB bodies, declared or streamed.
        let mut held = Vec::new();
        for length in [Some(8 * MIB), None, Some(8 * MIB)] {
            held.push(read(length, large(), 8 * MIB, &budget).await.expect("fits"));
        }
        for length in [Some(8 * MIB), None] {
            let refused = read(length, large(), 8 * MIB, &budget).await;
            assert_eq!(refused.map(|(b, _)| b), Err(BodyRejection::Busy));
        }
        // Reviews of every realistic size are still read, many at once.
        for _ in 0..30 {
            let small = read(
                Some(100 * 1024),
                Body::from(vec![b' '; 100 * 1024]),
                8 * MIB,
                &budget,
            );
            held.push(small.await.expect("a review fits the small pool"));
        }
        // Given back when the bodies are dropped.
        held.clear();
        let again = read(Some(8 * MIB), large(), 8 * MIB, &budget).await;
        assert_eq!(again.expect("fits again").0.len(), 8 * MIB);
        assert_eq!(budget.large.available_permits(), 24 * 1024);
        assert_eq!(budget.small.available_permits(), 8 * 1024);
    }

    #[test]
    fn the_api_servers_timeout_is_read_from_the_query() {
        assert_eq!(
            api_server_timeout(Some("timeout=10s")),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            api_server_timeout(Some("a=b&timeout=2s")),
            Some(Duration::from_secs(2))
        );
        for other in [None, Some(""), Some("timeout=1m0s"), Some("timeout=x")] {
            assert_eq!(api_server_timeout(other), None, "{other:?}");
        }
    }

    #[test]
    fn a_budget_that_cannot_hold_one_body_of_the_limit_is_refused() {
        let error = BodyBudget::new(10 * 1024 * 1024, 8 * 1024 * 1024)
            .expect_err("too small")
            .to_string();
        assert!(
            error.contains("--max-body-bytes-in-flight 10485760")
                && error.contains("at least 11184811"),
            "{error}"
        );
        let minimum = BodyBudget::minimum(8 * 1024 * 1024);
        assert!(BodyBudget::new(minimum, 8 * 1024 * 1024).is_ok());
        assert!(BodyBudget::new(4 * 1024, 1024).is_ok());
        assert!(BodyBudget::new(4 * 1024 - 1, 1024).is_err());
    }
}
