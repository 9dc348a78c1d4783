//! The backfill: an export (local or `s3://`, plain or gzip) into the
//! warehouse, through the loaders' own `load_batch` (`direct`) or onto the
//! data points' queues (`enqueue`). Streamed, in bounded memory; resumable:
//! each batch's effect and the run's checkpoint commit together.

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::error::TrySendError;

use crate::contract::{DataPoint, Event};
use crate::export::{open_source, Source};
use crate::export::{parse_line, ParseError};
use crate::export::{Line, LineReader};
use crate::store::{with_retry, Database, DbError};
use crate::write::{load_batch, record_rejects, Item, Reject, RejectKind};

/// Lines per transaction: large enough to amortise round trips, commits and
/// the per-batch merges (about one presentation's worth: 10,000 loaded 5 M
/// events with an eighth less server time than 5,000, BENCHMARKS.md), small
/// enough to keep statements and lock sets modest.
pub const DEFAULT_BATCH_LINES: usize = 10_000;

/// Connections a `direct` run loads on at once (`BackfillOptions::lanes`).
/// The database is the backfill's bottleneck, and one connection keeps one
/// of its cores busy. On 2 cores two lanes measured about 1.3 times one, and
/// three a little more again (a lane waiting on its commit leaves a core to
/// the others; BENCHMARKS.md, 2026-12-02).
pub const DEFAULT_LANES: usize = 3;

/// More lanes than this only wait on each other's locks.
pub const MAX_LANES: usize = 16;

