//! The fal client against the emulator: every protocol path, retry rule and safety property the
//! foundation issue lists. Loopback only.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use kontext::emulator::{Emulator, EmulatorConfig, FaultSpec, Route};
use kontext::fal::*;
use kontext::model::*;
use kontext::runner::verify_image;
use serde_json::json;

const TEST_KEY: &str = "test-key-id:test-key-secret";

async fn start(config: EmulatorConfig) -> Emulator {
    Emulator::start(config, 0).await.expect("emulator starts")
}

fn with_faults(spec: &str) -> EmulatorConfig {
    EmulatorConfig { faults: spec.parse::<FaultSpec>().expect("fault spec"), ..EmulatorConfig::fast() }
}

fn client_for(emu: &Emulator) -> FalClient {
    let mut cfg = FalConfig::single_host(emu.base_url().parse().unwrap(), FalKey::new(TEST_KEY));
    cfg.retry =
        RetryPolicy { max_attempts: 4, base_delay: Duration::from_millis(10), max_delay: Duration::from_millis(200) };
    cfg.poll_interval = Duration::from_millis(20);
    cfg.timeout = Duration::from_secs(10);
    FalClient::new(cfg).unwrap()
}

fn input(prompt: &str, urls: Vec<String>) -> KontextInput {
    let draft = Draft { prompt: prompt.into(), images: urls.clone(), ..Draft::default() };
    draft.validate(MAX_INPUT_IMAGES).unwrap().to_wire(urls)
}

fn sample_input() -> KontextInput {
    input(
        "Put the little duckling on top of the woman's t-shirt.",
        vec![
            "https://v3.fal.media/files/penguin/XoW0qavfF-ahg-jX4BMyL_image.webp".into(),
            "https://v3.fal.media/files/tiger/bml6YA7DWJXOigadvxk75_image.webp".into(),
        ],
    )
}

fn png_bytes(w: u32, h: u32, rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb(rgb));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn routes(emu: &Emulator, route: Route) -> Vec<kontext::emulator::RecordedRequest> {
    emu.journal().into_iter().filter(|r| r.route == route).collect()
}

#[tokio::test]
async fn full_run_with_logs_over_the_status_stream() {
    let emu = start(EmulatorConfig::fast()).await;
    let client = client_for(&emu);
    let handle = client.submit(&Endpoint::default(), &sample_input()).await.unwrap();
    assert!(handle.status_url.contains("/fal-ai/flux-pro/requests/"), "owner/alias URLs: {}", handle.status_url);

    let mut updates = Vec::new();
    let done = client.follow(&handle, FollowMode::Stream, |u| updates.push(u)).await.unwrap();
    assert!(updates.contains(&StatusUpdate::InProgress), "{updates:?}");
    assert_eq!(updates.last(), Some(&StatusUpdate::Completed));
    assert!(!updates.iter().any(|u| matches!(u, StatusUpdate::Note(_))), "no fallback expected: {updates:?}");
    let streamed: Vec<String> = updates
        .iter()
        .filter_map(|u| if let StatusUpdate::Logs(l) = u { Some(l) } else { None })
        .flatten()
        .map(|l| l.message.clone())
        .collect();
    let logs = done.logs.unwrap();
    assert!(logs.len() >= 2, "believable logs expected: {logs:?}");
    assert_eq!(streamed, logs.iter().map(|l| l.message.clone()).collect::<Vec<_>>());
    assert_eq!(routes(&emu, Route::StatusStream).len(), 1);
    assert!(routes(&emu, Route::Status).is_empty(), "the stream alone suffices");

    let raw = client.result(&handle).await.unwrap();
    let out: KontextOutput = serde_json::from_value(raw).unwrap();
    assert_eq!(out.images.len(), 1);
    assert_eq!(out.has_nsfw_concepts, vec![false]);
    assert_eq!(out.prompt, sample_input().prompt());
    let media = client.download(&out.images[0].url).await.unwrap();
    let v = verify_image(&media.bytes, out.images[0].content_type.as_deref()).unwrap();
    assert_eq!(v.format, image::ImageFormat::Jpeg);
    assert_eq!(Some(v.width), out.images[0].width);
}

#[tokio::test]
async fn full_run_with_logs_over_polling() {
    let emu = start(EmulatorConfig::fast()).await;
    let client = client_for(&emu);
    let handle = client.submit(&Endpoint::default(), &sample_input()).await.unwrap();
    let mut log_batches = Vec::new();
    let done = client
        .follow(&handle, FollowMode::Poll, |u| {
            if let StatusUpdate::Logs(l) = u {
                log_batches.push(l)
            }
        })
        .await
        .unwrap();
    let logs = done.logs.unwrap();
    let flat: Vec<_> = log_batches.into_iter().flatten().collect();
    assert_eq!(flat, logs, "cumulative polling must not repeat lines");
    assert!(logs.len() >= 2);
    assert!(routes(&emu, Route::StatusStream).is_empty());
    let polls = routes(&emu, Route::Status);
    assert!(polls.len() >= 2);
    assert!(polls.iter().all(|r| r.query.as_deref() == Some("logs=1")), "{polls:?}");
    let out: KontextOutput = serde_json::from_value(client.result(&handle).await.unwrap()).unwrap();
    assert_eq!(out.images.len(), 1);
}

