//! The terminal's answers to the probe: the query burst, and an incremental parser that takes the answers and
//! keeps everything else (keys the user typed meanwhile) in order.

use std::time::Duration;

const KITTY_QUERY: &str = "\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\";
/// The same 1-pixel query, zlib-compressed (`o=z`), as ratatui-image 11.1 probes it.
const KITTY_ZLIB_QUERY: &str = "\x1b_Gi=32,s=1,v=1,a=q,t=d,f=24,o=z;eJxjYGAAAAADAAE=\x1b\\";
const DA1: &str = "\x1b[c";
/// XTVERSION: terminal name and version (`DCS >| kitty(0.26.5) ST`); works over SSH where env hints do not.
const XTVERSION: &str = "\x1b[>q";
const CELL_SIZE: &str = "\x1b[16t";
/// OSC 11: the background colour (`ESC ] 11 ; rgb:RRRR/GGGG/BBBB ST`), to pick a light or dark theme.
const BACKGROUND: &str = "\x1b]11;?\x1b\\";
const DSR: &str = "\x1b[5n";

/// What the terminal answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeReport {
    pub kitty: bool,
    pub kitty_compression: bool,
    pub sixel: bool,
    /// From `CSI 6;h;w t`, `(width, height)`.
    pub cell_size: Option<(u16, u16)>,
    /// XTVERSION answer, e.g. `kitty(0.26.5)` or `XTerm(379)`.
    pub terminal: Option<String>,
    /// The background colour from OSC 11, 8 bits per channel.
    pub background: Option<(u8, u8, u8)>,
    /// The DSR terminator arrived (the terminal answered everything it was going to answer).
    pub answered: bool,
    /// Bytes that were not replies (keys the user typed during the probe), in the order they came. They are
    /// handed to the app's event stream (see [`Graphics::typed_during_probe`]), not pushed back into the tty.
    pub stray: Vec<u8>,
    pub elapsed: Duration,
}

/// The query burst, wrapped for tmux passthrough when `tmux` (escapes doubled).
pub fn query(tmux: bool, kitty_compression: bool) -> String {
    let mut q = String::from(KITTY_QUERY);
    if kitty_compression {
        q.push_str(KITTY_ZLIB_QUERY);
    }
    q.push_str(XTVERSION);
    q.push_str(DA1);
    q.push_str(CELL_SIZE);
    q.push_str(BACKGROUND);
    q.push_str(DSR);
    if tmux { tmux_wrap(&q) } else { q }
}

/// Wrap an escape sequence in tmux's DCS passthrough, doubling inner ESCs.
pub fn tmux_wrap(seq: &str) -> String {
    let mut out = String::with_capacity(seq.len() + seq.len() / 50 + 16);
    out.push_str("\x1bPtmux;");
    for ch in seq.chars() {
        if ch == '\x1b' {
            out.push('\x1b');
        }
        out.push(ch);
    }
    out.push_str("\x1b\\");
    out
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Ground,
    Esc,
    Csi(Vec<u8>),
    /// APC / DCS / OSC body; the flag records a pending ESC (for `ESC \`).
    Str(u8, Vec<u8>, bool),
}

/// Incremental parser for the replies we asked for. Everything else is "stray" input.
#[derive(Debug, Default)]
pub(super) struct ReplyParser {
    state: State,
    pub report: ProbeReport,
}

impl ReplyParser {
    pub fn push(&mut self, b: u8) {
        let state = std::mem::take(&mut self.state);
        self.state = match state {
            State::Ground if b == 0x1b => State::Esc,
            State::Ground => {
                self.report.stray.push(b);
                State::Ground
            }
            State::Esc => match b {
                b'[' => State::Csi(Vec::new()),
                b'_' | b'P' | b']' => State::Str(b, Vec::new(), false),
                _ => {
                    // Alt+key or a lone Escape: the user's.
                    self.report.stray.extend_from_slice(&[0x1b, b]);
                    State::Ground
                }
            },
            State::Csi(mut body) => {
                if (0x40..=0x7e).contains(&b) {
                    if !self.csi(&body, b) {
                        // An arrow, a function key, a focus report: the user's, not an answer.
                        self.report.stray.extend_from_slice(b"\x1b[");
                        self.report.stray.extend_from_slice(&body);
                        self.report.stray.push(b);
                    }
                    State::Ground
                } else if body.len() > 64 {
                    State::Ground
                } else {
                    body.push(b);
                    State::Csi(body)
                }
            }
            State::Str(kind, mut body, esc) => {
                if esc && b == b'\\' || kind == b']' && b == 0x07 {
                    self.string(kind, &body);
                    State::Ground
                } else if b == 0x1b {
                    State::Str(kind, body, true)
                } else {
                    if body.len() < 4096 {
                        body.push(b);
                    }
                    State::Str(kind, body, false)
                }
            }
        };
    }

    /// Takes in one of the answers we asked for; false for any other CSI sequence.
    fn csi(&mut self, body: &[u8], fin: u8) -> bool {
        let body = String::from_utf8_lossy(body);
        match fin {
            b'c' if body.starts_with('?') => {
                self.report.sixel |= body[1..].split(';').any(|p| p == "4");
                true
            }
            b'n' if body == "0" || body == "3" => {
                self.report.answered = true;
                true
            }
            b't' => {
                let p: Vec<u16> = body.split(';').filter_map(|x| x.parse().ok()).collect();
                if let [6, h, w] = p[..]
                    && w > 0
                    && h > 0
                {
                    self.report.cell_size = Some((w, h));
                }
                true
            }
            _ => false,
        }
    }

