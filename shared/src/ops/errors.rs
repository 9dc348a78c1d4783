//! `warehouse errors`: the `error_event` rows seen since a time, grouped by
//! reason (the row's `kind`: what the loaders and the backfill set aside),
//! with counts and the newest examples, bodies cut and anonymous askers
//! removed.

use std::collections::BTreeMap;

use mysql::prelude::Queryable;
use serde::Serialize;

use super::{db_error, loader_data_point, ms, shown_body, OpsError};
use crate::contract::{abbreviate, format_time, DataPoint};
use crate::store::Database;

/// The reasons an input is set aside (`write::RejectKind`'s names).
pub const REASONS: [&str; 4] = ["malformed", "wrong_data_point", "conflict", "refused"];

/// How many characters of a row's detailed reason an example shows.
const DETAIL_CHARS: usize = 500;

#[derive(Debug, Clone, Default)]
pub struct ErrorFilter {
    /// Rows seen (last) after this time.
    pub since_ms: i64,
    /// Rows seen up to this time (now).
    pub until_ms: i64,
    /// Only rows recorded by this data point's loader.
    pub data_point: Option<DataPoint>,
    /// Only this reason (one of [`REASONS`]).
    pub reason: Option<String>,
    /// Examples per reason.
    pub examples: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReport {
    pub since: String,
    pub until: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_point: Option<DataPoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Rows (distinct bad inputs) in all groups.
    pub total: u64,
    /// Largest group first.
    pub reasons: Vec<ErrorGroup>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorGroup {
    pub reason: String,
    /// Rows: distinct bodies (per source and line).
    pub count: u64,
    /// Times they were seen (a redelivered body is one row seen again).
    pub seen: u64,
    pub last_seen: String,
    /// Rows per source (a loader's function name, `backfill:<run>`, …).
    pub sources: BTreeMap<String, u64>,
    /// The newest, newest first.
    pub examples: Vec<ErrorExample>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorExample {
    pub error_id: u64,
    pub source: String,
    /// The data point whose loader recorded it; `null` for other sources.
    pub data_point: Option<DataPoint>,
    /// The line of an export (a backfill), 0 for a queue message.
    pub line: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub seen_count: u64,
    /// What exactly was wrong, as recorded.
    pub detail: String,
    pub stream_id: Option<String>,
    pub version: Option<i64>,
    /// At most 1 KiB, without an anonymous asker.
    pub body: String,
    /// Cut here, or already when it was recorded.
    pub body_truncated: bool,
}

/// `error_event` grouped by reason under `filter`.
pub fn error_groups(db: &Database, filter: &ErrorFilter) -> Result<ErrorReport, OpsError> {
    let mut conn = db.conn()?;
    // Counts per (source, reason) first: few rows, and the sources that
    // belong to the data point asked for.
    let rows: Vec<(String, String, u64, u64, i64)> = conn
        .exec(
            format!(
                "SELECT source, kind, COUNT(*), SUM(seen_count), {} FROM error_event \
                 WHERE last_seen > FROM_UNIXTIME(? / 1000) AND last_seen <= FROM_UNIXTIME(? / 1000) \
                 AND (? IS NULL OR kind = ?) GROUP BY source, kind",
                ms("MAX(last_seen)")
            ),
            (
                filter.since_ms,
                filter.until_ms,
                &filter.reason,
                &filter.reason,
            ),
        )
        .map_err(db_error("cannot count the errors"))?;
    let mut groups: BTreeMap<String, ErrorGroup> = BTreeMap::new();
    for (source, kind, count, seen, last_seen) in rows {
        if filter.data_point.is_some() && loader_data_point(&source) != filter.data_point {
            continue;
        }
        let group = groups.entry(kind.clone()).or_insert_with(|| ErrorGroup {
            reason: kind,
            count: 0,
            seen: 0,
            last_seen: String::new(),
            sources: BTreeMap::new(),
            examples: Vec::new(),
        });
        group.count += count;
        group.seen += seen;
        let last = format_time(last_seen);
        if last > group.last_seen {
            group.last_seen = last;
        }
        *group.sources.entry(source).or_default() += count;
    }
    type Row = (
        u64,
        String,
        u64,
        i64,
        i64,
        u64,
        String,
        Option<String>,
        Option<i64>,
        Vec<u8>,
        bool,
    );
    for group in groups.values_mut() {
        if filter.examples == 0 {
            continue;
        }
        let sources: Vec<&String> = group.sources.keys().collect();
        let placeholders = vec!["?"; sources.len()].join(", ");
        let mut params: Vec<mysql::Value> = vec![
            filter.since_ms.into(),
            filter.until_ms.into(),
            group.reason.as_str().into(),
        ];
        params.extend(sources.iter().map(|s| mysql::Value::from(s.as_str())));
        params.push((filter.examples as u64).into());
        let examples: Vec<Row> = conn
            .exec(
                format!(
                    "SELECT error_id, source, line_number, {}, {}, seen_count, reason, stream_id, version, raw_body, body_truncated \
                     FROM error_event WHERE last_seen > FROM_UNIXTIME(? / 1000) AND last_seen <= FROM_UNIXTIME(? / 1000) \
                     AND kind = ? AND source IN ({placeholders}) ORDER BY last_seen DESC, error_id DESC LIMIT ?",
                    ms("first_seen"),
                    ms("last_seen"),
                ),
                params,
            )
            .map_err(db_error("cannot read the newest errors"))?;
        group.examples = examples
            .into_iter()
            .map(
                |(
                    error_id,
                    source,
                    line,
                    first,
                    last,
                    seen_count,
                    detail,
                    stream_id,
                    version,
                    raw,
                    cut_before,
                )| {
                    let (body, cut) = shown_body(&raw);
                    ErrorExample {
                        error_id,
                        data_point: loader_data_point(&source),
                        source,
                        line,
                        first_seen: format_time(first),
                        last_seen: format_time(last),
                        seen_count,
                        detail: abbreviate(&detail, DETAIL_CHARS),
                        stream_id,
                        version,
                        body,
                        body_truncated: cut || cut_before,
                    }
                },
            )
            .collect();
    }
    let mut reasons: Vec<ErrorGroup> = groups.into_values().collect();
    reasons.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    Ok(ErrorReport {
        since: format_time(filter.since_ms),
        until: format_time(filter.until_ms),
        data_point: filter.data_point,
        reason: filter.reason.clone(),
        total: reasons.iter().map(|g| g.count).sum(),
        reasons,
    })
}
