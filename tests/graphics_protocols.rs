//! Forced protocols: a thumbnail rendered through a real ratatui `Terminal` writes the protocol's escape sequence
//! when flushed (captured from a `CrosstermBackend` writing into a `Vec<u8>`), and never again while unchanged.

mod graphics_support;

use graphics_support::*;
use kontext::tui::graphics::{Graphics, GraphicsMode, ThumbSource};
use ratatui::layout::Rect;
use ratatui::style::Color;

#[tokio::test]
async fn kitty_writes_a_png_transmission_once_and_unicode_placeholders() {
    let g = Graphics::with_protocol(GraphicsMode::Kitty, (10, 20)).with_tmux(None);
    let (mut thumbs, src) = ready(g, ThumbSource::File(sample("woman.png")), AREA).await;
    let mut t = terminal();
    let first = draw_once(&mut t, &mut thumbs, &src);
    assert!(first.contains("\x1b_Gq=2,i="), "kitty transmission (ESC _G) missing");
    assert!(first.contains("a=T,U=1,f=100,t=d,"), "PNG, direct, with a virtual placement");
    assert!(first.contains(";iVBORw0KGgo"), "the payload is a base64 PNG");
    // woman.png (4:3) fills the 30 columns of the 30x12 cells (300x240 px): only the width is given, kitty keeps
    // the aspect ratio (both would stretch it).
    assert!(first.contains("f=100,t=d,c=30,m="), "only the filled dimension: {}", &first[..first.len().min(200)]);
    assert!(!first.contains("f=32") && !first.contains("o=z"), "no raw RGBA");
    assert!(first.contains('\u{10EEEE}'), "unicode placeholder cells");
    assert!(!first.contains("\x1bPtmux;"), "not wrapped outside tmux");
    let second = draw_once(&mut t, &mut thumbs, &src);
    assert!(!second.contains("\x1b_G"), "transmitted again while unchanged: {} bytes", second.len());
}

#[tokio::test]
async fn sixel_writes_dcs_q_once() {
    let g = Graphics::with_protocol(GraphicsMode::Sixel, (10, 20)).with_tmux(None);
    let (mut thumbs, src) = ready(g, ThumbSource::File(sample("woman.png")), AREA).await;
    let mut term = terminal();
    let first = draw_once(&mut term, &mut thumbs, &src);
    let start = first.find("\x1bP").expect("sixel DCS (ESC P)");
    let q = first[start..].find('q').expect("sixel introducer q");
    assert!(q < 12, "ESC P <params> q: {:?}", &first[start..start + 12]);
    assert!(first[start..].contains("\x1b\\"), "string terminator");
    assert!(first.contains('#'), "sixel colour registers");
    let second = draw_once(&mut term, &mut thumbs, &src);
    assert!(!second.contains("\x1bP"), "unchanged image re-sent (would flicker): {} bytes", second.len());
}

#[tokio::test]
async fn iterm2_writes_osc_1337_file() {
    let g = Graphics::with_protocol(GraphicsMode::Iterm2, (10, 20)).with_tmux(None);
    let (mut thumbs, src) = ready(g, ThumbSource::File(sample("duckling.png")), AREA).await;
    let mut term = terminal();
    let first = draw_once(&mut term, &mut thumbs, &src);
    assert!(first.contains("\x1b]1337;File=inline=1;"), "iTerm2 inline image");
    assert!(first.contains(":iVBORw0KGgo"), "base64 PNG payload");
    let second = draw_once(&mut term, &mut thumbs, &src);
    assert!(!second.contains("1337;File"), "unchanged image re-sent");
}

