//! MongoDB Extended JSON, as `shared/contract/EVENTS.md` says it occurs:
//! relaxed, canonical and legacy forms, decoded strictly over a
//! `serde_json::Value`, and the content hash of a decoded document.
//!
//! Decoding is a view: [`decode`] looks at one JSON value and says which BSON
//! value it stands for, borrowing from the JSON tree and allocating nothing.
//! The wrappers understood are `$oid`, `$numberInt`, `$numberLong`,
//! `$numberDouble` and `$date` (RFC 3339 string, read by `time.rs`,
//! `{"$numberLong": ms}` or a legacy number of ms). A wrapper must be the
//! only key of its object; any other object with a key starting with `$` is
//! an error.

use crate::contract::text::{abbreviate, quote, show, show_map, QUOTE_CHARS};
use crate::contract::time::parse_rfc3339;
use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};
use std::fmt;

/// The BSON value one JSON value stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ejson<'a> {
    Null,
    Bool(bool),
    /// int32 or int64, relaxed (a JSON integer) or canonical.
    Int(i64),
    /// A double, relaxed (a JSON number that is not an integer, or an integer
    /// beyond the int64 range) or canonical.
    Double(f64),
    String(&'a str),
    Array(&'a [Value]),
    /// An object that is not a wrapper: its values still need decoding.
    Document(&'a Map<String, Value>),
    /// Milliseconds since the Unix epoch, UTC.
    Date(i64),
    ObjectId([u8; 12]),
}

impl Ejson<'_> {
    /// "an array", "a date", ...: for messages like `must be X, got Y`.
    pub fn describe(&self) -> &'static str {
        match self {
            Ejson::Null => "null",
            Ejson::Bool(_) => "a boolean",
            Ejson::Int(_) => "an integer",
            Ejson::Double(_) => "a double",
            Ejson::String(_) => "a string",
            Ejson::Array(_) => "an array",
            Ejson::Document(_) => "a document",
            Ejson::Date(_) => "a date",
            Ejson::ObjectId(_) => "an ObjectId",
        }
    }

    /// The integer value of an int32/int64, or of a double with an integral
    /// value within the int64 range; `None` for anything else.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Ejson::Int(i) => Some(i),
            Ejson::Double(d) => integral_f64(d),
            _ => None,
        }
    }
}

/// `d` as an i64 when it is integral and within the i64 range.
pub fn integral_f64(d: f64) -> Option<i64> {
    // 2^63 is exactly representable; every integral double below it fits.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if d.fract() == 0.0 && (-LIMIT..LIMIT).contains(&d) {
        Some(d as i64)
    } else {
        None
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// A malformed Extended JSON value, with where it is in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EjsonError {
    /// Innermost segment first (built while unwinding).
    rev_path: Vec<Segment>,
    message: String,
}

impl EjsonError {
    fn new(message: String) -> EjsonError {
        EjsonError {
            rev_path: Vec::new(),
            message,
        }
    }

    /// What is wrong, without where.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Where it is: `data.options[1].id`, empty for the document itself.
    pub fn path(&self) -> String {
        let mut out = String::new();
        for segment in self.rev_path.iter().rev() {
            match segment {
                Segment::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Segment::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
            }
        }
        out
    }

    /// The same error, one object level further out.
    pub fn in_key(mut self, key: &str) -> EjsonError {
        self.rev_path
            .push(Segment::Key(abbreviate(key, QUOTE_CHARS)));
        self
    }

    /// The same error, one array level further out.
    pub fn in_index(mut self, index: usize) -> EjsonError {
        self.rev_path.push(Segment::Index(index));
        self
    }
}

impl fmt::Display for EjsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.rev_path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path(), self.message)
        }
    }
}

impl std::error::Error for EjsonError {}

/// Decodes one JSON value (one level: the values of a document or array are
/// not looked at).
pub fn decode(v: &Value) -> Result<Ejson<'_>, EjsonError> {
    Ok(match v {
        Value::Null => Ejson::Null,
        Value::Bool(b) => Ejson::Bool(*b),
        Value::Number(n) => number(n),
        Value::String(s) => Ejson::String(s),
        Value::Array(a) => Ejson::Array(a),
        Value::Object(m) => return decode_object(m),
    })
}

