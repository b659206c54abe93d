//! Where things are and whom to talk to: data directory, config file, key, fal hosts — or the
//! built-in emulator when there is no key. Shared by every front end.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Config, ConfigError};
use crate::emulator::{Emulator, EmulatorConfig, FaultSpec, Profile};
use crate::fal::{FalClient, FalConfig, FalKey, KeySource, key_from_env, parse_base_url};
use crate::model::Endpoint;

/// Flags and environment every command shares.
#[derive(Debug, Clone, Default)]
pub struct Locations {
    pub data_dir: Option<PathBuf>,
    pub config: Option<PathBuf>,
}

impl Locations {
    fn dirs() -> Option<directories::ProjectDirs> {
        directories::ProjectDirs::from("", "", "kontext")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .or_else(|| Self::dirs().map(|d| d.data_dir().to_path_buf()))
            .unwrap_or_else(|| PathBuf::from(".kontext"))
    }

    pub fn default_config_path() -> Option<PathBuf> {
        Self::dirs().map(|d| d.config_dir().join("config.toml"))
    }

    pub fn load_config(&self) -> Result<(Config, Option<PathBuf>), ConfigError> {
        Config::load(self.config.as_deref(), Self::default_config_path().as_deref())
    }
}

/// Where the studio writes its outputs when the config names no `output_dir`: `kontext/` in the
/// platform's pictures folder (XDG's, macOS's, Windows'), or `~/Pictures/kontext` where no
/// pictures folder is configured (a server without xdg-user-dirs), or the data directory's
/// `outputs/` without a home. Never the folder the studio was started in: a newcomer would find
/// files there that explain nothing. (`kontext run` writes to the current folder, like `curl -O`.)
pub fn studio_output_dir(configured: Option<&Path>, locations: &Locations) -> PathBuf {
    if let Some(dir) = configured {
        return dir.to_path_buf();
    }
    match directories::UserDirs::new() {
        Some(user) => {
            let pictures =
                user.picture_dir().map(Path::to_path_buf).unwrap_or_else(|| user.home_dir().join("Pictures"));
            pictures.join("kontext")
        }
        None => locations.data_dir().join("outputs"),
    }
}

/// Checks that `dir` is a folder kontext can write files in, creating it (and its parents) when
/// missing: by creating and removing a temporary file in it, not by reading mode bits (root
/// ignores them; read-only mounts and full disks do not show in them). `what` names the folder
/// in the message ("--out", "the data directory"). `kontext doctor` uses this too.
pub fn check_writable_dir(dir: &Path, what: &str) -> Result<(), String> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => return Err(format!("{what} {shown} is not a folder")),
        Ok(_) => {}
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("{what} {shown} does not exist and cannot be created: {e}"))?
        }
        Err(e) => return Err(format!("{what} {shown} cannot be used: {e}")),
    }
    // An unnamed file (O_TMPFILE on Linux; elsewhere created and unlinked at once), so a
    // process killed here leaves nothing behind in the user's folder.
    let mut file = tempfile::tempfile_in(dir).map_err(|e| format!("{what} {shown} is not writable: {e}"))?;
    // Writing a byte (and syncing it) finds a full disk too, not only a missing permission.
    use std::io::Write;
    file.write_all(b"k")
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{what} {shown} cannot be written to: {e}"))?;
    Ok(())
}

/// How the app reaches fal (or the emulator).
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    pub offline: bool,
    pub queue_url: Option<String>,
    pub run_url: Option<String>,
    pub rest_url: Option<String>,
    /// The platform API host (`FAL_API_URL`).
    pub api_url: Option<String>,
    /// Timing of the in-process emulator (when one is started).
    pub emulator_profile: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// fal.ai (or configured hosts) with a key.
    Fal { key_source: KeySource, queue_url: String },
    /// An emulator this process started, because there is no key or `--offline` was given.
    BuiltInEmulator { reason: String, base_url: String },
    /// Configured loopback hosts without a key (e.g. `kontext emulator` in another terminal).
    LocalHosts { base_url: String },
}

impl Target {
    /// A few words for a status bar.
    pub fn short(&self) -> String {
        match self {
            // Where the key came from too: a user with a key in the environment and one in the
            // config file sees which one is billed.
            Target::Fal { queue_url, key_source } if queue_url == crate::fal::DEFAULT_QUEUE_URL => {
                format!("fal.ai (key from {key_source})")
            }
            Target::Fal { queue_url, key_source } => {
                let host = queue_url.trim_start_matches("https://").trim_start_matches("http://");
                format!("{host} (key from {key_source})")
            }
            Target::BuiltInEmulator { .. } => "emulator (no key)".into(),
            Target::LocalHosts { base_url } => format!("emulator {}", base_url.trim_start_matches("http://")),
        }
    }

