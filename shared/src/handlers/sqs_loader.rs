//! The SQS-triggered loader, one per data point: parses every message itself
//! (one bad body never fails the batch), loads the batch in one transaction
//! with retries, records and dead-letters what is permanently bad, and
//! reports back only the messages whose effect did not commit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use lambda_runtime::LambdaEvent;

use crate::contract::{parse_event, DataPoint, Event};
use crate::handlers::config::LoaderConfig;
use crate::handlers::LAMBDA_MAX_CONNECTIONS;
use crate::store::Database;
use crate::write::{commit_batch, CommitHook, Item, LoadCounts, Reject, RejectKind};

/// Time kept back from the invocation's deadline for dead-lettering and the
/// response; database retries stop before it.
const RESPONSE_MARGIN: Duration = Duration::from_secs(3);

/// SQS message attribute values are limited together with the body to
/// 256 KiB; a reason is a sentence, never that long.
const MAX_REASON_ATTRIBUTE_CHARS: usize = 1024;

pub struct SqsLoader {
    data_point: DataPoint,
    source: String,
    db: Arc<Database>,
    sqs: aws_sdk_sqs::Client,
    dlq_url: String,
    before_commit: Option<FaultHook>,
}

/// See `SqsLoader::with_fault_before_commit`.
pub type FaultHook = Arc<CommitHook>;

/// One received message and what parsing made of it.
struct Message {
    id: Option<String>,
    body: String,
    parsed: Result<Event, (RejectKind, String)>,
}

/// What a handled batch did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub messages: usize,
    pub counts: LoadCounts,
    pub dead_lettered: usize,
    pub failures: usize,
    /// Transactions the batch took: 1, or more when it was loaded in parts
    /// to set aside events the database refused.
    pub transactions: usize,
}

impl SqsLoader {
    /// `source` names this loader in the audit and error tables (the function name).
    pub fn new(
        data_point: DataPoint,
        source: impl Into<String>,
        db: Arc<Database>,
        sqs: aws_sdk_sqs::Client,
        dlq_url: impl Into<String>,
    ) -> SqsLoader {
        SqsLoader {
            data_point,
            source: source.into(),
            db,
            sqs,
            dlq_url: dlq_url.into(),
            before_commit: None,
        }
    }

    /// Test seam: `hook` runs inside batch processing with the events being
    /// loaded, written but not committed, so a test can make processing
    /// panic there (for some events only, say).
    /// Production loaders never set it (one `None` check per batch).
    #[doc(hidden)]
    pub fn with_fault_before_commit(mut self, hook: FaultHook) -> SqsLoader {
        self.before_commit = Some(hook);
        self
    }

    pub fn data_point(&self) -> DataPoint {
        self.data_point
    }

    /// The Lambda handler.
    pub async fn handle(
        &self,
        event: LambdaEvent<SqsEvent>,
    ) -> Result<SqsBatchResponse, lambda_runtime::Error> {
        let deadline = crate::store::deadline_instant(event.context.deadline);
        let (response, report) = self.handle_batch(event.payload, deadline).await;
        tracing::info!(
            loader = %self.source,
            messages = report.messages,
            loaded = report.counts.loaded,
            duplicates = report.counts.duplicates,
            conflicts = report.counts.conflicts,
            malformed = report.counts.malformed,
            wrong_data_point = report.counts.wrong_data_point,
            not_analytics = report.counts.not_analytics,
            dead_lettered = report.dead_lettered,
            failures = report.failures,
            "batch handled"
        );
        Ok(response)
    }

