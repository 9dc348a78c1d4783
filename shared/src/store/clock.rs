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

/// Below this (2001-09-09), a deadline cannot be a time of day: it is a
/// duration. `cargo lambda watch`, the local pipeline's control plane, sends
/// its timeout itself (`600000`) as `Lambda-Runtime-Deadline-Ms`.
const EARLIEST_EPOCH_DEADLINE_MS: u64 = 1_000_000_000_000;

/// The invocation deadline (milliseconds since the epoch, as Lambda sends
/// it) as an `Instant`; a value too small to be a time of day is read as
/// milliseconds from now (see [`EARLIEST_EPOCH_DEADLINE_MS`]), instead of
/// leaving an invocation no time at all.
pub fn deadline_instant(deadline_ms: u64) -> Instant {
    if deadline_ms < EARLIEST_EPOCH_DEADLINE_MS {
        return Instant::now() + Duration::from_millis(deadline_ms);
    }
    let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let remaining = deadline
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Instant::now() + remaining
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_is_a_time_of_day_or_else_a_duration() {
        let in_a_minute = deadline_instant(now_ms() as u64 + 60_000);
        let left = in_a_minute.saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(55) && left <= Duration::from_secs(60));
        // A deadline passed: no time left.
        let passed = deadline_instant(now_ms() as u64 - 1_000);
        assert_eq!(
            passed.saturating_duration_since(Instant::now()),
            Duration::ZERO
        );
        // cargo lambda watch's 600000: ten minutes from now.
        let local = deadline_instant(600_000);
        let left = local.saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(595) && left <= Duration::from_secs(600));
    }
}
