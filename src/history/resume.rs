//! Finishing what a crashed (or killed, or disconnected) process left running. Every request in a
//! non-final state whose owner process is gone is taken over: with a request id it is followed to
//! the end (status stream, then result) and its images are stored and saved; without one it was
//! never accepted — if the submit had not started it failed harmlessly, otherwise it may or may
//! not have reached fal and becomes `submit_ambiguous`. Nothing is ever submitted again.

use std::path::{Path, PathBuf};

use rusqlite::params;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::journal::{owner_alive, this_process};
use super::{History, HistoryEntry, HistoryError, HistoryJournal, HistoryQuery, JobState, now_ms, short_id};
use crate::fal::{FalClient, FollowMode, RequestHandle};
use crate::model::{Endpoint, KontextInput};
use crate::runner::{JobError, JobEvent, JobOutcome, OutputNaming, ResumeRequest, resume_job};

/// How one resumed request ended.
#[derive(Debug)]
pub struct ResumeOutcome {
    pub id: String,
    pub request_id: String,
    pub result: Result<JobOutcome, JobError>,
}

/// What `resume_all` found and did.
#[derive(Debug, Default)]
pub struct ResumeReport {
    /// Requests that were re-attached, and how each ended.
    pub resumed: Vec<ResumeOutcome>,
    /// Requests whose submit may or may not have reached fal (including ones found now):
    /// shown, never resubmitted.
    pub ambiguous: Vec<HistoryEntry>,
    /// Requests a process stopped before submitting: nothing was sent; marked failed now.
    pub never_sent: Vec<HistoryEntry>,
    /// Requests still being run by a live process (left alone).
    pub running_elsewhere: Vec<HistoryEntry>,
    /// Requests that belong to other hosts than the ones configured now (e.g. fal.ai while
    /// running on the emulator, or without the key): left alone for a resume that can reach them.
    pub other_host: Vec<HistoryEntry>,
    /// Of `ambiguous`, the ones found in this pass (the rest were reported before).
    pub ambiguous_now: Vec<HistoryEntry>,
}

struct Claim {
    row: i64,
    local_id: String,
    handle: RequestHandle,
    sent: KontextInput,
    out_dir: PathBuf,
    result: Option<serde_json::Value>,
}

/// A loopback URL whose port nobody listens on any more.
fn local_server_is_gone(url: &reqwest::Url) -> bool {
    if !crate::fal::is_loopback_url(url) {
        return false;
    }
    let Ok(addrs) = std::net::ToSocketAddrs::to_socket_addrs(&(
        url.host_str().unwrap_or("127.0.0.1").trim_matches(['[', ']']),
        url.port_or_known_default().unwrap_or(80),
    )) else {
        return true;
    };
    !addrs.into_iter().any(|a| std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_millis(300)).is_ok())
}

/// Re-attaches every unfinished request left by a process that is gone, and finishes them all
/// at once. Events are tagged with the short id. `out_dir` overrides the folder each request was
/// started with; `naming` is how the files are called there (the studio's readable names, or
/// `kontext resume`'s request-id names: which one a request started with is not recorded). `cancel` cancels the resumed requests at fal (the TUI passes a token it cancels
/// only on an explicit user request; quitting should just drop the future).
pub async fn resume_all(
    client: &FalClient,
    history: &History,
    out_dir: Option<&Path>,
    naming: OutputNaming,
    events: UnboundedSender<(String, JobEvent)>,
    cancel: CancellationToken,
) -> Result<ResumeReport, HistoryError> {
    let mut report = ResumeReport::default();
    let claims = claim_unfinished(history, client, &mut report)?;
    let jobs = claims.into_iter().map(|c| {
        let history = history.clone();
        let events = events.clone();
        let cancel = cancel.clone();
        let out_dir = out_dir.map(Path::to_path_buf).unwrap_or(c.out_dir);
        async move {
            let journal = std::sync::Arc::new(HistoryJournal::new(history, Some((c.row, c.local_id.clone()))));
            if let Err(e) = journal.claim() {
                tracing::warn!("history: {e}");
            }
            let id = short_id(&c.local_id);
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let forward_id = id.clone();
            let forward = tokio::spawn(async move {
                while let Some(e) = rx.recv().await {
                    let _ = events.send((forward_id.clone(), e));
                }
            });
            let request_id = c.handle.request_id.clone();
            let job = ResumeRequest {
                handle: c.handle,
                sent: c.sent,
                out_dir,
                naming,
                follow: FollowMode::Stream,
                known_result: c.result,
                journal: Some(journal),
            };
            let result = resume_job(client, job, tx, cancel).await;
            let _ = forward.await;
            ResumeOutcome { id, request_id, result }
        }
    });
    report.resumed = futures::future::join_all(jobs).await;
    report.ambiguous = history.list(&HistoryQuery {
        state: Some(JobState::SubmitAmbiguous),
        limit: 1000,
        ..HistoryQuery::default()
    })?;
    Ok(report)
}

