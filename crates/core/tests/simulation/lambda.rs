//! The coordinator as AWS Lambda runs it, in the simulation: no coordinator
//! process at all, but an SQS event source mapping whose pollers receive
//! batches of up to 10 check-ins and invoke the function, at most
//! [`POLLERS`] at once, and a schedule that invokes it with a tick every
//! heartbeat (beside the mapping's invocations: up to three at once).
//!
//! Every invocation does what `sqs_barrier::lambda` does with the core, step
//! by step in virtual time, so that invocations interleave at every request:
//!
//! 1. a round starts: read the published state, build a new `Coordinator`
//!    from it (a new id; nothing survives from earlier invocations or
//!    rounds), feed it the whole batch and a timeout;
//! 2. carry out its transmits in order: notices wait for the state write
//!    that records them, sweeps wait for the end of the round, deletes and
//!    dead letters mark records done;
//! 3. a state write is read, check, write: the check reads the state (a
//!    request later), and if another invocation wrote since, the core
//!    stands down and the round is lost; else the write lands a request
//!    later still, and whatever another invocation wrote in between is
//!    erased (tags are not compare-and-swap);
//! 4. [`VERIFY_AFTER`] after its write the round reads the state again: if
//!    its write is no longer included, the round is lost;
//! 5. a lost round starts again from the state then published, at most
//!    [`MAX_RACES`] rounds, then the whole batch is handed back; a round
//!    that stands sweeps, and the invocation answers the records not done
//!    as `batchItemFailures`.
//!
//! The mapping then deletes the other records with the receipt handle of
//! its receive (which does nothing if the visibility lapsed and another
//! poller received the record since); failures, and every record of an
//! invocation that was killed (at any step) or failed (a failed state
//! write; an error after its work), come back after the check-in queue's
//! visibility timeout. The SQS model's faults (duplicates, redelivery
//! after delete, empty receives, delays and reordering) apply as for
//! process coordinators.
//!
//! Requests take 5 to 100 ms here, so a write never lands more than 250 ms
//! after its check: the verification catches every erased write. A write
//! delayed longer (SDK retries) can erase another invocation's write
//! unseen; docs/PROTOCOL.md ("Known limits") says what that costs, and the
//! simulation does not explore it.

use std::collections::{HashMap, HashSet};

use rand::Rng;

use sqs_barrier_core::coordinator::{CoordinatorOptions, Transmit as CTransmit};
use sqs_barrier_core::state::PublishedState;
use sqs_barrier_core::{Coordinator, participant::Outcome};

use super::{Faults, Plot, SEC, Sim, VISIBILITY, at, check_liveness, seeds};

/// The mapping's maximum concurrency (Lambda's least, as deployed).
const POLLERS: usize = 2;
/// As `sqs_barrier::lambda::MAX_RACES`.
const MAX_RACES: usize = 5;
/// As `sqs_barrier::lambda::VERIFY_AFTER`, in ms.
const VERIFY_AFTER: u64 = 250;
/// The schedule's interval and the heartbeat the state promises (as
/// deployed: `SQS_BARRIER_HEARTBEAT_SECS` 60).
const TICK_EVERY: u64 = 60 * SEC;

/// What the Lambda coordinator's parts do next.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(super) enum Actor {
    /// Mapping poller `p` receives a batch (or polls again).
    Poller(usize),
    /// Invocation `i` takes its next step.
    Invocation(u64),
    /// The schedule invokes the function with a tick.
    Tick,
}

/// How hostile the Lambda side is, on top of the SQS model's [`Faults`].
#[derive(Clone, Copy, Debug)]
pub(super) struct LambdaFaults {
    /// At each step, an invocation is killed (timed out, crashed): it
    /// stops there, and the mapping deletes nothing of its batch.
    kill: f64,
    /// An invocation that finished its work fails anyway (its batch comes
    /// back whole).
    error: f64,
}

impl LambdaFaults {
    const NONE: LambdaFaults = LambdaFaults {
        kill: 0.0,
        error: 0.0,
    };
    const HOSTILE: LambdaFaults = LambdaFaults {
        kill: 0.01,
        error: 0.03,
    };
}

/// One record of a batch: the message id (the core's token, as the
/// function's), the receipt handle of the mapping's receive, the body.
#[derive(Clone, Debug)]
struct Rec {
    id: u64,
    receipt: u64,
    body: String,
}

