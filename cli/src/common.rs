//! What every `warehouse` command shares: the warehouse connection, the
//! tokio runtime, AWS configuration on demand, RFC 3339 times, and printing
//! answers as JSON.

use shared::store::{Database, DatabaseSettings};

/// A connection pool on DATABASE_URL or the DB_* settings.
pub fn database(max_connections: usize) -> anyhow::Result<Database> {
    let settings = DatabaseSettings::from_env()?;
    Ok(Database::connect_blocking(settings, max_connections)?)
}

/// AWS configuration, loaded only when a command uses S3 or SQS (loading it
/// otherwise would look for credentials and a region for nothing).
pub async fn aws_if(needed: bool) -> Option<aws_config::SdkConfig> {
    match needed {
        true => Some(shared::store::sdk_config().await),
        false => None,
    }
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

pub fn parse_time(text: &str) -> anyhow::Result<i64> {
    shared::contract::parse_rfc3339(text).map_err(|e| {
        anyhow::anyhow!("{text:?} is not an RFC 3339 time ({e}); write e.g. 2021-09-14T00:00:00Z")
    })
}

/// Prints a value as JSON on stdout: compact, or indented with `pretty`.
pub fn print_json(value: &impl serde::Serialize, pretty: bool) -> anyhow::Result<()> {
    let text = if pretty {
        serde_json::to_string_pretty(value)?
    } else {
        serde_json::to_string(value)?
    };
    println!("{text}");
    Ok(())
}
