//! A group of participants: all of them, as tasks of this process, or the
//! share of one worker process (`bench --processes`). The group runs its
//! members through the episodes and reports on a channel.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqs_barrier::{Barrier, Sqs};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::baseline::{self, BaselineQueues};
use super::stats::diff;
use super::{Counts, Failure, SETTLE, now_us};
use crate::exit;

/// A participant: a member of the barrier, or of the handout's protocol.
pub(super) enum Member {
    Barrier(Barrier),
    Baseline {
        sqs: Sqs,
        queues: Arc<BaselineQueues>,
        id: String,
    },
}

/// One episode of one participant: (instant before the check-in, instant
/// released), in microseconds.
async fn episode(m: &Member, k: u64, timeout: Duration) -> Result<(u64, u64), String> {
    match m {
        Member::Barrier(b) => {
            let before = now_us();
            let arrival = b
                .arrive(Some(timeout))
                .await
                .map_err(|e| format!("episode {k}: participant {}: {e}", b.member()))?;
            arrival
                .await
                .map_err(|e| format!("episode {k}: participant {}: {e}", b.member()))?;
            Ok((before, now_us()))
        }
        Member::Baseline { sqs, queues, id } => {
            baseline::participant(sqs, queues, id, k, timeout).await
        }
    }
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
    /// The group's requests during the measured episodes.
    Requests(Counts),
    Failed(String),
}

/// Runs `members` (all on `sqs`) through `episodes` episodes and reports on
/// `tx`. After the warm-up episode the group pauses until all its members
/// are released, so that its counter is read between episodes.
pub(super) async fn run_group(
    sqs: Sqs,
    members: Vec<Member>,
    episodes: u64,
    timeout: Duration,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let n = members.len();
    let pause = Arc::new(tokio::sync::Barrier::new(n));
    let start = Arc::new(Mutex::new(Counts::new()));
    let agg = Arc::new(Mutex::new(BTreeMap::<u64, (usize, u64, u64, u64)>::new()));
    let mut tasks = JoinSet::new();
    for m in members {
        let (pause, start, agg, tx, sqs) = (
            pause.clone(),
            start.clone(),
            agg.clone(),
            tx.clone(),
            sqs.clone(),
        );
        tasks.spawn(async move {
            for k in 0..episodes {
                let (b, r) = episode(&m, k, timeout).await?;
                let done = {
                    let mut a = agg.lock().expect("lock");
                    let e = a.entry(k).or_insert((0, u64::MAX, 0, 0));
                    e.0 += 1;
                    e.1 = e.1.min(b);
                    e.2 = e.2.max(b);
                    e.3 = e.3.max(r);
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
                        *start.lock().expect("lock") = sqs.requests().snapshot();
                    }
                    pause.wait().await;
                }
            }
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
    let start = start.lock().expect("lock").clone();
    let _ = tx.send(Msg::Requests(diff(&sqs.requests().snapshot(), &start)));
}

/// Connects members `first..first + count` (many at once: a large N would
/// otherwise take long to start).
pub(super) async fn connect_members(
    sqs: &Sqs,
    name: &str,
    first: usize,
    count: usize,
    baseline: Option<Arc<BaselineQueues>>,
) -> Result<Vec<Member>, Failure> {
    if let Some(queues) = baseline {
        return Ok((first..first + count)
            .map(|i| Member::Baseline {
                sqs: sqs.clone(),
                queues: queues.clone(),
                id: i.to_string(),
            })
            .collect());
    }
    let mut out: Vec<Option<Member>> = (0..count).map(|_| None).collect();
    let mut tasks = JoinSet::new();
    let mut next = 0;
    while next < count || !tasks.is_empty() {
        while next < count && tasks.len() < 32 {
            let (sqs, name, i) = (sqs.clone(), name.to_owned(), next);
            tasks.spawn(async move {
                let b = Barrier::connect(&sqs, &name, &(first + i).to_string()).await;
                (i, b)
            });
            next += 1;
        }
        if let Some(r) = tasks.join_next().await {
            let (i, b) = r.map_err(|e| Failure::new(exit::INTERNAL, e.to_string()))?;
            out[i] = Some(Member::Barrier(b?));
        }
    }
    Ok(out.into_iter().flatten().collect())
}
