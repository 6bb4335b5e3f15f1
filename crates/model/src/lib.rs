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
//!   (held). A copy is named by its [`Tok`] (member, generation, attempt,
//!   copy number); the token is also the receipt handle the coordinator
//!   holds. The coordinator receives **any** visible copy (reordering).
//!   Faults: *duplication* (a new visible copy of any check-in ever sent,
//!   also one already deleted: SQS at-least-once delivery, or an SDK retry of
//!   `SendMessage`) and *visibility lapse* (a held copy becomes visible again:
//!   a late or failed visibility extension).
//! * **Release queues** 0 and 1: multisets of notice bodies. A participant
//!   takes one copy at a time from the queue of its generation's parity and
//!   the copy never comes back (hidden for 12 h, retained 60 s). Faults:
//!   *retention expiry* drops a visible copy; *duplication* adds a copy of a
//!   notice sent earlier.
//! * **Published state** (the check-in queue's tags): a register holding the
//!   last document written, round-tripped through its JSON form. A write is
//!   atomic (one `TagQueue`).
//! * **Coordinator driver**: drains `poll_transmit` into a work list after
//!   every call and carries the transmits out one at a time, in order, as
//!   separate steps (so a crash can fall between any two). `WriteState`
//!   updates the register and reports `handle_state_written` in one step (a
//!   crash between the write and the report is the same as a crash just
//!   after the report, since the deletes it unlocks are queued, not done).
//!   Receives may interleave with pending transmits.
//! * **Coordinator crash**: discards the machine and its work list, makes
//!   every held check-in visible again, and starts a new coordinator (new id)
//!   from the register.
//! * **Participants**: member `i` arrives at generations `0..G` in turn; the
//!   re-send timer is an action.
//!
//! # Time
//!
//! Time is abstracted away: every call gets the same `now` ([`NOW`]), and
//! the timers the model fires are set to zero so they are always due when
//! the model chooses to fire them (`resend_after = 0`;
//! `min_write_interval = 0`, so the coordinator's write timer is due exactly
//! when it has changes to publish or has never written). Firing is a
//! nondeterministic action, so every order of timer expiries and message
//! deliveries is explored. Timers whose only effects are failure outcomes
//! are placed beyond the horizon: heartbeat writes without changes, the
//! participants' status checks (`CoordinatorSilent`), wait timeouts and
//! barrier deadlines are not modelled; neither are aborts. With a frozen
//! clock a status check could only report a live coordinator, so leaving it
//! out loses no behaviour of the remaining protocol.
//!
//! # Bounds
//!
//! Faults are bounded by [`Bounds`] (per run), re-sends per wait. Faults are
//! enabled only while some participant still has generations to complete.
//! Every action consumes a budget or moves a message or machine forward, so
//! every path is finite and ends in a terminal state, which is what makes the
//! liveness check below exhaustive.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

use sqs_barrier_core::config::{BarrierConfig, Membership};
use sqs_barrier_core::coordinator::{Coordinator, CoordinatorOptions, Event, Transmit};
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
    /// Re-sends that may fire at any moment (racing with deliveries and
    /// the coordinator), in a run.
    pub racing_resends: u8,
    /// Re-sends per participant per wait that fire when nothing else but a
    /// fault can happen (the 20 s timer outlasts SQS and the coordinator).
    pub quiet_resends: u8,
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
    /// Quiet re-sends fired in the current wait.
    pub resends: u8,
}

/// Faults used so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Used {
    /// Duplications.
    pub duplications: u8,
    /// Visibility lapses.
    pub lapses: u8,
    /// Crashes (also the current coordinator's life number).
    pub crashes: u8,
    /// Retention expiries.
    pub expiries: u8,
    /// Racing re-sends.
    pub resends: u8,
}

/// A state of the whole system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// The real coordinator state machine of the current life.
    pub coordinator: Coordinator<Tok>,
    /// Transmits drained from the coordinator, not yet carried out.
    pub pending: VecDeque<Transmit<Tok>>,
    /// The check-in queue: copy -> in flight (held by the coordinator).
    pub checkin: BTreeMap<Tok, bool>,
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
    /// Faults used.
    pub used: Used,
    /// Ghost: the first thing that must never happen, if it happened
    /// (an unexpected outcome, event or transmit).
    pub violation: Option<String>,
}

