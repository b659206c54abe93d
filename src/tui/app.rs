//! The router: focus, the overlay layer, dispatch of keys and messages to the panes, and the
//! translation of the panes' events into effects. No I/O here: `update` changes the state and
//! returns `Effect`s for the runtime to carry out.

use std::collections::VecDeque;

use crossterm::event::{Event, KeyEvent, KeyEventKind};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::{Paragraph, Wrap};

use super::action::{Action, is_command_key};
pub use super::context::AppContext;
use super::context::FieldErrors;
use super::cost_line::CostLine;
use super::job_store::{JobStore, JobView, SweepView};
use super::message::{
    DetailPurpose, Effect, HistoryDetailView, JobFinish, JobId, Message, Notice, PastSweep, SweepLaunch,
};
use super::overlay::{Overlay, OverlayOutcome};
pub use super::pane::Pane;
use super::panes::history::HistoryPane;
use super::panes::images::ImagesPane;
use super::panes::jobs::JobsPane;
use super::panes::params::ParamsPane;
use super::panes::prompt::PromptPane;
use super::panes::results::ResultsPane;
use super::panes::status;
use super::panes::{Canvas, Hint, PaneBehaviour, PaneEvent, ResultsSource, Shared};
use super::sweep_dialog::{DialogOutcome, PlanBase, SweepDialog, SweepOrder};
use super::view::theme::Theme;
use super::widgets::{ImageView, MIN_HEIGHT, MIN_WIDTH, layout};
use crate::model::{Draft, Field, FieldError, ValidInput, ValidationErrors};
use crate::runner::JobEvent;
use crate::sanitize::one_line;

pub struct App {
    ctx: AppContext,
    focus: Pane,
    prompt: PromptPane,
    images: ImagesPane,
    params: ParamsPane,
    jobs_pane: JobsPane,
    history: HistoryPane,
    results: ResultsPane,
    jobs: JobStore,
    overlay: Option<Overlay>,
    /// The sweep dialog, while it is open (over the panes, like an overlay).
    sweep_dialog: Option<SweepDialog>,
    /// Problems with the current input, from our validation or mapped from fal's 422.
    errors: FieldErrors,
    notice: Option<Notice>,
    last_seed: Option<u64>,
    /// The next submit's estimate, today's spend, the budget's verdict.
    cost: CostLine,
    quit: bool,
    /// Quit asked while a submit was in flight: quit once fal has confirmed it.
    quit_pending: bool,
}

impl App {
    pub fn new(ctx: AppContext, defaults: &Draft) -> App {
        let schema = ctx.start_schema();
        let mut images = ImagesPane::default();
        images.follow_endpoint(&schema);
        App {
            ctx,
            focus: Pane::Prompt,
            prompt: PromptPane::default(),
            images,
            params: ParamsPane::new(schema, defaults),
            jobs_pane: JobsPane::default(),
            history: HistoryPane::default(),
            results: ResultsPane::default(),
            jobs: JobStore::default(),
            overlay: None,
            sweep_dialog: None,
            errors: FieldErrors::default(),
            notice: None,
            last_seed: None,
            cost: CostLine::default(),
            quit: false,
            quit_pending: false,
        }
    }

    /// Effects to run once at start (history, earlier prompts).
    pub fn start(&mut self) -> Vec<Effect> {
        vec![Effect::LoadHistory(self.history.filter().clone()), Effect::LoadPrompts, Effect::LoadSpend]
    }

    // What the runtime, the views and the tests read.
    pub fn context(&self) -> &AppContext {
        &self.ctx
    }
    pub fn focus(&self) -> Pane {
        self.focus
    }
    pub fn overlay(&self) -> Option<&Overlay> {
        self.overlay.as_ref()
    }
    pub fn sweep_dialog(&self) -> Option<&SweepDialog> {
        self.sweep_dialog.as_ref()
    }
    pub fn notice(&self) -> Option<&Notice> {
        self.notice.as_ref()
    }
    pub fn errors(&self) -> &[FieldError] {
        self.errors.all()
    }
    pub fn jobs(&self) -> &JobStore {
        &self.jobs
    }

    /// The session's jobs, for whatever builds them outside `update` (a sweep's plan; tests and
    /// benches that set up a session).
    pub fn jobs_mut(&mut self) -> &mut JobStore {
        &mut self.jobs
    }

