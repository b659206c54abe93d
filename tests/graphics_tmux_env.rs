//! A simulated tmux through the environment only (`TERM=tmux-256color`, `TMUX` set): forced protocols pick up the
//! passthrough wrapping without running any tmux command. Alone in its binary because it sets env vars.

mod graphics_support;

use graphics_support::*;
use kontext::tui::graphics::{Graphics, GraphicsMode, ThumbSource};

#[tokio::test]
async fn tmux_env_makes_forced_sixel_use_passthrough() {
    // SAFETY: the only test in this binary; set before any other thread reads the environment.
    unsafe {
        std::env::set_var("TERM", "tmux-256color");
        std::env::set_var("TMUX", "/tmp/tmux-0/default,1234,0");
        std::env::remove_var("TMUX_PANE");
    }
    let g = Graphics::with_protocol(GraphicsMode::Sixel, (10, 20));
    assert!(g.tmux().is_some(), "tmux detected from the environment");
    assert!(g.describe().contains("tmux passthrough"), "{}", g.describe());
    let (mut thumbs, src) = ready(g, ThumbSource::File(sample("woman.png")), AREA).await;
    let out = flush(&mut thumbs, &src);
    assert!(out.contains("\x1bPtmux;\x1b\x1b7\x1b\x1b["), "wrapped, doubled ESCs, positioned");

    let g = Graphics::with_protocol(GraphicsMode::Kitty, (10, 20));
    let (mut thumbs, src) = ready(g, ThumbSource::File(sample("woman.png")), AREA).await;
    let out = flush(&mut thumbs, &src);
    assert!(out.contains("\x1bPtmux;\x1b\x1b_Gq=2,"), "kitty chunks wrapped");
}
