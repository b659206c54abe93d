//! fal's queue protocol as the official clients speak it (fal-protocol.md §1–§3): submit, follow
//! status over SSE (polling as the fallback), result, cancel; storage upload and media download
//! are in `transfer.rs`.

use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, LOCATION};
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::body::{ERROR_BODY_LIMIT, Overflow, RESULT_LIMIT, SMALL_ANSWER_LIMIT, read_body};
use super::config::FalConfig;
use super::destination::{DestinationPolicy, DestinationRefused, GuardedResolver, redirect_policy};
use super::error::{Answerer, FalError, NetworkKind};
use super::retry::RetryNotice;
use super::sse::{SseItem, SseParser};
use crate::model::{Endpoint, KontextInput, LogEntry, QueueStatus, StatusKind, SubmitResponse};

const USER_AGENT: &str = concat!("kontext/", env!("CARGO_PKG_VERSION"));
/// A status event is a few KB; a line or an event over this ends the stream (polling takes over).
const MAX_SSE_LINE: usize = 1024 * 1024;
const MAX_SSE_EVENT: usize = 1024 * 1024;

/// A request fal accepted: its id and the URLs fal gave for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestHandle {
    pub endpoint: String,
    pub request_id: String,
    pub response_url: String,
    pub status_url: String,
    pub cancel_url: String,
}

impl RequestHandle {
    /// Rebuilds the URLs for a stored request id (only for resuming: otherwise use the URLs fal
    /// returned). They use `owner/alias` only, as fal's clients do (fal-protocol.md §1.2).
    pub fn from_request_id(config: &FalConfig, endpoint: &Endpoint, request_id: &str) -> RequestHandle {
        let base = config.queue_url.as_str().trim_end_matches('/');
        let response_url = format!("{base}/{}/requests/{request_id}", endpoint.app_prefix());
        RequestHandle {
            endpoint: endpoint.id().to_string(),
            request_id: request_id.to_string(),
            status_url: format!("{response_url}/status"),
            cancel_url: format!("{response_url}/cancel"),
            response_url,
        }
    }
}

/// Why a submit failed, in the terms that matter for money: was the request possibly accepted?
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    /// fal certainly did not accept it (it answered with an error, or no connection was made).
    #[error("{0}")]
    Rejected(FalError),
    /// It may have been accepted (and billed): the connection broke or timed out after the request
    /// was sent. Never resubmitted automatically.
    #[error(
        "the submit may or may not have reached fal ({0}). It was not sent again, to avoid paying twice; check your requests on fal's dashboard before submitting again"
    )]
    Ambiguous(FalError),
}

impl SubmitError {
    pub fn error(&self) -> &FalError {
        match self {
            SubmitError::Rejected(e) | SubmitError::Ambiguous(e) => e,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CancelOutcome {
    /// fal accepted the cancellation (it may still finish if it was about to).
    Requested,
    AlreadyCompleted,
    NotFound,
}

/// How to follow a request's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FollowMode {
    /// The SSE status stream, falling back to polling if it fails or ends early.
    #[default]
    Stream,
    /// Poll `/status?logs=1` only.
    Poll,
}

/// What happened while following a request, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusUpdate {
    Queued {
        position: Option<u64>,
    },
    InProgress,
    /// Log lines not seen before.
    Logs(Vec<LogEntry>),
    /// A change of transport worth telling the user (e.g. the stream dropped; polling now).
    Note(String),
    Completed,
}

type NoticeSink = std::sync::Arc<dyn Fn(RetryNotice) + Send + Sync>;

#[derive(Clone)]
pub struct FalClient {
    http: reqwest::Client,
    config: std::sync::Arc<FalConfig>,
    /// Who hears about retries (a job's event channel); `None` only logs them.
    notices: Option<NoticeSink>,
    destinations: std::sync::Arc<DestinationPolicy>,
    /// Shared by the requests of one sweep: a 429 to one holds them all.
    gate: Option<std::sync::Arc<super::RateGate>>,
}

/// Why the status stream was left for polling.
enum StreamEnd {
    Done(Box<QueueStatus>),
    /// What happened, as a phrase after "the status stream".
    Fallback(String),
}

impl FalClient {
    pub fn new(config: FalConfig) -> Result<FalClient, FalError> {
        // One policy for server-given URLs, redirects and DNS answers (see destination.rs).
        let destinations = std::sync::Arc::new(DestinationPolicy::for_config(&config));
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(config.connect_timeout)
            .redirect(redirect_policy(destinations.clone()))
            .dns_resolver(GuardedResolver { policy: destinations.clone() });
        if config.is_loopback() {
            // A proxy from the environment must not capture traffic to the local emulator.
            builder = builder.no_proxy();
        }
        let http = builder.build().map_err(|e| FalError::Protocol(format!("cannot build the HTTP client: {e}")))?;
        Ok(FalClient { http, config: std::sync::Arc::new(config), notices: None, destinations, gate: None })
    }

