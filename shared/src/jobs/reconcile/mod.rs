//! Reconciliation: the store's export for a window (the source of truth)
//! against the warehouse ledger.
//!
//! Checksum first, details only where they differ (in the spirit of
//! checksum-and-bisect table diffing): the export is streamed once into
//! per-block checksums (a block is 64 consecutive versions of one stream);
//! the ledger's blocks are summed in SQL from one covering index, grouped
//! by the stream id's CRC-32 (streams whose CRCs collide are summed, and
//! compared, as one group), and compared; only the blocks that differ are
//! read in detail, from the ledger by primary key and from a second pass
//! over the export that compares each of their events as it passes. Memory is a few numbers per block and one
//! bit per version, never the export or the ledger.
//!
//! The export is scanned in parallel chunks (`crate::export::scan`), folded
//! in the export's order, so "the first of an export's repeats counts"
//! holds as in a sequential read. A run can stop at a chunk boundary before
//! a deadline and continue later from the run row (the Lambda's time
//! limit): the stopped pass's per-stream state and byte offset are written
//! to the warehouse, so a continued run ends with the same findings as an
//! uninterrupted one.

mod checksum;
mod ledger;
mod metrics;
mod repair;
mod state;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::contract::{DataPoint, Event};
use crate::export::{expand_sources, parse_line, scan, ExportReadError};
use crate::jobs::{JobContext, JobError};
use crate::store::{Database, DbError};

use checksum::{compare, hash56, streams_of, StreamKey};
use ledger::{ledger_blocks, ledger_details, ledger_streams};
use state::{begin, checkpoint, finish, record_discrepancies, resume, Resumed, RunBookkeeping};

pub use checksum::BLOCK_VERSIONS;
pub use metrics::{emf_documents, log_summary};
pub use repair::Repair;
pub use state::{discrepancies, Pass, Position};

/// Discrepancies (and missing events to repair) held before they are
/// written: bounds memory when a whole night is missing.
const FLUSH_EVERY: usize = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Missing,
    Unexpected,
    Conflicting,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Missing => "missing",
            Kind::Unexpected => "unexpected",
            Kind::Conflicting => "conflicting",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        [Kind::Missing, Kind::Unexpected, Kind::Conflicting]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// One event that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discrepancy {
    pub kind: Kind,
    pub stream_id: String,
    pub version: i64,
    pub data_point: DataPoint,
    pub tenant_id: String,
}

/// Events compared, and those that differ by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscrepancyCounts {
    pub compared: u64,
    pub missing: u64,
    pub unexpected: u64,
    pub conflicting: u64,
}

