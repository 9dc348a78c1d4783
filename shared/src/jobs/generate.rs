//! A synthetic export made to the contract, at any size, for benchmarks and
//! load tests. Deterministic for a seed; written as a stream (memory is
//! bounded by one presentation's events).

use std::io::{self, Write};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::contract::format_time;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    pub tenants: u32,
    pub presentations: u32,
    /// Viewers per presentation.
    pub viewers: u32,
    /// Heartbeats per session (one every 30 s).
    pub heartbeats: u32,
    pub seed: u64,
    /// Shuffle each presentation's events (delivery order is arbitrary).
    pub shuffle: bool,
    /// Number of the first presentation, so that several exports can be combined.
    pub first_presentation: u32,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            tenants: 2,
            presentations: 10,
            viewers: 100,
            heartbeats: 20,
            seed: 1,
            shuffle: true,
            first_presentation: 0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateSummary {
    pub lines: u64,
    pub bytes: u64,
}

const DEVICES: [&str; 5] = ["desktop", "mobile", "tablet", "tv", "Desktop"];
const COUNTRIES: [&str; 6] = ["us", "GB", "fr", "JP", "BR", "IN"];
const DEPARTMENTS: [&str; 6] = [
    "Sales",
    " Marketing ",
    "Engineering",
    "Finance",
    "Support",
    "",
];
const BASE_MS: i64 = 1_631_628_000_000; // 2021-09-14T14:00:00Z

/// Writes the export to `out`; returns how much was written.
pub fn generate(options: &GenerateOptions, out: &mut dyn Write) -> io::Result<GenerateSummary> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut summary = GenerateSummary::default();
    let mut object_id: u64 = 0;
    for p in options.first_presentation..options.first_presentation + options.presentations {
        let tenant = format!("tenant-{}", p % options.tenants.max(1));
        let stream = format!("prs-{p:06}");
        let start = BASE_MS + i64::from(p) * 86_400_000;
        let mut events = presentation_events(options, &mut rng, &stream, start);
        if options.shuffle {
            events.shuffle(&mut rng);
        }
        for (version, event_type, occurred, data, canonical) in events {
            object_id += 1;
            let line = document(
                object_id,
                &stream,
                version,
                &event_type,
                occurred,
                &tenant,
                data,
                canonical,
            );
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
            summary.lines += 1;
            summary.bytes += line.len() as u64 + 1;
        }
    }
    out.flush()?;
    Ok(summary)
}

type Generated = (i64, String, i64, Value, bool);

#[allow(clippy::too_many_arguments)]
fn document(
    object_id: u64,
    stream: &str,
    version: i64,
    event_type: &str,
    occurred: i64,
    tenant: &str,
    data: Value,
    canonical: bool,
) -> String {
    let oid = format!("{object_id:024x}");
    if canonical {
        json!({"_id": {"$oid": oid}, "streamId": stream, "version": {"$numberLong": version.to_string()},
               "type": event_type, "occurredAt": {"$date": {"$numberLong": occurred.to_string()}},
               "tenantId": tenant, "data": data})
        .to_string()
    } else {
        json!({"_id": {"$oid": oid}, "streamId": stream, "version": version, "type": event_type,
               "occurredAt": {"$date": format_time(occurred)}, "tenantId": tenant, "data": data})
        .to_string()
    }
}

