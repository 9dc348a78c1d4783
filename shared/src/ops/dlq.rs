//! A data point's dead-letter queue: its messages peeked at (`list`), and
//! moved back to the source queue (`redrive`), by SQS's message move task
//! where the service has it, else by a receive / send / delete loop that
//! sends each message before it deletes it.
//!
//! Why a redrive loses and double-counts nothing, even run twice or stopped
//! half-way: a message leaves the dead-letter queue only once its copy is on
//! the source queue (the move task and the loop both send first), so a stop
//! at any point leaves every message on one queue or the other, at worst on
//! both. A message on both (the loop stopped between sending a batch and
//! deleting it, or a deletion that failed) comes back to the dead-letter
//! queue after its visibility timeout and is sent again by the next run: the
//! loader then sees the same event twice, and the ledger makes the second a
//! duplicate with no effect (same identity, same content hash); a body that
//! is still bad becomes the same `error_event` row again (`seen_count`
//! grows) and goes back to the dead-letter queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageAttributeValue, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};
use serde::Serialize;

use super::status::queue_counts;
use super::{aws_error, shown_body, OpsError};
use crate::contract::{format_time, DataPoint};

/// How long a message received by a redrive loop stays hidden from others:
/// time enough to send it and delete it.
pub const REDRIVE_VISIBILITY_SECONDS: i32 = 60;

/// How long a peeked message would stay hidden if resetting its visibility
/// failed (it is reset at once otherwise).
const PEEK_VISIBILITY_SECONDS: i32 = 30;

/// What a message without a `reason` attribute is: the loader gives one to
/// every message it dead-letters, so the queue's redrive policy moved it.
const REDRIVE_POLICY_REASON: &str =
    "no reason attribute: moved by the queue's redrive policy after maxReceiveCount receives without success";

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterList {
    pub data_point: DataPoint,
    /// Visible messages before the peek.
    pub depth: u64,
    pub messages: Vec<DeadLetter>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub message_id: String,
    /// The loader's `reason` attribute, or what moved the message here.
    pub reason: String,
    /// The loader's `source` attribute (its function name), or the queue
    /// SQS moved it from when the service says.
    pub source: Option<String>,
    pub sent_at: Option<String>,
    /// Receives before this peek (SQS counts the peek's own receive; it is
    /// taken off here).
    pub receive_count: u64,
    /// At most 1 KiB, without an anonymous asker.
    pub body: String,
    pub body_truncated: bool,
}

/// Peeks at up to `limit` messages of a dead-letter queue without consuming
/// them: they are received hidden, so that each is seen once, and made
/// visible again at once when all are in.
pub async fn list_dead_letters(
    sqs: &aws_sdk_sqs::Client,
    data_point: DataPoint,
    dlq_url: &str,
    limit: usize,
) -> Result<DeadLetterList, OpsError> {
    let (depth, _) = queue_counts(sqs, dlq_url).await?;
    let mut seen: Vec<Message> = Vec::new();
    while seen.len() < limit {
        let want = (limit - seen.len()).min(10) as i32;
        let received = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(want)
            .visibility_timeout(PEEK_VISIBILITY_SECONDS)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| aws_error(&format!("cannot receive from {dlq_url}"), e))?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        seen.extend(messages);
    }
    reset_visibility(sqs, dlq_url, &seen).await?;
    let messages = seen.iter().map(dead_letter).collect();
    Ok(DeadLetterList {
        data_point,
        depth,
        messages,
    })
}

/// Makes received messages visible again now.
async fn reset_visibility(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    messages: &[Message],
) -> Result<(), OpsError> {
    let mut failed = 0;
    for chunk in messages.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.as_deref()?)
                    .visibility_timeout(0)
                    .build()
                    .ok()
            })
            .collect::<Vec<_>>();
        match sqs
            .change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) => failed += out.failed.len(),
            Err(_) => failed += chunk.len(),
        }
    }
    match failed {
        0 => Ok(()),
        n => Err(OpsError::Aws(format!(
            "{n} peeked messages of {url} could not be made visible again; they come back by themselves within {PEEK_VISIBILITY_SECONDS} s"
        ))),
    }
}

