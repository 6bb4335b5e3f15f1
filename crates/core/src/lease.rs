//! The coordinator's lease: who may decide.
//!
//! Only one coordinator may decide at a time (count arrivals into a
//! release, break a generation, place a join, write the published state,
//! send a notice): two that decide the same generation differently would
//! split it. SQS has no compare-and-swap, but a FIFO queue gives mutual
//! exclusion: while a message of a message group is in flight (received
//! and neither deleted nor visible again), SQS returns no message of that
//! group to anybody, and a FIFO queue never delivers a message twice. So a
//! barrier's lease queue holds a token in one group; a coordinator holds
//! the lease while the token is in flight under its receive, and keeps it
//! by extending the token's visibility timeout before it lapses
//! (docs/PROTOCOL.md, "The lease").
//!
//! This machine keeps the holder's side of it on the holder's monotonic
//! clock. The visibility timeout runs on SQS's clock from when SQS handled
//! the request, which is after the holder sent it; so counting from the
//! send is conservative. The holder treats the lease as held until
//! [`LEASE_TERM`] minus [`LEASE_MARGIN`] after the send of its last
//! successful receive or extension, and decides nothing after that: the
//! margin is what a request it sent just before may take to reach SQS, and
//! what its process may stall between checking the lease and sending.
//! That is the one timing assumption of the barrier's safety.

use std::time::Duration;

/// The visibility timeout a holder gives the token: a coordinator that
/// dies loses the lease this long after its last extension.
pub const LEASE_TERM: Duration = Duration::from_secs(10);

/// How long before the token's visibility lapses (counted from the send of
/// the request that set it) the holder stops deciding.
pub const LEASE_MARGIN: Duration = Duration::from_secs(3);

/// How often the holder extends the lease: three tries fit in the
/// [`LEASE_TERM`] minus the [`LEASE_MARGIN`]; 30 requests a minute.
pub const LEASE_EXTEND_EVERY: Duration = Duration::from_secs(2);

/// After a failed extension, how soon to try again.
const RETRY: Duration = Duration::from_millis(250);

/// The holder's side of the lease.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Lease {
    term: Duration,
    margin: Duration,
    every: Duration,
    /// Until when (this clock) the holder may decide; `None`: not held.
    until: Option<Duration>,
    /// When the next extension is due.
    next: Option<Duration>,
    /// An extension is under way, sent at this instant.
    extending: Option<Duration>,
}

impl Default for Lease {
    fn default() -> Self {
        Self::new(LEASE_TERM, LEASE_MARGIN, LEASE_EXTEND_EVERY)
    }
}

impl Lease {
    /// A lease not (yet) held, with the given term, margin and extension
    /// interval (`every` must leave room for retries within `term - margin`).
    pub fn new(term: Duration, margin: Duration, every: Duration) -> Self {
        assert!(
            margin < term && every < term - margin,
            "a lease that cannot be kept"
        );
        Self {
            term,
            margin,
            every,
            until: None,
            next: None,
            extending: None,
        }
    }

    /// The visibility timeout to give the token at each receive and
    /// extension.
    pub fn term(&self) -> Duration {
        self.term
    }

    /// The token was received by a request sent at `sent`: the lease is
    /// held.
    pub fn handle_acquired(&mut self, sent: Duration) {
        self.extending = None;
        self.renewed(sent);
    }

    fn renewed(&mut self, sent: Duration) {
        let until = sent + self.term - self.margin;
        self.until = Some(self.until.map_or(until, |u| u.max(until)));
        self.next = Some(sent + self.every);
    }

    /// Whether an extension is due at `now`: if so, send one (a
    /// visibility change of the token to [`Self::term`]) and report it
    /// with [`Self::handle_extended`] or [`Self::handle_extend_failed`],
    /// passing `now` as the instant it was sent.
    pub fn poll_extend(&mut self, now: Duration) -> bool {
        if !self.is_held(now) {
            // Run out on this clock: the token may be somebody else's by
            // now. Only a new receive takes the lease again.
            self.handle_lost();
            return false;
        }
        let due =
            self.until.is_some() && self.extending.is_none() && self.next.is_some_and(|t| t <= now);
        if due {
            self.extending = Some(now);
        }
        due
    }