#[tokio::test]
async fn a_dropped_stream_falls_back_to_polling_without_losing_or_repeating_logs() {
    let emu = start(with_faults("drop-stream:1")).await;
    let client = client_for(&emu);
    let handle = client.submit(&Endpoint::default(), &sample_input()).await.unwrap();
    let mut updates = Vec::new();
    let done = client.follow(&handle, FollowMode::Stream, |u| updates.push(u)).await.unwrap();
    assert!(updates.iter().any(|u| matches!(u, StatusUpdate::Note(n) if n.contains("polling"))), "{updates:?}");
    assert!(!routes(&emu, Route::Status).is_empty(), "fell back to polling");
    let logs = done.logs.unwrap();
    let mut seen = std::collections::HashSet::new();
    for l in &logs {
        assert!(seen.insert((l.timestamp.clone(), l.message.clone())), "duplicate log line {l:?}");
    }
    // Compare with the emulator's own complete list.
    let full = client.status(&handle, true).await.unwrap().logs.unwrap();
    assert_eq!(logs, full);
}

#[tokio::test]
async fn cancel_in_each_state() {
    let config = EmulatorConfig { concurrency: 1, processing_time: Duration::from_secs(3), ..EmulatorConfig::fast() };
    let emu = start(config).await;
    let client = client_for(&emu);
    let endpoint = Endpoint::default();
    let running = client.submit(&endpoint, &sample_input()).await.unwrap();
    let queued = client.submit(&endpoint, &sample_input()).await.unwrap();

    // Wait until the first runs and the second waits behind it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let s = client.status(&running, false).await.unwrap();
        if s.status == StatusKind::InProgress {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let q = client.status(&queued, false).await.unwrap();
    assert_eq!((q.status, q.queue_position), (StatusKind::InQueue, Some(0)));

    assert_eq!(client.cancel(&queued).await.unwrap(), CancelOutcome::Requested);
    assert_eq!(client.cancel(&running).await.unwrap(), CancelOutcome::Requested);
    for h in [&queued, &running] {
        let err = client.follow(h, FollowMode::Stream, |_| {}).await.unwrap_err();
        assert!(matches!(err, FalError::RunFailed { .. }), "a cancelled request ends in an error: {err:?}");
        assert!(client.result(h).await.is_err(), "no result for a cancelled request");
    }
    assert_eq!(client.cancel(&running).await.unwrap(), CancelOutcome::AlreadyCompleted);
    let unknown = RequestHandle::from_request_id(client.config(), &endpoint, "00000000-0000-4000-8000-000000000000");
    assert_eq!(client.cancel(&unknown).await.unwrap(), CancelOutcome::NotFound);
}

#[tokio::test]
async fn fal_validation_errors_map_back_onto_fields() {
    let emu = start(EmulatorConfig::fast()).await;
    let client = client_for(&emu);
    let body = json!({
        "prompt": "p",
        "image_urls": ["https://v3.fal.media/files/penguin/x.webp"],
        "guidance_scale": 25,
        "safety_tolerance": 2,
        "num_images": 9
    });
    let handle = client.submit_json(&Endpoint::default(), &body).await.unwrap();
    client.follow(&handle, FollowMode::Stream, |_| {}).await.unwrap();
    let err = client.result(&handle).await.unwrap_err();
    let fields: Vec<Field> = err.field_errors().iter().map(|f| f.field).collect();
    assert!(fields.contains(&Field::GuidanceScale), "{err}");
    assert!(fields.contains(&Field::SafetyTolerance), "{err}");
    assert!(fields.contains(&Field::NumImages), "{err}");
    let FalError::Validation { errors, .. } = &err else { panic!("{err:?}") };
    let g = errors.iter().find(|e| e.field == Field::GuidanceScale).unwrap();
    assert_eq!(g.ctx, Some(json!({"le": 20})));
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn idempotent_calls_retry_through_transient_faults() {
    // Two rate limits, a gateway error and a reset before each call gets through.
    let emu = start(with_faults("429@status:#2,502@result:#1,reset@result:#1,408@cancel:#1")).await;
    let client = client_for(&emu);
    let handle = client.submit(&Endpoint::default(), &sample_input()).await.unwrap();
    let s = client.status(&handle, true).await.unwrap();
    assert!(matches!(s.status, StatusKind::InQueue | StatusKind::InProgress | StatusKind::Completed));
    let statuses: Vec<u16> = routes(&emu, Route::Status).iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..2], &[429, 429], "{statuses:?}");
    assert!(matches!(statuses[2], 200 | 202), "the third attempt got through: {statuses:?}");

    client.follow(&handle, FollowMode::Stream, |_| {}).await.unwrap();
    let out = client.result(&handle).await.unwrap();
    assert!(out.get("images").is_some());
    assert!(routes(&emu, Route::Result).len() >= 3, "502 and reset were retried");
    assert_eq!(client.cancel(&handle).await.unwrap(), CancelOutcome::AlreadyCompleted);
    assert_eq!(routes(&emu, Route::Cancel).len(), 2, "408 was retried once");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let emu = start(with_faults("429@status:#1")).await;
    let client = client_for(&emu);
    let handle = client.submit(&Endpoint::default(), &sample_input()).await.unwrap();
    let t = std::time::Instant::now();
    client.status(&handle, false).await.unwrap();
    // The emulator says Retry-After: 1; the client's own backoff would be ~10 ms (capped at 200 ms
    // by this test's policy, so the wait is capped there too).
    assert!(t.elapsed() >= Duration::from_millis(150), "waited {:?}", t.elapsed());
}

