//! Results pane: thumbnails of the selected job's or history entry's outputs in a grid (up to 4),
//! a sweep as a grid of its points (axis headers, one thumbnail per cell, pages for further
//! axes), one image full-screen, inputs and outputs side by side, or two marked outputs
//! compared (A/B, flipped or split).

mod grid;

use crossterm::event::KeyEvent;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Widget};

use self::grid::{CompareView, GridPage, GridState, Marked};
use super::{Canvas, Hint, PaneBehaviour, PaneEvent, ResultsSource, Shared};
use crate::model::ImageSource;
use crate::sanitize::one_line;
use crate::tui::action::Action;
use crate::tui::job_store::{JobStore, JobView, OutputItem, SweepView};
use crate::tui::message::{Effect, HistoryDetailView, Notice};
use crate::tui::pane::Pane;
use crate::tui::view::theme::Theme;
use crate::tui::widgets::{ImageView, clip, pane_block};

/// The selected cell of a sweep's grid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GridCursor {
    pub page: usize,
    pub row: usize,
    pub col: usize,
}

#[derive(Debug, Default)]
pub struct ResultsPane {
    source: ResultsSource,
    selected: usize,
    cursor: GridCursor,
    fullscreen: bool,
    side_by_side: bool,
    /// The outputs marked A and B; kept when another job or sweep is shown, so any two outputs
    /// of the session can be compared.
    marks: [Option<Marked>; 2],
    compare: Option<CompareView>,
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

    /// The selected cell when a sweep is shown.
    pub fn cursor(&self) -> GridCursor {
        self.cursor
    }

    /// Full screen: one image, or A and B compared.
    pub fn is_fullscreen(&self) -> bool {
        self.fullscreen || self.compare.is_some()
    }

    pub fn is_side_by_side(&self) -> bool {
        self.side_by_side
    }

    /// A and B are shown: `Some(true)` split side by side, `Some(false)` one at a time.
    pub fn is_comparing(&self) -> Option<bool> {
        self.compare.map(|v| v == CompareView::Split)
    }

    /// The file marked A (0) or B (1).
    pub fn marked(&self, which: usize) -> Option<&std::path::Path> {
        self.marks.get(which)?.as_ref()?.item.path.as_deref()
    }

    pub fn show(&mut self, source: ResultsSource) {
        if source != self.source {
            self.cursor = GridCursor::default();
            self.compare = None;
        }
        self.source = source;
        self.selected = 0;
    }

    /// A history entry was loaded for the editor: show it without moving the selection.
    pub fn show_history(&mut self, detail: HistoryDetailView) {
        self.source = ResultsSource::History(Box::new(detail));
    }

