//! One export line to one event: the line must be at most 1 MiB of UTF-8
//! text holding one event document of the contract.

use std::fmt;

use crate::contract::{parse_event, Event, EventError};
use crate::export::lines::LineBytes;

/// Why a line is not an event; permanent: the same line always fails alike.
#[derive(Debug, Clone, PartialEq)]
pub enum ParseError {
    /// Longer than the contract's 1 MiB (line end excluded); only its first
    /// 64 KiB were read into memory, to record it.
    TooLong {
        length: u64,
    },
    NotUtf8(std::str::Utf8Error),
    Event(EventError),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TooLong { length } => write!(
                f,
                "line longer than 1 MiB (1,048,576 bytes, line end excluded): it has {length} bytes; an event is at most 1 MiB, so the line is malformed (only its first 64 KiB are kept here, the whole line is in the export)"
            ),
            ParseError::NotUtf8(e) => {
                write!(
                    f,
                    "the line is not valid UTF-8 ({e}); exports are UTF-8 text"
                )
            }
            ParseError::Event(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ParseError::TooLong { .. } => None,
            ParseError::NotUtf8(e) => Some(e),
            ParseError::Event(e) => Some(e),
        }
    }
}

/// Parses one line of an export as read (without its line end).
pub fn parse_line(line: LineBytes<'_>) -> Result<Event, ParseError> {
    if line.is_over_long() {
        return Err(ParseError::TooLong {
            length: line.length,
        });
    }
    let text = std::str::from_utf8(line.bytes).map_err(ParseError::NotUtf8)?;
    parse_event(text).map_err(ParseError::Event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::lines::MAX_LINE_BYTES;

    #[test]
    fn a_line_over_1_mib_is_malformed_whatever_its_start_holds() {
        // Its first 64 KiB would parse: a valid event followed by spaces.
        let event = r#"{"streamId":"p","version":1,"type":"ViewerLeft","occurredAt":{"$date":"2021-09-14T14:00:00Z"},"tenantId":"t","data":{"sessionId":"s","viewerId":"u"}}"#;
        let mut line = event.as_bytes().to_vec();
        line.resize(MAX_LINE_BYTES as usize, b' ');
        assert!(parse_line(LineBytes::of(&line)).is_ok());
        line.push(b' ');
        let error = parse_line(LineBytes::of(&line)).unwrap_err();
        assert_eq!(error, ParseError::TooLong { length: 1_048_577 });
        assert!(
            error.to_string().starts_with(
                "line longer than 1 MiB (1,048,576 bytes, line end excluded): it has 1048577 bytes;"
            ),
            "{error}"
        );
    }
}
