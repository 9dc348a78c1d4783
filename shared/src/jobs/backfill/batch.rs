//! The export read in batches, bounded in lines and in bytes, parsed ahead
//! of loading on a thread of its own; and the bytes of lines a run holds at
//! once, from reading to committing, bounded too.

use std::io::{self, BufRead};
use std::sync::{Condvar, Mutex};

use crate::contract::Event;
use crate::export::{parse_line, Line, LineReader, ParseError};

/// A batch parsed ahead of loading (by the reader thread).
pub(super) struct ParsedBatch {
    pub(super) lines: Vec<Line>,
    pub(super) parsed: Vec<Option<Result<Event, ParseError>>>,
    pub(super) nonblank: u64,
    pub(super) end_offset: u64,
    pub(super) last_line: u64,
    /// Bytes of its lines as held: what it gives back to `HeldBytes` once
    /// committed.
    pub(super) bytes: usize,
}

/// How large a batch may grow: `lines` lines, and `bytes` bytes of lines as
/// held (an over-long line counts its kept 64 KiB). A line larger than
/// `bytes` alone is a batch of its own.
#[derive(Debug, Clone, Copy)]
pub(super) struct BatchBounds {
    pub(super) lines: usize,
    pub(super) bytes: usize,
}

/// The bytes of lines a run holds at once, from the reader to the lanes'
/// commits: the reader reserves a batch's bound before it reads a batch (and
/// gives back what the batch did not use), and each lane gives back its
/// share's bytes once it is committed. The queues between them count
/// batches; this counts bytes, so that a run's memory stays flat however
/// long its lines are.
pub(super) struct HeldBytes {
    limit: usize,
    /// Bytes held, and whether the run has ended (nothing waits then).
    state: Mutex<(usize, bool)>,
    given_back: Condvar,
}

impl HeldBytes {
    pub(super) fn new(limit: usize) -> HeldBytes {
        HeldBytes {
            limit,
            state: Mutex::new((0, false)),
            given_back: Condvar::new(),
        }
    }

    /// Waits until `bytes` more fit (or nothing is held), and holds them;
    /// false once the run has ended.
    fn reserve(&self, bytes: usize) -> bool {
        let mut state = self.state.lock().expect("held bytes lock");
        while !state.1 && state.0 > 0 && state.0 + bytes > self.limit {
            state = self.given_back.wait(state).expect("held bytes lock");
        }
        state.0 += bytes;
        !state.1
    }

    /// Holds `used` instead of the `reserved` bytes: a batch is settled.
    /// (One line larger than its batch's bound is held beyond the limit.)
    fn settle(&self, reserved: usize, used: usize) {
        let mut state = self.state.lock().expect("held bytes lock");
        state.0 = state.0 + used - reserved;
        self.given_back.notify_all();
    }

    pub(super) fn give_back(&self, bytes: usize) {
        self.settle(bytes, 0);
    }

    /// The run has ended: a reader waiting for room stops.
    pub(super) fn end(&self) {
        self.state.lock().expect("held bytes lock").1 = true;
        self.given_back.notify_all();
    }
}

/// Reads the export in batches within `bounds`, parsed, for `run`, holding
/// each batch's bytes in `held` until the lanes give them back.
pub(super) fn read_batches(
    reader: Box<dyn BufRead + Send>,
    first_line: u64,
    start_offset: u64,
    bounds: BatchBounds,
    held: &HeldBytes,
    sender: &tokio::sync::mpsc::Sender<io::Result<ParsedBatch>>,
) {
    let mut lines = LineReader::new(reader, first_line, start_offset);
    // The line that did not fit the last batch: it starts the next one.
    let mut left_over: Option<Line> = None;
    loop {
        if !held.reserve(bounds.bytes) {
            return;
        }
        let mut batch = ParsedBatch {
            lines: Vec::with_capacity(bounds.lines),
            parsed: Vec::with_capacity(bounds.lines),
            nonblank: 0,
            end_offset: start_offset,
            last_line: first_line,
            bytes: 0,
        };
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
                    held.settle(bounds.bytes, 0);
                    let _ = sender.blocking_send(Err(e));
                    return;
                }
            };
            let full =
                batch.lines.len() >= bounds.lines || batch.bytes + line.bytes.len() > bounds.bytes;
            if full && !batch.lines.is_empty() {
                left_over = Some(line);
                break;
            }
            batch.bytes += line.bytes.len();
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
        held.settle(bounds.bytes, batch.bytes);
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
            &HeldBytes::new(usize::MAX),
            &sender,
        );
        drop(sender);
        let mut batches = Vec::new();
        while let Ok(batch) = receiver.try_recv() {
            let batch = batch.unwrap();
            let bytes = batch.lines.iter().map(|l| l.bytes.len()).sum();
            assert_eq!(batch.bytes, bytes);
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

    #[test]
    fn the_reader_waits_for_room_and_stops_when_the_run_ends() {
        // Batches of 4 lines of 10 bytes; room for two batches' bounds.
        let text = (["x"; 10].concat() + "\n").repeat(40);
        let bounds = BatchBounds {
            lines: 4,
            bytes: 100,
        };
        let held = std::sync::Arc::new(HeldBytes::new(200));
        let (sender, mut receiver) = tokio::sync::mpsc::channel(1000);
        let reader = std::thread::spawn({
            let held = held.clone();
            move || {
                let input = Box::new(io::Cursor::new(text.into_bytes()));
                read_batches(input, 0, 0, bounds, &held, &sender)
            }
        });
        let next = |receiver: &mut tokio::sync::mpsc::Receiver<io::Result<ParsedBatch>>| {
            std::thread::sleep(std::time::Duration::from_millis(200));
            receiver.try_recv().ok().map(|batch| batch.unwrap().bytes)
        };
        // Each batch holds its 40 bytes: after three, 120 of 200 are held,
        // and a fourth batch's bound (100) does not fit until 40 come back.
        assert_eq!(
            [
                next(&mut receiver),
                next(&mut receiver),
                next(&mut receiver)
            ],
            [Some(40); 3]
        );
        assert_eq!(next(&mut receiver), None);
        held.give_back(40);
        assert_eq!(next(&mut receiver), Some(40));
        assert_eq!(next(&mut receiver), None);
        held.end();
        reader.join().unwrap();
        assert_eq!(next(&mut receiver), None);
    }
}
