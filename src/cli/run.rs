//! `kontext run`: one request, headless. Progress on stderr, a summary (or one JSON object) on
//! stdout, and an exit code a script can act on.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::exit;
use super::inspect::BaseRequest;
use super::progress::Progress;
use crate::fal::{FalError, FollowMode, SubmitError};
use crate::model::Draft;
use crate::runner::{DEFAULT_DATA_URI_THRESHOLD, JobError, JobOutcome, JobRequest, OutputNaming, run_job};
use crate::sanitize::one_line;
use crate::setup::{Locations, connect};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// What to do with the images (required unless --from gives it).
    #[arg(long, short)]
    pub prompt: Option<String>,
    /// Re-run the request an image written by kontext was made with (its embedded parameters,
    /// or its history entry); the other flags override them.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    #[command(flatten)]
    pub request: RequestFlags,
    /// Seed (0 to 2^64-1); the same seed and input give the same image.
    #[arg(long)]
    pub seed: Option<String>,
    /// Guidance scale, 1 to 20 (default 3.5).
    #[arg(long, value_name = "F")]
    pub guidance: Option<String>,
    /// Aspect ratio: 21:9 16:9 4:3 3:2 1:1 2:3 3:4 9:16 9:21 (default: the model decides).
    #[arg(long, value_name = "R")]
    pub aspect_ratio: Option<String>,
    /// Ask fal to return images inline (data: URIs) instead of CDN URLs.
    #[arg(long)]
    pub sync: bool,
    /// Folder for the images (default: the config's output_dir, else the current folder).
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print one JSON object (fal's result, local paths, request id) on stdout.
    #[arg(long)]
    pub json: bool,
    /// Endpoint id (default fal-ai/flux-pro/kontext/multi; `kontext models` lists them).
    #[arg(long, env = "KONTEXT_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Any field of the endpoint by its name, e.g. --set num_inference_steps=30 (repeatable;
    /// `kontext models show ID` lists the fields).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Print the exact JSON body and the cost estimate, send nothing, exit 0.
    #[arg(long)]
    pub dry_run: bool,
    /// Send this request even if its estimate is over a [budget] cap.
    #[arg(long)]
    pub allow_over_budget: bool,
    /// Follow status by polling instead of the event stream.
    #[arg(long)]
    pub poll: bool,
    #[command(flatten)]
    pub connect: super::ConnectArgs,
}

/// The flags of a request that `kontext run` and `kontext sweep` share: its inputs, and the
/// fields no sweep axis varies.
#[derive(Debug, Args, Clone)]
pub struct RequestFlags {
    /// An input image: http(s) URL, data: URI or local file (repeat for up to 4).
    #[arg(long = "image", short = 'i', value_name = "URL_OR_PATH")]
    pub images: Vec<String>,
    /// Number of images, 1 to 4 (default 1).
    #[arg(long, short = 'n', value_name = "N")]
    pub num_images: Option<String>,
    /// Output format: jpeg or png (default jpeg).
    #[arg(long, value_name = "jpeg|png")]
    pub format: Option<String>,
    /// Safety tolerance, 1 (strictest) to 6 (default 2).
    #[arg(long, value_name = "1..6")]
    pub safety: Option<String>,
    /// Let the model rewrite the prompt for better results.
    #[arg(long)]
    pub enhance_prompt: bool,
}

pub async fn run(args: RunArgs, locations: &Locations) -> u8 {
    let base = match &args.from {
        None => None,
        Some(file) => match super::inspect::draft_from_file(file, locations) {
            Ok(b) => Some(b),
            Err(e) => {
                // The error may quote the file, which may be hostile.
                eprintln!("kontext: --from {}", one_line(&format!("{}: {e}", file.display())));
                return exit::INVALID_INPUT;
            }
        },
    };
    run_with_base(args, base, locations).await
}

