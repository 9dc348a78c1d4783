//! The backfill: an export (local or `s3://`, plain or gzip) into the
//! warehouse, through the loaders' own `load_batch` (`direct`) or onto the
//! data points' queues (`enqueue`). Streamed, in bounded memory; resumable:
//! each batch's effect and the run's checkpoint commit together.

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use serde::{Deserialize, Serialize};

use crate::db::{with_retry, Database, DbError};
use crate::event::{parse_event, DataPoint, Event};
use crate::export::{Line, LineReader};
use crate::load::{load_batch, record_rejects, Item, Reject, RejectKind};
use crate::source::{open_source, Source};

/// Lines per transaction: large enough to amortise round trips, small enough
/// to keep statements and lock sets modest.
pub const DEFAULT_BATCH_LINES: usize = 5_000;

/// SQS's limit for one message and for one `SendMessageBatch` call.
pub const MAX_SQS_PAYLOAD_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Direct,
    Enqueue,
}

impl Mode {
    pub fn parse(text: &str) -> Result<Mode, String> {
        match text {
            "direct" => Ok(Mode::Direct),
            "enqueue" => Ok(Mode::Enqueue),
            other => Err(format!(
                "mode must be \"direct\" or \"enqueue\", got {other:?}"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Direct => "direct",
            Mode::Enqueue => "enqueue",
        }
    }
}

/// Which events a run takes; the others are counted as `skipped`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Filters {
    pub tenants: Vec<String>,
    pub presentations: Vec<String>,
    /// Inclusive bounds on `occurredAt`, milliseconds.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Empty: all data points, and the events that are not analytics.
    pub data_points: Vec<DataPoint>,
}

impl Filters {
    pub fn accepts(&self, event: &Event) -> bool {
        (self.tenants.is_empty() || self.tenants.contains(&event.tenant_id))
            && (self.presentations.is_empty() || self.presentations.contains(&event.stream_id))
            && self.from_ms.is_none_or(|from| event.occurred_at >= from)
            && self.to_ms.is_none_or(|to| event.occurred_at <= to)
            && (self.data_points.is_empty()
                || event
                    .data_point()
                    .is_some_and(|dp| self.data_points.contains(&dp)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackfillOptions {
    pub source: String,
    pub mode: Mode,
    #[serde(default)]
    pub filters: Filters,
    #[serde(default)]
    pub dry_run: bool,
}

/// The run's counters; persisted with each checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Counters {
    /// Non-blank lines read.
    pub lines: u64,
    /// Distinct valid events newly loaded (`direct`), or events sent (`enqueue`).
    pub events: u64,
    /// Valid lines repeating an identity already loaded (`direct` only: in
    /// `enqueue` mode the loaders decide).
    pub duplicates: u64,
    pub malformed: u64,
    /// Valid events whose type is not analytics (counted, never sent).
    pub not_analytics: u64,
    /// Duplicates whose content differs from the first (also in `duplicates`).
    pub conflicts: u64,
    /// Valid events the filters left out.
    pub skipped: u64,
    /// Loaded (`direct`) or sent (`enqueue`) per data point.
    pub by_data_point: BTreeMap<String, u64>,
}

/// The summary a run prints (CLI) or returns (Lambda).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub run_id: String,
    pub done: bool,
    pub next_offset: u64,
    pub mode: Mode,
    pub dry_run: bool,
    #[serde(flatten)]
    pub counters: Counters,
    pub elapsed_seconds: f64,
    /// `events` (new events loaded, or sent) per second of the run.
    pub events_per_second: f64,
}

/// Where the queues of `enqueue` mode are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueUrls(pub BTreeMap<DataPoint, String>);

impl QueueUrls {
    /// `QUEUE_URL_PRESENTATION`, `QUEUE_URL_ATTENDANCE`, `QUEUE_URL_POLLS`,
    /// `QUEUE_URL_SURVEYS`, `QUEUE_URL_QNA`.
    pub fn from_env() -> Result<QueueUrls, crate::config::ConfigError> {
        let mut urls = BTreeMap::new();
        for dp in DataPoint::ALL {
            let name = format!("QUEUE_URL_{}", dp.as_str().to_uppercase());
            urls.insert(
                dp,
                crate::config::required_env(
                    &name,
                    &format!("the {dp} queue's URL (enqueue mode)"),
                )?,
            );
        }
        Ok(QueueUrls(urls))
    }
}

/// What a run needs beyond its options.
pub struct Context {
    pub db: Arc<Database>,
    pub s3: Option<aws_sdk_s3::Client>,
    pub sqs: Option<aws_sdk_sqs::Client>,
    pub queues: QueueUrls,
    pub batch_lines: usize,
    /// Called after each committed batch (progress display).
    pub on_progress: Option<ProgressCallback>,
}

pub type ProgressCallback = Box<dyn Fn(&Progress) + Send + Sync>;

#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub lines: u64,
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    pub elapsed: Duration,
}

/// A batch parsed ahead of loading (by the reader thread).
struct ParsedBatch {
    lines: Vec<Line>,
    parsed: Vec<Option<Result<Event, String>>>,
    nonblank: u64,
    end_offset: u64,
    last_line: u64,
}

pub fn parse_line(bytes: &[u8]) -> Result<Event, String> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_event(text).map_err(|e| e.to_string()),
        Err(e) => Err(format!(
            "the line is not valid UTF-8 ({e}); exports are UTF-8 text"
        )),
    }
}

