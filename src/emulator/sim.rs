//! The simulated queue and model runner: FIFO queue with a concurrency limit, queue delay,
//! timed log lines, cancellation, start deadlines, and the Kontext "model" itself.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use bytes::Bytes;
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::inputs::{self, Fetched};
use super::synth;
use super::util::{self, iso8601, lock};
use super::validate::{self, KontextInput};

/// Kontext's default number of denoising steps (shown in the log lines).
const STEPS: u32 = 28;
/// Completed jobs kept for status/result look-ups (oldest forgotten first).
const MAX_JOBS: usize = 5_000;

/// The end state of a model run.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// 200 with the model output, and what fal bills for it (`x-fal-billable-units`).
    Success { output: Value, billable_units: f64 },
    /// A model error (e.g. 422 with a `detail` list); the status stays COMPLETED without `error`.
    ModelError { status: u16, body: Value },
    /// An infrastructure error: COMPLETED carries `error`/`error_type`; the result GET answers
    /// this status in the flat format.
    Infra { status: u16, error: String, error_type: String, user_timeout: bool },
}

impl Outcome {
    pub(crate) fn cancelled() -> Self {
        Outcome::Infra {
            status: 499,
            error: "Request was cancelled by the client".into(),
            error_type: "client_cancelled".into(),
            user_timeout: false,
        }
    }
    fn failed() -> Self {
        Outcome::Infra {
            status: 503,
            error: "Runner disconnected while processing the request".into(),
            error_type: "runner_disconnected".into(),
            user_timeout: false,
        }
    }
    fn start_timeout() -> Self {
        Outcome::Infra {
            status: 504,
            error: "Request timed out before a runner could start it".into(),
            error_type: "request_timeout".into(),
            user_timeout: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    InQueue,
    InProgress,
    Completed,
}

impl Phase {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Phase::InQueue => "IN_QUEUE",
            Phase::InProgress => "IN_PROGRESS",
            Phase::Completed => "COMPLETED",
        }
    }
}

pub(crate) struct JobState {
    pub phase: Phase,
    /// When a status stream first handed the COMPLETED event to the connection (benchmarks
    /// measure client latency from here).
    pub completed_streamed_at: Option<Instant>,
    pub logs: Vec<Value>,
    pub outcome: Option<Outcome>,
    pub inference_time: Option<f64>,
    /// When a runner took it and when it ended (for the platform API's request listing).
    pub started_at: Option<SystemTime>,
    pub ended_at: Option<SystemTime>,
}

/// One queued request.
pub(crate) struct Job {
    pub id: String,
    /// `owner/alias` — status/result/cancel URLs use only this.
    pub app: String,
    pub endpoint: String,
    pub body: Result<Value, String>,
    /// When it was submitted (for the platform API's request listing).
    pub sent_at: SystemTime,
    pub ready_at: Instant,
    pub fail: bool,
    /// Log lines and the echoed prompt carry `HOSTILE_TEXT` (the `hostile-text` fault).
    pub hostile_text: bool,
    pub webhook: Option<String>,
    pub state: Mutex<JobState>,
    pub changed: watch::Sender<u64>,
    pub cancel: CancellationToken,
}

impl Job {
    pub(crate) fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn log(&self, mut message: String) {
        if self.hostile_text {
            message.push_str(super::faults::HOSTILE_TEXT);
        }
        let entry = log_entry(&message);
        lock(&self.state).logs.push(entry);
        self.bump();
    }
}

pub(crate) fn log_entry(message: &str) -> Value {
    json!({
        "timestamp": iso8601(SystemTime::now(), true),
        "message": message,
        "labels": {"level": "INFO", "source": "USER"},
    })
}

#[derive(Default)]
pub(crate) struct QueueState {
    pub jobs: HashMap<String, Arc<Job>>,
    pub waiting: VecDeque<String>,
    pub running: usize,
    /// The most requests IN_PROGRESS at once so far (benchmarks check a sweep's concurrency).
    pub max_running: usize,
    pub(crate) order: VecDeque<String>,
}

impl QueueState {
    pub(crate) fn position(&self, id: &str) -> Option<usize> {
        self.waiting.iter().position(|w| w == id)
    }
}

/// Parameters of a new queued request.
pub(crate) struct NewJob {
    pub app: String,
    pub endpoint: String,
    pub body: Result<Value, String>,
    pub fail: bool,
    pub hostile_text: bool,
    pub webhook: Option<String>,
    pub start_timeout: Option<Duration>,
}

