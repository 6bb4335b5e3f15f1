//! An exhaustively checked model of the sqs-barrier protocol.
//!
//! The model embeds the **real** state machines of `sqs-barrier-core`
//! ([`Coordinator`] and [`Participant`]) and replaces the driver and SQS by a
//! nondeterministic environment that [stateright](https://docs.rs/stateright)
//! explores exhaustively (depth first). Every state holds whole clones of
//! the machines (core derives `Clone`, `Eq` and `Hash` for this), so no
//! abstraction of the machines' own state is involved. stateright remembers
//! visited states by a 64-bit fingerprint of the whole state: with 10^7
//! states the chance that a collision hides one is about 10^-5.
//!
//! # Environment
//!
//! * **Check-in queue**: a set of message copies, each visible or in flight
//!   (held by one coordinator). A copy is named by its [`Tok`] (member,
//!   generation, attempt, copy number); the token is also the receipt
//!   handle the coordinators hold. A coordinator receives **any** visible
//!   copy (reordering). A delete works only for the coordinator that
//!   received the copy last (an older receipt handle deletes nothing).
//!   Faults: *duplication* (a new visible copy of any check-in ever sent,
//!   also one already deleted: SQS at-least-once delivery, or an SDK retry of
//!   `SendMessage`) and *visibility lapse* (a held copy becomes visible again:
//!   a late or failed visibility extension).
//! * **Release queues** 0 and 1: multisets of visible notices (the
//!   coordinator sends one per generation it releases). A waiting
//!   participant *reads* any notice on the queue of its generation's parity
//!   without removing it (visibility timeout 0: every waiter sees the same
//!   notice), and in the same step deletes one copy of it if
//!   [`Notice::deletable`] says so (an older generation's notice). It reads
//!   a given notice at most once per wait, which keeps every path finite:
//!   a second read would give it nothing new (its status reads are
//!   modelled on their own). The coordinator's [`Transmit::Sweep`] is a
//!   step of its driver's work list: it removes every copy that
//!   [`sweepable`] lets go from that queue (a crash may fall before it, so
//!   it may never happen). Faults: *retention expiry* drops a visible copy;
//!   *duplication* adds a copy of a notice sent earlier (also one deleted
//!   since); a *stuck delete* leaves a notice the participant meant to
//!   delete (on SQS a delete with a receipt handle that is not the latest
//!   one might not delete).
//! * **Published state** (the check-in queue's tags): a register holding the
//!   last document written, round-tripped through its JSON form. A write is
//!   atomic (one `TagQueue`).
//! * **Coordinator driver**: drains `poll_transmit` into a work list after
//!   every call and carries the transmits out one at a time, in order, as
//!   separate steps (so a crash can fall between any two). `WriteState`
//!   is read, merge (or stand down), write as the driver does it, in one
//!   step: the model does not let another coordinator's write land between
//!   the read and the write (tags are not compare-and-swap, so on SQS it
//!   can; docs/PROTOCOL.md, section 9, says what that can cost). A write
//!   reports `handle_state_written` in the same step (a crash between the write and the report is the same as a crash
//!   just after the report, since the deletes it unlocks are queued, not
//!   done). Receives may interleave with pending transmits, and the state
//!   written is the transmit's, which they may have overtaken: the process
//!   driver writes and deletes beside its loop, which goes on counting. (It
//!   may also send a notice before an earlier write lands, an order the
//!   work list does not take; a notice is true whenever it is sent, as its
//!   generation is complete.)
//! * **Coordinators**: up to two at once, in slots 0 and 1. A *crash*
//!   discards a machine and its work list and makes every check-in it held
//!   visible again; a standby (the same slot, new id) takes over from the
//!   register. A *takeover* starts a second coordinator from the register
//!   while the first lives (a standby that took the active one for dead):
//!   both run until one finds the other's write and stands down, handing
//!   its check-ins back.
//! * **Participants**: member `i` arrives at generations `0..G` in turn; its
//!   status read (the register: a state showing its generation released
//!   ends the wait, one not showing its arrival makes it send again) is an
//!   action. A participant whose notice expired unread passes only by it.
//!
//! # Time
//!
//! Time is abstracted away: every call gets the same `now` ([`NOW`]), and
//! the timers the model fires are set to zero so they are always due when
//! the model chooses to fire them (`status_interval = 0`;
//! `min_write_interval = 0`, so the coordinator's write timer is due exactly
//! when it has changes to publish or has never written). Firing is a
//! nondeterministic action, so every order of timer expiries and message
//! deliveries is explored. Timers whose only effects are failure outcomes
//! are placed beyond the horizon: heartbeat writes without changes, the
//! silence judgement (`CoordinatorSilent`), wait timeouts and barrier
//! deadlines are not modelled; neither are aborts and probes. With a frozen
//! clock a status read could only find a live coordinator; what it can
//! change (a re-send) is modelled.
//!
//! # Bounds
//!
//! Faults are bounded by [`Bounds`] (per run), re-sends per wait. Faults are
//! enabled only while some participant still has generations to complete.
//! Every action consumes a budget or moves a message or machine forward (a
//! read deletes a notice, ends the wait, or marks the notice read for this
//! wait), so every path is finite and ends in a terminal state, which is
//! what makes the liveness check below exhaustive.
//!
//! # Properties
//!
//! S1 (released at g only after a check-in for g of every member reached a
//! coordinator), no unexpected outcome, event or transmit (nor a notice for
//! a later generation, which consecutive generations rule out), S3 (a passed
//! generation is in the published state or can be counted again), no
//! deadlock, L1 (`eventually` every participant completes every
//! generation), a `sometimes` check that runs using every allowed fault
//! complete, and B, the bound the release broadcast is designed for: a
//! release queue holds at most `1 + f` notice copies, where `f` counts the
//! crashes, takeovers and duplications so far. Without faults that is one
//! notice per queue, however many generations pass: a release sweeps the
//! other queue's older notice before anybody waits there.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

use sqs_barrier_core::config::{BarrierConfig, Membership};
use sqs_barrier_core::coordinator::{Coordinator, CoordinatorOptions, Event, Transmit, sweepable};
use sqs_barrier_core::participant::Arrival;
use sqs_barrier_core::participant::{
    Notice, Outcome, Participant, ParticipantOptions, Transmit as PTransmit,
};
use sqs_barrier_core::state::PublishedState;
use sqs_barrier_core::wire::Message;
use stateright::{Model, Property};

