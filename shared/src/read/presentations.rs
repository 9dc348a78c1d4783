//! The presentation list of a tenant (ANALYTICS.md §3) and the summaries it
//! reads.
//!
//! The list reads `agg_presentation`, one summary row per presentation with
//! the revision it was computed from, and filters, sorts and pages in SQL
//! (`WHERE`, `ORDER BY`, `LIMIT … OFFSET`, with `COUNT(*) OVER ()` for the
//! total). It writes nothing: a list is answered from the summaries as they
//! are, and names the presentations of its page whose summary is stale
//! (`staleFigures`: computed before the presentation's latest load, or not
//! yet), which show the figures of an earlier load (zeros before the first).
//!
//! What keeps the summaries fresh (recomputed by the report's fold, see
//! [`refresh_summaries`]):
//! - every SQS loader, right after a batch commits, refreshes the
//!   presentations the batch touched ([`refresh_summaries_of`]), so a
//!   summary lags its load by the refresh's own time; a redelivered batch
//!   refreshes again (a refresh that failed, or a loader that died between
//!   its commit and its refresh, leaves the summary stale until then);
//! - a direct backfill, after each invocation, and a reconciliation, once
//!   done, refresh every stale summary ([`refresh_stale_summaries`], until
//!   their invocation's stop time; `jobs::summaries`), so a summary left
//!   stale by a failure is fresh again by the next night;
//! - `warehouse refresh-summaries` does the same by hand (after a release
//!   that changes `FORMAT_VERSION`, every summary is stale until then).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use mysql::prelude::Queryable;

use super::error::{bad_request, AnalyticsError};
use super::params::{check_limit, PresentationQuery, PresentationSort};
use super::report::for_each_attendance;
use super::sql::{
    bytes, contains_ci, exact_eq, fetch, newer_wins, take, take_opt_string, take_string, Scope,
    FORMAT_VERSION,
};
use crate::contract::{
    floor_seconds, format_time, format_time_opt, PresentationList, PresentationRow,
};
use crate::store::{Row as SqlRow, Upsert};

/// Stale summaries recomputed per statement.
const REFRESH_CHUNK: usize = 200;

/// A summary that does not describe its presentation's current state: none
/// yet, computed from an older revision, or by another [`FORMAT_VERSION`].
fn stale_condition() -> String {
    format!(
        "(a.presentation_key IS NULL OR a.source_revision < p.revision \
           OR a.format_version <> {FORMAT_VERSION})"
    )
}

