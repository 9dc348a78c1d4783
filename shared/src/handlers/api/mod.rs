//! The analytics HTTP API (`functions/analytics-api`), behind an API Gateway
//! HTTP API (payload format 2.0) with a JWT authorizer:
//!
//! - `GET /tenants/{tenantId}/presentations` — the presentation list
//!   (ANALYTICS.md §3); parameters `search`, `from`, `to`, `sort`, `limit`,
//!   `offset`.
//! - `GET /tenants/{tenantId}/presentations/{presentationId}` — the report (§1).
//! - `GET /tenants/{tenantId}/presentations/{presentationId}/viewers` — the
//!   viewer list (§2); parameters `department`, `country`, `device`,
//!   `search`, `sort`, `limit`, `offset`, and `format` (`json`, or `csv`:
//!   every matching row as `text/csv`, §7; 413 naming the export route when
//!   more than 10,000 match).
//! - `GET /tenants/{tenantId}/presentations/{presentationId}/viewers/export`
//!   — the same rows as the CSV, every one, written to the export bucket
//!   (`VIEWER_EXPORT_BUCKET`); answers `{"rows", "url", "expiresAt"}`, a
//!   pre-signed URL valid 15 minutes (§7; see `export`).
//! - `GET /tenants/{tenantId}/presentations/{presentationId}/timeline` — the
//!   attendance timeline (§4), governed by the attendance flag; parameter
//!   `format` (`json`, or `svg`: the curve drawn as a chart,
//!   `image/svg+xml`, a 400 when the flags leave attendance out).
//! - `DELETE /tenants/{tenantId}/viewers/{viewerId}` — erases the viewer
//!   (§8) and answers the receipt; only for the tenant's admins (the JWT
//!   claim `role` = `admin`).
//!
//! Every GET route also takes `shadow=true|false` (see [`crate::read::flags`]).
//!
//! Statuses: 200 with the contract's JSON; 401 when the authorizer's claims
//! have no `tenantId`; 403 when the path's tenant is not the claim's, or for
//! an erasure without the admin role; 404 for an unknown route or
//! presentation (another tenant's presentation is unknown too); 405 for a
//! method the route does not answer; 400 for a bad parameter; 503 when the
//! database fails (or the export bucket: unset, or failing) (a generic body, the details only in the log); 504 when a
//! statement runs past the API's time limit (`API_STATEMENT_TIME_LIMIT_MS`,
//! default 5 s: the server cuts it off, so no query outlives its request by
//! more than that).
//!
//! The reads write nothing: they can run as a database user with `SELECT`
//! alone (docs/DEPLOY.md). They recompute no summary: the presentation list
//! shows the summaries as the loaders last refreshed them, and names the rows
//! whose figures lag their latest load (`staleFigures`); a report is served
//! from its cached copy when that is of the presentation's current revision,
//! otherwise computed and not cached. The erasure route writes: the template
//! serves it from a function of its own (`functions/erase-viewer`), whose
//! user may; each deployed function answers only its own routes
//! ([`ApiRoutes`]), so a read function never attempts a write, nor the
//! erasure function a read.
//! Every body is JSON (`{"error": "…"}` for errors; the CSV and SVG
//! answers aside) and never holds SQL or a stack trace.
//!
//! The parsing of the user's parameters ([`crate::read::ViewerParams`],
//! [`crate::read::PresentationParams`]) is shared with the `warehouse` CLI,
//! so both accept exactly the same inputs.
//!
//! Checks run in this order: claim (401), route (404), method (405),
//! tenant (403), role (403, erasures), parameters (400), then the query (404 for an unknown
//! presentation, 503 for a database failure). An unauthenticated caller
//! learns nothing, not even which routes exist. A panic while answering (a
//! bug, never bad input) is a 500 with a generic body.
//!
//! This file wires the function (its database pool, its S3 client, the
//! Lambda handler); `routes` matches paths, `request` checks a request and
//! answers it, `export` writes the exports, `response` shapes the answers.

