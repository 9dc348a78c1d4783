//! Repairing: re-driving the missing events through the same paths as the
//! backfill, onto their data points' queues or loaded directly.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::contract::Event;
use crate::jobs::JobContext;
use crate::jobs::JobError;
use crate::redrive::{send_events, Outgoing};
use crate::store::{DbError, DbErrorKind};
use crate::write::Item;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Repair {
    /// Re-drive missing events to their data point's queue.
    Queue,
    /// Load missing events directly through `load_batch`.
    Direct,
}

impl Repair {
    pub fn parse(text: &str) -> Result<Repair, String> {
        match text {
            "queue" => Ok(Repair::Queue),
            "direct" => Ok(Repair::Direct),
            other => Err(format!(
                "repair must be \"queue\" or \"direct\", got {other:?}"
            )),
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Repair::Queue => "queue",
            Repair::Direct => "direct",
        }
    }
}

/// Re-drives events (the reconciliation's missing ones) through the same
/// paths as the backfill: onto their queues, or loaded directly.
pub(super) async fn apply(
    ctx: &JobContext,
    repair: Repair,
    events: &[(Event, Vec<u8>)],
) -> Result<u64, JobError> {
    if events.is_empty() {
        return Ok(0);
    }
    match repair {
        Repair::Queue => {
            let sqs = ctx
                .sqs
                .as_ref()
                .ok_or_else(|| JobError::Setup("queue repair needs an SQS client".into()))?;
            let outgoing = events
                .iter()
                .filter_map(|(event, raw)| {
                    Some(Outgoing {
                        data_point: event.data_point()?,
                        body: String::from_utf8_lossy(raw).into_owned(),
                        event_type: event.event_type.clone(),
                    })
                })
                .collect();
            Ok(send_events(sqs, &ctx.queues, outgoing).await?)
        }
        // In place (the reconciliation runs on the multi-threaded runtime):
        // the events are borrowed, not copied for another thread.
        Repair::Direct => tokio::task::block_in_place(|| {
            let items: Vec<Item> = events
                .iter()
                .map(|(event, raw)| Item {
                    event,
                    raw: std::str::from_utf8(raw).unwrap_or_default(),
                    line: 0,
                })
                .collect();
            let deadline = Instant::now() + Duration::from_secs(300);
            // An event the database refuses is recorded and set aside (as
            // the loaders do), so it does not hold back the others.
            let loaded = crate::write::commit_isolating(
                &ctx.db,
                deadline,
                "reconcile-repair",
                &items,
                &[],
                None,
            );
            if !loaded.retry.is_empty() {
                return Err(DbError::new(
                    DbErrorKind::Transient,
                    format!(
                        "{} missing events could not be loaded for a transient reason; run the repair again",
                        loaded.retry.len()
                    ),
                )
                .into());
            }
            Ok(loaded.counts.loaded)
        }),
    }
}
