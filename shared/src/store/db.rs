//! The database connection: a small pool built once per container, IAM tokens
//! refreshed before they expire, and the classification of transient errors.

use std::sync::RwLock;
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

#[derive(Debug)]
pub struct DbError(pub String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

struct PoolState {
    pool: Pool,
    built: Instant,
}

/// The warehouse database. Cheap to share by reference; blocking calls.
pub struct Database {
    settings: DatabaseSettings,
    max_connections: usize,
    lock_wait_timeout_seconds: u32,
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
        Database::connect_with_lock_wait(
            settings,
            max_connections,
            DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS,
        )
        .await
    }

    /// As `connect`, with how long a statement waits for a row lock before
    /// failing with a (retried) lock wait timeout.
    pub async fn connect_with_lock_wait(
        settings: DatabaseSettings,
        max_connections: usize,
        lock_wait_timeout_seconds: u32,
    ) -> Result<Database, DbError> {
        let aws = match &settings {
            DatabaseSettings::Rds {
                auth: RdsAuth::Iam { .. },
                ..
            } => Some(aws_config::load_from_env().await),
            _ => None,
        };
        let token = iam_token(&settings, aws.as_ref()).await?;
        Database::with_token(
            settings,
            max_connections,
            lock_wait_timeout_seconds,
            aws,
            token,
        )
    }

    fn with_token(
        settings: DatabaseSettings,
        max_connections: usize,
        lock_wait_timeout_seconds: u32,
        aws: Option<aws_config::SdkConfig>,
        token: Option<String>,
    ) -> Result<Database, DbError> {
        let opts = build_opts(&settings, max_connections, lock_wait_timeout_seconds, token)?;
        let pool = Pool::new(opts)
            .map_err(|e| DbError(format!("cannot set up the database pool: {e}")))?;
        Ok(Database {
            settings,
            max_connections,
            lock_wait_timeout_seconds,
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
                DEFAULT_LOCK_WAIT_TIMEOUT_SECONDS,
                None,
                None,
            );
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| DbError(format!("cannot start a runtime: {e}")))?;
        runtime.block_on(Database::connect(settings, max_connections))
    }

    /// A connection from the pool, reconnecting (with a fresh IAM token where
    /// used) when needed.
    pub fn conn(&self) -> Result<PooledConn, DbError> {
        if self.aws.is_some() {
            self.refresh_if_old()?;
        }
        let pool = self.state.read().expect("pool lock poisoned").pool.clone();
        pool.get_conn()
            .map_err(|e| DbError(connect_error_message(&self.settings, &e)))
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
            DbError("IAM authentication needs a Tokio runtime to refresh its token".into())
        })?;
        let token = runtime.block_on(iam_token(&self.settings, self.aws.as_ref()))?;
        let opts = build_opts(
            &self.settings,
            self.max_connections,
            self.lock_wait_timeout_seconds,
            token,
        )?;
        let pool = Pool::new(opts)
            .map_err(|e| DbError(format!("cannot set up the database pool: {e}")))?;
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
    let aws = aws.ok_or_else(|| DbError("IAM authentication needs AWS configuration".into()))?;
    let config = aws_sdk_rds::auth_token::Config::builder()
        .hostname(host)
        .port(u64::from(*port))
        .username(user)
        .region(aws_config::Region::new(region.clone()))
        .build()
        .map_err(|e| DbError(format!("cannot configure the IAM auth token: {e}")))?;
    let token = aws_sdk_rds::auth_token::AuthTokenGenerator::new(config)
        .auth_token(aws)
        .await
        .map_err(|e| {
            DbError(format!(
                "cannot create an IAM database auth token ({e}); check the function's credentials and rds-db:connect permission"
            ))
        })?;
    Ok(Some(token.as_str().to_string()))
}

fn build_opts(
    settings: &DatabaseSettings,
    max_connections: usize,
    lock_wait_timeout_seconds: u32,
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
                DbError(format!(
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
                RdsAuth::Iam { .. } => {
                    iam_token.ok_or_else(|| DbError("IAM authentication needs a token".into()))?
                }
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
        .init(vec![
            "SET SESSION time_zone = '+00:00'".to_string(),
            format!(
                "SET SESSION sql_mode = '{}'",
                crate::store::sql::SESSION_SQL_MODE
            ),
            format!("SET SESSION innodb_lock_wait_timeout = {lock_wait_timeout_seconds}"),
            "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED".to_string(),
        ])
        .into())
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
        let outcome = match db.conn() {
            Ok(mut conn) => work(&mut conn).map_err(|e| (is_transient(&e), e.to_string())),
            Err(e) => Err((true, e.0)),
        };
        match outcome {
            Ok(value) => return Ok((value, attempt)),
            Err((transient, message)) => {
                let retry_at = Instant::now() + backoff;
                if !transient || retry_at >= deadline {
                    return Err(DbError(format!(
                        "database work failed after {attempt} attempt(s): {message}"
                    )));
                }
                tracing::warn!(attempt, error = %message, "transient database error, retrying");
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
            .map_err(|e| DbError(format!("cannot drop database {name}: {e}")))
    })
}

/// Creates the database a `DATABASE_URL` names when it does not exist yet
/// (local use; on RDS the database is provisioned with the instance).
pub fn create_database_if_missing(settings: &DatabaseSettings) -> Result<(), DbError> {
    with_server(settings, |conn, name| {
        conn.query_drop(format!(
            "CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        ))
        .map_err(|e| DbError(format!("cannot create database {name}: {e}")))
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
        DbError(format!(
            "DATABASE_URL is not a valid MySQL URL ({})",
            url_error_kind(&e)
        ))
    })?;
    let Some(name) = opts.get_db_name().map(str::to_string) else {
        return Err(DbError(
            "DATABASE_URL names no database: end it with /warehouse (or another name)".into(),
        ));
    };
    if name.contains('`') {
        return Err(DbError(format!(
            "the database name {name:?} must not contain a backquote"
        )));
    }
    let server = OptsBuilder::from_opts(opts).db_name(None::<String>);
    let mut conn =
        mysql::Conn::new(server).map_err(|e| DbError(connect_error_message(settings, &e)))?;
    work(&mut conn, &name)
}
