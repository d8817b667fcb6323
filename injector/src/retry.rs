//! Retries of one AWS call: exponential backoff with full jitter, inside the run's deadline.
//!
//! The SDK's own retry is disabled on the SSM and Secrets Manager clients and this loop is the
//! only one, because failover needs to know that an object failed *after* its throttling retries
//! ran out (the SDK only hands back the last error), throttling and 5xx deserve different budgets
//! (ride out a rollout storm, but move to the failover region quickly when a region is down), no
//! sleep may run past `--deadline`, and the SDK's client-side retry quota could stop retrying in
//! the middle of a storm. The STS call behind the credentials keeps the SDK's standard retry.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Failure, Kind};

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Backoff ceiling of the first retry; doubles with each attempt.
    pub base: Duration,
    /// Largest backoff ceiling.
    pub cap: Duration,
    /// Attempts in all while the call is throttled. Parameter Store allows 40 GetParameters
    /// calls a second per account: a rollout of hundreds of pods needs tens of seconds.
    pub throttled_attempts: u32,
    /// Attempts in all on 5xx, network errors and timeouts.
    pub transient_attempts: u32,
}

impl Policy {
    pub const DEFAULT: Policy = Policy {
        base: Duration::from_millis(200),
        cap: Duration::from_secs(10),
        throttled_attempts: 15,
        transient_attempts: 5,
    };

    /// The ceiling of the backoff after `attempt` (1-based) failed attempts.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// Full jitter: uniformly between zero and the ceiling; `unit` is in [0, 1).
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        self.ceiling(attempt).mul_f64(unit.clamp(0.0, 1.0))
    }

    fn attempts_for(&self, kind: Kind) -> Option<u32> {
        match kind {
            Kind::Throttled => Some(self.throttled_attempts),
            Kind::Transient => Some(self.transient_attempts),
            Kind::NotFound | Kind::Denied | Kind::Final => None,
        }
    }
}

/// How one call ended, with the number of attempts it took (for the summary line).
pub struct Attempted<T> {
    pub result: Result<T, Error>,
    pub attempts: u32,
}

/// Runs `call` until it succeeds, fails for good, runs out of attempts for its kind of failure,
/// or the deadline passes. `deadline_flag` is only for the message.
pub async fn run<T, F, Fut>(
    policy: Policy,
    deadline: Instant,
    deadline_flag: Duration,
    mut call: F,
) -> Attempted<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        let error = match tokio::time::timeout_at(deadline, call()).await {
            Err(_elapsed) => {
                return Attempted {
                    result: Err(Error::Deadline(deadline_flag)),
                    attempts,
                };
            }
            Ok(Ok(value)) => {
                return Attempted {
                    result: Ok(value),
                    attempts,
                };
            }
            Ok(Err(error)) => error,
        };
        let Some(limit) = policy.attempts_for(error.kind()) else {
            return Attempted {
                result: Err(error),
                attempts,
            };
        };
        if attempts >= limit {
            return Attempted {
                result: Err(exhausted(error, attempts)),
                attempts,
            };
        }
        let pause = policy.backoff(attempts, rand::random::<f64>());
        if Instant::now() + pause >= deadline {
            return Attempted {
                result: Err(exhausted(error, attempts)),
                attempts,
            };
        }
        tracing::debug!(
            attempt = attempts,
            pause_ms = pause.as_millis() as u64,
            "retrying"
        );
        tokio::time::sleep(pause).await;
    }
}

