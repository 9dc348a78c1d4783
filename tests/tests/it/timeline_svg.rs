//! The timeline drawn as an SVG chart (issue 16, item 6): the API's
//! `format=svg` and `warehouse timeline --format svg`, on the sample and on
//! a presentation whose title is all markup, live and then ended.
//!
//! How "one data point per bucket" is checked: the viewers' area outline is
//! the one polyline of its colour (`TIMELINE_SVG_VIEWERS_STROKE`), and its
//! vertices are the buckets, in time order, each as high as its figure (a
//! larger count is higher up, equal counts are level). That is the drawing
//! itself, not a side channel, and it holds at any scale or pixel size.

use std::sync::Arc;

use aws_lambda_events::encodings::Body;
use serde_json::{json, Value};
use shared::contract::DataPoint;
use shared::handlers::AnalyticsApi;
use shared::read::flags::{self, FlagState};
use shared::read::TIMELINE_SVG_VIEWERS_STROKE;
use shared::store::Database;

use crate::analytics::{at, ev, heartbeat, joined, load};
use crate::api::{event_json, get, lambda_event, sample_api};
use crate::helpers::{sample_expected, sample_expected_live, TestDb};

/// A title with every character XML escapes, and markup.
const MARKUP: &str = r#"<script>alert("x")</script> Q&A: 'quotes' & "more" <&"'>"#;

/// The body of a 200 `image/svg+xml` answer to `GET path?query` as the
/// path's own tenant.
async fn svg_of(api: &AnalyticsApi, path: &str, query: &str) -> String {
    let tenant = path.split('/').nth(2).expect("/tenants/{tenant}/…");
    let response = api
        .handle(lambda_event(event_json("GET", path, query, Some(tenant))))
        .await
        .expect("the handler always answers");
    assert_eq!(
        response.status_code, 200,
        "{path}?{query}: {:?}",
        response.body
    );
    assert_eq!(response.headers["content-type"], "image/svg+xml");
    assert_eq!(response.headers["cache-control"], "no-store");
    assert!(!response.is_base64_encoded);
    let Some(Body::Text(svg)) = response.body else {
        panic!("a text body: {:?}", response.body)
    };
    svg
}

/// What the tests read from a chart: its texts and the viewers' outline.
struct Chart {
    texts: Vec<String>,
    outline: Vec<(i32, i32)>,
}

fn chart_of(svg: &str) -> Chart {
    let doc = roxmltree::Document::parse(svg).expect("the SVG is well-formed XML");
    assert!(doc
        .root_element()
        .has_tag_name(("http://www.w3.org/2000/svg", "svg")));
    // The backend writes a line feed before and after each text, which SVG's
    // white space rules drop.
    let texts = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| {
            let text = n.text().unwrap_or("");
            let text = text.strip_prefix('\n').unwrap_or(text);
            text.strip_suffix('\n').unwrap_or(text).to_string()
        })
        .collect();
    let lines: Vec<_> = doc
        .descendants()
        .filter(|n| {
            n.has_tag_name("polyline") && n.attribute("stroke") == Some(TIMELINE_SVG_VIEWERS_STROKE)
        })
        .collect();
    let outline = match lines.as_slice() {
        [] => Vec::new(),
        [line] => line
            .attribute("points")
            .expect("points")
            .split_whitespace()
            .map(|p| {
                let (x, y) = p.split_once(',').expect("x,y");
                (x.parse().expect("x"), y.parse().expect("y"))
            })
            .collect(),
        _ => panic!("{} outlines of the viewers' colour", lines.len()),
    };
    Chart { texts, outline }
}

/// The outline has a vertex per bucket, in time order, at its figure.
fn assert_draws(chart: &Chart, buckets: &[Value], what: &str) {
    let points = &chart.outline;
    assert_eq!(points.len(), buckets.len(), "{what}: a vertex per bucket");
    assert!(
        points.windows(2).all(|p| p[0].0 < p[1].0),
        "{what}: in time order {points:?}"
    );
    let viewers: Vec<i64> = buckets
        .iter()
        .map(|b| b["viewers"].as_i64().unwrap())
        .collect();
    for (i, (a, pa)) in viewers.iter().zip(points).enumerate() {
        for (b, pb) in viewers.iter().zip(points) {
            assert_eq!(a.cmp(b), pb.1.cmp(&pa.1), "{what}: bucket {i} at {pa:?}");
        }
    }
}

