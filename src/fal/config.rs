//! Where fal lives and how to authenticate: base URLs, the key, timeouts and retry bounds.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use reqwest::Url;

use super::body::BodyPace;
use super::retry::RetryPolicy;

pub const DEFAULT_QUEUE_URL: &str = "https://queue.fal.run";
pub const DEFAULT_RUN_URL: &str = "https://fal.run";
pub const DEFAULT_REST_URL: &str = "https://rest.fal.ai";
/// fal's platform API (prices, model schemas, request listings); paths start with `/v1/`.
pub const DEFAULT_API_URL: &str = "https://api.fal.ai";

/// A fal API key. Its `Debug` is redacted and it has no `Display`, so it cannot end up in a log,
/// an error message or a stored request by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct FalKey(String);

impl FalKey {
    pub fn new(key: impl Into<String>) -> Option<FalKey> {
        let key = key.into().trim().to_string();
        (!key.is_empty()).then_some(FalKey(key))
    }
    /// The `Authorization` header value.
    pub(crate) fn header_value(&self) -> String {
        format!("Key {}", self.0)
    }

    /// Why this key cannot be right, if it cannot: HTTP refuses line breaks and control
    /// characters in a header, and fal's keys (`id:secret`) are printable ASCII without spaces.
    /// Says what and where, never the key itself.
    pub fn format_problem(&self) -> Option<String> {
        let (at, c) = self.0.chars().enumerate().find(|(_, c)| !c.is_ascii_graphic())?;
        let what = match c {
            '\n' | '\r' => "a line break",
            ' ' | '\t' => "a space",
            c if c.is_control() => "a control character",
            _ => "a character that is not plain ASCII",
        };
        Some(format!(
            "contains {what} (character {} of {}); fal keys are letters, digits and punctuation only (id:secret)",
            at + 1,
            self.0.chars().count()
        ))
    }
}

impl fmt::Debug for FalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FalKey(<redacted>)")
    }
}

/// Where a key came from, for messages ("using the key from FAL_KEY").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    FalKey,
    FalKeyIdSecret,
    ConfigFile,
    Command,
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeySource::FalKey => "FAL_KEY",
            KeySource::FalKeyIdSecret => "FAL_KEY_ID/FAL_KEY_SECRET",
            KeySource::ConfigFile => "the config file",
            KeySource::Command => "the config's key_command",
        })
    }
}

/// The key from the environment as fal's clients resolve it: `FAL_KEY`, else
/// `FAL_KEY_ID:FAL_KEY_SECRET` (fal-protocol.md §4).
pub fn key_from_env(get: impl Fn(&str) -> Option<String>) -> Option<(FalKey, KeySource)> {
    if let Some(k) = get("FAL_KEY").and_then(FalKey::new) {
        return Some((k, KeySource::FalKey));
    }
    match (get("FAL_KEY_ID"), get("FAL_KEY_SECRET")) {
        (Some(id), Some(secret)) if !id.trim().is_empty() && !secret.trim().is_empty() => {
            FalKey::new(format!("{}:{}", id.trim(), secret.trim())).map(|k| (k, KeySource::FalKeyIdSecret))
        }
        _ => None,
    }
}

#[derive(Debug, Clone)]
pub struct FalConfig {
    pub queue_url: Url,
    pub run_url: Url,
    pub rest_url: Url,
    /// The platform API (`{api}/v1/models/pricing`, …).
    pub api_url: Url,
    pub key: Option<FalKey>,
    /// How long a non-streaming call may wait for the answer's headers.
    pub timeout: Duration,
    /// How slowly an answer's body may arrive once its headers are in.
    pub body_pace: BodyPace,
    /// Total time for one operation (a status check, fetching the result, a download...) across
    /// all its retries: no retry starts that would end after it.
    pub operation_deadline: Duration,
    pub connect_timeout: Duration,
    /// How long the status stream may stay silent (fal pings every 15 s) before we poll instead.
    pub stream_idle_timeout: Duration,
    /// Interval of status polling when the stream is unavailable.
    pub poll_interval: Duration,
    pub retry: RetryPolicy,
}

