//! Parameters pane: the endpoint row, then every field of the endpoint's schema with its value,
//! range and inline error. The form's stepping, cycling and typed values live in `tui::form`;
//! this pane routes keys to it, cycles the endpoint through the catalog and asks the app for the
//! endpoint list (an overlay).

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::{Canvas, Hint, PaneBehaviour, PaneEvent, Shared};
use crate::model::{Draft, EndpointSchema};
use crate::tui::action::Action;
use crate::tui::form::ParamForm;
use crate::tui::pane::Pane;
use crate::tui::widgets::{clip, pane_block};

#[derive(Debug)]
pub struct ParamsPane {
    form: ParamForm,
    /// The form as it was before a value was typed: Esc gives it back.
    before_typing: Option<ParamForm>,
}

impl ParamsPane {
    pub fn new(schema: Arc<EndpointSchema>, defaults: &Draft) -> ParamsPane {
        ParamsPane { form: ParamForm::from_draft(schema, defaults), before_typing: None }
    }

    pub fn form(&self) -> &ParamForm {
        &self.form
    }

    /// The endpoint the form is for (where a submit goes).
    pub fn schema(&self) -> &Arc<EndpointSchema> {
        self.form.schema()
    }

    /// The value of a row (a field's name, or "endpoint") as shown.
    pub fn value(&self, row: &str) -> String {
        self.form.value(row)
    }

    /// Every row's value, in order (what a test compares before and after a key).
    pub fn values(&self) -> Vec<String> {
        self.form.rows().map(|r| self.form.value(r)).collect()
    }

    pub fn apply_draft(&mut self, draft: &Draft) {
        self.form.apply_draft(draft);
    }

