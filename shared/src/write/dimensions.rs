//! Dimensions: the presentations and viewers the new events of a batch name,
//! inferred members included, and the keys their facts refer to. Viewers
//! already known are only read (no locks taken on them); the others are
//! inserted, then read.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use mysql::prelude::Queryable;

use crate::contract::truncate_chars;
use crate::contract::{DataPoint, Event, EventBody};
use crate::store::{merge, push_str_literal, run_script, Outcome, Row, Upsert};

use super::erasure::Erasures;

/// The `dim_date` key (`YYYYMMDD`) of a time in ms since the epoch, UTC.
pub(super) fn date_key(ms: i64) -> i64 {
    let days = ms.div_euclid(86_400_000);
    let (y, m, d) = crate::contract::civil_from_days(days);
    y * 10_000 + i64::from(m) * 100 + i64::from(d)
}

/// (tenant, presentation id) -> presentation key.
pub(super) type PresentationKeys = HashMap<(String, String), u64>;

/// Writes the dimensions of the new events that must exist before their
/// facts (presentations not known yet, missing viewers) in one round trip,
/// with the keys they need coming back in it: returns the presentations'
/// keys and, still to be sent, the upsert of the known presentations (their
/// revision bump), which the caller sends last, just before the commit.
/// `known_presentations` and `viewer_keys` hold what was read before (no
/// locks taken on them); the new viewers' keys are added to `viewer_keys`.
pub(super) fn write_dimensions(
    tx: &mut impl Queryable,
    events: &[&Event],
    known_presentations: PresentationKeys,
    viewer_keys: &mut ViewerKeys,
    erasures: &Erasures,
) -> Result<(PresentationKeys, Vec<String>), mysql::Error> {
    let (mut script, bump) = presentation_upserts(events, &known_presentations);
    let new_presentations: BTreeSet<(&str, &str)> = events
        .iter()
        .map(|e| e.presentation())
        .filter(|&(tenant, id)| {
            !known_presentations.contains_key(&(tenant.to_string(), id.to_string()))
        })
        .collect();
    script.extend(select_presentations(&new_presentations));
    let presentation_count = script.len();
    // Viewers not known yet become members; existing ones were only read
    // (no locks taken on them).
    let mut missing: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (tenant, viewers) in wanted_viewers(events.iter().copied(), erasures) {
        for viewer in viewers {
            if !viewer_keys.contains_key(&(tenant.to_string(), viewer.to_string())) {
                missing.entry(tenant).or_default().insert(viewer);
            }
        }
    }
    let mut upsert = Upsert::new(
        "dim_viewer",
        &["tenant_id", "viewer_id"],
        &merge::keep("viewer_id"),
    );
    for (tenant, viewers) in &missing {
        for viewer in viewers {
            let mut row = Row::default();
            row.str(tenant).str(viewer);
            upsert.add(&row);
        }
    }
    script.extend(upsert.take_statements());
    script.extend(select_viewers(&missing));
    let mut outcomes = run_script(tx, &script)?;
    let viewer_outcomes = outcomes.split_off(presentation_count);
    let mut presentation_keys = known_presentations;
    read_presentation_keys(outcomes, &mut presentation_keys)?;
    read_viewer_keys(viewer_outcomes, viewer_keys)?;
    Ok((presentation_keys, bump))
}

