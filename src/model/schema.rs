//! Endpoint descriptions as data: one OpenAPI snapshot per endpoint (`endpoints/*.json`, in the
//! shape fal's model API publishes, plus a small `x-kontext` block), parsed into an
//! [`EndpointSchema`] that lists the fields in order with their kind, range or choices, default,
//! help and CLI flag, the image input, the output's image fields and the price unit. Validation,
//! the wire body, config defaults, the history and the emulator's 422s all derive from it.
//!
//! No I/O here: the bundled files are compiled in (`model::catalog`); files added by
//! `kontext models add` are read by `runner::catalog` and handed to `Catalog::with_added`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::validation::{Field, FieldError};

/// What a field holds, with its limits.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    Text,
    /// A whole number within `min..=max` (fal's seeds go up to `u64::MAX`).
    Integer {
        min: i128,
        max: i128,
    },
    Number {
        min: Option<f64>,
        max: Option<f64>,
    },
    Bool,
    /// One of these strings (fal's enums; a JSON number is not one of them).
    Choice(Vec<String>),
}

impl FieldKind {
    /// `"integer 1–4"`, `"one of jpeg, png"`: for listings and help.
    pub fn describe(&self) -> String {
        match self {
            FieldKind::Text => "text".into(),
            FieldKind::Integer { min, max } if *max == i128::from(u64::MAX) => format!("integer ≥ {min}"),
            FieldKind::Integer { min, max } => format!("integer {min}–{max}"),
            FieldKind::Number { min: Some(a), max: Some(b) } => format!("number {a}–{b}"),
            FieldKind::Number { .. } => "number".into(),
            FieldKind::Bool => "true/false".into(),
            FieldKind::Choice(c) => format!("one of {}", c.join(", ")),
        }
    }
}

/// One input field of an endpoint (the image field is described by [`ImageInput`] instead).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    pub name: String,
    pub title: String,
    pub kind: FieldKind,
    pub required: bool,
    /// fal's default, sent when the user sets nothing; `None` leaves the field out.
    pub default: Option<Value>,
    pub help: String,
    /// How `kontext run` sets it: a dedicated flag (`--guidance`) or `--set NAME=VALUE`.
    pub flag: String,
}

impl FieldSpec {
    /// The tag its validation errors carry.
    pub fn field(&self) -> Field {
        Field::for_name(&self.name)
    }

    /// Checks text as typed; `Ok(None)` is a deliberate "unset" (`auto`).
    pub fn parse_text(&self, text: &str) -> Result<Option<Value>, String> {
        parse_value(self, text.trim())
    }

    /// The default as text, as a form or listing shows it.
    pub fn default_text(&self) -> Option<String> {
        self.default.as_ref().map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

/// How an endpoint takes input images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageInput {
    /// Text to image: no image field.
    None,
    /// `image_url`: exactly one.
    One { field: String },
    /// `image_urls`: a list of `min..=max`.
    List { field: String, min: usize, max: usize },
}

impl ImageInput {
    pub fn min(&self) -> usize {
        match self {
            ImageInput::None => 0,
            ImageInput::One { .. } => 1,
            ImageInput::List { min, .. } => *min,
        }
    }
    pub fn max(&self) -> usize {
        match self {
            ImageInput::None => 0,
            ImageInput::One { .. } => 1,
            ImageInput::List { max, .. } => *max,
        }
    }
    pub fn field(&self) -> Option<&str> {
        match self {
            ImageInput::None => None,
            ImageInput::One { field } | ImageInput::List { field, .. } => Some(field),
        }
    }
}

/// What fal bills an endpoint by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PriceUnit {
    /// Per output image.
    Image,
    /// Per megapixel of output (rounded up per image), plus the inputs' where `counts_input`.
    Megapixel { counts_input: bool },
    /// A unit kontext cannot estimate (shown, never guessed).
    Other(String),
}

