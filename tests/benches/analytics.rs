//! Analytics latency from the warehouse, beside the old way (replaying the
//! presentation's events in memory from the export), in one run.
//!
//! One generated presentation with 20,000 viewers and about 2 million events,
//! in a tenant with 1,000 presentations. Run:
//! `cargo bench -p integration-tests --bench analytics` (`-- quick` for a
//! 2,000-viewer, 100-presentation run).

use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::helpers::TestDb;
use shared::analytics::{self, PresentationQuery, PresentationSort, ViewerQuery, ViewerSort};
use shared::backfill::{self, BackfillOptions, Context, Filters, Mode, QueueUrls};
use shared::db::Database;
use shared::generate::{generate, GenerateOptions};
use shared::replay::Replay;

const RUNS: usize = 21;

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let (viewers, others) = if quick { (2_000, 99) } else { (20_000, 999) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join("warehouse-bench-analytics");
    std::fs::create_dir_all(&dir).unwrap();
    let export = dir.join(format!("export-{viewers}-{others}.jsonl"));
    if !export.exists() {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&export).unwrap());
        let big = GenerateOptions {
            tenants: 1,
            presentations: 1,
            viewers,
            heartbeats: 98,
            seed: 3,
            shuffle: true,
            first_presentation: 0,
        };
        generate(&big, &mut out).unwrap();
        let small = GenerateOptions {
            presentations: others,
            viewers: 20,
            heartbeats: 4,
            first_presentation: 1,
            ..big
        };
        generate(&small, &mut out).unwrap();
    }
    let test = TestDb::new();
    let db = Arc::new(Database::connect_blocking(test.settings(), 2).unwrap());
    let ctx = Context {
        db: db.clone(),
        s3: None,
        sqs: None,
        queues: QueueUrls::default(),
        batch_lines: backfill::DEFAULT_BATCH_LINES,
        on_progress: None,
    };
    let options = BackfillOptions {
        source: export.display().to_string(),
        mode: Mode::Direct,
        filters: Filters::default(),
        dry_run: false,
    };
    let loaded = runtime
        .block_on(backfill::run(&ctx, &options, None, None))
        .unwrap();
    println!(
        "loaded {} lines ({} events) in {:.1}s",
        loaded.counters.lines, loaded.counters.events, loaded.elapsed_seconds
    );
    let (tenant, presentation) = ("tenant-0", "prs-000000");
    let mut conn = db.conn().unwrap();

    let first_report = timed(|| {
        analytics::presentation_report(&mut conn, tenant, presentation).unwrap();
    });
    let report = repeat(|| {
        analytics::presentation_report(&mut conn, tenant, presentation).unwrap();
    });
    let viewer_query = ViewerQuery {
        country: Some("us".into()),
        sort: ViewerSort::Engagement,
        limit: 50,
        offset: 100,
        ..ViewerQuery::default()
    };
    let viewers_page = repeat(|| {
        analytics::viewer_list(&mut conn, tenant, presentation, &viewer_query).unwrap();
    });
    let list_query = PresentationQuery {
        sort: PresentationSort::Viewers,
        limit: 50,
        ..PresentationQuery::default()
    };
    let first_list = timed(|| {
        analytics::presentation_list(&mut conn, tenant, &list_query).unwrap();
    });
    let list = repeat(|| {
        analytics::presentation_list(&mut conn, tenant, &list_query).unwrap();
    });
    // The old way: read the export, keep this presentation's events, replay.
    let replay = repeat_n(3, || {
        let mut replay = Replay::new();
        let reader = shared::source::open_local(&export, 0).unwrap().reader;
        for line in shared::export::LineReader::new(reader, 0, 0) {
            let line = line.unwrap();
            if let Ok(event) = backfill::parse_line(&line.bytes) {
                if event.stream_id == presentation {
                    replay.add(&event);
                }
            }
        }
        replay.report(tenant, presentation).unwrap();
    });
    println!("{:<44} {:>10} {:>10}", "query", "median ms", "p95 ms");
    let row =
        |name: &str, (median, p95): (f64, f64)| println!("{name:<44} {median:>10.2} {p95:>10.2}");
    println!(
        "{:<44} {:>10.2}",
        "report, first (computed)",
        ms(first_report)
    );
    row("report (cached per revision)", report);
    row(
        "viewer page (country, engagement, offset 100)",
        viewers_page,
    );
    println!(
        "{:<44} {:>10.2}",
        "presentation list, first (summaries refreshed)",
        ms(first_list)
    );
    row("presentation list (1,000, by viewers)", list);
    row("old way: replay the presentation from export", replay);
    println!(
        "report speed-up over the replay: {:.0}x cached, {:.0}x first",
        replay.0 / report.0,
        replay.0 / ms(first_report)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn timed(mut f: impl FnMut()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}

fn repeat(f: impl FnMut()) -> (f64, f64) {
    repeat_n(RUNS, f)
}

/// Median and 95th percentile in milliseconds.
fn repeat_n(n: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut times: Vec<f64> = (0..n).map(|_| ms(timed(&mut f))).collect();
    times.sort_by(f64::total_cmp);
    let p95 = times[((n as f64 * 0.95).ceil() as usize).min(n) - 1];
    (times[n / 2], p95)
}
