//! The analytics answers computed by the database (`shared::read`),
//! checked against the golden sample answers, against the in-memory replay on
//! random subsets of the sample, and rule by rule on small hand-made event
//! sets, all loaded through the real SQS loader handlers.

use std::collections::BTreeSet;

use mysql::prelude::Queryable;
use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use shared::contract::parse_event;
use shared::contract::{PresentationRow, ViewerRow};
use shared::read::Replay;
use shared::read::{
    parse_date, parse_date_to, parse_limit, parse_offset, presentation_list, presentation_report,
    refresh_summaries, viewer_list, AnalyticsError, PresentationQuery, PresentationSort,
    ViewerQuery, ViewerSort,
};

use crate::helpers::{self, sample_expected, TestDb};
use crate::loaders::{sample_lines, Loaders};
use integration_tests::harness::{
    all_presentations, all_viewers, as_of, assert_golden_answers, assert_json_eq, to_json,
};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// One event document as the application publishes it.
pub(crate) fn ev(stream: &str, version: i64, at: &str, event_type: &str, data: Value) -> String {
    ev_of("acme", stream, version, at, event_type, data)
}

pub(crate) fn ev_of(
    tenant: &str,
    stream: &str,
    version: i64,
    at: &str,
    event_type: &str,
    data: Value,
) -> String {
    json!({
        "_id": {"$oid": format!("6140a1e5c2a4b3d2{:08x}", version)},
        "streamId": stream, "version": version, "type": event_type,
        "occurredAt": {"$date": at}, "tenantId": tenant, "data": data
    })
    .to_string()
}

/// `2021-09-10T10:00:00Z` plus `seconds`.
pub(crate) fn at(seconds: i64) -> String {
    shared::contract::format_time(1_631_268_000_000 + seconds * 1000)
}

pub(crate) async fn load(test: &TestDb, lines: &[String]) {
    let failures = Loaders::new(test).await.deliver(lines, 50).await;
    assert!(failures.is_empty(), "{failures:?}");
}

fn ids(rows: &[ViewerRow]) -> Vec<&str> {
    rows.iter().map(|r| r.viewer_id.as_str()).collect()
}

fn pids(rows: &[PresentationRow]) -> Vec<&str> {
    rows.iter().map(|r| r.presentation_id.as_str()).collect()
}

