//! Reading `mongoexport` JSON Lines exports as a stream: plain or gzip
//! (detected by the content's magic bytes, not the name), line by line with
//! line numbers and byte offsets, in constant memory: a line longer than the
//! contract's 1 MiB is malformed, and only its first 64 KiB are kept of it.

use std::io::{self, BufRead, BufReader, Read};

use flate2::read::MultiGzDecoder;

pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const BUFFER_BYTES: usize = 1 << 20;

/// A line longer than this, its line end excluded, is malformed (EVENTS.md,
/// "Limits"): 1 MiB.
pub const MAX_LINE_BYTES: u64 = 1 << 20;

/// What is kept of a line longer than `MAX_LINE_BYTES`: enough to record it.
/// The rest is read past, never held.
pub const OVER_LONG_KEPT_BYTES: usize = 64 << 10;

/// Bytes of a line held while reading it: a line of exactly 1 MiB and the
/// `\r` of its `\r\n`. Whether a line is over-long is known only past this.
const HELD_BYTES: usize = MAX_LINE_BYTES as usize + 1;

/// A line as read, borrowed: what the parser and the scan's mappers get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineBytes<'a> {
    /// The whole line, or the first 64 KiB of a line longer than 1 MiB.
    pub bytes: &'a [u8],
    /// The line's length in bytes, line end excluded.
    pub length: u64,
}

impl<'a> LineBytes<'a> {
    /// A line held whole (without its line end): all of it, or only its
    /// first 64 KiB when it is over-long.
    pub fn of(line: &'a [u8]) -> LineBytes<'a> {
        let length = line.len() as u64;
        let bytes = if length > MAX_LINE_BYTES {
            &line[..OVER_LONG_KEPT_BYTES]
        } else {
            line
        };
        LineBytes { bytes, length }
    }

    /// Longer than the contract's 1 MiB: malformed, whatever it holds.
    pub fn is_over_long(&self) -> bool {
        self.length > MAX_LINE_BYTES
    }
}

/// One line of an export, without its line terminator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based.
    pub number: u64,
    /// Offset just past this line's terminator in the (decompressed) stream:
    /// where a resumed read continues.
    pub end_offset: u64,
    /// The whole line, or the first 64 KiB of a line longer than 1 MiB.
    pub bytes: Vec<u8>,
    /// The line's length in bytes, line end excluded: more than `bytes`
    /// holds only when the line is over-long.
    pub length: u64,
}

impl Line {
    /// A line of an export holding `bytes` whole.
    pub fn new(number: u64, end_offset: u64, bytes: Vec<u8>) -> Line {
        Line {
            number,
            end_offset,
            length: bytes.len() as u64,
            bytes,
        }
    }

    pub fn as_read(&self) -> LineBytes<'_> {
        LineBytes {
            bytes: &self.bytes,
            length: self.length,
        }
    }

    /// Blank lines are not counted as lines of the export. An over-long line
    /// is not blank: only its start was seen.
    pub fn is_blank(&self) -> bool {
        !self.as_read().is_over_long() && self.bytes.iter().all(|b| b.is_ascii_whitespace())
    }
}

/// One line read in parts from a stream, held only up to `HELD_BYTES`: what
/// `LineReader` and the scan's reader share, so that a line of any length
/// costs at most 1 MiB while it is read.
#[derive(Default)]
pub(super) struct CappedLine {
    held: Vec<u8>,
    /// Bytes of the line read so far, its `\n` excluded.
    length: u64,
    /// Bytes consumed from the stream, its `\n` included.
    consumed: u64,
    /// Whether a `\n` ended it (else the stream did).
    ended: bool,
    /// Its last byte before the `\n`, to tell a `\r\n`.
    last: Option<u8>,
}

