//! Membership changes, quorum releases and gathered data, in the
//! simulation: the same SQS model, faults and coordinator processes as
//! the other scenarios (under the lease; crashes, restarts as standbys,
//! false takeovers, outages of the active coordinator's state queue,
//! stalls: two coordinators take over at once in most runs, one of them
//! waiting for the lease), with members that follow a script.
//!
//! * **Pool** (`a_pool_that_grows_and_shrinks`): a numbered barrier whose
//!   member 0 leaves without waiting (`Participant::leave`) and joins again
//!   by name a while later, whose member 1 leaves and waits for the release
//!   of its last phase, and two processes that join (without a name: they
//!   get the next numbers) at random times and take part from the first
//!   generation the published state gives them.
//! * **Quorum** (`a_quorum_goes_on_without_the_dead_and_the_late`): a
//!   quorum of N − 2 with a grace of [`GRACE`]; member 0 dies at phase 0 or
//!   1 and never arrives again, member 1 works [`STRAGGLE`] longer at phase
//!   1 or 2 and arrives after the quorum release (or before it, if
//!   coordinator crashes delayed the release: then it goes on).
//! * **Gather** (`gathered_data_is_the_same_for_everyone`): every member
//!   brings data (quotes, backslashes, non-ASCII, up to 600 bytes) at some
//!   phases. Data phases are mixed into the other two scenarios too.
//! * **Under Lambda** (`lambda_a_pool_that_grows_and_shrinks`,
//!   `lambda_a_quorum_goes_on_without_the_dead_and_the_late`): the pool and
//!   the quorum with the Lambda function as the coordinator (see
//!   simulation/lambda.rs; no data, which it cannot gather), checked the
//!   same way.
//! * **Without the lease** (`..._without_the_lease`, ignored): the pool
//!   and the quorum with process coordinators, and the pool under Lambda,
//!   with coordinators that decide without the lease, as before it. Each
//!   fails (see their comments for the seeds): that is what the lease
//!   closes.
//!
//! Checked after every run, against ghost records of who arrived when
//! (the first `arrive` or `leave` of a member at a generation), who left
//! and joined (the generation each joiner read from the published state),
//! which joins each landed state answered, and whom each release notice
//! went without:
//! * safety: a member passes g only if g expects it, and only once every
//!   member g expects has arrived (a joiner included, once its join was
//!   answered), except those a quorum release names in `without` (then at
//!   least the quorum arrived);
//! * no split decision or outcome: every release notice of g carries the
//!   same `without` and the same data, and the checks of every run
//!   (`check_no_split`) hold;
//! * join answers: once a landed state answered a join (a session given a
//!   position), every later state answers it the same way, no position is
//!   given to two processes, and no joiner is told it is expected from a
//!   generation a notice already released;
//! * gathered data: every wait released by a notice sees exactly the data
//!   the members g released brought; a wait that passed on the published
//!   state sees `None` (counted);
//! * liveness: every wait ends, every member passes every generation that
//!   expects it (until it leaves or is dropped), each generation is
//!   released within [`RELEASE_BOUND`] (plus the grace, for a quorum) of
//!   the last arrival of the members it released, joins are counted, and
//!   the idle coordinator holds no message. A quorum barrier left with
//!   fewer live members than its quorum (a quorum release dropped members
//!   that had arrived) cannot go on: its waiters are counted, not failed
//!   (`starved_at`).

use std::collections::{BTreeMap, HashMap};

use rand::Rng;
use sqs_barrier_core::participant::{ArrivalExtras, Outcome};
use sqs_barrier_core::roll::{JOINS_KEPT, Roll};
use sqs_barrier_core::state::PublishedState;
use sqs_barrier_core::wire::Message;
use sqs_barrier_core::{BarrierConfig, Membership, Participant};

use super::lambda::LambdaFaults;
use super::lease::Leasing;
use super::{
    Faults, PState, Plot, QueueStats, RELEASE_BOUND, SEC, Sim, at, check_no_split, popts, seeds,
};

