//! A run of the benchmark: the endpoint, the coordinator (or the handout's
//! monitor), the participants, and the figures.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqs_barrier::core::coordinator::Event;
use sqs_barrier::lambda::emulator::{Deployment, EmulatedCoordinator};
use sqs_barrier::{ClientOptions, CoordinatorOptions, admin};
use tokio::sync::{mpsc, watch};

use super::baseline::{BaselineQueues, monitor};
use super::coordinator::Window;
use super::fanout::{self, fanout};
use super::gather::gather;
use super::group::{Msg, Permit, Plan, Work, connect_members, run_group};
use super::handoff::handoff;
use super::sampler::Sampler;
use super::stats::{FloorFigures, Tagging, Waiting, add, pct, r3, r6, ratio, sorted, two_hop};
use super::summary::{PerMinute, Report, print_report};
use super::{COORD_START, Counts, Failure, SETTLE, Target, seconds, work_seconds, worker};
use crate::Failed;
use crate::args::{BenchArgs, CoordinatorKind};
use sqs_barrier::clock::wall_us;

/// Runs the benchmark and prints its figures, or why it failed.
pub(crate) async fn run(a: BenchArgs, client: &ClientOptions) -> Result<(), Failed> {
    let n_max = sqs_barrier::core::config::MAX_MEMBERS;
    let usage = |m: String| {
        eprintln!("sqs-barrier bench: {m}");
        Err(Failed::Usage)
    };
    if a.parties == 0 || a.parties > n_max {
        return usage(format!(
            "--parties must be between 1 and {n_max}, not {}",
            a.parties
        ));
    }
    if a.episodes == Some(0) {
        return usage("--episodes must be at least 1".into());
    }
    if a.baseline && (a.duration.is_some() || a.sample_queues.is_some()) {
        return usage("--duration and --sample-queues must be used without --baseline".into());
    }
    let duration = match a.duration.map(|d| seconds(d, "--duration")).transpose() {
        Ok(d) => d,
        Err(f) => return usage(f.msg),
    };
    let sample = match a
        .sample_queues
        .map(|d| seconds(d, "--sample-queues"))
        .transpose()
    {
        Ok(d) => d,
        Err(f) => return usage(f.msg),
    };
    if let Some(p) = a.processes
        && (p == 0 || p > a.parties)
    {
        return usage(format!(
            "--processes must be between 1 and --parties ({}), not {p}",
            a.parties
        ));
    }
    if a.receivers == Some(0) {
        return usage("--receivers must be at least 1".into());
    }
    if !(1..=1000).contains(&a.lambda_concurrency) {
        return usage("--lambda-concurrency must be between 1 and 1000".into());
    }
    if a.handoff_samples == 0 {
        return usage("--handoff-samples must be at least 1".into());
    }
    if a.data_bytes > 0 {
        if a.coordinator == CoordinatorKind::Lambda {
            return usage("--data-bytes needs a process coordinator: the Lambda coordinator cannot gather data".into());
        }
        // The largest member name and an escape-free payload.
        let name = (a.parties.max(1) - 1).to_string();
        let size = sqs_barrier::core::wire::data_entry_size(&name, &"x".repeat(a.data_bytes));
        let limit = sqs_barrier::core::wire::data_limit(a.parties);
        if size > limit {
            return usage(format!(
                "--data-bytes {}: each member's entry would take {size} bytes of the release notice, more than the {limit} that SQS's largest message leaves each of {} members",
                a.data_bytes, a.parties
            ));
        }
    }
    let timeout = match seconds(a.episode_timeout, "--episode-timeout") {
        Ok(t) => t,
        Err(f) => return usage(f.msg),
    };
    let work = match work_seconds(a.work) {
        Ok(w) => Work {
            max_secs: w,
            seed: a.seed.unwrap_or_else(rand::random),
        },
        Err(f) => return usage(f.msg),
    };
    let (server, target) = match &client.endpoint_url {
        Some(u) => (
            None,
            Target {
                url: u.clone(),
                embedded: false,
                client: client.clone(),
            },
        ),
        None => match sqs_barrier_local::Server::bind_with(
            ([127, 0, 0, 1], 0).into(),
            // Every participant may hold a long poll and send a check-in at
            // once; the endpoint's default cap (1,024) would make check-ins
            // wait for a long poll to end from N = 500 or so.
            sqs_barrier_local::Options::default().with_max_connections(
                (3 * a.parties + 256).max(sqs_barrier_local::DEFAULT_MAX_CONNECTIONS),
            ),
        )
        .await
        {
            Ok(s) => {
                let url = s.endpoint_url();
                let target = Target {
                    url,
                    embedded: true,
                    client: client.clone(),
                };
                (Some(s), target)
            }
            Err(e) => {
                eprintln!("sqs-barrier bench: cannot start the embedded endpoint: {e}");
                return Err(Failed::Infrastructure);
            }
        },
    };
    let limits = Limits {
        timeout,
        duration,
        sample,
    };
    let result = match bench(&a, &target, limits, work).await {
        Ok(r) => {
            print_report(&r, a.json);
            Ok(())
        }
        Err(f) => {
            eprintln!("sqs-barrier bench: {}", f.msg);
            Err(f.failed)
        }
    };
    if let Some(s) = server {
        s.shutdown().await;
    }
    result
}

