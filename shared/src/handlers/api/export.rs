//! The viewer list's export (ANALYTICS.md §7): `GET
//! /tenants/{tenantId}/presentations/{presentationId}/viewers/export` writes
//! every row matching the filters, in the sort's order, as CSV to the export
//! bucket, and answers `{"rows", "url", "expiresAt"}`: the URL a pre-signed
//! GET of the file, valid for 15 minutes.
//!
//! The rows go from the database to the bucket as they are read
//! ([`read::viewer_csv`] writing into a [`store::ObjectWriter`]): memory
//! holds one 5 MiB part, whatever the number of rows.
//!
//! Decisions where the issue is silent:
//! - The key is `viewer-exports/{tenant}/{presentation}/{32 hex digits}.csv`:
//!   128 random bits from the thread's cryptographic generator, so no key
//!   can be guessed; the ids are percent-encoded (all but ASCII letters,
//!   digits, `-` and `_`), so no id can add or leave a folder of the key.
//! - The file is `text/csv; charset=utf-8`, with `Content-Disposition:
//!   attachment; filename="viewers-{presentation}.csv"` (characters other
//!   than ASCII letters, digits, `-`, `_` and `.` as `_`, at most 100).
//! - `expiresAt` is the API clock's now plus 15 minutes, the instant the URL
//!   is signed from, printed as every time of the API.
//! - Checks: as the inline CSV's (claim, route, method, tenant, parameters,
//!   then flags and presentation), except that a function without
//!   `VIEWER_EXPORT_BUCKET` answers 503 before touching the database.
//! - Each request writes a new file, complete before the answer; a failed
//!   export leaves none (its upload aborted). The bucket's lifecycle rule
//!   deletes files after a day.
//! - An export is bounded as any request: the function's timeout and the
//!   statement time limit (the rows stream while the statement runs).

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::request::{check_csv_served, ApiQuery};
use crate::contract::format_time;
use crate::read::{self, AnalyticsError, CsvOutcome};
use crate::store::{self, Database, ObjectTarget, ObjectWriteError, ObjectWriter, MIN_PART_BYTES};

/// How long the URL of an export may be fetched.
pub const EXPORT_URL_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// The folder of the bucket the exports are written under.
pub const EXPORT_FOLDER: &str = "viewer-exports/";

/// The body of a 503 when the function has no export bucket.
pub(super) const NOT_CONFIGURED: &str = "the viewer export is not configured: VIEWER_EXPORT_BUCKET is not set in the API function's environment; set it to the export bucket's name (template.yaml sets it to ViewerExportBucket), or ask GET …/viewers?format=csv for up to 10,000 rows inline";

/// The body of a 503 when the bucket could not be written (the details go
/// to the log only).
pub(super) const BUCKET_UNAVAILABLE: &str =
    "the export bucket could not be written right now; try again shortly";

/// Where the API writes exports: the bucket, and the S3 client built once
/// per container.
#[derive(Clone, Debug)]
pub struct ViewerExports {
    s3: aws_sdk_s3::Client,
    bucket: String,
    part_bytes: usize,
}

impl ViewerExports {
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> ViewerExports {
        ViewerExports {
            s3,
            bucket: bucket.into(),
            part_bytes: MIN_PART_BYTES,
        }
    }

