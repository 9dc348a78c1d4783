//! Each function's configuration: read from the environment once, at
//! start-up, in this one place, and failing fast with a message that names
//! the variable and what to set. Tests read them from a map (`from_lookup`).

use crate::contract::DataPoint;
use crate::jobs::backfill::DEFAULT_BATCH_LINES;
use crate::jobs::reconcile::Repair;
use crate::redrive::QueueUrls;
use crate::store::{env_lookup, required, ConfigError, DatabaseSettings, Lookup};

/// An SQS loader (`load-*`).
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    pub database: DatabaseSettings,
    /// Where permanently bad messages go, with their reason.
    pub dlq_url: String,
    /// The name it records as the source of loads and rejects.
    pub function_name: String,
}

impl LoaderConfig {
    pub fn from_env(data_point: DataPoint) -> Result<LoaderConfig, ConfigError> {
        LoaderConfig::from_lookup(data_point, &env_lookup)
    }

    pub fn from_lookup(data_point: DataPoint, lookup: Lookup) -> Result<LoaderConfig, ConfigError> {
        Ok(LoaderConfig {
            database: DatabaseSettings::from_lookup(lookup)?,
            dlq_url: required(lookup, "DLQ_URL", "this queue's dead-letter queue URL")?,
            function_name: lookup("AWS_LAMBDA_FUNCTION_NAME")
                .unwrap_or_else(|| format!("load-{data_point}")),
        })
    }
}

/// The analytics API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub database: DatabaseSettings,
}

impl ApiConfig {
    pub fn from_env() -> Result<ApiConfig, ConfigError> {
        ApiConfig::from_lookup(&env_lookup)
    }

    pub fn from_lookup(lookup: Lookup) -> Result<ApiConfig, ConfigError> {
        Ok(ApiConfig {
            database: DatabaseSettings::from_lookup(lookup)?,
        })
    }
}

/// What the jobs' functions share: the backfill's settings, which the
/// reconcile function's repairs use too.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    pub database: DatabaseSettings,
    /// Only enqueue runs and queue repairs need them: empty unless all five
    /// `QUEUE_URL_*` are set, and a run that needs them is refused then.
    pub queues: QueueUrls,
    /// `BACKFILL_BATCH_LINES`: lines per transaction.
    pub batch_lines: usize,
}

impl JobsConfig {
    pub fn from_env() -> Result<JobsConfig, ConfigError> {
        JobsConfig::from_lookup(&env_lookup)
    }

    pub fn from_lookup(lookup: Lookup) -> Result<JobsConfig, ConfigError> {
        let batch_lines = match lookup("BACKFILL_BATCH_LINES") {
            None => DEFAULT_BATCH_LINES,
            Some(text) => text.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                ConfigError(format!(
                    "BACKFILL_BATCH_LINES must be a positive number of lines per transaction, got {text:?}"
                ))
            })?,
        };
        Ok(JobsConfig {
            database: DatabaseSettings::from_lookup(lookup)?,
            queues: QueueUrls::from_lookup(lookup).unwrap_or_default(),
            batch_lines,
        })
    }
}

/// The nightly reconciliation.
#[derive(Debug, Clone)]
pub struct ReconcileConfig {
    /// The database, queues and batch size its repairs use.
    pub jobs: JobsConfig,
    /// `RECONCILE_SOURCE`: the export to compare, `{date}` standing for the
    /// window's day (`YYYY-MM-DD`), e.g. `s3://exports/{date}/`.
    pub source_template: Option<String>,
    /// `RECONCILE_REPAIR`: `queue` or `direct`, when the event names none.
    pub default_repair: Option<Repair>,
    /// `ERROR_RETENTION_DAYS` (default 30): a raw body in `error_event` not
    /// seen for this many days is removed by the run.
    pub error_retention_days: u32,
}

/// The default of `ERROR_RETENTION_DAYS`.
pub const DEFAULT_ERROR_RETENTION_DAYS: u32 = 30;

impl ReconcileConfig {
    pub fn from_env() -> Result<ReconcileConfig, ConfigError> {
        ReconcileConfig::from_lookup(&env_lookup)
    }

