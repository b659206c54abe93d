//! The history store as a library: journal through the runner, migrations from every earlier
//! schema, search and keyset paging, ids, media sharing on rm, several writers at once, and the
//! ambiguous submit that is never resent.

use std::path::Path;
use std::time::Duration;

use kontext::emulator::{Emulator, EmulatorConfig};
use kontext::fal::{FalClient, FalConfig, FalKey, FollowMode, RequestHandle, StatusUpdate};
use kontext::history::{History, HistoryError, HistoryQuery, JobState, schema};
use kontext::model::{Draft, Endpoint, MAX_INPUT_IMAGES, ValidInput};
use kontext::runner::{JobJournal, JobRequest, JournalEntry, run_job};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const KEY: &str = "sk-test-0123456789-secret";

fn client_for(emu: &Emulator) -> FalClient {
    let mut cfg = FalConfig::single_host(emu.base_url().parse().unwrap(), FalKey::new(KEY));
    cfg.poll_interval = Duration::from_millis(20);
    FalClient::new(cfg).unwrap()
}

fn png(path: &Path, w: u32, h: u32, tint: u8) {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, tint]));
    img.save(path).unwrap();
}

fn input(prompt: &str, images: Vec<String>, seed: Option<u64>) -> ValidInput {
    let mut draft = Draft { prompt: prompt.into(), images, ..Draft::default() };
    if let Some(seed) = seed {
        draft.set("seed", seed.to_string());
    }
    draft.validate(MAX_INPUT_IMAGES).unwrap()
}

/// Records a request directly through the journal, as the runner would, up to `state`.
fn record(h: &History, prompt: &str, seed: u64, state: JobState, request_id: &str) -> String {
    let j = h.journal();
    let inp = input(prompt, vec!["https://example.test/a.png".into()], Some(seed));
    let out = Path::new("/tmp");
    j.record(JournalEntry::Pending { endpoint: &Endpoint::default(), input: &inp, out_dir: out }).unwrap();
    if state != JobState::Pending {
        let handle = RequestHandle {
            endpoint: Endpoint::default().id().into(),
            request_id: request_id.into(),
            response_url: format!("http://127.0.0.1:9/x/requests/{request_id}"),
            status_url: format!("http://127.0.0.1:9/x/requests/{request_id}/status"),
            cancel_url: format!("http://127.0.0.1:9/x/requests/{request_id}/cancel"),
        };
        j.record(JournalEntry::Submitted { handle: &handle }).unwrap();
    }
    match state {
        JobState::InProgress => j.record(JournalEntry::Status(&StatusUpdate::InProgress)).unwrap(),
        JobState::Completed => j.record(JournalEntry::Completed { elapsed: Duration::from_secs(1) }).unwrap(),
        JobState::Failed => j.record(JournalEntry::Failed { error: "boom" }).unwrap(),
        _ => {}
    }
    j.short_id()
}

