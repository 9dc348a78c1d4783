//! On-call operations: what the `warehouse status`, `warehouse dlq list |
//! redrive` and `warehouse errors` commands read and do (see
//! docs/RUNBOOK.md). The warehouse side reads the audit tables (`load_run`,
//! `event_ledger`, `error_event`, `reconcile_run`, `backfill_run`); the
//! queue side asks SQS, and CloudWatch for the age of a queue's oldest
//! message. Every time is relative to a `now_ms` the caller passes (the
//! CLI's is `store::now_ms()`), so tests fix the clock instead of sleeping.
//!
//! - `status`: the state of each data point, the last reconciliation and
//!   unfinished backfills.
//! - `dlq`: a dead-letter queue's messages peeked at, and moved back to
//!   their source queue.
//! - `errors`: `error_event` grouped by reason, with the newest examples.
//!
//! Built only with the `ops` feature (the CLI's): the Lambda functions never
//! need it, nor its CloudWatch client.

mod dlq;
mod errors;
mod status;

use std::collections::BTreeMap;
use std::fmt;

use crate::contract::{truncate_chars, without_anonymous_asker, DataPoint};
use crate::store::{ConfigError, DbError, Lookup};

pub use aws_sdk_cloudwatch as cloudwatch;
pub use dlq::{
    list_dead_letters, redrive, DeadLetter, DeadLetterList, RedriveHook, RedriveMethod,
    RedriveOptions, RedriveOutcome, REDRIVE_VISIBILITY_SECONDS,
};
pub use errors::{error_groups, ErrorExample, ErrorFilter, ErrorGroup, ErrorReport, REASONS};
pub use status::{
    add_queue_figures, warehouse_status, BackfillStatus, DataPointStatus, Found, LaneStatus,
    LastLoad, QueueStatus, ReconcileStatus, Status, UnfinishedReconcile,
};

/// How many bytes of a body the commands show.
pub const SHOWN_BODY_BYTES: usize = 1024;

/// A data point's queue and dead-letter queue, as far as they are configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueuePair {
    /// `QUEUE_URL_<DATA POINT>`: where its loader reads.
    pub queue: Option<String>,
    /// `DLQ_URL_<DATA POINT>`: where its poison goes.
    pub dlq: Option<String>,
}

/// `QUEUE_URL_ATTENDANCE` and the like (the names `redrive::QueueUrls` reads).
pub fn queue_variable(data_point: DataPoint) -> String {
    format!("QUEUE_URL_{}", data_point.as_str().to_uppercase())
}

/// `DLQ_URL_ATTENDANCE` and the like.
pub fn dlq_variable(data_point: DataPoint) -> String {
    format!("DLQ_URL_{}", data_point.as_str().to_uppercase())
}

/// Each data point's queues, those that are set.
pub fn queue_settings(lookup: Lookup) -> BTreeMap<DataPoint, QueuePair> {
    DataPoint::ALL
        .into_iter()
        .map(|dp| {
            let pair = QueuePair {
                queue: lookup(&queue_variable(dp)),
                dlq: lookup(&dlq_variable(dp)),
            };
            (dp, pair)
        })
        .collect()
}

/// The data point whose loader a `source` (of `load_run` or `error_event`)
/// names: the loaders record their function name, `load-attendance` locally
/// and `<stack>-LoadAttendanceFunction-<suffix>` on AWS. `None` for the
/// backfill (`backfill:<run>`), reconcile's repair and anything else.
pub fn loader_data_point(source: &str) -> Option<DataPoint> {
    if source.starts_with("backfill:") || source.starts_with("reconcile") {
        return None;
    }
    let squeezed: String = source
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    DataPoint::ALL
        .into_iter()
        .find(|dp| squeezed.contains(&format!("load{}", dp.as_str())))
}

/// A body as the commands show it: without an anonymous asker (scrubbed
/// before it is cut, while it may still parse) and cut to
/// [`SHOWN_BODY_BYTES`] at a character boundary; true when cut.
pub fn shown_body(body: &[u8]) -> (String, bool) {
    let scrubbed = without_anonymous_asker(body);
    let text = String::from_utf8_lossy(&scrubbed);
    // At most SHOWN_BODY_BYTES characters, then back to a boundary within
    // SHOWN_BODY_BYTES bytes.
    let mut kept = truncate_chars(&text, SHOWN_BODY_BYTES);
    let mut end = kept.len().min(SHOWN_BODY_BYTES);
    while !kept.is_char_boundary(end) {
        end -= 1;
    }
    kept = &kept[..end];
    (kept.to_string(), kept.len() < text.len())
}

