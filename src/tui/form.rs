//! The parameter form: one row per schema field, stepping and cycling with Left/Right, typed
//! values for numbers. Values stay text (like a `Draft`) so a half-typed number is shown as typed
//! and validated inline instead of being silently corrected.

use crate::model::{AspectRatio, DEFAULT_GUIDANCE_SCALE, Draft, Field, OutputFormat};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamRow {
    Seed,
    Guidance,
    NumImages,
    Format,
    Safety,
    EnhancePrompt,
    SyncMode,
    AspectRatio,
}

impl ParamRow {
    pub const ALL: [ParamRow; 8] = [
        ParamRow::Seed,
        ParamRow::Guidance,
        ParamRow::NumImages,
        ParamRow::Format,
        ParamRow::Safety,
        ParamRow::EnhancePrompt,
        ParamRow::SyncMode,
        ParamRow::AspectRatio,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ParamRow::Seed => "seed",
            ParamRow::Guidance => "guidance_scale",
            ParamRow::NumImages => "num_images",
            ParamRow::Format => "output_format",
            ParamRow::Safety => "safety_tolerance",
            ParamRow::EnhancePrompt => "enhance_prompt",
            ParamRow::SyncMode => "sync_mode",
            ParamRow::AspectRatio => "aspect_ratio",
        }
    }

    /// Default and range, shown beside the value.
    pub fn hint(self) -> &'static str {
        match self {
            ParamRow::Seed => "random | fixed | last",
            ParamRow::Guidance => "1–20, default 3.5",
            ParamRow::NumImages => "1–4, default 1",
            ParamRow::Format => "jpeg | png",
            ParamRow::Safety => "1 strict – 6, default 2",
            ParamRow::EnhancePrompt => "default off",
            ParamRow::SyncMode => "inline images, default off",
            ParamRow::AspectRatio => "auto or 21:9 … 9:21",
        }
    }

    pub fn field(self) -> Field {
        match self {
            ParamRow::Seed => Field::Seed,
            ParamRow::Guidance => Field::GuidanceScale,
            ParamRow::NumImages => Field::NumImages,
            ParamRow::Format => Field::OutputFormat,
            ParamRow::Safety => Field::SafetyTolerance,
            ParamRow::EnhancePrompt => Field::EnhancePrompt,
            ParamRow::SyncMode => Field::SyncMode,
            ParamRow::AspectRatio => Field::AspectRatio,
        }
    }

    /// Takes typed digits.
    pub fn is_numeric(self) -> bool {
        matches!(self, ParamRow::Seed | ParamRow::Guidance | ParamRow::NumImages | ParamRow::Safety)
    }
}

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
    seed: SeedMode,
    guidance: String,
    num_images: String,
    format: OutputFormat,
    safety: String,
    enhance_prompt: bool,
    sync_mode: bool,
    aspect_ratio: Option<AspectRatio>,
    selected: usize,
    /// True while the user types a value into the selected numeric row.
    typing: bool,
}

impl Default for ParamForm {
    fn default() -> ParamForm {
        ParamForm {
            seed: SeedMode::Random,
            guidance: DEFAULT_GUIDANCE_SCALE.to_string(),
            num_images: "1".into(),
            format: OutputFormat::Jpeg,
            safety: "2".into(),
            enhance_prompt: false,
            sync_mode: false,
            aspect_ratio: None,
            selected: 0,
            typing: false,
        }
    }
}

impl ParamForm {
    /// Starts from config defaults (a draft of strings), keeping what cannot be parsed as typed so
    /// it shows up as an inline error rather than vanishing.
    pub fn from_draft(d: &Draft) -> ParamForm {
        let mut f = ParamForm::default();
        f.apply_draft(d);
        f
    }

