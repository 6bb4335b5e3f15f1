//! The coordinator as AWS Lambda runs it, in the simulation: no coordinator
//! process at all, but an SQS event source mapping whose pollers receive
//! batches of up to 10 check-ins and invoke the function, at most
//! [`POLLERS`] at once, and a schedule that invokes it with a tick every
//! heartbeat (beside the mapping's invocations: up to three at once).
//!
//! Every invocation is the core's own [`LambdaRound`], the machine the
//! `sqs_barrier::lambda` handler drives: the simulation carries out what it
//! asks, step by step in virtual time, so that invocations interleave at
//! every request:
//!
//! 1. `ReadState` reads the published state a request later (a round
//!    starts: the machine builds a new `Coordinator` from it and feeds it
//!    the whole batch and a timeout);
//! 2. notices, sweeps and dead letters are carried out at once, when the
//!    machine asks (it holds notices back until the write that records
//!    them, and sweeps until the round stands);
//! 3. `WriteState` is check, write: the check reads the state (a request
//!    later), and if another invocation wrote a state the round may not
//!    write over (the machine's write guard), the write is refused and the
//!    round lost; else the write lands a request later still, and
//!    whatever another invocation wrote in between is erased (the state is
//!    last-writer-wins here);
//! 4. `CheckState` reads the state (a request later): [`VERIFY_AFTER`](sqs_barrier_core::lambda::VERIFY_AFTER)
//!    after a write, to verify it (a round whose write is no longer
//!    included is lost), or after a failed write, to see whether it landed;
//! 5. the machine starts lost rounds again, at most [`MAX_RACES`](sqs_barrier_core::lambda::MAX_RACES), and ends
//!    with the records to answer as `batchItemFailures`, or fails.
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
//! As the handler does, every invocation first takes the coordinators'
//! lease (simulation/lease.rs, over the lease queue of simulation/sqs.rs,
//! the same as process coordinators): the token is in flight under one
//! invocation's receive at a time, for its round; one that does not get it
//! within 3 s (it polls every 50 to 200 ms) hands its batch back; a
//! returning one gives it back; a killed one's runs out 10 s after it took
//! it. The invocation checks its lease (the core's `Lease` machine) before
//! every request, and fails once it has run out (its rounds are short: it
//! does not extend). Holding it, a round writes without the verification
//! (no other invocation writes meanwhile). The runs `*_without_the_lease`
//! let invocations overlap, with the verification, as the handler did
//! before the lease: they keep exploring the races the machine still
//! handles.
//!
//! The checks of every run apply (simulation/checks.rs), among them that no
//! two members learn different outcomes of one generation
//! (`check_no_split`) and that no two coordinators hold the lease at once.
//!
//! Requests take 5 to 100 ms here, so a write never lands more than 250 ms
//! after its check: the verification catches every erased write. A write
//! delayed longer (SDK retries) can erase another invocation's write
//! unseen; docs/PROTOCOL.md ("Known limits") says what that costs, and the
//! simulation does not explore it.

use std::collections::HashMap;

use rand::Rng;

use sqs_barrier_core::lambda::{
    Ending, Event as LEvent, LambdaOptions, LambdaRound, Record, Transmit as LTransmit,
};
use sqs_barrier_core::participant::Outcome;
use sqs_barrier_core::state::PublishedState;

use super::lease::Holder;
use super::{Faults, Plot, SEC, Sim, VISIBILITY, at, check_liveness, check_no_split, seeds};

/// The mapping's maximum concurrency (Lambda's least, as deployed).
const POLLERS: usize = 2;
/// How long an invocation waits for the lease (as the handler:
/// `LEASE_PATIENCE`).
const LEASE_PATIENCE: u64 = 3 * SEC;
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
    /// Invocation `i` tries to take the lease again.
    LeaseWait(u64),
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
    pub(super) const HOSTILE: LambdaFaults = LambdaFaults {
        kill: 0.01,
        error: 0.03,
    };
}

/// One record of a batch: the message id (the machine's token, as the
/// function's) and the receipt handle of the mapping's receive.
#[derive(Clone, Debug)]
struct Rec {
    id: u64,
    receipt: u64,
}

