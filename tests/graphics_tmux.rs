//! Inside tmux, pixel protocols travel in DCS passthrough (`ESC Ptmux; … ESC \` with inner ESCs doubled).
//! Sixel and iTerm2 carry an absolute cursor position for the outer terminal (tmux does not move the outer
//! cursor for passthrough data); kitty relies on its unicode placeholders, which tmux treats as text.

mod graphics_support;

use graphics_support::*;
use kontext::tui::graphics::{Graphics, GraphicsMode, ThumbSource, TmuxInfo};

fn in_tmux(mode: GraphicsMode, offset: (u16, u16)) -> Graphics {
    Graphics::with_protocol(mode, (10, 20)).with_tmux(Some(TmuxInfo {
        pane_offset: offset,
        passthrough: Some(true),
        ..TmuxInfo::default()
    }))
}

/// Every passthrough block in `out`, unwrapped (inner ESCs undoubled).
fn passthrough_blocks(out: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut rest = out;
    while let Some(start) = rest.find("\x1bPtmux;") {
        let body = &rest[start + 7..];
        // The terminator is an ESC \ whose ESC is not doubled.
        let bytes = body.as_bytes();
        let mut i = 0;
        let mut inner = String::new();
        while i < bytes.len() {
            if bytes[i] == 0x1b && bytes.get(i + 1) == Some(&0x1b) {
                inner.push('\x1b');
                i += 2;
            } else if bytes[i] == 0x1b && bytes.get(i + 1) == Some(&b'\\') {
                break;
            } else {
                let ch = body[i..].chars().next().unwrap();
                inner.push(ch);
                i += ch.len_utf8();
            }
        }
        blocks.push(inner);
        rest = &body[(i + 2).min(body.len())..];
    }
    blocks
}

#[tokio::test]
async fn sixel_in_tmux_is_wrapped_and_positioned_absolutely() {
    let g = in_tmux(GraphicsMode::Sixel, (28, 1));
    assert_eq!(g.describe(), "sixel 10x20 (tmux passthrough, forced)");
    let (mut thumbs, src) = ready(g, ThumbSource::File(sample("woman.png")), AREA).await;
    let mut t = terminal();
    let out = draw_once(&mut t, &mut thumbs, &src);
    let blocks = passthrough_blocks(&out);
    assert_eq!(blocks.len(), 1, "one passthrough block");
    let inner = &blocks[0];
    assert!(!out.contains("\x1bP0;") && !out.contains("\x1bPq"), "no bare sixel outside passthrough");
    // The image is centred in AREA (x=2, y=1, 30x12); its first cell is at (col, row) inside the pane.
    let cup = inner.strip_prefix("\x1b7\x1b[").expect("save cursor + CUP first");
    let (row, rest) = cup.split_once(';').unwrap();
    let (col, _) = rest.split_once('H').unwrap();
    let (row, col): (u16, u16) = (row.parse().unwrap(), col.parse().unwrap());
    // 1-based: AREA.y (1) + offset (1) + 1 at least; AREA.x (2) + offset (28) + 1 at least.
    assert!((3..=14).contains(&row), "row {row} includes the pane's top offset");
    assert!((31..=60).contains(&col), "col {col} includes the pane's left offset 28");
    assert!(inner.contains("\x1bP") && inner.contains('q') && inner.ends_with("\x1b8"), "sixel then restore");
    // Unchanged: nothing is sent again.
    let again = draw_once(&mut t, &mut thumbs, &src);
    assert!(!again.contains("\x1bPtmux;"), "re-sent while unchanged");
}

#[tokio::test]
async fn kitty_in_tmux_wraps_every_chunk() {
    let (mut thumbs, src) =
        ready(in_tmux(GraphicsMode::Kitty, (0, 0)), ThumbSource::File(sample("woman.png")), AREA).await;
    let out = flush(&mut thumbs, &src);
    let blocks = passthrough_blocks(&out);
    assert!(blocks.len() > 1, "a multi-chunk transmission");
    assert!(blocks.iter().all(|b| b.starts_with("\x1b_Gq=2,") && b.ends_with("\x1b\\")), "each chunk is ESC _G…");
    assert!(out.contains('\u{10EEEE}'), "placeholders are plain text for tmux");
    // The image id is a 256-colour index there (tmux may turn 24-bit colours into palette ones).
    assert!(out.contains("\x1b[38;5;"), "id as a palette colour");
    assert!(!out.contains("\x1b[38;2;"), "no 24-bit id colour in tmux");
}

#[tokio::test]
async fn iterm2_in_tmux_is_wrapped() {
    let (mut thumbs, src) =
        ready(in_tmux(GraphicsMode::Iterm2, (0, 0)), ThumbSource::File(sample("duckling.png")), AREA).await;
    let out = flush(&mut thumbs, &src);
    let blocks = passthrough_blocks(&out);
    assert_eq!(blocks.len(), 1);
    assert!(blocks[0].contains("\x1b]1337;File=inline=1;"));
}

#[tokio::test]
async fn halfblocks_in_tmux_need_no_passthrough() {
    let g = Graphics::with_protocol(GraphicsMode::Halfblocks, (10, 20)).with_tmux(Some(TmuxInfo::default()));
    let (mut thumbs, src) = ready(g, ThumbSource::File(sample("woman.png")), AREA).await;
    let out = flush(&mut thumbs, &src);
    assert!(!out.contains("\x1bPtmux;"));
    assert!(out.contains('▀') || out.contains('▄'));
}