/// In one write transaction: finds unfinished rows, settles the ones without a request id, and
/// claims the others for this process (so two resumers never take the same request).
fn claim_unfinished(
    history: &History,
    client: &FalClient,
    report: &mut ResumeReport,
) -> Result<Vec<Claim>, HistoryError> {
    let (pid, start) = this_process();
    let rows: Vec<(i64, HistoryEntry)> = {
        let unfinished = ["pending", "queued", "in_progress", "cancel_requested"];
        let mut all = Vec::new();
        for state in unfinished {
            let q = HistoryQuery { state: JobState::parse(state), limit: 100_000, ..HistoryQuery::default() };
            all.extend(history.list(&q)?.into_iter().map(|e| (e.cursor.0, e)));
        }
        all
    };
    let mut claims = Vec::new();
    history.write(|tx| {
        let e = |e| history.sql_err(e);
        for (row, entry) in rows {
            #[allow(clippy::type_complexity)]
            let found: Option<(
                String,
                Option<i64>,
                Option<String>,
                Option<i64>,
                Option<String>,
                Option<String>,
                Option<String>,
                Option<String>,
                Option<String>,
                Option<String>,
            )> = tx
                .query_row(
                    "SELECT state, owner_pid, owner_start, submitting_at, sent_json, out_dir, result_json,
                        response_url, status_url, cancel_url FROM requests WHERE id = ?1",
                    [row],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                            r.get(8)?,
                            r.get(9)?,
                        ))
                    },
                )
                .ok();
            let Some((state, owner, owner_start, submitting_at, sent_json, dir, result, resp, status, cancel)) = found
            else {
                continue;
            };
            if JobState::parse(&state).is_none_or(JobState::is_final) {
                continue;
            }
            if let Some(owner) = owner
                && owner_alive(owner, owner_start.as_deref())
            {
                report.running_elsewhere.push(entry);
                continue;
            }
            let now = now_ms();
            let Some(request_id) = entry.request_id.clone() else {
                let (new_state, message) = if submitting_at.is_none() {
                    ("failed", "the process stopped before the request was submitted; nothing was sent to fal")
                } else {
                    (
                        "submit_ambiguous",
                        "the process stopped while submitting: fal may or may not have the request. It was not sent again; check your requests on fal's dashboard before re-running it",
                    )
                };
                tx.execute(
                    "UPDATE requests SET state = ?2, error = ?3, finished_at = ?4, updated_at = ?4, owner_pid = NULL WHERE id = ?1",
                    params![row, new_state, message, now],
                )
                .map_err(e)?;
                tx.execute("INSERT INTO events (request, at, kind, detail) VALUES (?1, ?2, ?3, ?4)", params![
                    row,
                    now,
                    if new_state == "failed" { "failed" } else { "submit ambiguous" },
                    message
                ])
                .map_err(e)?;
                let mut entry = entry;
                entry.error = Some(message.to_string());
                if new_state == "failed" {
                    entry.state = JobState::Failed;
                    report.never_sent.push(entry);
                } else {
                    entry.state = JobState::SubmitAmbiguous;
                    report.ambiguous_now.push(entry);
                }
                continue;
            };
            let sent: KontextInput = match sent_json.as_deref().map(serde_json::from_str) {
                Some(Ok(s)) => s,
                _ => {
                    tracing::warn!("history: request {request_id} has no readable sent input; skipped");
                    continue;
                }
            };
            let endpoint = Endpoint::parse(&entry.endpoint).unwrap_or_default();
            let handle = match (resp, status, cancel) {
                (Some(response_url), Some(status_url), Some(cancel_url)) => RequestHandle {
                    endpoint: entry.endpoint.clone(),
                    request_id: request_id.clone(),
                    response_url,
                    status_url,
                    cancel_url,
                },
                _ => RequestHandle::from_request_id(client.config(), &endpoint, &request_id),
            };
            // Only requests on the hosts we talk to now can be followed (and get the key).
            let url = reqwest::Url::parse(&handle.status_url).ok();
            if !url.as_ref().is_some_and(|u| client.config().is_fal_origin(u)) {
                if url.as_ref().is_some_and(local_server_is_gone) {
                    // Served by an emulator on this machine that is gone (a built-in emulator
                    // lives and dies with its process, on a random port): nothing can be fetched
                    // and no money was involved. Settle it instead of retrying forever.
                    let message = "it ran on a local emulator that is no longer running; nothing can be fetched";
                    tx.execute(
                        "UPDATE requests SET state = 'failed', error = ?2, finished_at = ?3, updated_at = ?3, owner_pid = NULL WHERE id = ?1",
                        params![row, message, now],
                    )
                    .map_err(e)?;
                    tx.execute(
                        "INSERT INTO events (request, at, kind, detail) VALUES (?1, ?2, 'failed', ?3)",
                        params![row, now, message],
                    )
                    .map_err(e)?;
                } else {
                    // fal.ai while running on the emulator, another host, no key: leave it for a
                    // resume that can reach it, rather than fail a paid request.
                    report.other_host.push(entry);
                }
                continue;
            }
            tx.execute("UPDATE requests SET owner_pid = ?2, owner_start = ?3 WHERE id = ?1", params![row, pid, start])
                .map_err(e)?;
            claims.push(Claim {
                row,
                local_id: entry.local_id.clone(),
                handle,
                sent,
                out_dir: dir.map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")),
                result: result.and_then(|r| serde_json::from_str(&r).ok()),
            });
        }
        Ok(())
    })?;
    Ok(claims)
}
