//! Jobs pane: every job of this session (state, queue position, elapsed time, request id) and the
//! selected job's live log. The jobs themselves live in the app's `JobStore`; this pane keeps
//! only which one is selected.

use std::collections::HashSet;
use std::time::Instant;

use crossterm::event::KeyEvent;
use ratatui::layout::{Constraint, Layout};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::{Canvas, Hint, PaneBehaviour, PaneEvent, ResultsSource, Shared};
use crate::tui::action::Action;
use crate::tui::context::dollars;
use crate::tui::job_store::{JobPhase, JobStore, JobView, SweepView};
use crate::tui::message::{JobId, Notice};
use crate::tui::pane::Pane;
use crate::tui::view::theme::Theme;
use crate::tui::widgets::{clip, pane_block};

const SPINNER: [&str; 4] = ["◐", "◓", "◑", "◒"];

#[derive(Debug, Default)]
pub struct JobsPane {
    /// Position in the list of rows (0 = newest).
    selected: usize,
    /// Sweeps shown with their jobs (the others are one row).
    expanded: HashSet<String>,
}

/// A row of the list: a job, a sweep's group, or a job of an expanded sweep.
#[derive(Debug, Clone, PartialEq)]
enum Row {
    Job(JobId),
    Sweep(String),
    Member(JobId),
}

fn icon(job: &JobView, now: Instant) -> &'static str {
    match job.phase {
        JobPhase::Completed => "✓",
        JobPhase::Failed(_) => "✗",
        JobPhase::Cancelled => "⊘",
        JobPhase::Waiting => "·",
        _ => SPINNER[(now.duration_since(job.started).as_millis() / 250) as usize % SPINNER.len()],
    }
}

pub fn elapsed(job: &JobView, now: Instant) -> String {
    let d = job.ended.unwrap_or(now).duration_since(job.started);
    let s = d.as_secs_f64();
    if s < 60.0 { format!("{s:.1}s") } else { format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60) }
}

/// A sweep's group line: "sweep 3f2a9c1b0d 3×2 · 4/6 done · 1 running · 1 queued · $0.16 of ~$0.24".
pub fn sweep_line(sweep: &SweepView, jobs: &JobStore) -> String {
    let t = sweep.tally(jobs);
    let mut line = format!("sweep {} {} · {}/{} done", sweep.id, sweep.shape(), t.done, t.total());
    for (n, what) in [(t.running, "running"), (t.queued, "queued"), (t.failed, "failed"), (t.cancelled, "cancelled")] {
        if n > 0 {
            line.push_str(&format!(" · {n} {what}"));
        }
    }
    line.push_str(&format!(" · {}", dollars(t.spent_usd)));
    if let Some(usd) = sweep.estimated_usd {
        line.push_str(&format!(" of ~{}", dollars(usd)));
    }
    line
}

impl JobsPane {
    pub fn selected(&self) -> usize {
        self.selected
    }

    /// The rows as listed: newest first, a sweep where its newest job is, its jobs under it in
    /// the plan's order when expanded.
    fn rows(&self, jobs: &JobStore) -> Vec<Row> {
        let mut rows = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for job in jobs.iter() {
            let Some(sweep) = job.sweep.as_deref().and_then(|s| jobs.sweep(s)) else {
                rows.push(Row::Job(job.id));
                continue;
            };
            if seen.contains(&sweep.id.as_str()) {
                continue;
            }
            seen.push(&sweep.id);
            rows.push(Row::Sweep(sweep.id.clone()));
            if self.expanded.contains(&sweep.id) {
                rows.extend(sweep.points.iter().map(|(_, id)| Row::Member(*id)));
            }
        }
        rows
    }

    /// What the selected row shows in Results: its job, or its sweep as a grid.
    pub fn selected_source(&self, jobs: &JobStore) -> Option<ResultsSource> {
        match self.rows(jobs).get(self.selected)? {
            Row::Job(id) | Row::Member(id) => Some(ResultsSource::Job(*id)),
            Row::Sweep(s) => Some(ResultsSource::Sweep(s.clone())),
        }
    }

    /// A job (or a sweep) was just submitted: it is the newest, at the top.
    pub fn select_newest(&mut self) {
        self.selected = 0;
    }