/// `kontext run` over a base request: each flag given replaces the base's value.
pub async fn run_with_base(args: RunArgs, base: Option<BaseRequest>, locations: &Locations) -> u8 {
    let (mut config, _) = match locations.load_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kontext: {}", crate::sanitize::strip_controls(&e.to_string()));
            return exit::INVALID_INPUT;
        }
    };
    let (base, base_endpoint) = match base {
        Some(b) => (b.draft, b.endpoint),
        None => (Draft::default(), None),
    };
    if let Some(e) = args.endpoint.clone().or(base_endpoint) {
        config.endpoint = Some(e);
    }
    let (catalog, catalog_problems) = crate::runner::catalog::load_catalog(&locations.data_dir());
    for p in &catalog_problems {
        eprintln!("kontext: an added endpoint description is ignored: {}", one_line(p));
    }
    let endpoint_id = config.endpoint.clone().unwrap_or_else(|| crate::model::DEFAULT_ENDPOINT.to_string());
    let schema = match crate::model::Endpoint::parse(&endpoint_id).and_then(|_| catalog.require(&endpoint_id).cloned())
    {
        Ok(s) => s,
        Err(m) => {
            eprintln!("kontext: the request is not valid:\n  endpoint: {}", one_line(&m));
            return exit::INVALID_INPUT;
        }
    };
    let draft = match request_draft(&args, base, &config, &schema) {
        Ok(d) => d,
        Err(m) => {
            eprintln!("kontext: the request is not valid:\n  {}", one_line(&m));
            return exit::INVALID_INPUT;
        }
    };
    let input = match draft.validate_for(&schema, crate::runner::check_local_image) {
        Ok(i) => i,
        Err(errors) => {
            eprintln!("kontext: the request is not valid for {}:", schema.endpoint_id);
            for e in &errors.0 {
                eprintln!("  {}", one_line(&e.to_string()));
            }
            return exit::INVALID_INPUT;
        }
    };

    // Nothing is paid for in vain: every local image decodes and is within fal's limits, and
    // both folders can be written, before anything is recorded or sent.
    let out_dir = args.out.clone().or(config.output_dir.clone()).unwrap_or_else(|| PathBuf::from("."));
    let (problems, sizes) = local_problems(&input, &out_dir, &locations.data_dir()).await;
    if !problems.is_empty() {
        eprintln!("kontext: nothing was sent:");
        for p in &problems {
            eprintln!("  {}", crate::sanitize::strip_controls(p));
        }
        return exit::INVALID_INPUT;
    }

    let threshold = config.data_uri_threshold.unwrap_or(DEFAULT_DATA_URI_THRESHOLD);
    let mut estimate = super::cost::estimate_offline(&input, &sizes, &locations.data_dir());
    if args.dry_run {
        print_dry_run(&input, threshold, &estimate, args.json);
        return exit::OK;
    }

    // Nothing is sent unless it can be recorded first.
    let history = match crate::history::History::open(&locations.data_dir()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!(
                "kontext: {e}
kontext: nothing was sent; fix the history (or give another --data-dir) and retry"
            );
            return exit::FAILURE;
        }
    };
    let journal = history.journal();
    let budget = config.budget.caps();
    let within_budget = |estimate: &crate::model::cost::Estimate| -> Result<(), String> {
        if args.allow_over_budget || (budget.max_request_usd.is_none() && budget.daily_usd.is_none()) {
            return Ok(());
        }
        let spent = history.spent_today().map_err(|e| e.to_string())?;
        crate::model::cost::check_budget(&budget, estimate, spent)
    };
    if let Err(m) = within_budget(&estimate) {
        eprintln!("kontext: {}", one_line(&m));
        return exit::INVALID_INPUT;
    }

    let opts = args.connect.options();
    let connection = match connect(&config, &opts).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kontext: {}", crate::sanitize::strip_controls(&e.to_string()));
            return exit::INVALID_INPUT;
        }
    };
    eprintln!("kontext: using {}", connection.target.describe());
    // With a real key, fal's own price (cached with its date), checked against the budget again.
    if matches!(connection.target, crate::setup::Target::Fal { .. }) {
        estimate =
            super::cost::estimate_live(&connection.client, &input, &sizes, &locations.data_dir(), estimate).await;
        if let Err(m) = within_budget(&estimate) {
            eprintln!("kontext: {}", one_line(&m));
            connection.shutdown().await;
            return exit::INVALID_INPUT;
        }
    }
    eprintln!("kontext: estimated cost {}", one_line(&estimate.describe()));
    journal.set_estimate(estimate.clone());

    let job = JobRequest {
        naming: OutputNaming::RequestId,
        endpoint: connection.endpoint.clone(),
        input,
        out_dir,
        data_uri_threshold: threshold,
        follow: if args.poll { FollowMode::Poll } else { FollowMode::Stream },
        journal: Some(journal.clone()),
    };
    eprintln!("kontext: history id {}", journal.short_id());

    let (tx, rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let progress = tokio::spawn(Progress::new().render(rx));
    let interrupts = tokio::spawn(watch_interrupts(cancel.clone()));
    let result = run_job(&connection.client, job, tx, cancel).await;
    interrupts.abort();
    let _ = progress.await;

    let code = match result {
        Ok(outcome) => {
            print_outcome(&outcome, &journal.short_id(), args.json, &estimate);
            if outcome.unrecorded.is_empty() {
                exit::OK
            } else {
                report_unrecorded(&outcome, &journal.short_id());
                exit::UNRECORDED
            }
        }
        Err(e) => {
            let (billed, note) = super::cost::failure_bill(&e);
            if let Err(err) = journal.record_bill(billed, note) {
                // Without a row (the history refused the request) there is nothing to amend.
                tracing::warn!("history: could not record the cost: {err}");
            }
            match (billed, note) {
                (_, Some(n)) => eprintln!("kontext: cost: {n}"),
                (Some(_), None) => eprintln!("kontext: cost: nothing was billed"),
                (None, None) => {}
            }
            report_failure(&e)
        }
    };
    connection.shutdown().await;
    code
}

