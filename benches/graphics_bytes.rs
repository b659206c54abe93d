//! Bytes on the wire per thumbnail and protocol (issue 8, part 2, item 7): what the first frame
//! that shows one thumbnail writes to the terminal, against a PNG of the image at the size it is
//! drawn (pixels = cells x the 10x20 cell). The budget: at most 1.5x that PNG for every pixel
//! protocol. Also: what moving the focus between panes costs with two thumbnails on screen (no
//! image may be sent again), and with a thumbnail re-sent after an overlay closed.
//!
//! Frames go through a real `CrosstermBackend` writing into memory, as in tests/graphics_*.rs.
//! Run: `cargo bench --bench graphics_bytes` (prints a table; exits non-zero if a budget is missed).

use std::io::{Cursor, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use image::{DynamicImage, RgbImage};
use kontext::model::Draft;
use kontext::tui::action::Keymap;
use kontext::tui::app::{App, AppContext};
use kontext::tui::graphics::{Graphics, GraphicsMode, ThumbSource, Thumbnails};
use kontext::tui::message::{Effect, Message};
use kontext::tui::panes::images::describe_images;
use kontext::tui::view::{self, ImageView, theme::Theme};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};

const CELL: (u16, u16) = (10, 20);
const BUDGET: f64 = 1.5;

#[derive(Clone, Default)]
struct Tty(Arc<Mutex<Vec<u8>>>);

