//! Bounded exponential backoff with jitter that honours `Retry-After` (backon does the looping).

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use super::error::FalError;

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
        what: &str,
        op: impl FnMut() -> Fut,
        should_retry: impl Fn(&FalError) -> bool,
    ) -> Result<T, FalError>
    where
        Fut: Future<Output = Result<T, FalError>>,
    {
        let attempts = std::sync::atomic::AtomicUsize::new(1);
        let max_delay = self.max_delay;
        let result = op
            .retry(self.backoff())
            .when(|e| should_retry(e))
            .adjust(|e, planned| planned.map(|d| e.retry_after().map_or(d, |ra| ra.min(max_delay))))
            .notify(|e, delay| {
                let n = attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(attempt = n, ?delay, "{what} failed, retrying: {e}");
            })
            .await;
        result.map_err(|e| e.with_attempts(attempts.load(std::sync::atomic::Ordering::Relaxed) - 1))
    }
}
