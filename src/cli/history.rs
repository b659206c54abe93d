//! `kontext history …` (list, show, rerun, export, rm) and `kontext resume`.

use std::io::Write;

use clap::{Args, Subcommand};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::exit;
use super::inspect::BaseRequest;
use super::run::RunArgs;
use crate::history::{History, HistoryDetail, HistoryEntry, HistoryError, HistoryQuery, JobState};
use crate::sanitize::{one_line, strip_controls, terminal_safe_json};
use crate::setup::{Locations, connect};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub command: HistoryCommand,
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Requests, newest first.
    List(ListArgs),
    /// Everything recorded about one request.
    Show {
        /// The short id (or a unique prefix of it, or of fal's request id).
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Submit a past request again (with the seed it was made with); flags override.
    Rerun {
        id: String,
        #[command(flatten)]
        run: Box<RunArgs>,
    },
    /// Every request, oldest first, as JSON or CSV on stdout.
    Export {
        #[arg(long, default_value = "json", value_name = "json|csv")]
        format: String,
    },
    /// Delete a request and its media (media another request uses are kept).
    Rm { id: String },
    /// Mark a request as a keeper (`list --starred` shows only those).
    Star { id: String },
    /// Take the star off a request.
    Unstar { id: String },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long)]
    pub json: bool,
    /// Words of the prompt.
    #[arg(long, short)]
    pub search: Option<String>,
    /// pending, queued, in_progress, completed, failed, cancel_requested, cancelled, submit_ambiguous.
    #[arg(long)]
    pub state: Option<String>,
    #[arg(long)]
    pub endpoint: Option<String>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// Only requests made on or after this day (YYYY-MM-DD, UTC) or unix time.
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only requests made before this day (YYYY-MM-DD, UTC) or unix time.
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    #[arg(long, short = 'n', default_value_t = 50)]
    pub limit: usize,
    /// Continue a listing: only requests older than this cursor (printed with --json).
    #[arg(long)]
    pub before: Option<i64>,
    /// Only the requests of this sweep (its id, printed by `kontext sweep`).
    #[arg(long, value_name = "ID")]
    pub sweep: Option<String>,
    /// Only starred requests.
    #[arg(long)]
    pub starred: bool,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Write images here instead of the folder each request was started with.
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
    /// Print one JSON object with what was resumed, settled or left alone.
    #[arg(long)]
    pub json: bool,
    /// The hosts (as given to `kontext run`); only requests on them are resumed.
    #[command(flatten)]
    pub connect: super::ConnectArgs,
}

fn open(locations: &Locations) -> Result<History, u8> {
    History::open(&locations.data_dir()).map_err(|e| {
        eprintln!("kontext: {}", strip_controls(&e.to_string()));
        exit::FAILURE
    })
}

fn fail(e: HistoryError) -> u8 {
    eprintln!("kontext: {}", strip_controls(&e.to_string()));
    match e {
        HistoryError::NotFound(_) | HistoryError::Ambiguous { .. } | HistoryError::Invalid(_) => exit::INVALID_INPUT,
        _ => exit::FAILURE,
    }
}

pub async fn history(args: HistoryArgs, locations: &Locations) -> u8 {
    let h = match open(locations) {
        Ok(h) => h,
        Err(code) => return code,
    };
    match args.command {
        HistoryCommand::List(a) => list(&h, a),
        HistoryCommand::Show { id, json } => match h.get(&id) {
            Ok(d) => {
                show(&d, json);
                exit::OK
            }
            Err(e) => fail(e),
        },
        HistoryCommand::Rerun { id, run } => {
            let detail = match h.get(&id) {
                Ok(d) => d,
                Err(e) => return fail(e),
            };
            let mut draft = detail.to_draft();
            // The seed it was made with, so the same request gives the same image.
            if let Some(seed) = detail.entry.seed {
                draft.set("seed", seed.to_string());
            }
            drop(h);
            let base = BaseRequest { draft, endpoint: Some(detail.entry.endpoint.clone()) };
            super::run::run_with_base(*run, Some(base), locations).await
        }
        HistoryCommand::Export { format } => export(&h, &format),
        HistoryCommand::Star { id } => star(&h, &id, true),
        HistoryCommand::Unstar { id } => star(&h, &id, false),
        HistoryCommand::Rm { id } => match h.delete(&id) {
            Ok(()) => {
                eprintln!("kontext: removed {id}");
                exit::OK
            }
            Err(e) => fail(e),
        },
    }
}

