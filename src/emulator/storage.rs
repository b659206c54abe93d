//! In-memory stand-in for fal's CDN: stored files, presigned upload slots and CDN tokens.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

/// Total bytes kept before the oldest files are evicted.
const MAX_TOTAL_BYTES: usize = 512 * 1024 * 1024;
/// Open presigned upload slots kept at most (oldest forgotten first).
const MAX_PENDING: usize = 10_000;
/// CDN token lifetime.
pub(crate) const TOKEN_TTL: Duration = Duration::from_secs(3600);

#[derive(Clone)]
pub(crate) struct StoredFile {
    pub content_type: String,
    pub bytes: Bytes,
}

#[derive(Default)]
pub(crate) struct Store {
    files: HashMap<String, StoredFile>,
    order: VecDeque<String>,
    total: usize,
    /// path → (upload token, content type) for flow A's presigned PUT.
    pending: HashMap<String, (String, String)>,
    pending_order: VecDeque<String>,
    /// CDN bearer token → expiry.
    tokens: HashMap<String, SystemTime>,
}

impl Store {
    /// Stores a file under its URL path (`/files/...`), evicting the oldest beyond the cap.
    pub(crate) fn put(&mut self, path: String, content_type: String, bytes: Bytes) {
        if let Some(old) = self.files.remove(&path) {
            self.total -= old.bytes.len();
            self.order.retain(|p| p != &path);
        }
        self.total += bytes.len();
        self.order.push_back(path.clone());
        self.files.insert(path, StoredFile { content_type, bytes });
        while self.total > MAX_TOTAL_BYTES && self.order.len() > 1 {
            if let Some(oldest) = self.order.pop_front()
                && let Some(f) = self.files.remove(&oldest)
            {
                self.total -= f.bytes.len();
            }
        }
    }

    pub(crate) fn get(&self, path: &str) -> Option<StoredFile> {
        self.files.get(path).cloned()
    }

    pub(crate) fn add_pending(&mut self, path: String, token: String, content_type: String) {
        self.pending_order.push_back(path.clone());
        self.pending.insert(path, (token, content_type));
        while self.pending_order.len() > MAX_PENDING {
            if let Some(p) = self.pending_order.pop_front() {
                self.pending.remove(&p);
            }
        }
    }

    /// The content type announced at initiate time if `token` opens the slot at `path`.
    pub(crate) fn take_pending(&mut self, path: &str, token: &str) -> Option<String> {
        match self.pending.get(path) {
            Some((t, _)) if t == token => {
                let ct = self.pending.remove(path).map(|(_, ct)| ct);
                self.pending_order.retain(|p| p != path);
                ct
            }
            _ => None,
        }
    }

    pub(crate) fn add_token(&mut self, token: String, expires: SystemTime) {
        let now = SystemTime::now();
        self.tokens.retain(|_, exp| *exp > now);
        self.tokens.insert(token, expires);
    }

    pub(crate) fn token_valid(&self, token: &str) -> bool {
        self.tokens.get(token).is_some_and(|exp| *exp > SystemTime::now())
    }
}
