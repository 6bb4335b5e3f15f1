//! What the coordinator asks of its driver ([`Transmit`]), what it reports
//! ([`Event`]), and the check a driver makes before a state write
//! ([`WriteGuard`]).

use crate::state::{Beat, PublishedState};
use crate::wire::BreakCause;

/// Whether a coordinator may write over the published state it just read
/// (see [`Coordinator::write_guard`](super::Coordinator::write_guard)): only over its own last write, or,
/// before its first write, over the state it started from. Anything else
/// was written by another coordinator, whose records it would overwrite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteGuard {
    pub(super) id: String,
    pub(super) start: Option<Beat>,
}

impl WriteGuard {
    /// Whether a write may go over `current` (`None`: nothing published, or
    /// nothing readable).
    pub fn allows(&self, current: Option<&PublishedState>) -> bool {
        current.is_none_or(|s| s.coordinator == self.id || self.start.as_ref() == Some(&s.beat()))
    }
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Transmit<T> {
    /// Send one message with `body` to the release queue of `generation`
    /// (see [`crate::names::QueueNames::release_for`]). Participants read it
    /// without hiding it (visibility timeout 0): one notice reaches all.
    Notify {
        /// The generation the notice is for.
        generation: u64,
        /// The message body.
        body: String,
    },
    /// Remove the notices nobody needs any more from the release queue of
    /// `generation`: receive what it holds with a visibility timeout (so
    /// that the receipt handle is the latest one, which a delete needs),
    /// delete every message [`sweepable`](super::sweepable) says may go, and make the others
    /// visible again. Best effort: a notice missed here expires with the
    /// queue's retention, and a participant that meets one deletes it.
    Sweep {
        /// Selects the queue (by parity).
        generation: u64,
        /// Notices of generations below this one may go.
        below: u64,
    },
    /// Delete these messages from the check-in queue.
    Delete(Vec<T>),
    /// Move a message aside: send `body` to the dead-letter queue (with
    /// `reason` as an attribute), then delete `token` from the check-in queue.
    DeadLetter {
        /// The message to delete once it is safely in the dead-letter queue.
        token: T,
        /// Its body, as received.
        body: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Publish `state` (a record on the state queue; the driver first
    /// stamps its wall clock on it, see [`PublishedState::stamp_wall`]), then report
    /// [`Coordinator::handle_state_written`](super::Coordinator::handle_state_written) with `version`.
    WriteState {
        /// Identifies this write in the report.
        version: u64,
        /// The document to publish.
        state: Box<PublishedState>,
    },
}

/// Something that happened, for logs, metrics and the demo's timeline.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// A member arrived at a generation (first check-in of that member there).
    Arrived {
        /// The generation.
        generation: u64,
        /// The member.
        member: String,
        /// Distinct members arrived so far.
        count: usize,
        /// Members in all.
        of: usize,
    },
    /// A generation was released.
    Released {
        /// The generation.
        generation: u64,
    },
    /// The barrier broke.
    Broken {
        /// It is broken from this generation on.
        from_gen: u64,
        /// Why.
        cause: BreakCause,
        /// Who had not arrived at `from_gen`.
        missing: Vec<String>,
    },
    /// A message was rejected and moved to the dead-letter queue.
    Rejected {
        /// Why.
        reason: String,
    },
    /// A coordinator started standing by (its first probe): this one now
    /// beats every [`CoordinatorOptions::standby_heartbeat`](super::CoordinatorOptions::standby_heartbeat).
    Watched {
        /// The standby's id.
        by: String,
    },
    /// Another coordinator wrote the published state after this one's last
    /// write: two were active, and this one stands down. The driver hands
    /// every message it holds back to the queue and stops feeding it.
    Superseded {
        /// The other coordinator's id.
        by: String,
    },
    /// A member joined: it is expected from generation `from` on.
    Joined {
        /// The member.
        member: String,
        /// The first generation that expects it.
        from: u64,
    },
    /// A join was refused.
    JoinRefused {
        /// The name asked for, if any.
        member: Option<String>,
        /// Why.
        reason: String,
    },
    /// A member left: `generation` is the last one that expects it.
    Left {
        /// The member.
        member: String,
        /// Its last generation.
        generation: u64,
    },
    /// A quorum release went on without these members, who are members
    /// from `generation` on no more.
    Dropped {
        /// The generation released without them.
        generation: u64,
        /// Who.
        members: Vec<String>,
    },
    /// A coordinator process that rests (docs/PROTOCOL.md, "Resting") is
    /// taking the lease again, for a check-in it saw or a decision due.
    /// Reported by its driver before the first request of the wake, not by
    /// this core (which learns of the wake from
    /// [`Coordinator::handle_resumed`](super::Coordinator::handle_resumed)):
    /// what follows is the work of that check-in or decision.
    Waking,
}
