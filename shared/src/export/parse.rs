//! One export line to one event: the line must be UTF-8 text holding one
//! event document of the contract.

use std::fmt;

use crate::contract::{parse_event, Event, EventError};

/// Why a line is not an event; permanent: the same line always fails alike.
#[derive(Debug, Clone, PartialEq)]
pub enum ParseError {
    NotUtf8(std::str::Utf8Error),
    Event(EventError),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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
            ParseError::NotUtf8(e) => Some(e),
            ParseError::Event(e) => Some(e),
        }
    }
}

/// Parses one line of an export (without its line end).
pub fn parse_line(bytes: &[u8]) -> Result<Event, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(ParseError::NotUtf8)?;
    parse_event(text).map_err(ParseError::Event)
}