    /// The same client (same connections), telling `notify` before every retry it makes, so a
    /// front end can say why it waits ("fetching the result is slow; attempt 2 of 10 in 1.6 s").
    pub fn with_retry_notices(&self, notify: impl Fn(RetryNotice) + Send + Sync + 'static) -> FalClient {
        FalClient { notices: Some(std::sync::Arc::new(notify)), ..self.clone() }
    }

    /// The same client, every attempt of which waits at `gate` and closes it on a 429, so
    /// the requests that share it back off together.
    pub fn with_rate_gate(&self, gate: std::sync::Arc<super::RateGate>) -> FalClient {
        FalClient { gate: Some(gate), ..self.clone() }
    }

    /// Runs one operation under the retry policy and the operation deadline, announcing retries.
    pub(super) async fn retrying<T, Fut>(
        &self,
        what: &'static str,
        mut op: impl FnMut() -> Fut,
        should_retry: impl Fn(&FalError) -> bool,
    ) -> Result<T, FalError>
    where
        Fut: std::future::Future<Output = Result<T, FalError>>,
    {
        let notify = |n: RetryNotice| {
            if let Some(sink) = &self.notices {
                sink(n)
            }
        };
        let gated = || super::rate_gate::gated(self.gate.clone(), op());
        self.config.retry.run_within(what, Some(self.config.operation_deadline), gated, should_retry, &notify).await
    }

    pub fn config(&self) -> &FalConfig {
        &self.config
    }

    /// Sends one request to `who` and returns status, headers and body, and who really answered.
    /// The key is attached only when the URL is one of the configured fal hosts; reqwest drops it
    /// on a redirect to another host.
    /// The headers must come within `timeout`; a successful body must fit in `limit` (named
    /// `what` in errors) and keep the body pace; of an error body only the start is kept.
    async fn exchange(
        &self,
        method: Method,
        url: &Url,
        body: Option<(Bytes, &str)>,
        auth: bool,
        (what, limit): (&str, usize),
        who: Answerer,
    ) -> Result<Answer, FalError> {
        let mut req = self.http.request(method, url.clone()).header(ACCEPT, "application/json");
        if auth {
            req = self.authorize(req, url);
        }
        if let Some((bytes, content_type)) = body {
            req = req.header(CONTENT_TYPE, content_type).body(bytes);
        }
        let resp = match tokio::time::timeout(self.config.timeout, req.send()).await {
            Ok(r) => r.map_err(|e| FalError::network(url, &e))?,
            Err(_) => {
                return Err(FalError::Network {
                    host: url.host_str().unwrap_or("?").to_string(),
                    kind: NetworkKind::Timeout,
                    message: format!("no answer within {:.1} s", self.config.timeout.as_secs_f64()),
                    attempts: 0,
                });
            }
        };
        let from = answered_by(who, url, resp.url());
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = if resp.status().is_success() {
            read_body(resp, url, what, limit, Overflow::Refuse, self.config.body_pace).await?
        } else {
            read_body(resp, url, "error answer", ERROR_BODY_LIMIT, Overflow::Truncate, self.config.body_pace).await?
        };
        Ok(Answer { status, headers, body, from })
    }

