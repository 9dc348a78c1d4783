//! The fast path of [`super::parse_event`] for the documents nearly every
//! export line and message is: plain JSON with no string escapes, no
//! fractional or negative numbers, and only the wrappers `$oid`, `$date`,
//! `$numberInt` and `$numberLong`, with a valid envelope.
//!
//! It reads the text once, borrowing, and hashes what it read, where the
//! general path builds a `serde_json::Value` of the whole document, walks it
//! to check its Extended JSON, walks it again to hash it, and moves the
//! envelope out of it: the fast path takes about a fifth of that time
//! (BENCHMARKS.md). Only `data` of an analytics event goes through
//! `serde_json` and the general path's own body rules.
//!
//! It never decides that a document is malformed: on anything it does not
//! handle, or anything that is not clearly valid, it answers `None` and the
//! general path decides, with its messages. So it must only ever give the
//! very `Event` the general path gives (tested against it in `tests.rs`).

use super::parse::{is_id, is_in_date_range, parse_body, Obj, Path};
use super::{DataPoint, Event, EventBody, EventErrorKind};
use crate::contract::ejson::{self, encoding};
use crate::contract::time::parse_rfc3339;
use sha2::{Digest, Sha256};

/// Deeper documents are left to the general path (serde_json's own limit is
/// 128 levels).
const MAX_DEPTH: usize = 32;

