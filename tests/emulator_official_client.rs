//! fal's official Python client against the emulator (tests/official/fal_client_check.py).
//! If `fal_client` is not importable: skip with a message, or FAIL when `CI` is set.
//! The interpreter is `$FAL_PYTHON` or `python3`.

use std::process::{Command, Stdio};
use std::time::Duration;

use kontext::emulator::{Emulator, EmulatorConfig, Route};

fn python() -> String {
    std::env::var("FAL_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn script() -> String {
    format!("{}/tests/official/fal_client_check.py", env!("CARGO_MANIFEST_DIR"))
}

/// True if fal_client imports; otherwise skips (or panics under CI).
async fn fal_client_available() -> bool {
    let ok = tokio::task::spawn_blocking(|| {
        Command::new(python())
            .args(["-c", "import fal_client, httpx"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    if !ok {
        let msg =
            format!("fal_client is not importable by `{}`: run `pip install fal-client` (or set FAL_PYTHON)", python());
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("SKIPPED official client check: {msg}");
    }
    ok
}

async fn run_script(emu: &Emulator, mode: &str) -> (bool, String) {
    let mut cmd = Command::new(python());
    cmd.arg(script())
        .arg(mode)
        .env("EMULATOR_URL", emu.base_url())
        .env("EMULATOR_CDN_URL", emu.cdn_base_url())
        .env("FAL_KEY", "emulator-key-id:emulator-key-secret")
        // Loopback must never go through a proxy.
        .env("NO_PROXY", "127.0.0.1,127.0.0.2,localhost")
        .env("no_proxy", "127.0.0.1,127.0.0.2,localhost")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("all_proxy");
    // The emulator keeps serving on the runtime while the script blocks another thread.
    let out = tokio::time::timeout(Duration::from_secs(120), tokio::task::spawn_blocking(move || cmd.output()))
        .await
        .expect("official client check finishes within 120 s")
        .expect("join")
        .expect("python runs");
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_client_full_flow() {
    if !fal_client_available().await {
        return;
    }
    let mut cfg = EmulatorConfig::fast();
    cfg.separate_cdn_host = true;
    let emu = Emulator::start(cfg, 0).await.expect("emulator starts");
    let (ok, text) = run_script(&emu, "full").await;
    assert!(ok, "official client check failed:\n{text}");
    assert!(text.contains("ALL OK (full"), "{text}");
    let j = emu.journal();
    // The default upload went through the CDN-token flow (no silent fallback).
    assert!(j.iter().any(|r| r.route == Route::StorageToken && r.status == 200));
    assert!(j.iter().any(|r| r.route == Route::CdnUpload && r.status == 200));
    // Every API call carried the key; the client never used another host.
    assert!(
        j.iter()
            .filter(|r| matches!(r.route, Route::Submit | Route::Status | Route::Result | Route::Run))
            .all(|r| r.has_authorization)
    );
    assert!(j.iter().all(|r| r.host.starts_with("127.0.0.")));
    emu.shutdown().await;
}

/// The family: [max] (one image, owner/alias URLs), [dev] (its own fields and output) and
/// text-to-image, through fal's own client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_client_other_endpoints() {
    if !fal_client_available().await {
        return;
    }
    let emu = Emulator::start(EmulatorConfig::fast(), 0).await.expect("emulator starts");
    let (ok, text) = run_script(&emu, "family").await;
    assert!(ok, "family check failed:\n{text}");
    assert!(text.contains("ALL OK (family"), "{text}");
    let submitted: Vec<String> =
        emu.journal().into_iter().filter(|r| r.route == Route::Submit).map(|r| r.path).collect();
    for id in ["fal-ai/flux-pro/kontext/max", "fal-ai/flux-kontext/dev"] {
        assert!(submitted.iter().any(|p| p.trim_matches('/') == id), "{id} was submitted: {submitted:?}");
    }
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_client_retries_transient_faults() {
    if !fal_client_available().await {
        return;
    }
    let mut cfg = EmulatorConfig::fast();
    cfg.faults = "429@submit:#1,502@status:#1,503@result:#0".parse().expect("spec");
    let emu = Emulator::start(cfg, 0).await.expect("emulator starts");
    let (ok, text) = run_script(&emu, "retry").await;
    assert!(ok, "retry check failed:\n{text}");
    let j = emu.journal();
    let submits: Vec<u16> = j.iter().filter(|r| r.route == Route::Submit).map(|r| r.status).collect();
    assert_eq!(submits, vec![429, 200], "429 retried by the client");
    assert!(j.iter().any(|r| r.route == Route::Status && r.status == 502), "nginx 502 was injected and retried");
    emu.shutdown().await;
}

/// fal's JS client (`@fal-ai/client`), optional: runs when `FAL_JS_NODE_MODULES` names a
/// `node_modules` directory holding it (e.g. after `npm install @fal-ai/client` in a temp dir).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_js_client_flow() {
    let Some(modules) = std::env::var_os("FAL_JS_NODE_MODULES") else {
        eprintln!("SKIPPED JS client check: set FAL_JS_NODE_MODULES to a node_modules dir with @fal-ai/client");
        return;
    };
    let emu = Emulator::start(EmulatorConfig::fast(), 0).await.expect("emulator starts");
    let mut cmd = Command::new("node");
    cmd.arg(format!("{}/tests/official/fal_js_check.cjs", env!("CARGO_MANIFEST_DIR")))
        .env("EMULATOR_URL", emu.base_url())
        .env("NODE_PATH", modules)
        .env("NO_PROXY", "127.0.0.1,127.0.0.2,localhost");
    let out = tokio::time::timeout(Duration::from_secs(120), tokio::task::spawn_blocking(move || cmd.output()))
        .await
        .expect("JS check finishes within 120 s")
        .expect("join")
        .expect("node runs");
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("ALL OK (js)"), "JS client check failed:\n{text}");
    let j = emu.journal();
    assert!(j.iter().any(|r| r.route == Route::StatusStream));
    assert!(j.iter().any(|r| r.route == Route::UploadPut && r.status == 200));
    emu.shutdown().await;
}
