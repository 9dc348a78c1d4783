//! The event contract (`shared/contract/EVENTS.md`) in code: one event document
//! parsed from any of its Extended JSON encodings into typed values.

use crate::contract::ejson::{self, Ejson, EjsonError};
use serde_json::{Map, Value};
use std::fmt;

mod fast;

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
// Parsing
// ---------------------------------------------------------------------------

/// Ids (`streamId`, `viewerId`, option ids, ...) are 1 to this many characters.
pub const MAX_ID_CHARS: usize = 64;

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
    match fast::parse_common(text) {
        Some(event) => Ok(event),
        None => parse_general(text),
    }
}

/// Every document, in its Extended JSON forms, valid or not.
fn parse_general(text: &str) -> Result<Event, EventError> {
    let root: Value = serde_json::from_str(text).map_err(|e| {
        EventError::new(EventErrorKind::InvalidJson, format!("not valid JSON: {e}"))
    })?;
    match ejson::decode(&root)? {
        Ejson::Document(_) => {}
        other => {
            return Err(EventError::new(
                EventErrorKind::NotADocument,
                format!(
                    "the document must be a JSON object, got {}",
                    other.describe()
                ),
            ))
        }
    }
    let content_hash = ejson::content_hash(&root)?;
    let Value::Object(doc) = root else {
        // Unreachable: decoded as a document above.
        return Err(EventError::new(
            EventErrorKind::NotADocument,
            "the document must be a JSON object",
        ));
    };

    let mut envelope = Obj::new(doc, Path::Root, EventErrorKind::Envelope);
    let stream_id = envelope.id("streamId")?;
    let version = envelope.version("version")?;
    let event_type = envelope.non_empty_text("type")?;
    let occurred_at = envelope.date("occurredAt")?;
    let tenant_id = envelope.id("tenantId")?;
    let data = envelope.doc("data")?;
    let schema_version = match envelope.opt_doc("meta")? {
        None => 1,
        Some(meta) => envelope
            .child("meta", meta)
            .opt_positive_int("schemaVersion")?
            .unwrap_or(1),
    };
    let body = {
        let mut data = envelope.child("data", data);
        data.kind = EventErrorKind::Data;
        parse_body(&event_type, &mut data)?
    };
    Ok(Event {
        stream_id,
        version,
        event_type,
        occurred_at,
        tenant_id,
        schema_version,
        content_hash,
        body,
    })
}

fn parse_body(event_type: &str, d: &mut Obj<'_>) -> Result<EventBody, EventError> {
    Ok(match event_type {
        "PresentationCreated" => EventBody::PresentationCreated {
            title: d.text("title")?,
            presenter: d.person("presenter")?,
            scheduled_start: d.date("scheduledStart")?,
            timezone: d.text("timezone")?,
        },
        "PresentationRenamed" => EventBody::PresentationRenamed {
            title: d.text("title")?,
        },
        "PresentationStarted" => EventBody::PresentationStarted,
        "PresentationEnded" => EventBody::PresentationEnded,
        "ViewerJoined" => EventBody::ViewerJoined(viewer_joined(d)?),
        "ViewerHeartbeat" => EventBody::ViewerHeartbeat {
            viewer_id: d.id("viewerId")?,
            session_id: d.id("sessionId")?,
        },
        "ViewerLeft" => EventBody::ViewerLeft {
            viewer_id: d.id("viewerId")?,
            session_id: d.id("sessionId")?,
        },
        "PollCreated" => EventBody::PollCreated {
            poll_id: d.id("pollId")?,
            question: d.text("question")?,
            options: d.choices("options")?,
            multiple_choice: d.boolean("multipleChoice")?,
        },
        "PollClosed" => EventBody::PollClosed {
            poll_id: d.id("pollId")?,
        },
        "PollVoted" => EventBody::PollVoted {
            poll_id: d.id("pollId")?,
            viewer_id: d.id("viewerId")?,
            option_ids: d.ids("optionIds")?,
        },
        "SurveyCreated" => EventBody::SurveyCreated {
            survey_id: d.id("surveyId")?,
            title: d.text("title")?,
            questions: d.elements(
                "questions",
                "an array of documents",
                "a document",
                survey_question,
            )?,
        },
        "SurveySubmitted" => EventBody::SurveySubmitted {
            survey_id: d.id("surveyId")?,
            viewer_id: d.id("viewerId")?,
            answers: d.elements(
                "answers",
                "an array of documents",
                "a document",
                survey_answer,
            )?,
        },
        "QuestionAsked" => EventBody::QuestionAsked {
            question_id: d.id("questionId")?,
            viewer_id: d.id("viewerId")?,
            text: d.text("text")?,
            anonymous: d.boolean("anonymous")?,
        },
        "QuestionUpvoted" => EventBody::QuestionUpvoted {
            question_id: d.id("questionId")?,
            viewer_id: d.id("viewerId")?,
        },
        "QuestionUpvoteWithdrawn" => EventBody::QuestionUpvoteWithdrawn {
            question_id: d.id("questionId")?,
            viewer_id: d.id("viewerId")?,
        },
        "QuestionAnswered" => EventBody::QuestionAnswered {
            question_id: d.id("questionId")?,
            answered_by: d.person("answeredBy")?,
            // Any string, as written: the contract names "live" and "text",
            // but an unexpected method is no reason to lose the answer.
            method: d.text("method")?,
        },
        "QuestionDismissed" => EventBody::QuestionDismissed {
            question_id: d.id("questionId")?,
        },
        // Not analytics (SlideChanged, ChatMessagePosted, future types): the
        // envelope is checked, `data` is not looked into beyond Extended JSON.
        _ => EventBody::NotAnalytics,
    })
}

fn viewer_joined(d: &mut Obj<'_>) -> Result<ViewerJoined, EventError> {
    let viewer_id = d.id("viewerId")?;
    let session_id = d.id("sessionId")?;
    let (name, email, department) = match d.opt_doc("profile")? {
        None => (None, None, None),
        Some(profile) => {
            let mut profile = d.child("profile", profile);
            (
                profile.opt_text("name")?,
                profile.opt_text("email")?,
                profile.opt_text("department")?,
            )
        }
    };
    let (country, region) = match d.opt_doc("location")? {
        None => (None, None),
        Some(location) => {
            let mut location = d.child("location", location);
            (location.opt_text("country")?, location.opt_text("region")?)
        }
    };
    // Schema 1 writes a string, schema 2 a document {type, os, browser}. Both
    // shapes are accepted whatever `meta.schemaVersion` says (producers have
    // been seen to get it wrong and the shape is unambiguous). A document
    // whose `type` is missing or null gives `None`, like a missing device; a
    // `type` that is not a string is an error. The value is kept as written.
    let device = match d.take_opt("device") {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Object(m)) if !ejson::has_dollar_key(&m) => {
            let mut device = d.child("device", m);
            device.opt_text("type")?
        }
        Some(other) => {
            return Err(d.wrong(
                "device",
                "a string or a document with a string \"type\"",
                &other,
            ))
        }
    };
    Ok(ViewerJoined {
        viewer_id,
        session_id,
        name,
        email,
        department,
        country,
        region,
        device,
    })
}

fn survey_question(q: &mut Obj<'_>) -> Result<SurveyQuestion, EventError> {
    let id = q.id("id")?;
    let kind = match q.take_required("kind", KIND_EXPECTED)? {
        Value::String(s) if s == "rating" => QuestionKind::Rating,
        Value::String(s) if s == "choice" => QuestionKind::Choice,
        Value::String(s) if s == "text" => QuestionKind::Text,
        other => return Err(q.wrong("kind", KIND_EXPECTED, &other)),
    };
    let text = q.text("text")?;
    // A scale below 1 could hold no rating at all: malformed, not defaulted.
    let scale = q.opt_positive_int("scale")?.unwrap_or(5);
    // `options` belongs to choice questions; on others it is ignored unread.
    let options = match kind {
        QuestionKind::Choice => q.choices("options")?,
        QuestionKind::Rating | QuestionKind::Text => Vec::new(),
    };
    Ok(SurveyQuestion {
        id,
        kind,
        text,
        scale,
        options,
    })
}

const KIND_EXPECTED: &str = "\"rating\", \"choice\" or \"text\"";

fn survey_answer(a: &mut Obj<'_>) -> Result<SurveyAnswer, EventError> {
    let question_id = a.id("questionId")?;
    // Any number is a well-formed rating; only an integral one (4 or 4.0)
    // is kept. A non-integral rating is an invalid answer, which is for the
    // analytics to count, not a malformed event.
    let rating = match a.take_opt("rating") {
        None => None,
        Some(v) => match ejson::decode(&v)? {
            n @ (Ejson::Int(_) | Ejson::Double(_)) => n.as_i64(),
            _ => return Err(a.wrong("rating", "a number", &v)),
        },
    };
    let option_ids = match a.take_opt("optionIds") {
        None => None,
        Some(v) => Some(ids_value(v, &a.path.key("optionIds"), a.kind)?),
    };
    let text = a.opt_text("text")?;
    Ok(SurveyAnswer {
        question_id,
        rating,
        option_ids,
        text,
    })
}

/// Where a field is, for messages; only rendered when something is wrong.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'static str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    fn key(&'a self, key: &'static str) -> Path<'a> {
        Path::Key(self, key)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str("the document"),
            Path::Key(Path::Root, key) => f.write_str(key),
            Path::Key(parent, key) => write!(f, "{parent}.{key}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

fn wrong_at(at: &Path<'_>, kind: EventErrorKind, expected: &str, got: &Value) -> EventError {
    let got = match got {
        Value::String(s) if s.chars().nth(MAX_ID_CHARS).is_some() => {
            format!("{} ({} characters)", ejson::show(got), s.chars().count())
        }
        _ => ejson::show(got),
    };
    EventError::new(kind, format!("{at} must be {expected}, got {got}"))
}

const ID_EXPECTED: &str = "a string of 1 to 64 characters";

fn is_id(s: &str) -> bool {
    // 1..=64 bytes is 1..=64 characters: most ids need no counting.
    !s.is_empty() && (s.len() <= MAX_ID_CHARS || s.chars().nth(MAX_ID_CHARS).is_none())
}

fn id_value(v: Value, at: &Path<'_>, kind: EventErrorKind) -> Result<String, EventError> {
    match v {
        Value::String(s) if is_id(&s) => Ok(s),
        other => Err(wrong_at(at, kind, ID_EXPECTED, &other)),
    }
}

fn ids_value(v: Value, at: &Path<'_>, kind: EventErrorKind) -> Result<Vec<String>, EventError> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| id_value(item, &Path::Index(at, i), kind))
            .collect(),
        other => Err(wrong_at(at, kind, "an array of strings", &other)),
    }
}

/// A document whose fields are taken out (moved, not cloned) as they are read.
struct Obj<'p> {
    map: Map<String, Value>,
    path: Path<'p>,
    kind: EventErrorKind,
}