/// The one instant every call of the model happens at.
pub const NOW: Duration = Duration::from_secs(1_000_000);

/// Far beyond anything the model does: timers set to this never fire.
const NEVER: Duration = Duration::from_secs(3_600);

/// The size of the explored configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Bounds {
    /// Members (participants), 1 to 8.
    pub members: usize,
    /// Generations every participant goes through.
    pub generations: u64,
    /// Duplicate deliveries in a run (check-ins and notices together).
    pub duplications: u8,
    /// Visibility lapses of held check-ins in a run.
    pub lapses: u8,
    /// Coordinator crashes in a run.
    pub crashes: u8,
    /// Notice copies dropped by retention expiry in a run.
    pub expiries: u8,
    /// Status reads that may happen at any moment (racing with deliveries
    /// and the coordinator), in a run.
    pub racing_resends: u8,
    /// Status reads per participant per wait when nothing else but a fault
    /// can happen (the status interval outlasts SQS and the coordinator).
    pub quiet_resends: u8,
    /// Takeovers by a second coordinator while the first lives, in a run.
    pub takeovers: u8,
    /// Deletes of a notice nobody needs (by the participant that read it)
    /// that do not take effect, in a run: on SQS a delete with a receipt
    /// handle that is no longer the latest one (another participant read
    /// the message since) might not delete.
    pub stuck_deletes: u8,
    /// Membership changes and the other features of version 2.
    pub features: Features,
}

/// The features of a membership that changes, each on or off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Features {
    /// The last configured member leaves at generation 0 (its check-in
    /// there carries `leave`) and goes through no later one.
    pub leave: bool,
    /// One more process joins: it sends a join message at any moment,
    /// learns its position and first generation from the published state,
    /// and goes through the generations from there.
    pub join: bool,
    /// A quorum barrier of all configured members but one, with no grace:
    /// the last configured member arrives at each generation only when the
    /// model chooses (never, before or after a quorum release).
    pub quorum: bool,
    /// Every check-in brings data (`"<member>.<generation>"`).
    pub gather: bool,
}

impl Features {
    /// The protocol of version 1: none.
    pub const NONE: Features = Features {
        leave: false,
        join: false,
        quorum: false,
        gather: false,
    };
}

impl Bounds {
    /// The configuration the specification asks for: 3 members, 2
    /// generations, one duplicated delivery (a check-in or a notice), one
    /// coordinator crash, one quiet re-send per wait; reordering is always
    /// on. (All fault kinds at once do not finish in 10 minutes; the other
    /// kinds are checked in pairs with a crash, see tests/check.rs.)
    pub const STANDARD: Bounds = Bounds {
        members: 3,
        generations: 2,
        duplications: 1,
        lapses: 0,
        crashes: 1,
        expiries: 0,
        racing_resends: 0,
        quiet_resends: 1,
        takeovers: 0,
        stuck_deletes: 0,
        features: Features::NONE,
    };
}

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
    /// It arrives only when the model chooses ([`Action::Arrive`]): the
    /// member a quorum barrier may go on without.
    pub late: bool,
    /// A quorum release went on without it: it is done.
    pub dropped: bool,
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
}

/// A state of the whole system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// The coordinators running, by slot.
    pub slots: [Option<Slot>; 2],
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
    /// Ghost: per generation, the members named in the `without` of a
    /// release notice of it sent by any coordinator.
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
    /// Ghost: the first published state that did not include the one
    /// before it (a release, an arrival or a roll change lost).
    pub published_violation: Option<String>,
    /// Faults used.
    pub used: Used,
    /// Ghost: the first thing that must never happen, if it happened
    /// (an unexpected outcome, event or transmit).
    pub violation: Option<String>,
}

/// A step of the model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Participant `i` reads the published state (and may pass, or send
    /// again).
    Resend(u8),
    /// Participant `i` reads this visible notice on its release queue
    /// (visibility timeout 0: the notice stays for the others), and
    /// deletes it if [`Notice::deletable`] says so.
    Read(u8, String),
    /// Fault: as [`Action::Read`] of a notice the participant deletes, but
    /// the delete does not take effect.
    ReadStuck(u8, String),
    /// Coordinator `k` receives this visible check-in copy.
    Receive(u8, Tok),
    /// Coordinator `k`'s timer fires (a state write is due).
    Tick(u8),
    /// Coordinator `k`'s heartbeat write, while another coordinator is
    /// active and the register holds that one's write: it reads the
    /// register and stands down. (Heartbeats are otherwise beyond the
    /// horizon; this is the one whose effect matters.)
    Heartbeat(u8),
    /// Coordinator `k`'s driver carries out its next transmit (or the write
    /// of a state write whose read is done).
    Perform(u8),
    /// Fault: a held check-in copy becomes visible again.
    Lapse(Tok),
    /// Fault: a new copy of the check-in (member, generation, attempt).
    DuplicateCheckin(u8, u8, u8),
    /// Fault: a new copy of a notice sent earlier, on queue `parity` (also
    /// one deleted since: SQS may deliver a deleted message again).
    DuplicateNotice(u8, String),
    /// Fault: a visible notice copy expires (the 60 s retention).
    Expire(u8, String),
    /// Fault: coordinator `k` crashes; a standby starts from the tags in
    /// its place.
    Crash(u8),
    /// Fault: a standby takes over while the coordinator in slot 0 lives,
    /// starting in slot 1 from the tags.
    Takeover,
    /// The late member of a quorum barrier arrives at its next generation.
    Arrive(u8),
    /// The joining process sends its join message.
    JoinSend,
    /// The joining process reads the published state, which shows its
    /// join counted: it learns its position and first generation.
    JoinRead,
}

/// The model: a barrier of [`Bounds::members`] members.
#[derive(Clone, Debug)]
pub struct BarrierModel {
    /// The explored configuration.
    pub bounds: Bounds,
    cfg: BarrierConfig,
}

fn coordinator_options() -> CoordinatorOptions {
    let mut o = CoordinatorOptions::default();
    o.min_write_interval = Duration::ZERO;
    o.heartbeat = NEVER;
    // A quorum release is due as soon as the quorum is there (no deadline
    // is modelled, and a successor's held check-ins are modelled as
    // visible at once anyway).
    o.restart_grace = Duration::ZERO;
    o
}

fn participant_options() -> ParticipantOptions {
    let mut o = ParticipantOptions::default();
    o.silence_after = NEVER;
    o.status_interval = Duration::ZERO;
    o
}

