//! End to end: the real `kontext` binary, `kontext run` against `kontext emulator` started as a
//! separate process (and against the built-in one), checking files, JSON and exit codes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

mod support;
use support::{BIN, kontext};

struct EmulatorProcess {
    child: Child,
    url: String,
}

impl EmulatorProcess {
    fn spawn(extra: &[&str]) -> EmulatorProcess {
        let mut child = Command::new(BIN)
            .args(["emulator", "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .expect("emulator process starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "first stdout line is the base URL, got {url:?}");
        EmulatorProcess { child, url }
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn png(path: &Path, w: u32, h: u32) {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
    img.save(path).unwrap();
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn run_against_a_separate_emulator_writes_verified_images_and_json() {
    let emu = EmulatorProcess::spawn(&["--profile", "fast"]);
    let home = tempfile::tempdir().unwrap();
    // Upload every local file (no inlining), to exercise fal storage.
    std::fs::write(home.path().join("config.toml"), "data_uri_threshold = 0\n").unwrap();
    let input = home.path().join("input.png");
    png(&input, 120, 80);
    let out_dir = home.path().join("out");

    let out = kontext(home.path())
        .env("FAL_KEY", "any-key")
        .args(["run", "--prompt", "make it night", "--image"])
        .arg(&input)
        .args(["--image", "https://v3.fal.media/files/tiger/bml6YA7DWJXOigadvxk75_image.webp"])
        .args(["--seed", "42", "--num-images", "2", "--json", "--queue-url", &emu.url, "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(stderr.contains(&format!("fal API at {}", emu.url)), "{stderr}");
    assert!(stderr.contains("uploaded image 1"), "the local file was uploaded: {stderr}");

    let json: Value = serde_json::from_str(stdout.trim()).expect("one JSON object on stdout");
    let id = json["request_id"].as_str().unwrap();
    assert_eq!(json["endpoint"], "fal-ai/flux-pro/kontext/multi");
    assert_eq!(json["result"]["seed"], 42);
    assert_eq!(json["result"]["images"].as_array().unwrap().len(), 2);
    assert_eq!(json["result"]["has_nsfw_concepts"], serde_json::json!([false, false]));
    let files: Vec<PathBuf> =
        json["files"].as_array().unwrap().iter().map(|f| PathBuf::from(f.as_str().unwrap())).collect();
    assert_eq!(files, vec![out_dir.join(format!("{id}-0.jpg")), out_dir.join(format!("{id}-1.jpg"))]);
    for f in &files {
        let img = image::open(f).expect("a decodable image");
        assert!(img.width() > 0);
    }
    let leftovers: Vec<_> = std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "no temporary files left behind: {leftovers:?}");
    // The request is kept in the history in the data directory.
    let history = kontext::history::History::open(&home.path().join("data")).unwrap();
    let detail = history.get(id).unwrap();
    assert_eq!(detail.entry.state, kontext::history::JobState::Completed);
    assert_eq!(detail.entry.id, json["id"].as_str().unwrap());
}

#[test]
fn invalid_input_lists_every_problem_and_sends_nothing() {
    let home = tempfile::tempdir().unwrap();
    let out = kontext(home.path())
        .args(["run", "--prompt", " ", "--guidance", "25", "--num-images", "9", "--safety", "7", "--format", "gif"])
        .args(["--aspect-ratio", "5:4", "--seed", "abc"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for needle in [
        "prompt is required",
        "at least one input image",
        "seed must be",
        "guidance_scale must be between 1 and 20, got 25",
        "num_images must be between 1 and 4, got 9",
        "output_format must be jpeg or png",
        "safety_tolerance must be one of",
        "aspect_ratio must be one of",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
    assert!(!stderr.contains("using"), "nothing was connected to: {stderr}");
}

#[test]
fn without_a_key_it_runs_on_the_built_in_emulator_and_says_so() {
    let home = tempfile::tempdir().unwrap();
    let out = kontext(home.path())
        .args(["run", "-p", "a cat", "-i", "https://v3.fal.media/files/a.png", "--format", "png", "--out"])
        .arg(home.path())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("built-in emulator (no fal key configured)"), "{stderr}");
    assert!(stdout.contains(".png"), "{stdout}");
}

#[test]
fn a_failed_model_run_exits_3_and_says_why() {
    let emu = EmulatorProcess::spawn(&["--profile", "fast", "--faults", "fail:1"]);
    let home = tempfile::tempdir().unwrap();
    let (out, stderr) = run_one(&emu, home.path(), home.path());
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("the model run failed"), "{stderr}");
}

#[test]
fn an_unreachable_fal_exits_4() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config.toml"), "[network]\nretry_max_attempts = 2\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = kontext(home.path())
        .env("FAL_KEY", "k")
        .args(["run", "-p", "x", "-i", "https://v3.fal.media/files/a.png"])
        .args(["--queue-url", &format!("http://127.0.0.1:{port}")])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("network error"), "{stderr}");
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let out = kontext(home.path())
        .env("FAL_KEY", "k")
        .args(["run", "-p", "x", "-i", "https://v3.fal.media/files/a.png", "--queue-url", "http://queue.example.com"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("plain http"), "{stderr}");
}

#[test]
fn a_broken_config_names_the_line() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        "endpoint = \"fal-ai/flux-pro/kontext/multi\"\n[defaults]\nnum_images = \"two\"\n",
    )
    .unwrap();
    let out = kontext(home.path()).args(["run", "-p", "x", "-i", "https://a.b/c.png"]).output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("config.toml") && stderr.contains("line 3"), "{stderr}");
}

#[test]
fn ctrl_c_asks_fal_to_cancel_and_exits_130() {
    // Realistic timing keeps the request queued/running long enough to interrupt it.
    let emu = EmulatorProcess::spawn(&["--profile", "realistic"]);
    let home = tempfile::tempdir().unwrap();
    let mut child = kontext(home.path())
        .env("FAL_KEY", "k")
        .args(["run", "-p", "x", "-i", "https://v3.fal.media/files/a.png", "--queue-url", &emu.url, "--out"])
        .arg(home.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.iter().any(|l: &String| l.starts_with("submitted")) {
        let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("submitted in time");
        seen.push(line);
    }
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let code = child.wait().unwrap().code();
    seen.extend(rx.try_iter());
    let all = seen.join("\n");
    assert_eq!(code, Some(130), "{all}");
    assert!(all.contains("cancel: requested"), "{all}");
}

#[test]
fn the_key_never_reaches_output_logs_or_records() {
    let emu = EmulatorProcess::spawn(&["--profile", "fast"]);
    let home = tempfile::tempdir().unwrap();
    let secret = "kid-7f3a:ksecret-d41d8cd98f";
    let out = kontext(home.path())
        .env("FAL_KEY", secret)
        .env("KONTEXT_LOG", "trace")
        .args(["run", "-p", "x", "-i", "https://v3.fal.media/files/a.png", "--json", "--queue-url", &emu.url, "--out"])
        .arg(home.path().join("out"))
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stdout.contains("ksecret") && !stderr.contains("ksecret"));
    let mut files = 0;
    for entry in walk(&home.path().join("data")) {
        files += 1;
        let bytes = std::fs::read(&entry).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("ksecret"), "key found in {}", entry.display());
    }
    assert!(files >= 2, "the log and the record were written");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_sequences_from_the_server_never_reach_the_terminal() {
    use axum::routing::{get, post};
    // A hostile "fal" whose ids and errors carry terminal escapes (set title, clear screen).
    let evil = "abc\u{1b}]0;PWNED\u{7}\u{1b}[2J";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let b = base.clone();
    let app = axum::Router::new()
        .route(
            "/fal-ai/flux-pro/kontext/multi",
            post(move || {
                let b = b.clone();
                async move {
                    axum::Json(serde_json::json!({
                        "request_id": evil,
                        "response_url": format!("{b}/r"),
                        "status_url": format!("{b}/r/status"),
                        "cancel_url": format!("{b}/r/cancel"),
                    }))
                }
            }),
        )
        .route(
            "/r/status",
            get(|| async {
                axum::Json(serde_json::json!({"status": "COMPLETED", "logs": [{"message": "log \u{1b}[31mred"}]}))
            }),
        )
        .route("/r/status/stream", get(|| async { axum::http::StatusCode::NOT_FOUND }))
        .route(
            "/r",
            get(|| async {
                (
                    axum::http::StatusCode::BAD_REQUEST,
                    axum::Json(serde_json::json!({"detail": "bad \u{1b}]52;c;ZXZpbA==\u{7}input"})),
                )
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let home = tempfile::tempdir().unwrap();
    let mut cmd = kontext(home.path());
    cmd.env("FAL_KEY", "k").args([
        "run",
        "-p",
        "x",
        "-i",
        "https://v3.fal.media/a.png",
        "--poll",
        "--queue-url",
        &base,
    ]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    let (stdout, stderr) = text(&out);
    // A 400 on the result is not one of fal's verdicts: the request stays resumable (exit 4).
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("abc"), "the id is still shown: {stderr}");
    assert!(!stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'), "escapes reached the terminal: {stderr:?}");
    assert!(!stderr.contains('\u{7}'), "{stderr:?}");
}

#[test]
fn localhost_and_127_0_0_1_are_the_same_host_for_the_key() {
    // The emulator answers with 127.0.0.1 URLs; the user typed localhost.
    let emu = EmulatorProcess::spawn(&["--profile", "fast"]);
    let home = tempfile::tempdir().unwrap();
    let url = emu.url.replace("127.0.0.1", "localhost");
    let out = kontext(home.path())
        .env("FAL_KEY", "k")
        .args(["run", "-p", "x", "-i", "https://v3.fal.media/files/a.png", "--queue-url", &url, "--out"])
        .arg(home.path())
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// `kontext run` of one small request against `emu`, images into `out_dir`; returns its stderr.
fn run_one(emu: &EmulatorProcess, home: &Path, out_dir: &Path) -> (Output, String) {
    let out = kontext(home)
        .env("FAL_KEY", "k")
        .args(["run", "-p", "x", "-i", "https://v3.fal.media/files/a.png", "--queue-url", &emu.url, "--out"])
        .arg(out_dir)
        .output()
        .unwrap();
    let stderr = text(&out).1;
    (out, stderr)
}

fn images_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("jpg" | "png")))
        .collect()
}

#[test]
fn a_result_still_unready_after_completed_exits_4_and_resume_finishes_it() {
    // fal's result store lags: "still in progress", a body cut short, an HTML page.
    let emu = EmulatorProcess::spawn(&["--profile", "fast", "--faults", "not-ready:#1,truncated:#1,not-json:#1"]);
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config.toml"), "[network]\nretry_max_attempts = 3\n").unwrap();
    let out_dir = home.path().join("out");
    let (out, stderr) = run_one(&emu, home.path(), &out_dir);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("fetching the result is not ready yet; attempt 2 of 3"), "{stderr}");
    assert!(stderr.contains("run `kontext resume` to finish it"), "{stderr}");
    assert!(!out_dir.exists() || images_in(&out_dir).is_empty());

    let out = kontext(home.path()).env("FAL_KEY", "k").args(["resume", "--queue-url", &emu.url]).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("completed"), "{stdout}");
    assert_eq!(images_in(&out_dir).len(), 1, "the paid image arrived on resume");
}

#[test]
fn extra_images_and_a_stream_without_line_ends_are_survived_and_told() {
    let emu = EmulatorProcess::spawn(&["--profile", "fast", "--faults", "no-newline:1,extra-images:1"]);
    let home = tempfile::tempdir().unwrap();
    let (out, stderr) = run_one(&emu, home.path(), home.path());
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("status stream sent a line over 1 MiB without a line end; polling instead"), "{stderr}");
    assert!(stderr.contains("fal returned 3 images where 1 were asked for; keeping the first 1"), "{stderr}");
    assert_eq!(images_in(home.path()).len(), 1);
}

#[test]
fn a_resume_that_still_cannot_fetch_the_result_leaves_it_unfinished_for_the_next() {
    let emu = EmulatorProcess::spawn(&["--profile", "fast", "--faults", "not-ready:#6"]);
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config.toml"), "[network]\nretry_max_attempts = 3\n").unwrap();
    let out_dir = home.path().join("out");
    let (out, stderr) = run_one(&emu, home.path(), &out_dir);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let resume =
        || kontext(home.path()).env("FAL_KEY", "k").args(["resume", "--queue-url", &emu.url]).output().unwrap();
    let out = resume();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(4), "{stdout}\n{stderr}");
    assert!(stdout.contains("interrupted") && stdout.contains("run `kontext resume` again"), "{stdout}");
    let out = resume();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("completed"), "{stdout}");
    assert_eq!(images_in(&out_dir).len(), 1);
}

