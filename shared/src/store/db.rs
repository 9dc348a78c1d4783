//! The database connection: a small pool built once per container, IAM tokens
//! refreshed before they expire, and the classification of transient errors.

use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use mysql::{Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, PooledConn, SslOpts};

use crate::store::config::{DatabaseSettings, RdsAuth};

/// IAM tokens live 15 minutes; a pool older than this is rebuilt with a fresh
/// one so that new connections never present an expired token.
const IAM_POOL_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// Far below the server's 50 s default: a Lambda would rather retry a lock
/// wait inside its own time limit than spend it all waiting.
pub const DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS: u32 = 10;

/// What the connections of a [`Database`] set up, beside what every
/// connection sets (time zone UTC, the `sql_mode` the literal escaping of
/// `store::sql` relies on, READ COMMITTED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOptions {
    /// How long a statement waits for a row lock before failing with a
    /// (retried) lock wait timeout. Set at connect, except in unpinned mode,
    /// where the RDS Proxy's `InitQuery` sets it (template.yaml): a `SET` of
    /// it would pin the session.
    pub lock_wait_timeout_seconds: u32,
    /// The API's limit: the server cuts off any statement running longer
    /// (`max_statement_time` on MariaDB, `max_execution_time` on MySQL,
    /// where it applies to `SELECT`s, all the API runs), so no query
    /// outlives the request that asked it by more than this.
    pub statement_time_limit: Option<Duration>,
    /// RDS Proxy multiplexing (`DB_SESSIONS=unpinned`): at connect, only the
    /// `SET`s the proxy tracks (time zone, `sql_mode`, isolation).
    pub unpinned: bool,
}

impl Default for SessionOptions {
    fn default() -> SessionOptions {
        SessionOptions {
            lock_wait_timeout_seconds: DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS,
            statement_time_limit: None,
            unpinned: false,
        }
    }
}

/// Which server answers: MySQL and MariaDB name the statement time limit
/// differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerFlavor {
    MariaDb,
    MySql,
}

impl ServerFlavor {
    /// From `SELECT VERSION()`: MariaDB says so (`10.11.6-MariaDB-log`).
    pub fn of_version(version: &str) -> ServerFlavor {
        if version.to_ascii_lowercase().contains("mariadb") {
            ServerFlavor::MariaDb
        } else {
            ServerFlavor::MySql
        }
    }

    /// The `SET` of the session's statement time limit (at least 1 ms).
    pub fn statement_time_limit_sql(self, limit: Duration) -> String {
        let ms = limit.as_millis().max(1);
        match self {
            ServerFlavor::MariaDb => format!(
                "SET SESSION max_statement_time = {}.{:03}",
                ms / 1000,
                ms % 1000
            ),
            ServerFlavor::MySql => format!("SET SESSION max_execution_time = {ms}"),
        }
    }
}

/// The server cut the statement off at the session's time limit
/// (MariaDB's 1969, `max_statement_time` exceeded; MySQL's 3024,
/// `max_execution_time` exceeded). Not transient: the same statement would
/// run as long again.
pub fn is_statement_timeout(err: &mysql::Error) -> bool {
    matches!(err, mysql::Error::MySqlError(e) if e.code == 1969 || e.code == 3024)
}

/// A database failure, typed by whether trying again can help.
#[derive(Debug)]
pub struct DbError {
    kind: DbErrorKind,
    /// What was being done; the cause, when there is one, is `source`.
    context: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    /// The connection broke or the server asked to try again (deadlock, lock
    /// wait timeout, failover): the same work may succeed later.
    Transient,
    /// The statement, the data or the setup is wrong: the same work fails again.
    Permanent,
}

impl DbError {
    pub fn permanent(context: impl Into<String>) -> DbError {
        DbError::new(DbErrorKind::Permanent, context)
    }

    /// `context` failed because of `source`: transient when `source` is a
    /// MySQL error that [`is_transient`], or a `DbError` that is.
    pub fn caused(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> DbError {
        let source = source.into();
        let transient = source
            .downcast_ref::<mysql::Error>()
            .is_some_and(is_transient)
            || source
                .downcast_ref::<DbError>()
                .is_some_and(DbError::is_transient);
        DbError {
            kind: if transient {
                DbErrorKind::Transient
            } else {
                DbErrorKind::Permanent
            },
            context: context.into(),
            source: Some(source),
        }
    }

    pub fn new(kind: DbErrorKind, context: impl Into<String>) -> DbError {
        DbError {
            kind,
            context: context.into(),
            source: None,
        }
    }

    pub fn kind(&self) -> DbErrorKind {
        self.kind
    }

    pub fn is_transient(&self) -> bool {
        self.kind == DbErrorKind::Transient
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.source, self.context.is_empty()) {
            (Some(source), true) => source.fmt(f),
            (Some(source), false) => write!(f, "{}: {source}", self.context),
            (None, _) => f.write_str(&self.context),
        }
    }
}

