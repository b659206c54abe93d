//! The parameter form: its rows are the selected endpoint's schema fields (in the schema's order,
//! with kind, range or choices, default and help), after a first row that picks the endpoint.
//! Stepping and cycling follow each field's kind; numbers and text are typed. Values stay text
//! (like a `Draft`) so a half-typed number is shown as typed and validated inline instead of
//! being silently corrected. No field is named here but the seed (its random/fixed/last modes)
//! and the prompt (which has a pane of its own).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::model::{Draft, EndpointSchema, Field, FieldKind, FieldSpec};

/// The first row's name: it picks the endpoint rather than setting a field.
pub const ENDPOINT_ROW: &str = "endpoint";
/// The field the Prompt pane edits, so the form leaves it out.
const PROMPT_FIELD: &str = "prompt";
const SEED_FIELD: &str = "seed";

/// How the seed is chosen for the next submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedMode {
    Random,
    Fixed(String),
    /// The seed of the latest finished result.
    ReuseLast,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParamForm {
    schema: Arc<EndpointSchema>,
    /// What the user set, by field name, as typed; a field not here has its default.
    values: BTreeMap<String, String>,
    seed: SeedMode,
    selected: usize,
    /// True while the user types a value into the selected row.
    typing: bool,
}

impl ParamForm {
    pub fn new(schema: Arc<EndpointSchema>) -> ParamForm {
        ParamForm { schema, values: BTreeMap::new(), seed: SeedMode::Random, selected: 0, typing: false }
    }

    /// Starts from config defaults (a draft of strings), keeping what cannot be parsed as typed so
    /// it shows up as an inline error rather than vanishing.
    pub fn from_draft(schema: Arc<EndpointSchema>, d: &Draft) -> ParamForm {
        let mut f = ParamForm::new(schema);
        f.apply_draft(d);
        f
    }

    pub fn schema(&self) -> &Arc<EndpointSchema> {
        &self.schema
    }

    /// Takes the draft's parameters (those this endpoint has); the rest go back to their defaults.
    pub fn apply_draft(&mut self, d: &Draft) {
        self.values.clear();
        self.seed = SeedMode::Random;
        for (name, text) in d.values() {
            match self.spec(&name) {
                Some(_) if name == SEED_FIELD => self.seed = SeedMode::Fixed(text.trim().to_string()),
                Some(_) => {
                    self.values.insert(name, text);
                }
                None => {}
            }
        }
    }

    /// Another endpoint: the form rebuilds from its schema and keeps every value that still fits.
    pub fn set_schema(&mut self, schema: Arc<EndpointSchema>) {
        let old = std::mem::take(&mut self.values);
        self.values = old
            .into_iter()
            .filter(|(name, text)| schema.field(name).is_some_and(|f| f.parse_text(text).is_ok()))
            .collect();
        if schema.field(SEED_FIELD).is_none() {
            self.seed = SeedMode::Random;
        }
        self.schema = schema;
        self.typing = false;
        self.selected = self.selected.min(self.row_count() - 1);
    }

    /// The rows in order: the endpoint, then the schema's fields (the prompt aside).
    pub fn rows(&self) -> impl Iterator<Item = &str> {
        std::iter::once(ENDPOINT_ROW).chain(self.fields().map(|f| f.name.as_str()))
    }

    fn fields(&self) -> impl Iterator<Item = &FieldSpec> {
        self.schema.fields.iter().filter(|f| f.name != PROMPT_FIELD)
    }

    fn row_count(&self) -> usize {
        1 + self.fields().count()
    }

    fn spec(&self, name: &str) -> Option<&FieldSpec> {
        self.fields().find(|f| f.name == name)
    }

    /// The field the cursor is on (`None` on the endpoint row).
    fn selected_spec(&self) -> Option<&FieldSpec> {
        self.selected.checked_sub(1).and_then(|i| self.fields().nth(i))
    }

    /// The row the cursor is on.
    pub fn selected(&self) -> usize {
        self.selected
    }

    /// The name of the row the cursor is on.
    pub fn row(&self) -> &str {
        self.selected_spec().map_or(ENDPOINT_ROW, |f| f.name.as_str())
    }

    pub fn on_endpoint_row(&self) -> bool {
        self.selected == 0
    }

    /// The tag a row's errors carry.
    pub fn field_of(&self, name: &str) -> Option<Field> {
        self.spec(name).map(FieldSpec::field)
    }

