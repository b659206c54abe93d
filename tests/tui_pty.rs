//! End to end: the real `kontext` binary in a pseudo-terminal (portable-pty + vt100), on the
//! built-in emulator, typed at as a person would: prompt, an image path, F5, wait for the job,
//! see the outputs and the history entry, Ctrl-Q — and the terminal is restored.

use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{PtySize, native_pty_system};

mod support;
use support::BIN;

struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
    /// Every byte the studio wrote to the terminal.
    raw: Arc<Mutex<Vec<u8>>>,
    writer: Box<dyn Write + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
}

impl Screen {
    fn spawn(dir: &Path, rows: u16, cols: u16) -> Screen {
        Screen::spawn_with(dir, rows, cols, &[])
    }

    fn spawn_with(dir: &Path, rows: u16, cols: u16, env: &[(&str, &str)]) -> Screen {
        Screen::spawn_full(dir, rows, cols, env, &[])
    }

    fn spawn_full(dir: &Path, rows: u16, cols: u16, env: &[(&str, &str)], args: &[&str]) -> Screen {
        let pty = native_pty_system().openpty(PtySize { rows, cols, pixel_width: 0, pixel_height: 0 }).unwrap();
        let mut cmd = support::studio::pty_command(dir);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = pty.slave.spawn_command(cmd).unwrap();
        drop(pty.slave);
        let parser =
            Arc::new(Mutex::new(vt100::Parser::new(NonZeroU16::new(rows).unwrap(), NonZeroU16::new(cols).unwrap(), 0)));
        let mut reader = pty.master.try_clone_reader().unwrap();
        let sink = parser.clone();
        let raw = Arc::new(Mutex::new(Vec::new()));
        let raw_sink = raw.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().process(&buf[..n]);
                raw_sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let writer = pty.master.take_writer().unwrap();
        // Keep the master alive for the child's lifetime.
        std::mem::forget(pty.master);
        Screen { parser, raw, writer, child }
    }

    /// Spawns `kontext` with extra arguments (e.g. `--graphics sixel`).
    fn spawn_args(dir: &Path, rows: u16, cols: u16, args: &[&str]) -> Screen {
        Screen::spawn_full(dir, rows, cols, &[], args)
    }

    fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {needle:?}; screen:\n{text}");
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Once the studio is up: types `prompt`, adds an image URL (the emulator's placeholder) and
    /// presses F5.
    fn submit_a_url_job(&mut self, prompt: &str) {
        self.wait_for("1 Prompt", Duration::from_secs(20));
        self.send(prompt);
        self.send("\t");
        self.send("a");
        self.send("https://v3.fal.media/files/a.png");
        self.send("\r");
        self.send("\x1b[15~"); // F5
    }

    /// Waits (bounded) for the studio to exit.
    fn wait_exit(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "kontext did not exit");
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// How many sixel images (DCS sequences) the studio has written so far.
    fn sixels_sent(&self) -> usize {
        let raw = self.raw.lock().unwrap();
        raw.windows(2).filter(|w| w == b"\x1bP").count()
    }

    /// Waits (bounded) until more than `before` sixels were written; returns the new count.
    fn wait_for_sixel_after(&self, before: usize, what: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.sixels_sent();
            if now > before {
                return now;
            }
            assert!(Instant::now() < deadline, "no sixel drawn again {what}; screen:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    fn send(&mut self, bytes: &str) {
        self.writer.write_all(bytes.as_bytes()).unwrap();
        self.writer.flush().unwrap();
        std::thread::sleep(Duration::from_millis(60));
    }
}

#[test]
fn the_whole_loop_in_a_real_pseudo_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::write(dir.path().join("config.toml"), format!("output_dir = {:?}\n", out.display().to_string())).unwrap();
    image::RgbImage::from_fn(96, 64, |x, y| image::Rgb([x as u8 * 2, y as u8 * 3, 90]))
        .save(dir.path().join("in.png"))
        .unwrap();

    let mut s = Screen::spawn(dir.path(), 40, 140);
    s.wait_for("1 Prompt", Duration::from_secs(20));
    assert!(s.parser.lock().unwrap().screen().alternate_screen(), "the studio uses the alternate screen");

    s.send("Put a small red hat on it");
    s.send("\t"); // Images
    s.send("a");
    s.send("in.png");
    s.send("\r");
    s.wait_for("local", Duration::from_secs(5));
    s.send("\x1b[15~"); // F5
    // The notice itself: the status bar is the last line drawn, so a screen read mid-frame can
    // show the job row's "done" before it.
    s.wait_for("job #1 done", Duration::from_secs(20));
    let files: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(image::open(&files[0]).is_ok());

    // Results pane shows the output; the Jobs log shows the run.
    s.send("\x1b6"); // Alt-6
    s.wait_for("6 Results job #1", Duration::from_secs(5));
    s.send("\x1b4"); // Alt-4
    s.wait_for("Done in", Duration::from_secs(5));

    // The durable history has the new entry.
    s.send("\x1b5"); // Alt-5
    let screen = s.wait_for("1 shown", Duration::from_secs(5));
    assert!(screen.contains("completed") && screen.contains("Put a small red hat on it"), "{screen}");

    s.send("\x11"); // Ctrl-Q
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "kontext did not exit on Ctrl-Q");
        std::thread::sleep(Duration::from_millis(30));
    };
    assert!(status.success(), "{status:?}");
    std::thread::sleep(Duration::from_millis(100));
    let parser = s.parser.lock().unwrap();
    assert!(!parser.screen().alternate_screen(), "the alternate screen was left");
    assert!(!parser.screen().hide_cursor(), "the cursor is visible again");
}