#[tokio::test]
async fn a_run_is_journaled_completely_and_the_key_is_never_stored() {
    let emu = Emulator::start(EmulatorConfig::fast(), 0).await.unwrap();
    let client = client_for(&emu);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("in.png");
    png(&local, 64, 48, 7);
    let h = History::open(&dir.path().join("data")).unwrap();
    let journal = h.journal();
    let mut inp = input("paint it blue", vec![local.display().to_string()], Some(42));
    inp.set("num_images", 2);
    inp.set("output_format", "png");
    let job = JobRequest {
        naming: kontext::runner::OutputNaming::RequestId,
        endpoint: Endpoint::default(),
        input: inp,
        out_dir: dir.path().join("out"),
        data_uri_threshold: 0,
        follow: FollowMode::Stream,
        journal: Some(journal.clone()),
    };
    let (tx, _rx) = mpsc::unbounded_channel();
    let outcome = run_job(&client, job, tx, CancellationToken::new()).await.unwrap();

    let d = h.get(&journal.short_id()).unwrap();
    assert_eq!(d.entry.state, JobState::Completed);
    assert_eq!(d.entry.request_id.as_deref(), Some(outcome.handle.request_id.as_str()));
    assert_eq!(d.entry.seed, Some(42));
    assert_eq!(d.entry.num_outputs, 2);
    assert_eq!(d.sent.as_ref(), Some(&outcome.sent));
    assert_eq!(d.result.as_ref(), Some(&outcome.raw_result));
    assert!(d.metrics.is_some(), "metrics are kept");
    assert!(d.logs.iter().any(|l| l.message.starts_with("Step")), "log lines are kept: {:?}", d.logs);
    let kinds: Vec<&str> = d.events.iter().map(|(_, e)| e.split(':').next().unwrap()).collect();
    for (a, b) in [("pending", "submitting"), ("submitting", "submitted"), ("submitted", "in progress")] {
        let pos = |k| kinds.iter().position(|x| *x == k).unwrap_or_else(|| panic!("no {k} in {kinds:?}"));
        assert!(pos(a) < pos(b), "{a} before {b}: {kinds:?}");
    }
    assert!(kinds.ends_with(&["completed"]), "{kinds:?}");
    // The input file and both outputs are in the media store, measured.
    assert_eq!(d.inputs.len(), 1);
    assert_eq!((d.inputs[0].width, d.inputs[0].height), (64, 48));
    assert_eq!(d.inputs[0].source.as_deref(), Some(local.display().to_string().as_str()));
    for (m, saved) in d.outputs.iter().zip(&outcome.files) {
        let bytes = std::fs::read(&m.path).unwrap();
        assert_eq!(kontext::history::sha256_hex(&bytes), m.sha256, "content-addressed");
        assert_eq!((m.width, m.height), (saved.width, saved.height));
        assert_eq!(m.saved_path.as_deref(), Some(saved.path.as_path()));
        assert!(m.path.starts_with(h.media_dir()));
    }
    // The key appears nowhere in the store (database, WAL, media).
    for entry in walk(&dir.path().join("data")) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(!bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()), "key found in {}", entry.display());
    }
    // Re-loadable: the draft points at the original file while it exists, else at the copy.
    assert_eq!(d.to_draft().images, vec![local.display().to_string()]);
    std::fs::remove_file(&local).unwrap();
    let d = h.get(&journal.short_id()).unwrap();
    assert_eq!(d.to_draft().images, vec![d.inputs[0].path.display().to_string()]);
    assert!(d.to_draft().validate(MAX_INPUT_IMAGES).is_ok());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[tokio::test]