/// One page of a tenant's presentations (ANALYTICS.md §3), filtered, sorted
/// and paged in SQL from the summaries as they are: it writes nothing (see
/// the module's documentation for what refreshes them), and lists the rows
/// of the page whose summary is stale in `stale_figures`.
pub fn presentation_list(
    conn: &mut impl Queryable,
    tenant_id: &str,
    query: &PresentationQuery,
) -> Result<PresentationList, AnalyticsError> {
    check_limit(query.limit)?;
    if let (Some(from), Some(to)) = (query.from, query.to) {
        if from > to {
            return Err(bad_request(format!(
                "from ({}) is after to ({}): no presentation can be scheduled in between",
                format_time(from),
                format_time(to)
            )));
        }
    }
    let mut filters = vec![exact_eq("p.tenant_id", tenant_id)];
    if let Some(search) = query.search.as_deref().filter(|s| !s.is_empty()) {
        filters.push(contains_ci("p.title", search));
    }
    if let Some(from) = query.from {
        filters.push(format!("p.scheduled_start_ms >= {from}"));
    }
    if let Some(to) = query.to {
        filters.push(format!("p.scheduled_start_ms <= {to}"));
    }
    // scheduledStart comes from PresentationCreated only.
    if query.from.is_some() || query.to.is_some() {
        filters.push("p.created_version IS NOT NULL".into());
    }
    let filters = filters.join(" AND ");
    let order = match query.sort {
        PresentationSort::Started => "p.started_at_ms IS NULL, p.started_at_ms DESC".to_string(),
        PresentationSort::Viewers => "viewers_n DESC".to_string(),
        PresentationSort::Title => format!("p.title IS NULL, {}", bytes("LOWER(p.title)")),
    };
    let from_where = format!(
        "FROM dim_presentation p \
         LEFT JOIN agg_presentation a ON a.presentation_key = p.presentation_key \
         WHERE {filters}"
    );
    let sql = format!(
        "SELECT p.presentation_id, p.title, \
           CASE WHEN p.created_version IS NULL THEN NULL ELSE p.scheduled_start_ms END, \
           p.started_at_ms, p.ended_at_ms, \
           COALESCE(a.unique_viewers, 0) AS viewers_n, COALESCE(a.peak_concurrent_viewers, 0), \
           COALESCE(a.total_watch_seconds, 0), COALESCE(a.polls, 0), COALESCE(a.surveys, 0), \
           COALESCE(a.questions, 0), COUNT(*) OVER () AS total, {stale} \
         {from_where} ORDER BY {order}, {} LIMIT {} OFFSET {}",
        bytes("p.presentation_id"),
        query.limit,
        query.offset,
        stale = stale_condition(),
    );
    let mut total = None;
    let mut presentations = Vec::new();
    let mut stale_figures = Vec::new();
    for mut row in fetch(conn, &sql, "listing presentations")? {
        let stale: i64 = take(&mut row, 12)?;
        let presentation_id = take_string(&mut row, 0)?;
        if stale != 0 {
            stale_figures.push(presentation_id.clone());
        }
        presentations.push(PresentationRow {
            presentation_id,
            title: take_opt_string(&mut row, 1)?,
            scheduled_start: format_time_opt(take(&mut row, 2)?),
            started_at: format_time_opt(take(&mut row, 3)?),
            ended_at: format_time_opt(take(&mut row, 4)?),
            unique_viewers: take(&mut row, 5)?,
            peak_concurrent_viewers: take(&mut row, 6)?,
            total_watch_seconds: take(&mut row, 7)?,
            polls: take(&mut row, 8)?,
            surveys: take(&mut row, 9)?,
            questions: take(&mut row, 10)?,
        });
        total = Some(take::<i64>(&mut row, 11)?);
    }
    let total = match total {
        Some(total) => total,
        None if query.offset > 0 => {
            let mut rows = fetch(
                conn,
                &format!("SELECT COUNT(*) {from_where}"),
                "counting presentations",
            )?;
            match rows.pop() {
                Some(mut row) => take(&mut row, 0)?,
                None => 0,
            }
        }
        None => 0,
    };
    Ok(PresentationList {
        tenant_id: tenant_id.to_string(),
        total,
        presentations,
        stale_figures,
    })
}

/// The list figures of one presentation, as computed from one snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Summary {
    key: u64,
    revision: u64,
    unique_viewers: i64,
    peak_concurrent_viewers: i64,
    total_watch_seconds: i64,
    polls: i64,
    surveys: i64,
    questions: i64,
}

/// Recomputes the tenant's stale summaries (missing, computed from a
/// revision below the presentation's current one, or by another
/// [`FORMAT_VERSION`]) and returns how many were written.
///
/// Each chunk of presentations is computed by one `SELECT`: InnoDB reads a
/// whole statement from one consistent snapshot (its read view), so each
/// summary's figures and the `revision` stored with them describe the same
/// committed state, whatever loads commit meanwhile; inside a caller's
/// REPEATABLE READ transaction the snapshot is the transaction's. The write
/// merges with "higher source revision wins" (then higher format version),
/// so concurrent refreshes never
/// replace a newer summary by an older one, and a load committing after the
/// snapshot leaves the summary stale, to be refreshed after that load.
pub fn refresh_summaries(
    conn: &mut impl Queryable,
    tenant_id: &str,
) -> Result<usize, AnalyticsError> {
    let sql = format!(
        "SELECT p.presentation_key FROM dim_presentation p \
         LEFT JOIN agg_presentation a ON a.presentation_key = p.presentation_key \
         WHERE {} AND {} ORDER BY p.presentation_key",
        exact_eq("p.tenant_id", tenant_id),
        stale_condition()
    );
    let stale: Vec<u64> = conn
        .query(sql)
        .map_err(|e| AnalyticsError::database("finding stale summaries", e))?;
    refresh_keys(conn, tenant_id, &stale, None)
}