fn dead_letter(message: &Message) -> DeadLetter {
    let system = message.attributes.clone().unwrap_or_default();
    let attributes = message.message_attributes.clone().unwrap_or_default();
    let text = |name: &str| attributes.get(name).and_then(|v| v.string_value.clone());
    let (body, body_truncated) = shown_body(message.body.as_deref().unwrap_or("").as_bytes());
    DeadLetter {
        message_id: message.message_id.clone().unwrap_or_default(),
        reason: text("reason").unwrap_or_else(|| REDRIVE_POLICY_REASON.to_string()),
        source: text("source").or_else(|| {
            system
                .get(&MessageSystemAttributeName::DeadLetterQueueSourceArn)
                .cloned()
        }),
        sent_at: system
            .get(&MessageSystemAttributeName::SentTimestamp)
            .and_then(|ms| ms.parse::<i64>().ok())
            .map(format_time),
        receive_count: system
            .get(&MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(1)
            .saturating_sub(1),
        body,
        body_truncated,
    }
}

/// How `redrive` moves messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedriveMethod {
    /// The move task where SQS has it, else the loop.
    Auto,
    /// Only SQS's message move task.
    MoveTask,
    /// Only the receive / send / delete loop.
    Loop,
}

impl RedriveMethod {
    fn as_str(self) -> &'static str {
        match self {
            RedriveMethod::Auto => "auto",
            RedriveMethod::MoveTask => "moveTask",
            RedriveMethod::Loop => "loop",
        }
    }
}

/// Test seam: runs after the loop sent its `n`-th batch (0-based) and before
/// it deletes it; an error stops the run there, as a killed process would.
pub type RedriveHook = Arc<dyn Fn(usize) -> Result<(), String> + Send + Sync>;

#[derive(Clone)]
pub struct RedriveOptions {
    /// At most this many messages (the loop: a move task moves them all).
    pub max: Option<u64>,
    /// Count what would move, move nothing.
    pub dry_run: bool,
    pub method: RedriveMethod,
    /// How long the loop hides a message it is moving.
    pub visibility_timeout_seconds: i32,
    /// How often a move task's progress is asked for.
    pub poll_interval: Duration,
    pub after_send: Option<RedriveHook>,
}

