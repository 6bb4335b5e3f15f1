//! The soak harness: participants, a coordinator that gets killed and
//! restarted, a history of every arrival and release, and its checker.
//!
//! It uses only the library (`sqs_barrier`) and the embedded endpoint, so it
//! does not depend on the CLI; the tests add OS processes of the CLI on top
//! ([`ProcessSupervisor`] runs the binary they name). The CLI's `soak` and
//! `bad_input` tests use it. It is behind the test kit's `harness` feature,
//! which brings in the barrier library.
//!
//! Besides kills, the supervisors can cut the active coordinator off its
//! state queue for a while ([`Partitions`]): each coordinator then reaches
//! the endpoint through a [`StateCut`] of its own, and the endpoint's fault
//! injection ([`partition_rule`]) fails the state-queue requests of the one
//! whose cut is on.

mod cut;
mod supervisor;

pub use cut::{PARTITIONED_KEY, Partitions, StateCut, partition_rule};
pub use supervisor::{ProcessSupervisor, Supervisor};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqs_barrier::core::participant::ParticipantOptions;
use sqs_barrier::{Barrier, CoordinatorGauges, CoordinatorOptions, Error, Sqs};

/// What happened to a member at a generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// About to check in (recorded before the check-in is sent).
    Arrive,
    /// The wait returned: released.
    Release,
    /// The wait failed with an expected, typed error and is run again.
    Retry(String),
    /// The member stopped: the reason.
    GaveUp(String),
}

/// One entry of the history.
#[derive(Clone, Debug)]
pub struct Record {
    /// The member's number.
    pub member: usize,
    /// The generation (phase) it was at.
    pub generation: u64,
    /// What happened.
    pub event: Event,
    /// Since the history began, from a monotonic clock.
    pub at: Duration,
}

/// Every arrival and release, in the order recorded.
#[derive(Debug)]
pub struct History {
    t0: Instant,
    records: Mutex<Vec<Record>>,
}

impl History {
    /// An empty history; its clock starts now.
    pub fn new() -> Arc<Self> {
        Arc::new(History {
            t0: Instant::now(),
            records: Mutex::new(Vec::new()),
        })
    }

    /// Adds a record, stamped now.
    pub fn record(&self, member: usize, generation: u64, event: Event) {
        let mut records = self.records.lock().unwrap();
        // Taken under the lock: records are in timestamp order.
        let at = self.t0.elapsed();
        tracing::info!(target: "soak", member, generation, ?event, "history");
        records.push(Record {
            member,
            generation,
            event,
            at,
        });
    }

    /// A copy of the records so far.
    pub fn snapshot(&self) -> Vec<Record> {
        self.records.lock().unwrap().clone()
    }

    /// `at` on the history's clock (records' `at`).
    pub fn since_start(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.t0)
    }
}

/// For each coordinator kill, how long until the next release (any
/// member's): the recovery it cost, since episodes follow each other with
/// little work between. Sorted.
pub fn recoveries(history: &History, records: &[Record], killed_at: &[Instant]) -> Vec<Duration> {
    let mut out: Vec<Duration> = killed_at
        .iter()
        .filter_map(|k| {
            let k = history.since_start(*k);
            records
                .iter()
                .find(|r| r.at >= k && r.event == Event::Release)
                .map(|r| r.at - k)
        })
        .collect();
    out.sort();
    out
}

/// What the checker found.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Releases recorded.
    pub releases: usize,
    /// Arrivals recorded.
    pub arrivals: usize,
    /// Expected errors, by kind, that made a member run a wait again.
    pub retries: BTreeMap<String, u64>,
    /// Violations: early releases, lost members, unexpected errors.
    pub problems: Vec<String>,
}

