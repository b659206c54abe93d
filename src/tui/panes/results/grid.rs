//! The Results pane's sweep grid and A/B view: which job is in which cell of a page, and how
//! cells, headers and the two compared images are drawn. The pane's state and keys are in
//! results.rs.

use std::path::Path;

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Widget};

use crate::model::sweep::GridAxes;
use crate::sanitize::one_line;
use crate::tui::job_store::{JobPhase, JobStore, JobView, OutputItem, SweepView};
use crate::tui::view::theme::Theme;
use crate::tui::widgets::{ImageView, clip};

/// One page of a sweep: its jobs by row and column (`None` where the plan has no point).
pub(super) struct GridPage<'a> {
    pub rows: usize,
    pub cols: usize,
    cells: Vec<Option<&'a JobView>>,
}

impl<'a> GridPage<'a> {
    /// One pass over the points (not a search per cell): a frame of an 8×8 grid stays cheap.
    pub fn of(sweep: &SweepView, jobs: &'a JobStore, page: usize) -> GridPage<'a> {
        let (rows, cols) = dimensions(&sweep.grid);
        let mut cells = vec![None; rows * cols];
        for (point, id) in &sweep.points {
            if let Some((p, r, c)) = sweep.grid.place(point)
                && p == page
                && r < rows
                && c < cols
            {
                cells[r * cols + c] = jobs.get(*id);
            }
        }
        GridPage { rows, cols, cells }
    }

    pub fn at(&self, row: usize, col: usize) -> Option<&'a JobView> {
        if row >= self.rows || col >= self.cols {
            return None;
        }
        self.cells[row * self.cols + col]
    }
}

/// (rows, columns) of every page of a grid: 1 where an axis is absent.
pub(super) fn dimensions(grid: &GridAxes) -> (usize, usize) {
    let len = |a: &Option<crate::model::sweep::Axis>| a.as_ref().map_or(1, |a| a.values.len().max(1));
    (len(&grid.rows), len(&grid.columns))
}

/// The further axes' values of a page ("num_inference_steps=30"), empty with one page.
pub(super) fn page_label(grid: &GridAxes, page: usize) -> String {
    let mut rest = page;
    let mut parts = Vec::new();
    // `GridAxes::place` numbers pages with the last further axis varying fastest.
    for axis in grid.further.iter().rev() {
        let n = axis.values.len().max(1);
        parts.push(format!("{}={}", axis.kind.name(), axis.values.get(rest % n).map_or("?", String::as_str)));
        rest /= n;
    }
    parts.reverse();
    parts.join(", ")
}

/// Where a cell's job is, as its cell says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CellPhase {
    Done,
    Queued,
    Running,
    Failed,
    Cancelled,
    /// No point of the plan here.
    Empty,
}

impl CellPhase {
    pub fn of(job: Option<&JobView>) -> CellPhase {
        match job.map(|j| &j.phase) {
            None => CellPhase::Empty,
            Some(JobPhase::Completed) => CellPhase::Done,
            Some(JobPhase::Failed(_)) => CellPhase::Failed,
            Some(JobPhase::Cancelled) => CellPhase::Cancelled,
            Some(JobPhase::Running | JobPhase::Uploading(_) | JobPhase::Fetching | JobPhase::CancelRequested) => {
                CellPhase::Running
            }
            // Not sent yet, waiting for a slot, or in fal's queue.
            Some(_) => CellPhase::Queued,
        }
    }

    fn label(self) -> &'static str {
        match self {
            CellPhase::Done => "no output",
            CellPhase::Queued => "queued",
            CellPhase::Running => "running",
            CellPhase::Failed => "failed",
            CellPhase::Cancelled => "cancelled",
            CellPhase::Empty => "",
        }
    }

    /// For cells too small for the word.
    fn glyph(self) -> &'static str {
        match self {
            CellPhase::Done => "∅",
            CellPhase::Queued => "·",
            CellPhase::Running => "◔",
            CellPhase::Failed => "✗",
            CellPhase::Cancelled => "⊘",
            CellPhase::Empty => "",
        }
    }
}

/// What the grid shows besides the jobs: the selected cell, and the outputs marked A and B.
pub(super) struct GridState<'p> {
    pub row: usize,
    pub col: usize,
    pub focused: bool,
    pub marked_a: Option<&'p Path>,
    pub marked_b: Option<&'p Path>,
}

/// A cell is drawn with a frame once it has this many (columns, rows); smaller cells get a
/// two-column gutter (selection, star or mark) and the thumbnail beside it.
const FRAMED: (u16, u16) = (8, 4);
/// The widest row header (longer values are clipped).
const MAX_ROW_HEADER: usize = 16;