#[tokio::test]
async fn halfblocks_cells_carry_the_image_colours() {
    // 80x80 px at 10x20 px cells fills 8x4 cells exactly. Red above y=30, blue below: cell row 0 is all red,
    // row 1 is red over blue (a half block), rows 2-3 are blue.
    let png = two_tone_png(80, 80, 30, [255, 0, 0], [0, 0, 255]);
    let src = ThumbSource::Bytes { key: "two-tone".into(), bytes: png.into() };
    let (mut thumbs, src) = ready(Graphics::halfblocks(), src, Rect::new(0, 0, 8, 4)).await;
    let mut buf = ratatui::buffer::Buffer::empty(Rect::new(0, 0, 8, 4));
    thumbs.render(&src, buf.area, &mut buf);
    let (red, blue) = (Color::Rgb(255, 0, 0), Color::Rgb(0, 0, 255));
    for x in 0..8 {
        let top = &buf[(x, 0)];
        assert!(top.fg == red && top.bg == red, "row 0 red at {x}: {top:?}");
        // The triangle filter blends the edge a little.
        let edge = &buf[(x, 1)];
        let mostly = |c: Color, want: Color| match (c, want) {
            (Color::Rgb(r, g, b), Color::Rgb(wr, wg, wb)) => {
                r.abs_diff(wr) < 48 && g.abs_diff(wg) < 48 && b.abs_diff(wb) < 48
            }
            _ => false,
        };
        assert_eq!(edge.symbol(), "▀", "row 1 at {x}");
        assert!(mostly(edge.fg, red) && mostly(edge.bg, blue), "row 1 red over blue at {x}: {edge:?}");
        let bottom = &buf[(x, 3)];
        assert!(bottom.fg == blue && bottom.bg == blue, "row 3 blue at {x}: {bottom:?}");
    }
}

#[tokio::test]
async fn halfblocks_of_the_sample_flush_as_block_characters() {
    let (mut thumbs, src) = ready(Graphics::halfblocks(), ThumbSource::File(sample("woman.png")), AREA).await;
    let out = flush(&mut thumbs, &src);
    assert!(out.contains('▀') || out.contains('▄'));
    assert!(out.contains("\x1b[38;2;"), "24-bit colours");
    assert!(!out.contains("\x1b_G") && !out.contains("\x1bP"), "no graphics escapes");
}

#[tokio::test]
async fn none_mode_draws_a_text_placeholder_with_the_size() {
    let g = Graphics::with_protocol(GraphicsMode::None, (10, 20));
    let (mut thumbs, src) = ready(g, ThumbSource::File(sample("woman.png")), AREA).await;
    let out = flush(&mut thumbs, &src);
    let (w, h) = image::image_dimensions(sample("woman.png")).unwrap();
    assert!(out.contains(&format!("image {w}×{h}")), "placeholder with the size in {out:?}");
    assert!(!out.contains("\x1b_G") && !out.contains("\x1bP") && !out.contains('▀'));
}

#[tokio::test]
async fn sixel_never_touches_the_last_row() {
    // A sixel reaching the bottom row makes xterm scroll the whole screen (seen with term-shot).
    let g = Graphics::with_protocol(GraphicsMode::Sixel, (10, 20)).with_tmux(None);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut thumbs = kontext::tui::graphics::Thumbnails::new(g, tx);
    // A tall image (1:4) that fills the whole height of a 10x10-cell area (100x200 px at 10x20).
    let src =
        ThumbSource::Bytes { key: "tall".into(), bytes: two_tone_png(100, 400, 200, [0, 0, 0], [255, 0, 0]).into() };
    let screen = Rect::new(0, 0, 60, 20);
    let area = Rect::new(0, 10, 10, 10); // the bottom 10 rows of the screen
    let mut buf = ratatui::buffer::Buffer::empty(screen);
    thumbs.render(&src, area, &mut buf);
    thumbs.on_ready(next_ready(&mut rx).await);
    let mut buf = ratatui::buffer::Buffer::empty(screen);
    thumbs.render(&src, area, &mut buf);
    let image_rows: Vec<u16> = (area.top()..area.bottom())
        .filter(|&y| (0..60).any(|x| buf[(x, y)].symbol().contains("\x1bP") || buf[(x, y)].skip_or_diff()))
        .collect();
    assert!(!image_rows.is_empty(), "sixel drawn");
    assert!(*image_rows.last().unwrap() < 19, "image reaches the last row: {image_rows:?}");
}

trait SkipOrDiff {
    fn skip_or_diff(&self) -> bool;
}

impl SkipOrDiff for ratatui::buffer::Cell {
    fn skip_or_diff(&self) -> bool {
        self.diff_option == ratatui::buffer::CellDiffOption::Skip
    }
}
