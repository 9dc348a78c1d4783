//! The backfill function: one invocation works until shortly before its
//! time runs out and returns where the run stands.

use std::time::{Duration, Instant};

use crate::contract::DataPoint;
use crate::handlers::config::JobsConfig;
use crate::handlers::{job_context, stop_before};
use crate::jobs::backfill::{self, BackfillOptions, Mode, Summary};
use crate::jobs::JobContext;

/// The backfill function's payload: the run's options and, to continue a
/// run, its id. See `functions/backfill/payload.example.json`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackfillRequest {
    #[serde(flatten)]
    pub options: BackfillOptions,
    pub run_id: Option<String>,
    /// This invocation's own time budget, shorter than the function's: it
    /// checkpoints after the first batch that ends past it (0: one batch per
    /// invocation), so a caller can pace a run, e.g. to let the queues drain.
    pub max_seconds: Option<u64>,
}

/// Time kept back from the invocation's deadline: the batch in progress
/// finishes and checkpoints, then the function answers `done: false`.
pub const BACKFILL_DEADLINE_MARGIN: Duration = Duration::from_secs(30);

/// The backfill function: one invocation works until shortly before its
/// time runs out and returns where the run stands; invoke again with the
/// returned `runId` until `done` is true.
pub struct BackfillFunction {
    pub context: JobContext,
}

impl BackfillFunction {
    pub async fn from_env() -> Result<BackfillFunction, lambda_runtime::Error> {
        let config = JobsConfig::from_env()?;
        Ok(BackfillFunction {
            context: job_context(&config).await?,
        })
    }

    pub async fn handle(
        &self,
        event: lambda_runtime::LambdaEvent<BackfillRequest>,
    ) -> Result<Summary, lambda_runtime::Error> {
        let request = event.payload;
        if request.options.mode == Mode::Enqueue
            && !request.options.dry_run
            && self.context.queues.0.len() < DataPoint::ALL.len()
        {
            return Err("enqueue mode needs QUEUE_URL_PRESENTATION, QUEUE_URL_ATTENDANCE, QUEUE_URL_POLLS, QUEUE_URL_SURVEYS and QUEUE_URL_QNA in the function's environment".into());
        }
        let mut stop_at = stop_before(event.context.deadline, BACKFILL_DEADLINE_MARGIN);
        if let Some(seconds) = request.max_seconds {
            stop_at = stop_at.min(Instant::now() + Duration::from_secs(seconds));
        }
        let summary = backfill::run(
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
