//! The sweep dialog: the current draft, many ways. Each axis is typed as text in `kontext
//! sweep`'s syntax and parsed by `model::sweep` (the same errors); as it is typed the dialog
//! shows the plan — how many requests, the axes, the estimate summed over every point — and
//! refuses what the CLI would refuse: an invalid point (checked against its endpoint's schema),
//! a plan over `MAX_PLAN`, or over a `[budget]` cap. No I/O: the app hands it what it needs.

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};

use super::context::{AppContext, dollars};
use super::view::theme::Theme;
use super::widgets::{centered, clip};
use crate::model::sweep::{self, Axis, AxisFlags, MAX_PLAN, PlanProblems, Planned};
use crate::model::{Draft, Endpoint, EndpointSchema, FieldError};
use crate::sanitize::one_line;

/// The text fields, in the order shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    Seeds,
    Guidance,
    AspectRatio,
    Prompts,
    Endpoints,
    Fields,
    Concurrency,
}

const ROWS: [Row; 7] =
    [Row::Seeds, Row::Guidance, Row::AspectRatio, Row::Prompts, Row::Endpoints, Row::Fields, Row::Concurrency];

impl Row {
    fn label(self) -> &'static str {
        match self {
            Row::Seeds => "seeds",
            Row::Guidance => "guidance",
            Row::AspectRatio => "aspect ratio",
            Row::Prompts => "prompts",
            Row::Endpoints => "endpoints",
            Row::Fields => "fields (--set)",
            Row::Concurrency => "concurrency",
        }
    }

    fn example(self) -> &'static str {
        match self {
            Row::Seeds => "1..8 · 1,5,9 · random:4",
            Row::Guidance => "2,3.5,5",
            Row::AspectRatio => "1:1,16:9",
            Row::Prompts => "one prompt | another",
            Row::Endpoints => "ids, comma-separated",
            Row::Fields => "name=v1,v2; other=a,b",
            Row::Concurrency => "1 to 64 in flight",
        }
    }
}

/// What the dialog plans from: the editor's draft and endpoint, the prices, the budget.
pub struct PlanBase<'a> {
    pub ctx: &'a AppContext,
    /// The editor's draft (or why it cannot be read, e.g. a half-typed number).
    pub draft: Result<Draft, String>,
    pub schema: Arc<EndpointSchema>,
    /// The input images' sizes where known, for per-megapixel estimates.
    pub sizes: Vec<Option<(u32, u32)>>,
    /// Problems the Images pane found with local files (they hold for every point).
    pub file_errors: Vec<FieldError>,
    pub checking_images: bool,
    pub spent_today: Option<f64>,
}

/// A plan that may be sent: every point valid and priced, within the budget.
pub struct SweepOrder {
    pub axes: Vec<Axis>,
    pub plan: Vec<Planned>,
    pub total: Option<f64>,
    pub concurrency: u16,
}

/// What the dialog shows under its fields.
enum Preview {
    /// The plan is valid; `refusal` says why it may still not be sent (the budget).
    Plan { axes: Vec<Axis>, plan: Vec<Planned>, total: Option<f64>, source: String, refusal: Option<String> },
    /// What is wrong, one line each.
    Problems(Vec<String>),
}

/// What a key did to the dialog.
pub enum DialogOutcome {
    Open,
    Cancelled,
    /// Enter on a plan that may go; the dialog is done.
    Send(SweepOrder),
}

pub struct SweepDialog {
    texts: [String; ROWS.len()],
    focused: usize,
    preview: Preview,
    /// `random:N` as typed and the seeds it drew: kept while that text stays, so the seeds
    /// shown do not change with every key typed in another field.
    drawn_seeds: Option<(String, Vec<String>)>,
}

impl Default for SweepDialog {
    fn default() -> SweepDialog {
        let mut texts: [String; ROWS.len()] = Default::default();
        // The CLI's default: fal's starting per-account limit.
        texts[ROWS.len() - 1] = "2".into();
        SweepDialog { texts, focused: 0, preview: Preview::Problems(Vec::new()), drawn_seeds: None }
    }
}

/// Typing a key into a one-line field: characters, Backspace, Ctrl-U clears.
fn edit(text: &mut String, key: &KeyEvent) -> bool {
    match key.code {
        KeyCode::Backspace => {
            text.pop();
            true
        }
        KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
            text.clear();
            true
        }
        KeyCode::Char(c) if !key.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) => {
            text.push(c);
            true
        }
        _ => false,
    }
}