/// The quorum scenario's grace.
const GRACE: u64 = 10 * SEC;
/// How much longer the straggler works at its late phase: well past the
/// grace.
const STRAGGLE: u64 = 60 * SEC;

/// What one participant process does besides arriving at every phase.
#[derive(Clone, Debug, Default)]
struct Script {
    /// Joins (without a name) at this instant, then takes part from the
    /// generation the published state gives it.
    join_at: Option<u64>,
    /// Leaves at this phase: `(phase, waits for the release)`.
    leave: Option<(u64, bool)>,
    /// After leaving, joins again by name this long after.
    rejoin_after: Option<u64>,
    /// Never arrives from this phase on.
    dead_from: Option<u64>,
    /// Works [`STRAGGLE`] longer at this phase.
    straggle: Option<u64>,
    /// It did.
    straggled: bool,
}

/// Where a member's join is.
#[derive(Clone, Debug)]
struct Joining {
    session: String,
    /// The name asked for (`None`: the next number).
    name: Option<String>,
    /// Sent yet?
    sent: bool,
    next_read: u64,
}

/// A release notice's `without` and `data`.
type NoticeFields = (Vec<String>, Option<BTreeMap<String, String>>);

/// The scenario's scripts and the ghost records checked after the run.
#[derive(Default)]
pub(super) struct Plan {
    pub(super) active: bool,
    scripts: Vec<Script>,
    /// Joins under way, by process.
    joining: HashMap<usize, Joining>,
    /// Each process's member name, once it has one.
    names: Vec<Option<String>>,
    /// Ghost: the spans of generations each process was expected at, as
    /// it learned them (`from`, first generation no longer expected by a
    /// leave). Drops are applied from the notices' `without`.
    spans: Vec<Vec<(u64, Option<u64>)>>,
    /// Ghost: the leave generation of each process that left without
    /// waiting (no wait there).
    left_unwaited: Vec<Option<u64>>,
    /// Ghost: the first release notice of each generation, `(without,
    /// data)`; every other one must be equal.
    notices: HashMap<u64, NoticeFields>,
    /// Ghost: the last re-run of a wait (after a participant crash) at
    /// each generation: a wait's release counts from there.
    rerun_at: HashMap<u64, u64>,
    /// Ghost: whom each generation's release dropped, as the first landed
    /// state that shows it released records it (the spans of its roll that
    /// end there, other than by a leave at the generation before): for a
    /// quorum release whose notice never went out (its writer died between
    /// the write and the notice; members pass on the published state).
    published_drops: HashMap<u64, Vec<String>>,
    /// Ghost: notices that differed from the first of their generation.
    conflicts: Vec<(u64, NoticeFields)>,
    /// Ghost: when the first release notice of each generation was sent.
    notice_at: HashMap<u64, u64>,
    /// Ghost: every join a landed state answered with a position, by
    /// session (`j<process>.<n>`).
    answers: BTreeMap<String, usize>,
    /// Which phases everyone brings data to (bit g).
    data_phases: u64,
    quorum: Option<usize>,
    /// Counters for the report.
    stats: Stats,
}

