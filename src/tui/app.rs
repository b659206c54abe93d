//! The whole app state and its one `update`: messages in, state changed, effects out. No I/O here.

use std::path::PathBuf;
use std::time::Instant;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui_textarea::{TextArea, WrapMode};

use super::action::{Action, Keymap};
use super::form::ParamForm;
use super::message::{
    DetailPurpose, Effect, HistoryDetailView, HistoryFilter, HistoryRow, ImageInfo, JobFinish, JobId, Message,
};
pub use super::pane::Pane;
use crate::model::{Draft, Field, FieldError, ImageSource, ValidInput};
use crate::runner::{JobEvent, SavedImage};
use crate::sanitize::{one_line, strip_controls};

/// Settings the app needs but does not change.
#[derive(Debug, Clone)]
pub struct AppContext {
    pub max_images: usize,
    /// What we talk to, for the status bar ("built-in emulator …").
    pub target: String,
    /// Image protocol in use, for the status bar and help.
    pub graphics: String,
    pub keymap: Keymap,
    /// Local files up to this size are sent inline, larger ones uploaded (shown per image).
    pub data_uri_threshold: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobPhase {
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

    pub fn label(&self) -> String {
        match self {
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

/// A job of this session, as the Jobs and Results panes show it.
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
        }
    }
}

#[derive(Debug, Default)]
pub struct ImagesPane {
    pub items: Vec<String>,
    pub selected: usize,
    /// The one-line input while adding an image.
    pub input: Option<String>,
    /// Per item: what it is ("url", "local 3 KB · inline") and a problem with it, looked up
    /// off the UI task when the list changes — never while drawing or typing.
    pub info: Vec<ImageInfo>,
    /// Which version of the list `info` should describe; answers for older ones are dropped.
    pub check_seq: u64,
    /// A look-up of local files is under way.
    pub checking: bool,
}

#[derive(Debug, Default)]
pub struct HistoryPane {
    pub rows: Vec<HistoryRow>,
    pub selected: usize,
    pub filter: HistoryFilter,
    pub searching: bool,
    pub loaded: bool,
    /// No older rows than those loaded.
    pub exhausted: bool,
    pub loading_more: bool,
}

/// What the Results pane shows.
#[derive(Debug, Clone, PartialEq)]
pub enum ResultsSource {
    Nothing,
    Job(JobId),
    History(Box<HistoryDetailView>),
}

#[derive(Debug)]
pub struct ResultsPane {
    pub source: ResultsSource,
    pub selected: usize,
    pub fullscreen: bool,
    pub side_by_side: bool,
}

/// One output image, wherever it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputItem {
    pub path: Option<PathBuf>,
    pub url: Option<String>,
    pub caption: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    Help { scroll: u16 },
    ConfirmDelete { id: String, prompt: String },
    RecallSearch { query: String, selected: usize },
}

pub struct App {
    pub ctx: AppContext,
    pub focus: Pane,
    pub prompt: TextArea<'static>,
    pub recall: Vec<String>,
    recall_pos: Option<usize>,
    recall_stash: Option<String>,
    pub images: ImagesPane,
    pub form: ParamForm,
    /// Problems with the current input, from our validation or mapped from fal's 422.
    pub errors: Vec<FieldError>,
    pub jobs: Vec<JobView>,
    pub job_selected: usize,
    pub history: HistoryPane,
    pub results: ResultsPane,
    pub overlay: Option<Overlay>,
    /// One line for the status bar: (text, is_error).
    pub notice: Option<(String, bool)>,
    pub last_seed: Option<u64>,
    pub quit: bool,
    /// Quit asked while a submit was in flight: quit once fal has confirmed it.
    pub quit_pending: bool,
    next_job: JobId,
    /// Set while the draft changed and errors should be recomputed on the next view.
    dirty_input: bool,
    /// Effects raised deep inside an update, returned with the update's own.
    queued: Vec<Effect>,
}

/// What an image reference is, and what is wrong with it: reads and decodes a local file, so it
/// runs off the UI task for local files (the runtime calls it on a blocking thread).
pub fn describe_image(source: &ImageSource, data_uri_threshold: u64) -> ImageInfo {
    let mut error = crate::model::check_image_source(source).err();
    // A local file is read and decoded whole (within fal's limits), as `kontext run` does, so
    // a damaged file is flagged here and never sent.
    if let (None, ImageSource::Local(p)) = (&error, source) {
        error = crate::runner::check_local_image(p).and_then(|()| crate::runner::check_input_file(p).map(drop)).err();
    }
    let (tag, local_file) = match source {
        ImageSource::Url(_) => ("url".to_string(), None),
        ImageSource::DataUri(d) => (format!("inline {} KB", d.len().div_ceil(1024)), None),
        ImageSource::Local(p) => match std::fs::metadata(p) {
            Ok(m) => {
                let how = if m.len() <= data_uri_threshold { "inline" } else { "upload" };
                (format!("local {} KB · {how}", m.len().div_ceil(1024)), Some(p.clone()))
            }
            Err(_) => ("missing".to_string(), None),
        },
    };
    ImageInfo { tag, error, local_file }
}

