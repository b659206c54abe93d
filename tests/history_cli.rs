//! The history commands end to end: `history list/show/rerun/export/rm`, `inspect` and
//! `run --from`, against an emulator in this process.

use std::path::Path;
use std::process::{Command, Output};

use kontext::emulator::{Emulator, EmulatorConfig};
use serde_json::Value;

mod support;

fn kontext(home: &Path, args: &[&str]) -> Command {
    let mut cmd = support::kontext(home);
    cmd.env("FAL_KEY", "test-key").args(args);
    cmd
}

async fn run(home: &Path, args: &[&str]) -> (Output, String, String) {
    let mut cmd = kontext(home, args);
    let o = tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    (o, out, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_commands_inspect_and_run_from() {
    let emu = Emulator::start(EmulatorConfig::fast(), 0).await.unwrap();
    let url = emu.base_url().to_string();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let out = h.join("out");
    let out_s = out.display().to_string();
    let input = h.join("in.png");
    image::RgbImage::from_pixel(30, 20, image::Rgb([9, 9, 9])).save(&input).unwrap();
    let input_s = input.display().to_string();

    let (o, stdout, stderr) = run(
        h,
        &[
            "run",
            "-p",
            "a fox, in snow",
            "-i",
            &input_s,
            "--seed",
            "11",
            "--format",
            "png",
            "--guidance",
            "5",
            "--queue-url",
            &url,
            "--out",
            &out_s,
            "--json",
        ],
    )
    .await;
    assert!(o.status.success(), "{stderr}");
    let first: Value = serde_json::from_str(stdout.trim()).unwrap();
    let id = first["id"].as_str().unwrap().to_string();
    let png_file = first["files"][0].as_str().unwrap().to_string();

    // list: text and JSON, search and state filters, bad state named.
    let (_, listed, _) = run(h, &["history", "list"]).await;
    assert!(listed.contains(&id) && listed.contains("completed") && listed.contains("a fox, in snow"), "{listed}");
    let (_, json, _) = run(h, &["history", "list", "--json", "--search", "fox", "--state", "completed"]).await;
    let entries: Vec<Value> = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["seed"], 11);
    let (_, json, _) = run(h, &["history", "list", "--json", "--search", "whale"]).await;
    assert_eq!(json.trim(), "[]");
    let (o, _, err) = run(h, &["history", "list", "--state", "done"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("not a state") && err.contains("completed"), "{err}");

    // show, by short id and by a prefix of fal's request id.
    let (_, shown, _) = run(h, &["history", "show", &id]).await;
    assert!(shown.contains("state      completed") && shown.contains("seed       11"), "{shown}");
    let request_id = first["request_id"].as_str().unwrap();
    let (_, json, _) = run(h, &["history", "show", &request_id[..8], "--json"]).await;
    let detail: Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(detail["entry"]["id"], id.as_str());
    assert_eq!(detail["input"]["guidance_scale"], "5");
    let (o, _, err) = run(h, &["history", "show", "zzzzzzzz"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("no request in the history matches"), "{err}");

    // inspect: text and JSON.
    let (o, text, _) = run(h, &["inspect", &png_file]).await;
    assert!(o.status.success());
    assert!(
        text.contains("a fox, in snow") && text.contains(request_id) && text.contains("guidance_scale   5"),
        "{text}"
    );
    let (_, json, _) = run(h, &["inspect", &png_file, "--json"]).await;
    let meta: Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(meta["seed"], 11);
    let (o, _, err) = run(h, &["inspect", &input_s]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("no kontext parameters"), "{err}");

    // rerun with an override: a new request, the same prompt and input, the new seed.
    let (o, stdout, stderr) =
        run(h, &["history", "rerun", &id, "--seed", "99", "--queue-url", &url, "--out", &out_s, "--json"]).await;
    assert!(o.status.success(), "{stderr}");
    let rerun: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(rerun["result"]["seed"], 99);
    assert_eq!(rerun["result"]["prompt"], "a fox, in snow");
    assert_ne!(rerun["id"], first["id"]);

    // run --from the first image: same parameters (seed 11), the local input from the history.
    let (o, stdout, stderr) =
        run(h, &["run", "--from", &png_file, "--queue-url", &url, "--out", &out_s, "--json"]).await;
    assert!(o.status.success(), "{stderr}");
    let again: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(again["result"]["seed"], 11);
    let again_file = again["files"][0].as_str().unwrap();
    assert_eq!(
        image::open(again_file).unwrap().to_rgb8().into_raw(),
        image::open(&png_file).unwrap().to_rgb8().into_raw(),
        "the same request gives the same image"
    );
    assert_eq!(emu.submit_count(), 3);

    // export: JSON and CSV hold all three.
    let (_, json, _) = run(h, &["history", "export"]).await;
    let all: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(all.len(), 3);
    let (_, csv, _) = run(h, &["history", "export", "--format", "csv"]).await;
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.lines().nth(1).unwrap().contains("\"a fox, in snow\""), "{csv}");
    let (o, _, err) = run(h, &["history", "export", "--format", "xml"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("use json or csv"), "{err}");

    // rm.
    let (o, _, _) = run(h, &["history", "rm", &id]).await;
    assert!(o.status.success());
    let (_, json, _) = run(h, &["history", "list", "--json"]).await;
    let entries: Vec<Value> = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e["id"] != id.as_str()));
}

/// Every command that opens the history refuses an emptied store next to stored media, says
/// what is wrong and what to do, sends nothing, and leaves the file exactly as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_refuses_an_emptied_or_corrupt_history_and_leaves_it_alone() {
    let emu = Emulator::start(EmulatorConfig::fast(), 0).await.unwrap();
    let url = emu.base_url().to_string();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let data = h.join("data");
    let out = h.join("out").display().to_string();
    let (o, _, stderr) =
        run(h, &["run", "-p", "kept", "-i", "https://example.test/a.png", "--queue-url", &url, "--out", &out]).await;
    assert!(o.status.success(), "{stderr}");
    let db = data.join(kontext::history::DB_FILE);
    for (what, contents) in [("empty", b"".to_vec()), ("corrupt", b"not a database at all".repeat(300))] {
        for side in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(data.join(format!("{}{side}", kontext::history::DB_FILE)));
        }
        std::fs::write(&db, &contents).unwrap();
        let commands: [&[&str]; 4] = [
            &["run", "-p", "new", "-i", "https://example.test/a.png", "--queue-url", &url, "--out", &out],
            &["history", "list"],
            &["resume", "--queue-url", &url],
            // The studio: the store is opened before the screen is.
            &["--queue-url", &url],
        ];
        for args in commands {
            let (o, _, stderr) = run(h, args).await;
            assert_eq!(o.status.code(), Some(1), "{what} {args:?}: {stderr}");
            assert!(stderr.contains(&db.display().to_string()), "{what} {args:?}: names the file: {stderr}");
            assert!(stderr.contains("will not touch it") && stderr.contains("--data-dir"), "{what} {args:?}: {stderr}");
            assert_eq!(std::fs::read(&db).unwrap(), contents, "{what} {args:?}: the old file is untouched");
        }
    }
    assert_eq!(emu.submit_count(), 1, "nothing was sent with a broken history");
}

