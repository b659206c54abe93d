//! The emulated model: validation (422), sync run, outputs, synthesis, storage, CDN host.

mod emulator_support;

use emulator_support::*;
use kontext::emulator::{EmulatorConfig, Route};
use serde_json::{Value, json};

async fn run_sync(emu: &kontext::emulator::Emulator, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/run/{ENDPOINT}", emu.base_url()))
        .header("authorization", KEY)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn find<'a>(detail: &'a [Value], loc: &Value) -> &'a Value {
    detail.iter().find(|e| &e["loc"] == loc).unwrap_or_else(|| panic!("no error at {loc} in {detail:?}"))
}

#[tokio::test]
async fn validation_reports_all_errors_at_once() {
    let emu = start().await;
    let bad = json!({
        "image_urls": [],
        "seed": -1,
        "guidance_scale": 21,
        "sync_mode": "maybe",
        "num_images": 5,
        "output_format": "gif",
        "safety_tolerance": 2,
        "enhance_prompt": [],
        "aspect_ratio": "5:4",
        "unknown_field": "ignored",
    });
    let r = run_sync(&emu, &bad).await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    let d = v["detail"].as_array().unwrap();
    assert_eq!(d.len(), 10, "{d:#?}");
    for e in d {
        let ty = e["type"].as_str().unwrap();
        assert_eq!(e["url"], format!("https://docs.fal.ai/errors/#{ty}"));
        assert!(e["msg"].is_string() && e.get("input").is_some());
    }
    let e = find(d, &json!(["body", "prompt"]));
    assert_eq!((e["type"].as_str(), e["msg"].as_str()), (Some("missing"), Some("Field required")));
    assert_eq!(find(d, &json!(["body", "image_urls"]))["type"], "too_short");
    let e = find(d, &json!(["body", "seed"]));
    assert_eq!(e["type"], "greater_than_equal");
    assert_eq!(e["ctx"], json!({"ge": 0}));
    let e = find(d, &json!(["body", "guidance_scale"]));
    assert_eq!(e["type"], "less_than_equal");
    assert_eq!(e["ctx"], json!({"le": 20}));
    assert_eq!(e["input"], 21);
    assert_eq!(find(d, &json!(["body", "sync_mode"]))["type"], "bool_parsing");
    assert_eq!(find(d, &json!(["body", "num_images"]))["ctx"], json!({"le": 4}));
    assert_eq!(find(d, &json!(["body", "output_format"]))["type"], "enum");
    let e = find(d, &json!(["body", "safety_tolerance"]));
    assert_eq!(e["type"], "enum");
    assert_eq!(e["input"], 2);
    assert_eq!(find(d, &json!(["body", "enhance_prompt"]))["type"], "bool_type");
    assert_eq!(find(d, &json!(["body", "aspect_ratio"]))["type"], "enum");

    // Lower bounds and element types.
    let r = run_sync(&emu, &json!({"prompt": 3, "image_urls": ["x", 7], "guidance_scale": 0.5, "num_images": 0})).await;
    let v: Value = r.json().await.unwrap();
    let d = v["detail"].as_array().unwrap();
    assert_eq!(find(d, &json!(["body", "prompt"]))["type"], "string_type");
    assert_eq!(find(d, &json!(["body", "image_urls", 1]))["type"], "string_type");
    assert_eq!(find(d, &json!(["body", "guidance_scale"]))["ctx"], json!({"ge": 1}));
    assert_eq!(find(d, &json!(["body", "num_images"]))["type"], "greater_than_equal");
    emu.shutdown().await;
}

#[tokio::test]
async fn queue_validation_error_surfaces_at_result() {
    let emu = start().await;
    let (sub, r) = run_to_result(&emu, &json!({"prompt": "x", "image_urls": ["a"], "num_images": 9})).await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.headers()["x-fal-request-id"], sub["request_id"].as_str().unwrap());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["detail"][0]["loc"], json!(["body", "num_images"]));
    let st = wait_completed(sub["status_url"].as_str().unwrap()).await;
    assert!(st.get("error").is_none(), "model errors leave COMPLETED without error: {st}");
    emu.shutdown().await;
}

#[tokio::test]
async fn unfetchable_loopback_image_is_file_download_error() {
    let emu = start().await;
    let missing = format!("{}/files/tiger/nope_missing.png", emu.cdn_base_url());
    let r = run_sync(&emu, &json!({"prompt": "x", "image_urls": [png_data_uri(8, 8), missing]})).await;
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["detail"][0]["type"], "file_download_error");
    assert_eq!(v["detail"][0]["loc"], json!(["body", "image_urls", 1]));
    // Bytes that are not an image.
    let r = run_sync(&emu, &json!({"prompt": "x", "image_urls": ["data:image/png;base64,aGVsbG8="]})).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["detail"][0]["type"], "image_load_error");
    emu.shutdown().await;
}

