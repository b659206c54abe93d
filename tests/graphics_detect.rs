//! Detection in child processes, so the test never probes the developer's own terminal:
//! * without a tty it returns at once, falls back to halfblocks and leaves stdin alone;
//! * on a pseudo-terminal that answers like xterm (VT340) it picks sixel, and keys typed right after the answer
//!   still reach the app;
//! * on a pseudo-terminal that never answers it gives up at the deadline and keys typed later reach the app.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kontext::tui::graphics::{Graphics, GraphicsMode};

const CHILD: &str = "KONTEXT_DETECT_CHILD";

fn child_command(result: &std::path::Path) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "child_detect_and_read_stdin", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD, result)
        .env_remove("KONTEXT_GRAPHICS")
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .env_remove("TERM_PROGRAM")
        .env_remove("LC_TERMINAL")
        .env_remove("KONSOLE_VERSION")
        .env_remove("WEZTERM_EXECUTABLE")
        .env("TERM", "xterm-256color");
    c
}

/// Runs in the child: (raw mode if on a tty) → detect(Auto) → read what the "user" typed → write a report.
#[test]
#[ignore = "helper run in a child process by the other tests"]
fn child_detect_and_read_stdin() {
    let Ok(out) = std::env::var(CHILD) else { return };
    let tty = unsafe { libc::isatty(0) } == 1;
    if tty {
        crossterm::terminal::enable_raw_mode().unwrap();
    }
    let t = Instant::now();
    let g = Graphics::detect(GraphicsMode::Auto);
    let ms = t.elapsed().as_millis();
    // Read stdin for up to 2 s (or to EOF).
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end && !got.ends_with(b"!") {
        let mut pfd = libc::pollfd { fd: 0, events: libc::POLLIN, revents: 0 };
        if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
            continue;
        }
        let mut b = [0u8; 64];
        let n = unsafe { libc::read(0, b.as_mut_ptr().cast(), b.len()) };
        if n <= 0 {
            break;
        }
        got.extend_from_slice(&b[..n as usize]);
    }
    if tty {
        crossterm::terminal::disable_raw_mode().unwrap();
    }
    let typed = format!("{:?}", kontext::tui::graphics::typed_events(g.typed_during_probe()));
    let report = format!(
        "mode={}\nms={ms}\ndescribe={}\nstdin={}\ntyped={typed}\nbackground={:?}\nreason={}\n",
        g.mode(),
        g.describe(),
        String::from_utf8_lossy(&got),
        g.background(),
        g.reason()
    );
    std::fs::write(out, report).unwrap();
}

fn field<'a>(report: &'a str, name: &str) -> &'a str {
    report.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).unwrap_or_default()
}

#[test]
fn without_a_tty_detection_is_instant_and_leaves_stdin_alone() {
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("report");
    let mut child = child_command(&result).stdin(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"first keys!").unwrap();
    assert!(child.wait().unwrap().success());
    let report = std::fs::read_to_string(&result).unwrap();
    assert_eq!(field(&report, "mode"), "halfblocks", "{report}");
    assert!(field(&report, "describe").contains("no tty"), "{report}");
    assert!(field(&report, "ms").parse::<u64>().unwrap() < 100, "{report}");
    assert_eq!(field(&report, "stdin"), "first keys!", "stdin was consumed: {report}");
}

struct Pty {
    master: std::fs::File,
    slave: OwnedFd,
}

fn openpty() -> Pty {
    let (mut m, mut s) = (0, 0);
    let ws = libc::winsize { ws_row: 24, ws_col: 80, ws_xpixel: 800, ws_ypixel: 480 };
    let rc = unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
    assert_eq!(rc, 0, "openpty");
    unsafe { Pty { master: std::fs::File::from_raw_fd(m), slave: OwnedFd::from_raw_fd(s) } }
}

