//! `sqs-barrier demo`: N real processes through K phases, checked.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use sqs_barrier::clock::wall_ms;

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sqs_barrier::lambda::emulator::{Deployment, EmulatedCoordinator};
use sqs_barrier::{Barrier, ClientOptions, Sqs, admin};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::cli::{CoordinatorKind, DemoArgs, DemoWorkerArgs};
use crate::exit;

/// The longest a demo participant waits at one phase before giving up.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

/// One line a worker prints: `EVENT {json}`.
#[derive(Serialize, Deserialize, Debug, Clone)]
struct Ev {
    id: String,
    phase: u64,
    /// `work`, `arrive` or `release`.
    ev: String,
    /// Wall clock, ms since the Unix epoch.
    t: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    work_ms: Option<u64>,
}

/// The parent: endpoint, setup, processes, timeline, check, cleanup.
pub async fn run(a: DemoArgs, endpoint: Option<&str>) -> u8 {
    if a.parties == 0 || a.parties > 256 || a.phases == 0 {
        eprintln!("sqs-barrier demo: --parties must be 1 to 256 and --phases at least 1");
        return exit::USAGE;
    }
    // The embedded endpoint, unless one was given.
    let (server, url) = match endpoint {
        Some(u) => (None, u.to_owned()),
        None => match sqs_barrier_local::Server::bind(([127, 0, 0, 1], 0).into()).await {
            Ok(s) => {
                let u = s.endpoint_url();
                (Some(s), u)
            }
            Err(e) => {
                eprintln!("sqs-barrier demo: cannot start the embedded endpoint: {e}");
                return exit::INFRA;
            }
        },
    };
    let sqs = if server.is_some() {
        Sqs::local(&url)
    } else {
        match Sqs::connect(&ClientOptions::with_endpoint(&url)).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("sqs-barrier demo: {e}");
                return exit::of(&e);
            }
        }
    };
    let seed = a.seed.unwrap_or_else(rand::random);
    let name = format!("demo-{:08x}", rand::random::<u32>());
    println!(
        "sqs-barrier demo: {} processes, {} phases, barrier {name} at {url}{} (seed {seed}){}",
        a.parties,
        a.phases,
        if server.is_some() {
            " (embedded endpoint)"
        } else {
            ""
        },
        match a.coordinator {
            CoordinatorKind::Process => "",
            CoordinatorKind::Lambda => "; coordinated by the Lambda handler",
        }
    );
    if let Err(e) = admin::setup(&sqs, &name, &admin::SetupOptions::new(a.parties)).await {
        eprintln!("sqs-barrier demo: {e}");
        return exit::of(&e);
    }
    let code = run_processes(&a, &sqs, &url, server.is_some(), &name, seed).await;
    if let Err(e) = admin::teardown(&sqs, &name).await {
        eprintln!("sqs-barrier demo: teardown failed: {e}");
    }
    if let Some(s) = server {
        s.shutdown().await;
    }
    code
}

fn child(exe: &std::path::Path, url: &str, embedded: bool) -> Command {
    let mut c = Command::new(exe);
    c.arg("--endpoint-url").arg(url);
    if embedded {
        // The embedded endpoint accepts any credentials; the children use
        // the standard AWS configuration, so give them some.
        c.env("AWS_ACCESS_KEY_ID", "local")
            .env("AWS_SECRET_ACCESS_KEY", "local")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE");
    }
    c.stdin(Stdio::null()).kill_on_drop(true);
    c
}

/// The demo's coordinator: a process, or the Lambda handler behind an
/// emulated event source mapping in this process.
enum Coordinating {
    Process(Child),
    Lambda(EmulatedCoordinator),
}