    pub async fn handle_batch(
        &self,
        event: SqsEvent,
        deadline: Instant,
    ) -> (SqsBatchResponse, BatchReport) {
        let messages: Vec<Message> = event
            .records
            .into_iter()
            .map(|record| {
                let body = record.body.unwrap_or_default();
                let parsed = self.classify(&body);
                Message {
                    id: record.message_id,
                    body,
                    parsed,
                }
            })
            .collect();
        let mut report = BatchReport {
            messages: messages.len(),
            ..BatchReport::default()
        };

        let db = self.db.clone();
        let source = self.source.clone();
        let hook = self.before_commit.clone();
        let db_deadline = deadline.checked_sub(RESPONSE_MARGIN).unwrap_or(deadline);
        // Shared with the blocking task, so that the message ids are still
        // here to report if it panics.
        let messages = Arc::new(messages);
        let task_messages = messages.clone();
        // The mysql client blocks: loading runs on a blocking thread, and a
        // panic in there is caught per transaction (which rolls back as it
        // unwinds), so it counts as a failure that is not transient.
        let loaded = tokio::task::spawn_blocking(move || {
            load_isolating(&db, &source, &task_messages, db_deadline, hook.as_deref())
        })
        .await;
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(join_error) => {
                tracing::error!(loader = %self.source, error = %join_error, "loading failed outside a transaction; every message goes back to the queue");
                return self.fail_all(&messages, report);
            }
        };
        report.counts = loaded.counts;
        report.transactions = loaded.transactions;

        // Committed: the bad messages are in the error table; dead-letter them
        // once, and only those whose forwarding failed come back, with those
        // whose load failed for a transient reason.
        let bad: Vec<(&Message, &str)> = messages
            .iter()
            .enumerate()
            .filter_map(|(index, m)| match &m.parsed {
                Err((_, reason)) if loaded.rejects_recorded => Some((m, reason.as_str())),
                Err(_) => None,
                Ok(_) => loaded
                    .refused
                    .iter()
                    .find(|(refused, _)| *refused == index)
                    .map(|(_, reason)| (m, reason.as_str())),
            })
            .collect();
        let failed_forwarding = self.dead_letter(&bad).await;
        report.dead_lettered = bad.len() - failed_forwarding.len();
        let mut failed: Vec<String> = failed_forwarding;
        failed.extend(loaded.retry.iter().filter_map(|&i| messages[i].id.clone()));
        if !loaded.rejects_recorded {
            failed.extend(
                messages
                    .iter()
                    .filter(|m| m.parsed.is_err())
                    .filter_map(|m| m.id.clone()),
            );
        }
        report.failures = failed.len();
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failed.into_iter().map(item_failure).collect();
        (response, report)
    }

    fn fail_all(
        &self,
        messages: &[Message],
        mut report: BatchReport,
    ) -> (SqsBatchResponse, BatchReport) {
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = messages
            .iter()
            .filter_map(|m| m.id.clone())
            .map(item_failure)
            .collect();
        report.failures = response.batch_item_failures.len();
        (response, report)
    }

    /// Parses a body and checks it belongs on this queue.
    fn classify(&self, body: &str) -> Result<Event, (RejectKind, String)> {
        let event = parse_event(body).map_err(|e| (RejectKind::Malformed, e.to_string()))?;
        match event.data_point() {
            Some(dp) if dp != self.data_point => Err((
                RejectKind::WrongDataPoint,
                format!(
                    "{} is a {} event but arrived on the {} queue; check the subscription filter policy",
                    event.event_type, dp, self.data_point
                ),
            )),
            _ => Ok(event),
        }
    }

    /// Sends bad messages to the dead-letter queue with their reason; returns
    /// the ids of those that could not be sent.
    async fn dead_letter(&self, bad: &[(&Message, &str)]) -> Vec<String> {
        let mut failed = Vec::new();
        for chunk in bad.chunks(10) {
            let mut entries = Vec::with_capacity(chunk.len());
            for (index, (message, reason)) in chunk.iter().enumerate() {
                let reason: String = reason.chars().take(MAX_REASON_ATTRIBUTE_CHARS).collect();
                let entry = SendMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .message_body(if message.body.is_empty() {
                        "(empty body)"
                    } else {
                        &message.body
                    })
                    .message_attributes("reason", string_attribute(&reason))
                    .message_attributes("source", string_attribute(&self.source))
                    .build();
                match entry {
                    Ok(entry) => entries.push(entry),
                    Err(_) => failed.extend(message.id.clone()),
                }
            }
            let sent = self
                .sqs
                .send_message_batch()
                .queue_url(&self.dlq_url)
                .set_entries(Some(entries))
                .send()
                .await;
            match sent {
                Ok(output) => {
                    for failure in output.failed {
                        tracing::warn!(code = %failure.code, "dead-lettering a message failed; it goes back to the queue");
                        if let Some((message, _)) =
                            failure.id.parse::<usize>().ok().and_then(|i| chunk.get(i))
                        {
                            failed.extend(message.id.clone());
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&error), "dead-letter queue unreachable; the messages go back to the queue");
                    failed.extend(chunk.iter().filter_map(|(m, _)| m.id.clone()));
                }
            }
        }
        failed
    }
}

