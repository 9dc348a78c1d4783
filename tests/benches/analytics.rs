//! Analytics latency from the warehouse, beside the old way (replaying the
//! presentation's events in memory from the export), in one run.
//!
//! One generated presentation with 20,000 viewers and about 2 million events,
//! in a tenant that grows from 100 to 1,000 to 5,000 presentations; every
//! figure is measured at each size (the report must not depend on it). Run:
//! `cargo bench -p integration-tests --bench analytics`; add `-- quick` for a
//! 2,000-viewer presentation in a tenant of 10, 100 and 500, `-- fresh` to
//! reload from scratch, `-- first` to measure the first size only, `-- profile`
//! (with `RUST_LOG=shared::read=debug`) to print the time of each query
//! of the answers.
//!
//! Beside the report: the timeline computed (§4), the viewer page sorted by
//! engagement score (§5), and the CSV of every viewer (§7) written into a
//! sink that only counts, timed and with the process's peak RSS growth while
//! it is written, beside the same for its first tenth: streamed, the two
//! grow alike. Each figure is printed with its target (issue 16 item 5).
//!
//! Loading the big presentation takes minutes, so the database
//! (`wh_bench_analytics_<viewers>`) is kept between runs: each export piece
//! is loaded once, and the tenant's added presentations are deleted again at
//! the start of the next run so that it can grow from its first size again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use shared::jobs::backfill::{self, BackfillOptions, Filters, Mode};
use shared::jobs::generate::{generate, GenerateOptions};
use shared::jobs::JobContext;
use shared::read::Replay;
use shared::read::{
    self as analytics, PresentationQuery, PresentationSort, ViewerQuery, ViewerSort,
};
use shared::redrive::QueueUrls;
use shared::store::Database;
use shared::store::{DatabaseSettings, Secret};

const RUNS: usize = 21;
const TENANT: &str = "tenant-0";
const PRESENTATION: &str = "prs-000000";

fn main() {
    let arg = |name: &str| std::env::args().any(|a| a == name);
    let (viewers, sizes) = if arg("quick") {
        (2_000, [10, 100, 500])
    } else {
        (20_000, [100, 1_000, 5_000])
    };
    if arg("profile") {
        shared::telemetry::init_cli();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join("warehouse-bench-analytics");
    std::fs::create_dir_all(&dir).unwrap();

    // Export pieces: the big presentation, then the tenant's other (small)
    // presentations, one piece per size step.
    let big = GenerateOptions {
        tenants: 1,
        presentations: 1,
        viewers,
        heartbeats: 98,
        seed: 3,
        shuffle: true,
        first_presentation: 0,
    };
    let mut pieces = vec![piece(&dir, &big)];
    let mut first = 1;
    for size in sizes {
        let small = GenerateOptions {
            presentations: size - first,
            viewers: 20,
            heartbeats: 4,
            first_presentation: first,
            ..big.clone()
        };
        pieces.push(piece(&dir, &small));
        first = size;
    }

    let url = format!(
        "{}/wh_bench_analytics_{viewers}",
        std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
            .trim_end_matches('/')
    );
    let settings = DatabaseSettings::Url(Secret::new(url));
    if arg("fresh") {
        shared::store::drop_database(&settings).unwrap();
    }
    shared::store::create_database_if_missing(&settings).unwrap();
    let db = Arc::new(Database::connect_blocking(settings, 2).unwrap());
    shared::store::migrate::run(&db).unwrap();
    let mut conn = db.conn().unwrap();
    conn.query_drop("CREATE TABLE IF NOT EXISTS bench_piece (name VARCHAR(255) PRIMARY KEY)")
        .unwrap();
    remove_grown(&mut conn, sizes[0]);
    let mut measured = Vec::new();
    // `first`: only the first size (a quicker look, e.g. with `profile`).
    let steps = if arg("first") { 1 } else { sizes.len() };
    for (step, size) in sizes.into_iter().take(steps).enumerate() {
        // Pieces 0 and 1 make the first size; each later size adds one.
        for path in &pieces[..step + 2] {
            load_once(&runtime, &db, &mut conn, path);
        }
        println!("\n== tenant with {size} presentations ==");
        measured.push((size, measure(&mut conn, viewers)));
    }
    // The old way (reading the export of the tenant's first size).
    let replay = repeat_n(3, || timed(|| replay(&pieces[..2])));
    println!();
    row("old way: read the export, replay", replay);
    for (size, m) in &measured {
        println!(
            "report computed, tenant of {size}: {:.0}x faster than the replay",
            replay.0 / m.report.0
        );
    }
    println!("\ntargets (medians; tenant sizes in order):");
    let each = |f: &dyn Fn(&Measured) -> f64, unit: &str| -> String {
        let v: Vec<String> = measured
            .iter()
            .map(|(_, m)| format!("{:.1}{unit}", f(m)))
            .collect();
        v.join(", ")
    };
    let all = |f: &dyn Fn(&Measured) -> bool| verdict(measured.iter().all(|(_, m)| f(m)));
    println!(
        "report computed < 50 ms: {} ({})",
        each(&|m| m.report.0, " ms"),
        all(&|m| m.report.0 < 50.0)
    );
    println!(
        "report computed >= 100x the replay: {} ({})",
        each(&|m| replay.0 / m.report.0, "x"),
        all(&|m| replay.0 / m.report.0 >= 100.0)
    );
    println!(
        "timeline computed < 50 ms: {} ({})",
        each(&|m| m.timeline.0, " ms"),
        all(&|m| m.timeline.0 < 50.0)
    );
    println!(
        "viewer page by score < 100 ms: {} ({})",
        each(&|m| m.score_page.0, " ms"),
        all(&|m| m.score_page.0 < 100.0)
    );
    println!(
        "CSV of all {viewers} rows < 1 s: {} ({})",
        each(&|m| m.csv_all.median_ms, " ms"),
        all(&|m| m.csv_all.median_ms < 1000.0)
    );
    // Flat: writing every row grows the peak (median of the runs) no more
    // than writing a tenth of them, within 1 MiB (allocator and client
    // buffers round up), and no run grows it as much as holding the CSV.
    println!(
        "CSV at flat memory (peak RSS growth, median and max, all rows vs a tenth; held whole): {} ({})",
        measured
            .iter()
            .map(|(_, m)| format!(
                "{}/{} vs {}/{} KiB; {} KiB",
                m.csv_all.median_growth_kib(),
                m.csv_all.max_growth_kib(),
                m.csv_part.median_growth_kib(),
                m.csv_part.max_growth_kib(),
                m.csv_held_kib
            ))
            .collect::<Vec<_>>()
            .join(", "),
        all(&|m| m.csv_all.median_growth_kib() <= m.csv_part.median_growth_kib() + 1024
            && m.csv_all.max_growth_kib() < m.csv_held_kib)
    );
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT MET"
    }
}

