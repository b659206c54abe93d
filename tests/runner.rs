//! The job runner against the emulator: inputs inlined or uploaded by size, events in order,
//! outputs verified and named from the request id, cancellation before and after submit.

use std::path::Path;
use std::time::Duration;

use kontext::emulator::{Emulator, EmulatorConfig, Route};
use kontext::fal::{CancelOutcome, FalClient, FalConfig, FalKey, FollowMode};
use kontext::model::{Draft, Endpoint, MAX_INPUT_IMAGES};
use kontext::runner::{JobError, JobEvent, JobRequest, run_job};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn client_for(emu: &Emulator) -> FalClient {
    let mut cfg = FalConfig::single_host(emu.base_url().parse().unwrap(), FalKey::new("k"));
    cfg.poll_interval = Duration::from_millis(20);
    FalClient::new(cfg).unwrap()
}

fn png(path: &Path, w: u32, h: u32) -> u64 {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 7 % 256) as u8, (y * 13 % 256) as u8, ((x ^ y) % 256) as u8])
    });
    img.save(path).unwrap();
    std::fs::metadata(path).unwrap().len()
}

fn job(images: Vec<String>, out: &Path, threshold: u64) -> JobRequest {
    let draft = Draft { prompt: "swap the colours".into(), images, ..Draft::default() }.with("num_images", "2");
    JobRequest {
        naming: kontext::runner::OutputNaming::RequestId,
        endpoint: Endpoint::default(),
        input: draft.validate(MAX_INPUT_IMAGES).unwrap(),
        out_dir: out.to_path_buf(),
        data_uri_threshold: threshold,
        follow: FollowMode::Stream,
        journal: None,
    }
}

#[tokio::test]
async fn small_files_go_inline_large_ones_are_uploaded_and_outputs_are_verified() {
    let emu = Emulator::start(EmulatorConfig::fast(), 0).await.unwrap();
    let client = client_for(&emu);
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.png");
    let large = dir.path().join("large.png");
    let small_len = png(&small, 8, 8);
    let large_len = png(&large, 200, 200);
    assert!(small_len < large_len);

    let (tx, mut rx) = mpsc::unbounded_channel();
    let request = job(vec![small.display().to_string(), large.display().to_string()], dir.path(), small_len);
    let outcome = run_job(&client, request, tx, CancellationToken::new()).await.unwrap();

    assert!(outcome.sent.image_urls()[0].starts_with("data:image/png;base64,"));
    assert!(outcome.sent.image_urls()[1].starts_with(emu.cdn_base_url()), "{}", outcome.sent.image_urls()[1]);
    assert_eq!(emu.journal().iter().filter(|r| r.route == Route::UploadPut).count(), 1);

    let id = &outcome.handle.request_id;
    assert_eq!(outcome.files.len(), 2);
    for (i, f) in outcome.files.iter().enumerate() {
        assert_eq!(f.path, dir.path().join(format!("{id}-{i}.jpg")));
        let img = image::open(&f.path).unwrap();
        assert_eq!((img.width(), img.height()), (f.width, f.height));
    }

    let mut events = Vec::new();
    while let Ok(e) = rx.try_recv() {
        events.push(e);
    }
    let kind = |e: &JobEvent| match e {
        JobEvent::Uploading { .. } => "uploading",
        JobEvent::Uploaded { .. } => "uploaded",
        JobEvent::Submitted { .. } => "submitted",
        JobEvent::Queued { .. } => "queued",
        JobEvent::InProgress => "in-progress",
        JobEvent::Logs(_) => "logs",
        JobEvent::Note(_) => "note",
        JobEvent::Completed => "completed",
        JobEvent::Downloading { .. } => "downloading",
        JobEvent::Saved { .. } => "saved",
        JobEvent::CancelRequested { .. } => "cancel",
    };
    let mut order: Vec<&str> = events.iter().map(kind).collect();
    order.dedup();
    let pos = |k: &str| order.iter().position(|o| *o == k).unwrap_or_else(|| panic!("no {k} in {order:?}"));
    assert!(pos("uploading") < pos("uploaded"));
    assert!(pos("uploaded") < pos("submitted"));
    assert!(pos("submitted") < pos("in-progress"));
    assert!(pos("in-progress") < pos("completed"));
    assert!(pos("completed") < pos("saved"));

    // Each file carries the request's parameters.
    let bytes = std::fs::read(&outcome.files[1].path).unwrap();
    let meta = kontext::runner::metadata::read(&bytes).unwrap().expect("embedded parameters");
    assert_eq!((meta.request_id.as_str(), meta.index, meta.prompt.as_str()), (id.as_str(), 1, "swap the colours"));
    assert_eq!(meta.seed, Some(outcome.output.seed));
}

#[tokio::test]
async fn cancelling_before_the_submit_sends_nothing() {
    let emu = Emulator::start(EmulatorConfig::fast(), 0).await.unwrap();
    let client = client_for(&emu);
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (tx, _rx) = mpsc::unbounded_channel();
    let err =
        run_job(&client, job(vec!["https://v3.fal.media/a.png".into()], dir.path(), 0), tx, cancel).await.unwrap_err();
    assert!(matches!(err, JobError::Cancelled { handle: None, .. }), "{err:?}");
    assert_eq!(emu.submit_count(), 0);
}

