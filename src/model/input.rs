//! The endpoint's input: a loosely typed [`Draft`] as a person writes it (CLI flags, TUI fields,
//! config defaults), validated into a [`ValidInput`], then — once local files are uploaded — the
//! exact JSON fal expects ([`KontextInput`]).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::validation::{Field, FieldError, ValidationErrors};

pub const DEFAULT_GUIDANCE_SCALE: f64 = 3.5;
pub const GUIDANCE_RANGE: (f64, f64) = (1.0, 20.0);
pub const NUM_IMAGES_RANGE: (u8, u8) = (1, 4);
/// fal's toolkit refuses data: URIs longer than this (fal-protocol.md §3.1).
pub const MAX_DATA_URI_LEN: usize = 10 * 1024 * 1024;
/// fal's toolkit refuses longer http(s) URLs (fal-protocol.md §3.1).
pub const MAX_URL_LEN: usize = 2048;
/// The largest local image kontext sends (inline or uploaded). fal documents no limit for this
/// endpoint; kontext uploads in one PUT, fal's own clients switch to multipart uploads above
/// 90 MiB, and 64 MiB is also the cap on images kontext downloads. Checked by size (stat)
/// before a byte is read, so a huge file is neither read nor copied into the history.
pub const MAX_LOCAL_IMAGE_BYTES: u64 = 64 * 1024 * 1024;
/// fal's Kontext endpoints take input images up to 14142 px a side (fal-kontext-family.md §2).
pub const MAX_IMAGE_SIDE: u32 = 14142;
/// Decoding a local input to check it may allocate at most this much (a 12000×12000 RGB image
/// fits); a file that claims more is refused as a decompression bomb.
pub const MAX_DECODE_BYTES: u64 = 512 * 1024 * 1024;

/// The request body for `fal-ai/flux-pro/kontext/multi` exactly as fal types it: the tolerance is a
/// JSON string, optional fields are omitted when unset, every other field is always sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KontextInput {
    pub prompt: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub seed: Option<u64>,
    pub guidance_scale: f64,
    pub sync_mode: bool,
    pub num_images: u8,
    pub output_format: OutputFormat,
    pub safety_tolerance: SafetyTolerance,
    pub enhance_prompt: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub aspect_ratio: Option<AspectRatio>,
    pub image_urls: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Jpeg,
    Png,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 2] = [OutputFormat::Jpeg, OutputFormat::Png];
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "jpeg",
            OutputFormat::Png => "png",
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Jpeg => "image/jpeg",
            OutputFormat::Png => "image/png",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => Some(OutputFormat::Jpeg),
            "png" => Some(OutputFormat::Png),
            _ => None,
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// "1" (strictest) … "6" (most permissive); fal wants it as a JSON string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SafetyTolerance(u8);

impl SafetyTolerance {
    pub const DEFAULT: SafetyTolerance = SafetyTolerance(2);
    pub fn new(level: u8) -> Option<Self> {
        (1..=6).contains(&level).then_some(SafetyTolerance(level))
    }
    pub fn level(self) -> u8 {
        self.0
    }
}