impl Default for RedriveOptions {
    fn default() -> RedriveOptions {
        RedriveOptions {
            max: None,
            dry_run: false,
            method: RedriveMethod::Auto,
            visibility_timeout_seconds: REDRIVE_VISIBILITY_SECONDS,
            poll_interval: Duration::from_secs(2),
            after_send: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedriveOutcome {
    pub data_point: DataPoint,
    pub moved: u64,
    /// `moveTask` or `loop`: how they were (or would be) moved.
    pub method: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// A dry run's count: the visible messages, up to `--max`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub would_move: Option<u64>,
    /// Messages still hidden in the dead-letter queue when the loop gave up
    /// waiting for them (received by another run or a peek): run again.
    #[serde(skip_serializing_if = "is_zero")]
    pub left_in_flight: u64,
    /// Sent, then not deleted: they come back and are sent again by the next
    /// run, which the loaders take as duplicates.
    #[serde(skip_serializing_if = "is_zero")]
    pub sent_not_deleted: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Moves a dead-letter queue's messages back to the data point's queue.
pub async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    data_point: DataPoint,
    dlq_url: &str,
    queue_url: &str,
    options: &RedriveOptions,
) -> Result<RedriveOutcome, OpsError> {
    let outcome = |method: RedriveMethod| RedriveOutcome {
        data_point,
        moved: 0,
        method: method.as_str(),
        dry_run: options.dry_run,
        would_move: None,
        left_in_flight: 0,
        sent_not_deleted: 0,
    };
    if options.method == RedriveMethod::MoveTask && options.max.is_some() {
        return Err(OpsError::Aws(
            "a message move task moves every message: leave out --max, or use --method loop".into(),
        ));
    }
    let mut method = match options.max {
        Some(_) => RedriveMethod::Loop,
        None => options.method,
    };
    let mut task = None;
    if method != RedriveMethod::Loop {
        let dlq_arn = queue_arn(sqs, dlq_url).await?;
        match running_task(sqs, &dlq_arn).await {
            Ok(running) => {
                method = RedriveMethod::MoveTask;
                task = Some((dlq_arn, running));
            }
            Err(e) if method == RedriveMethod::Auto && e.unavailable => {
                tracing::info!(reason = %e.text, "no message move task here: moving by receive, send and delete");
                method = RedriveMethod::Loop;
            }
            Err(e) => return Err(OpsError::Aws(e.text)),
        }
    }
    if options.dry_run {
        let (depth, _) = queue_counts(sqs, dlq_url).await?;
        return Ok(RedriveOutcome {
            would_move: Some(options.max.map_or(depth, |max| depth.min(max))),
            ..outcome(method)
        });
    }
    match task {
        Some((dlq_arn, running)) => {
            let handle = match running {
                // A task already running (started by a run that was stopped):
                // it goes on by itself; wait for it rather than start another.
                Some(handle) => handle,
                None => {
                    let queue_arn = queue_arn(sqs, queue_url).await?;
                    match start_task(sqs, &dlq_arn, &queue_arn).await {
                        Ok(handle) => handle,
                        Err(e) if options.method == RedriveMethod::Auto && e.unavailable => {
                            tracing::info!(reason = %e.text, "the message move task is refused here: moving by receive, send and delete");
                            let moved = redrive_loop(sqs, dlq_url, queue_url, options).await?;
                            return Ok(RedriveOutcome {
                                moved: moved.moved,
                                left_in_flight: moved.left_in_flight,
                                sent_not_deleted: moved.sent_not_deleted,
                                ..outcome(RedriveMethod::Loop)
                            });
                        }
                        Err(e) => return Err(OpsError::Aws(e.text)),
                    }
                }
            };
            let moved = wait_for_task(sqs, &dlq_arn, &handle, options.poll_interval).await?;
            Ok(RedriveOutcome {
                moved,
                ..outcome(RedriveMethod::MoveTask)
            })
        }
        None => {
            let moved = redrive_loop(sqs, dlq_url, queue_url, options).await?;
            Ok(RedriveOutcome {
                moved: moved.moved,
                left_in_flight: moved.left_in_flight,
                sent_not_deleted: moved.sent_not_deleted,
                ..outcome(RedriveMethod::Loop)
            })
        }
    }
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, OpsError> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| aws_error(&format!("cannot read the ARN of {url}"), e))?;
    out.attributes
        .unwrap_or_default()
        .remove(&QueueAttributeName::QueueArn)
        .ok_or_else(|| OpsError::Aws(format!("SQS gave no ARN for {url}")))
}

/// A failed move-task call, and whether it says the service has no such
/// operation (so the loop should do the work).
struct TaskError {
    text: String,
    unavailable: bool,
}

fn task_error<E, R>(doing: &str, error: aws_sdk_sqs::error::SdkError<E, R>) -> TaskError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
    aws_sdk_sqs::error::SdkError<E, R>: std::error::Error,
{
    let unavailable = match &error {
        aws_sdk_sqs::error::SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("");
            let status = service_status(service.raw());
            matches!(
                code,
                "UnsupportedOperation"
                    | "AWS.SimpleQueueService.UnsupportedOperation"
                    | "InvalidAction"
                    | "NotImplemented"
                    | "UnknownOperationException" // No code at all: the answer is no SQS error document (moto
                                                  // answers an action it lacks with an HTML 500 page). Falling
                                                  // back is safe in any case: the loop is correct everywhere.
            ) || (code.is_empty() && matches!(status, Some(404 | 500 | 501)))
        }
        _ => false,
    };
    TaskError {
        text: format!(
            "{doing}: {}",
            aws_sdk_sqs::error::DisplayErrorContext(&error)
        ),
        unavailable,
    }
}

/// The HTTP status of a raw response, when the type is the SDK's.
fn service_status<R: std::fmt::Debug + 'static>(raw: &R) -> Option<u16> {
    (raw as &dyn std::any::Any)
        .downcast_ref::<aws_sdk_sqs::config::http::HttpResponse>()
        .map(|r| r.status().as_u16())
}

