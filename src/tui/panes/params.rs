//! Parameters pane: every schema field with its value, range and inline error. The form's
//! stepping, cycling and typed values live in `tui::form`; this pane routes keys to it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::{Canvas, Hint, PaneBehaviour, PaneEvent, Shared};
use crate::model::Draft;
use crate::tui::action::Action;
use crate::tui::form::{ParamForm, ParamRow};
use crate::tui::pane::Pane;
use crate::tui::widgets::{clip, pane_block};

#[derive(Debug)]
pub struct ParamsPane {
    form: ParamForm,
    /// The form as it was before a value was typed: Esc gives it back.
    before_typing: Option<ParamForm>,
}

impl ParamsPane {
    pub fn new(defaults: &Draft) -> ParamsPane {
        ParamsPane { form: ParamForm::from_draft(defaults), before_typing: None }
    }

    pub fn form(&self) -> &ParamForm {
        &self.form
    }

    /// The value of a row as shown.
    pub fn value(&self, row: ParamRow) -> String {
        self.form.value(row)
    }

    pub fn apply_draft(&mut self, draft: &Draft) {
        self.form.apply_draft(draft);
    }

    /// Writes the parameters into `draft`; `last_seed` fills the "reuse last" seed mode.
    pub fn fill(&self, draft: &mut Draft, last_seed: Option<u64>) -> Result<(), String> {
        self.form.fill(draft, last_seed)
    }

    /// Leaving the pane (or submitting) keeps what was typed.
    pub fn stop_typing(&mut self) {
        self.form.stop_typing();
        self.before_typing = None;
    }

    fn type_char(&mut self, c: char) -> bool {
        let before = self.form.clone();
        let typed = self.form.type_char(c);
        if typed && self.before_typing.is_none() {
            self.before_typing = Some(before);
        }
        typed
    }

    fn on_typing_key(&mut self, key: &KeyEvent) -> Vec<PaneEvent> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Backspace => self.form.backspace(),
            KeyCode::Enter => self.stop_typing(),
            // Esc cancels the input: the value before typing comes back.
            KeyCode::Esc => {
                if let Some(before) = self.before_typing.take() {
                    self.form = before;
                }
                self.form.stop_typing();
            }
            KeyCode::Up => {
                self.before_typing = None;
                self.form.up()
            }
            KeyCode::Down => {
                self.before_typing = None;
                self.form.down()
            }
            KeyCode::Char(c) if !ctrl => {
                self.type_char(c);
            }
            _ => return Vec::new(),
        }
        vec![PaneEvent::InputChanged]
    }
}

impl PaneBehaviour for ParamsPane {
    fn pane(&self) -> Pane {
        Pane::Params
    }

    fn is_editing_text(&self) -> bool {
        self.form.is_typing()
    }