/// The request as asked: flags and `--set` over the base request (`--from`) over the config's
/// defaults; the base and the defaults keep only the fields this endpoint has, so a switch of
/// endpoint drops what no longer fits, while a flag for a field it lacks is an error.
pub(super) fn request_draft(
    args: &RunArgs,
    base: Draft,
    config: &crate::config::Config,
    schema: &crate::model::EndpointSchema,
) -> Result<Draft, String> {
    let mut draft = config.default_draft().only_fields_of(schema);
    for (name, text) in base.only_fields_of(schema).values() {
        draft.set(&name, text);
    }
    draft.images = base.images;
    let flags = [
        ("prompt", args.prompt.clone()),
        ("seed", args.seed.clone()),
        ("guidance_scale", args.guidance.clone()),
        ("num_images", args.request.num_images.clone()),
        ("output_format", args.request.format.clone()),
        ("safety_tolerance", args.request.safety.clone()),
        ("aspect_ratio", args.aspect_ratio.clone()),
        ("enhance_prompt", args.request.enhance_prompt.then(|| "true".to_string())),
        ("sync_mode", args.sync.then(|| "true".to_string())),
    ];
    for (name, value) in flags {
        if let Some(v) = value {
            draft.set(name, v);
        }
    }
    if !args.request.images.is_empty() {
        draft.images = args.request.images.clone();
    }
    for pair in &args.set {
        let Some((name, value)) = pair.split_once('=') else {
            return Err(format!("--set {pair:?}: expected NAME=VALUE, e.g. --set num_inference_steps=30"));
        };
        let name = name.trim();
        if schema.images.field() == Some(name) {
            return Err(format!("--set {name}: give input images with --image"));
        }
        draft.set(name, value.to_string());
    }
    Ok(draft)
}

/// Every local reason the request would be paid for in vain, one message each: an input image
/// that is too large, damaged or not an image; an output or data folder that cannot be written.
pub(super) async fn local_problems(
    input: &crate::model::ValidInput,
    out_dir: &std::path::Path,
    data_dir: &std::path::Path,
) -> (Vec<String>, Vec<Option<(u32, u32)>>) {
    let images = input.images.clone();
    let (out_dir, data_dir) = (out_dir.to_path_buf(), data_dir.to_path_buf());
    let checks = tokio::task::spawn_blocking(move || {
        let mut problems = Vec::new();
        // The size of each local input (what a per-megapixel estimate needs); URLs are unknown.
        let mut sizes = Vec::new();
        for (i, source) in images.iter().enumerate() {
            let crate::model::ImageSource::Local(path) = source else {
                sizes.push(None);
                continue;
            };
            match crate::runner::check_input_file(path) {
                Ok(img) => sizes.push(Some((img.width, img.height))),
                Err(e) => {
                    sizes.push(None);
                    problems.push(format!("image_urls[{i}]: {e}"));
                }
            }
        }
        for (dir, what) in [(&out_dir, "--out"), (&data_dir, "the data directory")] {
            if let Err(e) = crate::setup::check_writable_dir(dir, what) {
                problems.push(e);
            }
        }
        (problems, sizes)
    });
    checks.await.unwrap_or_else(|e| (vec![format!("checking the inputs crashed: {e}")], Vec::new()))
}

/// First Ctrl-C: cancel the job (which asks fal to cancel); second: leave at once.
pub(super) async fn watch_interrupts(cancel: CancellationToken) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    eprintln!("\nkontext: interrupted — asking fal to cancel (Ctrl-C again to quit now)");
    cancel.cancel();
    if tokio::signal::ctrl_c().await.is_ok() {
        std::process::exit(exit::INTERRUPTED as i32);
    }
}

