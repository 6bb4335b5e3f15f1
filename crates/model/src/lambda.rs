//! The coordinator as the Lambda function: the event source's batches,
//! invocations that drive the core's [`LambdaRound`] as the handler
//! (`sqs_barrier::lambda`) drives it, and what the mapping does with their
//! answer.

use std::collections::{BTreeMap, VecDeque};
use std::hash::{Hash, Hasher};

use sqs_barrier_core::coordinator::sweepable;
use sqs_barrier_core::lambda::{
    Ending, Event as LambdaEvent, LambdaOptions, LambdaRound, Record, Transmit,
};
use sqs_barrier_core::state::PublishedState;

use crate::driver::{coordinator_event, make_public};
use crate::sqs::notify;
use crate::state::{Holder, JOIN, State, Tok, flag};
use crate::{BarrierModel, NOW};

/// An invocation under way: the real round machine and its driver's work
/// list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The real state machine.
    pub round: LambdaRound<Tok>,
    /// Its id (its rounds sign `ID` or `ID.R`).
    pub id: &'static str,
    /// Transmits drained from it, not yet carried out.
    pub pending: VecDeque<Transmit<Tok>>,
    /// Its batch, in the order the event source handed it over: the
    /// check-in copies it holds.
    pub batch: Vec<Tok>,
    /// A state write whose check is done and whose write is not (only
    /// without the lease, where another invocation's steps may fall
    /// between the two).
    pub landing: Option<Box<PublishedState>>,
    /// Ghost: the members its round's quorum releases went without, by
    /// generation, until a state recording the release is written (then
    /// they are in [`State::without`]).
    pub drops: BTreeMap<u64, u8>,
}

impl Hash for Invocation {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The core's round derives `Eq` but not `Hash`: its `Debug` form,
        // which spells out every field (in a deterministic order: the
        // machine holds no hash maps), stands for it. stateright tells
        // states apart by this hash alone.
        format!("{:?}", self.round).hash(state);
        self.id.hash(state);
        self.pending.hash(state);
        self.batch.hash(state);
        self.landing.hash(state);
        self.drops.hash(state);
    }
}

impl BarrierModel {
    /// The options of every invocation: as deployed (the schedule's
    /// heartbeat, the check-in queue's visibility timeout as the slack);
    /// under the lease without the check after the write, as the handler
    /// runs it, and with it otherwise, as it ran before the lease.
    pub(crate) fn lambda_options(&self) -> LambdaOptions {
        let mut o = LambdaOptions::default();
        o.verify = !self.bounds.lease;
        o
    }

    pub(crate) fn invocation(s: &mut State, k: usize) -> &mut Invocation {
        s.invocations[k].as_mut().expect("an invocation under way")
    }

    /// The event source invokes the function with `batch` (empty: the
    /// schedule's tick): its records are in flight, held by the new
    /// invocation, in the first free slot (slot 1 only without the lease,
    /// beside the invocation in slot 0). Returns the slot.
    ///
    /// The batch is taken as the invocation starts its round. On AWS the
    /// mapping may receive it earlier, while another invocation holds the
    /// lease; that changes nothing, since a record that invocation holds
    /// is not visible before it is over (no lapse: see
    /// [`CoordinatorKind::Lambda`](crate::CoordinatorKind::Lambda)), and
    /// what it hands back comes back only after it returned.
    pub(crate) fn invoke(&self, s: &mut State, batch: Vec<Tok>) -> usize {
        let k = if s.invocations[0].is_none() { 0 } else { 1 };
        if k == 1 {
            s.used.takeovers += 1;
        }
        // Ids: distinct from the other invocation's and from the writer of
        // the register (as a random id is); a round after a lost race
        // signs `ID.R`. Three ids suffice.
        let base = |id: &str| id.split('.').next().unwrap_or_default().to_owned();
        let other = s.invocations[1 - k].as_ref().map(|i| i.id);
        let writer = s.tags.as_ref().map(|t| base(&t.coordinator));
        let id = ["l0", "l1", "l2"]
            .into_iter()
            .find(|id| other != Some(*id) && writer.as_deref() != Some(*id))
            .expect("three ids for two invocations and a writer");
        let records = batch
            .iter()
            .map(|t| Record::new(*t, self.checkin_body(t)))
            .collect();
        for t in &batch {
            s.checkin.insert(*t, Holder::Held(k as u8));
        }
        let round = if batch.is_empty() {
            LambdaRound::tick(self.cfg.clone(), id, self.lambda_options())
        } else {
            LambdaRound::new(self.cfg.clone(), id, self.lambda_options(), records)
        };
        s.invocations[k] = Some(Invocation {
            round,
            id,
            pending: VecDeque::new(),
            batch,
            landing: None,
            drops: BTreeMap::new(),
        });
        self.lambda_drain(s, k);
        k
    }

