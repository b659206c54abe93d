//! The config file (TOML). Every key is optional; config.example.toml documents them all. A broken
//! file is an error that names the file, line and key — never a panic, never silently ignored.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::Draft;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The fal key. Prefer FAL_KEY or `key_command`, which keep it out of files.
    pub key: Option<String>,
    /// A shell command that prints the key (e.g. `pass show fal`).
    pub key_command: Option<String>,
    pub endpoint: Option<String>,
    pub queue_url: Option<String>,
    pub run_url: Option<String>,
    pub rest_url: Option<String>,
    /// Default folder for output images.
    pub output_dir: Option<PathBuf>,
    /// Local files up to this many bytes are sent inline as data: URIs; larger ones are uploaded.
    pub data_uri_threshold: Option<u64>,
    /// Image protocol for the TUI: auto, kitty, sixel, iterm2, halfblocks, none.
    pub graphics: Option<String>,
    /// Colours in the TUI (NO_COLOR in the environment also turns them off).
    pub colors: Option<bool>,
    /// Key bindings: action name → keys, e.g. `submit = ["f5", "ctrl-s"]`.
    #[serde(default)]
    pub keys: std::collections::HashMap<String, Vec<String>>,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub emulator: EmulatorSection,
}

/// Default parameters, applied under whatever a command line or form sets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub seed: Option<u64>,
    pub guidance_scale: Option<f64>,
    pub num_images: Option<i64>,
    pub output_format: Option<String>,
    pub safety_tolerance: Option<SafetyValue>,
    pub enhance_prompt: Option<bool>,
    pub sync_mode: Option<bool>,
    pub aspect_ratio: Option<String>,
}

/// People write `safety_tolerance = 2` as often as `"2"`; both mean the same.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SafetyValue {
    Number(i64),
    Text(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub timeout_secs: Option<u64>,
    pub connect_timeout_secs: Option<u64>,
    pub retry_max_attempts: Option<usize>,
    pub poll_interval_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmulatorSection {
    /// fast | realistic
    pub profile: Option<String>,
    /// Fault injection rules, as for `kontext emulator --faults`.
    pub faults: Option<String>,
}

/// A config file is a few hundred bytes; anything past this is not one.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {}: {error}", .path.display())]
    Read { path: PathBuf, error: crate::local_file::ReadError },
    #[error("config file {}: {message}", .path.display())]
    Parse { path: PathBuf, message: String },
}

impl Config {
    /// Loads `explicit` (which must exist), else the default location (which may be absent).
    pub fn load(
        explicit: Option<&Path>,
        default_path: Option<&Path>,
    ) -> Result<(Config, Option<PathBuf>), ConfigError> {
        let (path, required) = match (explicit, default_path) {
            (Some(p), _) => (p.to_path_buf(), true),
            (None, Some(p)) => (p.to_path_buf(), false),
            (None, None) => return Ok((Config::default(), None)),
        };
        // `--config /dev/zero` or a runaway file is refused, never read without end.
        match crate::local_file::read_bounded_text(&path, MAX_CONFIG_BYTES) {
            Ok(text) => Config::parse(&text)
                .map(|c| (c, Some(path.clone())))
                .map_err(|message| ConfigError::Parse { path, message }),
            Err(e) if e.is_not_found() && !required => Ok((Config::default(), None)),
            Err(error) => Err(ConfigError::Read { path, error }),
        }
    }

    /// toml's messages already say "line N, column M" and quote the offending line.
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }

    /// The defaults as a draft, for fields the user leaves unset.
    pub fn default_draft(&self) -> Draft {
        let d = &self.defaults;
        Draft {
            seed: d.seed.map(|s| s.to_string()),
            guidance_scale: d.guidance_scale.map(|g| g.to_string()),
            num_images: d.num_images.map(|n| n.to_string()),
            output_format: d.output_format.clone(),
            safety_tolerance: d.safety_tolerance.as_ref().map(|s| match s {
                SafetyValue::Number(n) => n.to_string(),
                SafetyValue::Text(t) => t.clone(),
            }),
            enhance_prompt: d.enhance_prompt.unwrap_or(false),
            sync_mode: d.sync_mode.unwrap_or(false),
            aspect_ratio: d.aspect_ratio.clone(),
            ..Draft::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_example_file() {
        let text = include_str!("../config.example.toml");
        let cfg = Config::parse(text).expect("config.example.toml must parse");
        assert!(cfg.key.is_none(), "the example must not carry a key");
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let err = Config::parse("endpoint = \"a/b\"\n[defaults]\nguidance_scale = \"high\"\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        let err = Config::parse("endpont = \"a/b\"\n").unwrap_err();
        assert!(err.contains("endpont") && err.contains("line 1"), "{err}");
        let err = Config::parse("key = \n").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn defaults_become_a_draft() {
        let cfg = Config::parse("[defaults]\nsafety_tolerance = 4\nnum_images = 2\naspect_ratio = \"16:9\"\n").unwrap();
        let d = cfg.default_draft();
        assert_eq!(d.safety_tolerance.as_deref(), Some("4"));
        assert_eq!(d.num_images.as_deref(), Some("2"));
        assert_eq!(d.aspect_ratio.as_deref(), Some("16:9"));
    }
}
