//! Reconciliation against the real MariaDB: it finds exactly what was
//! removed, added or altered, and its repair brings the answers back.

use std::sync::Arc;

use mysql::prelude::Queryable;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use shared::export::ExportScope;
use shared::jobs::backfill::{self, BackfillOptions, Filters, Mode};
use shared::jobs::reconcile::{self, Kind, ReconcileOptions, Repair};
use shared::jobs::JobContext;
use shared::redrive::QueueUrls;
use shared::store::Database;

use crate::helpers::{self, TestDb};
use integration_tests::harness::to_json;

async fn loaded_sample(test: &TestDb) -> JobContext {
    loaded(test, &helpers::sample_path().display().to_string()).await
}

/// A warehouse loaded from `source` by a direct backfill.
async fn loaded(test: &TestDb, source: &str) -> JobContext {
    let aws = helpers::aws_config().await;
    let ctx = JobContext {
        db: Arc::new(Database::connect(test.settings(), 2).await.unwrap()),
        s3: Some(shared::store::s3_client(&aws)),
        sqs: Some(aws_sdk_sqs::Client::new(&aws)),
        queues: QueueUrls::default(),
        exports: ExportScope::Anywhere,
        batch_lines: 2000,
        batch_bytes: backfill::DEFAULT_BATCH_BYTES,
        on_progress: None,
        before_lane_commit: None,
    };
    let options = BackfillOptions {
        source: source.to_string(),
        mode: Mode::Direct,
        filters: Filters::default(),
        dry_run: false,
        lanes: backfill::DEFAULT_LANES,
    };
    backfill::run(&ctx, &options, None, None).await.unwrap();
    ctx
}

fn options(repair: Option<Repair>) -> ReconcileOptions {
    ReconcileOptions {
        source: helpers::sample_path().display().to_string(),
        from_ms: None,
        to_ms: None,
        repair,
    }
}

/// Removes events from the warehouse as if they had never arrived: their
/// ledger rows and the fact rows keyed by them.
fn remove_events(test: &TestDb, identities: &[(String, i64)]) {
    let mut conn = test.conn();
    for (stream, version) in identities {
        for table in [
            "fact_poll_vote",
            "fact_poll_vote_option",
            "fact_survey_response",
            "fact_survey_answer",
        ] {
            conn.exec_drop(
                format!(
                    "DELETE t FROM {table} t JOIN dim_presentation p USING (presentation_key) WHERE p.presentation_id = ? AND t.version = ?"
                ),
                (stream, version),
            )
            .unwrap();
        }
        conn.exec_drop(
            "DELETE FROM event_ledger WHERE stream_id = ? AND version = ?",
            (stream, version),
        )
        .unwrap();
    }
}

fn report_json(test: &TestDb, tenant: &str, presentation: &str) -> serde_json::Value {
    to_json(&shared::read::presentation_report(&mut test.conn(), tenant, presentation).unwrap())
}

