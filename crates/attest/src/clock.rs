//! The time source every clave component injects where it checks validity windows (evidence
//! age, key epochs, collateral expiry), so that tests can move time.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A clock returning unix seconds.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The current time in unix seconds (0 if the system clock is before 1970).
#[must_use]
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The system clock ([`unix_now`]).
#[must_use]
pub fn system_clock() -> Clock {
    Arc::new(unix_now)
}
