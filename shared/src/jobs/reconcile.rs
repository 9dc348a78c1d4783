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
//! The export is read in 1 MiB chunks cut at line ends and parsed on every
//! core; results are folded in the export's order, so "the first of an
//! export's repeats counts" holds as in a sequential read. A run can stop at
//! a chunk boundary before a deadline and continue later from the run row
//! (the Lambda's time limit): the stopped pass's per-stream state and byte
//! offset are written to the warehouse, so a continued run ends with the same
//! findings as an uninterrupted one.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, BufRead};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Instant;

use mysql::prelude::Queryable;
use serde::{Deserialize, Serialize};

use crate::contract::{DataPoint, Event};
use crate::export::parse_line;
use crate::export::{open_source, Source};
use crate::store::{Database, DbError};

/// Versions per block: small enough that few blocks differ when 0.1% of
/// events are missing, large enough that the block map stays small.
pub const BLOCK_VERSIONS: i64 = 64;

/// Bytes of export per unit of parallel work (and per possible stop).
const CHUNK_BYTES: usize = 1 << 20;

/// The most memory the server may give the ledger query's grouping before
/// it spills to disk: ~100 M events in one window when it was grouped by
/// the stream id, several times that by its CRC.
const GROUPING_MEMORY: u64 = 512 << 20;

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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub compared: u64,
    pub missing: u64,
    pub unexpected: u64,
    pub conflicting: u64,
}

impl Counts {
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
    pub totals: Counts,
    pub by_data_point: BTreeMap<DataPoint, Counts>,
    pub blocks_compared: u64,
    pub blocks_differing: u64,
    pub repaired: u64,
    pub repair: Option<Repair>,
    /// Working time over all of the run's invocations.
    pub elapsed_seconds: f64,
    pub events_per_second: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Repair {
    /// Re-drive missing events to their data point's queue.
    Queue,
    /// Load missing events directly through `load_batch`.
    Direct,
}

impl Repair {
    pub fn parse(text: &str) -> Result<Repair, String> {
        match text {
            "queue" => Ok(Repair::Queue),
            "direct" => Ok(Repair::Direct),
            other => Err(format!(
                "repair must be \"queue\" or \"direct\", got {other:?}"
            )),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Repair::Queue => "queue",
            Repair::Direct => "direct",
        }
    }
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

/// Count and hash sum of one block's distinct events. The content hash
/// covers the whole document, identity included, so two different sets of
/// events give equal sums with negligible probability.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Checksum {
    count: u64,
    hash_sum: u128,
}

impl Checksum {
    fn add(&mut self, hash56: u64) {
        self.count += 1;
        self.hash_sum += u128::from(hash56);
    }
}

/// The first 7 bytes of a content hash as an integer: the ledger's
/// `content_hash56` column.
fn hash56(hash: &[u8; 32]) -> u64 {
    hash[..7]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

/// A checksum group of the ledger query: a stream's CRC-32 and a block.
/// The server groups by the 4-byte CRC rather than the stream id, which its
/// temporary table stores as 256 fixed bytes: at 5 M events the grouping no
/// longer fit the caches (BENCHMARKS.md). Streams whose CRCs collide are
/// compared as one group; where that group differs, each of its streams is
/// looked at.
type Group = (u32, i64);

/// MySQL's `CRC32()` of the stream id's bytes (utf8mb4, as stored).
fn stream_crc(stream_id: &str) -> u32 {
    crc32fast::hash(stream_id.as_bytes())
}

/// One bit per version of a stream.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct VersionBits(Vec<u64>);

impl VersionBits {
    /// Sets `version`'s bit; true when it was not set.
    fn insert(&mut self, version: i64) -> bool {
        let Ok(index) = usize::try_from(version) else {
            return false;
        };
        let word = index / 64;
        if word >= self.0.len() {
            // Versions are gapless from 1, so this grows with the stream; cap
            // absurd versions rather than allocate for them.
            if word > (1 << 26) {
                return true;
            }
            self.0.resize(word + 1, 0);
        }
        let bit = 1u64 << (index % 64);
        let first = self.0[word] & bit == 0;
        self.0[word] |= bit;
        first
    }

    fn contains(&self, version: i64) -> bool {
        usize::try_from(version).is_ok_and(|index| {
            self.0
                .get(index / 64)
                .is_some_and(|word| word & (1u64 << (index % 64)) != 0)
        })
    }

    fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    fn from_bytes(bytes: &[u8]) -> VersionBits {
        VersionBits(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        )
    }
}

/// One stream's state. Export pass: the versions seen and the export's
/// checksum per block. Details pass: the versions compared and the blocks
/// that differ (their checksums unused).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct StreamState {
    versions: VersionBits,
    blocks: HashMap<i64, Checksum>,
}

impl StreamState {
    fn blocks_to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.blocks.len() * 32);
        for (block, c) in &self.blocks {
            out.extend_from_slice(&block.to_le_bytes());
            out.extend_from_slice(&c.count.to_le_bytes());
            out.extend_from_slice(&c.hash_sum.to_le_bytes());
        }
        out
    }

    fn blocks_from_bytes(bytes: &[u8]) -> HashMap<i64, Checksum> {
        bytes
            .chunks_exact(32)
            .map(|c| {
                let int = |range: std::ops::Range<usize>| -> [u8; 8] {
                    c[range].try_into().expect("8 bytes")
                };
                let wide = |range: std::ops::Range<usize>| -> [u8; 16] {
                    c[range].try_into().expect("16 bytes")
                };
                (
                    i64::from_le_bytes(int(0..8)),
                    Checksum {
                        count: u64::from_le_bytes(int(8..16)),
                        hash_sum: u128::from_le_bytes(wide(16..32)),
                    },
                )
            })
            .collect()
    }
}

