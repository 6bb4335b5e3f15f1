//! The soak harness: participants, a coordinator that gets killed and
//! restarted, a history of every arrival and release, and its checker.
//!
//! It uses only the library (`sqs_barrier`) and the embedded endpoint, so it
//! does not depend on the CLI; the tests add OS processes of the CLI on top
//! ([`ProcessSupervisor`] runs the binary they name). The CLI's `soak` and
//! `bad_input` tests use it. It is behind the test kit's `harness` feature,
//! which brings in the barrier library.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqs_barrier::core::participant::ParticipantOptions;
use sqs_barrier::{Barrier, CoordinatorGauges, CoordinatorOptions, Error, Sqs};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

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

/// Runs two in-process coordinators, one active and one standing by, and
/// kills whichever is active (aborts its task: like `kill -9`, the check-ins
/// it held are not handed back) at random intervals, restarting it after a
/// random pause with the plain start: it stands by (the other took over) or
/// takes over itself.
pub struct Supervisor {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Each coordinator's live figures.
    pub gauges: Vec<Arc<CoordinatorGauges>>,
}

impl Supervisor {
    /// `kill_every`: range of ms between kills; `None`: never kill.
    pub fn start(
        sqs: Sqs,
        barrier: String,
        opts: CoordinatorOptions,
        kill_every: Option<(u64, u64)>,
        stats: Arc<Stats>,
        seed: u64,
    ) -> Self {
        let (stop, stopping) = watch::channel(false);
        let gauges: Vec<_> = (0..2)
            .map(|_| Arc::new(CoordinatorGauges::default()))
            .collect();
        let kills: Vec<_> = (0..2).map(|_| Arc::new(Notify::new())).collect();
        let mut tasks = Vec::new();
        for k in 0..2 {
            let mut o = opts.clone();
            o.gauges = Some(gauges[k].clone());
            let mine = gauges[k].clone();
            let (sqs, barrier, stats, kill) = (
                sqs.clone(),
                barrier.clone(),
                stats.clone(),
                kills[k].clone(),
            );
            let mut stopping = stopping.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed ^ k as u64);
                // The second one starts a little later: it stands by.
                tokio::time::sleep(Duration::from_millis(500 * k as u64)).await;
                loop {
                    let (sqs2, name, o) = (sqs.clone(), barrier.clone(), o.clone());
                    let mut stop_rx = stopping.clone();
                    let mut run = tokio::spawn(async move {
                        let stop = async move {
                            let _ = stop_rx.wait_for(|s| *s).await;
                        };
                        sqs_barrier::run_coordinator(&sqs2, &name, o, None, stop).await
                    });
                    tokio::select! {
                        r = &mut run => {
                            let is_stopping = { *stopping.borrow() };
                            let kind = match r {
                                Ok(Ok(())) if is_stopping => return,
                                Ok(Ok(())) => "stopped by itself".to_owned(),
                                Ok(Err(e)) if e.is_transient() => format!("transient: {}", classify(&e).unwrap_or_default()),
                                Ok(Err(e)) => format!("FATAL: {e}"),
                                Err(e) => format!("PANIC: {e}"),
                            };
                            *stats.coordinator_exits.lock().unwrap().entry(kind).or_default() += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        _ = kill.notified() => {
                            run.abort();
                            let _ = run.await;
                            // Gone, as a killed process is: its figures with it
                            // (a successor counts what it held again).
                            mine.held.store(0, Ordering::Relaxed);
                            mine.receipts.store(0, Ordering::Relaxed);
                            tracing::info!(target: "soak", slot = k, "active coordinator killed");
                            stats.coordinator_kills.fetch_add(1, Ordering::Relaxed);
                            stats.killed_at.lock().unwrap().push(Instant::now());
                            let pause = rng.random_range(0..300);
                            tokio::time::sleep(Duration::from_millis(pause)).await;
                        }
                        _ = stopped(&mut stopping) => {
                            let _ = run.await;
                            return;
                        }
                    }
                }
            }));
        }
        if let Some((a, b)) = kill_every {
            let (gauges, mut stopping) = (gauges.clone(), stopping.clone());
            tasks.push(tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed ^ 0x4b11);
                // Each active coordinator lives a random time from when it
                // took over: a kill during a takeover would only measure
                // the next one.
                let active = |g: &[Arc<CoordinatorGauges>]| {
                    (0..2)
                        .find(|k| g[*k].active.load(Ordering::Relaxed))
                        .map(|k| (k, g[k].takeovers.load(Ordering::Relaxed)))
                };
                loop {
                    let target = loop {
                        if let Some(t) = active(&gauges) {
                            break t;
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                            _ = stopped(&mut stopping) => return,
                        }
                    };
                    let pause = Duration::from_millis(rng.random_range(a..=b));
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stopped(&mut stopping) => return,
                    }
                    if active(&gauges) == Some(target) {
                        kills[target.0].notify_one();
                        // Until it is gone.
                        while active(&gauges) == Some(target) {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            }));
        }
        Supervisor {
            stop,
            tasks,
            gauges,
        }
    }

    /// Check-ins the coordinators hold, in all.
    pub fn held(gauges: &[Arc<CoordinatorGauges>]) -> usize {
        gauges.iter().map(|g| g.held.load(Ordering::Relaxed)).sum()
    }

    /// Stops the coordinators cleanly.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