    /// Adds the key, but only for the configured fal hosts.
    fn authorize(&self, req: reqwest::RequestBuilder, url: &Url) -> reqwest::RequestBuilder {
        match &self.config.key {
            Some(key) if self.config.is_fal_origin(url) => req.header(AUTHORIZATION, key.header_value()),
            _ => req,
        }
    }

    /// `exchange` that turns non-2xx answers into errors.
    pub(super) async fn call(
        &self,
        method: Method,
        url: &Url,
        body: Option<(Bytes, &str)>,
        auth: bool,
        size: (&str, usize),
        who: Answerer,
    ) -> Result<(HeaderMap, Bytes), FalError> {
        let answer = self.exchange(method, url, body, auth, size, who).await?;
        if (200..300).contains(&answer.status) { Ok((answer.headers, answer.body)) } else { Err(answer.error()) }
    }

    /// A URL a server handed us, if the destination policy lets us go there.
    pub(super) fn parse_url(&self, text: &str) -> Result<Url, FalError> {
        let url = Url::parse(text).map_err(|e| {
            let shown: String = crate::sanitize::strip_controls(text).chars().take(200).collect();
            FalError::Protocol(format!("fal returned an invalid URL {shown:?}: {e}"))
        })?;
        self.destinations.check(&url).map_err(FalError::Refused)?;
        Ok(url)
    }

    /// Submits validated input to the queue. Retried only when fal provably did not accept it.
    pub async fn submit(&self, endpoint: &Endpoint, input: &KontextInput) -> Result<RequestHandle, SubmitError> {
        let body = serde_json::to_value(input).map_err(|e| SubmitError::Rejected(FalError::Protocol(e.to_string())))?;
        self.submit_json(endpoint, &body).await
    }

    /// Submits a raw JSON body. Front ends use [`FalClient::submit`]; this exists so tests can
    /// check how fal's own validation errors are mapped.
    pub async fn submit_json(&self, endpoint: &Endpoint, body: &Value) -> Result<RequestHandle, SubmitError> {
        let url = self
            .config
            .queue_url
            .join(endpoint.id())
            .map_err(|e| SubmitError::Rejected(FalError::Protocol(format!("bad endpoint URL: {e}"))))?;
        let bytes = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
        let op = || async {
            let (_, body) = self
                .call(
                    Method::POST,
                    &url,
                    Some((bytes.clone(), "application/json")),
                    true,
                    SMALL_ANSWER,
                    Answerer::Queue,
                )
                .await?;
            serde_json::from_slice::<SubmitResponse>(&body)
                .map_err(|e| FalError::Protocol(format!("the submit answer could not be read ({e})")))
        };
        match self.retrying("submitting", op, FalError::submit_provably_not_accepted).await {
            Ok(r) => Ok(RequestHandle {
                endpoint: endpoint.id().to_string(),
                request_id: r.request_id,
                response_url: r.response_url,
                status_url: r.status_url,
                cancel_url: r.cancel_url,
            }),
            Err(e) => Err(classify_submit_failure(e)),
        }
    }

    /// One status poll (with retries).
    pub async fn status(&self, handle: &RequestHandle, logs: bool) -> Result<QueueStatus, FalError> {
        let mut url = self.parse_url(&handle.status_url)?;
        url.query_pairs_mut().append_pair("logs", if logs { "1" } else { "0" });
        let op = || async {
            let (_, body) = self
                .call(Method::GET, &url, None, true, ("status answer", SMALL_ANSWER_LIMIT), Answerer::Queue)
                .await?;
            serde_json::from_slice::<QueueStatus>(&body)
                .map_err(|e| FalError::Protocol(format!("the status answer could not be read ({e})")))
        };
        self.retrying("checking the status", op, FalError::is_retryable).await
    }

