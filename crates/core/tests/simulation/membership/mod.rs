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
//!
//! This file holds the scripts, the plan with its ghost records, the
//! figures and the scenarios; the scripted members' driver is in
//! membership/members.rs, the ghost expectations and the checks in
//! membership/checks.rs.

use std::collections::{BTreeMap, HashMap};

use super::lambda::LambdaFaults;
use super::lease::Leasing;
use super::{QueueStats, SEC, Sim, seeds};

mod checks;
mod members;

use checks::check_elastic;

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

/// (With process coordinators that rest whenever no decision is due
/// within `rest_after` alone, 26 of the first 200 seeds put a quorum's end
/// off for the rest of the run: each wake for it waits the grace again.)
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