impl CappedLine {
    /// A line whose first bytes, `start` (no `\n` among them), were read already.
    pub(super) fn starting_with(start: &[u8]) -> CappedLine {
        CappedLine {
            held: start[..start.len().min(HELD_BYTES)].to_vec(),
            length: start.len() as u64,
            consumed: start.len() as u64,
            ended: false,
            last: start.last().copied(),
        }
    }

    /// Reads on to the line's end (a `\n`, or the stream's end).
    pub(super) fn read_rest(&mut self, reader: &mut dyn BufRead) -> io::Result<()> {
        while !self.ended {
            let buffer = match reader.fill_buf() {
                Ok(buffer) => buffer,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buffer.is_empty() {
                break;
            }
            let (part, used) = match memchr::memchr(b'\n', buffer) {
                Some(at) => (&buffer[..at], at + 1),
                None => (buffer, buffer.len()),
            };
            self.ended = used > part.len();
            let room = HELD_BYTES.saturating_sub(self.held.len());
            self.held.extend_from_slice(&part[..part.len().min(room)]);
            self.length += part.len() as u64;
            self.last = part.last().copied().or(self.last);
            reader.consume(used);
            self.consumed += used as u64;
        }
        Ok(())
    }

    /// Bytes consumed from the stream: 0 when it had ended already.
    pub(super) fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The line without its line end: its bytes (all of them, or the first
    /// 64 KiB of an over-long line) and its length.
    pub(super) fn finish(mut self) -> (Vec<u8>, u64) {
        let length = self.length - u64::from(self.ended && self.last == Some(b'\r'));
        if length > MAX_LINE_BYTES {
            self.held.truncate(OVER_LONG_KEPT_BYTES);
            self.held.shrink_to_fit();
        } else {
            self.held.truncate(length as usize);
        }
        (self.held, length)
    }
}

/// Reads lines from any byte stream.
pub struct LineReader<R: BufRead> {
    reader: R,
    number: u64,
    offset: u64,
}

impl<R: BufRead> LineReader<R> {
    /// `first_number` and `offset` describe where `reader` starts (0 and 0
    /// for the beginning of an export).
    pub fn new(reader: R, first_number: u64, offset: u64) -> LineReader<R> {
        LineReader {
            reader,
            number: first_number,
            offset,
        }
    }

    /// The next line, or `None` at the end.
    pub fn next_line(&mut self) -> io::Result<Option<Line>> {
        let mut line = CappedLine::default();
        line.read_rest(&mut self.reader)?;
        if line.consumed() == 0 {
            return Ok(None);
        }
        self.offset += line.consumed();
        self.number += 1;
        let (bytes, length) = line.finish();
        Ok(Some(Line {
            number: self.number,
            end_offset: self.offset,
            bytes,
            length,
        }))
    }
}

impl<R: BufRead> Iterator for LineReader<R> {
    type Item = io::Result<Line>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_line().transpose()
    }
}

/// Wraps `reader` in a gzip decoder when its first bytes are the gzip magic.
pub fn decompress_if_gzip<R: Read + Send + 'static>(
    reader: R,
) -> io::Result<Box<dyn BufRead + Send>> {
    let mut buffered = BufReader::with_capacity(BUFFER_BYTES, reader);
    let head = buffered.fill_buf()?;
    if head.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(BufReader::with_capacity(
            BUFFER_BYTES,
            MultiGzDecoder::new(buffered),
        )))
    } else {
        Ok(Box::new(buffered))
    }
}

