//! History pane: the durable history, searchable as you type and filterable by state.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::theme::Theme;
use super::{clip, pane_block};
use crate::tui::app::{App, Pane};

pub fn draw(buf: &mut Buffer, area: Rect, app: &App, theme: &Theme) {
    let h = &app.history;
    let filter = h.filter.state.as_deref().unwrap_or("all");
    let block = pane_block(app, Pane::History, format!("{} shown · {filter}", h.rows.len()), theme);
    let inner = block.inner(area);
    block.render(area, buf);
    let [search_area, list_area] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
    let search = if h.searching {
        Line::from(vec![
            Span::styled("/", theme.key()),
            Span::raw(h.filter.search.clone()),
            Span::styled("█", theme.key()),
        ])
    } else if h.filter.search.is_empty() {
        Line::styled("/ search · f filter · Enter load · r re-run · d delete", theme.dim())
    } else {
        Line::from(vec![Span::styled("/", theme.key()), Span::raw(h.filter.search.clone())])
    };
    Paragraph::new(search).render(search_area, buf);

    if h.rows.is_empty() {
        let text = if !h.loaded {
            "loading…"
        } else if h.filter.search.is_empty() {
            "nothing yet"
        } else {
            "no match"
        };
        Paragraph::new(Line::styled(text, theme.dim())).render(list_area, buf);
        return;
    }
    let height = list_area.height as usize;
    let first = h.selected.saturating_sub(height.saturating_sub(1));
    let width = list_area.width as usize;
    let mut lines = Vec::new();
    for (i, row) in h.rows.iter().enumerate().skip(first).take(height) {
        let head = format!(
            "{} {:<10} {:<9} ",
            crate::timefmt::format_utc(row.created_at),
            row.state,
            row.id.get(..8).unwrap_or(&row.id)
        );
        let prompt = clip(&crate::sanitize::one_line(&row.prompt), width.saturating_sub(head.chars().count()));
        let state_style = match row.state.as_str() {
            "completed" => theme.ok(),
            "failed" | "submit_ambiguous" => theme.error(),
            _ => theme.dim(),
        };
        let line = Line::from(vec![Span::styled(head, state_style), Span::raw(prompt)]);
        lines.push(if i == h.selected && app.focus == Pane::History { line.style(theme.selected()) } else { line });
    }
    Paragraph::new(lines).render(list_area, buf);
}
