//! A sweep at scale (issue 10): `kontext sweep` (the real binary) sending 128 requests (16
//! seeds × 8 guidance values) at --concurrency 8, 16, 32 and 64 to a `kontext emulator
//! --profile fast` in another process; then with fal-sized outputs (1 MP JPEG) at 8 and 64,
//! writing the contact sheet (--grid) at the end.
//!
//! Budgets: at 64 in flight the whole sweep process stays under 80 MB (peak RSS), and the CPU
//! it spends per request stays flat from 8 to 64 in flight (here: at 64 at most 1.25x the
//! figure at 8, the noise of a shared machine).
//!
//! Each sweep is a child process reaped with `wait4`, whose rusage gives its own user+system
//! CPU and peak RSS (other load on the machine does not count). Each level gets a fresh
//! emulator, history and output folder; the emulator says on Ctrl-C how many requests it had
//! in progress at once, which shows the concurrency was real (not queued behind a limit).
//! Median of RUNS sweeps per level (by CPU per request), after one warm-up sweep.
//!
//! Run: `cargo bench --bench sweep_scale` (prints a table; exits non-zero if a budget is missed).

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kontext");
const REQUESTS: usize = 128;
const LEVELS: [usize; 4] = [8, 16, 32, 64];
const RUNS: usize = 3;
const RSS_BUDGET_MB: f64 = 80.0;
/// CPU per request at 64 in flight over that at 8: "flat", with room for a noisy machine.
const FLAT_RATIO: f64 = 1.25;

struct Usage {
    wall: Duration,
    cpu: Duration,
    max_rss_mb: f64,
    /// What the emulator saw: requests in progress at once.
    max_in_progress: usize,
    submits: usize,
}

impl Usage {
    fn cpu_per_request(&self) -> Duration {
        self.cpu / REQUESTS as u32
    }
}

/// A `kontext emulator --profile fast` child and its base URL.
struct EmulatorProcess {
    child: Child,
    url: String,
}

impl EmulatorProcess {
    fn start(max_image_side: u32) -> EmulatorProcess {
        let mut child = Command::new(BIN)
            .args(["emulator", "--profile", "fast", "--port", "0", "--rng-seed", "1"])
            .args(["--max-image-side", &max_image_side.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kontext emulator");
        let mut url = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut url).unwrap();
        EmulatorProcess { child, url: url.trim().to_string() }
    }

    /// Stops it with Ctrl-C (SIGINT) and reads its summary: (submits, most in progress at once).
    fn stop(mut self) -> (usize, usize) {
        // SAFETY: a plain signal to our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let mut stderr = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        let _ = self.child.wait();
        // "fal emulator: 128 submits, at most 64 in progress at once"
        let line = stderr.lines().find(|l| l.contains("in progress at once")).unwrap_or_else(|| {
            panic!("the emulator gave no summary: {stderr}");
        });
        let numbers: Vec<usize> =
            line.split(|c: char| !c.is_ascii_digit()).filter(|w| !w.is_empty()).map(|w| w.parse().unwrap()).collect();
        (numbers[0], numbers[1])
    }
}

/// One sweep of REQUESTS seeds at `concurrency`, against a fresh emulator and history.
// The child is reaped by wait4 (which also yields its rusage), not Child::wait.
#[allow(clippy::zombie_processes)]
fn sweep(home: &Path, outputs: Outputs, concurrency: usize, run: usize) -> Usage {
    let dir = home.join(format!("{}-c{concurrency}-{run}", outputs.max_image_side));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(&config, "").unwrap();
    let emulator = EmulatorProcess::start(outputs.max_image_side);
    let started = Instant::now();
    let child = Command::new(BIN)
        .env("FAL_KEY", "k")
        .env("KONTEXT_CONFIG", &config)
        .env("KONTEXT_DATA_DIR", dir.join("data"))
        .args(["sweep", "-p", "add a hat", "-i", "https://v3.fal.media/files/tiger/a.webp", "--yes"])
        // 16 seeds × 8 guidance values = REQUESTS.
        .args(["--seeds", "1..16", "--guidance", "2,2.5,3,3.5,4,5,6,8", "--concurrency", &concurrency.to_string()])
        .args(["--queue-url", &emulator.url, "--out"])
        .arg(dir.join("out"))
        .args(if outputs.grid { vec!["--grid".into(), dir.join("grid.png")] } else { Vec::new() })
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kontext sweep");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, fully written by wait4 on success.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(r, pid, "wait4 failed");
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "kontext sweep failed: status {status}");
    let (submits, max_in_progress) = emulator.stop();
    let written = std::fs::read_dir(dir.join("out")).unwrap().count();
    assert_eq!(written, REQUESTS, "every request wrote its image");
    assert_eq!(outputs.grid, dir.join("grid.png").exists(), "the contact sheet was written");
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    Usage {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        // ru_maxrss is in KiB on Linux.
        max_rss_mb: usage.ru_maxrss as f64 / 1024.0,
        max_in_progress,
        submits,
    }
}

