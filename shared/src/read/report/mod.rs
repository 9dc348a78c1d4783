//! The presentation report (ANALYTICS.md §1): the presentation dimension
//! lookup, the report's assembly from its data points (one file each:
//! attendance, polls, surveys, Q&A) and its cache.
//!
//! Where work happens:
//! - The report's figures are folded in Rust from range reads of the
//!   presentation's fact rows: its sessions (`AttendanceFold`, which also
//!   sweeps for the peak), its effective votes and vote options
//!   (`PollFold`), its effective survey responses, answers and chosen
//!   options (`SurveyFold`). Each read is one range of an index, mostly
//!   in primary-key order, with no join per row, no sort and no temporary
//!   table in the database: joins, window functions and `GROUP BY`s over
//!   text made a computed report cost 380 ms at 20,000 viewers, where these
//!   reads cost a few milliseconds each (BENCHMARKS.md). The folds hold a few
//!   bytes per session, effective vote or effective response of the one
//!   presentation; Q&A and the definitions stay small SQL aggregates.
//! - The report is cached whole in `agg_presentation_report` (migration
//!   0002) with the `dim_presentation.revision` it was computed from; asking
//!   again before the next load touching the presentation is one
//!   primary-key read (see [`presentation_report`]).
//!
//! Each statement reads one consistent snapshot. A report computed while a
//! load touching the presentation commits may mix the two states (as any
//! answer computed at that moment could); it is then returned but not
//! cached. Pass a transaction started `WITH CONSISTENT SNAPSHOT` as `conn`
//! to make a whole report one snapshot.

mod attendance;
mod polls;
mod qna;
mod surveys;

pub(super) use attendance::for_each_attendance;
pub(super) use polls::{poll_dims, polls_answered_ctes};

use mysql::prelude::Queryable;

use super::error::AnalyticsError;
use super::sql::{exact_eq, fetch, newer_wins, take, take_opt_string, Scope, FORMAT_VERSION};
use crate::contract::{format_time_opt, PresentationReport, Presenter};
use crate::store::{Row as SqlRow, Upsert};
use attendance::attendance;
use polls::polls;
use qna::qna;
use surveys::surveys;

pub(super) struct PresentationDim {
    pub(super) key: u64,
    revision: u64,
    pub(super) title: Option<String>,
    presenter: Option<Presenter>,
    scheduled_start_ms: Option<i64>,
    pub(super) started_at_ms: Option<i64>,
    pub(super) ended_at_ms: Option<i64>,
    /// §6: the latest `occurredAt` of its accepted analytics events.
    pub(super) data_through_ms: Option<i64>,
    /// The cached report, when one of this revision and format exists.
    cached_report: Option<String>,
}

/// The presentation of this tenant, or `NotFound`; with its cached report
/// when `with_cache` and the cache is fresh.
pub(super) fn find_presentation(
    conn: &mut impl Queryable,
    tenant_id: &str,
    presentation_id: &str,
    with_cache: bool,
) -> Result<PresentationDim, AnalyticsError> {
    let cache = if with_cache {
        format!(
            "(SELECT r.report FROM agg_presentation_report r WHERE r.presentation_key = p.presentation_key \
               AND r.source_revision = p.revision AND r.format_version = {FORMAT_VERSION})"
        )
    } else {
        "NULL".to_string()
    };
    let sql = format!(
        "SELECT presentation_key, revision, title, created_version, presenter_id, presenter_name, \
           scheduled_start_ms, started_at_ms, ended_at_ms, data_through_ms, {cache} \
         FROM dim_presentation p WHERE {} AND {}",
        exact_eq("p.presentation_id", presentation_id),
        exact_eq("p.tenant_id", tenant_id)
    );
    let mut rows = fetch(conn, &sql, "finding the presentation")?;
    let Some(mut row) = rows.pop() else {
        return Err(AnalyticsError::NotFound(presentation_id.to_string()));
    };
    let key: u64 = take(&mut row, 0)?;
    let revision: u64 = take(&mut row, 1)?;
    let title = take_opt_string(&mut row, 2)?;
    let created: Option<i64> = take(&mut row, 3)?;
    let presenter_id = take_opt_string(&mut row, 4)?;
    let presenter_name = take_opt_string(&mut row, 5)?;
    let scheduled_start_ms: Option<i64> = take(&mut row, 6)?;
    // The presenter and the scheduled start come from PresentationCreated.
    let presenter = created.map(|_| Presenter {
        id: presenter_id.unwrap_or_default(),
        name: presenter_name.unwrap_or_default(),
    });
    Ok(PresentationDim {
        key,
        revision,
        title,
        presenter,
        scheduled_start_ms: created.and(scheduled_start_ms),
        started_at_ms: take(&mut row, 7)?,
        ended_at_ms: take(&mut row, 8)?,
        data_through_ms: take(&mut row, 9)?,
        cached_report: take_opt_string(&mut row, 10)?,
    })
}

