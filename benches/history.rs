//! The history store at scale: with 100,000 stored requests, opening the store and listing the
//! newest 100, and a full-text search over prompts.
//!
//! Budgets (issue 3): open + newest 100 under 20 ms; a full-text search under 30 ms. Each figure
//! is the median (and max) of 25 runs after a warm-up; "open" is a fresh `History::open` (new
//! connection, pragmas, schema check) each time, as a new process or the TUI's start pays it.
//! The 100,000 rows are written in one transaction with the schema's own triggers (FTS index
//! included); prompts are 8 words from a 400-word vocabulary, so a common word matches ~2 % of
//! rows (about 2,000) and a rare one a few dozen.
//!
//! Run: `cargo bench --bench history` (prints a table; exits non-zero if a budget is missed).

use std::time::{Duration, Instant};

use kontext::history::{Cursor, History, HistoryQuery, JobState};

mod support;

const ROWS: usize = 100_000;
const RUNS: usize = 25;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    support::populate(dir.path(), ROWS, true);
    eprintln!("populated {ROWS} requests in {:.1}s", started.elapsed().as_secs_f64());

    let mut failed = false;
    let mut report = |name: &str, budget_ms: f64, f: &mut dyn FnMut() -> usize| {
        f();
        let mut times = Vec::with_capacity(RUNS);
        let mut n = 0;
        for _ in 0..RUNS {
            let t = Instant::now();
            n = f();
            times.push(t.elapsed());
        }
        times.sort();
        let median = ms(times[RUNS / 2]);
        let max = ms(times[RUNS - 1]);
        let ok = median < budget_ms;
        failed |= !ok;
        println!(
            "{name:<48} {n:>4} rows  median {median:>7.2} ms  max {max:>7.2} ms  budget {budget_ms:>4} ms  ratio {:.3}{}",
            median / budget_ms,
            if ok { "" } else { "  OVER BUDGET" }
        );
    };

    let path = dir.path().to_path_buf();
    report("open + newest 100", 20.0, &mut || {
        let h = History::open(&path).unwrap();
        h.list(&HistoryQuery { limit: 100, ..HistoryQuery::default() }).unwrap().len()
    });
    let h = History::open(&path).unwrap();
    assert_eq!(h.count().unwrap() as usize, ROWS);
    report("newest 100 (store open)", 20.0, &mut || {
        h.list(&HistoryQuery { limit: 100, ..HistoryQuery::default() }).unwrap().len()
    });
    report("page 500 of 100 by keyset (before = row 50,000)", 20.0, &mut || {
        let q = HistoryQuery { limit: 100, before: Some(Cursor(50_000)), ..HistoryQuery::default() };
        h.list(&q).unwrap().len()
    });
    report("open + search common word (~2% of rows), 100", 30.0, &mut || {
        let h = History::open(&path).unwrap();
        h.list(&HistoryQuery { search: Some("w7".into()), limit: 100, ..HistoryQuery::default() }).unwrap().len()
    });
    report("search two words, 100", 30.0, &mut || {
        h.list(&HistoryQuery { search: Some("w7 w13".into()), limit: 100, ..HistoryQuery::default() }).unwrap().len()
    });
    report("search a rare word (as a prefix)", 30.0, &mut || {
        h.list(&HistoryQuery { search: Some("rare12".into()), limit: 100, ..HistoryQuery::default() }).unwrap().len()
    });
    report("search common word + state failed, 100", 30.0, &mut || {
        let q = HistoryQuery {
            search: Some("w7".into()),
            state: Some(JobState::Failed),
            limit: 100,
            ..HistoryQuery::default()
        };
        h.list(&q).unwrap().len()
    });
    report("filter state = in_progress (rare), 100", 20.0, &mut || {
        h.list(&HistoryQuery { state: Some(JobState::InProgress), limit: 100, ..HistoryQuery::default() })
            .unwrap()
            .len()
    });
    report("filter seed", 20.0, &mut || {
        h.list(&HistoryQuery { seed: Some(4242), limit: 100, ..HistoryQuery::default() }).unwrap().len()
    });
    report("recent_prompts(20)", 20.0, &mut || h.recent_prompts(20).unwrap().len());
    report("count", 20.0, &mut || h.count().unwrap() as usize);

    if failed {
        eprintln!("a budget was missed");
        std::process::exit(1);
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
