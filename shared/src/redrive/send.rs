//! Sending messages to the data points' queues: 10 per `SendMessageBatch`
//! call and within SQS's payload limit, several calls in flight, retrying
//! the entries that failed on the service's side.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::contract::DataPoint;
use crate::redrive::{QueueError, QueueUrls};

/// SQS's limit for one message and for one `SendMessageBatch` call.
pub const MAX_SQS_PAYLOAD_BYTES: usize = 256 * 1024;

/// A message attribute of type `String`.
pub fn string_attribute(value: &str) -> aws_sdk_sqs::types::MessageAttributeValue {
    aws_sdk_sqs::types::MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data type is set")
}

/// A `SendMessageBatch` entry: its id in the call, the body and the `type` attribute.
type Entry = (String, String, String);

/// One message for a data point's queue: the event's text and its type.
pub struct Outgoing {
    pub data_point: DataPoint,
    pub body: String,
    pub event_type: String,
}

/// Sends messages to their data points' queues, 10 per call and within
/// SQS's payload limit, several calls in flight, retrying entries that failed
/// on the service's side. Returns how many were sent.
pub async fn send_events(
    sqs: &aws_sdk_sqs::Client,
    queues: &QueueUrls,
    outgoing: Vec<Outgoing>,
) -> Result<u64, QueueError> {
    // (queue URL, entries) per SendMessageBatch call; entries are (id, body, type).
    let mut groups: Vec<(String, Vec<Entry>)> = Vec::new();
    let mut current: BTreeMap<DataPoint, (Vec<Entry>, usize)> = BTreeMap::new();
    let mut sent = 0u64;
    for message in outgoing {
        let url = queues
            .0
            .get(&message.data_point)
            .ok_or(QueueError::NoQueue {
                data_point: message.data_point,
            })?;
        let size = message.body.len() + message.event_type.len() + 16;
        let (entries, bytes) = current.entry(message.data_point).or_default();
        if entries.len() == 10 || *bytes + size > MAX_SQS_PAYLOAD_BYTES {
            groups.push((url.clone(), std::mem::take(entries)));
            *bytes = 0;
        }
        entries.push((entries.len().to_string(), message.body, message.event_type));
        *bytes += size;
        sent += 1;
    }
    for (dp, (entries, _)) in current {
        if !entries.is_empty() {
            groups.push((queues.0[&dp].clone(), entries));
        }
    }
    let mut in_flight = tokio::task::JoinSet::new();
    for (url, entries) in groups {
        if in_flight.len() >= 8 {
            if let Some(result) = in_flight.join_next().await {
                result.map_err(QueueError::Task)??;
            }
        }
        let sqs = sqs.clone();
        in_flight.spawn(async move { send_with_retry(&sqs, &url, entries).await });
    }
    while let Some(result) = in_flight.join_next().await {
        result.map_err(QueueError::Task)??;
    }
    Ok(sent)
}

async fn send_with_retry(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    mut entries: Vec<Entry>,
) -> Result<(), QueueError> {
    use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
    let mut backoff = Duration::from_millis(100);
    for attempt in 1..=8 {
        let request: Vec<SendMessageBatchRequestEntry> = entries
            .iter()
            .map(|(id, body, event_type)| {
                SendMessageBatchRequestEntry::builder()
                    .id(id)
                    .message_body(body)
                    .message_attributes("type", string_attribute(event_type))
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        match sqs
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(request))
            .send()
            .await
        {
            Ok(output) => {
                if let Some(permanent) = output.failed.iter().find(|f| f.sender_fault) {
                    return Err(QueueError::Refused {
                        queue: url.to_string(),
                        code: permanent.code.clone(),
                        message: permanent.message.clone().unwrap_or_default(),
                    });
                }
                let failed: Vec<&str> = output.failed.iter().map(|f| f.id.as_str()).collect();
                entries.retain(|(id, _, _)| failed.contains(&id.as_str()));
                if entries.is_empty() {
                    return Ok(());
                }
            }
            Err(error) if attempt == 8 => {
                return Err(QueueError::CallFailed {
                    queue: url.to_string(),
                    error: Box::new(error),
                })
            }
            Err(_) => {}
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    Err(QueueError::StillFailing {
        queue: url.to_string(),
        messages: entries.len(),
    })
}
