//! Fault injection: every kind is observable the way the official clients would see it.

mod emulator_support;

use std::time::{Duration, Instant};

use emulator_support::*;
use kontext::emulator::{Emulator, EmulatorConfig, FaultSpec, Route};
use serde_json::{Value, json};

async fn with_faults(spec: &str) -> Emulator {
    let mut cfg = EmulatorConfig::fast();
    cfg.faults = spec.parse().expect("fault spec");
    start_with(cfg).await
}

async fn post_submit(emu: &Emulator) -> Result<reqwest::Response, reqwest::Error> {
    client().post(format!("{}/{ENDPOINT}", emu.base_url())).header("authorization", KEY).json(&input()).send().await
}

#[tokio::test]
async fn rate_limit_408_409_are_counted_and_then_pass() {
    let emu = with_faults("429@submit:#1,408@submit:#1,409@submit:#1").await;
    let r = post_submit(&emu).await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"detail": "Rate limit exceeded"}));
    assert_eq!(post_submit(&emu).await.unwrap().status(), 408);
    assert_eq!(post_submit(&emu).await.unwrap().status(), 409);
    assert_eq!(post_submit(&emu).await.unwrap().status(), 200);
    assert_eq!(emu.submit_count(), 4);
    let statuses: Vec<u16> = emu.journal().iter().map(|j| j.status).collect();
    assert_eq!(statuses, vec![429, 408, 409, 200]);
    emu.shutdown().await;
}

