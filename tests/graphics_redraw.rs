//! Sixel thumbnails are drawn again when something covered them, and inside tmux the cells under an image
//! are erased in tmux's own grid (issue 8, part 2, items 2 and 3). Real escape sequences through a
//! `CrosstermBackend` writing to memory.

mod graphics_support;

use graphics_support::*;
use kontext::tui::graphics::{Graphics, GraphicsMode, ThumbSource, Thumbnails, TmuxInfo};
use ratatui::layout::Rect;
use ratatui::widgets::{Block, Clear, Paragraph, Widget};

/// One frame: the thumbnail at `AREA`, then (optionally) a popup over `popup`, then `end_frame`.
fn frame(t: &mut MemTerminal, thumbs: &mut Thumbnails, src: &ThumbSource, popup: Option<Rect>) -> String {
    t.tty.take();
    t.term
        .draw(|f| {
            thumbs.render(src, AREA, f.buffer_mut());
            if let Some(r) = popup {
                Clear.render(r, f.buffer_mut());
                Paragraph::new("help text").block(Block::bordered()).render(r, f.buffer_mut());
            }
            thumbs.end_frame(f.buffer_mut());
        })
        .expect("draw");
    t.tty.take()
}

/// Sixel images (DCS … q) in what was written, outside tmux.
fn sixels(out: &str) -> usize {
    out.matches("\x1bP").count() - out.matches("\x1bPtmux;").count()
}

async fn sixel_thumbs(tmux: Option<TmuxInfo>) -> (Thumbnails, ThumbSource) {
    let g = Graphics::with_protocol(GraphicsMode::Sixel, (10, 20)).with_tmux(tmux);
    ready(g, ThumbSource::File(sample("woman.png")), AREA).await
}

#[tokio::test]
async fn a_popup_over_part_of_a_sixel_makes_it_drawn_again_once_closed() {
    let (mut thumbs, src) = sixel_thumbs(None).await;
    let mut t = terminal();
    let first = frame(&mut t, &mut thumbs, &src, None);
    assert!(first.contains("\x1bP"), "the sixel is sent");
    assert!(!frame(&mut t, &mut thumbs, &src, None).contains("\x1bP"), "unchanged: not sent again");

    // A popup over the lower right of the image, away from its first cell.
    let popup = Rect::new(20, 8, 20, 6);
    let covered = frame(&mut t, &mut thumbs, &src, Some(popup));
    assert!(covered.contains("help text"), "the popup is drawn");
    assert!(!covered.contains("\x1bP"), "while the popup is open, the image must not be drawn over it");
    let still = frame(&mut t, &mut thumbs, &src, Some(popup));
    assert!(!still.contains("\x1bP"), "nor on later frames with the popup open");

    let closed = frame(&mut t, &mut thumbs, &src, None);
    assert_eq!(sixels(&closed), 1, "closing the popup sends the image again over its leftovers");
    assert!(!frame(&mut t, &mut thumbs, &src, None).contains("\x1bP"), "and only once");
}

#[tokio::test]
async fn a_popup_over_the_first_cell_also_brings_it_back() {
    let (mut thumbs, src) = sixel_thumbs(None).await;
    let mut t = terminal();
    frame(&mut t, &mut thumbs, &src, None);
    frame(&mut t, &mut thumbs, &src, Some(Rect::new(0, 0, 40, 16)));
    assert_eq!(sixels(&frame(&mut t, &mut thumbs, &src, None)), 1);
}

#[tokio::test]
async fn in_tmux_the_cells_under_a_sixel_are_erased_in_tmux_and_a_popup_is_repaired() {
    let tmux =
        TmuxInfo { pane: Some("%1".into()), pane_offset: (0, 0), passthrough: Some(true), ..TmuxInfo::default() };
    let (mut thumbs, src) = sixel_thumbs(Some(tmux)).await;
    let mut t = terminal();
    let first = frame(&mut t, &mut thumbs, &src, None);
    let wrap = first.find("\x1bPtmux;").expect("passthrough");
    let before = &first[..wrap];
    // Outside the passthrough, for tmux's grid: one erase (ECH) per image row, and back up.
    let erases = before.matches("X").count();
    assert!(erases >= 2, "rows erased in tmux before the image: {before:?}");
    assert!(before.contains("\x1b[1B") && before.contains('A'), "row by row, then back: {before:?}");

    assert!(!frame(&mut t, &mut thumbs, &src, None).contains("\x1bPtmux;"), "unchanged: not sent again");
    frame(&mut t, &mut thumbs, &src, Some(Rect::new(20, 8, 20, 6)));
    let closed = frame(&mut t, &mut thumbs, &src, None);
    assert_eq!(closed.matches("\x1bPtmux;").count(), 1, "the passthrough image is sent again");
    assert!(!frame(&mut t, &mut thumbs, &src, None).contains("\x1bPtmux;"), "and only once");
}

#[tokio::test]
async fn a_kitty_transmission_kept_from_the_screen_by_a_popup_is_sent_with_the_next_frame() {
    let g = Graphics::with_protocol(GraphicsMode::Kitty, (10, 20)).with_tmux(None);
    let (mut thumbs, src) = ready(g, ThumbSource::File(sample("duckling.png")), AREA).await;
    let mut t = terminal();
    let hidden = frame(&mut t, &mut thumbs, &src, Some(Rect::new(0, 0, 60, 20)));
    assert!(!hidden.contains("\x1b_G"), "the popup covers the image's first cell");
    let shown = frame(&mut t, &mut thumbs, &src, None);
    assert_eq!(shown.matches("a=T,U=1,f=100").count(), 1, "the image is transmitted when it shows");
    assert!(!frame(&mut t, &mut thumbs, &src, None).contains("\x1b_G"), "and then not again");
}