    /// Carries out one step of invocation `k`, as the handler does: its
    /// next transmit, answered at once; with none left, the timer of the
    /// check after its write (without the lease), or its end.
    pub(crate) fn lambda_perform(&self, s: &mut State, k: usize) {
        if let Some(state) = Self::invocation(s, k).landing.take() {
            self.land(s, k, &state);
            self.lambda_drain(s, k);
            return;
        }
        match Self::invocation(s, k).pending.pop_front() {
            Some(Transmit::ReadState) => {
                // The round feeds its whole batch to a coordinator built
                // from the register: the records reach a coordinator here.
                for t in Self::invocation(s, k).batch.clone() {
                    if t.generation != JOIN {
                        s.counted[t.generation as usize] |= 1 << t.member;
                    }
                }
                let tags = s.tags.clone();
                Self::invocation(s, k)
                    .round
                    .handle_state_read(None, tags.as_ref(), NOW);
            }
            Some(Transmit::WriteState { state }) => {
                // As the handler's write: read the newest state; refused if
                // it orders after this one (another invocation wrote
                // since), else written. Under the lease nobody else writes,
                // so that is one step; without it the write is a step of
                // its own, and the other invocation's steps may fall
                // between (the state queue has no compare-and-swap).
                let mine = state.order();
                if let Some(other) = s.tags.clone().filter(|o| o.order() > mine) {
                    Self::invocation(s, k)
                        .round
                        .handle_write_refused(&other, NOW);
                } else if self.bounds.lease {
                    self.land(s, k, &state);
                } else {
                    Self::invocation(s, k).landing = Some(state);
                }
            }
            Some(Transmit::CheckState) => {
                let tags = s.tags.clone();
                Self::invocation(s, k).round.handle_check(tags.as_ref());
            }
            Some(Transmit::Notify { generation, body }) => notify(s, generation, body),
            Some(Transmit::Sweep { generation, below }) => {
                s.release[(generation % 2) as usize]
                    .retain(|body, _| !sweepable(&self.cfg, body, below));
            }
            Some(Transmit::DeadLetter { reason, .. }) => {
                flag(s, format!("invocation dead-lettered: {reason}"));
            }
            None => {
                let round = &mut Self::invocation(s, k).round;
                if round.ending().is_some() {
                    return self.lambda_end(s, k);
                }
                match round.poll_timeout() {
                    // The check after the write is due (the clock is
                    // frozen: its instant is the round's own).
                    Some(at) => round.handle_timeout(at),
                    None => {
                        flag(s, format!("invocation {k} stalled"));
                        return self.vacate_invocation(s, k);
                    }
                }
            }
        }
        self.lambda_drain(s, k);
    }

    /// The write of invocation `k`'s state lands; the round hears of it.
    fn land(&self, s: &mut State, k: usize, state: &PublishedState) {
        if self.publish(s, state) {
            let mut drops = std::mem::take(&mut Self::invocation(s, k).drops);
            make_public(s, &mut drops, state);
            Self::invocation(s, k).drops = drops;
        }
        Self::invocation(s, k).round.handle_state_written(NOW);
    }

    /// Invocation `k` returns its ending, and the mapping acts on it: it
    /// deletes every record of the batch but those named as failures,
    /// which become visible again (after the visibility timeout); a failed
    /// invocation's whole batch comes back.
    fn lambda_end(&self, s: &mut State, k: usize) {
        let inv = s.invocations[k].take().expect("an invocation under way");
        let failures = match inv.round.ending() {
            Some(Ending::Answered { failures }) => failures.clone(),
            Some(Ending::GaveUp { failures }) => {
                if self.bounds.lease {
                    flag(s, format!("invocation {k} gave up under the lease"));
                }
                failures.clone()
            }
            other => {
                flag(s, format!("invocation {k} ended {other:?}"));
                inv.batch.clone()
            }
        };
        for t in &inv.batch {
            if s.checkin.get(t) != Some(&Holder::Held(k as u8)) {
                continue;
            }
            if failures.contains(t) {
                s.checkin.insert(*t, Holder::Visible(None));
            } else {
                s.checkin.remove(t);
            }
        }
    }

    /// Invocation `k` is gone (killed: a function timeout, a lost
    /// instance, a lease that ran out): its whole batch comes back.
    pub(crate) fn vacate_invocation(&self, s: &mut State, k: usize) {
        s.invocations[k] = None;
        for h in s.checkin.values_mut() {
            if *h == Holder::Held(k as u8) {
                *h = Holder::Visible(None);
            }
        }
    }

