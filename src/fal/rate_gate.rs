//! One back-off for many requests: when fal answers 429 to any request that shares the gate,
//! every one of them holds its next attempt until the wait fal asked for is over, instead of
//! each learning the limit on its own (a sweep at full concurrency would otherwise keep
//! hitting it).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The wait when a 429 names none (fal's usual `Retry-After` is a second or two).
const DEFAULT_WAIT: Duration = Duration::from_secs(1);
/// The longest one 429 closes the gate, so a hostile `Retry-After` cannot stall a sweep.
const MAX_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct RateGate {
    closed_until: Mutex<Option<Instant>>,
}

impl RateGate {
    pub fn new() -> RateGate {
        RateGate::default()
    }

    /// Returns once the gate is open (at once when no 429 is being waited out).
    pub async fn wait(&self) {
        while let Some(until) = self.closed_until() {
            tokio::time::sleep_until(until).await;
        }
    }

    /// A 429 came: close the gate for `retry_after` (or a second), extending a longer close.
    pub fn close_for(&self, retry_after: Option<Duration>) {
        let until = Instant::now() + retry_after.unwrap_or(DEFAULT_WAIT).min(MAX_WAIT);
        let mut closed = self.closed_until.lock().unwrap_or_else(|p| p.into_inner());
        if closed.is_none_or(|c| c < until) {
            *closed = Some(until);
        }
    }

    /// How long the gate stays closed from now, if it is (for progress displays).
    pub fn closed_for(&self) -> Option<Duration> {
        self.closed_until().map(|u| u.saturating_duration_since(Instant::now()))
    }

    fn closed_until(&self) -> Option<Instant> {
        let closed = *self.closed_until.lock().unwrap_or_else(|p| p.into_inner());
        closed.filter(|u| *u > Instant::now())
    }
}

/// One attempt of an operation, held at `gate` (if any) and closing it on a 429. An attempt's
/// future does nothing until polled, so holding it at the gate sends nothing.
pub(super) async fn gated<T>(
    gate: Option<std::sync::Arc<RateGate>>,
    attempt: impl std::future::Future<Output = Result<T, super::FalError>>,
) -> Result<T, super::FalError> {
    let Some(gate) = gate else { return attempt.await };
    gate.wait().await;
    let result = attempt.await;
    if let Err(super::FalError::Api(a)) = &result
        && a.status == 429
    {
        gate.close_for(a.retry_after);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_429_holds_every_waiter_for_its_retry_after_and_no_longer() {
        let gate = RateGate::new();
        let start = Instant::now();
        gate.wait().await;
        assert!(start.elapsed() < Duration::from_millis(50), "an open gate does not wait");
        gate.close_for(Some(Duration::from_millis(400)));
        gate.close_for(Some(Duration::from_millis(100)));
        assert!(gate.closed_for().unwrap() > Duration::from_millis(300), "a shorter close does not shorten it");
        tokio::join!(gate.wait(), gate.wait());
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(400) && waited < Duration::from_millis(1500), "{waited:?}");
        assert_eq!(gate.closed_for(), None);
        gate.close_for(Some(Duration::from_secs(3600)));
        let capped = gate.closed_for().unwrap();
        assert!(capped <= MAX_WAIT && capped > MAX_WAIT - Duration::from_secs(5), "a hostile Retry-After is capped");
    }
}