/// CRC-32 (IEEE) of PNG chunks, for crafting headers.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A small valid PNG whose IHDR is rewritten to claim `w`×`h` (colour type `color`): a
/// decompression bomb's header, with a correct CRC, so only the dimensions give it away.
fn png_claiming(path: &Path, w: u32, h: u32, color: u8) {
    png(path, 4, 4);
    let mut bytes = std::fs::read(path).unwrap();
    // Signature (8), length (4), "IHDR" (4), then width, height, depth, colour type …
    bytes[16..20].copy_from_slice(&w.to_be_bytes());
    bytes[20..24].copy_from_slice(&h.to_be_bytes());
    bytes[25] = color;
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(path, bytes).unwrap();
}

fn run_refused(home: &Path, extra: &[&str]) -> String {
    let out = kontext(home).args(["run", "-p", "a cat", "--out"]).arg(home.join("out")).args(extra).output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
    assert!(!stderr.contains("submitted"), "{extra:?}: nothing was sent: {stderr}");
    stderr
}

/// Local inputs that fal would refuse, or that are not whole images, are caught before anything
/// is recorded or sent (exit 2, naming the image): truncated, corrupt, dimension bombs, too big.
#[test]
fn damaged_oversized_and_bomb_images_are_refused_before_sending() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let good = h.join("good.png");
    png(&good, 64, 48);
    let bytes = std::fs::read(&good).unwrap();
    let truncated = h.join("truncated.png");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let corrupt = h.join("corrupt.png");
    let mut c = bytes.clone();
    for b in &mut c[60..] {
        *b = b.wrapping_mul(31).wrapping_add(7);
    }
    std::fs::write(&corrupt, c).unwrap();
    let wide = h.join("wide.png");
    png_claiming(&wide, 100_000, 100_000, 2);
    let heavy = h.join("heavy.png");
    png_claiming(&heavy, 14_000, 14_000, 6); // within fal's sides, 784 MB to decode
    let jpeg_cut = h.join("cut.jpg");
    let mut jpeg = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(64, 64, image::Rgb([1, 2, 3])).write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
    std::fs::write(&jpeg_cut, &jpeg.get_ref()[..jpeg.get_ref().len() / 3]).unwrap();

    for (file, needle) in [
        (&truncated, "damaged or cut short"),
        (&corrupt, "damaged or cut short"),
        (&wide, "too large"),
        (&heavy, "too large"),
        (&jpeg_cut, "damaged or cut short"),
    ] {
        let started = Instant::now();
        let stderr = run_refused(h, &["-i", &good.display().to_string(), "-i", &file.display().to_string()]);
        assert!(stderr.contains("image_urls[1]") && stderr.contains(needle), "{}: {stderr}", file.display());
        assert!(started.elapsed() < Duration::from_secs(10), "{}: {:?}", file.display(), started.elapsed());
    }

    // 2 GiB (sparse: no disk used) with a PNG signature: refused by its size, not read or copied.
    let huge = h.join("huge.png");
    std::fs::write(&huge, &bytes[..64]).unwrap();
    std::fs::OpenOptions::new().write(true).open(&huge).unwrap().set_len(2 << 30).unwrap();
    let started = Instant::now();
    let stderr = run_refused(h, &["-i", &huge.display().to_string()]);
    assert!(stderr.contains("2048 MiB") && stderr.contains("at most 64 MiB"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5), "not read: {:?}", started.elapsed());
    let media = walk(&h.join("data")).into_iter().filter(|p| p.starts_with(h.join("data/media"))).count();
    assert_eq!(media, 0, "nothing copied into the media store");
}

