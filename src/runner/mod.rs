//! One job from validated input to verified files on disk: resolve local images (inline or
//! upload), submit, follow, fetch the result, download and check every image, write it under a
//! name made from the request id. Front ends (CLI, TUI) drive it and listen to its [`JobEvent`]s;
//! it knows nothing about terminals.

pub mod catalog;
pub mod contact_sheet;
mod images;
mod journal;
pub mod metadata;
mod naming;
pub mod sweep_grid;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use crate::fal::{CancelOutcome, FalClient, FalError, FollowMode, RequestHandle, StatusUpdate, SubmitError};
use crate::model::{Endpoint, KontextInput, KontextOutput, LogEntry, ValidInput};

pub use images::{
    SavedImage, VerifiedImage, check_input_file, check_input_image, check_local_image, open_image_bounded,
    read_input_file, verify_image,
};
pub use journal::{JobJournal, JournalEntry, REQUEST_ID_STEP};
pub use naming::OutputNaming;

/// Local files up to this size go inline as `data:` URIs unless configured otherwise.
pub const DEFAULT_DATA_URI_THRESHOLD: u64 = 256 * 1024;

#[derive(Debug, Clone)]
pub struct JobRequest {
    pub endpoint: Endpoint,
    pub input: ValidInput,
    /// Where the output images are written.
    pub out_dir: PathBuf,
    /// What they are called there.
    pub naming: OutputNaming,
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
    pub naming: OutputNaming,
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
    /// What fal bills for the result (`x-fal-billable-units`), when it said.
    pub billable_units: Option<f64>,
    /// Steps the history could not record (a full disk, a failing store), each with its error:
    /// the files are written but the history does not know it. Empty when the history has it
    /// all. Front ends must say so plainly and not claim the request is recorded as completed.
    pub unrecorded: Vec<Unrecorded>,
}

/// A step of a job the history could not record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unrecorded {
    /// What was not recorded ("fal's request id", "image 1", "that the request completed").
    pub what: String,
    pub error: String,
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
    /// What the failed request cost, as far as can be known: a request fal never took, a 5xx or
    /// a failed run costs nothing (`Some(0.0)`); a 422 may have been billed (fal bills GPU time
    /// spent), which is said rather than guessed; otherwise it is unknown (still running, or
    /// cancelled). `kontext run` and the studio record it the same way.
    pub fn bill(&self) -> (Option<f64>, Option<&'static str>) {
        let accepted = !matches!(
            self,
            JobError::Submit(_) | JobError::Input { .. } | JobError::Upload { .. } | JobError::Journal(_)
        ) && !matches!(self, JobError::Cancelled { handle: None, .. });
        // An ambiguous submit may have reached fal: say so rather than record it as free.
        if matches!(self, JobError::Submit(SubmitError::Ambiguous(_))) {
            return (None, Some("the submit may have reached fal: it may have been billed"));
        }
        if !accepted {
            return (Some(0.0), None);
        }
        match self.fal_error() {
            Some(FalError::Validation { .. }) => (None, Some("fal refused the input (422): it may have been billed")),
            Some(FalError::Api(a)) if a.status == 422 => {
                (None, Some("fal refused the input (422): it may have been billed"))
            }
            Some(FalError::Api(a)) if a.status >= 500 => (Some(0.0), Some("a 5xx is never billed")),
            Some(FalError::RunFailed { .. }) => (Some(0.0), Some("the run failed on fal's side: not billed")),
            _ => (None, None),
        }
    }

    /// Whether fal still has the request and a later resume can finish it. Once fal accepted a
    /// request only fal's own verdict ends it (the run failed, 422, no such request) or an
    /// output that is not what it claims; the network, proxies, answers that do not parse and
    /// our own disk leave it resumable.
    pub fn is_resumable(&self) -> bool {
        match self {
            JobError::Fal { error, .. } => !error.is_fal_verdict(),
            JobError::Write { .. } | JobError::Download { .. } => true,
            _ => false,
        }
    }

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
    /// Essential entries that could not be written (see [`JournalEntry::is_essential`]).
    unrecorded: std::sync::Mutex<Vec<Unrecorded>>,
}

