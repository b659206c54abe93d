//! History pane: the durable history, searchable as you type, filterable by state, loaded a page
//! at a time. Listings come back as messages; answers to an older filter are dropped.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::{Canvas, Hint, PaneBehaviour, PaneEvent, Shared};
use crate::history::JobState;
use crate::sanitize::one_line;
use crate::tui::action::Action;
use crate::tui::message::{DetailPurpose, Effect, HistoryFilter, HistoryRow, Notice};
use crate::tui::pane::Pane;
use crate::tui::widgets::{clip, pane_block};

/// The states `f` cycles through (`None`: all).
const FILTERS: [Option<JobState>; 5] =
    [None, Some(JobState::Completed), Some(JobState::Failed), Some(JobState::Cancelled), Some(JobState::InProgress)];

#[derive(Debug, Default)]
pub struct HistoryPane {
    rows: Vec<HistoryRow>,
    selected: usize,
    filter: HistoryFilter,
    searching: bool,
    loaded: bool,
    /// No older rows than those loaded.
    exhausted: bool,
    loading_more: bool,
}

impl HistoryPane {
    pub fn rows(&self) -> &[HistoryRow] {
        &self.rows
    }

    pub fn selected(&self) -> usize {
        self.selected
    }

    pub fn filter(&self) -> &HistoryFilter {
        &self.filter
    }

    pub fn is_searching(&self) -> bool {
        self.searching
    }

    /// No older page to load.
    pub fn is_exhausted(&self) -> bool {
        self.exhausted
    }

    /// A new listing with the current filter; answers to earlier ones will be ignored.
    pub fn reload(&mut self) -> Effect {
        self.filter.seq += 1;
        self.filter.before = None;
        Effect::LoadHistory(self.filter.clone())
    }

    /// A listing arrived.
    pub fn on_listing(&mut self, filter: HistoryFilter, rows: Vec<HistoryRow>) {
        if filter != self.filter {
            // The answer to a listing the user has since changed.
            return;
        }
        self.rows = rows;
        self.loaded = true;
        self.exhausted = false;
        self.loading_more = false;
        self.selected = self.selected.min(self.rows.len().saturating_sub(1));
    }

    /// The next (older) page arrived.
    pub fn on_more(&mut self, filter: HistoryFilter, rows: Vec<HistoryRow>) {
        if filter != self.filter {
            return;
        }
        self.exhausted = rows.is_empty();
        self.loading_more = false;
        self.rows.extend(rows);
    }

    fn select(&mut self, index: usize) -> Vec<PaneEvent> {
        if self.rows.is_empty() {
            return Vec::new();
        }
        self.selected = index.min(self.rows.len() - 1);
        let row = &self.rows[self.selected];
        let mut events =
            vec![PaneEvent::Run(Effect::LoadHistoryDetail { id: row.id.clone(), purpose: DetailPurpose::Show })];
        // Near the end of what is loaded: fetch the next page (keyset paging in the store).
        let near_end = self.selected + 20 >= self.rows.len();
        if near_end && !self.exhausted && !self.loading_more {
            self.loading_more = true;
            let before = self.rows.last().map(|r| r.cursor);
            events.push(PaneEvent::Run(Effect::LoadHistory(HistoryFilter { before, ..self.filter.clone() })));
        }
        events
    }

    fn detail(&self, purpose: DetailPurpose) -> Vec<PaneEvent> {
        let row = self.rows.get(self.selected);
        row.map(|r| PaneEvent::Run(Effect::LoadHistoryDetail { id: r.id.clone(), purpose })).into_iter().collect()
    }

    fn on_search_key(&mut self, key: &KeyEvent) -> Vec<PaneEvent> {
        match key.code {
            KeyCode::Enter => self.searching = false,
            KeyCode::Esc => {
                self.searching = false;
                self.filter.search.clear();
                return vec![PaneEvent::Run(self.reload())];
            }
            KeyCode::Backspace => {
                self.filter.search.pop();
                return vec![PaneEvent::Run(self.reload())];
            }
            KeyCode::Down | KeyCode::Up => {
                self.searching = false;
                return self.select(if key.code == KeyCode::Up {
                    self.selected.saturating_sub(1)
                } else {
                    self.selected + 1
                });
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.filter.search.push(c);
                self.selected = 0;
                return vec![PaneEvent::Run(self.reload())];
            }
            _ => {}
        }
        Vec::new()
    }
}

