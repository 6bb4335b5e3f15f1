//! The steps of the model (actions) and what each does (transitions).

use std::collections::{BTreeMap, BTreeSet};

use sqs_barrier_core::participant::{Notice, Participant, Transmit as PTransmit};
use stateright::{Model, Property};

use crate::sqs::{notice_generation, take_one};
use crate::state::{Holder, JOIN, JoinStep, Member, Slot, State, Tok, Used, flag};
use crate::{BarrierModel, CoordinatorKind, NOW, participant_options};

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
    /// Fault: a standby takes over while the coordinator in slot 0 lives.
    /// Under the lease, the active one's lease has run out: it stops, and
    /// the standby starts in its slot from the register; without the lease,
    /// the standby starts in slot 1 and both run.
    Takeover,
    /// The coordinator process in slot 0, with everything it decided
    /// published and nothing held, rests: it gives the lease back, and a
    /// standby takes it at once and starts in slot 1 from the register.
    Rest,
    /// The rested coordinator in slot 0 takes the lease again (for a
    /// check-in or a decision due): the one in slot 1, if any, lost it
    /// between two of its requests and stops; the rested one goes on (its
    /// restart grace again) if the register holds its own write, else it
    /// stands down.
    Wake,
    /// The late member of a quorum barrier arrives at its next generation.
    Arrive(u8),
    /// The joining process sends its join message.
    JoinSend,
    /// The joining process reads the published state, which shows its
    /// join counted: it learns its position and first generation.
    JoinRead,
    /// The Lambda coordinator: the event source invokes the function with
    /// these visible check-in copies, in this order (empty: the schedule's
    /// tick). The invocation holds them and runs its round in the free
    /// slot, one step per [`Action::Perform`].
    Invoke(Vec<Tok>),
}

impl BarrierModel {
    /// Whether every participant has completed every generation it goes
    /// through: the leaving member its last, the joined one those from its
    /// first; a member dropped by a quorum release is done, and the late
    /// member of a quorum barrier may also never arrive.
    pub fn all_done(&self, s: &State) -> bool {
        s.members.iter().all(|m| {
            matches!(m.join, JoinStep::Member | JoinStep::Joined)
                && (m.next >= m.stop || m.dropped || m.broken || (m.late && m.waiting.is_none()))
        })
    }

    /// Whether nothing but a status read or a fault can happen: no check-in
    /// is visible to a running coordinator, no coordinator step is due (the
    /// Lambda coordinator: no invocation is under way, and none that would
    /// change anything can start), and no waiting participant has a notice
    /// to read.
    pub(crate) fn quiet(&self, s: &State) -> bool {
        let invocations = match self.bounds.coordinator {
            CoordinatorKind::Lambda { batch } => self.lambda_invocations(s, batch),
            CoordinatorKind::Process => Vec::new(),
        };
        self.quiet_given(s, &invocations)
    }

    /// [`Self::quiet`], given the invocations the event source may start
    /// (under the Lambda coordinator).
    fn quiet_given(&self, s: &State, invocations: &[Vec<Tok>]) -> bool {
        let coordinators = if self.bounds.coordinator.is_lambda() {
            self.lambda_quiet(s, invocations)
        } else {
            self.coordinators_quiet(s)
        };
        coordinators
            && s.members.iter().all(|m| {
                m.waiting.is_none_or(|g| {
                    s.release[(g % 2) as usize]
                        .keys()
                        .all(|b| m.read.contains(b))
                })
            })
    }

    /// [`Self::quiet`] for the coordinator processes: none has a step due,
    /// and no check-in is visible to a running one.
    fn coordinators_quiet(&self, s: &State) -> bool {
        let running = s.slots.iter().any(Option::is_some);
        s.slots
            .iter()
            .flatten()
            .all(|c| !c.busy() && c.machine.poll_timeout().is_none_or(|t| t > c.now()))
            && (!running || s.checkin.values().all(|h| matches!(h, Holder::Held(_))))
    }

