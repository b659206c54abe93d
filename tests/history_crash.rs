//! Crash tests: a real `kontext run` process is killed with SIGKILL while its request is queued,
//! in progress, and while an image downloads; `kontext resume` then finishes it. The emulator runs
//! in this test process (it outlives the killed client), so it can say how many submits it saw.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kontext::emulator::{Emulator, EmulatorConfig};
use kontext::history::{History, HistoryDetail, HistoryQuery, JobState};

mod support;

use support::kontext_with_key as kontext;

async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

/// Waits (bounded) until the request's history says `ready`.
async fn wait_for(data: &Path, what: &str, ready: impl Fn(&HistoryDetail) -> bool) -> HistoryDetail {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(h) = History::open(data)
            && let Ok(page) = h.list(&HistoryQuery { limit: 1, ..HistoryQuery::default() })
            && let Some(e) = page.first()
        {
            let d = h.get(&e.id).unwrap();
            if ready(&d) {
                return d;
            }
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(r) => r.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Runs a request, kills the process when `kill_when` holds, resumes, and checks that nothing
/// was lost or duplicated and that fal saw one submit.
async fn crash_and_resume(cfg: EmulatorConfig, what: &str, kill_when: impl Fn(&HistoryDetail) -> bool) {
    let emu = Emulator::start(cfg, 0).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let out = home.path().join("out");
    let mut run = kontext(home.path());
    run.args(["run", "-p", "a lighthouse in a storm", "-i", "https://example.test/a.png", "-n", "2"])
        .args(["--format", "png", "--queue-url", emu.base_url(), "--out"])
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = run.spawn().unwrap();

    let before = wait_for(&data, what, &kill_when).await;
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run was killed, not finished ({what})");
    let h = History::open(&data).unwrap();
    let id = before.entry.id.clone();
    let after_kill = h.get(&id).unwrap();
    assert!(!after_kill.entry.state.is_final(), "{what}: left unfinished, got {}", after_kill.entry.state);
    assert!(after_kill.entry.request_id.is_some(), "{what}: the request id was committed");

    let mut resume = kontext(home.path());
    resume.args(["resume", "--queue-url", emu.base_url()]);
    let o = output(resume).await;
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{what}: resume failed\n{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("{id}  completed")), "{what}: {stdout}");

    let d = h.get(&id).unwrap();
    assert_eq!(d.entry.state, JobState::Completed, "{what}");
    assert_eq!(d.outputs.len(), 2, "{what}");
    for m in &d.outputs {
        assert!(m.path.exists(), "{what}: media {}", m.path.display());
        let saved = m.saved_path.as_ref().expect("saved");
        let meta = kontext::runner::metadata::read(&std::fs::read(saved).unwrap()).unwrap().unwrap();
        assert_eq!(Some(meta.request_id), d.entry.request_id, "{what}");
    }
    let written = files_in(&out);
    assert_eq!(written.len(), 2, "{what}: exactly the two images, no temporary files: {written:?}");
    assert_eq!(h.count().unwrap(), 1, "{what}: one request in the history");
    assert_eq!(emu.submit_count(), 1, "{what}: fal saw exactly one submit");

    // A second resume finds nothing and sends nothing.
    let mut again = kontext(home.path());
    again.args(["resume", "--queue-url", emu.base_url()]);
    let o = output(again).await;
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing to resume"), "{what}");
    assert_eq!(emu.submit_count(), 1, "{what}");
    assert_eq!(files_in(&out), written, "{what}");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_queued_is_resumed() {
    let mut cfg = EmulatorConfig::fast();
    cfg.queue_delay = Duration::from_secs(3);
    crash_and_resume(cfg, "queued", |d| d.entry.state == JobState::Queued).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_in_progress_is_resumed() {
    let mut cfg = EmulatorConfig::fast();
    cfg.processing_time = Duration::from_secs(3);
    crash_and_resume(cfg, "in progress", |d| d.entry.state == JobState::InProgress).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_downloading_is_resumed() {
    let mut cfg = EmulatorConfig::fast();
    cfg.faults = "slow@files:2s".parse().unwrap();
    crash_and_resume(cfg, "downloading", |d| d.events.iter().any(|(_, e)| e.starts_with("downloading"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_processes_write_the_same_history_at_once() {
    let emu = Emulator::start(EmulatorConfig::fast(), 0).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..4)
        .map(|i| {
            let mut cmd = kontext(home.path());
            cmd.args(["run", "-p", &format!("process {i}"), "-i", "https://example.test/a.png", "--seed"])
                .arg(i.to_string())
                .args(["--queue-url", emu.base_url(), "--out"])
                .arg(home.path().join("out"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for child in children {
        let o = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let h = History::open(&home.path().join("data")).unwrap();
    let all = h.list(&HistoryQuery::default()).unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.iter().all(|e| e.state == JobState::Completed && e.num_outputs == 1), "{all:?}");
    let mut seeds: Vec<u64> = all.iter().map(|e| e.seed.unwrap()).collect();
    seeds.sort();
    assert_eq!(seeds, [0, 1, 2, 3]);
    assert_eq!(emu.submit_count(), 4);
    assert_eq!(files_in(&home.path().join("out")).len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_local_emulator_is_gone_is_settled_not_retried() {
    // The request runs on one emulator (standing in for a built-in one that died with its
    // process); the resume talks to another.
    let gone =
        Emulator::start(EmulatorConfig { processing_time: Duration::from_secs(30), ..EmulatorConfig::fast() }, 0)
            .await
            .unwrap();
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    kill_a_run_in_progress(home.path(), gone.base_url()).await;
    gone.shutdown().await;

    let now = Emulator::start(EmulatorConfig::fast(), 0).await.unwrap();
    let started = Instant::now();
    let mut resume = kontext(home.path());
    resume.args(["resume", "--queue-url", now.base_url()]);
    let out = output(resume).await;
    assert!(started.elapsed() < Duration::from_secs(10), "settled at once, not retried: {:?}", started.elapsed());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let h = History::open(&data).unwrap();
    let e = &h.list(&HistoryQuery::default()).unwrap()[0];
    assert_eq!(e.state, JobState::Failed);
    assert!(e.error.as_deref().unwrap_or("").contains("no longer running"), "{e:?}");
    assert_eq!(now.submit_count(), 0, "nothing was resubmitted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_that_cannot_reach_the_requests_host_leaves_it_alone() {
    let emu = Emulator::start(EmulatorConfig { processing_time: Duration::from_secs(2), ..EmulatorConfig::fast() }, 0)
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    let out = home.path().join("out");
    kill_a_run_in_progress(home.path(), emu.base_url()).await;

    // No key and no hosts: the resume runs on a built-in emulator, which cannot reach it.
    let mut keyless = kontext(home.path());
    keyless.env_remove("FAL_KEY").arg("resume");
    let o = output(keyless).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("elsewhere"), "{}", String::from_utf8_lossy(&o.stdout));
    let h = History::open(&data).unwrap();
    let e = &h.list(&HistoryQuery::default()).unwrap()[0];
    assert!(!e.state.is_final(), "left as it was, not failed: {e:?}");

    // With the right host and key it finishes.
    resume_finishes_the_one_request(home.path(), &emu, &out).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_image_download_leaves_the_request_resumable() {
    // The CDN fails every download of the first run (two attempts), then works.
    let cfg = EmulatorConfig { faults: "500@files:#2".parse().unwrap(), ..EmulatorConfig::fast() };
    let emu = Emulator::start(cfg, 0).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("config.toml"), "[network]\nretry_max_attempts = 2\npoll_interval_ms = 50\n")
        .unwrap();
    let out = home.path().join("out");
    let mut run = kontext(home.path());
    run.args(["run", "-p", "a fox", "-i", "https://example.test/a.png", "--queue-url", emu.base_url(), "--out"])
        .arg(&out);
    let o = output(run).await;
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("could not be downloaded"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let h = History::open(&home.path().join("data")).unwrap();
    let e = &h.list(&HistoryQuery::default()).unwrap()[0];
    assert!(!e.state.is_final(), "the paid result is not given up: {e:?}");

    resume_finishes_the_one_request(home.path(), &emu, &out).await;
}

/// `kontext resume` against `emu` completes the store's newest request: one image in `out`,
/// and still exactly one submit.
async fn resume_finishes_the_one_request(home: &Path, emu: &Emulator, out: &Path) {
    let mut resume = kontext(home);
    resume.args(["resume", "--queue-url", emu.base_url()]);
    let o = output(resume).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let h = History::open(&home.join("data")).unwrap();
    let e = &h.list(&HistoryQuery::default()).unwrap()[0];
    assert_eq!(e.state, JobState::Completed);
    assert_eq!(files_in(out).len(), 1);
    assert_eq!(emu.submit_count(), 1);
}

/// Starts `kontext run` against `queue_url` (images to `<home>/out`) and kills it with SIGKILL
/// once its request is in progress.
async fn kill_a_run_in_progress(home: &Path, queue_url: &str) {
    let mut run = kontext(home);
    run.args(["run", "-p", "a fox", "-i", "https://example.test/a.png", "--queue-url", queue_url, "--out"])
        .arg(home.join("out"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = run.spawn().unwrap();
    wait_for(&home.join("data"), "in progress", |d| d.entry.state == JobState::InProgress).await;
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Full-disk tests: Linux, where one process can lower another's RLIMIT_FSIZE (prlimit).
#[cfg(target_os = "linux")]
mod full_disk {
    use super::*;

    /// From outside, makes `pid`'s writes past `bytes` of any file fail with EFBIG, as on a full
    /// disk (RLIMIT_FSIZE; the child ignores SIGXFSZ, see `ignoring_sigxfsz`). Needs no mount and
    /// no privileges: a process may lower another same-user process's soft limit.
    fn fill_the_disk_of(pid: u32, bytes: u64) {
        let limit = libc::rlimit { rlim_cur: bytes as libc::rlim_t, rlim_max: libc::RLIM_INFINITY };
        // SAFETY: prlimit reads `limit` and writes nothing (old limit pointer is null).
        let rc = unsafe { libc::prlimit(pid as libc::pid_t, libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut()) };
        assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    }

    /// A write past RLIMIT_FSIZE then fails with EFBIG instead of killing the process.
    fn ignoring_sigxfsz(cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
    }

    /// The history's files can no longer grow (the images, smaller than the WAL, still can).
    fn history_size(data: &Path) -> u64 {
        let wal = data.join(format!("{}-wal", kontext::history::DB_FILE));
        std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
    }

    fn downloads(d: &HistoryDetail) -> usize {
        d.events.iter().filter(|(_, e)| e.starts_with("downloading")).count()
    }

    /// An emulator whose image downloads are slow, so a test can fill the disk while one runs.
    async fn slow_download_emulator() -> Emulator {
        let mut cfg = EmulatorConfig::fast();
        cfg.faults = "slow@files:2s".parse().unwrap();
        Emulator::start(cfg, 0).await.unwrap()
    }

    /// Starts `kontext <args>` and, once the history shows download number `nth` started, leaves it
    /// `room(data dir)` bytes per file (see `fill_the_disk_of`); returns that history state and
    /// how the process ended.
    async fn on_a_disk_that_fills(
        home: &Path,
        args: &[&str],
        nth: usize,
        room: fn(&Path) -> u64,
    ) -> (HistoryDetail, Output) {
        let data = home.join("data");
        let mut cmd = kontext(home);
        cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        ignoring_sigxfsz(&mut cmd);
        let child = cmd.spawn().unwrap();
        let before = wait_for(&data, "the download", |d| downloads(d) == nth).await;
        fill_the_disk_of(child.id(), room(&data));
        let o = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
        (before, o)
    }

    /// With room again, `kontext resume` completes the request and records it; fal saw one submit.
    async fn resume_records(home: &Path, emu: &Emulator, id: &str) {
        let mut resume = kontext(home);
        resume.args(["resume", "--queue-url", emu.base_url()]);
        let o = output(resume).await;
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
        assert!(stdout.contains(&format!("{id}  completed")), "{stdout}");
        let d = History::open(&home.join("data")).unwrap().get(id).unwrap();
        assert_eq!(d.entry.state, JobState::Completed);
        assert_eq!(d.outputs.len(), 1);
        assert!(d.outputs[0].path.exists());
        assert_eq!(files_in(&home.join("out")).len(), 1, "one image, no temporary leftovers");
        assert_eq!(emu.submit_count(), 1, "nothing was submitted again");
    }

    /// The disk fills after fal accepted the request: the run still writes the image, but says
    /// plainly that the history could not record it (request id, how to recover) and exits 5, not 0;
    /// a resume on the still-full disk does not say "completed"; once there is room a resume records
    /// it, and fal saw one submit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_disk_that_fills_after_the_submit_is_reported_and_resume_records_it_later() {
        let emu = slow_download_emulator().await;
        let home = tempfile::tempdir().unwrap();
        let (h, url) = (home.path(), emu.base_url().to_string());
        let out = h.join("out").display().to_string();
        let run = ["run", "-p", "a lighthouse", "-i", "https://example.test/a.png", "--queue-url", &url, "--out", &out];
        let (before, o) = on_a_disk_that_fills(h, &run, 1, history_size).await;
        let stderr = String::from_utf8_lossy(&o.stderr);
        let request_id = before.entry.request_id.clone().unwrap();
        assert_eq!(o.status.code(), Some(5), "not a quiet 0: {stderr}");
        assert!(stderr.contains(&format!("could not record request {request_id}")), "{stderr}");
        assert!(stderr.contains("kontext resume") && stderr.contains("its images were written"), "{stderr}");
        let written = files_in(&h.join("out"));
        assert_eq!(written.len(), 1, "the paid image is delivered: {written:?}");
        image::open(&written[0]).expect("a whole image");
        let history = History::open(&h.join("data")).unwrap();
        assert_ne!(history.get(&before.entry.id).unwrap().entry.state, JobState::Completed, "never claimed");

        // Still full while resuming: not "completed".
        let (_, o) = on_a_disk_that_fills(h, &["resume", "--queue-url", &url], 2, history_size).await;
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(5), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
        assert!(!stdout.contains(&format!("{}  completed", before.entry.id)), "{stdout}");
        assert!(stdout.contains("unrecorded") && stdout.contains("kontext resume"), "{stdout}");
        assert_ne!(history.get(&before.entry.id).unwrap().entry.state, JobState::Completed);

        resume_records(h, &emu, &before.entry.id).await;
        assert_eq!(files_in(&h.join("out")), written, "the same file");
        emu.shutdown().await;
    }

    /// The disk is full for the images too: the run fails (exit 1) saying that fal has the request
    /// and that `kontext resume` fetches it again; it does, with one submit in all.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_disk_too_full_for_the_images_leaves_the_request_resumable_and_says_so() {
        let emu = slow_download_emulator().await;
        let home = tempfile::tempdir().unwrap();
        let (h, url) = (home.path(), emu.base_url().to_string());
        let out = h.join("out").display().to_string();
        let run = ["run", "-p", "a lighthouse", "-i", "https://example.test/a.png", "--queue-url", &url, "--out", &out];
        let (before, o) = on_a_disk_that_fills(h, &run, 1, |_| 0).await;
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("could not write") && stderr.contains("kontext resume"), "{stderr}");
        assert!(files_in(&h.join("out")).is_empty(), "no half-written image: {:?}", files_in(&h.join("out")));
        resume_records(h, &emu, &before.entry.id).await;
        emu.shutdown().await;
    }
}
