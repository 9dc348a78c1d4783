//! The analytics HTTP API (`functions/analytics-api`), behind an API Gateway
//! HTTP API (payload format 2.0) with a JWT authorizer:
//!
//! - `GET /tenants/{tenantId}/presentations` — the presentation list
//!   (ANALYTICS.md §3); parameters `search`, `from`, `to`, `sort`, `limit`,
//!   `offset`.
//! - `GET /tenants/{tenantId}/presentations/{presentationId}` — the report (§1).
//! - `GET /tenants/{tenantId}/presentations/{presentationId}/viewers` — the
//!   viewer list (§2); parameters `department`, `country`, `device`,
//!   `search`, `sort`, `limit`, `offset`.
//!
//! Every route also takes `shadow=true|false` (see [`crate::read::flags`]).
//!
//! Statuses: 200 with the contract's JSON; 401 when the authorizer's claims
//! have no `tenantId`; 403 when the path's tenant is not the claim's; 404 for
//! an unknown route or presentation (another tenant's presentation is
//! unknown too); 405 for any method but GET; 400 for a bad parameter; 503
//! when the database fails (a generic body, the details only in the log).
//! Every body is JSON (`{"error": "…"}` for errors) and never holds SQL or a
//! stack trace.
//!
//! The parsing of the user's parameters ([`ViewerParams`],
//! [`PresentationParams`]) is shared with the `warehouse` CLI, so both accept
//! exactly the same inputs.
//!
//! Decisions where the issue is silent:
//! - Checks run in this order: claim (401), route (404), method (405),
//!   tenant (403), parameters (400), then the query (404 for an unknown
//!   presentation, 503 for a database failure). An unauthenticated caller
//!   learns nothing, not even which routes exist.
//! - The claim and the path's tenant are compared exactly (bytes, after
//!   percent-decoding the path segment); an empty claim is a missing one.
//! - The path is `rawPath` (else `requestContext.http.path`); each segment is
//!   percent-decoded (`%2F` inside an id is part of the id, `+` stays `+`);
//!   malformed percent-encoding is a 400. One trailing slash is ignored;
//!   a path under a named stage (`/prod/tenants/…`) is matched without it.
//! - The query string is `rawQueryString` (form-decoded: `+` is a blank),
//!   else `queryStringParameters` (hand-written events). A parameter a route
//!   does not take, or one given twice, is a 400 that lists what the route
//!   accepts. Blank values mean "not given" (the default sort, limit and
//!   offset; no filter).
//! - Error messages name the parameter (`from: malformed date …`).
//! - Responses carry `Cache-Control: no-store` (per-tenant data behind
//!   authorization); 405 carries `Allow: GET`.
//! - A panic while answering (a bug, never bad input) is a 500 with a
//!   generic body.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::{header, HeaderMap, HeaderValue, Method};
use mysql::prelude::Queryable;
use serde_json::{json, Value};

use crate::read::flags::{self, parse_shadow};
use crate::read::{
    self as read, parse_date, parse_date_to, parse_limit, parse_offset, AnalyticsError,
    PresentationQuery, PresentationSort, ViewerQuery, ViewerSort,
};
use crate::store::Database;
use crate::store::DatabaseSettings;

/// The JWT claim naming the caller's tenant.
pub const TENANT_CLAIM: &str = "tenantId";

/// The routes, for error messages.
pub const ROUTES: &str = "GET /tenants/{tenantId}/presentations, \
     GET /tenants/{tenantId}/presentations/{presentationId} and \
     GET /tenants/{tenantId}/presentations/{presentationId}/viewers";

/// The body of a 503: the details go to the log only.
const UNAVAILABLE: &str = "the analytics database is unavailable right now; try again shortly";
/// The body of a 500.
const INTERNAL: &str = "internal error while answering; the request id is in the log";

// ---------------------------------------------------------------------------
// Parameters shared with the CLI
// ---------------------------------------------------------------------------

/// `Some` text unless missing or blank.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

/// The error of a parameter, naming it.
fn named(name: &str, error: AnalyticsError) -> AnalyticsError {
    match error {
        AnalyticsError::BadRequest(m) if !m.starts_with(name) => {
            AnalyticsError::BadRequest(format!("{name}: {m}"))
        }
        other => other,
    }
}

/// The viewer list's parameters as the user wrote them (query string or
/// command line); [`ViewerParams::query`] checks them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewerParams {
    pub department: Option<String>,
    pub country: Option<String>,
    pub device: Option<String>,
    pub search: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<String>,
    pub offset: Option<String>,
}

impl ViewerParams {
    pub const NAMES: [&'static str; 7] = [
        "department",
        "country",
        "device",
        "search",
        "sort",
        "limit",
        "offset",
    ];

