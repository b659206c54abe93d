//! The jobs of this session, shared by the panes that show them (Jobs, Results, Images): one
//! store the app updates from the runner's events and the panes read.

use std::path::PathBuf;
use std::time::Instant;

use super::context::cost_text;
use super::form::endpoint_short;
use super::message::{JobFinish, JobId, Notice, PastPoint};
use crate::history::JobState;
use crate::model::cost::Estimate;
use crate::model::sweep::{Axis, GridAxes, Point};
use crate::model::{Draft, FieldError, ImageSource, ValidInput};
use crate::runner::{JobEvent, SavedImage};
use crate::sanitize::one_line;

#[derive(Debug, Clone, PartialEq)]
pub enum JobPhase {
    /// A point of a sweep waiting for a slot: nothing of it is journaled or sent yet.
    Waiting,
    Preparing,
    Uploading(usize),
    Submitted,
    Queued(Option<u64>),
    Running,
    CancelRequested,
    Fetching,
    Completed,
    Failed(String),
    Cancelled,
}

impl JobPhase {
    pub fn is_active(&self) -> bool {
        !matches!(self, JobPhase::Completed | JobPhase::Failed(_) | JobPhase::Cancelled)
    }

    /// Before fal has answered the submit: quitting now could leave a request nobody knows.
    pub fn submit_in_flight(&self) -> bool {
        matches!(self, JobPhase::Preparing | JobPhase::Uploading(_))
    }

    pub fn label(&self) -> String {
        match self {
            JobPhase::Waiting => "waiting".into(),
            JobPhase::Preparing => "preparing".into(),
            JobPhase::Uploading(i) => format!("uploading {}", i + 1),
            JobPhase::Submitted => "submitted".into(),
            JobPhase::Queued(Some(p)) => format!("queued ({p} ahead)"),
            JobPhase::Queued(None) => "queued".into(),
            JobPhase::Running => "running".into(),
            JobPhase::CancelRequested => "cancel requested".into(),
            JobPhase::Fetching => "downloading".into(),
            JobPhase::Completed => "done".into(),
            JobPhase::Failed(_) => "failed".into(),
            JobPhase::Cancelled => "cancelled".into(),
        }
    }
}

/// A job of this session, as the Jobs and Results panes show it. Server text in it (request
/// id, log lines) is already one clean line.
#[derive(Debug, Clone)]
pub struct JobView {
    pub id: JobId,
    pub prompt: String,
    /// Input images as shown (data: URIs shortened).
    pub inputs: Vec<String>,
    /// Exactly what was asked for, to run it again.
    pub draft: Draft,
    pub phase: JobPhase,
    pub request_id: Option<String>,
    pub started: Instant,
    pub ended: Option<Instant>,
    /// Log lines, already stripped of control sequences.
    pub logs: Vec<String>,
    pub files: Vec<SavedImage>,
    pub urls: Vec<String>,
    pub seed: Option<u64>,
    /// The endpoint as shown ("[max] multi").
    pub endpoint: String,
    /// Where it was sent (a re-run goes there too).
    pub endpoint_id: String,
    /// What it was estimated to cost before sending, with the price it used.
    pub estimate: Option<Estimate>,
    /// What fal billed: units (`x-fal-billable-units`) × the estimate's unit price.
    pub billed_usd: Option<f64>,
    /// Its id in the history (what `kontext history` and a star name), once journaled.
    pub history_id: Option<String>,
    /// The sweep it is a point of (the sweep's id), if any.
    pub sweep: Option<String>,
    /// Marked a keeper (`s`); kept in the history.
    pub starred: bool,
}

impl JobView {
    /// A job that is just starting.
    pub fn new(id: JobId, input: &ValidInput) -> JobView {
        JobView {
            id,
            prompt: input.prompt.clone(),
            inputs: input.images.iter().map(ImageSource::display).collect(),
            draft: input.to_draft(),
            phase: JobPhase::Preparing,
            request_id: None,
            started: Instant::now(),
            ended: None,
            logs: Vec::new(),
            files: Vec::new(),
            urls: Vec::new(),
            seed: None,
            endpoint: endpoint_short(&input.schema),
            endpoint_id: input.endpoint_id().to_string(),
            estimate: None,
            billed_usd: None,
            history_id: None,
            sweep: None,
            starred: false,
        }
    }

