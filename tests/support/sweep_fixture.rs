//! A sweep of this session, built straight into the studio's job store the way the studio's
//! sweep runner records one: seeds by guidance (by steps, as pages), each point a journaled job.
//! The first point is still running and the last one failed, so cells show their phases; the
//! others are done with one output each. Shared by the tests and benches/tui.rs (no `super`).

use std::path::{Path, PathBuf};

use kontext::fal::RequestHandle;
use kontext::model::Draft;
use kontext::model::sweep::{Axis, AxisKind};
use kontext::runner::{JobEvent, SavedImage};
use kontext::tui::app::App;
use kontext::tui::message::{JobFinish, Message};
use kontext::tui::panes::ResultsSource;

/// The sweep's id.
pub const SWEEP_ID: &str = "5eed0000-9a1d-4c0e-8000-000000000064";

/// Plans a `rows` × `cols` (× `pages`) sweep, finishes it with files named `j<job id>.png` in
/// `out` (written with `png` when given), and shows it in the Results pane.
pub fn finished_sweep(app: &mut App, rows: usize, cols: usize, pages: usize, out: &Path, png: Option<&[u8]>) {
    let values = |n: usize, f: &dyn Fn(usize) -> String| (0..n).map(f).collect::<Vec<_>>();
    let mut axes = vec![
        Axis { kind: AxisKind::Seed, values: values(rows, &|i| (100 + i).to_string()) },
        Axis { kind: AxisKind::Guidance, values: values(cols, &|i| format!("{:.1}", 1.5 + i as f64 * 0.5)) },
    ];
    if pages > 1 {
        axes.push(Axis {
            kind: AxisKind::Field("num_inference_steps".into()),
            values: values(pages, &|i| (20 + 10 * i).to_string()),
        });
    }
    let draft = Draft {
        prompt: "make it night".into(),
        images: vec!["https://v3.fal.media/files/a.png".into()],
        ..Draft::default()
    };
    let input = draft.validate(4).expect("a valid draft");
    let sweep = app.jobs_mut().plan_sweep(SWEEP_ID.into(), axes, |_| input.clone(), Some(0.04 * 64.0));
    let ids: Vec<u64> = sweep.points.iter().map(|(_, id)| *id).collect();
    for (n, &id) in ids.iter().enumerate() {
        let rid = format!("{id:08x}-aaaa-4bbb-8ccc-dddddddddddd");
        app.update(Message::JobRecorded { id, history_id: format!("{id:08x}-0000-4000-8000-000000000000") });
        let handle = RequestHandle {
            endpoint: "fal-ai/flux-pro/kontext".into(),
            response_url: format!("http://h/{rid}"),
            status_url: format!("http://h/{rid}/status"),
            cancel_url: format!("http://h/{rid}/cancel"),
            request_id: rid.clone(),
        };
        app.update(Message::Job { id, event: JobEvent::Submitted { handle } });
        app.update(Message::Job { id, event: JobEvent::InProgress });
        if n == 0 {
            continue;
        }
        let outcome = if n + 1 == ids.len() {
            JobFinish::Failed {
                message: "the emulator refused".into(),
                field_errors: vec![],
                request_id: Some(rid),
                ambiguous: false,
            }
        } else {
            let path: PathBuf = out.join(format!("j{id}.png"));
            if let Some(bytes) = png {
                std::fs::write(&path, bytes).expect("write an output");
            }
            let files = vec![SavedImage {
                index: 0,
                path,
                width: 64,
                height: 64,
                content_type: "image/png".into(),
                nsfw: false,
            }];
            JobFinish::Done {
                request_id: rid,
                seed: 100,
                files,
                urls: vec![],
                prompt_used: "make it night".into(),
                inference: None,
                unrecorded: vec![],
                billable_units: Some(1.0),
            }
        };
        app.update(Message::JobFinished { id, outcome: Box::new(outcome) });
    }
    app.show_results(ResultsSource::Sweep(SWEEP_ID.into()));
}
