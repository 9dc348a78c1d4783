//! The analytics HTTP API (`shared::handlers::AnalyticsApi`, deployed as `functions/analytics-api`)
//! driven as Lambda drives it: real API Gateway HTTP API (payload 2.0) event
//! JSON into the handler, over the sample loaded through the real loaders.

use std::path::PathBuf;
use std::sync::Arc;

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use mysql::prelude::Queryable;
use serde_json::{json, Map, Value};
use shared::contract::DataPoint;
use shared::handlers::{percent_decode, AnalyticsApi, ApiConfig, ApiRoutes};
use shared::read::flags::{self, FlagState};
use shared::store::Database;
use shared::store::{DatabaseSettings, Secret};

use crate::helpers::{sample_expected_with_live as sample_expected, TestDb};
use crate::loaders::{sample_lines, Loaders};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// An HTTP API (payload format 2.0) event as API Gateway sends it, with the
/// JWT authorizer's claims (`tenantId` when `tenant` is given).
pub(crate) fn event_json(
    method: &str,
    raw_path: &str,
    raw_query: &str,
    tenant: Option<&str>,
) -> Value {
    let mut claims = json!({
        "iss": "https://auth.example.com/",
        "aud": "warehouse-analytics",
        "sub": "user-42",
        "iat": "1631277901",
        "exp": "1631281501"
    });
    if let Some(tenant) = tenant {
        claims["tenantId"] = json!(tenant);
    }
    // API Gateway joins repeated parameters with commas.
    let mut parameters: Map<String, Value> = Map::new();
    for piece in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        let k = percent_decode(k, true).unwrap_or_else(|| k.to_string());
        let v = percent_decode(v, true).unwrap_or_else(|| v.to_string());
        let joined = match parameters.get(&k).and_then(Value::as_str) {
            Some(previous) => format!("{previous},{v}"),
            None => v,
        };
        parameters.insert(k, json!(joined));
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": {
            "accept": "application/json",
            "authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
            "host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "user-agent": "integration-tests",
            "x-forwarded-for": "192.0.2.10",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "authorizer": {"jwt": {"claims": claims, "scopes": null}},
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abcdef1234",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.10",
                "userAgent": "integration-tests"
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "$default",
            "stage": "$default",
            "time": "10/Sep/2021:12:45:01 +0000",
            "timeEpoch": 1_631_277_901_123i64
        },
        "isBase64Encoded": false
    });
    if !parameters.is_empty() {
        event["queryStringParameters"] = Value::Object(parameters);
    }
    event
}

pub(crate) fn lambda_event(event: Value) -> lambda_runtime::LambdaEvent<ApiGatewayV2httpRequest> {
    let request: ApiGatewayV2httpRequest =
        serde_json::from_value(event).expect("a valid HTTP API v2 event");
    lambda_runtime::LambdaEvent::new(request, lambda_runtime::Context::default())
}