fn print_dry_run(
    input: &crate::model::ValidInput,
    threshold: u64,
    estimate: &crate::model::cost::Estimate,
    as_json: bool,
) {
    let body = super::cost::dry_run_body(input, threshold);
    if as_json {
        let value = json!({
            "endpoint": input.endpoint_id(),
            "body": body,
            "cost": super::cost::cost_json(estimate, None),
            "sent": false,
        });
        println!("{}", crate::sanitize::terminal_safe_json(&value.to_string()));
        return;
    }
    let text = serde_json::to_string_pretty(&body).unwrap_or_default();
    println!("POST {}", input.endpoint_id());
    println!("{}", crate::sanitize::terminal_safe_json(&text));
    println!("estimate {}", one_line(&estimate.describe()));
    eprintln!("kontext: --dry-run: nothing was sent");
}

fn print_outcome(outcome: &JobOutcome, id: &str, as_json: bool, estimate: &crate::model::cost::Estimate) {
    if as_json {
        let mut value = json!({
            "id": id,
            "request_id": outcome.handle.request_id,
            "endpoint": outcome.handle.endpoint,
            "result": outcome.raw_result,
            "files": outcome.files.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>(),
            "cost": super::cost::cost_json(estimate, outcome.billable_units),
        });
        if !outcome.unrecorded.is_empty() {
            value["unrecorded"] = json!(outcome.unrecorded);
        }
        println!("{}", crate::sanitize::terminal_safe_json(&value.to_string()));
        return;
    }
    let o = &outcome.output;
    println!("request  {}", crate::sanitize::one_line(&outcome.handle.request_id));
    println!("history  {id}");
    println!("seed     {}", o.seed);
    if let Some(secs) = o.inference_seconds() {
        println!("timing   {secs:.2}s inference, {:.2}s in all", outcome.elapsed.as_secs_f64());
    }
    if crate::sanitize::one_line(&o.prompt) != crate::sanitize::one_line(outcome.sent.prompt()) {
        println!("prompt   {}", crate::sanitize::one_line(&o.prompt));
    }
    println!("{}", one_line(&super::cost::cost_line(estimate, outcome)));
    for f in &outcome.files {
        let nsfw = if f.nsfw { "  [flagged NSFW]" } else { "" };
        let path = one_line(&f.path.display().to_string());
        println!("image {}  {path}  {}x{} {}{nsfw}", f.index + 1, f.width, f.height, one_line(&f.content_type));
    }
}

/// The images are on disk but the history missed steps: say so plainly, with the request id and
/// how to recover, rather than a note among the progress lines.
pub(super) fn report_unrecorded(outcome: &JobOutcome, id: &str) {
    let request = crate::sanitize::one_line(&outcome.handle.request_id);
    eprintln!("kontext: the history could not record request {request} (history id {id}):");
    for u in &outcome.unrecorded {
        eprintln!("kontext:   {}: {}", u.what, crate::sanitize::one_line(&u.error));
    }
    let files: Vec<String> = outcome.files.iter().map(|f| f.path.display().to_string()).collect();
    eprintln!("kontext: its images were written: {}", files.join("  "));
    let id_lost = outcome.unrecorded.iter().any(|u| u.what == crate::runner::REQUEST_ID_STEP);
    if id_lost {
        eprintln!(
            "kontext: the history does not know fal's request id: `kontext resume` will list it as uncertain. Do not re-run it — it is done and paid for; keep the request id above"
        );
    } else {
        eprintln!(
            "kontext: the history does not show it as completed. Once there is room on the disk, run `kontext resume` to record it (nothing is submitted or paid again)"
        );
    }
}

pub(super) fn report_failure(e: &JobError) -> u8 {
    eprintln!("kontext: {}", crate::sanitize::strip_controls(&e.to_string()));
    if let JobError::Write { .. } = e {
        // Only output images are written, so fal has the request and it is paid for.
        eprintln!(
            "kontext: fal has the request and its result; once there is room (or the folder is writable), run `kontext resume` to fetch and write the images again (nothing is submitted or paid again)"
        );
    } else if e.is_resumable() {
        eprintln!(
            "kontext: fal still has the request and the history keeps it unfinished: run `kontext resume` to finish it (nothing is submitted again)"
        );
    }
    match e {
        JobError::Cancelled { .. } => exit::INTERRUPTED,
        JobError::Fal { .. } | JobError::Download { .. } if e.is_resumable() => exit::NETWORK,
        JobError::Input { .. } => exit::INVALID_INPUT,
        JobError::Write { .. } | JobError::Journal(_) => exit::FAILURE,
        JobError::Output { .. } => exit::FAL_ERROR,
        JobError::Submit(SubmitError::Ambiguous(_)) => exit::NETWORK,
        _ => match e.fal_error() {
            Some(FalError::Network { .. }) => exit::NETWORK,
            Some(_) => exit::FAL_ERROR,
            None => exit::FAILURE,
        },
    }
}
