//! A request, checked without touching the database (claim, route, method,
//! tenant and parameters, in that order) into an [`ApiQuery`], and the
//! answer to a checked request ([`execute`]).
//!
//! Decisions where the issue is silent:
//! - The claim and the path's tenant are compared exactly (bytes, after
//!   percent-decoding the path segment); an empty claim is a missing one.
//! - The path is `rawPath` (else `requestContext.http.path`); a path under a
//!   named stage (`/prod/tenants/…`) is matched without it.
//! - The query string is `rawQueryString` (form-decoded: `+` is a blank),
//!   else `queryStringParameters` (hand-written events). A parameter a route
//!   does not take, or one given twice, is a 400 that lists what the route
//!   accepts. Blank values mean "not given" (the default sort, limit and
//!   offset; no filter).
//! - Error messages name the parameter (`from: malformed date …`).
//! - `DELETE /tenants/{tenantId}/viewers/{viewerId}` (ANALYTICS.md §8, "the
//!   API's `DELETE /viewers/{viewerId}`" under the tenant's prefix like every
//!   route): the tenant check comes first (403 for another tenant's caller,
//!   admin or not, before the database is touched: nothing is revealed),
//!   then the role (403 unless the claim `role` is exactly `admin`), then
//!   the viewer id (400 unless it is an id of EVENTS.md). It takes no query
//!   parameter and answers the receipt.
//! - `GET …/viewers/export` takes the inline CSV's parameters (so the URL of
//!   a 413 answers with `/export` added to its path): `format` may only be
//!   `csv` there, and `limit` and `offset` are checked but, as for the
//!   inline CSV, every matching row is written.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_lambda_events::event::apigw::ApiGatewayV2httpRequest;
use mysql::prelude::Queryable;
use serde_json::Value;

use super::response::ApiError;
use super::routes::{clip, percent_decode, Route, ROUTES};
use crate::contract::{is_id, DataPoint};
use crate::read::flags::{self, parse_shadow};
use crate::read::{
    self as read, AnalyticsError, PresentationParams, PresentationQuery, TimelineFormat,
    ViewerFormat, ViewerParams, ViewerQuery, ViewerSort,
};
use crate::store::Database;
use crate::write::ForgetError;

/// The JWT claim naming the caller's tenant.
pub const TENANT_CLAIM: &str = "tenantId";
/// The JWT claim naming the caller's role, and the role that may erase.
pub const ROLE_CLAIM: &str = "role";
pub const ADMIN_ROLE: &str = "admin";

/// The query parameters in order, decoded: from `rawQueryString`, or from
/// `queryStringParameters` when there is no raw query string.
fn query_parameters(request: &ApiGatewayV2httpRequest) -> Result<Vec<(String, String)>, ApiError> {
    let raw = request.raw_query_string.as_deref().unwrap_or("");
    if raw.is_empty() {
        let mut pairs: Vec<(String, String)> = request
            .query_string_parameters
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        pairs.sort();
        return Ok(pairs);
    }
    let mut pairs = Vec::new();
    for piece in raw.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
        let decode = |text: &str| {
            percent_decode(text, true).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "malformed percent-encoding in the query string near {:?}: write %XX with two hex digits, for UTF-8 bytes",
                    clip(piece)
                ))
            })
        };
        pairs.push((decode(key)?, decode(value)?));
    }
    Ok(pairs)
}

/// The request's path as matched: `rawPath`, else `requestContext.http.path`.
pub(super) fn request_path(request: &ApiGatewayV2httpRequest) -> &str {
    request
        .raw_path
        .as_deref()
        .filter(|p| !p.is_empty())
        .or(request.request_context.http.path.as_deref())
        .unwrap_or("/")
}

