//! The endpoints the emulator serves: every one kontext ships (`endpoints/*.json`, the same data
//! the client validates with) and a few of its own (`extra/`), with their prices.

use serde_json::Value;

use crate::model::Catalog;
use crate::model::cost::PriceTable;

/// Descriptions the emulator serves that kontext does not ship, so `kontext models add` can be
/// tried offline: [dev] with LoRAs (which works once added), and a variant whose required field
/// kontext cannot fill (which `models add` refuses).
const EXTRA: &[&str] =
    &[include_str!("extra/fal-ai.flux-kontext-lora.json"), include_str!("extra/fal-ai.flux-kontext-lora.strict.json")];

/// Their prices (fal's page: $0.035 per megapixel).
const EXTRA_PRICE: f64 = 0.035;

pub(crate) fn extra_items() -> &'static [Value] {
    static ITEMS: std::sync::OnceLock<Vec<Value>> = std::sync::OnceLock::new();
    ITEMS.get_or_init(|| {
        EXTRA.iter().map(|t| serde_json::from_str(t).expect("an emulator description parses")).collect()
    })
}

/// Every endpoint the emulator runs: the bundled ones and the extra ones kontext's form can fill.
pub(crate) fn catalog() -> &'static Catalog {
    static CATALOG: std::sync::OnceLock<Catalog> = std::sync::OnceLock::new();
    CATALOG.get_or_init(|| Catalog::with_added(EXTRA.iter().map(|t| ("emulator".to_string(), t.to_string()))).0)
}

/// The bundled price table plus the extra endpoints'.
pub(crate) fn prices() -> PriceTable {
    let mut t = PriceTable::bundled();
    for item in extra_items() {
        if let Some(id) = item["endpoint_id"].as_str() {
            t.prices.push(crate::model::cost::Price {
                endpoint_id: id.to_string(),
                unit_price: EXTRA_PRICE,
                unit: "megapixel".into(),
                currency: "USD".into(),
            });
        }
    }
    t
}
