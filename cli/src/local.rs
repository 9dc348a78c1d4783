//! The whole pipeline on one machine, on the real function binaries: moto for
//! SQS and for S3 (the exports bucket, whose folder is all the backfill and
//! reconcile functions may read), the control plane of `cargo lambda watch`
//! (Invoke and Runtime APIs),
//! each function binary as its runtime client with its own environment, and
//! a local event source mapping that polls each data point's queue and
//! invokes its loader with real SQS event JSON, as AWS does.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use shared::contract::DataPoint;

use crate::chaos::{Chaos, CommitTrap, LoaderFault};
use crate::invoke;
use crate::processes::{self, FunctionProcesses, Supervised};

/// The function that loads a data point's queue (as in template.yaml).
pub fn loader_function(data_point: DataPoint) -> &'static str {
    match data_point {
        DataPoint::Presentation => "load-presentations",
        DataPoint::Attendance => "load-attendance",
        DataPoint::Polls => "load-polls",
        DataPoint::Surveys => "load-surveys",
        DataPoint::Qna => "load-qna",
    }
}

pub const BACKFILL_FUNCTION: &str = "backfill";
pub const RECONCILE_FUNCTION: &str = "reconcile";
pub const ANALYTICS_FUNCTION: &str = "analytics-api";

/// What AWS's `maxReceiveCount` is in template.yaml.
pub const MAX_RECEIVE_COUNT: u32 = 5;
const REGION: &str = "us-east-1";
/// As AWS's mappings do, an idle queue is long-polled rather than hammered.
const LONG_POLL_SECONDS: i32 = 5;
/// Lines the backfill sends per invocation in the local pipeline, and the
/// queue length below which it is invoked again.
pub const PIPELINE_BACKFILL_LINES: usize = 250;
const PACING_QUEUE_LENGTH: usize = 100;
/// The folder of the exports bucket that the backfill and reconcile
/// functions may read (their `EXPORT_PREFIX`), as `ExportsPrefix` on AWS.
pub const EXPORT_PREFIX: &str = "exports/";

pub struct LocalOptions {
    /// The warehouse the functions write to (`mysql://…`).
    pub database_url: shared::store::Secret,
    /// Messages per invocation, at most (the mapping's `BatchSize`).
    pub batch_size: usize,
    /// The queues' visibility timeout: how long a message reported as failed
    /// stays invisible before it is delivered again.
    pub visibility_timeout: Duration,
    /// Prefix of the queue names and of the exports bucket's (unique per test).
    pub queue_prefix: String,
    /// A running moto to use instead of starting one.
    pub moto_endpoint: Option<String>,
    /// The chaos rehearsal's seed: faults injected while the pipeline runs
    /// (`crate::chaos`).
    pub chaos: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct QueuePair {
    pub url: String,
    pub arn: String,
    pub dlq_url: String,
}

/// What one event source mapping did.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MappingTotals {
    pub invocations: u64,
    pub failed_invocations: u64,
    pub messages: u64,
    pub deleted: u64,
    pub reported_failures: u64,
}

/// Everything running; dropping it stops the processes.
pub struct LocalStack {
    pub moto_endpoint: String,
    pub aws: aws_config::SdkConfig,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
    /// The functions' `EXPORT_BUCKET`: `upload_export` puts exports there.
    pub exports_bucket: String,
    pub lambda: aws_sdk_lambda::Client,
    /// The control plane's address (`127.0.0.1:PORT`).
    pub control_plane: String,
    pub queues: BTreeMap<DataPoint, QueuePair>,
    /// The faults being injected, in a chaos rehearsal.
    pub chaos: Option<Arc<Chaos>>,
    stop: tokio::sync::watch::Sender<bool>,
    mappings: Vec<(DataPoint, tokio::task::JoinHandle<MappingTotals>)>,
    // Stopped first (`Drop`), then the control plane, then moto. Shared with
    // the chaos rehearsal, which kills and restarts them.
    functions: Arc<Mutex<FunctionProcesses>>,
    _control_plane: Supervised,
    _moto: Option<Supervised>,
}