/// What the runs did, summed over seeds.
#[derive(Clone, Debug, Default)]
struct Stats {
    runs: u64,
    released_by_notice: u64,
    released_by_state: u64,
    with_data_by_notice: u64,
    joins: u64,
    refused_joins: u64,
    leaves: u64,
    dropped_waits: u64,
    straggler_dropped: u64,
    straggler_released: u64,
    quorum_releases: u64,
    dropped_arrived: u64,
    dropped_late: u64,
    participant_crashes: u64,
    coordinator_crashes: u64,
    two_active: u64,
    starved: u64,
    outages: u64,
    stalls: u64,
    lease: Leasing,
    worst: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.runs += o.runs;
        self.released_by_notice += o.released_by_notice;
        self.released_by_state += o.released_by_state;
        self.with_data_by_notice += o.with_data_by_notice;
        self.joins += o.joins;
        self.refused_joins += o.refused_joins;
        self.leaves += o.leaves;
        self.dropped_waits += o.dropped_waits;
        self.straggler_dropped += o.straggler_dropped;
        self.straggler_released += o.straggler_released;
        self.quorum_releases += o.quorum_releases;
        self.dropped_arrived += o.dropped_arrived;
        self.dropped_late += o.dropped_late;
        self.participant_crashes += o.participant_crashes;
        self.coordinator_crashes += o.coordinator_crashes;
        self.two_active += o.two_active;
        self.starved += o.starved;
        self.outages += o.outages;
        self.stalls += o.stalls;
        self.lease.add(&o.lease);
        self.worst = self.worst.max(o.worst);
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} runs: {} waits released by a notice ({} with data), {} on the published state \
             (data None); {} joins counted ({} refused and asked again), {} leaves; {} quorum \
             releases, {} waits dropped (the straggler {} times; it passed {} times), {} members \
             dropped although they arrived before anybody passed ({} runs left with fewer live \
             members than the quorum), {} waits that missed their notice \
             taken for dropped at the generation before the one that dropped them; {} participant \
             and {} coordinator crashes, {} runs with two coordinators active at once (one took \
             over while the other lived), {} outages of the active coordinator's state queue, {} \
             stalls; {}; slowest release {:.1} s after the last arrival it waited for",
            self.runs,
            self.released_by_notice,
            self.with_data_by_notice,
            self.released_by_state,
            self.joins,
            self.refused_joins,
            self.leaves,
            self.quorum_releases,
            self.dropped_waits,
            self.straggler_dropped,
            self.straggler_released,
            self.dropped_arrived,
            self.starved,
            self.dropped_late,
            self.participant_crashes,
            self.coordinator_crashes,
            self.two_active,
            self.outages,
            self.stalls,
            self.lease,
            self.worst as f64 / SEC as f64
        )
    }
}

/// The data process `m` brings to phase `g` (the same in every session):
/// JSON escapes, non-ASCII, and a length that varies.
fn data_of(m: usize, g: u64) -> String {
    let pad = (m * 97 + g as usize * 31) % 600;
    format!("m{m}@{g} \"q\" \\ ünï\t{}", "x".repeat(pad))
}

impl Plan {
    /// The member name of process `m`, as it last knew it ("" before its
    /// first join).
    pub(super) fn name(&self, m: usize) -> String {
        self.names[m].clone().unwrap_or_default()
    }
}

