//! What every function's `main` shares: configuration read once (failing fast
//! with a clear message) and clients built once per container.

use std::sync::Arc;

use crate::config::{required_env, DatabaseSettings};
use crate::db::Database;
use crate::event::DataPoint;
use crate::sqs_loader::SqsLoader;

/// One connection: a Lambda container handles one invocation at a time.
pub const LAMBDA_MAX_CONNECTIONS: usize = 1;

/// Builds the loader of `data_point` from the environment: `DATABASE_URL` or
/// the `DB_*` settings, `DLQ_URL`, and `AWS_LAMBDA_FUNCTION_NAME` as its name.
pub async fn loader_from_env(data_point: DataPoint) -> Result<SqsLoader, lambda_runtime::Error> {
    let settings = DatabaseSettings::from_env()?;
    let dlq_url = required_env("DLQ_URL", "this queue's dead-letter queue URL")?;
    let name =
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| format!("load-{data_point}"));
    let db = Arc::new(Database::connect(settings, LAMBDA_MAX_CONNECTIONS).await?);
    let aws = crate::aws::sdk_config().await;
    tracing::info!(function = %name, database = %db.describe(), "loader ready");
    Ok(SqsLoader::new(
        data_point,
        name,
        db,
        crate::aws::sqs_client(&aws),
        dlq_url,
    ))
}
