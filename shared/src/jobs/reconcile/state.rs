//! The run's row (`reconcile_run`) and its per-stream state
//! (`reconcile_run_stream`): starting a run, resuming it, checkpointing an
//! unfinished one, finishing it, and its bookkeeping in between.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use mysql::prelude::Queryable;
use serde::{Deserialize, Serialize};

use crate::contract::DataPoint;
use crate::export::ScanPoint;
use crate::store::{Database, DbError};

use super::checksum::{StreamKey, StreamState, VersionBits};
use super::{
    db_error, Discrepancy, DiscrepancyCounts, Kind, ReconcileOptions, ReconcileSummary, Repair,
};

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

impl Position {
    /// Where the export's scan continues.
    pub(super) fn scan_point(self) -> ScanPoint {
        (self.source_index, self.offset)
    }

    /// Where a scan of this pass stopped.
    pub(super) fn moved_to(self, (source_index, offset): ScanPoint) -> Position {
        Position {
            pass: self.pass,
            source_index,
            offset,
        }
    }
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
pub(super) struct RunBookkeeping {
    pub(super) options: ReconcileOptions,
    pub(super) position: Position,
    /// The span of `occurredAt` over the events counted so far.
    pub(super) span: (i64, i64),
    pub(super) compared: u64,
    pub(super) blocks_compared: u64,
    pub(super) blocks_differing: u64,
    pub(super) repaired: u64,
    pub(super) elapsed_ms: u64,
    pub(super) invocations: u32,
}

impl RunBookkeeping {
    /// The window: the options' bounds, else the export's span (known once
    /// the export pass is complete).
    pub(super) fn window(&self) -> (i64, i64) {
        (
            self.options.from_ms.unwrap_or(self.span.0),
            self.options.to_ms.unwrap_or(self.span.1),
        )
    }
}

/// Records a new run; returns its id.
pub(super) fn begin(db: &Database, progress: &RunBookkeeping) -> Result<u64, DbError> {
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

pub(super) enum Resumed {
    Unfinished(RunBookkeeping, HashMap<StreamKey, StreamState>),
    /// A continuation of a finished run answers its summary again.
    Finished(Box<ReconcileSummary>),
}

pub(super) fn resume(db: &Database, run_id: u64) -> Result<Resumed, DbError> {
    let mut conn = db.conn()?;
    let row: Option<(Option<String>, String)> = conn
        .exec_first(
            "SELECT progress_json, summary_json FROM reconcile_run WHERE run_id = ?",
            (run_id,),
        )
        .map_err(db_error("cannot read the run"))?;
    let Some((progress, summary)) = row else {
        return Err(DbError::permanent(format!(
            "there is no reconciliation run {run_id}"
        )));
    };
    let Some(progress) = progress else {
        let summary = serde_json::from_str(&summary)
            .map_err(|e| DbError::caused(format!("run {run_id}'s summary is unreadable"), e))?;
        return Ok(Resumed::Finished(Box::new(summary)));
    };
    let progress: RunBookkeeping = serde_json::from_str(&progress)
        .map_err(|e| DbError::caused(format!("run {run_id}'s progress is unreadable"), e))?;
    let streams = conn
        .exec_map(
            "SELECT tenant_id, stream_id, versions, blocks FROM reconcile_run_stream WHERE run_id = ?",
            (run_id,),
            |(tenant, stream, versions, blocks): (String, String, Vec<u8>, Vec<u8>)| {
                let state = StreamState {
                    versions: VersionBits::from_bytes(&versions),
                    blocks: StreamState::blocks_from_bytes(&blocks),
                };
                ((tenant, stream), state)
            },
        )
        .map_err(db_error("cannot read the run's state"))?
        .into_iter()
        .collect();
    Ok(Resumed::Unfinished(progress, streams))
}

/// Saves where an unfinished run stands, with its per-stream state.
pub(super) fn checkpoint(
    db: &Database,
    run_id: u64,
    mut progress: RunBookkeeping,
    position: Position,
    streams: &HashMap<StreamKey, StreamState>,
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
            &["run_id", "tenant_id", "stream_id", "versions", "blocks"],
            "versions = VALUES(versions), blocks = VALUES(blocks)",
        );
        for ((tenant, stream), state) in streams {
            let mut row = crate::store::Row::default();
            row.uint(run_id)
                .str(tenant)
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
    progress: &RunBookkeeping,
) -> Result<ReconcileSummary, DbError> {
    let rows: Vec<(String, String, u64)> = conn
        .exec(
            "SELECT kind, data_point, COUNT(*) FROM reconcile_discrepancy WHERE run_id = ? GROUP BY kind, data_point",
            (run_id,),
        )
        .map_err(db_error("cannot count the discrepancies"))?;
    let mut totals = DiscrepancyCounts {
        compared: progress.compared,
        ..DiscrepancyCounts::default()
    };
    let mut by_data_point: BTreeMap<DataPoint, DiscrepancyCounts> = BTreeMap::new();
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
pub(super) fn finish(
    db: &Database,
    run_id: u64,
    mut progress: RunBookkeeping,
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

/// Writes discrepancies found so far (a run writes them as it goes, so a
/// whole night missing never sits in memory).
pub(super) fn record_discrepancies(
    db: &Database,
    run_id: u64,
    found: &[Discrepancy],
) -> Result<(), DbError> {
    let mut conn = db.conn()?;
    let mut write = || -> Result<(), mysql::Error> {
        let mut tx = conn.start_transaction(mysql::TxOpts::default())?;
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
            upsert.push(&mut tx, &row)?;
        }
        upsert.flush(&mut tx)?;
        tx.commit()
    };
    write().map_err(db_error("cannot record discrepancies"))
}
