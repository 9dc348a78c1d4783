//! The transaction of one batch: its items' identities settled by the ledger
//! (new, duplicate or conflict), then the dimensions and facts of the new
//! events, the rejects, the audit row (`load_run`) and the known
//! presentations' revision bump, all committed together or not at all.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use mysql::prelude::Queryable;

use super::dimensions::{
    read_presentation_keys, read_viewer_keys, select_presentations, select_viewers, wanted_viewers,
    write_dimensions, PresentationKeys, ViewerKeys,
};
use super::erasure::{named_viewers, read_erasures, Erasures};
use super::facts::FactWriter;
use super::ledger::{ledger_upsert, read_ledger};
use super::rejects::{reject_statements, Reject, RejectKind};
use crate::contract::{DataPoint, Event};
use crate::store::{run_script, with_retry, Database, DbError};

/// One parsed event and where it came from.
#[derive(Clone, Copy)]
pub struct Item<'a> {
    pub event: &'a Event,
    /// The text as received, kept for the error table if it conflicts.
    pub raw: &'a str,
    /// 1-based line of an export, 0 for a queue message.
    pub line: u64,
}

/// What happened to each item of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// New: its effect is in the warehouse now.
    Loaded,
    /// Its identity was already loaded with the same content.
    Duplicate,
    /// Its identity was already loaded with other content: rejected.
    Conflict,
}

/// A test seam that runs with a batch's events written but not committed
/// (`None` in production).
pub type CommitHook = dyn Fn(&[Item]) + Send + Sync;

/// What loading one batch did with its items.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadCounts {
    /// New events, analytics or not.
    pub loaded: u64,
    /// New events per data point (not analytics ones excluded).
    pub loaded_by_data_point: BTreeMap<DataPoint, u64>,
    /// New events whose type is not analytics.
    pub not_analytics: u64,
    /// Repeats of a loaded identity, identical or conflicting.
    pub duplicates: u64,
    /// Repeats whose content differs (also counted in `duplicates`).
    pub conflicts: u64,
    pub malformed: u64,
    pub wrong_data_point: u64,
    /// Events the database refused (see `RejectKind::Refused`).
    pub refused: u64,
}

impl LoadCounts {
    /// Adds the counts of another load (a batch loaded in parts).
    pub fn add(&mut self, other: &LoadCounts) {
        self.loaded += other.loaded;
        for (dp, n) in &other.loaded_by_data_point {
            *self.loaded_by_data_point.entry(*dp).or_default() += n;
        }
        self.not_analytics += other.not_analytics;
        self.duplicates += other.duplicates;
        self.conflicts += other.conflicts;
        self.malformed += other.malformed;
        self.wrong_data_point += other.wrong_data_point;
        self.refused += other.refused;
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    pub load_id: u64,
    /// One per item, in order.
    pub dispositions: Vec<Disposition>,
    pub counts: LoadCounts,
    /// The erased viewers among those the batch names (for copies of its
    /// bodies kept elsewhere, such as dead-letter messages).
    pub erasures: Erasures,
}

/// Loads one batch inside the caller's transaction. `source` names the
/// loader or run for the audit and error tables.
pub fn load_batch(
    tx: &mut impl Queryable,
    source: &str,
    items: &[Item],
    rejects: &[Reject],
    attempts: u32,
) -> Result<BatchOutcome, mysql::Error> {
    let started_at_ms = crate::store::now_ms();
    let load_id = rand::random::<u64>() >> 1; // fits BIGINT UNSIGNED and i64 alike
    let mut dispositions = vec![Disposition::Duplicate; items.len()];
    let mut counts = LoadCounts::default();

    // 0. The erasure guard, shared, and the erasures of every viewer the
    // batch names, before anything else (see `erasure.rs`): what is written
    // below leaves them out. (A conflicting copy is an item's body: as a
    // JSON document it mentions the viewer its event names.)
    let erasures = if items.is_empty() && rejects.is_empty() {
        Erasures::default()
    } else {
        let named = named_viewers(items.iter().map(|i| i.event), rejects.iter().map(|r| r.raw));
        read_erasures(tx, &named)?
    };

    // 1. Within the batch the first of an identity wins.
    let mut first_of: HashMap<(&str, &str, i64), usize> = HashMap::new();
    let mut candidates = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let key = item.event.identity();
        match first_of.get(&key) {
            None => {
                first_of.insert(key, index);
                candidates.push(index);
            }
            Some(&first) => {
                if items[first].event.content_hash != item.event.content_hash {
                    dispositions[index] = Disposition::Conflict;
                }
            }
        }
    }