impl<'a> Recorder<'a> {
    fn new(journal: Option<&'a dyn JobJournal>, events: &'a UnboundedSender<JobEvent>) -> Self {
        Recorder { journal, events, unrecorded: Default::default() }
    }

    fn unrecorded(&self) -> std::sync::MutexGuard<'_, Vec<Unrecorded>> {
        self.unrecorded.lock().unwrap_or_else(|p| p.into_inner())
    }

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

    /// Records a best-effort entry. A failure is a note, and, for an essential entry, kept for
    /// the outcome ([`JobOutcome::unrecorded`]).
    pub(crate) fn note(&self, entry: JournalEntry<'_>) {
        self.try_note(entry);
    }

    /// [`Recorder::note`], saying whether the entry was written.
    fn try_note(&self, entry: JournalEntry<'_>) -> bool {
        let Some(j) = self.journal else { return true };
        let (what, essential) = (entry.what(), entry.is_essential());
        match j.record(entry) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("history: could not record {what}: {e}");
                self.emit(JobEvent::Note(format!("history: could not record {what}: {e}")));
                if essential {
                    self.unrecorded().push(Unrecorded { what, error: e });
                }
                false
            }
        }
    }

    /// Records how a failed job ended, and passes the error on.
    fn fail(&self, e: JobError) -> JobError {
        match &e {
            JobError::Cancelled { .. } => self.note(JournalEntry::Cancelled),
            JobError::Submit(error) => self.note(JournalEntry::SubmitFailed { error }),
            // fal still has the request: a later resume can finish it.
            resumable if resumable.is_resumable() => self.note(JournalEntry::Interrupted { error: &e.to_string() }),
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
    let client = &announcing_retries(client, &events);
    let rec = Recorder::new(job.journal.as_deref(), &events);
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
    let id_recorded = rec.try_note(JournalEntry::Submitted { handle: &handle });
    rec.emit(JobEvent::Submitted { handle: handle.clone() });

    let result =
        finish(client, &rec, handle.clone(), sent, (&job.out_dir, job.naming), job.follow, None, cancel, started).await;
    match result {
        Ok(mut outcome) => {
            // Without its request id a resume cannot find the request again: try once more now
            // that the job is over (the disk may have room again).
            if !id_recorded && rec.try_note(JournalEntry::Submitted { handle: &handle }) {
                outcome.unrecorded.retain(|u| u.what != REQUEST_ID_STEP);
            }
            Ok(outcome)
        }
        Err(e) => Err(rec.fail(e)),
    }
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
    let client = &announcing_retries(client, &events);
    let rec = Recorder::new(job.journal.as_deref(), &events);
    rec.emit(JobEvent::Submitted { handle: job.handle.clone() });
    finish(
        client,
        &rec,
        job.handle,
        job.sent,
        (&job.out_dir, job.naming),
        job.follow,
        job.known_result,
        cancel,
        started,
    )
    .await
    .map_err(|e| rec.fail(e))
}

/// The job's client: every retry it makes is told to the front end as a note.
fn announcing_retries(client: &FalClient, events: &UnboundedSender<JobEvent>) -> FalClient {
    let events = events.clone();
    client.with_retry_notices(move |notice| {
        let _ = events.send(JobEvent::Note(notice.to_string()));
    })
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    client: &FalClient,
    rec: &Recorder<'_>,
    handle: RequestHandle,
    sent: KontextInput,
    (out_dir, naming): (&Path, OutputNaming),
    follow_mode: FollowMode,
    known_result: Option<Value>,
    cancel: CancellationToken,
    started: Instant,
) -> Result<JobOutcome, JobError> {
    let fal_err = |error: FalError| JobError::Fal { handle: Box::new(handle.clone()), error };
    // A stored result this client cannot read is fetched again rather than trusted.
    let known_result = known_result.filter(|raw| serde_json::from_value::<KontextOutput>(raw.clone()).is_ok());
    let (raw_result, logs, metrics, billable_units) = match known_result {
        Some(raw) => (raw, Vec::new(), None, None),
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
            let (raw, billable_units) = client.result_billed(&handle).await.map_err(fal_err)?;
            // Kept before parsing, so even an answer this client cannot read is not lost.
            rec.note(JournalEntry::Result { raw: &raw, metrics: final_status.metrics.as_ref(), billable_units });
            (raw, final_status.logs.unwrap_or_default(), final_status.metrics, billable_units)
        }
    };

    let mut output: KontextOutput = serde_json::from_value(raw_result.clone())
        .map_err(|e| fal_err(FalError::Protocol(format!("the result does not match the endpoint's schema: {e}"))))?;
    let asked = usize::from(sent.num_images().max(1));
    if output.images.len() > asked {
        // More than was paid for: keep what was asked for and fetch nothing else.
        rec.emit(JobEvent::Note(format!(
            "fal returned {} images where {asked} were asked for; keeping the first {asked}",
            output.images.len()
        )));
        output.images.truncate(asked);
    }
    if output.images.is_empty() {
        return Err(JobError::Output { handle: Box::new(handle), index: 0, message: "fal returned no images".into() });
    }

    let files = images::save_outputs(client, &handle, &sent, &output, out_dir, naming, rec).await?;
    let elapsed = started.elapsed();
    rec.note(JournalEntry::Completed { elapsed });

    let unrecorded = std::mem::take(&mut *rec.unrecorded());
    Ok(JobOutcome { handle, sent, output, raw_result, files, logs, metrics, elapsed, unrecorded, billable_units })
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

/// Temporary files in the output folder are `.kontext-<pid>-<random>`.
const TEMP_PREFIX: &str = ".kontext-";

/// Removes the temporary files of killed `kontext` processes (a SIGKILL skips every clean-up)
/// from `dir`. A live process's file, or one whose pid has been reused, is left alone; errors
/// are ignored: this is tidying, not part of the write.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<i64>().ok())
        else {
            continue;
        };
        if pid != i64::from(std::process::id()) && !crate::process::pid_exists(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so no
/// half-written file ever carries the final name.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    write_atomically_with(path, |file| file.write_all(bytes))
}

/// As [`write_atomically`], for what is written piece by piece (a contact sheet streamed to
/// its PNG): `write` fills the temporary file; on an error it is removed, never renamed.
pub fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<&std::fs::File>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    remove_stale_temporaries(dir);
    // The name says whose it is, so a later write can remove it if this process is killed.
    let tmp = tempfile::Builder::new().prefix(&format!("{TEMP_PREFIX}{}-", std::process::id())).tempfile_in(dir)?;
    {
        let mut out = std::io::BufWriter::new(tmp.as_file());
        write(&mut out)?;
        out.flush()?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_that_fails_half_way_leaves_nothing_under_the_name() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sheet.png");
        let e = write_atomically_with(&path, |out| {
            out.write_all(&[1; 100_000])?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "disk full");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no sheet, no temporary");
        write_atomically_with(&path, |out| out.write_all(b"png")).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"png");
    }

    #[test]
    fn a_write_removes_the_temporaries_of_killed_processes_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        gone.wait().unwrap();
        let dead = dir.path().join(format!(".kontext-{}-AbC123", gone.id()));
        let mine = dir.path().join(format!(".kontext-{}-XyZ789", std::process::id()));
        let other = dir.path().join(".kontext-notes");
        for p in [&dead, &mine, &other] {
            std::fs::write(p, b"half an image").unwrap();
        }
        write_atomically(&dir.path().join("out.png"), b"image").unwrap();
        assert!(!dead.exists(), "a killed process's temporary is removed");
        assert!(mine.exists() && other.exists(), "a live process's file and other files stay");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 3, "the new file, no temporary of its own: {names:?}");
    }
}