impl Coordinating {
    async fn start(
        a: &DemoArgs,
        sqs: &Sqs,
        exe: &std::path::Path,
        url: &str,
        embedded: bool,
        name: &str,
    ) -> Result<Self, String> {
        match a.coordinator {
            CoordinatorKind::Process => child(exe, url, embedded)
                .args(["coordinator", "--barrier", name, "--heartbeat", "1"])
                .stdout(Stdio::null())
                .spawn()
                .map(Self::Process)
                .map_err(|e| e.to_string()),
            CoordinatorKind::Lambda => {
                let poller = sqs.with_own_counter();
                EmulatedCoordinator::start(
                    sqs,
                    poller.client().clone(),
                    name,
                    Deployment::as_in_template(),
                    None,
                )
                .await
                .map(Self::Lambda)
                .map_err(|e| e.to_string())
            }
        }
    }

    /// Stops it as an operator would: SIGTERM to a process; a mapping is
    /// disabled.
    async fn stop(self) {
        match self {
            Self::Process(mut c) => {
                if let Some(pid) = c.id() {
                    let _ = std::process::Command::new("kill")
                        .args(["-TERM", &pid.to_string()])
                        .status();
                }
                let _ = tokio::time::timeout(Duration::from_secs(5), c.wait()).await;
                let _ = c.start_kill();
            }
            Self::Lambda(l) => {
                println!("lambda: {}", l.counters().read());
                l.stop().await;
            }
        }
    }
}

async fn run_processes(
    a: &DemoArgs,
    sqs: &Sqs,
    url: &str,
    embedded: bool,
    name: &str,
    seed: u64,
) -> u8 {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("sqs-barrier demo: cannot find my own executable: {e}");
            return exit::INTERNAL;
        }
    };
    let coordinator = match Coordinating::start(a, sqs, &exe, url, embedded, name).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sqs-barrier demo: cannot start the coordinator: {e}");
            return exit::INTERNAL;
        }
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Ev>();
    let mut workers: Vec<(String, Child)> = Vec::new();
    for i in 0..a.parties {
        let spawned = child(&exe, url, embedded)
            .args(["demo-worker", "--barrier", name, "--id", &i.to_string()])
            .args(["--phases", &a.phases.to_string()])
            .args(["--max-work-ms", &a.max_work_ms.to_string()])
            .args(["--seed", &seed.wrapping_add(i as u64).to_string()])
            .stdout(Stdio::piped())
            .spawn();
        let mut c = match spawned {
            Ok(c) => c,
            Err(e) => {
                eprintln!("sqs-barrier demo: cannot start participant {i}: {e}");
                return exit::INTERNAL;
            }
        };
        let out = c.stdout.take().expect("piped");
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                if let Some(ev) = l
                    .strip_prefix("EVENT ")
                    .and_then(|j| serde_json::from_str(j).ok())
                {
                    let _ = tx.send(ev);
                }
            }
        });
        workers.push((i.to_string(), c));
    }
    drop(tx);
    let budget = Duration::from_millis(a.max_work_ms) * a.phases as u32
        + PHASE_TIMEOUT
        + Duration::from_secs(30);
    let mut failed = Vec::new();
    let all = async {
        for (id, c) in &mut workers {
            match c.wait().await {
                Ok(s) if s.success() => {}
                Ok(s) => failed.push(format!("participant {id} exited with {s}")),
                Err(e) => failed.push(format!("participant {id}: {e}")),
            }
        }
    };
    if tokio::time::timeout(budget, all).await.is_err() {
        failed.push(format!(
            "participants still running after {budget:?}; killed"
        ));
    }
    coordinator.stop().await;

    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    let violations = print_timeline(&events, a.parties, a.phases);
    for f in &failed {
        println!("FAILED: {f}");
    }
    if violations.is_empty() && failed.is_empty() {
        println!(
            "OK: in every phase, nobody was released before all {} processes had arrived",
            a.parties
        );
        exit::OK
    } else {
        for v in &violations {
            println!("VIOLATION: {v}");
        }
        exit::INTERNAL
    }
}

