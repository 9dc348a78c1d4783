//! Scanning an export: its objects (a file, an S3 object or every object
//! under an S3 prefix), read in 1 MiB chunks cut at line ends and mapped on
//! every core, the results folded in the export's order, so "the first of an
//! export's repeats counts" holds as in a sequential read. A scan can stop at
//! a chunk boundary and continue later from where it stopped. A line longer
//! than 1 MiB is read past, its first 64 KiB kept, as `LineReader` does.

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::sync::{mpsc, Mutex};

use crate::contract::Event;
use crate::export::lines::{CappedLine, LineBytes, MAX_LINE_BYTES};
use crate::export::{open_source, parse_line, Source};

/// Bytes of export per unit of parallel work (and per possible stop).
const CHUNK_BYTES: usize = 1 << 20;

/// Where a scan stands: the object (index into the sources) and the byte
/// offset, in its decompressed stream, just past the last line folded.
pub type ScanPoint = (usize, u64);

/// A unit of parallel work.
enum Chunk {
    /// Whole lines: the chunk ends at a line end (or the export's end).
    Lines(Vec<u8>),
    /// One line longer than 1 MiB: its first 64 KiB, and its length.
    OverLong(Vec<u8>, u64),
}

/// Why an export could not be read.
#[derive(Debug)]
pub enum ExportReadError {
    /// The source names no export that can be read (a malformed source, no
    /// S3 client, an empty prefix).
    Source(String),
    /// Listing an S3 prefix failed.
    List {
        source: String,
        error: Box<
            aws_sdk_s3::error::SdkError<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Error>,
        >,
    },
    /// Opening or reading an object failed.
    Read(io::Error),
}

impl std::fmt::Display for ExportReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportReadError::Source(text) => f.write_str(text),
            ExportReadError::List { source, error } => write!(
                f,
                "cannot list {source}: {}",
                aws_sdk_s3::error::DisplayErrorContext(error.as_ref())
            ),
            ExportReadError::Read(e) => write!(f, "cannot read the export: {e}"),
        }
    }
}

impl std::error::Error for ExportReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExportReadError::Source(_) => None,
            ExportReadError::List { error, .. } => Some(error.as_ref()),
            ExportReadError::Read(e) => Some(e),
        }
    }
}

/// The export's objects: a local file, an S3 object, or every object under an S3 prefix.
pub async fn expand_sources(
    source: &str,
    s3: Option<&aws_sdk_s3::Client>,
) -> Result<Vec<Source>, ExportReadError> {
    let parsed = Source::parse(source).map_err(ExportReadError::Source)?;
    match &parsed {
        Source::S3 { bucket, key } if key.ends_with('/') => {
            let s3 = s3.ok_or_else(|| {
                ExportReadError::Source("reading from S3 needs an S3 client".into())
            })?;
            let mut keys = Vec::new();
            let mut pages = s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix(key)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| ExportReadError::List {
                    source: source.to_string(),
                    error: Box::new(e),
                })?;
                keys.extend(
                    page.contents()
                        .iter()
                        .filter_map(|o| o.key().map(str::to_string)),
                );
            }
            keys.sort();
            if keys.is_empty() {
                return Err(ExportReadError::Source(format!(
                    "{source} holds no objects: check the prefix"
                )));
            }
            Ok(keys
                .into_iter()
                .map(|key| Source::S3 {
                    bucket: bucket.clone(),
                    key,
                })
                .collect())
        }
        _ => Ok(vec![parsed]),
    }
}

