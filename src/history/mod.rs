//! Durable history: every request, from before it is sent to its last image, in a SQLite store
//! in the data directory (`history.sqlite3`, WAL, shared by any number of processes), with its
//! inputs and outputs in a content-addressed media store beside it. See docs/HISTORY.md.
//!
//! - [`History`] reads (list, search, detail), deletes, and hands out journals.
//! - [`HistoryJournal`] is the runner's [`crate::runner::JobJournal`]: one per job.
//! - [`resume_all`] finishes what a crashed process left running; never resubmits.

mod integrity;
mod job_state;
mod journal;
mod ledger;
mod media;
mod resume;
pub mod schema;
mod sweeps;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params_from_iter};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{Catalog, Draft, ImageSource, KontextInput, LogEntry, ValidInput};

use integrity::is_damage;
pub use integrity::{check_store_file, check_store_integrity};
pub use job_state::JobState;
pub use journal::HistoryJournal;
pub use ledger::{SpendBy, SpendReport, SpendRow};
pub use media::sha256_hex;
pub use resume::{ResumeOutcome, ResumeReport, resume_all};
pub use sweeps::{PointProgress, SweepPoint, SweepRecord, SweepRequest};

/// The database file in the data directory.
pub const DB_FILE: &str = "history.sqlite3";
/// The media store folder in the data directory.
pub const MEDIA_DIR: &str = "media";
/// How many characters of the local id make the short id shown to people.
pub const SHORT_ID_LEN: usize = 10;
/// The shortest prefix `get` accepts.
pub const MIN_PREFIX_LEN: usize = 4;
/// How long a write waits for another process holding the lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history database {path}: {error}")]
    Sqlite { path: PathBuf, error: rusqlite::Error },
    #[error("{0}")]
    Migration(#[from] schema::MigrationError),
    #[error("history: {0}")]
    Io(String),
    #[error("no request in the history matches {0:?} (see `kontext history list`)")]
    NotFound(String),
    #[error("{prefix:?} matches several requests ({}); give more characters", .candidates.join(", "))]
    Ambiguous { prefix: String, candidates: Vec<String> },
    #[error("{0}")]
    Invalid(String),
    #[error("history: a stored record is unreadable: {0}")]
    Corrupt(String),
    /// The store file is there but is not a usable history (empty next to stored media, not a
    /// SQLite database, damaged). It is never opened for writing, so it is never overwritten.
    #[error(
        "the history database {shown} {problem}. kontext will not touch it. Move it aside (e.g. `mv {shown} {shown}.broken`) and restore a backup if you have one, or give another --data-dir to start a new history",
        shown = .path.display()
    )]
    Damaged { path: PathBuf, problem: String },
}

/// Position in a newest-first listing; pass the last entry's cursor as `before` for the next page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cursor(pub i64);

/// A listing: newest first, filtered, one page at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Words of the prompt (all must occur; the last may be the start of a word).
    pub search: Option<String>,
    pub state: Option<JobState>,
    pub endpoint: Option<String>,
    pub seed: Option<u64>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
    /// Only the requests of this sweep.
    pub sweep: Option<String>,
    /// Only starred requests.
    pub starred: bool,
    pub limit: usize,
    pub before: Option<Cursor>,
}

