//! A faithful local emulator of fal's queue, run and storage API (see docs/EMULATOR.md).
//!
//! It serves, on one loopback base URL, what fal spreads over `queue.fal.run`, `fal.run`
//! (under `/run/…`), `rest.fal.ai` (`/storage/…`) and the CDN (`/files/…`), for the endpoints
//! `fal-ai/flux-pro/kontext/multi` and `fal-ai/flux-pro/kontext/max/multi`. It never touches
//! the network beyond 127.0.0.0/8.

mod bodies;
mod endpoints;
mod faults;
mod inputs;
mod platform;
mod routes;
mod sim;
mod sse;
mod status;
mod storage;
mod synth;
mod util;
mod validate;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rand::SeedableRng;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use faults::{Amount, FaultKind, FaultRoute, FaultRule, FaultSpec, FaultSpecError, HOSTILE_TEXT};

use util::lock;

/// Timing preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// Tests: ~10 ms queue, ~150 ms processing, small images.
    #[default]
    Fast,
    /// Demos: seconds of queueing and processing, ~1 MP images, jittered timings.
    Realistic,
}

impl FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fast" => Ok(Profile::Fast),
            "realistic" => Ok(Profile::Realistic),
            other => Err(format!("unknown emulator profile \"{other}\"; expected \"fast\" or \"realistic\"")),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Fast => "fast",
            Profile::Realistic => "realistic",
        })
    }
}

/// Emulator settings; start from [`EmulatorConfig::fast`] or [`EmulatorConfig::realistic`].
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Timing preset the other fields were derived from.
    pub profile: Profile,
    /// Fault injection (default: none).
    pub faults: FaultSpec,
    /// Requests IN_PROGRESS at once; more wait IN_QUEUE.
    pub concurrency: usize,
    /// Minimum time a request spends IN_QUEUE.
    pub queue_delay: Duration,
    /// Time a request spends IN_PROGRESS.
    pub processing_time: Duration,
    /// Cadence of progress log lines.
    pub log_interval: Duration,
    /// Also listen on 127.0.0.2 and build media URLs from it (like fal's separate CDN host).
    pub separate_cdn_host: bool,
    /// Cap on the output's long side (the fast profile uses small images).
    pub max_image_side: Option<u32>,
    /// Seed of the emulator's RNG (fault probabilities, random seeds, ids in file names).
    pub rng_seed: u64,
    /// Interval of `: ping` comments on the status stream (fal: 15 s).
    pub ping_interval: Duration,
}

impl EmulatorConfig {
    /// Quick runs for tests.
    pub fn fast() -> Self {
        EmulatorConfig {
            profile: Profile::Fast,
            faults: FaultSpec::default(),
            // Enough for a sweep at kontext's --concurrency limit: the fast profile never
            // serialises what a client sends at once.
            concurrency: 64,
            queue_delay: Duration::from_millis(10),
            processing_time: Duration::from_millis(150),
            log_interval: Duration::from_millis(25),
            separate_cdn_host: false,
            max_image_side: Some(256),
            rng_seed: 0x05ee_dfa1,
            ping_interval: Duration::from_secs(1),
        }
    }

    /// Timings and sizes close to the real endpoint.
    pub fn realistic() -> Self {
        EmulatorConfig {
            profile: Profile::Realistic,
            faults: FaultSpec::default(),
            concurrency: 2,
            queue_delay: Duration::from_millis(2000),
            processing_time: Duration::from_millis(6500),
            log_interval: Duration::from_millis(500),
            separate_cdn_host: false,
            max_image_side: None,
            rng_seed: 0x05ee_dfa1,
            ping_interval: Duration::from_secs(15),
        }
    }

    pub fn for_profile(p: Profile) -> Self {
        match p {
            Profile::Fast => Self::fast(),
            Profile::Realistic => Self::realistic(),
        }
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self::fast()
    }
}

/// Which route a request hit (for the journal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    Submit,
    Status,
    StatusStream,
    Result,
    Cancel,
    Run,
    StorageInitiate,
    StorageToken,
    CdnUpload,
    UploadPut,
    FileGet,
    /// fal's platform API (`/v1/models…`).
    Platform,
    Other,
}

/// One HTTP request as the emulator received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The `Host` header.
    pub host: String,
    pub has_authorization: bool,
    pub route: Route,
    /// The status the emulator answered (for `reset`: the one it would have sent);
    /// 0 while no answer was produced (in flight or `hang`).
    pub status: u16,
}

/// State shared by all handlers and background tasks.
pub(crate) struct Shared {
    pub config: EmulatorConfig,
    pub base_url: String,
    pub cdn_base_url: String,
    /// Ports the emulator listens on (URLs on loopback with these ports are "ours").
    pub own_ports: Vec<u16>,
    pub journal: Mutex<Vec<RecordedRequest>>,
    pub submits: AtomicUsize,
    pub faults: Mutex<faults::FaultState>,
    pub queue: Mutex<sim::QueueState>,
    pub store: Mutex<storage::Store>,
    pub rng: Mutex<rand::rngs::StdRng>,
    pub shutdown: CancellationToken,
    /// Loopback-only HTTP client for inputs served by other local servers.
    pub http: reqwest::Client,
    pub jitter: bool,
}