/// Issue 8: with sixel forced, the thumbnail is drawn again after the help overlay closes, after
/// Ctrl-L and after a focus-in report (what tmux sends when its window is shown again).
#[test]
fn a_sixel_thumbnail_is_drawn_again_after_an_overlay_ctrl_l_and_focus_in() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "").unwrap();
    image::RgbImage::from_fn(96, 64, |x, y| image::Rgb([x as u8 * 2, y as u8 * 3, 90]))
        .save(dir.path().join("in.png"))
        .unwrap();
    let mut s = Screen::spawn_args(dir.path(), 40, 120, &["--graphics", "sixel"]);
    s.wait_for("1 Prompt", Duration::from_secs(20));
    s.send("\t"); // Images
    s.send("a");
    s.send("in.png");
    s.send("\r");
    s.wait_for("local", Duration::from_secs(5));
    let drawn = s.wait_for_sixel_after(0, "at first");
    std::thread::sleep(Duration::from_millis(300));
    let drawn = s.sixels_sent().max(drawn);

    s.send("\x1bOP"); // F1: the help overlay, over the thumbnail
    s.wait_for("kontext — keys", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s.sixels_sent(), drawn, "the sixel is not drawn over the open overlay");
    s.send("\x1b"); // Esc closes it
    let drawn = s.wait_for_sixel_after(drawn, "after the overlay closed");
    assert!(!s.text().contains("kontext — keys"), "the help is gone:\n{}", s.text());

    s.send("\x0c"); // Ctrl-L
    let drawn = s.wait_for_sixel_after(drawn, "after Ctrl-L");

    s.send("\x1b[I"); // focus-in report (tmux sends it on a window switch, with focus-events on)
    s.wait_for_sixel_after(drawn, "after a focus-in report");

    s.send("\x11"); // Ctrl-Q
    s.wait_exit();
    let raw = String::from_utf8_lossy(&s.raw.lock().unwrap()).into_owned();
    assert!(raw.contains("\x1b[?1004h"), "focus reporting was asked for");
    assert!(raw.rfind("\x1b[?1004l") > raw.rfind("\x1b[?1004h"), "and turned off on exit");
}

#[test]
fn a_panic_restores_the_terminal_and_says_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "").unwrap();
    let mut s = Screen::spawn_with(dir.path(), 30, 100, &[("KONTEXT_DEBUG_PANIC", "1"), ("RUST_BACKTRACE", "0")]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "kontext did not exit after the panic");
        std::thread::sleep(Duration::from_millis(30));
    };
    assert!(!status.success());
    std::thread::sleep(Duration::from_millis(100));
    let parser = s.parser.lock().unwrap();
    let screen = parser.screen();
    assert!(!screen.alternate_screen(), "the alternate screen was left");
    assert!(!screen.hide_cursor(), "the cursor is visible again");
    assert!(screen.contents().contains("deliberate panic"), "the message is readable:\n{}", screen.contents());
}