impl PriceUnit {
    pub fn parse(unit: &str, counts_input: bool) -> PriceUnit {
        match unit.trim().to_ascii_lowercase().as_str() {
            "image" | "images" | "per image" => PriceUnit::Image,
            "megapixel" | "megapixels" | "mp" => PriceUnit::Megapixel { counts_input },
            other => PriceUnit::Other(other.to_string()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            PriceUnit::Image => "image",
            PriceUnit::Megapixel { .. } => "megapixel",
            PriceUnit::Other(s) => s,
        }
    }
}

/// One endpoint, as its description says.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointSchema {
    pub endpoint_id: String,
    pub title: String,
    pub category: String,
    /// Where the description came from, and when.
    pub source: String,
    pub date: String,
    /// Every input field but the image field, in fal's order.
    pub fields: Vec<FieldSpec>,
    pub images: ImageInput,
    /// The fields an output image carries (`file_name`, `file_size` on [dev]).
    pub output_image_fields: Vec<String>,
    pub price_unit: PriceUnit,
    /// The model item as fal's model API returns it (without `x-kontext`), for the emulator.
    pub model_item: Value,
}

/// A description that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(pub String);

/// CLI flags that have their own name; every other field is `--set NAME=VALUE`.
const DEDICATED_FLAGS: &[(&str, &str)] = &[
    ("prompt", "--prompt"),
    ("seed", "--seed"),
    ("guidance_scale", "--guidance"),
    ("num_images", "--num-images"),
    ("output_format", "--format"),
    ("safety_tolerance", "--safety"),
    ("enhance_prompt", "--enhance-prompt"),
    ("aspect_ratio", "--aspect-ratio"),
    ("sync_mode", "--sync"),
];

fn flag_for(name: &str) -> String {
    DEDICATED_FLAGS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| f.to_string())
        .unwrap_or_else(|| format!("--set {name}=…"))
}

/// Follows a local `#/components/schemas/X` reference.
fn resolve<'a>(openapi: &'a Value, v: &'a Value) -> &'a Value {
    let mut v = v;
    for _ in 0..8 {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else { break };
        let Some(name) = r.strip_prefix("#/components/schemas/") else { break };
        match openapi.pointer(&format!("/components/schemas/{name}")) {
            Some(next) => v = next,
            None => break,
        }
    }
    v
}