/// The images the emulator draws: the fast profile's small ones, or fal's ~1 MP.
#[derive(Clone, Copy)]
struct Outputs {
    name: &'static str,
    /// `kontext emulator --max-image-side` (0: none).
    max_image_side: u32,
    levels: &'static [usize],
    /// Also writes the contact sheet (`--grid`, 16 rows × 8 columns) after the sweep.
    grid: bool,
}

const SMALL: Outputs =
    Outputs { name: "256 px outputs (fast profile)", max_image_side: 256, levels: &LEVELS, grid: false };
/// Real outputs (1024x1024 JPEG): what the client downloads, verifies and writes at 64 in flight.
const MEGAPIXEL: Outputs =
    Outputs { name: "1 MP outputs (1024x1024 JPEG), then --grid", max_image_side: 0, levels: &[8, 64], grid: true };

/// Runs every level; returns (CPU per request at the first level, at the last, peak RSS at the last).
fn measure(home: &Path, outputs: Outputs) -> (Duration, Duration, f64) {
    println!("{}:", outputs.name);
    println!(
        "{:>11} {:>9} {:>10} {:>12} {:>14} {:>16} {:>8}",
        "concurrency", "wall", "CPU", "CPU/request", "peak RSS", "max in progress", "submits"
    );
    let mut medians = Vec::new();
    for &level in outputs.levels {
        let mut runs: Vec<Usage> = (0..RUNS).map(|r| sweep(home, outputs, level, r + 1)).collect();
        runs.sort_by_key(|u| u.cpu);
        let rss = runs.iter().map(|u| u.max_rss_mb).fold(0.0, f64::max);
        let seen = runs.iter().map(|u| u.max_in_progress).min().unwrap();
        let m = runs.swap_remove(RUNS / 2);
        println!(
            "{level:>11} {:>7.2} s {:>7.0} ms {:>9.2} ms {:>11.1} MB {:>16} {:>8}",
            m.wall.as_secs_f64(),
            m.cpu.as_secs_f64() * 1e3,
            m.cpu_per_request().as_secs_f64() * 1e3,
            rss,
            seen,
            m.submits
        );
        assert_eq!(m.submits, REQUESTS, "each request submitted once");
        // The client's in-flight requests include those downloading their output, which the
        // emulator counts as done: with 1 MP outputs one or two may be there at the peak.
        assert!(seen * 10 >= level * 9, "the emulator had only {seen} of {level} requests in progress at once");
        medians.push((m.cpu_per_request(), rss));
    }
    let (first, _) = medians[0];
    let (last, rss) = *medians.last().unwrap();
    (first, last, rss)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("sweep_scale: bench");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    sweep(home.path(), SMALL, 8, 0);
    println!(
        "kontext sweep, {REQUESTS} requests, emulator fast profile in another process, median of {RUNS} by CPU/request"
    );
    let (at_8, at_64, rss_64) = measure(home.path(), SMALL);
    let (big_at_8, big_at_64, big_rss_64) = measure(home.path(), MEGAPIXEL);
    let big_ratio = big_at_64.as_secs_f64() / big_at_8.as_secs_f64();
    let big_ok = big_ratio <= FLAT_RATIO && big_rss_64 < RSS_BUDGET_MB;
    println!(
        "1 MP: CPU/request at 64 / at 8 = {big_ratio:.2}; peak RSS at 64 = {big_rss_64:.1} MB = {:.2} of {RSS_BUDGET_MB} MB {}",
        big_rss_64 / RSS_BUDGET_MB,
        if big_ok { "ok" } else { "OVER BUDGET" }
    );
    let ratio = at_64.as_secs_f64() / at_8.as_secs_f64();
    let flat = ratio <= FLAT_RATIO;
    let small = rss_64 < RSS_BUDGET_MB;
    println!(
        "256 px: CPU/request at 64 / at 8 = {ratio:.2} (budget {FLAT_RATIO}) {}; peak RSS at 64 = {rss_64:.1} MB = {:.2} of {RSS_BUDGET_MB} MB {}",
        if flat { "ok" } else { "NOT FLAT" },
        rss_64 / RSS_BUDGET_MB,
        if small { "ok" } else { "OVER BUDGET" }
    );
    if !(flat && small && big_ok) {
        std::process::exit(1);
    }
}
