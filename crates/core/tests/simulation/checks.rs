//! The checks of a finished run: liveness (`check_liveness`), no split
//! outcome and safety (`check_no_split`), and the bounds on the release
//! queues (`check_release_queues`, with `QueueStats` over many runs).

use std::collections::BTreeMap;

use sqs_barrier_core::participant::Outcome;

use super::{
    BROKEN_PER_MEMBER, IN_FLIGHT_BOUND, PState, RELEASE_QUEUE_BOUND, SEC, STALE_READS_PER_WAIT, Sim,
};

/// The bound on release latency after the last arrival: a crashed
/// coordinator is replaced by the standby within about 10 s (or restarted
/// within 5 s and takes over after its 3 s probe), its unpublished check-ins
/// come back after their visibility (5 s), two active coordinators split
/// check-ins until one stands down (a heartbeat); a failed write is
/// retried; a generation whose members all receive nothing from their
/// release queue passes at their first status read, 120 s after arriving
/// (or after re-running the wait, which a crashed member may do up to a
/// minute later); with a few faults in a row, 200 s is ample.
pub(super) const RELEASE_BOUND: u64 = 200 * SEC;

pub(super) fn check_liveness(sim: &Sim) {
    for (m, member) in sim.members.iter().enumerate() {
        if !matches!(member.state, PState::Done) {
            sim.fail(&format!("member {m} never finished"));
        }
        let released = sim
            .outcome_of(m)
            .iter()
            .filter(|o| matches!(o, Outcome::Released { .. }))
            .count() as u64;
        if released != sim.phases {
            sim.fail(&format!(
                "member {m} was released {released} times of {}: {:?}",
                sim.phases,
                sim.outcome_of(m)
            ));
        }
    }
    for g in 0..sim.phases {
        let last = sim.arrivals[g as usize].iter().flatten().max().unwrap();
        let rel = sim.released_at[&g];
        if rel - last > RELEASE_BOUND {
            sim.fail(&format!(
                "generation {g} released {} ms after its last arrival",
                rel - last
            ));
        }
    }
    for k in 0..sim.procs.len() {
        let held = sim.active(k).map_or(0, |c| c.held());
        if held != 0 {
            sim.fail(&format!(
                "the idle coordinator {k} still holds {held} messages"
            ));
        }
    }
    check_no_split(sim);
}

