//! Where an export is read from: a local path or `s3://bucket/key`, opened at
//! a byte offset of its decompressed content. Plain S3 objects are read with a
//! ranged GET from the offset, so a resumed run does not fetch what is done;
//! gzip streams cannot be entered midway and are decompressed from the start.

use std::io::{self, BufRead, BufReader, Read, Seek};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::export::lines::{decompress_if_gzip, skip_bytes, GZIP_MAGIC};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Local(PathBuf),
    S3 { bucket: String, key: String },
}

impl Source {
    pub fn parse(text: &str) -> Result<Source, String> {
        match text.strip_prefix("s3://") {
            None => Ok(Source::Local(PathBuf::from(text))),
            Some(rest) => match rest.split_once('/') {
                Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(Source::S3 {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                }),
                _ => Err(format!(
                    "{text:?} is not an S3 location: write s3://bucket/key"
                )),
            },
        }
    }
}

/// Which exports a job may read. The `warehouse` command reads what its
/// operator names, a file or S3 (`Anywhere`); a function reads only S3
/// objects under its configured bucket and prefix (`Under`), since its
/// payload comes from whoever may invoke it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportScope {
    Anywhere,
    /// `bucket` exactly, keys starting with `prefix`: empty (the whole
    /// bucket) or a folder ending with `/`.
    Under {
        bucket: String,
        prefix: String,
    },
}

impl ExportScope {
    /// Only S3 objects in `bucket` under the folder `prefix`, written as a
    /// path in the bucket: `exports/` (or `/exports/`, or `exports`, the
    /// same folder), `/` for the whole bucket.
    pub fn s3_folder(bucket: &str, prefix: &str) -> Result<ExportScope, String> {
        crate::store::check_bucket_name(bucket)?;
        let mut prefix = prefix.trim_start_matches('/').to_string();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        if let Some(problem) = key_problem(&prefix) {
            return Err(format!(
                "the prefix {prefix:?} has {problem}: write the folder as it is in the bucket, e.g. exports/"
            ));
        }
        Ok(ExportScope::Under {
            bucket: bucket.to_string(),
            prefix,
        })
    }

    /// `text` as a source, if this scope admits it; else why not, and what
    /// it admits. Nothing is read: check before anything is.
    pub fn admit(&self, text: &str) -> Result<Source, String> {
        let (bucket, prefix) = match self {
            ExportScope::Anywhere => return Source::parse(text),
            ExportScope::Under { bucket, prefix } => (bucket, prefix),
        };
        let why_not = match text.strip_prefix("s3://") {
            None => Some(
                "it is not an s3:// location (local paths are read by the warehouse command only)",
            ),
            Some(rest) => match rest.split_once('/') {
                Some((named, _)) if named != bucket => Some("it names another bucket"),
                Some((_, key)) if !key.starts_with(prefix.as_str()) => {
                    Some("its key is outside the prefix")
                }
                Some((_, "")) => Some("its key is empty"),
                Some((_, key)) => key_problem(key),
                None => Some("it names no key"),
            },
        };
        match why_not {
            None => Source::parse(text),
            Some(why) => Err(format!(
                "the export {text:?} is refused: {why}; this function reads only s3://{bucket}/{prefix}… (an object, or a folder ending with /, whose key has no \".\" or \"..\" or empty segments, percent signs, backslashes or control characters)"
            )),
        }
    }
}

/// What makes a key unfit for a scope's check: segments that some clients
/// resolve (`.`, `..`) or that hide a folder (an empty one, `a//b`; only
/// the last may be empty: a folder ends with `/`), and characters that some
/// layer might decode or translate. Keys are never decoded here; refusing
/// these keeps "under the prefix" meaning one thing everywhere.
fn key_problem(key: &str) -> Option<&'static str> {
    let segments: Vec<&str> = key.split('/').collect();
    let inner = &segments[..segments.len() - 1];
    if segments.iter().any(|s| *s == "." || *s == "..") {
        Some("a \".\" or \"..\" segment")
    } else if inner.iter().any(|s| s.is_empty()) {
        Some("an empty segment")
    } else if key.contains('%') {
        Some("a percent sign (keys are taken as written, never percent-decoded)")
    } else if key.contains('\\') {
        Some("a backslash")
    } else if key.chars().any(char::is_control) {
        Some("a control character")
    } else {
        None
    }
}

pub struct Opened {
    pub reader: Box<dyn BufRead + Send>,
    /// Size of the stored object (compressed size for gzip), for progress.
    pub total_bytes: Option<u64>,
    /// Stored bytes read so far, for progress.
    pub bytes_read: Arc<AtomicU64>,
}