mod export;
mod request;
mod response;
mod routes;

pub use export::{ViewerExports, EXPORT_FOLDER, EXPORT_URL_LIFETIME};
pub use routes::percent_decode;

use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::event::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};

use crate::read::AnalyticsError;
use crate::store::{system_clock, Clock, Database};
use request::{execute, parse_request, request_path, Answer, ApiQuery};
use response::{
    csv_response, error_response, json_response, svg_response, ApiError, INTERNAL, TIMED_OUT,
    UNAVAILABLE,
};
use routes::clip;

/// The routes a deployed function answers. The reads and the erasure run as
/// different database users (docs/DEPLOY.md, "Database users"): the reads'
/// may only `SELECT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiRoutes {
    /// Every route: the CLI's local API and the tests.
    All,
    /// The GET routes (`functions/analytics-api`).
    Reads,
    /// The erasure of a viewer (`functions/erase-viewer`).
    Erasures,
}

impl ApiRoutes {
    fn serves(self, query: &ApiQuery) -> bool {
        let erasure = matches!(query, ApiQuery::Forget { .. });
        match self {
            ApiRoutes::All => true,
            ApiRoutes::Reads => !erasure,
            ApiRoutes::Erasures => erasure,
        }
    }
}

/// The analytics API function: one database pool per container.
pub struct AnalyticsApi {
    db: Arc<Database>,
    /// Where exports go; `None` when the function has no export bucket (the
    /// export route answers 503 then).
    exports: Option<ViewerExports>,
    /// The time of an erasure, and of an export's URL.
    clock: Clock,
    routes: ApiRoutes,
}

impl AnalyticsApi {
    pub fn new(db: Arc<Database>) -> AnalyticsApi {
        AnalyticsApi {
            db,
            exports: None,
            clock: system_clock(),
            routes: ApiRoutes::All,
        }
    }

    /// The same API writing exports as `exports` says.
    pub fn with_exports(self, exports: ViewerExports) -> AnalyticsApi {
        AnalyticsApi {
            exports: Some(exports),
            ..self
        }
    }

    /// The same API answering only `routes` (404 for the others, as for an
    /// unknown route: API Gateway never sends them).
    pub fn serving(self, routes: ApiRoutes) -> AnalyticsApi {
        AnalyticsApi { routes, ..self }
    }

    /// The same API with another clock (tests).
    pub fn with_clock(self, clock: Clock) -> AnalyticsApi {
        AnalyticsApi { clock, ..self }
    }

    /// From the environment (`DATABASE_URL` or the `DB_*` settings,
    /// `API_STATEMENT_TIME_LIMIT_MS` and `VIEWER_EXPORT_BUCKET`), see
    /// [`AnalyticsApi::connect`].
    pub async fn from_env() -> Result<AnalyticsApi, lambda_runtime::Error> {
        let config = crate::handlers::config::ApiConfig::from_env()?;
        Ok(AnalyticsApi::connect(config).await?)
    }

    /// With one connection (a Lambda container answers one request at a
    /// time) whose every statement runs under the configured time limit, and
    /// the S3 client of the export bucket when there is one.
    pub async fn connect(
        config: crate::handlers::config::ApiConfig,
    ) -> Result<AnalyticsApi, crate::store::DbError> {
        let db = crate::handlers::connect(
            config.database,
            crate::handlers::LAMBDA_MAX_CONNECTIONS,
            config.session,
        )
        .await?;
        let exports = match config.viewer_export_bucket {
            Some(bucket) => {
                let aws = crate::store::sdk_config().await;
                Some(ViewerExports::new(crate::store::s3_client(&aws), bucket))
            }
            None => None,
        };
        tracing::info!(
            database = %db.describe(),
            export_bucket = exports.as_ref().map(ViewerExports::bucket),
            "analytics API ready"
        );
        Ok(AnalyticsApi {
            exports,
            ..AnalyticsApi::new(Arc::new(db))
        })
    }

