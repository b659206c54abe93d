//! Contact sheets of a sweep: one cell per request (its first output), rows and columns by the
//! first two varying axes, their values written in the margins (DejaVu Sans Mono, bundled,
//! drawn with `ab_glyph`). Further varying axes give one sheet per combination of their values.

use std::path::{Path, PathBuf};

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use image::{Rgb, RgbImage};

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");

/// The longest side of a cell's image, in pixels.
pub const CELL: u32 = 256;
const GAP: u32 = 6;
const TEXT_PX: f32 = 16.0;
const LINE: u32 = 24;
const LEFT: u32 = 150;
const BACKGROUND: Rgb<u8> = Rgb([24, 24, 28]);
const EMPTY: Rgb<u8> = Rgb([60, 60, 66]);
const INK: Rgb<u8> = Rgb([235, 235, 235]);

/// One sheet: a title line, column and row labels, and `cells[row][column]` (None: no image,
/// e.g. the request failed).
pub struct Sheet<'a> {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<String>,
    pub cells: Vec<Vec<Option<&'a image::DynamicImage>>>,
}

/// A sheet's text, without its images (they come one row at a time, see [`write_png`]).
pub struct Labels {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<String>,
}

impl Labels {
    fn size(&self) -> (u32, u32) {
        let cols = self.columns.len().max(1) as u32;
        let rows = self.rows.len().max(1) as u32;
        (LEFT + cols * (CELL + GAP), 2 * LINE + rows * (CELL + GAP))
    }
}

/// The sheet as an image: `LEFT + columns × (CELL + GAP)` wide, two lines of text plus
/// `rows × (CELL + GAP)` high.
pub fn compose(sheet: &Sheet<'_>) -> RgbImage {
    let labels = Labels { title: sheet.title.clone(), columns: sheet.columns.clone(), rows: sheet.rows.clone() };
    let (w, h) = labels.size();
    let mut img = RgbImage::new(w, h);
    let mut y = 0;
    for_each_band(
        &labels,
        |r| cells_of(sheet, r),
        |band| {
            image::imageops::replace(&mut img, band, 0, i64::from(y));
            y += band.height();
            Ok(())
        },
    )
    .expect("drawing into memory does not fail");
    img
}

fn cells_of(sheet: &Sheet<'_>, r: usize) -> Vec<Option<RgbImage>> {
    (0..sheet.columns.len().max(1))
        .map(|c| sheet.cells.get(r).and_then(|row| row.get(c)).copied().flatten().map(fit_cell))
        .collect()
}

/// An image shrunk to fit a cell (`thumbnail` averages over each box: fast and clean at these
/// ratios).
pub fn fit_cell(source: &image::DynamicImage) -> RgbImage {
    if source.width().max(source.height()) <= CELL { source.to_rgb8() } else { source.thumbnail(CELL, CELL).to_rgb8() }
}

