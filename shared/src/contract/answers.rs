//! The answers of `shared/contract/ANALYTICS.md` as data: the JSON shapes of the
//! presentation report, the viewer list and the presentation list, plus the
//! small pure helpers (time formatting, rounding, normalisation) that every
//! implementation of the contract must share so that they print the same
//! numbers and strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------
// 1. Presentation report
// ---------------------------------------------------------------------------

/// One presentation's report (ANALYTICS.md §1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresentationReport {
    pub presentation_id: String,
    pub tenant_id: String,
    pub title: Option<String>,
    pub presenter: Option<Presenter>,
    /// RFC 3339, see [`format_time`].
    pub scheduled_start: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub attendance: Attendance,
    pub polls: Vec<PollReport>,
    pub surveys: Vec<SurveyReport>,
    pub qna: QnaReport,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Presenter {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attendance {
    pub unique_viewers: i64,
    pub sessions: i64,
    pub total_watch_seconds: i64,
    /// One decimal, see [`average_seconds_1dp`].
    pub average_watch_seconds: f64,
    pub peak_concurrent_viewers: i64,
    /// Normalised value (see [`normalize_device`]) → distinct viewers.
    pub by_device: BTreeMap<String, i64>,
    pub by_country: BTreeMap<String, i64>,
    pub by_department: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollReport {
    pub poll_id: String,
    pub question: String,
    pub multiple_choice: bool,
    pub closed_at: Option<String>,
    pub respondents: i64,
    pub options: Vec<PollOption>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollOption {
    pub option_id: String,
    pub text: String,
    pub votes: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SurveyReport {
    pub survey_id: String,
    pub title: String,
    pub responses: i64,
    pub questions: Vec<SurveyQuestionReport>,
}

/// `{"questionId", "kind", "text", "answered", …}`; the kind-specific fields
/// (and `kind` itself) come from [`SurveyQuestionDetail`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SurveyQuestionReport {
    pub question_id: String,
    pub text: String,
    pub answered: i64,
    #[serde(flatten)]
    pub detail: SurveyQuestionDetail,
}

/// Serialised as `"kind": "rating" | "choice" | "text"` plus the kind's extra
/// fields, flattened into [`SurveyQuestionReport`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum SurveyQuestionDetail {
    #[serde(rename_all = "camelCase")]
    Rating {
        /// Two decimals, `null` when no valid rating.
        average_rating: Option<f64>,
        /// Rating value → count, a key for every value 1..=scale.
        /// Serialised with string keys `"1"`, `"2"`, …
        #[serde(deserialize_with = "deserialize_distribution")]
        distribution: BTreeMap<i64, i64>,
    },
    Choice {
        options: Vec<SurveyOptionCount>,
    },
    Text,
}

/// The distribution's keys are JSON strings; inside a flattened enum serde
/// cannot turn them into integers by itself.
fn deserialize_distribution<'de, D>(deserializer: D) -> Result<BTreeMap<i64, i64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let raw = BTreeMap::<String, i64>::deserialize(deserializer)?;
    raw.into_iter()
        .map(|(k, v)| {
            k.parse::<i64>().map(|k| (k, v)).map_err(|_| {
                serde::de::Error::custom(format!("rating key {k:?} is not an integer"))
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SurveyOptionCount {
    pub option_id: String,
    pub text: String,
    pub count: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QnaReport {
    pub asked: i64,
    pub open: i64,
    pub answered: i64,
    pub dismissed: i64,
    pub upvotes: i64,
    /// One decimal, `null` when no question is answered.
    pub average_seconds_to_answer: Option<f64>,
    pub top: Vec<TopQuestion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopQuestion {
    pub question_id: String,
    pub text: String,
    /// The asking viewer, `None` (`null`) for an anonymous question.
    pub asked_by: Option<String>,
    pub upvotes: i64,
    pub status: QuestionStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuestionStatus {
    Open,
    Answered,
    Dismissed,
}

impl QuestionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            QuestionStatus::Open => "open",
            QuestionStatus::Answered => "answered",
            QuestionStatus::Dismissed => "dismissed",
        }
    }
}

/// Top questions: at most this many.
pub const TOP_QUESTIONS: usize = 10;

// ---------------------------------------------------------------------------
// 2. Viewer list
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewerList {
    pub presentation_id: String,
    /// Rows matching the filters, before paging.
    pub total: i64,
    pub viewers: Vec<ViewerRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewerRow {
    pub viewer_id: String,
    /// [`normalize_optional_text`] of the highest-version `ViewerJoined`.
    pub name: Option<String>,
    pub email: Option<String>,
    /// [`normalize_department`].
    pub department: Option<String>,
    /// [`normalize_country`].
    pub country: String,
    /// [`normalize_device`].
    pub device: String,
    pub sessions: i64,
    pub watch_seconds: i64,
    pub first_joined_at: String,
    pub last_seen_at: String,
    pub polls_answered: i64,
    pub surveys_submitted: i64,
    pub questions_asked: i64,
}

// ---------------------------------------------------------------------------
// 3. Presentation list
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresentationList {
    pub tenant_id: String,
    pub total: i64,
    pub presentations: Vec<PresentationRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresentationRow {
    pub presentation_id: String,
    pub title: Option<String>,
    pub scheduled_start: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub unique_viewers: i64,
    pub peak_concurrent_viewers: i64,
    pub total_watch_seconds: i64,
    pub polls: i64,
    pub surveys: i64,
    pub questions: i64,
}

impl PresentationRow {
    /// The list row of a report: the same figures.
    pub fn from_report(report: &PresentationReport) -> PresentationRow {
        PresentationRow {
            presentation_id: report.presentation_id.clone(),
            title: report.title.clone(),
            scheduled_start: report.scheduled_start.clone(),
            started_at: report.started_at.clone(),
            ended_at: report.ended_at.clone(),
            unique_viewers: report.attendance.unique_viewers,
            peak_concurrent_viewers: report.attendance.peak_concurrent_viewers,
            total_watch_seconds: report.attendance.total_watch_seconds,
            polls: count(report.polls.len()),
            surveys: count(report.surveys.len()),
            questions: report.qna.asked,
        }
    }
}

/// A collection size as the contract's integer.
pub fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------

/// Milliseconds since the Unix epoch (UTC) as the contract prints times:
/// `2021-09-10T12:45:01.123Z` (total over `i64`).
pub use crate::contract::ejson::format_millis as format_time;

/// [`format_time`] of an optional time.
pub fn format_time_opt(ms: Option<i64>) -> Option<String> {
    ms.map(format_time)
}

// ---------------------------------------------------------------------------
// Arithmetic
// ---------------------------------------------------------------------------

/// `numerator / denominator` rounded to the nearest integer, halves away from
/// zero, in exact integer arithmetic. `None` when `denominator` is 0.
pub fn div_round_half_away(numerator: i128, denominator: i128) -> Option<i128> {
    if denominator == 0 {
        return None;
    }
    let negative = (numerator < 0) != (denominator < 0);
    let n = numerator.unsigned_abs();
    let d = denominator.unsigned_abs();
    let q = n / d;
    let r = n % d;
    // r >= d - r  <=>  the remainder is at least half of the divisor.
    let q = if r >= d - r { q + 1 } else { q };
    let q = i128::try_from(q).unwrap_or(i128::MAX);
    Some(if negative { -q } else { q })
}

/// An amount in tenths (or hundredths, …) as the printed decimal number.
fn scaled_to_f64(scaled: i128, scale: f64) -> f64 {
    // Exact for every value below 2^53; the division is correctly rounded, so
    // the result is the double nearest to the decimal, as a JSON parser reads it.
    scaled as f64 / scale
}

/// Mean of a total of milliseconds over `count`, in seconds with one decimal,
/// rounded half away from zero: `total_ms / 1000 / count`.
/// `None` when `count` is 0. Used for `averageWatchSeconds` (which prints
/// `0.0` instead of `null`) and `averageSecondsToAnswer`.
pub fn average_seconds_1dp(total_ms: i128, count: i64) -> Option<f64> {
    // tenths of a second = total_ms * 10 / (1000 * count) = total_ms / (100 * count)
    let den = i128::from(count).checked_mul(100)?;
    div_round_half_away(total_ms, den).map(|t| scaled_to_f64(t, 10.0))
}

/// `sum / count` with two decimals, rounded half away from zero
/// (`averageRating`). `None` when `count` is 0.
pub fn average_2dp(sum: i128, count: i64) -> Option<f64> {
    let num = sum.checked_mul(100)?;
    div_round_half_away(num, i128::from(count)).map(|h| scaled_to_f64(h, 100.0))
}

/// Whole seconds of a non-negative duration in milliseconds, floored
/// (`totalWatchSeconds`, `watchSeconds`). Saturates at `i64::MAX`.
pub fn floor_seconds(ms: i128) -> i64 {
    i64::try_from(ms.div_euclid(1000)).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

// ---------------------------------------------------------------------------
// Normalisation
// ---------------------------------------------------------------------------

/// The breakdown value for a missing, null or empty attribute.
pub const UNKNOWN: &str = "unknown";

/// The devices the contract knows; anything else is [`UNKNOWN`].
pub const DEVICES: [&str; 4] = ["desktop", "mobile", "tablet", "tv"];

/// Removes surrounding blanks (Unicode white space, as `str::trim`).
pub fn trim_blanks(s: &str) -> &str {
    s.trim()
}

/// Device: the schema-1 string or schema-2 `device.type`, lower-cased;
/// anything but `desktop`, `mobile`, `tablet`, `tv` (including missing) is
/// `unknown`. Not trimmed: the contract only lower-cases.
pub fn normalize_device(device: Option<&str>) -> String {
    match device.map(str::to_lowercase) {
        Some(d) if DEVICES.contains(&d.as_str()) => d,
        _ => UNKNOWN.to_string(),
    }
}

/// Country: `location.country` upper-cased; missing, null or empty is
/// `unknown`. Not trimmed: the contract only upper-cases (a country made of
/// blanks only is nevertheless treated as empty).
pub fn normalize_country(country: Option<&str>) -> String {
    match country {
        Some(c) if !trim_blanks(c).is_empty() => c.to_uppercase(),
        _ => UNKNOWN.to_string(),
    }
}

/// Department: `profile.department` with surrounding blanks trimmed; `None`
/// when missing, null or empty after trimming. The viewer list prints `None`
/// as `null`, the breakdown as `unknown` ([`department_or_unknown`]).
pub fn normalize_department(department: Option<&str>) -> Option<String> {
    department
        .map(trim_blanks)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
}

/// Department for the `byDepartment` breakdown: [`normalize_department`] or
/// `unknown`.
pub fn department_or_unknown(department: Option<&str>) -> String {
    normalize_department(department).unwrap_or_else(|| UNKNOWN.to_string())
}

/// Name and email for the viewer list: as written, `None` when missing, null
/// or blank (the contract normalises neither; empty is treated as missing,
/// as it is for the department).
pub fn normalize_optional_text(text: Option<&str>) -> Option<String> {
    text.filter(|t| !trim_blanks(t).is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(1_631_277_901_123), "2021-09-10T12:45:01.123Z");
        assert_eq!(format_time(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_time(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_time(-62_167_219_200_000), "0000-01-01T00:00:00.000Z");
        // Never panics at the extremes.
        assert_eq!(format_time(i64::MAX), "292278994-08-17T07:12:55.807Z");
        assert_eq!(format_time(i64::MIN), "-292275055-05-16T16:47:04.192Z");
        assert_eq!(
            crate::contract::ejson::civil_from_days(i64::MAX).1,
            crate::contract::ejson::civil_from_days(i64::MAX)
                .1
                .clamp(1, 12)
        );
        let _ = crate::contract::ejson::civil_from_days(i64::MIN);
    }

    #[test]
    fn formats_every_day_of_a_few_years_consistently() {
        // Walk day by day through 1999..2005 and check month/day progression.
        let mut prev: Option<(i32, u32, u32)> = None;
        for day in 10_592..12_784i64 {
            let s = format_time(day * 86_400_000);
            let y: i32 = s[0..4].parse().unwrap();
            let m: u32 = s[5..7].parse().unwrap();
            let d: u32 = s[8..10].parse().unwrap();
            if let Some((py, pm, pd)) = prev {
                let next_ok = (y == py && m == pm && d == pd + 1)
                    || (y == py && m == pm + 1 && d == 1)
                    || (y == py + 1 && m == 1 && d == 1 && pm == 12 && pd == 31);
                assert!(next_ok, "{s} after {py}-{pm}-{pd}");
            }
            prev = Some((y, m, d));
        }
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(div_round_half_away(5, 2), Some(3));
        assert_eq!(div_round_half_away(-5, 2), Some(-3));
        assert_eq!(div_round_half_away(7, 3), Some(2));
        assert_eq!(div_round_half_away(8, 3), Some(3));
        assert_eq!(div_round_half_away(-8, 3), Some(-3));
        assert_eq!(div_round_half_away(1, 0), None);
        // x.x5 cases, which binary floating point gets wrong.
        assert_eq!(average_seconds_1dp(1_050, 1), Some(1.1)); // 1.05 s
        assert_eq!(average_seconds_1dp(2_250, 1), Some(2.3)); // 2.25 s
        assert_eq!(average_seconds_1dp(1_049, 1), Some(1.0));
        assert_eq!(average_seconds_1dp(3_000, 2), Some(1.5));
        assert_eq!(average_seconds_1dp(13_015_700, 9), Some(1446.2));
        assert_eq!(average_seconds_1dp(0, 0), None);
        assert_eq!(average_2dp(1, 8), Some(0.13)); // 0.125
        assert_eq!(average_2dp(29, 8), Some(3.63)); // 3.625
        assert_eq!(average_2dp(10, 3), Some(3.33));
        assert_eq!(average_2dp(5, 2), Some(2.5));
        assert_eq!(average_2dp(1, 0), None);
        assert_eq!(floor_seconds(1999), 1);
        assert_eq!(floor_seconds(0), 0);
        assert_eq!(floor_seconds(i128::MAX), i64::MAX);
    }

    proptest::proptest! {
        #[test]
        fn rounding_is_nearest_with_halves_away_from_zero(n in -1_000_000_000i128..1_000_000_000, d in 1i128..100_000) {
            let q = div_round_half_away(n, d).unwrap();
            // |n/d - q| <= 1/2, i.e. |n - q·d| * 2 <= d ...
            let twice_error = (n - q * d).abs() * 2;
            proptest::prop_assert!(twice_error <= d);
            // ... and on an exact half, q is the one farther from zero.
            if twice_error == d {
                proptest::prop_assert!(q.abs() * d > n.abs());
            }
            proptest::prop_assert_eq!(div_round_half_away(-n, d), Some(-q));
        }

        #[test]
        fn format_time_is_rfc3339_for_years_0_to_9999(ms in -62_167_219_200_000i64..253_402_300_800_000) {
            let s = format_time(ms);
            proptest::prop_assert_eq!(s.len(), 24);
            proptest::prop_assert_eq!(crate::contract::ejson::parse_rfc3339(&s), Ok(ms));
        }
    }

    #[test]
    fn normalises_attributes() {
        assert_eq!(normalize_device(Some("Desktop")), "desktop");
        assert_eq!(normalize_device(Some("TV")), "tv");
        assert_eq!(normalize_device(Some("smartwatch")), "unknown");
        assert_eq!(normalize_device(Some("")), "unknown");
        assert_eq!(normalize_device(None), "unknown");
        assert_eq!(normalize_country(Some("fr")), "FR");
        assert_eq!(normalize_country(Some("")), "unknown");
        assert_eq!(normalize_country(None), "unknown");
        assert_eq!(department_or_unknown(Some(" Marketing ")), "Marketing");
        assert_eq!(department_or_unknown(Some("  ")), "unknown");
        assert_eq!(department_or_unknown(None), "unknown");
        assert_eq!(normalize_department(Some("")), None);
        assert_eq!(
            normalize_department(Some("\tSales ")),
            Some("Sales".to_string())
        );
        assert_eq!(
            normalize_optional_text(Some("Zoë")),
            Some("Zoë".to_string())
        );
        assert_eq!(normalize_optional_text(Some("")), None);
    }

    #[test]
    fn survey_question_shapes() {
        let q = SurveyQuestionReport {
            question_id: "q1".into(),
            text: "How?".into(),
            answered: 2,
            detail: SurveyQuestionDetail::Rating {
                average_rating: Some(2.5),
                distribution: (1..=5).map(|k| (k, 0)).collect(),
            },
        };
        let v = serde_json::to_value(&q).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"questionId": "q1", "kind": "rating", "text": "How?",
                "answered": 2, "averageRating": 2.5,
                "distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}})
        );
        assert_eq!(
            serde_json::from_value::<SurveyQuestionReport>(v).unwrap(),
            q
        );
        let t = SurveyQuestionReport {
            question_id: "q3".into(),
            text: "Else?".into(),
            answered: 0,
            detail: SurveyQuestionDetail::Text,
        };
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"questionId": "q3", "kind": "text", "text": "Else?", "answered": 0})
        );
        assert_eq!(
            serde_json::from_value::<SurveyQuestionReport>(v).unwrap(),
            t
        );
        let c = SurveyQuestionReport {
            question_id: "q2".into(),
            text: "Topics?".into(),
            answered: 1,
            detail: SurveyQuestionDetail::Choice {
                options: vec![SurveyOptionCount {
                    option_id: "a".into(),
                    text: "A".into(),
                    count: 1,
                }],
            },
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"questionId": "q2", "kind": "choice", "text": "Topics?",
                "answered": 1, "options": [{"optionId": "a", "text": "A", "count": 1}]})
        );
        assert_eq!(
            serde_json::from_value::<SurveyQuestionReport>(v).unwrap(),
            c
        );
    }

    #[test]
    fn null_fields_serialise_as_null() {
        let row = PresentationRow {
            presentation_id: "p".into(),
            title: None,
            scheduled_start: None,
            started_at: None,
            ended_at: None,
            unique_viewers: 0,
            peak_concurrent_viewers: 0,
            total_watch_seconds: 0,
            polls: 0,
            surveys: 0,
            questions: 0,
        };
        let v = serde_json::to_value(&row).unwrap();
        assert_eq!(v["title"], serde_json::Value::Null);
        assert_eq!(v["startedAt"], serde_json::Value::Null);
        assert_eq!(serde_json::from_value::<PresentationRow>(v).unwrap(), row);
        let qna = QnaReport::default();
        let v = serde_json::to_value(&qna).unwrap();
        assert_eq!(v["averageSecondsToAnswer"], serde_json::Value::Null);
    }
}
