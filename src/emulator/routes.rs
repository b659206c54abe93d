//! Request dispatch: classification, journal, fault injection, auth, and the route handlers
//! (queue, sync run, storage, CDN).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, Response, StatusCode, header};
use bytes::Bytes;
use serde_json::{Value, json};

use super::faults::FaultKind;
use super::platform::PlatformOp;
use super::sim::{self, Job, NewJob, Outcome, Phase};
use super::status::{status_body, urls};
use super::storage::TOKEN_TTL;
use super::util::{self, detail, flat_error, iso8601, json, lock, query_param, set_header};
use super::{ConnCtl, RecordedRequest, Route, Shared, bodies, sse};

/// Whether this emulator serves `endpoint`: every endpoint kontext ships a description of, and
/// the emulator's extra ones.
fn serves(endpoint: &str) -> bool {
    super::endpoints::catalog().get(endpoint).is_some()
}

/// Largest request body accepted (data URIs can be big).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// What a path means.
enum Target {
    Submit { app: String, endpoint: String },
    Queue { app: String, id: String, op: QueueOp },
    Run { endpoint: String },
    StorageInitiate,
    StorageToken,
    CdnUpload,
    UploadPut { path: String },
    FileGet { path: String },
    Platform(PlatformOp),
    Other { status: u16, msg: &'static str },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum QueueOp {
    Status,
    Stream,
    Result,
    Cancel,
}

fn classify(method: &Method, path: &str, query: Option<&str>) -> (Route, Target) {
    let mut segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // Trailing slash (the fal SDK polls `…/status/`).
    while segs.len() > 1 && segs.last() == Some(&"") {
        segs.pop();
    }
    let not_found = (Route::Other, Target::Other { status: 404, msg: "Not Found" });
    let wrong_method = (Route::Other, Target::Other { status: 405, msg: "Method Not Allowed" });
    if let Some(op) = PlatformOp::classify(&segs) {
        let allowed = match op {
            PlatformOp::Estimate => method == Method::POST,
            _ => method == Method::GET,
        };
        return if allowed { (Route::Platform, Target::Platform(op)) } else { wrong_method };
    }
    match segs.as_slice() {
        ["storage", "upload", "initiate"] if method == Method::POST => {
            (Route::StorageInitiate, Target::StorageInitiate)
        }
        ["storage", "auth", "token"] if method == Method::POST => (Route::StorageToken, Target::StorageToken),
        ["storage", ..] => not_found,
        ["files", "upload"] if method == Method::POST => (Route::CdnUpload, Target::CdnUpload),
        ["files", _, ..] => {
            if method == Method::PUT && query_param(query, "upload_token").is_some() {
                (Route::UploadPut, Target::UploadPut { path: path.to_string() })
            } else if method == Method::GET || method == Method::HEAD {
                (Route::FileGet, Target::FileGet { path: path.to_string() })
            } else {
                wrong_method
            }
        }
        ["run", owner, alias, rest @ ..] if !owner.is_empty() && !alias.is_empty() => {
            if method != Method::POST {
                return wrong_method;
            }
            let mut endpoint = format!("{owner}/{alias}");
            for r in rest {
                endpoint.push('/');
                endpoint.push_str(r);
            }
            (Route::Run, Target::Run { endpoint })
        }
        [owner, alias, rest @ ..] if !owner.is_empty() && !alias.is_empty() => {
            let app = format!("{owner}/{alias}");
            // `…/requests/{id}…`, also after a full endpoint id (`fal-ai/flux-pro/kontext/multi/requests/…`).
            if let Some(r) = rest.iter().position(|s| *s == "requests")
                && let Some(id) = rest.get(r + 1)
                && !id.is_empty()
            {
                let id = id.to_string();
                let tail = &rest[r + 2..];
                let (route, op) = match (method.clone(), tail) {
                    (Method::GET, []) => (Route::Result, QueueOp::Result),
                    (Method::GET, ["status"]) => (Route::Status, QueueOp::Status),
                    (Method::GET, ["status", "stream"]) => (Route::StatusStream, QueueOp::Stream),
                    (Method::PUT, ["cancel"]) => (Route::Cancel, QueueOp::Cancel),
                    (_, [] | ["status"] | ["status", "stream"] | ["cancel"]) => {
                        return wrong_method;
                    }
                    _ => return not_found,
                };
                return (route, Target::Queue { app, id, op });
            }
            if method != Method::POST {
                return wrong_method;
            }
            let mut endpoint = app.clone();
            for r in rest {
                endpoint.push('/');
                endpoint.push_str(r);
            }
            (Route::Submit, Target::Submit { app, endpoint })
        }
        _ => not_found,
    }
}

/// `logs=1|true` → true; `0|false`, absent or anything else → false.
fn logs_param(query: Option<&str>) -> bool {
    query_param(query, "logs")
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// `Authorization: Key <non-empty>` (a `Bearer` token is accepted too, like `fal auth login`).
fn authorized(h: &HeaderMap) -> bool {
    header_str(h, "authorization").is_some_and(|v| {
        let v = v.trim();
        let (scheme, cred) = v.split_once(' ').unwrap_or((v, ""));
        (scheme.eq_ignore_ascii_case("key") || scheme.eq_ignore_ascii_case("bearer")) && !cred.trim().is_empty()
    })
}

fn bearer(h: &HeaderMap) -> Option<String> {
    let v = header_str(h, "authorization")?.trim();
    let (scheme, cred) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| cred.trim().to_string())
}

/// What the connection should do after the handler.
#[derive(Clone, Copy, PartialEq, Eq)]
enum After {
    Answer,
    Reset,
    Hang,
}

/// The single entry point: every request goes through here.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let headers = parts.headers;
    let conn = parts.extensions.get::<ConnectInfo<ConnCtl>>().map(|c| c.0.clone());
    let (route, target) = classify(&method, &path, query.as_deref());

