//! The coordinators and their driver: starting a coordinator life,
//! carrying out its transmits against the queues and the published
//! state, crashes and standing down.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use sqs_barrier_core::coordinator::{Coordinator, Event, Transmit, sweepable};
use sqs_barrier_core::state::PublishedState;
use sqs_barrier_core::wire::BreakCause;

use crate::model::Action;
use crate::sqs::notify;
use crate::state::{Holder, Slot, State, Tok, flag};
use crate::{BarrierModel, coordinator_options};

impl BarrierModel {
    /// A new coordinator life in a slot, started from the register.
    ///
    /// Its id differs from the other live coordinator's and from the
    /// register's writer (on SQS every life has a new random id; in the
    /// model writes are told apart by id and write counter only, since the
    /// clock is frozen). Three ids suffice, which keeps the state space
    /// small.
    pub(crate) fn start(&self, s: &mut State, k: usize) {
        let other = s.slots[1 - k].as_ref().map(|c| c.machine.id().to_owned());
        let writer = s.tags.as_ref().map(|t| t.coordinator.clone());
        let id = ["c0", "c1", "c2"]
            .into_iter()
            .find(|id| other.as_deref() != Some(*id) && writer.as_deref() != Some(*id))
            .expect("three ids for two coordinators and a writer");
        // Only a quorum release and a join wait for the grace (deadlines are
        // not modelled): without them it, and its ghosts, would only split
        // states.
        let f = self.bounds.features;
        let unseen: BTreeSet<Tok> = if f.quorum || f.join {
            s.checkin.keys().copied().collect()
        } else {
            BTreeSet::new()
        };
        let grace = !unseen.is_empty();
        let machine = Coordinator::new(
            self.cfg.clone(),
            id,
            coordinator_options(grace),
            s.tags.as_ref(),
        );
        s.slots[k] = Some(Slot {
            machine,
            pending: VecDeque::new(),
            writing: None,
            unseen,
            grace,
            called: false,
            drops: BTreeMap::new(),
            resting: false,
            base: crate::NOW,
        });
    }

    /// The rested coordinator in slot 0 wakes ([`Action::Wake`]): the one
    /// that took the lease meanwhile (slot 1), if still there, stops; the
    /// rested one goes on if the register holds its own write, as the
    /// driver reads it after taking the lease again, with its restart grace
    /// again (from the copies in the queue now, as a successor's), else it
    /// stands down.
    pub(crate) fn wake(&self, s: &mut State) {
        if s.slots[1].is_some() {
            self.vacate(s, 1);
        }
        let mine = match (&s.slots[0], &s.tags) {
            (Some(slot), Some(t)) => t.coordinator == slot.machine.id(),
            _ => false,
        };
        if !mine {
            Self::slot(s, 0).resting = false;
            self.stand_down(s, 0);
            return;
        }
        let f = self.bounds.features;
        let unseen: BTreeSet<Tok> = if f.quorum || f.join {
            s.checkin.keys().copied().collect()
        } else {
            BTreeSet::new()
        };
        let slot = Self::slot(s, 0);
        let now = slot.now();
        slot.machine.handle_resumed(now, crate::GRACE);
        slot.resting = false;
        slot.base = now;
        slot.grace = f.quorum || f.join;
        slot.called = slot.grace && unseen.is_empty();
        slot.unseen = unseen;
    }

    /// Slot `k` is gone (crashed or stood down): what it held is visible.
    pub(crate) fn vacate(&self, s: &mut State, k: usize) {
        s.slots[k] = None;
        for h in s.checkin.values_mut() {
            if *h == Holder::Held(k as u8) {
                *h = Holder::Visible(Some(k as u8));
            }
        }
    }

    pub(crate) fn slot(s: &mut State, k: usize) -> &mut Slot {
        s.slots[k].as_mut().expect("a running coordinator")
    }

