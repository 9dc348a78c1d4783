//! `forget`: a viewer erased everywhere, for good (ANALYTICS.md §8), in one
//! transaction on a live warehouse:
//!
//! 1. the erasure guard, exclusively: in-flight loads finish first, later
//!    ones wait and then read the erasure (see `erasure.rs`);
//! 2. the erasure record (`viewer_erasure`: tenant, viewer id, when);
//! 3. the scrub of every column that can hold the viewer's name or email or
//!    tie them to a question ([`ERASABLE_COLUMNS`]): the presentation
//!    viewers' name and email, the questions' asker, the cached reports
//!    that show the asker, and the kept bodies of `error_event`.
//!
//! The repeat of an erasure does the same again (finding nothing more to
//! scrub, unless a body arrived by a path that could not know the id) and
//! answers the first erasure's time.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use sha2::{Digest, Sha256};

use crate::contract::{format_time, is_id, without_erased, ErasureReceipt};
use crate::store::{push_str_literal, run_script, str_literal, with_retry, Database, DbError};

use super::rejects::reason_without_quote;

/// Every column that can hold a viewer's name or email, or tie a viewer to
/// a question they asked, and how an erasure clears it. Every other text
/// or binary column of the schema is in [`OTHER_TEXT_COLUMNS`]; a test
/// checks the two lists cover the schema exactly, so a new column has to be
/// placed in one of them.
pub const ERASABLE_COLUMNS: &[(&str, &str, &str)] = &[
    (
        "fact_presentation_viewer",
        "name",
        "set to NULL; later joins write NULL",
    ),
    (
        "fact_presentation_viewer",
        "email",
        "set to NULL; later joins write NULL",
    ),
    (
        "dim_question",
        "asker_viewer_key",
        "set to NULL (and anonymous to TRUE); later questions are stored anonymous",
    ),
    (
        "agg_presentation_report",
        "report",
        "the cached reports showing the asker are replaced by a tombstone no reader serves",
    ),
    (
        "error_event",
        "raw_body",
        "the erased profile values and question ties are taken out (hash recomputed); later bodies are scrubbed before they are kept",
    ),
    (
        "error_event",
        "reason",
        "the quoted value goes when the body was scrubbed",
    ),
];

