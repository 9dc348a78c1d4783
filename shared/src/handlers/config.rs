//! Each function's configuration: read from the environment once, at
//! start-up, in this one place, and failing fast with a message that names
//! the variable and what to set. Tests read them from a map (`from_lookup`).

use std::time::Duration;

use crate::contract::DataPoint;
use crate::export::ExportScope;
use crate::jobs::backfill::{DEFAULT_BATCH_BYTES, DEFAULT_BATCH_LINES};
use crate::jobs::reconcile::Repair;
use crate::redrive::QueueUrls;
use crate::store::{
    env_lookup, required, unpinned_sessions, ConfigError, DatabaseSettings, Lookup, SessionOptions,
};

/// The API's statement time limit when `API_STATEMENT_TIME_LIMIT_MS` is
/// not set: half the function's 10 s timeout (template.yaml).
pub const DEFAULT_API_STATEMENT_TIME_LIMIT: Duration = Duration::from_secs(5);

/// The session options of a function that sets no time limit: `DB_SESSIONS`.
fn session_options(lookup: Lookup) -> Result<SessionOptions, ConfigError> {
    Ok(SessionOptions {
        unpinned: unpinned_sessions(lookup)?,
        ..SessionOptions::default()
    })
}

/// An SQS loader (`load-*`).
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    pub database: DatabaseSettings,
    pub session: SessionOptions,
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
            session: session_options(lookup)?,
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
    /// `DB_SESSIONS`, and the statement time limit
    /// (`API_STATEMENT_TIME_LIMIT_MS`, default 5,000): every statement the
    /// API runs is cut off by the server after it.
    pub session: SessionOptions,
    /// `VIEWER_EXPORT_BUCKET`: where the viewer list's export route writes
    /// its files (ANALYTICS.md §7). Unset, that route answers 503 saying so
    /// and the other routes work; set to something that is no bucket name,
    /// the function does not start.
    pub viewer_export_bucket: Option<String>,
}

/// The variable naming the export bucket of the viewer list.
pub const VIEWER_EXPORT_BUCKET: &str = "VIEWER_EXPORT_BUCKET";

impl ApiConfig {
    pub fn from_env() -> Result<ApiConfig, ConfigError> {
        ApiConfig::from_lookup(&env_lookup)
    }

    pub fn from_lookup(lookup: Lookup) -> Result<ApiConfig, ConfigError> {
        let limit = match lookup("API_STATEMENT_TIME_LIMIT_MS") {
            None => DEFAULT_API_STATEMENT_TIME_LIMIT,
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    ConfigError(format!(
                        "API_STATEMENT_TIME_LIMIT_MS must be a positive number of milliseconds, below the function's timeout; got {text:?}"
                    ))
                })?,
        };
        let viewer_export_bucket = lookup(VIEWER_EXPORT_BUCKET);
        if let Some(bucket) = &viewer_export_bucket {
            crate::store::check_bucket_name(bucket).map_err(|e| {
                ConfigError(format!(
                    "{VIEWER_EXPORT_BUCKET}: {e}: set it to the name of the viewer exports' bucket, or leave it unset to turn the export route off"
                ))
            })?;
        }
        Ok(ApiConfig {
            database: DatabaseSettings::from_lookup(lookup)?,
            session: SessionOptions {
                statement_time_limit: Some(limit),
                ..session_options(lookup)?
            },
            viewer_export_bucket,
        })
    }
}

/// What the jobs' functions share: the exports they may read, and the
/// backfill's settings, which the reconcile function's repairs use too.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    pub database: DatabaseSettings,
    /// `EXPORT_BUCKET` and `EXPORT_PREFIX`: the only exports the functions
    /// read (S3 objects in that bucket under that folder); anything else a
    /// payload names is refused before it is read.
    pub exports: ExportScope,
    pub session: SessionOptions,
    /// Only enqueue runs and queue repairs need them: empty unless all five
    /// `QUEUE_URL_*` are set, and a run that needs them is refused then.
    pub queues: QueueUrls,
    /// `BACKFILL_BATCH_LINES`: lines per transaction.
    pub batch_lines: usize,
    /// `BACKFILL_BATCH_BYTES`: bytes of lines per transaction, at most.
    pub batch_bytes: usize,
}

impl JobsConfig {
    pub fn from_env() -> Result<JobsConfig, ConfigError> {
        JobsConfig::from_lookup(&env_lookup)
    }

