//! The backfill against the real MariaDB and moto (S3 and SQS).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::contract::{parse_event, DataPoint, Event};
use shared::export::ExportScope;
use shared::jobs::backfill::{self, BackfillOptions, Filters, Mode, Summary};
use shared::jobs::JobContext;
use shared::redrive::QueueUrls;
use shared::store::Database;

use crate::helpers::{self, TestDb};
use crate::loaders::{sample_lines, snapshot};

async fn context(test: &TestDb, queues: QueueUrls, batch_lines: usize) -> JobContext {
    let aws = helpers::aws_config().await;
    JobContext {
        db: Arc::new(Database::connect(test.settings(), 4).await.unwrap()),
        s3: Some(shared::store::s3_client(&aws)),
        sqs: Some(aws_sdk_sqs::Client::new(&aws)),
        queues,
        exports: ExportScope::Anywhere,
        batch_lines,
        batch_bytes: backfill::DEFAULT_BATCH_BYTES,
        on_progress: None,
        before_lane_commit: None,
    }
}

/// `ctx` as a function's: it reads only exports under `s3://{bucket}/night/`.
pub(crate) fn reading_only_night_of(mut ctx: JobContext, bucket: &str) -> JobContext {
    ctx.exports = ExportScope::s3_folder(bucket, "night/").unwrap();
    ctx
}

/// A new bucket on moto holding the sample at `night/events.jsonl` and,
/// outside that folder, at `other/events.jsonl`.
pub(crate) async fn sample_bucket(s3: &aws_sdk_s3::Client) -> String {
    let bucket = format!("exports-{:08x}", rand::random::<u32>());
    let sample = std::fs::read(helpers::sample_path()).unwrap();
    for key in ["night/events.jsonl", "other/events.jsonl"] {
        upload(s3, &bucket, key, sample.clone()).await;
    }
    bucket
}

fn options(source: &str, mode: Mode) -> BackfillOptions {
    BackfillOptions {
        source: source.to_string(),
        mode,
        filters: Filters::default(),
        dry_run: false,
        lanes: backfill::DEFAULT_LANES,
    }
}

fn sample_source() -> String {
    helpers::sample_path().display().to_string()
}

fn valid_sample_events() -> Vec<Event> {
    sample_lines()
        .iter()
        .filter_map(|l| parse_event(l).ok())
        .collect()
}

fn assert_sample_stats(summary: &Summary) {
    assert_stats(summary, &helpers::sample_expected());
}

