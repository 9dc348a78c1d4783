//! `enqueue` mode: a lane's share of a batch sent to the data points'
//! queues instead of loaded.

use crate::jobs::JobError;
use crate::redrive::{send_events, Outgoing, QueueUrls, MAX_SQS_PAYLOAD_BYTES};

use super::batch::ParsedBatch;
use super::RunCounts;

/// Sends the batch's analytics events to their queues. Returns how many were
/// sent and the lines too large for SQS.
pub(super) async fn enqueue(
    sqs: &aws_sdk_sqs::Client,
    queues: &QueueUrls,
    batch: &ParsedBatch,
    taken: &[usize],
    counters: &mut RunCounts,
) -> Result<(u64, Vec<(usize, String)>), JobError> {
    let mut too_large = Vec::new();
    let mut outgoing = Vec::with_capacity(taken.len());
    for &index in taken {
        let event = batch.parsed[index]
            .as_ref()
            .and_then(|r| r.as_ref().ok())
            .expect("taken events are valid");
        let Some(data_point) = event.data_point() else {
            counters.not_analytics += 1;
            continue;
        };
        let body = String::from_utf8_lossy(&batch.lines[index].bytes).into_owned();
        if body.len() + event.event_type.len() + 16 > MAX_SQS_PAYLOAD_BYTES {
            too_large.push((
                index,
                format!("the event is {} bytes, over SQS's 256 KiB message limit: load it with --mode direct", body.len()),
            ));
            continue;
        }
        *counters
            .by_data_point
            .entry(data_point.to_string())
            .or_default() += 1;
        outgoing.push(Outgoing {
            data_point,
            body,
            event_type: event.event_type.clone(),
        });
    }
    let sent = send_events(sqs, queues, outgoing).await?;
    Ok((sent, too_large))
}