/// No split outcome: no two members learn different outcomes of one
/// generation. Released there, they learn the same members dropped and the
/// same data (as far as each read a notice: a wait that passed on the
/// published state learns neither); nobody passes a generation that
/// another learned went on without it; and nobody is released at or after
/// a generation another found broken. Two coordinators that decide the
/// same generation differently (each from what it knows) fail here once
/// both decisions reach members.
pub(super) fn check_no_split(sim: &Sim) {
    /// What the first members released at a generation learned: the
    /// members dropped and the data, each with who learned it.
    #[derive(Default)]
    struct Learned<'a> {
        dropped: Option<(usize, &'a Vec<String>)>,
        data: Option<(usize, &'a BTreeMap<String, String>)>,
        /// The first member released there.
        first: usize,
    }
    let mut released: BTreeMap<u64, Learned> = BTreeMap::new();
    for (m, o, _) in &sim.outcomes {
        let Outcome::Released {
            generation: g,
            dropped,
            data,
        } = o
        else {
            continue;
        };
        let seen = released.entry(*g).or_insert(Learned {
            first: *m,
            ..Learned::default()
        });
        match (seen.dropped, dropped) {
            (Some((by, first)), Some(d)) if first != d => sim.fail(&format!(
                "split outcome: member {m} learned that {g} was released without {d:?}, \
                 member {by} without {first:?}"
            )),
            (None, Some(d)) => seen.dropped = Some((*m, d)),
            _ => {}
        }
        match (seen.data, data) {
            (Some((by, first)), Some(d)) if first != d => sim.fail(&format!(
                "split outcome: member {m} learned that {g} was released with data {d:?}, \
                 member {by} with {first:?}"
            )),
            (None, Some(d)) => seen.data = Some((*m, d)),
            _ => {}
        }
    }
    for (m, o, _) in &sim.outcomes {
        match o {
            Outcome::Released { generation: g, .. } => {
                let name = sim.name_of(*m);
                if let Some((by, dropped)) = released.get(g).and_then(|l| l.dropped)
                    && dropped.contains(&name)
                {
                    sim.fail(&format!(
                        "split outcome: member {m} ({name}) passed {g}, which member {by} \
                         learned went on without it"
                    ));
                }
            }
            Outcome::Broken { from_gen, .. } => {
                if let Some((g, l)) = released.range(from_gen..).next() {
                    sim.fail(&format!(
                        "split outcome: member {} was released at {g}, member {m} found the \
                         barrier broken from {from_gen}",
                        l.first
                    ));
                }
            }
            _ => {}
        }
    }
}

/// The release queues stay small: [`RELEASE_QUEUE_BOUND`] messages stored
/// besides [`BROKEN_PER_MEMBER`] `broken` notices per member,
/// [`IN_FLIGHT_BOUND`] in flight, [`STALE_READS_PER_WAIT`] reads of notices
/// that were not the reader's in one wait, whatever the number of phases.
pub(super) fn check_release_queues(sim: &Sim) {
    for q in 0..2 {
        if sim.max_stored[q] > RELEASE_QUEUE_BOUND {
            sim.fail(&format!(
                "release queue {q} stored {} release notices at once",
                sim.max_stored[q]
            ));
        }
    }
    let n = sim.members.len();
    for q in 0..2 {
        if sim.max_broken[q] > BROKEN_PER_MEMBER * n {
            sim.fail(&format!(
                "release queue {q} stored {} broken notices at once ({n} members)",
                sim.max_broken[q]
            ));
        }
    }
    if sim.max_in_flight > IN_FLIGHT_BOUND {
        sim.fail(&format!(
            "{} release-queue messages were in flight at once",
            sim.max_in_flight
        ));
    }
    if sim.max_stale_per_wait > STALE_READS_PER_WAIT {
        sim.fail(&format!(
            "a participant read {} notices not its own in one wait",
            sim.max_stale_per_wait
        ));
    }
}

/// Release-queue figures over many runs, for the report.
#[derive(Default)]
pub(super) struct QueueStats {
    max_stored: usize,
    max_broken_per_member: f64,
    max_foreign: usize,
    max_in_flight: usize,
    pub(super) stale_reads: u64,
    max_stale_per_wait: u32,
    waits: u64,
    missed_deletes: u64,
    sweeps: u64,
    pub(super) released_by_status: u64,
}

impl QueueStats {
    pub(super) fn add(&mut self, sim: &Sim) {
        check_release_queues(sim);
        self.max_stored = self
            .max_stored
            .max(sim.max_stored[0].max(sim.max_stored[1]));
        let broken = sim.max_broken[0].max(sim.max_broken[1]) as f64 / sim.members.len() as f64;
        self.max_broken_per_member = self.max_broken_per_member.max(broken);
        self.max_foreign = self
            .max_foreign
            .max(sim.max_foreign[0].max(sim.max_foreign[1]));
        self.max_in_flight = self.max_in_flight.max(sim.max_in_flight);
        self.stale_reads += sim.stale_reads;
        self.max_stale_per_wait = self.max_stale_per_wait.max(sim.max_stale_per_wait);
        self.waits += sim.outcomes.len() as u64;
        self.missed_deletes += sim.missed_deletes;
        self.sweeps += sim.sweeps;
        self.released_by_status += sim.released_by_status;
    }
}

impl std::fmt::Display for QueueStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "release queues: at most {} release notices stored (and {:.2} broken notices per \
             member, {} foreign messages), \
             {} in flight; {} stale reads in {} waits \
             (at most {} in one wait); {} sweeps; {} notice deletes did not take effect; \
             {} waits released by a status read",
            self.max_stored,
            self.max_broken_per_member,
            self.max_foreign,
            self.max_in_flight,
            self.stale_reads,
            self.waits,
            self.max_stale_per_wait,
            self.sweeps,
            self.missed_deletes,
            self.released_by_status
        )
    }
}
