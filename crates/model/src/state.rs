//! The state of the whole system: the environment (SQS), the machines,
//! and the ghost variables the properties read.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use sqs_barrier_core::coordinator::{Coordinator, Transmit};
use sqs_barrier_core::participant::Participant;
use sqs_barrier_core::state::PublishedState;

use crate::GRACE;
use crate::lambda::Invocation;

/// A copy of a check-in in the check-in queue, and the coordinator's token
/// (receipt handle) for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tok {
    /// The sender's member index.
    pub member: u8,
    /// The generation of the check-in.
    pub generation: u8,
    /// The attempt (0, then re-sends).
    pub attempt: u8,
    /// 0 for the copy sent, 1.. for duplicates.
    pub copy: u8,
}

/// A participant and the model's view of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Member {
    /// The real state machine.
    pub machine: Participant,
    /// The generation waited at, if waiting.
    pub waiting: Option<u64>,
    /// The next generation to arrive at (= generations completed).
    pub next: u64,
    /// Quiet status reads in the current wait.
    pub resends: u8,
    /// Notices this participant read in the current wait and left on its
    /// release queue (its delete did not take effect): it does not read
    /// them again in this wait (another read gives it nothing new).
    pub read: BTreeSet<String>,
    /// It goes through no generation from this one on (a member that
    /// leaves stops after its last).
    pub stop: u64,
    /// It arrives only when the model chooses ([`Action::Arrive`](crate::Action::Arrive)): the
    /// member a quorum barrier may go on without.
    pub late: bool,
    /// A quorum release went on without it: it is done.
    pub dropped: bool,
    /// Its wait ended broken (only the Lambda coordinator breaks a barrier
    /// in the model: it cannot gather data): it is done.
    pub broken: bool,
    /// The joining process: where its join is.
    pub join: JoinStep,
}

/// Where a joining process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JoinStep {
    /// A configured member: no join.
    Member,
    /// It has not sent its join yet.
    Unsent,
    /// Its join is in the check-in queue (or counted, not yet read back).
    Sent,
    /// It read its join in the published state and is a member.
    Joined,
}

/// The generation a [`Tok`] names for a join message.
pub const JOIN: u8 = u8::MAX;

/// Faults used so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Used {
    /// Duplications.
    pub duplications: u8,
    /// Visibility lapses.
    pub lapses: u8,
    /// Crashes.
    pub crashes: u8,
    /// Retention expiries.
    pub expiries: u8,
    /// Racing status reads.
    pub resends: u8,
    /// Takeovers while a coordinator lives.
    pub takeovers: u8,
    /// Rests of the active coordinator.
    pub rests: u8,
    /// Deletes of notices that did not take effect.
    pub stuck_deletes: u8,
}

/// Who holds a check-in copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Holder {
    /// Visible; received last by this coordinator slot, if any (only its
    /// receipt handle deletes it).
    Visible(Option<u8>),
    /// In flight, held by this coordinator slot.
    Held(u8),
}

/// A running coordinator and its driver's work list.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    /// The real state machine.
    pub machine: Coordinator<Tok>,
    /// Transmits drained from it, not yet carried out.
    pub pending: VecDeque<Transmit<Tok>>,
    /// A state write whose read is done and whose write is not (only
    /// without the lease, where another coordinator's steps may fall
    /// between the two): its version and state.
    pub writing: Option<(u64, Box<PublishedState>)>,
    /// Ghost: the check-in copies that were in the queue when this life
    /// started (a dead predecessor's held copies among them) and that it
    /// has not received since, nor anybody deleted.
    pub unseen: BTreeSet<Tok>,
    /// Whether this life has a restart grace (it started with copies in the
    /// queue).
    pub grace: bool,
    /// Whether the machine has been called (which fixes its start), for a
    /// life with a grace.
    pub called: bool,
    /// Ghost: the members its quorum releases went without, by generation,
    /// until a state of its recording the release is written (then they are
    /// in [`State::without`]).
    pub drops: BTreeMap<u64, u8>,
    /// It rests: it gave the lease back and takes no step until it wakes
    /// ([`crate::Bounds::rests`]) but the heartbeat that finds another's
    /// write.
    pub resting: bool,
    /// Where its clock starts: [`NOW`](crate::NOW), or when it last woke.
    pub base: Duration,
}

impl Slot {
    /// Whether its driver has work left from the last call.
    pub fn busy(&self) -> bool {
        !self.pending.is_empty() || self.writing.is_some()
    }

    /// This life's clock. On SQS its restart grace (the check-in queue's
    /// visibility timeout) ends once every copy a predecessor held is
    /// visible again and received; the model makes that a condition: the
    /// clock reads [`NOW`](crate::NOW) until this life has received every copy that was
    /// in the queue at its start, then `NOW + GRACE`, when what waits for
    /// the grace (a quorum release, a join) is due. Every call before fixes
    /// its start at `NOW`.
    pub fn now(&self) -> Duration {
        if self.grace && self.called && self.unseen.is_empty() {
            self.base + GRACE
        } else {
            self.base
        }
    }
}

/// A state of the whole system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// The coordinators running, by slot (a coordinator process).
    pub slots: [Option<Slot>; 2],
    /// The invocations under way, by slot (the Lambda function).
    pub invocations: [Option<Invocation>; 2],
    /// The check-in queue: copy -> who holds it.
    pub checkin: BTreeMap<Tok, Holder>,
    /// Every check-in ever sent, (member, generation, attempt) -> copies made.
    pub sent: BTreeMap<(u8, u8, u8), u8>,
    /// Release queues by parity: visible notice bodies -> copies.
    pub release: [BTreeMap<String, u8>; 2],
    /// Every notice ever sent, by queue parity (for duplication).
    pub notices: BTreeSet<(u8, String)>,
    /// The published state (tags), as read back.
    pub tags: Option<PublishedState>,
    /// The participants.
    pub members: Vec<Member>,
    /// Ghost: per generation, the members that called `arrive` at it.
    pub arrived: Vec<u8>,
    /// Ghost: per generation, the members whose check-in for it was
    /// delivered to a coordinator (of any life).
    pub counted: Vec<u8>,
    /// Ghost: per generation, the members released at it.
    pub passed: Vec<u8>,
    /// Ghost: per generation, the members a quorum release of it went
    /// without, once public: named in the `without` of a release notice
    /// any coordinator sent, or dropped by a release a written state
    /// records.
    pub without: Vec<u8>,
    /// Ghost: the first generation of the joined member, once it read its
    /// join in the published state.
    pub joined_from: Option<u64>,
    /// Ghost: per generation, the gathered data the first participant that
    /// passed it by its notice saw.
    pub gathered: Vec<Option<BTreeMap<String, String>>>,
    /// Ghost: the first gathered data that was not what the members
    /// brought, or differed between participants.
    pub gather_violation: Option<String>,
    /// Ghost: the generation the barrier is broken from, as the first
    /// participant whose wait ended broken learnt it.
    pub broken_from: Option<u64>,
    /// Ghost: the first published state that did not include the one
    /// before it (a release, an arrival or a roll change lost).
    pub published_violation: Option<String>,
    /// Faults used.
    pub used: Used,
    /// Ghost: the first thing that must never happen, if it happened
    /// (an unexpected outcome, event or transmit).
    pub violation: Option<String>,
}

pub(crate) fn flag(s: &mut State, what: String) {
    if s.violation.is_none() {
        s.violation = Some(what);
    }
}
