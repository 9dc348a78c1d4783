//! One S3 object written from a stream of bytes as they come
//! ([`ObjectWriter`], a `std::io::Write`): the bytes are held one part at a
//! time and sent as the parts of a multipart upload, so memory stays at one
//! part whatever the object's size; an object smaller than a part is one
//! `PutObject`.
//!
//! The writer is synchronous, for code that produces its bytes in a blocking
//! thread (a database read under `spawn_blocking`): each part is sent with
//! the runtime's `block_on`, which holds the producer back while it goes, so
//! at most one part is ever in memory.

use std::io;

use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};

/// S3's smallest part, the last excepted (moto enforces it too).
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;

/// Where an object goes and the headers it is served with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectTarget {
    pub bucket: String,
    pub key: String,
    pub content_type: String,
    pub content_disposition: Option<String>,
}

impl ObjectTarget {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// Why an object could not be written: what S3 answered, with the object's
/// location (for the log; not for a caller's eyes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectWriteError(pub String);

impl std::fmt::Display for ObjectWriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ObjectWriteError {}

/// Writes one object from what is written to it, a part at a time. Call
/// [`ObjectWriter::finish`] to make the object exist; until then nothing is
/// visible in the bucket, and a writer dropped unfinished (or
/// [`ObjectWriter::abort`]ed) leaves no object, its upload aborted.
///
/// Create it inside a Tokio runtime, and write to it from a thread that may
/// block (not from async code: sending a part blocks on the runtime).
pub struct ObjectWriter {
    s3: aws_sdk_s3::Client,
    target: ObjectTarget,
    runtime: tokio::runtime::Handle,
    part_bytes: usize,
    buffer: Vec<u8>,
    /// The multipart upload, once the first full part was sent.
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    bytes: u64,
    /// The first failure: every later write fails with it.
    failure: Option<ObjectWriteError>,
}

impl ObjectWriter {
    /// A writer of `target` sending parts of `part_bytes` (at least
    /// [`MIN_PART_BYTES`]: smaller is raised to it, as S3 refuses it).
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    pub fn new(s3: aws_sdk_s3::Client, target: ObjectTarget, part_bytes: usize) -> ObjectWriter {
        let part_bytes = part_bytes.max(MIN_PART_BYTES);
        ObjectWriter {
            s3,
            target,
            runtime: tokio::runtime::Handle::current(),
            part_bytes,
            // Reserved once: a part is sent when it is full, then refilled.
            buffer: Vec::with_capacity(part_bytes),
            upload_id: None,
            parts: Vec::new(),
            bytes: 0,
            failure: None,
        }
    }

    /// The first failure to write, if any (a write's `io::Error` carries
    /// only its text).
    pub fn failure(&self) -> Option<&ObjectWriteError> {
        self.failure.as_ref()
    }

    /// The parts sent so far (0 until the object outgrows one part).
    pub fn parts_sent(&self) -> usize {
        self.parts.len()
    }

    fn fail(&mut self, message: String) -> ObjectWriteError {
        let error = ObjectWriteError(message);
        self.failure = Some(error.clone());
        error
    }

    /// Sends the buffer as the next part, starting the upload first if this
    /// is the first part.
    fn send_part(&mut self) -> Result<(), ObjectWriteError> {
        let target = self.target.clone();
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let started = self.runtime.block_on(
                    self.s3
                        .create_multipart_upload()
                        .bucket(&target.bucket)
                        .key(&target.key)
                        .content_type(&target.content_type)
                        .set_content_disposition(target.content_disposition.clone())
                        // Each part's CRC32 is checked by S3 and named in the
                        // completion, as S3 expects once an algorithm is set.
                        .checksum_algorithm(ChecksumAlgorithm::Crc32)
                        .send(),
                );
                let id = started
                    .map_err(|e| {
                        format!(
                            "cannot start the upload of {}: {}",
                            target.location(),
                            DisplayErrorContext(&e)
                        )
                    })
                    .and_then(|out| {
                        out.upload_id.ok_or_else(|| {
                            format!(
                                "S3 started the upload of {} without an id",
                                target.location()
                            )
                        })
                    })
                    .map_err(|message| self.fail(message))?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        // The part's bytes move to the request; the next part's buffer is
        // reserved by the next write, once this one is sent and freed, so
        // memory holds one part at a time.
        let body = std::mem::take(&mut self.buffer);
        let sent = self.runtime.block_on(
            self.s3
                .upload_part()
                .bucket(&target.bucket)
                .key(&target.key)
                .upload_id(&upload_id)
                .part_number(number)
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .body(ByteStream::from(body))
                .send(),
        );
        match sent {
            Ok(out) => {
                self.parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(out.e_tag)
                        .set_checksum_crc32(out.checksum_crc32)
                        .build(),
                );
                Ok(())
            }
            Err(e) => Err(self.fail(format!(
                "cannot send part {number} of {}: {}",
                target.location(),
                DisplayErrorContext(&e)
            ))),
        }
    }