    pub fn apply_draft(&mut self, d: &Draft) {
        self.seed = match d.seed.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) => SeedMode::Fixed(s.to_string()),
            None => SeedMode::Random,
        };
        if let Some(g) = &d.guidance_scale {
            self.guidance = g.clone();
        }
        if let Some(n) = &d.num_images {
            self.num_images = n.clone();
        }
        if let Some(fmt) = d.output_format.as_deref().and_then(OutputFormat::parse) {
            self.format = fmt;
        }
        if let Some(s) = &d.safety_tolerance {
            self.safety = s.clone();
        }
        self.enhance_prompt = d.enhance_prompt;
        self.sync_mode = d.sync_mode;
        self.aspect_ratio = d.aspect_ratio.as_deref().and_then(AspectRatio::parse);
    }

    /// The row the cursor is on.
    pub fn selected(&self) -> usize {
        self.selected
    }

    /// A value is being typed into the selected row.
    pub fn is_typing(&self) -> bool {
        self.typing
    }

    pub fn stop_typing(&mut self) {
        self.typing = false;
    }

    pub fn row(&self) -> ParamRow {
        ParamRow::ALL[self.selected.min(ParamRow::ALL.len() - 1)]
    }

    /// The value as shown.
    pub fn value(&self, row: ParamRow) -> String {
        match row {
            ParamRow::Seed => match &self.seed {
                SeedMode::Random => "random".into(),
                SeedMode::Fixed(s) => s.clone(),
                SeedMode::ReuseLast => "last result's".into(),
            },
            ParamRow::Guidance => self.guidance.clone(),
            ParamRow::NumImages => self.num_images.clone(),
            ParamRow::Format => self.format.to_string(),
            ParamRow::Safety => self.safety.clone(),
            ParamRow::EnhancePrompt => on_off(self.enhance_prompt),
            ParamRow::SyncMode => on_off(self.sync_mode),
            ParamRow::AspectRatio => self.aspect_ratio.map(|a| a.to_string()).unwrap_or_else(|| "auto".into()),
        }
    }

    pub fn up(&mut self) {
        self.typing = false;
        self.selected = self.selected.saturating_sub(1);
    }

    pub fn down(&mut self) {
        self.typing = false;
        self.selected = (self.selected + 1).min(ParamRow::ALL.len() - 1);
    }

    /// Left/Right: step numbers, cycle choices, toggle switches. `big` is Shift.
    pub fn step(&mut self, dir: i32, big: bool) {
        self.typing = false;
        match self.row() {
            ParamRow::Seed => {
                let order = |m: &SeedMode| match m {
                    SeedMode::Random => 0,
                    SeedMode::Fixed(_) => 1,
                    SeedMode::ReuseLast => 2,
                };
                let next = (order(&self.seed) + dir).rem_euclid(3);
                self.seed = match next {
                    0 => SeedMode::Random,
                    1 => SeedMode::Fixed(match &self.seed {
                        SeedMode::Fixed(s) => s.clone(),
                        _ => "0".into(),
                    }),
                    _ => SeedMode::ReuseLast,
                };
            }
            ParamRow::Guidance => {
                let step = if big { 2.5 } else { 0.5 };
                let v = self.guidance.trim().parse::<f64>().unwrap_or(DEFAULT_GUIDANCE_SCALE);
                let v = ((v + step * dir as f64) * 10.0).round() / 10.0;
                self.guidance = v.clamp(1.0, 20.0).to_string();
            }
            ParamRow::NumImages => self.num_images = step_int(&self.num_images, dir, 1, 1, 4, 1),
            ParamRow::Safety => self.safety = step_int(&self.safety, dir, if big { 5 } else { 1 }, 1, 6, 2),
            ParamRow::Format => {
                self.format = if self.format == OutputFormat::Jpeg { OutputFormat::Png } else { OutputFormat::Jpeg }
            }
            ParamRow::EnhancePrompt => self.enhance_prompt = !self.enhance_prompt,
            ParamRow::SyncMode => self.sync_mode = !self.sync_mode,
            ParamRow::AspectRatio => {
                // auto, then the nine ratios, wrapping.
                let pos =
                    self.aspect_ratio.and_then(|a| AspectRatio::ALL.iter().position(|x| *x == a)).map_or(0, |p| p + 1);
                let next = (pos as i32 + dir).rem_euclid(AspectRatio::ALL.len() as i32 + 1) as usize;
                self.aspect_ratio = if next == 0 { None } else { Some(AspectRatio::ALL[next - 1]) };
            }
        }
    }

    /// Enter/Space: toggles switches, cycles choices.
    pub fn activate(&mut self) {
        match self.row() {
            ParamRow::EnhancePrompt | ParamRow::SyncMode | ParamRow::Format | ParamRow::AspectRatio => {
                self.step(1, false)
            }
            _ => self.typing = false,
        }
    }

    /// A typed character on a numeric row: the first one replaces the value, later ones append.
    /// Returns false when the row does not take typing.
    pub fn type_char(&mut self, c: char) -> bool {
        let row = self.row();
        if !row.is_numeric() || !(c.is_ascii_digit() || c == '.' || c == '-') {
            return false;
        }
        let target = match row {
            ParamRow::Seed => {
                if !self.typing || !matches!(self.seed, SeedMode::Fixed(_)) {
                    self.seed = SeedMode::Fixed(String::new());
                }
                match &mut self.seed {
                    SeedMode::Fixed(s) => s,
                    _ => return false,
                }
            }
            ParamRow::Guidance => &mut self.guidance,
            ParamRow::NumImages => &mut self.num_images,
            ParamRow::Safety => &mut self.safety,
            _ => return false,
        };
        if !self.typing {
            target.clear();
        }
        target.push(c);
        self.typing = true;
        true
    }

    pub fn backspace(&mut self) {
        let target = match self.row() {
            ParamRow::Seed => match &mut self.seed {
                SeedMode::Fixed(s) => s,
                _ => return,
            },
            ParamRow::Guidance => &mut self.guidance,
            ParamRow::NumImages => &mut self.num_images,
            ParamRow::Safety => &mut self.safety,
            _ => return,
        };
        target.pop();
        self.typing = true;
    }

    /// Writes the parameters into `draft`; `last_seed` fills the reuse-last mode.
    pub fn fill(&self, draft: &mut Draft, last_seed: Option<u64>) -> Result<(), String> {
        draft.seed = match &self.seed {
            SeedMode::Random => None,
            SeedMode::Fixed(s) => Some(s.clone()),
            SeedMode::ReuseLast => match last_seed {
                Some(s) => Some(s.to_string()),
                None => return Err("seed is set to reuse the last result's seed, but no job has finished yet".into()),
            },
        };
        draft.guidance_scale = Some(self.guidance.clone());
        draft.num_images = Some(self.num_images.clone());
        draft.output_format = Some(self.format.to_string());
        draft.safety_tolerance = Some(self.safety.clone());
        draft.enhance_prompt = self.enhance_prompt;
        draft.sync_mode = self.sync_mode;
        draft.aspect_ratio = self.aspect_ratio.map(|a| a.to_string());
        Ok(())
    }
}

