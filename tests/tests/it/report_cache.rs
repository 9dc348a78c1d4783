//! "The report cache must never serve a report older than the last committed
//! load" (issue 16 item 5): a report computed from an older state, whether
//! its cache write lands before or after a fresher one, is never served once
//! a later load committed; and under concurrent loaders and readers no
//! served report shows less than what was committed before its read began
//! (`integration_tests::freshness`). `analytics::the_report_is_cached_per_revision`
//! covers the cache one step at a time.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use integration_tests::freshness::Committed;
use mysql::prelude::Queryable;
use mysql::{IsolationLevel, TxOpts};
use serde_json::json;
use shared::contract::{parse_event, DataPoint};
use shared::jobs::generate::{generate, GenerateOptions};
use shared::read::{presentation_report, presentation_report_read_only, Replay};
use shared::store::Database;

use crate::analytics::{heartbeat, joined, load};
use crate::helpers::TestDb;
use crate::loaders::{lambda_event, Loaders};

/// One snapshot for a whole report, as a slow report computed across a
/// commit would see.
fn snapshot_tx(conn: &mut mysql::PooledConn) -> mysql::Transaction<'_> {
    conn.start_transaction(
        TxOpts::default()
            .set_isolation_level(Some(IsolationLevel::RepeatableRead))
            .set_with_consistent_snapshot(true),
    )
    .unwrap()
}

