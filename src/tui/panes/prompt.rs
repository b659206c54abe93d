//! Prompt pane: the multi-line editor (ratatui-textarea) with its inline error, the external
//! editor, and recall of earlier prompts (step through them, or search them in an overlay).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget};
use ratatui_textarea::{TextArea, WrapMode};

use super::{Canvas, Hint, PaneBehaviour, PaneEvent, Shared};
use crate::model::Field;
use crate::sanitize::strip_controls;
use crate::tui::action::{Action, is_command_key};
use crate::tui::message::{Effect, Notice};
use crate::tui::pane::Pane;
use crate::tui::widgets::{clip, pane_block};

pub struct PromptPane {
    editor: TextArea<'static>,
    /// Earlier prompts, newest first (this session's and the history's).
    recall: Vec<String>,
    /// Where Ctrl-Up/Down is in `recall`; `None` while editing the draft.
    recall_pos: Option<usize>,
    /// The draft as it was before recall started, given back at the end of the walk.
    recall_stash: Option<String>,
}

impl Default for PromptPane {
    fn default() -> PromptPane {
        PromptPane { editor: new_editor(""), recall: Vec::new(), recall_pos: None, recall_stash: None }
    }
}

fn new_editor(text: &str) -> TextArea<'static> {
    let mut t = TextArea::new(text.lines().map(str::to_string).collect());
    t.set_wrap_mode(WrapMode::WordOrGlyph);
    t.set_placeholder_text("Describe the edit, e.g. “Put the little duckling on top of the woman's t-shirt.”");
    t
}

impl PromptPane {
    pub fn text(&self) -> String {
        self.editor.lines().join("\n")
    }

    pub fn is_empty(&self) -> bool {
        self.editor.is_empty()
    }

    /// Replaces the text; text from outside (history, an editor, recall) is stripped of controls.
    pub fn set_text(&mut self, text: &str) {
        self.editor = new_editor(&strip_controls(text));
    }

    /// The external editor returned this text.
    pub fn on_editor_closed(&mut self, text: &str) -> Vec<PaneEvent> {
        self.set_text(text.trim_end_matches('\n'));
        vec![Notice::info("prompt updated from the editor").into(), PaneEvent::InputChanged]
    }

    /// Earlier prompts from the history (newest first), after this session's.
    pub fn add_recall(&mut self, prompts: Vec<String>) {
        for p in prompts {
            if !self.recall.contains(&p) {
                self.recall.push(p);
            }
        }
    }

    /// A prompt just submitted becomes the newest to recall.
    pub fn remember(&mut self, prompt: &str) {
        if !self.recall.iter().any(|p| p == prompt) {
            self.recall.insert(0, prompt.to_string());
        }
    }

    pub fn recall(&self) -> &[String] {
        &self.recall
    }

    fn recall_step(&mut self, dir: isize) -> Vec<PaneEvent> {
        if self.recall.is_empty() {
            return vec![Notice::info("no earlier prompts yet").into()];
        }
        let next = match (self.recall_pos, dir) {
            (None, d) if d > 0 => Some(0),
            (None, _) => None,
            (Some(p), d) if d > 0 => Some((p + 1).min(self.recall.len() - 1)),
            (Some(0), _) => None,
            (Some(p), _) => Some(p - 1),
        };
        if self.recall_pos.is_none() {
            self.recall_stash = Some(self.text());
        }
        self.recall_pos = next;
        let text = match next {
            Some(p) => self.recall[p].clone(),
            None => self.recall_stash.take().unwrap_or_default(),
        };
        self.set_text(&text);
        vec![PaneEvent::InputChanged]
    }
}

impl From<Notice> for PaneEvent {
    fn from(n: Notice) -> PaneEvent {
        PaneEvent::Notify(n)
    }
}

impl PaneBehaviour for PromptPane {
    fn pane(&self) -> Pane {
        Pane::Prompt
    }

    fn is_editing_text(&self) -> bool {
        true
    }

