//! A live event's scale (issue 16 item 5): one big live presentation's
//! attendance loaded by 1, 2 and 4 concurrent loaders while the report and
//! the timeline are asked every 100 ms, against a control of 4 loaders on 4
//! separate presentations of the same total size.
//!
//! The event: 20,000 viewers, each a join, 20 heartbeats (one every 30 s, so
//! ten minutes) and a leave: 440,000 attendance events from
//! `shared::jobs::generate`, unshuffled (time order, as a live feed delivers
//! them), its other data points left out. The control: 4 presentations of
//! 5,000 viewers, each in its own tenant, so that no row of any table is
//! shared between its loaders.
//!
//! Each loader is an `SqsLoader` with its own `Database` of one connection,
//! as separate Lambda containers are. It takes the next batch from the queue
//! (one queue shared by all; in the control, loader i reads presentation i's
//! queue only), as real SQS event JSON decoded as the runtime does, in
//! batches of 1,000 (the template's `LoaderBatchSize` default, which the
//! attendance mapping uses; `batch=N` for another). Messages reported as
//! failures are delivered again, as SQS would. Each run loads a fresh
//! database.
//!
//! Meanwhile the API reader asks the report (`presentation_report_read_only`,
//! the API's path: served from the cache when fresh, never writing it) and
//! the timeline every 100 ms, and a CLI reader asks `presentation_report`
//! (the path that writes the cache, as `warehouse report` does) every
//! second, so that the cache is written during ingest and the API can be
//! served from it. Every served report is checked against what was
//! committed before its read started (`integration_tests::freshness`): in
//! this bench `dataThrough`, the
//! sessions and the total watch time only grow, so a report showing less of
//! any of them is older than the last committed load ("stale").
//!
//! Run: `cargo bench -p integration-tests --bench live` (`-- quick`: 2,000
//! viewers and one round; `rounds=N`, default 3; `batch=N`; `pair`: only 4
//! loaders on one presentation and the control).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use integration_tests::freshness::Committed;
use integration_tests::harness::sqs_event;
use integration_tests::helpers::TestDb;
use shared::contract::{parse_event, DataPoint};
use shared::handlers::SqsLoader;
use shared::jobs::generate::{generate, GenerateOptions};
use shared::read::{presentation_report, presentation_report_read_only, timeline};
use shared::store::Database;

