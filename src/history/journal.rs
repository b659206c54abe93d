//! The SQLite side of the runner's journal: each [`JournalEntry`] becomes one short `BEGIN
//! IMMEDIATE` transaction (a state change plus an event row, log lines, a media link).

use std::sync::OnceLock;

use rusqlite::{Transaction, params};

use super::{History, HistoryError, JobState, media, now_ms, short_id};
use crate::fal::{CancelOutcome, StatusUpdate, SubmitError};
use crate::model::cost::Estimate;
use crate::runner::{JobJournal, JournalEntry};

/// One job's journal. Made by [`History::journal`] (a new request) or by resume (an existing one).
pub struct HistoryJournal {
    history: History,
    local_id: String,
    row: OnceLock<i64>,
    /// The estimate to record with the new row ([`HistoryJournal::set_estimate`]).
    estimate: std::sync::Mutex<Option<Estimate>>,
    /// The sweep and the point of its plan this request is ([`HistoryJournal::set_sweep`]).
    sweep: OnceLock<(String, i64)>,
}

impl std::fmt::Debug for HistoryJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryJournal").field("local_id", &self.local_id).finish()
    }
}

/// This process, as recorded in the rows it owns: pid and its start time (so a reused pid is
/// not mistaken for the original owner).
pub(super) fn this_process() -> (i64, Option<String>) {
    let pid = std::process::id() as i64;
    (pid, process_start(pid))
}

fn process_start(pid: i64) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime); the command name (field 2) may hold spaces, so count after ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19).map(str::to_string)
}

/// Whether the process that owns a row is still running. Where /proc is missing, a recorded
/// owner is taken as gone (resume is then the user's call).
pub(super) fn owner_alive(pid: i64, start: Option<&str>) -> bool {
    if pid == std::process::id() as i64 {
        return true;
    }
    match (process_start(pid), start) {
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
        // No /proc (macOS, BSD): ask the kernel whether the pid exists at all.
        (None, _) if !std::path::Path::new("/proc/self").exists() => crate::process::pid_exists(pid),
        (None, _) => false,
    }
}

impl HistoryJournal {
    pub(super) fn new(history: History, existing: Option<(i64, String)>) -> HistoryJournal {
        let (local_id, row) = match existing {
            Some((row, local)) => (local, OnceLock::from(row)),
            None => (uuid::Uuid::new_v4().simple().to_string(), OnceLock::new()),
        };
        HistoryJournal { history, local_id, row, estimate: Default::default(), sweep: OnceLock::new() }
    }

    /// The short id people use for this request (known before anything is written).
    pub fn short_id(&self) -> String {
        short_id(&self.local_id)
    }

    pub fn local_id(&self) -> &str {
        &self.local_id
    }

    fn row(&self) -> Result<i64, HistoryError> {
        self.row.get().copied().ok_or_else(|| HistoryError::Invalid("the request was never recorded".into()))
    }

    fn event(&self, tx: &Transaction<'_>, row: i64, kind: &str, detail: Option<&str>) -> Result<(), HistoryError> {
        tx.execute(
            "INSERT INTO events (request, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
            params![row, now_ms(), kind, detail],
        )
        .map_err(|e| self.history.sql_err(e))?;
        Ok(())
    }

    /// Sets the state (unless the row is already final or, for `guarded`, cancel-requested) and
    /// records the event.
    fn transition(
        &self,
        state: JobState,
        kind: &str,
        detail: Option<&str>,
        extra_sql: &str,
        extra: &[&dyn rusqlite::ToSql],
    ) -> Result<(), HistoryError> {
        let row = self.row()?;
        self.history.write(|tx| {
            let mut sql = String::from("UPDATE requests SET state = ?1, updated_at = ?2");
            sql.push_str(extra_sql);
            sql.push_str(" WHERE id = ?3 AND state NOT IN ('completed', 'failed', 'cancelled', 'submit_ambiguous')");
            // Late statuses never undo a cancel request; only its own end does.
            if !matches!(state, JobState::Cancelled | JobState::Failed | JobState::Completed) {
                sql.push_str(" AND state <> 'cancel_requested'");
            }
            let now = now_ms();
            let st = state.as_str();
            // The caller's values bind as ?4, ?5, …
            let mut args: Vec<&dyn rusqlite::ToSql> = vec![&st, &now, &row];
            args.extend_from_slice(extra);
            tx.execute(&sql, args.as_slice()).map_err(|e| self.history.sql_err(e))?;
            self.event(tx, row, kind, detail)
        })
    }

