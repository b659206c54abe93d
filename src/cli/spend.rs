//! `kontext spend`: what the requests in the history cost, by day or by endpoint.

use clap::Args;
use serde_json::json;

use super::exit;
use crate::history::{History, SpendBy};
use crate::sanitize::{one_line, terminal_safe_json};
use crate::setup::Locations;

#[derive(Debug, Args)]
pub struct SpendArgs {
    /// Only requests made on or after this day (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Group by day or by endpoint.
    #[arg(long, default_value = "day", value_name = "day|endpoint")]
    pub by: String,
    /// `{"total_usd", "rows": [...]}` on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn spend(args: SpendArgs, locations: &Locations) -> u8 {
    let by = match args.by.as_str() {
        "day" => SpendBy::Day,
        "endpoint" => SpendBy::Endpoint,
        other => {
            eprintln!("kontext: --by {:?} is not known; use day or endpoint", one_line(other));
            return exit::INVALID_INPUT;
        }
    };
    let history = match History::open(&locations.data_dir()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("kontext: {}", crate::sanitize::strip_controls(&e.to_string()));
            return exit::FAILURE;
        }
    };
    let report = match history.spend(args.since.as_deref(), by) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kontext: {}", crate::sanitize::strip_controls(&e.to_string()));
            return exit::INVALID_INPUT;
        }
    };
    if args.json {
        let value = json!({"total_usd": report.total_usd, "rows": report.rows});
        println!("{}", terminal_safe_json(&value.to_string()));
        return exit::OK;
    }
    let label = if by == SpendBy::Day { "day (UTC)" } else { "endpoint" };
    println!("{label:<44}  {:>8}  {:>10}  {:>10}  {:>10}", "requests", "billed", "estimated", "total");
    for r in &report.rows {
        let unpriced =
            if r.unpriced > 0 { format!("  ({} without a recorded cost)", r.unpriced) } else { String::new() };
        println!(
            "{:<44}  {:>8}  {:>10}  {:>10}  {:>10}{unpriced}",
            one_line(&r.key),
            r.requests,
            format!("${:.4}", r.billed_usd),
            format!("${:.4}", r.unbilled_estimate_usd),
            format!("${:.4}", r.total_usd),
        );
    }
    println!("{:<44}  {:>8}  {:>10}  {:>10}  {:>10}", "total", "", "", "", format!("${:.4}", report.total_usd));
    println!("(\"estimated\": requests fal has not billed yet, or that may have been billed; counted in the total)");
    exit::OK
}
