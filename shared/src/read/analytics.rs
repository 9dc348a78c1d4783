//! The analytics answers of `shared/contract/ANALYTICS.md`, computed by the
//! database from the warehouse tables: the presentation report, the viewer
//! list and the presentation list, plus the parsing of the user's paging,
//! sorting and date input that the CLI and the HTTP API share.
//!
//! The in-memory [`crate::read::replay::Replay`] is the reference these answers are
//! tested against; the shapes and the rounding / formatting helpers are those
//! of [`crate::contract::answers`].
//!
//! Where work happens:
//! - The viewer list and the presentation list filter, sort and page in
//!   SQL (`WHERE`, `ORDER BY`, `LIMIT … OFFSET`, with `COUNT(*) OVER ()` for
//!   the total); Rust receives one page (at most [`MAX_LIMIT`] rows).
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
//! - Poll definitions (close times, option ids) are read first and inlined
//!   as literal lookup tables, so that the statements on votes only read
//!   votes (see `effective_votes_cte`).
//! - The report is cached whole in `agg_presentation_report` (migration
//!   0002) with the `dim_presentation.revision` it was computed from; asking
//!   again before the next load touching the presentation is one
//!   primary-key read (see [`presentation_report`]).
//! - The presentation list reads `agg_presentation`, one summary row per
//!   presentation with the revision it was computed from. Before a list is
//!   answered, the tenant's stale summaries are recomputed (see
//!   [`refresh_summaries`]), their attendance by the same fold.
//!
//! MariaDB materialises a CTE once per reference, so each CTE that does real
//! work is referenced once.
//!
//! Every query is scoped by tenant: it joins `dim_presentation` and requires
//! the tenant, compared exactly (the columns' `utf8mb4_bin` collation is PAD
//! SPACE, so `=` alone would equate `acme` and `acme `). Identifiers are
//! likewise matched and ordered by their bytes (`CAST(… AS BINARY)`), which is
//! Rust's `str` order, so that ties and matches are those of the replay.
//!
//! The SQL uses only what MySQL 8 and MariaDB 10.11 share (CTEs, window
//! functions, `VALUES()` in upserts), and every `GROUP BY` is valid under
//! `ONLY_FULL_GROUP_BY`. Durations are summed as `DECIMAL`, never as
//! `BIGINT`, so no event time can overflow them (the replay uses `i128`).
//!
//! Decisions where the contract is silent:
//! - Filters match the values the breakdowns show: a missing department is
//!   matched by `department=unknown` (as `byDepartment` counts it); country
//!   matches in any letter case; department and device match exactly.
//! - `search` is a case-insensitive substring (`LOWER()` on both sides, then
//!   a binary `LIKE` with `%` and `_` escaped, so they match themselves); an
//!   empty search matches every row.
//! - Sorting by `name` (viewers) or `title` (presentations) is by the
//!   lower-cased text in code-point order, missing values last; every sort
//!   ends with the id in byte order, so pages never overlap.
//! - Dates: `from` and `to` accept RFC 3339 (`2021-09-10T12:00:00Z`, any
//!   offset, optional fraction) or a plain `YYYY-MM-DD`, a UTC day: as `from`
//!   it means the day's first millisecond ([`parse_date`]), as `to` its last
//!   ([`parse_date_to`]), so `from=to=2021-09-10` is that whole day. Both ends
//!   are inclusive; presentations without a `scheduledStart` are left out
//!   when either bound is given; `from` after `to` is a bad request.
//! - A blank `limit` / `offset` parameter means its default.
//! - Each statement reads one consistent snapshot. A report computed while a
//!   load touching the presentation commits may mix the two states (as any
//!   answer computed at that moment could); it is then returned but not
//!   cached. Pass a transaction started `WITH CONSISTENT SNAPSHOT` as `conn`
//!   to make a whole report one snapshot.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use mysql::prelude::{FromValue, Queryable};
use mysql::Row;

use crate::contract::{
    average_2dp, average_seconds_1dp, floor_seconds, format_time, format_time_opt, Attendance,
    PollOption, PollReport, PresentationList, PresentationReport, PresentationRow, Presenter,
    QnaReport, QuestionStatus, SurveyOptionCount, SurveyQuestionDetail, SurveyQuestionReport,
    SurveyReport, TopQuestion, ViewerList, ViewerRow, TOP_QUESTIONS, UNKNOWN,
};
use crate::read::replay::MAX_DISTRIBUTION_KEYS;
use crate::store::{push_str_literal, str_literal, Row as SqlRow, Upsert};

/// Page size when none is given.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size accepted.
pub const MAX_LIMIT: u32 = 1000;

/// Version of the computation, stored with every summary and cached
/// report: bump it whenever a change here changes any answer, so that rows
/// computed by older code are recomputed.
/// 2: survey responses are matched to their survey by exact id (a padded
/// id no longer counts for the unpadded one); a viewer with a missing and an
/// `unknown` breakdown value counts once under `unknown`.
pub const FORMAT_VERSION: u32 = 2;

/// Stale summaries recomputed per statement.
const REFRESH_CHUNK: usize = 200;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why an analytics question could not be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnalyticsError {
    /// No such presentation for this tenant. Holds the presentation id as
    /// asked; an unknown presentation and another tenant's give the same
    /// error, so a tenant cannot learn that another's presentation exists.
    NotFound(String),
    /// The request itself is wrong (bad sort key, limit, offset or date);
    /// the message says what was wrong and what is accepted.
    BadRequest(String),
    /// The database failed; retrying may help.
    Database(String),
}

impl std::fmt::Display for AnalyticsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnalyticsError::NotFound(id) => write!(f, "presentation {id:?} not found"),
            AnalyticsError::BadRequest(message) => f.write_str(message),
            AnalyticsError::Database(message) => write!(f, "database error: {message}"),
        }
    }
}

impl std::error::Error for AnalyticsError {}

impl From<mysql::Error> for AnalyticsError {
    fn from(e: mysql::Error) -> AnalyticsError {
        AnalyticsError::Database(e.to_string())
    }
}

fn bad_request(message: String) -> AnalyticsError {
    AnalyticsError::BadRequest(message)
}

// ---------------------------------------------------------------------------
// Queries and their parsing
// ---------------------------------------------------------------------------

/// Sort order of the viewer list; ties are broken by `viewerId`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ViewerSort {
    /// `watchSeconds` descending (the default).
    #[default]
    Watch,
    /// `name` ascending, case-insensitive, missing names last.
    Name,
    /// `firstJoinedAt` ascending.
    Joined,
    /// `pollsAnswered + surveysSubmitted + questionsAsked` descending.
    Engagement,
}

impl ViewerSort {
    pub const ALL: [ViewerSort; 4] = [
        ViewerSort::Watch,
        ViewerSort::Name,
        ViewerSort::Joined,
        ViewerSort::Engagement,
    ];

    /// `watch`, `name`, `joined` or `engagement`, in any letter case.
    pub fn parse(text: &str) -> Result<ViewerSort, AnalyticsError> {
        let wanted = text.trim();
        ViewerSort::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                bad_request(format!(
                    "unknown viewer sort {text:?}: use watch (the default), name, joined or engagement"
                ))
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ViewerSort::Watch => "watch",
            ViewerSort::Name => "name",
            ViewerSort::Joined => "joined",
            ViewerSort::Engagement => "engagement",
        }
    }
}

/// Sort order of the presentation list; ties are broken by `presentationId`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PresentationSort {
    /// `startedAt` descending, never-started last (the default).
    #[default]
    Started,
    /// `uniqueViewers` descending.
    Viewers,
    /// `title` ascending, case-insensitive, missing titles last.
    Title,
}

impl PresentationSort {
    pub const ALL: [PresentationSort; 3] = [
        PresentationSort::Started,
        PresentationSort::Viewers,
        PresentationSort::Title,
    ];

    /// `started`, `viewers` or `title`, in any letter case.
    pub fn parse(text: &str) -> Result<PresentationSort, AnalyticsError> {
        let wanted = text.trim();
        PresentationSort::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                bad_request(format!(
                    "unknown presentation sort {text:?}: use started (the default), viewers or title"
                ))
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PresentationSort::Started => "started",
            PresentationSort::Viewers => "viewers",
            PresentationSort::Title => "title",
        }
    }
}