/// What an invocation is doing until its next step.
enum Step {
    /// Carrying out the machine's transmits (or waiting for its timeout).
    Run,
    /// The read of `ReadState` lands.
    Read,
    /// The check of `WriteState` reads the state.
    Check { state: Box<PublishedState> },
    /// The write lands.
    Land { state: Box<PublishedState> },
    /// The read of `CheckState` lands.
    CheckRead,
}

struct Invocation {
    /// The poller that invoked it (`None`: a tick).
    poller: Option<usize>,
    /// When it was invoked, and (with the lease) the lease once it holds
    /// it.
    invoked: u64,
    lease: Option<Holder>,
    /// Killed: it gives nothing back.
    killed: bool,
    records: Vec<Rec>,
    step: Step,
    round: LambdaRound<u64>,
}

/// The mapping, the schedule and the invocations under way; and what they
/// did (ghost counters).
#[derive(Default)]
pub(super) struct Deployment {
    active: bool,
    /// Invocations that handed their batch back without getting the lease.
    no_lease: u64,
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

impl Deployment {
    /// Ghost: how many invocations hold the lease at `now`.
    pub(super) fn holders(&self, now: u64) -> usize {
        self.invocations
            .values()
            .filter(|i| i.lease.as_ref().is_some_and(|h| h.lease.is_held(at(now))))
            .count()
    }
}

fn lambda_options(lease: bool) -> LambdaOptions {
    // As deployed: the schedule's interval, the check-in queue's
    // visibility; under the lease, no verification.
    let mut opts = LambdaOptions::default();
    opts.heartbeat = at(TICK_EVERY);
    opts.queue_visibility = at(VISIBILITY);
    opts.verify = !lease;
    opts
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
        sim.coordinate_by_lambda(lambda);
        sim
    }

    /// Makes a run just built coordinated by the Lambda function alone,
    /// with `lambda`'s faults.
    pub(super) fn coordinate_by_lambda(&mut self, lambda: LambdaFaults) {
        // No coordinator process: keep the members' first steps only.
        self.queue
            .retain(|e| !matches!(e.0.2, super::Actor::Coordinator(_)));
        self.lambda.active = true;
        self.lambda.faults = Some(lambda);
        for p in 0..POLLERS {
            self.schedule(p as u64 * 10, super::Actor::Lambda(Actor::Poller(p)));
        }
        self.schedule(TICK_EVERY, super::Actor::Lambda(Actor::Tick));
    }

