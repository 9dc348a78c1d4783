//! The event contract (`shared/contract/EVENTS.md`) in code: one event document
//! parsed from any of its Extended JSON encodings into typed values.
//!
//! This file holds the types and the entry point, [`parse_event`]; the
//! general path that reads every document is `parse.rs`, the fast path for
//! the common ones `fast.rs`.

use crate::contract::ejson::EjsonError;
use std::fmt;

mod fast;
mod parse;

pub use parse::is_id;
#[cfg(test)]
mod tests;

/// The warehouse's data points. Every analytics event type belongs to exactly one.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DataPoint {
    Presentation,
    Attendance,
    Polls,
    Surveys,
    Qna,
}

impl DataPoint {
    pub const ALL: [DataPoint; 5] = [
        DataPoint::Presentation,
        DataPoint::Attendance,
        DataPoint::Polls,
        DataPoint::Surveys,
        DataPoint::Qna,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DataPoint::Presentation => "presentation",
            DataPoint::Attendance => "attendance",
            DataPoint::Polls => "polls",
            DataPoint::Surveys => "surveys",
            DataPoint::Qna => "qna",
        }
    }

    pub fn parse(name: &str) -> Option<DataPoint> {
        DataPoint::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// The data point of an event type name, `None` for types that are not analytics.
    pub fn of_type(event_type: &str) -> Option<DataPoint> {
        Some(match event_type {
            "PresentationCreated"
            | "PresentationRenamed"
            | "PresentationStarted"
            | "PresentationEnded" => DataPoint::Presentation,
            "ViewerJoined" | "ViewerHeartbeat" | "ViewerLeft" => DataPoint::Attendance,
            "PollCreated" | "PollClosed" | "PollVoted" => DataPoint::Polls,
            "SurveyCreated" | "SurveySubmitted" => DataPoint::Surveys,
            "QuestionAsked"
            | "QuestionUpvoted"
            | "QuestionUpvoteWithdrawn"
            | "QuestionAnswered"
            | "QuestionDismissed" => DataPoint::Qna,
            _ => return None,
        })
    }
}

impl fmt::Display for DataPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One valid event document.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub stream_id: String,
    /// >= 1.
    pub version: i64,
    /// The `type` field as written, also for types that are not analytics.
    pub event_type: String,
    /// Milliseconds since the Unix epoch, UTC.
    pub occurred_at: i64,
    pub tenant_id: String,
    /// `meta.schemaVersion`, 1 when absent.
    pub schema_version: i64,
    /// SHA-256 of the event's normalised content: equal for every encoding
    /// (relaxed, canonical, legacy) of the same document.
    pub content_hash: [u8; 32],
    pub body: EventBody,
}

impl Event {
    pub fn data_point(&self) -> Option<DataPoint> {
        DataPoint::of_type(&self.event_type)
    }

    /// The event's identity, `(tenantId, streamId, version)` (EVENTS.md):
    /// the same stream id under another tenant is another presentation.
    pub fn identity(&self) -> (&str, &str, i64) {
        (&self.tenant_id, &self.stream_id, self.version)
    }

    /// The presentation the event belongs to, `(tenantId, streamId)`.
    pub fn presentation(&self) -> (&str, &str) {
        (&self.tenant_id, &self.stream_id)
    }

