//! The replay against the golden sample and the contract's rules, one
//! rule per test.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::contract::{
    parse_event, Choice, Person, PollReport, QuestionKind, QuestionStatus, SurveyAnswer,
    SurveyQuestion, SurveyQuestionDetail, ViewerJoined,
};
use serde_json::Value;

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/samples/events.jsonl"
);
const EXPECTED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/samples/expected.json"
);
const POISON: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/samples/poison.jsonl"
);
const POISON_EXPECTED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/samples/poison-expected.json"
);
const ERASURE_EXPECTED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/samples/expected-erasure.json"
);

// ----- helpers ---------------------------------------------------------

/// Compares `actual` with `expected`, leaving out of `actual` the fields of
/// ANALYTICS.md §5-§6 that an expectation written before them lacks
/// (`expected-live.json` checks those).
fn assert_json_eq(what: &str, actual: &Value, expected: &Value) {
    let actual = as_of(actual, expected);
    let lines = crate::contract::differences(&actual, expected, "actual", "expected");
    assert!(lines.is_empty(), "{what} differs:\n{}", lines.join("\n"));
}

fn as_of(actual: &Value, expected: &Value) -> Value {
    const LIVE_FIELDS: [&str; 3] = ["dataThrough", "upvotesGiven", "engagementScore"];
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => Value::Object(
            a.iter()
                .filter(|(k, _)| e.contains_key(*k) || !LIVE_FIELDS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), as_of(v, e.get(k).unwrap_or(&Value::Null))))
                .collect(),
        ),
        (Value::Array(a), Value::Array(e)) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, v)| as_of(v, e.get(i).unwrap_or(&Value::Null)))
                .collect(),
        ),
        _ => actual.clone(),
    }
}

fn sample_lines() -> Vec<String> {
    lines_of(SAMPLE)
}

fn lines_of(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("sample events");
    text.lines().map(str::to_string).collect()
}

fn replay_lines<'a>(lines: impl IntoIterator<Item = &'a String>) -> Replay {
    let mut replay = Replay::new();
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        if let Ok(event) = parse_event(line) {
            replay.add(&event);
        }
    }
    replay
}

/// Every answer of a replay, as JSON, for the presentations of `expected`.
fn answers(replay: &Replay, expected: &Value) -> Value {
    let mut reports = serde_json::Map::new();
    let mut viewers = serde_json::Map::new();
    let mut tenants = BTreeSet::new();
    // A key is the presentation id, or `streamId@tenantId` where one stream
    // id has events of two tenants: each report names its own.
    for (key, report) in expected["reports"].as_object().expect("reports") {
        let tenant = report["tenantId"].as_str().expect("tenantId");
        let id = report["presentationId"].as_str().expect("presentationId");
        tenants.insert(tenant.to_string());
        let r = replay.report(tenant, id).expect("known presentation");
        reports.insert(key.clone(), serde_json::to_value(r).expect("report json"));
        let v = replay.viewers(tenant, id).expect("known presentation");
        viewers.insert(key.clone(), serde_json::to_value(v).expect("viewers json"));
    }
    let mut presentations = serde_json::Map::new();
    for tenant in tenants {
        let rows = serde_json::to_value(replay.presentations(&tenant)).expect("rows json");
        presentations.insert(tenant, rows);
    }
    serde_json::json!({"reports": reports, "viewers": viewers, "presentations": presentations})
}

fn expected() -> Value {
    expected_of(EXPECTED)
}

fn expected_of(path: &str) -> Value {
    let mut expected: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("expected answers"))
            .expect("expected json");
    // The presentation rows are unordered in expected.json: sort them by id.
    for rows in expected["presentations"]
        .as_object_mut()
        .expect("presentations")
        .values_mut()
    {
        if let Value::Array(rows) = rows {
            rows.sort_by(|a, b| {
                a["presentationId"]
                    .as_str()
                    .cmp(&b["presentationId"].as_str())
            });
        }
    }
    expected
}

fn check_against_expected(replay: &Replay, expected: &Value) {
    let actual = answers(replay, expected);
    for (id, report) in expected["reports"].as_object().expect("reports") {
        assert_json_eq(&format!("reports.{id}"), &actual["reports"][id], report);
    }
    for (id, rows) in expected["viewers"].as_object().expect("viewers") {
        assert_json_eq(&format!("viewers.{id}"), &actual["viewers"][id], rows);
    }
    for (tenant, rows) in expected["presentations"]
        .as_object()
        .expect("presentations")
    {
        assert_json_eq(
            &format!("presentations.{tenant}"),
            &actual["presentations"][tenant],
            rows,
        );
    }
}

