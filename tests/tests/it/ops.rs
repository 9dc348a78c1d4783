//! The on-call commands' library (`shared::ops`): `status`, `dlq list`,
//! `dlq redrive` and `errors`, against the real MariaDB and moto's SQS and
//! CloudWatch, at a fixed `now` (times in the tables are set relative to it).

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_sqs::types::{MessageSystemAttributeName, SendMessageBatchRequestEntry};
use mysql::prelude::Queryable;
use serde_json::json;
use shared::contract::{parse_rfc3339, DataPoint};
use shared::ops::{self, ErrorFilter, QueuePair, RedriveMethod, RedriveOptions};
use shared::redrive::string_attribute;
use shared::write::{Reject, RejectKind};

use crate::helpers::{self, TestDb};
use crate::loaders::{event, joined};
use integration_tests::harness::{assert_json_eq, lambda_event, to_json, Loaders};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// The tests' clock: every time in the tables is set relative to it.
fn now() -> i64 {
    parse_rfc3339("2026-06-01T12:00:00Z").unwrap()
}

/// Sets a ledger row's load time.
fn loaded_at(test: &TestDb, stream: &str, version: i64, at_ms: i64) {
    test.conn()
        .exec_drop(
            "UPDATE event_ledger SET loaded_at = FROM_UNIXTIME(? / 1000) WHERE stream_id = ? AND version = ?",
            (at_ms, stream, version),
        )
        .unwrap();
}

/// Sets when the error rows whose body is `body` were last (and first) seen.
fn seen_at(test: &TestDb, body: &str, at_ms: i64) {
    test.conn()
        .exec_drop(
            "UPDATE error_event SET last_seen = FROM_UNIXTIME(? / 1000), first_seen = FROM_UNIXTIME(? / 1000) WHERE raw_body = ?",
            (at_ms, at_ms - MINUTE, body.as_bytes()),
        )
        .unwrap();
    assert_eq!(
        test.count(&format!(
            "SELECT COUNT(*) FROM error_event WHERE last_seen = FROM_UNIXTIME({at_ms} / 1000)"
        )),
        1,
        "one row for {body}"
    );
}

fn load_id(test: &TestDb, stream: &str, version: i64) -> String {
    test.rows::<u64>(&format!(
        "SELECT load_id FROM event_ledger WHERE stream_id = '{stream}' AND version = {version}"
    ))[0]
        .to_string()
}

async fn send_all(sqs: &aws_sdk_sqs::Client, url: &str, messages: &[(String, Option<&str>)]) {
    for chunk in messages.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, (body, reason))| {
                let mut entry = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body);
                if let Some(reason) = reason {
                    entry = entry
                        .message_attributes("reason", string_attribute(reason))
                        .message_attributes("source", string_attribute("load-attendance"));
                }
                entry.build().unwrap()
            })
            .collect();
        let out = sqs
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
        assert!(out.failed.is_empty());
    }
}

async fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&helpers::aws_config().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_against_a_known_warehouse_and_queues_gives_exactly_those_figures() {
    let test = TestDb::new();
    let loaders = Loaders::new(&test).await;
    let now = now();

    // Attendance: three events, each its own load, loaded 2 days, 3 hours
    // and 10 minutes ago. Q&A: one, 30 hours ago.
    for version in 1..=3 {
        let body = joined(
            "p-1",
            version,
            &format!("u-{version}"),
            &format!("s-{version}"),
        );
        let response = loaders
            .get(DataPoint::Attendance)
            .handle(lambda_event(&[body.as_str()]))
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
    }
    let question = event(
        "p-1",
        4,
        "QuestionAsked",
        json!({"questionId": "q-1", "viewerId": "u-1", "text": "Why?", "anonymous": false}),
    );
    assert!(loaders.deliver(&[question], 10).await.is_empty());
    loaded_at(&test, "p-1", 1, now - 2 * DAY);
    loaded_at(&test, "p-1", 2, now - 3 * HOUR);
    loaded_at(&test, "p-1", 3, now - 10 * MINUTE);
    loaded_at(&test, "p-1", 4, now - 30 * HOUR);

    // Errors: two malformed bodies on the attendance queue (one of them two
    // days old), a misrouted event on the polls queue, a backfill's reject.
    for body in ["not json", "{broken"] {
        let response = loaders
            .get(DataPoint::Attendance)
            .handle(lambda_event(&[body]))
            .await
            .unwrap();
        assert!(response.batch_item_failures.is_empty());
    }
    let misrouted = joined("p-2", 1, "u-1", "s-1");
    loaders
        .get(DataPoint::Polls)
        .handle(lambda_event(&[misrouted.as_str()]))
        .await
        .unwrap();
    shared::write::record_rejects(
        &mut test.conn(),
        "backfill:r-1",
        [Reject {
            raw: b"line 7",
            reason: "not JSON".into(),
            kind: RejectKind::Malformed,
            line: 7,
            identity: None,
            raw_truncated: false,
        }]
        .iter(),
    )
    .unwrap();
    seen_at(&test, "not json", now - HOUR);
    seen_at(&test, "{broken", now - 2 * DAY);
    seen_at(&test, &misrouted, now - 5 * HOUR);
    seen_at(&test, "line 7", now - MINUTE);

    // Reconciliations: an older one, the last one, and one still running.
    let mut conn = test.conn();
    for (run_id, finished, compared, missing, unexpected, conflicting, repaired, mode) in [
        (
            1u64,
            Some(now - 2 * DAY),
            50u64,
            9u64,
            9u64,
            9u64,
            9u64,
            None,
        ),
        (2, Some(now - 6 * HOUR), 100, 2, 1, 1, 2, Some("queue")),
        (3, None, 40, 0, 0, 0, 0, None),
    ] {
        conn.exec_drop(
            "INSERT INTO reconcile_run (run_id, source, from_ms, to_ms, compared, missing, unexpected, conflicting, repaired, repair_mode, summary_json, finished_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, FROM_UNIXTIME(? / 1000))",
            (run_id, format!("s3://exports/{run_id}.jsonl.gz"), now - 2 * DAY, now - DAY, compared, missing, unexpected, conflicting, repaired, mode,
             r#"{"elapsedSeconds": 12.5}"#, finished),
        )
        .unwrap();
    }
    for (run_id, stream, kind, dp) in [
        (1, "s-old", "missing", "surveys"),
        (2, "s-a", "missing", "attendance"),
        (2, "s-b", "missing", "polls"),
        (2, "s-c", "unexpected", "attendance"),
        (2, "s-d", "conflicting", "qna"),
    ] {
        conn.exec_drop(
            "INSERT INTO reconcile_discrepancy (run_id, stream_id, version, kind, data_point, tenant_id) VALUES (?, ?, 1, ?, ?, 'acme')",
            (run_id, stream, kind, dp),
        )
        .unwrap();
    }
    // Backfills: one done, one unfinished with two lanes.
    for (run_id, status) in [("b-done", "done"), ("b-live", "running")] {
        conn.exec_drop(
            "INSERT INTO backfill_run (run_id, source, mode, options_json, status, next_offset, counters_json, invocations, started_at, updated_at) \
             VALUES (?, 's3://exports/all.jsonl.gz', 'direct', '{}', ?, 100, '{\"lines\": 5}', 2, FROM_UNIXTIME(? / 1000), FROM_UNIXTIME(? / 1000))",
            (run_id, status, now - 3 * HOUR, now - 2 * HOUR),
        )
        .unwrap();
    }
    for (lane, offset, counters) in [
        (
            0,
            700,
            r#"{"lines": 7, "events": 6, "byDataPoint": {"attendance": 6}}"#,
        ),
        (
            1,
            500,
            r#"{"lines": 5, "events": 4, "refused": 1, "byDataPoint": {"attendance": 1, "qna": 3}}"#,
        ),
    ] {
        conn.exec_drop(
            "INSERT INTO backfill_lane (run_id, lane, next_offset, counters_json) VALUES ('b-live', ?, ?, ?)",
            (lane, offset, counters),
        )
        .unwrap();
    }
    drop(conn);

    // Queues: attendance's queue holds three messages, one of them received
    // (in flight), and its dead-letter queue two; polls has only its
    // dead-letter queue configured, with one message.
    let sqs = sqs().await;
    let attendance_queue = helpers::create_queue(&sqs, "status-attendance").await;
    let attendance_dlq = helpers::create_queue(&sqs, "status-attendance-dlq").await;
    let polls_dlq = helpers::create_queue(&sqs, "status-polls-dlq").await;
    let three: Vec<(String, Option<&str>)> = (1..=3).map(|i| (format!("m-{i}"), None)).collect();
    send_all(&sqs, &attendance_queue, &three).await;
    send_all(&sqs, &attendance_dlq, &three[..2]).await;
    send_all(&sqs, &polls_dlq, &three[..1]).await;
    let received = sqs
        .receive_message()
        .queue_url(&attendance_queue)
        .max_number_of_messages(1)
        .visibility_timeout(600)
        .send()
        .await
        .unwrap();
    assert_eq!(received.messages.unwrap_or_default().len(), 1);
    // CloudWatch's age of the oldest message: the latest point of the last
    // ten minutes counts (not an older one, nor one from before).
    let cloudwatch = ops::cloudwatch::Client::new(&helpers::aws_config().await);
    let queue_name = attendance_queue.rsplit('/').next().unwrap();
    for (age, ago) in [(500.0, 20 * MINUTE), (99.0, 8 * MINUTE), (42.0, 2 * MINUTE)] {
        use ops::cloudwatch::primitives::DateTime;
        use ops::cloudwatch::types::{Dimension, MetricDatum};
        cloudwatch
            .put_metric_data()
            .namespace("AWS/SQS")
            .metric_data(
                MetricDatum::builder()
                    .metric_name("ApproximateAgeOfOldestMessage")
                    .dimensions(
                        Dimension::builder()
                            .name("QueueName")
                            .value(queue_name)
                            .build(),
                    )
                    .timestamp(DateTime::from_millis(now - ago))
                    .value(age)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    let mut queues: BTreeMap<DataPoint, QueuePair> = BTreeMap::new();
    queues.insert(
        DataPoint::Attendance,
        QueuePair {
            queue: Some(attendance_queue.clone()),
            dlq: Some(attendance_dlq.clone()),
        },
    );
    queues.insert(
        DataPoint::Polls,
        QueuePair {
            queue: None,
            dlq: Some(polls_dlq.clone()),
        },
    );

    let warehouse = tokio::task::block_in_place(|| ops::warehouse_status(&test.db, now)).unwrap();
    let mut status = warehouse.clone();
    ops::add_queue_figures(&mut status, Some(&sqs), Some(&cloudwatch), &queues, now).await;

    let nothing = json!({
        "lastLoad": null, "loadedLastHour": 0, "loadedLastDay": 0,
        "latestOccurredAt": null, "errorsLastDay": {}
    });
    let expected = json!({
        "at": "2026-06-01T12:00:00.000Z",
        "dataPoints": {
            "presentation": nothing,
            "attendance": {
                "lastLoad": {
                    "at": "2026-06-01T11:50:00.000Z", "ageSeconds": 600,
                    "loadId": load_id(&test, "p-1", 3), "source": "load-attendance", "eventsLoaded": 1
                },
                "loadedLastHour": 1,
                "loadedLastDay": 2,
                "latestOccurredAt": "2021-09-10T12:03:00.000Z",
                "errorsLastDay": {"malformed": 1},
                "queue": {"depth": 2, "inFlight": 1, "oldestMessageAgeSeconds": 42, "dlqDepth": 2}
            },
            "polls": {
                "lastLoad": null, "loadedLastHour": 0, "loadedLastDay": 0,
                "latestOccurredAt": null, "errorsLastDay": {"wrong_data_point": 1},
                "queue": {"dlqDepth": 1}
            },
            "surveys": nothing,
            "qna": {
                "lastLoad": {
                    "at": "2026-05-31T06:00:00.000Z", "ageSeconds": 108000,
                    "loadId": load_id(&test, "p-1", 4), "source": "load-qna", "eventsLoaded": 1
                },
                "loadedLastHour": 0,
                "loadedLastDay": 0,
                "latestOccurredAt": "2021-09-10T12:04:00.000Z",
                "errorsLastDay": {}
            }
        },
        "errorsLastDayElsewhere": {"backfill:r-1": {"malformed": 1}},
        "lastReconcile": {
            "runId": 2, "source": "s3://exports/2.jsonl.gz",
            "finishedAt": "2026-06-01T06:00:00.000Z", "ageSeconds": 21600,
            "from": "2026-05-30T12:00:00.000Z", "to": "2026-05-31T12:00:00.000Z",
            "compared": 100, "missing": 2, "unexpected": 1, "conflicting": 1,
            "byDataPoint": {
                "attendance": {"missing": 1, "unexpected": 1, "conflicting": 0},
                "polls": {"missing": 1, "unexpected": 0, "conflicting": 0},
                "qna": {"missing": 0, "unexpected": 0, "conflicting": 1}
            },
            "repaired": 2, "repair": "queue", "elapsedSeconds": 12.5
        },
        "unfinishedReconciles": [{"runId": 3, "source": "s3://exports/3.jsonl.gz", "compared": 40}],
        "unfinishedBackfills": [{
            "runId": "b-live", "source": "s3://exports/all.jsonl.gz", "mode": "direct",
            "startedAt": "2026-06-01T09:00:00.000Z", "updatedAt": "2026-06-01T10:00:00.000Z",
            "idleSeconds": 7200, "invocations": 2, "nextOffset": 500,
            "lines": 12, "events": 10, "refused": 1, "malformed": 0,
            "byDataPoint": {"attendance": 7, "qna": 3},
            "lanes": [
                {"lane": 0, "nextOffset": 700, "lines": 7, "events": 6},
                {"lane": 1, "nextOffset": 500, "lines": 5, "events": 4}
            ]
        }],
        "leftOut": [
            "queue figures where QUEUE_URL_PRESENTATION, DLQ_URL_PRESENTATION, QUEUE_URL_POLLS, QUEUE_URL_SURVEYS, DLQ_URL_SURVEYS, QUEUE_URL_QNA, DLQ_URL_QNA are not set"
        ]
    });
    assert_json_eq("status", &to_json(&status), &expected);

    // Without AWS settings: the warehouse part, and what was left out.
    let mut alone = warehouse;
    ops::add_queue_figures(&mut alone, None, None, &BTreeMap::new(), now).await;
    let mut expected_alone = expected.clone();
    for dp in ["attendance", "polls"] {
        expected_alone["dataPoints"][dp]
            .as_object_mut()
            .unwrap()
            .remove("queue");
    }
    expected_alone["leftOut"] =
        json!(["queue figures: no QUEUE_URL_<DATA POINT> or DLQ_URL_<DATA POINT> is set"]);
    assert_json_eq("status without queues", &to_json(&alone), &expected_alone);
}

/// SQS has no way to look at a message without receiving it, and every
/// receive counts: the listing reports each message's receives as they were
/// before it, and hides nothing afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_list_reports_the_receive_counts_as_they_were_and_consumes_nothing() {
    let test = TestDb::new();
    let sqs = sqs().await;
    let dlq = helpers::create_queue(&sqs, "list-dlq").await;
    // Two dead letters from a real loader (malformed, misrouted: with their
    // reason and source attributes), and one moved by a redrive policy
    // (no attributes): an anonymous question over 1 KiB, received twice.
    let loader = shared::handlers::SqsLoader::new(
        DataPoint::Attendance,
        "load-attendance",
        Arc::new(
            shared::store::Database::connect(test.settings(), 1)
                .await
                .unwrap(),
        ),
        sqs.clone(),
        dlq.clone(),
    );
    let misrouted = event(
        "p-1",
        1,
        "PollVoted",
        json!({"pollId": "poll-1", "viewerId": "u-1", "optionIds": ["a"]}),
    );
    loader
        .handle(lambda_event(&["not json", misrouted.as_str()]))
        .await
        .unwrap();
    let anonymous = event(
        "p-1",
        2,
        "QuestionAsked",
        json!({"questionId": "q-1", "viewerId": "u-secret", "text": "é".repeat(900), "anonymous": true}),
    );
    assert!(anonymous.len() > 1024);
    send_all(&sqs, &dlq, &[(anonymous.clone(), None)]).await;
    for _ in 0..2 {
        sqs.receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .unwrap();
    }
    // Receives so far: 2 of each message (those two calls).
    let list = ops::list_dead_letters(&sqs, DataPoint::Attendance, &dlq, 10)
        .await
        .unwrap();
    assert_eq!((list.data_point, list.depth), (DataPoint::Attendance, 3));
    assert_eq!(list.messages.len(), 3);
    for message in &list.messages {
        assert_eq!(message.receive_count, 2, "{message:?}");
        assert!(message.sent_at.as_deref().is_some_and(|t| t.ends_with('Z')));
        assert!(message.body.len() <= 1024);
    }
    let malformed = list.messages.iter().find(|m| m.body == "not json").unwrap();
    assert!(!malformed.reason.is_empty() && !malformed.reason.starts_with("no reason"));
    assert_eq!(malformed.source.as_deref(), Some("load-attendance"));
    let wrong = list
        .messages
        .iter()
        .find(|m| m.body.contains("PollVoted"))
        .unwrap();
    assert!(
        wrong.reason.contains("arrived on the attendance queue"),
        "{}",
        wrong.reason
    );
    assert!(!wrong.body_truncated);
    let question = list
        .messages
        .iter()
        .find(|m| m.body.contains(r#""questionId":"q-1""#))
        .unwrap();
    assert!(question.reason.starts_with("no reason attribute"));
    assert!(question.body_truncated && !question.body.contains("u-secret"));
    // Nothing consumed, nothing hidden: all three are there at once.
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    use aws_sdk_sqs::types::QueueAttributeName as A;
    assert_eq!(attributes[&A::ApproximateNumberOfMessages], "3");
    assert_eq!(attributes[&A::ApproximateNumberOfMessagesNotVisible], "0");
    // A consumer right after sees every message, each with one receive more
    // than before the listing: the peek's own (SQS counts every receive),
    // which the listing took off.
    let after = sqs
        .receive_message()
        .queue_url(&dlq)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(after.len(), 3);
    for message in after {
        let count =
            &message.attributes.unwrap()[&MessageSystemAttributeName::ApproximateReceiveCount];
        assert_eq!(count, "4");
    }
    // Peeking again shows the receives as they were before that peek.
    let again = ops::list_dead_letters(&sqs, DataPoint::Attendance, &dlq, 2)
        .await
        .unwrap();
    assert_eq!(again.messages.len(), 2);
    assert!(again.messages.iter().all(|m| m.receive_count == 4));
}

/// The events a redrive test moves: 25 joins, the odd ones with the
/// loader's reason and source attributes.
fn redrive_messages(stream: &str) -> Vec<(String, Option<&'static str>)> {
    (1..=25)
        .map(|v| {
            let body = joined(stream, v, &format!("u-{v}"), &format!("s-{v}"));
            (body, (v % 2 == 1).then_some("refused: lock wait"))
        })
        .collect()
}

/// Every message of a queue, as (body, reason attribute), sorted.
async fn contents(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<(String, Option<String>)> {
    let mut all: Vec<(String, Option<String>)> = helpers::drain_queue(sqs, url)
        .await
        .into_iter()
        .map(|m| {
            let reason = m
                .message_attributes
                .unwrap_or_default()
                .get("reason")
                .and_then(|v| v.string_value.clone());
            (m.body.unwrap_or_default(), reason)
        })
        .collect();
    all.sort();
    all
}

fn expected_contents(messages: &[(String, Option<&str>)]) -> Vec<(String, Option<String>)> {
    let mut all: Vec<(String, Option<String>)> = messages
        .iter()
        .map(|(b, r)| (b.clone(), r.map(str::to_string)))
        .collect();
    all.sort();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_redrive_moves_every_message_exactly_once() {
    let sqs = sqs().await;
    let queue = helpers::create_queue(&sqs, "redrive-src").await;
    let dlq = helpers::create_queue(&sqs, "redrive-dlq").await;
    let messages = redrive_messages("p-r");
    send_all(&sqs, &dlq, &messages).await;

    // moto (5.2.5, pinned) has no message move task: asked for it alone, the redrive
    // says so; `auto` falls back to the loop.
    let only_task = RedriveOptions {
        method: RedriveMethod::MoveTask,
        ..RedriveOptions::default()
    };
    let refused = ops::redrive(&sqs, DataPoint::Attendance, &dlq, &queue, &only_task)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("message move tasks"),
        "{refused}"
    );

    let dry = RedriveOptions {
        dry_run: true,
        max: Some(20),
        ..RedriveOptions::default()
    };
    let outcome = ops::redrive(&sqs, DataPoint::Attendance, &dlq, &queue, &dry)
        .await
        .unwrap();
    assert_eq!(
        to_json(&outcome),
        json!({"dataPoint": "attendance", "moved": 0, "method": "loop", "dryRun": true, "wouldMove": 20})
    );
    assert_eq!(helpers::queue_length(&sqs, &queue).await, 0);

    let outcome = ops::redrive(
        &sqs,
        DataPoint::Attendance,
        &dlq,
        &queue,
        &RedriveOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        to_json(&outcome),
        json!({"dataPoint": "attendance", "moved": 25, "method": "loop"})
    );
    assert_eq!(helpers::queue_length(&sqs, &dlq).await, 0);
    // Run twice: nothing more to move.
    let again = ops::redrive(
        &sqs,
        DataPoint::Attendance,
        &dlq,
        &queue,
        &RedriveOptions {
            method: RedriveMethod::Loop,
            ..RedriveOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(again.moved, 0);
    // Every message once, body and attributes as they were.
    assert_eq!(contents(&sqs, &queue).await, expected_contents(&messages));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_redrive_run_again_loses_and_duplicates_nothing() {
    let test = TestDb::new();
    let sqs = sqs().await;
    let queue = helpers::create_queue(&sqs, "interrupted-src").await;
    let dlq = helpers::create_queue(&sqs, "interrupted-dlq").await;
    let messages = redrive_messages("p-i");
    send_all(&sqs, &dlq, &messages).await;

    // Stopped between batches (--max 12): those moved are gone from the
    // dead-letter queue; a second run moves the rest, each once.
    let first = ops::redrive(
        &sqs,
        DataPoint::Attendance,
        &dlq,
        &queue,
        &RedriveOptions {
            max: Some(12),
            ..RedriveOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(first.moved, 12);
    assert_eq!(helpers::queue_length(&sqs, &dlq).await, 13);
    let rest = ops::redrive(
        &sqs,
        DataPoint::Attendance,
        &dlq,
        &queue,
        &RedriveOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(rest.moved, 13);
    assert_eq!(contents(&sqs, &queue).await, expected_contents(&messages));

    // Stopped between sending a batch and deleting it (the worst place): the
    // batch is on both queues; the next run, once they are visible again,
    // sends them once more. Nothing is lost, and the loader makes the
    // second copies duplicates with no effect.
    let queue = helpers::create_queue(&sqs, "interrupted-src2").await;
    send_all(&sqs, &dlq, &messages).await;
    let stop = RedriveOptions {
        method: RedriveMethod::Loop,
        visibility_timeout_seconds: 1,
        after_send: Some(Arc::new(|batch| match batch {
            1 => Err("killed after sending the second batch".to_string()),
            _ => Ok(()),
        })),
        ..RedriveOptions::default()
    };
    let stopped = ops::redrive(&sqs, DataPoint::Attendance, &dlq, &queue, &stop)
        .await
        .unwrap_err();
    assert!(stopped.to_string().contains("killed"), "{stopped}");
    assert_eq!(helpers::queue_length(&sqs, &queue).await, 20);
    let resumed = ops::redrive(
        &sqs,
        DataPoint::Attendance,
        &dlq,
        &queue,
        &RedriveOptions {
            visibility_timeout_seconds: 1,
            ..RedriveOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(resumed.moved, 15);
    assert_eq!(helpers::queue_length(&sqs, &dlq).await, 0);
    let on_queue = contents(&sqs, &queue).await;
    assert_eq!(on_queue.len(), 35);
    let mut distinct = on_queue.clone();
    distinct.dedup();
    assert_eq!(distinct, expected_contents(&messages));

    // Loaded as the loader gets them: 25 events, the 10 repeats duplicates.
    let loaders = Loaders::new(&test).await;
    let bodies: Vec<String> = on_queue.into_iter().map(|(body, _)| body).collect();
    assert!(loaders.deliver(&bodies, 10).await.is_empty());
    assert_eq!(test.count("SELECT COUNT(*) FROM event_ledger"), 25);
    assert_eq!(test.count("SELECT COUNT(*) FROM fact_session"), 25);
    let (loaded, duplicates): (u64, u64) = test
        .conn()
        .query_first("SELECT CAST(SUM(events_loaded) AS UNSIGNED), CAST(SUM(duplicates) AS UNSIGNED) FROM load_run")
        .unwrap()
        .unwrap();
    assert_eq!((loaded, duplicates), (25, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_groups_and_filters_correctly() {
    let test = TestDb::new();
    let loaders = Loaders::new(&test).await;
    let now = now();
    let attendance = loaders.get(DataPoint::Attendance);
    let polls = loaders.get(DataPoint::Polls);
    // Attendance's loader: a malformed body seen twice, another one three
    // days ago, a conflict. Polls' loader: a misrouted event and a
    // malformed body. A backfill's refused line.
    for bodies in [vec!["not json"], vec!["not json", r#"{"a": 1}"#]] {
        attendance.handle(lambda_event(&bodies)).await.unwrap();
    }
    let first = joined("p-e", 1, "u-1", "s-1");
    let conflicting = joined("p-e", 1, "u-9", "s-9");
    attendance
        .handle(lambda_event(&[first.as_str()]))
        .await
        .unwrap();
    attendance
        .handle(lambda_event(&[conflicting.as_str()]))
        .await
        .unwrap();
    let misrouted = joined("p-e", 2, "u-2", "s-2");
    polls
        .handle(lambda_event(&[misrouted.as_str(), "{polls broken"]))
        .await
        .unwrap();
    shared::write::record_rejects(
        &mut test.conn(),
        "backfill:r-1",
        [Reject {
            raw: b"refused line",
            reason: "Data too long for column 'text'".into(),
            kind: RejectKind::Refused,
            line: 12,
            identity: Some(("p-b".into(), 3)),
            raw_truncated: false,
        }]
        .iter(),
    )
    .unwrap();
    // A row from before bodies were scrubbed when recorded: an anonymous
    // asker in a body over 1 KiB.
    let anonymous = event(
        "p-1",
        2,
        "QuestionAsked",
        json!({"questionId": "q-1", "viewerId": "u-secret", "text": "x".repeat(2000), "anonymous": true}),
    );
    test.conn()
        .exec_drop(
            "INSERT INTO error_event (source, body_sha256, raw_body, reason, kind) VALUES ('load-attendance', UNHEX(SHA2(?, 256)), ?, 'bad version', 'malformed')",
            (&anonymous, anonymous.as_bytes()),
        )
        .unwrap();
    seen_at(&test, &anonymous, now - 5 * MINUTE);
    seen_at(&test, "not json", now - 10 * MINUTE);
    seen_at(&test, "{polls broken", now - 20 * MINUTE);
    seen_at(&test, "refused line", now - 30 * MINUTE);
    seen_at(&test, &conflicting, now - HOUR);
    seen_at(&test, &misrouted, now - 2 * HOUR);
    seen_at(&test, r#"{"a": 1}"#, now - 3 * DAY);

    let report = |filter: ErrorFilter| {
        tokio::task::block_in_place(|| ops::error_groups(&test.db, &filter)).unwrap()
    };
    let day = ErrorFilter {
        since_ms: now - DAY,
        until_ms: now,
        examples: 2,
        ..ErrorFilter::default()
    };
    let all = report(day.clone());
    let summary: Vec<(String, u64, u64, BTreeMap<String, u64>)> = all
        .reasons
        .iter()
        .map(|g| (g.reason.clone(), g.count, g.seen, g.sources.clone()))
        .collect();
    let sources = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(s, n)| (s.to_string(), *n)).collect()
    };
    assert_eq!(
        summary,
        vec![
            (
                "malformed".to_string(),
                3,
                4,
                sources(&[("load-attendance", 2), ("load-polls", 1)])
            ),
            (
                "conflict".to_string(),
                1,
                1,
                sources(&[("load-attendance", 1)])
            ),
            ("refused".to_string(), 1, 1, sources(&[("backfill:r-1", 1)])),
            (
                "wrong_data_point".to_string(),
                1,
                1,
                sources(&[("load-polls", 1)])
            ),
        ]
    );
    assert_eq!(all.total, 6);
    // The newest examples first, at most the limit, bodies cut and scrubbed.
    let malformed = &all.reasons[0];
    assert_eq!(malformed.last_seen, "2026-06-01T11:55:00.000Z");
    let examples: Vec<(&str, Option<DataPoint>, u64)> = malformed
        .examples
        .iter()
        .map(|e| (e.source.as_str(), e.data_point, e.seen_count))
        .collect();
    assert_eq!(
        examples,
        vec![
            ("load-attendance", Some(DataPoint::Attendance), 1),
            ("load-attendance", Some(DataPoint::Attendance), 2)
        ]
    );
    let newest = &malformed.examples[0];
    assert!(newest.body.len() <= 1024 && newest.body_truncated);
    assert!(!newest.body.contains("u-secret"), "{}", newest.body);
    assert_eq!(newest.detail, "bad version");
    assert_eq!(malformed.examples[1].body, "not json");
    let refused = &all.reasons[2];
    let example = &refused.examples[0];
    assert_eq!(
        (
            example.data_point,
            example.line,
            example.stream_id.as_deref(),
            example.version
        ),
        (None, 12, Some("p-b"), Some(3))
    );
    let conflict = &all.reasons[1].examples[0];
    assert_eq!(conflict.stream_id.as_deref(), Some("p-e"));
    assert!(conflict.body.contains("u-9"));

    // By data point: its loader's rows only.
    let attendance_only = report(ErrorFilter {
        data_point: Some(DataPoint::Attendance),
        ..day.clone()
    });
    let groups: Vec<(&str, u64)> = attendance_only
        .reasons
        .iter()
        .map(|g| (g.reason.as_str(), g.count))
        .collect();
    assert_eq!(groups, vec![("malformed", 2), ("conflict", 1)]);
    assert_eq!(attendance_only.total, 3);
    // By reason and data point.
    let polls_malformed = report(ErrorFilter {
        data_point: Some(DataPoint::Polls),
        reason: Some("malformed".into()),
        ..day.clone()
    });
    assert_eq!(polls_malformed.reasons.len(), 1);
    assert_eq!(polls_malformed.reasons[0].count, 1);
    assert_eq!(polls_malformed.reasons[0].examples[0].body, "{polls broken");
    // Since further back: the old row too; no examples when asked for none.
    let older = report(ErrorFilter {
        since_ms: now - 4 * DAY,
        reason: Some("malformed".into()),
        examples: 0,
        ..day.clone()
    });
    assert_eq!(older.reasons[0].count, 4);
    assert!(older.reasons[0].examples.is_empty());
    assert_eq!(older.since, "2026-05-28T12:00:00.000Z");
    // Nothing in a window without rows.
    let empty = report(ErrorFilter {
        since_ms: now - 60_000,
        ..day
    });
    assert_eq!((empty.total, empty.reasons.len()), (0, 0));
}
