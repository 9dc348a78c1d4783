//! The report's attendance, folded in Rust from one range read of the
//! presentation's counted sessions (`AttendanceFold`): distinct viewers,
//! watch time, the peak of concurrent viewers and the breakdowns. The
//! presentation list's summaries reuse the same fold.

use std::collections::{BTreeMap, HashMap};

use mysql::prelude::Queryable;

use crate::contract::{average_seconds_1dp, floor_seconds, Attendance, UNKNOWN};
use crate::read::error::AnalyticsError;
use crate::read::sql::{bytes_at, stream, take, Scope, SESSION_END};

pub(super) fn attendance(
    conn: &mut impl Queryable,
    scope: &Scope,
) -> Result<Attendance, AnalyticsError> {
    let mut attendance = Attendance::default();
    for_each_attendance(conn, scope, true, |_, _, fold| {
        attendance = fold.finish();
    })?;
    Ok(attendance)
}

/// Streams the counted sessions of the presentations in `scope`, one
/// presentation after the other, and calls `done(key, revision, fold)` with
/// each presentation's figures (presentations without sessions are not
/// called). The breakdown columns are read only `with_breakdowns`.
///
/// One range read of `fact_session` in primary-key order, no sort and no
/// temporary table in the database: distinct counts and the peak are
/// computed here, which costs a few bytes per session of the presentation
/// being folded (see `AttendanceFold`).
pub(in crate::read) fn for_each_attendance(
    conn: &mut impl Queryable,
    scope: &Scope,
    with_breakdowns: bool,
    mut done: impl FnMut(u64, u64, AttendanceFold),
) -> Result<(), AnalyticsError> {
    let breakdowns = if with_breakdowns {
        "s.device, s.country, s.department"
    } else {
        "NULL, NULL, NULL"
    };
    let sql = format!(
        "SELECT s.presentation_key, p.revision, s.viewer_key, s.start_ms, {SESSION_END}, {breakdowns} \
         FROM dim_presentation p JOIN fact_session s ON s.presentation_key = p.presentation_key \
         WHERE {} AND s.join_version IS NOT NULL ORDER BY s.presentation_key",
        scope.condition
    );
    let db = |e: mysql::Error| AnalyticsError::database("reading sessions", e);
    let started = std::time::Instant::now();
    let mut current: Option<(u64, u64, AttendanceFold)> = None;
    for row in stream(conn, sql).map_err(db)? {
        let mut row = row.map_err(db)?;
        let key: u64 = take(&mut row, 0)?;
        let revision: u64 = take(&mut row, 1)?;
        if current.as_ref().is_none_or(|(k, _, _)| *k != key) {
            if let Some((k, r, fold)) = current.take() {
                done(k, r, fold);
            }
            current = Some((key, revision, AttendanceFold::default()));
        }
        if let Some((_, _, fold)) = current.as_mut() {
            let viewer: u64 = take(&mut row, 2)?;
            let start: i64 = take(&mut row, 3)?;
            let end: i64 = take(&mut row, 4)?;
            fold.add(viewer, start, end, [5, 6, 7].map(|i| bytes_at(&row, i)));
        }
    }
    if let Some((k, r, fold)) = current {
        done(k, r, fold);
    }
    tracing::debug!(
        what = "folding sessions",
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "analytics query"
    );
    Ok(())
}

/// The attendance of one presentation, folded from its sessions in any
/// order: per session, its viewer (numbered densely), and the breakdown
/// values it has; a viewer's first value per breakdown is kept per viewer,
/// any other value in a set, so distinct counts need no set in the common
/// case of one value per viewer.
#[derive(Default)]
pub(in crate::read) struct AttendanceFold {
    sessions: i64,
    pub(in crate::read) watch_ms: i128,
    /// viewer_key → dense viewer number.
    viewers: HashMap<u64, u32>,
    /// Sessions of positive length: (start, end, viewer number).
    intervals: Vec<(i64, i64, u32)>,
    /// Per breakdown: value bytes → value number, and the values' names.
    values: [HashMap<Vec<u8>, u32>; 3],
    /// Per viewer and breakdown, the number of the first value seen.
    first_values: Vec<[u32; 3]>,
    /// (breakdown, value, viewer) beyond each viewer's first value.
    other_values: std::collections::HashSet<(u8, u32, u32)>,
}

impl AttendanceFold {
    fn add(&mut self, viewer_key: u64, start: i64, end: i64, values: [Option<&[u8]>; 3]) {
        self.sessions += 1;
        self.watch_ms += (i128::from(end) - i128::from(start)).max(0);
        let next = self.viewers.len() as u32;
        let viewer = *self.viewers.entry(viewer_key).or_insert(next);
        if end > start {
            self.intervals.push((start, end, viewer));
        }
        let mut numbers = [0u32; 3];
        for (kind, value) in values.into_iter().enumerate() {
            // Stored normalised; missing is `unknown`.
            let value = value.unwrap_or(UNKNOWN.as_bytes());
            let map = &mut self.values[kind];
            numbers[kind] = match map.get(value) {
                Some(&n) => n,
                None => {
                    let n = map.len() as u32;
                    map.insert(value.to_vec(), n);
                    n
                }
            };
        }
        if viewer == next {
            self.first_values.push(numbers);
        } else {
            let first = self.first_values[viewer as usize];
            for kind in 0..3 {
                if numbers[kind] != first[kind] {
                    self.other_values
                        .insert((kind as u8, numbers[kind], viewer));
                }
            }
        }
    }

