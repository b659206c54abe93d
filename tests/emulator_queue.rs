//! Queue API of the emulator: submit, status (polling + SSE), result, cancel, auth, journal.

mod emulator_support;

use std::time::Duration;

use emulator_support::*;
use kontext::emulator::{EmulatorConfig, Route};
use serde_json::{Value, json};

#[tokio::test]
async fn submit_status_result_lifecycle() {
    let emu = start().await;
    let sub = submit(&emu, &input()).await;
    let id = sub["request_id"].as_str().unwrap().to_string();
    assert_eq!(sub["status"], "IN_QUEUE");
    assert_eq!(sub["queue_position"], 0);
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    // URLs use owner/alias only, built from the emulator's base URL.
    let base = format!("{}/fal-ai/flux-pro/requests/{id}", emu.base_url());
    assert_eq!(sub["response_url"], base);
    assert_eq!(sub["status_url"], format!("{base}/status"));
    assert_eq!(sub["cancel_url"], format!("{base}/cancel"));

    let first = get(&format!("{base}/status")).await;
    assert_eq!(first.status(), 202);
    let v: Value = first.json().await.unwrap();
    assert!(v.get("queue_position").is_some() && v.get("logs").is_some());
    assert!(v["logs"].is_null());

    let done = wait_completed(&format!("{base}/status")).await;
    assert!(done["logs"].is_null(), "logs null when not asked");
    assert!(done["metrics"]["inference_time"].as_f64().unwrap() > 0.0);
    assert!(done.get("error").is_none());

    let r = get(&base).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-fal-request-id"], id.as_str());
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["images"].as_array().unwrap().len(), 1);
    assert_eq!(out["prompt"], "put the cat on the sofa");
    assert_eq!(out["has_nsfw_concepts"], json!([false]));
    assert!(out["timings"]["inference"].as_f64().is_some());
    assert!(out["seed"].as_u64().is_some());
    let img = &out["images"][0];
    assert_eq!(img["content_type"], "image/jpeg");
    let url = img["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/files/", emu.cdn_base_url())),
        "{url}"
    );
    // The output is served, without auth, and is the announced size.
    let f = client().get(url).send().await.unwrap();
    assert_eq!(f.status(), 200);
    assert_eq!(f.headers()["content-type"], "image/jpeg");
    let dec = image::load_from_memory(&f.bytes().await.unwrap()).unwrap();
    assert_eq!(u64::from(dec.width()), img["width"].as_u64().unwrap());
    assert_eq!(u64::from(dec.height()), img["height"].as_u64().unwrap());
    emu.shutdown().await;
}

