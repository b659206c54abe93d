//! Shared by the end-to-end tests: the `kontext` binary, isolated from the developer's own
//! environment, config and data.

// Each test crate uses part of this module.
#![allow(dead_code)]

pub mod studio;
pub mod sweep_fixture;

use std::path::Path;
use std::process::{Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_kontext");

/// Variables of the developer's environment that would change what `kontext` talks to or how
/// it draws: every test starts without them.
pub const SCRUBBED_ENV: [&str; 10] = [
    "FAL_KEY",
    "FAL_KEY_ID",
    "FAL_KEY_SECRET",
    "FAL_QUEUE_URL",
    "FAL_RUN_URL",
    "FAL_REST_URL",
    "FAL_API_URL",
    "KONTEXT_ENDPOINT",
    "KONTEXT_GRAPHICS",
    "NO_COLOR",
];

/// `kontext` with its data directory and config file in `home` (an empty config unless the test
/// wrote one), no key or hosts from the environment, and the fast built-in emulator.
pub fn kontext(home: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    for var in SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    let config = home.join("config.toml");
    if !config.exists() {
        std::fs::write(&config, "").unwrap();
    }
    cmd.env("KONTEXT_DATA_DIR", home.join("data"))
        .env("KONTEXT_CONFIG", &config)
        .env("KONTEXT_EMULATOR_PROFILE", "fast")
        .stdin(Stdio::null());
    cmd
}

/// [`kontext`] with a key and a 50 ms poll interval (unless the test wrote a config): for the
/// crash tests and the soak, which run against an emulator in the test process.
pub fn kontext_with_key(home: &Path) -> Command {
    let config = home.join("config.toml");
    if !config.exists() {
        std::fs::write(&config, "[network]\npoll_interval_ms = 50\n").unwrap();
    }
    let mut cmd = kontext(home);
    cmd.env("FAL_KEY", "test-key");
    cmd
}

/// The (seed, guidance_scale) of each request the emulator accepted, sorted: which points of a
/// seed × guidance sweep were sent.
pub fn sent_seeds_and_guidance(emu: &kontext::emulator::Emulator) -> Vec<(u64, String)> {
    let mut sent: Vec<(u64, String)> = emu
        .accepted()
        .into_iter()
        .map(|(_, b)| (b["seed"].as_u64().expect("a seed"), b["guidance_scale"].to_string()))
        .collect();
    sent.sort();
    sent
}
