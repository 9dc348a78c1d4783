//! The live answers of ANALYTICS.md §4-§7 (timeline, engagement score,
//! freshness, CSV), checked against `expected-live.json`, against the
//! in-memory replay, and rule by rule on small hand-made presentations, all
//! loaded through the real SQS loader handlers.

use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use shared::contract::EngagementWeights;
use shared::contract::{parse_event, Timeline};
use shared::read::{
    engagement_weights, presentation_report, set_engagement_weights, timeline, viewer_csv,
    viewer_list, CsvOutcome, Replay, ViewerQuery, ViewerSort,
};

use shared::contract::DataPoint;
use shared::read::flags::{self, FlagState};

use crate::analytics::{at, check_against_replay_weighted, ev, heartbeat, joined, load};
use crate::api::{call_as, event_json, get, get_ok, lambda_event, sample_api};
use crate::helpers::{sample_expected_live, sample_weights, set_sample_weights, TestDb};
use crate::loaders::{sample_lines, Loaders};
use aws_lambda_events::encodings::Body;
use integration_tests::harness::{all_viewers, assert_json_eq, to_json};

// ---------------------------------------------------------------------------
// §6 Freshness
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_through_is_the_sample_s_latest_event() {
    let mut lines = sample_lines();
    lines.shuffle(&mut rand::rngs::StdRng::seed_from_u64(6));
    let test = TestDb::new();
    Loaders::new(&test).await.deliver(&lines, 97).await;
    let mut conn = test.conn();
    let live = sample_expected_live();
    for (id, expected) in live["presentations"].as_object().unwrap() {
        let tenant = expected["timeline"]["tenantId"].as_str().unwrap();
        let report = presentation_report(&mut conn, tenant, id).unwrap();
        assert_eq!(json!(report.data_through), expected["dataThrough"], "{id}");
        // Again, from the cache.
        let report = presentation_report(&mut conn, tenant, id).unwrap();
        assert_eq!(json!(report.data_through), expected["dataThrough"], "{id}");
        let list = viewer_list(&mut conn, tenant, id, &ViewerQuery::default()).unwrap();
        assert_eq!(json!(list.data_through), expected["dataThrough"], "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_through_counts_every_accepted_analytics_event_and_nothing_else() {
    let test = TestDb::new();
    let mut conn = test.conn();
    let through = |conn: &mut mysql::PooledConn| -> Value {
        json!(presentation_report(conn, "acme", "p").unwrap().data_through)
    };
    load(&test, &[joined("p", 1, 0, "u-a", "s-a", json!({}))]).await;
    assert_eq!(through(&mut conn), json!(at(0)));

    // A vote for a poll not created yet does not count in any figure, but
    // the data reaches it.
    let vote = ev(
        "p",
        2,
        &at(90),
        "PollVoted",
        json!({"pollId": "nope", "viewerId": "u-a", "optionIds": ["x"]}),
    );
    load(&test, &[vote]).await;
    assert_eq!(through(&mut conn), json!(at(90)));

    // An earlier event arriving later changes nothing; a later one moves it.
    load(&test, &[heartbeat("p", 3, 30, "u-a", "s-a")]).await;
    assert_eq!(through(&mut conn), json!(at(90)));

    // Not analytics, a conflicting copy and a malformed line never count.
    let not_analytics = ev("p", 4, &at(500), "SlideChanged", json!({"slide": 3}));
    let conflict = heartbeat("p", 3, 400, "u-a", "s-a");
    let malformed = r#"{"streamId": "p", "version": 9, "occurredAt": "#.to_string();
    let failures = Loaders::new(&test)
        .await
        .deliver(&[not_analytics, conflict, malformed], 10)
        .await;
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(through(&mut conn), json!(at(90)));

    // Another tenant's stream of the same id is another presentation.
    let other = crate::analytics::ev_of(
        "globex",
        "p",
        1,
        &at(9000),
        "ViewerJoined",
        json!({"viewerId": "u-a", "sessionId": "s-a"}),
    );
    load(&test, &[other]).await;
    assert_eq!(through(&mut conn), json!(at(90)));
    assert_eq!(
        json!(
            presentation_report(&mut conn, "globex", "p")
                .unwrap()
                .data_through
        ),
        json!(at(9000))
    );
}

// ---------------------------------------------------------------------------
// The sample's golden answers and the replay
// ---------------------------------------------------------------------------

/// The sample, shuffled, loaded in two halves through the loaders.
async fn load_sample_in_halves(test: &TestDb, seed: u64, between: impl FnOnce()) {
    let mut lines = sample_lines();
    lines.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let loaders = Loaders::new(test).await;
    let (first, second) = lines.split_at(lines.len() / 2);
    loaders.deliver(first, 97).await;
    between();
    loaders.deliver(second, 97).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_gives_the_live_answers() {
    let test = TestDb::new();
    // globex's weights are set half-way through the load: every answer
    // after uses them, whatever was loaded before.
    load_sample_in_halves(&test, 16, || set_sample_weights(&mut test.conn())).await;
    let mut conn = test.conn();
    let live = sample_expected_live();
    let mut replay = replay_of(&sample_lines());
    for (tenant, weights) in sample_weights() {
        replay.set_weights(&tenant, weights);
        let settings = engagement_weights(&mut conn, &tenant).unwrap();
        assert_eq!(settings.weights, weights, "{tenant}");
        assert_eq!(settings.default, weights == EngagementWeights::DEFAULT);
    }
    for (id, expected) in live["presentations"].as_object().unwrap() {
        let tenant = expected["timeline"]["tenantId"].as_str().unwrap();
        let actual = to_json(&timeline(&mut conn, tenant, id).unwrap());
        assert_json_eq(&format!("{id}.timeline"), &actual, &expected["timeline"]);
        assert_json_eq(
            &format!("{id}.viewers"),
            &to_json(&all_viewers(&mut conn, tenant, id)),
            &expected["viewers"],
        );
        // The reference computes the same.
        assert_json_eq(
            &format!("{id}.timeline (replay)"),
            &to_json(&replay.timeline(tenant, id).unwrap()),
            &expected["timeline"],
        );
        assert_json_eq(
            &format!("{id}.viewers (replay)"),
            &to_json(&replay.viewers(tenant, id).unwrap()),
            &expected["viewers"],
        );
        // Sorted by score: score descending, ties by viewer id.
        let query = ViewerQuery {
            sort: ViewerSort::Score,
            limit: 1000,
            ..ViewerQuery::default()
        };
        let sorted = viewer_list(&mut conn, tenant, id, &query).unwrap();
        let mut by_score = expected["viewers"].as_array().unwrap().clone();
        by_score.sort_by_key(|v| -v["engagementScore"].as_i64().unwrap());
        assert_json_eq(
            &format!("{id}.viewers by score"),
            &to_json(&sorted.viewers),
            &Value::Array(by_score),
        );
    }
}

/// The replay of `lines` (the unparseable ones left out).
pub(crate) fn replay_of(lines: &[String]) -> Replay {
    let mut replay = Replay::new();
    for line in lines {
        if let Ok(event) = parse_event(line) {
            replay.add(&event);
        }
    }
    replay
}

// ---------------------------------------------------------------------------
// §4 Timeline, rule by rule
// ---------------------------------------------------------------------------

fn ended(stream: &str, version: i64, second: i64) -> String {
    ev(stream, version, &at(second), "PresentationEnded", json!({}))
}

fn left(stream: &str, version: i64, second: i64, viewer: &str, session: &str) -> String {
    ev(
        stream,
        version,
        &at(second),
        "ViewerLeft",
        json!({"viewerId": viewer, "sessionId": session}),
    )
}

/// Loads `lines`, then checks the timeline equals the replay's and returns it.
async fn timeline_of(lines: &[String]) -> Timeline {
    let test = TestDb::new();
    load(&test, lines).await;
    let actual = timeline(&mut test.conn(), "acme", "p").unwrap();
    let expected = replay_of(lines).timeline("acme", "p").unwrap();
    assert_json_eq("timeline", &to_json(&actual), &to_json(&expected));
    actual
}

fn figures(timeline: &Timeline) -> Vec<(i64, i64, i64)> {
    timeline
        .buckets
        .iter()
        .map(|b| (b.viewers, b.joined, b.left))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeline_without_counted_sessions_is_empty() {
    // A join alone and a session ending where it starts count no time.
    let t = timeline_of(&[
        joined("p", 1, 0, "u-a", "s-a", json!({})),
        joined("p", 2, 10, "u-b", "s-b", json!({})),
        left("p", 3, 10, "u-b", "s-b"),
    ])
    .await;
    assert_eq!(
        to_json(&t),
        json!({"presentationId": "p", "tenantId": "acme", "bucketSeconds": 60,
               "from": null, "to": null, "atEnd": 0, "dataThrough": at(10), "buckets": []})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presentation_longer_than_500_minutes_has_wider_buckets() {
    // 10:00:30 to 18:21:00 (501 minutes of one-minute buckets, rounded
    // out): five-minute buckets, from 10:00 to 18:25.
    let t = timeline_of(&[
        joined("p", 1, 30, "u-a", "s-a", json!({})),
        heartbeat("p", 2, 501 * 60, "u-a", "s-a"),
        joined("p", 3, 600, "u-b", "s-b", json!({})),
        heartbeat("p", 4, 900, "u-b", "s-b"),
    ])
    .await;
    assert_eq!(t.bucket_seconds, 300);
    assert_eq!(
        (t.from.as_deref(), t.to.as_deref()),
        (Some(at(0).as_str()), Some(at(505 * 60).as_str()))
    );
    assert_eq!(t.buckets.len(), 101);
    // u-b from 10:10 to 10:15: in the third bucket only, leaving at its end.
    assert_eq!(
        figures(&t)[..4],
        [(1, 1, 0), (1, 0, 0), (2, 1, 1), (1, 0, 0)]
    );
    // A presentation of exactly 500 minutes keeps one-minute buckets.
    let t = timeline_of(&[
        joined("p", 1, 0, "u-a", "s-a", json!({})),
        heartbeat("p", 2, 500 * 60, "u-a", "s-a"),
    ])
    .await;
    assert_eq!((t.bucket_seconds, t.buckets.len()), (60, 500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_presentation_cuts_off_a_minute_before_its_latest_data() {
    // No PresentationEnded: the latest last end is 10:10:00, the cut-off
    // 10:09:00. u-a left at 10:05 (left), u-b last seen at 10:09:00 (at the
    // cut-off: still there), u-c at 10:10 (there), u-d last seen at
    // 10:08:59.999 without a ViewerLeft (gone).
    let d_end = ev(
        "p",
        9,
        &shared::contract::format_time(1_631_268_000_000 + 539_999),
        "ViewerHeartbeat",
        json!({"viewerId": "u-d", "sessionId": "s-d"}),
    );
    let lines = [
        joined("p", 1, 0, "u-a", "s-a", json!({})),
        left("p", 2, 300, "u-a", "s-a"),
        joined("p", 3, 60, "u-b", "s-b", json!({})),
        heartbeat("p", 4, 540, "u-b", "s-b"),
        joined("p", 5, 120, "u-c", "s-c", json!({})),
        heartbeat("p", 6, 600, "u-c", "s-c"),
        joined("p", 7, 180, "u-d", "s-d", json!({})),
        d_end,
    ];
    let t = timeline_of(&lines).await;
    assert_eq!(t.at_end, 2);
    assert_eq!(t.to.as_deref(), Some(at(600).as_str()));
    let lefts: Vec<i64> = t.buckets.iter().map(|b| b.left).collect();
    assert_eq!(lefts, [0, 0, 0, 0, 1, 0, 0, 0, 1, 0]);
    // u-b's last end is 10:09:00 exactly: not in the last minute.
    let viewers: Vec<i64> = t.buckets.iter().map(|b| b.viewers).collect();
    assert_eq!(viewers, [1, 2, 3, 4, 4, 3, 3, 3, 3, 1]);

    // Once it ends, the cut-off is endedAt: whoever is there at the end.
    let mut ended_lines = lines.to_vec();
    ended_lines.push(ended("p", 10, 600));
    let t = timeline_of(&ended_lines).await;
    assert_eq!(t.at_end, 1);
    let lefts: Vec<i64> = t.buckets.iter().map(|b| b.left).collect();
    assert_eq!(lefts, [0, 0, 0, 0, 1, 0, 0, 0, 2, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_ending_on_a_bucket_boundary_are_not_in_the_next_bucket() {
    // u-a 10:00:00-10:02:00, u-b 10:02:00-10:03:00 (joins as u-a leaves),
    // u-a again 10:02:30-10:04:00 after a gap; ended 10:04.
    let t = timeline_of(&[
        joined("p", 1, 0, "u-a", "s-a1", json!({})),
        left("p", 2, 120, "u-a", "s-a1"),
        joined("p", 3, 120, "u-b", "s-b", json!({})),
        left("p", 4, 180, "u-b", "s-b"),
        joined("p", 5, 150, "u-a", "s-a2", json!({})),
        heartbeat("p", 6, 240, "u-a", "s-a2"),
        ended("p", 7, 240),
    ])
    .await;
    assert_eq!(
        (t.from.as_deref(), t.to.as_deref()),
        (Some(at(0).as_str()), Some(at(240).as_str()))
    );
    // u-a's first session ends at 10:02:00 exactly: not in the third
    // minute by it (the second one is); u-b's ends at 10:03:00 exactly: in
    // the third minute, leaving there, and not in the fourth; u-a is there
    // at the end.
    assert_eq!(figures(&t), [(1, 1, 0), (1, 0, 0), (2, 1, 1), (1, 0, 0)]);
    assert_eq!(t.at_end, 1);
}

// ---------------------------------------------------------------------------
// Through the API
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_the_timeline_under_the_attendance_flag() {
    let (test, api) = sample_api().await;
    let live = sample_expected_live();
    for (id, expected) in live["presentations"].as_object().unwrap() {
        let tenant = expected["timeline"]["tenantId"].as_str().unwrap();
        let path = format!("/tenants/{tenant}/presentations/{id}/timeline");
        assert_json_eq(&path, &get_ok(&api, &path, "").await, &expected["timeline"]);
    }
    let path = "/tenants/acme/presentations/prs-acm-0000/timeline";
    // The same rules as every route: 401, 403, 404 (another tenant's
    // presentation too), 405, 400 for a parameter it does not take.
    assert_eq!(call_as(&api, "GET", path, "", None).await.0, 401);
    assert_eq!(call_as(&api, "GET", path, "", Some("globex")).await.0, 403);
    for missing in [
        "/tenants/acme/presentations/prs-glo-0001/timeline",
        "/tenants/acme/presentations/nope/timeline",
    ] {
        let (status, body) = get(&api, missing, "").await;
        assert_eq!(status, 404, "{body}");
    }
    assert_eq!(call_as(&api, "POST", path, "", Some("acme")).await.0, 405);
    let (status, body) = get(&api, path, "limit=5").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("shadow"), "{body}");
    assert_eq!(get(&api, path, "shadow=maybe").await.0, 400);

    // Attendance off: the figures are left out; shadow: served on request.
    let expected = &live["presentations"]["prs-acm-0000"]["timeline"];
    flags::set_flag(
        &mut test.conn(),
        "acme",
        DataPoint::Attendance,
        FlagState::Off,
    )
    .unwrap();
    let body = get_ok(&api, path, "shadow=true").await;
    assert_eq!(
        body,
        json!({"presentationId": "prs-acm-0000", "tenantId": "acme",
               "dataThrough": expected["dataThrough"]})
    );
    flags::set_flag(
        &mut test.conn(),
        "acme",
        DataPoint::Attendance,
        FlagState::Shadow,
    )
    .unwrap();
    assert!(get_ok(&api, path, "").await.get("buckets").is_none());
    assert_eq!(&get_ok(&api, path, "shadow=true").await, expected);
    // Other data points' flags do not matter to the timeline.
    flags::set_flag(&mut test.conn(), "acme", DataPoint::Polls, FlagState::Off).unwrap();
    assert_eq!(&get_ok(&api, path, "shadow=true").await, expected);
}

// ---------------------------------------------------------------------------
// §5 Engagement, rule by rule
// ---------------------------------------------------------------------------

fn started(stream: &str, version: i64, second: i64) -> String {
    ev(
        stream,
        version,
        &at(second),
        "PresentationStarted",
        json!({}),
    )
}

/// Loads `lines` with the tenant's `weights` (defaults when `None`), checks
/// the rows equal the replay's, and returns viewer id → (upvotesGiven,
/// engagementScore).
async fn scores_of(
    lines: &[String],
    weights: Option<EngagementWeights>,
) -> std::collections::BTreeMap<String, (i64, i64)> {
    let test = TestDb::new();
    load(&test, lines).await;
    let mut conn = test.conn();
    let mut replay = replay_of(lines);
    if let Some(weights) = weights {
        set_engagement_weights(&mut conn, "acme", weights).unwrap();
        replay.set_weights("acme", weights);
    }
    let rows = all_viewers(&mut conn, "acme", "p");
    assert_json_eq(
        "viewers",
        &to_json(&rows),
        &to_json(&replay.viewers("acme", "p").unwrap()),
    );
    rows.into_iter()
        .map(|r| (r.viewer_id, (r.upvotes_given, r.engagement_score)))
        .collect()
}

fn weights(watch: u8, polls: u8, surveys: u8, qna: u8) -> EngagementWeights {
    EngagementWeights {
        watch,
        polls,
        surveys,
        qna,
    }
}

fn poll(stream: &str, version: i64, id: &str) -> String {
    ev(
        stream,
        version,
        &at(1),
        "PollCreated",
        json!({"pollId": id, "question": "?", "multipleChoice": false,
               "options": [{"id": "a", "text": "A"}]}),
    )
}

fn vote(stream: &str, version: i64, poll: &str, viewer: &str) -> String {
    ev(
        stream,
        version,
        &at(2),
        "PollVoted",
        json!({"pollId": poll, "viewerId": viewer, "optionIds": ["a"]}),
    )
}

fn asked(stream: &str, version: i64, question: &str, viewer: &str) -> String {
    ev(
        stream,
        version,
        &at(3),
        "QuestionAsked",
        json!({"questionId": question, "viewerId": viewer, "text": "why?", "anonymous": false}),
    )
}

fn upvoted(stream: &str, version: i64, question: &str, viewer: &str) -> String {
    ev(
        stream,
        version,
        &at(4),
        "QuestionUpvoted",
        json!({"questionId": question, "viewerId": viewer}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_without_data_are_left_out_of_the_score() {
    // Started and ended: L = 200 s. u-a watches 100 s, u-b 200 s. Two
    // polls, u-a answers one; no survey; no question asked, but an upvote
    // of a question never asked (it does not count).
    let lines = vec![
        started("p", 1, 0),
        ended("p", 2, 200),
        joined("p", 3, 0, "u-a", "s-a", json!({})),
        heartbeat("p", 4, 100, "u-a", "s-a"),
        joined("p", 5, 0, "u-b", "s-b", json!({})),
        heartbeat("p", 6, 300, "u-b", "s-b"),
        poll("p", 7, "p1"),
        poll("p", 8, "p2"),
        vote("p", 9, "p1", "u-a"),
        upvoted("p", 10, "q-missing", "u-a"),
    ];
    // Defaults: watch 50 and polls 20 only: u-a (50·½ + 20·½)/70 = 50,
    // u-b 50/70 = 71.43 → 71.
    let scores = scores_of(&lines, None).await;
    assert_eq!(scores["u-a"], (0, 50));
    assert_eq!(scores["u-b"], (0, 71));

    // The question arrives, asked by u-b, upvoted by u-a: qna counts now.
    // u-a: (50·½ + 20·½ + 15·½)/85 = 50; u-b: (50 + 0 + 15·½)/85 = 67.6 → 68.
    let mut more = lines.clone();
    more.push(asked("p", 11, "q-missing", "u-b"));
    let scores = scores_of(&more, None).await;
    assert_eq!(scores["u-a"], (1, 50));
    assert_eq!(scores["u-b"], (0, 68));

    // Without startedAt, L is the span of the counted sessions (300 s):
    // u-a 100/300 watch; with only watch weighed, 33.3 → 33.
    let live: Vec<String> = lines[1..].to_vec();
    let scores = scores_of(&live, Some(weights(1, 0, 0, 0))).await;
    // Clamped at endedAt (200 s): the span is 200 s, so ½ → 50.
    assert_eq!(scores["u-a"], (0, 50));
    let no_end: Vec<String> = lines[2..].to_vec();
    let scores = scores_of(&no_end, Some(weights(1, 0, 0, 0))).await;
    assert_eq!(scores["u-a"], (0, 33));
    assert_eq!(scores["u-b"], (0, 100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_adding_up_to_0_over_the_included_components_score_0() {
    // Only qna is weighed, and no question was asked: nothing weighs.
    let lines = vec![
        joined("p", 1, 0, "u-a", "s-a", json!({})),
        heartbeat("p", 2, 60, "u-a", "s-a"),
        poll("p", 3, "p1"),
        vote("p", 4, "p1", "u-a"),
    ];
    let scores = scores_of(&lines, Some(weights(0, 0, 0, 100))).await;
    assert_eq!(scores["u-a"], (0, 0));
    // All four at 0 cannot be set: at least one must weigh.
    let test = TestDb::new();
    let err = set_engagement_weights(&mut test.conn(), "acme", weights(0, 0, 0, 0)).unwrap_err();
    assert!(err.to_string().contains("at least one"), "{err}");
    let err = set_engagement_weights(&mut test.conn(), "acme", weights(101, 0, 0, 0)).unwrap_err();
    assert!(err.to_string().contains("0 to 100"), "{err}");
    assert!(
        engagement_weights(&mut test.conn(), "acme")
            .unwrap()
            .default
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_score_of_exactly_one_half_rounds_away_from_zero() {
    // L = 200 s; u-a watches 101 s: 100 · 101/200 = 50.5 → 51 (not 50);
    // u-b 100.999 s: 50.4995 → 50; u-c 1 s: 0.5 → 1.
    let ms = |s: i64, ms: i64| shared::contract::format_time(1_631_268_000_000 + s * 1000 + ms);
    let beat = |version: i64, at: String, viewer: &str, session: &str| {
        ev(
            "p",
            version,
            &at,
            "ViewerHeartbeat",
            json!({"viewerId": viewer, "sessionId": session}),
        )
    };
    let lines = vec![
        started("p", 1, 0),
        ended("p", 2, 200),
        joined("p", 3, 0, "u-a", "s-a", json!({})),
        beat(4, ms(101, 0), "u-a", "s-a"),
        joined("p", 5, 0, "u-b", "s-b", json!({})),
        beat(6, ms(100, 999), "u-b", "s-b"),
        joined("p", 7, 0, "u-c", "s-c", json!({})),
        beat(8, ms(1, 0), "u-c", "s-c"),
    ];
    let scores = scores_of(&lines, Some(weights(7, 0, 0, 0))).await;
    assert_eq!(scores["u-a"], (0, 51));
    assert_eq!(scores["u-b"], (0, 50));
    assert_eq!(scores["u-c"], (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_are_the_tenant_s_own() {
    let test = TestDb::new();
    let mut conn = test.conn();
    let set = set_engagement_weights(&mut conn, "acme", weights(1, 2, 3, 4)).unwrap();
    assert_eq!(
        to_json(&set),
        json!({"tenantId": "acme", "weights": {"watch": 1, "polls": 2, "surveys": 3, "qna": 4},
               "default": false})
    );
    assert_eq!(engagement_weights(&mut conn, "acme").unwrap(), set);
    // Another tenant (even one differing by case or a blank) keeps the defaults.
    for other in ["globex", "ACME", "acme "] {
        let got = engagement_weights(&mut conn, other).unwrap();
        assert_eq!(
            (got.weights, got.default),
            (EngagementWeights::DEFAULT, true)
        );
    }
    // Setting again replaces; the defaults may be set explicitly.
    let again = set_engagement_weights(&mut conn, "acme", EngagementWeights::DEFAULT).unwrap();
    assert_eq!(
        (again.weights, again.default),
        (EngagementWeights::DEFAULT, false)
    );
    assert!(engagement_weights(&mut conn, "").is_err());
}

// ---------------------------------------------------------------------------
// Any order, any duplication: the replay's answers
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    /// A subset of the sample with some lines repeated, shuffled and loaded
    /// in any batching, under any weights, gives the replay's timelines and
    /// viewer rows (scores included), as every other answer.
    #[test]
    fn timelines_and_scores_after_any_shuffle_and_duplication_are_the_replays(
        seed in any::<u64>(),
        keep_percent in 20u32..100,
        repeat_percent in 0u32..30,
        batch_size in 20usize..400,
        acme in (0u8..=100, 0u8..=100, 0u8..=100, 0u8..=100),
        globex in (0u8..=100, 0u8..=100, 0u8..=100, 1u8..=100),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut lines: Vec<String> = Vec::new();
        for line in sample_lines() {
            if rng.random_range(0..100) < keep_percent {
                if rng.random_range(0..100) < repeat_percent {
                    lines.push(line.clone());
                }
                lines.push(line);
            }
        }
        lines.shuffle(&mut rng);
        let mut weights = vec![("globex", weights(globex.0, globex.1, globex.2, globex.3))];
        let acme = weights_of(acme);
        if acme.invalid().is_none() {
            weights.push(("acme", acme));
        }
        check_against_replay_weighted(&runtime, &lines, batch_size, &weights);
    }
}

fn weights_of((watch, polls, surveys, qna): (u8, u8, u8, u8)) -> EngagementWeights {
    weights(watch, polls, surveys, qna)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_scores_only_when_all_four_data_points_are_served() {
    let (test, api) = sample_api().await;
    let live = sample_expected_live();
    for (id, expected) in live["presentations"].as_object().unwrap() {
        let tenant = expected["timeline"]["tenantId"].as_str().unwrap();
        let path = format!("/tenants/{tenant}/presentations/{id}/viewers");
        let body = get_ok(&api, &path, "sort=score&limit=1000").await;
        let mut by_score = expected["viewers"].as_array().unwrap().clone();
        by_score.sort_by_key(|v| -v["engagementScore"].as_i64().unwrap());
        assert_json_eq(&path, &body["viewers"], &Value::Array(by_score));
        assert_eq!(body["dataThrough"], expected["dataThrough"]);
    }
    let path = "/tenants/acme/presentations/prs-acm-0000/viewers";
    // One data point in shadow: no score (and no sorting by it) unless
    // shadow sections are asked for; qna's upvotesGiven goes with qna.
    flags::set_flag(&mut test.conn(), "acme", DataPoint::Qna, FlagState::Shadow).unwrap();
    let body = get_ok(&api, path, "").await;
    for row in body["viewers"].as_array().unwrap() {
        assert!(row.get("engagementScore").is_none(), "{row}");
        assert!(row.get("upvotesGiven").is_none(), "{row}");
        assert!(row.get("pollsAnswered").is_some(), "{row}");
    }
    let (status, body) = get(&api, path, "sort=score").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().starts_with("sort: score"),
        "{body}"
    );
    let body = get_ok(&api, path, "sort=score&shadow=true").await;
    assert!(body["viewers"][0]["engagementScore"].is_i64(), "{body}");
    // Polls off: the score goes even with shadow sections; upvotes stay.
    flags::set_flag(&mut test.conn(), "acme", DataPoint::Qna, FlagState::On).unwrap();
    flags::set_flag(&mut test.conn(), "acme", DataPoint::Polls, FlagState::Off).unwrap();
    let body = get_ok(&api, path, "shadow=true").await;
    for row in body["viewers"].as_array().unwrap() {
        assert!(row.get("engagementScore").is_none(), "{row}");
        assert!(row.get("upvotesGiven").is_some(), "{row}");
    }
    // globex's flags are its own.
    let body = get_ok(
        &api,
        "/tenants/globex/presentations/prs-glo-0001/viewers",
        "sort=score",
    )
    .await;
    assert!(body["viewers"][0]["engagementScore"].is_i64(), "{body}");
    // A bad sort still names what is accepted.
    let (status, body) = get(&api, path, "sort=scores").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("score"), "{body}");
}

// ---------------------------------------------------------------------------
// §7 CSV
// ---------------------------------------------------------------------------

fn csv_of(conn: &mut mysql::PooledConn, tenant: &str, id: &str, query: &ViewerQuery) -> String {
    let mut out = Vec::new();
    let outcome = viewer_csv(conn, tenant, id, query, None, &mut out).unwrap();
    assert!(matches!(outcome, CsvOutcome::Complete(_)), "{outcome:?}");
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_s_csv_by_score_is_the_golden_one_byte_for_byte() {
    let test = TestDb::new();
    load_sample_in_halves(&test, 7, || set_sample_weights(&mut test.conn())).await;
    let mut conn = test.conn();
    let live = sample_expected_live();
    let by_score = ViewerQuery {
        sort: ViewerSort::Score,
        // Paging does not apply to CSV.
        limit: 1,
        offset: 3,
        ..ViewerQuery::default()
    };
    for (id, expected) in live["presentations"].as_object().unwrap() {
        let tenant = expected["timeline"]["tenantId"].as_str().unwrap();
        let csv = csv_of(&mut conn, tenant, id, &by_score);
        assert_eq!(csv, expected["csvByScore"].as_str().unwrap(), "{id}");
    }
    // No matching row: the header alone.
    let none = ViewerQuery {
        device: Some("smartwatch".into()),
        ..ViewerQuery::default()
    };
    assert_eq!(
        csv_of(&mut conn, "acme", "prs-acm-0000", &none),
        shared::contract::VIEWER_CSV_HEADER
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_fields_are_quoted_and_guarded_against_formulas() {
    let test = TestDb::new();
    load(
        &test,
        &[
            joined(
                "p",
                1,
                0,
                "u-a",
                "s-a",
                json!({"profile": {"name": "=HYPERLINK(\"http://x\",\"y\")", "email": "a,b@x.com",
                       "department": "-Sales"}, "location": {"country": "+fr"}}),
            ),
            heartbeat("p", 2, 60, "u-a", "s-a"),
            joined(
                "p",
                3,
                0,
                "u-b",
                "s-b",
                json!({"profile": {"name": "two\nlines", "email": "@b", "department": "R\"D"}}),
            ),
            heartbeat("p", 4, 30, "u-b", "s-b"),
            joined(
                "p",
                5,
                0,
                "u-c",
                "s-c",
                json!({"profile": {"name": "\tTab"}}),
            ),
        ],
    )
    .await;
    let csv = csv_of(&mut test.conn(), "acme", "p", &ViewerQuery::default());
    let lines: Vec<&str> = csv.split_inclusive("\r\n").collect();
    assert_eq!(lines[0], shared::contract::VIEWER_CSV_HEADER);
    assert_eq!(
        lines[1],
        "u-a,\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",\"a,b@x.com\",'-Sales,'+FR,unknown,1,60,2021-09-10T10:00:00.000Z,2021-09-10T10:01:00.000Z,0,0,0,0,100\r\n"
    );
    assert_eq!(
        lines[2],
        "u-b,\"two\nlines\",'@b,\"R\"\"D\",unknown,unknown,1,30,2021-09-10T10:00:00.000Z,2021-09-10T10:00:30.000Z,0,0,0,0,50\r\n"
    );
    // Nulls are empty fields.
    assert_eq!(
        lines[3],
        "u-c,'\tTab,,,unknown,unknown,1,0,2021-09-10T10:00:00.000Z,2021-09-10T10:00:00.000Z,0,0,0,0,0\r\n"
    );
    assert_eq!(lines.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_csv_inline_and_413_beyond_10000_rows() {
    let (test, api) = sample_api().await;
    let live = sample_expected_live();
    for (id, expected) in live["presentations"].as_object().unwrap() {
        let tenant = expected["timeline"]["tenantId"].as_str().unwrap();
        let path = format!("/tenants/{tenant}/presentations/{id}/viewers");
        let response = api
            .handle(lambda_event(event_json(
                "GET",
                &path,
                "format=CSV&sort=score",
                Some(tenant),
            )))
            .await
            .unwrap();
        assert_eq!(response.status_code, 200);
        assert_eq!(response.headers["content-type"], "text/csv; charset=utf-8");
        let Some(Body::Text(body)) = &response.body else {
            panic!("a text body")
        };
        assert_eq!(body, expected["csvByScore"].as_str().unwrap(), "{id}");
    }
    let path = "/tenants/acme/presentations/prs-acm-0000/viewers";
    let (status, body) = get(&api, path, "format=xml").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("csv"), "{body}");
    // With a data point left out, no CSV (its columns are every data point's).
    flags::set_flag(&mut test.conn(), "acme", DataPoint::Surveys, FlagState::Off).unwrap();
    let (status, body) = get(&api, path, "format=csv").await;
    assert_eq!(status, 400, "{body}");

    // Beyond 10,000 matching rows: 413 naming the export route; a filter
    // narrowing it under the limit is answered.
    crate::analytics::write_large_presentation(&test, 10_001);
    let big = "/tenants/bigcorp/presentations/big/viewers";
    let (status, body) = get(&api, big, "format=csv").await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("/viewers/export"),
        "{body}"
    );
    let response = api
        .handle(lambda_event(event_json(
            "GET",
            big,
            "format=csv&device=tv",
            Some("bigcorp"),
        )))
        .await
        .unwrap();
    assert_eq!(response.status_code, 200);
    let Some(Body::Text(body)) = &response.body else {
        panic!("a text body")
    };
    assert_eq!(body.matches("\r\n").count(), 1 + 2000);
}
