//! Show an image through kontext's thumbnail module, the way the TUI will.
//!
//! ```text
//! cargo run --example thumb -- [--graphics auto|kitty|sixel|iterm2|halfblocks|none] [--seconds N]
//!                              [--report FILE] [IMAGE...]
//! ```
//! Defaults: `auto`, `docs/samples/woman.png` and `docs/samples/duckling.png`, until `q` is pressed (or N s).
//! `--report` writes the detected graphics and cache stats to FILE (used by the term-shot checks in
//! docs/GRAPHICS.md).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kontext::tui::graphics::{Graphics, GraphicsMode, ThumbSource, Thumbnails};
use ratatui::layout::{Constraint, Layout};
use ratatui::widgets::{Block, Paragraph};

fn main() -> std::io::Result<()> {
    let mut mode = GraphicsMode::Auto;
    let mut seconds: Option<f64> = None;
    let mut report: Option<PathBuf> = None;
    let mut images = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--graphics" => mode = args.next().and_then(|v| v.parse().ok()).unwrap_or(GraphicsMode::Auto),
            "--seconds" => seconds = args.next().and_then(|v| v.parse().ok()),
            "--report" => report = args.next().map(PathBuf::from),
            _ => images.push(PathBuf::from(a)),
        }
    }
    if images.is_empty() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        images = vec![root.join("docs/samples/woman.png"), root.join("docs/samples/duckling.png")];
    }
    let sources: Vec<ThumbSource> = images.into_iter().map(ThumbSource::File).collect();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let _guard = rt.enter();

    let mut terminal = ratatui::init();
    let started = Instant::now();
    let graphics = Graphics::detect(mode);
    let detect_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut thumbs = Thumbnails::new(graphics.clone(), tx);
    let status = format!("graphics: {} — detected in {detect_ms:.1} ms — q quits", graphics.describe());

    let deadline = seconds.map(|s| Instant::now() + Duration::from_secs_f64(s));
    let mut frames = 0u32;
    loop {
        while let Ok(ready) = rx.try_recv() {
            thumbs.on_ready(ready);
        }
        terminal.draw(|f| {
            let [main, bar] = Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(f.area());
            let cols = Layout::horizontal(vec![Constraint::Length(34); sources.len()]).split(main);
            for (src, col) in sources.iter().zip(cols.iter()) {
                let name = match src {
                    ThumbSource::File(p) => p.file_name().unwrap_or_default().to_string_lossy().into_owned(),
                    ThumbSource::Bytes { key, .. } => key.clone(),
                };
                let block = Block::bordered().title(name);
                let inner = block.inner(*col);
                f.render_widget(block, *col);
                thumbs.render(src, inner, f.buffer_mut());
            }
            f.render_widget(Paragraph::new(status.as_str()), bar);
            thumbs.end_frame(f.buffer_mut());
        })?;
        frames += 1;
        if frames % 10 == 1 {
            write_report(&report, &graphics, detect_ms, frames, &thumbs)?;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if crossterm::event::poll(Duration::from_millis(50))?
            && let crossterm::event::Event::Key(k) = crossterm::event::read()?
            && k.code == crossterm::event::KeyCode::Char('q')
        {
            break;
        }
    }
    ratatui::restore();
    write_report(&report, &graphics, detect_ms, frames, &thumbs)?;
    Ok(())
}

fn write_report(
    report: &Option<PathBuf>,
    graphics: &Graphics,
    detect_ms: f64,
    frames: u32,
    thumbs: &Thumbnails,
) -> std::io::Result<()> {
    let Some(path) = report else { return Ok(()) };
    let text = format!(
        "describe: {}\nterminal: {:?}\nmode: {}\nfont: {:?}\ntmux: {:?}\ndetect_ms: {detect_ms:.2}\nframes: {frames}\nstats: {:?}\n",
        graphics.describe(),
        graphics.terminal(),
        graphics.mode(),
        graphics.font_size(),
        graphics.tmux(),
        thumbs.stats()
    );
    std::fs::write(path, text)
}
