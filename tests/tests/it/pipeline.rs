//! The local pipeline end to end on the real function binaries (built by
//! `cargo build --workspace --bins`): moto queues with dead-letter queues,
//! the functions under `cargo lambda watch`'s control plane, an event source
//! mapping per queue, the backfill function enqueueing the sample, the
//! reconcile function, the analytics API function.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use integration_tests::harness::{assert_golden_answers, assert_json_eq};
use rand::Rng;
use shared::contract::DataPoint;
use warehouse_cli::local::{run_pipeline, LocalOptions, LocalStack, PipelineSummary};

use crate::helpers::{self, TestDb};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_through_the_local_pipeline_gives_the_golden_answers() {
    let test = TestDb::new();
    let prefix = format!("e2e-{:08x}", rand::rng().random::<u32>());
    let mut stack = LocalStack::start(LocalOptions {
        database_url: shared::store::Secret::new(test.url.clone()),
        batch_size: 100,
        visibility_timeout: Duration::from_secs(30),
        queue_prefix: prefix,
        moto_endpoint: Some(helpers::moto_endpoint().to_string()),
        chaos: None,
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));

    // Poison sent straight to two queues, as a broken publisher would.
    let poison: [(DataPoint, &str); 3] = [
        (DataPoint::Attendance, "this is not json"),
        (
            DataPoint::Attendance,
            r#"{"streamId": "p-1", "version": "one"}"#,
        ),
        (DataPoint::Polls, "{\"truncated\": "),
    ];
    for (data_point, body) in poison {
        stack
            .sqs
            .send_message()
            .queue_url(&stack.queues[&data_point].url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let sample = helpers::sample_path();
    let summary = run_until_drained(&mut stack, &test, &sample).await;

    // Backfill: the sample's stats, its malformed lines in the error table.
    let stats = &helpers::sample_expected()["stats"];
    assert_eq!(summary.backfill["lines"], stats["lines"]);
    assert_eq!(summary.backfill["malformed"], stats["malformed"]);
    assert!(summary.backfill_invocations > 1, "the run was paced");
    assert_eq!(
        test.count("SELECT COUNT(*) FROM error_event WHERE kind = 'malformed' AND line_number > 0"),
        stats["malformed"].as_i64().unwrap()
    );

    // The poison: recorded by the loader that got it and in its queue's DLQ.
    let poison_rows: Vec<(String, Vec<u8>)> = test.rows(
        "SELECT source, raw_body FROM error_event WHERE line_number = 0 ORDER BY source, raw_body",
    );
    let mut expected_rows: Vec<(String, Vec<u8>)> = poison
        .iter()
        .map(|(dp, body)| {
            (
                warehouse_cli::local::loader_function(*dp).to_string(),
                body.as_bytes().to_vec(),
            )
        })
        .collect();
    expected_rows.sort();
    assert_eq!(poison_rows, expected_rows);
    let mut expected_dead = BTreeMap::from_iter(DataPoint::ALL.map(|dp| (dp, 0)));
    expected_dead.insert(DataPoint::Attendance, 2);
    expected_dead.insert(DataPoint::Polls, 1);
    assert_eq!(summary.dead_letters, expected_dead);
    for (data_point, totals) in &summary.event_source_mappings {
        assert_eq!(totals.deleted, totals.messages, "{data_point}: {totals:?}");
        assert_eq!(totals.failed_invocations, 0, "{data_point}: {totals:?}");
    }

    // Reconciliation finds nothing to repair.
    for kind in ["missing", "unexpected", "conflicting"] {
        assert_eq!(
            summary.reconciliation[kind], 0,
            "{kind}: {}",
            summary.reconciliation
        );
    }
    assert!(summary.reconciliation["compared"].as_u64().unwrap() > 5000);

    // Every golden answer, and the API function's report.
    let mut conn = test.conn();
    assert_golden_answers(&mut conn);
    let (_, id) = summary.presentation.clone().expect("a presentation");
    assert_json_eq(
        "the analytics API's report",
        &summary.report,
        &helpers::sample_expected_with_live()["reports"][&id],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chaos_rehearsal_on_the_sample_gives_the_golden_answers() {
    // A fixed seed, so that every run plans the same faults. Every kind must
    // strike: the loader faults strike at their loader's next commit, held
    // by its proxy, so they do not depend on the machine's speed.
    let missed = chaos_rehearsal(18).await;
    assert_eq!(missed, Vec::<&str>::new(), "faults that never struck");
}

/// One rehearsal of the sample under `seed`'s faults, checked in full: the
/// golden answers, nothing dead-lettered, nothing to reconcile. Returns the
/// kinds of fault that never struck.
async fn chaos_rehearsal(seed: u64) -> Vec<&'static str> {
    let test = TestDb::new();
    let mut stack = LocalStack::start(LocalOptions {
        database_url: shared::store::Secret::new(test.url.clone()),
        batch_size: 100,
        // As `warehouse pipeline --chaos`: killed batches come back sooner.
        visibility_timeout: Duration::from_secs(10),
        queue_prefix: format!("chaos-{:08x}", rand::rng().random::<u32>()),
        moto_endpoint: Some(helpers::moto_endpoint().to_string()),
        chaos: Some(seed),
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let summary = run_until_drained(&mut stack, &test, &helpers::sample_path()).await;

    let chaos = summary.chaos.clone().expect("the faults injected");
    assert_eq!(chaos.seed, seed);
    let faults = &chaos.faults;
    // A killed runtime fails its invocation: its batch came back.
    let failed: u64 = summary
        .event_source_mappings
        .values()
        .map(|totals| totals.failed_invocations)
        .sum();
    assert!(failed >= faults.loader_killed, "{summary:?}");

    // The killed backfill resumed from its checkpoint: its totals count
    // every line once.
    let stats = &helpers::sample_expected()["stats"];
    assert_eq!(summary.backfill["done"], true);
    assert_eq!(summary.backfill["lines"], stats["lines"]);
    assert_eq!(summary.backfill["malformed"], stats["malformed"]);
    // Nothing given up on: no message reached the dead-letter queues.
    assert!(
        summary.dead_letters.values().all(|n| *n == 0),
        "{:?}",
        summary.dead_letters
    );
    for kind in ["missing", "unexpected", "conflicting"] {
        assert_eq!(
            summary.reconciliation[kind], 0,
            "{kind}: {}",
            summary.reconciliation
        );
    }
    assert!(summary.reconciliation["compared"].as_u64().unwrap() > 5000);

    // Every answer is the calm run's.
    assert_golden_answers(&mut test.conn());
    let (_, id) = summary.presentation.clone().expect("a presentation");
    assert_json_eq(
        "the analytics API's report",
        &summary.report,
        &helpers::sample_expected_with_live()["reports"][&id],
    );
    [
        ("loaderKilled", faults.loader_killed),
        ("connectionKilled", faults.connection_killed),
        ("deliveredTwice", faults.delivered_twice),
        ("backfillKilled", faults.backfill_killed),
    ]
    .into_iter()
    .filter(|(_, injected)| *injected == 0)
    .map(|(kind, _)| kind)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poison_export_through_the_local_pipeline_gives_its_golden_answers() {
    let test = TestDb::new();
    let prefix = format!("e2e-poison-{:08x}", rand::rng().random::<u32>());
    let mut stack = LocalStack::start(LocalOptions {
        database_url: shared::store::Secret::new(test.url.clone()),
        batch_size: 100,
        visibility_timeout: Duration::from_secs(30),
        queue_prefix: prefix,
        moto_endpoint: Some(helpers::moto_endpoint().to_string()),
        chaos: None,
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let summary = run_until_drained(&mut stack, &test, &helpers::poison_path()).await;

    let expected = helpers::poison_expected();
    assert_eq!(summary.backfill["lines"], expected["stats"]["lines"]);
    assert_eq!(
        summary.backfill["malformed"],
        expected["stats"]["malformed"]
    );
    for (data_point, totals) in &summary.event_source_mappings {
        assert_eq!(totals.deleted, totals.messages, "{data_point}: {totals:?}");
        assert_eq!(totals.failed_invocations, 0, "{data_point}: {totals:?}");
    }
    assert!(
        summary.dead_letters.values().all(|n| *n == 0),
        "{:?}",
        summary.dead_letters
    );
    for kind in ["missing", "unexpected", "conflicting"] {
        assert_eq!(
            summary.reconciliation[kind], 0,
            "{kind}: {}",
            summary.reconciliation
        );
    }
    assert_eq!(
        test.count("SELECT COUNT(*) FROM error_event WHERE kind = 'refused'"),
        0
    );
    integration_tests::harness::assert_answers_of(&mut test.conn(), &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_via_lambda_invokes_the_function_until_done() {
    let test = TestDb::new();
    let mut stack = LocalStack::start(LocalOptions {
        database_url: shared::store::Secret::new(test.url.clone()),
        batch_size: 10,
        visibility_timeout: Duration::from_secs(30),
        queue_prefix: format!("via-{:08x}", rand::rng().random::<u32>()),
        moto_endpoint: Some(helpers::moto_endpoint().to_string()),
        chaos: None,
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
    let warehouse = warehouse_cli::processes::workspace_binary("warehouse").unwrap();
    let control_plane = format!("http://{}", stack.control_plane);
    // The function reads only its exports folder.
    let source = stack
        .upload_export(&helpers::sample_path())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(warehouse)
            .args([
                "backfill",
                "--mode",
                "direct",
                "--via-lambda",
                "backfill",
                "--source",
            ])
            .arg(source)
            // Only the Lambda client goes to the control plane.
            .env("AWS_ENDPOINT_URL_LAMBDA", control_plane)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("DATABASE_URL")
            .output()
    })
    .await
    .unwrap()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let stats = &helpers::sample_expected()["stats"];
    assert_eq!(summary["done"], true);
    for field in ["events", "duplicates", "malformed"] {
        assert_eq!(summary[field], stats[field], "{field}: {summary}");
    }
    assert_eq!(
        test.count("SELECT COUNT(*) FROM event_ledger"),
        stats["events"].as_i64().unwrap(),
        "the function loaded the events"
    );
    assert!(
        stderr.contains("backfill: backfill:"),
        "progress per invocation: {stderr}"
    );
    stack.stop_mappings().await;
}

/// The local pipeline run on `export` until its queues drain (10 minutes at
/// most), its report being that of the first presentation by id.
async fn run_until_drained(
    stack: &mut LocalStack,
    test: &TestDb,
    export: &Path,
) -> PipelineSummary {
    let db = &test.db;
    run_pipeline(stack, export, Duration::from_secs(600), || {
        let mut conn = db.conn()?;
        Ok(mysql::prelude::Queryable::query_first(
            &mut conn,
            "SELECT tenant_id, presentation_id FROM dim_presentation ORDER BY presentation_id LIMIT 1",
        )?)
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"))
}
