//! One job from validated input to verified files on disk: resolve local images (inline or
//! upload), submit, follow, fetch the result, download and check every image, write it under a
//! name made from the request id. Front ends (CLI, TUI) drive it and listen to its [`JobEvent`]s;
//! it knows nothing about terminals.

mod images;
mod record;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::fal::{CancelOutcome, FalClient, FalError, FollowMode, RequestHandle, StatusUpdate, SubmitError};
use crate::model::{Endpoint, KontextInput, KontextOutput, LogEntry, ValidInput};

pub use images::{SavedImage, VerifiedImage, verify_image};
pub use record::{JobRecord, RecordStage};

/// Local files up to this size go inline as `data:` URIs unless configured otherwise.
pub const DEFAULT_DATA_URI_THRESHOLD: u64 = 256 * 1024;

#[derive(Debug, Clone)]
pub struct JobRequest {
    pub endpoint: Endpoint,
    pub input: ValidInput,
    /// Where the output images are written.
    pub out_dir: PathBuf,
    /// Where the job's record (input, ids, result) is kept; `None` keeps none.
    pub record_dir: Option<PathBuf>,
    /// Local files up to this many bytes are sent inline; larger ones are uploaded.
    pub data_uri_threshold: u64,
    pub follow: FollowMode,
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
    #[error("could not write {}: {error}", .path.display())]
    Write { path: PathBuf, error: std::io::Error },
    #[error("cancelled{}", .handle.as_ref().map(|h| format!(" (request {})", h.request_id)).unwrap_or_default())]
    Cancelled { handle: Option<Box<RequestHandle>>, outcome: Option<CancelOutcome> },
}

impl JobError {
    /// The fal error behind this failure, if any.
    pub fn fal_error(&self) -> Option<&FalError> {
        match self {
            JobError::Upload { error, .. } | JobError::Fal { error, .. } => Some(error),
            JobError::Submit(e) => Some(e.error()),
            _ => None,
        }
    }
}

/// How long to keep following after a cancel was requested, to learn how it ended.
const CANCEL_CONFIRM_WAIT: Duration = Duration::from_secs(10);

/// Runs one job. Events go to `events` (a closed receiver is fine); `cancel` stops it: before the
/// submit nothing is sent, after it fal is asked to cancel.
pub async fn run_job(
    client: &FalClient,
    job: JobRequest,
    events: UnboundedSender<JobEvent>,
    cancel: CancellationToken,
) -> Result<JobOutcome, JobError> {
    let started = std::time::Instant::now();
    let emit = |e: JobEvent| {
        let _ = events.send(e);
    };

    let image_urls = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(JobError::Cancelled { handle: None, outcome: None }),
        urls = images::resolve_inputs(client, &job.input.images, job.data_uri_threshold, &emit) => urls?,
    };
    let sent = job.input.to_wire(image_urls);

    if cancel.is_cancelled() {
        return Err(JobError::Cancelled { handle: None, outcome: None });
    }
    let handle = client.submit(&job.endpoint, &sent).await.map_err(JobError::Submit)?;
    emit(JobEvent::Submitted { handle: handle.clone() });
    let mut record = JobRecord::new(&job.endpoint, &handle, &sent, SystemTime::now());
    record.save(job.record_dir.as_deref());

    let fal_err = |error: FalError| JobError::Fal { handle: Box::new(handle.clone()), error };
    let follow = client.follow(&handle, job.follow, |u| emit(status_event(u)));
    let final_status = tokio::select! {
        biased;
        _ = cancel.cancelled() => {
            let outcome = client.cancel(&handle).await.ok();
            emit(JobEvent::CancelRequested { outcome });
            // Wait briefly for fal to confirm, so the caller can say how it ended.
            let _ = tokio::time::timeout(CANCEL_CONFIRM_WAIT, client.follow(&handle, FollowMode::Poll, |_| {})).await;
            record.stage = RecordStage::Cancelled;
            record.save(job.record_dir.as_deref());
            return Err(JobError::Cancelled { handle: Some(Box::new(handle)), outcome });
        }
        s = follow => s,
    };
    let final_status = match final_status {
        Ok(s) => s,
        Err(e) => {
            record.stage = RecordStage::Failed;
            record.error = Some(e.to_string());
            record.save(job.record_dir.as_deref());
            return Err(fal_err(e));
        }
    };

    let raw_result = match client.result(&handle).await {
        Ok(v) => v,
        Err(e) => {
            record.stage = RecordStage::Failed;
            record.error = Some(e.to_string());
            record.save(job.record_dir.as_deref());
            return Err(fal_err(e));
        }
    };
    // Kept before parsing, so even an answer this client cannot read is not lost.
    record.stage = RecordStage::Completed;
    record.result = Some(raw_result.clone());
    record.save(job.record_dir.as_deref());

    let output: KontextOutput = serde_json::from_value(raw_result.clone())
        .map_err(|e| fal_err(FalError::Protocol(format!("the result does not match the endpoint's schema: {e}"))))?;
    if output.images.is_empty() {
        return Err(JobError::Output { handle: Box::new(handle), index: 0, message: "fal returned no images".into() });
    }

    let files = images::save_outputs(client, &handle, &output, &job.out_dir, &emit).await?;
    record.files = files.iter().map(|f| f.path.clone()).collect();
    record.save(job.record_dir.as_deref());

    Ok(JobOutcome {
        handle,
        sent,
        output,
        raw_result,
        files,
        logs: final_status.logs.unwrap_or_default(),
        metrics: final_status.metrics,
        elapsed: started.elapsed(),
    })
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
