//! A viewer's erasure (ANALYTICS.md §8, issue 17) against the real MariaDB
//! and moto: `forget` amid a shuffled load of the sample, then the export
//! loaded again and repaired; forget racing a loader; the enqueue and queue
//! repair paths; the API's DELETE; the retention of kept bodies; and the
//! schema's columns, every one placed as erasable or not.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::encodings::Body;
use mysql::prelude::Queryable;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use shared::contract::{mentioned_viewers, parse_event, DataPoint, ErasureReceipt};
use shared::handlers::{AnalyticsApi, ErrorRetention, ReconcileFunction, SqsLoader};
use shared::jobs::backfill::{self, BackfillOptions, Filters, Mode};
use shared::jobs::reconcile::{self, ReconcileOptions, Repair};
use shared::jobs::JobContext;
use shared::redrive::QueueUrls;
use shared::store::Database;

use crate::helpers::{self, TempExport, TestDb};
use crate::loaders::{columns_holding, sample_lines, Loaders};
use integration_tests::harness::{assert_answers_of, lambda_event};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn expected_erasure() -> Value {
    let path = helpers::sample_path().with_file_name("expected-erasure.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `expected-erasure.json`'s `forgotten`, as (tenant, viewer).
fn forgotten(expected: &Value) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for (tenant, viewers) in expected["forgotten"].as_object().unwrap() {
        for viewer in viewers.as_array().unwrap() {
            all.push((tenant.clone(), viewer.as_str().unwrap().to_string()));
        }
    }
    all
}

fn forget(db: &Database, tenant: &str, viewer: &str) -> ErasureReceipt {
    tokio::task::block_in_place(|| {
        shared::write::forget(
            db,
            tenant,
            viewer,
            shared::store::now_ms(),
            Instant::now() + Duration::from_secs(60),
        )
        .unwrap()
    })
}

async fn context(test: &TestDb, queues: QueueUrls) -> JobContext {
    let aws = helpers::aws_config().await;
    JobContext {
        db: Arc::new(Database::connect(test.settings(), 4).await.unwrap()),
        s3: Some(shared::store::s3_client(&aws)),
        sqs: Some(aws_sdk_sqs::Client::new(&aws)),
        queues,
        exports: shared::export::ExportScope::Anywhere,
        batch_lines: 500,
        batch_bytes: backfill::DEFAULT_BATCH_BYTES,
        on_progress: None,
        before_lane_commit: None,
    }
}

fn backfill_options(source: &str, mode: Mode) -> BackfillOptions {
    BackfillOptions {
        source: source.to_string(),
        mode,
        filters: Filters::default(),
        dry_run: false,
        lanes: backfill::DEFAULT_LANES,
    }
}

fn reconcile_options(source: &str, repair: Repair) -> ReconcileOptions {
    ReconcileOptions {
        source: source.to_string(),
        from_ms: None,
        to_ms: None,
        repair: Some(repair),
    }
}

/// Removes a presentation from the warehouse as if none of its events had
/// ever arrived: every row keyed by it, and its ledger rows.
fn remove_presentation(test: &TestDb, tenant: &str, stream: &str) {
    let mut conn = test.conn();
    let key: u64 = conn
        .exec_first(
            "SELECT presentation_key FROM dim_presentation WHERE tenant_id = ? AND presentation_id = ?",
            (tenant, stream),
        )
        .unwrap()
        .expect("a loaded presentation");
    let tables: Vec<String> = test.rows(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = DATABASE() AND column_name = 'presentation_key'",
    );
    for table in tables {
        conn.query_drop(format!(
            "DELETE FROM `{table}` WHERE presentation_key = {key}"
        ))
        .unwrap();
    }
    conn.exec_drop(
        "DELETE FROM event_ledger WHERE tenant_id = ? AND stream_id = ?",
        (tenant, stream),
    )
    .unwrap();
}

/// The names and emails each viewer's `ViewerJoined` events carry in `lines`.
fn profiles(lines: &[String]) -> BTreeMap<(String, String), (BTreeSet<String>, BTreeSet<String>)> {
    let mut found: BTreeMap<(String, String), (BTreeSet<String>, BTreeSet<String>)> =
        BTreeMap::new();
    for line in lines {
        let Ok(document) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let (Some(tenant), Some(viewer)) = (
            document["tenantId"].as_str(),
            document["data"]["viewerId"].as_str(),
        ) else {
            continue;
        };
        let entry = found
            .entry((tenant.to_string(), viewer.to_string()))
            .or_default();
        if let Some(name) = document["data"]["profile"]["name"].as_str() {
            entry.0.insert(name.to_string());
        }
        if let Some(email) = document["data"]["profile"]["email"].as_str() {
            entry.1.insert(email.to_string());
        }
    }
    found
}

/// Fails unless no column of the test database holds an erased viewer's
/// email, their name as theirs, or their tie to a question they asked.
/// Names are not unique (the sample's `Ana` is two people), so a name may
/// remain where it is provably someone else's: another viewer's profile,
/// or a kept body about another viewer.
fn assert_nothing_left_of(test: &TestDb, erased: &[(String, String)], lines: &[String]) {
    let profiles = profiles(lines);
    let is_erased = |tenant: Option<&str>, viewer: &str| {
        erased
            .iter()
            .any(|(t, v)| v == viewer && tenant.is_none_or(|tenant| tenant == t))
    };
    for (tenant, viewer) in erased {
        let Some((names, emails)) = profiles.get(&(tenant.clone(), viewer.clone())) else {
            continue;
        };
        for email in emails {
            for spelled in spellings(email) {
                assert_eq!(
                    columns_holding_bytes(test, &spelled),
                    Vec::<String>::new(),
                    "{tenant}/{viewer}'s email {email} is still held, as {spelled}"
                );
            }
        }
        // A kept body may spell a name with JSON escapes ("\u0141ukasz").
        for name in names {
            for spelled in spellings(name).into_iter().skip(1) {
                let bodies: Vec<Vec<u8>> = test
                    .conn()
                    .exec(
                        "SELECT raw_body FROM error_event WHERE INSTR(raw_body, ?) > 0",
                        (&spelled,),
                    )
                    .unwrap();
                for body in bodies {
                    let mentions = mentioned_viewers(&body);
                    assert!(
                        !mentions
                            .viewers
                            .iter()
                            .any(|v| is_erased(mentions.tenant.as_deref(), v)),
                        "a kept body holds {spelled} with an erased viewer: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
            }
        }
        for name in names {
            for column in columns_holding(test, name) {
                match column.as_str() {
                    "fact_presentation_viewer.name" => {
                        let theirs: i64 = test.conn().exec_first(
                            "SELECT COUNT(*) FROM fact_presentation_viewer f JOIN dim_viewer v USING (viewer_key) \
                             WHERE f.name = ? AND v.tenant_id = ? AND v.viewer_id = ?",
                            (name, tenant, viewer),
                        ).unwrap().unwrap();
                        assert_eq!(theirs, 0, "{tenant}/{viewer}'s name {name} is still theirs");
                    }
                    "error_event.raw_body" => {
                        let bodies: Vec<Vec<u8>> = test
                            .conn()
                            .exec(
                                "SELECT raw_body FROM error_event WHERE INSTR(raw_body, ?) > 0",
                                (name,),
                            )
                            .unwrap();
                        for body in bodies {
                            let mentions = mentioned_viewers(&body);
                            assert!(
                                !mentions
                                    .viewers
                                    .iter()
                                    .any(|v| is_erased(mentions.tenant.as_deref(), v)),
                                "a kept body holds {name} with an erased viewer: {}",
                                String::from_utf8_lossy(&body)
                            );
                        }
                    }
                    other => {
                        // Only inside a longer word ("Ana" in "notAnalytics").
                        let (table, column) = other.split_once('.').unwrap();
                        let values: Vec<Vec<u8>> = test.conn().exec(
                            format!("SELECT CAST(`{column}` AS BINARY) FROM `{table}` WHERE INSTR(CAST(`{column}` AS BINARY), ?) > 0"),
                            (name,),
                        ).unwrap();
                        for value in values {
                            let text = String::from_utf8_lossy(&value);
                            assert!(
                                !holds_word(&text, name),
                                "{other} holds {tenant}/{viewer}'s name {name}: {text}"
                            );
                        }
                    }
                }
            }
        }
        // No question tied to them, in the questions or in a kept body.
        let tied: i64 = test
            .conn()
            .exec_first(
                "SELECT COUNT(*) FROM dim_question q JOIN dim_viewer v ON v.viewer_key = q.asker_viewer_key \
                 WHERE v.tenant_id = ? AND v.viewer_id = ?",
                (tenant, viewer),
            )
            .unwrap()
            .unwrap();
        assert_eq!(tied, 0, "{tenant}/{viewer} still asked a question");
        let bodies: Vec<Vec<u8>> = test.rows("SELECT raw_body FROM error_event");
        for body in bodies {
            let Ok(document) = serde_json::from_slice::<Value>(&body) else {
                continue;
            };
            let asked = document["data"]["questionId"].is_string()
                && document["tenantId"].as_str() == Some(tenant)
                && document["data"]["viewerId"].as_str() == Some(viewer);
            assert!(
                !asked,
                "a kept body ties {tenant}/{viewer} to a question: {document}"
            );
        }
    }
    // Nor a cached report showing them as an asker.
    let cached: Vec<String> =
        test.rows("SELECT report FROM agg_presentation_report WHERE report <> ''");
    for report in cached {
        let report: Value = serde_json::from_str(&report).unwrap();
        for question in report["qna"]["top"].as_array().unwrap() {
            if let Some(by) = question["askedBy"].as_str() {
                assert!(
                    !is_erased(report["tenantId"].as_str(), by),
                    "a cached report shows {by} asking"
                );
            }
        }
    }
}

/// Every text column holding `needle`, as `loaders::columns_holding`, with
/// the needle passed as a parameter (a backslash in it stays one).
fn columns_holding_bytes(test: &TestDb, needle: &str) -> Vec<String> {
    let columns: Vec<(String, String)> = test.rows(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = DATABASE() \
         AND data_type IN ('char', 'varchar', 'text', 'mediumtext', 'longtext', 'binary', 'varbinary', 'blob', 'mediumblob', 'longblob')",
    );
    columns
        .into_iter()
        .filter(|(table, column)| {
            let found: Option<i64> = test
                .conn()
                .exec_first(
                    format!("SELECT COUNT(*) FROM `{table}` WHERE INSTR(CAST(`{column}` AS BINARY), CAST(? AS BINARY)) > 0"),
                    (needle,),
                )
                .unwrap();
            found.unwrap_or(0) > 0
        })
        .map(|(table, column)| format!("{table}.{column}"))
        .collect()
}

/// A text as stored, and as JSON may spell it with every character beyond
/// ASCII escaped (`\u0141`, in either case), when that differs.
fn spellings(text: &str) -> Vec<String> {
    let mut all = vec![text.to_string()];
    if !text.is_ascii() {
        for upper in [false, true] {
            let mut escaped = String::new();
            for unit in text.encode_utf16() {
                match char::from_u32(u32::from(unit)).filter(char::is_ascii) {
                    Some(c) => escaped.push(c),
                    None if upper => escaped.push_str(&format!("\\u{unit:04X}")),
                    None => escaped.push_str(&format!("\\u{unit:04x}")),
                }
            }
            all.push(escaped);
        }
    }
    all
}

/// Whether `text` holds `word` other than inside a longer word.
fn holds_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// Sample lines with a new `data` (and version) for extra copies.
fn with(line: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut document: Value = serde_json::from_str(line).unwrap();
    change(&mut document);
    document.to_string()
}

/// Lines beyond the sample that carry the erased viewers: conflicting and
/// malformed copies of their events, and garbage. None changes an answer
/// of `expected-erasure.json`, whichever copy of an identity comes first:
/// they differ only in what the erasure takes out.
fn erased_viewers_extra_lines(sample: &[String]) -> Vec<String> {
    let find = |stream: &str, version: i64| -> String {
        sample
            .iter()
            .find(|l| parse_event(l).is_ok_and(|e| e.stream_id == stream && e.version == version))
            .unwrap_or_else(|| panic!("{stream} v{version} in the sample"))
            .clone()
    };
    let wei = find("prs-acm-0000", 495); // u-10 joins, "Wei"
    let asked = find("prs-acm-0000", 29); // u-23 asks qa-8, not anonymous
    let priya = find("prs-glo-0001", 493); // u-122 joins, "Priya"
    let lukasz = find("prs-acm-0002", 309); // u-10 joins, "\u0141ukasz", escaped
    assert!(lukasz.contains("\\u0141ukasz"));
    vec![
        // Conflicting: another spelling of the name and email.
        with(&wei, |d| {
            d["data"]["profile"]["name"] = json!("Wei Wang");
            d["data"]["profile"]["email"] = json!("wei.wang.u-10@acme.example");
        }),
        // Malformed: a version that is no number.
        with(&wei, |d| d["version"] = json!("x")),
        // Conflicting: the same question, anonymous (both read the same once
        // u-23 is forgotten, whichever is first).
        with(&asked, |d| d["data"]["anonymous"] = json!(true)),
        // Not JSON: cut short.
        priya[..priya.len() - 40].to_string(),
        // Malformed, its name and email spelled with JSON escapes.
        lukasz.replace("\"version\": 309", "\"version\": \"x\""),
    ]
}

// ---------------------------------------------------------------------------
// The sample, forgotten half-way
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_forgotten_half_way_then_reloaded_and_repaired_gives_the_erasure_answers_and_keeps_nothing_of_them(
) {
    let expected = expected_erasure();
    let erased = forgotten(&expected);
    let sample = sample_lines();
    let extra = erased_viewers_extra_lines(&sample);
    let mut lines: Vec<String> = sample.iter().chain(extra.iter()).cloned().collect();
    let export = TempExport::new("erasure", &lines.join("\n"));
    lines.shuffle(&mut StdRng::seed_from_u64(17));

    let test = TestDb::new();
    let loaders = Loaders::new(&test).await;
    let ctx = context(&test, QueueUrls::default()).await;
    let (first, second) = lines.split_at(lines.len() / 2);
    assert!(loaders.deliver(first, 10).await.is_empty());
    helpers::drain_queue(&loaders.sqs, &loaders.dlq_url).await;

    // Forget them half-way: three were seen by now, one never will be.
    let mut receipts = Vec::new();
    for (tenant, viewer) in &erased {
        let receipt = forget(&ctx.db, tenant, viewer);
        assert_eq!((&receipt.tenant_id, &receipt.viewer_id), (tenant, viewer));
        receipts.push(receipt);
    }
    let known: BTreeMap<(String, String), bool> = erased
        .iter()
        .cloned()
        .zip(receipts.iter().map(|r| r.known))
        .collect();
    assert!(known[&("acme".to_string(), "u-10".to_string())]);
    assert!(known[&("acme".to_string(), "u-23".to_string())]);
    assert!(!known[&("acme".to_string(), "u-999".to_string())]);
    // globex's u-7 never appears (acme's u-7 is someone else).
    assert!(!known[&("globex".to_string(), "u-7".to_string())]);

    assert!(loaders.deliver(second, 10).await.is_empty());
    // What the loaders dead-lettered after the erasure holds nothing of them.
    for message in helpers::drain_queue(&loaders.sqs, &loaders.dlq_url).await {
        let body = message.body.unwrap_or_default();
        for (_, (_, emails)) in profiles(&extra).iter().filter(|(k, _)| erased.contains(k)) {
            for email in emails {
                assert!(
                    !body.contains(email.as_str()),
                    "a dead letter holds {email}: {body}"
                );
            }
        }
    }

    // The whole export again, then a presentation lost and repaired.
    let summary = backfill::run(
        &ctx,
        &backfill_options(&export.source(), Mode::Direct),
        None,
        None,
    )
    .await
    .unwrap();
    assert!(summary.done);
    assert!(summary.counters.conflicts >= 2, "{summary:?}");
    remove_presentation(&test, "acme", "prs-acm-0000");
    let (repair, _) = reconcile::run_to_end(
        &ctx.db,
        None,
        Some(&ctx),
        &reconcile_options(&export.source(), Repair::Direct),
    )
    .await
    .unwrap();
    assert!(repair.repaired > 500, "{repair:?}");

    assert_answers_of(&mut test.conn(), &expected);
    // The release check replays the export forgetting what the warehouse forgot.
    let verified = shared::jobs::verify::verify(&ctx.db, None, &export.source(), 10, 1)
        .await
        .unwrap();
    assert!(verified.passed(), "{:?}", verified.differences);

    // The bodies kept are there, scrubbed; nothing else holds them.
    assert!(test.count("SELECT COUNT(*) FROM error_event WHERE kind = 'conflict'") >= 2);
    // The sample's 8 malformed lines and 3 of the extra ones, as the loaders
    // and the backfill kept them.
    assert_eq!(
        test.count(
            "SELECT COUNT(*) FROM error_event WHERE kind = 'malformed' AND source LIKE 'load-%'"
        ),
        11
    );
    assert_eq!(
        test.count("SELECT COUNT(*) FROM error_event WHERE kind = 'malformed' AND source LIKE 'backfill:%'"),
        11
    );
    assert_nothing_left_of(&test, &erased, &lines);

    // Forgetting again: the same time; known now for all the sample holds.
    for ((tenant, viewer), receipt) in erased.iter().zip(&receipts) {
        let again = forget(&ctx.db, tenant, viewer);
        assert_eq!(again.erased_at, receipt.erased_at);
        let seen = !(viewer == "u-999" || (tenant == "globex" && viewer == "u-7"));
        assert_eq!(again.known, seen, "{tenant}/{viewer}");
    }
    assert_answers_of(&mut test.conn(), &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_holding_only_the_email_is_found_by_the_email_the_warehouse_knew() {
    let test = TestDb::new();
    let loaders = Loaders::new(&test).await;
    let sample = sample_lines();
    let joined = sample
        .iter()
        .find(|l| parse_event(l).is_ok_and(|e| e.stream_id == "prs-glo-0001" && e.version == 493))
        .unwrap()
        .clone();
    // No viewerId: malformed, and nothing but the email says whose it is.
    let anonymous_profile = with(&joined, |d| {
        d["data"].as_object_mut().unwrap().remove("viewerId");
        d["data"]["note"] = json!("write to priya.u-122@globex.example");
    });
    assert!(loaders
        .deliver(&[joined, anonymous_profile], 10)
        .await
        .is_empty());
    assert_eq!(
        columns_holding(&test, "priya.u-122@globex.example").len(),
        2
    );
    let receipt = forget(
        &Database::connect(test.settings(), 1).await.unwrap(),
        "globex",
        "u-122",
    );
    assert!(receipt.known);
    assert_eq!(
        columns_holding(&test, "priya.u-122@globex.example"),
        Vec::<String>::new()
    );
    // Priya is also u-83's name: what is left of "Priya" is not theirs.
    assert_eq!(
        test.count("SELECT COUNT(*) FROM error_event WHERE INSTR(raw_body, 'Priya') > 0"),
        0
    );
}

// ---------------------------------------------------------------------------
// Forget racing a loader
// ---------------------------------------------------------------------------

fn event_json(stream: &str, version: i64, kind: &str, data: Value) -> String {
    json!({
        "_id": {"$oid": "6140a1e5c2a4b3d2e1f0a9b8"},
        "streamId": stream, "version": version, "type": kind,
        "occurredAt": {"$date": format!("2021-09-10T12:{:02}:00.000Z", version % 60)},
        "tenantId": "race", "data": data
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_racing_a_loader_of_the_same_viewer_leaves_nothing_of_them_whatever_the_interleaving(
) {
    const ROUNDS: usize = 40;
    let test = TestDb::new();
    let db = Arc::new(Database::connect(test.settings(), 4).await.unwrap());
    let aws = helpers::aws_config().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let dlq = helpers::create_queue(&sqs, "race-dlq").await;
    // Each batch stays written but uncommitted for a random while, so that
    // the erasure often arrives in the middle of a load.
    let hold: Arc<shared::write::CommitHook> = Arc::new(|_items: &[shared::write::Item]| {
        std::thread::sleep(Duration::from_millis(rand::rng().random_range(0..15)));
    });
    let loader = |dp: DataPoint| {
        Arc::new(
            SqsLoader::new(
                dp,
                format!("load-{dp}"),
                db.clone(),
                sqs.clone(),
                dlq.clone(),
            )
            .with_fault_before_commit(hold.clone()),
        )
    };
    let (attendance, qna) = (loader(DataPoint::Attendance), loader(DataPoint::Qna));
    let mut rng = StdRng::seed_from_u64(2021);
    let mut orders = BTreeMap::new();
    // Past ROUNDS, while one order of finishing has not happened yet (a slow
    // machine can make one side always the later), the other side gets a
    // growing head start, so that both orders are exercised.
    for round in 0..3 * ROUNDS {
        if round >= ROUNDS && orders.len() == 2 {
            break;
        }
        let head_start = (round + 1).saturating_sub(ROUNDS) as u64 * 15;
        let viewer = format!("u-race-{round}");
        let profile = |n: usize| json!({"name": format!("RaceName{round}x{n}"), "email": format!("race{round}x{n}@race.example"), "department": "Sales"});
        let stream = format!("p-race-{}", round % 4);
        let base = (round as i64) * 100;
        let joined = |version: i64, session: &str, n: usize| {
            event_json(
                &stream,
                version,
                "ViewerJoined",
                json!({"viewerId": viewer, "sessionId": session, "profile": profile(n), "device": "desktop"}),
            )
        };
        let mut attendance_bodies = [
            joined(base + 1, &format!("s-{round}-a"), 1),
            joined(base + 2, &format!("s-{round}-b"), 2),
            // A conflicting copy and a malformed one, each with a profile.
            joined(base + 1, &format!("s-{round}-a"), 3),
            joined(base + 3, &format!("s-{round}-c"), 4)
                .replace(&format!("\"version\":{}", base + 3), "\"version\":\"x\""),
        ];
        attendance_bodies.shuffle(&mut rng);
        let qna_bodies = vec![event_json(
            &stream,
            base + 4,
            "QuestionAsked",
            json!({"questionId": format!("q-{round}"), "viewerId": viewer, "text": "Why?", "anonymous": false}),
        )];
        let split = rng.random_range(0..=attendance_bodies.len());
        let (mut load_delay, mut forget_delay) =
            (rng.random_range(0..20u64), rng.random_range(0..40u64));
        if head_start > 0 {
            // `true` counts the rounds whose load finished first.
            if orders.contains_key(&true) {
                (forget_delay, load_delay) = (0, 20 + head_start);
            } else {
                (load_delay, forget_delay) = (0, 40 + head_start);
            }
        }
        let loading = {
            let (attendance, qna) = (attendance.clone(), qna.clone());
            let (first, rest) = attendance_bodies.split_at(split);
            let (first, rest): (Vec<String>, Vec<String>) = (first.to_vec(), rest.to_vec());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(load_delay)).await;
                let mut failures = 0;
                for (loader, bodies) in [
                    (&attendance, &first),
                    (&qna, &qna_bodies),
                    (&attendance, &rest),
                ] {
                    if bodies.is_empty() {
                        continue;
                    }
                    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
                    let response = loader.handle(lambda_event(&refs)).await.unwrap();
                    failures += response.batch_item_failures.len();
                }
                (failures, Instant::now())
            })
        };
        let forgetting = {
            let db = db.clone();
            let viewer = viewer.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(forget_delay)).await;
                let receipt = tokio::task::spawn_blocking(move || {
                    shared::write::forget(
                        &db,
                        "race",
                        &viewer,
                        shared::store::now_ms(),
                        Instant::now() + Duration::from_secs(30),
                    )
                })
                .await
                .unwrap()
                .unwrap();
                (receipt, Instant::now())
            })
        };
        let ((failures, loaded_at), (receipt, forgot_at)) =
            (loading.await.unwrap(), forgetting.await.unwrap());
        assert_eq!(failures, 0, "round {round}");
        assert_eq!(receipt.viewer_id, viewer);
        *orders.entry(loaded_at < forgot_at).or_insert(0) += 1;
        // Their rows are there (sessions, the question), their values not.
        let mut conn = test.conn();
        let (sessions, names, askers): (i64, i64, i64) = conn
            .exec_first(
                "SELECT (SELECT COUNT(*) FROM fact_session s WHERE s.viewer_key = v.viewer_key), \
                        (SELECT COUNT(*) FROM fact_presentation_viewer f WHERE f.viewer_key = v.viewer_key AND (f.name IS NOT NULL OR f.email IS NOT NULL)), \
                        (SELECT COUNT(*) FROM dim_question q WHERE q.asker_viewer_key = v.viewer_key) \
                 FROM dim_viewer v WHERE v.tenant_id = 'race' AND v.viewer_id = ?",
                (&viewer,),
            )
            .unwrap()
            .unwrap();
        assert_eq!((sessions, names, askers), (2, 0, 0), "round {round}");
        assert_eq!(
            test.count(&format!("SELECT COUNT(*) FROM dim_question WHERE question_id = 'q-{round}' AND asked_version IS NOT NULL")),
            1
        );
    }
    assert_eq!(columns_holding(&test, "RaceName"), Vec::<String>::new());
    assert_eq!(
        columns_holding(&test, "@race.example"),
        Vec::<String>::new()
    );
    assert!(
        test.count("SELECT COUNT(*) FROM error_event WHERE kind = 'malformed'") >= ROUNDS as i64
    );
    // Both orders of finishing happened: the race was a race.
    assert_eq!(orders.len(), 2, "{orders:?}");
}

// ---------------------------------------------------------------------------
// The enqueue and queue-repair paths
// ---------------------------------------------------------------------------

/// Every message on the queues, delivered to the loaders (as the event
/// source mappings would).
async fn deliver_queued(loaders: &Loaders, urls: &BTreeMap<DataPoint, String>) -> usize {
    let mut delivered = 0;
    for url in urls.values() {
        let bodies: Vec<String> = helpers::drain_queue(&loaders.sqs, url)
            .await
            .into_iter()
            .filter_map(|m| m.body)
            .collect();
        delivered += bodies.len();
        assert!(loaders.deliver(&bodies, 10).await.is_empty());
    }
    delivered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_enqueued_by_a_backfill_or_a_queue_repair_after_forget_bring_nothing_back() {
    // acme's prs-acm-0000 lines about u-10 and u-23 (their joins, questions
    // and heartbeats), and a malformed copy: small, as moto's queues are slow.
    let sample = sample_lines();
    let theirs: Vec<String> = sample
        .iter()
        .filter(|l| {
            parse_event(l).is_ok_and(|e| {
                e.tenant_id == "acme"
                    && e.stream_id == "prs-acm-0000"
                    && matches!(e.viewer(), Some("u-10" | "u-23"))
            })
        })
        .cloned()
        .collect();
    assert!(theirs.len() > 20, "{}", theirs.len());
    let distinct: BTreeSet<(String, i64)> = theirs
        .iter()
        .map(|l| parse_event(l).map(|e| (e.stream_id, e.version)).unwrap())
        .collect();
    let mut lines = theirs.clone();
    lines.push(erased_viewers_extra_lines(&sample)[1].clone());
    let export = TempExport::new("erasure-enqueue", &lines.join("\n"));

    let test = TestDb::new();
    let loaders = Loaders::new(&test).await;
    let mut urls = BTreeMap::new();
    for dp in DataPoint::ALL {
        urls.insert(dp, helpers::create_queue(&loaders.sqs, dp.as_str()).await);
    }
    let ctx = context(&test, QueueUrls(urls.clone())).await;
    // Forgotten before anything of them arrived.
    for viewer in ["u-10", "u-23"] {
        assert!(!forget(&ctx.db, "acme", viewer).known);
    }
    let summary = backfill::run(
        &ctx,
        &backfill_options(&export.source(), Mode::Enqueue),
        None,
        None,
    )
    .await
    .unwrap();
    assert!(summary.done);
    assert!(deliver_queued(&loaders, &urls).await >= theirs.len());
    let erased = vec![
        ("acme".to_string(), "u-10".to_string()),
        ("acme".to_string(), "u-23".to_string()),
    ];
    assert!(test.count("SELECT COUNT(*) FROM fact_presentation_viewer") >= 2);
    assert!(test.count("SELECT COUNT(*) FROM dim_question WHERE asked_version IS NOT NULL") >= 3);
    assert_eq!(
        test.count("SELECT COUNT(*) FROM error_event WHERE kind = 'malformed'"),
        1
    );
    assert_nothing_left_of(&test, &erased, &lines);

    // Lost, found missing and re-driven through the queues.
    remove_presentation(&test, "acme", "prs-acm-0000");
    let (repair, _) = reconcile::run_to_end(
        &ctx.db,
        None,
        Some(&ctx),
        &reconcile_options(&export.source(), Repair::Queue),
    )
    .await
    .unwrap();
    assert_eq!(repair.repaired as usize, distinct.len());
    assert_eq!(deliver_queued(&loaders, &urls).await, distinct.len());
    assert!(test.count("SELECT COUNT(*) FROM fact_presentation_viewer") >= 2);
    assert_nothing_left_of(&test, &erased, &lines);
    // The rows are back, with the viewers' sessions, nameless.
    let rows = integration_tests::harness::all_viewers(&mut test.conn(), "acme", "prs-acm-0000");
    let row = rows
        .iter()
        .find(|r| r.viewer_id == "u-10")
        .expect("u-10's row");
    assert_eq!((row.name.as_deref(), row.email.as_deref()), (None, None));
    assert!(row.sessions > 0);
}

// ---------------------------------------------------------------------------
// The API
// ---------------------------------------------------------------------------

fn delete_request(
    path: &str,
    claims: Value,
) -> lambda_runtime::LambdaEvent<aws_lambda_events::event::apigw::ApiGatewayV2httpRequest> {
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abcdef1234",
            "authorizer": {"jwt": {"claims": claims, "scopes": null}},
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "http": {"method": "DELETE", "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.10", "userAgent": "integration-tests"},
            "requestId": "r-forget",
            "routeKey": "$default",
            "stage": "$default",
            "time": "10/Sep/2021:12:45:01 +0000",
            "timeEpoch": 1_631_277_901_123i64
        },
        "isBase64Encoded": false
    });
    lambda_runtime::LambdaEvent::new(
        serde_json::from_value(event).unwrap(),
        lambda_runtime::Context::default(),
    )
}