    /// The cost as a job line shows it: billed once known, the estimate before ("~$0.040").
    pub fn cost_text(&self) -> String {
        cost_text(self.estimate.as_ref().and_then(|e| e.usd), self.billed_usd)
    }

    /// The outputs as the Results pane shows them.
    pub fn outputs(&self) -> Vec<OutputItem> {
        self.files
            .iter()
            .map(|f| OutputItem {
                path: Some(f.path.clone()),
                url: self.urls.get(f.index).filter(|u| !u.starts_with("data:")).cloned(),
                caption: format!("#{} {}x{}{}", f.index + 1, f.width, f.height, if f.nsfw { " NSFW" } else { "" }),
            })
            .collect()
    }
}

/// A sweep of this session: its plan's axes, how a grid lays it out, and the job of each point
/// (every point is a job of the store from the start; those not sent yet are `Waiting`).
#[derive(Debug, Clone)]
pub struct SweepView {
    /// The sweep's id in the history (`kontext sweep --continue ID`, `history list --sweep`).
    pub id: String,
    pub axes: Vec<Axis>,
    pub grid: GridAxes,
    /// Each point with its job, in the plan's order.
    pub points: Vec<(Point, JobId)>,
    /// The plan's estimate in all, when every point could be priced.
    pub estimated_usd: Option<f64>,
    /// The contact sheets written when it ended (or why they could not be).
    pub sheets: Vec<PathBuf>,
}

/// Where a sweep's jobs are, for its progress line.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SweepTally {
    pub done: usize,
    pub running: usize,
    /// Waiting for a slot (not sent yet) or in fal's queue.
    pub queued: usize,
    pub failed: usize,
    pub cancelled: usize,
    /// Billed so far (the estimate of a done job whose bill fal did not give).
    pub spent_usd: f64,
}

impl SweepTally {
    pub fn total(&self) -> usize {
        self.done + self.running + self.queued + self.failed + self.cancelled
    }

    pub fn is_finished(&self) -> bool {
        self.running == 0 && self.queued == 0
    }
}

impl SweepView {
    pub fn new(id: String, axes: Vec<Axis>, points: Vec<(Point, JobId)>, estimated_usd: Option<f64>) -> SweepView {
        SweepView { id, grid: GridAxes::of(&axes), axes, points, estimated_usd, sheets: Vec::new() }
    }

    /// The shape as people say it: "3×2" (rows × columns), with "· 2 pages" when further axes
    /// vary.
    pub fn shape(&self) -> String {
        let len = |a: &Option<Axis>| a.as_ref().map_or(1, |a| a.values.len());
        let mut shape = format!("{}×{}", len(&self.grid.rows), len(&self.grid.columns));
        if self.grid.pages() > 1 {
            shape.push_str(&format!(" · {} pages", self.grid.pages()));
        }
        shape
    }

    pub fn tally(&self, jobs: &JobStore) -> SweepTally {
        let mut t = SweepTally::default();
        for (_, id) in &self.points {
            let Some(job) = jobs.get(*id) else { continue };
            match &job.phase {
                JobPhase::Completed => t.done += 1,
                JobPhase::Failed(_) => t.failed += 1,
                JobPhase::Cancelled => t.cancelled += 1,
                JobPhase::Waiting | JobPhase::Preparing | JobPhase::Queued(_) | JobPhase::Submitted => t.queued += 1,
                _ => t.running += 1,
            }
            // A done job costs its bill (else its estimate); one that failed or was cancelled
            // only what fal billed, if anything: a point never sent costs nothing.
            let estimate = job.estimate.as_ref().and_then(|e| e.usd);
            t.spent_usd += match job.phase {
                JobPhase::Completed => job.billed_usd.or(estimate).unwrap_or(0.0),
                _ => job.billed_usd.unwrap_or(0.0),
            };
        }
        t
    }

    /// The job at a cell of a page, if the plan has one there.
    pub fn job_at(&self, page: usize, row: usize, column: usize) -> Option<JobId> {
        self.points.iter().find(|(p, _)| self.grid.place(p) == Some((page, row, column))).map(|(_, id)| *id)
    }
}

