//! The process coordinator's driver: two coordinator processes under a
//! supervisor, each down, standing by (the core's `Standby`), waiting for the
//! lease or active (the core's `Coordinator`; resting or not, see
//! simulation/rest.rs): crashes, false takeovers, outages and stalls, the
//! transmits carried out, and standing down.

use rand::Rng;
use sqs_barrier_core::Coordinator;
use sqs_barrier_core::coordinator::Transmit as CTransmit;
use sqs_barrier_core::standby::{Event as SEvent, Standby, StandbyOptions, Transmit as STransmit};
use sqs_barrier_core::state::PublishedState;

use super::{Actor, Role, SEC, Sim, VISIBILITY, at, at_ms, copts};

impl Sim {
    pub(super) fn new_coordinator(
        &self,
        k: usize,
        restored: Option<&PublishedState>,
    ) -> Coordinator<u64> {
        Coordinator::new(
            self.cfg.clone(),
            format!("p{k}.{}", self.procs[k].lives),
            copts(),
            restored,
        )
    }

    pub(super) fn active(&self, k: usize) -> Option<&Coordinator<u64>> {
        match &self.procs[k].role {
            Role::Active(c) => Some(c),
            _ => None,
        }
    }

    pub(super) fn coordinator(&mut self, k: usize) -> &mut Coordinator<u64> {
        match &mut self.procs[k].role {
            Role::Active(c) => c,
            _ => unreachable!("process {k} is not active"),
        }
    }

    pub(super) fn step_process(&mut self, k: usize) {
        let now = self.now;
        if let Role::Down(at) = self.procs[k].role {
            if at > now {
                self.schedule(100, Actor::Coordinator(k));
                return;
            }
            // A supervisor starts the coordinator again: as a standby.
            self.procs[k].lives += 1;
            let id = format!("p{k}.{}", self.procs[k].lives);
            let standby = Standby::new(&self.cfg, id, StandbyOptions::default(), at_ms(now));
            self.procs[k].role = Role::Standby(Box::new(standby));
            self.log(|| format!("process {k} starts as a standby"));
        }
        if self.crashes_left > 0 && self.chance(0.0015) {
            // kill -9: memory gone; held messages come back when their
            // visibility lapses, and so does the lease.
            self.crashes_left -= 1;
            self.procs[k].held.clear();
            self.procs[k].lease = None;
            self.procs[k].rest = None;
            let down = self.rng.random_range(0..5 * SEC);
            self.procs[k].role = Role::Down(now + down);
            self.log(|| format!("process {k} crashes, down for {down} ms"));
            self.schedule(100, Actor::Coordinator(k));
            return;
        }
        if matches!(self.procs[k].role, Role::Active(_)) {
            if self.outages_left > 0 && self.chance(0.001) {
                self.outages_left -= 1;
                let p = &mut self.procs[k];
                p.outage_until = now + self.rng.random_range(5 * SEC..=40 * SEC);
                p.outage_lease = self.rng.random_bool(0.5);
                let (until, lease) = (p.outage_until, p.outage_lease);
                self.log(|| {
                    format!("process {k} cannot reach the state queue until {until} (nor the lease queue: {lease})")
                });
            }
            if self.stalls_left > 0 && self.chance(0.001) {
                self.stalls_left -= 1;
                let stall = self.rng.random_range(SEC..=15 * SEC);
                self.procs[k].stalled_until = now + stall;
                self.log(|| format!("process {k} stalls for {stall} ms"));
                self.schedule(stall, Actor::Coordinator(k));
                return;
            }
        }
        match self.procs[k].role {
            Role::Standby(_) => self.step_standby(k),
            Role::Waiting { .. } => self.step_waiting(k),
            _ => self.step_coordinator(k),
        }
        let actives = (0..self.procs.len())
            .filter(|k| matches!(self.procs[*k].role, Role::Active(_) | Role::Waiting { .. }))
            .count();
        self.max_active = self.max_active.max(actives);
        let next = self.rng.random_range(5..100);
        self.schedule(next, Actor::Coordinator(k));
    }

    fn step_standby(&mut self, k: usize) {
        let now = self.now;
        let outage = self.procs[k].outage_until > now;
        let Role::Standby(sb) = &mut self.procs[k].role else {
            unreachable!()
        };
        sb.handle_timeout(at_ms(now));
        let mut probes = Vec::new();
        while let Some(t) = sb.poll_transmit() {
            match t {
                STransmit::ReadState if outage => sb.handle_read_failed(at_ms(now)),
                STransmit::ReadState => sb.handle_state(self.sqs.tags.clone(), at_ms(now)),
                STransmit::Probe(body) => probes.push(body),
            }
        }
        let mut take = None;
        while let Some(e) = sb.poll_event() {
            if let SEvent::TakeOver { reason, state, .. } = e {
                take = Some((reason.to_string(), state));
            }
        }
        for body in probes {
            self.send_checkin(body);
        }
        // Fault: a standby takes over although the active one lives.
        let someone_active = (0..self.procs.len()).any(|j| self.active(j).is_some());
        if take.is_none() && someone_active && self.false_takeovers_left > 0 && self.chance(0.002) {
            self.false_takeovers_left -= 1;
            take = Some(("FALSE takeover".into(), self.sqs.tags.clone().map(Box::new)));
        }
        if let Some((why, state)) = take {
            self.log(|| format!("process {k} takes over: {why}"));
            let live = (0..self.procs.len()).filter(|&j| self.active(j).is_some());
            let cut_off = live.clone().any(|j| self.procs[j].outage_until > now);
            if live.count() > 0 {
                self.leasing.contested += 1;
                self.leasing.contested_cut_off += u64::from(cut_off);
            }
            if self.leasing.on {
                // Only the holder of the lease decides: first the lease (a
                // quick first try at once).
                self.procs[k].role = Role::Waiting {
                    since: now,
                    state,
                    put: false,
                };
                self.step_waiting(k);
            } else {
                self.activate(k, state.as_deref());
            }
        }
    }

