//! Rollout flags of the analytics API: per tenant and data point
//! (attendance, polls, surveys, qna) a state `off | shadow | on`, kept in the
//! warehouse (`feature_flag`, migration 0005) and set with
//! `warehouse flags set`.
//!
//! What the states mean for the HTTP API (`handlers::api`):
//! - `on`: the data point's sections are served.
//! - `shadow`: served only to requests asking with `?shadow=true` (the
//!   product compares them with its old path); left out otherwise.
//! - `off`: always left out; the product uses its old path.
//!
//! The sections of each data point:
//! - report: `attendance` → the `attendance` object, `polls` → `polls`,
//!   `surveys` → `surveys`, `qna` → `qna`;
//! - presentation list rows: `attendance` → `uniqueViewers`,
//!   `peakConcurrentViewers`, `totalWatchSeconds`; `polls` → `polls`;
//!   `surveys` → `surveys`; `qna` → `questions`;
//! - viewer list (the spec is silent; decided here): its rows are attendance,
//!   so `attendance` → `total` and `viewers` (only `presentationId` is left);
//!   in each row `polls` → `pollsAnswered`, `surveys` → `surveysSubmitted`,
//!   `qna` → `questionsAsked` and `upvotesGiven`; `engagementScore`
//!   combines all four, so it is served only when all four are.
//! - timeline (issue 16: governed by the attendance flag): without
//!   attendance, its figures (`bucketSeconds`, `from`, `to`, `atEnd`,
//!   `buckets`) are left out; `presentationId`, `tenantId` and
//!   `dataThrough` stay, as a viewer list keeps its `presentationId`.
//!
//! Decisions where the rollout plan is silent:
//! - A tenant and data point without a row is [`DEFAULT_STATE`], `on`: the
//!   API behaves as before flags existed until someone turns a flag down.
//! - A stored state that does not parse (the table's CHECK constraint should
//!   make that impossible) counts as `off`: when in doubt the product keeps
//!   its old path.
//! - The presentation's own fields (title, presenter, times) have no flag and
//!   are always served; the CLI ignores flags and always answers in full.
//! - Tenants are matched byte for byte (`tenant_id` is `VARBINARY`).

use std::collections::BTreeMap;

use mysql::prelude::Queryable;
use serde::Serialize;
use serde_json::Value;

use crate::contract::DataPoint;
use crate::contract::{format_time, PresentationList, PresentationReport, Timeline, ViewerList};
use crate::read::AnalyticsError;
use crate::store::str_literal;

/// The data points that have a flag, in the order they are listed.
pub const FLAGGED_DATA_POINTS: [DataPoint; 4] = [
    DataPoint::Attendance,
    DataPoint::Polls,
    DataPoint::Surveys,
    DataPoint::Qna,
];

/// The state of a tenant and data point without a stored flag.
pub const DEFAULT_STATE: FlagState = FlagState::On;

/// Longest tenant id (as in the event contract: 1 to 64 characters).
const MAX_TENANT_CHARS: usize = 64;

/// Whether the API serves a data point's sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagState {
    /// Left out: the product uses its old path.
    Off,
    /// Served only when asked with `?shadow=true`.
    Shadow,
    /// Served.
    On,
}

impl FlagState {
    pub const ALL: [FlagState; 3] = [FlagState::Off, FlagState::Shadow, FlagState::On];

    /// `off`, `shadow` or `on`, in any letter case, blanks around ignored.
    pub fn parse(text: &str) -> Result<FlagState, AnalyticsError> {
        let wanted = text.trim();
        FlagState::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                AnalyticsError::BadRequest(format!(
                    "unknown flag state {text:?}: use off, shadow or on"
                ))
            })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FlagState::Off => "off",
            FlagState::Shadow => "shadow",
            FlagState::On => "on",
        }
    }

    /// Whether sections in this state are served to a request that asked
    /// for shadow sections (`shadow`) or not.
    pub fn serves(self, shadow: bool) -> bool {
        match self {
            FlagState::On => true,
            FlagState::Shadow => shadow,
            FlagState::Off => false,
        }
    }
}

/// A data point that has a flag: `attendance`, `polls`, `surveys` or `qna`,
/// in any letter case. `presentation` has none (its fields are always served).
pub fn parse_data_point(text: &str) -> Result<DataPoint, AnalyticsError> {
    let wanted = text.trim().to_ascii_lowercase();
    match DataPoint::parse(&wanted) {
        Some(dp) if FLAGGED_DATA_POINTS.contains(&dp) => Ok(dp),
        Some(_) => Err(AnalyticsError::BadRequest(format!(
            "{text:?} has no flag: the presentation's own fields are always served; flags exist for attendance, polls, surveys and qna"
        ))),
        None => Err(AnalyticsError::BadRequest(format!(
            "unknown data point {text:?}: flags exist for attendance, polls, surveys and qna"
        ))),
    }
}

