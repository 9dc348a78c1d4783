//! The event ledger: one row per loaded identity (stream, version) with its
//! content hash and the load that inserted it. Its upsert keeps the first
//! load, so a row this load inserted is a new event; a row already there is a
//! duplicate (same hash) or a conflict (other hash).

use std::collections::{BTreeMap, HashMap};

use mysql::prelude::Queryable;

use crate::contract::truncate_chars;
use crate::contract::{DataPoint, Event};
use crate::store::{merge, push_str_literal, run_script, PreparedUpsert, Row};

/// The ledger rows' upsert; its affected rows count the new ones.
pub(super) fn ledger_upsert<'e>(
    load_id: u64,
    events: impl Iterator<Item = &'e Event>,
) -> PreparedUpsert {
    let mut upsert = PreparedUpsert::new(
        "event_ledger",
        &[
            "stream_id",
            "version",
            "tenant_id",
            "data_point",
            "event_type",
            "occurred_at_ms",
            "content_hash",
            "load_id",
        ],
        &merge::keep("load_id"),
    );
    for event in events {
        let mut row = Row::default();
        row.str(&event.stream_id)
            .int(event.version)
            .str(&event.tenant_id)
            .str(event.data_point().map_or("none", DataPoint::as_str))
            .str(truncate_chars(&event.event_type, 64))
            .int(event.occurred_at)
            .bytes(&event.content_hash)
            .uint(load_id);
        upsert.add(row);
    }
    upsert
}

/// (stream, version) -> (content hash, load id).
pub(super) type LedgerEntries = HashMap<(String, i64), ([u8; 32], u64)>;

/// The ledger rows of the given identities, one query per stream (a batch
/// usually holds few streams), all in one round trip: `stream_id = ? AND
/// version IN (…)` uses the primary key on both servers.
pub(super) fn read_ledger<'e>(
    tx: &mut impl Queryable,
    events: impl ExactSizeIterator<Item = &'e Event>,
) -> Result<LedgerEntries, mysql::Error> {
    let count = events.len();
    let mut by_stream: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for event in events {
        by_stream
            .entry(&event.stream_id)
            .or_default()
            .push(event.version);
    }
    let mut script = Vec::new();
    for (stream, versions) in by_stream {
        for chunk in versions.chunks(5000) {
            let mut sql = String::from(
                "SELECT stream_id, version, content_hash, load_id FROM event_ledger WHERE stream_id = ",
            );
            push_str_literal(&mut sql, stream);
            sql.push_str(" AND version IN (");
            push_joined(&mut sql, chunk.iter());
            sql.push(')');
            script.push(sql);
        }
    }
    let mut entries = HashMap::with_capacity(count);
    for row in run_script(tx, &script)?.into_iter().flat_map(|o| o.rows) {
        let (stream_id, version, hash, load_id): (String, i64, Vec<u8>, u64) =
            mysql::from_row_opt(row)?;
        let mut content_hash = [0u8; 32];
        if hash.len() == 32 {
            content_hash.copy_from_slice(&hash);
        }
        entries.insert((stream_id, version), (content_hash, load_id));
    }
    Ok(entries)
}

fn push_joined<T: std::fmt::Display>(out: &mut String, values: impl Iterator<Item = T>) {
    use std::fmt::Write;
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{v}");
    }
}