    /// Another endpoint: the rows rebuild from its schema, values that still fit are kept.
    pub fn set_schema(&mut self, schema: Arc<EndpointSchema>) {
        self.stop_typing();
        self.form.set_schema(schema);
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

    /// ←/→ on the endpoint row: the next endpoint of the catalog, wrapping.
    fn cycle_endpoint(&mut self, dir: i32, shared: Shared) -> Vec<PaneEvent> {
        let all: Vec<&Arc<EndpointSchema>> = shared.ctx.catalog.iter().collect();
        let at = all.iter().position(|s| s.endpoint_id == self.schema().endpoint_id).unwrap_or(0) as i32;
        let next = all[(at + dir).rem_euclid(all.len() as i32) as usize].clone();
        self.set_schema(next);
        vec![PaneEvent::EndpointChanged]
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

    fn on_key(&mut self, key: &KeyEvent, action: Option<Action>, shared: Shared) -> Option<Vec<PaneEvent>> {
        if self.form.is_typing() {
            return Some(self.on_typing_key(key));
        }
        if self.form.on_endpoint_row() {
            match action {
                Some(Action::Left | Action::BigLeft) => return Some(self.cycle_endpoint(-1, shared)),
                Some(Action::Right | Action::BigRight) => return Some(self.cycle_endpoint(1, shared)),
                Some(Action::Confirm) => return Some(vec![PaneEvent::PickEndpoint(String::new())]),
                _ => {}
            }
            // A letter starts the filtered list with it.
            if let (None, KeyCode::Char(c)) = (action, key.code)
                && !key.modifiers.contains(KeyModifiers::CONTROL)
            {
                return Some(vec![PaneEvent::PickEndpoint(c.to_string())]);
            }
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
        let on_endpoint = self.form.on_endpoint_row();
        let change = if on_endpoint { "endpoint" } else { "change" };
        let mut hints: Vec<Hint> = Hint::bound(km, Pane::Params, Action::Right, change, false)
            .map(|h| Hint { keys: if h.keys == "Right" { "←→".into() } else { h.keys.clone() }, ..h })
            .into_iter()
            .collect();
        if on_endpoint {
            hints.extend(Hint::bound(km, Pane::Params, Action::Confirm, "list", false).map(|h| h.ranked(4)));
        } else if self.form.takes_typing() {
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
        let rows: Vec<&str> = self.form.rows().collect();
        for (i, row) in rows.iter().enumerate() {
            let selected = c.focused && i == self.form.selected();
            let error = self.form.field_of(row).and_then(|f| c.shared.errors.of(f).next());
            let mut value = self.form.value(row);
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
                Span::styled(format!("{:<17}", clip(row, 17)), if selected { theme.key() } else { theme.dim() }),
                Span::raw(arrows.0),
                Span::styled(format!("{value:<10}"), value_style),
                Span::raw(arrows.1),
            ];
            let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
            let hint = match error {
                Some(_) => Span::styled("✗ see below", theme.error()),
                None => Span::styled(clip(&self.form.hint(row), width.saturating_sub(used + 1)), theme.dim()),
            };
            spans.push(Span::raw(" "));
            spans.push(hint);
            lines.push(Line::from(spans));
        }
        // The last line: the selected field's help (from the schema) while focused, else what
        // the request would cost (or why the budget refuses it).
        let help = self.form.help(self.form.row());
        let last = if c.focused && !help.is_empty() {
            Some(Line::styled(clip(help, width), theme.dim()))
        } else {
            c.shared.cost.describe(c.shared.ctx).map(|text| {
                let style = if text.starts_with("refused") { theme.error() } else { theme.dim() };
                Line::styled(clip(&text, width), style)
            })
        };
        if let Some(line) = last
            && (inner.height as usize) > lines.len() + self.error_lines(c.shared)
        {
            lines.push(line);
        }
        // Full messages under the rows: the layout makes room for them.
        for field in self.form.error_fields() {
            for e in c.shared.errors.of(field) {
                lines.push(Line::styled(clip(&format!("✗ {}", e.message), width), theme.error()));
            }
        }
        Paragraph::new(lines).render(inner, c.buf);
    }
}

impl ParamsPane {
    /// How many lines the field errors take under the rows (the layout makes room for them).
    pub fn error_lines(&self, shared: Shared) -> usize {
        self.form.error_fields().into_iter().map(|f| shared.errors.of(f).count()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Catalog;
    use crate::tui::panes::harness::Harness;

    fn pane() -> ParamsPane {
        ParamsPane::new(Catalog::bundled().default_schema().clone(), &Draft::default())
    }

    #[test]
    fn arrows_step_and_typing_replaces_the_value() {
        let h = Harness::new();
        let mut p = pane();
        h.press(&mut p, "down");
        h.press(&mut p, "down");
        h.press(&mut p, "right");
        assert_eq!(p.value("guidance_scale"), "4");
        h.press(&mut p, "shift-right");
        assert_eq!(p.value("guidance_scale"), "6.5");
        h.type_text(&mut p, "12");
        assert!(p.is_editing_text());
        assert_eq!(p.value("guidance_scale"), "12");
        h.press(&mut p, "enter");
        assert!(!p.is_editing_text());
        assert_eq!(p.value("guidance_scale"), "12", "Enter keeps what was typed");
    }

    #[test]
    fn esc_cancels_a_typed_value() {
        let h = Harness::new();
        let mut p = pane();
        h.press(&mut p, "down");
        h.type_text(&mut p, "77");
        assert_eq!(p.value("seed"), "77");
        h.press(&mut p, "esc");
        assert_eq!(p.value("seed"), "random", "the value before typing is back");
        assert!(!p.is_editing_text());
    }

    #[test]
    fn the_endpoint_row_cycles_the_catalog_and_opens_the_list() {
        let h = Harness::new();
        let mut p = pane();
        h.press(&mut p, "down");
        h.press(&mut p, "down");
        h.type_text(&mut p, "7");
        h.press(&mut p, "enter");
        h.press(&mut p, "up");
        h.press(&mut p, "up");
        let events = h.press(&mut p, "right").unwrap();
        assert!(matches!(events.as_slice(), [PaneEvent::EndpointChanged]), "{events:?}");
        assert_eq!(p.schema().endpoint_id, "fal-ai/flux-pro/kontext");
        assert_eq!(p.value("endpoint"), "[pro]");
        assert_eq!(p.value("guidance_scale"), "7", "a value that fits is kept");
        h.press(&mut p, "left");
        h.press(&mut p, "left");
        assert_eq!(p.schema().endpoint_id, "fal-ai/flux-kontext/dev", "wraps to the last");
        assert!(p.values().len() > 9, "dev's rows: {:?}", p.values());
        let events = h.press(&mut p, "enter").unwrap();
        assert!(matches!(events.as_slice(), [PaneEvent::PickEndpoint(q)] if q.is_empty()));
        let events = h.press(&mut p, "m").unwrap();
        assert!(matches!(events.as_slice(), [PaneEvent::PickEndpoint(q)] if q == "m"), "a letter filters");
        let labels: Vec<&str> = p.hints(h.shared()).into_iter().map(|h| h.label).collect();
        assert_eq!(labels, ["endpoint", "list"]);
    }

    #[test]
    fn keys_it_does_not_know_go_up() {
        let h = Harness::new();
        let mut p = pane();
        assert!(h.press(&mut p, "tab").is_none());
        h.press(&mut p, "down");
        assert!(h.press(&mut p, "q").is_none(), "q quits: the app's");
        for _ in 0..5 {
            h.press(&mut p, "down");
        }
        assert!(h.press(&mut p, "x").is_none(), "output_format takes no typing");
    }

    #[test]
    fn draws_the_endpoint_and_every_row_with_its_range() {
        let h = Harness::new();
        let mut p = pane();
        let screen = h.render(&mut p, 70, 12);
        for needle in
            ["3 Parameters", "endpoint", "‹ [pro] multi", "seed", "guidance_scale", "1–20, default 3.5", "aspect_ratio"]
        {
            assert!(screen.contains(needle), "{needle}: {screen}");
        }
    }
}
