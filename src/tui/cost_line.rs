//! What the next submit would cost, and whether the budget lets it go: the estimate follows the
//! form (the same `model::cost::estimate` as `kontext run`, with its price source), today's spend
//! comes from the ledger through an effect, and `model::cost::check_budget` — the CLI's check —
//! decides before anything is sent. No I/O here.

use super::context::{AppContext, dollars};
use crate::model::ValidInput;
use crate::model::cost::{Estimate, check_budget};

#[derive(Debug, Default)]
pub struct CostLine {
    /// The estimate of the request the editor holds, when it is valid.
    estimate: Option<Estimate>,
    /// What today's requests cost so far (UTC day); `None` until the ledger answered.
    spent_today: Option<f64>,
}

impl CostLine {
    /// The editor changed: estimate what it holds now (`None`: not a valid request yet).
    /// `sizes` are the input images' sizes where known (local files, looked at off the UI task
    /// by `Effect::CheckImages`); a per-megapixel estimate that needs an unknown one says it
    /// assumed a size.
    pub fn follow(&mut self, ctx: &AppContext, input: Option<&ValidInput>, sizes: &[Option<(u32, u32)>]) {
        self.estimate = input.map(|i| ctx.prices.estimate(&i.schema, &i.body(), sizes));
    }

    pub fn estimate(&self) -> Option<&Estimate> {
        self.estimate.as_ref()
    }

    pub fn set_spent_today(&mut self, usd: f64) {
        self.spent_today = Some(usd);
    }

    pub fn spent_today(&self) -> Option<f64> {
        self.spent_today
    }

    /// The budget's verdict on the current estimate: the CLI's message when it is refused, with
    /// the studio's way out (it has no `--allow-over-budget`).
    pub fn refusal(&self, ctx: &AppContext) -> Option<String> {
        let estimate = self.estimate.as_ref()?;
        check_budget(&ctx.budget, estimate, self.spent_today.unwrap_or(0.0)).err().map(|m| studio_wording(&m))
    }

    /// Shown after the submit hint: "~$0.080 (bundled 2026-11-20)", or "refused: over budget".
    pub fn submit_detail(&self, ctx: &AppContext) -> Option<String> {
        if self.refusal(ctx).is_some() {
            return Some("refused: over budget".into());
        }
        let e = self.estimate.as_ref()?;
        Some(match e.usd {
            Some(usd) => format!("~{} ({})", dollars(usd), short_source(&e.price_source)),
            None => "cost unknown".into(),
        })
    }

    /// The whole story, for the Parameters pane's last line: units × price, the source, the
    /// budget's refusal.
    pub fn describe(&self, ctx: &AppContext) -> Option<String> {
        let e = self.estimate.as_ref()?;
        Some(match self.refusal(ctx) {
            Some(r) => format!("refused: {}", crate::sanitize::one_line(&r)),
            None => format!("cost {}", crate::sanitize::one_line(&e.describe())),
        })
    }
}

/// The budget check's message with the studio's way out (it has no `--allow-over-budget`).
pub fn studio_wording(message: &str) -> String {
    message
        .replace("pass --allow-over-budget to send it once, or raise the cap", "raise the cap in the config's [budget]")
        .replace("pass --allow-over-budget to send it anyway", "remove the [budget] caps to send it")
}

/// The price source in a word or two, so the submit hint keeps its place in the status bar
/// (the Parameters pane's cost line gives it whole, with its date): "bundled", "fal API".
fn short_source(source: &str) -> String {
    if source.starts_with("bundled") {
        "bundled".into()
    } else if source.starts_with("fal pricing API") {
        "fal API".into()
    } else {
        crate::tui::widgets::clip(&crate::sanitize::one_line(source), 12)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::cost::BudgetCaps;
    use crate::model::{Catalog, Draft};
    use crate::tui::action::Keymap;

    fn input(endpoint: &str, num_images: &str) -> ValidInput {
        let schema = Catalog::bundled().get(endpoint).unwrap().clone();
        let mut d = Draft { prompt: "p".into(), images: vec!["https://a.example/x.png".into()], ..Draft::default() };
        d.set("num_images", num_images.into());
        d.validate_for(&schema, |_| Ok(())).unwrap()
    }

    #[test]
    fn the_estimate_follows_the_form_and_the_budget_refuses_over_a_cap() {
        let mut ctx = AppContext::new(Keymap::default());
        let mut c = CostLine::default();
        c.follow(&ctx, Some(&input("fal-ai/flux-pro/kontext/max", "2")), &[None]);
        assert_eq!(c.estimate().and_then(|e| e.usd), Some(0.16));
        let detail = c.submit_detail(&ctx).unwrap();
        assert_eq!(detail, "~$0.160 (bundled)");
        assert!(c.describe(&ctx).unwrap().contains("2 images × $0.08"), "{:?}", c.describe(&ctx));
        ctx.budget = BudgetCaps { max_request_usd: Some(0.10), daily_usd: None };
        let refusal = c.refusal(&ctx).unwrap();
        assert!(refusal.contains("max_request_usd") && refusal.contains("nothing was sent"), "{refusal}");
        assert!(!refusal.contains("--allow-over-budget"), "the studio has no such flag: {refusal}");
        assert_eq!(c.submit_detail(&ctx).as_deref(), Some("refused: over budget"));
        assert!(c.describe(&ctx).unwrap().starts_with("refused: the estimate $0.1600 is over"));
        c.follow(&ctx, Some(&input("fal-ai/flux-pro/kontext/max", "1")), &[None]);
        assert_eq!(c.refusal(&ctx), None, "$0.08 is under the cap");
        ctx.budget = BudgetCaps { max_request_usd: None, daily_usd: Some(1.0) };
        c.set_spent_today(0.95);
        assert!(c.refusal(&ctx).unwrap().contains("daily_usd"), "today's spend counts");
        c.follow(&ctx, None, &[]);
        assert_eq!(c.submit_detail(&ctx), None, "nothing to estimate");
    }

    #[test]
    fn a_per_megapixel_estimate_counts_a_local_input_once_its_size_is_known() {
        let ctx = AppContext::new(Keymap::default());
        let mut c = CostLine::default();
        let dev = input("fal-ai/flux-kontext/dev", "1");
        c.follow(&ctx, Some(&dev), &[None]);
        let assumed = c.estimate().unwrap().clone();
        assert!(!assumed.exact && assumed.usd == Some(0.025), "1024×1024 assumed: {assumed:?}");
        // match_input (dev's default): a 2048×2048 input makes a 4-megapixel output.
        c.follow(&ctx, Some(&dev), &[Some((2048, 2048))]);
        let e = c.estimate().unwrap();
        assert!(e.exact && e.units == Some(4.0) && e.usd == Some(0.1), "{e:?}");
        assert_eq!(c.submit_detail(&ctx).as_deref(), Some("~$0.100 (bundled)"));
    }
}
