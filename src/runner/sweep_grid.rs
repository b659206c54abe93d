//! A sweep's outputs as contact sheets (`kontext sweep --grid FILE.png`, the studio's finished
//! sweeps). Rows and columns are the first two axes that vary (one varying axis: one row); each
//! combination of the further varying axes gets its own sheet, `FILE.png`, `FILE-2.png`…, its
//! values in the sheet's title.

use std::path::{Path, PathBuf};

use crate::model::sweep::{Axis, AxisKind, GridAxes, Point, points};
use crate::runner::contact_sheet::{Sheet, compose, sheet_path};

/// Writes the sheets; returns each path written, or what went wrong.
pub fn write_grids(first: &Path, axes: &[Axis], outputs: &[(Point, Option<PathBuf>)]) -> Result<Vec<PathBuf>, String> {
    let grid = GridAxes::of(axes);
    let (rows, columns, further) = (grid.rows.as_ref(), grid.columns.as_ref(), grid.further);
    // Each output decoded once; a file that cannot be read is an empty cell.
    let images: Vec<Option<image::DynamicImage>> =
        outputs.iter().map(|(_, file)| file.as_ref().and_then(|f| image::open(f).ok())).collect();
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
        let cell = |row: &Option<String>, column: &Option<String>| {
            outputs.iter().zip(&images).find_map(|((p, _), img)| {
                let matches =
                    |axis: Option<&Axis>, want: &Option<String>| axis.is_none_or(|a| value_of(p, &a.kind) == *want);
                let rest_matches = rest.values.iter().all(|(k, v)| value_of(p, k).as_ref() == Some(v));
                (matches(rows, row) && matches(columns, column) && rest_matches).then_some(img.as_ref()).flatten()
            })
        };
        let cells = row_values.iter().map(|(r, _)| column_values.iter().map(|(c, _)| cell(r, c)).collect()).collect();
        let sheet = Sheet {
            title,
            columns: column_values.iter().map(|(_, l)| l.clone()).collect(),
            rows: row_values.iter().map(|(_, l)| l.clone()).collect(),
            cells,
        };
        let path = sheet_path(first, n);
        compose(&sheet).save(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
