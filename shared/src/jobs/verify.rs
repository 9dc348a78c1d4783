//! The release check: a diagonal slice of presentations (across tenants,
//! sizes, data points and ages) whose warehouse reports are compared field by
//! field with the old computation, replaying their events from the export
//! and forgetting the viewers the warehouse erased.

use std::collections::{BTreeMap, BTreeSet};

use mysql::prelude::Queryable;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use crate::contract::differences;
use crate::jobs::JobError;
use crate::read::Replay;
use crate::store::{Database, DbError};

/// A presentation as the slice chooses it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    tenant_id: String,
    presentation_id: String,
    events: u64,
    data_points: BTreeSet<String>,
    /// `scheduledStart` or `startedAt`, for age.
    when_ms: Option<i64>,
}

/// Chooses up to `n` presentations deterministically for `seed`: the
/// smallest, the median and the largest; then one per tenant, per data point
/// present and the oldest and newest; then seeded random picks.
pub fn choose_slice(
    conn: &mut impl Queryable,
    n: usize,
    seed: u64,
) -> Result<Vec<(String, String)>, JobError> {
    let rows: Vec<(String, String, String, u64, Option<i64>)> = conn
        .query(
            "SELECT p.tenant_id, p.presentation_id, l.data_point, COUNT(*), COALESCE(p.scheduled_start_ms, p.started_at_ms) \
             FROM event_ledger l JOIN dim_presentation p ON p.tenant_id = l.tenant_id AND p.presentation_id = l.stream_id \
             WHERE l.data_point <> 'none' GROUP BY p.tenant_id, p.presentation_id, l.data_point, p.scheduled_start_ms, p.started_at_ms",
        )
        .map_err(|e| DbError::caused("cannot list presentations", e))?;
    let mut by_id: BTreeMap<(String, String), Candidate> = BTreeMap::new();
    for (tenant_id, presentation_id, data_point, events, when_ms) in rows {
        let candidate = by_id
            .entry((tenant_id.clone(), presentation_id.clone()))
            .or_insert_with(|| Candidate {
                tenant_id,
                presentation_id,
                events: 0,
                data_points: BTreeSet::new(),
                when_ms,
            });
        candidate.events += events;
        candidate.data_points.insert(data_point);
    }
    let mut all: Vec<Candidate> = by_id.into_values().collect();
    all.sort_by(|a, b| (a.events, &a.presentation_id).cmp(&(b.events, &b.presentation_id)));
    let mut chosen: Vec<usize> = Vec::new();
    let mut take = |index: usize| {
        if chosen.len() < n && !chosen.contains(&index) {
            chosen.push(index);
        }
    };
    if !all.is_empty() {
        take(0);
        take(all.len() / 2);
        take(all.len() - 1);
    }
    let tenants: BTreeSet<&String> = all.iter().map(|c| &c.tenant_id).collect();
    for tenant in tenants {
        if let Some(index) = all.iter().rposition(|c| &c.tenant_id == tenant) {
            take(index);
        }
    }
    let data_points: BTreeSet<&String> = all.iter().flat_map(|c| c.data_points.iter()).collect();
    for dp in data_points {
        if let Some(index) = all.iter().rposition(|c| c.data_points.contains(dp)) {
            take(index);
        }
    }
    let mut by_age: Vec<usize> = (0..all.len())
        .filter(|&i| all[i].when_ms.is_some())
        .collect();
    by_age.sort_by_key(|&i| (all[i].when_ms, all[i].presentation_id.clone()));
    if let (Some(&oldest), Some(&newest)) = (by_age.first(), by_age.last()) {
        take(oldest);
        take(newest);
    }
    let mut rest: Vec<usize> = (0..all.len()).collect();
    rest.shuffle(&mut StdRng::seed_from_u64(seed));
    for index in rest {
        take(index);
    }
    Ok(chosen
        .into_iter()
        .map(|i| (all[i].tenant_id.clone(), all[i].presentation_id.clone()))
        .collect())
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub checked: Vec<String>,
    /// presentation id → the differing fields.
    pub differences: BTreeMap<String, Vec<String>>,
}

impl VerifyReport {
    pub fn passed(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Replays the slice's presentations from the export and compares reports.
pub async fn verify(
    db: &Database,
    s3: Option<&aws_sdk_s3::Client>,
    source: &str,
    n: usize,
    seed: u64,
) -> Result<VerifyReport, JobError> {
    let slice = tokio::task::block_in_place(|| choose_slice(&mut db.conn()?, n, seed))?;
    let wanted: BTreeSet<&str> = slice.iter().map(|(_, p)| p.as_str()).collect();
    let mut replay = Replay::new();
    crate::export::each_export_event(source, s3, |event| {
        if wanted.contains(event.stream_id.as_str()) {
            replay.add(&event);
        }
    })
    .await?;
    // Erased viewers (ANALYTICS.md §8) are erased in the replay too.
    let tenants: BTreeSet<String> = slice.iter().map(|(t, _)| t.clone()).collect();
    let erasures = tokio::task::block_in_place(|| {
        crate::write::erasures_of_tenants(&mut db.conn()?, &tenants)
            .map_err(|e| DbError::caused("cannot read the erasures", e))
    })?;
    for (tenant, viewer) in &erasures {
        replay.forget(tenant, viewer);
    }
    let mut report = VerifyReport {
        checked: Vec::new(),
        differences: BTreeMap::new(),
    };
    for (tenant, presentation) in &slice {
        report.checked.push(presentation.clone());
        let warehouse = tokio::task::block_in_place(|| {
            crate::read::presentation_report(&mut db.conn()?, tenant, presentation)
                .map_err(|e| DbError::caused("", e))
        })?;
        let warehouse = serde_json::to_value(warehouse).expect("reports serialise");
        let old =
            serde_json::to_value(replay.report(tenant, presentation)).expect("reports serialise");
        let found = differences(&warehouse, &old, "warehouse", "replay");
        if !found.is_empty() {
            report.differences.insert(presentation.clone(), found);
        }
    }
    Ok(report)
}