    pub fn from_lookup(lookup: Lookup) -> Result<JobsConfig, ConfigError> {
        let database = DatabaseSettings::from_lookup(lookup)?;
        let bucket = required(
            lookup,
            "EXPORT_BUCKET",
            "the S3 bucket of the exports (the backfill and reconcile functions read nothing else)",
        )?;
        let prefix = required(
            lookup,
            "EXPORT_PREFIX",
            "the exports' folder in EXPORT_BUCKET, e.g. exports/ (/ for the whole bucket); the functions read nothing outside it",
        )?;
        let exports = ExportScope::s3_folder(&bucket, &prefix)
            .map_err(|e| ConfigError(format!("EXPORT_BUCKET and EXPORT_PREFIX: {e}")))?;
        Ok(JobsConfig {
            database,
            exports,
            session: session_options(lookup)?,
            queues: QueueUrls::from_lookup(lookup).unwrap_or_default(),
            batch_lines: positive(lookup, "BACKFILL_BATCH_LINES", "lines", DEFAULT_BATCH_LINES)?,
            batch_bytes: positive(
                lookup,
                "BACKFILL_BATCH_BYTES",
                "bytes of lines",
                DEFAULT_BATCH_BYTES,
            )?,
        })
    }
}

/// A positive number of `what` per transaction, `default` when unset.
fn positive(lookup: Lookup, name: &str, what: &str, default: usize) -> Result<usize, ConfigError> {
    match lookup(name) {
        None => Ok(default),
        Some(text) => text.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            ConfigError(format!(
                "{name} must be a positive number of {what} per transaction, got {text:?}"
            ))
        }),
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
        let jobs = JobsConfig::from_lookup(lookup)?;
        let source_template = lookup("RECONCILE_SOURCE");
        if let Some(template) = &source_template {
            // Any day's export must be one the function may read.
            jobs.exports
                .admit(&template.replace("{date}", "2000-01-01"))
                .map_err(|e| ConfigError(format!("RECONCILE_SOURCE: {e}")))?;
        }
        Ok(ReconcileConfig {
            jobs,
            source_template,
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
    const BUCKET: (&str, &str) = ("EXPORT_BUCKET", "exports-bucket");
    const PREFIX: (&str, &str) = ("EXPORT_PREFIX", "nightly/");

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
    fn the_job_functions_need_their_exports_folder_and_say_so() {
        let err = JobsConfig::from_lookup(&lookup(&[DB, PREFIX])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("EXPORT_BUCKET is not set: set it to the S3 bucket"),
            "{err}"
        );
        let err = ReconcileConfig::from_lookup(&lookup(&[DB, BUCKET])).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("EXPORT_PREFIX is not set: set it to the exports' folder"),
            "{err}"
        );
        let err = JobsConfig::from_lookup(&lookup(&[DB, BUCKET, ("EXPORT_PREFIX", "a/../b")]))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("EXPORT_BUCKET and EXPORT_PREFIX: the prefix"),
            "{err}"
        );
        let config = JobsConfig::from_lookup(&lookup(&[DB, BUCKET, PREFIX])).unwrap();
        assert_eq!(
            config.exports,
            ExportScope::s3_folder("exports-bucket", "nightly/").unwrap()
        );
    }

    #[test]
    fn the_api_has_a_statement_time_limit() {
        let config = ApiConfig::from_lookup(&lookup(&[DB])).unwrap();
        assert_eq!(
            config.session.statement_time_limit,
            Some(DEFAULT_API_STATEMENT_TIME_LIMIT)
        );
        assert!(!config.session.unpinned);
        let config = ApiConfig::from_lookup(&lookup(&[
            DB,
            ("API_STATEMENT_TIME_LIMIT_MS", "1500"),
            ("DB_SESSIONS", "unpinned"),
        ]))
        .unwrap();
        assert_eq!(
            config.session.statement_time_limit,
            Some(Duration::from_millis(1500))
        );
        assert!(config.session.unpinned);
        for bad in ["0", "-1", "5s"] {
            let err = ApiConfig::from_lookup(&lookup(&[DB, ("API_STATEMENT_TIME_LIMIT_MS", bad)]))
                .unwrap_err();
            assert!(err.to_string().contains("positive number"), "{err}");
        }
        let err = LoaderConfig::from_lookup(
            DataPoint::Polls,
            &lookup(&[DB, ("DLQ_URL", "q"), ("DB_SESSIONS", "pooled")]),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("DB_SESSIONS must be"), "{err}");
        // Only the API is limited.
        let jobs = JobsConfig::from_lookup(&lookup(&[DB, BUCKET, PREFIX])).unwrap();
        assert_eq!(jobs.session.statement_time_limit, None);
    }

    #[test]
    fn the_api_s_export_bucket_is_optional_but_must_be_a_bucket_name() {
        let config = ApiConfig::from_lookup(&lookup(&[DB])).unwrap();
        assert_eq!(config.viewer_export_bucket, None);
        let config =
            ApiConfig::from_lookup(&lookup(&[DB, (VIEWER_EXPORT_BUCKET, "viewer-exports")]))
                .unwrap();
        assert_eq!(
            config.viewer_export_bucket.as_deref(),
            Some("viewer-exports")
        );
        for bad in ["Viewer_Exports", "s3://viewer-exports", "ab"] {
            let err =
                ApiConfig::from_lookup(&lookup(&[DB, (VIEWER_EXPORT_BUCKET, bad)])).unwrap_err();
            assert!(
                err.to_string().starts_with("VIEWER_EXPORT_BUCKET: \"")
                    && err.to_string().contains("is not an S3 bucket name"),
                "{err}"
            );
        }
    }

    #[test]
    fn backfill_settings_are_checked() {
        let config = JobsConfig::from_lookup(&lookup(&[DB, BUCKET, PREFIX])).unwrap();
        assert_eq!(config.batch_lines, DEFAULT_BATCH_LINES);
        assert_eq!(config.batch_bytes, DEFAULT_BATCH_BYTES);
        assert!(config.queues.0.is_empty());
        for (name, value) in [
            ("BACKFILL_BATCH_LINES", "0"),
            ("BACKFILL_BATCH_BYTES", "8MiB"),
        ] {
            let err =
                JobsConfig::from_lookup(&lookup(&[DB, BUCKET, PREFIX, (name, value)])).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("{name} must be a positive number")),
                "{err}"
            );
        }
        let config = JobsConfig::from_lookup(&lookup(&[
            DB,
            BUCKET,
            PREFIX,
            ("BACKFILL_BATCH_BYTES", "1000"),
        ]))
        .unwrap();
        assert_eq!(config.batch_bytes, 1000);
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
        vars.extend([DB, BUCKET, PREFIX]);
        let config = JobsConfig::from_lookup(&lookup(&vars)).unwrap();
        assert_eq!(config.queues.0.len(), DataPoint::ALL.len());
    }

    #[test]
    fn reconcile_repair_must_be_known() {
        let err = ReconcileConfig::from_lookup(&lookup(&[
            DB,
            BUCKET,
            PREFIX,
            ("RECONCILE_REPAIR", "later"),
        ]))
        .unwrap_err();
        assert!(err.to_string().starts_with("RECONCILE_REPAIR: "), "{err}");
        let config = ReconcileConfig::from_lookup(&lookup(&[
            DB,
            BUCKET,
            PREFIX,
            ("RECONCILE_REPAIR", "direct"),
            ("RECONCILE_SOURCE", "s3://exports-bucket/nightly/{date}/"),
        ]))
        .unwrap();
        assert_eq!(config.default_repair, Some(Repair::Direct));
        assert_eq!(
            config.source_template.as_deref(),
            Some("s3://exports-bucket/nightly/{date}/")
        );
        assert_eq!(config.error_retention_days, DEFAULT_ERROR_RETENTION_DAYS);
    }

    #[test]
    fn error_retention_is_a_positive_number_of_days() {
        let days = |text: &str| {
            ReconcileConfig::from_lookup(&lookup(&[
                DB,
                BUCKET,
                PREFIX,
                ("ERROR_RETENTION_DAYS", text),
            ]))
            .map(|c| c.error_retention_days)
        };
        assert_eq!(days("7").unwrap(), 7);
        for bad in ["0", "-1", "30d", ""] {
            let err = days(bad).unwrap_err();
            assert!(err.to_string().starts_with("ERROR_RETENTION_DAYS"), "{err}");
        }
    }

    #[test]
    fn the_nightly_source_must_be_in_the_exports_folder() {
        for outside in [
            "s3://other/nightly/{date}/",
            "/exports/{date}.jsonl",
            "s3://exports-bucket/{date}/",
        ] {
            let err = ReconcileConfig::from_lookup(&lookup(&[
                DB,
                BUCKET,
                PREFIX,
                ("RECONCILE_SOURCE", outside),
            ]))
            .unwrap_err();
            assert!(
                err.to_string().starts_with("RECONCILE_SOURCE: the export"),
                "{outside}: {err}"
            );
        }
    }
}
