//! Soak: consecutive episodes of a 16-member barrier on the embedded
//! endpoint under combined fault injection, with two coordinators (one
//! active, one standing by, both started the plain way), the active one
//! killed a random time after it took over and restarted, again and again
//! (the recovery of each kill is reported), and participants restarting
//! mid-wait. Now and then the active coordinator, and only it, is cut off
//! its state queue for about 30 s (its state reads and writes fail,
//! everything else works) and then heals: a partition (`harness::Partitions`;
//! no kill happens during one). Every
//! arrival and release goes into a history that `harness::check` verifies:
//! no early release, no lost member, only expected errors.
//!
//! * `soak_short` runs in CI (`cargo test -p sqs-barrier-cli --test soak`).
//! * `soak_long` is the long run, with the coordinator as an OS process
//!   killed with SIGKILL (`SOAK_COORDINATOR=task` for an aborted task):
//!   `SOAK_EPISODES=1000 cargo test --release -p sqs-barrier-cli --test soak -- --ignored --nocapture`
//! * Both take `SOAK_SEED=N` (the faults, kills and partitions are drawn
//!   from it; the interleaving of requests still varies from run to run),
//!   and `SOAK_PARTITIONS=0` to leave the partitions out (to compare).
//! * `sigterm_coordinator_process_loses_no_checkin` SIGTERMs a coordinator
//!   process at random points and restarts it.
//!
//! To keep restarts cheap the coordinators use a 2 s visibility timeout
//! (default 5 s: a killed coordinator's unpublished check-ins reappear after
//! it; `coordinator --visibility 2` for the process) and a 0.5 s heartbeat,
//! the in-process ones long-poll 2 s while busy (default 5 s, which the
//! process keeps), and participants read the coordinator's state every 2 s
//! (default 120 s), which is what recovers a lost check-in or notice.
//! `SOAK_LOG=FILE` writes a timeline of the run.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqs_barrier::{CoordinatorGauges, Sqs, admin};
use sqs_barrier_local::{ChaosSpec, Options, Server};
use sqs_barrier_testkit::harness::{
    self, Event, History, MemberPlan, Partitions, ProcessSupervisor, Record, Stats, Supervisor,
};

const BIN: &str = env!("CARGO_BIN_EXE_sqs-barrier");

/// Every fault at once, at rates far above what AWS shows.
const CHAOS: &str = "receive.duplicate=0.05,receive.empty=0.05,receive.reorder=0.2,\
send.late=0.05:50-500,any.throttle=0.01,any.error=0.01,any.error_after=0.01,any.delay_ms=0-5";

struct Setup {
    episodes: u64,
    members: usize,
    /// How many of the members are OS processes of `sqs-barrier wait`.
    processes: usize,
    /// Range of ms between coordinator kills.
    kill_every: Option<(u64, u64)>,
    restart_probability: f64,
    /// The coordinator as an OS process killed with SIGKILL, instead of a
    /// task of this process that is aborted.
    coordinator_process: bool,
    /// Cutting the active coordinator off its state queue now and then.
    partitions: Option<Partitions>,
    seed: u64,
}

enum Coordinators {
    Task(Supervisor),
    Process(ProcessSupervisor),
}

