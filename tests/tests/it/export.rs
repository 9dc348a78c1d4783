//! The viewer list's export (ANALYTICS.md §7, `GET …/viewers/export`),
//! driven as Lambda drives the API, writing to moto's S3: the file its
//! pre-signed URL serves is the inline CSV and the CLI's, byte for byte; a
//! file larger than a part goes up in parts; the URL is signed for 15
//! minutes; and the route keeps the API's rules. The part writer
//! (`shared::store::ObjectWriter`) is checked on its own too.

use std::io::Write;
use std::time::Duration;

use aws_lambda_events::encodings::Body;
use mysql::prelude::Queryable;
use serde_json::{json, Value};
use shared::contract::{format_time, parse_rfc3339, DataPoint};
use shared::handlers::{AnalyticsApi, ViewerExports, EXPORT_FOLDER, VIEWER_EXPORT_BUCKET};
use shared::read::flags::{self, FlagState};
use shared::read::{viewer_csv, CsvOutcome, ViewerQuery, ViewerSort};
use shared::store::{ObjectTarget, ObjectWriter, MIN_PART_BYTES};

use crate::api::{call_as, event_json, get, lambda_event, parts, sample_api};
use crate::helpers::{sample_expected_live, TestDb};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// An S3 client of the moto server, as the functions build theirs.
async fn moto_s3() -> aws_sdk_s3::Client {
    shared::store::s3_client(&crate::helpers::aws_config().await)
}

/// A new, empty bucket on moto.
async fn new_bucket(s3: &aws_sdk_s3::Client) -> String {
    let name = format!("viewer-exports-{:08x}", rand::random::<u32>());
    s3.create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create a moto bucket");
    name
}

/// The API writing its exports to a new bucket on moto.
async fn exporting(api: AnalyticsApi) -> (AnalyticsApi, aws_sdk_s3::Client, String) {
    let s3 = moto_s3().await;
    let bucket = new_bucket(&s3).await;
    let api = api.with_exports(ViewerExports::new(s3.clone(), &bucket));
    (api, s3, bucket)
}

/// What an HTTP GET of a URL answered.
struct Fetched {
    status: u16,
    content_type: Option<String>,
    disposition: Option<String>,
    body: Vec<u8>,
}

/// A plain HTTP GET, as a browser or a spreadsheet fetches the URL.
async fn fetch(url: &str) -> Fetched {
    use http_body_util::{BodyExt, Empty};
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Empty<bytes::Bytes>>();
    let uri: hyper::Uri = url.parse().unwrap_or_else(|e| panic!("{url}: {e}"));
    let response = client.get(uri).await.expect("moto answers the URL");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (status, content_type, disposition) = (
        response.status().as_u16(),
        header("content-type"),
        header("content-disposition"),
    );
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the whole body")
        .to_bytes()
        .to_vec();
    Fetched {
        status,
        content_type,
        disposition,
        body,
    }
}

fn export_path(tenant: &str, presentation: &str) -> String {
    format!("/tenants/{tenant}/presentations/{presentation}/viewers/export")
}

/// An export that must succeed: its answer, and the file its URL serves.
async fn exported(api: &AnalyticsApi, tenant: &str, id: &str, query: &str) -> (Value, Fetched) {
    let (status, body) = get(api, &export_path(tenant, id), query).await;
    assert_eq!(status, 200, "{id}?{query}: {body}");
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["expiresAt", "rows", "url"], "{body}");
    let file = fetch(body["url"].as_str().unwrap()).await;
    assert_eq!(file.status, 200, "{}", String::from_utf8_lossy(&file.body));
    (body, file)
}

/// The inline CSV of the same viewers (`…/viewers?format=csv&query`).
async fn inline_csv(api: &AnalyticsApi, tenant: &str, id: &str, query: &str) -> String {
    let path = format!("/tenants/{tenant}/presentations/{id}/viewers");
    let query = format!("format=csv&{query}");
    let response = api
        .handle(lambda_event(event_json("GET", &path, &query, Some(tenant))))
        .await
        .unwrap();
    assert_eq!(response.status_code, 200, "{path}?{query}");
    let Some(Body::Text(body)) = response.body else {
        panic!("a text body")
    };
    body
}

