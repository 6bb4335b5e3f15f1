//! One invocation of the coordinator as an AWS Lambda function: the
//! [`LambdaRound`] machine.
//!
//! An SQS event source mapping long-polls a barrier's check-in queue and
//! invokes the function with a batch of records. Nothing survives between
//! invocations but what is in SQS, so each invocation rebuilds the
//! [`Coordinator`] from the published state, feeds it the batch, lets it
//! write the state (which records the arrivals and releases, exactly as a
//! process coordinator's write does), and carries out what it asks:
//! notices, sweeps, dead letters. A record the coordinator has said may go
//! (its effect is in a durable state write) is left to the mapping, which
//! deletes every record of a successful invocation except those named in
//! `batchItemFailures`; every other record is named there
//! ([`Ending::Answered`]) and comes back after the queue's visibility
//! timeout.
//!
//! Two invocations may run at once and race on the state. Each publishes
//! its state as a process coordinator does (one more term than the state
//! it started from; a write that finds a state ordering after its own
//! stands down); the one that finds another's write stands down
//! ([`LambdaRound::handle_write_refused`]) and, since it still holds its
//! whole batch, simply starts again from the new state ([`MAX_RACES`]
//! rounds at most, then it hands the batch back: [`Ending::GaveUp`]). Two
//! that read the same state and write a moment apart can both pass that
//! check, and readers then take the write that orders last: each round
//! therefore reads the state again [`VERIFY_AFTER`] its write, and if the
//! newest state does not include what it wrote
//! ([`PublishedState::includes`]) it starts again too. So a lost race
//! costs a read and a write more, not a visibility timeout, and nothing
//! recorded is lost (a write delayed by more than that, e.g. by retries,
//! can still be passed over; the participants' status reads then send the
//! lost arrivals again).
//!
//! Notices wait for the state write that records their release: the
//! participants released check in at the next generation at once, and the
//! invocation that counts those check-ins must find this release in the
//! state, or it takes the next generation for a second open one and hands
//! its check-ins back for a visibility timeout. (A process coordinator
//! knows its own releases and sends first.) Sweeps wait for the end of the
//! round: a sweep long-polls for a second or more, and a write that waited
//! for it would mostly find another invocation's (or a tick's) write
//! first.
//!
//! Besides batches, the function is invoked on a schedule with a *tick*
//! ([`LambdaRound::tick`]): a round without records, whose coordinator
//! publishes a heartbeat (every new coordinator writes at once), so that
//! participants see a live coordinator while they wait for a straggler,
//! and fires the barrier deadline.
//!
//! Like every machine of this crate it does no IO and reads no clock: the
//! `sqs-barrier` crate's `lambda` module drives it over the AWS SDK, and
//! the simulation (`tests/simulation/lambda.rs`) over a model of SQS in
//! virtual time.
//!
//! # Driving it
//!
//! 1. [`LambdaRound::new`] with the batch's records of one barrier (or
//!    [`LambdaRound::tick`]).
//! 2. Drain [`LambdaRound::poll_transmit`] and carry out each [`Transmit`]
//!    in order, answering those that ask for an answer:
//!    * [`Transmit::ReadState`] with [`LambdaRound::handle_state_read`];
//!    * [`Transmit::WriteState`] with [`LambdaRound::handle_state_written`],
//!      [`LambdaRound::handle_write_refused`] or
//!      [`LambdaRound::handle_write_failed`];
//!    * [`Transmit::CheckState`] with [`LambdaRound::handle_check`];
//!    * [`Transmit::Notify`], [`Transmit::Sweep`] and
//!      [`Transmit::DeadLetter`] need none (an invocation that fails to
//!      send a notice or a dead letter fails as a whole: its batch comes
//!      back, which is safe).
//! 3. With nothing left to transmit, wait until
//!    [`LambdaRound::poll_timeout`] and call [`LambdaRound::handle_timeout`].
//! 4. Drain [`LambdaRound::poll_event`] for logs and metrics; stop once
//!    [`LambdaRound::ending`] says how the invocation ends.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use crate::config::BarrierConfig;
use crate::coordinator::{
    self, Coordinator, CoordinatorOptions, Transmit as CoordinatorTransmit, WriteGuard,
};
use crate::state::PublishedState;

