//! Reading an HTTP body within bounds: a size cap checked against `Content-Length` before any
//! byte is read and again while streaming, and a minimum transfer rate, so a body that trickles
//! or stalls ends in a retryable timeout instead of a silent two-minute wait.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::Url;
use tokio::time::Instant;

use super::error::{FalError, NetworkKind};
use super::sse::human_bytes;

/// Status, submit, cancel and upload answers are a few hundred bytes of JSON.
pub(crate) const SMALL_ANSWER_LIMIT: usize = 1024 * 1024;
/// A result can carry up to four images inline as `data:` URIs (sync mode): a few MB each.
pub(crate) const RESULT_LIMIT: usize = 64 * 1024 * 1024;
/// Output images are a few MB at most; refuse anything absurd rather than fill memory.
pub(crate) const DOWNLOAD_LIMIT: usize = 64 * 1024 * 1024;
/// Of an error answer only the start is read: its `detail` is near the top.
pub(crate) const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// How slowly a body may arrive: after `grace`, at least `min_rate` bytes per second on average.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyPace {
    pub grace: Duration,
    pub min_rate: u64,
}

impl Default for BodyPace {
    fn default() -> Self {
        BodyPace { grace: Duration::from_secs(10), min_rate: 16 * 1024 }
    }
}

impl BodyPace {
    /// When the body must have got past `received` bytes.
    fn deadline(&self, started: Instant, received: usize) -> Instant {
        let allowed = self.grace + Duration::from_secs_f64(received as f64 / self.min_rate.max(1) as f64);
        started + allowed
    }
}

/// What to do with a body over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// Refuse it (a successful answer must be whole).
    Refuse,
    /// Keep the first `limit` bytes (an error answer: its start says what went wrong).
    Truncate,
}

/// Reads `resp`'s body: at most `limit` bytes, at least at `pace`. A body that ends before its
/// `Content-Length` is a (retryable) network error.
pub(crate) async fn read_body(
    mut resp: reqwest::Response,
    url: &Url,
    what: &str,
    limit: usize,
    overflow: Overflow,
    pace: BodyPace,
) -> Result<Bytes, FalError> {
    let too_large = || FalError::TooLarge { host: host_of(url), what: what.to_string(), limit: human_bytes(limit) };
    let declared = resp.content_length();
    if overflow == Overflow::Refuse && declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let capacity = declared.map_or(0, |n| n.min(limit as u64) as usize);
    let mut body = BytesMut::with_capacity(capacity);
    let started = Instant::now();
    loop {
        let deadline = pace.deadline(started, body.len());
        let chunk = match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => chunk,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => return Err(FalError::network(url, &e)),
            Err(_) => {
                return Err(FalError::Network {
                    host: host_of(url),
                    kind: NetworkKind::Timeout,
                    message: format!(
                        "the {what} arrived too slowly ({} in {:.1} s; at least {}/s expected)",
                        human_bytes(body.len()),
                        started.elapsed().as_secs_f64(),
                        human_bytes(pace.min_rate as usize)
                    ),
                    attempts: 0,
                });
            }
        };
        if body.len() + chunk.len() > limit {
            match overflow {
                Overflow::Refuse => return Err(too_large()),
                Overflow::Truncate => {
                    body.extend_from_slice(&chunk[..limit - body.len()]);
                    break;
                }
            }
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn host_of(url: &Url) -> String {
    url.host_str().unwrap_or("?").to_string()
}