#[tokio::test]
async fn full_id_paths_and_trailing_slash_and_log_forms() {
    let emu = start().await;
    let sub = submit(&emu, &input()).await;
    let id = sub["request_id"].as_str().unwrap();
    wait_completed(sub["status_url"].as_str().unwrap()).await;
    let full = format!("{}/{ENDPOINT}/requests/{id}", emu.base_url());
    assert_eq!(get(&format!("{full}/status")).await.status(), 200);
    assert_eq!(get(&full).await.status(), 200);
    let status_url = sub["status_url"].as_str().unwrap();
    for (q, want_logs) in [
        ("logs=1", true),
        ("logs=true", true),
        ("logs=0", false),
        ("logs=false", false),
    ] {
        for slash in ["", "/"] {
            let r = get(&format!("{status_url}{slash}?{q}")).await;
            assert_eq!(r.status(), 200, "{q}{slash}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["logs"].is_array(), want_logs, "{q}{slash}: {v}");
            if want_logs {
                assert!(!v["logs"].as_array().unwrap().is_empty());
                let l = &v["logs"][0];
                assert!(
                    l["message"].is_string() && l["timestamp"].as_str().unwrap().starts_with("20")
                );
                assert_eq!(l["labels"]["level"], "INFO");
            }
        }
    }
    emu.shutdown().await;
}

#[tokio::test]
async fn polling_logs_are_cumulative() {
    let emu = start().await;
    let sub = submit(&emu, &input()).await;
    let url = format!("{}?logs=1", sub["status_url"].as_str().unwrap());
    let mut prev: Vec<Value> = Vec::new();
    for _ in 0..2000 {
        let v: Value = get(&url).await.json().await.unwrap();
        let logs = v["logs"].as_array().cloned().unwrap_or_default();
        assert!(logs.len() >= prev.len());
        assert_eq!(&logs[..prev.len()], &prev[..], "earlier lines repeated");
        prev = logs;
        if v["status"] == "COMPLETED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let messages: Vec<&str> = prev.iter().filter_map(|l| l["message"].as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("Fetched image 1/2 (40x30)")),
        "{messages:?}"
    );
    assert!(messages.iter().any(|m| m.starts_with("Step ")));
    assert!(messages.iter().any(|m| m.starts_with("Encoding output")));
    emu.shutdown().await;
}

async fn read_sse(url: &str) -> (String, Vec<Value>) {
    let r = client()
        .get(url)
        .header("authorization", KEY)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = tokio::time::timeout(Duration::from_secs(15), r.text())
        .await
        .expect("stream closes by itself")
        .unwrap();
    let events = text
        .split("\n\n")
        .filter_map(|chunk| chunk.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    (text, events)
}

#[tokio::test]
async fn sse_logs_incremental_and_closes_after_completed() {
    let emu = start().await;
    let sub = submit(&emu, &input()).await;
    let url = format!("{}/stream?logs=1", sub["status_url"].as_str().unwrap());
    let (text, events) = read_sse(&url).await;
    for chunk in text.split("\n\n").filter(|c| !c.is_empty()) {
        assert!(
            chunk.starts_with("data: ") || chunk.starts_with(": ping"),
            "{chunk:?}"
        );
        assert!(!chunk.contains("event:") && !chunk.contains("id:"));
    }
    assert!(events.len() >= 3, "{events:?}");
    assert_eq!(events.last().unwrap()["status"], "COMPLETED");
    assert!(
        events[..events.len() - 1]
            .iter()
            .all(|e| e["status"] != "COMPLETED")
    );
    // Incremental: no log line appears in two events.
    let all: Vec<&Value> = events
        .iter()
        .flat_map(|e| e["logs"].as_array().unwrap())
        .collect();
    let polled: Value = get(&format!("{}?logs=1", sub["status_url"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all.len(), polled["logs"].as_array().unwrap().len());

    // Opened after completion: one COMPLETED event, then close.
    let (_, again) = read_sse(&url).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["status"], "COMPLETED");
    // Without logs=1 the stream carries logs null.
    let (_, plain) = read_sse(&format!("{}/stream", sub["status_url"].as_str().unwrap())).await;
    assert!(plain[0]["logs"].is_null());
    emu.shutdown().await;
}

#[tokio::test]
async fn sse_sends_ping_comments() {
    let mut cfg = EmulatorConfig::fast();
    cfg.ping_interval = Duration::from_millis(30);
    cfg.processing_time = Duration::from_millis(400);
    cfg.log_interval = Duration::from_millis(200);
    let emu = start_with(cfg).await;
    let sub = submit(&emu, &input()).await;
    let (text, _) = read_sse(&format!("{}/stream", sub["status_url"].as_str().unwrap())).await;
    assert!(text.contains(": ping\n\n"), "{text}");
    emu.shutdown().await;
}

#[tokio::test]
async fn result_before_completion_is_400() {
    let mut cfg = EmulatorConfig::fast();
    cfg.processing_time = Duration::from_secs(2);
    let emu = start_with(cfg).await;
    let sub = submit(&emu, &input()).await;
    let r = get(sub["response_url"].as_str().unwrap()).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["detail"], "Request is still in progress");
    emu.shutdown().await;
}

#[tokio::test]
async fn queue_positions_count_down() {
    let mut cfg = EmulatorConfig::fast();
    cfg.concurrency = 1;
    cfg.processing_time = Duration::from_millis(300);
    let emu = start_with(cfg).await;
    let subs = [
        submit(&emu, &input()).await,
        submit(&emu, &input()).await,
        submit(&emu, &input()).await,
    ];
    // The first may already run (10 ms queue delay); the others wait behind it.
    assert!(subs[2]["queue_position"].as_u64().unwrap() >= 1);
    // The third request's position only ever decreases, then it runs.
    let url = subs[2]["status_url"].as_str().unwrap();
    let mut last = 3;
    let mut seen = Vec::new();
    loop {
        let v: Value = get(url).await.json().await.unwrap();
        if v["status"] != "IN_QUEUE" {
            break;
        }
        let p = v["queue_position"].as_u64().unwrap();
        assert!(p <= last);
        last = p;
        seen.push(p);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen.contains(&1) || seen.contains(&0), "{seen:?}");
    wait_completed(url).await;
    emu.shutdown().await;
}

#[tokio::test]
async fn cancel_queued_in_progress_completed_unknown() {
    let mut cfg = EmulatorConfig::fast();
    cfg.concurrency = 1;
    cfg.processing_time = Duration::from_millis(1500);
    let emu = start_with(cfg).await;
    let running = submit(&emu, &input()).await;
    let queued = submit(&emu, &input()).await;
    // Wait until the first runs.
    for _ in 0..200 {
        let v: Value = get(running["status_url"].as_str().unwrap())
            .await
            .json()
            .await
            .unwrap();
        if v["status"] == "IN_PROGRESS" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let put = |url: String| async move {
        client()
            .put(url)
            .header("authorization", KEY)
            .send()
            .await
            .unwrap()
    };
    // Queued → leaves the queue at once.
    let r = put(queued["cancel_url"].as_str().unwrap().to_string()).await;
    assert_eq!(r.status(), 202);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"status": "CANCELLATION_REQUESTED"})
    );
    let v: Value = get(queued["status_url"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "COMPLETED");
    assert_eq!(v["error_type"], "client_cancelled");
    let res = get(queued["response_url"].as_str().unwrap()).await;
    assert_eq!(res.status(), 499);
    assert_eq!(res.headers()["x-fal-error-type"], "client_cancelled");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error_type"], "client_cancelled");
    assert!(body["detail"].is_string());

    // In progress → stops soon.
    let r = put(running["cancel_url"].as_str().unwrap().to_string()).await;
    assert_eq!(r.status(), 202);
    let started = std::time::Instant::now();
    let v = wait_completed(running["status_url"].as_str().unwrap()).await;
    assert!(started.elapsed() < Duration::from_millis(1000));
    assert_eq!(v["error_type"], "client_cancelled");

    // Completed → 400; unknown → 404.
    let r = put(running["cancel_url"].as_str().unwrap().to_string()).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"status": "ALREADY_COMPLETED"})
    );
    let unknown = format!(
        "{}/fal-ai/flux-pro/requests/{}/cancel",
        emu.base_url(),
        uuid::Uuid::new_v4()
    );
    let r = put(unknown).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"status": "NOT_FOUND"})
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn unknown_request_and_endpoint() {
    let emu = start().await;
    let r = get(&format!(
        "{}/fal-ai/flux-pro/requests/{}/status",
        emu.base_url(),
        uuid::Uuid::new_v4()
    ))
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"detail": "Request not found"})
    );
    let r = client()
        .post(format!("{}/fal-ai/no-such-model", emu.base_url()))
        .header("authorization", KEY)
        .json(&input())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert!(v["detail"].as_str().unwrap().contains("not found"));
    // The max endpoint shares the schema.
    let r = client()
        .post(format!(
            "{}/fal-ai/flux-pro/kontext/max/multi",
            emu.base_url()
        ))
        .header("authorization", KEY)
        .json(&input())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    emu.shutdown().await;
}

