//! `kontext sweep`: many requests from one set of inputs, the cartesian product of its axes
//! (seeds, guidance, aspect ratios, prompts, endpoints, any field). The whole plan is checked,
//! priced and shown before anything is sent; then it runs a few at a time.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::exit;
use super::run::RunArgs;
use super::sweep_progress::{Ended, SweepProgress};
use crate::fal::FollowMode;
use crate::model::cost::Estimate;
use crate::model::sweep::{self as sweep_plan, Axis, AxisFlags, AxisKind, PlanProblems, Planned, Point, SweepToRun};
use crate::model::{Draft, ValidInput};
use crate::runner::{DEFAULT_DATA_URI_THRESHOLD, JobOutcome, JobRequest, OutputNaming, run_job};
use crate::sanitize::one_line;
use crate::setup::{Locations, connect};

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// A prompt (repeat for several; each is one value of the prompt axis).
    #[arg(long, short)]
    pub prompt: Vec<String>,
    /// Seeds: a range 1..8 (inclusive), a list 1,5,9, or random:N.
    #[arg(long, value_name = "1..8|1,5,9|random:N")]
    pub seeds: Option<String>,
    /// Guidance scales, e.g. 2,3.5,5.
    #[arg(long, value_name = "F,F,..")]
    pub guidance: Option<String>,
    /// Aspect ratios, e.g. 1:1,16:9.
    #[arg(long, value_name = "R,R,..")]
    pub aspect_ratio: Option<String>,
    /// Endpoint ids, e.g. fal-ai/flux-pro/kontext,fal-ai/flux-pro/kontext/max.
    #[arg(long, value_name = "ID,ID,..")]
    pub endpoint: Option<String>,
    /// Any field of the endpoint with a list of values, e.g. --set num_inference_steps=20,30
    /// (repeatable: each is one more axis).
    #[arg(long = "set", value_name = "NAME=V1,V2")]
    pub set: Vec<String>,
    #[command(flatten)]
    pub request: super::run::RequestFlags,
    /// Folder for the images (default: the config's output_dir, else the current folder).
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print one JSON object on stdout: each request with its axis values, request id, files,
    /// seed and cost (with --dry-run: the plan).
    #[arg(long)]
    pub json: bool,
    /// Write a contact sheet of the outputs here (PNG): rows and columns by the first two axes
    /// that vary, their values written on it; further axes give FILE-2.png, FILE-3.png, ...
    #[arg(long, value_name = "FILE.png")]
    pub grid: Option<PathBuf>,
    /// Print the plan and its estimate, send nothing, exit 0.
    #[arg(long)]
    pub dry_run: bool,
    /// Send without asking y/N on a terminal.
    #[arg(long, short)]
    pub yes: bool,
    /// Refuse the plan (exit 2, nothing sent) if its estimate is over this many US dollars.
    #[arg(long, value_name = "USD")]
    pub max_usd: Option<f64>,
    /// Send the plan even if it is over a [budget] cap.
    #[arg(long)]
    pub allow_over_budget: bool,
    /// Requests in flight at once (fal's starting per-account limit is 2).
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Follow status by polling instead of the event stream.
    #[arg(long)]
    pub poll: bool,
    /// Send the requests of sweep ID that were never sent (after `kontext resume` finished
    /// those that were); nothing is sent twice.
    #[arg(long = "continue", value_name = "ID", conflicts_with_all = ["prompt", "seeds", "guidance", "aspect_ratio", "endpoint", "set", "images"])]
    pub continue_id: Option<String>,
    #[command(flatten)]
    pub connect: super::ConnectArgs,
}

