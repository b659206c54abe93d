//! One job from validated input to verified files on disk: resolve local images (inline or
//! upload), submit, follow, fetch the result, download and check every image, write it under a
//! name made from the request id. Front ends (CLI, TUI) drive it and listen to its [`JobEvent`]s;
//! it knows nothing about terminals.

mod images;
mod journal;
pub mod metadata;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::fal::{CancelOutcome, FalClient, FalError, FollowMode, RequestHandle, StatusUpdate, SubmitError};
use crate::model::{Endpoint, KontextInput, KontextOutput, LogEntry, ValidInput};

pub use images::{SavedImage, VerifiedImage, verify_image};
pub use journal::{JobJournal, JournalEntry};

/// Local files up to this size go inline as `data:` URIs unless configured otherwise.
pub const DEFAULT_DATA_URI_THRESHOLD: u64 = 256 * 1024;

#[derive(Debug, Clone)]
pub struct JobRequest {
    pub endpoint: Endpoint,
    pub input: ValidInput,
    /// Where the output images are written.
    pub out_dir: PathBuf,
    /// Local files up to this many bytes are sent inline; larger ones are uploaded.
    pub data_uri_threshold: u64,
    pub follow: FollowMode,
    /// Where every step is made durable (`history::History::journal`); `None` keeps nothing.
    pub journal: Option<Arc<dyn JobJournal>>,
}

/// A request fal already has (found in the history after a crash), to be finished: followed,
/// its result fetched and its images downloaded. Nothing is ever submitted again.
#[derive(Debug, Clone)]
pub struct ResumeRequest {
    pub handle: RequestHandle,
    /// The input as it was sent.
    pub sent: KontextInput,
    pub out_dir: PathBuf,
    pub follow: FollowMode,
    /// fal's result when it was already received (then only the images are fetched).
    pub known_result: Option<Value>,
    pub journal: Option<Arc<dyn JobJournal>>,
}

/// What a job is doing, for progress displays.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    Uploading { index: usize, name: String, bytes: u64 },
    Uploaded { index: usize, url: String },
    Submitted { handle: RequestHandle },
    Queued { position: Option<u64> },
    InProgress,
    Logs(Vec<LogEntry>),
    Note(String),
    Completed,
    Downloading { index: usize },
    Saved { index: usize, path: PathBuf },
    CancelRequested { outcome: Option<CancelOutcome> },
}

/// A finished job.
#[derive(Debug, Clone, Serialize)]
pub struct JobOutcome {
    pub handle: RequestHandle,
    /// The input exactly as sent.
    pub sent: KontextInput,
    pub output: KontextOutput,
    /// fal's result as it came, with any fields this client does not model.
    pub raw_result: Value,
    pub files: Vec<SavedImage>,
    pub logs: Vec<LogEntry>,
    pub metrics: Option<Value>,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("input image {} ({name}): {error}", .index + 1)]
    Upload { index: usize, name: String, error: FalError },
    #[error("input image {} ({name}): {message}", .index + 1)]
    Input { index: usize, name: String, message: String },
    #[error("{0}")]
    Submit(SubmitError),
    /// fal answered with an error after accepting the request.
    #[error("{error} [request {}]", .handle.request_id)]
    Fal { handle: Box<RequestHandle>, error: FalError },
    /// An output image was missing, not what it claimed to be, or undecodable.
    #[error("output image {} of request {}: {message}", .index + 1, .handle.request_id)]
    Output { handle: Box<RequestHandle>, index: usize, message: String },
    /// An output image could not be downloaded; the stored result lets a resume try again.
    #[error("output image {} of request {} could not be downloaded: {error}", .index + 1, .handle.request_id)]
    Download { handle: Box<RequestHandle>, index: usize, error: FalError },
    #[error("could not write {}: {error}", .path.display())]
    Write { path: PathBuf, error: std::io::Error },
    /// The history could not record a step that must be durable before the job goes on; nothing
    /// was submitted.
    #[error("the request was not sent because the history could not record it: {0}")]
    Journal(String),
    #[error("cancelled{}", .handle.as_ref().map(|h| format!(" (request {})", h.request_id)).unwrap_or_default())]
    Cancelled { handle: Option<Box<RequestHandle>>, outcome: Option<CancelOutcome> },
}