/// The route of the request's path, trying it without a named stage's prefix
/// when the whole path matches nothing.
fn route_of(request: &ApiGatewayV2httpRequest) -> Result<Option<Route>, ApiError> {
    let path = request_path(request);
    if let Some(route) = Route::of_path(path)? {
        return Ok(Some(route));
    }
    match request.request_context.stage.as_deref() {
        Some(stage) if !stage.is_empty() && stage != "$default" => {
            match path.strip_prefix('/').and_then(|p| p.strip_prefix(stage)) {
                Some(rest) if rest.starts_with('/') => Route::of_path(rest),
                _ => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

/// A claim of the JWT authorizer's, when present and not empty.
fn claim<'r>(request: &'r ApiGatewayV2httpRequest, name: &str) -> Option<&'r str> {
    request
        .request_context
        .authorizer
        .as_ref()?
        .jwt
        .as_ref()?
        .claims
        .get(name)
        .map(String::as_str)
        .filter(|t| !t.is_empty())
}

/// The caller's tenant from the JWT authorizer's claims.
fn claimed_tenant(request: &ApiGatewayV2httpRequest) -> Option<&str> {
    claim(request, TENANT_CLAIM)
}

/// A checked request: what to answer, for which tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiQuery {
    Presentations {
        tenant_id: String,
        query: PresentationQuery,
        shadow: bool,
    },
    Report {
        tenant_id: String,
        presentation_id: String,
        shadow: bool,
    },
    Viewers {
        tenant_id: String,
        presentation_id: String,
        query: ViewerQuery,
        format: ViewerFormat,
        shadow: bool,
    },
    /// The viewer list as a CSV file in the export bucket (ANALYTICS.md §7).
    ViewerExport {
        tenant_id: String,
        presentation_id: String,
        query: ViewerQuery,
        shadow: bool,
    },
    Timeline {
        tenant_id: String,
        presentation_id: String,
        format: TimelineFormat,
        shadow: bool,
    },
    /// Erase a viewer (ANALYTICS.md §8): checked for an admin of the tenant.
    Forget {
        tenant_id: String,
        viewer_id: String,
    },
}

/// Checks a request without touching the database: claim, route, method,
/// tenant and parameters, in that order.
pub fn parse_request(request: &ApiGatewayV2httpRequest) -> Result<ApiQuery, ApiError> {
    let Some(claimed) = claimed_tenant(request) else {
        return Err(ApiError::new(
            401,
            format!("not authenticated: the token has no {TENANT_CLAIM} claim"),
        ));
    };
    let method = &request.request_context.http.method;
    let Some(route) = route_of(request)? else {
        return Err(ApiError::new(
            404,
            format!(
                "no route {} {}: the API serves {ROUTES}",
                method,
                clip(request_path(request))
            ),
        ));
    };
    if method.as_str() != route.method() {
        return Err(ApiError::method_not_allowed(
            format!(
                "method {method} is not allowed on {}: only {} is",
                route.pattern(),
                route.method()
            ),
            route.method(),
        ));
    }
    if route.tenant_id() != claimed {
        return Err(ApiError::new(
            403,
            format!(
                "forbidden: the token is for another tenant than {:?}",
                clip(route.tenant_id())
            ),
        ));
    }
    if matches!(route, Route::ForgetViewer { .. }) && claim(request, ROLE_CLAIM) != Some(ADMIN_ROLE)
    {
        return Err(ApiError::new(
            403,
            format!("forbidden: erasing a viewer takes the {ADMIN_ROLE:?} role of the tenant"),
        ));
    }

    let accepted = route.parameters();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in query_parameters(request)? {
        if !accepted.contains(&name.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter {:?}: {} accepts {}",
                clip(&name),
                route.pattern(),
                accepted.join(", ")
            )));
        }
        if seen.contains_key(&name) {
            return Err(ApiError::bad_request(format!(
                "query parameter {name} is given more than once: give it once"
            )));
        }
        seen.insert(name, value);
    }
    let shadow = parse_shadow(seen.get("shadow").map(String::as_str))?;

    Ok(match route {
        Route::Presentations { tenant_id } => {
            let mut params = PresentationParams::default();
            for (name, value) in seen {
                params.set(&name, value);
            }
            ApiQuery::Presentations {
                tenant_id,
                query: params.query()?,
                shadow,
            }
        }
        Route::Report {
            tenant_id,
            presentation_id,
        } => ApiQuery::Report {
            tenant_id,
            presentation_id,
            shadow,
        },
        Route::Viewers {
            tenant_id,
            presentation_id,
        } => {
            let format = read::parse_viewer_format(seen.get("format").map(String::as_str))?;
            let mut params = ViewerParams::default();
            for (name, value) in seen {
                params.set(&name, value);
            }
            ApiQuery::Viewers {
                tenant_id,
                presentation_id,
                query: params.query()?,
                format,
                shadow,
            }
        }
        Route::ViewerExport {
            tenant_id,
            presentation_id,
        } => {
            let format = seen.get("format").map(|f| f.trim()).unwrap_or("");
            if !format.is_empty() && !format.eq_ignore_ascii_case("csv") {
                return Err(ApiError::bad_request(format!(
                    "format: the export is always csv, got {:?}: leave format out (or ask GET …/viewers?format=json for JSON pages)",
                    clip(format)
                )));
            }
            let mut params = ViewerParams::default();
            for (name, value) in seen {
                params.set(&name, value);
            }
            ApiQuery::ViewerExport {
                tenant_id,
                presentation_id,
                query: params.query()?,
                shadow,
            }
        }
        Route::Timeline {
            tenant_id,
            presentation_id,
        } => ApiQuery::Timeline {
            tenant_id,
            presentation_id,
            format: read::parse_timeline_format(seen.get("format").map(String::as_str))?,
            shadow,
        },
        Route::ForgetViewer {
            tenant_id,
            viewer_id,
        } => {
            if !is_id(&viewer_id) {
                return Err(ApiError::bad_request(format!(
                    "viewerId must be 1 to 64 characters, neither beginning nor ending with white space, got {:?}",
                    clip(&viewer_id)
                )));
            }
            ApiQuery::Forget {
                tenant_id,
                viewer_id,
            }
        }
    })
}

