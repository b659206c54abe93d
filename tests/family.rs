//! The Kontext family end to end: every shipped endpoint through the real `kontext` binary and
//! the emulator; each endpoint's own validation; estimates equal to bills; the ledger, budget
//! caps and `--dry-run` (which sends nothing); `kontext models`; fal's platform API.

use std::path::Path;
use std::process::Output;

use kontext::emulator::{Emulator, EmulatorConfig};
use serde_json::Value;

mod support;
use support::kontext;

fn png(path: &Path, w: u32, h: u32) {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])).save(path).unwrap();
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn json_of(o: &Output) -> Value {
    let (stdout, stderr) = text(o);
    assert_eq!(o.status.code(), Some(0), "stderr: {stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

const ALL: [&str; 7] = [
    "fal-ai/flux-pro/kontext/multi",
    "fal-ai/flux-pro/kontext",
    "fal-ai/flux-pro/kontext/max",
    "fal-ai/flux-pro/kontext/max/multi",
    "fal-ai/flux-pro/kontext/text-to-image",
    "fal-ai/flux-pro/kontext/max/text-to-image",
    "fal-ai/flux-kontext/dev",
];

#[test]
fn every_shipped_endpoint_runs_end_to_end_and_its_estimate_is_its_bill() {
    let home = tempfile::tempdir().unwrap();
    let input = home.path().join("in.png");
    png(&input, 96, 64);
    let mut billed_total = 0.0;
    for id in ALL {
        let images: &[&str] = match id {
            _ if id.ends_with("text-to-image") => &[],
            _ if id.ends_with("multi") => &["a", "b"],
            _ => &["a"],
        };
        let mut cmd = kontext(home.path());
        cmd.args(["run", "--endpoint", id, "-p", "a lighthouse at dusk", "--json", "-n", "2", "--out"])
            .arg(home.path());
        for _ in images {
            cmd.arg("--image").arg(&input);
        }
        if id.ends_with("dev") {
            // [dev]'s own fields; 21:9 is just over a megapixel, so two units per image.
            cmd.args(["--set", "num_inference_steps=12", "--set", "resolution_mode=21:9"]);
        }
        let out = cmd.output().unwrap();
        let v = json_of(&out);
        assert_eq!(v["endpoint"], id);
        assert_eq!(v["files"].as_array().unwrap().len(), 2, "{id}: {v}");
        let cost = &v["cost"];
        assert!(cost["billed_usd"].is_number(), "{id}: the emulator says what it bills: {cost}");
        assert_eq!(cost["estimated_usd"], cost["billed_usd"], "{id}: {cost}");
        billed_total += cost["billed_usd"].as_f64().unwrap();
        match id {
            "fal-ai/flux-kontext/dev" => {
                assert_eq!((cost["unit"].as_str(), cost["billable_units"].as_f64()), (Some("megapixel"), Some(4.0)));
                assert_eq!(cost["billed_usd"], 0.1);
                let first = &v["result"]["images"][0];
                assert!(first["file_size"].as_u64().unwrap() > 0 && first["file_name"].is_string(), "{first}");
            }
            _ if id.contains("/max") => assert_eq!(cost["billed_usd"], 0.16),
            _ => assert_eq!(cost["billed_usd"], 0.08),
        }
        assert!(cost["price_source"].as_str().unwrap().contains("bundled table"), "{cost}");
    }

    // The ledger has every bill, and spend adds them up.
    let spend = json_of(&kontext(home.path()).args(["spend", "--json", "--by", "endpoint"]).output().unwrap());
    let total = spend["total_usd"].as_f64().unwrap();
    assert!((total - billed_total).abs() < 1e-9, "{spend} vs {billed_total}");
    assert_eq!(spend["rows"].as_array().unwrap().len(), 7, "{spend}");
    let row_sum: f64 = spend["rows"].as_array().unwrap().iter().map(|r| r["total_usd"].as_f64().unwrap()).sum();
    assert!((row_sum - total).abs() < 1e-9);
    let by_day = json_of(&kontext(home.path()).args(["spend", "--json", "--since", "2000-01-01"]).output().unwrap());
    assert_eq!(by_day["total_usd"], spend["total_usd"]);
    let list = kontext(home.path()).args(["history", "list"]).output().unwrap();
    let (stdout, _) = text(&list);
    assert_eq!(stdout.matches("$0.1600").count(), 3, "a cost column: {stdout}");
}

#[test]
fn each_endpoint_validates_with_its_own_fields_and_image_count() {
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = kontext(home.path()).arg("run").args(args).output().unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("using"), "nothing was connected to: {stderr}");
        stderr
    };
    let two = ["-i", "https://a.test/1.png", "-i", "https://a.test/2.png"];
    let e = run(&[&["--endpoint", "fal-ai/flux-pro/kontext", "-p", "x"][..], &two].concat());
    assert!(e.contains("image_url: fal-ai/flux-pro/kontext takes one input image, got 2"), "{e}");
    let e = run(&["--endpoint", "fal-ai/flux-pro/kontext/text-to-image", "-p", "x", "-i", "https://a.test/1.png"]);
    assert!(e.contains("takes no input image"), "{e}");
    let e = run(&["--endpoint", "fal-ai/flux-kontext/dev", "-p", "x", "-i", "https://a.test/1.png", "--safety", "3"]);
    assert!(e.contains("safety_tolerance: fal-ai/flux-kontext/dev has no such field"), "{e}");
    let e = run(&["--endpoint", "fal-ai/flux-kontext/dev", "-p", "x", "-i", "u.png", "--set", "acceleration=max"]);
    assert!(e.contains("acceleration must be one of none, regular, high"), "{e}");
    let e = run(&["--endpoint", "fal-ai/flux-kontext/dev", "-p", "x", "-i", "https://a.test/1.png", "--set", "steps"]);
    assert!(e.contains("expected NAME=VALUE"), "{e}");
    let e = run(&["--endpoint", "someone/else/model", "-p", "x"]);
    assert!(e.contains("kontext models add someone/else/model"), "{e}");
}

