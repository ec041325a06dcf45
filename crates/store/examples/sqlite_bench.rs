//! Rough throughput numbers for the SQLite store at the benchmark's scale (100,000
//! certificates). Run once in release mode:
//!
//! ```text
//! cargo run -p carapace-store --release --example sqlite_bench [rows]
//! ```

use std::time::Instant;

use carapace_store::sqlite::SqliteStore;
use carapace_store::{Cursor, Key, NewJob, Order, Row, Scan, Store, Write};

const KIND: &str = "acm.certificate";
const SCOPE: &str = "123456789012/us-east-1";
/// About the size of a stored certificate record (PEM chain plus metadata as JSON).
const BODY: usize = 3_000;
const SINGLE: usize = 5_000;

fn id(i: usize) -> String {
    // Spread ids like UUIDs so the primary key sees random inserts.
    format!("{:016x}-{i:08}", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

fn put(i: usize) -> Write {
    Write::Put {
        row: Row { key: Key::new(KIND, SCOPE, id(i)), version: 0, created_ms: (i / 2) as i64, body: vec![b'x'; BODY] },
        expect: None,
    }
}

fn rate(n: usize, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64();
    format!("{n} in {:.2}s = {:.0}/s ({:.1} µs each)", secs, n as f64 / secs, secs * 1e6 / n as f64)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows: usize = std::env::args().nth(1).map_or(Ok(100_000), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(&dir.path().join("bench.db"))?;

    let t = Instant::now();
    for i in 0..SINGLE {
        store.apply(vec![put(i)]).await?;
    }
    println!("single-row inserts: {}", rate(SINGLE, t));

    let t = Instant::now();
    for chunk in (SINGLE..rows).collect::<Vec<_>>().chunks(100) {
        store.apply(chunk.iter().map(|&i| put(i)).collect()).await?;
    }
    println!("batched inserts (100/batch): {}", rate(rows - SINGLE, t));

    let t = Instant::now();
    for i in 0..1_000 {
        let row = store.get(&Key::new(KIND, SCOPE, id((i * 37) % rows))).await?.ok_or("missing")?;
        let next = Row { body: vec![b'y'; BODY], ..row.clone() };
        store.apply(vec![Write::Put { row: next, expect: Some(row.version) }]).await?;
    }
    println!("get + update: {}", rate(1_000, t));

    let t = Instant::now();
    for i in 0..10_000 {
        store.get(&Key::new(KIND, SCOPE, id((i * 7919) % rows))).await?.ok_or("missing")?;
    }
    println!("get: {}", rate(10_000, t));

    let middle = Cursor { created_ms: (rows / 4) as i64, id: String::new() };
    for order in [Order::Ascending, Order::Descending] {
        let t = Instant::now();
        let scan = Scan { kind: KIND, scope: SCOPE, id_prefix: None, after: Some(middle.clone()), order, limit: 1_000 };
        let got = store.scan(scan).await?;
        assert_eq!(got.len(), 1_000);
        println!("scan 1,000 rows from the middle ({order:?}): {:.2} ms", t.elapsed().as_secs_f64() * 1e3);
    }
    let t = Instant::now();
    let mut after = Some(middle);
    for _ in 0..100 {
        let scan = Scan { kind: KIND, scope: SCOPE, id_prefix: None, after, order: Order::Ascending, limit: 100 };
        let page = store.scan(scan).await?;
        after = page.last().map(|r| Cursor { created_ms: r.created_ms, id: r.key.id.clone() });
    }
    println!("scan pages of 100: {}", rate(100, t));

    let t = Instant::now();
    let n = store.count(KIND, SCOPE, i64::MIN).await?;
    println!("count all ({n}): {:.2} ms", t.elapsed().as_secs_f64() * 1e3);

    let t = Instant::now();
    let jobs: Vec<Write> = (0..10_000)
        .map(|i| {
            Write::Enqueue(NewJob { id: format!("job-{i}"), kind: "bench".into(), run_at_ms: i, payload: vec![0; 100] })
        })
        .collect();
    store.apply(jobs).await?;
    println!("enqueue 10,000 jobs in one batch: {:.2} ms", t.elapsed().as_secs_f64() * 1e3);
    let t = Instant::now();
    let mut claimed = 0;
    loop {
        let jobs = store.claim_jobs("", 20_000, 60_000, 10).await?;
        if jobs.is_empty() {
            break;
        }
        claimed += jobs.len();
        for job in jobs {
            store.finish_job(&job.id, job.token).await?;
        }
    }
    println!("claim (10 at a time) + finish: {}", rate(claimed, t));

    // Reads while a writer is busy: the reader pool should not queue behind the writer.
    let store = std::sync::Arc::new(store);
    let writer = {
        let store = std::sync::Arc::clone(&store);
        tokio::spawn(async move {
            for i in rows..rows + 2_000 {
                store.apply(vec![put(i)]).await?;
            }
            Ok::<_, carapace_store::Error>(())
        })
    };
    let t = Instant::now();
    for i in 0..5_000 {
        store.get(&Key::new(KIND, SCOPE, id((i * 7919) % rows))).await?.ok_or("missing")?;
    }
    println!("get while writing: {}", rate(5_000, t));
    writer.await??;
    store.close().await?;
    Ok(())
}
