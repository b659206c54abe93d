//! `kontext emulator`: fal's API on loopback, for offline work and for other tools.

use clap::Args;

use super::exit;
use crate::emulator::{Emulator, EmulatorConfig, FaultSpec, Profile};

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Timing: fast (tests) or realistic (demos).
    #[arg(long, default_value = "realistic")]
    pub profile: Profile,
    /// Fault injection, e.g. "429:0.2,502:0.1,reset:0.1,drop-stream:0.3,slow:500ms" or
    /// "not-ready:#3,trickle@files:#1,no-newline:1,extra-images:1" (see docs/EMULATOR.md).
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<FaultSpec>,
    /// Serve media (uploads, outputs) from a second loopback host, as fal's CDN is another host.
    #[arg(long)]
    pub separate_cdn_host: bool,
    /// Requests IN_PROGRESS at once (the rest wait IN_QUEUE); default: the profile's (fast 64,
    /// realistic 2, fal's starting per-account limit).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: Option<u16>,
    /// Cap on the long side of the images it draws (0: none, Kontext's ~1 MP sizes); default:
    /// the profile's (fast 256, realistic none).
    #[arg(long, value_name = "PX")]
    pub max_image_side: Option<u32>,
    /// Seed for the emulator's randomness (faults, seeds of unseeded requests); random if unset.
    #[arg(long, value_name = "N")]
    pub rng_seed: Option<u64>,
}

pub async fn serve(args: EmulatorArgs) -> u8 {
    let mut config = EmulatorConfig::for_profile(args.profile);
    if let Some(f) = args.faults {
        config.faults = f;
    }
    if let Some(n) = args.concurrency {
        config.concurrency = usize::from(n);
    }
    if let Some(px) = args.max_image_side {
        config.max_image_side = (px > 0).then_some(px);
    }
    config.separate_cdn_host = args.separate_cdn_host;
    config.rng_seed = args.rng_seed.unwrap_or_else(rand::random);
    let emulator = match Emulator::start(config, args.port).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("kontext emulator: cannot listen on 127.0.0.1:{}: {e}", args.port);
            return exit::FAILURE;
        }
    };
    // The first line of stdout is the base URL, for scripts and tests.
    println!("{}", emulator.base_url());
    eprintln!(
        "fal emulator ({}, {} at once) serving queue, run (/run/…) and storage routes; media at {}. Ctrl-C stops it.",
        args.profile,
        emulator.config().concurrency,
        emulator.cdn_base_url()
    );
    let _ = tokio::signal::ctrl_c().await;
    // What a benchmark or a demo needs to know it got the load it meant to make.
    eprintln!(
        "fal emulator: {} submits, at most {} in progress at once",
        emulator.submit_count(),
        emulator.max_in_progress()
    );
    emulator.shutdown().await;
    exit::OK
}
