//! Terminal probing: tmux/SSH aware, with a short deadline, and careful with the user's keystrokes.
//!
//! We do not use `ratatui_image::picker::Picker::from_query_stdio`: in 11.1 it leaves a thread blocked on
//! stdin after its 2 s timeout (which eats the first keys typed into the app), it cannot place sixel through
//! tmux passthrough (see docs/GRAPHICS.md), and it runs `tmux set` as a side effect of every constructor.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::replies::{ProbeReport, ReplyParser, old_kitty, query};
use super::{DEFAULT_FONT_SIZE, ENV_TMUX_FOCUS_EVENTS, ENV_TMUX_PASSTHROUGH, Graphics, GraphicsMode, TmuxInfo};

/// Probe deadline: terminals that answer do so in a few ms (0.6 ms in xterm, < 1 ms through tmux here).
pub(super) const DEFAULT_DEADLINE: Duration = Duration::from_millis(300);

pub(super) fn tmux_from_env() -> bool {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty());
    set("TMUX")
        || std::env::var("TERM").is_ok_and(|t| t.starts_with("tmux"))
        || std::env::var("TERM_PROGRAM").is_ok_and(|t| t == "tmux")
}

fn env_is(k: &str, v: &str) -> bool {
    std::env::var(k).is_ok_and(|x| x == v)
}

fn iterm2_hint() -> bool {
    const PROGRAMS: [&str; 9] = ["iTerm", "WezTerm", "mintty", "vscode", "Tabby", "Hyper", "rio", "Bobcat", "Warp"];
    std::env::var("TERM_PROGRAM").is_ok_and(|t| PROGRAMS.iter().any(|p| t.contains(p)))
        || std::env::var("LC_TERMINAL").is_ok_and(|t| t.contains("iTerm"))
        || std::env::var("ITERM_SESSION_ID").is_ok_and(|v| !v.is_empty())
}

fn tmux(args: &[&str]) -> Option<String> {
    let out = Command::new("tmux").args(args).stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn with_target<'a>(pane: &'a Option<String>, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    if let Some(p) = pane {
        v.push("-t");
        v.push(p);
    }
    v
}

/// `allow-passthrough` for the pane: Some(true) for on/all.
fn tmux_passthrough(pane: &Option<String>) -> Option<bool> {
    let mut args = with_target(pane, &["show", "-A", "-p", "-v"]);
    args.push("allow-passthrough");
    tmux(&args).map(|v| v == "on" || v == "all")
}

fn tmux_set_passthrough(pane: &Option<String>, value: &str) -> bool {
    let mut args = with_target(pane, &["set", "-p"]);
    args.push("allow-passthrough");
    args.push(value);
    tmux(&args).is_some()
}

/// `(pane offset (columns, rows), client cell size)`.
pub(super) type TmuxGeometry = ((u16, u16), Option<(u16, u16)>);

/// Our pane's top-left corner in the outer terminal (columns, rows), counting a status line at the top, and the
/// attached client's cell size in pixels when tmux knows it (tmux 3.3 reports 16x32 through the pane's ioctl when
/// the pane was started before any client attached).
pub(super) fn tmux_geometry(pane: Option<&str>) -> Option<TmuxGeometry> {
    const FMT: &str =
        "#{pane_left}|#{pane_top}|#{status}|#{status-position}|#{client_cell_width}|#{client_cell_height}";
    let s = match pane {
        Some(p) => tmux(&["display", "-p", "-t", p, FMT])?,
        None => tmux(&["display", "-p", FMT])?,
    };
    parse_tmux_geometry(&s)
}

fn parse_tmux_geometry(s: &str) -> Option<TmuxGeometry> {
    let f: Vec<&str> = s.split('|').map(str::trim).collect();
    let left: u16 = f.first()?.parse().ok()?;
    let mut top: u16 = f.get(1)?.parse().ok()?;
    if f.get(3) == Some(&"top") {
        top += match f.get(2) {
            Some(&"off") | None => 0,
            Some(&"on") => 1,
            Some(n) => n.parse().unwrap_or(1),
        };
    }
    let cell = match (f.get(4).and_then(|w| w.parse().ok()), f.get(5).and_then(|h| h.parse().ok())) {
        (Some(w), Some(h)) if w > 0 && h > 0 => Some((w, h)),
        _ => None,
    };
    Some(((left, top), cell))
}