impl SweepDialog {
    fn text(&self, row: Row) -> &str {
        let i = ROWS.iter().position(|r| *r == row).expect("a row of ROWS");
        &self.texts[i]
    }

    /// The text of a field, for tests and the app: "seeds", "guidance", …
    pub fn set_field(&mut self, label: &str, text: &str) {
        if let Some(i) = ROWS.iter().position(|r| r.label() == label) {
            self.texts[i] = text.to_string();
        }
    }

    /// The number of requests the current text plans (0 while it is not valid).
    pub fn count(&self) -> usize {
        match &self.preview {
            Preview::Plan { plan, .. } => plan.len(),
            Preview::Problems(_) => 0,
        }
    }

    /// Why the plan cannot be sent as it stands (problems or the budget), if it cannot.
    pub fn blocked(&self) -> Option<String> {
        match &self.preview {
            Preview::Plan { refusal, .. } => refusal.clone(),
            Preview::Problems(p) if p.is_empty() => Some("nothing planned yet".into()),
            Preview::Problems(p) => Some(p.join("; ")),
        }
    }

    fn concurrency(&self) -> Result<u16, String> {
        let text = self.text(Row::Concurrency).trim();
        match text.parse::<u16>() {
            Ok(n) if (1..=64).contains(&n) => Ok(n),
            _ => Err(format!("concurrency {text:?}: give a whole number from 1 to 64")),
        }
    }

    /// A paste goes into the focused field, as one line.
    pub fn paste(&mut self, text: &str) {
        self.texts[self.focused].push_str(&one_line(text));
    }

    pub fn on_key(&mut self, key: &KeyEvent) -> DialogOutcome {
        match key.code {
            KeyCode::Esc => return DialogOutcome::Cancelled,
            KeyCode::Up | KeyCode::BackTab => self.focused = self.focused.checked_sub(1).unwrap_or(ROWS.len() - 1),
            KeyCode::Down | KeyCode::Tab => self.focused = (self.focused + 1) % ROWS.len(),
            KeyCode::Enter => {
                if self.blocked().is_some() {
                    return DialogOutcome::Open;
                }
                let Ok(concurrency) = self.concurrency() else { return DialogOutcome::Open };
                let preview = std::mem::replace(&mut self.preview, Preview::Problems(Vec::new()));
                if let Preview::Plan { axes, plan, total, .. } = preview {
                    return DialogOutcome::Send(SweepOrder { axes, plan, total, concurrency });
                }
            }
            _ => {
                edit(&mut self.texts[self.focused], key);
            }
        }
        DialogOutcome::Open
    }

    /// Plans again from the text as it is now (after every key, and when the dialog opens).
    pub fn refresh(&mut self, base: &PlanBase) {
        let seeds = self.text(Row::Seeds).trim().to_string();
        let drawn = match &self.drawn_seeds {
            Some((text, drawn)) if *text == seeds => Some(drawn.join(",")),
            _ => None,
        };
        self.preview = match self.plan(base, drawn.as_deref()) {
            Ok(p) => p,
            Err(problems) => Preview::Problems(problems),
        };
        if seeds.starts_with("random:")
            && drawn.is_none()
            && let Preview::Plan { axes, .. } = &self.preview
        {
            let values = axes.iter().find(|a| a.kind == sweep::AxisKind::Seed).map(|a| a.values.clone());
            self.drawn_seeds = values.map(|v| (seeds, v));
        }
    }