#[test]
fn quitting_with_a_running_job_leaves_it_to_finish_and_resume_fetches_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = kontext::emulator::EmulatorConfig {
        processing_time: Duration::from_secs(2),
        ..kontext::emulator::EmulatorConfig::fast()
    };
    let emu = rt.block_on(kontext::emulator::Emulator::start(config, 0)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::write(dir.path().join("config.toml"), format!("output_dir = {:?}\n", out.display().to_string())).unwrap();

    let mut s = Screen::spawn_with(
        dir.path(),
        40,
        140,
        &[("FAL_KEY", "test-key"), ("FAL_QUEUE_URL", emu.base_url()), ("RUST_BACKTRACE", "0")],
    );
    s.submit_a_url_job("a lighthouse at dusk");
    s.wait_for("running", Duration::from_secs(10));
    s.send("\x11"); // Ctrl-Q while the job runs
    s.wait_exit();
    std::thread::sleep(Duration::from_millis(100));
    let text = s.text();
    assert!(text.contains("left to finish"), "{text}");
    assert_eq!(
        emu.journal().iter().filter(|r| r.route == kontext::emulator::Route::Cancel).count(),
        0,
        "not cancelled"
    );

    let resumed = std::process::Command::new(BIN)
        .args(["resume", "--queue-url", emu.base_url()])
        .env("FAL_KEY", "test-key")
        .env("KONTEXT_DATA_DIR", dir.path().join("data"))
        .env("KONTEXT_CONFIG", dir.path().join("config.toml"))
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let files: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(files.len(), 1, "the result was fetched after the studio quit");
    assert_eq!(emu.submit_count(), 1, "and it was submitted exactly once");
    rt.block_on(emu.shutdown());
}

#[test]
fn hostile_log_lines_and_prompt_echoes_reach_the_real_screen_clean() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut config = kontext::emulator::EmulatorConfig::fast();
    config.faults = "hostile-text@submit:1".parse().unwrap();
    let emu = rt.block_on(kontext::emulator::Emulator::start(config, 0)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::write(dir.path().join("config.toml"), format!("output_dir = {:?}\n", out.display().to_string())).unwrap();

    let mut s = Screen::spawn_with(dir.path(), 40, 140, &[("FAL_KEY", "test-key"), ("FAL_QUEUE_URL", emu.base_url())]);
    s.submit_a_url_job("a lighthouse at dusk");
    s.wait_for("job #1 done", Duration::from_secs(20));
    s.send("\x1b4"); // Alt-4: the job's log
    let screen = s.wait_for("Done in", Duration::from_secs(5));
    assert!(screen.contains("desrever"), "the hostile lines are shown, cleaned:\n{screen}");
    assert!(screen.contains("fal used the prompt: a lighthouse at dusk desrever"), "{screen}");
    for leftover in ["]52;", "ZXZpbA", "[2J", "]0;", "owned", "31m", "\u{202e}"] {
        assert!(!screen.contains(leftover), "{leftover:?} on the screen:\n{screen}");
    }
    let raw = String::from_utf8_lossy(&s.raw.lock().unwrap()).into_owned();
    for sent in ["ZXZpbA", "owned", "\u{202e}", "\u{9b}"] {
        assert!(!raw.contains(sent), "{sent:?} was written to the terminal");
    }
    s.send("\x11"); // Ctrl-Q
    s.wait_exit();
    rt.block_on(emu.shutdown());
}

#[test]
fn the_studio_refuses_an_image_redirected_to_the_metadata_service() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "output_dir = {:?}\n[emulator]\nfaults = \"redirect@files:1=http://169.254.169.254/latest/meta-data/\"\n",
            out.display().to_string()
        ),
    )
    .unwrap();
    let mut s = Screen::spawn(dir.path(), 40, 160);
    s.wait_for("1 Prompt", Duration::from_secs(20));
    s.send("Put a small red hat on it");
    s.send("\t"); // Images
    s.send("a");
    s.send("https://v3.fal.media/files/a.png");
    s.send("\r");
    s.send("\x1b[15~"); // F5
    s.send("\x1b4"); // Alt-4: the Jobs pane and its log
    let screen = s.wait_for("169.254.169.254", Duration::from_secs(20));
    assert!(screen.contains("refused") && !screen.contains("fal had"), "{screen}");
    assert_eq!(std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0), 0, "nothing was written");
    s.send("\x11"); // Ctrl-Q
    std::thread::sleep(Duration::from_millis(300));
    let _ = s.child.kill();
}

