//! The event loop: a `biased` select over background messages, terminal input and (only while a
//! job runs) a tick; the latest state is drawn once per batch. Effects become tokio tasks that
//! report back over the message channel. Generic over the backend and the input stream, so the
//! whole app runs against `TestBackend` with injected keys.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crossterm::event::Event;
use futures::{Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::Semaphore;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio_util::sync::CancellationToken;

use super::app::App;
use super::graphics::ThumbnailReady;
use super::message::{
    Effect, HistoryDetailView, HistoryFilter, HistoryRow, JobFinish, JobId, Message, PastPoint, PastRequest, PastSweep,
    SweepLaunch,
};
use super::view::{self, ImageView, theme::Theme};
use crate::fal::{FalClient, FollowMode};
use crate::history::{Cursor, History, HistoryEntry, HistoryError, HistoryQuery, SweepRecord, resume_all};
use crate::model::cost::Estimate;
use crate::model::sweep::Planned;
use crate::model::{Endpoint, ValidInput};
use crate::runner::SavedImage;
use crate::runner::{JobError, JobRequest, OutputNaming, run_job};

/// What the effects need: the job runner and the history store. No HTTP or SQL lives here.
pub struct Services {
    pub client: FalClient,
    pub out_dir: PathBuf,
    /// What the output files are called in `out_dir`.
    pub naming: OutputNaming,
    pub history: History,
    pub data_uri_threshold: u64,
}

/// How many history rows the pane loads at a time.
const HISTORY_PAGE: usize = 200;

/// The terminal-facing side effects a runtime needs from its environment.
pub trait Host {
    /// Writes an OSC 52 clipboard request (real terminal) or records it (tests).
    fn copy(&mut self, text: &str);
    /// Leaves the screen, runs the editor on `text`, comes back; returns the new text.
    fn edit(&mut self, text: &str) -> Result<String, String>;
    /// Brackets a frame (synchronized update on a real terminal).
    fn begin_frame(&mut self) {}
    fn end_frame(&mut self) {}
    /// Opens a file in the desktop viewer.
    fn open(&mut self, path: &std::path::Path) -> Result<(), String> {
        open::that_detached(path).map_err(|e| format!("cannot open {}: {e}", path.display()))
    }
}

pub struct Runtime<B: Backend, H: Host> {
    pub terminal: Terminal<B>,
    pub app: App,
    pub host: H,
    pub images: Box<dyn ImageView>,
    pub theme: Theme,
    services: Arc<Services>,
    tx: UnboundedSender<Message>,
    rx: UnboundedReceiver<Message>,
    cancels: HashMap<JobId, CancellationToken>,
    /// Cancelled when the studio quits: sweep points waiting for a slot are not sent then.
    hold_sweeps: CancellationToken,
    /// Finished thumbnails, from the image workers.
    thumbs: Option<UnboundedReceiver<ThumbnailReady>>,
    /// Incremented on each draw (benchmarks and tests read it).
    pub frames: u64,
}

/// How often the screen refreshes while a job runs (spinner, elapsed time); never when idle.
const TICK: Duration = Duration::from_millis(250);

impl<B: Backend, H: Host> Runtime<B, H>
where
    B::Error: Send + Sync + 'static,
{
    pub fn new(
        terminal: Terminal<B>,
        app: App,
        host: H,
        images: Box<dyn ImageView>,
        theme: Theme,
        services: Services,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Runtime {
            terminal,
            app,
            host,
            images,
            theme,
            services: Arc::new(services),
            tx,
            rx,
            cancels: HashMap::new(),
            hold_sweeps: CancellationToken::new(),
            thumbs: None,
            frames: 0,
        }
    }

    /// Where finished thumbnails arrive (the channel given to `Thumbnails::new`).
    pub fn with_thumbnails(mut self, rx: UnboundedReceiver<ThumbnailReady>) -> Self {
        self.thumbs = Some(rx);
        self
    }

    /// A sender for messages from outside (thumbnail workers, tests).
    pub fn sender(&self) -> UnboundedSender<Message> {
        self.tx.clone()
    }

    pub fn draw(&mut self) -> io::Result<()> {
        self.host.begin_frame();
        let (app, images, theme) = (&mut self.app, &mut self.images, &self.theme);
        let result = self
            .terminal
            .draw(|f| {
                view::draw(f, app, images.as_mut(), theme);
                images.end_frame(f.buffer_mut());
            })
            .map(|_| ())
            .map_err(io::Error::other);
        self.host.end_frame();
        self.frames += 1;
        result
    }

    /// Runs until the user quits or the input ends. `input` is called again after the external
    /// editor returns, so a real terminal's reader never competes with the editor for keys.
    pub async fn run<S>(&mut self, mut input: impl FnMut() -> S) -> io::Result<()>
    where
        S: Stream<Item = io::Result<Event>> + Unpin,
    {
        let mut events = input();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let effects = self.app.start();
        self.run_effects(effects);
        // Every pass of the loop follows an event, so it draws once per batch of events and
        // never while nothing happens.
        loop {
            self.draw()?;
            if self.app.wants_quit() {
                break;
            }
            let ticking = self.app.has_active_jobs();
            let mut editor: Option<String> = None;
            tokio::select! {
                biased;
                Some(msg) = self.rx.recv() => {
                    editor = self.handle(msg);
                    // Drain what else is queued, then draw once.
                    while editor.is_none() && let Ok(m) = self.rx.try_recv() {
                        editor = self.handle(m);
                    }
                }
                ev = events.next() => match ev {
                    Some(Ok(ev)) if is_repaint_key(&ev) => self.repaint_screen()?,
                    Some(Ok(ev)) => {
                        match ev {
                            Event::Resize(..) => {
                                self.terminal.autoresize().map_err(io::Error::other)?;
                                self.repaint_all()?;
                            }
                            // Back from another tmux window or application: what is on the screen now is
                            // whatever the multiplexer or terminal kept, without our sixels.
                            Event::FocusGained => self.repaint_screen()?,
                            _ => {}
                        }
                        editor = self.handle(Message::Input(ev));
                    }
                    Some(Err(e)) => return Err(e),
                    None => break,
                },
                Some(ready) = recv_thumb(&mut self.thumbs) => {
                    self.images.accept(ready);
                    while let Some(more) = self.thumbs.as_mut().and_then(|rx| rx.try_recv().ok()) {
                        self.images.accept(more);
                    }
                }
                _ = tick.tick(), if ticking => {}
            }
            if let Some(text) = editor {
                drop(events);
                let result = self.host.edit(&text);
                self.repaint_all()?;
                let effects = self.app.update(Message::EditorClosed(result));
                self.run_effects(effects);
                events = input();
            }
        }
        // Jobs still running are not cancelled: fal keeps working on them, the history has them,
        // and the next start (or `kontext resume`) picks them up.
        Ok(())
    }

    /// Jobs of this session that had not finished when the loop ended: (accepted by fal, not
    /// confirmed by fal).
    pub fn unfinished_jobs(&self) -> (usize, usize) {
        self.app.jobs().unfinished()
    }

    /// Sweeps of this session with points never sent when the loop ended: (sweep id, count).
    pub fn unsent_points(&self) -> Vec<(String, usize)> {
        self.app.jobs().unsent_points()
    }

    /// Makes the next frame repaint every cell (after the editor or a resize left the screen in an
    /// unknown state). Unlike `Terminal::clear` it does not ask the terminal for the cursor
    /// position, a query whose answer could be lost or mixed into the input.
    fn repaint_all(&mut self) -> io::Result<()> {
        self.repaint_screen()?;
        self.images.clear();
        Ok(())
    }

    /// Makes the next frame send every cell and every image again, keeping the encoded thumbnails
    /// (focus-in, Ctrl-L: the screen may show anything, but nothing changed in size).
    fn repaint_screen(&mut self) -> io::Result<()> {
        self.terminal.backend_mut().clear_region(ratatui::backend::ClearType::All).map_err(io::Error::other)?;
        self.terminal.current_buffer_mut().reset();
        self.terminal.swap_buffers();
        self.images.repaint();
        Ok(())
    }

    /// Updates the state; returns the prompt text when the editor must be opened.
    fn handle(&mut self, msg: Message) -> Option<String> {
        if let Message::JobFinished { id, .. } = &msg {
            self.cancels.remove(id);
        }
        let effects = self.app.update(msg);
        let mut editor = None;
        let mut rest = Vec::new();
        for e in effects {
            match e {
                Effect::OpenEditor(text) => editor = Some(text),
                other => rest.push(other),
            }
        }
        self.run_effects(rest);
        editor
    }

    fn run_effects(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Submit { id, input, estimate } => self.spawn_job(id, *input, *estimate),
                Effect::SubmitSweep(launch) => self.spawn_sweep(*launch),
                Effect::HoldSweeps => self.hold_sweeps.cancel(),
                Effect::LoadSpend => self.spawn_store(|h| Ok(Message::SpentToday(h.spent_today()?))),
                Effect::Cancel(id) => {
                    if let Some(t) = self.cancels.get(&id) {
                        t.cancel();
                    }
                }
                Effect::LoadHistory(filter) => self.spawn_store(move |h| {
                    let query = HistoryQuery {
                        search: Some(filter.search.trim().to_string()).filter(|s| !s.is_empty()),
                        state: filter.state,
                        limit: HISTORY_PAGE,
                        before: filter.before.map(Cursor),
                        ..HistoryQuery::default()
                    };
                    let rows = h.list(&query)?.into_iter().map(history_row).collect();
                    Ok(match filter.before {
                        Some(_) => Message::HistoryMore { filter: HistoryFilter { before: None, ..filter }, rows },
                        None => Message::History { filter, rows },
                    })
                }),
                Effect::LoadHistoryDetail { id, purpose } => self.spawn_store(move |h| {
                    let d = h.get(&id)?;
                    let draft = d.to_draft();
                    let outputs = d
                        .outputs
                        .iter()
                        .map(|m| m.saved_path.clone().filter(|p| p.is_file()).unwrap_or_else(|| m.path.clone()))
                        .collect();
                    Ok(Message::HistoryDetail(Box::new(HistoryDetailView {
                        id: d.entry.id.clone(),
                        request_id: d.entry.request_id.clone(),
                        inputs: draft.images.clone(),
                        draft,
                        outputs,
                        endpoint: d.entry.endpoint.clone(),
                        estimated_usd: d.entry.estimated_usd,
                        billed_usd: d.entry.billed_usd,
                        purpose,
                    })))
                }),
                Effect::DeleteHistory(id) => self.spawn_store(move |h| {
                    h.delete(&id)?;
                    Ok(Message::HistoryDeleted(id))
                }),
                Effect::LoadSweep(id) => {
                    self.spawn_store(move |h| Ok(Message::SweepLoaded(Box::new(past_sweep(h, &id)?))))
                }
                Effect::Star { job, history_id, starred } => self.spawn_store(move |h| {
                    let history_id = h.set_starred(&history_id, starred)?;
                    Ok(Message::Starred { job, history_id, starred })
                }),
                Effect::LoadPrompts => self.spawn_store(|h| Ok(Message::Prompts(h.recent_prompts(500)?))),
                Effect::OpenEditor(_) => {}
                Effect::CheckImages { seq, items } => {
                    let tx = self.tx.clone();
                    let threshold = self.services.data_uri_threshold;
                    tokio::task::spawn_blocking(move || {
                        let info = super::panes::images::describe_images(&items, threshold);
                        let _ = tx.send(Message::ImagesChecked { seq, info });
                    });
                }
                Effect::Copy(text) => self.host.copy(&text),
                Effect::OpenPath(path) => {
                    if let Err(e) = self.host.open(&path) {
                        let _ = self.tx.send(Message::Error(e));
                    }
                }
                // The app has already marked itself done; the loop ends after this pass.
                Effect::Quit => {}
            }
        }
    }

    /// Runs a history call off the async threads and reports its answer (or error).
    fn spawn_store(&self, f: impl FnOnce(&History) -> Result<Message, HistoryError> + Send + 'static) {
        let history = self.services.history.clone();
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let msg = f(&history).unwrap_or_else(|e| Message::Error(format!("history: {e}")));
            let _ = tx.send(msg);
        });
    }

    /// Re-attaches requests an earlier process left unfinished (resume after a crash).
    pub fn spawn_resume(&self) {
        let services = self.services.clone();
        let tx = self.tx.clone();
        tokio::spawn(async move {
            let (etx, mut erx) = mpsc::unbounded_channel();
            let drain = tokio::spawn(async move { while erx.recv().await.is_some() {} });
            let report =
                resume_all(&services.client, &services.history, None, services.naming, etx, CancellationToken::new())
                    .await;
            let _ = drain.await;
            match report {
                Ok(r) if r.resumed.is_empty() && r.ambiguous_now.is_empty() && r.other_host.is_empty() => {}
                Ok(r) => {
                    let mut text = format!("resumed {} unfinished request(s) from an earlier session", r.resumed.len());
                    if !r.ambiguous_now.is_empty() {
                        text.push_str(&format!(
                            "; {} submit(s) of uncertain fate were not resent (see History)",
                            r.ambiguous_now.len()
                        ));
                    }
                    if !r.other_host.is_empty() {
                        text.push_str(&format!(
                            "; {} request(s) on another host were left alone (resume them with that host's key)",
                            r.other_host.len()
                        ));
                    }
                    let unrecorded =
                        r.resumed.iter().filter(|o| o.result.as_ref().is_ok_and(|o| !o.unrecorded.is_empty()));
                    let unrecorded = unrecorded.count();
                    if unrecorded > 0 {
                        text.push_str(&format!(
                            "; {unrecorded} finished but the history could not record it (is the disk full?): run `kontext resume` once there is room"
                        ));
                        let _ = tx.send(Message::Error(text));
                    } else {
                        let _ = tx.send(Message::Notice(text));
                    }
                    let _ = tx.send(Message::HistoryChanged);
                }
                Err(e) => {
                    let _ = tx.send(Message::Error(format!("resuming unfinished requests failed: {e}")));
                }
            }
        });
    }

    fn spawn_job(&mut self, id: JobId, input: ValidInput, estimate: Estimate) {
        let token = CancellationToken::new();
        self.cancels.insert(id, token.clone());
        let (services, tx) = (self.services.clone(), self.tx.clone());
        let client = services.client.clone();
        spawn_watched(id, self.tx.clone(), run_one(services, client, tx, id, input, estimate, token, None));
    }

    /// A sweep: its whole plan journaled first (nothing is sent if that fails), then its points
    /// run as single jobs do, at most `concurrency` in flight, behind one shared back-off.
    fn spawn_sweep(&mut self, launch: SweepLaunch) {
        let SweepLaunch { id: sweep_id, axes, points, concurrency } = launch;
        let (jobs, plan): (Vec<JobId>, Vec<Planned>) = points.into_iter().unzip();
        let tokens: Vec<CancellationToken> = jobs
            .iter()
            .map(|id| {
                let token = CancellationToken::new();
                self.cancels.insert(*id, token.clone());
                token
            })
            .collect();
        let (services, tx, hold) = (self.services.clone(), self.tx.clone(), self.hold_sweeps.clone());
        tokio::spawn(async move {
            let record = SweepRecord::of_plan(
                &sweep_id,
                &axes,
                &plan,
                serde_json::json!({"out_dir": services.out_dir, "concurrency": concurrency, "from": "studio"}),
            );
            let history = services.history.clone();
            let kept = tokio::task::spawn_blocking(move || history.record_sweep(&record)).await;
            let not_kept = match kept {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(e) = not_kept {
                let message = format!("sweep {sweep_id}: nothing was sent, its plan could not be journaled ({e})");
                for id in jobs {
                    let outcome = JobFinish::Failed {
                        message: message.clone(),
                        field_errors: Vec::new(),
                        request_id: None,
                        ambiguous: false,
                    };
                    let _ = tx.send(Message::JobFinished { id, outcome: Box::new(outcome) });
                }
                let _ = tx.send(Message::SweepEnded { id: sweep_id, sheets: Err(message) });
                return;
            }
            // One back-off for the whole sweep: a 429 to any point holds them all.
            let client = services.client.with_rate_gate(Arc::new(crate::fal::RateGate::new()));
            let slots = Arc::new(Semaphore::new(concurrency.max(1) as usize));
            let mut running = Vec::new();
            // Slots are handed out in the plan's order (the grid fills from its first cell), each
            // through its point's own turn: a point cancelled while it waits never takes one.
            let mut turns = Vec::new();
            for ((id, planned), token) in jobs.into_iter().zip(plan).zip(tokens) {
                let (turn_tx, turn) = tokio::sync::oneshot::channel::<tokio::sync::OwnedSemaphorePermit>();
                turns.push((token.clone(), turn_tx));
                let (services, client, tx, hold) = (services.clone(), client.clone(), tx.clone(), hold.clone());
                let sweep = Some((sweep_id.clone(), planned.index));
                let point = planned.point.clone();
                running.push((
                    point,
                    tokio::spawn(async move {
                        let permit = tokio::select! {
                            biased;
                            _ = hold.cancelled() => return None,
                            _ = token.cancelled() => None,
                            p = turn => p.ok(),
                        };
                        let Some(_permit) = permit.filter(|_| !token.is_cancelled()) else {
                            // Cancelled before it had a slot: never sent, so `--continue` sends it.
                            let outcome = JobFinish::Cancelled { request_id: None };
                            let _ = tx.send(Message::JobFinished { id, outcome: Box::new(outcome) });
                            return None;
                        };
                        if hold.is_cancelled() {
                            return None;
                        }
                        let _ = tx.send(Message::JobStarted(id));
                        let run =
                            run_one(services, client, tx.clone(), id, planned.input, planned.estimate, token, sweep);
                        spawn_watched(id, tx, run).await.ok().flatten()
                    }),
                ));
            }
            let dispatch_hold = hold.clone();
            tokio::spawn(async move {
                for (token, turn) in turns {
                    let permit = tokio::select! {
                        biased;
                        _ = dispatch_hold.cancelled() => return,
                        _ = token.cancelled() => continue,
                        p = slots.clone().acquire_owned() => match p {
                            Ok(p) => p,
                            Err(_) => return,
                        },
                    };
                    // A point that ended meanwhile drops its permit unused: the slot is free again.
                    let _ = turn.send(permit);
                }
            });
            let mut outputs = Vec::new();
            for (point, task) in running {
                outputs.push((point, task.await.ok().flatten()));
            }
            if hold.is_cancelled() {
                // Quitting: the points never sent stay so in the history.
                return;
            }
            let sheets = if outputs.iter().all(|(_, file)| file.is_none()) {
                Err(format!("sweep {sweep_id}: no request of it gave an image, so no contact sheet"))
            } else {
                let path = services.out_dir.join(format!("{}_sweep_{sweep_id}.png", crate::timefmt::today_utc()));
                tokio::task::spawn_blocking(move || crate::runner::sweep_grid::write_grids(&path, &axes, &outputs))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|written| written)
            };
            let _ = tx.send(Message::SweepEnded { id: sweep_id, sheets });
        });
    }
}