    pub fn from_lookup(lookup: Lookup) -> Result<ReconcileConfig, ConfigError> {
        let default_repair = match lookup("RECONCILE_REPAIR") {
            None => None,
            Some(text) => Some(
                Repair::parse(&text).map_err(|e| ConfigError(format!("RECONCILE_REPAIR: {e}")))?,
            ),
        };
        let error_retention_days = match lookup("ERROR_RETENTION_DAYS") {
            None => DEFAULT_ERROR_RETENTION_DAYS,
            Some(text) => text.trim().parse().ok().filter(|d| *d > 0).ok_or_else(|| {
                ConfigError(format!(
                    "ERROR_RETENTION_DAYS must be a whole number of days, at least 1, got {text:?}"
                ))
            })?,
        };
        Ok(ReconcileConfig {
            jobs: JobsConfig::from_lookup(lookup)?,
            source_template: lookup("RECONCILE_SOURCE"),
            default_repair,
            error_retention_days,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const DB: (&str, &str) = ("DATABASE_URL", "mysql://root@localhost/w");

    #[test]
    fn a_loader_needs_its_dead_letter_queue_and_says_so() {
        let err = LoaderConfig::from_lookup(DataPoint::Polls, &lookup(&[DB])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "DLQ_URL is not set: set it to this queue's dead-letter queue URL"
        );
        let config =
            LoaderConfig::from_lookup(DataPoint::Polls, &lookup(&[DB, ("DLQ_URL", "q")])).unwrap();
        assert_eq!(
            (config.dlq_url.as_str(), config.function_name.as_str()),
            ("q", "load-polls")
        );
    }

    #[test]
    fn every_function_fails_fast_without_a_database() {
        let none = lookup(&[]);
        assert!(ApiConfig::from_lookup(&none).is_err());
        assert!(JobsConfig::from_lookup(&none).is_err());
        assert!(ReconcileConfig::from_lookup(&none).is_err());
        assert!(LoaderConfig::from_lookup(DataPoint::Qna, &none).is_err());
    }

    #[test]
    fn backfill_settings_are_checked() {
        let config = JobsConfig::from_lookup(&lookup(&[DB])).unwrap();
        assert_eq!(config.batch_lines, DEFAULT_BATCH_LINES);
        assert!(config.queues.0.is_empty());
        let err =
            JobsConfig::from_lookup(&lookup(&[DB, ("BACKFILL_BATCH_LINES", "0")])).unwrap_err();
        assert!(err.to_string().contains("positive number"), "{err}");
        let all: Vec<(String, String)> = DataPoint::ALL
            .iter()
            .map(|dp| {
                (
                    format!("QUEUE_URL_{}", dp.as_str().to_uppercase()),
                    format!("q-{dp}"),
                )
            })
            .collect();
        let mut vars: Vec<(&str, &str)> =
            all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        vars.push(DB);
        let config = JobsConfig::from_lookup(&lookup(&vars)).unwrap();
        assert_eq!(config.queues.0.len(), DataPoint::ALL.len());
    }

    #[test]
    fn reconcile_repair_must_be_known() {
        let err = ReconcileConfig::from_lookup(&lookup(&[DB, ("RECONCILE_REPAIR", "later")]))
            .unwrap_err();
        assert!(err.to_string().starts_with("RECONCILE_REPAIR: "), "{err}");
        let config = ReconcileConfig::from_lookup(&lookup(&[
            DB,
            ("RECONCILE_REPAIR", "direct"),
            ("RECONCILE_SOURCE", "s3://x/{date}/"),
        ]))
        .unwrap();
        assert_eq!(config.default_repair, Some(Repair::Direct));
        assert_eq!(config.source_template.as_deref(), Some("s3://x/{date}/"));
        assert_eq!(config.error_retention_days, DEFAULT_ERROR_RETENTION_DAYS);
    }

    #[test]
    fn error_retention_is_a_positive_number_of_days() {
        let days = |text: &str| {
            ReconcileConfig::from_lookup(&lookup(&[DB, ("ERROR_RETENTION_DAYS", text)]))
                .map(|c| c.error_retention_days)
        };
        assert_eq!(days("7").unwrap(), 7);
        for bad in ["0", "-1", "30d", ""] {
            let err = days(bad).unwrap_err();
            assert!(err.to_string().starts_with("ERROR_RETENTION_DAYS"), "{err}");
        }
    }
}
