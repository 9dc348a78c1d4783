//! Rejects: inputs recorded in the error table instead of being loaded
//! (malformed, of the wrong data point, conflicting with a loaded event, or
//! refused by the database).

use std::borrow::Cow;

use mysql::prelude::Queryable;
use sha2::{Digest, Sha256};

use crate::contract::{truncate_chars, without_anonymous_asker};
use crate::store::{run_script, Row, Upsert};

use super::erasure::{named_viewers, read_erasures, Erasures};

/// A body up to EVENTS.md's size limit is kept whole; a longer one (malformed
/// for that alone) is kept cut to its first 64 KiB, "enough to record it".
/// The full line stays in its export, whose line number is recorded.
pub const MAX_RAW_BODY_BYTES: usize = crate::contract::MAX_EVENT_BYTES;
pub const OVER_LIMIT_KEPT_BYTES: usize = 64 * 1024;

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
/// one row whose `seen_count` grows with each delivery. Bodies are kept
/// without what they hold of erased viewers: the erasure guard and the
/// erasures are read first (see `erasure.rs`).
pub fn record_rejects<'r>(
    tx: &mut impl Queryable,
    source: &str,
    rejects: impl Iterator<Item = &'r Reject<'r>>,
) -> Result<(), mysql::Error> {
    let rejects: Vec<&Reject> = rejects.collect();
    if rejects.is_empty() {
        return Ok(());
    }
    let erasures = read_erasures(
        tx,
        &named_viewers(std::iter::empty(), rejects.iter().map(|r| r.raw)),
    )?;
    run_script(
        tx,
        &reject_statements(source, rejects.into_iter(), &erasures),
    )
    .map(drop)
}

/// The error table's upsert of `rejects`, still to be sent; bodies without
/// an anonymous asker and without what they hold of `erasures`. A row whose
/// body retention had removed gets the body back when it is seen again.
pub(super) fn reject_statements<'r>(
    source: &str,
    rejects: impl Iterator<Item = &'r Reject<'r>>,
    erasures: &Erasures,
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
        "seen_count = seen_count + 1, last_seen = CURRENT_TIMESTAMP(3), reason = VALUES(reason), kind = VALUES(kind), \
         raw_body = IF(body_removed_at IS NULL, raw_body, VALUES(raw_body)), \
         body_truncated = IF(body_removed_at IS NULL, body_truncated, VALUES(body_truncated)), \
         body_removed_at = NULL",
    );
    for reject in rejects {
        // The hash too is of the body without an anonymous asker or an
        // erased viewer's values: a hash of the whole would let anyone
        // test candidate ids, names or emails against it.
        let anonymous = without_anonymous_asker(reject.raw);
        let erased = erasures.scrub(&anonymous);
        let scrubbed = matches!(anonymous, Cow::Owned(_));
        let erased_any = matches!(erased, Cow::Owned(_));
        let body: Cow<[u8]> = match erased {
            Cow::Owned(bytes) => Cow::Owned(bytes),
            Cow::Borrowed(_) => anonymous.clone(),
        };
        let kept = if body.len() > MAX_RAW_BODY_BYTES {
            &body[..OVER_LIMIT_KEPT_BYTES]
        } else {
            &body[..]
        };
        let mut row = Row::default();
        row.str(truncate_chars(source, 128))
            .uint(reject.line)
            .bytes(&Sha256::digest(&body))
            .bytes(kept)
            .bool(reject.raw_truncated || kept.len() < body.len())
            .str(&if erased_any {
                reason_without_quote(&reject.reason)
            } else {
                reason_without_asker(&reject.reason, scrubbed)
            })
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

/// A reason without the value it quotes (`…, got X`): for a body an
/// erasure scrubbed, the quote could be the erased viewer's.
pub(super) fn reason_without_quote(reason: &str) -> String {
    match reason.find(", got ") {
        Some(cut) => format!("{}, got {}", &reason[..cut], crate::contract::ERASED),
        None => reason.to_string(),
    }
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