    fn set(
        &self,
        kind: &str,
        detail: Option<&str>,
        sql: &str,
        extra: &[&dyn rusqlite::ToSql],
    ) -> Result<(), HistoryError> {
        let row = self.row()?;
        self.history.write(|tx| {
            let mut args: Vec<&dyn rusqlite::ToSql> = vec![&row];
            args.extend_from_slice(extra);
            tx.execute(sql, args.as_slice()).map_err(|e| self.history.sql_err(e))?;
            self.event(tx, row, kind, detail)
        })
    }

    fn store_media(
        &self,
        role: &str,
        index: usize,
        source: &str,
        bytes: &[u8],
        kind: &str,
    ) -> Result<(), HistoryError> {
        let row = self.row()?;
        let media_dir = self.history.media_dir().to_path_buf();
        let prepared = media::prepare(&media_dir, bytes).map_err(HistoryError::Io)?;
        let sha = prepared.sha256.clone();
        self.history.write(|tx| {
            media::commit(tx, &media_dir, prepared, bytes, now_ms() / 1000).map_err(HistoryError::Io)?;
            tx.execute(
                "INSERT OR REPLACE INTO request_media (request, role, idx, sha256, source) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![row, role, index as i64, sha, source],
            )
            .map_err(|e| self.history.sql_err(e))?;
            self.event(tx, row, kind, Some(&format!("{} sha256 {}", index + 1, &sha[..16])))
        })
    }

