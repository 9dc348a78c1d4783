//! The SQL building blocks of the read path: exact and case-insensitive
//! comparisons, the tenant [`Scope`], the sessions CTE, literal lookup tables,
//! reading values out of rows, and the "newer wins" merge of the stored
//! answers (summaries and cached reports, tagged with [`FORMAT_VERSION`]).
//!
//! Every query is scoped by tenant: it joins `dim_presentation` and requires
//! the tenant, compared exactly (the columns' `utf8mb4_bin` collation is PAD
//! SPACE, so `=` alone would equate `acme` and `acme `). Identifiers are
//! likewise matched and ordered by their bytes (`CAST(… AS BINARY)`), which is
//! Rust's `str` order, so that ties and matches are those of the replay.

use std::fmt::Write;

use mysql::prelude::{FromValue, Queryable};
use mysql::Row;

use super::error::AnalyticsError;
use crate::store::{push_str_literal, str_literal};

/// Version of the computation, stored with every summary and cached
/// report: bump it whenever a change here changes any answer, so that rows
/// computed by older code are recomputed.
/// 2: survey responses are matched to their survey by exact id (a padded
/// id no longer counts for the unpadded one); a viewer with a missing and an
/// `unknown` breakdown value counts once under `unknown`.
pub const FORMAT_VERSION: u32 = 2;

/// `col = 'value'`, exactly: the `=` uses the column's index, the binary
/// comparison removes PAD SPACE's trailing-blank equality.
pub(super) fn exact_eq(column: &str, value: &str) -> String {
    let literal = str_literal(value);
    format!("({column} = {literal} AND CAST({column} AS BINARY) = CAST({literal} AS BINARY))")
}

/// Byte order of a text expression (Rust's `str` order).
pub(super) fn bytes(expr: &str) -> String {
    format!("CAST({expr} AS BINARY)")
}