#[test]
fn without_an_output_dir_the_studio_writes_readable_names_into_the_pictures_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "# no output_dir\n").unwrap();
    let mut s = Screen::spawn(dir.path(), 40, 140);
    s.submit_a_url_job("Put the little duckling on her t-shirt");
    s.wait_for("done", Duration::from_secs(20));
    let pictures = dir.path().join("Pictures").join("kontext");
    let names: Vec<String> = std::fs::read_dir(&pictures)
        .unwrap_or_else(|e| panic!("{}: {e}", pictures.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let today = time::OffsetDateTime::now_utc().date();
    let day = format!("{:04}-{:02}-{:02}", today.year(), u8::from(today.month()), today.day());
    let name = &names[0];
    assert!(name.starts_with(&format!("{day}_")), "{name}");
    assert!(name.ends_with("_put-the-little-duckling-on-her-t-shirt-1.jpg"), "{name}");
    // Nothing lands in the folder the studio was started from.
    let stray: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jpg") || n.ends_with(".png"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    s.send("\x11");
    s.wait_exit();
}

/// The studio (40x140) on an emulator of its own, with a prompt typed; the runtime and the
/// folder live as long as the test holds them.
fn studio_on_a_fast_emulator() -> (tokio::runtime::Runtime, kontext::emulator::Emulator, tempfile::TempDir, Screen) {
    studio_on(kontext::emulator::EmulatorConfig::fast())
}

fn studio_on(
    config: kontext::emulator::EmulatorConfig,
) -> (tokio::runtime::Runtime, kontext::emulator::Emulator, tempfile::TempDir, Screen) {
    studio_configured(config, "")
}

/// As [`studio_on`], with more lines for the config file (e.g. a `[budget]`).
fn studio_configured(
    config: kontext::emulator::EmulatorConfig,
    more_config: &str,
) -> (tokio::runtime::Runtime, kontext::emulator::Emulator, tempfile::TempDir, Screen) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt.block_on(kontext::emulator::Emulator::start(config, 0)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let config = format!("output_dir = {:?}\n{more_config}", out.display().to_string());
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let env = [("FAL_KEY", "test-key"), ("FAL_QUEUE_URL", emu.base_url()), ("RUST_BACKTRACE", "0")];
    let s = Screen::spawn_with(dir.path(), 40, 140, &env);
    s.wait_for("1 Prompt", Duration::from_secs(20));
    (rt, emu, dir, s)
}

/// The endpoint row, end to end: [max] with one image, then text to image with none, each
/// picked from the filtered list and sent to that endpoint; the bill shown equals the estimate.
#[test]
fn another_endpoint_picked_in_the_studio_runs_there_and_costs_what_it_said() {
    let (rt, emu, dir, mut s) = studio_on_a_fast_emulator();
    s.send("a lighthouse at dusk");
    s.send("\t");
    s.send("a");
    s.send("https://v3.fal.media/files/a.png");
    s.send("\r");
    s.send("\x1b3"); // Alt-3: Parameters, on the endpoint row
    s.send("\r"); // the list
    s.wait_for("Endpoint (type to filter", Duration::from_secs(5));
    s.send("max");
    s.send("\r"); // the first match: [max]
    s.wait_for("1 image · Enter: list", Duration::from_secs(5));
    s.wait_for("F5 submit ~$0.080 (bundled)", Duration::from_secs(5));
    s.send("\x1b[15~"); // F5
    let screen = s.wait_for("job #1 done", Duration::from_secs(20));
    assert!(screen.contains("$0.080 billed"), "the bill equals the estimate: {screen}");

    // Text to image: the list filters on both words; the image must go first.
    s.send("\r");
    s.send("pro text");
    s.send("\r");
    s.wait_for("‹ [pro] text to image ›", Duration::from_secs(5));
    s.wait_for("no input image: [pro] text to image", Duration::from_secs(5));
    s.send("\x1b2"); // Alt-2: Images
    s.send("d");
    s.wait_for("F5 submit ~$0.040 (bundled)", Duration::from_secs(5));
    s.send("\x1b[15~"); // F5
    let screen = s.wait_for("job #2 done", Duration::from_secs(20));
    assert!(screen.contains("$0.040 billed"), "{screen}");
    s.send("\x1b4"); // Jobs: both, with their endpoint and bill
    let screen = s.wait_for("[pro] text to image · $0.040 billed", Duration::from_secs(5));
    assert!(screen.contains("[max] · $0.080 billed"), "{screen}");

    let submits: Vec<String> =
        emu.journal().into_iter().filter(|r| r.route == kontext::emulator::Route::Submit).map(|r| r.path).collect();
    assert_eq!(submits, ["/fal-ai/flux-pro/kontext/max", "/fal-ai/flux-pro/kontext/text-to-image"]);
    let mut bodies: Vec<serde_json::Value> = emu.accepted().into_iter().map(|(_, body)| body).collect();
    bodies.sort_by_key(|b| b.get("image_url").is_none());
    assert_eq!(bodies[0]["image_url"], "https://v3.fal.media/files/a.png", "[max] takes one image_url");
    assert!(bodies[1].get("image_url").is_none() && bodies[1].get("image_urls").is_none(), "{}", bodies[1]);

    // The history has both, each with its endpoint, estimate and bill.
    let history = kontext::history::History::open(&dir.path().join("data")).unwrap();
    let rows = history.list(&kontext::history::HistoryQuery { limit: 10, ..Default::default() }).unwrap();
    let costs: Vec<(String, Option<f64>, Option<f64>)> =
        rows.into_iter().map(|r| (r.endpoint, r.estimated_usd, r.billed_usd)).collect();
    assert_eq!(
        costs,
        [
            ("fal-ai/flux-pro/kontext/text-to-image".to_string(), Some(0.04), Some(0.04)),
            ("fal-ai/flux-pro/kontext/max".to_string(), Some(0.08), Some(0.08)),
        ]
    );
    s.send("\x11"); // Ctrl-Q
    s.wait_exit();
    rt.block_on(emu.shutdown());
}

/// Every shipped endpoint, one after the other with → on the endpoint row, runs end to end on
/// the emulator from the studio, at that endpoint, billed what the submit hint estimated.
#[test]
fn every_shipped_endpoint_runs_from_the_studio() {
    let (rt, emu, _dir, mut s) = studio_on_a_fast_emulator();
    s.send("a lighthouse at dusk");
    let add_image = |s: &mut Screen| {
        s.send("\x1b2"); // Alt-2: Images
        s.send("a");
        s.send("https://v3.fal.media/files/a.png");
        s.send("\r");
        s.send("\x1b3"); // back to the endpoint row
    };
    add_image(&mut s);
    let catalog = kontext::model::Catalog::bundled();
    let mut sent = Vec::new();
    for (n, schema) in catalog.iter().enumerate() {
        if n > 0 {
            s.send("\x1b[C"); // → the next endpoint
        }
        let name = kontext::tui::form::endpoint_short(schema);
        s.wait_for(&format!("‹ {name:<10} ›"), Duration::from_secs(5));
        match schema.images.max() {
            0 if n > 0 && catalog.iter().nth(n - 1).unwrap().images.max() > 0 => {
                s.send("\x1b2");
                s.send("d");
                s.send("\x1b3");
            }
            max if max > 0 && n > 0 && catalog.iter().nth(n - 1).unwrap().images.max() == 0 => add_image(&mut s),
            _ => {}
        }
        let screen = s.wait_for("F5 submit ~$", Duration::from_secs(5));
        let estimate = screen.split("F5 submit ~").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
        s.send("\x1b[15~"); // F5
        let screen = s.wait_for(&format!("job #{} done", n + 1), Duration::from_secs(20));
        assert!(screen.contains(&format!("{estimate} billed")), "{}: billed {estimate}?\n{screen}", schema.endpoint_id);
        sent.push(format!("/{}", schema.endpoint_id));
    }
    let submits: Vec<String> =
        emu.journal().into_iter().filter(|r| r.route == kontext::emulator::Route::Submit).map(|r| r.path).collect();
    assert_eq!(submits, sent);
    assert_eq!(sent.len(), 7, "the seven shipped endpoints");
    s.send("\x11"); // Ctrl-Q
    s.wait_exit();
    rt.block_on(emu.shutdown());
}

/// An uncertain submit (a 504 that is never retried) may have been billed: the studio's history
/// keeps its estimate as what it may cost (so today's spend counts it), not a guessed zero.
#[test]
fn an_uncertain_studio_submit_is_kept_as_maybe_billed() {
    let config = kontext::emulator::EmulatorConfig {
        faults: "504-user@submit:1".parse().unwrap(),
        ..kontext::emulator::EmulatorConfig::fast()
    };
    let (rt, emu, dir, mut s) = studio_on(config);
    s.send("a lighthouse at dusk");
    s.send("\t");
    s.send("a");
    s.send("https://v3.fal.media/files/a.png");
    s.send("\r");
    s.send("\x1b[15~"); // F5
    s.wait_for("job #1: submit uncertain", Duration::from_secs(20));
    let history = kontext::history::History::open(&dir.path().join("data")).unwrap();
    let rows = history.list(&kontext::history::HistoryQuery { limit: 10, ..Default::default() }).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].estimated_usd, rows[0].billed_usd), (Some(0.04), None), "estimated, bill unknown");
    assert_eq!(history.spent_today().unwrap(), 0.04, "the daily budget counts what it may cost");
    s.send("\x11");
    s.send("\x11");
    s.wait_exit();
    rt.block_on(emu.shutdown());
}

