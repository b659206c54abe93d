//! Request parameters carried inside the images written to the user's folder: PNG `tEXt` chunks
//! (`iTXt` when a value is not Latin-1) and a JPEG `COM` segment, so a file found weeks later says
//! how it was made (`kontext inspect`) and can be made again (`kontext run --from`).
//!
//! Layout: PNG gets one chunk per field (`kontext:prompt`, `kontext:seed`, …) for other tools and
//! one `kontext` chunk holding the whole record as ASCII JSON, which is what `read` uses. JPEG
//! gets one COM segment: `kontext ` followed by the same JSON.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::KontextInput;

/// Wire fields the record has a place of its own for; every other one goes in `other`.
const RECORDED_FIELDS: &[&str] = &[
    "prompt",
    "image_urls",
    "image_url",
    "seed",
    "guidance_scale",
    "output_format",
    "aspect_ratio",
    "num_images",
    "safety_tolerance",
    "enhance_prompt",
    "sync_mode",
];

/// What a file written by kontext says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageMetadata {
    pub prompt: String,
    /// As sent; `data:` URIs are shortened to their type and size (they can be megabytes).
    pub image_urls: Vec<String>,
    /// The seed the image was made with (fal's answer when none was asked for).
    pub seed: Option<u64>,
    #[serde(default)]
    pub guidance_scale: Option<f64>,
    pub output_format: String,
    #[serde(default)]
    pub aspect_ratio: Option<String>,
    #[serde(default)]
    pub num_images: Option<u8>,
    #[serde(default)]
    pub safety_tolerance: Option<String>,
    #[serde(default)]
    pub enhance_prompt: Option<bool>,
    pub endpoint: String,
    pub request_id: String,
    /// Which output of the request this file is (0-based).
    #[serde(default)]
    pub index: usize,
    /// The endpoint's other fields as sent (`num_inference_steps`, `resolution_mode` …).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub other: Map<String, Value>,
}

const JSON_KEY: &str = "kontext";
const JPEG_PREFIX: &[u8] = b"kontext ";
/// Marker for a data: URI left out of the metadata.
pub const OMITTED_DATA_URI: &str = "(omitted)";

impl ImageMetadata {
    pub fn new(endpoint: &str, request_id: &str, sent: &KontextInput, seed: Option<u64>, index: usize) -> Self {
        ImageMetadata {
            prompt: sent.prompt().to_string(),
            image_urls: sent.image_urls().iter().map(|u| shorten_data_uri(u)).collect(),
            seed: seed.or(sent.seed()),
            guidance_scale: sent.guidance_scale(),
            output_format: sent.output_format().to_string(),
            aspect_ratio: sent.text("aspect_ratio"),
            num_images: Some(sent.num_images()),
            safety_tolerance: sent.text("safety_tolerance"),
            enhance_prompt: sent.get("enhance_prompt").and_then(Value::as_bool),
            endpoint: endpoint.to_string(),
            request_id: request_id.to_string(),
            index,
            other: sent
                .0
                .iter()
                .filter(|(k, _)| !RECORDED_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// The request's fields as sent (images aside), by wire name: what [`ImageMetadata::new`]
    /// recorded, for making the request again.
    pub fn sent_values(&self) -> Map<String, Value> {
        let mut v = Map::new();
        v.insert("prompt".into(), Value::from(self.prompt.clone()));
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                v.insert(name.to_string(), value);
            }
        };
        put("seed", self.seed.map(Value::from));
        put("guidance_scale", self.guidance_scale.map(Value::from));
        put("num_images", self.num_images.map(Value::from));
        put("output_format", Some(Value::from(self.output_format.clone())));
        put("safety_tolerance", self.safety_tolerance.clone().map(Value::from));
        put("enhance_prompt", self.enhance_prompt.filter(|on| *on).map(Value::from));
        put("aspect_ratio", self.aspect_ratio.clone().map(Value::from));
        v.extend(self.other.clone());
        v
    }

    /// Every field as text, in a fixed order (for display and PNG chunks).
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("prompt", self.prompt.clone()),
            ("image_urls", self.image_urls.join("\n")),
            ("seed", self.seed.map(|s| s.to_string()).unwrap_or_default()),
            ("guidance_scale", self.guidance_scale.map(|g| g.to_string()).unwrap_or_default()),
            ("output_format", self.output_format.clone()),
            ("aspect_ratio", self.aspect_ratio.clone().unwrap_or_else(|| "auto".into())),
        ];
        if let Some(n) = self.num_images {
            f.push(("num_images", n.to_string()));
        }
        if let Some(s) = &self.safety_tolerance {
            f.push(("safety_tolerance", s.clone()));
        }
        if let Some(e) = self.enhance_prompt {
            f.push(("enhance_prompt", e.to_string()));
        }
        for (name, v) in &self.other {
            f.push((crate::model::Field::for_name(name).name(), crate::model::value_text(v)));
        }
        f.push(("endpoint", self.endpoint.clone()));
        f.push(("request_id", self.request_id.clone()));
        f.push(("index", self.index.to_string()));
        f
    }

    /// The record as JSON with every non-ASCII character escaped, so it fits a Latin-1 tEXt chunk
    /// and a JPEG comment byte for byte.
    fn ascii_json(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        let mut out = String::with_capacity(json.len());
        for c in json.chars() {
            if c.is_ascii() {
                out.push(c);
            } else {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
        out
    }
}

/// `data:image/png;base64,…` → `data:image/png;base64,(omitted) 12345 bytes`.
fn shorten_data_uri(u: &str) -> String {
    if !u.starts_with("data:") {
        return u.to_string();
    }
    let head = u.split_once(',').map(|(h, _)| h).unwrap_or("data:");
    format!("{head},{OMITTED_DATA_URI} {} bytes", u.len())
}

/// Whether a URL in the metadata stands for a data: URI that was left out.
pub fn is_omitted_data_uri(u: &str) -> bool {
    u.starts_with("data:") && u.contains(OMITTED_DATA_URI)
}

/// Returns `bytes` with the metadata embedded, for PNG and JPEG; other data is returned as is.
pub fn embed(bytes: &[u8], meta: &ImageMetadata) -> Result<Vec<u8>, String> {
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Png) => embed_png(bytes, meta),
        Ok(image::ImageFormat::Jpeg) => embed_jpeg(bytes, meta),
        _ => Ok(bytes.to_vec()),
    }
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

