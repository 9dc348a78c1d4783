//! Reading `mongoexport` JSON Lines exports as a stream: plain or gzip
//! (detected by the content's magic bytes, not the name), line by line with
//! line numbers and byte offsets, in constant memory.

use std::io::{self, BufRead, BufReader, Read};

use flate2::read::MultiGzDecoder;

pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const BUFFER_BYTES: usize = 1 << 20;

/// One line of an export, without its line terminator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based.
    pub number: u64,
    /// Offset just past this line's terminator in the (decompressed) stream:
    /// where a resumed read continues.
    pub end_offset: u64,
    pub bytes: Vec<u8>,
}

impl Line {
    /// Blank lines are not counted as lines of the export.
    pub fn is_blank(&self) -> bool {
        self.bytes.iter().all(|b| b.is_ascii_whitespace())
    }
}

/// Reads lines from any byte stream, reusing one buffer.
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
        let mut bytes = Vec::new();
        let read = self.reader.read_until(b'\n', &mut bytes)?;
        if read == 0 {
            return Ok(None);
        }
        self.offset += read as u64;
        self.number += 1;
        if bytes.last() == Some(&b'\n') {
            bytes.pop();
            if bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
        }
        Ok(Some(Line {
            number: self.number,
            end_offset: self.offset,
            bytes,
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
