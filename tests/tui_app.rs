//! State and update without a terminal: key presses and messages in, state and effects out.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyModifiers};
use kontext::model::{Draft, Field};
use kontext::runner::SavedImage;
use kontext::tui::app::Pane;
use kontext::tui::job_store::JobPhase;
use kontext::tui::message::{DetailPurpose, Effect, HistoryDetailView, JobFinish, Message};

mod support;
use support::studio::{app, focus, key, paste, press, ready, typ};

fn has_error(a: &kontext::tui::app::App, field: Field) -> bool {
    a.errors().iter().any(|e| e.field == field)
}

#[test]
fn starts_in_the_prompt_and_tab_cycles_the_panes_in_order() {
    let mut a = app();
    assert_eq!(a.focus(), Pane::Prompt);
    let mut seen = vec![a.focus()];
    for _ in 0..6 {
        key(&mut a, KeyCode::Tab);
        seen.push(a.focus());
    }
    assert_eq!(
        seen,
        [Pane::Prompt, Pane::Images, Pane::Params, Pane::Jobs, Pane::History, Pane::Results, Pane::Prompt]
    );
    key(&mut a, KeyCode::BackTab);
    assert_eq!(a.focus(), Pane::Results);
    focus(&mut a, '3');
    assert_eq!(a.focus(), Pane::Params);
}

#[test]
fn q_is_text_in_the_prompt_but_quits_elsewhere_and_ctrl_q_always_quits() {
    let mut a = app();
    assert!(key(&mut a, KeyCode::Char('q')).is_empty());
    assert_eq!(a.prompt_text(), "q");
    assert!(!a.wants_quit());
    focus(&mut a, '4');
    assert!(matches!(key(&mut a, KeyCode::Char('q')).as_slice(), [Effect::Quit]));
    let mut b = app();
    assert!(matches!(press(&mut b, KeyCode::Char('q'), KeyModifiers::CONTROL).as_slice(), [Effect::Quit]));
}

#[test]
fn submit_sends_validated_input_from_any_key_the_issue_names() {
    for (code, mods) in [
        (KeyCode::F(5), KeyModifiers::NONE),
        (KeyCode::Char('s'), KeyModifiers::CONTROL),
        (KeyCode::Enter, KeyModifiers::ALT),
    ] {
        let mut a = app();
        ready(&mut a);
        let effects = press(&mut a, code, mods);
        let [Effect::Submit { id, input, .. }] = effects.as_slice() else { panic!("{code:?}: {effects:?}") };
        assert_eq!(*id, 1);
        assert_eq!(input.prompt, "make it blue");
        assert_eq!(a.jobs().newest().unwrap().phase, JobPhase::Preparing);
    }
}

#[test]
fn invalid_input_blocks_submit_and_focuses_the_problem() {
    let mut a = app();
    let effects = key(&mut a, KeyCode::F(5));
    assert!(effects.is_empty());
    assert!(has_error(&a, Field::Prompt));
    assert!(has_error(&a, Field::ImageUrls(None)));
    assert_eq!(a.focus(), Pane::Prompt);
    assert!(a.notice().unwrap().is_error(), "an error notice");
}

#[test]
fn pasting_lines_adds_images_up_to_the_limit() {
    let mut a = app();
    focus(&mut a, '2');
    paste(&mut a, "a.png\n'b c.png'\n\nhttps://x/y.png\nd.png\ne.png\n");
    assert_eq!(a.images().items(), ["a.png", "b c.png", "https://x/y.png", "d.png"]);
    assert!(a.notice().unwrap().text.contains("at most 4"));
    key(&mut a, KeyCode::Char('a'));
    assert!(!a.images().is_adding(), "no add line when full");
    key(&mut a, KeyCode::Char('d'));
    assert_eq!(a.images().items().len(), 3);
    key(&mut a, KeyCode::Up);
    press(&mut a, KeyCode::Up, KeyModifiers::SHIFT);
    assert_eq!(a.images().items(), ["b c.png", "a.png", "https://x/y.png"]);
    assert_eq!(a.images().selected(), 0, "the moved image stays selected");
}

