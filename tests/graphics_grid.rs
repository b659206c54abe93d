//! A sweep's grid draws its thumbnails through the same cache as every other image (issue 10):
//! each cell's image is encoded once at its cell's size, sent once, and not sent again while
//! nothing changes. The whole studio at 200x50 with an 8×8 sweep, real sixel sequences written
//! to memory.

mod graphics_support;
mod support;

use graphics_support::*;
use kontext::tui::graphics::{Graphics, GraphicsMode, Thumbnails};
use kontext::tui::view::{self, theme::Theme};
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};

/// One frame of the studio, as the runtime draws it; what reached the "tty".
fn frame(t: &mut MemTerminal, app: &mut kontext::tui::app::App, thumbs: &mut Thumbnails) -> String {
    t.tty.take();
    t.term
        .draw(|f| {
            view::draw(f, app, thumbs, &Theme::MONO);
            thumbs.end_frame(f.buffer_mut());
        })
        .expect("draw");
    t.tty.take()
}

fn sixels(out: &str) -> usize {
    out.matches("\x1bP").count()
}

#[tokio::test]
async fn a_grids_thumbnails_are_encoded_and_sent_once() {
    let dir = tempfile::tempdir().unwrap();
    let png = two_tone_png(64, 64, 32, [200, 30, 30], [30, 30, 200]);
    let mut app = support::studio::app();
    support::sweep_fixture::finished_sweep(&mut app, 8, 8, 1, dir.path(), Some(&png));
    // The first cell is still running and the last one failed: 62 cells have an image.
    let with_images = 62;

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut thumbs = Thumbnails::new(Graphics::with_protocol(GraphicsMode::Sixel, (10, 20)), tx);
    let tty = Tty::default();
    let term = Terminal::with_options(
        ratatui::backend::CrosstermBackend::new(tty.clone()),
        TerminalOptions { viewport: Viewport::Fixed(Rect::new(0, 0, 200, 50)) },
    )
    .unwrap();
    let mut t = MemTerminal { term, tty };

    let mut sent = sixels(&frame(&mut t, &mut app, &mut thumbs));
    assert_eq!(thumbs.stats().spawned, with_images, "one encode per cell with an image");
    for _ in 0..with_images {
        thumbs.on_ready(next_ready(&mut rx).await);
    }
    assert_eq!(thumbs.stats().ready, with_images);
    sent += sixels(&frame(&mut t, &mut app, &mut thumbs));
    assert_eq!(sent, with_images as usize, "each cell's image is sent once");
    for _ in 0..3 {
        let again = frame(&mut t, &mut app, &mut thumbs);
        assert_eq!(sixels(&again), 0, "nothing changed: no image bytes are sent again");
    }
    let stats = thumbs.stats();
    assert_eq!(stats.spawned, with_images, "later frames are answered from the cache");
    assert!(stats.hits > 0);
}
