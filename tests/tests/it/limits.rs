//! EVENTS.md's limits and tenant rule, as a property: arbitrary events
//! within and beyond the limits, repeated and conflicting across tenants,
//! go through the loaders without a batch ever failing, and the warehouse
//! then equals the reference computation.

use proptest::prelude::*;
use serde_json::{json, Value};
use shared::contract::{parse_event, DataPoint};

use crate::analytics::check_against_replay;

/// Ids around the limits: ordinary, repeated ones (so identities repeat and
/// conflict), white space at an edge (Unicode's, not only ASCII), 64 and 65
/// characters, empty, and arbitrary Unicode.
fn an_id(pool: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => proptest::sample::select(pool).prop_map(str::to_string),
        1 => proptest::sample::select(&[" ", "\t", "\u{a0}", "\u{3000}", "\u{2028}"][..])
            .prop_flat_map(move |blank| (proptest::sample::select(pool), any::<bool>())
                .prop_map(move |(id, before)| if before { format!("{blank}{id}") } else { format!("{id}{blank}") })),
        1 => (63usize..=65).prop_map(|n| "é".repeat(n)),
        1 => Just(String::new()),
        1 => "\\PC{1,8}",
    ]
}

/// Texts around 64, 255 and 4,000 characters (of one- to four-byte
/// characters, `ß` included: it doubles when upper-cased), white space at
/// the edges, or arbitrary Unicode.
fn a_text() -> impl Strategy<Value = String> {
    let lengths = proptest::sample::select(
        &[
            0usize, 1, 63, 64, 65, 127, 128, 254, 255, 256, 3999, 4000, 4001, 5000,
        ][..],
    );
    let chars = proptest::sample::select(&["a", "ß", "é", "中", "🙂", " "][..]);
    prop_oneof![
        (lengths, chars).prop_map(|(n, c)| c.repeat(n)),
        "\\s{0,2}\\PC{0,12}\\s{0,2}",
        proptest::sample::select(&["desktop", "Mobile", "TV", "fr", "de", " Sales ", "\u{a0}"][..])
            .prop_map(str::to_string),
    ]
}

/// Dates (ms) at and beyond both ends of 1970..=2099, and ordinary ones.
fn a_date() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => 1_631_000_000_000i64..1_631_010_000_000,
        1 => proptest::sample::select(&[0i64, -1, 4_102_444_799_999, 4_102_444_800_000, i64::MAX, i64::MIN][..]),
    ]
}

fn a_version() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => 1i64..12,
        1 => proptest::sample::select(&[0i64, -1, i64::MAX][..]),
    ]
}

const VIEWERS: &[&str] = &["u-1", "u-2", "u-3"];
const IDS: &[&str] = &["x-1", "x-2"];

fn a_data() -> impl Strategy<Value = (&'static str, Value)> {
    let viewer = || an_id(VIEWERS);
    prop_oneof![
        (viewer(), an_id(&["s-1", "s-2", "s-3"]), a_text(), a_text(), a_text(), a_text(), a_text())
            .prop_map(|(v, s, name, department, country, device, email)| ("ViewerJoined", json!({
                "viewerId": v, "sessionId": s,
                "profile": {"name": name, "email": email, "department": department},
                "location": {"country": country}, "device": device}))),
        (viewer(), an_id(&["s-1", "s-2"]), any::<bool>()).prop_map(|(v, s, left)| (
            if left { "ViewerLeft" } else { "ViewerHeartbeat" },
            json!({"viewerId": v, "sessionId": s}))),
        (an_id(IDS), a_text(), a_text(), a_text(), any::<bool>()).prop_map(|(p, q, o1, o2, multiple)| ("PollCreated", json!({
            "pollId": p, "question": q, "multipleChoice": multiple,
            "options": [{"id": o1, "text": q}, {"id": o2, "text": "two"}]}))),
        (an_id(IDS), viewer(), a_text()).prop_map(|(p, v, o)| ("PollVoted", json!({
            "pollId": p, "viewerId": v, "optionIds": [o]}))),
        (an_id(IDS), viewer(), a_text(), any::<bool>()).prop_map(|(q, v, text, anonymous)| ("QuestionAsked", json!({
            "questionId": q, "viewerId": v, "text": text, "anonymous": anonymous}))),
        (an_id(IDS), viewer()).prop_map(|(q, v)| ("QuestionUpvoted", json!({"questionId": q, "viewerId": v}))),
        (a_text(), a_text(), a_date(), a_text()).prop_map(|(title, name, start, timezone)| ("PresentationCreated", json!({
            "title": title, "presenter": {"id": name, "name": name},
            "scheduledStart": {"$date": {"$numberLong": start.to_string()}}, "timezone": timezone}))),
        (an_id(IDS), a_text(), a_text()).prop_map(|(s, title, question)| ("SurveyCreated", json!({
            "surveyId": s, "title": title,
            "questions": [{"id": "q-1", "kind": "text", "text": question}, {"id": question, "kind": "rating", "text": "r"}]}))),
        (an_id(IDS), viewer(), a_text()).prop_map(|(s, v, answer)| ("SurveySubmitted", json!({
            "surveyId": s, "viewerId": v,
            "answers": [{"questionId": "q-1", "text": answer}]}))),
    ]
}

