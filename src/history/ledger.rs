//! The ledger over the history: what was spent, per day or per endpoint, and today's spend for
//! the budget. A request's spend is its bill when fal said (`x-fal-billable-units` × unit
//! price; 0 when it certainly billed nothing), else its estimate: a request that may have been
//! billed is counted, never left out.

use serde::Serialize;

use super::{History, HistoryError};

/// How `kontext spend` groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendBy {
    /// Calendar days (UTC, as `history list` shows times).
    Day,
    Endpoint,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpendRow {
    /// The day (YYYY-MM-DD) or the endpoint id.
    pub key: String,
    pub requests: u64,
    /// Sum of the bills fal reported.
    pub billed_usd: f64,
    /// Sum of the estimates of requests without a bill (still running, or maybe billed).
    pub unbilled_estimate_usd: f64,
    /// `billed_usd + unbilled_estimate_usd`.
    pub total_usd: f64,
    /// Requests with neither (recorded before kontext kept costs).
    pub unpriced: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpendReport {
    pub total_usd: f64,
    pub rows: Vec<SpendRow>,
}

/// Rounds to a hundredth of a cent, as prices and bills are.
fn cents(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

impl History {
    /// Spend since the start (UTC) of the day `since` (YYYY-MM-DD; all of it when `None`).
    pub fn spend(&self, since: Option<&str>, by: SpendBy) -> Result<SpendReport, HistoryError> {
        let since = match since {
            None => None,
            Some(d) => Some(
                crate::timefmt::parse_day(d)
                    .ok_or_else(|| HistoryError::Invalid(format!("--since {d:?}: give a date as YYYY-MM-DD")))?,
            ),
        };
        let key = match by {
            SpendBy::Day => "day",
            SpendBy::Endpoint => "endpoint",
        };
        let filter = if since.is_some() { "WHERE day >= ?1 / 86400" } else { "" };
        // The ledger table holds one row per day and endpoint (kept by triggers).
        let sql = format!(
            "SELECT {key} AS k, sum(requests), total(billed_usd), total(unbilled_estimate_usd), sum(unpriced)
             FROM ledger {filter} GROUP BY k ORDER BY k"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql).map_err(|e| self.sql_err(e))?;
        let map = |r: &rusqlite::Row<'_>| {
            let billed: f64 = r.get(2)?;
            let unbilled: f64 = r.get(3)?;
            let key = match by {
                SpendBy::Day => {
                    let day: i64 = r.get(0)?;
                    crate::timefmt::format_utc(day * 86_400).chars().take(10).collect()
                }
                SpendBy::Endpoint => r.get::<_, Option<String>>(0)?.unwrap_or_default(),
            };
            Ok(SpendRow {
                key,
                requests: r.get::<_, i64>(1)? as u64,
                billed_usd: cents(billed),
                unbilled_estimate_usd: cents(unbilled),
                total_usd: cents(billed + unbilled),
                unpriced: r.get::<_, Option<i64>>(4)?.unwrap_or(0) as u64,
            })
        };
        let rows: Vec<SpendRow> = match since {
            Some(d) => stmt.query_map([d], map),
            None => stmt.query_map([], map),
        }
        .and_then(|rows| rows.collect())
        .map_err(|e| self.sql_err(e))?;
        let total_usd = cents(rows.iter().map(|r| r.total_usd).sum());
        Ok(SpendReport { total_usd, rows })
    }

    /// What today's requests (UTC day) have cost or may cost so far: the figure a daily
    /// budget is checked against.
    pub fn spent_today(&self) -> Result<f64, HistoryError> {
        let conn = self.conn();
        conn.query_row(
            "SELECT total(billed_usd) + total(unbilled_estimate_usd) FROM ledger
             WHERE day = CAST(strftime('%s', 'now') AS INTEGER) / 86400",
            [],
            |r| r.get::<_, f64>(0),
        )
        .map(cents)
        .map_err(|e| self.sql_err(e))
    }
}