impl JobError {
    /// The fal error behind this failure, if any.
    pub fn fal_error(&self) -> Option<&FalError> {
        match self {
            JobError::Upload { error, .. } | JobError::Fal { error, .. } | JobError::Download { error, .. } => {
                Some(error)
            }
            JobError::Submit(e) => Some(e.error()),
            _ => None,
        }
    }
}

/// How long to keep following after a cancel was requested, to learn how it ended.
const CANCEL_CONFIRM_WAIT: Duration = Duration::from_secs(10);

/// The runner's side of the journal: entries that must be durable, and entries that are
/// reported as notes when they cannot be written.
pub(crate) struct Recorder<'a> {
    journal: Option<&'a dyn JobJournal>,
    events: &'a UnboundedSender<JobEvent>,
}

impl Recorder<'_> {
    pub(crate) fn emit(&self, e: JobEvent) {
        let _ = self.events.send(e);
    }

    // The same error type as the job's, so `?` carries it; the size is no cost on this path.
    #[allow(clippy::result_large_err)]
    fn must(&self, entry: JournalEntry<'_>) -> Result<(), JobError> {
        match self.journal {
            Some(j) => j.record(entry).map_err(JobError::Journal),
            None => Ok(()),
        }
    }

    pub(crate) fn note(&self, entry: JournalEntry<'_>) {
        if let Some(j) = self.journal
            && let Err(e) = j.record(entry)
        {
            tracing::warn!("history: {e}");
            self.emit(JobEvent::Note(format!("history: {e}")));
        }
    }

    /// Records how a failed job ended, and passes the error on.
    fn fail(&self, e: JobError) -> JobError {
        match &e {
            JobError::Cancelled { .. } => self.note(JournalEntry::Cancelled),
            JobError::Submit(error) => self.note(JournalEntry::SubmitFailed { error }),
            // fal still has the request: a later resume can finish it.
            // A key problem after fal accepted the request is not the request's end either.
            JobError::Fal { error, .. }
                if error.is_retryable() || matches!(error, FalError::Api(a) if matches!(a.status, 401 | 403)) =>
            {
                self.note(JournalEntry::Interrupted { error: &e.to_string() })
            }
            // A destination kontext refused (a redirect to the metadata service, say) is not
            // fal's verdict on the request: fal still has it, and a later resume may reach it.
            JobError::Fal { error: FalError::Refused(_), .. } => {
                self.note(JournalEntry::Interrupted { error: &e.to_string() })
            }
            JobError::Write { .. } | JobError::Download { .. } => {
                self.note(JournalEntry::Interrupted { error: &e.to_string() })
            }
            other => self.note(JournalEntry::Failed { error: &other.to_string() }),
        }
        e
    }
}

/// Runs one job. Events go to `events` (a closed receiver is fine); `cancel` stops it: before the
/// submit nothing is sent, after it fal is asked to cancel. With a journal, the job is recorded
/// as `pending` before anything is sent, and no submit happens unless that record is durable.
pub async fn run_job(
    client: &FalClient,
    job: JobRequest,
    events: UnboundedSender<JobEvent>,
    cancel: CancellationToken,
) -> Result<JobOutcome, JobError> {
    let started = Instant::now();
    let rec = Recorder { journal: job.journal.as_deref(), events: &events };
    rec.must(JournalEntry::Pending { endpoint: &job.endpoint, input: &job.input, out_dir: &job.out_dir })?;

    let image_urls = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(rec.fail(JobError::Cancelled { handle: None, outcome: None })),
        urls = images::resolve_inputs(client, &job.input.images, job.data_uri_threshold, &rec) => {
            urls.map_err(|e| rec.fail(e))?
        }
    };
    let sent = job.input.to_wire(image_urls);

    if cancel.is_cancelled() {
        return Err(rec.fail(JobError::Cancelled { handle: None, outcome: None }));
    }
    if let Err(e) = rec.must(JournalEntry::Submitting { sent: &sent }) {
        return Err(rec.fail(e));
    }
    let handle = client.submit(&job.endpoint, &sent).await.map_err(|e| rec.fail(JobError::Submit(e)))?;
    rec.note(JournalEntry::Submitted { handle: &handle });
    rec.emit(JobEvent::Submitted { handle: handle.clone() });

    finish(client, &rec, handle, sent, &job.out_dir, job.follow, None, cancel, started).await.map_err(|e| rec.fail(e))
}