impl FalConfig {
    /// fal's production hosts.
    pub fn production(key: Option<FalKey>) -> FalConfig {
        FalConfig::with_base_urls(
            Url::parse(DEFAULT_QUEUE_URL).expect("valid default"),
            Url::parse(DEFAULT_RUN_URL).expect("valid default"),
            Url::parse(DEFAULT_REST_URL).expect("valid default"),
            key,
        )
    }

    /// One base URL for queue, REST and (under `/run`) synchronous calls — how the emulator serves.
    pub fn single_host(base: Url, key: Option<FalKey>) -> FalConfig {
        let run = base.join("run").unwrap_or_else(|_| base.clone());
        FalConfig::with_base_urls(base.clone(), run, base, key)
    }

    /// The given hosts; the platform API is fal's, or the queue's host when that is this
    /// machine (the emulator serves both).
    pub fn with_base_urls(queue_url: Url, run_url: Url, rest_url: Url, key: Option<FalKey>) -> FalConfig {
        let api_url = if is_loopback_url(&queue_url) {
            queue_url.clone()
        } else {
            Url::parse(DEFAULT_API_URL).expect("valid default")
        };
        FalConfig {
            queue_url,
            run_url,
            rest_url,
            api_url,
            key,
            timeout: Duration::from_secs(120),
            body_pace: BodyPace::default(),
            operation_deadline: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(30),
            stream_idle_timeout: Duration::from_secs(45),
            poll_interval: Duration::from_millis(500),
            retry: RetryPolicy::default(),
        }
    }

    /// Every configured fal host: queue, run, REST and the platform API.
    pub fn hosts(&self) -> [&Url; 4] {
        [&self.queue_url, &self.run_url, &self.rest_url, &self.api_url]
    }

    /// True when every fal host is on this machine (the emulator).
    pub fn is_loopback(&self) -> bool {
        self.hosts().iter().all(|u| is_loopback_url(u))
    }

    /// The origins the key may be sent to.
    pub(crate) fn is_fal_origin(&self, url: &Url) -> bool {
        self.hosts().iter().any(|base| same_origin(base, url))
    }
}

/// Same scheme, host and port. Only `localhost`, 127.0.0.1 and ::1 count as one host (they are
/// the same machine's one loopback interface as clients name it); other loopback addresses such
/// as 127.0.0.2 are other hosts, so the key does not go there.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    let same_host = a.host_str() == b.host_str() || (is_this_host(a) && is_this_host(b));
    a.scheme() == b.scheme() && same_host && a.port_or_known_default() == b.port_or_known_default()
}

/// `localhost`, 127.0.0.1 or ::1.
fn is_this_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
        Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
        None => false,
    }
}

