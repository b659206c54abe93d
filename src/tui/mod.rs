//! The terminal studio. `App` holds the state and `update`s it from messages; `view` draws it;
//! `runtime` runs the loop and the effects; this file owns the real terminal (raw mode, alternate
//! screen, bracketed paste, restore on exit and on panic).

pub mod action;
pub mod app;
pub mod context;
pub mod cost_line;
pub mod form;
pub mod graphics;
pub mod job_store;
pub mod message;
pub mod overlay;
pub mod pane;
pub mod panes;
pub mod runtime;
pub mod sweep_dialog;
pub mod view;
pub mod widgets;

use std::io::{self, Write};

use crossterm::event::{
    DisableBracketedPaste, DisableFocusChange, EnableBracketedPaste, EnableFocusChange, EventStream,
    KeyboardEnhancementFlags, PopKeyboardEnhancementFlags, PushKeyboardEnhancementFlags,
};
use crossterm::terminal::{
    BeginSynchronizedUpdate, EndSynchronizedUpdate, EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode,
    enable_raw_mode,
};
use crossterm::{execute, queue};
use futures::StreamExt;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::runner::DEFAULT_DATA_URI_THRESHOLD;
use crate::setup::{ConnectOptions, Locations, connect};
use action::Keymap;
use app::{App, AppContext};
use graphics::{Graphics, GraphicsMode, Thumbnails};
use runtime::{Host, Runtime, Services};
use view::theme::{Theme, ThemeChoice};

/// Options of the interactive command.
#[derive(Debug, Clone, Default)]
pub struct TuiOptions {
    pub connect: ConnectOptions,
    pub graphics: Option<String>,
}

fn enter_terminal() -> io::Result<()> {
    enable_raw_mode()?;
    // Disambiguated keys let terminals with the kitty keyboard protocol report Ctrl-Enter; others
    // ignore the request. Focus reports (CSI ? 1004 h) tell us when tmux or the terminal shows us
    // again, so the screen and its sixels are repainted.
    execute!(
        io::stdout(),
        EnterAlternateScreen,
        EnableBracketedPaste,
        EnableFocusChange,
        PushKeyboardEnhancementFlags(KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES)
    )
}

fn leave_terminal() -> io::Result<()> {
    let r1 = execute!(
        io::stdout(),
        PopKeyboardEnhancementFlags,
        DisableFocusChange,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let r2 = disable_raw_mode();
    r1.and(r2)
}

/// A panic on the main thread ends the app: restore the terminal first so the message is
/// readable. A panic in a background task only fails that task (the runtime reports it as a
/// failed job): it goes to the log, and the screen stays as it is.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some("main") {
            let _ = leave_terminal();
            previous(info);
        } else {
            tracing::error!("panic in a background task: {info}");
        }
    }));
}

/// The real terminal: OSC 52 clipboard, $VISUAL/$EDITOR, synchronized updates.
struct RealTerminal;

impl Host for RealTerminal {
    fn copy(&mut self, text: &str) {
        use crossterm::clipboard::CopyToClipboard;
        let _ = execute!(io::stdout(), CopyToClipboard::to_clipboard_from(text));
    }

    fn edit(&mut self, text: &str) -> Result<String, String> {
        let editor = std::env::var("VISUAL")
            .or_else(|_| std::env::var("EDITOR"))
            .map_err(|_| "set $VISUAL or $EDITOR to edit the prompt in an editor".to_string())?;
        let mut file = tempfile::Builder::new()
            .prefix("kontext-prompt-")
            .suffix(".txt")
            .tempfile()
            .map_err(|e| format!("cannot create a temporary file: {e}"))?;
        file.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        let path = file.path().to_path_buf();
        leave_terminal().map_err(|e| e.to_string())?;
        // The editor command may carry arguments ("code -w").
        let status =
            std::process::Command::new("sh").arg("-c").arg(format!("{editor} \"$1\"")).arg("sh").arg(&path).status();
        enter_terminal().map_err(|e| e.to_string())?;
        match status {
            Ok(s) if s.success() => {
                std::fs::read_to_string(&path).map_err(|e| format!("cannot read the edited prompt: {e}"))
            }
            Ok(s) => Err(format!("the editor exited with {s}; prompt unchanged")),
            Err(e) => Err(format!("cannot run {editor}: {e}")),
        }
    }

    fn begin_frame(&mut self) {
        let _ = queue!(io::stdout(), BeginSynchronizedUpdate);
    }

    fn end_frame(&mut self) {
        let _ = execute!(io::stdout(), EndSynchronizedUpdate);
    }
}

/// Why the studio could not start; `main` prints it once and picks the exit code.
#[derive(Debug)]
pub enum StartupError {
    /// Bad configuration or options: the user can fix it (exit 2).
    Invalid(String),
    /// Something else failed (exit 1).
    Failed(String),
}

impl StartupError {
    fn invalid(e: impl std::fmt::Display) -> StartupError {
        StartupError::Invalid(e.to_string())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            StartupError::Invalid(_) => crate::exit::INVALID_INPUT,
            StartupError::Failed(_) => crate::exit::FAILURE,
        }
    }
}

impl std::fmt::Display for StartupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartupError::Invalid(m) | StartupError::Failed(m) => f.write_str(m),
        }
    }
}