    /// The bucket written to.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

/// What writing an export failed on.
pub(super) enum ExportError {
    /// Its query: a 400, 404, 503 or 504 as for any read.
    Analytics(AnalyticsError),
    /// The bucket.
    Storage(ObjectWriteError),
}

/// A written export: where, and how much.
pub(super) struct Written {
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
    pub parts: usize,
}

/// Writes the export a checked request asks for. Blocks: call it from a
/// blocking thread of the runtime (its parts are sent on the runtime).
pub(super) fn write(
    db: &Database,
    exports: &ViewerExports,
    query: &ApiQuery,
) -> Result<Written, ExportError> {
    let ApiQuery::ViewerExport {
        tenant_id,
        presentation_id,
        query,
        shadow,
    } = query
    else {
        return Err(ExportError::Analytics(AnalyticsError::BadRequest(
            "not an export".to_string(),
        )));
    };
    let mut conn = db
        .conn()
        .map_err(|e| ExportError::Analytics(AnalyticsError::Database(e.to_string())))?;
    check_csv_served(
        &mut conn,
        tenant_id,
        *shadow,
        "GET …/viewers?format=json for the rows as JSON",
    )
    .map_err(ExportError::Analytics)?;
    let key = object_key(tenant_id, presentation_id);
    let target = ObjectTarget {
        bucket: exports.bucket.clone(),
        key: key.clone(),
        content_type: "text/csv; charset=utf-8".to_string(),
        content_disposition: Some(format!(
            "attachment; filename=\"{}\"",
            file_name(presentation_id)
        )),
    };
    let mut writer = ObjectWriter::new(exports.s3.clone(), target, exports.part_bytes);
    let outcome = read::viewer_csv(
        &mut conn,
        tenant_id,
        presentation_id,
        query,
        None,
        &mut writer,
    );
    let rows = match outcome {
        Ok(CsvOutcome::Complete(rows)) => rows,
        // Without a maximum every row is written, so this cannot come; were
        // it to, the file is incomplete and no URL is given.
        Ok(CsvOutcome::TooMany) => {
            writer.abort();
            return Err(ExportError::Analytics(AnalyticsError::Database(
                "the export stopped before its last row".to_string(),
            )));
        }
        Err(error) => {
            // A write the bucket refused reaches here as the CSV's error:
            // the writer knows it was the bucket's.
            let failure = writer.failure().cloned();
            writer.abort();
            return Err(match failure {
                Some(failure) => ExportError::Storage(failure),
                None => ExportError::Analytics(error),
            });
        }
    };
    let parts = writer.parts_sent();
    let bytes = writer.finish().map_err(ExportError::Storage)?;
    Ok(Written {
        key,
        rows,
        bytes,
        // The last part, sent by `finish`, or the one `PutObject`.
        parts: parts + 1,
    })
}

/// The answer to a written export: its rows and a URL to fetch it by, signed
/// at `now_ms`.
pub(super) async fn answer(
    exports: &ViewerExports,
    written: &Written,
    now_ms: i64,
) -> Result<Value, ObjectWriteError> {
    let start = SystemTime::UNIX_EPOCH + Duration::from_millis(now_ms.max(0) as u64);
    let url = store::presigned_get(
        &exports.s3,
        &exports.bucket,
        &written.key,
        start,
        EXPORT_URL_LIFETIME,
    )
    .await?;
    Ok(json!({
        "rows": written.rows,
        "url": url,
        "expiresAt": format_time(now_ms + EXPORT_URL_LIFETIME.as_millis() as i64),
    }))
}

/// A new, unguessable key of the tenant's presentation's export.
fn object_key(tenant_id: &str, presentation_id: &str) -> String {
    format!(
        "{EXPORT_FOLDER}{}/{}/{:032x}.csv",
        key_segment(tenant_id),
        key_segment(presentation_id),
        rand::random::<u128>()
    )
}

/// An id as one folder of a key: ASCII letters, digits, `-` and `_` as they
/// are, every other byte `%XX` (so `/`, `.` and `..` cannot make folders).
fn key_segment(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The name a browser saves the file as: nothing a header or a file system
/// could misread.
fn file_name(presentation_id: &str) -> String {
    let safe: String = presentation_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    format!("viewers-{safe}.csv")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_each_id_in_its_folder_and_cannot_be_guessed() {
        let key = object_key("acme", "prs-acm-0000");
        let rest = key
            .strip_prefix("viewer-exports/acme/prs-acm-0000/")
            .unwrap();
        let hex = rest.strip_suffix(".csv").unwrap();
        assert_eq!(hex.len(), 32);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
        assert_ne!(key, object_key("acme", "prs-acm-0000"));
        assert_eq!(key_segment("a/../b c"), "a%2F%2E%2E%2Fb%20c");
        assert_eq!(key_segment(".."), "%2E%2E");
        assert_eq!(key_segment("Zoë_1"), "Zo%C3%AB_1");
        let key = object_key("t/..", "../p");
        assert_eq!(key.matches('/').count(), 3, "{key}");
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name("prs-acm-0000"), "viewers-prs-acm-0000.csv");
        assert_eq!(file_name("a\"b;\r\nc/Zoë"), "viewers-a_b___c_Zo_.csv");
        assert_eq!(
            file_name(&"p".repeat(300)).len(),
            "viewers-.csv".len() + 100
        );
    }
}
