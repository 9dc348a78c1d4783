//! The backfill: an export (local or `s3://`, plain or gzip) into the
//! warehouse, through the loaders' own `load_batch` (`direct`) or onto the
//! data points' queues (`enqueue`). Streamed, in bounded memory; resumable:
//! each batch's effect and the run's checkpoint commit together.

mod batch;
mod checkpoint;
mod enqueue;
mod lanes;

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::error::TrySendError;

use crate::contract::{DataPoint, Event};
use crate::export::{open_source, ExportReadError};
use crate::jobs::{BackfillProgress, JobContext, JobError};
use crate::store::DbError;

use batch::{read_batches, BatchBounds, HeldBytes, ParsedBatch};
use checkpoint::{begin, save_run, RunState};
use lanes::{deal, lane_count, Lane};

pub use lanes::lane_of_stream;

/// Lines per transaction: large enough to amortise round trips, commits and
/// the per-batch merges (about one presentation's worth: 10,000 loaded 5 M
/// events with an eighth less server time than 5,000, BENCHMARKS.md), small
/// enough to keep statements and lock sets modest.
pub const DEFAULT_BATCH_LINES: usize = 10_000;

/// Bytes of lines per transaction, at most: a batch of 10,000 lines of the
/// usual few hundred bytes stays under it, one of long lines (a question of
/// 100 KB) ends sooner.
pub const DEFAULT_BATCH_BYTES: usize = 8 << 20;

/// A run holds at most this many batches' bounds of bytes of lines at once,
/// read and not yet committed (`HeldBytes`): 24 MiB by default, whatever
/// the lines' lengths. Batches of long lines (ended by their byte bound) are
/// then three at a time, one per lane; batches of the usual lines (10,000
/// lines of a few hundred bytes, 2.5 MB) about seven: each lane's loading
/// and one queued beside it, and the one being read (each one's 10,000
/// parsed events take some 9 MB).
pub const HELD_BATCHES: usize = 3;

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

/// What a backfill run did with its lines so far (it adds up its batches'
/// `write::LoadCounts`); persisted with each checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunCounts {
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
    /// Valid events the database refused (recorded in `error_event` with
    /// their line and the database's reason; the run went on without them).
    pub refused: u64,
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
    pub counters: RunCounts,
    pub elapsed_seconds: f64,
    /// `events` (new events loaded, or sent) per second of the run.
    pub events_per_second: f64,
}

impl RunCounts {
    fn add(&mut self, other: &RunCounts) {
        self.lines += other.lines;
        self.events += other.events;
        self.duplicates += other.duplicates;
        self.malformed += other.malformed;
        self.not_analytics += other.not_analytics;
        self.conflicts += other.conflicts;
        self.skipped += other.skipped;
        self.refused += other.refused;
        for (dp, n) in &other.by_data_point {
            *self.by_data_point.entry(dp.clone()).or_default() += n;
        }
    }
}

fn new_run_id() -> String {
    let secs = crate::store::now_ms().div_euclid(1000);
    format!("bf-{secs}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// Runs (or resumes) a backfill until the export ends or `stop_at` passes.
///
/// A reader thread reads and parses batches; each batch is dealt to the
/// run's lanes by presentation, and every lane loads its share on its own
/// connection, in order, committing its own checkpoint with it. A resumed
/// run reads from the offset every lane has passed and skips each lane's
/// committed lines, so a kill at any moment loses and repeats nothing.
pub async fn run(
    ctx: &JobContext,
    options: &BackfillOptions,
    run_id: Option<String>,
    stop_at: Option<Instant>,
) -> Result<Summary, JobError> {
    let started = Instant::now();
    if options.mode == Mode::Enqueue && !options.dry_run && ctx.sqs.is_none() {
        return Err(JobError::Setup("enqueue mode needs an SQS client".into()));
    }
    // Refused before anything is read or recorded: a function reads only
    // its own exports.
    let source = ctx
        .exports
        .admit(&options.source)
        .map_err(ExportReadError::Source)?;
    let run_id = run_id.unwrap_or_else(new_run_id);
    let lanes = lane_count(options);
    let mut state = if options.dry_run {
        RunState::new(lanes)
    } else {
        let db = ctx.db.clone();
        let (id, opts) = (run_id.clone(), options.clone());
        tokio::task::spawn_blocking(move || begin(&db, &id, &opts, lanes))
            .await
            .map_err(|e| DbError::caused("backfill start failed", e))??
    };
    // Where the run stands: where a resumed read starts, and its totals.
    let mut total = state.total();
    let base_elapsed_ms = total.elapsed_ms;
    if !state.done {
        let opened = open_source(&source, ctx.s3.as_ref(), total.next_offset)
            .await
            .map_err(ExportReadError::Read)?;
        let bytes_total = opened.total_bytes;
        let bytes_read = opened.bytes_read.clone();
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<io::Result<ParsedBatch>>(2);
        let bounds = BatchBounds {
            lines: ctx.batch_lines.max(1),
            bytes: ctx.batch_bytes.max(1),
        };
        let held = Arc::new(HeldBytes::new(bounds.bytes.saturating_mul(HELD_BATCHES)));
        // Reading, decompressing and parsing run on their own thread while
        // the lanes load.
        let reader_thread = std::thread::spawn({
            let held = held.clone();
            move || {
                read_batches(
                    opened.reader,
                    total.next_line,
                    total.next_offset,
                    bounds,
                    &held,
                    &sender,
                )
            }
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
            let held = held.clone();
            lane_tasks.push(tokio::spawn(async move {
                let mut checkpoint = checkpoint;
                while let Some(batch) = batches.recv().await {
                    let bytes = batch.bytes;
                    checkpoint = lane.apply_batch(checkpoint, batch).await?;
                    held.give_back(bytes);
                }
                Ok::<_, JobError>(checkpoint)
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
                    read_error = Some(ExportReadError::Read(e).into());
                    break;
                }
            };
            let bytes = batch.bytes;
            let shares = deal(batch, &state.lanes);
            // The lines lanes had committed before a resume are dropped.
            held.give_back(bytes - shares.iter().map(|s| s.bytes).sum::<usize>());
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
                report(&BackfillProgress {
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
        // A reader waiting for room stops.
        held.end();
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
                        lane_error.or(Some(DbError::caused("loading a batch failed", e).into()))
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
                .map_err(|e| DbError::caused("backfill checkpoint failed", e))??;
        }
    }
    // A direct run writes the warehouse without the loaders' refresh of the
    // presentation summaries: each invocation sweeps what it left stale.
    if options.mode == Mode::Direct && !options.dry_run {
        let db = ctx.db.clone();
        tokio::task::spawn_blocking(move || super::summaries::sweep_summaries(&db, stop_at))
            .await
            .map_err(|e| DbError::caused("the summaries' sweep failed", e))?;
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