impl DiscrepancyCounts {
    fn add(&mut self, kind: Kind, n: u64) {
        match kind {
            Kind::Missing => self.missing += n,
            Kind::Unexpected => self.unexpected += n,
            Kind::Conflicting => self.conflicting += n,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileSummary {
    pub run_id: u64,
    /// False when the run stopped before its deadline: continue it with its
    /// `runId` (the counts are then those so far).
    pub done: bool,
    /// Where an unfinished run continues.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Position>,
    pub source: String,
    pub from_ms: i64,
    pub to_ms: i64,
    #[serde(flatten)]
    pub totals: DiscrepancyCounts,
    pub by_data_point: BTreeMap<DataPoint, DiscrepancyCounts>,
    pub blocks_compared: u64,
    pub blocks_differing: u64,
    pub repaired: u64,
    pub repair: Option<Repair>,
    /// Working time over all of the run's invocations.
    pub elapsed_seconds: f64,
    pub events_per_second: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileOptions {
    /// One export, or an `s3://bucket/prefix/` naming every object under it.
    pub source: String,
    /// The window on `occurredAt` (inclusive); when absent, the export's own span.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub repair: Option<Repair>,
}

/// Which run an invocation works on.
#[derive(Debug, Clone, Copy)]
pub enum Start<'a> {
    New(&'a ReconcileOptions),
    /// An unfinished run, by its `runId`: it keeps the options it started with.
    Continue(u64),
}

fn in_window(event: &Event, (from, to): (i64, i64)) -> bool {
    event.occurred_at >= from && event.occurred_at <= to
}

fn db_error(what: &str) -> impl Fn(mysql::Error) -> DbError + '_ {
    move |e| DbError::caused(what, e)
}

/// Runs a new reconciliation to its end in one go (no deadline, unlike
/// `run`): records the run and its discrepancies, repairs if asked (with
/// `ctx`), and returns the summary and the discrepancies.
pub async fn run_to_end(
    db: &Database,
    s3: Option<&aws_sdk_s3::Client>,
    ctx: Option<&JobContext>,
    options: &ReconcileOptions,
) -> Result<(ReconcileSummary, Vec<Discrepancy>), JobError> {
    let summary = run(db, s3, ctx, Start::New(options), None).await?;
    let found = tokio::task::block_in_place(|| discrepancies(db, summary.run_id))?;
    Ok((summary, found))
}

/// One pass-1 result: an analytics event of the window.
struct Sighting {
    stream: StreamKey,
    version: i64,
    occurred_at: i64,
    hash56: u64,
}

/// Works on a run until it is done or `stop_at` has passed; a run that is
/// not done (`done: false`) continues with `Start::Continue(run_id)`. Only
/// one invocation may work on a run at a time. Missing events are
/// re-driven through `ctx` when the run's options ask for a repair; `ctx`
/// also bounds which exports the run may read (without one, any). A run
/// that is done ends with the sweep of the presentation summaries left
/// stale (by direct repairs, or by a loader's refresh that failed): the
/// nightly safety net of the presentation list.
pub async fn run(
    db: &Database,
    s3: Option<&aws_sdk_s3::Client>,
    ctx: Option<&JobContext>,
    start: Start<'_>,
    stop_at: Option<Instant>,
) -> Result<ReconcileSummary, JobError> {
    let summary = work_on(db, s3, ctx, start, stop_at).await?;
    if summary.done {
        tokio::task::block_in_place(|| super::summaries::sweep_summaries(db, stop_at));
    }
    Ok(summary)
}

async fn work_on(
    db: &Database,
    s3: Option<&aws_sdk_s3::Client>,
    ctx: Option<&JobContext>,
    start: Start<'_>,
    stop_at: Option<Instant>,
) -> Result<ReconcileSummary, JobError> {
    let started = Instant::now();
    // A function reads only its own exports: a new run's source is refused
    // before the run is recorded, a continued run's before it reads on.
    let admit = |source: &str| match ctx {
        Some(ctx) => ctx.exports.admit(source).map(drop),
        None => Ok(()),
    };
    let (run_id, mut progress, mut streams) = match start {
        Start::New(options) => {
            admit(&options.source).map_err(ExportReadError::Source)?;
            let progress = RunBookkeeping {
                options: options.clone(),
                position: Position::default(),
                span: (i64::MAX, i64::MIN),
                compared: 0,
                blocks_compared: 0,
                blocks_differing: 0,
                repaired: 0,
                elapsed_ms: 0,
                invocations: 0,
            };
            let run_id = tokio::task::block_in_place(|| begin(db, &progress))?;
            (run_id, progress, HashMap::new())
        }
        Start::Continue(run_id) => match tokio::task::block_in_place(|| resume(db, run_id))? {
            Resumed::Unfinished(progress, streams) => {
                admit(&progress.options.source).map_err(ExportReadError::Source)?;
                (run_id, progress, streams)
            }
            Resumed::Finished(summary) => return Ok(*summary),
        },
    };
    progress.invocations += 1;
    let sources = expand_sources(&progress.options.source, s3).await?;
    let out_of_time = || stop_at.is_some_and(|at| Instant::now() >= at);

    if progress.position.pass == Pass::Export {
        // With the window known beforehand, the ledger's side runs on its own
        // connection while the export is read.
        let early = match (progress.options.from_ms, progress.options.to_ms) {
            (Some(from), Some(to)) => {
                let mut conn = db.conn()?;
                Some(tokio::task::spawn_blocking(move || {
                    ledger_blocks(&mut conn, (from, to))
                }))
            }
            _ => None,
        };
        let filter = (
            progress.options.from_ms.unwrap_or(i64::MIN),
            progress.options.to_ms.unwrap_or(i64::MAX),
        );
        let (mut span, mut compared) = (progress.span, progress.compared);
        let from = progress.position;
        let stopped = scan(
            &sources,
            s3,
            from.scan_point(),
            &|line| {
                let event = parse_line(line).ok()?;
                event.data_point()?;
                in_window(&event, filter).then(|| Sighting {
                    hash56: hash56(&event.content_hash),
                    stream: (event.tenant_id, event.stream_id),
                    version: event.version,
                    occurred_at: event.occurred_at,
                })
            },
            &mut |s: Sighting| {
                let state = streams.entry(s.stream).or_default();
                // The export's repeats count once: the first in its order.
                if !state.versions.insert(s.version) {
                    return;
                }
                span = (span.0.min(s.occurred_at), span.1.max(s.occurred_at));
                compared += 1;
                state
                    .blocks
                    .entry(s.version.div_euclid(BLOCK_VERSIONS))
                    .or_default()
                    .add(s.hash56);
            },
            &out_of_time,
        )
        .await?
        .map(|point| from.moved_to(point));
        (progress.span, progress.compared) = (span, compared);
        if let Some(position) = stopped {
            // A ledger query still running finishes on its own and is not used.
            return Ok(checkpoint(
                db, run_id, progress, position, &streams, started,
            )?);
        }
        let ledger = match early {
            Some(task) => task
                .await
                .map_err(|e| DbError::caused("cannot read the ledger", e))??,
            None => {
                let window = progress.window();
                tokio::task::block_in_place(|| ledger_blocks(&mut db.conn()?, window))?
            }
        };
        let differing = compare(&streams, &ledger);
        let mut candidates: Vec<StreamKey> = streams.into_keys().collect();
        // Only when something differs: its group may hold a stream only the
        // ledger has.
        if !differing.is_empty() {
            let window = progress.window();
            candidates.extend(tokio::task::block_in_place(|| ledger_streams(db, window))?);
        }
        streams = streams_of(&differing, candidates);
        progress.blocks_compared = ledger.len() as u64;
        progress.blocks_differing = streams.values().map(|s| s.blocks.len() as u64).sum();
        progress.position = Position {
            pass: Pass::Details,
            source_index: 0,
            offset: 0,
        };
        if !streams.is_empty() && out_of_time() {
            let position = progress.position;
            return Ok(checkpoint(
                db, run_id, progress, position, &streams, started,
            )?);
        }
    }

    if !streams.is_empty() {
        let window = progress.window();
        let ledger = tokio::task::block_in_place(|| ledger_details(db, &streams, window))?;
        // tenant -> stream -> blocks: looked up by the line's borrowed ids.
        let mut wanted: HashMap<String, HashMap<String, HashSet<i64>>> = HashMap::new();
        for ((tenant, stream), state) in &streams {
            wanted
                .entry(tenant.clone())
                .or_default()
                .insert(stream.clone(), state.blocks.keys().copied().collect());
        }
        let mut position = progress.position;
        loop {
            let mut found = Vec::new();
            let mut missing: Vec<(Event, Vec<u8>)> = Vec::new();
            let full = AtomicBool::new(false);
            let stopped = scan(
                &sources,
                s3,
                position.scan_point(),
                &|line| {
                    let event = parse_line(line).ok()?;
                    event.data_point()?;
                    let block = event.version.div_euclid(BLOCK_VERSIONS);
                    let wanted = in_window(&event, window)
                        && wanted
                            .get(event.tenant_id.as_str())
                            .and_then(|streams| streams.get(event.stream_id.as_str()))
                            .is_some_and(|blocks| blocks.contains(&block));
                    wanted.then(|| (event, line.bytes.to_vec()))
                },
                &mut |(event, raw): (Event, Vec<u8>)| {
                    let key = (event.tenant_id.clone(), event.stream_id.clone());
                    let Some(state) = streams.get_mut(&key) else {
                        return;
                    };
                    // The export's repeats are compared once.
                    if !state.versions.insert(event.version) {
                        return;
                    }
                    let dp = event.data_point().expect("analytics events only");
                    let kind = match ledger.get(&key).and_then(|rows| rows.get(&event.version)) {
                        Some(row) if row.content_hash == event.content_hash => return,
                        Some(_) => Kind::Conflicting,
                        None => Kind::Missing,
                    };
                    found.push(Discrepancy {
                        kind,
                        stream_id: event.stream_id.clone(),
                        version: event.version,
                        data_point: dp,
                        tenant_id: event.tenant_id.clone(),
                    });
                    if kind == Kind::Missing && progress.options.repair.is_some() {
                        missing.push((event, raw));
                    }
                    if found.len() >= FLUSH_EVERY {
                        full.store(true, Ordering::Relaxed);
                    }
                },
                &|| full.load(Ordering::Relaxed) || out_of_time(),
            )
            .await?
            .map(|point| position.moved_to(point));
            progress.repaired +=
                flush(db, run_id, progress.options.repair, ctx, &found, &missing).await?;
            match stopped {
                None => break,
                Some(next) if !out_of_time() => position = next,
                Some(next) => {
                    return Ok(checkpoint(db, run_id, progress, next, &streams, started)?)
                }
            }
        }
        // In the ledger, not in the export (within the window).
        let mut unexpected = Vec::new();
        for (key @ (_, stream), rows) in &ledger {
            let seen = streams.get(key).map(|s| &s.versions);
            for (version, row) in rows {
                if !seen.is_some_and(|v| v.contains(*version)) {
                    unexpected.push(Discrepancy {
                        kind: Kind::Unexpected,
                        stream_id: stream.clone(),
                        version: *version,
                        data_point: row.data_point,
                        tenant_id: row.tenant_id.clone(),
                    });
                }
            }
        }
        flush(db, run_id, None, None, &unexpected, &[]).await?;
    }
    Ok(tokio::task::block_in_place(|| {
        finish(db, run_id, progress, started)
    })?)
}

/// Writes discrepancies found so far and re-drives the missing events when
/// the run repairs; returns how many were re-driven.
async fn flush(
    db: &Database,
    run_id: u64,
    repair: Option<Repair>,
    ctx: Option<&JobContext>,
    found: &[Discrepancy],
    missing: &[(Event, Vec<u8>)],
) -> Result<u64, JobError> {
    if !found.is_empty() {
        tokio::task::block_in_place(|| record_discrepancies(db, run_id, found))?;
    }
    match (repair, ctx) {
        (Some(repair), Some(ctx)) if !missing.is_empty() => {
            let repaired = repair::apply(ctx, repair, missing).await?;
            tracing::info!(repaired, "missing events re-driven");
            Ok(repaired)
        }
        _ => Ok(0),
    }
}
