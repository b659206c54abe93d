//! Reading a local file someone named (a config file, an image to inspect or send) without
//! trusting it: only a regular file (not a FIFO, a device such as /dev/zero, or a folder), its
//! size checked before reading and the read itself capped, so a file that grows meanwhile (or
//! lies about its size) cannot make kontext read without end.

use std::io::Read;
use std::path::Path;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("it is not a regular file ({0}); give a regular file")]
    NotAFile(&'static str),
    #[error("it is {} bytes; at most {cap} are read", .len.map(|l| l.to_string()).unwrap_or_else(|| "more than that".into()))]
    TooLarge { len: Option<u64>, cap: u64 },
}

impl ReadError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// What kind of thing a non-regular path is, in words.
fn kind_of(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a pipe"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// The size of `path` if it is a regular file (symlinks followed) of at most `cap` bytes.
pub fn regular_file_len(path: &Path, cap: u64) -> Result<u64, ReadError> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile(kind_of(meta.file_type())));
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge { len: Some(meta.len()), cap });
    }
    Ok(meta.len())
}

/// Reads a regular file of at most `cap` bytes: refused before reading when it is not a regular
/// file or is larger, and stopped when it turns out larger while being read.
pub fn read_bounded(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    // Looked at before opening: opening a pipe for reading would wait for a writer.
    regular_file_len(path, cap)?;
    let file = std::fs::File::open(path)?;
    // The type and size of what was opened, not of what the name pointed at a moment ago.
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile(kind_of(meta.file_type())));
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge { len: Some(meta.len()), cap });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge { len: None, cap });
    }
    Ok(bytes)
}

/// [`read_bounded`] as UTF-8 text.
pub fn read_bounded_text(path: &Path, cap: u64) -> Result<String, ReadError> {
    let bytes = read_bounded(path, cap)?;
    String::from_utf8(bytes)
        .map_err(|_| ReadError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, "it is not UTF-8 text")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_folders_and_pipes_are_refused_before_reading() {
        for p in ["/dev/zero", "/dev/urandom", "/"] {
            let e = read_bounded(Path::new(p), 1 << 20).unwrap_err();
            assert!(matches!(e, ReadError::NotAFile(_)), "{p}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Opening a FIFO for reading blocks until a writer comes: the type is checked first.
        let e = read_bounded(&fifo, 10).unwrap_err();
        assert!(e.to_string().contains("a pipe"), "{e}");
    }

    #[test]
    fn a_file_over_the_cap_is_refused_by_its_size_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("sparse");
        // Sparse: costs no disk, and would take a while to read.
        std::fs::File::create(&big).unwrap().set_len(4 << 30).unwrap();
        let started = std::time::Instant::now();
        let e = read_bounded(&big, 1 << 20).unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { len: Some(n), .. } if n == 4 << 30), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "not read");
        let small = dir.path().join("small");
        std::fs::write(&small, b"hello").unwrap();
        assert_eq!(read_bounded(&small, 5).unwrap(), b"hello");
        assert!(read_bounded(&small, 4).is_err());
    }
}
