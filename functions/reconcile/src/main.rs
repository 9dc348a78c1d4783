//! The nightly reconciliation, on an EventBridge schedule: compares the
//! night's export with the warehouse ledger, records and reports what
//! differs (EMF metrics for the alarm), and re-drives missing events when
//! asked. Wiring only: the logic is `shared::jobs::reconcile`.
//!
//! The event's `detail` (or the payload itself) may name `source`, `from`,
//! `to` and `repair` (`payload.example.json`). An invocation stops 30 s
//! before its time limit with `{"done": false, "runId": N, "next": ...}`;
//! invoking again with `{"runId": N}` (`continue.example.json`) continues the
//! run, until `done` is true:
//!
//!     cargo lambda invoke reconcile --data-file functions/reconcile/payload.example.json
//!     cargo lambda invoke reconcile --data-ascii '{"runId": 42}'

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::return_freed_memory_promptly();
    shared::telemetry::init_json();
    let function = shared::handlers::ReconcileFunction::from_env().await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| function.handle(event))).await
}