impl SweepArgs {
    /// The `kontext run` flags of one point of the plan: the shared flags plus its axis values.
    fn run_args(&self, point: &Point) -> RunArgs {
        let mut args = RunArgs {
            prompt: None,
            from: None,
            request: self.request.clone(),
            seed: None,
            guidance: None,
            aspect_ratio: None,
            sync: false,
            out: self.out.clone(),
            json: false,
            endpoint: None,
            set: Vec::new(),
            dry_run: false,
            allow_over_budget: self.allow_over_budget,
            poll: self.poll,
            connect: self.connect.clone(),
        };
        for (kind, value) in &point.values {
            let given = Some(value.clone());
            match kind {
                AxisKind::Seed => args.seed = given,
                AxisKind::Guidance => args.guidance = given,
                AxisKind::AspectRatio => args.aspect_ratio = given,
                AxisKind::Prompt => args.prompt = given,
                AxisKind::Endpoint => args.endpoint = given,
                AxisKind::Field(name) => args.set.push(format!("{name}={value}")),
            }
        }
        args
    }
}

pub async fn sweep(args: SweepArgs, locations: &Locations) -> u8 {
    let (config, _) = match locations.load_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kontext: {}", crate::sanitize::strip_controls(&e.to_string()));
            return exit::INVALID_INPUT;
        }
    };
    let (catalog, catalog_problems) = crate::runner::catalog::load_catalog(&locations.data_dir());
    for p in &catalog_problems {
        eprintln!("kontext: an added endpoint description is ignored: {}", one_line(p));
    }
    // Nothing is sent unless it can be recorded first.
    let history = match crate::history::History::open(&locations.data_dir()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!(
                "kontext: {e}\nkontext: nothing was sent; fix the history (or give another --data-dir) and retry"
            );
            return exit::FAILURE;
        }
    };
    let made = match &args.continue_id {
        Some(id) => super::sweep_continue::remaining(&history, id, &catalog),
        None => new_plan(&args, &config, &catalog),
    };
    let mut sweep = match made {
        Ok(s) => s,
        Err(code) => return code,
    };
    if sweep.plan.is_empty() {
        eprintln!("kontext: sweep {}: every planned request was sent already; nothing to send", sweep.id);
        return exit::OK;
    }

    // The inputs are the same for every request: check them (and the folders) once.
    let out_dir = (args.out.clone().or(sweep.out_dir.clone()))
        .or(config.output_dir.clone())
        .unwrap_or_else(|| PathBuf::from("."));
    let (local, sizes) = super::run::local_problems(&sweep.plan[0].input, &out_dir, &locations.data_dir()).await;
    if !local.is_empty() {
        eprintln!("kontext: nothing was sent:");
        for p in &local {
            eprintln!("  {}", crate::sanitize::strip_controls(p));
        }
        return exit::INVALID_INPUT;
    }
    for p in &mut sweep.plan {
        p.estimate = super::cost::estimate_offline(&p.input, &sizes, &locations.data_dir());
    }
    let plan = &sweep.plan;
    let total = plan.iter().map(|p| p.estimate.usd).sum::<Option<f64>>();

    if args.dry_run {
        print_plan_dry(&sweep.axes, plan, total, args.json);
        return exit::OK;
    }
    print_plan(&sweep.axes, plan, total, &mut std::io::stderr());
    if let Some(max) = args.max_usd {
        match total {
            Some(usd) if usd <= max + 1e-9 => {}
            Some(usd) => {
                eprintln!("kontext: the plan's estimate ${usd:.4} is over --max-usd ${max:.4}: nothing was sent");
                return exit::INVALID_INPUT;
            }
            None => {
                eprintln!(
                    "kontext: the plan's cost cannot be estimated, so --max-usd cannot be checked: nothing was sent"
                );
                return exit::INVALID_INPUT;
            }
        }
    }
    if !args.allow_over_budget
        && let Err(m) = sweep_plan::within_budget(&config.budget.caps(), plan, total, || {
            history.spent_today().map_err(|e| e.to_string())
        })
    {
        eprintln!("kontext: {}", one_line(&m));
        return exit::INVALID_INPUT;
    }
    if !args.yes && std::io::stdin().is_terminal() && std::io::stderr().is_terminal() && !confirm(plan.len()) {
        eprintln!("kontext: nothing was sent");
        return exit::OK;
    }
    let settings = RunSettings {
        out_dir,
        data_uri_threshold: config.data_uri_threshold.unwrap_or(DEFAULT_DATA_URI_THRESHOLD),
        follow: if args.poll { FollowMode::Poll } else { FollowMode::Stream },
    };
    // The whole plan is journaled before its first submit.
    if args.continue_id.is_none()
        && let Err(e) = history.record_sweep(&crate::history::SweepRecord::of_plan(
            &sweep.id,
            &sweep.axes,
            &sweep.plan,
            json!({"out_dir": settings.out_dir, "concurrency": args.concurrency}),
        ))
    {
        eprintln!("kontext: {e}\nkontext: nothing was sent; fix the history (or give another --data-dir) and retry");
        return exit::FAILURE;
    }
    eprintln!("kontext: sweep id {} (`kontext sweep --continue {}` sends what was never sent)", sweep.id, sweep.id);

    let connection = match connect(&config, &args.connect.options()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kontext: {}", crate::sanitize::strip_controls(&e.to_string()));
            return exit::INVALID_INPUT;
        }
    };
    eprintln!("kontext: using {}", connection.target.describe());
    let cancel = CancellationToken::new();
    let interrupts = tokio::spawn(super::run::watch_interrupts(cancel.clone()));
    let results =
        run_plan(&connection.client, &history, &sweep.id, sweep.plan, &settings, args.concurrency, &cancel).await;
    interrupts.abort();
    connection.shutdown().await;
    let grids = match &args.grid {
        None => Vec::new(),
        Some(path) => {
            let outputs: Vec<(Point, Option<PathBuf>)> = results
                .iter()
                .map(|f| {
                    (f.point.clone(), f.result.as_ref().ok().and_then(|o| o.files.first()).map(|s| s.path.clone()))
                })
                .collect();
            let (path, axes) = (path.clone(), sweep.axes.clone());
            let made =
                tokio::task::spawn_blocking(move || crate::runner::sweep_grid::write_grids(&path, &axes, &outputs))
                    .await;
            match made {
                Ok(Ok(paths)) => {
                    for p in &paths {
                        eprintln!("kontext: contact sheet {}", one_line(&p.display().to_string()));
                    }
                    paths
                }
                Ok(Err(e)) => {
                    eprintln!("kontext: the contact sheet could not be written: {}", one_line(&e));
                    Vec::new()
                }
                Err(e) => {
                    eprintln!("kontext: the contact sheet could not be written: {e}");
                    Vec::new()
                }
            }
        }
    };
    report(&sweep.id, &results, &grids, args.json)
}