/// Counts the bytes that pass through.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A blocking `Read` over chunks an async task receives from S3.
struct ChannelReader {
    chunks: std::sync::mpsc::Receiver<io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => self.current = chunk,
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// Opens a local export at `offset` of its decompressed content: a plain
/// file seeks there; a gzip file is decompressed from its start and skipped.
pub fn open_local(path: &std::path::Path, offset: u64) -> io::Result<Opened> {
    let mut file = std::fs::File::open(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot open the export {}: {e}", path.display()),
        )
    })?;
    let total_bytes = file.metadata().ok().map(|m| m.len());
    let mut magic = [0u8; 2];
    let is_gzip = file.read(&mut magic)? == 2 && magic == GZIP_MAGIC;
    let start = if is_gzip { 0 } else { offset };
    file.seek(io::SeekFrom::Start(start))?;
    opened(
        file,
        is_gzip,
        offset,
        total_bytes,
        Arc::new(AtomicU64::new(start)),
    )
}

pub async fn open_source(
    source: &Source,
    s3: Option<&aws_sdk_s3::Client>,
    offset: u64,
) -> io::Result<Opened> {
    match source {
        Source::Local(path) => open_local(path, offset),
        Source::S3 { bucket, key } => {
            let s3 = s3.ok_or_else(|| io::Error::other("reading from S3 needs an S3 client"))?;
            let head = get_object(s3, bucket, key, Some("bytes=0-1".into())).await?;
            // "bytes 0-1/SIZE": the object's size, to know a resume at its end.
            let size = head
                .content_range
                .as_deref()
                .and_then(|r| r.rsplit('/').next())
                .and_then(|n| n.parse::<u64>().ok());
            let magic = head
                .body
                .collect()
                .await
                .map_err(io::Error::other)?
                .into_bytes();
            let is_gzip = magic.as_ref() == GZIP_MAGIC;
            if !is_gzip && size.is_some_and(|size| offset >= size) {
                return Ok(Opened {
                    reader: Box::new(io::empty()),
                    total_bytes: size,
                    bytes_read: Arc::new(AtomicU64::new(offset)),
                });
            }
            let range = (!is_gzip && offset > 0).then(|| format!("bytes={offset}-"));
            let object = get_object(s3, bucket, key, range).await?;
            let total_bytes = object
                .content_length
                .map(|n| n as u64 + if is_gzip { 0 } else { offset });
            let bytes_read = Arc::new(AtomicU64::new(if is_gzip { 0 } else { offset }));
            let (sender, receiver) = std::sync::mpsc::sync_channel(16);
            let mut body = object.body;
            tokio::spawn(async move {
                loop {
                    match body.next().await {
                        Some(Ok(chunk)) => {
                            if sender.send(Ok(chunk)).is_err() {
                                return;
                            }
                        }
                        Some(Err(e)) => {
                            let _ = sender.send(Err(io::Error::other(e)));
                            return;
                        }
                        None => return,
                    }
                }
            });
            let chunks = ChannelReader {
                chunks: receiver,
                current: bytes::Bytes::new(),
            };
            opened(chunks, is_gzip, offset, total_bytes, bytes_read)
        }
    }
}

/// The reader over stored bytes `raw` (already positioned at `offset` when
/// plain): counted for progress, decompressed and skipped to `offset` when gzip.
fn opened(
    raw: impl Read + Send + 'static,
    is_gzip: bool,
    offset: u64,
    total_bytes: Option<u64>,
    bytes_read: Arc<AtomicU64>,
) -> io::Result<Opened> {
    let counted = Counting {
        inner: raw,
        count: bytes_read.clone(),
    };
    let reader: Box<dyn BufRead + Send> = if is_gzip {
        let mut reader = decompress_if_gzip(counted)?;
        skip_bytes(&mut reader, offset)?;
        reader
    } else {
        Box::new(BufReader::with_capacity(1 << 20, counted))
    };
    Ok(Opened {
        reader,
        total_bytes,
        bytes_read,
    })
}

