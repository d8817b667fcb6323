//! What every AWS call of one run shares, whichever service it goes to: the thing to fetch, what
//! arrives, the retry policy and deadline, and the call counters. The service modules and the
//! orchestration in `fetch` both use these; neither is imported back from here.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use secrets_injector_objects::object::ObjectType;
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
}

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

/// What every call of one run shares: the retry policy, the deadline and the counters.
pub struct Run {
    pub policy: Policy,
    pub deadline: Instant,
    /// The `--deadline` value, for messages.
    pub deadline_flag: Duration,
    pub calls: Calls,
}

impl Run {
    pub fn new(policy: Policy, deadline_flag: Duration) -> Run {
        Run {
            policy,
            deadline: Instant::now() + deadline_flag,
            deadline_flag,
            calls: Calls::default(),
        }
    }

    /// Runs one AWS call with retries, counting every attempt.
    pub async fn retry<T, F, Fut>(&self, call: Call, f: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let attempted = retry::run(self.policy, self.deadline, self.deadline_flag, f).await;
        self.calls.add(call, attempted.attempts);
        attempted.result
    }
}

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
