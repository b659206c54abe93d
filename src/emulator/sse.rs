//! `GET …/requests/{id}/status/stream`: Server-Sent Events, `data: {json}` only, incremental logs,
//! `: ping` keep-alives, closed right after the COMPLETED event.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, Response, header};
use bytes::Bytes;

use super::Shared;
use super::sim::{Job, Phase};
use super::status::status_body;
use super::util::lock;

pub(crate) fn stream(shared: Arc<Shared>, job: Arc<Job>, with_logs: bool, drop_after_first: bool) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(32);
    tokio::spawn(async move {
        let mut changed = job.changed.subscribe();
        let mut ping = tokio::time::interval(shared.config.ping_interval.max(std::time::Duration::from_millis(10)));
        ping.tick().await; // the first tick is immediate
        let mut sent_logs = 0usize;
        let mut last: Option<(Phase, Option<usize>)> = None;
        loop {
            changed.borrow_and_update();
            let view = status_body(&shared, &job, with_logs, sent_logs);
            let new_logs = with_logs && view.total_logs > sent_logs;
            if last != Some((view.phase, view.position)) || new_logs {
                let line = format!("data: {}\n\n", serde_json::to_string(&view.body).unwrap_or_default());
                if view.phase == Phase::Completed {
                    lock(&job.state).completed_streamed_at.get_or_insert_with(std::time::Instant::now);
                }
                if tx.send(Bytes::from(line)).await.is_err() {
                    return;
                }
                sent_logs = view.total_logs;
                last = Some((view.phase, view.position));
                if view.phase == Phase::Completed || drop_after_first {
                    return;
                }
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = ping.tick() => {
                    if tx.send(Bytes::from_static(b": ping\n\n")).await.is_err() {
                        return;
                    }
                }
                _ = shared.shutdown.cancelled() => return,
                _ = tx.closed() => return,
            }
        }
    });
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    }));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}