    /// The extension sent at `sent` succeeded. One sent after the lease
    /// had run out on this clock gives nothing back: by then the token may
    /// have been received by another coordinator (whose receipt SQS may
    /// have extended).
    pub fn handle_extended(&mut self, sent: Duration) {
        self.extending = None;
        if self.is_held(sent) {
            self.renewed(sent);
        } else {
            self.handle_lost();
        }
    }

    /// The extension failed (a transient error): it is tried again soon,
    /// while the lease lasts.
    pub fn handle_extend_failed(&mut self, now: Duration) {
        self.extending = None;
        self.next = Some(now + RETRY);
    }

    /// The token is gone from under the holder (SQS refused the extension:
    /// its receipt is no longer valid), or the holder released it.
    pub fn handle_lost(&mut self) {
        self.until = None;
        self.next = None;
        self.extending = None;
    }

    /// Whether the holder may decide at `now`.
    pub fn is_held(&self, now: Duration) -> bool {
        self.until.is_some_and(|u| now < u)
    }

    /// Until when the holder may decide, if it holds the lease.
    pub fn held_until(&self) -> Option<Duration> {
        self.until
    }

    /// The next instant [`Self::poll_extend`] or the end of the lease needs
    /// the driver's attention.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match (self.next, self.until) {
            (_, None) => None,
            (Some(n), Some(u)) if self.extending.is_none() => Some(n.min(u)),
            (_, Some(u)) => Some(u),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn held_from_the_send_for_the_term_less_the_margin() {
        let mut l = Lease::default();
        let t0 = Duration::from_secs(100);
        assert!(!l.is_held(t0));
        assert!(!l.poll_extend(t0), "nothing to extend before it is held");
        l.handle_acquired(t0);
        assert!(l.is_held(t0 + 6 * S));
        assert!(!l.is_held(t0 + 7 * S), "10 s term, 3 s margin");
        assert_eq!(l.poll_timeout(), Some(t0 + LEASE_EXTEND_EVERY));
    }

    #[test]
    fn extensions_keep_it_and_failures_run_it_out() {
        let mut l = Lease::default();
        let mut now = Duration::from_secs(5);
        l.handle_acquired(now);
        for _ in 0..100 {
            now = l.poll_timeout().unwrap();
            assert!(l.poll_extend(now));
            assert!(!l.poll_extend(now), "one extension at a time");
            l.handle_extended(now);
            assert!(l.is_held(now + 6 * S));
        }
        // From now on every extension fails: the holder stops deciding 7 s
        // after the send of the last one that succeeded.
        let last = now;
        loop {
            now = l.poll_timeout().unwrap();
            if !l.is_held(now) {
                break;
            }
            if l.poll_extend(now) {
                l.handle_extend_failed(now);
            }
        }
        assert_eq!(now, last + 7 * S);
        // Run out: an extension that succeeds now gives nothing back.
        assert!(!l.poll_extend(now));
        l.handle_extended(now);
        assert!(!l.is_held(now) && l.poll_timeout().is_none());
    }

    #[test]
    fn a_late_answer_never_shortens_it_and_a_lost_token_ends_it() {
        let mut l = Lease::default();
        let t0 = Duration::from_secs(50);
        l.handle_acquired(t0);
        let t1 = t0 + 2 * S;
        assert!(l.poll_extend(t1));
        l.handle_extended(t1);
        assert_eq!(l.held_until(), Some(t1 + 7 * S));
        l.handle_extended(t0);
        assert_eq!(l.held_until(), Some(t1 + 7 * S));
        l.handle_lost();
        assert!(!l.is_held(t1));
        assert_eq!(l.poll_timeout(), None);
        l.handle_extended(t1 + S);
        assert!(
            !l.is_held(t1 + S),
            "an answer after the loss gives nothing back"
        );
    }
}