fn presentation_events(
    options: &GenerateOptions,
    rng: &mut StdRng,
    stream: &str,
    start: i64,
) -> Vec<Generated> {
    let mut events: Vec<(String, i64, Value)> = Vec::new();
    let session_ms = i64::from(options.heartbeats + 1) * 30_000;
    let end = start + session_ms + 120_000;
    events.push((
        "PresentationCreated".into(),
        start - 86_400_000,
        json!({"title": format!("All hands {stream}"), "presenter": {"id": "e-1", "name": "Dana"},
               "scheduledStart": {"$date": format_time(start)}, "timezone": "Europe/Paris"}),
    ));
    events.push(("PresentationStarted".into(), start, json!({})));
    events.push(("SlideChanged".into(), start + 1000, json!({"slide": 2})));
    let polls = ["poll-0", "poll-1"];
    for (i, poll) in polls.iter().enumerate() {
        events.push((
            "PollCreated".into(),
            start + 60_000 * (i as i64 + 1),
            json!({"pollId": poll, "question": "How is it going?", "multipleChoice": i == 1,
                   "options": [{"id": "a", "text": "Good"}, {"id": "b", "text": "Fine"}, {"id": "c", "text": "Bad"}]}),
        ));
    }
    events.push((
        "SurveyCreated".into(),
        start + 90_000,
        json!({"surveyId": "survey-0", "title": "Feedback", "questions": [
            {"id": "q1", "kind": "rating", "text": "Useful?", "scale": 5},
            {"id": "q2", "kind": "choice", "text": "Topics?", "options": [{"id": "x", "text": "X"}, {"id": "y", "text": "Y"}]},
            {"id": "q3", "kind": "text", "text": "Anything else?"}]}),
    ));
    let mut questions = 0;
    for v in 0..options.viewers {
        let viewer = format!("u-{v}");
        let session = format!("s-{v}");
        let joined = start + rng.random_range(0..120_000);
        events.push((
            "ViewerJoined".into(),
            joined,
            json!({"viewerId": viewer, "sessionId": session,
                   "profile": {"name": format!("Viewer {v}"), "email": format!("{viewer}@example.com"),
                               "department": DEPARTMENTS[v as usize % DEPARTMENTS.len()]},
                   "location": {"country": COUNTRIES[v as usize % COUNTRIES.len()], "region": "r"},
                   "device": DEVICES[rng.random_range(0..DEVICES.len())]}),
        ));
        for h in 1..=options.heartbeats {
            events.push((
                "ViewerHeartbeat".into(),
                joined + i64::from(h) * 30_000,
                json!({"viewerId": viewer, "sessionId": session}),
            ));
        }
        events.push((
            "ViewerLeft".into(),
            joined + session_ms,
            json!({"viewerId": viewer, "sessionId": session}),
        ));
        if rng.random_bool(0.6) {
            events.push((
                "PollVoted".into(),
                joined + 100_000,
                json!({"pollId": polls[rng.random_range(0..2)], "viewerId": viewer, "optionIds": ["a", "c"]}),
            ));
        }
        if rng.random_bool(0.3) {
            events.push((
                "SurveySubmitted".into(),
                joined + 200_000,
                json!({"surveyId": "survey-0", "viewerId": viewer, "answers": [
                    {"questionId": "q1", "rating": rng.random_range(1..=5)},
                    {"questionId": "q2", "optionIds": ["y"]},
                    {"questionId": "q3", "text": "Thanks"}]}),
            ));
        }
        if rng.random_bool(0.05) {
            let question = format!("qa-{questions}");
            questions += 1;
            events.push((
                "QuestionAsked".into(),
                joined + 150_000,
                json!({"questionId": question, "viewerId": viewer, "text": "When is the next one? 🙂",
                       "anonymous": rng.random_bool(0.3)}),
            ));
            if rng.random_bool(0.5) {
                events.push((
                    "QuestionAnswered".into(),
                    joined + 400_000,
                    json!({"questionId": question, "answeredBy": {"id": "e-1", "name": "Dana"}, "method": "live"}),
                ));
            }
        }
        if questions > 0 && rng.random_bool(0.2) {
            events.push((
                "QuestionUpvoted".into(),
                joined + 300_000,
                json!({"questionId": format!("qa-{}", rng.random_range(0..questions)), "viewerId": viewer}),
            ));
        }
    }
    events.push((
        "PollClosed".into(),
        end - 60_000,
        json!({"pollId": "poll-0"}),
    ));
    events.push(("PresentationEnded".into(), end, json!({})));
    // Versions follow the time order, as the store appends them.
    events.sort_by_key(|(_, at, _)| *at);
    events
        .into_iter()
        .enumerate()
        .map(|(i, (event_type, at, data))| {
            let canonical = i % 7 == 3;
            (i as i64 + 1, event_type, at, data, canonical)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::parse_event;

    #[test]
    fn generated_exports_are_valid_and_deterministic() {
        let options = GenerateOptions {
            presentations: 3,
            viewers: 20,
            heartbeats: 4,
            ..GenerateOptions::default()
        };
        let mut first = Vec::new();
        let summary = generate(&options, &mut first).unwrap();
        let mut second = Vec::new();
        generate(&options, &mut second).unwrap();
        assert_eq!(first, second);
        let text = String::from_utf8(first).unwrap();
        assert_eq!(text.lines().count() as u64, summary.lines);
        for line in text.lines() {
            parse_event(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        }
    }
}
