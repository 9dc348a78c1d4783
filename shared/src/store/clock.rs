//! The wall clock: the one place the library reads the time of day, so that
//! the rest takes times as values.

use std::time::{Duration, Instant, SystemTime};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The time of day (milliseconds since the epoch) as a value to pass
/// around: [`system_clock`] in production, a fixed or moving one in tests.
pub type Clock = std::sync::Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock as a [`Clock`].
pub fn system_clock() -> Clock {
    std::sync::Arc::new(now_ms)
}

/// Lambda's longest timeout.
const LONGEST_INVOCATION: Duration = Duration::from_secs(15 * 60);

/// The invocation deadline (milliseconds since the epoch) as an `Instant`.
/// Lambda's are at most 15 minutes ahead, never long past: one further in
/// the past is not a deadline (the local control plane of `cargo lambda
/// watch` sends a fixed 600000, in 1970, which would leave no time for the
/// loaders' summary refresh nor the reconciliation's sweep), and is taken
/// as Lambda's longest timeout.
pub fn deadline_instant(deadline_ms: u64) -> Instant {
    let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms);
    match deadline.duration_since(SystemTime::now()) {
        Ok(remaining) => Instant::now() + remaining,
        Err(past) if past.duration() > LONGEST_INVOCATION => Instant::now() + LONGEST_INVOCATION,
        Err(_) => Instant::now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_is_the_time_left_and_one_from_1970_is_the_longest_timeout() {
        let now = now_ms() as u64;
        let left =
            |deadline_ms| deadline_instant(deadline_ms).saturating_duration_since(Instant::now());
        assert!((Duration::from_secs(4)..=Duration::from_secs(5)).contains(&left(now + 5_000)));
        assert_eq!(left(now - 2_000), Duration::ZERO);
        assert!(left(600_000) > Duration::from_secs(14 * 60));
    }
}