/// Draws a page: column headers on top, row headers on the left, one cell per point. When the
/// cells would get less than 3 columns or 1 row, the rows and columns around the selection that
/// fit are drawn.
pub(super) fn draw_grid(
    buf: &mut Buffer,
    area: Rect,
    grid: &GridAxes,
    page: &GridPage,
    state: &GridState,
    images: &mut dyn ImageView,
    theme: &Theme,
) {
    if area.width == 0 || area.height == 0 {
        return;
    }
    let gutter = grid.rows.as_ref().map_or(0, |axis| {
        let widest = axis.values.iter().map(|v| v.chars().count()).max().unwrap_or(0);
        // The name is shown as "seed ↓".
        widest.max(axis.kind.name().chars().count() + 2).min(MAX_ROW_HEADER) as u16 + 1
    });
    let gutter = gutter.min(area.width / 3);
    let headers: u16 = if grid.columns.is_none() {
        0
    } else if usize::from(area.height.saturating_sub(2)) >= page.rows {
        2
    } else {
        1
    };
    let body = Rect {
        x: area.x + gutter,
        y: area.y + headers,
        width: area.width - gutter,
        height: area.height.saturating_sub(headers),
    };
    let (cell_w, first_col, shown_cols) = span(body.width, page.cols, 3, state.col);
    let (cell_h, first_row, shown_rows) = span(body.height, page.rows, 1, state.row);

    if let Some(axis) = &grid.columns {
        if headers == 2 {
            let name = format!("{} →", axis.kind.name());
            put(buf, body.x, area.y, &name, body.width, theme.dim());
        }
        for (i, value) in axis.values.iter().enumerate().skip(first_col).take(shown_cols) {
            let x = body.x + (i - first_col) as u16 * cell_w;
            let style = if i == state.col { theme.key() } else { theme.dim() };
            put(buf, x + 2, area.y + headers - 1, value, cell_w.saturating_sub(3), style);
        }
    }
    if let Some(axis) = &grid.rows {
        if headers == 2 && gutter > 1 {
            put(buf, area.x, area.y + 1, &format!("{} ↓", axis.kind.name()), gutter - 1, theme.dim());
        }
        for (i, value) in axis.values.iter().enumerate().skip(first_row).take(shown_rows) {
            let y = body.y + (i - first_row) as u16 * cell_h;
            let style = if i == state.row { theme.key() } else { theme.dim() };
            put(buf, area.x, y, value, gutter.saturating_sub(1), style);
        }
    }
    for row in first_row..first_row + shown_rows {
        for col in first_col..first_col + shown_cols {
            let rect = Rect {
                x: body.x + (col - first_col) as u16 * cell_w,
                y: body.y + (row - first_row) as u16 * cell_h,
                width: cell_w,
                height: cell_h,
            };
            let selected = row == state.row && col == state.col;
            draw_cell(buf, rect, page.at(row, col), selected, state, images, theme);
        }
    }
}

/// Cells along one direction: (size of a cell, first index shown, how many are shown), keeping
/// `selected` in view when they do not all fit at `min` cells each.
fn span(length: u16, count: usize, min: u16, selected: usize) -> (u16, usize, usize) {
    let count = count.max(1);
    let size = (length / count as u16).max(min);
    let fits = usize::from(length / size).clamp(1, count);
    let first = selected.saturating_sub(fits - 1).min(count - fits);
    (size, first, fits)
}

/// A header: one clean line (a prompt axis' values are the user's text, newlines included).
fn put(buf: &mut Buffer, x: u16, y: u16, text: &str, width: u16, style: ratatui::style::Style) {
    if width > 0 {
        buf.set_stringn(x, y, clip(&one_line(text), width as usize), width as usize, style);
    }
}

fn draw_cell(
    buf: &mut Buffer,
    rect: Rect,
    job: Option<&JobView>,
    selected: bool,
    state: &GridState,
    images: &mut dyn ImageView,
    theme: &Theme,
) {
    let phase = CellPhase::of(job);
    if phase == CellPhase::Empty {
        return;
    }
    let path = job.and_then(|j| j.files.first()).map(|f| f.path.as_path());
    let mark = path.and_then(|p| {
        if Some(p) == state.marked_a {
            Some("A")
        } else if Some(p) == state.marked_b {
            Some("B")
        } else {
            None
        }
    });
    let starred = job.is_some_and(|j| j.starred);
    let highlight = selected && state.focused;
    let content = if rect.width >= FRAMED.0 && rect.height >= FRAMED.1 {
        let mut tags = String::new();
        if starred {
            tags.push('★');
        }
        if let Some(m) = mark {
            tags.push_str(m);
        }
        let mut block = Block::bordered().border_style(if highlight { theme.border_focused() } else { theme.border() });
        if !tags.is_empty() {
            block = block.title(Line::styled(tags, theme.key()));
        }
        let inner = block.inner(rect);
        block.render(rect, buf);
        inner
    } else {
        let style = if highlight { theme.key() } else { theme.dim() };
        let first = if selected { "▶" } else { mark.unwrap_or(" ") };
        let second = if starred {
            "★"
        } else if selected {
            mark.unwrap_or(" ")
        } else {
            " "
        };
        buf.set_stringn(rect.x, rect.y, first, 1, style);
        if rect.width > 1 {
            buf.set_stringn(rect.x + 1, rect.y, second, 1, theme.key());
        }
        // One blank column on the right keeps neighbouring thumbnails apart.
        Rect { x: rect.x + 2, width: rect.width.saturating_sub(3), ..rect }
    };
    if content.width == 0 || content.height == 0 {
        return;
    }
    match (phase, path) {
        (CellPhase::Done, Some(path)) if content.width >= 2 => images.draw_file(path, content, buf),
        _ => {
            let word = phase.label();
            let text = if word.chars().count() <= content.width as usize { word } else { phase.glyph() };
            let style = if phase == CellPhase::Failed { theme.error() } else { theme.dim() };
            Paragraph::new(Line::styled(text, style)).render(content, buf);
        }
    }
}