    /// Every field's error tag, for counting the lines the errors take.
    pub fn error_fields(&self) -> Vec<Field> {
        self.fields().map(FieldSpec::field).collect()
    }

    /// A value is being typed into the selected row.
    pub fn is_typing(&self) -> bool {
        self.typing
    }

    pub fn stop_typing(&mut self) {
        self.typing = false;
    }

    /// The value as shown: what was set, else the default, else "auto" (unset).
    pub fn value(&self, name: &str) -> String {
        if name == ENDPOINT_ROW {
            return endpoint_short(&self.schema);
        }
        if name == SEED_FIELD {
            return match &self.seed {
                SeedMode::Random => "random".into(),
                SeedMode::Fixed(s) => s.clone(),
                SeedMode::ReuseLast => "last result's".into(),
            };
        }
        let Some(spec) = self.spec(name) else { return String::new() };
        let text = self.values.get(name).cloned().or_else(|| spec.default_text()).unwrap_or_else(|| "auto".into());
        match spec.kind {
            FieldKind::Bool => on_off(text.trim() == "true"),
            _ => text,
        }
    }

    /// Range or choices and the default, shown beside the value.
    pub fn hint(&self, name: &str) -> String {
        if name == ENDPOINT_ROW {
            let images = match (self.schema.images.min(), self.schema.images.max()) {
                (_, 0) => "no image".to_string(),
                (_, 1) => "1 image".to_string(),
                (min, max) => format!("{min}–{max} images"),
            };
            return format!("{images} · Enter: list");
        }
        if name == SEED_FIELD {
            return "random | fixed | last".into();
        }
        let Some(spec) = self.spec(name) else { return String::new() };
        let kind = match &spec.kind {
            FieldKind::Choice(c) if c.len() > 4 => format!("{} … {}", c[0], c[c.len() - 1]),
            FieldKind::Choice(c) => c.join(" | "),
            FieldKind::Bool => String::new(),
            other => other.describe(),
        };
        match spec.default_text() {
            Some(d) if kind.is_empty() => {
                format!("default {}", if spec.kind == FieldKind::Bool { on_off(d == "true") } else { d })
            }
            Some(d) => format!("{kind}, default {d}"),
            None if is_optional_choice(spec) => format!("auto or {kind}"),
            None => kind,
        }
    }

    /// The schema's help text of a row.
    pub fn help(&self, name: &str) -> &str {
        self.spec(name).map_or("", |f| f.help.as_str())
    }

    pub fn up(&mut self) {
        self.typing = false;
        self.selected = self.selected.saturating_sub(1);
    }

    pub fn down(&mut self) {
        self.typing = false;
        self.selected = (self.selected + 1).min(self.row_count() - 1);
    }

    /// Left/Right on a field: step numbers, cycle choices, toggle switches. `big` is Shift.
    /// (The endpoint row is the pane's: it needs the catalog.)
    pub fn step(&mut self, dir: i32, big: bool) {
        self.typing = false;
        let Some(spec) = self.selected_spec().cloned() else { return };
        if spec.name == SEED_FIELD {
            let order = |m: &SeedMode| match m {
                SeedMode::Random => 0,
                SeedMode::Fixed(_) => 1,
                SeedMode::ReuseLast => 2,
            };
            self.seed = match (order(&self.seed) + dir).rem_euclid(3) {
                0 => SeedMode::Random,
                1 => SeedMode::Fixed(match &self.seed {
                    SeedMode::Fixed(s) => s.clone(),
                    _ => "0".into(),
                }),
                _ => SeedMode::ReuseLast,
            };
            return;
        }
        let current = self.values.get(&spec.name).cloned().or_else(|| spec.default_text());
        let next = match &spec.kind {
            FieldKind::Integer { min, max } => {
                let step = if big { 5 } else { 1 };
                let v = current.and_then(|t| t.trim().parse::<i128>().ok()).unwrap_or(*min);
                Some((v + step * dir as i128).clamp(*min, *max).to_string())
            }
            FieldKind::Number { min, max } => {
                let step = if big { 2.5 } else { 0.5 };
                let v = current.and_then(|t| t.trim().parse::<f64>().ok()).or(*min).unwrap_or(0.0);
                let v = ((v + step * dir as f64) * 10.0).round() / 10.0;
                Some(v.clamp(min.unwrap_or(f64::MIN), max.unwrap_or(f64::MAX)).to_string())
            }
            FieldKind::Bool => Some((current.as_deref() != Some("true")).to_string()),
            FieldKind::Choice(choices) => {
                // An optional choice without a default starts at "auto" (unset), then wraps.
                let auto = is_optional_choice(&spec);
                let mut cycle: Vec<Option<&String>> = choices.iter().map(Some).collect();
                if auto {
                    cycle.insert(0, None);
                }
                let pos = cycle.iter().position(|c| c.map(String::as_str) == current.as_deref()).unwrap_or(0);
                let next = (pos as i32 + dir).rem_euclid(cycle.len() as i32) as usize;
                cycle[next].cloned()
            }
            FieldKind::Text => return,
        };
        match next {
            Some(text) => self.values.insert(spec.name.clone(), text),
            None => self.values.remove(&spec.name),
        };
    }

