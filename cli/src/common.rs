//! What every `warehouse` command shares: the warehouse connection, the
//! jobs' context with its progress display, the tokio runtime, AWS
//! configuration on demand, RFC 3339 times, and printing answers as JSON.

use std::io::IsTerminal;

use shared::jobs::{BackfillProgress, JobContext};
use shared::redrive::QueueUrls;
use shared::store::{Database, DatabaseSettings};

/// A connection pool on DATABASE_URL or the DB_* settings.
pub fn database(max_connections: usize) -> anyhow::Result<Database> {
    let settings = DatabaseSettings::from_env()?;
    Ok(Database::connect_blocking(settings, max_connections)?)
}

/// AWS configuration, loaded only when a command uses S3 or SQS (loading it
/// otherwise would look for credentials and a region for nothing).
pub async fn aws_if(needed: bool) -> Option<aws_config::SdkConfig> {
    match needed {
        true => Some(shared::store::sdk_config().await),
        false => None,
    }
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

pub fn parse_time(text: &str) -> anyhow::Result<i64> {
    shared::contract::parse_rfc3339(text).map_err(|e| {
        anyhow::anyhow!("{text:?} is not an RFC 3339 time ({e}); write e.g. 2021-09-14T00:00:00Z")
    })
}

/// Prints a value as JSON on stdout: compact, or indented with `pretty`.
pub fn print_json(value: &impl serde::Serialize, pretty: bool) -> anyhow::Result<()> {
    let text = if pretty {
        serde_json::to_string_pretty(value)?
    } else {
        serde_json::to_string(value)?
    };
    println!("{text}");
    Ok(())
}

/// A backfill context with a progress display: a bar on a terminal, a log
/// line every ten seconds otherwise.
pub fn context(
    db: Database,
    s3: Option<aws_sdk_s3::Client>,
    sqs: Option<aws_sdk_sqs::Client>,
    queues: QueueUrls,
    batch_lines: usize,
    batch_bytes: usize,
) -> JobContext {
    let terminal = std::io::stderr().is_terminal();
    let last_log = std::sync::Mutex::new(std::time::Instant::now());
    JobContext {
        db: std::sync::Arc::new(db),
        s3,
        sqs,
        queues,
        // The operator names the export: a file or any S3 location.
        exports: shared::export::ExportScope::Anywhere,
        batch_lines,
        batch_bytes,
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