impl LocalStack {
    /// Starts moto (unless given), creates the queues with their dead-letter
    /// queues and redrive and the exports bucket, starts the control plane and
    /// every function, and the event source mappings.
    pub async fn start(options: LocalOptions) -> anyhow::Result<LocalStack> {
        let (moto_endpoint, moto) = match options.moto_endpoint.clone() {
            Some(endpoint) => (endpoint, None),
            None => {
                let (endpoint, process) = processes::start_moto()?;
                (endpoint, Some(process))
            }
        };
        let aws = local_aws_config(&moto_endpoint).await;
        let sqs = aws_sdk_sqs::Client::new(&aws);
        let mut queues = BTreeMap::new();
        for data_point in DataPoint::ALL {
            let name = format!("{}-{}", options.queue_prefix, data_point.as_str());
            queues.insert(
                data_point,
                create_queue_pair(&sqs, &name, options.visibility_timeout).await?,
            );
        }
        let s3 = shared::store::s3_client(&aws);
        let exports_bucket = format!("{}-exports", options.queue_prefix.to_lowercase());
        shared::export::ExportScope::s3_folder(&exports_bucket, EXPORT_PREFIX)
            .map_err(anyhow::Error::msg)?;
        s3.create_bucket()
            .bucket(&exports_bucket)
            .send()
            .await
            .with_context(|| format!("cannot create the bucket {exports_bucket} on moto"))?;
        let (control_plane_address, control_plane) = processes::start_lambda_control_plane()?;
        let lambda = invoke::local_client(&aws, &control_plane_address);

        let common = vec![
            (
                "DATABASE_URL".to_string(),
                options.database_url.expose().to_string(),
            ),
            ("AWS_ENDPOINT_URL".into(), moto_endpoint.clone()),
            ("AWS_REGION".into(), REGION.into()),
            ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
        ];
        let queue_urls: Vec<(String, String)> = queues
            .iter()
            .map(|(dp, q)| {
                (
                    format!("QUEUE_URL_{}", dp.as_str().to_uppercase()),
                    q.url.clone(),
                )
            })
            .collect();
        let mut functions = FunctionProcesses::new(&control_plane_address);
        // In a rehearsal each loader reaches the database through its own
        // proxy, which holds its commits for the faults.
        let mut traps = HashMap::new();
        for (data_point, queue) in &queues {
            let name = loader_function(*data_point);
            let mut env = common.clone();
            if options.chaos.is_some() {
                let trap = CommitTrap::start(database_address(&options.database_url)?).await?;
                let proxied = trap.url_for(options.database_url.expose())?;
                env.retain(|(variable, _)| variable != "DATABASE_URL");
                env.push(("DATABASE_URL".into(), proxied));
                traps.insert(name.to_string(), trap);
            }
            env.push(("DLQ_URL".into(), queue.dlq_url.clone()));
            functions.start(name, env)?;
        }
        for name in [BACKFILL_FUNCTION, RECONCILE_FUNCTION] {
            let mut env = [common.clone(), queue_urls.clone()].concat();
            env.push((
                "BACKFILL_BATCH_LINES".into(),
                PIPELINE_BACKFILL_LINES.to_string(),
            ));
            env.push(("EXPORT_BUCKET".into(), exports_bucket.clone()));
            env.push(("EXPORT_PREFIX".into(), EXPORT_PREFIX.into()));
            functions.start(name, env)?;
        }
        functions.start(ANALYTICS_FUNCTION, common)?;
        let functions = Arc::new(Mutex::new(functions));
        let chaos = match options.chaos {
            Some(seed) => Some(Arc::new(Chaos::new(
                seed,
                &options.database_url,
                functions.clone(),
                traps,
            )?)),
            None => None,
        };

        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mappings = queues
            .iter()
            .map(|(data_point, queue)| {
                let mapping = EventSourceMapping {
                    sqs: sqs.clone(),
                    lambda: lambda.clone(),
                    queue_url: queue.url.clone(),
                    queue_arn: queue.arn.clone(),
                    function: loader_function(*data_point).to_string(),
                    batch_size: options.batch_size,
                    chaos: chaos.clone(),
                };
                (*data_point, tokio::spawn(mapping.run(stopped.clone())))
            })
            .collect();
        Ok(LocalStack {
            moto_endpoint,
            aws,
            sqs,
            s3,
            exports_bucket,
            lambda,
            control_plane: control_plane_address,
            queues,
            chaos,
            stop,
            mappings,
            functions,
            _control_plane: control_plane,
            _moto: moto,
        })
    }