    /// Shows this in the Results pane and focuses it.
    pub fn show_results(&mut self, source: ResultsSource) -> Vec<Effect> {
        self.apply(vec![PaneEvent::Show(source), PaneEvent::Focus(Pane::Results)])
    }
    pub fn prompt(&self) -> &PromptPane {
        &self.prompt
    }
    pub fn images(&self) -> &ImagesPane {
        &self.images
    }
    pub fn params(&self) -> &ParamsPane {
        &self.params
    }
    pub fn jobs_pane(&self) -> &JobsPane {
        &self.jobs_pane
    }
    pub fn history(&self) -> &HistoryPane {
        &self.history
    }
    pub fn results(&self) -> &ResultsPane {
        &self.results
    }
    pub fn cost(&self) -> &CostLine {
        &self.cost
    }
    pub fn last_seed(&self) -> Option<u64> {
        self.last_seed
    }
    pub fn wants_quit(&self) -> bool {
        self.quit
    }
    pub fn has_active_jobs(&self) -> bool {
        self.jobs.has_active()
    }
    pub fn prompt_text(&self) -> String {
        self.prompt.text()
    }

    fn shared(&self) -> Shared<'_> {
        Shared { ctx: &self.ctx, jobs: &self.jobs, errors: &self.errors, cost: &self.cost }
    }

    /// The focused pane, to route a key or a paste to, with what panes may read.
    fn focused_mut(&mut self) -> (&mut dyn PaneBehaviour, Shared<'_>) {
        let shared = Shared { ctx: &self.ctx, jobs: &self.jobs, errors: &self.errors, cost: &self.cost };
        let pane: &mut dyn PaneBehaviour = match self.focus {
            Pane::Prompt => &mut self.prompt,
            Pane::Images => &mut self.images,
            Pane::Params => &mut self.params,
            Pane::Jobs => &mut self.jobs_pane,
            Pane::History => &mut self.history,
            Pane::Results => &mut self.results,
        };
        (pane, shared)
    }

    fn focused(&self) -> &dyn PaneBehaviour {
        match self.focus {
            Pane::Prompt => &self.prompt,
            Pane::Images => &self.images,
            Pane::Params => &self.params,
            Pane::Jobs => &self.jobs_pane,
            Pane::History => &self.history,
            Pane::Results => &self.results,
        }
    }

    /// True while keys are going into a text field, so plain letters are text, not commands.
    pub fn is_editing_text(&self) -> bool {
        if self.sweep_dialog.is_some() {
            return true;
        }
        match self.overlay {
            Some(Overlay::RecallSearch { .. } | Overlay::EndpointPicker { .. }) => true,
            Some(_) => false,
            None => self.focused().is_editing_text(),
        }
    }

    /// The draft the editor describes right now.
    pub fn draft(&self) -> Result<Draft, String> {
        let mut d = Draft { prompt: self.prompt.text(), images: self.images.items().to_vec(), ..Draft::default() };
        self.params.fill(&mut d, self.last_seed)?;
        Ok(d)
    }

    pub fn update(&mut self, msg: Message) -> Vec<Effect> {
        let events = match msg {
            Message::Input(Event::Key(key)) if key.kind != KeyEventKind::Release => self.on_key(&key),
            Message::Input(Event::Paste(text)) => self.on_paste(&text),
            Message::Input(_) | Message::Tick | Message::Redraw => Vec::new(),
            Message::ImagesChecked { seq, info } => self.images.on_checked(seq, info),
            Message::Job { id, event } => {
                // fal has the request and the history has its row: list it, so History shows
                // the job while it runs (not only once it ended).
                let accepted = matches!(event, JobEvent::Submitted { .. });
                self.jobs.on_event(id, event);
                if accepted { vec![PaneEvent::Run(self.history.reload())] } else { Vec::new() }
            }
            Message::JobFinished { id, outcome } => self.on_job_finished(id, *outcome),
            Message::JobStarted(id) => {
                self.jobs.set_started(id);
                Vec::new()
            }
            Message::SweepEnded { id, sheets } => self.on_sweep_ended(&id, sheets),
            Message::JobRecorded { id, history_id } => {
                self.jobs.set_history_id(id, history_id);
                Vec::new()
            }
            Message::History { filter, rows } => {
                self.history.on_listing(filter, rows);
                Vec::new()
            }
            Message::HistoryMore { filter, rows } => {
                self.history.on_more(filter, rows);
                Vec::new()
            }
            Message::HistoryChanged => vec![PaneEvent::Run(self.history.reload())],
            Message::HistoryDeleted(id) => vec![
                Notice::info(format!("deleted history entry {}", one_line(&id))).into(),
                PaneEvent::Run(self.history.reload()),
            ],
            Message::HistoryDetail(detail) => self.on_history_detail(*detail),
            Message::SweepLoaded(past) => self.on_sweep_loaded(*past),
            Message::Starred { job, history_id, starred } => {
                // Starred from the History pane: the session's job of that entry, if any.
                let job = job.or_else(|| {
                    self.jobs.iter().find(|j| j.history_id.as_deref() == Some(history_id.as_str())).map(|j| j.id)
                });
                if let Some(job) = job {
                    self.jobs.set_starred(job, starred);
                }
                let short = one_line(history_id.get(..8).unwrap_or(&history_id));
                let what = if starred { "starred" } else { "unstarred" };
                // The History pane lists the star too: list it again.
                vec![Notice::info(format!("{what} {short}")).into(), PaneEvent::Run(self.history.reload())]
            }
            Message::SpentToday(usd) => {
                self.cost.set_spent_today(usd);
                self.refresh_sweep_dialog();
                Vec::new()
            }
            Message::Prompts(prompts) => {
                self.prompt.add_recall(prompts);
                Vec::new()
            }
            Message::EditorClosed(Ok(text)) => self.prompt.on_editor_closed(&text),
            Message::EditorClosed(Err(e)) => self.report("the external editor", &e),
            Message::Error(e) => self.report("a background task", &e),
            Message::Notice(n) => vec![Notice::info(one_line(&n)).into()],
        };
        let mut effects = self.apply(events);
        // A pending quit goes ahead once no submit is in flight.
        if self.quit_pending && !self.quit && self.jobs.submits_in_flight() == 0 {
            self.quit = true;
            effects.push(Effect::Quit);
        }
        effects
    }

    /// Logs a problem and shows it (one clean line) in the status bar: slumber's `reported`.
    fn report(&self, source: &str, error: &str) -> Vec<PaneEvent> {
        tracing::warn!(source, "{error}");
        vec![Notice::error(one_line(error)).into()]
    }

    fn on_key(&mut self, key: &KeyEvent) -> Vec<PaneEvent> {
        if let Some(dialog) = self.sweep_dialog.take() {
            return self.on_sweep_dialog_key(dialog, key);
        }
        if let Some(overlay) = self.overlay.take() {
            return self.on_overlay_key(overlay, key);
        }
        let action = self.ctx.keymap.lookup(self.focus.scope(), key);
        let editing = self.focused().is_editing_text();
        // In a text field only command keys (chords, F-keys, Tab) are commands.
        let command = action.filter(|_| !editing || is_command_key(key));
        if command.is_some() {
            self.notice = None;
        }
        if let Some(a) = command
            && let Some(events) = self.on_global(a)
        {
            return events;
        }
        let (pane, shared) = self.focused_mut();
        pane.on_key(key, action, shared).unwrap_or_default()
    }

    /// The commands that work in every pane. `None`: not a global command.
    fn on_global(&mut self, action: Action) -> Option<Vec<PaneEvent>> {
        let focus = |p: Pane| Some(vec![PaneEvent::Focus(p)]);
        match action {
            Action::ForceQuit | Action::Quit => Some(self.request_quit()),
            Action::Submit => Some(vec![PaneEvent::Submit]),
            Action::NextPane => focus(self.focus.step(1)),
            Action::PrevPane => focus(self.focus.step(-1)),
            Action::FocusPrompt => focus(Pane::Prompt),
            Action::FocusImages => focus(Pane::Images),
            Action::FocusParams => focus(Pane::Params),
            Action::FocusJobs => focus(Pane::Jobs),
            Action::FocusHistory => focus(Pane::History),
            Action::FocusResults => focus(Pane::Results),
            Action::Help => {
                self.overlay = Some(Overlay::Help { scroll: 0 });
                Some(Vec::new())
            }
            Action::Sweep => {
                self.params.stop_typing();
                self.sweep_dialog = Some(SweepDialog::default());
                self.refresh_sweep_dialog();
                Some(Vec::new())
            }
            _ => None,
        }
    }

    fn on_overlay_key(&mut self, overlay: Overlay, key: &KeyEvent) -> Vec<PaneEvent> {
        if self.ctx.keymap.lookup(self.focus.scope(), key) == Some(Action::ForceQuit) {
            self.overlay = Some(overlay);
            return self.request_quit();
        }
        match overlay.on_key(key, self.prompt.recall()) {
            OverlayOutcome::Open(o) => {
                self.overlay = Some(o);
                Vec::new()
            }
            OverlayOutcome::Closed(events) => events,
        }
    }

    fn on_paste(&mut self, text: &str) -> Vec<PaneEvent> {
        if let Some(dialog) = self.sweep_dialog.as_mut() {
            dialog.paste(text);
            self.refresh_sweep_dialog();
            return Vec::new();
        }
        if self.overlay.is_some() {
            return Vec::new();
        }
        // Terminals (xterm, tmux) paste lines separated by CR.
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        let (pane, shared) = self.focused_mut();
        pane.on_paste(&text, shared)
            .unwrap_or_else(|| vec![Notice::info("paste into the Prompt or Images pane").into()])
    }

    /// Carries out the panes' events (which may raise more) and returns the effects for the runtime.
    fn apply(&mut self, events: Vec<PaneEvent>) -> Vec<Effect> {
        let mut queue: VecDeque<PaneEvent> = events.into();
        let mut effects = Vec::new();
        while let Some(event) = queue.pop_front() {
            let more = match event {
                PaneEvent::Submit => self.submit(),
                PaneEvent::Rerun { draft, endpoint } => {
                    let mut more = self.load_draft(&draft, &endpoint);
                    more.push(PaneEvent::Submit);
                    more
                }
                PaneEvent::Show(source) => {
                    self.results.show(source);
                    Vec::new()
                }
                PaneEvent::Focus(pane) => {
                    self.focus_pane(pane);
                    Vec::new()
                }
                PaneEvent::Notify(notice) => {
                    self.notice = Some(notice);
                    Vec::new()
                }
                PaneEvent::Run(effect) => {
                    effects.push(effect);
                    Vec::new()
                }
                PaneEvent::InputChanged => {
                    self.revalidate();
                    Vec::new()
                }
                PaneEvent::SetPrompt(text) => {
                    self.prompt.set_text(&text);
                    vec![PaneEvent::InputChanged]
                }
                PaneEvent::CancelSweep(id) => self.cancel_sweep(&id, &mut effects),
                PaneEvent::CancelJob(id) => {
                    if self.jobs.request_cancel(id) {
                        effects.push(Effect::Cancel(id));
                    }
                    Vec::new()
                }
                PaneEvent::ConfirmDelete { id, prompt } => {
                    self.overlay = Some(Overlay::ConfirmDelete { id, prompt });
                    Vec::new()
                }
                PaneEvent::RecallSearch => {
                    self.overlay = Some(Overlay::RecallSearch { query: String::new(), selected: 0 });
                    Vec::new()
                }
                PaneEvent::EndpointChanged => {
                    let schema = self.params.schema().clone();
                    self.images.follow_endpoint(&schema);
                    vec![PaneEvent::InputChanged]
                }
                PaneEvent::PickEndpoint(query) => {
                    let endpoints = self
                        .ctx
                        .catalog
                        .iter()
                        .map(|s| (one_line(&s.endpoint_id), super::form::endpoint_short(s)))
                        .collect();
                    self.overlay = Some(Overlay::EndpointPicker { endpoints, query, selected: 0 });
                    Vec::new()
                }
                PaneEvent::SetEndpoint(id) => match self.ctx.catalog.get(&id).cloned() {
                    Some(schema) => {
                        self.params.set_schema(schema);
                        vec![PaneEvent::EndpointChanged]
                    }
                    None => vec![Notice::error(format!("no endpoint {} is known", one_line(&id))).into()],
                },
            };
            queue.extend(more);
        }
        effects
    }

    fn focus_pane(&mut self, pane: Pane) {
        self.params.stop_typing();
        self.focus = pane;
        if pane == Pane::Results
            && *self.results.source() == ResultsSource::Nothing
            && let Some(source) = self.jobs_pane.selected_source(&self.jobs)
        {
            self.results.show(source);
        }
    }

    /// Checks the input again after an edit, so inline errors follow it. Before the first
    /// submit an empty prompt or image list is not worth shouting about.
    fn revalidate(&mut self) {
        let mut valid = None;
        self.errors = FieldErrors::new(match self.draft() {
            Err(m) => vec![FieldError { field: Field::Seed, message: m }],
            Ok(d) => {
                let mut errors: Vec<FieldError> = match d.validate_for(self.params.schema(), |_| Ok(())) {
                    Ok(input) => {
                        valid = Some(input);
                        Vec::new()
                    }
                    Err(e) => e.0.into_iter().filter(|e| !self.is_untouched(e)).collect(),
                };
                // File problems come from the look-up made when the list changed.
                errors.extend(self.images.file_errors());
                errors
            }
        });
        self.cost.follow(&self.ctx, valid.as_ref(), &self.images.sizes());
    }

    fn is_untouched(&self, e: &FieldError) -> bool {
        match e.field {
            Field::Prompt => self.prompt.is_empty(),
            Field::ImageUrls(None) => self.images.items().is_empty(),
            _ => false,
        }
    }

    fn submit(&mut self) -> Vec<PaneEvent> {
        self.params.stop_typing();
        let draft = match self.draft() {
            Ok(d) => d,
            Err(m) => {
                self.errors = FieldErrors::new(vec![FieldError { field: Field::Seed, message: m.clone() }]);
                return vec![Notice::error(m).into(), PaneEvent::Focus(Pane::Params)];
            }
        };
        if self.images.is_checking() {
            return vec![Notice::info("still checking the image files — press submit again in a moment").into()];
        }
        // Local files were checked off the UI task; their problems are kept by the Images pane.
        let file_errors = self.images.file_errors();
        let checked = match (draft.validate_for(self.params.schema(), |_| Ok(())), file_errors.is_empty()) {
            (Ok(v), true) => Ok(v),
            (Ok(_), false) => Err(ValidationErrors(file_errors)),
            (Err(mut e), _) => {
                e.0.extend(file_errors);
                Err(e)
            }
        };
        let input: ValidInput = match checked {
            Ok(v) => v,
            Err(errors) => {
                let first = errors.0[0].clone();
                let notice = Notice::error(format!("not submitted: {} problem(s) — {first}", errors.0.len()));
                let focus = match first.field {
                    Field::Prompt => Pane::Prompt,
                    Field::ImageUrls(_) => Pane::Images,
                    _ => Pane::Params,
                };
                self.errors = FieldErrors::new(errors.0);
                return vec![notice.into(), PaneEvent::Focus(focus)];
            }
        };
        // The budget is checked before anything is sent, as `kontext run` does.
        self.cost.follow(&self.ctx, Some(&input), &self.images.sizes());
        if let Some(refusal) = self.cost.refusal(&self.ctx) {
            return vec![Notice::error(format!("not submitted: {}", one_line(&refusal))).into()];
        }
        let estimate = self.cost.estimate().cloned().expect("followed a valid input");
        self.errors = FieldErrors::default();
        self.prompt.remember(&input.prompt);
        let id = self.jobs.add_estimated(&input, Some(estimate.clone()));
        self.jobs_pane.select_newest();
        self.results.show(ResultsSource::Job(id));
        vec![
            Notice::info(format!("job #{id} submitted")).into(),
            PaneEvent::Run(Effect::Submit { id, input: Box::new(input), estimate: Box::new(estimate) }),
        ]
    }

    /// What the sweep dialog plans from: the editor as it is now.
    fn refresh_sweep_dialog(&mut self) {
        let Some(mut dialog) = self.sweep_dialog.take() else { return };
        let base = PlanBase {
            ctx: &self.ctx,
            draft: self.draft(),
            schema: self.params.schema().clone(),
            sizes: self.images.sizes(),
            file_errors: self.images.file_errors(),
            checking_images: self.images.is_checking(),
            spent_today: self.cost.spent_today(),
        };
        dialog.refresh(&base);
        self.sweep_dialog = Some(dialog);
    }

    fn on_sweep_dialog_key(&mut self, mut dialog: SweepDialog, key: &KeyEvent) -> Vec<PaneEvent> {
        if self.ctx.keymap.lookup(self.focus.scope(), key) == Some(Action::ForceQuit) {
            self.sweep_dialog = Some(dialog);
            return self.request_quit();
        }
        match dialog.on_key(key) {
            DialogOutcome::Open => {
                self.sweep_dialog = Some(dialog);
                self.refresh_sweep_dialog();
                Vec::new()
            }
            DialogOutcome::Cancelled => vec![Notice::info("sweep not sent").into()],
            DialogOutcome::Send(order) => self.start_sweep(order),
        }
    }

    /// Every point becomes a job of the store now (waiting), grouped as one sweep; the runtime
    /// journals the plan, then sends them.
    fn start_sweep(&mut self, order: SweepOrder) -> Vec<PaneEvent> {
        let SweepOrder { axes, plan, total, concurrency } = order;
        let id = crate::model::sweep::new_sweep_id();
        let mut members = Vec::new();
        let mut points = Vec::new();
        for planned in plan {
            let job = self.jobs.add_waiting(&planned.input, Some(planned.estimate.clone()));
            members.push((planned.point.clone(), job));
            points.push((job, planned));
        }
        if let Some((_, first)) = points.first() {
            self.prompt.remember(&first.input.prompt);
        }
        let count = points.len();
        self.jobs.add_sweep(SweepView::new(id.clone(), axes.clone(), members, total));
        self.jobs_pane.select_newest();
        self.results.show(ResultsSource::Sweep(id.clone()));
        let text =
            format!("sweep {id}: {count} request(s), {concurrency} at a time — the Jobs pane shows it as one group");
        vec![
            Notice::info(text).into(),
            PaneEvent::Run(Effect::SubmitSweep(Box::new(SweepLaunch { id, axes, points, concurrency }))),
        ]
    }

    /// Cancels every point still running or waiting; those never sent stay so in the history.
    fn cancel_sweep(&mut self, id: &str, effects: &mut Vec<Effect>) -> Vec<PaneEvent> {
        let Some(sweep) = self.jobs.sweep(id) else { return Vec::new() };
        let members: Vec<JobId> = sweep.points.iter().map(|(_, job)| *job).collect();
        let unsent = self.jobs.unsent_points().into_iter().find(|(s, _)| s == id).map_or(0, |(_, n)| n);
        let mut cancelled = 0;
        for job in members {
            if self.jobs.request_cancel(job) {
                effects.push(Effect::Cancel(job));
                cancelled += 1;
            }
        }
        if cancelled == 0 {
            return vec![Notice::info(format!("sweep {id} has already finished")).into()];
        }
        let mut text = format!("sweep {id}: cancelling {cancelled} request(s)");
        if unsent > 0 {
            text.push_str(&format!("; {unsent} never sent — `kontext sweep --continue {id}` sends them later"));
        }
        vec![Notice::info(one_line(&text)).into()]
    }

    fn on_sweep_ended(&mut self, id: &str, sheets: Result<Vec<std::path::PathBuf>, String>) -> Vec<PaneEvent> {
        let mut events = vec![PaneEvent::Run(self.history.reload()), PaneEvent::Run(Effect::LoadSpend)];
        let Some(sweep) = self.jobs.sweep(id) else { return events };
        let tally = sweep.tally(&self.jobs);
        let mut text = format!("sweep {id} ended: {}/{} done", tally.done, tally.total());
        if tally.failed > 0 {
            text.push_str(&format!(", {} failed", tally.failed));
        }
        if tally.cancelled > 0 {
            text.push_str(&format!(
                ", {} cancelled (`kontext sweep --continue {id}` sends those never sent)",
                tally.cancelled
            ));
        }
        let notice = match sheets {
            Ok(paths) => {
                if let Some(first) = paths.first() {
                    text.push_str(&format!(" · contact sheet {}", first.display()));
                    if paths.len() > 1 {
                        text.push_str(&format!(" (+{} more)", paths.len() - 1));
                    }
                }
                if let Some(sweep) = self.jobs.sweep_mut(id) {
                    sweep.sheets = paths;
                }
                Notice::info(one_line(&text))
            }
            // Why there is no sheet (the plan could not be journaled, no image came) comes first.
            Err(why) => Notice::error(one_line(&format!("{why} · {text}"))),
        };
        events.insert(0, notice.into());
        events
    }

    /// Quits, unless a submit is in flight: then waits for fal's answer (a second request quits).
    fn request_quit(&mut self) -> Vec<PaneEvent> {
        // Sweep points still waiting are not sent any more: `kontext sweep --continue` sends them.
        let unsent: usize = self.jobs.unsent_points().iter().map(|(_, n)| n).sum();
        let hold = (unsent > 0).then_some(PaneEvent::Run(Effect::HoldSweeps));
        let in_flight = self.jobs.submits_in_flight();
        if in_flight == 0 || self.quit_pending {
            self.quit = true;
            return hold.into_iter().chain([PaneEvent::Run(Effect::Quit)]).collect();
        }
        self.quit_pending = true;
        let mut text =
            format!("waiting for {in_flight} submit(s) to reach fal before quitting — Ctrl-Q again quits now");
        if unsent > 0 {
            text.push_str(&format!(
                "; {unsent} sweep request(s) will not be sent (`kontext sweep --continue` sends them)"
            ));
        }
        hold.into_iter().chain([Notice::info(text).into()]).collect()
    }

    fn on_job_finished(&mut self, id: JobId, outcome: JobFinish) -> Vec<PaneEvent> {
        let Some(finished) = self.jobs.finish(id, outcome) else { return Vec::new() };
        if let Some(seed) = finished.seed {
            self.last_seed = Some(seed);
        }
        if !finished.field_errors.is_empty() {
            // fal named fields: show them where the user can fix them.
            self.errors = FieldErrors::new(finished.field_errors);
        }
        vec![finished.notice.into(), PaneEvent::Run(self.history.reload()), PaneEvent::Run(Effect::LoadSpend)]
    }

    /// A past sweep read back from the history: its points become finished jobs of the store,
    /// grouped as a sweep, and Results shows its grid (once: asked again, the same group).
    fn on_sweep_loaded(&mut self, past: PastSweep) -> Vec<PaneEvent> {
        let id = one_line(&past.id);
        if self.jobs.sweep(&id).is_none() {
            let mut members = Vec::new();
            for p in &past.points {
                let endpoint = self.ctx.endpoint_name(&p.endpoint);
                let job = self.jobs.add_past(|job| JobView::past(job, p, &id, endpoint));
                members.push((p.point.clone(), job));
            }
            let estimated = past.points.iter().map(|p| p.request.as_ref().and_then(|r| r.estimated_usd)).sum();
            self.jobs.add_sweep(SweepView::new(id.clone(), past.axes, members, estimated));
        }
        self.results.show(ResultsSource::Sweep(id.clone()));
        let sent = past.points.iter().filter(|p| p.request.is_some()).count();
        let text = format!("sweep {id} from the history: {sent} of {} requests sent", past.points.len());
        vec![Notice::info(text).into(), PaneEvent::Focus(Pane::Results)]
    }

    fn on_history_detail(&mut self, mut detail: HistoryDetailView) -> Vec<PaneEvent> {
        // The stored request id is fal's text: clean before it is shown or copied.
        detail.request_id = detail.request_id.map(|r| one_line(&r));
        match detail.purpose {
            DetailPurpose::Show => {
                self.results.show(ResultsSource::History(Box::new(detail)));
                Vec::new()
            }
            DetailPurpose::Load | DetailPurpose::Rerun => {
                let mut events = self.load_draft(&detail.draft, &detail.endpoint);
                let rerun = detail.purpose == DetailPurpose::Rerun;
                self.results.show_history(detail);
                if rerun {
                    events.push(PaneEvent::Submit);
                } else {
                    events.push(Notice::info("loaded into the editor: change anything, then F5").into());
                    events.push(PaneEvent::Focus(Pane::Prompt));
                }
                events
            }
        }
    }

    /// Puts a whole request into the editor: its endpoint (when the catalog has it), prompt,
    /// images, parameters.
    fn load_draft(&mut self, draft: &Draft, endpoint: &str) -> Vec<PaneEvent> {
        let mut events = Vec::new();
        if let Some(schema) = self.ctx.catalog.get(endpoint).cloned()
            && schema.endpoint_id != self.params.schema().endpoint_id
        {
            self.params.set_schema(schema.clone());
            self.images.follow_endpoint(&schema);
        }
        self.prompt.set_text(&draft.prompt);
        self.params.apply_draft(draft);
        let shared = Shared { ctx: &self.ctx, jobs: &self.jobs, errors: &self.errors, cost: &self.cost };
        events.extend(self.images.set_items(&draft.images, shared));
        events
    }

    /// What the status bar names: the focused pane's keys (its first kept longest), then the
    /// keys that work everywhere, each ranked by how long it stays when the bar is short.
    pub fn hints(&self) -> Vec<Hint> {
        let km = &self.ctx.keymap;
        if self.sweep_dialog.is_some() {
            return vec![
                Hint::fixed("Enter", "enter", None, "send the sweep").ranked(0),
                Hint::fixed("Esc", "esc", None, "cancel").ranked(1),
                Hint::fixed("↑↓/Tab", "down", None, "field").ranked(2),
            ];
        }
        let editing = self.focused().is_editing_text();
        let mut hints: Vec<Hint> = self.focused().hints(self.shared());
        // Cancelling an input (ranked by its pane) stays as long as the pane's first key.
        if let Some(first) = hints.first_mut() {
            first.rank = first.rank.min(1);
        }
        let global = [
            (Action::Help, "help", 0),
            (Action::Submit, "submit", 2),
            (Action::Sweep, "sweep", 6),
            (Action::NextPane, "next pane", 5),
            (Action::ForceQuit, "quit", 3),
        ];
        hints.extend(
            global
                .into_iter()
                .filter_map(|(a, label, rank)| Hint::bound(km, self.focus, a, label, editing).map(|h| h.ranked(rank)))
                .map(|h| match h.action {
                    Some(Action::Submit) => h.with_detail(self.cost.submit_detail(&self.ctx)),
                    _ => h,
                }),
        );
        hints
    }

    /// Draws every pane the layout shows, the status bar and the overlay.
    pub fn draw(&mut self, frame: &mut Frame, images: &mut dyn ImageView, theme: &Theme) {
        let area = frame.area();
        if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
            let msg = format!(
                "terminal too small: {}x{} (need at least {MIN_WIDTH}x{MIN_HEIGHT}) — Ctrl-Q quits",
                area.width, area.height
            );
            frame.render_widget(Paragraph::new(msg).wrap(Wrap { trim: true }), area);
            return;
        }
        let shared = Shared { ctx: &self.ctx, jobs: &self.jobs, errors: &self.errors, cost: &self.cost };
        let param_rows = self.params.values().len() as u16;
        let param_errors = self.params.error_lines(shared).min(4) as u16;
        let areas = layout(area, self.focus, param_rows + 1 + param_errors);
        let hints = self.hints();
        let buf = frame.buffer_mut();
        if let Some(tabs) = areas.tabs {
            status::draw_tabs(buf, tabs, self.focus, theme);
        }
        let shared = Shared { ctx: &self.ctx, jobs: &self.jobs, errors: &self.errors, cost: &self.cost };
        if self.results.is_fullscreen() && self.focus == Pane::Results {
            let full = Rect { height: area.height.saturating_sub(1), ..area };
            self.results.draw_fullscreen(Canvas { buf, area: full, theme, focused: true, images, shared });
        } else {
            let panes: [&mut dyn PaneBehaviour; 6] = [
                &mut self.prompt,
                &mut self.images,
                &mut self.params,
                &mut self.jobs_pane,
                &mut self.results,
                &mut self.history,
            ];
            for pane in panes {
                let id = pane.pane();
                if let Some(r) = areas.of(id) {
                    pane.draw(Canvas { buf, area: r, theme, focused: self.focus == id, images, shared });
                }
            }
        }
        let line = status::StatusLine { notice: self.notice.as_ref(), spent_today: self.cost.spent_today() };
        status::draw(buf, areas.status, line, &hints, &self.ctx, theme);
        if let Some(overlay) = &self.overlay {
            overlay.draw(buf, area, &self.ctx, self.prompt.recall(), theme);
        }
        if let Some(dialog) = &self.sweep_dialog {
            dialog.draw(buf, area, theme);
        }
    }
}
