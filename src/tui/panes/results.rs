//! Results pane: thumbnails of the selected job's or history entry's outputs in a grid (up to 4),
//! one image full-screen, or inputs and outputs side by side.

use crossterm::event::KeyEvent;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Widget};

use super::{Canvas, Hint, PaneBehaviour, PaneEvent, ResultsSource, Shared};
use crate::model::ImageSource;
use crate::sanitize::one_line;
use crate::tui::action::Action;
use crate::tui::job_store::{JobStore, OutputItem};
use crate::tui::message::{Effect, HistoryDetailView, Notice};
use crate::tui::pane::Pane;
use crate::tui::view::theme::Theme;
use crate::tui::widgets::{ImageView, clip, pane_block};

#[derive(Debug)]
pub struct ResultsPane {
    source: ResultsSource,
    selected: usize,
    fullscreen: bool,
    side_by_side: bool,
}

impl Default for ResultsPane {
    fn default() -> ResultsPane {
        ResultsPane { source: ResultsSource::Nothing, selected: 0, fullscreen: false, side_by_side: false }
    }
}

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

impl ResultsPane {
    pub fn source(&self) -> &ResultsSource {
        &self.source
    }

    pub fn selected(&self) -> usize {
        self.selected
    }

    pub fn is_fullscreen(&self) -> bool {
        self.fullscreen
    }

    pub fn is_side_by_side(&self) -> bool {
        self.side_by_side
    }

    pub fn show(&mut self, source: ResultsSource) {
        self.source = source;
        self.selected = 0;
    }

    /// A history entry was loaded for the editor: show it without moving the selection.
    pub fn show_history(&mut self, detail: HistoryDetailView) {
        self.source = ResultsSource::History(Box::new(detail));
    }

    /// The outputs shown.
    pub fn items(&self, jobs: &JobStore) -> Vec<OutputItem> {
        match &self.source {
            ResultsSource::Nothing => Vec::new(),
            ResultsSource::Job(id) => jobs.get(*id).map(|j| j.outputs()).unwrap_or_default(),
            ResultsSource::Sweep(sweep) => jobs
                .sweep(sweep)
                .map(|s| s.points.iter().filter_map(|(_, id)| jobs.get(*id)).flat_map(|j| j.outputs()).collect())
                .unwrap_or_default(),
            ResultsSource::History(d) => d
                .outputs
                .iter()
                .enumerate()
                .map(|(i, p)| OutputItem { path: Some(p.clone()), url: None, caption: format!("#{}", i + 1) })
                .collect(),
        }
    }

    /// The inputs of what is shown (for side by side).
    fn inputs(&self, jobs: &JobStore) -> Vec<String> {
        match &self.source {
            ResultsSource::Nothing => Vec::new(),
            ResultsSource::Job(id) => jobs.get(*id).map(|j| j.inputs.clone()).unwrap_or_default(),
            ResultsSource::Sweep(sweep) => jobs
                .sweep(sweep)
                .and_then(|s| s.points.first())
                .and_then(|(_, id)| jobs.get(*id))
                .map(|j| j.inputs.clone())
                .unwrap_or_default(),
            ResultsSource::History(d) => d.inputs.clone(),
        }
    }

    fn request_id(&self, jobs: &JobStore) -> Option<String> {
        match &self.source {
            ResultsSource::Nothing => None,
            ResultsSource::Job(id) => jobs.get(*id).and_then(|j| j.request_id.clone()),
            ResultsSource::Sweep(_) => None,
            ResultsSource::History(d) => d.request_id.clone(),
        }
    }

    fn title(&self, jobs: &JobStore, ctx: &crate::tui::context::AppContext) -> String {
        let output_dir = &ctx.output_dir;
        let what = match &self.source {
            ResultsSource::Nothing => "nothing selected".to_string(),
            // This session's files are in the output folder: say which (history entries name
            // their own paths in the caption).
            ResultsSource::Job(id) => match jobs.get(*id) {
                Some(j) => with_cost(format!("job #{id} · {}", j.endpoint), &j.cost_text()),
                None => format!("job #{id}"),
            },
            ResultsSource::Sweep(id) => match jobs.sweep(id) {
                Some(s) => format!("sweep {id} · {}", s.shape()),
                None => format!("sweep {id}"),
            },
            ResultsSource::History(d) => with_cost(
                format!("history {} · {}", d.id.get(..8).unwrap_or(&d.id), ctx.endpoint_name(&d.endpoint)),
                &crate::tui::context::cost_text(d.estimated_usd, d.billed_usd),
            ),
        };
        let n = self.items(jobs).len();
        let what = if n == 0 { what } else { format!("{what} · {}/{n}", self.selected + 1) };
        match self.source {
            ResultsSource::Job(_) | ResultsSource::Sweep(_) => format!("{what} · in {output_dir}"),
            _ => what,
        }
    }

