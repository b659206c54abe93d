//! A sweep's outputs as contact sheets (`kontext sweep --grid FILE.png`, the studio's finished
//! sweeps). Rows and columns are the first two axes that vary (one varying axis: one row); each
//! combination of the further varying axes gets its own sheet, `FILE.png`, `FILE-2.png`…, its
//! values in the sheet's title.

use std::path::{Path, PathBuf};

use crate::model::sweep::{Axis, AxisKind, GridAxes, Point, points};
use crate::runner::contact_sheet::{Labels, fit_cell, sheet_path, write_png};

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
    let (rows, columns, further) = (grid.rows.as_ref(), grid.columns.as_ref(), grid.further);
    let value_of = |p: &Point, kind: &AxisKind| p.values.iter().find(|(k, _)| k == kind).map(|(_, v)| v.clone());
    let label = |axis: Option<&Axis>| -> Vec<(Option<String>, String)> {
        match axis {
            None => vec![(None, String::new())],
            Some(a) => a.values.iter().map(|v| (Some(v.clone()), format!("{}={v}", a.kind.name()))).collect(),
        }
    };
    let (row_values, column_values) = (label(rows), label(columns));
    let mut written = Vec::new();
    for (n, rest) in points(&further).into_iter().enumerate() {
        let mut title = match (rows, columns) {
            (Some(r), Some(c)) => format!("rows: {} · columns: {}", r.kind.name(), c.kind.name()),
            (None, Some(c)) => format!("columns: {}", c.kind.name()),
            _ => "one request".to_string(),
        };
        for (k, v) in &rest.values {
            title.push_str(&format!(" · {}={v}", k.name()));
        }
        // The output file of each cell.
        let cell = |row: &Option<String>, column: &Option<String>| {
            outputs.iter().find_map(|(p, file)| {
                let matches =
                    |axis: Option<&Axis>, want: &Option<String>| axis.is_none_or(|a| value_of(p, &a.kind) == *want);
                let rest_matches = rest.values.iter().all(|(k, v)| value_of(p, k).as_ref() == Some(v));
                (matches(rows, row) && matches(columns, column) && rest_matches).then_some(file.as_deref()).flatten()
            })
        };
        let labels = Labels {
            title,
            columns: column_values.iter().map(|(_, l)| l.clone()).collect(),
            rows: row_values.iter().map(|(_, l)| l.clone()).collect(),
        };
        let row_cells = |r: usize| {
            let files: Vec<Option<&Path>> = column_values.iter().map(|(c, _)| cell(&row_values[r].0, c)).collect();
            cell_images(&files)
        };
        let path = sheet_path(first, n);
        let failed = |e: String| format!("{}: {e}", path.display());
        let file = std::fs::File::create(&path).map_err(|e| failed(e.to_string()))?;
        let mut out = std::io::BufWriter::new(file);
        write_png(&labels, row_cells, &mut out).map_err(failed)?;
        std::io::Write::flush(&mut out).map_err(|e| failed(e.to_string()))?;
        written.push(path);
    }
    Ok(written)
}