/// The `shadow` query parameter: missing or blank is `false`; otherwise
/// `true`/`false` (also `1`/`0`, `yes`/`no`), in any letter case.
pub fn parse_shadow(text: Option<&str>) -> Result<bool, AnalyticsError> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(false);
    };
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(AnalyticsError::BadRequest(format!(
            "shadow must be true or false, got {text:?}"
        ))),
    }
}

pub(super) fn check_tenant(tenant_id: &str) -> Result<(), AnalyticsError> {
    let chars = tenant_id.chars().count();
    if chars == 0 || chars > MAX_TENANT_CHARS {
        return Err(AnalyticsError::BadRequest(format!(
            "tenant must be 1 to {MAX_TENANT_CHARS} characters, got {tenant_id:?}"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Stored flags
// ---------------------------------------------------------------------------

/// One stored flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Flag {
    pub tenant_id: String,
    pub data_point: DataPoint,
    pub state: FlagState,
    /// RFC 3339 with milliseconds, UTC.
    pub updated_at: String,
}

/// The flags of one tenant, with [`DEFAULT_STATE`] for those not stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantFlags {
    stored: BTreeMap<DataPoint, FlagState>,
}

impl TenantFlags {
    /// Every data point in [`DEFAULT_STATE`].
    pub fn defaults() -> TenantFlags {
        TenantFlags::default()
    }

    /// The flags of `(data point, state)` pairs (tests, callers holding flags).
    pub fn from_states(states: impl IntoIterator<Item = (DataPoint, FlagState)>) -> TenantFlags {
        TenantFlags {
            stored: states.into_iter().collect(),
        }
    }

    pub fn state(&self, data_point: DataPoint) -> FlagState {
        self.stored
            .get(&data_point)
            .copied()
            .unwrap_or(DEFAULT_STATE)
    }

    /// Whether the data point's sections are served to a request asking for
    /// shadow sections (`shadow`) or not.
    pub fn serves(&self, data_point: DataPoint, shadow: bool) -> bool {
        self.state(data_point).serves(shadow)
    }

    /// The flagged data points whose sections are left out.
    pub fn hidden(&self, shadow: bool) -> Vec<DataPoint> {
        FLAGGED_DATA_POINTS
            .into_iter()
            .filter(|dp| !self.serves(*dp, shadow))
            .collect()
    }

    /// Every flagged data point's state, stored or default.
    pub fn effective(&self) -> BTreeMap<DataPoint, FlagState> {
        FLAGGED_DATA_POINTS
            .into_iter()
            .map(|dp| (dp, self.state(dp)))
            .collect()
    }
}

/// The flags of `tenant_id` (defaults where nothing is stored).
pub fn tenant_flags(
    conn: &mut impl Queryable,
    tenant_id: &str,
) -> Result<TenantFlags, AnalyticsError> {
    let sql = format!(
        "SELECT data_point, state FROM feature_flag WHERE tenant_id = {}",
        str_literal(tenant_id)
    );
    let rows: Vec<(String, String)> = conn
        .query(sql)
        .map_err(|e| AnalyticsError::database("reading feature flags", e))?;
    let mut stored = BTreeMap::new();
    for (data_point, state) in rows {
        let Ok(dp) = parse_data_point(&data_point) else {
            tracing::warn!(
                tenant_id,
                data_point,
                "ignoring a flag of an unknown data point"
            );
            continue;
        };
        let state = FlagState::parse(&state).unwrap_or_else(|_| {
            tracing::warn!(
                tenant_id,
                data_point,
                state,
                "unreadable flag state, taken as off"
            );
            FlagState::Off
        });
        stored.insert(dp, state);
    }
    Ok(TenantFlags { stored })
}

/// Sets one flag (creating or replacing it) and returns it as stored.
pub fn set_flag(
    conn: &mut impl Queryable,
    tenant_id: &str,
    data_point: DataPoint,
    state: FlagState,
) -> Result<Flag, AnalyticsError> {
    check_tenant(tenant_id)?;
    if !FLAGGED_DATA_POINTS.contains(&data_point) {
        return Err(AnalyticsError::BadRequest(format!(
            "{data_point} has no flag: flags exist for attendance, polls, surveys and qna"
        )));
    }
    let sql = format!(
        "INSERT INTO feature_flag (tenant_id, data_point, state, updated_at) \
         VALUES ({}, {}, {}, CURRENT_TIMESTAMP(3)) \
         ON DUPLICATE KEY UPDATE state = VALUES(state), updated_at = VALUES(updated_at)",
        str_literal(tenant_id),
        str_literal(data_point.as_str()),
        str_literal(state.as_str())
    );
    conn.query_drop(sql)
        .map_err(|e| AnalyticsError::Database(format!("setting a feature flag: {e}")))?;
    let flags = read_flags(
        conn,
        &format!(
            "WHERE tenant_id = {} AND data_point = {}",
            str_literal(tenant_id),
            str_literal(data_point.as_str())
        ),
    )?;
    flags.into_iter().next().ok_or_else(|| {
        AnalyticsError::Database("the flag just set cannot be read back".to_string())
    })
}

/// The stored flags, of one tenant or of all, by tenant then data point.
pub fn list_flags(
    conn: &mut impl Queryable,
    tenant_id: Option<&str>,
) -> Result<Vec<Flag>, AnalyticsError> {
    let filter = match tenant_id {
        Some(tenant) => format!("WHERE tenant_id = {}", str_literal(tenant)),
        None => String::new(),
    };
    let mut flags = read_flags(conn, &filter)?;
    flags.sort_by(|a, b| {
        (a.tenant_id.as_bytes(), a.data_point).cmp(&(b.tenant_id.as_bytes(), b.data_point))
    });
    Ok(flags)
}

fn read_flags(conn: &mut impl Queryable, filter: &str) -> Result<Vec<Flag>, AnalyticsError> {
    let sql = format!(
        "SELECT tenant_id, data_point, state, \
           CAST(ROUND(UNIX_TIMESTAMP(updated_at) * 1000) AS SIGNED) \
         FROM feature_flag {filter}"
    );
    let rows: Vec<(Vec<u8>, String, String, i64)> = conn
        .query(sql)
        .map_err(|e| AnalyticsError::database("reading feature flags", e))?;
    let mut flags = Vec::with_capacity(rows.len());
    for (tenant, data_point, state, updated_ms) in rows {
        let tenant_id = String::from_utf8_lossy(&tenant).into_owned();
        let Ok(data_point) = parse_data_point(&data_point) else {
            continue;
        };
        flags.push(Flag {
            tenant_id,
            data_point,
            state: FlagState::parse(&state).unwrap_or(FlagState::Off),
            updated_at: format_time(updated_ms),
        });
    }
    Ok(flags)
}

// ---------------------------------------------------------------------------
// Leaving sections out
// ---------------------------------------------------------------------------

/// The report's key of a data point's section.
fn report_section(data_point: DataPoint) -> Option<&'static str> {
    match data_point {
        DataPoint::Attendance => Some("attendance"),
        DataPoint::Polls => Some("polls"),
        DataPoint::Surveys => Some("surveys"),
        DataPoint::Qna => Some("qna"),
        DataPoint::Presentation => None,
    }
}

/// The presentation list row's figures of a data point.
fn list_figures(data_point: DataPoint) -> &'static [&'static str] {
    match data_point {
        DataPoint::Attendance => &[
            "uniqueViewers",
            "peakConcurrentViewers",
            "totalWatchSeconds",
        ],
        DataPoint::Polls => &["polls"],
        DataPoint::Surveys => &["surveys"],
        DataPoint::Qna => &["questions"],
        DataPoint::Presentation => &[],
    }
}

/// The viewer row's figures of a data point (attendance is the whole list).
fn viewer_figures(data_point: DataPoint) -> &'static [&'static str] {
    match data_point {
        DataPoint::Polls => &["pollsAnswered"],
        DataPoint::Surveys => &["surveysSubmitted"],
        DataPoint::Qna => &["questionsAsked", "upvotesGiven"],
        DataPoint::Attendance | DataPoint::Presentation => &[],
    }
}