fn parse_time(flag: &str, text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Ok(n);
    }
    if let Some(day) = crate::timefmt::parse_day(t) {
        return Ok(day);
    }
    Err(format!("--{flag} {text:?}: give a day as YYYY-MM-DD (UTC) or a unix time in seconds"))
}

fn list(h: &History, a: ListArgs) -> u8 {
    let state = match a.state.as_deref().map(|s| (s, JobState::parse(s))) {
        None => None,
        Some((_, Some(s))) => Some(s),
        Some((s, None)) => {
            let all: Vec<_> = JobState::ALL.iter().map(|s| s.as_str()).collect();
            eprintln!("kontext: --state {s:?} is not a state; use one of {}", all.join(", "));
            return exit::INVALID_INPUT;
        }
    };
    let since = a.since.as_deref().map(|t| parse_time("since", t)).transpose();
    let until = a.until.as_deref().map(|t| parse_time("until", t)).transpose();
    let (since, until) = match (since, until) {
        (Ok(s), Ok(u)) => (s, u),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("kontext: {}", strip_controls(&e.to_string()));
            return exit::INVALID_INPUT;
        }
    };
    let q = HistoryQuery {
        search: a.search,
        state,
        endpoint: a.endpoint,
        seed: a.seed,
        since,
        until,
        sweep: a.sweep,
        starred: a.starred,
        limit: a.limit,
        before: a.before.map(crate::history::Cursor),
    };
    let entries = match h.list(&q) {
        Ok(e) => e,
        Err(e) => return fail(e),
    };
    let mut out = std::io::stdout().lock();
    if a.json {
        let _ = writeln!(out, "{}", terminal_safe_json(&serde_json::to_string(&entries).unwrap_or_default()));
        return exit::OK;
    }
    for e in &entries {
        let _ = writeln!(out, "{}", entry_line(e));
    }
    exit::OK
}

fn star(h: &History, id: &str, starred: bool) -> u8 {
    match h.set_starred(id, starred) {
        Ok(short) => {
            eprintln!("kontext: {} {short}", if starred { "starred" } else { "unstarred" });
            exit::OK
        }
        Err(e) => fail(e),
    }
}

fn entry_line(e: &HistoryEntry) -> String {
    let seed = e.seed.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
    let prompt: String = one_line(&e.prompt).chars().take(70).collect();
    format!(
        "{}  {}  {:<16}  {:>10}  {}  {:>8}  {}",
        e.id,
        crate::timefmt::format_utc(e.created_at),
        e.state.as_str(),
        seed,
        e.num_outputs,
        cost_cell(e),
        prompt
    )
}

/// `$0.0400` billed, `~$0.0400` estimated only, `-` unknown (older records).
pub(super) fn cost_cell(e: &HistoryEntry) -> String {
    match (e.billed_usd, e.estimated_usd) {
        (Some(b), _) => format!("${b:.4}"),
        (None, Some(est)) => format!("~${est:.4}"),
        (None, None) => "-".into(),
    }
}

fn show(d: &HistoryDetail, as_json: bool) {
    if as_json {
        println!("{}", terminal_safe_json(&serde_json::to_string(d).unwrap_or_default()));
        return;
    }
    let e = &d.entry;
    println!("id         {}", e.id);
    println!("request    {}", one_line(e.request_id.as_deref().unwrap_or("(not accepted by fal)")));
    println!("endpoint   {}", one_line(&e.endpoint));
    println!("state      {}", e.state);
    println!("cost       {} (~ = estimated, not billed)", cost_cell(e));
    println!("created    {} UTC", crate::timefmt::format_utc(e.created_at));
    println!("prompt     {}", one_line(&e.prompt));
    if let Some(s) = e.seed {
        println!("seed       {s}");
    }
    if let Some(err) = &d.error {
        println!("error      {}", one_line(err));
    }
    for (i, img) in d.input.images.iter().enumerate() {
        println!("input {}    {}", i + 1, strip_controls(&img.display()));
    }
    for m in &d.inputs {
        println!(
            "  stored   {} ({}x{} {})",
            one_line(&m.path.display().to_string()),
            m.width,
            m.height,
            m.content_type
        );
    }
    for m in &d.outputs {
        let path = one_line(&m.path.display().to_string());
        println!("output {}   {path} ({}x{} {})", m.index + 1, m.width, m.height, m.content_type);
        if let Some(p) = &m.saved_path {
            println!("  saved    {}", one_line(&p.display().to_string()));
        }
    }
    for (at, ev) in &d.events {
        println!("  {}  {}", crate::timefmt::format_utc(at / 1000), one_line(ev));
    }
    if !d.logs.is_empty() {
        println!("logs");
        for l in &d.logs {
            println!("  {}", one_line(&l.message));
        }
    }
}

