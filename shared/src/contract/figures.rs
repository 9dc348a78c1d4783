//! The contract's figures: counts, averages and whole seconds, rounded as
//! `shared/contract/ANALYTICS.md` says (halves away from zero, in exact
//! integer arithmetic), so that every implementation prints the same numbers.

/// A collection size as the contract's integer.
pub fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `numerator / denominator` rounded to the nearest integer, halves away from
/// zero, in exact integer arithmetic. `None` when `denominator` is 0.
pub fn div_round_half_away(numerator: i128, denominator: i128) -> Option<i128> {
    if denominator == 0 {
        return None;
    }
    let negative = (numerator < 0) != (denominator < 0);
    let n = numerator.unsigned_abs();
    let d = denominator.unsigned_abs();
    let q = n / d;
    let r = n % d;
    // r >= d - r  <=>  the remainder is at least half of the divisor.
    let q = if r >= d - r { q + 1 } else { q };
    let q = i128::try_from(q).unwrap_or(i128::MAX);
    Some(if negative { -q } else { q })
}

/// An amount in tenths (or hundredths, …) as the printed decimal number.
fn scaled_to_f64(scaled: i128, scale: f64) -> f64 {
    // Exact for every value below 2^53; the division is correctly rounded, so
    // the result is the double nearest to the decimal, as a JSON parser reads it.
    scaled as f64 / scale
}

/// Mean of a total of milliseconds over `count`, in seconds with one decimal,
/// rounded half away from zero: `total_ms / 1000 / count`.
/// `None` when `count` is 0. Used for `averageWatchSeconds` (which prints
/// `0.0` instead of `null`) and `averageSecondsToAnswer`.
pub fn average_seconds_1dp(total_ms: i128, count: i64) -> Option<f64> {
    // tenths of a second = total_ms * 10 / (1000 * count) = total_ms / (100 * count)
    let den = i128::from(count).checked_mul(100)?;
    div_round_half_away(total_ms, den).map(|t| scaled_to_f64(t, 10.0))
}

/// `sum / count` with two decimals, rounded half away from zero
/// (`averageRating`). `None` when `count` is 0.
pub fn average_2dp(sum: i128, count: i64) -> Option<f64> {
    let num = sum.checked_mul(100)?;
    div_round_half_away(num, i128::from(count)).map(|h| scaled_to_f64(h, 100.0))
}

/// Whole seconds of a non-negative duration in milliseconds, floored
/// (`totalWatchSeconds`, `watchSeconds`). Saturates at `i64::MAX`.
pub fn floor_seconds(ms: i128) -> i64 {
    i64::try_from(ms.div_euclid(1000)).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(div_round_half_away(5, 2), Some(3));
        assert_eq!(div_round_half_away(-5, 2), Some(-3));
        assert_eq!(div_round_half_away(7, 3), Some(2));
        assert_eq!(div_round_half_away(8, 3), Some(3));
        assert_eq!(div_round_half_away(-8, 3), Some(-3));
        assert_eq!(div_round_half_away(1, 0), None);
        // x.x5 cases, which binary floating point gets wrong.
        assert_eq!(average_seconds_1dp(1_050, 1), Some(1.1)); // 1.05 s
        assert_eq!(average_seconds_1dp(2_250, 1), Some(2.3)); // 2.25 s
        assert_eq!(average_seconds_1dp(1_049, 1), Some(1.0));
        assert_eq!(average_seconds_1dp(3_000, 2), Some(1.5));
        assert_eq!(average_seconds_1dp(13_015_700, 9), Some(1446.2));
        assert_eq!(average_seconds_1dp(0, 0), None);
        assert_eq!(average_2dp(1, 8), Some(0.13)); // 0.125
        assert_eq!(average_2dp(29, 8), Some(3.63)); // 3.625
        assert_eq!(average_2dp(10, 3), Some(3.33));
        assert_eq!(average_2dp(5, 2), Some(2.5));
        assert_eq!(average_2dp(1, 0), None);
        assert_eq!(floor_seconds(1999), 1);
        assert_eq!(floor_seconds(0), 0);
        assert_eq!(floor_seconds(i128::MAX), i64::MAX);
    }

    proptest::proptest! {
        #[test]
        fn rounding_is_nearest_with_halves_away_from_zero(n in -1_000_000_000i128..1_000_000_000, d in 1i128..100_000) {
            let q = div_round_half_away(n, d).unwrap();
            // |n/d - q| <= 1/2, i.e. |n - q·d| * 2 <= d ...
            let twice_error = (n - q * d).abs() * 2;
            proptest::prop_assert!(twice_error <= d);
            // ... and on an exact half, q is the one farther from zero.
            if twice_error == d {
                proptest::prop_assert!(q.abs() * d > n.abs());
            }
            proptest::prop_assert_eq!(div_round_half_away(-n, d), Some(-q));
        }
    }
}