impl Write for Tty {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Tty {
    fn take(&self) -> usize {
        std::mem::take(&mut *self.0.lock().unwrap()).len()
    }
}

fn terminal(w: u16, h: u16) -> (Terminal<CrosstermBackend<Tty>>, Tty) {
    let tty = Tty::default();
    let options = TerminalOptions { viewport: Viewport::Fixed(Rect::new(0, 0, w, h)) };
    (Terminal::with_options(CrosstermBackend::new(tty.clone()), options).unwrap(), tty)
}

/// A photograph stand-in: smooth gradients, a few shapes and sensor-like noise (deterministic).
fn photo(w: u32, h: u32) -> Vec<u8> {
    let mut rng: u32 = 0x1234_5678;
    let img = RgbImage::from_fn(w, h, |x, y| {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        let noise = (rng % 24) as i32 - 12;
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        let disc = ((fx - 0.6).powi(2) + (fy - 0.4).powi(2)).sqrt() < 0.2;
        let base = if disc {
            [230.0, 180.0 - 80.0 * fy, 60.0]
        } else {
            [60.0 + 120.0 * fx, 90.0 + 100.0 * fy, 160.0 - 60.0 * fx * fy]
        };
        let px = |v: f32| (v as i32 + noise).clamp(0, 255) as u8;
        image::Rgb([px(base[0]), px(base[1]), px(base[2])])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/samples").join(name)).unwrap()
}

/// The image as the terminal shows it: fitted into `area` cells at 10x20 px, never enlarged.
fn drawn(bytes: &[u8], area: Rect) -> DynamicImage {
    let img = image::load_from_memory(bytes).unwrap();
    let (w, h) = (u32::from(area.width * CELL.0), u32::from(area.height * CELL.1));
    if img.width() <= w && img.height() <= h { img } else { img.resize(w, h, image::imageops::FilterType::Triangle) }
}

/// The size of a PNG (the image crate's defaults) of the image as drawn.
fn reference_png(bytes: &[u8], area: Rect) -> usize {
    let fitted = drawn(bytes, area);
    let mut out = Cursor::new(Vec::new());
    fitted.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner().len()
}

async fn ready(
    thumbs: &mut Thumbnails,
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<kontext::tui::graphics::ThumbnailReady>,
) {
    let r = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await.expect("in time").expect("open");
    assert!(r.error().is_none(), "{:?}", r.error());
    thumbs.on_ready(r);
}

/// Bytes of the first frame showing `bytes` at `area` with `mode` (whole frame: the thumbnail is all there is).
async fn first_frame(mode: GraphicsMode, bytes: &[u8], area: Rect) -> usize {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut thumbs = Thumbnails::new(Graphics::with_protocol(mode, CELL).with_tmux(None), tx);
    let src = ThumbSource::Bytes { key: "bench".into(), bytes: bytes.to_vec().into() };
    thumbs.request(&src, area);
    ready(&mut thumbs, &mut rx).await;
    let (mut term, tty) = terminal(area.right() + 2, area.bottom() + 2);
    term.draw(|f| {
        thumbs.render(&src, area, f.buffer_mut());
        thumbs.end_frame(f.buffer_mut());
    })
    .unwrap();
    tty.take()
}

fn press(app: &mut App, code: KeyCode, modifiers: KeyModifiers) -> Vec<Effect> {
    app.update(Message::Input(Event::Key(KeyEvent::new(code, modifiers))))
}

/// (bytes of a focus change, bytes of closing the help overlay) at 120x40 with two local images, one shown.
async fn focus_and_overlay(mode: GraphicsMode) -> (usize, usize) {
    let ctx = AppContext { graphics: mode.to_string(), ..AppContext::new(Keymap::default()) };
    let mut app = App::new(ctx, &Draft::default());
    press(&mut app, KeyCode::Char('2'), KeyModifiers::ALT);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/samples");
    let paths = format!("{}\n{}\n", root.join("woman.png").display(), root.join("duckling.png").display());
    for effect in app.update(Message::Input(Event::Paste(paths))) {
        if let Effect::CheckImages { seq, items } = effect {
            app.update(Message::ImagesChecked { seq, info: describe_images(&items, 256 * 1024) });
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut thumbs = Thumbnails::new(Graphics::with_protocol(mode, CELL).with_tmux(None), tx);
    let (mut term, tty) = terminal(120, 40);
    let theme = Theme::DARK;
    let mut frame = |app: &mut App, thumbs: &mut Thumbnails| {
        term.draw(|f| {
            view::draw(f, app, thumbs, &theme);
            ImageView::end_frame(thumbs, f.buffer_mut());
        })
        .unwrap();
        tty.take()
    };
    frame(&mut app, &mut thumbs);
    ready(&mut thumbs, &mut rx).await;
    frame(&mut app, &mut thumbs);
    // Tab and back: the focus frame moves, the thumbnail must not be sent again.
    press(&mut app, KeyCode::Tab, KeyModifiers::NONE);
    let focus = frame(&mut app, &mut thumbs);
    press(&mut app, KeyCode::BackTab, KeyModifiers::SHIFT);
    let focus = focus.max(frame(&mut app, &mut thumbs));
    press(&mut app, KeyCode::F(1), KeyModifiers::NONE);
    frame(&mut app, &mut thumbs);
    press(&mut app, KeyCode::Esc, KeyModifiers::NONE);
    let closed = frame(&mut app, &mut thumbs);
    (focus, closed)
}

#[tokio::main]
async fn main() {
    let mut failed = false;
    let images = [
        ("woman.png (flat)", sample("woman.png")),
        ("duckling.png (flat)", sample("duckling.png")),
        ("photo 1024x768", photo(1024, 768)),
    ];
    let areas = [("30x12", Rect::new(0, 0, 30, 12)), ("200x50", Rect::new(0, 0, 200, 50))];
    println!("| image | cells | PNG of drawn size | kitty | sixel | iterm2 | halfblocks | kitty raw RGBA (before) |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, bytes) in &images {
        for (cells, area) in areas {
            let png = reference_png(bytes, area);
            let mut row = format!("| {name} | {cells} | {:.1} KB |", png as f64 / 1024.0);
            for mode in [GraphicsMode::Kitty, GraphicsMode::Sixel, GraphicsMode::Iterm2, GraphicsMode::Halfblocks] {
                let sent = first_frame(mode, bytes, area).await;
                let ratio = sent as f64 / png as f64;
                let over = mode.is_pixel() && ratio > BUDGET;
                failed |= over;
                row.push_str(&format!(
                    " {:.1} KB ({ratio:.2}x){} |",
                    sent as f64 / 1024.0,
                    if over { " OVER" } else { "" }
                ));
            }
            let img = image::load_from_memory(bytes).unwrap();
            let fitted = img.resize(
                u32::from(area.width * CELL.0),
                u32::from(area.height * CELL.1),
                image::imageops::FilterType::Triangle,
            );
            let raw = (fitted.width() * fitted.height() * 4) as f64 * 4.0 / 3.0;
            row.push_str(&format!(" {:.0} KB |", raw / 1024.0));
            println!("{row}");
        }
    }
    println!();
    println!("| mode | focus change (Tab, Shift-Tab), bytes | closing the help overlay, bytes |");
    println!("|---|---|---|");
    for mode in [GraphicsMode::Kitty, GraphicsMode::Sixel, GraphicsMode::Halfblocks] {
        let (focus, closed) = focus_and_overlay(mode).await;
        let over = focus > 4096;
        failed |= over;
        println!("| {mode} | {focus}{} | {closed} |", if over { " OVER 4 KB" } else { "" });
    }
    if failed {
        eprintln!("a budget was missed");
        std::process::exit(1);
    }
}