/// Enqueues a request and starts its timers; returns the job and its queue position.
pub(crate) fn enqueue(shared: &Arc<Shared>, new: NewJob) -> (Arc<Job>, usize) {
    let queue_delay = jitter(shared, shared.config.queue_delay);
    let (changed, _) = watch::channel(0u64);
    let job = Arc::new(Job {
        id: uuid::Uuid::new_v4().to_string(),
        app: new.app,
        endpoint: new.endpoint,
        body: new.body,
        sent_at: SystemTime::now(),
        ready_at: Instant::now() + queue_delay,
        fail: new.fail,
        hostile_text: new.hostile_text,
        webhook: new.webhook,
        state: Mutex::new(JobState {
            phase: Phase::InQueue,
            completed_streamed_at: None,
            logs: Vec::new(),
            outcome: None,
            inference_time: None,
            started_at: None,
            ended_at: None,
        }),
        changed,
        cancel: CancellationToken::new(),
    });
    tracing::debug!(id = %job.id, endpoint = %job.endpoint, webhook = ?job.webhook, "emulator: queued");
    let position = {
        let mut q = lock(&shared.queue);
        q.jobs.insert(job.id.clone(), job.clone());
        q.order.push_back(job.id.clone());
        q.waiting.push_back(job.id.clone());
        evict(&mut q);
        q.waiting.len() - 1
    };
    let (s, j) = (shared.clone(), job.clone());
    let shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep_until(j.ready_at.into()) => dispatch(&s),
            _ = shutdown.cancelled() => {}
        }
    });
    if let Some(t) = new.start_timeout {
        let (s, j) = (shared.clone(), job.clone());
        let shutdown = shared.shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(t) => {
                    if remove_waiting(&s, &j.id) {
                        complete(&j, Outcome::start_timeout());
                    }
                }
                _ = shutdown.cancelled() => {}
            }
        });
    }
    (job, position)
}

/// Forgets the oldest completed jobs beyond the cap.
fn evict(q: &mut QueueState) {
    while q.order.len() > MAX_JOBS {
        let Some(idx) =
            q.order.iter().position(|id| q.jobs.get(id).is_none_or(|j| lock(&j.state).phase == Phase::Completed))
        else {
            break;
        };
        if let Some(id) = q.order.remove(idx) {
            q.jobs.remove(&id);
        }
    }
}

fn jitter(shared: &Shared, d: Duration) -> Duration {
    if !shared.jitter || d.is_zero() {
        return d;
    }
    // Realistic profile: ±35 % so runs don't look machine-timed.
    let f: f64 = lock(&shared.rng).random_range(0.65..1.35);
    d.mul_f64(f)
}

/// Removes a job from the waiting line; true if it was waiting. Wakes the others (positions).
pub(crate) fn remove_waiting(shared: &Shared, id: &str) -> bool {
    let others: Vec<Arc<Job>> = {
        let mut q = lock(&shared.queue);
        let Some(pos) = q.position(id) else {
            return false;
        };
        q.waiting.remove(pos);
        q.waiting.iter().skip(pos).filter_map(|w| q.jobs.get(w).cloned()).collect()
    };
    for o in others {
        o.bump();
    }
    true
}

/// Starts as many ready jobs as the concurrency limit allows (FIFO, head-of-line).
pub(crate) fn dispatch(shared: &Arc<Shared>) {
    let now = Instant::now();
    let (started, still_waiting) = {
        let mut q = lock(&shared.queue);
        let mut started = Vec::new();
        while q.running < shared.config.concurrency.max(1) {
            let Some(front) = q.waiting.front().cloned() else {
                break;
            };
            let Some(job) = q.jobs.get(&front).cloned() else {
                q.waiting.pop_front();
                continue;
            };
            if job.ready_at > now {
                break;
            }
            q.waiting.pop_front();
            q.running += 1;
            q.max_running = q.max_running.max(q.running);
            started.push(job);
        }
        let waiting: Vec<Arc<Job>> = if started.is_empty() {
            Vec::new()
        } else {
            q.waiting.iter().filter_map(|w| q.jobs.get(w).cloned()).collect()
        };
        (started, waiting)
    };
    for job in started {
        {
            let mut st = lock(&job.state);
            st.phase = Phase::InProgress;
            st.started_at = Some(SystemTime::now());
        }
        job.bump();
        let s = shared.clone();
        tokio::spawn(async move {
            let outcome = if job.cancel.is_cancelled() {
                Outcome::cancelled()
            } else {
                let started = Instant::now();
                let out = run_model(&s, &job.endpoint, &job.body, Some(&job), job.fail, &job.cancel).await;
                lock(&job.state).inference_time = Some(started.elapsed().as_secs_f64());
                out
            };
            complete(&job, outcome);
            lock(&s.queue).running -= 1;
            dispatch(&s);
        });
    }
    for w in still_waiting {
        w.bump();
    }
}