#[test]
fn parameters_step_type_and_flag_errors_inline() {
    let mut a = app();
    focus(&mut a, '3');
    key(&mut a, KeyCode::Down);
    key(&mut a, KeyCode::Down);
    key(&mut a, KeyCode::Right);
    assert_eq!(a.params().value("guidance_scale"), "4");
    press(&mut a, KeyCode::Right, KeyModifiers::SHIFT);
    assert_eq!(a.params().value("guidance_scale"), "6.5");
    typ(&mut a, "30");
    assert!(has_error(&a, Field::GuidanceScale), "{:?}", a.errors());
    key(&mut a, KeyCode::Backspace);
    assert!(!has_error(&a, Field::GuidanceScale), "3 is fine: {:?}", a.errors());
}

#[test]
fn jobs_follow_events_and_can_be_cancelled() {
    let mut a = app();
    ready(&mut a);
    key(&mut a, KeyCode::F(5));
    focus(&mut a, '4');
    let effects = key(&mut a, KeyCode::Char('c'));
    assert!(matches!(effects.as_slice(), [Effect::Cancel(1)]));
    assert_eq!(a.jobs().newest().unwrap().phase, JobPhase::CancelRequested);
    a.update(Message::JobFinished { id: 1, outcome: Box::new(JobFinish::Cancelled { request_id: Some("r".into()) }) });
    assert_eq!(a.jobs().newest().unwrap().phase, JobPhase::Cancelled);
    assert!(key(&mut a, KeyCode::Char('c')).is_empty(), "nothing to cancel any more");
}

#[test]
fn a_job_the_history_could_not_record_is_reported_plainly_not_as_done() {
    let mut a = app();
    ready(&mut a);
    key(&mut a, KeyCode::F(5));
    a.update(Message::JobFinished {
        id: 1,
        outcome: Box::new(JobFinish::Done {
            request_id: "req-full-disk".into(),
            seed: 9,
            files: vec![],
            urls: vec![],
            prompt_used: "p".into(),
            inference: None,
            billable_units: None,
            unrecorded: vec![kontext::runner::Unrecorded {
                what: "that the request completed".into(),
                error: "database or disk is full".into(),
            }],
        }),
    });
    let notice = a.notice().unwrap();
    let text = &notice.text;
    assert!(notice.is_error(), "an error notice: {text}");
    for needle in ["could not record", "req-full-disk", "kontext resume", "disk is full"] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    assert!(
        a.jobs().newest().unwrap().logs.iter().any(|l| l.contains("could not record")),
        "kept in the job's log too"
    );
}

#[test]
fn results_copy_paths_and_ids_with_osc52_effects() {
    let mut a = app();
    ready(&mut a);
    key(&mut a, KeyCode::F(5));
    let file = SavedImage {
        index: 0,
        path: PathBuf::from("/out/r-0.png"),
        width: 2,
        height: 2,
        content_type: "image/png".into(),
        nsfw: false,
    };
    a.update(Message::JobFinished {
        id: 1,
        outcome: Box::new(JobFinish::Done {
            request_id: "req-1".into(),
            seed: 9,
            files: vec![file],
            urls: vec!["https://cdn/x.png".into()],
            prompt_used: "p".into(),
            inference: Some(1.25),
            unrecorded: vec![],
            billable_units: None,
        }),
    });
    assert_eq!(a.last_seed(), Some(9));
    focus(&mut a, '6');
    assert!(matches!(key(&mut a, KeyCode::Char('y')).as_slice(), [Effect::Copy(t)] if t == "/out/r-0.png"));
    assert!(matches!(key(&mut a, KeyCode::Char('Y')).as_slice(), [Effect::Copy(t)] if t == "req-1"));
    key(&mut a, KeyCode::Enter);
    assert!(a.results().is_fullscreen());
    key(&mut a, KeyCode::Esc);
    assert!(!a.results().is_fullscreen());
}

