//! The asynchronous path: request → ThumbnailReady → render; cache hits; failures; bounds; clear_cache.

mod graphics_support;

use std::time::{Duration, Instant};

use graphics_support::*;
use kontext::tui::graphics::{Graphics, ThumbSource, Thumbnails};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

fn text(buf: &Buffer) -> String {
    let mut s = String::new();
    for y in buf.area.top()..buf.area.bottom() {
        for x in buf.area.left()..buf.area.right() {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

fn has_image(buf: &Buffer) -> bool {
    (0..buf.area.height).any(|y| (0..buf.area.width).any(|x| matches!(buf[(x, y)].symbol(), "▀" | "▄")))
}

#[tokio::test]
async fn request_then_ready_then_render_shows_the_image() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut thumbs = Thumbnails::new(Graphics::halfblocks(), tx);
    let src = ThumbSource::File(sample("woman.png"));
    let area = Rect::new(0, 0, 30, 12);

    let mut buf = Buffer::empty(area);
    let t = Instant::now();
    thumbs.render(&src, area, &mut buf); // requests implicitly
    assert!(t.elapsed() < Duration::from_millis(50), "render blocked for {:?}", t.elapsed());
    assert!(text(&buf).contains("loading…"), "placeholder while loading:\n{}", text(&buf));
    assert!(!has_image(&buf));

    let ready = next_ready(&mut rx).await;
    assert!(ready.is_for(&src) && ready.error().is_none());
    thumbs.on_ready(ready);
    let mut buf = Buffer::empty(area);
    thumbs.render(&src, area, &mut buf);
    assert!(has_image(&buf), "image after ready:\n{}", text(&buf));
    assert!(!text(&buf).contains("loading"));
}

#[tokio::test]
async fn cache_hits_do_not_spawn_again() {
    let src = ThumbSource::File(sample("duckling.png"));
    let area = Rect::new(0, 0, 20, 10);
    let (mut thumbs, src) = ready(Graphics::halfblocks(), src, area).await;
    assert_eq!(thumbs.stats().spawned, 1);
    for _ in 0..50 {
        thumbs.request(&src, area);
        let mut buf = Buffer::empty(area);
        thumbs.render(&src, area, &mut buf);
        assert!(has_image(&buf));
    }
    let s = thumbs.stats();
    assert_eq!(s.spawned, 1, "cache hit spawned again: {s:?}");
    assert!(s.hits >= 100);
}

#[tokio::test]
async fn a_pending_request_is_not_spawned_twice() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut thumbs = Thumbnails::new(Graphics::halfblocks(), tx);
    let src = ThumbSource::File(sample("woman.png"));
    let area = Rect::new(0, 0, 30, 12);
    for _ in 0..10 {
        thumbs.request(&src, area);
    }
    assert_eq!(thumbs.stats().spawned, 1);
    thumbs.on_ready(next_ready(&mut rx).await);
    assert!(tokio::time::timeout(Duration::from_millis(200), rx.recv()).await.is_err(), "a second job ran");
}

#[tokio::test]
async fn a_new_size_reuses_the_decoded_image_and_shows_the_old_one_meanwhile() {
    let src = ThumbSource::File(sample("woman.png"));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut thumbs = Thumbnails::new(Graphics::halfblocks(), tx);
    thumbs.request(&src, Rect::new(0, 0, 30, 12));
    thumbs.on_ready(next_ready(&mut rx).await);
    let bigger = Rect::new(0, 0, 40, 16);
    let mut buf = Buffer::empty(bigger);
    thumbs.render(&src, bigger, &mut buf);
    assert!(has_image(&buf), "stale thumbnail shown while the new size encodes");
    thumbs.on_ready(next_ready(&mut rx).await);
    let s = thumbs.stats();
    assert_eq!((s.spawned, s.reused_decodes), (2, 1), "{s:?}");
}

#[tokio::test]
async fn a_broken_file_says_no_preview() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.png");
    let mut png = std::fs::read(sample("woman.png")).unwrap();
    png.truncate(200);
    std::fs::write(&broken, png).unwrap();
    let notimg = dir.path().join("notes.png");
    std::fs::write(&notimg, "just text, not an image").unwrap();

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut thumbs = Thumbnails::new(Graphics::halfblocks(), tx);
    let area = Rect::new(0, 0, 40, 6);
    for (path, reason) in [
        (broken, "corrupt or truncated image"),
        (notimg, "not an image"),
        (dir.path().join("missing.png"), "missing.png not found"),
    ] {
        let src = ThumbSource::File(path);
        thumbs.request(&src, area);
        let r = next_ready(&mut rx).await;
        assert!(r.error().is_some_and(|e| e.contains(reason)), "{:?} for {src:?}", r.error());
        thumbs.on_ready(r);
        let mut buf = Buffer::empty(area);
        thumbs.render(&src, area, &mut buf);
        let shown = text(&buf);
        assert!(shown.contains("no preview:"), "{shown}");
        assert!(shown.contains(reason.split(' ').next().unwrap()), "{shown}");
    }
    assert_eq!(thumbs.stats().failed, 3);
}

#[tokio::test]
async fn bytes_sources_are_keyed_and_results_after_clear_cache_are_dropped() {
    let png = two_tone_png(64, 64, 32, [0, 200, 0], [200, 0, 200]);
    let src = ThumbSource::Bytes { key: "result-1".into(), bytes: png.into() };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut thumbs = Thumbnails::new(Graphics::halfblocks(), tx);
    let area = Rect::new(0, 0, 10, 5);
    thumbs.request(&src, area);
    thumbs.clear_cache(); // e.g. the terminal was resized meanwhile
    thumbs.on_ready(next_ready(&mut rx).await);
    assert_eq!(thumbs.stats().ready, 0, "stale result stored");
    let mut buf = Buffer::empty(area);
    thumbs.render(&src, area, &mut buf);
    assert!(text(&buf).contains("loading"));
    thumbs.on_ready(next_ready(&mut rx).await);
    let mut buf = Buffer::empty(area);
    thumbs.render(&src, area, &mut buf);
    assert!(has_image(&buf));
}

#[tokio::test]
async fn the_cache_stays_bounded() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut thumbs = Thumbnails::new(Graphics::halfblocks(), tx).with_limits(8, 4, usize::MAX);
    let png = bytes::Bytes::from(two_tone_png(32, 32, 16, [10, 20, 30], [200, 100, 0]));
    for i in 0..20 {
        let src = ThumbSource::Bytes { key: format!("img-{i}"), bytes: png.clone() };
        thumbs.request(&src, Rect::new(0, 0, 8, 4));
        thumbs.on_ready(next_ready(&mut rx).await);
        let s = thumbs.stats();
        assert!(s.entries <= 8 && s.decoded <= 4, "unbounded: {s:?}");
    }
    assert_eq!(thumbs.stats().spawned, 20);
}

#[tokio::test]
async fn decoded_images_are_downscaled_for_memory() {
    // A 3000x2000 image shown in 20x8 cells (200x160 px) is kept at ~2x that, not 24 MB of RGBA.
    let big = image::RgbImage::from_pixel(3000, 2000, image::Rgb([90, 120, 150]));
    let mut png = std::io::Cursor::new(Vec::new());
    big.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let src = ThumbSource::Bytes { key: "big".into(), bytes: png.into_inner().into() };
    let (thumbs, _) = ready(Graphics::halfblocks(), src, Rect::new(0, 0, 20, 8)).await;
    let s = thumbs.stats();
    assert!(s.bytes < 1_000_000, "kept {} bytes", s.bytes);
}
