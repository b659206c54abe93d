//! Shared by the benchmarks: a history store filled with many requests, fast.

/// Writes the rows directly in one transaction (the journal's one-transaction-per-step writes
/// would take minutes for 100,000 requests and measure nothing this bench is about).
pub fn populate(dir: &std::path::Path, rows: usize, with_unfinished: bool) {
    drop(kontext::history::History::open(dir).unwrap());
    let mut conn = rusqlite::Connection::open(dir.join(kontext::history::DB_FILE)).unwrap();
    conn.pragma_update(None, "synchronous", "OFF").unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO requests (local_id, request_id, endpoint, state, created_at, updated_at, prompt, seed,
                    num_images, input_json, sent_json, result_json)
                 VALUES (?1, ?2, 'fal-ai/flux-pro/kontext/multi', ?3, ?4, ?4, ?5, ?6, 1, ?7, ?8, ?9)",
            )
            .unwrap();
        let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let start = 1_700_000_000i64;
        for i in 0..rows {
            let mut words: Vec<String> = (0..8).map(|_| format!("w{}", next() % 400)).collect();
            if i % 1000 == 0 {
                words.push(format!("rare{}", i / 1000));
            }
            let prompt = words.join(" ");
            let state = match i % 50 {
                0 => "failed",
                1 => "cancelled",
                _ if with_unfinished && i == rows - 3 => "in_progress",
                _ => "completed",
            };
            let input =
                format!(r#"{{"prompt":"{prompt}","images":["https://v3.fal.media/files/x/{i}.png"],"seed":"{i}"}}"#);
            let result = format!(
                r#"{{"images":[{{"url":"https://v3.fal.media/files/y/{i}.jpg","width":1024,"height":1024}}],"seed":{i},"prompt":"{prompt}"}}"#
            );
            stmt.execute(rusqlite::params![
                format!("{:032x}", (next() as u128) << 64 | next() as u128),
                format!("{:08x}-0000-4000-8000-{:012x}", i, next() % (1 << 48)),
                state,
                start + i as i64 * 30,
                prompt,
                i as i64,
                input,
                input,
                result
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
}