#[test]
fn a_history_entry_loads_into_the_editor_and_reruns() {
    let mut a = app();
    let detail = HistoryDetailView {
        id: "abc".into(),
        request_id: Some("req".into()),
        draft: Draft {
            prompt: "old prompt".into(),
            images: vec!["https://a/b.png".into()],
            fields: [("seed", "5"), ("output_format", "png")].map(|(n, v)| (n.to_string(), v.to_string())).into(),
        },
        outputs: vec![],
        endpoint: "fal-ai/flux-pro/kontext/multi".into(),
        estimated_usd: None,
        billed_usd: None,
        inputs: vec![],
        purpose: DetailPurpose::Load,
    };
    a.update(Message::HistoryDetail(Box::new(detail.clone())));
    assert_eq!(a.prompt_text(), "old prompt");
    assert_eq!(a.images().items(), ["https://a/b.png"]);
    assert_eq!(a.params().value("seed"), "5");
    let effects =
        a.update(Message::HistoryDetail(Box::new(HistoryDetailView { purpose: DetailPurpose::Rerun, ..detail })));
    let [Effect::Submit { input, .. }] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!((input.seed(), input.output_format().as_str()), (Some(5), "png"));
}

#[test]
fn a_history_entry_of_another_endpoint_loads_that_endpoint_and_reruns_there() {
    let mut a = app();
    let detail = HistoryDetailView {
        id: "abc".into(),
        request_id: Some("req".into()),
        draft: Draft {
            prompt: "a red fox".into(),
            fields: [("num_images".to_string(), "2".to_string())].into(),
            ..Draft::default()
        },
        outputs: vec![],
        endpoint: "fal-ai/flux-pro/kontext/max/text-to-image".into(),
        estimated_usd: Some(0.16),
        billed_usd: Some(0.16),
        inputs: vec![],
        purpose: DetailPurpose::Rerun,
    };
    let effects = a.update(Message::HistoryDetail(Box::new(detail)));
    assert_eq!(a.params().value("endpoint"), "[max] text to image");
    assert_eq!(a.images().limit(), 0, "the image list follows the endpoint");
    let [Effect::Submit { input, estimate, .. }] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!(input.endpoint_id(), "fal-ai/flux-pro/kontext/max/text-to-image");
    assert_eq!((input.num_images(), estimate.usd), (2, Some(0.16)), "the same request, the same estimate");
}

#[test]
fn prompt_recall_walks_earlier_prompts_and_restores_the_draft() {
    let mut a = app();
    a.update(Message::Prompts(vec!["newest".into(), "older".into()]));
    typ(&mut a, "draft");
    press(&mut a, KeyCode::Up, KeyModifiers::CONTROL);
    assert_eq!(a.prompt_text(), "newest");
    press(&mut a, KeyCode::Up, KeyModifiers::CONTROL);
    assert_eq!(a.prompt_text(), "older");
    press(&mut a, KeyCode::Down, KeyModifiers::CONTROL);
    press(&mut a, KeyCode::Down, KeyModifiers::CONTROL);
    assert_eq!(a.prompt_text(), "draft");
    press(&mut a, KeyCode::Char('r'), KeyModifiers::CONTROL);
    typ(&mut a, "old");
    key(&mut a, KeyCode::Enter);
    assert_eq!(a.prompt_text(), "older");
}

#[test]
fn ctrl_e_asks_for_the_editor_and_its_text_comes_back() {
    let mut a = app();
    typ(&mut a, "abc");
    let effects = press(&mut a, KeyCode::Char('e'), KeyModifiers::CONTROL);
    assert!(matches!(effects.as_slice(), [Effect::OpenEditor(t)] if t == "abc"));
    a.update(Message::EditorClosed(Ok("from the editor\nline two\n".into())));
    assert_eq!(a.prompt_text(), "from the editor\nline two");
}

