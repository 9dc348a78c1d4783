//! What every function's `main` shares: configuration read once (failing fast
//! with a clear message) and clients built once per container.

use std::sync::Arc;

use crate::contract::DataPoint;
use crate::handlers::sqs_loader::SqsLoader;
use crate::store::Database;
use crate::store::{required_env, DatabaseSettings};

/// One connection: a Lambda container handles one invocation at a time.
pub const LAMBDA_MAX_CONNECTIONS: usize = 1;

/// Builds the loader of `data_point` from the environment: `DATABASE_URL` or
/// the `DB_*` settings, `DLQ_URL`, and `AWS_LAMBDA_FUNCTION_NAME` as its name.
pub async fn loader_from_env(data_point: DataPoint) -> Result<SqsLoader, lambda_runtime::Error> {
    let settings = DatabaseSettings::from_env()?;
    let dlq_url = required_env("DLQ_URL", "this queue's dead-letter queue URL")?;
    let name =
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| format!("load-{data_point}"));
    let db = Arc::new(Database::connect(settings, LAMBDA_MAX_CONNECTIONS).await?);
    let aws = crate::store::sdk_config().await;
    tracing::info!(function = %name, database = %db.describe(), "loader ready");
    Ok(SqsLoader::new(
        data_point,
        name,
        db,
        crate::store::sqs_client(&aws),
        dlq_url,
    ))
}

/// When a resumable invocation stops working: `margin` before its deadline
/// (milliseconds since the epoch), or now if that has passed.
fn stop_before(deadline_ms: u64, margin: std::time::Duration) -> std::time::Instant {
    crate::store::deadline_instant(deadline_ms)
        .checked_sub(margin)
        .unwrap_or_else(std::time::Instant::now)
}

/// The backfill function's payload: the run's options and, to continue a
/// run, its id. See `functions/backfill/payload.example.json`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackfillRequest {
    #[serde(flatten)]
    pub options: crate::jobs::backfill::BackfillOptions,
    pub run_id: Option<String>,
    /// This invocation's own time budget, shorter than the function's: it
    /// checkpoints after the first batch that ends past it (0: one batch per
    /// invocation), so a caller can pace a run, e.g. to let the queues drain.
    pub max_seconds: Option<u64>,
}

/// Time kept back from the invocation's deadline: the batch in progress
/// finishes and checkpoints, then the function answers `done: false`.
pub const BACKFILL_DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(30);

/// The backfill function: one invocation works until shortly before its
/// time runs out and returns where the run stands; invoke again with the
/// returned `runId` until `done` is true.
pub struct BackfillFunction {
    pub context: crate::jobs::JobContext,
}

impl BackfillFunction {
    pub async fn from_env() -> Result<BackfillFunction, lambda_runtime::Error> {
        let settings = DatabaseSettings::from_env()?;
        // Connections open as a run's lanes need them (a direct run takes one
        // per lane, `lanes` in the payload; the others take one).
        let db = Arc::new(Database::connect(settings, crate::jobs::backfill::MAX_LANES).await?);
        let aws = crate::store::sdk_config().await;
        // Queue URLs are only needed by enqueue runs; their absence is reported then.
        let queues = crate::redrive::QueueUrls::from_env().unwrap_or_default();
        let batch_lines = match crate::store::env_lookup("BACKFILL_BATCH_LINES") {
            None => crate::jobs::backfill::DEFAULT_BATCH_LINES,
            Some(text) => text.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                format!("BACKFILL_BATCH_LINES must be a positive number of lines per transaction, got {text:?}")
            })?,
        };
        Ok(BackfillFunction {
            context: crate::jobs::JobContext {
                db,
                s3: Some(crate::store::s3_client(&aws)),
                sqs: Some(crate::store::sqs_client(&aws)),
                queues,
                batch_lines,
                on_progress: None,
                before_lane_commit: None,
            },
        })
    }

    pub async fn handle(
        &self,
        event: lambda_runtime::LambdaEvent<BackfillRequest>,
    ) -> Result<crate::jobs::backfill::Summary, lambda_runtime::Error> {
        let request = event.payload;
        if request.options.mode == crate::jobs::backfill::Mode::Enqueue
            && !request.options.dry_run
            && self.context.queues.0.len() < DataPoint::ALL.len()
        {
            return Err("enqueue mode needs QUEUE_URL_PRESENTATION, QUEUE_URL_ATTENDANCE, QUEUE_URL_POLLS, QUEUE_URL_SURVEYS and QUEUE_URL_QNA in the function's environment".into());
        }
        let mut stop_at = stop_before(event.context.deadline, BACKFILL_DEADLINE_MARGIN);
        if let Some(seconds) = request.max_seconds {
            stop_at =
                stop_at.min(std::time::Instant::now() + std::time::Duration::from_secs(seconds));
        }
        let summary = crate::jobs::backfill::run(
            &self.context,
            &request.options,
            request.run_id,
            Some(stop_at),
        )
        .await?;
        tracing::info!(
            run_id = %summary.run_id,
            done = summary.done,
            next_offset = summary.next_offset,
            lines = summary.counters.lines,
            events = summary.counters.events,
            malformed = summary.counters.malformed,
            "backfill invocation finished"
        );
        Ok(summary)
    }
}

