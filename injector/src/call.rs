//! What every AWS call of one run shares, whichever service it goes to: the thing to fetch, what
//! arrives, the retry policy and deadline, and the call counters. The service modules and the
//! orchestration in `fetch` both use these; neither is imported back from here.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use secrets_injector_objects::kind::DEFAULT_MAX_SECRETS_PER_OBJECT;
use secrets_injector_objects::object::ObjectType;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::error::Error;
use crate::retry::{self, Policy};

/// One thing to fetch in one region: an object's own name, or its `failoverObject`.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// Index of the object in the plan.
    pub object: usize,
    pub name: &'a str,
    pub version: Option<&'a str>,
    pub label: Option<&'a str>,
    pub kind: ObjectType,
    /// The tags every value found must carry (secretsmanagerpath); empty for the other kinds.
    pub tags: &'a BTreeMap<String, String>,
}

/// No tags, for targets of the kinds that have none.
pub static NO_TAGS: BTreeMap<String, String> = BTreeMap::new();

/// What arrived for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// A parameter's or secret's value.
    Value(Vec<u8>),
    /// The parameters under `base` (the path asked for, which is the failover path after a
    /// failover), as (name, value) pairs.
    Path {
        base: String,
        parameters: Vec<(String, Vec<u8>)>,
    },
    /// The secrets whose names start with the object's prefix and that carry its tags, sorted
    /// by name.
    Secrets(Vec<Secret>),
}

/// One secret read under a name prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub name: String,
    pub arn: String,
    /// The version read (`VersionId`), which a refresh compares with the version that holds
    /// `AWSCURRENT` in its listing.
    pub version: String,
    pub value: Vec<u8>,
}

/// The API calls counted for the summary line, attempts included: the calls the object kinds
/// name (`secrets_injector_objects::kind`).
pub use secrets_injector_objects::kind::AwsCall as Call;

#[derive(Debug, Default)]
pub struct Calls([AtomicU32; Call::ALL.len()]);

impl Calls {
    pub(crate) fn add(&self, call: Call, n: u32) {
        self.0[call as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self, call: Call) -> u32 {
        self.0[call as usize].load(Ordering::Relaxed)
    }
}

/// What every call of one run shares: the retry policy, the deadline, the limits and the
/// counters.
pub struct Run {
    pub policy: Policy,
    pub deadline: Instant,
    /// The `--deadline` value, for messages.
    pub deadline_flag: Duration,
    pub calls: Calls,
    /// Secrets one secretsmanagerpath object may find (`--max-secrets-per-object`).
    pub max_secrets: usize,
    /// Attempts in flight at once, across every object: an object whose values take many calls
    /// (the batches of a secret prefix) runs them side by side within this, never beyond it.
    in_flight: Semaphore,
}

impl Run {
    pub fn new(policy: Policy, deadline_flag: Duration) -> Run {
        Run {
            policy,
            deadline: Instant::now() + deadline_flag,
            deadline_flag,
            calls: Calls::default(),
            max_secrets: DEFAULT_MAX_SECRETS_PER_OBJECT,
            in_flight: Semaphore::new(CONCURRENCY),
        }
    }

    /// Runs one AWS call with retries, counting every attempt. Each attempt waits for its turn
    /// among the run's [`CONCURRENCY`] (a backoff pause holds none).
    pub async fn retry<T, F, Fut>(&self, call: Call, mut f: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let in_flight = &self.in_flight;
        let attempt = || {
            let attempt = f();
            async move {
                // Never closed, so acquiring only waits.
                let _turn = in_flight.acquire().await;
                attempt.await
            }
        };
        let attempted = retry::run(self.policy, self.deadline, self.deadline_flag, attempt).await;
        self.calls.add(call, attempted.attempts);
        attempted.result
    }
}

/// Calls in flight at once: enough to hide latency, few enough not to trip the per-account
/// request rates (Secrets Manager allows 10,000 GetSecretValue a second, but only 100
/// ListSecrets and 100 BatchGetSecretValue; Parameter Store 40 GetParameters).
pub const CONCURRENCY: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_by_kind() {
        let calls = Calls::default();
        calls.add(Call::GetParameters, 2);
        calls.add(Call::GetSecretValue, 1);
        calls.add(Call::GetParameters, 1);
        assert_eq!(calls.get(Call::GetParameters), 3);
        assert_eq!(calls.get(Call::GetParametersByPath), 0);
        assert_eq!(calls.get(Call::GetSecretValue), 1);
    }
}