#[test]
fn text_from_history_is_stripped_of_escape_sequences_before_it_is_shown() {
    let mut a = app();
    let detail = HistoryDetailView {
        id: "x".into(),
        request_id: None,
        draft: Draft {
            prompt: "evil \u{1b}]52;c;Zm9v\u{7}prompt \u{1b}[2J".into(),
            images: vec!["https://a/\u{1b}[31mb.png".into()],
            ..Draft::default()
        },
        outputs: vec![],
        endpoint: "fal-ai/flux-pro/kontext/multi".into(),
        estimated_usd: None,
        billed_usd: None,
        inputs: vec![],
        purpose: DetailPurpose::Load,
    };
    a.update(Message::HistoryDetail(Box::new(detail)));
    assert_eq!(a.prompt_text(), "evil prompt ");
    assert!(!a.images().items()[0].contains('\u{1b}'));
    a.update(Message::Prompts(vec!["\u{1b}[5mblink".into()]));
    press(&mut a, KeyCode::Up, KeyModifiers::CONTROL);
    assert_eq!(a.prompt_text(), "blink");
}

#[test]
fn local_images_show_size_and_whether_they_are_inlined_or_uploaded() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("s.png");
    image::RgbImage::new(4, 4).save(&small).unwrap();
    let mut a = app();
    focus(&mut a, '2');
    let effects = paste(&mut a, &format!("{}\n{}\n", small.display(), dir.path().join("gone.png").display()));
    // The files are looked at off the UI task: the update only asks for it.
    let [Effect::CheckImages { seq, items }] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!(a.images().info()[0].tag, "checking…");
    assert!(key(&mut a, KeyCode::F(5)).is_empty(), "no submit before the files are checked");
    let info = kontext::tui::panes::images::describe_images(items, 256 * 1024);
    a.update(Message::ImagesChecked { seq: *seq, info });
    assert!(a.images().info()[0].tag.contains("inline"), "{:?}", a.images().info());
    assert_eq!(a.images().info()[1].tag, "missing");
    assert!(a.errors().iter().any(|e| e.field == Field::ImageUrls(Some(1)) && e.message.contains("no such file")));
}

#[test]
fn the_studio_check_flags_damaged_and_oversized_local_images() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.png");
    image::RgbImage::new(40, 30).save(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.png");
    std::fs::write(&cut, &bytes[..bytes.len() - 20]).unwrap();
    let huge = dir.path().join("huge.png");
    std::fs::write(&huge, &bytes).unwrap();
    std::fs::OpenOptions::new().write(true).open(&huge).unwrap().set_len(3 << 30).unwrap();
    let items = [good, cut, huge].map(|p| p.display().to_string());
    let info = kontext::tui::panes::images::describe_images(&items, 256 * 1024);
    assert_eq!(info[0].error, None);
    assert!(info[1].error.as_deref().is_some_and(|e| e.contains("damaged or cut short")), "{:?}", info[1]);
    assert!(info[2].error.as_deref().is_some_and(|e| e.contains("at most 64 MiB")), "{:?}", info[2]);
}

#[test]
fn scrolling_past_the_loaded_history_fetches_the_next_page_once() {
    use kontext::tui::message::HistoryRow;
    let row = |i: i64| HistoryRow {
        id: format!("id{i}"),
        request_id: None,
        state: kontext::history::JobState::Completed,
        created_at: i,
        prompt: format!("p{i}"),
        seed: None,
        outputs: 1,
        endpoint: "fal-ai/flux-pro/kontext/multi".into(),
        estimated_usd: None,
        billed_usd: None,
        cursor: 1000 - i,
        starred: false,
        sweep_id: None,
    };
    let mut a = app();
    a.update(Message::History { filter: Default::default(), rows: (0..30).map(row).collect() });
    focus(&mut a, '5');
    let mut pages = Vec::new();
    for _ in 0..15 {
        for e in key(&mut a, KeyCode::Down) {
            if let Effect::LoadHistory(f) = e {
                pages.push(f);
            }
        }
    }
    assert_eq!(pages.len(), 1, "one request for the next page");
    assert_eq!(pages[0].before, Some(1000 - 29), "older than the last loaded row");
    let filter = kontext::tui::message::HistoryFilter { before: None, ..pages[0].clone() };
    a.update(Message::HistoryMore { filter: filter.clone(), rows: (30..40).map(row).collect() });
    assert_eq!(a.history().rows().len(), 40);
    a.update(Message::HistoryMore { filter, rows: Vec::new() });
    assert!(a.history().is_exhausted());
    for _ in 0..30 {
        assert!(!key(&mut a, KeyCode::Down).iter().any(|e| matches!(e, Effect::LoadHistory(_))));
    }
}