// ---------------------------------------------------------------------------
// Golden answers and equality with the replay
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_gives_the_golden_answers() {
    let mut lines = sample_lines();
    lines.shuffle(&mut rand::rngs::StdRng::seed_from_u64(20_210_910));
    let test = TestDb::new();
    Loaders::new(&test).await.deliver(&lines, 97).await;
    let mut conn = test.conn();
    assert_golden_answers(&mut conn);
    // Asked again, each report comes from the cache and is the same.
    for (id, report) in sample_expected()["reports"].as_object().expect("reports") {
        let tenant = report["tenantId"].as_str().expect("tenantId");
        let cached = presentation_report(&mut conn, tenant, id).expect("cached report");
        assert_json_eq(
            &format!("cached reports.{id}"),
            &as_of(to_json(&cached), report),
            report,
        );
    }

    // A cached report is the computed one.
    let id = "prs-glo-0001";
    let cached = presentation_report(&mut conn, "globex", id).expect("report");
    conn.query_drop("DELETE FROM agg_presentation_report")
        .unwrap();
    assert_eq!(
        presentation_report(&mut conn, "globex", id).expect("report"),
        cached
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poison_export_through_the_loaders_gives_its_golden_answers() {
    let text = std::fs::read_to_string(helpers::poison_path()).expect("poison.jsonl");
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.shuffle(&mut rand::rngs::StdRng::seed_from_u64(15));
    let test = TestDb::new();
    let failed = Loaders::new(&test).await.deliver(&lines, 97).await;
    assert!(failed.is_empty(), "nothing is sent back: {failed:?}");
    integration_tests::harness::assert_answers_of(&mut test.conn(), &helpers::poison_expected());
    assert_eq!(
        test.count("SELECT COUNT(*) FROM error_event WHERE kind = 'refused'"),
        0,
        "the database refuses no event within the limits"
    );
}

/// Loads `lines` into a fresh database and checks every answer equals the
/// replay of the same lines, and that no message went back to its queue;
/// returns the database for further checks.
pub(crate) fn check_against_replay(
    runtime: &tokio::runtime::Runtime,
    lines: &[String],
    batch_size: usize,
) -> TestDb {
    check_against_replay_weighted(runtime, lines, batch_size, &[])
}

/// As [`check_against_replay`], with these tenants' engagement weights set.
pub(crate) fn check_against_replay_weighted(
    runtime: &tokio::runtime::Runtime,
    lines: &[String],
    batch_size: usize,
    weights: &[(&str, shared::contract::EngagementWeights)],
) -> TestDb {
    let test = TestDb::new();
    let failed =
        runtime.block_on(async { Loaders::new(&test).await.deliver(lines, batch_size).await });
    assert!(failed.is_empty(), "messages sent back: {failed:?}");
    let mut replay = Replay::new();
    for line in lines {
        if let Ok(event) = parse_event(line) {
            replay.add(&event);
        }
    }
    let mut conn = test.conn();
    for (tenant, w) in weights {
        shared::read::set_engagement_weights(&mut conn, tenant, *w).expect("weights");
        replay.set_weights(tenant, *w);
    }
    let mut tenants = BTreeSet::new();
    for (tenant, id) in replay.presentation_ids() {
        tenants.insert(tenant.clone());
        let expected = replay.report(&tenant, &id).expect("replayed");
        let actual = presentation_report(&mut conn, &tenant, &id).expect("report");
        assert_json_eq(
            &format!("report {id}"),
            &to_json(&actual),
            &to_json(&expected),
        );
        let expected = replay.timeline(&tenant, &id).expect("replayed");
        let actual = shared::read::timeline(&mut conn, &tenant, &id).expect("timeline");
        assert_json_eq(
            &format!("timeline {id}"),
            &to_json(&actual),
            &to_json(&expected),
        );
        let expected = replay.viewers(&tenant, &id).expect("replayed");
        let actual = all_viewers(&mut conn, &tenant, &id);
        assert_json_eq(
            &format!("viewers {id}"),
            &to_json(&actual),
            &to_json(&expected),
        );
    }
    for tenant in tenants {
        let actual = all_presentations(&mut conn, &tenant);
        assert_json_eq(
            &format!("presentations {tenant}"),
            &to_json(&actual),
            &to_json(&replay.presentations(&tenant)),
        );
    }
    drop(conn);
    test
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]

    /// Any subset of the sample, in any order and batching, gives the
    /// replay's answers (votes before polls, leaves before joins, missing
    /// creations, …).
    #[test]
    fn any_subset_of_the_sample_gives_the_replays_answers(
        seed in any::<u64>(),
        keep_percent in 5u32..100,
        batch_size in 20usize..400,
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut lines: Vec<String> = sample_lines()
            .into_iter()
            .filter(|_| rng.random_range(0..100) < keep_percent)
            .collect();
        lines.shuffle(&mut rng);
        check_against_replay(&runtime, &lines, batch_size);
    }
}

// ---------------------------------------------------------------------------
// Hand-made presentations
// ---------------------------------------------------------------------------

pub(crate) fn joined(
    stream: &str,
    version: i64,
    second: i64,
    viewer: &str,
    session: &str,
    profile: Value,
) -> String {
    let mut data = json!({"viewerId": viewer, "sessionId": session});
    if let Value::Object(extra) = profile {
        data.as_object_mut().unwrap().extend(extra);
    }
    ev(stream, version, &at(second), "ViewerJoined", data)
}

pub(crate) fn heartbeat(
    stream: &str,
    version: i64,
    second: i64,
    viewer: &str,
    session: &str,
) -> String {
    ev(
        stream,
        version,
        &at(second),
        "ViewerHeartbeat",
        json!({"viewerId": viewer, "sessionId": session}),
    )
}

/// Five viewers of presentation `p` (tenant acme):
///
/// | viewer | name      | email        | department  | country | device  | watch | joined | engagement |
/// | u-a    | Alice Zed | alice@x.com  | Sales       | US      | desktop | 600   | 0      | 0          |
/// | u-b    | bob       | BOB_1@y.org  | Marketing   | FR      | mobile  | 300   | 60     | 0          |
/// | u-c    | –         | –            | –           | unknown | unknown | 300   | 120    | 1          |
/// | u-d    | Carol 50% | –            | Sales       | US      | tablet  | 60    | 30     | 2          |
/// | u-e    | Dave      | dave@x.com   | –           | DE      | tv      | 0     | 200    | 1          |
fn five_viewers() -> Vec<String> {
    vec![
        ev(
            "p",
            1,
            &at(-600),
            "PresentationCreated",
            json!({"title": "Town hall", "presenter": {"id": "e-1", "name": "Dana"},
                   "scheduledStart": {"$date": at(0)}, "timezone": "UTC"}),
        ),
        joined(
            "p",
            2,
            0,
            "u-a",
            "s1",
            json!({"profile": {"name": "Alice Zed", "email": "alice@x.com", "department": "Sales"}, "location": {"country": "us"}, "device": "desktop"}),
        ),
        heartbeat("p", 3, 600, "u-a", "s1"),
        joined(
            "p",
            4,
            60,
            "u-b",
            "s2",
            json!({"profile": {"name": "bob", "email": "BOB_1@y.org", "department": " Marketing "}, "location": {"country": "FR"}, "device": {"type": "Mobile", "os": "iOS"}}),
        ),
        ev(
            "p",
            5,
            &at(360),
            "ViewerLeft",
            json!({"viewerId": "u-b", "sessionId": "s2"}),
        ),
        joined("p", 6, 120, "u-c", "s3", json!({"device": "smartwatch"})),
        heartbeat("p", 7, 420, "u-c", "s3"),
        joined(
            "p",
            8,
            30,
            "u-d",
            "s4",
            json!({"profile": {"name": "Carol 50%", "department": "Sales"}, "location": {"country": "US"}, "device": "tablet"}),
        ),
        heartbeat("p", 9, 90, "u-d", "s4"),
        joined(
            "p",
            10,
            200,
            "u-e",
            "s5",
            json!({"profile": {"name": "Dave", "email": "dave@x.com", "department": "  "}, "location": {"country": "de"}, "device": "tv"}),
        ),
        ev(
            "p",
            11,
            &at(100),
            "PollCreated",
            json!({"pollId": "poll", "question": "Q?", "multipleChoice": false,
            "options": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}]}),
        ),
        ev(
            "p",
            12,
            &at(110),
            "PollVoted",
            json!({"pollId": "poll", "viewerId": "u-c", "optionIds": ["a"]}),
        ),
        ev(
            "p",
            13,
            &at(111),
            "PollVoted",
            json!({"pollId": "poll", "viewerId": "u-d", "optionIds": ["b"]}),
        ),
        ev(
            "p",
            14,
            &at(120),
            "SurveyCreated",
            json!({"surveyId": "sv", "title": "S",
            "questions": [{"id": "r", "kind": "rating", "text": "Rate"}]}),
        ),
        ev(
            "p",
            15,
            &at(130),
            "SurveySubmitted",
            json!({"surveyId": "sv", "viewerId": "u-d",
            "answers": [{"questionId": "r", "rating": 4}]}),
        ),
        ev(
            "p",
            16,
            &at(140),
            "QuestionAsked",
            json!({"questionId": "q1", "viewerId": "u-e", "text": "Why?", "anonymous": false}),
        ),
        ev(
            "p",
            17,
            &at(150),
            "QuestionAsked",
            json!({"questionId": "q2", "viewerId": "u-a", "text": "Who?", "anonymous": true}),
        ),
    ]
}

fn viewers_of(conn: &mut impl Queryable, query: ViewerQuery) -> Vec<String> {
    viewer_list(conn, "acme", "p", &query)
        .expect("viewer list")
        .viewers
        .into_iter()
        .map(|r| r.viewer_id)
        .collect()
}

