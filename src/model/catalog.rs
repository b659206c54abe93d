//! The endpoints kontext knows: the seven bundled descriptions (compiled in, each parsed when
//! first asked for) and any added with `kontext models add` (read by `runner::catalog`).

use std::sync::{Arc, OnceLock};

use super::schema::{EndpointSchema, SchemaError};

/// The shipped descriptions, in the order `kontext models` lists them (the default first), each
/// with its id so that a run parses only the one it uses (a test checks the ids match).
pub(super) const BUNDLED: &[(&str, &str)] = &[
    ("fal-ai/flux-pro/kontext/multi", include_str!("../../endpoints/fal-ai.flux-pro.kontext.multi.json")),
    ("fal-ai/flux-pro/kontext", include_str!("../../endpoints/fal-ai.flux-pro.kontext.json")),
    ("fal-ai/flux-pro/kontext/max", include_str!("../../endpoints/fal-ai.flux-pro.kontext.max.json")),
    ("fal-ai/flux-pro/kontext/max/multi", include_str!("../../endpoints/fal-ai.flux-pro.kontext.max.multi.json")),
    (
        "fal-ai/flux-pro/kontext/text-to-image",
        include_str!("../../endpoints/fal-ai.flux-pro.kontext.text-to-image.json"),
    ),
    (
        "fal-ai/flux-pro/kontext/max/text-to-image",
        include_str!("../../endpoints/fal-ai.flux-pro.kontext.max.text-to-image.json"),
    ),
    ("fal-ai/flux-kontext/dev", include_str!("../../endpoints/fal-ai.flux-kontext.dev.json")),
];

/// Each bundled description, parsed on first use.
fn bundled_parsed() -> &'static [OnceLock<Arc<EndpointSchema>>; 7] {
    static PARSED: [OnceLock<Arc<EndpointSchema>>; 7] = [const { OnceLock::new() }; 7];
    &PARSED
}

fn bundled_at(i: usize) -> &'static Arc<EndpointSchema> {
    bundled_parsed()[i]
        .get_or_init(|| Arc::new(EndpointSchema::parse(BUNDLED[i].1).expect("a bundled endpoint description parses")))
}

/// The endpoints kontext knows: the bundled ones (parsed when first asked for) and any added
/// with `kontext models add`.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    added: Vec<Arc<EndpointSchema>>,
}

impl Catalog {
    /// The shipped endpoints (a test checks every file parses).
    pub fn bundled() -> &'static Catalog {
        static BUNDLED_CATALOG: Catalog = Catalog { added: Vec::new() };
        &BUNDLED_CATALOG
    }

    /// The bundled endpoints plus added descriptions (a bundled one is never replaced); each
    /// description that cannot be used comes back with its problem.
    pub fn with_added(texts: impl IntoIterator<Item = (String, String)>) -> (Catalog, Vec<(String, SchemaError)>) {
        let mut catalog = Catalog::default();
        let mut problems = Vec::new();
        for (name, text) in texts {
            match EndpointSchema::parse(&text) {
                // A bundled endpoint wins over an added file of the same id.
                Ok(s) if catalog.get(&s.endpoint_id).is_some() => {}
                Ok(s) => catalog.added.push(Arc::new(s)),
                Err(e) => problems.push((name, e)),
            }
        }
        (catalog, problems)
    }

    pub fn get(&self, endpoint_id: &str) -> Option<&Arc<EndpointSchema>> {
        let id = endpoint_id.trim().trim_matches('/');
        match BUNDLED.iter().position(|(bundled, _)| *bundled == id) {
            Some(i) => Some(bundled_at(i)),
            None => self.added.iter().find(|s| s.endpoint_id == id),
        }
    }

    /// The endpoint's schema, or an error that says how to get one.
    pub fn require(&self, endpoint_id: &str) -> Result<&Arc<EndpointSchema>, String> {
        self.get(endpoint_id).ok_or_else(|| {
            format!(
                "kontext has no description of endpoint {endpoint_id:?}: run `kontext models` for the known ones, or `kontext models add {endpoint_id}` to fetch its schema from fal"
            )
        })
    }

    /// The default endpoint's schema.
    pub fn default_schema(&self) -> &Arc<EndpointSchema> {
        bundled_at(0)
    }

    /// Every endpoint: the bundled ones in their order, then the added ones.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<EndpointSchema>> + '_ {
        let bundled = (0..BUNDLED.len()).map(|i| {
            let schema: &Arc<EndpointSchema> = bundled_at(i);
            schema
        });
        bundled.chain(self.added.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schema::{ImageInput, PriceUnit};
    use serde_json::Value;

    #[test]
    fn every_bundled_description_parses_with_its_shape() {
        let c = Catalog::bundled();
        assert_eq!(c.iter().count(), 7);
        for ((id, _), schema) in BUNDLED.iter().zip(c.iter()) {
            assert_eq!(*id, schema.endpoint_id, "the id listed with a bundled file is its own");
        }
        let multi = c.default_schema();
        assert_eq!(multi.images, ImageInput::List { field: "image_urls".into(), min: 1, max: 4 });
        let names: Vec<&str> = multi.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "prompt",
                "seed",
                "guidance_scale",
                "sync_mode",
                "num_images",
                "output_format",
                "safety_tolerance",
                "enhance_prompt",
                "aspect_ratio"
            ]
        );
        let t2i = c.get("fal-ai/flux-pro/kontext/text-to-image").unwrap();
        assert_eq!(t2i.images, ImageInput::None);
        assert_eq!(t2i.field("aspect_ratio").unwrap().default, Some(Value::from("1:1")));
        let dev = c.get("fal-ai/flux-kontext/dev").unwrap();
        assert_eq!(dev.images, ImageInput::One { field: "image_url".into() });
        assert!(dev.field("safety_tolerance").is_none() && dev.field("enhance_prompt").is_none());
        assert_eq!(dev.field("guidance_scale").unwrap().default, Some(Value::from(2.5)));
        assert_eq!(dev.field("num_inference_steps").unwrap().flag, "--set num_inference_steps=…");
        assert!(dev.output_image_fields.contains(&"file_size".to_string()));
        assert_eq!(dev.price_unit, PriceUnit::Megapixel { counts_input: false });
    }

    #[test]
    fn a_schema_the_form_cannot_fill_is_refused() {
        let mut doc: Value = serde_json::from_str(BUNDLED[0].1).unwrap();
        let input = doc.pointer_mut("/openapi/components/schemas/FluxProKontextMultiInput").unwrap();
        input["properties"]["loras"] = serde_json::json!({"type": "array", "items": {"type": "object"}});
        input["x-fal-order-properties"].as_array_mut().unwrap().push("loras".into());
        assert!(EndpointSchema::from_value(&doc).is_ok(), "an optional field it cannot fill is left out");
        input_required(&mut doc).push("loras".into());
        let err = EndpointSchema::from_value(&doc).unwrap_err();
        assert!(err.0.contains("cannot fill its required field loras"), "{err}");
    }

    fn input_required(doc: &mut Value) -> &mut Vec<Value> {
        doc.pointer_mut("/openapi/components/schemas/FluxProKontextMultiInput/required")
            .unwrap()
            .as_array_mut()
            .unwrap()
    }
}
