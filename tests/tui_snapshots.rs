//! Whole-screen snapshots (ratatui TestBackend + insta) of each pane in its main states. Colours
//! are off (the monochrome theme) so the text shows structure; times and spinners are filtered.

use std::path::PathBuf;

use crossterm::event::KeyCode;
use kontext::fal::RequestHandle;
use kontext::history::JobState;
use kontext::model::LogEntry;
use kontext::runner::{JobEvent, SavedImage};
use kontext::tui::app::{App, Pane};
use kontext::tui::message::{Effect, HistoryRow, JobFinish, Message};

mod support;
use support::studio::{app, ctrl, focus, key, paste, render, typ};

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
    paste(
        &mut a,
        "https://v3.fal.media/files/penguin/XoW0qavfF-ahg-jX4BMyL_image.webp\nhttps://v3.fal.media/files/tiger/bml6YA7DWJXOigadvxk75_image.webp\n",
    );
    focus(&mut a, '3');
    key(&mut a, KeyCode::Down); // seed (the endpoint row is first)
    typ(&mut a, "42");
    key(&mut a, KeyCode::Down);
    key(&mut a, KeyCode::Right); // guidance_scale 4
    for _ in 0..3 {
        key(&mut a, KeyCode::Down); // sync_mode, num_images, output_format
    }
    key(&mut a, KeyCode::Right); // png
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

