//! What a request costs: the price table (bundled, cached or live), the output size a request
//! implies, billable units, the estimate before sending and the bill after. The emulator bills
//! with the same rules, so an estimate on the emulator equals its bill.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::schema::{EndpointSchema, PriceUnit};

/// One megapixel as fal bills it: 1024 × 1024 pixels, rounded up per image.
pub const MEGAPIXEL: u64 = 1024 * 1024;

/// The output sizes of the Kontext family for each aspect ratio (about one megapixel each).
pub const KONTEXT_SIZES: &[(&str, u32, u32)] = &[
    ("21:9", 1568, 672),
    ("16:9", 1392, 752),
    ("4:3", 1184, 880),
    ("3:2", 1248, 832),
    ("5:4", 1136, 912),
    ("1:1", 1024, 1024),
    ("4:5", 912, 1136),
    ("2:3", 832, 1248),
    ("3:4", 880, 1184),
    ("9:16", 752, 1392),
    ("9:21", 672, 1568),
];

/// The price table shipped with kontext (`endpoints/prices.json`).
const BUNDLED_PRICES: &str = include_str!("../../endpoints/prices.json");

/// One endpoint's price, in the shape of fal's `GET /v1/models/pricing` items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub endpoint_id: String,
    pub unit_price: f64,
    pub unit: String,
    #[serde(default = "default_currency")]
    pub currency: String,
}

fn default_currency() -> String {
    "USD".into()
}

/// A set of prices with where and when they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceTable {
    /// When the prices were read (YYYY-MM-DD, or an RFC 3339 time).
    #[serde(default)]
    pub date: String,
    /// Who said so: "bundled table (…)", "fal pricing API".
    #[serde(default)]
    pub source: String,
    pub prices: Vec<Price>,
}

impl PriceTable {
    pub fn bundled() -> PriceTable {
        let mut t: PriceTable = serde_json::from_str(BUNDLED_PRICES).expect("the bundled price table parses");
        // Where the table's figures came from is in the file (and docs/PROTOCOL.md); a figure
        // says which table it came from.
        t.source = format!("bundled table of {}", t.date);
        t
    }

    /// fal's answer (`{"prices":[…]}`) as a table, labelled with its source and date.
    pub fn from_api(answer: &Value, date: &str) -> Result<PriceTable, String> {
        let prices: Vec<Price> = serde_json::from_value(answer.get("prices").cloned().unwrap_or(Value::Null))
            .map_err(|e| format!("fal's pricing answer could not be read: {e}"))?;
        Ok(PriceTable { date: date.to_string(), source: format!("fal pricing API, {date}"), prices })
    }

    pub fn get(&self, endpoint_id: &str) -> Option<&Price> {
        self.prices.iter().find(|p| p.endpoint_id == endpoint_id)
    }

    /// `self`, with `other`'s prices taking precedence where it has one.
    pub fn overlaid_by(mut self, other: &PriceTable) -> PriceTable {
        self.prices.retain(|p| other.get(&p.endpoint_id).is_none());
        self.prices.extend(other.prices.iter().cloned());
        self
    }
}

fn ratio_size(name: &str) -> Option<(u32, u32)> {
    KONTEXT_SIZES.iter().find(|(n, _, _)| *n == name).map(|(_, w, h)| (*w, *h))
}

fn nearest_ratio(first_input: Option<(u32, u32)>) -> (u32, u32) {
    let target = first_input.filter(|(w, h)| *w > 0 && *h > 0).map(|(w, h)| (f64::from(w) / f64::from(h)).ln());
    let Some(target) = target else { return (1024, 1024) };
    KONTEXT_SIZES
        .iter()
        .min_by(|a, b| {
            let da = ((f64::from(a.1) / f64::from(a.2)).ln() - target).abs();
            let db = ((f64::from(b.1) / f64::from(b.2)).ln() - target).abs();
            da.total_cmp(&db)
        })
        .map(|(_, w, h)| (*w, *h))
        .unwrap_or((1024, 1024))
}