#[tokio::test]
async fn ingress_502_504_are_nginx_html_without_request_id() {
    let emu = with_faults("502@submit:#1,504@submit:#1").await;
    for code in [502, 504] {
        let r = post_submit(&emu).await.unwrap();
        assert_eq!(r.status(), code);
        assert!(r.headers().get("x-fal-request-id").is_none());
        assert!(r.text().await.unwrap().contains("nginx"));
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn fal_503_500_and_user_timeout_504() {
    let emu = with_faults("503@submit:#1,500@submit:#1,504-user@submit:#1").await;
    let r = post_submit(&emu).await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("x-fal-request-id"));
    assert_eq!(r.headers()["x-fal-error-type"], "runner_connection_error");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_type"], "runner_connection_error");
    assert!(!v.to_string().contains("nginx"));

    let r = post_submit(&emu).await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(r.headers()["x-fal-error-type"], "internal_error");
    assert_eq!(r.json::<Value>().await.unwrap()["error_type"], "internal_error");

    let r = post_submit(&emu).await.unwrap();
    assert_eq!(r.status(), 504);
    assert_eq!(r.headers()["x-fal-request-timeout-type"], "user");
    emu.shutdown().await;
}

#[tokio::test]
async fn reset_processes_the_submit_but_breaks_the_connection() {
    let emu = with_faults("reset@submit:#1").await;
    let err = post_submit(&emu).await.expect_err("transport error");
    assert!(!err.is_status(), "{err:?}");
    assert_eq!(emu.submit_count(), 1);
    let j = emu.journal();
    assert_eq!(j[0].route, Route::Submit);
    assert_eq!(j[0].status, 200, "the submit was accepted");
    // The next one goes through.
    assert_eq!(post_submit(&emu).await.unwrap().status(), 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn hang_never_answers() {
    let emu = with_faults("hang@submit:#1").await;
    let started = Instant::now();
    let err = client()
        .post(format!("{}/{ENDPOINT}", emu.base_url()))
        .header("authorization", KEY)
        .timeout(Duration::from_millis(300))
        .json(&input())
        .send()
        .await
        .expect_err("client timeout fires");
    assert!(err.is_timeout(), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(emu.submit_count(), 1);
    assert_eq!(emu.journal()[0].status, 0);
    // Shutdown still completes with a hung request open.
    tokio::time::timeout(Duration::from_secs(5), emu.shutdown()).await.expect("shutdown is bounded");
}

#[tokio::test]
async fn drop_stream_closes_after_first_event() {
    let emu = with_faults("drop-stream:#1").await;
    let sub = submit(&emu, &input()).await;
    let url = format!("{}/stream?logs=1", sub["status_url"].as_str().unwrap());
    let text = tokio::time::timeout(Duration::from_secs(5), get(&url).await.text()).await.unwrap().unwrap();
    let events: Vec<&str> = text.split("\n\n").filter(|c| c.starts_with("data: ")).collect();
    assert_eq!(events.len(), 1, "{text}");
    assert!(!events[0].contains("COMPLETED"));
    // A second stream is complete.
    let text = get(&url).await.text().await.unwrap();
    assert!(text.contains("\"COMPLETED\""));
    emu.shutdown().await;
}

#[tokio::test]
async fn fail_ends_completed_with_error_and_result_503() {
    let emu = with_faults("fail:#1").await;
    let (sub, r) = run_to_result(&emu, &input()).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["x-fal-error-type"], "runner_disconnected");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error_type"], "runner_disconnected");
    assert!(v["detail"].is_string());
    let st: Value = get(sub["status_url"].as_str().unwrap()).await.json().await.unwrap();
    assert_eq!(st["status"], "COMPLETED");
    assert_eq!(st["error_type"], "runner_disconnected");
    assert!(st["error"].is_string());
    emu.shutdown().await;
}

#[tokio::test]
async fn slow_adds_latency_per_route() {
    let emu = with_faults("slow@status:300ms").await;
    let sub = submit(&emu, &input()).await;
    let t = Instant::now();
    get(sub["status_url"].as_str().unwrap()).await;
    assert!(t.elapsed() >= Duration::from_millis(300));
    let t = Instant::now();
    get(sub["response_url"].as_str().unwrap()).await;
    assert!(t.elapsed() < Duration::from_millis(300), "other routes are not slowed");
    emu.shutdown().await;
}

#[tokio::test]
async fn probabilities_are_reproducible() {
    async fn pattern() -> Vec<u16> {
        let emu = with_faults("429@status:0.5").await;
        let url = format!("{}/fal-ai/flux-pro/requests/{}/status", emu.base_url(), uuid::Uuid::nil());
        let mut out = Vec::new();
        for _ in 0..24 {
            out.push(get(&url).await.status().as_u16());
        }
        emu.shutdown().await;
        out
    }
    let a = pattern().await;
    assert_eq!(a, pattern().await);
    assert!(a.contains(&429) && a.contains(&404), "{a:?}");
}

#[test]
fn fault_spec_grammar() {
    let s: FaultSpec = "429:0.2,502@submit:#2,slow@status:2s,reset@upload:1".parse().unwrap();
    assert_eq!(s.to_string(), "429:0.2,502@submit:#2,slow@status:2s,reset@upload:1");
    let e = "4299:0.2".parse::<FaultSpec>().unwrap_err().to_string();
    assert!(e.starts_with("unknown fault kind \"4299\" in \"4299:0.2\"; expected one of"), "{e}");
    assert!("429@moon:0.1".parse::<FaultSpec>().unwrap_err().to_string().contains("unknown fault route"));
    assert!("slow:soon".parse::<FaultSpec>().is_err());
    assert_eq!(FaultSpec::default().to_string(), "none");
}

/// Submits, waits for COMPLETED, and returns the submit envelope.
async fn completed_request(emu: &Emulator) -> Value {
    let sub = submit(emu, &input()).await;
    wait_completed(sub["status_url"].as_str().unwrap()).await;
    sub
}

#[tokio::test]
async fn result_faults_not_ready_truncated_not_json_and_extra_images() {
    let emu = with_faults("not-ready:#1,truncated:#1,not-json:#1,extra-images:#1").await;
    let sub = completed_request(&emu).await;
    let url = sub["response_url"].as_str().unwrap();
    let r = get(url).await;
    assert_eq!(r.status(), 400, "not ready although COMPLETED");
    assert!(r.text().await.unwrap().contains("still in progress"));
    let r = get(url).await;
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_str::<Value>(&r.text().await.unwrap()).is_err(), "cut short");
    let r = get(url).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().starts_with("<html>"));
    let extra: Value = get(url).await.json().await.unwrap();
    let plain: Value = get(url).await.json().await.unwrap();
    assert_eq!(extra["images"].as_array().unwrap().len(), plain["images"].as_array().unwrap().len() + 2);
    emu.shutdown().await;
}

#[tokio::test]
async fn body_faults_short_trickle_and_oversize() {
    let emu = with_faults("short-body@status:#1,trickle@status:#1,oversize@status:#1,oversize-chunked@status:#1").await;
    let sub = submit(&emu, &input()).await;
    let status_url = sub["status_url"].as_str().unwrap();

    // Content-Length promises more than arrives.
    let r = get(status_url).await;
    let promised = r.content_length().unwrap();
    let err = r.bytes().await.unwrap_err();
    assert!(promised > 0 && (err.is_body() || err.is_decode()), "{err:?}");

    // A byte every 20 ms.
    let started = Instant::now();
    let body = get(status_url).await.bytes().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(20) * (body.len() as u32 - 1), "{:?}", started.elapsed());

    let r = get(status_url).await;
    assert_eq!(r.content_length(), Some(1024 * 1024 * 1024));
    drop(r);
    let mut r = get(status_url).await;
    assert_eq!(r.content_length(), None);
    let mut read = 0;
    while read < 4 * 1024 * 1024 {
        read += r.chunk().await.unwrap().unwrap().len();
    }
    drop(r);
    assert_eq!(get(status_url).await.status().as_u16() / 100, 2, "then answers normally");
    emu.shutdown().await;
}

#[tokio::test]
async fn a_stream_without_line_ends() {
    let emu = with_faults("no-newline:#1").await;
    let sub = submit(&emu, &input()).await;
    let mut r = get(&format!("{}/stream", sub["status_url"].as_str().unwrap())).await;
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut read = Vec::new();
    while read.len() < 1024 * 1024 {
        read.extend_from_slice(&r.chunk().await.unwrap().unwrap());
    }
    assert!(read.starts_with(b"data: xxx"));
    assert!(!read.contains(&b'\n'));
    drop(r);
    emu.shutdown().await;
}