async fn soak(setup: Setup) {
    let started = Instant::now();
    trace_to_file();
    // The partitions' rule first: it decides for the requests it matches.
    let spec: ChaosSpec = match setup.partitions {
        Some(_) => format!("{},{CHAOS}", harness::partition_rule()),
        None => CHAOS.to_owned(),
    }
    .parse()
    .unwrap();
    let server = Server::bind_with(
        "127.0.0.1:0".parse().unwrap(),
        Options::default().with_chaos(spec, Some(setup.seed)),
    )
    .await
    .unwrap();
    let port = server.local_addr().port();
    let url = server.endpoint_url();
    let sqs = Sqs::local(&url);
    let barrier = format!("soak{:x}", setup.seed & 0xffff);
    let mut attempts = 0;
    while let Err(e) = admin::setup(&sqs, &barrier, &admin::SetupOptions::new(setup.members)).await
    {
        attempts += 1;
        assert!(attempts < 20, "setup failed: {e}");
    }
    let history = History::new();
    let stats = Arc::new(Stats::default());
    let gauges = Arc::new(CoordinatorGauges::default());
    let supervisor = match (setup.coordinator_process, setup.kill_every) {
        (true, Some(every)) => Coordinators::Process(ProcessSupervisor::start_with_partitions(
            BIN,
            url.clone(),
            barrier.clone(),
            every,
            setup.partitions,
            stats.clone(),
            setup.seed ^ 1,
        )),
        _ => Coordinators::Task(Supervisor::start_with_partitions(
            sqs.clone(),
            barrier.clone(),
            harness::soak_coordinator_options(gauges.clone()),
            setup.kill_every,
            setup.partitions,
            stats.clone(),
            setup.seed ^ 1,
        )),
    };
    let before = harness::resources(port);
    let plan = MemberPlan {
        episodes: setup.episodes,
        opts: harness::soak_participant_options(),
        // A wait that stalls is re-run after 10 s (see docs/RELIABILITY.md).
        wait_timeout: Duration::from_secs(10),
        restart_probability: setup.restart_probability,
        max_attempts: 10,
        max_work: Duration::from_millis(20),
    };
    let mut members = Vec::new();
    let tasks = setup.members - setup.processes;
    for m in 0..setup.members {
        let (sqs, barrier, plan, history, stats) = (
            sqs.clone(),
            barrier.clone(),
            plan.clone(),
            history.clone(),
            stats.clone(),
        );
        let seed = setup.seed.wrapping_mul(31).wrapping_add(m as u64);
        members.push(if m < tasks {
            tokio::spawn(harness::run_member(
                sqs, barrier, m, plan, history, stats, seed,
            ))
        } else {
            let url = url.clone();
            tokio::spawn(run_process_member(
                url, barrier, m, plan, history, stats, seed,
            ))
        });
    }
    // Sample resources while it runs.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let gauges = match &supervisor {
            Coordinators::Task(s) => s.gauges.clone(),
            Coordinators::Process(_) => vec![gauges.clone()],
        };
        let done = done.clone();
        tokio::spawn(async move {
            let mut peak = (0usize, 0usize);
            let mut held = Vec::new();
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let r = harness::resources(port);
                peak.0 = peak.0.max(r.tasks);
                peak.1 = peak.1.max(r.connections);
                // The active coordinator's: a killed one's gauge keeps its
                // last figure while its successor in the slot stands by.
                let active: Vec<_> = gauges
                    .iter()
                    .filter(|g| g.active.load(Ordering::Relaxed))
                    .cloned()
                    .collect();
                let writes: u64 = gauges
                    .iter()
                    .map(|g| g.state_writes.load(Ordering::Relaxed))
                    .sum();
                held.push((Instant::now(), Supervisor::held(&active), writes));
                if done.load(Ordering::Relaxed) {
                    return (peak, held);
                }
            }
        })
    };
    for m in members {
        m.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let (peak, held) = sampler.await.unwrap();
    let during = harness::resources(port);
    match supervisor {
        Coordinators::Task(s) => s.stop().await,
        Coordinators::Process(s) => s.stop().await,
    }
    let records = history.snapshot();
    let verdict = harness::check(&records, setup.members, setup.episodes);
    let counts = server.chaos_counts().unwrap();
    let exits = stats.coordinator_exits.lock().unwrap().clone();
    let recoveries = harness::recoveries(&history, &records, &stats.killed_at.lock().unwrap());
    let pct = |p: f64| percentile(&recoveries, p);
    let windows = stats.partitioned.lock().unwrap().clone();
    let cuts = partition_figures(
        &history,
        &records,
        &windows,
        stats.partition_handovers.load(Ordering::Relaxed),
    );
    // Check-ins held outside partitions and their aftermath. The first
    // state write after a cut records what was released meanwhile, and the
    // check-ins of those generations are deleted. If the coordinator dies
    // before it, its successor (after the lease's 10 s) receives every one
    // of them again and holds them until its own first write; if that one
    // is killed first, the next does. So an aftermath lasts until a state
    // write lands after the heal, and a few seconds more for the deletes.
    let aftermath = |healed: Instant| {
        let writes_then = held
            .iter()
            .take_while(|(t, _, _)| *t <= healed)
            .last()
            .map_or(0, |(_, _, w)| *w);
        held.iter()
            .find(|(t, _, w)| *t > healed && *w > writes_then)
            .map(|(t, _, _)| *t)
    };
    let healed_to_write: Vec<String> = windows
        .iter()
        .map(|(_, healed)| {
            aftermath(*healed).map_or("none before the end".to_owned(), |t| {
                format!("{:.1}", t.duration_since(*healed).as_secs_f64())
            })
        })
        .collect();
    // Until the run's end if no write landed after the heal.
    let aftermaths: Vec<_> = windows
        .iter()
        .map(|(a, b)| {
            let end = aftermath(*b).map_or(Instant::now(), |t| t + Duration::from_secs(3));
            (*a, end)
        })
        .collect();
    let in_cut = |t: Instant| aftermaths.iter().any(|(a, b)| t >= *a && t < *b);
    let peak_held = held.iter().map(|(_, h, _)| *h).max().unwrap_or(0);
    let (peak_held_outside, peak_held_at) = held
        .iter()
        .filter(|(t, _, _)| !in_cut(*t))
        .map(|(t, h, _)| (*h, history.since_start(*t).as_secs_f64()))
        .max_by_key(|(h, _)| *h)
        .unwrap_or_default();
    let waits_rerun: u64 = verdict.retries.values().sum();
    println!(
        "soak: {} episodes x {} members ({} as processes), coordinator as a {} in {:.1} s; seed {}\n\
         releases {}, arrivals {}, coordinator kills {}, participant restarts {}\n\
         recovery (a kill to the next release): p50 {}, p99 {}, max {} over {} kills\n\
         {cuts}\n\
         waits re-run {waits_rerun}\n\
         coordinator exits by themselves: {exits:?}\n\
         faults injected: {counts} (total {})\n\
         retries by kind: {:?}\n\
         resources at start: {before:?}\n\
         resources at end:   {during:?}\n\
         peak: tasks {}, connections {}, coordinator held {peak_held} ({peak_held_outside} outside partitions and their aftermath: {healed_to_write:?} s from a heal to a state write); peak RSS {} KiB",
        setup.episodes,
        setup.members,
        setup.processes,
        if setup.coordinator_process {
            "process (SIGKILL)"
        } else {
            "task (aborted)"
        },
        started.elapsed().as_secs_f64(),
        setup.seed,
        verdict.releases,
        verdict.arrivals,
        stats.coordinator_kills.load(Ordering::Relaxed),
        stats.participant_restarts.load(Ordering::Relaxed),
        pct(0.5),
        pct(0.99),
        pct(1.0),
        recoveries.len(),
        counts.total(),
        verdict.retries,
        peak.0,
        peak.1,
        harness::peak_rss_kib(),
    );
    verdict.assert_ok();
    assert!(
        exits
            .keys()
            .all(|k| !k.starts_with("FATAL") && !k.starts_with("PANIC")),
        "the coordinator failed: {exits:?}"
    );
    // Every kind of fault was exercised.
    assert!(counts.duplicate + counts.resurrected > 0, "{counts}");
    assert!(
        counts.error > 0 && counts.error_after > 0 && counts.throttle > 0,
        "{counts}"
    );
    assert!(
        counts.empty > 0 && counts.reorder > 0 && counts.late > 0,
        "{counts}"
    );
    if setup.kill_every.is_some() {
        assert!(stats.coordinator_kills.load(Ordering::Relaxed) > 0);
    }
    if setup.partitions.is_some() {
        assert!(!windows.is_empty(), "no partition was made");
    }
    // The coordinator holds at most one generation's check-ins (plus those
    // awaiting a state write): bounded by the membership, not the run.
    // Open generations hold one check-in per member; a participant released
    // early can be one generation ahead, and deletes wait for a state write.
    // In a partition no state write succeeds, so the check-ins of every
    // generation released meanwhile wait: that bound holds outside them.
    let at = |t: &Instant| format!("{:.1}", history.since_start(*t).as_secs_f64());
    assert!(
        peak_held_outside <= 4 * setup.members,
        "held {peak_held_outside} at {peak_held_at:.1} s; cuts to their first write after (s) {:?}; kills (s) {:?}",
        aftermaths
            .iter()
            .map(|(a, b)| (at(a), at(b)))
            .collect::<Vec<_>>(),
        stats
            .killed_at
            .lock()
            .unwrap()
            .iter()
            .map(at)
            .collect::<Vec<_>>(),
    );
    server.shutdown().await;
}