/// Runs `job` as a task; if it panics, says so instead of leaving the job spinning forever.
fn spawn_watched(
    id: JobId,
    tx: UnboundedSender<Message>,
    job: impl Future<Output = Option<PathBuf>> + Send + 'static,
) -> tokio::task::JoinHandle<Option<PathBuf>> {
    let job = tokio::spawn(job);
    tokio::spawn(async move {
        match job.await {
            Ok(first_file) => first_file,
            Err(e) => {
                if e.is_panic() {
                    let outcome = JobFinish::Failed {
                        message: "internal error in kontext (details in the log file); the request is in the history"
                            .into(),
                        field_errors: Vec::new(),
                        request_id: None,
                        ambiguous: false,
                    };
                    let _ = tx.send(Message::JobFinished { id, outcome: Box::new(outcome) });
                }
                None
            }
        }
    })
}

/// One request, journaled (as a point of a sweep when `sweep` says so), its events forwarded
/// as messages and its end reported; returns its first output file.
#[allow(clippy::too_many_arguments)]
async fn run_one(
    services: Arc<Services>,
    client: FalClient,
    tx: UnboundedSender<Message>,
    id: JobId,
    input: ValidInput,
    estimate: Estimate,
    token: CancellationToken,
    sweep: Option<(String, usize)>,
) -> Option<PathBuf> {
    // The draft's endpoint, not only the connection's: the studio's endpoint row picks it.
    let endpoint = match Endpoint::parse(input.endpoint_id()) {
        Ok(e) => e,
        Err(m) => {
            let outcome =
                JobFinish::Failed { message: m, field_errors: Vec::new(), request_id: None, ambiguous: false };
            let _ = tx.send(Message::JobFinished { id, outcome: Box::new(outcome) });
            return None;
        }
    };
    let journal = services.history.journal();
    if let Some((sweep_id, index)) = &sweep {
        journal.set_sweep(sweep_id, *index);
    }
    journal.set_estimate(estimate);
    let _ = tx.send(Message::JobRecorded { id, history_id: journal.short_id() });
    let request = JobRequest {
        naming: services.naming,
        endpoint,
        input,
        out_dir: services.out_dir.clone(),
        data_uri_threshold: services.data_uri_threshold,
        follow: FollowMode::Stream,
        journal: Some(journal.clone()),
    };
    let (etx, mut erx) = mpsc::unbounded_channel();
    let forward = {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(event) = erx.recv().await {
                let _ = tx.send(Message::Job { id, event });
            }
        })
    };
    let result = run_job(&client, request, etx, token).await;
    let _ = forward.await;
    let mut first_file = None;
    let outcome = match result {
        Ok(o) => {
            first_file = o.files.first().map(|f| f.path.clone());
            JobFinish::Done {
                request_id: o.handle.request_id.clone(),
                seed: o.output.seed,
                urls: o.output.images.iter().map(|i| i.url.clone()).collect(),
                files: o.files,
                inference: o.output.inference_seconds(),
                prompt_used: o.output.prompt,
                unrecorded: o.unrecorded,
                billable_units: o.billable_units,
            }
        }
        Err(JobError::Cancelled { handle, .. }) => JobFinish::Cancelled { request_id: handle.map(|h| h.request_id) },
        Err(e) => {
            // As `kontext run` does: a 5xx or a request fal never took costs nothing,
            // a 422 may have been billed — so the ledger and today's spend are right.
            let (billed, note) = e.bill();
            if let Err(err) = journal.record_bill(billed, note) {
                tracing::warn!("history: could not record the cost: {err}");
            }
            let field_errors = e.fal_error().map(|f| f.field_errors()).unwrap_or_default();
            let request_id = match &e {
                JobError::Fal { handle, .. } | JobError::Output { handle, .. } | JobError::Download { handle, .. } => {
                    Some(handle.request_id.clone())
                }
                _ => None,
            };
            let ambiguous = matches!(e, JobError::Submit(crate::fal::SubmitError::Ambiguous(_)));
            let message = match note {
                Some(n) => format!("{e} (cost: {n})"),
                None => e.to_string(),
            };
            JobFinish::Failed { message, field_errors, request_id, ambiguous }
        }
    };
    let _ = tx.send(Message::JobFinished { id, outcome: Box::new(outcome) });
    first_file
}