/// The upserts of the presentations the events touch: one row per
/// presentation event and one "touch" row per stream (inferred member,
/// revision bump, `dataThrough`). Those of presentations not in `known` come
/// first, to be sent with the dimensions (their facts need their keys);
/// those of known presentations second, to be sent last in the
/// transaction.
///
/// Why last: the upsert locks the presentation's row until the commit, and
/// every batch of a presentation takes that lock, so whatever runs after it
/// runs one batch at a time. Sent with the dimensions, it held the lock
/// across the facts (building and writing them) and the commit, and four
/// loaders on one live presentation spent their time waiting for it (issue
/// 16 item 5, BENCHMARKS.md). Sent last, it holds it for itself and the
/// commit. The revision still changes in the transaction that writes the
/// facts, which is all the cached reports and summaries rely on.
fn presentation_upserts(events: &[&Event], known: &PresentationKeys) -> (Vec<String>, Vec<String>) {
    let new_upsert = || {
        Upsert::new(
            "dim_presentation",
            &[
                "presentation_id",
                "tenant_id",
                "title",
                "title_version",
                "presenter_id",
                "presenter_name",
                "scheduled_start_ms",
                "scheduled_date_key",
                "timezone",
                "created_version",
                "started_at_ms",
                "ended_at_ms",
                "revision",
                "data_through_ms",
            ],
            &[
                merge::if_higher("title", "title_version"),
                merge::greatest("title_version"),
                merge::if_lower("presenter_id", "created_version"),
                merge::if_lower("presenter_name", "created_version"),
                merge::if_lower("scheduled_start_ms", "created_version"),
                merge::if_lower("scheduled_date_key", "created_version"),
                merge::if_lower("timezone", "created_version"),
                merge::least("created_version"),
                merge::least("started_at_ms"),
                merge::greatest("ended_at_ms"),
                "revision = revision + 1".to_string(),
                merge::greatest("data_through_ms"),
            ]
            .join(", "),
        )
    };
    let (mut first, mut last) = (new_upsert(), new_upsert());
    let is_known =
        |tenant: &str, stream: &str| known.contains_key(&(tenant.to_string(), stream.to_string()));
    // (tenant, presentation id) → the latest occurredAt of its new events
    // (ANALYTICS.md §6, kept on the row every batch touches anyway): a
    // stream id under two tenants is two presentations.
    let mut touched: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    let mut presentation_events: Vec<&Event> = Vec::new();
    for event in events {
        let latest = touched.entry(event.presentation()).or_insert(i64::MIN);
        *latest = (*latest).max(event.occurred_at);
        if event.data_point() == Some(DataPoint::Presentation) {
            presentation_events.push(event);
        }
    }
    // Touch rows first, in key order, so concurrent loads lock rows in one order.
    for ((tenant, stream), latest) in &touched {
        let mut row = Row::default();
        row.str(stream).str(tenant);
        for _ in 0..10 {
            row.null();
        }
        row.int(1).int(*latest);
        if is_known(tenant, stream) {
            &mut last
        } else {
            &mut first
        }
        .add(&row);
    }
    for event in presentation_events {
        let mut row = Row::default();
        row.str(&event.stream_id).str(&event.tenant_id);
        match &event.body {
            EventBody::PresentationCreated {
                title,
                presenter,
                scheduled_start,
                timezone,
            } => {
                row.str(title)
                    .int(event.version)
                    .str(&presenter.id)
                    .str(&presenter.name)
                    .int(*scheduled_start)
                    .int(date_key(*scheduled_start))
                    .str(truncate_chars(timezone, 64))
                    .int(event.version)
                    .null()
                    .null();
            }
            EventBody::PresentationRenamed { title } => {
                row.str(title).int(event.version);
                for _ in 0..8 {
                    row.null();
                }
            }
            EventBody::PresentationStarted => {
                for _ in 0..8 {
                    row.null();
                }
                row.int(event.occurred_at).null();
            }
            EventBody::PresentationEnded => {
                for _ in 0..9 {
                    row.null();
                }
                row.int(event.occurred_at);
            }
            _ => continue,
        }
        row.int(1).null();
        if is_known(&event.tenant_id, &event.stream_id) {
            &mut last
        } else {
            &mut first
        }
        .add(&row);
    }
    (first.take_statements(), last.take_statements())
}

