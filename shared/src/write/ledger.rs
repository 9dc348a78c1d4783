//! The event ledger: one row per loaded identity (tenant, stream, version) with its
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

/// Ledger entries by identity: (content hash, load id), looked up with an
/// event's identity.
pub(super) struct LedgerEntries(HashMap<(String, String), StreamEntries>);

/// One stream's entries: version -> (content hash, load id).
type StreamEntries = HashMap<i64, ([u8; 32], u64)>;

impl LedgerEntries {
    pub(super) fn get(
        &self,
        (tenant, stream, version): &(&str, &str, i64),
    ) -> Option<&([u8; 32], u64)> {
        self.0
            .get(&(tenant.to_string(), stream.to_string()))
            .and_then(|versions| versions.get(version))
    }
}

/// The ledger rows of the given identities, one query per presentation (a
/// batch usually holds few), all in one round trip: `tenant_id = ? AND
/// stream_id = ? AND version IN (…)` uses the primary key on both servers.
pub(super) fn read_ledger<'e>(
    tx: &mut impl Queryable,
    events: impl ExactSizeIterator<Item = &'e Event>,
) -> Result<LedgerEntries, mysql::Error> {
    let mut by_presentation: BTreeMap<(&str, &str), Vec<i64>> = BTreeMap::new();
    for event in events {
        by_presentation
            .entry(event.presentation())
            .or_default()
            .push(event.version);
    }
    let mut script = Vec::new();
    for ((tenant, stream), versions) in by_presentation {
        for chunk in versions.chunks(5000) {
            let mut sql = String::from(
                "SELECT tenant_id, stream_id, version, content_hash, load_id FROM event_ledger WHERE tenant_id = ",
            );
            push_str_literal(&mut sql, tenant);
            sql.push_str(" AND stream_id = ");
            push_str_literal(&mut sql, stream);
            sql.push_str(" AND version IN (");
            push_joined(&mut sql, chunk.iter());
            sql.push(')');
            script.push(sql);
        }
    }
    let mut entries: HashMap<(String, String), StreamEntries> = HashMap::new();
    for row in run_script(tx, &script)?.into_iter().flat_map(|o| o.rows) {
        let (tenant_id, stream_id, version, hash, load_id): (String, String, i64, Vec<u8>, u64) =
            mysql::from_row_opt(row)?;
        let mut content_hash = [0u8; 32];
        if hash.len() == 32 {
            content_hash.copy_from_slice(&hash);
        }
        entries
            .entry((tenant_id, stream_id))
            .or_default()
            .insert(version, (content_hash, load_id));
    }
    Ok(LedgerEntries(entries))
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