fn embed_png(bytes: &[u8], meta: &ImageMetadata) -> Result<Vec<u8>, String> {
    use png::text_metadata::{EncodableTextChunk, ITXtChunk, TEXtChunk};
    // The first chunk is IHDR: 4 length + 4 type + 13 data + 4 CRC after the signature.
    let ihdr_end = PNG_SIGNATURE.len() + 25;
    if bytes.len() < ihdr_end || &bytes[..8] != PNG_SIGNATURE || &bytes[12..16] != b"IHDR" {
        return Err("not a PNG with an IHDR chunk first".into());
    }
    let mut chunks = Vec::new();
    let mut add = |key: &str, text: &str| -> Result<(), String> {
        let latin1 = text.chars().all(|c| (c as u32) < 256);
        let r = if latin1 {
            TEXtChunk::new(key, text).encode(&mut chunks)
        } else {
            ITXtChunk::new(key, text).encode(&mut chunks)
        };
        r.map_err(|e| format!("cannot encode the {key} text chunk: {e}"))
    };
    add(JSON_KEY, &meta.ascii_json())?;
    for (k, v) in meta.fields() {
        add(&format!("kontext:{k}"), &v)?;
    }
    let mut out = Vec::with_capacity(bytes.len() + chunks.len());
    out.extend_from_slice(&bytes[..ihdr_end]);
    out.extend_from_slice(&chunks);
    out.extend_from_slice(&bytes[ihdr_end..]);
    Ok(out)
}

fn embed_jpeg(bytes: &[u8], meta: &ImageMetadata) -> Result<Vec<u8>, String> {
    if bytes.len() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8 {
        return Err("not a JPEG (no SOI marker)".into());
    }
    let mut payload = JPEG_PREFIX.to_vec();
    payload.extend_from_slice(meta.ascii_json().as_bytes());
    if payload.len() > 65533 {
        return Err(format!("the metadata is {} bytes, over a JPEG comment's 65533", payload.len()));
    }
    // After SOI and any APP0 (JFIF wants its APP0 first).
    let mut at = 2;
    if bytes.len() > 6 && bytes[2] == 0xFF && bytes[3] == 0xE0 {
        let len = u16::from_be_bytes([bytes[4], bytes[5]]) as usize;
        if 4 + len <= bytes.len() {
            at = 4 + len;
        }
    }
    let mut out = Vec::with_capacity(bytes.len() + payload.len() + 4);
    out.extend_from_slice(&bytes[..at]);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&payload);
    out.extend_from_slice(&bytes[at..]);
    Ok(out)
}

/// Reads kontext's metadata from a PNG or JPEG. `Ok(None)`: a readable image without it.
pub fn read(bytes: &[u8]) -> Result<Option<ImageMetadata>, String> {
    let json = match image::guess_format(bytes) {
        Ok(image::ImageFormat::Png) => read_png(bytes)?,
        Ok(image::ImageFormat::Jpeg) => read_jpeg(bytes)?,
        Ok(other) => return Err(format!("a {other:?} image; kontext writes its parameters into PNG and JPEG only")),
        Err(_) => return Err("not an image (neither PNG nor JPEG)".into()),
    };
    match json {
        None => Ok(None),
        Some(j) => serde_json::from_str(&j).map(Some).map_err(|e| format!("the kontext metadata is unreadable: {e}")),
    }
}