    /// Puts a local export into the functions' exports folder, under its
    /// file name; returns its `s3://` location, which is what they read.
    pub async fn upload_export(&self, path: &Path) -> anyhow::Result<String> {
        let name = path
            .file_name()
            .with_context(|| format!("{} names no file", path.display()))?;
        let key = format!("{EXPORT_PREFIX}{}", name.to_string_lossy());
        let body = aws_sdk_s3::primitives::ByteStream::from_path(path)
            .await
            .with_context(|| format!("cannot read the export {}", path.display()))?;
        self.s3
            .put_object()
            .bucket(&self.exports_bucket)
            .key(&key)
            .body(body)
            .send()
            .await
            .with_context(|| format!("cannot upload {} to moto's S3", path.display()))?;
        Ok(format!("s3://{}/{key}", self.exports_bucket))
    }

    /// Waits until every queue is empty (nothing visible, nothing in flight)
    /// twice in a row, checking that every function still runs.
    pub async fn drain(&mut self, within: Duration) -> anyhow::Result<()> {
        self.wait_until_shorter_than(1, within).await
    }

    /// Waits until the queues hold fewer than `limit` messages in all, twice
    /// in a row, checking that every function still runs.
    pub async fn wait_until_shorter_than(
        &mut self,
        limit: usize,
        within: Duration,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut empty_checks = 0;
        while empty_checks < 2 {
            let stopped = lock(&self.functions).first_stopped();
            if let Some(name) = stopped {
                bail!("the {name} function's process stopped; its output is in target/local-pipeline/{name}-*.log");
            }
            let mut total = 0;
            for queue in self.queues.values() {
                total += queue_length(&self.sqs, &queue.url).await?;
            }
            empty_checks = if total < limit { empty_checks + 1 } else { 0 };
            if started.elapsed() > within {
                bail!("the queues still hold {total} messages after {within:?}");
            }
            if empty_checks < 2 {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        Ok(())
    }

    /// How many messages each dead-letter queue holds.
    pub async fn dead_letters(&self) -> anyhow::Result<BTreeMap<DataPoint, usize>> {
        let mut counts = BTreeMap::new();
        for (data_point, queue) in &self.queues {
            counts.insert(*data_point, queue_length(&self.sqs, &queue.dlq_url).await?);
        }
        Ok(counts)
    }

    /// Stops the event source mappings and returns what each did.
    pub async fn stop_mappings(&mut self) -> BTreeMap<DataPoint, MappingTotals> {
        let _ = self.stop.send(true);
        let mut totals = BTreeMap::new();
        for (data_point, handle) in self.mappings.drain(..) {
            totals.insert(data_point, handle.await.unwrap_or_default());
        }
        totals
    }
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        // Now, whoever else holds them (a mapping task still finishing).
        lock(&self.functions).stop_all();
    }
}

/// The function processes, even when a thread panicked holding them.
pub(crate) fn lock(
    functions: &Mutex<FunctionProcesses>,
) -> std::sync::MutexGuard<'_, FunctionProcesses> {
    functions
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `url` with one more query parameter.
/// The database server's host and port in `database_url`.
fn database_address(database_url: &shared::store::Secret) -> anyhow::Result<(String, u16)> {
    let opts = mysql::Opts::from_url(database_url.expose())
        .map_err(|_| anyhow::anyhow!("DATABASE_URL is not a valid MySQL URL"))?;
    Ok((opts.get_ip_or_hostname().to_string(), opts.get_tcp_port()))
}

/// AWS configuration for moto, with dummy credentials.
pub async fn local_aws_config(moto_endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto_endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "local",
        ))
        .load()
        .await
}

/// A queue and its dead-letter queue, with the redrive of template.yaml.
async fn create_queue_pair(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    visibility_timeout: Duration,
) -> anyhow::Result<QueuePair> {
    let dlq_url = create_queue(sqs, &format!("{name}-dlq"), BTreeMap::new()).await?;
    let dlq_arn = queue_arn(sqs, &dlq_url).await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": MAX_RECEIVE_COUNT.to_string(),
    });
    let url = create_queue(
        sqs,
        name,
        BTreeMap::from([
            (QueueAttributeName::RedrivePolicy, redrive.to_string()),
            (
                QueueAttributeName::VisibilityTimeout,
                visibility_timeout.as_secs().max(1).to_string(),
            ),
        ]),
    )
    .await?;
    let arn = queue_arn(sqs, &url).await?;
    Ok(QueuePair { url, arn, dlq_url })
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: BTreeMap<QueueAttributeName, String>,
) -> anyhow::Result<String> {
    let output = sqs
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes.into_iter().collect()))
        .send()
        .await
        .with_context(|| format!("cannot create the queue {name} on moto"))?;
    output
        .queue_url
        .context("moto created a queue without a URL")
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    let output = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .with_context(|| format!("cannot read the ARN of {url}"))?;
    output
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .with_context(|| format!("{url} has no ARN"))
}