#[tokio::test]
async fn non_retryable_answers_fail_at_once() {
    let emu = start(with_faults("503@status:#1,504-user@result:#1")).await;
    let client = client_for(&emu);
    let handle = client.submit(&Endpoint::default(), &sample_input()).await.unwrap();
    let err = client.status(&handle, false).await.unwrap_err();
    assert!(matches!(&err, FalError::Api(a) if a.status == 503 && !a.ingress), "{err:?}");
    assert_eq!(routes(&emu, Route::Status).len(), 1, "a fal-generated 503 is not retried");

    client.follow(&handle, FollowMode::Poll, |_| {}).await.unwrap();
    let err = client.result(&handle).await.unwrap_err();
    assert!(
        matches!(&err, FalError::Api(a) if a.status == 504 && a.timeout_type.as_deref() == Some("user")),
        "{err:?}"
    );
    assert_eq!(routes(&emu, Route::Result).len(), 1, "a user-deadline 504 is never retried");
}

#[tokio::test]
async fn submit_is_retried_only_when_provably_not_accepted() {
    let emu = start(with_faults("429@submit:#1,503@submit:#1")).await;
    let client = client_for(&emu);
    let handle = client.submit(&Endpoint::default(), &sample_input()).await.unwrap();
    let submits: Vec<u16> = routes(&emu, Route::Submit).iter().map(|r| r.status).collect();
    assert_eq!(submits, vec![429, 503, 200]);
    client.follow(&handle, FollowMode::Stream, |_| {}).await.unwrap();
}

