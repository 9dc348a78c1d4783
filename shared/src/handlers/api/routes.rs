//! The API's routes: matching a path to a [`Route`] with its decoded path
//! parameters, and the percent-decoding of paths and query strings.
//!
//! Decisions where the issue is silent:
//! - Each path segment is percent-decoded (`%2F` inside an id is part of
//!   the id, `+` stays `+`); malformed percent-encoding is a 400. One
//!   trailing slash is ignored.

use super::response::ApiError;
use crate::read::{PresentationParams, ViewerParams};

/// The routes, for error messages.
pub const ROUTES: &str = "GET /tenants/{tenantId}/presentations, \
     GET /tenants/{tenantId}/presentations/{presentationId}, \
     GET /tenants/{tenantId}/presentations/{presentationId}/viewers, \
     GET /tenants/{tenantId}/presentations/{presentationId}/viewers/export, \
     GET /tenants/{tenantId}/presentations/{presentationId}/timeline and \
     DELETE /tenants/{tenantId}/viewers/{viewerId}";

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
    /// The viewer list as a CSV file in the export bucket (ANALYTICS.md §7).
    ViewerExport {
        tenant_id: String,
        presentation_id: String,
    },
    /// The attendance timeline (ANALYTICS.md §4).
    Timeline {
        tenant_id: String,
        presentation_id: String,
    },
    /// A viewer's erasure (ANALYTICS.md §8), for the tenant's admins.
    ForgetViewer {
        tenant_id: String,
        viewer_id: String,
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
        if !(3..=6).contains(&raw.len()) || raw.iter().any(|s| s.is_empty()) {
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
            ["tenants", tenant, "presentations", presentation, "viewers", "export"] => {
                Some(Route::ViewerExport {
                    tenant_id: tenant.to_string(),
                    presentation_id: presentation.to_string(),
                })
            }
            ["tenants", tenant, "presentations", presentation, "timeline"] => {
                Some(Route::Timeline {
                    tenant_id: tenant.to_string(),
                    presentation_id: presentation.to_string(),
                })
            }
            ["tenants", tenant, "viewers", viewer] => Some(Route::ForgetViewer {
                tenant_id: tenant.to_string(),
                viewer_id: viewer.to_string(),
            }),
            _ => None,
        })
    }

    pub fn tenant_id(&self) -> &str {
        match self {
            Route::Presentations { tenant_id }
            | Route::Report { tenant_id, .. }
            | Route::Viewers { tenant_id, .. }
            | Route::ViewerExport { tenant_id, .. }
            | Route::Timeline { tenant_id, .. }
            | Route::ForgetViewer { tenant_id, .. } => tenant_id,
        }
    }

    /// The one method the route answers.
    pub fn method(&self) -> &'static str {
        match self {
            Route::ForgetViewer { .. } => "DELETE",
            _ => "GET",
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
            Route::ViewerExport { .. } => {
                "GET /tenants/{tenantId}/presentations/{presentationId}/viewers/export"
            }
            Route::Timeline { .. } => {
                "GET /tenants/{tenantId}/presentations/{presentationId}/timeline"
            }
            Route::ForgetViewer { .. } => "DELETE /tenants/{tenantId}/viewers/{viewerId}",
        }
    }

    /// The query parameters the route takes.
    pub fn parameters(&self) -> Vec<&'static str> {
        let mut names = match self {
            Route::Presentations { .. } => PresentationParams::NAMES.to_vec(),
            Route::Report { .. } => Vec::new(),
            Route::Timeline { .. } => vec!["format"],
            // The export takes the inline CSV's parameters, so that the URL
            // of a 413 answers with `/export` added to its path.
            Route::Viewers { .. } | Route::ViewerExport { .. } => {
                let mut names = ViewerParams::NAMES.to_vec();
                names.push("format");
                names
            }
            // An erasure is not a read: it takes no parameter, not even shadow.
            Route::ForgetViewer { .. } => return Vec::new(),
        };
        names.push("shadow");
        names
    }
}

/// At most 100 characters of user input, for messages.
pub(super) fn clip(text: &str) -> String {
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
#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            p("/tenants/acme/viewers/u%2F10"),
            Some(Route::ForgetViewer {
                tenant_id: "acme".into(),
                viewer_id: "u/10".into()
            })
        );
        assert_eq!(
            p("/tenants/acme/presentations/p-1/viewers/export/"),
            Some(Route::ViewerExport {
                tenant_id: "acme".into(),
                presentation_id: "p-1".into()
            })
        );
        assert_eq!(
            p("/tenants/acme/presentations/p-1/timeline"),
            Some(Route::Timeline {
                tenant_id: "acme".into(),
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
            "/tenants/acme/presentations/p-1/viewers/export/x",
            "/tenants/acme/presentations/p-1/timeline/export",
            "/tenants/acme/presentations/p-1/export",
            "/tenants/acme/presentations/p-1/timeline/x",
            "/tenants/acme/viewers",
            "/tenants/acme/viewers/u-1/x",
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
}