/// Where a pass over the export stands: the object (index into the sorted
/// sources) and the byte offset, in its decompressed stream, just past the
/// last line folded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    pub pass: Pass,
    pub source_index: usize,
    pub offset: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pass {
    /// Pass 1: per-block checksums of the whole export.
    #[default]
    Export,
    /// Pass 2: the events of the differing blocks.
    Details,
}

/// An unfinished run's bookkeeping, kept in `reconcile_run.progress_json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Progress {
    options: ReconcileOptions,
    position: Position,
    /// The span of `occurredAt` over the events counted so far.
    span: (i64, i64),
    compared: u64,
    blocks_compared: u64,
    blocks_differing: u64,
    repaired: u64,
    elapsed_ms: u64,
    invocations: u32,
}

impl Progress {
    /// The window: the options' bounds, else the export's span (known once
    /// the export pass is complete).
    fn window(&self) -> (i64, i64) {
        (
            self.options.from_ms.unwrap_or(self.span.0),
            self.options.to_ms.unwrap_or(self.span.1),
        )
    }
}

fn in_window(event: &Event, (from, to): (i64, i64)) -> bool {
    event.occurred_at >= from && event.occurred_at <= to
}

fn db_error(what: &str) -> impl Fn(mysql::Error) -> DbError + '_ {
    move |e| DbError(format!("{what}: {e}"))
}

/// The export's objects: a local file, an S3 object, or every object under an S3 prefix.
async fn expand_sources(
    source: &str,
    s3: Option<&aws_sdk_s3::Client>,
) -> Result<Vec<Source>, DbError> {
    let parsed = Source::parse(source).map_err(DbError)?;
    match &parsed {
        Source::S3 { bucket, key } if key.ends_with('/') => {
            let s3 = s3.ok_or_else(|| DbError("reading from S3 needs an S3 client".into()))?;
            let mut keys = Vec::new();
            let mut pages = s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(key)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    DbError(format!(
                        "cannot list {source}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(&e)
                    ))
                })?;
                keys.extend(
                    page.contents()
                        .iter()
                        .filter_map(|o| o.key().map(str::to_string)),
                );
            }
            keys.sort();
            if keys.is_empty() {
                return Err(DbError(format!(
                    "{source} holds no objects: check the prefix"
                )));
            }
            Ok(keys
                .into_iter()
                .map(|key| Source::S3 {
                    bucket: bucket.clone(),
                    key,
                })
                .collect())
        }
        _ => Ok(vec![parsed]),
    }
}

