//! The API's answers: [`ApiError`] (a status and a message) from an
//! [`AnalyticsError`], and the responses (JSON, CSV, SVG).
//!
//! Every body is JSON (`{"error": "…"}` for errors), but for the viewer
//! list's CSV and the timeline's SVG, and never holds SQL or a stack
//! trace: a database failure is a 503 with a generic body, its details
//! only in the log. Responses carry `Cache-Control: no-store` (per-tenant
//! data behind authorization); 405 carries `Allow` with the route's method.

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::ApiGatewayV2httpResponse;
use aws_lambda_events::http::{header, HeaderMap, HeaderValue};
use serde_json::{json, Value};

use crate::read::AnalyticsError;

/// The body of a 503: the details go to the log only.
pub(super) const UNAVAILABLE: &str =
    "the analytics database is unavailable right now; try again shortly";
/// The body of a 504: a statement ran past the API's time limit (its
/// seconds are added where known).
pub(super) const TIMED_OUT: &str =
    "the answer took longer than the analytics API allows; try again shortly, or ask for less (a narrower search or date range, a smaller page)";
/// The body of a 500.
pub(super) const INTERNAL: &str = "internal error while answering; the request id is in the log";

/// An answer other than 200: the status and the message of `{"error": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    /// The `Allow` header of a 405: the route's one method.
    pub allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            allow: None,
        }
    }

    /// A 405 naming the method the route answers.
    pub(super) fn method_not_allowed(message: impl Into<String>, allow: &'static str) -> ApiError {
        ApiError {
            allow: Some(allow),
            ..ApiError::new(405, message)
        }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> ApiError {
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
            AnalyticsError::TimedOut(_) => ApiError::new(504, TIMED_OUT),
            AnalyticsError::TooLarge(message) => ApiError::new(413, message),
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
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_string());
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    response.headers = headers;
    response.body = Some(Body::Text(text));
    response.is_base64_encoded = false;
    response
}

/// A 200 with the viewer list as CSV (ANALYTICS.md §7).
pub fn csv_response(body: String) -> ApiGatewayV2httpResponse {
    let mut response = json_response(200, &Value::Null);
    response.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    response.body = Some(Body::Text(body));
    response
}

/// A 200 with the timeline drawn as an SVG chart.
pub fn svg_response(body: String) -> ApiGatewayV2httpResponse {
    let mut response = json_response(200, &Value::Null);
    response.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    response.body = Some(Body::Text(body));
    response
}

pub(super) fn error_response(error: &ApiError) -> ApiGatewayV2httpResponse {
    let mut response = json_response(error.status, &json!({ "error": error.message }));
    if error.status == 405 {
        let allow = error.allow.unwrap_or("GET");
        response
            .headers
            .insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    response
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_json() {
        let r = error_response(&ApiError::new(405, "no"));
        assert_eq!(r.status_code, 405);
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["allow"], "GET");
        let r = error_response(&ApiError::method_not_allowed("no", "DELETE"));
        assert_eq!(r.headers["allow"], "DELETE");
        assert_eq!(r.body, Some(Body::Text(r#"{"error":"no"}"#.into())));
        let r = ApiError::from(AnalyticsError::Database("SELECT broke".into()));
        assert_eq!(r.status, 503);
        assert!(!r.message.contains("SELECT"));
        let r = ApiError::from(AnalyticsError::TimedOut("SELECT slow".into()));
        assert_eq!(r.status, 504);
        assert!(!r.message.contains("SELECT"));
    }
}
