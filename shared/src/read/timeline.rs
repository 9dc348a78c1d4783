//! The attendance timeline of a presentation (ANALYTICS.md §4), folded in
//! Rust from the one range read of its counted sessions that the report's
//! attendance makes (`for_each_attendance`): no temporary table, no sort and
//! no join per row in the database, a few bytes per session here. Each
//! bucket's distinct viewers come from a difference array over the bucket
//! ranges of each viewer's sessions, merged per viewer so that a viewer
//! counts once per bucket: O(sessions · log sessions + buckets), whatever
//! the number of buckets a session spans.
//!
//! Decision where the contract is silent: without the attendance flag the
//! API leaves out the curve's figures (as the viewer list's rows); the
//! presentation's own fields and `dataThrough` stay.

use mysql::prelude::Queryable;

use super::error::AnalyticsError;
use super::report::{find_presentation, for_each_attendance};
use super::sql::Scope;
use super::timeline_svg::TimelineHeading;
use crate::contract::{
    format_time, format_time_opt, timeline_buckets, Timeline, TimelineBucket,
    DEFAULT_BUCKET_SECONDS, LIVE_CUT_OFF_MS,
};

/// The timeline of one presentation (ANALYTICS.md §4).
pub fn timeline(
    conn: &mut impl Queryable,
    tenant_id: &str,
    presentation_id: &str,
) -> Result<Timeline, AnalyticsError> {
    timeline_with_heading(conn, tenant_id, presentation_id).map(|(timeline, _)| timeline)
}

/// The timeline of one presentation, and what its picture shows beyond it
/// (the title and `endedAt`), from the same read of the presentation.
pub fn timeline_with_heading(
    conn: &mut impl Queryable,
    tenant_id: &str,
    presentation_id: &str,
) -> Result<(Timeline, TimelineHeading), AnalyticsError> {
    let dim = find_presentation(conn, tenant_id, presentation_id, false)?;
    let scope = Scope::one(tenant_id, dim.key);
    let mut curve = Curve::empty();
    for_each_attendance(conn, &scope, false, |_, _, fold| {
        curve = Curve::of(fold.intervals(), fold.unique_viewers(), dim.ended_at_ms);
    })?;
    let timeline = Timeline {
        presentation_id: presentation_id.to_string(),
        tenant_id: tenant_id.to_string(),
        bucket_seconds: curve.width_ms / 1000,
        from: curve.span.map(|(from, _)| format_time(from)),
        to: curve.span.map(|(_, to)| format_time(to)),
        at_end: curve.at_end,
        data_through: format_time_opt(dim.data_through_ms),
        buckets: curve.buckets,
    };
    let heading = TimelineHeading {
        title: dim.title,
        ended_at_ms: dim.ended_at_ms,
    };
    Ok((timeline, heading))
}

/// The figures of a timeline.
struct Curve {
    width_ms: i64,
    /// (from, to), without counted sessions `None`.
    span: Option<(i64, i64)>,
    at_end: i64,
    buckets: Vec<TimelineBucket>,
}

impl Curve {
    fn empty() -> Curve {
        Curve {
            width_ms: DEFAULT_BUCKET_SECONDS * 1000,
            span: None,
            at_end: 0,
            buckets: Vec::new(),
        }
    }

