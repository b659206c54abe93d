//! Sweeps in the store: the whole plan, kept before its first submit, and which of its points
//! were sent (each request of a sweep carries its id and point index); stars.

use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use super::{History, HistoryEntry, HistoryError, JobState, StoredMedia, now_ms};
use crate::model::Draft;
use crate::model::sweep::{Axis, AxisKind, MAX_PLAN, Planned, Point};

/// How many requests of one point `sweep_requests` reads at most (more is a store gone wrong).
const SENT_PER_POINT: i64 = 4;

/// A sweep's plan as journaled: every point, with what is needed to send it later.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRecord {
    pub id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The axes, as `[{"name": .., "values": [..]}, ..]`.
    pub axes: Value,
    /// How it runs (output folder, concurrency, ...), as the front end wrote it.
    pub settings: Value,
    pub points: Vec<SweepPoint>,
}

impl SweepRecord {
    /// The record of a plan about to be sent (`created_at` is set when it is kept).
    pub fn of_plan(id: &str, axes: &[Axis], plan: &[Planned], settings: Value) -> SweepRecord {
        let axes = axes.iter().map(|a| serde_json::json!({"name": a.kind.name(), "values": a.values})).collect();
        let points = plan
            .iter()
            .map(|p| SweepPoint {
                axes: p.point.to_json(),
                endpoint: p.input.endpoint_id().to_string(),
                draft: p.input.to_draft(),
            })
            .collect();
        SweepRecord { id: id.to_string(), created_at: 0, axes: Value::Array(axes), settings, points }
    }

    /// The axes as kept (a value that is not text is dropped, as the plan never writes one).
    pub fn axis_list(&self) -> Vec<Axis> {
        self.axes
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| Axis {
                kind: AxisKind::from_name(a["name"].as_str().unwrap_or_default()),
                values: a["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
            })
            .collect()
    }
}

impl SweepPoint {
    /// The point's axis values, in the order kept.
    pub fn point(&self) -> Point {
        let values = self
            .axes
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (AxisKind::from_name(k), v.as_str().unwrap_or_default().to_string()))
            .collect();
        Point { values }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SweepPoint {
    /// Axis name → value.
    pub axes: Value,
    pub endpoint: String,
    pub draft: Draft,
}

/// A request of a sweep as kept: the index of its point in the plan, its row, its outputs.
#[derive(Debug, Clone)]
pub struct SweepRequest {
    pub index: usize,
    pub entry: HistoryEntry,
    pub outputs: Vec<StoredMedia>,
}

/// Where a point of a sweep's plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointProgress {
    /// No request of it reached fal (none recorded, or each stopped before its submit).
    NeverSent,
    /// Sent, and not finished yet: `kontext resume` (or the process running it) finishes it.
    Unfinished,
    /// Sent and finished (whatever the outcome): never sent again.
    Finished,
}

impl History {
    /// Journals a sweep's whole plan in one transaction.
    pub fn record_sweep(&self, sweep: &SweepRecord) -> Result<(), HistoryError> {
        self.write(|tx| {
            let e = |e| self.sql_err(e);
            tx.execute(
                "INSERT INTO sweeps (id, created_at, axes_json, settings_json) VALUES (?1, ?2, ?3, ?4)",
                params![sweep.id, now_ms() / 1000, sweep.axes.to_string(), sweep.settings.to_string()],
            )
            .map_err(e)?;
            for (i, p) in sweep.points.iter().enumerate() {
                let draft = serde_json::to_string(&p.draft).map_err(|x| HistoryError::Invalid(x.to_string()))?;
                tx.execute(
                    "INSERT INTO sweep_points (sweep, idx, axes_json, endpoint, draft_json) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![sweep.id, i as i64, p.axes.to_string(), p.endpoint, draft],
                )
                .map_err(e)?;
            }
            Ok(())
        })
    }

    /// A sweep by its id.
    pub fn sweep(&self, id: &str) -> Result<SweepRecord, HistoryError> {
        let conn = self.conn();
        let e = |e| self.sql_err(e);
        let head: Option<(i64, String, String)> = conn
            .query_row("SELECT created_at, axes_json, settings_json FROM sweeps WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
            .map_err(e)?;
        let Some((created_at, axes, settings)) = head else {
            return Err(HistoryError::NotFound(format!("sweep {id}")));
        };
        let corrupt = |x: serde_json::Error| HistoryError::Corrupt(format!("sweep {id}: {x}"));
        // A plan holds at most MAX_PLAN points: a store that says more is not read whole.
        let mut stmt = conn
            .prepare_cached(
                "SELECT axes_json, endpoint, draft_json FROM sweep_points WHERE sweep = ?1 ORDER BY idx LIMIT ?2",
            )
            .map_err(e)?;
        let rows = stmt
            .query_map(params![id, MAX_PLAN as i64 + 1], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })
            .map_err(e)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(e)?;
        if rows.len() > MAX_PLAN {
            return Err(HistoryError::Corrupt(format!("sweep {id}: more than {MAX_PLAN} planned requests")));
        }
        let mut points = Vec::new();
        for (axes, endpoint, draft) in rows {
            points.push(SweepPoint {
                axes: serde_json::from_str(&axes).map_err(corrupt)?,
                endpoint,
                draft: serde_json::from_str(&draft).map_err(corrupt)?,
            });
        }
        Ok(SweepRecord {
            id: id.to_string(),
            created_at,
            axes: serde_json::from_str(&axes).map_err(corrupt)?,
            settings: serde_json::from_str(&settings).map_err(corrupt)?,
            points,
        })
    }