/// A JSON value as read, its strings borrowed from the text.
#[derive(Debug)]
enum Node<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(&'a str),
    Date(i64),
    ObjectId([u8; 12]),
    Array(Vec<Node<'a>>),
    /// Entries in the text's order, and the document's text.
    Document(Vec<(&'a str, Node<'a>)>, &'a str),
}

/// The event of `text` when the fast path can read it, else `None`.
pub(super) fn parse_common(text: &str) -> Option<Event> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    reader.skip_space();
    let root = reader.value(0)?;
    reader.skip_space();
    if reader.at != reader.bytes.len() {
        return None;
    }
    let Node::Document(fields, _) = &root else {
        return None;
    };
    let mut encoded = Vec::with_capacity(text.len());
    encode(&root, &mut encoded)?;
    let content_hash: [u8; 32] = Sha256::digest(&encoded).into();

    // `encode` has turned away repeated keys: each key has one value.
    let stream_id = id(fields, "streamId")?;
    let version = match field(fields, "version")? {
        Node::Int(i) if *i >= 1 => *i,
        _ => return None,
    };
    let event_type = match field(fields, "type")? {
        Node::Str(s) if !s.is_empty() => s.to_string(),
        _ => return None,
    };
    let occurred_at = match field(fields, "occurredAt")? {
        Node::Date(ms) if is_in_date_range(*ms) => *ms,
        _ => return None,
    };
    let tenant_id = id(fields, "tenantId")?;
    let Node::Document(data, data_text) = field(fields, "data")? else {
        return None;
    };
    let schema_version = match field(fields, "meta") {
        None | Some(Node::Null) => 1,
        Some(Node::Document(meta, _)) => match field(meta, "schemaVersion") {
            None | Some(Node::Null) => 1,
            Some(Node::Int(i)) if *i >= 1 => *i,
            _ => return None,
        },
        Some(_) => return None,
    };
    let body = if let Some(body) = attendance_body(&event_type, data) {
        body
    } else if DataPoint::of_type(&event_type).is_some() {
        let data = serde_json::from_str(data_text).ok()?;
        let root = Path::Root;
        let mut data = Obj::new(data, Path::Key(&root, "data"), EventErrorKind::Data);
        parse_body(&event_type, &mut data).ok()?
    } else {
        EventBody::NotAnalytics
    };
    Some(Event {
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

/// Heartbeats and leaves, most of every export, read straight from the
/// document (as `parse_body` reads them: two ids, other fields ignored);
/// `None` for other types and anything unusual, which `parse_body` reads.
fn attendance_body(event_type: &str, data: &[(&str, Node<'_>)]) -> Option<EventBody> {
    match event_type {
        "ViewerHeartbeat" => Some(EventBody::ViewerHeartbeat {
            viewer_id: id(data, "viewerId")?,
            session_id: id(data, "sessionId")?,
        }),
        "ViewerLeft" => Some(EventBody::ViewerLeft {
            viewer_id: id(data, "viewerId")?,
            session_id: id(data, "sessionId")?,
        }),
        _ => None,
    }
}

/// The value of `key` in a document's entries (which `encode` has checked
/// hold no repeated key).
fn field<'n, 'a>(entries: &'n [(&'a str, Node<'a>)], key: &str) -> Option<&'n Node<'a>> {
    entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// An id (`parse::is_id`) at `key`, or `None` for anything else.
fn id(entries: &[(&str, Node<'_>)], key: &str) -> Option<String> {
    match field(entries, key)? {
        Node::Str(s) if is_id(s) => Some(s.to_string()),
        _ => None,
    }
}

const PLAIN: u8 = 0;
const QUOTE: u8 = 1;
const FOR_THE_GENERAL_PATH: u8 = 2;
/// What a byte is inside a string: its end (`"`), plain, or what the fast
/// path leaves to the general one (a backslash, a raw control character).
/// One table look-up a byte.
const STRING_BYTE: [u8; 256] = {
    let mut table = [PLAIN; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = FOR_THE_GENERAL_PATH;
        b += 1;
    }
    table[b'\\' as usize] = FOR_THE_GENERAL_PATH;
    table[b'"' as usize] = QUOTE;
    table
};

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.skip_space();
        (self.bytes.get(self.at) == Some(&byte)).then(|| self.at += 1)
    }

    fn value(&mut self, depth: usize) -> Option<Node<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_space();
        match *self.bytes.get(self.at)? {
            b'"' => self.string().map(Node::Str),
            b'{' => self.object(depth),
            b'[' => {
                self.at += 1;
                let mut items = Vec::new();
                if self.eat(b']').is_some() {
                    return Some(Node::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.skip_space();
                    match *self.bytes.get(self.at)? {
                        b',' => self.at += 1,
                        b']' => {
                            self.at += 1;
                            return Some(Node::Array(items));
                        }
                        _ => return None,
                    }
                }
            }
            b'0'..=b'9' => self.integer().map(Node::Int),
            b't' => self.literal("true", Node::Bool(true)),
            b'f' => self.literal("false", Node::Bool(false)),
            b'n' => self.literal("null", Node::Null),
            // Negative numbers (serde_json reads -0 as a double) and
            // anything else: the general path.
            _ => None,
        }
    }

    fn literal(&mut self, word: &str, node: Node<'a>) -> Option<Node<'a>> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word.as_bytes()).then(|| {
            self.at = end;
            node
        })
    }

    /// A string with no escapes and no control characters (JSON forbids
    /// those raw); the text is valid UTF-8 and `"` is ASCII, so the slice is
    /// on character boundaries.
    fn string(&mut self) -> Option<&'a str> {
        let start = self.at + 1;
        let len = self.bytes[start..]
            .iter()
            .position(|&b| STRING_BYTE[usize::from(b)] != PLAIN)?;
        let end = start + len;
        if STRING_BYTE[usize::from(self.bytes[end])] != QUOTE {
            return None;
        }
        self.at = end + 1;
        Some(&self.text[start..end])
    }

    /// A non-negative JSON integer within i64; a fraction or exponent is
    /// left to the general path.
    fn integer(&mut self) -> Option<i64> {
        let start = self.at;
        let len = self.bytes[start..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(self.bytes.len() - start);
        let end = start + len;
        let digits = &self.text[start..end];
        if (len > 1 && self.bytes[start] == b'0')
            || matches!(self.bytes.get(end), Some(b'.' | b'e' | b'E'))
        {
            return None;
        }
        self.at = end;
        digits.parse().ok()
    }

    /// A document, or one of the wrappers the fast path knows as its value.
    fn object(&mut self, depth: usize) -> Option<Node<'a>> {
        let start = self.at;
        self.at += 1;
        // Envelopes have 7 or 8 fields.
        let mut entries = Vec::with_capacity(8);
        if self.eat(b'}').is_none() {
            loop {
                self.skip_space();
                if self.bytes.get(self.at) != Some(&b'"') {
                    return None;
                }
                let key = self.string()?;
                self.eat(b':')?;
                if key.as_bytes().first() == Some(&b'$') {
                    // A wrapper is the only key of its object.
                    let node = self.wrapped(key, depth)?;
                    return (entries.is_empty() && self.eat(b'}').is_some()).then_some(node);
                }
                entries.push((key, self.value(depth + 1)?));
                self.skip_space();
                match *self.bytes.get(self.at)? {
                    b',' => self.at += 1,
                    b'}' => {
                        self.at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        Some(Node::Document(entries, &self.text[start..self.at]))
    }

    /// The value of wrapper `key`, decoded as `ejson::decode` does.
    fn wrapped(&mut self, key: &str, depth: usize) -> Option<Node<'a>> {
        self.skip_space();
        if key == "$date" && self.bytes.get(self.at) == Some(&b'{') {
            // Canonical: exactly {"$numberLong": "ms"}.
            self.at += 1;
            self.skip_space();
            if self.bytes.get(self.at) != Some(&b'"') || self.string()? != "$numberLong" {
                return None;
            }
            self.eat(b':')?;
            self.skip_space();
            if self.bytes.get(self.at) != Some(&b'"') {
                return None;
            }
            let ms = self.string()?.parse::<i64>().ok()?;
            self.eat(b'}')?;
            return Some(Node::Date(ms));
        }
        let value = self.value(depth + 1)?;
        match (key, value) {
            ("$oid", Node::Str(s)) => ejson::parse_oid(s).map(Node::ObjectId),
            ("$numberInt", Node::Str(s)) => s.parse::<i32>().ok().map(|i| Node::Int(i.into())),
            ("$numberLong", Node::Str(s)) => s.parse::<i64>().ok().map(Node::Int),
            ("$date", Node::Str(s)) => parse_rfc3339(s).ok().map(Node::Date),
            // Legacy: a number of ms.
            ("$date", Node::Int(ms)) => Some(Node::Date(ms)),
            _ => None,
        }
    }
}

/// `ejson::content_hash`'s serialisation; `None` for a document with a
/// repeated key (the general path keeps the last one).
fn encode(node: &Node<'_>, out: &mut Vec<u8>) -> Option<()> {
    match node {
        Node::Null => encoding::null(out),
        Node::Bool(b) => encoding::boolean(out, *b),
        Node::Int(i) => encoding::int(out, *i),
        Node::Str(s) => encoding::string(out, s),
        Node::Date(ms) => encoding::date(out, *ms),
        Node::ObjectId(bytes) => encoding::object_id(out, bytes),
        Node::Array(items) => {
            encoding::array(out, items.len());
            for item in items {
                encode(item, out)?;
            }
        }
        Node::Document(entries, _) => {
            let mut sorted: Vec<&(&str, Node<'_>)> = entries.iter().collect();
            sorted.sort_unstable_by(|a, b| key_order(a.0, b.0));
            if sorted.windows(2).any(|w| w[0].0 == w[1].0) {
                return None;
            }
            encoding::document(out, sorted.len());
            for (key, value) in sorted {
                encoding::key(out, key);
                encode(value, out)?;
            }
        }
    }
    Some(())
}

/// Byte order, as `str`'s, deciding most envelope keys by their first byte
/// without a call to `memcmp`.
fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}