/// `--out` and the data directory must be folders kontext can write (checked by writing, so it
/// holds for root too: a path under a regular file can be created by nobody).
#[test]
fn unwritable_out_and_data_folders_are_refused_before_sending() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let img = h.join("in.png");
    png(&img, 8, 8);
    let file = h.join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let img_s = img.display().to_string();

    let under_file = file.join("out");
    let out = kontext(h).args(["run", "-p", "a cat", "-i", &img_s, "--out"]).arg(&under_file).output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--out") && stderr.contains("cannot be created"), "{stderr}");

    let out = kontext(h).args(["run", "-p", "a cat", "-i", &img_s, "--out"]).arg(&file).output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not a folder"), "{stderr}");

    let out = kontext(h)
        .args(["run", "-p", "a cat", "-i", &img_s, "--out"])
        .arg(h.join("fresh/out"))
        .env("KONTEXT_DATA_DIR", file.join("data"))
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the data directory") && !stderr.contains("submitted"), "{stderr}");
    assert!(h.join("fresh/out").is_dir(), "a missing --out is created");

    let out = kontext(h).args(["resume", "--out"]).arg(&under_file).output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--out") && stderr.contains("nothing was resumed"), "{stderr}");

    // The studio checks its output folder before the screen opens.
    std::fs::write(h.join("config.toml"), format!("output_dir = {:?}\n", under_file.display().to_string())).unwrap();
    let out = kontext(h).output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("output_dir") && stderr.contains("cannot be created"), "{stderr}");
}

