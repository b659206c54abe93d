//! A small JSON record per request (input as sent, ids and URLs, result as received), kept in the
//! data directory so a paid result is never lost even when the output folder is not written.
//! The fal key is never part of it.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;
use serde_json::Value;

use crate::fal::RequestHandle;
use crate::model::{Endpoint, KontextInput};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStage {
    Submitted,
    Completed,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobRecord {
    pub endpoint: String,
    pub handle: RequestHandle,
    pub input: KontextInput,
    /// Seconds since the Unix epoch.
    pub submitted_at: u64,
    pub stage: RecordStage,
    pub error: Option<String>,
    pub result: Option<Value>,
    pub files: Vec<PathBuf>,
}

impl JobRecord {
    pub fn new(endpoint: &Endpoint, handle: &RequestHandle, input: &KontextInput, at: SystemTime) -> JobRecord {
        JobRecord {
            endpoint: endpoint.id().to_string(),
            handle: handle.clone(),
            input: input.clone(),
            submitted_at: at.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            stage: RecordStage::Submitted,
            error: None,
            result: None,
            files: Vec::new(),
        }
    }

    /// Best effort: a record that cannot be written is logged, never fatal to the job.
    pub fn save(&self, dir: Option<&Path>) {
        let Some(dir) = dir else { return };
        let name: String =
            self.handle.request_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(64).collect();
        let path = dir.join(format!("{name}.json"));
        let result = serde_json::to_vec_pretty(self)
            .map_err(std::io::Error::other)
            .and_then(|bytes| super::write_atomically(&path, &bytes));
        if let Err(e) = result {
            tracing::warn!("could not write the request record {}: {e}", path.display());
        }
    }
}