/// [dev] is billed per megapixel of its output, which matches its input by default: with a
/// local file the studio knows the size, so the estimate is exact and equals the bill.
#[test]
fn dev_with_a_local_image_is_estimated_exactly_per_megapixel() {
    let (rt, emu, dir, mut s) = studio_on_a_fast_emulator();
    // 1200×1000 is 1.14 megapixels: billed as two.
    image::RgbImage::from_fn(1200, 1000, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]))
        .save(dir.path().join("big.png"))
        .unwrap();
    s.send("make it dusk");
    s.send("\x1b3");
    s.send("\r");
    s.send("dev");
    s.send("\r");
    s.send("\x1b2");
    s.send("a");
    s.send("big.png");
    s.send("\r");
    s.wait_for("local", Duration::from_secs(10));
    s.send("\x1b1"); // the Prompt: the Parameters pane shows the cost line
    s.wait_for("cost $0.0500 (2 megapixels × $0.025", Duration::from_secs(10));
    s.wait_for("F5 submit ~$0.050 (bundled)", Duration::from_secs(5));
    s.send("\x1b[15~"); // F5
    let screen = s.wait_for("job #1 done", Duration::from_secs(30));
    assert!(screen.contains("$0.050 billed"), "{screen}");
    s.send("\x11");
    s.wait_exit();
    rt.block_on(emu.shutdown());
}