fn string_attribute(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .expect("data type is set")
}

fn item_failure(id: String) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id;
    failure
}

/// What loading a batch, in parts when it must, made of its messages.
struct Isolated {
    counts: LoadCounts,
    /// Whether the malformed and misrouted messages are in the error table.
    rejects_recorded: bool,
    /// Events the database refused, with its reason: recorded in the error
    /// table, to be dead-lettered.
    refused: Vec<(usize, String)>,
    /// Events whose load failed for a transient reason: back to the queue.
    retry: Vec<usize>,
    transactions: usize,
}

/// How one transaction of a batch ended.
enum Attempt {
    Committed(LoadCounts),
    /// A lost connection, a lock wait, a deadlock, a failover: worth a retry
    /// by SQS (the database retries ran out).
    Transient,
    /// Anything else, a panic included: the same events fail the same way.
    Refused(String),
}

/// Loads the batch in one transaction; when that fails for a reason that is
/// not transient, finds the events the database refuses by loading the batch
/// in halves, recursively, and loads everything else: one bad event never
/// sends good ones back to the queue.
fn load_isolating(
    db: &Database,
    source: &str,
    messages: &[Message],
    deadline: Instant,
    hook: Option<&CommitHook>,
) -> Isolated {
    let events: Vec<usize> = (0..messages.len())
        .filter(|&i| messages[i].parsed.is_ok())
        .collect();
    let mut isolated = Isolated {
        counts: LoadCounts::default(),
        rejects_recorded: false,
        refused: Vec::new(),
        retry: Vec::new(),
        transactions: 1,
    };
    match attempt(db, source, messages, &events, &[], true, deadline, hook) {
        Attempt::Committed(counts) => {
            isolated.counts = counts;
            isolated.rejects_recorded = true;
            return isolated;
        }
        Attempt::Transient => {
            isolated.retry = events;
            return isolated;
        }
        Attempt::Refused(reason) => {
            tracing::warn!(loader = %source, %reason, events = events.len(), "batch refused; loading it in parts");
        }
    }
    // The malformed and misrouted messages on their own first.
    isolated.transactions += 1;
    match attempt(db, source, messages, &[], &[], true, deadline, hook) {
        Attempt::Committed(counts) => {
            isolated.counts.add(&counts);
            isolated.rejects_recorded = true;
        }
        Attempt::Transient | Attempt::Refused(_) => {}
    }
    let (left, right) = events.split_at(events.len() / 2);
    for half in [left, right] {
        bisect(db, source, messages, half, deadline, hook, &mut isolated);
    }
    if !isolated.refused.is_empty() {
        isolated.transactions += 1;
        let refused = std::mem::take(&mut isolated.refused);
        match attempt(db, source, messages, &[], &refused, false, deadline, hook) {
            Attempt::Committed(counts) => {
                isolated.counts.add(&counts);
                isolated.refused = refused;
            }
            // Not recorded: they go back, and a later delivery tries again.
            Attempt::Transient | Attempt::Refused(_) => {
                isolated
                    .retry
                    .extend(refused.into_iter().map(|(index, _)| index));
            }
        }
    }
    isolated
}

