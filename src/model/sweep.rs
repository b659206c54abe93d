//! A sweep's plan, for `kontext sweep` and the studio's sweep dialog: its axes (each a list of
//! values, parsed from the flags' text), their cartesian product (one point per request), the
//! plan's requests, and how a grid lays them out. No I/O.

use std::fmt;
use std::path::PathBuf;

use crate::model::cost::{BudgetCaps, Estimate, check_budget};
use crate::model::{Draft, ValidInput};

/// The most requests one sweep may plan: a typo such as `--seeds 1..10000` is refused, not sent.
pub const MAX_PLAN: usize = 1024;

/// What an axis varies: a field `kontext run` has a flag for, or any schema field (`--set`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AxisKind {
    Seed,
    Guidance,
    AspectRatio,
    Prompt,
    Endpoint,
    Field(String),
}

impl AxisKind {
    /// The name shown in the plan, on the grid and in `--json` (the schema field's name).
    pub fn name(&self) -> &str {
        match self {
            AxisKind::Seed => "seed",
            AxisKind::Guidance => "guidance_scale",
            AxisKind::AspectRatio => "aspect_ratio",
            AxisKind::Prompt => "prompt",
            AxisKind::Endpoint => "endpoint",
            AxisKind::Field(f) => f,
        }
    }
}

impl AxisKind {
    /// The kind an axis name (as [`AxisKind::name`] gives it) stands for.
    pub fn from_name(name: &str) -> AxisKind {
        match name {
            "seed" => AxisKind::Seed,
            "guidance_scale" => AxisKind::Guidance,
            "aspect_ratio" => AxisKind::AspectRatio,
            "prompt" => AxisKind::Prompt,
            "endpoint" => AxisKind::Endpoint,
            other => AxisKind::Field(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub kind: AxisKind,
    pub values: Vec<String>,
}

/// One request of the plan: the value of each axis, in the axes' order.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub values: Vec<(AxisKind, String)>,
}

impl Point {
    /// Axis name → value, as the history and `--json` keep a point.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.values.iter().map(|(k, v)| (k.name().to_string(), serde_json::Value::String(v.clone()))).collect(),
        )
    }

    /// The value this point gives `kind`'s axis.
    pub fn value(&self, kind: &AxisKind) -> Option<&str> {
        self.values.iter().find(|(k, _)| k == kind).map(|(_, v)| v.as_str())
    }

    /// The values of the axes that vary (more than one value), for messages and progress
    /// lines; all of them when none varies.
    pub fn label(&self, axes: &[Axis]) -> String {
        let varying: Vec<&(AxisKind, String)> =
            self.values.iter().filter(|(k, _)| axes.iter().any(|a| a.kind == *k && a.values.len() > 1)).collect();
        if varying.is_empty() {
            return self.to_string();
        }
        let parts: Vec<String> = varying.iter().map(|(k, v)| format!("{}={v}", k.name())).collect();
        parts.join(", ")
    }
}

impl Point {
    /// Puts this point's values into a request's draft (all but the endpoint, which picks the
    /// schema the draft is validated for): each axis is the schema field of its name.
    pub fn apply_to(&self, draft: &mut Draft) {
        for (kind, value) in &self.values {
            if *kind != AxisKind::Endpoint {
                draft.set(kind.name(), value.clone());
            }
        }
    }
}

/// Problems found when checking each point of a plan: the same problem at many points is told
/// once, with the axis values all those points share (the value that causes it, e.g.
/// `guidance_scale=30`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PlanProblems(Vec<(String, Vec<(AxisKind, String)>)>);