fn filtered(f: impl FnOnce(&mut ViewerQuery)) -> ViewerQuery {
    let mut query = ViewerQuery {
        sort: ViewerSort::Joined,
        ..ViewerQuery::default()
    };
    f(&mut query);
    query
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_rows_hold_the_normalised_attributes_and_engagement() {
    let test = TestDb::new();
    load(&test, &five_viewers()).await;
    let mut conn = test.conn();
    let rows = all_viewers(&mut conn, "acme", "p");
    assert_eq!(ids(&rows), ["u-a", "u-b", "u-c", "u-d", "u-e"]);
    let b = &rows[1];
    assert_eq!(
        (
            b.name.as_deref(),
            b.email.as_deref(),
            b.department.as_deref()
        ),
        (Some("bob"), Some("BOB_1@y.org"), Some("Marketing"))
    );
    assert_eq!((b.country.as_str(), b.device.as_str()), ("FR", "mobile"));
    let c = &rows[2];
    assert_eq!((c.name.as_deref(), c.department.as_deref()), (None, None));
    assert_eq!(
        (c.country.as_str(), c.device.as_str()),
        ("unknown", "unknown")
    );
    assert_eq!(rows[4].department, None, "a blank department is missing");
    let engagement: Vec<(i64, i64, i64)> = rows
        .iter()
        .map(|r| (r.polls_answered, r.surveys_submitted, r.questions_asked))
        .collect();
    // u-a's question is anonymous: not counted.
    assert_eq!(
        engagement,
        [(0, 0, 0), (0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 0, 1)]
    );
    let watch: Vec<i64> = rows.iter().map(|r| r.watch_seconds).collect();
    assert_eq!(watch, [600, 300, 300, 60, 0]);
    assert_eq!(rows[0].first_joined_at, "2021-09-10T10:00:00.000Z");
    assert_eq!(rows[0].last_seen_at, "2021-09-10T10:10:00.000Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_filters() {
    let test = TestDb::new();
    load(&test, &five_viewers()).await;
    let mut conn = test.conn();
    let c = &mut conn;
    let some = |s: &str| Some(s.to_string());
    // Department: exact; `unknown` is the missing department, as in byDepartment.
    assert_eq!(
        viewers_of(c, filtered(|q| q.department = some("Sales"))),
        ["u-a", "u-d"]
    );
    assert_eq!(
        viewers_of(c, filtered(|q| q.department = some("Marketing"))),
        ["u-b"]
    );
    assert_eq!(
        viewers_of(c, filtered(|q| q.department = some("sales"))),
        Vec::<String>::new()
    );
    assert_eq!(
        viewers_of(c, filtered(|q| q.department = some("Sales "))),
        Vec::<String>::new()
    );
    assert_eq!(
        viewers_of(c, filtered(|q| q.department = some("unknown"))),
        ["u-c", "u-e"]
    );
    // Country: any case.
    assert_eq!(
        viewers_of(c, filtered(|q| q.country = some("us"))),
        ["u-a", "u-d"]
    );
    assert_eq!(
        viewers_of(c, filtered(|q| q.country = some("Us"))),
        ["u-a", "u-d"]
    );
    assert_eq!(viewers_of(c, filtered(|q| q.country = some("FR"))), ["u-b"]);
    assert_eq!(
        viewers_of(c, filtered(|q| q.country = some("UNKNOWN"))),
        ["u-c"]
    );
    // Device: exact.
    assert_eq!(
        viewers_of(c, filtered(|q| q.device = some("mobile"))),
        ["u-b"]
    );
    assert_eq!(
        viewers_of(c, filtered(|q| q.device = some("unknown"))),
        ["u-c"]
    );
    assert_eq!(viewers_of(c, filtered(|q| q.device = some("tv"))), ["u-e"]);
    // Search: case-insensitive substring of name or email, % and _ literal.
    assert_eq!(
        viewers_of(c, filtered(|q| q.search = some("ALICE"))),
        ["u-a"]
    );
    assert_eq!(
        viewers_of(c, filtered(|q| q.search = some("x.com"))),
        ["u-a", "u-e"]
    );
    assert_eq!(
        viewers_of(c, filtered(|q| q.search = some("bob_1"))),
        ["u-b"]
    );
    assert_eq!(
        viewers_of(c, filtered(|q| q.search = some("b_b"))),
        Vec::<String>::new()
    );
    assert_eq!(viewers_of(c, filtered(|q| q.search = some("%"))), ["u-d"]);
    assert_eq!(
        viewers_of(c, filtered(|q| q.search = some("l 50%"))),
        ["u-d"]
    );
    assert_eq!(viewers_of(c, filtered(|q| q.search = some(""))).len(), 5);
    // Combined.
    let query = filtered(|q| {
        q.department = some("Sales");
        q.country = some("us");
        q.search = some("carol");
    });
    let list = viewer_list(c, "acme", "p", &query).unwrap();
    assert_eq!((list.total, ids(&list.viewers)), (1, vec!["u-d"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_sorts_with_ties_by_viewer_id() {
    let test = TestDb::new();
    load(&test, &five_viewers()).await;
    let mut conn = test.conn();
    let sorted = |c: &mut mysql::PooledConn, sort| {
        viewers_of(
            c,
            ViewerQuery {
                sort,
                ..ViewerQuery::default()
            },
        )
    };
    // u-b and u-c both watched 300 s: by viewerId.
    assert_eq!(
        sorted(&mut conn, ViewerSort::Watch),
        ["u-a", "u-b", "u-c", "u-d", "u-e"]
    );
    assert_eq!(
        viewers_of(&mut conn, ViewerQuery::default()),
        sorted(&mut conn, ViewerSort::Watch)
    );
    // Case-insensitive ("bob" before "Carol"), missing names last.
    assert_eq!(
        sorted(&mut conn, ViewerSort::Name),
        ["u-a", "u-b", "u-d", "u-e", "u-c"]
    );
    assert_eq!(
        sorted(&mut conn, ViewerSort::Joined),
        ["u-a", "u-d", "u-b", "u-c", "u-e"]
    );
    // u-d 2; u-c and u-e 1; u-a and u-b 0.
    assert_eq!(
        sorted(&mut conn, ViewerSort::Engagement),
        ["u-d", "u-c", "u-e", "u-a", "u-b"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_paging_counts_all_matching_rows() {
    let test = TestDb::new();
    load(&test, &five_viewers()).await;
    let mut conn = test.conn();
    let page = |c: &mut mysql::PooledConn, limit, offset, department: Option<&str>| {
        let query = ViewerQuery {
            limit,
            offset,
            department: department.map(str::to_string),
            ..ViewerQuery::default()
        };
        let list = viewer_list(c, "acme", "p", &query).unwrap();
        assert_eq!(list.presentation_id, "p");
        (
            list.total,
            ids(&list.viewers)
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        page(&mut conn, 2, 0, None),
        (5, vec!["u-a".into(), "u-b".into()])
    );
    assert_eq!(
        page(&mut conn, 2, 2, None),
        (5, vec!["u-c".into(), "u-d".into()])
    );
    assert_eq!(page(&mut conn, 2, 4, None), (5, vec!["u-e".into()]));
    assert_eq!(page(&mut conn, 2, 10, None), (5, vec![]));
    assert_eq!(
        page(&mut conn, 1, 1, Some("Sales")),
        (2, vec!["u-d".into()])
    );
    assert_eq!(page(&mut conn, 50, 7, Some("Sales")), (2, vec![]));
    assert_eq!(page(&mut conn, 50, 0, Some("nobody")), (0, vec![]));
}

/// Tenant acme: p1..p4; tenant globex: g1.
///
/// | id | title            | scheduledStart           | startedAt | viewers |
/// | p1 | Quarterly Review | 2021-09-10T10:00:00.000Z | 09-10     | 2       |
/// | p2 | all hands        | 2021-09-11T00:00:00.000Z | 09-11     | 3       |
/// | p3 | Beta 100%        | 2021-09-12T23:59:59.999Z | –         | 1       |
/// | p4 | – (no creation)  | –                        | –         | 2       |
/// | g1 | Quarterly Secret | 2021-09-10T10:00:00.000Z | 09-10     | 1       |
fn presentations() -> Vec<String> {
    let created = |tenant: &str, stream: &str, title: &str, scheduled: &str| {
        ev_of(
            tenant,
            stream,
            1,
            &at(-3600),
            "PresentationCreated",
            json!({"title": title, "presenter": {"id": "e-1", "name": "Dana"},
                   "scheduledStart": {"$date": scheduled}, "timezone": "UTC"}),
        )
    };
    let started = |tenant: &str, stream: &str, when: &str| {
        ev_of(tenant, stream, 2, when, "PresentationStarted", json!({}))
    };
    let viewer = |tenant: &str, stream: &str, version: i64, n: i64| {
        ev_of(
            tenant,
            stream,
            version,
            &at(n),
            "ViewerJoined",
            json!({"viewerId": format!("u-{n}"), "sessionId": format!("s-{n}"), "device": "tv"}),
        )
    };
    let mut events = vec![
        created("acme", "p1", "Quarterly Review", "2021-09-10T10:00:00Z"),
        started("acme", "p1", "2021-09-10T10:05:00Z"),
        created("acme", "p2", "all hands", "2021-09-11T00:00:00Z"),
        started("acme", "p2", "2021-09-11T00:01:00Z"),
        created("acme", "p3", "Beta 100%", "2021-09-12T23:59:59.999Z"),
        created("globex", "g1", "Quarterly Secret", "2021-09-10T10:00:00Z"),
        started("globex", "g1", "2021-09-10T10:00:00Z"),
    ];
    for (stream, n) in [("p1", 2), ("p2", 3), ("p3", 1), ("p4", 2)] {
        for i in 0..n {
            events.push(viewer("acme", stream, 10 + i, i));
        }
    }
    events.push(viewer("globex", "g1", 10, 0));
    events
}

fn listed(
    conn: &mut impl Queryable,
    tenant: &str,
    f: impl FnOnce(&mut PresentationQuery),
) -> (i64, Vec<String>) {
    let mut query = PresentationQuery::default();
    f(&mut query);
    let list = presentation_list(conn, tenant, &query).expect("list");
    assert_eq!(list.tenant_id, tenant);
    (
        list.total,
        pids(&list.presentations)
            .iter()
            .map(|s| s.to_string())
            .collect(),
    )
}

fn just(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presentation_list_filters() {
    let test = TestDb::new();
    load(&test, &presentations()).await;
    let mut conn = test.conn();
    let c = &mut conn;
    let some = |s: &str| Some(s.to_string());
    // Search: case-insensitive substring of the title; never another tenant's.
    assert_eq!(
        listed(c, "acme", |q| q.search = some("QUARTERLY")),
        (1, just(&["p1"]))
    );
    assert_eq!(
        listed(c, "acme", |q| q.search = some("100%")),
        (1, just(&["p3"]))
    );
    assert_eq!(
        listed(c, "acme", |q| q.search = some("%")),
        (1, just(&["p3"]))
    );
    assert_eq!(listed(c, "acme", |q| q.search = some("_")), (0, just(&[])));
    // from / to: scheduledStart within, inclusive; a plain `to` date is the whole day.
    let from = |s: &str| Some(parse_date(s).unwrap());
    let to = |s: &str| Some(parse_date_to(s).unwrap());
    assert_eq!(
        listed(c, "acme", |q| q.from = from("2021-09-11")),
        (2, just(&["p2", "p3"]))
    );
    assert_eq!(
        listed(c, "acme", |q| q.to = to("2021-09-11")),
        (2, just(&["p2", "p1"]))
    );
    assert_eq!(
        listed(c, "acme", |q| {
            q.from = from("2021-09-12");
            q.to = to("2021-09-12");
        }),
        (1, just(&["p3"]))
    );
    assert_eq!(
        listed(c, "acme", |q| {
            q.from = from("2021-09-10T10:00:00Z");
            q.to = to("2021-09-10T12:00:00+02:00");
        }),
        (1, just(&["p1"]))
    );
    assert_eq!(
        listed(c, "acme", |q| q.to = to("2021-09-10T09:59:59.999Z")),
        (0, just(&[]))
    );
    // Paging.
    assert_eq!(
        listed(c, "acme", |q| {
            q.limit = 1;
            q.offset = 1;
        }),
        (4, just(&["p1"]))
    );
    assert_eq!(listed(c, "acme", |q| q.offset = 10), (4, just(&[])));
    let all = all_presentations(c, "acme");
    let p4 = &all[3];
    assert_eq!(
        (
            p4.title.as_ref(),
            p4.scheduled_start.as_ref(),
            p4.unique_viewers
        ),
        (None, None, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presentation_list_sorts_with_ties_by_presentation_id() {
    let test = TestDb::new();
    load(&test, &presentations()).await;
    let mut conn = test.conn();
    let c = &mut conn;
    // startedAt descending, never-started last.
    assert_eq!(listed(c, "acme", |_| {}).1, just(&["p2", "p1", "p3", "p4"]));
    assert_eq!(
        listed(c, "acme", |q| q.sort = PresentationSort::Started).1,
        just(&["p2", "p1", "p3", "p4"])
    );
    // p1 and p4 both have 2 viewers.
    assert_eq!(
        listed(c, "acme", |q| q.sort = PresentationSort::Viewers).1,
        just(&["p2", "p1", "p4", "p3"])
    );
    // Case-insensitive, missing titles last.
    assert_eq!(
        listed(c, "acme", |q| q.sort = PresentationSort::Title).1,
        just(&["p2", "p3", "p1", "p4"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_never_see_each_others_presentations() {
    let test = TestDb::new();
    load(&test, &presentations()).await;
    let mut conn = test.conn();
    let c = &mut conn;
    let report = presentation_report(c, "globex", "g1").expect("own presentation");
    assert_eq!(report.attendance.unique_viewers, 1);
    // Another tenant's presentation is exactly as unknown as a missing one.
    let theirs = presentation_report(c, "acme", "g1").unwrap_err();
    assert_eq!(theirs, AnalyticsError::NotFound("g1".into()));
    let missing = presentation_report(c, "acme", "nope").unwrap_err();
    assert_eq!(missing, AnalyticsError::NotFound("nope".into()));
    assert_eq!(
        theirs.to_string().replace("g1", "nope"),
        missing.to_string()
    );
    assert_eq!(
        viewer_list(c, "acme", "g1", &ViewerQuery::default()).unwrap_err(),
        AnalyticsError::NotFound("g1".into())
    );
    assert_eq!(
        presentation_report(c, "globex", "p1").unwrap_err(),
        AnalyticsError::NotFound("p1".into())
    );
    // A tenant whose id differs only by a trailing blank is another tenant.
    assert_eq!(
        presentation_report(c, "globex ", "g1").unwrap_err(),
        AnalyticsError::NotFound("g1".into())
    );
    assert_eq!(listed(c, "globex ", |_| {}), (0, just(&[])));
    assert_eq!(listed(c, "globex", |_| {}), (1, just(&["g1"])));
    assert_eq!(
        listed(c, "acme", |q| q.limit = 1000).1,
        just(&["p2", "p1", "p3", "p4"])
    );
    assert_eq!(listed(c, "initech", |_| {}), (0, just(&[])));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_say_what_is_accepted() {
    let test = TestDb::new();
    load(&test, &presentations()).await;
    let mut conn = test.conn();
    let c = &mut conn;
    let bad = |result: Result<_, AnalyticsError>, needle: &str| match result {
        Err(AnalyticsError::BadRequest(message)) => {
            assert!(message.contains(needle), "{message:?} lacks {needle:?}")
        }
        other => panic!("expected a bad request, got {other:?}"),
    };
    bad(
        ViewerSort::parse("views").map(|_| ()),
        "watch (the default), name, joined, engagement or score",
    );
    bad(
        PresentationSort::parse("date").map(|_| ()),
        "started (the default), viewers or title",
    );
    bad(parse_limit(Some("0")).map(|_| ()), "at least 1");
    bad(parse_limit(Some("1001")).map(|_| ()), "at most 1000");
    bad(
        parse_limit(Some("lots")).map(|_| ()),
        "whole number from 1 to 1000",
    );
    bad(parse_offset(Some("-1")).map(|_| ()), "0 or more");
    bad(parse_date("2021-02-30").map(|_| ()), "YYYY-MM-DD");
    bad(parse_date_to("next week").map(|_| ()), "RFC 3339");
    for limit in [0, 1001] {
        let viewers = ViewerQuery {
            limit,
            ..ViewerQuery::default()
        };
        bad(viewer_list(c, "acme", "p1", &viewers).map(|_| ()), "1000");
        let list = PresentationQuery {
            limit,
            ..PresentationQuery::default()
        };
        bad(presentation_list(c, "acme", &list).map(|_| ()), "1000");
    }
    let backwards = PresentationQuery {
        from: Some(parse_date("2021-09-12").unwrap()),
        to: Some(parse_date_to("2021-09-11").unwrap()),
        ..PresentationQuery::default()
    };
    bad(
        presentation_list(c, "acme", &backwards).map(|_| ()),
        "is after to",
    );
    assert_eq!(
        presentation_report(c, "acme", "").unwrap_err(),
        AnalyticsError::NotFound(String::new())
    );
    // Limits at the edges are fine.
    for limit in [1, 1000] {
        let viewers = ViewerQuery {
            limit,
            offset: u64::MAX,
            ..ViewerQuery::default()
        };
        let list = viewer_list(c, "acme", "p1", &viewers).unwrap();
        assert_eq!((list.total, list.viewers.len()), (2, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summaries_follow_every_load_and_never_go_back_in_time() {
    let test = TestDb::new();
    let loaders = Loaders::new(&test).await;
    assert!(loaders.deliver(&presentations(), 50).await.is_empty());
    let mut conn = test.conn();
    let viewers_of_p1 = |c: &mut mysql::PooledConn| {
        all_presentations(c, "acme")
            .into_iter()
            .find(|r| r.presentation_id == "p1")
            .map(|r| r.unique_viewers)
    };
    let new_viewer = |version: i64| {
        ev(
            "p1",
            version,
            &at(50),
            "ViewerJoined",
            json!({"viewerId": format!("u-new-{version}"), "sessionId": format!("s-new-{version}")}),
        )
    };
    assert_eq!(viewers_of_p1(&mut conn), Some(2));
    // Up to date: the loaders refreshed every tenant's presentations they
    // loaded (acme's four, globex's one); nothing is left to refresh.
    assert_eq!(refresh_summaries(&mut conn, "acme").unwrap(), 0);
    let fresh =
        "SELECT COUNT(*) FROM agg_presentation a JOIN dim_presentation p USING (presentation_key) \
                 WHERE a.source_revision = p.revision";
    assert_eq!(test.count(fresh), 5);

    // A later load: its loader refreshes p1's summary right after its commit.
    assert!(loaders.deliver(&[new_viewer(20)], 10).await.is_empty());
    assert_eq!(test.count(fresh), 5);
    assert_eq!(viewers_of_p1(&mut conn), Some(3));
    // A summary computed from an older revision is served as it is, named
    // stale, until a refresh recomputes it: the list itself never writes.
    conn.query_drop(
        "UPDATE agg_presentation SET unique_viewers = 999, source_revision = source_revision - 1",
    )
    .unwrap();
    assert_eq!(viewers_of_p1(&mut conn), Some(999));
    let list = presentation_list(&mut conn, "acme", &PresentationQuery::default()).unwrap();
    let mut stale = list.stale_figures.clone();
    stale.sort();
    let mut every: Vec<&str> = pids(&list.presentations);
    every.sort();
    assert_eq!(stale, every, "every summary is of an older revision");
    assert_eq!(test.count(fresh), 0, "the list wrote nothing");
    // Only the named tenant's are refreshed (globex's stays stale).
    assert_eq!(refresh_summaries(&mut conn, "acme").unwrap(), 4);
    assert_eq!(viewers_of_p1(&mut conn), Some(3));
    let list = presentation_list(&mut conn, "acme", &PresentationQuery::default()).unwrap();
    assert!(list.stale_figures.is_empty(), "{:?}", list.stale_figures);

    // A refresh working from an older snapshot never replaces a newer summary:
    // p1 is stale in the old snapshot, a load and a refresh commit after it,
    // then the old snapshot's refresh writes its (older) figures.
    conn.query_drop(
        "UPDATE dim_presentation SET revision = revision + 1 WHERE presentation_id = 'p1'",
    )
    .unwrap();
    let mut old = test.conn();
    let mut snapshot = old
        .start_transaction(
            mysql::TxOpts::default()
                .set_with_consistent_snapshot(true)
                .set_isolation_level(Some(mysql::IsolationLevel::RepeatableRead)),
        )
        .unwrap();
    assert!(loaders.deliver(&[new_viewer(21)], 10).await.is_empty());
    assert_eq!(viewers_of_p1(&mut conn), Some(4));
    assert_eq!(refresh_summaries(&mut snapshot, "acme").unwrap(), 1);
    snapshot.commit().unwrap();
    drop(old);
    assert_eq!(test.count(fresh), 4);
    assert_eq!(
        test.count("SELECT unique_viewers FROM agg_presentation a JOIN dim_presentation p USING (presentation_key) WHERE p.presentation_id = 'p1'"),
        4
    );

    // Concurrent refreshes of the same stale summaries agree.
    conn.query_drop("UPDATE agg_presentation SET source_revision = 0")
        .unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let mut conn = test.conn();
                    refresh_summaries(&mut conn, "acme").unwrap();
                    all_presentations(&mut conn, "acme")
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(results.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(results[0].len(), 4);
    });
    assert_eq!(test.count(fresh), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_rules_on_a_small_presentation() {
    // Peak: u-1 in two overlapping sessions counts once; a zero-length
    // session never counts; sessions are clamped to the end.
    let lines = vec![
        joined("p", 1, 0, "u-1", "s1", json!({"device": "desktop"})),
        heartbeat("p", 2, 100, "u-1", "s1"),
        joined("p", 3, 50, "u-1", "s2", json!({"device": "mobile"})),
        heartbeat("p", 4, 150, "u-1", "s2"),
        joined("p", 5, 100, "u-2", "s3", json!({"device": "tv"})),
        heartbeat("p", 6, 400, "u-2", "s3"),
        joined("p", 7, 120, "u-3", "s4", json!({})),
        ev("p", 8, &at(300), "PresentationEnded", json!({})),
        // A heartbeat of a session whose join never arrived: no session.
        heartbeat("p", 9, 10, "u-4", "s5"),
    ];
    let test = TestDb::new();
    load(&test, &lines).await;
    let mut conn = test.conn();
    let r = presentation_report(&mut conn, "acme", "p").unwrap();
    let a = &r.attendance;
    assert_eq!(
        (a.sessions, a.unique_viewers, a.peak_concurrent_viewers),
        (4, 3, 2)
    );
    // 100 + 100 + (300 - 100 clamped) + 0 = 400 s.
    assert_eq!(a.total_watch_seconds, 400);
    assert_eq!(a.average_watch_seconds, 133.3);
    assert_eq!(
        to_json(&a.by_device),
        json!({"desktop": 1, "mobile": 1, "tv": 1, "unknown": 1})
    );
    assert_eq!(r.title, None);
    assert_eq!(r.presenter, None);
    assert_eq!(r.ended_at.as_deref(), Some("2021-09-10T10:05:00.000Z"));
    let mut replay = Replay::new();
    for line in &lines {
        replay.add(&parse_event(line).unwrap());
    }
    assert_eq!(r, replay.report("acme", "p").unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_answers_blank_by_any_unicode_white_space() {
    // Blank: empty, spaces, or only other White_Space characters; not blank
    // as soon as one other character appears, wherever it is.
    let texts = [
        "",
        "  ",
        "\t\n",
        "\u{a0}\u{3000}",
        "\u{85}\u{2028} ",
        "Thanks",
        " x",
        "\u{a0}x",
        "x\u{3000}",
        "\u{200b}",
    ];
    let mut lines = vec![ev(
        "p",
        1,
        &at(0),
        "SurveyCreated",
        json!({"surveyId": "s", "title": "T", "questions": [{"id": "q", "kind": "text", "text": "?"}]}),
    )];
    for (i, text) in texts.iter().enumerate() {
        lines.push(ev(
            "p",
            2 + i as i64,
            &at(1),
            "SurveySubmitted",
            json!({"surveyId": "s", "viewerId": format!("u-{i}"),
                   "answers": [{"questionId": "q", "text": text}]}),
        ));
    }
    let test = TestDb::new();
    load(&test, &lines).await;
    let r = presentation_report(&mut test.conn(), "acme", "p").unwrap();
    assert_eq!(r.surveys[0].responses, 10);
    // "Thanks", " x", "\u{a0}x", "x\u{3000}" and the zero-width space
    // (not White_Space).
    assert_eq!(r.surveys[0].questions[0].answered, 5);
    let mut replay = Replay::new();
    for line in &lines {
        replay.add(&parse_event(line).unwrap());
    }
    assert_eq!(r, replay.report("acme", "p").unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_is_cached_per_revision() {
    let test = TestDb::new();
    let loaders = Loaders::new(&test).await;
    assert!(loaders.deliver(&five_viewers(), 50).await.is_empty());
    let mut conn = test.conn();
    let first = presentation_report(&mut conn, "acme", "p").unwrap();
    assert_eq!(first.attendance.unique_viewers, 5);
    assert_eq!(
        test.count("SELECT COUNT(*) FROM agg_presentation_report"),
        1
    );
    // Served from the cache while the revision is unchanged (proved by
    // marking the cached copy).
    conn.query_drop(
        "UPDATE agg_presentation_report SET report = REPLACE(report, 'Town hall', 'Cached')",
    )
    .unwrap();
    let cached = presentation_report(&mut conn, "acme", "p").unwrap();
    assert_eq!(cached.title.as_deref(), Some("Cached"));
    // A copy written by another format version is not used.
    conn.query_drop("UPDATE agg_presentation_report SET format_version = format_version + 1")
        .unwrap();
    assert_eq!(presentation_report(&mut conn, "acme", "p").unwrap(), first);
    conn.query_drop(
        "UPDATE agg_presentation_report SET format_version = format_version - 1, \
                     report = REPLACE(report, 'Town hall', 'Cached')",
    )
    .unwrap();
    // A load touching the presentation makes the copy stale.
    let more = joined("p", 30, 700, "u-f", "s6", json!({"device": "tv"}));
    assert!(loaders.deliver(&[more], 10).await.is_empty());
    let fresh = presentation_report(&mut conn, "acme", "p").unwrap();
    assert_eq!(fresh.title.as_deref(), Some("Town hall"));
    assert_eq!(fresh.attendance.unique_viewers, 6);
    assert_eq!(
        test.count("SELECT COUNT(*) FROM agg_presentation_report r JOIN dim_presentation p USING (presentation_key) \
                    WHERE r.source_revision = p.revision"),
        1
    );
    // Loads of other presentations leave it fresh.
    assert!(loaders.deliver(&presentations(), 50).await.is_empty());
    assert_eq!(presentation_report(&mut conn, "acme", "p").unwrap(), fresh);
}

// ---------------------------------------------------------------------------
// Latency of a large report
// ---------------------------------------------------------------------------

/// A two-hour presentation `id` of `tenant`, ended, written straight into
/// `dim_presentation` (as the loaders would); returns its key.
pub(crate) fn insert_presentation(
    conn: &mut mysql::PooledConn,
    tenant: &str,
    id: &str,
    title: &str,
) -> u64 {
    conn.exec_drop(
        "INSERT INTO dim_presentation (presentation_id, tenant_id, title, title_version, presenter_id, \
           presenter_name, scheduled_start_ms, created_version, started_at_ms, ended_at_ms, revision) \
         VALUES (?, ?, ?, 1, 'e-1', 'Dana', 1631268000000, 1, 1631268000000, 1631275200000, 1)",
        (id, tenant, title),
    )
    .unwrap();
    conn.exec_first(
        "SELECT presentation_key FROM dim_presentation WHERE tenant_id = ? AND presentation_id = ?",
        (tenant, id),
    )
    .unwrap()
    .unwrap()
}

/// Writes a presentation with `viewers` viewers straight into the warehouse
/// tables (as the loaders would): 1.5 sessions per viewer with heartbeats,
/// three polls everyone votes in, a survey and 200 questions.
pub(crate) fn write_large_presentation(test: &TestDb, viewers: u64) {
    let mut conn = test.conn();
    let key = insert_presentation(&mut conn, "bigcorp", "big", "All hands");
    let insert =
        |conn: &mut mysql::PooledConn, head: &str, rows: &mut dyn Iterator<Item = String>| {
            let rows: Vec<String> = rows.collect();
            for chunk in rows.chunks(2000) {
                conn.query_drop(format!("{head} VALUES {}", chunk.join(",")))
                    .unwrap();
            }
        };
    insert(
        &mut conn,
        "INSERT INTO dim_viewer (tenant_id, viewer_id)",
        &mut (0..viewers).map(|i| format!("('bigcorp', 'u-{i:06}')")),
    );
    let first: u64 = conn
        .query_first("SELECT MIN(viewer_key) FROM dim_viewer WHERE tenant_id = 'bigcorp'")
        .unwrap()
        .unwrap();
    let devices = ["desktop", "mobile", "tablet", "tv", "unknown"];
    let countries = ["US", "FR", "DE", "JP", "BR", "unknown"];
    let start = 1_631_268_000_000i64;
    insert(
        &mut conn,
        "INSERT INTO fact_session (presentation_key, session_id, viewer_key, join_version, device, country, department, start_ms, start_date_key, end_ms)",
        &mut (0..viewers * 3 / 2).map(|i| {
            let viewer = first + i % viewers;
            let s = start + (i as i64 * 7919) % 3_600_000;
            let e = s + (i as i64 * 104_729) % 5_400_000;
            format!(
                "({key}, 's-{i}', {viewer}, {}, '{}', '{}', 'Dept {}', {s}, 20210910, {e})",
                100 + i,
                devices[i as usize % 5],
                countries[i as usize % 6],
                i % 40
            )
        }),
    );
    insert(
        &mut conn,
        "INSERT INTO fact_presentation_viewer (presentation_key, viewer_key, latest_join_version, name, email, department, country, device)",
        &mut (0..viewers).map(|i| {
            format!(
                "({key}, {}, {}, 'Viewer {i}', 'v{i}@example.com', 'Dept {}', '{}', '{}')",
                first + i,
                100 + i,
                i % 40,
                countries[i as usize % 6],
                devices[i as usize % 5]
            )
        }),
    );
    let mut version = 1_000_000u64;
    for poll in 0..3 {
        conn.query_drop(format!(
            "INSERT INTO dim_poll VALUES ({key}, 'poll-{poll}', {poll}, {start}, 'Q{poll}?', {}, NULL)",
            poll % 2
        ))
        .unwrap();
        conn.query_drop(format!(
            "INSERT INTO dim_poll_option VALUES ({key}, 'poll-{poll}', {poll}, 0, 'a', 'A'), ({key}, 'poll-{poll}', {poll}, 1, 'b', 'B')"
        ))
        .unwrap();
        let base = version;
        insert(
            &mut conn,
            "INSERT INTO fact_poll_vote (presentation_key, version, poll_id, viewer_key, occurred_at_ms)",
            &mut (0..viewers).map(|i| format!("({key}, {}, 'poll-{poll}', {}, {start})", base + i, first + i)),
        );
        insert(
            &mut conn,
            "INSERT INTO fact_poll_vote_option (presentation_key, version, position, option_id)",
            &mut (0..viewers).map(|i| {
                format!(
                    "({key}, {}, 0, '{}')",
                    base + i,
                    if i % 3 == 0 { "a" } else { "b" }
                )
            }),
        );
        version += viewers;
    }
    conn.query_drop(format!(
        "INSERT INTO dim_survey VALUES ({key}, 'sv', 5, {start}, 'Feedback')"
    ))
    .unwrap();
    conn.query_drop(format!(
        "INSERT INTO dim_survey_question VALUES ({key}, 'sv', 5, 0, 'r', 'rating', 'Rate', 5), ({key}, 'sv', 5, 1, 't', 'text', 'Say', 5)"
    ))
    .unwrap();
    let base = version;
    insert(
        &mut conn,
        "INSERT INTO fact_survey_response (presentation_key, version, survey_id, viewer_key, occurred_at_ms)",
        &mut (0..viewers / 2).map(|i| format!("({key}, {}, 'sv', {}, {start})", base + i, first + i)),
    );
    insert(
        &mut conn,
        "INSERT INTO fact_survey_answer (presentation_key, version, position, question_id, rating, text_answer)",
        &mut (0..viewers / 2).flat_map(|i| {
            [
                format!("({key}, {}, 0, 'r', {}, NULL)", base + i, i % 5 + 1),
                format!("({key}, {}, 1, 't', NULL, 'great talk')", base + i),
            ]
        }),
    );
    insert(
        &mut conn,
        "INSERT INTO dim_question (presentation_key, question_id, asked_version, asked_at_ms, text, anonymous, asker_viewer_key, status, status_version, first_answered_at_ms)",
        &mut (0..200u64).map(|i| {
            format!(
                "({key}, 'q-{i}', {}, {start}, 'Question {i}', FALSE, {}, {}, NULL, {})",
                10 + i,
                first + i,
                if i % 2 == 0 { "'answered'" } else { "NULL" },
                if i % 2 == 0 { (start + 60_000).to_string() } else { "NULL".into() }
            )
        }),
    );
    insert(
        &mut conn,
        "INSERT INTO fact_question_upvote (presentation_key, question_id, viewer_key, version, upvoted)",
        &mut (0..viewers).map(|i| format!("({key}, 'q-{}', {}, {}, TRUE)", i % 200, first + i, 2_000_000 + i)),
    );
}

#[test]
fn the_answers_hold_at_20000_viewers() {
    let test = TestDb::new();
    write_large_presentation(&test, 20_000);
    let mut conn = test.conn();
    let report = presentation_report(&mut conn, "bigcorp", "big").unwrap();
    assert_eq!(report.attendance.unique_viewers, 20_000);
    assert_eq!(report.attendance.sessions, 30_000);
    assert_eq!(report.polls.len(), 3);
    assert_eq!(report.polls[0].respondents, 20_000);
    assert_eq!(report.surveys[0].responses, 10_000);
    assert_eq!(report.surveys[0].questions[1].answered, 10_000);
    assert_eq!(report.qna.asked, 200);
    assert_eq!(report.qna.upvotes, 20_000);
    assert_eq!(report.qna.average_seconds_to_answer, Some(60.0));

    // Cached and computed agree; the page and the list work at this size.
    // (Latency is measured by `cargo bench --bench analytics`, not here.)
    conn.query_drop("DELETE FROM agg_presentation_report")
        .unwrap();
    assert_eq!(
        presentation_report(&mut conn, "bigcorp", "big").unwrap(),
        report
    );
    assert_eq!(
        presentation_report(&mut conn, "bigcorp", "big").unwrap(),
        report
    );
    // The timeline at this size: 30,000 sessions in one read.
    let timeline = shared::read::timeline(&mut conn, "bigcorp", "big").unwrap();
    assert_eq!(timeline.bucket_seconds, 60);
    assert_eq!(
        timeline.at_end + timeline.buckets.iter().map(|b| b.left).sum::<i64>(),
        20_000
    );
    assert_eq!(
        timeline.buckets.iter().map(|b| b.joined).sum::<i64>(),
        20_000
    );
    let query = ViewerQuery {
        sort: ViewerSort::Name,
        search: Some("viewer 1".into()),
        ..ViewerQuery::default()
    };
    let list = viewer_list(&mut conn, "bigcorp", "big", &query).unwrap();
    assert_eq!(list.viewers.len(), 50);
    // Sorted by score: every viewer answered all three polls.
    let query = ViewerQuery {
        sort: ViewerSort::Score,
        ..ViewerQuery::default()
    };
    let list = viewer_list(&mut conn, "bigcorp", "big", &query).unwrap();
    let scores: Vec<i64> = list.viewers.iter().map(|v| v.engagement_score).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(list.viewers.iter().all(|v| v.polls_answered == 3));
    conn.query_drop("DELETE FROM agg_presentation").unwrap();
    let list = presentation_list(&mut conn, "bigcorp", &PresentationQuery::default()).unwrap();
    assert_eq!(list.stale_figures, ["big"]);
    assert_eq!(refresh_summaries(&mut conn, "bigcorp").unwrap(), 1);
    let list = presentation_list(&mut conn, "bigcorp", &PresentationQuery::default()).unwrap();
    assert_eq!(list.presentations[0].unique_viewers, 20_000);
}
