//! A hint can never lie: for every pane and input state, press every key its status bar names
//! and check that the named thing happens — with the default keys and with `[keys]` overrides.
//! Also: F1 opens the help from every state, and Esc means one thing everywhere.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use kontext::history::JobState;
use kontext::model::Draft;
use kontext::runner::SavedImage;
use kontext::tui::action::{Action, Keymap};
use kontext::tui::app::{App, Pane};
use kontext::tui::message::{DetailPurpose, Effect, HistoryRow, JobFinish, Message};
use kontext::tui::overlay::Overlay;
use kontext::tui::panes::{Hint, PaneBehaviour};

mod support;
use support::studio::{context, paste, typ};
use support::sweep_fixture;

/// Presses the first key the keymap binds to `action` (so setups work with overrides too).
fn ask(a: &mut App, action: Action) -> Vec<Effect> {
    let scope = a.focus().scope();
    let combo = a
        .context()
        .keymap
        .first_key(scope, action, true)
        .or_else(|| a.context().keymap.first_key(scope, action, false));
    let combo = combo.unwrap_or_else(|| panic!("{action:?} is bound"));
    a.update(Message::Input(Event::Key(combo.to_event())))
}

fn go(a: &mut App, pane: Pane) {
    let action = match pane {
        Pane::Prompt => Action::FocusPrompt,
        Pane::Images => Action::FocusImages,
        Pane::Params => Action::FocusParams,
        Pane::Jobs => Action::FocusJobs,
        Pane::History => Action::FocusHistory,
        Pane::Results => Action::FocusResults,
    };
    ask(a, action);
    assert_eq!(a.focus(), pane);
}

fn plain(a: &mut App, code: KeyCode) {
    a.update(Message::Input(Event::Key(KeyEvent::new(code, KeyModifiers::NONE))));
}

/// A prompt and two image URLs, back in the Prompt.
fn ready(keymap: &Keymap) -> App {
    let mut a = App::new(context(keymap.clone()), &Draft::default());
    typ(&mut a, "make it blue");
    go(&mut a, Pane::Images);
    paste(&mut a, "https://a.example/x.png\nhttps://a.example/y.png\n");
    go(&mut a, Pane::Prompt);
    a
}

fn submitted(keymap: &Keymap) -> App {
    let mut a = ready(keymap);
    assert!(ask(&mut a, Action::Submit).iter().any(|e| matches!(e, Effect::Submit { .. })));
    a
}

fn finished(keymap: &Keymap) -> App {
    let mut a = submitted(keymap);
    let files = (0..2)
        .map(|index| SavedImage {
            index,
            path: PathBuf::from(format!("/out/r-{index}.jpg")),
            width: 8,
            height: 8,
            content_type: "image/jpeg".into(),
            nsfw: false,
        })
        .collect();
    let outcome = JobFinish::Done {
        request_id: "req-1".into(),
        seed: 5,
        files,
        urls: vec![],
        prompt_used: "make it blue".into(),
        inference: None,
        unrecorded: vec![],
        billable_units: None,
    };
    a.update(Message::JobFinished { id: 1, outcome: Box::new(outcome) });
    a.update(Message::JobRecorded { id: 1, history_id: "hist-1".into() });
    a
}

fn with_history(keymap: &Keymap) -> App {
    let mut a = ready(keymap);
    let rows = (0..3)
        .map(|i| HistoryRow {
            id: format!("id{i}"),
            request_id: None,
            state: JobState::Completed,
            created_at: 1_795_564_800 + i,
            prompt: format!("prompt {i}"),
            seed: None,
            outputs: 1,
            endpoint: "fal-ai/flux-pro/kontext/multi".into(),
            estimated_usd: None,
            billed_usd: None,
            cursor: 100 - i,
            starred: false,
            sweep_id: None,
        })
        .collect();
    a.update(Message::History { filter: a.history().filter().clone(), rows });
    go(&mut a, Pane::History);
    a
}