    /// From the counted sessions (start, end, viewer number below
    /// `viewers`) and the presentation's `endedAt`.
    fn of(intervals: &[(i64, i64, u32)], viewers: i64, ended_at: Option<i64>) -> Curve {
        if intervals.is_empty() {
            return Curve::empty();
        }
        // Each viewer's first start and last end over their counted sessions.
        let mut span = vec![(i64::MAX, i64::MIN); usize::try_from(viewers).unwrap_or(0)];
        for &(start, end, viewer) in intervals {
            let s = &mut span[viewer as usize];
            *s = (s.0.min(start), s.1.max(end));
        }
        let counted = span.iter().filter(|(first, _)| *first != i64::MAX);
        let first = counted.clone().map(|s| s.0).min().unwrap_or(0);
        let last = counted.clone().map(|s| s.1).max().unwrap_or(0);
        let (w, from, to) = timeline_buckets(first, last);
        let n = usize::try_from((to - from) / w).unwrap_or(0);
        // Bucket i covers [from + i·w, from + (i+1)·w): a time `t` lies in
        // bucket ⌊(t − from) / w⌋; an instant just before `t` (an end, which
        // the interval excludes) in ⌊(t − from − 1) / w⌋.
        let bucket_of = |t: i64| usize::try_from((t - from).div_euclid(w)).unwrap_or(0);
        let bucket_before = |t: i64| usize::try_from((t - from - 1).div_euclid(w)).unwrap_or(0);

        let mut ranges: Vec<(u32, usize, usize)> = intervals
            .iter()
            .map(|&(start, end, viewer)| (viewer, bucket_of(start), bucket_before(end)))
            .collect();
        ranges.sort_unstable();
        let mut delta = vec![0i64; n + 1];
        let mut open: Option<(u32, usize, usize)> = None;
        for (viewer, a, b) in ranges {
            match open {
                Some((v, oa, ob)) if v == viewer && a <= ob => open = Some((v, oa, ob.max(b))),
                _ => {
                    if let Some((_, oa, ob)) = open {
                        delta[oa] += 1;
                        delta[ob + 1] -= 1;
                    }
                    open = Some((viewer, a, b));
                }
            }
        }
        if let Some((_, oa, ob)) = open {
            delta[oa] += 1;
            delta[ob + 1] -= 1;
        }

        let cut_off = ended_at.unwrap_or(last - LIVE_CUT_OFF_MS);
        let mut joined = vec![0i64; n];
        let mut left = vec![0i64; n];
        let mut at_end = 0;
        for &(first, last) in span.iter().filter(|(first, _)| *first != i64::MAX) {
            joined[bucket_of(first)] += 1;
            if last >= cut_off {
                at_end += 1;
            } else {
                left[bucket_before(last)] += 1;
            }
        }
        let mut present = 0;
        let buckets = (0..n)
            .map(|i| {
                present += delta[i];
                TimelineBucket {
                    at: format_time(from + i as i64 * w),
                    viewers: present,
                    joined: joined[i],
                    left: left[i],
                }
            })
            .collect();
        Curve {
            width_ms: w,
            span: Some((from, to)),
            at_end,
            buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(curve: &Curve) -> Vec<(i64, i64, i64)> {
        curve
            .buckets
            .iter()
            .map(|b| (b.viewers, b.joined, b.left))
            .collect()
    }

    #[test]
    fn a_viewer_counts_once_per_bucket() {
        let m = 60_000;
        let t0 = 1_631_268_000_000;
        // Viewer 0: two sessions in the first minute and one in the third
        // (ending exactly on the fourth's start, so not in it); viewer 1
        // until the end; ended at t0 + 4m.
        let intervals = [
            (t0 + 1_000, t0 + 10_000, 0),
            (t0 + 20_000, t0 + 30_000, 0),
            (t0 + 2 * m, t0 + 3 * m, 0),
            (t0 + 30_000, t0 + 4 * m, 1),
        ];
        let curve = Curve::of(&intervals, 2, Some(t0 + 4 * m));
        assert_eq!(curve.span, Some((t0, t0 + 4 * m)));
        assert_eq!(
            figures(&curve),
            [(2, 2, 0), (1, 0, 0), (2, 0, 1), (1, 0, 0)]
        );
        assert_eq!(curve.at_end, 1);
        // Live (no end): the cut-off is a minute before the last end, so
        // viewer 0 (last seen at 3m, exactly the cut-off) is still there.
        let curve = Curve::of(&intervals, 2, None);
        assert_eq!(curve.at_end, 2);
        assert_eq!(figures(&curve)[2], (2, 0, 0));
    }
}
