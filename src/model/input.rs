//! The endpoint's input: a loosely typed [`Draft`] as a person writes it (CLI flags, TUI fields,
//! config defaults), validated into a [`ValidInput`], then — once local files are uploaded — the
//! exact JSON fal expects ([`KontextInput`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::catalog::Catalog;
use super::schema::{EndpointSchema, ImageInput};
use super::validation::{Field, FieldError, ValidationErrors};

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

/// The request body of any endpoint exactly as sent: a JSON object built by
/// [`ValidInput::to_wire`] from the endpoint's schema (the tolerance is a JSON string, fields
/// without a value or default are left out). Read back from the history as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KontextInput(pub Map<String, Value>);

impl KontextInput {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }
    /// Sets one field (tests and tools that send what validation would refuse).
    pub fn set(&mut self, name: &str, value: impl Into<Value>) {
        self.0.insert(name.to_string(), value.into());
    }
    pub fn prompt(&self) -> &str {
        self.get("prompt").and_then(Value::as_str).unwrap_or("")
    }
    pub fn seed(&self) -> Option<u64> {
        seed_of(&self.0)
    }
    /// How many images were asked for (fal's default, 1, when the endpoint has no such field).
    pub fn num_images(&self) -> u8 {
        num_images_of(&self.0)
    }
    pub fn output_format(&self) -> OutputFormat {
        output_format_of(&self.0)
    }
    pub fn guidance_scale(&self) -> Option<f64> {
        self.get("guidance_scale").and_then(Value::as_f64)
    }
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(value_text)
    }
    /// The input image URLs, from `image_urls` or the single `image_url`.
    pub fn image_urls(&self) -> Vec<&str> {
        match (self.get("image_urls"), self.get("image_url")) {
            (Some(Value::Array(a)), _) => a.iter().filter_map(Value::as_str).collect(),
            (_, Some(Value::String(u))) => vec![u.as_str()],
            _ => Vec::new(),
        }
    }
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
/// problem can be reported at once instead of stopping at the first. The endpoint's fields are
/// one map by their schema names (the endpoint descriptions are the only list of them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, from = "StoredDraft")]
pub struct Draft {
    pub prompt: String,
    pub images: Vec<String>,
    /// Every other field of the endpoint, by its wire name, as typed (`--set name=value`).
    #[serde(flatten)]
    pub fields: BTreeMap<String, String>,
}

/// A draft as the history stores it: today's flat map of texts, or a row written before the
/// fields were one map (typed keys such as `"seed": null`, `"sync_mode": false`, and `extra`).
#[derive(Default, Deserialize)]
#[serde(default)]
struct StoredDraft {
    prompt: String,
    images: Vec<String>,
    extra: BTreeMap<String, String>,
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
}

impl From<StoredDraft> for Draft {
    fn from(stored: StoredDraft) -> Draft {
        // An old row's `null` was "not given" and its `false` the default, so neither is a value.
        let given = stored.rest.into_iter().filter_map(|(name, v)| match v {
            Value::Null | Value::Bool(false) => None,
            v => Some((name, value_text(&v))),
        });
        let mut fields: BTreeMap<String, String> = given.collect();
        fields.extend(stored.extra);
        Draft { prompt: stored.prompt, images: stored.images, fields }
    }
}

/// A validated request whose images may still be local files: the endpoint's schema, the
/// prompt, the images and the validated values of its other fields (the wire JSON's, defaults
/// included), which [`ValidInput::to_wire`] sends.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidInput {
    pub schema: Arc<EndpointSchema>,
    pub prompt: String,
    pub images: Vec<ImageSource>,
    /// The endpoint's other fields as they will be sent, by wire name.
    pub values: Map<String, Value>,
}

impl ValidInput {
    /// The endpoint's id.
    pub fn endpoint_id(&self) -> &str {
        &self.schema.endpoint_id
    }

    /// One field's value as it will be sent (the prompt too), if it is sent.
    pub fn get(&self, name: &str) -> Option<Value> {
        match name {
            "prompt" => Some(Value::from(self.prompt.clone())),
            other => self.values.get(other).cloned(),
        }
    }

    /// Sets one field's value (tests and tools that send what validation would refuse).
    pub fn set(&mut self, name: &str, value: impl Into<Value>) {
        self.values.insert(name.to_string(), value.into());
    }

    pub fn seed(&self) -> Option<u64> {
        seed_of(&self.values)
    }

    /// How many images were asked for (fal's default, 1, when the endpoint has no such field).
    pub fn num_images(&self) -> u8 {
        num_images_of(&self.values)
    }

    pub fn output_format(&self) -> OutputFormat {
        output_format_of(&self.values)
    }

    /// Every field the endpoint has, in its order, as it will be sent (images aside).
    pub fn body(&self) -> Map<String, Value> {
        self.schema.fields.iter().filter_map(|f| self.get(&f.name).map(|v| (f.name.clone(), v))).collect()
    }

    /// The wire form, once every image has a URL fal can read.
    pub fn to_wire(&self, image_urls: Vec<String>) -> KontextInput {
        KontextInput(self.schema.wire_body(self.body(), image_urls))
    }