    fn lambda_faults(&self) -> LambdaFaults {
        self.lambda.faults.unwrap_or(LambdaFaults::NONE)
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
            Actor::LeaseWait(i) => self.wait_for_lease(i),
        }
    }

    /// A poller's receive: up to 10 visible check-ins, in any order, hidden
    /// for the queue's visibility timeout; a batch invokes the function.
    fn poll(&mut self, p: usize) {
        let records = self.receive_checkins();
        if records.is_empty() {
            // A long poll returns as soon as a message comes; here it
            // polls again a moment later.
            let next = self.rng.random_range(5..200);
            self.schedule(next, super::Actor::Lambda(Actor::Poller(p)));
            return;
        }
        self.invoke(Some(p), records);
    }

    /// Invokes the function: with a batch of `(message id, receipt, body)`
    /// from poller `poller`, or with a tick.
    fn invoke(&mut self, poller: Option<usize>, batch: Vec<(u64, u64, String)>) {
        self.lambda.next += 1;
        self.lambda.started += 1;
        let i = self.lambda.next;
        let n = batch.len();
        self.log(|| format!("invocation {i} with {n} records"));
        let records = batch
            .iter()
            .map(|(id, receipt, _)| Rec {
                id: *id,
                receipt: *receipt,
            })
            .collect();
        let batch = batch
            .into_iter()
            .map(|(id, _, body)| Record::new(id, body))
            .collect();
        let opts = lambda_options(self.leasing.on);
        let round = LambdaRound::new(self.cfg.clone(), format!("l{i}"), opts, batch);
        self.lambda.invocations.insert(
            i,
            Invocation {
                poller,
                invoked: self.now,
                lease: None,
                killed: false,
                records,
                step: Step::Run,
                round,
            },
        );
        self.lambda.max_concurrent = self
            .lambda
            .max_concurrent
            .max(self.lambda.invocations.len());
        if self.leasing.on {
            self.wait_for_lease(i);
        } else {
            // Its first request (the state read) is a request away.
            self.advance(i);
        }
    }

    /// Invocation `i` tries to take the lease (`Sim::take_lease`: a token
    /// nobody holds). Else it tries again 50 to 200 ms later, for
    /// [`LEASE_PATIENCE`], then hands its batch back.
    fn wait_for_lease(&mut self, i: u64) {
        let mut inv = self.lambda.invocations.remove(&i).expect("running");
        if let Some(h) = self.take_lease() {
            inv.lease = Some(h);
            self.log(|| format!("invocation {i} takes the lease"));
            self.lambda.invocations.insert(i, inv);
            self.advance(i);
        } else if self.now.saturating_sub(inv.invoked) >= LEASE_PATIENCE {
            self.log(|| format!("invocation {i} hands its batch back: no lease"));
            self.lambda.no_lease += 1;
            let all = inv.records.iter().map(|r| r.id).collect();
            self.end_invocation(inv, Some(all));
        } else {
            let next = self.rng.random_range(50..=200);
            self.lambda.invocations.insert(i, inv);
            self.schedule(next, super::Actor::Lambda(Actor::LeaseWait(i)));
        }
    }

    fn step_invocation(&mut self, i: u64) {
        let now = at(self.now);
        let mut inv = self.lambda.invocations.remove(&i).expect("running");
        if self.chance(self.lambda_faults().kill) {
            self.log(|| format!("invocation {i} is killed"));
            self.lambda.killed += 1;
            inv.killed = true;
            self.end_invocation(inv, None);
            return;
        }
        if inv.lease.as_ref().is_some_and(|h| !self.holds(h)) {
            // The handler checks its lease before every request: run out,
            // the invocation fails and its whole batch comes back.
            self.log(|| format!("invocation {i}'s lease ran out"));
            self.lambda.failed += 1;
            inv.killed = true;
            self.end_invocation(inv, None);
            return;
        }
        match std::mem::replace(&mut inv.step, Step::Run) {
            Step::Run => inv.round.handle_timeout(now),
            Step::Read => inv
                .round
                .handle_state_read(None, self.sqs.tags.as_ref(), now),
            Step::Check { state } => {
                let guard = inv.round.write_guard().expect("a round writes");
                let current = self.sqs.tags.clone();
                if let Some(other) = current.filter(|o| !guard.allows(Some(o))) {
                    inv.round.handle_write_refused(&other, now);
                } else if self.chance(self.faults.write_fail) {
                    // The write fails (half the time after taking effect):
                    // the machine reads the state to see whether it landed.
                    self.log(|| format!("invocation {i}'s write fails"));
                    if self.rng.random_bool(0.5) {
                        self.publish((*state).clone());
                    }
                    inv.round.handle_write_failed();
                } else {
                    inv.step = Step::Land { state };
                    let land = self.request();
                    self.park(i, inv, land);
                    return;
                }
            }
            Step::Land { state } => {
                self.log(|| {
                    format!(
                        "invocation {i} writes: released below {}, open {:?}",
                        state.released_below,
                        state.open.as_ref().map(|o| (o.generation, o.arrived.len()))
                    )
                });
                self.publish(*state);
                inv.round.handle_state_written(now);
            }
            Step::CheckRead => inv.round.handle_check(self.sqs.tags.as_ref()),
        }
        self.lambda.invocations.insert(i, inv);
        self.advance(i);
    }

    /// Puts invocation `i` back, to take its next step `after` ms from now.
    fn park(&mut self, i: u64, inv: Invocation, after: u64) {
        self.lambda.invocations.insert(i, inv);
        self.schedule(after, super::Actor::Lambda(Actor::Invocation(i)));
    }

    /// Carries out invocation `i`'s transmits up to the next request (a
    /// read or a write, a request later), or to its timeout, or to its end.
    fn advance(&mut self, i: u64) {
        let mut inv = self.lambda.invocations.remove(&i).expect("running");
        let mut next = None;
        while let Some(t) = inv.round.poll_transmit() {
            match t {
                LTransmit::ReadState => next = Some(Step::Read),
                LTransmit::WriteState { state } => next = Some(Step::Check { state }),
                LTransmit::CheckState => next = Some(Step::CheckRead),
                LTransmit::Notify { generation, body } => {
                    self.log(|| format!("invocation {i} notifies {generation}: {body}"));
                    self.send_notice((generation % 2) as usize, body);
                }
                LTransmit::Sweep { generation, below } => {
                    self.sweep((generation % 2) as usize, below);
                }
                // The mapping deletes it: it is not among the failures.
                LTransmit::DeadLetter { .. } => {}
            }
            if next.is_some() {
                break;
            }
        }
        while let Some(e) = inv.round.poll_event() {
            self.log(|| format!("invocation {i}: {e:?}"));
            if let LEvent::Lost { round, erased, .. } = e {
                if erased {
                    self.lambda.lost_at_verify += 1;
                } else {
                    self.lambda.lost_at_check += 1;
                }
                self.log(|| format!("invocation {i} loses round {round}"));
            }
        }
        if let Some(step) = next {
            inv.step = step;
            let after = self.request();
            self.park(i, inv, after);
            return;
        }
        if let Some(ending) = inv.round.ending() {
            self.log(|| format!("invocation {i} ends: {ending:?}"));
        }
        match inv.round.ending().cloned() {
            Some(Ending::Answered { failures }) => {
                if self.chance(self.lambda_faults().error) {
                    self.lambda.failed += 1;
                    self.end_invocation(inv, None);
                    return;
                }
                self.lambda.handed_back += failures.len() as u64;
                self.end_invocation(inv, Some(failures));
            }
            Some(Ending::GaveUp { failures }) => {
                // Kept losing: hand everything back.
                self.lambda.gave_up += 1;
                self.end_invocation(inv, Some(failures));
            }
            Some(Ending::WriteFailed) => {
                self.lambda.failed += 1;
                self.end_invocation(inv, None);
            }
            None => {
                let Some(until) = inv.round.poll_timeout() else {
                    self.fail(&format!("invocation {i} is stuck"));
                };
                let after = (until.as_millis() as u64).saturating_sub(self.now);
                inv.step = Step::Run;
                self.park(i, inv, after);
            }
        }
    }

    /// The invocation returns: with `failures` named (the mapping deletes
    /// every other record), or failed (`None`: it deletes nothing). Its
    /// poller polls again.
    fn end_invocation(&mut self, inv: Invocation, failures: Option<Vec<u64>>) {
        // A returning invocation gives the lease back; a killed one keeps
        // it until its visibility lapses.
        if let Some(h) = inv.lease.filter(|_| !inv.killed) {
            self.give_back(h);
        }
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
/// first status read (120 s). No split outcome (`check_liveness` checks
/// that too).
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
    let t = hostile_runs(true);
    if std::env::var("SIM_SEED").is_err() && std::env::var("SIM_SEEDS").is_err() {
        // Under the lease no two rounds overlap: no race is ever lost, and
        // some invocations waited for it in vain.
        assert_eq!((t.lost_at_check, t.lost_at_verify), (0, 0));
        assert!(t.no_lease > 0, "no invocation ever waited for the lease");
    }
}

