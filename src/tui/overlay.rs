//! Overlays: a layer over the panes with its own key scope — the help (every binding the keymap
//! really has, grouped by where it applies), the delete confirmation, the prompt-recall search
//! and the endpoint list. While one is open it gets every key; Ctrl-Q still quits.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};

use super::context::AppContext;
use super::message::{Effect, Notice};
use super::pane::Scope;
use super::panes::PaneEvent;
use super::view::theme::Theme;
use super::widgets::{centered, clip};

#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    Help {
        scroll: u16,
    },
    ConfirmDelete {
        id: String,
        prompt: String,
    },
    RecallSearch {
        query: String,
        selected: usize,
    },
    /// The endpoints (id, short name), filtered by `query` as it is typed.
    EndpointPicker {
        endpoints: Vec<(String, String)>,
        query: String,
        selected: usize,
    },
}

/// What a key did to an overlay.
#[derive(Debug)]
pub enum OverlayOutcome {
    /// Still open (maybe changed).
    Open(Overlay),
    /// Closed, with what it asks of the app.
    Closed(Vec<PaneEvent>),
}

/// Earlier prompts containing every word of `query` (case-insensitive).
pub fn recall_matches(recall: &[String], query: &str) -> Vec<String> {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    recall
        .iter()
        .filter(|p| {
            let lower = p.to_lowercase();
            words.iter().all(|w| lower.contains(w))
        })
        .cloned()
        .collect()
}

/// The endpoints whose id or name contains every word of `query` (case-insensitive), those
/// whose name alone does first ("text" is in every id's "kontext").
pub fn endpoint_matches<'a>(endpoints: &'a [(String, String)], query: &str) -> Vec<&'a (String, String)> {
    let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
    let has_all = |hay: &str| words.iter().all(|w| hay.contains(w));
    let mut found: Vec<&(String, String)> =
        endpoints.iter().filter(|(id, name)| has_all(&format!("{id} {name}").to_lowercase())).collect();
    found.sort_by_key(|(_, name)| !has_all(&name.to_lowercase()));
    found
}

/// A one-line filter's keys: Up/Down move, Backspace and letters edit the query.
fn filter_key(key: &KeyEvent, query: &mut String, selected: &mut usize, count: usize) {
    match key.code {
        KeyCode::Up => *selected = selected.saturating_sub(1),
        KeyCode::Down => *selected = (*selected + 1).min(count.saturating_sub(1)),
        KeyCode::Backspace => {
            query.pop();
            *selected = 0;
        }
        KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
            query.push(c);
            *selected = 0;
        }
        _ => {}
    }
}