impl PlanProblems {
    pub fn note(&mut self, message: String, point: &Point) {
        match self.0.iter_mut().find(|(m, _)| *m == message) {
            Some((_, common)) => common.retain(|v| point.values.contains(v)),
            None => self.0.push((message, point.values.clone())),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One line per problem: "guidance_scale=30: must be at most 20".
    pub fn lines(&self, axes: &[Axis]) -> Vec<String> {
        self.0
            .iter()
            .map(|(message, common)| {
                let at = Point { values: common.clone() }.label(axes);
                if at.is_empty() { message.clone() } else { format!("{at}: {message}") }
            })
            .collect()
    }
}

/// `[budget]` over a plan as a whole (`kontext sweep` and the studio's sweep dialog): each
/// request under `max_request_usd`, and the whole plan plus today's spend under `daily_usd`.
/// `spent_today` is asked for only when a daily cap needs it.
pub fn within_budget(
    caps: &BudgetCaps,
    plan: &[Planned],
    total: Option<f64>,
    spent_today: impl FnOnce() -> Result<f64, String>,
) -> Result<(), String> {
    if (caps.max_request_usd.is_none() && caps.daily_usd.is_none()) || plan.is_empty() {
        return Ok(());
    }
    let per_request = BudgetCaps { max_request_usd: caps.max_request_usd, daily_usd: None };
    for p in plan {
        check_budget(&per_request, &p.estimate, 0.0).map_err(|m| format!("{}: {m}", p.label))?;
    }
    if caps.daily_usd.is_none() {
        return Ok(());
    }
    let whole = Estimate { usd: total, ..plan[0].estimate.clone() };
    let daily = BudgetCaps { max_request_usd: None, daily_usd: caps.daily_usd };
    check_budget(&daily, &whole, spent_today()?).map_err(|m| format!("the whole sweep: {m}"))
}

impl Point {
    /// The values alone of the axes that vary ("2 · 5 · 16:9"), where `label` does not fit.
    pub fn short_label(&self, axes: &[Axis]) -> String {
        let varies = |k: &AxisKind| axes.iter().any(|a| a.kind == *k && a.values.len() > 1);
        let values: Vec<&str> = self.values.iter().filter(|(k, _)| varies(k)).map(|(_, v)| v.as_str()).collect();
        if values.is_empty() { self.to_string() } else { values.join(" · ") }
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.values.iter().map(|(k, v)| format!("{}={v}", k.name())).collect();
        f.write_str(&parts.join(", "))
    }
}

/// The axes as given on the command line; each flag is optional.
#[derive(Debug, Default)]
pub struct AxisFlags<'a> {
    pub seeds: Option<&'a str>,
    pub guidance: Option<&'a str>,
    pub aspect_ratio: Option<&'a str>,
    pub prompts: &'a [String],
    pub endpoints: Option<&'a str>,
    pub sets: &'a [String],
}

/// The axes in a fixed order (seed, guidance, aspect ratio, prompt, endpoint, then `--set`
/// fields as given): the first two are the rows and columns of the grid.
pub fn axes(flags: &AxisFlags<'_>) -> Result<Vec<Axis>, String> {
    let mut axes = Vec::new();
    if let Some(s) = flags.seeds {
        axes.push(Axis { kind: AxisKind::Seed, values: seeds(s)? });
    }
    if let Some(g) = flags.guidance {
        axes.push(Axis { kind: AxisKind::Guidance, values: list("--guidance", g)? });
    }
    if let Some(a) = flags.aspect_ratio {
        axes.push(Axis { kind: AxisKind::AspectRatio, values: list("--aspect-ratio", a)? });
    }
    if !flags.prompts.is_empty() {
        // A prompt may hold commas: each --prompt is one value.
        axes.push(Axis { kind: AxisKind::Prompt, values: flags.prompts.to_vec() });
    }
    if let Some(e) = flags.endpoints {
        axes.push(Axis { kind: AxisKind::Endpoint, values: list("--endpoint", e)? });
    }
    for pair in flags.sets {
        let Some((name, values)) = pair.split_once('=') else {
            return Err(format!("--set {pair:?}: expected NAME=V1,V2, e.g. --set num_inference_steps=20,30"));
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("--set {pair:?}: the field name is empty"));
        }
        if axes.iter().any(|a: &Axis| a.kind.name() == name) {
            return Err(format!("--set {name}: this field is already an axis; give it once"));
        }
        axes.push(Axis { kind: AxisKind::Field(name.to_string()), values: list(&format!("--set {name}"), values)? });
    }
    let count: usize = axes.iter().map(|a| a.values.len()).product();
    if count > MAX_PLAN {
        return Err(format!("the plan has {count} requests, more than {MAX_PLAN}: use fewer axis values"));
    }
    Ok(axes)
}

/// Comma-separated values, trimmed; empty ones are an error that names the flag.
fn list(flag: &str, text: &str) -> Result<Vec<String>, String> {
    let values: Vec<String> = text.split(',').map(|v| v.trim().to_string()).collect();
    if values.iter().any(String::is_empty) {
        return Err(format!("{flag} {text:?}: an empty value; give values separated by commas, e.g. 2,3.5,5"));
    }
    Ok(values)
}