/// A new sweep from the flags: every request checked against its endpoint's schema.
fn new_plan(
    args: &SweepArgs,
    config: &crate::config::Config,
    catalog: &crate::model::Catalog,
) -> Result<SweepToRun, u8> {
    let flags = AxisFlags {
        seeds: args.seeds.as_deref(),
        guidance: args.guidance.as_deref(),
        aspect_ratio: args.aspect_ratio.as_deref(),
        prompts: &args.prompt,
        endpoints: args.endpoint.as_deref(),
        sets: &args.set,
    };
    let axes = sweep_plan::axes(&flags).map_err(|m| {
        eprintln!("kontext: the sweep is not valid:\n  {}", one_line(&m));
        exit::INVALID_INPUT
    })?;
    let mut plan = Vec::new();
    let mut problems = PlanProblems::default();
    for (index, point) in sweep_plan::points(&axes).into_iter().enumerate() {
        match valid_input(&args.run_args(&point), config, catalog) {
            Ok(input) => plan.push(Planned::new(index, point, &axes, input)),
            Err(messages) => {
                for m in messages {
                    problems.note(m, &point);
                }
            }
        }
    }
    if !problems.is_empty() {
        eprintln!("kontext: the sweep is not valid (nothing was sent):");
        for line in problems.lines(&axes) {
            eprintln!("  {}", one_line(&line));
        }
        return Err(exit::INVALID_INPUT);
    }
    Ok(SweepToRun { id: sweep_plan::new_sweep_id(), axes, out_dir: args.out.clone(), plan })
}

