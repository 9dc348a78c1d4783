//! Loading: the one piece of code that turns parsed events into warehouse
//! rows. The SQS loaders, the backfill and the reconciliation's repair all
//! call `load_batch`.
//!
//! A batch is written in one transaction with a handful of multi-row
//! statements: the ledger first (it decides which events are new, duplicate or
//! conflicting), then the dimensions (inferred members included), then the
//! facts of the new events only. Every fact merge is commutative and
//! idempotent (see `migrations/0001_warehouse.sql`), so batches may commit in
//! any order. Statements go in a few round trips: the ledger (prepared, see
//! `sql::PreparedUpsert`), the lookup of known viewers, the dimensions with
//! their keys, then the facts, rejects and audit row (see `sql::run_script`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use std::time::Instant;

use mysql::prelude::Queryable;
use sha2::{Digest, Sha256};

use crate::contract::{
    normalize_country, normalize_department, normalize_device, normalize_optional_text,
};
use crate::contract::{DataPoint, Event, EventBody};
use crate::store::{merge, push_str_literal, run_script, Outcome, PreparedUpsert, Row, Upsert};
use crate::store::{with_retry, Database, DbError};

/// Raw bodies kept in the error table are cut here; the full line stays in its
/// export (its line number is recorded) and SQS bodies are at most 256 KiB.
pub const MAX_RAW_BODY_BYTES: usize = 1 << 20;

/// One parsed event and where it came from.
pub struct Item<'a> {
    pub event: &'a Event,
    /// The text as received, kept for the error table if it conflicts.
    pub raw: &'a str,
    /// 1-based line of an export, 0 for a queue message.
    pub line: u64,
}

/// Why an input could not be loaded; permanent, never worth a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    Malformed,
    WrongDataPoint,
    Conflict,
}

impl RejectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectKind::Malformed => "malformed",
            RejectKind::WrongDataPoint => "wrong_data_point",
            RejectKind::Conflict => "conflict",
        }
    }
}

