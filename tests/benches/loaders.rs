//! Loader throughput against the real MariaDB, beside the physical limit.
//!
//! For each loader and batch size (10, 100, 1000, 10000), events from the
//! project's generator go through the real handler (the SQS event's JSON text
//! decoded as the Lambda runtime does, parse, one transaction per batch) into
//! a fresh database. The limit is the same number of rows of the same width
//! written by plain multi-row INSERTs into a bare table, batched the same way,
//! with no logic. Loader and limit are measured in pairs, batch by batch (a
//! loader batch, then the limit's batch of the same size), so that both see
//! the same moments of a shared machine; of `rounds` such runs, the one with
//! the median ratio is printed.
//!
//! Run: `cargo bench -p integration-tests --bench loaders` (add `-- quick` for
//! a smaller run, `-- heavy-joins` for sessions of 4 heartbeats instead of 20,
//! data point names such as `-- attendance` to run only those loaders,
//! `-- rounds=N` for another number of rounds than 3). `DB_SESSIONS=unpinned`
//! measures the RDS Proxy multiplexing mode (text statements under 16 KB, no
//! prepared statements; `store::sql`) instead of the default pinned one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use integration_tests::harness::sqs_event;
use integration_tests::helpers::TestDb;
use mysql::prelude::Queryable;
use shared::contract::{parse_event, DataPoint};
use shared::handlers::SqsLoader;
use shared::jobs::generate::{generate, GenerateOptions};
use shared::store::Database;

const BATCH_SIZES: [usize; 4] = [10, 100, 1000, 10_000];

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let max_events = if quick { 5_000 } else { 20_000 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rounds: usize = std::env::args()
        .find_map(|a| a.strip_prefix("rounds=")?.parse().ok())
        .unwrap_or(3);
    let only: Vec<DataPoint> = std::env::args()
        .filter_map(|a| DataPoint::parse(&a))
        .collect();
    let unpinned = shared::store::unpinned_sessions(&shared::store::env_lookup).unwrap();
    shared::store::set_unpinned_statements(unpinned);
    println!(
        "sessions: {}",
        if unpinned {
            "unpinned (text statements under 16 KB)"
        } else {
            "pinned (prepared statements, texts up to 1 MiB)"
        }
    );
    let mut by_data_point = events_by_data_point(quick);
    by_data_point.retain(|dp, _| only.is_empty() || only.contains(dp));
    println!(
        "{:<13} {:>6} {:>7} {:>12} {:>14} {:>6} {:>8}",
        "loader", "batch", "events", "events/s", "limit rows/s", "ratio", "refresh"
    );
    for (dp, bodies) in &by_data_point {
        for batch_size in BATCH_SIZES {
            let n = bodies.len().min(max_events.max(batch_size));
            let bodies = &bodies[..n];
            let width = bodies.iter().map(String::len).sum::<usize>() / n.max(1);
            let mut rounds_measured: Vec<(f64, f64, f64)> = (0..rounds.max(1))
                .map(|_| runtime.block_on(paired_rates(*dp, bodies, width, batch_size)))
                .collect();
            // The round with the median ratio: each round's loader and limit
            // saw the same moments of the machine, batch by batch.
            rounds_measured.sort_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)));
            let (loader_rate, limit_rate, refresh_share) =
                rounds_measured[rounds_measured.len() / 2];
            println!(
                "{:<13} {:>6} {:>7} {:>12.0} {:>14.0} {:>6.2} {:>7.1}%",
                format!("load-{dp}"),
                batch_size,
                n,
                loader_rate,
                limit_rate,
                loader_rate / limit_rate,
                refresh_share * 100.0
            );
        }
    }
    if unpinned {
        println!(
            "statements over 16 KB sent (each pins an RDS Proxy session): {}",
            shared::store::oversized_statements()
        );
    }
}

/// Generated events grouped by data point, as their queues would carry them.
fn events_by_data_point(quick: bool) -> BTreeMap<DataPoint, Vec<String>> {
    let mut export = Vec::new();
    // The generator's default session: a join, 20 heartbeats (ten minutes)
    // and a leave. `heavy-joins` uses 4 heartbeats, five times the joins.
    let heartbeats = if std::env::args().any(|a| a == "heavy-joins") {
        4
    } else {
        20
    };
    let viewers = (if quick { 6_000 } else { 24_000 }) / (heartbeats + 2);
    let options = GenerateOptions {
        tenants: 2,
        presentations: 4,
        viewers,
        heartbeats,
        seed: 7,
        shuffle: true,
        first_presentation: 0,
    };
    generate(&options, &mut export).unwrap();
    // The presentation loader needs many presentations to fill big batches.
    let presentations_only = GenerateOptions {
        presentations: 3000,
        viewers: 0,
        first_presentation: 4,
        ..options
    };
    generate(&presentations_only, &mut export).unwrap();
    let mut grouped: BTreeMap<DataPoint, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8(export).unwrap().lines() {
        if let Some(dp) = parse_event(line).ok().and_then(|e| e.data_point()) {
            grouped.entry(dp).or_default().push(line.to_string());
        }
    }
    grouped
}