/// The output size a request implies: its `aspect_ratio` (or [dev]'s `resolution_mode`) when it
/// names one, the first input's own size for `match_input`, else the ratio nearest the first
/// input (1:1 without one). `None` for `match_input` when the input's size is not known.
pub fn output_size(body: &Map<String, Value>, first_input: Option<(u32, u32)>) -> Option<(u32, u32)> {
    let mode = body.get("aspect_ratio").or_else(|| body.get("resolution_mode")).and_then(Value::as_str);
    match mode {
        Some("match_input") => first_input,
        Some(r) => Some(ratio_size(r).unwrap_or_else(|| nearest_ratio(first_input))),
        None => Some(nearest_ratio(first_input)),
    }
}

/// Megapixels billed for one image: rounded up.
pub fn megapixels(size: (u32, u32)) -> u64 {
    (u64::from(size.0) * u64::from(size.1)).div_ceil(MEGAPIXEL).max(1)
}

/// The units fal bills for these outputs (and inputs, where the unit counts them).
pub fn billable_units(unit: &PriceUnit, outputs: &[(u32, u32)], inputs: &[(u32, u32)]) -> Option<f64> {
    match unit {
        PriceUnit::Image => Some(outputs.len() as f64),
        PriceUnit::Megapixel { counts_input } => {
            let out: u64 = outputs.iter().map(|s| megapixels(*s)).sum();
            let inp: u64 = if *counts_input { inputs.iter().map(|s| megapixels(*s)).sum() } else { 0 };
            Some((out + inp) as f64)
        }
        PriceUnit::Other(_) => None,
    }
}

/// Dollars, rounded to a hundredth of a cent (fal's prices have at most four decimals).
pub fn usd(units: f64, unit_price: f64) -> f64 {
    (units * unit_price * 10_000.0).round() / 10_000.0
}

/// Units as fal's header writes them: `2`, `1.5`.
pub fn units_text(units: f64) -> String {
    if units.fract() == 0.0 && units.abs() < 1e15 { format!("{}", units as i64) } else { units.to_string() }
}

/// What a request will cost, before it is sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub usd: Option<f64>,
    pub units: Option<f64>,
    pub unit_price: Option<f64>,
    pub unit: String,
    pub price_source: String,
    /// False when a size had to be assumed (an input whose size is not known).
    pub exact: bool,
    /// Why it is not exact, or why there is no figure.
    pub note: Option<String>,
}

impl Estimate {
    /// `$0.0800 (2 images × $0.04, bundled table of 2026-11-20)`.
    pub fn describe(&self) -> String {
        match (self.usd, self.units, self.unit_price) {
            (Some(usd), Some(units), Some(price)) => {
                let plural = if units == 1.0 { "" } else { "s" };
                let approx = if self.exact { "" } else { "about " };
                let note = self.note.as_ref().map(|n| format!("; {n}")).unwrap_or_default();
                format!("{approx}${usd:.4} ({units} {}{plural} × ${price}, {}{note})", self.unit, self.price_source)
            }
            _ => format!("unknown ({})", self.note.clone().unwrap_or_else(|| "no price".into())),
        }
    }
}

/// Budget caps in US dollars (the config's `[budget]`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BudgetCaps {
    pub max_request_usd: Option<f64>,
    pub daily_usd: Option<f64>,
}

