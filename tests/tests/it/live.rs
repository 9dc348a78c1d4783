//! The live answers of ANALYTICS.md §4-§7 (timeline, engagement score,
//! freshness, CSV), checked against `expected-live.json`, against the
//! in-memory replay, and rule by rule on small hand-made presentations, all
//! loaded through the real SQS loader handlers.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::{json, Value};
use shared::contract::{parse_event, Timeline};
use shared::read::{presentation_report, timeline, viewer_list, Replay, ViewerQuery};

use shared::contract::DataPoint;
use shared::read::flags::{self, FlagState};

use crate::analytics::{at, ev, heartbeat, joined, load};
use crate::api::{call_as, get, get_ok, sample_api};
use crate::helpers::{sample_expected_live, TestDb};
use crate::loaders::{sample_lines, Loaders};
use integration_tests::harness::{assert_json_eq, to_json};

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
    load_sample_in_halves(&test, 16, || {}).await;
    let mut conn = test.conn();
    let live = sample_expected_live();
    let replay = replay_of(&sample_lines());
    for (id, expected) in live["presentations"].as_object().unwrap() {
        let tenant = expected["timeline"]["tenantId"].as_str().unwrap();
        let actual = to_json(&timeline(&mut conn, tenant, id).unwrap());
        assert_json_eq(&format!("{id}.timeline"), &actual, &expected["timeline"]);
        assert_json_eq(
            &format!("{id}.timeline (replay)"),
            &to_json(&replay.timeline(tenant, id).unwrap()),
            &expected["timeline"],
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