/// How many rounds an invocation plays before it hands its batch back:
/// each lost race on the state (another invocation wrote first, or erased
/// this one's write) costs one.
pub const MAX_RACES: usize = 5;

/// How long after its write a round checks that the write was not erased
/// by a concurrent one: well over the gap between another invocation's
/// read and its write (a request or two).
pub const VERIFY_AFTER: Duration = Duration::from_millis(250);

/// Tunables of the Lambda coordinator.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct LambdaOptions {
    /// The interval of the schedule that invokes the function with a tick:
    /// the heartbeat it promises in the published state.
    pub heartbeat: Duration,
    /// The check-in queue's visibility timeout (30 s as `setup` makes it):
    /// how long a record handed back, or held by another invocation, may be
    /// away. A deadline breaks only this long after it passed.
    pub queue_visibility: Duration,
    /// Whether a round reads the state again [`VERIFY_AFTER`] its write to
    /// check that no concurrent invocation's write erased it. A driver
    /// whose invocations hold the coordinators' lease while they run (see
    /// [`crate::lease`]) turns it off: no other writes meanwhile.
    pub verify: bool,
}

impl Default for LambdaOptions {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(60),
            queue_visibility: Duration::from_secs(30),
            verify: true,
        }
    }
}

impl LambdaOptions {
    /// The options of the coordinator each round rebuilds.
    pub fn coordinator_options(&self) -> CoordinatorOptions {
        CoordinatorOptions {
            heartbeat: self.heartbeat,
            // Every round is a coordinator's whole life: the grace a
            // process gives a dead predecessor's held check-ins is the
            // slack below.
            restart_grace: Duration::ZERO,
            deadline_slack: self.queue_visibility,
            // The generation's age goes on between invocations: `now` is
            // wall time.
            age_since_write: true,
            // An invocation sees its batch only: the check-ins that carry
            // data, handed back to the mapping, would never all meet in
            // one.
            holds_data: false,
            ..CoordinatorOptions::default()
        }
    }
}

/// One record of the batch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Record<T> {
    /// The driver's handle of it (the message id, which
    /// `batchItemFailures` names); the coordinator's token.
    pub token: T,
    /// The message body.
    pub body: String,
    /// Its FIFO message group, if any: the mapping must not delete a
    /// group's records past one handed back.
    pub group: Option<String>,
}

impl<T> Record<T> {
    /// A record of a standard queue.
    pub fn new(token: T, body: impl Into<String>) -> Self {
        Self {
            token,
            body: body.into(),
            group: None,
        }
    }
}

/// Something the driver must do.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Transmit<T> {
    /// Read the published state to start a round from: the newest record
    /// of the barrier instance on its state queue, with the configuration
    /// its writer went by, or, if that queue holds none, the copy of the
    /// state in the check-in queue's tags. Answer with
    /// [`LambdaRound::handle_state_read`].
    ReadState,
    /// Publish `state` as a coordinator's write does: unless a state that
    /// orders after it is published, then answer
    /// [`LambdaRound::handle_write_refused`] with that one. Answer
    /// [`LambdaRound::handle_state_written`] once it is published, or
    /// [`LambdaRound::handle_write_failed`] if the write failed (it may
    /// have taken effect all the same).
    WriteState {
        /// The document to publish.
        state: Box<PublishedState>,
    },
    /// Read the newest published state (no copy in tags: none is `None`)
    /// and answer with [`LambdaRound::handle_check`]: whether the round's
    /// write stood, or, after a failed write, whether it took effect.
    CheckState,
    /// Send `body` to the release queue of `generation`.
    Notify {
        /// The generation the notice is for.
        generation: u64,
        /// The message body.
        body: String,
    },
    /// Sweep the release queue of `generation` of notices below `below`
    /// (see [`coordinator::Transmit::Sweep`]). Awaited: a function
    /// instance may be frozen as soon as it returns.
    Sweep {
        /// Selects the queue (by parity).
        generation: u64,
        /// Notices of generations below this one may go.
        below: u64,
    },
    /// Send `body` to the dead-letter queue (with `reason`). The record
    /// `token` is then gone for good: no later round sends it again, and
    /// the mapping deletes it.
    DeadLetter {
        /// The record.
        token: T,
        /// Its body.
        body: String,
        /// Why it was rejected.
        reason: String,
    },
}