/// Runs `map` on every line of the sources from `from` on, on every core,
/// and `fold` on its results in the export's order, until the end (`None`)
/// or until `stop` says so before a chunk (where to continue).
pub async fn scan<T: Send>(
    sources: &[Source],
    s3: Option<&aws_sdk_s3::Client>,
    from: ScanPoint,
    map: &(dyn Fn(LineBytes<'_>) -> Option<T> + Sync),
    fold: &mut (dyn FnMut(T) + Send),
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Option<ScanPoint>, ExportReadError> {
    let (from_index, from_offset) = from;
    for (index, source) in sources.iter().enumerate().skip(from_index) {
        let offset = if index == from_index { from_offset } else { 0 };
        let opened = open_source(source, s3, offset)
            .await
            .map_err(ExportReadError::Read)?;
        let stopped = tokio::task::block_in_place(|| {
            scan_stream(opened.reader, offset, map, &mut *fold, stop)
        })
        .map_err(ExportReadError::Read)?;
        if let Some(offset) = stopped {
            return Ok(Some((index, offset)));
        }
    }
    Ok(None)
}

/// One object of `scan`: a reader thread cuts chunks at line ends, workers
/// map their lines, and this thread folds the results in chunk order.
fn scan_stream<T: Send>(
    mut reader: Box<dyn BufRead + Send>,
    start: u64,
    map: &(dyn Fn(LineBytes<'_>) -> Option<T> + Sync),
    fold: &mut dyn FnMut(T),
    stop: &(dyn Fn() -> bool + Sync),
) -> io::Result<Option<u64>> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (chunk_tx, chunk_rx) = mpsc::sync_channel::<(u64, Chunk)>(workers * 2);
    let chunk_rx = Mutex::new(chunk_rx);
    let (done_tx, done_rx) = mpsc::sync_channel::<(u64, Vec<T>)>(workers * 2);
    // Mapped chunks' buffers go back to the reader: fresh megabytes each
    // time cost page faults.
    let (spare_tx, spare_rx) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let (chunk_rx, done_tx, spare_tx) = (&chunk_rx, done_tx.clone(), spare_tx.clone());
            scope.spawn(move || loop {
                let next = chunk_rx.lock().expect("chunk queue lock").recv();
                let Ok((seq, chunk)) = next else { break };
                let mut mapped = Vec::new();
                match chunk {
                    Chunk::Lines(chunk) => {
                        let lines = chunk.strip_suffix(b"\n").unwrap_or(&chunk);
                        let mut start = 0;
                        for end in memchr::memchr_iter(b'\n', lines).chain([lines.len()]) {
                            let line = &lines[start..end];
                            mapped.extend(map(LineBytes::of(
                                line.strip_suffix(b"\r").unwrap_or(line),
                            )));
                            start = end + 1;
                        }
                        let _ = spare_tx.send(chunk);
                    }
                    Chunk::OverLong(bytes, length) => mapped.extend(map(LineBytes {
                        bytes: &bytes,
                        length,
                    })),
                }
                if done_tx.send((seq, mapped)).is_err() {
                    break;
                }
            });
        }
        drop(spare_tx);
        drop(done_tx);
        let reading = scope.spawn(move || -> io::Result<Option<u64>> {
            let mut offset = start;
            let mut carry = Vec::new();
            let mut seq = 0u64;
            loop {
                // At least one chunk per call, so that a run always progresses.
                if seq > 0 && stop() {
                    return Ok(Some(offset));
                }
                let mut chunk = spare_rx.try_recv().unwrap_or_default();
                chunk.clear();
                chunk.append(&mut carry);
                let mut at_end = false;
                let mut want = CHUNK_BYTES;
                let cut = loop {
                    while chunk.len() < want {
                        let buffer = reader.fill_buf()?;
                        if buffer.is_empty() {
                            at_end = true;
                            break;
                        }
                        let n = buffer.len().min(want - chunk.len());
                        chunk.extend_from_slice(&buffer[..n]);
                        reader.consume(n);
                    }
                    match memchr::memrchr(b'\n', &chunk) {
                        _ if at_end => break Some(chunk.len()),
                        Some(last) => break Some(last + 1),
                        // One line, over 1 MiB already ("\r" or not): it is
                        // read past instead of held.
                        None if chunk.len() as u64 > MAX_LINE_BYTES + 1 => break None,
                        // A line longer than a chunk makes the chunk longer.
                        None => want = chunk.len() + CHUNK_BYTES,
                    }
                };
                let work = match cut {
                    Some(cut) => {
                        carry = chunk.split_off(cut);
                        offset += chunk.len() as u64;
                        Chunk::Lines(chunk)
                    }
                    None => {
                        let mut line = CappedLine::starting_with(&chunk);
                        line.read_rest(&mut reader)?;
                        offset += line.consumed();
                        let (kept, length) = line.finish();
                        Chunk::OverLong(kept, length)
                    }
                };
                let empty = matches!(&work, Chunk::Lines(chunk) if chunk.is_empty());
                if !empty {
                    if chunk_tx.send((seq, work)).is_err() {
                        return Ok(None);
                    }
                    seq += 1;
                }
                if at_end {
                    return Ok(None);
                }
            }
        });
        let mut waiting = BTreeMap::new();
        let mut next = 0u64;
        for (seq, mapped) in done_rx {
            waiting.insert(seq, mapped);
            while let Some(mapped) = waiting.remove(&next) {
                mapped.into_iter().for_each(&mut *fold);
                next += 1;
            }
        }
        reading.join().expect("the export reader does not panic")
    })
}

/// Streams every valid event of an export (a file, an S3 object or an S3
/// prefix) to `visit`, in the export's order.
pub async fn each_export_event(
    source: &str,
    s3: Option<&aws_sdk_s3::Client>,
    mut visit: impl FnMut(Event) + Send,
) -> Result<(), ExportReadError> {
    let sources = expand_sources(source, s3).await?;
    scan(
        &sources,
        s3,
        (0, 0),
        &|line| parse_line(line).ok(),
        &mut visit,
        &|| false,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Lines of varied lengths, CRLF, a last line without its line end, one
    /// of exactly 1 MiB (as long as a chunk), and two over 1 MiB: one just
    /// over, one of 3 MiB.
    fn export() -> Vec<u8> {
        let mut text = Vec::new();
        for i in 0..40_000 {
            let pad = "x".repeat(i % 97);
            text.extend_from_slice(format!("{i} {pad}\n").as_bytes());
            let long = match i {
                12_345 => CHUNK_BYTES,
                23_456 => CHUNK_BYTES + 10,
                34_567 => 3 * CHUNK_BYTES,
                _ => continue,
            };
            text.extend_from_slice(format!("{}\r\n", "y".repeat(long)).as_bytes());
        }
        text.extend_from_slice(b"last");
        text
    }

    /// Each line as a scan maps it: its bytes as held and its length.
    fn lines_of(text: &[u8]) -> Vec<(Vec<u8>, u64)> {
        text.split(|b| *b == b'\n')
            .map(|l| {
                let line = LineBytes::of(l.strip_suffix(b"\r").unwrap_or(l));
                (line.bytes.to_vec(), line.length)
            })
            .collect()
    }

    /// Scans from `offset`, stopping after `chunks` chunks when given.
    fn scan_from(
        text: &[u8],
        offset: u64,
        chunks: Option<usize>,
    ) -> (Vec<(Vec<u8>, u64)>, Option<u64>) {
        let reader: Box<dyn BufRead + Send> =
            Box::new(io::Cursor::new(text[offset as usize..].to_vec()));
        let mut out = Vec::new();
        let asked = AtomicUsize::new(0);
        let stopped = scan_stream(
            reader,
            offset,
            &|line| Some((line.bytes.to_vec(), line.length)),
            &mut |line| out.push(line),
            &|| chunks.is_some_and(|n| asked.fetch_add(1, Ordering::Relaxed) + 1 >= n),
        )
        .unwrap();
        (out, stopped)
    }

    #[test]
    fn every_line_is_mapped_once_and_folded_in_the_exports_order() {
        let text = export();
        let (lines, stopped) = scan_from(&text, 0, None);
        assert_eq!(stopped, None);
        assert_eq!(lines, lines_of(&text));
        let lengths = |over: bool| {
            lines
                .iter()
                .filter(|(_, length)| (*length > MAX_LINE_BYTES) == over && *length >= 1 << 20)
                .map(|(bytes, length)| (bytes.len(), *length))
                .collect::<Vec<_>>()
        };
        assert_eq!(lengths(false), [(CHUNK_BYTES, CHUNK_BYTES as u64)]);
        assert_eq!(
            lengths(true),
            [
                (64 << 10, CHUNK_BYTES as u64 + 10),
                (64 << 10, 3 * CHUNK_BYTES as u64)
            ]
        );
    }

    #[test]
    fn a_stopped_scan_continues_from_its_offset_to_the_same_lines() {
        let text = export();
        let mut lines = Vec::new();
        let mut offset = 0;
        let mut calls = 0;
        loop {
            calls += 1;
            let (part, stopped) = scan_from(&text, offset, Some(1));
            lines.extend(part);
            match stopped {
                Some(next) => {
                    assert!(next > offset, "each call progresses");
                    assert_eq!(text[next as usize - 1], b'\n', "stops at a line end");
                    offset = next;
                }
                None => break,
            }
        }
        assert!(calls >= 3, "{calls} calls");
        assert_eq!(lines, lines_of(&text));
    }
}
