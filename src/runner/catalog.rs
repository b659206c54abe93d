//! The files behind `model::Catalog` and `model::cost::PriceTable` that live in the data
//! directory: endpoint descriptions added by `kontext models add` (`endpoints/*.json`) and the
//! price table last read from fal's pricing API (`prices.json`). Reads are bounded; writes are
//! atomic.

use std::path::{Path, PathBuf};

use crate::model::Catalog;
use crate::model::cost::PriceTable;

/// Added endpoint descriptions, one file each.
pub const ENDPOINTS_DIR: &str = "endpoints";
/// The cached pricing answer, with its date.
pub const PRICES_FILE: &str = "prices.json";
/// A description is tens of kilobytes; anything past this is not one.
pub const MAX_DESCRIPTION_BYTES: u64 = 2 * 1024 * 1024;

/// The file an added endpoint is kept in (`fal-ai/flux-2/edit` → `fal-ai.flux-2.edit.json`).
pub fn description_path(data_dir: &Path, endpoint_id: &str) -> PathBuf {
    let name: String =
        endpoint_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '.' }).collect();
    data_dir.join(ENDPOINTS_DIR).join(format!("{name}.json"))
}

/// The bundled endpoints and those added to `data_dir`; each added file that cannot be used is
/// named with its problem (and left out).
pub fn load_catalog(data_dir: &Path) -> (Catalog, Vec<String>) {
    let dir = data_dir.join(ENDPOINTS_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else { return (Catalog::bundled().clone(), Vec::new()) };
    let mut texts = Vec::new();
    let mut problems = Vec::new();
    let mut paths: Vec<PathBuf> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    paths.sort();
    for path in paths {
        match crate::local_file::read_bounded_text(&path, MAX_DESCRIPTION_BYTES) {
            Ok(text) => texts.push((path.display().to_string(), text)),
            Err(e) => problems.push(format!("{}: {e}", path.display())),
        }
    }
    let (catalog, bad) = Catalog::with_added(texts);
    problems.extend(bad.into_iter().map(|(name, e)| format!("{name}: {e}")));
    (catalog, problems)
}

/// Keeps a description for later runs.
pub fn save_description(data_dir: &Path, endpoint_id: &str, text: &str) -> Result<PathBuf, String> {
    let path = description_path(data_dir, endpoint_id);
    super::write_atomically(&path, text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// The prices to use: the bundled table, overlaid by the cached answer of fal's pricing API
/// when there is one (each price keeps saying where it came from through the table's source).
pub fn load_prices(data_dir: &Path) -> (PriceTable, Option<PriceTable>) {
    let cached = crate::local_file::read_bounded_text(&data_dir.join(PRICES_FILE), MAX_DESCRIPTION_BYTES)
        .ok()
        .and_then(|t| serde_json::from_str::<PriceTable>(&t).ok());
    (PriceTable::bundled(), cached)
}

/// Caches a pricing answer (merged over what was cached before).
pub fn save_prices(data_dir: &Path, fresh: &PriceTable) -> Result<(), String> {
    let merged = match load_prices(data_dir).1 {
        Some(old) => PriceTable { date: fresh.date.clone(), source: fresh.source.clone(), ..old.overlaid_by(fresh) },
        None => fresh.clone(),
    };
    let text = serde_json::to_string_pretty(&merged).map_err(|e| e.to_string())?;
    let path = data_dir.join(PRICES_FILE);
    super::write_atomically(&path, text.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// One price and where it came from: the cached API answer when it has the endpoint, else the
/// bundled table.
pub fn price_for<'a>(
    bundled: &'a PriceTable,
    cached: Option<&'a PriceTable>,
    endpoint_id: &str,
) -> Option<(&'a crate::model::cost::Price, &'a str)> {
    cached
        .and_then(|c| c.get(endpoint_id).map(|p| (p, c.source.as_str())))
        .or_else(|| bundled.get(endpoint_id).map(|p| (p, bundled.source.as_str())))
}
