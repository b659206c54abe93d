//! `kontext doctor`: checks what a request depends on — the config file, the key, where requests
//! would go, the data folder, the history store, the terminal's graphics — and says what to fix.
//! Nothing is sent to fal; the key is never shown.

use std::path::Path;

use clap::Args;

use super::{ConnectArgs, exit};
use crate::config::Config;
use crate::fal::{FalKey, KeySource};
use crate::sanitize::strip_controls;
use crate::setup::{Locations, check_key_format, connect_with_key, resolve_key};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Image protocol to check instead of the configured one.
    #[arg(long, env = "KONTEXT_GRAPHICS", value_name = "PROTOCOL")]
    pub graphics: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// One check's verdict.
enum Verdict {
    Ok(String),
    /// What is wrong, and what to do about it.
    Fail {
        problem: String,
        fix: String,
    },
    /// Not checked, because an earlier check failed.
    Skipped(String),
}

struct Check {
    name: &'static str,
    verdict: Verdict,
}

impl Check {
    fn ok(name: &'static str, text: impl Into<String>) -> Check {
        Check { name, verdict: Verdict::Ok(text.into()) }
    }
    fn fail(name: &'static str, problem: impl Into<String>, fix: impl Into<String>) -> Check {
        Check { name, verdict: Verdict::Fail { problem: problem.into(), fix: fix.into() } }
    }
    fn passed(&self) -> bool {
        !matches!(self.verdict, Verdict::Fail { .. })
    }
}

/// Prints `text` after a status column and the check's name; later lines line up under it.
fn print_row(status: &str, name: &str, text: &str) {
    for (i, line) in strip_controls(text).lines().enumerate() {
        let (status, name) = if i == 0 { (status, name) } else { ("", "") };
        println!("{status:<6}{name:<13}{line}");
    }
}

pub async fn doctor(args: DoctorArgs, locations: &Locations) -> u8 {
    let (config, config_check) = check_config(locations);
    let mut checks = vec![config_check];
    match &config {
        Some(config) => {
            let (key, check) = check_key(config, args.connect.offline);
            let key_passed = check.passed();
            checks.push(check);
            checks.push(if key_passed {
                check_destination(config, &args.connect, key).await
            } else {
                Check { name: "requests", verdict: Verdict::Skipped("not checked until the key is fixed".into()) }
            });
        }
        None => {
            for name in ["key", "requests"] {
                checks
                    .push(Check { name, verdict: Verdict::Skipped("not checked until the config file parses".into()) });
            }
        }
    }
    let config = config.unwrap_or_default();
    checks.push(check_data_dir(&locations.data_dir()));
    checks.push(check_history(&locations.data_dir()));
    checks.push(check_graphics(args.graphics.as_deref().or(config.graphics.as_deref())));

    let mut failed = 0;
    for c in &checks {
        match &c.verdict {
            Verdict::Ok(text) => print_row("ok", c.name, text),
            Verdict::Skipped(text) => print_row("--", c.name, text),
            Verdict::Fail { problem, fix } => {
                failed += 1;
                print_row("FAIL", c.name, problem);
                print_row("", "", &format!("fix: {fix}"));
            }
        }
    }
    if failed == 0 {
        println!("Everything kontext needs is in order.");
        exit::OK
    } else {
        println!("{failed} problem(s) found; fix them as shown above and run kontext doctor again.");
        exit::FAILURE
    }
}

fn check_config(locations: &Locations) -> (Option<Config>, Check) {
    match locations.load_config() {
        Ok((config, Some(path))) => (Some(config), Check::ok("config", format!("{} parses", path.display()))),
        Ok((config, None)) => (Some(config), Check::ok("config", "no config file; the defaults apply")),
        Err(e) => (
            None,
            Check::fail(
                "config",
                // The loader already redacts secret values in every error it quotes.
                e.to_string(),
                "correct the config file at the place named (config.example.toml shows every setting)",
            ),
        ),
    }
}

/// The key (for the next check) and the verdict on it.
fn check_key(config: &Config, offline: bool) -> (Option<(FalKey, KeySource)>, Check) {
    if offline {
        return (None, Check::ok("key", "--offline: the built-in emulator is used and no key is sent"));
    }
    match resolve_key(config) {
        Ok(None) => (
            None,
            Check::ok("key", "no fal key set: kontext runs on the built-in emulator (set FAL_KEY to use fal.ai)"),
        ),
        Ok(Some((key, source))) => {
            let check = match check_key_format(&key, source) {
                Ok(()) => Check::ok("key", format!("a key from {source}, in a form HTTP can carry (not shown)")),
                Err(e) => Check::fail(
                    "key",
                    e.to_string(),
                    format!("set the key again in {source}, as fal's dashboard shows it"),
                ),
            };
            (Some((key, source)), check)
        }
        Err(e) => (None, Check::fail("key", e.to_string(), "fix key_command in the config file, or set FAL_KEY")),
    }
}

/// Builds the connection as a request would (starting the built-in emulator if that is what a
/// request would use) and names the hosts; nothing is sent.
async fn check_destination(config: &Config, args: &ConnectArgs, key: Option<(FalKey, KeySource)>) -> Check {
    match connect_with_key(config, &args.options(), key).await {
        Ok(conn) => {
            let fal = conn.client.config();
            let text = match conn.target {
                // Its port is this check's own; a request starts another one.
                crate::setup::Target::BuiltInEmulator { .. } => conn.target.describe(),
                _ => format!(
                    "{}: queue {}, run {}, storage {}",
                    conn.target.describe(),
                    fal.queue_url.as_str().trim_end_matches('/'),
                    fal.run_url.as_str().trim_end_matches('/'),
                    fal.rest_url.as_str().trim_end_matches('/')
                ),
            };
            conn.shutdown().await;
            Check::ok("requests", text)
        }
        Err(e) => Check::fail(
            "requests",
            e.to_string(),
            "fix the host settings (--queue-url, FAL_QUEUE_URL or queue_url in the config) or the key",
        ),
    }
}

fn check_data_dir(dir: &Path) -> Check {
    match crate::setup::check_writable_dir(dir, "the data dir") {
        Ok(()) => Check::ok("data dir", format!("{} is writable", dir.display())),
        Err(problem) => Check::fail(
            "data dir",
            problem,
            "make it writable, or give another one with --data-dir or KONTEXT_DATA_DIR",
        ),
    }
}

/// The same refusal rules as opening the store (an emptied or foreign file), then SQLite's own
/// check of every page, read-only: checking never changes the file.
fn check_history(dir: &Path) -> Check {
    let db = dir.join(crate::history::DB_FILE);
    match crate::history::check_store_integrity(dir) {
        Ok(()) if !db.exists() => {
            Check::ok("history", format!("no history yet ({} is created on the first request)", db.display()))
        }
        Ok(()) => Check::ok("history", format!("{} passes SQLite's check", db.display())),
        Err(e) => Check::fail(
            "history",
            e.to_string(),
            format!(
                "move {} aside (do not delete it: it lists what you paid for), restore a backup if you have one, or use another --data-dir",
                db.display()
            ),
        ),
    }
}

fn check_graphics(requested: Option<&str>) -> Check {
    use crate::tui::graphics::{GraphicsMode, decision_without_probe};
    match requested.unwrap_or("auto").parse::<GraphicsMode>() {
        Ok(mode) => Check::ok("graphics", decision_without_probe(mode)),
        Err(e) => Check::fail("graphics", e.to_string(), "use --graphics auto|kitty|sixel|iterm2|halfblocks|none"),
    }
}
