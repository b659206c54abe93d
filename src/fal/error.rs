//! fal's two error formats (fal-protocol.md §1.7) as typed errors that say what happened and what
//! the user can do, plus network failures classified for the retry rules.

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::destination::{DestinationRefused, refusal_in};
use crate::model::{Field, FieldError};

/// One item of a 422 `detail` list.
#[derive(Debug, Clone, PartialEq)]
pub struct FalFieldError {
    pub field: Field,
    pub loc: Vec<Value>,
    pub msg: String,
    pub kind: String,
    pub ctx: Option<Value>,
    pub input: Option<Value>,
}

impl FalFieldError {
    /// The same problem as a field error a front end shows next to the field.
    pub fn to_field_error(&self) -> FieldError {
        let hint = model_error_hint(&self.kind);
        FieldError {
            field: self.field,
            message: match hint {
                Some(h) => format!("{} ({}): {h}", self.msg, self.kind),
                None => format!("{} ({})", self.msg, self.kind),
            },
        }
    }
}

/// An error answer from fal in the flat format, or any non-422 status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    /// `detail` text (or the raw body when it was not JSON), stripped of control characters.
    pub detail: String,
    pub error_type: Option<String>,
    pub request_id: Option<String>,
    /// `X-Fal-Request-Timeout-Type` (`user` means the caller's own deadline: never retry).
    pub timeout_type: Option<String>,
    pub retry_after: Option<Duration>,
    /// A gateway error from fal's ingress (nginx page, no `x-fal-request-id`): retryable.
    pub ingress: bool,
    /// Who sent this answer, so a message does not blame fal for a CDN's or a redirect's error.
    pub answered_by: Answerer,
}

/// The server an error answer came from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Answerer {
    /// fal's queue (submit, status, result, cancel).
    #[default]
    Queue,
    /// fal storage (upload initiate, the presigned upload URL).
    Storage,
    /// The CDN an output image is fetched from.
    Cdn { host: String },
    /// A server a redirect led to, not the one asked.
    RedirectTarget { host: String },
}

impl fmt::Display for Answerer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answerer::Queue => f.write_str("fal's queue"),
            Answerer::Storage => f.write_str("fal storage"),
            Answerer::Cdn { host } => write!(f, "the CDN ({host})"),
            Answerer::RedirectTarget { host } => write!(f, "a redirect target ({host})"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkKind {
    /// The connection could not be made (refused, or the name did not resolve): the request was
    /// certainly not sent.
    Connect,
    /// The request could not even be built (e.g. a header value HTTP refuses): nothing left this
    /// machine, and trying again cannot help.
    NotSent,
    Timeout,
    /// The connection broke, or the body could not be read.
    Other,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum FalError {
    /// fal refused the input (422 with a `detail` list); each item maps onto an input field.
    #[error("{}", describe_validation(.errors))]
    Validation { errors: Vec<FalFieldError>, request_id: Option<String> },
    /// Boxed: it is by far the largest variant, and every `Result<_, FalError>` carries its size.
    #[error("{}", describe_api(.0))]
    Api(Box<ApiError>),
    /// The request finished with `error` on its COMPLETED status.
    #[error("the model run failed: {error}{}. {}", .error_type.as_ref().map(|t| format!(" ({t})")).unwrap_or_default(), request_error_hint(.error_type.as_deref(), 0))]
    RunFailed { error: String, error_type: Option<String> },
    #[error("network error talking to {host}: {message}. Check your connection; kontext retried {attempts} time(s)")]
    Network { host: String, kind: NetworkKind, message: String, attempts: usize },
    /// fal answered something this client cannot read.
    #[error("unexpected answer from fal: {0}")]
    Protocol(String),
    #[error("the result is not ready yet (fal's queue says the request is still in progress)")]
    NotReady,
    /// An answer over the size this client reads for its kind; refused, not read whole.
    #[error("{host} sent a {what} over {limit}; it was not read")]
    TooLarge { host: String, what: String, limit: String },
    /// A server sent a URL (or a redirect) to a destination kontext never connects to.
    #[error(
        "{0}. kontext follows only https to public hosts (plain http only on this machine, for the emulator); nothing was sent there"
    )]
    Refused(DestinationRefused),
}

impl FalError {
    /// Whether an idempotent call (status, result, cancel, upload, download) may be retried, the
    /// way fal's Python client decides (fal-protocol.md §5.1).
    pub fn is_retryable(&self) -> bool {
        match self {
            FalError::Network { kind, .. } => *kind != NetworkKind::NotSent,
            FalError::Api(e) => match e.status {
                408 | 409 | 429 => true,
                502..=504 => e.ingress && e.timeout_type.is_none(),
                _ => false,
            },
            _ => false,
        }
    }

