//! Prompt pane: the multi-line editor (ratatui-textarea) with inline errors.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use super::theme::Theme;
use super::{clip, pane_block};
use crate::model::Field;
use crate::tui::app::{App, Pane};

pub fn draw(frame: &mut Frame, area: Rect, app: &mut App, theme: &Theme) {
    let errors: Vec<String> = app.errors_for(Field::Prompt).map(|e| e.message.clone()).collect();
    let chars = app.prompt_text().chars().count();
    let block = pane_block(app, Pane::Prompt, format!("{chars} chars"), theme);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let err_h = if errors.is_empty() { 0 } else { 1 };
    let [text_area, err_area] = Layout::vertical([Constraint::Min(1), Constraint::Length(err_h)]).areas(inner);
    app.prompt.set_cursor_line_style(ratatui::style::Style::default());
    if app.focus != Pane::Prompt {
        // Only the focused editor shows a cursor.
        app.prompt.set_cursor_style(ratatui::style::Style::default());
    } else {
        app.prompt.set_cursor_style(ratatui::style::Style::default().add_modifier(ratatui::style::Modifier::REVERSED));
    }
    frame.render_widget(&app.prompt, text_area);
    if let Some(e) = errors.first() {
        frame.render_widget(
            Paragraph::new(Line::styled(clip(&format!("✗ {e}"), err_area.width as usize), theme.error())),
            err_area,
        );
    }
}