impl BarrierModel {
    /// A model with these bounds.
    pub fn new(bounds: Bounds) -> Self {
        assert!((1..=8).contains(&bounds.members), "1 to 8 members");
        assert!(bounds.generations <= 16, "at most 16 generations");
        let f = bounds.features;
        let joiner = usize::from(f.join);
        assert!(bounds.members + joiner <= 8, "at most 8 processes");
        assert!(
            !(f.quorum || f.leave) || bounds.members >= 2,
            "a leave or a quorum needs 2 members"
        );
        assert!(!(f.quorum && f.leave), "the late member is the leaving one");
        let members = Membership::new(bounds.members, None).expect("valid membership");
        let mut cfg =
            BarrierConfig::new("model", "i0", members, None, false).expect("valid config");
        if f.quorum {
            cfg = cfg
                .with_quorum(bounds.members - 1, Duration::ZERO)
                .expect("valid quorum");
        }
        Self { bounds, cfg }
    }

    /// The processes: the configured members, then the joining one.
    fn processes(&self) -> usize {
        self.bounds.members + usize::from(self.bounds.features.join)
    }

    /// The member that leaves, or that a quorum may go on without.
    fn special(&self) -> usize {
        self.bounds.members - 1
    }

    /// Ghost: whether generation `g` expects member `e`, as the scenario
    /// and what was released so far say: a leaving member only up to its
    /// last generation, the joined one from the first generation it read
    /// (not before it read it: [`Action::JoinRead`] checks that nothing at
    /// or after it was released before), a member named in the `without`
    /// of an earlier generation's release no more.
    fn expects(&self, s: &State, e: usize, g: u64) -> bool {
        let f = self.bounds.features;
        if e >= self.bounds.members {
            return s.joined_from.is_some_and(|from| g >= from);
        }
        if f.leave && e == self.special() && g > 0 {
            return false;
        }
        (0..g as usize).all(|h| s.without[h] & (1 << e) == 0)
    }

    /// The members generation `g` expects (ghost), as a bitmap.
    fn expected(&self, s: &State, g: u64) -> u8 {
        (0..self.processes())
            .filter(|e| self.expects(s, *e, g))
            .fold(0, |acc, e| acc | (1 << e))
    }

    /// What member `m` brings to generation `g`.
    fn arrival(&self, m: usize, g: u64) -> Arrival {
        let f = self.bounds.features;
        Arrival {
            leave: f.leave && m == self.special() && g == 0,
            data: f.gather.then(|| format!("{m}.{g}")),
        }
    }

    /// A new coordinator life in a slot, started from the register.
    ///
    /// Its id differs from the other live coordinator's and from the
    /// register's writer (on SQS every life has a new random id; in the
    /// model writes are told apart by id and write counter only, since the
    /// clock is frozen). Three ids suffice, which keeps the state space
    /// small.
    fn start(&self, s: &mut State, k: usize) {
        let other = s.slots[1 - k].as_ref().map(|c| c.machine.id().to_owned());
        let writer = s.tags.as_ref().map(|t| t.coordinator.clone());
        let id = ["c0", "c1", "c2"]
            .into_iter()
            .find(|id| other.as_deref() != Some(*id) && writer.as_deref() != Some(*id))
            .expect("three ids for two coordinators and a writer");
        let machine =
            Coordinator::new(self.cfg.clone(), id, coordinator_options(), s.tags.as_ref());
        s.slots[k] = Some(Slot {
            machine,
            pending: VecDeque::new(),
        });
    }

    /// Slot `k` is gone (crashed or stood down): what it held is visible.
    fn vacate(&self, s: &mut State, k: usize) {
        s.slots[k] = None;
        for h in s.checkin.values_mut() {
            if *h == Holder::Held(k as u8) {
                *h = Holder::Visible(Some(k as u8));
            }
        }
    }

    fn slot(s: &mut State, k: usize) -> &mut Slot {
        s.slots[k].as_mut().expect("a running coordinator")
    }

    fn checkin_body(&self, t: &Tok) -> String {
        if t.generation == JOIN {
            return Message::Join {
                barrier: self.cfg.name.clone(),
                instance: self.cfg.instance.clone(),
                member: None,
                session: format!("s{}", t.member),
            }
            .encode();
        }
        let a = self.arrival(usize::from(t.member), u64::from(t.generation));
        Message::Checkin {
            barrier: self.cfg.name.clone(),
            instance: self.cfg.instance.clone(),
            generation: u64::from(t.generation),
            member: t.member.to_string(),
            session: format!("s{}", t.member),
            attempt: u32::from(t.attempt),
            leave: a.leave,
            data: a.data,
        }
        .encode()
    }

    /// Whether every participant has completed every generation it goes
    /// through: the leaving member its last, the joined one those from its
    /// first; a member dropped by a quorum release is done, and the late
    /// member of a quorum barrier may also never arrive.
    pub fn all_done(&self, s: &State) -> bool {
        s.members.iter().all(|m| {
            matches!(m.join, JoinStep::Member | JoinStep::Joined)
                && (m.next >= m.stop || m.dropped || (m.late && m.waiting.is_none()))
        })
    }

    /// Whether nothing but a status read or a fault can happen: no check-in
    /// is visible to a running coordinator, no coordinator step is due, and
    /// no waiting participant has a notice to read.
    fn quiet(&self, s: &State) -> bool {
        let running = s.slots.iter().any(Option::is_some);
        s.slots
            .iter()
            .flatten()
            .all(|c| c.pending.is_empty() && c.machine.poll_timeout().is_none_or(|t| t > NOW))
            && (!running || s.checkin.values().all(|h| matches!(h, Holder::Held(_))))
            && s.members.iter().all(|m| {
                m.waiting.is_none_or(|g| {
                    s.release[(g % 2) as usize]
                        .keys()
                        .all(|b| m.read.contains(b))
                })
            })
    }

    /// The actions enabled in `s`, collected (for the deadlock property).
    fn enabled(&self, s: &State) -> Vec<Action> {
        let mut v = Vec::new();
        self.actions(s, &mut v);
        v
    }

    /// Participant `i` arrives at its next generation and sends its check-in.
    fn arrive(&self, s: &mut State, i: usize) {
        let g = s.members[i].next;
        let arrival = self.arrival(i, g);
        if let Err(e) = s.members[i].machine.arrive_with(g, None, arrival, NOW) {
            flag(s, format!("participant {i}: arrive failed: {e}"));
        }
        s.members[i].waiting = Some(g);
        s.members[i].resends = 0;
        s.members[i].read.clear();
        s.arrived[g as usize] |= 1 << i;
        self.participant_sends(s, i);
    }