/// What a scheduled reconciliation's EventBridge `detail` may name; anything
/// absent defaults to the previous UTC day and `RECONCILE_SOURCE`. With
/// `runId`, the invocation continues that unfinished run (which keeps its own
/// options). See `functions/reconcile/payload.example.json`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ReconcileDetail {
    pub run_id: Option<u64>,
    pub source: Option<String>,
    /// RFC 3339 bounds of the window on `occurredAt`.
    pub from: Option<String>,
    pub to: Option<String>,
    pub repair: Option<crate::jobs::reconcile::Repair>,
}

/// Time kept back from the invocation's deadline: the chunks in flight are
/// folded, the discrepancies found so far written and the run's state saved,
/// then the function answers `done: false`.
pub const RECONCILE_DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(30);

/// The nightly reconciliation function: one invocation works until shortly
/// before its time runs out; an unfinished run answers `done: false` with its
/// `runId`, to be invoked again with `{"runId": ...}` until `done` is true.
pub struct ReconcileFunction {
    pub context: crate::jobs::JobContext,
    /// The export to compare, `{date}` standing for the window's day
    /// (`YYYY-MM-DD`), e.g. `s3://exports/{date}/` (every object under it).
    pub source_template: Option<String>,
    pub default_repair: Option<crate::jobs::reconcile::Repair>,
}

impl ReconcileFunction {
    pub async fn from_env() -> Result<ReconcileFunction, lambda_runtime::Error> {
        let backfill = BackfillFunction::from_env().await?;
        let default_repair = match crate::store::env_lookup("RECONCILE_REPAIR") {
            None => None,
            Some(text) => Some(crate::jobs::reconcile::Repair::parse(&text)?),
        };
        Ok(ReconcileFunction {
            context: backfill.context,
            source_template: crate::store::env_lookup("RECONCILE_SOURCE"),
            default_repair,
        })
    }

    pub async fn handle(
        &self,
        event: lambda_runtime::LambdaEvent<serde_json::Value>,
    ) -> Result<crate::jobs::reconcile::ReconcileSummary, lambda_runtime::Error> {
        // A scheduled event carries `detail`; a manual invocation may pass the detail itself.
        let detail_value = event
            .payload
            .get("detail")
            .cloned()
            .unwrap_or(event.payload.clone());
        let detail: ReconcileDetail = serde_json::from_value(detail_value)
            .map_err(|e| format!("the event's detail is not a reconcile request: {e}"))?;
        let stop_at = stop_before(event.context.deadline, RECONCILE_DEADLINE_MARGIN);
        let options;
        let start = match detail.run_id {
            Some(run_id) => crate::jobs::reconcile::Start::Continue(run_id),
            None => {
                options = self.options(detail)?;
                crate::jobs::reconcile::Start::New(&options)
            }
        };
        let summary = crate::jobs::reconcile::run(
            &self.context.db,
            self.context.s3.as_ref(),
            Some(&self.context),
            start,
            Some(stop_at),
        )
        .await?;
        if summary.done {
            crate::jobs::reconcile::log_summary(&summary);
        }
        Ok(summary)
    }

    /// A new run's options: the detail's, else the defaults.
    fn options(
        &self,
        detail: ReconcileDetail,
    ) -> Result<crate::jobs::reconcile::ReconcileOptions, lambda_runtime::Error> {
        let parse = |text: &str| {
            crate::contract::parse_rfc3339(text)
                .map_err(|e| format!("{text:?} is not an RFC 3339 time ({e})"))
        };
        let today = crate::store::now_ms().div_euclid(86_400_000) * 86_400_000;
        let from = detail
            .from
            .as_deref()
            .map(parse)
            .transpose()?
            .unwrap_or(today - 86_400_000);
        let to = detail
            .to
            .as_deref()
            .map(parse)
            .transpose()?
            .unwrap_or(today - 1);
        let day = crate::contract::format_date(from);
        let source = match (detail.source, &self.source_template) {
            (Some(source), _) => source,
            (None, Some(template)) => template.replace("{date}", &day),
            (None, None) => {
                return Err("no export to compare: set RECONCILE_SOURCE (e.g. s3://exports/{date}/) or name `source` in the event's detail".into())
            }
        };
        Ok(crate::jobs::reconcile::ReconcileOptions {
            source,
            from_ms: Some(from),
            to_ms: Some(to),
            repair: detail.repair.or(self.default_repair),
        })
    }
}