/// The request of one point, validated for its endpoint; errors as lines naming the field.
fn valid_input(
    args: &RunArgs,
    config: &crate::config::Config,
    catalog: &crate::model::Catalog,
) -> Result<ValidInput, Vec<String>> {
    let endpoint_id =
        args.endpoint.clone().or(config.endpoint.clone()).unwrap_or_else(|| crate::model::DEFAULT_ENDPOINT.to_string());
    let schema = crate::model::Endpoint::parse(&endpoint_id)
        .and_then(|_| catalog.require(&endpoint_id).cloned())
        .map_err(|m| vec![format!("endpoint: {m}")])?;
    let draft = super::run::request_draft(args, Draft::default(), config, &schema).map_err(|m| vec![m])?;
    draft
        .validate_for(&schema, crate::runner::check_local_image)
        .map_err(|errors| errors.0.iter().map(|e| e.to_string()).collect::<Vec<_>>())
}

fn confirm(count: usize) -> bool {
    eprint!("kontext: send these {count} requests? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "y" | "Y" | "yes" | "Yes")
}

fn usd_text(total: Option<f64>) -> String {
    total.map(|u| format!("${u:.4}")).unwrap_or_else(|| "unknown".into())
}

/// The plan as people read it: the count, each axis with its values, the estimate.
fn print_plan(axes: &[Axis], plan: &[Planned], total: Option<f64>, to: &mut dyn Write) {
    let _ = writeln!(to, "sweep    {} request{}", plan.len(), if plan.len() == 1 { "" } else { "s" });
    for axis in axes {
        // One value is not an axis: it is the same for every request.
        let what = if axis.values.len() > 1 { "axis " } else { "fixed" };
        let _ = writeln!(to, "{what}    {} = {}", axis.kind.name(), one_line(&axis.values.join(" | ")));
    }
    let first = &plan[0].estimate;
    let source = if plan.iter().all(|p| p.estimate.price_source == first.price_source) {
        first.price_source.clone()
    } else {
        "several price sources".into()
    };
    let _ = writeln!(to, "estimate {} in all ({})", usd_text(total), one_line(&source));
}

fn print_plan_dry(axes: &[Axis], plan: &[Planned], total: Option<f64>, as_json: bool) {
    if as_json {
        let requests: Vec<Value> = plan
            .iter()
            .map(|p| {
                json!({
                    "axes": p.point.to_json(),
                    "endpoint": p.input.endpoint_id(),
                    "cost": super::cost::cost_json(&p.estimate, None),
                })
            })
            .collect();
        let value = json!({"count": plan.len(), "estimated_usd": total, "requests": requests, "sent": false});
        println!("{}", crate::sanitize::terminal_safe_json(&value.to_string()));
    } else {
        print_plan(axes, plan, total, &mut std::io::stdout());
        for (i, p) in plan.iter().enumerate() {
            println!("{:>4}  {}  {}", i + 1, one_line(&p.label), one_line(&p.estimate.describe()));
        }
    }
    eprintln!("kontext: --dry-run: nothing was sent");
}

struct RunSettings {
    out_dir: PathBuf,
    data_uri_threshold: u64,
    follow: FollowMode,
}

/// How one request of the sweep ended.
struct Finished {
    point: Point,
    label: String,
    estimate: Estimate,
    history_id: String,
    result: Result<JobOutcome, crate::runner::JobError>,
}

/// Runs the plan, at most `concurrency` requests in flight, each journaled as `kontext run`
/// journals one; one plain line per finished request.
async fn run_plan(
    client: &crate::fal::FalClient,
    history: &crate::history::History,
    sweep_id: &str,
    plan: Vec<Planned>,
    settings: &RunSettings,
    concurrency: u16,
    cancel: &CancellationToken,
) -> Vec<Finished> {
    let total = plan.len();
    let slots = Arc::new(Semaphore::new(concurrency as usize));
    // One back-off for the whole sweep: a 429 to any request holds them all.
    let rate_gate = Arc::new(crate::fal::RateGate::new());
    let client = client.with_rate_gate(rate_gate.clone());
    let progress = SweepProgress::new(total, rate_gate);
    let stop_progress = CancellationToken::new();
    let render = tokio::spawn(progress.clone().render(stop_progress.clone()));
    let mut tasks = tokio::task::JoinSet::new();
    for (slot, Planned { index, point, label, input, estimate }) in plan.into_iter().enumerate() {
        let journal = history.journal();
        journal.set_sweep(sweep_id, index);
        journal.set_estimate(estimate.clone());
        let endpoint = match crate::model::Endpoint::parse(input.endpoint_id()) {
            Ok(e) => e,
            Err(m) => unreachable!("the endpoint was checked when planning: {m}"),
        };
        let job = JobRequest {
            naming: OutputNaming::RequestId,
            endpoint,
            input,
            out_dir: settings.out_dir.clone(),
            data_uri_threshold: settings.data_uri_threshold,
            follow: settings.follow,
            journal: Some(journal.clone()),
        };
        let (client, cancel, progress) = (client.clone(), cancel.clone(), progress.clone());
        // The slot is taken here, before the task starts, so requests go in the plan's order.
        let permit = slots.clone().acquire_owned().await;
        tasks.spawn(async move {
            let _permit = permit;
            progress.started();
            let (tx, mut rx) = mpsc::unbounded_channel();
            // Per-request events are not shown one by one: the sweep reports per request.
            let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
            let result = run_job(&client, job, tx, cancel).await;
            let _ = drain.await;
            progress.ended(
                &label,
                match &result {
                    Ok(o) => Ended::Done {
                        files: o.files.iter().map(|f| f.path.display().to_string()).collect(),
                        usd: super::cost::billed_usd(&estimate, o.billable_units).or(estimate.usd),
                    },
                    Err(e) => Ended::Failed(e.to_string()),
                },
            );
            let history_id = journal.short_id();
            (slot, Finished { point, label, estimate, history_id, result })
        });
    }
    let mut finished: Vec<Option<Finished>> = (0..total).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let Ok((slot, f)) = joined else { continue };
        finished[slot] = Some(f);
    }
    stop_progress.cancel();
    let _ = render.await;
    finished.into_iter().flatten().collect()
}

