//! Helpers shared by the emulator tests (loopback only).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use base64::Engine;
use kontext::emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};

pub const KEY: &str = "Key test-id:test-secret";
pub const ENDPOINT: &str = "fal-ai/flux-pro/kontext/multi";

pub async fn start() -> Emulator {
    Emulator::start(EmulatorConfig::fast(), 0)
        .await
        .expect("emulator starts")
}

pub async fn start_with(config: EmulatorConfig) -> Emulator {
    Emulator::start(config, 0).await.expect("emulator starts")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A small PNG as a data URI.
pub fn png_data_uri(w: u32, h: u32) -> String {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 90]));
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png)
        .expect("png");
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(buf.into_inner())
    )
}

pub fn input() -> Value {
    json!({"prompt": "put the cat on the sofa", "image_urls": [png_data_uri(40, 30), png_data_uri(20, 20)]})
}

pub async fn submit(emu: &Emulator, body: &Value) -> Value {
    let r = client()
        .post(format!("{}/{ENDPOINT}", emu.base_url()))
        .header("authorization", KEY)
        .json(body)
        .send()
        .await
        .expect("submit");
    assert_eq!(r.status(), 200);
    r.json().await.expect("submit json")
}

pub async fn get(url: &str) -> reqwest::Response {
    client()
        .get(url)
        .header("authorization", KEY)
        .send()
        .await
        .expect("GET")
}

/// Polls the status URL until COMPLETED (bounded); returns the final status body.
pub async fn wait_completed(status_url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = get(status_url).await;
        let code = r.status().as_u16();
        let v: Value = r.json().await.expect("status json");
        if v["status"] == "COMPLETED" {
            assert_eq!(code, 200, "COMPLETED answers 200");
            return v;
        }
        assert_eq!(code, 202, "running answers 202: {v}");
        assert!(
            Instant::now() < deadline,
            "request did not complete in time"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Submits, waits, and returns (submit envelope, result response).
pub async fn run_to_result(emu: &Emulator, body: &Value) -> (Value, reqwest::Response) {
    let sub = submit(emu, body).await;
    wait_completed(sub["status_url"].as_str().expect("status_url")).await;
    let r = get(sub["response_url"].as_str().expect("response_url")).await;
    (sub, r)
}

/// Decodes a `data:` URI into (content type, bytes).
pub fn decode_data_uri(uri: &str) -> (String, Vec<u8>) {
    let rest = uri.strip_prefix("data:").expect("data uri");
    let (meta, data) = rest.split_once(',').expect("comma");
    let ct = meta.strip_suffix(";base64").expect("base64");
    (
        ct.to_string(),
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("b64"),
    )
}
