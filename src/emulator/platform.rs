//! fal's platform API (`https://api.fal.ai/v1`), as much of it as kontext uses: prices, price
//! estimates, model metadata with its OpenAPI schema, and the request listing per endpoint.
//! Prices and schemas come from the same bundled data the client ships (`endpoints/`).

use std::sync::Arc;

use axum::body::Body;
use axum::http::Response;
use base64::Engine;
use serde_json::{Value, json};

use super::Shared;
use super::endpoints::{extra_items, prices};
use super::sim::{Outcome, Phase};
use super::util::{detail, iso8601, json, lock, query_param};
use crate::model::Catalog;

/// What a path under `/v1/models` asks for.
pub(crate) enum PlatformOp {
    Pricing,
    Estimate,
    Models,
    RequestsByEndpoint,
}

impl PlatformOp {
    pub(crate) fn classify(segs: &[&str]) -> Option<PlatformOp> {
        Some(match segs {
            ["v1", "models"] => PlatformOp::Models,
            ["v1", "models", "pricing"] => PlatformOp::Pricing,
            ["v1", "models", "pricing", "estimate"] => PlatformOp::Estimate,
            ["v1", "models", "requests", "by-endpoint"] => PlatformOp::RequestsByEndpoint,
            _ => return None,
        })
    }

    /// Model metadata is public; prices and request listings need a key.
    pub(crate) fn needs_key(&self) -> bool {
        !matches!(self, PlatformOp::Models)
    }
}

fn ids(query: Option<&str>) -> Vec<String> {
    query_param(query, "endpoint_id")
        .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
}

pub(crate) fn serve(shared: &Arc<Shared>, op: PlatformOp, query: Option<&str>, body: &[u8]) -> Response<Body> {
    match op {
        PlatformOp::Pricing => pricing(query),
        PlatformOp::Estimate => estimate(body),
        PlatformOp::Models => models(query),
        PlatformOp::RequestsByEndpoint => requests(shared, query),
    }
}

fn pricing(query: Option<&str>) -> Response<Body> {
    let ids = ids(query);
    if ids.is_empty() || ids.len() > 50 {
        return detail(422, "endpoint_id must name 1 to 50 endpoints");
    }
    let table = prices();
    let mut prices = Vec::new();
    for id in &ids {
        match table.get(id) {
            Some(p) => prices.push(json!({"endpoint_id": p.endpoint_id, "unit_price": p.unit_price, "unit": p.unit, "currency": p.currency})),
            None => return detail(404, &format!("No pricing found for endpoint '{id}'")),
        }
    }
    json(200, &json!({ "prices": prices }))
}

fn estimate(body: &[u8]) -> Response<Body> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return detail(422, "the body must be a JSON object");
    };
    let kind = v["estimate_type"].as_str().unwrap_or("");
    let quantity_key = match kind {
        "unit_price" => "unit_quantity",
        "historical_api_price" => "call_quantity",
        _ => return detail(422, "estimate_type must be 'unit_price' or 'historical_api_price'"),
    };
    let Some(endpoints) = v["endpoints"].as_object().filter(|e| !e.is_empty()) else {
        return detail(422, "endpoints must map at least one endpoint id to its quantity");
    };
    let table = prices();
    let mut total = 0.0;
    for (id, q) in endpoints {
        let Some(price) = table.get(id) else {
            return detail(404, &format!("No pricing found for endpoint '{id}'"));
        };
        let Some(n) = q[quantity_key].as_f64().filter(|n| n.is_finite() && *n >= 0.0) else {
            return detail(422, &format!("endpoints.{id}.{quantity_key} must be a number of at least 0"));
        };
        // A call of these endpoints bills one unit by default (one image, or one megapixel).
        total += n * price.unit_price;
    }
    json(200, &json!({"estimate_type": kind, "total_cost": crate::model::cost::usd(total, 1.0), "currency": "USD"}))
}