impl Default for SafetyTolerance {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Serialize for SafetyTolerance {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for SafetyTolerance {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<u8>()
            .ok()
            .and_then(SafetyTolerance::new)
            .ok_or_else(|| serde::de::Error::custom(format!("safety_tolerance must be \"1\"..\"6\", got {s:?}")))
    }
}

impl fmt::Display for SafetyTolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AspectRatio {
    #[serde(rename = "21:9")]
    R21x9,
    #[serde(rename = "16:9")]
    R16x9,
    #[serde(rename = "4:3")]
    R4x3,
    #[serde(rename = "3:2")]
    R3x2,
    #[serde(rename = "1:1")]
    R1x1,
    #[serde(rename = "2:3")]
    R2x3,
    #[serde(rename = "3:4")]
    R3x4,
    #[serde(rename = "9:16")]
    R9x16,
    #[serde(rename = "9:21")]
    R9x21,
}

impl AspectRatio {
    pub const ALL: [AspectRatio; 9] = [
        AspectRatio::R21x9,
        AspectRatio::R16x9,
        AspectRatio::R4x3,
        AspectRatio::R3x2,
        AspectRatio::R1x1,
        AspectRatio::R2x3,
        AspectRatio::R3x4,
        AspectRatio::R9x16,
        AspectRatio::R9x21,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            AspectRatio::R21x9 => "21:9",
            AspectRatio::R16x9 => "16:9",
            AspectRatio::R4x3 => "4:3",
            AspectRatio::R3x2 => "3:2",
            AspectRatio::R1x1 => "1:1",
            AspectRatio::R2x3 => "2:3",
            AspectRatio::R3x4 => "3:4",
            AspectRatio::R9x16 => "9:16",
            AspectRatio::R9x21 => "9:21",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().replace(['x', '/'], ":");
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for AspectRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an input image comes from, as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageSource {
    /// An http(s) URL fal fetches itself.
    Url(String),
    /// A `data:` URI sent inline.
    DataUri(String),
    /// A local file the client uploads to fal storage (or inlines when small).
    Local(PathBuf),
}

impl ImageSource {
    /// Classifies what a person typed: a URL, a data: URI, or a path (`file://` too).
    pub fn classify(text: &str) -> ImageSource {
        let t = text.trim();
        let lower = t.get(..8).unwrap_or(t).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            ImageSource::Url(t.to_string())
        } else if lower.starts_with("data:") {
            ImageSource::DataUri(t.to_string())
        } else if let Some(path) = t.strip_prefix("file://") {
            ImageSource::Local(PathBuf::from(path))
        } else {
            ImageSource::Local(PathBuf::from(t))
        }
    }

    /// The text form, as stored and shown.
    pub fn display(&self) -> String {
        match self {
            ImageSource::Url(u) => u.clone(),
            ImageSource::DataUri(d) => {
                let head: String = d.chars().take(40).collect();
                format!("{head}… ({} bytes)", d.len())
            }
            ImageSource::Local(p) => p.display().to_string(),
        }
    }
}

/// What a person asked for, before validation: free text where a typo is possible, so that every
/// problem can be reported at once instead of stopping at the first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Draft {
    pub prompt: String,
    pub images: Vec<String>,
    pub seed: Option<String>,
    pub guidance_scale: Option<String>,
    pub sync_mode: bool,
    pub num_images: Option<String>,
    pub output_format: Option<String>,
    pub safety_tolerance: Option<String>,
    pub enhance_prompt: bool,
    pub aspect_ratio: Option<String>,
}

/// A validated request whose images may still be local files.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidInput {
    pub prompt: String,
    pub images: Vec<ImageSource>,
    pub seed: Option<u64>,
    pub guidance_scale: f64,
    pub sync_mode: bool,
    pub num_images: u8,
    pub output_format: OutputFormat,
    pub safety_tolerance: SafetyTolerance,
    pub enhance_prompt: bool,
    pub aspect_ratio: Option<AspectRatio>,
}

impl ValidInput {
    /// The wire form, once every image has a URL fal can read.
    pub fn to_wire(&self, image_urls: Vec<String>) -> KontextInput {
        KontextInput {
            prompt: self.prompt.clone(),
            seed: self.seed,
            guidance_scale: self.guidance_scale,
            sync_mode: self.sync_mode,
            num_images: self.num_images,
            output_format: self.output_format,
            safety_tolerance: self.safety_tolerance,
            enhance_prompt: self.enhance_prompt,
            aspect_ratio: self.aspect_ratio,
            image_urls,
        }
    }

    /// Back to a draft (for re-running with overrides).
    pub fn to_draft(&self) -> Draft {
        Draft {
            prompt: self.prompt.clone(),
            images: self
                .images
                .iter()
                .map(|i| match i {
                    ImageSource::Url(u) | ImageSource::DataUri(u) => u.clone(),
                    ImageSource::Local(p) => p.display().to_string(),
                })
                .collect(),
            seed: self.seed.map(|s| s.to_string()),
            guidance_scale: Some(self.guidance_scale.to_string()),
            sync_mode: self.sync_mode,
            num_images: Some(self.num_images.to_string()),
            output_format: Some(self.output_format.to_string()),
            safety_tolerance: Some(self.safety_tolerance.to_string()),
            enhance_prompt: self.enhance_prompt,
            aspect_ratio: self.aspect_ratio.map(|a| a.to_string()),
        }
    }
}

impl Draft {
    /// Checks every field against the endpoint's schema and returns all problems at once.
    /// `max_images` is the endpoint's input image limit.
    /// Local image paths are not looked at: the model does no I/O (see [`Draft::validate_with`]).
    pub fn validate(&self, max_images: usize) -> Result<ValidInput, ValidationErrors> {
        self.validate_with(max_images, |_| Ok(()))
    }

    /// Like [`Draft::validate`], with `check_local` looking at each local image path (e.g.
    /// `runner::check_local_image`, which reads the disk); its problem is that image's error.
    pub fn validate_with(
        &self,
        max_images: usize,
        check_local: impl Fn(&Path) -> Result<(), String>,
    ) -> Result<ValidInput, ValidationErrors> {
        let mut errors = Vec::new();
        let mut err = |field: Field, message: String| errors.push(FieldError { field, message });

        let prompt = self.prompt.trim().to_string();
        if prompt.is_empty() {
            err(Field::Prompt, "prompt is required: describe the edit you want".into());
        }

        let mut images = Vec::new();
        if self.images.is_empty() {
            err(
                Field::ImageUrls(None),
                "at least one input image is required: give a URL, a data: URI or a local file path".into(),
            );
        } else if self.images.len() > max_images {
            err(
                Field::ImageUrls(None),
                format!(
                    "at most {max_images} input images are allowed for this endpoint, got {}: remove {}",
                    self.images.len(),
                    self.images.len() - max_images
                ),
            );
        }
        for (i, text) in self.images.iter().enumerate() {
            let source = ImageSource::classify(text);
            let checked = check_image_source(&source).and_then(|()| match &source {
                ImageSource::Local(path) => check_local(path),
                _ => Ok(()),
            });
            if let Err(message) = checked {
                err(Field::ImageUrls(Some(i)), message);
            }
            images.push(source);
        }

        let seed = match self.seed.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => match s.parse::<u64>() {
                Ok(v) => Some(v),
                Err(_) => {
                    err(Field::Seed, format!("seed must be a whole number from 0 to {}, got {s:?}", u64::MAX));
                    None
                }
            },
        };

