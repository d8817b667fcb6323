//! Prometheus metrics of the webhook, served as text on the plain-HTTP metrics listener.
//!
//! Every label value is a `&'static str` from a fixed set, so nothing a request carries (and no
//! annotation value in particular) can reach a label or grow the number of series.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::encode`]'s output (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The kinds the webhook is registered for; any other kind is counted as `other`.
const KNOWN_KINDS: &[&str] = &[
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReviewLabels {
    decision: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// What the review pool tells (`review_pool`): handles onto series of [`Metrics`], or standalone
/// ones (`default`) for a pool that is not served.
#[derive(Clone, Debug, Default)]
pub struct PoolMetrics {
    /// Reviews running on a review thread now.
    pub running: Gauge,
    /// Reviews waiting for a review thread now.
    pub waiting: Gauge,
    /// Reviews refused because every thread (or the review memory) was in use and the queue
    /// full, or the wait ran out.
    pub refused: Counter,
    /// Bytes of memory the running reviews are expected to hold (their [`Cost`]s).
    ///
    /// [`Cost`]: super::review_pool::Cost
    pub memory: Gauge,
}

/// What the SecretProviderClass cache tells (`serve::classes`); cloning shares the series.
#[derive(Clone, Debug, Default)]
pub struct ClassMetrics {
    /// About how many bytes of memory the cached classes hold.
    pub cache_bytes: Gauge,
    pub cache_classes: Gauge,
    /// Classes derived into what they give the injector (once per class version).
    pub derivations: Counter,
    /// Classes (or versions of one) not kept because the cache was full (--class-cache-bytes).
    pub left_out: Counter,
    /// Live GETs (and lookups answered by a remembered failure), by result.
    gets: Family<ResultLabels, Counter>,
}

impl ClassMetrics {
    /// The results a GET is counted under.
    pub const RESULTS: [&'static str; 6] = [
        "found",
        "missing",
        "error",
        "timeout",
        "other_object",
        "remembered",
    ];

    pub fn observe_get(&self, result: &'static str) {
        self.gets.get_or_create(&ResultLabels { result }).inc();
    }
}

/// The webhook's metrics and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pool: PoolMetrics,
    pub classes: ClassMetrics,
    reviews: Family<ReviewLabels, Counter>,
    review_duration: Histogram,
    rejected_requests: Family<ReasonLabels, Counter>,
    certificate_reloads: Family<ResultLabels, Counter>,
    certificate_expiry: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("secrets_injector");
        let reviews = Family::<ReviewLabels, Counter>::default();
        registry.register(
            "admission_reviews",
            "AdmissionReviews answered, by decision and object kind",
            reviews.clone(),
        );
        // 0.25 ms to about 4 s: a review is pure computation, so the low buckets matter.
        let review_duration = Histogram::new(exponential_buckets(0.000_25, 2.0, 15));
        registry.register(
            "admission_review_duration_seconds",
            "Time to read, decide and answer one AdmissionReview",
            review_duration.clone(),
        );
        let rejected_requests = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "rejected_requests",
            "Requests to /mutate answered with an HTTP error, by reason",
            rejected_requests.clone(),
        );
        let certificate_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "certificate_reloads",
            "Changed serving certificate files seen, by whether the new pair was taken",
            certificate_reloads.clone(),
        );
        // Both series exist from the start, so an alert on their rate sees a zero, not nothing.
        for result in ["success", "failure"] {
            certificate_reloads
                .get_or_create(&ResultLabels { result })
                .inc_by(0);
        }
        let certificate_expiry = Gauge::default();
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "notAfter of the certificate being served, in Unix seconds",
            certificate_expiry.clone(),
        );
        let pool = PoolMetrics::default();
        registry.register(
            "reviews_in_progress",
            "Reviews running on a review thread (--review-threads) now",
            pool.running.clone(),
        );
        registry.register(
            "reviews_waiting",
            "Reviews waiting for a review thread (--review-queue) now",
            pool.waiting.clone(),
        );
        registry.register(
            "reviews_refused_busy",
            "Reviews refused because every review thread (or the review memory) was in use and \
             the queue full, or the wait for them ran out",
            pool.refused.clone(),
        );
        registry.register(
            "review_memory_bytes",
            "Bytes of memory the running reviews are expected to hold (--review-memory-bytes \
             bounds it)",
            pool.memory.clone(),
        );
        let classes = ClassMetrics::default();
        registry.register(
            "class_cache_bytes",
            "About how many bytes of memory the SecretProviderClass cache holds",
            classes.cache_bytes.clone(),
        );
        registry.register(
            "class_cache_classes",
            "SecretProviderClasses in the cache",
            classes.cache_classes.clone(),
        );
        registry.register(
            "class_derivations",
            "SecretProviderClasses checked into what they give the injector (once per version)",
            classes.derivations.clone(),
        );
        registry.register(
            "class_cache_left_out",
            "SecretProviderClasses (or versions of one) not kept because the cache was full \
             (--class-cache-bytes); pods that use them are served by live GETs",
            classes.left_out.clone(),
        );
        registry.register(
            "class_gets",
            "Live GETs of SecretProviderClasses missing from the cache, by result",
            classes.gets.clone(),
        );
        for result in ClassMetrics::RESULTS {
            classes
                .gets
                .get_or_create(&ResultLabels { result })
                .inc_by(0);
        }
        Self {
            registry,
            pool,
            classes,
            reviews,
            review_duration,
            rejected_requests,
            certificate_reloads,
            certificate_expiry,
        }
    }

    /// The review pool's series.
    pub fn pool(&self) -> PoolMetrics {
        self.pool.clone()
    }

    /// Counts one answered review. `kind` is the object's kind as sent; unknown kinds are `other`.
    pub fn observe_review(&self, kind: &str, decision: &'static str, elapsed: Duration) {
        self.reviews
            .get_or_create(&ReviewLabels {
                decision,
                kind: kind_label(kind),
            })
            .inc();
        self.review_duration.observe(elapsed.as_secs_f64());
    }

    /// Counts one request to /mutate that got an HTTP error instead of a review.
    pub fn observe_rejected_request(&self, reason: &'static str) {
        self.rejected_requests
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Counts one attempt to take changed certificate files.
    pub fn observe_certificate_reload(&self, taken: bool) {
        let result = if taken { "success" } else { "failure" };
        self.certificate_reloads
            .get_or_create(&ResultLabels { result })
            .inc();
    }

    /// Records the notAfter (Unix seconds) of the certificate now served.
    pub fn set_certificate_expiry(&self, not_after_unix: i64) {
        self.certificate_expiry.set(not_after_unix);
    }

    /// The metrics in OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// The metric label for an object kind: one of the kinds the webhook handles, else `other`.
pub fn kind_label(kind: &str) -> &'static str {
    KNOWN_KINDS
        .iter()
        .find(|known| **known == kind)
        .copied()
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_outside_the_known_set_share_one_label() {
        assert_eq!(kind_label("Pod"), "Pod");
        assert_eq!(kind_label("CronJob"), "CronJob");
        assert_eq!(kind_label("pod"), "other");
        assert_eq!(kind_label("MyCustomKind-with-a-long-name"), "other");
    }

    #[test]
    fn encodes_every_metric_with_its_labels() {
        let metrics = Metrics::new();
        metrics.observe_review("Pod", "mutated", Duration::from_millis(2));
        metrics.observe_review("Pod", "mutated", Duration::from_millis(3));
        metrics.observe_review("Widget", "allowed", Duration::from_micros(100));
        metrics.observe_rejected_request("too_large");
        metrics.observe_certificate_reload(true);
        metrics.observe_certificate_reload(false);
        metrics.set_certificate_expiry(1_900_000_000);
        let pool = metrics.pool();
        pool.running.inc();
        pool.waiting.set(3);
        pool.refused.inc();
        pool.memory.set(4096);
        let text = metrics.encode();
        for line in [
            "secrets_injector_admission_reviews_total{decision=\"mutated\",kind=\"Pod\"} 2",
            "secrets_injector_admission_reviews_total{decision=\"allowed\",kind=\"other\"} 1",
            "secrets_injector_admission_review_duration_seconds_count 3",
            "secrets_injector_rejected_requests_total{reason=\"too_large\"} 1",
            "secrets_injector_certificate_reloads_total{result=\"success\"} 1",
            "secrets_injector_certificate_reloads_total{result=\"failure\"} 1",
            "secrets_injector_certificate_expiry_timestamp_seconds 1900000000",
            "secrets_injector_reviews_in_progress 1",
            "secrets_injector_reviews_waiting 3",
            "secrets_injector_reviews_refused_busy_total 1",
            "secrets_injector_review_memory_bytes 4096",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
