//! Faults in the body of an answer: trickling, cut short, garbled, oversized, a stream line
//! without end, extra images. Every generated stream stops when the emulator shuts down.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::faults::FaultKind;

/// How fast a trickling body arrives.
const TRICKLE_EVERY: Duration = Duration::from_millis(20);
/// What the oversized answers announce or stream at most.
const OVERSIZE_BYTES: u64 = 1024 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;

/// Faults that change a real answer (the others replace it).
pub(crate) fn reshapes(kind: FaultKind) -> bool {
    matches!(
        kind,
        FaultKind::Trickle | FaultKind::ShortBody | FaultKind::Truncated | FaultKind::NotJson | FaultKind::ExtraImages
    )
}

fn streamed<S>(stream: S, stop: &CancellationToken) -> Body
where
    S: futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    Body::from_stream(stream.take_until(stop.clone().cancelled_owned()))
}

/// Answers made up by a fault: `None` when `kind` does not replace the answer.
pub(crate) fn replacement(kind: FaultKind, stop: &CancellationToken) -> Option<Response<Body>> {
    let zeros =
        move || futures::stream::iter(0..OVERSIZE_BYTES / CHUNK as u64).map(|_| Ok(Bytes::from_static(&[0u8; CHUNK])));
    let mut resp = match kind {
        FaultKind::NotReady => {
            return Some(super::util::detail(400, "Request is still in progress"));
        }
        FaultKind::Oversize => {
            let mut r = Response::new(streamed(zeros(), stop));
            r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(OVERSIZE_BYTES));
            r
        }
        FaultKind::OversizeChunked => Response::new(streamed(zeros(), stop)),
        FaultKind::NoNewline => {
            let head = futures::stream::once(async { Ok(Bytes::from_static(b"data: ")) });
            let endless = futures::stream::iter(0..OVERSIZE_BYTES / CHUNK as u64).then(|_| async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok(Bytes::from_static(&[b'x'; CHUNK]))
            });
            let mut r = Response::new(streamed(head.chain(endless), stop));
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            return Some(r);
        }
        _ => return None,
    };
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Some(resp)
}

/// Applies a reshaping fault to a finished (not streaming) answer.
pub(crate) async fn reshape(resp: Response<Body>, kind: FaultKind, stop: &CancellationToken) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = match kind {
        FaultKind::Trickle => {
            let bytes_each = futures::stream::iter(0..bytes.len()).then(move |i| {
                let b = bytes.slice(i..i + 1);
                async move {
                    tokio::time::sleep(TRICKLE_EVERY).await;
                    Ok::<_, std::io::Error>(b)
                }
            });
            streamed(bytes_each, stop)
        }
        FaultKind::ShortBody => {
            parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            let half = bytes.slice(..bytes.len() / 2);
            // An error from the body makes the server drop the connection mid-answer; the pause
            // lets the headers and the first half go out first.
            let cut = futures::stream::once(async { Ok(half) }).chain(futures::stream::once(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(std::io::Error::other("short-body fault"))
            }));
            streamed(cut, stop)
        }
        FaultKind::Truncated => {
            parts.status = StatusCode::OK;
            Body::from(bytes.slice(..bytes.len() / 2))
        }
        FaultKind::NotJson => {
            parts.status = StatusCode::OK;
            parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            Body::from("<html><body><h1>Service temporarily unavailable</h1></body></html>")
        }
        FaultKind::ExtraImages => match serde_json::from_slice::<Value>(&bytes) {
            Ok(mut v) => {
                if let Some(images) = v.get_mut("images").and_then(Value::as_array_mut)
                    && let Some(first) = images.first().cloned()
                {
                    images.extend([first.clone(), first]);
                }
                Body::from(serde_json::to_vec(&v).unwrap_or_default())
            }
            Err(_) => Body::from(bytes),
        },
        _ => Body::from(bytes),
    };
    Response::from_parts(parts, body)
}