/// `HH:MM:SS` of an RFC 3339 time.
fn clock(time: &Value) -> &str {
    &time.as_str().expect("a time")[11..19]
}

fn has(chart: &Chart, text: &str) -> bool {
    chart.texts.iter().any(|t| t == text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_draws_each_sample_timeline() {
    let (test, api) = sample_api().await;
    let reports = &sample_expected()["reports"];
    let live = sample_expected_live();
    for (id, expected) in live["presentations"].as_object().unwrap() {
        let timeline = &expected["timeline"];
        let tenant = timeline["tenantId"].as_str().unwrap();
        let path = format!("/tenants/{tenant}/presentations/{id}/timeline");
        let chart = chart_of(&svg_of(&api, &path, "format=svg").await);
        assert_draws(&chart, timeline["buckets"].as_array().unwrap(), id);
        let report = &reports[id];
        let title = report["title"].as_str().unwrap_or("Untitled presentation");
        assert!(has(&chart, title), "{id}: {:?}", chart.texts);
        let subtitle = format!("{id} · tenant {tenant} · 1-minute buckets");
        assert!(
            chart.texts.iter().any(|t| t.starts_with(&subtitle)),
            "{id}: {:?}",
            chart.texts
        );
        match &report["endedAt"] {
            Value::Null => {
                // Live: the badge, and the marker at dataThrough.
                assert!(has(&chart, "● LIVE"), "{id}: {:?}", chart.texts);
                let marker = format!("data through {} UTC", clock(&expected["dataThrough"]));
                assert!(has(&chart, &marker), "{id}: {:?}", chart.texts);
            }
            ended => {
                assert!(!chart.texts.iter().any(|t| t.contains("LIVE")), "{id}");
                let marker = format!("ended {} UTC", clock(ended));
                assert!(has(&chart, &marker), "{id}: {:?}", chart.texts);
            }
        }
    }
    // The sample has both kinds.
    assert!(reports["prs-glo-0001"]["endedAt"].is_null());
    assert!(reports["prs-acm-0000"]["endedAt"].is_string());

    let path = "/tenants/acme/presentations/prs-acm-0000/timeline";
    // Any letter case; json stays the default.
    svg_of(&api, path, "format=SVG").await;
    assert_eq!(get(&api, path, "").await.0, 200);
    assert_eq!(get(&api, path, "format=json").await.0, 200);
    // Another format: a 400 naming the two.
    for bad in ["format=png", "format=csv", "format=svg+xml"] {
        let (status, body) = get(&api, path, bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains("json (the default) or svg"),
            "{bad}: {error}"
        );
    }
    // The route's other rules hold for the picture too.
    let (status, _) = get(
        &api,
        "/tenants/acme/presentations/nope/timeline",
        "format=svg",
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = get(
        &api,
        "/tenants/acme/presentations/prs-glo-0001/timeline",
        "format=svg",
    )
    .await;
    assert_eq!(status, 404, "another tenant's presentation");
    // Attendance off: no picture (it is all attendance), unless in shadow.
    flags::set_flag(
        &mut test.conn(),
        "acme",
        DataPoint::Attendance,
        FlagState::Shadow,
    )
    .unwrap();
    let (status, body) = get(&api, path, "format=svg").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("shadow=true"));
    svg_of(&api, path, "format=svg&shadow=true").await;
}

/// A live presentation `p` of acme titled [`MARKUP`]: two viewers over
/// three minutes, no `PresentationEnded`.
fn markup_presentation() -> Vec<String> {
    vec![
        ev(
            "p",
            1,
            &at(-60),
            "PresentationCreated",
            json!({"title": MARKUP, "presenter": {"id": "e-1", "name": "Dana"},
                   "scheduledStart": {"$date": at(0)}, "timezone": "UTC"}),
        ),
        joined("p", 2, 0, "u-a", "s-a", json!({})),
        heartbeat("p", 3, 180, "u-a", "s-a"),
        joined("p", 4, 70, "u-b", "s-b", json!({})),
        heartbeat("p", 5, 100, "u-b", "s-b"),
    ]
}

/// `warehouse timeline --tenant acme --presentation p` with `args`, on the
/// test's database: its stdout, or its stderr when it fails.
fn warehouse_timeline(test: &TestDb, args: &[&str]) -> Result<String, String> {
    // Built by `cargo build --workspace --bins` (scripts/test.sh).
    let warehouse =
        warehouse_cli::processes::workspace_binary("warehouse").unwrap_or_else(|e| panic!("{e:#}"));
    let output = std::process::Command::new(warehouse)
        .args(["timeline", "--tenant", "acme", "--presentation", "p"])
        .args(args)
        .env("DATABASE_URL", &test.url)
        .output()
        .expect("warehouse runs");
    let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).expect("UTF-8");
    match output.status.success() {
        true => Ok(text(&output.stdout)),
        false => Err(text(&output.stderr)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_title_full_of_markup_is_escaped_live_and_ended_from_the_api_and_the_cli() {
    let test = TestDb::new();
    load(&test, &markup_presentation()).await;
    let db = Database::connect(test.settings(), shared::handlers::LAMBDA_MAX_CONNECTIONS)
        .await
        .expect("the API's database");
    let api = AnalyticsApi::new(Arc::new(db));
    let path = "/tenants/acme/presentations/p/timeline";

    let svg = svg_of(&api, path, "format=svg").await;
    // Escaped once: no markup of the title's, no escape escaped again.
    assert!(!svg.contains("<script>"), "{svg}");
    assert!(
        !svg.contains("&amp;lt;") && !svg.contains("&amp;amp;"),
        "{svg}"
    );
    let chart = chart_of(&svg);
    assert!(has(&chart, MARKUP), "{:?}", chart.texts);
    // Live: from 10:00 to 10:03, u-b from 10:01:10 to 10:01:40.
    let buckets = [(1, 1, 0), (2, 1, 1), (1, 0, 0)]
        .map(|(viewers, joined, left)| json!({"viewers": viewers, "joined": joined, "left": left}));
    assert_draws(&chart, &buckets, "live");
    assert!(has(&chart, "● LIVE"), "{:?}", chart.texts);
    assert!(
        has(&chart, "data through 10:03:00 UTC"),
        "{:?}",
        chart.texts
    );

    // The command draws the same picture from the same data.
    let from_cli = warehouse_timeline(&test, &["--format", "svg"]).unwrap();
    assert_eq!(from_cli, svg);
    let json: Value = serde_json::from_str(&warehouse_timeline(&test, &[]).unwrap()).unwrap();
    assert_eq!(json["buckets"].as_array().unwrap().len(), 3);
    let err = warehouse_timeline(&test, &["--format", "png"]).unwrap_err();
    assert!(err.contains("json (the default) or svg"), "{err}");

    // Ended: the end's marker instead of the badge.
    load(
        &test,
        &[ev("p", 6, &at(170), "PresentationEnded", json!({}))],
    )
    .await;
    let chart = chart_of(&svg_of(&api, path, "format=svg").await);
    assert!(
        !chart.texts.iter().any(|t| t.contains("LIVE")),
        "{:?}",
        chart.texts
    );
    assert!(has(&chart, "ended 10:02:50 UTC"), "{:?}", chart.texts);
    assert!(has(&chart, MARKUP));
    let chart = chart_of(&warehouse_timeline(&test, &["--format", "svg"]).unwrap());
    assert!(has(&chart, "ended 10:02:50 UTC"), "{:?}", chart.texts);
    assert!(has(&chart, MARKUP));
}
