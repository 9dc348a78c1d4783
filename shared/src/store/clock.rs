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

/// The invocation deadline (milliseconds since the epoch) as an `Instant`.
pub fn deadline_instant(deadline_ms: u64) -> Instant {
    let deadline = SystemTime::UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let remaining = deadline
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Instant::now() + remaining
}