/// The medians and p95s (ms) of one tenant size, for the targets.
struct Measured {
    report: (f64, f64),
    timeline: (f64, f64),
    score_page: (f64, f64),
    csv_all: Csv,
    csv_part: Csv,
    /// The peak RSS growth of the CSV of every row held in a `Vec`.
    csv_held_kib: u64,
}

/// A CSV written into a counting sink.
struct Csv {
    rows: u64,
    bytes: u64,
    median_ms: f64,
    p95_ms: f64,
    /// The growth of the process's peak RSS in each run, sorted.
    growths_kib: Vec<u64>,
}

impl Csv {
    fn median_growth_kib(&self) -> u64 {
        self.growths_kib[self.growths_kib.len() / 2]
    }

    fn max_growth_kib(&self) -> u64 {
        self.growths_kib[self.growths_kib.len() - 1]
    }
}

/// The generated export of `options`, written once.
fn piece(dir: &Path, options: &GenerateOptions) -> PathBuf {
    let path = dir.join(format!(
        "piece-{}-{}-{}.jsonl",
        options.first_presentation, options.presentations, options.viewers
    ));
    if !path.exists() {
        let partial = path.with_extension("partial");
        let mut out = std::io::BufWriter::new(std::fs::File::create(&partial).unwrap());
        generate(options, &mut out).unwrap();
        drop(out);
        std::fs::rename(&partial, &path).unwrap();
    }
    path
}

fn load_once(
    runtime: &tokio::runtime::Runtime,
    db: &Arc<Database>,
    conn: &mut mysql::PooledConn,
    path: &Path,
) {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let done: Option<String> = conn
        .exec_first("SELECT name FROM bench_piece WHERE name = ?", (&name,))
        .unwrap();
    if done.is_some() {
        return;
    }
    let ctx = JobContext {
        db: db.clone(),
        s3: None,
        sqs: None,
        queues: QueueUrls::default(),
        exports: shared::export::ExportScope::Anywhere,
        batch_lines: backfill::DEFAULT_BATCH_LINES,
        batch_bytes: backfill::DEFAULT_BATCH_BYTES,
        on_progress: None,
        before_lane_commit: None,
    };
    let options = BackfillOptions {
        source: path.display().to_string(),
        mode: Mode::Direct,
        filters: Filters::default(),
        dry_run: false,
        lanes: backfill::DEFAULT_LANES,
    };
    let loaded = runtime
        .block_on(backfill::run(&ctx, &options, None, None))
        .unwrap();
    println!(
        "loaded {name}: {} events in {:.1}s",
        loaded.counters.events, loaded.elapsed_seconds
    );
    conn.exec_drop("INSERT INTO bench_piece (name) VALUES (?)", (&name,))
        .unwrap();
}

