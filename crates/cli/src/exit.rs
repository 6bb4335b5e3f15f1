//! Exit codes, documented in `sqs-barrier --help` and the README.

/// Released / success.
pub const OK: u8 = 0;
/// An unexpected internal error.
pub const INTERNAL: u8 = 1;
/// Wrong arguments (clap also uses 2).
pub const USAGE: u8 = 2;
/// `wait` timed out.
pub const TIMEOUT: u8 = 3;
/// The barrier is broken or was aborted.
pub const BROKEN: u8 = 4;
/// No live coordinator.
pub const NO_COORDINATOR: u8 = 5;
/// Infrastructure: SQS unreachable, no credentials, access denied, barrier
/// not set up, corrupt metadata, a port to listen on taken.
pub const INFRA: u8 = 6;
/// The member is not expected at the phase: it left, or a quorum release
/// went on without it.
pub const NOT_EXPECTED: u8 = 7;
/// `wait --gather`: released, but the notice with the data expired unread.
pub const GATHER_LOST: u8 = 8;

/// The exit code of a library error.
pub fn of(e: &sqs_barrier::Error) -> u8 {
    use sqs_barrier::Error as E;
    match e {
        E::TimedOut { .. } => TIMEOUT,
        E::Broken { .. } => BROKEN,
        E::CoordinatorSilent { .. } => NO_COORDINATOR,
        E::Config(_) | E::Participant(_) | E::Join { .. } => USAGE,
        E::NotExpected { .. } => NOT_EXPECTED,
        E::GatherLost { .. } => GATHER_LOST,
        _ => INFRA,
    }
}

/// Help text listing the codes.
pub const HELP: &str = "\
Exit codes:
  0  success (wait: the phase was released)
  1  internal error
  2  usage error (wrong arguments, unknown member, a join refused or not
     counted)
  3  wait timed out (the message names the missing members)
  4  the barrier is broken or was aborted (the message says by whom and why)
  5  no live coordinator for the barrier
  6  infrastructure error: SQS unreachable, no credentials or region, access
     denied, barrier not set up (or set up again while waiting), a port to
     listen on taken; throttling alone is retried with backoff, not reported
  7  wait: this member is not expected at the phase (it left, or a quorum
     release went on without it; `join` to take part again)
  8  wait --gather: released, but the notice carrying the data expired
     unread";
