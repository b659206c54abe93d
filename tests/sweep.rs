//! End to end: `kontext sweep` (the real binary) against an emulator in this process, which
//! counts the submits it saw: the plan, its checks before sending, and the run.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use kontext::emulator::{Emulator, EmulatorConfig};
use serde_json::Value;

mod support;
use support::kontext_with_key;

struct Setup {
    // Runs the emulator; kept for as long as it is used.
    _rt: tokio::runtime::Runtime,
    emu: Emulator,
    home: tempfile::TempDir,
}

impl Setup {
    fn new(config: &str) -> Setup {
        Setup::with_emulator(EmulatorConfig::fast(), config)
    }

    fn with_emulator(emulator: EmulatorConfig, config: &str) -> Setup {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let emu = rt.block_on(Emulator::start(emulator, 0)).unwrap();
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("config.toml"), format!("[network]\npoll_interval_ms = 50\n{config}")).unwrap();
        Setup { _rt: rt, emu, home }
    }

    fn sweep(&self, args: &[&str]) -> (Output, String, String) {
        self.kontext(&[&["sweep", "-p", "make it night", "-i", "https://example.test/a.png"], args, &["--out"]])
    }

    /// `kontext` with these arguments, against the emulator, output into out/.
    fn kontext(&self, args: &[&[&str]]) -> (Output, String, String) {
        let out = kontext_with_key(self.home.path())
            .args(args.concat())
            .arg(self.out_dir())
            .args(["--queue-url", self.emu.base_url()])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out, stdout, stderr)
    }

    fn history_list(&self, args: &[&str]) -> Vec<Value> {
        let out = kontext_with_key(self.home.path()).args(["history", "list", "--json"]).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
    }

    fn out_dir(&self) -> std::path::PathBuf {
        self.home.path().join("out")
    }
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn three_seeds_by_two_guidance_give_six_requests_each_with_its_values() {
    let s = Setup::new("");
    let (out, stdout, stderr) = s.sweep(&["--seeds", "1..3", "--guidance", "2,5", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("sweep    6 requests"), "the plan is shown first: {stderr}");
    assert!(stderr.contains("estimate $0.2400 in all"), "{stderr}");
    assert_eq!(s.emu.submit_count(), 6);

    let json: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let requests = json["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 6);
    let mut combos = HashSet::new();
    let mut request_ids = HashSet::new();
    for r in requests {
        let (seed, guidance) = (r["axes"]["seed"].as_str().unwrap(), r["axes"]["guidance_scale"].as_str().unwrap());
        combos.insert((seed.to_string(), guidance.to_string()));
        assert_eq!(r["seed"].to_string(), seed, "fal's seed is the axis value");
        assert_eq!(r["cost"]["billed_usd"], 0.04);
        request_ids.insert(r["request_id"].as_str().unwrap().to_string());
        let file = r["files"][0].as_str().unwrap();
        assert!(image::open(file).is_ok(), "{file} is an image");
    }
    assert_eq!(combos.len(), 6, "each seed × guidance once: {combos:?}");
    assert_eq!(request_ids.len(), 6);
    assert_eq!(files_in(&s.out_dir()), 6);

    let history = kontext::history::History::open(&s.home.path().join("data")).unwrap();
    assert_eq!(history.count().unwrap(), 6, "each request is journaled as usual");
}

#[test]
fn the_cost_cap_refuses_the_plan_before_anything_is_sent() {
    let s = Setup::new("");
    let (out, _, stderr) = s.sweep(&["--seeds", "1..3", "--guidance", "2,5", "--max-usd", "0.2"]);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the plan's estimate $0.2400 is over --max-usd $0.2000: nothing was sent"), "{stderr}");
    assert_eq!(s.emu.submit_count(), 0, "the emulator saw no request");
    assert_eq!(files_in(&s.out_dir()), 0);

    // Within the cap it runs.
    let (out, _, stderr) = s.sweep(&["--seeds", "1,2", "--max-usd", "0.08"]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(s.emu.submit_count(), 2);
}

#[test]
fn the_budget_caps_apply_to_the_plan_as_a_whole() {
    // Each request ($0.04) is under max_request_usd; the six together are over daily_usd.
    let s = Setup::new("[budget]\nmax_request_usd = 0.05\ndaily_usd = 0.2\n");
    let (out, _, stderr) = s.sweep(&["--seeds", "1..3", "--guidance", "2,5"]);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the whole sweep"), "{stderr}");
    assert!(stderr.contains("daily_usd = $0.2000"), "{stderr}");
    assert_eq!(s.emu.submit_count(), 0);
}

#[test]
fn an_invalid_axis_value_is_named_with_its_field_and_nothing_is_sent() {
    let s = Setup::new("");
    let (out, _, stderr) = s.sweep(&["--seeds", "1..3", "--guidance", "2,50", "--aspect-ratio", "1:1,7:3"]);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("guidance_scale=50: guidance_scale must be between 1 and 20"), "{stderr}");
    assert!(stderr.contains("aspect_ratio=7:3: aspect_ratio must be one of"), "{stderr}");
    assert!(!stderr.contains("seed="), "a problem is told once, not once per seed: {stderr}");
    assert_eq!(s.emu.submit_count(), 0);

    let (out, _, stderr) = s.sweep(&["--seeds", "5..1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("--seeds \"5..1\": the end is below the start"), "{stderr}");
    let (out, _, stderr) = s.sweep(&["--set", "no_such_field=1,2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("no_such_field"), "{stderr}");
    assert_eq!(s.emu.submit_count(), 0);
}

#[test]
fn a_dry_run_prints_the_plan_and_sends_nothing() {
    let s = Setup::new("");
    let (out, stdout, stderr) = s.sweep(&["--seeds", "random:4", "--guidance", "2,3.5", "--dry-run", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(json["count"], 8);
    assert_eq!(json["sent"], false);
    assert!((json["estimated_usd"].as_f64().unwrap() - 0.32).abs() < 1e-9);
    let seeds: HashSet<&str> =
        json["requests"].as_array().unwrap().iter().map(|r| r["axes"]["seed"].as_str().unwrap()).collect();
    assert_eq!(seeds.len(), 4, "random:4 gives 4 seeds");
    assert_eq!(s.emu.submit_count(), 0);
    // As people read it: the axes that vary, and what is the same for every request.
    let (out, stdout, stderr) = s.sweep(&["--seeds", "1..2", "--guidance", "2,3.5", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for line in ["sweep    4 requests", "axis     seed = 1 | 2", "axis     guidance_scale = 2 | 3.5"] {
        assert!(stdout.lines().any(|l| l == line), "{line:?} in:\n{stdout}");
    }
    assert!(stdout.lines().any(|l| l == "fixed    prompt = make it night"), "{stdout}");
    assert_eq!(s.emu.submit_count(), 0);
}

#[test]
fn a_sweep_killed_half_way_is_finished_by_resume_and_continue_with_nothing_sent_twice() {
    let mut emulator = EmulatorConfig::fast();
    emulator.processing_time = std::time::Duration::from_secs(2);
    let s = Setup::with_emulator(emulator, "");
    let log = s.home.path().join("sweep.log");
    let mut child = kontext_with_key(s.home.path())
        .args(["sweep", "-p", "make it night", "-i", "https://example.test/a.png", "--seeds", "1..3"])
        .args(["--guidance", "2,5", "--concurrency", "2", "--queue-url", s.emu.base_url(), "--out"])
        .arg(s.out_dir())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // Two requests in flight (the concurrency), four never sent: kill it there, at once.
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.emu.submit_count() < 2 {
        assert!(Instant::now() < deadline, "the sweep never submitted: {}", std::fs::read_to_string(&log).unwrap());
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(s.emu.submit_count(), 2);
    let first = support::sent_seeds_and_guidance(&s.emu);
    assert_eq!(first, [(1, "2.0".to_string()), (1, "5.0".to_string())], "requests go in the plan's order");
    let stderr = std::fs::read_to_string(&log).unwrap();
    let id = stderr
        .lines()
        .find_map(|l| l.strip_prefix("kontext: sweep id "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("the sweep id is told before the first submit: {stderr}"))
        .to_string();

    // --continue refuses nothing, but sends only the never-sent points; resume first.
    let (out, _, stderr) = s.kontext(&[&["resume", "--out"]]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(s.emu.submit_count(), 2, "resume never submits");
    let (out, stdout, stderr) = s.kontext(&[&["sweep", "--continue", &id, "--json", "--out"]]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("6 planned, 2 sent and finished, 0 sent and unfinished, 4 never sent"), "{stderr}");
    assert_eq!(s.emu.submit_count(), 6, "each point submitted exactly once");
    let json: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(json["sweep_id"], id);
    assert_eq!(json["requests"].as_array().unwrap().len(), 4);

    // Again: nothing is left, and nothing is sent.
    let (out, _, stderr) = s.kontext(&[&["sweep", "--continue", &id, "--out"]]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("nothing to send"), "{stderr}");
    assert_eq!(s.emu.submit_count(), 6);

    // The history has the six, each once per seed × guidance, all with the sweep's id.
    let rows = s.history_list(&["--sweep", &id]);
    assert_eq!(rows.len(), 6);
    assert!(rows.iter().all(|r| r["sweep_id"] == id.as_str() && r["state"] == "completed"), "{rows:?}");
    let combos: HashSet<String> = rows.iter().map(|r| r["seed"].to_string()).collect();
    assert_eq!(combos.len(), 3);
    assert_eq!(files_in(&s.out_dir()), 6);
}

#[test]
fn history_rows_carry_their_sweep_id_and_stars_filter() {
    let s = Setup::new("");
    let (out, _, stderr) = s.sweep(&["--seeds", "1,2"]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let (out, _, stderr) = s.kontext(&[&["run", "-p", "alone", "-i", "https://example.test/a.png", "--out"]]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let rows = s.history_list(&[]);
    assert_eq!(rows.len(), 3);
    let alone = rows.iter().find(|r| r["prompt"] == "alone").unwrap();
    assert_eq!(alone["sweep_id"], Value::Null, "outside a sweep");
    let swept: Vec<&Value> = rows.iter().filter(|r| r["prompt"] != "alone").collect();
    let sweep_id = swept[0]["sweep_id"].as_str().unwrap();
    assert_eq!(swept[1]["sweep_id"], sweep_id, "one sweep id for the sweep");
    assert_eq!(s.history_list(&["--sweep", sweep_id]).len(), 2);
    assert!(s.history_list(&["--sweep", "nosuchsweep"]).is_empty());

    let keeper = swept[0]["id"].as_str().unwrap();
    let star = |what: &str| kontext_with_key(s.home.path()).args(["history", what, keeper]).output().unwrap();
    assert_eq!(star("star").status.code(), Some(0));
    let starred = s.history_list(&["--starred"]);
    assert_eq!(starred.len(), 1);
    assert_eq!((starred[0]["id"].as_str(), &starred[0]["starred"]), (Some(keeper), &Value::Bool(true)));
    assert_eq!(star("unstar").status.code(), Some(0));
    assert!(s.history_list(&["--starred"]).is_empty());
    let missing = kontext_with_key(s.home.path()).args(["history", "star", "zzzz"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn a_429_holds_the_whole_sweep_once_and_every_request_still_finishes() {
    let mut emulator = EmulatorConfig::fast();
    // The first submit is refused with 429 and Retry-After: 1.
    emulator.faults = "429@submit:#1".parse().unwrap();
    let s = Setup::with_emulator(emulator, "");
    let started = Instant::now();
    let (out, _, stderr) = s.sweep(&["--seeds", "1..4", "--concurrency", "4", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("fal rate-limits this key: the whole sweep waits"), "{stderr}");
    assert_eq!(stderr.matches("the whole sweep waits").count(), 1, "told once per 429: {stderr}");
    assert!(started.elapsed() >= Duration::from_millis(900), "the wait fal asked for was kept");
    assert_eq!(s.emu.submit_count(), 5, "four accepted, one refused and retried: nothing twice");
    assert_eq!(files_in(&s.out_dir()), 4);
}

#[test]
fn a_grid_is_a_labelled_contact_sheet_of_the_sweep_with_further_axes_on_further_sheets() {
    let s = Setup::new("");
    let grid = s.home.path().join("grid.png");
    let (out, stdout, stderr) =
        s.sweep(&["--seeds", "1..3", "--guidance", "2,5", "--json", "--grid", grid.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(json["grids"], serde_json::json!([grid.display().to_string()]));
    let sheet = image::open(&grid).expect("a PNG").to_rgb8();
    // 150 px of row labels, then 2 columns; 2 lines of text, then 3 rows (256 px cells, 6 px gaps).
    assert_eq!(sheet.dimensions(), (150 + 2 * 262, 48 + 3 * 262));
    let cell = |r: u32, c: u32| {
        let (x0, y0) = (150 + c * 262, 48 + r * 262);
        let mut sum = [0u64; 3];
        for y in y0..y0 + 256 {
            for x in x0..x0 + 256 {
                let p = sheet.get_pixel(x, y);
                for (total, v) in sum.iter_mut().zip(p.0) {
                    *total += v as u64;
                }
            }
        }
        sum
    };
    // Each cell is its own request's output, at the place of its seed (row) and guidance
    // (column). The emulator's image depends on the seed, not the guidance: rows differ.
    for r in json["requests"].as_array().unwrap() {
        let row = ["1", "2", "3"].iter().position(|v| *v == r["axes"]["seed"]).unwrap() as u32;
        let column = ["2", "5"].iter().position(|v| *v == r["axes"]["guidance_scale"]).unwrap() as u32;
        let thumb = image::open(r["files"][0].as_str().unwrap()).unwrap().thumbnail(256, 256).to_rgb8();
        let (dx, dy) = ((256 - thumb.width()) / 2, (256 - thumb.height()) / 2);
        let (x0, y0) = (150 + column * 262 + dx, 48 + row * 262 + dy);
        let placed = (0..thumb.height())
            .all(|y| (0..thumb.width()).all(|x| sheet.get_pixel(x0 + x, y0 + y) == thumb.get_pixel(x, y)));
        assert!(placed, "{r} is drawn in row {row}, column {column}");
    }
    let rows: HashSet<[u64; 3]> = (0..3).map(|r| cell(r, 0)).collect();
    assert_eq!(rows.len(), 3, "each seed's row shows a different output");
    // The margins carry the axis values (light text on the dark background).
    let inked = |x0: u32, y0: u32, x1: u32, y1: u32| {
        (y0..y1).any(|y| (x0..x1).any(|x| sheet.get_pixel(x, y).0.iter().all(|v| *v > 150)))
    };
    assert!(inked(150, 24, 150 + 256, 48), "a column header");
    assert!(inked(0, 48, 150, 48 + 256), "a row label");

    // A third varying axis: one sheet per value, FILE.png then FILE-2.png.
    let (out, _, stderr) = s.sweep(&[
        "--seeds",
        "1,2",
        "--guidance",
        "2,5",
        "--aspect-ratio",
        "1:1,16:9",
        "--grid",
        grid.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("contact sheet") && stderr.contains("grid-2.png"), "{stderr}");
    assert_eq!(image::open(s.home.path().join("grid-2.png")).unwrap().width(), 150 + 2 * 262);
}