#[test]
fn quitting_waits_for_a_submit_in_flight_unless_asked_twice() {
    let mut a = app();
    ready(&mut a);
    key(&mut a, KeyCode::F(5));
    let effects = press(&mut a, KeyCode::Char('q'), KeyModifiers::CONTROL);
    assert!(effects.is_empty() && !a.wants_quit(), "not while fal may be receiving the submit");
    assert!(a.notice().unwrap().text.contains("waiting for 1 submit"));
    let handle = kontext::fal::RequestHandle {
        endpoint: "e".into(),
        request_id: "r".into(),
        response_url: "u".into(),
        status_url: "s".into(),
        cancel_url: "c".into(),
    };
    let effects = a.update(Message::Job { id: 1, event: kontext::runner::JobEvent::Submitted { handle } });
    assert!(effects.iter().any(|e| matches!(e, Effect::Quit)), "quits once fal has it: {effects:?}");
    assert!(
        effects.iter().any(|e| matches!(e, Effect::LoadHistory(_))),
        "and the History pane lists the accepted request: {effects:?}"
    );

    let mut b = app();
    ready(&mut b);
    key(&mut b, KeyCode::F(5));
    press(&mut b, KeyCode::Char('q'), KeyModifiers::CONTROL);
    assert!(matches!(press(&mut b, KeyCode::Char('q'), KeyModifiers::CONTROL).as_slice(), [Effect::Quit]));
}

#[test]
fn rerunning_a_job_sends_that_jobs_own_request() {
    let mut a = app();
    typ(&mut a, "first");
    focus(&mut a, '2');
    paste(
        &mut a,
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\n",
    );
    focus(&mut a, '3');
    for _ in 0..4 {
        key(&mut a, KeyCode::Down); // endpoint, seed, guidance_scale, sync_mode, num_images
    }
    key(&mut a, KeyCode::Right); // num_images 2
    key(&mut a, KeyCode::F(5));
    // Change everything, then re-run job #1 from the Jobs pane.
    key(&mut a, KeyCode::Right); // num_images 3
    press(&mut a, KeyCode::Char('1'), KeyModifiers::ALT);
    typ(&mut a, " and more");
    focus(&mut a, '4');
    let effects = key(&mut a, KeyCode::Char('r'));
    let [Effect::Submit { input, .. }] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!(input.prompt, "first");
    assert_eq!(input.num_images(), 2);
    assert!(
        matches!(&input.images[0], kontext::model::ImageSource::DataUri(d) if d.ends_with("ggg==")),
        "{:?}",
        input.images
    );
}

#[test]
fn a_slow_answer_to_an_older_history_search_is_ignored() {
    use kontext::tui::message::HistoryRow;
    let row = |p: &str| HistoryRow {
        id: p.into(),
        request_id: None,
        state: kontext::history::JobState::Completed,
        created_at: 0,
        prompt: p.into(),
        seed: None,
        outputs: 0,
        endpoint: "fal-ai/flux-pro/kontext/multi".into(),
        estimated_usd: None,
        billed_usd: None,
        cursor: 1,
        starred: false,
        sweep_id: None,
    };
    let mut a = app();
    focus(&mut a, '5');
    key(&mut a, KeyCode::Char('/'));
    let first = match key(&mut a, KeyCode::Char('c')).pop() {
        Some(Effect::LoadHistory(f)) => f,
        other => panic!("{other:?}"),
    };
    let second = match key(&mut a, KeyCode::Char('a')).pop() {
        Some(Effect::LoadHistory(f)) => f,
        other => panic!("{other:?}"),
    };
    a.update(Message::History { filter: second, rows: vec![row("cat")] });
    a.update(Message::History { filter: first, rows: vec![row("cow"), row("cat")] });
    let shown: Vec<_> = a.history().rows().iter().map(|r| r.prompt.as_str()).collect();
    assert_eq!(shown, ["cat"], "the answer for \"c\" arrived last but is stale");
}