    /// The query, or a bad request naming the parameter that is wrong.
    pub fn query(&self) -> Result<ViewerQuery, AnalyticsError> {
        let sort = match given(&self.sort) {
            None => ViewerSort::default(),
            Some(text) => ViewerSort::parse(text).map_err(|e| named("sort", e))?,
        };
        Ok(ViewerQuery {
            department: given(&self.department).map(str::to_string),
            country: given(&self.country).map(str::to_string),
            device: given(&self.device).map(str::to_string),
            search: given(&self.search).map(str::to_string),
            sort,
            limit: parse_limit(self.limit.as_deref()).map_err(|e| named("limit", e))?,
            offset: parse_offset(self.offset.as_deref()).map_err(|e| named("offset", e))?,
        })
    }

    fn set(&mut self, name: &str, value: String) {
        let slot = match name {
            "department" => &mut self.department,
            "country" => &mut self.country,
            "device" => &mut self.device,
            "search" => &mut self.search,
            "sort" => &mut self.sort,
            "limit" => &mut self.limit,
            "offset" => &mut self.offset,
            _ => return,
        };
        *slot = Some(value);
    }
}

/// The presentation list's parameters as the user wrote them;
/// [`PresentationParams::query`] checks them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PresentationParams {
    pub search: Option<String>,
    /// `YYYY-MM-DD` (from the day's start) or RFC 3339.
    pub from: Option<String>,
    /// `YYYY-MM-DD` (to the day's end) or RFC 3339.
    pub to: Option<String>,
    pub sort: Option<String>,
    pub limit: Option<String>,
    pub offset: Option<String>,
}

impl PresentationParams {
    pub const NAMES: [&'static str; 6] = ["search", "from", "to", "sort", "limit", "offset"];

    /// The query, or a bad request naming the parameter that is wrong.
    /// (`from` after `to` is refused by [`read::presentation_list`].)
    pub fn query(&self) -> Result<PresentationQuery, AnalyticsError> {
        let sort = match given(&self.sort) {
            None => PresentationSort::default(),
            Some(text) => PresentationSort::parse(text).map_err(|e| named("sort", e))?,
        };
        Ok(PresentationQuery {
            search: given(&self.search).map(str::to_string),
            from: given(&self.from)
                .map(parse_date)
                .transpose()
                .map_err(|e| named("from", e))?,
            to: given(&self.to)
                .map(parse_date_to)
                .transpose()
                .map_err(|e| named("to", e))?,
            sort,
            limit: parse_limit(self.limit.as_deref()).map_err(|e| named("limit", e))?,
            offset: parse_offset(self.offset.as_deref()).map_err(|e| named("offset", e))?,
        })
    }

    fn set(&mut self, name: &str, value: String) {
        let slot = match name {
            "search" => &mut self.search,
            "from" => &mut self.from,
            "to" => &mut self.to,
            "sort" => &mut self.sort,
            "limit" => &mut self.limit,
            "offset" => &mut self.offset,
            _ => return,
        };
        *slot = Some(value);
    }
}

// ---------------------------------------------------------------------------
// Errors and responses
// ---------------------------------------------------------------------------

/// An answer other than 200: the status and the message of `{"error": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<AnalyticsError> for ApiError {
    /// Database failures become a generic 503: log their details first.
    fn from(error: AnalyticsError) -> ApiError {
        match error {
            AnalyticsError::NotFound(_) => ApiError::new(404, error.to_string()),
            AnalyticsError::BadRequest(message) => ApiError::new(400, message),
            AnalyticsError::Database(_) => ApiError::new(503, UNAVAILABLE),
        }
    }
}

/// An HTTP API response with a JSON body.
pub fn json_response(status: u16, body: &Value) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == 405 {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
    }
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_string());
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    response.headers = headers;
    response.body = Some(Body::Text(text));
    response.is_base64_encoded = false;
    response
}

fn error_response(error: &ApiError) -> ApiGatewayV2httpResponse {
    json_response(error.status, &json!({ "error": error.message }))
}

// ---------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------

/// A matched route with its decoded path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Presentations {
        tenant_id: String,
    },
    Report {
        tenant_id: String,
        presentation_id: String,
    },
    Viewers {
        tenant_id: String,
        presentation_id: String,
    },
}