    let idx = {
        let mut j = lock(&shared.journal);
        j.push(RecordedRequest {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
            host: header_str(&headers, "host").unwrap_or("").to_string(),
            has_authorization: headers.contains_key(header::AUTHORIZATION),
            route,
            status: 0,
        });
        j.len() - 1
    };
    if route == Route::Submit {
        shared.submits.fetch_add(1, Ordering::SeqCst);
    }

    let decision = if route == Route::Other { Default::default() } else { lock(&shared.faults).decide(route) };
    if !decision.delay.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(decision.delay) => {}
            _ = shared.shutdown.cancelled() => {}
        }
    }
    let mut after = After::Answer;
    let mut flags = Flags::default();
    // Body faults change the real answer once it is made (a stream is never reshaped).
    let reshape = decision.kind.filter(|k| bodies::reshapes(*k) && route != Route::StatusStream);
    let early = match decision.kind {
        Some(FaultKind::RateLimit) => {
            let mut r = detail(429, "Rate limit exceeded");
            set_header(&mut r, "retry-after", "1");
            Some(r)
        }
        Some(FaultKind::Status408) => Some(detail(408, "Request Timeout")),
        Some(FaultKind::Status409) => Some(detail(409, "Conflict")),
        Some(FaultKind::Ingress502) => Some(nginx(502, "Bad Gateway")),
        Some(FaultKind::Ingress504) => Some(nginx(504, "Gateway Time-out")),
        Some(FaultKind::Fal503) => {
            let mut r = flat_error(503, "Could not connect to the runner", "runner_connection_error");
            set_header(&mut r, "x-fal-request-id", &uuid::Uuid::new_v4().to_string());
            Some(r)
        }
        Some(FaultKind::UserTimeout504) => {
            let mut r = flat_error(504, "Request timed out", "request_timeout");
            set_header(&mut r, "x-fal-request-timeout-type", "user");
            set_header(&mut r, "x-fal-request-id", &uuid::Uuid::new_v4().to_string());
            Some(r)
        }
        Some(FaultKind::Internal500) => {
            let mut r = flat_error(500, "Internal server error", "internal_error");
            set_header(&mut r, "x-fal-request-id", &uuid::Uuid::new_v4().to_string());
            Some(r)
        }
        Some(FaultKind::Reset) => {
            after = After::Reset;
            None
        }
        Some(FaultKind::Hang) => {
            after = After::Hang;
            None
        }
        Some(FaultKind::DropStream) => {
            flags.drop_stream = true;
            None
        }
        Some(FaultKind::Fail) => {
            flags.fail = true;
            None
        }
        Some(FaultKind::Redirect) => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::FOUND;
            set_header(&mut r, "location", decision.location.as_deref().unwrap_or("/"));
            Some(r)
        }
        Some(FaultKind::HostileText) => {
            flags.hostile_text = true;
            None
        }
        Some(kind) if !bodies::reshapes(kind) && kind != FaultKind::Slow => bodies::replacement(kind, &shared.shutdown),
        Some(_) | None => None,
    };

    let resp = match early {
        Some(r) => r,
        None => {
            let needs_key = matches!(
                route,
                Route::Submit
                    | Route::Status
                    | Route::StatusStream
                    | Route::Result
                    | Route::Cancel
                    | Route::Run
                    | Route::StorageInitiate
                    | Route::StorageToken
            );
            let needs_key = needs_key || matches!(&target, Target::Platform(op) if op.needs_key());
            if needs_key && !authorized(&headers) {
                detail(401, "Authorization header is required")
            } else {
                let req = Req { shared: shared.clone(), headers, query, body, flags };
                serve(req, target).await
            }
        }
    };
    let resp = match reshape {
        Some(kind) => bodies::reshape(resp, kind, &shared.shutdown).await,
        None => resp,
    };
    if let Some(entry) = lock(&shared.journal).get_mut(idx) {
        entry.status = if after == After::Hang { 0 } else { resp.status().as_u16() };
    }
    match after {
        After::Answer => resp,
        After::Reset => {
            // The work is done; break the connection before the response reaches the client.
            if let Some(c) = conn {
                c.kill();
            }
            resp
        }
        After::Hang => {
            shared.shutdown.cancelled().await;
            if let Some(c) = conn {
                c.kill();
            }
            resp
        }
    }
}