/// A job done with two images of `size`, named after the request, billed `billable_units`.
fn two_images(request_id: &str, size: (u32, u32), billable_units: Option<f64>) -> JobFinish {
    let files = (0..2)
        .map(|i| SavedImage {
            index: i,
            path: PathBuf::from(format!("out/{request_id}-{i}.jpg")),
            width: size.0,
            height: size.1,
            content_type: "image/jpeg".into(),
            nsfw: false,
        })
        .collect();
    JobFinish::Done {
        request_id: request_id.into(),
        seed: 7,
        files,
        urls: vec![],
        prompt_used: "p".into(),
        inference: None,
        unrecorded: vec![],
        billable_units,
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
    for _ in 0..3 {
        key(&mut a, KeyCode::Up); // num_images, sync_mode, guidance_scale
    }
    typ(&mut a, "25");
    key(&mut a, KeyCode::Down);
    key(&mut a, KeyCode::Down);
    typ(&mut a, "9");
    ctrl(&mut a, 's');
    assert!(a.jobs().is_empty(), "nothing submitted");
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
    let mut done = two_images("3e3e5b8a-1111-4222-8333-444455556666", (1184, 880), None);
    if let JobFinish::Done { seed, urls, inference, .. } = &mut done {
        *seed = 42;
        *urls = vec!["http://127.0.0.2/files/a.jpg".into(), "http://127.0.0.2/files/b.jpg".into()];
        *inference = Some(1.25);
    }
    a.update(Message::JobFinished { id: 1, outcome: Box::new(done) });
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
fn an_eight_by_eight_sweep_grid_at_200x50() {
    let mut a = app();
    support::sweep_fixture::finished_sweep(&mut a, 8, 8, 1, std::path::Path::new("out"), None);
    for _ in 0..3 {
        key(&mut a, KeyCode::Right);
        key(&mut a, KeyCode::Down);
    }
    let effects = key(&mut a, KeyCode::Char('s'));
    let Some(Effect::Star { job, history_id, starred: true }) = effects.into_iter().next() else {
        panic!("s asks to star the cell")
    };
    a.update(Message::Starred { job, history_id, starred: true });
    key(&mut a, KeyCode::Left);
    typ(&mut a, "a");
    let screen = render(&mut a, 200, 50);
    assert!(screen.contains("guidance_scale →") && screen.contains("seed ↓"), "{screen}");
    assert!(screen.contains('★') && screen.contains("running") && screen.contains("failed"), "{screen}");
    snap!("sweep_grid_8x8", screen);
}

#[test]
fn two_outputs_compared_side_by_side() {
    let mut a = app();
    support::sweep_fixture::finished_sweep(&mut a, 2, 3, 1, std::path::Path::new("out"), None);
    key(&mut a, KeyCode::Right);
    typ(&mut a, "a");
    key(&mut a, KeyCode::Down);
    typ(&mut a, "bc");
    assert_eq!(a.results().is_comparing(), Some(true));
    snap!("compare_split", render(&mut a, 120, 36));
}

#[test]
fn history_with_entries() {
    let mut a = app();
    let rows = (0..5)
        .map(|i| HistoryRow {
            id: format!("{i}a2b3c4d-0000-4000-8000-00000000000{i}"),
            request_id: Some(format!("{i}a2b3c4d")),
            state: if i == 1 { JobState::Failed } else { JobState::Completed },
            created_at: 1_795_564_800 + i * 600,
            prompt: format!("prompt number {i}: make the sky purple"),
            seed: Some(i as u64),
            outputs: 1,
            endpoint: "fal-ai/flux-pro/kontext/multi".into(),
            estimated_usd: None,
            billed_usd: None,
            cursor: i,
            starred: false,
            sweep_id: None,
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
    // Tall enough for every binding without scrolling.
    let screen = render(&mut a, 160, 64);
    for needle in [
        "F5",
        "F6",
        "compare A and B",
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
    assert_eq!(a.focus(), Pane::Params);
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
    assert_eq!(a.jobs().newest().unwrap().request_id.as_deref(), Some("3e3e5b8a desrever"), "cleaned where it enters");

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

/// The bottom line of each pane's screen, for one target and image mode at one width.
fn status_lines(target: &str, graphics: &str, w: u16) -> String {
    let mut out = String::new();
    let fresh = || {
        let mut ctx = support::studio::context(kontext::tui::action::Keymap::default());
        ctx.target = target.into();
        ctx.graphics = graphics.into();
        App::new(ctx, &kontext::model::Draft::default())
    };
    let mut states: Vec<(&str, App)> = Vec::new();
    for (n, name) in
        [('1', "prompt"), ('2', "images"), ('3', "params"), ('4', "jobs"), ('5', "history"), ('6', "results")]
    {
        let mut a = fresh();
        focus(&mut a, n);
        states.push((name, a));
    }
    let mut adding = fresh();
    focus(&mut adding, '2');
    key(&mut adding, KeyCode::Char('a'));
    states.push(("images adding", adding));
    let mut failed = fresh();
    ctrl(&mut failed, 's');
    states.push(("a long notice", failed));
    for (name, mut a) in states {
        let screen = render(&mut a, w, 24);
        let last = screen.lines().last().unwrap_or_default().to_string();
        assert!(last.contains(target), "{w} columns, {name}: the target is named: {last}");
        out.push_str(&format!("{name:>14}: {last}\n"));
    }
    out
}

#[test]
fn the_status_bar_always_says_where_requests_go_and_the_image_mode() {
    for w in [60, 80, 120] {
        let emulator = status_lines("emulator (no key)", "halfblocks", w);
        let mode = if w >= 100 { "images: " } else { "" };
        assert!(emulator.lines().all(|l| l.contains(&format!("emulator (no key) · {mode}halfblocks"))), "{emulator}");
        let fal = status_lines("fal.ai (key from FAL_KEY)", "sixel 10x20 (tmux passthrough)", w);
        assert!(fal.lines().all(|l| l.contains(&format!("fal.ai (key from FAL_KEY) · {mode}sixel"))), "{fal}");
        assert!(emulator.contains("F1 help"), "help is named in a text field at {w} columns:\n{emulator}");
        snap!(format!("status_bar_{w}"), format!("{emulator}\n{fal}"));
    }
}

/// [max] with two images asked for, picked from the endpoint list; a finished job's bill and
/// today's spend are shown.
#[test]
fn another_endpoint_with_its_cost() {
    let mut a = app();
    typ(&mut a, "Make the sky violet.");
    focus(&mut a, '2');
    paste(&mut a, "https://v3.fal.media/files/penguin/XoW0qavfF-ahg-jX4BMyL_image.webp\n");
    focus(&mut a, '3');
    key(&mut a, KeyCode::Enter);
    typ(&mut a, "max");
    key(&mut a, KeyCode::Down); // [max] multi, then [max]
    snap!("endpoint_list", render(&mut a, 120, 36));
    key(&mut a, KeyCode::Up);
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.params().schema().endpoint_id, "fal-ai/flux-pro/kontext/max");
    for _ in 0..4 {
        key(&mut a, KeyCode::Down);
    }
    key(&mut a, KeyCode::Right); // num_images 2
    a.update(Message::SpentToday(0.32));
    ctrl(&mut a, 's');
    a.update(Message::Job {
        id: 1,
        event: JobEvent::Submitted { handle: handle("5f5f5b8a-1111-4222-8333-444455556666") },
    });
    let done = two_images("5f5f5b8a-1111-4222-8333-444455556666", (1024, 1024), Some(2.0));
    a.update(Message::JobFinished { id: 1, outcome: Box::new(done) });
    focus(&mut a, '1');
    let screen = render(&mut a, 120, 36);
    for needle in [
        "endpoint           [max]",
        "[max] · $0.160 billed",
        "cost $0.1600 (2 images × $0.08",
        "today $0.320",
        "F5 submit ~$0.160 (bundled)",
    ] {
        assert!(screen.contains(needle), "{needle}:\n{screen}");
    }
    snap!("endpoint_max_with_cost", screen);
}

#[test]
fn a_sweep_running_is_one_group_in_jobs() {
    let mut a = app();
    typ(&mut a, "make it blue");
    focus(&mut a, '2');
    paste(&mut a, "https://a.example/x.png\n");
    key(&mut a, KeyCode::F(6));
    typ(&mut a, "1..3");
    key(&mut a, KeyCode::Down);
    typ(&mut a, "2,5");
    snap!("sweep_dialog", render(&mut a, 120, 40));
    key(&mut a, KeyCode::Enter);
    let id = a.jobs().sweeps()[0].id.clone();
    let jobs: Vec<u64> = a.jobs().sweeps()[0].points.iter().map(|(_, j)| *j).collect();
    for (n, j) in jobs.iter().take(3).enumerate() {
        a.update(Message::JobStarted(*j));
        a.update(Message::Job { id: *j, event: JobEvent::Submitted { handle: handle(&format!("req{n}")) } });
    }
    a.update(Message::Job { id: jobs[0], event: JobEvent::InProgress });
    a.update(Message::JobFinished { id: jobs[1], outcome: Box::new(two_images("req1", (64, 64), Some(1.0))) });
    focus(&mut a, '4');
    key(&mut a, KeyCode::Right);
    // The id is random: its short form (the Results title) first, then the whole.
    let screen = render(&mut a, 120, 40).replace(&id, "SWEEPID0001").replace(&id[..8], "SWEEPID0");
    assert!(screen.contains("▾ sweep SWEEPID0001 3×2 · 1/6 done · 1 running · 4 queued"), "{screen}");
    snap!("sweep_running", screen);
}
