//! A small harness for a pane's unit tests: press keys, type text, render — one pane, no app.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::{Canvas, PaneBehaviour, PaneEvent, Shared};
use crate::tui::action::{KeyCombo, Keymap};
use crate::tui::context::{AppContext, FieldErrors};
use crate::tui::job_store::JobStore;
use crate::tui::view::theme::Theme;
use crate::tui::widgets::NoImages;

pub(crate) struct Harness {
    pub ctx: AppContext,
    pub jobs: JobStore,
    pub errors: FieldErrors,
    pub cost: crate::tui::cost_line::CostLine,
}

impl Harness {
    pub fn new() -> Harness {
        Harness {
            ctx: AppContext { graphics: "halfblocks".into(), ..AppContext::new(Keymap::default()) },
            jobs: JobStore::default(),
            errors: FieldErrors::default(),
            cost: Default::default(),
        }
    }

    pub fn shared(&self) -> Shared<'_> {
        Shared { ctx: &self.ctx, jobs: &self.jobs, errors: &self.errors, cost: &self.cost }
    }

    /// Presses a key written as in the config ("a", "shift-up", "enter", "ctrl-r").
    pub fn press(&self, pane: &mut dyn PaneBehaviour, key: &str) -> Option<Vec<PaneEvent>> {
        let event = KeyCombo::parse(key).expect("a key").to_event();
        self.press_event(pane, event)
    }

    pub fn press_event(&self, pane: &mut dyn PaneBehaviour, event: KeyEvent) -> Option<Vec<PaneEvent>> {
        let action = self.ctx.keymap.lookup(pane.pane().scope(), &event);
        pane.on_key(&event, action, self.shared())
    }

    /// Types each character as a plain key press; returns every event raised.
    pub fn type_text(&self, pane: &mut dyn PaneBehaviour, text: &str) -> Vec<PaneEvent> {
        let mut events = Vec::new();
        for c in text.chars() {
            let event = KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
            events.extend(self.press_event(pane, event).unwrap_or_default());
        }
        events
    }

    /// The pane alone, focused, in a `w` x `h` screen (monochrome), as text.
    pub fn render(&self, pane: &mut dyn PaneBehaviour, w: u16, h: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).expect("test backend");
        let theme = Theme::MONO;
        terminal
            .draw(|f| {
                let area = f.area();
                pane.draw(Canvas {
                    buf: f.buffer_mut(),
                    area,
                    theme: &theme,
                    focused: true,
                    images: &mut NoImages,
                    shared: self.shared(),
                })
            })
            .expect("draw");
        terminal.backend().to_string()
    }
}