/// The template's `LoaderBatchSize` default (the attendance mapping's).
const DEFAULT_BATCH: usize = 1_000;
const HEARTBEATS: u32 = 20;
const API_PERIOD: Duration = Duration::from_millis(100);
const CLI_PERIOD: Duration = Duration::from_secs(1);
const REPORT_P95_TARGET_MS: f64 = 100.0;
const RATIO_TARGET: f64 = 0.9;

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let arg = |name: &str| -> Option<usize> {
        std::env::args().find_map(|a| a.strip_prefix(name)?.parse().ok())
    };
    let rounds = arg("rounds=").unwrap_or(if quick { 1 } else { 3 }).max(1);
    let batch = arg("batch=").unwrap_or(DEFAULT_BATCH).max(1);
    let pair = std::env::args().any(|a| a == "pair");
    let viewers: u32 = if quick { 2_000 } else { 20_000 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let one = workload(
        "one presentation",
        &GenerateOptions {
            tenants: 1,
            presentations: 1,
            viewers,
            heartbeats: HEARTBEATS,
            seed: 16,
            shuffle: false,
            first_presentation: 0,
        },
        batch,
    );
    let four = workload(
        "four presentations (control)",
        &GenerateOptions {
            tenants: 4,
            presentations: 4,
            viewers: viewers / 4,
            heartbeats: HEARTBEATS,
            seed: 16,
            shuffle: false,
            first_presentation: 0,
        },
        batch,
    );
    assert_eq!(one.events, four.events, "the control has as many events");
    println!(
        "live presentation: {viewers} viewers, each a join, {HEARTBEATS} heartbeats (every 30 s) and a leave: \
         {} attendance events in time order; control: 4 presentations of {} viewers in 4 tenants; \
         batches of {batch}; API reader every {} ms (report, timeline), CLI reader every {} ms (report, writes the cache)",
        one.events,
        viewers / 4,
        API_PERIOD.as_millis(),
        CLI_PERIOD.as_millis()
    );
    println!(
        "{:<5} {:<7} {:>7} {:>10} {:>9} {:>22} {:>22} {:>9} {:>7} {:>9} {:>9} {:>12} {:>8}",
        "round",
        "loaders",
        "prs",
        "events/s",
        "seconds",
        "report p50/p95 ms (n)",
        "timeline p50/p95 (n)",
        "stale",
        "cached",
        "redeliv.",
        "refresh",
        "lock waits",
        "retries"
    );
    // (loaders, control) → runs.
    let mut runs: BTreeMap<(usize, bool), Vec<Run>> = BTreeMap::new();
    for round in 1..=rounds {
        // Alternated by round, so that neither side of the 4-on-one / control
        // pair always runs first on a machine whose speed drifts.
        let mut order = if pair {
            vec![(4, false), (4, true)]
        } else {
            vec![(1, false), (2, false), (4, false), (4, true)]
        };
        if round % 2 == 0 {
            order.reverse();
        }
        for (loaders, control) in order {
            let run = run(&runtime, if control { &four } else { &one }, loaders);
            run.print(round, loaders, if control { 4 } else { 1 });
            runs.entry((loaders, control)).or_default().push(run);
        }
    }

    println!(
        "\n== summary over {rounds} round(s) (medians of the rounds' rates; latencies pooled) =="
    );
    let median_rate = |key: (usize, bool)| median(runs[&key].iter().map(|r| r.rate).collect());
    let one_loader = runs
        .contains_key(&(1, false))
        .then(|| median_rate((1, false)));
    let mut report_p95_met = true;
    for &key in runs.keys() {
        let pooled = Reads::pooled(runs[&key].iter().map(|r| &r.api));
        let (r50, r95) = percentiles(&pooled.report_ms);
        let (t50, t95) = percentiles(&pooled.timeline_ms);
        if !key.1 {
            report_p95_met &= r95 < REPORT_P95_TARGET_MS;
        }
        println!(
            "{} loader(s) on {}: {:.0} events/s{}; report p50 {r50:.1} / p95 {r95:.1} ms, timeline p50 {t50:.1} / p95 {t95:.1} ms ({} reads)",
            key.0,
            if key.1 { "4 presentations" } else { "one presentation" },
            median_rate(key),
            one_loader.map_or(String::new(), |one| format!(" ({:.2}x one loader)", median_rate(key) / one)),
            pooled.report_ms.len()
        );
    }
    let ratios: Vec<f64> = runs[&(4, false)]
        .iter()
        .zip(&runs[&(4, true)])
        .map(|(one, four)| one.rate / four.rate)
        .collect();
    let ratio = median(ratios.clone());
    let listed: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
    println!(
        "4 loaders on one presentation / 4 on four: {ratio:.2} (rounds: {}); target >= {RATIO_TARGET}: {}",
        listed.join(", "),
        verdict(ratio >= RATIO_TARGET)
    );
    println!(
        "report p95 during ingest, one presentation, at every concurrency: target < {REPORT_P95_TARGET_MS} ms: {}",
        verdict(report_p95_met)
    );
    let all: Vec<&Run> = runs.values().flatten().collect();
    let checked: usize = all.iter().map(|r| r.api.checked + r.cli.checked).sum();
    let stale: Vec<&String> = all
        .iter()
        .flat_map(|r| r.api.stale.iter().chain(&r.cli.stale))
        .collect();
    let cached: usize = all.iter().map(|r| r.api.fresh_cache).sum();
    println!(
        "reports older than the last committed load: {} of {checked} checked ({cached} API reads began with a fresh cached copy); must be 0: {}",
        stale.len(),
        verdict(stale.is_empty())
    );
    for s in stale.iter().take(10) {
        println!("  stale: {s}");
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT MET"
    }
}