/// xorshift64*: deterministic shuffles without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

// ----- golden ----------------------------------------------------------

#[test]
fn golden_sample_gives_the_expected_answers() {
    let expected = expected();
    let replay = replay_lines(&sample_lines());
    check_against_expected(&replay, &expected);
    // No presentation beyond those of the sample (malformed lines included).
    let ids: Vec<String> = replay
        .presentation_ids()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let mut want: Vec<String> = expected["reports"]
        .as_object()
        .expect("reports")
        .keys()
        .cloned()
        .collect();
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn golden_poison_export_gives_its_expected_answers() {
    let expected = expected_of(POISON_EXPECTED);
    let lines = lines_of(POISON);
    check_against_expected(&replay_lines(&lines), &expected);
    // The stats: non-blank lines, distinct valid events, duplicates, malformed.
    let mut replay = Replay::new();
    let (mut nonblank, mut events, mut duplicates, mut malformed) = (0, 0, 0, 0);
    for line in lines.iter().filter(|l| !l.trim().is_empty()) {
        nonblank += 1;
        match parse_event(line) {
            Ok(event) if replay.add(&event) => events += 1,
            Ok(_) => duplicates += 1,
            Err(_) => malformed += 1,
        }
    }
    let stats = serde_json::json!({"lines": nonblank, "events": events,
        "duplicates": duplicates, "malformed": malformed});
    assert_json_eq("stats", &stats, &expected["stats"]);
    // And in reverse order: the first of two conflicting copies differs.
    let reversed: Vec<String> = lines.iter().rev().cloned().collect();
    check_against_expected(&replay_lines(&reversed), &expected);
}

#[test]
fn golden_sample_is_order_and_duplicate_independent() {
    let expected = expected();
    let lines = sample_lines();
    let reference = answers(&replay_lines(&lines), &expected);
    for seed in [1u64, 7, 42, 2021, 0xDEAD_BEEF] {
        let mut rng = Rng(seed);
        let mut shuffled = lines.clone();
        // Duplicate a random fifth of the lines, then shuffle everything.
        for _ in 0..lines.len() / 5 {
            shuffled.push(lines[rng.below(lines.len())].clone());
        }
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, rng.below(i + 1));
        }
        let replay = replay_lines(&shuffled);
        assert_json_eq(
            &format!("seed {seed}"),
            &answers(&replay, &expected),
            &reference,
        );
        check_against_expected(&replay, &expected);
    }
}

/// The viewers `expected-erasure.json` forgets, as (tenant, viewer).
fn forgotten(expected: &Value) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for (tenant, viewers) in expected["forgotten"].as_object().expect("forgotten") {
        for viewer in viewers.as_array().expect("viewer ids") {
            all.push((tenant.clone(), viewer.as_str().expect("an id").to_string()));
        }
    }
    all
}

#[test]
fn golden_erasures_give_their_answers_forgotten_before_after_or_amid_the_events() {
    let expected = expected_of(ERASURE_EXPECTED);
    let erased = forgotten(&expected);
    assert_eq!(erased.len(), 5);
    let lines = sample_lines();
    for seed in [3u64, 17, 99] {
        let mut rng = Rng(seed);
        let mut shuffled = lines.clone();
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, rng.below(i + 1));
        }
        // Each viewer forgotten at a random point of the load: before the
        // first event, amid them, or after the last.
        let mut at: Vec<usize> = erased
            .iter()
            .map(|_| rng.below(shuffled.len() + 1))
            .collect();
        at[0] = 0;
        at[1] = shuffled.len();
        let mut replay = Replay::new();
        for (index, line) in shuffled.iter().enumerate() {
            for (which, (tenant, viewer)) in erased.iter().enumerate() {
                if at[which] == index {
                    replay.forget(tenant, viewer);
                }
            }
            if let Ok(event) = parse_event(line) {
                replay.add(&event);
            }
        }
        for (which, (tenant, viewer)) in erased.iter().enumerate() {
            if at[which] == shuffled.len() {
                replay.forget(tenant, viewer);
            }
        }
        check_against_expected(&replay, &expected);
        // Forgetting again changes nothing.
        for (tenant, viewer) in &erased {
            replay.forget(tenant, viewer);
        }
        check_against_expected(&replay, &expected);
    }
}

