//! The participants' driver: a member's step (working, arriving, reading
//! its release queue, the status reads, crashes and re-runs), its deletes of
//! notices, and the end of its wait.

use rand::Rng;
use sqs_barrier_core::Participant;
use sqs_barrier_core::participant::{Outcome, Transmit as PTransmit};
use sqs_barrier_core::wire::Message;

use super::{Actor, PState, Plot, SEC, Sim, at, popts};

impl Sim {
    pub(super) fn step_member(&mut self, m: usize) {
        if self.elastic.active {
            return self.step_elastic(m);
        }
        // The deletes of its last receive reach SQS now.
        for (q, id, receipt) in std::mem::take(&mut self.members[m].deletes) {
            self.delete_notice(q, id, receipt);
        }
        match self.members[m].state {
            PState::Done => return,
            PState::Working(g) => {
                if m == 0 && matches!(self.plot, Plot::Abort(ag) if ag == g) {
                    // Abort while the others work or wait at g.
                    self.members[m].p.abort("simulated failure");
                    self.flush_member(m);
                    self.members[m].state = PState::Done;
                    self.log(|| format!("member {m} aborts at {g}"));
                    return;
                }
                if m == 0 && matches!(self.plot, Plot::Deadline(dg) if dg == g) {
                    self.members[m].state = PState::Done;
                    self.log(|| format!("member {m} never arrives at {g}"));
                    return;
                }
                let now = at(self.now);
                self.members[m].p.arrive(g, None, now).unwrap();
                self.members[m].stale_now = 0;
                if self.chance(self.faults.deaf) {
                    self.members[m].deaf_until = self.now + 100 * SEC;
                }
                let slot = &mut self.arrivals[g as usize][m];
                slot.get_or_insert(self.now);
                self.members[m].state = PState::Waiting(g);
                self.log(|| format!("member {m} arrives at {g}"));
            }
            PState::Waiting(g) => {
                // A crash: the process dies and `wait` is re-run for the same
                // phase with a new session.
                if self.participant_crashes_left > 0 && self.chance(0.002) {
                    self.participant_crashes_left -= 1;
                    let member = &mut self.members[m];
                    member.sessions += 1;
                    member.p = Participant::new(
                        &self.cfg,
                        &m.to_string(),
                        format!("s{m}.{}", member.sessions),
                        popts(),
                    )
                    .unwrap();
                    member.p.arrive(g, None, at(self.now)).unwrap();
                    member.deletes.clear();
                    self.log(|| format!("member {m} crashes and re-runs {g}"));
                }
                if self.chance(self.faults.junk) {
                    let q = self.rng.random_range(0..2);
                    let body = if self.rng.random_bool(0.5) {
                        "junk".to_owned()
                    } else {
                        Message::Release {
                            barrier: "sim".into(),
                            instance: "an-earlier-instance".into(),
                            generation: g,
                            without: vec![],
                            data: None,
                        }
                        .encode()
                    };
                    self.send_notice(q, body);
                }
                self.receive_notice(m, g);
                self.members[m].p.handle_timeout(at(self.now));
            }
        }
        self.flush_member(m);
        if let Some(outcome) = self.members[m].p.poll_event() {
            if matches!(outcome, Outcome::Released { .. }) && !self.members[m].by_notice {
                self.released_by_status += 1;
            }
            self.finish_wait(m, outcome);
        }
        let next = match self.members[m].state {
            PState::Working(_) => self.rng.random_range(0..2 * SEC),
            PState::Waiting(_) => self.rng.random_range(5..200),
            // One more step for the deletes of its last receive.
            PState::Done if !self.members[m].deletes.is_empty() => 100,
            PState::Done => return,
        };
        self.schedule(next, Actor::Member(m));
    }

    pub(super) fn flush_member(&mut self, m: usize) {
        while let Some(t) = self.members[m].p.poll_transmit() {
            match t {
                PTransmit::Send(body) => self.send_checkin(body),
                PTransmit::QueryStatus => {
                    let st = self.sqs.tags.clone();
                    self.members[m].p.handle_status(st.as_ref(), at(self.now));
                }
            }
        }
    }

    fn finish_wait(&mut self, m: usize, outcome: Outcome) {
        self.log(|| format!("member {m} outcome {outcome:?}"));
        self.outcomes.push((m, outcome.clone(), self.now));
        match outcome {
            Outcome::Released { generation, .. } => {
                // Safety, checked at the moment of release.
                for (other, a) in self.arrivals[generation as usize].iter().enumerate() {
                    assert!(
                        a.is_some_and(|t| t <= self.now),
                        "seed {}: member {m} released at generation {generation} at {} ms before member {other} arrived ({a:?})",
                        self.seed,
                        self.now
                    );
                }
                self.released_at.entry(generation).or_insert(self.now);
                self.members[m].state = if generation + 1 >= self.phases {
                    PState::Done
                } else {
                    PState::Working(generation + 1)
                };
            }
            _ => self.members[m].state = PState::Done,
        }
    }
}