    /// Follows a request until COMPLETED, reporting every change through `on_update`. Returns
    /// the final status with all logs; a COMPLETED status carrying `error` is a failure.
    pub async fn follow(
        &self,
        handle: &RequestHandle,
        mode: FollowMode,
        mut on_update: impl FnMut(StatusUpdate),
    ) -> Result<QueueStatus, FalError> {
        let mut tracker = Tracker::default();
        if mode == FollowMode::Stream {
            match self.follow_stream(handle, &mut tracker, &mut on_update).await {
                Ok(StreamEnd::Done(done)) => return tracker.finish(*done),
                Ok(StreamEnd::Fallback(why)) => {
                    tracing::info!("status stream {why}");
                    on_update(StatusUpdate::Note(format!("status stream {why}; polling instead")))
                }
                Err(e) => {
                    tracing::info!("status stream failed: {e}");
                    on_update(StatusUpdate::Note(format!("status stream unavailable ({e}); polling instead")));
                }
            }
        }
        loop {
            let status = self.status(handle, true).await?;
            if let Some(done) = tracker.observe(status, LogDelivery::Cumulative, &mut on_update) {
                return tracker.finish(done);
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }

    /// Reads the SSE stream until COMPLETED, or says why it stopped early. "Silent" means no
    /// complete block (an event or a `: ping`) for `stream_idle_timeout`: bytes without a line
    /// end do not count, and a line or event over its cap ends the stream.
    async fn follow_stream(
        &self,
        handle: &RequestHandle,
        tracker: &mut Tracker,
        on_update: &mut impl FnMut(StatusUpdate),
    ) -> Result<StreamEnd, FalError> {
        let mut url = self.parse_url(&handle.status_url)?;
        url.path_segments_mut()
            .map_err(|_| FalError::Protocol("status URL cannot take a path".into()))?
            .pop_if_empty()
            .push("stream");
        url.query_pairs_mut().append_pair("logs", "1");
        let req = self.authorize(self.http.get(url.clone()).header(ACCEPT, "text/event-stream"), &url);
        let idle = self.config.stream_idle_timeout;
        let silent = || StreamEnd::Fallback(format!("was silent for {:.1} s", idle.as_secs_f64()));
        // A stream that never answers must not hang the job: fall back to polling instead.
        let mut resp = match tokio::time::timeout(idle, req.send()).await {
            Ok(r) => r.map_err(|e| FalError::network(&url, &e))?,
            Err(_) => return Ok(silent()),
        };
        if !resp.status().is_success() {
            let from = answered_by(Answerer::Queue, &url, resp.url());
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body =
                read_body(resp, &url, "error answer", ERROR_BODY_LIMIT, Overflow::Truncate, self.config.body_pace)
                    .await
                    .unwrap_or_default();
            return Err(FalError::from_response(status, &headers, &body).answered_by(from));
        }
        let mut parser = SseParser::new(MAX_SSE_LINE, MAX_SSE_EVENT);
        let mut items = Vec::new();
        let mut idle_until = tokio::time::Instant::now() + idle;
        loop {
            let chunk = match tokio::time::timeout_at(idle_until, resp.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => return Ok(StreamEnd::Fallback("ended early".into())),
                Ok(Err(e)) => return Ok(StreamEnd::Fallback(format!("broke ({})", FalError::network(&url, &e)))),
                Err(_) => return Ok(silent()),
            };
            if let Err(overflow) = parser.push(&chunk, &mut items) {
                return Ok(StreamEnd::Fallback(overflow.to_string()));
            }
            if !items.is_empty() {
                idle_until = tokio::time::Instant::now() + idle;
            }
            for item in items.drain(..) {
                let SseItem::Event(data) = item else { continue };
                if data.trim().is_empty() {
                    continue;
                }
                let status: QueueStatus = match serde_json::from_str(&data) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!("unreadable status event skipped: {e}");
                        continue;
                    }
                };
                if let Some(done) = tracker.observe(status, LogDelivery::Incremental, on_update) {
                    return Ok(StreamEnd::Done(Box::new(done)));
                }
            }
        }
    }

    /// The raw model output of a COMPLETED request (fal-protocol.md §1.5).
    /// fal's result store can lag its status: "still in progress", a body cut short or one that
    /// is not JSON are retried (announced, within the operation deadline) before giving up.
    pub async fn result(&self, handle: &RequestHandle) -> Result<Value, FalError> {
        self.result_billed(handle).await.map(|(v, _)| v)
    }