impl JobView {
    /// A point of a past sweep as the history kept it: finished (or never sent), not running
    /// in this session. `endpoint` is the name shown ("[max] multi").
    pub fn past(id: JobId, past: &PastPoint, sweep_id: &str, endpoint: String) -> JobView {
        let now = Instant::now();
        let mut job = JobView {
            id,
            prompt: past.draft.prompt.clone(),
            inputs: past.draft.images.iter().map(|i| ImageSource::classify(i).display()).collect(),
            draft: past.draft.clone(),
            phase: JobPhase::Cancelled,
            request_id: None,
            started: now,
            ended: Some(now),
            logs: Vec::new(),
            files: Vec::new(),
            urls: Vec::new(),
            seed: None,
            endpoint,
            endpoint_id: past.endpoint.clone(),
            estimate: None,
            billed_usd: None,
            history_id: None,
            sweep: Some(sweep_id.to_string()),
            starred: false,
        };
        let Some(r) = &past.request else {
            job.logs.push(format!("[kontext] never sent: `kontext sweep --continue {sweep_id}` sends it"));
            return job;
        };
        job.phase = match r.state {
            JobState::Completed => JobPhase::Completed,
            JobState::Cancelled => JobPhase::Cancelled,
            JobState::Failed => JobPhase::Failed(one_line(r.error.as_deref().unwrap_or("failed"))),
            _ => JobPhase::Failed("not finished: `kontext resume` finishes it".into()),
        };
        if let JobPhase::Failed(why) = &job.phase {
            job.logs.push(why.clone());
        }
        job.logs.push(format!("[kontext] from the history ({})", r.state.as_str()));
        job.request_id = r.request_id.as_deref().map(one_line);
        job.seed = r.seed;
        job.billed_usd = r.billed_usd.or(r.estimated_usd.filter(|_| r.state == JobState::Completed));
        job.history_id = Some(r.history_id.clone());
        job.starred = r.starred;
        job.files = r.files.clone();
        job
    }
}

/// One output image, wherever it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputItem {
    pub path: Option<PathBuf>,
    pub url: Option<String>,
    pub caption: String,
}

/// What a finished job tells the rest of the app.
#[derive(Debug)]
pub struct Finished {
    pub notice: Notice,
    /// fal named fields it refused: shown where the user can fix them.
    pub field_errors: Vec<FieldError>,
    /// The seed of a result, for "reuse the last seed".
    pub seed: Option<u64>,
}

/// Every job of this session, newest first.
#[derive(Debug)]
pub struct JobStore {
    jobs: Vec<JobView>,
    sweeps: Vec<SweepView>,
    next_id: JobId,
}

impl Default for JobStore {
    fn default() -> JobStore {
        JobStore { jobs: Vec::new(), sweeps: Vec::new(), next_id: 1 }
    }
}

impl JobStore {
    /// Records a new job (newest first) and returns its id.
    pub fn add(&mut self, input: &ValidInput) -> JobId {
        self.add_estimated(input, None)
    }

    /// Records a new job with its estimate (the bill is priced with the same unit price).
    pub fn add_estimated(&mut self, input: &ValidInput, estimate: Option<Estimate>) -> JobId {
        let id = self.next_id;
        self.next_id += 1;
        let job = JobView { estimate, ..JobView::new(id, input) };
        self.jobs.insert(0, job);
        id
    }

    /// Records a point of a sweep that waits for a slot (see [`JobPhase::Waiting`]).
    pub fn add_waiting(&mut self, input: &ValidInput, estimate: Option<Estimate>) -> JobId {
        let id = self.add_estimated(input, estimate);
        if let Some(job) = self.get_mut(id) {
            job.phase = JobPhase::Waiting;
        }
        id
    }

    /// A waiting point got its slot: it is being prepared and sent now.
    pub fn set_started(&mut self, id: JobId) {
        if let Some(job) = self.get_mut(id).filter(|j| j.phase == JobPhase::Waiting) {
            job.phase = JobPhase::Preparing;
        }
    }

    /// Per sweep of this session, its points still waiting (never sent): (sweep id, count).
    pub fn unsent_points(&self) -> Vec<(String, usize)> {
        let waiting = |s: &SweepView| {
            s.points.iter().filter(|(_, id)| self.get(*id).is_some_and(|j| j.phase == JobPhase::Waiting)).count()
        };
        self.sweeps.iter().map(|s| (s.id.clone(), waiting(s))).filter(|(_, n)| *n > 0).collect()
    }

