//! Whole-screen snapshots (ratatui TestBackend + insta) of each pane in its main states. Colours
//! are off (the monochrome theme) so the text shows structure; times and spinners are filtered.

use std::path::PathBuf;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use kontext::fal::RequestHandle;
use kontext::model::{Draft, LogEntry};
use kontext::runner::{JobEvent, SavedImage};
use kontext::tui::action::Keymap;
use kontext::tui::app::{App, AppContext, Pane};
use kontext::tui::message::{HistoryRow, JobFinish, Message};
use kontext::tui::view::{self, NoImages, theme::Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn app() -> App {
    let ctx = AppContext {
        max_images: 4,
        target: "emulator (no key)".into(),
        graphics: "text previews".into(),
        keymap: Keymap::default(),
        data_uri_threshold: 256 * 1024,
    };
    App::new(ctx, &Draft::default())
}

fn render(app: &mut App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(f, app, &mut NoImages, &Theme::MONO)).unwrap();
    t.backend().to_string()
}

fn key(app: &mut App, code: KeyCode) {
    app.update(Message::Input(Event::Key(KeyEvent::new(code, KeyModifiers::NONE))));
}

fn ctrl(app: &mut App, c: char) {
    app.update(Message::Input(Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))));
}

fn typ(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn focus(app: &mut App, n: char) {
    app.update(Message::Input(Event::Key(KeyEvent::new(KeyCode::Char(n), KeyModifiers::ALT))));
}

macro_rules! snap {
    ($name:expr, $screen:expr) => {
        insta::with_settings!({filters => vec![
            (r"\d+\.\ds ", "N.Ns "),
            (r"[◐◓◑◒]", "*"),
        ]}, {
            insta::assert_snapshot!($name, $screen);
        });
    };
}

fn filled() -> App {
    let mut a = app();
    typ(&mut a, "Put the little duckling on top of the woman's t-shirt.");
    focus(&mut a, '2');
    a.update(Message::Input(Event::Paste(
        "https://v3.fal.media/files/penguin/XoW0qavfF-ahg-jX4BMyL_image.webp\nhttps://v3.fal.media/files/tiger/bml6YA7DWJXOigadvxk75_image.webp\n".into(),
    )));
    focus(&mut a, '3');
    typ(&mut a, "42");
    key(&mut a, KeyCode::Down);
    key(&mut a, KeyCode::Right);
    key(&mut a, KeyCode::Down);
    key(&mut a, KeyCode::Down);
    key(&mut a, KeyCode::Right);
    a
}

fn handle(id: &str) -> RequestHandle {
    RequestHandle {
        endpoint: "fal-ai/flux-pro/kontext/multi".into(),
        request_id: id.into(),
        response_url: format!("http://127.0.0.1/fal-ai/flux-pro/requests/{id}"),
        status_url: format!("http://127.0.0.1/fal-ai/flux-pro/requests/{id}/status"),
        cancel_url: format!("http://127.0.0.1/fal-ai/flux-pro/requests/{id}/cancel"),
    }
}

fn submitted() -> App {
    let mut a = filled();
    ctrl(&mut a, 's');
    a.update(Message::Job {
        id: 1,
        event: JobEvent::Submitted { handle: handle("3e3e5b8a-1111-4222-8333-444455556666") },
    });
    a
}

#[test]
fn empty_studio() {
    snap!("empty", render(&mut app(), 120, 36));
}

#[test]
fn filled_form() {
    snap!("filled", render(&mut filled(), 120, 36));
}

#[test]
fn invalid_form_blocks_submit_and_shows_each_problem() {
    let mut a = filled();
    key(&mut a, KeyCode::Up);
    key(&mut a, KeyCode::Up);
    typ(&mut a, "25");
    key(&mut a, KeyCode::Down);
    typ(&mut a, "9");
    ctrl(&mut a, 's');
    assert!(a.jobs.is_empty(), "nothing submitted");
    snap!("invalid", render(&mut a, 120, 36));
}

#[test]
fn job_queued() {
    let mut a = submitted();
    a.update(Message::Job { id: 1, event: JobEvent::Queued { position: Some(2) } });
    snap!("job_queued", render(&mut a, 120, 36));
}

#[test]
fn job_in_progress_with_logs() {
    let mut a = submitted();
    a.update(Message::Job { id: 1, event: JobEvent::InProgress });
    let logs = ["Loading inputs: 2 images", "Step 7/28", "Step 14/28 \u{1b}[31mred\u{1b}[0m"]
        .iter()
        .map(|m| LogEntry { message: m.to_string(), timestamp: None, level: None, source: None })
        .collect();
    a.update(Message::Job { id: 1, event: JobEvent::Logs(logs) });
    focus(&mut a, '4');
    let screen = render(&mut a, 120, 36);
    assert!(!screen.contains('\u{1b}'), "server text is stripped of escapes");
    snap!("job_in_progress", screen);
}

#[test]
fn job_completed_shows_outputs() {
    let mut a = submitted();
    let files = (0..2)
        .map(|i| SavedImage {
            index: i,
            path: PathBuf::from(format!("out/3e3e5b8a-1111-4222-8333-444455556666-{i}.jpg")),
            width: 1184,
            height: 880,
            content_type: "image/jpeg".into(),
            nsfw: false,
        })
        .collect();
    a.update(Message::JobFinished {
        id: 1,
        outcome: Box::new(JobFinish::Done {
            request_id: "3e3e5b8a-1111-4222-8333-444455556666".into(),
            seed: 42,
            files,
            urls: vec!["http://127.0.0.2/files/a.jpg".into(), "http://127.0.0.2/files/b.jpg".into()],
            prompt_used: "p".into(),
            inference: Some(1.25),
            unrecorded: vec![],
        }),
    });
    focus(&mut a, '6');
    snap!("job_completed", render(&mut a, 120, 36));
}

#[test]
fn job_failed_maps_fal_errors_onto_fields() {
    let mut a = submitted();
    a.update(Message::JobFinished {
        id: 1,
        outcome: Box::new(JobFinish::Failed {
            message: "fal rejected the input: guidance_scale: Input should be less than or equal to 20".into(),
            field_errors: vec![kontext::model::FieldError {
                field: kontext::model::Field::GuidanceScale,
                message: "Input should be less than or equal to 20 (less_than_equal)".into(),
            }],
            request_id: Some("3e3e5b8a-1111-4222-8333-444455556666".into()),
            ambiguous: false,
        }),
    });
    snap!("job_failed", render(&mut a, 120, 36));
}

#[test]
fn history_with_entries() {
    let mut a = app();
    let rows = (0..5)
        .map(|i| HistoryRow {
            id: format!("{i}a2b3c4d-0000-4000-8000-00000000000{i}"),
            request_id: Some(format!("{i}a2b3c4d")),
            state: if i == 1 { "failed".into() } else { "completed".into() },
            created_at: 1_795_564_800 + i * 600,
            prompt: format!("prompt number {i}: make the sky purple"),
            seed: Some(i as u64),
            outputs: 1,
            cursor: i,
        })
        .collect();
    a.update(Message::History { filter: Default::default(), rows });
    focus(&mut a, '5');
    key(&mut a, KeyCode::Down);
    snap!("history", render(&mut a, 120, 36));
}

#[test]
fn help_overlay_lists_every_binding() {
    let mut a = app();
    focus(&mut a, '4');
    key(&mut a, KeyCode::Char('?'));
    let screen = render(&mut a, 160, 50);
    for needle in [
        "F5",
        "Ctrl-S",
        "Alt-Enter",
        "Ctrl-Q",
        "cancel the selected job",
        "copy the request id (OSC 52)",
        "filter history by state",
    ] {
        assert!(screen.contains(needle), "help lacks {needle}");
    }
    snap!("help", screen);
}

#[test]
fn compact_layout_shows_the_focused_pane() {
    let mut a = filled();
    assert_eq!(a.focus, Pane::Params);
    snap!("compact", render(&mut a, 60, 20));
}

#[test]
fn tiny_terminal_says_so() {
    let screen = render(&mut app(), 30, 10);
    assert!(screen.contains("terminal too small"));
    snap!("tiny", screen);
}

#[test]
fn every_size_down_to_the_minimum_renders() {
    for w in (40..=200).step_by(7) {
        for h in (12..=60).step_by(5) {
            for pane in ['1', '2', '3', '4', '5', '6'] {
                let mut a = submitted();
                focus(&mut a, pane);
                render(&mut a, w, h);
            }
        }
    }
}

/// Leftovers of a stripped sequence, as a half-sanitised screen would show them.
fn assert_no_leftovers(screen: &str) {
    for leftover in ["]52;", "ZXZpbA", "[2J", "]0;", "owned", "31m", "\u{202e}", "\u{1b}", "\u{9b}"] {
        assert!(!screen.contains(leftover), "{leftover:?} reached the screen:\n{screen}");
    }
}

#[test]
fn hostile_server_text_leaves_nothing_on_the_screen() {
    use kontext::emulator::HOSTILE_TEXT;
    let mut a = filled();
    ctrl(&mut a, 's');
    let hostile_id = format!("3e3e5b8a{HOSTILE_TEXT}");
    a.update(Message::Job { id: 1, event: JobEvent::Submitted { handle: handle(&hostile_id) } });
    a.update(Message::Job { id: 1, event: JobEvent::InProgress });
    let logs = [format!("Step 7/28{HOSTILE_TEXT}"), format!("two\nlines{HOSTILE_TEXT}")]
        .into_iter()
        .map(|message| LogEntry { message, timestamp: None, level: None, source: None })
        .collect();
    a.update(Message::Job { id: 1, event: JobEvent::Logs(logs) });
    a.update(Message::Job { id: 1, event: JobEvent::Note(format!("retrying{HOSTILE_TEXT}")) });
    focus(&mut a, '4');
    let screen = render(&mut a, 120, 36);
    assert_no_leftovers(&screen);
    assert!(screen.contains("Step 7/28 desrever") && screen.contains("two lines desrever"), "{screen}");
    assert!(screen.contains("log of #1 3e3e5b8a desrever"), "the request id, cleaned:\n{screen}");
    assert_eq!(a.jobs[0].request_id.as_deref(), Some("3e3e5b8a desrever"), "cleaned where it enters");

    a.update(Message::JobFinished {
        id: 1,
        outcome: Box::new(JobFinish::Failed {
            message: format!("fal says: boom{HOSTILE_TEXT}"),
            field_errors: vec![kontext::model::FieldError {
                field: kontext::model::Field::GuidanceScale,
                message: format!("too high{HOSTILE_TEXT}"),
            }],
            request_id: Some(hostile_id),
            ambiguous: false,
        }),
    });
    let screen = render(&mut a, 120, 36);
    assert_no_leftovers(&screen);
    assert!(screen.contains("too high desrever"), "{screen}");
}