    /// Back to a draft (for re-running with overrides): only the endpoint's fields.
    pub fn to_draft(&self) -> Draft {
        let mut d = Draft {
            images: self
                .images
                .iter()
                .map(|i| match i {
                    ImageSource::Url(u) | ImageSource::DataUri(u) => u.clone(),
                    ImageSource::Local(p) => p.display().to_string(),
                })
                .collect(),
            ..Draft::default()
        };
        for (name, v) in self.body() {
            d.set(&name, value_text(&v));
        }
        d
    }

    fn from_body(schema: Arc<EndpointSchema>, mut values: Map<String, Value>, images: Vec<ImageSource>) -> ValidInput {
        let prompt = values.remove("prompt").and_then(|v| v.as_str().map(|s| s.trim().to_string())).unwrap_or_default();
        ValidInput { schema, prompt, images, values }
    }
}

fn seed_of(values: &Map<String, Value>) -> Option<u64> {
    values.get("seed").and_then(Value::as_u64)
}

fn output_format_of(values: &Map<String, Value>) -> OutputFormat {
    values.get("output_format").and_then(Value::as_str).and_then(OutputFormat::parse).unwrap_or_default()
}

fn num_images_of(values: &Map<String, Value>) -> u8 {
    values.get("num_images").and_then(Value::as_u64).map(|n| n.clamp(1, 255) as u8).unwrap_or(1)
}

impl Draft {
    /// Sets a field by its wire name.
    pub fn set(&mut self, name: &str, text: String) {
        match name {
            "prompt" => self.prompt = text,
            other => {
                self.fields.insert(other.to_string(), text);
            }
        }
    }

    /// This draft with one field set (see [`Draft::set`]).
    pub fn with(mut self, name: &str, text: impl Into<String>) -> Draft {
        self.set(name, text.into());
        self
    }

    /// One field's text as typed, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        match name {
            "prompt" => Some(self.prompt.as_str()),
            other => self.fields.get(other).map(String::as_str),
        }
    }

    /// Every field given, by wire name, as text (the prompt too; blank ones are left out).
    pub fn values(&self) -> BTreeMap<String, String> {
        let mut v: BTreeMap<String, String> =
            self.fields.iter().filter(|(_, t)| !t.trim().is_empty()).map(|(n, t)| (n.clone(), t.clone())).collect();
        if !self.prompt.trim().is_empty() {
            v.insert("prompt".into(), self.prompt.clone());
        }
        v
    }

    /// This draft with only the fields `schema` has (config defaults apply where they fit).
    pub fn only_fields_of(&self, schema: &EndpointSchema) -> Draft {
        let mut d = Draft { images: self.images.clone(), ..Draft::default() };
        for (name, text) in self.values() {
            if schema.field(&name).is_some() {
                d.set(&name, text);
            }
        }
        d
    }

    /// Checks every field against the default endpoint's schema and returns all problems at
    /// once; `max_images` is the image limit to apply. Local image paths are not looked at: the
    /// model does no I/O (see [`Draft::validate_with`]).
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
        let default = Catalog::bundled().default_schema();
        if default.images.max() == max_images {
            return self.validate_for(default, check_local);
        }
        let mut schema = EndpointSchema::clone(default);
        if let ImageInput::List { max, .. } = &mut schema.images {
            *max = max_images;
        }
        self.validate_for(&Arc::new(schema), check_local)
    }

    /// Checks every field against `schema` (one pass, every problem with its field):
    /// the fields, the number of images the endpoint takes, and each image reference.
    pub fn validate_for(
        &self,
        schema: &Arc<EndpointSchema>,
        check_local: impl Fn(&Path) -> Result<(), String>,
    ) -> Result<ValidInput, ValidationErrors> {
        let mut errors = Vec::new();
        let fields = schema.validate_values(&self.values());
        let body = match fields {
            Ok(b) => b,
            Err(e) => {
                errors.extend(e);
                Map::new()
            }
        };
        let image_error = schema.check_image_count(self.images.len());
        let mut images = Vec::new();
        let mut image_errors = Vec::new();
        for (i, text) in self.images.iter().enumerate() {
            let source = ImageSource::classify(text);
            let checked = check_image_source(&source).and_then(|()| match &source {
                ImageSource::Local(path) => check_local(path),
                _ => Ok(()),
            });
            if let Err(message) = checked {
                image_errors.push(FieldError { field: Field::ImageUrls(Some(i)), message });
            }
            images.push(source);
        }
        // In the order of the form: the prompt, then the images, then the rest.
        let at = errors.iter().take_while(|e| e.field == Field::Prompt).count();
        let image_problems: Vec<FieldError> = image_error.into_iter().chain(image_errors).collect();
        errors.splice(at..at, image_problems);
        if !errors.is_empty() {
            return Err(ValidationErrors(errors));
        }
        Ok(ValidInput::from_body(schema.clone(), body, images))
    }
}

/// A JSON value as a person would type it: strings bare, `5` not `5.0`.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.is_f64() => n.as_f64().map(|f| f.to_string()).unwrap_or_else(|| n.to_string()),
        other => other.to_string(),
    }
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
