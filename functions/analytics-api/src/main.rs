//! The analytics HTTP API, behind an API Gateway HTTP API (payload format
//! 2.0) with a JWT authorizer: the presentation list, the report and the
//! viewer list of the caller's tenant, read as a `SELECT`-only database user
//! (the erasure route is `functions/erase-viewer`), and the viewer list's
//! exports, written to `VIEWER_EXPORT_BUCKET` with the S3 client built here,
//! once. Wiring only: the routing and the
//! answers are `shared::handlers::AnalyticsApi`; example events are in `events/`
//! (`cargo lambda invoke --data-file events/report.json`).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::handlers::{AnalyticsApi, ApiRoutes};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json();
    let api = AnalyticsApi::from_env().await?.serving(ApiRoutes::Reads);
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| api.handle(event))).await
}