/// The status and JSON body of a response, after the checks every response
/// must pass: JSON content type, no SQL, no panic, an `error` string on errors.
pub(crate) fn parts(response: ApiGatewayV2httpResponse) -> (u16, Value) {
    assert_eq!(
        response
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap()),
        Some("application/json")
    );
    assert!(!response.is_base64_encoded);
    let Some(Body::Text(text)) = &response.body else {
        panic!("a text body: {:?}", response.body)
    };
    for forbidden in ["SELECT", "panicked", "mysql", "stack backtrace"] {
        assert!(
            !text.contains(forbidden),
            "a body contains {forbidden:?}: {text}"
        );
    }
    let body: Value = serde_json::from_str(text).expect("a JSON body");
    let status = u16::try_from(response.status_code).expect("an HTTP status");
    if status != 200 {
        let object = body.as_object().expect("an error object");
        assert_eq!(object.len(), 1, "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    (status, body)
}

pub(crate) async fn call_as(
    api: &AnalyticsApi,
    method: &str,
    path: &str,
    query: &str,
    tenant: Option<&str>,
) -> (u16, Value) {
    let response = api
        .handle(lambda_event(event_json(method, path, query, tenant)))
        .await
        .expect("the handler always answers");
    parts(response)
}

/// `GET path?query` as the path's own tenant.
pub(crate) async fn get(api: &AnalyticsApi, path: &str, query: &str) -> (u16, Value) {
    let tenant = path.split('/').nth(2).expect("/tenants/{tenant}/…");
    call_as(api, "GET", path, query, Some(tenant)).await
}

pub(crate) async fn get_ok(api: &AnalyticsApi, path: &str, query: &str) -> Value {
    let (status, body) = get(api, path, query).await;
    assert_eq!(status, 200, "{path}?{query}: {body}");
    body
}

/// A fresh database with the sample loaded, and the API over it.
pub(crate) async fn sample_api() -> (TestDb, AnalyticsApi) {
    let (test, db) = sample_database().await;
    (test, AnalyticsApi::new(db))
}

/// A fresh database with the sample loaded, and a pool over it.
async fn sample_database() -> (TestDb, Arc<Database>) {
    let test = TestDb::new();
    Loaders::new(&test)
        .await
        .deliver(&sample_lines(), 200)
        .await;
    crate::helpers::set_sample_weights(&mut test.conn());
    let db = Database::connect(test.settings(), shared::handlers::LAMBDA_MAX_CONNECTIONS)
        .await
        .expect("the API's database");
    (test, Arc::new(db))
}

fn rows<'a>(body: &'a Value, key: &str) -> &'a Vec<Value> {
    body[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {body}"))
}

fn column<'a>(rows: &'a [Value], key: &str) -> Vec<&'a Value> {
    rows.iter().map(|r| &r[key]).collect()
}

/// The example events of a function crate.
fn events_dir(function: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../functions/{function}/events"))
}

// ---------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_the_golden_answers() {
    let (_test, api) = sample_api().await;
    let expected = sample_expected();
    for (id, report) in expected["reports"].as_object().expect("reports") {
        let tenant = report["tenantId"].as_str().unwrap();
        let path = format!("/tenants/{tenant}/presentations/{id}");
        assert_eq!(&get_ok(&api, &path, "").await, report, "{path}");
        // Asking again (the API caches nothing: computed again) is the same.
        assert_eq!(&get_ok(&api, &path, "shadow=false").await, report, "{path}");
    }
    // Percent-encoded path segments are decoded.
    assert_eq!(
        get_ok(&api, "/tenants/acme/presentations/prs%2Dacm%2D0000/", "").await,
        expected["reports"]["prs-acm-0000"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_events_work() {
    let (_test, db) = sample_database().await;
    let expected = sample_expected();
    let mut seen = 0;
    // Each function's events, answered as that function serves them.
    let functions = [
        ("analytics-api", ApiRoutes::Reads),
        ("erase-viewer", ApiRoutes::Erasures),
    ];
    let events = functions.iter().flat_map(|(function, routes)| {
        let api = AnalyticsApi::new(db.clone()).serving(*routes);
        let entries = std::fs::read_dir(events_dir(function))
            .unwrap_or_else(|e| panic!("functions/{function}/events: {e}"));
        let api = Arc::new(api);
        entries.map(move |entry| (api.clone(), entry.unwrap().path()))
    });
    for (api, path) in events.collect::<Vec<_>>() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (status, body) = parts(api.handle(lambda_event(event)).await.unwrap());
        match name.as_str() {
            "report.json" | "report-shadow.json" => {
                assert_eq!((status, &body), (200, &expected["reports"]["prs-acm-0000"]))
            }
            "viewers.json" => {
                assert_eq!(status, 200, "{body}");
                let viewers = rows(&body, "viewers");
                assert!(!viewers.is_empty() && viewers.len() <= 5, "{body}");
                assert!(viewers.iter().all(|v| v["device"] == "desktop"), "{body}");
            }
            "presentations.json" => {
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["tenantId"], "acme");
            }
            "other-tenant.json" => assert_eq!(status, 403, "{body}"),
            // An admin erasing a viewer the sample never saw: no answer changes.
            "forget.json" => {
                assert_eq!(status, 200, "{body}");
                assert_eq!(
                    (&body["viewerId"], &body["known"]),
                    (&json!("u-999"), &json!(false))
                );
            }
            other => panic!("an example event without a test: {other}"),
        }
        seen += 1;
    }
    assert_eq!(seen, 6);
}