fn to_value<T: Serialize>(value: &T) -> Value {
    // The report types are plain data with string keys: this cannot fail.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn remove_keys(value: &mut Value, keys: &[&str]) {
    if let Value::Object(map) = value {
        for key in keys {
            map.remove(*key);
        }
    }
}

/// The report's JSON without the sections the flags leave out.
pub fn report_json(report: &PresentationReport, flags: &TenantFlags, shadow: bool) -> Value {
    let mut value = to_value(report);
    for dp in flags.hidden(shadow) {
        if let Some(key) = report_section(dp) {
            remove_keys(&mut value, &[key]);
        }
    }
    value
}

/// The presentation list's JSON without the figures the flags leave out.
pub fn presentation_list_json(list: &PresentationList, flags: &TenantFlags, shadow: bool) -> Value {
    let mut value = to_value(list);
    let hidden = flags.hidden(shadow);
    if let Some(Value::Array(rows)) = value.get_mut("presentations") {
        for row in rows {
            for dp in &hidden {
                remove_keys(row, list_figures(*dp));
            }
        }
    }
    value
}

/// The viewer list's JSON without what the flags leave out: without
/// attendance, the list itself (`total`, `viewers`); otherwise each row's
/// figures of the hidden data points.
pub fn viewer_list_json(list: &ViewerList, flags: &TenantFlags, shadow: bool) -> Value {
    let mut value = to_value(list);
    let hidden = flags.hidden(shadow);
    if hidden.contains(&DataPoint::Attendance) {
        remove_keys(&mut value, &["total", "viewers"]);
        return value;
    }
    if let Some(Value::Array(rows)) = value.get_mut("viewers") {
        for row in rows {
            for dp in &hidden {
                remove_keys(row, viewer_figures(*dp));
            }
            if !hidden.is_empty() {
                remove_keys(row, &["engagementScore"]);
            }
        }
    }
    value
}