    /// Where each point of the sweep's plan is, by index. A request that stopped before its
    /// submit (`kontext resume` records it as failed, nothing sent) leaves its point never sent;
    /// any other request of a point — finished, failed after fal took it, or ambiguous — makes
    /// it sent, so nothing is submitted twice.
    pub fn sweep_progress(&self, id: &str, points: usize) -> Result<Vec<PointProgress>, HistoryError> {
        let conn = self.conn();
        let e = |e| self.sql_err(e);
        let mut progress = vec![PointProgress::NeverSent; points];
        let mut stmt = conn
            .prepare_cached("SELECT sweep_idx, state, submitting_at, request_id FROM requests WHERE sweep_id = ?1")
            .map_err(e)?;
        let rows = stmt
            .query_map([id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .map_err(e)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(e)?;
        for (idx, state, submitting_at, request_id) in rows {
            let Some(slot) = usize::try_from(idx).ok().and_then(|i| progress.get_mut(i)) else { continue };
            let state = JobState::parse(&state).unwrap_or(JobState::Failed);
            let never_sent = state == JobState::Failed && submitting_at.is_none() && request_id.is_none();
            let this = if never_sent {
                PointProgress::NeverSent
            } else if state.is_final() {
                PointProgress::Finished
            } else {
                PointProgress::Unfinished
            };
            // Unfinished outranks finished: the point is not done while one of its requests runs.
            *slot = match (*slot, this) {
                (PointProgress::Unfinished, _) | (_, PointProgress::Unfinished) => PointProgress::Unfinished,
                (PointProgress::Finished, _) | (_, PointProgress::Finished) => PointProgress::Finished,
                _ => PointProgress::NeverSent,
            };
        }
        Ok(progress)
    }

    /// The requests a sweep sent, each with its point's index, its row and its outputs (for
    /// a grid of a past sweep). A point sent more than once (sent again after a submit that
    /// never reached fal) gives its latest request.
    pub fn sweep_requests(&self, id: &str) -> Result<Vec<SweepRequest>, HistoryError> {
        let rows = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare_cached("SELECT id, sweep_idx FROM requests WHERE sweep_id = ?1 ORDER BY id LIMIT ?2")
                .map_err(|e| self.sql_err(e))?;
            // Bounded as the plan is: each point sent a few times at most (a submit that never
            // reached fal is sent again by `--continue`).
            stmt.query_map(params![id, SENT_PER_POINT * MAX_PLAN as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
            })
            .map_err(|e| self.sql_err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.sql_err(e))?
        };
        let mut requests: Vec<SweepRequest> = Vec::new();
        for (row, index) in rows {
            let Some(index) = index.and_then(|i| usize::try_from(i).ok()) else { continue };
            let detail = self.detail(row)?;
            let request = SweepRequest { index, entry: detail.entry, outputs: detail.outputs };
            match requests.iter_mut().find(|r| r.index == index) {
                Some(earlier) => *earlier = request,
                None => requests.push(request),
            }
        }
        Ok(requests)
    }

    /// Stars (or unstars) a request, by its id or an unambiguous prefix.
    pub fn set_starred(&self, id_or_prefix: &str, starred: bool) -> Result<String, HistoryError> {
        let entry = self.get(id_or_prefix)?.entry;
        self.write(|tx| {
            tx.execute("UPDATE requests SET starred = ?1 WHERE id = ?2", params![starred as i64, entry.cursor.0])
                .map_err(|e| self.sql_err(e))
        })?;
        Ok(entry.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point() -> SweepPoint {
        SweepPoint { axes: serde_json::json!({"seed": "1"}), endpoint: "e".into(), draft: Draft::default() }
    }

    #[test]
    fn a_sweep_of_more_points_than_a_plan_may_hold_is_refused_not_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let history = History::open(dir.path()).unwrap();
        let record = |id: &str, n: usize| SweepRecord {
            id: id.into(),
            created_at: 0,
            axes: serde_json::json!([]),
            settings: serde_json::json!({}),
            points: vec![point(); n],
        };
        history.record_sweep(&record("full", MAX_PLAN)).unwrap();
        assert_eq!(history.sweep("full").unwrap().points.len(), MAX_PLAN);
        history.record_sweep(&record("over", MAX_PLAN + 1)).unwrap();
        let e = history.sweep("over").unwrap_err().to_string();
        assert!(e.contains("more than 1024 planned requests"), "{e}");
        assert!(history.sweep_requests("full").unwrap().is_empty(), "nothing of it was sent");
    }
}