/// The `p` quantile of sorted durations, for people.
fn percentile(sorted: &[Duration], p: f64) -> String {
    sorted
        .get(((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1))
        .map_or("-".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
}

/// What the partitions (`windows`, start and end) did to the episodes: how
/// many releases came while one lasted, the longest time without any
/// release within one, and from each end to the next release.
fn partition_figures(
    history: &History,
    records: &[Record],
    windows: &[(Instant, Instant)],
    handovers: u64,
) -> String {
    if windows.is_empty() {
        return "partitions: none".to_owned();
    }
    let releases: Vec<Duration> = records
        .iter()
        .filter(|r| r.event == Event::Release)
        .map(|r| r.at)
        .collect();
    let mut during = 0;
    let mut stall = Duration::ZERO;
    let mut lasted = Duration::ZERO;
    for (a, b) in windows {
        let (a, b) = (history.since_start(*a), history.since_start(*b));
        lasted += b - a;
        let inside: Vec<Duration> = releases
            .iter()
            .copied()
            .filter(|t| *t >= a && *t < b)
            .collect();
        during += inside.len();
        let mut last = a;
        for t in inside.iter().copied().chain([b]) {
            stall = stall.max(t - last);
            last = t;
        }
    }
    let ends: Vec<Instant> = windows.iter().map(|(_, b)| *b).collect();
    let healed = harness::recoveries(history, records, &ends);
    format!(
        "partitions {} ({:.0} s cut in all, {} ended with another coordinator active): \
         member releases during them {during}, \
         longest time without a release in one {:.1} s; \
         heal to the next release p50 {}, max {}",
        windows.len(),
        lasted.as_secs_f64(),
        handovers,
        stall.as_secs_f64(),
        percentile(&healed, 0.5),
        percentile(&healed, 1.0),
    )
}

/// With `SOAK_LOG=FILE`, writes a timeline (history, coordinator kills,
/// the library's logs at debug) to FILE, to investigate a slow run.
fn trace_to_file() {
    let Some(path) = std::env::var_os("SOAK_LOG") else {
        return;
    };
    let file = std::fs::File::create(path).expect("create SOAK_LOG");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "soak=info,sqs_barrier=trace,sqs_barrier_local=trace",
        ))
        .with_ansi(false)
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .with_writer(std::sync::Mutex::new(file))
        .try_init();
}