impl Route {
    /// The route of a path: `Ok(None)` when no route matches, a 400 when a
    /// segment's percent-encoding is malformed.
    pub fn of_path(path: &str) -> Result<Option<Route>, ApiError> {
        let Some(rest) = path.strip_prefix('/') else {
            return Ok(None);
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let raw: Vec<&str> = rest.split('/').collect();
        if !(3..=5).contains(&raw.len()) || raw.iter().any(|s| s.is_empty()) {
            return Ok(None);
        }
        let mut segments = Vec::with_capacity(raw.len());
        for segment in raw {
            segments.push(percent_decode(segment, false).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "malformed percent-encoding in the path segment {:?}: write %XX with two hex digits, for UTF-8 bytes",
                    clip(segment)
                ))
            })?);
        }
        let s: Vec<&str> = segments.iter().map(String::as_str).collect();
        Ok(match s.as_slice() {
            ["tenants", tenant, "presentations"] => Some(Route::Presentations {
                tenant_id: tenant.to_string(),
            }),
            ["tenants", tenant, "presentations", presentation] => Some(Route::Report {
                tenant_id: tenant.to_string(),
                presentation_id: presentation.to_string(),
            }),
            ["tenants", tenant, "presentations", presentation, "viewers"] => Some(Route::Viewers {
                tenant_id: tenant.to_string(),
                presentation_id: presentation.to_string(),
            }),
            _ => None,
        })
    }

    pub fn tenant_id(&self) -> &str {
        match self {
            Route::Presentations { tenant_id }
            | Route::Report { tenant_id, .. }
            | Route::Viewers { tenant_id, .. } => tenant_id,
        }
    }

    /// The route as declared in the template, for logs and messages.
    pub fn pattern(&self) -> &'static str {
        match self {
            Route::Presentations { .. } => "GET /tenants/{tenantId}/presentations",
            Route::Report { .. } => "GET /tenants/{tenantId}/presentations/{presentationId}",
            Route::Viewers { .. } => {
                "GET /tenants/{tenantId}/presentations/{presentationId}/viewers"
            }
        }
    }

    /// The query parameters the route takes.
    pub fn parameters(&self) -> Vec<&'static str> {
        let mut names = match self {
            Route::Presentations { .. } => PresentationParams::NAMES.to_vec(),
            Route::Report { .. } => Vec::new(),
            Route::Viewers { .. } => ViewerParams::NAMES.to_vec(),
        };
        names.push("shadow");
        names
    }
}

