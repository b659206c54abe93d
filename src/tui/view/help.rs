//! Overlays: the help (every binding, grouped by where it applies), the delete confirmation and
//! the prompt-recall search.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};

use super::theme::Theme;
use super::{centered, clip};
use crate::tui::app::{App, Overlay};
use crate::tui::pane::Scope;

pub fn help_lines(app: &App, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = vec![
        Line::styled("kontext — keys", theme.title()),
        Line::styled(format!("talking to: {} · images: {}", app.ctx.target, app.ctx.graphics), theme.dim()),
        Line::raw(""),
    ];
    let mut scope: Option<Scope> = None;
    for (s, keys, action) in app.ctx.keymap.help_rows() {
        if scope != Some(s) {
            if scope.is_some() {
                lines.push(Line::raw(""));
            }
            lines.push(Line::styled(s.title().to_string(), theme.title()));
            scope = Some(s);
        }
        lines.push(Line::from(vec![
            Span::styled(format!("  {keys:<34} "), theme.key()),
            Span::raw(action.describe().to_string()),
        ]));
    }
    lines.extend([
        Line::raw(""),
        Line::styled("Editing", theme.title()),
        Line::raw("  Prompt: type freely; Ctrl-Z undo, Ctrl-Y redo; Esc leaves the editor"),
        Line::raw("  Parameters: type digits on seed/guidance/num_images/safety; Shift-←→ big steps"),
        Line::raw("  Paste (bracketed) in Images adds one image per line"),
        Line::raw(""),
        Line::styled("Esc, ? or any other key closes this help; ↑↓ scroll", theme.dim()),
    ]);
    lines
}

pub fn draw_overlay(buf: &mut Buffer, area: Rect, app: &App, overlay: &Overlay, theme: &Theme) {
    match overlay {
        Overlay::Help { scroll } => {
            let lines = help_lines(app, theme);
            let two_columns = area.width >= 150;
            let rect = centered(area, if two_columns { 150 } else { 84 }, area.height.saturating_sub(2));
            Clear.render(rect, buf);
            let block = Block::bordered()
                .title(" Help — ↑↓ PgUp PgDn scroll · Esc closes ")
                .border_style(theme.border_focused());
            let inner = block.inner(rect);
            block.render(rect, buf);
            if two_columns {
                // Split at the blank line nearest the middle, so no group is cut in two.
                let mid = lines.len() / 2;
                let split = (mid..lines.len()).find(|&i| lines[i].width() == 0).unwrap_or(mid);
                let right = lines[split..].to_vec();
                let left = lines[..split].to_vec();
                let half = inner.width / 2;
                Paragraph::new(left).scroll((*scroll, 0)).render(Rect { width: half, ..inner }, buf);
                Paragraph::new(right)
                    .scroll((*scroll, 0))
                    .render(Rect { x: inner.x + half, width: inner.width - half, ..inner }, buf);
            } else {
                Paragraph::new(lines).scroll((*scroll, 0)).render(inner, buf);
            }
        }
        Overlay::ConfirmDelete { prompt, id } => {
            let rect = centered(area, 60, 6);
            Clear.render(rect, buf);
            Paragraph::new(vec![
                Line::raw(format!("Delete history entry {}?", id.get(..8).unwrap_or(id))),
                Line::styled(clip(prompt, 56), theme.dim()),
                Line::from(vec![
                    Span::styled("y", theme.key()),
                    Span::raw(" delete   "),
                    Span::styled("any other key", theme.key()),
                    Span::raw(" keep"),
                ]),
            ])
            .block(Block::bordered().title(" Confirm ").border_style(theme.error()))
            .wrap(Wrap { trim: true })
            .render(rect, buf);
        }
        Overlay::RecallSearch { query, selected } => {
            let rect = centered(area, 80, 14);
            Clear.render(rect, buf);
            let matches = app.recall_matches(query);
            let mut lines = vec![Line::from(vec![
                Span::styled("search: ", theme.key()),
                Span::raw(query.clone()),
                Span::styled("█", theme.key()),
            ])];
            if matches.is_empty() {
                lines.push(Line::styled("no earlier prompt matches", theme.dim()));
            }
            let room = rect.height.saturating_sub(3) as usize;
            let first = selected.saturating_sub(room.saturating_sub(1));
            for (i, m) in matches.iter().enumerate().skip(first).take(room) {
                let text = clip(&crate::sanitize::one_line(m), rect.width.saturating_sub(4) as usize);
                lines.push(if i == *selected { Line::styled(text, theme.selected()) } else { Line::raw(text) });
            }
            Paragraph::new(lines)
                .block(
                    Block::bordered()
                        .title(" Recall a prompt (Enter takes it, Esc closes) ")
                        .border_style(theme.border_focused()),
                )
                .render(rect, buf);
        }
    }
}