    /// Enter/Space on a field: toggles switches, cycles choices.
    pub fn activate(&mut self) {
        match self.selected_spec().map(|f| &f.kind) {
            Some(FieldKind::Bool | FieldKind::Choice(_)) => self.step(1, false),
            _ => self.typing = false,
        }
    }

    /// The selected row takes typed characters (numbers, text).
    pub fn takes_typing(&self) -> bool {
        self.selected_spec()
            .is_some_and(|f| matches!(f.kind, FieldKind::Integer { .. } | FieldKind::Number { .. } | FieldKind::Text))
    }

    /// A typed character on a numeric or text row: the first one replaces the value, later ones
    /// append. Returns false when the row does not take it.
    pub fn type_char(&mut self, c: char) -> bool {
        let Some(spec) = self.selected_spec().cloned() else { return false };
        let fits = match spec.kind {
            FieldKind::Integer { .. } | FieldKind::Number { .. } => c.is_ascii_digit() || c == '.' || c == '-',
            FieldKind::Text => !c.is_control(),
            _ => false,
        };
        if !fits {
            return false;
        }
        let typing = self.typing;
        let target = if spec.name == SEED_FIELD {
            if !typing || !matches!(self.seed, SeedMode::Fixed(_)) {
                self.seed = SeedMode::Fixed(String::new());
            }
            match &mut self.seed {
                SeedMode::Fixed(s) => s,
                _ => return false,
            }
        } else {
            let default = spec.default_text().unwrap_or_default();
            self.values.entry(spec.name.clone()).or_insert(default)
        };
        if !typing {
            target.clear();
        }
        target.push(c);
        self.typing = true;
        true
    }

    pub fn backspace(&mut self) {
        let Some(spec) = self.selected_spec().cloned() else { return };
        if !self.takes_typing() {
            return;
        }
        let target = if spec.name == SEED_FIELD {
            match &mut self.seed {
                SeedMode::Fixed(s) => s,
                _ => return,
            }
        } else {
            let default = spec.default_text().unwrap_or_default();
            self.values.entry(spec.name.clone()).or_insert(default)
        };
        target.pop();
        self.typing = true;
    }

    /// Writes the parameters into `draft`; `last_seed` fills the reuse-last mode.
    pub fn fill(&self, draft: &mut Draft, last_seed: Option<u64>) -> Result<(), String> {
        for spec in self.fields() {
            if spec.name == SEED_FIELD {
                match &self.seed {
                    SeedMode::Random => {}
                    SeedMode::Fixed(s) => draft.set(SEED_FIELD, s.clone()),
                    SeedMode::ReuseLast => match last_seed {
                        Some(s) => draft.set(SEED_FIELD, s.to_string()),
                        None => {
                            return Err(
                                "seed is set to reuse the last result's seed, but no job has finished yet".into()
                            );
                        }
                    },
                }
            } else if let Some(text) = self.values.get(&spec.name).cloned().or_else(|| spec.default_text()) {
                draft.set(&spec.name, text);
            }
        }
        Ok(())
    }
}

/// An endpoint as a row, a job or a history line shows it: its title without the family name
/// ("[max] multi"), else its id.
/// An added endpoint's title is a server's text: one clean line.
pub fn endpoint_short(schema: &EndpointSchema) -> String {
    let name = match schema.title.strip_prefix("FLUX.1 Kontext ") {
        Some(rest) if !rest.is_empty() => rest,
        _ if !schema.title.is_empty() => &schema.title,
        _ => &schema.endpoint_id,
    };
    crate::sanitize::one_line(name)
}

/// A choice the user may leave unset ("auto"): not required and without a default.
fn is_optional_choice(spec: &FieldSpec) -> bool {
    matches!(spec.kind, FieldKind::Choice(_)) && !spec.required && spec.default.is_none()
}

