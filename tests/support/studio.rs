//! Shared by the studio's tests: an `App` as the studio builds it (on the emulator, no
//! thumbnails), key presses, whole-screen rendering, and the binary in a pseudo-terminal.

use std::path::Path;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use kontext::model::Draft;
use kontext::tui::action::Keymap;
use kontext::tui::app::{App, AppContext};
use kontext::tui::message::{Effect, Message};
use kontext::tui::view::{self, NoImages, theme::Theme};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

pub fn context(keymap: Keymap) -> AppContext {
    AppContext::new(keymap)
}

/// A fresh studio with the default keys.
pub fn app() -> App {
    App::new(context(Keymap::default()), &Draft::default())
}

pub fn press(app: &mut App, code: KeyCode, mods: KeyModifiers) -> Vec<Effect> {
    app.update(Message::Input(Event::Key(KeyEvent::new(code, mods))))
}

pub fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    press(app, code, KeyModifiers::NONE)
}

pub fn ctrl(app: &mut App, c: char) -> Vec<Effect> {
    press(app, KeyCode::Char(c), KeyModifiers::CONTROL)
}

/// Alt-1 … Alt-6: focus a pane by number.
pub fn focus(app: &mut App, n: char) -> Vec<Effect> {
    press(app, KeyCode::Char(n), KeyModifiers::ALT)
}

pub fn typ(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

pub fn paste(app: &mut App, text: &str) -> Vec<Effect> {
    app.update(Message::Input(Event::Paste(text.into())))
}

/// A prompt and one image URL: ready to submit.
pub fn ready(app: &mut App) {
    typ(app, "make it blue");
    focus(app, '2');
    paste(app, "https://a.example/x.png\n");
}

/// The whole screen at `w` x `h`, monochrome, as text.
pub fn render(app: &mut App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(f, app, &mut NoImages, &Theme::MONO)).unwrap();
    t.backend().to_string()
}

/// The `kontext` binary for a pseudo-terminal: data and config in `home`, no key or hosts from
/// the environment, the fast emulator, halfblock thumbnails (no terminal probe).
pub fn pty_command(home: &Path) -> portable_pty::CommandBuilder {
    let mut cmd = portable_pty::CommandBuilder::new(super::BIN);
    cmd.cwd(home);
    for var in super::SCRUBBED_ENV {
        cmd.env_remove(var);
    }
    // The studio would otherwise take the test runner's tmux for its own.
    for var in ["TMUX", "TMUX_PANE"] {
        cmd.env_remove(var);
    }
    cmd.env("TERM", "xterm-256color");
    // The studio writes outputs into the pictures folder under HOME unless configured: keep
    // them in the test's folder (and away from a user-dirs.dirs of the real home).
    cmd.env("HOME", home);
    cmd.env_remove("XDG_CONFIG_HOME");
    cmd.env("KONTEXT_DATA_DIR", home.join("data"));
    cmd.env("KONTEXT_CONFIG", home.join("config.toml"));
    cmd.env("KONTEXT_EMULATOR_PROFILE", "fast");
    cmd.env("KONTEXT_GRAPHICS", "halfblocks");
    cmd
}
