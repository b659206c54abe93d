//! CPU time and peak memory of one `kontext run` (one image, fast profile).
//!
//! Budget (issue: foundation): under 50 ms of CPU and under 40 MB peak RSS for a one-image
//! request. Measured per child process with `wait4`'s rusage, so nothing else on the machine
//! counts. Two cases: against `kontext emulator` in another process (the client's own cost), and
//! with the built-in emulator in the same process (the offline default, which also pays for
//! synthesising the image).
//!
//! Run: `cargo bench --bench run_cost` (prints a table; exits non-zero if a budget is missed).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_kontext");
const RUNS: usize = 15;
const CPU_BUDGET: Duration = Duration::from_millis(50);
const RSS_BUDGET_MB: f64 = 40.0;

struct Usage {
    cpu: Duration,
    max_rss_mb: f64,
}

/// Runs the command to completion and returns its own CPU time and peak RSS.
// The child is reaped by wait4 (which also yields its rusage), not Child::wait.
#[allow(clippy::zombie_processes)]
fn measure(cmd: &mut Command) -> Usage {
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).stdin(Stdio::null()).spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, fully written by wait4 on success.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "kontext run failed: status {status}");
    let tv = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    // ru_maxrss is in KiB on Linux.
    Usage { cpu: tv(usage.ru_utime) + tv(usage.ru_stime), max_rss_mb: usage.ru_maxrss as f64 / 1024.0 }
}

fn summarize(name: &str, samples: &mut [Usage]) -> bool {
    samples.sort_by_key(|u| u.cpu);
    let cpu_median = samples[samples.len() / 2].cpu;
    let cpu_max = samples.last().unwrap().cpu;
    let rss_max = samples.iter().map(|u| u.max_rss_mb).fold(0.0, f64::max);
    let ok = cpu_median < CPU_BUDGET && rss_max < RSS_BUDGET_MB;
    println!(
        "{name:<34} cpu median {:>6.1} ms (max {:>6.1})  = {:.2} of budget   peak RSS {:>5.1} MB = {:.2} of budget  {}",
        cpu_median.as_secs_f64() * 1e3,
        cpu_max.as_secs_f64() * 1e3,
        cpu_median.as_secs_f64() / CPU_BUDGET.as_secs_f64(),
        rss_max,
        rss_max / RSS_BUDGET_MB,
        if ok { "ok" } else { "OVER BUDGET" }
    );
    ok
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("run_cost: bench");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.toml");
    std::fs::write(&config, "").unwrap();

    let mut emulator = Command::new(BIN)
        .args(["emulator", "--profile", "fast", "--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut url = String::new();
    BufReader::new(emulator.stdout.take().unwrap()).read_line(&mut url).unwrap();
    let url = url.trim().to_string();

    let base = |out: &str| {
        let mut c = Command::new(BIN);
        c.env_remove("FAL_KEY")
            .env("KONTEXT_CONFIG", &config)
            .env("KONTEXT_DATA_DIR", home.path().join("data"))
            .env("KONTEXT_EMULATOR_PROFILE", "fast")
            .args(["run", "-p", "add a hat", "-i", "https://v3.fal.media/files/tiger/a.webp", "--out"])
            .arg(home.path().join(out));
        c
    };

    // Warm the page cache and the emulator.
    measure(base("warm").env("FAL_KEY", "k").args(["--queue-url", &url]));

    let mut separate: Vec<Usage> =
        (0..RUNS).map(|_| measure(base("out").env("FAL_KEY", "k").args(["--queue-url", &url]))).collect();
    let mut built_in: Vec<Usage> = (0..RUNS).map(|_| measure(&mut base("out-offline"))).collect();
    let _ = emulator.kill();
    let _ = emulator.wait();

    println!("kontext run, one image, fast profile, {RUNS} runs each (budget: {CPU_BUDGET:?} CPU, {RSS_BUDGET_MB} MB)");
    let a = summarize("against `kontext emulator` process", &mut separate);
    let b = summarize("with the built-in emulator", &mut built_in);
    if !(a && b) {
        std::process::exit(1);
    }
}