    /// The result and what fal bills for it: its `x-fal-billable-units` header (the quantity
    /// in the endpoint's unit), when the answer has one.
    pub async fn result_billed(&self, handle: &RequestHandle) -> Result<(Value, Option<f64>), FalError> {
        let url = self.parse_url(&handle.response_url)?;
        let op = || async {
            let answer =
                self.exchange(Method::GET, &url, None, true, ("result", RESULT_LIMIT), Answerer::Queue).await?;
            if answer.status == 400 && String::from_utf8_lossy(&answer.body).contains("still in progress") {
                return Err(FalError::NotReady);
            }
            if !(200..300).contains(&answer.status) {
                return Err(answer.error());
            }
            let units = answer
                .headers
                .get("x-fal-billable-units")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|u| u.is_finite() && *u >= 0.0);
            let value = serde_json::from_slice::<Value>(&answer.body)
                .map_err(|e| FalError::Protocol(format!("the result could not be read as JSON ({e})")))?;
            Ok((value, units))
        };
        self.retrying("fetching the result", op, result_worth_retrying).await
    }

    /// `GET {api}/v1/…` on fal's platform API, with the key (the API is fal's host).
    async fn platform_get(&self, path_and_query: &str, what: &'static str) -> Result<Value, FalError> {
        let url = self.config.api_url.join(path_and_query).map_err(|e| FalError::Protocol(e.to_string()))?;
        let op = || async {
            let (_, body) =
                self.call(Method::GET, &url, None, true, (what, PLATFORM_ANSWER_LIMIT), Answerer::Queue).await?;
            serde_json::from_slice::<Value>(&body)
                .map_err(|e| FalError::Protocol(format!("the {what} could not be read as JSON ({e})")))
        };
        self.retrying(what, op, FalError::is_retryable).await
    }

    /// fal's prices for up to 50 endpoints (`GET {api}/v1/models/pricing`).
    pub async fn pricing(&self, endpoint_ids: &[&str]) -> Result<Value, FalError> {
        let ids: Vec<String> = endpoint_ids.iter().map(|i| url_component(i)).collect();
        self.platform_get(&format!("v1/models/pricing?endpoint_id={}", ids.join(",")), "pricing answer").await
    }

    /// An endpoint's metadata and OpenAPI schema (`GET {api}/v1/models?…&expand=openapi-3.0`).
    pub async fn model_schema(&self, endpoint_id: &str) -> Result<Value, FalError> {
        let path = format!("v1/models?endpoint_id={}&expand=openapi-3.0", url_component(endpoint_id));
        self.platform_get(&path, "model description").await
    }

    /// Asks fal to cancel. 2xx → requested, 400 → already completed, 404 → not found.
    pub async fn cancel(&self, handle: &RequestHandle) -> Result<CancelOutcome, FalError> {
        let url = self.parse_url(&handle.cancel_url)?;
        let op = || async {
            let answer = self
                .exchange(Method::PUT, &url, None, true, ("cancel answer", SMALL_ANSWER_LIMIT), Answerer::Queue)
                .await?;
            match answer.status {
                200..=299 => Ok(CancelOutcome::Requested),
                400 => Ok(CancelOutcome::AlreadyCompleted),
                404 => Ok(CancelOutcome::NotFound),
                _ => Err(answer.error()),
            }
        };
        self.retrying("cancelling", op, FalError::is_retryable).await
    }
}

/// The answer size for submit, cancel and upload answers.
pub(super) const SMALL_ANSWER: (&str, usize) = ("answer", SMALL_ANSWER_LIMIT);
/// A model description with its OpenAPI schema is tens of kilobytes; prices far less.
const PLATFORM_ANSWER_LIMIT: usize = 2 * 1024 * 1024;

/// An endpoint id inside a query: `/` stays (fal's ids are written that way), the rest of
/// anything unusual is escaped.
fn url_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// After COMPLETED, whatever is not fal's own word on the result is worth another look: the
/// store may lag ("still in progress"), a body may be cut short or garbled on the way, a gateway
/// may fail. A user-set timeout and fal's verdicts (404, 422) are final.
fn result_worth_retrying(e: &FalError) -> bool {
    e.is_retryable()
        || matches!(e, FalError::NotReady | FalError::Protocol(_))
        || matches!(e, FalError::Api(a) if a.status >= 500 && a.timeout_type.is_none())
}

