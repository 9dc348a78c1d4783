//! The export read in batches, bounded in lines and in bytes, parsed ahead
//! of loading on a thread of its own.

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

/// How large a batch may grow: `lines` lines, and `bytes` bytes of lines as
/// held (an over-long line counts its kept 64 KiB). A line larger than
/// `bytes` alone is a batch of its own.
#[derive(Debug, Clone, Copy)]
pub(super) struct BatchBounds {
    pub(super) lines: usize,
    pub(super) bytes: usize,
}

/// Reads the export in batches within `bounds`, parsed, for `run`.
pub(super) fn read_batches(
    reader: Box<dyn BufRead + Send>,
    first_line: u64,
    start_offset: u64,
    bounds: BatchBounds,
    sender: &tokio::sync::mpsc::Sender<io::Result<ParsedBatch>>,
) {
    let mut lines = LineReader::new(reader, first_line, start_offset);
    // The line that did not fit the last batch: it starts the next one.
    let mut left_over: Option<Line> = None;
    loop {
        let mut batch = ParsedBatch {
            lines: Vec::new(),
            parsed: Vec::new(),
            nonblank: 0,
            end_offset: start_offset,
            last_line: first_line,
        };
        let mut bytes = 0;
        let mut at_end = false;
        loop {
            let line = match left_over
                .take()
                .map(Ok)
                .or_else(|| lines.next_line().transpose())
            {
                Some(Ok(line)) => line,
                None => {
                    at_end = true;
                    break;
                }
                Some(Err(e)) => {
                    let _ = sender.blocking_send(Err(e));
                    return;
                }
            };
            let full = batch.lines.len() >= bounds.lines || bytes + line.bytes.len() > bounds.bytes;
            if full && !batch.lines.is_empty() {
                left_over = Some(line);
                break;
            }
            bytes += line.bytes.len();
            batch.end_offset = line.end_offset;
            batch.last_line = line.number;
            if line.is_blank() {
                batch.parsed.push(None);
            } else {
                batch.nonblank += 1;
                batch.parsed.push(Some(parse_line(line.as_read())));
            }
            batch.lines.push(line);
        }
        if !batch.lines.is_empty() && sender.blocking_send(Ok(batch)).is_err() {
            return;
        }
        if at_end {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The batches of `text` within `bounds`: each one's line numbers and
    /// bytes of lines.
    fn batches_of(text: &str, bounds: BatchBounds) -> Vec<(Vec<u64>, usize)> {
        let (sender, mut receiver) = tokio::sync::mpsc::channel(1000);
        read_batches(
            Box::new(io::Cursor::new(text.as_bytes().to_vec())),
            0,
            0,
            bounds,
            &sender,
        );
        drop(sender);
        let mut batches = Vec::new();
        while let Ok(batch) = receiver.try_recv() {
            let batch = batch.unwrap();
            let bytes = batch.lines.iter().map(|l| l.bytes.len()).sum();
            batches.push((batch.lines.iter().map(|l| l.number).collect(), bytes));
        }
        batches
    }

    #[test]
    fn a_batch_ends_at_its_byte_bound_as_at_its_line_bound() {
        // Lines of 10, 10, 30, 10, 100, 10 bytes (line ends not counted).
        let text = ["a"; 10].concat() + "\n";
        let text = [
            text.clone(),
            text.clone(),
            ["b"; 30].concat() + "\r\n",
            text.clone(),
            ["c"; 100].concat() + "\n",
            text.clone(),
        ]
        .concat();
        let by_bytes = batches_of(
            &text,
            BatchBounds {
                lines: 100,
                bytes: 40,
            },
        );
        assert_eq!(
            by_bytes,
            [
                (vec![1, 2], 20),
                (vec![3, 4], 40),
                // Larger than the bound alone: a batch of its own.
                (vec![5], 100),
                (vec![6], 10)
            ]
        );
        let by_lines = batches_of(
            &text,
            BatchBounds {
                lines: 4,
                bytes: 1000,
            },
        );
        assert_eq!(by_lines, [(vec![1, 2, 3, 4], 60), (vec![5, 6], 110)]);
        // Every line once, in order, whatever the bounds.
        for bytes in [1, 39, 41, 160, 170] {
            let numbers: Vec<u64> = batches_of(&text, BatchBounds { lines: 3, bytes })
                .into_iter()
                .flat_map(|(numbers, held)| {
                    assert!(held <= bytes.max(100) && numbers.len() <= 3);
                    numbers
                })
                .collect();
            assert_eq!(numbers, [1, 2, 3, 4, 5, 6], "{bytes}");
        }
    }
}