/// `kontext` with no subcommand: the interactive studio. Returns its exit code, or why it could
/// not start (the caller prints that once and exits with `StartupError::exit_code`).
pub async fn main(opts: TuiOptions, locations: &Locations) -> Result<u8, StartupError> {
    let (config, _) = locations.load_config().map_err(StartupError::invalid)?;
    let keymap =
        Keymap::default().with_overrides(&config.keys).map_err(|e| StartupError::Invalid(format!("config: {e}")))?;
    let connection = connect(&config, &opts.connect).await.map_err(StartupError::invalid)?;
    let mode_text = opts.graphics.clone().or(config.graphics.clone()).unwrap_or_else(|| "auto".into());
    let mode = mode_text.parse::<GraphicsMode>().map_err(StartupError::invalid)?;
    let out_dir = crate::setup::studio_output_dir(config.output_dir.as_deref(), locations);
    let shown_out_dir = AppContext::shown_dir(&out_dir, directories::UserDirs::new().as_ref().map(|u| u.home_dir()));
    for (dir, what) in [(out_dir.as_path(), "output_dir"), (locations.data_dir().as_path(), "the data directory")] {
        crate::setup::check_writable_dir(dir, what).map_err(StartupError::invalid)?;
    }
    let history =
        crate::history::History::open(&locations.data_dir()).map_err(|e| StartupError::Failed(e.to_string()))?;
    let services = Services {
        client: connection.client.clone(),
        out_dir,
        naming: crate::runner::OutputNaming::Readable,
        history,
        data_uri_threshold: config.data_uri_threshold.unwrap_or(DEFAULT_DATA_URI_THRESHOLD),
    };
    let theme_choice = config
        .theme
        .as_deref()
        .unwrap_or("auto")
        .parse::<ThemeChoice>()
        .map_err(|e| StartupError::Invalid(format!("config: {e}")))?;

    install_panic_hook();
    enter_terminal().map_err(|e| StartupError::Failed(format!("cannot use this terminal: {e}")))?;
    // After the alternate screen, before anything reads stdin (the probe reads the replies).
    let graphics = Graphics::detect(mode);
    let typed_ahead = graphics::typed_events(graphics.typed_during_probe());
    // What the probe changed in tmux for this session, to put back when the studio ends.
    let mut tmux_changes = graphics.clone();
    let theme = Theme::from_env(config.colors, theme_choice, graphics.background());
    tracing::info!(?theme, choice = %theme_choice, background = ?graphics.background(), "theme");
    let (catalog, ignored) = crate::runner::catalog::load_catalog(&locations.data_dir());
    for problem in &ignored {
        tracing::warn!("an added endpoint description is ignored: {}", crate::sanitize::one_line(problem));
    }
    let (bundled, cached) = crate::runner::catalog::load_prices(&locations.data_dir());
    let ctx = AppContext {
        catalog: std::sync::Arc::new(catalog),
        endpoint: connection.endpoint.id().to_string(),
        prices: context::Prices { bundled, cached },
        budget: config.budget.caps(),
        target: connection.target.short(),
        graphics: graphics.describe(),
        keymap,
        data_uri_threshold: config.data_uri_threshold.unwrap_or(DEFAULT_DATA_URI_THRESHOLD),
        output_dir: shown_out_dir,
    };
    let app = App::new(ctx, &config.default_draft());
    let (thumb_tx, thumb_rx) = tokio::sync::mpsc::unbounded_channel();
    let images: Box<dyn view::ImageView> = Box::new(Thumbnails::new(graphics, thumb_tx));
    let result = async {
        let terminal = Terminal::new(CrosstermBackend::new(io::stdout()))?;
        let mut runtime = Runtime::new(terminal, app, RealTerminal, images, theme, services).with_thumbnails(thumb_rx);
        runtime.spawn_resume();
        runtime.draw()?;
        // Lets the end-to-end tests prove a panic restores the terminal (debug builds only).
        if cfg!(debug_assertions) && std::env::var_os("KONTEXT_DEBUG_PANIC").is_some() {
            panic!("KONTEXT_DEBUG_PANIC: deliberate panic after the first frame");
        }
        // Keys typed while the probe waited come first, once; then the tty (again after the editor).
        let mut typed = Some(typed_ahead);
        let input = move || {
            let first = typed.take().unwrap_or_default().into_iter().map(Ok);
            futures::stream::iter(first).chain(EventStream::new())
        };
        runtime.run(input).await.map(|()| (runtime.unfinished_jobs(), runtime.unsent_points()))
    }
    .await;
    let _ = leave_terminal();
    tmux_changes.restore_terminal_settings();
    let built_in = connection.emulator().is_some();
    connection.shutdown().await;
    match result {
        Ok(((accepted, unconfirmed), unsent)) => {
            for (sweep, count) in unsent {
                eprintln!(
                    "kontext: sweep {sweep}: {count} request(s) were never sent; `kontext sweep --continue {sweep}` sends them (after `kontext resume` finishes those sent)."
                );
            }
            if accepted > 0 && built_in {
                eprintln!(
                    "kontext: {accepted} job(s) were still running on the built-in emulator and stopped with it."
                );
            } else if accepted > 0 {
                eprintln!(
                    "kontext: {accepted} job(s) still running at fal were left to finish; the next start of kontext (or `kontext resume`) fetches their results."
                );
            }
            if unconfirmed > 0 {
                eprintln!(
                    "kontext: {unconfirmed} job(s) stopped before fal confirmed them; they were not resent (see `kontext history list`)."
                );
            }
            Ok(crate::exit::OK)
        }
        Err(e) => Err(StartupError::Failed(e.to_string())),
    }
}