fn number(n: &Number) -> Ejson<'static> {
    match n.as_i64() {
        Some(i) => Ejson::Int(i),
        // An integer beyond int64 (a u64) or a float. Without the
        // `arbitrary_precision` feature `as_f64` is always `Some`.
        None => Ejson::Double(n.as_f64().unwrap_or(f64::NAN)),
    }
}

const WRAPPERS: [&str; 5] = [
    "$oid",
    "$numberInt",
    "$numberLong",
    "$numberDouble",
    "$date",
];

/// Whether an object has a key starting with `$`: then it is a wrapper (or an
/// error), not a document.
pub fn has_dollar_key(m: &Map<String, Value>) -> bool {
    m.keys().any(|k| k.starts_with('$'))
}

fn decode_object(m: &Map<String, Value>) -> Result<Ejson<'_>, EjsonError> {
    let Some(key) = m.keys().find(|k| k.starts_with('$')) else {
        return Ok(Ejson::Document(m));
    };
    if !WRAPPERS.contains(&key.as_str()) {
        return Err(EjsonError::new(format!(
            "unknown Extended JSON wrapper {}",
            quote(key.as_str())
        )));
    }
    if m.len() != 1 {
        return Err(EjsonError::new(format!(
            "Extended JSON wrapper {} must be the only key of its object, got {}",
            quote(key.as_str()),
            show_map(m)
        )));
    }
    let Some(inner) = m.get(key) else {
        // Unreachable: `key` comes from `m`.
        return Ok(Ejson::Document(m));
    };
    let decoded = match key.as_str() {
        "$oid" => match inner {
            Value::String(s) => parse_oid(s).map(Ejson::ObjectId),
            _ => None,
        },
        "$numberInt" => match inner {
            Value::String(s) => s.parse::<i32>().ok().map(|i| Ejson::Int(i.into())),
            _ => None,
        },
        "$numberLong" => match inner {
            Value::String(s) => s.parse::<i64>().ok().map(Ejson::Int),
            _ => None,
        },
        "$numberDouble" => match inner {
            Value::String(s) => parse_double(s).map(Ejson::Double),
            _ => None,
        },
        _ => return decode_date(inner).map(Ejson::Date),
    };
    decoded.ok_or_else(|| {
        let what = match key.as_str() {
            "$oid" => "a string of 24 hexadecimal digits",
            "$numberInt" => "a string holding a 32-bit integer",
            "$numberLong" => "a string holding a 64-bit integer",
            _ => "a string holding a number, \"Infinity\", \"-Infinity\" or \"NaN\"",
        };
        EjsonError::new(format!("{key} must be {what}, got {}", show(inner)))
    })
}