impl std::error::Error for DbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

struct PoolState {
    pool: Pool,
    built: Instant,
}

/// The warehouse database. Cheap to share by reference; blocking calls.
pub struct Database {
    settings: DatabaseSettings,
    max_connections: usize,
    options: SessionOptions,
    /// Found on the first connection, when a statement time limit needs it.
    flavor: OnceLock<ServerFlavor>,
    state: RwLock<PoolState>,
    /// For minting IAM tokens from blocking code.
    runtime: Option<tokio::runtime::Handle>,
    aws: Option<aws_config::SdkConfig>,
}

impl Database {
    /// Builds the pool (opening no connection yet). `max_connections` is 1 or
    /// 2 in a Lambda: one invocation at a time uses the database.
    pub async fn connect(
        settings: DatabaseSettings,
        max_connections: usize,
    ) -> Result<Database, DbError> {
        Database::connect_with(settings, max_connections, SessionOptions::default()).await
    }

    /// As `connect`, with how long a statement waits for a row lock before
    /// failing with a (retried) lock wait timeout.
    pub async fn connect_with_lock_wait(
        settings: DatabaseSettings,
        max_connections: usize,
        lock_wait_timeout_seconds: u32,
    ) -> Result<Database, DbError> {
        let options = SessionOptions {
            lock_wait_timeout_seconds,
            ..SessionOptions::default()
        };
        Database::connect_with(settings, max_connections, options).await
    }

    /// As `connect`, with these session options.
    pub async fn connect_with(
        settings: DatabaseSettings,
        max_connections: usize,
        options: SessionOptions,
    ) -> Result<Database, DbError> {
        let aws = match &settings {
            DatabaseSettings::Rds {
                auth: RdsAuth::Iam { .. },
                ..
            } => Some(aws_config::load_from_env().await),
            _ => None,
        };
        let token = iam_token(&settings, aws.as_ref()).await?;
        Database::with_token(settings, max_connections, options, aws, token)
    }

    fn with_token(
        settings: DatabaseSettings,
        max_connections: usize,
        options: SessionOptions,
        aws: Option<aws_config::SdkConfig>,
        token: Option<String>,
    ) -> Result<Database, DbError> {
        let opts = build_opts(&settings, max_connections, &options, token)?;
        let pool =
            Pool::new(opts).map_err(|e| DbError::caused("cannot set up the database pool", e))?;
        Ok(Database {
            settings,
            max_connections,
            options,
            flavor: OnceLock::new(),
            state: RwLock::new(PoolState {
                pool,
                built: Instant::now(),
            }),
            runtime: tokio::runtime::Handle::try_current().ok(),
            aws,
        })
    }

    /// For code without a runtime of its own (tests, the CLI's sync paths).
    pub fn connect_blocking(
        settings: DatabaseSettings,
        max_connections: usize,
    ) -> Result<Database, DbError> {
        if !matches!(
            settings,
            DatabaseSettings::Rds {
                auth: RdsAuth::Iam { .. },
                ..
            }
        ) {
            return Database::with_token(
                settings,
                max_connections,
                SessionOptions::default(),
                None,
                None,
            );
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DbError::caused("cannot start a runtime", e))?;
        runtime.block_on(Database::connect(settings, max_connections))
    }

    /// A connection from the pool, reconnecting (with a fresh IAM token where
    /// used) when needed.
    pub fn conn(&self) -> Result<PooledConn, DbError> {
        if self.aws.is_some() {
            self.refresh_if_old()?;
        }
        let pool = self.state.read().expect("pool lock poisoned").pool.clone();
        let mut conn = pool.get_conn().map_err(|e| {
            DbError::new(
                DbErrorKind::Transient,
                connect_error_message(&self.settings, &e),
            )
        })?;
        if let Some(limit) = self.options.statement_time_limit {
            self.limit_statements(&mut conn, limit)?;
        }
        Ok(conn)
    }