/// Where an invocation is.
enum Step {
    /// A round starts: read the state, rebuild the core.
    Start,
    /// The write's check reads the state.
    Check {
        version: u64,
        state: Box<PublishedState>,
    },
    /// The write lands.
    Land {
        version: u64,
        state: Box<PublishedState>,
    },
    /// The state is read again, [`VERIFY_AFTER`] after the write.
    Verify,
    /// The write failed: the state is read to see whether it landed.
    Failed { state: Box<PublishedState> },
}

struct Invocation {
    /// The poller that invoked it (`None`: a tick).
    poller: Option<usize>,
    records: Vec<Rec>,
    step: Step,
    round: usize,
    core: Option<Coordinator<u64>>,
    /// Records dead-lettered (gone for good, in any round).
    dead: HashSet<u64>,
    /// This round: records the core let go, notices waiting for the
    /// write, sweeps waiting for the end, and the state last written.
    done: HashSet<u64>,
    notices: Vec<(u64, String)>,
    sweeps: Vec<(u64, u64)>,
    written: Option<PublishedState>,
}

/// The mapping, the schedule and the invocations under way; and what they
/// did (ghost counters).
#[derive(Default)]
pub(super) struct Deployment {
    active: bool,
    faults: Option<LambdaFaults>,
    invocations: HashMap<u64, Invocation>,
    next: u64,
    /// Ghost counters.
    started: u64,
    ticks: u64,
    /// Rounds lost at the check (another invocation wrote first) and at
    /// the verification (a write erased).
    lost_at_check: u64,
    lost_at_verify: u64,
    /// Invocations that handed their whole batch back after MAX_RACES
    /// rounds, were killed, or failed.
    gave_up: u64,
    killed: u64,
    failed: u64,
    /// Records answered as failures by invocations that succeeded.
    handed_back: u64,
    /// The most invocations under way at once.
    max_concurrent: usize,
}

fn lambda_options() -> CoordinatorOptions {
    // As `sqs_barrier::lambda::core_options`.
    let mut core = CoordinatorOptions::default();
    core.heartbeat = at(TICK_EVERY);
    core.restart_grace = std::time::Duration::ZERO;
    core.deadline_slack = at(VISIBILITY);
    core.age_since_write = true;
    core
}

impl Sim {
    /// A run coordinated by the Lambda function alone.
    fn new_lambda(
        seed: u64,
        n: usize,
        phases: u64,
        faults: Faults,
        lambda: LambdaFaults,
        plot: Plot,
    ) -> Sim {
        let mut sim = Sim::new(seed, n, phases, faults, plot);
        // No coordinator process: keep the members' first steps only.
        sim.queue
            .retain(|e| !matches!(e.0.2, super::Actor::Coordinator(_)));
        sim.lambda.active = true;
        sim.lambda.faults = Some(lambda);
        for p in 0..POLLERS {
            sim.schedule(p as u64 * 10, super::Actor::Lambda(Actor::Poller(p)));
        }
        sim.schedule(TICK_EVERY, super::Actor::Lambda(Actor::Tick));
        sim
    }

    fn lambda_faults(&self) -> LambdaFaults {
        self.lambda.faults.unwrap_or(LambdaFaults::NONE)
    }

    /// A request's time.
    fn request(&mut self) -> u64 {
        self.rng.random_range(5..=100)
    }

    pub(super) fn step_lambda(&mut self, a: Actor) {
        match a {
            Actor::Poller(p) => self.poll(p),
            Actor::Tick => {
                self.lambda.ticks += 1;
                self.invoke(None, Vec::new());
                self.schedule(TICK_EVERY, super::Actor::Lambda(Actor::Tick));
            }
            Actor::Invocation(i) => self.step_invocation(i),
        }
    }

    /// A poller's receive: up to 10 visible check-ins, in any order, hidden
    /// for the queue's visibility timeout; a batch invokes the function.
    fn poll(&mut self, p: usize) {
        let records: Vec<Rec> = self
            .receive_checkins()
            .into_iter()
            .map(|(id, receipt, body)| Rec { id, receipt, body })
            .collect();
        if records.is_empty() {
            // A long poll returns as soon as a message comes; here it
            // polls again a moment later.
            let next = self.rng.random_range(5..200);
            self.schedule(next, super::Actor::Lambda(Actor::Poller(p)));
            return;
        }
        self.invoke(Some(p), records);
    }