/// The same runs with invocations that overlap freely (no lease, the
/// verification on): the races the round machine still handles.
#[test]
fn lambda_hostile_runs_without_the_lease_are_safe_and_live() {
    let t = hostile_runs(false);
    if std::env::var("SIM_SEED").is_err() && std::env::var("SIM_SEEDS").is_err() {
        assert!(
            t.lost_at_check > 100,
            "{} races lost at the check",
            t.lost_at_check
        );
        assert!(t.lost_at_verify > 10, "{} writes erased", t.lost_at_verify);
    }
}

fn hostile_runs(lease: bool) -> Deployment {
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
        sim.leasing.on = lease;
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
        totals.no_lease += l.no_lease;
        totals.max_concurrent = totals.max_concurrent.max(l.max_concurrent);
    }
    let t = &totals;
    println!(
        "lambda, hostile, lease {lease}: {releases} releases; {} invocations ({} ticks, at \
         most {} at once, {} without the lease), {} rounds lost at the check and {} at the \
         verification, {} invocations gave up, {} killed, {} failed, {} records handed back; \
         slowest release {:.1} s after the last arrival",
        t.started,
        t.ticks,
        t.max_concurrent,
        t.no_lease,
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
            t.killed > 100 && t.failed > 100,
            "{} killed, {} failed",
            t.killed,
            t.failed
        );
    }
    totals
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
        check_no_split(&sim);
        earlier += usize::from(broken_at.is_some_and(|b| b < at_gen));
    }
    println!("lambda, abort or deadline: {earlier} runs broken before the stalled generation");
}