async fn the_pending_row_is_committed_before_the_submit_and_an_ambiguous_submit_is_never_resent() {
    let mut cfg = EmulatorConfig::fast();
    cfg.faults = "hang@submit:#1".parse().unwrap();
    let emu = Emulator::start(cfg, 0).await.unwrap();
    let mut fal = FalConfig::single_host(emu.base_url().parse().unwrap(), FalKey::new(KEY));
    fal.timeout = Duration::from_millis(1500);
    let client = FalClient::new(fal).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path()).unwrap();
    let journal = h.journal();
    let job = JobRequest {
        naming: kontext::runner::OutputNaming::RequestId,
        endpoint: Endpoint::default(),
        input: input("a hung submit", vec!["https://example.test/a.png".into()], None),
        out_dir: dir.path().join("out"),
        data_uri_threshold: 0,
        follow: FollowMode::Stream,
        journal: Some(journal.clone()),
    };
    let (tx, _rx) = mpsc::unbounded_channel();
    let run = tokio::spawn({
        let client = client.clone();
        async move { run_job(&client, job, tx, CancellationToken::new()).await }
    });
    // While the submit hangs, another connection (as another process would) sees the row.
    let other = History::open(dir.path()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while emu.submit_count() == 0 {
        assert!(std::time::Instant::now() < deadline, "the submit never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let d = other.get(&journal.short_id()).unwrap();
    assert_eq!(d.entry.state, JobState::Pending);
    assert_eq!(d.sent.as_ref().map(|s| s.prompt()), Some("a hung submit"));
    assert!(d.events.iter().any(|(_, e)| e == "submitting"), "{:?}", d.events);

    let err = run.await.unwrap().unwrap_err();
    assert!(err.to_string().contains("may or may not have reached fal"), "{err}");
    let d = other.get(&journal.short_id()).unwrap();
    assert_eq!(d.entry.state, JobState::SubmitAmbiguous);
    assert!(d.error.as_deref().unwrap_or("").contains("not sent again"), "{:?}", d.error);

    // Resume shows it, and sends nothing.
    let (tx, _rx) = mpsc::unbounded_channel();
    let report = kontext::history::resume_all(
        &client,
        &h,
        None,
        kontext::runner::OutputNaming::RequestId,
        tx,
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(report.resumed.is_empty());
    assert_eq!(report.ambiguous.len(), 1);
    assert_eq!(report.ambiguous[0].id, journal.short_id());
    assert_eq!(emu.submit_count(), 1, "an ambiguous submit is never resent");
}

#[test]
fn a_v1_database_with_data_migrates_to_the_latest_schema() {
    let dir = tempfile::tempdir().unwrap();
    {
        let v1 = History::open_at_version(dir.path(), 1).unwrap();
        let c = rusqlite::Connection::open(v1.db_path()).unwrap();
        assert_eq!(schema::version(&c).unwrap(), 1);
        // Rows as a kontext of schema v1 wrote them (its columns only).
        for (i, (prompt, seed, state, request_id)) in
            [("an otter juggling pebbles", 7, "completed", "req-otter"), ("a heron at dawn", 8, "queued", "req-heron")]
                .into_iter()
                .enumerate()
        {
            let input = serde_json::json!({"prompt": prompt, "images": ["https://example.test/a.png"], "seed": seed.to_string()});
            c.execute(
                "INSERT INTO requests (local_id, request_id, endpoint, state, created_at, updated_at, prompt, seed, num_images, input_json)
                 VALUES (?1, ?2, 'fal-ai/flux-pro/kontext/multi', ?3, 1700000000, 1700000000000, ?4, ?5, 1, ?6)",
                rusqlite::params![format!("v1row{i}aaaaaaaa"), request_id, state, prompt, seed, input.to_string()],
            )
            .unwrap();
        }
        // v1 has no full-text index.
        let err = v1.list(&HistoryQuery { search: Some("otter".into()), ..HistoryQuery::default() });
        assert!(err.is_err(), "search needs v2");
    }
    let h = History::open(dir.path()).unwrap();
    let conn = rusqlite::Connection::open(h.db_path()).unwrap();
    assert_eq!(schema::version(&conn).unwrap(), schema::LATEST);
    // Rows written under v1 are searchable after the migration, and new rows too.
    let found = h.list(&HistoryQuery { search: Some("otter jug".into()), ..HistoryQuery::default() }).unwrap();
    assert_eq!(found.iter().map(|e| e.prompt.as_str()).collect::<Vec<_>>(), ["an otter juggling pebbles"]);
    record(&h, "another otter", 9, JobState::Completed, "req-otter-2");
    let found = h.list(&HistoryQuery { search: Some("otter".into()), ..HistoryQuery::default() }).unwrap();
    assert_eq!(found.len(), 2);
    let heron = h.get("req-heron").unwrap();
    assert_eq!(heron.entry.state, JobState::Queued);
    assert_eq!((heron.entry.estimated_usd, heron.entry.billed_usd), (None, None), "an old row's cost is unknown");
    assert_eq!(heron.input.seed(), Some(8));
    assert_eq!((heron.entry.sweep_id.as_deref(), heron.entry.starred), (None, false), "an old row is in no sweep");
    // Every migration step from every earlier version gives the same schema as a fresh store.
    let fresh = tempfile::tempdir().unwrap();
    let f = History::open(fresh.path()).unwrap();
    let schema_of = |p: &Path| {
        let c = rusqlite::Connection::open(p).unwrap();
        let mut s = c.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY name").unwrap();
        s.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?)))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    };
    assert_eq!(schema_of(h.db_path()), schema_of(f.db_path()));
}

