//! `warehouse`: the operator command line. Every subcommand prints its answer
//! as JSON on stdout and a one-line error on stderr with a non-zero exit.

use std::path::PathBuf;
use std::process::ExitCode;

use std::io::IsTerminal;

mod analytics_commands;

use clap::{Parser, Subcommand};
use shared::contract::DataPoint;
use shared::jobs::backfill::{self, BackfillOptions, Filters, Mode};
use shared::jobs::generate::{generate, GenerateOptions};
use shared::jobs::{BackfillProgress, JobContext};
use shared::redrive::QueueUrls;
use shared::store::Database;
use shared::store::DatabaseSettings;

#[derive(Parser)]
#[command(name = "warehouse", version, about = "Operate the analytics warehouse")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations (DATABASE_URL or the DB_* settings).
    Migrate {
        /// Create the database named in DATABASE_URL first if it does not exist.
        #[arg(long)]
        create_database: bool,
    },
    /// The whole pipeline locally on the real function binaries: moto queues
    /// with dead-letter queues, the functions under `cargo lambda watch`'s
    /// control plane, an event source mapping per queue; the backfill
    /// function enqueues the export, the loaders drain the queues, the
    /// reconcile function compares, the analytics API answers a report.
    Pipeline {
        /// The export to load (defaults to the sample beside the repository).
        #[arg(long)]
        source: Option<PathBuf>,
        /// Drop and recreate the database of DATABASE_URL first, so the run
        /// starts from an empty warehouse.
        #[arg(long)]
        fresh: bool,
        /// Most messages per loader invocation.
        #[arg(long, default_value_t = 100)]
        batch_size: usize,
        /// Give up when the queues are not empty after this many seconds.
        #[arg(long, default_value_t = 900)]
        drain_seconds: u64,
    },
    /// Load a mongoexport JSON Lines export (plain or gzip, local or s3://),
    /// resumably: re-run with the same --run-id to continue.
    Backfill(BackfillArgs),
    /// One presentation's report (ANALYTICS.md §1).
    Report(analytics_commands::ReportArgs),
    /// The viewers of one presentation, filtered, sorted and paged (ANALYTICS.md §2).
    Viewers(analytics_commands::ViewersArgs),
    /// A tenant's presentations, filtered, sorted and paged (ANALYTICS.md §3).
    Presentations(analytics_commands::PresentationsArgs),
    /// The analytics API's rollout flags per tenant and data point: set, list.
    Flags(analytics_commands::FlagsArgs),
    /// Compare an export (the source of truth) with the warehouse ledger and
    /// report what is missing, unexpected or conflicting; optionally repair.
    Reconcile {
        /// A local path, s3://bucket/key, or s3://bucket/prefix/ for every object under it.
        #[arg(long)]
        source: String,
        /// Window start on occurredAt (RFC 3339); defaults to the export's first event.
        #[arg(long)]
        from: Option<String>,
        /// Window end on occurredAt (RFC 3339); defaults to the export's last event.
        #[arg(long)]
        to: Option<String>,
        /// Re-drive missing events to their queues (QUEUE_URL_*) or load them directly.
        #[arg(long, value_parser = ["queue", "direct"])]
        repair: Option<String>,
    },
    /// Release check: replay a diagonal slice of presentations from the export
    /// the old way and compare each report with the warehouse's, field by field.
    Verify {
        /// The export the warehouse was loaded from (path or s3://).
        #[arg(long)]
        source: String,
        /// How many presentations to check.
        #[arg(long, default_value_t = 10)]
        sample: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Write a synthetic export made to the contract (for benchmarks and load tests).
    Generate {
        /// Where to write (stdout when absent).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, default_value_t = 10)]
        presentations: u32,
        /// Viewers per presentation.
        #[arg(long, default_value_t = 100)]
        viewers: u32,
        /// Heartbeats per viewing session.
        #[arg(long, default_value_t = 20)]
        heartbeats: u32,
        #[arg(long, default_value_t = 2)]
        tenants: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(clap::Args)]
struct BackfillArgs {
    /// A local path or s3://bucket/key.
    #[arg(long)]
    source: String,
    /// direct: load into the warehouse; enqueue: send to the data points' queues (QUEUE_URL_*).
    #[arg(long, default_value = "direct", value_parser = ["direct", "enqueue"])]
    mode: String,
    /// Continue this run (its checkpoint is in the warehouse) or name a new one.
    #[arg(long)]
    run_id: Option<String>,
    /// Only these tenants (repeatable).
    #[arg(long = "tenant")]
    tenants: Vec<String>,
    /// Only these presentations (repeatable).
    #[arg(long = "presentation")]
    presentations: Vec<String>,
    /// Only events with occurredAt at or after this RFC 3339 time.
    #[arg(long)]
    from: Option<String>,
    /// Only events with occurredAt at or before this RFC 3339 time.
    #[arg(long)]
    to: Option<String>,
    /// Only these data points (repeatable): presentation, attendance, polls, surveys, qna.
    #[arg(long = "data-point")]
    data_points: Vec<String>,
    /// Parse, validate and count only; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Lines per transaction.
    #[arg(long, default_value_t = shared::jobs::backfill::DEFAULT_BATCH_LINES)]
    batch_lines: usize,
    /// Connections loading at once in direct mode (events are dealt to them
    /// by presentation); a resumed run must use its own number again.
    #[arg(long, default_value_t = shared::jobs::backfill::DEFAULT_LANES,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=shared::jobs::backfill::MAX_LANES as u64))]
    lanes: usize,
    /// Run it in this deployed backfill function (name or ARN) instead of
    /// here, invoking it again with the returned runId until it is done
    /// (the function's BACKFILL_BATCH_LINES replaces --batch-lines there).
    #[arg(long, value_name = "FUNCTION")]
    via_lambda: Option<String>,
}

fn main() -> ExitCode {
    shared::telemetry::init_cli();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("warehouse: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn database(max_connections: usize) -> anyhow::Result<Database> {
    let settings = DatabaseSettings::from_env()?;
    Ok(Database::connect_blocking(settings, max_connections)?)
}

/// AWS configuration, loaded only when a command uses S3 or SQS (loading it
/// otherwise would look for credentials and a region for nothing).
async fn aws_if(needed: bool) -> Option<aws_config::SdkConfig> {
    match needed {
        true => Some(shared::store::sdk_config().await),
        false => None,
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn parse_time(text: &str) -> anyhow::Result<i64> {
    shared::contract::parse_rfc3339(text).map_err(|e| {
        anyhow::anyhow!("{text:?} is not an RFC 3339 time ({e}); write e.g. 2021-09-14T00:00:00Z")
    })
}

/// A backfill context with a progress display: a bar on a terminal, a log
/// line every ten seconds otherwise.
fn backfill_context(
    db: Database,
    s3: Option<aws_sdk_s3::Client>,
    sqs: Option<aws_sdk_sqs::Client>,
    queues: QueueUrls,
    batch_lines: usize,
) -> JobContext {
    let terminal = std::io::stderr().is_terminal();
    let last_log = std::sync::Mutex::new(std::time::Instant::now());
    JobContext {
        db: std::sync::Arc::new(db),
        s3,
        sqs,
        queues,
        batch_lines,
        on_progress: Some(Box::new(move |p: &BackfillProgress| {
            let seconds = p.elapsed.as_secs_f64().max(0.001);
            let rate = p.lines as f64 / seconds;
            let eta = p
                .bytes_total
                .filter(|t| p.bytes_done > 0 && *t > p.bytes_done)
                .map(|t| seconds * (t - p.bytes_done) as f64 / p.bytes_done as f64);
            let line = format!(
                "{} lines, {:.0} lines/s, {:.1} MiB{} done{}",
                p.lines,
                rate,
                p.bytes_done as f64 / 1048576.0,
                p.bytes_total
                    .map(|t| format!(" of {:.1} MiB", t as f64 / 1048576.0))
                    .unwrap_or_default(),
                eta.map(|e| format!(", ETA {e:.0}s")).unwrap_or_default()
            );
            if terminal {
                eprint!("\r\x1b[2K{line}");
            } else {
                let mut last = last_log.lock().expect("progress lock");
                if last.elapsed().as_secs() >= 10 {
                    eprintln!("backfill: {line}");
                    *last = std::time::Instant::now();
                }
            }
        })),
        before_lane_commit: None,
    }
}

/// The presentation with the most viewers, for the pipeline's report.
fn busiest_presentation(db: &Database) -> anyhow::Result<Option<(String, String)>> {
    let mut conn = db.conn()?;
    Ok(mysql::prelude::Queryable::query_first(
        &mut conn,
        "SELECT p.tenant_id, p.presentation_id FROM dim_presentation p \
         LEFT JOIN fact_session s ON s.presentation_key = p.presentation_key AND s.join_version IS NOT NULL \
         GROUP BY p.presentation_key, p.tenant_id, p.presentation_id ORDER BY COUNT(s.session_id) DESC, p.presentation_id LIMIT 1",
    )?)
}

fn default_sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/samples/events.jsonl")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Migrate { create_database } => {
            if create_database {
                shared::store::create_database_if_missing(&DatabaseSettings::from_env()?)?;
            }
            let report = shared::store::migrate::run(&database(1)?)?;
            println!(
                "{}",
                serde_json::json!({"applied": report.applied, "alreadyApplied": report.already_applied})
            );
        }
        Command::Pipeline {
            source,
            fresh,
            batch_size,
            drain_seconds,
        } => {
            let source = source.unwrap_or_else(default_sample);
            let source = std::fs::canonicalize(&source)
                .map_err(|e| anyhow::anyhow!("cannot read the export {}: {e}", source.display()))?;
            let settings = DatabaseSettings::from_env()?;
            let DatabaseSettings::Url(database_url) = settings.clone() else {
                anyhow::bail!("the local pipeline needs DATABASE_URL (mysql://root@127.0.0.1:3306/warehouse_pipeline), not the RDS settings");
            };
            if fresh {
                shared::store::drop_database(&settings)?;
            }
            shared::store::create_database_if_missing(&settings)?;
            let db = database(1)?;
            shared::store::migrate::run(&db)?;
            let summary = runtime()?.block_on(async {
                let mut stack =
                    warehouse_cli::local::LocalStack::start(warehouse_cli::local::LocalOptions {
                        database_url,
                        batch_size,
                        visibility_timeout: std::time::Duration::from_secs(30),
                        queue_prefix: "warehouse".into(),
                        moto_endpoint: None,
                    })
                    .await?;
                warehouse_cli::local::run_pipeline(
                    &mut stack,
                    &source.display().to_string(),
                    std::time::Duration::from_secs(drain_seconds),
                    || busiest_presentation(&db),
                )
                .await
            })?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
        Command::Backfill(args) => {
            let filters = Filters {
                tenants: args.tenants,
                presentations: args.presentations,
                from_ms: args.from.as_deref().map(parse_time).transpose()?,
                to_ms: args.to.as_deref().map(parse_time).transpose()?,
                data_points: args
                    .data_points
                    .iter()
                    .map(|d| {
                        DataPoint::parse(d).ok_or_else(|| {
                            anyhow::anyhow!(
                                "--data-point must be one of presentation, attendance, polls, surveys, qna; got {d:?}"
                            )
                        })
                    })
                    .collect::<anyhow::Result<_>>()?,
            };
            let options = BackfillOptions {
                source: args.source,
                mode: Mode::parse(&args.mode).map_err(anyhow::Error::msg)?,
                filters,
                dry_run: args.dry_run,
                lanes: args.lanes,
            };
            let runtime = runtime()?;
            if let Some(function) = args.via_lambda {
                let mut payload = serde_json::to_value(&options)?;
                payload["runId"] = serde_json::json!(args.run_id);
                let summary = runtime.block_on(async {
                    let aws = shared::store::sdk_config().await;
                    warehouse_cli::invoke::invoke_until_done(
                        &aws_sdk_lambda::Client::new(&aws),
                        &function,
                        payload,
                        |answer| {
                            eprintln!(
                                "backfill: {function}: {} lines so far, next offset {}",
                                answer["lines"], answer["nextOffset"]
                            )
                        },
                    )
                    .await
                })?;
                println!("{}", serde_json::to_string_pretty(&summary)?);
                return Ok(());
            }
            let summary = runtime.block_on(async {
                let needs_s3 = options.source.starts_with("s3://");
                let enqueue = options.mode == Mode::Enqueue && !options.dry_run;
                let aws = aws_if(needs_s3 || enqueue).await;
                let queues = if enqueue {
                    QueueUrls::from_env()?
                } else {
                    QueueUrls::default()
                };
                let db = database(options.lanes.max(2))?;
                let ctx = backfill_context(
                    db,
                    aws.as_ref()
                        .filter(|_| needs_s3)
                        .map(shared::store::s3_client),
                    aws.as_ref()
                        .filter(|_| enqueue)
                        .map(shared::store::sqs_client),
                    queues,
                    args.batch_lines,
                );
                Ok::<_, anyhow::Error>(backfill::run(&ctx, &options, args.run_id, None).await?)
            })?;
            eprintln!();
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
        Command::Report(args) => analytics_commands::report(args)?,
        Command::Viewers(args) => analytics_commands::viewers(args)?,
        Command::Presentations(args) => analytics_commands::presentations(args)?,
        Command::Flags(args) => analytics_commands::flags(args)?,
        Command::Reconcile {
            source,
            from,
            to,
            repair,
        } => {
            let options = shared::jobs::reconcile::ReconcileOptions {
                source,
                from_ms: from.as_deref().map(parse_time).transpose()?,
                to_ms: to.as_deref().map(parse_time).transpose()?,
                repair: repair
                    .as_deref()
                    .map(shared::jobs::reconcile::Repair::parse)
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
            };
            let summary = runtime()?.block_on(async {
                let queue_repair = options.repair == Some(shared::jobs::reconcile::Repair::Queue);
                let uses_s3 = options.source.starts_with("s3://");
                let aws = aws_if(uses_s3 || queue_repair).await;
                let queues = if queue_repair {
                    QueueUrls::from_env()?
                } else {
                    QueueUrls::default()
                };
                let ctx = backfill_context(
                    database(2)?,
                    aws.as_ref()
                        .filter(|_| uses_s3)
                        .map(shared::store::s3_client),
                    aws.as_ref()
                        .filter(|_| queue_repair)
                        .map(shared::store::sqs_client),
                    queues,
                    backfill::DEFAULT_BATCH_LINES,
                );
                let (summary, _) = shared::jobs::reconcile::run_to_end(
                    &ctx.db,
                    ctx.s3.as_ref(),
                    Some(&ctx),
                    &options,
                )
                .await?;
                Ok::<_, anyhow::Error>(summary)
            })?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
        Command::Verify {
            source,
            sample,
            seed,
        } => {
            let report = runtime()?.block_on(async {
                let aws = aws_if(source.starts_with("s3://")).await;
                let s3 = aws.as_ref().map(shared::store::s3_client);
                let db = database(1)?;
                Ok::<_, anyhow::Error>(
                    shared::jobs::verify::verify(&db, s3.as_ref(), &source, sample, seed).await?,
                )
            })?;
            for (presentation, fields) in &report.differences {
                eprintln!("{presentation} differs from the replay:");
                for field in fields {
                    eprintln!("  {field}");
                }
            }
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !report.passed() {
                anyhow::bail!(
                    "{} of {} presentations differ from the old computation (fields listed above)",
                    report.differences.len(),
                    report.checked.len()
                );
            }
        }
        Command::Generate {
            out,
            presentations,
            viewers,
            heartbeats,
            tenants,
            seed,
        } => {
            let options = GenerateOptions {
                tenants,
                presentations,
                viewers,
                heartbeats,
                seed,
                shuffle: true,
                first_presentation: 0,
            };
            let summary = match out {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
                    generate(&options, &mut std::io::BufWriter::new(file))?
                }
                None => generate(
                    &options,
                    &mut std::io::BufWriter::new(std::io::stdout().lock()),
                )?,
            };
            eprintln!("generated {} lines, {} bytes", summary.lines, summary.bytes);
        }
    }
    Ok(())
}
