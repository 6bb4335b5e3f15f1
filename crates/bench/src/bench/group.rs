//! A group of participants: all of them, as tasks of this process, or the
//! share of one worker process (`bench --processes`). The group runs its
//! members through the episodes and reports on a channel.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqs_barrier::{Barrier, Sqs, WaitOptions};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::baseline::{self, BaselineQueues};
use super::stats::{Waiting, diff};
use super::{Counts, Failure, SETTLE};
use crate::Failed;
use sqs_barrier::clock::wall_us;

/// A participant, with a client of its own on the group's connections: its
/// counter counts this participant's requests only (the group's counts them
/// too).
pub(super) struct Member {
    /// The member index.
    index: usize,
    sqs: Sqs,
    role: Role,
}

enum Role {
    Barrier(Barrier),
    Baseline(Arc<BaselineQueues>),
}

/// How a group runs: episodes in all (warm-up included), how long a
/// participant may wait beyond its work, and the work before each measured
/// episode.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    pub(super) episodes: u64,
    pub(super) timeout: Duration,
    pub(super) work: Work,
    /// Bytes of data each participant brings to every episode (0: none).
    pub(super) data_bytes: usize,
}

/// The work before each measured episode: a time uniform in
/// `[0, max_secs]`, drawn per participant from a generator seeded with
/// `seed` plus its member index (so the same whatever the processes).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Work {
    pub(super) max_secs: f64,
    pub(super) seed: u64,
}

/// Permission to start episodes, for runs bounded by time (`bench
/// --duration`): a participant starts episode `k` only once `upto >= k`;
/// once `last` is set, `upto` is the run's last episode. The bench process
/// keeps `upto` a few episodes ahead of the last complete one, so the gate
/// rarely holds anyone, and every participant stops after the same episode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Permit {
    pub(super) upto: u64,
    pub(super) last: bool,
}

/// The participants' side of the permits.
pub(super) type Gate = tokio::sync::watch::Receiver<Permit>;

/// Waits until episode `k` may start; false if the run ended before it (or
/// the permits stopped coming).
async fn permitted(gate: &mut Gate, k: u64) -> bool {
    gate.wait_for(|p| p.upto >= k || p.last)
        .await
        .is_ok_and(|p| p.upto >= k)
}

/// One episode of one participant, times in microseconds since the epoch.
struct Sample {
    /// Just before the check-in.
    before: u64,
    /// The release (for the handout's protocol: the release message
    /// received).
    released: u64,
}

/// One episode of one participant; adds what its wait cost to `waiting`.
async fn episode(
    m: &Member,
    k: u64,
    timeout: Duration,
    data_bytes: usize,
    waiting: &mut Waiting,
) -> Result<Sample, String> {
    let fail = |e: String| format!("episode {k}: participant {}: {e}", m.index);
    let counter = m.sqs.requests();
    let start = counter.snapshot();
    let before = wall_us();
    let started = Instant::now();
    // The check-in, then the wait.
    let (checked_in_us, checked_in, released) = match &m.role {
        Role::Barrier(b) => {
            let mut opts = WaitOptions::timeout(Some(timeout));
            if data_bytes > 0 {
                opts = opts.with_data(payload(m.index, k, data_bytes));
            }
            let arrival = b.arrive_with(opts).await.map_err(|e| fail(e.to_string()))?;
            let (t, c) = (wall_us(), counter.snapshot());
            let released = arrival.await.map_err(|e| fail(e.to_string()))?;
            let at = wall_us();
            if data_bytes > 0 {
                // Everyone's data, each as its member brought it.
                let data = released.data.unwrap_or_default();
                let n = b.config().members.len();
                let whole = data.len() == n
                    && (0..n).all(|i| data.get(&i.to_string()) == Some(&payload(i, k, data_bytes)));
                if !whole {
                    return Err(fail(format!(
                        "the release handed out the data of {} of {n} members, or not as they brought it",
                        data.len()
                    )));
                }
            }
            (t, c, at)
        }
        Role::Baseline(queues) => {
            let id = m.index.to_string();
            baseline::check_in(&m.sqs, queues, &id, k).await?;
            let (t, c) = (wall_us(), counter.snapshot());
            let released = baseline::wait(&m.sqs, queues, &id, k, started, timeout).await?;
            (t, c, released)
        }
    };
    let waited = wall_us().saturating_sub(checked_in_us);
    waiting.add_episode(&start, &checked_in, &counter.snapshot(), waited);
    Ok(Sample { before, released })
}

/// The data member `i` brings to episode `k`: `bytes` bytes that differ
/// by member and episode.
fn payload(i: usize, k: u64, bytes: usize) -> String {
    let head = format!("{i}.{k}.");
    let mut s = head.chars().cycle().take(bytes).collect::<String>();
    s.truncate(bytes);
    s
}

/// What a group of participants reports.
#[derive(Debug)]
pub(super) enum Msg {
    /// Every participant of the group has finished episode `k`: the first
    /// and the last check-in, and the last release.
    Episode {
        k: u64,
        first: u64,
        before: u64,
        released: u64,
    },
    /// What the group's waits cost during the measured episodes (sent
    /// before `Requests`).
    Waiting(Waiting),
    /// The group's failed request attempts during the measured episodes, by
    /// operation (sent before `Requests`).
    Errors(Counts),
    /// The group's requests during the measured episodes; the group's last
    /// report.
    Requests(Counts),
    Failed(String),
}