/// A row written before a draft's fields were one map: the stored input has the [pro] family's
/// typed keys (`null` for not given, `false` for a switch left off) and the other fields in `extra`.
#[test]
fn a_row_written_with_the_old_typed_draft_is_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path()).unwrap();
    let old = serde_json::json!({
        "prompt": "a lantern in the fog",
        "images": ["https://example.test/a.png"],
        "seed": "11",
        "guidance_scale": "4.5",
        "sync_mode": false,
        "num_images": "2",
        "output_format": "png",
        "safety_tolerance": null,
        "enhance_prompt": false,
        "aspect_ratio": null,
        "extra": {"num_inference_steps": "30"}
    });
    let pro = serde_json::json!({"extra": {}, "seed": null, "enhance_prompt": true, "aspect_ratio": "16:9", "prompt": "an owl"});
    let c = rusqlite::Connection::open(h.db_path()).unwrap();
    for (local_id, endpoint, input) in [
        ("oldrow0aaaaaaaa", "fal-ai/flux-kontext/dev", &old),
        ("oldrow1aaaaaaaa", "fal-ai/flux-pro/kontext/text-to-image", &pro),
    ] {
        c.execute(
            "INSERT INTO requests (local_id, endpoint, state, created_at, updated_at, prompt, num_images, input_json)
             VALUES (?1, ?2, 'failed', 1700000000, 1700000000000, 'old', 1, ?3)",
            rusqlite::params![local_id, endpoint, input.to_string()],
        )
        .unwrap();
    }
    let dev = h.get("oldrow0aaaaaaaa").unwrap();
    assert_eq!(dev.input.prompt, "a lantern in the fog");
    assert_eq!(dev.input.seed(), Some(11));
    assert_eq!(dev.input.num_images(), 2);
    assert_eq!(dev.input.get("guidance_scale"), Some(serde_json::json!(4.5)));
    assert_eq!(dev.input.get("output_format"), Some(serde_json::json!("png")));
    assert_eq!(dev.input.get("num_inference_steps"), Some(serde_json::json!(30)), "extra's fields are kept");
    assert_eq!(dev.input.get("sync_mode"), Some(serde_json::json!(false)), "a switch left off is the default");
    let rerun = dev.to_draft();
    assert_eq!(rerun.get("seed"), Some("11"));
    assert_eq!(rerun.images, ["https://example.test/a.png"]);
    let t2i = h.get("oldrow1aaaaaaaa").unwrap();
    assert_eq!(t2i.input.seed(), None, "a null seed is no seed");
    assert_eq!(t2i.input.get("enhance_prompt"), Some(serde_json::json!(true)));
    assert_eq!(t2i.input.get("aspect_ratio"), Some(serde_json::json!("16:9")));
    assert_eq!(t2i.input.get("safety_tolerance"), Some(serde_json::json!("2")), "its default");
}

#[test]
fn a_database_from_a_newer_kontext_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(History::open(dir.path()).unwrap());
    let c = rusqlite::Connection::open(dir.path().join(kontext::history::DB_FILE)).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    let err = History::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("newer than this kontext knows"), "{err}");
}

/// A data directory with one recorded request whose input image is in the media store.
fn history_with_media(dir: &Path) -> std::path::PathBuf {
    let h = History::open(dir).unwrap();
    let j = h.journal();
    let inp = input("kept", vec!["https://example.test/a.png".into()], None);
    j.record(JournalEntry::Pending { endpoint: &Endpoint::default(), input: &inp, out_dir: dir }).unwrap();
    let img = dir.join("in.png");
    png(&img, 4, 4, 1);
    let bytes = std::fs::read(&img).unwrap();
    j.record(JournalEntry::InputFile { index: 0, path: &img, bytes: &bytes }).unwrap();
    drop(j);
    drop(h);
    for side in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("{}{side}", kontext::history::DB_FILE)));
    }
    dir.join(kontext::history::DB_FILE)
}