/// Files named on the command line are never read without end: devices, pipes and huge files
/// are refused by their type and size before reading (exit 2, saying why), and so is a
/// key_command that prints without end.
#[test]
fn dev_zero_pipes_and_huge_files_are_refused_not_read() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let fifo = h.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let sparse = h.join("huge");
    std::fs::File::create(&sparse).unwrap().set_len(3 << 30).unwrap();
    let (fifo_s, sparse_s) = (fifo.display().to_string(), sparse.display().to_string());
    for (file, why) in
        [("/dev/zero", "not a regular file (a device)"), (&fifo_s, "a pipe"), (&sparse_s, "bytes; at most")]
    {
        let cases: [Vec<&str>; 3] = [
            vec!["--config", file, "run", "-p", "x", "-i", "https://a.b/c.png"],
            vec!["inspect", file],
            vec!["run", "--from", file],
        ];
        for args in cases {
            let started = Instant::now();
            let out = kontext(h).args(&args).output().unwrap();
            let (_, stderr) = text(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains(why), "{args:?}: {stderr}");
            assert!(started.elapsed() < Duration::from_secs(5), "{args:?}: {:?}", started.elapsed());
        }
    }
    std::fs::write(h.join("config.toml"), "key_command = \"yes fal-key-fal-key\"\n").unwrap();
    let out = kontext(h).args(["run", "-p", "x", "-i", "https://a.b/c.png"]).output().unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("key_command printed more than 64 KiB"), "{stderr}");
}