/// Ctrl-L repaints the whole screen, whatever has the focus (as in most full-screen programs).
fn is_repaint_key(ev: &Event) -> bool {
    use crossterm::event::{KeyCode, KeyEventKind, KeyModifiers};
    matches!(ev, Event::Key(k) if k.code == KeyCode::Char('l')
        && k.modifiers == KeyModifiers::CONTROL
        && k.kind != KeyEventKind::Release)
}

/// The next finished thumbnail, or never when there is no image worker.
async fn recv_thumb(rx: &mut Option<UnboundedReceiver<ThumbnailReady>>) -> Option<ThumbnailReady> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A sweep as the history keeps it: its plan, and what each point's request became. Runs on a
/// blocking thread (it reads the store and looks for the user's copies of the outputs).
fn past_sweep(history: &History, id: &str) -> Result<PastSweep, HistoryError> {
    let record = history.sweep(id)?;
    let mut sent = history.sweep_requests(&record.id)?;
    let points = record
        .points
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let request = sent.iter().position(|r| r.index == index).map(|at| sent.swap_remove(at)).map(|r| {
                let files = r
                    .outputs
                    .iter()
                    .map(|m| SavedImage {
                        index: m.index,
                        path: m.saved_path.clone().filter(|p| p.is_file()).unwrap_or_else(|| m.path.clone()),
                        width: m.width,
                        height: m.height,
                        content_type: m.content_type.clone(),
                        nsfw: false,
                    })
                    .collect();
                PastRequest {
                    history_id: r.entry.id,
                    request_id: r.entry.request_id,
                    state: r.entry.state,
                    error: r.entry.error,
                    seed: r.entry.seed,
                    estimated_usd: r.entry.estimated_usd,
                    billed_usd: r.entry.billed_usd,
                    starred: r.entry.starred,
                    files,
                }
            });
            PastPoint { point: p.point(), endpoint: p.endpoint.clone(), draft: p.draft.clone(), request }
        })
        .collect();
    Ok(PastSweep { axes: record.axis_list(), id: record.id, points })
}

fn history_row(e: HistoryEntry) -> HistoryRow {
    HistoryRow {
        id: e.id,
        request_id: e.request_id,
        state: e.state,
        created_at: e.created_at,
        prompt: e.prompt,
        seed: e.seed,
        outputs: e.num_outputs,
        endpoint: e.endpoint,
        estimated_usd: e.estimated_usd,
        billed_usd: e.billed_usd,
        cursor: e.cursor.0,
        starred: e.starred,
        sweep_id: e.sweep_id,
    }
}
