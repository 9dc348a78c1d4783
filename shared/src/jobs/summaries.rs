//! The sweep of stale presentation summaries that ends a direct backfill
//! invocation and a finished reconciliation (see `read::presentations`):
//! the loaders' refresh does not see their writes, and the sweep is also
//! the safety net of a loader's refresh that failed.

use std::time::Instant;

use crate::read::{refresh_stale_summaries, AnalyticsError};
use crate::store::Database;

/// Refreshes every stale presentation summary until `until`. Logs what it
/// did and never fails the run: what it leaves is refreshed by a later
/// sweep, and the list says which figures are stale meanwhile.
pub(super) fn sweep_summaries(db: &Database, until: Option<Instant>) {
    let swept = db
        .conn()
        .map_err(|e| AnalyticsError::Database(e.to_string()))
        .and_then(|mut conn| refresh_stale_summaries(&mut conn, until));
    match swept {
        Ok(refreshed) => tracing::info!(
            written = refreshed.written,
            left = refreshed.left,
            "stale presentation summaries refreshed"
        ),
        Err(error) => {
            tracing::warn!(%error, "refreshing the stale presentation summaries failed")
        }
    }
}