    /// The joining process reads the published state, which shows its
    /// join: it becomes member `position` from its first generation (the
    /// span's start, or the release frontier if the span began below it,
    /// as the library reads it) and arrives there.
    fn join_read(&self, s: &mut State) {
        let i = self.bounds.members;
        let tags = s.tags.clone().expect("enabled by a state showing the join");
        let roll = tags.roll(&self.cfg.members);
        let Some(Some(position)) = roll.join_of(&format!("s{i}")) else {
            return flag(s, format!("the join of s{i} was refused"));
        };
        if position != i {
            return flag(s, format!("the joined member got position {position}"));
        }
        let from = roll.span(position).from.max(tags.released_below);
        // The join is counted in a published state: no generation at or
        // after its first may have been released without the joined member.
        if let Some(g) = (from..self.bounds.generations).find(|g| s.passed[*g as usize] != 0) {
            return flag(
                s,
                format!("generation {g} was released before its joined member (from {from})"),
            );
        }
        let machine = match Participant::with_roll(
            &self.cfg,
            roll,
            &position.to_string(),
            format!("s{i}"),
            participant_options(),
        ) {
            Ok(p) => p,
            Err(e) => return flag(s, format!("the joined member has no participant: {e}")),
        };
        s.joined_from = Some(from);
        let m = &mut s.members[i];
        m.machine = machine;
        m.join = JoinStep::Joined;
        m.next = from;
        if from < m.stop {
            self.arrive(s, i);
        }
    }

    /// C: participant `i` passed `g` by its notice, which carried `data`:
    /// it is what each member brought, it names every member `g` expects
    /// that the release did not go on without, and it is what every other
    /// participant that passed `g` by a notice saw.
    fn check_gathered(&self, s: &mut State, i: usize, g: u64, data: BTreeMap<String, String>) {
        if !self.bounds.features.gather || s.gather_violation.is_some() {
            return;
        }
        let wrong = data
            .iter()
            .find(|(who, d)| **d != format!("{who}.{g}"))
            .map(|(who, d)| format!("{who} brought {d:?}"));
        let absent = (0..self.processes())
            .filter(|e| self.expects(s, *e, g) && s.without[g as usize] & (1 << e) == 0)
            .find(|e| !data.contains_key(&e.to_string()))
            .map(|e| format!("{e}'s data is missing"));
        let differs = s.gathered[g as usize]
            .as_ref()
            .filter(|seen| **seen != data)
            .map(|seen| format!("another participant saw {seen:?}"));
        if let Some(why) = wrong.or(absent).or(differs) {
            s.gather_violation = Some(format!(
                "participant {i} passed {g} with data {data:?}: {why}"
            ));
        }
        s.gathered[g as usize].get_or_insert(data);
    }

    /// Carries out one pending step of coordinator `k`.
    fn perform(&self, s: &mut State, k: usize) {
        match Self::slot(s, k)
            .pending
            .pop_front()
            .expect("a pending transmit")
        {
            Transmit::Notify { generation, body } => notify(s, generation, body),
            Transmit::Sweep { generation, below } => {
                // The driver receives what the queue holds (with a
                // visibility timeout, so its receipt handles are the latest)
                // and deletes what may go: every copy of it.
                s.release[(generation % 2) as usize]
                    .retain(|body, _| !sweepable(&self.cfg, body, below));
            }
            Transmit::Delete(toks) => {
                for t in toks {
                    // Only the latest receipt handle deletes.
                    let last = match s.checkin.get(&t) {
                        Some(Holder::Held(h)) | Some(Holder::Visible(Some(h))) => Some(*h),
                        _ => None,
                    };
                    if last == Some(k as u8) {
                        s.checkin.remove(&t);
                    }
                }
            }
            Transmit::DeadLetter { reason, .. } => {
                flag(s, format!("coordinator dead-lettered: {reason}"));
            }
            Transmit::WriteState { version, state } => {
                // Read, then merge or stand down, as the driver does. The
                // state written is the one the core asked for, which steps
                // in between (receives, releases) may have overtaken: the
                // process driver writes beside its loop.
                if let Some(other) = s.tags.clone() {
                    Self::slot(s, k).machine.handle_state_observed(&other, NOW);
                }
                if Self::slot(s, k).machine.superseded().is_some() {
                    self.stand_down(s, k);
                    return;
                }
                self.write(s, k, &state, version);
            }
        }
        self.coordinator_drain(s, k);
    }

    /// Coordinator `k` was superseded: its notices of generations it counted
    /// complete still go (its sweeps do not, as the core drops them); what
    /// it held is handed back; it stands by (and takes over again if nobody
    /// else is active).
    fn stand_down(&self, s: &mut State, k: usize) {
        self.coordinator_drain(s, k);
        let rest: Vec<_> = Self::slot(s, k).pending.drain(..).collect();
        for t in rest {
            if let Transmit::Notify { generation, body } = t {
                notify(s, generation, body);
            }
        }
        self.vacate(s, k);
        if s.slots[1 - k].is_none() {
            self.start(s, k);
        }
    }

    fn write(&self, s: &mut State, k: usize, state: &PublishedState, version: u64) {
        match PublishedState::from_json(&state.to_json()) {
            Some(mut read_back) => {
                // Only the coordinator's id, `released_*`, `open`, `broken`
                // and `rejected` matter here; clearing when it happened
                // merges states that differ only in that.
                read_back.heartbeat_ms = 0;
                read_back.heartbeat_every_ms = 0;
                if let Some(o) = &mut read_back.open {
                    o.since_ms = 0;
                    o.age_ms = None;
                    if o.quorum_age_ms.is_some() {
                        o.quorum_age_ms = Some(0);
                    }
                }
                if let Some(before) = &s.tags
                    && !read_back.includes(before)
                    && s.published_violation.is_none()
                {
                    s.published_violation = Some(format!(
                        "{} wrote {} over {}",
                        read_back.coordinator,
                        read_back.to_json(),
                        before.to_json()
                    ));
                }
                s.tags = Some(read_back);
            }
            None => flag(s, "published state does not read back".into()),
        }
        Self::slot(s, k).machine.handle_state_written(version);
    }