    fn sweep<'a>(&self, jobs: &'a JobStore) -> Option<&'a SweepView> {
        match &self.source {
            ResultsSource::Sweep(id) => jobs.sweep(id),
            _ => None,
        }
    }

    /// The job in the selected cell of the sweep shown.
    fn cell_job<'a>(&self, jobs: &'a JobStore) -> Option<&'a JobView> {
        let sweep = self.sweep(jobs)?;
        GridPage::of(sweep, jobs, self.cursor.page).at(self.cursor.row, self.cursor.col)
    }

    /// The outputs shown (a sweep: the selected cell's).
    pub fn items(&self, jobs: &JobStore) -> Vec<OutputItem> {
        match &self.source {
            ResultsSource::Nothing => Vec::new(),
            ResultsSource::Job(id) => jobs.get(*id).map(|j| j.outputs()).unwrap_or_default(),
            ResultsSource::Sweep(_) => self.cell_job(jobs).map(|j| j.outputs()).unwrap_or_default(),
            ResultsSource::History(d) => d
                .outputs
                .iter()
                .enumerate()
                .map(|(i, p)| OutputItem { path: Some(p.clone()), url: None, caption: format!("#{}", i + 1) })
                .collect(),
        }
    }

    /// The output the keys act on (copy, open, full screen, mark): a sweep's selected cell's
    /// first output, or the selected one of a job or entry.
    fn current(&self, jobs: &JobStore) -> Option<OutputItem> {
        match &self.source {
            ResultsSource::Sweep(_) => self.items(jobs).into_iter().next(),
            _ => self.items(jobs).into_iter().nth(self.selected),
        }
    }

    /// What the current output is, for a mark's label.
    fn describe_current(&self, jobs: &JobStore) -> String {
        match &self.source {
            ResultsSource::Nothing => String::new(),
            ResultsSource::Job(id) => format!("job #{id}"),
            ResultsSource::Sweep(_) => self.point_label(jobs).unwrap_or_default(),
            ResultsSource::History(d) => format!("history {}", d.id.get(..8).unwrap_or(&d.id)),
        }
    }

    /// The selected cell's axis values ("seed=3, guidance_scale=2").
    fn point_label(&self, jobs: &JobStore) -> Option<String> {
        let sweep = self.sweep(jobs)?;
        let id = self.cell_job(jobs)?.id;
        let (point, _) = sweep.points.iter().find(|(_, j)| *j == id)?;
        Some(one_line(&point.label(&sweep.axes)))
    }

    /// The inputs of what is shown (for side by side).
    fn inputs(&self, jobs: &JobStore) -> Vec<String> {
        match &self.source {
            ResultsSource::Nothing => Vec::new(),
            ResultsSource::Job(id) => jobs.get(*id).map(|j| j.inputs.clone()).unwrap_or_default(),
            ResultsSource::Sweep(_) => self.cell_job(jobs).map(|j| j.inputs.clone()).unwrap_or_default(),
            ResultsSource::History(d) => d.inputs.clone(),
        }
    }

    fn request_id(&self, jobs: &JobStore) -> Option<String> {
        match &self.source {
            ResultsSource::Nothing => None,
            ResultsSource::Job(id) => jobs.get(*id).and_then(|j| j.request_id.clone()),
            ResultsSource::Sweep(_) => self.cell_job(jobs).and_then(|j| j.request_id.clone()),
            ResultsSource::History(d) => d.request_id.clone(),
        }
    }

    /// The job a star goes to: the one shown, or the sweep's selected cell.
    fn star_target<'a>(&self, jobs: &'a JobStore) -> Option<&'a JobView> {
        match &self.source {
            ResultsSource::Job(id) => jobs.get(*id),
            ResultsSource::Sweep(_) => self.cell_job(jobs),
            _ => None,
        }
    }

    fn title(&self, jobs: &JobStore, ctx: &crate::tui::context::AppContext) -> String {
        let output_dir = &ctx.output_dir;
        if let Some(sweep) = self.sweep(jobs) {
            let mut what = format!("sweep {} · {}", one_line(sweep.id.get(..8).unwrap_or(&sweep.id)), sweep.shape());
            let pages = sweep.grid.pages();
            if pages > 1 {
                let values = one_line(&grid::page_label(&sweep.grid, self.cursor.page));
                what.push_str(&format!(" · page {}/{pages} {values}", self.cursor.page + 1));
            }
            if let Some(label) = self.point_label(jobs) {
                what.push_str(&format!(" · {label}"));
            }
            return format!("{what} · in {output_dir}");
        }
        let what = match &self.source {
            ResultsSource::Nothing => "nothing selected".to_string(),
            // This session's files are in the output folder: say which (history entries name
            // their own paths in the caption).
            ResultsSource::Job(id) => match jobs.get(*id) {
                Some(j) => with_cost(format!("job #{id} · {}", j.endpoint), &j.cost_text()),
                None => format!("job #{id}"),
            },
            ResultsSource::Sweep(id) => format!("sweep {id}"),
            ResultsSource::History(d) => with_cost(
                format!("history {} · {}", d.id.get(..8).unwrap_or(&d.id), ctx.endpoint_name(&d.endpoint)),
                &crate::tui::context::cost_text(d.estimated_usd, d.billed_usd),
            ),
        };
        let n = self.items(jobs).len();
        let what = if n == 0 { what } else { format!("{what} · {}/{n}", self.selected + 1) };
        match self.source {
            ResultsSource::Job(_) => format!("{what} · in {output_dir}"),
            _ => what,
        }
    }

    /// One image (or A and B) over the whole screen (but the status bar).
    pub fn draw_fullscreen(&self, c: Canvas) {
        if let (Some(view), [Some(a), Some(b)]) = (self.compare, &self.marks) {
            grid::draw_compare(c.buf, c.area, [a, b], view, c.images, c.theme);
            return;
        }
        let Some(item) = self.current(c.shared.jobs) else { return };
        let mut caption = match self.point_label(c.shared.jobs) {
            Some(label) => format!("{label} · {}", item.caption),
            None => item.caption.clone(),
        };
        if let Some(p) = &item.path {
            caption.push_str(&format!(" · {}", one_line(&p.display().to_string())));
        }
        caption.push_str(if self.sweep(c.shared.jobs).is_some() {
            " · Enter/Esc back · arrows: other cells"
        } else {
            " · Enter/Esc back · ←/→ other images"
        });
        draw_cell(c.buf, c.area, &OutputItem { caption, ..item }, true, c.images, c.theme);
    }

    /// Keys of the A/B view; `None` for keys it leaves alone.
    fn on_compare_key(&mut self, view: CompareView, action: Action) -> Option<Vec<PaneEvent>> {
        self.compare = match (action, view) {
            (Action::SwapAB, CompareView::Flip { showing_b }) => Some(CompareView::Flip { showing_b: !showing_b }),
            (Action::SwapAB, CompareView::Split) => Some(CompareView::Flip { showing_b: false }),
            (Action::ToggleSplit, CompareView::Split) => Some(CompareView::Flip { showing_b: false }),
            (Action::ToggleSplit, CompareView::Flip { .. }) => Some(CompareView::Split),
            (Action::Close | Action::Compare, _) => None,
            _ => return None,
        };
        Some(Vec::new())
    }

    /// Arrows and pages over a sweep's grid.
    fn move_in_grid(&mut self, sweep: &SweepView, action: Action) -> bool {
        let (rows, cols) = grid::dimensions(&sweep.grid);
        let c = &mut self.cursor;
        match action {
            Action::Up => c.row = c.row.saturating_sub(1),
            Action::Down => c.row = (c.row + 1).min(rows - 1),
            Action::Left => c.col = c.col.saturating_sub(1),
            Action::Right => c.col = (c.col + 1).min(cols - 1),
            Action::PrevPage => c.page = c.page.saturating_sub(1),
            Action::NextPage => c.page = (c.page + 1).min(sweep.grid.pages().max(1) - 1),
            _ => return false,
        }
        true
    }

    fn mark(&mut self, which: usize, jobs: &JobStore) -> Vec<PaneEvent> {
        let Some(item) = self.current(jobs) else { return vec![Notice::info("no output here to mark").into()] };
        let label = self.describe_current(jobs);
        let name = ["A", "B"][which];
        self.marks[which] = Some(Marked { item, label: label.clone() });
        let next = if self.marks.iter().all(Option::is_some) { "c compares A and B" } else { "mark the other too" };
        vec![Notice::info(format!("{name}: {label} · {next}")).into()]
    }

    fn star(&self, jobs: &JobStore) -> Vec<PaneEvent> {
        let Some(job) = self.star_target(jobs) else {
            return vec![Notice::info("star a history entry in the History pane").into()];
        };
        match &job.history_id {
            Some(history_id) => vec![PaneEvent::Run(Effect::Star {
                job: Some(job.id),
                history_id: history_id.clone(),
                starred: !job.starred,
            })],
            None => vec![Notice::info("not in the history yet: star it once it is sent").into()],
        }
    }
}

