//! SQS-triggered loader of the polls data point. Wiring only: the loading
//! logic is `shared::handlers::SqsLoader`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::contract::DataPoint;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_json();
    let loader = shared::handlers::SqsLoader::from_env(DataPoint::Polls).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<_>| loader.handle(event))).await
}