    /// Makes the object exist with everything written: the last part and
    /// the upload's completion, or one `PutObject` when it never outgrew a
    /// part. Returns its size in bytes. On failure the upload is aborted.
    pub fn finish(mut self) -> Result<u64, ObjectWriteError> {
        if let Some(error) = self.failure.clone() {
            self.abort();
            return Err(error);
        }
        let target = self.target.clone();
        let Some(upload_id) = self.upload_id.clone() else {
            let body = std::mem::take(&mut self.buffer);
            let put = self.runtime.block_on(
                self.s3
                    .put_object()
                    .bucket(&target.bucket)
                    .key(&target.key)
                    .content_type(&target.content_type)
                    .set_content_disposition(target.content_disposition.clone())
                    .body(ByteStream::from(body))
                    .send(),
            );
            return match put {
                Ok(_) => Ok(self.bytes),
                Err(e) => Err(self.fail(format!(
                    "cannot write {}: {}",
                    target.location(),
                    DisplayErrorContext(&e)
                ))),
            };
        };
        // Empty only when the bytes ended exactly on a part: the parts sent
        // are the whole object then.
        if !self.buffer.is_empty() {
            if let Err(error) = self.send_part() {
                self.abort();
                return Err(error);
            }
        }
        let completed = self.runtime.block_on(
            self.s3
                .complete_multipart_upload()
                .bucket(&target.bucket)
                .key(&target.key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(std::mem::take(&mut self.parts)))
                        .build(),
                )
                .send(),
        );
        match completed {
            Ok(_) => {
                self.upload_id = None;
                Ok(self.bytes)
            }
            Err(e) => {
                let error = self.fail(format!(
                    "cannot complete the upload of {}: {}",
                    target.location(),
                    DisplayErrorContext(&e)
                ));
                self.abort();
                Err(error)
            }
        }
    }

    /// Gives the object up: aborts the multipart upload if one was started
    /// (S3 then frees its parts), so no object appears.
    pub fn abort(mut self) {
        if let Some(upload_id) = self.upload_id.take() {
            let aborted = self.runtime.block_on(
                self.s3
                    .abort_multipart_upload()
                    .bucket(&self.target.bucket)
                    .key(&self.target.key)
                    .upload_id(upload_id)
                    .send(),
            );
            if let Err(e) = aborted {
                // The bucket's lifecycle rule removes what is left.
                tracing::warn!(object = %self.target.location(), error = %DisplayErrorContext(&e), "aborting an upload failed");
            }
        }
    }
}

impl io::Write for ObjectWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if let Some(error) = &self.failure {
            return Err(io::Error::other(error.clone()));
        }
        // Fill the part up to its size, never beyond: one allocation a part.
        if self.buffer.capacity() == 0 {
            self.buffer.reserve_exact(self.part_bytes);
        }
        let room = self.part_bytes - self.buffer.len();
        let taken = bytes.len().min(room);
        self.buffer.extend_from_slice(&bytes[..taken]);
        self.bytes += taken as u64;
        if self.buffer.len() == self.part_bytes {
            self.send_part().map_err(io::Error::other)?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        // A part is sent when it is full; S3 takes no smaller one but the last.
        Ok(())
    }
}

impl Drop for ObjectWriter {
    /// An upload neither finished nor aborted (a panic, an early return) is
    /// aborted in the background: dropping may happen in async code, where
    /// blocking is not allowed.
    fn drop(&mut self) {
        if let Some(upload_id) = self.upload_id.take() {
            let s3 = self.s3.clone();
            let target = self.target.clone();
            self.runtime.spawn(async move {
                let aborted = s3
                    .abort_multipart_upload()
                    .bucket(&target.bucket)
                    .key(&target.key)
                    .upload_id(upload_id)
                    .send()
                    .await;
                if let Err(e) = aborted {
                    tracing::warn!(object = %target.location(), error = %DisplayErrorContext(&e), "aborting an unfinished upload failed");
                }
            });
        }
    }
}

/// A pre-signed GET of an object: a URL anyone holding it may fetch until
/// `start + expires_in`, signed with the client's credentials (so it also
/// stops working when they expire; a Lambda role's outlive 15 minutes).
pub async fn presigned_get(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    start: std::time::SystemTime,
    expires_in: std::time::Duration,
) -> Result<String, ObjectWriteError> {
    let config = aws_sdk_s3::presigning::PresigningConfig::builder()
        .start_time(start)
        .expires_in(expires_in)
        .build()
        .map_err(|e| {
            ObjectWriteError(format!("cannot pre-sign a GET of s3://{bucket}/{key}: {e}"))
        })?;
    let request = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .presigned(config)
        .await
        .map_err(|e| {
            ObjectWriteError(format!(
                "cannot pre-sign a GET of s3://{bucket}/{key}: {}",
                DisplayErrorContext(&e)
            ))
        })?;
    Ok(request.uri().to_string())
}

/// Whether `bucket` is an S3 bucket name (3 to 63 lowercase letters, digits,
/// dots and hyphens, beginning and ending with a letter or digit); if not,
/// the sentence saying so.
pub fn check_bucket_name(bucket: &str) -> Result<(), String> {
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
        && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{bucket:?} is not an S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens)"
        ))
    }
}
