//! The supervisors: two coordinators, one active, killed and restarted at
//! random, and cut off their state queue now and then.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqs_barrier::{CoordinatorGauges, CoordinatorOptions, Sqs};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::cut::{Partitions, StateCut};
use super::{Stats, classify};

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
    /// Each coordinator's way to the endpoint, with partitions.
    _cuts: Vec<Arc<StateCut>>,
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
        Self::start_with_partitions(sqs, barrier, opts, kill_every, None, stats, seed)
    }

    /// [`Supervisor::start`], and with `partitions` the active coordinator
    /// is cut off its state queue now and then (the endpoint of `sqs` must
    /// have [`partition_rule`]). No coordinator is killed during a
    /// partition.
    ///
    /// # Panics
    /// With partitions, if `sqs`'s endpoint is not `http://IP:PORT`.
    pub fn start_with_partitions(
        sqs: Sqs,
        barrier: String,
        opts: CoordinatorOptions,
        kill_every: Option<(u64, u64)>,
        partitions: Option<Partitions>,
        stats: Arc<Stats>,
        seed: u64,
    ) -> Self {
        let (stop, stopping) = watch::channel(false);
        let gauges: Vec<_> = (0..2)
            .map(|_| Arc::new(CoordinatorGauges::default()))
            .collect();
        let kills: Vec<_> = (0..2).map(|_| Arc::new(Notify::new())).collect();
        let cuts = match partitions {
            Some(_) => StateCut::pair(sqs.endpoint()),
            None => Vec::new(),
        };
        let turn = Arc::new(tokio::sync::Mutex::new(Turn::default()));
        let mut tasks = Vec::new();
        for k in 0..2 {
            let mut o = opts.clone();
            o.gauges = Some(gauges[k].clone());
            let mine = gauges[k].clone();
            let (sqs, barrier, stats, kill) = (
                cuts.get(k)
                    .map_or_else(|| sqs.clone(), |c| Sqs::local(&c.endpoint_url())),
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
            let (gauges, turn, mut stopping) = (gauges.clone(), turn.clone(), stopping.clone());
            tasks.push(tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed ^ 0x4b11);
                // Each active coordinator lives a random time from when it
                // took over: a kill during a takeover would only measure
                // the next one.
                let active = |g: &[Arc<CoordinatorGauges>]| active_slot(g);
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
                    let turn = turn.lock().await;
                    if turn.cut.is_none() && active(&gauges) == Some(target) {
                        kills[target.0].notify_one();
                        // Until it is gone.
                        while active(&gauges) == Some(target) {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            }));
        }
        if let Some(p) = partitions {
            let (gauges, cuts, mut stopping) = (gauges.clone(), cuts.clone(), stopping.clone());
            tasks.push(tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed ^ 0x9a27);
                loop {
                    let pause = Duration::from_millis(rng.random_range(p.every.0..=p.every.1));
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stopped(&mut stopping) => return,
                    }
                    // The active coordinator, as soon as there is one.
                    let target = loop {
                        {
                            let mut turn = turn.lock().await;
                            if let Some(t) = active_slot(&gauges) {
                                turn.cut = Some(t.0);
                                cuts[t.0].set(true);
                                break t;
                            }
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                            _ = stopped(&mut stopping) => return,
                        }
                    };
                    let length = Duration::from_millis(rng.random_range(p.length.0..=p.length.1));
                    let ended = partition(&stats, &cuts, target.0, length, &mut stopping).await;
                    turn.lock().await.cut = None;
                    if !ended {
                        return;
                    }
                    if active_slot(&gauges) != Some(target) {
                        stats.partition_handovers.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        Supervisor {
            stop,
            tasks,
            gauges,
            _cuts: cuts,
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
    /// Each coordinator's way to the endpoint, with partitions.
    _cuts: Vec<Arc<StateCut>>,
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
        Self::start_with_partitions(bin, url, barrier, kill_every, None, stats, seed)
    }

    /// [`ProcessSupervisor::start`], and with `partitions` the active
    /// coordinator is cut off its state queue now and then (the endpoint
    /// at `url` must have [`partition_rule`]). No coordinator is killed
    /// during a partition.
    ///
    /// # Panics
    /// With partitions, if `url` is not `http://IP:PORT`.
    pub fn start_with_partitions(
        bin: &'static str,
        url: String,
        barrier: String,
        kill_every: (u64, u64),
        partitions: Option<Partitions>,
        stats: Arc<Stats>,
        seed: u64,
    ) -> Self {
        let (stop, stopping) = watch::channel(false);
        let pids: Arc<Mutex<[Option<u32>; 2]>> = Arc::default();
        let kills: Vec<_> = (0..2).map(|_| Arc::new(Notify::new())).collect();
        let cuts = match partitions {
            Some(_) => StateCut::pair(&url),
            None => Vec::new(),
        };
        let turn = Arc::new(tokio::sync::Mutex::new(Turn::default()));
        let mut tasks = Vec::new();
        for (k, kill) in kills.iter().enumerate() {
            let (url, barrier, stats, kill, pids) = (
                cuts.get(k)
                    .map_or_else(|| url.clone(), |c| c.endpoint_url()),
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
        let (state_url, killer_barrier, killer_pids, killer_turn, mut killer_stopping) = (
            url.clone(),
            barrier.clone(),
            pids.clone(),
            turn.clone(),
            stopping.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let (sqs, pids, turn) = (Sqs::local(&state_url), killer_pids, killer_turn);
            let info = open_barrier(&sqs, &killer_barrier).await;
            let mut rng = StdRng::seed_from_u64(seed ^ 0x4b11);
            let active = async || active_process(&sqs, &info, &pids).await;
            // Each active coordinator lives a random time from when it took
            // over (first named by the state): a kill during a takeover
            // would only measure the next one.
            loop {
                let target = loop {
                    let killed = turn.lock().await.killed.clone();
                    if let Some(t) = active().await.filter(|t| Some(&t.1) != killed.as_ref()) {
                        break t;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        _ = stopped(&mut killer_stopping) => return,
                    }
                };
                let pause = Duration::from_millis(rng.random_range(kill_every.0..=kill_every.1));
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stopped(&mut killer_stopping) => return,
                }
                let mut turn = turn.lock().await;
                if turn.cut.is_none() && active().await.as_ref() == Some(&target) {
                    kills[target.0].notify_one();
                    turn.killed = Some(target.1);
                }
            }
        }));
        if let Some(p) = partitions {
            let (cuts, mut stopping) = (cuts.clone(), stopping.clone());
            tasks.push(tokio::spawn(async move {
                let sqs = Sqs::local(&url);
                let info = open_barrier(&sqs, &barrier).await;
                let mut rng = StdRng::seed_from_u64(seed ^ 0x9a27);
                let active = async || active_process(&sqs, &info, &pids).await;
                loop {
                    let pause = Duration::from_millis(rng.random_range(p.every.0..=p.every.1));
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stopped(&mut stopping) => return,
                    }
                    // The active coordinator, as soon as there is one (not
                    // one just killed, which the state may still name).
                    let target = loop {
                        {
                            let mut turn = turn.lock().await;
                            let killed = turn.killed.clone();
                            if let Some(t) =
                                active().await.filter(|t| Some(&t.1) != killed.as_ref())
                            {
                                turn.cut = Some(t.0);
                                cuts[t.0].set(true);
                                break t;
                            }
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                            _ = stopped(&mut stopping) => return,
                        }
                    };
                    let length = Duration::from_millis(rng.random_range(p.length.0..=p.length.1));
                    let ended = partition(&stats, &cuts, target.0, length, &mut stopping).await;
                    turn.lock().await.cut = None;
                    if !ended {
                        return;
                    }
                    // Read once healed: the state names whoever wrote last.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if active().await.is_some_and(|t| t.1 != target.1) {
                        stats.partition_handovers.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        ProcessSupervisor {
            stop,
            tasks,
            _cuts: cuts,
        }
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

/// The active in-process coordinator: its slot and how many times it took
/// over.
fn active_slot(g: &[Arc<CoordinatorGauges>]) -> Option<(usize, u64)> {
    (0..2)
        .find(|k| g[*k].active.load(Ordering::Relaxed))
        .map(|k| (k, g[k].takeovers.load(Ordering::Relaxed)))
}

/// The barrier's queues, once it can be opened.
async fn open_barrier(sqs: &Sqs, barrier: &str) -> sqs_barrier::admin::BarrierInfo {
    loop {
        match sqs_barrier::admin::open(sqs, barrier).await {
            Ok(i) => return i,
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The active coordinator process, as the published state names it (its id
/// ends in `/PID`): slot and id.
async fn active_process(
    sqs: &Sqs,
    info: &sqs_barrier::admin::BarrierInfo,
    pids: &Mutex<[Option<u32>; 2]>,
) -> Option<(usize, String)> {
    let state = sqs_barrier::admin::read_state(sqs, info)
        .await
        .ok()
        .flatten()
        .filter(|s| !s.stopped)?;
    let current = *pids.lock().unwrap();
    (0..2)
        .find(|k| current[*k].is_some_and(|pid| state.coordinator.ends_with(&format!("/{pid}"))))
        .map(|k| (k, state.coordinator))
}

/// What the killer and the partitioner of a supervisor share: one acts at
/// a time.
#[derive(Debug, Default)]
struct Turn {
    /// The slot cut off its state queue, during a partition.
    cut: Option<usize>,
    /// The last coordinator killed (processes: the state may name it a
    /// while after).
    killed: Option<String>,
}

/// One partition of slot `slot`, already cut: lasts `length` (or until the
/// supervisor stops: then `false`), and is recorded.
async fn partition(
    stats: &Stats,
    cuts: &[Arc<StateCut>],
    slot: usize,
    length: Duration,
    stopping: &mut watch::Receiver<bool>,
) -> bool {
    let from = Instant::now();
    stats.partitions.fetch_add(1, Ordering::Relaxed);
    tracing::info!(target: "soak", slot, ?length, "active coordinator cut off its state queue");
    let ended = tokio::select! {
        _ = tokio::time::sleep(length) => true,
        _ = stopped(stopping) => false,
    };
    cuts[slot].set(false);
    tracing::info!(target: "soak", slot, "partition healed");
    stats
        .partitioned
        .lock()
        .unwrap()
        .push((from, Instant::now()));
    ended
}