        let guidance_scale = match trimmed(&self.guidance_scale) {
            None => DEFAULT_GUIDANCE_SCALE,
            Some(s) => match s.parse::<f64>() {
                Ok(v) if v.is_finite() && (GUIDANCE_RANGE.0..=GUIDANCE_RANGE.1).contains(&v) => v,
                Ok(v) if v.is_finite() => {
                    err(Field::GuidanceScale, format!("guidance_scale must be between 1 and 20, got {s}"));
                    v
                }
                _ => {
                    err(Field::GuidanceScale, format!("guidance_scale must be a number between 1 and 20, got {s:?}"));
                    DEFAULT_GUIDANCE_SCALE
                }
            },
        };

        let num_images = match trimmed(&self.num_images) {
            None => 1,
            Some(s) => match s.parse::<i64>() {
                Ok(v) if (1..=4).contains(&v) => v as u8,
                Ok(_) => {
                    err(Field::NumImages, format!("num_images must be between 1 and 4, got {s}"));
                    1
                }
                Err(_) => {
                    err(Field::NumImages, format!("num_images must be a whole number between 1 and 4, got {s:?}"));
                    1
                }
            },
        };

        let output_format = match trimmed(&self.output_format) {
            None => OutputFormat::default(),
            Some(s) => OutputFormat::parse(s).unwrap_or_else(|| {
                err(Field::OutputFormat, format!("output_format must be jpeg or png, got {s:?}"));
                OutputFormat::default()
            }),
        };

        let safety_tolerance = match trimmed(&self.safety_tolerance) {
            None => SafetyTolerance::DEFAULT,
            Some(s) => s.parse::<u8>().ok().and_then(SafetyTolerance::new).unwrap_or_else(|| {
                err(
                    Field::SafetyTolerance,
                    format!("safety_tolerance must be one of 1, 2, 3, 4, 5, 6 (1 is strictest), got {s:?}"),
                );
                SafetyTolerance::DEFAULT
            }),
        };

        let aspect_ratio = match trimmed(&self.aspect_ratio) {
            None => None,
            Some(s) if s.eq_ignore_ascii_case("auto") => None,
            Some(s) => match AspectRatio::parse(s) {
                Some(r) => Some(r),
                None => {
                    let all: Vec<_> = AspectRatio::ALL.iter().map(|r| r.as_str()).collect();
                    err(
                        Field::AspectRatio,
                        format!("aspect_ratio must be one of {} (or leave it unset), got {s:?}", all.join(", ")),
                    );
                    None
                }
            },
        };

        if !errors.is_empty() {
            return Err(ValidationErrors(errors));
        }
        Ok(ValidInput {
            prompt,
            images,
            seed,
            guidance_scale,
            sync_mode: self.sync_mode,
            num_images,
            output_format,
            safety_tolerance,
            enhance_prompt: self.enhance_prompt,
            aspect_ratio,
        })
    }
}

fn trimmed(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Cheap checks that an image reference can work, without I/O: a URL's form, a data: URI's
/// header; a local path only for being non-empty (`runner::check_local_image` looks at the file).
pub fn check_image_source(source: &ImageSource) -> Result<(), String> {
    match source {
        ImageSource::Url(u) => {
            if u.len() > MAX_URL_LEN {
                return Err(format!("URL is {} characters long; fal accepts at most {MAX_URL_LEN}", u.len()));
            }
            let url = url::Url::parse(u).map_err(|e| format!("{u:?} is not a valid URL: {e}"))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err(format!("{u:?} has no host name"));
            }
            Ok(())
        }
        ImageSource::DataUri(d) => {
            if d.len() > MAX_DATA_URI_LEN {
                return Err(format!(
                    "data: URI is {} bytes; fal accepts at most {MAX_DATA_URI_LEN}: use a URL or a local file instead",
                    d.len()
                ));
            }
            let (meta, _) = d.split_once(',').ok_or("data: URI has no ',' separating its header from its data")?;
            if !meta.to_ascii_lowercase().starts_with("data:image/") {
                return Err(format!("data: URI must hold an image (data:image/...), got {meta:?}"));
            }
            Ok(())
        }
        ImageSource::Local(path) if path.as_os_str().is_empty() => {
            Err("empty image reference: give a URL, a data: URI or a file path".into())
        }
        ImageSource::Local(_) => Ok(()),
    }
}