    /// One image over the whole screen (but the status bar).
    pub fn draw_fullscreen(&self, c: Canvas) {
        let items = self.items(c.shared.jobs);
        let Some(item) = items.get(self.selected) else { return };
        let mut caption = item.caption.clone();
        if let Some(p) = &item.path {
            caption.push_str(&format!(" · {}", one_line(&p.display().to_string())));
        }
        caption.push_str(" · Enter/Esc back · ←/→ other images");
        draw_cell(c.buf, c.area, &OutputItem { caption, ..item.clone() }, true, c.images, c.theme);
    }
}

fn with_cost(what: String, cost: &str) -> String {
    if cost.is_empty() { what } else { format!("{what} · {cost}") }
}

impl PaneBehaviour for ResultsPane {
    fn pane(&self) -> Pane {
        Pane::Results
    }

    fn on_key(&mut self, _key: &KeyEvent, action: Option<Action>, shared: Shared) -> Option<Vec<PaneEvent>> {
        let items = self.items(shared.jobs);
        let n = items.len();
        match action? {
            Action::Left | Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Right | Action::Down => self.selected = (self.selected + 1).min(n.saturating_sub(1)),
            Action::Confirm if n > 0 => self.fullscreen = !self.fullscreen,
            Action::Close if self.fullscreen => self.fullscreen = false,
            Action::ToggleSideBySide => self.side_by_side = !self.side_by_side,
            Action::CopyPath => {
                let Some(item) = items.get(self.selected) else { return Some(Vec::new()) };
                let text = item
                    .path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .or_else(|| item.url.clone())
                    .unwrap_or_default();
                return Some(vec![Notice::info(format!("copied {text}")).into(), PaneEvent::Run(Effect::Copy(text))]);
            }
            Action::CopyRequestId => {
                return Some(match self.request_id(shared.jobs) {
                    Some(id) => {
                        vec![Notice::info(format!("copied request id {id}")).into(), PaneEvent::Run(Effect::Copy(id))]
                    }
                    None => vec![Notice::info("no request id for this entry").into()],
                });
            }
            Action::OpenFile => {
                return Some(match items.get(self.selected).and_then(|i| i.path.clone()) {
                    Some(path) => vec![PaneEvent::Run(Effect::OpenPath(path))],
                    None => vec![Notice::error("no local file to open").into()],
                });
            }
            Action::Confirm => {}
            _ => return None,
        }
        Some(Vec::new())
    }

    fn hints(&self, shared: Shared) -> Vec<Hint> {
        let km = shared.keymap();
        if self.items(shared.jobs).is_empty() {
            return Vec::new();
        }
        let mut wanted =
            vec![(Action::Confirm, "full"), (Action::CopyPath, "copy"), (Action::ToggleSideBySide, "side by side")];
        if self.fullscreen {
            wanted = vec![(Action::Close, "back"), (Action::Right, "next image"), (Action::CopyPath, "copy")];
        }
        wanted.into_iter().filter_map(|(a, label)| Hint::bound(km, Pane::Results, a, label, false)).collect()
    }