    /// Records a job made elsewhere (a past sweep's point, from the history), newest first.
    pub fn add_past(&mut self, make: impl FnOnce(JobId) -> JobView) -> JobId {
        let id = self.next_id;
        self.next_id += 1;
        self.jobs.insert(0, make(id));
        id
    }

    /// Records a sweep whose points are already jobs of the store (each gets its sweep id).
    pub fn add_sweep(&mut self, sweep: SweepView) {
        for (_, id) in &sweep.points {
            if let Some(job) = self.get_mut(*id) {
                job.sweep = Some(sweep.id.clone());
            }
        }
        self.sweeps.insert(0, sweep);
    }

    /// Records a sweep of `axes`: one job per point of its plan (each from `input_of(point)`),
    /// all waiting to be sent, and returns it. Tests and benches build their sweeps with it (the
    /// app's `start_sweep` has the validated plan already).
    pub fn plan_sweep(
        &mut self,
        id: String,
        axes: Vec<Axis>,
        mut input_of: impl FnMut(&Point) -> ValidInput,
        estimated_usd: Option<f64>,
    ) -> &SweepView {
        let points = crate::model::sweep::points(&axes)
            .into_iter()
            .map(|point| {
                let job = self.add_waiting(&input_of(&point), None);
                (point, job)
            })
            .collect();
        let sweep = SweepView::new(id, axes, points, estimated_usd);
        self.add_sweep(sweep);
        &self.sweeps[0]
    }

    pub fn sweep(&self, id: &str) -> Option<&SweepView> {
        self.sweeps.iter().find(|s| s.id == id)
    }

    pub fn sweep_mut(&mut self, id: &str) -> Option<&mut SweepView> {
        self.sweeps.iter_mut().find(|s| s.id == id)
    }

    /// This session's sweeps, newest first.
    pub fn sweeps(&self) -> &[SweepView] {
        &self.sweeps
    }

    /// The job was journaled under this history id.
    pub fn set_history_id(&mut self, id: JobId, history_id: String) {
        if let Some(job) = self.get_mut(id) {
            job.history_id = Some(history_id);
        }
    }

    /// The star was kept in the history.
    pub fn set_starred(&mut self, id: JobId, starred: bool) {
        if let Some(job) = self.get_mut(id) {
            job.starred = starred;
        }
    }

    pub fn get(&self, id: JobId) -> Option<&JobView> {
        self.index_of(id).map(|i| &self.jobs[i])
    }

    fn get_mut(&mut self, id: JobId) -> Option<&mut JobView> {
        self.index_of(id).map(|i| &mut self.jobs[i])
    }

    /// Where job `id` is in the list. Ids count up from 1 and the newest is first, so it is
    /// found at once (a sweep's tally looks up every point on every frame); the scan is a
    /// fallback should that ever not hold.
    fn index_of(&self, id: JobId) -> Option<usize> {
        let at = usize::try_from((self.next_id - 1).checked_sub(id)?).ok();
        at.filter(|&i| self.jobs.get(i).is_some_and(|j| j.id == id))
            .or_else(|| self.jobs.iter().position(|j| j.id == id))
    }

    /// The job at a position of the list (0 = newest).
    pub fn at(&self, index: usize) -> Option<&JobView> {
        self.jobs.get(index)
    }

    pub fn newest(&self) -> Option<&JobView> {
        self.jobs.first()
    }

