//! Erasure on the write path (ANALYTICS.md §8): what every transaction that
//! writes a viewer's name, email, question or a kept body reads first
//! ([`read_erasures`]), and what it then leaves out ([`Erasures`]).
//!
//! The order of erasures and loads: `erasure_guard` holds one row (migration
//! 0010). Every such transaction takes it in share mode as its first
//! statement, then reads the erasures of the viewers it names; loads share
//! it with one another. `forget` takes it exclusively, records the erasure,
//! scrubs, and commits (see `forget.rs`). So each load either committed
//! before the scrub began (the scrub sees and cleans what it wrote) or reads
//! the erasure after it committed (and never writes the values): no
//! interleaving brings a name back. A load holds nothing else while it waits
//! for the guard, and `forget` takes the guard before anything else, so the
//! guard adds no deadlock.

use std::borrow::Cow;
use std::collections::BTreeSet;

use mysql::prelude::Queryable;

use crate::contract::{mentioned_viewers, without_erased, Event};
use crate::store::{push_str_literal, run_script};

/// The erased viewers among those a transaction names, as (tenant, viewer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erasures(BTreeSet<(String, String)>);

impl Erasures {
    /// Whether viewer `viewer` of tenant `tenant` is erased.
    pub fn contains(&self, tenant: &str, viewer: &str) -> bool {
        // Few erasures per batch: a scan allocates nothing.
        self.0.iter().any(|(t, v)| t == tenant && v == viewer)
    }

    /// As [`contains`](Self::contains); with no tenant (a body whose tenant
    /// cannot be read), whether the id is erased in any tenant.
    pub fn matches(&self, tenant: Option<&str>, viewer: &str) -> bool {
        match tenant {
            Some(tenant) => self.contains(tenant, viewer),
            None => self.0.iter().any(|(_, v)| v == viewer),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds the erasures another transaction read.
    pub fn extend(&mut self, other: &Erasures) {
        self.0.extend(other.0.iter().cloned());
    }

    /// A kept body without what it holds of these erased viewers (see
    /// [`without_erased`]); the very bytes when it holds nothing of them.
    pub fn scrub<'b>(&self, body: &'b [u8]) -> Cow<'b, [u8]> {
        if self.0.is_empty() {
            return Cow::Borrowed(body);
        }
        without_erased(body, &|tenant, viewer| self.matches(tenant, viewer), &[])
    }
}

/// The viewer ids whose erasure a transaction writing `events` and the kept
/// `bodies` must know: every viewer an event names, and every viewer a body
/// mentions.
pub(super) fn named_viewers<'a>(
    events: impl Iterator<Item = &'a Event>,
    bodies: impl Iterator<Item = &'a [u8]>,
) -> BTreeSet<String> {
    let mut viewers: BTreeSet<String> = events
        .filter_map(|e| e.viewer().map(str::to_string))
        .collect();
    for body in bodies {
        viewers.extend(mentioned_viewers(body).viewers);
    }
    viewers
}

/// Takes the erasure guard in share mode (until the transaction ends), then
/// reads which of `viewer_ids` are erased, in any tenant: one round trip.
/// Call it first in a transaction that writes what an erasure scrubs.
pub(super) fn read_erasures(
    tx: &mut impl Queryable,
    viewer_ids: &BTreeSet<String>,
) -> Result<Erasures, mysql::Error> {
    let mut script =
        vec!["SELECT id FROM erasure_guard WHERE id = 1 LOCK IN SHARE MODE".to_string()];
    let ids: Vec<&String> = viewer_ids.iter().collect();
    for chunk in ids.chunks(1000) {
        let mut sql =
            String::from("SELECT tenant_id, viewer_id FROM viewer_erasure WHERE viewer_id IN (");
        for (i, id) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            push_str_literal(&mut sql, id);
        }
        sql.push(')');
        script.push(sql);
    }
    let mut erasures = BTreeSet::new();
    for row in run_script(tx, &script)?
        .into_iter()
        .skip(1)
        .flat_map(|o| o.rows)
    {
        let (tenant, viewer): (String, String) = mysql::from_row_opt(row)?;
        // The column compares with trailing blanks ignored; ids are exact.
        if viewer_ids.contains(&viewer) {
            erasures.insert((tenant, viewer));
        }
    }
    Ok(Erasures(erasures))
}

/// Every erasure of the given tenants, as (tenant, viewer): what a replay
/// of their events must forget to compare with the warehouse.
pub fn erasures_of_tenants(
    conn: &mut impl Queryable,
    tenants: &BTreeSet<String>,
) -> Result<Vec<(String, String)>, mysql::Error> {
    let mut script = Vec::new();
    for tenant in tenants {
        let mut sql =
            String::from("SELECT tenant_id, viewer_id FROM viewer_erasure WHERE tenant_id = ");
        push_str_literal(&mut sql, tenant);
        script.push(sql);
    }
    let mut found = Vec::new();
    for row in run_script(conn, &script)?.into_iter().flat_map(|o| o.rows) {
        found.push(mysql::from_row_opt::<(String, String)>(row)?);
    }
    Ok(found)
}