/// The read function (a `SELECT`-only user in the template) never attempts
/// the erasure, and the erasure function answers nothing else: each is a
/// 404, as an unknown route, after the token's checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_function_answers_only_its_own_routes() {
    let (_test, db) = sample_database().await;
    let reads = AnalyticsApi::new(db.clone()).serving(ApiRoutes::Reads);
    let erasures = AnalyticsApi::new(db.clone()).serving(ApiRoutes::Erasures);
    let mut admin = event_json("DELETE", "/tenants/acme/viewers/u-1", "", Some("acme"));
    admin["requestContext"]["authorizer"]["jwt"]["claims"]["role"] = json!("admin");
    let (status, body) = parts(reads.handle(lambda_event(admin.clone())).await.unwrap());
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("erasures have a function of their own"),
        "{body}"
    );
    let report = "/tenants/acme/presentations/prs-acm-0000";
    let (status, body) = call_as(&erasures, "GET", report, "", Some("acme")).await;
    assert_eq!(status, 404, "{body}");
    // Nothing was erased by the refused call: u-1 is still in the viewer list,
    // and each function answers its own route.
    let viewers = get_ok(&reads, &format!("{report}/viewers"), "search=u-1").await;
    assert!(
        rows(&viewers, "viewers")
            .iter()
            .any(|v| v["viewerId"] == "u-1"),
        "{viewers}"
    );
    assert_eq!(get(&reads, report, "").await.0, 200);
    let (status, body) = parts(erasures.handle(lambda_event(admin)).await.unwrap());
    assert_eq!((status, &body["known"]), (200, &json!(true)), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_sort_and_page() {
    let (_test, api) = sample_api().await;
    let expected = sample_expected();
    let id = "prs-glo-0001";
    let path = format!("/tenants/globex/presentations/{id}/viewers");
    let all = expected["viewers"][id].as_array().unwrap();

    // The defaults: every viewer (38 < 50), watchSeconds descending, ties by id.
    let body = get_ok(&api, &path, "").await;
    assert_eq!(body["presentationId"], id);
    assert_eq!(body["total"], json!(all.len()));
    let mut by_watch = all.clone();
    by_watch.sort_by(|a, b| {
        b["watchSeconds"]
            .as_i64()
            .cmp(&a["watchSeconds"].as_i64())
            .then(a["viewerId"].as_str().cmp(&b["viewerId"].as_str()))
    });
    assert_eq!(rows(&body, "viewers"), &by_watch);

    // Filters: country in any case, device exactly, department `unknown`.
    let body = get_ok(&api, &path, "country=us&limit=1000").await;
    let us = all.iter().filter(|v| v["country"] == "US").count();
    assert_eq!(body["total"], json!(us));
    assert!(rows(&body, "viewers").iter().all(|v| v["country"] == "US"));
    let body = get_ok(&api, &path, "device=mobile&sort=joined").await;
    let viewers = rows(&body, "viewers");
    assert_eq!(
        viewers.len(),
        all.iter().filter(|v| v["device"] == "mobile").count()
    );
    let joined = column(viewers, "firstJoinedAt");
    assert!(
        joined.windows(2).all(|w| w[0].as_str() <= w[1].as_str()),
        "{joined:?}"
    );
    let body = get_ok(&api, &path, "department=unknown").await;
    assert_eq!(
        body["total"],
        json!(all.iter().filter(|v| v["department"].is_null()).count())
    );
    // A search matching one viewer's email, in another case.
    let email = all
        .iter()
        .filter_map(|v| v["email"].as_str())
        .find(|e| {
            e.chars()
                .all(|c| c.is_ascii_alphanumeric() || "@.-".contains(c))
        })
        .expect("an ASCII email");
    let body = get_ok(&api, &path, &format!("search={}", email.to_uppercase())).await;
    assert!(
        rows(&body, "viewers").iter().any(|v| v["email"] == email),
        "{body}"
    );

    // Paging: a page of the name order is the slice of the whole order.
    let whole = get_ok(&api, &path, "sort=name&limit=1000").await;
    let page = get_ok(&api, &path, "sort=NAME&limit=5&offset=10").await;
    assert_eq!(page["total"], whole["total"]);
    assert_eq!(rows(&page, "viewers")[..], rows(&whole, "viewers")[10..15]);
    let past = get_ok(&api, &path, "limit=10&offset=500").await;
    assert_eq!(
        (past["total"].clone(), rows(&past, "viewers").len()),
        (json!(all.len()), 0)
    );
    let engaged = get_ok(&api, &path, "sort=engagement&limit=3").await;
    let score = |v: &Value| {
        v["pollsAnswered"].as_i64().unwrap()
            + v["surveysSubmitted"].as_i64().unwrap()
            + v["questionsAsked"].as_i64().unwrap()
    };
    let best = all.iter().map(score).max().unwrap();
    assert_eq!(score(&rows(&engaged, "viewers")[0]), best);

    // The presentation list: the golden rows, then filters, sorts and paging.
    let list = get_ok(&api, "/tenants/acme/presentations", "").await;
    assert_eq!(list["tenantId"], "acme");
    assert_eq!(list["total"], json!(2));
    let mut golden = expected["presentations"]["acme"]
        .as_array()
        .unwrap()
        .clone();
    // Default order: startedAt descending.
    golden.sort_by(|a, b| b["startedAt"].as_str().cmp(&a["startedAt"].as_str()));
    assert_eq!(rows(&list, "presentations"), &golden);
    let titled = get_ok(&api, "/tenants/acme/presentations", "sort=title").await;
    assert_eq!(
        column(rows(&titled, "presentations"), "presentationId"),
        vec!["prs-acm-0000", "prs-acm-0002"],
        "titles first, missing titles last"
    );
    let found = get_ok(&api, "/tenants/acme/presentations", "search=BRIEFING").await;
    assert_eq!(
        column(rows(&found, "presentations"), "presentationId"),
        vec!["prs-acm-0000"]
    );
    let day = get_ok(
        &api,
        "/tenants/acme/presentations",
        "from=2021-09-29&to=2021-09-29",
    )
    .await;
    assert_eq!(
        column(rows(&day, "presentations"), "presentationId"),
        vec!["prs-acm-0000"]
    );
    let none = get_ok(
        &api,
        "/tenants/acme/presentations",
        "from=2021-09-30T00:00:00Z&to=2021-12-31",
    )
    .await;
    assert_eq!(
        (none["total"].clone(), rows(&none, "presentations").len()),
        (json!(0), 0)
    );
    let second = get_ok(
        &api,
        "/tenants/acme/presentations",
        "sort=viewers&limit=1&offset=1",
    )
    .await;
    assert_eq!(second["total"], json!(2));
    assert_eq!(
        column(rows(&second, "presentations"), "presentationId"),
        vec!["prs-acm-0000"],
        "9 viewers after 10"
    );
    let globex = get_ok(&api, "/tenants/globex/presentations", "").await;
    assert_eq!(
        rows(&globex, "presentations"),
        expected["presentations"]["globex"].as_array().unwrap()
    );
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_is_wrong_and_never_leak() {
    let (_test, api) = sample_api().await;
    let report = "/tenants/acme/presentations/prs-acm-0000";

    // 401: no tenant claim (even on unknown routes).
    for path in [report, "/nowhere"] {
        let (status, body) = call_as(&api, "GET", path, "", None).await;
        assert_eq!(status, 401, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("tenantId"),
            "{body}"
        );
    }
    // 403: the path's tenant is not the claim's.
    for path in [
        "/tenants/globex/presentations",
        "/tenants/globex/presentations/prs-glo-0001",
        "/tenants/globex/presentations/prs-glo-0001/viewers",
    ] {
        let (status, body) = call_as(&api, "GET", path, "", Some("acme")).await;
        assert_eq!(status, 403, "{path}: {body}");
    }
    // 404: unknown presentations, another tenant's presentation, unknown routes.
    for path in [
        "/tenants/acme/presentations/prs-nope",
        "/tenants/acme/presentations/prs-glo-0001",
        "/tenants/acme/presentations/prs-glo-0001/viewers",
        "/tenants/acme/presentations/prs-acm-0000%20",
    ] {
        let (status, body) = get(&api, path, "").await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("not found"),
            "{body}"
        );
    }
    for path in [
        "/tenants/acme",
        "/tenants/acme/presentations/prs-acm-0000/polls",
        "/presentations",
        "/",
    ] {
        let (status, body) = call_as(&api, "GET", path, "", Some("acme")).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("GET /tenants/{tenantId}/presentations"),
            "{body}"
        );
    }
    // 405: anything but GET.
    for method in ["POST", "PUT", "DELETE", "PATCH", "HEAD"] {
        let response = api
            .handle(lambda_event(event_json(method, report, "", Some("acme"))))
            .await
            .unwrap();
        assert_eq!(
            response.headers.get("allow").map(|v| v.to_str().unwrap()),
            Some("GET")
        );
        let (status, _) = parts(response);
        assert_eq!(status, 405, "{method}");
    }
    // 400: bad parameters, each message naming the parameter and what is accepted.
    let viewers = "/tenants/acme/presentations/prs-acm-0000/viewers";
    let list = "/tenants/acme/presentations";
    for (path, query, names, accepted) in [
        (viewers, "sort=views", "sort", "engagement"),
        (list, "sort=newest", "sort", "started"),
        (viewers, "limit=1001", "limit", "1000"),
        (list, "limit=0", "limit", "at least 1"),
        (viewers, "limit=ten", "limit", "1000"),
        (viewers, "offset=-1", "offset", "0 or more"),
        (list, "from=2021-13-01", "from", "YYYY-MM-DD"),
        (list, "to=10%2F09%2F2021", "to", "RFC 3339"),
        (list, "from=2021-09-30&to=2021-09-01", "from", "after to"),
        (list, "shadow=maybe", "shadow", "true or false"),
        (
            viewers,
            "sortby=name",
            "sortby",
            "department, country, device, search, sort, limit, offset",
        ),
        (report, "limit=5", "limit", "shadow"),
        (list, "limit=5&limit=6", "limit", "once"),
        (list, "search=%E2%28", "query string", "%XX"),
    ] {
        let (status, body) = get(&api, path, query).await;
        assert_eq!(status, 400, "{path}?{query}: {body}");
        let message = body["error"].as_str().unwrap();
        assert!(
            message.contains(names) && message.contains(accepted),
            "{path}?{query}: {message}"
        );
    }
    let (status, body) = get(&api, "/tenants/acme/presentations/a%zz", "").await;
    assert_eq!(status, 400, "{body}");
    // SQL-looking input is data, not SQL.
    let (status, body) = get(
        &api,
        viewers,
        "search=%27%20OR%201%3D1%20--&department=x%27",
    )
    .await;
    assert_eq!((status, body["total"].clone()), (200, json!(0)), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_failure_is_a_503_without_details() {
    // Nothing listens on port 1: every connection fails.
    let settings = DatabaseSettings::Url(Secret::new("mysql://root:hunter2@127.0.0.1:1/warehouse"));
    let api = AnalyticsApi::new(Arc::new(Database::connect(settings, 1).await.unwrap()));
    for path in [
        "/tenants/acme/presentations",
        "/tenants/acme/presentations/prs-acm-0000",
        "/tenants/acme/presentations/prs-acm-0000/viewers",
    ] {
        let (status, body) = get(&api, path, "").await;
        assert_eq!(status, 503, "{body}");
        let message = body["error"].as_str().unwrap();
        for secret in ["hunter2", "127.0.0.1", "refused", "database error"] {
            assert!(!message.contains(secret), "{message}");
        }
    }
    // Bad input is still a 400, checked before the database is touched.
    let (status, _) = get(&api, "/tenants/acme/presentations", "limit=1001").await;
    assert_eq!(status, 400);
}

// ---------------------------------------------------------------------------
// Under pressure: a statement time limit, no summary recomputed in a request
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_past_the_time_limit_is_cut_off_and_answers_504() {
    let test = TestDb::new();
    Loaders::new(&test)
        .await
        .deliver(&sample_lines(), 200)
        .await;
    // The API as its function builds it, from its configuration.
    let url = test.url.clone();
    let lookup = move |name: &str| match name {
        "DATABASE_URL" => Some(url.clone()),
        "API_STATEMENT_TIME_LIMIT_MS" => Some("300".to_string()),
        _ => None,
    };
    let api = AnalyticsApi::connect(ApiConfig::from_lookup(&lookup).unwrap())
        .await
        .unwrap();

    // The limit is in force on the API's connection, under the server's name.
    let mut conn = api.database().conn().unwrap();
    let version: String = conn.query_first("SELECT VERSION()").unwrap().unwrap();
    let variable = if version.contains("MariaDB") {
        "SELECT @@SESSION.max_statement_time * 1000"
    } else {
        "SELECT @@SESSION.max_execution_time"
    };
    let limit: f64 = conn.query_first(variable).unwrap().unwrap();
    assert_eq!(limit.round(), 300.0, "{version}");
    // A slow statement is cut off at the limit, as a timeout.
    let started = std::time::Instant::now();
    let error = conn.query::<mysql::Row, _>("SELECT SLEEP(5)").unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert!(shared::store::is_statement_timeout(&error), "{error}");
    assert!(matches!(
        shared::read::AnalyticsError::from(error),
        shared::read::AnalyticsError::TimedOut(_)
    ));
    drop(conn);

    // Through a request: the list's query waits on a table another session
    // holds locked, and is cut off instead of outliving the request.
    let mut locker = test.conn();
    locker
        .query_drop("LOCK TABLES dim_presentation WRITE")
        .unwrap();
    let started = std::time::Instant::now();
    let (status, body) = get(&api, "/tenants/acme/presentations", "").await;
    let waited = started.elapsed();
    locker.query_drop("UNLOCK TABLES").unwrap();
    assert_eq!(status, 504, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("took longer than the analytics API allows") && message.contains("0.3 s"),
        "{message}"
    );
    assert!(waited < std::time::Duration::from_secs(3), "{waited:?}");
    // The report too (its first statement reads the same table).
    locker
        .query_drop("LOCK TABLES dim_presentation WRITE")
        .unwrap();
    let (status, _) = get(&api, "/tenants/acme/presentations/prs-acm-0000", "").await;
    locker.query_drop("UNLOCK TABLES").unwrap();
    assert_eq!(status, 504);
    // Once the table is free the same requests answer.
    let (status, body) = get(&api, "/tenants/acme/presentations", "").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_serves_summaries_as_they_are_and_the_loaders_refresh_them() {
    let (test, api) = sample_api().await;
    let golden = &sample_expected()["presentations"]["acme"];
    let viewers_of = |list: &Value, id: &str| {
        rows(list, "presentations")
            .iter()
            .find(|r| r["presentationId"] == id)
            .map(|r| r["uniqueViewers"].clone())
    };
    let fresh_figures = golden
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["presentationId"] == "prs-acm-0000")
        .unwrap()["uniqueViewers"]
        .clone();
    // The loaders refreshed every summary after their batches.
    let list = get_ok(&api, "/tenants/acme/presentations", "").await;
    assert_eq!(list["staleFigures"], json!([]));
    assert_eq!(
        viewers_of(&list, "prs-acm-0000"),
        Some(fresh_figures.clone())
    );

    // A summary of an older revision is served as it is, and named stale;
    // the request writes nothing.
    let summaries = "SELECT CONCAT_WS('/', presentation_key, source_revision, unique_viewers) \
                     FROM agg_presentation ORDER BY presentation_key";
    test.conn()
        .query_drop(
            "UPDATE agg_presentation a JOIN dim_presentation p USING (presentation_key) \
             SET a.unique_viewers = 999, a.source_revision = a.source_revision - 1 \
             WHERE p.presentation_id = 'prs-acm-0000'",
        )
        .unwrap();
    let before: Vec<String> = test.rows(summaries);
    let list = get_ok(&api, "/tenants/acme/presentations", "sort=viewers").await;
    assert_eq!(list["staleFigures"], json!(["prs-acm-0000"]));
    assert_eq!(viewers_of(&list, "prs-acm-0000"), Some(json!(999)));
    assert_eq!(
        test.rows::<String>(summaries),
        before,
        "the list wrote nothing"
    );

    // What refreshes it: the next batch touching the presentation, even one
    // of duplicates (a batch delivered again after its loader died between
    // commit and refresh).
    let line = sample_lines()
        .into_iter()
        .find(|l| {
            shared::contract::parse_event(l)
                .is_ok_and(|e| e.stream_id == "prs-acm-0000" && e.data_point().is_some())
        })
        .expect("an event of prs-acm-0000");
    let failures = Loaders::new(&test).await.deliver(&[line], 1).await;
    assert!(failures.is_empty(), "{failures:?}");
    let list = get_ok(&api, "/tenants/acme/presentations", "").await;
    assert_eq!(list["staleFigures"], json!([]));
    assert_eq!(viewers_of(&list, "prs-acm-0000"), Some(fresh_figures));
}

// ---------------------------------------------------------------------------
// Feature flags
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_leave_sections_out() {
    let (test, api) = sample_api().await;
    let expected = sample_expected();
    let golden = &expected["reports"]["prs-acm-0000"];
    let report = "/tenants/acme/presentations/prs-acm-0000";
    let viewers = "/tenants/acme/presentations/prs-acm-0000/viewers";
    let list = "/tenants/acme/presentations";
    let set = |dp: DataPoint, state: FlagState| {
        flags::set_flag(&mut test.conn(), "acme", dp, state).expect("set a flag");
    };
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };

    // No flags: everything (the default is on).
    assert_eq!(&get_ok(&api, report, "").await, golden);

    // off: left out, even when shadow sections are asked for.
    set(DataPoint::Attendance, FlagState::Off);
    for query in ["", "shadow=true"] {
        let body = get_ok(&api, report, query).await;
        assert!(body.get("attendance").is_none(), "{body}");
        let mut rest = golden.clone();
        rest.as_object_mut().unwrap().remove("attendance");
        assert_eq!(body, rest);
        let rows_ = get_ok(&api, list, query).await;
        for row in rows(&rows_, "presentations") {
            for figure in [
                "uniqueViewers",
                "peakConcurrentViewers",
                "totalWatchSeconds",
            ] {
                assert!(row.get(figure).is_none(), "{row}");
            }
            assert!(
                row.get("questions").is_some() && row.get("title").is_some(),
                "{row}"
            );
        }
        let people = get_ok(&api, viewers, query).await;
        assert_eq!(
            keys(&people),
            vec!["dataThrough", "presentationId"],
            "{people}"
        );
    }

    // shadow: left out unless asked with ?shadow=true.
    set(DataPoint::Attendance, FlagState::On);
    set(DataPoint::Qna, FlagState::Shadow);
    set(DataPoint::Surveys, FlagState::Shadow);
    let body = get_ok(&api, report, "").await;
    assert!(
        body.get("qna").is_none() && body.get("surveys").is_none(),
        "{body}"
    );
    assert_eq!(body["attendance"], golden["attendance"]);
    assert_eq!(body["polls"], golden["polls"]);
    assert_eq!(&get_ok(&api, report, "shadow=true").await, golden);
    assert_eq!(&get_ok(&api, report, "shadow=TRUE").await, golden);
    let hidden = get_ok(&api, list, "").await;
    for row in rows(&hidden, "presentations") {
        assert!(
            row.get("questions").is_none() && row.get("surveys").is_none(),
            "{row}"
        );
        assert!(
            row.get("polls").is_some() && row.get("uniqueViewers").is_some(),
            "{row}"
        );
    }
    let shown = get_ok(&api, list, "shadow=true").await;
    assert_eq!(rows(&shown, "presentations"), &{
        let mut g = expected["presentations"]["acme"]
            .as_array()
            .unwrap()
            .clone();
        g.sort_by(|a, b| b["startedAt"].as_str().cmp(&a["startedAt"].as_str()));
        g
    });
    let people = get_ok(&api, viewers, "").await;
    for row in rows(&people, "viewers") {
        assert!(
            row.get("questionsAsked").is_none() && row.get("surveysSubmitted").is_none(),
            "{row}"
        );
        assert!(
            row.get("pollsAnswered").is_some() && row.get("watchSeconds").is_some(),
            "{row}"
        );
    }
    let people = get_ok(&api, viewers, "shadow=true").await;
    assert!(rows(&people, "viewers")
        .iter()
        .all(|r| r.get("questionsAsked").is_some()));

    // Flags are per tenant: globex is untouched.
    let g = "prs-glo-0001";
    assert_eq!(
        get_ok(&api, &format!("/tenants/globex/presentations/{g}"), "").await,
        expected["reports"][g]
    );

    // Back on: the whole golden answer again.
    set(DataPoint::Qna, FlagState::On);
    set(DataPoint::Surveys, FlagState::On);
    assert_eq!(&get_ok(&api, report, "").await, golden);
}

#[test]
fn flags_are_stored_per_tenant_and_data_point() {
    let test = TestDb::new();
    let mut conn = test.conn();
    assert_eq!(
        flags::tenant_flags(&mut conn, "acme").unwrap(),
        flags::TenantFlags::defaults()
    );
    let flag = flags::set_flag(&mut conn, "acme", DataPoint::Polls, FlagState::Shadow).unwrap();
    assert_eq!(
        (flag.tenant_id.as_str(), flag.data_point, flag.state),
        ("acme", DataPoint::Polls, FlagState::Shadow)
    );
    assert!(
        flag.updated_at.ends_with('Z') && flag.updated_at.len() == 24,
        "{}",
        flag.updated_at
    );
    flags::set_flag(&mut conn, "acme", DataPoint::Polls, FlagState::Off).unwrap();
    flags::set_flag(&mut conn, "acme ", DataPoint::Qna, FlagState::Off).unwrap();
    flags::set_flag(
        &mut conn,
        "globex",
        DataPoint::Attendance,
        FlagState::Shadow,
    )
    .unwrap();

    let acme = flags::tenant_flags(&mut conn, "acme").unwrap();
    assert_eq!(acme.state(DataPoint::Polls), FlagState::Off);
    assert_eq!(
        acme.state(DataPoint::Qna),
        FlagState::On,
        "`acme ` is another tenant"
    );
    assert_eq!(acme.state(DataPoint::Attendance), FlagState::On);
    let listed: Vec<(String, DataPoint, FlagState)> = flags::list_flags(&mut conn, None)
        .unwrap()
        .into_iter()
        .map(|f| (f.tenant_id, f.data_point, f.state))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("acme".to_string(), DataPoint::Polls, FlagState::Off),
            ("acme ".to_string(), DataPoint::Qna, FlagState::Off),
            (
                "globex".to_string(),
                DataPoint::Attendance,
                FlagState::Shadow
            ),
        ]
    );
    assert_eq!(
        flags::list_flags(&mut conn, Some("globex")).unwrap().len(),
        1
    );

    // Bad input is refused, and the table refuses what the code would not write.
    assert!(flags::set_flag(&mut conn, "", DataPoint::Polls, FlagState::On).is_err());
    assert!(flags::set_flag(&mut conn, "acme", DataPoint::Presentation, FlagState::On).is_err());
    use mysql::prelude::Queryable;
    assert!(conn
        .query_drop("INSERT INTO feature_flag (tenant_id, data_point, state) VALUES ('x', 'polls', 'maybe')")
        .is_err());
    assert!(conn
        .query_drop("INSERT INTO feature_flag (tenant_id, data_point, state) VALUES ('x', 'presentation', 'on')")
        .is_err());
}

#[test]
fn flag_inputs_parse() {
    assert_eq!(FlagState::parse("Shadow").unwrap(), FlagState::Shadow);
    assert!(FlagState::parse("enabled").is_err());
    assert_eq!(flags::parse_data_point("qna").unwrap(), DataPoint::Qna);
    assert!(flags::parse_data_point("presentation").is_err());
    assert!(flags::parse_shadow(Some("true")).unwrap());
    assert!(!flags::parse_shadow(None).unwrap());
    assert!(flags::parse_shadow(Some("yes please")).is_err());
}