/// Finishes a request fal already has: follows it (unless its result is known), fetches the
/// result and saves the images, journaling as `run_job` does. Never submits.
pub async fn resume_job(
    client: &FalClient,
    job: ResumeRequest,
    events: UnboundedSender<JobEvent>,
    cancel: CancellationToken,
) -> Result<JobOutcome, JobError> {
    let started = Instant::now();
    let rec = Recorder { journal: job.journal.as_deref(), events: &events };
    rec.emit(JobEvent::Submitted { handle: job.handle.clone() });
    finish(client, &rec, job.handle, job.sent, &job.out_dir, job.follow, job.known_result, cancel, started)
        .await
        .map_err(|e| rec.fail(e))
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    client: &FalClient,
    rec: &Recorder<'_>,
    handle: RequestHandle,
    sent: KontextInput,
    out_dir: &Path,
    follow_mode: FollowMode,
    known_result: Option<Value>,
    cancel: CancellationToken,
    started: Instant,
) -> Result<JobOutcome, JobError> {
    let fal_err = |error: FalError| JobError::Fal { handle: Box::new(handle.clone()), error };
    let (raw_result, logs, metrics) = match known_result {
        Some(raw) => (raw, Vec::new(), None),
        None => {
            let follow = client.follow(&handle, follow_mode, |u| {
                rec.note(JournalEntry::Status(&u));
                rec.emit(status_event(u));
            });
            let final_status = tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    let outcome = client.cancel(&handle).await.ok();
                    rec.note(JournalEntry::CancelRequested { outcome });
                    rec.emit(JobEvent::CancelRequested { outcome });
                    // Wait briefly for fal to confirm, so the caller can say how it ended.
                    let _ = tokio::time::timeout(CANCEL_CONFIRM_WAIT, client.follow(&handle, FollowMode::Poll, |_| {})).await;
                    return Err(JobError::Cancelled { handle: Some(Box::new(handle)), outcome });
                }
                s = follow => s,
            };
            let final_status = final_status.map_err(fal_err)?;
            let raw = client.result(&handle).await.map_err(fal_err)?;
            // Kept before parsing, so even an answer this client cannot read is not lost.
            rec.note(JournalEntry::Result { raw: &raw, metrics: final_status.metrics.as_ref() });
            (raw, final_status.logs.unwrap_or_default(), final_status.metrics)
        }
    };

    let output: KontextOutput = serde_json::from_value(raw_result.clone())
        .map_err(|e| fal_err(FalError::Protocol(format!("the result does not match the endpoint's schema: {e}"))))?;
    if output.images.is_empty() {
        return Err(JobError::Output { handle: Box::new(handle), index: 0, message: "fal returned no images".into() });
    }

    let files = images::save_outputs(client, &handle, &sent, &output, out_dir, rec).await?;
    let elapsed = started.elapsed();
    rec.note(JournalEntry::Completed { elapsed });

    Ok(JobOutcome { handle, sent, output, raw_result, files, logs, metrics, elapsed })
}

fn status_event(u: StatusUpdate) -> JobEvent {
    match u {
        StatusUpdate::Queued { position } => JobEvent::Queued { position },
        StatusUpdate::InProgress => JobEvent::InProgress,
        StatusUpdate::Logs(l) => JobEvent::Logs(l),
        StatusUpdate::Note(n) => JobEvent::Note(n),
        StatusUpdate::Completed => JobEvent::Completed,
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so no
/// half-written file ever carries the final name.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // Temporary files are private (0600); a finished image is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
