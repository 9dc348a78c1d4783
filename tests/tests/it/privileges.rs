//! Least privilege in the database (issue 15, item 8): the three users of
//! `docs/DEPLOY.md`, granted by the `GRANT` lines of that file (so the doc
//! cannot drift from what is tested), for users and a database of this test
//! only, dropped afterwards. The migrator migrates an empty database; the
//! loader user loads through the real loaders, backfills and reconciles,
//! and cannot change the schema; the API user answers through the real API
//! and cannot write a row.

use std::sync::Arc;

use mysql::prelude::Queryable;
use rand::Rng;
use serde_json::json;
use shared::handlers::{AnalyticsApi, ApiConfig, ApiRoutes};
use shared::jobs::backfill::{self, BackfillOptions, Filters, Mode};
use shared::jobs::reconcile::ReconcileOptions;
use shared::jobs::JobContext;
use shared::redrive::QueueUrls;
use shared::store::{Database, DatabaseSettings, Secret};

use crate::helpers::{self, sample_expected};
use crate::loaders::{sample_lines, Loaders};

/// The `GRANT` statements of docs/DEPLOY.md, with the user each is for.
fn deploy_grants() -> Vec<(String, String)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/DEPLOY.md");
    let doc = std::fs::read_to_string(&path).expect("docs/DEPLOY.md");
    let mut grants: Vec<(String, String)> = Vec::new();
    for line in doc
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("GRANT "))
    {
        let statement = line.trim_end_matches(';').to_string();
        let user = statement
            .split_once(" TO '")
            .and_then(|(_, rest)| rest.split_once("'@'%'"))
            .map(|(user, _)| user.to_string())
            .unwrap_or_else(|| panic!("docs/DEPLOY.md: a GRANT not to 'user'@'%': {line}"));
        assert!(
            statement.contains(" ON warehouse.* TO "),
            "docs/DEPLOY.md: a GRANT not on the warehouse database: {line}"
        );
        if !grants.iter().any(|(u, s)| *u == user && *s == statement) {
            grants.push((user, statement));
        }
    }
    grants
}

fn admin() -> mysql::Conn {
    let url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/".into());
    mysql::Conn::new(mysql::Opts::from_url(&url).expect("a mysql:// URL"))
        .expect("the test MariaDB")
}

/// A database and one user per role of this test; dropped afterwards (the
/// database kept when the test fails, as `TestDb` does; the users never).
struct Users {
    database: String,
    password: String,
    /// (role as in DEPLOY.md, e.g. `warehouse_api`; this test's user)
    users: Vec<(String, String)>,
}

impl Users {
    fn create(grants: &[(String, String)]) -> Users {
        let tag = format!("{:08x}", rand::rng().random::<u32>());
        let users = Users {
            database: format!("wh_test_priv_{tag}"),
            password: format!("pw-{tag}"),
            users: grants
                .iter()
                .map(|(role, _)| role.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .map(|role| {
                    let short = role.trim_start_matches("warehouse_").to_string();
                    (role, format!("wh{tag}_{short}"))
                })
                .collect(),
        };
        let mut admin = admin();
        admin
            .query_drop(format!(
                "CREATE DATABASE `{}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                users.database
            ))
            .unwrap();
        for (_, user) in &users.users {
            admin
                .query_drop(format!(
                    "CREATE USER '{user}'@'%' IDENTIFIED BY '{}'",
                    users.password
                ))
                .unwrap();
        }
        for (role, statement) in grants {
            let statement = statement
                .replace(" ON warehouse.* ", &format!(" ON `{}`.* ", users.database))
                .replace(&format!("'{role}'@"), &format!("'{}'@", users.user(role)));
            admin
                .query_drop(&statement)
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        users
    }

    fn user(&self, role: &str) -> &str {
        &self
            .users
            .iter()
            .find(|(r, _)| r == role)
            .unwrap_or_else(|| panic!("docs/DEPLOY.md grants nothing to {role}"))
            .1
    }

    fn settings(&self, role: &str) -> DatabaseSettings {
        DatabaseSettings::Url(Secret::new(format!(
            "mysql://{}:{}@127.0.0.1:3306/{}",
            self.user(role),
            self.password,
            self.database
        )))
    }
}

impl Drop for Users {
    fn drop(&mut self) {
        let mut admin = admin();
        for (_, user) in &self.users {
            let _ = admin.query_drop(format!("DROP USER IF EXISTS '{user}'@'%'"));
        }
        if std::thread::panicking() {
            eprintln!("test failed: kept its database `{}`", self.database);
        } else {
            let _ = admin.query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.database));
        }
    }
}