async fn get_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    range: Option<String>,
) -> io::Result<aws_sdk_s3::operation::get_object::GetObjectOutput> {
    s3.get_object()
        .bucket(bucket)
        .key(key)
        .set_range(range)
        .send()
        .await
        .map_err(|e| {
            io::Error::other(format!(
                "cannot read s3://{bucket}/{key}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_locations_and_paths_are_told_apart() {
        assert_eq!(
            Source::parse("s3://b/exports/night.jsonl.gz").unwrap(),
            Source::S3 {
                bucket: "b".into(),
                key: "exports/night.jsonl.gz".into()
            }
        );
        assert_eq!(
            Source::parse("events.jsonl").unwrap(),
            Source::Local("events.jsonl".into())
        );
        assert!(Source::parse("s3://bucket-only")
            .unwrap_err()
            .contains("s3://bucket/key"));
    }

    fn exports() -> ExportScope {
        ExportScope::s3_folder("exports-bucket", "nightly").unwrap()
    }

    #[test]
    fn a_functions_scope_admits_objects_and_folders_under_its_prefix_only() {
        let scope = exports();
        assert_eq!(
            scope,
            ExportScope::Under {
                bucket: "exports-bucket".into(),
                prefix: "nightly/".into()
            }
        );
        for admitted in [
            "s3://exports-bucket/nightly/2026-01-01.jsonl.gz",
            "s3://exports-bucket/nightly/2026-01-01/",
            "s3://exports-bucket/nightly/",
            "s3://exports-bucket/nightly/a.b/..c/...",
        ] {
            assert_eq!(
                scope.admit(admitted).unwrap(),
                Source::parse(admitted).unwrap(),
                "{admitted}"
            );
        }
        for (refused, why) in [
            ("/var/task/bootstrap", "not an s3:// location"),
            ("nightly/x.jsonl", "not an s3:// location"),
            ("S3://exports-bucket/nightly/x", "not an s3:// location"),
            ("s3:/exports-bucket/nightly/x", "not an s3:// location"),
            (" s3://exports-bucket/nightly/x", "not an s3:// location"),
            ("file:///etc/passwd", "not an s3:// location"),
            ("s3://other-bucket/nightly/x", "another bucket"),
            ("s3://Exports-Bucket/nightly/x", "another bucket"),
            ("s3://exports-bucket.evil/nightly/x", "another bucket"),
            ("s3://exports-bucket@evil/nightly/x", "another bucket"),
            ("s3://exports-bucket", "names no key"),
            ("s3://exports-bucket/", "outside the prefix"),
            ("s3://exports-bucket/nightlyother/x", "outside the prefix"),
            ("s3://exports-bucket/nightly", "outside the prefix"),
            ("s3://exports-bucket/Nightly/x", "outside the prefix"),
            ("s3://exports-bucket/other/x", "outside the prefix"),
            ("s3://exports-bucket//nightly/x", "outside the prefix"),
            ("s3://exports-bucket/nightly/../other/x", "segment"),
            ("s3://exports-bucket/nightly/./x", "segment"),
            ("s3://exports-bucket/nightly/..", "segment"),
            ("s3://exports-bucket/nightly//x", "an empty segment"),
            ("s3://exports-bucket/nightly/%2e%2e/other", "percent sign"),
            (
                "s3://exports-bucket/nightly%2F..%2Fother",
                "outside the prefix",
            ),
            ("s3://exports-bucket/nightly/..%2Fother", "percent sign"),
            ("s3://exports-bucket/nightly/..\\other", "a backslash"),
            ("s3://exports-bucket/nightly/x\n", "a control character"),
            ("s3://exports-bucket/nightly/x\0", "a control character"),
        ] {
            let error = scope.admit(refused).unwrap_err();
            assert!(error.contains(why), "{refused:?}: {error}");
            assert!(
                error.contains("this function reads only s3://exports-bucket/nightly/…"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_scope_is_written_as_a_folder_of_a_valid_bucket() {
        for prefix in ["nightly/", "/nightly/", "nightly", "/nightly"] {
            assert_eq!(
                ExportScope::s3_folder("exports-bucket", prefix).unwrap(),
                exports(),
                "{prefix}"
            );
        }
        let whole = ExportScope::s3_folder("exports-bucket", "/").unwrap();
        assert!(whole.admit("s3://exports-bucket/any/key").is_ok());
        assert!(whole.admit("s3://exports-bucket/").is_err());
        assert!(whole.admit("s3://exports-bucket//x").is_err());
        for bucket in ["", "ab", "Exports", "exports/x", "-exports", "exports_1"] {
            let error = ExportScope::s3_folder(bucket, "nightly/").unwrap_err();
            assert!(error.contains("not an S3 bucket name"), "{bucket}: {error}");
        }
        for prefix in ["a/../b", "a//b", "a/%2e/", "./a"] {
            assert!(
                ExportScope::s3_folder("exports-bucket", prefix).is_err(),
                "{prefix}"
            );
        }
        // The warehouse command reads anything its operator names.
        assert_eq!(
            ExportScope::Anywhere.admit("events.jsonl").unwrap(),
            Source::Local("events.jsonl".into())
        );
    }
}
