//! The config file (TOML). Every key is optional; config.example.toml documents them all. A broken
//! file is an error that names the file, line and key — never a panic, never silently ignored.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::{Catalog, Draft};

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
    /// fal's platform API (prices, model schemas); `https://api.fal.ai` by default.
    pub api_url: Option<String>,
    /// Default folder for output images.
    pub output_dir: Option<PathBuf>,
    /// Local files up to this many bytes are sent inline as data: URIs; larger ones are uploaded.
    pub data_uri_threshold: Option<u64>,
    /// Image protocol for the TUI: auto, kitty, sixel, iterm2, halfblocks, none.
    pub graphics: Option<String>,
    /// Colours in the TUI (NO_COLOR in the environment also turns them off).
    pub colors: Option<bool>,
    /// The TUI's colours for the terminal's background: auto (asked with OSC 11), dark, light.
    pub theme: Option<String>,
    /// Key bindings: action name → keys, e.g. `submit = ["f5", "ctrl-s"]`.
    #[serde(default)]
    pub keys: std::collections::HashMap<String, Vec<String>>,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub budget: Budget,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub emulator: EmulatorSection,
}

/// Default parameters, applied under whatever a command line or form sets: any field of the
/// endpoints' schemas by its name (`guidance_scale = 4`, `num_inference_steps = 30`). Each is
/// checked against the schema of every endpoint that has it when the file is read; a request
/// uses those its endpoint has. People write `safety_tolerance = 2` as often as `"2"`; both
/// mean the same.
pub type Defaults = toml::Table;

/// Budget caps, in US dollars; a request over either is refused before anything is sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// The most one request may cost (its estimate).
    pub max_request_usd: Option<f64>,
    /// The most all requests of one day (local time) may cost, this one included.
    pub daily_usd: Option<f64>,
}

impl Budget {
    pub fn caps(&self) -> crate::model::cost::BudgetCaps {
        crate::model::cost::BudgetCaps { max_request_usd: self.max_request_usd, daily_usd: self.daily_usd }
    }
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

    /// toml's messages already say "line N, column M" and quote the offending line; a secret in
    /// that line (or anywhere in the message) is replaced by `<redacted>`.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| redact_secrets(text, e.to_string().trim_end()))?;
        config.check_defaults(text, Catalog::bundled())?;
        Ok(config)
    }

    /// Every `[defaults]` key must be a field of a known endpoint, and its value valid for each
    /// endpoint that has it. The error names the line, the key and what would be accepted.
    pub fn check_defaults(&self, text: &str, catalog: &Catalog) -> Result<(), String> {
        let mut problems = Vec::new();
        for (name, value) in &self.defaults {
            let line = defaults_line(text, name).map(|l| format!("line {l}: ")).unwrap_or_default();
            let specs: Vec<_> = catalog.iter().filter_map(|s| s.field(name)).collect();
            if specs.is_empty() {
                problems.push(format!(
                    "{line}[defaults] {name}: no endpoint has a field of that name (see `kontext models show ID`)"
                ));
                continue;
            }
            let text = toml_text(value);
            if let Some(e) = specs.iter().find_map(|spec| spec.parse_text(&text).err()) {
                problems.push(format!("{line}[defaults] {e}"));
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
    }

    /// The defaults as a draft, for fields the user leaves unset (a request keeps those its
    /// endpoint has: `Draft::only_fields_of`).
    pub fn default_draft(&self) -> Draft {
        let mut d = Draft::default();
        for (name, value) in &self.defaults {
            d.set(name, toml_text(value));
        }
        d
    }
}

/// A TOML value as the text a person would type for it.
fn toml_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The line number of `name = …` inside the `[defaults]` table.
fn defaults_line(text: &str, name: &str) -> Option<usize> {
    let mut in_defaults = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            in_defaults = t.trim_matches(['[', ']', ' ']) == "defaults";
        } else if in_defaults
            && let Some((k, _)) = t.split_once('=')
            && k.trim().trim_matches(['"', '\'']) == name
        {
            return Some(i + 1);
        }
    }
    None
}

/// What replaces a secret value in a message.
pub const REDACTED: &str = "<redacted>";

/// Whether a config key (as written, possibly misspelt or quoted) may hold a secret: `key`,
/// `key_command`, anything naming a key, secret, token or password, and short near-misses of
/// `key` (`kye`, `ky`), since a typo'd name still carries the secret.
fn is_secret_name(name: &str) -> bool {
    let n = name.trim().trim_matches(['"', '\'']).to_ascii_lowercase();
    let near_key = n.len() <= 4 && n.chars().filter(|c| "key".contains(*c)).count() >= 2;
    near_key || ["key", "secret", "token", "passw"].iter().any(|w| n.contains(w))
}

/// The `name = value` split of a TOML line, if it is one (a `[table]` header or comment is not).
fn assignment(line: &str) -> Option<(&str, &str)> {
    let t = line.trim_start();
    if t.starts_with(['#', '[']) {
        return None;
    }
    t.split_once('=')
}