#[test]
fn an_erased_viewer_is_another_tenants_viewer_no_more() {
    // acme's u-7 is not globex's u-7, whom expected-erasure.json forgets.
    let mut replay = replay_lines(&sample_lines());
    replay.forget("globex", "u-7");
    replay.forget("acme", "u-999");
    check_against_expected(&replay, &expected());
}

#[test]
fn other_tenant_and_unknown_presentations_are_not_found() {
    let replay = replay_lines(&sample_lines());
    assert!(replay.report("globex", "prs-acm-0000").is_none());
    assert!(replay.viewers("globex", "prs-acm-0000").is_none());
    assert!(replay.report("acme", "nope").is_none());
    assert!(replay.presentations("nobody").is_empty());
}

// ----- hand-made events ------------------------------------------------

fn ev(version: i64, at: i64, body: EventBody) -> Event {
    Event {
        stream_id: "p".into(),
        version,
        event_type: "Test".into(),
        occurred_at: at,
        tenant_id: "t".into(),
        schema_version: 1,
        content_hash: [0; 32],
        body,
    }
}

fn replay_of(events: &[Event]) -> Replay {
    let mut replay = Replay::new();
    for e in events {
        replay.add(e);
    }
    replay
}

fn report_of(events: &[Event]) -> PresentationReport {
    replay_of(events).report("t", "p").expect("presentation")
}

fn joined(viewer: &str, session: &str) -> EventBody {
    EventBody::ViewerJoined(ViewerJoined {
        viewer_id: viewer.into(),
        session_id: session.into(),
        name: None,
        email: None,
        department: None,
        country: None,
        region: None,
        device: None,
    })
}

fn heartbeat(viewer: &str, session: &str) -> EventBody {
    EventBody::ViewerHeartbeat {
        viewer_id: viewer.into(),
        session_id: session.into(),
    }
}

fn left(viewer: &str, session: &str) -> EventBody {
    EventBody::ViewerLeft {
        viewer_id: viewer.into(),
        session_id: session.into(),
    }
}

fn choices(ids: &[&str]) -> Vec<Choice> {
    ids.iter()
        .map(|id| Choice {
            id: id.to_string(),
            text: id.to_uppercase(),
        })
        .collect()
}

fn poll(id: &str, multiple: bool, options: &[&str]) -> EventBody {
    EventBody::PollCreated {
        poll_id: id.into(),
        question: "Q?".into(),
        options: choices(options),
        multiple_choice: multiple,
    }
}

fn vote(poll: &str, viewer: &str, options: &[&str]) -> EventBody {
    EventBody::PollVoted {
        poll_id: poll.into(),
        viewer_id: viewer.into(),
        option_ids: options.iter().map(|o| o.to_string()).collect(),
    }
}

fn asked(q: &str, viewer: &str, anonymous: bool) -> EventBody {
    EventBody::QuestionAsked {
        question_id: q.into(),
        viewer_id: viewer.into(),
        text: format!("text of {q}"),
        anonymous,
    }
}

fn answered(q: &str) -> EventBody {
    EventBody::QuestionAnswered {
        question_id: q.into(),
        answered_by: Person {
            id: "e-1".into(),
            name: "E".into(),
        },
        method: "live".into(),
    }
}

fn upvote(q: &str, viewer: &str, up: bool) -> EventBody {
    if up {
        EventBody::QuestionUpvoted {
            question_id: q.into(),
            viewer_id: viewer.into(),
        }
    } else {
        EventBody::QuestionUpvoteWithdrawn {
            question_id: q.into(),
            viewer_id: viewer.into(),
        }
    }
}

fn rating(q: &str, r: Option<i64>) -> SurveyAnswer {
    SurveyAnswer {
        question_id: q.into(),
        rating: r,
        option_ids: None,
        text: None,
    }
}

