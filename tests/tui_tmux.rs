//! The studio inside a real tmux server (a private socket, no user config): with sixel it turns tmux's
//! `focus-events` on, so that a window switch sends it `ESC [ I` and it repaints its sixels, and it turns the
//! option off again when it quits. Skipped when tmux is not installed.

use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kontext");

fn tmux(socket: &str, args: &[&str]) -> Option<String> {
    let out = Command::new("tmux").args(["-L", socket, "-f", "/dev/null"]).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sixel_in_tmux_turns_focus_events_on_while_it_runs() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tmux not installed: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), "").unwrap();
    let socket = format!("kontext-test-{}", std::process::id());
    let command = format!(
        "cd {dir} && env -u FAL_KEY KONTEXT_DATA_DIR={dir}/data KONTEXT_CONFIG={dir}/config.toml {BIN} --graphics sixel",
        dir = dir.path().display()
    );
    // A first window keeps the server alive after the studio quits, to read the option then.
    tmux(&socket, &["new-session", "-d", "-x", "120", "-y", "40", "sleep 60"]).expect("tmux server");
    tmux(&socket, &["new-window", "-t", ":1", &command]).expect("the studio's window");
    // `<command> -t :1 <its arguments>`: the target goes before a format or keys.
    let studio = |args: &[&str]| {
        let mut all = vec![args[0], "-t", ":1"];
        all.extend(&args[1..]);
        tmux(&socket, &all)
    };
    wait_until("the studio is up", || studio(&["capture-pane", "-p"]).is_some_and(|s| s.contains("1 Prompt")));
    assert_eq!(tmux(&socket, &["show", "-s", "-v", "focus-events"]).as_deref(), Some("on"), "turned on for sixel");
    let log = std::fs::read_to_string(dir.path().join("data/kontext.log")).unwrap_or_default();
    assert!(log.contains("graphics mode chosen") && log.contains("focus-events turned on"), "the log says so:\n{log}");
    studio(&["send-keys", "C-q"]);
    wait_until("the studio has quit", || {
        tmux(&socket, &["list-windows", "-F", "#{window_index}"]).is_some_and(|w| !w.lines().any(|l| l == "1"))
    });
    let after = tmux(&socket, &["show", "-s", "-v", "focus-events"]);
    let _ = tmux(&socket, &["kill-server"]);
    assert_eq!(after.as_deref(), Some("off"), "put back when the studio quit");
}