impl<'p> Obj<'p> {
    fn new(map: Map<String, Value>, path: Path<'p>, kind: EventErrorKind) -> Obj<'p> {
        Obj { map, path, kind }
    }

    /// A sub-document of this one, for reading its fields.
    fn child<'s>(&'s self, key: &'static str, map: Map<String, Value>) -> Obj<'s> {
        Obj::new(map, Path::Key(&self.path, key), self.kind)
    }

    fn wrong(&self, key: &'static str, expected: &str, got: &Value) -> EventError {
        wrong_at(&self.path.key(key), self.kind, expected, got)
    }

    /// The field, taken out; `None` when missing or null.
    fn take_opt(&mut self, key: &str) -> Option<Value> {
        match self.map.get_mut(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.take()),
        }
    }

    /// The field, taken out; missing or null is an error.
    fn take_required(&mut self, key: &'static str, expected: &str) -> Result<Value, EventError> {
        match self.map.get_mut(key) {
            None => Err(EventError::new(
                self.kind,
                format!("{} is missing", self.path.key(key)),
            )),
            Some(Value::Null) => Err(self.wrong(key, expected, &Value::Null)),
            Some(v) => Ok(v.take()),
        }
    }

    fn id(&mut self, key: &'static str) -> Result<String, EventError> {
        let v = self.take_required(key, ID_EXPECTED)?;
        id_value(v, &self.path.key(key), self.kind)
    }

    fn ids(&mut self, key: &'static str) -> Result<Vec<String>, EventError> {
        let v = self.take_required(key, "an array of strings")?;
        ids_value(v, &self.path.key(key), self.kind)
    }

    fn text(&mut self, key: &'static str) -> Result<String, EventError> {
        match self.take_required(key, "a string")? {
            Value::String(s) => Ok(s),
            other => Err(self.wrong(key, "a string", &other)),
        }
    }

    fn non_empty_text(&mut self, key: &'static str) -> Result<String, EventError> {
        const EXPECTED: &str = "a non-empty string";
        match self.take_required(key, EXPECTED)? {
            Value::String(s) if !s.is_empty() => Ok(s),
            other => Err(self.wrong(key, EXPECTED, &other)),
        }
    }