fn survey_created() -> EventBody {
    EventBody::SurveyCreated {
        survey_id: "s".into(),
        title: "S".into(),
        questions: vec![
            SurveyQuestion {
                id: "r".into(),
                kind: QuestionKind::Rating,
                text: "Rate".into(),
                scale: 5,
                options: vec![],
            },
            SurveyQuestion {
                id: "c".into(),
                kind: QuestionKind::Choice,
                text: "Pick".into(),
                scale: 5,
                options: choices(&["a", "b"]),
            },
            SurveyQuestion {
                id: "x".into(),
                kind: QuestionKind::Text,
                text: "Say".into(),
                scale: 5,
                options: vec![],
            },
        ],
    }
}

fn submitted(viewer: &str, answers: Vec<SurveyAnswer>) -> EventBody {
    EventBody::SurveySubmitted {
        survey_id: "s".into(),
        viewer_id: viewer.into(),
        answers,
    }
}

// ----- rules -----------------------------------------------------------

#[test]
fn duplicate_identity_first_wins_and_non_analytics_ignored() {
    let mut replay = Replay::new();
    assert!(replay.add(&ev(1, 0, EventBody::NotAnalytics)));
    assert!(
        replay.report("t", "p").is_none(),
        "non-analytics creates nothing"
    );
    // Same identity, different content: ignored.
    assert!(!replay.add(&ev(1, 0, EventBody::PresentationStarted)));
    assert!(replay.report("t", "p").is_none());
    assert!(replay.add(&ev(2, 5, EventBody::PresentationStarted)));
    let r = replay
        .report("t", "p")
        .expect("exists without PresentationCreated");
    assert_eq!(r.title, None);
    assert_eq!(r.presenter, None);
    assert_eq!(r.started_at.as_deref(), Some("1970-01-01T00:00:00.005Z"));
    assert_eq!(
        replay.presentation_ids(),
        vec![("t".to_string(), "p".to_string())]
    );
}

#[test]
fn title_from_highest_version_of_created_and_renamed() {
    let created = EventBody::PresentationCreated {
        title: "Created".into(),
        presenter: Person {
            id: "e".into(),
            name: "E".into(),
        },
        scheduled_start: 1000,
        timezone: "UTC".into(),
    };
    let renamed = EventBody::PresentationRenamed {
        title: "Renamed".into(),
    };
    // Rename arrives before the creation but has the higher version.
    let r = report_of(&[ev(5, 0, renamed.clone()), ev(1, 0, created.clone())]);
    assert_eq!(r.title.as_deref(), Some("Renamed"));
    assert_eq!(
        r.scheduled_start.as_deref(),
        Some("1970-01-01T00:00:01.000Z")
    );
    let r = report_of(&[ev(1, 0, renamed), ev(2, 0, created)]);
    assert_eq!(r.title.as_deref(), Some("Created"));
}

#[test]
fn leave_before_join_and_end_clamp() {
    let events = [
        ev(3, 50_000, left("u", "s1")),
        ev(2, 40_000, heartbeat("u", "s1")),
        ev(1, 10_000, joined("u", "s1")),
        // Heartbeats without any join are no session.
        ev(4, 10_000, heartbeat("v", "s2")),
        ev(5, 60_000, heartbeat("v", "s2")),
    ];
    let r = report_of(&events);
    assert_eq!(r.attendance.sessions, 1);
    assert_eq!(r.attendance.unique_viewers, 1);
    assert_eq!(r.attendance.total_watch_seconds, 40);
    assert_eq!(r.attendance.peak_concurrent_viewers, 1);
    // Ended at 30 s: the session is clamped to [10 s, 30 s].
    let mut events = events.to_vec();
    events.push(ev(6, 30_000, EventBody::PresentationEnded));
    let replay = replay_of(&events);
    let r = replay.report("t", "p").expect("report");
    assert_eq!(r.attendance.total_watch_seconds, 20);
    let rows = replay.viewers("t", "p").expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].last_seen_at, "1970-01-01T00:00:30.000Z");
    assert_eq!(rows[0].first_joined_at, "1970-01-01T00:00:10.000Z");
    // Ended before the join: duration 0, never negative.
    let r = report_of(&[
        ev(1, 10_000, joined("u", "s1")),
        ev(2, 5_000, EventBody::PresentationEnded),
    ]);
    assert_eq!(r.attendance.total_watch_seconds, 0);
    assert_eq!(r.attendance.average_watch_seconds, 0.0);
    assert_eq!(r.attendance.peak_concurrent_viewers, 0);
}