    fn on_key(&mut self, key: &KeyEvent, action: Option<Action>, _shared: Shared) -> Option<Vec<PaneEvent>> {
        if self.form.is_typing() {
            return Some(self.on_typing_key(key));
        }
        match action {
            Some(Action::Up) => self.form.up(),
            Some(Action::Down) => self.form.down(),
            Some(Action::Left) => self.form.step(-1, false),
            Some(Action::Right) => self.form.step(1, false),
            Some(Action::BigLeft) => self.form.step(-1, true),
            Some(Action::BigRight) => self.form.step(1, true),
            Some(Action::Confirm) => self.form.activate(),
            Some(_) => return None,
            // Typing a number on a numeric row edits it.
            None => match key.code {
                KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) && self.type_char(c) => {}
                _ => return None,
            },
        }
        Some(vec![PaneEvent::InputChanged])
    }

    fn hints(&self, shared: Shared) -> Vec<Hint> {
        if self.form.is_typing() {
            return vec![
                Hint::fixed("Enter", "enter", Some(Action::Confirm), "keep"),
                Hint::fixed("Esc", "esc", Some(Action::Close), "undo").ranked(1),
            ];
        }
        let km = shared.keymap();
        let mut hints: Vec<Hint> = Hint::bound(km, Pane::Params, Action::Right, "change", false)
            .map(|h| Hint { keys: if h.keys == "Right" { "←→".into() } else { h.keys.clone() }, ..h })
            .into_iter()
            .collect();
        if self.form.row().is_numeric() {
            hints.push(Hint::fixed("0-9", "5", None, "type"));
        }
        hints
    }

    fn draw(&mut self, c: Canvas) {
        let block = pane_block(Pane::Params, c.focused, None, c.theme);
        let inner = block.inner(c.area);
        block.render(c.area, c.buf);
        let theme = c.theme;
        let width = inner.width as usize;
        let mut lines = Vec::new();
        for (i, row) in ParamRow::ALL.iter().enumerate() {
            let selected = c.focused && i == self.form.selected();
            let error = c.shared.errors.of(row.field()).next();
            let mut value = self.form.value(*row);
            if selected && self.form.is_typing() {
                value.push('█');
            }
            let value_style = if error.is_some() {
                theme.error()
            } else if selected {
                theme.selected()
            } else {
                Default::default()
            };
            let arrows = if selected && !self.form.is_typing() { ("‹ ", " ›") } else { ("  ", "  ") };
            let mut spans = vec![
                Span::styled(format!("{:<17}", row.label()), if selected { theme.key() } else { theme.dim() }),
                Span::raw(arrows.0),
                Span::styled(format!("{value:<10}"), value_style),
                Span::raw(arrows.1),
            ];
            let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
            let hint = match error {
                Some(_) => Span::styled("✗ see below", theme.error()),
                None => Span::styled(clip(row.hint(), width.saturating_sub(used + 1)), theme.dim()),
            };
            spans.push(Span::raw(" "));
            spans.push(hint);
            lines.push(Line::from(spans));
        }
        // Full messages under the rows: the layout makes room for them.
        for row in ParamRow::ALL {
            for e in c.shared.errors.of(row.field()) {
                lines.push(Line::styled(clip(&format!("✗ {}", e.message), width), theme.error()));
            }
        }
        Paragraph::new(lines).render(inner, c.buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::panes::harness::Harness;

    #[test]
    fn arrows_step_and_typing_replaces_the_value() {
        let h = Harness::new();
        let mut p = ParamsPane::new(&Draft::default());
        h.press(&mut p, "down");
        h.press(&mut p, "right");
        assert_eq!(p.value(ParamRow::Guidance), "4");
        h.press(&mut p, "shift-right");
        assert_eq!(p.value(ParamRow::Guidance), "6.5");
        h.type_text(&mut p, "12");
        assert!(p.is_editing_text());
        assert_eq!(p.value(ParamRow::Guidance), "12");
        h.press(&mut p, "enter");
        assert!(!p.is_editing_text());
        assert_eq!(p.value(ParamRow::Guidance), "12", "Enter keeps what was typed");
    }

    #[test]
    fn esc_cancels_a_typed_value() {
        let h = Harness::new();
        let mut p = ParamsPane::new(&Draft::default());
        h.type_text(&mut p, "77");
        assert_eq!(p.value(ParamRow::Seed), "77");
        h.press(&mut p, "esc");
        assert_eq!(p.value(ParamRow::Seed), "random", "the value before typing is back");
        assert!(!p.is_editing_text());
    }

    #[test]
    fn keys_it_does_not_know_go_up() {
        let h = Harness::new();
        let mut p = ParamsPane::new(&Draft::default());
        assert!(h.press(&mut p, "q").is_none(), "q quits: the app's");
        assert!(h.press(&mut p, "tab").is_none());
        h.press(&mut p, "down");
        h.press(&mut p, "down");
        h.press(&mut p, "down");
        assert!(h.press(&mut p, "x").is_none(), "output_format takes no typing");
    }

    #[test]
    fn draws_every_row_with_its_range() {
        let h = Harness::new();
        let mut p = ParamsPane::new(&Draft::default());
        let screen = h.render(&mut p, 70, 12);
        for needle in ["3 Parameters", "seed", "‹ random", "guidance_scale", "1–20, default 3.5", "aspect_ratio"] {
            assert!(screen.contains(needle), "{needle}: {screen}");
        }
    }
}
