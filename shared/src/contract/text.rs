//! Text for error messages: values quoted as compact JSON and cut to a few
//! dozen characters, whatever their size, and strings cut to a number of
//! characters.

use serde_json::{Map, Value};
use std::io;

/// How many characters of an offending value an error message quotes.
pub const QUOTE_CHARS: usize = 60;

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
    abbreviate(&String::from_utf8_lossy(&w.buf), QUOTE_CHARS)
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

/// The first `n` characters of `s` (all of it when shorter), for a column
/// of bounded width or a message.
pub fn truncate_chars(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// The first `n` characters of `s`, with `…` when cut.
pub fn abbreviate(s: &str, n: usize) -> String {
    let kept = truncate_chars(s, n);
    if kept.len() < s.len() {
        format!("{kept}…")
    } else {
        s.to_owned()
    }
}