#[tokio::test]
async fn an_ambiguous_submit_is_never_repeated() {
    // The connection breaks after the emulator accepted the request.
    let emu = start(with_faults("reset@submit:#1")).await;
    let client = client_for(&emu);
    let err = client.submit(&Endpoint::default(), &sample_input()).await.unwrap_err();
    assert!(matches!(err, SubmitError::Ambiguous(_)), "{err:?}");
    assert!(err.to_string().contains("not sent again"), "{err}");
    assert_eq!(emu.submit_count(), 1, "exactly one submit reached fal");

    // A submit that times out after being sent is just as ambiguous.
    let emu = start(with_faults("hang@submit:#1")).await;
    let mut cfg = client_for(&emu).config().clone();
    cfg.timeout = Duration::from_millis(300);
    let client = FalClient::new(cfg).unwrap();
    let err = client.submit(&Endpoint::default(), &sample_input()).await.unwrap_err();
    assert!(matches!(&err, SubmitError::Ambiguous(FalError::Network { kind: NetworkKind::Timeout, .. })), "{err:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(emu.submit_count(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cfg = FalConfig::single_host(format!("http://127.0.0.1:{port}").parse().unwrap(), FalKey::new(TEST_KEY));
    cfg.retry =
        RetryPolicy { max_attempts: 3, base_delay: Duration::from_millis(5), max_delay: Duration::from_millis(20) };
    let client = FalClient::new(cfg).unwrap();
    let err = client.submit(&Endpoint::default(), &sample_input()).await.unwrap_err();
    match err {
        SubmitError::Rejected(FalError::Network { kind: NetworkKind::Connect, attempts, .. }) => {
            assert_eq!(attempts, 2)
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_local_file_is_uploaded_and_used() {
    let emu = start(EmulatorConfig::fast()).await;
    let client = client_for(&emu);
    let bytes = png_bytes(64, 48, [200, 30, 30]);
    let url = client.upload(Bytes::from(bytes.clone()), "image/png", "red.png").await.unwrap();
    assert!(url.starts_with(emu.cdn_base_url()), "{url}");
    let back = client.download(&url).await.unwrap();
    assert_eq!(&back.bytes[..], &bytes[..]);
    let puts = routes(&emu, Route::UploadPut);
    assert_eq!(puts.len(), 1);
    assert!(!puts[0].has_authorization, "presigned upload URLs get no key");
    assert!(routes(&emu, Route::StorageInitiate)[0].has_authorization);

    let handle = client.submit(&Endpoint::default(), &input("make it blue", vec![url])).await.unwrap();
    let done = client.follow(&handle, FollowMode::Stream, |_| {}).await.unwrap();
    let text: String = done.logs.unwrap().iter().map(|l| l.message.to_lowercase()).collect();
    assert!(!text.contains("placeholder"), "an uploaded input is really fetched: {text}");
    assert!(client.result(&handle).await.is_ok());
}

#[tokio::test]
async fn sync_mode_returns_data_uris_that_decode() {
    let emu = start(EmulatorConfig::fast()).await;
    let client = client_for(&emu);
    let mut inp = sample_input();
    inp.set("sync_mode", true);
    inp.set("output_format", OutputFormat::Png.as_str());
    inp.set("num_images", 2);
    let handle = client.submit(&Endpoint::default(), &inp).await.unwrap();
    client.follow(&handle, FollowMode::Stream, |_| {}).await.unwrap();
    let out: KontextOutput = serde_json::from_value(client.result(&handle).await.unwrap()).unwrap();
    assert_eq!(out.images.len(), 2);
    for img in &out.images {
        assert!(img.url.starts_with("data:image/png;base64,"), "{}", &img.url[..40]);
        let media = client.download(&img.url).await.unwrap();
        let v = verify_image(&media.bytes, media.content_type.as_deref()).unwrap();
        assert_eq!(v.format, image::ImageFormat::Png);
    }
    assert!(routes(&emu, Route::FileGet).is_empty(), "nothing was downloaded over HTTP");
}

#[tokio::test]
async fn downloads_from_the_cdn_host_carry_no_key() {
    let emu = start(EmulatorConfig { separate_cdn_host: true, ..EmulatorConfig::fast() }).await;
    let client = client_for(&emu);
    let handle = client.submit(&Endpoint::default(), &sample_input()).await.unwrap();
    client.follow(&handle, FollowMode::Stream, |_| {}).await.unwrap();
    let out: KontextOutput = serde_json::from_value(client.result(&handle).await.unwrap()).unwrap();
    assert!(out.images[0].url.starts_with("http://127.0.0.2:"), "{}", out.images[0].url);
    client.download(&out.images[0].url).await.unwrap();

    let journal = emu.journal();
    let gets: Vec<_> = journal.iter().filter(|r| r.route == Route::FileGet).collect();
    assert_eq!(gets.len(), 1);
    assert!(gets[0].host.starts_with("127.0.0.2"), "{:?}", gets[0]);
    assert!(!gets[0].has_authorization, "the key must not go to the CDN");
    for r in journal.iter().filter(|r| matches!(r.route, Route::Submit | Route::StatusStream | Route::Result)) {
        assert!(r.has_authorization, "{r:?}");
        assert!(r.host.starts_with("127.0.0.1"), "{r:?}");
    }
}

#[tokio::test]
async fn a_redirect_to_another_host_drops_the_key() {
    use axum::http::HeaderMap;
    use std::sync::{Arc, Mutex};
    // Another host records what it receives.
    let seen: Arc<Mutex<Vec<bool>>> = Arc::default();
    let record = seen.clone();
    let other = axum::Router::new().fallback(move |headers: HeaderMap| {
        let record = record.clone();
        async move {
            record.lock().unwrap().push(headers.contains_key("authorization"));
            axum::Json(json!({"status": "IN_PROGRESS", "logs": null, "queue_position": null}))
        }
    });
    let other_listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let other_addr = other_listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(other_listener, other).await.unwrap() });

    // "fal" redirects its status route there.
    let fal = axum::Router::new().fallback(move || async move {
        axum::response::Redirect::temporary(&format!("http://{other_addr}/elsewhere"))
    });
    let fal_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fal_addr = fal_listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(fal_listener, fal).await.unwrap() });

    let cfg = FalConfig::single_host(format!("http://{fal_addr}").parse().unwrap(), FalKey::new(TEST_KEY));
    let client = FalClient::new(cfg.clone()).unwrap();
    let handle = RequestHandle::from_request_id(&cfg, &Endpoint::default(), "abc");
    let status = client.status(&handle, false).await.unwrap();
    assert_eq!(status.status, StatusKind::InProgress);
    assert_eq!(*seen.lock().unwrap(), vec![false], "the key must not follow a redirect to another host");
}