/// Queries for the keys of existing presentations; see `read_presentation_keys`.
pub(super) fn select_presentations(presentations: &BTreeSet<(&str, &str)>) -> Vec<String> {
    let mut by_tenant: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (tenant, stream) in presentations {
        by_tenant.entry(tenant).or_default().push(stream);
    }
    let mut script = Vec::new();
    for (tenant, ids) in by_tenant {
        for chunk in ids.chunks(1000) {
            let mut sql = String::from(
                "SELECT tenant_id, presentation_id, presentation_key FROM dim_presentation WHERE tenant_id = ",
            );
            push_str_literal(&mut sql, tenant);
            sql.push_str(" AND presentation_id IN (");
            for (i, id) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                push_str_literal(&mut sql, id);
            }
            sql.push(')');
            script.push(sql);
        }
    }
    script
}

/// The keys `select_presentations` found, from its statements' outcomes
/// (others among them return no rows).
pub(super) fn read_presentation_keys(
    outcomes: Vec<Outcome>,
    keys: &mut PresentationKeys,
) -> Result<(), mysql::Error> {
    for row in outcomes.into_iter().flat_map(|o| o.rows) {
        let (tenant, id, key): (String, String, u64) = mysql::from_row_opt(row)?;
        keys.insert((tenant, id), key);
    }
    Ok(())
}

/// The viewer an event names, if it should be stored. The asker of an
/// anonymous question is deliberately not, nor an erased viewer's question
/// (stored anonymous).
fn viewer_of<'e>(event: &'e Event, erasures: &Erasures) -> Option<&'e str> {
    match &event.body {
        EventBody::ViewerJoined(joined) => Some(&joined.viewer_id),
        EventBody::PollVoted { viewer_id, .. }
        | EventBody::SurveySubmitted { viewer_id, .. }
        | EventBody::QuestionUpvoted { viewer_id, .. }
        | EventBody::QuestionUpvoteWithdrawn { viewer_id, .. } => Some(viewer_id),
        EventBody::QuestionAsked {
            viewer_id,
            anonymous: false,
            ..
        } if !erasures.contains(&event.tenant_id, viewer_id) => Some(viewer_id),
        _ => None,
    }
}

/// (tenant, viewer id) -> viewer key.
pub(super) type ViewerKeys = HashMap<(String, String), u64>;

/// The viewers the events name, by tenant.
pub(super) fn wanted_viewers<'e>(
    events: impl Iterator<Item = &'e Event>,
    erasures: &Erasures,
) -> BTreeMap<&'e str, BTreeSet<&'e str>> {
    let mut wanted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for event in events.filter(|e| e.data_point().is_some()) {
        if let Some(viewer) = viewer_of(event, erasures) {
            wanted.entry(&event.tenant_id).or_default().insert(viewer);
        }
    }
    wanted
}

/// Queries for the keys of existing viewers; see `read_viewer_keys`.
pub(super) fn select_viewers(wanted: &BTreeMap<&str, BTreeSet<&str>>) -> Vec<String> {
    let mut script = Vec::new();
    for (tenant, viewers) in wanted {
        let viewers: Vec<&str> = viewers.iter().copied().collect();
        for chunk in viewers.chunks(2000) {
            let mut sql = String::from(
                "SELECT tenant_id, viewer_id, viewer_key FROM dim_viewer WHERE tenant_id = ",
            );
            push_str_literal(&mut sql, tenant);
            sql.push_str(" AND viewer_id IN (");
            for (i, viewer) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                push_str_literal(&mut sql, viewer);
            }
            sql.push(')');
            script.push(sql);
        }
    }
    script
}

/// The keys `select_viewers` found, from its statements' outcomes (others
/// among them return no rows).
pub(super) fn read_viewer_keys(
    outcomes: Vec<Outcome>,
    keys: &mut ViewerKeys,
) -> Result<(), mysql::Error> {
    for row in outcomes.into_iter().flat_map(|o| o.rows) {
        let (tenant, viewer, key): (String, String, u64) = mysql::from_row_opt(row)?;
        keys.insert((tenant, viewer), key);
    }
    Ok(())
}