#[tokio::test]
async fn run_returns_output_and_offline_placeholders() {
    let emu = start().await;
    let r = run_sync(
        &emu,
        &json!({"prompt": "p", "image_urls": ["https://v3.fal.media/files/penguin/x_image.webp"], "num_images": 2, "seed": 7}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-fal-request-id"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["seed"], 7);
    assert_eq!(v["images"].as_array().unwrap().len(), 2);
    assert_eq!(v["has_nsfw_concepts"], json!([false, false]));
    // A square placeholder → 1:1 output, capped to 256 in the fast profile.
    assert_eq!((v["images"][0]["width"].as_u64(), v["images"][0]["height"].as_u64()), (Some(256), Some(256)));
    assert_ne!(v["images"][0]["url"], v["images"][1]["url"]);
    // Nothing but loopback was contacted.
    assert!(emu.journal().iter().all(|j| j.route == Route::Run));
    emu.shutdown().await;
}

#[tokio::test]
async fn sync_mode_data_uris_and_formats() {
    let emu = start().await;
    for (fmt, ct, want) in
        [("png", "image/png", image::ImageFormat::Png), ("jpeg", "image/jpeg", image::ImageFormat::Jpeg)]
    {
        let (_, r) = run_to_result(
            &emu,
            &json!({"prompt": "p", "image_urls": [png_data_uri(30, 30)], "sync_mode": true, "output_format": fmt, "aspect_ratio": "16:9"}),
        )
        .await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        let img = &v["images"][0];
        assert_eq!(img["content_type"], ct);
        let (got_ct, bytes) = decode_data_uri(img["url"].as_str().unwrap());
        assert_eq!(got_ct, ct);
        assert_eq!(image::guess_format(&bytes).unwrap(), want);
        let dec = image::load_from_memory(&bytes).unwrap();
        assert_eq!((dec.width(), dec.height()), (256, 138));
        assert_eq!((img["width"].as_u64(), img["height"].as_u64()), (Some(256), Some(138)));
    }
    // Nothing was stored: no file route, and no /files URLs were produced.
    emu.shutdown().await;
}

async fn sync_bytes(emu: &kontext::emulator::Emulator, seed: u64, ar: &str) -> (Vec<u8>, u32, u32) {
    let r = run_sync(
        emu,
        &json!({"prompt": "same prompt", "image_urls": [png_data_uri(50, 20)], "sync_mode": true, "seed": seed, "aspect_ratio": ar, "output_format": "png"}),
    )
    .await;
    let v: Value = r.json().await.unwrap();
    let (_, bytes) = decode_data_uri(v["images"][0]["url"].as_str().unwrap());
    let dec = image::load_from_memory(&bytes).unwrap();
    (bytes, dec.width(), dec.height())
}

#[tokio::test]
async fn determinism_and_aspect_ratios() {
    let emu = start().await;
    let a = sync_bytes(&emu, 42, "1:1").await;
    let b = sync_bytes(&emu, 42, "1:1").await;
    let c = sync_bytes(&emu, 43, "1:1").await;
    assert_eq!(a.0, b.0, "same seed → same bytes");
    assert_ne!(a.0, c.0, "different seed → different bytes");
    for (ar, w, h) in [("21:9", 256, 110), ("9:16", 138, 256), ("4:3", 256, 190), ("2:3", 171, 256)] {
        let (_, gw, gh) = sync_bytes(&emu, 1, ar).await;
        assert_eq!((gw, gh), (w, h), "{ar}");
    }
    emu.shutdown().await;

    // Realistic sizes without the cap.
    let mut cfg = EmulatorConfig::fast();
    cfg.max_image_side = None;
    let emu = start_with(cfg).await;
    let (_, w, h) = sync_bytes(&emu, 1, "16:9").await;
    assert_eq!((w, h), (1392, 752));
    emu.shutdown().await;
}

#[tokio::test]
async fn storage_flow_a_initiate_put_get() {
    let emu = start().await;
    let c = client();
    let png = {
        let (_, b) = decode_data_uri(&png_data_uri(12, 9));
        b
    };
    let r = c
        .post(format!("{}/storage/upload/initiate?storage_type=fal-cdn-v3", emu.base_url()))
        .header("authorization", KEY)
        .json(&json!({"content_type": "image/png", "file_name": "my photo.png"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let upload_url = v["upload_url"].as_str().unwrap();
    let file_url = v["file_url"].as_str().unwrap();
    assert!(file_url.starts_with(&format!("{}/files/", emu.cdn_base_url())));
    assert!(file_url.ends_with("_my_photo.png"), "{file_url}");
    assert_eq!(c.get(file_url).send().await.unwrap().status(), 404, "not yet uploaded");
    // No auth needed for the presigned PUT.
    let r = c.put(upload_url).header("content-type", "image/png").body(png.clone()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let g = c.get(file_url).send().await.unwrap();
    assert_eq!(g.status(), 200);
    assert_eq!(g.headers()["content-type"], "image/png");
    assert_eq!(g.bytes().await.unwrap().to_vec(), png);
    // The uploaded file works as a model input (read from the store).
    let r = run_sync(&emu, &json!({"prompt": "p", "image_urls": [file_url]})).await;
    assert_eq!(r.status(), 200);
    // Initiate needs a key; gcs works too.
    let r = c
        .post(format!("{}/storage/upload/initiate?storage_type=gcs", emu.base_url()))
        .json(&json!({"content_type": "image/png", "file_name": "a.png"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let routes: Vec<Route> = emu.journal().iter().map(|j| j.route).collect();
    assert!(
        routes.contains(&Route::StorageInitiate)
            && routes.contains(&Route::UploadPut)
            && routes.contains(&Route::FileGet)
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn storage_flow_b_cdn_token() {
    let emu = start().await;
    let c = client();
    let r = c
        .post(format!("{}/storage/auth/token?storage_type=fal-cdn-v3", emu.base_url()))
        .header("authorization", KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["base_url"], emu.cdn_base_url());
    assert!(t["expires_at"].as_str().unwrap().starts_with("20"));
    let token = t["token"].as_str().unwrap();
    let upload = format!("{}/files/upload", emu.cdn_base_url());
    // Wrong token → 401.
    let r = c.post(&upload).header("authorization", "Bearer nope").body("x").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .post(&upload)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "text/plain")
        .header("x-fal-file-name", "notes.txt")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let url = v["access_url"].as_str().unwrap();
    assert!(url.ends_with("_notes.txt"));
    let g = c.get(url).send().await.unwrap();
    assert_eq!(g.headers()["content-type"], "text/plain");
    assert_eq!(g.text().await.unwrap(), "hello");
    emu.shutdown().await;
}

#[tokio::test]
async fn separate_cdn_host_builds_media_urls_on_127_0_0_2() {
    let mut cfg = EmulatorConfig::fast();
    cfg.separate_cdn_host = true;
    let emu = start_with(cfg).await;
    assert!(emu.cdn_base_url().starts_with("http://127.0.0.2:"), "{}", emu.cdn_base_url());
    assert!(emu.base_url().starts_with("http://127.0.0.1:"));
    let (_, r) = run_to_result(&emu, &input()).await;
    let v: Value = r.json().await.unwrap();
    let url = v["images"][0]["url"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.2:"), "{url}");
    let g = client().get(url).send().await.unwrap();
    assert_eq!(g.status(), 200);
    let last = emu.journal().last().cloned().unwrap();
    assert_eq!(last.route, Route::FileGet);
    assert!(last.host.starts_with("127.0.0.2:"));
    assert!(!last.has_authorization);
    // Storage answers point at the CDN host too.
    let r = client()
        .post(format!("{}/storage/upload/initiate", emu.base_url()))
        .header("authorization", KEY)
        .json(&json!({"content_type": "image/png", "file_name": "a.png"}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(v["upload_url"].as_str().unwrap().starts_with("http://127.0.0.2:"));
    emu.shutdown().await;
}

#[tokio::test]
async fn realistic_profile_preserves_input_ratio_at_kontext_size() {
    let mut cfg = EmulatorConfig::realistic();
    assert_eq!(cfg.concurrency, 2);
    assert!(cfg.max_image_side.is_none());
    // Keep the test quick; jitter and sizes stay realistic.
    cfg.queue_delay = std::time::Duration::from_millis(20);
    cfg.processing_time = std::time::Duration::from_millis(200);
    cfg.log_interval = std::time::Duration::from_millis(40);
    let emu = start_with(cfg).await;
    let (_, r) = run_to_result(&emu, &json!({"prompt": "p", "image_urls": [png_data_uri(80, 60)]})).await;
    let v: Value = r.json().await.unwrap();
    let img = &v["images"][0];
    assert_eq!((img["width"].as_u64(), img["height"].as_u64()), (Some(1184), Some(880)));
    emu.shutdown().await;
}