/// A step of the model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Participant `i`'s re-send timer fires.
    Resend(u8),
    /// Participant `i` takes one copy of this notice from its release queue.
    Take(u8, String),
    /// The coordinator receives this visible check-in copy.
    Receive(Tok),
    /// The coordinator's timer fires (a state write is due).
    Tick,
    /// The coordinator's driver carries out its next transmit.
    Perform,
    /// Fault: a held check-in copy becomes visible again.
    Lapse(Tok),
    /// Fault: a new copy of the check-in (member, generation, attempt).
    DuplicateCheckin(u8, u8, u8),
    /// Fault: a new copy of a notice sent earlier, on queue `parity`.
    DuplicateNotice(u8, String),
    /// Fault: a visible notice copy expires.
    Expire(u8, String),
    /// Fault: the coordinator crashes and a new one starts from the tags.
    Crash,
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
    o
}

fn participant_options() -> ParticipantOptions {
    let mut o = ParticipantOptions::default();
    o.resend_after = Duration::ZERO;
    o.silence_after = NEVER;
    o.status_interval = NEVER;
    o
}

impl BarrierModel {
    /// A model with these bounds.
    pub fn new(bounds: Bounds) -> Self {
        assert!((1..=8).contains(&bounds.members), "1 to 8 members");
        assert!(bounds.generations <= 16, "at most 16 generations");
        let members = Membership::new(bounds.members, None).expect("valid membership");
        let cfg = BarrierConfig::new("model", "i0", members, None, false).expect("valid config");
        Self { bounds, cfg }
    }

    fn all(&self) -> u8 {
        ((1u16 << self.bounds.members) - 1) as u8
    }

    fn new_coordinator(&self, life: u8, restored: Option<&PublishedState>) -> Coordinator<Tok> {
        Coordinator::new(
            self.cfg.clone(),
            format!("c{life}"),
            coordinator_options(),
            restored,
        )
    }

    fn checkin_body(&self, t: &Tok) -> String {
        Message::Checkin {
            barrier: self.cfg.name.clone(),
            instance: self.cfg.instance.clone(),
            generation: u64::from(t.generation),
            member: t.member.to_string(),
            session: format!("s{}", t.member),
            attempt: u32::from(t.attempt),
        }
        .encode()
    }

    /// Whether every participant has completed every generation.
    pub fn all_done(&self, s: &State) -> bool {
        s.members.iter().all(|m| m.next == self.bounds.generations)
    }