/// Runs `members` (all on clients of `sqs`) through the plan's episodes (or,
/// with a `gate`, the episodes it permits) and reports on `tx`. After the
/// warm-up episode the group pauses until all its members are released, so
/// that its counter is read between episodes.
pub(super) async fn run_group(
    sqs: Sqs,
    members: Vec<Member>,
    plan: Plan,
    gate: Option<Gate>,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let n = members.len();
    let pause = Arc::new(tokio::sync::Barrier::new(n));
    // The group's counter (requests, failed attempts) after the warm-up.
    let start = Arc::new(Mutex::new((Counts::new(), Counts::new())));
    let agg = Arc::new(Mutex::new(BTreeMap::<u64, (usize, u64, u64, u64)>::new()));
    let waiting = Arc::new(Mutex::new(Waiting::default()));
    // A participant may wait for the others' work on top of the timeout.
    let timeout = plan.timeout + Duration::from_secs_f64(plan.work.max_secs);
    let mut tasks = JoinSet::new();
    for m in members {
        let (pause, start, agg, tx, sqs, waiting, mut gate) = (
            pause.clone(),
            start.clone(),
            agg.clone(),
            tx.clone(),
            sqs.clone(),
            waiting.clone(),
            gate.clone(),
        );
        tasks.spawn(async move {
            let work = plan.work;
            let mut rng = StdRng::seed_from_u64(work.seed.wrapping_add(m.index as u64));
            let mut mine = Waiting::default();
            for k in 0..plan.episodes {
                if let Some(g) = &mut gate
                    && !permitted(g, k).await
                {
                    break;
                }
                if k > 0 && work.max_secs > 0.0 {
                    let secs = rng.random_range(0.0..=work.max_secs);
                    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                }
                let mut this = Waiting::default();
                let s = episode(&m, k, timeout, plan.data_bytes, &mut this).await?;
                if k > 0 {
                    mine.merge(&this);
                }
                let done = {
                    let mut a = agg.lock().expect("lock");
                    let e = a.entry(k).or_insert((0, u64::MAX, 0, 0));
                    e.0 += 1;
                    e.1 = e.1.min(s.before);
                    e.2 = e.2.max(s.before);
                    e.3 = e.3.max(s.released);
                    if e.0 == n { a.remove(&k) } else { None }
                };
                if let Some((_, first, before, released)) = done {
                    let _ = tx.send(Msg::Episode {
                        k,
                        first,
                        before,
                        released,
                    });
                }
                if k == 0 {
                    // Let the coordinator finish the warm-up's deferred
                    // work (state write, deletes) before counting starts.
                    if pause.wait().await.is_leader() {
                        tokio::time::sleep(SETTLE).await;
                        let counter = sqs.requests();
                        *start.lock().expect("lock") = (counter.snapshot(), counter.errors());
                    }
                    pause.wait().await;
                }
            }
            waiting.lock().expect("lock").merge(&mine);
            Ok::<(), String>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        let failed = match r {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(e) => format!("a participant task failed: {e}"),
        };
        let _ = tx.send(Msg::Failed(failed));
        tasks.abort_all();
        return;
    }
    let (start, errors_start) = start.lock().expect("lock").clone();
    let waiting = waiting.lock().expect("lock").clone();
    let _ = tx.send(Msg::Waiting(waiting));
    let counter = sqs.requests();
    let _ = tx.send(Msg::Errors(diff(&counter.errors(), &errors_start)));
    let _ = tx.send(Msg::Requests(diff(&counter.snapshot(), &start)));
}

/// Connects members `first..first + count`, each with a client of its own
/// on `sqs`'s connections (many at once: a large N would otherwise take long
/// to start).
pub(super) async fn connect_members(
    sqs: &Sqs,
    name: &str,
    first: usize,
    count: usize,
    baseline: Option<Arc<BaselineQueues>>,
) -> Result<Vec<Member>, Failure> {
    if let Some(queues) = baseline {
        return Ok((first..first + count)
            .map(|index| Member {
                index,
                sqs: sqs.with_own_counter(),
                role: Role::Baseline(queues.clone()),
            })
            .collect());
    }
    let mut out: Vec<Option<Member>> = (0..count).map(|_| None).collect();
    let mut tasks = JoinSet::new();
    let mut next = 0;
    while next < count || !tasks.is_empty() {
        while next < count && tasks.len() < 32 {
            let (sqs, name, i) = (sqs.with_own_counter(), name.to_owned(), next);
            tasks.spawn(async move {
                let b = Barrier::connect(&sqs, &name, &(first + i).to_string()).await;
                (i, sqs, b)
            });
            next += 1;
        }
        if let Some(r) = tasks.join_next().await {
            let (i, sqs, b) = r.map_err(|e| Failure::new(Failed::Internal, e.to_string()))?;
            out[i] = Some(Member {
                index: first + i,
                sqs,
                role: Role::Barrier(b?),
            });
        }
    }
    Ok(out.into_iter().flatten().collect())
}