pub(crate) fn parse_oid(s: &str) -> Option<[u8; 12]> {
    let b = s.as_bytes();
    if b.len() != 24 {
        return None;
    }
    let mut out = [0u8; 12];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// A `$numberDouble` string. Ordinary numbers go through serde_json's own
/// float parser, so that `1.1` and `{"$numberDouble": "1.1"}` give the very
/// same bits (serde_json's default parser is not always correctly rounded);
/// forms JSON does not allow (`+1`, `.5`, `1.`) fall back to Rust's parser.
fn parse_double(s: &str) -> Option<f64> {
    match s {
        "Infinity" => return Some(f64::INFINITY),
        "-Infinity" => return Some(f64::NEG_INFINITY),
        "NaN" => return Some(f64::NAN),
        _ => {}
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    let d = serde_json::from_str::<f64>(s)
        .ok()
        .or_else(|| s.parse::<f64>().ok())?;
    // Out of range (`1e999`) is an error, as it is for a relaxed number.
    d.is_finite().then_some(d)
}

fn decode_date(inner: &Value) -> Result<i64, EjsonError> {
    let ms = match inner {
        Value::String(s) => {
            return parse_rfc3339(s).map_err(|why| {
                EjsonError::new(format!("$date {} is not a valid date: {why}", show(inner)))
            })
        }
        // Legacy: a number of milliseconds.
        Value::Number(n) => number(n).as_i64(),
        // Canonical: {"$numberLong": "ms"}.
        Value::Object(m) if m.len() == 1 => match m.get("$numberLong") {
            Some(Value::String(s)) => s.parse::<i64>().ok(),
            _ => None,
        },
        _ => None,
    };
    ms.ok_or_else(|| {
        EjsonError::new(format!(
            "$date must be an RFC 3339 date string, {{\"$numberLong\": \"<ms>\"}} or an integer number of milliseconds, got {}",
            show(inner)
        ))
    })
}

/// SHA-256 of the decoded document, validating every Extended JSON wrapper in
/// it on the way.
///
/// The serialisation is prefix-free: every value starts with a one-byte tag,
/// strings and keys are length-prefixed, arrays and documents count-prefixed.
/// Document keys are sorted (byte order). Numbers are normalised by value: an
/// int32, an int64 and a double with an integral value within the int64 range
/// all hash as that integer; other doubles hash by their bits (every NaN as
/// one NaN). Dates hash as milliseconds, ObjectIds as their 12 bytes (so hex
/// case does not matter). Relaxed, canonical and legacy encodings of one
/// document, in any key order, therefore hash equal.
pub fn content_hash(doc: &Value) -> Result<[u8; 32], EjsonError> {
    let mut out = Vec::with_capacity(512);
    encode(doc, &mut out)?;
    Ok(Sha256::digest(&out).into())
}

/// The content hash's serialisation, value by value: the one definition
/// that [`content_hash`] and the event fast path (`event/fast.rs`) both
/// write with.
pub(crate) mod encoding {
    pub fn null(out: &mut Vec<u8>) {
        out.push(b'n');
    }

    pub fn boolean(out: &mut Vec<u8>, b: bool) {
        out.push(if b { b'T' } else { b'F' });
    }

    pub fn int(out: &mut Vec<u8>, i: i64) {
        out.push(b'i');
        out.extend_from_slice(&i.to_le_bytes());
    }

    /// An integral double within the int64 range is that integer; any NaN
    /// is one NaN.
    pub fn double(out: &mut Vec<u8>, d: f64) {
        match super::integral_f64(d) {
            Some(i) => int(out, i),
            None => {
                let bits = if d.is_nan() {
                    f64::NAN.to_bits()
                } else {
                    d.to_bits()
                };
                out.push(b'f');
                out.extend_from_slice(&bits.to_le_bytes());
            }
        }
    }

    pub fn string(out: &mut Vec<u8>, s: &str) {
        out.push(b's');
        key(out, s);
    }

    pub fn date(out: &mut Vec<u8>, ms: i64) {
        out.push(b't');
        out.extend_from_slice(&ms.to_le_bytes());
    }

    pub fn object_id(out: &mut Vec<u8>, bytes: &[u8; 12]) {
        out.push(b'o');
        out.extend_from_slice(bytes);
    }

    /// An array's header; its items follow.
    pub fn array(out: &mut Vec<u8>, items: usize) {
        out.push(b'a');
        length(out, items);
    }

    /// A document's header; its entries follow, each a [`key`] then its
    /// value, keys sorted (byte order) and distinct.
    pub fn document(out: &mut Vec<u8>, entries: usize) {
        out.push(b'd');
        length(out, entries);
    }

    pub fn key(out: &mut Vec<u8>, key: &str) {
        length(out, key.len());
        out.extend_from_slice(key.as_bytes());
    }

    fn length(out: &mut Vec<u8>, n: usize) {
        out.extend_from_slice(&(n as u64).to_le_bytes());
    }
}

fn encode(v: &Value, out: &mut Vec<u8>) -> Result<(), EjsonError> {
    match decode(v)? {
        Ejson::Null => encoding::null(out),
        Ejson::Bool(b) => encoding::boolean(out, b),
        Ejson::Int(i) => encoding::int(out, i),
        Ejson::Double(d) => encoding::double(out, d),
        Ejson::String(s) => encoding::string(out, s),
        Ejson::Date(ms) => encoding::date(out, ms),
        Ejson::ObjectId(bytes) => encoding::object_id(out, &bytes),
        Ejson::Array(items) => {
            encoding::array(out, items.len());
            for (i, item) in items.iter().enumerate() {
                encode(item, out).map_err(|e| e.in_index(i))?;
            }
        }
        Ejson::Document(m) => {
            encoding::document(out, m.len());
            // serde_json's map is a BTreeMap (sorted) unless some crate turns
            // on `preserve_order`; sort only if needed.
            if m.keys().is_sorted() {
                for (k, v) in m {
                    encoding::key(out, k);
                    encode(v, out).map_err(|e| e.in_key(k))?;
                }
            } else {
                let mut entries: Vec<(&String, &Value)> = m.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                for (k, v) in entries {
                    encoding::key(out, k);
                    encode(v, out).map_err(|e| e.in_key(k))?;
                }
            }
        }
    }
    Ok(())
}