/// The handle of a move task running from this dead-letter queue, if any.
async fn running_task(
    sqs: &aws_sdk_sqs::Client,
    dlq_arn: &str,
) -> Result<Option<String>, TaskError> {
    let out = sqs
        .list_message_move_tasks()
        .source_arn(dlq_arn)
        .max_results(10)
        .send()
        .await
        .map_err(|e| task_error("cannot list the message move tasks", e))?;
    Ok(out
        .results
        .unwrap_or_default()
        .into_iter()
        .find(|t| t.status.as_deref() == Some("RUNNING"))
        .and_then(|t| t.task_handle))
}

async fn start_task(
    sqs: &aws_sdk_sqs::Client,
    dlq_arn: &str,
    queue_arn: &str,
) -> Result<String, TaskError> {
    let out = sqs
        .start_message_move_task()
        .source_arn(dlq_arn)
        // Named, not left to the redrive policy: the loaders' own dead
        // letters were sent here, not moved by SQS, and have no source queue
        // SQS knows of.
        .destination_arn(queue_arn)
        .send()
        .await
        .map_err(|e| task_error("cannot start a message move task", e))?;
    out.task_handle.ok_or_else(|| TaskError {
        text: "SQS started a message move task without a handle".into(),
        unavailable: false,
    })
}

/// Waits for a move task to end; returns how many messages it moved.
async fn wait_for_task(
    sqs: &aws_sdk_sqs::Client,
    dlq_arn: &str,
    handle: &str,
    poll: Duration,
) -> Result<u64, OpsError> {
    loop {
        let out = sqs
            .list_message_move_tasks()
            .source_arn(dlq_arn)
            .max_results(10)
            .send()
            .await
            .map_err(|e| aws_error("cannot read the message move task", e))?;
        let task = out
            .results
            .unwrap_or_default()
            .into_iter()
            .find(|t| t.task_handle.as_deref() == Some(handle));
        let Some(task) = task else {
            // Only running tasks carry their handle: ours has ended. The
            // newest task of the queue is ours.
            let latest = sqs
                .list_message_move_tasks()
                .source_arn(dlq_arn)
                .max_results(1)
                .send()
                .await
                .map_err(|e| aws_error("cannot read the message move task", e))?;
            let task = latest.results.unwrap_or_default().into_iter().next();
            return finished(task);
        };
        if task.status.as_deref() != Some("RUNNING") {
            return finished(Some(task));
        }
        tokio::time::sleep(poll).await;
    }
}

fn finished(
    task: Option<aws_sdk_sqs::types::ListMessageMoveTasksResultEntry>,
) -> Result<u64, OpsError> {
    let Some(task) = task else {
        return Err(OpsError::Aws(
            "the message move task is no longer listed; see the dead-letter queue's depth".into(),
        ));
    };
    let moved = task.approximate_number_of_messages_moved.max(0) as u64;
    match task.status.as_deref() {
        Some("COMPLETED") => Ok(moved),
        status => Err(OpsError::Aws(format!(
            "the message move task ended {} after moving {moved} messages{}",
            status.unwrap_or("without a status"),
            task.failure_reason
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ))),
    }
}

struct LoopOutcome {
    moved: u64,
    left_in_flight: u64,
    sent_not_deleted: u64,
}

