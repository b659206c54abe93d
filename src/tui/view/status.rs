//! Status bar (keys that matter where the focus is, the notice, what we talk to) and the tab strip
//! of the compact layout.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::clip;
use super::theme::Theme;
use crate::tui::action::Action;
use crate::tui::app::{App, Pane};

/// The few keys worth showing for the focused pane.
fn hints(app: &App) -> Vec<(String, &'static str)> {
    let km = &app.ctx.keymap;
    let first = |a: Action| km.keys_for(a).split(" / ").next().unwrap_or("").to_string();
    let mut h = vec![(first(Action::Submit), "submit")];
    match app.focus {
        Pane::Prompt => {
            h.push((first(Action::OpenEditor), "editor"));
            h.push((first(Action::RecallSearch), "recall"));
        }
        Pane::Images if app.images.input.is_some() => {
            h = vec![("Enter".into(), "add"), ("Esc".into(), "cancel")];
        }
        Pane::Images => {
            h.push(("a".into(), "add"));
            h.push(("d".into(), "remove"));
            h.push(("Shift-↑↓".into(), "reorder"));
        }
        Pane::Params => {
            h.push(("←→".into(), "change"));
            h.push(("0-9".into(), "type"));
        }
        Pane::Jobs => {
            h.push(("c".into(), "cancel"));
            h.push(("Enter".into(), "results"));
        }
        Pane::History => {
            h.push(("/".into(), "search"));
            h.push(("Enter".into(), "load"));
            h.push(("r".into(), "re-run"));
        }
        Pane::Results => {
            h.push(("Enter".into(), "full"));
            h.push(("y".into(), "copy"));
            h.push(("v".into(), "side by side"));
        }
    }
    h.push(("Tab".into(), "next pane"));
    h.push(("?".into(), "help"));
    h.push((first(Action::ForceQuit), "quit"));
    h
}

pub fn draw(buf: &mut Buffer, area: Rect, app: &App, theme: &Theme) {
    let right = format!(" {} · {} ", app.ctx.target, app.ctx.graphics);
    let right_w = (right.chars().count() as u16).min(area.width / 2);
    let left_w = area.width.saturating_sub(right_w) as usize;
    let left: Line = match &app.notice {
        Some((text, is_error)) => {
            Line::styled(clip(text, left_w), if *is_error { theme.error() } else { theme.ok() })
        }
        None => {
            let mut spans = Vec::new();
            for (k, what) in hints(app) {
                spans.push(Span::styled(k, theme.key()));
                spans.push(Span::styled(format!(" {what}  "), theme.dim()));
            }
            Line::from(spans)
        }
    };
    Paragraph::new(left).render(Rect { width: left_w as u16, ..area }, buf);
    Paragraph::new(Line::styled(clip(&right, right_w as usize), theme.dim()))
        .render(Rect { x: area.x + left_w as u16, width: right_w, ..area }, buf);
}

pub fn draw_tabs(buf: &mut Buffer, area: Rect, app: &App, theme: &Theme) {
    let mut spans = Vec::new();
    for pane in Pane::ORDER {
        let label = format!(" {} {} ", pane.number(), pane.title());
        spans.push(Span::styled(label, if pane == app.focus { theme.title_focused() } else { theme.dim() }));
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}
