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
    let left: Line = match &app.notice {
        Some((text, is_error)) => Line::styled(text.clone(), if *is_error { theme.error() } else { theme.ok() }),
        None => {
            let mut spans = Vec::new();
            for (k, what) in hints(app) {
                spans.push(Span::styled(k, theme.key()));
                spans.push(Span::styled(format!(" {what}  "), theme.dim()));
            }
            Line::from(spans)
        }
    };
    // What we talk to goes on the right when there is room; the help overlay always shows it.
    let right = format!(" {} · {} ", app.ctx.target, app.ctx.graphics);
    let left_w = left.width() as u16;
    let right_w = right.chars().count() as u16;
    if left_w + right_w <= area.width {
        Paragraph::new(Line::styled(right, theme.dim()))
            .render(Rect { x: area.x + area.width - right_w, width: right_w, ..area }, buf);
        Paragraph::new(left).render(Rect { width: area.width - right_w, ..area }, buf);
    } else {
        let text: String = left.spans.iter().map(|s| s.content.as_ref()).collect();
        let style = left.spans.first().map(|s| s.style).unwrap_or_default();
        let clipped = if app.notice.is_some() { Line::styled(clip(&text, area.width as usize), style) } else { left };
        Paragraph::new(clipped).render(area, buf);
    }
}

pub fn draw_tabs(buf: &mut Buffer, area: Rect, app: &App, theme: &Theme) {
    let full: usize = Pane::ORDER.iter().map(|p| p.title().len() + 4).sum();
    let mut spans = Vec::new();
    for pane in Pane::ORDER {
        // Names for all when they fit, else only for the focused pane.
        let label = if pane == app.focus || full <= area.width as usize {
            format!(" {} {} ", pane.number(), pane.title())
        } else {
            format!(" {} ", pane.number())
        };
        spans.push(Span::styled(label, if pane == app.focus { theme.title_focused() } else { theme.dim() }));
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}