/// Receive up to ten, send them to the source queue, delete those sent;
/// again until the dead-letter queue is empty or `max` are moved.
async fn redrive_loop(
    sqs: &aws_sdk_sqs::Client,
    dlq_url: &str,
    queue_url: &str,
    options: &RedriveOptions,
) -> Result<LoopOutcome, OpsError> {
    let mut out = LoopOutcome {
        moved: 0,
        left_in_flight: 0,
        sent_not_deleted: 0,
    };
    let mut batch = 0usize;
    let mut idle_since: Option<Instant> = None;
    // Messages received by a run that was stopped come back after their
    // visibility timeout: wait that long for them (and a little more).
    let wait_for_hidden = Duration::from_secs(options.visibility_timeout_seconds.max(0) as u64 + 5);
    loop {
        let want = match options.max {
            Some(max) if out.moved >= max => break,
            Some(max) => (max - out.moved).min(10) as i32,
            None => 10,
        };
        let received = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(want)
            .visibility_timeout(options.visibility_timeout_seconds)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| aws_error(&format!("cannot receive from {dlq_url}"), e))?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            let (visible, hidden) = queue_counts(sqs, dlq_url).await?;
            if visible == 0 && hidden == 0 {
                break;
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            if visible == 0 && since.elapsed() >= wait_for_hidden {
                out.left_in_flight = hidden;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        idle_since = None;
        let entries: Vec<SendMessageBatchRequestEntry> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.body.clone().unwrap_or_default())
                    .set_message_attributes(m.message_attributes.as_ref().map(copy_attributes))
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        // Sent first: a message leaves the dead-letter queue only once its
        // copy is on the source queue.
        let sent = sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| aws_error(&format!("cannot send to {queue_url}"), e))?;
        if let Some(failed) = sent.failed.first() {
            tracing::warn!(code = %failed.code, failed = sent.failed.len(), "messages not sent; they stay in the dead-letter queue");
        }
        if let Some(hook) = &options.after_send {
            hook(batch).map_err(OpsError::Interrupted)?;
        }
        let deletions: Vec<DeleteMessageBatchRequestEntry> = sent
            .successful
            .iter()
            .filter_map(|s| {
                let message = messages.get(s.id.parse::<usize>().ok()?)?;
                DeleteMessageBatchRequestEntry::builder()
                    .id(s.id.clone())
                    .receipt_handle(message.receipt_handle.as_deref()?)
                    .build()
                    .ok()
            })
            .collect();
        out.moved += sent.successful.len() as u64;
        if !deletions.is_empty() {
            match sqs
                .delete_message_batch()
                .queue_url(dlq_url)
                .set_entries(Some(deletions.clone()))
                .send()
                .await
            {
                Ok(deleted) => out.sent_not_deleted += deleted.failed.len() as u64,
                Err(e) => {
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&e), "sent messages not deleted; the next run sends them again");
                    out.sent_not_deleted += deletions.len() as u64;
                }
            }
        }
        if sent.successful.is_empty() {
            // Nothing goes through: stop rather than spin on the same messages.
            return Err(OpsError::Aws(format!(
                "SQS refused every message sent to {queue_url}: {}",
                sent.failed
                    .first()
                    .map(|f| format!("{} {}", f.code, f.message.as_deref().unwrap_or("")))
                    .unwrap_or_default()
            )));
        }
        batch += 1;
    }
    Ok(out)
}

/// Received message attributes as attributes to send (their type and value).
fn copy_attributes(
    attributes: &HashMap<String, MessageAttributeValue>,
) -> HashMap<String, MessageAttributeValue> {
    attributes
        .iter()
        .filter_map(|(name, value)| {
            let copy = MessageAttributeValue::builder()
                .data_type(value.data_type.clone())
                .set_string_value(value.string_value.clone())
                .set_binary_value(value.binary_value.clone())
                .build()
                .ok()?;
            Some((name.clone(), copy))
        })
        .collect()
}
