//! Command-line front end: `kontext run` (one request, headless) and `kontext emulator`.

mod emulator;
mod history;
mod inspect;
mod progress;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::setup::Locations;

/// Exit codes of `kontext run` (documented in README.md).
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const INVALID_INPUT: u8 = 2;
    pub const FAL_ERROR: u8 = 3;
    pub const NETWORK: u8 = 4;
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug, Parser)]
#[command(name = "kontext", version, about = "A terminal studio for fal.ai's FLUX.1 Kontext [pro] multi-image editing")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Folder for history, logs and request records.
    #[arg(long, global = true, env = "KONTEXT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Config file (default: the platform config folder's kontext/config.toml).
    #[arg(long, global = true, env = "KONTEXT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl GlobalArgs {
    pub fn locations(&self) -> Locations {
        Locations { data_dir: self.data_dir.clone(), config: self.config.clone() }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Submit one request, follow it, and write the images.
    Run(Box<run::RunArgs>),
    /// Serve a local emulator of fal's API (queue, run and storage routes) until stopped.
    Emulator(emulator::EmulatorArgs),
    /// Past requests: list, search, show, re-run, export, remove.
    History(history::HistoryArgs),
    /// Finish every request a stopped kontext left unfinished (never resubmits).
    Resume(history::ResumeArgs),
    /// Print the request parameters embedded in an image kontext wrote.
    Inspect(inspect::InspectArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let locations = cli.global.locations();
    let _log_guard = crate::setup::init_logging(&locations.data_dir());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kontext: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Some(Command::Run(args)) => run::run(*args, &locations).await,
            Some(Command::Emulator(args)) => emulator::serve(args).await,
            Some(Command::History(args)) => history::history(args, &locations).await,
            Some(Command::Resume(args)) => history::resume(args, &locations).await,
            Some(Command::Inspect(args)) => inspect::inspect(args),
            None => {
                eprintln!(
                    "kontext: the interactive studio is not built yet; use `kontext run --help` for the headless command"
                );
                exit::INVALID_INPUT
            }
        }
    });
    // Don't wait for stray background tasks (e.g. a stalled download) on the way out.
    runtime.shutdown_background();
    ExitCode::from(code)
}
