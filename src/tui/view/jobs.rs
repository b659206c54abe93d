//! Jobs pane: every job of this session (state, queue position, elapsed time, request id) and the
//! selected job's live log.

use std::time::Instant;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::theme::Theme;
use super::{clip, pane_block};
use crate::tui::app::{App, JobPhase, JobView, Pane};

const SPINNER: [&str; 4] = ["◐", "◓", "◑", "◒"];

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

pub fn draw(buf: &mut Buffer, area: Rect, app: &App, theme: &Theme) {
    let active = app.jobs.iter().filter(|j| j.phase.is_active()).count();
    let block = pane_block(app, Pane::Jobs, format!("{active} running"), theme);
    let inner = block.inner(area);
    block.render(area, buf);
    if app.jobs.is_empty() {
        Paragraph::new(Line::styled("no jobs yet — write a prompt, add images, press F5", theme.dim()))
            .render(inner, buf);
        return;
    }
    let list_h = (app.jobs.len() as u16).min(inner.height / 2).max(1);
    let [list_area, log_area] = Layout::vertical([Constraint::Length(list_h), Constraint::Min(0)]).areas(inner);
    let now = Instant::now();
    let width = list_area.width as usize;
    // Keep the selected row visible.
    let first = app.job_selected.saturating_sub(list_h as usize - 1);
    let mut lines = Vec::new();
    for (i, job) in app.jobs.iter().enumerate().skip(first).take(list_h as usize) {
        let selected = i == app.job_selected;
        let style = match job.phase {
            JobPhase::Completed => theme.ok(),
            JobPhase::Failed(_) => theme.error(),
            JobPhase::Cancelled => theme.dim(),
            _ => theme.busy(),
        };
        let rid = job.request_id.as_deref().map(|r| r.get(..8).unwrap_or(r)).unwrap_or("--------");
        let head =
            format!("{} #{:<3} {:<17} {:>7} {rid} ", icon(job, now), job.id, job.phase.label(), elapsed(job, now));
        let rest = clip(&crate::sanitize::one_line(&job.prompt), width.saturating_sub(head.chars().count()));
        let line = Line::from(vec![Span::styled(head, style), Span::raw(rest)]);
        lines.push(if selected && app.focus == Pane::Jobs { line.style(theme.selected()) } else { line });
    }
    Paragraph::new(lines).render(list_area, buf);

    if log_area.height < 2 {
        return;
    }
    let Some(job) = app.jobs.get(app.job_selected) else { return };
    let mut log: Vec<Line> =
        vec![Line::styled(format!("── log of #{} {}", job.id, job.request_id.as_deref().unwrap_or("")), theme.dim())];
    if let JobPhase::Failed(msg) = &job.phase {
        log.push(Line::styled(msg.clone(), theme.error()));
    }
    let room = log_area.height as usize - log.len();
    let start = job.logs.len().saturating_sub(room);
    log.extend(job.logs[start..].iter().map(|l| Line::raw(l.clone())));
    Paragraph::new(log).wrap(Wrap { trim: false }).render(log_area, buf);
}