/// A running emulator.
pub struct Emulator {
    shared: Arc<Shared>,
    servers: Vec<JoinHandle<()>>,
}

impl Emulator {
    /// Binds 127.0.0.1:`port` (0 = any free port) and starts serving.
    pub async fn start(config: EmulatorConfig, port: u16) -> io::Result<Emulator> {
        let main = TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)).await?;
        let main_port = main.local_addr()?.port();
        let base_url = format!("http://127.0.0.1:{main_port}");
        let mut listeners = vec![main];
        let mut own_ports = vec![main_port];
        let mut cdn_base_url = base_url.clone();
        if config.separate_cdn_host {
            let cdn_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
            let cdn = match TcpListener::bind(SocketAddr::new(cdn_ip, main_port)).await {
                Ok(l) => l,
                Err(_) => TcpListener::bind(SocketAddr::new(cdn_ip, 0)).await?,
            };
            let cdn_port = cdn.local_addr()?.port();
            cdn_base_url = format!("http://127.0.0.2:{cdn_port}");
            if cdn_port != main_port {
                own_ports.push(cdn_port);
            }
            listeners.push(cdn);
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(io::Error::other)?;
        let shared = Arc::new(Shared {
            faults: Mutex::new(faults::FaultState::new(config.faults.clone(), config.rng_seed)),
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(config.rng_seed ^ 0x9e37_79b9)),
            jitter: config.profile == Profile::Realistic,
            config,
            base_url,
            cdn_base_url,
            own_ports,
            journal: Mutex::new(Vec::new()),
            submits: AtomicUsize::new(0),
            queue: Mutex::new(sim::QueueState::default()),
            store: Mutex::new(storage::Store::default()),
            shutdown: CancellationToken::new(),
            http,
        });
        let router = Router::new().fallback(routes::handle).with_state(shared.clone());
        let mut servers = Vec::new();
        for l in listeners {
            let svc = router.clone().into_make_service_with_connect_info::<ConnCtl>();
            let stop = shared.shutdown.clone();
            servers.push(tokio::spawn(async move {
                let _ = axum::serve(KillListener(l), svc).with_graceful_shutdown(stop.cancelled_owned()).await;
            }));
        }
        Ok(Emulator { shared, servers })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash): queue, `/run`, storage and file routes.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// Base of media URLs; equals [`Self::base_url`] unless `separate_cdn_host`.
    pub fn cdn_base_url(&self) -> &str {
        &self.shared.cdn_base_url
    }

    /// Every HTTP request received, in order of arrival.
    pub fn journal(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.journal).clone()
    }

    /// Queue submits received (accepted or not).
    pub fn submit_count(&self) -> usize {
        self.shared.submits.load(Ordering::SeqCst)
    }

    /// Every request the queue accepted (the last 5000), as (request id, the submitted JSON —
    /// `Null` when it did not parse), in no particular order: a test can tell from it whether
    /// any content was submitted twice.
    pub fn accepted(&self) -> Vec<(String, serde_json::Value)> {
        let queue = lock(&self.shared.queue);
        queue.jobs.values().map(|j| (j.id.clone(), j.body.clone().unwrap_or_default())).collect()
    }

    /// The most requests that were IN_PROGRESS at the same time since the start.
    pub fn max_in_progress(&self) -> usize {
        lock(&self.shared.queue).max_running
    }

    /// When a status stream sent request `id`'s COMPLETED event (for latency measurements).
    pub fn completion_streamed_at(&self, id: &str) -> Option<std::time::Instant> {
        let job = lock(&self.shared.queue).jobs.get(id).cloned()?;
        lock(&job.state).completed_streamed_at
    }

    /// The configuration in use.
    pub fn config(&self) -> &EmulatorConfig {
        &self.shared.config
    }

    /// Stops serving: open streams and hung requests end, connections close.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.cancel();
        for s in std::mem::take(&mut self.servers) {
            let abort = s.abort_handle();
            if tokio::time::timeout(Duration::from_secs(3), s).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Dropping without `shutdown()` still stops background work.
        self.shared.shutdown.cancel();
    }
}

/// A TCP listener whose connections can be broken on purpose (the `reset`/`hang` faults).
struct KillListener(TcpListener);

struct KillIo {
    inner: TcpStream,
    killed: Arc<AtomicBool>,
}

/// Per-connection handle given to handlers through `ConnectInfo`.
#[derive(Clone)]
pub(crate) struct ConnCtl {
    killed: Arc<AtomicBool>,
}

impl ConnCtl {
    /// Makes every further read/write on the connection fail, so hyper drops it unanswered.
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }
}

impl Listener for KillListener {
    type Io = KillIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((s, a)) => {
                    let _ = s.set_nodelay(true);
                    return (KillIo { inner: s, killed: Arc::new(AtomicBool::new(false)) }, a);
                }
                // Transient accept errors (e.g. too many open files): back off briefly.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, KillListener>> for ConnCtl {
    fn connect_info(stream: IncomingStream<'_, KillListener>) -> Self {
        ConnCtl { killed: stream.io().killed.clone() }
    }
}

fn killed_err() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by fault injection")
}

impl AsyncRead for KillIo {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed.load(Ordering::SeqCst) {
            return Poll::Ready(Err(killed_err()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
