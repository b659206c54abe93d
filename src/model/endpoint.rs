//! Endpoint ids are values, so other Kontext variants with the same schema need no code change.

use std::fmt;

use serde::{Deserialize, Serialize};

pub const DEFAULT_ENDPOINT: &str = "fal-ai/flux-pro/kontext/multi";

/// Input image limit of the Kontext multi endpoints (fal documents none; see docs/PROTOCOL.md).
pub const MAX_INPUT_IMAGES: usize = 4;

/// A fal endpoint id such as `fal-ai/flux-pro/kontext/multi`, parsed like fal's official clients
/// do: `[namespace/]owner/alias[/path…]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Endpoint {
    id: String,
    namespace: Option<String>,
    owner: String,
    alias: String,
    path: Option<String>,
}

impl Endpoint {
    pub fn parse(id: &str) -> Result<Endpoint, String> {
        let id = id.trim().trim_matches('/');
        let parts: Vec<&str> = id.split('/').collect();
        if parts.iter().any(|p| p.is_empty() || p.chars().any(char::is_whitespace)) {
            return Err(format!(
                "endpoint id {id:?} is malformed: expected owner/alias[/path], e.g. {DEFAULT_ENDPOINT}"
            ));
        }
        let (namespace, rest) = match parts.first() {
            Some(&ns @ ("workflows" | "comfy")) => (Some(ns.to_string()), &parts[1..]),
            _ => (None, &parts[..]),
        };
        if rest.len() < 2 {
            return Err(format!("endpoint id {id:?} needs at least an owner and an app, e.g. {DEFAULT_ENDPOINT}"));
        }
        Ok(Endpoint {
            id: id.to_string(),
            namespace,
            owner: rest[0].to_string(),
            alias: rest[1].to_string(),
            path: (rest.len() > 2).then(|| rest[2..].join("/")),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// `[namespace/]owner/alias`: the prefix of status, result and cancel URLs (the sub-path is
    /// dropped, fal-protocol.md §1.2).
    pub fn app_prefix(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}/{}", self.owner, self.alias),
            None => format!("{}/{}", self.owner, self.alias),
        }
    }

    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// How many input images the endpoint takes (its schema's limit; unknown endpoints get the
    /// multi endpoints' 4).
    pub fn max_images(&self) -> usize {
        super::Catalog::bundled().get(&self.id).map(|s| s.images.max()).unwrap_or(MAX_INPUT_IMAGES)
    }
}

impl Default for Endpoint {
    fn default() -> Self {
        Endpoint::parse(DEFAULT_ENDPOINT).expect("the default endpoint id is well formed")
    }
}

impl TryFrom<String> for Endpoint {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Endpoint::parse(&s)
    }
}

impl From<Endpoint> for String {
    fn from(e: Endpoint) -> String {
        e.id
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_official_clients() {
        let e = Endpoint::parse("fal-ai/flux-pro/kontext/multi").unwrap();
        assert_eq!(e.app_prefix(), "fal-ai/flux-pro");
        assert_eq!(e.path(), Some("kontext/multi"));
        let w = Endpoint::parse("workflows/me/flow/a/b").unwrap();
        assert_eq!(w.app_prefix(), "workflows/me/flow");
        assert_eq!(w.path(), Some("a/b"));
        assert!(Endpoint::parse("single").is_err());
        assert!(Endpoint::parse("a//b").is_err());
        assert_eq!(Endpoint::default().id(), DEFAULT_ENDPOINT);
    }
}