    /// Whether a submit failed in a way that proves fal did not accept it, so sending it again
    /// cannot bill twice: the connection was never made, or fal answered 429/503.
    pub fn submit_provably_not_accepted(&self) -> bool {
        match self {
            FalError::Network { kind, .. } => *kind == NetworkKind::Connect,
            FalError::Api(e) => matches!(e.status, 429 | 503) && e.timeout_type.is_none(),
            _ => false,
        }
    }

    /// Whether this is fal's own final word on an accepted request: the run failed (COMPLETED
    /// with an error), the input was refused (422), or fal does not know the request (404).
    /// Anything else — the network, a proxy, a 5xx, an answer that does not parse, a slow or
    /// oversized body — leaves the request resumable.
    pub fn is_fal_verdict(&self) -> bool {
        match self {
            FalError::RunFailed { .. } | FalError::Validation { .. } => true,
            // A 404 from the CDN or a redirect target says nothing about the request.
            FalError::Api(e) => matches!(e.status, 404 | 422) && e.answered_by == Answerer::Queue,
            _ => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FalError::Api(e) => e.retry_after,
            _ => None,
        }
    }

    /// Field errors for the input form, when fal named fields.
    pub fn field_errors(&self) -> Vec<FieldError> {
        match self {
            FalError::Validation { errors, .. } => errors.iter().map(FalFieldError::to_field_error).collect(),
            _ => Vec::new(),
        }
    }

    pub(crate) fn network(url: &reqwest::Url, err: &reqwest::Error) -> FalError {
        if let Some(refused) = refusal_in(err) {
            return FalError::Refused(refused);
        }
        let kind = if err.is_builder() {
            NetworkKind::NotSent
        } else if err.is_connect() {
            NetworkKind::Connect
        } else if err.is_timeout() {
            NetworkKind::Timeout
        } else {
            NetworkKind::Other
        };
        FalError::Network {
            host: url.host_str().unwrap_or("?").to_string(),
            kind,
            message: error_chain(err),
            attempts: 0,
        }
    }

    pub(crate) fn with_attempts(self, n: usize) -> FalError {
        match self {
            FalError::Network { host, kind, message, .. } => FalError::Network { host, kind, message, attempts: n },
            other => other,
        }
    }

    /// Builds the error for a non-success answer, from its status, headers and body.
    pub(crate) fn from_response(status: u16, headers: &HeaderMap, body: &[u8]) -> FalError {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let request_id = header("x-fal-request-id");
        let json: Option<Value> = serde_json::from_slice(body).ok();
        if status == 422
            && let Some(Value::Array(items)) = json.as_ref().and_then(|j| j.get("detail"))
        {
            let errors = items.iter().map(parse_field_error).collect();
            return FalError::Validation { errors, request_id };
        }
        let text = String::from_utf8_lossy(body);
        let detail = match json.as_ref().and_then(|j| j.get("detail")) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => match json.as_ref().and_then(|j| j.get("message")).and_then(Value::as_str) {
                Some(m) => m.to_string(),
                None if json.is_some() => text.to_string(),
                None => first_line_of_html_or_text(&text),
            },
        };
        let ingress = request_id.is_none() && text.contains("nginx");
        FalError::Api(Box::new(ApiError {
            status,
            detail: crate::sanitize::strip_controls(&detail),
            error_type: json
                .as_ref()
                .and_then(|j| j.get("error_type"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| header("x-fal-error-type")),
            request_id,
            timeout_type: header("x-fal-request-timeout-type"),
            retry_after: header("retry-after").and_then(|v| parse_retry_after(&v)),
            ingress,
            answered_by: Answerer::Queue,
        }))
    }

    /// Names who sent an error answer (fal's queue unless told otherwise).
    pub(crate) fn answered_by(mut self, who: Answerer) -> FalError {
        if let FalError::Api(api) = &mut self {
            api.answered_by = who;
        }
        self
    }
}

fn parse_field_error(item: &Value) -> FalFieldError {
    let loc: Vec<Value> = item.get("loc").and_then(Value::as_array).cloned().unwrap_or_default();
    FalFieldError {
        field: Field::from_loc(&loc),
        loc,
        msg: crate::sanitize::strip_controls(item.get("msg").and_then(Value::as_str).unwrap_or("invalid value")),
        kind: item.get("type").and_then(Value::as_str).unwrap_or("unknown").to_string(),
        ctx: item.get("ctx").cloned(),
        input: item.get("input").cloned(),
    }
}