impl Verdict {
    /// Panics with the first problems if there are any.
    pub fn assert_ok(&self) {
        assert!(
            self.problems.is_empty(),
            "{} problems, first ones:\n{}",
            self.problems.len(),
            self.problems
                .iter()
                .take(20)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// Checks a history of `members` members going through `episodes`
/// generations:
///
/// * no early release: every release of generation g comes after every
///   member's first arrival at g;
/// * no lost member: every member is released at every generation, once,
///   in order; otherwise the member and its last word are reported;
/// * every wait ended released or with an expected error (a `GaveUp` is a
///   problem, `Retry` reasons are tallied).
pub fn check(history: &[Record], members: usize, episodes: u64) -> Verdict {
    let mut v = Verdict::default();
    // generation -> member -> first arrival
    let mut first_arrival: BTreeMap<u64, BTreeMap<usize, Duration>> = BTreeMap::new();
    let mut released: BTreeMap<(usize, u64), usize> = BTreeMap::new();
    let mut last_word: BTreeMap<usize, String> = BTreeMap::new();
    let mut next_release = vec![0u64; members];
    for r in history {
        match &r.event {
            Event::Arrive => {
                v.arrivals += 1;
                first_arrival
                    .entry(r.generation)
                    .or_default()
                    .entry(r.member)
                    .or_insert(r.at);
            }
            Event::Release => {
                v.releases += 1;
                *released.entry((r.member, r.generation)).or_default() += 1;
                if r.generation != next_release[r.member] {
                    v.problems.push(format!(
                        "member {} released at generation {} but expected {}",
                        r.member, r.generation, next_release[r.member]
                    ));
                }
                next_release[r.member] = r.generation + 1;
                let arrivals = first_arrival.get(&r.generation);
                for m in 0..members {
                    match arrivals.and_then(|a| a.get(&m)) {
                        Some(at) if *at < r.at => {}
                        Some(at) => v.problems.push(format!(
                            "EARLY RELEASE: member {} released at generation {} at {:?}, before member {m} arrived at {:?}",
                            r.member, r.generation, r.at, at
                        )),
                        None => v.problems.push(format!(
                            "EARLY RELEASE: member {} released at generation {} at {:?}, member {m} had not arrived",
                            r.member, r.generation, r.at
                        )),
                    }
                }
            }
            Event::Retry(why) => {
                *v.retries.entry(why.clone()).or_default() += 1;
                last_word.insert(r.member, why.clone());
            }
            Event::GaveUp(why) => {
                v.problems.push(format!(
                    "member {} gave up at generation {}: {why}",
                    r.member, r.generation
                ));
                last_word.insert(r.member, why.clone());
            }
        }
    }
    for m in 0..members {
        let done = (0..episodes)
            .filter(|g| released.contains_key(&(m, *g)))
            .count() as u64;
        if done != episodes {
            let first_missing = (0..episodes)
                .find(|g| !released.contains_key(&(m, *g)))
                .unwrap_or(0);
            v.problems.push(format!(
                "LOST MEMBER: member {m} completed {done} of {episodes} generations (first missing: {first_missing}; last error: {})",
                last_word.get(&m).map_or("none", String::as_str)
            ));
        }
    }
    for ((m, g), n) in &released {
        if *n > 1 {
            v.problems
                .push(format!("member {m} released {n} times at generation {g}"));
        }
    }
    v
}

/// Counters shared by the harness's tasks.
#[derive(Debug, Default)]
pub struct Stats {
    /// Participants restarted mid-wait.
    pub participant_restarts: AtomicU64,
    /// Active coordinators killed.
    pub coordinator_kills: AtomicU64,
    /// When each active coordinator was killed.
    pub killed_at: Mutex<Vec<Instant>>,
    /// Coordinator runs that ended by themselves, by error kind.
    pub coordinator_exits: Mutex<BTreeMap<String, u64>>,
    /// Partitions made: the active coordinator cut off its state queue.
    pub partitions: AtomicU64,
    /// When each partition began and ended.
    pub partitioned: Mutex<Vec<(Instant, Instant)>>,
    /// Partitions at whose end the coordinator cut off was no longer the
    /// active one (another took over, or it lost its lease and took it
    /// again).
    pub partition_handovers: AtomicU64,
}

/// Classifies an error of a wait: `Ok(kind)` if it is one a participant is
/// expected to see under faults (and retries), `Err(text)` if not.
pub fn classify(e: &Error) -> Result<String, String> {
    match e {
        Error::Unreachable { .. } => Ok("Unreachable".into()),
        Error::Sqs {
            operation, detail, ..
        } if e.is_transient() => Ok(format!(
            "Sqs {operation}: {}",
            detail.split(':').next().unwrap_or("?")
        )),
        Error::CoordinatorSilent { .. } => Ok("CoordinatorSilent".into()),
        Error::TimedOut { .. } => Ok("TimedOut".into()),
        other => Err(format!("unexpected error: {other}")),
    }
}

/// How a participant task behaves.
#[derive(Clone, Debug)]
pub struct MemberPlan {
    /// Generations to go through.
    pub episodes: u64,
    /// The participant's options.
    pub opts: ParticipantOptions,
    /// Timeout of one wait.
    pub wait_timeout: Duration,
    /// Chance per episode of a restart mid-wait (the arrival and handle are
    /// dropped and a new handle re-runs the same phase).
    pub restart_probability: f64,
    /// Most consecutive failed attempts at one generation before giving up.
    pub max_attempts: u32,
    /// Wait before each arrival (work), up to this long.
    pub max_work: Duration,
}

async fn connect(
    sqs: &Sqs,
    barrier: &str,
    member: usize,
    opts: &ParticipantOptions,
) -> Result<Barrier, String> {
    let mut last = String::new();
    for _ in 0..20 {
        match Barrier::connect_with(sqs, barrier, &member.to_string(), opts.clone()).await {
            Ok(b) => return Ok(b),
            Err(e) => match classify(&e) {
                Ok(kind) => last = kind,
                Err(text) => return Err(text),
            },
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("could not connect: {last}"))
}

/// One member as a task: goes through `plan.episodes` generations,
/// recording every arrival and release.
pub async fn run_member(
    sqs: Sqs,
    barrier: String,
    member: usize,
    plan: MemberPlan,
    history: Arc<History>,
    stats: Arc<Stats>,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut handle = match connect(&sqs, &barrier, member, &plan.opts).await {
        Ok(b) => b,
        Err(e) => return history.record(member, 0, Event::GaveUp(e)),
    };
    for g in 0..plan.episodes {
        if !plan.max_work.is_zero() {
            let work = rng.random_range(0..=plan.max_work.as_millis() as u64);
            tokio::time::sleep(Duration::from_millis(work)).await;
        }
        let mut failures = 0u32;
        loop {
            handle.set_next_phase(g);
            history.record(member, g, Event::Arrive);
            let outcome = match handle.arrive(Some(plan.wait_timeout)).await {
                Ok(arrival) => {
                    if rng.random_bool(plan.restart_probability) {
                        // A crash mid-wait: drop everything, start again.
                        let after = rng.random_range(0..300);
                        tokio::time::sleep(Duration::from_millis(after)).await;
                        drop(arrival);
                        stats.participant_restarts.fetch_add(1, Ordering::Relaxed);
                        handle = match connect(&sqs, &barrier, member, &plan.opts).await {
                            Ok(b) => b,
                            Err(e) => return history.record(member, g, Event::GaveUp(e)),
                        };
                        continue;
                    }
                    arrival.await
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(released) => {
                    if released.generation != g {
                        history.record(
                            member,
                            g,
                            Event::GaveUp(format!("released at {} instead", released.generation)),
                        );
                        return;
                    }
                    history.record(member, g, Event::Release);
                    break;
                }
                Err(e) => match classify(&e) {
                    Ok(kind) => {
                        history.record(member, g, Event::Retry(kind));
                        failures += 1;
                        if failures >= plan.max_attempts {
                            history.record(
                                member,
                                g,
                                Event::GaveUp(format!("{failures} failed attempts; last: {e}")),
                            );
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(text) => {
                        history.record(member, g, Event::GaveUp(text));
                        return;
                    }
                },
            }
        }
    }
}

/// Coordinator settings for soak runs: a short visibility timeout so the
/// check-ins a killed coordinator held come back within 2 s, frequent
/// heartbeats, and the plain start (no `force`): a restarted coordinator
/// stands by or takes over by itself.
pub fn soak_coordinator_options(gauges: Arc<CoordinatorGauges>) -> CoordinatorOptions {
    let mut o = CoordinatorOptions::default();
    o.core.heartbeat = Duration::from_millis(500);
    o.core.min_write_interval = Duration::from_millis(100);
    o.visibility = Duration::from_secs(2);
    o.busy_wait = Duration::from_secs(2);
    o.gauges = Some(gauges);
    o
}

/// Participant settings for soak runs: read the coordinator's state every
/// 2 s (not 80: a lost check-in or notice is sent again within 2 s), call a
/// coordinator silent after 15 s.
pub fn soak_participant_options() -> ParticipantOptions {
    let mut o = ParticipantOptions::default();
    o.silence_after = Duration::from_secs(15);
    o.status_interval = Duration::from_secs(2);
    o
}
/// Resource figures of this process, to compare start and end of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Resources {
    /// Resident set size (VmRSS), KiB.
    pub rss_kib: u64,
    /// Open file descriptors.
    pub open_fds: usize,
    /// Alive tokio tasks of the current runtime (0 outside one).
    pub tasks: usize,
    /// Established TCP connections to `port` (the endpoint's side).
    pub connections: usize,
}

/// This process's [`Resources`] now; `port` is the endpoint's port.
pub fn resources(port: u16) -> Resources {
    let rss_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count());
    let tasks = tokio::runtime::Handle::try_current().map_or(0, |h| h.metrics().num_alive_tasks());
    let port_hex = format!(":{port:04X}");
    let connections = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| {
            s.lines()
                .skip(1)
                .filter(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() > 3 && f[1].ends_with(&port_hex) && f[3] == "01"
                })
                .count()
        })
        .sum::<usize>();
    Resources {
        rss_kib,
        open_fds,
        tasks,
        connections,
    }
}

/// Peak RSS of this process (VmHWM), KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