#[tokio::test]
async fn a_missing_key_is_a_clear_error() {
    let emu = start(EmulatorConfig::fast()).await;
    let cfg = FalConfig::single_host(emu.base_url().parse().unwrap(), None);
    let client = FalClient::new(cfg).unwrap();
    let err = client.submit(&Endpoint::default(), &sample_input()).await.unwrap_err();
    assert!(matches!(&err, SubmitError::Rejected(FalError::Api(a)) if a.status == 401), "{err:?}");
    assert!(err.to_string().contains("FAL_KEY"), "{err}");
    assert_eq!(routes(&emu, Route::Submit).len(), 1, "401 is not retried");
}

#[tokio::test]
async fn a_status_call_that_times_out_is_retried() {
    let emu = start(with_faults("hang@status:#1,409@status:#1")).await;
    let mut cfg = client_for(&emu).config().clone();
    cfg.timeout = Duration::from_millis(300);
    let client = FalClient::new(cfg).unwrap();
    let handle = client.submit(&Endpoint::default(), &sample_input()).await.unwrap();
    let status = client.status(&handle, false).await.unwrap();
    assert!(matches!(status.status, StatusKind::InQueue | StatusKind::InProgress | StatusKind::Completed));
    let statuses: Vec<u16> = routes(&emu, Route::Status).iter().map(|r| r.status).collect();
    assert_eq!(statuses.len(), 3, "a hang (timeout), a 409, then an answer: {statuses:?}");
    assert_eq!(statuses[1], 409);
}

// ---- bounded bodies, streams and results (issue 7) ----

/// A client that expects bodies at 4 KiB/s after 300 ms, and records the retries it announces.
fn impatient_client(emu: &Emulator) -> (FalClient, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let mut cfg = client_for(emu).config().clone();
    cfg.body_pace = BodyPace { grace: Duration::from_millis(300), min_rate: 4096 };
    let notices = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = notices.clone();
    let client = FalClient::new(cfg).unwrap().with_retry_notices(move |n| sink.lock().unwrap().push(n.to_string()));
    (client, notices)
}

/// Submits and follows a request to COMPLETED by polling.
async fn completed(client: &FalClient) -> RequestHandle {
    let handle = client.submit(&Endpoint::default(), &sample_input()).await.unwrap();
    client.follow(&handle, FollowMode::Poll, |_| {}).await.unwrap();
    handle
}

/// Follows `handle` over the stream (bounded at 20 s), returning the final status and the notes.
async fn follow_noting(client: &FalClient, handle: &RequestHandle) -> (QueueStatus, Vec<String>) {
    let mut notes = Vec::new();
    let follow = client.follow(handle, FollowMode::Stream, |u| {
        if let StatusUpdate::Note(n) = u {
            notes.push(n)
        }
    });
    let done = tokio::time::timeout(Duration::from_secs(20), follow).await.expect("bounded").unwrap();
    (done, notes)
}

#[tokio::test]
async fn a_stream_without_line_ends_falls_back_to_polling_at_the_line_cap() {
    let emu = start(with_faults("no-newline:#1")).await;
    let client = client_for(&emu);
    let handle = client.submit(&Endpoint::default(), &sample_input()).await.unwrap();
    // Without a line cap the stream runs on for a GiB while no event ever completes.
    let (done, notes) = follow_noting(&client, &handle).await;
    assert_eq!(done.status, StatusKind::Completed);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("line over 1 MiB") && notes[0].contains("polling instead"), "{notes:?}");
    assert!(!routes(&emu, Route::Status).is_empty(), "polling took over");
}