fn tmux_info() -> TmuxInfo {
    let pane = std::env::var("TMUX_PANE").ok().filter(|p| !p.is_empty());
    let pane_offset = tmux_geometry(pane.as_deref()).map(|g| g.0).unwrap_or((0, 0));
    let passthrough = tmux_passthrough(&pane);
    TmuxInfo { pane, pane_offset, passthrough, ..TmuxInfo::default() }
}

/// Make sure passthrough is on for our pane. Returns whether it is usable (unknown counts as usable: the probe or
/// the user's choice decides).
fn ensure_passthrough(t: &mut TmuxInfo) -> bool {
    match t.passthrough {
        Some(true) | None => true,
        Some(false) => {
            if env_is(ENV_TMUX_PASSTHROUGH, "0") {
                return false;
            }
            if tmux_set_passthrough(&t.pane, "on") {
                t.passthrough = Some(true);
                t.enabled_passthrough = true;
                true
            } else {
                false
            }
        }
    }
}

/// tmux tells a pane of its window being shown again (`ESC [ I`) only with the server option `focus-events` on
/// (off by default, seen with tmux 3.3a). Sixel and iTerm2 images are not in tmux's grid, so after a window switch
/// they are gone until the app repaints: kontext turns the option on when it draws them inside tmux, and off
/// again when it leaves (`Graphics::restore_terminal_settings`). `KONTEXT_TMUX_FOCUS_EVENTS=0` forbids it.
fn ensure_focus_events(t: &mut TmuxInfo) {
    if env_is(ENV_TMUX_FOCUS_EVENTS, "0") {
        return;
    }
    if tmux(&["show", "-s", "-v", "focus-events"]).as_deref() == Some("off")
        && tmux(&["set", "-s", "focus-events", "on"]).is_some()
    {
        t.enabled_focus_events = true;
    }
}

/// Puts back the tmux server options kontext changed for itself.
pub(super) fn restore_tmux(t: &mut TmuxInfo) {
    if t.enabled_focus_events && tmux(&["set", "-s", "focus-events", "off"]).is_some() {
        t.enabled_focus_events = false;
    }
}

fn undo_passthrough(t: &mut TmuxInfo) {
    if t.enabled_passthrough && tmux_set_passthrough(&t.pane, "off") {
        t.passthrough = Some(false);
        t.enabled_passthrough = false;
    }
}

/// Cell size from `TIOCGWINSZ` (xterm and tmux fill in the pixel fields).
fn ioctl_font_size() -> Option<(u16, u16)> {
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO] {
        // SAFETY: TIOCGWINSZ writes a `winsize` into the struct we pass; fd is a plain descriptor number.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
        if rc == 0 && ws.ws_col > 0 && ws.ws_row > 0 && ws.ws_xpixel > 0 && ws.ws_ypixel > 0 {
            return Some((ws.ws_xpixel / ws.ws_col, ws.ws_ypixel / ws.ws_row));
        }
    }
    None
}

fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// Temporarily turn off canonical mode and echo on stdin (if the app has not entered raw mode yet).
struct RawGuard(Option<libc::termios>);

impl RawGuard {
    fn new() -> RawGuard {
        // SAFETY: tcgetattr/tcsetattr on stdin with a zeroed termios that tcgetattr fills in.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
                return RawGuard(None);
            }
            if t.c_lflag & (libc::ICANON | libc::ECHO) == 0 {
                return RawGuard(None);
            }
            let orig = t;
            t.c_lflag &= !(libc::ICANON | libc::ECHO);
            t.c_cc[libc::VMIN] = 1;
            t.c_cc[libc::VTIME] = 0;
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t);
            RawGuard(Some(orig))
        }
    }
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        if let Some(orig) = self.0 {
            // SAFETY: restoring the attributes read in `new`.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &orig) };
        }
    }
}

