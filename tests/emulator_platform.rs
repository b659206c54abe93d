//! The emulator's platform API (`/v1/models…`) and its per-endpoint behaviour over HTTP:
//! prices, estimates, model schemas, the request listing with payloads and cursor paging, and
//! `x-fal-billable-units` on results.

mod emulator_support;
use emulator_support::*;
use serde_json::{Value, json};

#[tokio::test]
async fn prices_estimates_and_model_schemas() {
    let emu = start().await;
    let base = emu.base_url();
    let r = client()
        .get(format!("{base}/v1/models/pricing?endpoint_id=fal-ai/flux-pro/kontext/max,fal-ai/flux-kontext/dev"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "prices need a key");
    let v: Value =
        get(&format!("{base}/v1/models/pricing?endpoint_id=fal-ai/flux-pro/kontext/max,fal-ai/flux-kontext/dev"))
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(
        v["prices"][0],
        json!({"endpoint_id": "fal-ai/flux-pro/kontext/max", "unit_price": 0.08, "unit": "image", "currency": "USD"})
    );
    assert_eq!(v["prices"][1]["unit"], "megapixel");
    assert_eq!(get(&format!("{base}/v1/models/pricing?endpoint_id=nobody/nothing")).await.status(), 404);

    let est: Value = client()
        .post(format!("{base}/v1/models/pricing/estimate"))
        .header("authorization", KEY)
        .json(&json!({"estimate_type": "unit_price", "endpoints": {"fal-ai/flux-pro/kontext": {"unit_quantity": 3}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(est, json!({"estimate_type": "unit_price", "total_cost": 0.12, "currency": "USD"}));

    // Model metadata needs no key; the schema only with expand=openapi-3.0.
    let without_key = |query: &'static str| async move {
        let r = client().get(format!("{base}/v1/models?{query}")).send().await.unwrap();
        r.json::<Value>().await.unwrap()
    };
    let m = without_key("endpoint_id=fal-ai/flux-kontext/dev&expand=openapi-3.0").await;
    let item = &m["models"][0];
    assert_eq!(item["endpoint_id"], "fal-ai/flux-kontext/dev");
    assert!(item.get("x-kontext").is_none(), "our own block is not fal's");
    let parsed = kontext::model::EndpointSchema::from_value(item).expect("what the emulator serves parses");
    assert!(parsed.field("num_inference_steps").is_some());
    let bare = without_key("endpoint_id=fal-ai/flux-kontext/dev").await;
    assert!(bare["models"][0].get("openapi").is_none());
    emu.shutdown().await;
}

#[tokio::test]
async fn results_say_what_they_bill_and_requests_are_listed_with_cursors() {
    let emu = start().await;
    let base = emu.base_url();
    let mut ids = Vec::new();
    // Submits, waits, and returns the submit answer and the result response.
    let run = |endpoint: &'static str, body: Value| async move {
        let r: Value = client()
            .post(format!("{base}/{endpoint}"))
            .header("authorization", KEY)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        wait_completed(r["status_url"].as_str().unwrap()).await;
        let result = get(r["response_url"].as_str().unwrap()).await;
        (r, result)
    };
    for n in 1..=3 {
        let body = json!({"prompt": format!("p{n}"), "image_url": png_data_uri(16, 16), "num_images": n});
        let (r, result) = run("fal-ai/flux-pro/kontext/max", body).await;
        assert!(r["response_url"].as_str().unwrap().contains("/fal-ai/flux-pro/requests/"), "owner/alias: {r}");
        assert_eq!(result.headers()["x-fal-billable-units"], n.to_string().as_str());
        ids.push(r["request_id"].as_str().unwrap().to_string());
    }
    // [dev], 21:9 (just over one megapixel): two units per image.
    let dev = json!({"prompt": "d", "image_url": png_data_uri(16, 16), "resolution_mode": "21:9"});
    let (_, result) = run("fal-ai/flux-kontext/dev", dev).await;
    assert_eq!(result.headers()["x-fal-billable-units"], "2");
    let out: Value = result.json().await.unwrap();
    assert!(out["images"][0]["file_size"].as_u64().unwrap() > 0);

    let page = |cursor: Option<String>| {
        let mut url = format!(
            "{base}/v1/models/requests/by-endpoint?endpoint_id=fal-ai/flux-pro/kontext/max&limit=2&expand=payloads"
        );
        if let Some(c) = cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        url
    };
    let first: Value = get(&page(None)).await.json().await.unwrap();
    assert_eq!(first["has_more"], true);
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["request_id"], ids[2].as_str(), "newest first");
    assert_eq!(items[0]["status_code"], 200);
    assert_eq!(items[0]["json_input"]["prompt"], "p3");
    assert_eq!(items[0]["json_output"]["images"].as_array().unwrap().len(), 3);
    let second: Value = get(&page(first["next_cursor"].as_str().map(str::to_string))).await.json().await.unwrap();
    assert_eq!((second["items"].as_array().unwrap().len(), &second["has_more"]), (1, &json!(false)));
    assert_eq!(second["items"][0]["request_id"], ids[0].as_str());
    assert_eq!(get(&format!("{base}/v1/models/requests/by-endpoint?endpoint_id=x/y&cursor=nope")).await.status(), 422);
    emu.shutdown().await;
}
