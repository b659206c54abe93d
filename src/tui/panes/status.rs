//! The status bar — the notice or the keys that work where the focus is, and always where
//! requests go and the image mode — and the tab strip of the compact layout.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::Hint;
use crate::tui::context::AppContext;
use crate::tui::message::Notice;
use crate::tui::pane::Pane;
use crate::tui::view::theme::Theme;
use crate::tui::widgets::clip;

/// What the status bar shows besides the notice.
pub struct StatusHints<'a> {
    /// The focused pane's keys, most useful first.
    pub pane: &'a [Hint],
    /// Keys that work everywhere; the first (help) is the last to go.
    pub global: &'a [Hint],
}

impl StatusHints<'_> {
    /// The hints that fit in `width` cells: the global ones after the first go first (from the
    /// end), then the pane's (from the end); help stays while anything is shown.
    pub fn fitting(&self, width: usize) -> Vec<&Hint> {
        let mut pane: Vec<&Hint> = self.pane.iter().collect();
        let mut global: Vec<&Hint> = self.global.iter().collect();
        let width_of = |hs: &[&Hint]| hs.iter().map(|h| hint_width(h)).sum::<usize>();
        loop {
            let all: Vec<&Hint> = pane.iter().chain(global.iter()).copied().collect();
            if width_of(&all) <= width || all.is_empty() {
                return all;
            }
            if global.len() > 1 {
                global.pop();
            } else if !pane.is_empty() {
                pane.pop();
            } else {
                global.pop();
            }
        }
    }
}

fn hint_width(h: &Hint) -> usize {
    h.keys.chars().count() + 1 + h.label.chars().count() + 2
}

/// Where requests go and how images are drawn: never dropped for hints.
pub fn target_text(ctx: &AppContext) -> String {
    format!(" {} · images: {} ", ctx.target, ctx.graphics_short())
}

pub fn draw(
    buf: &mut Buffer,
    area: Rect,
    notice: Option<&Notice>,
    hints: &StatusHints,
    ctx: &AppContext,
    theme: &Theme,
) {
    let right = clip(&target_text(ctx), area.width as usize);
    let right_w = right.chars().count() as u16;
    let left_w = (area.width - right_w) as usize;
    let left: Line = match notice {
        Some(n) => Line::styled(clip(&n.text, left_w), if n.is_error() { theme.error() } else { theme.ok() }),
        None => {
            let mut spans = Vec::new();
            for h in hints.fitting(left_w) {
                spans.push(Span::styled(h.keys.clone(), theme.key()));
                spans.push(Span::styled(format!(" {}  ", h.label), theme.dim()));
            }
            Line::from(spans)
        }
    };
    Paragraph::new(left).render(Rect { width: area.width - right_w, ..area }, buf);
    Paragraph::new(Line::styled(right, theme.dim()))
        .render(Rect { x: area.x + area.width - right_w, width: right_w, ..area }, buf);
}

pub fn draw_tabs(buf: &mut Buffer, area: Rect, focus: Pane, theme: &Theme) {
    let full: usize = Pane::ORDER.iter().map(|p| p.title().len() + 4).sum();
    let mut spans = Vec::new();
    for pane in Pane::ORDER {
        // Names for all when they fit, else only for the focused pane.
        let label = if pane == focus || full <= area.width as usize {
            format!(" {} {} ", pane.number(), pane.title())
        } else {
            format!(" {} ", pane.number())
        };
        spans.push(Span::styled(label, if pane == focus { theme.title_focused() } else { theme.dim() }));
    }
    Paragraph::new(Line::from(spans)).render(area, buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::action::Action;
    use crate::tui::panes::harness::Harness;

    fn hint(keys: &str, label: &'static str) -> Hint {
        Hint::fixed(keys, "x", Some(Action::Help), label)
    }

    fn bar(width: u16, notice: Option<&Notice>, ctx: &AppContext) -> String {
        let pane = [hint("a", "add"), hint("d", "remove")];
        let global = [hint("F1", "help"), hint("F5", "submit"), hint("Tab", "next pane"), hint("Ctrl-Q", "quit")];
        let hints = StatusHints { pane: &pane, global: &global };
        let area = Rect::new(0, 0, width, 1);
        let mut buf = Buffer::empty(area);
        draw(&mut buf, area, notice, &hints, ctx, &Theme { color: false });
        (0..width).map(|x| buf[(x, 0)].symbol().to_string()).collect()
    }

    #[test]
    fn the_target_and_image_mode_stay_and_hints_give_way() {
        let h = Harness::new();
        let wide = bar(120, None, &h.ctx);
        assert!(wide.contains("emulator (no key) · images: halfblocks"), "{wide}");
        assert!(wide.contains("Ctrl-Q quit"), "{wide}");
        let narrow = bar(60, None, &h.ctx);
        assert!(narrow.contains("emulator (no key) · images: halfblocks"), "{narrow}");
        assert!(narrow.contains("F1 help") && !narrow.contains("quit"), "{narrow}");
        let long = bar(60, Some(&Notice::error("x".repeat(200))), &h.ctx);
        assert!(long.contains("emulator (no key)") && long.contains('…'), "a long notice is cut: {long}");
    }

    #[test]
    fn help_is_the_last_hint_to_go() {
        let pane = [hint("a", "add")];
        let global = [hint("F1", "help"), hint("F5", "submit")];
        let hints = StatusHints { pane: &pane, global: &global };
        let labels = |w| hints.fitting(w).iter().map(|h| h.label).collect::<Vec<_>>();
        assert_eq!(labels(100), ["add", "help", "submit"]);
        assert_eq!(labels(16), ["add", "help"]);
        assert_eq!(labels(9), ["help"]);
        assert!(labels(3).is_empty());
    }
}