/// Something that happened, for logs and metrics.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// What a round's coordinator reported (lost rounds' too).
    Coordinator(coordinator::Event),
    /// Round `round` (from 0) lost the race on the state: another
    /// invocation's write was found before this one's (`erased: false`),
    /// or this one's write was erased by another's, found when the state
    /// was checked [`VERIFY_AFTER`] it (`erased: true`). The next round
    /// starts from the state published then, unless this was the last.
    Lost {
        /// The round lost.
        round: usize,
        /// Whether its write had landed and was erased.
        erased: bool,
        /// The coordinator whose state was found, if any.
        by: Option<String>,
    },
}

/// How an invocation ends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ending<T> {
    /// A round stood: name `failures` in `batchItemFailures` (they come
    /// back after the visibility timeout); every other record may go.
    Answered {
        /// The records to keep, in batch order.
        failures: Vec<T>,
    },
    /// Every one of [`MAX_RACES`] rounds was lost: everything but the
    /// dead-lettered records is handed back, to come again at a less busy
    /// moment.
    GaveUp {
        /// The records to keep, in batch order.
        failures: Vec<T>,
    },
    /// A state write failed: the invocation fails (the mapping deletes
    /// nothing of its batch), with the write's error.
    WriteFailed,
}

impl<T> Ending<T> {
    /// The records to name in `batchItemFailures`; `None` when the
    /// invocation fails as a whole.
    pub fn failures(&self) -> Option<&[T]> {
        match self {
            Ending::Answered { failures } | Ending::GaveUp { failures } => Some(failures),
            Ending::WriteFailed => None,
        }
    }
}

/// Where the invocation is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Phase {
    /// [`Transmit::ReadState`] is out: a round starts when it is answered.
    Reading,
    /// The round's coordinator is being carried out.
    Running,
    /// [`Transmit::WriteState`] is out.
    Writing {
        version: u64,
        state: Box<PublishedState>,
    },
    /// The round wrote and waits to check its write.
    Waiting { until: Duration },
    /// [`Transmit::CheckState`] is out, to verify the round's write.
    Verifying,
    /// [`Transmit::CheckState`] is out, to see whether the failed write of
    /// `state` (the coordinator's `version`) took effect.
    Failed {
        version: u64,
        state: Box<PublishedState>,
    },
    /// Over: see [`LambdaRound::ending`].
    Done,
}

/// One invocation of the Lambda coordinator, for one barrier: rounds of
/// read, count, write and verify, until one stands. `T` is the driver's
/// handle of a record (a message id).
///
/// See the [module documentation](self) for how to drive it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LambdaRound<T> {
    config: BarrierConfig,
    id: String,
    opts: LambdaOptions,
    records: Vec<Record<T>>,
    /// The round under way, from 0.
    round: usize,
    phase: Phase,
    /// This round's coordinator (none before the round's state is read).
    core: Option<Coordinator<T>>,
    /// Records dead-lettered, in any round: gone for good.
    dead: BTreeSet<T>,
    /// This round: the records its coordinator let go, its notices waiting
    /// for its write, its sweeps waiting for its end, and what it wrote
    /// and when.
    done: BTreeSet<T>,
    notices: Vec<(u64, String)>,
    sweeps: Vec<(u64, u64)>,
    written: Option<(Box<PublishedState>, Duration)>,
    ending: Option<Ending<T>>,
    transmits: VecDeque<Transmit<T>>,
    events: VecDeque<Event>,
}

