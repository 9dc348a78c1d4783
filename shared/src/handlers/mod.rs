mod api;
mod lambda;
mod sqs_loader;
pub use api::{percent_decode, AnalyticsApi};
pub use lambda::{loader_from_env, BackfillFunction, ReconcileFunction, LAMBDA_MAX_CONNECTIONS};
pub use sqs_loader::SqsLoader;
