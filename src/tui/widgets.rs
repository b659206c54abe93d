//! Drawing pieces every pane shares: the image view, the screen layout, a pane's frame, clipping.
//! Knows no pane's state, so each pane can use it without the panes knowing each other.

use std::path::Path;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Widget, Wrap};

use super::graphics::{ThumbSource, ThumbnailReady, Thumbnails};
use super::pane::Pane;
use super::view::theme::Theme;

/// Smallest size with a usable screen.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 12;

/// Draws images (or a text stand-in) into cells; the runtime provides the real one.
pub trait ImageView {
    /// Shows the image at `path` in `area`, or a placeholder while it is being prepared.
    fn draw_file(&mut self, path: &Path, area: Rect, buf: &mut Buffer);
    /// A thumbnail finished encoding in the background.
    fn accept(&mut self, _ready: ThumbnailReady) {}
    /// Forget what was drawn (after a resize or the external editor).
    fn clear(&mut self) {}
    /// The whole frame, overlays included, is in `buf` and about to be flushed (images that something drew
    /// over are sent again once they are whole).
    fn end_frame(&mut self, _buf: &mut Buffer) {}
    /// The screen is repainted in full (focus came back, Ctrl-L): keep what is encoded, send it again.
    fn repaint(&mut self) {}
}

/// Real thumbnails: kitty, sixel, iTerm2 or halfblocks, prepared off the UI task.
impl ImageView for Thumbnails {
    fn draw_file(&mut self, path: &Path, area: Rect, buf: &mut Buffer) {
        let source = ThumbSource::File(path.to_path_buf());
        self.request(&source, area);
        self.render(&source, area, buf);
    }
    fn accept(&mut self, ready: ThumbnailReady) {
        self.on_ready(ready);
    }
    fn clear(&mut self) {
        self.clear_cache();
    }
    fn end_frame(&mut self, buf: &mut Buffer) {
        Thumbnails::end_frame(self, buf);
    }
    fn repaint(&mut self) {
        Thumbnails::repaint(self);
    }
}

/// Text stand-ins only (tests, `--graphics none`).
pub struct NoImages;

impl ImageView for NoImages {
    fn draw_file(&mut self, path: &Path, area: Rect, buf: &mut Buffer) {
        let name = path.file_name().map(|n| crate::sanitize::one_line(&n.to_string_lossy())).unwrap_or_default();
        Paragraph::new(vec![Line::from("[image]"), Line::from(name)]).wrap(Wrap { trim: true }).render(area, buf);
    }
}

/// Where each pane goes; `None` when the layout hides it (compact mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Areas {
    pub tabs: Option<Rect>,
    pub prompt: Option<Rect>,
    pub images: Option<Rect>,
    pub params: Option<Rect>,
    pub jobs: Option<Rect>,
    pub history: Option<Rect>,
    pub results: Option<Rect>,
    pub status: Rect,
}

impl Areas {
    pub fn of(&self, pane: Pane) -> Option<Rect> {
        match pane {
            Pane::Prompt => self.prompt,
            Pane::Images => self.images,
            Pane::Params => self.params,
            Pane::Jobs => self.jobs,
            Pane::History => self.history,
            Pane::Results => self.results,
        }
    }

    fn set(&mut self, pane: Pane, area: Rect) {
        let slot = match pane {
            Pane::Prompt => &mut self.prompt,
            Pane::Images => &mut self.images,
            Pane::Params => &mut self.params,
            Pane::Jobs => &mut self.jobs,
            Pane::History => &mut self.history,
            Pane::Results => &mut self.results,
        };
        *slot = Some(area);
    }
}

/// All panes side by side when there is room; otherwise the focused pane alone with a tab strip.
/// `param_lines` is what the Parameters pane has to show (its rows, the help line, errors).
pub fn layout(area: Rect, focus: Pane, param_lines: u16) -> Areas {
    let [main, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    let mut a = Areas { status, ..Areas::default() };
    if area.width < 100 || area.height < 26 {
        let [tabs, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(main);
        a.tabs = Some(tabs);
        a.set(focus, body);
        return a;
    }
    let left_w = (main.width * 2 / 5).clamp(44, 72);
    let [left, right] = Layout::horizontal([Constraint::Length(left_w), Constraint::Min(1)]).areas(main);
    let params_h = 2 + param_lines;
    let rest = left.height.saturating_sub(params_h);
    let [prompt, images, params] =
        Layout::vertical([Constraint::Length((rest * 2 / 5).max(5)), Constraint::Min(5), Constraint::Length(params_h)])
            .areas(left);
    let [jobs, results, history] =
        Layout::vertical([Constraint::Percentage(30), Constraint::Percentage(42), Constraint::Percentage(28)])
            .areas(right);
    a.prompt = Some(prompt);
    a.images = Some(images);
    a.params = Some(params);
    a.jobs = Some(jobs);
    a.results = Some(results);
    a.history = Some(history);
    a
}

/// A pane's frame: numbered title, highlighted when focused.
pub fn pane_block<'a>(pane: Pane, focused: bool, extra: impl Into<Option<String>>, theme: &Theme) -> Block<'a> {
    let mut title = vec![Span::styled(
        format!(" {} {} ", pane.number(), pane.title()),
        if focused { theme.title_focused() } else { theme.title() },
    )];
    if let Some(extra) = extra.into() {
        title.push(Span::styled(format!("{extra} "), theme.dim()));
    }
    Block::bordered()
        .border_type(if focused { BorderType::Thick } else { BorderType::Rounded })
        .border_style(if focused { theme.border_focused() } else { theme.border() })
        .title(Line::from(title))
}

/// A centered rectangle of at most `w` x `h` inside `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

/// Clips text to `width` cells, ending in … when cut.
pub fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}