/// How long an erasure may wait (behind loads in flight) and retry: inside
/// the function's 10 s time limit.
const FORGET_BUDGET: Duration = Duration::from_secs(8);

/// Answers a checked request: the contract's JSON, less what the tenant's
/// flags leave out; an erasure's receipt. Reads take a connection outside
/// any transaction and write nothing (the API's reading user may only
/// `SELECT`); an erasure runs its own transaction, `now_ms` its time.
pub fn execute(db: &Database, query: &ApiQuery, now_ms: i64) -> Result<Answer, AnalyticsError> {
    if let ApiQuery::Forget {
        tenant_id,
        viewer_id,
    } = query
    {
        let deadline = Instant::now() + FORGET_BUDGET;
        return match crate::write::forget(db, tenant_id, viewer_id, now_ms, deadline) {
            Ok(receipt) => Ok(Answer::Json(
                serde_json::to_value(receipt).expect("a receipt serialises"),
            )),
            Err(ForgetError::Invalid(message)) => Err(AnalyticsError::BadRequest(message)),
            Err(ForgetError::Database(error)) => Err(AnalyticsError::Database(error.to_string())),
        };
    }
    let mut conn = db
        .conn()
        .map_err(|e| AnalyticsError::Database(e.to_string()))?;
    if let ApiQuery::Viewers {
        tenant_id,
        presentation_id,
        query,
        format: ViewerFormat::Csv,
        shadow,
    } = query
    {
        return viewers_csv(&mut conn, tenant_id, presentation_id, query, *shadow).map(Answer::Csv);
    }
    if let ApiQuery::Timeline {
        tenant_id,
        presentation_id,
        format: TimelineFormat::Svg,
        shadow,
    } = query
    {
        return timeline_svg(&mut conn, tenant_id, presentation_id, *shadow).map(Answer::Svg);
    }
    read(&mut conn, query).map(Answer::Json)
}

/// An answer's body.
pub enum Answer {
    Json(Value),
    /// The viewer list as CSV (ANALYTICS.md §7).
    Csv(String),
    /// The timeline drawn as an SVG chart.
    Svg(String),
}

/// The timeline as an SVG chart: a picture of the attendance alone, so it is
/// drawn only when the flags serve attendance; otherwise a 400, as the CSV
/// answers (an empty chart would read as "nobody came").
fn timeline_svg(
    conn: &mut impl Queryable,
    tenant_id: &str,
    presentation_id: &str,
    shadow: bool,
) -> Result<String, AnalyticsError> {
    let flags = flags::tenant_flags(conn, tenant_id)?;
    if !flags.serves(DataPoint::Attendance, shadow) {
        return Err(AnalyticsError::BadRequest(
            "format: svg draws the attendance, and the tenant's rollout flags leave it out (try shadow=true, or format=json)".to_string(),
        ));
    }
    let (timeline, heading) = read::timeline_with_heading(conn, tenant_id, presentation_id)?;
    Ok(read::timeline_svg(&timeline, &heading))
}

/// Most rows a CSV answered inline holds; more is a 413 naming the export.
pub const MAX_INLINE_CSV_ROWS: u64 = 10_000;