/// A fal look-alike's text, as history keeps it: OSC 52 (clipboard write), CSI 2J, a C1 CSI, a
/// bidi override, and spreadsheet formulas.
const OSC52: &str = "\u{1b}]52;c;ZXZpbA==\u{7}";

fn record_hostile(data: &Path, prompt: &str, request_id: &str, error: &str) {
    use kontext::fal::RequestHandle;
    use kontext::runner::{JobJournal, JournalEntry};
    let h = kontext::history::History::open(data).unwrap();
    let j = h.journal();
    let draft = kontext::model::Draft {
        prompt: prompt.into(),
        images: vec!["https://example.test/a.png".into()],
        ..Default::default()
    };
    let input = draft.validate(kontext::model::MAX_INPUT_IMAGES).unwrap();
    let endpoint = kontext::model::Endpoint::default();
    j.record(JournalEntry::Pending { endpoint: &endpoint, input: &input, out_dir: Path::new("/tmp") }).unwrap();
    let url = |tail: &str| format!("http://127.0.0.1:9/x/requests/1{tail}");
    let handle = RequestHandle {
        endpoint: endpoint.id().into(),
        request_id: request_id.into(),
        response_url: url(""),
        status_url: url("/status"),
        cancel_url: url("/cancel"),
    };
    j.record(JournalEntry::Submitted { handle: &handle }).unwrap();
    j.record(JournalEntry::Failed { error }).unwrap();
}