/// A text field of the CSV export: server text stripped of escape sequences, and a field a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab, CR first: OWASP's list) gets a
/// leading `'`. A plain number such as `-3` is data, not a formula, and is left alone.
fn csv_text(s: &str) -> String {
    let s = strip_controls(s);
    let plain_number = s.parse::<f64>().is_ok() && s.chars().all(|c| c.is_ascii_digit() || ".eE+-".contains(c));
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && !plain_number { format!("'{s}") } else { s }
}

fn export(h: &History, format: &str) -> u8 {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let io_err = |e: std::io::Error| HistoryError::Io(e.to_string());
    let result = match format.trim().to_ascii_lowercase().as_str() {
        "json" => {
            let mut first = true;
            let _ = write!(out, "[");
            let r = h.for_each(|d| {
                let sep = if first { "" } else { "," };
                first = false;
                let json = terminal_safe_json(&serde_json::to_string(&d).unwrap_or_default());
                write!(out, "{sep}\n{json}").map_err(io_err)
            });
            let _ = writeln!(out, "\n]");
            r
        }
        "csv" => {
            let mut csv = csv::Writer::from_writer(&mut out);
            let header = [
                "id",
                "request_id",
                "state",
                "created_at",
                "endpoint",
                "seed",
                "prompt",
                "outputs",
                "saved_paths",
                "error",
            ];
            let r = csv.write_record(header).map_err(|e| HistoryError::Io(e.to_string())).and_then(|()| {
                h.for_each(|d| {
                    let e = &d.entry;
                    let saved: Vec<String> = d
                        .outputs
                        .iter()
                        .filter_map(|m| m.saved_path.as_ref().map(|p| p.display().to_string()))
                        .collect();
                    // Numbers we wrote ourselves go as they are; every text field through csv_text.
                    let record = [
                        csv_text(&e.id),
                        csv_text(e.request_id.as_deref().unwrap_or_default()),
                        csv_text(&e.state.to_string()),
                        e.created_at.to_string(),
                        csv_text(&e.endpoint),
                        e.seed.map(|s| s.to_string()).unwrap_or_default(),
                        csv_text(&e.prompt),
                        e.num_outputs.to_string(),
                        csv_text(&saved.join(";")),
                        csv_text(d.error.as_deref().unwrap_or_default()),
                    ];
                    csv.write_record(&record).map_err(|e| HistoryError::Io(e.to_string()))
                })
            });
            let _ = csv.flush();
            r
        }
        other => {
            eprintln!("kontext: --format {other:?} is not known; use json or csv");
            return exit::INVALID_INPUT;
        }
    };
    let _ = out.flush();
    match result {
        Ok(()) => exit::OK,
        Err(e) => fail(e),
    }
}