/// `Retry-After` is seconds or an HTTP date.
pub(crate) fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<f64>() {
        // A server may send anything here; an absurd value must not panic (capped at a day).
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

fn first_line_of_html_or_text(text: &str) -> String {
    // An nginx error page: its <title> says it all.
    if let Some(start) = text.find("<title>")
        && let Some(end) = text[start..].find("</title>")
    {
        return text[start + 7..start + end].trim().to_string();
    }
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    line.chars().take(200).collect()
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = e.source();
    }
    s
}

fn describe_validation(errors: &[FalFieldError]) -> String {
    let mut s = String::from("fal rejected the input:");
    for e in errors {
        s.push_str(&format!("\n  {}", e.to_field_error()));
    }
    s
}

fn describe_api(e: &ApiError) -> String {
    let mut s = format!("{} answered HTTP {}", e.answered_by, e.status);
    if let Some(t) = &e.error_type {
        s.push_str(&format!(" ({t})"));
    }
    if !e.detail.is_empty() {
        s.push_str(&format!(": {}", e.detail));
    }
    s.push_str(". ");
    s.push_str(match e.answered_by {
        Answerer::Queue | Answerer::Storage => request_error_hint(e.error_type.as_deref(), e.status),
        Answerer::Cdn { .. } => "The image could not be fetched from where fal stored it; try again later.",
        Answerer::RedirectTarget { .. } => {
            "That server is not fal's; the URL fal gave redirected there. Try again later, and report it if it persists."
        }
    });
    if let Some(id) = &e.request_id {
        s.push_str(&format!(" [request {id}]"));
    }
    s
}

/// What a person can do about a request (infrastructure) error.
fn request_error_hint(error_type: Option<&str>, status: u16) -> &'static str {
    match (error_type, status) {
        (Some("request_timeout" | "generation_timeout"), _) => {
            "The run took too long on fal's side; try again, perhaps with fewer images."
        }
        (Some("startup_timeout" | "runner_scheduling_failure"), _) => {
            "fal could not start the model in time; try again in a minute."
        }
        (Some(t), _) if t.starts_with("runner_") => "fal lost the machine running the model; try again.",
        (Some("client_cancelled" | "client_disconnected"), _) => "The request was cancelled.",
        (Some("bad_request"), _) => "fal could not read the request; check the input.",
        (_, 401) => "fal did not accept the key: set a valid FAL_KEY (or key in the config file).",
        (_, 403) => "The key lacks permission for this endpoint: check its scopes in fal's dashboard.",
        (_, 404) => "fal does not know this endpoint or request: check the endpoint id.",
        (_, 408 | 429) => "fal is busy or rate-limiting this key; wait a moment and try again.",
        (_, 500..=599) => "fal had a server-side problem; try again shortly.",
        _ => "See the message above.",
    }
}

/// What a person can do about a model (422) error type.
fn model_error_hint(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "content_policy_violation" => "fal's safety filter refused it; rephrase the prompt or raise safety_tolerance",
        "file_download_error" => "fal could not download this image; check that the URL is public and reachable",
        "image_load_error" => "fal could not read this image; use a PNG, JPEG or WebP file",
        "image_too_small" => "use a larger image",
        "image_too_large" => "use a smaller image",
        "file_too_large" => "use a smaller file",
        "no_media_generated" => "the model produced nothing; try another prompt or seed",
        "missing" => "this field is required",
        _ => return None,
    })
}