/// `1..8` (inclusive), `1,5,9` or `random:N`.
pub fn seeds(text: &str) -> Result<Vec<String>, String> {
    let text = text.trim();
    let bad = |why: &str| format!("--seeds {text:?}: {why}; give 1..8, 1,5,9 or random:4");
    if let Some(n) = text.strip_prefix("random:") {
        let n: usize = n.trim().parse().map_err(|_| bad("N of random:N is not a whole number"))?;
        if n == 0 || n > MAX_PLAN {
            return Err(bad(&format!("N of random:N must be 1 to {MAX_PLAN}")));
        }
        // Seeds fit in 32 bits so they are short to read and type back.
        return Ok((0..n).map(|_| rand::random::<u32>().to_string()).collect());
    }
    if let Some((from, to)) = text.split_once("..") {
        let from: u64 = from.trim().parse().map_err(|_| bad("the start is not a whole number"))?;
        let to: u64 = to.trim().parse().map_err(|_| bad("the end is not a whole number"))?;
        if to < from {
            return Err(bad("the end is below the start"));
        }
        if to - from >= MAX_PLAN as u64 {
            return Err(bad(&format!("more than {MAX_PLAN} seeds")));
        }
        return Ok((from..=to).map(|s| s.to_string()).collect());
    }
    let values = list("--seeds", text)?;
    for v in &values {
        v.parse::<u64>().map_err(|_| bad(&format!("{v:?} is not a whole number")))?;
    }
    Ok(values)
}

/// The cartesian product, the last axis varying fastest; no axes give one request.
pub fn points(axes: &[Axis]) -> Vec<Point> {
    let mut points = vec![Point { values: Vec::new() }];
    for axis in axes {
        points = points
            .into_iter()
            .flat_map(|p| {
                axis.values.iter().map(move |v| {
                    let mut values = p.values.clone();
                    values.push((axis.kind.clone(), v.clone()));
                    Point { values }
                })
            })
            .collect();
    }
    points
}

/// How a grid (the contact sheet, the studio's Results grid) lays a sweep out: rows and columns
/// are the first two axes that vary (one varying axis: one row of columns); each combination of
/// the further varying axes is a grid of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct GridAxes {
    pub rows: Option<Axis>,
    pub columns: Option<Axis>,
    pub further: Vec<Axis>,
}

impl GridAxes {
    pub fn of(axes: &[Axis]) -> GridAxes {
        let varying: Vec<&Axis> = axes.iter().filter(|a| a.values.len() > 1).collect();
        match varying.as_slice() {
            [] => GridAxes { rows: None, columns: None, further: Vec::new() },
            [only] => GridAxes { rows: None, columns: Some((*only).clone()), further: Vec::new() },
            [r, c, rest @ ..] => GridAxes {
                rows: Some((*r).clone()),
                columns: Some((*c).clone()),
                further: rest.iter().map(|a| (*a).clone()).collect(),
            },
        }
    }

    /// The number of grids (pages): one per combination of the further axes.
    pub fn pages(&self) -> usize {
        self.further.iter().map(|a| a.values.len()).product()
    }

    /// Where `point` sits: (page, row, column), each 0 when its axis is absent; `None` when a
    /// value is not on its axis.
    pub fn place(&self, point: &Point) -> Option<(usize, usize, usize)> {
        let index = |axis: &Axis| {
            let value = point.value(&axis.kind)?;
            axis.values.iter().position(|v| v == value)
        };
        let row = match &self.rows {
            Some(a) => index(a)?,
            None => 0,
        };
        let column = match &self.columns {
            Some(a) => index(a)?,
            None => 0,
        };
        let mut page = 0;
        for axis in &self.further {
            page = page * axis.values.len() + index(axis)?;
        }
        Some((page, row, column))
    }
}

/// One request of the plan, valid for its endpoint and priced.
#[derive(Debug)]
pub struct Planned {
    /// Its place in the sweep's whole plan.
    pub index: usize,
    pub point: Point,
    /// The point's varying axis values, as progress lines and messages show it.
    pub label: String,
    pub input: ValidInput,
    pub estimate: Estimate,
}

impl Planned {
    /// Priced later, once the inputs' sizes are known.
    pub fn new(index: usize, point: Point, axes: &[Axis], input: ValidInput) -> Planned {
        let estimate = Estimate {
            usd: None,
            units: None,
            unit_price: None,
            unit: String::new(),
            price_source: String::new(),
            exact: false,
            note: None,
        };
        Planned { index, label: point.label(axes), point, input, estimate }
    }
}

