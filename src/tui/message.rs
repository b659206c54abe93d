//! What flows into `App::update` (messages) and out of it (effects). Effects are carried out by
//! the runtime as tokio tasks that report back with messages, so `update` never waits on the
//! network, the disk or an image decoder — and can be tested with no terminal at all.

use std::path::PathBuf;

use crossterm::event::Event;

use crate::history::JobState;
use crate::model::cost::Estimate;
use crate::model::{Draft, FieldError, ValidInput};
use crate::runner::{JobEvent, SavedImage};

/// Identifies a job of this session.
pub type JobId = u64;

#[derive(Debug)]
pub enum Message {
    /// A terminal event (key, paste, resize).
    Input(Event),
    Job {
        id: JobId,
        event: JobEvent,
    },
    JobFinished {
        id: JobId,
        outcome: Box<JobFinish>,
    },
    /// A sweep's point got its slot and is being sent now.
    JobStarted(JobId),
    /// Every point of a sweep has ended (or the sweep could not be journaled): its contact
    /// sheets, or why there are none.
    SweepEnded {
        id: String,
        sheets: Result<Vec<PathBuf>, String>,
    },
    /// The job was journaled under this history id (before anything was sent).
    JobRecorded {
        id: JobId,
        history_id: String,
    },
    /// A listing, for the filter (and `seq`) it answers.
    History {
        filter: HistoryFilter,
        rows: Vec<HistoryRow>,
    },
    /// The stored history changed (a resume): list it again with the current filter.
    HistoryChanged,
    /// A history entry was deleted (its id): say so and list again.
    HistoryDeleted(String),
    /// The next (older) page of a listing (dropped if the filter changed meanwhile).
    HistoryMore {
        filter: HistoryFilter,
        rows: Vec<HistoryRow>,
    },
    HistoryDetail(Box<HistoryDetailView>),
    /// A past sweep, read back from the history for the Results grid.
    SweepLoaded(Box<PastSweep>),
    /// A star was kept in the history (for this session's job, if it is one).
    Starred {
        job: Option<JobId>,
        history_id: String,
        starred: bool,
    },
    /// What today's requests cost so far (UTC day, billed or estimated).
    SpentToday(f64),
    /// Earlier prompts, newest first, for recall.
    Prompts(Vec<String>),
    /// Local image files were looked up (for list version `seq`).
    ImagesChecked {
        seq: u64,
        info: Vec<ImageInfo>,
    },
    /// The external editor returned (new text, or why it failed).
    EditorClosed(Result<String, String>),
    /// A background task has something to tell the user.
    Notice(String),
    Error(String),
    /// Redraw for a spinner / elapsed time while jobs run.
    Tick,
    /// Something the view layer (thumbnails) finished; just redraw.
    Redraw,
}

/// How a job ended, as the app needs it.
#[derive(Debug)]
pub enum JobFinish {
    Done {
        request_id: String,
        seed: u64,
        files: Vec<SavedImage>,
        urls: Vec<String>,
        /// The prompt fal reports it used (differs when enhance_prompt rewrote it).
        prompt_used: String,
        /// `timings.inference`, when fal reports it.
        inference: Option<f64>,
        /// What fal bills for it (`x-fal-billable-units`), when it said.
        billable_units: Option<f64>,
        /// Steps the history could not record (a full disk): the files are written, but the
        /// history does not have it all.
        unrecorded: Vec<crate::runner::Unrecorded>,
    },
    Failed {
        message: String,
        field_errors: Vec<FieldError>,
        request_id: Option<String>,
        ambiguous: bool,
    },
    Cancelled {
        request_id: Option<String>,
    },
}

/// A sweep of an earlier session (or of `kontext sweep`), as the history keeps it.
#[derive(Debug, Clone)]
pub struct PastSweep {
    pub id: String,
    pub axes: Vec<crate::model::sweep::Axis>,
    /// Every point of its plan, in order, with its request if one was sent.
    pub points: Vec<PastPoint>,
}

#[derive(Debug, Clone)]
pub struct PastPoint {
    pub point: crate::model::sweep::Point,
    pub endpoint: String,
    pub draft: Draft,
    pub request: Option<PastRequest>,
}

