//! The SQS-triggered loader, one per data point: parses every message itself
//! (one bad body never fails the batch), loads the batch in one transaction
//! with retries, records and dead-letters what is permanently bad, and
//! reports back only the messages whose effect did not commit. After the
//! commit it refreshes the summaries of the presentations the batch touched,
//! which is what keeps the presentation list fresh (`read::presentations`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use lambda_runtime::LambdaEvent;

use crate::contract::{parse_event, without_anonymous_asker, DataPoint, Event};
use crate::handlers::config::LoaderConfig;
use crate::handlers::LAMBDA_MAX_CONNECTIONS;
use crate::redrive::{string_attribute, MAX_SQS_PAYLOAD_BYTES};
use crate::store::Database;
use crate::write::{commit_isolating, CommitHook, Erasures, Item, LoadCounts, Reject, RejectKind};

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
    /// Presentation summaries recomputed after the commit, and the time it took.
    pub summaries_refreshed: usize,
    pub refresh_time: Duration,
}

impl SqsLoader {
    /// The loader of `data_point`, from its configuration (see
    /// [`LoaderConfig`]), with one connection.
    pub async fn from_env(data_point: DataPoint) -> Result<SqsLoader, lambda_runtime::Error> {
        let config = LoaderConfig::from_env(data_point)?;
        let db = Arc::new(
            crate::handlers::connect(config.database, LAMBDA_MAX_CONNECTIONS, config.session)
                .await?,
        );
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
            summaries_refreshed = report.summaries_refreshed,
            refresh_ms = report.refresh_time.as_millis() as u64,
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
            let (message_of, items, rejects) = items_and_rejects(&task_messages);
            let isolated =
                commit_isolating(&db, db_deadline, &source, &items, &rejects, hook.as_deref());
            let started = Instant::now();
            let refreshed = if isolated.retry.len() < items.len() {
                refresh_summaries(&db, db_deadline, &items)
            } else {
                0 // nothing committed: the messages come back
            };
            (message_of, (isolated, (refreshed, started.elapsed())))
        })
        .await;
        let (message_of, (loaded, (refreshed, refresh_time))) = match loaded {
            Ok(loaded) => loaded,
            Err(join_error) => {
                tracing::error!(loader = %self.source, error = %join_error, "loading failed outside a transaction; every message goes back to the queue");
                return self.fail_all(&messages, report);
            }
        };
        report.counts = loaded.counts;
        report.summaries_refreshed = refreshed;
        report.refresh_time = refresh_time;

        // Committed: the bad messages are in the error table; dead-letter them
        // once, and only those whose forwarding failed come back, with those
        // whose load failed for a transient reason.
        let unparsed = messages
            .iter()
            .filter_map(|m| Some((m, m.parsed.as_ref().err()?.1.as_str())));
        let refused = loaded
            .refused
            .iter()
            .map(|(item, reason)| (&messages[message_of[*item]], reason.as_str()));
        let bad: Vec<(&Message, &str)> = if loaded.rejects_recorded {
            unparsed.chain(refused).collect()
        } else {
            refused.collect()
        };
        let failed_forwarding = self.dead_letter(&bad, &loaded.erasures).await;
        report.dead_lettered = bad.len() - failed_forwarding.len();
        let mut failed: Vec<String> = failed_forwarding;
        failed.extend(
            loaded
                .retry
                .iter()
                .filter_map(|&item| messages[message_of[item]].id.clone()),
        );
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

    /// Sends bad messages to the dead-letter queue with their reason, without
    /// what they hold of `erasures`; returns the ids of those that could not
    /// be sent.
    async fn dead_letter(&self, bad: &[(&Message, &str)], erasures: &Erasures) -> Vec<String> {
        let mut failed = Vec::new();
        // Calls of at most 10 entries and SQS's payload limit, in all.
        let mut calls: Vec<Vec<(&Message, SendMessageBatchRequestEntry)>> = Vec::new();
        let mut bytes = 0;
        for (message, reason) in bad {
            let reason: String = reason.chars().take(MAX_REASON_ATTRIBUTE_CHARS).collect();
            let (body, cut_from) = dead_letter_body(&message.body, erasures);
            let size = body.len() + reason.len() + self.source.len() + DLQ_ENTRY_OVERHEAD;
            let mut entry = SendMessageBatchRequestEntry::builder()
                .message_body(body)
                .message_attributes("reason", string_attribute(&reason))
                .message_attributes("source", string_attribute(&self.source));
            if let Some(length) = cut_from {
                entry = entry.message_attributes(
                    "truncated",
                    string_attribute(&format!(
                        "the first {DLQ_CUT_BYTES} bytes of a {length}-byte body"
                    )),
                );
            }
            let full = calls
                .last()
                .is_none_or(|call| call.len() == 10 || bytes + size > MAX_SQS_PAYLOAD_BYTES);
            if full {
                calls.push(Vec::new());
                bytes = 0;
            }
            let call = calls.last_mut().expect("just pushed");
            match entry.id(call.len().to_string()).build() {
                Ok(entry) => {
                    call.push((message, entry));
                    bytes += size;
                }
                Err(_) => failed.extend(message.id.clone()),
            }
        }
        for call in calls {
            let (messages, entries): (Vec<&Message>, Vec<_>) = call.into_iter().unzip();
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
                        if let Some(message) = failure
                            .id
                            .parse::<usize>()
                            .ok()
                            .and_then(|i| messages.get(i))
                        {
                            failed.extend(message.id.clone());
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %aws_sdk_sqs::error::DisplayErrorContext(&error), "dead-letter queue unreachable; the messages go back to the queue");
                    failed.extend(messages.iter().filter_map(|m| m.id.clone()));
                }
            }
        }
        failed
    }
}

