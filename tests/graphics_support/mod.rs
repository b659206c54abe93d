//! Helpers shared by the graphics_* tests.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kontext::tui::graphics::{Graphics, ThumbSource, ThumbnailReady, Thumbnails};
use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use tokio::sync::mpsc::UnboundedReceiver;

pub const AREA: Rect = Rect { x: 2, y: 1, width: 30, height: 12 };

pub fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/samples").join(name)
}

/// The bytes a `CrosstermBackend` wrote, shared with the test.
#[derive(Clone, Default)]
pub struct Tty(Arc<Mutex<Vec<u8>>>);

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
    pub fn take(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.0.lock().unwrap())).into_owned()
    }
}

/// A terminal that writes real escape sequences into memory.
pub struct MemTerminal {
    pub term: Terminal<CrosstermBackend<Tty>>,
    pub tty: Tty,
}

pub fn terminal() -> MemTerminal {
    let tty = Tty::default();
    let term = Terminal::with_options(
        CrosstermBackend::new(tty.clone()),
        TerminalOptions { viewport: Viewport::Fixed(Rect::new(0, 0, 60, 20)) },
    )
    .expect("in-memory terminal");
    MemTerminal { term, tty }
}

/// Draw one frame with the thumbnail at `AREA` and return what was written to the "tty".
pub fn draw_once(t: &mut MemTerminal, thumbs: &mut Thumbnails, src: &ThumbSource) -> String {
    t.tty.take();
    t.term
        .draw(|f| {
            thumbs.render(src, AREA, f.buffer_mut());
            thumbs.end_frame(f.buffer_mut());
        })
        .expect("draw");
    t.tty.take()
}

pub fn flush(thumbs: &mut Thumbnails, src: &ThumbSource) -> String {
    draw_once(&mut terminal(), thumbs, src)
}

pub async fn next_ready(rx: &mut UnboundedReceiver<ThumbnailReady>) -> ThumbnailReady {
    tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("thumbnail in time").expect("channel open")
}

/// Request `src` at `area` and wait until it is ready.
pub async fn ready(graphics: Graphics, src: ThumbSource, area: Rect) -> (Thumbnails, ThumbSource) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut thumbs = Thumbnails::new(graphics, tx);
    thumbs.request(&src, area);
    let r = next_ready(&mut rx).await;
    assert!(r.error().is_none(), "thumbnail failed: {:?}", r.error());
    thumbs.on_ready(r);
    (thumbs, src)
}

/// A `w`x`h` PNG whose rows above `split` are `top` and the others `bottom`.
pub fn two_tone_png(w: u32, h: u32, split: u32, top: [u8; 3], bottom: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |_, y| image::Rgb(if y < split { top } else { bottom }));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("png");
    out.into_inner()
}
