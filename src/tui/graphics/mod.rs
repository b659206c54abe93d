//! Terminal image thumbnails for the TUI, built on `ratatui-image`.
//!
//! * [`Graphics`] decides *how* pixels reach the terminal (kitty, sixel, iTerm2, halfblocks or none), at which
//!   font size, and whether escapes must be wrapped for tmux. [`Graphics::detect`] probes the terminal once.
//! * [`Thumbnails`] decodes, downscales and encodes images off the UI task, caches the result and draws it into a
//!   ratatui [`Buffer`](ratatui::buffer::Buffer) without ever blocking.
//!
//! See `docs/GRAPHICS.md` for the decisions (ratatui-image version, tmux passthrough, SSH) and what was seen in a
//! real xterm and tmux.

mod detect;
mod encode;
mod replies;
mod thumbnails;
mod typed;

use std::fmt;
use std::str::FromStr;

pub use detect::{decision_without_probe, placeholders_decision};
pub use replies::{ProbeReport, old_kitty, parse_replies};
pub use thumbnails::{ThumbSource, ThumbStats, ThumbnailReady, Thumbnails};
pub use typed::typed_events;

/// Environment variable that overrides `auto` detection (same values as `--graphics`).
pub const ENV_GRAPHICS: &str = "KONTEXT_GRAPHICS";
/// Set to `0` to forbid kontext from running `tmux set -p allow-passthrough on` for its own pane.
pub const ENV_TMUX_PASSTHROUGH: &str = "KONTEXT_TMUX_PASSTHROUGH";
/// Set to `0` to forbid kontext from turning tmux's `focus-events` on (it repaints sixels on focus-in).
pub const ENV_TMUX_FOCUS_EVENTS: &str = "KONTEXT_TMUX_FOCUS_EVENTS";

/// How images are drawn. `Auto` is only a request; [`Graphics::mode`] always reports a concrete mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GraphicsMode {
    #[default]
    Auto,
    Kitty,
    Sixel,
    Iterm2,
    Halfblocks,
    None,
}

impl GraphicsMode {
    pub const ALL: [GraphicsMode; 6] = [
        GraphicsMode::Auto,
        GraphicsMode::Kitty,
        GraphicsMode::Sixel,
        GraphicsMode::Iterm2,
        GraphicsMode::Halfblocks,
        GraphicsMode::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GraphicsMode::Auto => "auto",
            GraphicsMode::Kitty => "kitty",
            GraphicsMode::Sixel => "sixel",
            GraphicsMode::Iterm2 => "iterm2",
            GraphicsMode::Halfblocks => "halfblocks",
            GraphicsMode::None => "none",
        }
    }

    /// Modes that send pixels through an escape sequence (and so need tmux passthrough inside tmux).
    pub fn is_pixel(self) -> bool {
        matches!(self, GraphicsMode::Kitty | GraphicsMode::Sixel | GraphicsMode::Iterm2)
    }

    /// The value of `KONTEXT_GRAPHICS`, if it is set and valid.
    pub fn from_env() -> Option<GraphicsMode> {
        std::env::var(ENV_GRAPHICS).ok().and_then(|v| v.parse().ok())
    }
}

/// `"auto" | "kitty" | "sixel" | "iterm2" | "halfblocks" | "none"` (case-insensitive; a few aliases).
impl FromStr for GraphicsMode {
    type Err = ParseGraphicsModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(GraphicsMode::Auto),
            "kitty" | "kgp" => Ok(GraphicsMode::Kitty),
            "sixel" | "sixels" => Ok(GraphicsMode::Sixel),
            "iterm2" | "iterm" => Ok(GraphicsMode::Iterm2),
            "halfblocks" | "halfblock" | "blocks" => Ok(GraphicsMode::Halfblocks),
            "none" | "off" | "text" => Ok(GraphicsMode::None),
            _ => Err(ParseGraphicsModeError(s.to_string())),
        }
    }
}

impl fmt::Display for GraphicsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown graphics mode {0:?} (expected auto, kitty, sixel, iterm2, halfblocks or none)")]
pub struct ParseGraphicsModeError(pub String);