/// Read from the pty master until `needle` appears (or the timeout).
fn read_until(master: &mut std::fs::File, needle: &[u8], timeout: Duration) -> Vec<u8> {
    let mut seen = Vec::new();
    let end = Instant::now() + timeout;
    while Instant::now() < end && !seen.windows(needle.len()).any(|w| w == needle) {
        let mut pfd = libc::pollfd { fd: master.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        if unsafe { libc::poll(&mut pfd, 1, 20) } <= 0 {
            continue;
        }
        let mut b = [0u8; 256];
        match master.read(&mut b) {
            Ok(n) if n > 0 => seen.extend_from_slice(&b[..n]),
            _ => break,
        }
    }
    seen
}

fn spawn_on_pty(pty: &Pty, result: &std::path::Path) -> std::process::Child {
    let fd = |p: &Pty| Stdio::from(p.slave.try_clone().unwrap());
    child_command(result).stdin(fd(pty)).stdout(fd(pty)).stderr(Stdio::null()).spawn().unwrap()
}

fn wait(child: &mut std::process::Child) {
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if let Some(st) = child.try_wait().unwrap() {
            assert!(st.success());
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    panic!("child hung");
}

#[test]
fn a_terminal_that_answers_sixel_is_detected_and_later_keys_survive() {
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("report");
    let mut pty = openpty();
    let mut child = spawn_on_pty(&pty, &result);
    // Act as xterm -ti vt340: wait for the query burst, answer DA1 (with 4 = sixel) and DSR, then "type".
    let query = read_until(&mut pty.master, b"\x1b[5n", Duration::from_secs(10));
    let q = String::from_utf8_lossy(&query);
    assert!(q.contains("\x1b_Gi=31,") && q.contains("\x1b[c") && q.contains("\x1b[16t"), "query: {q:?}");
    assert!(!q.contains("\x1bPtmux;"), "not wrapped outside tmux");
    pty.master.write_all(b"\x1b[?63;1;2;4;6;9;15;16;22;28c\x1b[0ntyped!").unwrap();
    wait(&mut child);
    let report = std::fs::read_to_string(&result).unwrap();
    assert_eq!(field(&report, "mode"), "sixel", "{report}");
    assert_eq!(field(&report, "describe"), "sixel 10x20", "font from the pty's pixel size: {report}");
    assert_eq!(field(&report, "stdin"), "typed!", "keys after the answer were swallowed: {report}");
}

#[test]
fn a_terminal_that_never_answers_costs_one_deadline_and_no_keys() {
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("report");
    let mut pty = openpty();
    let mut child = spawn_on_pty(&pty, &result);
    let _ = read_until(&mut pty.master, b"\x1b[5n", Duration::from_secs(10));
    // Say nothing until well after the deadline, then type.
    std::thread::sleep(Duration::from_millis(600));
    pty.master.write_all(b"late!").unwrap();
    wait(&mut child);
    let report = std::fs::read_to_string(&result).unwrap();
    assert_eq!(field(&report, "mode"), "halfblocks", "{report}");
    let ms: u64 = field(&report, "ms").parse().unwrap();
    assert!((250..1000).contains(&ms), "deadline not honoured: {ms} ms");
    assert!(field(&report, "describe").contains("no answer in 300 ms"), "{report}");
    assert_eq!(field(&report, "stdin"), "late!", "{report}");
}

#[test]
fn the_env_override_skips_the_probe() {
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("report");
    let mut pty = openpty();
    let mut child = child_command(&result)
        .env("KONTEXT_GRAPHICS", "kitty")
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    pty.master.write_all(b"k!").unwrap();
    wait(&mut child);
    let written = read_until(&mut pty.master, b"\x1b[5n", Duration::from_millis(200));
    assert!(!String::from_utf8_lossy(&written).contains("\x1b_G"), "probed anyway");
    let report = std::fs::read_to_string(&result).unwrap();
    assert_eq!(field(&report, "mode"), "kitty", "{report}");
    assert!(field(&report, "describe").contains("env KONTEXT_GRAPHICS"), "{report}");
    assert_eq!(field(&report, "stdin"), "k!");
}

/// Answer the probe on a pseudo-terminal with `reply` and return the child's report.
fn detect_with_reply(reply: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("report");
    let mut pty = openpty();
    let mut child = spawn_on_pty(&pty, &result);
    let query = read_until(&mut pty.master, b"\x1b[5n", Duration::from_secs(10));
    assert!(String::from_utf8_lossy(&query).contains("\x1b[>q"), "XTVERSION asked");
    pty.master.write_all(reply).unwrap();
    pty.master.write_all(b"!").unwrap();
    wait(&mut child);
    std::fs::read_to_string(&result).unwrap()
}

/// Keys typed before the terminal's answers arrive are kept in the process (no `TIOCSTI`): they are not in the
/// tty afterwards, and they come back as events for the app, in order.
#[test]
fn keys_typed_during_the_probe_are_kept_for_the_app_and_the_background_is_read() {
    let report = detect_with_reply(b"ab\x1b[B\x1b]11;rgb:ffff/fefe/f0f0\x1b\\\x1b[?63;1;4c\x1b[0n");
    assert_eq!(field(&report, "mode"), "sixel", "{report}");
    assert_eq!(field(&report, "stdin"), "!", "typed keys were pushed back into the tty: {report}");
    let typed = field(&report, "typed");
    assert!(typed.contains("Char('a')") && typed.contains("Char('b')") && typed.contains("Down"), "{report}");
    assert!(typed.find("Char('a')") < typed.find("Down"), "in order: {report}");
    assert_eq!(field(&report, "background"), "Some((255, 254, 240))", "{report}");
    assert!(field(&report, "reason").contains("sixel (4)"), "the log says why: {report}");
}

#[test]
fn kitty_with_unicode_placeholders_is_chosen_but_kitty_0_26_is_not() {
    let new = detect_with_reply(b"\x1b_Gi=31;OK\x1b\\\x1bP>|kitty(0.35.2)\x1b\\\x1b[?62;c\x1b[6;19;8t\x1b[0n");
    assert_eq!(field(&new, "mode"), "kitty", "{new}");
    assert_eq!(field(&new, "describe"), "kitty 8x19", "cell size from CSI 16t: {new}");
    // Seen for real with Debian's kitty 0.26.5: it answers the query but draws placeholders as boxes.
    let old = detect_with_reply(b"\x1b_Gi=31;OK\x1b\\\x1bP>|kitty(0.26.5)\x1b\\\x1b[?62;c\x1b[0n");
    assert_eq!(field(&old, "mode"), "halfblocks", "{old}");
    assert!(field(&old, "describe").contains("kitty < 0.28"), "{old}");
}
