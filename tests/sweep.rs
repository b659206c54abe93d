//! End to end: `kontext sweep` (the real binary) against an emulator in this process, which
//! counts the submits it saw: the plan, its checks before sending, and the run.

use std::collections::HashSet;
use std::path::Path;
use std::process::Output;

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
        let rt = tokio::runtime::Runtime::new().unwrap();
        let emu = rt.block_on(Emulator::start(EmulatorConfig::fast(), 0)).unwrap();
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("config.toml"), format!("[network]\npoll_interval_ms = 50\n{config}")).unwrap();
        Setup { _rt: rt, emu, home }
    }

    fn sweep(&self, args: &[&str]) -> (Output, String, String) {
        let out = kontext_with_key(self.home.path())
            .args(["sweep", "-p", "make it night", "-i", "https://example.test/a.png"])
            .args(args)
            .args(["--queue-url", self.emu.base_url(), "--out"])
            .arg(self.out_dir())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out, stdout, stderr)
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
}
