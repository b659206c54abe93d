//! Small helpers shared by the emulator's modules: JSON responses, time stamps, hashing, ids.

use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use rand::Rng;
use serde_json::Value;

/// Locks a mutex, ignoring poisoning: the emulator's state stays usable even if a task panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A JSON response with the given status.
pub(crate) fn json(status: u16, body: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// `{"detail": "..."}` with the given status.
pub(crate) fn detail(status: u16, msg: &str) -> Response<Body> {
    json(status, &serde_json::json!({ "detail": msg }))
}

/// fal's flat infrastructure error: `{"detail","error_type"}` plus `X-Fal-Error-Type`.
pub(crate) fn flat_error(status: u16, msg: &str, error_type: &str) -> Response<Body> {
    let mut resp = json(status, &serde_json::json!({ "detail": msg, "error_type": error_type }));
    if let Ok(v) = HeaderValue::from_str(error_type) {
        resp.headers_mut().insert("x-fal-error-type", v);
    }
    resp
}

/// Adds a header if the value is a valid header value.
pub(crate) fn set_header(resp: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// RFC 3339 / ISO-8601 UTC time stamp; `micros` adds fractional seconds like fal's log lines.
pub(crate) fn iso8601(t: SystemTime, micros: bool) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, dd) = civil_from_days(days);
    let base = format!("{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}", sod / 3600, (sod / 60) % 60, sod % 60);
    if micros { format!("{base}.{:06}", d.subsec_micros()) } else { format!("{base}+00:00") }
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// FNV-1a, 64 bit: stable across Rust versions and platforms (unlike `DefaultHasher`).
#[derive(Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub(crate) fn bytes(mut self, data: &[u8]) -> Self {
        for b in data {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator so that ("ab","c") and ("a","bc") hash differently.
        self.0 ^= 0xff;
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        self
    }
    pub(crate) fn u64(self, v: u64) -> Self {
        self.bytes(&v.to_le_bytes())
    }
    pub(crate) fn finish(self) -> u64 {
        // Final avalanche (splitmix64) so nearby inputs give unrelated outputs.
        let mut z = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";

/// A nanoid-like id as seen in fal CDN file names (`XoW0qavfF-ahg-jX4BMyL`).
pub(crate) fn nano_id<R: Rng>(rng: &mut R, len: usize) -> String {
    (0..len).map(|_| ID_CHARS[rng.random_range(0..ID_CHARS.len())] as char).collect()
}

const ANIMALS: &[&str] = &[
    "tiger", "penguin", "zebra", "koala", "lion", "elephant", "rabbit", "panda", "monkey", "kangaroo", "gorilla",
    "owl", "whale", "lemur", "mouse", "rhino", "panther", "jaguar", "koala", "wolf",
];

pub(crate) fn animal<R: Rng>(rng: &mut R) -> &'static str {
    ANIMALS[rng.random_range(0..ANIMALS.len())]
}

/// Keeps file names URL-safe: fal's CDN names keep `[A-Za-z0-9._-]`.
pub(crate) fn sanitize_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' { c } else { '_' })
        .take(100)
        .collect();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') { "file".to_string() } else { cleaned }
}

/// File extension for common content types.
pub(crate) fn ext_for(content_type: &str) -> &'static str {
    match content_type.split(';').next().unwrap_or("").trim() {
        "image/jpeg" | "image/jpg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "image/gif" => "gif",
        "application/json" => "json",
        "text/plain" => "txt",
        _ => "bin",
    }
}

/// Percent-decodes a query component (`+` is a space).
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn iso_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(iso8601(t, false), "2023-11-14T22:13:20+00:00");
        let t = UNIX_EPOCH + Duration::from_micros(951_782_400_000_001);
        assert_eq!(iso8601(t, true), "2000-02-29T00:00:00.000001");
    }

    #[test]
    fn file_names() {
        assert_eq!(sanitize_file_name("../a b.png"), "a_b.png");
        assert_eq!(sanitize_file_name(""), "file");
    }
}