fn nginx(status: u16, reason: &str) -> Response<Body> {
    let html = format!(
        "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    );
    let mut r = Response::new(Body::from(html));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    set_header(&mut r, "content-type", "text/html");
    r
}

#[derive(Default, Clone, Copy)]
struct Flags {
    drop_stream: bool,
    fail: bool,
    hostile_text: bool,
}

struct Req {
    shared: Arc<Shared>,
    headers: HeaderMap,
    query: Option<String>,
    body: Body,
    flags: Flags,
}

impl Req {
    async fn bytes(self) -> Result<(Arc<Shared>, HeaderMap, Option<String>, Flags, Bytes), Response<Body>> {
        match axum::body::to_bytes(self.body, MAX_BODY).await {
            Ok(b) => Ok((self.shared, self.headers, self.query, self.flags, b)),
            Err(_) => Err(detail(413, "Request body too large")),
        }
    }
}

async fn serve(req: Req, target: Target) -> Response<Body> {
    match target {
        Target::Other { status, msg } => detail(status, msg),
        Target::Submit { app, endpoint } => submit(req, app, endpoint).await,
        Target::Queue { app, id, op } => queue_op(req, app, id, op).await,
        Target::Run { endpoint } => run(req, endpoint).await,
        Target::StorageInitiate => initiate(req).await,
        Target::StorageToken => token(req),
        Target::CdnUpload => cdn_upload(req).await,
        Target::UploadPut { path } => upload_put(req, path).await,
        Target::FileGet { path } => file_get(&req.shared, &path),
        Target::Platform(op) => {
            let (shared, _, query, _, body) = match req.bytes().await {
                Ok(v) => v,
                Err(r) => return r,
            };
            super::platform::serve(&shared, op, query.as_deref(), &body)
        }
    }
}

fn app_not_found(endpoint: &str) -> Response<Body> {
    detail(404, &format!("Application '{endpoint}' not found"))
}

fn parse_body(b: &Bytes) -> Result<Value, String> {
    serde_json::from_slice(b).map_err(|e| e.to_string())
}

async fn submit(req: Req, app: String, endpoint: String) -> Response<Body> {
    if !serves(&endpoint) {
        return app_not_found(&endpoint);
    }
    let (shared, headers, query, flags, body) = match req.bytes().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let start_timeout = header_str(&headers, "x-fal-request-timeout")
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e6)
        .map(Duration::from_secs_f64);
    let (job, position) = sim::enqueue(
        &shared,
        NewJob {
            app: app.clone(),
            endpoint,
            body: parse_body(&body),
            fail: flags.fail,
            hostile_text: flags.hostile_text,
            webhook: query_param(query.as_deref(), "fal_webhook"),
            start_timeout,
        },
    );
    let (response_url, status_url, cancel_url) = urls(&shared, &app, &job.id);
    let mut r = json(
        200,
        &json!({
            "status": "IN_QUEUE",
            "request_id": job.id,
            "response_url": response_url,
            "status_url": status_url,
            "cancel_url": cancel_url,
            "queue_position": position,
        }),
    );
    set_header(&mut r, "x-fal-request-id", &job.id);
    r
}