    fn draw(&mut self, c: Canvas) {
        let jobs = c.shared.jobs;
        let theme = c.theme;
        let block = pane_block(Pane::Results, c.focused, self.title(jobs, c.shared.ctx), theme);
        let inner = block.inner(c.area);
        block.render(c.area, c.buf);
        let items = self.items(jobs);
        if items.is_empty() {
            let text = match &self.source {
                ResultsSource::Nothing => "outputs appear here: select a job or a history entry",
                ResultsSource::Job(id) => match jobs.get(*id) {
                    Some(j) if j.phase.is_active() => "waiting for the outputs…",
                    _ => "no outputs",
                },
                ResultsSource::Sweep(_) => "waiting for the sweep's outputs…",
                ResultsSource::History(_) => "no outputs stored for this entry",
            };
            Paragraph::new(Line::styled(text, theme.dim())).render(inner, c.buf);
            return;
        }
        let mut outputs_area = inner;
        if self.side_by_side {
            let [left, right] = Layout::horizontal([Constraint::Ratio(1, 2); 2]).areas(inner);
            let inputs = self.inputs(jobs);
            for (text, cell) in inputs.iter().zip(grid(left, inputs.len().min(4))) {
                let item = match ImageSource::classify(text) {
                    ImageSource::Local(p) => OutputItem { path: Some(p), url: None, caption: "input".into() },
                    other => OutputItem { path: None, url: None, caption: clip(&one_line(&other.display()), 30) },
                };
                draw_cell(c.buf, cell, &item, false, c.images, theme);
            }
            outputs_area = right;
        }
        for (i, (item, cell)) in items.iter().zip(grid(outputs_area, items.len().min(4))).enumerate() {
            draw_cell(c.buf, cell, item, c.focused && i == self.selected, c.images, theme);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Draft;
    use crate::runner::SavedImage;
    use crate::tui::message::JobFinish;
    use crate::tui::panes::harness::Harness;
    use std::path::PathBuf;

    /// A harness with job #1 done, two outputs.
    fn done() -> (Harness, ResultsPane) {
        let mut h = Harness::new();
        let d = Draft { prompt: "p".into(), images: vec!["https://a/b.png".into()], ..Draft::default() };
        let id = h.jobs.add(&d.validate(4).unwrap());
        let files = (0..2)
            .map(|index| SavedImage {
                index,
                path: PathBuf::from(format!("/out/r-{index}.png")),
                width: 2,
                height: 2,
                content_type: "image/png".into(),
                nsfw: index == 1,
            })
            .collect();
        h.jobs.finish(
            id,
            JobFinish::Done {
                request_id: "req-1".into(),
                seed: 9,
                files,
                urls: vec!["https://cdn/x.png".into(), "data:image/png;base64,AA".into()],
                prompt_used: "p".into(),
                inference: None,
                unrecorded: vec![],
                billable_units: None,
            },
        );
        let mut p = ResultsPane::default();
        p.show(ResultsSource::Job(id));
        (h, p)
    }

    #[test]
    fn copies_the_path_and_the_request_id() {
        let (h, mut p) = done();
        let copy = h.press(&mut p, "y").unwrap();
        assert!(copy.iter().any(|e| matches!(e, PaneEvent::Run(Effect::Copy(t)) if t == "/out/r-0.png")));
        let id = h.press(&mut p, "Y").unwrap();
        assert!(id.iter().any(|e| matches!(e, PaneEvent::Run(Effect::Copy(t)) if t == "req-1")));
    }

    #[test]
    fn enter_goes_full_screen_and_esc_comes_back() {
        let (h, mut p) = done();
        h.press(&mut p, "enter");
        assert!(p.is_fullscreen());
        h.press(&mut p, "right");
        assert_eq!(p.selected(), 1);
        h.press(&mut p, "esc");
        assert!(!p.is_fullscreen());
        assert!(h.press(&mut p, "esc").is_none(), "Esc outside full screen is not the pane's");
    }

    #[test]
    fn outputs_carry_size_nsfw_and_only_real_urls() {
        let (h, p) = done();
        let items = p.items(&h.jobs);
        assert_eq!(items[0].caption, "#1 2x2");
        assert_eq!(items[1].caption, "#2 2x2 NSFW");
        assert_eq!(items[0].url.as_deref(), Some("https://cdn/x.png"));
        assert_eq!(items[1].url, None, "a data: URI is not a URL to copy");
    }

    #[test]
    fn draws_a_cell_per_output_and_side_by_side_the_inputs() {
        let (h, mut p) = done();
        let screen = h.render(&mut p, 80, 12);
        assert!(screen.contains("6 Results job #1 · [pro] multi · 1/2 · in ~/Pictures/kontext"), "{screen}");
        assert!(screen.contains("r-0.png") && screen.contains("r-1.png"), "{screen}");
        h.press(&mut p, "v");
        let screen = h.render(&mut p, 80, 12);
        assert!(screen.contains("https://a/b.png"), "the input's caption: {screen}");
    }
}