/// One member as OS processes: `sqs-barrier wait` per generation, killed
/// (SIGKILL) mid-wait now and then and re-run for the same phase.
async fn run_process_member(
    url: String,
    barrier: String,
    member: usize,
    plan: MemberPlan,
    history: Arc<History>,
    stats: Arc<Stats>,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    for g in 0..plan.episodes {
        let mut failures = 0;
        loop {
            history.record(member, g, Event::Arrive);
            let mut child = tokio::process::Command::new(BIN)
                .args(["--endpoint-url", &url, "wait", "--barrier", &barrier])
                .args(["--id", &member.to_string(), "--phase", &g.to_string()])
                .args([
                    "--timeout",
                    "10",
                    "--silence",
                    "15",
                    "--status-interval",
                    "2",
                ])
                .env("AWS_ACCESS_KEY_ID", "local")
                .env("AWS_SECRET_ACCESS_KEY", "local")
                .env("AWS_REGION", "us-east-1")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env_remove("AWS_PROFILE")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("spawn sqs-barrier wait");
            if rng.random_bool(plan.restart_probability) {
                let after = rng.random_range(0..300);
                tokio::time::sleep(Duration::from_millis(after)).await;
                let _ = child.start_kill();
                let _ = child.wait().await;
                stats.participant_restarts.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let out = child.wait_with_output().await.expect("wait for the child");
            let stderr = String::from_utf8_lossy(&out.stderr);
            match out.status.code() {
                Some(0) => {
                    history.record(member, g, Event::Release);
                    break;
                }
                // Timed out, no coordinator, infrastructure (SQS errors that
                // outlived the SDK's retries): expected under faults.
                Some(code @ (3 | 5 | 6)) => {
                    let first = stderr.lines().next().unwrap_or("").chars().take(60);
                    history.record(
                        member,
                        g,
                        Event::Retry(format!("exit {code}: {}", first.collect::<String>())),
                    );
                    failures += 1;
                    if failures >= plan.max_attempts {
                        history.record(member, g, Event::GaveUp(format!("exit {code}: {stderr}")));
                        return;
                    }
                }
                other => {
                    history.record(
                        member,
                        g,
                        Event::GaveUp(format!("unexpected exit {other:?}: {stderr}")),
                    );
                    return;
                }
            }
        }
    }
}

/// `partitions`, unless `SOAK_PARTITIONS=0`.
fn partitions_unless_off(partitions: Partitions) -> Option<Partitions> {
    (std::env::var("SOAK_PARTITIONS").as_deref() != Ok("0")).then_some(partitions)
}

/// `SOAK_SEED`, or `default`.
fn seed_or(default: u64) -> u64 {
    std::env::var("SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_short() {
    soak(Setup {
        episodes: 50,
        members: 16,
        processes: 2,
        kill_every: Some((5000, 9000)),
        restart_probability: 0.01,
        coordinator_process: false,
        // Two partitions in the run, the second one may be cut short by
        // its end.
        partitions: partitions_unless_off(Partitions {
            every: (30_000, 45_000),
            length: (25_000, 35_000),
        }),
        seed: seed_or(0x5eed_0001),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: SOAK_EPISODES=1000 cargo test --release -p sqs-barrier-cli --test soak -- --ignored"]
async fn soak_long() {
    let episodes = std::env::var("SOAK_EPISODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    soak(Setup {
        episodes,
        members: 16,
        processes: 2,
        kill_every: Some((2000, 6000)),
        restart_probability: 0.01,
        // SOAK_COORDINATOR=task: an in-process coordinator, aborted.
        coordinator_process: std::env::var("SOAK_COORDINATOR").as_deref() != Ok("task"),
        // A partition about every minute and a half.
        partitions: partitions_unless_off(Partitions {
            every: (30_000, 90_000),
            length: (25_000, 35_000),
        }),
        seed: seed_or(0x5eed_1000),
    })
    .await;
}

/// SIGTERMs a coordinator process (`sqs-barrier coordinator`) at
/// random points during episodes and starts it again: no check-in is lost,
/// every episode completes, nobody is released early, and every coordinator
/// exits cleanly (code 0) on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_coordinator_process_loses_no_checkin() {
    const MEMBERS: usize = 8;
    const EPISODES: u64 = 200;
    let server = sqs_barrier_local::Server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = server.endpoint_url();
    let sqs = Sqs::local(&url);
    let barrier = "sigterm";
    admin::setup(&sqs, barrier, &admin::SetupOptions::new(MEMBERS))
        .await
        .unwrap();
    let history = History::new();
    let stats = Arc::new(Stats::default());
    let plan = MemberPlan {
        episodes: EPISODES,
        opts: harness::soak_participant_options(),
        wait_timeout: Duration::from_secs(60),
        restart_probability: 0.0,
        max_attempts: 5,
        max_work: Duration::from_millis(30),
    };
    let members: Vec<_> = (0..MEMBERS)
        .map(|m| {
            tokio::spawn(harness::run_member(
                sqs.clone(),
                barrier.to_owned(),
                m,
                plan.clone(),
                history.clone(),
                stats.clone(),
                m as u64,
            ))
        })
        .collect();
    let spawn = || {
        tokio::process::Command::new(BIN)
            .args(["--endpoint-url", &url, "coordinator", "--barrier", barrier])
            .args(["--heartbeat", "0.5"])
            .env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the coordinator")
    };
    let mut rng = StdRng::seed_from_u64(7);
    let mut sigterms = 0;
    let mut exit_codes = std::collections::BTreeMap::new();
    let started = Instant::now();
    while !members.iter().all(|m| m.is_finished()) {
        let child = spawn();
        let pid = child.id().expect("pid");
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1000))).await;
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        sigterms += 1;
        let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
            .await
            .expect("the coordinator exits promptly on SIGTERM")
            .unwrap();
        use std::os::unix::process::ExitStatusExt as _;
        // Exit 0: a clean stop. Killed by the signal itself: it came before
        // the coordinator had installed its handler (during start-up, when
        // it holds nothing).
        let how = match (out.status.code(), out.status.signal()) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(sig)) => format!("signal {sig}"),
            _ => "?".into(),
        };
        *exit_codes.entry(how).or_insert(0) += 1;
        assert!(
            out.status.success() || out.status.signal() == Some(15),
            "coordinator exit {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "episodes did not complete"
        );
    }
    for m in members {
        m.await.unwrap();
    }
    let verdict = harness::check(&history.snapshot(), MEMBERS, EPISODES);
    println!(
        "sigterm: {EPISODES} episodes x {MEMBERS} members, {sigterms} SIGTERMs in {:.1} s; exits {exit_codes:?}; retries {:?}",
        started.elapsed().as_secs_f64(),
        verdict.retries
    );
    verdict.assert_ok();
    assert!(
        sigterms >= 2,
        "only {sigterms} SIGTERMs: the episodes were too quick"
    );
    server.shutdown().await;
}