    fn select(&mut self, index: usize, jobs: &JobStore) -> Vec<PaneEvent> {
        let rows = self.rows(jobs);
        if rows.is_empty() {
            return Vec::new();
        }
        self.selected = index.min(rows.len() - 1);
        self.selected_source(jobs).map(PaneEvent::Show).into_iter().collect()
    }

    /// The selected row's job, or the sweep it is (or belongs to).
    fn selection<'a>(&self, jobs: &'a JobStore) -> (Option<&'a JobView>, Option<&'a SweepView>) {
        match self.rows(jobs).get(self.selected) {
            Some(Row::Job(id)) => (jobs.get(*id), None),
            Some(Row::Member(id)) => {
                let job = jobs.get(*id);
                (job, job.and_then(|j| j.sweep.as_deref()).and_then(|s| jobs.sweep(s)))
            }
            Some(Row::Sweep(s)) => (None, jobs.sweep(s)),
            None => (None, None),
        }
    }

    /// Shows a sweep's jobs under it (→), or folds them away again (←, also from one of them).
    fn expand(&mut self, jobs: &JobStore, open: bool) -> Vec<PaneEvent> {
        let (job, sweep) = self.selection(jobs);
        let Some(sweep) = sweep else { return Vec::new() };
        let id = sweep.id.clone();
        if open && job.is_none() {
            self.expanded.insert(id);
            return Vec::new();
        }
        if !open {
            self.expanded.remove(&id);
            let group = Row::Sweep(id);
            let at = self.rows(jobs).iter().position(|r| *r == group);
            return self.select(at.unwrap_or(0), jobs);
        }
        Vec::new()
    }
}

impl PaneBehaviour for JobsPane {
    fn pane(&self) -> Pane {
        Pane::Jobs
    }

    fn on_key(&mut self, _key: &KeyEvent, action: Option<Action>, shared: Shared) -> Option<Vec<PaneEvent>> {
        let jobs = shared.jobs;
        let (job, sweep) = self.selection(jobs);
        let group = if job.is_none() { sweep } else { None };
        Some(match action? {
            Action::Up => self.select(self.selected.saturating_sub(1), jobs),
            Action::Down => self.select(self.selected + 1, jobs),
            Action::Right => self.expand(jobs, true),
            Action::Left => self.expand(jobs, false),
            Action::Cancel => match (job, group) {
                (_, Some(s)) if !s.tally(jobs).is_finished() => vec![PaneEvent::CancelSweep(s.id.clone())],
                (_, Some(_)) => vec![Notice::info("that sweep has already finished").into()],
                (Some(j), _) if j.phase.is_active() => vec![PaneEvent::CancelJob(j.id)],
                (Some(_), _) => vec![Notice::info("that job has already finished").into()],
                _ => Vec::new(),
            },
            Action::Confirm => match self.selected_source(jobs) {
                Some(source) => vec![PaneEvent::Show(source), PaneEvent::Focus(Pane::Results)],
                None => Vec::new(),
            },
            // The same request again: its own prompt, images and parameters.
            Action::Rerun => match job {
                Some(j) => vec![PaneEvent::Rerun { draft: j.draft.clone(), endpoint: j.endpoint_id.clone() }],
                None if group.is_some() => vec![Notice::info("→ opens the sweep: re-run one of its jobs").into()],
                None => Vec::new(),
            },
            _ => return None,
        })
    }

    fn hints(&self, shared: Shared) -> Vec<Hint> {
        let km = shared.keymap();
        let (job, sweep) = self.selection(shared.jobs);
        let mut wanted = Vec::new();
        match (job, sweep) {
            (None, Some(s)) => {
                if !s.tally(shared.jobs).is_finished() {
                    wanted.push((Action::Cancel, "cancel sweep"));
                }
                wanted.push(if self.expanded.contains(&s.id) {
                    (Action::Left, "fold")
                } else {
                    (Action::Right, "its jobs")
                });
                wanted.push((Action::Confirm, "results"));
            }
            (Some(j), in_sweep) => {
                if j.phase.is_active() {
                    wanted.push((Action::Cancel, "cancel"));
                }
                wanted.push((Action::Confirm, "results"));
                wanted.push((Action::Rerun, "re-run"));
                if in_sweep.is_some() {
                    wanted.push((Action::Left, "fold"));
                }
            }
            (None, None) => return Vec::new(),
        }
        wanted.into_iter().filter_map(|(a, label)| Hint::bound(km, Pane::Jobs, a, label, false)).collect()
    }