/// A separate emulator the binary talks to with a key, so the test can see what it was sent.
fn emulator() -> (tokio::runtime::Runtime, Emulator) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let emu = rt.block_on(Emulator::start(EmulatorConfig::fast(), 0)).unwrap();
    (rt, emu)
}

#[test]
fn dry_run_prints_the_body_and_estimate_and_sends_nothing() {
    let (_rt, emu) = emulator();
    let home = tempfile::tempdir().unwrap();
    let input = home.path().join("in.png");
    png(&input, 32, 32);
    let out = kontext(home.path())
        .env("FAL_KEY", "k")
        .args([
            "run",
            "--dry-run",
            "--json",
            "--queue-url",
            emu.base_url(),
            "--endpoint",
            "fal-ai/flux-pro/kontext/max",
        ])
        .args(["-p", "paint it red", "--seed", "7", "-i"])
        .arg(&input)
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(v["body"]["seed"], 7);
    assert!(v["body"]["image_url"].as_str().unwrap().starts_with("data:image/png;base64,"), "{v}");
    assert!(v["body"].get("image_urls").is_none());
    assert_eq!(v["cost"]["estimated_usd"], 0.08);
    assert!(v["cost"]["billed_usd"].is_null());
    assert!(emu.journal().is_empty(), "the emulator saw {:?}", emu.journal());
    let history = kontext::history::History::open(&home.path().join("data")).unwrap();
    assert!(history.list(&Default::default()).unwrap().is_empty(), "nothing recorded either");
}