/// `describe_image` for a whole list.
pub fn describe_images(items: &[String], data_uri_threshold: u64) -> Vec<ImageInfo> {
    items.iter().map(|t| describe_image(&ImageSource::classify(t), data_uri_threshold)).collect()
}

pub fn new_prompt_editor(text: &str) -> TextArea<'static> {
    let mut t = TextArea::new(text.lines().map(str::to_string).collect());
    t.set_wrap_mode(WrapMode::WordOrGlyph);
    t.set_placeholder_text("Describe the edit, e.g. “Put the little duckling on top of the woman's t-shirt.”");
    t
}

impl App {
    pub fn new(ctx: AppContext, defaults: &Draft) -> App {
        App {
            ctx,
            focus: Pane::Prompt,
            prompt: new_prompt_editor(""),
            recall: Vec::new(),
            recall_pos: None,
            recall_stash: None,
            images: ImagesPane::default(),
            form: ParamForm::from_draft(defaults),
            errors: Vec::new(),
            jobs: Vec::new(),
            job_selected: 0,
            history: HistoryPane::default(),
            results: ResultsPane {
                source: ResultsSource::Nothing,
                selected: 0,
                fullscreen: false,
                side_by_side: false,
            },
            overlay: None,
            notice: None,
            last_seed: None,
            quit: false,
            quit_pending: false,
            next_job: 1,
            dirty_input: false,
            queued: Vec::new(),
        }
    }

    /// Effects to run once at start (history, earlier prompts).
    pub fn start(&mut self) -> Vec<Effect> {
        vec![Effect::LoadHistory(self.history.filter.clone()), Effect::LoadPrompts]
    }

    pub fn has_active_jobs(&self) -> bool {
        self.jobs.iter().any(|j| j.phase.is_active())
    }

    pub fn prompt_text(&self) -> String {
        self.prompt.lines().join("\n")
    }

    /// True while keys are going into a text field, so plain letters are text, not commands.
    pub fn is_editing_text(&self) -> bool {
        match self.overlay {
            Some(Overlay::RecallSearch { .. }) => return true,
            Some(_) => return false,
            None => {}
        }
        match self.focus {
            Pane::Prompt => true,
            Pane::Images => self.images.input.is_some(),
            Pane::Params => self.form.typing,
            Pane::History => self.history.searching,
            _ => false,
        }
    }

    pub fn errors_for(&self, field: Field) -> impl Iterator<Item = &FieldError> {
        self.errors.iter().filter(move |e| match (e.field, field) {
            (Field::ImageUrls(_), Field::ImageUrls(None)) => true,
            (a, b) => a == b,
        })
    }

    /// The draft the form describes right now.
    pub fn draft(&self) -> Result<Draft, String> {
        let mut d = Draft { prompt: self.prompt_text(), images: self.images.items.clone(), ..Draft::default() };
        self.form.fill(&mut d, self.last_seed)?;
        Ok(d)
    }

    /// Re-validates after an edit, so inline errors follow the input (only once it was shown).
    fn revalidate(&mut self) {
        if !self.dirty_input {
            return;
        }
        self.dirty_input = false;
        self.errors = match self.draft() {
            Err(m) => vec![FieldError { field: Field::Seed, message: m }],
            Ok(d) => {
                let mut errors = match d.validate(self.ctx.max_images) {
                    Ok(_) => Vec::new(),
                    // Before the first submit, an empty prompt or list is not worth shouting about.
                    Err(e) => e.0.into_iter().filter(|e| !self.is_untouched(e)).collect(),
                };
                // File problems come from the lookup made when the list changed.
                for (i, info) in self.images.info.iter().enumerate() {
                    if let Some(message) = &info.error {
                        errors.push(FieldError { field: Field::ImageUrls(Some(i)), message: message.clone() });
                    }
                }
                errors
            }
        };
    }

    /// Looks each image up once (size, readable, an image) after the list changed.
    /// The list changed: URLs and data: URIs are described at once; local files are looked up
    /// on a blocking thread (`Effect::CheckImages`) so the UI never waits on the disk.
    fn images_changed(&mut self) {
        self.images.selected = self.images.selected.min(self.images.items.len().saturating_sub(1));
        self.images.check_seq += 1;
        let mut needs_disk = false;
        self.images.info = self
            .images
            .items
            .iter()
            .map(|text| match ImageSource::classify(text) {
                ImageSource::Local(_) => {
                    needs_disk = true;
                    ImageInfo { tag: "checking…".into(), error: None, local_file: None }
                }
                other => describe_image(&other, self.ctx.data_uri_threshold),
            })
            .collect();
        self.images.checking = needs_disk;
        if needs_disk {
            self.queued.push(Effect::CheckImages { seq: self.images.check_seq, items: self.images.items.clone() });
        }
        self.input_changed();
    }