/// Write the query and read replies until the DSR answer or the deadline. Reads one byte at a time only when
/// `poll` says one is there, so nothing past the terminator is consumed and nothing keeps reading afterwards.
fn probe(tmux: bool, deadline: Duration) -> std::io::Result<ProbeReport> {
    let start = Instant::now();
    let _raw = RawGuard::new();
    {
        let mut out = std::io::stdout().lock();
        out.write_all(query(tmux, true).as_bytes())?;
        out.flush()?;
    }
    let mut parser = ReplyParser::default();
    while !parser.report.answered {
        let left = deadline.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        let mut pfd = libc::pollfd { fd: libc::STDIN_FILENO, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().max(1) as libc::c_int) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            continue;
        }
        if pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 && pfd.revents & libc::POLLIN == 0 {
            break;
        }
        let mut b = [0u8; 1];
        // SAFETY: reading one byte into a one-byte buffer.
        let r = unsafe { libc::read(libc::STDIN_FILENO, b.as_mut_ptr().cast(), 1) };
        if r == 1 {
            parser.push(b[0]);
        } else if r == 0 {
            break;
        }
    }
    let mut report = parser.report;
    report.elapsed = start.elapsed();
    Ok(report)
}

/// What [`detect`] would choose, from the environment alone and without the terminal probe (which
/// waits for the terminal's answer): for `kontext doctor`.
pub fn decision_without_probe(requested: GraphicsMode) -> String {
    let (mode, origin) = match (requested, GraphicsMode::from_env()) {
        (GraphicsMode::Auto, Some(m)) if m != GraphicsMode::Auto => (m, format!("from {}", super::ENV_GRAPHICS)),
        (GraphicsMode::Auto, _) => (GraphicsMode::Auto, String::new()),
        (m, _) => (m, "as configured".to_string()),
    };
    let tmux = tmux_from_env();
    let tmux_note = if tmux { "; inside tmux, pixels need allow-passthrough (kontext turns it on)" } else { "" };
    if mode != GraphicsMode::Auto {
        return format!("{mode} ({origin}){tmux_note}");
    }
    if !(is_tty(libc::STDIN_FILENO) && is_tty(libc::STDOUT_FILENO)) {
        return "halfblocks here (not a terminal); in a terminal a probe decides when the studio starts".into();
    }
    let hint = if std::env::var("WEZTERM_EXECUTABLE").is_ok_and(|v| !v.is_empty()) {
        "iterm2 (WezTerm)"
    } else if std::env::var("KONSOLE_VERSION").is_ok_and(|v| !v.is_empty()) {
        "iterm2 hints or halfblocks (Konsole: kitty and sixel are not used)"
    } else if iterm2_hint() {
        "kitty or sixel if the terminal answers the probe, else iterm2"
    } else {
        "kitty or sixel if the terminal answers the probe, else halfblocks"
    };
    format!("auto: {hint}; a probe runs when the studio starts{tmux_note}")
}

/// Decides, then says in the log which mode was chosen and why.
pub(super) fn detect(requested: GraphicsMode, deadline: Duration) -> Graphics {
    let g = decide(requested, deadline);
    tracing::info!(
        mode = %g.mode(),
        describe = %g.describe(),
        reason = %g.reason(),
        terminal = ?g.terminal(),
        background = ?g.background(),
        typed_during_probe = g.typed_during_probe().len(),
        "graphics mode chosen"
    );
    g
}