    /// After a coordinator call: with no crash or second coordinator left to
    /// fall between two transmits, carry them all out at once.
    fn settle(&self, s: &mut State, k: usize) {
        self.coordinator_drain(s, k);
        let alone = s.slots[1 - k].is_none() && s.used.takeovers >= self.bounds.takeovers;
        if s.used.crashes >= self.bounds.crashes && alone {
            while s.slots[k].as_ref().is_some_and(|c| !c.pending.is_empty()) {
                self.perform(s, k);
            }
        }
    }

    /// Sends what participant `i` queued; answers its status reads from the
    /// register.
    fn participant_sends(&self, s: &mut State, i: usize) {
        while let Some(t) = s.members[i].machine.poll_transmit() {
            match t {
                PTransmit::Send(body) => match Message::decode(&body) {
                    Ok(Message::Checkin {
                        generation,
                        attempt,
                        ..
                    }) => {
                        let tok = Tok {
                            member: i as u8,
                            generation: generation as u8,
                            attempt: attempt as u8,
                            copy: 0,
                        };
                        if body != self.checkin_body(&tok) {
                            flag(s, format!("participant {i} sent an unexpected body {body}"));
                        }
                        s.sent.insert((tok.member, tok.generation, tok.attempt), 1);
                        s.checkin.insert(tok, Holder::Visible(None));
                    }
                    other => flag(s, format!("participant {i} sent {other:?}")),
                },
                PTransmit::QueryStatus => {
                    let tags = s.tags.clone();
                    s.members[i].machine.handle_status(tags.as_ref(), NOW);
                }
            }
        }
    }

    /// Collects participant `i`'s outcomes.
    fn participant_outcomes(&self, s: &mut State, i: usize) {
        while let Some(o) = s.members[i].machine.poll_event() {
            match o {
                Outcome::Released { generation, data } => {
                    if let Some(data) = data {
                        self.check_gathered(s, i, generation, data);
                    }
                    let m = &mut s.members[i];
                    if m.waiting != Some(generation) {
                        let w = m.waiting;
                        flag(
                            s,
                            format!("participant {i} released at {generation} waiting at {w:?}"),
                        );
                        continue;
                    }
                    m.waiting = None;
                    m.next = generation + 1;
                    m.resends = 0;
                    m.read.clear();
                    s.passed[generation as usize] |= 1 << i;
                    // Arriving at once loses no behaviour: the check-in only
                    // sits in the queue until it is received.
                    if m.next < m.stop && !m.late {
                        self.arrive(s, i);
                    }
                }
                Outcome::Dropped { generation, since } => {
                    let m = &mut s.members[i];
                    if m.waiting != Some(generation) {
                        let w = m.waiting;
                        flag(
                            s,
                            format!("participant {i} dropped at {generation} waiting at {w:?}"),
                        );
                        continue;
                    }
                    m.waiting = None;
                    m.dropped = true;
                    // Only a quorum release names anybody in `without`.
                    let named = (0..=generation as usize).any(|h| s.without[h] & (1 << i) != 0);
                    if !named || since > generation {
                        flag(
                            s,
                            format!(
                                "participant {i} dropped at {generation} (since {since}), not named in a release"
                            ),
                        );
                    }
                }
                other => flag(s, format!("participant {i}: unexpected outcome {other:?}")),
            }
        }
    }

    /// Drains coordinator `k`'s events and transmits after a call.
    fn coordinator_drain(&self, s: &mut State, k: usize) {
        let Some(slot) = s.slots[k].as_mut() else {
            return;
        };
        let mut bad = None;
        while let Some(e) = slot.machine.poll_event() {
            match e {
                Event::Arrived { .. }
                | Event::Released { .. }
                | Event::Superseded { .. }
                | Event::Joined { .. }
                | Event::Left { .. }
                | Event::Dropped { .. } => {}
                other => bad = Some(format!("coordinator: unexpected event {other:?}")),
            }
        }
        while let Some(t) = slot.machine.poll_transmit() {
            slot.pending.push_back(t);
        }
        if let Some(b) = bad {
            flag(s, b);
        }
    }
}

fn flag(s: &mut State, what: String) {
    if s.violation.is_none() {
        s.violation = Some(what);
    }
}

/// One notice sent: a copy on the release queue of its generation's parity.
/// The ghost records whom a release went on without.
fn notify(s: &mut State, generation: u64, body: String) {
    if let Ok(Message::Release { without, .. }) = Message::decode(&body)
        && let Some(w) = s.without.get_mut(generation as usize)
    {
        for name in without {
            match name.parse::<u8>() {
                Ok(e) if e < 8 => *w |= 1 << e,
                _ => {
                    let why = format!("a release of {generation} without a stranger {name:?}");
                    flag(s, why);
                    return;
                }
            }
        }
    }
    let p = (generation % 2) as u8;
    *s.release[p as usize].entry(body.clone()).or_insert(0) += 1;
    s.notices.insert((p, body));
}

/// The generation of a notice body, if it is one.
fn notice_generation(body: &str) -> Option<u64> {
    match Message::decode(body) {
        Ok(Message::Release { generation, .. } | Message::Broken { generation, .. }) => {
            Some(generation)
        }
        _ => None,
    }
}

fn take_one(q: &mut BTreeMap<String, u8>, body: &str) -> bool {
    match q.get_mut(body) {
        Some(n) if *n > 1 => {
            *n -= 1;
            true
        }
        Some(_) => {
            q.remove(body);
            true
        }
        None => false,
    }
}