    fn record_entry(&self, entry: JournalEntry<'_>) -> Result<(), HistoryError> {
        match entry {
            JournalEntry::Pending { endpoint, input, out_dir } => {
                let input_json =
                    serde_json::to_string(&input.to_draft()).map_err(|e| HistoryError::Invalid(e.to_string()))?;
                let out_dir = std::path::absolute(out_dir).unwrap_or_else(|_| out_dir.to_path_buf());
                let (pid, start) = this_process();
                let now = now_ms();
                let estimate = self.estimate.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let e = estimate.as_ref();
                let row = self.history.write(|tx| {
                    tx.execute(
                        "INSERT INTO requests (local_id, endpoint, state, created_at, updated_at, prompt, seed, num_images,
                            input_json, out_dir, owner_pid, owner_start,
                            estimated_usd, unit_price, price_unit, price_source, cost_note, sweep_id, sweep_idx)
                         VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
                        params![
                            self.local_id,
                            endpoint.id(),
                            now / 1000,
                            now,
                            input.prompt,
                            input.seed().map(|s| s as i64),
                            input.num_images(),
                            input_json,
                            out_dir.display().to_string(),
                            pid,
                            start,
                            e.and_then(|e| e.usd),
                            e.and_then(|e| e.unit_price),
                            e.map(|e| e.unit.clone()),
                            e.map(|e| e.price_source.clone()),
                            e.and_then(|e| e.note.clone()),
                            self.sweep.get().map(|(id, _)| id.clone()),
                            self.sweep.get().map(|(_, idx)| *idx),
                        ],
                    )
                    .map_err(|e| self.history.sql_err(e))?;
                    let row = tx.last_insert_rowid();
                    self.event(tx, row, "pending", None)?;
                    Ok(row)
                })?;
                let _ = self.row.set(row);
                Ok(())
            }
            JournalEntry::InputFile { index, path, bytes } => {
                self.store_media("input", index, &path.display().to_string(), bytes, "input stored")
            }
            JournalEntry::Submitting { sent } => {
                let json = serde_json::to_string(sent).map_err(|e| HistoryError::Invalid(e.to_string()))?;
                self.set(
                    "submitting",
                    None,
                    "UPDATE requests SET sent_json = ?2, submitting_at = ?3 WHERE id = ?1",
                    &[&json, &now_ms()],
                )
            }
            JournalEntry::Submitted { handle } => {
                let row = self.row()?;
                self.history.write(|tx| {
                    tx.execute(
                        "UPDATE requests SET request_id = ?2, response_url = ?3, status_url = ?4, cancel_url = ?5,
                            submitted_at = ?6, updated_at = ?6, state = CASE WHEN state = 'pending' THEN 'queued' ELSE state END
                         WHERE id = ?1",
                        params![row, handle.request_id, handle.response_url, handle.status_url, handle.cancel_url, now_ms()],
                    )
                    .map_err(|e| self.history.sql_err(e))?;
                    self.event(tx, row, "submitted", Some(&handle.request_id))
                })
            }
            JournalEntry::SubmitFailed { error } => {
                let (state, kind, billed) = match error {
                    SubmitError::Ambiguous(_) => (JobState::SubmitAmbiguous, "submit ambiguous", None),
                    // fal did not take it: nothing is billed.
                    SubmitError::Rejected(_) => (JobState::Failed, "submit rejected", Some(0.0)),
                };
                let text = error.to_string();
                self.transition(
                    state,
                    kind,
                    Some(&text),
                    ", error = ?4, finished_at = ?2, owner_pid = NULL, billed_usd = coalesce(?5, billed_usd)",
                    &[&text, &billed],
                )
            }
            JournalEntry::Status(update) => match update {
                StatusUpdate::Queued { position } => {
                    let pos = position.map(|p| p as i64);
                    let detail = position.map(|p| format!("position {p}"));
                    self.transition(JobState::Queued, "queued", detail.as_deref(), ", queue_position = ?4", &[&pos])
                }
                StatusUpdate::InProgress => self.transition(
                    JobState::InProgress,
                    "in progress",
                    None,
                    ", queue_position = NULL, started_at = coalesce(started_at, ?2)",
                    &[],
                ),
                StatusUpdate::Logs(lines) => {
                    let row = self.row()?;
                    self.history.write(|tx| {
                        let mut stmt = tx
                            .prepare_cached(
                                "INSERT INTO logs (request, message, timestamp, level, source) VALUES (?1, ?2, ?3, ?4, ?5)",
                            )
                            .map_err(|e| self.history.sql_err(e))?;
                        for l in lines {
                            stmt.execute(params![row, l.message, l.timestamp, l.level, l.source])
                                .map_err(|e| self.history.sql_err(e))?;
                        }
                        Ok(())
                    })
                }
                StatusUpdate::Note(n) => {
                    self.set("note", Some(n), "UPDATE requests SET updated_at = updated_at WHERE id = ?1", &[])
                }
                StatusUpdate::Completed => self.set(
                    "fal completed",
                    None,
                    "UPDATE requests SET fal_completed_at = ?2, queue_position = NULL WHERE id = ?1",
                    &[&now_ms()],
                ),
            },
            JournalEntry::Result { raw, metrics, billable_units } => {
                let json = raw.to_string();
                let metrics = metrics.map(|m| m.to_string());
                let seed = raw.get("seed").and_then(|s| s.as_u64()).map(|s| s as i64);
                // The bill: fal's units at the unit price the estimate used.
                self.set(
                    "result received",
                    billable_units.map(|u| format!("{} billable units", crate::model::cost::units_text(u))).as_deref(),
                    "UPDATE requests SET result_json = ?2, metrics_json = coalesce(?3, metrics_json),
                        seed = coalesce(?4, seed), fal_completed_at = coalesce(fal_completed_at, ?5),
                        billable_units = coalesce(?6, billable_units),
                        billed_usd = CASE WHEN ?6 IS NULL OR unit_price IS NULL THEN billed_usd
                                          ELSE round(?6 * unit_price, 4) END
                     WHERE id = ?1",
                    &[&json, &metrics, &seed, &now_ms(), &billable_units],
                )
            }
            JournalEntry::Downloading { index } => self.set(
                "downloading",
                Some(&format!("image {}", index + 1)),
                "UPDATE requests SET updated_at = ?2 WHERE id = ?1",
                &[&now_ms()],
            ),
            JournalEntry::Output { index, url, bytes, image: _ } => {
                let source = if url.starts_with("data:") { "data: URI" } else { url };
                self.store_media("output", index, source, bytes, "output stored")
            }
            JournalEntry::Saved { index, path } => {
                let row = self.row()?;
                let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string();
                self.history.write(|tx| {
                    tx.execute(
                        "UPDATE request_media SET saved_path = ?3 WHERE request = ?1 AND role = 'output' AND idx = ?2",
                        params![row, index as i64, shown],
                    )
                    .map_err(|e| self.history.sql_err(e))?;
                    self.event(tx, row, "saved", Some(&shown))
                })
            }
            JournalEntry::Completed { elapsed } => self.transition(
                JobState::Completed,
                "completed",
                Some(&format!("{:.2}s", elapsed.as_secs_f64())),
                ", finished_at = ?2, queue_position = NULL, error = NULL, owner_pid = NULL",
                &[],
            ),
            JournalEntry::Failed { error } => self.transition(
                JobState::Failed,
                "failed",
                Some(error),
                ", error = ?4, finished_at = ?2, owner_pid = NULL",
                &[&error],
            ),
            JournalEntry::Interrupted { error } => self.set(
                "interrupted",
                Some(error),
                "UPDATE requests SET error = ?2, owner_pid = NULL, updated_at = ?3 WHERE id = ?1",
                &[&error, &now_ms()],
            ),
            JournalEntry::CancelRequested { outcome } => {
                let detail = match outcome {
                    Some(CancelOutcome::Requested) => "fal accepted the cancellation",
                    Some(CancelOutcome::AlreadyCompleted) => "fal said it had already completed",
                    Some(CancelOutcome::NotFound) => "fal did not find the request",
                    None => "the cancel call failed",
                };
                let row = self.row()?;
                self.history.write(|tx| {
                    tx.execute(
                        "UPDATE requests SET state = 'cancel_requested', updated_at = ?2 WHERE id = ?1
                         AND state NOT IN ('completed', 'failed', 'cancelled', 'submit_ambiguous')",
                        params![row, now_ms()],
                    )
                    .map_err(|e| self.history.sql_err(e))?;
                    self.event(tx, row, "cancel requested", Some(detail))
                })
            }
            JournalEntry::Cancelled => self.transition(
                JobState::Cancelled,
                "cancelled",
                None,
                ", finished_at = ?2, queue_position = NULL, owner_pid = NULL",
                &[],
            ),
        }
    }

    /// The estimate (and the price it used) to keep with the request: call before the job
    /// starts; it is written with the pending row, and the bill is later priced the same way.
    /// Records the request, when it is recorded, as point `index` of the plan of sweep `id`
    /// (which [`History::record_sweep`] keeps); once.
    pub fn set_sweep(&self, id: &str, index: usize) {
        let _ = self.sweep.set((id.to_string(), index as i64));
    }

    pub fn set_estimate(&self, estimate: Estimate) {
        *self.estimate.lock().unwrap_or_else(|p| p.into_inner()) = Some(estimate);
    }

    /// Records what a request cost when no result said so: `Some(0.0)` when fal certainly did
    /// not bill it (never accepted, a 5xx), `None` with a note when it may have (a 422).
    pub fn record_bill(&self, billed_usd: Option<f64>, note: Option<&str>) -> Result<(), HistoryError> {
        self.set(
            "cost",
            note,
            "UPDATE requests SET billed_usd = coalesce(?2, billed_usd), cost_note = coalesce(?3, cost_note) WHERE id = ?1",
            &[&billed_usd, &note],
        )
    }

    /// Takes over a row left by a dead process (resume).
    pub(super) fn claim(&self) -> Result<(), HistoryError> {
        let (pid, start) = this_process();
        self.set(
            "resumed",
            Some(&format!("by process {pid}")),
            "UPDATE requests SET owner_pid = ?2, owner_start = ?3 WHERE id = ?1",
            &[&pid, &start],
        )
    }
}

impl JobJournal for HistoryJournal {
    fn record(&self, entry: JournalEntry<'_>) -> Result<(), String> {
        self.record_entry(entry).map_err(|e| e.to_string())
    }
}
