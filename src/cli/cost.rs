//! The cost side of `kontext run`: the estimate before sending (bundled, cached or live
//! prices), `--dry-run`, the budget check, the bill after, and how each is shown.

use std::path::Path;

use base64::Engine;
use serde_json::{Value, json};

use crate::fal::FalClient;
use crate::model::cost::{self, Estimate, PriceTable};
use crate::model::{EndpointSchema, ImageSource, ValidInput};
use crate::runner::catalog;
use crate::runner::{JobError, JobOutcome};

/// The estimate from the prices this data directory has (the cached API answer, else the
/// bundled table): no network.
pub fn estimate_offline(input: &ValidInput, sizes: &[Option<(u32, u32)>], data_dir: &Path) -> Estimate {
    let (bundled, cached) = catalog::load_prices(data_dir);
    estimate_with(&input.schema, input, sizes, &bundled, cached.as_ref())
}

fn estimate_with(
    schema: &EndpointSchema,
    input: &ValidInput,
    sizes: &[Option<(u32, u32)>],
    bundled: &PriceTable,
    cached: Option<&PriceTable>,
) -> Estimate {
    let found = catalog::price_for(bundled, cached, &schema.endpoint_id);
    let source = found.map(|(_, s)| s.to_string()).unwrap_or_else(|| "no price".into());
    cost::estimate(schema, &input.body(), sizes, found.map(|(p, _)| p), &source)
}

/// With a fal key: the endpoint's price from fal's pricing API, cached with today's date in
/// the data directory, and the estimate with it (`fallback`, made from the cache, when the cache
/// is from today already). A failure keeps `fallback` and says why.
pub async fn estimate_live(
    client: &FalClient,
    input: &ValidInput,
    sizes: &[Option<(u32, u32)>],
    data_dir: &Path,
    fallback: Estimate,
) -> Estimate {
    let id = input.endpoint_id().to_string();
    // Today's answer is kept: prices change rarely, and a run need not ask twice a day.
    let today = crate::timefmt::today_utc();
    if let (_, Some(cached)) = catalog::load_prices(data_dir)
        && cached.date == today
        && cached.get(&id).is_some()
    {
        return fallback;
    }
    let answer = match tokio::time::timeout(std::time::Duration::from_secs(15), client.pricing(&[&id])).await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            eprintln!(
                "kontext: fal's pricing API did not answer ({}); using {}",
                crate::sanitize::one_line(&e.to_string()),
                fallback.price_source
            );
            return fallback;
        }
        Err(_) => {
            eprintln!("kontext: fal's pricing API did not answer within 15 s; using {}", fallback.price_source);
            return fallback;
        }
    };
    let fresh = match PriceTable::from_api(&answer, &today) {
        Ok(t) if t.get(&id).is_some() => t,
        _ => return fallback,
    };
    if let Err(e) = catalog::save_prices(data_dir, &fresh) {
        eprintln!("kontext: the prices could not be cached: {}", crate::sanitize::one_line(&e));
    }
    estimate_with(&input.schema, input, sizes, &PriceTable::bundled(), Some(&fresh))
}

/// The exact body `kontext run` would send: local files inline as the data: URIs the runner
/// would make (files over the inline threshold are uploaded when sent, and marked so).
pub fn dry_run_body(input: &ValidInput, threshold: u64) -> Value {
    let urls = input
        .images
        .iter()
        .map(|source| match source {
            ImageSource::Url(u) | ImageSource::DataUri(u) => u.clone(),
            ImageSource::Local(path) => match crate::runner::read_input_file(path) {
                Ok(bytes) if bytes.len() as u64 <= threshold => {
                    let mime = image::guess_format(&bytes).map(|f| f.to_mime_type()).unwrap_or("image/png");
                    format!("data:{mime};base64,{}", base64::engine::general_purpose::STANDARD.encode(&bytes))
                }
                _ => format!("(uploaded to fal storage when sent: {})", path.display()),
            },
        })
        .collect();
    serde_json::to_value(input.to_wire(urls)).unwrap_or(Value::Null)
}

/// The bill of a finished request, in dollars, when fal said how many units.
pub fn billed_usd(estimate: &Estimate, units: Option<f64>) -> Option<f64> {
    units.zip(estimate.unit_price).map(|(u, p)| cost::usd(u, p))
}

/// `"cost"` of `kontext run --json`.
pub fn cost_json(estimate: &Estimate, billable_units: Option<f64>) -> Value {
    json!({
        "estimated_usd": estimate.usd,
        "billed_usd": billed_usd(estimate, billable_units),
        "billable_units": billable_units,
        "unit_price": estimate.unit_price,
        "unit": estimate.unit,
        "price_source": estimate.price_source,
    })
}

/// The summary line of a finished request.
pub fn cost_line(estimate: &Estimate, outcome: &JobOutcome) -> String {
    match billed_usd(estimate, outcome.billable_units) {
        Some(b) => {
            let units = outcome.billable_units.unwrap_or(0.0);
            let estimated = estimate.usd.map(|e| format!("${e:.4}")).unwrap_or_else(|| "unknown".into());
            format!(
                "cost     ${b:.4} billed ({} {}{} × ${}, {}; estimated {estimated})",
                cost::units_text(units),
                estimate.unit,
                if units == 1.0 { "" } else { "s" },
                estimate.unit_price.unwrap_or(0.0),
                estimate.price_source,
            )
        }
        None => format!("cost     not reported by fal; estimated {}", estimate.describe()),
    }
}

/// What a failed request cost, as far as can be known ([`JobError::bill`], which the studio
/// uses too).
pub fn failure_bill(e: &JobError) -> (Option<f64>, Option<&'static str>) {
    e.bill()
}