#[test]
fn hostile_log_lines_and_prompt_echoes_are_clean_in_every_output_of_run() {
    let emu = EmulatorProcess::spawn(&["--profile", "fast", "--faults", "hostile-text:1"]);
    let home = tempfile::tempdir().unwrap();
    let unsafe_char =
        |c: char| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c) || c == '\u{2066}';
    for json in [false, true] {
        let mut cmd = kontext(home.path());
        cmd.env("FAL_KEY", "k")
            .args(["run", "-p", "a lighthouse", "-i", "https://v3.fal.media/a.png", "--queue-url", &emu.url, "--out"])
            .arg(home.path().join("out"));
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("desrever"), "the log lines are shown: {stderr}");
        for (what, text) in [("stdout", &stdout), ("stderr", &stderr)] {
            assert!(!text.contains(unsafe_char), "{what} lets a control through: {text:?}");
            // JSON keeps the data, escaped (`\u001b]0;owned`); text shows none of it.
            let is_json = json && what == "stdout";
            assert!(is_json || !text.contains("]0;owned") && !text.contains("ZXZpbA=="), "{what}: {text}");
        }
        if json {
            let v: Value = serde_json::from_str(stdout.trim()).unwrap();
            let echoed = v["result"]["prompt"].as_str().unwrap();
            assert_eq!(echoed, format!("a lighthouse{}", kontext::emulator::HOSTILE_TEXT), "the data is exact");
        } else {
            assert!(stdout.contains("prompt   a lighthouse desrever"), "{stdout}");
        }
    }
}