/// Where we are running inside tmux, as far as drawing is concerned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TmuxInfo {
    /// `$TMUX_PANE` (e.g. `%3`), if known.
    pub pane: Option<String>,
    /// Offset of our pane inside the outer terminal (cells), needed to place sixel / iTerm2 images that travel
    /// through passthrough (tmux does not move the outer cursor for them).
    pub pane_offset: (u16, u16),
    /// Whether `allow-passthrough` is on (or was turned on by us) for our pane. `None`: not checked.
    pub passthrough: Option<bool>,
    /// We ran `tmux set -p allow-passthrough on` ourselves.
    pub enabled_passthrough: bool,
    /// We ran `tmux set -s focus-events on` ourselves (and turn it off when the studio ends).
    pub enabled_focus_events: bool,
}

/// The resolved graphics configuration: protocol, font size in pixels, tmux wrapping. Cheap to clone.
#[derive(Debug, Clone, PartialEq)]
pub struct Graphics {
    mode: GraphicsMode,
    font_size: (u16, u16),
    tmux: Option<TmuxInfo>,
    /// How the mode was chosen, for `describe()` (e.g. "probe", "forced", "env KONTEXT_GRAPHICS").
    origin: String,
    /// Extra note for `describe()`, e.g. why we fell back to halfblocks.
    note: Option<String>,
    /// The terminal's XTVERSION answer, if the probe got one (e.g. `XTerm(379)`).
    terminal: Option<String>,
    /// The terminal's background colour (OSC 11), if the probe got it.
    background: Option<(u8, u8, u8)>,
    /// Keys the user typed while the probe waited for answers, for the app's event stream.
    typed: Vec<u8>,
    /// Why this mode, in a sentence for the log.
    reason: String,
}

/// Font size assumed when the terminal reports none (the same default ratatui-image uses).
pub const DEFAULT_FONT_SIZE: (u16, u16) = (10, 20);

impl Graphics {
    /// Decide how to draw images. Call once after entering raw mode and the alternate screen, and BEFORE any
    /// `EventStream` reads stdin.
    ///
    /// * A concrete `mode` is used as is (font size from the tty ioctl); inside tmux, passthrough is checked and,
    ///   for pixel modes, enabled for our pane.
    /// * `Auto`: `KONTEXT_GRAPHICS` wins if set; otherwise the terminal is probed (kitty query, DA1 for sixel,
    ///   cell size, DSR as terminator) with a 300 ms deadline, through passthrough when inside tmux. Replies are
    ///   read with `poll` byte by byte and reading stops at the DSR answer, so keys typed afterwards stay in the
    ///   tty for the app; anything that was not a reply is kept in [`Graphics::typed_during_probe`].
    /// * No tty (tests, pipes): no probe, halfblocks.
    pub fn detect(mode: GraphicsMode) -> Graphics {
        detect::detect(mode, detect::DEFAULT_DEADLINE)
    }

    /// Like [`Graphics::detect`] with a custom probe deadline.
    pub fn detect_with_deadline(mode: GraphicsMode, deadline: std::time::Duration) -> Graphics {
        detect::detect(mode, deadline)
    }

    /// Deterministic halfblocks at 10x20, no tmux handling: for tests.
    pub fn halfblocks() -> Graphics {
        Graphics {
            mode: GraphicsMode::Halfblocks,
            font_size: DEFAULT_FONT_SIZE,
            tmux: None,
            origin: "forced".into(),
            note: None,
            terminal: None,
            background: None,
            typed: Vec::new(),
            reason: "halfblocks, chosen by the program".into(),
        }
    }

    /// A forced protocol and font size, no probing and no side effects. tmux wrapping follows the environment
    /// (`$TMUX`, or `$TERM` starting with `tmux`/`screen`), with the pane assumed at the terminal's origin.
    /// `Auto` is treated as halfblocks.
    pub fn with_protocol(mode: GraphicsMode, font_size: (u16, u16)) -> Graphics {
        let mode = if mode == GraphicsMode::Auto { GraphicsMode::Halfblocks } else { mode };
        let font_size = sane_font_size(font_size);
        let tmux = detect::tmux_from_env().then(|| TmuxInfo {
            pane: std::env::var("TMUX_PANE").ok().filter(|p| !p.is_empty()),
            ..TmuxInfo::default()
        });
        Graphics { mode, font_size, tmux, reason: format!("{mode}, chosen by the program"), ..Graphics::halfblocks() }
    }

    /// Same as [`Graphics::with_protocol`] but with explicit tmux handling (for tests and tools).
    pub fn with_tmux(mut self, tmux: Option<TmuxInfo>) -> Graphics {
        self.tmux = tmux;
        self
    }