/// Messages on a queue, visible and in flight.
pub async fn queue_length(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<usize> {
    let output = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .with_context(|| format!("cannot read the length of {url}"))?;
    let attributes = output.attributes.unwrap_or_default();
    Ok([
        QueueAttributeName::ApproximateNumberOfMessages,
        QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .filter_map(|name| attributes.get(name)?.parse::<usize>().ok())
    .sum())
}

/// What AWS's SQS event source mapping does: receive a batch, invoke the
/// function with it, delete what the function did not report as failed.
/// Failed messages come back after the visibility timeout, and after
/// `maxReceiveCount` receives the queue's redrive moves them to its DLQ.
pub struct EventSourceMapping {
    pub sqs: aws_sdk_sqs::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub queue_url: String,
    pub queue_arn: String,
    pub function: String,
    pub batch_size: usize,
    /// In a chaos rehearsal, what may happen to an invocation.
    pub chaos: Option<Arc<Chaos>>,
}

impl EventSourceMapping {
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) -> MappingTotals {
        let mut totals = MappingTotals::default();
        loop {
            // Only the long poll is abandoned on stop, never a batch being handled.
            let first = tokio::select! {
                _ = stop.changed() => break,
                received = self.receive(self.batch_size.min(10), LONG_POLL_SECONDS) => received,
            };
            let outcome = match first {
                Ok(messages) if messages.is_empty() => Ok(()),
                Ok(messages) => self.handle_batch(messages, &mut totals).await,
                Err(error) => Err(error),
            };
            if let Err(error) = outcome {
                tracing::warn!(function = %self.function, error = %format!("{error:#}"), "event source mapping: poll failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        totals
    }

    async fn receive(
        &self,
        wanted: usize,
        wait_seconds: i32,
    ) -> anyhow::Result<Vec<aws_sdk_sqs::types::Message>> {
        Ok(self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(wanted.clamp(1, 10) as i32)
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .context("receive from the queue")?
            .messages
            .unwrap_or_default())
    }

    /// Fills the batch up to its size from what is visible now, invokes the
    /// function once, and deletes what it did not report as failed.
    async fn handle_batch(
        &self,
        mut messages: Vec<aws_sdk_sqs::types::Message>,
        totals: &mut MappingTotals,
    ) -> anyhow::Result<()> {
        while messages.len() < self.batch_size {
            let more = self.receive(self.batch_size - messages.len(), 0).await?;
            if more.is_empty() {
                break;
            }
            messages.extend(more);
        }
        let event = sqs_event(&messages, &self.queue_arn);
        totals.invocations += 1;
        totals.messages += messages.len() as u64;
        let invocation = invoke::invoke_json(&self.lambda, &self.function, &event);
        let failed = match self.chaos.as_ref().map(|c| (c, c.loader_fault())) {
            Some((chaos, Some(LoaderFault::DeliverTwice))) => {
                let first = invocation.await;
                // SQS delivers at least once: the same messages come again
                // before the first delivery is deleted.
                let again = invoke::invoke_json(&self.lambda, &self.function, &event).await;
                chaos.delivered_twice(messages.len());
                totals.invocations += 1;
                let mut failed = self.failed(first, &messages, totals);
                failed.extend(self.failed(again, &messages, totals));
                failed
            }
            Some((chaos, Some(fault))) => {
                let outcome = chaos.strike_during(&self.function, fault, invocation).await;
                self.failed(outcome, &messages, totals)
            }
            _ => self.failed(invocation.await, &messages, totals),
        };
        totals.reported_failures += failed.len() as u64;
        let done: Vec<_> = messages
            .iter()
            .filter(|m| !failed.contains(m.message_id().unwrap_or_default()))
            .collect();
        for chunk in done.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()?;
            let output = self
                .sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .context("delete processed messages")?;
            totals.deleted += output.successful.len() as u64;
        }
        Ok(())
    }

    /// The messages an invocation's outcome sends back to the queue.
    fn failed(
        &self,
        outcome: anyhow::Result<serde_json::Value>,
        messages: &[aws_sdk_sqs::types::Message],
        totals: &mut MappingTotals,
    ) -> HashSet<String> {
        match outcome {
            Ok(answer) => match batch_item_failures(&answer, messages) {
                Some(failed) => failed,
                None => {
                    // As on AWS: an answer naming unknown messages fails the whole batch.
                    tracing::warn!(function = %self.function, answer = %answer, "the function's batch response is not valid; the whole batch comes back");
                    all_ids(messages)
                }
            },
            Err(error) => {
                totals.failed_invocations += 1;
                tracing::warn!(function = %self.function, error = %format!("{error:#}"), "invocation failed; the whole batch comes back");
                all_ids(messages)
            }
        }
    }
}

fn all_ids(messages: &[aws_sdk_sqs::types::Message]) -> HashSet<String> {
    messages
        .iter()
        .filter_map(|m| m.message_id().map(str::to_string))
        .collect()
}

/// The ids the function reported as failed, or `None` when its answer is not
/// a batch response about these messages.
fn batch_item_failures(
    answer: &serde_json::Value,
    messages: &[aws_sdk_sqs::types::Message],
) -> Option<HashSet<String>> {
    let ids = all_ids(messages);
    let mut failed = HashSet::new();
    if let Some(items) = answer.get("batchItemFailures") {
        for item in items.as_array()? {
            let id = item.get("itemIdentifier")?.as_str()?;
            if !ids.contains(id) {
                return None;
            }
            failed.insert(id.to_string());
        }
    }
    Some(failed)
}

/// The event Lambda's SQS integration delivers, field for field.
pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message], queue_arn: &str) -> serde_json::Value {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, serde_json::Value> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_string(), v.clone().into()))
                        .collect()
                })
                .unwrap_or_default();
            let message_attributes: serde_json::Map<String, serde_json::Value> = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(name, value)| {
                            (
                                name.clone(),
                                serde_json::json!({
                                    "stringValue": value.string_value(),
                                    // Nothing in this product sends binary attributes.
                                    "binaryValue": null,
                                    "stringListValues": [],
                                    "binaryListValues": [],
                                    "dataType": value.data_type(),
                                }),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            serde_json::json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body(),
                "md5OfMessageAttributes": m.md5_of_message_attributes(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// What `warehouse pipeline` prints.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineSummary {
    pub backfill: serde_json::Value,
    pub backfill_invocations: usize,
    pub event_source_mappings: BTreeMap<DataPoint, MappingTotals>,
    pub dead_letters: BTreeMap<DataPoint, usize>,
    pub reconciliation: serde_json::Value,
    pub presentation: Option<(String, String)>,
    pub report: serde_json::Value,
    pub seconds: f64,
    /// The faults injected, in a chaos rehearsal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chaos: Option<crate::chaos::ChaosReport>,
}

/// The pipeline on a running stack: the export is put in the exports bucket,
/// the backfill function sends it to the queues (`enqueue` mode) while the
/// mappings feed the loaders; once the queues are empty the reconcile
/// function compares it with the warehouse, and the analytics API function
/// answers the report of the busiest presentation (`busiest` finds it in the
/// warehouse).
pub async fn run_pipeline(
    stack: &mut LocalStack,
    export: &Path,
    drain_within: Duration,
    busiest: impl FnOnce() -> anyhow::Result<Option<(String, String)>>,
) -> anyhow::Result<PipelineSummary> {
    let started = Instant::now();
    let source = stack.upload_export(export).await?;
    // One batch of BACKFILL_BATCH_LINES per invocation, the next one only
    // when the queues are short again: moto's SQS does work proportional to
    // a queue's length on every call, so a flooded queue drains slowly.
    let mut run = invoke::Resumable::new(
        BACKFILL_FUNCTION,
        serde_json::json!({ "source": source, "mode": "enqueue", "maxSeconds": 0 }),
    );
    let backfill = loop {
        let step = match &stack.chaos {
            Some(chaos) => {
                let number = run.invocations + 1;
                match chaos
                    .backfill_invocation(number, BACKFILL_FUNCTION, run.step(&stack.lambda))
                    .await?
                {
                    Some(step) => step,
                    // Killed: the same payload again resumes from its checkpoint.
                    None => continue,
                }
            }
            None => run.step(&stack.lambda).await?,
        };
        let (answer, done) = step;
        if done {
            break answer;
        }
        stack
            .wait_until_shorter_than(PACING_QUEUE_LENGTH, drain_within)
            .await?;
    };
    let backfill_invocations = run.invocations as usize;
    stack.drain(drain_within).await?;
    let event_source_mappings = stack.stop_mappings().await;
    let dead_letters = stack.dead_letters().await?;
    // The whole export, not the scheduled default (yesterday); given as a
    // manual invocation's own detail, so the returned runId continues it.
    let reconciliation = invoke::invoke_until_done(
        &stack.lambda,
        RECONCILE_FUNCTION,
        serde_json::json!({
            "source": source,
            "from": "1970-01-01T00:00:00Z",
            "to": "2099-12-31T23:59:59Z",
        }),
        |_| {},
    )
    .await?;
    let presentation = busiest()?;
    let report = match &presentation {
        Some((tenant, id)) => {
            let answer = invoke::invoke_json(
                &stack.lambda,
                ANALYTICS_FUNCTION,
                &report_request(tenant, id),
            )
            .await?;
            let status = answer.get("statusCode").and_then(|s| s.as_u64());
            let body = answer.get("body").and_then(|b| b.as_str()).unwrap_or("");
            if status != Some(200) {
                bail!("the analytics API answered {status:?}: {body}");
            }
            serde_json::from_str(body).context("the analytics API's body is not JSON")?
        }
        None => serde_json::Value::Null,
    };
    Ok(PipelineSummary {
        backfill,
        backfill_invocations,
        event_source_mappings,
        dead_letters,
        reconciliation,
        presentation,
        report,
        seconds: started.elapsed().as_secs_f64(),
        chaos: stack.chaos.as_ref().map(|chaos| chaos.report()),
    })
}

/// `GET /tenants/{tenant}/presentations/{id}` as API Gateway (HTTP API,
/// payload 2.0, JWT authorizer) delivers it.
pub fn report_request(tenant: &str, presentation: &str) -> serde_json::Value {
    let path = format!("/tenants/{tenant}/presentations/{presentation}");
    let route = "GET /tenants/{tenantId}/presentations/{presentationId}";
    serde_json::json!({
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "",
        "headers": { "accept": "application/json", "host": "localhost" },
        "pathParameters": { "tenantId": tenant, "presentationId": presentation },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "authorizer": { "jwt": { "claims": { "sub": "warehouse-pipeline", "tenantId": tenant }, "scopes": null } },
            "domainName": "localhost",
            "domainPrefix": "localhost",
            "http": { "method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "warehouse" },
            "requestId": "local",
            "routeKey": route,
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 0
        },
        "isBase64Encoded": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::{Message, MessageAttributeValue};

    fn message(id: &str) -> Message {
        Message::builder()
            .message_id(id)
            .receipt_handle(format!("handle-{id}"))
            .body(format!("{{\"id\":\"{id}\"}}"))
            .md5_of_body("0123")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
            .message_attributes(
                "type",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("ViewerJoined")
                    .build()
                    .unwrap(),
            )
            .build()
    }

    #[test]
    fn the_event_is_what_lambda_delivers() {
        let event = sqs_event(&[message("a"), message("b")], "arn:aws:sqs:us-east-1:1:q");
        let parsed: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_value(event.clone()).expect("an SqsEvent");
        assert_eq!(parsed.records.len(), 2);
        let first = &parsed.records[0];
        assert_eq!(first.message_id.as_deref(), Some("a"));
        assert_eq!(first.body.as_deref(), Some("{\"id\":\"a\"}"));
        assert_eq!(first.event_source.as_deref(), Some("aws:sqs"));
        assert_eq!(first.attributes["ApproximateReceiveCount"], "1");
        assert_eq!(
            first.message_attributes["type"].string_value.as_deref(),
            Some("ViewerJoined")
        );
    }

    #[test]
    fn only_listed_messages_fail_and_unknown_ids_fail_the_batch() {
        let messages = [message("a"), message("b")];
        let none = batch_item_failures(&serde_json::json!({"batchItemFailures": []}), &messages);
        assert_eq!(none, Some(HashSet::new()));
        let one = batch_item_failures(
            &serde_json::json!({"batchItemFailures": [{"itemIdentifier": "b"}]}),
            &messages,
        );
        assert_eq!(one, Some(HashSet::from(["b".to_string()])));
        let unknown = batch_item_failures(
            &serde_json::json!({"batchItemFailures": [{"itemIdentifier": "zzz"}]}),
            &messages,
        );
        assert_eq!(unknown, None);
        let garbage = batch_item_failures(&serde_json::json!({"batchItemFailures": 3}), &messages);
        assert_eq!(garbage, None);
    }
}