/// Prints the timeline and returns the barrier violations found.
fn print_timeline(events: &[Ev], parties: usize, phases: u64) -> Vec<String> {
    let t0 = events.iter().map(|e| e.t).min().unwrap_or(0);
    let s = |t: u64| format!("{:7.3}", t.saturating_sub(t0) as f64 / 1000.0);
    let mut by: BTreeMap<(u64, String), BTreeMap<String, u64>> = BTreeMap::new();
    let mut work: BTreeMap<(u64, String), u64> = BTreeMap::new();
    for e in events {
        by.entry((e.phase, e.id.clone()))
            .or_default()
            .insert(e.ev.clone(), e.t);
        if let Some(w) = e.work_ms {
            work.insert((e.phase, e.id.clone()), w);
        }
    }
    let mut violations = Vec::new();
    println!("\ntimeline (seconds since start):");
    for k in 0..phases {
        println!("phase {k}");
        let ids: Vec<String> = (0..parties).map(|i| i.to_string()).collect();
        let mut last_arrival = None::<u64>;
        let mut first_release = None::<u64>;
        for id in &ids {
            let row = by.get(&(k, id.clone()));
            let get = |ev: &str| row.and_then(|r| r.get(ev)).copied();
            let (w, ar, rel) = (get("work"), get("arrive"), get("release"));
            if let Some(t) = ar {
                last_arrival = Some(last_arrival.map_or(t, |l| l.max(t)));
            }
            if let Some(t) = rel {
                first_release = Some(first_release.map_or(t, |f| f.min(t)));
            }
            println!(
                "  P{id:<3} work {} ({:>4} ms)  arrived {}  released {}",
                w.map_or("      -".into(), s),
                work.get(&(k, id.clone())).copied().unwrap_or(0),
                ar.map_or("      -".into(), s),
                rel.map_or("      -".into(), s),
            );
            if ar.is_none() || rel.is_none() {
                violations.push(format!("P{id} has no arrival or release in phase {k}"));
            }
        }
        if let (Some(la), Some(fr)) = (last_arrival, first_release) {
            let ok = fr >= la;
            println!(
                "  last arrival {}, first release {}: {}",
                s(la),
                s(fr),
                if ok { "ok" } else { "EARLY RELEASE" }
            );
            if !ok {
                violations.push(format!(
                    "phase {k}: a process was released at {} before the last arrival at {}",
                    s(fr),
                    s(la)
                ));
            }
        }
        // Nobody starts phase k+1 before everyone finished phase k.
        if let Some(la) = last_arrival {
            for id in &ids {
                let start = by.get(&(k + 1, id.clone())).and_then(|r| r.get("work"));
                if start.is_some_and(|s| *s < la) {
                    violations.push(format!(
                        "P{id} started phase {} before phase {k} was complete",
                        k + 1
                    ));
                }
            }
        }
    }
    violations
}

/// A participant process of the demo.
pub async fn worker(a: DemoWorkerArgs, client: &ClientOptions) -> u8 {
    let result = async {
        let sqs = Sqs::connect(client).await?;
        let barrier = Barrier::connect(&sqs, &a.barrier, &a.id).await?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
        let emit = |ev: &str, phase: u64, work_ms: Option<u64>| {
            let e = Ev {
                id: a.id.clone(),
                phase,
                ev: ev.into(),
                t: wall_ms(),
                work_ms,
            };
            println!(
                "EVENT {}",
                serde_json::to_string(&e).expect("event serialises")
            );
        };
        for k in 0..a.phases {
            let w = rng.random_range(0..=a.max_work_ms);
            emit("work", k, Some(w));
            tokio::time::sleep(Duration::from_millis(w)).await;
            emit("arrive", k, None);
            barrier.wait(Some(PHASE_TIMEOUT)).await?;
            emit("release", k, None);
        }
        Ok::<(), sqs_barrier::Error>(())
    }
    .await;
    match result {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("sqs-barrier demo participant {}: {e}", a.id);
            exit::of(&e)
        }
    }
}