/// Recomputes the stale summaries among these presentations of a tenant
/// (by id; unknown ids are skipped) and returns how many were written: what
/// a loader refreshes after its batch commits.
pub fn refresh_summaries_of(
    conn: &mut impl Queryable,
    tenant_id: &str,
    presentation_ids: &[&str],
) -> Result<usize, AnalyticsError> {
    let mut stale: Vec<u64> = Vec::new();
    for chunk in presentation_ids.chunks(REFRESH_CHUNK) {
        let mut ids = String::new();
        for (i, id) in chunk.iter().enumerate() {
            if i > 0 {
                ids.push(',');
            }
            crate::store::push_str_literal(&mut ids, id);
        }
        let sql = format!(
            "SELECT p.presentation_key FROM dim_presentation p \
             LEFT JOIN agg_presentation a ON a.presentation_key = p.presentation_key \
             WHERE {} AND p.presentation_id IN ({ids}) AND {} ORDER BY p.presentation_key",
            exact_eq("p.tenant_id", tenant_id),
            stale_condition()
        );
        let keys: Vec<u64> = conn
            .query(sql)
            .map_err(|e| AnalyticsError::database("finding stale summaries", e))?;
        stale.extend(keys);
    }
    refresh_keys(conn, tenant_id, &stale, None)
}

/// What [`refresh_stale_summaries`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Refreshed {
    /// Summaries written.
    pub written: usize,
    /// Stale summaries found and not refreshed: the deadline came first, or
    /// a load committed while one was computed (it is refreshed after that load).
    pub left: usize,
}

/// Recomputes every stale summary of every tenant, a chunk at a time,
/// stopping before a chunk that would start after `deadline`: the backfill's
/// and the reconciliation's sweep (and `warehouse refresh-summaries`).
pub fn refresh_stale_summaries(
    conn: &mut impl Queryable,
    deadline: Option<Instant>,
) -> Result<Refreshed, AnalyticsError> {
    let sql = format!(
        "SELECT p.tenant_id, p.presentation_key FROM dim_presentation p \
         LEFT JOIN agg_presentation a ON a.presentation_key = p.presentation_key \
         WHERE {} ORDER BY p.tenant_id, p.presentation_key",
        stale_condition()
    );
    let stale: Vec<(String, u64)> = conn
        .query(sql)
        .map_err(|e| AnalyticsError::database("finding stale summaries", e))?;
    let mut by_tenant: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (tenant, key) in stale {
        by_tenant.entry(tenant).or_default().push(key);
    }
    let mut refreshed = Refreshed::default();
    let found: usize = by_tenant.values().map(Vec::len).sum();
    for (tenant, keys) in &by_tenant {
        refreshed.written += refresh_keys(conn, tenant, keys, deadline)?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
    }
    refreshed.left = found - refreshed.written;
    Ok(refreshed)
}

/// Computes and writes the summaries of these presentations of a tenant, a
/// chunk per statement, stopping before a chunk that would start after
/// `deadline`; returns how many were written.
fn refresh_keys(
    conn: &mut impl Queryable,
    tenant_id: &str,
    keys: &[u64],
    deadline: Option<Instant>,
) -> Result<usize, AnalyticsError> {
    let mut written = 0;
    for chunk in keys.chunks(REFRESH_CHUNK) {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let summaries = compute_summaries(conn, &Scope::keys(tenant_id, chunk))?;
        write_summaries(conn, &summaries)?;
        written += summaries.len();
    }
    Ok(written)
}