impl Model for BarrierModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let f = self.bounds.features;
        let g = self.bounds.generations;
        let members = (0..self.processes())
            .map(|i| {
                let joiner = i >= self.bounds.members;
                Member {
                    // The joining process has no participant until it
                    // joined: a placeholder, replaced by `JoinRead`.
                    machine: Participant::new(
                        &self.cfg,
                        &if joiner { 0 } else { i }.to_string(),
                        format!("s{i}"),
                        participant_options(),
                    )
                    .expect("a member"),
                    waiting: None,
                    next: 0,
                    resends: 0,
                    read: BTreeSet::new(),
                    stop: if f.leave && i == self.special() { 1 } else { g },
                    late: f.quorum && i == self.special(),
                    dropped: false,
                    join: if joiner {
                        JoinStep::Unsent
                    } else {
                        JoinStep::Member
                    },
                }
            })
            .collect();
        let g = g as usize;
        let mut s = State {
            slots: [None, None],
            checkin: BTreeMap::new(),
            sent: BTreeMap::new(),
            release: [BTreeMap::new(), BTreeMap::new()],
            notices: BTreeSet::new(),
            tags: None,
            members,
            arrived: vec![0; g],
            counted: vec![0; g],
            passed: vec![0; g],
            without: vec![0; g],
            joined_from: None,
            gathered: vec![None; g],
            gather_violation: None,
            published_violation: None,
            used: Used::default(),
            violation: None,
        };
        self.start(&mut s, 0);
        for i in 0..self.bounds.members {
            if !s.members[i].late && self.bounds.generations > 0 {
                self.arrive(&mut s, i);
            }
        }
        vec![s]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        let b = &self.bounds;
        for (k, slot) in s.slots.iter().enumerate() {
            let k = k as u8;
            if slot.as_ref().is_some_and(|c| !c.pending.is_empty()) {
                // The driver carries out the transmits of one call in order
                // before it receives again; participants' steps and SQS
                // faults commute with them, so only a crash, or the other
                // coordinator, is interleaved.
                actions.push(Action::Perform(k));
                if s.used.crashes < b.crashes {
                    actions.push(Action::Crash(k));
                }
            }
        }
        let busy = |k: usize| s.slots[k].as_ref().is_some_and(|c| !c.pending.is_empty());
        if busy(0) || busy(1) {
            let other = if busy(0) { 1 } else { 0 };
            if busy(0) && busy(1) || s.slots[other].is_none() {
                return;
            }
            // The other coordinator may act meanwhile (below, for it only).
            self.coordinator_actions(s, other, actions);
            return;
        }
        let quiet = self.quiet(s);
        for (i, m) in s.members.iter().enumerate() {
            let i = i as u8;
            match m.waiting {
                None if m.late && !m.dropped && m.next < m.stop => {
                    actions.push(Action::Arrive(i));
                }
                None if m.join == JoinStep::Unsent => actions.push(Action::JoinSend),
                None if m.join == JoinStep::Sent
                    && s.tags.as_ref().is_some_and(|t| {
                        t.roll(&self.cfg.members)
                            .join_of(&format!("s{i}"))
                            .is_some()
                    }) =>
                {
                    actions.push(Action::JoinRead);
                }
                None => {}
                Some(g) => {
                    let budget = if quiet {
                        m.resends < b.quiet_resends
                    } else {
                        s.used.resends < b.racing_resends
                    };
                    if budget {
                        actions.push(Action::Resend(i));
                    }
                    for body in s.release[(g % 2) as usize].keys() {
                        if m.read.contains(body) {
                            continue;
                        }
                        actions.push(Action::Read(i, body.clone()));
                        if s.used.stuck_deletes < b.stuck_deletes
                            && notice_generation(body).is_some_and(|n| n < g)
                        {
                            actions.push(Action::ReadStuck(i, body.clone()));
                        }
                    }
                }
            }
        }
        for k in 0..2 {
            if s.slots[k].is_some() {
                self.coordinator_actions(s, k, actions);
            }
        }
        if self.all_done(s) {
            return;
        }
        if s.used.lapses < b.lapses {
            for (t, h) in &s.checkin {
                if matches!(h, Holder::Held(_)) {
                    actions.push(Action::Lapse(*t));
                }
            }
        }
        if s.used.duplications < b.duplications {
            for &(m, g, a) in s.sent.keys() {
                actions.push(Action::DuplicateCheckin(m, g, a));
            }
            for (p, body) in &s.notices {
                actions.push(Action::DuplicateNotice(*p, body.clone()));
            }
        }
        if s.used.expiries < b.expiries {
            for p in 0..2u8 {
                for body in s.release[p as usize].keys() {
                    actions.push(Action::Expire(p, body.clone()));
                }
            }
        }
        if s.used.crashes < b.crashes {
            for k in 0..2 {
                if s.slots[k].is_some() {
                    actions.push(Action::Crash(k as u8));
                }
            }
        }
        if s.used.takeovers < b.takeovers && s.slots[1].is_none() && s.slots[0].is_some() {
            actions.push(Action::Takeover);
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        match action {
            Action::Resend(i) => {
                let i = i as usize;
                if self.quiet(last) {
                    s.members[i].resends += 1;
                } else {
                    s.used.resends += 1;
                }
                s.members[i].machine.handle_timeout(NOW);
                self.participant_sends(&mut s, i);
                // A state showing the generation released ends the wait.
                self.participant_outcomes(&mut s, i);
            }
            Action::Read(i, ref body) | Action::ReadStuck(i, ref body) => {
                let i = i as usize;
                let stuck = matches!(action, Action::ReadStuck(..));
                let g = s.members[i]
                    .waiting
                    .expect("only waiting participants read");
                let notice = s.members[i].machine.handle_notice(body);
                match &notice {
                    Notice::Accepted | Notice::Passed => {}
                    // With consecutive generations nobody can release g + 2
                    // while a member waits at g.
                    Notice::Later => flag(&mut s, format!("participant {i}: later notice at {g}")),
                    Notice::Foreign(why) => {
                        flag(&mut s, format!("participant {i}: foreign notice: {why}"));
                    }
                }
                if stuck {
                    s.used.stuck_deletes += 1;
                    if !notice.deletable() {
                        flag(
                            &mut s,
                            format!("participant {i}: {notice:?} is not deletable"),
                        );
                    }
                }
                if notice.deletable() && !stuck {
                    take_one(&mut s.release[(g % 2) as usize], body);
                } else if notice != Notice::Accepted {
                    s.members[i].read.insert(body.clone());
                }
                self.participant_sends(&mut s, i);
                self.participant_outcomes(&mut s, i);
            }
            Action::Receive(k, t) => {
                let k = k as usize;
                s.checkin.insert(t, Holder::Held(k as u8));
                if t.generation != JOIN {
                    s.counted[t.generation as usize] |= 1 << t.member;
                }
                let body = self.checkin_body(&t);
                Self::slot(&mut s, k).machine.handle_message(t, &body, NOW);
                self.settle(&mut s, k);
            }
            Action::Tick(k) => {
                let k = k as usize;
                Self::slot(&mut s, k).machine.handle_timeout(NOW);
                self.settle(&mut s, k);
            }
            Action::Heartbeat(k) => {
                let k = k as usize;
                let tags = s.tags.clone().expect("another coordinator's write");
                Self::slot(&mut s, k)
                    .machine
                    .handle_state_observed(&tags, NOW);
                if Self::slot(&mut s, k).machine.superseded().is_none() {
                    flag(&mut s, format!("coordinator {k} did not stand down"));
                }
                self.stand_down(&mut s, k);
            }
            Action::Perform(k) => {
                let k = k as usize;
                self.perform(&mut s, k);
                if s.slots[k].is_some() {
                    self.settle(&mut s, k);
                }
            }
            Action::Lapse(t) => {
                s.used.lapses += 1;
                if let Some(Holder::Held(k)) = s.checkin.get(&t).copied() {
                    s.checkin.insert(t, Holder::Visible(Some(k)));
                }
            }
            Action::DuplicateCheckin(m, g, a) => {
                s.used.duplications += 1;
                let n = s.sent.get_mut(&(m, g, a)).expect("sent");
                let copy = *n;
                *n += 1;
                s.checkin.insert(
                    Tok {
                        member: m,
                        generation: g,
                        attempt: a,
                        copy,
                    },
                    Holder::Visible(None),
                );
            }
            Action::DuplicateNotice(p, body) => {
                s.used.duplications += 1;
                *s.release[p as usize].entry(body).or_insert(0) += 1;
            }

            Action::Expire(p, body) => {
                s.used.expiries += 1;
                take_one(&mut s.release[p as usize], &body);
            }
            Action::Crash(k) => {
                let k = k as usize;
                s.used.crashes += 1;
                self.vacate(&mut s, k);
                // A standby takes over (if no other coordinator is left).
                if s.slots[1 - k].is_none() {
                    self.start(&mut s, k);
                }
            }
            Action::Takeover => {
                s.used.takeovers += 1;
                self.start(&mut s, 1);
            }
            Action::Arrive(i) => self.arrive(&mut s, usize::from(i)),
            Action::JoinSend => {
                let i = self.bounds.members;
                s.members[i].join = JoinStep::Sent;
                let tok = Tok {
                    member: i as u8,
                    generation: JOIN,
                    attempt: 0,
                    copy: 0,
                };
                s.sent.insert((tok.member, JOIN, 0), 1);
                s.checkin.insert(tok, Holder::Visible(None));
            }
            Action::JoinRead => self.join_read(&mut s),
        }
        // A lone coordinator runs in slot 0 (states that differ only in the
        // slot are the same).
        if s.slots[0].is_none() && s.slots[1].is_some() {
            s.slots.swap(0, 1);
            for h in s.checkin.values_mut() {
                *h = match *h {
                    Holder::Held(k) => Holder::Held(1 - k),
                    Holder::Visible(Some(k)) => Holder::Visible(Some(1 - k)),
                    other => other,
                };
            }
        }
        if s.used.duplications >= self.bounds.duplications || self.all_done(&s) {
            // The history is kept only for duplications.
            s.sent.clear();
            s.notices.clear();
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(
                "S1: released at g only after a check-in for g of every member g expects reached a coordinator, or on a quorum release of min of them with the rest named in without",
                |m: &BarrierModel, s: &State| {
                    (0..m.bounds.generations).all(|g| m.released_rightly(s, g))
                },
            ),
            Property::always(
                "S4: a dropped or left member never passes a generation that does not expect it",
                |m: &BarrierModel, s: &State| {
                    (0..m.bounds.generations).all(|g| {
                        let g = g as usize;
                        s.passed[g] & (s.without[g] | !m.expected(s, g as u64)) == 0
                    })
                },
            ),
            Property::always(
                "S5: every participant passing g by its notice sees the same gathered data, as the members brought it",
                |_: &BarrierModel, s: &State| s.gather_violation.is_none(),
            ),
            Property::always(
                "S6: a published state includes every earlier one (no release, arrival or join lost: the roll's version never goes back)",
                |_: &BarrierModel, s: &State| s.published_violation.is_none(),
            ),
            Property::always(
                "released only at the generation waited at; no other outcome, rejection or stray transmit",
                |_: &BarrierModel, s: &State| s.violation.is_none(),
            ),
            Property::always(
                "S3: a generation someone passed is in the tags or re-countable from the tags and the queue",
                |m: &BarrierModel, s: &State| recountable(m, s),
            ),
            Property::always(
                "L1: no deadlock unless every participant is done",
                |m: &BarrierModel, s: &State| m.all_done(s) || !m.enabled(s).is_empty(),
            ),
            Property::eventually(
                "L1: every participant completes every generation",
                |m: &BarrierModel, s: &State| m.all_done(s),
            ),
            Property::sometimes(
                "every participant completes after every allowed fault",
                |m: &BarrierModel, s: &State| {
                    let (b, u) = (&m.bounds, &s.used);
                    m.all_done(s)
                        && u.crashes == b.crashes
                        && u.lapses == b.lapses
                        && u.expiries == b.expiries
                        && u.duplications == b.duplications
                        && u.takeovers == b.takeovers
                        && u.stuck_deletes == b.stuck_deletes
                },
            ),
            Property::always(
                "B: a release queue holds at most 1 + f notices (f = crashes, takeovers and duplications so far)",
                |_: &BarrierModel, s: &State| {
                    let f = u32::from(s.used.crashes)
                        + u32::from(s.used.takeovers)
                        + u32::from(s.used.duplications);
                    s.release
                        .iter()
                        .all(|q| q.values().map(|n| u32::from(*n)).sum::<u32>() <= 1 + f)
                },
            ),
        ]
    }
}