impl Overlay {
    /// A key while this overlay is open; `recall` is the prompts the recall search looks in.
    pub fn on_key(self, key: &KeyEvent, recall: &[String]) -> OverlayOutcome {
        match self {
            Overlay::Help { scroll } => match key.code {
                KeyCode::Down | KeyCode::Char('j') | KeyCode::PageDown => {
                    let by = if key.code == KeyCode::PageDown { 10 } else { 1 };
                    OverlayOutcome::Open(Overlay::Help { scroll: scroll.saturating_add(by) })
                }
                KeyCode::Up | KeyCode::Char('k') | KeyCode::PageUp => {
                    let by = if key.code == KeyCode::PageUp { 10 } else { 1 };
                    OverlayOutcome::Open(Overlay::Help { scroll: scroll.saturating_sub(by) })
                }
                _ => OverlayOutcome::Closed(Vec::new()),
            },
            Overlay::ConfirmDelete { id, .. } => OverlayOutcome::Closed(match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    vec![PaneEvent::Notify(Notice::info("deleting…")), PaneEvent::Run(Effect::DeleteHistory(id))]
                }
                _ => vec![PaneEvent::Notify(Notice::info("not deleted"))],
            }),
            Overlay::RecallSearch { mut query, mut selected } => {
                let matches = recall_matches(recall, &query);
                match key.code {
                    KeyCode::Esc => return OverlayOutcome::Closed(Vec::new()),
                    KeyCode::Enter => {
                        let chosen = matches.get(selected).map(|p| PaneEvent::SetPrompt(p.clone()));
                        return OverlayOutcome::Closed(chosen.into_iter().collect());
                    }
                    _ => filter_key(key, &mut query, &mut selected, matches.len()),
                }
                OverlayOutcome::Open(Overlay::RecallSearch { query, selected })
            }
            Overlay::EndpointPicker { endpoints, mut query, mut selected } => {
                let matches = endpoint_matches(&endpoints, &query);
                match key.code {
                    KeyCode::Esc => return OverlayOutcome::Closed(Vec::new()),
                    KeyCode::Enter => {
                        let chosen = matches.get(selected).map(|(id, _)| PaneEvent::SetEndpoint(id.clone()));
                        return OverlayOutcome::Closed(chosen.into_iter().collect());
                    }
                    _ => filter_key(key, &mut query, &mut selected, matches.len()),
                }
                OverlayOutcome::Open(Overlay::EndpointPicker { endpoints, query, selected })
            }
        }
    }

    pub fn draw(&self, buf: &mut Buffer, area: Rect, ctx: &AppContext, recall: &[String], theme: &Theme) {
        match self {
            Overlay::Help { scroll } => draw_help(buf, area, ctx, *scroll, theme),
            Overlay::ConfirmDelete { prompt, id } => {
                let rect = centered(area, 60, 6);
                Clear.render(rect, buf);
                Paragraph::new(vec![
                    Line::raw(format!("Delete history entry {}?", id.get(..8).unwrap_or(id))),
                    Line::styled(clip(prompt, 56), theme.dim()),
                    Line::from(vec![
                        Span::styled("y", theme.key()),
                        Span::raw(" delete   "),
                        Span::styled("any other key", theme.key()),
                        Span::raw(" keep"),
                    ]),
                ])
                .block(Block::bordered().title(" Confirm ").border_style(theme.error()))
                .wrap(Wrap { trim: true })
                .render(rect, buf);
            }
            Overlay::RecallSearch { query, selected } => {
                let matches: Vec<String> =
                    recall_matches(recall, query).iter().map(|m| crate::sanitize::one_line(m)).collect();
                let title = " Recall a prompt (Enter takes it, Esc closes) ";
                FilteredList { title, query, selected: *selected, empty: "no earlier prompt matches" }
                    .draw(buf, area, &matches, theme);
            }
            Overlay::EndpointPicker { endpoints, query, selected } => {
                let matches: Vec<String> =
                    endpoint_matches(endpoints, query).iter().map(|(id, name)| format!("{name:<28} {id}")).collect();
                let title = " Endpoint (type to filter, Enter picks it, Esc closes) ";
                let empty = "no endpoint matches (kontext models add ID adds one)";
                FilteredList { title, query, selected: *selected, empty }.draw(buf, area, &matches, theme);
            }
        }
    }
}

/// A list under a filter line, the selected row highlighted (recall, endpoints).
struct FilteredList<'a> {
    title: &'static str,
    query: &'a str,
    selected: usize,
    empty: &'static str,
}

impl FilteredList<'_> {
    fn draw(&self, buf: &mut Buffer, area: Rect, matches: &[String], theme: &Theme) {
        let rect = centered(area, 80, 14);
        Clear.render(rect, buf);
        let mut lines = vec![Line::from(vec![
            Span::styled("search: ", theme.key()),
            Span::raw(self.query.to_string()),
            Span::styled("█", theme.key()),
        ])];
        if matches.is_empty() {
            lines.push(Line::styled(self.empty, theme.dim()));
        }
        let room = rect.height.saturating_sub(3) as usize;
        let first = self.selected.saturating_sub(room.saturating_sub(1));
        for (i, m) in matches.iter().enumerate().skip(first).take(room) {
            let text = clip(m, rect.width.saturating_sub(4) as usize);
            lines.push(if i == self.selected { Line::styled(text, theme.selected()) } else { Line::raw(text) });
        }
        Paragraph::new(lines)
            .block(Block::bordered().title(self.title).border_style(theme.border_focused()))
            .render(rect, buf);
    }
}

/// Keys a text field handles itself (not in the keymap).
const TEXT_FIELD_KEYS: [(&str, &str); 7] = [
    ("F1", "this help, from any field"),
    ("Enter", "add the image / keep value or search"),
    ("Esc", "cancel (a typed value is undone)"),
    ("Esc in the Prompt", "leave it: focus goes to Images"),
    ("Backspace", "delete a character"),
    ("Ctrl-U", "clear the image line"),
    ("Ctrl-Z / Ctrl-Y", "undo / redo in the Prompt"),
];