    /// Drains invocation `k`'s transmits and events after a call.
    pub(crate) fn lambda_drain(&self, s: &mut State, k: usize) {
        let breaks = self.bounds.features.gather;
        let lease = self.bounds.lease;
        let Some(inv) = s.invocations[k].as_mut() else {
            return;
        };
        while let Some(t) = inv.round.poll_transmit() {
            inv.pending.push_back(t);
        }
        let mut bad = None;
        while let Some(e) = inv.round.poll_event() {
            match e {
                LambdaEvent::Coordinator(e) => {
                    if let Some(b) = coordinator_event(e, &mut inv.drops, breaks) {
                        bad = Some(b);
                    }
                }
                // A lost round's decisions are gone with it (those its
                // write published are public already).
                LambdaEvent::Lost { .. } if !lease => inv.drops.clear(),
                other => bad = Some(format!("invocation {k}: unexpected event {other:?}")),
            }
        }
        if let Some(b) = bad {
            flag(s, b);
        }
    }

    /// After an invocation's step: with no crash or other invocation left
    /// to fall between two of its steps, carry it out to its end.
    pub(crate) fn lambda_settle(&self, s: &mut State, k: usize) {
        let alone = s.invocations[1 - k].is_none()
            && (self.bounds.lease || s.used.takeovers >= self.bounds.takeovers);
        if s.used.crashes >= self.bounds.crashes && alone {
            self.run_out(s, k);
        }
    }

    /// Carries invocation `k` out to its end.
    pub(crate) fn run_out(&self, s: &mut State, k: usize) {
        while s.invocations[k].is_some() {
            self.lambda_perform(s, k);
        }
    }

    /// Whether `after` is `before` but for the register's writer, term and
    /// write counter (and the ghost of check-ins that reached a
    /// coordinator): an invocation that went from one to the other changed
    /// nothing. Such an invocation handed its whole batch back and
    /// published the state it read again; every step it could crash at
    /// leads to the same state too.
    pub(crate) fn stutter(before: &State, after: &State) -> bool {
        let mut a = after.clone();
        if let (Some(t), Some(b)) = (a.tags.as_mut(), before.tags.as_ref()) {
            t.term = b.term;
            t.seq = b.seq;
            t.coordinator = b.coordinator.clone();
        }
        a.counted.clone_from(&before.counted);
        a == *before
    }

    /// The invocations the event source may start: every batch of 1 to
    /// `batch` distinct visible check-in copies, in every order (the round
    /// feeds them in order: a join before or after a check-in is placed
    /// differently), and the schedule's tick (an empty batch). With no
    /// other invocation under way, only those that change something (see
    /// [`Self::changes_something`]).
    pub(crate) fn lambda_invocations(&self, s: &State, batch: u8) -> Vec<Vec<Tok>> {
        let visible: Vec<Tok> = s
            .checkin
            .iter()
            .filter(|(_, h)| matches!(h, Holder::Visible(_)))
            .map(|(t, _)| *t)
            .collect();
        let mut all = Vec::new();
        let mut stack: Vec<Vec<Tok>> = vec![Vec::new()];
        while let Some(prefix) = stack.pop() {
            if prefix.len() < usize::from(batch) {
                for t in visible.iter().rev() {
                    if !prefix.contains(t) {
                        let mut next = prefix.clone();
                        next.push(*t);
                        stack.push(next);
                    }
                }
            }
            all.push(prefix);
        }
        if s.invocations.iter().any(Option::is_some) {
            return all;
        }
        all.retain(|b| self.changes_something(s, b));
        all
    }

    /// Whether an invocation with `batch` (empty: a tick), started in `s`
    /// with no other under way and carried out to its end, changes
    /// anything. One that does not hands its whole batch back and
    /// publishes the state it read again (a tick without anything due, a
    /// round whose check-ins wait for an earlier generation): it would
    /// lead back to `s` with a new writer and a higher term, for ever, and
    /// so would every step it could be killed at. The event source does
    /// not start it in the model; a state where nothing else can happen is
    /// then terminal, and L1 judges it.
    pub(crate) fn changes_something(&self, s: &State, batch: &[Tok]) -> bool {
        let mut t = s.clone();
        let k = self.invoke(&mut t, batch.to_vec());
        self.run_out(&mut t, k);
        !Self::stutter(s, &t)
    }

    /// Whether nothing but a status read or a fault can happen under the
    /// Lambda coordinator: no invocation under way, and none that would
    /// change anything can start (`invocations`: those
    /// [`Self::lambda_invocations`] offers).
    pub(crate) fn lambda_quiet(&self, s: &State, invocations: &[Vec<Tok>]) -> bool {
        s.invocations.iter().all(Option::is_none) && invocations.is_empty()
    }
}