#[test]
fn zero_length_sessions_never_count_in_peak() {
    let events = [
        // u: [0, 10 s); v: zero length at 5 s; w: starts when u ends.
        ev(1, 0, joined("u", "s1")),
        ev(2, 10_000, left("u", "s1")),
        ev(3, 5_000, joined("v", "s2")),
        ev(4, 10_000, joined("w", "s3")),
        ev(5, 20_000, left("w", "s3")),
        // u again on a second device, overlapping: still one viewer.
        ev(6, 2_000, joined("u", "s4")),
        ev(7, 8_000, heartbeat("u", "s4")),
    ];
    let r = report_of(&events);
    assert_eq!(r.attendance.peak_concurrent_viewers, 1);
    assert_eq!(r.attendance.sessions, 4);
    assert_eq!(r.attendance.unique_viewers, 3);
    // 10 + 0 + 10 + 6 = 26 s over 3 viewers = 8.666… → 8.7
    assert_eq!(r.attendance.total_watch_seconds, 26);
    assert_eq!(r.attendance.average_watch_seconds, 8.7);
    let r = report_of(&[
        ev(1, 0, joined("u", "s1")),
        ev(2, 10_000, left("u", "s1")),
        ev(3, 9_999, joined("v", "s2")),
        ev(4, 10_001, left("v", "s2")),
    ]);
    assert_eq!(r.attendance.peak_concurrent_viewers, 2);
}

#[test]
fn session_attributes_from_lowest_version_join_and_row_from_highest() {
    let join = |viewer: &str, session: &str, device: &str, dept: Option<&str>| {
        EventBody::ViewerJoined(ViewerJoined {
            viewer_id: viewer.into(),
            session_id: session.into(),
            name: Some("N".into()),
            email: Some(String::new()),
            department: dept.map(str::to_string),
            country: Some("fr".into()),
            region: None,
            device: Some(device.into()),
        })
    };
    let replay = replay_of(&[
        ev(3, 3_000, join("u", "s1", "Mobile", Some("  "))),
        ev(1, 1_000, join("u", "s1", "TV", Some(" Sales "))),
        ev(2, 2_000, join("u", "s2", "desktop", None)),
    ]);
    let r = replay.report("t", "p").expect("report");
    assert_eq!(r.attendance.sessions, 2);
    let keys = |m: &BTreeMap<String, i64>| {
        m.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&r.attendance.by_device), ["desktop=1", "tv=1"]);
    assert_eq!(keys(&r.attendance.by_department), ["Sales=1", "unknown=1"]);
    assert_eq!(keys(&r.attendance.by_country), ["FR=1"]);
    let rows = replay.viewers("t", "p").expect("rows");
    assert_eq!(rows[0].device, "mobile");
    assert_eq!(rows[0].department, None);
    assert_eq!(rows[0].email, None);
    assert_eq!(rows[0].name.as_deref(), Some("N"));
    assert_eq!(rows[0].country, "FR");
    assert_eq!(rows[0].sessions, 2);
    assert_eq!(rows[0].first_joined_at, "1970-01-01T00:00:01.000Z");
}

#[test]
fn vote_after_close_is_ignored_entirely() {
    let events = [
        ev(1, 0, poll("p1", false, &["a", "b"])),
        ev(2, 1_000, vote("p1", "u", &["a"])),
        ev(4, 3_000, vote("p1", "u", &["b"])), // after closing: replaces nothing
        ev(
            3,
            2_000,
            EventBody::PollClosed {
                poll_id: "p1".into(),
            },
        ),
        ev(
            5,
            2_500,
            EventBody::PollClosed {
                poll_id: "p1".into(),
            },
        ),
        ev(6, 3_000, vote("p1", "v", &["b"])), // only a late vote: no vote
        ev(7, 2_000, vote("p1", "w", &["b"])), // exactly at closing: counts
    ];
    let r = report_of(&events);
    let p = &r.polls[0];
    assert_eq!(p.closed_at.as_deref(), Some("1970-01-01T00:00:02.000Z"));
    assert_eq!(p.respondents, 2);
    assert_eq!((p.options[0].votes, p.options[1].votes), (1, 1));
    // Without closing, the highest version counts.
    let r = report_of(&[events[0].clone(), events[1].clone(), events[2].clone()]);
    assert_eq!(
        (r.polls[0].options[0].votes, r.polls[0].options[1].votes),
        (0, 1)
    );
}