fn default_lanes() -> usize {
    DEFAULT_LANES
}

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
    /// Connections loading at once in `direct` mode (other modes use one):
    /// events are dealt to lanes by presentation. Part of the run's options,
    /// so a resumed run deals its lines the same way.
    #[serde(default = "default_lanes")]
    pub lanes: usize,
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
    pub fn from_env() -> Result<QueueUrls, crate::store::ConfigError> {
        let mut urls = BTreeMap::new();
        for dp in DataPoint::ALL {
            let name = format!("QUEUE_URL_{}", dp.as_str().to_uppercase());
            urls.insert(
                dp,
                crate::store::required_env(&name, &format!("the {dp} queue's URL (enqueue mode)"))?,
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
    /// Runs in a lane's transaction just before it commits, with the lane and
    /// the batch's last line number: a seam for tests that make one lane fail
    /// while another goes on (`None` in production).
    pub before_lane_commit: Option<LaneHook>,
}

pub type LaneHook = Arc<dyn Fn(usize, u64) + Send + Sync>;

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
    parsed: Vec<Option<Result<Event, ParseError>>>,
    nonblank: u64,
    end_offset: u64,
    last_line: u64,
}

fn new_run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("bf-{secs}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// Where one lane stands: the byte offset just past the last batch whose
/// lines of this lane are committed, and the counters of those lines.
#[derive(Clone, Default)]
struct Checkpoint {
    next_offset: u64,
    next_line: u64,
    counters: Counters,
    elapsed_ms: u64,
}

/// A run's lanes, whether it is done, and its time so far.
struct RunState {
    lanes: Vec<Checkpoint>,
    done: bool,
    elapsed_ms: u64,
}

impl RunState {
    fn new(lanes: usize) -> RunState {
        RunState {
            lanes: vec![Checkpoint::default(); lanes],
            done: false,
            elapsed_ms: 0,
        }
    }

    /// The run as a whole: counters summed, the offset every lane has passed
    /// (where a resumed read starts), the longest elapsed time.
    fn total(&self) -> Checkpoint {
        let resume = self
            .lanes
            .iter()
            .min_by_key(|c| c.next_offset)
            .cloned()
            .unwrap_or_default();
        let mut total = Checkpoint {
            next_offset: resume.next_offset,
            next_line: resume.next_line,
            counters: Counters::default(),
            elapsed_ms: self
                .lanes
                .iter()
                .map(|c| c.elapsed_ms)
                .fold(self.elapsed_ms, u64::max),
        };
        for lane in &self.lanes {
            total.counters.add(&lane.counters);
        }
        total
    }
}

impl Counters {
    fn add(&mut self, other: &Counters) {
        self.lines += other.lines;
        self.events += other.events;
        self.duplicates += other.duplicates;
        self.malformed += other.malformed;
        self.not_analytics += other.not_analytics;
        self.conflicts += other.conflicts;
        self.skipped += other.skipped;
        for (dp, n) in &other.by_data_point {
            *self.by_data_point.entry(dp.clone()).or_default() += n;
        }
    }
}

/// How many lanes a run loads on: `direct` runs use their option, the others
/// one (what they write is small; their work is sending or counting).
fn lane_count(options: &BackfillOptions) -> usize {
    if options.mode == Mode::Direct && !options.dry_run {
        options.lanes.clamp(1, MAX_LANES)
    } else {
        1
    }
}

/// The lane a line belongs to: an event's presentation decides, so one
/// presentation's events stay in one lane in export order (and two lanes
/// never write the same ledger or fact rows); other lines go by line number.
/// The hash is spelled out (FNV-1a, then MurmurHash3's finaliser, whose low
/// bits are well mixed where FNV's are not) because a resumed run, maybe of
/// another release, must deal the same way.
fn lane_of(parsed: &Option<Result<Event, ParseError>>, line_number: u64, lanes: usize) -> usize {
    match parsed {
        Some(Ok(event)) => lane_of_stream(&event.stream_id, lanes),
        _ => (line_number % lanes as u64) as usize,
    }
}

/// The lane of a presentation's events in a run of `lanes` lanes.
pub fn lane_of_stream(stream_id: &str, lanes: usize) -> usize {
    let mut h = stream_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    ((h ^ (h >> 33)) % lanes as u64) as usize
}

/// Deals a batch's lines to the lanes, leaving out the lines a lane had
/// already committed before a resume.
fn deal(batch: ParsedBatch, lanes: &[Checkpoint]) -> Vec<ParsedBatch> {
    let mut dealt: Vec<ParsedBatch> = lanes
        .iter()
        .map(|_| ParsedBatch {
            lines: Vec::new(),
            parsed: Vec::new(),
            nonblank: 0,
            end_offset: batch.end_offset,
            last_line: batch.last_line,
        })
        .collect();
    for (line, parsed) in batch.lines.into_iter().zip(batch.parsed) {
        let lane = lane_of(&parsed, line.number, lanes.len());
        if line.end_offset <= lanes[lane].next_offset {
            continue;
        }
        let to = &mut dealt[lane];
        if parsed.is_some() {
            to.nonblank += 1;
        }
        to.lines.push(line);
        to.parsed.push(parsed);
    }
    dealt
}

/// Starts a run or resumes it: returns where each lane continues.
fn begin(
    db: &Database,
    run_id: &str,
    options: &BackfillOptions,
    lanes: usize,
) -> Result<RunState, DbError> {
    let options_json = serde_json::to_string(options).expect("options serialise");
    let mut conn = db.conn()?;
    let existing: Option<(String, String, u64)> = conn
        .exec_first(
            "SELECT options_json, status, elapsed_ms FROM backfill_run WHERE run_id = ?",
            (run_id,),
        )
        .map_err(|e| DbError(format!("cannot read backfill run {run_id}: {e}")))?;
    match existing {
        Some((stored, status, elapsed_ms)) => {
            if stored != options_json {
                return Err(DbError(format!(
                    "run {run_id} was started with other options ({stored}); resume it with the same source, mode, filters and --lanes, or use another --run-id"
                )));
            }
            conn.exec_drop(
                "UPDATE backfill_run SET invocations = invocations + 1 WHERE run_id = ?",
                (run_id,),
            )
            .map_err(|e| DbError(e.to_string()))?;
            let rows: Vec<(u64, u64, String, u64)> = conn
                .exec(
                    "SELECT next_offset, next_line, counters_json, elapsed_ms FROM backfill_lane WHERE run_id = ? ORDER BY lane",
                    (run_id,),
                )
                .map_err(|e| DbError(format!("cannot read backfill run {run_id}: {e}")))?;
            if rows.len() != lanes {
                return Err(DbError(format!(
                    "run {run_id} has {} lane checkpoints where its options need {lanes}: it was started by an older version; start it again with another --run-id",
                    rows.len()
                )));
            }
            Ok(RunState {
                lanes: rows
                    .into_iter()
                    .map(
                        |(next_offset, next_line, counters, elapsed_ms)| Checkpoint {
                            next_offset,
                            next_line,
                            counters: serde_json::from_str(&counters).unwrap_or_default(),
                            elapsed_ms,
                        },
                    )
                    .collect(),
                done: status == "done",
                elapsed_ms,
            })
        }
        None => {
            let mut tx = conn
                .start_transaction(mysql::TxOpts::default())
                .map_err(|e| DbError(format!("cannot start backfill run {run_id}: {e}")))?;
            tx.exec_drop(
                "INSERT INTO backfill_run (run_id, source, mode, options_json, status, counters_json, invocations) VALUES (?, ?, ?, ?, 'running', '{}', 1)",
                (run_id, &options.source, options.mode.as_str(), &options_json),
            )
            .and_then(|()| {
                tx.exec_batch(
                    "INSERT INTO backfill_lane (run_id, lane, counters_json) VALUES (?, ?, '{}')",
                    (0..lanes).map(|lane| (run_id, lane)),
                )
            })
            .and_then(|()| tx.commit())
            .map_err(|e| DbError(format!("cannot start backfill run {run_id}: {e}")))?;
            Ok(RunState::new(lanes))
        }
    }
}

/// A lane's checkpoint, in the transaction of the batch it follows.
fn save_lane(
    tx: &mut impl Queryable,
    run_id: &str,
    lane: usize,
    checkpoint: &Checkpoint,
) -> Result<(), mysql::Error> {
    tx.exec_drop(
        "UPDATE backfill_lane SET next_offset = ?, next_line = ?, counters_json = ?, elapsed_ms = ? WHERE run_id = ? AND lane = ?",
        (
            checkpoint.next_offset,
            checkpoint.next_line,
            serde_json::to_string(&checkpoint.counters).expect("counters serialise"),
            checkpoint.elapsed_ms,
            run_id,
            lane,
        ),
    )
}

/// The run's row: where it stands as a whole (what operators read).
fn save_run(db: &Database, run_id: &str, total: &Checkpoint, done: bool) -> Result<(), DbError> {
    let status = if done { "done" } else { "running" };
    db.conn()?
        .exec_drop(
            "UPDATE backfill_run SET next_offset = ?, next_line = ?, counters_json = ?, elapsed_ms = ?, status = ?, \
             updated_at = CURRENT_TIMESTAMP(3), finished_at = IF(? = 'done', CURRENT_TIMESTAMP(3), NULL) WHERE run_id = ?",
            (
                total.next_offset,
                total.next_line,
                serde_json::to_string(&total.counters).expect("counters serialise"),
                total.elapsed_ms,
                status,
                status,
                run_id,
            ),
        )
        .map_err(|e| DbError(format!("cannot save backfill run {run_id}: {e}")))
}

/// Runs (or resumes) a backfill until the export ends or `stop_at` passes.
///
/// A reader thread reads and parses batches; each batch is dealt to the
/// run's lanes by presentation, and every lane loads its share on its own
/// connection, in order, committing its own checkpoint with it. A resumed
/// run reads from the offset every lane has passed and skips each lane's
/// committed lines, so a kill at any moment loses and repeats nothing.
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
    let lanes = lane_count(options);
    let mut state = if options.dry_run {
        RunState::new(lanes)
    } else {
        let db = ctx.db.clone();
        let (id, opts) = (run_id.clone(), options.clone());
        tokio::task::spawn_blocking(move || begin(&db, &id, &opts, lanes))
            .await
            .map_err(|e| DbError(format!("backfill start failed: {e}")))??
    };
    // Where the run stands: where a resumed read starts, and its totals.
    let mut total = state.total();
    let base_elapsed_ms = total.elapsed_ms;
    if !state.done {
        let source = Source::parse(&options.source).map_err(DbError)?;
        let opened = open_source(&source, ctx.s3.as_ref(), total.next_offset)
            .await
            .map_err(|e| DbError(e.to_string()))?;
        let bytes_total = opened.total_bytes;
        let bytes_read = opened.bytes_read.clone();
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<io::Result<ParsedBatch>>(2);
        let batch_lines = ctx.batch_lines.max(1);
        // Reading, decompressing and parsing run on their own thread while
        // the lanes load.
        let reader_thread = std::thread::spawn(move || {
            read_batches(
                opened.reader,
                total.next_line,
                total.next_offset,
                batch_lines,
                &sender,
            )
        });
        let committed_lines = Arc::new(AtomicU64::new(total.counters.lines));
        let mut lane_inputs = Vec::with_capacity(lanes);
        let mut lane_tasks = Vec::with_capacity(lanes);
        for (index, checkpoint) in state.lanes.iter().cloned().enumerate() {
            // Room for a share waiting beside the one loading, so the reader
            // can deal on while this lane's presentation takes long.
            let (input, mut batches) = tokio::sync::mpsc::channel::<ParsedBatch>(2);
            lane_inputs.push(input);
            let lane = Lane {
                index,
                db: ctx.db.clone(),
                sqs: ctx.sqs.clone(),
                queues: ctx.queues.clone(),
                options: options.clone(),
                run_id: run_id.clone(),
                base_elapsed_ms,
                started,
                committed_lines: committed_lines.clone(),
                before_commit: ctx.before_lane_commit.clone(),
            };
            lane_tasks.push(tokio::spawn(async move {
                let mut checkpoint = checkpoint;
                while let Some(batch) = batches.recv().await {
                    checkpoint = lane.apply_batch(checkpoint, batch).await?;
                }
                Ok::<_, DbError>(checkpoint)
            }));
        }
        let mut read_error = None;
        let mut stopped_early = false;
        let mut lane_failed = false;
        // Per lane, the last (empty) share it was left out of, if none has
        // reached it since: it is given that one at the end.
        let mut left_out: Vec<Option<ParsedBatch>> = (0..lanes).map(|_| None).collect();
        while let Some(batch) = receiver.recv().await {
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    read_error = Some(DbError(format!("cannot read {}: {e}", options.source)));
                    break;
                }
            };
            let shares = deal(batch, &state.lanes);
            for ((input, share), left_out) in lane_inputs.iter().zip(shares).zip(&mut left_out) {
                *left_out = None;
                // A lane with nothing of this batch takes it only if it has
                // room, to move its checkpoint on (the run's offset is the
                // least of the lanes'); waiting for a busy lane here would
                // leave the others idle, as a presentation's events come in
                // runs of whole batches.
                if share.lines.is_empty() {
                    match input.try_send(share) {
                        Ok(()) => {}
                        Err(TrySendError::Full(share)) => *left_out = Some(share),
                        Err(TrySendError::Closed(_)) => lane_failed = true,
                    }
                } else if input.send(share).await.is_err() {
                    lane_failed = true;
                }
            }
            if let Some(report) = &ctx.on_progress {
                report(&Progress {
                    lines: committed_lines.load(Ordering::Relaxed),
                    bytes_done: bytes_read.load(Ordering::Relaxed),
                    bytes_total,
                    elapsed: started.elapsed(),
                });
            }
            if lane_failed {
                break;
            }
            if stop_at.is_some_and(|at| Instant::now() >= at) {
                stopped_early = true;
                break;
            }
        }
        drop(receiver);
        if !lane_failed {
            for (input, share) in lane_inputs.iter().zip(left_out) {
                if let Some(share) = share {
                    // A lane that fails now reports its error below.
                    let _ = input.send(share).await;
                }
            }
        }
        drop(lane_inputs);
        let _ = reader_thread.join();
        let mut lane_error = None;
        for (index, task) in lane_tasks.into_iter().enumerate() {
            match task.await {
                Ok(Ok(checkpoint)) => state.lanes[index] = checkpoint,
                Ok(Err(e)) => lane_error = lane_error.or(Some(e)),
                Err(e) => {
                    lane_error =
                        lane_error.or(Some(DbError(format!("loading a batch failed: {e}"))))
                }
            }
        }
        if let Some(e) = lane_error.or(read_error) {
            return Err(e);
        }
        state.done = !stopped_early;
        state.elapsed_ms = base_elapsed_ms + started.elapsed().as_millis() as u64;
        total = state.total();
        if !options.dry_run {
            let (db, id, done, saved) = (ctx.db.clone(), run_id.clone(), state.done, total.clone());
            tokio::task::spawn_blocking(move || save_run(&db, &id, &saved, done))
                .await
                .map_err(|e| DbError(format!("backfill checkpoint failed: {e}")))??;
        }
    }
    let elapsed_seconds = total.elapsed_ms as f64 / 1000.0;
    Ok(Summary {
        run_id,
        done: state.done,
        next_offset: total.next_offset,
        mode: options.mode,
        dry_run: options.dry_run,
        events_per_second: if elapsed_seconds > 0.0 {
            (total.counters.events as f64 / elapsed_seconds).round()
        } else {
            0.0
        },
        counters: total.counters,
        elapsed_seconds,
    })
}