impl PaneBehaviour for HistoryPane {
    fn pane(&self) -> Pane {
        Pane::History
    }

    fn is_editing_text(&self) -> bool {
        self.searching
    }

    fn on_key(&mut self, key: &KeyEvent, action: Option<Action>, _shared: Shared) -> Option<Vec<PaneEvent>> {
        if self.searching {
            return Some(self.on_search_key(key));
        }
        Some(match action? {
            Action::Up => self.select(self.selected.saturating_sub(1)),
            Action::Down => self.select(self.selected + 1),
            Action::Search => {
                self.searching = true;
                Vec::new()
            }
            Action::CycleFilter => {
                let pos = FILTERS.iter().position(|s| *s == self.filter.state).unwrap_or(0);
                self.filter.state = FILTERS[(pos + 1) % FILTERS.len()];
                self.selected = 0;
                vec![PaneEvent::Run(self.reload())]
            }
            Action::Confirm => self.detail(DetailPurpose::Load),
            Action::Rerun => self.detail(DetailPurpose::Rerun),
            Action::Star => match self.rows.get(self.selected) {
                Some(row) => {
                    vec![PaneEvent::Run(Effect::Star { job: None, history_id: row.id.clone(), starred: !row.starred })]
                }
                None => Vec::new(),
            },
            Action::ShowSweep => match self.rows.get(self.selected) {
                Some(HistoryRow { sweep_id: Some(sweep), .. }) => vec![
                    Notice::info(format!("reading sweep {} from the history…", one_line(sweep))).into(),
                    PaneEvent::Run(Effect::LoadSweep(sweep.clone())),
                ],
                Some(_) => vec![Notice::info("this request is not part of a sweep").into()],
                None => Vec::new(),
            },
            Action::Delete => match self.rows.get(self.selected) {
                Some(row) => vec![PaneEvent::ConfirmDelete { id: row.id.clone(), prompt: one_line(&row.prompt) }],
                None => Vec::new(),
            },
            _ => return None,
        })
    }

    fn on_paste(&mut self, text: &str, _shared: Shared) -> Option<Vec<PaneEvent>> {
        if !self.searching {
            return None;
        }
        self.filter.search.push_str(&one_line(text));
        self.selected = 0;
        Some(vec![PaneEvent::Run(self.reload())])
    }

    fn hints(&self, shared: Shared) -> Vec<Hint> {
        if self.searching {
            return vec![
                Hint::fixed("Enter", "enter", Some(Action::Confirm), "keep search"),
                Hint::fixed("Esc", "esc", Some(Action::Close), "clear search").ranked(1),
            ];
        }
        let km = shared.keymap();
        let mut wanted = vec![(Action::Search, "search"), (Action::CycleFilter, "filter")];
        if !self.rows.is_empty() {
            wanted.extend([
                (Action::Confirm, "load"),
                (Action::Rerun, "re-run"),
                (Action::Delete, "delete"),
                (Action::Star, "star"),
            ]);
            if self.rows.get(self.selected).is_some_and(|r| r.sweep_id.is_some()) {
                wanted.push((Action::ShowSweep, "its sweep"));
            }
        }
        wanted.into_iter().filter_map(|(a, label)| Hint::bound(km, Pane::History, a, label, false)).collect()
    }