    /// Whether nothing but a re-send or a fault can happen: no check-in is
    /// visible, no coordinator step is due, and no waiting participant has a
    /// notice copy to take.
    fn quiet(&self, s: &State) -> bool {
        s.pending.is_empty()
            && s.checkin.values().all(|held| *held)
            && s.coordinator.poll_timeout().is_none_or(|t| t > NOW)
            && s.members.iter().all(|m| {
                m.waiting
                    .is_none_or(|g| s.release[(g % 2) as usize].is_empty())
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
        if let Err(e) = s.members[i].machine.arrive(g, None, NOW) {
            flag(s, format!("participant {i}: arrive failed: {e}"));
        }
        s.members[i].waiting = Some(g);
        s.members[i].resends = 0;
        s.arrived[g as usize] |= 1 << i;
        self.participant_sends(s, i);
    }

    /// Carries out one pending transmit of the coordinator.
    fn perform(&self, s: &mut State) {
        match s.pending.pop_front().expect("a pending transmit") {
            Transmit::Notify {
                generation,
                copies,
                body,
            } => {
                let p = (generation % 2) as u8;
                *s.release[p as usize].entry(body.clone()).or_insert(0) += copies as u8;
                s.notices.insert((p, body));
            }
            Transmit::Delete(toks) => {
                for t in toks {
                    s.checkin.remove(&t);
                }
            }
            Transmit::DeadLetter { reason, .. } => {
                flag(s, format!("coordinator dead-lettered: {reason}"));
            }
            Transmit::WriteState { version, state } => {
                match PublishedState::from_json(&state.to_json()) {
                    Some(mut read_back) => {
                        // Only `released_*`, `broken` and `rejected` are
                        // read in the model (by a restarting coordinator,
                        // and by the properties); clearing the rest merges
                        // states that differ only in when a write happened.
                        read_back.coordinator.clear();
                        read_back.heartbeat_ms = 0;
                        read_back.open = None;
                        s.tags = Some(read_back);
                    }
                    None => flag(s, "published state does not read back".into()),
                }
                s.coordinator.handle_state_written(version);
            }
        }
        self.coordinator_drain(s);
    }

    /// After a coordinator call: with no crash left to fall between two
    /// transmits, carry them all out at once.
    fn settle(&self, s: &mut State) {
        self.coordinator_drain(s);
        if s.used.crashes >= self.bounds.crashes {
            while !s.pending.is_empty() {
                self.perform(s);
            }
        }
    }

    /// Sends what participant `i` queued.
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
                        s.checkin.insert(tok, false);
                    }
                    other => flag(s, format!("participant {i} sent {other:?}")),
                },
                PTransmit::QueryStatus => flag(s, format!("participant {i} queried the status")),
            }
        }
    }

    /// Collects participant `i`'s outcomes.
    fn participant_outcomes(&self, s: &mut State, i: usize) {
        while let Some(o) = s.members[i].machine.poll_event() {
            match o {
                Outcome::Released { generation } => {
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
                    s.passed[generation as usize] |= 1 << i;
                    // Arriving at once loses no behaviour: the check-in only
                    // sits in the queue until it is received.
                    if m.next < self.bounds.generations {
                        self.arrive(s, i);
                    }
                }
                other => flag(s, format!("participant {i}: unexpected outcome {other:?}")),
            }
        }
    }

    /// Drains the coordinator's events and transmits after a call.
    fn coordinator_drain(&self, s: &mut State) {
        while let Some(e) = s.coordinator.poll_event() {
            match e {
                Event::Arrived { .. } | Event::Released { .. } | Event::Resent { .. } => {}
                other => flag(s, format!("coordinator: unexpected event {other:?}")),
            }
        }
        while let Some(t) = s.coordinator.poll_transmit() {
            s.pending.push_back(t);
        }
    }
}

