//! The scripted members' driver: building a run of them, their steps
//! (joining, arriving with data, leaving, dying, straggling), the end of
//! their waits, and the release notices they record.

use rand::Rng;
use sqs_barrier_core::participant::{ArrivalExtras, Outcome};
use sqs_barrier_core::roll::Roll;
use sqs_barrier_core::wire::Message;
use sqs_barrier_core::{BarrierConfig, Membership, Participant};

use super::super::{Actor, Faults, PState, Plot, SEC, Sim, at, popts};
use super::{GRACE, Joining, STRAGGLE, Script, data_of};

impl Sim {
    /// A run of scripted members: `configured` members on a numbered
    /// barrier (with a quorum of `quorum` and [`GRACE`], if set), and one
    /// more process per script beyond them (joiners).
    pub(super) fn new_elastic(
        seed: u64,
        configured: usize,
        scripts: Vec<Script>,
        phases: u64,
        quorum: Option<usize>,
        data_phases: u64,
    ) -> Sim {
        let mut cfg = BarrierConfig::new(
            "sim",
            "inst",
            Membership::new(configured, None).unwrap(),
            None,
            false,
        )
        .unwrap();
        if let Some(min) = quorum {
            cfg = cfg.with_quorum(min, at(GRACE)).unwrap();
        }
        let actors = scripts.len();
        let mut sim = Sim::with_config(seed, cfg, actors, phases, Faults::HOSTILE, Plot::Plain);
        let plan = &mut sim.elastic;
        plan.active = true;
        plan.quorum = quorum;
        plan.data_phases = data_phases;
        plan.names = (0..actors)
            .map(|m| (m < configured).then(|| m.to_string()))
            .collect();
        plan.spans = (0..actors)
            .map(|m| {
                if m < configured {
                    vec![(0, None)]
                } else {
                    vec![]
                }
            })
            .collect();
        plan.left_unwaited = vec![None; actors];
        for (m, s) in scripts.iter().enumerate() {
            if let Some(t) = s.join_at {
                plan.joining.insert(
                    m,
                    Joining {
                        session: format!("j{m}.0"),
                        name: None,
                        sent: false,
                        next_read: t,
                    },
                );
            }
        }
        plan.scripts = scripts;
        sim
    }

    /// Records a release notice sent to a release queue.
    pub(crate) fn note_release(&mut self, body: &str) {
        let Ok(Message::Release {
            generation,
            without,
            data,
            ..
        }) = Message::decode(body)
        else {
            return;
        };
        let plan = &mut self.elastic;
        match plan.notices.get(&generation) {
            None => {
                plan.notice_at.insert(generation, self.now);
                if !without.is_empty() {
                    plan.stats.quorum_releases += 1;
                }
                plan.notices.insert(generation, (without, data));
            }
            Some(first) if *first != (without.clone(), data.clone()) => {
                plan.conflicts.push((generation, (without, data)));
            }
            Some(_) => {}
        }
    }

    /// The roll the published state records now.
    fn published_roll(&self) -> (Roll, u64) {
        match &self.sqs.tags {
            Some(s) => (s.roll(&self.cfg.members), s.released_below),
            None => (Roll::new(self.cfg.members.clone()), 0),
        }
    }