/// The help's text: what the keymap binds (with the config's `[keys]`), then text fields' keys.
pub fn help_lines(ctx: &AppContext, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = vec![
        Line::styled("kontext — keys", theme.title()),
        Line::styled(format!("talking to: {} · images: {}", ctx.target, ctx.graphics), theme.dim()),
        Line::styled(format!("outputs go to: {}", ctx.output_dir), theme.dim()),
        Line::raw(""),
    ];
    let mut scope: Option<Scope> = None;
    for (s, keys, action) in ctx.keymap.help_rows() {
        if scope != Some(s) {
            if scope.is_some() {
                lines.push(Line::raw(""));
            }
            lines.push(Line::styled(s.title().to_string(), theme.title()));
            scope = Some(s);
        }
        lines.push(Line::from(vec![
            Span::styled(format!("  {keys:<34} "), theme.key()),
            Span::raw(action.describe().to_string()),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled("In a text field (Prompt, image line, typed value, search)", theme.title()));
    for (keys, what) in TEXT_FIELD_KEYS {
        lines.push(Line::from(vec![Span::styled(format!("  {keys:<34} "), theme.key()), Span::raw(what)]));
    }
    lines.extend([
        Line::raw("  Letters are text there; Ctrl, Alt, F-keys and Tab stay commands"),
        // The runtime, not the keymap, answers Ctrl-L (it repaints the terminal, images too).
        Line::from(vec![
            Span::styled(format!("  {:<34} ", "Ctrl-L (anywhere)"), theme.key()),
            Span::raw("repaint the whole screen, images too"),
        ]),
        Line::raw("  Paste (bracketed) in Images adds one image per line"),
        Line::raw(""),
        Line::styled("Endpoint and cost", theme.title()),
        Line::raw("  Parameters' first row picks the endpoint: ←/→ cycle, Enter (or a"),
        Line::raw("  letter) opens the list, which filters as you type; the rows and the"),
        Line::raw("  image limit follow it"),
        Line::raw("  Beside the submit key: the estimate and its price source; over a"),
        Line::raw("  [budget] cap a request is refused before anything is sent"),
        Line::raw("  The status bar shows today's spend"),
        Line::raw(""),
        Line::styled("Sweeps", theme.title()),
        Line::raw(format!(
            "  {} plans the current draft many ways: seeds 1..8 / 1,5,9 / random:N,",
            ctx.keymap.keys_for(super::action::Action::Sweep)
        )),
        Line::raw("  guidance, aspect ratios, prompts (a | b), endpoints, fields"),
        Line::raw("  (name=v1,v2; …): the count and the cost follow as you type"),
        Line::raw("  Enter sends (the plan is journaled first; over a [budget] cap it is"),
        Line::raw("  refused), Esc cancels"),
        Line::raw("  In Jobs a sweep is one row: → shows its jobs, ← folds them, c cancels"),
        Line::raw("  Never-sent points (cancelled, or quit) go later with"),
        Line::raw("  `kontext sweep --continue ID`"),
        Line::raw(""),
        Line::styled("Esc or any other key closes this help; ↑↓ PgUp PgDn scroll", theme.dim()),
    ]);
    lines
}

fn draw_help(buf: &mut Buffer, area: Rect, ctx: &AppContext, scroll: u16, theme: &Theme) {
    let lines = help_lines(ctx, theme);
    let two_columns = area.width >= 150;
    let rect = centered(area, if two_columns { 150 } else { 84 }, area.height.saturating_sub(2));
    Clear.render(rect, buf);
    let block =
        Block::bordered().title(" Help — ↑↓ PgUp PgDn scroll · Esc closes ").border_style(theme.border_focused());
    let inner = block.inner(rect);
    block.render(rect, buf);
    if two_columns {
        // Split at the blank line nearest the middle, so no group is cut in two.
        let mid = lines.len() / 2;
        let split = (mid..lines.len()).find(|&i| lines[i].width() == 0).unwrap_or(mid);
        let right = lines[split..].to_vec();
        let left = lines[..split].to_vec();
        let half = inner.width / 2;
        Paragraph::new(left).scroll((scroll, 0)).render(Rect { width: half, ..inner }, buf);
        Paragraph::new(right)
            .scroll((scroll, 0))
            .render(Rect { x: inner.x + half, width: inner.width - half, ..inner }, buf);
    } else {
        Paragraph::new(lines).scroll((scroll, 0)).render(inner, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::action::Keymap;
    use std::collections::HashMap;

    fn ctx(keymap: Keymap) -> AppContext {
        AppContext { target: "t".into(), graphics: "g".into(), data_uri_threshold: 0, ..AppContext::new(keymap) }
    }

    /// Two columns of 150 leave 74 cells each: no line of the help may be cut there.
    #[test]
    fn every_help_line_fits_a_column() {
        let lines = help_lines(&ctx(Keymap::default()), &Theme::MONO);
        let long: Vec<String> = lines.iter().filter(|l| l.width() > 74).map(|l| l.to_string()).collect();
        assert!(long.is_empty(), "cut in two-column help:\n{}", long.join("\n"));
    }

    fn text(lines: &[Line]) -> String {
        lines.iter().map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect::<String>() + "\n").collect()
    }

    #[test]
    fn the_help_lists_the_keys_as_configured() {
        let mut o = HashMap::new();
        o.insert("submit".to_string(), vec!["ctrl-g".to_string()]);
        let help = text(&help_lines(&ctx(Keymap::default().with_overrides(&o).unwrap()), &Theme::MONO));
        assert!(help.contains("Ctrl-G") && help.contains("submit the request"), "{help}");
        assert!(!help.contains("F5"), "the replaced key is gone: {help}");
        assert!(
            help.contains("Esc in the Prompt") && help.contains("focus goes to Images"),
            "Esc's focus move is documented"
        );
        assert!(help.contains("first row picks the endpoint") && help.contains("[budget] cap"), "{help}");
        assert!(help.contains("F6 plans the current draft many ways") && help.contains("--continue"), "{help}");
    }

    #[test]
    fn recall_search_narrows_by_every_word_and_enter_takes_it() {
        let recall = vec!["a red fox".to_string(), "a blue fox".into(), "a red hat".into()];
        assert_eq!(recall_matches(&recall, "RED fox"), ["a red fox"]);
        let mut o = Overlay::RecallSearch { query: String::new(), selected: 0 };
        for c in "hat".chars() {
            o = match o.on_key(&KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE), &recall) {
                OverlayOutcome::Open(o) => o,
                other => panic!("{other:?}"),
            };
        }
        let done = o.on_key(&KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE), &recall);
        assert!(
            matches!(done, OverlayOutcome::Closed(e) if matches!(e.as_slice(), [PaneEvent::SetPrompt(p)] if p == "a red hat"))
        );
    }

    #[test]
    fn only_y_deletes() {
        let o = || Overlay::ConfirmDelete { id: "x".into(), prompt: "p".into() };
        let yes = o().on_key(&KeyEvent::new(KeyCode::Char('y'), KeyModifiers::NONE), &[]);
        assert!(
            matches!(yes, OverlayOutcome::Closed(e) if e.iter().any(|e| matches!(e, PaneEvent::Run(Effect::DeleteHistory(id)) if id == "x")))
        );
        let no = o().on_key(&KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE), &[]);
        assert!(matches!(no, OverlayOutcome::Closed(e) if !e.iter().any(|e| matches!(e, PaneEvent::Run(_)))));
    }

    #[test]
    fn the_endpoint_list_filters_names_first_and_enter_picks() {
        let endpoints: Vec<(String, String)> = crate::model::Catalog::bundled()
            .iter()
            .map(|s| (s.endpoint_id.clone(), crate::tui::form::endpoint_short(s)))
            .collect();
        let ids = |q: &str| endpoint_matches(&endpoints, q).iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
        assert_eq!(ids("max")[0], "fal-ai/flux-pro/kontext/max");
        assert_eq!(ids("pro text")[0], "fal-ai/flux-pro/kontext/text-to-image", "not [pro] multi's \"kontext\"");
        assert_eq!(ids("DEV"), ["fal-ai/flux-kontext/dev"]);
        let mut o = Overlay::EndpointPicker { endpoints, query: String::new(), selected: 0 };
        for key in [KeyCode::Char('m'), KeyCode::Char('a'), KeyCode::Char('x'), KeyCode::Down] {
            o = match o.on_key(&KeyEvent::new(key, KeyModifiers::NONE), &[]) {
                OverlayOutcome::Open(o) => o,
                other => panic!("{other:?}"),
            };
        }
        let done = o.on_key(&KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE), &[]);
        assert!(
            matches!(&done, OverlayOutcome::Closed(e) if matches!(e.as_slice(), [PaneEvent::SetEndpoint(id)] if id == "fal-ai/flux-pro/kontext/max/multi")),
            "{done:?}"
        );
    }
}
