//! The live answers of ANALYTICS.md §4-§7 (timeline, engagement score,
//! freshness, CSV), checked against `expected-live.json`, against the
//! in-memory replay, and rule by rule on small hand-made presentations, all
//! loaded through the real SQS loader handlers.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::{json, Value};
use shared::read::{presentation_report, viewer_list, ViewerQuery};

use crate::analytics::{at, ev, heartbeat, joined, load};
use crate::helpers::{sample_expected_live, TestDb};
use crate::loaders::{sample_lines, Loaders};

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