/// Runs two coordinators as OS processes (`sqs-barrier coordinator`, the
/// plain start), one active and one standing by, and kills whichever is
/// active with SIGKILL at random intervals, restarting it after a random
/// pause: a real `kill -9` (the process dies with its connections, held
/// check-ins come back after the 2 s visibility timeout). Which one is
/// active is read from the published state (its id ends in `/PID`).
pub struct ProcessSupervisor {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl ProcessSupervisor {
    /// Starts the two coordinator processes of the binary at `bin` for
    /// `barrier` on the endpoint at `url`, and the killer; `kill_every`:
    /// range of ms between kills.
    pub fn start(
        bin: &'static str,
        url: String,
        barrier: String,
        kill_every: (u64, u64),
        stats: Arc<Stats>,
        seed: u64,
    ) -> Self {
        let (stop, stopping) = watch::channel(false);
        let pids: Arc<Mutex<[Option<u32>; 2]>> = Arc::default();
        let kills: Vec<_> = (0..2).map(|_| Arc::new(Notify::new())).collect();
        let mut tasks = Vec::new();
        for (k, kill) in kills.iter().enumerate() {
            let (url, barrier, stats, kill, pids) = (
                url.clone(),
                barrier.clone(),
                stats.clone(),
                kill.clone(),
                pids.clone(),
            );
            let mut stopping = stopping.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed ^ k as u64);
                let traced = std::env::var_os("SOAK_LOG").is_some();
                tokio::time::sleep(Duration::from_millis(500 * k as u64)).await;
                loop {
                    let mut child = tokio::process::Command::new(bin)
                        .args(["--endpoint-url", &url, "coordinator", "--barrier", &barrier])
                        .args(["--heartbeat", "0.5", "--visibility", "2"])
                        .env("AWS_ACCESS_KEY_ID", "local")
                        .env("AWS_SECRET_ACCESS_KEY", "local")
                        .env("AWS_REGION", "us-east-1")
                        .env("AWS_EC2_METADATA_DISABLED", "true")
                        .env_remove("AWS_PROFILE")
                        // With SOAK_LOG, its debug log goes into the timeline.
                        .env("SQS_BARRIER_LOG", if traced { "sqs_barrier=debug" } else { "info" })
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::piped())
                        .kill_on_drop(true)
                        .spawn()
                        .expect("spawn sqs-barrier coordinator");
                    let pid = child.id();
                    pids.lock().unwrap()[k] = child.id();
                    // Drain stderr (the coordinator logs at info): keep the
                    // last line, for an unexpected exit.
                    let stderr = child.stderr.take();
                    let last_line = tokio::spawn(async move {
                        use tokio::io::AsyncBufReadExt as _;
                        let mut last = String::new();
                        if let Some(e) = stderr {
                            let mut lines = tokio::io::BufReader::new(e).lines();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if traced {
                                    tracing::info!(target: "soak", slot = k, ?pid, "coordinator: {l}");
                                }
                                last = l;
                            }
                        }
                        last
                    });
                    tokio::select! {
                        status = child.wait() => {
                            let last = last_line.await.unwrap_or_default();
                            let last: String = last.chars().take(80).collect();
                            let code = status.ok().and_then(|s| s.code());
                            let kind = match code {
                                Some(c @ (5 | 6)) => format!("transient: exit {c}: {last}"),
                                other => format!("FATAL: exit {other:?}: {last}"),
                            };
                            *stats.coordinator_exits.lock().unwrap().entry(kind).or_default() += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        _ = kill.notified() => {
                            let _ = child.start_kill(); // SIGKILL
                            let _ = child.wait().await;
                            tracing::info!(target: "soak", slot = k, "active coordinator process killed");
                            stats.coordinator_kills.fetch_add(1, Ordering::Relaxed);
                            stats.killed_at.lock().unwrap().push(Instant::now());
                            let pause = rng.random_range(0..300);
                            tokio::time::sleep(Duration::from_millis(pause)).await;
                        }
                        _ = stopped(&mut stopping) => {
                            let _ = child.start_kill();
                            let _ = child.wait().await;
                            return;
                        }
                    }
                }
            }));
        }
        let mut stopping = stopping.clone();
        tasks.push(tokio::spawn(async move {
            let sqs = Sqs::local(&url);
            let info = loop {
                match sqs_barrier::admin::open(&sqs, &barrier).await {
                    Ok(i) => break i,
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            };
            let mut rng = StdRng::seed_from_u64(seed ^ 0x4b11);
            // The active coordinator, as the published state names it (its
            // id ends in `/PID`): slot and id.
            let active = async |sqs: &Sqs| {
                let state = sqs_barrier::admin::read_state(sqs, &info)
                    .await
                    .ok()
                    .flatten()
                    .filter(|s| !s.stopped)?;
                let current = *pids.lock().unwrap();
                (0..2)
                    .find(|k| {
                        current[*k]
                            .is_some_and(|pid| state.coordinator.ends_with(&format!("/{pid}")))
                    })
                    .map(|k| (k, state.coordinator))
            };
            // Each active coordinator lives a random time from when it took
            // over (first named by the state): a kill during a takeover
            // would only measure the next one.
            let mut killed: Option<String> = None;
            loop {
                let target = loop {
                    if let Some(t) = active(&sqs).await.filter(|t| Some(&t.1) != killed.as_ref()) {
                        break t;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        _ = stopped(&mut stopping) => return,
                    }
                };
                let pause = Duration::from_millis(rng.random_range(kill_every.0..=kill_every.1));
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stopped(&mut stopping) => return,
                }
                if active(&sqs).await.as_ref() == Some(&target) {
                    kills[target.0].notify_one();
                    killed = Some(target.1);
                }
            }
        }));
        ProcessSupervisor { stop, tasks }
    }

    /// Stops the coordinator processes and the killer.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

/// Resolves once `signal` is true; holds no `watch` guard across awaits.
async fn stopped(signal: &mut watch::Receiver<bool>) {
    let _ = signal.wait_for(|s| *s).await;
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
