//! `kontext sweep --continue ID`: the points of a journaled sweep that never reached fal,
//! rebuilt from the plan as it was kept, checked again, and nothing else.

use std::path::PathBuf;

use serde_json::Value;

use super::exit;
use crate::history::{History, PointProgress};
use crate::model::sweep::{Axis, Planned, SweepToRun};
use crate::sanitize::one_line;

pub(super) fn remaining(history: &History, id: &str, catalog: &crate::model::Catalog) -> Result<SweepToRun, u8> {
    let record = history.sweep(id).map_err(|e| {
        eprintln!("kontext: {}", one_line(&e.to_string()));
        exit::INVALID_INPUT
    })?;
    let progress = history.sweep_progress(&record.id, record.points.len()).map_err(|e| {
        eprintln!("kontext: {}", one_line(&e.to_string()));
        exit::FAILURE
    })?;
    let axes: Vec<Axis> = record.axis_list();
    let count = |which: PointProgress| progress.iter().filter(|p| **p == which).count();
    let (finished, unfinished) = (count(PointProgress::Finished), count(PointProgress::Unfinished));
    eprintln!(
        "kontext: sweep {}: {} planned, {finished} sent and finished, {unfinished} sent and unfinished, {} never sent",
        record.id,
        record.points.len(),
        count(PointProgress::NeverSent)
    );
    if unfinished > 0 {
        eprintln!(
            "kontext: {unfinished} request{} of it are still unfinished: `kontext resume` finishes them (they are not sent again)",
            if unfinished == 1 { "" } else { "s" }
        );
    }
    let mut plan = Vec::new();
    for (index, (point, state)) in record.points.iter().zip(&progress).enumerate() {
        if *state != PointProgress::NeverSent {
            continue;
        }
        let point_of_plan = point.point();
        let input = catalog
            .require(&point.endpoint)
            .map_err(|m| m.to_string())
            .and_then(|schema| {
                point.draft.validate_for(schema, crate::runner::check_local_image).map_err(|e| e.to_string())
            })
            .map_err(|m| {
                eprintln!(
                    "kontext: sweep {}: {} no longer fits its endpoint (nothing was sent): {}",
                    record.id,
                    one_line(&point_of_plan.label(&axes)),
                    one_line(&m)
                );
                exit::INVALID_INPUT
            })?;
        plan.push(Planned::new(index, point_of_plan, &axes, input));
    }
    let out_dir = record.settings.get("out_dir").and_then(Value::as_str).map(PathBuf::from);
    Ok(SweepToRun { id: record.id, axes, out_dir, plan })
}