fn assert_refused_untouched(dir: &Path, db: &Path, before: &[u8], what: &str) {
    let err = History::open(dir).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, HistoryError::Damaged { .. }), "{what}: {err:?}");
    assert!(text.contains(&db.display().to_string()), "{what}: names the file: {text}");
    assert!(text.contains("mv ") && text.contains("--data-dir"), "{what}: says what to do: {text}");
    assert_eq!(std::fs::read(db).unwrap_or_default(), before, "{what}: the old file is left exactly as it was");
    let deep = kontext::history::check_store_integrity(dir).unwrap_err();
    assert!(matches!(deep, HistoryError::Damaged { .. }), "{what}: {deep:?}");
    assert_eq!(std::fs::read(db).unwrap_or_default(), before, "{what}: the check does not write either");
}

#[test]
fn an_emptied_store_next_to_stored_media_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = history_with_media(dir.path());
    std::fs::write(&db, b"").unwrap();
    assert_refused_untouched(dir.path(), &db, b"", "zero-length store");
    let text = History::open(dir.path()).unwrap_err().to_string();
    assert!(text.contains("is empty") && text.contains("stored file"), "{text}");

    std::fs::remove_file(&db).unwrap();
    let err = History::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("is missing"), "a deleted store next to media is not a new history: {err}");
    assert!(!db.exists(), "no new store was created in its place");
}

#[test]
fn a_store_that_is_not_a_database_or_is_damaged_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = history_with_media(dir.path());
    let good = std::fs::read(&db).unwrap();

    let garbage = b"this is not a database, it is a text file that someone saved here by mistake".repeat(100);
    std::fs::write(&db, &garbage).unwrap();
    assert_refused_untouched(dir.path(), &db, &garbage, "not a database");

    std::fs::write(&db, &good[..10]).unwrap();
    assert_refused_untouched(dir.path(), &db, &good[..10], "cut short");

    // SQLite's header intact, its pages scrambled: found by SQLite's own first reads.
    let mut damaged = good.clone();
    for b in &mut damaged[100..] {
        *b ^= 0x5a;
    }
    std::fs::write(&db, &damaged).unwrap();
    assert_refused_untouched(dir.path(), &db, &damaged, "damaged pages");
}

#[test]
fn a_new_or_empty_data_dir_still_just_works() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("new");
    assert!(kontext::history::check_store_integrity(&data).is_ok());
    let h = History::open(&data).unwrap();
    assert_eq!(h.count().unwrap(), 0);
    drop(h);
    kontext::history::check_store_integrity(&data).unwrap();
    // A zero-length store with no media (a process stopped before its first write) is new too.
    let other = dir.path().join("zero");
    std::fs::create_dir_all(other.join("media")).unwrap();
    std::fs::write(other.join(kontext::history::DB_FILE), b"").unwrap();
    assert_eq!(History::open(&other).unwrap().count().unwrap(), 0);
}