    /// The steps of a coordinator process with work left from its last
    /// call; true if nothing else may happen meanwhile.
    fn coordinators_busy(&self, s: &State, actions: &mut Vec<Action>) -> bool {
        let b = &self.bounds;
        for (k, slot) in s.slots.iter().enumerate() {
            let k = k as u8;
            if slot.as_ref().is_some_and(Slot::busy) {
                // The driver carries out the transmits of one call in order
                // before it receives again; participants' steps and SQS
                // faults commute with them, so only a crash, a lease that
                // runs out, or the other coordinator, is interleaved.
                actions.push(Action::Perform(k));
                if s.used.crashes < b.crashes {
                    actions.push(Action::Crash(k));
                }
                if b.lease && s.used.takeovers < b.takeovers {
                    actions.push(Action::Takeover);
                }
                if s.slots[1 - k as usize].as_ref().is_some_and(|o| o.resting) {
                    actions.push(Action::Wake);
                }
            }
        }
        let busy = |k: usize| s.slots[k].as_ref().is_some_and(Slot::busy);
        if busy(0) || busy(1) {
            let other = if busy(0) { 1 } else { 0 };
            if busy(0) && busy(1) || s.slots[other].is_none() {
                return true;
            }
            // The other coordinator may act meanwhile (below, for it only).
            self.coordinator_actions(s, other, actions);
            return true;
        }
        false
    }

    /// The steps of the invocations under way; true if nothing else may
    /// happen meanwhile. As for a process, participants' steps and SQS
    /// faults commute with an invocation's steps: only a crash (the
    /// invocation killed) or, without the lease, another invocation is
    /// interleaved; under the lease no other starts before it is over.
    fn lambda_running(&self, s: &State, batch: u8, actions: &mut Vec<Action>) -> bool {
        let b = &self.bounds;
        let mut running = 0;
        for (k, inv) in s.invocations.iter().enumerate() {
            if inv.is_some() {
                running += 1;
                actions.push(Action::Perform(k as u8));
                if s.used.crashes < b.crashes {
                    actions.push(Action::Crash(k as u8));
                }
            }
        }
        if running == 1 && !b.lease && s.used.takeovers < b.takeovers {
            // Without the lease the event source may invoke the function
            // again meanwhile.
            actions.extend(
                self.lambda_invocations(s, batch)
                    .into_iter()
                    .map(Action::Invoke),
            );
        }
        running > 0
    }

    /// Whether a status read of participant `i` would end its wait (the
    /// published state shows its generation released, broken, or that it
    /// is expected there no more). Under the Lambda coordinator a notice
    /// goes only after the write that records it, so an invocation killed
    /// between the two leaves a release that only the state tells: once
    /// nothing else can happen, such a read is always offered, beyond the
    /// quiet reads of the wait (which reads of earlier states may have
    /// used up); it ends the wait, so paths stay finite.
    fn read_ends_wait(&self, s: &State, i: usize) -> bool {
        let mut p = s.members[i].machine.clone();
        p.handle_timeout(NOW);
        while let Some(t) = p.poll_transmit() {
            if t == PTransmit::QueryStatus {
                p.handle_status(s.tags.as_ref(), NOW);
            }
        }
        p.poll_event().is_some()
    }