    /// `drawn_seeds`: the seeds `random:N` drew before, used instead of drawing again.
    fn plan(&self, base: &PlanBase, drawn_seeds: Option<&str>) -> Result<Preview, Vec<String>> {
        let given = |row: Row| Some(self.text(row).trim()).filter(|t| !t.is_empty());
        let sets: Vec<String> =
            self.text(Row::Fields).split(';').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        // A prompt may hold commas (as each --prompt is one value): prompts are split at '|'.
        let prompts: Vec<String> =
            self.text(Row::Prompts).split('|').map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect();
        let flags = AxisFlags {
            seeds: drawn_seeds.or(given(Row::Seeds)),
            guidance: given(Row::Guidance),
            aspect_ratio: given(Row::AspectRatio),
            prompts: &prompts,
            endpoints: given(Row::Endpoints),
            sets: &sets,
        };
        let axes = sweep::axes(&flags).map_err(|m| vec![m])?;
        let concurrency = self.concurrency().map_err(|m| vec![m]);
        let draft = base.draft.clone().map_err(|m| vec![m])?;
        if base.checking_images {
            return Err(vec!["still checking the image files — a moment".into()]);
        }
        let mut problems = PlanProblems::default();
        let mut plan = Vec::new();
        for (index, point) in sweep::points(&axes).into_iter().enumerate() {
            let schema = match point.value(&sweep::AxisKind::Endpoint) {
                None => base.schema.clone(),
                Some(id) => match Endpoint::parse(id).and_then(|_| base.ctx.catalog.require(id).cloned()) {
                    Ok(s) => s,
                    Err(m) => {
                        problems.note(format!("endpoint: {m}"), &point);
                        continue;
                    }
                },
            };
            let mut d = if schema.endpoint_id == base.schema.endpoint_id {
                draft.clone()
            } else {
                draft.only_fields_of(&schema)
            };
            point.apply_to(&mut d);
            match d.validate_for(&schema, |_| Ok(())) {
                Ok(input) => {
                    let mut p = Planned::new(index, point, &axes, input);
                    p.estimate = base.ctx.prices.estimate(&p.input.schema, &p.input.body(), &base.sizes);
                    plan.push(p);
                }
                Err(errors) => {
                    for e in errors.0 {
                        problems.note(e.to_string(), &point);
                    }
                }
            }
        }
        let mut lines = problems.lines(&axes);
        lines.extend(base.file_errors.iter().map(|e| e.to_string()));
        if let Err(m) = concurrency {
            lines.extend(m);
        }
        if !lines.is_empty() {
            return Err(lines);
        }
        let total = plan.iter().map(|p| p.estimate.usd).sum::<Option<f64>>();
        let first = &plan[0].estimate.price_source;
        let source = if plan.iter().all(|p| &p.estimate.price_source == first) {
            first.clone()
        } else {
            "several price sources".into()
        };
        let spent = base.spent_today.unwrap_or(0.0);
        let refusal = sweep::within_budget(&base.ctx.budget, &plan, total, || Ok(spent))
            .err()
            .map(|m| super::cost_line::studio_wording(&m));
        Ok(Preview::Plan { axes, plan, total, source, refusal })
    }