impl Default for HistoryQuery {
    fn default() -> Self {
        HistoryQuery {
            search: None,
            state: None,
            endpoint: None,
            seed: None,
            since: None,
            until: None,
            sweep: None,
            starred: false,
            limit: 50,
            before: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// Short and stable (the start of the local id, fixed when the request is recorded).
    pub id: String,
    /// The full local id.
    pub local_id: String,
    /// fal's request id, once fal accepted the request.
    pub request_id: Option<String>,
    pub endpoint: String,
    pub state: JobState,
    /// Unix seconds.
    pub created_at: i64,
    pub prompt: String,
    /// The seed used (fal's answer once known, else the one asked for).
    pub seed: Option<u64>,
    pub num_outputs: usize,
    pub queue_position: Option<u64>,
    pub error: Option<String>,
    /// The estimate before it was sent, and the bill (NULL: not known, e.g. older records).
    pub estimated_usd: Option<f64>,
    pub billed_usd: Option<f64>,
    /// The sweep it is part of (`kontext sweep`), if any.
    pub sweep_id: Option<String>,
    pub starred: bool,
    pub cursor: Cursor,
}

/// A file in the media store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredMedia {
    /// Absolute, inside the media store.
    pub path: PathBuf,
    pub sha256: String,
    pub width: u32,
    pub height: u32,
    pub content_type: String,
    pub index: usize,
    /// The original URL (outputs) or path (inputs).
    pub source: Option<String>,
    /// Where the output was written for the user (with the parameters embedded).
    pub saved_path: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryDetail {
    pub entry: HistoryEntry,
    #[serde(serialize_with = "ser_input")]
    pub input: ValidInput,
    /// The input exactly as sent (image URLs after upload).
    pub sent: Option<KontextInput>,
    pub result: Option<Value>,
    pub metrics: Option<Value>,
    pub logs: Vec<LogEntry>,
    pub error: Option<String>,
    pub outputs: Vec<StoredMedia>,
    pub inputs: Vec<StoredMedia>,
    /// (unix milliseconds, what happened), oldest first.
    pub events: Vec<(i64, String)>,
    pub out_dir: Option<PathBuf>,
    pub response_url: Option<String>,
    pub status_url: Option<String>,
    pub cancel_url: Option<String>,
}

fn ser_input<S: serde::Serializer>(input: &ValidInput, s: S) -> Result<S::Ok, S::Error> {
    input.to_draft().serialize(s)
}

impl HistoryDetail {
    /// The request as a draft, for a re-run or the editor. A local input whose file is gone is
    /// replaced by its copy in the media store.
    pub fn to_draft(&self) -> Draft {
        let mut draft = self.input.to_draft();
        for (i, source) in self.input.images.iter().enumerate() {
            if let ImageSource::Local(p) = source
                && !p.exists()
                && let Some(m) = self.inputs.iter().find(|m| m.index == i)
            {
                draft.images[i] = m.path.display().to_string();
            }
        }
        draft
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The history store. Clone freely: clones share one connection (SQLite serialises writers
/// across processes anyway; reads are fast enough to share it).
#[derive(Clone)]
pub struct History {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    db_path: PathBuf,
    media_dir: PathBuf,
    /// The endpoints' schemas a stored input is read back with (loaded on first use).
    catalog: std::sync::OnceLock<Catalog>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History").field("db", &self.inner.db_path).finish()
    }
}

const ENTRY_COLUMNS: &str = "r.id, r.local_id, r.request_id, r.endpoint, r.state, r.created_at, r.prompt, r.seed,
    (SELECT count(*) FROM request_media m WHERE m.request = r.id AND m.role = 'output'), r.queue_position, r.error,
    r.estimated_usd, r.billed_usd, r.sweep_id, r.starred";

impl History {
    /// Opens (creating and migrating as needed) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<History, HistoryError> {
        Self::open_at_version(data_dir, schema::LATEST)
    }

    /// Opens the store migrated only up to `version` (for migration tests).
    #[doc(hidden)]
    pub fn open_at_version(data_dir: &Path, version: i64) -> Result<History, HistoryError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| HistoryError::Io(format!("cannot create the data directory {}: {e}", data_dir.display())))?;
        let db_path = data_dir.join(DB_FILE);
        check_store_file(data_dir)?;
        // A damaged file that still starts like a database is found by SQLite's first reads.
        let err = |error: rusqlite::Error| {
            if is_damage(&error) {
                HistoryError::Damaged { path: db_path.clone(), problem: format!("is damaged ({error})") }
            } else {
                HistoryError::Sqlite { path: db_path.clone(), error }
            }
        };
        let mut conn = Connection::open(&db_path).map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        // Switching a new database to WAL needs an exclusive lock and SQLite reports "busy" at
        // once, without waiting, when another process is opening it at the same moment.
        let started = std::time::Instant::now();
        let mode: String = loop {
            match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)) {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                        && started.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => break other.map_err(err)?,
            }
        };
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!("history: journal_mode is {mode}, not WAL");
        }
        // FULL: a committed step survives a power cut too, not only a killed process.
        conn.pragma_update(None, "synchronous", "FULL").map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(err)?;
        schema::migrate_to(&mut conn, version).map_err(|e| match e {
            schema::MigrationError::Failed { error, .. } if is_damage(&error) => err(error),
            other => HistoryError::Migration(other),
        })?;
        Ok(History {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                db_path,
                media_dir: data_dir.join(MEDIA_DIR),
                catalog: std::sync::OnceLock::new(),
            }),
        })
    }

    pub fn db_path(&self) -> &Path {
        &self.inner.db_path
    }

    pub fn media_dir(&self) -> &Path {
        &self.inner.media_dir
    }

    /// The endpoints this data directory knows (bundled and added).
    pub fn catalog(&self) -> &Catalog {
        self.inner.catalog.get_or_init(|| {
            let data_dir = self.inner.db_path.parent().unwrap_or(Path::new("."));
            crate::runner::catalog::load_catalog(data_dir).0
        })
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.inner.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn sql_err(&self, error: rusqlite::Error) -> HistoryError {
        HistoryError::Sqlite { path: self.inner.db_path.clone(), error }
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction (the write lock is taken up front, so a
    /// writer never fails half-way on a lock upgrade).
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, HistoryError>,
    ) -> Result<T, HistoryError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| self.sql_err(e))?;
        let v = f(&tx)?;
        tx.commit().map_err(|e| self.sql_err(e))?;
        Ok(v)
    }

    /// A journal for a new job (its row is written when the runner starts the job).
    pub fn journal(&self) -> Arc<HistoryJournal> {
        Arc::new(HistoryJournal::new(self.clone(), None))
    }

    /// Newest first, filtered, one page.
    pub fn list(&self, q: &HistoryQuery) -> Result<Vec<HistoryEntry>, HistoryError> {
        let mut sql = format!("SELECT {ENTRY_COLUMNS} FROM ");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let fts = q.search.as_deref().and_then(fts_query);
        let id_col = if let Some(m) = fts {
            sql.push_str("requests_fts f JOIN requests r ON r.id = f.rowid WHERE requests_fts MATCH ?");
            args.push(m.into());
            "f.rowid"
        } else {
            sql.push_str("requests r WHERE 1");
            "r.id"
        };
        if let Some(s) = q.state {
            sql.push_str(" AND r.state = ?");
            args.push(s.as_str().to_string().into());
        }
        if let Some(e) = &q.endpoint {
            sql.push_str(" AND r.endpoint = ?");
            args.push(e.clone().into());
        }
        if let Some(seed) = q.seed {
            sql.push_str(" AND r.seed = ?");
            args.push((seed as i64).into());
        }
        if let Some(t) = q.since {
            sql.push_str(" AND r.created_at >= ?");
            args.push(t.into());
        }
        if let Some(t) = q.until {
            sql.push_str(" AND r.created_at < ?");
            args.push(t.into());
        }
        if let Some(sweep) = &q.sweep {
            sql.push_str(" AND r.sweep_id = ?");
            args.push(sweep.clone().into());
        }
        if q.starred {
            sql.push_str(" AND r.starred = 1");
        }
        if let Some(Cursor(c)) = q.before {
            sql.push_str(&format!(" AND {id_col} < ?"));
            args.push(c.into());
        }
        sql.push_str(&format!(" ORDER BY {id_col} DESC LIMIT ?"));
        args.push((q.limit.min(i64::MAX as usize) as i64).into());

        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql).map_err(|e| self.sql_err(e))?;
        let rows = stmt.query_map(params_from_iter(args), entry_from_row).map_err(|e| self.sql_err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.sql_err(e))
    }

    pub fn count(&self) -> Result<u64, HistoryError> {
        let conn = self.conn();
        conn.query_row("SELECT count(*) FROM requests", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.sql_err(e))
    }

    /// Distinct prompts, newest first.
    pub fn recent_prompts(&self, limit: usize) -> Result<Vec<String>, HistoryError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT prompt FROM requests ORDER BY id DESC").map_err(|e| self.sql_err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.sql_err(e))?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        // Bounded: a history of one prompt repeated 100,000 times must not be read whole.
        let mut scanned = 0usize;
        while out.len() < limit && scanned < limit.saturating_mul(200).max(1000) {
            let Some(row) = rows.next().map_err(|e| self.sql_err(e))? else { break };
            scanned += 1;
            let p: String = row.get(0).map_err(|e| self.sql_err(e))?;
            if seen.insert(p.clone()) {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// The row id for a short id, a prefix of the local id, or a prefix of fal's request id.
    pub(crate) fn resolve(&self, id_or_prefix: &str) -> Result<i64, HistoryError> {
        let p = id_or_prefix.trim().to_ascii_lowercase();
        if p.len() < MIN_PREFIX_LEN {
            return Err(HistoryError::Invalid(format!(
                "{id_or_prefix:?} is too short to name a request: give at least {MIN_PREFIX_LEN} characters of its id (see `kontext history list`)"
            )));
        }
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, local_id FROM requests WHERE local_id >= ?1 AND local_id < ?1 || '~'
                 UNION SELECT id, local_id FROM requests WHERE request_id >= ?1 AND request_id < ?1 || '~'
                 LIMIT 5",
            )
            .map_err(|e| self.sql_err(e))?;
        let found: Vec<(i64, String)> = stmt
            .query_map([&p], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sql_err(e))?;
        match found.as_slice() {
            [] => Err(HistoryError::NotFound(id_or_prefix.to_string())),
            [(id, _)] => Ok(*id),
            many => Err(HistoryError::Ambiguous {
                prefix: id_or_prefix.to_string(),
                candidates: many.iter().map(|(_, l)| short_id(l)).collect(),
            }),
        }
    }

    pub fn get(&self, id_or_prefix: &str) -> Result<HistoryDetail, HistoryError> {
        let row_id = self.resolve(id_or_prefix)?;
        self.detail(row_id)
    }

    pub(crate) fn detail(&self, row_id: i64) -> Result<HistoryDetail, HistoryError> {
        let conn = self.conn();
        let e = |e| self.sql_err(e);
        let (entry, input_json, sent_json, result_json, metrics_json, out_dir, urls) = conn
            .query_row(
                &format!(
                    "SELECT {ENTRY_COLUMNS}, r.input_json, r.sent_json, r.result_json, r.metrics_json, r.out_dir,
                     r.response_url, r.status_url, r.cancel_url FROM requests r WHERE r.id = ?1"
                ),
                [row_id],
                |r| {
                    Ok((
                        entry_from_row(r)?,
                        r.get::<_, String>(15)?,
                        r.get::<_, Option<String>>(16)?,
                        r.get::<_, Option<String>>(17)?,
                        r.get::<_, Option<String>>(18)?,
                        r.get::<_, Option<String>>(19)?,
                        (
                            r.get::<_, Option<String>>(20)?,
                            r.get::<_, Option<String>>(21)?,
                            r.get::<_, Option<String>>(22)?,
                        ),
                    ))
                },
            )
            .optional()
            .map_err(e)?
            .ok_or_else(|| HistoryError::NotFound(row_id.to_string()))?;
        let draft: Draft = serde_json::from_str(&input_json).map_err(|x| HistoryError::Corrupt(x.to_string()))?;
        // The same validation as before it was sent, against its endpoint's schema (an endpoint
        // no longer described is read with the default's); local files are not looked at.
        let catalog = self.catalog();
        let schema = catalog.get(&entry.endpoint).unwrap_or_else(|| catalog.default_schema());
        let input = draft.validate_for(schema, |_| Ok(())).map_err(|e| {
            HistoryError::Corrupt(format!(
                "the stored input does not fit {}: {}",
                entry.endpoint,
                e.to_string().replace('\n', "; ")
            ))
        })?;
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str::<Value>(&s).ok());
        let sent = sent_json.and_then(|s| serde_json::from_str::<KontextInput>(&s).ok());

        let mut logs_stmt = conn
            .prepare_cached("SELECT message, timestamp, level, source FROM logs WHERE request = ?1 ORDER BY id")
            .map_err(e)?;
        let logs = logs_stmt
            .query_map([row_id], |r| {
                Ok(LogEntry { message: r.get(0)?, timestamp: r.get(1)?, level: r.get(2)?, source: r.get(3)? })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(e)?;
        let mut ev_stmt =
            conn.prepare_cached("SELECT at, kind, detail FROM events WHERE request = ?1 ORDER BY id").map_err(e)?;
        let events = ev_stmt
            .query_map([row_id], |r| {
                let kind: String = r.get(1)?;
                let detail: Option<String> = r.get(2)?;
                Ok((
                    r.get(0)?,
                    match detail {
                        Some(d) if !d.is_empty() => format!("{kind}: {d}"),
                        _ => kind,
                    },
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(e)?;
        let mut media_stmt = conn
            .prepare_cached(
                "SELECT rm.role, rm.idx, rm.sha256, rm.source, rm.saved_path, m.path, m.width, m.height, m.content_type
                 FROM request_media rm JOIN media m ON m.sha256 = rm.sha256 WHERE rm.request = ?1 ORDER BY rm.role, rm.idx",
            )
            .map_err(e)?;
        let media_dir = &self.inner.media_dir;
        let media = media_stmt
            .query_map([row_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    StoredMedia {
                        index: r.get::<_, i64>(1)? as usize,
                        sha256: r.get(2)?,
                        source: r.get(3)?,
                        saved_path: r.get::<_, Option<String>>(4)?.map(PathBuf::from),
                        path: media_dir.join(r.get::<_, String>(5)?),
                        width: r.get(6)?,
                        height: r.get(7)?,
                        content_type: r.get(8)?,
                    },
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(e)?;
        let (mut inputs, mut outputs) = (Vec::new(), Vec::new());
        for (role, m) in media {
            if role == "input" { inputs.push(m) } else { outputs.push(m) }
        }
        Ok(HistoryDetail {
            error: entry.error.clone(),
            entry,
            input,
            sent,
            result: parse(result_json),
            metrics: parse(metrics_json),
            logs,
            outputs,
            inputs,
            events,
            out_dir: out_dir.map(PathBuf::from),
            response_url: urls.0,
            status_url: urls.1,
            cancel_url: urls.2,
        })
    }

    /// Deletes a request and its media, except media another request still uses. A request still
    /// being run by a live process is refused.
    pub fn delete(&self, id: &str) -> Result<(), HistoryError> {
        let row_id = self.resolve(id)?;
        let media_dir = self.inner.media_dir.clone();
        self.write(|tx| {
            let e = |e| self.sql_err(e);
            let (state, pid, start): (String, Option<i64>, Option<String>) = tx
                .query_row("SELECT state, owner_pid, owner_start FROM requests WHERE id = ?1", [row_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(e)?;
            let running = JobState::parse(&state).is_some_and(|s| !s.is_final());
            if running
                && let Some(pid) = pid
                && journal::owner_alive(pid, start.as_deref())
            {
                return Err(HistoryError::Invalid(format!(
                    "request {id} is still running in process {pid}; cancel it there (or wait) before removing it"
                )));
            }
            let mut stmt = tx.prepare("SELECT DISTINCT sha256 FROM request_media WHERE request = ?1").map_err(e)?;
            let shas: Vec<String> =
                stmt.query_map([row_id], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(e)?;
            drop(stmt);
            tx.execute("DELETE FROM requests WHERE id = ?1", [row_id]).map_err(e)?;
            media::remove_unreferenced(tx, &media_dir, &shas).map_err(e)?;
            Ok(())
        })
    }

    /// Every request, oldest first, in pages (for export).
    pub fn for_each(&self, mut f: impl FnMut(HistoryDetail) -> Result<(), HistoryError>) -> Result<(), HistoryError> {
        let mut after = 0i64;
        loop {
            let ids: Vec<i64> = {
                let conn = self.conn();
                let mut stmt = conn
                    .prepare_cached("SELECT id FROM requests WHERE id > ?1 ORDER BY id LIMIT 500")
                    .map_err(|e| self.sql_err(e))?;
                stmt.query_map([after], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(|e| self.sql_err(e))?
            };
            let Some(&last) = ids.last() else { return Ok(()) };
            for id in ids {
                f(self.detail(id)?)?;
            }
            after = last;
        }
    }
}

pub(crate) fn short_id(local_id: &str) -> String {
    local_id.chars().take(SHORT_ID_LEN).collect()
}

fn entry_from_row(r: &Row<'_>) -> rusqlite::Result<HistoryEntry> {
    let local_id: String = r.get(1)?;
    let state: String = r.get(4)?;
    Ok(HistoryEntry {
        id: short_id(&local_id),
        local_id,
        request_id: r.get(2)?,
        endpoint: r.get(3)?,
        state: JobState::parse(&state).unwrap_or(JobState::Failed),
        created_at: r.get(5)?,
        prompt: r.get(6)?,
        seed: r.get::<_, Option<i64>>(7)?.map(|s| s as u64),
        num_outputs: r.get::<_, i64>(8)? as usize,
        queue_position: r.get::<_, Option<i64>>(9)?.map(|p| p as u64),
        error: r.get(10)?,
        estimated_usd: r.get(11)?,
        billed_usd: r.get(12)?,
        sweep_id: r.get(13)?,
        starred: r.get::<_, i64>(14)? != 0,
        cursor: Cursor(r.get(0)?),
    })
}

/// Turns what a person typed into an FTS5 query: every word must occur (quoted, so operators
/// and punctuation are taken literally); the last word may be the start of a word.
pub fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> =
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(|w| format!("\"{w}\"")).collect();
    if words.is_empty() {
        return None;
    }
    let mut q = words.join(" ");
    if !text.ends_with(|c: char| !c.is_alphanumeric()) {
        q.push('*');
    }
    Some(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_becomes_a_safe_fts_query() {
        assert_eq!(fts_query("red fox").as_deref(), Some("\"red\" \"fox\"*"));
        assert_eq!(fts_query("red fox ").as_deref(), Some("\"red\" \"fox\""));
        assert_eq!(fts_query("\"NEAR(a b)\" OR -x").as_deref(), Some("\"NEAR\" \"a\" \"b\" \"OR\" \"x\"*"));
        assert_eq!(fts_query("  !! "), None);
    }
}