    /// The actions enabled in `s`, collected (for the deadlock property).
    pub(crate) fn enabled(&self, s: &State) -> Vec<Action> {
        let mut v = Vec::new();
        self.actions(s, &mut v);
        v
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
                    broken: false,
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
            invocations: [None, None],
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
            broken_from: None,
            published_violation: None,
            used: Used::default(),
            violation: None,
        };
        if !self.bounds.coordinator.is_lambda() {
            self.start(&mut s, 0);
        }
        for i in 0..self.bounds.members {
            if !s.members[i].late && self.bounds.generations > 0 {
                self.arrive(&mut s, i);
            }
        }
        vec![s]
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        let b = &self.bounds;
        if let CoordinatorKind::Lambda { batch } = b.coordinator {
            if self.lambda_running(s, batch, actions) {
                return;
            }
        } else if self.coordinators_busy(s, actions) {
            return;
        }
        let invocations = match b.coordinator {
            CoordinatorKind::Lambda { batch } => self.lambda_invocations(s, batch),
            CoordinatorKind::Process => Vec::new(),
        };
        let quiet = self.quiet_given(s, &invocations);
        for (i, m) in s.members.iter().enumerate() {
            let i = i as u8;
            match m.waiting {
                None if m.late && !m.dropped && !m.broken && m.next < m.stop => {
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
                            || b.coordinator.is_lambda() && self.read_ends_wait(s, i.into())
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
        match b.coordinator {
            CoordinatorKind::Lambda { .. } => {
                actions.extend(invocations.into_iter().map(Action::Invoke));
            }
            CoordinatorKind::Process => {
                for k in 0..2 {
                    if s.slots[k].is_some() {
                        self.coordinator_actions(s, k, actions);
                    }
                }
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
        // (An invocation is killed while it runs: see `lambda_running`.)
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
        match &s.slots {
            [Some(a), None] if s.used.rests < b.rests && !a.resting && a.machine.is_settled() => {
                actions.push(Action::Rest);
            }
            [Some(a), _] if a.resting => actions.push(Action::Wake),
            _ => {}
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        match action {
            Action::Resend(i) => {
                let i = i as usize;
                if self.quiet(last) {
                    let m = &mut s.members[i];
                    m.resends = m.resends.saturating_add(1);
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
                let slot = Self::slot(&mut s, k);
                let now = slot.now();
                slot.machine.handle_message(t, &body, now);
                slot.called = slot.grace;
                slot.unseen.remove(&t);
                self.settle(&mut s, k);
            }
            Action::Tick(k) => {
                let k = k as usize;
                let slot = Self::slot(&mut s, k);
                let now = slot.now();
                slot.machine.handle_timeout(now);
                slot.called = slot.grace;
                self.settle(&mut s, k);
            }
            Action::Heartbeat(k) => {
                let k = k as usize;
                let tags = s.tags.clone().expect("another coordinator's write");
                let slot = Self::slot(&mut s, k);
                let now = slot.now();
                slot.machine.handle_state_observed(&tags, now);
                if Self::slot(&mut s, k).machine.superseded().is_none() {
                    flag(&mut s, format!("coordinator {k} did not stand down"));
                }
                self.stand_down(&mut s, k);
            }
            Action::Perform(k) if self.bounds.coordinator.is_lambda() => {
                let k = k as usize;
                self.lambda_perform(&mut s, k);
                if s.invocations[k].is_some() {
                    self.lambda_settle(&mut s, k);
                }
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
            Action::Crash(k) if self.bounds.coordinator.is_lambda() => {
                s.used.crashes += 1;
                self.vacate_invocation(&mut s, k as usize);
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
            Action::Takeover if self.bounds.lease => {
                // The active coordinator's lease ran out (its extensions
                // failed): it re-checks the lease before every request, so
                // it stops between two of them (the timing assumption of
                // docs/PROTOCOL.md, section 2: what it sent before landed
                // before the lease ended); what it holds comes back when
                // its visibility lapses. A standby takes the lease and
                // starts from the register.
                s.used.takeovers += 1;
                self.vacate(&mut s, 0);
                self.start(&mut s, 0);
            }
            Action::Takeover => {
                s.used.takeovers += 1;
                self.start(&mut s, 1);
            }
            Action::Rest => {
                s.used.rests += 1;
                Self::slot(&mut s, 0).resting = true;
                self.start(&mut s, 1);
            }
            Action::Wake => self.wake(&mut s),
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
            Action::Invoke(batch) => {
                // (Alone, the event source starts only an invocation that
                // changes something: see `lambda_invocations`.)
                let k = self.invoke(&mut s, batch);
                self.lambda_settle(&mut s, k);
            }
        }
        // A lone coordinator runs in slot 0 (states that differ only in the
        // slot are the same).
        if s.slots[0].is_none() && s.slots[1].is_some()
            || s.invocations[0].is_none() && s.invocations[1].is_some()
        {
            s.slots.swap(0, 1);
            s.invocations.swap(0, 1);
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
        crate::properties::properties()
    }
}