/// The schema's other text and binary columns, and why none can hold a
/// viewer's name or email (ids, normalised attributes, other people, hashes,
/// bookkeeping).
pub const OTHER_TEXT_COLUMNS: &[(&str, &str, &str)] = &[
    ("dim_presentation", "presentation_id", "an id"),
    ("dim_presentation", "tenant_id", "an id"),
    ("dim_presentation", "title", "the presentation's"),
    ("dim_presentation", "presenter_id", "the presenter's"),
    ("dim_presentation", "presenter_name", "the presenter's"),
    ("dim_presentation", "timezone", "an IANA name"),
    ("dim_viewer", "tenant_id", "an id"),
    ("dim_viewer", "viewer_id", "the viewer id, kept by §8"),
    ("fact_session", "session_id", "an id"),
    ("fact_session", "device", "normalised attribute, kept by §8"),
    (
        "fact_session",
        "country",
        "normalised attribute, kept by §8",
    ),
    ("fact_session", "department", "attribute kept by §8"),
    (
        "fact_presentation_viewer",
        "department",
        "attribute kept by §8",
    ),
    (
        "fact_presentation_viewer",
        "country",
        "attribute kept by §8",
    ),
    ("fact_presentation_viewer", "device", "attribute kept by §8"),
    ("dim_poll", "poll_id", "an id"),
    ("dim_poll", "question", "the poll's text"),
    ("dim_poll_option", "poll_id", "an id"),
    ("dim_poll_option", "option_id", "an option id"),
    ("dim_poll_option", "text", "the option's text"),
    ("fact_poll_vote", "poll_id", "an id"),
    ("fact_poll_vote_option", "option_id", "an option id"),
    ("dim_survey", "survey_id", "an id"),
    ("dim_survey", "title", "the survey's text"),
    ("dim_survey_question", "survey_id", "an id"),
    ("dim_survey_question", "question_id", "an id"),
    ("dim_survey_question", "kind", "a kind"),
    ("dim_survey_question", "text", "the survey's text"),
    ("dim_survey_question_option", "survey_id", "an id"),
    ("dim_survey_question_option", "option_id", "an option id"),
    ("dim_survey_question_option", "text", "the option's text"),
    ("fact_survey_response", "survey_id", "an id"),
    ("fact_survey_answer", "question_id", "an id"),
    (
        "fact_survey_answer",
        "text_answer",
        "the answer a viewer typed; responses stay by §8",
    ),
    ("fact_survey_answer_option", "option_id", "an option id"),
    ("dim_question", "question_id", "an id"),
    ("fact_question_upvote", "question_id", "an id"),
    (
        "dim_question",
        "text",
        "the question, which stays (anonymous) by §8",
    ),
    ("dim_question", "status", "a status"),
    ("dim_question", "answered_by_id", "the answerer's"),
    ("dim_question", "answered_by_name", "the answerer's"),
    ("dim_question", "answer_method", "a method"),
    ("event_ledger", "stream_id", "an id"),
    ("event_ledger", "tenant_id", "an id"),
    ("event_ledger", "data_point", "a data point"),
    ("event_ledger", "event_type", "a type"),
    (
        "event_ledger",
        "content_hash",
        "SHA-256 of a whole event: tells repeats from conflicts",
    ),
    ("error_event", "source", "a loader or run"),
    ("error_event", "body_sha256", "of the scrubbed body"),
    ("error_event", "kind", "a kind"),
    ("error_event", "stream_id", "an id"),
    ("load_run", "source", "a loader or run"),
    ("backfill_run", "run_id", "an id"),
    ("backfill_run", "source", "an export's path"),
    ("backfill_run", "mode", "a mode"),
    (
        "backfill_run",
        "options_json",
        "filters: tenant, presentation, dates",
    ),
    ("backfill_run", "status", "a status"),
    ("backfill_run", "counters_json", "counts"),
    ("backfill_lane", "run_id", "an id"),
    ("backfill_lane", "counters_json", "counts"),
    ("reconcile_run", "source", "an export's path"),
    ("reconcile_run", "repair_mode", "a mode"),
    ("reconcile_run", "summary_json", "counts"),
    ("reconcile_run", "progress_json", "offsets and counts"),
    ("reconcile_discrepancy", "stream_id", "an id"),
    ("reconcile_discrepancy", "kind", "a kind"),
    ("reconcile_discrepancy", "data_point", "a data point"),
    ("reconcile_discrepancy", "tenant_id", "an id"),
    ("reconcile_run_stream", "tenant_id", "an id"),
    ("reconcile_run_stream", "stream_id", "an id"),
    ("reconcile_run_stream", "versions", "bits"),
    ("reconcile_run_stream", "blocks", "checksums"),
    ("feature_flag", "tenant_id", "an id"),
    ("feature_flag", "data_point", "a data point"),
    ("feature_flag", "state", "a state"),
    ("engagement_weight", "tenant_id", "an id"),
    ("viewer_erasure", "tenant_id", "the erasure record: an id"),
    ("viewer_erasure", "viewer_id", "the erasure record: an id"),
    ("schema_migrations", "name", "a file name"),
    ("schema_migrations", "checksum", "a hash"),
];

/// Why a viewer could not be forgotten.
#[derive(Debug)]
pub enum ForgetError {
    /// The tenant or viewer id is not an id of EVENTS.md.
    Invalid(String),
    Database(DbError),
}

impl fmt::Display for ForgetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForgetError::Invalid(message) => f.write_str(message),
            ForgetError::Database(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for ForgetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ForgetError::Invalid(_) => None,
            ForgetError::Database(error) => Some(error),
        }
    }
}

/// Erases viewer `viewer_id` of tenant `tenant_id` (ANALYTICS.md §8) and
/// returns the receipt; `now_ms` is the erasure's time when it is the
/// first. Retries transient failures (a lock wait included) until
/// `deadline`.
pub fn forget(
    db: &Database,
    tenant_id: &str,
    viewer_id: &str,
    now_ms: i64,
    deadline: Instant,
) -> Result<ErasureReceipt, ForgetError> {
    for (what, id) in [("tenant", tenant_id), ("viewer", viewer_id)] {
        if !is_id(id) {
            return Err(ForgetError::Invalid(format!(
                "the {what} id must be 1 to 64 characters, neither beginning nor ending with white space, got {:?}",
                crate::contract::abbreviate(id, 80)
            )));
        }
    }
    let (receipt, _) = with_retry(db, deadline, |conn| {
        // A lock wait (the guard, behind loads in flight) ends before the
        // deadline, as a transient failure to retry while time remains.
        let seconds = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1))
            .as_secs()
            .clamp(1, 50);
        conn.query_drop(format!("SET SESSION innodb_lock_wait_timeout = {seconds}"))?;
        let result = conn
            .start_transaction(mysql::TxOpts::default())
            .and_then(|mut tx| {
                let receipt = erase(&mut tx, tenant_id, viewer_id, now_ms)?;
                tx.commit()?;
                Ok(receipt)
            });
        let _ = conn.query_drop("SET SESSION innodb_lock_wait_timeout = DEFAULT");
        result
    })
    .map_err(ForgetError::Database)?;
    tracing::info!(
        tenant = tenant_id,
        known = receipt.known,
        erased_at = %receipt.erased_at,
        "viewer forgotten"
    );
    Ok(receipt)
}