#[tokio::test]
async fn bytes_that_never_complete_an_event_count_as_silence() {
    use axum::routing::get;
    // A status stream that trickles a byte every 20 ms and never ends a line; polling works.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let trickle = || async {
        let bytes = futures::stream::iter(0..10_000).then(|_| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, std::io::Error>(Bytes::from_static(b"x"))
        });
        axum::body::Body::from_stream(bytes)
    };
    let app = axum::Router::new()
        .route("/r/status/stream", get(trickle))
        .route("/r/status", get(|| async { axum::Json(json!({"status": "COMPLETED", "logs": []})) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut cfg = FalConfig::single_host(base.parse().unwrap(), FalKey::new(TEST_KEY));
    cfg.stream_idle_timeout = Duration::from_millis(300);
    let client = FalClient::new(cfg).unwrap();
    let handle = RequestHandle {
        endpoint: Endpoint::default().id().to_string(),
        request_id: "r".into(),
        response_url: format!("{base}/r"),
        status_url: format!("{base}/r/status"),
        cancel_url: format!("{base}/r/cancel"),
    };
    let started = std::time::Instant::now();
    let (done, notes) = follow_noting(&client, &handle).await;
    assert_eq!(done.status, StatusKind::Completed);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(notes, ["status stream was silent for 0.3 s; polling instead"]);
}

#[tokio::test]
async fn a_result_not_ready_after_completed_is_retried_until_it_is() {
    // The result store lags the status: "still in progress", then a body cut in half, then an
    // HTML page, then the result.
    let emu = start(with_faults("not-ready:#1,truncated:#1,not-json:#1")).await;
    let (client, notices) = impatient_client(&emu);
    let handle = completed(&client).await;
    let result = client.result(&handle).await.unwrap();
    assert!(result["images"].is_array(), "{result}");
    let statuses: Vec<u16> = routes(&emu, Route::Result).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [400, 200, 200, 200]);
    let notices = notices.lock().unwrap();
    assert_eq!(notices.len(), 3, "{notices:?}");
    assert!(notices[0].starts_with("fetching the result is not ready yet; attempt 2 of 4 in "), "{notices:?}");
    assert!(notices[1].starts_with("fetching the result got an answer it cannot read; attempt 3 of 4"), "{notices:?}");
}

#[tokio::test]
async fn a_result_that_stays_unready_gives_up_within_the_attempts() {
    let emu = start(with_faults("not-ready:#10")).await;
    let client = client_for(&emu);
    let handle = completed(&client).await;
    let err = client.result(&handle).await.unwrap_err();
    assert!(matches!(err, FalError::NotReady), "{err:?}");
    assert!(!err.is_fal_verdict(), "not fal's verdict: the request stays resumable");
    assert_eq!(routes(&emu, Route::Result).len(), 4, "max_attempts GETs");
}

#[tokio::test]
async fn a_trickling_body_times_out_by_its_pace_and_is_retried_with_a_notice() {
    let emu = start(with_faults("trickle@result:#1")).await;
    let (client, notices) = impatient_client(&emu);
    let handle = completed(&client).await;
    let started = std::time::Instant::now();
    let result = client.result(&handle).await.unwrap();
    assert!(result["images"].is_array());
    // At 50 bytes/s the result would take many seconds; the pace ends it after ~0.3 s.
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    let notices = notices.lock().unwrap();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].starts_with("fetching the result is slow; attempt 2 of 4 in "), "{notices:?}");
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_an_error_and_retried() {
    let emu = start(with_faults("short-body@status:#1")).await;
    let client = client_for(&emu);
    let handle = client.submit(&Endpoint::default(), &sample_input()).await.unwrap();
    client.status(&handle, true).await.unwrap();
    assert_eq!(routes(&emu, Route::Status).len(), 2, "the cut answer was retried");

    // A short image is retried too, and then whole.
    let emu = start(with_faults("short-body@files:#1")).await;
    let client = client_for(&emu);
    let handle = completed(&client).await;
    let out: KontextOutput = serde_json::from_value(client.result(&handle).await.unwrap()).unwrap();
    let media = client.download(&out.images[0].url).await.unwrap();
    verify_image(&media.bytes, media.content_type.as_deref()).unwrap();
    assert_eq!(routes(&emu, Route::FileGet).len(), 2);
}

#[tokio::test]
async fn oversized_answers_are_refused_without_being_read() {
    // Announced too large: refused on its headers, not retried.
    let emu = start(with_faults("oversize@status:#1")).await;
    let client = client_for(&emu);
    let handle = client.submit(&Endpoint::default(), &sample_input()).await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), client.status(&handle, true)).await.unwrap().unwrap_err();
    assert!(matches!(&err, FalError::TooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("status answer over 1 MiB"), "{err}");
    assert_eq!(routes(&emu, Route::Status).len(), 1);

    // Streamed without a length: cut off at the cap (64 MiB for a result).
    let emu = start(with_faults("oversize-chunked@result:#1")).await;
    let client = client_for(&emu);
    let handle = completed(&client).await;
    let err = tokio::time::timeout(Duration::from_secs(60), client.result(&handle)).await.unwrap().unwrap_err();
    assert!(err.to_string().contains("result over 64 MiB"), "{err}");
    assert!(!err.is_fal_verdict());

    // An image announced at 1 GiB is not downloaded.
    let emu = start(with_faults("oversize@files:#1")).await;
    let client = client_for(&emu);
    let handle = completed(&client).await;
    let out: KontextOutput = serde_json::from_value(client.result(&handle).await.unwrap()).unwrap();
    let err =
        tokio::time::timeout(Duration::from_secs(10), client.download(&out.images[0].url)).await.unwrap().unwrap_err();
    assert!(err.to_string().contains("image over 64 MiB"), "{err}");
}