    fn draw(&mut self, c: Canvas) {
        let jobs = c.shared.jobs;
        let theme = c.theme;
        // Sweep points waiting for a slot are not running yet (the sweep's row counts them queued).
        let active = jobs.iter().filter(|j| j.phase.is_active() && j.phase != JobPhase::Waiting).count();
        let block = pane_block(Pane::Jobs, c.focused, format!("{active} running"), theme);
        let inner = block.inner(c.area);
        block.render(c.area, c.buf);
        if jobs.is_empty() {
            Paragraph::new(Line::styled("no jobs yet — write a prompt, add images, press F5", theme.dim()))
                .render(inner, c.buf);
            return;
        }
        let rows = self.rows(jobs);
        self.selected = self.selected.min(rows.len().saturating_sub(1));
        let list_h = (rows.len() as u16).min(inner.height / 2).max(1);
        let [list_area, log_area] = Layout::vertical([Constraint::Length(list_h), Constraint::Min(0)]).areas(inner);
        let now = Instant::now();
        let width = list_area.width as usize;
        // Keep the selected row visible.
        let first = self.selected.saturating_sub(list_h as usize - 1);
        let mut lines = Vec::new();
        for (i, row) in rows.iter().enumerate().skip(first).take(list_h as usize) {
            let line = match row {
                Row::Sweep(s) => {
                    let Some(sweep) = jobs.sweep(s) else { continue };
                    let mark = if self.expanded.contains(s) { "▾" } else { "▸" };
                    let t = sweep.tally(jobs);
                    let style = if !t.is_finished() {
                        theme.busy()
                    } else if t.failed > 0 {
                        theme.error()
                    } else {
                        theme.ok()
                    };
                    Line::styled(clip(&format!("{mark} {}", sweep_line(sweep, jobs)), width), style)
                }
                Row::Job(id) | Row::Member(id) => {
                    let Some(job) = jobs.get(*id) else { continue };
                    let member = matches!(row, Row::Member(_));
                    job_line(job, member.then(|| member_labels(job, jobs)), width, now, theme)
                }
            };
            lines.push(if i == self.selected && c.focused { line.style(theme.selected()) } else { line });
        }
        Paragraph::new(lines).render(list_area, c.buf);

        if log_area.height < 2 {
            return;
        }
        let log = match self.selection(jobs) {
            (Some(job), _) => job_log(job, log_area.height as usize, theme),
            (None, Some(sweep)) => sweep_log(sweep, jobs, theme),
            (None, None) => return,
        };
        Paragraph::new(log).wrap(Wrap { trim: false }).render(log_area, c.buf);
    }
}

/// A job's row; a sweep's job shows its axis values (indented) where others show the prompt.
fn job_line(
    job: &JobView,
    point: Option<(String, String, usize)>,
    width: usize,
    now: Instant,
    theme: &Theme,
) -> Line<'static> {
    let style = match job.phase {
        JobPhase::Completed => theme.ok(),
        JobPhase::Failed(_) => theme.error(),
        JobPhase::Cancelled | JobPhase::Waiting => theme.dim(),
        _ => theme.busy(),
    };
    let cost = job.cost_text();
    let head = format!("{} #{:<3} {:<17} {:>7} ", icon(job, now), job.id, job.phase.label(), elapsed(job, now));
    // A sweep's job is told by its axis values (indented under the sweep), then its cost.
    if let Some((long, short, widest)) = point {
        let head = format!("  {head}");
        let room = width.saturating_sub(head.chars().count());
        let with_cost = |point: &str| if cost.is_empty() { point.to_string() } else { format!("{point} · {cost}") };
        // Names and values when the sweep's widest label and an estimate fit, else the values
        // alone (the Results title names them): the same for every row of a sweep.
        let text = if widest + " · ~$0.040".chars().count() <= room { with_cost(&long) } else { with_cost(&short) };
        let rest = clip(&text, room);
        return Line::from(vec![Span::styled(head, style), Span::raw(rest)]);
    }
    let rid = job.request_id.as_deref().map(|r| r.get(..8).unwrap_or(r)).unwrap_or("--------");
    let what = if cost.is_empty() { job.endpoint.clone() } else { format!("{} · {cost}", job.endpoint) };
    let head = format!("{head}{rid} {what} ");
    let rest = clip(&crate::sanitize::one_line(&job.prompt), width.saturating_sub(head.chars().count()));
    Line::from(vec![Span::styled(head, style), Span::raw(rest)])
}