struct Presentation {
    tenant: String,
    id: String,
    viewers: i64,
}

struct Workload {
    /// Per queue, the batches' payloads (the SQS event JSON the runtime
    /// receives): one queue, or one per presentation.
    queues: Vec<Vec<String>>,
    presentations: Vec<Presentation>,
    events: usize,
}

/// The attendance events of `options`, in batches of `batch`; one queue per
/// presentation when there are several.
fn workload(name: &str, options: &GenerateOptions, batch: usize) -> Workload {
    let mut export = Vec::new();
    generate(options, &mut export).unwrap();
    let mut by_presentation: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for line in String::from_utf8(export).unwrap().lines() {
        let event = parse_event(line).unwrap();
        if event.data_point() == Some(DataPoint::Attendance) {
            by_presentation
                .entry((event.tenant_id.to_string(), event.stream_id.to_string()))
                .or_default()
                .push(line.to_string());
        }
    }
    let payloads = |bodies: &[String]| -> Vec<String> {
        bodies
            .chunks(batch)
            .map(|chunk| {
                let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
                serde_json::to_string(&sqs_event(&refs)).unwrap()
            })
            .collect()
    };
    let events = by_presentation.values().map(Vec::len).sum();
    let queues = by_presentation.values().map(|b| payloads(b)).collect();
    let presentations = by_presentation
        .into_keys()
        .map(|(tenant, id)| Presentation {
            tenant,
            id,
            viewers: i64::from(options.viewers),
        })
        .collect();
    eprintln!("{name}: {events} events generated");
    Workload {
        queues,
        presentations,
        events,
    }
}

struct Run {
    rate: f64,
    seconds: f64,
    api: Reads,
    cli: Reads,
    loading: Loading,
    /// Row lock waits on the server during the run (its global counters:
    /// other databases' waits included), and their time in seconds.
    lock_waits: u64,
    lock_wait_seconds: f64,
    /// Transactions retried (deadlocks, lock wait timeouts), from `load_run`.
    retries: i64,
}

/// The loaders' time, summed over all of them.
#[derive(Default)]
struct Loading {
    /// Messages delivered again after being reported as failures.
    redelivered: AtomicUsize,
    /// In `handle_batch`, and in its refresh of the summaries after commit.
    busy_us: AtomicUsize,
    refresh_us: AtomicUsize,
}

impl Loading {
    fn refresh_share(&self) -> f64 {
        let busy = self.busy_us.load(Ordering::Relaxed).max(1);
        self.refresh_us.load(Ordering::Relaxed) as f64 / busy as f64
    }
}

impl Run {
    fn print(&self, round: usize, loaders: usize, presentations: usize) {
        let (r50, r95) = percentiles(&self.api.report_ms);
        let (t50, t95) = percentiles(&self.api.timeline_ms);
        println!(
            "{round:<5} {loaders:<7} {presentations:>7} {:>10.0} {:>9.1} {:>22} {:>22} {:>9} {:>7} {:>9} {:>8.0}% {:>12} {:>8}",
            self.rate,
            self.seconds,
            format!("{r50:.1}/{r95:.1} ({})", self.api.report_ms.len()),
            format!("{t50:.1}/{t95:.1} ({})", self.api.timeline_ms.len()),
            format!(
                "{}/{}",
                self.api.stale.len() + self.cli.stale.len(),
                self.api.checked + self.cli.checked
            ),
            self.api.fresh_cache,
            self.loading.redelivered.load(Ordering::Relaxed),
            self.loading.refresh_share() * 100.0,
            format!("{} / {:.1}s", self.lock_waits, self.lock_wait_seconds),
            self.retries
        );
    }
}

