//! Running a barrier's coordinator: the driver of the core's coordinator
//! state machine over SQS.
//!
//! `run_coordinator` alternates standing by (`standby`) and, once it holds
//! the coordinators' lease, the active coordinator's loop (`active`), which
//! carries out what the core asks for (`transmits`) and copies the state
//! into tags now and then (`backstop`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqs_barrier_core::BarrierConfig;
use sqs_barrier_core::coordinator::{CoordinatorOptions as CoreOptions, Event};
use sqs_barrier_core::standby::StandbyOptions;
use sqs_barrier_core::state::PublishedState;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::admin::{self, BarrierInfo};
use crate::error::Result;
use crate::sqs::Sqs;

mod active;
mod backstop;
mod rest;
mod standby;
mod transmits;

use backstop::Backstop;
use standby::{open_patiently, read_patiently, stand_by, take_lease};

use crate::lease::Keeper;

/// Tunables of a running coordinator.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CoordinatorOptions {
    /// The core's tunables (heartbeats, write interval).
    pub core: CoreOptions,
    /// How it stands by while another coordinator is active (reads,
    /// probes); `standby.force` takes over at once without probing.
    pub standby: StandbyOptions,
    /// Take over at once, even if another coordinator looks alive (the same
    /// as `standby.force`; kept for the CLI's `--force`).
    pub force: bool,
    /// The visibility timeout of received check-ins. A check-in is held
    /// only until a state write records it (under a second), or, rarely,
    /// while its generation cannot be published yet (extended before it
    /// lapses). If this coordinator dies, a successor sees the check-ins it
    /// held after at most this long.
    pub visibility: Duration,
    /// How long a receiver's long poll waits while check-ins come in (a
    /// batch within the last `busy_wait`); 20 s otherwise. Short, so that a long poll that
    /// answers nothing although check-ins are waiting (SQS warns of rare
    /// empty answers) delays a release by this much at most.
    pub busy_wait: Duration,
    /// Concurrent long polls on the check-in queue during a burst of
    /// check-ins (three or more within a second); default:
    /// `max(64/N, N/50)` clamped to 2..=8, so 8 up to N = 8 and from
    /// N = 400, 2 from N = 32 to 149. Two while check-ins come in one by
    /// one, so that one empty answer does not leave the coordinator deaf.
    /// While nothing comes in (idle, or members working or waiting for a
    /// straggler), one long poll of 20 s listens: three requests a minute.
    pub receivers: Option<usize>,
    /// The most check-ins this coordinator holds (received, not yet
    /// deleted) before it stops receiving. A check-in is held until a state
    /// write records it; while writes fail (the state queue cut off, say)
    /// the coordinator goes on releasing phases whose members all arrived,
    /// and what it holds grows with every phase, each held check-in
    /// extended every `visibility / 2`. At this many it receives nothing
    /// more (the check-ins wait in the queue, nothing is lost) until writes
    /// land again. Default: `max(8 N, 1000)`.
    pub max_held: Option<usize>,
    /// How long the active coordinator goes on holding the lease with
    /// nothing to decide before it gives it back and *rests*: no check-in
    /// received for this long, everything it decided published, nothing
    /// held, no deadline or quorum end due within as long (or within
    /// `visibility`, if longer). Resting, it keeps
    /// receiving check-ins and writing its heartbeats (which decide
    /// nothing); the next check-in or decision takes the lease again.
    /// A lease costs 30 requests a minute to keep (docs/PROTOCOL.md, "The
    /// lease", "Resting"). `None`: it holds the lease for as long as it is
    /// active. Default: 2 s.
    pub rest_after: Option<Duration>,
    /// Live figures of the running coordinator, if wanted (soak tests,
    /// monitoring); share the `Arc` and read it while it runs.
    pub gauges: Option<Arc<CoordinatorGauges>>,
}

/// Live figures of a running coordinator, updated after every step of its
/// loop. They must stay bounded however long it runs.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct CoordinatorGauges {
    /// Check-ins the core holds (not yet deletable).
    pub held: AtomicUsize,
    /// Receipt handles whose visibility the driver keeps extending.
    pub receipts: AtomicUsize,
    /// Messages this coordinator moved to the dead-letter queue.
    pub dead_lettered: AtomicU64,
    /// Its state writes that landed (each publishes the barrier's state,
    /// after which the check-ins it records can be deleted).
    pub state_writes: AtomicU64,
    /// Whether it is the active coordinator (not standing by).
    pub active: AtomicBool,
    /// Times it took over (became active).
    pub takeovers: AtomicU64,
    /// Whether it rests now (active, the lease given back).
    pub resting: AtomicBool,
    /// Times it gave the lease back with nothing to decide (rested).
    pub rests: AtomicU64,
    /// Times it took the lease again after resting and went on.
    pub resumes: AtomicU64,
    /// Times its lease ran out while it was active (it stood down): SQS
    /// did not answer its extensions for the lease's term less its margin.
    pub lease_losses: AtomicU64,
    /// The slowest extension of its lease so far, send to answer, in
    /// microseconds. The barrier's safety assumes a request lands within
    /// the lease's margin (3 s): this shows how close they came.
    pub lease_extension_max_us: AtomicU64,
}