/// A sent point: what became of it. Server text in it is raw (the app cleans it).
#[derive(Debug, Clone)]
pub struct PastRequest {
    pub history_id: String,
    pub request_id: Option<String>,
    pub state: JobState,
    pub error: Option<String>,
    pub seed: Option<u64>,
    pub estimated_usd: Option<f64>,
    pub billed_usd: Option<f64>,
    pub starred: bool,
    /// The outputs to show: the user's copy where it still exists, else the history's.
    pub files: Vec<SavedImage>,
}

/// One line of the history list.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub id: String,
    pub request_id: Option<String>,
    pub state: JobState,
    pub created_at: i64,
    pub prompt: String,
    pub seed: Option<u64>,
    pub outputs: usize,
    pub endpoint: String,
    pub estimated_usd: Option<f64>,
    pub billed_usd: Option<f64>,
    /// Position for loading the next (older) page.
    pub cursor: i64,
    /// The sweep it is a point of, if any (`g` shows that sweep's grid).
    pub sweep_id: Option<String>,
    /// Marked a keeper (`s`, `kontext history star`).
    pub starred: bool,
}

/// A past request, loaded for the editor and the results pane.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryDetailView {
    pub id: String,
    pub request_id: Option<String>,
    pub draft: Draft,
    pub outputs: Vec<PathBuf>,
    pub endpoint: String,
    pub estimated_usd: Option<f64>,
    pub billed_usd: Option<f64>,
    pub inputs: Vec<String>,
    /// Load into the editor (Enter) or re-run at once (`r`).
    pub purpose: DetailPurpose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetailPurpose {
    Show,
    Load,
    Rerun,
}

/// Which history rows to show.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistoryFilter {
    pub search: String,
    pub state: Option<JobState>,
    /// Only rows older than this cursor: the next page when scrolling past the end.
    pub before: Option<i64>,
    /// Which listing this is: answers to an older one (a slower query) are dropped.
    pub seq: u64,
}

#[derive(Debug)]
pub enum Effect {
    /// Send this request (to the endpoint its schema names); the estimate goes in the history.
    Submit {
        id: JobId,
        input: Box<ValidInput>,
        estimate: Box<Estimate>,
    },
    /// Journal the sweep's whole plan, then send its points, a few at a time.
    SubmitSweep(Box<SweepLaunch>),
    /// Send no more waiting sweep points (the studio is quitting): they stay never sent.
    HoldSweeps,
    /// Read today's spend (the ledger) for the status bar and the daily budget.
    LoadSpend,
    Cancel(JobId),
    LoadHistory(HistoryFilter),
    LoadHistoryDetail {
        id: String,
        purpose: DetailPurpose,
    },
    DeleteHistory(String),
    /// Read a sweep (its plan and the requests it sent) back from the history.
    LoadSweep(String),
    /// Mark (or unmark) a history entry as a keeper; `job` is this session's job of it, if any.
    Star {
        job: Option<JobId>,
        history_id: String,
        starred: bool,
    },
    LoadPrompts,
    OpenEditor(String),
    /// Look at local image files (size, readable, an image) off the UI task.
    CheckImages {
        seq: u64,
        items: Vec<String>,
    },
    Copy(String),
    OpenPath(PathBuf),
    Quit,
}

/// A sweep to run: each point already a job of the store (waiting).
#[derive(Debug)]
pub struct SweepLaunch {
    pub id: String,
    pub axes: Vec<crate::model::sweep::Axis>,
    pub points: Vec<(JobId, crate::model::sweep::Planned)>,
    pub concurrency: u16,
}

/// What an image of the list is ("url", "local 3 KB · inline") and a problem with it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImageInfo {
    pub tag: String,
    pub error: Option<String>,
    pub local_file: Option<PathBuf>,
    /// A local file's width and height (a per-megapixel estimate counts them).
    pub size: Option<(u32, u32)>,
}

/// How a notice is shown: plain news, or a problem (in the error colour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeLevel {
    Info,
    Error,
}

/// One line for the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub level: NoticeLevel,
}

impl Notice {
    pub fn info(text: impl Into<String>) -> Notice {
        Notice { text: text.into(), level: NoticeLevel::Info }
    }

    pub fn error(text: impl Into<String>) -> Notice {
        Notice { text: text.into(), level: NoticeLevel::Error }
    }

    pub fn is_error(&self) -> bool {
        self.level == NoticeLevel::Error
    }
}