/// The axis values of a sweep's job: with their names ("seed=2, guidance_scale=5"), alone
/// ("2 · 5"), and how wide the sweep's longest named label can be.
fn member_labels(job: &JobView, jobs: &JobStore) -> (String, String, usize) {
    let sweep = job.sweep.as_deref().and_then(|s| jobs.sweep(s));
    let labels = sweep.and_then(|s| {
        let (point, _) = s.points.iter().find(|(_, id)| *id == job.id)?;
        Some((point.label(&s.axes), point.short_label(&s.axes), widest_label(&s.axes)))
    });
    let (long, short, widest) = labels.unwrap_or_default();
    (crate::sanitize::one_line(&long), crate::sanitize::one_line(&short), widest)
}

/// The width of `Point::label` with every varying axis at its longest value.
fn widest_label(axes: &[crate::model::sweep::Axis]) -> usize {
    let varying: Vec<_> = axes.iter().filter(|a| a.values.len() > 1).collect();
    let each = varying.iter().map(|a| {
        let longest = a.values.iter().map(|v| v.chars().count()).max().unwrap_or(0);
        a.kind.name().chars().count() + 1 + longest
    });
    each.sum::<usize>() + ", ".len() * varying.len().saturating_sub(1)
}

fn job_log(job: &JobView, height: usize, theme: &Theme) -> Vec<Line<'static>> {
    let mut log: Vec<Line> =
        vec![Line::styled(format!("── log of #{} {}", job.id, job.request_id.as_deref().unwrap_or("")), theme.dim())];
    if let JobPhase::Failed(msg) = &job.phase {
        log.push(Line::styled(msg.clone(), theme.error()));
    }
    let room = height.saturating_sub(log.len());
    let start = job.logs.len().saturating_sub(room);
    log.extend(job.logs[start..].iter().map(|l| Line::raw(l.clone())));
    log
}

