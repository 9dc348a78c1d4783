//! "The report cache must never serve a report older than the last committed
//! load" (issue 16), checked from outside: the state of a presentation
//! committed before a read began, and whether the report that read served
//! shows less than it.
//!
//! Only for presentations whose loads only add attendance (no `endedAt`,
//! which would clamp sessions): then `dataThrough`, the number of sessions
//! and the total watch time never decrease, so a report showing less of any
//! of them was computed from a state older than the committed one.
//! `dataThrough` alone could not tell: the reader sets it from the
//! presentation's row even when serving a cached body.

use mysql::prelude::Queryable;
use shared::contract::{format_time, PresentationReport};

/// A presentation's state committed at one instant (read in one statement,
/// so from one snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub revision: u64,
    pub data_through_ms: Option<i64>,
    pub sessions: i64,
    /// Summed session durations (last heartbeat or leave minus the join).
    pub watch_ms: i64,
    /// The revision of the cached report, if one is cached.
    pub cached_revision: Option<u64>,
}

impl Committed {
    /// The committed state of the presentation; `None` before its first load.
    pub fn read(
        conn: &mut impl Queryable,
        tenant_id: &str,
        presentation_id: &str,
    ) -> Option<Committed> {
        type CommittedRow = (u64, Option<i64>, i64, i64, Option<u64>);
        let row: Option<CommittedRow> = conn
            .exec_first(
                "SELECT p.revision, p.data_through_ms, \
                   (SELECT COUNT(*) FROM fact_session s \
                     WHERE s.presentation_key = p.presentation_key AND s.join_version IS NOT NULL), \
                   (SELECT CAST(COALESCE(SUM(GREATEST(0, COALESCE(s.end_ms, s.start_ms) - s.start_ms)), 0) AS SIGNED) \
                      FROM fact_session s \
                     WHERE s.presentation_key = p.presentation_key AND s.join_version IS NOT NULL), \
                   (SELECT r.source_revision FROM agg_presentation_report r \
                     WHERE r.presentation_key = p.presentation_key) \
                 FROM dim_presentation p WHERE p.tenant_id = ? AND p.presentation_id = ?",
                (tenant_id, presentation_id),
            )
            .expect("reading the committed state");
        row.map(
            |(revision, data_through_ms, sessions, watch_ms, cached_revision)| Committed {
                revision,
                data_through_ms,
                sessions,
                watch_ms,
                cached_revision,
            },
        )
    }

    /// Whether a fresh cached report was there (the next read may be served
    /// from it).
    pub fn cache_is_fresh(&self) -> bool {
        self.cached_revision == Some(self.revision)
    }

    /// Why `report`, served by a read that began after this state was
    /// committed, is older than it; `None` when it is not.
    pub fn staleness(&self, report: &PresentationReport) -> Option<String> {
        let through = self.data_through_ms.map(format_time);
        let a = &report.attendance;
        // RFC 3339 with milliseconds in UTC: text order is time order, and
        // `None` (no event yet) sorts first.
        if report.data_through < through
            || a.sessions < self.sessions
            || a.total_watch_seconds < self.watch_ms.div_euclid(1000)
        {
            return Some(format!(
                "report of {} read after revision {} was committed: dataThrough {:?} (committed {through:?}), \
                 sessions {} ({}), totalWatchSeconds {} ({} ms)",
                report.presentation_id,
                self.revision,
                report.data_through,
                a.sessions,
                self.sessions,
                a.total_watch_seconds,
                self.watch_ms
            ));
        }
        None
    }

    /// As [`Committed::staleness`], for a timeline's `dataThrough`.
    pub fn timeline_staleness(&self, data_through: &Option<String>) -> Option<String> {
        let through = self.data_through_ms.map(format_time);
        (*data_through < through).then(|| {
            format!(
                "timeline read after revision {} was committed: dataThrough {data_through:?} (committed {through:?})",
                self.revision
            )
        })
    }
}