#[test]
fn single_choice_counts_first_valid_option_and_votes_wait_for_the_poll() {
    let mut replay = Replay::new();
    replay.add(&ev(2, 1_000, vote("p1", "u", &["zz", "b", "a"])));
    replay.add(&ev(3, 1_000, vote("p1", "v", &["zz"])));
    replay.add(&ev(4, 1_000, vote("p2", "u", &["b", "b", "a", "q"])));
    let r = replay.report("t", "p").expect("report");
    assert!(r.polls.is_empty(), "no PollCreated yet");
    replay.add(&ev(1, 0, poll("p1", false, &["a", "b"])));
    replay.add(&ev(5, 0, poll("p2", true, &["a", "b"])));
    let r = replay.report("t", "p").expect("report");
    let votes = |p: &PollReport| p.options.iter().map(|o| o.votes).collect::<Vec<_>>();
    assert_eq!(r.polls[0].poll_id, "p1");
    assert_eq!(votes(&r.polls[0]), [0, 1]);
    assert_eq!(r.polls[0].respondents, 1);
    assert_eq!(votes(&r.polls[1]), [1, 1]);
    assert_eq!(r.polls[1].respondents, 1);
    let rows = replay_of(&[
        ev(1, 0, poll("p1", false, &["a", "b"])),
        ev(2, 0, vote("p1", "u", &["a"])),
        ev(3, 0, vote("p1", "v", &["zz"])),
        ev(4, 0, joined("u", "s1")),
        ev(5, 0, joined("v", "s2")),
    ])
    .viewers("t", "p")
    .expect("rows");
    assert_eq!(rows[0].polls_answered, 1);
    assert_eq!(rows[1].polls_answered, 0);
}

#[test]
fn polls_ordered_by_creation_time_then_id() {
    let r = report_of(&[
        ev(1, 5, poll("b", false, &["a"])),
        ev(2, 5, poll("a", false, &["a"])),
        ev(3, 1, poll("c", false, &["a"])),
    ]);
    let ids: Vec<&str> = r.polls.iter().map(|p| p.poll_id.as_str()).collect();
    assert_eq!(ids, ["c", "a", "b"]);
}