async fn call(api: &AnalyticsApi, path: &str, claims: Value) -> (i64, Value) {
    let response = api.handle(delete_request(path, claims)).await.unwrap();
    let Some(Body::Text(text)) = response.body else {
        panic!("a text body")
    };
    (response.status_code, serde_json::from_str(&text).unwrap())
}

fn erasures(test: &TestDb) -> Vec<(String, String)> {
    test.rows("SELECT tenant_id, viewer_id FROM viewer_erasure ORDER BY tenant_id, viewer_id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_api_only_an_admin_of_the_tenant_erases() {
    let test = TestDb::new();
    let loaders = Loaders::new(&test).await;
    assert!(loaders.deliver(&sample_lines(), 50).await.is_empty());
    let db = Arc::new(Database::connect(test.settings(), 1).await.unwrap());
    let at = 1_700_000_000_000i64;
    let api = AnalyticsApi::new(db).with_clock(Arc::new(move || at));
    let claims = |tenant: &str, role: Option<&str>| {
        let mut claims = json!({"sub": "user-42", "tenantId": tenant});
        if let Some(role) = role {
            claims["role"] = json!(role);
        }
        claims
    };

    // A tenant's user who is not an admin: 403, nothing erased.
    for role in [None, Some("viewer"), Some("ADMIN")] {
        let (status, body) = call(&api, "/tenants/acme/viewers/u-10", claims("acme", role)).await;
        assert_eq!(status, 403, "{body}");
    }
    // Another tenant's admin: 403, saying nothing of acme's viewer.
    let (status, body) = call(
        &api,
        "/tenants/acme/viewers/u-10",
        claims("globex", Some("admin")),
    )
    .await;
    assert_eq!(status, 403);
    assert!(!body.to_string().contains("u-10"), "{body}");
    assert!(erasures(&test).is_empty());

    // The report, cached, shows u-10 asking.
    let asked_by = |test: &TestDb| -> Vec<Option<String>> {
        let report =
            shared::read::presentation_report(&mut test.conn(), "acme", "prs-acm-0000").unwrap();
        report.qna.top.into_iter().map(|q| q.asked_by).collect()
    };
    assert!(asked_by(&test).contains(&Some("u-10".to_string())));
    let cached_with_u10 = "SELECT COUNT(*) FROM agg_presentation_report WHERE INSTR(report, '\"askedBy\":\"u-10\"') > 0";
    assert_eq!(test.count(cached_with_u10), 1);

    // The tenant's admin: the receipt.
    let (status, body) = call(
        &api,
        "/tenants/acme/viewers/u-10",
        claims("acme", Some("admin")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"tenantId": "acme", "viewerId": "u-10", "known": true, "erasedAt": "2023-11-14T22:13:20.000Z"})
    );
    // Again: the same receipt. A viewer never seen: known false.
    let (_, again) = call(
        &api,
        "/tenants/acme/viewers/u-10",
        claims("acme", Some("admin")),
    )
    .await;
    assert_eq!(again, body);
    let (status, unknown) = call(
        &api,
        "/tenants/acme/viewers/u-999",
        claims("acme", Some("admin")),
    )
    .await;
    assert_eq!((status, &unknown["known"]), (200, &json!(false)));
    // globex's admin erases globex's u-23, not acme's.
    let (status, _) = call(
        &api,
        "/tenants/globex/viewers/u-23",
        claims("globex", Some("admin")),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        erasures(&test),
        vec![
            ("acme".to_string(), "u-10".to_string()),
            ("acme".to_string(), "u-999".to_string()),
            ("globex".to_string(), "u-23".to_string()),
        ]
    );
    let acme = integration_tests::harness::all_viewers(&mut test.conn(), "acme", "prs-acm-0000");
    let ana = acme.iter().find(|r| r.viewer_id == "u-23").unwrap();
    assert_eq!(ana.name.as_deref(), Some("Ana"));
    let wei = acme.iter().find(|r| r.viewer_id == "u-10").unwrap();
    assert_eq!(
        (
            wei.name.as_deref(),
            wei.email.as_deref(),
            wei.questions_asked
        ),
        (None, None, 0)
    );
    let globex =
        integration_tests::harness::all_viewers(&mut test.conn(), "globex", "prs-glo-0001");
    let hiro = globex.iter().find(|r| r.viewer_id == "u-23").unwrap();
    assert_eq!(hiro.name, None);
    // The cached report is gone with the tie; the report shows nobody asking.
    assert_eq!(test.count(cached_with_u10), 0);
    assert!(!asked_by(&test).contains(&Some("u-10".to_string())));
    // A bad id: 400.
    let (status, _) = call(
        &api,
        "/tenants/acme/viewers/%20u-1",
        claims("acme", Some("admin")),
    )
    .await;
    assert_eq!(status, 400);
}

