//! The six panes and the status bar. Each pane owns its state (private fields), handles the keys
//! it knows, reacts to the messages the app hands it, and draws itself from its own state plus
//! the few shared things in [`Shared`]. What a pane cannot do itself it returns as a
//! [`PaneEvent`] for the app to route: panes never reach into each other.

pub mod history;
pub mod images;
pub mod jobs;
pub mod params;
pub mod prompt;
pub mod results;
pub mod status;

#[cfg(test)]
pub(crate) mod harness;

use crossterm::event::KeyEvent;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use super::action::{Action, KeyCombo, Keymap};
use super::context::{AppContext, FieldErrors};
use super::job_store::JobStore;
use super::message::{Effect, HistoryDetailView, JobId, Notice};
use super::pane::Pane;
use super::view::theme::Theme;
use super::widgets::ImageView;
use crate::model::Draft;

/// What a pane asks of the app (or of another pane, through the app).
#[derive(Debug)]
pub enum PaneEvent {
    /// Submit what the editor holds.
    Submit,
    /// Put this request into the editor and submit it (re-run).
    Rerun {
        draft: Draft,
        endpoint: String,
    },
    /// Show this in the Results pane.
    Show(ResultsSource),
    Focus(Pane),
    Notify(Notice),
    /// Something for the runtime to do.
    Run(Effect),
    /// The prompt, images or parameters changed: check the input again.
    InputChanged,
    /// Replace the prompt's text (a recalled prompt).
    SetPrompt(String),
    /// Ask fal to cancel this job.
    CancelJob(JobId),
    /// Cancel every point of this sweep still running or waiting.
    CancelSweep(String),
    /// Ask before deleting a history entry.
    ConfirmDelete {
        id: String,
        prompt: String,
    },
    /// Open the prompt-recall search.
    RecallSearch,
    /// The Parameters pane switched to another endpoint: the image list's limit and the
    /// estimate follow it.
    EndpointChanged,
    /// Open the endpoint list, filtered by this text.
    PickEndpoint(String),
    /// Switch the form to this endpoint (chosen from the list).
    SetEndpoint(String),
}

/// What the Results pane shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ResultsSource {
    #[default]
    Nothing,
    Job(JobId),
    /// A sweep of this session (its id): its points' outputs.
    Sweep(String),
    History(Box<HistoryDetailView>),
}

/// What a pane may read: the session's settings, the jobs, the input's problems, and what the
/// next submit would cost.
#[derive(Clone, Copy)]
pub struct Shared<'a> {
    pub ctx: &'a AppContext,
    pub jobs: &'a JobStore,
    pub errors: &'a FieldErrors,
    pub cost: &'a super::cost_line::CostLine,
}

impl Shared<'_> {
    pub fn keymap(&self) -> &Keymap {
        &self.ctx.keymap
    }
}

/// What a pane draws with besides its own state.
pub struct Canvas<'a, 'b> {
    pub buf: &'a mut Buffer,
    pub area: Rect,
    pub theme: &'a Theme,
    pub focused: bool,
    pub images: &'a mut dyn ImageView,
    pub shared: Shared<'b>,
}

/// A key the status bar names, and what it does: data, so a test can press every key a hint
/// bar shows and check that the named action happens.
#[derive(Debug, Clone, PartialEq)]
pub struct Hint {
    /// As shown ("F5", "Shift-↑↓", "0-9").
    pub keys: String,
    pub label: &'static str,
    /// The key a test presses to try it.
    pub press: KeyCombo,
    /// What it does: the keymap's action, or the action a text field's fixed key stands for;
    /// `None` for typing itself ("0-9 type").
    pub action: Option<Action>,
    /// How long it stays when the status bar is short: lower stays longer (help is 0).
    pub rank: u8,
    /// What the key would do now, shown after the label (the submit's estimate, or why the
    /// budget refuses it).
    pub detail: Option<String>,
}

impl Hint {
    /// The first key bound to `action` where the pane is (text fields: a command key only);
    /// `None` when nothing binds it there, so a hint is never shown for a key that does not work.
    pub fn bound(km: &Keymap, pane: Pane, action: Action, label: &'static str, in_text: bool) -> Option<Hint> {
        km.first_key(pane.scope(), action, in_text).map(|press| Hint {
            keys: press.to_string(),
            label,
            press,
            action: Some(action),
            rank: Hint::DEFAULT_RANK,
            detail: None,
        })
    }

    /// A key a pane handles itself (Enter and Esc in a text field), or a group shown as one.
    pub fn fixed(keys: &str, press: &str, action: Option<Action>, label: &'static str) -> Hint {
        let press = KeyCombo::parse(press).expect("a valid key in the source");
        Hint { keys: keys.to_string(), label, press, action, rank: Hint::DEFAULT_RANK, detail: None }
    }

    /// The rank of a pane's hints after its first.
    pub const DEFAULT_RANK: u8 = 4;

    pub fn ranked(self, rank: u8) -> Hint {
        Hint { rank, ..self }
    }

    pub fn with_detail(self, detail: Option<String>) -> Hint {
        Hint { detail, ..self }
    }
}

/// What every pane does, so the app can route to whichever has the focus.
pub trait PaneBehaviour {
    /// Which pane this is (its key scope and title).
    fn pane(&self) -> Pane;

    /// True while keys go into a text field here, so plain letters are text, not commands.
    fn is_editing_text(&self) -> bool {
        false
    }

    /// A key press (and the action the keymap gives it here). `None`: not this pane's; the app
    /// handles it (global commands) or drops it.
    fn on_key(&mut self, key: &KeyEvent, action: Option<Action>, shared: Shared) -> Option<Vec<PaneEvent>>;

    /// Pasted text. `None`: this pane takes no paste.
    fn on_paste(&mut self, _text: &str, _shared: Shared) -> Option<Vec<PaneEvent>> {
        None
    }

    /// The keys worth naming in the status bar while this pane has the focus, most useful first.
    fn hints(&self, shared: Shared) -> Vec<Hint>;

    fn draw(&mut self, canvas: Canvas);
}