/// The CSV `warehouse viewers … --format csv` prints (the same function,
/// into memory).
fn cli_csv(conn: &mut mysql::PooledConn, tenant: &str, id: &str, query: &ViewerQuery) -> Vec<u8> {
    let mut out = Vec::new();
    let outcome = viewer_csv(conn, tenant, id, query, None, &mut out).unwrap();
    assert!(matches!(outcome, CsvOutcome::Complete(_)), "{outcome:?}");
    out
}

fn lines(csv: &[u8]) -> usize {
    csv.windows(2).filter(|w| w == b"\r\n").count()
}

/// A query parameter of a URL.
fn url_parameter<'u>(url: &'u str, name: &str) -> Option<&'u str> {
    let query = url.split_once('?')?.1;
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The objects of a bucket.
async fn objects(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    s3.list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("list the bucket")
        .contents
        .unwrap_or_default()
        .into_iter()
        .filter_map(|o| o.key)
        .collect()
}

/// The multipart uploads of a bucket not finished nor aborted.
async fn open_uploads(s3: &aws_sdk_s3::Client, bucket: &str) -> usize {
    s3.list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .expect("list the uploads")
        .uploads
        .unwrap_or_default()
        .len()
}

/// How many parts an object was uploaded in: its ETag ends with `-N` when
/// it was a multipart upload of N parts, and has no `-` when it was one put.
async fn parts_of(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> usize {
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("the object exists");
    let etag = head.e_tag.unwrap_or_default();
    let etag = etag.trim_matches('"');
    match etag.split_once('-') {
        Some((_, n)) => n.parse().expect("a part count"),
        None => 1,
    }
}

/// This process's resident memory and its peak since the last reset, in
/// KiB (Linux).
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak resident memory (`VmHWM`) to the current (Linux).
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

// ---------------------------------------------------------------------------
// The file
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_is_the_inline_and_the_cli_csv_byte_for_byte() {
    let (test, api) = sample_api().await;
    let (api, s3, bucket) = exporting(api).await;
    let live = sample_expected_live();
    let mut urls = Vec::new();
    for (id, expected) in live["presentations"].as_object().unwrap() {
        let tenant = expected["timeline"]["tenantId"].as_str().unwrap();
        let (body, file) = exported(&api, tenant, id, "sort=score").await;
        let golden = expected["csvByScore"].as_str().unwrap();
        assert_eq!(String::from_utf8_lossy(&file.body), golden, "{id}");
        assert_eq!(
            file.body,
            inline_csv(&api, tenant, id, "sort=score").await.as_bytes(),
            "{id}"
        );
        assert_eq!(body["rows"], json!(lines(&file.body) - 1), "{id}");
        assert_eq!(
            body["rows"],
            json!(expected["viewers"].as_array().unwrap().len()),
            "{id}"
        );
        assert_eq!(
            file.content_type.as_deref(),
            Some("text/csv; charset=utf-8")
        );
        assert_eq!(
            file.disposition,
            Some(format!("attachment; filename=\"viewers-{id}.csv\""))
        );
        // Under the tenant's and the presentation's folders, a random name.
        let url = body["url"].as_str().unwrap();
        let folder = format!("/{bucket}/{EXPORT_FOLDER}{tenant}/{id}/");
        assert!(url.contains(&folder), "{url}");
        let name = url
            .split(&folder)
            .nth(1)
            .unwrap()
            .split('?')
            .next()
            .unwrap();
        let random = name.strip_suffix(".csv").unwrap();
        assert!(
            random.len() == 32 && random.bytes().all(|b| b.is_ascii_hexdigit()),
            "{url}"
        );
        urls.push(url.to_string());
    }
    // Every export is a file of its own.
    let (again, _) = exported(&api, "acme", "prs-acm-0000", "sort=score").await;
    assert!(!urls.contains(&again["url"].as_str().unwrap().to_string()));
    assert_eq!(objects(&s3, &bucket).await.len(), urls.len() + 1);

    // Other sorts and the filters, as the inline CSV and the CLI write them.
    let mut conn = test.conn();
    let cases = [
        ("", ViewerQuery::default()),
        (
            "device=desktop&sort=name",
            ViewerQuery {
                device: Some("desktop".into()),
                sort: ViewerSort::Name,
                ..ViewerQuery::default()
            },
        ),
        (
            "search=A&sort=joined",
            ViewerQuery {
                search: Some("A".into()),
                sort: ViewerSort::Joined,
                ..ViewerQuery::default()
            },
        ),
        (
            "country=us&sort=engagement&limit=1&offset=2",
            ViewerQuery {
                country: Some("us".into()),
                sort: ViewerSort::Engagement,
                ..ViewerQuery::default()
            },
        ),
        (
            "department=nobody",
            ViewerQuery {
                department: Some("nobody".into()),
                ..ViewerQuery::default()
            },
        ),
    ];
    for (query, parsed) in cases {
        let (body, file) = exported(&api, "acme", "prs-acm-0000", query).await;
        let cli = cli_csv(&mut conn, "acme", "prs-acm-0000", &parsed);
        assert_eq!(
            String::from_utf8_lossy(&file.body),
            String::from_utf8_lossy(&cli),
            "{query}"
        );
        assert_eq!(
            file.body,
            inline_csv(&api, "acme", "prs-acm-0000", query)
                .await
                .as_bytes(),
            "{query}"
        );
        assert_eq!(body["rows"], json!(lines(&cli) - 1), "{query}");
    }
    // No matching row: the header alone, and the format parameter of the
    // inline CSV's URL is accepted as it is.
    let (body, file) = exported(&api, "acme", "prs-acm-0000", "format=csv&device=none").await;
    assert_eq!(body["rows"], 0);
    assert_eq!(file.body, shared::contract::VIEWER_CSV_HEADER.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_s_url_is_signed_for_15_minutes() {
    let (_test, api) = sample_api().await;
    let (api, _s3, _bucket) = exporting(api).await;
    let (body, _) = exported(&api, "acme", "prs-acm-0000", "").await;
    let url = body["url"].as_str().unwrap();
    assert_eq!(url_parameter(url, "X-Amz-Expires"), Some("900"), "{url}");
    let expires = parse_rfc3339(body["expiresAt"].as_str().unwrap()).unwrap();
    let left = expires - shared::store::now_ms();
    assert!(
        (14 * 60_000..=15 * 60_000).contains(&left),
        "{left} ms left: {body}"
    );
    // Printed as the API prints every time.
    assert_eq!(body["expiresAt"], format_time(expires));

    // Signed at the API clock's instant, which `expiresAt` counts from.
    let at = parse_rfc3339("2021-09-10T12:45:01.123Z").unwrap();
    let api = api.with_clock(std::sync::Arc::new(move || at));
    let (status, body) = get(&api, &export_path("acme", "prs-acm-0000"), "sort=score").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expiresAt"], "2021-09-10T13:00:01.123Z");
    let url = body["url"].as_str().unwrap();
    assert_eq!(url_parameter(url, "X-Amz-Date"), Some("20210910T124501Z"));
    assert_eq!(url_parameter(url, "X-Amz-Expires"), Some("900"));
    assert!(url_parameter(url, "X-Amz-Signature").is_some(), "{url}");
}

/// A presentation of `viewers` viewers whose CSV lines are about 400 bytes
/// (long names with commas and quotes), written straight into the tables.
fn write_wide_presentation(test: &TestDb, viewers: u64) {
    let mut conn = test.conn();
    let key = crate::analytics::insert_presentation(&mut conn, "widecorp", "wide", "Town hall");
    let insert = |conn: &mut mysql::PooledConn, head: &str, rows: Vec<String>| {
        for chunk in rows.chunks(2000) {
            conn.query_drop(format!("{head} VALUES {}", chunk.join(",")))
                .unwrap();
        }
    };
    insert(
        &mut conn,
        "INSERT INTO dim_viewer (tenant_id, viewer_id)",
        (0..viewers)
            .map(|i| format!("('widecorp', 'u-{i:06}')"))
            .collect(),
    );
    let first: u64 = conn
        .query_first("SELECT MIN(viewer_key) FROM dim_viewer WHERE tenant_id = 'widecorp'")
        .unwrap()
        .unwrap();
    let start = 1_631_268_000_000i64;
    insert(
        &mut conn,
        "INSERT INTO fact_session (presentation_key, session_id, viewer_key, join_version, device, country, department, start_ms, start_date_key, end_ms)",
        (0..viewers)
            .map(|i| {
                let s = start + (i as i64 * 7919) % 3_600_000;
                format!(
                    "({key}, 's-{i}', {}, {}, 'desktop', 'FR', 'Dept {}', {s}, 20210910, {})",
                    first + i,
                    100 + i,
                    i % 40,
                    s + (i as i64 * 104_729) % 5_400_000
                )
            })
            .collect(),
    );
    let padding = "x".repeat(300);
    insert(
        &mut conn,
        "INSERT INTO fact_presentation_viewer (presentation_key, viewer_key, latest_join_version, name, email, department, country, device)",
        (0..viewers)
            .map(|i| {
                format!(
                    "({key}, {}, {}, 'Viewer {i}, \"the {i}th\" {padding}', 'v{i}@example.com', 'Dept {}', 'FR', 'desktop')",
                    first + i,
                    100 + i,
                    i % 40
                )
            })
            .collect(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_larger_than_a_part_goes_up_in_parts_at_flat_memory() {
    const VIEWERS: u64 = 16_000;
    let test = TestDb::new();
    write_wide_presentation(&test, VIEWERS);
    let db = shared::store::Database::connect(test.settings(), 1)
        .await
        .unwrap();
    let (api, s3, bucket) = exporting(AnalyticsApi::new(std::sync::Arc::new(db))).await;
    let cli = cli_csv(
        &mut test.conn(),
        "widecorp",
        "wide",
        &ViewerQuery::default(),
    );
    assert!(cli.len() > MIN_PART_BYTES, "{} bytes", cli.len());

    reset_peak_memory();
    let (before, _) = memory_kib();
    let started = std::time::Instant::now();
    let (status, body) = get(&api, &export_path("widecorp", "wide"), "").await;
    let elapsed = started.elapsed();
    let (_, peak) = memory_kib();
    assert_eq!(status, 200, "{body}");
    eprintln!(
        "export of {VIEWERS} rows, {} bytes: {} ms, peak resident memory {} KiB above the {} KiB before (the process's, other tests included)",
        cli.len(),
        elapsed.as_millis(),
        peak.saturating_sub(before),
        before
    );

    assert_eq!(body["rows"], json!(VIEWERS));
    let file = fetch(body["url"].as_str().unwrap()).await;
    assert_eq!(file.status, 200);
    assert_eq!(file.body.len(), cli.len());
    assert!(file.body == cli, "the export differs from the CLI's CSV");
    let keys = objects(&s3, &bucket).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    let expected_parts = cli.len().div_ceil(MIN_PART_BYTES);
    assert_eq!(parts_of(&s3, &bucket, &keys[0]).await, expected_parts);
    assert!(expected_parts >= 2);
    assert_eq!(open_uploads(&s3, &bucket).await, 0);
}

/// Bytes that repeat no part: each position's own.
fn synthetic(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
        .collect()
}

/// Writes `data` through an `ObjectWriter` in writes of `chunk` bytes (from
/// a blocking thread, as the API does) and finishes it when `finish`, else
/// aborts it; the parts sent before the end.
async fn write_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    data: Vec<u8>,
    chunk: usize,
    finish: bool,
) -> (Result<u64, String>, usize) {
    let target = ObjectTarget {
        bucket: bucket.to_string(),
        key: key.to_string(),
        content_type: "application/octet-stream".to_string(),
        content_disposition: Some("attachment; filename=\"data.bin\"".to_string()),
    };
    let mut writer = ObjectWriter::new(s3.clone(), target, 0);
    tokio::task::spawn_blocking(move || {
        for piece in data.chunks(chunk) {
            writer.write_all(piece).unwrap();
        }
        let sent = writer.parts_sent();
        if finish {
            (writer.finish().map_err(|e| e.to_string()), sent)
        } else {
            writer.abort();
            (Err("aborted".to_string()), sent)
        }
    })
    .await
    .unwrap()
}

async fn read_object(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("the object exists");
    object.body.collect().await.unwrap().into_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_part_writer_sends_full_parts_and_small_objects_in_one_put() {
    let s3 = moto_s3().await;
    let bucket = new_bucket(&s3).await;
    // Smaller than a part: one PutObject, with its headers.
    let (written, sent) = write_object(&s3, &bucket, "small", b"a,b\r\n".to_vec(), 2, true).await;
    assert_eq!((written, sent), (Ok(5), 0));
    assert_eq!(read_object(&s3, &bucket, "small").await, b"a,b\r\n");
    assert_eq!(parts_of(&s3, &bucket, "small").await, 1);
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("small")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.content_disposition.as_deref(),
        Some("attachment; filename=\"data.bin\"")
    );
    // Nothing written: an empty object.
    let (written, _) = write_object(&s3, &bucket, "empty", Vec::new(), 1, true).await;
    assert_eq!(written, Ok(0));
    assert_eq!(read_object(&s3, &bucket, "empty").await, b"");

    // Exactly one part: sent as it fills, then completed alone.
    let data = synthetic(MIN_PART_BYTES);
    let (written, sent) = write_object(&s3, &bucket, "one", data.clone(), 65_536, true).await;
    assert_eq!((written, sent), (Ok(MIN_PART_BYTES as u64), 1));
    assert!(read_object(&s3, &bucket, "one").await == data);
    assert_eq!(parts_of(&s3, &bucket, "one").await, 1);
    let etag = s3
        .head_object()
        .bucket(&bucket)
        .key("one")
        .send()
        .await
        .unwrap()
        .e_tag
        .unwrap();
    assert!(etag.ends_with("-1\""), "a multipart upload: {etag}");

    // Two and a half parts, in writes that straddle the parts' ends.
    let len = MIN_PART_BYTES * 5 / 2 + 17;
    let data = synthetic(len);
    let (written, sent) = write_object(&s3, &bucket, "three", data.clone(), 7_919, true).await;
    assert_eq!((written, sent), (Ok(len as u64), 2));
    assert!(read_object(&s3, &bucket, "three").await == data);
    assert_eq!(parts_of(&s3, &bucket, "three").await, 3);
    assert_eq!(open_uploads(&s3, &bucket).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_writer_given_up_or_dropped_leaves_nothing() {
    let s3 = moto_s3().await;
    let bucket = new_bucket(&s3).await;
    // Aborted after a part went up.
    let data = synthetic(MIN_PART_BYTES + 10);
    let (written, sent) = write_object(&s3, &bucket, "aborted", data, 1 << 20, false).await;
    assert_eq!((written, sent), (Err("aborted".to_string()), 1));
    assert!(objects(&s3, &bucket).await.is_empty());
    assert_eq!(open_uploads(&s3, &bucket).await, 0);

    // Dropped unfinished (a panic, an early return): aborted in the
    // background.
    let target = ObjectTarget {
        bucket: bucket.clone(),
        key: "dropped".to_string(),
        content_type: "text/csv".to_string(),
        content_disposition: None,
    };
    let mut writer = ObjectWriter::new(s3.clone(), target, 0);
    let data = synthetic(MIN_PART_BYTES + 10);
    tokio::task::spawn_blocking(move || {
        writer.write_all(&data).unwrap();
        assert_eq!(writer.parts_sent(), 1);
        drop(writer);
    })
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while open_uploads(&s3, &bucket).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the dropped writer's upload is still open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(objects(&s3, &bucket).await.is_empty());

    // A bucket that refuses: the write fails with what S3 said.
    let target = ObjectTarget {
        bucket: "no-such-bucket-for-exports".to_string(),
        key: "k".to_string(),
        content_type: "text/csv".to_string(),
        content_disposition: None,
    };
    let mut writer = ObjectWriter::new(s3.clone(), target, 0);
    let (first, second, failure) = tokio::task::spawn_blocking(move || {
        let first = writer.write_all(&synthetic(MIN_PART_BYTES));
        let second = writer.write_all(b"more");
        let failure = writer.failure().cloned();
        (first, second, failure)
    })
    .await
    .unwrap();
    let failure = failure.expect("a failure");
    assert!(first.is_err() && second.is_err());
    assert!(
        failure
            .to_string()
            .contains("s3://no-such-bucket-for-exports/k"),
        "{failure}"
    );
}

// ---------------------------------------------------------------------------
// The route's rules
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_keeps_the_api_s_rules() {
    let (test, api) = sample_api().await;
    let (api, s3, bucket) = exporting(api).await;
    let path = export_path("acme", "prs-acm-0000");
    let status = |(status, body): (u16, Value)| {
        assert!(body["error"].is_string(), "{body}");
        status
    };
    // No tenant claim; another tenant's caller, admin or not.
    assert_eq!(status(call_as(&api, "GET", &path, "", None).await), 401);
    assert_eq!(
        status(call_as(&api, "GET", &path, "", Some("globex")).await),
        403
    );
    let mut event = event_json("GET", &path, "", Some("globex"));
    event["requestContext"]["authorizer"]["jwt"]["claims"]["role"] = json!("admin");
    let (code, body) = parts(api.handle(lambda_event(event)).await.unwrap());
    assert_eq!(code, 403, "{body}");
    // GET only.
    assert_eq!(
        status(call_as(&api, "POST", &path, "", Some("acme")).await),
        405
    );
    // Unknown presentations, another tenant's included.
    for unknown in ["prs-nope", "prs-glo-0001"] {
        let (code, body) = get(&api, &export_path("acme", unknown), "").await;
        assert_eq!(code, 404, "{unknown}: {body}");
    }
    // Bad parameters.
    for bad in [
        "sort=views",
        "format=json",
        "page=2",
        "limit=0",
        "shadow=maybe",
    ] {
        let (code, body) = get(&api, &path, bad).await;
        assert_eq!(code, 400, "{bad}: {body}");
    }
    // The flags gate it as the inline CSV: every data point must be served.
    flags::set_flag(&mut test.conn(), "acme", DataPoint::Polls, FlagState::Off).unwrap();
    let (code, body) = get(&api, &path, "").await;
    assert_eq!(code, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("polls"), "{body}");
    flags::set_flag(
        &mut test.conn(),
        "acme",
        DataPoint::Polls,
        FlagState::Shadow,
    )
    .unwrap();
    assert_eq!(get(&api, &path, "").await.0, 400);
    let (_, file) = exported(&api, "acme", "prs-acm-0000", "shadow=true").await;
    assert!(file
        .body
        .starts_with(shared::contract::VIEWER_CSV_HEADER.as_bytes()));
    // Only the answered export wrote a file.
    assert_eq!(objects(&s3, &bucket).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_bucket_the_export_answers_503_saying_what_is_missing() {
    let (_test, api) = sample_api().await;
    let path = export_path("acme", "prs-acm-0000");
    let (code, body) = get(&api, &path, "sort=score").await;
    assert_eq!(code, 503, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(message.contains(VIEWER_EXPORT_BUCKET), "{message}");
    // The caller's checks still come first, and the other routes work.
    assert_eq!(call_as(&api, "GET", &path, "", None).await.0, 401);
    assert_eq!(call_as(&api, "GET", &path, "", Some("globex")).await.0, 403);
    assert_eq!(get(&api, &path, "sort=views").await.0, 400);
    assert_eq!(
        get(&api, "/tenants/acme/presentations/prs-acm-0000/viewers", "")
            .await
            .0,
        200
    );

    // A bucket S3 does not have: 503 about the bucket, not the database,
    // and no detail of S3's.
    let s3 = moto_s3().await;
    let api = api.with_exports(ViewerExports::new(s3, "no-such-bucket-for-exports"));
    let (code, body) = get(&api, &path, "").await;
    assert_eq!(code, 503, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(message.contains("export bucket"), "{message}");
    assert!(!message.contains("no-such-bucket"), "{message}");
}