#[test]
fn a_key_http_cannot_carry_exits_2_names_its_source_and_is_never_shown() {
    let emu = EmulatorProcess::spawn(&["--profile", "fast"]);
    let home = tempfile::tempdir().unwrap();
    let run = |home: &Path, key: Option<&str>| {
        let mut cmd = kontext(home);
        if let Some(k) = key {
            cmd.env("FAL_KEY", k);
        }
        cmd.args(["run", "-p", "x", "-i", "https://v3.fal.media/files/a.png", "--queue-url", &emu.url])
            .output()
            .unwrap()
    };
    let out = run(home.path(), Some("kq7z-id:wv3x\nyy8p"));
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("FAL_KEY") && stderr.contains("line break"), "{stderr}");
    assert!(!stderr.contains("may or may not"), "nothing was sent, so nothing is ambiguous: {stderr}");
    for part in ["kq7z", "wv3x", "yy8p"] {
        assert!(!stderr.contains(part), "the key was printed: {stderr}");
    }

    std::fs::write(home.path().join("config.toml"), "key = \"kq7z-id:wv3x\\u0007yy8p\"\n").unwrap();
    let out = run(home.path(), None);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the config file") && stderr.contains("control character"), "{stderr}");
    assert!(!stderr.contains("kq7z") && !stderr.contains("wv3x"), "{stderr}");
    let listed = kontext(home.path()).args(["history", "list", "--json"]).output().unwrap();
    assert_eq!(text(&listed).0.trim(), "[]", "nothing was recorded");
}

/// `kontext run` with a key against an emulator process with these faults: the emulator, the
/// home folder, and the run's output.
fn run_with_faults(faults: &str) -> (EmulatorProcess, tempfile::TempDir, Output) {
    let emu = EmulatorProcess::spawn(&["--profile", "fast", "--faults", faults]);
    let home = tempfile::tempdir().unwrap();
    let out = kontext(home.path())
        .env("FAL_KEY", "any-key")
        .args(["run", "-p", "x", "-i", "https://v3.fal.media/files/a.png", "--queue-url", &emu.url, "--out"])
        .arg(home.path())
        .output()
        .unwrap();
    (emu, home, out)
}

#[test]
fn a_cdn_redirect_to_the_metadata_service_is_refused_by_run() {
    let (_emu, _home, out) =
        run_with_faults("redirect@files:1=http://169.254.169.254/latest/meta-data/iam/security-credentials/");
    let (_, stderr) = text(&out);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("refused to connect to http://169.254.169.254/latest/meta-data/"), "{stderr}");
    assert!(stderr.contains("link-local"), "{stderr}");
    assert!(!stderr.contains("fal had"), "{stderr}");
}

fn doctor(home: &Path) -> (i32, String) {
    let out = kontext(home).arg("doctor").output().unwrap();
    let (stdout, stderr) = text(&out);
    (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
}

#[test]
fn doctor_passes_on_a_sound_set_up() {
    let home = tempfile::tempdir().unwrap();
    let (code, report) = doctor(home.path());
    assert_eq!(code, 0, "{report}");
    for name in ["config", "key", "requests", "data dir", "history", "graphics"] {
        assert!(report.lines().any(|l| l.starts_with("ok") && l.contains(name)), "{name}: {report}");
    }
    assert!(report.contains("built-in emulator"), "{report}");
}

#[test]
fn doctor_names_a_broken_config_without_its_key() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config.toml"), "key = \"kq7z-id:wv3x\n").unwrap();
    let (code, report) = doctor(home.path());
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("FAIL  config") && report.contains("line 1"), "{report}");
    assert!(report.contains("fix:"), "{report}");
    assert!(!report.contains("kq7z") && !report.contains("wv3x"), "the key was shown: {report}");
}