    /// One line for the status bar / help, e.g. `sixel 10x20 (tmux passthrough)`.
    pub fn describe(&self) -> String {
        let mut s = match self.mode {
            GraphicsMode::None => "none".to_string(),
            GraphicsMode::Halfblocks => "halfblocks".to_string(),
            m => format!("{m} {}x{}", self.font_size.0, self.font_size.1),
        };
        let mut extras: Vec<String> = Vec::new();
        if self.mode == GraphicsMode::None {
            extras.push("text placeholders".into());
        }
        if let Some(t) = &self.tmux {
            if self.mode.is_pixel() {
                extras.push(if t.enabled_passthrough {
                    "tmux passthrough, enabled for this pane".into()
                } else {
                    "tmux passthrough".into()
                });
            } else {
                extras.push("tmux".into());
            }
            if t.enabled_focus_events {
                extras.push("focus-events turned on".into());
            }
        }
        if self.origin != "probe" {
            extras.push(self.origin.clone());
        }
        if let Some(n) = &self.note {
            extras.push(n.clone());
        }
        if !extras.is_empty() {
            s.push_str(" (");
            s.push_str(&extras.join(", "));
            s.push(')');
        }
        s
    }

    /// The concrete mode in use (never `Auto`).
    pub fn mode(&self) -> GraphicsMode {
        self.mode
    }

    /// Cell size in pixels `(width, height)`.
    pub fn font_size(&self) -> (u16, u16) {
        self.font_size
    }

    pub fn tmux(&self) -> Option<&TmuxInfo> {
        self.tmux.as_ref()
    }

    /// The terminal's name and version as it reported them (XTVERSION), for a `--doctor` / help screen.
    pub fn terminal(&self) -> Option<&str> {
        self.terminal.as_deref()
    }

    /// The terminal's background colour (OSC 11), when it answered: for choosing a light or dark theme.
    pub fn background(&self) -> Option<(u8, u8, u8)> {
        self.background
    }

    /// Bytes the user typed while the probe waited (kept in the process instead of pushed back into the tty with
    /// `TIOCSTI`, which kernels since 6.2 may forbid). Feed them to the event stream before the tty's own input.
    pub fn typed_during_probe(&self) -> &[u8] {
        &self.typed
    }

    /// Why this mode was chosen, in a sentence (written to the log).
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Put back what kontext changed in tmux for itself (the `focus-events` server option), when the studio ends.
    /// `allow-passthrough` stays: it belongs to this pane only.
    pub fn restore_terminal_settings(&mut self) {
        if let Some(t) = &mut self.tmux {
            detect::restore_tmux(t);
        }
    }

    /// Re-read our tmux pane's position (after a resize or a split) and the client's cell size, so passthrough
    /// images land in the right place at the right size. No-op outside tmux or when the pane is unknown.
    pub fn refresh_tmux_geometry(&mut self) {
        if let Some(t) = &mut self.tmux
            && let Some(pane) = t.pane.clone()
            && let Some((off, cell)) = detect::tmux_geometry(Some(&pane))
        {
            t.pane_offset = off;
            if let Some(cell) = cell
                && self.mode.is_pixel()
            {
                self.font_size = cell;
            }
        }
    }
}

fn sane_font_size((w, h): (u16, u16)) -> (u16, u16) {
    if w == 0 || h == 0 || w > 200 || h > 400 { DEFAULT_FONT_SIZE } else { (w, h) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_round_trips_through_display_and_from_str() {
        for m in GraphicsMode::ALL {
            assert_eq!(m.to_string().parse::<GraphicsMode>().unwrap(), m);
        }
        assert_eq!("SIXEL".parse::<GraphicsMode>().unwrap(), GraphicsMode::Sixel);
        assert!("png".parse::<GraphicsMode>().is_err());
    }

    #[test]
    fn describe_mentions_protocol_font_and_tmux() {
        let g = Graphics::with_protocol(GraphicsMode::Sixel, (10, 20)).with_tmux(Some(TmuxInfo::default()));
        assert_eq!(g.describe(), "sixel 10x20 (tmux passthrough, forced)");
        assert_eq!(Graphics::halfblocks().describe(), "halfblocks (forced)");
        assert_eq!(Graphics::with_protocol(GraphicsMode::Auto, (0, 0)).font_size(), DEFAULT_FONT_SIZE);
    }
}