#[test]
fn search_filters_and_keyset_paging() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path()).unwrap();
    for i in 0..30u64 {
        let prompt = if i % 3 == 0 { format!("a red fox number {i}") } else { format!("a blue whale number {i}") };
        let state = if i % 2 == 0 { JobState::Completed } else { JobState::Failed };
        record(&h, &prompt, 1000 + i, state, &format!("req-{i:04}"));
    }
    assert_eq!(h.count().unwrap(), 30);
    // Pages of 7, newest first, no gaps, no repeats.
    let mut seen = Vec::new();
    let mut q = HistoryQuery { limit: 7, ..HistoryQuery::default() };
    loop {
        let page = h.list(&q).unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        q.before = Some(page.last().unwrap().cursor);
        seen.extend(page.into_iter().map(|e| e.seed.unwrap()));
    }
    assert_eq!(seen, (1000..1030).rev().collect::<Vec<_>>());
    // Search with paging and a state filter.
    let mut q = HistoryQuery {
        search: Some("FOX".into()),
        state: Some(JobState::Completed),
        limit: 2,
        ..HistoryQuery::default()
    };
    let mut foxes = Vec::new();
    loop {
        let page = h.list(&q).unwrap();
        let Some(last) = page.last() else { break };
        q.before = Some(last.cursor);
        foxes.extend(page.into_iter().map(|e| e.seed.unwrap()));
    }
    assert_eq!(foxes, [1024, 1018, 1012, 1006, 1000]);
    let by_seed = h.list(&HistoryQuery { seed: Some(1017), ..HistoryQuery::default() }).unwrap();
    assert_eq!(by_seed.len(), 1);
    assert_eq!(by_seed[0].prompt, "a blue whale number 17");
    let none = h.list(&HistoryQuery { endpoint: Some("fal-ai/other".into()), ..HistoryQuery::default() }).unwrap();
    assert!(none.is_empty());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let recent = h.list(&HistoryQuery { since: Some(now - 60), until: Some(now + 60), ..HistoryQuery::default() });
    assert_eq!(recent.unwrap().len(), 30);
    let future = h.list(&HistoryQuery { since: Some(now + 3600), ..HistoryQuery::default() }).unwrap();
    assert!(future.is_empty());
    // Odd search text is taken literally, never as FTS syntax.
    assert!(h.list(&HistoryQuery { search: Some("\"fox OR (".into()), ..HistoryQuery::default() }).is_ok());
    let prompts = h.recent_prompts(3).unwrap();
    assert_eq!(prompts, ["a blue whale number 29", "a blue whale number 28", "a red fox number 27"]);
}

#[test]
fn ids_are_short_stable_and_prefixes_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path()).unwrap();
    let pending = record(&h, "never sent", 1, JobState::Pending, "");
    assert_eq!(pending.len(), kontext::history::SHORT_ID_LEN);
    assert_eq!(h.get(&pending).unwrap().entry.request_id, None, "a pending row has an id before fal gives one");
    let a = record(&h, "one", 2, JobState::Completed, "abcd1111-0000");
    let b = record(&h, "two", 3, JobState::Completed, "abcd2222-0000");
    assert_eq!(h.get(&a).unwrap().entry.prompt, "one");
    assert_eq!(h.get(&b[..6]).unwrap().entry.prompt, "two");
    assert_eq!(h.get("abcd2222").unwrap().entry.id, b, "a prefix of fal's request id works");
    assert!(matches!(h.get("abcd"), Err(HistoryError::Ambiguous { .. })));
    assert!(matches!(h.get("ffffffffff99"), Err(HistoryError::NotFound(_))));
    let err = h.get("ab").unwrap_err();
    assert!(err.to_string().contains("at least 4 characters"), "{err}");
}