/// Discards `count` bytes of a stream.
pub fn skip_bytes(reader: &mut dyn BufRead, count: u64) -> io::Result<()> {
    let skipped = io::copy(&mut reader.take(count), &mut io::sink())?;
    if skipped < count {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the export is shorter ({skipped} bytes) than the resume offset {count}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn lines_of(reader: impl BufRead) -> Vec<(u64, u64, String)> {
        LineReader::new(reader, 0, 0)
            .map(|l| {
                let l = l.unwrap();
                (l.number, l.end_offset, String::from_utf8(l.bytes).unwrap())
            })
            .collect()
    }

    #[test]
    fn lines_carry_numbers_and_resume_offsets() {
        let text = "a\r\n\nbc\nlast";
        assert_eq!(
            lines_of(text.as_bytes()),
            vec![
                (1, 3, "a".into()),
                (2, 4, "".into()),
                (3, 7, "bc".into()),
                (4, 11, "last".into())
            ]
        );
    }

    /// Reads `text` through a buffer of `capacity` bytes, so that lines
    /// arrive in parts.
    fn read_all(text: &[u8], capacity: usize) -> Vec<Line> {
        LineReader::new(BufReader::with_capacity(capacity, text), 0, 0)
            .map(|l| l.unwrap())
            .collect()
    }

    #[test]
    fn a_line_over_1_mib_keeps_its_first_64_kib_and_the_next_lines_their_places() {
        let max = MAX_LINE_BYTES as usize;
        let mut text = b"first\n".to_vec();
        let long: Vec<u8> = (0..3 * max).map(|i| b'a' + (i % 26) as u8).collect();
        text.extend_from_slice(&long);
        text.extend_from_slice(b"\r\nafter\n");
        for capacity in [7, 1 << 16, 1 << 20] {
            let lines = read_all(&text, capacity);
            assert_eq!(lines.len(), 3);
            assert_eq!(lines[1].number, 2);
            assert_eq!(lines[1].length, 3 * max as u64);
            assert_eq!(lines[1].bytes, long[..OVER_LONG_KEPT_BYTES]);
            assert!(lines[1].as_read().is_over_long() && !lines[1].is_blank());
            assert_eq!(lines[1].end_offset, 6 + 3 * max as u64 + 2);
            assert_eq!(
                lines[2],
                Line::new(3, text.len() as u64, b"after".to_vec()),
                "capacity {capacity}"
            );
        }
    }

    #[test]
    fn the_limit_is_1_mib_with_the_line_end_excluded() {
        let max = MAX_LINE_BYTES as usize;
        let exactly = |end: &[u8]| [vec![b'x'; max], end.to_vec()].concat();
        // 1 MiB with "\r\n": whole, the "\r" split from its "\n" by the buffer.
        for capacity in [max, max + 1, 4096] {
            let lines = read_all(&exactly(b"\r\n"), capacity);
            assert_eq!((lines[0].bytes.len(), lines[0].length), (max, max as u64));
            assert!(!lines[0].as_read().is_over_long());
        }
        // A byte more (a "\r" not before a "\n" is part of the line).
        for end in [&b"y\n"[..], b"\r", b"y"] {
            let lines = read_all(&exactly(end), 4096);
            assert_eq!(lines[0].length, max as u64 + 1, "{end:?}");
            assert_eq!(lines[0].bytes.len(), OVER_LONG_KEPT_BYTES);
        }
        // The held view of a whole line decides alike.
        let line = exactly(b"z");
        assert!(LineBytes::of(&line).is_over_long());
        assert_eq!(LineBytes::of(&line).bytes.len(), OVER_LONG_KEPT_BYTES);
        assert!(!LineBytes::of(&line[..max]).is_over_long());
    }

    #[test]
    fn gzip_is_detected_by_content_and_resumes_at_an_offset() {
        let dir = std::env::temp_dir().join(format!("export-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("no-gz-suffix.jsonl");
        let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"one\ntwo\nthree\n").unwrap();
        std::fs::write(&path, encoder.finish().unwrap()).unwrap();
        let all = lines_of(crate::export::source::open_local(&path, 0).unwrap().reader);
        assert_eq!(all.len(), 3);
        let rest = LineReader::new(
            crate::export::source::open_local(&path, all[0].1)
                .unwrap()
                .reader,
            1,
            all[0].1,
        )
        .map(|l| l.unwrap().bytes)
        .collect::<Vec<_>>();
        assert_eq!(rest, vec![b"two".to_vec(), b"three".to_vec()]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