    pub fn draw(&self, buf: &mut Buffer, area: Rect, theme: &Theme) {
        let width = area.width.min(92).saturating_sub(4) as usize;
        let mut lines = vec![Line::styled(
            "The current draft, many ways: each field a list, as kontext sweep takes it",
            theme.dim(),
        )];
        for (i, row) in ROWS.iter().enumerate() {
            let focused = i == self.focused;
            let text = clip(&self.texts[i], 40);
            let cursor = if focused { "█" } else { "" };
            let value = format!("{text}{cursor}");
            lines.push(Line::from(vec![
                Span::styled(format!("{:<15} ", row.label()), if focused { theme.key() } else { theme.title() }),
                Span::styled(format!("{value:<42}"), if focused { theme.selected() } else { Style::default() }),
                Span::styled(format!(" {}", row.example()), theme.dim()),
            ]));
        }
        lines.push(Line::raw(""));
        match &self.preview {
            Preview::Problems(problems) if problems.is_empty() => {
                lines.push(Line::styled("type values: the plan and its estimate show here", theme.dim()));
            }
            Preview::Problems(problems) => {
                lines.push(Line::styled("not valid — nothing will be sent:", theme.error()));
                for p in problems.iter().take(6) {
                    lines.push(Line::styled(clip(&format!("  {}", one_line(p)), width), theme.error()));
                }
            }
            Preview::Plan { axes, plan, total, source, refusal } => {
                let n = plan.len();
                let cost = total.map(|u| format!("~{}", dollars(u))).unwrap_or_else(|| "cost unknown".into());
                lines.push(Line::styled(
                    format!("{n} request{} · {cost} in all ({})", if n == 1 { "" } else { "s" }, one_line(source)),
                    theme.title(),
                ));
                for axis in axes {
                    let values = one_line(&axis.values.join(" | "));
                    lines.push(Line::raw(clip(&format!("  {} = {values}", axis.kind.name()), width)));
                }
                if axes.is_empty() {
                    lines.push(Line::styled("  no axis: one request, as the draft is", theme.dim()));
                }
                match refusal {
                    Some(r) => lines.push(Line::styled(format!("refused: {}", one_line(r)), theme.error())),
                    None => {
                        let c = self.concurrency().unwrap_or(2);
                        lines.push(Line::styled(format!("Enter sends {n}, {c} at a time · Esc cancels"), theme.ok()));
                    }
                }
            }
        }
        lines.push(Line::styled(
            format!("at most {MAX_PLAN} requests · ↑↓/Tab field · Backspace · Ctrl-U clears"),
            theme.dim(),
        ));
        // Room for a long refusal to wrap onto a second line.
        let rect = centered(area, 92, (lines.len() as u16 + 3).min(area.height));
        Clear.render(rect, buf);
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" Sweep — Enter sends · Esc cancels ").border_style(theme.border_focused()))
            .render(rect, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cost::BudgetCaps;
    use crate::tui::action::Keymap;

    fn ready_draft() -> Draft {
        Draft { prompt: "make it blue".into(), images: vec!["https://a.example/x.png".into()], ..Draft::default() }
    }

    fn base(ctx: &AppContext, draft: Draft) -> PlanBase<'_> {
        PlanBase {
            ctx,
            draft: Ok(draft),
            schema: ctx.catalog.get("fal-ai/flux-pro/kontext").unwrap().clone(),
            sizes: vec![None],
            file_errors: Vec::new(),
            checking_images: false,
            spent_today: Some(0.0),
        }
    }

    fn type_into(d: &mut SweepDialog, text: &str) {
        for c in text.chars() {
            d.on_key(&KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
        }
    }

    fn screen(d: &SweepDialog) -> String {
        let area = Rect::new(0, 0, 100, 24);
        let mut buf = Buffer::empty(area);
        d.draw(&mut buf, area, &Theme::MONO);
        (0..area.height)
            .map(|y| (0..area.width).map(|x| buf[(x, y)].symbol().to_string()).collect::<String>() + "\n")
            .collect()
    }

    #[test]
    fn typing_axes_shows_the_count_the_axes_and_the_summed_estimate() {
        let ctx = AppContext::new(Keymap::default());
        let mut d = SweepDialog::default();
        type_into(&mut d, "1..3");
        d.refresh(&base(&ctx, ready_draft()));
        assert_eq!(d.count(), 3);
        d.on_key(&KeyEvent::new(KeyCode::Down, KeyModifiers::NONE));
        type_into(&mut d, "2,5");
        d.refresh(&base(&ctx, ready_draft()));
        assert_eq!(d.count(), 6);
        let s = screen(&d);
        // [pro] kontext is $0.04 a request in the bundled prices.
        assert!(s.contains("6 requests · ~$0.240 in all"), "{s}");
        assert!(s.contains("seed = 1 | 2 | 3") && s.contains("guidance_scale = 2 | 5"), "{s}");
        assert!(s.contains("Enter sends 6, 2 at a time"), "{s}");
        let DialogOutcome::Send(order) = d.on_key(&KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)) else {
            panic!("a valid plan is sent")
        };
        assert_eq!((order.plan.len(), order.concurrency), (6, 2));
        assert_eq!(order.plan[5].input.get("guidance_scale"), Some(serde_json::json!(5.0)));
        assert_eq!(order.plan[5].input.seed(), Some(3));
        assert!((order.total.unwrap() - 0.24).abs() < 1e-9);
    }

    #[test]
    fn random_seeds_are_drawn_once_while_their_text_stays() {
        let ctx = AppContext::new(Keymap::default());
        let mut d = SweepDialog::default();
        type_into(&mut d, "random:3");
        d.refresh(&base(&ctx, ready_draft()));
        let seeds = |d: &SweepDialog| match &d.preview {
            Preview::Plan { axes, .. } => axes[0].values.clone(),
            Preview::Problems(p) => panic!("{p:?}"),
        };
        let first = seeds(&d);
        assert_eq!(first.len(), 3);
        d.on_key(&KeyEvent::new(KeyCode::Down, KeyModifiers::NONE));
        type_into(&mut d, "2");
        d.refresh(&base(&ctx, ready_draft()));
        assert_eq!(seeds(&d), first, "typing elsewhere keeps them");
        d.set_field("seeds", "random:4");
        d.refresh(&base(&ctx, ready_draft()));
        assert_eq!(seeds(&d).len(), 4, "new text, new seeds");
    }

    #[test]
    fn the_clis_errors_and_each_points_schema_problems_block_the_send() {
        let ctx = AppContext::new(Keymap::default());
        let mut d = SweepDialog::default();
        type_into(&mut d, "4..1");
        d.refresh(&base(&ctx, ready_draft()));
        assert!(d.blocked().unwrap().contains("--seeds \"4..1\": the end is below the start"), "{:?}", d.blocked());
        assert!(matches!(d.on_key(&KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)), DialogOutcome::Open));
        d.set_field("seeds", "1,2");
        d.set_field("guidance", "3,300");
        d.refresh(&base(&ctx, ready_draft()));
        let why = d.blocked().unwrap();
        assert!(why.starts_with("guidance_scale=300: "), "the value that causes it is named: {why}");
        d.set_field("guidance", "3");
        d.set_field("seeds", "1..2000");
        d.refresh(&base(&ctx, ready_draft()));
        assert!(d.blocked().unwrap().contains("more than 1024"), "{:?}", d.blocked());
        d.set_field("seeds", "1");
        d.set_field("endpoints", "fal-ai/flux-pro/kontext,fal-ai/nope");
        d.refresh(&base(&ctx, ready_draft()));
        assert!(d.blocked().unwrap().contains("endpoint=fal-ai/nope: endpoint:"), "{:?}", d.blocked());
        d.set_field("endpoints", "");
        d.set_field("concurrency", "65");
        d.refresh(&base(&ctx, ready_draft()));
        assert!(d.blocked().unwrap().contains("1 to 64"), "{:?}", d.blocked());
        d.set_field("concurrency", "64");
        d.refresh(&base(&ctx, Draft { prompt: String::new(), ..ready_draft() }));
        assert!(d.blocked().unwrap().to_lowercase().contains("prompt"), "an empty prompt: {:?}", d.blocked());
    }

    #[test]
    fn over_a_budget_cap_the_plan_is_refused_naming_the_cap() {
        let mut ctx = AppContext::new(Keymap::default());
        ctx.budget = BudgetCaps { max_request_usd: None, daily_usd: Some(0.20) };
        let mut d = SweepDialog::default();
        d.set_field("seeds", "1..6");
        d.refresh(&base(&ctx, ready_draft()));
        let why = d.blocked().unwrap();
        assert!(why.contains("the whole sweep") && why.contains("daily_usd"), "{why}");
        assert!(!why.contains("--allow-over-budget"), "the studio has no such flag: {why}");
        assert!(screen(&d).contains("refused: the whole sweep"), "{}", screen(&d));
        assert!(matches!(d.on_key(&KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)), DialogOutcome::Open));
        d.set_field("seeds", "1..5");
        d.refresh(&base(&ctx, ready_draft()));
        assert_eq!(d.blocked(), None, "5 × $0.04 is the cap exactly");
        ctx.budget = BudgetCaps { max_request_usd: Some(0.01), daily_usd: None };
        d.refresh(&base(&ctx, ready_draft()));
        assert!(d.blocked().unwrap().contains("seed=1: the estimate"), "{:?}", d.blocked());
        assert!(matches!(d.on_key(&KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)), DialogOutcome::Cancelled));
    }

    #[test]
    fn a_field_axis_and_an_endpoint_axis_validate_each_point_for_its_endpoint() {
        let ctx = AppContext::new(Keymap::default());
        let mut d = SweepDialog::default();
        d.set_field("endpoints", "fal-ai/flux-pro/kontext, fal-ai/flux-pro/kontext/max");
        d.set_field("fields (--set)", "output_format=png,jpeg");
        d.refresh(&base(&ctx, ready_draft()));
        assert_eq!(d.count(), 4, "{:?}", d.blocked());
        d.set_field("prompts", "make it red, please | make it blue");
        d.refresh(&base(&ctx, ready_draft()));
        assert_eq!(d.count(), 8, "{:?}", d.blocked());
        let Preview::Plan { plan, .. } = &d.preview else { panic!() };
        assert_eq!(plan[0].input.prompt, "make it red, please", "a comma stays in its prompt");
        assert_eq!(
            plan[4].input.prompt, "make it blue",
            "the prompt axis varies slower than the endpoint and the field"
        );
        d.set_field("prompts", "");
        d.refresh(&base(&ctx, ready_draft()));
        let s = screen(&d);
        // $0.04 + $0.08, twice.
        assert!(s.contains("4 requests · ~$0.240"), "{s}");
        let DialogOutcome::Send(order) = d.on_key(&KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)) else { panic!() };
        assert_eq!(order.plan[3].input.endpoint_id(), "fal-ai/flux-pro/kontext/max");
        assert_eq!(order.plan[3].input.get("output_format"), Some(serde_json::json!("jpeg")));
    }
}
