//! Real services for the tests: a freshly migrated MariaDB database per test
//! (dropped afterwards, kept and named when the test fails) and one moto
//! server per test binary on a free loopback port.

use std::path::PathBuf;
use std::sync::OnceLock;

use mysql::prelude::Queryable;
use rand::Rng;
use shared::store::Database;
use shared::store::{DatabaseSettings, Secret};

/// The server the tests create their databases on (root, empty password locally).
fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/".into())
}

fn with_database(url: &str, name: &str) -> String {
    let base = url.trim_end_matches('/');
    // Drop any database already named in the URL.
    let base = match base.strip_prefix("mysql://") {
        Some(rest) if rest.contains('/') => format!("mysql://{}", rest.split('/').next().unwrap()),
        _ => base.to_string(),
    };
    format!("{base}/{name}")
}

fn admin_conn() -> mysql::Conn {
    let url = admin_url();
    mysql::Conn::new(mysql::Opts::from_url(&url).expect("TEST_DATABASE_URL is a mysql:// URL"))
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach the test MariaDB at {url} ({e}). Start it with scripts/setup.sh, or set TEST_DATABASE_URL"
            )
        })
}

/// A database of its own for one test, migrated to the latest schema.
pub struct TestDb {
    pub name: String,
    pub url: String,
    pub db: Database,
}

impl Default for TestDb {
    fn default() -> Self {
        TestDb::new()
    }
}

impl TestDb {
    pub fn new() -> TestDb {
        let name = format!("wh_test_{:016x}", rand::rng().random::<u64>());
        admin_conn()
            .query_drop(format!(
                "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            ))
            .expect("create the test database");
        let url = with_database(&admin_url(), &name);
        let db = Database::connect_blocking(DatabaseSettings::Url(Secret::new(url.clone())), 4)
            .expect("connect to the test database");
        shared::store::migrate::run(&db).expect("migrate the test database");
        TestDb { name, url, db }
    }

    pub fn settings(&self) -> DatabaseSettings {
        DatabaseSettings::Url(Secret::new(self.url.clone()))
    }

    pub fn conn(&self) -> mysql::PooledConn {
        self.db.conn().expect("a connection to the test database")
    }

    /// Rows of a query, for assertions.
    pub fn rows<T: mysql::prelude::FromRow>(&self, sql: &str) -> Vec<T> {
        self.conn()
            .query(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Makes the database refuse (SQLSTATE 45000, not transient) every row
    /// of `table` whose `column` is `value`: an event the contract accepts
    /// but the database will not store, as a bug or a schema drift would.
    pub fn refuse_rows(&self, table: &str, column: &str, value: &str) {
        self.conn()
            .query_drop(format!(
                "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} FOR EACH ROW \
                 IF NEW.{column} = '{value}' THEN \
                 SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by the test: {column} {value}'; \
                 END IF"
            ))
            .expect("create the refusing trigger");
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.conn()
            .query_first::<i64, _>(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .unwrap_or(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "test failed: kept its database `{}` for inspection (mysql -uroot {})",
                self.name, self.name
            );
            return;
        }
        let _ = admin_conn().query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name));
    }
}

/// The endpoint of a moto server shared by this test binary. Uses
/// `MOTO_ENDPOINT` when set, otherwise starts `moto_server` from the project
/// virtualenv on a free port; it stops when this process exits.
pub fn moto_endpoint() -> &'static str {
    static MOTO: OnceLock<(String, Option<warehouse_cli::processes::Supervised>)> = OnceLock::new();
    &MOTO
        .get_or_init(|| {
            if let Ok(endpoint) = std::env::var("MOTO_ENDPOINT") {
                return (endpoint, None);
            }
            // Never dropped: its watchdog stops it when the test binary exits.
            let (endpoint, process) = warehouse_cli::processes::start_moto()
                .unwrap_or_else(|e| panic!("cannot start moto: {e:#}"));
            (endpoint, Some(process))
        })
        .0
}

/// AWS configuration pointing at moto, with dummy credentials.
pub async fn aws_config() -> aws_config::SdkConfig {
    warehouse_cli::local::local_aws_config(moto_endpoint()).await
}

/// A uniquely named queue on moto, returning its URL.
pub async fn create_queue(sqs: &aws_sdk_sqs::Client, prefix: &str) -> String {
    let name = format!("{prefix}-{:08x}", rand::rng().random::<u32>());
    sqs.create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("create a moto queue")
        .queue_url
        .expect("a queue URL")
}

/// Everything on a moto queue. Received messages stay invisible for ten
/// minutes instead of being deleted one by one (moto answers each call in
/// time proportional to the queue's length).
pub async fn drain_queue(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let mut all = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(600)
            .message_attribute_names("All")
            .send()
            .await
            .expect("receive from moto");
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return all;
        }
        all.extend(messages);
    }
}