/// Reads the export in batches of `batch_lines` lines, parsed, for `run`.
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

/// One lane of a run: what it needs to load or send its share of each batch.
struct Lane {
    index: usize,
    db: Arc<Database>,
    sqs: Option<aws_sdk_sqs::Client>,
    queues: QueueUrls,
    options: BackfillOptions,
    run_id: String,
    base_elapsed_ms: u64,
    started: Instant,
    /// Non-blank lines committed by every lane (progress display).
    committed_lines: Arc<AtomicU64>,
    before_commit: Option<LaneHook>,
}

impl Lane {
    /// Loads or sends this lane's share of a batch, then commits its
    /// checkpoint (with the load, in `direct` mode).
    async fn apply_batch(
        &self,
        mut checkpoint: Checkpoint,
        batch: ParsedBatch,
    ) -> Result<Checkpoint, DbError> {
        let options = &self.options;
        checkpoint.counters.lines += batch.nonblank;
        checkpoint.next_offset = batch.end_offset;
        checkpoint.next_line = batch.last_line;
        checkpoint.elapsed_ms = self.base_elapsed_ms + self.started.elapsed().as_millis() as u64;
        // What this batch takes: valid events the filters accept, and the rejects.
        let mut taken: Vec<usize> = Vec::new();
        let mut rejected: Vec<(usize, String)> = Vec::new();
        for (index, parsed) in batch.parsed.iter().enumerate() {
            match parsed {
                None => {}
                Some(Err(reason)) => rejected.push((index, reason.to_string())),
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
            self.committed_lines
                .fetch_add(batch.nonblank, Ordering::Relaxed);
            return Ok(checkpoint);
        }
        let mut unsendable: Vec<(usize, String)> = Vec::new();
        if options.mode == Mode::Enqueue {
            let sqs = self.sqs.as_ref().expect("checked at start");
            let (sent, too_large) =
                enqueue(sqs, &self.queues, &batch, &taken, &mut checkpoint.counters).await?;
            checkpoint.counters.events += sent;
            unsendable = too_large;
        }
        let source = format!("backfill:{}", self.run_id);
        let run_id = self.run_id.clone();
        let db = self.db.clone();
        let (mode, lane, nonblank) = (options.mode, self.index, batch.nonblank);
        let before_commit = self.before_commit.clone();
        let committed = tokio::task::spawn_blocking(move || {
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
                if mode == Mode::Direct && !batch.lines.is_empty() {
                    let outcome = load_batch(&mut tx, &source, &items, &rejects, 1)?;
                    let c = &mut next.counters;
                    c.events += outcome.counts.loaded;
                    c.duplicates += outcome.counts.duplicates;
                    c.conflicts += outcome.counts.conflicts;
                    c.not_analytics += outcome.counts.not_analytics;
                    for (dp, n) in &outcome.counts.loaded_by_data_point {
                        *c.by_data_point.entry(dp.to_string()).or_default() += n;
                    }
                } else if mode == Mode::Enqueue {
                    record_rejects(&mut tx, &source, rejects.iter())?;
                }
                save_lane(&mut tx, &run_id, lane, &next)?;
                if let Some(hook) = &before_commit {
                    hook(lane, batch.last_line);
                }
                tx.commit()?;
                Ok(next)
            })?;
            Ok::<_, DbError>(counted)
        })
        .await
        .map_err(|e| DbError(format!("loading a batch failed: {e}")))??;
        self.committed_lines.fetch_add(nonblank, Ordering::Relaxed);
        Ok(committed)
    }
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
    repair: crate::jobs::reconcile::Repair,
    events: &[(Event, Vec<u8>)],
) -> Result<u64, DbError> {
    if events.is_empty() {
        return Ok(0);
    }
    match repair {
        crate::jobs::reconcile::Repair::Queue => {
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
        crate::jobs::reconcile::Repair::Direct => tokio::task::block_in_place(|| {
            let items: Vec<Item> = events
                .iter()
                .map(|(event, raw)| Item {
                    event,
                    raw: std::str::from_utf8(raw).unwrap_or_default(),
                    line: 0,
                })
                .collect();
            let deadline = Instant::now() + Duration::from_secs(300);
            let outcome = crate::write::commit_batch(
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

#[cfg(test)]
mod tests {
    use super::*;

    fn line(number: u64, text: &str) -> Line {
        Line {
            number,
            end_offset: number * 100,
            bytes: text.as_bytes().to_vec(),
        }
    }

    fn event_line(stream: &str, version: i64) -> String {
        format!(
            r#"{{"streamId":"{stream}","version":{version},"type":"ViewerLeft","occurredAt":{{"$date":"2021-09-14T14:00:00Z"}},"tenantId":"t","data":{{"sessionId":"s","viewerId":"u"}}}}"#
        )
    }

    fn batch(lines: Vec<Line>) -> ParsedBatch {
        let parsed: Vec<_> = lines
            .iter()
            .map(|l| (!l.is_blank()).then(|| parse_line(&l.bytes)))
            .collect();
        ParsedBatch {
            nonblank: parsed.iter().filter(|p| p.is_some()).count() as u64,
            end_offset: lines.last().map_or(0, |l| l.end_offset),
            last_line: lines.last().map_or(0, |l| l.number),
            lines,
            parsed,
        }
    }

    #[test]
    fn lanes_are_dealt_by_presentation_with_a_pinned_hash() {
        // A resumed run, maybe of another release, must deal as the first
        // invocation did: these values must never change.
        let lane = |stream: &str| {
            let parsed = parse_line(event_line(stream, 1).as_bytes());
            assert!(parsed.is_ok(), "{parsed:?}");
            lane_of(&Some(parsed), 7, 2)
        };
        assert_eq!(lane("prs-glo-0001"), 0);
        assert_eq!(lane("prs-acm-0002"), 1);
        assert_eq!(lane("prs-acm-0000"), 0);
        // Other lines go by line number.
        assert_eq!(lane_of(&Some(parse_line(b"bad")), 7, 2), 1);
        assert_eq!(lane_of(&None, 8, 2), 0);
    }

    #[test]
    fn a_batch_is_dealt_whole_and_committed_lines_are_left_out() {
        let lines = vec![
            line(1, &event_line("prs-glo-0001", 1)),
            line(2, &event_line("prs-acm-0002", 1)),
            line(3, "not json"),
            line(4, "  "),
            line(5, &event_line("prs-acm-0002", 2)),
        ];
        let fresh = [Checkpoint::default(), Checkpoint::default()];
        let dealt = deal(batch(lines.clone()), &fresh);
        let numbers = |b: &ParsedBatch| b.lines.iter().map(|l| l.number).collect::<Vec<_>>();
        assert_eq!(numbers(&dealt[0]), vec![1, 4]);
        assert_eq!(numbers(&dealt[1]), vec![2, 3, 5]);
        assert_eq!((dealt[0].nonblank, dealt[1].nonblank), (1, 3));
        assert!(dealt
            .iter()
            .all(|b| b.end_offset == 500 && b.last_line == 5));

        // Lane 1 had committed up to line 3 (offset 300) before a resume.
        let resumed = [
            Checkpoint::default(),
            Checkpoint {
                next_offset: 300,
                next_line: 3,
                ..Checkpoint::default()
            },
        ];
        let dealt = deal(batch(lines), &resumed);
        assert_eq!(numbers(&dealt[0]), vec![1, 4]);
        assert_eq!(numbers(&dealt[1]), vec![5]);
    }

    #[test]
    fn a_runs_totals_sum_its_lanes_and_resume_from_the_least_offset() {
        let lane = |next_offset, next_line, elapsed_ms, lines, attendance| {
            let mut checkpoint = Checkpoint {
                next_offset,
                next_line,
                elapsed_ms,
                ..Checkpoint::default()
            };
            checkpoint.counters.lines = lines;
            checkpoint
                .counters
                .by_data_point
                .insert("attendance".into(), attendance);
            checkpoint
        };
        let (first, second) = (lane(900, 9, 40, 5, 3), lane(400, 4, 70, 2, 1));
        let state = RunState {
            lanes: vec![first, second],
            done: false,
            elapsed_ms: 50,
        };
        let total = state.total();
        assert_eq!((total.next_offset, total.next_line), (400, 4));
        assert_eq!(total.counters.lines, 7);
        assert_eq!(total.counters.by_data_point["attendance"], 4);
        assert_eq!(total.elapsed_ms, 70);
    }
}