    /// Sets the statement time limit on a connection being handed out: on
    /// every hand-out (one round trip), as the limit's name depends on the
    /// server, found by the first connection, and a `SET` at connect cannot
    /// depend on it.
    fn limit_statements(&self, conn: &mut PooledConn, limit: Duration) -> Result<(), DbError> {
        let flavor = match self.flavor.get() {
            Some(flavor) => *flavor,
            None => {
                let version: Option<String> = conn
                    .query_first("SELECT VERSION()")
                    .map_err(|e| DbError::caused("reading the server's version", e))?;
                *self
                    .flavor
                    .get_or_init(|| ServerFlavor::of_version(version.as_deref().unwrap_or("")))
            }
        };
        conn.query_drop(flavor.statement_time_limit_sql(limit))
            .map_err(|e| DbError::caused("setting the statement time limit", e))
    }

    /// The limit every statement of this database's connections runs under, if any.
    pub fn statement_time_limit(&self) -> Option<Duration> {
        self.options.statement_time_limit
    }

    fn refresh_if_old(&self) -> Result<(), DbError> {
        if self
            .state
            .read()
            .expect("pool lock poisoned")
            .built
            .elapsed()
            < IAM_POOL_LIFETIME
        {
            return Ok(());
        }
        let runtime = self.runtime.clone().ok_or_else(|| {
            DbError::permanent("IAM authentication needs a Tokio runtime to refresh its token")
        })?;
        let token = runtime.block_on(iam_token(&self.settings, self.aws.as_ref()))?;
        let opts = build_opts(&self.settings, self.max_connections, &self.options, token)?;
        let pool =
            Pool::new(opts).map_err(|e| DbError::caused("cannot set up the database pool", e))?;
        *self.state.write().expect("pool lock poisoned") = PoolState {
            pool,
            built: Instant::now(),
        };
        Ok(())
    }

    /// The database name connections use (for logs and tests).
    pub fn describe(&self) -> String {
        match &self.settings {
            DatabaseSettings::Url(url) => Opts::from_url(url.expose())
                .map(|o| {
                    format!(
                        "{}:{}/{}",
                        o.get_ip_or_hostname(),
                        o.get_tcp_port(),
                        o.get_db_name().unwrap_or("")
                    )
                })
                .unwrap_or_else(|_| "an invalid DATABASE_URL".into()),
            DatabaseSettings::Rds {
                host,
                port,
                database,
                ..
            } => format!("{host}:{port}/{database}"),
        }
    }
}

/// A fresh IAM auth token when the settings ask for IAM authentication.
async fn iam_token(
    settings: &DatabaseSettings,
    aws: Option<&aws_config::SdkConfig>,
) -> Result<Option<String>, DbError> {
    let DatabaseSettings::Rds {
        host,
        port,
        user,
        auth: RdsAuth::Iam { region },
        ..
    } = settings
    else {
        return Ok(None);
    };
    let aws =
        aws.ok_or_else(|| DbError::permanent("IAM authentication needs AWS configuration"))?;
    let config = aws_sdk_rds::auth_token::Config::builder()
        .hostname(host)
        .port(u64::from(*port))
        .username(user)
        .region(aws_config::Region::new(region.clone()))
        .build()
        .map_err(|e| DbError::caused("cannot configure the IAM auth token", e))?;
    let token = aws_sdk_rds::auth_token::AuthTokenGenerator::new(config)
        .auth_token(aws)
        .await
        .map_err(|e| {
            DbError::permanent(format!(
                "cannot create an IAM database auth token ({e}); check the function's credentials and rds-db:connect permission"
            ))
        })?;
    Ok(Some(token.as_str().to_string()))
}

fn build_opts(
    settings: &DatabaseSettings,
    max_connections: usize,
    options: &SessionOptions,
    iam_token: Option<String>,
) -> Result<Opts, DbError> {
    let constraints = PoolConstraints::new(0, max_connections.max(1)).expect("0 <= max");
    let pool_opts = PoolOpts::default()
        .with_constraints(constraints)
        .with_reset_connection(false);
    let builder = match settings {
        DatabaseSettings::Url(url) => {
            let opts = Opts::from_url(url.expose()).map_err(|e| {
                // The URL holds the password: describe the problem, not the URL.
                DbError::permanent(format!(
                    "DATABASE_URL is not a valid MySQL URL ({}); expected mysql://user:password@host:port/database",
                    url_error_kind(&e)
                ))
            })?;
            OptsBuilder::from_opts(opts)
        }
        DatabaseSettings::Rds {
            host,
            port,
            user,
            database,
            auth,
            ca_file,
        } => {
            let password = match auth {
                RdsAuth::Password(secret) => secret.expose().to_string(),
                RdsAuth::Iam { .. } => iam_token
                    .ok_or_else(|| DbError::permanent("IAM authentication needs a token"))?,
            };
            let mut ssl = SslOpts::default();
            if let Some(path) = ca_file {
                ssl = ssl.with_root_cert_path(Some(path.clone()));
            }
            OptsBuilder::new()
                .ip_or_hostname(Some(host.clone()))
                .tcp_port(*port)
                .user(Some(user.clone()))
                .pass(Some(password))
                .db_name(Some(database.clone()))
                .ssl_opts(ssl)
                // IAM tokens are sent with the cleartext plugin, which is why TLS is mandatory.
                .enable_cleartext_plugin(true)
        }
    };
    Ok(builder
        .pool_opts(pool_opts)
        .tcp_connect_timeout(Some(Duration::from_secs(5)))
        .init(session_init(options))
        .into())
}

