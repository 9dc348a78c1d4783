//! Why an analytics question could not be answered: the one error type of
//! the read path, shared by the CLI and the HTTP API.

/// Why an analytics question could not be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnalyticsError {
    /// No such presentation for this tenant. Holds the presentation id as
    /// asked; an unknown presentation and another tenant's give the same
    /// error, so a tenant cannot learn that another's presentation exists.
    NotFound(String),
    /// The request itself is wrong (bad sort key, limit, offset or date);
    /// the message says what was wrong and what is accepted.
    BadRequest(String),
    /// The database failed; retrying may help.
    Database(String),
    /// The server cut a statement off at the connection's time limit (the
    /// API's, `store::SessionOptions::statement_time_limit`).
    TimedOut(String),
    /// More rows match than an inline answer holds (the message names where
    /// to ask instead).
    TooLarge(String),
}

impl AnalyticsError {
    /// A failed statement: `TimedOut` when the server cut it off at the
    /// time limit, `Database` otherwise.
    pub fn database(what: &str, e: mysql::Error) -> AnalyticsError {
        if crate::store::is_statement_timeout(&e) {
            AnalyticsError::TimedOut(format!("{what}: {e}"))
        } else {
            AnalyticsError::Database(format!("{what}: {e}"))
        }
    }
}

impl std::fmt::Display for AnalyticsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnalyticsError::NotFound(id) => write!(f, "presentation {id:?} not found"),
            AnalyticsError::BadRequest(message) => f.write_str(message),
            AnalyticsError::Database(message) => write!(f, "database error: {message}"),
            AnalyticsError::TimedOut(message) => {
                write!(f, "a statement ran past the time limit: {message}")
            }
            AnalyticsError::TooLarge(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for AnalyticsError {}

impl From<mysql::Error> for AnalyticsError {
    fn from(e: mysql::Error) -> AnalyticsError {
        if crate::store::is_statement_timeout(&e) {
            AnalyticsError::TimedOut(e.to_string())
        } else {
            AnalyticsError::Database(e.to_string())
        }
    }
}

pub(super) fn bad_request(message: String) -> AnalyticsError {
    AnalyticsError::BadRequest(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_well() {
        assert_eq!(
            AnalyticsError::NotFound("p-1".into()).to_string(),
            "presentation \"p-1\" not found"
        );
        assert_eq!(
            AnalyticsError::BadRequest("limit must be at least 1".into()).to_string(),
            "limit must be at least 1"
        );
    }
}