    fn invoke(&mut self, poller: Option<usize>, records: Vec<Rec>) {
        self.lambda.next += 1;
        self.lambda.started += 1;
        let i = self.lambda.next;
        let n = records.len();
        self.log(|| format!("invocation {i} with {n} records"));
        self.lambda.invocations.insert(
            i,
            Invocation {
                poller,
                records,
                step: Step::Start,
                round: 0,
                core: None,
                dead: HashSet::new(),
                done: HashSet::new(),
                notices: Vec::new(),
                sweeps: Vec::new(),
                written: None,
            },
        );
        self.lambda.max_concurrent = self
            .lambda
            .max_concurrent
            .max(self.lambda.invocations.len());
        let start = self.request();
        self.schedule(start, super::Actor::Lambda(Actor::Invocation(i)));
    }

    fn step_invocation(&mut self, i: u64) {
        let now = self.now;
        let mut inv = self.lambda.invocations.remove(&i).expect("running");
        if self.chance(self.lambda_faults().kill) {
            self.log(|| format!("invocation {i} is killed"));
            self.lambda.killed += 1;
            self.end_invocation(inv, None);
            return;
        }
        match std::mem::replace(&mut inv.step, Step::Start) {
            Step::Start => {
                if inv.round == MAX_RACES {
                    // Kept losing: hand everything back.
                    self.lambda.gave_up += 1;
                    let keep = inv
                        .records
                        .iter()
                        .filter(|r| !inv.dead.contains(&r.id))
                        .map(|r| r.id)
                        .collect();
                    self.end_invocation(inv, Some(keep));
                    return;
                }
                let state = self.sqs.tags.clone();
                let id = format!("l{i}.{}", inv.round);
                let mut core =
                    Coordinator::new(self.cfg.clone(), id, lambda_options(), state.as_ref());
                for r in &inv.records {
                    core.handle_message(r.id, &r.body, at(now));
                }
                core.handle_timeout(at(now));
                inv.core = Some(core);
                inv.done.clear();
                inv.notices.clear();
                inv.sweeps.clear();
                inv.written = None;
                self.carry_out_invocation(i, inv);
            }
            Step::Check { version, state } => {
                let other = self.sqs.tags.clone();
                let core = inv.core.as_mut().expect("a round");
                if let Some(other) = other.filter(|o| o.coordinator != core.id()) {
                    core.handle_state_observed(&other, at(now));
                }
                if core.superseded().is_some() {
                    self.lambda.lost_at_check += 1;
                    self.lose_round(i, inv);
                    return;
                }
                if self.chance(self.faults.write_fail) {
                    // The write fails (half the time after taking effect):
                    // the handler reads the state (a request later) and
                    // sends the round's notices if it holds what the write
                    // recorded; the invocation fails, its batch comes back.
                    if self.rng.random_bool(0.5) {
                        self.sqs.tags = Some((*state).clone());
                    }
                    inv.step = Step::Failed { state };
                    let read = self.request();
                    self.park(i, inv, read);
                    return;
                }
                inv.step = Step::Land { version, state };
                let land = self.request();
                self.park(i, inv, land);
            }
            Step::Land { version, state } => {
                self.log(|| {
                    format!(
                        "invocation {i} writes: released below {}, open {:?}",
                        state.released_below,
                        state.open.as_ref().map(|o| (o.generation, o.arrived.len()))
                    )
                });
                self.sqs.tags = Some((*state).clone());
                inv.core
                    .as_mut()
                    .expect("a round")
                    .handle_state_written(version);
                inv.written = Some(*state);
                for (generation, body) in std::mem::take(&mut inv.notices) {
                    self.send_notice((generation % 2) as usize, body);
                }
                self.carry_out_invocation(i, inv);
            }
            Step::Failed { state } => {
                if self.sqs.tags.as_ref().is_some_and(|s| s.includes(&state)) {
                    for (generation, body) in std::mem::take(&mut inv.notices) {
                        self.send_notice((generation % 2) as usize, body);
                    }
                }
                self.lambda.failed += 1;
                self.end_invocation(inv, None);
            }
            Step::Verify => {
                let mine = inv.written.as_ref().expect("a write");
                if !self.sqs.tags.as_ref().is_some_and(|s| s.includes(mine)) {
                    self.lambda.lost_at_verify += 1;
                    self.lose_round(i, inv);
                    return;
                }
                self.finish_round(inv);
            }
        }
    }

    /// Puts invocation `i` back, to take its next step `after` ms from now.
    fn park(&mut self, i: u64, inv: Invocation, after: u64) {
        self.lambda.invocations.insert(i, inv);
        self.schedule(after, super::Actor::Lambda(Actor::Invocation(i)));
    }

