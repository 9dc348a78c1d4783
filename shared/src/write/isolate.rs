//! A batch the database refuses: it is loaded in halves, recursively, down to
//! the events the database refuses, so that one bad event never holds back
//! the others. What counts as refused is any failure that is not transient (a
//! panic included); a transient one (a lost connection, a lock wait, a
//! deadlock, a failover) is left for the caller to retry.

use std::time::Instant;

use super::batch::{commit_batch, BatchOutcome, CommitHook, Item, LoadCounts};
use super::erasure::Erasures;
use super::rejects::{Reject, RejectKind};
use crate::store::Database;

/// What loading a batch, in parts when it had to, made of its items.
pub struct Isolated {
    pub counts: LoadCounts,
    /// Whether the batch's rejects are in the error table.
    pub rejects_recorded: bool,
    /// Items the database refused (indexes), with its reason: recorded in
    /// the error table as `refused`.
    pub refused: Vec<(usize, String)>,
    /// Items whose load failed for a transient reason: for the caller to
    /// retry.
    pub retry: Vec<usize>,
    /// The erased viewers among those the committed parts named: a copy of
    /// their bodies sent elsewhere (a dead-letter queue) leaves them out.
    pub erasures: Erasures,
}

/// How one transaction ended.
enum Attempt {
    Committed(LoadCounts, Erasures),
    /// Worth a retry later (the database retries ran out before `deadline`).
    Transient,
    /// Anything else, a panic included: the same events fail the same way.
    Refused(String),
}

/// Loads `items` and records `rejects` in one transaction; when the database
/// refuses that, records the rejects on their own and loads the items in
/// halves, recursively, setting aside (and recording) the single items it
/// refuses.
pub fn commit_isolating(
    db: &Database,
    deadline: Instant,
    source: &str,
    items: &[Item],
    rejects: &[Reject],
    hook: Option<&CommitHook>,
) -> Isolated {
    let all: Vec<usize> = (0..items.len()).collect();
    let batch = Batch {
        db,
        deadline,
        source,
        items,
        hook,
    };
    let mut isolated = Isolated {
        counts: LoadCounts::default(),
        rejects_recorded: false,
        refused: Vec::new(),
        retry: Vec::new(),
        erasures: Erasures::default(),
    };
    match batch.attempt(&all, rejects) {
        Attempt::Committed(counts, erasures) => {
            isolated.counts = counts;
            isolated.erasures = erasures;
            isolated.rejects_recorded = true;
            return isolated;
        }
        Attempt::Transient => {
            isolated.retry = all;
            return isolated;
        }
        Attempt::Refused(reason) => {
            tracing::warn!(%source, %reason, items = items.len(), "batch refused; loading it in parts");
        }
    }
    if !rejects.is_empty() {
        if let Attempt::Committed(counts, erasures) = batch.attempt(&[], rejects) {
            isolated.counts.add(&counts);
            isolated.erasures.extend(&erasures);
            isolated.rejects_recorded = true;
        }
    } else {
        isolated.rejects_recorded = true;
    }
    let (left, right) = all.split_at(all.len() / 2);
    batch.bisect(left, &mut isolated);
    batch.bisect(right, &mut isolated);
    if !isolated.refused.is_empty() {
        let refused: Vec<Reject> = isolated
            .refused
            .iter()
            .map(|(i, reason)| {
                let item = &items[*i];
                Reject {
                    raw: item.raw.as_bytes(),
                    raw_truncated: false,
                    reason: format!("the warehouse refused the event: {reason}"),
                    kind: RejectKind::Refused,
                    line: item.line,
                    identity: Some((item.event.stream_id.clone(), item.event.version)),
                }
            })
            .collect();
        match batch.attempt(&[], &refused) {
            Attempt::Committed(counts, erasures) => {
                isolated.counts.add(&counts);
                isolated.erasures.extend(&erasures);
            }
            // Not recorded: they are retried like the transient ones.
            Attempt::Transient | Attempt::Refused(_) => {
                let unrecorded = std::mem::take(&mut isolated.refused);
                isolated
                    .retry
                    .extend(unrecorded.into_iter().map(|(index, _)| index));
            }
        }
    }
    isolated
}

struct Batch<'b> {
    db: &'b Database,
    deadline: Instant,
    source: &'b str,
    items: &'b [Item<'b>],
    hook: Option<&'b CommitHook>,
}

impl Batch<'_> {
    /// Loads `part` in one transaction, or, when the database refuses it,
    /// each half on its own, down to the single items it refuses.
    fn bisect(&self, part: &[usize], isolated: &mut Isolated) {
        if part.is_empty() {
            return;
        }
        match self.attempt(part, &[]) {
            Attempt::Committed(counts, erasures) => {
                isolated.counts.add(&counts);
                isolated.erasures.extend(&erasures);
            }
            Attempt::Transient => isolated.retry.extend_from_slice(part),
            Attempt::Refused(reason) if part.len() == 1 => isolated.refused.push((part[0], reason)),
            Attempt::Refused(_) => {
                let (left, right) = part.split_at(part.len() / 2);
                self.bisect(left, isolated);
                self.bisect(right, isolated);
            }
        }
    }

    /// One transaction: the items `part` and the `rejects`.
    fn attempt(&self, part: &[usize], rejects: &[Reject]) -> Attempt {
        let items: Vec<Item> = part.iter().map(|&i| self.items[i]).collect();
        // The transaction rolls back as a panic unwinds through it.
        let committed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            commit_batch(
                self.db,
                self.deadline,
                self.source,
                &items,
                rejects,
                self.hook,
            )
        }));
        match committed {
            Ok(Ok(BatchOutcome {
                counts, erasures, ..
            })) => Attempt::Committed(counts, erasures),
            Ok(Err(error)) if error.is_transient() => {
                tracing::error!(source = %self.source, %error, "events not committed; they are to be retried");
                Attempt::Transient
            }
            Ok(Err(error)) => Attempt::Refused(error.to_string()),
            Err(panic) => Attempt::Refused(format!(
                "loading panicked: {}",
                panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".into())
            )),
        }
    }
}