    // 2. The ledger decides: rows this load inserted are new; others were
    // already there (same hash: duplicate, other hash: conflict). The insert
    // locks the identities, so a concurrent load of the same event waits for
    // this one and then sees it as a duplicate. The viewers and the
    // presentations the batch names are looked up right after (plain reads,
    // no locks, wasted at worst).
    candidates.sort_by(|&a, &b| items[a].event.identity().cmp(&items[b].event.identity()));
    let inserted =
        ledger_upsert(load_id, candidates.iter().map(|&i| items[i].event)).execute(tx)?;
    let candidate_events = || candidates.iter().map(|&i| items[i].event);
    let named = wanted_viewers(candidate_events(), &erasures);
    let mut lookups = select_viewers(&named);
    let viewer_lookups = lookups.len();
    lookups.extend(select_presentations(
        &candidate_events()
            .filter(|e| e.data_point().is_some())
            .map(|e| e.presentation())
            .collect(),
    ));
    let mut viewer_outcomes = run_script(tx, &lookups)?;
    let presentation_outcomes = viewer_outcomes.split_off(viewer_lookups);
    let mut viewer_keys = ViewerKeys::new();
    read_viewer_keys(viewer_outcomes, &mut viewer_keys)?;
    let mut known_presentations = PresentationKeys::new();
    read_presentation_keys(presentation_outcomes, &mut known_presentations)?;
    let mut new_items = Vec::new();
    if inserted == candidates.len() as u64 {
        // Every identity was inserted now (a duplicate left unchanged counts 0
        // affected rows): all are new, no need to read them back.
        for &index in &candidates {
            dispositions[index] = Disposition::Loaded;
            new_items.push(index);
        }
    } else {
        let stored = read_ledger(tx, candidates.iter().map(|&i| items[i].event))?;
        for &index in &candidates {
            let event = &items[index].event;
            match stored.get(&event.identity()) {
                Some((hash, owner)) if *owner == load_id && *hash == event.content_hash => {
                    dispositions[index] = Disposition::Loaded;
                    new_items.push(index);
                }
                Some((hash, _)) if *hash == event.content_hash => {
                    dispositions[index] = Disposition::Duplicate
                }
                _ => dispositions[index] = Disposition::Conflict,
            }
        }
    }

    // 3. Dimensions for the new events (one round trip); their facts go
    // with the rest below, and the known presentations' revision bump last.
    let (mut script, bump) = fact_statements(
        tx,
        items,
        &new_items,
        known_presentations,
        viewer_keys,
        &erasures,
    )?;