/// Writes the sheet as PNG, one band at a time (the labels, then each row of cells): only one
/// row's images, `row_cells(r)` fitted to their cells, are in memory at once, not the sheet
/// (16 × 8 cells would be 29 MB of pixels, plus the encoder's copy).
pub fn write_png(
    labels: &Labels,
    row_cells: impl FnMut(usize) -> Vec<Option<RgbImage>>,
    out: impl std::io::Write,
) -> Result<(), String> {
    let (w, h) = labels.size();
    let mut encoder = png::Encoder::new(out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    let mut stream = writer.stream_writer().map_err(|e| e.to_string())?;
    for_each_band(labels, row_cells, |band| {
        std::io::Write::write_all(&mut stream, band.as_raw()).map_err(|e| e.to_string())
    })?;
    stream.finish().map_err(|e| e.to_string())
}

/// Draws the sheet band by band, top to bottom, handing each to `emit`.
fn for_each_band(
    labels: &Labels,
    mut row_cells: impl FnMut(usize) -> Vec<Option<RgbImage>>,
    mut emit: impl FnMut(&RgbImage) -> Result<(), String>,
) -> Result<(), String> {
    let font = FontRef::try_from_slice(FONT).expect("the bundled font parses");
    let (w, _) = labels.size();
    let mut header = RgbImage::from_pixel(w, 2 * LINE, BACKGROUND);
    draw_text(&mut header, &font, &labels.title, GAP, 4, w - GAP);
    for (c, label) in labels.columns.iter().enumerate() {
        let x = LEFT + c as u32 * (CELL + GAP);
        draw_text(&mut header, &font, label, x, LINE + 2, x + CELL);
    }
    emit(&header)?;
    for r in 0..labels.rows.len().max(1) {
        let mut band = RgbImage::from_pixel(w, CELL + GAP, BACKGROUND);
        if let Some(label) = labels.rows.get(r) {
            draw_text(&mut band, &font, label, GAP, CELL / 2 - LINE / 2, LEFT - GAP);
        }
        let cells = row_cells(r);
        for c in 0..labels.columns.len().max(1) {
            let x = LEFT + c as u32 * (CELL + GAP);
            match cells.get(c).and_then(Option::as_ref) {
                Some(thumb) => {
                    let (dx, dy) = (CELL.saturating_sub(thumb.width()) / 2, CELL.saturating_sub(thumb.height()) / 2);
                    image::imageops::replace(&mut band, thumb, i64::from(x + dx), i64::from(dy));
                }
                None => {
                    for py in 0..CELL {
                        for px in x..x + CELL {
                            band.put_pixel(px, py, EMPTY);
                        }
                    }
                    draw_text(&mut band, &font, "no image", x + 8, CELL / 2 - 8, x + CELL);
                }
            }
        }
        emit(&band)?;
    }
    Ok(())
}

/// Draws `text` from (x, y), clipped at `right` (a long value ends in "…").
fn draw_text(img: &mut RgbImage, font: &FontRef<'_>, text: &str, x: u32, y: u32, right: u32) {
    let scaled = font.as_scaled(PxScale::from(TEXT_PX));
    let mut caret = x as f32;
    let baseline = y as f32 + scaled.ascent();
    let text = crate::sanitize::one_line(text);
    let advance = scaled.h_advance(font.glyph_id('M'));
    let room = ((right.saturating_sub(x)) as f32 / advance).floor() as usize;
    let shown: String = if text.chars().count() > room {
        text.chars().take(room.saturating_sub(1)).chain(['…']).collect()
    } else {
        text
    };
    for ch in shown.chars() {
        let mut glyph = scaled.scaled_glyph(ch);
        glyph.position = ab_glyph::point(caret, baseline);
        caret += scaled.h_advance(glyph.id);
        let Some(outline) = font.outline_glyph(glyph) else { continue };
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let (px, py) = (bounds.min.x as i64 + gx as i64, bounds.min.y as i64 + gy as i64);
            if px < 0 || py < 0 || px >= img.width() as i64 || py >= img.height() as i64 {
                return;
            }
            let p = img.get_pixel_mut(px as u32, py as u32);
            for i in 0..3 {
                p.0[i] = (p.0[i] as f32 * (1.0 - coverage) + INK.0[i] as f32 * coverage) as u8;
            }
        });
    }
}

/// Where sheet `n` (from 0) of a set is written: `FILE.png`, then `FILE-2.png`, `FILE-3.png`…
pub fn sheet_path(first: &Path, n: usize) -> PathBuf {
    if n == 0 {
        return first.to_path_buf();
    }
    let stem = first.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "grid".into());
    let ext = first.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_else(|| "png".into());
    first.with_file_name(format!("{stem}-{}.{ext}", n + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheets_after_the_first_are_numbered_from_two() {
        let p = Path::new("/tmp/out/grid.png");
        assert_eq!(sheet_path(p, 0), p);
        assert_eq!(sheet_path(p, 1), Path::new("/tmp/out/grid-2.png"));
    }

    #[test]
    fn labels_are_drawn_and_a_missing_cell_is_grey() {
        let red = image::DynamicImage::ImageRgb8(RgbImage::from_pixel(800, 400, Rgb([200, 0, 0])));
        let sheet = Sheet {
            title: "rows: seed · columns: guidance_scale".into(),
            columns: vec!["guidance_scale=2".into(), "guidance_scale=5".into()],
            rows: vec!["seed=1".into()],
            cells: vec![vec![Some(&red), None]],
        };
        let img = compose(&sheet);
        assert_eq!(img.dimensions(), (LEFT + 2 * (CELL + GAP), 2 * LINE + CELL + GAP));
        // The 2:1 image is letterboxed in its cell; the missing one is grey.
        assert_eq!(*img.get_pixel(LEFT + CELL / 2, 2 * LINE + CELL / 2), Rgb([200, 0, 0]));
        assert_eq!(*img.get_pixel(LEFT + CELL + GAP + 2, 2 * LINE + 2), EMPTY);
        // Ink in the title, the column header and the row label.
        let inked = |x0: u32, y0: u32, x1: u32, y1: u32| {
            (y0..y1).any(|y| (x0..x1).any(|x| img.get_pixel(x, y).0[0] > 150 && img.get_pixel(x, y).0[1] > 150))
        };
        assert!(inked(0, 0, img.width(), LINE), "title");
        assert!(inked(LEFT, LINE, LEFT + CELL, 2 * LINE), "column label");
        assert!(inked(0, 2 * LINE, LEFT, 2 * LINE + CELL), "row label");

        // Written band by band, the PNG holds the same pixels.
        let labels = Labels { title: sheet.title.clone(), columns: sheet.columns.clone(), rows: sheet.rows.clone() };
        let mut png = Vec::new();
        write_png(&labels, |r| cells_of(&sheet, r), &mut png).unwrap();
        assert_eq!(image::load_from_memory(&png).unwrap().to_rgb8(), img);
    }
}