impl Default for CoordinatorOptions {
    fn default() -> Self {
        Self {
            core: CoreOptions::default(),
            standby: StandbyOptions::default(),
            force: false,
            visibility: Duration::from_secs(5),
            receivers: None,
            max_held: None,
            rest_after: Some(Duration::from_secs(2)),
            busy_wait: Duration::from_secs(5),
            gauges: None,
        }
    }
}

impl CoordinatorOptions {
    /// The concurrent long polls on the check-in queue during a burst of
    /// check-ins of a barrier of `members` members: [`receivers`] if set
    /// (at least one), else the default rule described there. For tools
    /// that measure against what the coordinator does (the benchmark's
    /// gather floor).
    ///
    /// [`receivers`]: Self::receivers
    pub fn burst_receivers(&self, members: usize) -> usize {
        self.receivers.unwrap_or(default_receivers(members)).max(1)
    }
}

/// What a request run beside the coordinator's loop came to.
enum Done {
    /// A state write: written, or not written because another coordinator
    /// wrote the state read before it.
    Write {
        version: u64,
        outcome: Result<Option<Box<PublishedState>>>,
        /// The configuration as the write left it (marked extended before
        /// the first state of version 2).
        config: Option<BarrierConfig>,
    },
    /// A copy of the state written into tags (see `published`).
    Backstop(Result<()>),
    /// The deletes of check-ins a write recorded.
    Delete(Result<()>),
}

/// How an active coordinator's run ended without an error.
enum Ended {
    Shutdown,
    Superseded {
        by: String,
    },
    /// Its lease ran out (SQS unreachable for longer than the lease allows,
    /// or the token taken): it decides nothing more.
    LeaseLost,
    /// It rested, and another coordinator took the lease meanwhile (or
    /// may have): why.
    Displaced {
        why: String,
    },
}

/// Runs the coordinator of barrier `name` until `shutdown` resolves or a
/// permanent error occurs (a deleted queue, denied access). Every event of
/// the active coordinator is sent to `events` if given.
///
/// It never refuses to start: if another coordinator is alive it stands by
/// and takes over as soon as that one is gone (see
/// [`sqs_barrier_core::standby`]); if it finds that another took over, it
/// stands by again. So the same call under a supervisor that restarts it,
/// or on two hosts at once, keeps one coordinator active.
///
/// On shutdown the check-ins it holds are made visible again at once and a
/// last state marked `stopped` is published, so that a successor takes over
/// at once.
pub async fn run_coordinator(
    sqs: &Sqs,
    name: &str,
    opts: CoordinatorOptions,
    events: Option<mpsc::UnboundedSender<Event>>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    // The configuration as `setup` stored it, and the copy of the state in
    // tags, in one read per process: the copy holds the state of a barrier
    // whose state queue emptied (no coordinator for longer than SQS keeps a
    // message) or that an earlier version ran.
    let mut info = open_patiently(sqs, name).await?;
    let mut backstop = info.state.take();
    tokio::pin!(shutdown);
    let mut force = opts.force || opts.standby.force;
    loop {
        let id = format!(
            "{:08x}@{}/{}",
            rand::random::<u32>(),
            admin::hostname(),
            std::process::id()
        );
        if let Some(g) = &opts.gauges {
            g.active.store(false, Ordering::Relaxed);
        }
        let Some(restored) = stand_by(sqs, &info, &id, &opts, force, shutdown.as_mut()).await?
        else {
            return Ok(());
        };
        // Only the holder of the lease decides. A coordinator that stands
        // by because the active one looks gone may still have to wait for
        // it: until its lease runs out.
        let Some(lease) = take_lease(sqs, &info, shutdown.as_mut()).await? else {
            return Ok(());
        };
        // The last holder's writes landed before its lease ran out, and so
        // before this read.
        let fresh = read_patiently(sqs, &info).await?;
        // The newest of what the state queue and the copy in tags hold.
        let restored = [restored, fresh, backstop.take()]
            .into_iter()
            .flatten()
            .max_by(|a, b| a.order().cmp(&b.order()));
        force = false;
        if let Some(g) = &opts.gauges {
            g.active.store(true, Ordering::Relaxed);
            g.takeovers.fetch_add(1, Ordering::Relaxed);
        }
        let mut core_opts = opts.core.clone();
        // A predecessor's held check-ins reappear after the visibility timeout.
        core_opts.restart_grace = opts.visibility;
        let core = sqs_barrier_core::Coordinator::new(
            info.config.clone(),
            id.clone(),
            core_opts,
            restored.as_ref(),
        );
        let mut driver = Driver {
            lease: Some(lease),
            resting: None,
            sqs: sqs.clone(),
            info: info.clone(),
            backstop: Backstop::new(restored.as_ref()),
            core,
            held: HashMap::new(),
            background: JoinSet::new(),
            last_written: None,
            opts: opts.clone(),
            events: events.clone(),
        };
        match driver.run(shutdown.as_mut()).await? {
            Ended::Shutdown => return Ok(()),
            Ended::Superseded { by } => {
                tracing::warn!(barrier = name, coordinator = %id, other = %by, "another coordinator took over; standing by");
            }
            Ended::Displaced { why } => {
                tracing::warn!(barrier = name, coordinator = %id, %why, "another coordinator took the lease while this one rested; standing by");
            }
            Ended::LeaseLost => {
                if let Some(g) = &opts.gauges {
                    g.lease_losses.fetch_add(1, Ordering::Relaxed);
                }
                tracing::warn!(barrier = name, coordinator = %id, "the coordinator lease ran out (SQS unreachable?); it decides nothing more and stands by");
            }
        }
    }
}