#[tokio::test]
async fn auth_required_and_journaled() {
    let emu = start().await;
    let c = client();
    for auth in [None, Some(""), Some("Key "), Some("Key    ")] {
        let mut rb = c
            .post(format!(
                "{}/{ENDPOINT}?fal_webhook=http%3A%2F%2Fexample.com%2Fhook",
                emu.base_url()
            ))
            .json(&input());
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"detail": "Authorization header is required"})
        );
    }
    let sub = submit(&emu, &input()).await;
    assert_eq!(emu.submit_count(), 5, "rejected submits count too");
    let j = emu.journal();
    assert_eq!(j.len(), 5);
    assert!(!j[0].has_authorization);
    assert!(j[1].has_authorization);
    assert_eq!(j[0].route, Route::Submit);
    assert_eq!(j[0].status, 401);
    assert_eq!(
        j[0].query.as_deref(),
        Some("fal_webhook=http%3A%2F%2Fexample.com%2Fhook")
    );
    assert_eq!(j[4].status, 200);
    assert_eq!(j[4].path, format!("/{ENDPOINT}"));
    assert!(j[4].host.starts_with("127.0.0.1:"));
    let r = client()
        .get(sub["status_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(emu.journal().last().unwrap().route, Route::Status);
    emu.shutdown().await;
}