/// Types a prompt and an input image, opens the sweep dialog (F6) and enters seeds 1..3 and
/// guidance 2,5.
fn plan_a_3x2_sweep(s: &mut Screen) {
    s.send("a lighthouse at dusk");
    s.send("\t");
    s.send("a");
    s.send("https://v3.fal.media/files/a.png");
    s.send("\r");
    s.send("\x1b[17~"); // F6
    s.wait_for("Sweep — Enter sends", Duration::from_secs(5));
    s.send("1..3");
    s.send("\x1b[B"); // Down: guidance
    s.send("2,5");
}

/// The issue's "done when", from the studio: a 3-seed × 2-guidance sweep on the built-in
/// emulator gives 6 outputs, one sweep id in the history and a labelled 3×2 contact sheet.
#[test]
fn a_sweep_from_the_studio_runs_six_requests_under_one_id_and_writes_its_contact_sheet() {
    let (rt, emu, dir, mut s) = studio_on_a_fast_emulator();
    plan_a_3x2_sweep(&mut s);
    // [pro] multi costs $0.04 a request in the bundled prices.
    s.wait_for("6 requests · ~$0.240 in all", Duration::from_secs(5));
    s.send("\r");
    let screen = s.wait_for("ended: 6/6 done", Duration::from_secs(60));
    assert!(screen.contains("contact sheet"), "{screen}");

    let history = kontext::history::History::open(&dir.path().join("data")).unwrap();
    let rows = history.list(&kontext::history::HistoryQuery { limit: 50, ..Default::default() }).unwrap();
    assert_eq!(rows.len(), 6, "six requests, nothing else");
    let id = rows[0].sweep_id.clone().expect("a sweep's request carries its id");
    assert!(rows.iter().all(|r| r.sweep_id.as_deref() == Some(&id)), "one sweep id");
    let by_sweep = history
        .list(&kontext::history::HistoryQuery { limit: 50, sweep: Some(id.clone()), ..Default::default() })
        .unwrap();
    assert_eq!(by_sweep.len(), 6);
    let progress = history.sweep_progress(&id, 6).unwrap();
    assert!(progress.iter().all(|p| *p == kontext::history::PointProgress::Finished), "{progress:?}");
    let submits = emu.journal().into_iter().filter(|r| r.route == kontext::emulator::Route::Submit).count();
    assert_eq!(submits, 6);
    let seen = support::sent_seeds_and_guidance(&emu);
    let want: Vec<(u64, String)> =
        [(1, "2.0"), (1, "5.0"), (2, "2.0"), (2, "5.0"), (3, "2.0"), (3, "5.0")].map(|(s, g)| (s, g.into())).to_vec();
    assert_eq!(seen, want, "every point sent once with its values");

    let out = dir.path().join("out");
    let files: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let sheet_name = format!("{}_sweep_{id}.png", kontext::timefmt::today_utc());
    assert_eq!(files.iter().filter(|f| **f != sheet_name).count(), 6, "six outputs: {files:?}");
    let sheet = image::open(out.join(&sheet_name)).expect("the contact sheet decodes").to_rgb8();
    // LEFT 150 + 2 columns × (256 + 6), two text lines (48) + 3 rows × (256 + 6).
    assert_eq!(sheet.dimensions(), (150 + 2 * 262, 48 + 3 * 262));
    for row in 0..3 {
        for column in 0..2 {
            let centre = sheet.get_pixel(150 + column * 262 + 128, 48 + row * 262 + 128);
            assert_ne!(centre.0, [60, 60, 66], "cell {row},{column} holds an image, not the empty grey");
        }
    }
    s.send("\x1b4"); // Jobs: the sweep's row names its sheet
    let screen = s.wait_for(&format!("sweep {id} 3×2 · 6/6 done"), Duration::from_secs(5));
    assert!(screen.contains(&format!("contact sheet {}", out.join(&sheet_name).display())), "{screen}");
    quit_and_stop(s, rt, emu);
}