    /// Carries out one pending step of coordinator `k`.
    pub(crate) fn perform(&self, s: &mut State, k: usize) {
        if let Some((version, state)) = Self::slot(s, k).writing.take() {
            self.write(s, k, &state, version);
            self.coordinator_drain(s, k);
            return;
        }
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
                        for slot in s.slots.iter_mut().flatten() {
                            slot.unseen.remove(&t);
                        }
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
                // process driver writes beside its loop. Under the lease
                // nobody else writes, so the read and the write are one
                // step; without it the write is a step of its own, and the
                // other coordinator's steps may fall between.
                if let Some(other) = s.tags.clone() {
                    let slot = Self::slot(s, k);
                    let now = slot.now();
                    slot.machine.handle_state_observed(&other, now);
                    slot.called = slot.grace;
                }
                if Self::slot(s, k).machine.superseded().is_some() {
                    self.stand_down(s, k);
                    return;
                }
                if self.bounds.lease {
                    self.write(s, k, &state, version);
                } else {
                    Self::slot(s, k).writing = Some((version, state));
                }
            }
        }
        self.coordinator_drain(s, k);
    }

    /// Coordinator `k` was superseded: its notices of generations it counted
    /// complete still go (its sweeps do not, as the core drops them); what
    /// it held is handed back; it stands by (and takes over again if nobody
    /// else is active).
    pub(crate) fn stand_down(&self, s: &mut State, k: usize) {
        self.coordinator_drain(s, k);
        Self::slot(s, k).writing = None;
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

    pub(crate) fn write(&self, s: &mut State, k: usize, state: &PublishedState, version: u64) {
        if self.publish(s, state) {
            // A quorum release's drops are decided once this state, which
            // records the release, is published (its notice follows, but a
            // crash may come first): a status read may tell a dropped
            // member so.
            let mut drops = std::mem::take(&mut Self::slot(s, k).drops);
            make_public(s, &mut drops, state);
            Self::slot(s, k).drops = drops;
        }
        Self::slot(s, k).machine.handle_state_written(version);
    }

    /// Writes `state` to the register, as read back from its JSON form;
    /// false if it does not read back (flagged).
    pub(crate) fn publish(&self, s: &mut State, state: &PublishedState) -> bool {
        match PublishedState::from_json(&state.to_json()) {
            Some(mut read_back) => {
                // Only the coordinator's id, `released_*`, `open`, `broken`
                // and `rejected` matter here; clearing when it happened
                // merges states that differ only in that. (A Lambda round
                // then takes a restored generation, and its quorum, for as
                // old as its clock: see the crate documentation, "Time".)
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
                true
            }
            None => {
                flag(s, "published state does not read back".into());
                false
            }
        }
    }

    /// After a coordinator call: with no crash or second coordinator left to
    /// fall between two transmits, carry them all out at once.
    pub(crate) fn settle(&self, s: &mut State, k: usize) {
        self.coordinator_drain(s, k);
        let alone = s.slots[1 - k].is_none()
            && s.used.takeovers >= self.bounds.takeovers
            && s.used.rests >= self.bounds.rests;
        if s.used.crashes >= self.bounds.crashes && alone {
            while s.slots[k].as_ref().is_some_and(Slot::busy) {
                self.perform(s, k);
            }
        }
    }

    /// Drains coordinator `k`'s events and transmits after a call.
    pub(crate) fn coordinator_drain(&self, s: &mut State, k: usize) {
        let Some(slot) = s.slots[k].as_mut() else {
            return;
        };
        let mut bad = None;
        while let Some(e) = slot.machine.poll_event() {
            if let Some(b) = coordinator_event(e, &mut slot.drops, false) {
                bad = Some(b);
            }
        }
        while let Some(t) = slot.machine.poll_transmit() {
            slot.pending.push_back(t);
        }
        if let Some(b) = bad {
            flag(s, b);
        }
    }

    /// The steps coordinator `k` may take when it has no work list.
    pub(crate) fn coordinator_actions(&self, s: &State, k: usize, actions: &mut Vec<Action>) {
        let Some(slot) = &s.slots[k] else {
            return;
        };
        if slot.busy() {
            actions.push(Action::Perform(k as u8));
            return;
        }
        if slot.resting {
            // Resting, it only writes heartbeats (which decide nothing):
            // the one that finds another's write stands it down.
            if slot.machine.has_published()
                && s.tags
                    .as_ref()
                    .is_some_and(|t| t.coordinator != slot.machine.id())
            {
                actions.push(Action::Heartbeat(k as u8));
            }
            return;
        }
        for (t, h) in &s.checkin {
            if matches!(h, Holder::Visible(_)) {
                actions.push(Action::Receive(k as u8, *t));
            }
        }
        if slot.machine.poll_timeout().is_some_and(|t| t <= slot.now()) {
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

/// The members the quorum releases in `drops` went without, for those
/// releases the published `state` records: public now, in the ghost
/// [`State::without`].
pub(crate) fn make_public(s: &mut State, drops: &mut BTreeMap<u64, u8>, state: &PublishedState) {
    let public: Vec<(u64, u8)> = drops
        .iter()
        .filter(|(g, _)| state.is_released(**g))
        .map(|(g, d)| (*g, *d))
        .collect();
    for (g, d) in public {
        drops.remove(&g);
        if let Some(w) = s.without.get_mut(g as usize) {
            *w |= d;
        }
    }
}

/// Checks an event of a coordinator (a process's, or a Lambda round's):
/// records a quorum release's drops; returns what was wrong with it, if
/// anything. `breaks`: the barrier may break because a member brought
/// data (only the Lambda coordinator, which cannot gather).
pub(crate) fn coordinator_event(
    e: Event,
    drops: &mut BTreeMap<u64, u8>,
    breaks: bool,
) -> Option<String> {
    match e {
        Event::Arrived { .. }
        | Event::Released { .. }
        | Event::Superseded { .. }
        | Event::Joined { .. }
        | Event::Left { .. } => None,
        Event::Broken {
            cause: BreakCause::Unsupported { .. },
            ..
        } if breaks => None,
        Event::Dropped {
            generation,
            members,
        } => {
            let d = drops.entry(generation).or_insert(0);
            let mut bad = None;
            for name in members {
                match name.parse::<u8>() {
                    Ok(e) if e < 8 => *d |= 1 << e,
                    _ => bad = Some(format!("coordinator dropped a stranger {name:?}")),
                }
            }
            bad
        }
        other => Some(format!("coordinator: unexpected event {other:?}")),
    }
}
