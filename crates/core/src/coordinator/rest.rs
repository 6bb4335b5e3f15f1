//! Resting: a coordinator process with nothing to decide gives the lease
//! back and takes it again for its next decision (docs/PROTOCOL.md, "The
//! lease", "Resting"). The driver asks the core whether it may rest, which
//! timers still decide something while it rests (heartbeats do not), and
//! tells it when it resumed.

use std::time::Duration;

use super::Coordinator;

impl<T> Coordinator<T> {
    /// Whether everything this coordinator decided is published and
    /// nothing waits on it: it has written, no write is under way or due
    /// with changes, it holds no message (no check-in waits for a write or
    /// a release, no join for the restart grace), no notice waits for a
    /// write and no transmit for its driver. Only then may its driver give
    /// the lease back: whoever takes it next starts from the published
    /// state and loses nothing this one knows.
    pub fn is_settled(&self) -> bool {
        self.superseded.is_none()
            && self.written
            && self.writing.is_none()
            && self.durable >= self.version
            && self.held() == 0
            && self.deferred.is_empty()
            && self.transmits.is_empty()
    }

    /// Its driver took the lease again after resting, and the published
    /// state was still this coordinator's own last write: it goes on from
    /// what it knows. Another coordinator may have held the lease in
    /// between and died or lost it before publishing anything, having
    /// sent notices for releases it counted on check-ins it held (a
    /// release's notice goes before the write that records it). Those
    /// check-ins come back when their visibility timeout lapses, so what
    /// waits for a restart grace (a deadline, a quorum's end, a join)
    /// waits for `grace` again from `now`, as it does for a successor:
    /// decided earlier, it could go against such a release.
    pub fn handle_resumed(&mut self, now: Duration, grace: Duration) {
        self.begin(now);
        self.resumed_floor = self.resumed_floor.max(now + grace);
    }
}
