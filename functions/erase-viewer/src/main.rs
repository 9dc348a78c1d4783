//! The erasure of a viewer (ANALYTICS.md §8), `DELETE
//! /tenants/{tenantId}/viewers/{viewerId}` on the analytics HTTP API, for the
//! tenant's admins. A function of its own because it writes: it connects as
//! the loaders' user, while the read routes' function may only `SELECT`.
//! Wiring only: the routing and the erasure are `shared::handlers::AnalyticsApi`
//! serving [`shared::handlers::ApiRoutes::Erasures`]; an example event is in
//! `events/` (`cargo lambda invoke --data-file events/forget.json`).

use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::handlers::{AnalyticsApi, ApiRoutes};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json();
    let api = AnalyticsApi::from_env().await?.serving(ApiRoutes::Erasures);
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| api.handle(event))).await
}
