//! Reconciliation: the store's export for a window (the source of truth)
//! against the warehouse ledger.
//!
//! Checksum first, details only where they differ (in the spirit of
//! checksum-and-bisect table diffing): the export is streamed once into
//! per-block checksums (a block is 64 consecutive versions of one stream);
//! the ledger's blocks are summed in SQL and compared as they stream in; only
//! the blocks that differ are read in detail, from the ledger by primary key
//! and from a second pass over the export that keeps just those blocks.
//! Memory is a few numbers per block (and one bit per version to drop the
//! export's repeated lines), never the export or the ledger.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::time::Instant;

use mysql::prelude::Queryable;
use serde::Serialize;

use crate::backfill::parse_line;
use crate::db::{Database, DbError};
use crate::event::{DataPoint, Event};
use crate::export::LineReader;
use crate::source::{open_source, Source};

/// Versions per block: small enough that few blocks differ when 0.1% of
/// events are missing, large enough that the block map stays small.
pub const BLOCK_VERSIONS: i64 = 64;

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

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub compared: u64,
    pub missing: u64,
    pub unexpected: u64,
    pub conflicting: u64,
}

impl Counts {
    fn add(&mut self, kind: Kind) {
        match kind {
            Kind::Missing => self.missing += 1,
            Kind::Unexpected => self.unexpected += 1,
            Kind::Conflicting => self.conflicting += 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileSummary {
    pub run_id: u64,
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
    pub elapsed_seconds: f64,
    pub events_per_second: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileOptions {
    /// One export, or an `s3://bucket/prefix/` naming every object under it.
    pub source: String,
    /// The window on `occurredAt` (inclusive); when absent, the export's own span.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub repair: Option<Repair>,
}

/// Count and sums of one block's distinct events: two different sets of
/// (version, content hash) pairs give equal sums with negligible probability.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Checksum {
    count: u64,
    version_sum: u128,
    hash_sum: u128,
}

impl Checksum {
    fn add(&mut self, version: i64, hash: &[u8; 32]) {
        self.count += 1;
        self.version_sum += version as u128;
        self.hash_sum += hash56(hash) as u128;
    }
}

/// The first 7 bytes of a content hash as an integer: what SQL computes as
/// `CONV(HEX(SUBSTRING(content_hash, 1, 7)), 16, 10)`.
fn hash56(hash: &[u8; 32]) -> u64 {
    hash[..7]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
}

#[derive(Default)]
struct StreamState {
    /// One bit per version seen, to count the export's repeats once.
    seen: Vec<u64>,
    blocks: HashMap<i64, Checksum>,
}

impl StreamState {
    fn first_sighting(&mut self, version: i64) -> bool {
        let Ok(index) = usize::try_from(version) else {
            return false;
        };
        let word = index / 64;
        if word >= self.seen.len() {
            // Versions are gapless from 1, so this grows with the stream; cap
            // absurd versions rather than allocate for them.
            if word > (1 << 26) {
                return true;
            }
            self.seen.resize(word + 1, 0);
        }
        let bit = 1u64 << (index % 64);
        let first = self.seen[word] & bit == 0;
        self.seen[word] |= bit;
        first
    }
}

fn in_window(event: &Event, from: i64, to: i64) -> bool {
    event.occurred_at >= from && event.occurred_at <= to
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

/// Streams every line of the sources to `visit` on a blocking thread.
async fn for_each_event(
    sources: &[Source],
    s3: Option<&aws_sdk_s3::Client>,
    mut visit: impl FnMut(Event, &[u8]) + Send,
) -> Result<(), DbError> {
    for source in sources {
        let opened = open_source(source, s3, 0)
            .await
            .map_err(|e| DbError(format!("cannot read the export: {e}")))?;
        let visit = &mut visit;
        tokio::task::block_in_place(|| -> io::Result<()> {
            let mut lines = LineReader::new(opened.reader, 0, 0);
            while let Some(line) = lines.next_line()? {
                if let Ok(event) = parse_line(&line.bytes) {
                    visit(event, &line.bytes);
                }
            }
            Ok(())
        })
        .map_err(|e| DbError(format!("cannot read the export: {e}")))?;
    }
    Ok(())
}

/// Streams every valid event of an export (a file, an S3 object or an S3
/// prefix) to `visit`.
pub async fn each_export_event(
    source: &str,
    s3: Option<&aws_sdk_s3::Client>,
    mut visit: impl FnMut(Event) + Send,
) -> Result<(), DbError> {
    let sources = expand_sources(source, s3).await?;
    for_each_event(&sources, s3, |event, _| visit(event)).await
}

/// Reconciles, records the run and its discrepancies, and repairs if asked.
pub async fn reconcile(
    db: &Database,
    s3: Option<&aws_sdk_s3::Client>,
    repair: Option<&crate::backfill::Context>,
    options: &ReconcileOptions,
) -> Result<(ReconcileSummary, Vec<Discrepancy>), DbError> {
    let started = Instant::now();
    let sources = expand_sources(&options.source, s3).await?;

    // Pass 1: per-block checksums of the export's distinct analytics events in the window.
    let (from, to) = (
        options.from_ms.unwrap_or(i64::MIN),
        options.to_ms.unwrap_or(i64::MAX),
    );
    let mut streams: HashMap<String, StreamState> = HashMap::new();
    let mut span = (i64::MAX, i64::MIN);
    let mut compared_source = 0u64;
    for_each_event(&sources, s3, |event, _| {
        if event.data_point().is_none() || !in_window(&event, from, to) {
            return;
        }
        // Look up before inserting: most events belong to a stream already seen.
        if !streams.contains_key(&event.stream_id) {
            streams.insert(event.stream_id.clone(), StreamState::default());
        }
        let state = streams.get_mut(&event.stream_id).expect("just ensured");
        if !state.first_sighting(event.version) {
            return;
        }
        span = (span.0.min(event.occurred_at), span.1.max(event.occurred_at));
        compared_source += 1;
        state
            .blocks
            .entry(event.version.div_euclid(BLOCK_VERSIONS))
            .or_default()
            .add(event.version, &event.content_hash);
    })
    .await?;
    let (from, to) = (
        options.from_ms.unwrap_or(span.0),
        options.to_ms.unwrap_or(span.1),
    );

    // The ledger's blocks in the window, compared as they stream in; each
    // compared block leaves the export's map, so what remains there afterwards
    // is in the export only.
    let mut differing: HashMap<String, HashSet<i64>> = HashMap::new();
    let mut blocks_compared = 0u64;
    let mut conn = db.conn()?;
    let sql = format!(
        "SELECT stream_id, version DIV {BLOCK_VERSIONS} AS block, COUNT(*), CAST(SUM(version) AS CHAR), \
         CAST(SUM(CAST(CONV(HEX(SUBSTRING(content_hash, 1, 7)), 16, 10) AS UNSIGNED)) AS CHAR) \
         FROM event_ledger WHERE occurred_at_ms BETWEEN {from} AND {to} AND data_point <> 'none' \
         GROUP BY stream_id, block"
    );
    tokio::task::block_in_place(|| {
        conn.query_iter(&sql)?.try_for_each(|row| {
            let (stream, block, count, version_sum, hash_sum): (String, i64, u64, String, String) =
                mysql::from_row(row?);
            blocks_compared += 1;
            let ledger = Checksum {
                count,
                version_sum: version_sum.parse().unwrap_or(0),
                hash_sum: hash_sum.parse().unwrap_or(0),
            };
            let source = streams
                .get_mut(&stream)
                .and_then(|s| s.blocks.remove(&block));
            if source != Some(ledger) {
                differing.entry(stream).or_default().insert(block);
            }
            Ok::<_, mysql::Error>(())
        })
    })
    .map_err(|e| DbError(format!("cannot read the ledger: {e}")))?;
    for (stream, state) in streams {
        if !state.blocks.is_empty() {
            differing
                .entry(stream)
                .or_default()
                .extend(state.blocks.into_keys());
        }
    }
    let blocks_differing: usize = differing.values().map(HashSet::len).sum();

    // Pass 2, only where blocks differ: the ledger's details of those blocks
    // first (small), then the export again, comparing each event as it
    // passes; only missing events are kept (for the repair).
    let mut discrepancies = Vec::new();
    if !differing.is_empty() {
        let by_stream: BTreeMap<&str, Vec<i64>> = differing
            .iter()
            .map(|(stream, blocks)| (stream.as_str(), blocks.iter().copied().collect()))
            .collect();
        let mut ledger: HashMap<(String, i64), LedgerDetail> = HashMap::new();
        tokio::task::block_in_place(|| {
            for (stream, blocks) in &by_stream {
                for chunk in blocks.chunks(200) {
                    let mut sql = String::from(
                        "SELECT stream_id, version, content_hash, data_point, tenant_id FROM event_ledger WHERE stream_id = ",
                    );
                    crate::sql::push_str_literal(&mut sql, stream);
                    sql.push_str(&format!(
                        " AND occurred_at_ms BETWEEN {from} AND {to} AND data_point <> 'none' AND version DIV {BLOCK_VERSIONS} IN ("
                    ));
                    sql.push_str(&chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
                    sql.push(')');
                    conn.query_map(sql, |(stream, version, hash, dp, tenant): (String, i64, Vec<u8>, String, String)| {
                        let mut content_hash = [0u8; 32];
                        if hash.len() == 32 {
                            content_hash.copy_from_slice(&hash);
                        }
                        ledger.insert((stream, version), (content_hash, dp, tenant, false));
                    })?;
                }
            }
            Ok::<_, mysql::Error>(())
        })
        .map_err(|e| DbError(format!("cannot read the ledger: {e}")))?;
        let mut missing_events: HashMap<(String, i64), (Event, Vec<u8>)> = HashMap::new();
        for_each_event(&sources, s3, |event, raw| {
            if event.data_point().is_none() || !in_window(&event, from, to) {
                return;
            }
            let block = event.version.div_euclid(BLOCK_VERSIONS);
            if !differing
                .get(&event.stream_id)
                .is_some_and(|blocks| blocks.contains(&block))
            {
                return;
            }
            let key = (event.stream_id.clone(), event.version);
            match ledger.get_mut(&key) {
                Some((hash, _, _, seen)) => {
                    // The export's repeats are compared once.
                    if !*seen {
                        *seen = true;
                        if *hash != event.content_hash {
                            let dp = event.data_point().expect("analytics events only");
                            discrepancies.push(discrepancy(Kind::Conflicting, &event, dp));
                        }
                    }
                }
                None => {
                    missing_events
                        .entry(key)
                        .or_insert_with(|| (event, raw.to_vec()));
                }
            }
        })
        .await?;
        for (event, _) in missing_events.values() {
            let dp = event.data_point().expect("analytics events only");
            discrepancies.push(discrepancy(Kind::Missing, event, dp));
        }
        for ((stream, version), (_, dp, tenant, seen)) in &ledger {
            if !seen {
                discrepancies.push(Discrepancy {
                    kind: Kind::Unexpected,
                    stream_id: stream.clone(),
                    version: *version,
                    data_point: DataPoint::parse(dp).unwrap_or(DataPoint::Presentation),
                    tenant_id: tenant.clone(),
                });
            }
        }
        discrepancies.sort_by(|a, b| {
            (&a.stream_id, a.version, a.kind).cmp(&(&b.stream_id, b.version, b.kind))
        });

        // Repair: the missing events, through the backfill's code.
        if let (Some(mode), Some(ctx)) = (options.repair, repair) {
            let missing: Vec<&(Event, Vec<u8>)> = missing_events.values().collect();
            let repaired = crate::backfill::redrive(ctx, mode, &missing).await?;
            tracing::info!(repaired, "missing events re-driven");
        }
    }

    // Results: counts, the run row and one row per discrepancy.
    let mut totals = Counts::default();
    let mut by_data_point: BTreeMap<DataPoint, Counts> = BTreeMap::new();
    totals.compared = compared_source;
    for d in &discrepancies {
        totals.add(d.kind);
        by_data_point.entry(d.data_point).or_default().add(d.kind);
    }
    let repaired = if options.repair.is_some() {
        totals.missing
    } else {
        0
    };
    let elapsed = started.elapsed().as_secs_f64();
    let mut summary = ReconcileSummary {
        run_id: 0,
        source: options.source.clone(),
        from_ms: from,
        to_ms: to,
        totals,
        by_data_point,
        blocks_compared,
        blocks_differing: blocks_differing as u64,
        repaired,
        repair: options.repair,
        elapsed_seconds: elapsed,
        events_per_second: if elapsed > 0.0 {
            (compared_source as f64 / elapsed).round()
        } else {
            0.0
        },
    };
    summary.run_id = tokio::task::block_in_place(|| record(db, &summary, &discrepancies))?;
    Ok((summary, discrepancies))
}

/// A ledger row of a differing block: content hash, data point, tenant, and
/// whether the export's second pass has seen the event.
type LedgerDetail = ([u8; 32], String, String, bool);

fn discrepancy(kind: Kind, event: &Event, dp: DataPoint) -> Discrepancy {
    Discrepancy {
        kind,
        stream_id: event.stream_id.clone(),
        version: event.version,
        data_point: dp,
        tenant_id: event.tenant_id.clone(),
    }
}

fn record(
    db: &Database,
    summary: &ReconcileSummary,
    discrepancies: &[Discrepancy],
) -> Result<u64, DbError> {
    let mut conn = db.conn()?;
    let mut tx = conn
        .start_transaction(mysql::TxOpts::default())
        .map_err(|e| DbError(e.to_string()))?;
    tx.exec_drop(
        "INSERT INTO reconcile_run (source, from_ms, to_ms, compared, missing, unexpected, conflicting, repaired, repair_mode, summary_json) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            &summary.source,
            summary.from_ms,
            summary.to_ms,
            summary.totals.compared,
            summary.totals.missing,
            summary.totals.unexpected,
            summary.totals.conflicting,
            summary.repaired,
            summary.repair.map(|r| match r {
                Repair::Queue => "queue",
                Repair::Direct => "direct",
            }),
            serde_json::to_string(summary).expect("summary serialises"),
        ),
    )
    .map_err(|e| DbError(e.to_string()))?;
    let run_id = tx.last_insert_id().unwrap_or(0);
    let mut upsert = crate::sql::Upsert::new(
        "reconcile_discrepancy",
        &[
            "run_id",
            "kind",
            "stream_id",
            "version",
            "data_point",
            "tenant_id",
        ],
        &crate::sql::merge::keep("kind"),
    );
    for d in discrepancies {
        let mut row = crate::sql::Row::default();
        row.uint(run_id)
            .str(d.kind.as_str())
            .str(&d.stream_id)
            .int(d.version)
            .str(d.data_point.as_str())
            .str(&d.tenant_id);
        upsert
            .push(&mut tx, &row)
            .map_err(|e| DbError(e.to_string()))?;
    }
    upsert.flush(&mut tx).map_err(|e| DbError(e.to_string()))?;
    tx.commit().map_err(|e| DbError(e.to_string()))?;
    Ok(run_id)
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
    for document in emf_documents(summary, crate::sqs_loader::now_ms()) {
        println!("{document}");
    }
}