fn find_job(shared: &Shared, app: &str, id: &str) -> Option<Arc<Job>> {
    lock(&shared.queue).jobs.get(id).filter(|j| j.app == app).cloned()
}

async fn queue_op(req: Req, app: String, id: String, op: QueueOp) -> Response<Body> {
    let shared = req.shared.clone();
    let Some(job) = find_job(&shared, &app, &id) else {
        return match op {
            QueueOp::Cancel => json(404, &json!({"status": "NOT_FOUND"})),
            _ => detail(404, "Request not found"),
        };
    };
    let with_logs = logs_param(req.query.as_deref());
    match op {
        QueueOp::Status => {
            let view = status_body(&shared, &job, with_logs, 0);
            let code = if view.phase == Phase::Completed { 200 } else { 202 };
            json(code, &view.body)
        }
        QueueOp::Stream => sse::stream(shared, job, with_logs, req.flags.drop_stream),
        QueueOp::Result => {
            let outcome = {
                let st = lock(&job.state);
                (st.phase == Phase::Completed).then(|| st.outcome.clone()).flatten()
            };
            let mut r = match outcome {
                None => {
                    let (response_url, status_url, cancel_url) = urls(&shared, &job.app, &job.id);
                    json(
                        400,
                        &json!({
                            "detail": "Request is still in progress",
                            "request_id": job.id,
                            "response_url": response_url,
                            "status_url": status_url,
                            "cancel_url": cancel_url,
                        }),
                    )
                }
                Some(o) => outcome_response(&o),
            };
            set_header(&mut r, "x-fal-request-id", &job.id);
            r
        }
        QueueOp::Cancel => {
            if sim::remove_waiting(&shared, &job.id) {
                sim::complete(&job, Outcome::cancelled());
                return json(202, &json!({"status": "CANCELLATION_REQUESTED"}));
            }
            if lock(&job.state).phase == Phase::Completed {
                return json(400, &json!({"status": "ALREADY_COMPLETED"}));
            }
            job.cancel.cancel();
            json(202, &json!({"status": "CANCELLATION_REQUESTED"}))
        }
    }
}

fn outcome_response(o: &Outcome) -> Response<Body> {
    match o {
        Outcome::Success { output, billable_units } => {
            let mut r = json(200, output);
            // What fal bills for the result, in the endpoint's unit.
            set_header(&mut r, "x-fal-billable-units", &crate::model::cost::units_text(*billable_units));
            r
        }
        Outcome::ModelError { status, body } => json(*status, body),
        Outcome::Infra { status, error, error_type, user_timeout } => {
            let mut r = flat_error(*status, error, error_type);
            if *user_timeout {
                set_header(&mut r, "x-fal-request-timeout-type", "user");
            }
            r
        }
    }
}

async fn run(req: Req, endpoint: String) -> Response<Body> {
    if !serves(&endpoint) {
        return app_not_found(&endpoint);
    }
    let (shared, _, _, flags, body) = match req.bytes().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let outcome = sim::run_model(&shared, &endpoint, &parse_body(&body), None, flags.fail, &cancel).await;
    let mut r = outcome_response(&outcome);
    set_header(&mut r, "x-fal-request-id", &uuid::Uuid::new_v4().to_string());
    r
}