/// Loads `workload` with `loaders` concurrent loaders into a fresh database
/// while the readers read; checks every event was loaded once.
fn run(runtime: &tokio::runtime::Runtime, workload: &Workload, loaders: usize) -> Run {
    let test = TestDb::new();
    let aws = runtime.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            // No dead-letter queue is reached: every event is valid.
            .endpoint_url("http://127.0.0.1:9")
            .load(),
    );
    let loaders: Vec<SqsLoader> = (0..loaders)
        .map(|i| {
            // One connection each, as one Lambda container holds.
            let db = runtime
                .block_on(Database::connect(test.settings(), 1))
                .unwrap();
            SqsLoader::new(
                DataPoint::Attendance,
                format!("load-attendance-{i}"),
                std::sync::Arc::new(db),
                aws_sdk_sqs::Client::new(&aws),
                "unused",
            )
        })
        .collect();
    let cursors: Vec<AtomicUsize> = workload
        .queues
        .iter()
        .map(|_| AtomicUsize::new(0))
        .collect();
    let done = AtomicBool::new(false);
    let loading = Loading::default();
    let locks_before = row_lock_status(&test);
    let (seconds, api, cli) = std::thread::scope(|s| {
        let mut api_conn = test.conn();
        let mut cli_conn = test.conn();
        let done = &done;
        let api = s.spawn(move || read(&mut api_conn, &workload.presentations, done, true));
        let cli = s.spawn(move || read(&mut cli_conn, &workload.presentations, done, false));
        let started = Instant::now();
        let workers: Vec<_> = loaders
            .iter()
            .enumerate()
            .map(|(i, loader)| {
                let queue = i % workload.queues.len();
                let (payloads, cursor) = (&workload.queues[queue], &cursors[queue]);
                let loading = &loading;
                s.spawn(move || loop {
                    let next = cursor.fetch_add(1, Ordering::Relaxed);
                    let Some(payload) = payloads.get(next) else {
                        break;
                    };
                    runtime.block_on(deliver(loader, payload, loading));
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        let seconds = started.elapsed().as_secs_f64();
        done.store(true, Ordering::Release);
        (seconds, api.join().unwrap(), cli.join().unwrap())
    });

    let locks_after = row_lock_status(&test);
    // Every event loaded once, and every viewer's session counted.
    let loaded = test.count("SELECT COUNT(*) FROM event_ledger") as usize;
    assert_eq!(loaded, workload.events, "every event loaded once");
    let mut conn = test.conn();
    for p in &workload.presentations {
        let report = presentation_report_read_only(&mut conn, &p.tenant, &p.id).unwrap();
        assert_eq!(report.attendance.sessions, p.viewers, "{}", p.id);
        assert_eq!(report.attendance.unique_viewers, p.viewers, "{}", p.id);
    }
    Run {
        rate: workload.events as f64 / seconds,
        seconds,
        api,
        cli,
        loading,
        retries: test.count("SELECT CAST(COALESCE(SUM(attempts - 1), 0) AS SIGNED) FROM load_run"),
        lock_waits: locks_after.0 - locks_before.0,
        lock_wait_seconds: (locks_after.1 - locks_before.1) as f64 / 1000.0,
    }
}

/// The server's `Innodb_row_lock_waits` and `Innodb_row_lock_time` (ms).
fn row_lock_status(test: &TestDb) -> (u64, u64) {
    let rows: Vec<(String, u64)> = test.rows(
        "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
         WHERE VARIABLE_NAME IN ('INNODB_ROW_LOCK_WAITS', 'INNODB_ROW_LOCK_TIME')",
    );
    let get = |name: &str| rows.iter().find(|(n, _)| n == name).map_or(0, |r| r.1);
    (get("INNODB_ROW_LOCK_WAITS"), get("INNODB_ROW_LOCK_TIME"))
}

/// One invocation as the runtime makes it (the payload's JSON decoded),
/// then the messages reported as failures again, as SQS redelivers them.
async fn deliver(loader: &SqsLoader, payload: &str, loading: &Loading) {
    let mut event: SqsEvent = serde_json::from_str(payload).unwrap();
    for _ in 0..5 {
        let mut retry = event.clone();
        let started = Instant::now();
        let (response, report) = loader
            .handle_batch(event, Instant::now() + Duration::from_secs(60))
            .await;
        let micros = |d: Duration| d.as_micros() as usize;
        loading
            .busy_us
            .fetch_add(micros(started.elapsed()), Ordering::Relaxed);
        loading
            .refresh_us
            .fetch_add(micros(report.refresh_time), Ordering::Relaxed);
        if response.batch_item_failures.is_empty() {
            return;
        }
        let failed: Vec<&String> = response
            .batch_item_failures
            .iter()
            .map(|f| &f.item_identifier)
            .collect();
        retry
            .records
            .retain(|r| r.message_id.as_ref().is_some_and(|id| failed.contains(&id)));
        loading
            .redelivered
            .fetch_add(retry.records.len(), Ordering::Relaxed);
        event = retry;
    }
    panic!("messages still failing after 5 deliveries");
}

/// What one reader saw.
#[derive(Default)]
struct Reads {
    report_ms: Vec<f64>,
    timeline_ms: Vec<f64>,
    /// Reports checked against the state committed before their read.
    checked: usize,
    /// Reports older than that state, described.
    stale: Vec<String>,
    /// Reads that began with a fresh cached report in the database.
    fresh_cache: usize,
}

impl Reads {
    fn pooled<'a>(all: impl Iterator<Item = &'a Reads>) -> Reads {
        let mut pooled = Reads::default();
        for r in all {
            pooled.report_ms.extend(&r.report_ms);
            pooled.timeline_ms.extend(&r.timeline_ms);
        }
        pooled
    }
}

/// Until `done`: the API's report and timeline (`api`) every
/// [`API_PERIOD`], or the CLI's caching report every [`CLI_PERIOD`], of
/// each presentation in turn; each report checked against the state
/// committed before its read.
fn read(
    conn: &mut mysql::PooledConn,
    presentations: &[Presentation],
    done: &AtomicBool,
    api: bool,
) -> Reads {
    let period = if api { API_PERIOD } else { CLI_PERIOD };
    let mut reads = Reads::default();
    let mut next = Instant::now();
    while !done.load(Ordering::Acquire) {
        for p in presentations {
            // Not loaded yet: nothing to ask.
            let Some(before) = Committed::read(conn, &p.tenant, &p.id) else {
                continue;
            };
            if api && before.cache_is_fresh() {
                reads.fresh_cache += 1;
            }
            let started = Instant::now();
            let report = if api {
                presentation_report_read_only(conn, &p.tenant, &p.id)
            } else {
                presentation_report(conn, &p.tenant, &p.id)
            }
            .unwrap();
            let took = ms(started.elapsed());
            reads.report_ms.push(took);
            reads.checked += 1;
            if let Some(why) = before.staleness(&report) {
                reads
                    .stale
                    .push(format!("{}: {why}", if api { "API" } else { "CLI" }));
            }
            if api {
                let started = Instant::now();
                let curve = timeline(conn, &p.tenant, &p.id).unwrap();
                reads.timeline_ms.push(ms(started.elapsed()));
                if let Some(why) = before.timeline_staleness(&curve.data_through) {
                    reads.stale.push(format!("API: {why}"));
                }
            }
        }
        // The next tick, or at once when the reads overran it (no backlog).
        next += period;
        while Instant::now() < next && !done.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5).min(next - Instant::now()));
        }
        next = next.max(Instant::now());
    }
    reads
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// p50 and p95 (nearest rank) in milliseconds; zeros without samples.
fn percentiles(samples: &[f64]) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank =
        |q: f64| sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1];
    (rank(0.5), rank(0.95))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