fn cached_and_current_revision(test: &TestDb) -> (u64, u64) {
    test.rows::<(u64, u64)>(
        "SELECT r.source_revision, p.revision FROM agg_presentation_report r \
         JOIN dim_presentation p USING (presentation_key) WHERE p.presentation_id = 'p'",
    )[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_of_an_older_state_is_never_served_after_a_later_load() {
    let test = TestDb::new();
    load(
        &test,
        &[
            joined("p", 1, 0, "u-1", "s-1", json!({})),
            heartbeat("p", 2, 60, "u-1", "s-1"),
        ],
    )
    .await;
    let mut old_conn = test.conn();
    let mut conn = test.conn();

    // Its cache write lands after a fresher one: the fresher stays.
    let mut old = snapshot_tx(&mut old_conn);
    load(
        &test,
        &[
            joined("p", 3, 30, "u-2", "s-2", json!({})),
            heartbeat("p", 4, 90, "u-2", "s-2"),
        ],
    )
    .await;
    let before = Committed::read(&mut conn, "acme", "p").unwrap();
    let fresh = presentation_report(&mut conn, "acme", "p").unwrap();
    assert_eq!(fresh.attendance.sessions, 2);
    let older = presentation_report(&mut old, "acme", "p").unwrap();
    assert_eq!(older.attendance.sessions, 1, "the snapshot's state");
    old.commit().unwrap();
    let (cached, current) = cached_and_current_revision(&test);
    assert_eq!(cached, current, "the fresher copy stays");
    let served = presentation_report_read_only(&mut conn, "acme", "p").unwrap();
    assert_eq!(before.staleness(&served), None);
    assert_eq!(served, fresh);

    // Its cache write lands first (no fresher copy yet): it is kept under
    // its own revision and never served for the later one.
    conn.query_drop("DELETE FROM agg_presentation_report")
        .unwrap();
    let mut old = snapshot_tx(&mut old_conn);
    load(&test, &[heartbeat("p", 5, 120, "u-1", "s-1")]).await;
    let before = Committed::read(&mut conn, "acme", "p").unwrap();
    let older = presentation_report(&mut old, "acme", "p").unwrap();
    old.commit().unwrap();
    assert_eq!(older.attendance.total_watch_seconds, 60 + 60);
    let (cached, current) = cached_and_current_revision(&test);
    assert!(cached < current, "cached under its own, older, revision");
    for served in [
        presentation_report_read_only(&mut conn, "acme", "p").unwrap(),
        presentation_report(&mut conn, "acme", "p").unwrap(),
    ] {
        assert_eq!(before.staleness(&served), None);
        assert_eq!(served.attendance.total_watch_seconds, 120 + 60);
    }
    let (cached, current) = cached_and_current_revision(&test);
    assert_eq!(cached, current, "replaced by the current revision's");
}

/// What one reader saw.
#[derive(Default, Debug)]
struct Seen {
    checked: usize,
    from_fresh_cache: usize,
    stale: Vec<String>,
}

/// Reads the report until `done`, through the API's path (`api`: served
/// from the cache when fresh, never writing it) or the caching one, each
/// checked against the state committed before its read began.
fn read_until(mut conn: mysql::PooledConn, done: &AtomicBool, api: bool) -> Seen {
    let mut seen = Seen::default();
    while !done.load(Ordering::Acquire) {
        let Some(before) = Committed::read(&mut conn, "tenant-0", "prs-000000") else {
            continue;
        };
        seen.from_fresh_cache += usize::from(before.cache_is_fresh());
        let report = if api {
            presentation_report_read_only(&mut conn, "tenant-0", "prs-000000")
        } else {
            presentation_report(&mut conn, "tenant-0", "prs-000000")
        }
        .unwrap();
        seen.checked += 1;
        seen.stale.extend(before.staleness(&report));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_loads_never_leave_an_older_report_served() {
    // One live presentation's attendance in time order (only growing
    // figures, no `endedAt`), loaded by three loaders of one connection each
    // taking the next batch, while one reader writes the cache and another
    // reads as the API does.
    let options = GenerateOptions {
        tenants: 1,
        presentations: 1,
        viewers: 150,
        heartbeats: 8,
        seed: 5,
        shuffle: false,
        first_presentation: 0,
    };
    let mut export = Vec::new();
    generate(&options, &mut export).unwrap();
    let bodies: Vec<String> = String::from_utf8(export)
        .unwrap()
        .lines()
        .filter(|l| parse_event(l).unwrap().data_point() == Some(DataPoint::Attendance))
        .map(str::to_string)
        .collect();
    let batches: Arc<Vec<Vec<String>>> = Arc::new(bodies.chunks(25).map(<[_]>::to_vec).collect());

    let test = TestDb::new();
    let first = Loaders::new(&test).await;
    let mut loaders = Vec::new();
    for _ in 0..3 {
        let db = Arc::new(Database::connect(test.settings(), 1).await.unwrap());
        loaders.push(Arc::new(
            Loaders::with_database(db, Some(first.dlq_url.clone())).await,
        ));
    }
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = [false, true]
        .into_iter()
        .map(|api| {
            let (conn, done) = (test.conn(), done.clone());
            std::thread::spawn(move || read_until(conn, &done, api))
        })
        .collect();
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = loaders
        .into_iter()
        .map(|loaders| {
            let (batches, next) = (batches.clone(), next.clone());
            tokio::spawn(async move {
                while let Some(batch) = batches.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
                    let response = loaders
                        .get(DataPoint::Attendance)
                        .handle(lambda_event(&refs))
                        .await
                        .unwrap();
                    assert!(response.batch_item_failures.is_empty());
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    done.store(true, Ordering::Release);
    let seen: Vec<Seen> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    for s in &seen {
        assert!(s.stale.is_empty(), "older reports served: {:?}", s.stale);
        assert!(s.checked > 0, "{seen:?}");
    }
    // The race was run: reads began with a fresh cached copy (about half of
    // them here).
    assert!(seen.iter().any(|s| s.from_fresh_cache > 0), "{seen:?}");

    // Every event once; the served report, cached or not, is the replay's.
    assert_eq!(
        test.count("SELECT COUNT(*) FROM event_ledger") as usize,
        bodies.len()
    );
    let mut replay = Replay::new();
    for body in &bodies {
        replay.add(&parse_event(body).unwrap());
    }
    let expected = replay.report("tenant-0", "prs-000000").unwrap();
    let mut conn = test.conn();
    assert_eq!(
        presentation_report_read_only(&mut conn, "tenant-0", "prs-000000").unwrap(),
        expected
    );
    assert_eq!(
        presentation_report(&mut conn, "tenant-0", "prs-000000").unwrap(),
        expected
    );
    assert_eq!(
        presentation_report_read_only(&mut conn, "tenant-0", "prs-000000").unwrap(),
        expected,
        "again, from the cache"
    );
}