#[tokio::test]
async fn rm_keeps_media_another_request_uses() {
    let emu = Emulator::start(EmulatorConfig::fast(), 0).await.unwrap();
    let client = client_for(&emu);
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared.png");
    png(&shared, 40, 40, 1);
    let own = dir.path().join("own.png");
    png(&own, 40, 40, 2);
    let h = History::open(&dir.path().join("data")).unwrap();
    let mut ids = Vec::new();
    for images in [vec![&shared, &own], vec![&shared]] {
        let journal = h.journal();
        let job = JobRequest {
            naming: kontext::runner::OutputNaming::RequestId,
            endpoint: Endpoint::default(),
            input: input("share", images.iter().map(|p| p.display().to_string()).collect(), Some(5)),
            out_dir: dir.path().join("out"),
            data_uri_threshold: 1 << 20,
            follow: FollowMode::Poll,
            journal: Some(journal.clone()),
        };
        let (tx, _rx) = mpsc::unbounded_channel();
        run_job(&client, job, tx, CancellationToken::new()).await.unwrap();
        ids.push(journal.short_id());
    }
    let first = h.get(&ids[0]).unwrap();
    let second = h.get(&ids[1]).unwrap();
    assert_eq!(first.inputs[0].sha256, second.inputs[0].sha256, "one copy of the shared input");
    assert_eq!(first.inputs[0].path, second.inputs[0].path);
    let own_copy = first.inputs[1].path.clone();
    let first_output = first.outputs[0].path.clone();
    let shared_copy = first.inputs[0].path.clone();

    h.delete(&ids[0]).unwrap();
    assert!(matches!(h.get(&ids[0]), Err(HistoryError::NotFound(_))));
    assert!(!own_copy.exists(), "media only the removed request used are removed");
    assert!(shared_copy.exists(), "shared media are kept");
    if first_output != second.outputs[0].path {
        assert!(!first_output.exists());
    }
    assert!(h.get(&ids[1]).unwrap().inputs[0].path.exists());
    h.delete(&ids[1]).unwrap();
    assert!(!shared_copy.exists(), "gone with its last user");
    assert_eq!(h.count().unwrap(), 0);
}

#[test]
fn several_writers_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Separate connections, as separate processes have; each thread writes whole journals.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let path = dir.path().to_path_buf();
            std::thread::spawn(move || {
                let h = History::open(&path).unwrap();
                for i in 0..25 {
                    record(&h, &format!("thread {t} job {i}"), t * 100 + i, JobState::Completed, &format!("r-{t}-{i}"));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let h = History::open(dir.path()).unwrap();
    assert_eq!(h.count().unwrap(), 100);
    let all = h.list(&HistoryQuery { limit: 1000, ..HistoryQuery::default() }).unwrap();
    assert!(all.iter().all(|e| e.state == JobState::Completed));
    let mut seeds: Vec<u64> = all.iter().map(|e| e.seed.unwrap()).collect();
    seeds.sort();
    seeds.dedup();
    assert_eq!(seeds.len(), 100);
}

#[test]
fn a_running_request_of_a_live_process_cannot_be_removed() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path()).unwrap();
    let id = record(&h, "busy", 1, JobState::InProgress, "req-busy");
    let err = h.delete(&id).unwrap_err();
    assert!(err.to_string().contains("still running"), "{err}");
}

#[test]
fn the_ledger_follows_estimates_bills_and_deletions() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path()).unwrap();
    let spend = |h: &History| h.spend(None, kontext::history::SpendBy::Endpoint).unwrap();
    let estimate = |usd: f64| kontext::model::cost::Estimate {
        usd: Some(usd),
        units: Some(1.0),
        unit_price: Some(usd),
        unit: "image".into(),
        price_source: "test".into(),
        exact: true,
        note: None,
    };
    let mut ids = Vec::new();
    for usd in [0.04, 0.08] {
        let j = h.journal();
        j.set_estimate(estimate(usd));
        let inp = input("a ledger row", vec!["https://example.test/a.png".into()], None);
        j.record(JournalEntry::Pending { endpoint: &Endpoint::default(), input: &inp, out_dir: Path::new("/tmp") })
            .unwrap();
        ids.push((j.short_id(), j));
    }
    let s = spend(&h);
    assert_eq!((s.total_usd, s.rows[0].billed_usd, s.rows[0].unbilled_estimate_usd), (0.12, 0.0, 0.12));
    assert_eq!(h.spent_today().unwrap(), 0.12);
    // A bill replaces the estimate; a request fal never billed counts 0.
    ids[0].1.record_bill(Some(0.0), Some("a 5xx is never billed")).unwrap();
    let s = spend(&h);
    assert_eq!((s.total_usd, s.rows[0].requests), (0.08, 2));
    ids[1].1.record(JournalEntry::Failed { error: "stopped" }).unwrap();
    h.delete(&ids[1].0).unwrap();
    let s = spend(&h);
    assert_eq!((s.total_usd, s.rows[0].requests), (0.0, 1));
}