fn new_run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("bf-{secs}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

#[derive(Clone, Default)]
struct Checkpoint {
    next_offset: u64,
    next_line: u64,
    counters: Counters,
    elapsed_ms: u64,
    done: bool,
}

/// Starts a run or resumes it: returns where to continue.
fn begin(db: &Database, run_id: &str, options: &BackfillOptions) -> Result<Checkpoint, DbError> {
    let options_json = serde_json::to_string(options).expect("options serialise");
    let mut conn = db.conn()?;
    let existing: Option<(String, String, u64, u64, String, u64)> = conn
        .exec_first(
            "SELECT options_json, status, next_offset, next_line, counters_json, elapsed_ms FROM backfill_run WHERE run_id = ?",
            (run_id,),
        )
        .map_err(|e| DbError(format!("cannot read backfill run {run_id}: {e}")))?;
    match existing {
        Some((stored, status, next_offset, next_line, counters, elapsed_ms)) => {
            if stored != options_json {
                return Err(DbError(format!(
                    "run {run_id} was started with other options ({stored}); resume it with the same source, mode and filters, or use another --run-id"
                )));
            }
            conn.exec_drop(
                "UPDATE backfill_run SET invocations = invocations + 1 WHERE run_id = ?",
                (run_id,),
            )
            .map_err(|e| DbError(e.to_string()))?;
            Ok(Checkpoint {
                next_offset,
                next_line,
                counters: serde_json::from_str(&counters).unwrap_or_default(),
                elapsed_ms,
                done: status == "done",
            })
        }
        None => {
            conn.exec_drop(
                "INSERT INTO backfill_run (run_id, source, mode, options_json, status, counters_json, invocations) VALUES (?, ?, ?, ?, 'running', '{}', 1)",
                (run_id, &options.source, options.mode.as_str(), &options_json),
            )
            .map_err(|e| DbError(format!("cannot start backfill run {run_id}: {e}")))?;
            Ok(Checkpoint::default())
        }
    }
}

fn save_checkpoint(
    tx: &mut impl Queryable,
    run_id: &str,
    checkpoint: &Checkpoint,
) -> Result<(), mysql::Error> {
    tx.exec_drop(
        "UPDATE backfill_run SET next_offset = ?, next_line = ?, counters_json = ?, elapsed_ms = ?, status = ?, \
         updated_at = CURRENT_TIMESTAMP(3), finished_at = IF(? = 'done', CURRENT_TIMESTAMP(3), NULL) WHERE run_id = ?",
        (
            checkpoint.next_offset,
            checkpoint.next_line,
            serde_json::to_string(&checkpoint.counters).expect("counters serialise"),
            checkpoint.elapsed_ms,
            if checkpoint.done { "done" } else { "running" },
            if checkpoint.done { "done" } else { "running" },
            run_id,
        ),
    )
}

/// Runs (or resumes) a backfill until the export ends or `stop_at` passes.
pub async fn run(
    ctx: &Context,
    options: &BackfillOptions,
    run_id: Option<String>,
    stop_at: Option<Instant>,
) -> Result<Summary, DbError> {
    let started = Instant::now();
    if options.mode == Mode::Enqueue && !options.dry_run && ctx.sqs.is_none() {
        return Err(DbError("enqueue mode needs an SQS client".into()));
    }
    let run_id = run_id.unwrap_or_else(new_run_id);
    let mut checkpoint = if options.dry_run {
        Checkpoint::default()
    } else {
        let db = ctx.db.clone();
        let (id, opts) = (run_id.clone(), options.clone());
        tokio::task::spawn_blocking(move || begin(&db, &id, &opts))
            .await
            .map_err(|e| DbError(format!("backfill start failed: {e}")))??
    };
    let base_elapsed_ms = checkpoint.elapsed_ms;
    if !checkpoint.done {
        let source = Source::parse(&options.source).map_err(DbError)?;
        let opened = open_source(&source, ctx.s3.as_ref(), checkpoint.next_offset)
            .await
            .map_err(|e| DbError(e.to_string()))?;
        let bytes_total = opened.total_bytes;
        let bytes_read = opened.bytes_read.clone();
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<io::Result<ParsedBatch>>(2);
        let batch_lines = ctx.batch_lines.max(1);
        let first_line = checkpoint.next_line;
        let start_offset = checkpoint.next_offset;
        // Reading, decompressing and parsing run on their own thread while
        // the previous batch loads: the two cores both work.
        let reader_thread = std::thread::spawn(move || {
            read_batches(
                opened.reader,
                first_line,
                start_offset,
                batch_lines,
                &sender,
            )
        });
        let mut stopped_early = false;
        while let Some(batch) = receiver.recv().await {
            let batch =
                batch.map_err(|e| DbError(format!("cannot read {}: {e}", options.source)))?;
            checkpoint = apply_batch(
                ctx,
                options,
                &run_id,
                checkpoint,
                batch,
                base_elapsed_ms,
                started,
            )
            .await?;
            if let Some(report) = &ctx.on_progress {
                report(&Progress {
                    lines: checkpoint.counters.lines,
                    bytes_done: bytes_read.load(std::sync::atomic::Ordering::Relaxed),
                    bytes_total,
                    elapsed: started.elapsed(),
                });
            }
            if stop_at.is_some_and(|at| Instant::now() >= at) {
                stopped_early = true;
                break;
            }
        }
        drop(receiver);
        let _ = reader_thread.join();
        if !stopped_early {
            checkpoint.done = true;
            checkpoint.elapsed_ms = base_elapsed_ms + started.elapsed().as_millis() as u64;
            if !options.dry_run {
                let db = ctx.db.clone();
                let id = run_id.clone();
                let final_checkpoint = checkpoint.clone();
                checkpoint = tokio::task::spawn_blocking(move || {
                    let mut conn = db.conn()?;
                    save_checkpoint(&mut conn, &id, &final_checkpoint)
                        .map_err(|e| DbError(e.to_string()))?;
                    Ok::<_, DbError>(final_checkpoint)
                })
                .await
                .map_err(|e| DbError(format!("backfill finish failed: {e}")))??;
            }
        }
    }
    let elapsed_seconds = if checkpoint.done && checkpoint.elapsed_ms > 0 {
        checkpoint.elapsed_ms as f64 / 1000.0
    } else {
        (base_elapsed_ms as f64 / 1000.0) + started.elapsed().as_secs_f64()
    };
    Ok(Summary {
        run_id,
        done: checkpoint.done,
        next_offset: checkpoint.next_offset,
        mode: options.mode,
        dry_run: options.dry_run,
        events_per_second: if elapsed_seconds > 0.0 {
            (checkpoint.counters.events as f64 / elapsed_seconds).round()
        } else {
            0.0
        },
        counters: checkpoint.counters,
        elapsed_seconds,
    })
}

fn read_batches(
    reader: Box<dyn BufRead + Send>,
    first_line: u64,
    start_offset: u64,
    batch_lines: usize,
    sender: &tokio::sync::mpsc::Sender<io::Result<ParsedBatch>>,
) {
    let mut lines = LineReader::new(reader, first_line, start_offset);
    loop {
        let mut batch = ParsedBatch {
            lines: Vec::with_capacity(batch_lines),
            parsed: Vec::with_capacity(batch_lines),
            nonblank: 0,
            end_offset: start_offset,
            last_line: first_line,
        };
        while batch.lines.len() < batch_lines {
            match lines.next_line() {
                Ok(Some(line)) => {
                    batch.end_offset = line.end_offset;
                    batch.last_line = line.number;
                    if line.is_blank() {
                        batch.parsed.push(None);
                    } else {
                        batch.nonblank += 1;
                        batch.parsed.push(Some(parse_line(&line.bytes)));
                    }
                    batch.lines.push(line);
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = sender.blocking_send(Err(e));
                    return;
                }
            }
        }
        if batch.lines.is_empty() {
            return;
        }
        let last = batch.lines.len() < batch_lines;
        if sender.blocking_send(Ok(batch)).is_err() || last {
            return;
        }
    }
}

/// Loads or sends one batch, then commits its checkpoint.
async fn apply_batch(
    ctx: &Context,
    options: &BackfillOptions,
    run_id: &str,
    mut checkpoint: Checkpoint,
    batch: ParsedBatch,
    base_elapsed_ms: u64,
    started: Instant,
) -> Result<Checkpoint, DbError> {
    checkpoint.counters.lines += batch.nonblank;
    checkpoint.next_offset = batch.end_offset;
    checkpoint.next_line = batch.last_line;
    checkpoint.elapsed_ms = base_elapsed_ms + started.elapsed().as_millis() as u64;
    // What this batch takes: valid events the filters accept, and the rejects.
    let mut taken: Vec<usize> = Vec::new();
    let mut rejected: Vec<(usize, String)> = Vec::new();
    for (index, parsed) in batch.parsed.iter().enumerate() {
        match parsed {
            None => {}
            Some(Err(reason)) => rejected.push((index, reason.clone())),
            Some(Ok(event)) if options.filters.accepts(event) => taken.push(index),
            Some(Ok(_)) => checkpoint.counters.skipped += 1,
        }
    }
    checkpoint.counters.malformed += rejected.len() as u64;
    if options.dry_run {
        for &index in &taken {
            let event = batch.parsed[index]
                .as_ref()
                .and_then(|r| r.as_ref().ok())
                .expect("taken events are valid");
            checkpoint.counters.events += 1;
            match event.data_point() {
                Some(dp) => {
                    *checkpoint
                        .counters
                        .by_data_point
                        .entry(dp.to_string())
                        .or_default() += 1
                }
                None => checkpoint.counters.not_analytics += 1,
            }
        }
        return Ok(checkpoint);
    }
    let mut unsendable: Vec<(usize, String)> = Vec::new();
    if options.mode == Mode::Enqueue {
        let sqs = ctx.sqs.as_ref().expect("checked at start");
        let (sent, too_large) =
            enqueue(sqs, &ctx.queues, &batch, &taken, &mut checkpoint.counters).await?;
        checkpoint.counters.events += sent;
        unsendable = too_large;
    }
    let source = format!("backfill:{run_id}");
    let run_id = run_id.to_string();
    let db = ctx.db.clone();
    let mode = options.mode;
    tokio::task::spawn_blocking(move || {
        let items: Vec<Item> = if mode == Mode::Direct {
            taken
                .iter()
                .map(|&index| Item {
                    event: batch.parsed[index]
                        .as_ref()
                        .and_then(|r| r.as_ref().ok())
                        .expect("taken events are valid"),
                    raw: std::str::from_utf8(&batch.lines[index].bytes).unwrap_or_default(),
                    line: batch.lines[index].number,
                })
                .collect()
        } else {
            Vec::new()
        };
        let rejects: Vec<Reject> = rejected
            .iter()
            .chain(unsendable.iter())
            .map(|(index, reason)| Reject {
                raw: &batch.lines[*index].bytes,
                reason: reason.clone(),
                kind: RejectKind::Malformed,
                line: batch.lines[*index].number,
                identity: None,
            })
            .collect();
        let far = Instant::now() + Duration::from_secs(300);
        let (counted, _) = with_retry(&db, far, |conn| {
            let mut tx = conn.start_transaction(mysql::TxOpts::default())?;
            let mut next = checkpoint.clone();
            if mode == Mode::Direct {
                let outcome = load_batch(&mut tx, &source, &items, &rejects, 1)?;
                let c = &mut next.counters;
                c.events += outcome.counts.loaded;
                c.duplicates += outcome.counts.duplicates;
                c.conflicts += outcome.counts.conflicts;
                c.not_analytics += outcome.counts.not_analytics;
                for (dp, n) in &outcome.counts.loaded_by_data_point {
                    *c.by_data_point.entry(dp.to_string()).or_default() += n;
                }
            } else {
                record_rejects(&mut tx, &source, rejects.iter())?;
            }
            save_checkpoint(&mut tx, &run_id, &next)?;
            tx.commit()?;
            Ok(next)
        })?;
        Ok(counted)
    })
    .await
    .map_err(|e| DbError(format!("loading a batch failed: {e}")))?
}

/// A `SendMessageBatch` entry: its id in the call, the body and the `type` attribute.
type Entry = (String, String, String);

/// One message for a data point's queue: the event's text and its type.
struct Outgoing {
    data_point: DataPoint,
    body: String,
    event_type: String,
}

/// Sends the batch's analytics events to their queues. Returns how many were
/// sent and the lines too large for SQS.
async fn enqueue(
    sqs: &aws_sdk_sqs::Client,
    queues: &QueueUrls,
    batch: &ParsedBatch,
    taken: &[usize],
    counters: &mut Counters,
) -> Result<(u64, Vec<(usize, String)>), DbError> {
    let mut too_large = Vec::new();
    let mut outgoing = Vec::with_capacity(taken.len());
    for &index in taken {
        let event = batch.parsed[index]
            .as_ref()
            .and_then(|r| r.as_ref().ok())
            .expect("taken events are valid");
        let Some(data_point) = event.data_point() else {
            counters.not_analytics += 1;
            continue;
        };
        let body = String::from_utf8_lossy(&batch.lines[index].bytes).into_owned();
        if body.len() + event.event_type.len() + 16 > MAX_SQS_PAYLOAD_BYTES {
            too_large.push((
                index,
                format!("the event is {} bytes, over SQS's 256 KiB message limit: load it with --mode direct", body.len()),
            ));
            continue;
        }
        *counters
            .by_data_point
            .entry(data_point.to_string())
            .or_default() += 1;
        outgoing.push(Outgoing {
            data_point,
            body,
            event_type: event.event_type.clone(),
        });
    }
    let sent = send_events(sqs, queues, outgoing).await?;
    Ok((sent, too_large))
}

/// Re-drives events (the reconciliation's missing ones) through the same
/// paths as the backfill: onto their queues, or loaded directly.
pub async fn redrive(
    ctx: &Context,
    repair: crate::reconcile::Repair,
    events: &[(Event, Vec<u8>)],
) -> Result<u64, DbError> {
    if events.is_empty() {
        return Ok(0);
    }
    match repair {
        crate::reconcile::Repair::Queue => {
            let sqs = ctx
                .sqs
                .as_ref()
                .ok_or_else(|| DbError("queue repair needs an SQS client".into()))?;
            let outgoing = events
                .iter()
                .filter_map(|(event, raw)| {
                    Some(Outgoing {
                        data_point: event.data_point()?,
                        body: String::from_utf8_lossy(raw).into_owned(),
                        event_type: event.event_type.clone(),
                    })
                })
                .collect();
            send_events(sqs, &ctx.queues, outgoing).await
        }
        // In place (the reconciliation runs on the multi-threaded runtime):
        // the events are borrowed, not copied for another thread.
        crate::reconcile::Repair::Direct => tokio::task::block_in_place(|| {
            let items: Vec<Item> = events
                .iter()
                .map(|(event, raw)| Item {
                    event,
                    raw: std::str::from_utf8(raw).unwrap_or_default(),
                    line: 0,
                })
                .collect();
            let deadline = Instant::now() + Duration::from_secs(300);
            let outcome = crate::load::commit_batch(
                &ctx.db,
                deadline,
                "reconcile-repair",
                &items,
                &[],
                None,
            )?;
            Ok(outcome.counts.loaded)
        }),
    }
}

/// Sends messages to their data points' queues, 10 per call and within
/// SQS's payload limit, several calls in flight, retrying entries that failed
/// on the service's side.
async fn send_events(
    sqs: &aws_sdk_sqs::Client,
    queues: &QueueUrls,
    outgoing: Vec<Outgoing>,
) -> Result<u64, DbError> {
    // (queue URL, entries) per SendMessageBatch call; entries are (id, body, type).
    let mut groups: Vec<(String, Vec<Entry>)> = Vec::new();
    let mut current: BTreeMap<DataPoint, (Vec<Entry>, usize)> = BTreeMap::new();
    let mut sent = 0u64;
    for message in outgoing {
        let url = queues.0.get(&message.data_point).ok_or_else(|| {
            DbError(format!(
                "no queue URL for the {} data point",
                message.data_point
            ))
        })?;
        let size = message.body.len() + message.event_type.len() + 16;
        let (entries, bytes) = current.entry(message.data_point).or_default();
        if entries.len() == 10 || *bytes + size > MAX_SQS_PAYLOAD_BYTES {
            groups.push((url.clone(), std::mem::take(entries)));
            *bytes = 0;
        }
        entries.push((entries.len().to_string(), message.body, message.event_type));
        *bytes += size;
        sent += 1;
    }
    for (dp, (entries, _)) in current {
        if !entries.is_empty() {
            groups.push((queues.0[&dp].clone(), entries));
        }
    }
    let mut in_flight = tokio::task::JoinSet::new();
    for (url, entries) in groups {
        if in_flight.len() >= 8 {
            if let Some(result) = in_flight.join_next().await {
                result.map_err(|e| DbError(format!("sending failed: {e}")))??;
            }
        }
        let sqs = sqs.clone();
        in_flight.spawn(async move { send_with_retry(&sqs, &url, entries).await });
    }
    while let Some(result) = in_flight.join_next().await {
        result.map_err(|e| DbError(format!("sending failed: {e}")))??;
    }
    Ok(sent)
}

async fn send_with_retry(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    mut entries: Vec<Entry>,
) -> Result<(), DbError> {
    use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
    let mut backoff = Duration::from_millis(100);
    for attempt in 1..=8 {
        let request: Vec<SendMessageBatchRequestEntry> = entries
            .iter()
            .map(|(id, body, event_type)| {
                SendMessageBatchRequestEntry::builder()
                    .id(id)
                    .message_body(body)
                    .message_attributes(
                        "type",
                        MessageAttributeValue::builder()
                            .data_type("String")
                            .string_value(event_type)
                            .build()
                            .expect("data type is set"),
                    )
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        match sqs
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(request))
            .send()
            .await
        {
            Ok(output) => {
                if let Some(permanent) = output.failed.iter().find(|f| f.sender_fault) {
                    return Err(DbError(format!(
                        "SQS refused a message for {url}: {} {}",
                        permanent.code,
                        permanent.message.as_deref().unwrap_or("")
                    )));
                }
                let failed: Vec<&str> = output.failed.iter().map(|f| f.id.as_str()).collect();
                entries.retain(|(id, _, _)| failed.contains(&id.as_str()));
                if entries.is_empty() {
                    return Ok(());
                }
            }
            Err(error) if attempt == 8 => {
                return Err(DbError(format!(
                    "cannot send to {url}: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(&error)
                )))
            }
            Err(_) => {}
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    Err(DbError(format!(
        "{} messages for {url} still failed after retries",
        entries.len()
    )))
}