fn flag(s: &mut State, what: String) {
    if s.violation.is_none() {
        s.violation = Some(what);
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
        let members = (0..self.bounds.members)
            .map(|i| Member {
                machine: Participant::new(
                    &self.cfg,
                    &i.to_string(),
                    format!("s{i}"),
                    participant_options(),
                )
                .expect("a member"),
                waiting: None,
                next: 0,
                resends: 0,
            })
            .collect();
        let g = self.bounds.generations as usize;
        let mut s = State {
            coordinator: self.new_coordinator(0, None),
            pending: VecDeque::new(),
            checkin: BTreeMap::new(),
            sent: BTreeMap::new(),
            release: [BTreeMap::new(), BTreeMap::new()],
            notices: BTreeSet::new(),
            tags: None,
            members,
            arrived: vec![0; g],
            counted: vec![0; g],
            passed: vec![0; g],
            used: Used::default(),
            violation: None,
        };
        for i in 0..self.bounds.members {
            self.arrive(&mut s, i);
        }
        vec![s]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        let b = &self.bounds;
        if !s.pending.is_empty() {
            // The driver carries out the transmits of one call in order
            // before it receives again; participants' steps and SQS faults
            // commute with them, so only a crash is interleaved.
            actions.push(Action::Perform);
            if s.used.crashes < b.crashes {
                actions.push(Action::Crash);
            }
            return;
        }
        let quiet = self.quiet(s);
        for (i, m) in s.members.iter().enumerate() {
            let i = i as u8;
            match m.waiting {
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
                        actions.push(Action::Take(i, body.clone()));
                    }
                }
            }
        }
        for (t, held) in &s.checkin {
            if !held {
                actions.push(Action::Receive(*t));
            }
        }
        if s.coordinator.poll_timeout().is_some_and(|t| t <= NOW) {
            actions.push(Action::Tick);
        }
        if self.all_done(s) {
            return;
        }
        if s.used.lapses < b.lapses {
            for (t, held) in &s.checkin {
                if *held {
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
            actions.push(Action::Crash);
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
                let before = s.sent.len();
                s.members[i].machine.handle_timeout(NOW);
                self.participant_sends(&mut s, i);
                if s.sent.len() == before {
                    flag(
                        &mut s,
                        format!("participant {i}: the re-send timer sent nothing"),
                    );
                }
            }
            Action::Take(i, body) => {
                let i = i as usize;
                let g = s.members[i]
                    .waiting
                    .expect("only waiting participants take");
                take_one(&mut s.release[(g % 2) as usize], &body);
                if let Notice::Foreign(why) = s.members[i].machine.handle_notice(&body) {
                    flag(&mut s, format!("participant {i}: foreign notice: {why}"));
                }
                self.participant_outcomes(&mut s, i);
            }
            Action::Receive(t) => {
                s.checkin.insert(t, true);
                s.counted[t.generation as usize] |= 1 << t.member;
                let body = self.checkin_body(&t);
                s.coordinator.handle_message(t, &body, NOW);
                self.settle(&mut s);
            }
            Action::Tick => {
                s.coordinator.handle_timeout(NOW);
                self.settle(&mut s);
            }
            Action::Perform => {
                self.perform(&mut s);
                self.settle(&mut s);
            }
            Action::Lapse(t) => {
                s.used.lapses += 1;
                s.checkin.insert(t, false);
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
                    false,
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
            Action::Crash => {
                s.used.crashes += 1;
                s.pending.clear();
                s.coordinator = self.new_coordinator(s.used.crashes, s.tags.as_ref());
                for held in s.checkin.values_mut() {
                    *held = false;
                }
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
                "S1: released at g only after a check-in for g of every member reached a coordinator",
                |m: &BarrierModel, s: &State| {
                    s.passed
                        .iter()
                        .zip(&s.counted)
                        .zip(&s.arrived)
                        .all(|((p, c), a)| *p == 0 || (*c == m.all() && *a == m.all()))
                },
            ),
            Property::always(
                "released only at the generation waited at; no other outcome, rejection or stray transmit",
                |_: &BarrierModel, s: &State| s.violation.is_none(),
            ),
            Property::always(
                "S3: a generation someone passed is in the tags or re-countable from the queue",
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
                },
            ),
        ]
    }
}

/// S3 as a state invariant: while a generation that somebody passed is not
/// recorded as released in the published state, the check-in queue still
/// holds a check-in of it from every member, so a successor coordinator can
/// count it again.
fn recountable(m: &BarrierModel, s: &State) -> bool {
    (0..m.bounds.generations).all(|g| {
        s.passed[g as usize] == 0
            || s.tags.as_ref().is_some_and(|t| t.is_released(g))
            || (0..m.bounds.members as u8).all(|i| {
                s.checkin
                    .keys()
                    .any(|t| t.member == i && u64::from(t.generation) == g)
            })
    })
}

impl State {
    /// A one-line summary of the state, for counterexample traces.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "coord c{} holds {}",
            self.used.crashes,
            self.coordinator.held()
        );
        let _ = write!(
            out,
            " rb={} pending={}",
            self.coordinator.released_below(),
            self.pending.len()
        );
        let _ = write!(out, " | checkin:");
        for (t, held) in &self.checkin {
            let _ = write!(
                out,
                " m{}g{}a{}c{}{}",
                t.member,
                t.generation,
                t.attempt,
                t.copy,
                if *held { "*" } else { "" }
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
            " | tags rb={:?}",
            self.tags
                .as_ref()
                .map(|t| (t.released_below, &t.released_above))
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
        Action::Take(i, body) => format!("participant {i} takes a copy of {}", notice(body)),
        Action::DuplicateNotice(p, body) => {
            format!("FAULT duplicate copy of {} on release-{p}", notice(body))
        }
        Action::Expire(p, body) => {
            format!("FAULT a copy of {} on release-{p} expires", notice(body))
        }
        Action::Lapse(_) | Action::DuplicateCheckin(..) | Action::Crash => format!("FAULT {a:?}"),
        other => format!("{other:?}"),
    }
}
