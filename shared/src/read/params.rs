//! The user's paging, sorting, filtering and date input, shared by the CLI
//! and the HTTP API so that both accept exactly the same inputs: the sorts,
//! the queries, the parsing of `limit` / `offset` / dates, and the parameters
//! as the user wrote them ([`ViewerParams`], [`PresentationParams`]).
//!
//! Decisions where the contract is silent:
//! - Dates: `from` and `to` accept RFC 3339 (`2021-09-10T12:00:00Z`, any
//!   offset, optional fraction) or a plain `YYYY-MM-DD`, a UTC day: as `from`
//!   it means the day's first millisecond ([`parse_date`]), as `to` its last
//!   ([`parse_date_to`]), so `from=to=2021-09-10` is that whole day. Both ends
//!   are inclusive; presentations without a `scheduledStart` are left out
//!   when either bound is given; `from` after `to` is a bad request.
//! - A blank `limit` / `offset` parameter means its default.

use super::error::{bad_request, AnalyticsError};

/// Page size when none is given.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size accepted.
pub const MAX_LIMIT: u32 = 1000;

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
    /// `engagementScore` descending (§5).
    Score,
}

impl ViewerSort {
    pub const ALL: [ViewerSort; 5] = [
        ViewerSort::Watch,
        ViewerSort::Name,
        ViewerSort::Joined,
        ViewerSort::Engagement,
        ViewerSort::Score,
    ];

    /// `watch`, `name`, `joined`, `engagement` or `score`, in any letter case.
    pub fn parse(text: &str) -> Result<ViewerSort, AnalyticsError> {
        let wanted = text.trim();
        ViewerSort::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                bad_request(format!(
                    "unknown viewer sort {text:?}: use watch (the default), name, joined, engagement or score"
                ))
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ViewerSort::Watch => "watch",
            ViewerSort::Name => "name",
            ViewerSort::Joined => "joined",
            ViewerSort::Engagement => "engagement",
            ViewerSort::Score => "score",
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

/// How a viewer list is written: a page of JSON (§2) or every matching row
/// as CSV (§7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ViewerFormat {
    #[default]
    Json,
    Csv,
}

/// `json` (also missing or blank) or `csv`, in any letter case.
pub fn parse_viewer_format(text: Option<&str>) -> Result<ViewerFormat, AnalyticsError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(ViewerFormat::Json),
        Some(t) if t.eq_ignore_ascii_case("json") => Ok(ViewerFormat::Json),
        Some(t) if t.eq_ignore_ascii_case("csv") => Ok(ViewerFormat::Csv),
        Some(t) => Err(bad_request(format!(
            "format: unknown format {t:?}: use json (the default) or csv"
        ))),
    }
}

/// How a timeline is written: the JSON of §4, or drawn as an SVG chart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TimelineFormat {
    #[default]
    Json,
    Svg,
}

/// `json` (also missing or blank) or `svg`, in any letter case.
pub fn parse_timeline_format(text: Option<&str>) -> Result<TimelineFormat, AnalyticsError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(TimelineFormat::Json),
        Some(t) if t.eq_ignore_ascii_case("json") => Ok(TimelineFormat::Json),
        Some(t) if t.eq_ignore_ascii_case("svg") => Ok(TimelineFormat::Svg),
        Some(t) => Err(bad_request(format!(
            "format: unknown format {t:?}: use json (the default) or svg"
        ))),
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

pub(super) fn check_limit(limit: u32) -> Result<(), AnalyticsError> {
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

/// `Some` text unless missing or blank.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

/// The error of a parameter, naming it.
fn named(name: &str, error: AnalyticsError) -> AnalyticsError {
    match error {
        AnalyticsError::BadRequest(m) if !m.starts_with(name) => {
            AnalyticsError::BadRequest(format!("{name}: {m}"))
        }
        other => other,
    }
}

/// The viewer list's parameters as the user wrote them (query string or
/// command line); [`ViewerParams::query`] checks them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewerParams {
    pub department: Option<String>,
    pub country: Option<String>,
    pub device: Option<String>,
    pub search: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<String>,
    pub offset: Option<String>,
}

impl ViewerParams {
    pub const NAMES: [&'static str; 7] = [
        "department",
        "country",
        "device",
        "search",
        "sort",
        "limit",
        "offset",
    ];

    /// The query, or a bad request naming the parameter that is wrong.
    pub fn query(&self) -> Result<ViewerQuery, AnalyticsError> {
        let sort = match given(&self.sort) {
            None => ViewerSort::default(),
            Some(text) => ViewerSort::parse(text).map_err(|e| named("sort", e))?,
        };
        Ok(ViewerQuery {
            department: given(&self.department).map(str::to_string),
            country: given(&self.country).map(str::to_string),
            device: given(&self.device).map(str::to_string),
            search: given(&self.search).map(str::to_string),
            sort,
            limit: parse_limit(self.limit.as_deref()).map_err(|e| named("limit", e))?,
            offset: parse_offset(self.offset.as_deref()).map_err(|e| named("offset", e))?,
        })
    }

    pub(crate) fn set(&mut self, name: &str, value: String) {
        let slot = match name {
            "department" => &mut self.department,
            "country" => &mut self.country,
            "device" => &mut self.device,
            "search" => &mut self.search,
            "sort" => &mut self.sort,
            "limit" => &mut self.limit,
            "offset" => &mut self.offset,
            _ => return,
        };
        *slot = Some(value);
    }
}

/// The presentation list's parameters as the user wrote them;
/// [`PresentationParams::query`] checks them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PresentationParams {
    pub search: Option<String>,
    /// `YYYY-MM-DD` (from the day's start) or RFC 3339.
    pub from: Option<String>,
    /// `YYYY-MM-DD` (to the day's end) or RFC 3339.
    pub to: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<String>,
    pub offset: Option<String>,
}

impl PresentationParams {
    pub const NAMES: [&'static str; 6] = ["search", "from", "to", "sort", "limit", "offset"];

    /// The query, or a bad request naming the parameter that is wrong.
    /// (`from` after `to` is refused by [`crate::read::presentation_list`].)
    pub fn query(&self) -> Result<PresentationQuery, AnalyticsError> {
        let sort = match given(&self.sort) {
            None => PresentationSort::default(),
            Some(text) => PresentationSort::parse(text).map_err(|e| named("sort", e))?,
        };
        Ok(PresentationQuery {
            search: given(&self.search).map(str::to_string),
            from: given(&self.from)
                .map(parse_date)
                .transpose()
                .map_err(|e| named("from", e))?,
            to: given(&self.to)
                .map(parse_date_to)
                .transpose()
                .map_err(|e| named("to", e))?,
            sort,
            limit: parse_limit(self.limit.as_deref()).map_err(|e| named("limit", e))?,
            offset: parse_offset(self.offset.as_deref()).map_err(|e| named("offset", e))?,
        })
    }

    pub(crate) fn set(&mut self, name: &str, value: String) {
        let slot = match name {
            "search" => &mut self.search,
            "from" => &mut self.from,
            "to" => &mut self.to,
            "sort" => &mut self.sort,
            "limit" => &mut self.limit,
            "offset" => &mut self.offset,
            _ => return,
        };
        *slot = Some(value);
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
        assert_eq!(ViewerSort::parse("Score"), Ok(ViewerSort::Score));
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
}