fn on_off(b: bool) -> String {
    if b { "on".into() } else { "off".into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Catalog;

    fn schema(id: &str) -> Arc<EndpointSchema> {
        Catalog::bundled().get(id).unwrap().clone()
    }

    fn at(f: &mut ParamForm, name: &str) {
        let at = f.rows().position(|r| r == name).unwrap();
        f.selected = at;
    }

    #[test]
    fn rows_are_the_schema_fields_in_order_after_the_endpoint() {
        let f = ParamForm::new(schema("fal-ai/flux-kontext/dev"));
        let rows: Vec<&str> = f.rows().collect();
        assert_eq!(rows[0], ENDPOINT_ROW);
        assert_eq!(rows[1], "num_inference_steps", "dev's own field, first as in its schema");
        assert!(!rows.contains(&"prompt"), "the prompt has its own pane");
        assert!(rows.contains(&"resolution_mode") && !rows.contains(&"aspect_ratio"));
        assert_eq!(f.value("endpoint"), "[dev]");
        assert_eq!(f.value("guidance_scale"), "2.5", "dev's default, not pro's");
        assert_eq!(f.hint("num_inference_steps"), "integer 10–50, default 28");
    }

    #[test]
    fn stepping_and_cycling_stay_in_range() {
        let mut f = ParamForm::new(schema("fal-ai/flux-pro/kontext/multi"));
        at(&mut f, "guidance_scale");
        for _ in 0..50 {
            f.step(1, true);
        }
        assert_eq!(f.value("guidance_scale"), "20");
        f.step(-1, false);
        assert_eq!(f.value("guidance_scale"), "19.5");
        at(&mut f, "num_images");
        f.step(-1, false);
        assert_eq!(f.value("num_images"), "1");
        at(&mut f, "aspect_ratio");
        assert_eq!(f.value("aspect_ratio"), "auto");
        f.step(-1, false);
        assert_eq!(f.value("aspect_ratio"), "9:21");
        f.step(1, false);
        assert_eq!(f.value("aspect_ratio"), "auto");
        at(&mut f, "seed");
        f.step(1, false);
        assert_eq!(f.seed, SeedMode::Fixed("0".into()));
        f.step(1, false);
        assert_eq!(f.seed, SeedMode::ReuseLast);
    }

    #[test]
    fn typing_replaces_then_appends_and_keeps_what_was_typed() {
        let mut f = ParamForm::new(schema("fal-ai/flux-pro/kontext/multi"));
        at(&mut f, "guidance_scale");
        assert!(f.type_char('2'));
        assert!(f.type_char('5'));
        assert_eq!(f.value("guidance_scale"), "25", "out of range values stay visible to be flagged");
        let mut d = Draft::default();
        f.fill(&mut d, None).unwrap();
        assert_eq!(d.get("guidance_scale"), Some("25"));
        at(&mut f, "enhance_prompt");
        assert!(!f.type_char('1'), "switches take no typing");
        at(&mut f, "seed");
        f.seed = SeedMode::ReuseLast;
        assert!(f.fill(&mut d, None).is_err());
        f.fill(&mut d, Some(7)).unwrap();
        assert_eq!(d.get("seed"), Some("7"));
    }

    #[test]
    fn another_endpoint_keeps_the_values_that_still_fit() {
        let mut f = ParamForm::new(schema("fal-ai/flux-pro/kontext/multi"));
        at(&mut f, "guidance_scale");
        f.type_char('7');
        at(&mut f, "aspect_ratio");
        f.step(1, false);
        at(&mut f, "num_images");
        f.step(1, false);
        f.set_schema(schema("fal-ai/flux-kontext/dev"));
        assert_eq!(f.value("guidance_scale"), "7", "dev has guidance 1–20 too");
        assert_eq!(f.value("num_images"), "2");
        assert_eq!(f.value("aspect_ratio"), "", "dev has no aspect_ratio row");
        let mut d = Draft::default();
        f.fill(&mut d, None).unwrap();
        assert_eq!(d.get("aspect_ratio"), None, "a field dev lacks is not sent");
        assert_eq!(d.get("num_inference_steps"), Some("28"));
        f.set_schema(schema("fal-ai/flux-pro/kontext/multi"));
        assert_eq!(f.value("aspect_ratio"), "auto", "what did not fit is gone, not remembered");
    }
}