    fn draw(&mut self, c: Canvas) {
        let theme = c.theme;
        let filter = self.filter.state.map(JobState::as_str).unwrap_or("all");
        let block = pane_block(Pane::History, c.focused, format!("{} shown · {filter}", self.rows.len()), theme);
        let inner = block.inner(c.area);
        block.render(c.area, c.buf);
        let [search_area, list_area] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
        let search = if self.searching {
            Line::from(vec![
                Span::styled("/", theme.key()),
                Span::raw(self.filter.search.clone()),
                Span::styled("█", theme.key()),
            ])
        } else if self.filter.search.is_empty() {
            Line::styled("/ search · f filter · Enter load · r re-run · d delete", theme.dim())
        } else {
            Line::from(vec![Span::styled("/", theme.key()), Span::raw(self.filter.search.clone())])
        };
        Paragraph::new(search).render(search_area, c.buf);

        if self.rows.is_empty() {
            let text = if !self.loaded {
                "loading…"
            } else if self.filter.search.is_empty() {
                "nothing yet"
            } else {
                "no match"
            };
            Paragraph::new(Line::styled(text, theme.dim())).render(list_area, c.buf);
            return;
        }
        let height = list_area.height as usize;
        let first = self.selected.saturating_sub(height.saturating_sub(1));
        let width = list_area.width as usize;
        let mut lines = Vec::new();
        for (i, row) in self.rows.iter().enumerate().skip(first).take(height) {
            let cost = crate::tui::context::cost_text(row.estimated_usd, row.billed_usd);
            let cost = if cost.is_empty() { cost } else { format!("{cost} ") };
            let star = if row.starred { "★ " } else { "" };
            // A point of a sweep: `g` shows the whole sweep as a grid.
            let swept = if row.sweep_id.is_some() { "▦ " } else { "" };
            let head = format!(
                "{} {:<10} {:<9} {:<11} {cost}{star}{swept}",
                crate::timefmt::format_utc(row.created_at),
                row.state.as_str(),
                row.id.get(..8).unwrap_or(&row.id),
                c.shared.ctx.endpoint_name(&row.endpoint),
            );
            let prompt = clip(&one_line(&row.prompt), width.saturating_sub(head.chars().count()));
            let state_style = match row.state {
                JobState::Completed => theme.ok(),
                JobState::Failed | JobState::SubmitAmbiguous => theme.error(),
                _ => theme.dim(),
            };
            let line = Line::from(vec![Span::styled(head, state_style), Span::raw(prompt)]);
            lines.push(if i == self.selected && c.focused { line.style(theme.selected()) } else { line });
        }
        Paragraph::new(lines).render(list_area, c.buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::panes::harness::Harness;

    fn row(i: i64) -> HistoryRow {
        HistoryRow {
            id: format!("id{i:06}"),
            request_id: None,
            state: if i == 1 { JobState::Failed } else { JobState::Completed },
            created_at: 1_795_564_800 + i,
            prompt: format!("prompt {i}"),
            seed: None,
            outputs: 1,
            endpoint: "fal-ai/flux-pro/kontext/multi".into(),
            estimated_usd: None,
            billed_usd: None,
            cursor: 1000 - i,
            starred: false,
            sweep_id: (i == 3).then(|| "sw1".to_string()),
        }
    }

    fn loaded(n: i64) -> HistoryPane {
        let mut p = HistoryPane::default();
        p.on_listing(HistoryFilter::default(), (0..n).map(row).collect());
        p
    }

    #[test]
    fn typing_a_search_lists_again_and_esc_clears_it() {
        let h = Harness::new();
        let mut p = loaded(3);
        h.press(&mut p, "/");
        assert!(p.is_editing_text());
        let events = h.type_text(&mut p, "cat");
        assert_eq!(events.len(), 3, "one listing per key");
        assert_eq!(p.filter().search, "cat");
        let events = h.press(&mut p, "esc").unwrap();
        assert!(matches!(events.as_slice(), [PaneEvent::Run(Effect::LoadHistory(f))] if f.search.is_empty()));
        assert!(!p.is_searching());
    }

    #[test]
    fn f_cycles_the_state_filter_with_typed_states() {
        let h = Harness::new();
        let mut p = loaded(3);
        h.press(&mut p, "f");
        assert_eq!(p.filter().state, Some(JobState::Completed));
        for _ in 0..4 {
            h.press(&mut p, "f");
        }
        assert_eq!(p.filter().state, None, "back to all");
    }

    #[test]
    fn a_stale_listing_is_dropped() {
        let h = Harness::new();
        let mut p = HistoryPane::default();
        h.press(&mut p, "/");
        let old = p.filter().clone();
        h.type_text(&mut p, "x");
        p.on_listing(old, vec![row(5)]);
        assert!(p.rows().is_empty());
    }

    #[test]
    fn enter_loads_r_reruns_d_asks_first() {
        let h = Harness::new();
        let mut p = loaded(3);
        let load = h.press(&mut p, "enter").unwrap();
        assert!(matches!(
            load.as_slice(),
            [PaneEvent::Run(Effect::LoadHistoryDetail { purpose: DetailPurpose::Load, .. })]
        ));
        let rerun = h.press(&mut p, "r").unwrap();
        assert!(matches!(
            rerun.as_slice(),
            [PaneEvent::Run(Effect::LoadHistoryDetail { purpose: DetailPurpose::Rerun, .. })]
        ));
        let del = h.press(&mut p, "d").unwrap();
        assert!(matches!(del.as_slice(), [PaneEvent::ConfirmDelete { id, .. }] if id == "id000000"));
    }

    #[test]
    fn draws_rows_with_their_state() {
        let h = Harness::new();
        let mut p = loaded(2);
        let screen = h.render(&mut p, 100, 6);
        assert!(screen.contains("5 History 2 shown · all"), "{screen}");
        assert!(screen.contains("failed") && screen.contains("prompt 1"), "{screen}");
        assert!(Harness::new().render(&mut HistoryPane::default(), 100, 6).contains("loading…"));
    }

    #[test]
    fn rows_name_their_endpoint_and_cost() {
        let h = Harness::new();
        let mut p = HistoryPane::default();
        let rows = vec![
            HistoryRow {
                endpoint: "fal-ai/flux-kontext/dev".into(),
                estimated_usd: Some(0.05),
                billed_usd: Some(0.075),
                ..row(0)
            },
            HistoryRow { endpoint: "someone/else".into(), estimated_usd: Some(0.04), ..row(2) },
        ];
        p.on_listing(p.filter().clone(), rows);
        let screen = h.render(&mut p, 110, 6);
        assert!(screen.contains("[dev]       $0.075 billed prompt 0"), "the bill wins over the estimate: {screen}");
        assert!(screen.contains("someone/else ~$0.040 prompt 2"), "an unknown endpoint by its id: {screen}");
    }

    #[test]
    fn s_stars_or_unstars_the_selected_row_and_starred_rows_show_a_star() {
        let h = Harness::new();
        let mut p = HistoryPane::default();
        p.on_listing(HistoryFilter::default(), vec![row(0), HistoryRow { starred: true, sweep_id: None, ..row(2) }]);
        let events = h.press(&mut p, "s").unwrap();
        assert!(
            matches!(&events[..], [PaneEvent::Run(Effect::Star { job: None, history_id, starred: true })] if history_id == "id000000"),
            "{events:?}"
        );
        h.press(&mut p, "down");
        let events = h.press(&mut p, "s").unwrap();
        assert!(matches!(events.last(), Some(PaneEvent::Run(Effect::Star { starred: false, .. }))), "{events:?}");
        let screen = h.render(&mut p, 110, 6);
        let line = |text: &str| screen.lines().find(|l| l.contains(text)).unwrap_or_default().to_string();
        assert!(line("prompt 2").contains("★ prompt 2") && !line("prompt 0").contains('★'), "{screen}");
    }

    #[test]
    fn g_shows_the_sweep_of_a_sweeps_request_and_says_when_there_is_none() {
        let h = Harness::new();
        let mut p = HistoryPane::default();
        p.on_listing(HistoryFilter::default(), (1..=3).map(row).collect());
        // Rows 1 and 2 are not in a sweep; row 3 is.
        let events = h.press(&mut p, "g").unwrap();
        assert!(matches!(events.as_slice(), [PaneEvent::Notify(n)] if n.text.contains("not part of a sweep")));
        assert!(!p.hints(h.shared()).iter().any(|x| x.label == "its sweep"));
        h.press(&mut p, "down");
        h.press(&mut p, "down");
        assert!(p.hints(h.shared()).iter().any(|x| x.label == "its sweep"));
        let screen = h.render(&mut p, 110, 6);
        let line = |text: &str| screen.lines().find(|l| l.contains(text)).unwrap_or_default().to_string();
        assert!(line("prompt 3").contains("▦ prompt 3") && !line("prompt 2").contains('▦'), "{screen}");
        let events = h.press(&mut p, "g").unwrap();
        assert!(
            matches!(events.as_slice(), [PaneEvent::Notify(_), PaneEvent::Run(Effect::LoadSweep(s))] if s == "sw1"),
            "{events:?}"
        );
    }
}
