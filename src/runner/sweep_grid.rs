//! A sweep's outputs as contact sheets (`kontext sweep --grid FILE.png`, the studio's finished
//! sweeps). Rows and columns are the first two axes that vary (one varying axis: one row); each
//! combination of the further varying axes gets its own sheet, `FILE.png`, `FILE-2.png`…, its
//! values in the sheet's title.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::model::sweep::{Axis, GridAxes, Point, points};
use crate::runner::contact_sheet::{Labels, fit_cell, sheet_path, write_png};
use crate::runner::{open_image_bounded, write_atomically_with};

/// The outputs of one row of a sheet, decoded on every core and shrunk to their cells at once:
/// only thumbnails are kept, one row's at a time (64 decoded 1 MP outputs would hold 200 MB).
/// Each file is read and decoded within an input image's bounds (the folder may hold anything
/// by now); a file that cannot be read, or is out of bounds, is an empty cell.
fn cell_images(files: &[Option<&Path>]) -> Vec<Option<image::RgbImage>> {
    let workers = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get).min(files.len().max(1));
    let per_worker = files.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let shares: Vec<_> = files
            .chunks(per_worker)
            .map(|share| {
                scope.spawn(move || {
                    share
                        .iter()
                        .map(|file| file.and_then(|f| open_image_bounded(f).ok()).map(|img| fit_cell(&img)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // A worker that panicked (a decoder bug) leaves its cells empty rather than no sheet.
        let mut images = Vec::with_capacity(files.len());
        for (share, handle) in files.chunks(per_worker).zip(shares) {
            images.extend(handle.join().unwrap_or_else(|_| vec![None; share.len()]));
        }
        images
    })
}

/// Writes the sheets; returns each path written, or what went wrong.
pub fn write_grids(first: &Path, axes: &[Axis], outputs: &[(Point, Option<PathBuf>)]) -> Result<Vec<PathBuf>, String> {
    let grid = GridAxes::of(axes);
    let (rows, columns) = (grid.rows.as_ref(), grid.columns.as_ref());
    let label = |axis: Option<&Axis>| -> Vec<String> {
        match axis {
            None => vec![String::new()],
            Some(a) => a.values.iter().map(|v| format!("{}={v}", a.kind.name())).collect(),
        }
    };
    let (row_labels, column_labels) = (label(rows), label(columns));
    // Each output's cell, placed once: (page, row, column) → file.
    let mut placed: HashMap<(usize, usize, usize), &Path> = HashMap::new();
    for (point, file) in outputs {
        if let (Some(at), Some(file)) = (grid.place(point), file) {
            placed.entry(at).or_insert(file);
        }
    }
    let mut written = Vec::new();
    for (page, rest) in points(&grid.further).into_iter().enumerate() {
        let mut title = match (rows, columns) {
            (Some(r), Some(c)) => format!("rows: {} · columns: {}", r.kind.name(), c.kind.name()),
            (None, Some(c)) => format!("columns: {}", c.kind.name()),
            _ => "one request".to_string(),
        };
        for (k, v) in &rest.values {
            title.push_str(&format!(" · {}={v}", k.name()));
        }
        let labels = Labels { title, columns: column_labels.clone(), rows: row_labels.clone() };
        let row_cells = |r: usize| {
            let files: Vec<Option<&Path>> =
                (0..column_labels.len()).map(|c| placed.get(&(page, r, c)).copied()).collect();
            cell_images(&files)
        };
        let path = sheet_path(first, page);
        // Through a temporary file: a full disk leaves no half-written sheet under its name.
        write_atomically_with(&path, |out| write_png(&labels, row_cells, out).map_err(std::io::Error::other))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::sweep::AxisKind;

    /// A file in the output folder that decodes past an input image's bounds (wider than
    /// 14142 px) is an empty cell; the sheet is still written, its other cells drawn.
    #[test]
    fn an_output_out_of_bounds_is_an_empty_cell_not_a_decode() {
        let dir = tempfile::tempdir().unwrap();
        let wide = dir.path().join("wide.png");
        image::RgbImage::from_pixel(15_000, 1, image::Rgb([250, 0, 0])).save(&wide).unwrap();
        let fine = dir.path().join("fine.png");
        image::RgbImage::from_pixel(64, 64, image::Rgb([250, 0, 0])).save(&fine).unwrap();
        let axes = vec![Axis { kind: AxisKind::Seed, values: vec!["1".into(), "2".into()] }];
        let outputs: Vec<(Point, Option<PathBuf>)> = points(&axes).into_iter().zip([Some(wide), Some(fine)]).collect();
        let sheet = dir.path().join("sheet.png");
        let written = write_grids(&sheet, &axes, &outputs).unwrap();
        assert_eq!(written, std::slice::from_ref(&sheet));
        let sheet = image::open(&sheet).unwrap().to_rgb8();
        // One row of two cells; each cell's centre (the empty grey, or the image's red).
        let (left, cell, gap) = (150, crate::runner::contact_sheet::CELL, 6);
        let y = sheet.height() - gap - cell / 2;
        assert_eq!(sheet.get_pixel(left + cell / 2, y).0, [60, 60, 66], "the wide file is not drawn");
        assert_eq!(sheet.get_pixel(left + cell + gap + cell / 2, y).0, [250, 0, 0], "the fine one is");
    }
}