impl fmt::Display for NetworkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetworkKind::Connect => "could not connect",
            NetworkKind::NotSent => "could not be sent",
            NetworkKind::Timeout => "timed out",
            NetworkKind::Other => "connection failed",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn maps_422_detail_items_onto_fields() {
        let body = br#"{"detail":[
            {"loc":["body","guidance_scale"],"msg":"Input should be less than or equal to 20","type":"less_than_equal","url":"https://docs.fal.ai/errors/#less_than_equal","ctx":{"le":20},"input":21},
            {"loc":["body","input.image_urls"],"msg":"Failed to download the file","type":"file_download_error"},
            {"loc":["body","image_urls",1],"msg":"bad","type":"image_load_error"},
            {"loc":["body","prompt"],"msg":"Field required","type":"missing"}]}"#;
        let err = FalError::from_response(422, &HeaderMap::new(), body);
        let fields: Vec<Field> = err.field_errors().iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            vec![Field::GuidanceScale, Field::ImageUrls(None), Field::ImageUrls(Some(1)), Field::Prompt]
        );
        let text = err.to_string();
        assert!(text.contains("guidance_scale: Input should be less than or equal to 20 (less_than_equal)"), "{text}");
        assert!(text.contains("check that the URL is public"), "{text}");
        assert!(!err.is_retryable());
    }

    #[test]
    fn flat_errors_take_type_from_body_or_header() {
        let err = FalError::from_response(
            503,
            &headers(&[("x-fal-request-id", "r1"), ("x-fal-error-type", "runner_disconnected")]),
            br#"{"detail":"Runner disconnected"}"#,
        );
        let FalError::Api(api) = &err else { panic!("{err:?}") };
        assert_eq!(api.error_type.as_deref(), Some("runner_disconnected"));
        assert!(!api.ingress);
        assert!(!err.is_retryable(), "fal-generated 503 is not retried");
        assert!(err.submit_provably_not_accepted());
        assert!(err.to_string().contains("try again"), "{err}");

        let body_type =
            FalError::from_response(504, &HeaderMap::new(), br#"{"detail":"x","error_type":"request_timeout"}"#);
        assert!(matches!(&body_type, FalError::Api(a) if a.error_type.as_deref() == Some("request_timeout")));
    }

    #[test]
    fn ingress_gateway_errors_are_retryable_but_user_timeouts_never() {
        let nginx = b"<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>";
        let err = FalError::from_response(502, &HeaderMap::new(), nginx);
        assert!(err.is_retryable());
        assert!(err.to_string().contains("502 Bad Gateway"), "{err}");
        let user = FalError::from_response(504, &headers(&[("x-fal-request-timeout-type", "user")]), nginx);
        assert!(!user.is_retryable());
        for status in [408, 409, 429] {
            assert!(FalError::from_response(status, &HeaderMap::new(), b"{}").is_retryable(), "{status}");
        }
        for status in [400, 401, 404, 500] {
            assert!(!FalError::from_response(status, &HeaderMap::new(), b"{}").is_retryable(), "{status}");
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        let future = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(30));
        let d = parse_retry_after(&future).unwrap();
        assert!(d > Duration::from_secs(25) && d <= Duration::from_secs(30), "{d:?}");
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("1e30"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("NaN"), None);
        let err = FalError::from_response(429, &headers(&[("retry-after", "3")]), b"{}");
        assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    }

    #[test]
    fn only_fals_own_answers_are_verdicts() {
        let api = |status| FalError::from_response(status, &HeaderMap::new(), b"{}");
        assert!(api(404).is_fal_verdict(), "no such request");
        assert!(api(422).is_fal_verdict());
        assert!(
            FalError::from_response(422, &HeaderMap::new(), br#"{"detail":[{"loc":["body","prompt"]}]}"#)
                .is_fal_verdict()
        );
        assert!(FalError::RunFailed { error: "x".into(), error_type: None }.is_fal_verdict());
        for status in [400, 401, 403, 408, 429, 500, 502, 503, 504] {
            assert!(!api(status).is_fal_verdict(), "{status}");
        }
        let net = FalError::Network { host: "h".into(), kind: NetworkKind::Other, message: "m".into(), attempts: 1 };
        assert!(!net.is_fal_verdict());
        assert!(!FalError::Protocol("not JSON".into()).is_fal_verdict());
        assert!(!FalError::NotReady.is_fal_verdict());
        assert!(
            !FalError::TooLarge { host: "h".into(), what: "result".into(), limit: "64 MiB".into() }.is_fal_verdict()
        );
        let cdn_404 = FalError::from_response(404, &HeaderMap::new(), b"{}")
            .answered_by(Answerer::Cdn { host: "v3.fal.media".into() });
        assert!(!cdn_404.is_fal_verdict(), "only fal's queue gives a verdict on a request");
    }

    #[test]
    fn errors_name_who_answered() {
        let body = br#"{"detail":"Not Found"}"#;
        let queue = FalError::from_response(404, &HeaderMap::new(), body);
        assert!(queue.to_string().starts_with("fal's queue answered HTTP 404"), "{queue}");
        let cdn = FalError::from_response(404, &HeaderMap::new(), body)
            .answered_by(Answerer::Cdn { host: "v3.fal.media".into() });
        let text = cdn.to_string();
        assert!(text.starts_with("the CDN (v3.fal.media) answered HTTP 404"), "{text}");
        assert!(!text.contains("fal does not know this endpoint"), "{text}");
        let other = FalError::from_response(500, &HeaderMap::new(), body)
            .answered_by(Answerer::RedirectTarget { host: "evil.example".into() });
        let text = other.to_string();
        assert!(text.starts_with("a redirect target (evil.example) answered HTTP 500"), "{text}");
        assert!(!text.contains("fal had"), "{text}");
        let storage = FalError::from_response(403, &HeaderMap::new(), body).answered_by(Answerer::Storage);
        assert!(storage.to_string().starts_with("fal storage answered HTTP 403"), "{storage}");
    }

    #[test]
    fn detail_is_stripped_of_escape_sequences() {
        let err = FalError::from_response(400, &HeaderMap::new(), b"{\"detail\":\"bad \\u001b[31mred\\u001b[0m\"}");
        let text = err.to_string();
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("bad red"), "{text}");
    }
}