#[tokio::test]
async fn an_oversized_or_cut_submit_answer_is_ambiguous_and_not_resent() {
    for fault in ["oversize@submit:#1", "short-body@submit:#1", "truncated@submit:#1"] {
        let emu = start(with_faults(fault)).await;
        let client = client_for(&emu);
        let err = client.submit(&Endpoint::default(), &sample_input()).await.unwrap_err();
        assert!(matches!(err, SubmitError::Ambiguous(_)), "{fault}: {err:?}");
        assert_eq!(emu.submit_count(), 1, "{fault}: sent once");
    }
}

#[tokio::test]
async fn the_key_does_not_go_to_another_loopback_address_on_the_same_port() {
    // The emulator's CDN listener is 127.0.0.2 on the API's port: another host, same port.
    let emu = start(EmulatorConfig { separate_cdn_host: true, ..EmulatorConfig::fast() }).await;
    let api_port = emu.base_url().rsplit(':').next().unwrap().to_string();
    assert!(emu.cdn_base_url().ends_with(&format!(":{api_port}")), "{}", emu.cdn_base_url());
    let client = client_for(&emu);
    let at_other_host = RequestHandle {
        endpoint: Endpoint::default().id().to_string(),
        request_id: "abc".into(),
        response_url: format!("{}/fal-ai/flux-pro/requests/abc", emu.cdn_base_url()),
        status_url: format!("{}/fal-ai/flux-pro/requests/abc/status", emu.cdn_base_url()),
        cancel_url: format!("{}/fal-ai/flux-pro/requests/abc/cancel", emu.cdn_base_url()),
    };
    let err = client.status(&at_other_host, false).await.unwrap_err();
    assert!(matches!(&err, FalError::Api(a) if a.status == 401), "no key, so the emulator says 401: {err:?}");
    let polls = routes(&emu, Route::Status);
    assert_eq!(polls.len(), 1);
    assert!(polls[0].host.starts_with("127.0.0.2"), "{:?}", polls[0]);
    assert!(!polls[0].has_authorization, "the key went to 127.0.0.2: {:?}", polls[0]);
}

fn refused(err: &FalError) -> &DestinationRefused {
    match err {
        FalError::Refused(r) => r,
        other => panic!("expected a refused destination, got {other:?}"),
    }
}

#[tokio::test]
async fn redirects_to_metadata_private_addresses_or_files_are_refused_before_connecting() {
    for (target, why) in [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[fe80::1]/x", "link-local"),
        ("https://10.0.0.1/x", "private"),
        ("https://192.168.1.1/x", "private"),
        ("https://224.0.0.1/x", "multicast"),
        ("file:///etc/passwd", "scheme"),
    ] {
        let emu = start(with_faults(&format!("redirect@files:#1={target}"))).await;
        let client = client_for(&emu);
        let handle = client.submit(&Endpoint::default(), &sample_input()).await.unwrap();
        client.follow(&handle, FollowMode::Stream, |_| {}).await.unwrap();
        let out: KontextOutput = serde_json::from_value(client.result(&handle).await.unwrap()).unwrap();
        let started = std::time::Instant::now();
        let err = client.download(&out.images[0].url).await.unwrap_err();
        let r = refused(&err);
        assert!(r.reason.contains(why), "{target}: {err}");
        assert!(err.to_string().contains("nothing was sent there"), "{err}");
        assert!(!err.is_retryable(), "a refused destination is not retried");
        assert_eq!(routes(&emu, Route::FileGet).len(), 1, "{target}: one GET, no retries");
        // No connection attempt: a connect to those addresses would take the connect timeout.
        assert!(started.elapsed() < Duration::from_secs(2), "{target}: took {:?}", started.elapsed());
    }
}

#[tokio::test]
async fn a_redirect_of_the_result_to_the_metadata_service_is_refused() {
    let emu = start(with_faults("redirect@result:#1=http://169.254.169.254/latest/meta-data/iam")).await;
    let client = client_for(&emu);
    let handle = client.submit(&Endpoint::default(), &sample_input()).await.unwrap();
    client.follow(&handle, FollowMode::Stream, |_| {}).await.unwrap();
    let err = client.result(&handle).await.unwrap_err();
    assert_eq!(refused(&err).url, "http://169.254.169.254/latest/meta-data/iam");
    assert_eq!(routes(&emu, Route::Result).len(), 1);
}

