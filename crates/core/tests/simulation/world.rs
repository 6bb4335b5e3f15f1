//! How a run goes: building the world (members, coordinator processes, the
//! SQS model, the faults and the plot), the event queue in virtual time, the
//! loop that steps each actor, the trace, and what a failed check reports.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqs_barrier_core::participant::Outcome;
use sqs_barrier_core::{BarrierConfig, Membership, Participant};

use super::lease::Leasing;
use super::sqs::{self, Sqs};
use super::{
    Actor, Faults, Member, PState, Plot, Proc, REST_AFTER, Role, SEC, Sim, VISIBILITY, at, lambda,
    membership, popts,
};

impl Sim {
    pub(super) fn new(seed: u64, n: usize, phases: u64, faults: Faults, plot: Plot) -> Sim {
        let deadline = matches!(plot, Plot::Deadline(_)).then(|| at(5 * SEC));
        let cfg = BarrierConfig::new(
            "sim",
            "inst",
            Membership::new(n, None).unwrap(),
            deadline,
            false,
        )
        .unwrap();
        Sim::with_config(seed, cfg, n, phases, faults, plot)
    }

    /// A run of barrier `cfg` with `actors` participant processes: the
    /// configured members first (process m is member m), then any that
    /// join later (`membership`), which start as member 0 until they join.
    pub(super) fn with_config(
        seed: u64,
        cfg: BarrierConfig,
        actors: usize,
        phases: u64,
        faults: Faults,
        plot: Plot,
    ) -> Sim {
        let n = actors;
        let configured = cfg.members.len();
        let members = (0..n)
            .map(|m| Member {
                p: Participant::new(
                    &cfg,
                    &m.min(configured - 1).to_string(),
                    format!("s{m}.0"),
                    popts(),
                )
                .unwrap(),
                state: PState::Working(0),
                sessions: 0,
                deletes: Vec::new(),
                stale_now: 0,
                deaf_until: 0,
                by_notice: false,
            })
            .collect();
        let mut sim = Sim {
            seed,
            rng: StdRng::seed_from_u64(seed),
            now: 0,
            queue: BinaryHeap::new(),
            seq: 0,
            sqs: Sqs::default(),
            cfg,
            faults,
            plot,
            phases,
            members,
            procs: (0..2)
                .map(|k| Proc {
                    // Process 1 starts a little later: it finds process 0
                    // active and stands by.
                    role: Role::Down(k as u64 * 500),
                    held: HashSet::new(),
                    lives: 0,
                    lease: None,
                    outage_until: 0,
                    outage_lease: false,
                    stalled_until: 0,
                    last_batch: 0,
                    rest: None,
                })
                .collect(),
            crashes_left: faults.coordinator_crashes,
            false_takeovers_left: faults.false_takeovers,
            max_active: 0,
            outages_left: faults.outages,
            stalls_left: faults.stalls,
            leasing: Leasing {
                on: true,
                rest_after: Some(REST_AFTER),
                ..Leasing::default()
            },
            participant_crashes_left: faults.participant_crashes,
            arrivals: vec![vec![None; n]; phases as usize],
            outcomes: Vec::new(),
            trace: std::env::var("SIM_SEED").ok().map(|_| Vec::new()),
            released_at: HashMap::new(),
            max_stored: [0, 0],
            max_broken: [0, 0],
            max_foreign: [0, 0],
            max_in_flight: 0,
            stale_reads: 0,
            max_stale_per_wait: 0,
            missed_deletes: 0,
            sweeps: 0,
            released_by_status: 0,
            lambda: lambda::Deployment::default(),
            elastic: membership::Plan::default(),
        };
        // `setup` puts the lease token.
        sim.sqs.lease = sqs::LeaseQueue::with_token();
        // Drawn apart from the run's own randomness: runs without rests
        // (the Lambda coordinator's) go as they did before resting.
        sim.leasing.blind = faults.blind_count > 0.0
            && StdRng::seed_from_u64(seed ^ 0x0b1d_c0de).random_bool(faults.blind_count);
        for m in 0..n {
            let work = sim.rng.random_range(0..2 * SEC);
            sim.schedule(work, Actor::Member(m));
        }
        sim.schedule(0, Actor::Coordinator(0));
        sim.schedule(500, Actor::Coordinator(1));
        sim
    }