fn decide(requested: GraphicsMode, deadline: Duration) -> Graphics {
    let (mode, origin) = match requested {
        GraphicsMode::Auto => match GraphicsMode::from_env() {
            Some(m) if m != GraphicsMode::Auto => (m, format!("env {}", super::ENV_GRAPHICS)),
            _ => (GraphicsMode::Auto, "probe".to_string()),
        },
        m => (m, "forced".to_string()),
    };
    let ioctl_font = ioctl_font_size();
    let in_tmux = tmux_from_env();
    let mut g = Graphics {
        mode,
        font_size: ioctl_font.unwrap_or(DEFAULT_FONT_SIZE),
        tmux: None,
        reason: match requested {
            GraphicsMode::Auto => format!("{mode} from {}", super::ENV_GRAPHICS),
            _ => format!("{mode} as asked (--graphics or the config's graphics)"),
        },
        origin,
        ..Graphics::halfblocks()
    };

    if mode != GraphicsMode::Auto {
        if in_tmux {
            let mut t = tmux_info();
            if mode.is_pixel() && !ensure_passthrough(&mut t) {
                g.mode = GraphicsMode::Halfblocks;
                g.note = Some(format!("{mode} needs tmux allow-passthrough"));
                g.reason = format!("{mode} was asked for, but tmux allow-passthrough is off and may not be changed");
            }
            if matches!(g.mode, GraphicsMode::Sixel | GraphicsMode::Iterm2) {
                ensure_focus_events(&mut t);
            }
            g.tmux = Some(t);
        }
        return g;
    }

    let tty = is_tty(libc::STDIN_FILENO) && is_tty(libc::STDOUT_FILENO);
    if !tty {
        g.mode = GraphicsMode::Halfblocks;
        g.note = Some("no tty".into());
        g.reason = "stdin or stdout is not a terminal: no probe".into();
        g.tmux = in_tmux.then(TmuxInfo::default);
        return g;
    }

    let mut tmux = in_tmux.then(tmux_info);
    let passthrough_ok = tmux.as_mut().is_none_or(ensure_passthrough);
    if !passthrough_ok {
        // Nothing would reach the outer terminal: do not waste the deadline.
        g.mode = GraphicsMode::Halfblocks;
        g.note = Some("tmux allow-passthrough is off".into());
        g.reason = format!("tmux allow-passthrough is off and {ENV_TMUX_PASSTHROUGH}=0 forbids turning it on");
        g.tmux = tmux;
        return g;
    }
    let report = probe(in_tmux, deadline);
    tracing::info!(?report, in_tmux, "graphics probe");

    let blacklist_pixels = std::env::var("KONSOLE_VERSION").is_ok_and(|v| !v.is_empty());
    let wezterm = std::env::var("WEZTERM_EXECUTABLE").is_ok_and(|v| !v.is_empty());
    let mut chosen = GraphicsMode::Halfblocks;
    let mut note = None;
    let mut reason = String::from("no pixel protocol answered the probe");
    match &report {
        Ok(r) => {
            g.terminal = r.terminal.clone();
            g.background = r.background;
            g.typed = r.stray.clone();
            if let Some(cs) = r.cell_size {
                g.font_size = cs;
            }
            let placeholders = if r.kitty { kitty_placeholders_fit(in_tmux, tmux.as_ref()) } else { Ok(()) };
            if wezterm {
                chosen = GraphicsMode::Iterm2;
                reason = "WezTerm (WEZTERM_EXECUTABLE): iTerm2 images".into();
            } else if r.kitty && !blacklist_pixels && !old_kitty(r.terminal.as_deref()) && placeholders.is_ok() {
                chosen = GraphicsMode::Kitty;
                reason = "the terminal accepted the kitty graphics query".into();
            } else if r.sixel && !blacklist_pixels {
                chosen = GraphicsMode::Sixel;
                reason = "the terminal lists sixel (4) in its device attributes (DA1)".into();
            } else if iterm2_hint() {
                chosen = GraphicsMode::Iterm2;
                reason = "TERM_PROGRAM / LC_TERMINAL name an iTerm2-compatible terminal".into();
            }
            if !r.answered {
                note = Some(format!("no answer in {} ms", deadline.as_millis()));
                reason = format!("{reason}; the terminal did not answer within {} ms", deadline.as_millis());
            } else if r.kitty && old_kitty(r.terminal.as_deref()) && !chosen.is_pixel() {
                note = Some("kitty < 0.28 has no unicode placeholders".into());
            } else if let (Err(why), GraphicsMode::Sixel | GraphicsMode::Halfblocks) = (&placeholders, chosen) {
                note = Some(why.clone());
            }
            if r.kitty && chosen != GraphicsMode::Kitty {
                let why = match &placeholders {
                    Err(why) => why.clone(),
                    Ok(()) if old_kitty(r.terminal.as_deref()) => "kitty < 0.28 has no unicode placeholders".into(),
                    Ok(()) => "kitty graphics are not used in this terminal".into(),
                };
                reason = format!("{reason}; kitty graphics answered but were not used: {why}");
            }
            if let Some(t) = &r.terminal {
                reason = format!("{reason} (terminal: {})", crate::sanitize::one_line(t));
            }
        }
        Err(e) => {
            note = Some(format!("probe failed: {e}"));
            reason = format!("the probe failed: {e}");
        }
    }
    // Inside tmux, the client's cell size beats the pane's ioctl (which may be tmux's 16x32 default).
    if let Some(t) = &tmux
        && report.as_ref().is_ok_and(|r| r.cell_size.is_none())
        && let Some((_, Some(cell))) = tmux_geometry(t.pane.as_deref())
    {
        g.font_size = cell;
    }
    if chosen.is_pixel() && ioctl_font.is_none() && report.as_ref().is_ok_and(|r| r.cell_size.is_none()) {
        note = Some("cell size unknown".into());
        reason = format!("{reason}; but the cell size in pixels is unknown, so halfblocks");
        chosen = GraphicsMode::Halfblocks;
    }
    if let Some(t) = &mut tmux {
        if !chosen.is_pixel() {
            undo_passthrough(t);
        }
        if matches!(chosen, GraphicsMode::Sixel | GraphicsMode::Iterm2) {
            ensure_focus_events(t);
        }
    }
    g.mode = chosen;
    g.note = note;
    g.reason = format!("{chosen}: {reason}");
    g.tmux = tmux;
    g
}