    /// Carries out the core's transmits up to the next state write (its
    /// check comes a request later) or to the end of the round.
    fn carry_out_invocation(&mut self, i: u64, mut inv: Invocation) {
        let core = inv.core.as_mut().expect("a round");
        while let Some(t) = core.poll_transmit() {
            match t {
                CTransmit::Notify { generation, body } => inv.notices.push((generation, body)),
                CTransmit::Sweep { generation, below } => inv.sweeps.push((generation, below)),
                CTransmit::Delete(ids) => inv.done.extend(ids),
                // Sent to the dead-letter queue once, whatever round.
                CTransmit::DeadLetter { token, .. } => {
                    inv.dead.insert(token);
                }
                CTransmit::WriteState { version, state } => {
                    inv.step = Step::Check { version, state };
                    let check = self.request();
                    self.park(i, inv, check);
                    return;
                }
            }
        }
        while core.poll_event().is_some() {}
        if inv.written.is_some() {
            inv.step = Step::Verify;
            self.park(i, inv, VERIFY_AFTER);
        } else {
            // Notices of a round that wrote nothing (none is due).
            for (generation, body) in std::mem::take(&mut inv.notices) {
                self.send_notice((generation % 2) as usize, body);
            }
            self.finish_round(inv);
        }
    }

    /// Another invocation wrote first, or erased this round's write: start
    /// again from the state now published.
    fn lose_round(&mut self, i: u64, mut inv: Invocation) {
        let round = inv.round;
        self.log(|| format!("invocation {i} loses round {round}"));
        inv.round += 1;
        inv.core = None;
        inv.step = Step::Start;
        let next = self.request();
        self.park(i, inv, next);
    }

    /// The round stands: sweep, answer the records not done as failures.
    fn finish_round(&mut self, mut inv: Invocation) {
        let keep: Vec<u64> = inv
            .records
            .iter()
            .filter(|r| !inv.done.contains(&r.id) && !inv.dead.contains(&r.id))
            .map(|r| r.id)
            .collect();
        for (generation, below) in std::mem::take(&mut inv.sweeps) {
            self.sweep((generation % 2) as usize, below);
        }
        if self.chance(self.lambda_faults().error) {
            self.lambda.failed += 1;
            self.end_invocation(inv, None);
            return;
        }
        self.lambda.handed_back += keep.len() as u64;
        self.end_invocation(inv, Some(keep));
    }

    /// The invocation returns: with `failures` named (the mapping deletes
    /// every other record), or failed (`None`: it deletes nothing). Its
    /// poller polls again.
    fn end_invocation(&mut self, inv: Invocation, failures: Option<Vec<u64>>) {
        if let Some(failures) = failures {
            for r in inv.records.iter().filter(|r| !failures.contains(&r.id)) {
                self.delete_checkin(r.receipt);
            }
        }
        if let Some(p) = inv.poller {
            let next = self.request();
            self.schedule(next, super::Actor::Lambda(Actor::Poller(p)));
        }
    }
}

/// Safety is checked at every release (as for process coordinators);
/// liveness with the process coordinators' bound: check-ins handed back,
/// or held by a killed or failed invocation, come back after their
/// visibility (5 s), a few times in a row at worst; a generation whose
/// members all receive nothing from their release queue passes at their
/// first status read (120 s).
fn check_lambda_run(sim: &Sim) {
    assert!(sim.lambda.active);
    check_liveness(sim);
}

#[test]
fn lambda_faultless_runs_release_every_phase_promptly() {
    let mut releases = 0;
    let mut concurrent = 0;
    for seed in seeds(500) {
        let n = 2 + (seed % 5) as usize;
        let mut sim = Sim::new_lambda(seed, n, 3, Faults::NONE, LambdaFaults::NONE, Plot::Plain);
        sim.run(3_600 * SEC);
        check_lambda_run(&sim);
        releases += sim.outcomes.len();
        concurrent = concurrent.max(sim.lambda.max_concurrent);
        for g in 0..3 {
            let last = sim.arrivals[g].iter().flatten().max().unwrap();
            let took = sim.released_at[&(g as u64)] - last;
            // Losing every round of an invocation hands a batch back for
            // a visibility timeout (5 s), so allow two.
            if took > 2 * VISIBILITY + 2 * SEC {
                sim.fail(&format!("slow release without faults: {took} ms"));
            }
        }
    }
    println!("lambda, no faults: {releases} releases, at most {concurrent} invocations at once");
    assert!(releases > 500, "only {releases} releases");
}

