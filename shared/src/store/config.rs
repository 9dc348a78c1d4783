//! Typed configuration read from the environment once, at start-up, failing
//! fast with a message that says which variable is wrong and what to set.

use std::fmt;
use std::path::PathBuf;

/// A value that must never reach a log: its `Debug` and `Display` are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The only way to the value; call it where the secret is used, nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Where the warehouse database is and how to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseSettings {
    /// `DATABASE_URL=mysql://user:password@host:port/database`, for local use.
    Url(Secret),
    /// RDS (or RDS Proxy): IAM authentication over TLS, or a password.
    Rds {
        host: String,
        port: u16,
        user: String,
        database: String,
        auth: RdsAuth,
        /// PEM bundle of the RDS certificate authorities. RDS Proxy presents a
        /// publicly trusted certificate and needs none; RDS itself does.
        ca_file: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RdsAuth {
    /// A 15-minute token from `aws_sdk_rds::auth_token`, made per connection.
    Iam {
        region: String,
    },
    Password(Secret),
}

/// Reads one variable; `lookup` is the environment in production and a map in tests.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A setting that must be there; its absence names the variable and what to
/// set it to.
pub fn required(lookup: Lookup, name: &str, what: &str) -> Result<String, ConfigError> {
    lookup(name).ok_or_else(|| ConfigError(format!("{name} is not set: set it to {what}")))
}

/// An RDS setting: `DATABASE_URL` would do instead.
fn required_for_rds(lookup: Lookup, name: &str, what: &str) -> Result<String, ConfigError> {
    required(
        lookup,
        name,
        &format!("{what} (or set DATABASE_URL for a local database)"),
    )
}

/// `DB_SESSIONS`: `pinned` (the default: prepared statements, statements up
/// to 1 MiB, every session `SET` at connect) or `unpinned` (for RDS Proxy to
/// multiplex: text statements under 16 KB, only the `SET`s the proxy
/// tracks). Whether it is unpinned.
pub fn unpinned_sessions(lookup: Lookup) -> Result<bool, ConfigError> {
    match lookup("DB_SESSIONS").as_deref() {
        None | Some("pinned") => Ok(false),
        Some("unpinned") => Ok(true),
        Some(other) => Err(ConfigError(format!(
            "DB_SESSIONS must be \"pinned\" or \"unpinned\", got {other:?}"
        ))),
    }
}

impl DatabaseSettings {
    pub fn from_env() -> Result<DatabaseSettings, ConfigError> {
        DatabaseSettings::from_lookup(&env_lookup)
    }

    pub fn from_lookup(lookup: Lookup) -> Result<DatabaseSettings, ConfigError> {
        if let Some(url) = lookup("DATABASE_URL") {
            if !url.starts_with("mysql://") {
                return Err(ConfigError(
                    "DATABASE_URL must start with mysql:// (mysql://user:password@host:port/database)"
                        .into(),
                ));
            }
            return Ok(DatabaseSettings::Url(Secret::new(url)));
        }
        let host = required_for_rds(lookup, "DB_HOST", "the RDS or RDS Proxy endpoint")?;
        let port = match lookup("DB_PORT") {
            None => 3306,
            Some(text) => text
                .parse()
                .map_err(|_| ConfigError(format!("DB_PORT must be a port number, got {text:?}")))?,
        };
        let user = required_for_rds(lookup, "DB_USER", "the database user")?;
        let database = required_for_rds(lookup, "DB_NAME", "the warehouse database name")?;
        let auth = match lookup("DB_AUTH").as_deref().unwrap_or("iam") {
            "iam" => RdsAuth::Iam {
                region: lookup("AWS_REGION").ok_or_else(|| {
                    ConfigError(
                        "AWS_REGION is not set: IAM database authentication signs tokens for a region; set AWS_REGION or DB_AUTH=password".into(),
                    )
                })?,
            },
            "password" => RdsAuth::Password(Secret::new(required_for_rds(
                lookup,
                "DB_PASSWORD",
                "the database password (DB_AUTH=password)",
            )?)),
            other => {
                return Err(ConfigError(format!(
                    "DB_AUTH must be \"iam\" or \"password\", got {other:?}"
                )))
            }
        };
        Ok(DatabaseSettings::Rds {
            host,
            port,
            user,
            database,
            auth,
            ca_file: lookup("DB_CA_FILE").map(PathBuf::from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<DatabaseSettings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        DatabaseSettings::from_lookup(&move |name| map.get(name).cloned())
    }

    #[test]
    fn database_url_wins_and_is_redacted() {
        let s = settings(&[("DATABASE_URL", "mysql://root:hunter2@localhost/w")]).unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
        match s {
            DatabaseSettings::Url(url) => assert!(url.expose().contains("hunter2")),
            other => panic!("expected a URL, got {other:?}"),
        }
    }

    #[test]
    fn rds_iam_needs_region_and_says_so() {
        let err = settings(&[("DB_HOST", "h"), ("DB_USER", "u"), ("DB_NAME", "w")]).unwrap_err();
        assert!(err.0.contains("AWS_REGION"), "{err}");
        let ok = settings(&[
            ("DB_HOST", "h"),
            ("DB_USER", "u"),
            ("DB_NAME", "w"),
            ("AWS_REGION", "eu-west-1"),
        ])
        .unwrap();
        assert!(matches!(
            ok,
            DatabaseSettings::Rds {
                port: 3306,
                auth: RdsAuth::Iam { .. },
                ..
            }
        ));
    }

    #[test]
    fn missing_host_names_the_variable() {
        let err = settings(&[]).unwrap_err();
        assert!(err.0.starts_with("DB_HOST is not set"), "{err}");
    }

    #[test]
    fn password_fallback_is_redacted() {
        let s = settings(&[
            ("DB_HOST", "h"),
            ("DB_USER", "u"),
            ("DB_NAME", "w"),
            ("DB_AUTH", "password"),
            ("DB_PASSWORD", "s3cret"),
        ])
        .unwrap();
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn bad_port_and_bad_url_are_explained() {
        let err = settings(&[("DB_HOST", "h"), ("DB_PORT", "x")]).unwrap_err();
        assert!(err.0.contains("DB_PORT must be a port number"), "{err}");
        let err = settings(&[("DATABASE_URL", "postgres://x")]).unwrap_err();
        assert!(err.0.contains("mysql://"), "{err}");
    }
}