impl<T: Clone + Ord> LambdaRound<T> {
    /// An invocation with `records`, all of barrier `config` (the
    /// configuration as opened; a state record read carries its writer's),
    /// whose coordinators sign their writes `id` (round 0) and `id.R`
    /// (round R: each round is a new coordinator). `id` must be unique
    /// among the invocations: make it random. Starts with a
    /// [`Transmit::ReadState`].
    pub fn new(
        config: BarrierConfig,
        id: impl Into<String>,
        opts: LambdaOptions,
        records: Vec<Record<T>>,
    ) -> Self {
        Self {
            config,
            id: id.into(),
            opts,
            records,
            round: 0,
            phase: Phase::Reading,
            core: None,
            dead: BTreeSet::new(),
            done: BTreeSet::new(),
            notices: Vec::new(),
            sweeps: Vec::new(),
            written: None,
            ending: None,
            transmits: VecDeque::from([Transmit::ReadState]),
            events: VecDeque::new(),
        }
    }

    /// A scheduled tick: a round without records, which publishes a
    /// heartbeat and fires the barrier deadline.
    pub fn tick(config: BarrierConfig, id: impl Into<String>, opts: LambdaOptions) -> Self {
        Self::new(config, id, opts, Vec::new())
    }

    /// The round under way (from 0): how many were lost so far.
    pub fn round(&self) -> usize {
        self.round
    }

    /// The records of the batch.
    pub fn records(&self) -> &[Record<T>] {
        &self.records
    }

    /// The round's coordinator, once its state was read (the last one's,
    /// once the invocation is over with a round that stood).
    pub fn coordinator(&self) -> Option<&Coordinator<T>> {
        self.core.as_ref()
    }

    /// What the round's write may go over (see
    /// [`Coordinator::write_guard`]), for a driver that checks it itself
    /// before a [`Transmit::WriteState`]; a state it does not allow means
    /// [`Self::handle_write_refused`].
    pub fn write_guard(&self) -> Option<WriteGuard> {
        self.core.as_ref().map(Coordinator::write_guard)
    }

    /// Whether the invocation is over.
    pub fn is_finished(&self) -> bool {
        self.ending.is_some()
    }

    /// How the invocation ends, once it is over.
    pub fn ending(&self) -> Option<&Ending<T>> {
        self.ending.as_ref()
    }

    /// Answers [`Transmit::ReadState`]: the published state (`None`: none
    /// is), and the configuration its record carries (`None`: the state
    /// came from tags, or there is none; the configuration as opened
    /// holds). Starts the round: a new coordinator from that state, fed
    /// the whole batch and a timeout at `now` (wall time: a restored
    /// generation's age counts the time since its write).
    pub fn handle_state_read(
        &mut self,
        config: Option<BarrierConfig>,
        state: Option<&PublishedState>,
        now: Duration,
    ) {
        if self.phase != Phase::Reading {
            return;
        }
        let config = config.unwrap_or_else(|| self.config.clone());
        let id = match self.round {
            0 => self.id.clone(),
            r => format!("{}.{r}", self.id),
        };
        let mut core = Coordinator::new(config, id, self.opts.coordinator_options(), state);
        for r in &self.records {
            core.handle_message(r.token.clone(), &r.body, now);
        }
        core.handle_timeout(now);
        self.core = Some(core);
        self.phase = Phase::Running;
        self.run();
    }

    /// Answers [`Transmit::WriteState`]: the state is published (at
    /// `now`). The round's notices go, and [`VERIFY_AFTER`] this the
    /// round checks that the write stood.
    pub fn handle_state_written(&mut self, now: Duration) {
        let Some((version, state)) = self.take_write() else {
            return;
        };
        if let Some(core) = self.core.as_mut() {
            core.handle_state_written(version);
        }
        self.written = Some((state, now));
        self.send_notices();
        self.run();
    }