/// The erasure's transaction, guard first.
fn erase(
    tx: &mut impl Queryable,
    tenant_id: &str,
    viewer_id: &str,
    now_ms: i64,
) -> Result<ErasureReceipt, mysql::Error> {
    let (tenant, viewer) = (str_literal(tenant_id), str_literal(viewer_id));
    let mut outcomes = run_script(
        tx,
        &[
            "SELECT id FROM erasure_guard WHERE id = 1 FOR UPDATE".to_string(),
            format!(
                "INSERT INTO viewer_erasure (tenant_id, viewer_id, erased_at_ms) VALUES ({tenant}, {viewer}, {now_ms}) \
                 ON DUPLICATE KEY UPDATE erased_at_ms = erased_at_ms"
            ),
            format!(
                "SELECT erased_at_ms FROM viewer_erasure WHERE tenant_id = {tenant} AND viewer_id = {viewer}"
            ),
            format!(
                "SELECT viewer_key FROM dim_viewer WHERE tenant_id = {tenant} AND viewer_id = {viewer}"
            ),
            format!("SELECT presentation_key FROM dim_presentation WHERE tenant_id = {tenant}"),
        ],
    )?;
    let mut rows = |index: usize| std::mem::take(&mut outcomes[index].rows);
    let erased_at_ms: i64 = rows(2)
        .into_iter()
        .next()
        .map(mysql::from_row_opt)
        .transpose()?
        .unwrap_or(now_ms);
    let viewer_key: Option<u64> = rows(3)
        .into_iter()
        .next()
        .map(mysql::from_row_opt)
        .transpose()?;
    let presentations: Vec<u64> = rows(4)
        .into_iter()
        .map(mysql::from_row_opt)
        .collect::<Result<_, _>>()?;

    let mut emails = Vec::new();
    if let Some(key) = viewer_key {
        emails = scrub_facts(tx, key, &presentations)?;
    }
    let bodies = scrub_bodies(tx, tenant_id, viewer_id, &emails)?;
    Ok(ErasureReceipt {
        tenant_id: tenant_id.to_string(),
        viewer_id: viewer_id.to_string(),
        known: viewer_key.is_some() || bodies > 0,
        erased_at: format_time(erased_at_ms),
    })
}

