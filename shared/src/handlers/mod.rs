//! The handlers: the only code that sees a Lambda event. Each function's
//! `main` builds one of these once per container, from its configuration
//! (`config`, read from the environment in one place), and hands it the
//! invocations: the SQS loaders (`sqs_loader`), the HTTP API (`api`), the
//! backfill (`backfill`) and the nightly reconciliation (`reconcile`).

mod api;
mod backfill;
mod config;
mod reconcile;
mod sqs_loader;

use crate::jobs::backfill::MAX_LANES;
use crate::jobs::JobContext;
use config::JobsConfig;

pub use api::{
    percent_decode, AnalyticsApi, ApiRoutes, ViewerExports, EXPORT_FOLDER, EXPORT_URL_LIFETIME,
};
pub use backfill::{BackfillFunction, BackfillRequest};
pub use config::{ApiConfig, DEFAULT_API_STATEMENT_TIME_LIMIT, VIEWER_EXPORT_BUCKET};
pub use reconcile::{ErrorRetention, ReconcileFunction};
pub use sqs_loader::SqsLoader;

/// One connection: a Lambda container handles one invocation at a time.
pub const LAMBDA_MAX_CONNECTIONS: usize = 1;

/// The function's database, its sessions set up as `session` says; in
/// unpinned mode the process's statements are cut for RDS Proxy too
/// (`store::set_unpinned_statements`).
async fn connect(
    database: crate::store::DatabaseSettings,
    max_connections: usize,
    session: crate::store::SessionOptions,
) -> Result<crate::store::Database, crate::store::DbError> {
    crate::store::set_unpinned_statements(session.unpinned);
    crate::store::Database::connect_with(database, max_connections, session).await
}

/// When a resumable invocation stops working: `margin` before its deadline
/// (milliseconds since the epoch), or now if that has passed.
fn stop_before(deadline_ms: u64, margin: std::time::Duration) -> std::time::Instant {
    crate::store::deadline_instant(deadline_ms)
        .checked_sub(margin)
        .unwrap_or_else(std::time::Instant::now)
}

/// What a job needs beyond its options, built once per container: the
/// database with room for `max_connections`, the S3 and SQS clients, and
/// the exports it may read.
/// Connections open as a run's lanes need them (a direct run takes one per
/// lane, `lanes` in the payload; the others take one).
async fn job_context(config: &JobsConfig) -> Result<JobContext, lambda_runtime::Error> {
    let db =
        std::sync::Arc::new(connect(config.database.clone(), MAX_LANES, config.session).await?);
    let aws = crate::store::sdk_config().await;
    Ok(JobContext {
        db,
        s3: Some(crate::store::s3_client(&aws)),
        sqs: Some(crate::store::sqs_client(&aws)),
        queues: config.queues.clone(),
        exports: config.exports.clone(),
        batch_lines: config.batch_lines,
        batch_bytes: config.batch_bytes,
        on_progress: None,
        before_lane_commit: None,
    })
}