    /// The sessions of positive length (the counted sessions of §4):
    /// (start, end, viewer number), numbers dense from 0 below
    /// [`Self::unique_viewers`].
    pub(in crate::read) fn intervals(&self) -> &[(i64, i64, u32)] {
        &self.intervals
    }

    pub(in crate::read) fn unique_viewers(&self) -> i64 {
        self.viewers.len() as i64
    }

    /// Greatest number of distinct viewers with a session `start ≤ t < end`
    /// at one instant `t`: a sweep over the starts and ends in time order,
    /// ends first at equal times (a session ending at t is gone at t),
    /// counting a viewer while at least one of their sessions is open.
    pub(in crate::read) fn peak(&mut self) -> i64 {
        let mut points: Vec<(i64, bool, u32)> = Vec::with_capacity(self.intervals.len() * 2);
        for &(start, end, viewer) in &self.intervals {
            points.push((start, true, viewer));
            points.push((end, false, viewer));
        }
        points.sort_unstable();
        let mut open = vec![0u32; self.viewers.len()];
        let (mut present, mut peak) = (0i64, 0i64);
        for (_, starts, viewer) in points {
            let n = &mut open[viewer as usize];
            if starts {
                *n += 1;
                if *n == 1 {
                    present += 1;
                    peak = peak.max(present);
                }
            } else {
                *n -= 1;
                if *n == 0 {
                    present -= 1;
                }
            }
        }
        peak
    }

    fn finish(mut self) -> Attendance {
        let peak = self.peak();
        let viewers = self.unique_viewers();
        let mut counts: [Vec<i64>; 3] = std::array::from_fn(|k| vec![0; self.values[k].len()]);
        for first in &self.first_values {
            for kind in 0..3 {
                counts[kind][first[kind] as usize] += 1;
            }
        }
        for &(kind, value, _) in &self.other_values {
            counts[kind as usize][value as usize] += 1;
        }
        let [by_device, by_country, by_department] = std::array::from_fn(|kind| {
            std::mem::take(&mut self.values[kind])
                .into_iter()
                .map(|(name, n)| {
                    (
                        String::from_utf8_lossy(&name).into_owned(),
                        counts[kind][n as usize],
                    )
                })
                .collect::<BTreeMap<String, i64>>()
        });
        Attendance {
            unique_viewers: viewers,
            sessions: self.sessions,
            total_watch_seconds: floor_seconds(self.watch_ms),
            average_watch_seconds: average_seconds_1dp(self.watch_ms, viewers).unwrap_or(0.0),
            peak_concurrent_viewers: peak,
            by_device,
            by_country,
            by_department,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attendance_fold_counts_viewers_not_sessions() {
        let mut fold = AttendanceFold::default();
        let desktop: [Option<&[u8]>; 3] = [Some(b"desktop"), Some(b"US"), None];
        let mobile: [Option<&[u8]>; 3] = [Some(b"mobile"), Some(b"US"), Some(b"Sales")];
        // Viewer 1: two overlapping sessions, on two devices.
        fold.add(1, 0, 100, desktop);
        fold.add(1, 50, 150, mobile);
        // Viewer 2: a session ending when viewer 3's starts (never together).
        fold.add(2, 10, 60, desktop);
        fold.add(3, 60, 70, desktop);
        // Viewer 4: zero length, counted as a viewer but never present.
        fold.add(4, 55, 55, mobile);
        let a = fold.finish();
        assert_eq!((a.sessions, a.unique_viewers), (5, 4));
        // 100 + 100 + 50 + 10 + 0 ms.
        assert_eq!(a.total_watch_seconds, 0);
        assert_eq!(a.average_watch_seconds, 0.1);
        // At 55: viewer 1 (twice) and viewer 2; at 60 viewer 2 has left.
        assert_eq!(a.peak_concurrent_viewers, 2);
        let counts = |m: &BTreeMap<String, i64>| -> Vec<(String, i64)> {
            m.iter().map(|(k, v)| (k.clone(), *v)).collect()
        };
        assert_eq!(
            counts(&a.by_device),
            [("desktop".into(), 3), ("mobile".into(), 2)]
        );
        assert_eq!(counts(&a.by_country), [("US".into(), 4)]);
        assert_eq!(
            counts(&a.by_department),
            [("Sales".into(), 2), ("unknown".into(), 3)]
        );
    }
}