/// Kitty's images are placed with unicode placeholder characters (U+10EEEE and combining marks). Inside tmux they
/// only survive when tmux's client is UTF-8: a client started without a UTF-8 locale (ssh without LANG) gets
/// every wide character as `_`. Outside tmux the terminal itself decodes UTF-8 and the locale does not matter.
fn kitty_placeholders_fit(in_tmux: bool, info: Option<&TmuxInfo>) -> Result<(), String> {
    if !in_tmux {
        return Ok(());
    }
    let pane = info.and_then(|t| t.pane.clone());
    let mut args = with_target(&pane, &["display", "-p"]);
    args.push("#{client_utf8}");
    placeholders_decision(tmux(&args).as_deref(), &locale())
}

/// The decision of [`kitty_placeholders_fit`] inside tmux, from `#{client_utf8}` (`1`, `0`, or empty when no
/// client is attached) and the locale (`LC_ALL`, else `LC_CTYPE`, else `LANG`) when tmux does not say.
pub fn placeholders_decision(client_utf8: Option<&str>, locale: &str) -> Result<(), String> {
    match client_utf8.map(str::trim) {
        Some("1") => Ok(()),
        Some("0") => Err("the tmux client is not UTF-8 (kitty placeholders would show as _)".into()),
        _ if locale_is_utf8(locale) => Ok(()),
        _ => Err(format!("the locale {locale:?} is not UTF-8 (kitty placeholders would show as _ in tmux)")),
    }
}

fn locale() -> String {
    ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "C".into())
}

fn locale_is_utf8(locale: &str) -> bool {
    let l = locale.to_ascii_lowercase();
    l.contains("utf-8") || l.contains("utf8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmux_geometry_counts_a_top_status_line_and_reads_the_client_cell() {
        assert_eq!(parse_tmux_geometry("28|0|on|bottom|10|20"), Some(((28, 0), Some((10, 20)))));
        assert_eq!(parse_tmux_geometry("0|3|on|top||"), Some(((0, 4), None)));
        assert_eq!(parse_tmux_geometry("0|0|2|top|9|18\n"), Some(((0, 2), Some((9, 18)))));
        assert_eq!(parse_tmux_geometry("garbage"), None);
    }

    #[test]
    fn kitty_placeholders_need_a_utf8_tmux_client() {
        assert!(placeholders_decision(Some("1"), "C").is_ok(), "tmux says UTF-8: the locale does not matter");
        let no = placeholders_decision(Some("0"), "en_US.UTF-8").unwrap_err();
        assert!(no.contains("not UTF-8"), "{no}");
        assert!(placeholders_decision(Some(""), "de_DE.utf8").is_ok(), "no client: the locale decides");
        assert!(placeholders_decision(None, "C").is_err(), "ssh without LANG");
    }
}