pub fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Parses a configured base URL: https anywhere, plain http only on loopback (so the key never
/// crosses a network in clear text).
pub fn parse_base_url(name: &str, text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("{name} {text:?} is not a valid URL: {e}"))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_url(&url) => {}
        "http" => {
            return Err(format!(
                "{name} {text:?} uses plain http to a host that is not this machine; use https (plain http is allowed only for 127.0.0.1/localhost)"
            ));
        }
        other => return Err(format!("{name} {text:?} has scheme {other:?}; use https")),
    }
    if url.host_str().is_none() {
        return Err(format!("{name} {text:?} has no host"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_resolution_order() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let (k, src) = key_from_env(env(&[("FAL_KEY", "a:b"), ("FAL_KEY_ID", "x"), ("FAL_KEY_SECRET", "y")])).unwrap();
        assert_eq!((k.header_value(), src), ("Key a:b".to_string(), KeySource::FalKey));
        let (k, src) = key_from_env(env(&[("FAL_KEY_ID", "x"), ("FAL_KEY_SECRET", "y")])).unwrap();
        assert_eq!((k.header_value(), src), ("Key x:y".to_string(), KeySource::FalKeyIdSecret));
        assert!(key_from_env(env(&[("FAL_KEY_ID", "x")])).is_none());
        assert!(key_from_env(env(&[("FAL_KEY", "  ")])).is_none());
    }

    #[test]
    fn key_is_redacted_in_debug() {
        let k = FalKey::new("secret-id:secret-value").unwrap();
        assert!(!format!("{k:?}").contains("secret"));
        let cfg = FalConfig::production(Some(k));
        assert!(!format!("{cfg:?}").contains("secret-value"));
    }

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(parse_base_url("queue URL", "http://127.0.0.1:8080").is_ok());
        assert!(parse_base_url("queue URL", "http://localhost:1").is_ok());
        assert!(parse_base_url("queue URL", "http://[::1]:1").is_ok());
        let err = parse_base_url("queue URL", "http://example.com").unwrap_err();
        assert!(err.contains("plain http"), "{err}");
        assert!(parse_base_url("queue URL", "ftp://x").is_err());
        assert!(parse_base_url("queue URL", "https://queue.fal.run").is_ok());
    }

    #[test]
    fn loopback_names_are_one_origin() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(same_origin(&u("http://localhost:8080/a"), &u("http://127.0.0.1:8080/b")));
        assert!(!same_origin(&u("http://localhost:8080"), &u("http://127.0.0.1:8081")));
        assert!(!same_origin(&u("https://queue.fal.run"), &u("https://fal.run")));
        assert!(same_origin(&u("http://[::1]:8080/a"), &u("http://localhost:8080/b")));
    }

    #[test]
    fn other_loopback_addresses_are_other_origins() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(!same_origin(&u("http://127.0.0.1:8080"), &u("http://127.0.0.2:8080")));
        assert!(!same_origin(&u("http://localhost:8080"), &u("http://127.1.2.3:8080")));
        let cfg = FalConfig::single_host(u("http://127.0.0.1:8080"), None);
        assert!(cfg.is_fal_origin(&u("http://127.0.0.1:8080/x")));
        assert!(!cfg.is_fal_origin(&u("http://127.0.0.2:8080/x")));
        assert!(!cfg.is_fal_origin(&u("https://127.0.0.1:8080/x")), "the scheme is part of the origin");
    }

    #[test]
    fn the_platform_api_is_a_fal_host_like_the_others() {
        let u = |s: &str| Url::parse(s).unwrap();
        let prod = FalConfig::production(None);
        assert_eq!(prod.api_url.as_str(), "https://api.fal.ai/");
        assert!(prod.is_fal_origin(&u("https://api.fal.ai/v1/models/pricing")));
        assert!(!prod.is_fal_origin(&u("https://api.example.com/v1/models")));
        let local = FalConfig::single_host(u("http://127.0.0.1:9000"), None);
        assert_eq!(local.api_url, local.queue_url, "the emulator serves the platform API too");
        assert!(local.is_loopback());
        let mut mixed = local.clone();
        mixed.api_url = u("https://api.fal.ai");
        assert!(!mixed.is_loopback(), "a remote API host is not this machine");
        assert!(parse_base_url("API URL", "http://api.example.com").unwrap_err().contains("plain http"));
    }

    #[test]
    fn keys_that_cannot_be_sent_are_named_without_being_shown() {
        let problem = |k: &str| FalKey::new(k).unwrap().format_problem();
        assert_eq!(problem("0123-id:abcdef"), None);
        let p = problem("abcd-123:wxy\n987").unwrap();
        assert!(p.contains("line break") && p.contains("character 13 of 16"), "{p}");
        assert!(!p.contains("abcd") && !p.contains("wxy") && !p.contains("987"), "{p}");
        assert!(problem("id:se\u{7}c").unwrap().contains("control character"));
        assert!(problem("id: sec").unwrap().contains("space"));
        assert!(problem("id:s\u{e9}c").unwrap().contains("not plain ASCII"));
    }
}
