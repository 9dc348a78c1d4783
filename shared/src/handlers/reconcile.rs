//! The nightly reconciliation function: one invocation works until shortly
//! before its time runs out; an unfinished run answers `done: false` with its
//! `runId`, to be invoked again with `{"runId": ...}` until `done` is true.

use crate::handlers::config::{ReconcileConfig, DEFAULT_ERROR_RETENTION_DAYS};
use crate::handlers::{job_context, stop_before};
use crate::jobs::reconcile::{self, ReconcileOptions, ReconcileSummary, Repair, Start};
use crate::jobs::JobContext;
use crate::store::{system_clock, Clock, Database, DbError};

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
    pub repair: Option<Repair>,
}

/// Time kept back from the invocation's deadline: the chunks in flight are
/// folded, the discrepancies found so far written and the run's state saved,
/// then the function answers `done: false`.
pub const RECONCILE_DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(30);

/// The nightly reconciliation function: one invocation works until shortly
/// before its time runs out; an unfinished run answers `done: false` with its
/// `runId`, to be invoked again with `{"runId": ...}` until `done` is true.
/// A new run first removes the raw bodies of `error_event` past their
/// retention.
pub struct ReconcileFunction {
    pub context: JobContext,
    /// The export to compare, `{date}` standing for the window's day
    /// (`YYYY-MM-DD`), e.g. `s3://exports/{date}/` (every object under it).
    pub source_template: Option<String>,
    pub default_repair: Option<Repair>,
    pub error_retention: ErrorRetention,
}

/// How long raw bodies stay in `error_event`, and the clock that says when
/// it is (injectable for tests).
#[derive(Clone)]
pub struct ErrorRetention {
    /// A body not seen for this many days goes.
    pub days: u32,
    pub clock: Clock,
}

impl Default for ErrorRetention {
    fn default() -> ErrorRetention {
        ErrorRetention {
            days: DEFAULT_ERROR_RETENTION_DAYS,
            clock: system_clock(),
        }
    }
}

impl ErrorRetention {
    /// Removes the bodies past retention; returns how many went.
    pub fn apply(&self, db: &Database) -> Result<u64, DbError> {
        let before_ms = (self.clock)() - i64::from(self.days) * 86_400_000;
        tokio::task::block_in_place(|| {
            let mut conn = db.conn()?;
            crate::write::expire_error_bodies(&mut conn, before_ms)
                .map_err(|e| DbError::caused("cannot remove error bodies past their retention", e))
        })
    }
}

impl ReconcileFunction {
    pub async fn from_env() -> Result<ReconcileFunction, lambda_runtime::Error> {
        let config = ReconcileConfig::from_env()?;
        Ok(ReconcileFunction {
            context: job_context(&config.jobs).await?,
            source_template: config.source_template,
            default_repair: config.default_repair,
            error_retention: ErrorRetention {
                days: config.error_retention_days,
                clock: system_clock(),
            },
        })
    }

    pub async fn handle(
        &self,
        event: lambda_runtime::LambdaEvent<serde_json::Value>,
    ) -> Result<ReconcileSummary, lambda_runtime::Error> {
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
            Some(run_id) => Start::Continue(run_id),
            None => {
                options = self.options(detail)?;
                // Retention first: it needs no export, so a night whose
                // export is missing still removes old bodies.
                let removed = self.error_retention.apply(&self.context.db)?;
                tracing::info!(
                    removed,
                    retention_days = self.error_retention.days,
                    "error bodies past retention removed"
                );
                Start::New(&options)
            }
        };
        let summary = reconcile::run(
            &self.context.db,
            self.context.s3.as_ref(),
            Some(&self.context),
            start,
            Some(stop_at),
        )
        .await?;
        if summary.done {
            reconcile::log_summary(&summary);
        }
        Ok(summary)
    }

    /// A new run's options: the detail's, else the defaults.
    fn options(&self, detail: ReconcileDetail) -> Result<ReconcileOptions, lambda_runtime::Error> {
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
        Ok(ReconcileOptions {
            source,
            from_ms: Some(from),
            to_ms: Some(to),
            repair: detail.repair.or(self.default_repair),
        })
    }
}