/// Loads `events` in one transaction, or, when the database refuses it, each
/// half on its own, down to the single events it refuses.
fn bisect(
    db: &Database,
    source: &str,
    messages: &[Message],
    events: &[usize],
    deadline: Instant,
    hook: Option<&CommitHook>,
    isolated: &mut Isolated,
) {
    if events.is_empty() {
        return;
    }
    isolated.transactions += 1;
    match attempt(db, source, messages, events, &[], false, deadline, hook) {
        Attempt::Committed(counts) => isolated.counts.add(&counts),
        Attempt::Transient => isolated.retry.extend_from_slice(events),
        Attempt::Refused(reason) if events.len() == 1 => {
            isolated.refused.push((events[0], reason));
        }
        Attempt::Refused(_) => {
            let (left, right) = events.split_at(events.len() / 2);
            bisect(db, source, messages, left, deadline, hook, isolated);
            bisect(db, source, messages, right, deadline, hook, isolated);
        }
    }
}

/// One transaction: the messages `events` as events, the `refused` ones as
/// rejects with the database's reason, and the malformed and misrouted
/// messages when `with_rejects`; transient errors retried until `deadline`.
#[allow(clippy::too_many_arguments)]
fn attempt(
    db: &Database,
    source: &str,
    messages: &[Message],
    events: &[usize],
    refused: &[(usize, String)],
    with_rejects: bool,
    deadline: Instant,
    hook: Option<&CommitHook>,
) -> Attempt {
    let items: Vec<Item> = events
        .iter()
        .filter_map(|&i| match &messages[i].parsed {
            Ok(event) => Some(Item {
                event,
                raw: &messages[i].body,
                line: 0,
            }),
            Err(_) => None,
        })
        .collect();
    let parse_rejects = messages
        .iter()
        .filter(|_| with_rejects)
        .filter_map(|m| match &m.parsed {
            Err((kind, reason)) => Some(Reject {
                raw: m.body.as_bytes(),
                reason: reason.clone(),
                kind: *kind,
                line: 0,
                identity: None,
            }),
            Ok(_) => None,
        });
    let refused_rejects = refused.iter().filter_map(|(i, reason)| {
        let event = messages[*i].parsed.as_ref().ok()?;
        Some(Reject {
            raw: messages[*i].body.as_bytes(),
            reason: format!("the warehouse refused the event: {reason}"),
            kind: RejectKind::Refused,
            line: 0,
            identity: Some((event.stream_id.clone(), event.version)),
        })
    });
    let rejects: Vec<Reject> = parse_rejects.chain(refused_rejects).collect();
    let committed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        commit_batch(db, deadline, source, &items, &rejects, hook)
    }));
    match committed {
        Ok(Ok(outcome)) => Attempt::Committed(outcome.counts),
        Ok(Err(error)) if error.is_transient() => {
            tracing::error!(loader = %source, %error, "events not committed; they go back to the queue");
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

/// Builds the loader of `data_point` from its configuration (see
/// [`LoaderConfig`]), with one connection.
impl SqsLoader {
    pub async fn from_env(data_point: DataPoint) -> Result<SqsLoader, lambda_runtime::Error> {
        let config = LoaderConfig::from_env(data_point)?;
        let db = Arc::new(Database::connect(config.database, LAMBDA_MAX_CONNECTIONS).await?);
        let aws = crate::store::sdk_config().await;
        tracing::info!(function = %config.function_name, database = %db.describe(), "loader ready");
        Ok(SqsLoader::new(
            data_point,
            config.function_name,
            db,
            crate::store::sqs_client(&aws),
            config.dlq_url,
        ))
    }
}
