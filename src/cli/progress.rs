//! Live progress of a headless run on stderr: one rewritten status line on a terminal, plain
//! lines otherwise (logs, CI, pipes). Server text is sanitised before it is printed.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;

use crate::runner::JobEvent;
use crate::sanitize::one_line;

pub struct Progress {
    tty: bool,
    started: Instant,
    state: String,
    last_log: String,
}

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

impl Progress {
    pub fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
            state: "starting".into(),
            last_log: String::new(),
        }
    }

    /// Renders events until the job's sender is dropped.
    pub async fn render(mut self, mut rx: UnboundedReceiver<JobEvent>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut frame = 0usize;
        loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Some(e) => self.on_event(e),
                    None => break,
                },
                _ = tick.tick(), if self.tty => {
                    frame += 1;
                    self.redraw(frame);
                }
            }
        }
        if self.tty {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }

    fn line(&self, text: &str) {
        // Ids, names and messages may come from a server: never let them drive the terminal.
        let text = crate::sanitize::strip_controls(text);
        if self.tty {
            eprint!("\r\x1b[2K{text}\n");
        } else {
            eprintln!("{text}");
        }
    }

    fn redraw(&self, frame: usize) {
        let secs = self.started.elapsed().as_secs_f64();
        let spinner = SPINNER[frame % SPINNER.len()];
        let mut text = format!("{spinner} {} {secs:.1}s", self.state);
        if !self.last_log.is_empty() {
            text.push_str(" · ");
            text.push_str(&self.last_log);
        }
        let width = crossterm_width().saturating_sub(1);
        let clipped: String = text.chars().take(width).collect();
        eprint!("\r\x1b[2K{clipped}");
        let _ = std::io::stderr().flush();
    }

    fn set_state(&mut self, state: String) {
        let state = crate::sanitize::one_line(&state);
        if !self.tty {
            eprintln!("{state}");
        }
        self.state = state;
    }

    fn on_event(&mut self, event: JobEvent) {
        match event {
            JobEvent::Uploading { index, name, bytes } => {
                self.set_state(format!("uploading image {} ({}, {} KB)", index + 1, one_line(&name), bytes / 1024))
            }
            JobEvent::Uploaded { index, .. } => self.set_state(format!("uploaded image {}", index + 1)),
            JobEvent::Submitted { handle } => {
                self.line(&format!("submitted: request {}", handle.request_id));
                self.state = "submitted".into();
            }
            JobEvent::Queued { position } => self.set_state(match position {
                Some(p) => format!("queued: position {p}"),
                None => "queued".into(),
            }),
            JobEvent::InProgress => self.set_state("in progress".into()),
            JobEvent::Logs(logs) => {
                for l in logs {
                    let msg = one_line(&l.message);
                    self.line(&format!("  log: {msg}"));
                    self.last_log = msg;
                }
            }
            JobEvent::Note(n) => self.line(&format!("note: {}", one_line(&n))),
            JobEvent::Completed => self.set_state("completed; fetching the result".into()),
            JobEvent::Downloading { index } => self.set_state(format!("downloading image {}", index + 1)),
            JobEvent::Saved { index, path } => self.line(&format!("saved image {}: {}", index + 1, path.display())),
            JobEvent::CancelRequested { outcome } => self.line(&format!(
                "cancel: {}",
                match outcome {
                    Some(crate::fal::CancelOutcome::Requested) => "requested",
                    Some(crate::fal::CancelOutcome::AlreadyCompleted) => "too late, the request had completed",
                    Some(crate::fal::CancelOutcome::NotFound) => "fal does not know the request",
                    None => "could not reach fal to cancel",
                }
            )),
        }
    }
}

fn crossterm_width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(100)
}
