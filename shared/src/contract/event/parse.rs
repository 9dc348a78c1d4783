//! The general path of [`super::parse_event`]: every document, in any of its
//! Extended JSON forms, valid or not, read through a `serde_json::Value`; the
//! envelope, then each analytics type's `data`, with the messages that say
//! what is wrong and where.

use super::{
    Choice, Event, EventBody, EventError, EventErrorKind, Person, QuestionKind, SurveyAnswer,
    SurveyQuestion, ViewerJoined, DATE_RANGE_MS, MAX_ID_CHARS, MAX_TEXT_CHARS,
};
use crate::contract::ejson::{self, Ejson};
use crate::contract::text::show;
use serde_json::{Map, Value};
use std::fmt;

/// Every document, in its Extended JSON forms, valid or not.
pub(super) fn parse_general(text: &str) -> Result<Event, EventError> {
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

pub(super) fn parse_body(event_type: &str, d: &mut Obj<'_>) -> Result<EventBody, EventError> {
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
            option_ids: d.texts("optionIds")?,
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
        Some(Value::String(s)) => Some(cut_text(s)),
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
    // A question's own `id` is a text (EVENTS.md, Limits, lists the ids); an
    // answer's `questionId` is an id.
    let id = q.text("id")?;
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
        Some(v) => Some(texts_value(v, &a.path.key("optionIds"), a.kind)?),
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
pub(super) enum Path<'a> {
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
            format!("{} ({} characters)", show(got), s.chars().count())
        }
        _ => show(got),
    };
    EventError::new(kind, format!("{at} must be {expected}, got {got}"))
}

const ID_EXPECTED: &str =
    "a string of 1 to 64 characters, neither beginning nor ending with white space";

/// EVENTS.md's id: 1 to 64 characters, no `White_Space` at either edge (the
/// database's padding collation would otherwise make `"u-1 "` and `"u-1"`
/// one key while every map in memory keeps them apart).
pub fn is_id(s: &str) -> bool {
    // 1..=64 bytes is 1..=64 characters: most ids need no counting.
    let (Some(first), Some(last)) = (s.chars().next(), s.chars().next_back()) else {
        return false;
    };
    !first.is_whitespace()
        && !last.is_whitespace()
        && (s.len() <= MAX_ID_CHARS || s.chars().nth(MAX_ID_CHARS).is_none())
}

/// Whether a date (milliseconds since the epoch) is within the contract's
/// range; outside it the event is malformed.
pub(super) fn is_in_date_range(ms: i64) -> bool {
    DATE_RANGE_MS.contains(&ms)
}

/// A text of `data`, cut to its first [`MAX_TEXT_CHARS`] characters.
fn cut_text(mut s: String) -> String {
    // A text of at most MAX_TEXT_CHARS bytes needs no counting.
    if s.len() > MAX_TEXT_CHARS {
        if let Some((at, _)) = s.char_indices().nth(MAX_TEXT_CHARS) {
            s.truncate(at);
        }
    }
    s
}

fn id_value(v: Value, at: &Path<'_>, kind: EventErrorKind) -> Result<String, EventError> {
    match v {
        Value::String(s) if is_id(&s) => Ok(s),
        other => Err(wrong_at(at, kind, ID_EXPECTED, &other)),
    }
}

fn texts_value(v: Value, at: &Path<'_>, kind: EventErrorKind) -> Result<Vec<String>, EventError> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(cut_text(s)),
                other => Err(wrong_at(&Path::Index(at, i), kind, "a string", &other)),
            })
            .collect(),
        other => Err(wrong_at(at, kind, "an array of strings", &other)),
    }
}

/// A document whose fields are taken out (moved, not cloned) as they are read.
pub(super) struct Obj<'p> {
    map: Map<String, Value>,
    path: Path<'p>,
    kind: EventErrorKind,
}

impl<'p> Obj<'p> {
    pub(super) fn new(map: Map<String, Value>, path: Path<'p>, kind: EventErrorKind) -> Obj<'p> {
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

    /// A required array of texts (option ids are texts, not ids: EVENTS.md,
    /// Limits).
    fn texts(&mut self, key: &'static str) -> Result<Vec<String>, EventError> {
        let v = self.take_required(key, "an array of strings")?;
        texts_value(v, &self.path.key(key), self.kind)
    }

    fn text(&mut self, key: &'static str) -> Result<String, EventError> {
        match self.take_required(key, "a string")? {
            Value::String(s) => Ok(cut_text(s)),
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
            Some(Value::String(s)) => Ok(Some(cut_text(s))),
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
            Ejson::Date(ms) if is_in_date_range(ms) => Ok(ms),
            Ejson::Date(_) => Err(self.wrong(
                key,
                "a date from 1970-01-01T00:00:00.000Z to 2099-12-31T23:59:59.999Z",
                &v,
            )),
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
            id: person.text("id")?,
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
                    id: c.text("id")?,
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