/// An input recorded in the error table instead of being loaded.
pub struct Reject<'a> {
    pub raw: &'a [u8],
    pub reason: String,
    pub kind: RejectKind,
    pub line: u64,
    pub identity: Option<(String, i64)>,
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

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchCounts {
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    pub load_id: u64,
    /// One per item, in order.
    pub dispositions: Vec<Disposition>,
    pub counts: BatchCounts,
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
    let mut counts = BatchCounts::default();

    // 1. Within the batch the first of an identity wins.
    let mut first_of: HashMap<(&str, i64), usize> = HashMap::new();
    let mut candidates = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let key = (item.event.stream_id.as_str(), item.event.version);
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
    // this one and then sees it as a duplicate. The viewers the batch names
    // are looked up right after (a plain read, wasted at worst).
    candidates.sort_by(|&a, &b| {
        let (ea, eb) = (&items[a].event, &items[b].event);
        (&ea.stream_id, ea.version).cmp(&(&eb.stream_id, eb.version))
    });
    let inserted = ledger_upsert(load_id, items, &candidates).execute(tx)?;
    let named_viewers = wanted_viewers(candidates.iter().map(|&i| items[i].event));
    let viewer_outcomes = run_script(tx, &select_viewers(&named_viewers))?;
    let mut viewer_keys = ViewerKeys::new();
    read_viewer_keys(viewer_outcomes, &mut viewer_keys)?;
    let mut new_items = Vec::new();
    if inserted == candidates.len() as u64 {
        // Every identity was inserted now (a duplicate left unchanged counts 0
        // affected rows): all are new, no need to read them back.
        for &index in &candidates {
            dispositions[index] = Disposition::Loaded;
            new_items.push(index);
        }
    } else {
        let stored = read_ledger(tx, items, &candidates)?;
        for &index in &candidates {
            let event = &items[index].event;
            match stored.get(&(event.stream_id.clone(), event.version)) {
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
    // with the rest below.
    let mut script = fact_statements(tx, items, &new_items, viewer_keys)?;

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
                reason: format!(
                    "conflict: event ({}, {}) was already loaded with different content; the first accepted stays",
                    item.event.stream_id, item.event.version
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
        }
    }
    script.extend(reject_statements(
        source,
        rejects.iter().chain(conflicts.iter()),
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
    run_script(tx, &script)?;
    Ok(BatchOutcome {
        load_id,
        dispositions,
        counts,
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
    before_commit: Option<&(dyn Fn() + Send + Sync)>,
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
            hook();
        }
        tx.commit()?;
        Ok(outcome)
    })?;
    Ok(outcome)
}

/// The ledger rows' upsert; its affected rows count the new ones.
fn ledger_upsert(load_id: u64, items: &[Item], indexes: &[usize]) -> PreparedUpsert {
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
    for &index in indexes {
        let event = &items[index].event;
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

type LedgerEntries = HashMap<(String, i64), ([u8; 32], u64)>;

/// The ledger rows of the given identities, one query per stream (a batch
/// usually holds few streams), all in one round trip: `stream_id = ? AND
/// version IN (…)` uses the primary key on both servers.
fn read_ledger(
    tx: &mut impl Queryable,
    items: &[Item],
    indexes: &[usize],
) -> Result<LedgerEntries, mysql::Error> {
    let mut by_stream: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for &index in indexes {
        let event = &items[index].event;
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
    let mut entries = HashMap::with_capacity(indexes.len());
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

fn truncate_chars(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// Records rejected inputs; the same body from the same source and line is
/// one row whose `seen_count` grows with each delivery.
pub fn record_rejects<'r>(
    tx: &mut impl Queryable,
    source: &str,
    rejects: impl Iterator<Item = &'r Reject<'r>>,
) -> Result<(), mysql::Error> {
    run_script(tx, &reject_statements(source, rejects)).map(drop)
}

fn reject_statements<'r>(
    source: &str,
    rejects: impl Iterator<Item = &'r Reject<'r>>,
) -> Vec<String> {
    let mut upsert = Upsert::new(
        "error_event",
        &[
            "source",
            "line_number",
            "body_sha256",
            "raw_body",
            "body_truncated",
            "reason",
            "kind",
            "stream_id",
            "version",
        ],
        "seen_count = seen_count + 1, last_seen = CURRENT_TIMESTAMP(3), reason = VALUES(reason), kind = VALUES(kind)",
    );
    for reject in rejects {
        let kept = &reject.raw[..reject.raw.len().min(MAX_RAW_BODY_BYTES)];
        let mut row = Row::default();
        row.str(truncate_chars(source, 128))
            .uint(reject.line)
            .bytes(&Sha256::digest(reject.raw))
            .bytes(kept)
            .bool(kept.len() < reject.raw.len())
            .str(&reject.reason)
            .str(reject.kind.as_str());
        match &reject.identity {
            Some((stream, version)) if stream.chars().count() <= 64 => {
                row.str(stream).int(*version);
            }
            _ => {
                row.null().null();
            }
        }
        upsert.add(&row);
    }
    upsert.take_statements()
}

// ---------------------------------------------------------------------------
// Dimensions and facts.

fn date_key(ms: i64) -> i64 {
    let days = ms.div_euclid(86_400_000);
    let (y, m, d) = crate::contract::civil_from_days(days);
    y * 10_000 + i64::from(m) * 100 + i64::from(d)
}

/// Writes the dimensions of the new events (presentations, missing viewers)
/// in one round trip, with the keys they need coming back in it, and returns
/// the statements of their facts, still to be sent. `viewer_keys` holds the
/// viewers already known.
fn fact_statements(
    tx: &mut impl Queryable,
    items: &[Item],
    new_items: &[usize],
    mut viewer_keys: ViewerKeys,
) -> Result<Vec<String>, mysql::Error> {
    let events: Vec<&Event> = new_items
        .iter()
        .map(|&i| items[i].event)
        .filter(|e| e.data_point().is_some())
        .collect();
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut script = presentation_statements(&events);
    let presentation_count = script.len();
    // Viewers not known yet become members; existing ones were only read
    // (no locks taken on them).
    let mut missing: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (tenant, viewers) in wanted_viewers(events.iter().copied()) {
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
    let mut presentation_keys = HashMap::new();
    for row in outcomes.into_iter().flat_map(|o| o.rows) {
        let (id, key): (String, u64) = mysql::from_row_opt(row)?;
        presentation_keys.insert(id, key);
    }
    read_viewer_keys(viewer_outcomes, &mut viewer_keys)?;

    let mut facts = FactWriter::new(&presentation_keys, &viewer_keys);
    for event in &events {
        facts.add(event);
    }
    Ok(facts.finish())
}

/// Upserts one row per presentation event and one "touch" row per other
/// stream (inferred member, revision bump), then selects their keys.
fn presentation_statements(events: &[&Event]) -> Vec<String> {
    let mut upsert = Upsert::new(
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
        ]
        .join(", "),
    );
    let mut touched: BTreeMap<&str, &str> = BTreeMap::new();
    let mut presentation_events: Vec<&Event> = Vec::new();
    for event in events {
        touched.entry(&event.stream_id).or_insert(&event.tenant_id);
        if event.data_point() == Some(DataPoint::Presentation) {
            presentation_events.push(event);
        }
    }
    // Touch rows first, in key order, so concurrent loads lock rows in one order.
    for (stream, tenant) in &touched {
        let mut row = Row::default();
        row.str(stream).str(tenant);
        for _ in 0..10 {
            row.null();
        }
        row.int(1);
        upsert.add(&row);
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
        row.int(1);
        upsert.add(&row);
    }
    let mut script = upsert.take_statements();
    let ids: Vec<&str> = touched.keys().copied().collect();
    for chunk in ids.chunks(1000) {
        let mut sql = String::from(
            "SELECT presentation_id, presentation_key FROM dim_presentation WHERE presentation_id IN (",
        );
        for (i, id) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            push_str_literal(&mut sql, id);
        }
        sql.push(')');
        script.push(sql);
    }
    script
}

/// The viewer an event names, if it should be stored. The asker of an
/// anonymous question is deliberately not.
fn viewer_of(event: &Event) -> Option<&str> {
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
        } => Some(viewer_id),
        _ => None,
    }
}

type ViewerKeys = HashMap<(String, String), u64>;

/// The viewers the events name, by tenant.
fn wanted_viewers<'e>(
    events: impl Iterator<Item = &'e Event>,
) -> BTreeMap<&'e str, BTreeSet<&'e str>> {
    let mut wanted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for event in events.filter(|e| e.data_point().is_some()) {
        if let Some(viewer) = viewer_of(event) {
            wanted.entry(&event.tenant_id).or_default().insert(viewer);
        }
    }
    wanted
}

/// Queries for the keys of existing viewers; see `read_viewer_keys`.
fn select_viewers(wanted: &BTreeMap<&str, BTreeSet<&str>>) -> Vec<String> {
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
fn read_viewer_keys(outcomes: Vec<Outcome>, keys: &mut ViewerKeys) -> Result<(), mysql::Error> {
    for row in outcomes.into_iter().flat_map(|o| o.rows) {
        let (tenant, viewer, key): (String, String, u64) = mysql::from_row_opt(row)?;
        keys.insert((tenant, viewer), key);
    }
    Ok(())
}

/// Accumulates the fact rows of a batch, one multi-row statement per table.
struct FactWriter<'k> {
    presentations: &'k HashMap<String, u64>,
    viewers: &'k ViewerKeys,
    sessions: Upsert,
    /// Heartbeats and leaves collapse to the latest time per session before
    /// they are written: the end of a session is a GREATEST.
    session_ends: BTreeMap<(u64, String), i64>,
    presentation_viewers: Upsert,
    polls: Upsert,
    poll_options: Upsert,
    poll_votes: Upsert,
    poll_vote_options: Upsert,
    surveys: Upsert,
    survey_questions: Upsert,
    survey_question_options: Upsert,
    survey_responses: Upsert,
    survey_answers: Upsert,
    survey_answer_options: Upsert,
    questions: Upsert,
    upvotes: Upsert,
}

const SESSION_COLUMNS: &[&str] = &[
    "presentation_key",
    "session_id",
    "viewer_key",
    "join_version",
    "device",
    "country",
    "department",
    "start_ms",
    "start_date_key",
    "end_ms",
];

const QUESTION_COLUMNS: &[&str] = &[
    "presentation_key",
    "question_id",
    "asked_version",
    "asked_at_ms",
    "text",
    "anonymous",
    "asker_viewer_key",
    "status",
    "status_version",
    "first_answered_at_ms",
    "answered_by_id",
    "answered_by_name",
    "answer_method",
];

impl<'k> FactWriter<'k> {
    fn new(presentations: &'k HashMap<String, u64>, viewers: &'k ViewerKeys) -> FactWriter<'k> {
        let keep_first = merge::keep("presentation_key");
        FactWriter {
            presentations,
            viewers,
            sessions: Upsert::new(
                "fact_session",
                SESSION_COLUMNS,
                &[
                    merge::if_lower("viewer_key", "join_version"),
                    merge::if_lower("device", "join_version"),
                    merge::if_lower("country", "join_version"),
                    merge::if_lower("department", "join_version"),
                    merge::least("join_version"),
                    merge::if_lower("start_date_key", "start_ms"),
                    merge::least("start_ms"),
                    merge::greatest("end_ms"),
                ]
                .join(", "),
            ),
            session_ends: BTreeMap::new(),
            presentation_viewers: Upsert::new(
                "fact_presentation_viewer",
                &[
                    "presentation_key",
                    "viewer_key",
                    "latest_join_version",
                    "name",
                    "email",
                    "department",
                    "country",
                    "device",
                ],
                &[
                    merge::if_higher("name", "latest_join_version"),
                    merge::if_higher("email", "latest_join_version"),
                    merge::if_higher("department", "latest_join_version"),
                    merge::if_higher("country", "latest_join_version"),
                    merge::if_higher("device", "latest_join_version"),
                    merge::greatest("latest_join_version"),
                ]
                .join(", "),
            ),
            polls: Upsert::new(
                "dim_poll",
                &[
                    "presentation_key",
                    "poll_id",
                    "created_version",
                    "created_at_ms",
                    "question",
                    "multiple_choice",
                    "closed_at_ms",
                ],
                &[
                    merge::if_lower("created_at_ms", "created_version"),
                    merge::if_lower("question", "created_version"),
                    merge::if_lower("multiple_choice", "created_version"),
                    merge::least("created_version"),
                    merge::least("closed_at_ms"),
                ]
                .join(", "),
            ),
            poll_options: Upsert::new(
                "dim_poll_option",
                &[
                    "presentation_key",
                    "poll_id",
                    "created_version",
                    "position",
                    "option_id",
                    "text",
                ],
                &keep_first,
            ),
            poll_votes: Upsert::new(
                "fact_poll_vote",
                &[
                    "presentation_key",
                    "version",
                    "poll_id",
                    "viewer_key",
                    "occurred_at_ms",
                ],
                &keep_first,
            ),
            poll_vote_options: Upsert::new(
                "fact_poll_vote_option",
                &["presentation_key", "version", "position", "option_id"],
                &keep_first,
            ),
            surveys: Upsert::new(
                "dim_survey",
                &[
                    "presentation_key",
                    "survey_id",
                    "created_version",
                    "created_at_ms",
                    "title",
                ],
                &[
                    merge::if_lower("created_at_ms", "created_version"),
                    merge::if_lower("title", "created_version"),
                    merge::least("created_version"),
                ]
                .join(", "),
            ),
            survey_questions: Upsert::new(
                "dim_survey_question",
                &[
                    "presentation_key",
                    "survey_id",
                    "created_version",
                    "position",
                    "question_id",
                    "kind",
                    "text",
                    "scale",
                ],
                &keep_first,
            ),
            survey_question_options: Upsert::new(
                "dim_survey_question_option",
                &[
                    "presentation_key",
                    "survey_id",
                    "created_version",
                    "question_position",
                    "position",
                    "option_id",
                    "text",
                ],
                &keep_first,
            ),
            survey_responses: Upsert::new(
                "fact_survey_response",
                &[
                    "presentation_key",
                    "version",
                    "survey_id",
                    "viewer_key",
                    "occurred_at_ms",
                ],
                &keep_first,
            ),
            survey_answers: Upsert::new(
                "fact_survey_answer",
                &[
                    "presentation_key",
                    "version",
                    "position",
                    "question_id",
                    "rating",
                    "text_answer",
                ],
                &keep_first,
            ),
            survey_answer_options: Upsert::new(
                "fact_survey_answer_option",
                &[
                    "presentation_key",
                    "version",
                    "answer_position",
                    "position",
                    "option_id",
                ],
                &keep_first,
            ),
            questions: Upsert::new(
                "dim_question",
                QUESTION_COLUMNS,
                &[
                    merge::if_lower("asked_at_ms", "asked_version"),
                    merge::if_lower("text", "asked_version"),
                    merge::if_lower("anonymous", "asked_version"),
                    merge::if_lower("asker_viewer_key", "asked_version"),
                    merge::least("asked_version"),
                    merge::if_higher("status", "status_version"),
                    merge::if_higher("answered_by_id", "status_version"),
                    merge::if_higher("answered_by_name", "status_version"),
                    merge::if_higher("answer_method", "status_version"),
                    merge::greatest("status_version"),
                    merge::least("first_answered_at_ms"),
                ]
                .join(", "),
            ),
            upvotes: Upsert::new(
                "fact_question_upvote",
                &[
                    "presentation_key",
                    "question_id",
                    "viewer_key",
                    "version",
                    "upvoted",
                ],
                &[
                    merge::if_higher("upvoted", "version"),
                    merge::greatest("version"),
                ]
                .join(", "),
            ),
        }
    }

    fn viewer(&self, event: &Event, viewer_id: &str) -> u64 {
        // Resolved for every viewer the batch names (see `resolve_viewers`).
        self.viewers[&(event.tenant_id.clone(), viewer_id.to_string())]
    }

    fn add(&mut self, event: &Event) {
        let presentation = self.presentations[&event.stream_id];
        let version = event.version;
        match &event.body {
            EventBody::ViewerJoined(joined) => {
                let viewer = self.viewer(event, &joined.viewer_id);
                let device = normalize_device(joined.device.as_deref());
                let country = normalize_country(joined.country.as_deref());
                let department = normalize_department(joined.department.as_deref());
                let mut row = Row::default();
                row.uint(presentation)
                    .str(&joined.session_id)
                    .uint(viewer)
                    .int(version)
                    .str(&device)
                    .str(&country)
                    .opt_str(department.as_deref())
                    .int(event.occurred_at)
                    .int(date_key(event.occurred_at))
                    .null();
                self.sessions.add(&row);
                let mut row = Row::default();
                row.uint(presentation)
                    .uint(viewer)
                    .int(version)
                    .opt_str(normalize_optional_text(joined.name.as_deref()).as_deref())
                    .opt_str(normalize_optional_text(joined.email.as_deref()).as_deref())
                    .opt_str(department.as_deref())
                    .str(&country)
                    .str(&device);
                self.presentation_viewers.add(&row);
            }
            EventBody::ViewerHeartbeat { session_id, .. }
            | EventBody::ViewerLeft { session_id, .. } => {
                let end = self
                    .session_ends
                    .entry((presentation, session_id.clone()))
                    .or_insert(event.occurred_at);
                *end = (*end).max(event.occurred_at);
            }
            EventBody::PollCreated {
                poll_id,
                question,
                options,
                multiple_choice,
            } => {
                let mut row = Row::default();
                row.uint(presentation)
                    .str(poll_id)
                    .int(version)
                    .int(event.occurred_at)
                    .str(question)
                    .bool(*multiple_choice)
                    .null();
                self.polls.add(&row);
                for (position, option) in options.iter().enumerate() {
                    let mut row = Row::default();
                    row.uint(presentation)
                        .str(poll_id)
                        .int(version)
                        .int(position as i64)
                        .str(&option.id)
                        .str(&option.text);
                    self.poll_options.add(&row);
                }
            }
            EventBody::PollClosed { poll_id } => {
                let mut row = Row::default();
                row.uint(presentation).str(poll_id);
                row.null().null().null().null().int(event.occurred_at);
                self.polls.add(&row);
            }
            EventBody::PollVoted {
                poll_id,
                viewer_id,
                option_ids,
            } => {
                let viewer = self.viewer(event, viewer_id);
                let mut row = Row::default();
                row.uint(presentation)
                    .int(version)
                    .str(poll_id)
                    .uint(viewer)
                    .int(event.occurred_at);
                self.poll_votes.add(&row);
                // A poll row, even inferred, so the vote's poll is known.
                let mut row = Row::default();
                row.uint(presentation).str(poll_id);
                row.null().null().null().null().null();
                self.polls.add(&row);
                for (position, option_id) in option_ids.iter().enumerate() {
                    let mut row = Row::default();
                    row.uint(presentation)
                        .int(version)
                        .int(position as i64)
                        .str(option_id);
                    self.poll_vote_options.add(&row);
                }
            }
            EventBody::SurveyCreated {
                survey_id,
                title,
                questions,
            } => {
                let mut row = Row::default();
                row.uint(presentation)
                    .str(survey_id)
                    .int(version)
                    .int(event.occurred_at)
                    .str(title);
                self.surveys.add(&row);
                for (position, question) in questions.iter().enumerate() {
                    let mut row = Row::default();
                    row.uint(presentation)
                        .str(survey_id)
                        .int(version)
                        .int(position as i64)
                        .str(&question.id)
                        .str(question.kind.as_str())
                        .str(&question.text)
                        .int(question.scale);
                    self.survey_questions.add(&row);
                    for (option_position, option) in question.options.iter().enumerate() {
                        let mut row = Row::default();
                        row.uint(presentation)
                            .str(survey_id)
                            .int(version)
                            .int(position as i64)
                            .int(option_position as i64)
                            .str(&option.id)
                            .str(&option.text);
                        self.survey_question_options.add(&row);
                    }
                }
            }
            EventBody::SurveySubmitted {
                survey_id,
                viewer_id,
                answers,
            } => {
                let viewer = self.viewer(event, viewer_id);
                let mut row = Row::default();
                row.uint(presentation)
                    .int(version)
                    .str(survey_id)
                    .uint(viewer)
                    .int(event.occurred_at);
                self.survey_responses.add(&row);
                let mut row = Row::default();
                row.uint(presentation).str(survey_id).null().null().null();
                self.surveys.add(&row);
                for (position, answer) in answers.iter().enumerate() {
                    let mut row = Row::default();
                    row.uint(presentation)
                        .int(version)
                        .int(position as i64)
                        .str(&answer.question_id)
                        .opt_int(answer.rating)
                        .opt_str(answer.text.as_deref());
                    self.survey_answers.add(&row);
                    for (option_position, option_id) in
                        answer.option_ids.iter().flatten().enumerate()
                    {
                        let mut row = Row::default();
                        row.uint(presentation)
                            .int(version)
                            .int(position as i64)
                            .int(option_position as i64)
                            .str(option_id);
                        self.survey_answer_options.add(&row);
                    }
                }
            }
            EventBody::QuestionAsked {
                question_id,
                viewer_id,
                text,
                anonymous,
            } => {
                let asker = (!anonymous).then(|| self.viewer(event, viewer_id));
                let mut row = Row::default();
                row.uint(presentation)
                    .str(question_id)
                    .int(version)
                    .int(event.occurred_at)
                    .str(text)
                    .bool(*anonymous)
                    .opt_uint(asker);
                row.null().null().null().null().null().null();
                self.questions.add(&row);
            }
            EventBody::QuestionUpvoted {
                question_id,
                viewer_id,
            }
            | EventBody::QuestionUpvoteWithdrawn {
                question_id,
                viewer_id,
            } => {
                let viewer = self.viewer(event, viewer_id);
                let upvoted = matches!(event.body, EventBody::QuestionUpvoted { .. });
                let mut row = Row::default();
                row.uint(presentation)
                    .str(question_id)
                    .uint(viewer)
                    .int(version)
                    .bool(upvoted);
                self.upvotes.add(&row);
                self.push_inferred_question(presentation, question_id);
            }
            EventBody::QuestionAnswered {
                question_id,
                answered_by,
                method,
            } => {
                let mut row = Row::default();
                row.uint(presentation).str(question_id);
                row.null().null().null().null().null();
                row.str("answered")
                    .int(version)
                    .int(event.occurred_at)
                    .str(truncate_chars(&answered_by.id, 64))
                    .str(&answered_by.name)
                    .str(truncate_chars(method, 16));
                self.questions.add(&row);
            }
            EventBody::QuestionDismissed { question_id } => {
                let mut row = Row::default();
                row.uint(presentation).str(question_id);
                row.null().null().null().null().null();
                row.str("dismissed")
                    .int(version)
                    .null()
                    .null()
                    .null()
                    .null();
                self.questions.add(&row);
            }
            EventBody::PresentationCreated { .. }
            | EventBody::PresentationRenamed { .. }
            | EventBody::PresentationStarted
            | EventBody::PresentationEnded
            | EventBody::NotAnalytics => {}
        }
    }

    fn push_inferred_question(&mut self, presentation: u64, question_id: &str) {
        let mut row = Row::default();
        row.uint(presentation).str(question_id);
        for _ in 2..QUESTION_COLUMNS.len() {
            row.null();
        }
        self.questions.add(&row);
    }

    /// The statements of every row added.
    fn finish(mut self) -> Vec<String> {
        // Most attendance events only move a session's end: those rows go in
        // a statement of their own, three columns wide with a one-column
        // merge, which costs the server much less than the full session row.
        let mut session_end_rows = Upsert::new(
            "fact_session",
            &["presentation_key", "session_id", "end_ms"],
            &merge::greatest("end_ms"),
        );
        for ((presentation, session_id), end) in &self.session_ends {
            let mut row = Row::default();
            row.uint(*presentation).str(session_id).int(*end);
            session_end_rows.add(&row);
        }
        let mut statements = Vec::new();
        for upsert in [
            &mut self.sessions,
            &mut session_end_rows,
            &mut self.presentation_viewers,
            &mut self.polls,
            &mut self.poll_options,
            &mut self.poll_votes,
            &mut self.poll_vote_options,
            &mut self.surveys,
            &mut self.survey_questions,
            &mut self.survey_question_options,
            &mut self.survey_responses,
            &mut self.survey_answers,
            &mut self.survey_answer_options,
            &mut self.questions,
            &mut self.upvotes,
        ] {
            statements.extend(upsert.take_statements());
        }
        statements
    }
}