impl BarrierModel {
    /// S1 at generation `g`: nobody passed it, or every member it expects
    /// arrived and its check-in reached a coordinator; on a quorum barrier,
    /// those that did not are named in a release notice's `without` and at
    /// least the quorum of those expected did.
    fn released_rightly(&self, s: &State, g: u64) -> bool {
        let gi = g as usize;
        if s.passed[gi] == 0 {
            return true;
        }
        let expected = self.expected(s, g);
        let here = expected & s.arrived[gi] & s.counted[gi];
        let missing = expected & !here;
        missing == 0
            || self.cfg.quorum.is_some_and(|q| {
                missing & !s.without[gi] == 0 && here.count_ones() as usize >= q.min
            })
    }

    /// The steps coordinator `k` may take when it has no work list.
    fn coordinator_actions(&self, s: &State, k: usize, actions: &mut Vec<Action>) {
        let Some(slot) = &s.slots[k] else {
            return;
        };
        if !slot.pending.is_empty() {
            actions.push(Action::Perform(k as u8));
            return;
        }
        for (t, h) in &s.checkin {
            if matches!(h, Holder::Visible(_)) {
                actions.push(Action::Receive(k as u8, *t));
            }
        }
        if slot.machine.poll_timeout().is_some_and(|t| t <= NOW) {
            actions.push(Action::Tick(k as u8));
        }
        if s.slots[1 - k].is_some()
            && slot.machine.has_published()
            && s.tags
                .as_ref()
                .is_some_and(|t| t.coordinator != slot.machine.id())
        {
            actions.push(Action::Heartbeat(k as u8));
        }
    }
}