/// The statements every new connection runs. RDS Proxy tracks (does not pin
/// a session for) `SET`s of the time zone, `sql_mode` and the isolation
/// level; any other variable pins it, so unpinned mode leaves the lock wait
/// to the proxy's `InitQuery`. The `sql_mode` is set in every mode: the
/// literal escaping of `store::sql` relies on it (backslash escapes on).
pub fn session_init(options: &SessionOptions) -> Vec<String> {
    let mut init = vec![
        "SET SESSION time_zone = '+00:00'".to_string(),
        format!(
            "SET SESSION sql_mode = '{}'",
            crate::store::sql::SESSION_SQL_MODE
        ),
    ];
    if !options.unpinned {
        init.push(format!(
            "SET SESSION innodb_lock_wait_timeout = {}",
            options.lock_wait_timeout_seconds
        ));
    }
    init.push("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED".to_string());
    init
}

fn url_error_kind(err: &mysql::UrlError) -> &'static str {
    match err {
        mysql::UrlError::ParseError(_) => "it does not parse as a URL",
        mysql::UrlError::UnsupportedScheme { .. } => "the scheme must be mysql",
        _ => "an option in it is invalid",
    }
}

fn connect_error_message(settings: &DatabaseSettings, err: &mysql::Error) -> String {
    let target = match settings {
        DatabaseSettings::Url(_) => "the database of DATABASE_URL".to_string(),
        DatabaseSettings::Rds { host, port, .. } => format!("{host}:{port}"),
    };
    format!(
        "cannot connect to {target}: {err}. Is the server running and reachable, and are the credentials right?"
    )
}

/// Errors worth retrying: the connection broke, or the server asked us to try
/// again (deadlock, lock wait timeout, too many connections, shutdown).
pub fn is_transient(err: &mysql::Error) -> bool {
    match err {
        mysql::Error::IoError(_) => true,
        mysql::Error::DriverError(e) => matches!(
            e,
            mysql::DriverError::ConnectTimeout | mysql::DriverError::PacketOutOfSync
        ),
        mysql::Error::MySqlError(e) => matches!(
            e.code,
            1205 // lock wait timeout
                | 1213 // deadlock
                | 1040 // too many connections
                | 1053 // server shutdown in progress
                | 1927 // connection killed (MariaDB)
                | 2006 // server has gone away
                | 2013 // lost connection
                | 4031 // disconnected for inactivity (MySQL 8)
        ),
        _ => false,
    }
}