/// `'%text%'` for `LIKE … ESCAPE '!'`, with the user's `%`, `_` and `!`
/// matching themselves.
fn like_pattern(search: &str) -> String {
    let mut pattern = String::with_capacity(search.len() + 2);
    pattern.push('%');
    for c in search.chars() {
        if matches!(c, '%' | '_' | '!') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    str_literal(&pattern)
}

/// A case-insensitive substring test of `column` against the search text.
pub(super) fn contains_ci(column: &str, search: &str) -> String {
    format!(
        "LOWER({column}) LIKE LOWER({}) ESCAPE '!'",
        like_pattern(search)
    )
}

/// The condition on `dim_presentation p` that scopes a query: the tenant
/// (always), and the presentations asked for.
pub(super) struct Scope {
    pub(super) condition: String,
}

impl Scope {
    pub(super) fn one(tenant_id: &str, key: u64) -> Scope {
        Scope {
            condition: format!(
                "p.presentation_key = {key} AND {}",
                exact_eq("p.tenant_id", tenant_id)
            ),
        }
    }

    pub(super) fn keys(tenant_id: &str, keys: &[u64]) -> Scope {
        let mut list = String::new();
        for (i, key) in keys.iter().enumerate() {
            if i > 0 {
                list.push(',');
            }
            let _ = write!(list, "{key}");
        }
        Scope {
            condition: format!(
                "p.presentation_key IN ({list}) AND {}",
                exact_eq("p.tenant_id", tenant_id)
            ),
        }
    }
}

/// `sess`: the sessions that count (a `ViewerJoined` arrived), with `end`
/// = latest heartbeat/leave or start, clamped to the presentation's end.
///
/// Read by a range of the primary key: grouped by viewer, the optimizer
/// would rather walk ix_session_viewer in order and look every session up
/// by its primary key, which costs several times more at 20,000 sessions
/// than grouping the range in a temporary table.
pub(super) fn sessions_cte(scope: &Scope) -> String {
    format!(
        "sess AS (\
           SELECT s.presentation_key, s.viewer_key, s.start_ms, {SESSION_END} AS end_ms \
           FROM dim_presentation p \
           JOIN fact_session s IGNORE INDEX (ix_session_viewer) ON s.presentation_key = p.presentation_key \
           WHERE {} AND s.join_version IS NOT NULL)",
        scope.condition
    )
}

/// A session's end on `fact_session s` of `dim_presentation p`: its latest
/// heartbeat or leave (or its start), clamped to the presentation's end.
pub(super) const SESSION_END: &str =
    "CASE WHEN p.ended_at_ms IS NOT NULL AND p.ended_at_ms < COALESCE(s.end_ms, s.start_ms) \
     THEN p.ended_at_ms ELSE COALESCE(s.end_ms, s.start_ms) END";

/// A session's `max(0, end − start)` in ms, as an exact DECIMAL.
pub(super) const DURATION_MS: &str =
    "CASE WHEN end_ms > start_ms THEN CAST(end_ms AS DECIMAL(20,0)) - start_ms ELSE 0 END";

/// `text <> ''` after removing every Unicode `White_Space` character: true
/// exactly when `str::trim` leaves something (SQL `TRIM` only knows spaces,
/// and regular expression classes differ between the two servers).
pub(super) fn non_blank(column: &str) -> String {
    const WHITE_SPACE: &[char] = &[
        '\u{9}', '\u{a}', '\u{b}', '\u{c}', '\u{d}', '\u{20}', '\u{85}', '\u{a0}', '\u{1680}',
        '\u{2000}', '\u{2001}', '\u{2002}', '\u{2003}', '\u{2004}', '\u{2005}', '\u{2006}',
        '\u{2007}', '\u{2008}', '\u{2009}', '\u{200a}', '\u{2028}', '\u{2029}', '\u{202f}',
        '\u{205f}', '\u{3000}',
    ];
    let mut expr = column.to_string();
    let mut first_is_blank = String::new();
    for (i, c) in WHITE_SPACE.iter().enumerate() {
        let mut wrapped = String::from("REPLACE(");
        wrapped.push_str(&expr);
        wrapped.push_str(", ");
        push_str_literal(&mut wrapped, &c.to_string());
        wrapped.push_str(", '')");
        expr = wrapped;
        if i > 0 {
            first_is_blank.push_str(", ");
        }
        first_is_blank.push_str(&bytes_literal(&c.to_string()));
    }
    // The removals cost most of a text answer's read: NULL stays NULL, and
    // a text that is not empty and does not start with white space (nearly
    // every answer) is not blank without them. (`= ''` is PAD SPACE: true
    // for spaces only, which are blank too.)
    format!(
        "(CASE WHEN {column} IS NULL THEN NULL WHEN {column} = '' THEN FALSE \
           WHEN {} NOT IN ({first_is_blank}) THEN TRUE \
           ELSE {expr} <> '' END)",
        bytes(&format!("LEFT({column}, 1)"))
    )
}

/// Runs one query; its time is logged at debug level (what the analytics
/// bench's `profile` mode prints).
pub(super) fn fetch(
    conn: &mut impl Queryable,
    sql: &str,
    what: &str,
) -> Result<Vec<Row>, AnalyticsError> {
    let started = std::time::Instant::now();
    let rows = conn
        .query::<Row, _>(sql)
        .map_err(|e| AnalyticsError::database(what, e))?;
    tracing::debug!(
        what,
        rows = rows.len(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "analytics query"
    );
    Ok(rows)
}

/// Column `index` of `row` as `T`.
pub(super) fn take<T: FromValue>(row: &mut Row, index: usize) -> Result<T, AnalyticsError> {
    match row.take_opt::<T, usize>(index) {
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => Err(AnalyticsError::Database(format!(
            "unexpected value in column {index}: {:?}",
            e.0
        ))),
        None => Err(AnalyticsError::Database(format!(
            "the result has no column {index}"
        ))),
    }
}

/// The rows of a statement that reads many rows (the folds' range reads),
/// one at a time, in the binary protocol: numbers arrive as numbers, not as
/// text to allocate and parse (about twice as fast at 20,000 rows here,
/// for one more round trip to prepare the statement).
pub(super) fn stream<Q: Queryable>(
    conn: &mut Q,
    sql: String,
) -> mysql::Result<mysql::QueryResult<'_, '_, '_, mysql::Binary>> {
    conn.exec_iter(sql, ())
}

/// Column `index` of `row` as bytes, borrowed (no copy per row); `None`
/// for NULL.
pub(super) fn bytes_at(row: &Row, index: usize) -> Option<&[u8]> {
    match row.as_ref(index) {
        Some(mysql::Value::Bytes(bytes)) => Some(bytes),
        _ => None,
    }
}

/// A non-negative whole number that may exceed `i64` (sums of durations),
/// read from its decimal text; NULL is 0.
pub(super) fn take_big(row: &mut Row, index: usize) -> Result<i128, AnalyticsError> {
    let text: Option<String> = take(row, index)?;
    let Some(text) = text else { return Ok(0) };
    let whole = text.split('.').next().unwrap_or("");
    whole
        .parse::<i128>()
        .map_err(|_| AnalyticsError::Database(format!("not a whole number: {text:?}")))
}

pub(super) fn take_string(row: &mut Row, index: usize) -> Result<String, AnalyticsError> {
    let bytes: Option<Vec<u8>> = take(row, index)?;
    Ok(bytes
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default())
}

pub(super) fn take_opt_string(
    row: &mut Row,
    index: usize,
) -> Result<Option<String>, AnalyticsError> {
    let bytes: Option<Vec<u8>> = take(row, index)?;
    Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// `text` as a binary string constant, `X'…'` (the bytes of its UTF-8): a
/// `CAST('text' AS BINARY)` would be evaluated again for every row.
pub(super) fn bytes_literal(text: &str) -> String {
    let mut literal = String::new();
    crate::store::push_hex_literal(&mut literal, text.as_bytes());
    literal
}

/// `CASE CAST(expr AS BINARY) WHEN … THEN … END` over (text, SQL value) arms:
/// an exact, literal lookup table (NULL when nothing matches).
pub(super) fn case_of(expr: &str, arms: impl IntoIterator<Item = (String, String)>) -> String {
    let mut sql = format!("CASE {}", bytes(expr));
    let mut any = false;
    for (when, then) in arms {
        any = true;
        let _ = write!(sql, " WHEN {} THEN {then}", bytes_literal(&when));
    }
    if !any {
        return "NULL".into();
    }
    sql.push_str(" END");
    sql
}

/// `ON DUPLICATE KEY UPDATE` assignments by which a summary row replaces the
/// stored one only when its (source_revision, format_version) is higher.
/// Values are assigned before the columns the condition reads.
pub(super) fn newer_wins(columns: &[&str]) -> String {
    let newer = "(VALUES(source_revision) > source_revision OR \
                 (VALUES(source_revision) = source_revision AND VALUES(format_version) > format_version))";
    let mut sets: Vec<String> = columns
        .iter()
        .map(|c| format!("{c} = IF({newer}, VALUES({c}), {c})"))
        .collect();
    sets.push(format!(
        "refreshed_at = IF({newer}, CURRENT_TIMESTAMP(3), refreshed_at)"
    ));
    sets.push(format!(
        "format_version = IF({newer}, VALUES(format_version), format_version)"
    ));
    sets.push("source_revision = GREATEST(source_revision, VALUES(source_revision))".into());
    sets.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_search_patterns() {
        assert_eq!(like_pattern("50%_a!b"), r"'%50!%!_a!!b%'");
        assert_eq!(like_pattern("it's"), r"'%it\'s%'");
        assert_eq!(
            exact_eq("p.tenant_id", "acme"),
            "(p.tenant_id = 'acme' AND CAST(p.tenant_id AS BINARY) = CAST('acme' AS BINARY))"
        );
        assert_eq!(bytes_literal("a'é"), "X'6127c3a9'");
        assert_eq!(bytes_literal(""), "X''");
    }
}