/// Keys for keepers and comparing, named wherever an output is shown.
const KEEPER_HINTS: [(Action, &str); 4] =
    [(Action::Star, "star"), (Action::MarkA, "mark A"), (Action::MarkB, "mark B"), (Action::Compare, "compare")];

fn with_cost(what: String, cost: &str) -> String {
    if cost.is_empty() { what } else { format!("{what} · {cost}") }
}

impl PaneBehaviour for ResultsPane {
    fn pane(&self) -> Pane {
        Pane::Results
    }

    fn on_key(&mut self, _key: &KeyEvent, action: Option<Action>, shared: Shared) -> Option<Vec<PaneEvent>> {
        let action = action?;
        if let Some(view) = self.compare {
            return self.on_compare_key(view, action);
        }
        if let Some(sweep) = self.sweep(shared.jobs)
            && self.move_in_grid(sweep, action)
        {
            return Some(Vec::new());
        }
        let items = self.items(shared.jobs);
        let n = items.len();
        match action {
            Action::Left | Action::Up => self.selected = self.selected.saturating_sub(1),
            Action::Right | Action::Down => self.selected = (self.selected + 1).min(n.saturating_sub(1)),
            Action::Confirm if n > 0 => self.fullscreen = !self.fullscreen,
            Action::Close if self.fullscreen => self.fullscreen = false,
            Action::ToggleSideBySide => self.side_by_side = !self.side_by_side,
            Action::Star => return Some(self.star(shared.jobs)),
            Action::MarkA => return Some(self.mark(0, shared.jobs)),
            Action::MarkB => return Some(self.mark(1, shared.jobs)),
            Action::Compare => {
                if self.marks.iter().all(Option::is_some) {
                    self.compare = Some(CompareView::Split);
                    return Some(Vec::new());
                }
                return Some(vec![Notice::info("mark two outputs first: a marks A, b marks B").into()]);
            }
            Action::CopyPath => {
                let Some(item) = self.current(shared.jobs) else { return Some(Vec::new()) };
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
                return Some(match self.current(shared.jobs).and_then(|i| i.path) {
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
        let bound = |wanted: Vec<(Action, &'static str)>| -> Vec<Hint> {
            wanted.into_iter().filter_map(|(a, label)| Hint::bound(km, Pane::Results, a, label, false)).collect()
        };
        if let Some(view) = self.compare {
            let flip = if view == CompareView::Split { "flip" } else { "show the other" };
            let split = if view == CompareView::Split { "one at a time" } else { "split" };
            return bound(vec![(Action::SwapAB, flip), (Action::ToggleSplit, split), (Action::Close, "back")]);
        }
        if let Some(sweep) = self.sweep(shared.jobs) {
            if self.fullscreen {
                return bound(vec![(Action::Close, "back"), (Action::Star, "star"), (Action::CopyPath, "copy")]);
            }
            let mut hints = vec![Hint::fixed("←↑↓→", "right", Some(Action::Right), "move")];
            if sweep.grid.pages() > 1 {
                hints.extend(bound(vec![(Action::NextPage, "next page"), (Action::PrevPage, "previous page")]));
            }
            hints.extend(bound([(Action::Confirm, "full")].into_iter().chain(KEEPER_HINTS).collect()));
            hints.extend(bound(vec![(Action::CopyPath, "copy"), (Action::CopyRequestId, "copy id")]));
            return hints;
        }
        if self.items(shared.jobs).is_empty() {
            return Vec::new();
        }
        if self.fullscreen {
            return bound(vec![(Action::Close, "back"), (Action::Right, "next image"), (Action::CopyPath, "copy")]);
        }
        let basics =
            [(Action::Confirm, "full"), (Action::CopyPath, "copy"), (Action::ToggleSideBySide, "side by side")];
        bound(basics.into_iter().chain(KEEPER_HINTS).collect())
    }

    fn draw(&mut self, c: Canvas) {
        let jobs = c.shared.jobs;
        let theme = c.theme;
        let block = pane_block(Pane::Results, c.focused, self.title(jobs, c.shared.ctx), theme);
        let inner = block.inner(c.area);
        block.render(c.area, c.buf);
        if let Some(sweep) = self.sweep(jobs) {
            let page = GridPage::of(sweep, jobs, self.cursor.page);
            let [a, b] = &self.marks;
            let state = GridState {
                row: self.cursor.row,
                col: self.cursor.col,
                focused: c.focused,
                marked_a: a.as_ref().and_then(|m| m.item.path.as_deref()),
                marked_b: b.as_ref().and_then(|m| m.item.path.as_deref()),
            };
            grid::draw_grid(c.buf, inner, &sweep.grid, &page, &state, c.images, theme);
            return;
        }
        let items = self.items(jobs);
        if items.is_empty() {
            let text = match &self.source {
                ResultsSource::Nothing => "outputs appear here: select a job or a history entry",
                ResultsSource::Job(id) => match jobs.get(*id) {
                    Some(j) if j.phase.is_active() => "waiting for the outputs…",
                    _ => "no outputs",
                },
                ResultsSource::Sweep(_) => "this sweep is not loaded: g on one of its requests in History shows it",
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

    /// A harness with a sweep "sw-1" of seeds 1..rows × guidance 1..cols × (pages) steps, every
    /// point done with one file but the first cell's (still running, not journaled yet) and the
    /// last one's (failed); the others journaled as "h-<job id>".
    pub(crate) fn sweep(rows: usize, cols: usize, pages: usize) -> (Harness, ResultsPane) {
        use crate::model::sweep::{Axis, AxisKind};
        let mut h = Harness::new();
        let values = |n: usize| (1..=n).map(|v| v.to_string()).collect::<Vec<_>>();
        let mut axes = vec![
            Axis { kind: AxisKind::Seed, values: values(rows) },
            Axis { kind: AxisKind::Guidance, values: values(cols) },
        ];
        if pages > 1 {
            axes.push(Axis { kind: AxisKind::Field("num_inference_steps".into()), values: values(pages) });
        }
        let d = Draft { prompt: "p".into(), images: vec!["https://a/b.png".into()], ..Draft::default() };
        let input = d.validate(4).unwrap();
        let ids: Vec<crate::tui::message::JobId> =
            h.jobs.plan_sweep("sw-1".into(), axes, |_| input.clone(), None).points.iter().map(|(_, id)| *id).collect();
        let last = *ids.last().unwrap();
        for &id in &ids {
            if id == ids[0] {
                h.jobs.on_event(id, crate::runner::JobEvent::InProgress);
                continue;
            }
            h.jobs.set_history_id(id, format!("h-{id}"));
            let finish = if id == last {
                JobFinish::Failed { message: "no".into(), field_errors: vec![], request_id: None, ambiguous: false }
            } else {
                JobFinish::Done {
                    request_id: format!("req-{id}"),
                    seed: id,
                    files: vec![SavedImage {
                        index: 0,
                        path: PathBuf::from(format!("/out/j{id}.png")),
                        width: 2,
                        height: 2,
                        content_type: "image/png".into(),
                        nsfw: false,
                    }],
                    urls: vec![],
                    prompt_used: "p".into(),
                    inference: None,
                    unrecorded: vec![],
                    billable_units: None,
                }
            };
            h.jobs.finish(id, finish);
        }
        let mut p = ResultsPane::default();
        p.show(ResultsSource::Sweep("sw-1".into()));
        (h, p)
    }

    fn copied(events: Option<Vec<PaneEvent>>) -> String {
        events
            .unwrap_or_default()
            .into_iter()
            .find_map(|e| match e {
                PaneEvent::Run(Effect::Copy(t)) => Some(t),
                _ => None,
            })
            .unwrap_or_default()
    }

    #[test]
    fn arrows_move_in_two_dimensions_within_the_grid() {
        let (h, mut p) = sweep(3, 4, 1);
        for key in ["right", "right", "down", "l", "right", "right"] {
            h.press(&mut p, key);
        }
        assert_eq!(p.cursor(), GridCursor { page: 0, row: 1, col: 3 }, "stops at the last column");
        for key in ["down", "down", "down", "left", "up"] {
            h.press(&mut p, key);
        }
        assert_eq!(p.cursor(), GridCursor { page: 0, row: 1, col: 2 });
        let job = h.jobs.sweep("sw-1").unwrap().job_at(0, 1, 2).unwrap();
        assert_eq!(copied(h.press(&mut p, "Y")), format!("req-{job}"));
        assert_eq!(copied(h.press(&mut p, "y")), format!("/out/j{job}.png"));
        assert!(p.title(&h.jobs, &h.ctx).contains("seed=2, guidance_scale=3"), "rows are seeds, columns guidance");
    }

    #[test]
    fn pages_turn_with_page_keys_and_brackets_and_the_title_names_the_page() {
        let (h, mut p) = sweep(2, 2, 3);
        let screen = h.render(&mut p, 100, 14);
        assert!(screen.contains("page 1/3 num_inference_steps=1"), "{screen}");
        h.press(&mut p, "pagedown");
        h.press(&mut p, "]");
        h.press(&mut p, "]");
        assert_eq!(p.cursor().page, 2, "stops at the last page");
        h.press(&mut p, "[");
        assert_eq!(p.cursor().page, 1);
        h.press(&mut p, "right");
        let screen = h.render(&mut p, 140, 14);
        assert!(screen.contains("page 2/3 num_inference_steps=2"), "{screen}");
        let job = h.jobs.sweep("sw-1").unwrap().job_at(1, 0, 1).unwrap();
        assert!(screen.contains(&format!("j{job}.png")), "the page's files: {screen}");
        assert!(screen.contains("seed=1, guidance_scale=2, num_inference_steps=2"), "{screen}");
        h.press(&mut p, "pageup");
        h.press(&mut p, "pageup");
        assert_eq!(p.cursor().page, 0);
    }

    #[test]
    fn cells_show_headers_thumbnails_phases_and_the_selection() {
        let (h, mut p) = sweep(2, 3, 1);
        let screen = h.render(&mut p, 90, 16);
        assert!(screen.contains("guidance_scale →"), "{screen}");
        assert!(screen.contains("seed ↓"), "{screen}");
        assert!(screen.contains("running"), "the first cell is still running: {screen}");
        assert!(screen.contains("failed"), "the last one failed: {screen}");
        let done = h.jobs.sweep("sw-1").unwrap().job_at(0, 0, 1).unwrap();
        assert!(screen.contains(&format!("j{done}.png")), "{screen}");
        // Small cells: a glyph for the phase, ▶ at the selection.
        let small = h.render(&mut p, 24, 7);
        assert!(small.contains('▶') && small.contains('◔') && small.contains('✗'), "{small}");
        h.press(&mut p, "down");
        let moved = h.render(&mut p, 24, 7);
        let line_of = |s: &str| s.lines().position(|l| l.contains('▶'));
        assert_eq!(line_of(&moved), line_of(&small).map(|l| l + 1), "{small}\n{moved}");
    }

    #[test]
    fn an_eight_by_eight_grid_fits_the_studios_results_pane() {
        let (h, mut p) = sweep(8, 8, 1);
        // The Results pane of a 200x50 studio.
        let screen = h.render(&mut p, 128, 20);
        let sweep = h.jobs.sweep("sw-1").unwrap();
        for (row, col) in [(0, 7), (7, 0), (7, 6), (3, 4)] {
            let job = sweep.job_at(0, row, col).unwrap();
            assert!(screen.contains(&format!("j{job}")), "cell {row},{col}: {screen}");
        }
        for value in 1..=8 {
            assert!(screen.lines().any(|l| l.contains(&format!("┃{value} "))), "row header {value}: {screen}");
        }
    }

    #[test]
    fn s_stars_the_selected_cell_and_the_answer_shows_it() {
        let (mut h, mut p) = sweep(2, 2, 1);
        h.press(&mut p, "right");
        let job = h.jobs.sweep("sw-1").unwrap().job_at(0, 0, 1).unwrap();
        let events = h.press(&mut p, "s").unwrap();
        let star = events.iter().find_map(|e| match e {
            PaneEvent::Run(Effect::Star { job, history_id, starred }) => Some((*job, history_id.clone(), *starred)),
            _ => None,
        });
        assert_eq!(star, Some((Some(job), format!("h-{job}"), true)));
        h.jobs.set_starred(job, true);
        assert!(h.render(&mut p, 60, 12).contains('★'), "the star is on the cell");
        let again = h.press(&mut p, "s").unwrap();
        assert!(again.iter().any(|e| matches!(e, PaneEvent::Run(Effect::Star { starred: false, .. }))), "unstars");
    }

    #[test]
    fn enter_shows_the_cell_full_screen_and_arrows_browse_the_cells() {
        let (h, mut p) = sweep(2, 2, 1);
        h.press(&mut p, "right");
        h.press(&mut p, "enter");
        assert!(p.is_fullscreen());
        h.press(&mut p, "down");
        assert_eq!(p.cursor(), GridCursor { page: 0, row: 1, col: 1 });
        h.press(&mut p, "esc");
        assert!(!p.is_fullscreen());
        h.press(&mut p, "up");
        h.press(&mut p, "left");
        let none = h.press(&mut p, "enter");
        assert!(!p.is_fullscreen(), "the running cell has no output to show: {none:?}");
    }

    #[test]
    fn a_and_b_mark_two_cells_and_c_compares_them_split_then_flipped() {
        let (h, mut p) = sweep(2, 2, 1);
        let need = h.press(&mut p, "c").unwrap();
        assert!(matches!(&need[..], [PaneEvent::Notify(n)] if n.text.contains("mark two")), "{need:?}");
        let sweep = h.jobs.sweep("sw-1").unwrap();
        let (ja, jb) = (sweep.job_at(0, 0, 1).unwrap(), sweep.job_at(0, 1, 0).unwrap());
        h.press(&mut p, "right");
        h.press(&mut p, "a");
        h.press(&mut p, "down");
        h.press(&mut p, "left");
        h.press(&mut p, "b");
        assert_eq!(p.marked(0), Some(std::path::Path::new(&format!("/out/j{ja}.png"))));
        assert_eq!(p.marked(1), Some(std::path::Path::new(&format!("/out/j{jb}.png"))));
        let grid = h.render(&mut p, 60, 12);
        assert!(grid.contains("A") && grid.contains("B"), "the marks are on the cells: {grid}");
        h.press(&mut p, "c");
        assert_eq!(p.is_comparing(), Some(true), "split first");
        assert!(p.is_fullscreen());
        h.press(&mut p, "t");
        assert_eq!(p.is_comparing(), Some(false), "one at a time");
        h.press(&mut p, "x");
        assert_eq!(p.compare, Some(CompareView::Flip { showing_b: true }));
        h.press(&mut p, "x");
        assert_eq!(p.compare, Some(CompareView::Flip { showing_b: false }));
        h.press(&mut p, "esc");
        assert_eq!(p.is_comparing(), None);
        assert!(!p.is_fullscreen());
    }

    #[test]
    fn a_running_cell_cannot_be_marked_or_starred_before_it_is_journaled() {
        let (h, mut p) = sweep(1, 2, 1);
        let events = h.press(&mut p, "a").unwrap();
        assert!(matches!(&events[..], [PaneEvent::Notify(n)] if n.text.contains("no output")), "{events:?}");
        assert_eq!(p.marked(0), None);
        let job = h.jobs.sweep("sw-1").unwrap().job_at(0, 0, 0).unwrap();
        assert!(h.jobs.get(job).unwrap().history_id.is_none());
        let events = h.press(&mut p, "s").unwrap();
        assert!(matches!(&events[..], [PaneEvent::Notify(n)] if n.text.contains("not in the history")), "{events:?}");
    }

    #[test]
    fn marks_of_a_single_job_compare_its_outputs() {
        let (h, mut p) = done();
        h.press(&mut p, "a");
        h.press(&mut p, "right");
        h.press(&mut p, "b");
        h.press(&mut p, "c");
        assert_eq!(p.is_comparing(), Some(true));
        assert_eq!(p.marked(1), Some(std::path::Path::new("/out/r-1.png")));
    }
}