/// The loader's events per second, the limit's rows per second and the
/// share of the loader's time spent refreshing presentation summaries after
/// its commits, measured
/// as pairs: each loader batch is followed by the limit's batch of the same
/// size, so both see the same moments of a shared machine (run separately,
/// a burst of load elsewhere could fall on either and move their ratio).
async fn paired_rates(
    dp: DataPoint,
    bodies: &[String],
    width: usize,
    batch_size: usize,
) -> (f64, f64, f64) {
    let test = TestDb::new();
    let session = shared::store::SessionOptions {
        unpinned: shared::store::unpinned_statements(),
        ..Default::default()
    };
    let db = Arc::new(
        Database::connect_with(test.settings(), 1, session)
            .await
            .unwrap(),
    );
    // The dead-letter queue is never used here: every event is valid.
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .load()
        .await;
    let loader = SqsLoader::new(dp, "bench", db, aws_sdk_sqs::Client::new(&aws), "unused");
    // The invocations' payloads, as the Lambda runtime receives them.
    let payloads: Vec<String> = bodies
        .chunks(batch_size)
        .map(|chunk| {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            serde_json::to_string(&sqs_event(&refs)).unwrap()
        })
        .collect();
    let mut limit = InsertLimit::new(width);
    let (mut loader_time, mut limit_time) = (Duration::ZERO, Duration::ZERO);
    let mut refresh_time = Duration::ZERO;
    for (payload, chunk) in payloads.iter().zip(bodies.chunks(batch_size)) {
        let started = Instant::now();
        let event: SqsEvent = serde_json::from_str(payload).unwrap();
        let (response, report) = loader
            .handle_batch(event, Instant::now() + Duration::from_secs(600))
            .await;
        loader_time += started.elapsed();
        refresh_time += report.refresh_time;
        assert!(response.batch_item_failures.is_empty());
        limit_time += limit.insert(chunk.len());
    }
    let loaded = test.count("SELECT COUNT(*) FROM event_ledger") as usize;
    assert_eq!(loaded, bodies.len(), "every event loaded once");
    assert_eq!(limit.rows(), bodies.len(), "the limit wrote as many rows");
    let n = bodies.len() as f64;
    (
        n / loader_time.as_secs_f64(),
        n / limit_time.as_secs_f64(),
        refresh_time.as_secs_f64() / loader_time.as_secs_f64(),
    )
}

/// The physical limit: plain multi-row INSERTs of `width`-byte rows into a
/// bare table of a database of its own, one statement and one transaction
/// per batch, no logic.
struct InsertLimit {
    _test: TestDb,
    conn: mysql::PooledConn,
    payload: String,
    next_id: usize,
}

impl InsertLimit {
    fn new(width: usize) -> InsertLimit {
        let test = TestDb::new();
        let mut conn = test.conn();
        conn.query_drop("CREATE TABLE bare (id BIGINT NOT NULL PRIMARY KEY, payload VARBINARY(8000) NOT NULL) ENGINE=InnoDB")
            .unwrap();
        InsertLimit {
            _test: test,
            conn,
            payload: "x".repeat(width.min(8000)),
            next_id: 0,
        }
    }

    /// Writes `rows` rows in one statement and transaction; returns the time it took.
    fn insert(&mut self, rows: usize) -> Duration {
        let started = Instant::now();
        let end = self.next_id + rows;
        let mut sql = String::from("INSERT INTO bare (id, payload) VALUES ");
        for i in self.next_id..end {
            if i > self.next_id {
                sql.push(',');
            }
            sql.push_str(&format!("({i},'{}')", self.payload));
        }
        let mut tx = self
            .conn
            .start_transaction(mysql::TxOpts::default())
            .unwrap();
        tx.query_drop(&sql).unwrap();
        tx.commit().unwrap();
        self.next_id = end;
        started.elapsed()
    }

    fn rows(&mut self) -> usize {
        self.conn
            .query_first::<u64, _>("SELECT COUNT(*) FROM bare")
            .unwrap()
            .unwrap_or(0) as usize
    }
}