#[test]
fn budget_caps_refuse_before_sending_and_allow_over_budget_passes_once() {
    let (_rt, emu) = emulator();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config.toml"), "[budget]\nmax_request_usd = 0.05\ndaily_usd = 0.10\n").unwrap();
    let run = |extra: &[&str]| {
        kontext(home.path())
            .env("FAL_KEY", "k")
            .args(["run", "--queue-url", emu.base_url(), "-p", "x", "-i", "https://a.test/1.png", "--out"])
            .arg(home.path())
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["--endpoint", "fal-ai/flux-pro/kontext/max"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("max_request_usd = $0.0500") && stderr.contains("$0.0800"), "{stderr}");
    assert_eq!(emu.submit_count(), 0, "refused before anything was sent");

    let out = run(&["--endpoint", "fal-ai/flux-pro/kontext/max", "--allow-over-budget"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert_eq!(emu.submit_count(), 1);
    // 0.08 spent today: another 0.04 goes over the daily cap.
    let out = run(&[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("daily_usd = $0.1000") && stderr.contains("today's spend $0.0800"), "{stderr}");
    assert_eq!(emu.submit_count(), 1);
}

#[test]
fn with_a_key_prices_come_from_fals_pricing_api_and_are_cached() {
    let (_rt, emu) = emulator();
    let home = tempfile::tempdir().unwrap();
    let out = kontext(home.path())
        .env("FAL_KEY", "k")
        .args(["run", "--json", "--queue-url", emu.base_url(), "-p", "x", "-i", "https://a.test/1.png", "--out"])
        .arg(home.path())
        .output()
        .unwrap();
    let v = json_of(&out);
    assert!(v["cost"]["price_source"].as_str().unwrap().starts_with("fal pricing API"), "{v}");
    assert!(emu.journal().iter().any(|r| r.path == "/v1/models/pricing" && r.has_authorization));
    let cached = std::fs::read_to_string(home.path().join("data/prices.json")).unwrap();
    assert!(cached.contains("fal-ai/flux-pro/kontext/multi"), "{cached}");
    // Today's answer is used again without asking.
    let again = json_of(
        &kontext(home.path())
            .env("FAL_KEY", "k")
            .args(["run", "--json", "--queue-url", emu.base_url(), "-p", "y", "-i", "https://a.test/1.png", "--out"])
            .arg(home.path())
            .output()
            .unwrap(),
    );
    assert_eq!(again["cost"]["price_source"], v["cost"]["price_source"]);
    let asked = emu.journal().iter().filter(|r| r.path == "/v1/models/pricing").count();
    assert_eq!(asked, 1, "asked once a day");
    // Offline, the cached answer is used and named.
    let models = json_of(&kontext(home.path()).args(["models", "--json"]).output().unwrap());
    let multi =
        models.as_array().unwrap().iter().find(|m| m["endpoint_id"] == "fal-ai/flux-pro/kontext/multi").unwrap();
    assert!(multi["price_source"].as_str().unwrap().starts_with("fal pricing API"), "{multi}");
}

#[test]
fn models_lists_the_family_and_shows_fields() {
    let home = tempfile::tempdir().unwrap();
    let v = json_of(&kontext(home.path()).args(["models", "--json"]).output().unwrap());
    let ids: Vec<&str> = v.as_array().unwrap().iter().map(|m| m["endpoint_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ALL);
    let dev = &v[6];
    assert_eq!(dev["images"], serde_json::json!({"min": 1, "max": 1}));
    assert_eq!((dev["unit_price"].as_f64(), dev["unit"].as_str()), (Some(0.025), Some("megapixel")));
    assert_eq!(v[4]["images"], serde_json::json!({"min": 0, "max": 0}));
    let out = kontext(home.path()).args(["models", "show", "fal-ai/flux-kontext/dev"]).output().unwrap();
    let (stdout, _) = text(&out);
    assert!(stdout.contains("num_inference_steps") && stdout.contains("--set num_inference_steps="), "{stdout}");
    assert!(stdout.contains("one of auto, match_input"), "{stdout}");
    let out = kontext(home.path()).args(["models", "add", "fal-ai/flux-pro/kontext"]).output().unwrap();
    assert!(text(&out).0.contains("ships with kontext"));
}

#[test]
fn models_add_fetches_a_schema_that_then_runs_and_refuses_one_the_form_cannot_fill() {
    let (_rt, emu) = emulator();
    let home = tempfile::tempdir().unwrap();
    let id = "fal-ai/flux-kontext-lora";
    let e =
        kontext(home.path()).args(["run", "--endpoint", id, "-p", "x", "-i", "https://a.test/1.png"]).output().unwrap();
    assert_eq!(e.status.code(), Some(2), "not known before it is added");

    let out = kontext(home.path())
        .env("FAL_KEY", "k")
        .args(["models", "add", id, "--api-url", emu.base_url()])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("added fal-ai/flux-kontext-lora"), "{stdout}");
    assert!(emu.journal().iter().any(|r| r.path == "/v1/models"), "asked fal's model API");
    let saved = std::fs::read_to_string(home.path().join("data/endpoints/fal-ai.flux-kontext-lora.json")).unwrap();
    assert!(saved.contains("\"x-kontext\"") && saved.contains("megapixel"), "with our block: {saved:.300}");

    let listed = json_of(&kontext(home.path()).args(["models", "--json"]).output().unwrap());
    assert!(listed.as_array().unwrap().iter().any(|m| m["endpoint_id"] == id));
    // It runs: the field the form cannot fill (loras) is left to fal's default.
    let input = home.path().join("in.png");
    png(&input, 40, 30);
    let v = json_of(
        &kontext(home.path())
            .env("FAL_KEY", "k")
            .args([
                "run",
                "--json",
                "--queue-url",
                emu.base_url(),
                "--endpoint",
                id,
                "-p",
                "x",
                "--set",
                "num_inference_steps=10",
                "-i",
            ])
            .arg(&input)
            .arg("--out")
            .arg(home.path())
            .output()
            .unwrap(),
    );
    assert_eq!(v["endpoint"], id);
    assert_eq!(v["result"]["images"][0]["content_type"], "image/png", "its own default format");

    let strict = "fal-ai/flux-kontext-lora/strict";
    let out = kontext(home.path())
        .args(["models", "add", strict, "--api-url", emu.base_url()])
        .env("FAL_KEY", "k")
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot fill its required field loras"), "{stderr}");
    assert!(!home.path().join("data/endpoints/fal-ai.flux-kontext-lora.strict.json").exists());
}