    fn on_key(&mut self, key: &KeyEvent, action: Option<Action>, _shared: Shared) -> Option<Vec<PaneEvent>> {
        // The editor's own commands are chords; plain keys are text.
        if is_command_key(key) {
            match action {
                Some(Action::OpenEditor) => return Some(vec![PaneEvent::Run(Effect::OpenEditor(self.text()))]),
                Some(Action::RecallOlder) => return Some(self.recall_step(1)),
                Some(Action::RecallNewer) => return Some(self.recall_step(-1)),
                Some(Action::RecallSearch) => return Some(vec![PaneEvent::RecallSearch]),
                _ => {}
            }
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match (key.code, ctrl) {
            (KeyCode::Char('z'), true) => {
                self.editor.undo();
            }
            (KeyCode::Char('y'), true) => {
                self.editor.redo();
            }
            // Esc leaves the editor; the help says where the focus goes.
            (KeyCode::Esc, _) => return Some(vec![PaneEvent::Focus(Pane::Images)]),
            _ => {
                self.editor.input(*key);
            }
        }
        self.recall_pos = None;
        Some(vec![PaneEvent::InputChanged])
    }

    fn on_paste(&mut self, text: &str, _shared: Shared) -> Option<Vec<PaneEvent>> {
        self.editor.insert_str(strip_controls(text));
        Some(vec![PaneEvent::InputChanged])
    }

    fn hints(&self, shared: Shared) -> Vec<Hint> {
        let km = shared.keymap();
        [(Action::OpenEditor, "editor"), (Action::RecallSearch, "recall")]
            .into_iter()
            .filter_map(|(a, label)| Hint::bound(km, Pane::Prompt, a, label, true))
            .collect()
    }

    fn draw(&mut self, c: Canvas) {
        let errors: Vec<String> = c.shared.errors.of(Field::Prompt).map(|e| e.message.clone()).collect();
        let chars = self.text().chars().count();
        let block = pane_block(Pane::Prompt, c.focused, format!("{chars} chars"), c.theme);
        let inner = block.inner(c.area);
        block.render(c.area, c.buf);
        let err_h = if errors.is_empty() { 0 } else { 1 };
        let [text_area, err_area] = Layout::vertical([Constraint::Min(1), Constraint::Length(err_h)]).areas(inner);
        self.editor.set_cursor_line_style(Style::default());
        // Only the focused editor shows a cursor.
        self.editor.set_cursor_style(if c.focused {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default()
        });
        (&self.editor).render(text_area, c.buf);
        if let Some(e) = errors.first() {
            Paragraph::new(Line::styled(clip(&format!("✗ {e}"), err_area.width as usize), c.theme.error()))
                .render(err_area, c.buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::panes::harness::Harness;

    #[test]
    fn plain_keys_are_text_and_chords_are_commands() {
        let h = Harness::new();
        let mut p = PromptPane::default();
        h.type_text(&mut p, "q? jk");
        assert_eq!(p.text(), "q? jk", "letters that are commands elsewhere are text here");
        let events = h.press(&mut p, "ctrl-e").unwrap();
        assert!(matches!(events.as_slice(), [PaneEvent::Run(Effect::OpenEditor(t))] if t == "q? jk"));
        assert!(matches!(h.press(&mut p, "ctrl-r").unwrap().as_slice(), [PaneEvent::RecallSearch]));
        h.press(&mut p, "ctrl-z");
        assert_eq!(p.text(), "q? j");
    }

    #[test]
    fn esc_leaves_the_editor_for_the_images() {
        let h = Harness::new();
        let mut p = PromptPane::default();
        assert!(matches!(h.press(&mut p, "esc").unwrap().as_slice(), [PaneEvent::Focus(Pane::Images)]));
    }

    #[test]
    fn recall_walks_back_and_gives_the_draft_back() {
        let h = Harness::new();
        let mut p = PromptPane::default();
        p.add_recall(vec!["newest".into(), "older".into(), "newest".into()]);
        assert_eq!(p.recall(), ["newest", "older"], "no duplicates");
        h.type_text(&mut p, "draft");
        h.press(&mut p, "ctrl-up");
        h.press(&mut p, "ctrl-up");
        h.press(&mut p, "ctrl-up");
        assert_eq!(p.text(), "older", "stops at the oldest");
        h.press(&mut p, "ctrl-down");
        h.press(&mut p, "ctrl-down");
        assert_eq!(p.text(), "draft");
    }

    #[test]
    fn pasted_and_loaded_text_loses_its_escape_sequences() {
        let h = Harness::new();
        let mut p = PromptPane::default();
        p.on_paste("a\u{1b}[31mb", h.shared());
        assert_eq!(p.text(), "ab");
        p.set_text("evil \u{1b}]52;c;Zm9v\u{7}prompt");
        assert_eq!(p.text(), "evil prompt");
    }

    #[test]
    fn draws_its_length_and_the_first_error() {
        let mut h = Harness::new();
        h.errors = crate::tui::context::FieldErrors::new(vec![crate::model::FieldError {
            field: Field::Prompt,
            message: "prompt must not be empty".into(),
        }]);
        let mut p = PromptPane::default();
        let screen = h.render(&mut p, 50, 6);
        assert!(screen.contains("1 Prompt 0 chars"), "{screen}");
        assert!(screen.contains("✗ prompt must not be empty"), "{screen}");
    }
}