/// Runs `map` on every line of the sources from `from` on, on every core,
/// and `fold` on its results in the export's order, until the end (`None`)
/// or until `stop` says so before a chunk (where to continue).
async fn scan<T: Send>(
    sources: &[Source],
    s3: Option<&aws_sdk_s3::Client>,
    from: Position,
    map: &(dyn Fn(&[u8]) -> Option<T> + Sync),
    fold: &mut (dyn FnMut(T) + Send),
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Option<Position>, DbError> {
    for (index, source) in sources.iter().enumerate().skip(from.source_index) {
        let offset = if index == from.source_index {
            from.offset
        } else {
            0
        };
        let opened = open_source(source, s3, offset)
            .await
            .map_err(|e| DbError(format!("cannot read the export: {e}")))?;
        let stopped = tokio::task::block_in_place(|| {
            scan_stream(opened.reader, offset, map, &mut *fold, stop)
        })
        .map_err(|e| DbError(format!("cannot read the export: {e}")))?;
        if let Some(offset) = stopped {
            return Ok(Some(Position {
                pass: from.pass,
                source_index: index,
                offset,
            }));
        }
    }
    Ok(None)
}

/// One object of `scan`: a reader thread cuts chunks at line ends, workers
/// map their lines, and this thread folds the results in chunk order.
fn scan_stream<T: Send>(
    mut reader: Box<dyn BufRead + Send>,
    start: u64,
    map: &(dyn Fn(&[u8]) -> Option<T> + Sync),
    fold: &mut dyn FnMut(T),
    stop: &(dyn Fn() -> bool + Sync),
) -> io::Result<Option<u64>> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (chunk_tx, chunk_rx) = mpsc::sync_channel::<(u64, Vec<u8>)>(workers * 2);
    let chunk_rx = Mutex::new(chunk_rx);
    let (done_tx, done_rx) = mpsc::sync_channel::<(u64, Vec<T>)>(workers * 2);
    // Mapped chunks' buffers go back to the reader: fresh megabytes each
    // time cost page faults.
    let (spare_tx, spare_rx) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (chunk_rx, done_tx, spare_tx) = (&chunk_rx, done_tx.clone(), spare_tx.clone());
            scope.spawn(move || loop {
                let next = chunk_rx.lock().expect("chunk queue lock").recv();
                let Ok((seq, chunk)) = next else { break };
                // A chunk ends at a line end (or the export's end).
                let lines = chunk.strip_suffix(b"\n").unwrap_or(&chunk);
                let mut mapped = Vec::new();
                let mut start = 0;
                for end in memchr::memchr_iter(b'\n', lines).chain([lines.len()]) {
                    let line = &lines[start..end];
                    mapped.extend(map(line.strip_suffix(b"\r").unwrap_or(line)));
                    start = end + 1;
                }
                let _ = spare_tx.send(chunk);
                if done_tx.send((seq, mapped)).is_err() {
                    break;
                }
            });
        }
        drop(spare_tx);
        drop(done_tx);
        let reading = scope.spawn(move || -> io::Result<Option<u64>> {
            let mut offset = start;
            let mut carry = Vec::new();
            let mut seq = 0u64;
            loop {
                // At least one chunk per call, so that a run always progresses.
                if seq > 0 && stop() {
                    return Ok(Some(offset));
                }
                let mut chunk = spare_rx.try_recv().unwrap_or_default();
                chunk.clear();
                chunk.append(&mut carry);
                let mut at_end = false;
                let mut want = CHUNK_BYTES;
                let cut = loop {
                    while chunk.len() < want {
                        let buffer = reader.fill_buf()?;
                        if buffer.is_empty() {
                            at_end = true;
                            break;
                        }
                        let n = buffer.len().min(want - chunk.len());
                        chunk.extend_from_slice(&buffer[..n]);
                        reader.consume(n);
                    }
                    match memchr::memrchr(b'\n', &chunk) {
                        _ if at_end => break chunk.len(),
                        Some(last) => break last + 1,
                        // A line longer than a chunk makes the chunk longer.
                        None => want = chunk.len() + CHUNK_BYTES,
                    }
                };
                carry = chunk.split_off(cut);
                offset += chunk.len() as u64;
                if !chunk.is_empty() {
                    if chunk_tx.send((seq, chunk)).is_err() {
                        return Ok(None);
                    }
                    seq += 1;
                }
                if at_end {
                    return Ok(None);
                }
            }
        });
        let mut waiting = BTreeMap::new();
        let mut next = 0u64;
        for (seq, mapped) in done_rx {
            waiting.insert(seq, mapped);
            while let Some(mapped) = waiting.remove(&next) {
                mapped.into_iter().for_each(&mut *fold);
                next += 1;
            }
        }
        reading.join().expect("the export reader does not panic")
    })
}

/// Streams every valid event of an export (a file, an S3 object or an S3
/// prefix) to `visit`, in the export's order.
pub async fn each_export_event(
    source: &str,
    s3: Option<&aws_sdk_s3::Client>,
    mut visit: impl FnMut(Event) + Send,
) -> Result<(), DbError> {
    let sources = expand_sources(source, s3).await?;
    scan(
        &sources,
        s3,
        Position::default(),
        &|line| parse_line(line).ok(),
        &mut visit,
        &|| false,
    )
    .await?;
    Ok(())
}

/// Reconciles in one go: records the run and its discrepancies, repairs if
/// asked, and returns the summary and the discrepancies.
pub async fn reconcile(
    db: &Database,
    s3: Option<&aws_sdk_s3::Client>,
    repair: Option<&crate::jobs::backfill::Context>,
    options: &ReconcileOptions,
) -> Result<(ReconcileSummary, Vec<Discrepancy>), DbError> {
    let summary = run(db, s3, repair, Start::New(options), None).await?;
    let found = tokio::task::block_in_place(|| discrepancies(db, summary.run_id))?;
    Ok((summary, found))
}

/// One pass-1 result: an analytics event of the window.
struct Sighting {
    stream_id: String,
    version: i64,
    occurred_at: i64,
    hash56: u64,
}

/// A ledger row of a differing block.
struct LedgerRow {
    content_hash: [u8; 32],
    data_point: DataPoint,
    tenant_id: String,
}