/// The server's error code of a failed statement.
fn refused(conn: &mut impl Queryable, sql: &str) -> u16 {
    match conn.query_drop(sql) {
        Ok(()) => panic!("allowed, and must not be: {sql}"),
        Err(mysql::Error::MySqlError(e)) => e.code,
        Err(e) => panic!("{sql}: {e}"),
    }
}

/// One request to the API as an admin of acme: its status and JSON body
/// (the API tests' request and checks of a body).
async fn call(api: &AnalyticsApi, method: &str, path: &str) -> (u16, serde_json::Value) {
    let mut event = crate::api::event_json(method, path, "", Some("acme"));
    event["requestContext"]["authorizer"]["jwt"]["claims"]["role"] = json!("admin");
    let response = api.handle(crate::api::lambda_event(event)).await.unwrap();
    crate::api::parts(response)
}

/// 1142: command denied for the table; 1044: access denied to the database.
const DENIED: [u16; 2] = [1142, 1044];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_of_deploy_md_do_their_work_and_nothing_more() {
    let grants = deploy_grants();
    let roles: std::collections::BTreeSet<&str> = grants.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(
        roles.into_iter().collect::<Vec<_>>(),
        ["warehouse_api", "warehouse_loader", "warehouse_migrator"],
        "docs/DEPLOY.md grants to these three users"
    );
    let users = Users::create(&grants);

    // The migrator builds the schema from nothing.
    let migrator = Database::connect_blocking(users.settings("warehouse_migrator"), 1).unwrap();
    shared::store::migrate::run(&migrator).expect("the migrator migrates");
    let tables: Vec<String> = migrator.conn().unwrap().query("SHOW TABLES").unwrap();
    assert!(tables.iter().any(|t| t == "event_ledger"), "{tables:?}");

    // The loader user loads through the real loaders (summaries refreshed
    // after each batch) …
    let loader_db = Arc::new(
        Database::connect(users.settings("warehouse_loader"), 4)
            .await
            .unwrap(),
    );
    let failures = Loaders::with_database(loader_db.clone(), None)
        .await
        .deliver(&sample_lines(), 200)
        .await;
    assert!(failures.is_empty(), "{failures:?}");
    let mut loader = loader_db.conn().unwrap();
    let count = |conn: &mut mysql::PooledConn, sql: &str| -> i64 {
        conn.query_first(sql).unwrap().unwrap_or(0)
    };
    let events = sample_expected()["stats"]["events"].as_i64().unwrap();
    assert_eq!(
        count(&mut loader, "SELECT COUNT(*) FROM event_ledger"),
        events
    );
    assert!(count(&mut loader, "SELECT COUNT(*) FROM agg_presentation") > 0);
    // … backfills and reconciles (their checkpoints and run state) …
    let aws = helpers::aws_config().await;
    let ctx = JobContext {
        db: loader_db.clone(),
        s3: Some(shared::store::s3_client(&aws)),
        sqs: Some(aws_sdk_sqs::Client::new(&aws)),
        queues: QueueUrls::default(),
        exports: shared::export::ExportScope::Anywhere,
        batch_lines: 2000,
        batch_bytes: shared::jobs::backfill::DEFAULT_BATCH_BYTES,
        on_progress: None,
        before_lane_commit: None,
    };
    let source = helpers::sample_path().display().to_string();
    let options = BackfillOptions {
        source: source.clone(),
        mode: Mode::Direct,
        filters: Filters::default(),
        dry_run: false,
        lanes: backfill::DEFAULT_LANES,
    };
    let summary = backfill::run(&ctx, &options, None, None).await.unwrap();
    assert!(summary.done);
    let reconcile = ReconcileOptions {
        source,
        from_ms: None,
        to_ms: None,
        repair: None,
    };
    let (summary, _) = shared::jobs::reconcile::run_to_end(&loader_db, None, None, &reconcile)
        .await
        .unwrap();
    assert!(summary.done);
    assert_eq!(
        (summary.totals.missing, summary.totals.conflicting),
        (0, 0),
        "{:?}",
        summary.totals
    );
    // … and cannot change the schema.
    for ddl in [
        "CREATE TABLE intruder (a INT)",
        "ALTER TABLE event_ledger ADD COLUMN intruder INT",
        "CREATE INDEX intruder ON dim_presentation (title)",
        "DROP TABLE agg_presentation",
        "TRUNCATE TABLE error_event",
    ] {
        let code = refused(&mut loader, ddl);
        assert!(DENIED.contains(&code), "{ddl}: error {code}");
    }

    // The API user answers through the real API …
    let lookup = |name: &str| match name {
        "DATABASE_URL" => match users.settings("warehouse_api") {
            DatabaseSettings::Url(url) => Some(url.expose().to_string()),
            _ => None,
        },
        _ => None,
    };
    let api = AnalyticsApi::connect(ApiConfig::from_lookup(&lookup).unwrap())
        .await
        .unwrap();
    let expected = helpers::sample_expected_with_live();
    let get = |path: &'static str| call(&api, "GET", path);
    // A report with no cached copy: computed, and not cached (no write).
    let (status, report) = get("/tenants/acme/presentations/prs-acm-0000").await;
    assert_eq!(
        (status, &report),
        (200, &expected["reports"]["prs-acm-0000"])
    );
    assert_eq!(
        count(&mut loader, "SELECT COUNT(*) FROM agg_presentation_report"),
        0
    );
    // The list, with a summary made stale: served as it is, named stale (a
    // list that recomputed it would have had to write).
    loader
        .query_drop(
            "UPDATE dim_presentation SET revision = revision + 1 WHERE presentation_id = 'prs-acm-0000'",
        )
        .unwrap();
    let (status, list) = get("/tenants/acme/presentations").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["staleFigures"], json!(["prs-acm-0000"]));
    let (status, viewers) = get("/tenants/acme/presentations/prs-acm-0000/viewers").await;
    assert_eq!(status, 200, "{viewers}");
    // … and cannot write a row, nor change the schema.
    let mut reader = api.database().conn().unwrap();
    for write in [
        "INSERT INTO feature_flag (tenant_id, data_point, state, updated_at) VALUES ('acme', 'polls', 'off', NOW())",
        "UPDATE agg_presentation SET unique_viewers = 0",
        "DELETE FROM event_ledger",
        "REPLACE INTO agg_presentation_report (presentation_key, source_revision, format_version, report) VALUES (1, 1, 1, '{}')",
        "CREATE TABLE intruder (a INT)",
    ] {
        let code = refused(&mut reader, write);
        assert!(DENIED.contains(&code), "{write}: error {code}");
    }
    drop(reader);

    // The erasure, which writes, is the erase-viewer function's, as the
    // loader user: as the API's user it could not be done (a 503, nothing
    // erased), as the loader user it is.
    let erase = "/tenants/acme/viewers/u-1";
    let as_api_user = AnalyticsApi::connect(ApiConfig::from_lookup(&lookup).unwrap())
        .await
        .unwrap();
    assert_eq!(call(&as_api_user, "DELETE", erase).await.0, 503);
    let erasures = AnalyticsApi::new(loader_db.clone()).serving(ApiRoutes::Erasures);
    let (status, receipt) = call(&erasures, "DELETE", erase).await;
    assert_eq!(
        (status, &receipt["known"]),
        (200, &json!(true)),
        "{receipt}"
    );
    drop(loader);
}