/// The selected sweep: its axes, where its contact sheet is, how to send what was never sent.
fn sweep_log(sweep: &SweepView, jobs: &JobStore, theme: &Theme) -> Vec<Line<'static>> {
    let mut log = vec![Line::styled(format!("── sweep {} ({} requests)", sweep.id, sweep.points.len()), theme.dim())];
    for axis in &sweep.axes {
        log.push(Line::raw(crate::sanitize::one_line(&format!("{} = {}", axis.kind.name(), axis.values.join(" | ")))));
    }
    for sheet in &sweep.sheets {
        log.push(Line::styled(crate::sanitize::one_line(&format!("contact sheet {}", sheet.display())), theme.ok()));
    }
    let t = sweep.tally(jobs);
    if t.is_finished() && t.cancelled > 0 {
        log.push(Line::styled(
            format!("`kontext sweep --continue {}` sends the requests never sent", sweep.id),
            theme.dim(),
        ));
    }
    log
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Draft;
    use crate::tui::message::JobFinish;
    use crate::tui::panes::harness::Harness;

    fn with_jobs(h: &mut Harness, prompts: &[&str]) {
        for p in prompts {
            let d = Draft { prompt: p.to_string(), images: vec!["https://a/b.png".into()], ..Draft::default() };
            h.jobs.add(&d.validate(4).unwrap());
        }
    }

    #[test]
    fn moving_shows_the_job_and_enter_goes_to_its_results() {
        let mut h = Harness::new();
        with_jobs(&mut h, &["one", "two"]);
        let mut p = JobsPane::default();
        let events = h.press(&mut p, "down").unwrap();
        assert!(matches!(events.as_slice(), [PaneEvent::Show(ResultsSource::Job(1))]), "{events:?}");
        h.press(&mut p, "down");
        assert_eq!(p.selected(), 1, "stays on the last");
        let events = h.press(&mut p, "enter").unwrap();
        assert!(matches!(events.as_slice(), [PaneEvent::Show(ResultsSource::Job(1)), PaneEvent::Focus(Pane::Results)]));
    }

    #[test]
    fn cancel_asks_only_for_a_running_job() {
        let mut h = Harness::new();
        with_jobs(&mut h, &["one"]);
        let mut p = JobsPane::default();
        assert!(matches!(h.press(&mut p, "c").unwrap().as_slice(), [PaneEvent::CancelJob(1)]));
        assert!(p.hints(h.shared()).iter().any(|x| x.label == "cancel"));
        h.jobs.finish(1, JobFinish::Cancelled { request_id: None });
        assert!(matches!(h.press(&mut p, "c").unwrap().as_slice(), [PaneEvent::Notify(_)]));
        assert!(!p.hints(h.shared()).iter().any(|x| x.label == "cancel"), "no hint for what cannot be done");
    }

    #[test]
    fn rerun_sends_the_jobs_own_request_up() {
        let mut h = Harness::new();
        with_jobs(&mut h, &["first"]);
        let mut p = JobsPane::default();
        let events = h.press(&mut p, "r").unwrap();
        assert!(matches!(events.as_slice(), [PaneEvent::Rerun { draft, .. }] if draft.prompt == "first"));
    }

    #[test]
    fn draws_the_list_and_the_selected_log() {
        let mut h = Harness::new();
        with_jobs(&mut h, &["make it blue"]);
        let mut p = JobsPane::default();
        let screen = h.render(&mut p, 90, 10);
        assert!(screen.contains("4 Jobs 1 running"), "{screen}");
        assert!(screen.contains("#1   preparing"), "{screen}");
        assert!(screen.contains("── log of #1"), "{screen}");
        let empty = Harness::new().render(&mut JobsPane::default(), 90, 10);
        assert!(empty.contains("no jobs yet"), "{empty}");
    }

    #[test]
    fn a_job_shows_its_endpoint_and_estimate_then_its_bill() {
        let mut h = Harness::new();
        let schema = crate::model::Catalog::bundled().get("fal-ai/flux-pro/kontext/text-to-image").unwrap().clone();
        let d = Draft { prompt: "a red fox".into(), ..Draft::default() };
        let input = d.validate_for(&schema, |_| Ok(())).unwrap();
        let estimate = h.ctx.prices.estimate(&schema, &input.body(), &[]);
        h.jobs.add_estimated(&input, Some(estimate));
        let mut p = JobsPane::default();
        let screen = h.render(&mut p, 100, 6);
        assert!(screen.contains("[pro] text to image · ~$0.040 a red fox"), "{screen}");
        let done = JobFinish::Done {
            request_id: "r".into(),
            seed: 1,
            files: vec![],
            urls: vec![],
            prompt_used: "a red fox".into(),
            inference: None,
            unrecorded: vec![],
            billable_units: Some(1.0),
        };
        let notice = h.jobs.finish(1, done).unwrap().notice;
        assert!(notice.text.ends_with("$0.040 billed"), "{}", notice.text);
        let screen = h.render(&mut p, 100, 6);
        assert!(screen.contains("[pro] text to image · $0.040 billed"), "{screen}");
    }

    /// A lone job, then a 3×2 sweep (seeds × guidance) whose points are waiting.
    fn with_sweep(h: &mut Harness) -> Vec<JobId> {
        use crate::model::sweep::{AxisFlags, axes, points};
        with_jobs(h, &["alone"]);
        let axes = axes(&AxisFlags { seeds: Some("1..3"), guidance: Some("2,5"), ..AxisFlags::default() }).unwrap();
        let d = Draft { prompt: "swept".into(), images: vec!["https://a/b.png".into()], ..Draft::default() };
        let input = d.validate(4).unwrap();
        let estimate = h.ctx.prices.estimate(&input.schema, &input.body(), &[]);
        let members: Vec<_> =
            points(&axes).into_iter().map(|p| (p, h.jobs.add_waiting(&input, Some(estimate.clone())))).collect();
        let ids = members.iter().map(|(_, id)| *id).collect();
        h.jobs.add_sweep(SweepView::new("sw1".into(), axes, members, Some(0.24)));
        ids
    }

    #[test]
    fn a_sweep_is_one_row_with_its_tally_and_opens_to_its_jobs_axis_values() {
        let mut h = Harness::new();
        let ids = with_sweep(&mut h);
        h.jobs.set_started(ids[0]);
        h.jobs.on_event(ids[0], crate::runner::JobEvent::InProgress);
        let done = JobFinish::Done {
            request_id: "r".into(),
            seed: 1,
            files: vec![],
            urls: vec![],
            prompt_used: "swept".into(),
            inference: None,
            unrecorded: vec![],
            billable_units: Some(1.0),
        };
        h.jobs.finish(ids[1], done);
        let failed =
            JobFinish::Failed { message: "no".into(), field_errors: vec![], request_id: None, ambiguous: false };
        h.jobs.finish(ids[2], failed);
        let mut p = JobsPane::default();
        let screen = h.render(&mut p, 110, 12);
        assert!(
            screen.contains("▸ sweep sw1 3×2 · 1/6 done · 1 running · 3 queued · 1 failed · $0.040 of ~$0.240"),
            "a failed point fal did not bill costs nothing: {screen}"
        );
        assert!(!screen.contains("swept"), "its jobs are folded into the row: {screen}");
        assert!(screen.contains("#1 "), "the lone job is its own row: {screen}");
        // The group shows the sweep in Results; → opens it, its jobs show their axis values.
        let events = h.press(&mut p, "up").unwrap();
        assert!(matches!(events.as_slice(), [PaneEvent::Show(ResultsSource::Sweep(s))] if s == "sw1"), "{events:?}");
        assert!(p.hints(h.shared()).iter().any(|x| x.label == "its jobs"));
        h.press(&mut p, "right");
        let screen = h.render(&mut p, 110, 20);
        assert!(screen.contains("▾ sweep sw1"), "{screen}");
        assert!(screen.contains("waiting") && screen.contains("seed=3, guidance_scale=5"), "{screen}");
        // Narrow, the values alone (the Results title names the axes).
        let narrow = h.render(&mut p, 60, 20);
        assert!(narrow.contains("3 · 5 · ~$0.040") && !narrow.contains("seed=3"), "{narrow}");
        let events = h.press(&mut p, "down").unwrap();
        assert!(matches!(events.as_slice(), [PaneEvent::Show(ResultsSource::Job(id))] if *id == ids[0]), "{events:?}");
        // ← from one of its jobs folds the sweep and selects its row.
        let events = h.press(&mut p, "left").unwrap();
        assert!(matches!(events.as_slice(), [PaneEvent::Show(ResultsSource::Sweep(_))]), "{events:?}");
        assert!(h.render(&mut p, 110, 12).contains("▸ sweep sw1"));
    }

    #[test]
    fn cancel_on_a_sweep_cancels_the_sweep_and_enter_shows_its_grid() {
        let mut h = Harness::new();
        with_sweep(&mut h);
        let mut p = JobsPane::default();
        assert!(matches!(h.press(&mut p, "c").unwrap().as_slice(), [PaneEvent::CancelSweep(s)] if s == "sw1"));
        assert!(p.hints(h.shared()).iter().any(|x| x.label == "cancel sweep"));
        let events = h.press(&mut p, "enter").unwrap();
        assert!(matches!(
            events.as_slice(),
            [PaneEvent::Show(ResultsSource::Sweep(_)), PaneEvent::Focus(Pane::Results)]
        ));
        assert!(matches!(h.press(&mut p, "r").unwrap().as_slice(), [PaneEvent::Notify(_)]), "a sweep is not re-run");
        let screen = h.render(&mut p, 110, 14);
        assert!(screen.contains("── sweep sw1 (6 requests)") && screen.contains("seed = 1 | 2 | 3"), "{screen}");
    }
}