/// How long an episode may take, how long the run may take (`--duration`;
/// else `--episodes`), and how often to sample the queues.
#[derive(Clone, Copy, Debug)]
struct Limits {
    timeout: Duration,
    duration: Option<Duration>,
    sample: Option<Duration>,
}

/// How far ahead of the last complete episode participants may start
/// episodes, in a run bounded by time.
const AHEAD: u64 = 8;

async fn bench(
    a: &BenchArgs,
    target: &Target,
    limits: Limits,
    work: Work,
) -> Result<Report, Failure> {
    let n = a.parties;
    let timeout = limits.timeout;
    // Without --episodes the run ends by time (the baseline always has it).
    let total = a.episodes.map_or(u64::MAX, |e| e + 1);
    let name = format!("bench-{:08x}", rand::random::<u32>());
    let admin_sqs = target.sqs().await?;
    let began = Instant::now();

    let hand = sorted(handoff(target, &format!("{name}-handoff"), a.handoff_samples).await?);
    let settle = fanout::settle(n, pct(&hand, 0.5));
    let floor = fanout(a, target, &format!("{name}-fanout"), settle).await?;
    let floor_ms = sorted(floor.samples.clone());
    // The coordinator's long polls in a burst of N check-ins.
    let mut coordinator = CoordinatorOptions::default();
    coordinator.receivers = a.receivers;
    let receivers = coordinator.burst_receivers(n);
    let gathered = gather(
        a,
        target,
        &format!("{name}-gather"),
        receivers,
        fanout::settle(receivers, pct(&hand, 0.5)),
    )
    .await?;
    let gather_floor = FloorFigures::of(&gathered.samples);

    // The deciding side, with a client (and counter) of its own.
    let coord_sqs = target.sqs().await?;
    let window = Arc::new(Mutex::new(Window::new(coord_sqs.clone())));
    let decided = Arc::new(Mutex::new(BTreeMap::<u64, u64>::new()));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let baseline = if a.baseline {
        Some(Arc::new(BaselineQueues::create(&admin_sqs, &name).await?))
    } else {
        admin::setup(&admin_sqs, &name, &admin::SetupOptions::new(n)).await?;
        None
    };
    let progress = Arc::new(AtomicU64::new(0));
    let sampler = match limits.sample {
        Some(every) => {
            Some(Sampler::start(target.sqs().await?, &name, every, progress.clone()).await?)
        }
        None => None,
    };
    let mut decider: tokio::task::JoinHandle<Result<(), String>> = match &baseline {
        Some(q) => tokio::spawn(monitor(
            coord_sqs.clone(),
            q.clone(),
            n,
            total,
            // It waits for the participants' work too.
            timeout + Duration::from_secs_f64(work.max_secs),
            decided.clone(),
        )),
        None => {
            let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<Event>();
            let (d, w) = (decided.clone(), window.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                loop {
                    tokio::select! {
                        e = ev_rx.recv() => {
                            let Some(e) = e else { break };
                            if let Event::Released { generation } = e {
                                d.lock().expect("lock").insert(generation, wall_us());
                            }
                            w.lock().expect("lock").event(&e);
                        }
                        _ = tick.tick() => w.lock().expect("lock").tick(),
                    }
                }
            });
            let (sqs, name) = (coord_sqs.clone(), name.clone());
            match a.coordinator {
                CoordinatorKind::Process => {
                    let mut opts = CoordinatorOptions::default();
                    opts.receivers = a.receivers;
                    tokio::spawn(async move {
                        let stop = async {
                            let _ = stop_rx.await;
                        };
                        sqs_barrier::run_coordinator(&sqs, &name, opts, Some(ev_tx), stop)
                            .await
                            .map_err(|e| format!("the coordinator stopped: {e}"))
                    })
                }
                CoordinatorKind::Lambda => {
                    // The mapping polls on the same counter: its requests
                    // are the coordinator's too.
                    let mut deployment = Deployment::as_in_template();
                    deployment.mapping.max_concurrency = a.lambda_concurrency;
                    let poller = sqs.client().clone();
                    let lambda =
                        EmulatedCoordinator::start(&sqs, poller, &name, deployment, Some(ev_tx))
                            .await?;
                    window
                        .lock()
                        .expect("lock")
                        .follow_lambda(lambda.counters());
                    tokio::spawn(async move {
                        let _ = stop_rx.await;
                        lambda.stop().await;
                        Ok(())
                    })
                }
            }
        }
    };

    let plan = Plan {
        episodes: total,
        timeout,
        work,
        data_bytes: a.data_bytes,
    };
    let result = drive(
        a,
        target,
        &name,
        baseline.clone(),
        &mut decider,
        plan,
        Progress {
            duration: limits.duration,
            complete: &progress,
            window: &window,
        },
    )
    .await;
    let series = match sampler {
        Some(s) => Some(s.stop().await),
        None => None,
    };

    // Stop and clean up whatever happened.
    let _ = stop_tx.send(());
    if !decider.is_finished()
        && tokio::time::timeout(Duration::from_secs(5), &mut decider)
            .await
            .is_err()
    {
        decider.abort();
    }
    match &baseline {
        Some(q) => q.delete(&admin_sqs).await,
        None => {
            if let Err(e) = admin::teardown(&admin_sqs, &name).await {
                eprintln!("sqs-barrier bench: teardown of {name} failed: {e}");
            }
        }
    }
    let Driven {
        eps,
        part,
        part_errors,
        waiting,
    } = result?;
    let total = eps.len() as u64;
    let episodes = total - 1;
    let window = window.lock().expect("lock");
    let coord = &window.whole.requests;

    // Figures.
    let lat: Vec<f64> = (1..total as usize)
        .map(|k| eps[k].2.saturating_sub(eps[k].1) as f64 / 1e3)
        .collect();
    let decided = decided.lock().expect("lock").clone();
    let dec: Vec<f64> = (1..total)
        .filter_map(|k| {
            decided
                .get(&k)
                .map(|t| t.saturating_sub(eps[k as usize].1) as f64 / 1e3)
        })
        .collect();
    let mean = lat.iter().sum::<f64>() / lat.len() as f64;
    let lat = sorted(lat);
    let pe = (n as u64 * episodes) as f64;
    let mut all = part.clone();
    add(&mut all, coord);
    let mut errors = part_errors;
    add(&mut errors, &window.errors);
    let tagging = Tagging::new(&all, &errors, pe, window.whole.minutes());
    let total_req: u64 = all.values().sum();
    let part_req: u64 = part.values().sum();
    let coord_req: u64 = coord.values().sum();
    // From the first check-in of episode 1 to the last release.
    let span = eps[episodes as usize].2.saturating_sub(eps[1].0) as f64 / 1e6;
    let p50 = pct(&lat, 0.5);
    let h50 = pct(&hand, 0.5);
    let f50 = pct(&floor_ms, 0.5);
    let (two_hop_floor, two_hop_ratio) = two_hop(p50, gather_floor.p50, f50);
    Ok(Report {
        mode: if a.baseline { "baseline" } else { "barrier" },
        coordinator_kind: match (a.baseline, a.coordinator) {
            (true, _) => "monitor",
            (false, CoordinatorKind::Process) => "process",
            (false, CoordinatorKind::Lambda) => "lambda",
        },
        lambda: window.lambda_figures(episodes),
        endpoint: if target.embedded {
            "embedded".into()
        } else {
            target.url.clone()
        },
        endpoint_url: target.url.clone(),
        parties: n,
        episodes,
        processes: a.processes.unwrap_or(1),
        warmup: "excluded",
        warmup_release_ms: r3(eps[0].2.saturating_sub(eps[0].1) as f64 / 1e3),
        release_p50_ms: r3(p50),
        release_p99_ms: r3(pct(&lat, 0.99)),
        release_max_ms: r3(pct(&lat, 1.0)),
        release_mean_ms: r3(mean),
        decision_p50_ms: (!dec.is_empty()).then(|| r3(pct(&sorted(dec), 0.5))),
        requests_per_participant_episode: r3(total_req as f64 / pe),
        participant_requests_per_participant_episode: r3(part_req as f64 / pe),
        coordinator_requests_per_episode: r3(coord_req as f64 / episodes as f64),
        requests_by_operation: all
            .iter()
            .map(|(k, v)| (k.clone(), r3(*v as f64 / pe)))
            .collect(),
        requests_total: total_req,
        episodes_per_second: r3(if span > 0.0 {
            episodes as f64 / span
        } else {
            0.0
        }),
        duration_limit_s: limits.duration.map(|d| d.as_secs_f64()),
        queue_series: series,
        handoff_p50_ms: r3(h50),
        handoff_p99_ms: r3(pct(&hand, 0.99)),
        handoff_samples: hand.len(),
        ratio_to_handoff: ratio(p50, h50),
        fanout_receivers: n,
        fanout_floor_p50_ms: r3(f50),
        fanout_floor_max_ms: r3(pct(&floor_ms, 1.0)),
        fanout_floor_samples: floor_ms.len(),
        fanout_settle_ms: r3(floor.settle.as_secs_f64() * 1e3),
        fanout_empty_receives: floor.empty,
        ratio_to_fanout_floor: ratio(p50, f50),
        gather_receivers: gathered.receivers,
        gather_floor_p50_ms: gather_floor.p50,
        gather_floor_max_ms: gather_floor.max,
        gather_floor_samples: gather_floor.samples,
        gather_settle_ms: r3(gathered.settle.as_secs_f64() * 1e3),
        two_hop_floor_p50_ms: two_hop_floor,
        ratio_to_two_hop_floor: two_hop_ratio,
        tagging_actions: tagging.actions,
        tagging_actions_per_participant_episode: tagging.per_participant_episode,
        tagging_actions_per_barrier_minute: tagging.per_barrier_minute,
        failed_tagging_attempts: tagging.failed,
        barrier_minutes: r6(window.whole.minutes()),
        duration_s: r3(began.elapsed().as_secs_f64()),
        work_s: work.max_secs,
        data_bytes: a.data_bytes,
        seed: (work.max_secs > 0.0).then_some(work.seed),
        checkin_requests_per_participant_episode: r3(
            waiting.checkin.values().sum::<u64>() as f64 / pe
        ),
        waiting_requests_per_participant_episode: r3(
            waiting.requests.values().sum::<u64>() as f64 / pe
        ),
        waiting_mean_s: r3(waiting.waited_us as f64 / 1e6 / pe),
        waiting: PerMinute::new(&waiting.requests, waiting.minutes()),
        coordinator: PerMinute::new(coord, window.whole.minutes()),
        coordinator_open: (!a.baseline)
            .then(|| PerMinute::new(&window.opened.requests, window.opened.minutes())),
        coordinator_quiet: (!a.baseline)
            .then(|| PerMinute::new(&window.quiet_open.requests, window.quiet_open.minutes())),
        coordinator_idle: (!a.baseline)
            .then(|| PerMinute::new(&window.idle.requests, window.idle.minutes())),
    })
}

