//! The two clocks of this crate, and the one wall clock of the project's
//! tools (the CLI, the console and the benchmark stamp with [`wall_ms`] and
//! [`wall_us`]).
//!
//! Every timer (deadlines, the quorum grace, heartbeats, liveness, the
//! restart grace, retries) runs on `mono_now`, this process's monotonic
//! clock: a wall clock that steps (NTP, a VM resumed, an operator) changes
//! no decision. The wall clock ([`wall_now`], [`wall_ms`]) only stamps what
//! people read: the published state's `heartbeat_ms` and `since_ms` (see
//! [`PublishedState::stamp_wall`]) and what `status` shows.
//!
//! [`PublishedState::stamp_wall`]: sqs_barrier_core::state::PublishedState::stamp_wall

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where [`mono_now`] starts: far enough from zero that a coordinator that
/// restores a generation open for days (its age is subtracted from `now`)
/// never reaches zero.
const MONO_BASE: Duration = Duration::from_secs(400 * 24 * 3600);

/// The monotonic clock the cores run on: time since an arbitrary point
/// fixed at the first call in this process.
pub(crate) fn mono_now() -> Duration {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    MONO_BASE + EPOCH.get_or_init(Instant::now).elapsed()
}

/// The wall clock: time since the Unix epoch. For people, and for the
/// Lambda coordinator, whose invocations share nothing but SQS and the
/// (synchronised) clocks of AWS hosts.
pub fn wall_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The wall clock in milliseconds since the Unix epoch.
pub fn wall_ms() -> u64 {
    wall_now().as_millis() as u64
}

/// The wall clock in microseconds since the Unix epoch (benchmark stamps
/// that several processes of one host compare).
pub fn wall_us() -> u64 {
    wall_now().as_micros() as u64
}