/// A property with `anyOf: [X, null]` or `allOf: [X]` (how fal writes optional and enum fields)
/// becomes X, with the outer keys (title, default, description) kept.
fn flatten(openapi: &Value, prop: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    let prop = resolve(openapi, prop);
    for key in ["anyOf", "allOf", "oneOf"] {
        if let Some(Value::Array(alts)) = prop.get(key) {
            let real: Vec<&Value> =
                alts.iter().map(|a| resolve(openapi, a)).filter(|a| a.get("type") != Some(&"null".into())).collect();
            if let [one] = real.as_slice()
                && let Some(m) = one.as_object()
            {
                out.extend(m.clone());
            }
        }
    }
    if let Some(m) = prop.as_object() {
        for (k, v) in m {
            if !matches!(k.as_str(), "anyOf" | "allOf" | "oneOf") {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

fn input_schema<'a>(openapi: &'a Value, endpoint_id: &str) -> Option<&'a Value> {
    let path = openapi.get("paths")?.get(format!("/{endpoint_id}"))?;
    let schema = path.pointer("/post/requestBody/content/application~1json/schema")?;
    Some(resolve(openapi, schema))
}

fn output_image_fields(openapi: &Value, endpoint_id: &str) -> Vec<String> {
    let out = openapi
        .get("paths")
        .and_then(|p| p.get(format!("/{endpoint_id}/requests/{{request_id}}")))
        .and_then(|p| p.pointer("/get/responses/200/content/application~1json/schema"))
        .map(|s| resolve(openapi, s));
    let image = out
        .and_then(|o| o.pointer("/properties/images/items"))
        .map(|i| resolve(openapi, i))
        .and_then(|i| i.get("properties"))
        .and_then(Value::as_object);
    image.map(|m| m.keys().cloned().collect()).unwrap_or_else(|| vec!["url".into()])
}

impl EndpointSchema {
    /// Parses one description file: a model item of fal's model API (`endpoint_id`,
    /// `metadata`, `openapi`) with or without our `x-kontext` block.
    pub fn parse(text: &str) -> Result<EndpointSchema, SchemaError> {
        let v: Value =
            serde_json::from_str(text).map_err(|e| SchemaError(format!("the description is not JSON: {e}")))?;
        Self::from_value(&v)
    }

    pub fn from_value(doc: &Value) -> Result<EndpointSchema, SchemaError> {
        let bad = |m: String| SchemaError(m);
        let endpoint_id = doc
            .get("endpoint_id")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("the description has no endpoint_id".into()))?
            .to_string();
        super::Endpoint::parse(&endpoint_id).map_err(bad)?;
        let openapi =
            doc.get("openapi").ok_or_else(|| bad(format!("{endpoint_id}: the description has no openapi schema")))?;
        let input = input_schema(openapi, &endpoint_id).ok_or_else(|| {
            bad(format!("{endpoint_id}: the OpenAPI schema has no POST /{endpoint_id} with a JSON body"))
        })?;
        let props = input
            .get("properties")
            .and_then(Value::as_object)
            .ok_or_else(|| bad(format!("{endpoint_id}: the input schema lists no properties")))?;
        let required: Vec<&str> = input
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let order: Vec<String> = match input.get("x-fal-order-properties").and_then(Value::as_array) {
            Some(o) => o.iter().filter_map(Value::as_str).map(str::to_string).collect(),
            None => props.keys().cloned().collect(),
        };
        let ours = doc.get("x-kontext").cloned().unwrap_or(Value::Null);
        let ours_images = ours.get("images");
        let image_field_name = ours_images.and_then(|i| i.get("field")).and_then(Value::as_str).map(str::to_string);

        let mut fields = Vec::new();
        let mut images = ImageInput::None;
        let mut cannot = Vec::new();
        for name in &order {
            let Some(raw) = props.get(name) else { continue };
            let p = flatten(openapi, raw);
            let ty = p.get("type").and_then(Value::as_str).unwrap_or("");
            let is_image = image_field_name.as_deref() == Some(name.as_str())
                || (image_field_name.is_none() && matches!(name.as_str(), "image_url" | "image_urls"));
            if is_image {
                images = match ty {
                    "string" => ImageInput::One { field: name.clone() },
                    "array" => {
                        let max = ours_images
                            .and_then(|i| i.get("max"))
                            .or_else(|| p.get("maxItems"))
                            .and_then(Value::as_u64)
                            .unwrap_or(super::MAX_INPUT_IMAGES as u64) as usize;
                        let min = ours_images
                            .and_then(|i| i.get("min"))
                            .or_else(|| p.get("minItems"))
                            .and_then(Value::as_u64)
                            .unwrap_or(1) as usize;
                        ImageInput::List { field: name.clone(), min, max }
                    }
                    other => return Err(bad(format!("{endpoint_id}: image field {name} is of type {other:?}"))),
                };
                continue;
            }
            let kind = if let Some(Value::Array(choices)) = p.get("enum") {
                let c: Vec<String> = choices.iter().filter_map(|c| c.as_str().map(str::to_string)).collect();
                if c.len() != choices.len() {
                    cannot.push(format!("{name} (an enum of non-strings)"));
                    continue;
                }
                FieldKind::Choice(c)
            } else {
                match ty {
                    "string" => FieldKind::Text,
                    "integer" => FieldKind::Integer {
                        min: p.get("minimum").and_then(number_i128).unwrap_or(i128::from(i64::MIN)),
                        max: p.get("maximum").and_then(number_i128).unwrap_or(i128::from(u64::MAX)),
                    },
                    "number" => FieldKind::Number {
                        min: p.get("minimum").and_then(Value::as_f64),
                        max: p.get("maximum").and_then(Value::as_f64),
                    },
                    "boolean" => FieldKind::Bool,
                    other => {
                        cannot.push(format!("{name} (of type {})", if other.is_empty() { "unknown" } else { other }));
                        continue;
                    }
                }
            };
            fields.push(FieldSpec {
                title: p.get("title").and_then(Value::as_str).unwrap_or(name).to_string(),
                help: p.get("description").and_then(Value::as_str).unwrap_or("").to_string(),
                required: required.contains(&name.as_str()),
                default: p.get("default").filter(|d| !d.is_null()).cloned(),
                flag: flag_for(name),
                name: name.clone(),
                kind,
            });
        }
        // A required field the form cannot fill makes every request fail; an optional one is
        // left out of the form (fal applies its default).
        let required_unexpressible: Vec<&String> =
            cannot.iter().filter(|c| required.iter().any(|r| c.starts_with(&format!("{r} ")))).collect();
        if !required_unexpressible.is_empty() {
            return Err(bad(format!(
                "{endpoint_id}: kontext cannot fill its required field{} {}",
                if required_unexpressible.len() == 1 { "" } else { "s" },
                required_unexpressible.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        if !fields.iter().any(|f| f.name == "prompt" && f.kind == FieldKind::Text) {
            return Err(bad(format!(
                "{endpoint_id}: the input has no text field `prompt`; kontext drives prompt-based image endpoints only"
            )));
        }
        let unit = ours.pointer("/price_unit/unit").and_then(Value::as_str).unwrap_or("image");
        let counts_input =
            ours.pointer("/price_unit/counts_input_megapixels").and_then(Value::as_bool).unwrap_or(false);
        let metadata = doc.get("metadata");
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let mut model_item = doc.clone();
        if let Some(m) = model_item.as_object_mut() {
            m.remove("x-kontext");
        }
        Ok(EndpointSchema {
            title: text(ours.get("title"))
                .or_else(|| text(metadata.and_then(|m| m.get("display_name"))))
                .unwrap_or_else(|| endpoint_id.clone()),
            category: text(metadata.and_then(|m| m.get("category"))).unwrap_or_default(),
            source: text(ours.get("source")).unwrap_or_else(|| "fal's model API".into()),
            date: text(ours.get("date")).unwrap_or_default(),
            output_image_fields: output_image_fields(openapi, &endpoint_id),
            price_unit: PriceUnit::parse(unit, counts_input),
            endpoint_id,
            fields,
            images,
            model_item,
        })
    }

    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Checks `values` (field name → text as typed; absent or empty = unset) and returns the
    /// wire body without the images: every set field typed as fal wants it, every unset field
    /// with a default at its default. All problems are returned at once, in field order.
    pub fn validate_values(&self, values: &BTreeMap<String, String>) -> Result<Map<String, Value>, Vec<FieldError>> {
        let mut body = Map::new();
        let mut errors = Vec::new();
        for spec in &self.fields {
            let given = values.get(&spec.name).map(|s| s.trim()).filter(|s| !s.is_empty());
            match given {
                None if spec.required => {
                    errors.push(FieldError { field: spec.field(), message: required_message(spec) })
                }
                None => {
                    if let Some(d) = &spec.default {
                        body.insert(spec.name.clone(), d.clone());
                    }
                }
                Some(text) => match parse_value(spec, text) {
                    Ok(Some(v)) => {
                        body.insert(spec.name.clone(), v);
                    }
                    Ok(None) => {}
                    Err(message) => errors.push(FieldError { field: spec.field(), message }),
                },
            }
        }
        for name in values.keys() {
            if self.field(name).is_none() && self.images.field() != Some(name.as_str()) {
                let names: Vec<&str> = self.fields.iter().map(|f| f.name.as_str()).collect();
                errors.push(FieldError {
                    field: Field::for_name(name),
                    message: format!(
                        "{name}: {} has no such field; its fields are {}",
                        self.endpoint_id,
                        names.join(", ")
                    ),
                });
            }
        }
        if errors.is_empty() { Ok(body) } else { Err(errors) }
    }

    /// Checks the number of input images against the endpoint.
    pub fn check_image_count(&self, n: usize) -> Option<FieldError> {
        let field = Field::ImageUrls(None);
        let id = &self.endpoint_id;
        let message = match &self.images {
            ImageInput::None if n > 0 => format!(
                "{id} makes an image from the prompt alone and takes no input image: remove the {n} given (or pick an editing endpoint)"
            ),
            ImageInput::One { field } if n == 0 => {
                format!("{field}: {id} needs one input image: give a URL, a data: URI or a local file path")
            }
            ImageInput::One { field } if n > 1 => {
                format!("{field}: {id} takes one input image, got {n}: remove {}, or use a multi endpoint", n - 1)
            }
            ImageInput::List { min, .. } if n < *min => format!(
                "at least {} required: give a URL, a data: URI or a local file path",
                if *min == 1 { "one input image is".to_string() } else { format!("{min} input images are") }
            ),
            ImageInput::List { max, .. } if n > *max => {
                format!("at most {max} input images are allowed for this endpoint, got {n}: remove {}", n - max)
            }
            _ => return None,
        };
        Some(FieldError { field, message })
    }

    /// `body` (from [`EndpointSchema::validate_values`]) with the image URLs in the endpoint's
    /// image field: a list, one string, or nothing.
    pub fn wire_body(&self, mut body: Map<String, Value>, image_urls: Vec<String>) -> Map<String, Value> {
        match &self.images {
            ImageInput::None => {}
            ImageInput::One { field } => {
                if let Some(u) = image_urls.into_iter().next() {
                    body.insert(field.clone(), Value::String(u));
                }
            }
            ImageInput::List { field, .. } => {
                body.insert(field.clone(), Value::Array(image_urls.into_iter().map(Value::String).collect()));
            }
        }
        body
    }
}

fn number_i128(v: &Value) -> Option<i128> {
    v.as_i64().map(i128::from).or_else(|| v.as_u64().map(i128::from)).or_else(|| v.as_f64().map(|f| f as i128))
}

fn required_message(spec: &FieldSpec) -> String {
    if spec.name == "prompt" {
        "prompt is required: describe the edit you want".into()
    } else {
        format!("{} is required ({})", spec.name, spec.flag)
    }
}

fn range_text(min: Option<String>, max: Option<String>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!(" between {a} and {b}"),
        (Some(a), None) => format!(" of at least {a}"),
        (None, Some(b)) => format!(" of at most {b}"),
        (None, None) => String::new(),
    }
}

/// Text as typed → the JSON value fal wants; `Ok(None)` is a deliberate "unset" (`auto` for an
/// optional choice that has no such value).
fn parse_value(spec: &FieldSpec, text: &str) -> Result<Option<Value>, String> {
    let name = &spec.name;
    match &spec.kind {
        FieldKind::Text => Ok(Some(Value::String(text.to_string()))),
        FieldKind::Bool => match text.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(Some(Value::Bool(true))),
            "false" | "no" | "off" | "0" => Ok(Some(Value::Bool(false))),
            _ => Err(format!("{name} must be true or false, got {text:?}")),
        },
        FieldKind::Integer { min, max } => {
            let bounds = || {
                let shown_max = (*max != i128::from(u64::MAX)).then(|| max.to_string());
                let shown_min = (*min != i128::from(i64::MIN)).then(|| min.to_string());
                (shown_min, shown_max)
            };
            let Ok(v) = text.parse::<i128>() else {
                let (a, b) = bounds();
                let b = b.or_else(|| a.is_some().then(|| u64::MAX.to_string()));
                return Err(format!("{name} must be a whole number{}, got {text:?}", range_text(a, b)));
            };
            if v < *min || v > *max {
                let (a, b) = bounds();
                let b = b.or_else(|| a.is_some().then(|| u64::MAX.to_string()));
                return Err(format!("{name} must be{}, got {text}", range_text(a, b)));
            }
            Ok(Some(if v >= 0 { Value::from(v as u64) } else { Value::from(v as i64) }))
        }
        FieldKind::Number { min, max } => {
            let range = range_text(min.map(|m| m.to_string()), max.map(|m| m.to_string()));
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => {
                    if min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m) {
                        Err(format!("{name} must be{range}, got {text}"))
                    } else {
                        Ok(Some(Value::from(v)))
                    }
                }
                _ => Err(format!("{name} must be a number{range}, got {text:?}")),
            }
        }
        FieldKind::Choice(choices) => {
            let lower = text.to_ascii_lowercase();
            let ratio_like = choices.iter().any(|c| c.contains(':'));
            let normal = if ratio_like { lower.replace(['x', '/'], ":") } else { lower.clone() };
            let normal = if normal == "jpg" { "jpeg".to_string() } else { normal };
            if let Some(c) = choices.iter().find(|c| c.to_ascii_lowercase() == normal) {
                return Ok(Some(Value::String(c.clone())));
            }
            let optional = !spec.required && spec.default.is_none();
            if optional && lower == "auto" {
                return Ok(None);
            }
            let note = match name.as_str() {
                "safety_tolerance" => " (1 is strictest)",
                _ if optional => " (or leave it unset)",
                _ => "",
            };
            let allowed = match choices.as_slice() {
                [a, b] => format!("{a} or {b}"),
                all => format!("one of {}", all.join(", ")),
            };
            Err(format!("{name} must be {allowed}{note}, got {text:?}"))
        }
    }
}