    /// One line for a status bar or stderr.
    pub fn describe(&self) -> String {
        match self {
            Target::Fal { key_source, queue_url } if queue_url == crate::fal::DEFAULT_QUEUE_URL => {
                format!("fal.ai (key from {key_source})")
            }
            Target::Fal { key_source, queue_url } => format!("fal API at {queue_url} (key from {key_source})"),
            Target::BuiltInEmulator { reason, .. } => format!("built-in emulator ({reason}) — no real fal requests"),
            Target::LocalHosts { base_url } => format!("local fal emulator at {base_url}"),
        }
    }
}

pub struct Connection {
    pub client: FalClient,
    pub target: Target,
    pub endpoint: Endpoint,
    /// Kept alive for as long as the connection is used.
    emulator: Option<Emulator>,
}

impl Connection {
    pub async fn shutdown(self) {
        if let Some(e) = self.emulator {
            e.shutdown().await;
        }
    }
    pub fn emulator(&self) -> Option<&Emulator> {
        self.emulator.as_ref()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Invalid(String),
    #[error("could not start the built-in emulator: {0}")]
    Emulator(std::io::Error),
}

/// The key from the environment, then the config file, then the config's key command.
pub fn resolve_key(config: &Config) -> Result<Option<(FalKey, KeySource)>, SetupError> {
    if let Some(found) = key_from_env(|k| std::env::var(k).ok()) {
        return Ok(Some(found));
    }
    if let Some(k) = config.key.as_deref().and_then(FalKey::new) {
        return Ok(Some((k, KeySource::ConfigFile)));
    }
    if let Some(cmd) = config.key_command.as_deref().filter(|c| !c.trim().is_empty()) {
        let stdout = run_key_command(cmd)?;
        let text = String::from_utf8_lossy(&stdout);
        let key = text.lines().next().and_then(FalKey::new).ok_or_else(|| {
            SetupError::Invalid("key_command printed nothing; it must print the key on its first line".into())
        })?;
        return Ok(Some((key, KeySource::Command)));
    }
    Ok(None)
}

/// A key is a few dozen bytes; a command printing more than this is not printing a key.
const MAX_KEY_COMMAND_OUTPUT: u64 = 64 * 1024;

/// Runs the config's `key_command` and returns what it printed, reading at most
/// [`MAX_KEY_COMMAND_OUTPUT`] bytes (a command that prints without end is stopped). It is not
/// given a deadline: it may be waiting for a passphrase (pass, gpg).
fn run_key_command(cmd: &str) -> Result<Vec<u8>, SetupError> {
    use std::io::Read;
    let mut child = std::process::Command::new("sh")
        .args(["-c", cmd])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .map_err(|e| SetupError::Invalid(format!("key_command could not be run: {e}")))?;
    let mut stdout = Vec::new();
    let read = child.stdout.take().map(|out| out.take(MAX_KEY_COMMAND_OUTPUT + 1).read_to_end(&mut stdout));
    if stdout.len() as u64 > MAX_KEY_COMMAND_OUTPUT {
        let _ = child.kill();
        let _ = child.wait();
        return Err(SetupError::Invalid(format!(
            "key_command printed more than {} KiB; it must print only the key",
            MAX_KEY_COMMAND_OUTPUT / 1024
        )));
    }
    let status = child.wait().map_err(|e| SetupError::Invalid(format!("key_command could not be run: {e}")))?;
    if let Some(Err(e)) = read {
        return Err(SetupError::Invalid(format!("key_command's output could not be read: {e}")));
    }
    if !status.success() {
        return Err(SetupError::Invalid(format!("key_command failed ({status}); fix it or set FAL_KEY")));
    }
    Ok(stdout)
}

/// A key HTTP cannot carry is refused before anything is sent, naming where it came from.
pub fn check_key_format(key: &FalKey, source: KeySource) -> Result<(), SetupError> {
    match key.format_problem() {
        Some(problem) => Err(SetupError::Invalid(format!(
            "the fal key from {source} {problem}. Fix it there (kontext never shows the key); nothing was sent"
        ))),
        None => Ok(()),
    }
}

fn apply_network(cfg: &mut FalConfig, config: &Config) {
    let n = &config.network;
    if let Some(s) = n.timeout_secs {
        cfg.timeout = Duration::from_secs(s.max(1));
    }
    if let Some(s) = n.connect_timeout_secs {
        cfg.connect_timeout = Duration::from_secs(s.max(1));
    }
    if let Some(a) = n.retry_max_attempts {
        cfg.retry.max_attempts = a.max(1);
    }
    if let Some(ms) = n.poll_interval_ms {
        cfg.poll_interval = Duration::from_millis(ms.max(10));
    }
}

/// Decides whom to talk to and builds the client (starting the emulator if needed).
pub async fn connect(config: &Config, opts: &ConnectOptions) -> Result<Connection, SetupError> {
    let key = if opts.offline { None } else { resolve_key(config)? };
    connect_with_key(config, opts, key).await
}

/// [`connect`] with the key already resolved (so `key_command` runs once when the caller needed
/// the key itself, as `kontext doctor` does). The key's format is checked here.
pub async fn connect_with_key(
    config: &Config,
    opts: &ConnectOptions,
    key: Option<(FalKey, KeySource)>,
) -> Result<Connection, SetupError> {
    let key = if opts.offline { None } else { key };
    let endpoint = match &config.endpoint {
        Some(e) => Endpoint::parse(e).map_err(|m| SetupError::Invalid(format!("config endpoint: {m}")))?,
        None => Endpoint::default(),
    };
    let pick = |flag: &Option<String>, file: &Option<String>| flag.clone().or_else(|| file.clone());
    let queue = pick(&opts.queue_url, &config.queue_url);
    let run = pick(&opts.run_url, &config.run_url);
    let rest = pick(&opts.rest_url, &config.rest_url);
    let api = pick(&opts.api_url, &config.api_url);
    let custom_hosts = queue.is_some() || run.is_some() || rest.is_some() || api.is_some();

    if let Some((k, source)) = &key {
        check_key_format(k, *source)?;
    }

    if opts.offline || (key.is_none() && !custom_hosts) {
        let reason = if opts.offline { "--offline" } else { "no fal key configured" };
        let profile_text = opts.emulator_profile.clone().or_else(|| config.emulator.profile.clone());
        let profile = match profile_text {
            Some(p) => p.parse::<Profile>().map_err(|e| SetupError::Invalid(format!("emulator profile: {e}")))?,
            None => Profile::Realistic,
        };
        let mut ecfg = EmulatorConfig::for_profile(profile);
        // Unseeded requests get a fresh random seed each run, as on fal.
        ecfg.rng_seed = rand::random();
        if let Some(spec) = &config.emulator.faults {
            ecfg.faults =
                spec.parse::<FaultSpec>().map_err(|e| SetupError::Invalid(format!("emulator faults: {e}")))?;
        }
        let emulator = Emulator::start(ecfg, 0).await.map_err(SetupError::Emulator)?;
        let base = parse_base_url("emulator URL", emulator.base_url()).map_err(SetupError::Invalid)?;
        // The emulator accepts any key; this one never leaves the machine.
        let mut fal = FalConfig::single_host(base, FalKey::new("kontext-emulator"));
        apply_network(&mut fal, config);
        let client = FalClient::new(fal).map_err(|e| SetupError::Invalid(e.to_string()))?;
        let target = Target::BuiltInEmulator { reason: reason.into(), base_url: emulator.base_url().to_string() };
        return Ok(Connection { client, target, endpoint, emulator: Some(emulator) });
    }

    let url = |name: &str, v: Option<String>, default: &str| match v {
        Some(text) => parse_base_url(name, &text).map_err(SetupError::Invalid),
        None => parse_base_url(name, default).map_err(SetupError::Invalid),
    };
    // One custom host given alone serves every route (as the emulator does).
    let single = if custom_hosts { queue.clone().or(rest.clone()).or(run.clone()).or(api.clone()) } else { None };
    let queue_url = url("queue URL", queue.or(single.clone()), crate::fal::DEFAULT_QUEUE_URL)?;
    let rest_url = url("REST URL", rest.or(single.clone()), crate::fal::DEFAULT_REST_URL)?;
    let run_url = match (run, &single) {
        (Some(r), _) => url("run URL", Some(r), crate::fal::DEFAULT_RUN_URL)?,
        (None, Some(_)) => queue_url.join("run").map_err(|e| SetupError::Invalid(e.to_string()))?,
        (None, None) => url("run URL", None, crate::fal::DEFAULT_RUN_URL)?,
    };
    // The platform API: as configured, else the one custom host, else fal's.
    let api_url = url("API URL", api.or(single.clone()), crate::fal::DEFAULT_API_URL)?;
    let (key, target) = match key {
        Some((k, source)) => {
            let shown = queue_url.as_str().trim_end_matches('/').to_string();
            (Some(k), Target::Fal { key_source: source, queue_url: shown })
        }
        None => {
            let mut cfg = FalConfig::with_base_urls(queue_url.clone(), run_url.clone(), rest_url.clone(), None);
            cfg.api_url = api_url.clone();
            if !cfg.is_loopback() {
                return Err(SetupError::Invalid(format!(
                    "no fal key configured for {queue_url}: set FAL_KEY (or FAL_KEY_ID and FAL_KEY_SECRET, or key in the config file), or use --offline"
                )));
            }
            let base = queue_url.as_str().trim_end_matches('/').to_string();
            (FalKey::new("kontext-emulator"), Target::LocalHosts { base_url: base })
        }
    };
    let mut fal = FalConfig::with_base_urls(queue_url, run_url, rest_url, key);
    fal.api_url = api_url;
    apply_network(&mut fal, config);
    let client = FalClient::new(fal).map_err(|e| SetupError::Invalid(e.to_string()))?;
    Ok(Connection { client, target, endpoint, emulator: None })
}

/// Sets up the log file in the data directory; logs never go to the terminal.
pub fn init_logging(data_dir: &Path) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    std::fs::create_dir_all(data_dir).ok()?;
    let appender = tracing_appender::rolling::never(data_dir, "kontext.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("KONTEXT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_writer(writer).with_ansi(false).with_env_filter(filter).try_init().ok()?;
    Some(guard)
}