    /// One step of a joining process: send the join, then read the
    /// published state until it records the join.
    fn step_join(&mut self, m: usize) {
        let now = self.now;
        let mut j = self.elastic.joining[&m].clone();
        if now < j.next_read {
            return;
        }
        if !j.sent {
            let body = Message::Join {
                barrier: self.cfg.name.clone(),
                instance: self.cfg.instance.clone(),
                member: j.name.clone(),
                session: j.session.clone(),
            }
            .encode();
            self.send_checkin(body);
            j.sent = true;
            j.next_read = now + 500;
            self.log(|| format!("process {m} sends a join {:?}", j.name));
            self.elastic.joining.insert(m, j);
            return;
        }
        let (roll, released_below) = self.published_roll();
        match roll.join_of(&j.session) {
            None => {
                j.next_read = now + 500;
                self.elastic.joining.insert(m, j);
            }
            Some(None) => {
                // Refused: a name that had not left yet when the join was
                // counted (its leave was still on its way). Ask again.
                self.elastic.stats.refused_joins += 1;
                if j.name.is_none() {
                    self.fail(&format!("process {m}'s join without a name was refused"));
                }
                let sessions = &mut self.members[m].sessions;
                *sessions += 1;
                j.session = format!("j{m}.{sessions}");
                j.sent = false;
                j.next_read = now + 5 * SEC;
                self.log(|| format!("process {m}'s join is refused; it asks again"));
                self.elastic.joining.insert(m, j);
            }
            Some(Some(pos)) => {
                let name = roll.name(pos);
                let from = roll.span(pos).from.max(released_below);
                self.log(|| format!("process {m} joined as {name} from {from}"));
                self.elastic.stats.joins += 1;
                self.elastic.joining.remove(&m);
                if let Some(known) = &self.elastic.names[m]
                    && *known != name
                {
                    self.fail(&format!("process {m} ({known}) joined as {name}"));
                }
                // A join answer is the joiner's alone, and names a
                // generation nobody has passed yet.
                if let Some(other) = (0..self.members.len())
                    .find(|&o| o != m && self.elastic.names[o].as_deref() == Some(&name))
                {
                    self.fail(&format!(
                        "join answer erased: processes {m} and {other} were both told they are \
                         member {name}"
                    ));
                }
                if let Some(t) = self.elastic.notice_at.get(&from) {
                    self.fail(&format!(
                        "split outcome: process {m} was told it is member {name} from {from}, \
                         which a notice released without it at {t} ms"
                    ));
                }
                self.elastic.names[m] = Some(name.clone());
                self.elastic.spans[m].push((from, None));
                let p = Participant::with_roll(&self.cfg, roll, &name, j.session.clone(), popts())
                    .unwrap();
                self.members[m].p = p;
                self.members[m].state = if from >= self.phases {
                    PState::Done
                } else {
                    PState::Working(from)
                };
            }
        }
    }

    /// What process `m` brings to phase `g`.
    fn arrival_of(&self, m: usize, g: u64) -> ArrivalExtras {
        let script = &self.elastic.scripts[m];
        ArrivalExtras {
            leave: script.leave.is_some_and(|(l, _)| l == g),
            data: (self.elastic.data_phases >> g & 1 == 1).then(|| data_of(m, g)),
        }
    }