/// A window over all time, as RFC 3339 bounds (for a Lambda's detail) and as
/// the sample's reconcile options.
fn all_time() -> (&'static str, &'static str, ReconcileOptions) {
    let (from, to) = ("2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z");
    let options = ReconcileOptions {
        from_ms: Some(shared::contract::parse_rfc3339(from).unwrap()),
        to_ms: Some(shared::contract::parse_rfc3339(to).unwrap()),
        ..options(None)
    };
    (from, to, options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_differs_after_a_clean_load() {
    let test = TestDb::new();
    let ctx = loaded_sample(&test).await;
    let (summary, found) = reconcile::run_to_end(&ctx.db, None, None, &options(None))
        .await
        .unwrap();
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(
        summary.totals.compared,
        5852 - 52,
        "every distinct analytics event is compared"
    );
    assert_eq!(summary.blocks_differing, 0);
    assert_eq!(test.count("SELECT COUNT(*) FROM reconcile_run"), 1);
}

/// Damages the loaded sample's warehouse: 25 events removed, one altered
/// (conflicting) and one the store never had (unexpected, inside the
/// export's window). Returns the removed and the altered identities.
fn damage(test: &TestDb) -> (Vec<(String, i64)>, (String, i64)) {
    let mut identities: Vec<(String, i64)> =
        test.rows("SELECT stream_id, version FROM event_ledger WHERE data_point <> 'none' ORDER BY stream_id, version");
    identities.shuffle(&mut rand::rngs::StdRng::seed_from_u64(11));
    let removed: Vec<(String, i64)> = identities[..25].to_vec();
    remove_events(test, &removed);
    let (conflict_stream, conflict_version) = identities[30].clone();
    test.conn()
        .exec_drop(
            "UPDATE event_ledger SET content_hash = UNHEX(SHA2('tampered', 256)) WHERE stream_id = ? AND version = ?",
            (&conflict_stream, conflict_version),
        )
        .unwrap();
    test.conn()
        .query_drop(
            "INSERT INTO event_ledger (stream_id, version, tenant_id, data_point, event_type, occurred_at_ms, content_hash, load_id) \
             SELECT stream_id, 999999, tenant_id, data_point, event_type, occurred_at_ms, content_hash, 1 FROM event_ledger \
             WHERE stream_id = 'prs-glo-0001' AND data_point = 'attendance' LIMIT 1",
        )
        .unwrap();
    (removed, (conflict_stream, conflict_version))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_unexpected_and_conflicting_events_are_found_exactly() {
    let test = TestDb::new();
    let ctx = loaded_sample(&test).await;
    let (removed, (conflict_stream, conflict_version)) = damage(&test);

    let (summary, found) = reconcile::run_to_end(&ctx.db, None, None, &options(None))
        .await
        .unwrap();
    let mut missing: Vec<(String, i64)> = found
        .iter()
        .filter(|d| d.kind == Kind::Missing)
        .map(|d| (d.stream_id.clone(), d.version))
        .collect();
    missing.sort();
    let mut expected_missing = removed.clone();
    expected_missing.sort();
    assert_eq!(missing, expected_missing);
    let unexpected: Vec<(String, i64)> = found
        .iter()
        .filter(|d| d.kind == Kind::Unexpected)
        .map(|d| (d.stream_id.clone(), d.version))
        .collect();
    assert_eq!(unexpected, vec![("prs-glo-0001".to_string(), 999999)]);
    let conflicting: Vec<(String, i64)> = found
        .iter()
        .filter(|d| d.kind == Kind::Conflicting)
        .map(|d| (d.stream_id.clone(), d.version))
        .collect();
    assert_eq!(conflicting, vec![(conflict_stream, conflict_version)]);
    assert_eq!(
        (
            summary.totals.missing,
            summary.totals.unexpected,
            summary.totals.conflicting
        ),
        (25, 1, 1)
    );
    let by_dp: u64 = summary.by_data_point.values().map(|c| c.missing).sum();
    assert_eq!(by_dp, 25);
    assert_eq!(
        test.count(&format!(
            "SELECT COUNT(*) FROM reconcile_discrepancy WHERE run_id = {}",
            summary.run_id
        )),
        27
    );
}

/// Invokes the reconcile Lambda with a deadline already inside its margin,
/// then again with the returned `runId`, until it is done; returns the last
/// summary and where each unfinished invocation stopped (its `next`).
async fn invoke_until_done(
    function: &shared::handlers::ReconcileFunction,
    mut payload: serde_json::Value,
) -> (reconcile::ReconcileSummary, Vec<serde_json::Value>) {
    let mut stopped_in = Vec::new();
    loop {
        let mut context = lambda_runtime::Context::default();
        // Each invocation folds one chunk of the export (or does the step
        // between the passes) and returns.
        context.deadline = (std::time::SystemTime::now() + std::time::Duration::from_secs(1))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let summary = function
            .handle(lambda_runtime::LambdaEvent::new(payload.clone(), context))
            .await
            .unwrap();
        let response = to_json(&summary);
        if response["done"] == true {
            return (summary, stopped_in);
        }
        stopped_in.push(response["next"].clone());
        payload = serde_json::json!({"runId": response["runId"]});
        assert!(stopped_in.len() < 50, "{stopped_in:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_stops_near_its_deadline_and_its_continued_run_finds_what_one_run_finds() {
    let test = TestDb::new();
    let ctx = loaded_sample(&test).await;
    damage(&test);
    let (from, to, window) = all_time();
    let (uninterrupted, expected) = reconcile::run_to_end(&ctx.db, None, None, &window)
        .await
        .unwrap();
    assert_eq!(expected.len(), 27);

    let bucket = crate::backfill::sample_bucket(ctx.s3.as_ref().unwrap()).await;
    let function = shared::handlers::ReconcileFunction {
        context: crate::backfill::reading_only_night_of(ctx, &bucket),
        source_template: None,
        default_repair: None,
        error_retention: Default::default(),
    };
    let source = format!("s3://{bucket}/night/events.jsonl");
    let payload = serde_json::json!({"detail": {"source": source, "from": from, "to": to}});
    let (last, stopped_in) = invoke_until_done(&function, payload).await;
    let passes: Vec<&str> = stopped_in
        .iter()
        .map(|n| n["pass"].as_str().unwrap())
        .collect();
    assert!(
        passes.contains(&"export") && passes.contains(&"details"),
        "both passes stopped and continued: {stopped_in:?}"
    );
    let db = &function.context.db;
    assert_eq!(reconcile::discrepancies(db, last.run_id).unwrap(), expected);
    assert_eq!(
        (
            &last.totals,
            &last.by_data_point,
            last.blocks_compared,
            last.blocks_differing
        ),
        (
            &uninterrupted.totals,
            &uninterrupted.by_data_point,
            uninterrupted.blocks_compared,
            uninterrupted.blocks_differing
        )
    );
    assert_eq!(
        test.count("SELECT COUNT(*) FROM reconcile_run_stream"),
        0,
        "a finished run keeps no state"
    );
    // Invoking a finished run again answers its summary.
    let again = function
        .handle(lambda_runtime::LambdaEvent::new(
            serde_json::json!({"runId": last.run_id}),
            lambda_runtime::Context::default(),
        ))
        .await
        .unwrap();
    assert!(again.done);
    assert_eq!(again.totals, last.totals);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_night_of_several_s3_objects_continues_across_objects_and_counts_repeats_once() {
    let test = TestDb::new();
    let ctx = loaded_sample(&test).await;
    damage(&test);
    let (from, to, local) = all_time();
    let (_, expected) = reconcile::run_to_end(&ctx.db, None, None, &local)
        .await
        .unwrap();
    // The night's prefix holds the sample twice, plain and gzip: every event
    // is repeated in the second object, and each object spans two chunks.
    let s3 = ctx.s3.clone().unwrap();
    let bucket = format!("exports-{:08x}", rand::random::<u32>());
    let sample = std::fs::read(helpers::sample_path()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &sample).unwrap();
    crate::backfill::upload(&s3, &bucket, "night/1.jsonl", sample).await;
    crate::backfill::upload(&s3, &bucket, "night/2.jsonl.gz", gz.finish().unwrap()).await;
    let function = shared::handlers::ReconcileFunction {
        context: crate::backfill::reading_only_night_of(ctx, &bucket),
        source_template: None,
        default_repair: None,
        error_retention: Default::default(),
    };
    let payload = serde_json::json!({"detail": {"source": format!("s3://{bucket}/night/"), "from": from, "to": to}});
    let (last, stopped_in) = invoke_until_done(&function, payload).await;
    assert!(
        stopped_in
            .iter()
            .any(|n| n["pass"] == "export" && n["sourceIndex"] == 1),
        "stopped inside the second object: {stopped_in:?}"
    );
    assert_eq!(last.totals.compared, 5852 - 52);
    assert_eq!(
        reconcile::discrepancies(&function.context.db, last.run_id).unwrap(),
        expected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconcile_function_refuses_a_local_path_and_an_s3_path_outside_its_prefix() {
    let test = TestDb::new();
    let ctx = loaded_sample(&test).await;
    // A run the warehouse command started on a local file, left unfinished.
    let (_, _, local) = all_time();
    let started = reconcile::run(
        &ctx.db,
        None,
        None,
        reconcile::Start::New(&local),
        Some(std::time::Instant::now()),
    )
    .await
    .unwrap();
    assert!(!started.done);
    let runs = test.count("SELECT COUNT(*) FROM reconcile_run");
    let bucket = crate::backfill::sample_bucket(ctx.s3.as_ref().unwrap()).await;
    let function = shared::handlers::ReconcileFunction {
        context: crate::backfill::reading_only_night_of(ctx, &bucket),
        source_template: None,
        default_repair: None,
        error_retention: shared::handlers::ErrorRetention::default(),
    };
    let sample = helpers::sample_path().display().to_string();
    // Each names a readable export: only the scope refuses them.
    for (payload, why) in [
        (
            serde_json::json!({"detail": {"source": sample}}),
            "it is not an s3:// location",
        ),
        (
            serde_json::json!({"detail": {"source": format!("s3://{bucket}/other/")}}),
            "its key is outside the prefix",
        ),
        (
            serde_json::json!({"source": format!("s3://{bucket}/nightother/events.jsonl")}),
            "its key is outside the prefix",
        ),
        (
            serde_json::json!({"source": format!("s3://{bucket}/night/%2e%2e/other/")}),
            "percent sign",
        ),
        (
            serde_json::json!({"runId": started.run_id}),
            "it is not an s3:// location",
        ),
    ] {
        let error = function
            .handle(lambda_runtime::LambdaEvent::new(
                payload.clone(),
                lambda_runtime::Context::default(),
            ))
            .await
            .expect_err(&payload.to_string())
            .to_string();
        assert!(error.contains(why), "{payload}: {error}");
        assert!(
            error.contains(&format!("this function reads only s3://{bucket}/night/")),
            "{error}"
        );
    }
    // Refused before a run was recorded or the unfinished one read on.
    assert_eq!(test.count("SELECT COUNT(*) FROM reconcile_run"), runs);
    assert_eq!(
        reconcile::run(
            &function.context.db,
            None,
            None,
            reconcile::Start::Continue(started.run_id),
            None
        )
        .await
        .unwrap()
        .totals
        .compared,
        5852 - 52,
        "the unfinished run continues where it stood"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_repair_brings_the_next_run_to_zero_and_the_answers_back() {
    let test = TestDb::new();
    let ctx = loaded_sample(&test).await;
    let expected = helpers::sample_expected_with_live();
    let mut identities: Vec<(String, i64)> =
        test.rows("SELECT stream_id, version FROM event_ledger WHERE data_point IN ('polls', 'surveys', 'attendance')");
    identities.shuffle(&mut rand::rngs::StdRng::seed_from_u64(5));
    remove_events(&test, &identities[..40]);
    let (first, _) =
        reconcile::run_to_end(&ctx.db, None, Some(&ctx), &options(Some(Repair::Direct)))
            .await
            .unwrap();
    assert_eq!(first.totals.missing, 40);
    assert_eq!(first.repaired, 40);
    let (second, found) = reconcile::run_to_end(&ctx.db, None, None, &options(None))
        .await
        .unwrap();
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(
        second.totals.missing + second.totals.unexpected + second.totals.conflicting,
        0
    );
    for (tenant, presentation) in [
        ("acme", "prs-acm-0000"),
        ("acme", "prs-acm-0002"),
        ("globex", "prs-glo-0001"),
    ] {
        assert_eq!(
            report_json(&test, tenant, presentation),
            expected["reports"][presentation],
            "{presentation}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_repair_redrives_missing_events_to_their_queues() {
    let test = TestDb::new();
    let mut ctx = loaded_sample(&test).await;
    let sqs = ctx.sqs.clone().unwrap();
    let mut urls = std::collections::BTreeMap::new();
    for dp in shared::contract::DataPoint::ALL {
        urls.insert(dp, helpers::create_queue(&sqs, dp.as_str()).await);
    }
    ctx.queues = QueueUrls(urls.clone());
    let removed: Vec<(String, i64)> =
        test.rows("SELECT stream_id, version FROM event_ledger WHERE data_point = 'qna' ORDER BY version LIMIT 7");
    remove_events(&test, &removed);
    let (summary, _) =
        reconcile::run_to_end(&ctx.db, None, Some(&ctx), &options(Some(Repair::Queue)))
            .await
            .unwrap();
    assert_eq!(summary.totals.missing, 7);
    let on_queue = helpers::drain_queue(&sqs, &urls[&shared::contract::DataPoint::Qna]).await;
    let mut redriven: Vec<(String, i64)> = on_queue
        .iter()
        .map(|m| {
            let event = shared::contract::parse_event(m.body.as_deref().unwrap()).unwrap();
            (event.stream_id, event.version)
        })
        .collect();
    redriven.sort();
    let mut removed = removed;
    removed.sort();
    assert_eq!(redriven, removed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_are_valid_embedded_metric_format() {
    let test = TestDb::new();
    let ctx = loaded_sample(&test).await;
    let (summary, _) = reconcile::run_to_end(&ctx.db, None, None, &options(None))
        .await
        .unwrap();
    let documents = reconcile::emf_documents(&summary, 1_700_000_000_000);
    assert_eq!(documents.len(), 5 * 3 + 1);
    for document in &documents {
        let directive = &document["_aws"];
        assert!(directive["Timestamp"].is_i64());
        let metrics = directive["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(metrics.len(), 1);
        assert_eq!(metrics[0]["Namespace"], "Warehouse");
        for dimension_set in metrics[0]["Dimensions"].as_array().unwrap() {
            for dimension in dimension_set.as_array().unwrap() {
                assert!(
                    document[dimension.as_str().unwrap()].is_string(),
                    "dimension {dimension} has a value"
                );
            }
        }
        for metric in metrics[0]["Metrics"].as_array().unwrap() {
            let name = metric["Name"].as_str().unwrap();
            assert!(document[name].is_u64(), "metric {name} has a value");
            assert_eq!(metric["Unit"], "Count");
        }
    }
    let compared = documents.last().unwrap();
    assert_eq!(compared["EventsCompared"], summary.totals.compared);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_on_a_correct_load_and_names_the_field_that_differs() {
    let test = TestDb::new();
    let ctx = loaded_sample(&test).await;
    let source = helpers::sample_path().display().to_string();
    let report = shared::jobs::verify::verify(&ctx.db, None, &source, 10, 3)
        .await
        .unwrap();
    assert_eq!(
        report.checked.len(),
        3,
        "the sample has three presentations"
    );
    assert!(report.passed(), "{:?}", report.differences);
    test.conn()
        .query_drop(
            "UPDATE dim_presentation SET title = 'Tampered', revision = revision + 1 WHERE presentation_id = 'prs-glo-0001'",
        )
        .unwrap();
    test.conn()
        .query_drop(
            "UPDATE fact_session s JOIN dim_presentation p USING (presentation_key) SET s.device = 'tv', p.revision = p.revision + 1 \
             WHERE p.presentation_id = 'prs-acm-0000' AND s.device = 'desktop'",
        )
        .unwrap();
    let report = shared::jobs::verify::verify(&ctx.db, None, &source, 10, 3)
        .await
        .unwrap();
    assert!(!report.passed());
    assert_eq!(
        report.differences["prs-glo-0001"],
        vec!["title: warehouse \"Tampered\" ≠ replay \"Security Briefing\"".to_string()]
    );
    assert!(
        report.differences["prs-acm-0000"]
            .iter()
            .any(|d| d.starts_with("attendance.byDevice.desktop")),
        "{:?}",
        report.differences
    );
    assert!(!report.differences.contains_key("prs-acm-0002"));
}

#[test]
fn the_slice_is_deterministic_and_covers_sizes_and_tenants() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let test = TestDb::new();
    runtime.block_on(loaded_sample(&test));
    let first = shared::jobs::verify::choose_slice(&mut test.conn(), 2, 9).unwrap();
    assert_eq!(
        first,
        shared::jobs::verify::choose_slice(&mut test.conn(), 2, 9).unwrap()
    );
    assert_eq!(first.len(), 2);
    let all = shared::jobs::verify::choose_slice(&mut test.conn(), 10, 9).unwrap();
    let tenants: std::collections::BTreeSet<&str> = all.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tenants.len(), 2);
}

/// Two stream ids with the same CRC-32, by which the ledger's checksums are
/// grouped: each one's discrepancies are still found exactly, also when the
/// export has only one of the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_whose_crcs_collide_are_told_apart() {
    const A: &str = "prs-fswd4dyg3i";
    const B: &str = "prs-yc3ktahsjd";
    let test = TestDb::new();
    let crcs: Vec<(u32, u32)> = test.rows(&format!("SELECT CRC32('{A}'), CRC32('{B}')"));
    assert_eq!(crcs[0].0, crcs[0].1, "the two ids collide on the server");
    // One of the sample's presentations twice, under each id.
    let of_one: Vec<String> = std::fs::read_to_string(helpers::sample_path())
        .unwrap()
        .lines()
        .filter(|line| line.contains("\"prs-glo-0001\""))
        .map(str::to_string)
        .collect();
    let renamed = |id: &str| -> Vec<String> {
        of_one
            .iter()
            .map(|line| line.replace("\"prs-glo-0001\"", &format!("\"{id}\"")))
            .collect()
    };
    let both = helpers::TempExport::new(
        "collide-both",
        &[renamed(A), renamed(B)].concat().join("\n"),
    );
    let only_a = helpers::TempExport::new("collide-a", &renamed(A).join("\n"));
    let ctx = loaded(&test, &both.source()).await;
    let mut b_events: Vec<(String, i64)> = renamed(B)
        .iter()
        .filter_map(|line| shared::contract::parse_event(line).ok())
        .filter(|event| event.data_point().is_some())
        .map(|event| (event.stream_id, event.version))
        .collect();
    b_events.sort();
    b_events.dedup();
    assert!(b_events.len() > 100, "{}", b_events.len());
    let found = |export: &helpers::TempExport| {
        let options = ReconcileOptions {
            source: export.source(),
            ..options(None)
        };
        let db = ctx.db.clone();
        async move {
            let (_, found) = reconcile::run_to_end(&db, None, None, &options)
                .await
                .unwrap();
            let mut found: Vec<(Kind, String, i64)> = found
                .into_iter()
                .map(|d| (d.kind, d.stream_id, d.version))
                .collect();
            found.sort_by(|a, b| (&a.1, a.2).cmp(&(&b.1, b.2)));
            found
        }
    };

    // Nothing differs.
    assert_eq!(found(&both).await, vec![]);
    // The export without B: every event of B is unexpected, nothing else.
    let expected: Vec<(Kind, String, i64)> = b_events
        .iter()
        .map(|(stream, version)| (Kind::Unexpected, stream.clone(), *version))
        .collect();
    assert_eq!(found(&only_a).await, expected);
    // One event of B gone from the warehouse: exactly it is missing.
    let gone = b_events[b_events.len() / 2].clone();
    remove_events(&test, std::slice::from_ref(&gone));
    assert_eq!(found(&both).await, vec![(Kind::Missing, gone.0, gone.1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenants_copy_of_a_stream_is_reconciled_and_repaired_as_its_own() {
    // The poison export without the events each stream has under the
    // other tenant (same stream ids, versions its own tenant also uses).
    let poison = std::fs::read_to_string(helpers::poison_path()).unwrap();
    let foreign = |line: &str| {
        shared::contract::parse_event(line).is_ok_and(|e| {
            e.data_point().is_some()
                && ((e.stream_id.starts_with("prs-acm") && e.tenant_id == "globex")
                    || (e.stream_id.starts_with("prs-glo") && e.tenant_id == "acme"))
        })
    };
    let foreign_events: std::collections::HashSet<_> = poison
        .lines()
        .filter(|l| foreign(l))
        .map(|l| {
            let e = shared::contract::parse_event(l).unwrap();
            (e.tenant_id, e.stream_id, e.version)
        })
        .collect();
    assert!(foreign_events.len() >= 2, "the export has such events");
    let partial: String = poison
        .lines()
        .filter(|l| !foreign(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let partial = helpers::TempExport::new("own-tenant-only", &partial);
    let test = TestDb::new();
    let ctx = loaded(&test, &partial.source()).await;
    let whole = ReconcileOptions {
        source: helpers::poison_path().display().to_string(),
        ..options(Some(Repair::Direct))
    };
    let (first, found) = reconcile::run_to_end(&ctx.db, None, Some(&ctx), &whole)
        .await
        .unwrap();
    let missing: std::collections::HashSet<_> = found
        .iter()
        .map(|d| (d.tenant_id.clone(), d.stream_id.clone(), d.version))
        .collect();
    assert_eq!(missing, foreign_events, "exactly the other tenant's copies");
    assert_eq!((first.totals.unexpected, first.totals.conflicting), (0, 0));
    assert_eq!(first.repaired, foreign_events.len() as u64);
    let (second, found) = reconcile::run_to_end(
        &ctx.db,
        None,
        None,
        &ReconcileOptions {
            repair: None,
            ..whole
        },
    )
    .await
    .unwrap();
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(second.totals.compared, first.totals.compared);
    integration_tests::harness::assert_answers_of(&mut test.conn(), &helpers::poison_expected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_reconciliation_refreshes_every_stale_summary() {
    let stale = "SELECT COUNT(*) FROM dim_presentation p \
                 LEFT JOIN agg_presentation a USING (presentation_key) \
                 WHERE a.presentation_key IS NULL OR a.source_revision < p.revision";
    let test = TestDb::new();
    let ctx = loaded_sample(&test).await;
    // The direct backfill swept its own; summaries lost as a loader's failed
    // refresh would leave them.
    assert_eq!(test.count(stale), 0);
    test.conn()
        .query_drop("DELETE FROM agg_presentation")
        .unwrap();
    assert!(test.count(stale) > 0);
    let (from, to, window) = all_time();
    let function = shared::handlers::ReconcileFunction {
        context: ctx,
        source_template: None,
        default_repair: None,
        error_retention: shared::handlers::ErrorRetention::default(),
    };
    let mut context = lambda_runtime::Context::default();
    context.deadline = (std::time::SystemTime::now() + std::time::Duration::from_secs(300))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let payload = serde_json::json!({"detail": {"source": window.source, "from": from, "to": to}});
    let summary = function
        .handle(lambda_runtime::LambdaEvent::new(payload, context))
        .await
        .unwrap();
    assert!(summary.done);
    assert_eq!(test.count(stale), 0, "the nightly sweep refreshed them");
}