struct Driver {
    /// The lease: while it is held, this coordinator decides. Taken at a
    /// clean stop (given back after the last write), and while it rests.
    lease: Option<Keeper>,
    /// Resting (the lease given back with nothing to decide): the token
    /// given back, if known, to tell at the next take whether anybody
    /// else received it meanwhile.
    resting: Option<Option<crate::lease::Token>>,
    sqs: Sqs,
    info: BarrierInfo,
    backstop: Backstop,
    core: sqs_barrier_core::Coordinator<String>,
    /// Receipt handles held, with when their visibility was last set.
    held: HashMap<String, Instant>,
    /// State writes and check-in deletes under way. They run beside the
    /// loop, so that counting and releasing never wait for them (a write
    /// is three round trips, a large barrier's deletes several).
    background: JoinSet<Done>,
    /// The state of the write under way, for its copy in tags.
    last_written: Option<Box<PublishedState>>,
    opts: CoordinatorOptions,
    events: Option<mpsc::UnboundedSender<Event>>,
}

impl Driver {
    /// Whether this coordinator holds the lease now (and may decide).
    fn holds_lease(&self) -> bool {
        self.lease.as_ref().is_some_and(Keeper::is_held)
    }

    /// Until when a state write of it may be sent: the end of its lease
    /// as far as it knows now; while it rests, any time, since the only
    /// writes then are heartbeats and its last word, which decide nothing
    /// (the state it publishes is the one it published before it rested,
    /// and a record of another coordinator's later term orders after it).
    fn lease_until(&self) -> Duration {
        if self.resting.is_some() {
            return Duration::MAX;
        }
        self.lease.as_ref().map_or(Duration::ZERO, Keeper::until)
    }
}

/// Resolves once the lease (if any) is lost.
async fn lease_lost(lease: &mut Option<Keeper>) {
    match lease {
        Some(k) => k.lost().await,
        None => std::future::pending().await,
    }
}

/// The receivers of a barrier of `n` members in a burst: many for small
/// barriers, where a round trip lost is most of a release and the extra
/// receives are few, and for large ones, which need them to count N
/// check-ins ten at a time; two in between, where each extra receiver
/// costs a request per participant-episode more than it saves.
fn default_receivers(n: usize) -> usize {
    (64 / n.max(1)).max(n / 50).clamp(2, 8)
}

/// The check-ins a coordinator of a barrier of `n` members holds at most
/// (see [`CoordinatorOptions::max_held`]): eight phases' worth, and at
/// least 1,000, far below SQS's 120,000 messages in flight per queue.
fn default_max_held(n: usize) -> usize {
    n.saturating_mul(8).max(1000)
}

#[cfg(test)]
mod tests {
    use super::{CoordinatorOptions, default_receivers};

    #[test]
    fn receivers_are_many_for_small_and_large_barriers_and_two_between() {
        let by_n: Vec<_> = [1, 2, 8, 16, 32, 64, 149, 200, 400, 10_000]
            .into_iter()
            .map(|n| (n, default_receivers(n)))
            .collect();
        assert_eq!(
            by_n,
            [
                (1, 8),
                (2, 8),
                (8, 8),
                (16, 4),
                (32, 2),
                (64, 2),
                (149, 2),
                (200, 4),
                (400, 8),
                (10_000, 8)
            ]
        );
    }

    #[test]
    fn burst_receivers_are_the_option_or_the_default_rule() {
        let mut o = CoordinatorOptions::default();
        assert_eq!(o.burst_receivers(64), 2);
        assert_eq!(o.burst_receivers(1000), 8);
        o.receivers = Some(5);
        assert_eq!(o.burst_receivers(64), 5);
        o.receivers = Some(0);
        assert_eq!(o.burst_receivers(64), 1);
    }
}
