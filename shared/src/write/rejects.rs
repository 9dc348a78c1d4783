//! Rejects: inputs recorded in the error table instead of being loaded
//! (malformed, of the wrong data point, conflicting with a loaded event, or
//! refused by the database).

use std::borrow::Cow;

use mysql::prelude::Queryable;
use sha2::{Digest, Sha256};

use crate::contract::{truncate_chars, without_anonymous_asker};
use crate::store::{run_script, Row, Upsert};

/// Raw bodies kept in the error table are cut here; the full line stays in its
/// export (its line number is recorded) and SQS bodies are at most 256 KiB.
pub const MAX_RAW_BODY_BYTES: usize = 1 << 20;

/// Why an input could not be loaded; permanent, never worth a retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    Malformed,
    WrongDataPoint,
    Conflict,
    /// The warehouse refused it (a database error that is not transient):
    /// found by loading its batch in parts, and set aside so that the rest
    /// loads.
    Refused,
}

impl RejectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectKind::Malformed => "malformed",
            RejectKind::WrongDataPoint => "wrong_data_point",
            RejectKind::Conflict => "conflict",
            RejectKind::Refused => "refused",
        }
    }
}

/// An input recorded in the error table instead of being loaded.
pub struct Reject<'a> {
    pub raw: &'a [u8],
    /// `raw` is only the input's start (an export line over 1 MiB, of which
    /// the first 64 KiB were read): the row says its body is truncated.
    pub raw_truncated: bool,
    pub reason: String,
    pub kind: RejectKind,
    pub line: u64,
    pub identity: Option<(String, i64)>,
}

/// Records rejected inputs; the same body from the same source and line is
/// one row whose `seen_count` grows with each delivery.
pub fn record_rejects<'r>(
    tx: &mut impl Queryable,
    source: &str,
    rejects: impl Iterator<Item = &'r Reject<'r>>,
) -> Result<(), mysql::Error> {
    run_script(tx, &reject_statements(source, rejects)).map(drop)
}

/// The error table's upsert of `rejects`, still to be sent.
pub(super) fn reject_statements<'r>(
    source: &str,
    rejects: impl Iterator<Item = &'r Reject<'r>>,
) -> Vec<String> {
    let mut upsert = Upsert::new(
        "error_event",
        &[
            "source",
            "line_number",
            "body_sha256",
            "raw_body",
            "body_truncated",
            "reason",
            "kind",
            "stream_id",
            "version",
        ],
        "seen_count = seen_count + 1, last_seen = CURRENT_TIMESTAMP(3), reason = VALUES(reason), kind = VALUES(kind)",
    );
    for reject in rejects {
        // The hash too is of the body without an anonymous asker: a hash
        // of the whole would let anyone test candidate ids against it.
        let body = without_anonymous_asker(reject.raw);
        let kept = &body[..body.len().min(MAX_RAW_BODY_BYTES)];
        let mut row = Row::default();
        row.str(truncate_chars(source, 128))
            .uint(reject.line)
            .bytes(&Sha256::digest(&body))
            .bytes(kept)
            .bool(reject.raw_truncated || kept.len() < body.len())
            .str(&reason_without_asker(
                &reject.reason,
                matches!(body, Cow::Owned(_)),
            ))
            .str(reject.kind.as_str());
        match &reject.identity {
            Some((stream, version)) if stream.chars().count() <= 64 => {
                row.str(stream).int(*version);
            }
            _ => {
                row.null().null();
            }
        }
        upsert.add(&row);
    }
    upsert.take_statements()
}

/// A reason quotes the offending value; when that is the viewer id of an
/// anonymous question (its body had to be scrubbed), the quote goes too.
fn reason_without_asker(reason: &str, scrubbed: bool) -> String {
    match reason.find(", got ") {
        Some(cut) if scrubbed && reason.contains("viewerId") => {
            format!("{}, got {}", &reason[..cut], crate::contract::REMOVED_ASKER)
        }
        _ => reason.to_string(),
    }
}
