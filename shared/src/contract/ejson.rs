//! MongoDB Extended JSON, as `shared/contract/EVENTS.md` says it occurs:
//! relaxed, canonical and legacy forms, decoded strictly over a
//! `serde_json::Value`, and the content hash of a decoded document.
//!
//! Decoding is a view: [`decode`] looks at one JSON value and says which BSON
//! value it stands for, borrowing from the JSON tree and allocating nothing.
//! The wrappers understood are `$oid`, `$numberInt`, `$numberLong`,
//! `$numberDouble` and `$date` (RFC 3339 string, `{"$numberLong": ms}` or a
//! legacy number of ms). A wrapper must be the only key of its object; any
//! other object with a key starting with `$` is an error.

use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};
use std::fmt;
use std::io;

/// How many characters of an offending value an error message quotes.
pub const QUOTE_CHARS: usize = 60;

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
            .push(Segment::Key(truncate_chars(key, QUOTE_CHARS)));
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

/// Days from 1970-01-01 to the given proleptic Gregorian date
/// (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 → proleptic Gregorian (year, month 1..=12, day
/// 1..=31) (Howard Hinnant's `civil_from_days`). Total for any `i64`.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // i128 inside: no overflow even for days near i64::MAX.
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i128::from(month <= 2);
    let year = i64::try_from(year).unwrap_or(if year < 0 { i64::MIN } else { i64::MAX });
    // month and day are within 1..=31 by construction.
    (year, month as u32, day as u32)
}

pub fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ`; `None` outside years 0 to 9999 (the
/// tests write dates in every Extended JSON form with it).
#[cfg(test)]
pub fn format_rfc3339_millis(ms: i64) -> Option<String> {
    let (year, _, _) = civil_from_days(ms.div_euclid(86_400_000));
    (0..=9999).contains(&year).then(|| format_millis(ms))
}

/// Milliseconds since the Unix epoch (UTC) as RFC 3339 with milliseconds:
/// `2021-09-10T12:45:01.123Z`. Total over `i64`: years outside 0..=9999 are
/// printed with as many digits as needed (and a `-` sign before year 0).
pub fn format_millis(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let hour = in_day / 3_600_000;
    let minute = in_day / 60_000 % 60;
    let second = in_day / 1000 % 60;
    let milli = in_day % 1000;
    let year = if year < 0 {
        format!("-{:04}", year.unsigned_abs())
    } else {
        format!("{year:04}")
    };
    format!("{year}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z")
}

/// An RFC 3339 date-time (`2021-09-10T12:45:01.123Z`, `...+02:00`, with 0 to
/// 9 fraction digits, truncated to milliseconds) as ms since the epoch, UTC.
/// `T` and `Z` may be lower case (RFC 3339 allows it). Leap seconds (`:60`)
/// are rejected: BSON dates have none.
pub fn parse_rfc3339(s: &str) -> Result<i64, &'static str> {
    let b = s.as_bytes();
    let digits = |at: usize, n: usize| -> Option<u32> {
        let part = b.get(at..at + n)?;
        part.iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let sep = |at: usize, c: u8| b.get(at).is_some_and(|&x| x.eq_ignore_ascii_case(&c));
    const SHAPE: &str = "expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)";
    let (Some(year), Some(month), Some(day)) = (digits(0, 4), digits(5, 2), digits(8, 2)) else {
        return Err(SHAPE);
    };
    let (Some(hour), Some(minute), Some(second)) = (digits(11, 2), digits(14, 2), digits(17, 2))
    else {
        return Err(SHAPE);
    };
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return Err(SHAPE);
    }
    let mut at = 19;
    let mut millis = 0u32;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            if at - start < 3 {
                millis = millis * 10 + u32::from(b[at] - b'0');
            }
            at += 1;
        }
        let n = at - start;
        if n == 0 {
            return Err("a '.' must be followed by fraction digits");
        }
        if n > 9 {
            return Err("at most 9 fraction digits are allowed");
        }
        for _ in n..3 {
            millis *= 10;
        }
    }
    let offset_minutes: i64 = match b.get(at) {
        Some(b'Z' | b'z') => {
            at += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let (Some(oh), Some(om)) = (digits(at + 1, 2), digits(at + 4, 2)) else {
                return Err(SHAPE);
            };
            if !sep(at + 3, b':') {
                return Err(SHAPE);
            }
            if oh > 23 || om > 59 {
                return Err("the UTC offset is out of range");
            }
            at += 6;
            let minutes = i64::from(oh * 60 + om);
            if sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return Err("missing time zone (Z or an offset like +02:00)"),
    };
    if at != b.len() {
        return Err("unexpected text after the time zone");
    }
    if !(1..=12).contains(&month) {
        return Err("month must be 01 to 12");
    }
    if day < 1 || day > days_in_month(i64::from(year), month) {
        return Err("day is out of range for the month");
    }
    if hour > 23 {
        return Err("hour must be 00 to 23");
    }
    if minute > 59 {
        return Err("minute must be 00 to 59");
    }
    if second > 59 {
        return Err("second must be 00 to 59");
    }
    let days = days_from_civil(i64::from(year), month, day);
    let seconds =
        days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_minutes * 60;
    Ok(seconds * 1000 + i64::from(millis))
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

/// A writer that keeps the first `limit` bytes and then fails, so that quoting
/// a huge value costs no more than quoting a small one.
struct Limited {
    buf: Vec<u8>,
    limit: usize,
}

impl io::Write for Limited {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = self.limit - self.buf.len();
        if room == 0 {
            return Err(io::Error::other("enough"));
        }
        let n = bytes.len().min(room);
        self.buf.extend_from_slice(&bytes[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Compact JSON written by `write`, cut to [`QUOTE_CHARS`] characters (`…`
/// marks a cut).
fn cut_json(write: impl FnOnce(&mut Limited) -> serde_json::Result<()>) -> String {
    let mut w = Limited {
        buf: Vec::new(),
        // Enough bytes for QUOTE_CHARS + 1 characters of any width.
        limit: (QUOTE_CHARS + 1) * 4,
    };
    // An error here is the writer saying it has enough.
    let _ = write(&mut w);
    truncate_chars(&String::from_utf8_lossy(&w.buf), QUOTE_CHARS)
}

/// A value as compact JSON for an error message, cut to [`QUOTE_CHARS`]
/// characters (`…` marks a cut).
pub fn show(value: &Value) -> String {
    cut_json(|w| serde_json::to_writer(w, value))
}

/// A document as compact JSON for an error message, cut like [`show`].
pub fn show_map(map: &Map<String, Value>) -> String {
    cut_json(|w| serde_json::to_writer(w, map))
}

/// A string as a JSON string literal for an error message, cut like [`show`].
pub fn quote(s: &str) -> String {
    cut_json(|w| serde_json::to_writer(w, s))
}

/// The first `n` characters of `s`, with `…` when cut.
pub fn truncate_chars(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}