    /// Answers [`Transmit::WriteState`]: nothing was written, since
    /// `other`, a state that orders after the round's, is published.
    /// Another invocation wrote first: the round is lost, and the next
    /// one starts from the state published then.
    pub fn handle_write_refused(&mut self, other: &PublishedState, now: Duration) {
        if !matches!(self.phase, Phase::Writing { .. }) {
            return;
        }
        if let Some(core) = self.core.as_mut() {
            core.handle_state_observed(other, now);
        }
        self.forward_events();
        self.lose(false, Some(other.coordinator.clone()));
    }

    /// Answers [`Transmit::WriteState`]: the write failed. It may have
    /// taken effect all the same, and an invocation that finds a release
    /// in the state does not announce it again (its members would wait
    /// for their next status read): so the state is checked
    /// ([`Transmit::CheckState`]), and the round's notices go if it holds
    /// what the write recorded (only then: a release announced but not
    /// recorded could still be broken by a deadline), with those its
    /// coordinator gives only once a write is durable (a quorum release's,
    /// which names whom it went without). Then the invocation
    /// fails ([`Ending::WriteFailed`]): its records come back, and
    /// nothing else is carried out.
    pub fn handle_write_failed(&mut self) {
        let Some((version, state)) = self.take_write() else {
            return;
        };
        self.phase = Phase::Failed { version, state };
        self.transmits.push_back(Transmit::CheckState);
    }

    /// Answers [`Transmit::CheckState`] with the newest published state
    /// (`None`: none was found, or, after a failed write, the read failed
    /// too).
    pub fn handle_check(&mut self, current: Option<&PublishedState>) {
        match std::mem::replace(&mut self.phase, Phase::Running) {
            Phase::Verifying => {
                let stood = self
                    .written
                    .as_ref()
                    .is_some_and(|(mine, _)| current.is_some_and(|s| s.includes(mine)));
                if stood {
                    self.stand();
                } else {
                    self.lose(true, current.map(|s| s.coordinator.clone()));
                }
            }
            Phase::Failed { version, state } => {
                if current.is_some_and(|s| s.includes(&state)) {
                    // Durable after all: the notices the coordinator holds
                    // back until then (a quorum release's) go too.
                    if let Some(core) = self.core.as_mut() {
                        core.handle_state_written(version);
                        while let Some(t) = core.poll_transmit() {
                            if let CoordinatorTransmit::Notify { generation, body } = t {
                                self.notices.push((generation, body));
                            }
                        }
                    }
                    self.forward_events();
                    self.send_notices();
                }
                self.finish(Ending::WriteFailed);
            }
            other => self.phase = other,
        }
    }

    /// Fires the check of the round's write once [`Self::poll_timeout`]
    /// has passed.
    pub fn handle_timeout(&mut self, now: Duration) {
        if let Phase::Waiting { until } = self.phase
            && now >= until
        {
            self.phase = Phase::Verifying;
            self.transmits.push_back(Transmit::CheckState);
        }
    }

