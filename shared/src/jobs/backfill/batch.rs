//! The export read in batches of lines, parsed ahead of loading on a
//! thread of its own.

use std::io::{self, BufRead};

use crate::contract::Event;
use crate::export::{parse_line, Line, LineReader, ParseError};

/// A batch parsed ahead of loading (by the reader thread).
pub(super) struct ParsedBatch {
    pub(super) lines: Vec<Line>,
    pub(super) parsed: Vec<Option<Result<Event, ParseError>>>,
    pub(super) nonblank: u64,
    pub(super) end_offset: u64,
    pub(super) last_line: u64,
}

/// Reads the export in batches of `batch_lines` lines, parsed, for `run`.
pub(super) fn read_batches(
    reader: Box<dyn BufRead + Send>,
    first_line: u64,
    start_offset: u64,
    batch_lines: usize,
    sender: &tokio::sync::mpsc::Sender<io::Result<ParsedBatch>>,
) {
    let mut lines = LineReader::new(reader, first_line, start_offset);
    loop {
        let mut batch = ParsedBatch {
            lines: Vec::with_capacity(batch_lines),
            parsed: Vec::with_capacity(batch_lines),
            nonblank: 0,
            end_offset: start_offset,
            last_line: first_line,
        };
        while batch.lines.len() < batch_lines {
            match lines.next_line() {
                Ok(Some(line)) => {
                    batch.end_offset = line.end_offset;
                    batch.last_line = line.number;
                    if line.is_blank() {
                        batch.parsed.push(None);
                    } else {
                        batch.nonblank += 1;
                        batch.parsed.push(Some(parse_line(&line.bytes)));
                    }
                    batch.lines.push(line);
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = sender.blocking_send(Err(e));
                    return;
                }
            }
        }
        if batch.lines.is_empty() {
            return;
        }
        let last = batch.lines.len() < batch_lines;
        if sender.blocking_send(Ok(batch)).is_err() || last {
            return;
        }
    }
}