    fn is_untouched(&self, e: &FieldError) -> bool {
        match e.field {
            Field::Prompt => self.prompt.is_empty(),
            Field::ImageUrls(None) => self.images.items.is_empty(),
            _ => false,
        }
    }

    fn input_changed(&mut self) {
        self.dirty_input = true;
        self.revalidate();
    }

    pub fn update(&mut self, msg: Message) -> Vec<Effect> {
        let mut effects = self.update_inner(msg);
        effects.append(&mut self.queued);
        effects
    }

    fn update_inner(&mut self, msg: Message) -> Vec<Effect> {
        match msg {
            Message::ImagesChecked { seq, info } => {
                if seq == self.images.check_seq {
                    self.images.info = info;
                    self.images.checking = false;
                    self.input_changed();
                }
                Vec::new()
            }
            Message::Input(Event::Key(key)) if key.kind != KeyEventKind::Release => self.on_key(key),
            Message::Input(Event::Paste(text)) => {
                self.on_paste(&text);
                Vec::new()
            }
            Message::Input(_) => Vec::new(),
            Message::Job { id, event } => {
                self.on_job_event(id, event);
                self.maybe_finish_quit()
            }
            Message::JobFinished { id, outcome } => {
                let mut effects = self.on_job_finished(id, *outcome);
                effects.extend(self.maybe_finish_quit());
                effects
            }
            Message::HistoryMore { filter, rows } => {
                if filter != self.history.filter {
                    return Vec::new();
                }
                self.history.exhausted = rows.is_empty();
                self.history.loading_more = false;
                self.history.rows.extend(rows);
                Vec::new()
            }
            Message::HistoryChanged => vec![self.reload_history()],
            Message::History { filter, rows } => {
                if filter != self.history.filter {
                    // The answer to a listing the user has since changed.
                    return Vec::new();
                }
                self.history.rows = rows;
                self.history.loaded = true;
                self.history.exhausted = false;
                self.history.loading_more = false;
                self.history.selected = self.history.selected.min(self.history.rows.len().saturating_sub(1));
                Vec::new()
            }
            Message::HistoryDetail(detail) => self.on_history_detail(*detail),
            Message::Prompts(prompts) => {
                for p in prompts {
                    if !self.recall.contains(&p) {
                        self.recall.push(p);
                    }
                }
                Vec::new()
            }
            Message::EditorClosed(Ok(text)) => {
                self.prompt = new_prompt_editor(text.trim_end_matches('\n'));
                self.notice = Some(("prompt updated from the editor".into(), false));
                self.input_changed();
                Vec::new()
            }
            Message::EditorClosed(Err(e)) | Message::Error(e) => {
                self.notice = Some((one_line(&e), true));
                Vec::new()
            }
            Message::Notice(n) => {
                self.notice = Some((one_line(&n), false));
                Vec::new()
            }
            Message::Tick | Message::Redraw => Vec::new(),
        }
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if let Some(overlay) = self.overlay.clone() {
            return self.on_overlay_key(overlay, key);
        }
        let action = self.ctx.keymap.lookup(self.focus.scope(), &key);
        // Commands that work even while typing: they use Ctrl/Alt/F-keys or Tab.
        if let Some(a) = action {
            let always = matches!(
                a,
                Action::ForceQuit
                    | Action::Submit
                    | Action::NextPane
                    | Action::PrevPane
                    | Action::FocusPrompt
                    | Action::FocusImages
                    | Action::FocusParams
                    | Action::FocusJobs
                    | Action::FocusHistory
                    | Action::FocusResults
                    | Action::OpenEditor
                    | Action::RecallOlder
                    | Action::RecallNewer
                    | Action::RecallSearch
            ) && (key.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
                || matches!(key.code, KeyCode::F(_) | KeyCode::Tab | KeyCode::BackTab));
            if always {
                return self.on_action(a);
            }
        }
        if self.is_editing_text() {
            return self.on_text_key(key);
        }
        match action {
            Some(a) => self.on_action(a),
            None => {
                // Typing a number on a numeric parameter edits it.
                if self.focus == Pane::Params
                    && let KeyCode::Char(c) = key.code
                    && self.form.type_char(c)
                {
                    self.input_changed();
                }
                Vec::new()
            }
        }
    }