fn models(query: Option<&str>) -> Response<Body> {
    let expand = query_param(query, "expand").is_some_and(|e| e.split(',').any(|x| x == "openapi-3.0"));
    let ids = ids(query);
    let bundled = Catalog::bundled().iter().map(|s| &s.model_item);
    let extra = extra_items().iter();
    let items: Vec<Value> = bundled
        .chain(extra)
        .filter(|item| ids.is_empty() || ids.iter().any(|id| item["endpoint_id"] == id.as_str()))
        .map(|item| {
            let mut item = item.clone();
            if let Some(m) = item.as_object_mut() {
                m.remove("x-kontext");
            }
            if !expand && let Some(m) = item.as_object_mut() {
                m.remove("openapi");
            }
            item
        })
        .collect();
    json(200, &json!({"models": items, "next_cursor": null, "has_more": false}))
}

/// Cursors are opaque to clients: the offset into the listing, base64.
fn cursor_offset(c: &str) -> Option<usize> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok()?;
    String::from_utf8(bytes).ok()?.strip_prefix("o:")?.parse().ok()
}

fn requests(shared: &Arc<Shared>, query: Option<&str>) -> Response<Body> {
    let Some(endpoint) = ids(query).into_iter().next() else {
        return detail(422, "endpoint_id is required");
    };
    let limit = query_param(query, "limit").and_then(|l| l.parse::<usize>().ok()).unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return detail(422, "limit must be between 1 and 100");
    }
    let offset = match query_param(query, "cursor") {
        None => 0,
        Some(c) => match cursor_offset(&c) {
            Some(o) => o,
            None => return detail(422, "cursor is not one this API returned"),
        },
    };
    let payloads = query_param(query, "expand").is_some_and(|e| e.split(',').any(|x| x == "payloads"));
    let status_filter = query_param(query, "status");
    let jobs: Vec<_> = {
        let q = lock(&shared.queue);
        // Newest first, as fal lists them.
        q.order.iter().rev().filter_map(|id| q.jobs.get(id).cloned()).filter(|j| j.endpoint == endpoint).collect()
    };
    let mut items = Vec::new();
    for job in &jobs {
        let st = lock(&job.state);
        let status_code = match (st.phase, &st.outcome) {
            (Phase::Completed, Some(Outcome::Success { .. })) => Some(200),
            (Phase::Completed, Some(Outcome::ModelError { status, .. } | Outcome::Infra { status, .. })) => {
                Some(*status)
            }
            _ => None,
        };
        let wanted = match status_filter.as_deref() {
            Some("success") => status_code == Some(200),
            Some("error") => status_code.is_some_and(|c| c != 200),
            _ => true,
        };
        if !wanted {
            continue;
        }
        let mut item = json!({
            "request_id": job.id,
            "endpoint_id": job.endpoint,
            "sent_at": iso8601(job.sent_at, true),
            "started_at": st.started_at.map(|t| iso8601(t, true)),
            "ended_at": st.ended_at.map(|t| iso8601(t, true)),
            "status_code": status_code,
            "duration": st.started_at.zip(st.ended_at).and_then(|(a, b)| b.duration_since(a).ok()).map(|d| d.as_secs_f64()),
        });
        if payloads {
            item["json_input"] = job.body.clone().unwrap_or(Value::Null);
            item["json_output"] = match &st.outcome {
                Some(Outcome::Success { output, .. }) => output.clone(),
                Some(Outcome::ModelError { body, .. }) => body.clone(),
                _ => Value::Null,
            };
        }
        items.push(item);
    }
    let page: Vec<Value> = items.iter().skip(offset).take(limit).cloned().collect();
    let next = offset + page.len();
    let has_more = next < items.len();
    let next_cursor =
        has_more.then(|| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o:{next}").as_bytes()));
    json(200, &json!({"items": page, "next_cursor": next_cursor, "has_more": has_more}))
}