/// Works on a run until it is done or `stop_at` has passed; a run that is
/// not done (`done: false`) continues with `Start::Continue(run_id)`. Only
/// one invocation may work on a run at a time.
pub async fn run(
    db: &Database,
    s3: Option<&aws_sdk_s3::Client>,
    repair: Option<&crate::jobs::backfill::Context>,
    start: Start<'_>,
    stop_at: Option<Instant>,
) -> Result<ReconcileSummary, DbError> {
    let started = Instant::now();
    let (run_id, mut progress, mut streams) = match start {
        Start::New(options) => {
            let progress = Progress {
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
            Resumed::Unfinished(progress, streams) => (run_id, progress, streams),
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
        let stopped = scan(
            &sources,
            s3,
            progress.position,
            &|line| {
                let event = parse_line(line).ok()?;
                event.data_point()?;
                in_window(&event, filter).then(|| Sighting {
                    hash56: hash56(&event.content_hash),
                    stream_id: event.stream_id,
                    version: event.version,
                    occurred_at: event.occurred_at,
                })
            },
            &mut |s: Sighting| {
                let state = streams.entry(s.stream_id).or_default();
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
        .await?;
        (progress.span, progress.compared) = (span, compared);
        if let Some(position) = stopped {
            // A ledger query still running finishes on its own and is not used.
            return checkpoint(db, run_id, progress, position, &streams, started);
        }
        let ledger = match early {
            Some(task) => task
                .await
                .map_err(|e| DbError(format!("cannot read the ledger: {e}")))??,
            None => {
                let window = progress.window();
                tokio::task::block_in_place(|| ledger_blocks(&mut db.conn()?, window))?
            }
        };
        let differing = compare(&streams, &ledger);
        let mut candidates: Vec<String> = streams.into_keys().collect();
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
            return checkpoint(db, run_id, progress, position, &streams, started);
        }
    }

    if !streams.is_empty() {
        let window = progress.window();
        let ledger = tokio::task::block_in_place(|| ledger_details(db, &streams, window))?;
        let wanted: HashMap<String, HashSet<i64>> = streams
            .iter()
            .map(|(stream, state)| (stream.clone(), state.blocks.keys().copied().collect()))
            .collect();
        let mut position = progress.position;
        loop {
            let mut found = Vec::new();
            let mut missing: Vec<(Event, Vec<u8>)> = Vec::new();
            let full = AtomicBool::new(false);
            let stopped = scan(
                &sources,
                s3,
                position,
                &|line| {
                    let event = parse_line(line).ok()?;
                    event.data_point()?;
                    let block = event.version.div_euclid(BLOCK_VERSIONS);
                    let wanted = in_window(&event, window)
                        && wanted
                            .get(&event.stream_id)
                            .is_some_and(|blocks| blocks.contains(&block));
                    wanted.then(|| (event, line.to_vec()))
                },
                &mut |(event, raw): (Event, Vec<u8>)| {
                    let Some(state) = streams.get_mut(&event.stream_id) else {
                        return;
                    };
                    // The export's repeats are compared once.
                    if !state.versions.insert(event.version) {
                        return;
                    }
                    let dp = event.data_point().expect("analytics events only");
                    let kind = match ledger
                        .get(&event.stream_id)
                        .and_then(|rows| rows.get(&event.version))
                    {
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
            .await?;
            progress.repaired += flush(
                db,
                run_id,
                progress.options.repair,
                repair,
                &found,
                &missing,
            )
            .await?;
            match stopped {
                None => break,
                Some(next) if !out_of_time() => position = next,
                Some(next) => return checkpoint(db, run_id, progress, next, &streams, started),
            }
        }
        // In the ledger, not in the export (within the window).
        let mut unexpected = Vec::new();
        for (stream, rows) in &ledger {
            let seen = streams.get(stream).map(|s| &s.versions);
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
    tokio::task::block_in_place(|| finish(db, run_id, progress, started))
}

/// The ledger's checksum per group of the window, read from the covering
/// index `ix_ledger_reconcile`.
fn ledger_blocks(
    conn: &mut mysql::PooledConn,
    (from, to): (i64, i64),
) -> Result<HashMap<Group, Checksum>, DbError> {
    let sql = format!(
        "SELECT CRC32(stream_id) AS stream_crc, version DIV {BLOCK_VERSIONS} AS block, COUNT(*), CAST(SUM(content_hash56) AS CHAR) \
         FROM event_ledger WHERE occurred_at_ms BETWEEN {from} AND {to} AND data_point <> 'none' \
         GROUP BY stream_crc, block"
    );
    let mut blocks: HashMap<Group, Checksum> = HashMap::new();
    // The grouping's temporary table holds one row per group; past the
    // default 16 MiB it would move to disk. Grouped by the stream id (~300
    // bytes a row) that was at ~50,000 blocks, 3 M events, and took 5 M
    // events from seconds to most of a minute; the CRC's rows are far
    // smaller, and the allowance stays for the largest windows.
    conn.query_drop(format!(
        "SET SESSION tmp_table_size = {GROUPING_MEMORY}, max_heap_table_size = {GROUPING_MEMORY}"
    ))
    .map_err(db_error("cannot read the ledger"))?;
    conn.query_iter(&sql)
        .and_then(|rows| {
            rows.into_iter().try_for_each(|row| {
                let (crc, block, count, hash_sum): (u32, i64, u64, String) = mysql::from_row(row?);
                blocks.insert(
                    (crc, block),
                    Checksum {
                        count,
                        hash_sum: hash_sum.parse().unwrap_or(0),
                    },
                );
                Ok(())
            })
        })
        .map_err(db_error("cannot read the ledger"))?;
    conn.query_drop("SET SESSION tmp_table_size = DEFAULT, max_heap_table_size = DEFAULT")
        .map_err(db_error("cannot read the ledger"))?;
    Ok(blocks)
}

/// Compares the export's groups with the ledger's: the blocks of the
/// differing groups, by CRC.
fn compare(
    export: &HashMap<String, StreamState>,
    ledger: &HashMap<Group, Checksum>,
) -> HashMap<u32, HashSet<i64>> {
    let mut groups: HashMap<Group, Checksum> = HashMap::new();
    for (stream, state) in export {
        let crc = stream_crc(stream);
        for (block, checksum) in &state.blocks {
            let group = groups.entry((crc, *block)).or_default();
            group.count += checksum.count;
            group.hash_sum += checksum.hash_sum;
        }
    }
    let mut differing: HashMap<u32, HashSet<i64>> = HashMap::new();
    for (group, checksum) in ledger {
        if groups.remove(group).as_ref() != Some(checksum) {
            differing.entry(group.0).or_default().insert(group.1);
        }
    }
    // What remains of the export's groups is in the export only.
    for (crc, block) in groups.into_keys() {
        differing.entry(crc).or_default().insert(block);
    }
    differing
}

/// The streams to look at in detail: each of `streams` (the export's and
/// the ledger's, repeats allowed) in a differing group, with that group's
/// blocks and no versions yet.
fn streams_of(
    differing: &HashMap<u32, HashSet<i64>>,
    streams: impl IntoIterator<Item = String>,
) -> HashMap<String, StreamState> {
    streams
        .into_iter()
        .filter_map(|stream| {
            let blocks = differing.get(&stream_crc(&stream))?;
            let state = StreamState {
                versions: VersionBits::default(),
                blocks: blocks.iter().map(|b| (*b, Checksum::default())).collect(),
            };
            Some((stream, state))
        })
        .collect()
}

/// The streams the ledger has in the window, for differing groups whose
/// streams the export does not name.
fn ledger_streams(db: &Database, (from, to): (i64, i64)) -> Result<Vec<String>, DbError> {
    // One read of the window's index range; a window holds few streams.
    let sql = format!(
        "SELECT DISTINCT stream_id FROM event_ledger \
         WHERE occurred_at_ms BETWEEN {from} AND {to} AND data_point <> 'none'"
    );
    db.conn()?
        .query(sql)
        .map_err(db_error("cannot read the ledger"))
}

/// The ledger's rows of the differing blocks, by stream and version.
fn ledger_details(
    db: &Database,
    streams: &HashMap<String, StreamState>,
    (from, to): (i64, i64),
) -> Result<HashMap<String, HashMap<i64, LedgerRow>>, DbError> {
    let mut conn = db.conn()?;
    let mut ledger: HashMap<String, HashMap<i64, LedgerRow>> = HashMap::new();
    for (stream, state) in streams {
        let blocks: Vec<i64> = state.blocks.keys().copied().collect();
        for chunk in blocks.chunks(200) {
            let mut sql = String::from(
                "SELECT version, content_hash, data_point, tenant_id FROM event_ledger WHERE stream_id = ",
            );
            crate::store::push_str_literal(&mut sql, stream);
            sql.push_str(&format!(
                " AND occurred_at_ms BETWEEN {from} AND {to} AND data_point <> 'none' AND version DIV {BLOCK_VERSIONS} IN ("
            ));
            sql.push_str(
                &chunk
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            );
            sql.push(')');
            let rows = ledger.entry(stream.clone()).or_default();
            conn.query_map(
                sql,
                |(version, hash, dp, tenant): (i64, Vec<u8>, String, String)| {
                    let mut content_hash = [0u8; 32];
                    if hash.len() == 32 {
                        content_hash.copy_from_slice(&hash);
                    }
                    let row = LedgerRow {
                        content_hash,
                        data_point: DataPoint::parse(&dp).unwrap_or(DataPoint::Presentation),
                        tenant_id: tenant,
                    };
                    rows.insert(version, row);
                },
            )
            .map_err(db_error("cannot read the ledger"))?;
        }
    }
    Ok(ledger)
}

/// Writes discrepancies found so far and re-drives the missing events when
/// the run repairs; returns how many were re-driven.
async fn flush(
    db: &Database,
    run_id: u64,
    mode: Option<Repair>,
    repair: Option<&crate::jobs::backfill::Context>,
    found: &[Discrepancy],
    missing: &[(Event, Vec<u8>)],
) -> Result<u64, DbError> {
    if !found.is_empty() {
        tokio::task::block_in_place(|| {
            let mut conn = db.conn()?;
            let mut tx = conn
                .start_transaction(mysql::TxOpts::default())
                .map_err(db_error("cannot record discrepancies"))?;
            let mut upsert = crate::store::Upsert::new(
                "reconcile_discrepancy",
                &[
                    "run_id",
                    "kind",
                    "stream_id",
                    "version",
                    "data_point",
                    "tenant_id",
                ],
                &crate::store::merge::keep("kind"),
            );
            for d in found {
                let mut row = crate::store::Row::default();
                row.uint(run_id)
                    .str(d.kind.as_str())
                    .str(&d.stream_id)
                    .int(d.version)
                    .str(d.data_point.as_str())
                    .str(&d.tenant_id);
                upsert
                    .push(&mut tx, &row)
                    .map_err(db_error("cannot record discrepancies"))?;
            }
            upsert
                .flush(&mut tx)
                .map_err(db_error("cannot record discrepancies"))?;
            tx.commit().map_err(db_error("cannot record discrepancies"))
        })?;
    }
    match (mode, repair) {
        (Some(mode), Some(ctx)) if !missing.is_empty() => {
            let repaired = crate::jobs::backfill::redrive(ctx, mode, missing).await?;
            tracing::info!(repaired, "missing events re-driven");
            Ok(repaired)
        }
        _ => Ok(0),
    }
}

/// Records a new run; returns its id.
fn begin(db: &Database, progress: &Progress) -> Result<u64, DbError> {
    let mut conn = db.conn()?;
    let options = &progress.options;
    conn.exec_drop(
        "INSERT INTO reconcile_run (source, from_ms, to_ms, compared, missing, unexpected, conflicting, repaired, repair_mode, summary_json, progress_json) \
         VALUES (?, ?, ?, 0, 0, 0, 0, 0, ?, '{}', ?)",
        (
            &options.source,
            options.from_ms.unwrap_or(0),
            options.to_ms.unwrap_or(0),
            options.repair.map(Repair::as_str),
            serde_json::to_string(progress).expect("progress serialises"),
        ),
    )
    .map_err(db_error("cannot record the run"))?;
    Ok(conn.last_insert_id())
}

enum Resumed {
    Unfinished(Progress, HashMap<String, StreamState>),
    /// A continuation of a finished run answers its summary again.
    Finished(Box<ReconcileSummary>),
}

fn resume(db: &Database, run_id: u64) -> Result<Resumed, DbError> {
    let mut conn = db.conn()?;
    let row: Option<(Option<String>, String)> = conn
        .exec_first(
            "SELECT progress_json, summary_json FROM reconcile_run WHERE run_id = ?",
            (run_id,),
        )
        .map_err(db_error("cannot read the run"))?;
    let Some((progress, summary)) = row else {
        return Err(DbError(format!("there is no reconciliation run {run_id}")));
    };
    let Some(progress) = progress else {
        let summary = serde_json::from_str(&summary)
            .map_err(|e| DbError(format!("run {run_id}'s summary is unreadable: {e}")))?;
        return Ok(Resumed::Finished(Box::new(summary)));
    };
    let progress: Progress = serde_json::from_str(&progress)
        .map_err(|e| DbError(format!("run {run_id}'s progress is unreadable: {e}")))?;
    let streams = conn
        .exec_map(
            "SELECT stream_id, versions, blocks FROM reconcile_run_stream WHERE run_id = ?",
            (run_id,),
            |(stream, versions, blocks): (String, Vec<u8>, Vec<u8>)| {
                let state = StreamState {
                    versions: VersionBits::from_bytes(&versions),
                    blocks: StreamState::blocks_from_bytes(&blocks),
                };
                (stream, state)
            },
        )
        .map_err(db_error("cannot read the run's state"))?
        .into_iter()
        .collect();
    Ok(Resumed::Unfinished(progress, streams))
}

/// Saves where an unfinished run stands, with its per-stream state.
fn checkpoint(
    db: &Database,
    run_id: u64,
    mut progress: Progress,
    position: Position,
    streams: &HashMap<String, StreamState>,
    started: Instant,
) -> Result<ReconcileSummary, DbError> {
    progress.position = position;
    progress.elapsed_ms += started.elapsed().as_millis() as u64;
    tokio::task::block_in_place(|| {
        let mut conn = db.conn()?;
        let mut tx = conn
            .start_transaction(mysql::TxOpts::default())
            .map_err(db_error("cannot save the run's state"))?;
        tx.exec_drop(
            "DELETE FROM reconcile_run_stream WHERE run_id = ?",
            (run_id,),
        )
        .map_err(db_error("cannot save the run's state"))?;
        let mut upsert = crate::store::Upsert::new(
            "reconcile_run_stream",
            &["run_id", "stream_id", "versions", "blocks"],
            "versions = VALUES(versions), blocks = VALUES(blocks)",
        );
        for (stream, state) in streams {
            let mut row = crate::store::Row::default();
            row.uint(run_id)
                .str(stream)
                .bytes(&state.versions.to_bytes())
                .bytes(&state.blocks_to_bytes());
            upsert
                .push(&mut tx, &row)
                .map_err(db_error("cannot save the run's state"))?;
        }
        upsert
            .flush(&mut tx)
            .map_err(db_error("cannot save the run's state"))?;
        tx.exec_drop(
            "UPDATE reconcile_run SET compared = ?, repaired = ?, progress_json = ? WHERE run_id = ?",
            (
                progress.compared,
                progress.repaired,
                serde_json::to_string(&progress).expect("progress serialises"),
                run_id,
            ),
        )
        .map_err(db_error("cannot save the run's state"))?;
        tx.commit()
            .map_err(db_error("cannot save the run's state"))?;
        let mut summary = summarise(&mut conn, run_id, &progress)?;
        summary.done = false;
        summary.next = Some(position);
        tracing::info!(
            run_id,
            ?position,
            "reconciliation stopped before its deadline; continue it with its runId"
        );
        Ok(summary)
    })
}

/// The summary of the run so far: counts from its discrepancy rows.
fn summarise(
    conn: &mut mysql::PooledConn,
    run_id: u64,
    progress: &Progress,
) -> Result<ReconcileSummary, DbError> {
    let rows: Vec<(String, String, u64)> = conn
        .exec(
            "SELECT kind, data_point, COUNT(*) FROM reconcile_discrepancy WHERE run_id = ? GROUP BY kind, data_point",
            (run_id,),
        )
        .map_err(db_error("cannot count the discrepancies"))?;
    let mut totals = Counts {
        compared: progress.compared,
        ..Counts::default()
    };
    let mut by_data_point: BTreeMap<DataPoint, Counts> = BTreeMap::new();
    for (kind, dp, n) in rows {
        let (Some(kind), Some(dp)) = (Kind::parse(&kind), DataPoint::parse(&dp)) else {
            continue;
        };
        totals.add(kind, n);
        by_data_point.entry(dp).or_default().add(kind, n);
    }
    let (from_ms, to_ms) = progress.window();
    let elapsed = progress.elapsed_ms as f64 / 1000.0;
    Ok(ReconcileSummary {
        run_id,
        done: true,
        next: None,
        source: progress.options.source.clone(),
        from_ms,
        to_ms,
        totals,
        by_data_point,
        blocks_compared: progress.blocks_compared,
        blocks_differing: progress.blocks_differing,
        repaired: progress.repaired,
        repair: progress.options.repair,
        elapsed_seconds: elapsed,
        events_per_second: if elapsed > 0.0 {
            (progress.compared as f64 / elapsed).round()
        } else {
            0.0
        },
    })
}

/// Records the finished run: counts, summary, and no more state.
fn finish(
    db: &Database,
    run_id: u64,
    mut progress: Progress,
    started: Instant,
) -> Result<ReconcileSummary, DbError> {
    progress.elapsed_ms += started.elapsed().as_millis() as u64;
    let mut conn = db.conn()?;
    let summary = summarise(&mut conn, run_id, &progress)?;
    let mut tx = conn
        .start_transaction(mysql::TxOpts::default())
        .map_err(db_error("cannot record the run"))?;
    tx.exec_drop(
        "UPDATE reconcile_run SET from_ms = ?, to_ms = ?, compared = ?, missing = ?, unexpected = ?, conflicting = ?, repaired = ?, \
         summary_json = ?, progress_json = NULL, finished_at = CURRENT_TIMESTAMP(3) WHERE run_id = ?",
        (
            summary.from_ms,
            summary.to_ms,
            summary.totals.compared,
            summary.totals.missing,
            summary.totals.unexpected,
            summary.totals.conflicting,
            summary.repaired,
            serde_json::to_string(&summary).expect("summary serialises"),
            run_id,
        ),
    )
    .map_err(db_error("cannot record the run"))?;
    tx.exec_drop(
        "DELETE FROM reconcile_run_stream WHERE run_id = ?",
        (run_id,),
    )
    .map_err(db_error("cannot record the run"))?;
    tx.commit().map_err(db_error("cannot record the run"))?;
    Ok(summary)
}

/// A run's discrepancies, by stream and version.
pub fn discrepancies(db: &Database, run_id: u64) -> Result<Vec<Discrepancy>, DbError> {
    let mut conn = db.conn()?;
    let rows: Vec<(String, String, i64, String, String)> = conn
        .exec(
            "SELECT kind, stream_id, version, data_point, tenant_id FROM reconcile_discrepancy \
             WHERE run_id = ? ORDER BY stream_id, version",
            (run_id,),
        )
        .map_err(db_error("cannot read the discrepancies"))?;
    Ok(rows
        .into_iter()
        .filter_map(|(kind, stream_id, version, dp, tenant_id)| {
            Some(Discrepancy {
                kind: Kind::parse(&kind)?,
                stream_id,
                version,
                data_point: DataPoint::parse(&dp)?,
                tenant_id,
            })
        })
        .collect())
}

/// CloudWatch Embedded Metric Format documents for a run (namespace
/// `Warehouse`): `Discrepancies` per `DataPoint` and `Kind` (one document per
/// pair, zeros included so an alarm sees data every night), and
/// `EventsCompared` once.
pub fn emf_documents(summary: &ReconcileSummary, timestamp_ms: i64) -> Vec<serde_json::Value> {
    let mut documents = Vec::new();
    for dp in DataPoint::ALL {
        let counts = summary.by_data_point.get(&dp).cloned().unwrap_or_default();
        for (kind, value) in [
            (Kind::Missing, counts.missing),
            (Kind::Unexpected, counts.unexpected),
            (Kind::Conflicting, counts.conflicting),
        ] {
            documents.push(serde_json::json!({
                "_aws": {
                    "Timestamp": timestamp_ms,
                    "CloudWatchMetrics": [{
                        "Namespace": "Warehouse",
                        "Dimensions": [["DataPoint", "Kind"]],
                        "Metrics": [{"Name": "Discrepancies", "Unit": "Count"}]
                    }]
                },
                "DataPoint": dp.as_str(),
                "Kind": kind.as_str(),
                "Discrepancies": value,
                "runId": summary.run_id
            }));
        }
    }
    documents.push(serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": "Warehouse",
                "Dimensions": [[]],
                "Metrics": [{"Name": "EventsCompared", "Unit": "Count"}, {"Name": "DiscrepanciesTotal", "Unit": "Count"}]
            }]
        },
        "EventsCompared": summary.totals.compared,
        "DiscrepanciesTotal": summary.totals.missing + summary.totals.unexpected + summary.totals.conflicting,
        "runId": summary.run_id
    }));
    documents
}

/// The run's structured log line and its EMF metric documents (stdout, one
/// JSON document per line, where CloudWatch Logs extracts the metrics).
pub fn log_summary(summary: &ReconcileSummary) {
    tracing::info!(
        run_id = summary.run_id,
        source = %summary.source,
        compared = summary.totals.compared,
        missing = summary.totals.missing,
        unexpected = summary.totals.unexpected,
        conflicting = summary.totals.conflicting,
        repaired = summary.repaired,
        blocks_differing = summary.blocks_differing,
        elapsed_seconds = summary.elapsed_seconds,
        "reconciliation finished"
    );
    for document in emf_documents(summary, crate::store::now_ms()) {
        println!("{document}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Lines of varied lengths, one longer than a chunk, CRLF and a last
    /// line without its line end.
    fn export() -> Vec<u8> {
        let mut text = Vec::new();
        for i in 0..40_000 {
            let pad = "x".repeat(i % 97);
            text.extend_from_slice(format!("{i} {pad}\n").as_bytes());
            if i == 12_345 {
                text.extend_from_slice(
                    format!("long {}\r\n", "y".repeat(CHUNK_BYTES + 10)).as_bytes(),
                );
            }
        }
        text.extend_from_slice(b"last");
        text
    }

    fn lines_of(text: &[u8]) -> Vec<Vec<u8>> {
        text.split(|b| *b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
            .collect()
    }

    /// Scans from `offset`, stopping after `chunks` chunks when given.
    fn scan_from(text: &[u8], offset: u64, chunks: Option<usize>) -> (Vec<Vec<u8>>, Option<u64>) {
        let reader: Box<dyn BufRead + Send> =
            Box::new(io::Cursor::new(text[offset as usize..].to_vec()));
        let mut out = Vec::new();
        let asked = AtomicUsize::new(0);
        let stopped = scan_stream(
            reader,
            offset,
            &|line| Some(line.to_vec()),
            &mut |line| out.push(line),
            &|| chunks.is_some_and(|n| asked.fetch_add(1, Ordering::Relaxed) + 1 >= n),
        )
        .unwrap();
        (out, stopped)
    }

    #[test]
    fn every_line_is_mapped_once_and_folded_in_the_exports_order() {
        let text = export();
        let (lines, stopped) = scan_from(&text, 0, None);
        assert_eq!(stopped, None);
        assert_eq!(lines, lines_of(&text));
    }

    #[test]
    fn a_stopped_scan_continues_from_its_offset_to_the_same_lines() {
        let text = export();
        let mut lines = Vec::new();
        let mut offset = 0;
        let mut calls = 0;
        loop {
            calls += 1;
            let (part, stopped) = scan_from(&text, offset, Some(1));
            lines.extend(part);
            match stopped {
                Some(next) => {
                    assert!(next > offset, "each call progresses");
                    assert_eq!(text[next as usize - 1], b'\n', "stops at a line end");
                    offset = next;
                }
                None => break,
            }
        }
        assert!(calls >= 3, "{calls} calls");
        assert_eq!(lines, lines_of(&text));
    }

    #[test]
    fn streams_whose_crcs_collide_are_one_group_and_both_looked_at_where_it_differs() {
        let (a, b) = ("prs-fswd4dyg3i", "prs-yc3ktahsjd");
        // MySQL's CRC32() of both ids.
        assert_eq!((stream_crc(a), stream_crc(b)), (1541993352, 1541993352));
        let export = || {
            let mut export: HashMap<String, StreamState> = HashMap::new();
            for (stream, hash) in [(a, 5), (b, 7)] {
                let state = export.entry(stream.to_string()).or_default();
                state.versions.insert(3);
                state.blocks.entry(0).or_default().add(hash);
            }
            export
        };
        let ledger =
            |hash_sum: u128| HashMap::from([((stream_crc(a), 0), Checksum { count: 2, hash_sum })]);
        let looked_at =
            |blocks: &HashMap<u32, HashSet<i64>>| streams_of(blocks, export().into_keys());
        let blocks = compare(&export(), &ledger(12));
        let differing = looked_at(&blocks);
        assert!(differing.is_empty() && blocks.is_empty());
        let blocks = compare(&export(), &ledger(13));
        let differing = looked_at(&blocks);
        let mut streams: Vec<&String> = differing.keys().collect();
        streams.sort();
        assert_eq!(streams, [a, b]);
        assert!(differing
            .values()
            .all(|s| s.versions == VersionBits::default() && s.blocks.keys().eq([0].iter())));
        assert_eq!(blocks, HashMap::from([(stream_crc(a), HashSet::from([0]))]));
    }

    #[test]
    fn stream_state_round_trips_through_its_stored_form() {
        let mut state = StreamState::default();
        for version in [1, 2, 64, 65, 700, 9_999] {
            assert!(state.versions.insert(version));
            state
                .blocks
                .entry(version.div_euclid(BLOCK_VERSIONS))
                .or_default()
                .add(0x00ff_ffff_ffff_ffff);
        }
        assert!(!state.versions.insert(64), "a repeat is not new");
        let stored = StreamState {
            versions: VersionBits::from_bytes(&state.versions.to_bytes()),
            blocks: StreamState::blocks_from_bytes(&state.blocks_to_bytes()),
        };
        assert_eq!(stored, state);
        assert!(stored.versions.contains(700) && !stored.versions.contains(701));
    }
}