/// `message` (an error about `source`) with every secret value of `source` replaced by
/// [`REDACTED`]: the values of secret-looking keys, wherever the message repeats them, and the
/// value part of any quoted source line that assigns one.
pub fn redact_secrets(source: &str, message: &str) -> String {
    let mut secrets: Vec<&str> = Vec::new();
    let mut lines = source.lines();
    while let Some(line) = lines.next() {
        let Some((name, value)) = assignment(line) else { continue };
        if !is_secret_name(name) {
            continue;
        }
        let value = value.trim();
        secrets.push(value);
        let inner = value.trim_matches(['"', '\'']);
        secrets.push(inner.trim());
        // A multi-line string: every line up to its end is the secret.
        if let Some(delim) = ["\"\"\"", "\'\'\'"].into_iter().find(|d| value.starts_with(d)) {
            for more in lines.by_ref() {
                secrets.push(more.trim());
                if more.contains(delim) {
                    break;
                }
            }
        }
    }
    // Longest first, so a value is replaced whole before any part of it; short values (a
    // quote, `1`) would replace unrelated text and say nothing about a key.
    secrets.retain(|s| s.len() >= 4);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = message.to_string();
    for s in &secrets {
        out = out.replace(s, REDACTED);
    }
    // toml quotes the source as `N | line`: a secret-looking assignment keeps only its name.
    out.lines()
        .map(|l| match l.split_once(" | ") {
            Some((n, code)) if n.trim().chars().all(|c| c.is_ascii_digit()) && !n.trim().is_empty() => {
                match assignment(code) {
                    Some((name, _)) if is_secret_name(name) => format!("{n} | {}= {REDACTED}", name),
                    _ => l.to_string(),
                }
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
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

    const SECRET: &str = "fal-1234abcd:5678efgh-secret";

    /// Every way a config with the key in it can be wrong: the error names the line, never the key.
    #[test]
    fn config_errors_never_quote_the_key() {
        let cases = [
            ("missing quote", format!("key = \"{SECRET}\n")),
            ("duplicate key", format!("key = \"{SECRET}\"\nkey = \"{SECRET}\"\n")),
            ("type error", "key = 123456789\n".to_string()),
            ("typo in the name", format!("kye = \"{SECRET}\"\n")),
            ("typo, quoted name", format!("\"fal_key\" = \"{SECRET}\"\n")),
            ("key_command", format!("key_command = [\"echo {SECRET}\"]\n")),
            ("multi-line", format!("key = \"\"\"\n{SECRET}\n\"\"\"\nnope = 1\n")),
        ];
        for (what, text) in cases {
            let err = Config::parse(&text).unwrap_err();
            assert!(err.contains("line"), "{what}: still says where: {err}");
            for leak in [SECRET, "5678efgh", "123456789"] {
                assert!(!err.contains(leak), "{what}: leaks {leak:?}: {err}");
            }
        }
        let err = Config::parse("key = \"ok-key\"\nendpont = \"a/b\"\n").unwrap_err();
        assert!(err.contains("endpont") && err.contains("a/b"), "other values stay: {err}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Arbitrary bytes never panic the loader, and an error never carries the key, whatever
        /// surrounds it.
        #[test]
        fn arbitrary_config_text_never_panics_or_leaks_the_key(
            before in "[ -~\n\"'=\\[\\]#]{0,80}",
            name in "(key|kye|key_command|\"key\"|fal_key)",
            quote in "(\"|'|\"\"\"|)",
            after in "[ -~\n\"'=\\[\\]#]{0,80}",
        ) {
            let text = format!("{before}\n{name} = {quote}{SECRET}{after}\n");
            if let Err(e) = Config::parse(&text) {
                proptest::prop_assert!(!e.contains(SECRET), "{e}");
                proptest::prop_assert!(!e.contains("5678efgh-secret"), "{e}");
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = Config::parse(&text);
        }
    }

    #[test]
    fn redaction_work_is_bounded_by_the_input() {
        // Many secret lines and a long message: the result is never larger than the message
        // plus a marker per line, so the work stays proportional to what came in.
        let source: String = (0..2000).map(|i| format!("key = \"secret-{i:05}\"\n")).collect();
        let message: String = (0..2000).map(|i| format!("{i} | key = \"secret-{i:05}\"\n")).collect();
        let out = redact_secrets(&source, &message);
        assert!(!out.contains("secret-"), "{}", &out[..200]);
        assert!(out.len() <= message.len() + 2000 * REDACTED.len());
    }

    #[test]
    fn defaults_are_checked_against_the_schemas() {
        let err = Config::parse("[defaults]\nnum_images = 9\n").unwrap_err();
        assert!(err.contains("line 2") && err.contains("num_images must be between 1 and 4"), "{err}");
        let err = Config::parse("[defaults]\nguidance = 3\n").unwrap_err();
        assert!(err.contains("guidance: no endpoint has a field"), "{err}");
        // A field only [dev] has is a valid default.
        let cfg = Config::parse("[defaults]\nnum_inference_steps = 30\n").unwrap();
        assert_eq!(cfg.default_draft().fields["num_inference_steps"], "30");
    }

    #[test]
    fn defaults_become_a_draft() {
        let cfg = Config::parse("[defaults]\nsafety_tolerance = 4\nnum_images = 2\naspect_ratio = \"16:9\"\n").unwrap();
        let d = cfg.default_draft();
        assert_eq!(d.get("safety_tolerance"), Some("4"));
        assert_eq!(d.get("num_images"), Some("2"));
        assert_eq!(d.get("aspect_ratio"), Some("16:9"));
    }
}
