//! The store's schema and its forward migrations, versioned with `PRAGMA user_version`.
//!
//! Each entry of [`MIGRATIONS`] takes the database from version `i` to `i + 1`. They run in one
//! `BEGIN IMMEDIATE` transaction, so several processes opening an old database at once migrate it
//! exactly once (the others wait, then see the new version). A database written by a newer
//! kontext (a version above [`LATEST`]) is refused rather than guessed at.

use rusqlite::{Connection, TransactionBehavior};

/// v1: requests, their events and log lines, content-addressed media and the links to them.
const V1: &str = "
CREATE TABLE requests (
    id              INTEGER PRIMARY KEY,
    local_id        TEXT NOT NULL UNIQUE,
    request_id      TEXT UNIQUE,
    endpoint        TEXT NOT NULL,
    state           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    prompt          TEXT NOT NULL,
    seed            INTEGER,
    num_images      INTEGER NOT NULL,
    input_json      TEXT NOT NULL,
    sent_json       TEXT,
    out_dir         TEXT,
    response_url    TEXT,
    status_url      TEXT,
    cancel_url      TEXT,
    queue_position  INTEGER,
    result_json     TEXT,
    metrics_json    TEXT,
    error           TEXT,
    submitting_at   INTEGER,
    submitted_at    INTEGER,
    started_at      INTEGER,
    fal_completed_at INTEGER,
    finished_at     INTEGER,
    owner_pid       INTEGER,
    owner_start     TEXT
);
CREATE TABLE events (
    id      INTEGER PRIMARY KEY,
    request INTEGER NOT NULL REFERENCES requests(id) ON DELETE CASCADE,
    at      INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    detail  TEXT
);
CREATE INDEX events_request ON events(request);
CREATE TABLE logs (
    id        INTEGER PRIMARY KEY,
    request   INTEGER NOT NULL REFERENCES requests(id) ON DELETE CASCADE,
    message   TEXT NOT NULL,
    timestamp TEXT,
    level     TEXT,
    source    TEXT
);
CREATE INDEX logs_request ON logs(request);
CREATE TABLE media (
    sha256       TEXT PRIMARY KEY,
    path         TEXT NOT NULL,
    bytes        INTEGER NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE TABLE request_media (
    request    INTEGER NOT NULL REFERENCES requests(id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('input', 'output')),
    idx        INTEGER NOT NULL,
    sha256     TEXT NOT NULL REFERENCES media(sha256),
    source     TEXT,
    saved_path TEXT,
    PRIMARY KEY (request, role, idx)
);
CREATE INDEX request_media_sha ON request_media(sha256);
";

/// v2: full-text search over prompts (FTS5, external content, kept by triggers) and the indexes
/// the filters use. Existing rows are indexed by `rebuild`.
const V2: &str = "
CREATE VIRTUAL TABLE requests_fts USING fts5(
    prompt, content = 'requests', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER requests_fts_insert AFTER INSERT ON requests BEGIN
    INSERT INTO requests_fts(rowid, prompt) VALUES (new.id, new.prompt);
END;
CREATE TRIGGER requests_fts_delete AFTER DELETE ON requests BEGIN
    INSERT INTO requests_fts(requests_fts, rowid, prompt) VALUES ('delete', old.id, old.prompt);
END;
CREATE TRIGGER requests_fts_update AFTER UPDATE OF prompt ON requests BEGIN
    INSERT INTO requests_fts(requests_fts, rowid, prompt) VALUES ('delete', old.id, old.prompt);
    INSERT INTO requests_fts(rowid, prompt) VALUES (new.id, new.prompt);
END;
INSERT INTO requests_fts(requests_fts) VALUES ('rebuild');
CREATE INDEX requests_state ON requests(state, id);
CREATE INDEX requests_created ON requests(created_at);
CREATE INDEX requests_endpoint ON requests(endpoint, id);
CREATE INDEX requests_seed ON requests(seed);
";

/// v3: the ledger — each request's estimate before it was sent and its bill after (fal's
/// `x-fal-billable-units` × the unit price), with the price's unit and source. Older rows keep
/// NULLs: their cost is unknown, never guessed. `ledger` sums them per UTC day and endpoint,
/// kept by triggers (a row's share is taken out and put back on every change), so `kontext
/// spend` and the daily budget read a few rows however long the history is.
const V3: &str = "
ALTER TABLE requests ADD COLUMN estimated_usd REAL;
ALTER TABLE requests ADD COLUMN billed_usd REAL;
ALTER TABLE requests ADD COLUMN billable_units REAL;
ALTER TABLE requests ADD COLUMN unit_price REAL;
ALTER TABLE requests ADD COLUMN price_unit TEXT;
ALTER TABLE requests ADD COLUMN price_source TEXT;
ALTER TABLE requests ADD COLUMN cost_note TEXT;
CREATE TABLE ledger (
    day        INTEGER NOT NULL,
    endpoint   TEXT NOT NULL,
    requests   INTEGER NOT NULL DEFAULT 0,
    billed_usd REAL NOT NULL DEFAULT 0,
    unbilled_estimate_usd REAL NOT NULL DEFAULT 0,
    unpriced   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, endpoint)
) WITHOUT ROWID;
CREATE TRIGGER ledger_insert AFTER INSERT ON requests BEGIN
    INSERT OR IGNORE INTO ledger (day, endpoint) VALUES (new.created_at / 86400, new.endpoint);
    UPDATE ledger SET requests = requests + 1,
        billed_usd = billed_usd + coalesce(new.billed_usd, 0),
        unbilled_estimate_usd = unbilled_estimate_usd + CASE WHEN new.billed_usd IS NULL THEN coalesce(new.estimated_usd, 0) ELSE 0 END,
        unpriced = unpriced + (new.billed_usd IS NULL AND new.estimated_usd IS NULL)
    WHERE day = new.created_at / 86400 AND endpoint = new.endpoint;
END;
CREATE TRIGGER ledger_delete AFTER DELETE ON requests BEGIN
    UPDATE ledger SET requests = requests - 1,
        billed_usd = billed_usd - coalesce(old.billed_usd, 0),
        unbilled_estimate_usd = unbilled_estimate_usd - CASE WHEN old.billed_usd IS NULL THEN coalesce(old.estimated_usd, 0) ELSE 0 END,
        unpriced = unpriced - (old.billed_usd IS NULL AND old.estimated_usd IS NULL)
    WHERE day = old.created_at / 86400 AND endpoint = old.endpoint;
    DELETE FROM ledger WHERE day = old.created_at / 86400 AND endpoint = old.endpoint AND requests <= 0;
END;
CREATE TRIGGER ledger_update AFTER UPDATE OF billed_usd, estimated_usd, endpoint, created_at ON requests BEGIN
    UPDATE ledger SET requests = requests - 1,
        billed_usd = billed_usd - coalesce(old.billed_usd, 0),
        unbilled_estimate_usd = unbilled_estimate_usd - CASE WHEN old.billed_usd IS NULL THEN coalesce(old.estimated_usd, 0) ELSE 0 END,
        unpriced = unpriced - (old.billed_usd IS NULL AND old.estimated_usd IS NULL)
    WHERE day = old.created_at / 86400 AND endpoint = old.endpoint;
    INSERT OR IGNORE INTO ledger (day, endpoint) VALUES (new.created_at / 86400, new.endpoint);
    UPDATE ledger SET requests = requests + 1,
        billed_usd = billed_usd + coalesce(new.billed_usd, 0),
        unbilled_estimate_usd = unbilled_estimate_usd + CASE WHEN new.billed_usd IS NULL THEN coalesce(new.estimated_usd, 0) ELSE 0 END,
        unpriced = unpriced + (new.billed_usd IS NULL AND new.estimated_usd IS NULL)
    WHERE day = new.created_at / 86400 AND endpoint = new.endpoint;
    DELETE FROM ledger WHERE requests <= 0 AND day = old.created_at / 86400 AND endpoint = old.endpoint;
END;
INSERT INTO ledger (day, endpoint, requests, billed_usd, unbilled_estimate_usd, unpriced)
    SELECT created_at / 86400, endpoint, count(*), 0, 0, count(*) FROM requests GROUP BY 1, 2;
";

/// v4: sweeps. A sweep's whole plan (each point's axis values, endpoint and draft) is kept
/// before its first submit; each request of it carries `sweep_id` and its point's index, so
/// `kontext sweep --continue` can tell the points never sent. `starred` marks a keeper. Older
/// rows are outside any sweep (NULL) and not starred.
const V4: &str = "
CREATE TABLE sweeps (
    id            TEXT PRIMARY KEY,
    created_at    INTEGER NOT NULL,
    axes_json     TEXT NOT NULL,
    settings_json TEXT NOT NULL
);
CREATE TABLE sweep_points (
    sweep      TEXT NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    axes_json  TEXT NOT NULL,
    endpoint   TEXT NOT NULL,
    draft_json TEXT NOT NULL,
    PRIMARY KEY (sweep, idx)
) WITHOUT ROWID;
ALTER TABLE requests ADD COLUMN sweep_id TEXT;
ALTER TABLE requests ADD COLUMN sweep_idx INTEGER;
ALTER TABLE requests ADD COLUMN starred INTEGER NOT NULL DEFAULT 0;
CREATE INDEX requests_sweep ON requests(sweep_id, sweep_idx);
";

/// `MIGRATIONS[i]` takes version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4];
pub const LATEST: i64 = MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(
        "the history database is at schema version {found}, newer than this kontext knows ({LATEST}); update kontext, or use another --data-dir"
    )]
    TooNew { found: i64 },
    #[error("migrating the history database from version {from} failed: {error}")]
    Failed { from: i64, error: rusqlite::Error },
}

pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings the database to `target` (normally [`LATEST`]); returns the version it started at.
pub fn migrate_to(conn: &mut Connection, target: i64) -> Result<i64, MigrationError> {
    let before = version(conn).map_err(|error| MigrationError::Failed { from: 0, error })?;
    if before > LATEST {
        return Err(MigrationError::TooNew { found: before });
    }
    if before >= target {
        return Ok(before);
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|error| MigrationError::Failed { from: before, error })?;
    // Another process may have migrated while this one waited for the lock.
    let mut current = version(&tx).map_err(|error| MigrationError::Failed { from: before, error })?;
    while current < target {
        let step = MIGRATIONS[current as usize];
        tx.execute_batch(step).map_err(|error| MigrationError::Failed { from: current, error })?;
        current += 1;
        tx.pragma_update(None, "user_version", current)
            .map_err(|error| MigrationError::Failed { from: current, error })?;
    }
    tx.commit().map_err(|error| MigrationError::Failed { from: before, error })?;
    Ok(before)
}