/// Runs `work` on a connection, retrying transient failures with exponential
/// backoff until `deadline`. Returns the result and the number of attempts.
pub fn with_retry<T>(
    db: &Database,
    deadline: Instant,
    mut work: impl FnMut(&mut PooledConn) -> Result<T, mysql::Error>,
) -> Result<(T, u32), DbError> {
    let mut attempt = 0u32;
    let mut backoff = Duration::from_millis(50);
    loop {
        attempt += 1;
        // A connection that cannot be had is worth another try, like a
        // broken one.
        let outcome = match db.conn() {
            Ok(mut conn) => work(&mut conn).map_err(|e| DbError::caused("", e)),
            Err(e) => Err(DbError {
                kind: DbErrorKind::Transient,
                context: String::new(),
                source: Some(Box::new(e)),
            }),
        };
        match outcome {
            Ok(value) => return Ok((value, attempt)),
            Err(error) => {
                let retry_at = Instant::now() + backoff;
                if !error.is_transient() || retry_at >= deadline {
                    return Err(DbError::caused(
                        format!("database work failed after {attempt} attempt(s)"),
                        error,
                    ));
                }
                tracing::warn!(attempt, %error, "transient database error, retrying");
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Drops the database a `DATABASE_URL` names (local use: `pipeline --fresh`).
pub fn drop_database(settings: &DatabaseSettings) -> Result<(), DbError> {
    with_server(settings, |conn, name| {
        conn.query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
            .map_err(|e| DbError::caused(format!("cannot drop database {name}"), e))
    })
}

/// Creates the database a `DATABASE_URL` names when it does not exist yet
/// (local use; on RDS the database is provisioned with the instance).
pub fn create_database_if_missing(settings: &DatabaseSettings) -> Result<(), DbError> {
    with_server(settings, |conn, name| {
        conn.query_drop(format!(
            "CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        ))
        .map_err(|e| DbError::caused(format!("cannot create database {name}"), e))
    })
}

/// Runs `work` on a connection to the server of a `DATABASE_URL`, outside
/// its database, with the database's name; does nothing for RDS settings.
fn with_server(
    settings: &DatabaseSettings,
    work: impl FnOnce(&mut mysql::Conn, &str) -> Result<(), DbError>,
) -> Result<(), DbError> {
    let DatabaseSettings::Url(url) = settings else {
        return Ok(());
    };
    let opts = Opts::from_url(url.expose()).map_err(|e| {
        DbError::permanent(format!(
            "DATABASE_URL is not a valid MySQL URL ({})",
            url_error_kind(&e)
        ))
    })?;
    let Some(name) = opts.get_db_name().map(str::to_string) else {
        return Err(DbError::permanent(
            "DATABASE_URL names no database: end it with /warehouse (or another name)",
        ));
    };
    if name.contains('`') {
        return Err(DbError::permanent(format!(
            "the database name {name:?} must not contain a backquote"
        )));
    }
    let server = OptsBuilder::from_opts(opts).db_name(None::<String>);
    let mut conn = mysql::Conn::new(server)
        .map_err(|e| DbError::new(DbErrorKind::Transient, connect_error_message(settings, &e)))?;
    work(&mut conn, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(code: u16) -> mysql::Error {
        mysql::Error::MySqlError(mysql::MySqlError {
            state: "HY000".into(),
            message: format!("error {code}"),
            code,
        })
    }

    #[test]
    fn a_failure_is_transient_only_when_a_retry_can_help() {
        let deadlock = DbError::caused("loading a batch", server_error(1213));
        assert!(deadlock.is_transient());
        assert_eq!(
            deadlock.to_string(),
            "loading a batch: MySqlError { ERROR 1213 (HY000): error 1213 }"
        );
        let too_long = DbError::caused("loading a batch", server_error(1406));
        assert_eq!(too_long.kind(), DbErrorKind::Permanent);
        // Wrapping keeps the kind and the chain down to the server's error.
        let wrapped = DbError::caused("database work failed after 3 attempt(s)", deadlock);
        assert!(wrapped.is_transient());
        let cause = std::error::Error::source(&wrapped).expect("a source");
        assert!(std::error::Error::source(cause)
            .is_some_and(|e| e.downcast_ref::<mysql::Error>().is_some()));
        assert!(!DbError::permanent("no such run").is_transient());
    }

    #[test]
    fn the_statement_time_limit_is_named_per_server() {
        let limit = Duration::from_millis(2_500);
        assert_eq!(
            ServerFlavor::of_version("10.11.6-MariaDB-log").statement_time_limit_sql(limit),
            "SET SESSION max_statement_time = 2.500"
        );
        assert_eq!(
            ServerFlavor::of_version("8.0.39").statement_time_limit_sql(limit),
            "SET SESSION max_execution_time = 2500"
        );
        assert!(is_statement_timeout(&server_error(1969)));
        assert!(is_statement_timeout(&server_error(3024)));
        assert!(!is_statement_timeout(&server_error(1205)));
        assert!(!DbError::caused("x", server_error(1969)).is_transient());
    }

    #[test]
    fn unpinned_sessions_keep_the_sql_mode() {
        let pinned = session_init(&SessionOptions::default());
        let unpinned = session_init(&SessionOptions {
            unpinned: true,
            ..SessionOptions::default()
        });
        for init in [&pinned, &unpinned] {
            assert!(init
                .iter()
                .any(|s| s.starts_with("SET SESSION sql_mode = ")
                    && !s.contains("NO_BACKSLASH_ESCAPES")));
        }
        assert!(pinned
            .iter()
            .any(|s| s.contains("innodb_lock_wait_timeout")));
        assert!(!unpinned
            .iter()
            .any(|s| s.contains("innodb_lock_wait_timeout")));
    }
}