#[tokio::test]
async fn a_slow_result_shows_its_retries_in_the_jobs_log() {
    use kontext::emulator::{Emulator, EmulatorConfig};
    use kontext::fal::{BodyPace, FalClient, FalConfig, FalKey, FollowMode};
    // The runner's real events, from a result that trickles once, go into the studio.
    let mut cfg = EmulatorConfig::fast();
    cfg.faults = "trickle@result:#1".parse().unwrap();
    let emu = Emulator::start(cfg, 0).await.unwrap();
    let mut fal = FalConfig::single_host(emu.base_url().parse().unwrap(), FalKey::new("k"));
    fal.body_pace = BodyPace { grace: std::time::Duration::from_millis(300), min_rate: 4096 };
    let client = FalClient::new(fal).unwrap();
    let out = tempfile::tempdir().unwrap();
    let draft =
        Draft { prompt: "make it blue".into(), images: vec!["https://a.example/x.png".into()], ..Draft::default() };
    let job = kontext::runner::JobRequest {
        naming: kontext::runner::OutputNaming::RequestId,
        endpoint: Default::default(),
        input: draft.validate(4).unwrap(),
        out_dir: out.path().to_path_buf(),
        data_uri_threshold: 0,
        follow: FollowMode::Poll,
        journal: None,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    kontext::runner::run_job(&client, job, tx, tokio_util::sync::CancellationToken::new()).await.unwrap();

    let mut a = app();
    ready(&mut a);
    key(&mut a, KeyCode::F(5));
    while let Ok(event) = rx.try_recv() {
        a.update(Message::Job { id: 1, event });
    }
    let logs = &a.jobs().newest().unwrap().logs;
    assert!(
        logs.iter().any(|l| l.starts_with("[kontext] fetching the result is slow; attempt 2 of 10 in ")),
        "{logs:?}"
    );
}

/// Opens the sweep dialog with F6 and types seeds 1..3 and guidance 2,5.
fn sweep_dialog_3x2(a: &mut kontext::tui::app::App) {
    key(a, KeyCode::F(6));
    typ(a, "1..3");
    key(a, KeyCode::Down);
    typ(a, "2,5");
}

#[test]
fn f6_plans_a_sweep_of_the_draft_and_enter_sends_it_as_one_group() {
    let mut a = app();
    ready(&mut a);
    focus(&mut a, '1');
    sweep_dialog_3x2(&mut a);
    assert!(a.is_editing_text(), "letters go into the dialog");
    assert_eq!(a.sweep_dialog().unwrap().count(), 6);
    let effects = key(&mut a, KeyCode::Enter);
    assert!(a.sweep_dialog().is_none());
    let launch = effects
        .iter()
        .find_map(|e| match e {
            Effect::SubmitSweep(l) => Some(l),
            _ => None,
        })
        .expect("the sweep is sent");
    assert_eq!((launch.points.len(), launch.concurrency), (6, 2));
    assert!(!effects.iter().any(|e| matches!(e, Effect::Submit { .. })), "one effect carries the sweep");
    let sweep = a.jobs().sweep(&launch.id).expect("the store has the sweep");
    assert_eq!(sweep.shape(), "3×2");
    assert_eq!(sweep.tally(a.jobs()).queued, 6);
    assert!(a.jobs().iter().all(|j| j.phase == JobPhase::Waiting && j.sweep.as_deref() == Some(&launch.id)));
    assert_eq!(a.jobs().submits_in_flight(), 0, "a waiting point is not a submit in flight");
    assert!(a.notice().unwrap().text.contains("6 request(s), 2 at a time"), "{:?}", a.notice());
    // A point that gets its slot is being sent: quitting now waits for it, and holds the rest.
    let first = launch.points[0].0;
    a.update(Message::JobStarted(first));
    assert_eq!(a.jobs().get(first).unwrap().phase, JobPhase::Preparing);
    let quit = press(&mut a, KeyCode::Char('q'), KeyModifiers::CONTROL);
    assert!(quit.iter().any(|e| matches!(e, Effect::HoldSweeps)), "{quit:?}");
    assert!(!a.wants_quit());
    let text = &a.notice().unwrap().text;
    assert!(text.contains("5 sweep request(s) will not be sent") && text.contains("--continue"), "{text}");
    assert_eq!(a.jobs().unsent_points(), vec![(launch.id.clone(), 5)]);
}

#[test]
fn cancelling_a_sweep_cancels_its_points_and_says_how_to_send_the_rest() {
    let mut a = app();
    ready(&mut a);
    sweep_dialog_3x2(&mut a);
    key(&mut a, KeyCode::Enter);
    let id = a.jobs().sweeps()[0].id.clone();
    let ids: Vec<u64> = a.jobs().sweeps()[0].points.iter().map(|(_, j)| *j).collect();
    a.update(Message::JobStarted(ids[0]));
    focus(&mut a, '4');
    let effects = key(&mut a, KeyCode::Char('c'));
    let cancels = effects.iter().filter(|e| matches!(e, Effect::Cancel(_))).count();
    assert_eq!(cancels, 6);
    let text = &a.notice().unwrap().text;
    assert!(text.contains("5 never sent") && text.contains(&format!("kontext sweep --continue {id}")), "{text}");
    for j in &ids {
        a.update(Message::JobFinished { id: *j, outcome: Box::new(JobFinish::Cancelled { request_id: None }) });
    }
    let effects = a.update(Message::SweepEnded { id: id.clone(), sheets: Err("no image".into()) });
    assert!(effects.iter().any(|e| matches!(e, Effect::LoadSpend)), "today's spend is read again");
    let text = &a.notice().unwrap().text;
    assert!(text.contains("0/6 done") && text.contains("6 cancelled"), "{text}");
}

#[test]
fn an_over_budget_sweep_is_refused_in_the_dialog_and_nothing_is_sent() {
    let mut ctx = support::studio::context(kontext::tui::action::Keymap::default());
    ctx.budget = kontext::model::cost::BudgetCaps { max_request_usd: None, daily_usd: Some(0.10) };
    let mut a = kontext::tui::app::App::new(ctx, &Draft::default());
    ready(&mut a);
    sweep_dialog_3x2(&mut a);
    let blocked = a.sweep_dialog().unwrap().blocked().expect("over the daily cap");
    assert!(blocked.contains("the whole sweep") && blocked.contains("daily_usd"), "{blocked}");
    let effects = key(&mut a, KeyCode::Enter);
    assert!(effects.is_empty(), "{effects:?}");
    assert!(a.sweep_dialog().is_some(), "it stays open to be fixed");
    assert!(a.jobs().is_empty());
    key(&mut a, KeyCode::Esc);
    assert!(a.sweep_dialog().is_none() && a.jobs().is_empty());
}

#[test]
fn a_finished_sweep_keeps_its_contact_sheet_and_says_where_it_is() {
    let mut a = app();
    ready(&mut a);
    sweep_dialog_3x2(&mut a);
    key(&mut a, KeyCode::Enter);
    let id = a.jobs().sweeps()[0].id.clone();
    let sheet = PathBuf::from(format!("/out/2026-12-02_sweep_{id}.png"));
    a.update(Message::SweepEnded { id: id.clone(), sheets: Ok(vec![sheet.clone()]) });
    assert_eq!(a.jobs().sweep(&id).unwrap().sheets, vec![sheet]);
    let text = &a.notice().unwrap().text;
    assert!(text.contains(&format!("contact sheet /out/2026-12-02_sweep_{id}.png")), "{text}");
}