pub(crate) fn complete(job: &Job, outcome: Outcome) {
    {
        let mut st = lock(&job.state);
        if st.phase == Phase::Completed {
            return;
        }
        st.phase = Phase::Completed;
        st.outcome = Some(outcome);
        st.ended_at = Some(SystemTime::now());
    }
    job.bump();
}

/// Sleeps unless cancelled; false when cancelled (or shutting down).
async fn pause(d: Duration, cancel: &CancellationToken, shared: &Shared) -> bool {
    if d.is_zero() {
        return !cancel.is_cancelled();
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => !cancel.is_cancelled(),
        _ = cancel.cancelled() => false,
        _ = shared.shutdown.cancelled() => false,
    }
}

/// Runs the "model": validation, input fetching, timed progress logs, synthesis, storage.
/// `job` receives the log lines (queue); the sync run has none.
pub(crate) async fn run_model(
    shared: &Arc<Shared>,
    endpoint: &str,
    body: &Result<Value, String>,
    job: Option<&Arc<Job>>,
    fail: bool,
    cancel: &CancellationToken,
) -> Outcome {
    let started = Instant::now();
    let log = |m: String| {
        if let Some(j) = job {
            j.log(m);
        }
    };
    let total = jitter(shared, shared.config.processing_time);
    let interval = shared.config.log_interval.max(Duration::from_millis(1));

    let Some(schema) = super::endpoints::catalog().get(endpoint) else {
        return Outcome::ModelError {
            status: 404,
            body: json!({"detail": format!("Application '{endpoint}' not found")}),
        };
    };
    let input: KontextInput = match body {
        Err(e) => {
            return Outcome::ModelError {
                status: 422,
                body: json!({"detail": [{
                    "loc": ["body", 0],
                    "msg": format!("JSON decode error: {e}"),
                    "type": "json_invalid",
                    "url": "https://docs.fal.ai/errors/#json_invalid",
                    "ctx": {"error": e},
                    "input": {},
                }]}),
            };
        }
        Ok(v) => match validate::validate(schema, v) {
            Ok(i) => i,
            Err(detail) => {
                return Outcome::ModelError { status: 422, body: json!({ "detail": detail }) };
            }
        },
    };

    let n = input.image_urls.len();
    log(format!(
        "Loading inputs: {n} image{}, {} output{} requested",
        if n == 1 { "" } else { "s" },
        input.num_images,
        if input.num_images == 1 { "" } else { "s" }
    ));
    let mut images = Vec::with_capacity(n);
    let mut errors = Vec::new();
    let placeholder_side = shared.config.max_image_side.unwrap_or(512).min(512);
    for (i, url) in input.image_urls.iter().enumerate() {
        match inputs::fetch(shared, i, url).await {
            Ok(Fetched::Image(img)) => {
                log(format!("Fetched image {}/{n} ({}x{})", i + 1, img.width(), img.height()));
                images.push(img);
            }
            Ok(Fetched::Placeholder(host)) => {
                log(format!(
                    "Emulator is offline: image {}/{n} from {host} was not fetched; using a placeholder",
                    i + 1
                ));
                images.push(synth::placeholder(i, placeholder_side));
            }
            Err(e) => {
                log(format!("ERROR: could not load image {}/{n}", i + 1));
                errors.push(e);
            }
        }
        if cancel.is_cancelled() {
            return Outcome::cancelled();
        }
    }
    if !errors.is_empty() {
        return Outcome::ModelError { status: 422, body: json!({ "detail": errors }) };
    }

    let seed = input.seed.unwrap_or_else(|| u64::from(lock(&shared.rng).random::<u32>()));
    let first = images.first().map(|i| i.dimensions());
    // Billed by the size the request asks for; drawn smaller when the profile says so.
    let nominal = crate::model::cost::output_size(&input.fields, first).unwrap_or((1024, 1024));
    let input_sizes: Vec<(u32, u32)> = images.iter().map(|i| i.dimensions()).collect();
    let billable_units =
        crate::model::cost::billable_units(&schema.price_unit, &vec![nominal; input.num_images as usize], &input_sizes)
            .unwrap_or(f64::from(input.num_images));
    let size = synth::fit(nominal, shared.config.max_image_side);
    if input.enhance_prompt {
        log("Enhancing prompt".to_string());
    }
    let settings: Vec<String> = ["guidance_scale", "safety_tolerance", "num_inference_steps", "acceleration"]
        .iter()
        .filter_map(|k| {
            input.fields.get(*k).map(|v| format!("{k} {}", v.as_str().map(str::to_string).unwrap_or(v.to_string())))
        })
        .collect();
    log(format!("Generating {}x{} (seed {seed}, {})", size.0, size.1, settings.join(", ")));

    // Synthesis runs on the blocking pool while the progress logs tick.
    let synth_job = {
        let (images, prompt, fmt) = (images, input.prompt.clone(), input.output_format.clone());
        let (count, fields) = (input.num_images, input.fields.clone());
        tokio::task::spawn_blocking(move || {
            let look = synth::Look { prompt: &prompt, seed, fields: &fields };
            (0..count).map(|k| synth::synthesize(&images, &look, size, k, &fmt)).collect::<Result<Vec<_>, _>>()
        })
    };

    // Progress: spread the step lines over what is left of the processing time.
    let remaining = total.saturating_sub(started.elapsed());
    let ticks = ((remaining.as_secs_f64() / interval.as_secs_f64()).floor() as u32).clamp(1, STEPS);
    let per_tick = remaining / (ticks + 1);
    for t in 1..=ticks {
        if !pause(per_tick, cancel, shared).await {
            return Outcome::cancelled();
        }
        if fail && t * 2 > ticks {
            log("ERROR: runner lost connection to the worker".to_string());
            return Outcome::failed();
        }
        let step = (t * STEPS).div_ceil(ticks);
        log(format!("Step {step}/{STEPS}"));
    }
    if fail {
        return Outcome::failed();
    }
    let encoded = match synth_job.await {
        Ok(Ok(v)) => v,
        _ => {
            return Outcome::Infra {
                status: 500,
                error: "Internal error while generating the image".into(),
                error_type: "internal_error".into(),
                user_timeout: false,
            };
        }
    };
    if !pause(per_tick, cancel, shared).await {
        return Outcome::cancelled();
    }
    let bytes_len: Vec<usize> = encoded.iter().map(|(b, _)| b.len()).collect();
    let mut out_images = Vec::with_capacity(encoded.len());
    for (k, (bytes, content_type)) in encoded.into_iter().enumerate() {
        log(format!("Encoding output {}/{} ({})", k + 1, input.num_images, input.output_format));
        let url = if input.sync_mode {
            format!("data:{content_type};base64,{}", base64::engine::general_purpose::STANDARD.encode(&bytes))
        } else {
            let path = {
                let mut rng = lock(&shared.rng);
                format!(
                    "/files/{}/{}.{}",
                    util::animal(&mut *rng),
                    util::nano_id(&mut *rng, 21),
                    util::ext_for(content_type)
                )
            };
            lock(&shared.store).put(path.clone(), content_type.to_string(), Bytes::from(bytes));
            format!("{}{path}", shared.cdn_base_url)
        };
        let mut image = json!({
            "url": url,
            "width": size.0,
            "height": size.1,
            "content_type": content_type,
        });
        // [dev]'s images also say their file name and size.
        if schema.output_image_fields.iter().any(|f| f == "file_size") {
            image["file_name"] = json!(format!("output-{k}.{}", util::ext_for(content_type)));
            image["file_size"] = json!(bytes_len[k]);
        }
        out_images.push(image);
    }
    let secs = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    log(format!("Done in {secs:.2}s"));
    let output = json!({
        "images": out_images,
        "timings": {"inference": secs},
        "seed": seed,
        "has_nsfw_concepts": vec![false; input.num_images as usize],
        "prompt": match job {
            Some(j) if j.hostile_text => format!("{}{}", input.prompt, super::faults::HOSTILE_TEXT),
            _ => input.prompt,
        },
    });
    Outcome::Success { output, billable_units }
}