/// The report of one presentation (ANALYTICS.md §1).
///
/// Served from `agg_presentation_report` when it holds the report of the
/// presentation's current revision (one primary-key read). Otherwise computed
/// from the facts, and cached when the presentation's revision did not
/// change while it was computed: revisions only grow and every load touching
/// the presentation bumps it in the transaction that writes the facts, so an
/// unchanged revision means every statement read the state of that revision.
/// A failure to write the cache is logged, never reported.
pub fn presentation_report(
    conn: &mut impl Queryable,
    tenant_id: &str,
    presentation_id: &str,
) -> Result<PresentationReport, AnalyticsError> {
    report(conn, tenant_id, presentation_id, true)
}

/// As [`presentation_report`], writing nothing: a report computed because no
/// fresh cached copy exists is not cached. The API's (its database user may
/// only `SELECT`).
pub fn presentation_report_read_only(
    conn: &mut impl Queryable,
    tenant_id: &str,
    presentation_id: &str,
) -> Result<PresentationReport, AnalyticsError> {
    report(conn, tenant_id, presentation_id, false)
}

fn report(
    conn: &mut impl Queryable,
    tenant_id: &str,
    presentation_id: &str,
    write_cache: bool,
) -> Result<PresentationReport, AnalyticsError> {
    let dim = find_presentation(conn, tenant_id, presentation_id, true)?;
    if let Some(json) = &dim.cached_report {
        match serde_json::from_str::<PresentationReport>(json) {
            Ok(mut report) => {
                report.presentation_id = presentation_id.to_string();
                report.tenant_id = tenant_id.to_string();
                report.data_through = format_time_opt(dim.data_through_ms);
                return Ok(report);
            }
            Err(e) => {
                tracing::warn!(presentation_id, error = %e, "unreadable cached report, recomputing")
            }
        }
    }
    let scope = Scope::one(tenant_id, dim.key);
    let report = PresentationReport {
        presentation_id: presentation_id.to_string(),
        tenant_id: tenant_id.to_string(),
        title: dim.title,
        presenter: dim.presenter,
        scheduled_start: format_time_opt(dim.scheduled_start_ms),
        started_at: format_time_opt(dim.started_at_ms),
        ended_at: format_time_opt(dim.ended_at_ms),
        attendance: attendance(conn, &scope)?,
        polls: polls(conn, &scope, dim.key)?,
        surveys: surveys(conn, &scope, dim.key)?,
        qna: qna(conn, &scope)?,
        data_through: format_time_opt(dim.data_through_ms),
    };
    if !write_cache {
        return Ok(report);
    }
    if let Err(e) = cache_report(conn, dim.key, dim.revision, &report) {
        tracing::warn!(presentation_id, error = %e, "could not cache the report");
    }
    Ok(report)
}

/// Largest report JSON cached (far inside `max_allowed_packet`).
const MAX_CACHED_REPORT_BYTES: usize = 8 << 20;

fn cache_report(
    conn: &mut impl Queryable,
    key: u64,
    revision: u64,
    report: &PresentationReport,
) -> Result<(), AnalyticsError> {
    let now: Option<u64> = conn
        .query_first(format!(
            "SELECT revision FROM dim_presentation WHERE presentation_key = {key}"
        ))
        .map_err(|e| AnalyticsError::Database(format!("re-reading the revision: {e}")))?;
    if now != Some(revision) {
        return Ok(()); // a load committed meanwhile: the report may mix states
    }
    let json = serde_json::to_string(report)
        .map_err(|e| AnalyticsError::Database(format!("serialising the report: {e}")))?;
    if json.len() > MAX_CACHED_REPORT_BYTES {
        return Ok(());
    }
    let mut upsert = Upsert::new(
        "agg_presentation_report",
        &[
            "presentation_key",
            "source_revision",
            "format_version",
            "report",
        ],
        &newer_wins(&["report"]),
    );
    let mut row = SqlRow::default();
    row.uint(key)
        .uint(revision)
        .uint(u64::from(FORMAT_VERSION))
        .str(&json);
    let db = |e: mysql::Error| AnalyticsError::Database(format!("caching the report: {e}"));
    upsert.push(conn, &row).map_err(db)?;
    upsert.flush(conn).map_err(db)
}
