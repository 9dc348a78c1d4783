//! The migration runner: applies the versioned files of `migrations/` in
//! order, under a named lock so two runners cannot race, recording each
//! file's checksum and refusing to go on when an applied file has changed.

use mysql::prelude::Queryable;
use mysql::PooledConn;
use sha2::{Digest, Sha256};

use crate::store::db::{Database, DbError};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

const LOCK_NAME: &str = "warehouse_migrate";
const LOCK_TIMEOUT_SECONDS: u32 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub version: u32,
    pub name: String,
    pub sql: String,
    pub checksum: String,
}

/// The migrations built into this binary, in order.
pub fn embedded() -> Result<Vec<Migration>, DbError> {
    let mut migrations = embedded::EMBEDDED
        .iter()
        .map(|(name, sql)| Migration::new(name, sql))
        .collect::<Result<Vec<_>, _>>()?;
    migrations.sort_by_key(|m| m.version);
    if let Some(pair) = migrations.windows(2).find(|w| w[0].version == w[1].version) {
        return Err(DbError::permanent(format!(
            "migrations {} and {} share version {}: give each file its own number",
            pair[0].name, pair[1].name, pair[0].version
        )));
    }
    Ok(migrations)
}

impl Migration {
    pub fn new(name: &str, sql: &str) -> Result<Migration, DbError> {
        let version = name
            .split('_')
            .next()
            .and_then(|digits| digits.parse::<u32>().ok())
            .ok_or_else(|| {
                DbError::permanent(format!(
                    "migration file {name:?} must be named NNNN_description.sql"
                ))
            })?;
        Ok(Migration {
            version,
            name: name.to_string(),
            sql: sql.to_string(),
            checksum: hex(&Sha256::digest(sql.as_bytes())),
        })
    }

    /// The file split into statements at `;` ending a line (our migrations
    /// define no procedures, so that is unambiguous); comments dropped.
    pub fn statements(&self) -> Vec<String> {
        let mut statements = Vec::new();
        let mut current = String::new();
        for line in self.sql.lines() {
            let trimmed = line.trim();
            if trimmed.starts_with("--") || trimmed.is_empty() {
                continue;
            }
            current.push_str(line);
            current.push('\n');
            if trimmed.ends_with(';') {
                let statement = current.trim().trim_end_matches(';').trim().to_string();
                if !statement.is_empty() {
                    statements.push(statement);
                }
                current.clear();
            }
        }
        if !current.trim().is_empty() {
            statements.push(current.trim().to_string());
        }
        statements
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MigrationReport {
    pub applied: Vec<String>,
    pub already_applied: usize,
}

/// Applies every pending embedded migration.
pub fn run(db: &Database) -> Result<MigrationReport, DbError> {
    run_migrations(db, &embedded()?)
}

pub fn run_migrations(db: &Database, migrations: &[Migration]) -> Result<MigrationReport, DbError> {
    let mut conn = db.conn()?;
    let locked: Option<i64> = conn
        .exec_first("SELECT GET_LOCK(?, ?)", (LOCK_NAME, LOCK_TIMEOUT_SECONDS))
        .map_err(sql_error)?;
    if locked != Some(1) {
        return Err(DbError::permanent(format!(
            "another migration run holds the lock {LOCK_NAME:?} for over {LOCK_TIMEOUT_SECONDS}s; wait for it to finish and run migrate again"
        )));
    }
    let outcome = apply_locked(&mut conn, migrations);
    // Release even when applying failed; the lock also dies with the session.
    let _ = conn.exec_drop("SELECT RELEASE_LOCK(?)", (LOCK_NAME,));
    outcome
}

fn sql_error(err: mysql::Error) -> DbError {
    DbError::caused("migration query failed", err)
}

fn apply_locked(
    conn: &mut PooledConn,
    migrations: &[Migration],
) -> Result<MigrationReport, DbError> {
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
           version INT UNSIGNED NOT NULL PRIMARY KEY,
           name VARCHAR(255) NOT NULL,
           checksum CHAR(64) NOT NULL,
           applied_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    )
    .map_err(sql_error)?;
    let applied: Vec<(u32, String, String)> = conn
        .query("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
        .map_err(sql_error)?;
    for (version, name, checksum) in &applied {
        match migrations.iter().find(|m| m.version == *version) {
            None => {
                return Err(DbError::permanent(format!(
                    "the database has migration {version} ({name}) that this binary does not know: it is newer than this build; deploy the newer build instead"
                )))
            }
            Some(m) if &m.checksum != checksum => {
                return Err(DbError::permanent(format!(
                    "migration {} was changed after it was applied (checksum {} in the database, {} in the file): never edit an applied migration; restore the file and add a new migration instead",
                    m.name, checksum, m.checksum
                )))
            }
            Some(_) => {}
        }
    }
    let mut report = MigrationReport {
        already_applied: applied.len(),
        ..MigrationReport::default()
    };
    for migration in migrations {
        if applied.iter().any(|(v, _, _)| *v == migration.version) {
            continue;
        }
        for statement in migration.statements() {
            conn.query_drop(&statement).map_err(|e| {
                DbError::permanent(format!(
                    "migration {} failed: {e}; fix the file (it is not recorded as applied) and run migrate again",
                    migration.name
                ))
            })?;
        }
        conn.exec_drop(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)",
            (migration.version, &migration.name, &migration.checksum),
        )
        .map_err(sql_error)?;
        tracing::info!(migration = %migration.name, "applied migration");
        report.applied.push(migration.name.clone());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_migrations_are_numbered_and_split() {
        let migrations = embedded().unwrap();
        assert_eq!(migrations[0].version, 1);
        let statements = migrations[0].statements();
        assert!(statements
            .iter()
            .any(|s| s.starts_with("CREATE TABLE event_ledger")));
        assert!(statements.iter().all(|s| !s.ends_with(';')));
    }

    #[test]
    fn badly_named_file_is_refused_with_the_expected_form() {
        let err = Migration::new("schema.sql", "SELECT 1").unwrap_err();
        assert!(err.to_string().contains("NNNN_description.sql"), "{err}");
    }
}