#[tokio::test]
async fn server_given_urls_are_checked_before_any_connection() {
    // Something listens on loopback and counts connections.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    // On fal (not the emulator), URLs that point at this machine, a private network, the
    // metadata service, plain http or a file are refused without a connection.
    let client = FalClient::new(FalConfig::production(FalKey::new(TEST_KEY))).unwrap();
    let local = format!("http://{addr}/fal-ai/flux-pro/requests/abc");
    for bad in [
        local.clone(),
        format!("https://{addr}/x"),
        format!("https://localhost:{}/x", addr.port()),
        "http://v3.fal.media/files/a.png".to_string(),
        "https://169.254.169.254/latest/meta-data/".to_string(),
        "https://[::ffff:169.254.169.254]/".to_string(),
        "https://172.20.0.1/x".to_string(),
        "file:///etc/passwd".to_string(),
    ] {
        let handle = RequestHandle {
            endpoint: Endpoint::default().id().to_string(),
            request_id: "abc".into(),
            response_url: bad.clone(),
            status_url: bad.clone(),
            cancel_url: bad.clone(),
        };
        refused(&client.status(&handle, false).await.unwrap_err());
        refused(&client.result(&handle).await.unwrap_err());
        refused(&client.cancel(&handle).await.unwrap_err());
        refused(&client.download(&bad).await.unwrap_err());
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing connected");
}

#[tokio::test]
async fn an_error_from_a_redirect_target_is_not_labelled_fal_s() {
    // The CDN redirects to another server on this machine, which answers 500.
    let other = axum::Router::new().fallback(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "nope") });
    let other_listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let other_addr = other_listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(other_listener, other).await.unwrap() });
    let emu = start(with_faults(&format!("redirect@files:#1=http://{other_addr}/moved"))).await;
    let client = client_for(&emu);
    let handle = client.submit(&Endpoint::default(), &sample_input()).await.unwrap();
    client.follow(&handle, FollowMode::Stream, |_| {}).await.unwrap();
    let out: KontextOutput = serde_json::from_value(client.result(&handle).await.unwrap()).unwrap();
    // The CDN fault fires once; the retried GET goes straight to the image.
    let cfg = FalConfig { retry: RetryPolicy { max_attempts: 1, ..RetryPolicy::default() }, ..client.config().clone() };
    let once = FalClient::new(cfg).unwrap();
    let err = once.download(&out.images[0].url).await.unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("a redirect target (127.0.0.2) answered HTTP 500"), "{text}");
    assert!(!text.contains("fal had"), "{text}");
    // The CDN itself answering an error says so too.
    let err = once.download(&format!("{}/files/none/missing.png", emu.cdn_base_url())).await.unwrap_err();
    assert!(err.to_string().starts_with("the CDN (127.0.0.1) answered HTTP 404"), "{err}");
}

#[tokio::test]
async fn a_key_http_cannot_carry_is_not_sent_and_not_ambiguous() {
    let emu = start(EmulatorConfig::fast()).await;
    let mut cfg = client_for(&emu).config().clone();
    cfg.key = FalKey::new("test-id:test\nsecret");
    let client = FalClient::new(cfg).unwrap();
    let err = client.submit(&Endpoint::default(), &sample_input()).await.unwrap_err();
    assert!(
        matches!(&err, SubmitError::Rejected(FalError::Network { kind: NetworkKind::NotSent, attempts: 0, .. })),
        "nothing left this machine, so it is not ambiguous (and not retried): {err:?}"
    );
    assert!(!err.to_string().contains("may or may not"), "{err}");
    assert_eq!(emu.submit_count(), 0);
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_not_sent() {
    // `.invalid` never resolves (RFC 6761); the resolver answers that itself, without a query.
    let mut cfg = FalConfig::single_host("https://queue.kontext.invalid".parse().unwrap(), FalKey::new(TEST_KEY));
    cfg.retry =
        RetryPolicy { max_attempts: 2, base_delay: Duration::from_millis(5), max_delay: Duration::from_millis(20) };
    let client = FalClient::new(cfg).unwrap();
    let err = client.submit(&Endpoint::default(), &sample_input()).await.unwrap_err();
    assert!(matches!(&err, SubmitError::Rejected(FalError::Network { kind: NetworkKind::Connect, .. })), "{err:?}");
    assert!(err.to_string().contains("queue.kontext.invalid"), "{err}");
}

#[tokio::test]
async fn gateway_answers_without_fal_s_markers_follow_the_submit_rule() {
    // 429 and 503 (fal's queue refusing) are "not accepted": retried, billed once.
    let emu = start(with_faults("429@submit:#1,503@submit:#1")).await;
    let client = client_for(&emu);
    client.submit(&Endpoint::default(), &sample_input()).await.unwrap();
    assert_eq!(routes(&emu, Route::Submit).iter().map(|r| r.status).collect::<Vec<_>>(), vec![429, 503, 200]);

    // A 502 or 504 from the gateway in front of the queue may hide an accepted request: never resent.
    for fault in ["502@submit:#1", "504@submit:#1"] {
        let emu = start(with_faults(fault)).await;
        let client = client_for(&emu);
        let err = client.submit(&Endpoint::default(), &sample_input()).await.unwrap_err();
        assert!(matches!(&err, SubmitError::Ambiguous(FalError::Api(a)) if a.ingress), "{fault}: {err:?}");
        assert_eq!(emu.submit_count(), 1, "{fault}: not sent again");
    }
}