/// At most 100 characters of user input, for messages.
fn clip(text: &str) -> String {
    crate::contract::abbreviate(text, 100)
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `text` (and `+` as a blank when `plus_is_space`, as in a
/// query string); `None` when an escape is malformed or the bytes are not UTF-8.
pub fn percent_decode(text: &str, plus_is_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex_digit(*bytes.get(i + 1)?)?;
                let lo = hex_digit(*bytes.get(i + 2)?)?;
                out.push(hi * 16 + lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

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
fn request_path(request: &ApiGatewayV2httpRequest) -> &str {
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

/// The caller's tenant from the JWT authorizer's claims.
fn claimed_tenant(request: &ApiGatewayV2httpRequest) -> Option<&str> {
    request
        .request_context
        .authorizer
        .as_ref()?
        .jwt
        .as_ref()?
        .claims
        .get(TENANT_CLAIM)
        .map(String::as_str)
        .filter(|t| !t.is_empty())
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

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
        shadow: bool,
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
    if *method != Method::GET {
        return Err(ApiError::new(
            405,
            format!(
                "method {method} is not allowed on {}: only GET is",
                route.pattern()
            ),
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
            let mut params = ViewerParams::default();
            for (name, value) in seen {
                params.set(&name, value);
            }
            ApiQuery::Viewers {
                tenant_id,
                presentation_id,
                query: params.query()?,
                shadow,
            }
        }
    })
}

/// Answers a checked request: the contract's JSON, less what the tenant's
/// flags leave out. The presentation list writes summaries: give it a
/// connection to the primary, outside any transaction.
pub fn execute(conn: &mut impl Queryable, query: &ApiQuery) -> Result<Value, AnalyticsError> {
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
            let report = read::presentation_report(conn, tenant_id, presentation_id)?;
            let flags = flags::tenant_flags(conn, tenant_id)?;
            Ok(flags::report_json(&report, &flags, *shadow))
        }
        ApiQuery::Viewers {
            tenant_id,
            presentation_id,
            query,
            shadow,
        } => {
            let list = read::viewer_list(conn, tenant_id, presentation_id, query)?;
            let flags = flags::tenant_flags(conn, tenant_id)?;
            Ok(flags::viewer_list_json(&list, &flags, *shadow))
        }
    }
}

// ---------------------------------------------------------------------------
// The function
// ---------------------------------------------------------------------------

/// The analytics API function: one database pool per container.
pub struct AnalyticsApi {
    db: Arc<Database>,
}

impl AnalyticsApi {
    pub fn new(db: Arc<Database>) -> AnalyticsApi {
        AnalyticsApi { db }
    }

    /// From the environment (`DATABASE_URL` or the `DB_*` settings), with
    /// one connection: a Lambda container answers one request at a time.
    pub async fn from_env() -> Result<AnalyticsApi, lambda_runtime::Error> {
        let settings = DatabaseSettings::from_env()?;
        let db =
            Database::connect(settings, crate::handlers::lambda::LAMBDA_MAX_CONNECTIONS).await?;
        tracing::info!(database = %db.describe(), "analytics API ready");
        Ok(AnalyticsApi::new(Arc::new(db)))
    }

    /// The Lambda handler: always a response, never an invocation error.
    pub async fn handle(
        &self,
        event: lambda_runtime::LambdaEvent<ApiGatewayV2httpRequest>,
    ) -> Result<ApiGatewayV2httpResponse, lambda_runtime::Error> {
        Ok(self.respond(&event.payload).await)
    }

    /// The response to one request.
    pub async fn respond(&self, request: &ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
        let started = Instant::now();
        let request_id = request
            .request_context
            .request_id
            .clone()
            .unwrap_or_default();
        let response = match self.answer(request, &request_id).await {
            Ok(body) => json_response(200, &body),
            Err(error) => error_response(&error),
        };
        tracing::info!(
            request_id,
            method = %request.request_context.http.method,
            path = %clip(request_path(request)),
            status = response.status_code,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request answered"
        );
        response
    }

    async fn answer(
        &self,
        request: &ApiGatewayV2httpRequest,
        request_id: &str,
    ) -> Result<Value, ApiError> {
        let query = parse_request(request)?;
        let db = self.db.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut conn = db
                .conn()
                .map_err(|e| AnalyticsError::Database(e.to_string()))?;
            execute(&mut conn, &query)
        })
        .await;
        match outcome {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(AnalyticsError::Database(details))) => {
                tracing::error!(request_id, error = %details, "database failure");
                Err(ApiError::new(503, UNAVAILABLE))
            }
            Ok(Err(error)) => Err(error.into()),
            Err(join) => {
                tracing::error!(request_id, error = %join, "answering panicked");
                Err(ApiError::new(500, INTERNAL))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn decodes_percent_escapes() {
        assert_eq!(
            percent_decode("a%2Fb%20c+d", false).as_deref(),
            Some("a/b c+d")
        );
        assert_eq!(percent_decode("a+b%2B", true).as_deref(), Some("a b+"));
        assert_eq!(percent_decode("Zo%C3%AB", false).as_deref(), Some("Zoë"));
        assert_eq!(percent_decode("%", false), None);
        assert_eq!(percent_decode("%4", false), None);
        assert_eq!(percent_decode("%zz", false), None);
        assert_eq!(percent_decode("%FF", false), None);
    }

    #[test]
    fn matches_routes() {
        let p = |path: &str| Route::of_path(path).unwrap();
        assert_eq!(
            p("/tenants/acme/presentations"),
            Some(Route::Presentations {
                tenant_id: "acme".into()
            })
        );
        assert_eq!(
            p("/tenants/acme/presentations/p%2F1/"),
            Some(Route::Report {
                tenant_id: "acme".into(),
                presentation_id: "p/1".into()
            })
        );
        assert_eq!(
            p("/tenants/a%20b/presentations/p-1/viewers"),
            Some(Route::Viewers {
                tenant_id: "a b".into(),
                presentation_id: "p-1".into()
            })
        );
        for unknown in [
            "/",
            "",
            "tenants/acme/presentations",
            "/tenants/acme",
            "/tenants//presentations",
            "/tenants/acme/presentations//viewers",
            "/tenants/acme/presentations/p-1/polls",
            "/tenants/acme/presentations/p-1/viewers/x",
        ] {
            assert_eq!(p(unknown), None, "{unknown}");
        }
        assert_eq!(
            Route::of_path("/tenants/a%zz/presentations")
                .unwrap_err()
                .status,
            400
        );
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
    fn named_stages_are_stripped() {
        let mut event = request("GET", "/prod/tenants/acme/presentations", "", Some("acme"));
        event["requestContext"]["stage"] = json!("prod");
        let event: ApiGatewayV2httpRequest = serde_json::from_value(event).unwrap();
        assert!(matches!(
            parse_request(&event),
            Ok(ApiQuery::Presentations { .. })
        ));
    }

    #[test]
    fn responses_are_json() {
        let r = error_response(&ApiError::new(405, "no"));
        assert_eq!(r.status_code, 405);
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["allow"], "GET");
        assert_eq!(r.body, Some(Body::Text(r#"{"error":"no"}"#.into())));
        let r = ApiError::from(AnalyticsError::Database("SELECT broke".into()));
        assert_eq!(r.status, 503);
        assert!(!r.message.contains("SELECT"));
    }
}