/// S3 as a state invariant: while a generation that somebody passed is not
/// recorded as released in the published state, every member's arrival at
/// it is either recorded in the published state's open generation or still
/// a check-in in the queue, so a successor coordinator can count it again.
fn recountable(m: &BarrierModel, s: &State) -> bool {
    (0..m.bounds.generations).all(|g| {
        s.passed[g as usize] == 0
            || s.tags.as_ref().is_some_and(|t| t.is_released(g))
            || (0..m.processes() as u8).all(|i| {
                !m.expects(s, usize::from(i), g)
                    || s.without[g as usize] & (1 << i) != 0
                    || s.tags.as_ref().is_some_and(|t| {
                        t.open
                            .as_ref()
                            .is_some_and(|o| o.generation == g && o.arrived.contains(i as usize))
                    })
                    || s.checkin
                        .keys()
                        .any(|t| t.member == i && u64::from(t.generation) == g)
            })
    })
}

impl State {
    /// A one-line summary of the state, for counterexample traces.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for (k, slot) in self.slots.iter().enumerate() {
            match slot {
                Some(c) => {
                    let _ = write!(
                        out,
                        "coord{k} {} holds {} rb={} pending={} | ",
                        c.machine.id(),
                        c.machine.held(),
                        c.machine.released_below(),
                        c.pending.len(),
                    );
                }
                None => {
                    let _ = write!(out, "coord{k} - | ");
                }
            }
        }
        let _ = write!(out, "checkin:");
        for (t, h) in &self.checkin {
            let _ = write!(
                out,
                " m{}g{}a{}c{}{}",
                t.member,
                t.generation,
                t.attempt,
                t.copy,
                match h {
                    Holder::Held(k) => format!("*{k}"),
                    Holder::Visible(_) => String::new(),
                }
            );
        }
        for (p, q) in self.release.iter().enumerate() {
            let _ = write!(out, " | rel{p}:");
            for (body, n) in q {
                let g = match Message::decode(body) {
                    Ok(Message::Release { generation, .. }) => format!("g{generation}"),
                    _ => body.clone(),
                };
                let _ = write!(out, " {g}x{n}");
            }
        }
        let _ = write!(
            out,
            " | tags {:?}",
            self.tags.as_ref().map(|t| (
                &t.coordinator,
                t.released_below,
                &t.released_above,
                t.open.as_ref().map(|o| (o.generation, o.arrived.len()))
            ))
        );
        let _ = write!(out, " | members:");
        for (i, m) in self.members.iter().enumerate() {
            let _ = write!(
                out,
                " {i}:next{}/wait{:?}/rs{}",
                m.next, m.waiting, m.resends
            );
        }
        if let Some(v) = &self.violation {
            let _ = write!(out, " | VIOLATION: {v}");
        }
        out
    }
}

/// What a run of the checker found.
#[derive(Debug)]
pub struct CheckReport {
    /// The bounds checked.
    pub bounds: Bounds,
    /// States generated (with repeats).
    pub states: usize,
    /// Distinct states explored.
    pub unique_states: usize,
    /// The longest path explored.
    pub max_depth: usize,
    /// Wall-clock time of the check.
    pub elapsed: Duration,
    /// Each property that failed, with its counterexample (or, for a
    /// `sometimes` property, the note that no example exists).
    pub failures: Vec<String>,
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:?}: {} distinct states ({} generated), max depth {}, {:.1} s, {}",
            self.bounds,
            self.unique_states,
            self.states,
            self.max_depth,
            self.elapsed.as_secs_f64(),
            if self.failures.is_empty() {
                "all properties hold".to_owned()
            } else {
                format!("{} properties FAIL", self.failures.len())
            }
        )?;
        for fail in &self.failures {
            writeln!(f, "{fail}")?;
        }
        Ok(())
    }
}

/// Checks every property of the model with `bounds`, exhaustively (depth
/// first, on `threads` threads: it keeps only the visited states'
/// fingerprints and the current path, so memory stays small), and reports
/// what was found.
pub fn check(bounds: Bounds, threads: usize) -> CheckReport {
    use stateright::{Checker, Expectation};
    let model = BarrierModel::new(bounds);
    let properties = model.properties();
    let start = std::time::Instant::now();
    let checker = model.checker().threads(threads).spawn_dfs().join();
    let elapsed = start.elapsed();
    let mut failures = Vec::new();
    for p in properties {
        let found = checker.discovery(p.name);
        match (p.expectation, found) {
            (Expectation::Sometimes, None) => {
                failures.push(format!("NO EXAMPLE of `{}`", p.name));
            }
            (Expectation::Sometimes, Some(_)) | (_, None) => {}
            (_, Some(path)) => {
                let mut text = format!("COUNTEREXAMPLE to `{}`:\n", p.name);
                for (n, (state, action)) in path.into_vec().into_iter().enumerate() {
                    let _ = writeln!(text, "  {n:3} {}", state.summary());
                    if let Some(a) = action {
                        let _ = writeln!(text, "      -> {}", describe(&a));
                    }
                }
                failures.push(text);
            }
        }
    }
    CheckReport {
        bounds,
        states: checker.state_count(),
        unique_states: checker.unique_state_count(),
        max_depth: checker.max_depth(),
        elapsed,
        failures,
    }
}

fn describe(a: &Action) -> String {
    let notice = |body: &str| match Message::decode(body) {
        Ok(Message::Release { generation, .. }) => format!("release g{generation}"),
        _ => body.to_owned(),
    };
    match a {
        Action::Read(i, body) => format!("participant {i} reads {}", notice(body)),
        Action::ReadStuck(i, body) => {
            format!(
                "participant {i} reads {}; FAULT its delete does not take effect",
                notice(body)
            )
        }
        Action::DuplicateNotice(p, body) => {
            format!("FAULT duplicate copy of {} on release-{p}", notice(body))
        }
        Action::Expire(p, body) => {
            format!("FAULT a copy of {} on release-{p} expires", notice(body))
        }
        Action::Lapse(_) | Action::DuplicateCheckin(..) | Action::Crash(_) | Action::Takeover => {
            format!("FAULT {a:?}")
        }
        other => format!("{other:?}"),
    }
}
