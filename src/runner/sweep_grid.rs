//! A sweep's outputs as contact sheets (`kontext sweep --grid FILE.png`, the studio's finished
//! sweeps). Rows and columns are the first two axes that vary (one varying axis: one row); each
//! combination of the further varying axes gets its own sheet, `FILE.png`, `FILE-2.png`…, its
//! values in the sheet's title.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::model::sweep::{Axis, GridAxes, Point, points};
use crate::runner::contact_sheet::{Labels, fit_cell, sheet_path, write_png};
use crate::runner::write_atomically_with;

/// The outputs of one row of a sheet, decoded on every core and shrunk to their cells at once:
/// only thumbnails are kept, one row's at a time (64 decoded 1 MP outputs would hold 200 MB).
/// A file that cannot be read is an empty cell.
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
                        .map(|file| file.and_then(|f| image::open(f).ok()).map(|img| fit_cell(&img)))
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