fn assert_no_terminal_control(what: &str, text: &str) {
    let bad = |c: char| {
        (c.is_control() && !"\n\r\t".contains(c))
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    assert!(!text.contains(bad), "{what} lets a control through: {text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_export_format_is_safe_to_print_and_to_open_in_a_spreadsheet() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let data = h.join("data");
    record_hostile(
        &data,
        "=HYPERLINK(\"http://evil.test\",\"click\") \u{202e}txt.exe",
        &format!("req{OSC52}\u{1b}[2J\u{9b}31m"),
        &format!("@SUM(1+1)*cmd|' /C calc'!A0{OSC52}\u{1b}[2J"),
    );
    record_hostile(&data, "-2+3+cmd|' /C calc'!A0", "+1-555", "\tboom\r\n-12.5");
    record_hostile(&data, "-3", "ok-id", "-12.5");

    let (o, csv, err) = run(h, &["history", "export", "--format", "csv"]).await;
    assert!(o.status.success(), "{err}");
    assert_no_terminal_control("CSV", &csv);
    assert!(!csv.contains("]52;") && !csv.contains("[2J") && !csv.contains("ZXZpbA"), "no leftovers: {csv}");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let headers = reader.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3, "{csv}");
    let col = |row: &csv::StringRecord, name: &str| {
        let i = headers.iter().position(|h| h == name).unwrap();
        row[i].to_string()
    };
    assert_eq!(col(&rows[0], "request_id"), "req");
    assert_eq!(col(&rows[0], "prompt"), "'=HYPERLINK(\"http://evil.test\",\"click\") txt.exe");
    assert_eq!(col(&rows[0], "error"), "'@SUM(1+1)*cmd|' /C calc'!A0");
    assert_eq!(col(&rows[1], "prompt"), "'-2+3+cmd|' /C calc'!A0");
    assert_eq!(col(&rows[1], "request_id"), "'+1-555");
    assert_eq!(col(&rows[1], "error"), "'\tboom\n-12.5", "a leading tab is a formula too; CR is dropped");
    assert_eq!(col(&rows[2], "prompt"), "-3", "a plain number is data, not a formula");
    assert_eq!(col(&rows[2], "error"), "-12.5");
    for row in &rows {
        for field in row {
            assert!(!field.starts_with(['=', '+', '@', '\t', '\r']), "formula left in {field:?}");
        }
    }

    // JSON keeps the data exact, with every control written as an escape.
    let (o, json, err) = run(h, &["history", "export"]).await;
    assert!(o.status.success(), "{err}");
    assert_no_terminal_control("JSON", &json);
    assert!(json.contains(r"\u001b]52;c;ZXZpbA==\u0007") && json.contains(r"\u202e"), "{json}");
    let all: Vec<Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(all[0]["entry"]["request_id"], format!("req{OSC52}\u{1b}[2J\u{9b}31m"), "the data is exact");
    let id = all[0]["entry"]["id"].as_str().unwrap();
    for args in [
        &["history", "list", "--json"][..],
        &["history", "show", "--json", id],
        &["history", "list"],
        &["history", "show", id],
    ] {
        let (_, out, _) = run(h, args).await;
        assert_no_terminal_control(&args.join(" "), &out);
    }
}