/// An output marked for comparing, with what it is ("seed=3, guidance_scale=2").
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Marked {
    pub item: OutputItem,
    pub label: String,
}

/// How A and B are shown: one at a time (which one), or side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CompareView {
    Flip { showing_b: bool },
    Split,
}

/// A and B over `area`: split, both at the same size (the halves are equal, an odd column left
/// blank); flipped, the one shown.
pub(super) fn draw_compare(
    buf: &mut Buffer,
    area: Rect,
    marks: [&Marked; 2],
    view: CompareView,
    images: &mut dyn ImageView,
    theme: &Theme,
) {
    match view {
        CompareView::Split => {
            let half = area.width / 2;
            for (i, marked) in marks.iter().enumerate() {
                let rect = Rect { x: area.x + i as u16 * half, width: half, ..area };
                draw_marked(buf, rect, ["A", "B"][i], marked, images, theme);
            }
        }
        CompareView::Flip { showing_b } => {
            let i = usize::from(showing_b);
            draw_marked(buf, area, ["A", "B"][i], marks[i], images, theme);
        }
    }
}

fn draw_marked(buf: &mut Buffer, rect: Rect, which: &str, marked: &Marked, images: &mut dyn ImageView, theme: &Theme) {
    let title = format!(" {which} · {} · {} ", marked.label, marked.item.caption);
    let block = Block::bordered()
        .border_style(theme.border_focused())
        .title(Line::styled(clip(&title, rect.width.saturating_sub(2) as usize), theme.key()));
    let inner = block.inner(rect);
    block.render(rect, buf);
    match &marked.item.path {
        Some(p) => images.draw_file(p, inner, buf),
        None => Paragraph::new(Line::styled("not downloaded", theme.dim())).render(inner, buf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_keeps_the_selection_in_view() {
        assert_eq!(span(120, 8, 3, 0), (15, 0, 8), "all fit");
        assert_eq!(span(10, 8, 3, 0), (3, 0, 3));
        assert_eq!(span(10, 8, 3, 7), (3, 5, 3), "the last ones, with the selection");
        assert_eq!(span(10, 8, 3, 4), (3, 2, 3));
        assert_eq!(span(0, 8, 1, 3), (1, 3, 1), "no room still names one cell");
    }

    #[test]
    fn headers_are_one_clean_line_even_for_prompts_with_newlines_and_escapes() {
        use crate::model::Draft;
        use crate::model::sweep::{Axis, AxisKind};
        let mut jobs = JobStore::default();
        let axes = vec![
            Axis { kind: AxisKind::Prompt, values: vec!["a\nb".into(), "red \u{1b}[31mcat".into()] },
            Axis { kind: AxisKind::Seed, values: vec!["1".into(), "2".into()] },
        ];
        let input = Draft { prompt: "p".into(), images: vec!["https://a/b.png".into()], ..Draft::default() };
        let input = input.validate(4).unwrap();
        let sweep = jobs.plan_sweep("sw".into(), axes, |_| input.clone(), None).clone();
        let page = GridPage::of(&sweep, &jobs, 0);
        let area = Rect::new(0, 0, 40, 8);
        let mut buf = Buffer::empty(area);
        let state = GridState { row: 0, col: 0, focused: true, marked_a: None, marked_b: None };
        draw_grid(&mut buf, area, &sweep.grid, &page, &state, &mut crate::tui::widgets::NoImages, &Theme::MONO);
        let text: String = buf.content().iter().map(|c| c.symbol()).collect();
        assert!(text.contains("a b") && text.contains("red cat"), "{text}");
        assert!(!text.contains('\u{1b}'));
        assert!(text.contains("queued"), "points not sent yet: {text}");
    }
}
