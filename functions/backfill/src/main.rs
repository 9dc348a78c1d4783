//! The backfill, invoked by hand (or by `warehouse backfill --via-lambda
//! FUNCTION`, which re-invokes it until done): each invocation continues the
//! run until shortly before its time runs out.
//! Wiring only: the logic is `shared::jobs::backfill`.

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::return_freed_memory_promptly();
    shared::telemetry::init_json();
    let function = shared::handlers::BackfillFunction::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| function.handle(event))).await
}