/// A new `/files/<animal>/<id>_<name>` path.
fn new_file_path(shared: &Shared, name: &str) -> String {
    let mut rng = lock(&shared.rng);
    format!("/files/{}/{}_{}", util::animal(&mut *rng), util::nano_id(&mut *rng, 21), util::sanitize_file_name(name))
}

async fn initiate(req: Req) -> Response<Body> {
    let (shared, _, _, _, body) = match req.bytes().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let v: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return json(
                422,
                &json!({"detail": [{
                    "loc": ["body"],
                    "msg": "Input should be a valid dictionary or object to extract fields from",
                    "type": "model_attributes_type",
                    "url": "https://docs.fal.ai/errors/#model_attributes_type",
                    "input": String::from_utf8_lossy(&body),
                }]}),
            );
        }
    };
    let content_type = v["content_type"].as_str().unwrap_or("application/octet-stream").to_string();
    let file_name =
        v["file_name"].as_str().map(str::to_string).unwrap_or_else(|| format!("file.{}", util::ext_for(&content_type)));
    let path = new_file_path(&shared, &file_name);
    let token = {
        let mut rng = lock(&shared.rng);
        util::nano_id(&mut *rng, 32)
    };
    lock(&shared.store).add_pending(path.clone(), token.clone(), content_type);
    json(
        200,
        &json!({
            "upload_url": format!("{}{path}?upload_token={token}", shared.cdn_base_url),
            "file_url": format!("{}{path}", shared.cdn_base_url),
        }),
    )
}

fn token(req: Req) -> Response<Body> {
    let shared = req.shared;
    let token = {
        let mut rng = lock(&shared.rng);
        util::nano_id(&mut *rng, 43)
    };
    let expires = SystemTime::now() + TOKEN_TTL;
    lock(&shared.store).add_token(token.clone(), expires);
    json(
        200,
        &json!({
            "token": token,
            "token_type": "Bearer",
            "base_url": shared.cdn_base_url,
            "expires_at": iso8601(expires, false),
        }),
    )
}

async fn cdn_upload(req: Req) -> Response<Body> {
    let valid = bearer(&req.headers).is_some_and(|t| lock(&req.shared.store).token_valid(&t));
    if !valid {
        return detail(401, "Invalid or expired token");
    }
    let (shared, headers, _, _, body) = match req.bytes().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let content_type = header_str(&headers, "content-type").unwrap_or("application/octet-stream").to_string();
    let name = header_str(&headers, "x-fal-file-name")
        .map(str::to_string)
        .unwrap_or_else(|| format!("file.{}", util::ext_for(&content_type)));
    let path = new_file_path(&shared, &name);
    lock(&shared.store).put(path.clone(), content_type.clone(), body);
    json(
        200,
        &json!({
            "access_url": format!("{}{path}", shared.cdn_base_url),
            "content_type": content_type,
        }),
    )
}

async fn upload_put(req: Req, path: String) -> Response<Body> {
    let token = query_param(req.query.as_deref(), "upload_token").unwrap_or_default();
    let announced = lock(&req.shared.store).take_pending(&path, &token);
    let Some(announced) = announced else {
        return detail(403, "Invalid or expired upload URL");
    };
    let (shared, headers, _, _, body) = match req.bytes().await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let content_type = header_str(&headers, "content-type").map(str::to_string).unwrap_or(announced);
    lock(&shared.store).put(path, content_type, body);
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::OK;
    r
}

fn file_get(shared: &Shared, path: &str) -> Response<Body> {
    match lock(&shared.store).get(path) {
        Some(f) => {
            let len = f.bytes.len().to_string();
            let mut r = Response::new(Body::from(f.bytes));
            set_header(&mut r, "content-type", &f.content_type);
            set_header(&mut r, "content-length", &len);
            set_header(&mut r, "cache-control", "public, max-age=3600");
            r
        }
        None => detail(404, "File not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::util::percent_decode;

    #[test]
    fn query_parsing() {
        assert_eq!(
            query_param(Some("fal_webhook=http%3A%2F%2Fx%2Fy&logs=1"), "fal_webhook").as_deref(),
            Some("http://x/y")
        );
        assert!(logs_param(Some("logs=true")));
        assert!(!logs_param(Some("logs=0")));
        assert!(!logs_param(None));
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