/// One HTTP answer and who sent it.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
    from: Answerer,
}

impl Answer {
    /// The error for a non-success answer, naming who sent it. A redirect that reaches us was
    /// not followed (reqwest could not read its `Location`, e.g. `file:`): refused, not fal's error.
    fn error(&self) -> FalError {
        if (300..400).contains(&self.status) {
            let location = self.headers.get(LOCATION).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            return FalError::Refused(DestinationRefused::unfollowed(location.as_deref().unwrap_or("")));
        }
        FalError::from_response(self.status, &self.headers, &self.body).answered_by(self.from.clone())
    }
}

/// `asked`, unless a redirect took the request to another origin: then that server answered.
fn answered_by(asked: Answerer, requested: &Url, answered: &Url) -> Answerer {
    if super::config::same_origin(requested, answered) {
        asked
    } else {
        Answerer::RedirectTarget { host: answered.host_str().unwrap_or("?").to_string() }
    }
}

/// Decides, after retries, whether a failed submit might have been accepted. A request that
/// never left this machine (it could not be built, the name did not resolve, the connection was
/// refused) was not sent. A refused redirect means the queue answered the POST with a redirect:
/// it had the body, so it may have taken it.
fn classify_submit_failure(e: FalError) -> SubmitError {
    match &e {
        FalError::Network { kind: NetworkKind::Connect | NetworkKind::NotSent, .. } => SubmitError::Rejected(e),
        // An answer that did not arrive whole (cut, unreadable, oversized) may be an acceptance.
        FalError::Network { .. } | FalError::Protocol(_) | FalError::TooLarge { .. } | FalError::Refused(_) => {
            SubmitError::Ambiguous(e)
        }
        // A gateway timeout or bad gateway: the queue behind it may have taken the request.
        FalError::Api(api) if matches!(api.status, 502 | 504) => SubmitError::Ambiguous(e),
        _ => SubmitError::Rejected(e),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LogDelivery {
    /// SSE events carry only new lines.
    Incremental,
    /// Polling returns every line so far.
    Cumulative,
}

/// Turns a sequence of statuses into updates without repeats, and accumulates the logs.
#[derive(Default)]
struct Tracker {
    logs: Vec<LogEntry>,
    last: Option<(StatusKind, Option<u64>)>,
}

impl Tracker {
    fn observe(
        &mut self,
        mut status: QueueStatus,
        delivery: LogDelivery,
        on_update: &mut impl FnMut(StatusUpdate),
    ) -> Option<QueueStatus> {
        let key = (status.status.clone(), status.queue_position);
        if self.last.as_ref() != Some(&key) {
            match &status.status {
                StatusKind::InQueue => on_update(StatusUpdate::Queued { position: status.queue_position }),
                StatusKind::InProgress if !matches!(self.last, Some((StatusKind::InProgress, _))) => {
                    on_update(StatusUpdate::InProgress)
                }
                _ => {}
            }
            self.last = Some(key);
        }
        if let Some(logs) = status.logs.take() {
            let new: Vec<LogEntry> = match delivery {
                LogDelivery::Incremental => logs,
                LogDelivery::Cumulative => logs.into_iter().skip(self.logs.len()).collect(),
            };
            if !new.is_empty() {
                self.logs.extend(new.iter().cloned());
                on_update(StatusUpdate::Logs(new));
            }
        }
        if status.status == StatusKind::Completed {
            on_update(StatusUpdate::Completed);
            return Some(status);
        }
        None
    }

    fn finish(self, mut done: QueueStatus) -> Result<QueueStatus, FalError> {
        if let Some(error) = done.error.take() {
            return Err(FalError::RunFailed {
                error: crate::sanitize::strip_controls(&error),
                error_type: done.error_type.take(),
            });
        }
        done.logs = Some(self.logs);
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(json: &str) -> QueueStatus {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn tracker_dedups_positions_and_cumulative_logs() {
        let mut updates = Vec::new();
        let mut t = Tracker::default();
        let mut on = |u| updates.push(u);
        t.observe(status(r#"{"status":"IN_QUEUE","queue_position":1,"logs":null}"#), LogDelivery::Cumulative, &mut on);
        t.observe(status(r#"{"status":"IN_QUEUE","queue_position":1,"logs":null}"#), LogDelivery::Cumulative, &mut on);
        t.observe(status(r#"{"status":"IN_QUEUE","queue_position":0,"logs":null}"#), LogDelivery::Cumulative, &mut on);
        t.observe(status(r#"{"status":"IN_PROGRESS","logs":[{"message":"a"}]}"#), LogDelivery::Cumulative, &mut on);
        t.observe(
            status(r#"{"status":"IN_PROGRESS","logs":[{"message":"a"},{"message":"b","labels":{"level":"INFO"}}]}"#),
            LogDelivery::Cumulative,
            &mut on,
        );
        let done = t.observe(
            status(r#"{"status":"COMPLETED","logs":[{"message":"a"},{"message":"b"},{"message":"c"}],"metrics":{}}"#),
            LogDelivery::Cumulative,
            &mut on,
        );
        let final_status = t.finish(done.unwrap()).unwrap();
        let msgs: Vec<_> = final_status.logs.unwrap().into_iter().map(|l| l.message).collect();
        assert_eq!(msgs, ["a", "b", "c"]);
        assert_eq!(updates[0], StatusUpdate::Queued { position: Some(1) });
        assert_eq!(updates[1], StatusUpdate::Queued { position: Some(0) });
        assert_eq!(updates[2], StatusUpdate::InProgress);
        assert_eq!(updates.iter().filter(|u| matches!(u, StatusUpdate::Logs(_))).count(), 3);
        assert_eq!(updates.last(), Some(&StatusUpdate::Completed));
    }

    #[test]
    fn completed_with_error_is_a_failure() {
        let mut t = Tracker::default();
        let done = t
            .observe(
                status(
                    r#"{"status":"COMPLETED","logs":[],"error":"Request timed out","error_type":"request_timeout"}"#,
                ),
                LogDelivery::Incremental,
                &mut |_| {},
            )
            .unwrap();
        let err = t.finish(done).unwrap_err();
        assert!(matches!(&err, FalError::RunFailed { error_type: Some(t), .. } if t == "request_timeout"), "{err:?}");
        assert!(err.to_string().contains("Request timed out"));
    }

    #[test]
    fn ambiguous_submit_classification() {
        let net = |kind| FalError::Network { host: "h".into(), kind, message: "m".into(), attempts: 0 };
        assert!(matches!(classify_submit_failure(net(NetworkKind::Connect)), SubmitError::Rejected(_)));
        assert!(matches!(classify_submit_failure(net(NetworkKind::NotSent)), SubmitError::Rejected(_)));
        assert!(matches!(classify_submit_failure(net(NetworkKind::Timeout)), SubmitError::Ambiguous(_)));
        assert!(matches!(classify_submit_failure(net(NetworkKind::Other)), SubmitError::Ambiguous(_)));
        let huge = FalError::TooLarge { host: "h".into(), what: "answer".into(), limit: "1 MiB".into() };
        assert!(matches!(classify_submit_failure(huge), SubmitError::Ambiguous(_)));
        let api = |status| FalError::from_response(status, &HeaderMap::new(), b"{}");
        assert!(matches!(classify_submit_failure(api(504)), SubmitError::Ambiguous(_)));
        assert!(matches!(classify_submit_failure(api(401)), SubmitError::Rejected(_)));
        assert!(matches!(classify_submit_failure(api(429)), SubmitError::Rejected(_)));
    }

    #[test]
    fn handles_for_stored_ids_drop_the_sub_path() {
        let cfg = FalConfig::production(None);
        let h = RequestHandle::from_request_id(&cfg, &Endpoint::default(), "abc");
        assert_eq!(h.status_url, "https://queue.fal.run/fal-ai/flux-pro/requests/abc/status");
        assert_eq!(h.response_url, "https://queue.fal.run/fal-ai/flux-pro/requests/abc");
        assert_eq!(h.cancel_url, "https://queue.fal.run/fal-ai/flux-pro/requests/abc/cancel");
    }
}
