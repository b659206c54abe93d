//! Writing a sweep's contact sheet (issue 10): an 8×8 sheet of 1-megapixel outputs, labelled,
//! composed and written as PNG, in under 1 s.
//!
//! - "--grid, end to end": `runner::sweep_grid::write_grids`, what `kontext sweep --grid` runs
//!   after the sweep: 64 JPEG outputs (1024×1024, q90 like fal's) read from disk and decoded,
//!   a thumbnail per cell, the axis values drawn, the PNG written. This is the budget.
//! - "compose + write" alone, from images already decoded (the part that does not depend on
//!   the outputs' format).
//!
//! Median and worst of 5 runs after a warm-up. Run: `cargo bench --bench contact_sheet`
//! (exits non-zero if the budget is missed).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use image::{DynamicImage, Rgb, RgbImage};
use kontext::model::sweep::{AxisFlags, axes, points};
use kontext::runner::contact_sheet::{Sheet, compose};
use kontext::runner::sweep_grid::write_grids;

const BUDGET: Duration = Duration::from_secs(1);

fn output(k: u32) -> DynamicImage {
    // Content that varies everywhere, like a photograph (flat colour would flatter the codecs).
    DynamicImage::ImageRgb8(RgbImage::from_fn(1024, 1024, |x, y| {
        Rgb([((x * 7 + k * 31) % 256) as u8, ((y * 5 + x / 3) % 256) as u8, ((x ^ y ^ k) % 256) as u8])
    }))
}

fn timed(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    f();
    let mut v: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    (v[v.len() / 2], *v.last().unwrap())
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("contact_sheet: bench");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let guidance: Vec<String> = (0..8).map(|c| (2 + c).to_string()).collect();
    let sweep_axes = axes(&AxisFlags {
        seeds: Some("1001..1008"),
        guidance: Some(&guidance.join(",")),
        aspect_ratio: None,
        prompts: &[],
        endpoints: None,
        sets: &[],
    })
    .unwrap();
    let images: Vec<DynamicImage> = (0..64).map(output).collect();
    let outputs: Vec<_> = points(&sweep_axes)
        .into_iter()
        .zip(&images)
        .enumerate()
        .map(|(i, (point, img))| {
            let p = dir.path().join(format!("{i}.jpg"));
            let mut bytes = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90).encode_image(img).unwrap();
            std::fs::write(&p, bytes).unwrap();
            (point, Some(p))
        })
        .collect();
    let grid_path: PathBuf = dir.path().join("grid.png");
    let (grid, grid_worst) = timed(5, || {
        let written = write_grids(&grid_path, &sweep_axes, &outputs).unwrap();
        assert_eq!(written.len(), 1, "one sheet");
    });
    let sheet_size = image::image_dimensions(&grid_path).unwrap();

    let (compose_only, compose_worst) = timed(5, || {
        let sheet = Sheet {
            title: "rows: seed · columns: guidance_scale".into(),
            columns: guidance.iter().map(|g| format!("guidance_scale={g}")).collect(),
            rows: (0..8).map(|r| format!("seed={}", 1001 + r)).collect(),
            cells: (0..8).map(|r| (0..8).map(|c| Some(&images[r * 8 + c])).collect()).collect(),
        };
        compose(&sheet).save(dir.path().join("composed.png")).unwrap();
    });
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "8x8 sheet of 1 MP JPEG outputs, --grid end to end (read, decode, thumbnails, labels, PNG {}x{}): \
         median {:.0} ms, worst {:.0} ms (budget {} ms) = {:.2} of budget",
        sheet_size.0,
        sheet_size.1,
        ms(grid),
        ms(grid_worst),
        BUDGET.as_millis(),
        grid.as_secs_f64() / BUDGET.as_secs_f64()
    );
    println!(
        "compose + write PNG from 64 decoded 1 MP images: median {:.0} ms, worst {:.0} ms",
        ms(compose_only),
        ms(compose_worst)
    );
    if grid > BUDGET {
        eprintln!("contact_sheet: over budget");
        std::process::exit(1);
    }
}