/// Whether the tenant's flags serve the viewer CSV: its columns are every
/// data point's, so only when they serve all four (decided here, for the
/// inline CSV and the export alike). `instead` says what to ask otherwise.
pub(super) fn check_csv_served(
    conn: &mut impl Queryable,
    tenant_id: &str,
    shadow: bool,
    instead: &str,
) -> Result<(), AnalyticsError> {
    let flags = flags::tenant_flags(conn, tenant_id)?;
    if !flags.hidden(shadow).is_empty() {
        return Err(AnalyticsError::BadRequest(format!(
            "format: csv holds attendance, polls, surveys and qna, and the tenant's rollout flags leave some out (try shadow=true, or {instead})"
        )));
    }
    Ok(())
}

/// The viewer list as CSV, inline.
fn viewers_csv(
    conn: &mut impl Queryable,
    tenant_id: &str,
    presentation_id: &str,
    query: &ViewerQuery,
    shadow: bool,
) -> Result<String, AnalyticsError> {
    check_csv_served(conn, tenant_id, shadow, "format=json")?;
    let mut body = Vec::new();
    match read::viewer_csv(
        conn,
        tenant_id,
        presentation_id,
        query,
        Some(MAX_INLINE_CSV_ROWS),
        &mut body,
    )? {
        read::CsvOutcome::Complete(_) => Ok(String::from_utf8_lossy(&body).into_owned()),
        read::CsvOutcome::TooMany => Err(AnalyticsError::TooLarge(format!(
            "more than {MAX_INLINE_CSV_ROWS} viewers match: export them with GET /tenants/{{tenantId}}/presentations/{{presentationId}}/viewers/export (same filters), or narrow the filters"
        ))),
    }
}