pub async fn resume(args: ResumeArgs, locations: &Locations) -> u8 {
    if let Some(out) = &args.out
        && let Err(e) = crate::setup::check_writable_dir(out, "--out")
    {
        eprintln!("kontext: {}; nothing was resumed", strip_controls(&e));
        return exit::INVALID_INPUT;
    }
    let h = match open(locations) {
        Ok(h) => h,
        Err(code) => return code,
    };
    let config = match locations.load_config() {
        Ok((c, _)) => c,
        Err(e) => {
            eprintln!("kontext: {}", strip_controls(&e.to_string()));
            return exit::INVALID_INPUT;
        }
    };
    let opts = args.connect.options();
    let connection = match connect(&config, &opts).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kontext: {}", strip_controls(&e.to_string()));
            return exit::INVALID_INPUT;
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let printer = tokio::spawn(async move {
        while let Some((id, event)) = rx.recv().await {
            if let Some(text) = describe(&event) {
                eprintln!("kontext: {id}: {}", one_line(&text));
            }
        }
    });
    let report = crate::history::resume_all(
        &connection.client,
        &h,
        args.out.as_deref(),
        crate::runner::OutputNaming::RequestId,
        tx,
        CancellationToken::new(),
    )
    .await;
    let _ = printer.await;
    connection.shutdown().await;
    let report = match report {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let mut code = exit::OK;
    let mut finished = Vec::new();
    for r in &report.resumed {
        match &r.result {
            Ok(o) if !o.unrecorded.is_empty() => {
                // Never "completed" when the store could not record it.
                let files: Vec<String> = o.files.iter().map(|f| f.path.display().to_string()).collect();
                let missed: Vec<String> =
                    o.unrecorded.iter().map(|u| format!("{}: {}", u.what, one_line(&u.error))).collect();
                if !args.json {
                    println!(
                        "{}  unrecorded images saved to {}, but the history could not record {}; run `kontext resume` again once there is room on the disk",
                        r.id,
                        files.join("  "),
                        missed.join("; ")
                    );
                }
                if code == exit::OK {
                    code = exit::UNRECORDED;
                }
                finished.push(json!({"id": r.id, "request_id": r.request_id, "state": "unrecorded", "files": files, "unrecorded": o.unrecorded}));
            }
            Ok(o) => {
                let files: Vec<String> = o.files.iter().map(|f| f.path.display().to_string()).collect();
                if !args.json {
                    println!("{}  completed  {}", r.id, one_line(&files.join("  ")));
                }
                finished.push(json!({"id": r.id, "request_id": r.request_id, "state": "completed", "files": files}));
            }
            Err(e) if e.is_resumable() => {
                // Still unfinished, still fal's: a later resume can finish it.
                if code == exit::OK {
                    code = exit::NETWORK;
                }
                if !args.json {
                    println!(
                        "{}  interrupted  {}; still unfinished: run `kontext resume` again later",
                        r.id,
                        one_line(&e.to_string())
                    );
                }
                finished.push(
                    json!({"id": r.id, "request_id": r.request_id, "state": "interrupted", "error": e.to_string()}),
                );
            }
            Err(e) => {
                code = exit::FAL_ERROR;
                if !args.json {
                    println!("{}  failed     {}", r.id, one_line(&e.to_string()));
                }
                finished
                    .push(json!({"id": r.id, "request_id": r.request_id, "state": "failed", "error": e.to_string()}));
            }
        }
    }
    if !args.json {
        for e in &report.never_sent {
            println!(
                "{}  not sent   the process stopped before submitting; re-run it with `kontext history rerun {}`",
                e.id, e.id
            );
        }
        for e in &report.ambiguous {
            println!(
                "{}  ambiguous  the submit may or may not have reached fal; NOT resubmitted. Check fal's dashboard, then `kontext history rerun {}` if needed",
                e.id, e.id
            );
        }
        for e in &report.running_elsewhere {
            println!("{}  running    still being run by another kontext process", e.id);
        }
        for e in &report.other_host {
            println!(
                "{}  elsewhere  it runs on {}, not on the hosts configured now (or without the key); left alone: resume with that host and its key",
                e.id,
                one_line(&e.endpoint)
            );
        }
        if report.resumed.is_empty()
            && report.ambiguous.is_empty()
            && report.never_sent.is_empty()
            && report.other_host.is_empty()
        {
            println!("nothing to resume");
        }
    } else {
        let v = json!({
            "resumed": finished,
            "never_sent": report.never_sent,
            "ambiguous": report.ambiguous,
            "running_elsewhere": report.running_elsewhere,
            "other_host": report.other_host,
        });
        println!("{}", terminal_safe_json(&v.to_string()));
    }
    code
}

fn describe(e: &crate::runner::JobEvent) -> Option<String> {
    use crate::runner::JobEvent as E;
    Some(match e {
        E::Submitted { handle } => format!("re-attached to request {}", handle.request_id),
        E::Queued { position: Some(p) } => format!("queued (position {p})"),
        E::InProgress => "in progress".into(),
        E::Completed => "completed at fal".into(),
        E::Downloading { index } => format!("downloading image {}", index + 1),
        E::Saved { index, path } => format!("image {} saved to {}", index + 1, path.display()),
        E::Note(n) => n.clone(),
        _ => return None,
    })
}