    pub(crate) fn step_elastic(&mut self, m: usize) {
        for (q, id, receipt) in std::mem::take(&mut self.members[m].deletes) {
            self.delete_notice(q, id, receipt);
        }
        if self.elastic.joining.contains_key(&m) {
            self.step_join(m);
            if !matches!(self.members[m].state, PState::Done) {
                let next = self.rng.random_range(50..300);
                self.schedule(next, Actor::Member(m));
            }
            return;
        }
        match self.members[m].state {
            PState::Done => return,
            PState::Working(g) => {
                let script = self.elastic.scripts[m].clone();
                if script.dead_from.is_some_and(|d| d <= g) {
                    self.members[m].state = PState::Done;
                    self.log(|| format!("process {m} dies before phase {g}"));
                    return;
                }
                if script.straggle == Some(g) && !script.straggled {
                    self.elastic.scripts[m].straggled = true;
                    self.log(|| format!("process {m} straggles at phase {g}"));
                    self.schedule(STRAGGLE, Actor::Member(m));
                    return;
                }
                let arrival = self.arrival_of(m, g);
                self.arrivals[g as usize][m].get_or_insert(self.now);
                self.members[m].stale_now = 0;
                if arrival.leave {
                    self.elastic.stats.leaves += 1;
                    let span = self.elastic.spans[m].last_mut().expect("a member");
                    span.1.get_or_insert(g + 1);
                }
                if script.leave == Some((g, false)) {
                    self.members[m].p.leave(g, arrival.data).unwrap();
                    self.elastic.left_unwaited[m] = Some(g);
                    self.log(|| format!("process {m} leaves at {g} without waiting"));
                    self.after_leaving(m, g);
                } else {
                    let now = at(self.now);
                    self.members[m]
                        .p
                        .arrive_with(g, None, arrival, now)
                        .unwrap();
                    if self.chance(self.faults.deaf) {
                        self.members[m].deaf_until = self.now + 100 * SEC;
                    }
                    self.members[m].state = PState::Waiting(g);
                    self.log(|| format!("process {m} arrives at {g}"));
                }
            }
            PState::Waiting(g) => {
                if self.participant_crashes_left > 0 && self.chance(0.002) {
                    // The process dies and `wait` is re-run for the same
                    // phase with a new session, with the roll it reads.
                    self.participant_crashes_left -= 1;
                    self.elastic.stats.participant_crashes += 1;
                    let (roll, _) = self.published_roll();
                    let name = self.elastic.names[m].clone().expect("a member");
                    let member = &mut self.members[m];
                    member.sessions += 1;
                    let session = format!("s{m}.{}", member.sessions);
                    member.p =
                        Participant::with_roll(&self.cfg, roll, &name, session, popts()).unwrap();
                    member.deletes.clear();
                    let arrival = self.arrival_of(m, g);
                    let now = at(self.now);
                    self.members[m]
                        .p
                        .arrive_with(g, None, arrival, now)
                        .unwrap();
                    let rerun = self.elastic.rerun_at.entry(g).or_default();
                    *rerun = (*rerun).max(self.now);
                    self.log(|| format!("process {m} crashes and re-runs {g}"));
                }
                self.receive_notice(m, g);
                self.members[m].p.handle_timeout(at(self.now));
            }
        }
        self.flush_member(m);
        if let Some(outcome) = self.members[m].p.poll_event() {
            self.finish_elastic(m, outcome);
        }
        let next = match self.members[m].state {
            _ if self.elastic.joining.contains_key(&m) => self.rng.random_range(50..300),
            PState::Working(_) => self.rng.random_range(0..2 * SEC),
            PState::Waiting(_) => self.rng.random_range(5..200),
            PState::Done if !self.members[m].deletes.is_empty() => 100,
            PState::Done => return,
        };
        self.schedule(next, Actor::Member(m));
    }

    /// Process `m` is done with phase `g`, its last: it stops, or joins
    /// again later.
    fn after_leaving(&mut self, m: usize, g: u64) {
        match self.elastic.scripts[m].rejoin_after {
            Some(after) if g + 1 < self.phases => {
                let sessions = &mut self.members[m].sessions;
                *sessions += 1;
                let session = format!("j{m}.{sessions}");
                self.elastic.joining.insert(
                    m,
                    Joining {
                        session,
                        name: self.elastic.names[m].clone(),
                        sent: false,
                        next_read: self.now + after,
                    },
                );
                self.members[m].state = PState::Working(g + 1);
            }
            _ => self.members[m].state = PState::Done,
        }
    }

    fn finish_elastic(&mut self, m: usize, outcome: Outcome) {
        self.log(|| format!("process {m} outcome {outcome:?}"));
        self.outcomes.push((m, outcome.clone(), self.now));
        match outcome {
            Outcome::Released {
                generation, data, ..
            } => {
                let stats = &mut self.elastic.stats;
                match &data {
                    Some(d) => {
                        stats.released_by_notice += 1;
                        stats.with_data_by_notice += u64::from(!d.is_empty());
                    }
                    None => {
                        stats.released_by_state += 1;
                        self.released_by_status += 1;
                    }
                }
                self.released_at.entry(generation).or_insert(self.now);
                let script = &self.elastic.scripts[m];
                if script.straggle == Some(generation) {
                    self.elastic.stats.straggler_released += 1;
                }
                if script.leave == Some((generation, true)) {
                    self.after_leaving(m, generation);
                } else if generation + 1 >= self.phases {
                    self.members[m].state = PState::Done;
                } else {
                    self.members[m].state = PState::Working(generation + 1);
                }
            }
            Outcome::Dropped { generation, .. } => {
                self.elastic.stats.dropped_waits += 1;
                if self.elastic.scripts[m].straggle == Some(generation) {
                    self.elastic.stats.straggler_dropped += 1;
                }
                self.members[m].state = PState::Done;
            }
            other => self.fail(&format!("process {m} ended a wait with {other:?}")),
        }
    }
}
