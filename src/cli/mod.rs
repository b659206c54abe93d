//! Command-line front end: `kontext run` (one request, headless) and `kontext emulator`.

mod cost;
mod doctor;
mod emulator;
mod history;
mod inspect;
mod models;
mod progress;
mod run;
mod spend;
mod sweep;
mod sweep_continue;
mod sweep_progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::setup::Locations;

pub use crate::exit;

#[derive(Debug, Parser)]
#[command(name = "kontext", version, about = "A terminal studio for fal.ai's FLUX.1 Kontext [pro] multi-image editing")]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(flatten)]
    pub studio: StudioArgs,
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

/// Options of the interactive studio (`kontext` with no subcommand).
#[derive(Debug, Args, Clone)]
pub struct StudioArgs {
    /// Image protocol: auto, kitty, sixel, iterm2, halfblocks or none.
    #[arg(long, env = "KONTEXT_GRAPHICS", value_name = "PROTOCOL")]
    pub graphics: Option<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Whom to talk to: the flags every command that reaches fal (or the emulator) shares.
#[derive(Debug, Args, Clone)]
pub struct ConnectArgs {
    /// Use the built-in emulator even if a fal key is configured.
    #[arg(long)]
    pub offline: bool,
    /// Queue host base URL.
    #[arg(long, env = "FAL_QUEUE_URL", value_name = "URL")]
    pub queue_url: Option<String>,
    /// REST (storage) host base URL.
    #[arg(long, env = "FAL_REST_URL", value_name = "URL")]
    pub rest_url: Option<String>,
    /// Synchronous-run host base URL.
    #[arg(long, env = "FAL_RUN_URL", value_name = "URL")]
    pub run_url: Option<String>,
    /// fal's platform API base URL (prices, model schemas; default https://api.fal.ai).
    #[arg(long, env = "FAL_API_URL", value_name = "URL")]
    pub api_url: Option<String>,
    /// Timing of the built-in emulator: fast or realistic.
    #[arg(long, env = "KONTEXT_EMULATOR_PROFILE", value_name = "PROFILE")]
    pub emulator_profile: Option<String>,
}

impl ConnectArgs {
    pub fn options(&self) -> crate::setup::ConnectOptions {
        crate::setup::ConnectOptions {
            offline: self.offline,
            queue_url: self.queue_url.clone(),
            run_url: self.run_url.clone(),
            rest_url: self.rest_url.clone(),
            api_url: self.api_url.clone(),
            emulator_profile: self.emulator_profile.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Submit one request, follow it, and write the images.
    Run(Box<run::RunArgs>),
    /// Many requests at once: the cartesian product of seeds, guidance, prompts, endpoints, fields.
    Sweep(Box<sweep::SweepArgs>),
    /// Serve a local emulator of fal's API (queue, run and storage routes) until stopped.
    Emulator(emulator::EmulatorArgs),
    /// Past requests: list, search, show, re-run, export, remove.
    History(history::HistoryArgs),
    /// Finish every request a stopped kontext left unfinished (never resubmits).
    Resume(history::ResumeArgs),
    /// Print the request parameters embedded in an image kontext wrote.
    Inspect(inspect::InspectArgs),
    /// Check the config, key, hosts, data folder, history and graphics, and say what to fix.
    Doctor(doctor::DoctorArgs),
    /// The endpoints kontext drives, their fields and prices; `models add ID` fetches one.
    Models(models::ModelsArgs),
    /// What the requests in the history cost, by day or endpoint.
    Spend(spend::SpendArgs),
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
            Some(Command::Sweep(args)) => sweep::sweep(*args, &locations).await,
            Some(Command::Emulator(args)) => emulator::serve(args).await,
            Some(Command::History(args)) => history::history(args, &locations).await,
            Some(Command::Resume(args)) => history::resume(args, &locations).await,
            Some(Command::Inspect(args)) => inspect::inspect(args),
            Some(Command::Doctor(args)) => doctor::doctor(args, &locations).await,
            Some(Command::Models(args)) => models::models(args, &locations).await,
            Some(Command::Spend(args)) => spend::spend(args, &locations),
            None => {
                let s = cli.studio;
                let opts = crate::tui::TuiOptions { connect: s.connect.options(), graphics: s.graphics };
                // The one place a studio that could not start is reported.
                crate::tui::main(opts, &locations).await.unwrap_or_else(|e| {
                    eprintln!("kontext: {e}");
                    e.exit_code()
                })
            }
        }
    });
    // Don't wait for stray background tasks (e.g. a stalled download) on the way out.
    runtime.shutdown_background();
    ExitCode::from(code)
}