    /// The next instant at which [`Self::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.phase {
            Phase::Waiting { until } => Some(until),
            _ => None,
        }
    }

    /// The next thing the driver must do.
    pub fn poll_transmit(&mut self) -> Option<Transmit<T>> {
        self.transmits.pop_front()
    }

    /// The next thing that happened.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Carries out the round's coordinator up to its state write, or to
    /// its end: then the round's notices go, and a round that wrote waits
    /// to check its write; one that did not stands.
    fn run(&mut self) {
        let Some(core) = self.core.as_mut() else {
            return;
        };
        while let Some(t) = core.poll_transmit() {
            match t {
                CoordinatorTransmit::Notify { generation, body } => {
                    self.notices.push((generation, body));
                }
                CoordinatorTransmit::Sweep { generation, below } => {
                    self.sweeps.push((generation, below));
                }
                CoordinatorTransmit::Delete(tokens) => self.done.extend(tokens),
                // Sent once, whatever the round: a later round counts it
                // again (the published `rejected`) but does not send it.
                CoordinatorTransmit::DeadLetter {
                    token,
                    body,
                    reason,
                } => {
                    if self.dead.insert(token.clone()) {
                        self.transmits.push_back(Transmit::DeadLetter {
                            token,
                            body,
                            reason,
                        });
                    }
                }
                CoordinatorTransmit::WriteState { version, state } => {
                    self.transmits.push_back(Transmit::WriteState {
                        state: state.clone(),
                    });
                    self.phase = Phase::Writing { version, state };
                    self.forward_events();
                    return;
                }
            }
        }
        self.forward_events();
        // Notices of a round that wrote nothing (none is due), or that
        // its coordinator gave after the write.
        self.send_notices();
        match &self.written {
            Some((_, at)) if self.opts.verify => {
                self.phase = Phase::Waiting {
                    until: *at + VERIFY_AFTER,
                };
            }
            _ => self.stand(),
        }
    }

    /// The write under way, if one is (the round goes on running).
    fn take_write(&mut self) -> Option<(u64, Box<PublishedState>)> {
        match std::mem::replace(&mut self.phase, Phase::Running) {
            Phase::Writing { version, state } => Some((version, state)),
            other => {
                self.phase = other;
                None
            }
        }
    }

    fn forward_events(&mut self) {
        if let Some(core) = self.core.as_mut() {
            while let Some(e) = core.poll_event() {
                self.events.push_back(Event::Coordinator(e));
            }
        }
    }

    fn send_notices(&mut self) {
        for (generation, body) in self.notices.drain(..) {
            self.transmits
                .push_back(Transmit::Notify { generation, body });
        }
    }

    /// The round stands: its sweeps go, and the invocation answers the
    /// records neither let go nor dead-lettered.
    fn stand(&mut self) {
        for (generation, below) in self.sweeps.drain(..) {
            self.transmits
                .push_back(Transmit::Sweep { generation, below });
        }
        let failures = failures(&self.records, &self.done, &self.dead, self.config.fifo);
        self.finish(Ending::Answered { failures });
    }

    /// The round is lost: start again from the state now published, or
    /// hand the batch back after [`MAX_RACES`] rounds.
    fn lose(&mut self, erased: bool, by: Option<String>) {
        self.events.push_back(Event::Lost {
            round: self.round,
            erased,
            by,
        });
        self.round += 1;
        self.core = None;
        self.done.clear();
        self.notices.clear();
        self.sweeps.clear();
        self.written = None;
        if self.round >= MAX_RACES {
            let failures = failures(
                &self.records,
                &BTreeSet::new(),
                &self.dead,
                self.config.fifo,
            );
            self.finish(Ending::GaveUp { failures });
        } else {
            self.phase = Phase::Reading;
            self.transmits.push_back(Transmit::ReadState);
        }
    }

    fn finish(&mut self, ending: Ending<T>) {
        self.phase = Phase::Done;
        self.ending = Some(ending);
    }
}

/// The records to report as failures: every one neither let go nor
/// dead-lettered. On a FIFO queue a failure also keeps every later record
/// of its message group (the mapping must not delete a group's messages
/// past one it returns).
fn failures<T: Clone + Ord>(
    records: &[Record<T>],
    done: &BTreeSet<T>,
    dead: &BTreeSet<T>,
    fifo: bool,
) -> Vec<T> {
    let mut blocked: BTreeSet<&str> = BTreeSet::new();
    let mut failures = Vec::new();
    for r in records {
        let group = r.group.as_deref();
        let blocked_group = fifo && group.is_some_and(|g| blocked.contains(g));
        let gone = dead.contains(&r.token) || done.contains(&r.token);
        if blocked_group || !gone {
            failures.push(r.token.clone());
            if let (true, Some(g)) = (fifo, group) {
                blocked.insert(g);
            }
        }
    }
    failures
}

#[cfg(test)]
mod tests;
