//! Fetching the model's input images without leaving the machine: data URIs are decoded, URLs
//! on loopback are read from the emulator's store or fetched over loopback, and anything else
//! becomes a labelled placeholder (the emulator is offline by design; no DNS lookups).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use base64::Engine;
use image::RgbImage;
use serde_json::{Value, json};

use super::Shared;
use super::synth;
use super::util::lock;
use super::validate::error_item;

/// One input image as the model sees it.
pub(crate) enum Fetched {
    Image(RgbImage),
    /// Not fetched because the host is not on this machine; carries the host for the log.
    Placeholder(String),
}

const DOWNLOAD_MSG: &str =
    "Failed to download the file. Please check if the URL is accessible and try again.";
const LOAD_MSG: &str = "Failed to load the image. Please ensure the image file is not corrupted and is in a supported format.";

fn download_error(i: usize, url: &str) -> Value {
    error_item(
        &[json!("image_urls"), json!(i)],
        DOWNLOAD_MSG,
        "file_download_error",
        None,
        &json!(url),
    )
}

fn load_error(i: usize, url: &str) -> Value {
    // Avoid echoing megabytes of data URI back in the error.
    let shown = if url.len() > 200 {
        format!(
            "{}…",
            &url[..url.char_indices().nth(100).map(|(b, _)| b).unwrap_or(0)]
        )
    } else {
        url.to_string()
    };
    error_item(
        &[json!("image_urls"), json!(i)],
        LOAD_MSG,
        "image_load_error",
        None,
        &json!(shown),
    )
}

fn decode_or_err(i: usize, url: &str, bytes: &[u8]) -> Result<Fetched, Value> {
    synth::decode(bytes)
        .map(Fetched::Image)
        .ok_or_else(|| load_error(i, url))
}

/// Decodes the payload of a `data:` URI.
pub(crate) fn data_uri_bytes(uri: &str) -> Option<Vec<u8>> {
    let rest = uri.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    if meta.ends_with(";base64") {
        let cleaned: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        base64::engine::general_purpose::STANDARD
            .decode(cleaned.as_bytes())
            .or_else(|_| {
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(cleaned.trim_end_matches('='))
            })
            .ok()
    } else {
        Some(data.as_bytes().to_vec())
    }
}

/// A URL's host, parsed without resolving anything.
enum Host {
    Domain(String),
    Ip(IpAddr),
}

impl Host {
    fn is_loopback(&self) -> bool {
        match self {
            Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
            Host::Ip(ip) => ip.is_loopback(),
        }
    }
}

fn host_of(url: &reqwest::Url) -> Option<Host> {
    let h = url.host_str()?;
    let bare = h
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(h);
    Some(match bare.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) => Host::Domain(h.to_string()),
    })
}

/// Fetches input `i`; `Err` is a 422 error item.
pub(crate) async fn fetch(shared: &Shared, i: usize, raw: &str) -> Result<Fetched, Value> {
    let url = raw.trim();
    if url.starts_with("data:") {
        let bytes = data_uri_bytes(url).ok_or_else(|| load_error(i, url))?;
        return decode_or_err(i, url, &bytes);
    }
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return Err(download_error(i, url));
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(download_error(i, url));
    }
    let Some(host) = host_of(&parsed) else {
        return Err(download_error(i, url));
    };
    if !host.is_loopback() {
        return Ok(Fetched::Placeholder(
            parsed.host_str().unwrap_or("?").to_string(),
        ));
    }
    let port = parsed.port_or_known_default().unwrap_or(80);
    if shared.own_ports.contains(&port) {
        // Our own CDN: read the store directly (no HTTP round trip, no journal entry).
        let path = parsed.path().to_string();
        let file = lock(&shared.store).get(&path);
        return match file {
            Some(f) => decode_or_err(i, url, &f.bytes),
            None => Err(download_error(i, url)),
        };
    }
    // Another server on this machine (e.g. a test fixture): fetch over loopback only.
    let mut target = parsed.clone();
    if matches!(host, Host::Domain(_)) {
        // "localhost": pin to 127.0.0.1 so nothing is resolved.
        let _ = target.set_ip_host(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let resp = shared
        .http
        .get(target)
        .timeout(Duration::from_secs(20))
        .send()
        .await;
    match resp {
        Ok(r) if r.status().is_success() => match r.bytes().await {
            Ok(b) => decode_or_err(i, url, &b),
            Err(_) => Err(download_error(i, url)),
        },
        _ => Err(download_error(i, url)),
    }
}