fn assert_stats(summary: &Summary, expected: &serde_json::Value) {
    let expected = &expected["stats"];
    assert_eq!(summary.counters.lines, expected["lines"].as_u64().unwrap());
    assert_eq!(
        summary.counters.events,
        expected["events"].as_u64().unwrap()
    );
    assert_eq!(
        summary.counters.duplicates,
        expected["duplicates"].as_u64().unwrap()
    );
    assert_eq!(
        summary.counters.malformed,
        expected["malformed"].as_u64().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_loaded_directly_gives_its_stats_and_records_bad_lines_with_line_numbers() {
    let test = TestDb::new();
    let ctx = context(&test, QueueUrls::default(), 1000).await;
    let summary = backfill::run(&ctx, &options(&sample_source(), Mode::Direct), None, None)
        .await
        .unwrap();
    assert!(summary.done);
    assert_sample_stats(&summary);
    let lines: Vec<u64> = test
        .rows("SELECT line_number FROM error_event WHERE kind = 'malformed' ORDER BY line_number");
    assert_eq!(lines.len(), 8);
    let sample = std::fs::read_to_string(helpers::sample_path()).unwrap();
    let all: Vec<&str> = sample.lines().collect();
    for line in lines {
        assert!(
            parse_event(all[line as usize - 1]).is_err(),
            "line {line} is really malformed"
        );
    }
    // Running it again under another id: everything is a duplicate now.
    let again = backfill::run(&ctx, &options(&sample_source(), Mode::Direct), None, None)
        .await
        .unwrap();
    assert_eq!(again.counters.events, 0);
    assert_eq!(again.counters.duplicates, 6445 - 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_puts_each_analytics_event_on_its_data_points_queue() {
    // A fifth of the sample: moto's queues slow down with their length.
    let lines: Vec<String> = std::fs::read_to_string(helpers::sample_path())
        .unwrap()
        .lines()
        .step_by(5)
        .map(str::to_string)
        .collect();
    let export = helpers::TempExport::new("enqueue", &lines.join("\n"));
    let test = TestDb::new();
    let aws = helpers::aws_config().await;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let mut urls = BTreeMap::new();
    for dp in DataPoint::ALL {
        urls.insert(dp, helpers::create_queue(&sqs, dp.as_str()).await);
    }
    let ctx = context(&test, QueueUrls(urls.clone()), 300).await;
    let summary = backfill::run(&ctx, &options(&export.source(), Mode::Enqueue), None, None)
        .await
        .unwrap();
    assert!(summary.done);
    let mut expected: BTreeMap<DataPoint, usize> = BTreeMap::new();
    let mut malformed = 0;
    for line in lines.iter().filter(|l| !l.trim().is_empty()) {
        match parse_event(line) {
            Ok(event) => {
                if let Some(dp) = event.data_point() {
                    *expected.entry(dp).or_default() += 1;
                }
            }
            Err(_) => malformed += 1,
        }
    }
    for (dp, url) in &urls {
        assert_eq!(
            helpers::queue_length(&sqs, url).await,
            expected.get(dp).copied().unwrap_or(0),
            "{dp} queue"
        );
        let some = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default();
        for message in &some {
            let event = parse_event(message.body.as_deref().unwrap()).unwrap();
            assert_eq!(event.data_point(), Some(*dp));
            let attribute = &message.message_attributes.as_ref().unwrap()["type"];
            assert_eq!(
                attribute.string_value.as_deref(),
                Some(event.event_type.as_str())
            );
        }
    }
    assert_eq!(summary.counters.malformed, malformed);
    assert_eq!(
        test.count("SELECT COUNT(*) FROM error_event WHERE kind = 'malformed'") as u64,
        malformed
    );
    assert_eq!(
        test.count("SELECT COUNT(*) FROM event_ledger"),
        0,
        "enqueue loads nothing itself"
    );
}

/// Runs `options` in invocations that each stop after about one batch,
/// as a killed or timed-out run would, until the run is done.
async fn run_in_pieces(
    ctx: &JobContext,
    options: &BackfillOptions,
    run_id: &str,
) -> (Summary, usize) {
    let mut pieces = 0;
    loop {
        pieces += 1;
        let summary = backfill::run(ctx, options, Some(run_id.to_string()), Some(Instant::now()))
            .await
            .unwrap();
        if summary.done {
            return (summary, pieces);
        }
        assert!(pieces < 1000, "the run makes progress");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_midway_and_resumed_ends_identical_to_an_uninterrupted_one() {
    let whole = TestDb::new();
    let ctx = context(&whole, QueueUrls::default(), 400).await;
    let uninterrupted = backfill::run(&ctx, &options(&sample_source(), Mode::Direct), None, None)
        .await
        .unwrap();

    let pieces_db = TestDb::new();
    let ctx = context(&pieces_db, QueueUrls::default(), 400).await;
    let (resumed, pieces) = run_in_pieces(
        &ctx,
        &options(&sample_source(), Mode::Direct),
        "resume-test",
    )
    .await;
    assert!(pieces > 10, "stopped {pieces} times");
    assert_eq!(resumed.counters, uninterrupted.counters);
    assert_eq!(snapshot(&pieces_db), snapshot(&whole));
    // A finished run re-invoked does nothing more.
    let after = backfill::run(
        &ctx,
        &options(&sample_source(), Mode::Direct),
        Some("resume-test".into()),
        None,
    )
    .await
    .unwrap();
    assert!(after.done);
    assert_eq!(after.counters, uninterrupted.counters);
    // The same id with other options is refused, with the way out.
    let mut other = options(&sample_source(), Mode::Direct);
    other.dry_run = false;
    other.filters.tenants = vec!["acme".into()];
    let err = backfill::run(&ctx, &other, Some("resume-test".into()), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("other options"), "{err}");
    // So is another number of lanes (the default changed from 2 to 3).
    let mut other_lanes = options(&sample_source(), Mode::Direct);
    other_lanes.lanes = backfill::DEFAULT_LANES - 1;
    let err = backfill::run(&ctx, &other_lanes, Some("resume-test".into()), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--lanes"), "{err}");
}

/// Each lane commits its own checkpoint, so a kill can leave one lane
/// batches ahead of another: here lane 0 dies in its third batch while lane
/// 1 has committed more. The resumed run must skip what lane 1 committed and
/// redo what lane 0 did not, ending exactly like an uninterrupted run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_lanes_stopped_at_different_batches_resumes_to_the_same_end() {
    let whole = TestDb::new();
    let ctx = context(&whole, QueueUrls::default(), 400).await;
    // Two lanes, the ones the kill below is written for.
    let mut direct = options(&sample_source(), Mode::Direct);
    direct.lanes = 2;
    let uninterrupted = backfill::run(&ctx, &direct, None, None).await.unwrap();

    let test = TestDb::new();
    let mut ctx = context(&test, QueueUrls::default(), 400).await;
    let lane_1_ahead = Arc::new(AtomicBool::new(false));
    let ahead = lane_1_ahead.clone();
    ctx.before_lane_commit = Some(Arc::new(move |lane, last_line| {
        // Batches of 400 lines: the third ends at line 1200.
        if lane == 1 && last_line > 1200 {
            ahead.store(true, Ordering::SeqCst);
        }
        if lane == 0 && last_line > 800 {
            let until = Instant::now() + Duration::from_secs(20);
            while !ahead.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            panic!("lane 0 killed by the test");
        }
    }));
    let error = backfill::run(&ctx, &direct, Some("uneven".into()), None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("panicked"), "{error}");
    let offsets: Vec<u64> =
        test.rows("SELECT next_offset FROM backfill_lane WHERE run_id = 'uneven' ORDER BY lane");
    assert_eq!(offsets.len(), 2);
    assert!(
        offsets[1] > offsets[0],
        "lane 1 committed past lane 0: {offsets:?}"
    );

    ctx.before_lane_commit = None;
    let resumed = backfill::run(&ctx, &direct, Some("uneven".into()), None)
        .await
        .unwrap();
    assert!(resumed.done);
    assert_eq!(resumed.counters, uninterrupted.counters);
    assert_sample_stats(&resumed);
    assert_eq!(snapshot(&test), snapshot(&whole));
}

/// A lane busy with a long presentation is not given the batches it has no
/// share of (the reader deals on to the other lanes); it must still be
/// given the export's end, or the run would never read as finished. The
/// export: one presentation's 4,000 lines, then 300 of another in another
/// lane, in batches of 100, with the first lane's commits slowed down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_left_out_of_the_last_batches_still_ends_at_the_exports_end() {
    let lines = sample_lines();
    let stream_of = |line: &String| parse_event(line).ok().map(|e| e.stream_id);
    let long = "prs-glo-0001";
    let lanes = 2;
    let short = ["prs-acm-0000", "prs-acm-0002"]
        .into_iter()
        .find(|s| backfill::lane_of_stream(s, lanes) != backfill::lane_of_stream(long, lanes))
        .expect("the sample's presentations are in both lanes");
    let of = |stream: &str, n: usize| {
        lines
            .iter()
            .filter(|l| stream_of(l).as_deref() == Some(stream))
            .take(n)
            .cloned()
            .collect::<Vec<_>>()
    };
    let text = [of(long, 4000), of(short, 300)].concat().join("\n") + "\n";
    let export = helpers::TempExport::new("uneven", &text);
    let mut direct = options(&export.source(), Mode::Direct);
    direct.lanes = lanes;

    let test = TestDb::new();
    let mut ctx = context(&test, QueueUrls::default(), 100).await;
    let slow_lane = backfill::lane_of_stream(long, lanes);
    ctx.before_lane_commit = Some(Arc::new(move |lane, _| {
        if lane == slow_lane {
            std::thread::sleep(Duration::from_millis(15));
        }
    }));
    let summary = backfill::run(&ctx, &direct, Some("uneven-end".into()), None)
        .await
        .unwrap();
    assert!(summary.done);
    assert_eq!(summary.next_offset, text.len() as u64);
    let offsets: Vec<u64> = test
        .rows("SELECT next_offset FROM backfill_lane WHERE run_id = 'uneven-end' ORDER BY lane");
    assert_eq!(offsets, vec![text.len() as u64; lanes]);
    assert_eq!(summary.counters.lines, 4300);
    let distinct: std::collections::HashSet<(String, i64)> = text
        .lines()
        .filter_map(|l| parse_event(l).ok())
        .map(|e| (e.stream_id, e.version))
        .collect();
    assert_eq!(summary.counters.events, distinct.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_the_database_refuses_is_recorded_with_its_line_and_the_run_goes_on() {
    // The sample's first 500 lines, with a question the database refuses
    // (a test trigger) as line 201.
    let mut lines: Vec<String> = sample_lines().into_iter().take(500).collect();
    let refused = serde_json::json!({
        "_id": {"$oid": "6140a1e5c2a4b3d2e1f0a9b8"},
        "streamId": "prs-acm-0000", "version": 900_001, "type": "QuestionAsked",
        "occurredAt": {"$date": "2021-09-10T12:00:00.000Z"}, "tenantId": "acme",
        "data": {"questionId": "q-refused", "viewerId": "u-1", "text": "Why?", "anonymous": false}
    })
    .to_string();
    lines.insert(200, refused);
    let text = lines.join("\n") + "\n";
    let export = helpers::TempExport::new("refused", &text);

    // The same warehouse as the lines without it, loaded once.
    let without = TestDb::new();
    let plain = helpers::TempExport::new(
        "not-refused",
        &(lines[..200].join("\n") + "\n" + &lines[201..].join("\n") + "\n"),
    );
    let ctx = context(&without, QueueUrls::default(), 100).await;
    backfill::run(&ctx, &options(&plain.source(), Mode::Direct), None, None)
        .await
        .unwrap();

    for batch_lines in [1, 10, 1000] {
        let test = TestDb::new();
        test.refuse_rows("dim_question", "question_id", "q-refused");
        let ctx = context(&test, QueueUrls::default(), batch_lines).await;
        let summary = backfill::run(&ctx, &options(&export.source(), Mode::Direct), None, None)
            .await
            .expect("the run goes on past the refused line");
        assert!(summary.done);
        assert_eq!(summary.next_offset, text.len() as u64);
        assert_eq!(summary.counters.refused, 1, "batches of {batch_lines}");
        let recorded: Vec<(String, i64, String)> =
            test.rows("SELECT kind, line_number, reason FROM error_event WHERE kind = 'refused'");
        assert_eq!(recorded.len(), 1);
        assert_eq!((recorded[0].0.as_str(), recorded[0].1), ("refused", 201));
        assert!(
            recorded[0].2.contains("refused by the test"),
            "{}",
            recorded[0].2
        );
        // Everything else is loaded.
        for table in ["event_ledger", "fact_session", "dim_question", "dim_viewer"] {
            let count = format!("SELECT COUNT(*) FROM {table}");
            assert_eq!(
                test.count(&count),
                without.count(&count),
                "{table}, batches of {batch_lines}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poison_export_loaded_directly_gives_its_golden_answers_and_stats() {
    let test = TestDb::new();
    // Small batches: the poison lines share batches with good ones.
    let ctx = context(&test, QueueUrls::default(), 97).await;
    let source = helpers::poison_path().display().to_string();
    let summary = backfill::run(&ctx, &options(&source, Mode::Direct), None, None)
        .await
        .expect("the poison export loads");
    assert!(summary.done);
    let expected = helpers::poison_expected();
    assert_stats(&summary, &expected);
    assert_eq!(summary.counters.refused, 0, "no event the database refuses");
    integration_tests::harness::assert_answers_of(&mut test.conn(), &expected);
    // The over-long line is recorded with its line number, as malformed.
    let poison = std::fs::read_to_string(helpers::poison_path()).unwrap();
    let long_line = poison.lines().position(|l| l.len() > 1 << 20).unwrap() as i64 + 1;
    assert_eq!(
        test.count(&format!(
            "SELECT COUNT(*) FROM error_event WHERE kind = 'malformed' AND line_number = {long_line}"
        )),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poison_exports_anonymous_questions_leave_no_asker_in_any_column() {
    // The whole poison export: malformed, conflicting and valid copies of
    // anonymous questions, and garbage naming their askers.
    let test = TestDb::new();
    let ctx = context(&test, QueueUrls::default(), 500).await;
    let source = helpers::poison_path().display().to_string();
    let summary = backfill::run(&ctx, &options(&source, Mode::Direct), None, None)
        .await
        .expect("the export loads");
    assert!(summary.done);
    assert!(
        test.count("SELECT COUNT(*) FROM error_event") > 0,
        "some copies are kept as rejects"
    );
    // Those askers' ids appear in no other event of the export.
    let poison = std::fs::read_to_string(helpers::poison_path()).unwrap();
    assert!(poison.contains("u-anon-secret"), "the export names them");
    assert_eq!(
        crate::loaders::columns_holding(&test, "u-anon-secret"),
        Vec::<String>::new()
    );
}

pub(crate) async fn upload(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) {
    let _ = s3.create_bucket().bucket(bucket).send().await;
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .expect("upload to moto S3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gzip_export_on_s3_loads_and_a_plain_one_resumes_with_ranged_reads() {
    let test = TestDb::new();
    let ctx = context(&test, QueueUrls::default(), 1000).await;
    let s3 = ctx.s3.clone().unwrap();
    let bucket = format!("exports-{:08x}", rand::random::<u32>());
    let sample = std::fs::read(helpers::sample_path()).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&sample).unwrap();
    // No .gz suffix: detection is by content.
    upload(&s3, &bucket, "night/events", gz.finish().unwrap()).await;
    let summary = backfill::run(
        &ctx,
        &options(&format!("s3://{bucket}/night/events"), Mode::Direct),
        None,
        None,
    )
    .await
    .unwrap();
    assert_sample_stats(&summary);

    let plain_db = TestDb::new();
    let ctx = context(&plain_db, QueueUrls::default(), 1000).await;
    upload(&s3, &bucket, "plain.jsonl", sample).await;
    let (resumed, pieces) = run_in_pieces(
        &ctx,
        &options(&format!("s3://{bucket}/plain.jsonl"), Mode::Direct),
        "s3-plain",
    )
    .await;
    assert!(pieces > 2);
    assert_sample_stats(&resumed);
    assert_eq!(snapshot(&plain_db), snapshot(&test));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_select_exactly_what_they_say() {
    let events = valid_sample_events();
    let distinct = |keep: &dyn Fn(&Event) -> bool| {
        let mut ids: Vec<(String, i64)> = events
            .iter()
            .filter(|e| keep(e))
            .map(|e| (e.stream_id.clone(), e.version))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let from = shared::contract::parse_rfc3339("2021-09-14T14:10:00Z").unwrap();
    let to = shared::contract::parse_rfc3339("2021-09-14T14:20:00Z").unwrap();
    let cases: Vec<(Filters, Vec<(String, i64)>)> = vec![
        (
            Filters {
                tenants: vec!["acme".into()],
                ..Filters::default()
            },
            distinct(&|e| e.tenant_id == "acme"),
        ),
        (
            Filters {
                presentations: vec!["prs-acm-0002".into()],
                ..Filters::default()
            },
            distinct(&|e| e.stream_id == "prs-acm-0002"),
        ),
        (
            Filters {
                from_ms: Some(from),
                to_ms: Some(to),
                ..Filters::default()
            },
            distinct(&|e| e.occurred_at >= from && e.occurred_at <= to),
        ),
        (
            Filters {
                data_points: vec![DataPoint::Polls, DataPoint::Qna],
                ..Filters::default()
            },
            distinct(&|e| matches!(e.data_point(), Some(DataPoint::Polls | DataPoint::Qna))),
        ),
    ];
    for (filters, expected) in cases {
        assert!(
            !expected.is_empty() && expected.len() < 5852,
            "a filter that selects something: {filters:?}"
        );
        let test = TestDb::new();
        let ctx = context(&test, QueueUrls::default(), 1000).await;
        let mut opts = options(&sample_source(), Mode::Direct);
        opts.filters = filters.clone();
        let summary = backfill::run(&ctx, &opts, None, None).await.unwrap();
        let loaded: Vec<(String, i64)> =
            test.rows("SELECT stream_id, version FROM event_ledger ORDER BY stream_id, version");
        assert_eq!(loaded, expected, "{filters:?}");
        assert_eq!(summary.counters.events as usize, expected.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_counts_and_writes_nothing() {
    let test = TestDb::new();
    let ctx = context(&test, QueueUrls::default(), 1000).await;
    let mut opts = options(&sample_source(), Mode::Direct);
    opts.dry_run = true;
    let summary = backfill::run(&ctx, &opts, None, None).await.unwrap();
    assert_eq!(summary.counters.lines, 6445);
    assert_eq!(summary.counters.malformed, 8);
    assert_eq!(summary.counters.events, 6445 - 8);
    assert_eq!(test.count("SELECT COUNT(*) FROM event_ledger"), 0);
    assert_eq!(test.count("SELECT COUNT(*) FROM error_event"), 0);
    assert_eq!(test.count("SELECT COUNT(*) FROM backfill_run"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_returns_not_done_near_its_deadline_and_finishes_when_invoked_again() {
    let test = TestDb::new();
    let ctx = context(&test, QueueUrls::default(), 300).await;
    let bucket = sample_bucket(ctx.s3.as_ref().unwrap()).await;
    let function = shared::handlers::BackfillFunction {
        context: reading_only_night_of(ctx, &bucket),
    };
    let payload = serde_json::json!({"source": format!("s3://{bucket}/night/events.jsonl"), "mode": "direct", "runId": "lambda-run"});
    let mut invocations = 0;
    loop {
        invocations += 1;
        let mut context = lambda_runtime::Context::default();
        // Inside the margin already: each invocation does one batch and returns.
        context.deadline = (std::time::SystemTime::now() + Duration::from_secs(1))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let request = serde_json::from_value(payload.clone()).unwrap();
        let summary = function
            .handle(lambda_runtime::LambdaEvent::new(request, context))
            .await
            .unwrap();
        let response = serde_json::to_value(&summary).unwrap();
        assert_eq!(response["runId"], "lambda-run");
        if response["done"] == true {
            assert_eq!(response["events"], 5852);
            break;
        }
        assert!(response["nextOffset"].as_u64().unwrap() > 0);
        assert!(invocations < 100);
    }
    assert!(invocations > 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backfill_function_refuses_a_local_path_and_an_s3_path_outside_its_prefix() {
    let test = TestDb::new();
    let ctx = context(&test, QueueUrls::default(), 1000).await;
    let bucket = sample_bucket(ctx.s3.as_ref().unwrap()).await;
    let function = shared::handlers::BackfillFunction {
        context: reading_only_night_of(ctx, &bucket),
    };
    // Each names a readable export: only the scope refuses them.
    for (source, why) in [
        (sample_source(), "it is not an s3:// location"),
        (
            format!("s3://{bucket}/other/events.jsonl"),
            "its key is outside the prefix",
        ),
        (
            format!("s3://{bucket}/night/../other/events.jsonl"),
            "segment",
        ),
        (
            format!("S3://{bucket}/night/events.jsonl"),
            "not an s3:// location",
        ),
    ] {
        let request = serde_json::from_value(
            serde_json::json!({"source": source, "mode": "direct", "runId": "refused"}),
        )
        .unwrap();
        let error = function
            .handle(lambda_runtime::LambdaEvent::new(
                request,
                lambda_runtime::Context::default(),
            ))
            .await
            .expect_err(&source)
            .to_string();
        assert!(error.contains(why), "{source}: {error}");
        assert!(
            error.contains(&format!("this function reads only s3://{bucket}/night/")),
            "{error}"
        );
    }
    // Refused before anything was read or recorded.
    assert_eq!(test.count("SELECT COUNT(*) FROM backfill_run"), 0);
    assert_eq!(test.count("SELECT COUNT(*) FROM event_ledger"), 0);
    assert_eq!(test.count("SELECT COUNT(*) FROM error_event"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_over_1_mib_is_recorded_with_its_first_64_kib_and_the_rest_loads() {
    // A valid event but for its size (its text would be cut to 4,000
    // characters, were it not over 1 MiB), amid the sample.
    let sample = std::fs::read_to_string(helpers::sample_path()).unwrap();
    let lines: Vec<&str> = sample.lines().collect();
    let long = format!(
        r#"{{"streamId":"prs-acm-0000","version":999999,"type":"QuestionAsked","occurredAt":{{"$date":"2021-09-14T14:00:00Z"}},"tenantId":"acme","data":{{"questionId":"q-long","viewerId":"u-1","text":"{}","anonymous":false}}}}"#,
        "x".repeat(3 << 20)
    );
    let at = lines.len() / 2;
    let text = [&lines[..at], &[long.as_str()], &lines[at..]]
        .concat()
        .join("\n")
        + "\n";
    let export = helpers::TempExport::new("over-long", &text);
    let test = TestDb::new();
    // Small batches: the line's batch and its neighbours load.
    let ctx = context(&test, QueueUrls::default(), 500).await;
    let summary = backfill::run(&ctx, &options(&export.source(), Mode::Direct), None, None)
        .await
        .unwrap();
    let expected = &helpers::sample_expected()["stats"];
    assert_eq!(
        summary.counters.lines,
        expected["lines"].as_u64().unwrap() + 1
    );
    assert_eq!(
        summary.counters.events,
        expected["events"].as_u64().unwrap()
    );
    assert_eq!(
        summary.counters.malformed,
        expected["malformed"].as_u64().unwrap() + 1
    );
    let (raw, truncated, reason): (Vec<u8>, bool, String) = test
        .rows(&format!(
            "SELECT raw_body, body_truncated, reason FROM error_event WHERE line_number = {}",
            at + 1
        ))
        .pop()
        .expect("the line's error row");
    assert_eq!(raw, long.as_bytes()[..64 << 10]);
    assert!(truncated);
    assert!(
        reason.starts_with(&format!(
            "line longer than 1 MiB (1,048,576 bytes, line end excluded): it has {} bytes",
            long.len()
        )),
        "{reason}"
    );
    // The rest is the sample's load, and the reconciliation passes the line by.
    let plain = TestDb::new();
    let plain_ctx = context(&plain, QueueUrls::default(), 500).await;
    backfill::run(
        &plain_ctx,
        &options(&sample_source(), Mode::Direct),
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(snapshot(&test), snapshot(&plain));
    let (reconciled, found) = shared::jobs::reconcile::run_to_end(
        &ctx.db,
        None,
        None,
        &shared::jobs::reconcile::ReconcileOptions {
            source: export.source(),
            from_ms: None,
            to_ms: None,
            repair: None,
        },
    )
    .await
    .unwrap();
    assert_eq!(found, []);
    assert_eq!(
        reconciled.totals.compared,
        test.count("SELECT COUNT(*) FROM event_ledger WHERE data_point <> 'none'") as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_bounded_in_bytes_load_the_same_and_hold_no_more_than_their_bound() {
    let test = TestDb::new();
    let mut ctx = context(&test, QueueUrls::default(), 10_000).await;
    // Some 30 lines a batch, and room for three batches in the whole run:
    // the reader waits on the lanes all along.
    ctx.batch_bytes = 8 << 10;
    let summary = backfill::run(&ctx, &options(&sample_source(), Mode::Direct), None, None)
        .await
        .unwrap();
    assert_sample_stats(&summary);
    let shortest = sample_lines().iter().map(String::len).min().unwrap() as i64;
    let bytes = std::fs::metadata(helpers::sample_path()).unwrap().len() as i64;
    assert!(test.count("SELECT MAX(messages) FROM load_run") * shortest <= 8 << 10);
    assert!(test.count("SELECT COUNT(*) FROM load_run") >= bytes / (8 << 10));
    let whole = TestDb::new();
    let whole_ctx = context(&whole, QueueUrls::default(), 10_000).await;
    backfill::run(
        &whole_ctx,
        &options(&sample_source(), Mode::Direct),
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(snapshot(&test), snapshot(&whole));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_of_a_direct_run_leaves_no_summary_stale() {
    // The presentation list reads summaries the loaders refresh after their
    // batches; a direct run writes without them, so its invocation sweeps.
    let test = TestDb::new();
    let function = shared::handlers::BackfillFunction {
        context: context(&test, QueueUrls::default(), 2000).await,
    };
    let mut context = lambda_runtime::Context::default();
    context.deadline = (std::time::SystemTime::now() + Duration::from_secs(300))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let payload = serde_json::json!({"source": sample_source(), "mode": "direct"});
    let summary = function
        .handle(lambda_runtime::LambdaEvent::new(
            serde_json::from_value(payload).unwrap(),
            context,
        ))
        .await
        .unwrap();
    assert!(summary.done);
    let stale = "SELECT COUNT(*) FROM dim_presentation p \
                 LEFT JOIN agg_presentation a USING (presentation_key) \
                 WHERE a.presentation_key IS NULL OR a.source_revision < p.revision";
    assert_eq!(test.count(stale), 0);
    assert_eq!(
        test.count("SELECT COUNT(*) FROM agg_presentation"),
        test.count("SELECT COUNT(*) FROM dim_presentation")
    );
}
