//! Validation problems, each tied to the input field it concerns, so a front end can show it next to
//! that field. fal's own 422 answers are mapped onto the same [`Field`]s.

use std::fmt;

use serde::Serialize;

/// A field of an endpoint's input. `ImageUrls(Some(i))` is one input image (of `image_urls`, or
/// the single `image_url`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "field", content = "index", rename_all = "snake_case")]
pub enum Field {
    Prompt,
    ImageUrls(Option<usize>),
    Seed,
    GuidanceScale,
    SyncMode,
    NumImages,
    OutputFormat,
    SafetyTolerance,
    EnhancePrompt,
    AspectRatio,
    /// A field of an endpoint's schema that has no variant of its own (`num_inference_steps`).
    Named(&'static str),
    /// A field fal named that this client does not know.
    Other,
}

/// Field names of loaded schemas, kept for the life of the process so a [`Field`] stays `Copy`.
/// Only names a schema (or the user) introduces are added, never names from a server's answer.
fn interned(name: &str, add: bool) -> Option<&'static str> {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(n) = names.get(name) {
        return Some(n);
    }
    if !add || name.len() > 64 || names.len() > 4096 {
        return None;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    Some(leaked)
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::Prompt => "prompt",
            Field::ImageUrls(_) => "image_urls",
            Field::Seed => "seed",
            Field::GuidanceScale => "guidance_scale",
            Field::SyncMode => "sync_mode",
            Field::NumImages => "num_images",
            Field::OutputFormat => "output_format",
            Field::SafetyTolerance => "safety_tolerance",
            Field::EnhancePrompt => "enhance_prompt",
            Field::AspectRatio => "aspect_ratio",
            Field::Named(n) => n,
            Field::Other => "input",
        }
    }

    /// The field of this name: a known variant, else a named one (the name is kept).
    pub fn for_name(name: &str) -> Field {
        Self::known(name, None).unwrap_or_else(|| interned(name, true).map(Field::Named).unwrap_or(Field::Other))
    }

    fn known(name: &str, index: Option<usize>) -> Option<Field> {
        Some(match name {
            "prompt" => Field::Prompt,
            "image_urls" | "image_url" => Field::ImageUrls(index),
            "seed" => Field::Seed,
            "guidance_scale" => Field::GuidanceScale,
            "sync_mode" => Field::SyncMode,
            "num_images" => Field::NumImages,
            "output_format" => Field::OutputFormat,
            "safety_tolerance" => Field::SafetyTolerance,
            "enhance_prompt" => Field::EnhancePrompt,
            "aspect_ratio" => Field::AspectRatio,
            _ => return None,
        })
    }

    /// Maps fal's `loc` (e.g. `["body","image_urls",1]`, `["body","input.image_urls"]`) to a field.
    pub fn from_loc(loc: &[serde_json::Value]) -> Field {
        let mut parts = loc.iter().skip_while(|v| v.as_str() == Some("body"));
        let Some(name) = parts.next().and_then(|v| v.as_str()) else {
            return Field::Other;
        };
        let name = name.strip_prefix("input.").unwrap_or(name);
        let index = parts.next().and_then(|v| v.as_u64()).map(|i| i as usize);
        // A name from a server is only matched against names a schema introduced.
        Self::known(name, index).or_else(|| interned(name, false).map(Field::Named)).unwrap_or(Field::Other)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::ImageUrls(Some(i)) => write!(f, "image_urls[{i}]"),
            other => f.write_str(other.name()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldError {
    pub field: Field,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Messages name their field already when they come from us; prefix the rest.
        if self.message.starts_with(self.field.name()) {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Every problem found in one input, in field order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn for_field(&self, field: Field) -> impl Iterator<Item = &FieldError> {
        self.0.iter().filter(move |e| e.field == field)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}