// ---------------------------------------------------------------------------
// Retention
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nightly_run_removes_old_bodies_and_keeps_recent_ones_and_what_triage_needs() {
    let test = TestDb::new();
    let loaders = Loaders::new(&test).await;
    let bodies: Vec<String> = (0..4).map(|i| format!("not json {i}")).collect();
    assert!(loaders.deliver(&bodies, 10).await.is_empty());
    let now = 1_700_000_000_000i64;
    let day = 86_400_000i64;
    // Last seen 40, 31, 29 and 1 days before "now".
    for (i, days) in [40, 31, 29, 1].into_iter().enumerate() {
        test.conn()
            .exec_drop(
                "UPDATE error_event SET first_seen = FROM_UNIXTIME(?), last_seen = FROM_UNIXTIME(?) WHERE raw_body = ?",
                ((now - 50 * day) / 1000, (now - days * day) / 1000, format!("not json {i}")),
            )
            .unwrap();
    }
    let before: Vec<(String, String, u64, String, String, String)> = test.rows(
        "SELECT source, reason, seen_count, kind, CAST(first_seen AS CHAR), CAST(last_seen AS CHAR) FROM error_event ORDER BY error_id",
    );

    let export = TempExport::new("retention", &sample_lines()[..20].join("\n"));
    let function = ReconcileFunction {
        context: context(&test, QueueUrls::default()).await,
        source_template: Some(export.source()),
        default_repair: None,
        error_retention: ErrorRetention {
            days: 30,
            clock: Arc::new(move || now),
        },
    };
    let mut context = lambda_runtime::Context::default();
    context.deadline = (std::time::SystemTime::now() + Duration::from_secs(120))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let payload = json!({"detail": {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}});
    let summary = function
        .handle(lambda_runtime::LambdaEvent::new(payload, context))
        .await
        .unwrap();
    assert!(summary.done);

    let kept: Vec<(String, bool)> = test.rows(
        "SELECT CAST(raw_body AS CHAR), body_removed_at IS NOT NULL FROM error_event ORDER BY error_id",
    );
    assert_eq!(
        kept,
        vec![
            (String::new(), true),
            (String::new(), true),
            ("not json 2".to_string(), false),
            ("not json 3".to_string(), false),
        ]
    );
    let after: Vec<(String, String, u64, String, String, String)> = test.rows(
        "SELECT source, reason, seen_count, kind, CAST(first_seen AS CHAR), CAST(last_seen AS CHAR) FROM error_event ORDER BY error_id",
    );
    assert_eq!(after, before, "reason, source, counts and times stay");

    // Seen again, a body comes back with its row.
    assert!(loaders.deliver(&bodies[..1], 10).await.is_empty());
    let again: (String, u64, bool) = test.conn()
        .query_first("SELECT CAST(raw_body AS CHAR), seen_count, body_removed_at IS NULL FROM error_event ORDER BY error_id LIMIT 1")
        .unwrap()
        .unwrap();
    assert_eq!(again, ("not json 0".to_string(), 2, true));
}

