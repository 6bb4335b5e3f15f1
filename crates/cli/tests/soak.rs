//! Soak: consecutive episodes of a 16-member barrier on the embedded
//! endpoint under combined fault injection, with two coordinators (one
//! active, one standing by, both started the plain way), the active one
//! killed a random time after it took over and restarted, again and again
//! (the recovery of each kill is reported), and participants restarting
//! mid-wait. Every
//! arrival and release goes into a history that `harness::check` verifies:
//! no early release, no lost member, only expected errors.
//!
//! * `soak_short` runs in CI (`cargo test -p sqs-barrier-cli --test soak`).
//! * `soak_long` is the long run, with the coordinator as an OS process
//!   killed with SIGKILL (`SOAK_COORDINATOR=task` for an aborted task):
//!   `SOAK_EPISODES=1000 cargo test --release -p sqs-barrier-cli --test soak -- --ignored --nocapture`
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
    self, Event, History, MemberPlan, ProcessSupervisor, Stats, Supervisor,
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
    seed: u64,
}

enum Coordinators {
    Task(Supervisor),
    Process(ProcessSupervisor),
}

async fn soak(setup: Setup) {
    let started = Instant::now();
    trace_to_file();
    let spec: ChaosSpec = CHAOS.parse().unwrap();
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
        (true, Some(every)) => Coordinators::Process(ProcessSupervisor::start(
            BIN,
            url.clone(),
            barrier.clone(),
            every,
            stats.clone(),
            setup.seed ^ 1,
        )),
        _ => Coordinators::Task(Supervisor::start(
            sqs.clone(),
            barrier.clone(),
            harness::soak_coordinator_options(gauges.clone()),
            setup.kill_every,
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
            let mut peak = (0usize, 0usize, 0usize);
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let r = harness::resources(port);
                peak.0 = peak.0.max(r.tasks);
                peak.1 = peak.1.max(r.connections);
                peak.2 = peak.2.max(Supervisor::held(&gauges));
                if done.load(Ordering::Relaxed) {
                    return peak;
                }
            }
        })
    };
    for m in members {
        m.await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    let peak = sampler.await.unwrap();
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
    let pct = |p: f64| {
        recoveries
            .get(((recoveries.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or("-".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
    };
    println!(
        "soak: {} episodes x {} members ({} as processes), coordinator as a {} in {:.1} s; seed {}\n\
         releases {}, arrivals {}, coordinator kills {}, participant restarts {}\n\
         recovery (a kill to the next release): p50 {}, p99 {}, max {} over {} kills\n\
         coordinator exits by themselves: {exits:?}\n\
         faults injected: {counts} (total {})\n\
         retries by kind: {:?}\n\
         resources at start: {before:?}\n\
         resources at end:   {during:?}\n\
         peak: tasks {}, connections {}, coordinator held {}; peak RSS {} KiB",
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
        peak.2,
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
    // The coordinator holds at most one generation's check-ins (plus those
    // awaiting a state write): bounded by the membership, not the run.
    // Open generations hold one check-in per member; a participant released
    // early can be one generation ahead, and deletes wait for a state write.
    assert!(peak.2 <= 4 * setup.members, "held {}", peak.2);
    server.shutdown().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_short() {
    soak(Setup {
        episodes: 50,
        members: 16,
        processes: 2,
        kill_every: Some((5000, 9000)),
        restart_probability: 0.01,
        coordinator_process: false,
        seed: 0x5eed_0001,
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
    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_1000);
    soak(Setup {
        episodes,
        members: 16,
        processes: 2,
        kill_every: Some((2000, 6000)),
        restart_probability: 0.01,
        // SOAK_COORDINATOR=task: an in-process coordinator, aborted.
        coordinator_process: std::env::var("SOAK_COORDINATOR").as_deref() != Ok("task"),
        seed,
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