/// How long a run by time lasts (else it runs the plan's episodes), where
/// the count of complete episodes goes (read by the queue sampler), and the
/// coordinator's measured window (started after the warm-up, ended after
/// the last episode).
struct Progress<'a> {
    duration: Option<Duration>,
    complete: &'a AtomicU64,
    window: &'a Arc<Mutex<Window>>,
}

/// Per episode: the first and the last check-in, the last release (µs).
type Episodes = Vec<(u64, u64, u64)>;

/// What the participants reported.
struct Driven {
    eps: Episodes,
    /// Their requests during the measured episodes, by operation.
    part: Counts,
    /// Their failed request attempts during the measured episodes.
    part_errors: Counts,
    waiting: Waiting,
}

/// Starts the participants (tasks or processes) and collects their
/// reports: per episode (last check-in, last release), the participants'
/// requests, their failed attempts and what their waits cost during the
/// measured episodes. Starts and ends the coordinator's measured `window`.
async fn drive(
    a: &BenchArgs,
    target: &Target,
    name: &str,
    baseline: Option<Arc<BaselineQueues>>,
    decider: &mut tokio::task::JoinHandle<Result<(), String>>,
    plan: Plan,
    progress: Progress<'_>,
) -> Result<Driven, Failure> {
    let n = a.parties;
    let (duration, window) = (progress.duration, progress.window);
    // The last episode + 1; found when the time is up in a run by time.
    let mut total = plan.episodes;
    // Permits to start episodes, in a run by time.
    let gate = duration.map(|_| {
        watch::channel(Permit {
            upto: AHEAD,
            last: false,
        })
    });
    let mut ends: Option<tokio::time::Instant> = None;
    let mut next_note = None;
    // The next episode must complete within this after the previous one (a
    // generous margin over the participants' own timeout, for a hung
    // process).
    let limit =
        plan.timeout + Duration::from_secs_f64(plan.work.max_secs) + Duration::from_secs(15);
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let groups = match a.processes {
        None => {
            let sqs = target.sqs().await?;
            let members = connect_members(&sqs, name, 0, n, baseline).await?;
            let gate = gate.as_ref().map(|(_, rx)| rx.clone());
            tokio::spawn(run_group(sqs, members, plan, gate, tx));
            1
        }
        Some(_) => {
            let gate = gate.as_ref().map(|(_, rx)| rx);
            let p = worker::spawn(a, target, name, plan, gate, &tx)?;
            drop(tx);
            p
        }
    };

    const NONE: (usize, u64, u64, u64) = (0, u64::MAX, 0, 0);
    let mut eps: Vec<(usize, u64, u64, u64)> = Vec::new();
    let mut complete = 0u64;
    let mut reported = 0usize;
    let mut part = Counts::new();
    let mut part_errors = Counts::new();
    let mut waiting = Waiting::default();
    let mut coord_start = None;
    let mut deadline = tokio::time::Instant::now() + limit;
    let step = (total / 10).max(1);
    // The monitor of the baseline ends by itself after the last episode.
    let mut decider_done = false;
    while reported < groups {
        let msg = tokio::select! {
            m = rx.recv() => m,
            r = &mut *decider, if !decider_done => {
                decider_done = true;
                let why = match r {
                    Ok(Ok(())) if a.baseline => continue,
                    Ok(Ok(())) => "the coordinator stopped".to_owned(),
                    Ok(Err(e)) => e,
                    Err(e) => format!("the coordinator task failed: {e}"),
                };
                return Err(Failure::infra(format!("episode {complete}: {why}")));
            }
            _ = tokio::time::sleep_until(deadline) => {
                return Err(Failure::new(Failed::Timeout, format!(
                    "episode {complete} did not complete within {:.0} s",
                    (plan.timeout.as_secs_f64() + plan.work.max_secs)
                )));
            }
        };
        match msg {
            None => {
                return Err(Failure::new(
                    Failed::Internal,
                    format!("episode {complete}: the participants stopped reporting"),
                ));
            }
            Some(Msg::Failed(e)) => return Err(Failure::new(Failed::Timeout, e)),
            Some(Msg::Waiting(w)) => waiting.merge(&w),
            Some(Msg::Errors(c)) => add(&mut part_errors, &c),
            Some(Msg::Requests(c)) => {
                add(&mut part, &c);
                reported += 1;
            }
            Some(Msg::Episode {
                k,
                first,
                before,
                released,
            }) => {
                if k >= total {
                    continue;
                }
                if eps.len() <= k as usize {
                    eps.resize(k as usize + 1, NONE);
                }
                let e = &mut eps[k as usize];
                e.0 += 1;
                e.1 = e.1.min(first);
                e.2 = e.2.max(before);
                e.3 = e.3.max(released);
                while complete < total && eps.get(complete as usize).is_some_and(|e| e.0 == groups)
                {
                    if complete == 0 {
                        let w = window.clone();
                        coord_start = Some(tokio::spawn(async move {
                            tokio::time::sleep(COORD_START).await;
                            w.lock().expect("lock").start();
                        }));
                    }
                    complete += 1;
                    progress.complete.store(complete, Ordering::Relaxed);
                    let now = tokio::time::Instant::now();
                    deadline = now + limit;
                    if let (Some((permits, _)), Some(d)) = (&gate, duration) {
                        // The time counts from the end of the warm-up.
                        let end = *ends.get_or_insert(now + SETTLE + d);
                        let note = next_note.get_or_insert(now + SETTLE + d / 10);
                        if now >= *note {
                            *note += d / 10;
                            let left = end.saturating_duration_since(now).as_secs();
                            eprintln!("sqs-barrier bench: {complete} episodes, {left} s to go");
                        }
                        if now < end {
                            permits.send_modify(|p| p.upto = p.upto.max(complete + AHEAD));
                        } else if !permits.borrow().last {
                            permits.send_modify(|p| p.last = true);
                            total = permits.borrow().upto + 1;
                        }
                    } else if total >= 20 && complete.is_multiple_of(step) {
                        eprintln!("sqs-barrier bench: {complete}/{total} episodes");
                    }
                }
            }
        }
    }
    if complete < total {
        return Err(Failure::new(
            Failed::Internal,
            format!("episode {complete}: the participants finished early"),
        ));
    }
    // The coordinator's deferred work for the last episodes.
    tokio::time::sleep(SETTLE).await;
    if let Some(h) = coord_start {
        let _ = h.await;
    }
    window.lock().expect("lock").end();
    Ok(Driven {
        eps: eps
            .into_iter()
            .take(total as usize)
            .map(|(_, f, b, r)| (f, b, r))
            .collect(),
        part,
        part_errors,
        waiting,
    })
}
