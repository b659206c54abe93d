//! The content-addressed media store: `<data dir>/media/<first 2 hex>/<sha256>.<ext>`. A file is
//! written once to `media/.tmp/`, synced, and renamed into place only while the database's write
//! lock is held, in the same transaction that records it — so a row never points at a missing or
//! half-written file, and `rm` (which deletes under the same lock) cannot race a writer.

use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, Transaction, params};
use sha2::{Digest, Sha256};

/// A file ready to be moved into the store.
pub(super) struct Prepared {
    pub sha256: String,
    pub rel_path: String,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    pub content_type: String,
    tmp: Option<tempfile::NamedTempFile>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn extension(format: image::ImageFormat) -> &'static str {
    match format {
        image::ImageFormat::Jpeg => "jpg",
        image::ImageFormat::Png => "png",
        image::ImageFormat::WebP => "webp",
        image::ImageFormat::Gif => "gif",
        _ => "img",
    }
}

/// Hashes and measures `bytes` and writes them to a temporary file unless the store already has
/// them. Done before the transaction, so the lock is held only for the rename.
pub(super) fn prepare(media_dir: &Path, bytes: &[u8]) -> Result<Prepared, String> {
    let format = image::guess_format(bytes).map_err(|_| "not a recognised image".to_string())?;
    let (width, height) = image::ImageReader::with_format(std::io::Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| format!("cannot read the image's size: {e}"))?;
    let sha256 = sha256_hex(bytes);
    let rel_path = format!("{}/{sha256}.{}", &sha256[..2], extension(format));
    let final_path = media_dir.join(&rel_path);
    let tmp = if final_path.metadata().is_ok_and(|m| m.len() == bytes.len() as u64) {
        None
    } else {
        Some(prepare_tmp(media_dir, bytes)?)
    };
    Ok(Prepared {
        sha256,
        rel_path,
        bytes: bytes.len() as u64,
        width,
        height,
        content_type: format.to_mime_type().to_string(),
        tmp,
    })
}

fn prepare_tmp(media_dir: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile, String> {
    let tmp_dir = media_dir.join(".tmp");
    std::fs::create_dir_all(&tmp_dir).map_err(|e| format!("cannot create {}: {e}", tmp_dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir).map_err(|e| format!("cannot write media: {e}"))?;
    tmp.write_all(bytes).and_then(|_| tmp.as_file().sync_all()).map_err(|e| format!("cannot write media: {e}"))?;
    Ok(tmp)
}

/// Moves a prepared file into place (if the store lacks it) and records it; inside `tx`.
pub(super) fn commit(tx: &Transaction<'_>, media_dir: &Path, p: Prepared, data: &[u8], now: i64) -> Result<(), String> {
    let final_path = media_dir.join(&p.rel_path);
    let present = final_path.metadata().is_ok_and(|m| m.len() == p.bytes);
    if !present {
        let tmp = match p.tmp {
            Some(t) => t,
            // It vanished since `prepare` (an `rm` in another process): write it again.
            None => prepare_tmp(media_dir, data)?,
        };
        if let Some(dir) = final_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644));
        }
        tmp.persist(&final_path).map_err(|e| format!("cannot store {}: {}", final_path.display(), e.error))?;
    }
    tx.execute(
        "INSERT OR IGNORE INTO media (sha256, path, bytes, width, height, content_type, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![p.sha256, p.rel_path, p.bytes as i64, p.width, p.height, p.content_type, now],
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// Removes media no request refers to any more (rows and files); inside `tx`.
pub(super) fn remove_unreferenced(tx: &Transaction<'_>, media_dir: &Path, shas: &[String]) -> rusqlite::Result<()> {
    for sha in shas {
        let used: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM request_media WHERE sha256 = ?1)", [sha], |r| r.get(0))?;
        if used {
            continue;
        }
        let path: Option<String> =
            tx.query_row("SELECT path FROM media WHERE sha256 = ?1", [sha], |r| r.get(0)).optional()?;
        tx.execute("DELETE FROM media WHERE sha256 = ?1", [sha])?;
        if let Some(p) = path {
            let full: PathBuf = media_dir.join(p);
            if let Err(e) = std::fs::remove_file(&full)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!("could not remove {}: {e}", full.display());
            }
        }
    }
    Ok(())
}
