//! Bounded exponential backoff with jitter that honours `Retry-After` (backon does the looping),
//! within a total deadline per operation, telling whoever listens before each retry.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};

use super::error::{FalError, NetworkKind};

/// Bounds for retries, modelled on fal's Python client (fal-protocol.md §5.1): 0.1 s doubling,
/// jittered, capped, 10 attempts in all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: usize,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 10, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(10) }
    }
}

/// One retry about to happen, for the user: "fetching the result is slow; attempt 2 of 10 in 1.6 s".
#[derive(Debug, Clone, PartialEq)]
pub struct RetryNotice {
    /// What is being done, as a phrase ("fetching the result").
    pub what: &'static str,
    /// Why the last attempt failed, as a phrase ("is slow").
    pub reason: &'static str,
    /// The attempt that comes next (2 for the first retry).
    pub next_attempt: usize,
    pub max_attempts: usize,
    pub delay: Duration,
}

impl fmt::Display for RetryNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}; attempt {} of {} in {:.1} s",
            self.what,
            self.reason,
            self.next_attempt,
            self.max_attempts,
            self.delay.as_secs_f64()
        )
    }
}

/// A short phrase for why an attempt failed (the full error is logged).
fn reason(e: &FalError) -> &'static str {
    match e {
        FalError::Network { kind: NetworkKind::Timeout, .. } => "is slow",
        FalError::Network { kind: NetworkKind::Connect, .. } => "cannot connect",
        FalError::Network { .. } => "was cut off",
        FalError::NotReady => "is not ready yet",
        FalError::Api(a) if a.status == 429 => "is rate-limited",
        FalError::Api(_) => "got a server error",
        _ => "got an answer it cannot read",
    }
}

impl RetryPolicy {
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.base_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.max_attempts.saturating_sub(1))
            .with_jitter()
    }

    /// Runs `op` until it succeeds, fails with an error `should_retry` refuses, or the attempts run
    /// out. A `Retry-After` from fal replaces the computed delay (capped at `max_delay`).
    pub async fn run<T, Fut>(
        &self,
        what: &'static str,
        op: impl FnMut() -> Fut,
        should_retry: impl Fn(&FalError) -> bool,
    ) -> Result<T, FalError>
    where
        Fut: Future<Output = Result<T, FalError>>,
    {
        self.run_within(what, None, op, should_retry, &|_| {}).await
    }

    /// [`RetryPolicy::run`] that starts no retry whose wait would end past `deadline` (counted
    /// from the first attempt) and calls `notify` before each retry.
    pub async fn run_within<T, Fut>(
        &self,
        what: &'static str,
        deadline: Option<Duration>,
        op: impl FnMut() -> Fut,
        should_retry: impl Fn(&FalError) -> bool,
        notify: &(dyn Fn(RetryNotice) + Send + Sync),
    ) -> Result<T, FalError>
    where
        Fut: Future<Output = Result<T, FalError>>,
    {
        let started = Instant::now();
        let attempts = AtomicUsize::new(1);
        let max_delay = self.max_delay;
        let max_attempts = self.max_attempts;
        let result = op
            .retry(self.backoff())
            .when(|e| should_retry(e))
            .adjust(|e, planned| {
                let delay = planned.map(|d| e.retry_after().map_or(d, |ra| ra.min(max_delay)))?;
                // Past the operation's deadline the last error is the answer.
                deadline.is_none_or(|limit| started.elapsed() + delay < limit).then_some(delay)
            })
            .notify(|e, delay| {
                let n = attempts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(attempt = n, ?delay, "{what} failed, retrying: {e}");
                notify(RetryNotice { what, reason: reason(e), next_attempt: n + 1, max_attempts, delay });
            })
            .await;
        result.map_err(|e| e.with_attempts(attempts.load(Ordering::Relaxed) - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slow() -> FalError {
        FalError::Network { host: "h".into(), kind: NetworkKind::Timeout, message: "m".into(), attempts: 0 }
    }

    #[tokio::test]
    async fn each_retry_is_announced() {
        let policy =
            RetryPolicy { max_attempts: 3, base_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2) };
        let notices = std::sync::Mutex::new(Vec::new());
        let r: Result<(), _> = policy
            .run_within("fetching the result", None, || async { Err(slow()) }, |_| true, &|n| {
                notices.lock().unwrap().push(n)
            })
            .await;
        assert!(matches!(r, Err(FalError::Network { attempts: 2, .. })), "{r:?}");
        let notices = notices.into_inner().unwrap();
        assert_eq!(notices.len(), 2);
        let text = notices[1].to_string();
        assert!(text.starts_with("fetching the result is slow; attempt 3 of 3 in "), "{text}");
    }

    #[tokio::test]
    async fn no_retry_starts_past_the_deadline() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(40),
            max_delay: Duration::from_millis(40),
        };
        let tries = AtomicUsize::new(0);
        let started = Instant::now();
        let r: Result<(), _> = policy
            .run_within(
                "checking the status",
                Some(Duration::from_millis(100)),
                || async {
                    tries.fetch_add(1, Ordering::Relaxed);
                    Err(slow())
                },
                |_| true,
                &|_| {},
            )
            .await;
        assert!(r.is_err());
        let n = tries.load(Ordering::Relaxed);
        assert!((2..=4).contains(&n), "{n} attempts within a 100 ms deadline with 40 ms waits");
        assert!(started.elapsed() < Duration::from_millis(400));
    }
}
