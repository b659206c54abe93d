//! What every pane may read but none owns: the session's settings and the problems found with
//! the current input (from our validation or mapped from fal's 422).

use std::sync::Arc;

use super::action::Keymap;
use crate::model::cost::{BudgetCaps, Estimate, PriceTable};
use crate::model::{Catalog, DEFAULT_ENDPOINT, EndpointSchema, Field, FieldError};
use serde_json::{Map, Value};

/// Settings the app needs but does not change.
#[derive(Debug, Clone)]
pub struct AppContext {
    /// The endpoints the endpoint row offers: the bundled ones and those `kontext models add` kept.
    pub catalog: Arc<Catalog>,
    /// The endpoint the studio starts on (the config's `endpoint`, else the default).
    pub endpoint: String,
    /// The prices estimates use, with where each came from.
    pub prices: Prices,
    /// The config's `[budget]`: a submit over a cap is refused before anything is sent.
    pub budget: BudgetCaps,
    /// What we talk to, for the status bar ("emulator (no key)", "fal.ai (key from FAL_KEY)").
    pub target: String,
    /// Image protocol in use, for the status bar and help.
    pub graphics: String,
    pub keymap: Keymap,
    /// Local files up to this size are sent inline, larger ones uploaded (shown per image).
    pub data_uri_threshold: u64,
    /// Where this session's outputs are written, as shown (the home folder as `~`): the help
    /// and the Results header name it, so a newcomer knows where the files went.
    pub output_dir: String,
}

impl AppContext {
    /// The bundled endpoints and prices, no budget, the default endpoint: the tests' start.
    pub fn new(keymap: Keymap) -> AppContext {
        AppContext {
            catalog: Arc::new(Catalog::bundled().clone()),
            endpoint: DEFAULT_ENDPOINT.to_string(),
            prices: Prices { bundled: PriceTable::bundled(), cached: None },
            budget: BudgetCaps::default(),
            target: "emulator (no key)".into(),
            graphics: "text previews".into(),
            keymap,
            data_uri_threshold: 256 * 1024,
            output_dir: "~/Pictures/kontext".into(),
        }
    }

    /// An endpoint id as a line shows it: its short name when the catalog knows it.
    pub fn endpoint_name(&self, endpoint_id: &str) -> String {
        match self.catalog.get(endpoint_id) {
            Some(s) => crate::tui::form::endpoint_short(s),
            None => crate::sanitize::one_line(endpoint_id.strip_prefix("fal-ai/").unwrap_or(endpoint_id)),
        }
    }

    /// The schema the studio starts on (the default one when the config names an unknown id).
    pub fn start_schema(&self) -> Arc<EndpointSchema> {
        self.catalog.get(&self.endpoint).unwrap_or_else(|| self.catalog.default_schema()).clone()
    }

    /// `dir` as the help shows it: `~/…` inside the home folder, one clean line.
    pub fn shown_dir(dir: &std::path::Path, home: Option<&std::path::Path>) -> String {
        let shown = match home.and_then(|h| dir.strip_prefix(h).ok()) {
            Some(rest) if rest.as_os_str().is_empty() => "~".to_string(),
            Some(rest) => format!("~/{}", rest.display()),
            None => dir.display().to_string(),
        };
        crate::sanitize::one_line(&shown)
    }

    /// The image mode without its details ("sixel 10x20 (tmux passthrough)" → "sixel"), for
    /// the status bar; the help overlay shows the whole description.
    pub fn graphics_short(&self) -> &str {
        let head = self.graphics.split(" (").next().unwrap_or(&self.graphics).trim_end();
        match head.rsplit_once(' ') {
            // A trailing cell size ("10x20") is a detail too.
            Some((mode, size)) if size.split('x').all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) => {
                mode
            }
            _ => head,
        }
    }
}

/// Dollars as the studio shows them: three decimals ("$0.040"), enough for every Kontext price.
pub fn dollars(usd: f64) -> String {
    format!("${usd:.3}")
}

/// A request's cost as a line shows it: the bill once known, else the estimate ("~$0.040").
pub fn cost_text(estimated_usd: Option<f64>, billed_usd: Option<f64>) -> String {
    match (billed_usd, estimated_usd) {
        (Some(b), _) => format!("{} billed", dollars(b)),
        (None, Some(e)) => format!("~{}", dollars(e)),
        (None, None) => String::new(),
    }
}

/// The price tables an estimate reads: the bundled one and fal's cached answer (which wins).
#[derive(Debug, Clone)]
pub struct Prices {
    pub bundled: PriceTable,
    pub cached: Option<PriceTable>,
}

impl Prices {
    /// The same estimate as `kontext run`'s offline one (`model::cost::estimate`).
    pub fn estimate(
        &self,
        schema: &EndpointSchema,
        body: &Map<String, Value>,
        sizes: &[Option<(u32, u32)>],
    ) -> Estimate {
        let found = crate::runner::catalog::price_for(&self.bundled, self.cached.as_ref(), &schema.endpoint_id);
        let source = found.map(|(_, s)| s.to_string()).unwrap_or_else(|| "no price".into());
        crate::model::cost::estimate(schema, body, sizes, found.map(|(p, _)| p), &source)
    }
}

/// The problems with the current input, each tied to its field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn new(errors: Vec<FieldError>) -> FieldErrors {
        FieldErrors(errors)
    }

    /// The problems of `field`; `ImageUrls(None)` stands for the list and every image in it.
    pub fn of(&self, field: Field) -> impl Iterator<Item = &FieldError> {
        self.0.iter().filter(move |e| match (e.field, field) {
            (Field::ImageUrls(_), Field::ImageUrls(None)) => true,
            (a, b) => a == b,
        })
    }

    /// The problem of exactly this field (no grouping of the image list).
    pub fn exact(&self, field: Field) -> Option<&FieldError> {
        self.0.iter().find(|e| e.field == field)
    }

    pub fn all(&self) -> &[FieldError] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_folder_is_shown_under_home_as_a_tilde() {
        use std::path::Path;
        let home = Some(Path::new("/home/ann"));
        assert_eq!(AppContext::shown_dir(Path::new("/home/ann/Pictures/kontext"), home), "~/Pictures/kontext");
        assert_eq!(AppContext::shown_dir(Path::new("/home/ann"), home), "~");
        assert_eq!(AppContext::shown_dir(Path::new("/srv/out"), home), "/srv/out");
        assert_eq!(AppContext::shown_dir(Path::new("/home/annex/x"), home), "/home/annex/x");
        assert_eq!(AppContext::shown_dir(Path::new("/tmp/a\u{1b}[2Jb"), None), "/tmp/ab");
    }

    #[test]
    fn the_short_image_mode_drops_size_and_details() {
        let ctx = |g: &str| AppContext { graphics: g.into(), ..AppContext::new(Keymap::default()) };
        assert_eq!(ctx("sixel 10x20 (tmux passthrough, probe)").graphics_short(), "sixel");
        assert_eq!(ctx("kitty 8x16").graphics_short(), "kitty");
        assert_eq!(ctx("none (text placeholders)").graphics_short(), "none");
        assert_eq!(ctx("text previews").graphics_short(), "text previews");
    }
}