/// Over the `[budget]` daily cap the dialog refuses the plan: Enter sends nothing.
#[test]
fn an_over_budget_sweep_is_refused_in_the_studio_and_nothing_is_sent() {
    let (rt, emu, dir, mut s) =
        studio_configured(kontext::emulator::EmulatorConfig::fast(), "[budget]\ndaily_usd = 0.10\n");
    plan_a_3x2_sweep(&mut s);
    s.wait_for("refused: the whole sweep", Duration::from_secs(5));
    s.send("\r");
    s.send("\x1b"); // Esc
    s.wait_for("sweep not sent", Duration::from_secs(5));
    let submits = emu.journal().into_iter().filter(|r| r.route == kontext::emulator::Route::Submit).count();
    assert_eq!(submits, 0);
    let history = kontext::history::History::open(&dir.path().join("data")).unwrap();
    assert!(history.list(&kontext::history::HistoryQuery { limit: 5, ..Default::default() }).unwrap().is_empty());
    quit_and_stop(s, rt, emu);
}

/// Ctrl-Q, the studio exits, the emulator stops.
fn quit_and_stop(s: Screen, rt: tokio::runtime::Runtime, emu: kontext::emulator::Emulator) {
    quit_and_stop_studio(s);
    rt.block_on(emu.shutdown());
}

/// A sweep of an earlier session comes back from the history as a grid: `g` on one of its
/// requests in History reads the plan and what each point gave, and Results shows it.
#[test]
fn a_past_sweep_is_shown_as_a_grid_from_the_history() {
    let (rt, emu, dir, mut s) = studio_on_a_fast_emulator();
    plan_a_3x2_sweep(&mut s);
    s.wait_for("6 requests", Duration::from_secs(5));
    s.send("\r");
    s.wait_for("ended: 6/6 done", Duration::from_secs(60));
    quit_and_stop_studio(s);

    let env = [("FAL_KEY", "test-key"), ("FAL_QUEUE_URL", emu.base_url()), ("RUST_BACKTRACE", "0")];
    let mut s = Screen::spawn_with(dir.path(), 40, 140, &env);
    s.wait_for("1 Prompt", Duration::from_secs(20));
    s.send("\x1b5"); // Alt-5: History
    s.wait_for("6 shown", Duration::from_secs(10));
    s.send("g");
    let screen = s.wait_for("from the history: 6 of 6 requests sent", Duration::from_secs(10));
    let history = kontext::history::History::open(&dir.path().join("data")).unwrap();
    let rows = history.list(&kontext::history::HistoryQuery { limit: 50, ..Default::default() }).unwrap();
    let id = rows[0].sweep_id.clone().expect("a sweep's request");
    assert!(screen.contains(&format!("sweep {} · 3×2", &id[..8])), "Results shows its grid: {screen}");
    assert!(screen.contains("guidance_scale →") && screen.contains("seed ↓"), "{screen}");
    let cells = screen.replace("Jobs 0 running", "");
    for phase in ["waiting", "queued", "running", "no output"] {
        assert!(!cells.contains(phase), "every cell has its output, none is {phase}: {screen}");
    }
    // The Jobs pane has it as one group, finished and billed as the history says.
    s.send("\x1b4");
    s.wait_for(&format!("sweep {id} 3×2 · 6/6 done · $0.240"), Duration::from_secs(5));
    quit_and_stop(s, rt, emu);
}