#[test]
fn lambda_hostile_runs_are_safe_and_live() {
    let mut totals = Deployment::default();
    let (mut releases, mut worst) = (0, 0);
    for seed in seeds(1_000) {
        let n = 2 + (seed % 4) as usize;
        let mut sim = Sim::new_lambda(
            seed,
            n,
            3,
            Faults::HOSTILE,
            LambdaFaults::HOSTILE,
            Plot::Plain,
        );
        sim.run(3_600 * SEC);
        check_lambda_run(&sim);
        releases += sim.outcomes.len();
        worst = worst.max(sim.worst_release());
        let l = &sim.lambda;
        totals.started += l.started;
        totals.ticks += l.ticks;
        totals.lost_at_check += l.lost_at_check;
        totals.lost_at_verify += l.lost_at_verify;
        totals.gave_up += l.gave_up;
        totals.killed += l.killed;
        totals.failed += l.failed;
        totals.handed_back += l.handed_back;
        totals.max_concurrent = totals.max_concurrent.max(l.max_concurrent);
    }
    let t = &totals;
    println!(
        "lambda, hostile: {releases} releases; {} invocations ({} ticks, at most {} at once), \
         {} rounds lost at the check and {} at the verification, {} invocations gave up, \
         {} killed, {} failed, {} records handed back; slowest release {:.1} s after the last \
         arrival",
        t.started,
        t.ticks,
        t.max_concurrent,
        t.lost_at_check,
        t.lost_at_verify,
        t.gave_up,
        t.killed,
        t.failed,
        t.handed_back,
        worst as f64 / SEC as f64
    );
    if std::env::var("SIM_SEED").is_err() && std::env::var("SIM_SEEDS").is_err() {
        // The run explored what it claims to.
        assert!(releases > 5_000, "only {releases} releases");
        assert!(t.max_concurrent >= 2, "never two invocations at once");
        assert!(
            t.lost_at_check > 100,
            "{} races lost at the check",
            t.lost_at_check
        );
        assert!(t.lost_at_verify > 10, "{} writes erased", t.lost_at_verify);
        assert!(
            t.killed > 100 && t.failed > 100,
            "{} killed, {} failed",
            t.killed,
            t.failed
        );
    }
}

/// An abort breaks its generation for every waiter. A deadline breaks the
/// stalled generation, naming member 0, or an earlier one: the slack
/// covers one visibility timeout, and a check-in whose invocations are
/// killed or fail several times in a row is away longer. Either way every
/// member ends broken at the same generation and nobody is released there
/// or later.
#[test]
fn lambda_abort_and_deadline_reach_every_waiter() {
    let mut earlier = 0;
    for seed in seeds(300) {
        let n = 3 + (seed % 3) as usize;
        let at_gen = seed % 2;
        let plot = if seed % 2 == 0 {
            Plot::Abort(at_gen)
        } else {
            Plot::Deadline(at_gen)
        };
        let mut sim = Sim::new_lambda(seed, n, 2, Faults::HOSTILE, LambdaFaults::HOSTILE, plot);
        sim.run(3_600 * SEC);
        let mut broken_at = None;
        for m in 1..n {
            let outcomes = sim.outcome_of(m);
            let b = match outcomes.last().copied() {
                Some(Outcome::Broken {
                    generation,
                    missing,
                    ..
                }) if *generation == at_gen
                    || matches!(plot, Plot::Deadline(_)) && *generation < at_gen =>
                {
                    if matches!(plot, Plot::Deadline(_))
                        && *generation == at_gen
                        && !missing.contains(&"0".to_owned())
                    {
                        sim.fail(&format!("member {m} was told {missing:?} are missing"));
                    }
                    *generation
                }
                other => sim.fail(&format!(
                    "{plot:?}: member {m} ended with {other:?}, not broken at {at_gen}"
                )),
            };
            if *broken_at.get_or_insert(b) != b {
                sim.fail(&format!(
                    "{plot:?}: members ended broken at different generations"
                ));
            }
            if outcomes
                .iter()
                .any(|o| matches!(o, Outcome::Released { generation, .. } if *generation >= b))
            {
                sim.fail(&format!("{plot:?}: member {m} released at or after {b}"));
            }
        }
        earlier += usize::from(broken_at.is_some_and(|b| b < at_gen));
    }
    println!("lambda, abort or deadline: {earlier} runs broken before the stalled generation");
}
