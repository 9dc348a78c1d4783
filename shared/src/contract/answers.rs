//! The answers of `shared/contract/ANALYTICS.md` as data: the JSON shapes of the
//! presentation report, the viewer list and the presentation list. The small
//! pure helpers every implementation of the contract must share, so that they
//! print the same numbers and strings, are beside it: `time.rs` (time
//! formatting), `figures.rs` (rounding), `normalize.rs` (normalisation).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::contract::figures::count;

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
    /// RFC 3339, see [`format_time`](crate::contract::format_time).
    pub scheduled_start: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub attendance: Attendance,
    pub polls: Vec<PollReport>,
    pub surveys: Vec<SurveyReport>,
    pub qna: QnaReport,
    /// §6: the latest `occurredAt` of the presentation's accepted analytics
    /// events. (Defaulted when reading a report cached before it existed;
    /// the reader sets it from the presentation's row anyway.)
    #[serde(default)]
    pub data_through: Option<String>,
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
    /// One decimal, see
    /// [`average_seconds_1dp`](crate::contract::average_seconds_1dp).
    pub average_watch_seconds: f64,
    pub peak_concurrent_viewers: i64,
    /// Normalised value (see [`normalize_device`](crate::contract::normalize_device))
    /// → distinct viewers.
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
    /// §6, as in the report.
    pub data_through: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ViewerRow {
    pub viewer_id: String,
    /// [`normalize_optional_text`](crate::contract::normalize_optional_text) of
    /// the highest-version `ViewerJoined`.
    pub name: Option<String>,
    pub email: Option<String>,
    /// [`normalize_department`](crate::contract::normalize_department).
    pub department: Option<String>,
    /// [`normalize_country`](crate::contract::normalize_country).
    pub country: String,
    /// [`normalize_device`](crate::contract::normalize_device).
    pub device: String,
    pub sessions: i64,
    pub watch_seconds: i64,
    pub first_joined_at: String,
    pub last_seen_at: String,
    pub polls_answered: i64,
    pub surveys_submitted: i64,
    pub questions_asked: i64,
    /// Counted questions the viewer upvotes (§2).
    pub upvotes_given: i64,
    /// §5, 0 to 100.
    pub engagement_score: i64,
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
    /// Beyond ANALYTICS.md: the presentations of this page whose figures
    /// were computed before their latest load (or not yet), so show an
    /// earlier state until the refresh that follows every load catches up.
    #[serde(default)]
    pub stale_figures: Vec<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