fn key_list(keys: &[u64]) -> String {
    keys.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Clears the viewer's name and email and their questions' tie; returns the
/// emails that were there (to find them in kept bodies).
fn scrub_facts(
    tx: &mut impl Queryable,
    viewer_key: u64,
    presentations: &[u64],
) -> Result<Vec<String>, mysql::Error> {
    // By primary key (presentation, viewer) and by the asker index
    // (presentation, asker): the tenant's presentations, in chunks.
    let mut reads = Vec::new();
    for chunk in presentations.chunks(1000) {
        let keys = key_list(chunk);
        reads.push(format!(
            "SELECT DISTINCT email FROM fact_presentation_viewer WHERE presentation_key IN ({keys}) \
             AND viewer_key = {viewer_key} AND email IS NOT NULL"
        ));
        reads.push(format!(
            "SELECT DISTINCT presentation_key FROM dim_question WHERE presentation_key IN ({keys}) \
             AND asker_viewer_key = {viewer_key}"
        ));
    }
    let mut emails = Vec::new();
    let mut asked_in: Vec<u64> = Vec::new();
    for (i, outcome) in run_script(tx, &reads)?.into_iter().enumerate() {
        for row in outcome.rows {
            if i % 2 == 0 {
                emails.push(mysql::from_row_opt::<String>(row)?);
            } else {
                asked_in.push(mysql::from_row_opt::<u64>(row)?);
            }
        }
    }
    let mut writes = Vec::new();
    for chunk in presentations.chunks(1000) {
        writes.push(format!(
            "UPDATE fact_presentation_viewer SET name = NULL, email = NULL WHERE presentation_key IN ({}) \
             AND viewer_key = {viewer_key} AND (name IS NOT NULL OR email IS NOT NULL)",
            key_list(chunk)
        ));
    }
    for chunk in asked_in.chunks(1000) {
        let keys = key_list(chunk);
        writes.push(format!(
            "UPDATE dim_question SET asker_viewer_key = NULL, anonymous = TRUE \
             WHERE presentation_key IN ({keys}) AND asker_viewer_key = {viewer_key}"
        ));
        // The reports of those presentations showed the asker: a new
        // revision makes every cached one stale, and a tombstone (format 0,
        // which no reader serves) replaces it, so that a report computed
        // before this commit cannot be cached afterwards (it would be of an
        // older revision, and "newer wins").
        writes.push(format!(
            "UPDATE dim_presentation SET revision = revision + 1 WHERE presentation_key IN ({keys})"
        ));
        writes.push(format!(
            "INSERT INTO agg_presentation_report (presentation_key, source_revision, format_version, report) \
             SELECT presentation_key, revision, 0, '' FROM dim_presentation WHERE presentation_key IN ({keys}) \
             ON DUPLICATE KEY UPDATE report = VALUES(report), format_version = VALUES(format_version), \
             source_revision = VALUES(source_revision), refreshed_at = CURRENT_TIMESTAMP(3)"
        ));
    }
    run_script(tx, &writes)?;
    Ok(emails)
}

/// A kept body to scrub: id, source, line, body, reason, seen count, first
/// and last seen (seconds since the epoch, as text).
type KeptBody = (u64, String, u64, Vec<u8>, String, u64, String, String);

/// Scrubs the kept bodies that mention the viewer (or one of `emails`);
/// returns how many changed. Candidates are found in SQL (the id or an
/// email as bytes, or any escape, which could spell the id otherwise), then
/// read as the loads read them.
fn scrub_bodies(
    tx: &mut impl Queryable,
    tenant_id: &str,
    viewer_id: &str,
    emails: &[String],
) -> Result<u64, mysql::Error> {
    let mut wanted = format!(
        "INSTR(raw_body, {}) > 0 OR INSTR(raw_body, '\\\\') > 0",
        str_literal(viewer_id)
    );
    for email in emails.iter().filter(|e| !e.is_empty()) {
        wanted.push_str(" OR INSTR(raw_body, ");
        push_str_literal(&mut wanted, email);
        wanted.push_str(") > 0");
    }
    let candidates: Vec<KeptBody> = tx.query(format!(
        "SELECT error_id, source, line_number, raw_body, reason, seen_count, \
               CAST(UNIX_TIMESTAMP(first_seen) AS CHAR), CAST(UNIX_TIMESTAMP(last_seen) AS CHAR) \
             FROM error_event WHERE body_removed_at IS NULL AND ({wanted}) FOR UPDATE"
    ))?;
    let erased = |tenant: Option<&str>, viewer: &str| {
        viewer == viewer_id && tenant.is_none_or(|t| t == tenant_id)
    };
    let mut changed = 0;
    for (error_id, source, line, body, reason, seen, first_seen, last_seen) in candidates {
        let scrubbed = without_erased(&body, &erased, emails);
        if matches!(scrubbed, Cow::Borrowed(_)) {
            continue;
        }
        changed += 1;
        let hash = Sha256::digest(&scrubbed).to_vec();
        let reason = reason_without_quote(&reason);
        // The scrubbed body may equal another row's (the same line or
        // message kept twice, once with the values): one row, counts added.
        let twin: Option<u64> = tx.exec_first(
            "SELECT error_id FROM error_event WHERE source = ? AND body_sha256 = ? AND line_number = ? AND error_id <> ?",
            (&source, &hash, line, error_id),
        )?;
        match twin {
            Some(twin) => {
                tx.exec_drop(
                    "UPDATE error_event SET seen_count = seen_count + ?, \
                       first_seen = LEAST(first_seen, FROM_UNIXTIME(?)), last_seen = GREATEST(last_seen, FROM_UNIXTIME(?)) \
                     WHERE error_id = ?",
                    (seen, &first_seen, &last_seen, twin),
                )?;
                tx.exec_drop("DELETE FROM error_event WHERE error_id = ?", (error_id,))?;
            }
            None => tx.exec_drop(
                "UPDATE error_event SET raw_body = ?, body_sha256 = ?, reason = ? WHERE error_id = ?",
                (scrubbed.as_ref(), &hash, &reason, error_id),
            )?,
        }
    }
    Ok(changed)
}

/// Retention: removes the raw bodies of `error_event` rows not seen since
/// `before_ms` (milliseconds since the epoch), in chunks; the rows stay
/// (source, line, reason, kind, counts, times) with `body_removed_at` set.
/// Returns how many bodies went.
pub fn expire_error_bodies(conn: &mut impl Queryable, before_ms: i64) -> Result<u64, mysql::Error> {
    let before = format!(
        "FROM_UNIXTIME({}.{:03})",
        before_ms.div_euclid(1000),
        before_ms.rem_euclid(1000)
    );
    let mut removed = 0;
    loop {
        let affected = conn
            .query_iter(format!(
                "UPDATE error_event SET raw_body = '', body_removed_at = CURRENT_TIMESTAMP(3) \
                 WHERE body_removed_at IS NULL AND last_seen < {before} LIMIT 1000"
            ))?
            .affected_rows();
        removed += affected;
        if affected < 1000 {
            return Ok(removed);
        }
    }
}
