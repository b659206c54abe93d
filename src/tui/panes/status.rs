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

/// The hints that fit in `width` cells, in their order: while they do not fit, the one of the
/// highest rank goes (the rightmost of equals), so help is the last to go.
pub fn fitting(hints: &[Hint], width: usize) -> Vec<&Hint> {
    let mut kept: Vec<&Hint> = hints.iter().collect();
    while kept.iter().map(|h| hint_width(h)).sum::<usize>() > width {
        let Some(worst) = (0..kept.len()).rev().max_by_key(|&i| (kept[i].rank, i)) else { break };
        kept.remove(worst);
    }
    kept
}

fn hint_width(h: &Hint) -> usize {
    h.keys.chars().count() + 1 + hint_label(h).chars().count() + 2
}

/// The label with what the key would do now ("submit ~$0.040 est.").
fn hint_label(h: &Hint) -> String {
    match &h.detail {
        Some(d) => format!("{} {d}", h.label),
        None => h.label.to_string(),
    }
}

/// Where requests go and how images are drawn: never dropped for hints. Below 100 columns the
/// mode goes without its label.
/// Today's spend goes first (it is dropped before the target when the bar is narrow).
pub fn target_text(ctx: &AppContext, width: u16, spent_today: Option<f64>) -> String {
    let label = if width >= 100 { "images: " } else { "" };
    let spend = match spent_today {
        Some(usd) if width >= 100 => format!(" today {} ·", crate::tui::context::dollars(usd)),
        Some(usd) => format!(" {} ·", crate::tui::context::dollars(usd)),
        None => String::new(),
    };
    format!("{spend} {} · {label}{} ", ctx.target, ctx.graphics_short())
}

/// What the status bar shows besides the hints.
pub struct StatusLine<'a> {
    pub notice: Option<&'a Notice>,
    pub spent_today: Option<f64>,
}

pub fn draw(buf: &mut Buffer, area: Rect, status: StatusLine, hints: &[Hint], ctx: &AppContext, theme: &Theme) {
    let notice = status.notice;
    let right = clip(&target_text(ctx, area.width, status.spent_today), area.width as usize);
    let right_w = right.chars().count() as u16;
    let left_w = (area.width - right_w) as usize;
    let left: Line = match notice {
        Some(n) => Line::styled(clip(&n.text, left_w), if n.is_error() { theme.error() } else { theme.ok() }),
        None => {
            let mut spans = Vec::new();
            for h in fitting(hints, left_w) {
                spans.push(Span::styled(h.keys.clone(), theme.key()));
                spans.push(Span::styled(format!(" {}  ", hint_label(h)), theme.dim()));
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

    fn hint(keys: &str, label: &'static str, rank: u8) -> Hint {
        Hint::fixed(keys, "x", Some(Action::Help), label).ranked(rank)
    }

    fn hints() -> Vec<Hint> {
        vec![
            hint("a", "add", 1),
            hint("d", "remove", 4),
            hint("F1", "help", 0),
            hint("F5", "submit", 2),
            hint("Tab", "next pane", 5),
            hint("Ctrl-Q", "quit", 3),
        ]
    }

    fn bar(width: u16, notice: Option<&Notice>, ctx: &AppContext) -> String {
        bar_with(width, StatusLine { notice, spent_today: None }, &hints(), ctx)
    }

    fn bar_with(width: u16, status: StatusLine, hints: &[Hint], ctx: &AppContext) -> String {
        let area = Rect::new(0, 0, width, 1);
        let mut buf = Buffer::empty(area);
        draw(&mut buf, area, status, hints, ctx, &Theme::MONO);
        (0..width).map(|x| buf[(x, 0)].symbol().to_string()).collect()
    }

    #[test]
    fn the_target_and_image_mode_stay_and_hints_give_way() {
        let h = Harness::new();
        let wide = bar(120, None, &h.ctx);
        assert!(wide.contains("emulator (no key) · images: halfblocks"), "{wide}");
        assert!(wide.contains("Ctrl-Q quit"), "{wide}");
        let narrow = bar(60, None, &h.ctx);
        assert!(narrow.contains("emulator (no key) · halfblocks"), "{narrow}");
        assert!(narrow.contains("F1 help") && !narrow.contains("next pane"), "{narrow}");
        let long = bar(60, Some(&Notice::error("x".repeat(200))), &h.ctx);
        assert!(long.contains("emulator (no key)") && long.contains('…'), "a long notice is cut: {long}");
    }

    #[test]
    fn todays_spend_and_the_submit_estimate_are_shown() {
        let h = Harness::new();
        let mut hs = hints();
        hs[3] = hs[3].clone().with_detail(Some("~$0.080 (bundled)".into()));
        let wide = bar_with(120, StatusLine { notice: None, spent_today: Some(0.12) }, &hs, &h.ctx);
        assert!(wide.contains("F5 submit ~$0.080 (bundled)"), "{wide}");
        assert!(wide.contains("today $0.120 · emulator (no key)"), "{wide}");
        let narrow = bar_with(80, StatusLine { notice: None, spent_today: Some(0.12) }, &hs, &h.ctx);
        assert!(narrow.contains("$0.120 · emulator (no key) · halfblocks"), "{narrow}");
    }

    #[test]
    fn the_highest_rank_goes_first_and_help_last() {
        let hs = hints();
        let labels = |w| fitting(&hs, w).iter().map(|h| h.label).collect::<Vec<_>>();
        assert_eq!(labels(200), ["add", "remove", "help", "submit", "next pane", "quit"]);
        assert_eq!(labels(50), ["add", "remove", "help", "submit", "quit"]);
        assert_eq!(labels(40), ["add", "help", "submit", "quit"]);
        assert_eq!(labels(27), ["add", "help", "submit"]);
        assert_eq!(labels(9), ["help"]);
        assert!(labels(3).is_empty());
    }
}