fn compute_summaries(
    conn: &mut impl Queryable,
    scope: &Scope,
) -> Result<Vec<Summary>, AnalyticsError> {
    let count_of = |name: &str, table: &str, created: &str| {
        format!(
            "{name} AS (SELECT d.presentation_key, COUNT(*) AS n FROM dim_presentation p \
               JOIN {table} d ON d.presentation_key = p.presentation_key \
               WHERE {} AND d.{created} IS NOT NULL GROUP BY d.presentation_key)",
            scope.condition
        )
    };
    let sql = format!(
        "WITH {polls}, {surveys}, {questions} \
         SELECT p.presentation_key, p.revision, COALESCE(pc.n, 0), COALESCE(sc.n, 0), COALESCE(qc.n, 0) \
         FROM dim_presentation p \
         LEFT JOIN pc ON pc.presentation_key = p.presentation_key \
         LEFT JOIN sc ON sc.presentation_key = p.presentation_key \
         LEFT JOIN qc ON qc.presentation_key = p.presentation_key \
         WHERE {c} ORDER BY p.presentation_key",
        polls = count_of("pc", "dim_poll", "created_version"),
        surveys = count_of("sc", "dim_survey", "created_version"),
        questions = count_of("qc", "dim_question", "asked_version"),
        c = scope.condition,
    );
    let mut summaries = Vec::new();
    for mut row in fetch(conn, &sql, "computing presentation summaries")? {
        summaries.push(Summary {
            key: take(&mut row, 0)?,
            revision: take(&mut row, 1)?,
            unique_viewers: 0,
            total_watch_seconds: 0,
            peak_concurrent_viewers: 0,
            polls: take(&mut row, 2)?,
            surveys: take(&mut row, 3)?,
            questions: take(&mut row, 4)?,
        });
    }
    // The attendance figures come from a second statement, so from a second
    // snapshot: a summary whose revision differs between the two mixes two
    // states and is left out (it stays stale, to be refreshed next time). A
    // presentation without counted sessions in the second snapshot had none
    // in the first either (sessions are never removed).
    let index: HashMap<u64, usize> = summaries
        .iter()
        .enumerate()
        .map(|(i, s)| (s.key, i))
        .collect();
    let mut mixed = Vec::new();
    for_each_attendance(conn, scope, false, |key, revision, mut fold| {
        let Some(summary) = index.get(&key).map(|&i| &mut summaries[i]) else {
            return;
        };
        if summary.revision != revision {
            mixed.push(key);
            return;
        }
        summary.unique_viewers = fold.unique_viewers();
        summary.total_watch_seconds = floor_seconds(fold.watch_ms);
        summary.peak_concurrent_viewers = fold.peak();
    })?;
    summaries.retain(|s| !mixed.contains(&s.key));
    Ok(summaries)
}

fn write_summaries(conn: &mut impl Queryable, summaries: &[Summary]) -> Result<(), AnalyticsError> {
    const FIGURES: [&str; 6] = [
        "unique_viewers",
        "peak_concurrent_viewers",
        "total_watch_seconds",
        "polls",
        "surveys",
        "questions",
    ];
    let mut columns = vec!["presentation_key", "source_revision", "format_version"];
    columns.extend(FIGURES);
    let mut rows = Vec::with_capacity(summaries.len());
    for s in summaries {
        let mut row = SqlRow::default();
        row.uint(s.key)
            .uint(s.revision)
            .uint(u64::from(FORMAT_VERSION))
            .int(s.unique_viewers)
            .int(s.peak_concurrent_viewers)
            .int(s.total_watch_seconds)
            .int(s.polls)
            .int(s.surveys)
            .int(s.questions);
        rows.push(row);
    }
    // Refreshers inserting the same new rows at once may deadlock on gap
    // locks; the statement is idempotent, so it is simply run again.
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut upsert = Upsert::new("agg_presentation", &columns, &newer_wins(&FIGURES));
        let outcome = rows
            .iter()
            .try_for_each(|row| upsert.push(conn, row))
            .and_then(|()| upsert.flush(conn));
        match outcome {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 3 && crate::store::is_transient(&e) => {
                std::thread::sleep(std::time::Duration::from_millis(20 * attempt));
            }
            Err(e) => {
                return Err(AnalyticsError::database(
                    "writing presentation summaries",
                    e,
                ))
            }
        }
    }
}