/// A new sweep's id: short, like a history id, and as unlikely to repeat.
pub fn new_sweep_id() -> String {
    uuid::Uuid::new_v4().simple().to_string().chars().take(10).collect()
}

/// A sweep ready to run: its id, axes, and the requests still to send.
pub struct SweepToRun {
    pub id: String,
    pub axes: Vec<Axis>,
    pub out_dir: Option<PathBuf>,
    pub plan: Vec<Planned>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_take_ranges_lists_and_random() {
        assert_eq!(seeds("1..4").unwrap(), ["1", "2", "3", "4"]);
        assert_eq!(seeds("1, 5,9").unwrap(), ["1", "5", "9"]);
        let random = seeds("random:3").unwrap();
        assert_eq!(random.len(), 3);
        assert!(random.iter().all(|s| s.parse::<u32>().is_ok()));
        for bad in ["4..1", "a..3", "1,,2", "random:0", "random:x", "1,x", "0..5000"] {
            let e = seeds(bad).unwrap_err();
            assert!(e.contains("--seeds"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_plan_is_the_cartesian_product_in_axis_order() {
        let prompts = ["a".to_string(), "b, with a comma".to_string()];
        let sets = ["num_inference_steps=20,30".to_string()];
        let flags = AxisFlags {
            seeds: Some("1..3"),
            guidance: Some("2,5"),
            prompts: &prompts,
            sets: &sets,
            ..AxisFlags::default()
        };
        let axes = axes(&flags).unwrap();
        let names: Vec<&str> = axes.iter().map(|a| a.kind.name()).collect();
        assert_eq!(names, ["seed", "guidance_scale", "prompt", "num_inference_steps"]);
        let plan = points(&axes);
        assert_eq!(plan.len(), 3 * 2 * 2 * 2);
        assert_eq!(plan[0].to_string(), "seed=1, guidance_scale=2, prompt=a, num_inference_steps=20");
        assert_eq!(plan[1].to_string(), "seed=1, guidance_scale=2, prompt=a, num_inference_steps=30");
        assert_eq!(plan[23].to_string(), "seed=3, guidance_scale=5, prompt=b, with a comma, num_inference_steps=30");
        let mut seen: Vec<String> = plan.iter().map(Point::to_string).collect();
        seen.dedup();
        assert_eq!(seen.len(), 24, "every point differs");
    }

    #[test]
    fn a_grid_takes_the_first_two_varying_axes_and_pages_the_rest() {
        let sets = ["num_inference_steps=20,30".to_string()];
        let flags = AxisFlags {
            seeds: Some("1..3"),
            guidance: Some("4"),
            aspect_ratio: Some("1:1,16:9"),
            sets: &sets,
            ..AxisFlags::default()
        };
        let axes = axes(&flags).unwrap();
        let grid = GridAxes::of(&axes);
        assert_eq!(grid.rows.as_ref().unwrap().kind, AxisKind::Seed);
        assert_eq!(grid.columns.as_ref().unwrap().kind, AxisKind::AspectRatio, "guidance does not vary");
        assert_eq!(grid.pages(), 2);
        let places: Vec<_> = points(&axes).iter().map(|p| grid.place(p).unwrap()).collect();
        assert_eq!(places[0], (0, 0, 0));
        assert_eq!(places[1], (1, 0, 0), "steps=30 is the second page");
        assert_eq!(places[2], (0, 0, 1));
        assert_eq!(places[11], (1, 2, 1));
        let mut unique = places.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 12, "every point has its own cell");
        let one = GridAxes::of(&axes[..1]);
        assert_eq!((one.rows.is_none(), one.pages()), (true, 1));
        assert_eq!(one.place(&points(&axes)[4]), Some((0, 0, 1)));
    }

    #[test]
    fn no_axis_is_one_request_and_a_huge_plan_is_refused() {
        assert_eq!(points(&[]).len(), 1);
        let sets = ["a=1,2,3,4,5,6,7,8,9,10,11".to_string()];
        let flags = AxisFlags { seeds: Some("1..100"), sets: &sets, ..AxisFlags::default() };
        assert!(axes(&flags).unwrap_err().contains("1100 requests"));
        let twice = ["seed=1,2".to_string()];
        let flags = AxisFlags { seeds: Some("1"), sets: &twice, ..AxisFlags::default() };
        assert!(axes(&flags).unwrap_err().contains("already an axis"));
    }
}
