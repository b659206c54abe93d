//! The status object, as `GET …/status` and each status-stream event carry it, and a request's
//! URLs: shared by `routes` and `sse`, so neither uses the other for it.

use serde_json::{Value, json};

use super::Shared;
use super::sim::{Job, Outcome, Phase};
use super::util::lock;

/// A request's `response_url`, `status_url` and `cancel_url`.
pub(crate) fn urls(shared: &Shared, app: &str, id: &str) -> (String, String, String) {
    let base = format!("{}/{app}/requests/{id}", shared.base_url);
    (base.clone(), format!("{base}/status"), format!("{base}/cancel"))
}

/// A status object and what it was built from.
pub(crate) struct StatusView {
    pub body: Value,
    pub phase: Phase,
    pub position: Option<usize>,
    pub total_logs: usize,
}

/// The status JSON; `logs` is `null` unless asked for, else the entries from `logs_from` on
/// (0 → cumulative, as polling returns).
pub(crate) fn status_body(shared: &Shared, job: &Job, with_logs: bool, logs_from: usize) -> StatusView {
    let position = lock(&shared.queue).position(&job.id);
    let st = lock(&job.state);
    let (response_url, status_url, cancel_url) = urls(shared, &job.app, &job.id);
    let logs = if with_logs { Value::Array(st.logs.get(logs_from..).unwrap_or(&[]).to_vec()) } else { Value::Null };
    let position = if st.phase == Phase::InQueue { position } else { None };
    let mut body = json!({
        "status": st.phase.as_str(),
        "request_id": job.id,
        "response_url": response_url,
        "status_url": status_url,
        "cancel_url": cancel_url,
        "queue_position": position,
        "logs": logs,
    });
    if let Some(obj) = body.as_object_mut() {
        match st.phase {
            Phase::InQueue => {}
            Phase::InProgress => {
                obj.insert("metrics".into(), json!({}));
            }
            Phase::Completed => {
                let metrics = match st.inference_time {
                    Some(t) => json!({ "inference_time": (t * 1000.0).round() / 1000.0 }),
                    None => json!({}),
                };
                obj.insert("metrics".into(), metrics);
                if let Some(Outcome::Infra { error, error_type, .. }) = &st.outcome {
                    obj.insert("error".into(), json!(error));
                    obj.insert("error_type".into(), json!(error_type));
                }
            }
        }
    }
    StatusView { body, phase: st.phase, position, total_logs: st.logs.len() }
}