    fn string(&mut self, kind: u8, body: &[u8]) {
        let body = String::from_utf8_lossy(body);
        if kind == b']' {
            if let Some(colour) = body.strip_prefix("11;") {
                self.report.background = parse_rgb(colour);
            }
            return;
        }
        if kind == b'P' {
            if let Some(name) = body.strip_prefix(">|") {
                self.report.terminal = Some(name.trim().to_string());
            }
            return;
        }
        if kind != b'_' {
            return;
        }
        if let Some(rest) = body.strip_prefix('G') {
            let ok = rest.ends_with(";OK");
            if ok && rest.contains("i=31") {
                self.report.kitty = true;
            } else if ok && rest.contains("i=32") {
                self.report.kitty_compression = true;
            }
        }
    }
}

/// `rgb:RRRR/GGGG/BBBB` (1 to 4 hex digits per channel, as XParseColor) to 8 bits per channel.
fn parse_rgb(spec: &str) -> Option<(u8, u8, u8)> {
    let mut channels = spec.strip_prefix("rgb:")?.split('/').map(|c| {
        let digits = u32::try_from(c.len()).ok().filter(|n| (1..=4).contains(n))?;
        let value = u32::from_str_radix(c, 16).ok()?;
        u8::try_from(value * 255 / ((1 << (4 * digits)) - 1)).ok()
    });
    let rgb = (channels.next()??, channels.next()??, channels.next()??);
    channels.next().is_none().then_some(rgb)
}

/// Parse a complete reply stream (for tests and tools).
pub fn parse_replies(bytes: &[u8]) -> ProbeReport {
    let mut p = ReplyParser::default();
    for &b in bytes {
        p.push(b);
    }
    p.report
}

/// kitty before 0.28 answers the graphics query but has no unicode placeholders, which ratatui-image's kitty
/// protocol needs: images would stay blank. `terminal` is the XTVERSION answer.
pub fn old_kitty(terminal: Option<&str>) -> bool {
    let Some(v) = terminal.and_then(|t| t.strip_prefix("kitty(")).and_then(|t| t.strip_suffix(')')) else {
        return false;
    };
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) < (0, 28)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_xterm_vt340_replies() {
        let r = parse_replies(b"\x1b[?63;1;2;4;6;9;15;16;22;28c\x1b[0n");
        assert!(r.sixel && !r.kitty && r.answered && r.stray.is_empty());
    }

    #[test]
    fn parses_kitty_replies_and_cell_size_and_keeps_stray_keys() {
        let r = parse_replies(b"ab\x1b_Gi=31;OK\x1b\\\x1b_Gi=32;OK\x1b\\\x1b[?62;c\x1b[6;20;10t\x1b[0n");
        assert!(r.kitty && r.kitty_compression && !r.sixel && r.answered);
        assert_eq!(r.cell_size, Some((10, 20)));
        assert_eq!(r.stray, b"ab");
        let r = parse_replies(b"\x1b_Gi=31;ENOTSUPPORTED:x\x1b\\\x1b[?1;2c\x1b[0n");
        assert!(!r.kitty && !r.sixel);
    }

    #[test]
    fn xtversion_is_read_and_old_kitty_is_recognised() {
        let r = parse_replies(b"\x1b_Gi=31;OK\x1b\\\x1bP>|kitty(0.26.5)\x1b\\\x1b[?62;c\x1b[0n");
        assert_eq!(r.terminal.as_deref(), Some("kitty(0.26.5)"));
        assert!(r.kitty && old_kitty(r.terminal.as_deref()));
        assert!(!old_kitty(Some("kitty(0.28.0)")) && !old_kitty(Some("kitty(0.39.1)")));
        assert!(!old_kitty(Some("XTerm(379)")) && !old_kitty(None));
    }

    #[test]
    fn the_background_colour_is_read_and_other_csi_keys_stay_the_users() {
        let r = parse_replies(b"\x1b]11;rgb:ffff/ffff/ffff\x1b\\\x1b[A\x1b[?62;c\x1b[1;5Cx\x1b[0n");
        assert_eq!(r.background, Some((255, 255, 255)));
        assert_eq!(r.stray, b"\x1b[A\x1b[1;5Cx", "the arrow keys typed during the probe are kept");
        assert_eq!(parse_replies(b"\x1b]11;rgb:00/80/ff\x07").background, Some((0, 128, 255)));
        assert_eq!(parse_replies(b"\x1b]11;rgb:1e1e/1e1e/2e2e\x1b\\").background, Some((30, 30, 46)));
        assert_eq!(parse_replies(b"\x1b]11;garbage\x1b\\").background, None);
        assert!(query(false, false).contains("\x1b]11;?"), "the probe asks for the background");
    }

    #[test]
    fn tmux_wrap_doubles_escapes() {
        assert_eq!(tmux_wrap("\x1b[c"), "\x1bPtmux;\x1b\x1b[c\x1b\\");
        assert!(query(true, false).starts_with("\x1bPtmux;\x1b\x1b_G"));
    }
}