    /// The viewer the event names (`data.viewerId`), if its type has one;
    /// the asker of an anonymous question included.
    pub fn viewer(&self) -> Option<&str> {
        match &self.body {
            EventBody::ViewerJoined(joined) => Some(&joined.viewer_id),
            EventBody::ViewerHeartbeat { viewer_id, .. }
            | EventBody::ViewerLeft { viewer_id, .. }
            | EventBody::PollVoted { viewer_id, .. }
            | EventBody::SurveySubmitted { viewer_id, .. }
            | EventBody::QuestionAsked { viewer_id, .. }
            | EventBody::QuestionUpvoted { viewer_id, .. }
            | EventBody::QuestionUpvoteWithdrawn { viewer_id, .. } => Some(viewer_id),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerJoined {
    pub viewer_id: String,
    pub session_id: String,
    /// `profile.*` and `location.*` as written (not normalised); `None` when
    /// missing or null.
    pub name: Option<String>,
    pub email: Option<String>,
    pub department: Option<String>,
    pub country: Option<String>,
    pub region: Option<String>,
    /// The schema-1 string or the schema-2 `device.type`, as written.
    pub device: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuestionKind {
    Rating,
    Choice,
    Text,
}

impl QuestionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QuestionKind::Rating => "rating",
            QuestionKind::Choice => "choice",
            QuestionKind::Text => "text",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyQuestion {
    pub id: String,
    pub kind: QuestionKind,
    pub text: String,
    /// 5 when absent.
    pub scale: i64,
    /// Empty unless `kind` is choice.
    pub options: Vec<Choice>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyAnswer {
    pub question_id: String,
    /// `Some` only when `rating` is present and an integral number.
    pub rating: Option<i64>,
    pub option_ids: Option<Vec<String>>,
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventBody {
    PresentationCreated {
        title: String,
        presenter: Person,
        scheduled_start: i64,
        timezone: String,
    },
    PresentationRenamed {
        title: String,
    },
    PresentationStarted,
    PresentationEnded,
    ViewerJoined(ViewerJoined),
    ViewerHeartbeat {
        viewer_id: String,
        session_id: String,
    },
    ViewerLeft {
        viewer_id: String,
        session_id: String,
    },
    PollCreated {
        poll_id: String,
        question: String,
        options: Vec<Choice>,
        multiple_choice: bool,
    },
    PollClosed {
        poll_id: String,
    },
    PollVoted {
        poll_id: String,
        viewer_id: String,
        option_ids: Vec<String>,
    },
    SurveyCreated {
        survey_id: String,
        title: String,
        questions: Vec<SurveyQuestion>,
    },
    SurveySubmitted {
        survey_id: String,
        viewer_id: String,
        answers: Vec<SurveyAnswer>,
    },
    QuestionAsked {
        question_id: String,
        viewer_id: String,
        text: String,
        anonymous: bool,
    },
    QuestionUpvoted {
        question_id: String,
        viewer_id: String,
    },
    QuestionUpvoteWithdrawn {
        question_id: String,
        viewer_id: String,
    },
    QuestionAnswered {
        question_id: String,
        answered_by: Person,
        method: String,
    },
    QuestionDismissed {
        question_id: String,
    },
    /// Any other type: accepted, counted, never analysed.
    NotAnalytics,
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Ids (`streamId`, `tenantId`, `viewerId`, `sessionId`, `pollId`,
/// `surveyId`, `questionId`) are 1 to this many characters, with no white
/// space at either edge (EVENTS.md, Limits).
pub const MAX_ID_CHARS: usize = 64;

/// Every other string of `data` is cut to this many characters before any
/// other rule applies (EVENTS.md, Limits): cut, never malformed.
pub const MAX_TEXT_CHARS: usize = 4000;

/// A message body or export line longer than this many bytes is malformed.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// Dates (`occurredAt` and every date of `data`) lie in
/// `1970-01-01T00:00:00.000Z ..= 2099-12-31T23:59:59.999Z`.
pub const DATE_RANGE_MS: std::ops::RangeInclusive<i64> = 0..=4_102_444_799_999;

/// Which part of a document made it malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventErrorKind {
    /// The text is not JSON.
    InvalidJson,
    /// The JSON is not an object.
    NotADocument,
    /// An Extended JSON wrapper is unknown or malformed.
    ExtendedJson,
    /// An envelope field (`streamId`, `version`, `type`, `occurredAt`,
    /// `tenantId`, `data`, `meta`) is missing or wrong.
    Envelope,
    /// A `data` field of an analytics type is missing or wrong.
    Data,
    /// The document is longer than [`MAX_EVENT_BYTES`].
    TooLong,
}

/// Why a document is not a valid event. Permanent: the same text always fails
/// the same way. The message says what is wrong and where, quoting the
/// offending value (cut to about 60 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    kind: EventErrorKind,
    message: String,
}

impl EventError {
    pub fn new(kind: EventErrorKind, message: impl Into<String>) -> EventError {
        EventError {
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> EventErrorKind {
        self.kind
    }

    /// The message, e.g. `version must be an integer >= 1, got "7"`.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message as an owned string (same as `to_string()`).
    pub fn reason(&self) -> String {
        self.message.clone()
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EventError {}

impl From<EjsonError> for EventError {
    fn from(e: EjsonError) -> EventError {
        EventError::new(EventErrorKind::ExtendedJson, e.to_string())
    }
}

/// Parses one event document (a message body or an export line) in relaxed,
/// canonical or legacy Extended JSON, per `shared/contract/EVENTS.md`.
///
/// Checks, in this order: JSON syntax; the whole document's Extended JSON
/// (every wrapper anywhere, unknown fields included); the envelope; then, for
/// analytics types only, `data`. Never panics.
pub fn parse_event(text: &str) -> Result<Event, EventError> {
    if text.len() > MAX_EVENT_BYTES {
        return Err(EventError::new(
            EventErrorKind::TooLong,
            format!(
                "the document is {} bytes long, over the limit of {MAX_EVENT_BYTES} bytes (1 MiB)",
                text.len()
            ),
        ));
    }
    match fast::parse_common(text) {
        Some(event) => Ok(event),
        None => parse::parse_general(text),
    }
}
