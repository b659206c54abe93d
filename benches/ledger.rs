//! The family's own costs (issue 9): the schema-driven path of a `kontext run`, and
//! `kontext models` / `kontext spend` over a history of 100,000 requests.
//!
//! Budgets: the schema path adds at most 1 ms to a `kontext run`; `kontext models` and
//! `kontext spend` each take under 20 ms with 100,000 rows in the history.
//!
//! - "schema path": in this process, what a run does that it did not before the schemas were
//!   data: parse the description of the endpoint it uses (a process parses only that one),
//!   validate a draft against it, build the wire body and the estimate. Median of 200 runs.
//!   Parsing all seven (what `kontext models` does) is shown too.
//! - `models` / `spend`: the real binary as a child process, wall time from spawn to exit
//!   (process start, config, opening the store included), median of 15 runs after a warm-up.
//!
//! Run: `cargo bench --bench ledger` (exits non-zero if a budget is missed).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kontext::model::{Draft, EndpointSchema};

mod support;

const BIN: &str = env!("CARGO_BIN_EXE_kontext");
const DESCRIPTIONS: [&str; 7] = [
    include_str!("../endpoints/fal-ai.flux-pro.kontext.multi.json"),
    include_str!("../endpoints/fal-ai.flux-pro.kontext.json"),
    include_str!("../endpoints/fal-ai.flux-pro.kontext.max.json"),
    include_str!("../endpoints/fal-ai.flux-pro.kontext.max.multi.json"),
    include_str!("../endpoints/fal-ai.flux-pro.kontext.text-to-image.json"),
    include_str!("../endpoints/fal-ai.flux-pro.kontext.max.text-to-image.json"),
    include_str!("../endpoints/fal-ai.flux-kontext.dev.json"),
];

fn median(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], *v.last().unwrap())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn parse_all() -> Duration {
    let started = Instant::now();
    for t in DESCRIPTIONS {
        std::hint::black_box(EndpointSchema::parse(t).unwrap());
    }
    started.elapsed()
}

fn schema_path() -> Duration {
    let started = Instant::now();
    let dev = &std::sync::Arc::new(EndpointSchema::parse(DESCRIPTIONS[6]).unwrap());
    let mut draft = Draft {
        prompt: "make it night".into(),
        images: vec!["https://v3.fal.media/files/a.png".into()],
        ..Draft::default()
    };
    draft.set("num_images", "2".into());
    draft.set("resolution_mode", "16:9".into());
    let input = draft.validate_for(dev, |_| Ok(())).unwrap();
    let wire = input.to_wire(vec!["https://v3.fal.media/files/a.png".into()]);
    let prices = kontext::model::cost::PriceTable::bundled();
    let e = kontext::model::cost::estimate(dev, &input.body(), &[None], prices.get(&dev.endpoint_id), &prices.source);
    std::hint::black_box((wire, e));
    started.elapsed()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("ledger: bench");
        return;
    }
    let mut ok = true;
    for _ in 0..20 {
        schema_path();
    }
    let (med, max) = median((0..200).map(|_| schema_path()).collect());
    let pass = med < Duration::from_millis(1);
    ok &= pass;
    println!(
        "{:<52} median {:>7.3} ms (max {:>7.3})  = {:.3} of 1 ms  {}",
        "schema path (parse 1 + validate + wire + estimate)",
        ms(med),
        ms(max),
        ms(med),
        if pass { "ok" } else { "OVER BUDGET" }
    );

    let (med, _) = median((0..200).map(|_| parse_all()).collect());
    println!("{:<52} median {:>7.3} ms", "parse all seven descriptions", ms(med));

    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = home.path().join("config.toml");
    std::fs::write(&config, "").unwrap();
    let started = Instant::now();
    support::populate(&data, 100_000, false);
    // Spread the rows over the family and give them estimates and bills.
    let conn = rusqlite::Connection::open(data.join(kontext::history::DB_FILE)).unwrap();
    conn.execute_batch(
        "UPDATE requests SET
            endpoint = CASE id % 7 WHEN 0 THEN 'fal-ai/flux-pro/kontext/multi' WHEN 1 THEN 'fal-ai/flux-pro/kontext'
                WHEN 2 THEN 'fal-ai/flux-pro/kontext/max' WHEN 3 THEN 'fal-ai/flux-pro/kontext/max/multi'
                WHEN 4 THEN 'fal-ai/flux-pro/kontext/text-to-image' WHEN 5 THEN 'fal-ai/flux-pro/kontext/max/text-to-image'
                ELSE 'fal-ai/flux-kontext/dev' END,
            estimated_usd = 0.04, unit_price = 0.04, price_unit = 'image',
            billed_usd = CASE WHEN state = 'completed' THEN 0.04 WHEN state = 'failed' THEN 0 END;",
    )
    .unwrap();
    drop(conn);
    println!("(100,000 rows written in {:.1} s)", started.elapsed().as_secs_f64());

    let run = |args: &[&str]| {
        let started = Instant::now();
        let status = Command::new(BIN)
            .env_remove("FAL_KEY")
            .env("KONTEXT_CONFIG", &config)
            .env("KONTEXT_DATA_DIR", &data)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "kontext {args:?} failed");
        started.elapsed()
    };
    let cases: [(&str, &[&str]); 5] = [
        ("kontext models", &["models"]),
        ("kontext models --json", &["models", "--json"]),
        ("kontext spend (by day)", &["spend"]),
        ("kontext spend --by endpoint --json", &["spend", "--by", "endpoint", "--json"]),
        ("kontext spend --since (last tenth)", &["spend", "--since", "2023-12-01", "--json"]),
    ];
    for (name, args) in cases {
        run(args);
        let (med, max) = median((0..15).map(|_| run(args)).collect());
        let pass = med < Duration::from_millis(20);
        ok &= pass;
        println!(
            "{name:<52} median {:>7.2} ms (max {:>7.2})  = {:.2} of 20 ms  {}",
            ms(med),
            ms(max),
            ms(med) / 20.0,
            if pass { "ok" } else { "OVER BUDGET" }
        );
    }
    let h = kontext::history::History::open(&data).unwrap();
    let (med, _) = median(
        (0..25)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(h.spend(None, kontext::history::SpendBy::Day).unwrap());
                t.elapsed()
            })
            .collect(),
    );
    println!("{:<52} median {:>7.2} ms (the query alone, store open)", "History::spend by day", ms(med));
    if !ok {
        std::process::exit(1);
    }
}
