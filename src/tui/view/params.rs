//! Parameters pane: every schema field with its value, range and inline error.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::theme::Theme;
use super::{clip, pane_block};
use crate::tui::app::{App, Pane};
use crate::tui::form::ParamRow;

pub fn draw(buf: &mut Buffer, area: Rect, app: &App, theme: &Theme) {
    let block = pane_block(app, Pane::Params, None, theme);
    let inner = block.inner(area);
    block.render(area, buf);
    let focused = app.focus == Pane::Params;
    let width = inner.width as usize;
    let mut lines = Vec::new();
    for (i, row) in ParamRow::ALL.iter().enumerate() {
        let selected = focused && i == app.form.selected;
        let error = app.errors_for(row.field()).next();
        let mut value = app.form.value(*row);
        if selected && app.form.typing {
            value.push('█');
        }
        let value_style = if error.is_some() {
            theme.error()
        } else if selected {
            theme.selected()
        } else {
            Default::default()
        };
        let arrows = if selected && !app.form.typing { ("‹ ", " ›") } else { ("  ", "  ") };
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
        for e in app.errors_for(row.field()) {
            lines.push(Line::styled(clip(&format!("✗ {}", e.message), width), theme.error()));
        }
    }
    Paragraph::new(lines).render(inner, buf);
}
