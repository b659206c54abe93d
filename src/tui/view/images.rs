//! Images pane: the input list (URL, data: URI or local file), the add-line, and a thumbnail of
//! the selected local file.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::theme::Theme;
use super::{ImageView, clip, pane_block};
use crate::model::{Field, ImageSource};
use crate::sanitize::one_line;
use crate::tui::app::{App, Pane};

pub fn draw(buf: &mut Buffer, area: Rect, app: &App, images: &mut dyn ImageView, theme: &Theme) {
    let title = format!("{}/{}", app.images.items.len(), app.ctx.max_images);
    let block = pane_block(app, Pane::Images, title, theme);
    let inner = block.inner(area);
    block.render(area, buf);

    let selected_local = app.images.info.get(app.images.selected).and_then(|i| i.local_file.clone());
    // The newest job's upload, shown against the image it concerns.
    let uploading = app.jobs.first().and_then(|j| match j.phase {
        crate::tui::app::JobPhase::Uploading(i) => j.inputs.get(i).cloned(),
        _ => None,
    });
    // The thumbnail goes under the list when there is height to spare, else beside it.
    let list_rows = (app.images.items.len() as u16 * 2 + 3).max(4);
    let (list_area, thumb_area) = match selected_local {
        Some(_) if inner.height >= list_rows + 5 => {
            let [l, t] = Layout::vertical([Constraint::Length(list_rows), Constraint::Min(5)]).areas(inner);
            (l, Some(t))
        }
        Some(_) if inner.width >= 70 => {
            let [l, t] = Layout::horizontal([Constraint::Min(40), Constraint::Length(inner.width / 3)]).areas(inner);
            (l, Some(t))
        }
        _ => (inner, None),
    };
    let mut lines = Vec::new();
    if app.images.items.is_empty() && app.images.input.is_none() {
        lines.push(Line::styled("no images yet — press a to add a URL or a file path", theme.dim()));
        lines.push(Line::styled("(or paste paths/URLs here, one per line)", theme.dim()));
    }
    let width = list_area.width as usize;
    for (i, text) in app.images.items.iter().enumerate() {
        let source = ImageSource::classify(text);
        let err = app.errors.iter().find(|e| e.field == Field::ImageUrls(Some(i)));
        let selected = i == app.images.selected && app.focus == Pane::Images;
        let mut tag = app.images.info.get(i).map(|info| info.tag.clone()).unwrap_or_default();
        if uploading.as_deref() == Some(source.display().as_str()) {
            tag = "uploading…".into();
        }
        let name_w = width.saturating_sub(tag.len() + 5);
        let mut spans = vec![
            Span::styled(format!("{} ", i + 1), theme.dim()),
            Span::styled(
                clip(&one_line(&source.display()), name_w),
                if selected { theme.selected() } else { Default::default() },
            ),
            Span::raw(" "),
            Span::styled(tag, if err.is_some() { theme.error() } else { theme.dim() }),
        ];
        if err.is_some() {
            spans.push(Span::styled(" ✗", theme.error()));
        }
        lines.push(Line::from(spans));
        if let Some(e) = err {
            lines.push(Line::styled(clip(&format!("  {}", e.message), width), theme.error()));
        }
    }
    if let Some(e) = app.errors.iter().find(|e| e.field == Field::ImageUrls(None)) {
        lines.push(Line::styled(clip(&format!("✗ {}", e.message), width), theme.error()));
    }
    if let Some(input) = &app.images.input {
        lines.push(Line::from(vec![
            Span::styled("add: ", theme.key()),
            Span::raw(clip(&one_line(input), width.saturating_sub(7))),
            Span::styled("█", theme.key()),
        ]));
        lines.push(Line::styled("Enter adds · Esc cancels", theme.dim()));
    }
    Paragraph::new(lines).render(list_area, buf);

    if let (Some(t), Some(path)) = (thumb_area, selected_local) {
        images.draw_file(&path, t, buf);
    }
}