/// Notes the number of attempts on the failure, for its description.
fn exhausted(error: Error, attempts: u32) -> Error {
    match error {
        Error::Aws(failure) => Error::Aws(Failure {
            gave_up_after: Some(attempts),
            ..failure
        }),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    const FAST: Policy = Policy {
        base: Duration::from_millis(1),
        cap: Duration::from_millis(2),
        throttled_attempts: 6,
        transient_attempts: 3,
    };

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let p = Policy::DEFAULT;
        assert_eq!(p.ceiling(1), Duration::from_millis(200));
        assert_eq!(p.ceiling(2), Duration::from_millis(400));
        assert_eq!(p.ceiling(6), Duration::from_millis(6400));
        assert_eq!(p.ceiling(7), Duration::from_secs(10));
        assert_eq!(p.ceiling(40), Duration::from_secs(10));
    }

    #[test]
    fn full_jitter_stays_between_zero_and_the_ceiling() {
        let p = Policy::DEFAULT;
        assert_eq!(p.backoff(3, 0.0), Duration::ZERO);
        assert_eq!(p.backoff(3, 0.5), Duration::from_millis(400));
        assert!(p.backoff(3, 0.999_999) < Duration::from_millis(800));
    }

    #[test]
    fn default_budget_rides_out_a_storm_within_the_default_deadline() {
        let p = Policy::DEFAULT;
        let worst: Duration = (1..p.throttled_attempts).map(|a| p.ceiling(a)).sum();
        assert!(worst > Duration::from_secs(60), "{worst:?}");
        assert!(worst < Duration::from_secs(120), "{worst:?}");
        let transient: Duration = (1..p.transient_attempts).map(|a| p.ceiling(a)).sum();
        assert!(transient <= Duration::from_secs(3), "{transient:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn throttling_is_retried_until_it_passes() {
        let calls = Cell::new(0);
        let out = run(FAST, far(), Duration::from_secs(60), || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 5 {
                    Err(Error::Aws(Failure::new(
                        "ThrottlingException",
                        "Rate exceeded",
                        Kind::Throttled,
                    )))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(out.result.unwrap(), 5);
        assert_eq!(out.attempts, 5);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn transient_failures_get_the_smaller_budget() {
        let out: Attempted<()> = run(FAST, far(), Duration::from_secs(60), || async {
            Err(Error::Aws(Failure::new(
                "InternalServerError",
                "HTTP 503",
                Kind::Transient,
            )))
        })
        .await;
        assert_eq!(out.attempts, 3);
        let err = out.result.unwrap_err();
        assert_eq!(err.kind(), Kind::Transient);
        assert_eq!(
            err.to_string(),
            "InternalServerError: HTTP 503 (gave up after 3 attempts)"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn final_failures_are_not_retried() {
        let out: Attempted<()> = run(FAST, far(), Duration::from_secs(60), || async {
            Err(Error::Aws(Failure::new(
                "AccessDeniedException",
                "no",
                Kind::Denied,
            )))
        })
        .await;
        assert_eq!(out.attempts, 1);
        assert_eq!(
            out.result.unwrap_err().to_string(),
            "AccessDeniedException: no"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_call_that_outlives_the_deadline_fails_with_the_deadline() {
        let deadline = Instant::now() + Duration::from_millis(20);
        let out: Attempted<()> = run(FAST, deadline, Duration::from_millis(20), || async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .await;
        assert_eq!(
            out.result.unwrap_err().to_string(),
            "DeadlineExceeded: no answer within the --deadline of 20ms"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn no_backoff_sleeps_past_the_deadline() {
        let slow = Policy {
            base: Duration::from_secs(30),
            cap: Duration::from_secs(30),
            ..FAST
        };
        let deadline = Instant::now() + Duration::from_millis(50);
        let started = Instant::now();
        let mut calls = 0;
        let out: Attempted<()> = run(slow, deadline, Duration::from_millis(50), || {
            calls += 1;
            async {
                Err(Error::Aws(Failure::new(
                    "ThrottlingException",
                    "Rate exceeded",
                    Kind::Throttled,
                )))
            }
        })
        .await;
        assert!(started.elapsed() < Duration::from_secs(5));
        // With full jitter the first pause may be tiny; either way the run ends at the deadline.
        let err = out.result.unwrap_err();
        assert!(
            err.to_string()
                .starts_with("ThrottlingException: Rate exceeded (gave up after")
                || matches!(err, Error::Deadline(_)),
            "{err}"
        );
    }
}