    pub fn iter(&self) -> impl Iterator<Item = &JobView> {
        self.jobs.iter()
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    pub fn has_active(&self) -> bool {
        self.jobs.iter().any(|j| j.phase.is_active())
    }

    pub fn submits_in_flight(&self) -> usize {
        self.jobs.iter().filter(|j| j.phase.submit_in_flight()).count()
    }

    /// Jobs that had not finished: (accepted by fal, not confirmed by fal).
    pub fn unfinished(&self) -> (usize, usize) {
        // A point still waiting for its slot was never sent: `unsent_points` counts it.
        let active = self.jobs.iter().filter(|j| j.phase.is_active() && j.phase != JobPhase::Waiting);
        let (accepted, unconfirmed): (Vec<_>, Vec<_>) = active.partition(|j| j.request_id.is_some());
        (accepted.len(), unconfirmed.len())
    }

    /// Marks a running job as being cancelled; false when it has already finished.
    pub fn request_cancel(&mut self, id: JobId) -> bool {
        match self.get_mut(id) {
            Some(job) if job.phase.is_active() => {
                job.phase = JobPhase::CancelRequested;
                true
            }
            _ => false,
        }
    }

    /// A step of a running job. Server text is made one clean line here, where it enters, so
    /// every pane, the clipboard copy and the status bar show the same safe text.
    pub fn on_event(&mut self, id: JobId, event: JobEvent) {
        let Some(job) = self.get_mut(id) else { return };
        let cancel_pending = job.phase == JobPhase::CancelRequested;
        let phase = match event {
            JobEvent::Uploading { index, .. } => Some(JobPhase::Uploading(index)),
            JobEvent::Uploaded { .. } | JobEvent::Saved { .. } => None,
            JobEvent::Submitted { handle } => {
                job.request_id = Some(one_line(&handle.request_id));
                Some(JobPhase::Submitted)
            }
            JobEvent::Queued { position } => Some(JobPhase::Queued(position)),
            JobEvent::InProgress => Some(JobPhase::Running),
            JobEvent::Logs(lines) => {
                job.logs.extend(lines.iter().map(|l| one_line(&l.message)));
                None
            }
            JobEvent::Note(n) => {
                job.logs.push(format!("[kontext] {}", one_line(&n)));
                None
            }
            JobEvent::Completed | JobEvent::Downloading { .. } => Some(JobPhase::Fetching),
            JobEvent::CancelRequested { outcome } => {
                job.logs.push(format!("[kontext] cancel: {outcome:?}"));
                Some(JobPhase::CancelRequested)
            }
        };
        // Once a cancel is asked for, only the cancel's own steps (and a late download) show.
        if let Some(p) = phase
            && !(cancel_pending && p != JobPhase::CancelRequested && p != JobPhase::Fetching)
        {
            job.phase = p;
        }
    }

    /// How a job ended; `None` for a job this session does not know.
    pub fn finish(&mut self, id: JobId, finish: JobFinish) -> Option<Finished> {
        let job = self.get_mut(id)?;
        job.ended = Some(Instant::now());
        let mut field_errors = Vec::new();
        let mut seed_out = None;
        let notice = match finish {
            JobFinish::Done { request_id, seed, files, urls, prompt_used, inference, unrecorded, billable_units } => {
                let unit_price = job.estimate.as_ref().and_then(|e| e.unit_price);
                job.billed_usd = billable_units.zip(unit_price).map(|(u, p)| crate::model::cost::usd(u, p));
                // Every output field is shown: seed and timing here, NSFW flags on the images.
                let mut summary = format!("[kontext] done: seed {seed}");
                if let Some(secs) = inference {
                    summary.push_str(&format!(", inference {secs:.2}s"));
                }
                let flagged = files.iter().filter(|f| f.nsfw).count();
                if flagged > 0 {
                    summary.push_str(&format!(", {flagged} image(s) flagged NSFW"));
                }
                job.logs.push(summary);
                // Where each file went, so nobody has to guess the folder or the name.
                for f in &files {
                    job.logs.push(format!("[kontext] saved {}", one_line(&f.path.display().to_string())));
                }
                if one_line(&prompt_used) != one_line(&job.prompt) {
                    job.logs.push(format!("[kontext] fal used the prompt: {}", one_line(&prompt_used)));
                }
                job.request_id = Some(one_line(&request_id));
                job.seed = Some(seed);
                job.files = files;
                job.urls = urls;
                job.phase = JobPhase::Completed;
                seed_out = Some(seed);
                if unrecorded.is_empty() {
                    let cost = job.cost_text();
                    let cost = if cost.is_empty() { String::new() } else { format!(", {cost}") };
                    let first = job.files.first().and_then(|f| f.path.file_name()).map(|n| n.to_string_lossy());
                    let saved = first.map(|n| format!(" · saved {}", one_line(&n))).unwrap_or_default();
                    Notice::info(format!("job #{id} done: {} image(s), seed {seed}{cost}{saved}", job.files.len()))
                } else {
                    let missed: Vec<String> = unrecorded.iter().map(|u| u.what.clone()).collect();
                    let text = format!(
                        "job #{id}: images saved, but the history could not record {} ({}) — request {}; run `kontext resume` once there is room on the disk",
                        missed.join(", "),
                        one_line(&unrecorded[0].error),
                        one_line(job.request_id.as_deref().unwrap_or("?"))
                    );
                    job.logs.push(format!("[kontext] {text}"));
                    Notice::error(text)
                }
            }
            JobFinish::Failed { message, field_errors: fe, request_id, ambiguous } => {
                if let Some(r) = request_id {
                    job.request_id = Some(one_line(&r));
                }
                let message = one_line(&message);
                job.logs.push(format!("[kontext] {message}"));
                job.phase = JobPhase::Failed(message.clone());
                field_errors = fe.into_iter().map(|e| FieldError { message: one_line(&e.message), ..e }).collect();
                Notice::error(if ambiguous {
                    format!("job #{id}: submit uncertain — {message}")
                } else {
                    format!("job #{id} failed: {message}")
                })
            }
            JobFinish::Cancelled { request_id } => {
                if let Some(r) = request_id {
                    job.request_id = Some(one_line(&r));
                }
                job.phase = JobPhase::Cancelled;
                Notice::info(format!("job #{id} cancelled"))
            }
        };
        Some(Finished { notice, field_errors, seed: seed_out })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fal::RequestHandle;

    fn input(prompt: &str) -> ValidInput {
        Draft { prompt: prompt.into(), images: vec!["https://a.example/x.png".into()], ..Draft::default() }
            .validate(4)
            .unwrap()
    }

    fn handle(id: &str) -> RequestHandle {
        RequestHandle {
            endpoint: "e".into(),
            request_id: id.into(),
            response_url: "u".into(),
            status_url: "s".into(),
            cancel_url: "c".into(),
        }
    }

    #[test]
    fn newest_first_and_ids_count_up() {
        let mut s = JobStore::default();
        assert_eq!(s.add(&input("a")), 1);
        assert_eq!(s.add(&input("b")), 2);
        assert_eq!(s.newest().map(|j| j.prompt.as_str()), Some("b"));
        assert_eq!(s.at(1).map(|j| j.id), Some(1));
    }

    #[test]
    fn a_sweep_tallies_its_jobs_and_finds_them_by_cell() {
        use crate::model::sweep::{AxisFlags, axes, points};
        let flags = AxisFlags { seeds: Some("1..3"), guidance: Some("2,5"), ..AxisFlags::default() };
        let axes = axes(&flags).unwrap();
        let mut s = JobStore::default();
        let lone = s.add(&input("not in the sweep"));
        let members: Vec<(Point, JobId)> = points(&axes).into_iter().map(|p| (p, s.add(&input("x")))).collect();
        let ids: Vec<JobId> = members.iter().map(|(_, id)| *id).collect();
        s.add_sweep(SweepView::new("sw1".into(), axes, members, Some(0.24)));
        let sweep = s.sweep("sw1").unwrap();
        assert_eq!(sweep.shape(), "3×2");
        assert_eq!(sweep.job_at(0, 2, 1), Some(ids[5]), "seed 3, guidance 5");
        assert_eq!(sweep.job_at(0, 3, 0), None);
        assert_eq!(s.get(ids[0]).unwrap().sweep.as_deref(), Some("sw1"));
        assert_eq!(s.get(lone).unwrap().sweep, None);

        s.on_event(ids[0], JobEvent::InProgress);
        s.finish(ids[1], JobFinish::Cancelled { request_id: None });
        let t = s.sweep("sw1").unwrap().tally(&s);
        assert_eq!((t.running, t.queued, t.cancelled, t.total()), (1, 4, 1, 6));
        assert!(!t.is_finished());
    }

    #[test]
    fn a_past_sweeps_points_are_finished_jobs_as_the_history_kept_them() {
        use crate::tui::message::{PastPoint, PastRequest};
        let point = |request| PastPoint {
            point: Point { values: vec![] },
            endpoint: "fal-ai/flux-pro/kontext/multi".into(),
            draft: Draft { prompt: "p".into(), ..Draft::default() },
            request,
        };
        let request = |state, error: Option<&str>| PastRequest {
            history_id: "h1".into(),
            request_id: Some("r\u{1b}[2J1".into()),
            state,
            error: error.map(String::from),
            seed: Some(7),
            estimated_usd: Some(0.04),
            billed_usd: None,
            starred: true,
            files: vec![],
        };
        let never = JobView::past(1, &point(None), "sw", "[pro] multi".into());
        assert_eq!(never.phase, JobPhase::Cancelled);
        assert!(never.logs[0].contains("kontext sweep --continue sw"), "{:?}", never.logs);
        let done = JobView::past(2, &point(Some(request(JobState::Completed, None))), "sw", "x".into());
        assert_eq!((done.phase.clone(), done.seed, done.starred), (JobPhase::Completed, Some(7), true));
        assert_eq!(done.request_id.as_deref(), Some("r1"), "server text is cleaned where it enters");
        assert_eq!(done.billed_usd, Some(0.04), "no bill kept: the estimate of what completed");
        let failed = JobView::past(3, &point(Some(request(JobState::Failed, Some("nope")))), "sw", "x".into());
        assert_eq!((failed.phase, failed.billed_usd), (JobPhase::Failed("nope".into()), None));
        let open = JobView::past(4, &point(Some(request(JobState::InProgress, None))), "sw", "x".into());
        assert!(matches!(&open.phase, JobPhase::Failed(m) if m.contains("kontext resume")), "{:?}", open.phase);
        assert!(!open.phase.is_active(), "nothing of this session runs it");
    }

    #[test]
    fn a_cancel_asked_for_is_not_undone_by_a_late_status() {
        let mut s = JobStore::default();
        let id = s.add(&input("a"));
        s.on_event(id, JobEvent::Submitted { handle: handle("r") });
        assert!(s.request_cancel(id));
        s.on_event(id, JobEvent::InProgress);
        assert_eq!(s.get(id).unwrap().phase, JobPhase::CancelRequested);
        s.finish(id, JobFinish::Cancelled { request_id: None });
        assert!(!s.request_cancel(id), "nothing to cancel once it ended");
    }

    #[test]
    fn quitting_counts_what_fal_has_and_what_it_may_not() {
        let mut s = JobStore::default();
        let a = s.add(&input("a"));
        s.add(&input("b"));
        assert_eq!(s.submits_in_flight(), 2);
        s.on_event(a, JobEvent::Submitted { handle: handle("r\u{1b}[31m") });
        assert_eq!(s.get(a).unwrap().request_id.as_deref(), Some("r"), "cleaned where it enters");
        assert_eq!(s.unfinished(), (1, 1));
    }

    #[test]
    fn field_errors_from_fal_come_back_cleaned() {
        let mut s = JobStore::default();
        let id = s.add(&input("a"));
        let done = s
            .finish(
                id,
                JobFinish::Failed {
                    message: "bad \u{1b}]0;x\u{7}input".into(),
                    field_errors: vec![FieldError { field: crate::model::Field::Seed, message: "no\u{1b}[2J".into() }],
                    request_id: None,
                    ambiguous: false,
                },
            )
            .unwrap();
        assert!(done.notice.is_error());
        assert_eq!(done.field_errors[0].message, "no");
        assert!(!done.notice.text.contains('\u{1b}'));
    }

    #[test]
    fn a_planned_sweep_has_a_job_per_point_each_in_its_cell() {
        use crate::model::sweep::AxisKind;
        let mut s = JobStore::default();
        let axes = vec![
            Axis { kind: AxisKind::Seed, values: vec!["1".into(), "2".into()] },
            Axis { kind: AxisKind::Guidance, values: vec!["2".into(), "3".into(), "4".into()] },
        ];
        let mut prompts = Vec::new();
        let sweep = s.plan_sweep(
            "sw".into(),
            axes,
            |p| {
                prompts.push(p.to_string());
                input(&p.to_string())
            },
            None,
        );
        assert_eq!(sweep.points.len(), 6);
        let (row, col) = (1, 2);
        let id = sweep.job_at(0, row, col).unwrap();
        assert_eq!(s.len(), 6);
        let job = s.get(id).unwrap();
        assert_eq!(job.prompt, "seed=2, guidance_scale=4", "the cell's job was made from its point");
        assert_eq!(job.sweep.as_deref(), Some("sw"));
        assert!(s.iter().all(|j| j.phase == JobPhase::Waiting && j.sweep.is_some()));
        assert_eq!(prompts.len(), 6);
    }
}