    pub(super) fn log(&mut self, s: impl FnOnce() -> String) {
        if let Some(t) = &mut self.trace {
            t.push(format!("{:>8} {}", self.now, s()));
        }
    }

    pub(super) fn schedule(&mut self, after: u64, actor: Actor) {
        self.seq += 1;
        self.queue
            .push(Reverse((self.now + after, self.seq, actor)));
    }

    pub(super) fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.random_bool(p)
    }

    pub(super) fn delay(&mut self) -> u64 {
        if self.faults.max_delay == 0 {
            0
        } else {
            self.rng.random_range(0..=self.faults.max_delay)
        }
    }

    /// Runs until every member is done (and a little longer, so the
    /// coordinator can clean up) or `limit` ms of virtual time pass.
    pub(super) fn run(&mut self, limit: u64) {
        let mut idle_until = None;
        let (mut starved, mut next_starve_check) = (false, 0);
        while let Some(Reverse((t, _, actor))) = self.queue.pop() {
            if t > limit {
                break;
            }
            self.now = t;
            self.expire_notices();
            match actor {
                Actor::Member(m) => self.step_member(m),
                Actor::Coordinator(k) => self.step_process(k),
                Actor::Lambda(a) => self.step_lambda(a),
                Actor::Keeper(k, receipt) => self.step_keeper(k, receipt),
            }
            if self.leasing.on {
                self.check_one_holder();
            }
            self.measure_release_queues();
            let all_done = self.members.iter().all(|m| matches!(m.state, PState::Done));
            // A quorum barrier left with too few live members (see
            // `membership`): its waiters wait for ever.
            if !all_done && self.now >= next_starve_check {
                next_starve_check = self.now + 10 * SEC;
                starved = self.elastic.active && self.all_starved();
            }
            if all_done || starved {
                // Idle, and no coordinator in an outage or a stall (it
                // may hold check-ins until it writes again).
                let busy = self
                    .procs
                    .iter()
                    .map(|p| p.outage_until.max(p.stalled_until))
                    .max()
                    .unwrap_or(0);
                let end = *idle_until.get_or_insert(self.now + VISIBILITY + 10 * SEC);
                // A coordinator that took over late (it waits for the
                // lease first) may still hold check-ins until its write.
                let holding =
                    (0..self.procs.len()).any(|k| self.active(k).is_some_and(|c| c.held() > 0));
                if self.now >= end.max(busy + VISIBILITY + 10 * SEC) && (!holding || starved) {
                    break;
                }
            }
        }
    }

    /// The longest time from a generation's last arrival to its release.
    pub(super) fn worst_release(&self) -> u64 {
        (0..self.phases)
            .filter_map(|g| {
                let last = self.arrivals[g as usize].iter().flatten().max()?;
                Some(self.released_at.get(&g)? - last)
            })
            .max()
            .unwrap_or(0)
    }

    /// The member name of participant process `m` (as it last knew it).
    pub(super) fn name_of(&self, m: usize) -> String {
        if self.elastic.active {
            self.elastic.name(m)
        } else {
            m.to_string()
        }
    }

    pub(super) fn outcome_of(&self, m: usize) -> Vec<&Outcome> {
        self.outcomes
            .iter()
            .filter(|(who, _, _)| *who == m)
            .map(|(_, o, _)| o)
            .collect()
    }

    pub(super) fn fail(&self, why: &str) -> ! {
        if let Some(t) = &self.trace {
            for line in t {
                eprintln!("{line}");
            }
        }
        panic!(
            "seed {}: {why}\nreplay with SIM_SEED={} for a trace",
            self.seed, self.seed
        );
    }
}