fn on_off(b: bool) -> String {
    if b { "on".into() } else { "off".into() }
}

fn step_int(text: &str, dir: i32, step: i64, min: i64, max: i64, default: i64) -> String {
    let v = text.trim().parse::<i64>().unwrap_or(default);
    (v + step * dir as i64).clamp(min, max).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stepping_and_cycling_stay_in_range() {
        let mut f = ParamForm { selected: 1, ..ParamForm::default() };
        for _ in 0..50 {
            f.step(1, true);
        }
        assert_eq!(f.guidance, "20");
        f.step(-1, false);
        assert_eq!(f.guidance, "19.5");
        f.selected = 2;
        f.step(-1, false);
        assert_eq!(f.num_images, "1");
        f.selected = 7;
        f.step(-1, false);
        assert_eq!(f.aspect_ratio, Some(AspectRatio::R9x21));
        f.step(1, false);
        assert_eq!(f.aspect_ratio, None);
        f.selected = 0;
        f.step(1, false);
        assert_eq!(f.seed, SeedMode::Fixed("0".into()));
        f.step(1, false);
        assert_eq!(f.seed, SeedMode::ReuseLast);
    }

    #[test]
    fn typing_replaces_then_appends_and_keeps_what_was_typed() {
        let mut f = ParamForm { selected: 1, ..ParamForm::default() };
        assert!(f.type_char('2'));
        assert!(f.type_char('5'));
        assert_eq!(f.guidance, "25", "out of range values stay visible to be flagged");
        let mut d = Draft::default();
        f.fill(&mut d, None).unwrap();
        assert_eq!(d.guidance_scale.as_deref(), Some("25"));
        f.selected = 5;
        assert!(!f.type_char('1'), "switches take no typing");
        f.selected = 0;
        f.seed = SeedMode::ReuseLast;
        assert!(f.fill(&mut d, None).is_err());
        f.fill(&mut d, Some(7)).unwrap();
        assert_eq!(d.seed.as_deref(), Some("7"));
    }
}