#[tokio::test]
async fn cancelling_after_the_submit_asks_fal_and_reports_it() {
    let config = EmulatorConfig { processing_time: Duration::from_secs(5), ..EmulatorConfig::fast() };
    let emu = Emulator::start(config, 0).await.unwrap();
    let client = client_for(&emu);
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let request = job(vec!["https://v3.fal.media/a.png".into()], dir.path(), 0);
    let task = tokio::spawn({
        let cancel = cancel.clone();
        async move { run_job(&client, request, tx, cancel).await }
    });
    while let Some(e) = rx.recv().await {
        if e == JobEvent::InProgress {
            cancel.cancel();
            break;
        }
    }
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, JobError::Cancelled { handle: Some(_), outcome: Some(CancelOutcome::Requested) }), "{err:?}");
    assert_eq!(emu.journal().iter().filter(|r| r.route == Route::Cancel).count(), 1);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().filter(|e| e.as_ref().unwrap().path().is_file()).count(), 0);
}

#[tokio::test]
async fn more_images_than_asked_for_are_not_kept_and_the_user_is_told() {
    let mut cfg = EmulatorConfig::fast();
    cfg.faults = "extra-images:1".parse().unwrap();
    let emu = Emulator::start(cfg, 0).await.unwrap();
    let client = client_for(&emu);
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let request = job(vec!["https://v3.fal.media/files/a.png".into()], dir.path(), 0);
    let outcome = run_job(&client, request, tx, CancellationToken::new()).await.unwrap();
    assert_eq!(outcome.raw_result["images"].as_array().unwrap().len(), 4, "fal listed 4 for 2 asked");
    assert_eq!(outcome.files.len(), 2);
    assert_eq!(outcome.output.images.len(), 2);
    let mut notes = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let JobEvent::Note(n) = e {
            notes.push(n);
        }
    }
    assert!(notes.iter().any(|n| n.contains("fal returned 4 images where 2 were asked for")), "{notes:?}");
    let files = std::fs::read_dir(dir.path()).unwrap().filter(|e| e.as_ref().unwrap().path().is_file()).count();
    assert_eq!(files, 2, "only what was asked for is written");
    assert_eq!(
        emu.journal().iter().filter(|r| r.route == Route::FileGet).count(),
        2,
        "the extra images are not fetched"
    );
}

/// Runs one job under `faults` with a history, and returns the state it was left in.
async fn state_after(faults: &str) -> (kontext::history::JobState, Result<(), JobError>, tempfile::TempDir) {
    let mut cfg = EmulatorConfig::fast();
    cfg.faults = faults.parse().unwrap();
    let emu = Emulator::start(cfg, 0).await.unwrap();
    let mut fal = client_for(&emu).config().clone();
    fal.retry = kontext::fal::RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(10),
    };
    let client = FalClient::new(fal).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let h = kontext::history::History::open(&dir.path().join("data")).unwrap();
    let journal = h.journal();
    let mut request = job(vec!["https://v3.fal.media/files/a.png".into()], &dir.path().join("out"), 0);
    request.journal = Some(journal.clone());
    request.follow = FollowMode::Poll;
    let (tx, _rx) = mpsc::unbounded_channel();
    let r = run_job(&client, request, tx, CancellationToken::new()).await.map(|_| ());
    let state = h.get(&journal.short_id()).unwrap().entry.state;
    (state, r, dir)
}

#[tokio::test]
async fn once_accepted_only_fals_verdict_fails_a_request() {
    use kontext::history::JobState;
    // Not fal's verdict: the request stays unfinished (resumable).
    for faults in [
        "not-ready:#5",
        "truncated:#5",
        "not-json:#5",
        "short-body@result:#5",
        "oversize@result:#1",
        "502@result:#5",
        "500@result:#5",
        "503@status:#5",
        "reset@status:#5",
        "502@status:#5",
    ] {
        let (state, r, _dir) = state_after(faults).await;
        let err = r.unwrap_err();
        assert!(err.is_resumable(), "{faults}: {err}");
        assert!(matches!(state, JobState::Queued | JobState::InProgress), "{faults}: left {state:?} ({err})");
    }
    // fal's verdict: the run failed (COMPLETED with an error).
    let (state, r, _dir) = state_after("fail:1").await;
    assert!(!r.unwrap_err().is_resumable());
    assert_eq!(state, JobState::Failed);
}

/// A journal whose `Submitted` write fails the first `failures` times (a disk that is full for a
/// moment); everything else is kept in memory.
#[derive(Debug, Default)]
struct FlakyJournal {
    failures: std::sync::atomic::AtomicUsize,
}

impl kontext::runner::JobJournal for FlakyJournal {
    fn record(&self, entry: kontext::runner::JournalEntry<'_>) -> Result<(), String> {
        use std::sync::atomic::Ordering;
        if matches!(entry, kontext::runner::JournalEntry::Submitted { .. })
            && self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
        {
            return Err("database or disk is full".into());
        }
        Ok(())
    }
}

#[tokio::test]
async fn an_unrecorded_request_id_is_retried_at_the_end_and_reported_when_still_lost() {
    let emu = Emulator::start(EmulatorConfig::fast(), 0).await.unwrap();
    let client = client_for(&emu);
    let dir = tempfile::tempdir().unwrap();
    for (failures, lost) in [(1, false), (2, true)] {
        let journal = std::sync::Arc::new(FlakyJournal { failures: failures.into() });
        let mut request = job(vec!["https://example.test/a.png".into()], dir.path(), 0);
        request.journal = Some(journal);
        let (tx, _rx) = mpsc::unbounded_channel();
        let outcome = run_job(&client, request, tx, CancellationToken::new()).await.unwrap();
        assert_eq!(outcome.files.len(), 2, "the images are saved either way");
        let ids: Vec<&str> = outcome.unrecorded.iter().map(|u| u.what.as_str()).collect();
        if lost {
            assert_eq!(ids, [kontext::runner::REQUEST_ID_STEP], "{:?}", outcome.unrecorded);
            assert!(outcome.unrecorded[0].error.contains("disk is full"));
        } else {
            assert!(ids.is_empty(), "the second try recorded it: {:?}", outcome.unrecorded);
        }
    }
}
