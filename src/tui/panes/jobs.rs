//! Jobs pane: every job of this session (state, queue position, elapsed time, request id) and the
//! selected job's live log. The jobs themselves live in the app's `JobStore`; this pane keeps
//! only which one is selected.

use std::time::Instant;

use crossterm::event::KeyEvent;
use ratatui::layout::{Constraint, Layout};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::{Canvas, Hint, PaneBehaviour, PaneEvent, ResultsSource, Shared};
use crate::tui::action::Action;
use crate::tui::job_store::{JobPhase, JobStore, JobView};
use crate::tui::message::{JobId, Notice};
use crate::tui::pane::Pane;
use crate::tui::widgets::{clip, pane_block};

const SPINNER: [&str; 4] = ["◐", "◓", "◑", "◒"];

#[derive(Debug, Default)]
pub struct JobsPane {
    /// Position in the store's list (0 = newest).
    selected: usize,
}

fn icon(job: &JobView, now: Instant) -> &'static str {
    match job.phase {
        JobPhase::Completed => "✓",
        JobPhase::Failed(_) => "✗",
        JobPhase::Cancelled => "⊘",
        _ => SPINNER[(now.duration_since(job.started).as_millis() / 250) as usize % SPINNER.len()],
    }
}

pub fn elapsed(job: &JobView, now: Instant) -> String {
    let d = job.ended.unwrap_or(now).duration_since(job.started);
    let s = d.as_secs_f64();
    if s < 60.0 { format!("{s:.1}s") } else { format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60) }
}

impl JobsPane {
    pub fn selected(&self) -> usize {
        self.selected
    }

    /// The selected job's id.
    pub fn selected_id(&self, jobs: &JobStore) -> Option<JobId> {
        jobs.at(self.selected).map(|j| j.id)
    }

    /// A job was just submitted: it is the newest, at the top.
    pub fn select_newest(&mut self) {
        self.selected = 0;
    }

    fn select(&mut self, index: usize, jobs: &JobStore) -> Vec<PaneEvent> {
        if jobs.is_empty() {
            return Vec::new();
        }
        self.selected = index.min(jobs.len() - 1);
        self.selected_id(jobs).map(|id| PaneEvent::Show(ResultsSource::Job(id))).into_iter().collect()
    }
}

impl PaneBehaviour for JobsPane {
    fn pane(&self) -> Pane {
        Pane::Jobs
    }

    fn on_key(&mut self, _key: &KeyEvent, action: Option<Action>, shared: Shared) -> Option<Vec<PaneEvent>> {
        let jobs = shared.jobs;
        let job = jobs.at(self.selected);
        Some(match action? {
            Action::Up => self.select(self.selected.saturating_sub(1), jobs),
            Action::Down => self.select(self.selected + 1, jobs),
            Action::Cancel => match job {
                Some(j) if j.phase.is_active() => vec![PaneEvent::CancelJob(j.id)],
                Some(_) => vec![Notice::info("that job has already finished").into()],
                None => Vec::new(),
            },
            Action::Confirm => match job {
                Some(j) => vec![PaneEvent::Show(ResultsSource::Job(j.id)), PaneEvent::Focus(Pane::Results)],
                None => Vec::new(),
            },
            // The same request again: its own prompt, images and parameters.
            Action::Rerun => job
                .map(|j| PaneEvent::Rerun { draft: j.draft.clone(), endpoint: j.endpoint_id.clone() })
                .into_iter()
                .collect(),
            _ => return None,
        })
    }

    fn hints(&self, shared: Shared) -> Vec<Hint> {
        let Some(job) = shared.jobs.at(self.selected) else { return Vec::new() };
        let km = shared.keymap();
        let mut wanted = vec![(Action::Confirm, "results"), (Action::Rerun, "re-run")];
        if job.phase.is_active() {
            wanted.insert(0, (Action::Cancel, "cancel"));
        }
        wanted.into_iter().filter_map(|(a, label)| Hint::bound(km, Pane::Jobs, a, label, false)).collect()
    }

    fn draw(&mut self, c: Canvas) {
        let jobs = c.shared.jobs;
        let theme = c.theme;
        let active = jobs.iter().filter(|j| j.phase.is_active()).count();
        let block = pane_block(Pane::Jobs, c.focused, format!("{active} running"), theme);
        let inner = block.inner(c.area);
        block.render(c.area, c.buf);
        if jobs.is_empty() {
            Paragraph::new(Line::styled("no jobs yet — write a prompt, add images, press F5", theme.dim()))
                .render(inner, c.buf);
            return;
        }
        let list_h = (jobs.len() as u16).min(inner.height / 2).max(1);
        let [list_area, log_area] = Layout::vertical([Constraint::Length(list_h), Constraint::Min(0)]).areas(inner);
        let now = Instant::now();
        let width = list_area.width as usize;
        // Keep the selected row visible.
        let first = self.selected.saturating_sub(list_h as usize - 1);
        let mut lines = Vec::new();
        for (i, job) in jobs.iter().enumerate().skip(first).take(list_h as usize) {
            let style = match job.phase {
                JobPhase::Completed => theme.ok(),
                JobPhase::Failed(_) => theme.error(),
                JobPhase::Cancelled => theme.dim(),
                _ => theme.busy(),
            };
            let rid = job.request_id.as_deref().map(|r| r.get(..8).unwrap_or(r)).unwrap_or("--------");
            let cost = job.cost_text();
            let what = if cost.is_empty() { job.endpoint.clone() } else { format!("{} · {cost}", job.endpoint) };
            let head = format!(
                "{} #{:<3} {:<17} {:>7} {rid} {what} ",
                icon(job, now),
                job.id,
                job.phase.label(),
                elapsed(job, now)
            );
            let rest = clip(&crate::sanitize::one_line(&job.prompt), width.saturating_sub(head.chars().count()));
            let line = Line::from(vec![Span::styled(head, style), Span::raw(rest)]);
            lines.push(if i == self.selected && c.focused { line.style(theme.selected()) } else { line });
        }
        Paragraph::new(lines).render(list_area, c.buf);

        if log_area.height < 2 {
            return;
        }
        let Some(job) = jobs.at(self.selected) else { return };
        let mut log: Vec<Line> = vec![Line::styled(
            format!("── log of #{} {}", job.id, job.request_id.as_deref().unwrap_or("")),
            theme.dim(),
        )];
        if let JobPhase::Failed(msg) = &job.phase {
            log.push(Line::styled(msg.clone(), theme.error()));
        }
        let room = log_area.height as usize - log.len();
        let start = job.logs.len().saturating_sub(room);
        log.extend(job.logs[start..].iter().map(|l| Line::raw(l.clone())));
        Paragraph::new(log).wrap(Wrap { trim: false }).render(log_area, c.buf);
    }
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
}
