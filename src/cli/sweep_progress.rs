//! The progress of a running sweep on stderr: one live line on a terminal (done / running /
//! queued / failed, spend so far, a shared rate-limit wait), and plain lines otherwise (one
//! per finished request, one when fal rate-limits the sweep).

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::fal::RateGate;
use crate::sanitize::one_line;

pub struct SweepProgress {
    tty: bool,
    total: usize,
    counts: Mutex<Counts>,
    gate: Arc<RateGate>,
}

#[derive(Default)]
struct Counts {
    running: usize,
    done: usize,
    failed: usize,
    spent_usd: f64,
}

/// How a request of the sweep ended, as the progress shows it.
pub enum Ended {
    Done { files: Vec<String>, usd: Option<f64> },
    Failed(String),
}

impl SweepProgress {
    pub fn new(total: usize, gate: Arc<RateGate>) -> Arc<SweepProgress> {
        Arc::new(SweepProgress { tty: std::io::stderr().is_terminal(), total, counts: Mutex::default(), gate })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn started(&self) {
        self.counts().running += 1;
    }

    pub fn ended(&self, label: &str, ended: Ended) {
        let mut c = self.counts();
        c.running = c.running.saturating_sub(1);
        let what = match ended {
            Ended::Done { files, usd } => {
                c.done += 1;
                c.spent_usd += usd.unwrap_or(0.0);
                format!("done    {}", one_line(&files.join("  ")))
            }
            Ended::Failed(error) => {
                c.failed += 1;
                format!("failed  {}", one_line(&error))
            }
        };
        let n = c.done + c.failed;
        drop(c);
        let clear = if self.tty { "\r\x1b[2K" } else { "" };
        eprintln!("{clear}kontext: [{n}/{}] {}  {what}", self.total, one_line(label));
    }

    /// `6 requests: 3 done · 2 running · 1 queued · 0 failed · $0.1200 spent`.
    pub fn line(&self) -> String {
        let c = self.counts();
        let queued = self.total.saturating_sub(c.done + c.failed + c.running);
        let mut line = format!(
            "{} requests: {} done · {} running · {queued} queued · {} failed · ${:.4} spent",
            self.total, c.done, c.running, c.failed, c.spent_usd
        );
        if let Some(wait) = self.gate.closed_for() {
            line.push_str(&format!(" · rate-limited, all wait {:.1} s", wait.as_secs_f64()));
        }
        line
    }

    /// Until `stop`: on a terminal, redraws the live line; otherwise says once per 429 that the
    /// whole sweep waits.
    pub async fn render(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut was_closed = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let closed = self.gate.closed_for();
            if self.tty {
                eprint!("\r\x1b[2Ksweep {}", self.line());
                let _ = std::io::stderr().flush();
            } else if let Some(wait) = closed
                && !was_closed
            {
                eprintln!("kontext: fal rate-limits this key: the whole sweep waits {:.1} s", wait.as_secs_f64());
            }
            was_closed = closed.is_some();
        }
        if self.tty {
            eprintln!("\r\x1b[2Ksweep {}", self.line());
        }
    }
}