impl Sim {
    /// A run of scripted members: `configured` members on a numbered
    /// barrier (with a quorum of `quorum` and [`GRACE`], if set), and one
    /// more process per script beyond them (joiners).
    fn new_elastic(
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
    pub(super) fn note_release(&mut self, body: &str) {
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

    pub(super) fn step_elastic(&mut self, m: usize) {
        for (q, id, receipt) in std::mem::take(&mut self.members[m].deletes) {
            self.delete_notice(q, id, receipt);
        }
        if self.elastic.joining.contains_key(&m) {
            self.step_join(m);
            if !matches!(self.members[m].state, PState::Done) {
                let next = self.rng.random_range(50..300);
                self.schedule(next, super::Actor::Member(m));
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
                    self.schedule(STRAGGLE, super::Actor::Member(m));
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
        self.schedule(next, super::Actor::Member(m));
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

    /// The first generation no longer expecting process `m`'s span
    /// `(from, end)`: its leave, or the first quorum release from `from`
    /// on that went without it.
    fn span_end(&self, m: usize, from: u64, end: Option<u64>) -> Option<u64> {
        let name = self.elastic.names[m].as_ref()?;
        let dropped = self
            .elastic
            .notices
            .keys()
            .chain(self.elastic.published_drops.keys())
            .filter(|&&g| g >= from && self.without(g).contains(name))
            .copied()
            .min();
        match (end, dropped) {
            (Some(e), Some(d)) => Some(e.min(d)),
            (e, d) => e.or(d),
        }
    }

    /// Whether generation `g` expected process `m`: counting a member
    /// that a quorum release of `g` went without, unless `strict`.
    fn ghost_expects(&self, m: usize, g: u64, strict: bool) -> bool {
        self.elastic.spans[m].iter().any(|&(from, end)| {
            let end = self.span_end(m, from, end);
            let dropped_here = !strict
                && self.elastic.names[m]
                    .as_ref()
                    .is_some_and(|n| self.without(g).contains(n));
            from <= g && (end.is_none_or(|e| g < e) || (dropped_here && end == Some(g)))
        })
    }

    /// Whether process `m`, still waiting at `g` (released with it: it
    /// missed the notice) when a quorum release of `g + 1` went without it,
    /// read a state that shows it gone and `g` released, and took itself
    /// for dropped at `g`. The published roll keeps no generation for a
    /// member whose span ended below the release frontier, so the
    /// participant cannot tell the two apart; it errs on the side of not
    /// passing. Counted, not a failure.
    fn dropped_late(&self, m: usize, g: u64) -> bool {
        let dropped_next = self.elastic.names[m]
            .as_ref()
            .is_some_and(|n| self.without(g + 1).contains(n) && !self.without(g).contains(n));
        dropped_next
            && self.arrivals[g as usize][m].is_some()
            && self.outcomes.iter().any(|(who, o, _)| {
                *who == m && matches!(o, Outcome::Dropped { generation, .. } if *generation == g)
            })
    }

    /// Ghost: the joins a state about to land answers. A join answered
    /// once (its session given a position) stays answered the same way in
    /// every later state (while the roll remembers that many joins), and
    /// no position is given to the sessions of two processes.
    pub(super) fn check_join_answers(&mut self, state: &PublishedState) {
        let Some(roll) = &state.roll else {
            return;
        };
        let process = |session: &str| -> Option<usize> {
            session.strip_prefix('j')?.split('.').next()?.parse().ok()
        };
        for (session, position) in &roll.joins {
            let Some(p) = *position else { continue };
            match self.elastic.answers.get(session) {
                Some(&q) if q != p => self.fail(&format!(
                    "join answer erased: session {session} was given position {q}, now {p}"
                )),
                Some(_) => {}
                None => {
                    if let Some((other, _)) = self
                        .elastic
                        .answers
                        .iter()
                        .find(|(o, q)| **q == p && process(o) != process(session))
                    {
                        self.fail(&format!(
                            "join answer erased: position {p} was given to session {other}, now \
                             to {session}"
                        ));
                    }
                    self.elastic.answers.insert(session.clone(), p);
                }
            }
        }
        if roll.joins.len() < JOINS_KEPT {
            let missing = self
                .elastic
                .answers
                .keys()
                .find(|s| !roll.joins.iter().any(|(j, _)| j == *s));
            if let Some(s) = missing {
                self.fail(&format!(
                    "join answer erased: a state written by {} no longer records the join of \
                     session {s}",
                    state.coordinator
                ));
            }
        }
    }

    /// The first generation a quorum barrier cannot release any more, if
    /// members wait there: it expects fewer live members (not dead by
    /// their script) than the quorum. A quorum release may drop members
    /// that had arrived (their check-ins were not among what the
    /// coordinator had received when the grace ended: after a stall, its
    /// first receive decides); with two of them gone besides the dead
    /// one, the rest wait for ever (in practice, until their own
    /// timeouts). Counted, not a failure: it is the quorum's rule, not a
    /// split.
    fn starved_at(&self) -> Option<u64> {
        let quorum = self.elastic.quorum?;
        self.members
            .iter()
            .filter_map(|m| match m.state {
                PState::Waiting(g) => Some(g),
                _ => None,
            })
            .filter(|&g| {
                let live = (0..self.members.len())
                    .filter(|&j| {
                        self.ghost_expects(j, g, true)
                            && self.elastic.scripts[j].dead_from.is_none_or(|d| d > g)
                    })
                    .count();
                live < quorum
            })
            .min()
    }

    /// Whether every member that is not done waits at a generation that
    /// cannot be released any more (`starved_at`).
    pub(super) fn all_starved(&self) -> bool {
        let Some(s) = self.starved_at() else {
            return false;
        };
        self.elastic.joining.is_empty()
            && self.members.iter().all(|m| match m.state {
                PState::Done => true,
                PState::Waiting(g) => g >= s,
                PState::Working(_) => false,
            })
    }

    /// Whom the release of `g` went without: as its first notice says, or
    /// if none went out, as the published state records it.
    fn without(&self, g: u64) -> &[String] {
        match self.elastic.notices.get(&g) {
            Some((w, _)) => w,
            None => self.elastic.published_drops.get(&g).map_or(&[], |w| w),
        }
    }

    /// Ghost: records whom the releases a landed state shows for the first
    /// time dropped (`Plan::published_drops`).
    pub(super) fn note_published_drops(&mut self, state: &PublishedState) {
        let fresh: Vec<u64> = (0..state.released_below)
            .chain(state.released_above.iter().copied())
            .filter(|g| !self.elastic.published_drops.contains_key(g))
            .collect();
        if fresh.is_empty() {
            return;
        }
        let roll = state.roll(&self.cfg.members);
        for g in fresh {
            let dropped = (0..roll.len())
                .filter(|&i| roll.span(i).end == Some(g))
                .map(|i| roll.name(i))
                .filter(|name| {
                    // Not a member that left at g - 1.
                    !(0..self.members.len()).any(|p| {
                        self.elastic.names[p].as_ref() == Some(name)
                            && self.elastic.scripts[p]
                                .leave
                                .is_some_and(|(l, _)| l + 1 == g)
                    })
                })
                .collect();
            self.elastic.published_drops.insert(g, dropped);
        }
    }
}

/// Checks a finished run; returns its figures.
fn check_elastic(sim: &Sim) -> Stats {
    let plan = &sim.elastic;
    // Every notice of a generation carries the same `without` and data:
    // two that differ are two decisions of one generation.
    if let Some((g, other)) = plan.conflicts.first() {
        sim.fail(&format!(
            "split decision: two release notices of generation {g} differ: {:?} and {other:?}",
            plan.notices[g]
        ));
    }
    check_no_split(sim);
    let actors = sim.members.len();
    let starved = sim.starved_at();
    for (m, member) in sim.members.iter().enumerate() {
        let waits_starved =
            matches!(member.state, PState::Waiting(g) if starved.is_some_and(|s| g >= s));
        if (!matches!(member.state, PState::Done) || plan.joining.contains_key(&m))
            && !waits_starved
        {
            sim.fail(&format!("process {m} never finished"));
        }
    }
    let mut worst = 0;
    let mut dropped_arrived = 0;
    let mut dropped_late = 0;
    // What members learned of each release agrees (`check_no_split`, above).
    for (m, o, t) in &sim.outcomes {
        let name = plan.names[*m].clone().unwrap_or_default();
        match o {
            Outcome::Released {
                generation: g,
                data,
                ..
            } => {
                let g = *g;
                // A member passes only a generation that expects it.
                if !sim.ghost_expects(*m, g, true) {
                    sim.fail(&format!(
                        "process {m} ({name}) passed {g}, which does not expect it"
                    ));
                }
                let without = sim.without(g);
                let mut arrived = 0;
                let mut expected_data = BTreeMap::new();
                for j in 0..actors {
                    if !sim.ghost_expects(j, g, false) {
                        continue;
                    }
                    let jn = plan.names[j]
                        .clone()
                        .expect("an expected member has a name");
                    if without.contains(&jn) {
                        continue;
                    }
                    // Among them a member that joined for g: its join was
                    // answered, so g must not go without it.
                    match sim.arrivals[g as usize][j] {
                        Some(a) if a <= *t => arrived += 1,
                        a => sim.fail(&format!(
                            "process {m} ({name}) passed {g} at {t} ms before {jn} arrived ({a:?})"
                        )),
                    }
                    if plan.data_phases >> g & 1 == 1 {
                        expected_data.insert(jn, data_of(j, g));
                    }
                }
                if !without.is_empty() && arrived < plan.quorum.unwrap_or(usize::MAX) {
                    sim.fail(&format!(
                        "generation {g} was released without {without:?} with {arrived} arrived, \
                         fewer than the quorum {:?}",
                        plan.quorum
                    ));
                }
                if let Some(d) = data
                    && *d != expected_data
                {
                    sim.fail(&format!(
                        "process {m} ({name}) passed {g} with data {d:?}, not {expected_data:?}"
                    ));
                }
            }
            Outcome::Dropped { generation: g, .. } => {
                if sim.ghost_expects(*m, *g, true) {
                    if !sim.dropped_late(*m, *g) {
                        sim.fail(&format!(
                            "process {m} ({name}) was dropped at {g}, which expects it"
                        ));
                    }
                    dropped_late += 1;
                } else {
                    // Arrived before anybody passed: its check-in was held
                    // where the releasing coordinator could not see it.
                    let before = sim.released_at.get(g).copied().unwrap_or(u64::MAX);
                    dropped_arrived +=
                        u64::from(sim.arrivals[*g as usize][*m].is_some_and(|a| a < before));
                }
            }
            _ => unreachable!("other outcomes fail at once"),
        }
    }
    // Liveness: every generation that expects a member (until a quorum
    // release drops it) sees it pass, unless it left there without waiting.
    for m in 0..actors {
        for g in 0..sim.phases {
            if !sim.ghost_expects(m, g, true)
                || plan.left_unwaited[m] == Some(g)
                || sim.dropped_late(m, g)
                || starved.is_some_and(|s| g >= s)
            {
                continue;
            }
            let passed = sim.outcomes.iter().any(|(who, o, _)| {
                *who == m && matches!(o, Outcome::Released { generation, .. } if *generation == g)
            });
            if !passed {
                sim.fail(&format!(
                    "process {m} ({:?}) never passed {g}, which expects it: {:?}",
                    plan.names[m],
                    sim.outcome_of(m)
                ));
            }
        }
    }
    // Each generation is released within the bound of the last arrival
    // of the members it released.
    let grace = plan.quorum.map_or(0, |_| GRACE);
    for g in 0..sim.phases {
        let Some(rel) = sim.released_at.get(&g) else {
            continue;
        };
        let without = sim.without(g);
        let last = (0..actors)
            .filter(|&j| {
                sim.ghost_expects(j, g, false)
                    && !plan.names[j].as_ref().is_some_and(|n| without.contains(n))
            })
            .filter_map(|j| sim.arrivals[g as usize][j])
            .chain(plan.rerun_at.get(&g).copied())
            .max()
            .unwrap_or(0);
        let took = rel.saturating_sub(last);
        if took > RELEASE_BOUND + grace {
            sim.fail(&format!(
                "generation {g} released {took} ms after its last arrival"
            ));
        }
        worst = worst.max(took);
    }
    for k in 0..sim.procs.len() {
        let held = sim.active(k).map_or(0, |c| c.held());
        if held != 0 && starved.is_none() {
            sim.fail(&format!(
                "the idle coordinator {k} still holds {held} messages"
            ));
        }
    }
    let mut stats = plan.stats.clone();
    stats.runs = 1;
    stats.worst = worst;
    stats.dropped_arrived = dropped_arrived;
    stats.dropped_late = dropped_late;
    stats.starved = u64::from(starved.is_some());
    stats.outages = u64::from(Faults::HOSTILE.outages - sim.outages_left);
    stats.stalls = u64::from(Faults::HOSTILE.stalls - sim.stalls_left);
    stats.lease = sim.leasing.clone();
    stats.coordinator_crashes = u64::from(Faults::HOSTILE.coordinator_crashes - sim.crashes_left);
    stats.two_active = u64::from(sim.max_active > 1);
    stats
}

/// Runs `make` for every seed, checks each run, and prints the totals.
fn run_seeds(what: &str, default: u64, make: impl Fn(u64) -> Sim) -> Stats {
    let mut total = Stats::default();
    let mut queues = QueueStats::default();
    for seed in seeds(default) {
        let mut sim = make(seed);
        sim.run(3_600 * SEC);
        total.add(&check_elastic(&sim));
        queues.add(&sim);
    }
    println!("{what}: {total}");
    println!("{what}: {queues}");
    total
}

fn full_run() -> bool {
    std::env::var("SIM_SEED").is_err() && std::env::var("SIM_SEEDS").is_err()
}

/// The runs of process coordinators explored two of them at once: a
/// standby that took over from a live one (also from one cut off from the
/// state queue), and leases that ran out under an active coordinator.
fn assert_contested(total: &Stats) {
    let l = &total.lease;
    assert!(
        l.contested > total.runs / 2 && l.contested_cut_off > total.runs / 20,
        "two coordinators were rarely active at once: {total}"
    );
    assert!(l.ran_out > total.runs / 20, "{total}");
}

/// The pool scenario's run for `seed`, gathering data at the phases of
/// `data_phases`.
fn pool(seed: u64, data_phases: u64) -> Sim {
    let configured = 3 + (seed % 3) as usize;
    let phases = 6;
    let mut scripts = vec![Script::default(); configured];
    // Member 0 leaves at phase 1 without waiting, and joins again by
    // name 20 to 60 s later; member 1 leaves after waiting at phase 2.
    scripts[0].leave = Some((1, false));
    scripts[0].rejoin_after = Some((20 + seed % 41) * SEC);
    scripts[1].leave = Some((2, true));
    // Two processes join without a name: one early, one later.
    scripts.push(Script {
        join_at: Some(seed % 15 * SEC),
        ..Script::default()
    });
    scripts.push(Script {
        join_at: Some((10 + seed % 31) * SEC),
        ..Script::default()
    });
    Sim::new_elastic(seed, configured, scripts, phases, None, data_phases)
}

/// The quorum scenario's run for `seed`, gathering data at the phases of
/// `data_phases`.
fn quorum(seed: u64, data_phases: u64) -> Sim {
    let configured = 4 + (seed % 3) as usize;
    let mut scripts = vec![Script::default(); configured];
    scripts[0].dead_from = Some(seed % 2);
    scripts[1].straggle = Some(1 + seed / 2 % 2);
    Sim::new_elastic(
        seed,
        configured,
        scripts,
        4,
        Some(configured - 2),
        data_phases,
    )
}

#[test]
fn a_pool_that_grows_and_shrinks() {
    let total = run_seeds("pool", 1_000, |seed| pool(seed, seed % 64));
    if full_run() {
        assert!(total.joins >= 3 * total.runs, "{} joins", total.joins);
        assert!(total.released_by_state > 0, "nobody passed on the state");
        assert_contested(&total);
    }
}

#[test]
fn a_quorum_goes_on_without_the_dead_and_the_late() {
    let total = run_seeds("quorum", 1_000, |seed| quorum(seed, (seed / 4) % 16));
    if full_run() {
        assert!(
            total.straggler_dropped + total.dropped_waits > total.runs / 2,
            "the straggler was rarely dropped: {total}"
        );
        assert!(total.quorum_releases >= total.runs, "{total}");
        assert_contested(&total);
    }
}

/// The pool with process coordinators that decide without the lease (a
/// process that takes over is active at once, as before the lease).
/// `SIM_SEED=84` fails with "split outcome: process 0 was told it is
/// member 0 from 5, which a notice released without it at 12225 ms": the
/// active coordinator process 1 loses the state queue for 32 s but goes
/// on counting and releases generations 4 and 5 (their notices go before
/// the writes that would record them, which fail); coordinator process 0,
/// restarted after a crash, gets no answer to its probe (answering is a
/// write), takes over from the state that still has 4 open, and counts
/// the rejoin of member 0 for generation 5, which the other had already
/// released without it. 24 of the first 1,000 seeds split a join
/// so. With the lease the standby waits for the token that the cut-off
/// coordinator still holds.
#[test]
#[ignore = "without the lease, a standby that takes over from a coordinator cut off from the state queue places a join at a generation the other released (SIM_SEED=84)"]
fn a_pool_that_grows_and_shrinks_without_the_lease() {
    run_seeds("pool, no lease", 1_000, |seed| {
        let mut sim = pool(seed, seed % 64);
        sim.leasing.on = false;
        sim
    });
}

/// The quorum with process coordinators that decide without the lease.
/// `SIM_SEED=542` fails with "process 1 never finished": member 3 re-ran
/// phase 0 (two sends, each with its data); of two coordinators active at
/// once (one cut off from the state queue and stalled, the other a
/// standby that took over), each kept one send and deleted the other as a
/// copy that adds nothing, so neither is left, and every later coordinator
/// waits for ever for member 3's data. `SIM_SEED=643` splits a decision:
/// "two release notices of generation 0 differ: ([], None) and (["1"],
/// None)": coordinator process 0 releases generation 0 with everyone, then
/// loses the state queue before a write records it; process 1 takes over
/// from the state that has 0 open, sees only the arrivals it records (the
/// other still holds the check-ins) and, after the grace, releases 0 again
/// without member 1, which had passed it.
#[test]
#[ignore = "without the lease, two process coordinators lose gathered data (SIM_SEED=542) and release a generation twice, once dropping a member that passed (SIM_SEED=643)"]
fn a_quorum_goes_on_without_the_dead_and_the_late_without_the_lease() {
    run_seeds("quorum, no lease", 1_000, |seed| {
        let mut sim = quorum(seed, (seed / 4) % 16);
        sim.leasing.on = false;
        sim
    });
}

#[test]
fn gathered_data_is_the_same_for_everyone() {
    let total = run_seeds("gather", 1_000, |seed| {
        let configured = 2 + (seed % 4) as usize;
        let scripts = vec![Script::default(); configured];
        // Every member brings data at phase 0 and at some of the others.
        Sim::new_elastic(seed, configured, scripts, 4, None, 1 | (seed % 16))
    });
    if full_run() {
        assert!(total.with_data_by_notice > 1_000, "{total}");
        assert!(total.released_by_state > 0, "{total}");
        assert_contested(&total);
    }
}

/// The Lambda function as the coordinator of `make`'s run (whose data
/// phases must be none: it cannot gather).
fn under_lambda(mut sim: Sim) -> Sim {
    sim.coordinate_by_lambda(LambdaFaults::HOSTILE);
    sim
}

/// Under the lease, as the handler runs. Without it (`..._without_the_lease`
/// below), `SIM_SEED=15` fails with "join answer erased: a state written
/// by l5 no longer records the join of session j3.0": invocations 4 and 5
/// read the same state; 4 counts the join of member 3 (and lets the join
/// go), 5 counts the leave of member 0, and 5's write lands 23 ms after
/// 4's and erases it. 4's check `VERIFY_AFTER` its write passes
/// nonetheless: the newest state "includes" 4's, since
/// `PublishedState::includes` compares the rolls by their version only,
/// and both changes made it one more than the state they started from. The
/// join is lost for good (its message was deleted: the joining process
/// never learns it). The lease is what keeps two invocations from deciding
/// at once.
#[test]
fn lambda_a_pool_that_grows_and_shrinks() {
    let total = run_seeds("lambda pool", 1_000, |seed| under_lambda(pool(seed, 0)));
    if full_run() {
        assert!(total.joins >= 3 * total.runs, "{} joins", total.joins);
    }
}

/// The pool without the lease: the join erased by a concurrent
/// invocation's leave (see above). Kept to show what the lease closes.
#[test]
#[ignore = "without the lease, a join erased by a concurrent invocation's leave passes the verification (SIM_SEED=15)"]
fn lambda_a_pool_that_grows_and_shrinks_without_the_lease() {
    run_seeds("lambda pool, no lease", 1_000, |seed| {
        let mut sim = under_lambda(pool(seed, 0));
        sim.leasing.on = false;
        sim
    });
}

#[test]
fn lambda_a_quorum_goes_on_without_the_dead_and_the_late() {
    let total = run_seeds("lambda quorum", 1_000, |seed| under_lambda(quorum(seed, 0)));
    if full_run() {
        assert!(total.quorum_releases >= total.runs, "{total}");
    }
}
