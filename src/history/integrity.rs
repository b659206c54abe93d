//! Is the store file safe to open? Checked before any connection is made, so a damaged or
//! emptied history is refused rather than written over (and `kontext doctor`'s deeper check).

use std::path::Path;

use rusqlite::Connection;

use super::{DB_FILE, HistoryError, MEDIA_DIR};

/// SQLite's word for a file that is not (or no longer) a readable database.
pub(super) fn is_damage(error: &rusqlite::Error) -> bool {
    matches!(error.sqlite_error_code(), Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt))
}

/// The 16 bytes every SQLite database file starts with.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Checks, without opening it, that the store file in `data_dir` can be opened without losing
/// anything: absent or empty in a data directory with no stored media (a new history), or a
/// file that starts as a SQLite database. A store that is missing or empty while `media/` holds
/// files — the history was emptied, not new — and a file that is not a database are refused,
/// so a fresh store is never written over them. (`kontext doctor` uses this too.)
pub fn check_store_file(data_dir: &Path) -> Result<(), HistoryError> {
    use std::io::Read;
    let path = data_dir.join(DB_FILE);
    let damaged = |problem: String| HistoryError::Damaged { path: path.clone(), problem };
    let len = match std::fs::metadata(&path) {
        Ok(m) if !m.is_file() => return Err(damaged("is not a regular file".into())),
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(HistoryError::Io(format!("cannot look at {}: {e}", path.display()))),
    };
    if len == 0 {
        let media = stored_media_count(&data_dir.join(MEDIA_DIR));
        if media > 0 {
            let what = if path.exists() { "is empty" } else { "is missing" };
            return Err(damaged(format!(
                "{what}, but {} holds {media} stored file{} of an earlier history",
                data_dir.join(MEDIA_DIR).display(),
                if media == 1 { "" } else { "s" }
            )));
        }
        return Ok(());
    }
    let mut head = [0u8; 16];
    let read = std::fs::File::open(&path).and_then(|mut f| f.read_exact(&mut head));
    match read {
        Ok(()) if &head == SQLITE_MAGIC => Ok(()),
        Ok(()) => Err(damaged("is not a SQLite database (its first bytes are not SQLite's)".into())),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(damaged(format!("is cut short ({len} bytes; not even a SQLite header)")))
        }
        Err(e) => Err(HistoryError::Io(format!("cannot read {}: {e}", path.display()))),
    }
}

/// [`check_store_file`], then SQLite's own `quick_check` of every page, on a read-only
/// connection (nothing is written). Slower than opening the store, so only `kontext doctor` and
/// the like run it.
pub fn check_store_integrity(data_dir: &Path) -> Result<(), HistoryError> {
    check_store_file(data_dir)?;
    let path = data_dir.join(DB_FILE);
    if std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) == 0 {
        return Ok(());
    }
    let damaged = |problem: String| HistoryError::Damaged { path: path.clone(), problem };
    let conn = Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| damaged(format!("cannot be opened ({e})")))?;
    let verdict: Result<String, _> = conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0));
    match verdict {
        Ok(v) if v == "ok" => Ok(()),
        Ok(v) => Err(damaged(format!("is damaged (SQLite's check says: {})", crate::sanitize::one_line(&v)))),
        Err(e) if is_damage(&e) => Err(damaged(format!("is damaged ({e})"))),
        Err(e) => Err(HistoryError::Sqlite { path: path.clone(), error: e }),
    }
}

/// How many files are in the media store (its `<aa>/` folders; temporary files not counted).
/// Stops counting at a few, which is all the caller needs to know.
fn stored_media_count(media_dir: &Path) -> usize {
    let Ok(dirs) = std::fs::read_dir(media_dir) else { return 0 };
    let mut n = 0;
    for d in dirs.flatten() {
        if d.file_name() == ".tmp" || !d.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        n += std::fs::read_dir(d.path()).map(|files| files.flatten().take(100).count()).unwrap_or(0);
        if n >= 100 {
            break;
        }
    }
    n
}