/// Killed half-way through a sweep (two points at fal, four never sent), the studio's sweep
/// is finished by `kontext resume` plus `kontext sweep --continue ID`: nothing sent twice.
#[test]
fn a_studio_sweep_killed_half_way_is_finished_by_resume_and_continue() {
    let (rt, emu, dir, mut s) = a_slow_sweep_with_two_points_at_fal();
    std::thread::sleep(Duration::from_millis(300));
    s.child.kill().unwrap(); // SIGKILL
    s.wait_exit();
    assert_eq!(emu.submit_count(), 2, "two in flight (the default concurrency), four waiting");
    let first = support::sent_seeds_and_guidance(&emu);
    assert_eq!(first, [(1, "2.0".to_string()), (1, "5.0".to_string())], "slots go in the plan's order");
    let history = kontext::history::History::open(&dir.path().join("data")).unwrap();
    let rows = history.list(&kontext::history::HistoryQuery { limit: 50, ..Default::default() }).unwrap();
    assert_eq!(rows.len(), 2, "a point waiting for its slot has no row yet");
    let id = rows[0].sweep_id.clone().expect("journaled as a point of the sweep");
    assert_eq!(history.sweep(&id).unwrap().points.len(), 6, "the whole plan was journaled first");
    drop(history);

    let cli = |args: &[&str]| {
        let out =
            support::kontext_with_key(dir.path()).args(args).args(["--queue-url", emu.base_url()]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "kontext {args:?}: {stderr}");
        stderr
    };
    cli(&["resume"]);
    assert_eq!(emu.submit_count(), 2, "resume never submits");
    let stderr = cli(&["sweep", "--continue", &id]);
    assert!(stderr.contains("6 planned, 2 sent and finished, 0 sent and unfinished, 4 never sent"), "{stderr}");
    assert_eq!(emu.submit_count(), 6, "each point submitted exactly once");
    let history = kontext::history::History::open(&dir.path().join("data")).unwrap();
    let progress = history.sweep_progress(&id, 6).unwrap();
    assert!(progress.iter().all(|p| *p == kontext::history::PointProgress::Finished), "{progress:?}");
    rt.block_on(emu.shutdown());
}

/// Quitting mid-sweep sends no more of it, and the exit message says how many were never sent
/// and how to send them.
#[test]
fn quitting_mid_sweep_names_the_requests_never_sent() {
    let (rt, emu, _dir, mut s) = a_slow_sweep_with_two_points_at_fal();
    s.wait_for("2 running", Duration::from_secs(5));
    s.send("\x11"); // Ctrl-Q
    s.wait_exit();
    let said = String::from_utf8_lossy(&s.raw.lock().unwrap()).into_owned();
    assert!(
        said.contains("4 request(s) were never sent; `kontext sweep --continue "),
        "the exit message counts the never-sent points: {said}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(emu.submit_count(), 2, "nothing more was sent");
    rt.block_on(emu.shutdown());
}

/// A 3×2 sweep sent from the studio to an emulator that takes 2 s a request: returns once its
/// first two points (the default concurrency) are at fal and four wait.
fn a_slow_sweep_with_two_points_at_fal()
-> (tokio::runtime::Runtime, kontext::emulator::Emulator, tempfile::TempDir, Screen) {
    let mut slow = kontext::emulator::EmulatorConfig::fast();
    slow.processing_time = Duration::from_secs(2);
    let (rt, emu, dir, mut s) = studio_configured(slow, "[network]\npoll_interval_ms = 50\n");
    plan_a_3x2_sweep(&mut s);
    s.wait_for("6 requests", Duration::from_secs(5));
    s.send("\r");
    let deadline = Instant::now() + Duration::from_secs(20);
    while emu.submit_count() < 2 {
        assert!(Instant::now() < deadline, "the sweep never submitted; screen:\n{}", s.text());
        std::thread::sleep(Duration::from_millis(10));
    }
    (rt, emu, dir, s)
}

/// If the plan cannot be journaled, nothing of the sweep is sent and the studio says so.
#[test]
fn a_sweep_whose_plan_cannot_be_journaled_sends_nothing() {
    let (rt, emu, dir, s) = studio_on_a_fast_emulator();
    quit_and_stop_studio(s);
    // The store refuses a new sweep, as a full disk would.
    let db = rusqlite::Connection::open(dir.path().join("data").join(kontext::history::DB_FILE)).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refuse_sweeps BEFORE INSERT ON sweeps BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    )
    .unwrap();
    drop(db);
    let env = [("FAL_KEY", "test-key"), ("FAL_QUEUE_URL", emu.base_url()), ("RUST_BACKTRACE", "0")];
    let mut s = Screen::spawn_with(dir.path(), 40, 140, &env);
    s.wait_for("1 Prompt", Duration::from_secs(20));
    plan_a_3x2_sweep(&mut s);
    s.wait_for("6 requests", Duration::from_secs(5));
    s.send("\r");
    s.wait_for("nothing was sent, its plan could not be journaled", Duration::from_secs(10));
    s.send("\x1b4"); // Jobs: the sweep's points failed, none sent
    s.wait_for("0/6 done · 6 failed", Duration::from_secs(5));
    assert_eq!(emu.submit_count(), 0);
    quit_and_stop(s, rt, emu);
}

/// Ctrl-Q, and the studio exits (its emulator keeps running).
fn quit_and_stop_studio(mut s: Screen) {
    s.send("\x11");
    s.wait_exit();
}