/// Deletes the presentations a previous run added past the first size (and
/// forgets their pieces), so that the tenant grows from there again.
fn remove_grown(conn: &mut mysql::PooledConn, first_size: u32) {
    let first_grown = format!("prs-{first_size:06}");
    let keys: Vec<u64> = conn
        .exec(
            "SELECT presentation_key FROM dim_presentation WHERE presentation_id >= ?",
            (&first_grown,),
        )
        .unwrap();
    if keys.is_empty() {
        return;
    }
    let list = keys
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let tables: Vec<String> = conn
        .query(
            "SELECT table_name FROM information_schema.columns \
             WHERE table_schema = DATABASE() AND column_name = 'presentation_key'",
        )
        .unwrap();
    for table in tables {
        conn.query_drop(format!(
            "DELETE FROM `{table}` WHERE presentation_key IN ({list})"
        ))
        .unwrap();
    }
    conn.exec_drop(
        "DELETE FROM event_ledger WHERE stream_id >= ?",
        (&first_grown,),
    )
    .unwrap();
    conn.exec_drop(
        "DELETE FROM bench_piece WHERE name NOT LIKE 'piece-0-%' AND name NOT LIKE 'piece-1-%'",
        (),
    )
    .unwrap();
    println!("removed {} presentations of a previous run", keys.len());
}

/// Prints the figures of one tenant size; returns those with targets.
fn measure(conn: &mut mysql::PooledConn, viewers: u32) -> Measured {
    // Computed: the cached report is removed before each call (untimed), as
    // after a load touching the presentation.
    let computed = repeat_n(RUNS, || {
        conn.query_drop("DELETE FROM agg_presentation_report")
            .unwrap();
        timed(|| report(conn))
    });
    let cached = repeat_n(RUNS, || timed(|| report(conn)));
    let viewer_query = ViewerQuery {
        country: Some("us".into()),
        sort: ViewerSort::Engagement,
        limit: 50,
        offset: 100,
        ..ViewerQuery::default()
    };
    let viewers_page = repeat_n(RUNS, || {
        timed(|| {
            analytics::viewer_list(conn, TENANT, PRESENTATION, &viewer_query).unwrap();
        })
    });
    let timeline = repeat_n(RUNS, || {
        timed(|| {
            analytics::timeline(conn, TENANT, PRESENTATION).unwrap();
        })
    });
    let score_query = ViewerQuery {
        sort: ViewerSort::Score,
        ..ViewerQuery::default()
    };
    let score_page = repeat_n(RUNS, || {
        timed(|| {
            analytics::viewer_list(conn, TENANT, PRESENTATION, &score_query).unwrap();
        })
    });
    let csv_all = csv(conn, None);
    // A tenth of the rows, through the same query (`LIMIT`).
    let csv_part = csv(conn, Some(u64::from(viewers / 10)));
    let csv_held = csv_held_growth_kib(conn);
    let list_query = PresentationQuery {
        sort: PresentationSort::Viewers,
        limit: 50,
        ..PresentationQuery::default()
    };
    let first_list = timed(|| {
        analytics::presentation_list(conn, TENANT, &list_query).unwrap();
    });
    let list = repeat_n(RUNS, || {
        timed(|| {
            analytics::presentation_list(conn, TENANT, &list_query).unwrap();
        })
    });
    println!("{:<48} {:>10} {:>10}", "query", "median ms", "p95 ms");
    row("report, computed (no cached report)", computed);
    row("report, cached per revision", cached);
    row(
        "viewer page (country, engagement, offset 100)",
        viewers_page,
    );
    row("timeline (computed, nothing cached)", timeline);
    row("viewer page (score sort, first 50)", score_page);
    let part = format!("CSV by score, first {} rows", csv_part.rows);
    // What the measurement would show of a CSV held whole in memory.
    println!(
        "{:<48} {:>10} {:>10}   peak RSS +{csv_held} KiB",
        "(check: every viewer's CSV kept in a Vec)", "", ""
    );
    for (name, c) in [
        ("CSV by score, every viewer", &csv_all),
        (part.as_str(), &csv_part),
    ] {
        println!(
            "{:<48} {:>10.2} {:>10.2}   {} rows, {} KiB, peak RSS +{:?} KiB",
            name,
            c.median_ms,
            c.p95_ms,
            c.rows,
            c.bytes / 1024,
            c.growths_kib
        );
    }
    println!(
        "{:<48} {:>10.2}",
        "presentation list, first (summaries refreshed)",
        ms(first_list)
    );
    row("presentation list (by viewers)", list);
    Measured {
        report: computed,
        timeline,
        score_page,
        csv_all,
        csv_part,
        csv_held_kib: csv_held,
    }
}

