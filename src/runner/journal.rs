//! The hook through which a job's progress is made durable. The runner calls it at every step —
//! before anything is sent, the moment fal answers, on every status change and log line, with the
//! result and every verified image — and knows nothing of how it is stored (`history` implements
//! it with SQLite). Entries that must be durable before the job may go on (the pending row, the
//! input as it will be sent) stop the job when they cannot be written; the others are reported
//! as notes and the job continues (fal already has the request, and the result is worth more than
//! a missing log line).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::images::VerifiedImage;
use crate::fal::{CancelOutcome, RequestHandle, StatusUpdate, SubmitError};
use crate::model::{Endpoint, KontextInput, ValidInput};

/// One step of a job, in the order the runner reaches them.
#[derive(Debug)]
pub enum JournalEntry<'a> {
    /// The job starts: nothing has been sent yet. Must be durable before the job goes on.
    Pending { endpoint: &'a Endpoint, input: &'a ValidInput, out_dir: &'a Path },
    /// A local input file, read for upload or inlining.
    InputFile { index: usize, path: &'a Path, bytes: &'a [u8] },
    /// The exact input about to be submitted. Must be durable before the submit is sent.
    Submitting { sent: &'a KontextInput },
    /// fal accepted the request: its id and URLs.
    Submitted { handle: &'a RequestHandle },
    /// The submit failed, certainly (`Rejected`) or possibly (`Ambiguous`) without being accepted.
    SubmitFailed { error: &'a SubmitError },
    /// A status change or new log lines as they arrive.
    Status(&'a StatusUpdate),
    /// fal's result as it came (kept before it is parsed), with the final status's metrics and
    /// what fal bills for it (`x-fal-billable-units`, when the answer said).
    Result { raw: &'a Value, metrics: Option<&'a Value>, billable_units: Option<f64> },
    /// Output image `index` is being downloaded.
    Downloading { index: usize },
    /// Output image `index`, downloaded and verified: the bytes exactly as fal served them.
    Output { index: usize, url: &'a str, bytes: &'a [u8], image: &'a VerifiedImage },
    /// Output image `index` was written to the user's folder.
    Saved { index: usize, path: &'a Path },
    /// Every output is stored and saved.
    Completed { elapsed: Duration },
    /// The job failed after the pending row was written (fal's error, or a local one).
    Failed { error: &'a str },
    /// The job stopped following a request fal still has (the network failed, the disk was
    /// full): not an end. It can be resumed later.
    Interrupted { error: &'a str },
    /// fal was asked to cancel (the outcome is `None` when the cancel call itself failed).
    CancelRequested { outcome: Option<CancelOutcome> },
    /// The job ended cancelled.
    Cancelled,
}

/// [`JournalEntry::what`] of `Submitted`: without it a resume cannot find the request again.
pub const REQUEST_ID_STEP: &str = "fal's request id";

impl JournalEntry<'_> {
    /// What the entry records, in words for a message ("the request id", "image 2").
    pub fn what(&self) -> String {
        match self {
            JournalEntry::Pending { .. } => "the new request".into(),
            JournalEntry::InputFile { index, .. } => format!("input image {}", index + 1),
            JournalEntry::Submitting { .. } => "the input as sent".into(),
            JournalEntry::Submitted { .. } => REQUEST_ID_STEP.into(),
            JournalEntry::SubmitFailed { .. } => "the failed submit".into(),
            JournalEntry::Status(_) => "a status update".into(),
            JournalEntry::Result { .. } => "fal's result".into(),
            JournalEntry::Downloading { index } => format!("the download of image {}", index + 1),
            JournalEntry::Output { index, .. } => format!("image {}", index + 1),
            JournalEntry::Saved { index, .. } => format!("where image {} was saved", index + 1),
            JournalEntry::Completed { .. } => "that the request completed".into(),
            JournalEntry::Failed { .. } => "that the request failed".into(),
            JournalEntry::Interrupted { .. } => "that the request was interrupted".into(),
            JournalEntry::CancelRequested { .. } => "the cancel request".into(),
            JournalEntry::Cancelled => "that the request was cancelled".into(),
        }
    }

    /// Whether losing this entry leaves the history wrong about what the user has or paid for
    /// (the request id, the result, an image, how it ended), rather than only missing progress.
    pub fn is_essential(&self) -> bool {
        !matches!(self, JournalEntry::Status(_) | JournalEntry::Downloading { .. } | JournalEntry::InputFile { .. })
    }
}

/// Where a job's journal goes. Implementations must be cheap to call from async code (a small
/// local write), and must never store the fal key (it is never passed to them).
pub trait JobJournal: Send + Sync + std::fmt::Debug {
    fn record(&self, entry: JournalEntry<'_>) -> Result<(), String>;
}
