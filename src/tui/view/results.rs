//! Results pane: thumbnails of the selected job's or history entry's outputs in a grid (up to 4),
//! one image full-screen, or inputs and outputs side by side.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Widget};

use super::theme::Theme;
use super::{ImageView, clip, pane_block};
use crate::model::ImageSource;
use crate::tui::app::{App, OutputItem, Pane, ResultsSource};

/// Splits `area` into `n` cells (1 → whole, 2 → side by side, 3–4 → 2×2).
pub fn grid(area: Rect, n: usize) -> Vec<Rect> {
    match n {
        0 => Vec::new(),
        1 => vec![area],
        2 => Layout::horizontal([Constraint::Ratio(1, 2); 2]).split(area).to_vec(),
        _ => {
            let rows = Layout::vertical([Constraint::Ratio(1, 2); 2]).split(area);
            rows.iter()
                .flat_map(|r| Layout::horizontal([Constraint::Ratio(1, 2); 2]).split(*r).to_vec())
                .take(n)
                .collect()
        }
    }
}

fn draw_cell(
    buf: &mut Buffer,
    cell: Rect,
    item: &OutputItem,
    selected: bool,
    images: &mut dyn ImageView,
    theme: &Theme,
) {
    let block = Block::bordered()
        .border_style(if selected { theme.border_focused() } else { theme.border() })
        .title_bottom(Line::styled(
            clip(&item.caption, cell.width.saturating_sub(2) as usize),
            if selected { theme.key() } else { theme.dim() },
        ));
    let inner = block.inner(cell);
    block.render(cell, buf);
    match &item.path {
        Some(p) => images.draw_file(p, inner, buf),
        None => Paragraph::new(Line::styled("not downloaded", theme.dim())).render(inner, buf),
    }
}

fn title(app: &App) -> String {
    let what = match &app.results.source {
        ResultsSource::Nothing => "nothing selected".to_string(),
        ResultsSource::Job(id) => format!("job #{id}"),
        ResultsSource::History(d) => format!("history {}", d.id.get(..8).unwrap_or(&d.id)),
    };
    let n = app.result_items().len();
    if n == 0 { what } else { format!("{what} · {}/{n}", app.results.selected + 1) }
}

pub fn draw(buf: &mut Buffer, area: Rect, app: &App, images: &mut dyn ImageView, theme: &Theme) {
    let block = pane_block(app, Pane::Results, title(app), theme);
    let inner = block.inner(area);
    block.render(area, buf);
    let items = app.result_items();
    if items.is_empty() {
        let text = match &app.results.source {
            ResultsSource::Nothing => "outputs appear here: select a job or a history entry",
            ResultsSource::Job(id) => match app.jobs.iter().find(|j| j.id == *id) {
                Some(j) if j.phase.is_active() => "waiting for the outputs…",
                _ => "no outputs",
            },
            ResultsSource::History(_) => "no outputs stored for this entry",
        };
        Paragraph::new(Line::styled(text, theme.dim())).render(inner, buf);
        return;
    }
    let focused = app.focus == Pane::Results;
    if app.results.side_by_side {
        let [left, right] = Layout::horizontal([Constraint::Ratio(1, 2); 2]).areas(inner);
        let inputs = app.result_inputs();
        let cells = grid(left, inputs.len().min(4));
        for (text, cell) in inputs.iter().zip(cells) {
            let item = match ImageSource::classify(text) {
                ImageSource::Local(p) => OutputItem { path: Some(p), url: None, caption: "input".into() },
                other => OutputItem {
                    path: None,
                    url: None,
                    caption: clip(&crate::sanitize::one_line(&other.display()), 30),
                },
            };
            draw_cell(buf, cell, &item, false, images, theme);
        }
        for (i, (item, cell)) in items.iter().zip(grid(right, items.len().min(4))).enumerate() {
            draw_cell(buf, cell, item, focused && i == app.results.selected, images, theme);
        }
        return;
    }
    for (i, (item, cell)) in items.iter().zip(grid(inner, items.len().min(4))).enumerate() {
        draw_cell(buf, cell, item, focused && i == app.results.selected, images, theme);
    }
}

pub fn draw_fullscreen(buf: &mut Buffer, area: Rect, app: &App, images: &mut dyn ImageView, theme: &Theme) {
    let items = app.result_items();
    let Some(item) = items.get(app.results.selected) else { return };
    let mut caption = item.caption.clone();
    if let Some(p) = &item.path {
        caption.push_str(&format!(" · {}", crate::sanitize::one_line(&p.display().to_string())));
    }
    caption.push_str(" · Enter/Esc back · ←/→ other images");
    draw_cell(buf, area, &OutputItem { caption, ..item.clone() }, true, images, theme);
}
