//! An exhaustively checked model of the sqs-barrier protocol.
//!
//! The model embeds the **real** state machines of `sqs-barrier-core`
//! ([`Coordinator`] and [`Participant`]; for the coordinator as the Lambda
//! function, [`LambdaRound`], which builds a [`Coordinator`] per round) and
//! replaces the drivers and SQS by a nondeterministic environment that [stateright](https://docs.rs/stateright)
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
//! * **Published state** (the state queue's newest record, docs/PROTOCOL.md
//!   section 2): a register holding the last document written,
//!   round-tripped through its JSON form.
//! * **Coordinator driver**: drains `poll_transmit` into a work list after
//!   every call and carries the transmits out one at a time, in order, as
//!   separate steps (so a crash can fall between any two). `WriteState`
//!   is read, merge (or stand down), write as the driver does it. Under the
//!   lease nobody else writes, so that is one step; without it
//!   ([`Bounds::lease`] off) the read and the write are two steps, and the
//!   other coordinator's steps, its writes included, may fall between (the
//!   state queue has no compare-and-swap). A write
//!   reports `handle_state_written` in the same step (a crash between the write and the report is the same as a crash
//!   just after the report, since the deletes it unlocks are queued, not
//!   done). Receives may interleave with pending transmits, and the state
//!   written is the transmit's, which they may have overtaken: the process
//!   driver writes and deletes beside its loop, which goes on counting. (It
//!   may also send a notice before an earlier write lands, an order the
//!   work list does not take; a notice is true whenever it is sent, as its
//!   generation is complete.)
//! * **Coordinators**: a *crash* discards a machine and its work list and
//!   makes every check-in it held visible again; a standby (the same slot,
//!   new id) takes over from the register. A *takeover* is a standby
//!   taking over while the active coordinator lives. Under the lease (the
//!   protocol, docs/PROTOCOL.md section 2) the active one's lease has run
//!   out: it checks the lease before each request, so it stops between two
//!   of them, and its last request landed before the lease ended (the
//!   lease's timing assumption); the standby takes the lease and starts
//!   from the register it reads after. So one coordinator decides at a
//!   time, and a takeover can fall wherever a crash can. Without the lease
//!   (the protocol before it, or the assumption broken), up to two run at
//!   once, in slots 0 and 1, until one finds the other's write and stands
//!   down, handing its check-ins back: the configurations
//!   `without_the_lease_*` in tests/check.rs show what that costs (state
//!   lost, and with a quorum or a changing pool, phases split), and must
//!   keep finding it.
//! * **The Lambda coordinator** ([`CoordinatorKind::Lambda`]): no
//!   coordinator process runs. The event source mapping takes a *batch* of
//!   1 to `batch` distinct visible check-in copies, in any order (the round
//!   feeds them in order, and a join before a check-in is placed
//!   differently from one after it), and invokes the function with it
//!   ([`Action::Invoke`]); the copies are in flight, held by the
//!   invocation. The schedule invokes it with no batch (a *tick*,
//!   [`LambdaRound::tick`]). An invocation is one [`LambdaRound`] driven as
//!   the handler (`sqs_barrier::lambda`) drives it: its transmits are
//!   drained into a work list after every call and carried out one at a
//!   time, as separate steps, each answered as the handler answers it:
//!   `ReadState` with the register (the round builds its coordinator from
//!   it and feeds it the batch: the records reach a coordinator there);
//!   `WriteState` is the handler's write: read the register, refused
//!   ([`LambdaRound::handle_write_refused`]) if it holds a state that
//!   orders after the round's, else written and reported written (one
//!   step under the lease, where nobody else writes; two without it, the
//!   other invocation's steps between); `Notify`, `Sweep` (the round's
//!   sweeps wait for its end) and `DeadLetter` (flagged: none is
//!   expected) as for a process. With nothing left to carry out, the
//!   invocation returns its [`Ending`], and the mapping acts on it in a
//!   step of its own: the records it names as batch item failures are
//!   visible again (after the visibility timeout), the others deleted. A
//!   *crash* kills the invocation between any two of its steps (a function
//!   timeout, a lost instance, a lease that ran out: the handler checks
//!   its lease before every request and fails once it has run out), and
//!   its whole batch is visible again. Under the lease (the FIFO group
//!   lock of the lease queue) one invocation runs at a time. Its batch is
//!   taken as it starts: on AWS the mapping may receive it earlier, while
//!   another invocation holds the lease, which gives the same records, as
//!   a record the other holds is not visible before the other is over
//!   (the mapping needs the queue's visibility timeout to be at least the
//!   function's timeout, so nothing lapses while an invocation runs: no
//!   *visibility lapse* here) and what the other hands back comes back
//!   only after it returned. Without the lease ([`Bounds::lease`] off, the
//!   handler before the lease), a second invocation may start while one
//!   runs ([`Bounds::takeovers`] counts these), and every round checks its
//!   write after `VERIFY_AFTER` (a step: its timer fires with the frozen
//!   clock standing still) and starts again if it was erased, as the
//!   handler did then; the configurations `lambda_without_the_lease_*`
//!   show the window that leaves open, and must keep finding it.
//!
//!   Every round is a coordinator life with one more term than the state it
//!   read, so an invocation that changes nothing would lead back to the
//!   state it started from but for the published state's writer and term,
//!   for ever: one that hands its whole batch back and publishes the state
//!   it read again (check-ins of a generation after an open one, which
//!   wait for it; a tick with nothing due). With no other invocation under
//!   way the event source does not start such an invocation (the model
//!   runs it to its end to tell; every step it could be killed at leads to
//!   the same state too). A state where nothing else can happen is then
//!   terminal, and L1 judges it.
//! * **Participants**: member `i` arrives at generations `0..G` in turn; its
//!   status read (the register: a state showing its generation released
//!   ends the wait, one not showing its arrival makes it send again) is an
//!   action. A participant whose notice expired unread passes only by it.
//!   Under the Lambda coordinator a notice goes only after the write that
//!   records it, so an invocation killed between the two leaves a release
//!   that only the published state tells: once nothing else can happen, a
//!   status read that would end the wait (the state shows its generation
//!   released or broken, or that it is expected there no more) is always
//!   enabled, beyond the quiet re-sends of the wait, which reads of earlier
//!   states may have used up (it ends the wait, so paths stay finite).
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
//! One timer is a condition instead: a coordinator's restart grace, which
//! on SQS (the check-in queue's visibility timeout) lets the check-ins a
//! dead predecessor held come back before the coordinator decides what
//! only they could tell (a quorum release, a join's first generation). A
//! life that starts with check-in copies in the queue gets a grace of
//! [`GRACE`]; its clock reads `NOW` until it has received every copy that
//! was there at its start (or it was deleted), then `NOW + GRACE`. A life
//! that starts with none has no grace and its clock stays at `NOW`; so
//! does every life of a configuration without quorum or join, where
//! nothing waits for the grace.
//!
//! The Lambda rounds run with the options as deployed (the schedule's
//! heartbeat; the check-in queue's visibility timeout, 30 s, as the
//! `deadline_slack` that a quorum release waits beyond its grace; no
//! restart grace, as a round decides nothing before its write and sends
//! its notices only after it), every call at `NOW`. The register keeps no
//! write times (see above), so a round takes a restored open generation,
//! and its quorum, for as old as its clock (`age_since_write`): between
//! two invocations the slack has passed. So the invocation that first
//! sees a quorum publishes it without releasing (its own clock says the
//! slack has not passed), and any later invocation, a batch or a tick,
//! releases by quorum unless its batch completes the generation first.
//! A tick (a round without records) can change something only there, or
//! by publishing the first state; otherwise it publishes the state it read
//! again and is not taken (see above). Deadlines are not configured.
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
//! release queue holds at most `1 + f` release notice copies, where `f`
//! counts the crashes, takeovers and duplications so far. Without faults
//! that is one notice per queue, however many generations pass: a release
//! sweeps the other queue's older notice before anybody waits there.
//!
//! Under the Lambda coordinator the same properties are checked, with
//! one difference: it cannot gather data (docs/PROTOCOL.md, section 9),
//! and the first round that counts a check-in with data breaks the
//! barrier, saying so (`BreakCause::Unsupported`). With
//! [`Features::gather`] a broken wait is then an expected outcome and
//! counts as done for L1; S5 has nothing to check, and the property of
//! unexpected outcomes checks the break instead: every broken outcome
//! names the same generation and that cause, and nobody passes a broken
//! generation. (Broken notices, one to every member that
//! checks in after the break, are not counted by B.) A broken outcome is
//! unexpected in every other configuration.
//!
//! # Layout
//!
//! `state` holds the system state (queues, machines, ghost variables);
//! `sqs` the release queues' operations; `driver` the coordinators and
//! their driver (start, transmits, crash, standing down); `lambda` the
//! Lambda coordinator (the event source's batches, the invocations and
//! their driver, what the mapping does with their answer); `participants`
//! the members' arrivals, sends and outcomes; `features` what leave, join,
//! quorum and gathered data change; `model` the actions and transitions;
//! `properties` what is checked; `report` the run and its traces.
//!
//! [`Coordinator`]: sqs_barrier_core::coordinator::Coordinator
//! [`LambdaRound`]: sqs_barrier_core::lambda::LambdaRound
//! [`LambdaRound::tick`]: sqs_barrier_core::lambda::LambdaRound::tick
//! [`LambdaRound::handle_write_refused`]: sqs_barrier_core::lambda::LambdaRound::handle_write_refused
//! [`Ending`]: sqs_barrier_core::lambda::Ending
//! [`Participant`]: sqs_barrier_core::participant::Participant
//! [`Notice::deletable`]: sqs_barrier_core::participant::Notice::deletable
//! [`Transmit::Sweep`]: sqs_barrier_core::coordinator::Transmit::Sweep
//! [`sweepable`]: sqs_barrier_core::coordinator::sweepable