fn read(conn: &mut impl Queryable, query: &ApiQuery) -> Result<Value, AnalyticsError> {
    match query {
        ApiQuery::Presentations {
            tenant_id,
            query,
            shadow,
        } => {
            let list = read::presentation_list(conn, tenant_id, query)?;
            let flags = flags::tenant_flags(conn, tenant_id)?;
            Ok(flags::presentation_list_json(&list, &flags, *shadow))
        }
        ApiQuery::Report {
            tenant_id,
            presentation_id,
            shadow,
        } => {
            let report = read::presentation_report_read_only(conn, tenant_id, presentation_id)?;
            let flags = flags::tenant_flags(conn, tenant_id)?;
            Ok(flags::report_json(&report, &flags, *shadow))
        }
        ApiQuery::Viewers {
            tenant_id,
            presentation_id,
            query,
            shadow,
            ..
        } => {
            let flags = flags::tenant_flags(conn, tenant_id)?;
            // Sorting by a score the flags leave out would show its order.
            if query.sort == ViewerSort::Score && !flags.hidden(*shadow).is_empty() {
                return Err(AnalyticsError::BadRequest(
                    "sort: score is not served: the engagement score combines attendance, polls, surveys and qna, and the tenant's rollout flags leave some out (try shadow=true, or another sort)".to_string(),
                ));
            }
            let list = read::viewer_list(conn, tenant_id, presentation_id, query)?;
            Ok(flags::viewer_list_json(&list, &flags, *shadow))
        }
        ApiQuery::Timeline {
            tenant_id,
            presentation_id,
            shadow,
            ..
        } => {
            let timeline = read::timeline(conn, tenant_id, presentation_id)?;
            let flags = flags::tenant_flags(conn, tenant_id)?;
            Ok(flags::timeline_json(&timeline, &flags, *shadow))
        }
        ApiQuery::Forget { .. } => Err(AnalyticsError::BadRequest(
            "an erasure is not a read".to_string(),
        )),
        ApiQuery::ViewerExport { .. } => Err(AnalyticsError::BadRequest(
            "an export is written to the export bucket, not answered inline".to_string(),
        )),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(method: &str, raw_path: &str, raw_query: &str, tenant: Option<&str>) -> Value {
        let claims = match tenant {
            Some(t) => json!({ "sub": "user-1", TENANT_CLAIM: t }),
            None => json!({ "sub": "user-1" }),
        };
        json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": raw_path,
            "rawQueryString": raw_query,
            "headers": {"accept": "application/json"},
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api",
                "authorizer": {"jwt": {"claims": claims, "scopes": null}},
                "domainName": "api.example.com",
                "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1",
                         "sourceIp": "192.0.2.1", "userAgent": "test"},
                "requestId": "r-1",
                "routeKey": "$default",
                "stage": "$default",
                "time": "10/Sep/2021:12:45:01 +0000",
                "timeEpoch": 1_631_277_901_123i64
            },
            "isBase64Encoded": false
        })
    }

    fn parse(
        method: &str,
        path: &str,
        query: &str,
        tenant: Option<&str>,
    ) -> Result<ApiQuery, ApiError> {
        let event: ApiGatewayV2httpRequest =
            serde_json::from_value(request(method, path, query, tenant)).expect("a v2 event");
        parse_request(&event)
    }

    #[test]
    fn checks_in_order() {
        let status = |m: &str, path: &str, q: &str, t: Option<&str>| {
            parse(m, path, q, t).unwrap_err().status
        };
        assert_eq!(status("GET", "/nowhere", "", None), 401);
        assert_eq!(
            status("GET", "/tenants/acme/presentations", "", Some("")),
            401
        );
        assert_eq!(status("GET", "/nowhere", "", Some("acme")), 404);
        assert_eq!(
            status("POST", "/tenants/acme/presentations", "", Some("acme")),
            405
        );
        assert_eq!(
            status("GET", "/tenants/acme/presentations", "", Some("globex")),
            403
        );
        assert_eq!(
            status("GET", "/tenants/acme/presentations", "", Some("acme ")),
            403
        );
        assert_eq!(
            status("GET", "/tenants/acme/presentations", "sort=x", Some("acme")),
            400
        );
        assert_eq!(
            status(
                "GET",
                "/tenants/acme/presentations/p",
                "limit=5",
                Some("acme")
            ),
            400
        );
        assert_eq!(
            status(
                "GET",
                "/tenants/acme/presentations",
                "limit=1&limit=2",
                Some("acme")
            ),
            400
        );
        assert_eq!(
            status(
                "GET",
                "/tenants/acme/presentations",
                "search=%zz",
                Some("acme")
            ),
            400
        );
    }

    #[test]
    fn parses_parameters() {
        let q = parse(
            "GET",
            "/tenants/acme/presentations/p-1/viewers",
            "department=Sales+Ops&country=us&device=&search=a%25b&sort=Name&limit=10&offset=20&shadow=true",
            Some("acme"),
        )
        .unwrap();
        assert_eq!(
            q,
            ApiQuery::Viewers {
                tenant_id: "acme".into(),
                presentation_id: "p-1".into(),
                query: ViewerQuery {
                    department: Some("Sales Ops".into()),
                    country: Some("us".into()),
                    device: None,
                    search: Some("a%b".into()),
                    sort: ViewerSort::Name,
                    limit: 10,
                    offset: 20,
                },
                format: ViewerFormat::Json,
                shadow: true,
            }
        );
        let q = parse(
            "GET",
            "/tenants/acme/presentations",
            "from=2021-09-10&to=2021-09-10",
            Some("acme"),
        )
        .unwrap();
        let ApiQuery::Presentations { query, shadow, .. } = q else {
            panic!("{q:?}")
        };
        assert_eq!(
            (query.from, query.to, shadow),
            (Some(1_631_232_000_000), Some(1_631_318_399_999), false)
        );
        let err = parse(
            "GET",
            "/tenants/acme/presentations",
            "from=yesterday",
            Some("acme"),
        )
        .unwrap_err();
        assert!(err.message.starts_with("from: malformed date"), "{err}");
        let err = parse(
            "GET",
            "/tenants/acme/presentations/p/viewers",
            "sort=views",
            Some("acme"),
        )
        .unwrap_err();
        assert!(err.message.starts_with("sort: "), "{err}");
        let err = parse(
            "GET",
            "/tenants/acme/presentations/p/viewers",
            "limit=1001",
            Some("acme"),
        )
        .unwrap_err();
        assert!(err.message.starts_with("limit "), "{err}");
    }

    #[test]
    fn the_timeline_takes_a_format() {
        let path = "/tenants/acme/presentations/p-1/timeline";
        let format = |query: &str| match parse("GET", path, query, Some("acme")) {
            Ok(ApiQuery::Timeline { format, .. }) => Ok(format),
            Ok(other) => panic!("{other:?}"),
            Err(err) => Err(err),
        };
        assert_eq!(format(""), Ok(TimelineFormat::Json));
        assert_eq!(format("format=json"), Ok(TimelineFormat::Json));
        assert_eq!(format("format=SVG&shadow=true"), Ok(TimelineFormat::Svg));
        let err = format("format=png").unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("json (the default) or svg"), "{err}");
        // The viewer list's csv is not the timeline's.
        assert_eq!(format("format=csv").unwrap_err().status, 400);
    }

    fn parse_as(
        method: &str,
        path: &str,
        query: &str,
        claims: Value,
    ) -> Result<ApiQuery, ApiError> {
        let mut event = request(method, path, query, Some("x"));
        event["requestContext"]["authorizer"]["jwt"]["claims"] = claims;
        parse_request(&serde_json::from_value(event).expect("a v2 event"))
    }

    #[test]
    fn an_erasure_is_for_the_tenants_admins_only() {
        let admin = json!({"sub": "u", TENANT_CLAIM: "acme", ROLE_CLAIM: ADMIN_ROLE});
        assert_eq!(
            parse_as("DELETE", "/tenants/acme/viewers/u-10", "", admin.clone()).unwrap(),
            ApiQuery::Forget {
                tenant_id: "acme".into(),
                viewer_id: "u-10".into()
            }
        );
        let status = |m: &str, path: &str, q: &str, claims: Value| {
            parse_as(m, path, q, claims).unwrap_err().status
        };
        // Not an admin: no role, another role, a role in another case.
        for claims in [
            json!({"sub": "u", TENANT_CLAIM: "acme"}),
            json!({"sub": "u", TENANT_CLAIM: "acme", ROLE_CLAIM: "viewer"}),
            json!({"sub": "u", TENANT_CLAIM: "acme", ROLE_CLAIM: "Admin"}),
        ] {
            assert_eq!(
                status("DELETE", "/tenants/acme/viewers/u-10", "", claims),
                403
            );
        }
        // Another tenant's admin: 403 before the role or the database.
        let globex_admin = json!({"sub": "u", TENANT_CLAIM: "globex", ROLE_CLAIM: ADMIN_ROLE});
        let err = parse_as("DELETE", "/tenants/acme/viewers/u-10", "", globex_admin).unwrap_err();
        assert_eq!(err.status, 403);
        assert!(!err.message.contains("u-10"), "{err}");
        // The route answers DELETE only, and the reads not DELETE.
        let err = parse_as("GET", "/tenants/acme/viewers/u-10", "", admin.clone()).unwrap_err();
        assert_eq!((err.status, err.allow), (405, Some("DELETE")));
        let err = parse_as("DELETE", "/tenants/acme/presentations", "", admin.clone()).unwrap_err();
        assert_eq!((err.status, err.allow), (405, Some("GET")));
        // No parameters, and an id of EVENTS.md.
        assert_eq!(
            status(
                "DELETE",
                "/tenants/acme/viewers/u-10",
                "shadow=true",
                admin.clone()
            ),
            400
        );
        assert_eq!(
            status("DELETE", "/tenants/acme/viewers/u-10%20", "", admin.clone()),
            400
        );
        assert_eq!(
            status(
                "DELETE",
                &format!("/tenants/acme/viewers/{}", "u".repeat(65)),
                "",
                admin
            ),
            400
        );
    }

    #[test]
    fn the_export_takes_the_inline_csv_s_parameters() {
        let path = "/tenants/acme/presentations/p-1/viewers/export";
        let q = parse(
            "GET",
            path,
            "format=csv&sort=score&device=tv&limit=10",
            Some("acme"),
        )
        .unwrap();
        let ApiQuery::ViewerExport { query, shadow, .. } = q else {
            panic!("{q:?}")
        };
        assert_eq!(
            (query.sort, query.device.as_deref(), shadow),
            (ViewerSort::Score, Some("tv"), false)
        );
        assert!(matches!(
            parse("GET", path, "format=", Some("acme")),
            Ok(ApiQuery::ViewerExport { .. })
        ));
        for bad in [
            "format=json",
            "format=xml",
            "sort=views",
            "limit=1001",
            "page=2",
        ] {
            let err = parse("GET", path, bad, Some("acme")).unwrap_err();
            assert_eq!(err.status, 400, "{bad}: {err}");
        }
        let status = |m: &str, t: Option<&str>| parse(m, path, "", t).unwrap_err().status;
        assert_eq!(status("GET", None), 401);
        assert_eq!(status("POST", Some("acme")), 405);
        assert_eq!(status("GET", Some("globex")), 403);
    }

    #[test]
    fn named_stages_are_stripped() {
        let mut event = request("GET", "/prod/tenants/acme/presentations", "", Some("acme"));
        event["requestContext"]["stage"] = json!("prod");
        let event: ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap();
        assert!(matches!(
            parse_request(&event),
            Ok(ApiQuery::Presentations { .. })
        ));
    }
}