/// A dead-lettered body over this many bytes is forwarded cut to
/// [`DLQ_CUT_BYTES`] (EVENTS.md: a body over 1 MiB is malformed and its first
/// 64 KiB are enough to record it); whole, it could never be sent.
const DLQ_WHOLE_BODY_BYTES: usize = 192 * 1024;
const DLQ_CUT_BYTES: usize = 64 * 1024;
/// Room for an entry's id, attribute names and types in a call's payload.
const DLQ_ENTRY_OVERHEAD: usize = 256;

/// The body forwarded to the dead-letter queue: never an anonymous asker
/// (EVENTS.md) nor an erased viewer's values (ANALYTICS.md §8), never empty
/// (SQS refuses that), cut when too long to send; with the original length
/// when cut.
fn dead_letter_body(body: &str, erasures: &Erasures) -> (String, Option<usize>) {
    if body.is_empty() {
        return ("(empty body)".to_string(), None);
    }
    let anonymous = without_anonymous_asker(body.as_bytes());
    let scrubbed = String::from_utf8_lossy(&erasures.scrub(&anonymous)).into_owned();
    if scrubbed.len() <= DLQ_WHOLE_BODY_BYTES {
        return (scrubbed, None);
    }
    let mut cut = DLQ_CUT_BYTES;
    while !scrubbed.is_char_boundary(cut) {
        cut -= 1;
    }
    (scrubbed[..cut].to_string(), Some(body.len()))
}

/// Recomputes the stale summaries of the presentations the batch's events
/// belong to, once the batch committed (duplicates included: a batch
/// delivered again after its loader died between commit and refresh
/// refreshes then). Never fails the batch: a summary it leaves stale is
/// refreshed after the next load touching it, or by the backfill's or the
/// nightly reconciliation's sweep. Returns how many were written.
fn refresh_summaries(db: &Database, deadline: Instant, items: &[Item<'_>]) -> usize {
    let mut touched: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for item in items.iter().filter(|i| i.event.data_point().is_some()) {
        touched
            .entry(&item.event.tenant_id)
            .or_default()
            .insert(&item.event.stream_id);
    }
    if touched.is_empty() {
        return 0;
    }
    let stale =
        "its presentations' summaries stay stale until their next load or the nightly sweep";
    let mut conn = match db.conn() {
        Ok(conn) => conn,
        Err(error) => {
            tracing::warn!(%error, "cannot refresh the presentation summaries: {stale}");
            return 0;
        }
    };
    let mut written = 0;
    for (tenant, ids) in touched {
        if Instant::now() >= deadline {
            tracing::warn!(
                tenant,
                "no time left to refresh the presentation summaries: {stale}"
            );
            break;
        }
        let ids: Vec<&str> = ids.into_iter().collect();
        match crate::read::refresh_summaries_of(&mut conn, tenant, &ids) {
            Ok(n) => written += n,
            Err(error) => {
                tracing::warn!(tenant, %error, "refreshing the presentation summaries failed: {stale}")
            }
        }
    }
    written
}

fn item_failure(id: String) -> BatchItemFailure {
    let mut failure = BatchItemFailure::default();
    failure.item_identifier = id;
    failure
}

/// The batch's events with, for each, its message's index, and its
/// malformed and misrouted messages as rejects.
fn items_and_rejects(messages: &[Message]) -> (Vec<usize>, Vec<Item<'_>>, Vec<Reject<'_>>) {
    let mut message_of = Vec::new();
    let mut items = Vec::new();
    let mut rejects = Vec::new();
    for (index, m) in messages.iter().enumerate() {
        match &m.parsed {
            Ok(event) => {
                message_of.push(index);
                items.push(Item {
                    event,
                    raw: &m.body,
                    line: 0,
                });
            }
            Err((kind, reason)) => rejects.push(Reject {
                raw: m.body.as_bytes(),
                raw_truncated: false,
                reason: reason.clone(),
                kind: *kind,
                line: 0,
                identity: None,
            }),
        }
    }
    (message_of, items, rejects)
}