/// Why an operation failed: a setting, the warehouse, or a queue.
#[derive(Debug)]
pub enum OpsError {
    Config(ConfigError),
    Db(DbError),
    /// An SQS or CloudWatch call failed; the text says which and why.
    Aws(String),
    /// A test seam stopped a redrive (see [`RedriveHook`]).
    Interrupted(String),
}

impl fmt::Display for OpsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpsError::Config(e) => write!(f, "{e}"),
            OpsError::Db(e) => write!(f, "{e}"),
            OpsError::Aws(e) => write!(f, "{e}"),
            OpsError::Interrupted(e) => write!(f, "interrupted: {e}"),
        }
    }
}

impl std::error::Error for OpsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpsError::Config(e) => Some(e),
            OpsError::Db(e) => Some(e),
            OpsError::Aws(_) | OpsError::Interrupted(_) => None,
        }
    }
}

impl From<DbError> for OpsError {
    fn from(e: DbError) -> OpsError {
        OpsError::Db(e)
    }
}

impl From<ConfigError> for OpsError {
    fn from(e: ConfigError) -> OpsError {
        OpsError::Config(e)
    }
}

/// An AWS SDK error as one line: what was being done, and the service's
/// code and message.
fn aws_error<E>(doing: &str, error: E) -> OpsError
where
    E: std::error::Error + Send + Sync + 'static,
{
    OpsError::Aws(format!(
        "{doing}: {}",
        aws_sdk_sqs::error::DisplayErrorContext(error)
    ))
}

/// A TIMESTAMP(3) column (or expression) as milliseconds since the epoch,
/// in SQL (sessions are UTC).
fn ms(column: &str) -> String {
    format!("CAST(ROUND(UNIX_TIMESTAMP({column}) * 1000) AS SIGNED)")
}

/// A database query's failure, saying what was being read.
fn db_error(doing: &'static str) -> impl Fn(mysql::Error) -> OpsError {
    move |e| OpsError::Db(DbError::caused(doing, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loader_sources_name_their_data_point() {
        for (source, dp) in [
            ("load-attendance", Some(DataPoint::Attendance)),
            ("load-presentation", Some(DataPoint::Presentation)),
            (
                "warehouse-LoadPresentationsFunction-AbC123",
                Some(DataPoint::Presentation),
            ),
            ("prod-LoadQnaFunction-x", Some(DataPoint::Qna)),
            (
                "polls-stack-LoadSurveysFunction-x",
                Some(DataPoint::Surveys),
            ),
            ("backfill:load-polls-again", None),
            ("reconcile-repair", None),
            ("something", None),
        ] {
            assert_eq!(loader_data_point(source), dp, "{source}");
        }
    }

    #[test]
    fn shown_bodies_are_scrubbed_then_cut_at_a_character() {
        let anonymous =
            r#"{"type":"QuestionAsked","data":{"viewerId":"u-secret","anonymous":true}}"#;
        let (text, cut) = shown_body(anonymous.as_bytes());
        assert!(!text.contains("u-secret") && !cut, "{text}");
        // Past the limit, `anonymous` after the cut: cutting first would
        // leave a text that neither parses nor says it is anonymous.
        let long = format!(
            r#"{{"type":"QuestionAsked","data":{{"viewerId":"u-secret","text":"{}","anonymous":true}}}}"#,
            "é".repeat(600)
        );
        let (text, cut) = shown_body(long.as_bytes());
        assert!(cut && text.len() <= SHOWN_BODY_BYTES && text.len() > 1000);
        assert!(!text.contains("u-secret"));
        assert_eq!(shown_body(b"short"), ("short".to_string(), false));
    }

    #[test]
    fn queue_settings_read_both_names_per_data_point() {
        let lookup = |name: &str| match name {
            "QUEUE_URL_POLLS" => Some("q".to_string()),
            "DLQ_URL_POLLS" => Some("d".to_string()),
            "DLQ_URL_QNA" => Some("dq".to_string()),
            _ => None,
        };
        let settings = queue_settings(&lookup);
        assert_eq!(settings[&DataPoint::Polls].queue.as_deref(), Some("q"));
        assert_eq!(settings[&DataPoint::Polls].dlq.as_deref(), Some("d"));
        assert_eq!(settings[&DataPoint::Qna].queue, None);
        assert_eq!(settings[&DataPoint::Qna].dlq.as_deref(), Some("dq"));
        assert_eq!(settings[&DataPoint::Attendance], QueuePair::default());
    }
}