    // 4. Counts, rejects and the audit row.
    for (index, disposition) in dispositions.iter().enumerate() {
        match disposition {
            Disposition::Loaded => {
                counts.loaded += 1;
                match items[index].event.data_point() {
                    Some(dp) => *counts.loaded_by_data_point.entry(dp).or_default() += 1,
                    None => counts.not_analytics += 1,
                }
            }
            Disposition::Duplicate => counts.duplicates += 1,
            Disposition::Conflict => {
                counts.duplicates += 1;
                counts.conflicts += 1;
            }
        }
    }
    let conflicts: Vec<Reject> = dispositions
        .iter()
        .enumerate()
        .filter(|(_, d)| **d == Disposition::Conflict)
        .map(|(index, _)| {
            let item = &items[index];
            Reject {
                raw: item.raw.as_bytes(),
                raw_truncated: false,
                reason: format!(
                    "conflict: event (tenant {}, stream {}, version {}) was already loaded with different content; the first accepted stays",
                    item.event.tenant_id, item.event.stream_id, item.event.version
                ),
                kind: RejectKind::Conflict,
                line: item.line,
                identity: Some((item.event.stream_id.clone(), item.event.version)),
            }
        })
        .collect();
    for reject in rejects {
        match reject.kind {
            RejectKind::Malformed => counts.malformed += 1,
            RejectKind::WrongDataPoint => counts.wrong_data_point += 1,
            RejectKind::Conflict => counts.conflicts += 1,
            RejectKind::Refused => counts.refused += 1,
        }
    }
    script.extend(reject_statements(
        source,
        rejects.iter().chain(conflicts.iter()),
        &erasures,
    ));
    script.push(format!(
        "INSERT INTO load_run (load_id, source, started_at, messages, events_loaded, duplicates, conflicts, malformed, wrong_data_point, not_analytics, attempts) \
         VALUES ({load_id}, {}, FROM_UNIXTIME({}), {}, {}, {}, {}, {}, {}, {}, {attempts})",
        crate::store::str_literal(source),
        started_at_ms as f64 / 1000.0,
        items.len() + rejects.len(),
        counts.loaded,
        counts.duplicates,
        counts.conflicts,
        counts.malformed,
        counts.wrong_data_point,
        counts.not_analytics,
    ));
    script.extend(bump);
    run_script(tx, &script)?;
    Ok(BatchOutcome {
        load_id,
        dispositions,
        counts,
        erasures,
    })
}

/// Loads a batch in one transaction of its own, retrying transient failures
/// (lost connection, deadlock, lock wait timeout) with backoff until
/// `deadline`. Nothing of the batch is visible unless all of it committed.
/// `before_commit` runs with the batch written but not committed (a seam for
/// tests that make processing fail there; `None` in production).
pub fn commit_batch(
    db: &Database,
    deadline: Instant,
    source: &str,
    items: &[Item],
    rejects: &[Reject],
    before_commit: Option<&CommitHook>,
) -> Result<BatchOutcome, DbError> {
    let mut attempts = 0;
    let (outcome, _) = with_retry(db, deadline, |conn| {
        attempts += 1;
        // READ COMMITTED (every session's level, see db.rs): the merges need
        // no snapshot, and it takes fewer gap locks than REPEATABLE READ, so
        // concurrent loaders deadlock less.
        let mut tx = conn.start_transaction(mysql::TxOpts::default())?;
        let outcome = load_batch(&mut tx, source, items, rejects, attempts)?;
        if let Some(hook) = before_commit {
            hook(items);
        }
        tx.commit()?;
        Ok(outcome)
    })?;
    Ok(outcome)
}

/// Writes the dimensions of the new events that their facts need first
/// (presentations not known yet, missing viewers) in one round trip, with
/// the keys they need coming back in it, and returns the statements of
/// their facts and, to be sent last, the upsert of the known presentations
/// (see `dimensions::presentation_upserts`). `known_presentations` and
/// `viewer_keys` hold what was read before; the facts leave out what
/// `erasures` erase.
fn fact_statements(
    tx: &mut impl Queryable,
    items: &[Item],
    new_items: &[usize],
    known_presentations: PresentationKeys,
    mut viewer_keys: ViewerKeys,
    erasures: &Erasures,
) -> Result<(Vec<String>, Vec<String>), mysql::Error> {
    let events: Vec<&Event> = new_items
        .iter()
        .map(|&i| items[i].event)
        .filter(|e| e.data_point().is_some())
        .collect();
    if events.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let (presentation_keys, bump) =
        write_dimensions(tx, &events, known_presentations, &mut viewer_keys, erasures)?;

    let mut facts = FactWriter::new(&presentation_keys, &viewer_keys, erasures);
    for event in &events {
        facts.add(event);
    }
    Ok((facts.finish(), bump))
}
