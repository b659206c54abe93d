//! Writing a sweep's contact sheet (issue 10): an 8×8 sheet of 1-megapixel outputs, labelled,
//! composed and written as PNG, in under 1 s.
//!
//! - "compose + write": `runner::contact_sheet::compose` over 64 decoded 1024×1024 images (a
//!   thumbnail per cell, the axis values drawn) and the PNG written to a temporary file.
//! - "decode 64 JPEGs": what `kontext sweep --grid` does first, reading the outputs back (shown
//!   apart: it depends on the outputs' format).
//!
//! Median and worst of 5 runs after a warm-up. Run: `cargo bench --bench contact_sheet`
//! (exits non-zero if the budget is missed).

use std::time::{Duration, Instant};

use image::{DynamicImage, Rgb, RgbImage};
use kontext::runner::contact_sheet::{Sheet, compose};

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
    let images: Vec<DynamicImage> = (0..64).map(output).collect();
    let dir = tempfile::tempdir().unwrap();
    let sheet_path = dir.path().join("grid.png");
    let (median, worst) = timed(5, || {
        let sheet = Sheet {
            title: "rows: seed · columns: guidance_scale".into(),
            columns: (0..8).map(|c| format!("guidance_scale={}", 2 + c)).collect(),
            rows: (0..8).map(|r| format!("seed={}", 1000 + r)).collect(),
            cells: (0..8).map(|r| (0..8).map(|c| Some(&images[r * 8 + c])).collect()).collect(),
        };
        compose(&sheet).save(&sheet_path).unwrap();
    });
    let jpegs: Vec<_> = images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            let p = dir.path().join(format!("{i}.jpg"));
            img.save(&p).unwrap();
            p
        })
        .collect();
    let (decode, decode_worst) = timed(5, || {
        for p in &jpegs {
            std::hint::black_box(image::open(p).unwrap());
        }
    });
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "8x8 sheet of 1 MP outputs, compose + write PNG: median {:.0} ms, worst {:.0} ms (budget {} ms)",
        ms(median),
        ms(worst),
        BUDGET.as_millis()
    );
    println!("decode 64 1 MP JPEGs: median {:.0} ms, worst {:.0} ms", ms(decode), ms(decode_worst));
    if median > BUDGET {
        eprintln!("contact_sheet: over budget");
        std::process::exit(1);
    }
}