/// The timeline's JSON, without its figures when attendance is left out.
pub fn timeline_json(timeline: &Timeline, flags: &TenantFlags, shadow: bool) -> Value {
    let mut value = to_value(timeline);
    if !flags.serves(DataPoint::Attendance, shadow) {
        remove_keys(
            &mut value,
            &["bucketSeconds", "from", "to", "atEnd", "buckets"],
        );
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_states() {
        assert_eq!(FlagState::parse("off"), Ok(FlagState::Off));
        assert_eq!(FlagState::parse(" Shadow "), Ok(FlagState::Shadow));
        assert_eq!(FlagState::parse("ON"), Ok(FlagState::On));
        for s in FlagState::ALL {
            assert_eq!(FlagState::parse(s.as_str()), Ok(s));
        }
        for bad in ["", "enabled", "true", "of"] {
            let err = FlagState::parse(bad).unwrap_err();
            assert!(
                matches!(&err, AnalyticsError::BadRequest(m) if m.contains("off, shadow or on")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn parses_data_points() {
        assert_eq!(parse_data_point("attendance"), Ok(DataPoint::Attendance));
        assert_eq!(parse_data_point("Polls"), Ok(DataPoint::Polls));
        assert_eq!(parse_data_point(" surveys "), Ok(DataPoint::Surveys));
        assert_eq!(parse_data_point("QNA"), Ok(DataPoint::Qna));
        let err = parse_data_point("presentation").unwrap_err();
        assert!(
            matches!(&err, AnalyticsError::BadRequest(m) if m.contains("has no flag")),
            "{err}"
        );
        let err = parse_data_point("votes").unwrap_err();
        assert!(
            matches!(&err, AnalyticsError::BadRequest(m) if m.contains("attendance, polls, surveys and qna")),
            "{err}"
        );
    }

    #[test]
    fn parses_shadow() {
        assert_eq!(parse_shadow(None), Ok(false));
        assert_eq!(parse_shadow(Some("")), Ok(false));
        assert_eq!(parse_shadow(Some("true")), Ok(true));
        assert_eq!(parse_shadow(Some("TRUE")), Ok(true));
        assert_eq!(parse_shadow(Some("1")), Ok(true));
        assert_eq!(parse_shadow(Some("false")), Ok(false));
        assert_eq!(parse_shadow(Some("0")), Ok(false));
        assert!(matches!(
            parse_shadow(Some("maybe")),
            Err(AnalyticsError::BadRequest(m)) if m.contains("shadow must be true or false")
        ));
    }

    #[test]
    fn states_serve_as_planned() {
        assert!(FlagState::On.serves(false) && FlagState::On.serves(true));
        assert!(!FlagState::Shadow.serves(false) && FlagState::Shadow.serves(true));
        assert!(!FlagState::Off.serves(false) && !FlagState::Off.serves(true));
        let flags = TenantFlags::from_states([
            (DataPoint::Polls, FlagState::Off),
            (DataPoint::Qna, FlagState::Shadow),
        ]);
        assert_eq!(flags.state(DataPoint::Attendance), DEFAULT_STATE);
        assert_eq!(flags.hidden(false), vec![DataPoint::Polls, DataPoint::Qna]);
        assert_eq!(flags.hidden(true), vec![DataPoint::Polls]);
        assert!(TenantFlags::defaults().hidden(false).is_empty());
    }

    #[test]
    fn tenants_are_checked() {
        assert!(check_tenant("acme").is_ok());
        assert!(check_tenant(&"é".repeat(64)).is_ok());
        assert!(check_tenant("").is_err());
        assert!(check_tenant(&"a".repeat(65)).is_err());
    }
}