#[test]
fn doctor_names_a_key_that_cannot_be_sent() {
    let home = tempfile::tempdir().unwrap();
    let out = kontext(home.path()).env("FAL_KEY", "kq7z-id:wv3x\u{1b}yy8p").arg("doctor").output().unwrap();
    let (report, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report.contains("FAIL  key") && report.contains("FAL_KEY") && report.contains("control character"),
        "{report}"
    );
    assert!(!report.contains("kq7z") && !report.contains("wv3x") && !report.contains("yy8p"), "{report}");

    let out = kontext(home.path()).env("FAL_KEY", "kq7z-id:wv3x").arg("doctor").output().unwrap();
    let (report, _) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(report.contains("fal.ai (key from FAL_KEY)") && report.contains("https://queue.fal.run"), "{report}");
    assert!(!report.contains("kq7z") && !report.contains("wv3x"), "{report}");
}

#[test]
fn doctor_names_an_unwritable_data_dir_and_a_damaged_history() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let out = kontext(home.path()).env("KONTEXT_DATA_DIR", file.join("data")).arg("doctor").output().unwrap();
    let (report, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(report.contains("FAIL  data dir") && report.contains("--data-dir"), "{report}");

    let data = home.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("history.sqlite3"), vec![0x5a; 8192]).unwrap();
    let (code, report) = doctor(home.path());
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("FAIL  history") && report.contains("move"), "{report}");
    assert_eq!(std::fs::read(data.join("history.sqlite3")).unwrap(), vec![0x5a; 8192], "the store was left alone");

    // An emptied store next to the media it recorded is not "no history".
    std::fs::write(data.join("history.sqlite3"), b"").unwrap();
    std::fs::create_dir_all(data.join("media").join("ab")).unwrap();
    std::fs::write(data.join("media").join("ab").join("abcdef"), b"a stored image").unwrap();
    let (code, report) = doctor(home.path());
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("FAIL  history") && report.contains("is empty, but"), "{report}");
    assert_eq!(std::fs::metadata(data.join("history.sqlite3")).unwrap().len(), 0, "the store was left alone");

    // A sound store passes, and checking it changes nothing.
    std::fs::remove_file(data.join("history.sqlite3")).unwrap();
    std::fs::remove_dir_all(data.join("media")).unwrap();
    kontext::history::History::open(&data).unwrap();
    let before = std::fs::read(data.join("history.sqlite3")).unwrap();
    let (code, report) = doctor(home.path());
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("passes SQLite's check"), "{report}");
    assert_eq!(std::fs::read(data.join("history.sqlite3")).unwrap(), before);
}

#[test]
fn a_result_redirected_to_the_metadata_service_stays_resumable() {
    let (emu, home, run) = run_with_faults("redirect@result:#1=http://169.254.169.254/latest/meta-data/");
    let (_, stderr) = text(&run);
    assert_ne!(run.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("refused to connect to http://169.254.169.254/"), "{stderr}");

    let resume =
        kontext(home.path()).env("FAL_KEY", "any-key").args(["resume", "--queue-url", &emu.url]).output().unwrap();
    let (stdout, stderr) = text(&resume);
    assert_eq!(resume.status.code(), Some(0), "{stdout}\n{stderr}");
    let listed = kontext(home.path()).args(["history", "list", "--json"]).output().unwrap();
    let entries: Value = serde_json::from_str(text(&listed).0.trim()).unwrap();
    assert_eq!(entries.as_array().map(Vec::len), Some(1), "{entries}");
    assert_eq!(entries[0]["state"], "completed", "{entries}");
}

#[test]
fn doctor_runs_key_command_once() {
    let home = tempfile::tempdir().unwrap();
    let counter = home.path().join("runs");
    std::fs::write(
        home.path().join("config.toml"),
        format!("key_command = \"echo run >> '{}'; echo kq7z-id:wv3x\"\n", counter.display()),
    )
    .unwrap();
    let (code, report) = doctor(home.path());
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("key_command") && !report.contains("kq7z"), "{report}");
    assert_eq!(std::fs::read_to_string(&counter).unwrap().lines().count(), 1, "{report}");
}