fn read_png(bytes: &[u8]) -> Result<Option<String>, String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().map_err(|e| format!("the PNG cannot be read: {e}"))?;
    let info = reader.info();
    if let Some(t) = info.uncompressed_latin1_text.iter().find(|t| t.keyword == JSON_KEY) {
        return Ok(Some(t.text.clone()));
    }
    for t in &info.utf8_text {
        if t.keyword == JSON_KEY {
            return t.get_text().map(Some).map_err(|e| format!("the PNG's kontext chunk cannot be read: {e}"));
        }
    }
    Ok(None)
}

fn read_jpeg(bytes: &[u8]) -> Result<Option<String>, String> {
    let mut at = 2;
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xFF {
            return Ok(None);
        }
        let marker = bytes[at + 1];
        // Start of scan or end of image: no more header segments.
        if marker == 0xDA || marker == 0xD9 {
            return Ok(None);
        }
        if marker == 0xFF {
            at += 1;
            continue;
        }
        let len = u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
        if len < 2 || at + 2 + len > bytes.len() {
            return Err("the JPEG's header segments are truncated".into());
        }
        let data = &bytes[at + 4..at + 2 + len];
        if marker == 0xFE
            && let Some(json) = data.strip_prefix(JPEG_PREFIX)
        {
            return String::from_utf8(json.to_vec())
                .map(Some)
                .map_err(|_| "the JPEG's kontext comment is not text".to_string());
        }
        at += 2 + len;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    fn sent() -> KontextInput {
        let body = serde_json::json!({
            "prompt": "make it night — ночь 🌙",
            "guidance_scale": 4.5,
            "sync_mode": false,
            "num_images": 2,
            "output_format": "png",
            "safety_tolerance": "2",
            "enhance_prompt": false,
            "image_urls": ["https://x.test/a.png", "data:image/png;base64,AAAA"],
        });
        serde_json::from_value(body).unwrap()
    }

    fn encoded(format: image::ImageFormat) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(5, 4, image::Rgb([200, 10, 10]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn round_trips_through_png_and_jpeg_and_stays_decodable() {
        let meta = ImageMetadata::new("fal-ai/flux-pro/kontext/multi", "req-1", &sent(), Some(77), 1);
        assert_eq!(meta.image_urls[1], "data:image/png;base64,(omitted) 26 bytes");
        for format in [image::ImageFormat::Png, image::ImageFormat::Jpeg] {
            let plain = encoded(format);
            assert_eq!(read(&plain).unwrap(), None);
            let tagged = embed(&plain, &meta).unwrap();
            assert_eq!(read(&tagged).unwrap().as_ref(), Some(&meta), "{format:?}");
            let img = image::load_from_memory(&tagged).unwrap();
            assert_eq!((img.width(), img.height()), (5, 4));
        }
        assert!(read(b"hello").is_err());
    }

    /// A tagged image of each kind, to mutate.
    fn tagged(format: image::ImageFormat) -> Vec<u8> {
        let meta = ImageMetadata::new("fal-ai/flux-pro/kontext/multi", "req-1", &sent(), Some(77), 1);
        embed(&encoded(format), &meta).unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

        /// Arbitrary bytes, and arbitrary bytes behind a PNG or JPEG signature, never panic.
        #[test]
        fn arbitrary_bytes_never_panic(
            head in 0usize..3,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..2048),
        ) {
            let prefix: &[u8] = match head {
                0 => b"",
                1 => b"\x89PNG\r\n\x1a\n",
                _ => b"\xff\xd8",
            };
            let _ = read(&[prefix, &body].concat());
        }

        /// A real tagged file with bytes flipped, cut or inserted anywhere: an answer or an error,
        /// never a panic.
        #[test]
        fn mutated_tagged_files_never_panic(
            jpeg in proptest::bool::ANY,
            edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY, 0u8..3), 1..8),
        ) {
            let mut bytes = tagged(if jpeg { image::ImageFormat::Jpeg } else { image::ImageFormat::Png });
            for (at, b, op) in edits {
                if bytes.is_empty() { break; }
                let at = at % bytes.len();
                match op {
                    0 => bytes[at] = b,
                    1 => bytes.truncate(at),
                    _ => bytes.insert(at, b),
                }
            }
            let _ = read(&bytes);
        }
    }

    /// The JPEG segment walk moves forward at least one byte per step, so its work is bounded
    /// by the input's length: megabytes of fill bytes or of tiny segments are walked once.
    #[test]
    fn the_jpeg_walk_is_linear_in_the_input() {
        let mut fill = vec![0xFF, 0xD8];
        fill.resize(8 << 20, 0xFF);
        assert_eq!(read(&fill).unwrap(), None);
        let mut segments = vec![0xFF, 0xD8];
        while segments.len() < 8 << 20 {
            segments.extend_from_slice(&[0xFF, 0xE1, 0x00, 0x02]); // empty APP1 segments
        }
        assert_eq!(read(&segments).unwrap(), None);
    }
}