/// One event document; tenants and streams from small pools so that the
/// same stream id appears under both tenants and identities repeat.
fn an_event() -> impl Strategy<Value = String> {
    (
        an_id(&["acme", "globex"]),
        an_id(&["p-1", "p-2"]),
        a_version(),
        a_date(),
        a_data(),
    )
        .prop_map(|(tenant, stream, version, at, (event_type, data))| {
            json!({
                "_id": {"$oid": "6140a1e5c2a4b3d2e1f0a9b8"},
                "streamId": stream, "version": {"$numberLong": version.to_string()},
                "type": event_type, "tenantId": tenant,
                "occurredAt": {"$date": {"$numberLong": at.to_string()}},
                "data": data,
            })
            .to_string()
        })
}

/// The loaders' route of a body (garbage goes to attendance's loader), so
/// that the lines can be given in the order they will be loaded in: the
/// first of two conflicting copies is then the same for both sides.
fn route(line: &str) -> DataPoint {
    parse_event(line)
        .ok()
        .and_then(|e| e.data_point())
        .unwrap_or(DataPoint::Attendance)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn events_within_and_beyond_the_limits_never_fail_a_batch_and_equal_the_reference(
        events in proptest::collection::vec(an_event(), 1..60),
        repeats in proptest::collection::vec(any::<proptest::sample::Index>(), 0..20),
        batch_size in 1usize..25,
    ) {
        let mut lines = events.clone();
        lines.extend(repeats.iter().map(|i| i.get(&events).clone()));
        lines.sort_by_key(|line| route(line));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // No message sent back, and every answer equals the replay's.
        let test = check_against_replay(&runtime, &lines, batch_size);
        // Each line is loaded, a duplicate or conflict, or malformed; none is
        // refused by the database.
        let (loaded, duplicates, malformed): (i64, i64, i64) = test.rows(
            "SELECT CAST(SUM(events_loaded) AS SIGNED), CAST(SUM(duplicates) AS SIGNED), \
             CAST(SUM(malformed) AS SIGNED) FROM load_run",
        )[0];
        let valid: Vec<_> = lines.iter().filter_map(|l| parse_event(l).ok()).collect();
        let distinct: std::collections::HashSet<_> = valid.iter().map(|e| e.identity()).collect();
        prop_assert_eq!(loaded, distinct.len() as i64);
        prop_assert_eq!(duplicates, (valid.len() - distinct.len()) as i64);
        prop_assert_eq!(malformed, (lines.len() - valid.len()) as i64);
        prop_assert_eq!(test.count("SELECT COUNT(*) FROM error_event WHERE kind = 'refused'"), 0);
        prop_assert_eq!(test.count("SELECT COUNT(*) FROM event_ledger"), distinct.len() as i64);
    }
}