/// The summary (or one JSON object) on stdout, and the exit code: 0 when every request
/// finished, else the code of the first failure.
fn report(sweep_id: &str, results: &[Finished], grids: &[PathBuf], as_json: bool) -> u8 {
    let mut code = exit::OK;
    let mut requests = Vec::new();
    for f in results {
        match &f.result {
            Ok(o) => {
                if !o.unrecorded.is_empty() {
                    super::run::report_unrecorded(o, &f.history_id);
                    if code == exit::OK {
                        code = exit::UNRECORDED;
                    }
                }
                requests.push(json!({
                    "axes": f.point.to_json(),
                    "id": f.history_id,
                    "request_id": o.handle.request_id,
                    "endpoint": o.handle.endpoint,
                    "seed": o.output.seed,
                    "files": o.files.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>(),
                    "cost": super::cost::cost_json(&f.estimate, o.billable_units),
                }));
                if !as_json {
                    let files: Vec<String> = o.files.iter().map(|f| f.path.display().to_string()).collect();
                    println!("{}  {}  {}", f.history_id, one_line(&f.label), one_line(&files.join("  ")));
                }
            }
            Err(e) => {
                eprintln!("kontext: {}:", one_line(&f.label));
                let failed = super::run::report_failure(e);
                if code == exit::OK {
                    code = failed;
                }
                requests.push(json!({
                    "axes": f.point.to_json(),
                    "id": f.history_id,
                    "error": e.to_string(),
                }));
            }
        }
    }
    if as_json {
        let grids: Vec<String> = grids.iter().map(|p| p.display().to_string()).collect();
        let value = json!({ "sweep_id": sweep_id, "requests": requests, "grids": grids });
        println!("{}", crate::sanitize::terminal_safe_json(&value.to_string()));
    }
    code
}