#[test]
fn survey_rules() {
    let choice = |ids: &[&str]| SurveyAnswer {
        question_id: "c".into(),
        rating: None,
        option_ids: Some(ids.iter().map(|i| i.to_string()).collect()),
        text: None,
    };
    let text = |t: &str| SurveyAnswer {
        question_id: "x".into(),
        rating: None,
        option_ids: None,
        text: Some(t.into()),
    };
    let events = [
        ev(1, 0, survey_created()),
        // u: first answer to r counts (4), the duplicated 1 does not;
        // answer to an unknown question is ignored.
        ev(
            2,
            0,
            submitted(
                "u",
                vec![
                    rating("r", Some(4)),
                    rating("r", Some(1)),
                    rating("zz", Some(3)),
                    choice(&["a", "a", "b", "q"]),
                    text(" hi "),
                ],
            ),
        ),
        // v: rating 0 and a blank text are invalid; choice only unknown ids.
        ev(
            3,
            0,
            submitted("v", vec![rating("r", Some(0)), choice(&["q"]), text("  ")]),
        ),
        // w: first submission replaced by the later one (rating 6 invalid).
        ev(4, 0, submitted("w", vec![rating("r", Some(5))])),
        ev(
            5,
            0,
            submitted("w", vec![rating("r", Some(6)), choice(&["b"])]),
        ),
        // y: first answer to r is invalid, so r is unanswered.
        ev(
            6,
            0,
            submitted("y", vec![rating("r", None), rating("r", Some(3))]),
        ),
        // z: 5 → average (4 + 5) / 2 = 4.5
        ev(7, 0, submitted("z", vec![rating("r", Some(5))])),
    ];
    let r = report_of(&events);
    let s = serde_json::to_value(&r.surveys[0]).expect("json");
    assert_eq!(
        s,
        serde_json::json!({
            "surveyId": "s", "title": "S", "responses": 5,
            "questions": [
                {"questionId": "r", "kind": "rating", "text": "Rate", "answered": 2,
                 "averageRating": 4.5,
                 "distribution": {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}},
                {"questionId": "c", "kind": "choice", "text": "Pick", "answered": 2,
                 "options": [{"optionId": "a", "text": "A", "count": 1},
                             {"optionId": "b", "text": "B", "count": 2}]},
                {"questionId": "x", "kind": "text", "text": "Say", "answered": 1}
            ]
        })
    );
    // Submissions before the SurveyCreated are kept.
    let late = report_of(&[events[1].clone(), events[6].clone(), events[0].clone()]);
    assert_eq!(late.surveys[0].responses, 2);
    let none = report_of(&[ev(1, 0, survey_created())]);
    match &none.surveys[0].questions[0].detail {
        SurveyQuestionDetail::Rating { average_rating, .. } => {
            assert_eq!(*average_rating, None)
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn rating_average_rounds_half_away_from_zero() {
    // 1 + 2 + 2 + 2 + 2 + 2 + 2 + 2 = 15 over 8 = 1.875 → 1.88
    let mut events = vec![ev(1, 0, survey_created())];
    for (i, r) in [1, 2, 2, 2, 2, 2, 2, 2].into_iter().enumerate() {
        let v = i as i64 + 2;
        events.push(ev(
            v,
            0,
            submitted(&format!("u{v}"), vec![rating("r", Some(r))]),
        ));
    }
    let r = report_of(&events);
    match &r.surveys[0].questions[0].detail {
        SurveyQuestionDetail::Rating { average_rating, .. } => {
            assert_eq!(*average_rating, Some(1.88))
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn qna_rules() {
    let events = [
        ev(1, 0, asked("q1", "u1", false)),
        ev(2, 1_000, asked("q2", "u2", true)),
        ev(3, 2_000, asked("q3", "u1", false)),
        // q1: answered then dismissed (higher version) → dismissed.
        ev(10, 5_000, answered("q1")),
        ev(
            11,
            6_000,
            EventBody::QuestionDismissed {
                question_id: "q1".into(),
            },
        ),
        // q2: dismissed then answered twice → answered; earliest answer
        // 1_050 ms after asking → 1.05 s → 1.1
        ev(12, 2_050, answered("q2")),
        ev(
            13,
            1_500,
            EventBody::QuestionDismissed {
                question_id: "q2".into(),
            },
        ),
        ev(14, 9_000, answered("q2")),
        // q3: answered before asked → clamped at 0.
        ev(15, 1_000, answered("q3")),
        // Upvotes: q1 by a, b; b withdraws (higher version); c upvotes twice.
        ev(20, 0, upvote("q1", "a", true)),
        ev(22, 0, upvote("q1", "b", false)),
        ev(21, 0, upvote("q1", "b", true)),
        ev(23, 0, upvote("q2", "c", true)),
        ev(24, 0, upvote("q2", "c", true)),
        ev(25, 0, upvote("q2", "d", true)),
        // Withdrawn then upvoted again: counts.
        ev(26, 0, upvote("q3", "a", false)),
        ev(27, 0, upvote("q3", "a", true)),
        // A question never asked: its events do not count.
        ev(30, 0, upvote("q9", "a", true)),
        ev(31, 0, answered("q9")),
    ];
    let r = report_of(&events);
    let q = &r.qna;
    assert_eq!(
        (q.asked, q.open, q.answered, q.dismissed, q.upvotes),
        (3, 0, 2, 1, 4)
    );
    // (1.05 + 0) / 2 = 0.525 → 0.5
    assert_eq!(q.average_seconds_to_answer, Some(0.5));
    let top: Vec<(&str, i64, Option<&str>, QuestionStatus)> = q
        .top
        .iter()
        .map(|t| {
            (
                t.question_id.as_str(),
                t.upvotes,
                t.asked_by.as_deref(),
                t.status,
            )
        })
        .collect();
    assert_eq!(
        top,
        [
            ("q2", 2, None, QuestionStatus::Answered),
            ("q1", 1, Some("u1"), QuestionStatus::Dismissed),
            ("q3", 1, Some("u1"), QuestionStatus::Answered),
        ]
    );
    let v = serde_json::to_value(&q.top[0]).expect("json");
    assert_eq!(v["askedBy"], Value::Null);
    assert_eq!(v["status"], "answered");
    let only_q2 = report_of(&[events[1].clone(), events[5].clone()]);
    assert_eq!(only_q2.qna.average_seconds_to_answer, Some(1.1));
    let none = report_of(&[events[0].clone()]);
    assert_eq!(none.qna.average_seconds_to_answer, None);
    assert_eq!(none.qna.open, 1);
}

#[test]
fn top_is_at_most_ten_ordered_by_upvotes_time_id() {
    let mut events = Vec::new();
    let mut v = 0;
    for i in 0..12 {
        v += 1;
        // All asked at the same time except q11, asked first.
        let at = if i == 11 { -1 } else { 0 };
        events.push(ev(v, at, asked(&format!("q{i:02}"), "u", false)));
    }
    v += 1;
    events.push(ev(v, 0, upvote("q05", "a", true)));
    let r = report_of(&events);
    let ids: Vec<&str> = r.qna.top.iter().map(|t| t.question_id.as_str()).collect();
    assert_eq!(
        ids,
        ["q05", "q11", "q00", "q01", "q02", "q03", "q04", "q06", "q07", "q08"]
    );
}

#[test]
fn viewer_engagement_counts() {
    let replay = replay_of(&[
        ev(1, 0, joined("u", "s1")),
        ev(2, 0, asked("q1", "u", false)),
        ev(3, 0, asked("q2", "u", true)),
        ev(4, 0, asked("q3", "u", false)),
        ev(5, 0, survey_created()),
        ev(6, 0, submitted("u", vec![])),
        // A survey whose creation is missing does not count.
        ev(
            7,
            0,
            EventBody::SurveySubmitted {
                survey_id: "other".into(),
                viewer_id: "u".into(),
                answers: vec![],
            },
        ),
    ]);
    let rows = replay.viewers("t", "p").expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].questions_asked, 2);
    assert_eq!(rows[0].surveys_submitted, 1);
    assert_eq!(rows[0].polls_answered, 0);
    assert_eq!(rows[0].watch_seconds, 0);
    let list = replay.presentations("t");
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].questions, list[0].surveys, list[0].polls),
        (3, 1, 0)
    );
}

#[test]
fn tenants_are_separate() {
    let mut other = ev(1, 0, joined("u", "s1"));
    other.tenant_id = "t2".into();
    other.stream_id = "p2".into();
    let replay = replay_of(&[ev(1, 0, joined("u", "s1")), other]);
    assert!(replay.report("t", "p2").is_none());
    assert!(replay.report("t2", "p").is_none());
    assert_eq!(replay.presentations("t").len(), 1);
    assert_eq!(replay.presentations("t2")[0].presentation_id, "p2");
}

#[test]
fn extreme_values_never_panic() {
    let mut events = vec![
        ev(1, i64::MIN, joined("u", "s1")),
        ev(2, i64::MAX, heartbeat("u", "s1")),
        ev(3, i64::MAX, joined("v", "s2")),
        ev(4, i64::MIN, asked("q", "u", false)),
        ev(5, i64::MAX, answered("q")),
        ev(
            6,
            0,
            EventBody::SurveyCreated {
                survey_id: "s".into(),
                title: "S".into(),
                questions: vec![
                    SurveyQuestion {
                        id: "big".into(),
                        kind: QuestionKind::Rating,
                        text: String::new(),
                        scale: i64::MAX,
                        options: vec![],
                    },
                    SurveyQuestion {
                        id: "neg".into(),
                        kind: QuestionKind::Rating,
                        text: String::new(),
                        scale: -3,
                        options: vec![],
                    },
                ],
            },
        ),
        ev(
            7,
            0,
            submitted(
                "u",
                vec![rating("big", Some(i64::MAX)), rating("neg", Some(1))],
            ),
        ),
        ev(i64::MAX, i64::MAX, EventBody::PresentationEnded),
    ];
    events.push(ev(
        8,
        0,
        submitted("v", vec![rating("big", Some(i64::MAX))]),
    ));
    let replay = replay_of(&events);
    let r = replay.report("t", "p").expect("report");
    let _ = serde_json::to_string(&r).expect("json");
    let _ = replay.viewers("t", "p").expect("rows");
    let _ = replay.presentations("t");
    assert_eq!(r.surveys[0].questions[0].answered, 2);
    assert_eq!(r.surveys[0].questions[1].answered, 0);
}