// ---------------------------------------------------------------------------
// Every column placed
// ---------------------------------------------------------------------------

#[test]
fn every_text_column_of_the_schema_is_placed_as_erasable_or_not() {
    let test = TestDb::new();
    let schema: BTreeSet<(String, String)> = test
        .rows::<(String, String)>(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = DATABASE() \
             AND data_type IN ('char', 'varchar', 'text', 'tinytext', 'mediumtext', 'longtext', 'binary', 'varbinary', \
                               'blob', 'tinyblob', 'mediumblob', 'longblob', 'json', 'enum', 'set')",
        )
        .into_iter()
        .collect();
    let erasable: BTreeSet<(String, String)> = shared::write::ERASABLE_COLUMNS
        .iter()
        .map(|(t, c, _)| (t.to_string(), c.to_string()))
        .collect();
    let other: BTreeSet<(String, String)> = shared::write::OTHER_TEXT_COLUMNS
        .iter()
        .map(|(t, c, _)| (t.to_string(), c.to_string()))
        .collect();
    assert!(erasable.is_disjoint(&other));
    let placed: BTreeSet<(String, String)> = erasable.union(&other).cloned().collect();
    let unplaced: Vec<_> = schema.difference(&placed).collect();
    assert!(
        unplaced.is_empty(),
        "columns that may hold text and are in neither shared::write::ERASABLE_COLUMNS nor OTHER_TEXT_COLUMNS: {unplaced:?}"
    );
    // The placed ones exist (a key column of the erasable list included).
    let all: BTreeSet<(String, String)> = test
        .rows::<(String, String)>(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = DATABASE()",
        )
        .into_iter()
        .collect();
    let gone: Vec<_> = placed.difference(&all).collect();
    assert!(gone.is_empty(), "placed columns the schema lacks: {gone:?}");
}

#[test]
fn the_template_routes_delete_to_its_own_function_behind_the_jwt_authorizer() {
    let template = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"),
    )
    .unwrap();
    let at = template
        .find("        ForgetViewer:")
        .expect("the ForgetViewer route");
    // The resource the route belongs to: the last top-level one above it,
    // the function that may write (the read API's user may only SELECT).
    let resource = template[..at]
        .lines()
        .rev()
        .find(|l| l.starts_with("  ") && !l.starts_with("   ") && l.trim_end().ends_with(':'))
        .map(str::trim);
    assert_eq!(resource, Some("EraseViewerFunction:"));
    let block: Vec<&str> = template[at..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("          "))
        .collect();
    let block = block.join("\n");
    for line in [
        "Type: HttpApi",
        "ApiId: !Ref AnalyticsHttpApi",
        "Method: DELETE",
        "Path: /tenants/{tenantId}/viewers/{viewerId}",
        "Authorizer: WarehouseJwt",
    ] {
        assert!(block.contains(line), "the route lacks {line:?}:\n{block}");
    }
}
