//! The store: configuration (secrets wrapped), the database connection with
//! its retries and typed errors, SQL statement building, migrations, the AWS
//! clients, objects written to S3 a part at a time, and the clock. It knows no event type.

mod aws;
mod clock;
mod config;
mod db;
pub mod migrate;
mod object_writer;
mod sql;
pub use aws::{s3_client, sdk_config, sqs_client};
pub use clock::{deadline_instant, now_ms, system_clock, Clock};
pub use config::{
    env_lookup, required, unpinned_sessions, ConfigError, DatabaseSettings, Lookup, Secret,
};
pub use db::{
    create_database_if_missing, drop_database, is_statement_timeout, is_transient, session_init,
    with_retry, Database, DbError, DbErrorKind, ServerFlavor, SessionOptions,
};
pub use object_writer::{
    check_bucket_name, presigned_get, ObjectTarget, ObjectWriteError, ObjectWriter, MIN_PART_BYTES,
};
pub use sql::{
    merge, oversized_statements, push_hex_literal, push_str_literal, run_script,
    set_unpinned_statements, str_literal, unpinned_statements, Outcome, PreparedUpsert, Row,
    Upsert, SESSION_SQL_MODE, UNPINNED_MAX_STATEMENT_BYTES,
};