/// How many messages a queue holds (visible and in flight).
pub async fn queue_length(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    warehouse_cli::local::queue_length(sqs, url)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// An export file written for one test, removed when dropped (also when
/// the test fails).
pub struct TempExport(PathBuf);

impl TempExport {
    /// Writes `text` to a new file whose name starts with `name`.
    pub fn new(name: &str, text: &str) -> TempExport {
        let path =
            std::env::temp_dir().join(format!("{name}-{:08x}.jsonl", rand::rng().random::<u32>()));
        std::fs::write(&path, text).expect("write a temporary export");
        TempExport(path)
    }

    /// The path, as a backfill or reconcile `source`.
    pub fn source(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for TempExport {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The sample export's path.
pub fn sample_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/samples/events.jsonl")
}

pub fn sample_expected() -> serde_json::Value {
    samples_json("expected.json")
}

/// The answers of ANALYTICS.md §4-§7 for the sample (`expected-live.json`).
pub fn sample_expected_live() -> serde_json::Value {
    samples_json("expected-live.json")
}

/// `expected.json` with what `expected-live.json` adds to its answers: each
/// report's `dataThrough`, and the viewer rows with `upvotesGiven` and
/// `engagementScore` (under the weights of `expected-live.json`: see
/// [`set_sample_weights`]).
pub fn sample_expected_with_live() -> serde_json::Value {
    let mut expected = sample_expected();
    let live = sample_expected_live();
    for (id, answers) in live["presentations"].as_object().expect("presentations") {
        expected["reports"][id]["dataThrough"] = answers["dataThrough"].clone();
        expected["viewers"][id] = answers["viewers"].clone();
    }
    expected
}

/// The tenants' engagement weights of `expected-live.json`.
pub fn sample_weights() -> Vec<(String, shared::contract::EngagementWeights)> {
    let live = sample_expected_live();
    live["weights"]
        .as_object()
        .expect("weights")
        .iter()
        .map(|(tenant, w)| {
            let weights = serde_json::from_value(w.clone()).expect("four weights");
            (tenant.clone(), weights)
        })
        .collect()
}

/// Sets the weights of `expected-live.json` that are not the defaults (as
/// `warehouse engagement set` would).
pub fn set_sample_weights(conn: &mut impl mysql::prelude::Queryable) {
    for (tenant, weights) in sample_weights() {
        if weights != shared::contract::EngagementWeights::DEFAULT {
            shared::read::set_engagement_weights(conn, &tenant, weights).expect("weights set");
        }
    }
}

/// The second golden export, which breaks every limit of EVENTS.md.
pub fn poison_path() -> PathBuf {
    sample_path().with_file_name("poison.jsonl")
}

pub fn poison_expected() -> serde_json::Value {
    samples_json("poison-expected.json")
}

fn samples_json(name: &str) -> serde_json::Value {
    let path = sample_path().with_file_name(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("a samples file"))
        .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", path.display()))
}