/// Filters, sort and page of a viewer list (ANALYTICS.md §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerQuery {
    /// Exact; `unknown` matches viewers without a department.
    pub department: Option<String>,
    /// Any letter case.
    pub country: Option<String>,
    /// Exact (`desktop`, `mobile`, `tablet`, `tv` or `unknown`).
    pub device: Option<String>,
    /// Case-insensitive substring of the name or the email.
    pub search: Option<String>,
    pub sort: ViewerSort,
    /// 1 to [`MAX_LIMIT`].
    pub limit: u32,
    pub offset: u64,
}

impl Default for ViewerQuery {
    fn default() -> ViewerQuery {
        ViewerQuery {
            department: None,
            country: None,
            device: None,
            search: None,
            sort: ViewerSort::default(),
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

/// Filters, sort and page of a presentation list (ANALYTICS.md §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentationQuery {
    /// Case-insensitive substring of the title.
    pub search: Option<String>,
    /// `scheduledStart >= from`, in ms since the epoch (see [`parse_date`]).
    pub from: Option<i64>,
    /// `scheduledStart <= to`, in ms since the epoch (see [`parse_date_to`]).
    pub to: Option<i64>,
    pub sort: PresentationSort,
    /// 1 to [`MAX_LIMIT`].
    pub limit: u32,
    pub offset: u64,
}

impl Default for PresentationQuery {
    fn default() -> PresentationQuery {
        PresentationQuery {
            search: None,
            from: None,
            to: None,
            sort: PresentationSort::default(),
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

/// A page size: missing or blank is [`DEFAULT_LIMIT`]; otherwise a whole
/// number from 1 to [`MAX_LIMIT`].
pub fn parse_limit(text: Option<&str>) -> Result<u32, AnalyticsError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(DEFAULT_LIMIT);
    };
    let Ok(limit) = text.parse::<i128>() else {
        return Err(bad_request(format!(
            "limit must be a whole number from 1 to {MAX_LIMIT}, got {text:?}"
        )));
    };
    let limit = u32::try_from(limit).unwrap_or(u32::MAX);
    check_limit(limit)?;
    Ok(limit)
}

/// A number of rows to skip: missing or blank is 0; otherwise a whole number
/// of at least 0.
pub fn parse_offset(text: Option<&str>) -> Result<u64, AnalyticsError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(0);
    };
    match text.parse::<i128>() {
        Ok(n) if n < 0 => Err(bad_request(format!("offset must be 0 or more, got {text}"))),
        Ok(n) => u64::try_from(n)
            .map_err(|_| bad_request(format!("offset {text} is too large: at most {}", u64::MAX))),
        Err(_) => Err(bad_request(format!(
            "offset must be a whole number of 0 or more, got {text:?}"
        ))),
    }
}

fn check_limit(limit: u32) -> Result<(), AnalyticsError> {
    if limit == 0 {
        return Err(bad_request(format!(
            "limit must be at least 1 (and at most {MAX_LIMIT})"
        )));
    }
    if limit > MAX_LIMIT {
        return Err(bad_request(format!(
            "limit {limit} is too large: at most {MAX_LIMIT} rows per page, use offset for more"
        )));
    }
    Ok(())
}

const MS_PER_DAY: i64 = 86_400_000;

/// A date for a `from` bound, as ms since the epoch: RFC 3339
/// (`2021-09-10T12:45:01Z`, `2021-09-10T14:45:01.5+02:00`) as given, or a
/// plain `YYYY-MM-DD` as that UTC day's first millisecond.
pub fn parse_date(text: &str) -> Result<i64, AnalyticsError> {
    match parse_plain_date(text.trim())? {
        Some(day) => Ok(day * MS_PER_DAY),
        None => parse_instant(text),
    }
}

/// A date for a `to` bound: as [`parse_date`], except that a plain
/// `YYYY-MM-DD` means that UTC day's last millisecond, so that an inclusive
/// `to` includes the whole day.
pub fn parse_date_to(text: &str) -> Result<i64, AnalyticsError> {
    match parse_plain_date(text.trim())? {
        Some(day) => Ok(day * MS_PER_DAY + MS_PER_DAY - 1),
        None => parse_instant(text),
    }
}

const DATE_FORMS: &str =
    "use YYYY-MM-DD (a UTC day) or an RFC 3339 date-time such as 2021-09-10T12:45:01Z";

/// Days since the epoch of a `YYYY-MM-DD`; `None` when `text` is not of that
/// shape (it may then be a date-time).
fn parse_plain_date(text: &str) -> Result<Option<i64>, AnalyticsError> {
    let b = text.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Ok(None);
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().unwrap_or(0);
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    if !(1..=12).contains(&month) {
        return Err(bad_request(format!(
            "malformed date {text:?}: month must be 01 to 12; {DATE_FORMS}"
        )));
    }
    if day < 1 || day > crate::contract::days_in_month(i64::from(year), month) {
        return Err(bad_request(format!(
            "malformed date {text:?}: day is out of range for the month; {DATE_FORMS}"
        )));
    }
    Ok(Some(crate::contract::days_from_civil(
        i64::from(year),
        month,
        day,
    )))
}

fn parse_instant(text: &str) -> Result<i64, AnalyticsError> {
    crate::contract::parse_rfc3339(text.trim())
        .map_err(|why| bad_request(format!("malformed date {text:?} ({why}); {DATE_FORMS}")))
}

// ---------------------------------------------------------------------------
// SQL building blocks
// ---------------------------------------------------------------------------

/// `col = 'value'`, exactly: the `=` uses the column's index, the binary
/// comparison removes PAD SPACE's trailing-blank equality.
fn exact_eq(column: &str, value: &str) -> String {
    let literal = str_literal(value);
    format!("({column} = {literal} AND CAST({column} AS BINARY) = CAST({literal} AS BINARY))")
}

/// Byte order of a text expression (Rust's `str` order).
fn bytes(expr: &str) -> String {
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
fn contains_ci(column: &str, search: &str) -> String {
    format!(
        "LOWER({column}) LIKE LOWER({}) ESCAPE '!'",
        like_pattern(search)
    )
}

/// The condition on `dim_presentation p` that scopes a query: the tenant
/// (always), and the presentations asked for.
struct Scope {
    condition: String,
}

impl Scope {
    fn one(tenant_id: &str, key: u64) -> Scope {
        Scope {
            condition: format!(
                "p.presentation_key = {key} AND {}",
                exact_eq("p.tenant_id", tenant_id)
            ),
        }
    }

    fn keys(tenant_id: &str, keys: &[u64]) -> Scope {
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
fn sessions_cte(scope: &Scope) -> String {
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
const SESSION_END: &str =
    "CASE WHEN p.ended_at_ms IS NOT NULL AND p.ended_at_ms < COALESCE(s.end_ms, s.start_ms) \
     THEN p.ended_at_ms ELSE COALESCE(s.end_ms, s.start_ms) END";

/// A session's `max(0, end − start)` in ms, as an exact DECIMAL.
const DURATION_MS: &str =
    "CASE WHEN end_ms > start_ms THEN CAST(end_ms AS DECIMAL(20,0)) - start_ms ELSE 0 END";

/// `text <> ''` after removing every Unicode `White_Space` character: true
/// exactly when `str::trim` leaves something (SQL `TRIM` only knows spaces,
/// and regular expression classes differ between the two servers).
fn non_blank(column: &str) -> String {
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

// ---------------------------------------------------------------------------
// Reading values
// ---------------------------------------------------------------------------

/// Runs one query; its time is logged at debug level (what the analytics
/// bench's `profile` mode prints).
fn fetch(conn: &mut impl Queryable, sql: &str, what: &str) -> Result<Vec<Row>, AnalyticsError> {
    let started = std::time::Instant::now();
    let rows = conn
        .query::<Row, _>(sql)
        .map_err(|e| AnalyticsError::Database(format!("{what}: {e}")))?;
    tracing::debug!(
        what,
        rows = rows.len(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "analytics query"
    );
    Ok(rows)
}

/// Column `index` of `row` as `T`.
fn take<T: FromValue>(row: &mut Row, index: usize) -> Result<T, AnalyticsError> {
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
fn stream<Q: Queryable>(
    conn: &mut Q,
    sql: String,
) -> mysql::Result<mysql::QueryResult<'_, '_, '_, mysql::Binary>> {
    conn.exec_iter(sql, ())
}

/// Column `index` of `row` as bytes, borrowed (no copy per row); `None`
/// for NULL.
fn bytes_at(row: &Row, index: usize) -> Option<&[u8]> {
    match row.as_ref(index) {
        Some(mysql::Value::Bytes(bytes)) => Some(bytes),
        _ => None,
    }
}

/// A non-negative whole number that may exceed `i64` (sums of durations),
/// read from its decimal text; NULL is 0.
fn take_big(row: &mut Row, index: usize) -> Result<i128, AnalyticsError> {
    let text: Option<String> = take(row, index)?;
    let Some(text) = text else { return Ok(0) };
    let whole = text.split('.').next().unwrap_or("");
    whole
        .parse::<i128>()
        .map_err(|_| AnalyticsError::Database(format!("not a whole number: {text:?}")))
}

fn take_string(row: &mut Row, index: usize) -> Result<String, AnalyticsError> {
    let bytes: Option<Vec<u8>> = take(row, index)?;
    Ok(bytes
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default())
}

fn take_opt_string(row: &mut Row, index: usize) -> Result<Option<String>, AnalyticsError> {
    let bytes: Option<Vec<u8>> = take(row, index)?;
    Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

// ---------------------------------------------------------------------------
// 1. Presentation report
// ---------------------------------------------------------------------------

struct PresentationDim {
    key: u64,
    revision: u64,
    title: Option<String>,
    presenter: Option<Presenter>,
    scheduled_start_ms: Option<i64>,
    started_at_ms: Option<i64>,
    ended_at_ms: Option<i64>,
    /// The cached report, when one of this revision and format exists.
    cached_report: Option<String>,
}

/// The presentation of this tenant, or `NotFound`; with its cached report
/// when `with_cache` and the cache is fresh.
fn find_presentation(
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
           scheduled_start_ms, started_at_ms, ended_at_ms, {cache} \
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
        cached_report: take_opt_string(&mut row, 9)?,
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
    let dim = find_presentation(conn, tenant_id, presentation_id, true)?;
    if let Some(json) = &dim.cached_report {
        match serde_json::from_str::<PresentationReport>(json) {
            Ok(mut report) => {
                report.presentation_id = presentation_id.to_string();
                report.tenant_id = tenant_id.to_string();
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
    };
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

/// `ON DUPLICATE KEY UPDATE` assignments by which a summary row replaces the
/// stored one only when its (source_revision, format_version) is higher.
/// Values are assigned before the columns the condition reads.
fn newer_wins(columns: &[&str]) -> String {
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

fn attendance(conn: &mut impl Queryable, scope: &Scope) -> Result<Attendance, AnalyticsError> {
    let mut attendance = Attendance::default();
    for_each_attendance(conn, scope, true, |_, _, fold| {
        attendance = fold.finish();
    })?;
    Ok(attendance)
}

/// Streams the counted sessions of the presentations in `scope`, one
/// presentation after the other, and calls `done(key, revision, fold)` with
/// each presentation's figures (presentations without sessions are not
/// called). The breakdown columns are read only `with_breakdowns`.
///
/// One range read of `fact_session` in primary-key order, no sort and no
/// temporary table in the database: distinct counts and the peak are
/// computed here, which costs a few bytes per session of the presentation
/// being folded (see `AttendanceFold`).
fn for_each_attendance(
    conn: &mut impl Queryable,
    scope: &Scope,
    with_breakdowns: bool,
    mut done: impl FnMut(u64, u64, AttendanceFold),
) -> Result<(), AnalyticsError> {
    let breakdowns = if with_breakdowns {
        "s.device, s.country, s.department"
    } else {
        "NULL, NULL, NULL"
    };
    let sql = format!(
        "SELECT s.presentation_key, p.revision, s.viewer_key, s.start_ms, {SESSION_END}, {breakdowns} \
         FROM dim_presentation p JOIN fact_session s ON s.presentation_key = p.presentation_key \
         WHERE {} AND s.join_version IS NOT NULL ORDER BY s.presentation_key",
        scope.condition
    );
    let db = |e: mysql::Error| AnalyticsError::Database(format!("reading sessions: {e}"));
    let started = std::time::Instant::now();
    let mut current: Option<(u64, u64, AttendanceFold)> = None;
    for row in stream(conn, sql).map_err(db)? {
        let mut row = row.map_err(db)?;
        let key: u64 = take(&mut row, 0)?;
        let revision: u64 = take(&mut row, 1)?;
        if current.as_ref().is_none_or(|(k, _, _)| *k != key) {
            if let Some((k, r, fold)) = current.take() {
                done(k, r, fold);
            }
            current = Some((key, revision, AttendanceFold::default()));
        }
        if let Some((_, _, fold)) = current.as_mut() {
            let viewer: u64 = take(&mut row, 2)?;
            let start: i64 = take(&mut row, 3)?;
            let end: i64 = take(&mut row, 4)?;
            fold.add(viewer, start, end, [5, 6, 7].map(|i| bytes_at(&row, i)));
        }
    }
    if let Some((k, r, fold)) = current {
        done(k, r, fold);
    }
    tracing::debug!(
        what = "folding sessions",
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "analytics query"
    );
    Ok(())
}

/// The attendance of one presentation, folded from its sessions in any
/// order: per session, its viewer (numbered densely), and the breakdown
/// values it has; a viewer's first value per breakdown is kept per viewer,
/// any other value in a set, so distinct counts need no set in the common
/// case of one value per viewer.
#[derive(Default)]
struct AttendanceFold {
    sessions: i64,
    watch_ms: i128,
    /// viewer_key → dense viewer number.
    viewers: HashMap<u64, u32>,
    /// Sessions of positive length: (start, end, viewer number).
    intervals: Vec<(i64, i64, u32)>,
    /// Per breakdown: value bytes → value number, and the values' names.
    values: [HashMap<Vec<u8>, u32>; 3],
    /// Per viewer and breakdown, the number of the first value seen.
    first_values: Vec<[u32; 3]>,
    /// (breakdown, value, viewer) beyond each viewer's first value.
    other_values: std::collections::HashSet<(u8, u32, u32)>,
}

impl AttendanceFold {
    fn add(&mut self, viewer_key: u64, start: i64, end: i64, values: [Option<&[u8]>; 3]) {
        self.sessions += 1;
        self.watch_ms += (i128::from(end) - i128::from(start)).max(0);
        let next = self.viewers.len() as u32;
        let viewer = *self.viewers.entry(viewer_key).or_insert(next);
        if end > start {
            self.intervals.push((start, end, viewer));
        }
        let mut numbers = [0u32; 3];
        for (kind, value) in values.into_iter().enumerate() {
            // Stored normalised; missing is `unknown`.
            let value = value.unwrap_or(UNKNOWN.as_bytes());
            let map = &mut self.values[kind];
            numbers[kind] = match map.get(value) {
                Some(&n) => n,
                None => {
                    let n = map.len() as u32;
                    map.insert(value.to_vec(), n);
                    n
                }
            };
        }
        if viewer == next {
            self.first_values.push(numbers);
        } else {
            let first = self.first_values[viewer as usize];
            for kind in 0..3 {
                if numbers[kind] != first[kind] {
                    self.other_values
                        .insert((kind as u8, numbers[kind], viewer));
                }
            }
        }
    }

    fn unique_viewers(&self) -> i64 {
        self.viewers.len() as i64
    }

    /// Greatest number of distinct viewers with a session `start ≤ t < end`
    /// at one instant `t`: a sweep over the starts and ends in time order,
    /// ends first at equal times (a session ending at t is gone at t),
    /// counting a viewer while at least one of their sessions is open.
    fn peak(&mut self) -> i64 {
        let mut points: Vec<(i64, bool, u32)> = Vec::with_capacity(self.intervals.len() * 2);
        for &(start, end, viewer) in &self.intervals {
            points.push((start, true, viewer));
            points.push((end, false, viewer));
        }
        points.sort_unstable();
        let mut open = vec![0u32; self.viewers.len()];
        let (mut present, mut peak) = (0i64, 0i64);
        for (_, starts, viewer) in points {
            let n = &mut open[viewer as usize];
            if starts {
                *n += 1;
                if *n == 1 {
                    present += 1;
                    peak = peak.max(present);
                }
            } else {
                *n -= 1;
                if *n == 0 {
                    present -= 1;
                }
            }
        }
        peak
    }

    fn finish(mut self) -> Attendance {
        let peak = self.peak();
        let viewers = self.unique_viewers();
        let mut counts: [Vec<i64>; 3] = std::array::from_fn(|k| vec![0; self.values[k].len()]);
        for first in &self.first_values {
            for kind in 0..3 {
                counts[kind][first[kind] as usize] += 1;
            }
        }
        for &(kind, value, _) in &self.other_values {
            counts[kind as usize][value as usize] += 1;
        }
        let [by_device, by_country, by_department] = std::array::from_fn(|kind| {
            std::mem::take(&mut self.values[kind])
                .into_iter()
                .map(|(name, n)| {
                    (
                        String::from_utf8_lossy(&name).into_owned(),
                        counts[kind][n as usize],
                    )
                })
                .collect::<BTreeMap<String, i64>>()
        });
        Attendance {
            unique_viewers: viewers,
            sessions: self.sessions,
            total_watch_seconds: floor_seconds(self.watch_ms),
            average_watch_seconds: average_seconds_1dp(self.watch_ms, viewers).unwrap_or(0.0),
            peak_concurrent_viewers: peak,
            by_device,
            by_country,
            by_department,
        }
    }
}

/// A reported poll as `PollCreated` defined it.
struct PollDim {
    poll_id: String,
    question: String,
    multiple_choice: bool,
    closed_at_ms: Option<i64>,
    /// (optionId, text), in `PollCreated` order.
    options: Vec<(String, String)>,
}

/// The reported polls of one presentation with their options, ordered by
/// creation time then pollId.
fn poll_dims(conn: &mut impl Queryable, scope: &Scope) -> Result<Vec<PollDim>, AnalyticsError> {
    let sql = format!(
        "SELECT d.poll_id, d.question, d.multiple_choice, d.closed_at_ms, o.option_id, o.text \
         FROM dim_presentation p \
         JOIN dim_poll d ON d.presentation_key = p.presentation_key \
         LEFT JOIN dim_poll_option o ON o.presentation_key = d.presentation_key \
           AND o.poll_id = d.poll_id AND o.created_version = d.created_version \
         WHERE {} AND d.created_version IS NOT NULL \
         ORDER BY d.created_at_ms, {}, o.position",
        scope.condition,
        bytes("d.poll_id")
    );
    let mut polls: Vec<PollDim> = Vec::new();
    for mut row in fetch(conn, &sql, "reading polls")? {
        let poll_id = take_string(&mut row, 0)?;
        if polls.last().is_none_or(|p| p.poll_id != poll_id) {
            polls.push(PollDim {
                poll_id,
                question: take_string(&mut row, 1)?,
                multiple_choice: take::<Option<bool>>(&mut row, 2)?.unwrap_or(false),
                closed_at_ms: take(&mut row, 3)?,
                options: Vec::new(),
            });
        }
        if let Some(option_id) = take_opt_string(&mut row, 4)? {
            let text = take_string(&mut row, 5)?;
            if let Some(poll) = polls.last_mut() {
                poll.options.push((option_id, text));
            }
        }
    }
    Ok(polls)
}

/// `text` as a binary string constant, `X'…'` (the bytes of its UTF-8): a
/// `CAST('text' AS BINARY)` would be evaluated again for every row.
fn bytes_literal(text: &str) -> String {
    let mut literal = String::new();
    crate::store::push_hex_literal(&mut literal, text.as_bytes());
    literal
}

/// `CASE CAST(expr AS BINARY) WHEN … THEN … END` over (text, SQL value) arms:
/// an exact, literal lookup table (NULL when nothing matches).
fn case_of(expr: &str, arms: impl IntoIterator<Item = (String, String)>) -> String {
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

/// `eff` (poll_id, viewer_key, version): each viewer's effective vote in
/// the reported `polls` of presentation `key`, the highest version at or
/// before the poll's closing. The polls' definitions are few and already
/// read, so their close times are inlined as a literal lookup table and the
/// statement only reads the votes, grouped in index order.
fn effective_votes_cte(polls: &[PollDim], key: u64) -> String {
    let mut ids = String::new();
    for (i, poll) in polls.iter().enumerate() {
        if i > 0 {
            ids.push(',');
        }
        push_str_literal(&mut ids, &poll.poll_id);
    }
    let closes = case_of(
        "v.poll_id",
        polls.iter().map(|p| {
            let until = p.closed_at_ms.unwrap_or(i64::MAX);
            (p.poll_id.clone(), until.to_string())
        }),
    );
    format!(
        "eff AS (\
           SELECT v.poll_id, v.viewer_key, MAX(v.version) AS version \
           FROM fact_poll_vote v \
           WHERE v.presentation_key = {key} AND v.poll_id IN ({ids}) AND v.occurred_at_ms <= {closes} \
           GROUP BY v.poll_id, v.viewer_key)"
    )
}

/// `pa` (viewer_key, n): the number of reported polls where each viewer is
/// a respondent, i.e. whose effective vote names at least one option of the
/// poll (the rule of `PollFold`: a single-choice vote keeps its first
/// valid option, which exists exactly when any does).
fn polls_answered_ctes(polls: &[PollDim], key: u64) -> String {
    let valid = case_of(
        "e.poll_id",
        polls.iter().map(|p| {
            let arms = p
                .options
                .iter()
                .map(|(id, _)| (id.clone(), "1".to_string()));
            (p.poll_id.clone(), case_of("vo.option_id", arms))
        }),
    );
    format!(
        "{}, pa AS (\
           SELECT e.viewer_key, COUNT(*) AS n FROM eff e \
           WHERE EXISTS (SELECT 1 FROM fact_poll_vote_option vo \
             WHERE vo.presentation_key = {key} AND vo.version = e.version AND {valid} = 1) \
           GROUP BY e.viewer_key)",
        effective_votes_cte(polls, key)
    )
}

fn polls(
    conn: &mut impl Queryable,
    scope: &Scope,
    key: u64,
) -> Result<Vec<PollReport>, AnalyticsError> {
    let dims = poll_dims(conn, scope)?;
    let mut fold = PollFold::new(&dims);
    if !dims.is_empty() {
        fold.read(conn, &dims, key)?;
    }
    Ok(dims
        .into_iter()
        .zip(fold.respondents.into_iter().zip(fold.votes))
        .map(|(poll, (respondents, votes))| PollReport {
            options: poll
                .options
                .into_iter()
                .zip(votes)
                .map(|((option_id, text), votes)| PollOption {
                    option_id,
                    text,
                    votes,
                })
                .collect(),
            poll_id: poll.poll_id,
            question: poll.question,
            multiple_choice: poll.multiple_choice,
            closed_at: format_time_opt(poll.closed_at_ms),
            respondents,
        })
        .collect())
}

/// Poll figures, folded from the effective votes (one entry each) and a
/// range read of the presentation's vote options in primary-key order (by
/// vote, in the vote's order; no join and no sort in the database).
struct PollFold {
    respondents: Vec<i64>,
    /// Per poll, votes per option (in `PollCreated` order).
    votes: Vec<Vec<i64>>,
}

impl PollFold {
    fn new(polls: &[PollDim]) -> PollFold {
        PollFold {
            respondents: vec![0; polls.len()],
            votes: polls.iter().map(|p| vec![0; p.options.len()]).collect(),
        }
    }

    fn read(
        &mut self,
        conn: &mut impl Queryable,
        polls: &[PollDim],
        key: u64,
    ) -> Result<(), AnalyticsError> {
        let db = |e: mysql::Error| AnalyticsError::Database(format!("counting votes: {e}"));
        let started = std::time::Instant::now();
        // Polls and option ids are sent back as their numbers here (no text
        // to copy per row); the options of no poll are left out.
        let mut ids: Vec<&str> = Vec::new();
        for (id, _) in polls.iter().flat_map(|p| &p.options) {
            if !ids.contains(&id.as_str()) {
                ids.push(id);
            }
        }
        let numbers: Vec<Vec<usize>> = polls
            .iter()
            .map(|p| {
                p.options
                    .iter()
                    .map(|(id, _)| ids.iter().position(|i| i == id).unwrap_or(0))
                    .collect()
            })
            .collect();
        let sql = format!(
            "WITH {} SELECT {}, version FROM eff",
            effective_votes_cte(polls, key),
            case_of(
                "poll_id",
                polls
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (p.poll_id.clone(), i.to_string()))
            )
        );
        let mut effective: HashMap<i64, usize> = HashMap::new();
        for row in stream(conn, sql).map_err(db)? {
            let mut row = row.map_err(db)?;
            let poll: Option<usize> = take(&mut row, 0)?;
            let version: i64 = take(&mut row, 1)?;
            if let Some(poll) = poll {
                effective.insert(version, poll);
            }
        }
        if ids.is_empty() {
            return Ok(()); // no vote can name an option
        }
        let listed: Vec<String> = ids.iter().map(|id| bytes_literal(id)).collect();
        let sql = format!(
            "SELECT version, {} FROM fact_poll_vote_option \
             WHERE presentation_key = {key} AND {} IN ({}) ORDER BY version, position",
            case_of(
                "option_id",
                ids.iter()
                    .enumerate()
                    .map(|(n, id)| (id.to_string(), n.to_string()))
            ),
            bytes("option_id"),
            listed.join(",")
        );
        // The vote being read: its version, poll and valid options so far.
        let mut vote: Option<(i64, usize, Vec<usize>)> = None;
        for row in stream(conn, sql).map_err(db)? {
            let mut row = row.map_err(db)?;
            let version: i64 = take(&mut row, 0)?;
            if vote.as_ref().is_none_or(|(v, _, _)| *v != version) {
                if let Some((_, poll, valid)) = vote.take() {
                    self.count(&numbers[poll], poll, &valid);
                }
                let Some(&poll) = effective.get(&version) else {
                    continue;
                };
                vote = Some((version, poll, Vec::new()));
            }
            let Some((_, poll, valid)) = vote.as_mut() else {
                continue;
            };
            let option: usize = take(&mut row, 1)?;
            // Each option of the poll once; a single-choice vote keeps its
            // first.
            if numbers[*poll].contains(&option)
                && !valid.contains(&option)
                && (polls[*poll].multiple_choice || valid.is_empty())
            {
                valid.push(option);
            }
        }
        if let Some((_, poll, valid)) = vote {
            self.count(&numbers[poll], poll, &valid);
        }
        tracing::debug!(
            what = "folding votes",
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "analytics query"
        );
        Ok(())
    }

    /// One effective vote of poll `index` with these valid options (by
    /// number; `numbers` are those of the poll's options, in order).
    fn count(&mut self, numbers: &[usize], index: usize, valid: &[usize]) {
        if valid.is_empty() {
            return;
        }
        self.respondents[index] += 1;
        for (votes, number) in self.votes[index].iter_mut().zip(numbers) {
            if valid.contains(number) {
                *votes += 1;
            }
        }
    }
}

/// An option of a choice question.
struct ChoiceDim {
    position: i64,
    option_id: String,
    text: String,
}

struct QuestionDim {
    position: i64,
    question_id: String,
    kind: String,
    text: String,
    scale: i64,
}

fn surveys(
    conn: &mut impl Queryable,
    scope: &Scope,
    key: u64,
) -> Result<Vec<SurveyReport>, AnalyticsError> {
    let sql = format!(
        "SELECT d.survey_id, d.title FROM dim_presentation p \
         JOIN dim_survey d ON d.presentation_key = p.presentation_key \
         WHERE {} AND d.created_version IS NOT NULL \
         ORDER BY d.created_at_ms, {}",
        scope.condition,
        bytes("d.survey_id")
    );
    let mut surveys = Vec::new();
    for mut row in fetch(conn, &sql, "reading surveys")? {
        surveys.push((
            SurveyReport {
                survey_id: take_string(&mut row, 0)?,
                title: take_string(&mut row, 1)?,
                responses: 0,
                questions: Vec::new(),
            },
            Vec::<QuestionDim>::new(),
        ));
    }
    if surveys.is_empty() {
        return Ok(Vec::new());
    }
    let index: HashMap<String, usize> = surveys
        .iter()
        .enumerate()
        .map(|(i, (s, _))| (s.survey_id.clone(), i))
        .collect();

    // The questions, in SurveyCreated order.
    let sql = format!(
        "SELECT d.survey_id, q.position, q.question_id, q.kind, q.text, q.scale \
         FROM dim_presentation p \
         JOIN dim_survey d ON d.presentation_key = p.presentation_key \
         JOIN dim_survey_question q ON q.presentation_key = d.presentation_key \
           AND q.survey_id = d.survey_id AND q.created_version = d.created_version \
         WHERE {} AND d.created_version IS NOT NULL \
         ORDER BY {}, q.position",
        scope.condition,
        bytes("d.survey_id")
    );
    let mut any_choice = false;
    for mut row in fetch(conn, &sql, "reading survey questions")? {
        let survey_id = take_string(&mut row, 0)?;
        let question = QuestionDim {
            position: take(&mut row, 1)?,
            question_id: take_string(&mut row, 2)?,
            kind: take_string(&mut row, 3)?,
            text: take_string(&mut row, 4)?,
            scale: take(&mut row, 5)?,
        };
        any_choice |= question.kind == "choice";
        if let Some(&i) = index.get(&survey_id) {
            surveys[i].1.push(question);
        }
    }

    // The options of choice questions: (survey, question position) → options.
    let mut options: HashMap<(String, i64), Vec<ChoiceDim>> = HashMap::new();
    if any_choice {
        let sql = format!(
            "SELECT o.survey_id, o.question_position, o.position, o.option_id, o.text \
             FROM dim_presentation p \
             JOIN dim_survey d ON d.presentation_key = p.presentation_key \
             JOIN dim_survey_question_option o ON o.presentation_key = d.presentation_key \
               AND o.survey_id = d.survey_id AND o.created_version = d.created_version \
             WHERE {} AND d.created_version IS NOT NULL \
             ORDER BY {}, o.question_position, o.position",
            scope.condition,
            bytes("o.survey_id")
        );
        for mut row in fetch(conn, &sql, "reading survey options")? {
            let survey_id = take_string(&mut row, 0)?;
            let position: i64 = take(&mut row, 1)?;
            let option = ChoiceDim {
                position: take(&mut row, 2)?,
                option_id: take_string(&mut row, 3)?,
                text: take_string(&mut row, 4)?,
            };
            options
                .entry((survey_id, position))
                .or_default()
                .push(option);
        }
    }

    let (responses, mut figures) = {
        let mut fold = SurveyFold::new(&surveys, &options);
        fold.read(conn, key)?;
        (fold.responses, fold.figures)
    };

    let mut reports = Vec::with_capacity(surveys.len());
    for (i, (mut survey, questions)) in surveys.into_iter().enumerate() {
        survey.responses = responses[i];
        for (q, f) in questions.into_iter().zip(std::mem::take(&mut figures[i])) {
            let key = (survey.survey_id.clone(), q.position);
            let detail = match q.kind.as_str() {
                "rating" => {
                    let mut distribution: BTreeMap<i64, i64> =
                        (1..=q.scale.min(MAX_DISTRIBUTION_KEYS))
                            .map(|k| (k, 0))
                            .collect();
                    let sum: i128 = f
                        .ratings
                        .iter()
                        .map(|(r, n)| i128::from(*r) * i128::from(*n))
                        .sum();
                    distribution.extend(f.ratings);
                    SurveyQuestionDetail::Rating {
                        average_rating: average_2dp(sum, f.answered),
                        distribution,
                    }
                }
                "choice" => {
                    let options = options
                        .get(&key)
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .map(|o| SurveyOptionCount {
                            option_id: o.option_id.clone(),
                            text: o.text.clone(),
                            count: f.option_counts.get(&o.position).copied().unwrap_or(0),
                        })
                        .collect();
                    SurveyQuestionDetail::Choice { options }
                }
                _ => SurveyQuestionDetail::Text,
            };
            survey.questions.push(SurveyQuestionReport {
                question_id: q.question_id,
                text: q.text,
                answered: f.answered,
                detail,
            });
        }
        reports.push(survey);
    }
    Ok(reports)
}

/// What one survey question received from the effective responses.
#[derive(Default)]
struct QuestionFigures {
    /// Responses with a valid answer to the question.
    answered: i64,
    /// Rating value → responses (rating questions).
    ratings: BTreeMap<i64, i64>,
    /// Option position → responses choosing it (choice questions).
    option_counts: HashMap<i64, i64>,
}

/// (survey, question, positions of the options chosen so far).
type ChoiceAnswer = (usize, usize, Vec<i64>);

/// The survey figures, folded from three range reads of the presentation's
/// responses, answers and chosen options (answers in primary-key order, so
/// no sort in the database, and no join per answer). Holds one entry per
/// effective response and per first answer to a choice question.
struct SurveyFold<'d> {
    /// Survey id → position in the report.
    surveys: HashMap<&'d str, usize>,
    /// Per survey: question id → the questions with that id.
    question_ids: Vec<HashMap<&'d str, Vec<usize>>>,
    /// Per survey and question: its definition and (choice) options.
    questions: Vec<Vec<(&'d QuestionDim, &'d [ChoiceDim])>>,
    /// Effective response version → survey.
    effective: HashMap<i64, usize>,
    responses: Vec<i64>,
    /// First answers to choice questions, (version, answer position) →
    /// the questions they answer.
    choices: HashMap<(i64, i64), Vec<ChoiceAnswer>>,
    figures: Vec<Vec<QuestionFigures>>,
}

impl<'d> SurveyFold<'d> {
    fn new(
        surveys: &'d [(SurveyReport, Vec<QuestionDim>)],
        options: &'d HashMap<(String, i64), Vec<ChoiceDim>>,
    ) -> SurveyFold<'d> {
        let mut fold = SurveyFold {
            surveys: HashMap::new(),
            question_ids: Vec::new(),
            questions: Vec::new(),
            effective: HashMap::new(),
            responses: vec![0; surveys.len()],
            choices: HashMap::new(),
            figures: Vec::new(),
        };
        for (i, (survey, dims)) in surveys.iter().enumerate() {
            fold.surveys.insert(survey.survey_id.as_str(), i);
            let mut ids: HashMap<&str, Vec<usize>> = HashMap::new();
            let mut defs = Vec::new();
            for (q, dim) in dims.iter().enumerate() {
                ids.entry(dim.question_id.as_str()).or_default().push(q);
                let choices = options
                    .get(&(survey.survey_id.clone(), dim.position))
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                defs.push((dim, choices));
            }
            fold.question_ids.push(ids);
            fold.questions.push(defs);
            fold.figures
                .push(dims.iter().map(|_| QuestionFigures::default()).collect());
        }
        fold
    }

    fn read(&mut self, conn: &mut impl Queryable, key: u64) -> Result<(), AnalyticsError> {
        let db = |e: mysql::Error| AnalyticsError::Database(format!("reading survey answers: {e}"));
        let started = std::time::Instant::now();
        // Each viewer's effective response to each reported survey: the
        // highest version of their submissions.
        // Grouped in the order of ix_survey_response_survey, which holds the
        // versions too; survey ids are matched exactly (byte for byte).
        let mut surveys: Vec<(&str, usize)> =
            self.surveys.iter().map(|(&id, &i)| (id, i)).collect();
        surveys.sort_unstable_by_key(|&(_, i)| i);
        let ids: Vec<String> = surveys.iter().map(|(id, _)| bytes_literal(id)).collect();
        let ids = ids.join(",");
        let sql = format!(
            "SELECT {}, MAX(r.version) FROM fact_survey_response r \
             WHERE r.presentation_key = {key} AND {} IN ({ids}) \
             GROUP BY r.survey_id, r.viewer_key",
            bytes("r.survey_id"),
            bytes("r.survey_id")
        );
        for row in stream(conn, sql).map_err(db)? {
            let mut row = row.map_err(db)?;
            let survey_id = take_string(&mut row, 0)?;
            let version: i64 = take(&mut row, 1)?;
            if let Some(&survey) = self.surveys.get(survey_id.as_str()) {
                self.effective.insert(version, survey);
                self.responses[survey] += 1;
            }
        }

        // Answers in submission order, so that the first answer to a
        // question is the first seen; question ids are sent back as their
        // numbers in `ids` (no text to copy per row), answers to no known
        // question are left out (they are ignored).
        let mut ids: Vec<&str> = Vec::new();
        for (dim, _) in self.questions.iter().flatten() {
            if !ids.contains(&dim.question_id.as_str()) {
                ids.push(&dim.question_id);
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        let listed: Vec<String> = ids.iter().map(|id| bytes_literal(id)).collect();
        let sql = format!(
            "SELECT a.version, {}, a.position, a.rating, {} \
             FROM fact_survey_answer a WHERE a.presentation_key = {key} AND {} IN ({}) \
             ORDER BY a.version, a.position",
            case_of(
                "a.question_id",
                ids.iter()
                    .enumerate()
                    .map(|(n, id)| (id.to_string(), n.to_string()))
            ),
            non_blank("a.text_answer"),
            bytes("a.question_id"),
            listed.join(",")
        );
        let mut response: Option<i64> = None;
        let mut answered: Vec<usize> = Vec::new();
        for row in stream(conn, sql).map_err(db)? {
            let mut row = row.map_err(db)?;
            let version: i64 = take(&mut row, 0)?;
            let Some(&survey) = self.effective.get(&version) else {
                continue;
            };
            if response != Some(version) {
                response = Some(version);
                answered.clear();
            }
            let number: usize = take(&mut row, 1)?;
            let Some(questions) = ids
                .get(number)
                .and_then(|id| self.question_ids[survey].get(id))
            else {
                continue; // a question of another survey
            };
            let position: i64 = take(&mut row, 2)?;
            let rating: Option<i64> = take(&mut row, 3)?;
            let text: Option<bool> = take(&mut row, 4)?;
            for &q in questions {
                if answered.contains(&q) {
                    continue; // only the first answer counts
                }
                answered.push(q);
                let (dim, _) = self.questions[survey][q];
                let f = &mut self.figures[survey][q];
                match dim.kind.as_str() {
                    "rating" => {
                        if let Some(r) = rating.filter(|r| (1..=dim.scale).contains(r)) {
                            f.answered += 1;
                            *f.ratings.entry(r).or_default() += 1;
                        }
                    }
                    "text" => f.answered += i64::from(text == Some(true)),
                    "choice" => self.choices.entry((version, position)).or_default().push((
                        survey,
                        q,
                        Vec::new(),
                    )),
                    _ => {}
                }
            }
        }

        // The options chosen in those answers: each option of the question
        // with a chosen id counts once per answer.
        if !self.choices.is_empty() {
            let sql = format!(
                "SELECT ao.version, ao.answer_position, ao.option_id \
                 FROM fact_survey_answer_option ao WHERE ao.presentation_key = {key}"
            );
            for row in stream(conn, sql).map_err(db)? {
                let mut row = row.map_err(db)?;
                let version: i64 = take(&mut row, 0)?;
                let position: i64 = take(&mut row, 1)?;
                let Some(targets) = self.choices.get_mut(&(version, position)) else {
                    continue;
                };
                let option_id = bytes_at(&row, 2).unwrap_or_default();
                for (survey, q, chosen) in targets {
                    let (_, options) = self.questions[*survey][*q];
                    for o in options
                        .iter()
                        .filter(|o| o.option_id.as_bytes() == option_id)
                    {
                        if !chosen.contains(&o.position) {
                            chosen.push(o.position);
                        }
                    }
                }
            }
            for (survey, q, chosen) in self.choices.drain().flat_map(|(_, t)| t) {
                let f = &mut self.figures[survey][q];
                f.answered += i64::from(!chosen.is_empty());
                for position in chosen {
                    *f.option_counts.entry(position).or_default() += 1;
                }
            }
        }
        tracing::debug!(
            what = "folding survey answers",
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "analytics query"
        );
        Ok(())
    }
}

fn qna(conn: &mut impl Queryable, scope: &Scope) -> Result<QnaReport, AnalyticsError> {
    let sql = format!(
        "SELECT COUNT(*), \
           COALESCE(SUM(CASE WHEN q.status IS NULL THEN 1 ELSE 0 END), 0), \
           COALESCE(SUM(CASE WHEN q.status = 'answered' THEN 1 ELSE 0 END), 0), \
           COALESCE(SUM(CASE WHEN q.status = 'dismissed' THEN 1 ELSE 0 END), 0), \
           SUM(CASE WHEN q.status = 'answered' AND q.first_answered_at_ms IS NOT NULL \
                 THEN GREATEST(CAST(q.first_answered_at_ms AS DECIMAL(20,0)) - q.asked_at_ms, 0) END), \
           COALESCE(SUM(CASE WHEN q.status = 'answered' AND q.first_answered_at_ms IS NOT NULL \
                 THEN 1 ELSE 0 END), 0), \
           (SELECT COUNT(*) FROM dim_presentation p \
              JOIN dim_question q2 ON q2.presentation_key = p.presentation_key \
              JOIN fact_question_upvote u ON u.presentation_key = q2.presentation_key AND u.question_id = q2.question_id \
              WHERE {c} AND q2.asked_version IS NOT NULL AND u.upvoted) \
         FROM dim_presentation p JOIN dim_question q ON q.presentation_key = p.presentation_key \
         WHERE {c} AND q.asked_version IS NOT NULL",
        c = scope.condition
    );
    let mut rows = fetch(conn, &sql, "computing Q&A")?;
    let mut row = rows
        .pop()
        .ok_or_else(|| AnalyticsError::Database("Q&A returned no row".into()))?;
    let mut report = QnaReport {
        asked: take(&mut row, 0)?,
        open: take_big(&mut row, 1)? as i64,
        answered: take_big(&mut row, 2)? as i64,
        dismissed: take_big(&mut row, 3)? as i64,
        ..QnaReport::default()
    };
    let answer_ms = take_big(&mut row, 4)?;
    let answered_n = take_big(&mut row, 5)? as i64;
    report.upvotes = take(&mut row, 6)?;
    report.average_seconds_to_answer = average_seconds_1dp(answer_ms, answered_n);

    let sql = format!(
        "SELECT q.question_id, q.text, v.viewer_id, q.status, COALESCE(u.n, 0) AS upvotes \
         FROM dim_presentation p JOIN dim_question q ON q.presentation_key = p.presentation_key \
         LEFT JOIN (SELECT u.question_id, COUNT(*) AS n FROM dim_presentation p \
                    JOIN fact_question_upvote u ON u.presentation_key = p.presentation_key \
                    WHERE {c} AND u.upvoted GROUP BY u.question_id) u ON u.question_id = q.question_id \
         LEFT JOIN dim_viewer v ON v.viewer_key = q.asker_viewer_key \
         WHERE {c} AND q.asked_version IS NOT NULL \
         ORDER BY upvotes DESC, q.asked_at_ms, {} LIMIT {TOP_QUESTIONS}",
        bytes("q.question_id"),
        c = scope.condition
    );
    for mut row in fetch(conn, &sql, "ranking questions")? {
        let question_id = take_string(&mut row, 0)?;
        let text = take_string(&mut row, 1)?;
        let asked_by = take_opt_string(&mut row, 2)?;
        let status = match take_opt_string(&mut row, 3)?.as_deref() {
            Some("answered") => QuestionStatus::Answered,
            Some("dismissed") => QuestionStatus::Dismissed,
            _ => QuestionStatus::Open,
        };
        report.top.push(TopQuestion {
            question_id,
            text,
            asked_by,
            upvotes: take(&mut row, 4)?,
            status,
        });
    }
    Ok(report)
}

// ---------------------------------------------------------------------------
// 2. Viewer list
// ---------------------------------------------------------------------------

/// One page of the viewers of a presentation (ANALYTICS.md §2).
pub fn viewer_list(
    conn: &mut impl Queryable,
    tenant_id: &str,
    presentation_id: &str,
    query: &ViewerQuery,
) -> Result<ViewerList, AnalyticsError> {
    check_limit(query.limit)?;
    let dim = find_presentation(conn, tenant_id, presentation_id, false)?;
    let scope = Scope::one(tenant_id, dim.key);
    let polls = poll_dims(conn, &scope)?;
    let polls_answered = if polls.is_empty() {
        "pa AS (SELECT viewer_key, 0 AS n FROM fact_session WHERE FALSE)".to_string()
    } else {
        polls_answered_ctes(&polls, dim.key)
    };
    let base = format!(
        "WITH {sess}, {polls_answered}, \
         agg AS (SELECT viewer_key, COUNT(*) AS sessions, SUM({DURATION_MS}) AS watch_ms, \
                   MIN(start_ms) AS first_ms, MAX(end_ms) AS last_ms \
                 FROM sess GROUP BY viewer_key), \
         sa AS (SELECT r.viewer_key, COUNT(DISTINCT r.survey_id) AS n \
                FROM dim_presentation p \
                JOIN dim_survey d ON d.presentation_key = p.presentation_key \
                JOIN fact_survey_response r ON r.presentation_key = d.presentation_key AND r.survey_id = d.survey_id \
                WHERE {c} AND d.created_version IS NOT NULL GROUP BY r.viewer_key), \
         qa AS (SELECT q.asker_viewer_key AS viewer_key, COUNT(*) AS n \
                FROM dim_presentation p JOIN dim_question q ON q.presentation_key = p.presentation_key \
                WHERE {c} AND q.asked_version IS NOT NULL AND q.asker_viewer_key IS NOT NULL \
                GROUP BY q.asker_viewer_key), \
         vrows AS (SELECT dv.viewer_id, fpv.name, fpv.email, fpv.department, \
                 COALESCE(fpv.country, 'unknown') AS country, COALESCE(fpv.device, 'unknown') AS device, \
                 agg.sessions, agg.watch_ms, FLOOR(agg.watch_ms / 1000) AS watch_s, \
                 agg.first_ms, agg.last_ms, \
                 COALESCE(pa.n, 0) AS polls, COALESCE(sa.n, 0) AS surveys, COALESCE(qa.n, 0) AS questions \
               FROM agg \
               JOIN dim_viewer dv ON dv.viewer_key = agg.viewer_key \
               LEFT JOIN fact_presentation_viewer fpv ON fpv.presentation_key = {key} AND fpv.viewer_key = agg.viewer_key \
               LEFT JOIN pa ON pa.viewer_key = agg.viewer_key \
               LEFT JOIN sa ON sa.viewer_key = agg.viewer_key \
               LEFT JOIN qa ON qa.viewer_key = agg.viewer_key)",
        sess = sessions_cte(&scope),
        c = scope.condition,
        key = dim.key,
    );

    let mut filters = vec!["TRUE".to_string()];
    if let Some(department) = &query.department {
        filters.push(exact_eq("COALESCE(department, 'unknown')", department));
    }
    if let Some(country) = &query.country {
        filters.push(format!(
            "{} = {}",
            bytes("LOWER(country)"),
            bytes(&format!("LOWER({})", str_literal(country)))
        ));
    }
    if let Some(device) = &query.device {
        filters.push(exact_eq("device", device));
    }
    if let Some(search) = query.search.as_deref().filter(|s| !s.is_empty()) {
        filters.push(format!(
            "({} OR {})",
            contains_ci("name", search),
            contains_ci("email", search)
        ));
    }
    let filters = filters.join(" AND ");
    let order = match query.sort {
        ViewerSort::Watch => "watch_s DESC".to_string(),
        ViewerSort::Name => format!("name IS NULL, {}", bytes("LOWER(name)")),
        ViewerSort::Joined => "first_ms".to_string(),
        ViewerSort::Engagement => "(polls + surveys + questions) DESC".to_string(),
    };
    let sql = format!(
        "{base} SELECT viewer_id, name, email, department, country, device, sessions, watch_ms, \
           first_ms, last_ms, polls, surveys, questions, COUNT(*) OVER () AS total \
         FROM vrows WHERE {filters} ORDER BY {order}, {} LIMIT {} OFFSET {}",
        bytes("viewer_id"),
        query.limit,
        query.offset
    );
    let mut total = None;
    let mut viewers = Vec::new();
    for mut row in fetch(conn, &sql, "listing viewers")? {
        viewers.push(ViewerRow {
            viewer_id: take_string(&mut row, 0)?,
            name: take_opt_string(&mut row, 1)?,
            email: take_opt_string(&mut row, 2)?,
            department: take_opt_string(&mut row, 3)?,
            country: take_string(&mut row, 4)?,
            device: take_string(&mut row, 5)?,
            sessions: take(&mut row, 6)?,
            watch_seconds: floor_seconds(take_big(&mut row, 7)?),
            first_joined_at: format_time(take(&mut row, 8)?),
            last_seen_at: format_time(take(&mut row, 9)?),
            polls_answered: take(&mut row, 10)?,
            surveys_submitted: take(&mut row, 11)?,
            questions_asked: take(&mut row, 12)?,
        });
        total = Some(take::<i64>(&mut row, 13)?);
    }
    let total = match total {
        Some(total) => total,
        // An empty page: count separately (an offset past the end still
        // reports how many rows match).
        None if query.offset > 0 => {
            let sql = format!("{base} SELECT COUNT(*) FROM vrows WHERE {filters}");
            let mut rows = fetch(conn, &sql, "counting viewers")?;
            match rows.pop() {
                Some(mut row) => take(&mut row, 0)?,
                None => 0,
            }
        }
        None => 0,
    };
    Ok(ViewerList {
        presentation_id: presentation_id.to_string(),
        total,
        viewers,
    })
}

// ---------------------------------------------------------------------------
// 3. Presentation list and its summaries
// ---------------------------------------------------------------------------

/// One page of a tenant's presentations (ANALYTICS.md §3). Refreshes the
/// tenant's stale summaries first (see [`refresh_summaries`]), then filters,
/// sorts and pages in SQL. It writes the summaries: give it a connection to
/// the primary, outside any transaction of the caller's.
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
    refresh_summaries(conn, tenant_id)?;

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
           COALESCE(a.questions, 0), COUNT(*) OVER () AS total \
         {from_where} ORDER BY {order}, {} LIMIT {} OFFSET {}",
        bytes("p.presentation_id"),
        query.limit,
        query.offset
    );
    let mut total = None;
    let mut presentations = Vec::new();
    for mut row in fetch(conn, &sql, "listing presentations")? {
        presentations.push(PresentationRow {
            presentation_id: take_string(&mut row, 0)?,
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
/// snapshot leaves the summary stale, to be refreshed by the next list.
pub fn refresh_summaries(
    conn: &mut impl Queryable,
    tenant_id: &str,
) -> Result<usize, AnalyticsError> {
    let sql = format!(
        "SELECT p.presentation_key FROM dim_presentation p \
         LEFT JOIN agg_presentation a ON a.presentation_key = p.presentation_key \
         WHERE {} AND (a.presentation_key IS NULL OR a.source_revision < p.revision \
           OR a.format_version <> {FORMAT_VERSION}) \
         ORDER BY p.presentation_key",
        exact_eq("p.tenant_id", tenant_id)
    );
    let stale: Vec<u64> = conn
        .query(sql)
        .map_err(|e| AnalyticsError::Database(format!("finding stale summaries: {e}")))?;
    let mut written = 0;
    for chunk in stale.chunks(REFRESH_CHUNK) {
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
                return Err(AnalyticsError::Database(format!(
                    "writing presentation summaries: {e}"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sorts() {
        assert_eq!(ViewerSort::parse("watch"), Ok(ViewerSort::Watch));
        assert_eq!(ViewerSort::parse(" Name "), Ok(ViewerSort::Name));
        assert_eq!(ViewerSort::parse("JOINED"), Ok(ViewerSort::Joined));
        assert_eq!(ViewerSort::parse("engagement"), Ok(ViewerSort::Engagement));
        let err = ViewerSort::parse("views").unwrap_err();
        assert!(
            matches!(&err, AnalyticsError::BadRequest(m) if m.contains("\"views\"") && m.contains("engagement")),
            "{err}"
        );
        assert_eq!(
            PresentationSort::parse("started"),
            Ok(PresentationSort::Started)
        );
        assert_eq!(
            PresentationSort::parse("Viewers"),
            Ok(PresentationSort::Viewers)
        );
        assert_eq!(
            PresentationSort::parse("title"),
            Ok(PresentationSort::Title)
        );
        assert!(matches!(
            PresentationSort::parse(""),
            Err(AnalyticsError::BadRequest(_))
        ));
        for s in ViewerSort::ALL {
            assert_eq!(ViewerSort::parse(s.as_str()), Ok(s));
        }
        for s in PresentationSort::ALL {
            assert_eq!(PresentationSort::parse(s.as_str()), Ok(s));
        }
    }

    #[test]
    fn parses_limits_and_offsets() {
        assert_eq!(parse_limit(None), Ok(50));
        assert_eq!(parse_limit(Some("")), Ok(50));
        assert_eq!(parse_limit(Some("1")), Ok(1));
        assert_eq!(parse_limit(Some(" 1000 ")), Ok(1000));
        for bad in ["0", "1001", "-1", "ten", "1.5", "99999999999999999999999"] {
            let err = parse_limit(Some(bad)).unwrap_err();
            assert!(
                matches!(&err, AnalyticsError::BadRequest(m) if m.contains("1000") || m.contains("at least 1")),
                "{bad}: {err}"
            );
        }
        assert_eq!(parse_offset(None), Ok(0));
        assert_eq!(parse_offset(Some("250")), Ok(250));
        assert!(
            matches!(parse_offset(Some("-3")), Err(AnalyticsError::BadRequest(m)) if m.contains("0 or more"))
        );
        assert!(matches!(
            parse_offset(Some("x")),
            Err(AnalyticsError::BadRequest(_))
        ));
        assert!(matches!(
            parse_offset(Some("99999999999999999999999")),
            Err(AnalyticsError::BadRequest(_))
        ));
    }

    #[test]
    fn parses_dates() {
        assert_eq!(parse_date("2021-09-10"), Ok(1_631_232_000_000));
        assert_eq!(parse_date_to("2021-09-10"), Ok(1_631_318_399_999));
        assert_eq!(
            parse_date("2021-09-10T12:45:01.123Z"),
            Ok(1_631_277_901_123)
        );
        assert_eq!(
            parse_date_to("2021-09-10T14:45:01.123+02:00"),
            Ok(1_631_277_901_123)
        );
        assert_eq!(parse_date("1970-01-01"), Ok(0));
        assert_eq!(parse_date("2000-02-29"), Ok(951_782_400_000));
        for bad in [
            "",
            "yesterday",
            "2021-13-01",
            "2021-02-30",
            "2021-9-10",
            "2021-09-10T12:00:00",
            "2021-09-10 12:00:00Z",
            "10/09/2021",
        ] {
            let err = parse_date(bad).unwrap_err();
            assert!(
                matches!(&err, AnalyticsError::BadRequest(m) if m.contains("malformed date") && m.contains("YYYY-MM-DD")),
                "{bad}: {err}"
            );
        }
    }

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

    #[test]
    fn attendance_fold_counts_viewers_not_sessions() {
        let mut fold = AttendanceFold::default();
        let desktop: [Option<&[u8]>; 3] = [Some(b"desktop"), Some(b"US"), None];
        let mobile: [Option<&[u8]>; 3] = [Some(b"mobile"), Some(b"US"), Some(b"Sales")];
        // Viewer 1: two overlapping sessions, on two devices.
        fold.add(1, 0, 100, desktop);
        fold.add(1, 50, 150, mobile);
        // Viewer 2: a session ending when viewer 3's starts (never together).
        fold.add(2, 10, 60, desktop);
        fold.add(3, 60, 70, desktop);
        // Viewer 4: zero length, counted as a viewer but never present.
        fold.add(4, 55, 55, mobile);
        let a = fold.finish();
        assert_eq!((a.sessions, a.unique_viewers), (5, 4));
        // 100 + 100 + 50 + 10 + 0 ms.
        assert_eq!(a.total_watch_seconds, 0);
        assert_eq!(a.average_watch_seconds, 0.1);
        // At 55: viewer 1 (twice) and viewer 2; at 60 viewer 2 has left.
        assert_eq!(a.peak_concurrent_viewers, 2);
        let counts = |m: &BTreeMap<String, i64>| -> Vec<(String, i64)> {
            m.iter().map(|(k, v)| (k.clone(), *v)).collect()
        };
        assert_eq!(
            counts(&a.by_device),
            [("desktop".into(), 3), ("mobile".into(), 2)]
        );
        assert_eq!(counts(&a.by_country), [("US".into(), 4)]);
        assert_eq!(
            counts(&a.by_department),
            [("Sales".into(), 2), ("unknown".into(), 3)]
        );
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(
            AnalyticsError::NotFound("p-1".into()).to_string(),
            "presentation \"p-1\" not found"
        );
        assert_eq!(
            AnalyticsError::BadRequest("limit must be at least 1".into()).to_string(),
            "limit must be at least 1"
        );
    }
}