/// Every pane, and each input state a pane has.
fn states(km: &Keymap) -> Vec<(&'static str, App)> {
    let mut s: Vec<(&'static str, App)> = vec![("prompt", ready(km))];
    let mut images = ready(km);
    go(&mut images, Pane::Images);
    s.push(("images", images));
    let mut adding = ready(km);
    go(&mut adding, Pane::Images);
    ask(&mut adding, Action::Add);
    typ(&mut adding, "https://a.example/z.png");
    s.push(("images adding", adding));
    let mut params = ready(km);
    go(&mut params, Pane::Params);
    s.push(("params", params));
    let mut field = ready(km);
    go(&mut field, Pane::Params);
    plain(&mut field, KeyCode::Down);
    s.push(("params field", field));
    let mut typing = ready(km);
    go(&mut typing, Pane::Params);
    plain(&mut typing, KeyCode::Down);
    typ(&mut typing, "7");
    s.push(("params typing", typing));
    let mut jobs = submitted(km);
    go(&mut jobs, Pane::Jobs);
    s.push(("jobs", jobs));
    let mut done = finished(km);
    go(&mut done, Pane::Jobs);
    s.push(("jobs finished", done));
    s.push(("history", with_history(km)));
    let mut searching = with_history(km);
    ask(&mut searching, Action::Search);
    typ(&mut searching, "pro");
    s.push(("history searching", searching));
    let mut results = finished(km);
    go(&mut results, Pane::Results);
    s.push(("results", results));
    let mut full = finished(km);
    go(&mut full, Pane::Results);
    ask(&mut full, Action::Confirm);
    s.push(("results full screen", full));
    let mut sweep = ready(km);
    sweep_fixture::finished_sweep(&mut sweep, 2, 3, 2, Path::new("/out"), None);
    // Off the first cell, which is still running.
    ask(&mut sweep, Action::Right);
    s.push(("results sweep", sweep));
    s.push(("results comparing", comparing(km)));
    let mut flipped = comparing(km);
    ask(&mut flipped, Action::ToggleSplit);
    s.push(("results flipped", flipped));
    s
}

/// Job #1's two outputs marked A and B, compared side by side.
fn comparing(km: &Keymap) -> App {
    let mut a = finished(km);
    go(&mut a, Pane::Results);
    ask(&mut a, Action::MarkA);
    ask(&mut a, Action::Right);
    ask(&mut a, Action::MarkB);
    ask(&mut a, Action::Compare);
    assert_eq!(a.results().is_comparing(), Some(true));
    a
}

fn all_hints(a: &App) -> Vec<Hint> {
    a.hints()
}

fn params(a: &App) -> Vec<String> {
    a.params().values()
}

/// Did pressing `hint` do what its label says? `b` is the state before, `a` after.
fn did_what_it_says(state: &str, label: &str, b: &App, a: &App, effects: &[Effect]) -> bool {
    let effect = |f: &dyn Fn(&Effect) -> bool| effects.iter().any(f);
    match (state, label) {
        (_, "help") => matches!(a.overlay(), Some(Overlay::Help { .. })),
        (_, "submit") => effect(&|e| matches!(e, Effect::Submit { .. })),
        (_, "sweep") => a.sweep_dialog().is_some(),
        // With a submit in flight it quits once fal has it, and says so.
        (_, "quit") => {
            (a.wants_quit() && effect(&|e| matches!(e, Effect::Quit)))
                || a.notice().is_some_and(|n| n.text.contains("before quitting — Ctrl-Q again quits now"))
        }
        (_, "next pane") => {
            let at = |p: Pane| Pane::ORDER.iter().position(|x| *x == p).unwrap();
            at(a.focus()) == (at(b.focus()) + 1) % Pane::ORDER.len()
        }
        ("prompt", "editor") => effect(&|e| matches!(e, Effect::OpenEditor(t) if t == "make it blue")),
        ("prompt", "recall") => matches!(a.overlay(), Some(Overlay::RecallSearch { .. })),
        ("images", "add") => a.images().is_adding(),
        ("images", "remove") => a.images().items().len() + 1 == b.images().items().len(),
        ("images", "reorder") => {
            let (before, after) = (b.images().items(), a.images().items());
            before.len() == after.len() && before != after
        }
        ("images adding", "add") => a.images().items().last().is_some_and(|i| i == "https://a.example/z.png"),
        ("images adding", "cancel") => !a.images().is_adding() && a.images().items() == b.images().items(),
        ("params", "endpoint") => {
            a.params().schema().endpoint_id != b.params().schema().endpoint_id && params(a) != params(b)
        }
        ("params", "list") => matches!(a.overlay(), Some(Overlay::EndpointPicker { .. })),
        ("params field", "change") | ("params field", "type") => params(a) != params(b),
        ("params typing", "keep") => !a.params().is_editing_text() && a.params().value("seed") == "7",
        ("params typing", "undo") => !a.params().is_editing_text() && a.params().value("seed") == "random",
        ("jobs", "cancel") => effect(&|e| matches!(e, Effect::Cancel(1))),
        ("jobs" | "jobs finished", "results") => a.focus() == Pane::Results,
        ("jobs" | "jobs finished", "re-run") => {
            effect(&|e| matches!(e, Effect::Submit { input, .. } if input.prompt == "make it blue"))
        }
        ("history", "search") => a.history().is_searching(),
        ("history", "filter") => a.history().filter().state != b.history().filter().state,
        ("history", "load") => effect(&|e| matches!(e, Effect::LoadHistoryDetail { purpose: DetailPurpose::Load, .. })),
        ("history", "re-run") => {
            effect(&|e| matches!(e, Effect::LoadHistoryDetail { purpose: DetailPurpose::Rerun, .. }))
        }
        ("history", "star") => effect(&|e| matches!(e, Effect::Star { job: None, starred: true, .. })),
        ("history", "delete") => matches!(a.overlay(), Some(Overlay::ConfirmDelete { .. })),
        ("history searching", "keep search") => !a.history().is_searching() && a.history().filter().search == "pro",
        ("history searching", "clear search") => !a.history().is_searching() && a.history().filter().search.is_empty(),
        ("results" | "results full screen", "copy") => effect(&|e| matches!(e, Effect::Copy(t) if t == "/out/r-0.jpg")),
        ("results", "full") => a.results().is_fullscreen(),
        ("results", "side by side") => a.results().is_side_by_side() != b.results().is_side_by_side(),
        ("results full screen", "back") => !a.results().is_fullscreen(),
        ("results full screen", "next image") => a.results().selected() == b.results().selected() + 1,
        ("results" | "results sweep", "star") => effect(&|e| matches!(e, Effect::Star { starred: true, .. })),
        ("results" | "results sweep", "mark A") => a.results().marked(0).is_some() && b.results().marked(0).is_none(),
        ("results" | "results sweep", "mark B") => a.results().marked(1).is_some() && b.results().marked(1).is_none(),
        // Nothing marked yet: it says what to mark.
        ("results" | "results sweep", "compare") => a.notice().is_some_and(|n| n.text.contains("a marks A")),
        ("results sweep", "move") => a.results().cursor().col == b.results().cursor().col + 1,
        ("results sweep", "next page") => a.results().cursor().page == b.results().cursor().page + 1,
        // On the first page already: it stays there.
        ("results sweep", "previous page") => a.results().cursor().page == 0,
        ("results sweep", "full") => a.results().is_fullscreen(),
        ("results sweep", "copy") => effect(&|e| matches!(e, Effect::Copy(t) if t.ends_with(".png"))),
        ("results sweep", "copy id") => effect(&|e| matches!(e, Effect::Copy(t) if t.ends_with("-dddddddddddd"))),
        ("results comparing", "flip") | ("results flipped", "show the other") => {
            a.results().is_comparing() == Some(false) && a.results().is_fullscreen()
        }
        ("results comparing", "one at a time") => a.results().is_comparing() == Some(false),
        ("results flipped", "split") => a.results().is_comparing() == Some(true),
        ("results comparing" | "results flipped", "back") => a.results().is_comparing().is_none(),
        _ => panic!("{state}: no check for the hint {label:?}; add one to did_what_it_says"),
    }
}

fn walk(km: &Keymap) -> usize {
    let mut pressed = 0;
    for (state, app) in states(km) {
        let hints = all_hints(&app);
        assert!(hints.iter().any(|h| h.label == "help"), "{state}: help is always named: {hints:?}");
        let labels: Vec<&str> = hints.iter().map(|h| h.label).collect();
        for (i, hint) in hints.iter().enumerate() {
            assert!(!labels[..i].contains(&hint.label), "{state}: {:?} is named twice", hint.label);
            // A fresh copy of the state for each key.
            let (_, mut after) = states(km).into_iter().find(|(s, _)| *s == state).unwrap();
            let effects = after.update(Message::Input(Event::Key(hint.press.to_event())));
            assert!(
                did_what_it_says(state, hint.label, &app, &after, &effects),
                "{state}: {} {:?} did not do that (effects {effects:?})",
                hint.keys,
                hint.label
            );
            pressed += 1;
        }
    }
    pressed
}

#[test]
fn every_key_a_hint_bar_names_does_what_it_says() {
    let pressed = walk(&Keymap::default());
    assert!(pressed >= 40, "only {pressed} hints were pressed");
}

#[test]
fn hints_follow_the_keys_of_the_config() {
    let mut o = HashMap::new();
    // Copy takes compare's default key, so compare moves too.
    let keys =
        [("help", "f2"), ("submit", "ctrl-g"), ("copy", "c"), ("compare", "m"), ("add", "i"), ("cancel_job", "x")];
    for (action, key) in keys {
        o.insert(action.to_string(), vec![key.to_string()]);
    }
    let km = Keymap::default().with_overrides(&o).unwrap();
    walk(&km);
    let (_, mut a) = states(&km).into_iter().find(|(s, _)| *s == "images").unwrap();
    let hints = all_hints(&a);
    let keys = |label: &str| hints.iter().find(|h| h.label == label).map(|h| h.keys.clone());
    assert_eq!(keys("help").as_deref(), Some("F2"));
    assert_eq!(keys("submit").as_deref(), Some("Ctrl-G"));
    assert_eq!(keys("add").as_deref(), Some("i"));
    plain(&mut a, KeyCode::Char('?'));
    assert!(a.overlay().is_none(), "? is no longer bound to help");
}

#[test]
fn f1_opens_the_help_from_every_pane_and_every_input() {
    let km = Keymap::default();
    for (state, mut a) in states(&km) {
        plain(&mut a, KeyCode::F(1));
        assert!(matches!(a.overlay(), Some(Overlay::Help { .. })), "{state}: F1 did not open the help");
    }
    // At start: the first key a newcomer tries.
    let mut fresh = App::new(context(km.clone()), &Draft::default());
    assert_eq!(fresh.focus(), Pane::Prompt);
    plain(&mut fresh, KeyCode::F(1));
    assert!(matches!(fresh.overlay(), Some(Overlay::Help { .. })));
    plain(&mut fresh, KeyCode::Esc);
    assert!(fresh.overlay().is_none(), "Esc closes it");
    assert_eq!(fresh.prompt_text(), "", "and neither key typed anything");
}

#[test]
fn esc_closes_cancels_or_leaves_and_the_prompt_moves_on() {
    let km = Keymap::default();
    for (state, mut a) in states(&km) {
        let before_items = a.images().items().to_vec();
        plain(&mut a, KeyCode::Esc);
        let ok = match state {
            // The one Esc that moves the focus; the help says so.
            "prompt" => a.focus() == Pane::Images,
            "images adding" => !a.images().is_adding() && a.images().items() == before_items,
            "params typing" => !a.params().is_editing_text() && a.params().value("seed") == "random",
            "history searching" => !a.history().is_searching() && a.history().filter().search.is_empty(),
            "results full screen" => !a.results().is_fullscreen() && a.focus() == Pane::Results,
            // Nothing to close, cancel or leave: nothing happens.
            _ => {
                a.overlay().is_none()
                    && a.focus() == states(&km).into_iter().find(|(s, _)| *s == state).unwrap().1.focus()
            }
        };
        assert!(ok, "{state}: Esc did not do its one job");
    }
    for overlay_key in [Action::Help, Action::RecallSearch] {
        let mut a = ready(&km);
        ask(&mut a, overlay_key);
        assert!(a.overlay().is_some());
        plain(&mut a, KeyCode::Esc);
        assert!(a.overlay().is_none(), "{overlay_key:?}: Esc closes the overlay");
        assert_eq!(a.focus(), Pane::Prompt, "and leaves the focus alone");
    }
    // The endpoint list too.
    let mut a = ready(&km);
    go(&mut a, Pane::Params);
    plain(&mut a, KeyCode::Enter);
    assert!(matches!(a.overlay(), Some(Overlay::EndpointPicker { .. })));
    plain(&mut a, KeyCode::Esc);
    assert!(a.overlay().is_none() && a.focus() == Pane::Params, "Esc closes the endpoint list");
    let ctx = context(km.clone());
    let help = kontext::tui::overlay::help_lines(&ctx, &kontext::tui::view::theme::Theme::MONO);
    let text: String = help.iter().flat_map(|l| l.spans.iter().map(|s| s.content.to_string())).collect();
    assert!(text.contains("Esc in the Prompt") && text.contains("focus goes to Images"), "the help says so");
}
