//! The nightly reconciliation, on an EventBridge schedule: compares the
//! night's export with the warehouse ledger, records and reports what
//! differs (EMF metrics for the alarm), and re-drives missing events when
//! asked. Wiring only: the logic is `shared::reconcile`.

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json();
    let function = shared::lambda::ReconcileFunction::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| function.handle(event))).await
}
