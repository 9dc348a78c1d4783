//! The attendance timeline's shape and its bucket width (ANALYTICS.md §4),
//! shared by the warehouse's fold and the replay so that both choose the
//! same buckets.

use serde::{Deserialize, Serialize};

/// One presentation's audience curve (ANALYTICS.md §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub presentation_id: String,
    pub tenant_id: String,
    pub bucket_seconds: i64,
    /// `None` (`null`) without a counted session, as `to`.
    pub from: Option<String>,
    pub to: Option<String>,
    pub at_end: i64,
    /// §6.
    pub data_through: Option<String>,
    pub buckets: Vec<TimelineBucket>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineBucket {
    pub at: String,
    pub viewers: i64,
    pub joined: i64,
    pub left: i64,
}

/// At most this many buckets.
pub const MAX_TIMELINE_BUCKETS: i64 = 500;

/// The width without counted sessions, in seconds.
pub const DEFAULT_BUCKET_SECONDS: i64 = 60;

/// How long a viewer may go unseen before a presentation still running
/// counts them as gone: the cut-off is this long before the latest last end.
pub const LIVE_CUT_OFF_MS: i64 = 60_000;

/// The buckets of a timeline whose earliest first start is `first_ms` and
/// latest last end `last_ms`: `(width in ms, from, to)`, the first width of
/// 60, 300, 900, 3600, 21600, 86400, then 2 × 86400, 3 × 86400, … seconds
/// that gives at most [`MAX_TIMELINE_BUCKETS`].
pub fn timeline_buckets(first_ms: i64, last_ms: i64) -> (i64, i64, i64) {
    const FIXED: [i64; 6] = [60, 300, 900, 3600, 21_600, 86_400];
    let fits = |width_s: i64| {
        let w = width_s * 1000;
        let from = first_ms.div_euclid(w) * w;
        let to = ceil_div(last_ms, w) * w;
        ((to - from) / w <= MAX_TIMELINE_BUCKETS).then_some((w, from, to))
    };
    if let Some(found) = FIXED.into_iter().find_map(fits) {
        return found;
    }
    // Days: start from the count that the span alone needs (less one, for
    // the rounding at both ends), so this never loops long.
    let span_days = (i128::from(last_ms) - i128::from(first_ms)) / 86_400_000;
    let mut days = i64::try_from(span_days / i128::from(MAX_TIMELINE_BUCKETS))
        .unwrap_or(i64::MAX / 86_400_000)
        .max(2);
    loop {
        if let Some(found) = fits(days * 86_400) {
            return found;
        }
        days += 1;
    }
}

/// `⌈n / d⌉` for `d > 0`.
fn ceil_div(n: i64, d: i64) -> i64 {
    -((-n).div_euclid(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_step_up_to_keep_500_buckets() {
        let t0 = 1_631_268_000_000; // 2021-09-10T10:00:00Z, a whole day
                                    // 500 minutes exactly: one-minute buckets.
        assert_eq!(
            timeline_buckets(t0, t0 + 500 * 60_000),
            (60_000, t0, t0 + 500 * 60_000)
        );
        // A millisecond more: 501 minutes, so five-minute buckets.
        assert_eq!(
            timeline_buckets(t0, t0 + 500 * 60_000 + 1),
            (300_000, t0, t0 + 505 * 60_000)
        );
        // Rounded down and up to multiples of the width since the epoch.
        assert_eq!(
            timeline_buckets(t0 + 59_999, t0 + 60_001),
            (60_000, t0, t0 + 120_000)
        );
        // Years: whole numbers of days, the first number that fits.
        let last = 4_102_444_799_999;
        let (w, from, to) = timeline_buckets(0, last);
        assert_eq!((w % 86_400_000, from), (0, 0));
        assert!((to - from) / w <= 500 && w > 2 * 86_400_000);
        let narrower = w - 86_400_000;
        assert!(ceil_div(last, narrower) > 500);
        assert_eq!(ceil_div(-1, 60), 0);
        assert_eq!(ceil_div(61, 60), 2);
    }
}