    /// Keys for whichever text field has the focus.
    fn on_text_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match self.focus {
            Pane::Prompt => {
                match (key.code, ctrl) {
                    (KeyCode::Char('z'), true) => {
                        self.prompt.undo();
                    }
                    (KeyCode::Char('y'), true) => {
                        self.prompt.redo();
                    }
                    (KeyCode::Esc, _) => {
                        self.focus = Pane::Images;
                        return Vec::new();
                    }
                    _ => {
                        self.prompt.input(key);
                    }
                }
                self.recall_pos = None;
                self.input_changed();
            }
            Pane::Images => {
                let Some(input) = self.images.input.as_mut() else { return Vec::new() };
                match key.code {
                    KeyCode::Enter => {
                        let text = std::mem::take(input);
                        self.images.input = None;
                        self.add_images(text.lines());
                    }
                    KeyCode::Esc => self.images.input = None,
                    KeyCode::Backspace => {
                        input.pop();
                    }
                    KeyCode::Char('u') if ctrl => input.clear(),
                    KeyCode::Char(c) if !ctrl => input.push(c),
                    _ => {}
                }
            }
            Pane::Params => match key.code {
                KeyCode::Backspace => {
                    self.form.backspace();
                    self.input_changed();
                }
                KeyCode::Enter | KeyCode::Esc => self.form.typing = false,
                KeyCode::Up => self.form.up(),
                KeyCode::Down => self.form.down(),
                KeyCode::Char(c) if !ctrl && self.form.type_char(c) => self.input_changed(),
                _ => {}
            },
            Pane::History => match key.code {
                KeyCode::Enter => self.history.searching = false,
                KeyCode::Esc => {
                    self.history.searching = false;
                    self.history.filter.search.clear();
                    return vec![self.reload_history()];
                }
                KeyCode::Backspace => {
                    self.history.filter.search.pop();
                    return vec![self.reload_history()];
                }
                KeyCode::Down | KeyCode::Up => {
                    self.history.searching = false;
                    return self.on_action(if key.code == KeyCode::Up { Action::Up } else { Action::Down });
                }
                KeyCode::Char(c) if !ctrl => {
                    self.history.filter.search.push(c);
                    self.history.selected = 0;
                    return vec![self.reload_history()];
                }
                _ => {}
            },
            _ => {}
        }
        Vec::new()
    }

    fn on_overlay_key(&mut self, overlay: Overlay, key: KeyEvent) -> Vec<Effect> {
        let ctrl_q = key.code == KeyCode::Char('q') && key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl_q {
            return self.on_action(Action::ForceQuit);
        }
        match overlay {
            Overlay::Help { scroll } => match key.code {
                KeyCode::Down | KeyCode::Char('j') | KeyCode::PageDown => {
                    self.overlay = Some(Overlay::Help {
                        scroll: scroll.saturating_add(if key.code == KeyCode::PageDown { 10 } else { 1 }),
                    })
                }
                KeyCode::Up | KeyCode::Char('k') | KeyCode::PageUp => {
                    self.overlay = Some(Overlay::Help {
                        scroll: scroll.saturating_sub(if key.code == KeyCode::PageUp { 10 } else { 1 }),
                    })
                }
                _ => self.overlay = None,
            },
            Overlay::ConfirmDelete { id, .. } => {
                self.overlay = None;
                if matches!(key.code, KeyCode::Char('y') | KeyCode::Char('Y')) {
                    self.notice = Some(("deleting…".into(), false));
                    return vec![Effect::DeleteHistory(id)];
                }
                self.notice = Some(("not deleted".into(), false));
            }
            Overlay::RecallSearch { mut query, mut selected } => {
                let matches = self.recall_matches(&query);
                match key.code {
                    KeyCode::Esc => {
                        self.overlay = None;
                        return Vec::new();
                    }
                    KeyCode::Enter => {
                        self.overlay = None;
                        if let Some(p) = matches.get(selected) {
                            self.prompt = new_prompt_editor(&strip_controls(p));
                            self.input_changed();
                        }
                        return Vec::new();
                    }
                    KeyCode::Up => selected = selected.saturating_sub(1),
                    KeyCode::Down => selected = (selected + 1).min(matches.len().saturating_sub(1)),
                    KeyCode::Backspace => {
                        query.pop();
                        selected = 0;
                    }
                    KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                        query.push(c);
                        selected = 0;
                    }
                    _ => {}
                }
                self.overlay = Some(Overlay::RecallSearch { query, selected });
            }
        }
        Vec::new()
    }

    /// Earlier prompts containing every word of `query` (case-insensitive).
    pub fn recall_matches(&self, query: &str) -> Vec<String> {
        let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
        self.recall
            .iter()
            .filter(|p| {
                let lower = p.to_lowercase();
                words.iter().all(|w| lower.contains(w))
            })
            .cloned()
            .collect()
    }

    fn on_action(&mut self, action: Action) -> Vec<Effect> {
        self.notice = None;
        match action {
            Action::ForceQuit => return self.request_quit(),
            Action::Quit => {
                if !self.is_editing_text() {
                    return self.request_quit();
                }
            }
            Action::Submit => return self.submit(),
            Action::NextPane => self.focus_pane(self.focus.step(1)),
            Action::PrevPane => self.focus_pane(self.focus.step(-1)),
            Action::FocusPrompt => self.focus_pane(Pane::Prompt),
            Action::FocusImages => self.focus_pane(Pane::Images),
            Action::FocusParams => self.focus_pane(Pane::Params),
            Action::FocusJobs => self.focus_pane(Pane::Jobs),
            Action::FocusHistory => self.focus_pane(Pane::History),
            Action::FocusResults => self.focus_pane(Pane::Results),
            Action::Help => self.overlay = Some(Overlay::Help { scroll: 0 }),
            Action::Close => {
                if self.results.fullscreen {
                    self.results.fullscreen = false;
                }
            }
            Action::OpenEditor => return vec![Effect::OpenEditor(self.prompt_text())],
            Action::RecallOlder => self.recall_step(1),
            Action::RecallNewer => self.recall_step(-1),
            Action::RecallSearch => self.overlay = Some(Overlay::RecallSearch { query: String::new(), selected: 0 }),
            other => return self.on_pane_action(other),
        }
        Vec::new()
    }

    /// A new listing with the current filter; answers to earlier ones will be ignored.
    fn reload_history(&mut self) -> Effect {
        self.history.filter.seq += 1;
        self.history.filter.before = None;
        Effect::LoadHistory(self.history.filter.clone())
    }

    /// Jobs whose submit may be on its way: quitting now could leave fal with a request nobody
    /// knows the id of.
    pub fn submits_in_flight(&self) -> usize {
        self.jobs.iter().filter(|j| matches!(j.phase, JobPhase::Preparing | JobPhase::Uploading(_))).count()
    }

    /// Quits, unless a submit is in flight: then waits for fal's answer (a second request quits).
    fn request_quit(&mut self) -> Vec<Effect> {
        let in_flight = self.submits_in_flight();
        if in_flight == 0 || self.quit_pending {
            self.quit = true;
            return vec![Effect::Quit];
        }
        self.quit_pending = true;
        self.notice = Some((
            format!("waiting for {in_flight} submit(s) to reach fal before quitting — Ctrl-Q again quits now"),
            false,
        ));
        Vec::new()
    }

    /// After a job update: a pending quit goes ahead once no submit is in flight.
    fn maybe_finish_quit(&mut self) -> Vec<Effect> {
        if self.quit_pending && self.submits_in_flight() == 0 {
            self.quit = true;
            return vec![Effect::Quit];
        }
        Vec::new()
    }

    fn focus_pane(&mut self, pane: Pane) {
        self.form.typing = false;
        self.focus = pane;
        if pane == Pane::Results
            && self.results.source == ResultsSource::Nothing
            && let Some(job) = self.jobs.get(self.job_selected)
        {
            self.results.source = ResultsSource::Job(job.id);
        }
    }

    fn recall_step(&mut self, dir: isize) {
        if self.recall.is_empty() {
            self.notice = Some(("no earlier prompts yet".into(), false));
            return;
        }
        let next = match (self.recall_pos, dir) {
            (None, d) if d > 0 => Some(0),
            (None, _) => None,
            (Some(p), d) if d > 0 => Some((p + 1).min(self.recall.len() - 1)),
            (Some(0), _) => None,
            (Some(p), _) => Some(p - 1),
        };
        if self.recall_pos.is_none() {
            self.recall_stash = Some(self.prompt_text());
        }
        self.recall_pos = next;
        let text = match next {
            Some(p) => strip_controls(&self.recall[p]),
            None => self.recall_stash.take().unwrap_or_default(),
        };
        self.prompt = new_prompt_editor(&text);
        self.input_changed();
    }

    fn on_pane_action(&mut self, action: Action) -> Vec<Effect> {
        match self.focus {
            Pane::Prompt => {}
            Pane::Images => match action {
                Action::Add | Action::Confirm => {
                    if self.images.items.len() >= self.ctx.max_images {
                        self.notice = Some((
                            format!("this endpoint takes at most {} images; remove one first (d)", self.ctx.max_images),
                            true,
                        ));
                    } else {
                        self.images.input = Some(String::new());
                    }
                }
                Action::Delete if !self.images.items.is_empty() => {
                    self.images.items.remove(self.images.selected);
                    self.images.selected = self.images.selected.min(self.images.items.len().saturating_sub(1));
                    self.images_changed();
                }
                Action::Up => self.images.selected = self.images.selected.saturating_sub(1),
                Action::Down => {
                    self.images.selected = (self.images.selected + 1).min(self.images.items.len().saturating_sub(1))
                }
                Action::MoveUp if self.images.selected > 0 => {
                    self.images.items.swap(self.images.selected, self.images.selected - 1);
                    self.images.selected -= 1;
                    self.images_changed();
                }
                Action::MoveDown if self.images.selected + 1 < self.images.items.len() => {
                    self.images.items.swap(self.images.selected, self.images.selected + 1);
                    self.images.selected += 1;
                    self.images_changed();
                }
                _ => {}
            },
            Pane::Params => {
                match action {
                    Action::Up => self.form.up(),
                    Action::Down => self.form.down(),
                    Action::Left => self.form.step(-1, false),
                    Action::Right => self.form.step(1, false),
                    Action::BigLeft => self.form.step(-1, true),
                    Action::BigRight => self.form.step(1, true),
                    Action::Confirm => self.form.activate(),
                    _ => {}
                }
                self.input_changed();
            }
            Pane::Jobs => match action {
                Action::Up => self.select_job(self.job_selected.saturating_sub(1)),
                Action::Down => self.select_job(self.job_selected + 1),
                Action::Cancel => {
                    if let Some(job) = self.jobs.get_mut(self.job_selected) {
                        if job.phase.is_active() {
                            job.phase = JobPhase::CancelRequested;
                            return vec![Effect::Cancel(job.id)];
                        }
                        self.notice = Some(("that job has already finished".into(), false));
                    }
                }
                Action::Confirm => {
                    if let Some(job) = self.jobs.get(self.job_selected) {
                        self.results.source = ResultsSource::Job(job.id);
                        self.results.selected = 0;
                        self.focus = Pane::Results;
                    }
                }
                Action::Rerun => {
                    if let Some(job) = self.jobs.get(self.job_selected).cloned() {
                        // The same request again: its own prompt, images and parameters.
                        self.load_draft(&job.draft);
                        return self.submit();
                    }
                }
                _ => {}
            },
            Pane::History => match action {
                Action::Up => return self.select_history(self.history.selected.saturating_sub(1)),
                Action::Down => return self.select_history(self.history.selected + 1),
                Action::Search => self.history.searching = true,
                Action::CycleFilter => {
                    const STATES: [Option<&str>; 5] =
                        [None, Some("completed"), Some("failed"), Some("cancelled"), Some("in_progress")];
                    let pos =
                        STATES.iter().position(|s| s.map(str::to_string) == self.history.filter.state).unwrap_or(0);
                    self.history.filter.state = STATES[(pos + 1) % STATES.len()].map(str::to_string);
                    self.history.selected = 0;
                    return vec![self.reload_history()];
                }
                Action::Confirm => {
                    if let Some(row) = self.history.rows.get(self.history.selected) {
                        return vec![Effect::LoadHistoryDetail { id: row.id.clone(), purpose: DetailPurpose::Load }];
                    }
                }
                Action::Rerun => {
                    if let Some(row) = self.history.rows.get(self.history.selected) {
                        return vec![Effect::LoadHistoryDetail { id: row.id.clone(), purpose: DetailPurpose::Rerun }];
                    }
                }
                Action::Delete => {
                    if let Some(row) = self.history.rows.get(self.history.selected) {
                        self.overlay =
                            Some(Overlay::ConfirmDelete { id: row.id.clone(), prompt: one_line(&row.prompt) });
                    }
                }
                _ => {}
            },
            Pane::Results => {
                let n = self.result_items().len();
                match action {
                    Action::Left | Action::Up => self.results.selected = self.results.selected.saturating_sub(1),
                    Action::Right | Action::Down => {
                        self.results.selected = (self.results.selected + 1).min(n.saturating_sub(1))
                    }
                    Action::Confirm if n > 0 => self.results.fullscreen = !self.results.fullscreen,
                    Action::ToggleSideBySide => self.results.side_by_side = !self.results.side_by_side,
                    Action::CopyPath => {
                        if let Some(item) = self.result_items().get(self.results.selected) {
                            let text = item
                                .path
                                .as_ref()
                                .map(|p| p.display().to_string())
                                .or_else(|| item.url.clone())
                                .unwrap_or_default();
                            self.notice = Some((format!("copied {text}"), false));
                            return vec![Effect::Copy(text)];
                        }
                    }
                    Action::CopyRequestId => match self.results_request_id() {
                        Some(id) => {
                            self.notice = Some((format!("copied request id {id}"), false));
                            return vec![Effect::Copy(id)];
                        }
                        None => self.notice = Some(("no request id for this entry".into(), false)),
                    },
                    Action::OpenFile => {
                        match self.result_items().get(self.results.selected).and_then(|i| i.path.clone()) {
                            Some(path) => return vec![Effect::OpenPath(path)],
                            None => self.notice = Some(("no local file to open".into(), true)),
                        }
                    }
                    _ => {}
                }
            }
        }
        Vec::new()
    }

    fn select_job(&mut self, index: usize) {
        if self.jobs.is_empty() {
            return;
        }
        self.job_selected = index.min(self.jobs.len() - 1);
        self.results.source = ResultsSource::Job(self.jobs[self.job_selected].id);
        self.results.selected = 0;
    }

    fn select_history(&mut self, index: usize) -> Vec<Effect> {
        if self.history.rows.is_empty() {
            return Vec::new();
        }
        self.history.selected = index.min(self.history.rows.len() - 1);
        let row = &self.history.rows[self.history.selected];
        let mut effects = vec![Effect::LoadHistoryDetail { id: row.id.clone(), purpose: DetailPurpose::Show }];
        // Near the end of what is loaded: fetch the next page (keyset paging in the store).
        let near_end = self.history.selected + 20 >= self.history.rows.len();
        if near_end && !self.history.exhausted && !self.history.loading_more {
            self.history.loading_more = true;
            let before = self.history.rows.last().map(|r| r.cursor);
            effects.push(Effect::LoadHistory(HistoryFilter { before, ..self.history.filter.clone() }));
        }
        effects
    }

    fn add_images<'a>(&mut self, lines: impl Iterator<Item = &'a str>) {
        let mut added = 0;
        let mut refused = 0;
        for line in lines.map(str::trim).filter(|l| !l.is_empty()) {
            // Terminals paste dragged files as quoted or escaped paths.
            let cleaned = line.trim_matches(|c| c == '\'' || c == '"').replace("\\ ", " ");
            if self.images.items.len() >= self.ctx.max_images {
                refused += 1;
                continue;
            }
            self.images.items.push(cleaned);
            added += 1;
        }
        if added > 0 {
            self.images.selected = self.images.items.len() - 1;
        }
        self.images_changed();
        self.notice = match refused {
            0 => None,
            n => Some((format!("this endpoint takes at most {} images: {n} not added", self.ctx.max_images), true)),
        };
        self.input_changed();
    }

    fn on_paste(&mut self, text: &str) {
        if self.overlay.is_some() {
            return;
        }
        // Terminals (xterm, tmux) paste lines separated by CR.
        let text = &text.replace("\r\n", "\n").replace('\r', "\n");
        match self.focus {
            Pane::Images => {
                self.images.input = None;
                self.add_images(text.lines());
            }
            Pane::Prompt => {
                self.prompt.insert_str(strip_controls(text));
                self.input_changed();
            }
            Pane::History if self.history.searching => self.history.filter.search.push_str(&one_line(text)),
            _ => self.notice = Some(("paste into the Prompt or Images pane".into(), false)),
        }
    }

    fn submit(&mut self) -> Vec<Effect> {
        self.form.typing = false;
        let draft = match self.draft() {
            Ok(d) => d,
            Err(m) => {
                self.errors = vec![FieldError { field: Field::Seed, message: m.clone() }];
                self.notice = Some((m, true));
                self.focus = Pane::Params;
                return Vec::new();
            }
        };
        if self.images.checking {
            self.notice = Some(("still checking the image files — press submit again in a moment".into(), false));
            return Vec::new();
        }
        // Local files were checked off the UI task; their problems are in `images.info`.
        let file_errors: Vec<FieldError> = self
            .images
            .info
            .iter()
            .enumerate()
            .filter_map(|(i, info)| {
                info.error.clone().map(|message| FieldError { field: Field::ImageUrls(Some(i)), message })
            })
            .collect();
        let checked = match (draft.validate(self.ctx.max_images), file_errors.is_empty()) {
            (Ok(v), true) => Ok(v),
            (Ok(_), false) => Err(crate::model::ValidationErrors(file_errors)),
            (Err(mut e), _) => {
                e.0.extend(file_errors);
                Err(e)
            }
        };
        let input: ValidInput = match checked {
            Ok(v) => v,
            Err(errors) => {
                let first = errors.0[0].clone();
                self.notice = Some((format!("not submitted: {} problem(s) — {first}", errors.0.len()), true));
                self.focus = match first.field {
                    Field::Prompt => Pane::Prompt,
                    Field::ImageUrls(_) => Pane::Images,
                    _ => Pane::Params,
                };
                self.errors = errors.0;
                return Vec::new();
            }
        };
        self.errors.clear();
        let id = self.next_job;
        self.next_job += 1;
        let prompt = input.prompt.clone();
        if !self.recall.contains(&prompt) {
            self.recall.insert(0, prompt.clone());
        }
        self.jobs.insert(0, JobView::new(id, &input));
        self.job_selected = 0;
        self.results.source = ResultsSource::Job(id);
        self.results.selected = 0;
        self.notice = Some((format!("job #{id} submitted"), false));
        vec![Effect::Submit { id, input: Box::new(input) }]
    }

    fn job_mut(&mut self, id: JobId) -> Option<&mut JobView> {
        self.jobs.iter_mut().find(|j| j.id == id)
    }

    fn on_job_event(&mut self, id: JobId, event: JobEvent) {
        let Some(job) = self.job_mut(id) else { return };
        let cancel_pending = job.phase == JobPhase::CancelRequested;
        let phase = match event {
            JobEvent::Uploading { index, .. } => Some(JobPhase::Uploading(index)),
            JobEvent::Uploaded { .. } => None,
            // Server text is made one clean line here, where it enters, so every pane, the
            // clipboard copy and the status bar show the same safe text.
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
            JobEvent::Saved { .. } => None,
            JobEvent::CancelRequested { outcome } => {
                job.logs.push(format!("[kontext] cancel: {outcome:?}"));
                Some(JobPhase::CancelRequested)
            }
        };
        if let Some(p) = phase
            && !(cancel_pending && p != JobPhase::CancelRequested && p != JobPhase::Fetching)
        {
            job.phase = p;
        }
    }

    fn on_job_finished(&mut self, id: JobId, finish: JobFinish) -> Vec<Effect> {
        let Some(job) = self.job_mut(id) else { return Vec::new() };
        job.ended = Some(Instant::now());
        let notice;
        let mut field_errors = Vec::new();
        match finish {
            JobFinish::Done { request_id, seed, files, urls, prompt_used, inference, unrecorded } => {
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
                if one_line(&prompt_used) != one_line(&job.prompt) {
                    job.logs.push(format!("[kontext] fal used the prompt: {}", one_line(&prompt_used)));
                }
                job.request_id = Some(one_line(&request_id));
                job.seed = Some(seed);
                job.files = files;
                job.urls = urls;
                job.phase = JobPhase::Completed;
                notice = if unrecorded.is_empty() {
                    (format!("job #{id} done: {} image(s), seed {seed}", job.files.len()), false)
                } else {
                    let missed: Vec<String> = unrecorded.iter().map(|u| u.what.clone()).collect();
                    let text = format!(
                        "job #{id}: images saved, but the history could not record {} ({}) — request {}; run `kontext resume` once there is room on the disk",
                        missed.join(", "),
                        one_line(&unrecorded[0].error),
                        one_line(job.request_id.as_deref().unwrap_or("?"))
                    );
                    job.logs.push(format!("[kontext] {text}"));
                    (text, true)
                };
                self.last_seed = Some(seed);
            }
            JobFinish::Failed { message, field_errors: fe, request_id, ambiguous } => {
                if let Some(r) = request_id {
                    job.request_id = Some(one_line(&r));
                }
                let message = one_line(&message);
                job.logs.push(format!("[kontext] {message}"));
                job.phase = JobPhase::Failed(message.clone());
                notice = (
                    if ambiguous {
                        format!("job #{id}: submit uncertain — {message}")
                    } else {
                        format!("job #{id} failed: {message}")
                    },
                    true,
                );
                field_errors =
                    fe.into_iter().map(|e| FieldError { message: one_line(&e.message), ..e }).collect::<Vec<_>>();
            }
            JobFinish::Cancelled { request_id } => {
                if let Some(r) = request_id {
                    job.request_id = Some(one_line(&r));
                }
                job.phase = JobPhase::Cancelled;
                notice = (format!("job #{id} cancelled"), false);
            }
        }
        self.notice = Some(notice);
        if !field_errors.is_empty() {
            // fal named fields: show them where the user can fix them.
            self.errors = field_errors;
        }
        vec![self.reload_history()]
    }

    fn on_history_detail(&mut self, mut detail: HistoryDetailView) -> Vec<Effect> {
        // The stored request id is fal's text: clean before it is shown or copied.
        detail.request_id = detail.request_id.map(|r| one_line(&r));
        match detail.purpose {
            DetailPurpose::Show => {
                self.results.source = ResultsSource::History(Box::new(detail));
                self.results.selected = 0;
                Vec::new()
            }
            DetailPurpose::Load | DetailPurpose::Rerun => {
                self.load_draft(&detail.draft);
                self.results.source = ResultsSource::History(Box::new(detail.clone()));
                if detail.purpose == DetailPurpose::Rerun {
                    return self.submit();
                }
                self.notice = Some(("loaded into the editor: change anything, then F5".into(), false));
                self.focus = Pane::Prompt;
                Vec::new()
            }
        }
    }

    /// Puts a whole request into the editor: prompt, images, parameters.
    fn load_draft(&mut self, draft: &Draft) {
        // Stored text goes through the same sanitising as anything from outside.
        self.prompt = new_prompt_editor(&strip_controls(&draft.prompt));
        self.images.items = draft.images.iter().map(|i| one_line(i)).collect();
        self.images.selected = 0;
        self.form.apply_draft(draft);
        self.images_changed();
    }

    /// The outputs the Results pane shows.
    pub fn result_items(&self) -> Vec<OutputItem> {
        match &self.results.source {
            ResultsSource::Nothing => Vec::new(),
            ResultsSource::Job(id) => match self.jobs.iter().find(|j| j.id == *id) {
                Some(job) => job
                    .files
                    .iter()
                    .map(|f| OutputItem {
                        path: Some(f.path.clone()),
                        url: job.urls.get(f.index).filter(|u| !u.starts_with("data:")).cloned(),
                        caption: format!(
                            "#{} {}x{}{}",
                            f.index + 1,
                            f.width,
                            f.height,
                            if f.nsfw { " NSFW" } else { "" }
                        ),
                    })
                    .collect(),
                None => Vec::new(),
            },
            ResultsSource::History(d) => d
                .outputs
                .iter()
                .enumerate()
                .map(|(i, p)| OutputItem { path: Some(p.clone()), url: None, caption: format!("#{}", i + 1) })
                .collect(),
        }
    }

    /// Input images of what the Results pane shows (for side by side).
    pub fn result_inputs(&self) -> Vec<String> {
        match &self.results.source {
            ResultsSource::Nothing => Vec::new(),
            ResultsSource::Job(id) => {
                self.jobs.iter().find(|j| j.id == *id).map(|j| j.inputs.clone()).unwrap_or_default()
            }
            ResultsSource::History(d) => d.inputs.clone(),
        }
    }

    pub fn results_request_id(&self) -> Option<String> {
        match &self.results.source {
            ResultsSource::Nothing => None,
            ResultsSource::Job(id) => self.jobs.iter().find(|j| j.id == *id).and_then(|j| j.request_id.clone()),
            ResultsSource::History(d) => d.request_id.clone(),
        }
    }
}