mod bounds;
mod driver;
mod features;
mod lambda;
mod model;
mod participants;
mod properties;
mod report;
mod sqs;
mod state;

use std::time::Duration;

use sqs_barrier_core::config::{BarrierConfig, Membership};
use sqs_barrier_core::coordinator::CoordinatorOptions;
use sqs_barrier_core::participant::ParticipantOptions;

pub use bounds::{Bounds, CoordinatorKind, Features};
pub use lambda::Invocation;
pub use model::Action;
pub use report::{CheckReport, check, find_counterexample};
pub use state::{Holder, JOIN, JoinStep, Member, Slot, State, Tok, Used};

/// The one instant every call of the model happens at.
pub const NOW: Duration = Duration::from_secs(1_000_000);

/// The restart grace of a coordinator life that starts while check-ins are
/// in the queue (a predecessor's held ones may be among them): its clock
/// reads [`NOW`] until it has received every one of them, then `NOW +
/// GRACE` (see [`Slot::now`]).
pub const GRACE: Duration = Duration::from_secs(5);

/// Far beyond anything the model does: timers set to this never fire.
const NEVER: Duration = Duration::from_secs(3_600);

/// The model: a barrier of [`Bounds::members`] members.
#[derive(Clone, Debug)]
pub struct BarrierModel {
    /// The explored configuration.
    pub bounds: Bounds,
    cfg: BarrierConfig,
}

/// The options of a coordinator life: with a restart grace of [`GRACE`]
/// if it starts while check-ins are in the queue, else none (nothing a
/// predecessor held can come back).
pub(crate) fn coordinator_options(grace: bool) -> CoordinatorOptions {
    let mut o = CoordinatorOptions::default();
    o.min_write_interval = Duration::ZERO;
    o.heartbeat = NEVER;
    o.restart_grace = if grace { GRACE } else { Duration::ZERO };
    o
}

pub(crate) fn participant_options() -> ParticipantOptions {
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
        if let CoordinatorKind::Lambda { batch } = bounds.coordinator {
            assert!(batch >= 1, "a batch holds a record at least");
            assert_eq!(bounds.lapses, 0, "nothing lapses while an invocation runs");
            assert!(
                !bounds.lease || bounds.takeovers == 0,
                "under the lease invocations take turns: a lease that runs out is a crash"
            );
        }
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
    pub(crate) fn processes(&self) -> usize {
        self.bounds.members + usize::from(self.bounds.features.join)
    }

    /// The member that leaves, or that a quorum may go on without.
    pub(crate) fn special(&self) -> usize {
        self.bounds.members - 1
    }
}