    /// The database it answers from (its user, its statement time limit).
    pub fn database(&self) -> &Database {
        &self.db
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
            Ok(Answer::Json(body)) => json_response(200, &body),
            Ok(Answer::Csv(body)) => csv_response(body),
            Ok(Answer::Svg(body)) => svg_response(body),
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
    ) -> Result<Answer, ApiError> {
        let query = parse_request(request)?;
        if !self.routes.serves(&query) {
            return Err(ApiError::new(
                404,
                format!(
                    "no route {} {} in this function: {}",
                    request.request_context.http.method,
                    clip(request_path(request)),
                    match self.routes {
                        ApiRoutes::Erasures =>
                            "it only erases viewers (DELETE /tenants/{tenantId}/viewers/{viewerId})",
                        _ =>
                            "it only answers the GET routes; erasures have a function of their own",
                    }
                ),
            ));
        }
        if matches!(query, ApiQuery::ViewerExport { .. }) {
            return self.export(query, request_id).await;
        }
        let db = self.db.clone();
        let now_ms = (self.clock)();
        let outcome = tokio::task::spawn_blocking(move || execute(&db, &query, now_ms)).await;
        match outcome {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(error)) => Err(self.failed(error, request_id)),
            Err(join) => {
                tracing::error!(request_id, error = %join, "answering panicked");
                Err(ApiError::new(500, INTERNAL))
            }
        }
    }

    /// The answer to a query that failed: database failures and time-outs
    /// logged with their details, answered without them.
    fn failed(&self, error: AnalyticsError, request_id: &str) -> ApiError {
        let limit = self.db.statement_time_limit();
        match error {
            AnalyticsError::Database(details) => {
                tracing::error!(request_id, error = %details, "database failure");
                ApiError::new(503, UNAVAILABLE)
            }
            AnalyticsError::TimedOut(details) => {
                tracing::error!(request_id, error = %details, limit_ms = limit.map(|l| l.as_millis() as u64), "statement cut off at the time limit");
                let message = match limit {
                    Some(limit) => {
                        format!("{TIMED_OUT} (a query may run {:.1} s)", limit.as_secs_f64())
                    }
                    None => TIMED_OUT.to_string(),
                };
                ApiError::new(504, message)
            }
            error => error.into(),
        }
    }

    /// Writes a checked export to the bucket (in a blocking thread: the rows
    /// are read there and each part is sent from there) and answers its URL.
    async fn export(&self, query: ApiQuery, request_id: &str) -> Result<Answer, ApiError> {
        let Some(exports) = self.exports.clone() else {
            return Err(ApiError::new(503, export::NOT_CONFIGURED));
        };
        let db = self.db.clone();
        let writing = exports.clone();
        let started = Instant::now();
        let written =
            tokio::task::spawn_blocking(move || export::write(&db, &writing, &query)).await;
        let written = match written {
            Ok(Ok(written)) => written,
            Ok(Err(export::ExportError::Analytics(error))) => {
                return Err(self.failed(error, request_id))
            }
            Ok(Err(export::ExportError::Storage(error))) => {
                tracing::error!(request_id, %error, "writing an export failed");
                return Err(ApiError::new(503, export::BUCKET_UNAVAILABLE));
            }
            Err(join) => {
                tracing::error!(request_id, error = %join, "exporting panicked");
                return Err(ApiError::new(500, INTERNAL));
            }
        };
        tracing::info!(
            request_id,
            bucket = exports.bucket(),
            key = written.key,
            rows = written.rows,
            bytes = written.bytes,
            parts = written.parts,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "viewer export written"
        );
        export::answer(&exports, &written, (self.clock)())
            .await
            .map(Answer::Json)
            .map_err(|error| {
                tracing::error!(request_id, %error, "signing an export's URL failed");
                ApiError::new(503, export::BUCKET_UNAVAILABLE)
            })
    }
}