/// The one budget check, for `kontext run` and the studio: a request whose estimate is over a
/// cap — alone, or with what today's requests cost — is refused before anything is sent. The
/// message names the cap, the estimate and how to pass once.
pub fn check_budget(caps: &BudgetCaps, estimate: &Estimate, spent_today: f64) -> Result<(), String> {
    if caps.max_request_usd.is_none() && caps.daily_usd.is_none() {
        return Ok(());
    }
    let Some(usd) = estimate.usd else {
        return Err(format!(
            "the cost of this request cannot be estimated ({}), so the [budget] caps cannot be checked: pass --allow-over-budget to send it anyway",
            estimate.note.clone().unwrap_or_else(|| "no price".into())
        ));
    };
    if let Some(cap) = caps.max_request_usd
        && usd > cap + 1e-9
    {
        return Err(format!(
            "the estimate ${usd:.4} is over the budget's max_request_usd = ${cap:.4}: nothing was sent (pass --allow-over-budget to send it once, or raise the cap)"
        ));
    }
    if let Some(cap) = caps.daily_usd
        && spent_today + usd > cap + 1e-9
    {
        return Err(format!(
            "today's spend ${spent_today:.4} plus the estimate ${usd:.4} is over the budget's daily_usd = ${cap:.4}: nothing was sent (pass --allow-over-budget to send it once, or raise the cap)"
        ));
    }
    Ok(())
}

/// The estimate for a request with this wire body (images aside) on this endpoint.
/// `input_sizes` are the input images' sizes where known (local files), in order.
pub fn estimate(
    schema: &EndpointSchema,
    body: &Map<String, Value>,
    input_sizes: &[Option<(u32, u32)>],
    price: Option<&Price>,
    price_source: &str,
) -> Estimate {
    let n = body.get("num_images").and_then(Value::as_u64).unwrap_or(1).max(1) as usize;
    let mut note = None;
    let mut exact = true;
    let units = match &schema.price_unit {
        PriceUnit::Image => Some(n as f64),
        PriceUnit::Megapixel { counts_input } => {
            let first = input_sizes.first().copied().flatten();
            let size = output_size(body, first).unwrap_or_else(|| {
                exact = false;
                note = Some("assumes a 1024×1024 output: the input image's size is not known".into());
                (1024, 1024)
            });
            let known_inputs: Vec<(u32, u32)> = input_sizes.iter().flatten().copied().collect();
            if *counts_input && known_inputs.len() < input_sizes.len() {
                exact = false;
                note = Some("input images of unknown size are not counted".into());
            }
            billable_units(&schema.price_unit, &vec![size; n], &known_inputs)
        }
        PriceUnit::Other(u) => {
            note = Some(format!("kontext cannot estimate the unit {u:?}"));
            None
        }
    };
    let unit = price.map(|p| p.unit.clone()).unwrap_or_else(|| schema.price_unit.as_str().to_string());
    if price.is_none() {
        note = Some(format!("no price known for {}", schema.endpoint_id));
    }
    Estimate {
        usd: units.zip(price).map(|(u, p)| usd(u, p.unit_price)),
        units,
        unit_price: price.map(|p| p.unit_price),
        unit,
        price_source: price_source.to_string(),
        exact,
        note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Catalog;

    #[test]
    fn per_image_and_per_megapixel_estimates() {
        let prices = PriceTable::bundled();
        let c = Catalog::bundled();
        let max = c.get("fal-ai/flux-pro/kontext/max").unwrap();
        let mut body = Map::new();
        body.insert("num_images".into(), Value::from(3));
        let e = estimate(max, &body, &[None], prices.get(&max.endpoint_id), &prices.source);
        assert_eq!((e.units, e.usd, e.exact), (Some(3.0), Some(0.24), true));

        let dev = c.get("fal-ai/flux-kontext/dev").unwrap();
        body.insert("resolution_mode".into(), Value::from("21:9"));
        let e = estimate(dev, &body, &[None], prices.get(&dev.endpoint_id), &prices.source);
        // 1568×672 is just over one megapixel: two units per image.
        assert_eq!((e.units, e.usd), (Some(6.0), Some(0.15)));
        body.insert("resolution_mode".into(), Value::from("match_input"));
        let e = estimate(dev, &body, &[Some((2048, 2048))], prices.get(&dev.endpoint_id), &prices.source);
        assert_eq!(e.units, Some(12.0));
        let e = estimate(dev, &body, &[None], prices.get(&dev.endpoint_id), &prices.source);
        assert!(!e.exact && e.note.is_some());
    }
}