const CSV_RUNS: usize = 7;

/// The viewer CSV by score (every row, or the first `max_rows`) into a sink
/// that only counts, `CSV_RUNS` times after one untimed warm-up: times, and
/// the growth of the peak RSS while each was written (the peak is reset to
/// the current RSS before each).
fn csv(conn: &mut mysql::PooledConn, max_rows: Option<u64>) -> Csv {
    let query = ViewerQuery {
        sort: ViewerSort::Score,
        ..ViewerQuery::default()
    };
    let mut write = |sink: &mut Counting| {
        analytics::viewer_csv(conn, TENANT, PRESENTATION, &query, max_rows, sink).unwrap()
    };
    write(&mut Counting::default());
    let mut times = Vec::new();
    let mut growths_kib = Vec::new();
    let mut sink = Counting::default();
    for _ in 0..CSV_RUNS {
        sink = Counting::default();
        // Linux: `5` resets the peak (VmHWM) to the current RSS.
        std::fs::write("/proc/self/clear_refs", "5").unwrap();
        let before = status_kib("VmRSS:");
        times.push(timed(|| {
            write(&mut sink);
        }));
        growths_kib.push(status_kib("VmHWM:").saturating_sub(before));
    }
    let mut ms_sorted: Vec<f64> = times.into_iter().map(ms).collect();
    ms_sorted.sort_by(f64::total_cmp);
    Csv {
        rows: sink.lines.saturating_sub(1), // the header
        bytes: sink.bytes,
        median_ms: ms_sorted[CSV_RUNS / 2],
        p95_ms: ms_sorted[CSV_RUNS - 1],
        growths_kib: {
            growths_kib.sort_unstable();
            growths_kib
        },
    }
}

/// The peak RSS growth while every viewer's CSV is written into a `Vec`
/// that keeps it: the growth the measurement shows of a CSV held whole.
fn csv_held_growth_kib(conn: &mut mysql::PooledConn) -> u64 {
    let query = ViewerQuery {
        sort: ViewerSort::Score,
        ..ViewerQuery::default()
    };
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = status_kib("VmRSS:");
    let mut held = Vec::new();
    analytics::viewer_csv(conn, TENANT, PRESENTATION, &query, None, &mut held).unwrap();
    let growth = status_kib("VmHWM:").saturating_sub(before);
    drop(held);
    growth
}

/// A sink that keeps nothing: counts bytes and lines.
#[derive(Default)]
struct Counting {
    bytes: u64,
    lines: u64,
}

impl std::io::Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes += buf.len() as u64;
        self.lines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A `kB` field of /proc/self/status.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn report(conn: &mut mysql::PooledConn) {
    analytics::presentation_report(conn, TENANT, PRESENTATION).unwrap();
}

/// The old way: read the export, keep this presentation's events, replay.
fn replay(exports: &[PathBuf]) {
    let mut replay = Replay::new();
    for export in exports {
        let reader = shared::export::open_local(export, 0).unwrap().reader;
        for line in shared::export::LineReader::new(reader, 0, 0) {
            let line = line.unwrap();
            if let Ok(event) = shared::export::parse_line(line.as_read()) {
                if event.stream_id == PRESENTATION {
                    replay.add(&event);
                }
            }
        }
    }
    replay.report(TENANT, PRESENTATION).unwrap();
}

fn row(name: &str, (median, p95): (f64, f64)) {
    println!("{name:<48} {median:>10.2} {p95:>10.2}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn timed(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}

/// Median and 95th percentile in milliseconds of `n` calls of `f`, each
/// returning the time of what it measured.
fn repeat_n(n: usize, mut f: impl FnMut() -> Duration) -> (f64, f64) {
    let mut times: Vec<f64> = (0..n).map(|_| ms(f())).collect();
    times.sort_by(f64::total_cmp);
    let p95 = times[((n as f64 * 0.95).ceil() as usize).min(n) - 1];
    (times[n / 2], p95)
}