    fn step_coordinator(&mut self, k: usize) {
        let now = self.now;
        if self.procs[k].rest.is_some() {
            // Resting (simulation/rest.rs): it may take the lease again,
            // or be displaced.
            if !self.step_resting(k) {
                return;
            }
        } else {
            if !self.decides(k) {
                // Its lease ran out (extensions failed or refused, or it
                // made no progress): it decides nothing more and stands by.
                self.leasing.ran_out += 1;
                self.stand_down(k, "its lease ran out");
                return;
            }
            if let Some(h) = &mut self.procs[k].lease {
                h.progress = now;
            }
            for (_, receipt, body) in self.receive_checkins() {
                self.procs[k].held.insert(receipt);
                self.procs[k].last_batch = now;
                self.coordinator(k).handle_message(receipt, &body, at(now));
            }
        }
        // The driver extends the visibility of everything it holds (not of
        // what a crashed predecessor held: that comes back when it lapses).
        let held = &self.procs[k].held;
        for msg in self.sqs.checkin.iter_mut() {
            if msg.receipt.is_some_and(|r| held.contains(&r)) && msg.visible_at > now {
                msg.visible_at = msg.visible_at.max(now + VISIBILITY);
            }
        }
        // Still resting, it fires its timers only while no decision is due:
        // then only heartbeats come of them.
        let fire = self.procs[k].rest.is_none()
            || self
                .coordinator(k)
                .poll_decision_timeout()
                .is_none_or(|t| t > at(now));
        if fire {
            self.coordinator(k).handle_timeout(at(now));
        }
        self.carry_out(k);
        if self.may_rest(k) {
            self.rest(k);
        }
    }

    fn carry_out(&mut self, k: usize) {
        let now = self.now;
        let resting = self.procs[k].rest.is_some();
        while let Some(t) = self.coordinator(k).poll_transmit() {
            if resting {
                // Without the lease it carries out heartbeats and the
                // deletes their writes allow; the core decides nothing
                // else from timers that decide nothing.
                if !matches!(t, CTransmit::WriteState { .. } | CTransmit::Delete(_)) {
                    self.fail(&format!("process {k} decides while resting: {t:?}"));
                }
            } else if !self.decides(k) {
                // What is left is not done; the next step stands down.
                break;
            }
            match t {
                CTransmit::Notify { generation, body } => {
                    self.send_notice((generation % 2) as usize, body);
                }
                CTransmit::Sweep { generation, below } => {
                    self.sweep((generation % 2) as usize, below);
                }
                CTransmit::Delete(receipts) => {
                    for r in receipts {
                        self.delete(k, r);
                    }
                }
                CTransmit::DeadLetter { token, .. } => self.delete(k, token),
                CTransmit::WriteState { version, state } => {
                    if self.procs[k].outage_until > now {
                        self.coordinator(k).handle_state_write_failed();
                        continue;
                    }
                    if self.faults.write_fail > 0.0 && self.rng.random_bool(self.faults.write_fail)
                    {
                        self.coordinator(k).handle_state_write_failed();
                        continue;
                    }
                    // Read, merge (or stand down), write: as the driver does.
                    if let Some(other) = self.sqs.tags.clone() {
                        self.coordinator(k).handle_state_observed(&other, at(now));
                    }
                    if self.coordinator(k).superseded().is_some() {
                        continue;
                    }
                    self.publish(*state);
                    self.coordinator(k).handle_state_written(version);
                }
            }
        }
        while let Some(e) = self.coordinator(k).poll_event() {
            self.log(|| format!("process {k}: {e:?}"));
        }
        if let Some(by) = self.coordinator(k).superseded().map(str::to_owned) {
            self.leasing.superseded_resting += u64::from(resting);
            self.stand_down(k, &format!("{by} took over"));
        }
    }

    /// Process `k` stops coordinating: it hands every held message back
    /// at once, gives the lease back if it still holds it, and stands by
    /// again with a new life.
    pub(super) fn stand_down(&mut self, k: usize, why: &str) {
        let now = self.now;
        let held: Vec<u64> = self.procs[k].held.drain().collect();
        for msg in self.sqs.checkin.iter_mut() {
            if msg.receipt.is_some_and(|r| held.contains(&r)) {
                msg.visible_at = now;
            }
        }
        if let Some(h) = self.procs[k].lease.take() {
            self.give_back(h);
        }
        self.procs[k].rest = None;
        self.procs[k].role = Role::Down(now);
        self.log(|| format!("process {k} stands down: {why}"));
    }

    /// Coordinator process `k` deletes a check-in it holds.
    fn delete(&mut self, k: usize, receipt: u64) {
        self.procs[k].held.remove(&receipt);
        self.delete_checkin(receipt);
    }
}
