//! The SQS loaders, called as Lambda handlers with real SQS event JSON,
//! against the real MariaDB and a real (moto) dead-letter queue.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use proptest::prelude::*;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::SeedableRng;
use shared::contract::DataPoint;
use shared::handlers::SqsLoader;
use shared::store::run_script;
use shared::store::Database;

use crate::helpers::{self, TestDb};

/// The ids a batch response sends back, sorted.
fn failed_ids(response: aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    let mut ids: Vec<String> = response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    ids.sort();
    ids
}
pub use integration_tests::harness::{lambda_event, sample_lines, snapshot, sqs_event, Loaders};

pub(crate) fn event(
    stream: &str,
    version: i64,
    event_type: &str,
    data: serde_json::Value,
) -> String {
    serde_json::json!({
        "_id": {"$oid": "6140a1e5c2a4b3d2e1f0a9b8"},
        "streamId": stream, "version": version, "type": event_type,
        "occurredAt": {"$date": format!("2021-09-10T12:{:02}:00.000Z", version % 60)},
        "tenantId": "acme", "data": data
    })
    .to_string()
}

pub(crate) fn joined(stream: &str, version: i64, viewer: &str, session: &str) -> String {
    event(
        stream,
        version,
        "ViewerJoined",
        serde_json::json!({"viewerId": viewer, "sessionId": session, "device": "desktop"}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_message_changes_nothing() {
    let test = TestDb::new();
    let loaders = Loaders::new(&test).await;
    let bodies = vec![
        joined("p-1", 1, "u-1", "s-1"),
        joined("p-1", 2, "u-2", "s-2"),
    ];
    assert!(loaders.deliver(&bodies, 10).await.is_empty());
    let first = snapshot(&test);
    // Again in the same batch shape, in another split, and on a later call.
    assert!(loaders.deliver(&bodies, 10).await.is_empty());
    assert!(loaders.deliver(&bodies, 1).await.is_empty());
    assert_eq!(snapshot(&test), first);
    let (loaded, duplicates): (u64, u64) = test
        .conn()
        .query_first("SELECT CAST(SUM(events_loaded) AS UNSIGNED), CAST(SUM(duplicates) AS UNSIGNED) FROM load_run")
        .unwrap()
        .unwrap();
    assert_eq!((loaded, duplicates), (2, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_event_is_rejected_recorded_and_the_first_stays() {
    let test = TestDb::new();
    let loaders = Loaders::new(&test).await;
    let first = joined("p-1", 1, "u-1", "s-1");
    let conflicting = joined("p-1", 1, "u-9", "s-9");
    assert!(loaders.deliver(&[first], 10).await.is_empty());
    assert!(loaders
        .deliver(std::slice::from_ref(&conflicting), 10)
        .await
        .is_empty());
    assert_eq!(test.count("SELECT COUNT(*) FROM fact_session"), 1);
    assert_eq!(
        test.count("SELECT COUNT(*) FROM fact_session WHERE session_id = 's-1'"),
        1
    );
    let (kind, reason, raw): (String, String, Vec<u8>) = test
        .conn()
        .query_first("SELECT kind, reason, raw_body FROM error_event")
        .unwrap()
        .unwrap();
    assert_eq!(kind, "conflict");
    assert!(
        reason.contains("(tenant acme, stream p-1, version 1)"),
        "{reason}"
    );
    assert_eq!(raw, conflicting.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_misrouted_messages_are_recorded_dead_lettered_and_acknowledged() {
    let test = TestDb::new();
    let loaders = Loaders::new(&test).await;
    let good = joined("p-1", 1, "u-1", "s-1");
    let misrouted = event("p-1", 2, "PollClosed", serde_json::json!({"pollId": "x"}));
    let bodies = ["this is not json", good.as_str(), misrouted.as_str()];
    let response = loaders
        .get(DataPoint::Attendance)
        .handle(lambda_event(&bodies))
        .await
        .unwrap();
    assert!(
        response.batch_item_failures.is_empty(),
        "{:?}",
        response.batch_item_failures
    );
    assert_eq!(test.count("SELECT COUNT(*) FROM fact_session"), 1);
    let errors: Vec<(String, Vec<u8>)> =
        test.rows("SELECT kind, raw_body FROM error_event ORDER BY kind");
    assert_eq!(
        errors,
        vec![
            ("malformed".to_string(), b"this is not json".to_vec()),
            (
                "wrong_data_point".to_string(),
                misrouted.as_bytes().to_vec()
            )
        ]
    );
    let mut dead = helpers::drain_queue(&loaders.sqs, &loaders.dlq_url).await;
    dead.sort_by_key(|m| m.body.clone());
    assert_eq!(dead.len(), 2);
    let reasons: Vec<String> = dead
        .iter()
        .map(|m| {
            m.message_attributes.as_ref().unwrap()["reason"]
                .string_value
                .clone()
                .unwrap()
        })
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("not valid JSON")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("PollClosed is a polls event")),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_message_whose_forwarding_fails_comes_back_and_only_it() {
    let test = TestDb::new();
    let db = Arc::new(Database::connect(test.settings(), 2).await.unwrap());
    let missing_dlq = format!("{}/123456789012/no-such-queue", helpers::moto_endpoint());
    let loaders = Loaders::with_database(db, Some(missing_dlq)).await;
    let good = joined("p-1", 1, "u-1", "s-1");
    let response = loaders
        .get(DataPoint::Attendance)
        .handle(lambda_event(&[good.as_str(), "{broken"]))
        .await
        .unwrap();
    let failed = failed_ids(response);
    assert_eq!(failed, vec!["msg-1".to_string()]);
    assert_eq!(test.count("SELECT COUNT(*) FROM fact_session"), 1);
    assert_eq!(
        test.count("SELECT COUNT(*) FROM error_event WHERE kind = 'malformed'"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_analytics_events_are_counted_and_acknowledged() {
    let test = TestDb::new();
    let loaders = Loaders::new(&test).await;
    let slide = event("p-1", 5, "SlideChanged", serde_json::json!({"slide": 3}));
    let response = loaders
        .get(DataPoint::Attendance)
        .handle(lambda_event(&[slide.as_str()]))
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(test.count("SELECT SUM(not_analytics) FROM load_run"), 1);
    assert_eq!(test.count("SELECT COUNT(*) FROM error_event"), 0);
    assert_eq!(test.count("SELECT COUNT(*) FROM fact_session"), 0);
    assert!(helpers::drain_queue(&loaders.sqs, &loaders.dlq_url)
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_database_stays_down_every_message_comes_back() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = shared::store::DatabaseSettings::Url(shared::store::Secret::new(format!(
        "mysql://root@127.0.0.1:{port}/nowhere"
    )));
    let db = Arc::new(Database::connect(settings, 1).await.unwrap());
    let loaders = Loaders::with_database(db, None).await;
    let bodies = [joined("p-1", 1, "u-1", "s-1"), "garbage".to_string()];
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let started = Instant::now();
    let (response, report) = loaders
        .get(DataPoint::Attendance)
        .handle_batch(sqs_event(&refs), Instant::now() + Duration::from_secs(5))
        .await;
    let failed = failed_ids(response);
    assert_eq!(failed, vec!["msg-0".to_string(), "msg-1".to_string()]);
    assert_eq!(report.failures, 2);
    // Nothing was dead-lettered: the bad message's record did not commit either.
    assert!(helpers::drain_queue(&loaders.sqs, &loaders.dlq_url)
        .await
        .is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "retries stop before the deadline"
    );
}

/// A loader whose processing panics whenever its batch holds version
/// `poison` of `p-1`, as a bug tripped by one event would.
async fn loader_panicking_on(
    test: &TestDb,
    poison: i64,
) -> (SqsLoader, aws_sdk_sqs::Client, String) {
    // One connection: each part of the batch can only load if the panicking
    // ones gave it back with their transactions rolled back.
    let db = Arc::new(Database::connect(test.settings(), 1).await.unwrap());
    let aws = helpers::aws_config().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let dlq_url = helpers::create_queue(&sqs, "dlq").await;
    let loader = SqsLoader::new(
        DataPoint::Attendance,
        "load-attendance",
        db,
        sqs.clone(),
        dlq_url.clone(),
    )
    .with_fault_before_commit(Arc::new(move |items| {
        if items
            .iter()
            .any(|item| item.event.stream_id == "p-1" && item.event.version == poison)
        {
            panic!("injected fault while the batch is written but not committed");
        }
    }));
    (loader, sqs, dlq_url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_that_cannot_load_is_set_aside_and_the_rest_of_its_batch_loads() {
    for size in [1i64, 10, 1000] {
        let test = TestDb::new();
        let poison = size / 2 + 1;
        let (loader, sqs, dlq_url) = loader_panicking_on(&test, poison).await;
        let bodies: Vec<String> = (1..=size)
            .map(|v| joined("p-1", v, &format!("u-{v}"), &format!("s-{v}")))
            .collect();
        let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();

        // One invocation: nothing goes back to the queue.
        let (response, report) = loader
            .handle_batch(sqs_event(&refs), Instant::now() + Duration::from_secs(60))
            .await;
        assert!(response.batch_item_failures.is_empty(), "batch of {size}");
        assert_eq!(report.counts.loaded, size as u64 - 1, "batch of {size}");
        assert_eq!(report.counts.refused, 1, "batch of {size}");
        assert_eq!(test.count("SELECT COUNT(*) FROM event_ledger"), size - 1);
        assert_eq!(test.count("SELECT COUNT(*) FROM fact_session"), size - 1);
        assert_eq!(
            test.count(&format!(
                "SELECT COUNT(*) FROM event_ledger WHERE stream_id = 'p-1' AND version = {poison}"
            )),
            0
        );
        // Exactly it is recorded, with the reason, and dead-lettered.
        let recorded: Vec<(String, String, i64)> =
            test.rows("SELECT kind, reason, version FROM error_event");
        assert_eq!(recorded.len(), 1, "batch of {size}");
        assert_eq!((recorded[0].0.as_str(), recorded[0].2), ("refused", poison));
        assert!(
            recorded[0].1.contains("injected fault"),
            "{}",
            recorded[0].1
        );
        let dead = helpers::drain_queue(&sqs, &dlq_url).await;
        assert_eq!(dead.len(), 1, "batch of {size}");
        assert_eq!(dead[0].body(), Some(bodies[poison as usize - 1].as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_sets_aside_the_event_that_causes_it_and_commits_the_rest() {
    let test = TestDb::new();
    let (loader, sqs, dlq_url) = loader_panicking_on(&test, 2).await;
    let bodies = [
        joined("p-1", 1, "u-1", "s-1"),
        joined("p-1", 2, "u-2", "s-2"),
        "{broken".to_string(),
    ];
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();

    let response = loader.handle(lambda_event(&refs)).await.unwrap();
    assert!(failed_ids(response).is_empty());
    assert_eq!(test.count("SELECT COUNT(*) FROM fact_session"), 1);
    assert_eq!(test.count("SELECT COUNT(*) FROM event_ledger"), 1);
    let kinds: Vec<String> = test.rows("SELECT kind FROM error_event ORDER BY kind");
    assert_eq!(kinds, vec!["malformed", "refused"]);
    assert_eq!(helpers::drain_queue(&sqs, &dlq_url).await.len(), 2);

    // SQS delivers it again (a duplicate delivery): nothing changes.
    let response = loader.handle(lambda_event(&refs)).await.unwrap();
    assert!(failed_ids(response).is_empty());
    assert_eq!(test.count("SELECT COUNT(*) FROM fact_session"), 1);
    assert_eq!(test.count("SELECT SUM(seen_count) FROM error_event"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_database_refuses_does_not_hold_back_its_batch() {
    let test = TestDb::new();
    let loaders = Loaders::new(&test).await;
    // A question the database refuses (a test trigger), whatever else is in
    // the batch.
    test.refuse_rows("dim_question", "question_id", "q-1");
    let long = event(
        "p-1",
        3,
        "QuestionAsked",
        serde_json::json!({"questionId": "q-1", "viewerId": "u-1", "text": "Why not?", "anonymous": false}),
    );
    let fine = event(
        "p-1",
        4,
        "QuestionAsked",
        serde_json::json!({"questionId": "q-2", "viewerId": "u-2", "text": "Why?", "anonymous": false}),
    );
    let failed = loaders.deliver(&[long, fine], 10).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(
        test.count("SELECT COUNT(*) FROM dim_question WHERE question_id = 'q-2'"),
        1
    );
    let recorded: Vec<(String, String)> = test.rows("SELECT kind, reason FROM error_event");
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].0, "refused");
    assert!(
        recorded[0].1.contains("refused by the test"),
        "{}",
        recorded[0].1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_wait_timeout_is_retried_until_the_batch_commits() {
    let test = TestDb::new();
    let db = Arc::new(
        Database::connect_with_lock_wait(test.settings(), 1, 1)
            .await
            .unwrap(),
    );
    let loaders = Loaders::with_database(db, None).await;
    assert!(loaders
        .deliver(&[joined("p-1", 1, "u-1", "s-1")], 10)
        .await
        .is_empty());
    // Another transaction holds the presentation row for 2.5 s.
    let url = test.url.clone();
    let holder = std::thread::spawn(move || {
        let mut conn = mysql::Conn::new(mysql::Opts::from_url(&url).unwrap()).unwrap();
        let mut tx = conn.start_transaction(mysql::TxOpts::default()).unwrap();
        tx.query_drop("SELECT * FROM dim_presentation FOR UPDATE")
            .unwrap();
        std::thread::sleep(Duration::from_millis(2500));
        tx.commit().unwrap();
    });
    std::thread::sleep(Duration::from_millis(200));
    let response = loaders
        .get(DataPoint::Attendance)
        .handle(lambda_event(&[joined("p-1", 2, "u-2", "s-2").as_str()]))
        .await
        .unwrap();
    holder.join().unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(test.count("SELECT COUNT(*) FROM fact_session"), 2);
    assert!(
        test.count("SELECT MAX(attempts) FROM load_run") > 1,
        "the load was retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_asker_of_an_anonymous_question_is_not_stored() {
    let test = TestDb::new();
    let loaders = Loaders::new(&test).await;
    let asked = event(
        "p-1",
        3,
        "QuestionAsked",
        serde_json::json!({"questionId": "q-1", "viewerId": "secret-asker", "text": "Why?", "anonymous": true}),
    );
    assert!(loaders.deliver(&[asked], 10).await.is_empty());
    assert_eq!(
        test.count(
            "SELECT COUNT(*) FROM dim_question WHERE asker_viewer_key IS NULL AND anonymous"
        ),
        1
    );
    // No column of any table holds the asker's id.
    let columns: Vec<(String, String)> = test.rows(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = DATABASE() \
         AND data_type IN ('varchar', 'text', 'mediumtext', 'mediumblob', 'longtext', 'blob')",
    );
    for (table, column) in columns {
        let hits = test.count(&format!(
            "SELECT COUNT(*) FROM `{table}` WHERE CAST(`{column}` AS CHAR) LIKE '%secret-asker%'"
        ));
        assert_eq!(hits, 0, "{table}.{column} holds the anonymous asker");
    }
}

/// Every text column of the warehouse that holds `needle`, as `table.column`.
pub(crate) fn columns_holding(test: &TestDb, needle: &str) -> Vec<String> {
    let columns: Vec<(String, String)> = test.rows(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = DATABASE() \
         AND data_type IN ('char', 'varchar', 'text', 'mediumtext', 'longtext', 'binary', 'varbinary', 'blob', 'mediumblob', 'longblob')",
    );
    columns
        .into_iter()
        .filter(|(table, column)| {
            test.count(&format!(
                "SELECT COUNT(*) FROM `{table}` WHERE INSTR(CAST(`{column}` AS BINARY), '{needle}') > 0"
            )) > 0
        })
        .map(|(table, column)| format!("{table}.{column}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_asker_leaves_no_trace_in_rejects_or_dead_letters() {
    let test = TestDb::new();
    let loaders = Loaders::new(&test).await;
    let asked = |version: serde_json::Value, viewer: &str| {
        serde_json::json!({
            "_id": {"$oid": "6140a1e5c2a4b3d2e1f0a9b8"},
            "streamId": "p-1", "version": version, "type": "QuestionAsked",
            "occurredAt": {"$date": "2021-09-10T12:00:00.000Z"}, "tenantId": "acme",
            "data": {"questionId": "q-1", "viewerId": viewer, "text": "Why?", "anonymous": true}
        })
        .to_string()
    };
    let bodies = vec![
        // Malformed (a version that is no number), valid, and a conflicting copy.
        asked(serde_json::json!("x"), "u-secret-malformed"),
        asked(serde_json::json!(3), "u-secret-first"),
        asked(serde_json::json!(3), "u-secret-conflict"),
        // Not JSON at all.
        r#"{"type": "QuestionAsked", "data": {"viewerId": "u-secret-garbage", "anonymous": true"#
            .to_string(),
    ];
    for body in &bodies {
        assert!(loaders
            .deliver(std::slice::from_ref(body), 10)
            .await
            .is_empty());
    }
    assert_eq!(test.count("SELECT COUNT(*) FROM error_event"), 3);
    assert_eq!(columns_holding(&test, "u-secret"), Vec::<String>::new());
    let dead = helpers::drain_queue(&loaders.sqs, &loaders.dlq_url).await;
    assert_eq!(dead.len(), 2, "the malformed and the garbage copies");
    for message in dead {
        let body = message.body().unwrap_or_default();
        assert!(!body.contains("u-secret"), "dead-lettered as is: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facts_that_arrive_before_their_dimensions_count_once_they_arrive() {
    let test = TestDb::new();
    let loaders = Loaders::new(&test).await;
    let left = event(
        "p-1",
        4,
        "ViewerLeft",
        serde_json::json!({"viewerId": "u-1", "sessionId": "s-1"}),
    );
    let vote = event(
        "p-1",
        6,
        "PollVoted",
        serde_json::json!({"pollId": "poll-1", "viewerId": "u-1", "optionIds": ["a"]}),
    );
    assert!(loaders.deliver(&[left, vote], 10).await.is_empty());
    // Inferred members: the presentation, the session and the poll exist, incomplete.
    assert_eq!(
        test.count("SELECT COUNT(*) FROM dim_presentation WHERE created_version IS NULL"),
        1
    );
    assert_eq!(
        test.count(
            "SELECT COUNT(*) FROM fact_session WHERE join_version IS NULL AND end_ms IS NOT NULL"
        ),
        1
    );
    assert_eq!(
        test.count("SELECT COUNT(*) FROM dim_poll WHERE created_version IS NULL"),
        1
    );
    let created = event(
        "p-1",
        1,
        "PresentationCreated",
        serde_json::json!({"title": "All hands", "presenter": {"id": "e-1", "name": "Dana"},
                           "scheduledStart": {"$date": "2021-09-10T12:00:00Z"}, "timezone": "UTC"}),
    );
    let poll = event(
        "p-1",
        5,
        "PollCreated",
        serde_json::json!({"pollId": "poll-1", "question": "Q?", "options": [{"id": "a", "text": "A"}], "multipleChoice": false}),
    );
    assert!(loaders
        .deliver(&[joined("p-1", 2, "u-1", "s-1"), created, poll], 10)
        .await
        .is_empty());
    assert_eq!(test.count("SELECT COUNT(*) FROM dim_presentation WHERE created_version = 1 AND title = 'All hands'"), 1);
    assert_eq!(
        test.count(
            "SELECT COUNT(*) FROM fact_session WHERE join_version = 2 AND end_ms > start_ms"
        ),
        1
    );
    assert_eq!(
        test.count("SELECT COUNT(*) FROM dim_poll WHERE created_version = 5"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_in_batches_of_10_and_of_10000_gives_the_same_facts() {
    let lines = sample_lines();
    let small = TestDb::new();
    Loaders::new(&small).await.deliver(&lines, 10).await;
    let large = TestDb::new();
    Loaders::new(&large).await.deliver(&lines, 10_000).await;
    assert_eq!(snapshot(&small), snapshot(&large));
    assert_eq!(small.count("SELECT COUNT(*) FROM event_ledger"), 5852);
    assert_eq!(
        small.count("SELECT COUNT(*) FROM error_event WHERE kind = 'malformed'"),
        8
    );
}

#[test]
fn a_script_reports_each_statements_outcome_and_stops_at_the_first_error() {
    let test = TestDb::new();
    let mut conn = test.conn();
    conn.query_drop("CREATE TABLE t (id INT PRIMARY KEY)")
        .unwrap();
    let big = "x".repeat(600_000);
    let script = vec![
        "INSERT INTO t VALUES (1), (2)".to_string(),
        "SELECT id FROM t ORDER BY id".to_string(),
        // Too long to share one text with the next: a second round trip.
        format!("SELECT LENGTH('{big}')"),
        format!("SELECT LENGTH('{big}')"),
    ];
    let outcomes = run_script(&mut conn, &script).unwrap();
    assert_eq!(outcomes.len(), 4);
    assert_eq!(outcomes[0].affected_rows, 2);
    let ids: Vec<i64> = outcomes[1].rows.iter().map(|r| r.get(0).unwrap()).collect();
    assert_eq!(ids, vec![1, 2]);
    let length: i64 = outcomes[3].rows[0].get(0).unwrap();
    assert_eq!(length, 600_000);

    // The error of a statement in the middle comes back; later ones never run.
    let script = [
        "INSERT INTO t VALUES (3)".to_string(),
        "INSERT INTO t VALUES (1)".to_string(),
        "INSERT INTO t VALUES (4)".to_string(),
    ];
    match run_script(&mut conn, &script) {
        Err(mysql::Error::MySqlError(e)) => assert_eq!(e.code, 1062, "{e}"),
        other => panic!(
            "expected the duplicate key error, got {:?}",
            other.map(|o| o.len())
        ),
    }
    let ids: Vec<i64> = conn.query("SELECT id FROM t ORDER BY id").unwrap();
    assert_eq!(ids, vec![1, 2, 3]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// Any permutation of the sample, with repeats, split into any batches,
    /// gives the warehouse of a clean in-order load.
    #[test]
    fn order_duplicates_and_batching_do_not_change_the_warehouse(
        seed in any::<u64>(),
        batch_size in 1usize..3000,
        repeats in 0usize..400,
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let lines = sample_lines();
        let reference = reference_snapshot(&runtime, &lines);
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut shuffled = lines.clone();
        for _ in 0..repeats {
            let pick = shuffled.choose(&mut rng).unwrap().clone();
            shuffled.push(pick);
        }
        shuffled.shuffle(&mut rng);
        let test = TestDb::new();
        runtime.block_on(async { Loaders::new(&test).await.deliver(&shuffled, batch_size).await });
        prop_assert_eq!(&snapshot(&test), reference);
    }
}

fn reference_snapshot(
    runtime: &tokio::runtime::Runtime,
    lines: &[String],
) -> &'static BTreeMap<String, Vec<String>> {
    static REFERENCE: std::sync::OnceLock<BTreeMap<String, Vec<String>>> =
        std::sync::OnceLock::new();
    REFERENCE.get_or_init(|| {
        let test = TestDb::new();
        runtime.block_on(async { Loaders::new(&test).await.deliver(lines, 10_000).await });
        snapshot(&test)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_carrying_another_tenant_is_that_tenants_and_takes_no_version_of_the_first() {
    let under = |tenant: &str, body: String| {
        let mut doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        doc["tenantId"] = tenant.into();
        doc.to_string()
    };
    // acme's p-1 versions 1 and 2; globex's copies of p-1 take versions 1
    // (the same number, another identity) and 3.
    let bodies = [
        joined("p-1", 1, "u-1", "s-1"),
        joined("p-1", 2, "u-2", "s-2"),
        under("globex", joined("p-1", 1, "u-intruder", "s-9")),
        under("globex", joined("p-1", 3, "u-intruder-2", "s-8")),
    ];
    for order in [[0, 1, 2, 3], [3, 2, 1, 0]] {
        let test = TestDb::new();
        let loaders = Loaders::new(&test).await;
        let batch: Vec<String> = order.iter().map(|&i| bodies[i].clone()).collect();
        assert!(loaders.deliver(&batch, 10).await.is_empty());
        let mut conn = test.conn();
        let ids = |conn: &mut mysql::PooledConn, tenant: &str| -> Vec<String> {
            integration_tests::harness::all_viewers(conn, tenant, "p-1")
                .into_iter()
                .map(|row| row.viewer_id)
                .collect()
        };
        assert_eq!(ids(&mut conn, "acme"), ["u-1", "u-2"], "order {order:?}");
        assert_eq!(
            ids(&mut conn, "globex"),
            ["u-intruder", "u-intruder-2"],
            "order {order:?}"
        );
        // Four identities, no conflict and no duplicate among them.
        assert_eq!(test.count("SELECT COUNT(*) FROM event_ledger"), 4);
        assert_eq!(test.count("SELECT COUNT(*) FROM error_event"), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_too_long_for_the_dead_letter_queue_is_forwarded_cut_and_recorded() {
    let test = TestDb::new();
    let loaders = Loaders::new(&test).await;
    // Over 1 MiB (malformed by EVENTS.md's limit) and 300 KB of garbage:
    // neither fits an SQS message whole. Five small ones share the calls.
    let huge = joined("p-1", 1, "u-1", "s-1").replacen(
        '{',
        &format!("{{\"pad\": \"{}\", ", "x".repeat(1 << 20)),
        1,
    );
    let mut bodies = vec![huge.clone(), "y".repeat(300_000)];
    bodies.extend((0..5).map(|i| format!("not json {i}")));
    assert!(loaders.deliver(&bodies, 10).await.is_empty());
    let dead = helpers::drain_queue(&loaders.sqs, &loaders.dlq_url).await;
    assert_eq!(dead.len(), 7);
    let cut: Vec<_> = dead
        .iter()
        .filter(|m| {
            m.message_attributes()
                .is_some_and(|a| a.contains_key("truncated"))
        })
        .collect();
    assert_eq!(cut.len(), 2);
    for message in cut {
        let body = message.body().unwrap();
        assert_eq!(body.len(), 64 * 1024);
        assert!(huge.starts_with(body) || body.bytes().all(|b| b == b'y'));
    }
    assert_eq!(
        test.count("SELECT COUNT(*) FROM error_event WHERE kind = 'malformed'"),
        7
    );
    let reason: String = test
        .conn()
        .query_first("SELECT reason FROM error_event WHERE LENGTH(raw_body) = 65536 AND body_truncated AND reason LIKE '%1048576%'")
        .unwrap()
        .expect("the over-long body is recorded as such");
    assert!(reason.contains("over the limit"), "{reason}");
}