    fn opt_text(&mut self, key: &'static str) -> Result<Option<String>, EventError> {
        match self.take_opt(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong(key, "a string or null", &other)),
        }
    }

    fn boolean(&mut self, key: &'static str) -> Result<bool, EventError> {
        match self.take_required(key, "true or false")? {
            Value::Bool(b) => Ok(b),
            other => Err(self.wrong(key, "true or false", &other)),
        }
    }

    fn date(&mut self, key: &'static str) -> Result<i64, EventError> {
        const EXPECTED: &str = "a date ({\"$date\": ...})";
        let v = self.take_required(key, EXPECTED)?;
        match ejson::decode(&v).map_err(|e| e.in_key(key))? {
            Ejson::Date(ms) => Ok(ms),
            _ => Err(self.wrong(key, EXPECTED, &v)),
        }
    }

    /// `version`: an int32 or int64 >= 1, relaxed or canonical. A double is
    /// accepted when its value is integral (7.0, {"$numberDouble": "7.0"}):
    /// it hashes equal to 7 too, so identity and content stay consistent.
    /// 7.5, "7", 0 and negatives are errors.
    fn version(&mut self, key: &'static str) -> Result<i64, EventError> {
        const EXPECTED: &str = "an integer >= 1";
        let v = self.take_required(key, EXPECTED)?;
        match ejson::decode(&v).map_err(|e| e.in_key(key))?.as_i64() {
            Some(i) if i >= 1 => Ok(i),
            _ => Err(self.wrong(key, EXPECTED, &v)),
        }
    }

    /// An optional integer >= 1 (same number rules as `version`).
    fn opt_positive_int(&mut self, key: &'static str) -> Result<Option<i64>, EventError> {
        const EXPECTED: &str = "an integer >= 1";
        let Some(v) = self.take_opt(key) else {
            return Ok(None);
        };
        match ejson::decode(&v).map_err(|e| e.in_key(key))?.as_i64() {
            Some(i) if i >= 1 => Ok(Some(i)),
            _ => Err(self.wrong(key, EXPECTED, &v)),
        }
    }

    /// A required document (a JSON object that is not a wrapper).
    fn doc(&mut self, key: &'static str) -> Result<Map<String, Value>, EventError> {
        const EXPECTED: &str = "a document (JSON object)";
        let v = self.take_required(key, EXPECTED)?;
        self.doc_value(key, v, EXPECTED)
    }

    /// An optional document: missing or null is `None`.
    fn opt_doc(&mut self, key: &'static str) -> Result<Option<Map<String, Value>>, EventError> {
        const EXPECTED: &str = "a document (JSON object) or null";
        match self.take_opt(key) {
            None => Ok(None),
            Some(v) => self.doc_value(key, v, EXPECTED).map(Some),
        }
    }

    fn doc_value(
        &self,
        key: &'static str,
        v: Value,
        expected: &str,
    ) -> Result<Map<String, Value>, EventError> {
        match v {
            Value::Object(m) if !ejson::has_dollar_key(&m) => Ok(m),
            other => Err(self.wrong(key, expected, &other)),
        }
    }

    fn person(&mut self, key: &'static str) -> Result<Person, EventError> {
        let map = self.doc(key)?;
        let mut person = self.child(key, map);
        Ok(Person {
            id: person.id("id")?,
            name: person.text("name")?,
        })
    }

    fn choices(&mut self, key: &'static str) -> Result<Vec<Choice>, EventError> {
        self.elements(
            key,
            "an array of documents with id and text",
            "a document with id and text",
            |c| {
                Ok(Choice {
                    id: c.id("id")?,
                    text: c.text("text")?,
                })
            },
        )
    }

    /// A required array of documents, each read by `read`.
    fn elements<T>(
        &mut self,
        key: &'static str,
        expected: &str,
        element: &str,
        mut read: impl FnMut(&mut Obj<'_>) -> Result<T, EventError>,
    ) -> Result<Vec<T>, EventError> {
        let items = match self.take_required(key, expected)? {
            Value::Array(items) => items,
            other => return Err(self.wrong(key, expected, &other)),
        };
        let at = self.path.key(key);
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let here = Path::Index(&at, i);
            let map = match item {
                Value::Object(m) if !ejson::has_dollar_key(&m) => m,
                other => return Err(wrong_at(&here, self.kind, element, &other)),
            };
            out.push(read(&mut Obj::new(map, here, self.kind))?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::HashMap;

    // -- helpers ------------------------------------------------------------

    /// A relaxed event line with the given type and `data` (JSON text).
    fn line(event_type: &str, data: &str) -> String {
        format!(
            r#"{{"_id": {{"$oid": "6140a1e5c2a4b3d2e1f0a9b8"}}, "streamId": "prs-1", "version": 3, "type": "{event_type}", "occurredAt": {{"$date": "2021-09-10T12:45:01.123Z"}}, "tenantId": "acme", "data": {data}}}"#
        )
    }

    /// An event line with the given envelope fields replaced (JSON text each).
    fn envelope(fields: &[(&str, &str)]) -> String {
        let mut doc: Value =
            serde_json::from_str(&line("PollClosed", r#"{"pollId": "p"}"#)).unwrap();
        for (key, value) in fields {
            if value.is_empty() {
                doc.as_object_mut().unwrap().remove(*key);
            } else {
                doc[*key] = serde_json::from_str(value).unwrap();
            }
        }
        doc.to_string()
    }

    fn ok(text: &str) -> Event {
        match parse_event(text) {
            Ok(e) => e,
            Err(e) => panic!("expected a valid event, got error {e:?} for {text}"),
        }
    }

    fn err(text: &str) -> String {
        match parse_event(text) {
            Ok(e) => panic!("expected an error, got {e:?} for {text}"),
            Err(e) => e.to_string(),
        }
    }

    fn err_kind(text: &str) -> EventErrorKind {
        parse_event(text).unwrap_err().kind()
    }

    fn body(event_type: &str, data: &str) -> EventBody {
        ok(&line(event_type, data)).body
    }

    fn occurred_at(date: &str) -> Result<i64, String> {
        parse_event(&envelope(&[("occurredAt", date)]))
            .map(|e| e.occurred_at)
            .map_err(|e| e.to_string())
    }

    const T: i64 = 1_631_277_901_123; // 2021-09-10T12:45:01.123Z

    fn viewer_joined(data: &str, meta: &str) -> ViewerJoined {
        let mut text = line("ViewerJoined", data);
        if !meta.is_empty() {
            text.pop();
            text.push_str(&format!(r#", "meta": {meta}}}"#));
        }
        match ok(&text).body {
            EventBody::ViewerJoined(v) => v,
            other => panic!("not ViewerJoined: {other:?}"),
        }
    }

    // -- Extended JSON forms --------------------------------------------------

    #[test]
    fn oid_is_decoded_and_checked() {
        ok(&envelope(&[(
            "_id",
            r#"{"$oid": "6140A1E5C2A4B3D2E1F0A9B8"}"#,
        )]));
        assert_eq!(
            err(&envelope(&[(
                "_id",
                r#"{"$oid": "6140a1e5c2a4b3d2e1f0a9bz"}"#
            )])),
            r#"_id: $oid must be a string of 24 hexadecimal digits, got "6140a1e5c2a4b3d2e1f0a9bz""#
        );
        assert!(err(&envelope(&[("_id", r#"{"$oid": "abc"}"#)])).starts_with("_id: $oid must be"));
        assert!(err(&envelope(&[("_id", r#"{"$oid": 5}"#)])).starts_with("_id: $oid must be"));
        // `_id` is optional.
        ok(&envelope(&[("_id", "")]));
    }

    #[test]
    fn version_int32_relaxed_and_canonical() {
        assert_eq!(ok(&envelope(&[("version", "7")])).version, 7);
        assert_eq!(
            ok(&envelope(&[("version", r#"{"$numberInt": "7"}"#)])).version,
            7
        );
        assert_eq!(
            err(&envelope(&[("version", r#"{"$numberInt": "5000000000"}"#)])),
            r#"version: $numberInt must be a string holding a 32-bit integer, got "5000000000""#
        );
        assert!(
            err(&envelope(&[("version", r#"{"$numberInt": 7}"#)])).contains("$numberInt must be")
        );
    }

    #[test]
    fn version_int64_relaxed_and_canonical() {
        assert_eq!(
            ok(&envelope(&[("version", "5000000000")])).version,
            5_000_000_000
        );
        assert_eq!(
            ok(&envelope(&[(
                "version",
                r#"{"$numberLong": "5000000000"}"#
            )]))
            .version,
            5_000_000_000
        );
        assert_eq!(
            ok(&envelope(&[("version", r#"{"$numberLong": "7"}"#)])).version,
            7
        );
        assert!(err(&envelope(&[("version", r#"{"$numberLong": "7x"}"#)]))
            .starts_with("version: $numberLong must be a string holding a 64-bit integer"));
    }

    #[test]
    fn version_doubles_only_when_integral() {
        assert_eq!(ok(&envelope(&[("version", "7.0")])).version, 7);
        assert_eq!(
            ok(&envelope(&[("version", r#"{"$numberDouble": "7.0"}"#)])).version,
            7
        );
        assert_eq!(
            err(&envelope(&[("version", "7.5")])),
            "version must be an integer >= 1, got 7.5"
        );
        assert_eq!(
            err(&envelope(&[("version", r#"{"$numberDouble": "NaN"}"#)])),
            r#"version must be an integer >= 1, got {"$numberDouble":"NaN"}"#
        );
    }

    #[test]
    fn version_must_be_a_positive_integer() {
        assert_eq!(
            err(&envelope(&[("version", "0")])),
            "version must be an integer >= 1, got 0"
        );
        assert_eq!(
            err(&envelope(&[("version", "-3")])),
            "version must be an integer >= 1, got -3"
        );
        assert_eq!(
            err(&envelope(&[("version", r#""7""#)])),
            r#"version must be an integer >= 1, got "7""#
        );
        assert_eq!(
            err(&envelope(&[("version", "true")])),
            "version must be an integer >= 1, got true"
        );
        assert_eq!(
            err(&envelope(&[("version", "null")])),
            "version must be an integer >= 1, got null"
        );
        assert_eq!(err(&envelope(&[("version", "")])), "version is missing");
        assert_eq!(
            err(&envelope(&[("version", "18446744073709551615")])),
            "version must be an integer >= 1, got 18446744073709551615"
        );
        assert_eq!(
            err_kind(&envelope(&[("version", "0")])),
            EventErrorKind::Envelope
        );
    }

    #[test]
    fn number_double_forms_in_data() {
        for v in [
            r#"{"$numberDouble": "1.5"}"#,
            r#"{"$numberDouble": "-1.5e-7"}"#,
            r#"{"$numberDouble": "Infinity"}"#,
            r#"{"$numberDouble": "-Infinity"}"#,
            r#"{"$numberDouble": "NaN"}"#,
            "1.5",
        ] {
            ok(&line("SlideChanged", &format!(r#"{{"x": {v}}}"#)));
        }
        for v in [
            r#"{"$numberDouble": "inf"}"#,
            r#"{"$numberDouble": "nan"}"#,
            r#"{"$numberDouble": ""}"#,
            r#"{"$numberDouble": " 1"}"#,
            r#"{"$numberDouble": "1e999"}"#,
            r#"{"$numberDouble": 1.5}"#,
        ] {
            let e = err(&line("SlideChanged", &format!(r#"{{"x": {v}}}"#)));
            assert!(
                e.starts_with("data.x: $numberDouble must be a string holding a number"),
                "{e}"
            );
        }
    }

    #[test]
    fn date_relaxed_utc_with_millis() {
        assert_eq!(
            occurred_at(r#"{"$date": "2021-09-10T12:45:01.123Z"}"#),
            Ok(T)
        );
        assert_eq!(occurred_at(r#"{"$date": "1970-01-01T00:00:00Z"}"#), Ok(0));
        assert_eq!(
            occurred_at(r#"{"$date": "1969-12-31T23:59:59.999Z"}"#),
            Ok(-1)
        );
        assert_eq!(
            occurred_at(r#"{"$date": "2000-02-29T00:00:00Z"}"#),
            Ok(951_782_400_000)
        );
        assert_eq!(
            occurred_at(r#"{"$date": "2021-09-10t12:45:01.123z"}"#),
            Ok(T)
        );
    }

    #[test]
    fn date_relaxed_with_offset() {
        assert_eq!(
            occurred_at(r#"{"$date": "2021-09-10T14:45:01.123+02:00"}"#),
            Ok(T)
        );
        assert_eq!(
            occurred_at(r#"{"$date": "2021-09-10T07:45:01.123-05:00"}"#),
            Ok(T)
        );
        assert_eq!(
            occurred_at(r#"{"$date": "2021-09-10T12:45:01.123+00:00"}"#),
            Ok(T)
        );
        assert_eq!(
            occurred_at(r#"{"$date": "2021-09-11T00:15:01.123+11:30"}"#),
            Ok(T)
        );
    }

    #[test]
    fn date_relaxed_without_millis_or_with_more_digits() {
        assert_eq!(
            occurred_at(r#"{"$date": "2021-09-10T12:45:01Z"}"#),
            Ok(T - 123)
        );
        assert_eq!(
            occurred_at(r#"{"$date": "2021-09-10T14:45:01+02:00"}"#),
            Ok(T - 123)
        );
        assert_eq!(
            occurred_at(r#"{"$date": "2021-09-10T12:45:01.1Z"}"#),
            Ok(T - 23)
        );
        assert_eq!(
            occurred_at(r#"{"$date": "2021-09-10T12:45:01.12Z"}"#),
            Ok(T - 3)
        );
        assert_eq!(
            occurred_at(r#"{"$date": "2021-09-10T12:45:01.123999999Z"}"#),
            Ok(T)
        );
    }

    #[test]
    fn date_canonical() {
        assert_eq!(
            occurred_at(r#"{"$date": {"$numberLong": "1631277901123"}}"#),
            Ok(T)
        );
        assert_eq!(occurred_at(r#"{"$date": {"$numberLong": "-1"}}"#), Ok(-1));
        assert!(occurred_at(r#"{"$date": {"$numberLong": 1631277901123}}"#).is_err());
        assert!(occurred_at(r#"{"$date": {"$numberInt": "5"}}"#).is_err());
        assert!(occurred_at(r#"{"$date": {"$numberLong": "1", "x": 1}}"#).is_err());
    }

    #[test]
    fn date_legacy_number() {
        assert_eq!(occurred_at(r#"{"$date": 1631277901123}"#), Ok(T));
        assert_eq!(
            occurred_at(r#"{"$date": 1.5}"#),
            Err("occurredAt: $date must be an RFC 3339 date string, {\"$numberLong\": \"<ms>\"} or an integer number of milliseconds, got 1.5".to_owned())
        );
    }

    #[test]
    fn invalid_dates_are_rejected() {
        for (date, why) in [
            ("2021-13-10T12:45:01Z", "month must be 01 to 12"),
            ("2021-00-10T12:45:01Z", "month must be 01 to 12"),
            ("2021-09-32T12:45:01Z", "day is out of range for the month"),
            ("2021-09-31T12:45:01Z", "day is out of range for the month"),
            ("2021-02-29T12:45:01Z", "day is out of range for the month"),
            ("1900-02-29T12:45:01Z", "day is out of range for the month"),
            ("2021-09-00T12:45:01Z", "day is out of range for the month"),
            ("2021-09-10T24:00:00Z", "hour must be 00 to 23"),
            ("2021-09-10T12:60:01Z", "minute must be 00 to 59"),
            ("2021-09-10T12:45:60Z", "second must be 00 to 59"),
            (
                "2021-09-10T12:45:01+24:00",
                "the UTC offset is out of range",
            ),
            (
                "2021-09-10T12:45:01+02:60",
                "the UTC offset is out of range",
            ),
            (
                "2021-09-10T12:45:01",
                "missing time zone (Z or an offset like +02:00)",
            ),
            (
                "2021-09-10T12:45:01.Z",
                "a '.' must be followed by fraction digits",
            ),
            (
                "2021-09-10T12:45:01.1234567890Z",
                "at most 9 fraction digits are allowed",
            ),
            (
                "2021-09-10T12:45:01Zx",
                "unexpected text after the time zone",
            ),
            (
                "2021-09-10 12:45:01Z",
                "expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)",
            ),
            (
                "2021-9-10T12:45:01Z",
                "expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)",
            ),
            (
                "2021-09-10T12:45:01+0200",
                "expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)",
            ),
            (
                "",
                "expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)",
            ),
            (
                "２０２１-09-10T12:45:01Z",
                "expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)",
            ),
        ] {
            let got = occurred_at(&json!({ "$date": date }).to_string());
            assert_eq!(
                got,
                Err(format!(
                    "occurredAt: $date {} is not a valid date: {why}",
                    json!(date)
                )),
                "{date}"
            );
        }
    }

    #[test]
    fn occurred_at_must_be_a_date() {
        assert_eq!(
            occurred_at(r#""2021-09-10T12:45:01.123Z""#),
            Err(
                r#"occurredAt must be a date ({"$date": ...}), got "2021-09-10T12:45:01.123Z""#
                    .to_owned()
            )
        );
        assert_eq!(occurred_at(""), Err("occurredAt is missing".to_owned()));
        assert!(occurred_at("1631277901123").is_err());
        assert!(occurred_at(r#"{"$oid": "6140a1e5c2a4b3d2e1f0a9b8"}"#).is_err());
    }

    #[test]
    fn wrappers_must_be_alone_and_known() {
        assert_eq!(
            err(&envelope(&[(
                "occurredAt",
                r#"{"$date": 1631277901123, "x": 1}"#
            )])),
            r#"occurredAt: Extended JSON wrapper "$date" must be the only key of its object, got {"$date":1631277901123,"x":1}"#
        );
        assert_eq!(
            err(&line(
                "SlideChanged",
                r#"{"a": [1, {"b": {"$binary": "AA=="}}]}"#
            )),
            r#"data.a[1].b: unknown Extended JSON wrapper "$binary""#
        );
        assert_eq!(
            err(&line("SlideChanged", r#"{"a": 1, "$b": 2}"#)),
            r#"data: unknown Extended JSON wrapper "$b""#
        );
        assert_eq!(
            err(&envelope(&[("_id", r#"{"$numberDecimal": "1"}"#)])),
            r#"_id: unknown Extended JSON wrapper "$numberDecimal""#
        );
        assert_eq!(
            err(&envelope(&[("unknownField", r#"{"$weird": 1}"#)])),
            r#"unknownField: unknown Extended JSON wrapper "$weird""#
        );
        assert_eq!(
            err(&envelope(&[("meta", r#"{"x": {"$numberInt": "x"}}"#)])),
            r#"meta.x: $numberInt must be a string holding a 32-bit integer, got "x""#
        );
        assert_eq!(
            err_kind(&envelope(&[("_id", r#"{"$x": 1}"#)])),
            EventErrorKind::ExtendedJson
        );
        // The document itself.
        assert_eq!(
            err(r#"{"$weird": 1}"#),
            r#"unknown Extended JSON wrapper "$weird""#
        );
        assert_eq!(
            err(r#"{"$oid": "6140a1e5c2a4b3d2e1f0a9b8"}"#),
            "the document must be a JSON object, got an ObjectId"
        );
    }

    #[test]
    fn long_values_are_quoted_cut() {
        let long = "é".repeat(200);
        let e = err(&envelope(&[("version", &json!(long).to_string())]));
        assert_eq!(
            e,
            format!(
                "version must be an integer >= 1, got \"{}… (200 characters)",
                "é".repeat(59)
            )
        );
        let e = err(&envelope(&[(
            "_id",
            &json!({ format!("${long}"): 1 }).to_string(),
        )]));
        assert_eq!(
            e,
            format!("_id: unknown Extended JSON wrapper \"${}…", "é".repeat(58))
        );
    }

    // -- envelope -------------------------------------------------------------

    #[test]
    fn envelope_fields_are_read() {
        let e = ok(&line("PollClosed", r#"{"pollId": "p"}"#));
        assert_eq!(e.stream_id, "prs-1");
        assert_eq!(e.version, 3);
        assert_eq!(e.event_type, "PollClosed");
        assert_eq!(e.occurred_at, T);
        assert_eq!(e.tenant_id, "acme");
        assert_eq!(e.schema_version, 1);
        assert_eq!(e.data_point(), Some(DataPoint::Polls));
        assert_eq!(
            e.body,
            EventBody::PollClosed {
                poll_id: "p".into()
            }
        );
    }

    #[test]
    fn stream_and_tenant_ids_are_1_to_64_characters() {
        for key in ["streamId", "tenantId"] {
            let max = json!("é".repeat(64)).to_string();
            ok(&envelope(&[(key, &max)]));
            assert_eq!(
                err(&envelope(&[(key, r#""""#)])),
                format!(r#"{key} must be a string of 1 to 64 characters, got """#)
            );
            let e = err(&envelope(&[(key, &json!("x".repeat(65)).to_string())]));
            assert_eq!(
                e,
                format!(
                    "{key} must be a string of 1 to 64 characters, got \"{}… (65 characters)",
                    "x".repeat(59)
                )
            );
            assert_eq!(
                err(&envelope(&[(key, "5")])),
                format!("{key} must be a string of 1 to 64 characters, got 5")
            );
            assert_eq!(err(&envelope(&[(key, "")])), format!("{key} is missing"));
            assert_eq!(
                err(&envelope(&[(key, "null")])),
                format!("{key} must be a string of 1 to 64 characters, got null")
            );
        }
    }

    #[test]
    fn type_must_be_a_non_empty_string() {
        assert_eq!(
            err(&envelope(&[("type", r#""""#)])),
            r#"type must be a non-empty string, got """#
        );
        assert_eq!(
            err(&envelope(&[("type", "1")])),
            "type must be a non-empty string, got 1"
        );
        assert_eq!(err(&envelope(&[("type", "")])), "type is missing");
    }

    #[test]
    fn data_must_be_a_document() {
        for (data, got) in [
            ("[]", "[]"),
            ("null", "null"),
            (r#""x""#, r#""x""#),
            (r#"{"$date": 5}"#, r#"{"$date":5}"#),
        ] {
            assert_eq!(
                err(&envelope(&[("data", data)])),
                format!("data must be a document (JSON object), got {got}")
            );
        }
        assert_eq!(err(&envelope(&[("data", "")])), "data is missing");
        // Also for types that are not analytics.
        assert!(parse_event(&line("SlideChanged", "[1]")).is_err());
    }

    #[test]
    fn meta_and_schema_version() {
        assert_eq!(ok(&envelope(&[("meta", "null")])).schema_version, 1);
        assert_eq!(ok(&envelope(&[("meta", "{}")])).schema_version, 1);
        assert_eq!(
            ok(&envelope(&[("meta", r#"{"schemaVersion": null}"#)])).schema_version,
            1
        );
        assert_eq!(
            ok(&envelope(&[(
                "meta",
                r#"{"schemaVersion": 2, "source": "x"}"#
            )]))
            .schema_version,
            2
        );
        assert_eq!(
            ok(&envelope(&[(
                "meta",
                r#"{"schemaVersion": {"$numberInt": "2"}}"#
            )]))
            .schema_version,
            2
        );
        assert_eq!(
            err(&envelope(&[("meta", "5")])),
            "meta must be a document (JSON object) or null, got 5"
        );
        assert_eq!(
            err(&envelope(&[("meta", r#"{"schemaVersion": "2"}"#)])),
            r#"meta.schemaVersion must be an integer >= 1, got "2""#
        );
        assert_eq!(
            err(&envelope(&[("meta", r#"{"schemaVersion": 0}"#)])),
            "meta.schemaVersion must be an integer >= 1, got 0"
        );
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let plain = ok(&line("PollClosed", r#"{"pollId": "p"}"#));
        let extra = ok(&envelope(&[
            (
                "extra",
                r#"{"nested": [1, {"$date": 5}, {"a": null}], "x": "y"}"#,
            ),
            (
                "data",
                r#"{"pollId": "p", "more": {"$oid": "6140a1e5c2a4b3d2e1f0a9b8"}, "n": {"$numberLong": "5"}}"#,
            ),
            (
                "meta",
                r#"{"source": "x", "correlationId": "c", "other": [true]}"#,
            ),
        ]));
        assert_eq!(extra.body, plain.body);
        assert_eq!(extra.stream_id, plain.stream_id);
        assert_ne!(extra.content_hash, plain.content_hash);
    }

    // -- JSON level -----------------------------------------------------------

    #[test]
    fn not_json_or_not_an_object() {
        assert_eq!(
            err("this is not json"),
            "not valid JSON: expected ident at line 1 column 2"
        );
        assert_eq!(
            err(""),
            "not valid JSON: EOF while parsing a value at line 1 column 0"
        );
        assert_eq!(err_kind("{"), EventErrorKind::InvalidJson);
        assert_eq!(
            err("[1, 2, 3]"),
            "the document must be a JSON object, got an array"
        );
        assert_eq!(err("null"), "the document must be a JSON object, got null");
        assert_eq!(
            err(r#""x""#),
            "the document must be a JSON object, got a string"
        );
        assert_eq!(
            err("7"),
            "the document must be a JSON object, got an integer"
        );
        assert_eq!(err_kind("7"), EventErrorKind::NotADocument);
        // Trailing whitespace (CRLF exports) is fine, trailing text is not.
        ok(&format!("{}\r\n", line("PollClosed", r#"{"pollId": "p"}"#)));
        assert!(
            err(&format!("{} x", line("PollClosed", r#"{"pollId": "p"}"#)))
                .starts_with("not valid JSON: trailing characters")
        );
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(err(&line("SlideChanged", &format!(r#"{{"x": {deep}}}"#)))
            .starts_with("not valid JSON: recursion limit exceeded"));
        let ok_deep = format!("{}1{}", "[".repeat(120), "]".repeat(120));
        ok(&line("SlideChanged", &format!(r#"{{"x": {ok_deep}}}"#)));
    }

    // -- the sample's malformed lines -------------------------------------------

    #[test]
    fn sample_malformed_lines() {
        let cases = [
            (
                "[1, 2, 3]",
                EventErrorKind::NotADocument,
                "the document must be a JSON object, got an array",
            ),
            (
                r#"{"_id": {"$oid": "6140a1e5c2a4b3d2e1f0a9b9"}, "streamId": "prs-bad-2", "version": "7", "type": "PollClosed", "occurredAt": {"$date": "2021-09-10T12:45:01.123Z"}, "tenantId": "acme", "data": {"pollId": "p"}}"#,
                EventErrorKind::Envelope,
                r#"version must be an integer >= 1, got "7""#,
            ),
            (
                r#"{"_id": {"$oid": "6140a1e5c2a4b3d2e1f0a9b8"}, "streamId": "prs-bad-1", "version": 0, "type": "PollClosed", "occurredAt": {"$date": "2021-09-10T12:45:01.123Z"}, "tenantId": "acme", "data": {"pollId": "p"}}"#,
                EventErrorKind::Envelope,
                "version must be an integer >= 1, got 0",
            ),
            (
                r#"{"_id": {"$oid": "6140a1e5c2a4b3d2e1f0a9ba"}, "streamId": "prs-bad-3", "version": 3, "type": "ViewerJoined", "occurredAt": {"$date": "2021-09-10T12:45:01.123Z"}, "tenantId": "acme", "data": {"sessionId": "s"}}"#,
                EventErrorKind::Data,
                "data.viewerId is missing",
            ),
            (
                r#"{"_id": {"$oid": "6140a1e5c2a4b3d2e1f0a9bb"}, "streamId": "prs-bad-4", "version": 3, "type": "PollVoted", "occurredAt": {"$weird": 1}, "tenantId": "acme", "data": {"pollId": "p", "viewerId": "v", "optionIds": []}}"#,
                EventErrorKind::ExtendedJson,
                r#"occurredAt: unknown Extended JSON wrapper "$weird""#,
            ),
            (
                r#"{"_id": {"$oid": "6140a1e5c2a4b3d2e1f0a9bc"}, "streamId": "prs-bad-5", "version": 4, "type": "PollVoted", "occurredAt": {"$date": "2021-09-10T12:45:01.123Z"}, "tenantId": "acme", "data": {"pollId": "p", "viewerId": "v", "optionIds": "o1"}}"#,
                EventErrorKind::Data,
                r#"data.optionIds must be an array of strings, got "o1""#,
            ),
            (
                r#"{"streamId": "prs-bad", "type": "ViewerJoined""#,
                EventErrorKind::InvalidJson,
                "not valid JSON: EOF while parsing an object at line 1 column 46",
            ),
            (
                "this is not json",
                EventErrorKind::InvalidJson,
                "not valid JSON: expected ident at line 1 column 2",
            ),
        ];
        for (text, kind, message) in cases {
            let e = parse_event(text).unwrap_err();
            assert_eq!(e.to_string(), message);
            assert_eq!(e.reason(), message);
            assert_eq!(e.message(), message);
            assert_eq!(e.kind(), kind, "{message}");
        }
    }

    // -- analytics types --------------------------------------------------------

    #[test]
    fn presentation_types() {
        assert_eq!(
            body(
                "PresentationCreated",
                r#"{"title": "Q3", "presenter": {"id": "e-1", "name": "Tomás"}, "scheduledStart": {"$date": {"$numberLong": "1631628000000"}}, "timezone": "Asia/Tokyo"}"#
            ),
            EventBody::PresentationCreated {
                title: "Q3".into(),
                presenter: Person {
                    id: "e-1".into(),
                    name: "Tomás".into()
                },
                scheduled_start: 1_631_628_000_000,
                timezone: "Asia/Tokyo".into(),
            }
        );
        assert_eq!(
            body("PresentationRenamed", r#"{"title": "Q4 🎉"}"#),
            EventBody::PresentationRenamed {
                title: "Q4 🎉".into()
            }
        );
        assert_eq!(
            body("PresentationStarted", "{}"),
            EventBody::PresentationStarted
        );
        assert_eq!(
            body("PresentationEnded", r#"{"x": 1}"#),
            EventBody::PresentationEnded
        );
        assert_eq!(
            err(&line(
                "PresentationCreated",
                r#"{"title": "Q3", "presenter": {"id": "", "name": "T"}, "scheduledStart": {"$date": 0}, "timezone": "UTC"}"#
            )),
            r#"data.presenter.id must be a string of 1 to 64 characters, got """#
        );
        assert_eq!(
            err(&line(
                "PresentationCreated",
                r#"{"title": "Q3", "presenter": {"id": "e", "name": "T"}, "scheduledStart": "2021-09-10T12:45:01Z", "timezone": "UTC"}"#
            )),
            r#"data.scheduledStart must be a date ({"$date": ...}), got "2021-09-10T12:45:01Z""#
        );
        assert_eq!(
            err(&line(
                "PresentationCreated",
                r#"{"title": "Q3", "presenter": null, "scheduledStart": {"$date": 0}, "timezone": "UTC"}"#
            )),
            "data.presenter must be a document (JSON object), got null"
        );
        assert_eq!(
            err(&line("PresentationRenamed", r#"{"title": 5}"#)),
            "data.title must be a string, got 5"
        );
    }

    #[test]
    fn attendance_types() {
        assert_eq!(
            body(
                "ViewerHeartbeat",
                r#"{"viewerId": "u-1", "sessionId": "s-1"}"#
            ),
            EventBody::ViewerHeartbeat {
                viewer_id: "u-1".into(),
                session_id: "s-1".into()
            }
        );
        assert_eq!(
            body("ViewerLeft", r#"{"viewerId": "u-1", "sessionId": "s-1"}"#),
            EventBody::ViewerLeft {
                viewer_id: "u-1".into(),
                session_id: "s-1".into()
            }
        );
        assert_eq!(
            err(&line("ViewerLeft", r#"{"viewerId": "u-1"}"#)),
            "data.sessionId is missing"
        );
        assert_eq!(
            err(&line(
                "ViewerHeartbeat",
                r#"{"viewerId": null, "sessionId": "s"}"#
            )),
            "data.viewerId must be a string of 1 to 64 characters, got null"
        );
    }

    #[test]
    fn viewer_joined_schema_1_device() {
        let v = viewer_joined(
            r#"{"viewerId": "u-122", "sessionId": "s-1-8", "profile": {"name": "Priya", "email": "p@x", "department": " Marketing "}, "device": "tv", "location": {"country": "jp", "region": "r"}}"#,
            r#"{"schemaVersion": 1, "source": "viewer-web"}"#,
        );
        assert_eq!(
            v,
            ViewerJoined {
                viewer_id: "u-122".into(),
                session_id: "s-1-8".into(),
                name: Some("Priya".into()),
                email: Some("p@x".into()),
                department: Some(" Marketing ".into()),
                country: Some("jp".into()),
                region: Some("r".into()),
                device: Some("tv".into()),
            }
        );
        // No meta at all is schema 1 too.
        assert_eq!(
            viewer_joined(
                r#"{"viewerId": "u", "sessionId": "s", "device": "mobile"}"#,
                ""
            )
            .device,
            Some("mobile".into())
        );
    }

    #[test]
    fn viewer_joined_schema_2_device() {
        let data = r#"{"viewerId": "u", "sessionId": "s", "device": {"type": "smartwatch", "os": "iOS", "browser": "Chrome"}}"#;
        let v = viewer_joined(data, r#"{"schemaVersion": {"$numberInt": "2"}}"#);
        assert_eq!(v.device, Some("smartwatch".into()));
        // Shape wins over a wrong schemaVersion, both ways.
        assert_eq!(
            viewer_joined(data, r#"{"schemaVersion": 1}"#).device,
            Some("smartwatch".into())
        );
        assert_eq!(
            viewer_joined(
                r#"{"viewerId": "u", "sessionId": "s", "device": "tv"}"#,
                r#"{"schemaVersion": 2}"#
            )
            .device,
            Some("tv".into())
        );
        assert_eq!(
            viewer_joined(
                r#"{"viewerId": "u", "sessionId": "s", "device": {"os": "iOS"}}"#,
                ""
            )
            .device,
            None
        );
        assert_eq!(
            viewer_joined(
                r#"{"viewerId": "u", "sessionId": "s", "device": {"type": null}}"#,
                ""
            )
            .device,
            None
        );
        assert_eq!(
            viewer_joined(r#"{"viewerId": "u", "sessionId": "s", "device": null}"#, "").device,
            None
        );
        assert_eq!(
            err(&line(
                "ViewerJoined",
                r#"{"viewerId": "u", "sessionId": "s", "device": {"type": 2}}"#
            )),
            "data.device.type must be a string or null, got 2"
        );
        assert_eq!(
            err(&line(
                "ViewerJoined",
                r#"{"viewerId": "u", "sessionId": "s", "device": 2}"#
            )),
            r#"data.device must be a string or a document with a string "type", got 2"#
        );
    }

    #[test]
    fn viewer_joined_optional_profile_and_location() {
        let bare = ViewerJoined {
            viewer_id: "u".into(),
            session_id: "s".into(),
            name: None,
            email: None,
            department: None,
            country: None,
            region: None,
            device: None,
        };
        assert_eq!(
            viewer_joined(r#"{"viewerId": "u", "sessionId": "s"}"#, ""),
            bare
        );
        assert_eq!(
            viewer_joined(
                r#"{"viewerId": "u", "sessionId": "s", "profile": null, "location": null}"#,
                ""
            ),
            bare
        );
        let v = viewer_joined(
            r#"{"viewerId": "u", "sessionId": "s", "profile": {"name": null, "email": "e"}, "location": {"country": "GB"}}"#,
            "",
        );
        assert_eq!(
            (v.name, v.email, v.department, v.country, v.region),
            (None, Some("e".into()), None, Some("GB".into()), None)
        );
        assert_eq!(
            err(&line(
                "ViewerJoined",
                r#"{"viewerId": "u", "sessionId": "s", "profile": {"email": 5}}"#
            )),
            "data.profile.email must be a string or null, got 5"
        );
        assert_eq!(
            err(&line(
                "ViewerJoined",
                r#"{"viewerId": "u", "sessionId": "s", "location": {"region": ["r"]}}"#
            )),
            r#"data.location.region must be a string or null, got ["r"]"#
        );
        assert_eq!(
            err(&line(
                "ViewerJoined",
                r#"{"viewerId": "u", "sessionId": "s", "profile": "p"}"#
            )),
            r#"data.profile must be a document (JSON object) or null, got "p""#
        );
    }

    #[test]
    fn poll_types() {
        assert_eq!(
            body(
                "PollCreated",
                r#"{"pollId": "poll-0", "question": "Q?", "options": [{"id": "o0", "text": "Yes"}, {"id": "o1", "text": "Ça dépend"}], "multipleChoice": false}"#
            ),
            EventBody::PollCreated {
                poll_id: "poll-0".into(),
                question: "Q?".into(),
                options: vec![
                    Choice {
                        id: "o0".into(),
                        text: "Yes".into()
                    },
                    Choice {
                        id: "o1".into(),
                        text: "Ça dépend".into()
                    }
                ],
                multiple_choice: false,
            }
        );
        assert_eq!(
            body("PollClosed", r#"{"pollId": "p"}"#),
            EventBody::PollClosed {
                poll_id: "p".into()
            }
        );
        assert_eq!(
            body(
                "PollVoted",
                r#"{"pollId": "p", "viewerId": "v", "optionIds": ["o3", "o1"]}"#
            ),
            EventBody::PollVoted {
                poll_id: "p".into(),
                viewer_id: "v".into(),
                option_ids: vec!["o3".into(), "o1".into()]
            }
        );
        assert_eq!(
            err(&line(
                "PollVoted",
                r#"{"pollId": "p", "viewerId": "v", "optionIds": [1]}"#
            )),
            "data.optionIds[0] must be a string of 1 to 64 characters, got 1"
        );
        assert_eq!(
            err(&line(
                "PollCreated",
                r#"{"pollId": "p", "question": "Q", "options": [], "multipleChoice": "no"}"#
            )),
            r#"data.multipleChoice must be true or false, got "no""#
        );
        assert_eq!(
            err(&line(
                "PollCreated",
                r#"{"pollId": "p", "question": "Q", "options": [{"id": "a", "text": "A"}, "b"], "multipleChoice": true}"#
            )),
            r#"data.options[1] must be a document with id and text, got "b""#
        );
        assert_eq!(
            err(&line(
                "PollCreated",
                r#"{"pollId": "p", "question": "Q", "options": [{"id": "a"}], "multipleChoice": true}"#
            )),
            "data.options[0].text is missing"
        );
        assert_eq!(
            err(&line(
                "PollCreated",
                r#"{"pollId": "p", "question": "Q", "options": {"id": "a"}, "multipleChoice": true}"#
            )),
            r#"data.options must be an array of documents with id and text, got {"id":"a"}"#
        );
    }

    #[test]
    fn survey_created() {
        let b = body(
            "SurveyCreated",
            r#"{"surveyId": "survey-0", "title": "Feedback", "questions": [
                {"id": "q1", "kind": "rating", "text": "How useful?", "scale": {"$numberInt": "10"}},
                {"id": "q2", "kind": "choice", "text": "Topics?", "options": [{"id": "a", "text": "Strategy"}]},
                {"id": "q3", "kind": "text", "text": "Anything else?", "options": "ignored"},
                {"id": "q4", "kind": "rating", "text": "Again?", "scale": null}]}"#,
        );
        let EventBody::SurveyCreated {
            survey_id,
            title,
            questions,
        } = b
        else {
            panic!("{b:?}")
        };
        assert_eq!(
            (survey_id.as_str(), title.as_str()),
            ("survey-0", "Feedback")
        );
        assert_eq!(
            questions,
            vec![
                SurveyQuestion {
                    id: "q1".into(),
                    kind: QuestionKind::Rating,
                    text: "How useful?".into(),
                    scale: 10,
                    options: vec![]
                },
                SurveyQuestion {
                    id: "q2".into(),
                    kind: QuestionKind::Choice,
                    text: "Topics?".into(),
                    scale: 5,
                    options: vec![Choice {
                        id: "a".into(),
                        text: "Strategy".into()
                    }],
                },
                SurveyQuestion {
                    id: "q3".into(),
                    kind: QuestionKind::Text,
                    text: "Anything else?".into(),
                    scale: 5,
                    options: vec![]
                },
                SurveyQuestion {
                    id: "q4".into(),
                    kind: QuestionKind::Rating,
                    text: "Again?".into(),
                    scale: 5,
                    options: vec![]
                },
            ]
        );
        let survey = |q: &str| {
            line(
                "SurveyCreated",
                &format!(r#"{{"surveyId": "s", "title": "t", "questions": [{q}]}}"#),
            )
        };
        assert_eq!(
            err(&survey(r#"{"id": "q", "kind": "slider", "text": "t"}"#)),
            r#"data.questions[0].kind must be "rating", "choice" or "text", got "slider""#
        );
        assert_eq!(
            err(&survey(r#"{"id": "q", "kind": "choice", "text": "t"}"#)),
            "data.questions[0].options is missing"
        );
        assert_eq!(
            err(&survey(
                r#"{"id": "q", "kind": "rating", "text": "t", "scale": "5"}"#
            )),
            r#"data.questions[0].scale must be an integer >= 1, got "5""#
        );
        assert_eq!(
            err(&survey(
                r#"{"id": "q", "kind": "rating", "text": "t", "scale": 0}"#
            )),
            "data.questions[0].scale must be an integer >= 1, got 0"
        );
        assert_eq!(
            err(&survey(r#"{"kind": "rating", "text": "t"}"#)),
            "data.questions[0].id is missing"
        );
        assert_eq!(
            err(&survey("7")),
            "data.questions[0] must be a document, got 7"
        );
    }

    #[test]
    fn survey_submitted() {
        let b = body(
            "SurveySubmitted",
            r#"{"surveyId": "survey-0", "viewerId": "u-35", "responseId": "r", "answers": [
                {"questionId": "q1", "rating": 2},
                {"questionId": "q1", "rating": {"$numberInt": "4"}},
                {"questionId": "q1", "rating": 4.0},
                {"questionId": "q1", "rating": 4.5},
                {"questionId": "q1", "rating": {"$numberDouble": "NaN"}},
                {"questionId": "q1", "rating": null},
                {"questionId": "q2", "optionIds": ["zz", "c"]},
                {"questionId": "q3", "text": ""}]}"#,
        );
        let EventBody::SurveySubmitted {
            survey_id,
            viewer_id,
            answers,
        } = b
        else {
            panic!("{b:?}")
        };
        assert_eq!(
            (survey_id.as_str(), viewer_id.as_str()),
            ("survey-0", "u-35")
        );
        let a = |question_id: &str,
                 rating: Option<i64>,
                 option_ids: Option<Vec<&str>>,
                 text: Option<&str>| SurveyAnswer {
            question_id: question_id.into(),
            rating,
            option_ids: option_ids.map(|ids| ids.into_iter().map(String::from).collect()),
            text: text.map(String::from),
        };
        assert_eq!(
            answers,
            vec![
                a("q1", Some(2), None, None),
                a("q1", Some(4), None, None),
                a("q1", Some(4), None, None),
                a("q1", None, None, None),
                a("q1", None, None, None),
                a("q1", None, None, None),
                a("q2", None, Some(vec!["zz", "c"]), None),
                a("q3", None, None, Some("")),
            ]
        );
        let submitted = |answer: &str| {
            line(
                "SurveySubmitted",
                &format!(r#"{{"surveyId": "s", "viewerId": "v", "answers": [{answer}]}}"#),
            )
        };
        assert_eq!(
            err(&submitted(r#"{"questionId": "q", "rating": "4"}"#)),
            r#"data.answers[0].rating must be a number, got "4""#
        );
        assert_eq!(
            err(&submitted(r#"{"questionId": "q", "rating": {"$date": 4}}"#)),
            r#"data.answers[0].rating must be a number, got {"$date":4}"#
        );
        assert_eq!(
            err(&submitted(r#"{"questionId": "q", "optionIds": "a"}"#)),
            r#"data.answers[0].optionIds must be an array of strings, got "a""#
        );
        assert_eq!(
            err(&submitted(r#"{"questionId": "q", "text": 1}"#)),
            "data.answers[0].text must be a string or null, got 1"
        );
        assert_eq!(
            err(&line(
                "SurveySubmitted",
                r#"{"surveyId": "s", "viewerId": "v"}"#
            )),
            "data.answers is missing"
        );
    }

    #[test]
    fn qna_types() {
        assert_eq!(
            body(
                "QuestionAsked",
                r#"{"questionId": "qa-1", "viewerId": "u-27", "text": "Will the slides be shared?", "anonymous": true}"#
            ),
            EventBody::QuestionAsked {
                question_id: "qa-1".into(),
                viewer_id: "u-27".into(),
                text: "Will the slides be shared?".into(),
                anonymous: true,
            }
        );
        assert_eq!(
            body("QuestionUpvoted", r#"{"questionId": "q", "viewerId": "v"}"#),
            EventBody::QuestionUpvoted {
                question_id: "q".into(),
                viewer_id: "v".into()
            }
        );
        assert_eq!(
            body(
                "QuestionUpvoteWithdrawn",
                r#"{"questionId": "q", "viewerId": "v"}"#
            ),
            EventBody::QuestionUpvoteWithdrawn {
                question_id: "q".into(),
                viewer_id: "v".into()
            }
        );
        assert_eq!(
            body(
                "QuestionAnswered",
                r#"{"questionId": "qa-6", "answeredBy": {"id": "e-2", "name": "Lee"}, "method": "live"}"#
            ),
            EventBody::QuestionAnswered {
                question_id: "qa-6".into(),
                answered_by: Person {
                    id: "e-2".into(),
                    name: "Lee".into()
                },
                method: "live".into(),
            }
        );
        assert_eq!(
            body("QuestionDismissed", r#"{"questionId": "q"}"#),
            EventBody::QuestionDismissed {
                question_id: "q".into()
            }
        );
        assert_eq!(
            err(&line(
                "QuestionAsked",
                r#"{"questionId": "q", "viewerId": "v", "text": "t", "anonymous": 1}"#
            )),
            "data.anonymous must be true or false, got 1"
        );
        assert_eq!(
            err(&line(
                "QuestionAnswered",
                r#"{"questionId": "q", "answeredBy": {"id": "e"}, "method": "live"}"#
            )),
            "data.answeredBy.name is missing"
        );
        let long_text = json!("🙂".repeat(5000)).to_string();
        let b = body(
            "QuestionAsked",
            &format!(
                r#"{{"questionId": "q", "viewerId": "v", "text": {long_text}, "anonymous": false}}"#
            ),
        );
        assert!(matches!(b, EventBody::QuestionAsked { text, .. } if text.chars().count() == 5000));
    }

    #[test]
    fn every_analytics_type_parses_to_its_own_variant() {
        for (t, _) in fixtures() {
            let e = ok(&fixture_line(t));
            let analytics = DataPoint::of_type(t).is_some();
            assert_eq!(e.data_point().is_some(), analytics);
            assert_eq!(!matches!(e.body, EventBody::NotAnalytics), analytics, "{t}");
            let variant = format!("{:?}", e.body);
            if analytics {
                assert!(variant.starts_with(t), "{t}: {variant}");
            }
        }
        let analytics_count = fixtures()
            .iter()
            .filter(|(t, _)| DataPoint::of_type(t).is_some())
            .count();
        assert_eq!(analytics_count, 17);
    }

    #[test]
    fn not_analytics_types_are_accepted() {
        for t in [
            "SlideChanged",
            "ChatMessagePosted",
            "ProducerNoteAdded",
            "SomethingNew",
        ] {
            let e = ok(&line(
                t,
                r#"{"anything": [1, "x", {"$date": 0}], "viewerId": 5}"#,
            ));
            assert_eq!(e.body, EventBody::NotAnalytics);
            assert_eq!(e.event_type, t);
            assert_eq!(e.data_point(), None);
        }
        ok(&line("SlideChanged", "{}"));
        // Type names are case sensitive.
        assert_eq!(body("viewerjoined", "{}"), EventBody::NotAnalytics);
    }

    // -- content hash -----------------------------------------------------------

    const RELAXED: &str = r#"{"_id": {"$oid": "6b049b8f1e3781f812307b9d"}, "streamId": "prs-glo-0001", "version": 2329, "type": "SurveySubmitted", "occurredAt": {"$date": "2021-09-14T14:47:13.380Z"}, "tenantId": "globex", "data": {"surveyId": "survey-0", "viewerId": "u-102", "answers": [{"questionId": "q1", "rating": 4}, {"questionId": "q2", "optionIds": ["zz", "c"]}, {"questionId": "q4", "score": 2.5}]}, "meta": {"schemaVersion": 2, "big": 5000000000}}"#;
    const CANONICAL: &str = r#"{"_id": {"$oid": "6b049b8f1e3781f812307b9d"}, "streamId": "prs-glo-0001", "version": {"$numberInt": "2329"}, "type": "SurveySubmitted", "occurredAt": {"$date": {"$numberLong": "1631630833380"}}, "tenantId": "globex", "data": {"surveyId": "survey-0", "viewerId": "u-102", "answers": [{"questionId": "q1", "rating": {"$numberInt": "4"}}, {"questionId": "q2", "optionIds": ["zz", "c"]}, {"questionId": "q4", "score": {"$numberDouble": "2.5"}}]}, "meta": {"schemaVersion": {"$numberInt": "2"}, "big": {"$numberLong": "5000000000"}}}"#;
    const LEGACY: &str = r#"{"_id": {"$oid": "6B049B8F1E3781F812307B9D"}, "streamId": "prs-glo-0001", "version": {"$numberLong": "2329"}, "type": "SurveySubmitted", "occurredAt": {"$date": 1631630833380}, "tenantId": "globex", "data": {"surveyId": "survey-0", "viewerId": "u-102", "answers": [{"questionId": "q1", "rating": 4.0}, {"questionId": "q2", "optionIds": ["zz", "c"]}, {"questionId": "q4", "score": 2.5}]}, "meta": {"schemaVersion": 2, "big": {"$numberLong": "5000000000"}}}"#;
    const REORDERED: &str = r#"{"meta": {"big": 5000000000, "schemaVersion": 2}, "data": {"answers": [{"rating": 4, "questionId": "q1"}, {"optionIds": ["zz", "c"], "questionId": "q2"}, {"score": 2.5, "questionId": "q4"}], "viewerId": "u-102", "surveyId": "survey-0"}, "tenantId": "globex", "occurredAt": {"$date": "2021-09-14T16:47:13.380+02:00"}, "type": "SurveySubmitted", "version": 2329, "streamId": "prs-glo-0001", "_id": {"$oid": "6b049b8f1e3781f812307b9d"}}"#;

    #[test]
    fn same_event_in_every_encoding_hashes_equal() {
        let relaxed = ok(RELAXED);
        for text in [CANONICAL, LEGACY, REORDERED] {
            assert_eq!(ok(text), relaxed, "{text}");
        }
    }

    #[test]
    fn changed_content_hashes_differently() {
        let base = ok(RELAXED).content_hash;
        for (from, to) in [
            (r#""u-102""#, r#""u-103""#),
            (r#""rating": 4"#, r#""rating": 5"#),
            (r#""score": 2.5"#, r#""score": 2.25"#),
            (r#""score": 2.5"#, r#""score": "2.5""#),
            (r#"f812307b9d"#, r#"f812307b9e"#),
            (r#"13.380Z"#, r#"13.381Z"#),
            (r#", "big": 5000000000"#, ""),
            (r#""optionIds": ["zz", "c"]"#, r#""optionIds": ["c", "zz"]"#),
            (r#""optionIds": ["zz", "c"]"#, r#""optionIds": ["zzc"]"#),
            (r#""score": 2.5"#, r#""score": [2.5]"#),
            (r#""schemaVersion": 2"#, r#""schemaVersion": 2, "x": null"#),
        ] {
            assert!(RELAXED.contains(from), "{from}");
            let changed = ok(&RELAXED.replacen(from, to, 1));
            assert_ne!(changed.content_hash, base, "{from} -> {to}");
        }
    }

    #[test]
    fn hash_separates_strings_from_structure() {
        let h = |data: &str| ok(&line("SlideChanged", data)).content_hash;
        assert_ne!(h(r#"{"a": "bc"}"#), h(r#"{"ab": "c"}"#));
        assert_ne!(h(r#"{"a": ["b", "c"]}"#), h(r#"{"a": ["bc"]}"#));
        assert_ne!(h(r#"{"a": [["b"], "c"]}"#), h(r#"{"a": ["b", ["c"]]}"#));
        assert_ne!(h(r#"{"a": {"b": 1}}"#), h(r#"{"a": [{"b": 1}]}"#));
        assert_ne!(h(r#"{"a": 1}"#), h(r#"{"a": "1"}"#));
        assert_ne!(h(r#"{"a": 1}"#), h(r#"{"a": {"$date": 1}}"#));
        assert_ne!(h(r#"{"a": null}"#), h(r#"{"a": false}"#));
        assert_ne!(h(r#"{"a": 1.5}"#), h(r#"{"a": 1}"#));
        assert_eq!(h(r#"{"a": 1}"#), h(r#"{"a": 1.0}"#));
        assert_eq!(h(r#"{"a": -0.0}"#), h(r#"{"a": 0}"#));
        assert_eq!(
            h(r#"{"a": {"$numberDouble": "NaN"}}"#),
            h(r#"{"a": {"$numberDouble": "NaN"}}"#)
        );
        assert_ne!(
            h(r#"{"a": {"$numberDouble": "Infinity"}}"#),
            h(r#"{"a": {"$numberDouble": "-Infinity"}}"#)
        );
        assert_eq!(
            h(r#"{"a": 1e20}"#),
            h(r#"{"a": {"$numberDouble": "1e20"}}"#)
        );
    }

    // -- the sample export ------------------------------------------------------

    const SAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/samples/events.jsonl"
    );

    #[test]
    fn sample_export_stats() {
        let text = std::fs::read_to_string(SAMPLE).expect("the sample export");
        let (mut lines, mut duplicates, mut malformed, mut conflicts) = (0, 0, 0, 0);
        let mut seen: HashMap<(String, i64), [u8; 32]> = HashMap::new();
        let mut messages = Vec::new();
        for l in text.lines().filter(|l| !l.trim().is_empty()) {
            lines += 1;
            match parse_event(l) {
                Err(e) => {
                    malformed += 1;
                    messages.push(e.to_string());
                }
                Ok(e) => match seen.get(&(e.stream_id.clone(), e.version)) {
                    Some(hash) => {
                        duplicates += 1;
                        if *hash != e.content_hash {
                            conflicts += 1;
                        }
                    }
                    None => {
                        seen.insert((e.stream_id, e.version), e.content_hash);
                    }
                },
            }
        }
        assert_eq!(
            (lines, seen.len(), duplicates, malformed),
            (6445, 5852, 585, 8),
            "{messages:#?}"
        );
        assert_eq!(conflicts, 0);
        messages.sort();
        assert_eq!(
            messages,
            [
                r#"data.optionIds must be an array of strings, got "o1""#,
                "data.viewerId is missing",
                "not valid JSON: EOF while parsing an object at line 1 column 46",
                "not valid JSON: expected ident at line 1 column 2",
                r#"occurredAt: unknown Extended JSON wrapper "$weird""#,
                "the document must be a JSON object, got an array",
                r#"version must be an integer >= 1, got "7""#,
                "version must be an integer >= 1, got 0",
            ]
        );
    }

    // -- fixtures and a test-only encoder ----------------------------------------

    /// One valid `data` per type, analytics and not.
    fn fixtures() -> Vec<(&'static str, &'static str)> {
        vec![
            (
                "PresentationCreated",
                r#"{"title": "Security Briefing", "presenter": {"id": "e-1", "name": "Tomás"}, "scheduledStart": {"$date": {"$numberLong": "1631628000000"}}, "timezone": "Asia/Tokyo"}"#,
            ),
            ("PresentationRenamed", r#"{"title": "Renamed"}"#),
            ("PresentationStarted", "{}"),
            ("PresentationEnded", "{}"),
            (
                "ViewerJoined",
                r#"{"viewerId": "u-102", "sessionId": "s-1-4", "profile": {"name": "Xóchitl", "email": "x@globex.example", "department": "Finance"}, "device": {"type": "desktop", "os": "iOS", "browser": "Chrome"}, "location": {"country": "GB", "region": "r"}}"#,
            ),
            (
                "ViewerHeartbeat",
                r#"{"viewerId": "u-35", "sessionId": "s-1-21"}"#,
            ),
            (
                "ViewerLeft",
                r#"{"viewerId": "u-35", "sessionId": "s-1-21"}"#,
            ),
            (
                "PollCreated",
                r#"{"pollId": "poll-0", "question": "Repeat?", "options": [{"id": "o0", "text": "Yes"}, {"id": "o1", "text": "No"}], "multipleChoice": false}"#,
            ),
            ("PollClosed", r#"{"pollId": "poll-0"}"#),
            (
                "PollVoted",
                r#"{"pollId": "poll-0", "viewerId": "u-95", "optionIds": ["o3", "o1"]}"#,
            ),
            (
                "SurveyCreated",
                r#"{"surveyId": "survey-0", "title": "Feedback", "questions": [{"id": "q1", "kind": "rating", "text": "Useful?", "scale": 5}, {"id": "q2", "kind": "choice", "text": "Topics?", "options": [{"id": "a", "text": "Strategy"}]}, {"id": "q3", "kind": "text", "text": "Else?"}]}"#,
            ),
            (
                "SurveySubmitted",
                r#"{"surveyId": "survey-0", "viewerId": "u-89", "responseId": "r", "answers": [{"questionId": "q1", "rating": 0}, {"questionId": "q2", "optionIds": ["zz"]}, {"questionId": "q3", "text": ""}]}"#,
            ),
            (
                "QuestionAsked",
                r#"{"questionId": "qa-1", "viewerId": "u-27", "text": "Slides?", "anonymous": true}"#,
            ),
            (
                "QuestionUpvoted",
                r#"{"questionId": "qa-1", "viewerId": "u-2"}"#,
            ),
            (
                "QuestionUpvoteWithdrawn",
                r#"{"questionId": "qa-1", "viewerId": "u-2"}"#,
            ),
            (
                "QuestionAnswered",
                r#"{"questionId": "qa-6", "answeredBy": {"id": "e-2", "name": "Lee"}, "method": "text"}"#,
            ),
            ("QuestionDismissed", r#"{"questionId": "qa-6"}"#),
            ("SlideChanged", r#"{"slideIndex": 13}"#),
            ("ChatMessagePosted", r#"{"viewerId": "u-1", "text": "hi"}"#),
        ]
    }

    fn fixture_line(event_type: &str) -> String {
        let data = fixtures()
            .into_iter()
            .find(|(t, _)| *t == event_type)
            .unwrap()
            .1;
        let mut text = line(event_type, data);
        text.pop();
        text.push_str(r#", "meta": {"schemaVersion": 2, "source": "viewer-web"}}"#);
        text
    }

    #[derive(Debug, Clone, Copy)]
    enum Form {
        Relaxed,
        Canonical,
        Legacy,
    }

    /// Writes a (valid) decoded document back in one Extended JSON form, keys
    /// in order or reversed.
    fn encode(v: &Value, form: Form, reverse: bool, out: &mut String) {
        let double_text = |d: f64| -> String {
            if d.is_nan() {
                "NaN".into()
            } else if d.is_infinite() {
                if d > 0.0 {
                    "Infinity".into()
                } else {
                    "-Infinity".into()
                }
            } else {
                serde_json::to_string(&d).unwrap()
            }
        };
        match ejson::decode(v).unwrap() {
            Ejson::Null => out.push_str("null"),
            Ejson::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            Ejson::Int(i) => match form {
                Form::Canonical if i32::try_from(i).is_ok() => {
                    out.push_str(&format!(r#"{{"$numberInt": "{i}"}}"#))
                }
                Form::Canonical => out.push_str(&format!(r#"{{"$numberLong": "{i}"}}"#)),
                Form::Relaxed => out.push_str(&i.to_string()),
                Form::Legacy => out.push_str(&format!(r#"{{"$numberLong": "{i}"}}"#)),
            },
            Ejson::Double(d) => match form {
                Form::Relaxed | Form::Legacy if d.is_finite() => out.push_str(&double_text(d)),
                _ => out.push_str(&format!(r#"{{"$numberDouble": "{}"}}"#, double_text(d))),
            },
            Ejson::String(s) => out.push_str(&serde_json::to_string(s).unwrap()),
            Ejson::Date(ms) => match (form, ejson::format_rfc3339_millis(ms)) {
                (Form::Relaxed, Some(iso)) if ms >= 0 => {
                    out.push_str(&format!(r#"{{"$date": "{iso}"}}"#))
                }
                (Form::Legacy, _) => out.push_str(&format!(r#"{{"$date": {ms}}}"#)),
                _ => out.push_str(&format!(r#"{{"$date": {{"$numberLong": "{ms}"}}}}"#)),
            },
            Ejson::ObjectId(bytes) => {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                let hex = if matches!(form, Form::Legacy) {
                    hex.to_uppercase()
                } else {
                    hex
                };
                out.push_str(&format!(r#"{{"$oid": "{hex}"}}"#));
            }
            Ejson::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    encode(item, form, reverse, out);
                }
                out.push(']');
            }
            Ejson::Document(m) => {
                let mut entries: Vec<_> = m.iter().collect();
                if reverse {
                    entries.reverse();
                }
                out.push('{');
                for (i, (k, item)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push_str(": ");
                    encode(item, form, reverse, out);
                }
                out.push('}');
            }
        }
    }

    fn encoded(v: &Value, form: Form, reverse: bool) -> String {
        let mut out = String::new();
        encode(v, form, reverse, &mut out);
        out
    }

    #[test]
    fn encoder_forms_of_the_sample_hash_equal() {
        let text = std::fs::read_to_string(SAMPLE).expect("the sample export");
        for l in text.lines().filter(|l| !l.trim().is_empty()).step_by(7) {
            let Ok(e) = parse_event(l) else { continue };
            let v: Value = serde_json::from_str(l).unwrap();
            for form in [Form::Relaxed, Form::Canonical, Form::Legacy] {
                for reverse in [false, true] {
                    let again = encoded(&v, form, reverse);
                    assert_eq!(parse_event(&again).as_ref(), Ok(&e), "{form:?} {again}");
                }
            }
        }
    }

    // -- properties ---------------------------------------------------------------

    /// Arbitrary JSON, keys sometimes starting with `$`.
    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<u64>().prop_map(|i| json!(i)),
            any::<f64>()
                .prop_filter("finite", |d| d.is_finite())
                .prop_map(|d| json!(d)),
            (-3i64..70).prop_map(|i| json!(i)),
            "\\PC{0,12}".prop_map(Value::String),
            "[0-9a-fA-F]{22,26}".prop_map(Value::String),
            "[0-9T:.Z+-]{0,30}".prop_map(Value::String),
            Just(json!("2021-09-10T12:45:01.123Z")),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("\\$?[a-zA-Z]{0,6}", inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    const DOLLAR_KEYS: [&str; 9] = [
        "$oid",
        "$numberInt",
        "$numberLong",
        "$numberDouble",
        "$date",
        "$weird",
        "$binary",
        "$numberDecimal",
        "$",
    ];

    #[derive(Debug, Clone)]
    enum Mutation {
        Delete(usize),
        Replace(usize, Value),
        Wrap(usize, usize),
        Wrapper(usize, usize, Value),
    }

    fn arb_mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            any::<usize>().prop_map(Mutation::Delete),
            (any::<usize>(), arb_json()).prop_map(|(at, v)| Mutation::Replace(at, v)),
            (any::<usize>(), any::<usize>()).prop_map(|(at, k)| Mutation::Wrap(at, k)),
            (any::<usize>(), any::<usize>(), arb_json())
                .prop_map(|(at, k, v)| Mutation::Wrapper(at, k, v)),
        ]
    }

    #[derive(Debug, Clone)]
    enum Step {
        Key(String),
        Index(usize),
    }

    fn node_paths(v: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        out.push(here.clone());
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    here.push(Step::Index(i));
                    node_paths(item, here, out);
                    here.pop();
                }
            }
            Value::Object(m) => {
                for (k, item) in m {
                    here.push(Step::Key(k.clone()));
                    node_paths(item, here, out);
                    here.pop();
                }
            }
            _ => {}
        }
    }

    fn node_mut<'v>(v: &'v mut Value, path: &[Step]) -> &'v mut Value {
        path.iter().fold(v, |v, step| match step {
            Step::Key(k) => &mut v[k.as_str()],
            Step::Index(i) => &mut v[*i],
        })
    }

    fn mutate(v: &mut Value, m: &Mutation) {
        let mut paths = Vec::new();
        node_paths(v, &mut Vec::new(), &mut paths);
        let at = |i: usize| &paths[i % paths.len()];
        match m {
            Mutation::Delete(i) => {
                let path = at(*i);
                if let Some((last, parent)) = path.split_last() {
                    match (node_mut(v, parent), last) {
                        (Value::Object(m), Step::Key(k)) => {
                            m.remove(k);
                        }
                        (Value::Array(items), Step::Index(i)) => {
                            items.remove(*i);
                        }
                        _ => {}
                    }
                }
            }
            Mutation::Replace(i, new) => *node_mut(v, at(*i)) = new.clone(),
            Mutation::Wrap(i, k) => {
                let node = node_mut(v, at(*i));
                let inner = node.take();
                *node = json!({ DOLLAR_KEYS[k % DOLLAR_KEYS.len()]: inner });
            }
            Mutation::Wrapper(i, k, new) => {
                *node_mut(v, at(*i)) = json!({ DOLLAR_KEYS[k % DOLLAR_KEYS.len()]: new });
            }
        }
    }

    /// serde_json's default float parser (no `float_roundtrip`) is not always
    /// correctly rounded, so a double may come back one ulp off from its own
    /// shortest text. parse_event reads relaxed numbers and `$numberDouble`
    /// strings with that same parser, so equal text gives equal bits; the
    /// re-encoding property can only hold for doubles that survive the trip.
    fn stable(d: &f64) -> bool {
        !d.is_finite()
            || serde_json::from_str::<f64>(&serde_json::to_string(d).unwrap()).ok() == Some(*d)
    }

    /// An EJSON value meant to be valid, written canonically.
    fn arb_ejson() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<i32>().prop_map(|i| json!({ "$numberInt": i.to_string() })),
            any::<f64>()
                .prop_filter("serde_json reads it back exactly", stable)
                .prop_map(|d| {
                    let text = if d.is_nan() {
                        "NaN".to_owned()
                    } else if d.is_infinite() {
                        if d > 0.0 {
                            "Infinity".to_owned()
                        } else {
                            "-Infinity".to_owned()
                        }
                    } else {
                        serde_json::to_string(&d).unwrap()
                    };
                    json!({ "$numberDouble": text })
                }),
            (-1e6f64..1e6)
                .prop_filter("serde_json reads it back exactly", stable)
                .prop_map(|d| json!(d)),
            any::<i64>().prop_map(|ms| json!({ "$date": { "$numberLong": ms.to_string() } })),
            (-62_167_219_200_000i64..253_402_300_799_999).prop_map(|ms| json!({ "$date": ms })),
            any::<[u8; 12]>().prop_map(|b| {
                json!({ "$oid": b.iter().map(|b| format!("{b:02x}")).collect::<String>() })
            }),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec(("[a-zA-Z_][a-zA-Z0-9_ ]{0,6}", inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    fn fixture_values() -> Vec<Value> {
        fixtures()
            .iter()
            .map(|(t, _)| serde_json::from_str(&fixture_line(t)).unwrap())
            .collect()
    }

    /// The fast path's event, where it gives one, is the general path's.
    fn fast_path_agrees(text: &str) -> Result<(), TestCaseError> {
        if let Some(fast) = fast::parse_common(text) {
            prop_assert_eq!(parse_general(text).ok(), Some(fast), "{}", text);
        }
        Ok(())
    }

    #[test]
    fn the_fast_path_reads_every_form_of_every_fixture_as_the_general_path_does() {
        for v in fixture_values() {
            for form in [Form::Relaxed, Form::Canonical, Form::Legacy] {
                for reverse in [false, true] {
                    let text = encoded(&v, form, reverse);
                    let fast = fast::parse_common(&text);
                    assert!(fast.is_some(), "{form:?}: {text}");
                    assert_eq!(fast.ok_or(()), parse_general(&text).map_err(|_| ()));
                }
            }
        }
    }

    #[test]
    fn the_fast_path_reads_the_sample_as_the_general_path_does() {
        let text = std::fs::read_to_string(SAMPLE).expect("the sample export");
        let (mut fast, mut valid) = (0, 0);
        for line in text.lines() {
            fast_path_agrees(line).unwrap();
            valid += usize::from(parse_general(line).is_ok());
            fast += usize::from(fast::parse_common(line).is_some());
        }
        // The sample's valid lines with doubles or escapes take the general path.
        assert!(fast * 10 >= valid * 9, "{fast} of {valid}");
    }

    #[test]
    fn the_fast_path_leaves_what_it_does_not_handle_to_the_general_path() {
        let base = fixture_line("ViewerHeartbeat");
        let unusual = [
            base.replacen("\"version\": 3", "\"version\": 3.0", 1),
            base.replacen(
                "\"version\": 3",
                "\"version\": {\"$numberDouble\": \"3\"}",
                1,
            ),
            base.replacen("\"ViewerHeartbeat\"", "\"Viewer\\u0048eartbeat\"", 1),
            base.replacen("{", "{\"x\": -1, ", 1),
            base.replacen("{", "{\"x\": 1, \"x\": 2, ", 1),
            base.replacen("{", "{\"x\": {\"$date\": {\"$numberInt\": \"5\"}}, ", 1),
            // Malformed: the general path says why.
            base.replacen("\"viewerId\"", "\"viewer\"", 1),
            base.replacen("\"sessionId\": \"", "\"sessionId\": 1, \"x\": \"", 1),
        ];
        for text in unusual {
            assert!(
                text != base && fast::parse_common(&text).is_none(),
                "{text}"
            );
            // The general path still reads the valid ones.
            if !text.contains("$numberInt")
                && !text.contains("\"viewer\"")
                && !text.contains("\"sessionId\": 1")
            {
                assert!(parse_event(&text).is_ok(), "{text}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn the_fast_path_agrees_on_mutated_events(
            which in any::<usize>(),
            mutations in prop::collection::vec(arb_mutation(), 0..5),
            form in prop::sample::select(vec![Form::Relaxed, Form::Canonical, Form::Legacy]),
            reverse in any::<bool>(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec!["", "\"", "\\", "{", "}", "[", "]", ",", ":", "-", ".", "0", "e", "$", " ", "\u{1}", "é"])), 0..3),
        ) {
            let fixtures = fixture_values();
            let mut v = fixtures[which % fixtures.len()].clone();
            for m in &mutations {
                mutate(&mut v, m);
            }
            // `encoded` wants valid Extended JSON; a mutation may have broken it.
            let mut text = match ejson::content_hash(&v) {
                Ok(_) => encoded(&v, form, reverse),
                Err(_) => v.to_string(),
            };
            for (at, insert) in &edits {
                // Insert at a character boundary, or replace the character there.
                let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
                if bounds.is_empty() {
                    break;
                }
                let i = bounds[at.index(bounds.len())];
                if insert.is_empty() {
                    text.remove(i);
                } else {
                    text.insert_str(i, insert);
                }
            }
            fast_path_agrees(&text)?;
        }

        #[test]
        fn the_fast_path_agrees_on_extended_json_anywhere(
            which in any::<usize>(),
            top in arb_ejson(),
            nested in arb_ejson(),
            form in prop::sample::select(vec![Form::Relaxed, Form::Canonical, Form::Legacy]),
            reverse in any::<bool>(),
        ) {
            let fixtures = fixture_values();
            let mut v = fixtures[which % fixtures.len()].clone();
            v["x"] = top;
            v["data"]["y"] = nested;
            fast_path_agrees(&encoded(&v, form, reverse))?;
        }

        #[test]
        fn the_fast_path_agrees_on_arbitrary_json(v in arb_json()) {
            fast_path_agrees(&v.to_string())?;
        }

        #[test]
        fn the_fast_path_agrees_on_json_like_strings(text in r#"[{}\[\]":,0-9a-zA-Z$.+\- ]{0,300}"#) {
            fast_path_agrees(&text)?;
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_event(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn arbitrary_strings_never_panic(text in "\\PC{0,300}") {
            let _ = parse_event(&text);
        }

        #[test]
        fn json_like_strings_never_panic(text in r#"[{}\[\]":,0-9a-zA-Z$.+\- ]{0,300}"#) {
            let _ = parse_event(&text);
        }

        #[test]
        fn arbitrary_json_never_panics(v in arb_json()) {
            let _ = parse_event(&v.to_string());
        }

        #[test]
        fn mutated_events_never_panic(
            which in any::<usize>(),
            mutations in prop::collection::vec(arb_mutation(), 1..5),
            cut in proptest::option::of(any::<usize>()),
        ) {
            let fixtures = fixture_values();
            let mut v = fixtures[which % fixtures.len()].clone();
            for m in &mutations {
                mutate(&mut v, m);
            }
            let mut text = v.to_string();
            if let Some(cut) = cut {
                let n = text.chars().count();
                text = text.chars().take(cut % (n + 1)).collect();
            }
            match parse_event(&text) {
                Ok(e) => {
                    prop_assert!(e.version >= 1);
                    prop_assert!(!e.stream_id.is_empty() && e.stream_id.chars().count() <= 64);
                    prop_assert!(!e.event_type.is_empty());
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        #[test]
        fn canonical_reencoding_keeps_the_hash(
            which in any::<usize>(),
            top in arb_ejson(),
            nested in arb_ejson(),
            reverse in any::<bool>(),
        ) {
            let fixtures = fixture_values();
            let mut v = fixtures[which % fixtures.len()].clone();
            v["x"] = top;
            v["data"]["y"] = nested;
            let text = v.to_string();
            let e = parse_event(&text);
            prop_assert!(e.is_ok(), "{:?} {}", e, text);
            let hash = e.as_ref().map(|e| e.content_hash).unwrap();
            for form in [Form::Canonical, Form::Relaxed, Form::Legacy] {
                let again = encoded(&v, form, reverse);
                let e2 = parse_event(&again);
                prop_assert_eq!(e2.as_ref().map(|e| e.content_hash), Ok(hash), "{:?} {}", form, again);
                prop_assert_eq!(e2.as_ref(), e.as_ref());
            }
        }

        #[test]
        fn rfc3339_round_trips(ms in -62_167_219_200_000i64..253_402_300_799_999) {
            let iso = ejson::format_rfc3339_millis(ms).unwrap();
            prop_assert_eq!(ejson::parse_rfc3339(&iso), Ok(ms));
            let days = ms.div_euclid(86_400_000);
            let (y, m, d) = ejson::civil_from_days(days);
            prop_assert_eq!(ejson::days_from_civil(y, m, d), days);
        }
    }
}
