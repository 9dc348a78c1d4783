//! The ledger's side, in SQL: the checksums of the window's blocks, the
//! streams it has in the window, and the rows of the differing blocks.

use std::collections::HashMap;

use mysql::prelude::Queryable;

use crate::contract::DataPoint;
use crate::store::{Database, DbError};

use super::checksum::{Checksum, Group, StreamKey, StreamState, BLOCK_VERSIONS, STREAM_CRC_SQL};
use super::db_error;

/// The most memory the server may give the ledger query's grouping before
/// it spills to disk: ~100 M events in one window when it was grouped by
/// the stream id, several times that by its CRC.
const GROUPING_MEMORY: u64 = 512 << 20;

/// A ledger row of a differing block.
pub(super) struct LedgerRow {
    pub(super) content_hash: [u8; 32],
    pub(super) data_point: DataPoint,
    pub(super) tenant_id: String,
}

/// The ledger's checksum per group of the window, read from the covering
/// index `ix_ledger_reconcile`.
pub(super) fn ledger_blocks(
    conn: &mut mysql::PooledConn,
    (from, to): (i64, i64),
) -> Result<HashMap<Group, Checksum>, DbError> {
    let sql = format!(
        "SELECT {STREAM_CRC_SQL} AS stream_crc, version DIV {BLOCK_VERSIONS} AS block, COUNT(*), CAST(SUM(content_hash56) AS CHAR) \
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

/// The streams the ledger has in the window, for differing groups whose
/// streams the export does not name.
pub(super) fn ledger_streams(
    db: &Database,
    (from, to): (i64, i64),
) -> Result<Vec<StreamKey>, DbError> {
    // One read of the window's index range; a window holds few streams.
    let sql = format!(
        "SELECT DISTINCT tenant_id, stream_id FROM event_ledger \
         WHERE occurred_at_ms BETWEEN {from} AND {to} AND data_point <> 'none'"
    );
    db.conn()?
        .query(sql)
        .map_err(db_error("cannot read the ledger"))
}

/// The ledger's rows of the differing blocks, by stream and version.
pub(super) fn ledger_details(
    db: &Database,
    streams: &HashMap<StreamKey, StreamState>,
    (from, to): (i64, i64),
) -> Result<HashMap<StreamKey, HashMap<i64, LedgerRow>>, DbError> {
    let mut conn = db.conn()?;
    let mut ledger: HashMap<StreamKey, HashMap<i64, LedgerRow>> = HashMap::new();
    for (key @ (tenant, stream), state) in streams {
        let blocks: Vec<i64> = state.blocks.keys().copied().collect();
        for chunk in blocks.chunks(200) {
            let mut sql = String::from(
                "SELECT version, content_hash, data_point, tenant_id FROM event_ledger WHERE tenant_id = ",
            );
            crate::store::push_str_literal(&mut sql, tenant);
            sql.push_str(" AND stream_id = ");
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
            let rows = ledger.entry(key.clone()).or_default();
            let read = conn
                .query_map(
                    sql,
                    |(version, hash, dp, tenant): (i64, Vec<u8>, String, String)| {
                        let mut content_hash = [0u8; 32];
                        if hash.len() == 32 {
                            content_hash.copy_from_slice(&hash);
                        }
                        let row = LedgerRow {
                            content_hash,
                            data_point: ledger_data_point(stream, version, &dp)?,
                            tenant_id: tenant,
                        };
                        Ok::<_, DbError>((version, row))
                    },
                )
                .map_err(db_error("cannot read the ledger"))?;
            for row in read {
                let (version, row) = row?;
                rows.insert(version, row);
            }
        }
    }
    Ok(ledger)
}

/// A ledger row's data point. The query leaves out `none`; text this
/// release does not know is an error rather than a guess, which would count
/// the row's discrepancy under another data point.
fn ledger_data_point(stream: &str, version: i64, text: &str) -> Result<DataPoint, DbError> {
    DataPoint::parse(text).ok_or_else(|| {
        DbError::permanent(format!(
            "cannot read the ledger: {stream} version {version} has an unknown data point {text:?}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_data_point_in_the_ledger_is_an_error_not_a_presentation() {
        assert_eq!(
            ledger_data_point("prs-1", 3, "polls").unwrap(),
            DataPoint::Polls
        );
        let error = ledger_data_point("prs-1", 3, "quizzes").unwrap_err();
        assert_eq!(
            error.to_string(),
            "cannot read the ledger: prs-1 version 3 has an unknown data point \"quizzes\""
        );
    }
}
