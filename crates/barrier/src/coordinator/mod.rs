//! Running a barrier's coordinator: the driver of the core's coordinator
//! state machine over SQS.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqs_barrier_core::BarrierConfig;
use sqs_barrier_core::coordinator::{CoordinatorOptions as CoreOptions, Event, Transmit};
use sqs_barrier_core::standby::StandbyOptions;
use sqs_barrier_core::state::PublishedState;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::admin::{self, BarrierInfo};
use crate::clock::{mono_now, wall_now};
use crate::error::{Error, Result};
use crate::notices;
use crate::published;
use crate::sqs::Sqs;

mod backstop;
mod standby;

use backstop::Backstop;
use standby::{open_patiently, read_patiently, stand_by, take_lease};

use crate::lease::Keeper;

/// Resolves once the lease (if any) is lost.
async fn lease_lost(lease: &mut Option<Keeper>) {
    match lease {
        Some(k) => k.lost().await,
        None => std::future::pending().await,
    }
}

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
    /// Whether it is the active coordinator (not standing by).
    pub active: AtomicBool,
    /// Times it took over (became active).
    pub takeovers: AtomicU64,
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
            busy_wait: Duration::from_secs(5),
            gauges: None,
        }
    }
}

struct Received {
    receipt: String,
    body: String,
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
    /// clean stop (given back after the last write).
    lease: Option<Keeper>,
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

/// What the receivers do: how many long-poll, and how long each waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Polling {
    receivers: usize,
    wait: i32,
}

impl Driver {
    async fn run<S: Future<Output = ()>>(&mut self, mut shutdown: Pin<&mut S>) -> Result<Ended> {
        let n = self.info.config.members.len();
        let receivers = self.opts.receivers.unwrap_or(default_receivers(n)).max(1);
        let (tx, mut rx) = mpsc::channel::<Result<Vec<Received>>>(receivers * 4);
        // Quiet: one receiver, 20 s polls. Busy (a batch within the last
        // `busy_wait`): two receivers, short polls. In a burst (check-ins
        // coming fast, within the last `busy_wait`): every receiver.
        let busy_wait = self.opts.busy_wait.as_secs().clamp(1, 20) as i32;
        let polling_for = move |busy: bool, burst: bool| {
            if busy {
                Polling {
                    receivers: if burst { receivers } else { receivers.min(2) },
                    wait: busy_wait,
                }
            } else {
                Polling {
                    receivers: 1,
                    wait: 20,
                }
            }
        };
        // Busy from the start: a coordinator that takes over expects the
        // check-ins its predecessor held or never received, and one long
        // poll that answers empty (SQS warns of them) would leave it deaf
        // for 20 s.
        let mut last_batch: Option<Instant> = Some(Instant::now());
        let mut last_burst: Option<Instant> = None;
        let mut recent: VecDeque<(Instant, usize)> = VecDeque::new();
        let (polling_tx, polling_rx) = watch::channel(polling_for(true, false));
        let mut pollers = JoinSet::new();
        for index in 0..receivers {
            pollers.spawn(poll_checkins(
                index,
                self.sqs.clone(),
                self.info.urls.checkin.clone(),
                self.opts.visibility,
                polling_rx.clone(),
                tx.clone(),
            ));
        }
        drop(tx);
        let result = loop {
            let now = mono_now();
            let wake = self
                .core
                .poll_timeout()
                .map_or(Duration::from_secs(1), |t| t.saturating_sub(now))
                .min(self.opts.visibility / 3)
                // Wakes often enough to tell its lease it lives (see
                // `lease::Keeper::alive`).
                .min(Duration::from_secs(2));
            tokio::select! {
                _ = shutdown.as_mut() => break Ok(Ended::Shutdown),
                batch = rx.recv() => match batch {
                    Some(Ok(batch)) => {
                        let at = Instant::now();
                        last_batch = Some(at);
                        recent.push_back((at, batch.len()));
                        while recent.front().is_some_and(|(t, _)| at.duration_since(*t) > BURST_WINDOW) {
                            recent.pop_front();
                        }
                        if recent.iter().map(|(_, n)| n).sum::<usize>() >= BURST_CHECKINS {
                            last_burst = Some(at);
                        }
                        let now = mono_now();
                        for m in batch {
                            self.held.insert(m.receipt.clone(), Instant::now());
                            self.core.handle_message(m.receipt, &m.body, now);
                        }
                    }
                    Some(Err(e)) => break Err(e),
                    None => break Ok(Ended::Shutdown),
                },
                Some(done) = self.background.join_next(), if !self.background.is_empty() => {
                    if let Err(e) = self.finished(done) {
                        break Err(e);
                    }
                }
                _ = lease_lost(&mut self.lease) => break Ok(Ended::LeaseLost),
                _ = tokio::time::sleep(wake) => {}
            }
            if !self.holds_lease() {
                break Ok(Ended::LeaseLost);
            }
            if let Some(lease) = &self.lease {
                lease.alive();
            }
            self.core.handle_timeout(mono_now());
            let step = Instant::now();
            match self.carry_out().await {
                Ok(()) => {}
                // What failed is redone by the protocol: a notice not sent is
                // sent again when the participant re-sends its check-in, a
                // message not deleted comes back and is recognised, a state
                // not written is written again.
                Err(e) if e.is_transient() => {
                    tracing::warn!(error = %e, "SQS request failed; carrying on");
                }
                Err(e) => break Err(e),
            }
            if let Some(by) = self.core.superseded() {
                break Ok(Ended::Superseded { by: by.to_owned() });
            }
            if let Err(e) = self.extend_visibility().await {
                tracing::warn!(error = %e, "could not extend the visibility of held check-ins");
            }
            // Busy for one short poll after each batch: a burst of check-ins
            // keeps it busy, a lone arrival costs a few receives. Two short
            // polls rather than one long one while check-ins come in: a
            // false empty answer (SQS warns of them; the chaos soak injects
            // them) then delays a check-in 5 s at most, not 20. Every
            // receiver only in a burst: while a receiver's answer travels
            // back it hears nothing, and the last check-in of a burst that
            // finds every receiver so is counted a round trip later.
            let busy = last_batch.is_some_and(|t| t.elapsed() < self.opts.busy_wait);
            let burst = last_burst.is_some_and(|t| t.elapsed() < self.opts.busy_wait);
            polling_tx.send_if_modified(|p| {
                let want = polling_for(busy, burst);
                std::mem::replace(p, want) != want
            });
            let took = step.elapsed();
            if took >= self.opts.visibility / 4 {
                // Receiving waits meanwhile, and held check-ins may lapse.
                tracing::warn!(?took, "a coordinator step was slow (SQS slow or retrying)");
            }
            if let Some(g) = &self.opts.gauges {
                g.held.store(self.core.held(), Ordering::Relaxed);
                g.receipts.store(self.held.len(), Ordering::Relaxed);
                if let Some(lease) = &self.lease {
                    let us = lease.slowest_extension().as_micros() as u64;
                    g.lease_extension_max_us.fetch_max(us, Ordering::Relaxed);
                }
            }
        };
        pollers.abort_all();
        // Let the writes and deletes under way land first: a write that
        // landed after the last word below would hide it.
        let settle = async {
            while let Some(done) = self.background.join_next().await {
                if let Err(e) = self.finished(done) {
                    tracing::warn!(error = %e, "a request under way at the stop failed");
                }
            }
        };
        if tokio::time::timeout(SETTLE, settle).await.is_err() {
            self.background.abort_all();
        }
        // Hand the held check-ins to a successor now rather than after the
        // visibility timeout.
        let held: Vec<String> = self.held.drain().map(|(r, _)| r).collect();
        if let Err(e) = self.change_visibility(&held, 0).await {
            tracing::warn!(error = %e, "could not release held check-ins; they reappear after the visibility timeout");
        }
        if matches!(result, Ok(Ended::Shutdown)) {
            // The last word: a standby takes over at once.
            match self.write_final_state().await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not publish that this coordinator stopped")
                }
            }
        }
        // Given back after the last word, for a standby to take at once.
        // A lease that ran out is not: it may be somebody else's.
        if let Some(lease) = self.lease.take()
            && lease.is_held()
        {
            lease.release().await;
        }
        tracing::info!(barrier = %self.info.config.name, coordinator = %self.core.id(), "coordinator stopped");
        result
    }

    /// Whether this coordinator holds the lease now (and may decide).
    fn holds_lease(&self) -> bool {
        self.lease.as_ref().is_some_and(Keeper::is_held)
    }

    /// Until when it holds the lease, as far as it knows now.
    fn lease_until(&self) -> Duration {
        self.lease.as_ref().map_or(Duration::ZERO, Keeper::until)
    }

    /// Carries out everything the core asks for, until it asks nothing more.
    async fn carry_out(&mut self) -> Result<()> {
        self.publish_events();
        while let Some(t) = self.core.poll_transmit() {
            if !self.holds_lease() {
                // What is left is not done; the loop stands down.
                return Ok(());
            }
            match t {
                Transmit::Notify { generation, body } => {
                    let url = self.info.urls.release_for(generation);
                    notices::send_notice(&self.sqs, url, &body).await?;
                }
                Transmit::Sweep { generation, below } => {
                    // Off the coordinator's path: a release does not wait
                    // for it, and an empty queue costs its 1 s long poll.
                    tokio::spawn(notices::sweep(
                        self.sqs.clone(),
                        self.info.urls.release_for(generation).to_owned(),
                        self.info.config.clone(),
                        below,
                    ));
                }
                Transmit::Delete(receipts) => {
                    for r in &receipts {
                        self.held.remove(r);
                    }
                    let (sqs, url) = (self.sqs.clone(), self.info.urls.checkin.clone());
                    self.background
                        .spawn(async move { Done::Delete(delete(&sqs, &url, receipts).await) });
                }
                Transmit::DeadLetter {
                    token,
                    body,
                    reason,
                } => {
                    self.dead_letter(&body, &reason).await?;
                    if let Some(g) = &self.opts.gauges {
                        g.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    }
                    self.held.remove(&token);
                    delete(&self.sqs, &self.info.urls.checkin, vec![token]).await?;
                }
                Transmit::WriteState { version, mut state } => {
                    // The core runs on the monotonic clock; people read the
                    // wall clock's time in the state.
                    state.stamp_wall(wall_now());
                    let (sqs, info) = (self.sqs.clone(), self.info.clone());
                    let until = self.lease_until();
                    self.last_written = Some(state.clone());
                    self.background.spawn(async move {
                        let mut config = None;
                        if state.needed_version() >= 2 {
                            match admin::mark_extended(&sqs, &info).await {
                                Ok(c) => config = Some(c),
                                Err(e) => {
                                    return Done::Write {
                                        version,
                                        outcome: Err(e),
                                        config,
                                    };
                                }
                            }
                        }
                        let cfg = config.as_ref().unwrap_or(&info.config);
                        let outcome = published::write_state(&sqs, &info, cfg, &state, until).await;
                        if matches!(outcome, Ok(None)) {
                            return Done::Write {
                                version,
                                outcome: Ok(None),
                                config: Some(cfg.clone()).filter(|_| config.is_some()),
                            };
                        }
                        Done::Write {
                            version,
                            outcome,
                            config,
                        }
                    });
                }
            }
        }
        self.publish_events();
        Ok(())
    }

    /// Logs the core's events and passes them on, in the order they
    /// happened: before the requests they lead to (a release is reported
    /// before its notice goes out) where possible.
    fn publish_events(&mut self) {
        while let Some(e) = self.core.poll_event() {
            log_event(&e);
            if let Some(tx) = &self.events {
                let _ = tx.send(e);
            }
        }
    }

    /// Takes in what a request run beside the loop came to. Errors that
    /// end the run (permanent ones) are returned.
    fn finished(&mut self, done: std::result::Result<Done, tokio::task::JoinError>) -> Result<()> {
        let done = done.map_err(|e| Error::Sqs {
            endpoint: self.sqs.endpoint().into(),
            operation: "a background request",
            detail: e.to_string(),
        })?;
        match done {
            Done::Write {
                version,
                outcome: Ok(None),
                config,
            } => {
                if let Some(c) = config {
                    self.info.config = c;
                }
                self.core.handle_state_written(version);
                self.copy_to_tags();
            }
            Done::Backstop(Ok(())) => self.backstop.writing = false,
            Done::Backstop(Err(e)) => {
                self.backstop.failed();
                tracing::warn!(error = %e, "could not copy the state into tags; trying again later");
            }
            Done::Write {
                outcome: Ok(Some(other)),
                config,
                ..
            } => {
                if let Some(c) = config {
                    self.info.config = c;
                }
                self.core.handle_state_observed(&other, mono_now())
            }
            Done::Write {
                outcome: Err(e), ..
            } if e.is_transient() => {
                tracing::warn!(error = %e, "could not publish the coordinator state; retrying");
                self.core.handle_state_write_failed();
            }
            // Harmless: a check-in not deleted comes back and is recognised
            // as counted.
            Done::Delete(Err(e)) if e.is_transient() => {
                tracing::warn!(error = %e, "could not delete counted check-ins; they come back and are recognised");
            }
            Done::Write {
                outcome: Err(e), ..
            }
            | Done::Delete(Err(e)) => return Err(e),
            Done::Delete(Ok(())) => {}
        }
        Ok(())
    }

    /// After a write: copies the state into tags if that is due (see
    /// `published`), beside the loop.
    fn copy_to_tags(&mut self) {
        let Some(state) = self.last_written.take() else {
            return;
        };
        if !self.backstop.due(&state) {
            return;
        }
        self.backstop.record(&state);
        let (sqs, info) = (self.sqs.clone(), self.info.clone());
        self.background.spawn(async move {
            Done::Backstop(published::write_backstop(&sqs, &info, &state).await)
        });
    }

    /// On a clean stop: publishes the last state, marked `stopped`, unless
    /// another coordinator has published a newer one; and its copy in tags.
    async fn write_final_state(&mut self) -> Result<()> {
        let mut state = self.core.final_snapshot(mono_now());
        state.stamp_wall(wall_now());
        let until = self.lease_until();
        let other =
            published::write_state(&self.sqs, &self.info, &self.info.config, &state, until).await?;
        if other.is_none() {
            published::write_backstop(&self.sqs, &self.info, &state).await?;
        }
        Ok(())
    }

    async fn dead_letter(&self, body: &str, reason: &str) -> Result<()> {
        notices::send_dead_letter(&self.sqs, &self.info, body, reason).await
    }

    async fn extend_visibility(&mut self) -> Result<()> {
        let due = self.opts.visibility / 2;
        let stale: Vec<String> = self
            .held
            .iter()
            .filter(|(_, t)| t.elapsed() >= due)
            .map(|(r, _)| r.clone())
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        let secs = self.opts.visibility.as_secs() as i32;
        self.change_visibility(&stale, secs).await?;
        let now = Instant::now();
        for r in stale {
            if let Some(t) = self.held.get_mut(&r) {
                *t = now;
            }
        }
        Ok(())
    }

    async fn change_visibility(&self, receipts: &[String], secs: i32) -> Result<()> {
        self.sqs
            .change_visibility(&self.info.urls.checkin, receipts, secs)
            .await
    }
}

/// A burst: at least this many check-ins received within [`BURST_WINDOW`].
const BURST_CHECKINS: usize = 3;
const BURST_WINDOW: Duration = Duration::from_secs(1);

/// The receivers of a barrier of `n` members in a burst: many for small
/// barriers, where a round trip lost is most of a release and the extra
/// receives are few, and for large ones, which need them to count N
/// check-ins ten at a time; two in between, where each extra receiver
/// costs a request per participant-episode more than it saves.
fn default_receivers(n: usize) -> usize {
    (64 / n.max(1)).max(n / 50).clamp(2, 8)
}

/// `DeleteMessageBatch` requests of the check-in queue in flight at once.
const DELETES_IN_FLIGHT: usize = 8;

/// How long a stopping coordinator waits for its writes and deletes under
/// way.
const SETTLE: Duration = Duration::from_secs(10);

/// Deletes counted check-ins (their receipt handles) from the check-in
/// queue `url`.
async fn delete(sqs: &Sqs, url: &str, receipts: Vec<String>) -> Result<()> {
    // The batches go out several at a time: one after another, the
    // check-ins of a large barrier would take N / 10 round trips.
    let mut chunks = receipts.chunks(10).map(<[String]>::to_vec);
    let mut running = JoinSet::new();
    loop {
        while running.len() < DELETES_IN_FLIGHT {
            let Some(chunk) = chunks.next() else { break };
            let (sqs, url) = (sqs.clone(), url.to_owned());
            running.spawn(async move { sqs.delete_batch(&url, &chunk).await });
        }
        let Some(done) = running.join_next().await else {
            return Ok(());
        };
        done.map_err(|e| Error::Sqs {
            endpoint: sqs.endpoint().into(),
            operation: "DeleteMessageBatch",
            detail: e.to_string(),
        })??;
    }
}

async fn poll_checkins(
    index: usize,
    sqs: Sqs,
    url: String,
    visibility: Duration,
    mut polling: watch::Receiver<Polling>,
    tx: mpsc::Sender<Result<Vec<Received>>>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let p = *polling.borrow_and_update();
        if index >= p.receivers {
            // Parked while the barrier is quiet.
            if polling.changed().await.is_err() {
                return;
            }
            continue;
        }
        let r = sqs
            .client()
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility.as_secs() as i32)
            .wait_time_seconds(p.wait)
            .send()
            .await;
        let batch = match r {
            Ok(out) => Ok(out
                .messages
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| {
                    Some(Received {
                        receipt: m.receipt_handle?,
                        body: m.body.unwrap_or_default(),
                    })
                })
                .collect::<Vec<_>>()),
            Err(e) => Err(sqs.error("ReceiveMessage", e)),
        };
        match &batch {
            Ok(b) if b.is_empty() => continue,
            Ok(b) => {
                tracing::trace!(messages = b.len(), "received from the check-in queue");
                backoff = Duration::from_millis(100);
            }
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, retry_in = ?backoff, "receiving check-ins failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            Err(_) => {}
        }
        let fatal = batch.is_err();
        if tx.send(batch).await.is_err() || fatal {
            return;
        }
    }
}

fn log_event(e: &Event) {
    match e {
        Event::Arrived {
            generation,
            member,
            count,
            of,
        } => tracing::debug!(generation, %member, count, of, "arrived"),
        Event::Released { generation } => tracing::info!(generation, "released"),
        Event::Broken {
            from_gen,
            cause,
            missing,
        } => tracing::warn!(from_gen, %cause, missing = ?missing, "barrier broken"),
        Event::Rejected { reason } => tracing::warn!(%reason, "message rejected"),
        Event::Watched { by } => tracing::info!(standby = %by, "a standby is watching"),
        Event::Superseded { by } => {
            tracing::warn!(other = %by, "another coordinator wrote the state after us")
        }
        Event::Joined { member, from } => tracing::info!(%member, from, "member joined"),
        Event::JoinRefused { member, reason } => {
            tracing::warn!(member = ?member, %reason, "join refused")
        }
        Event::Left { member, generation } => tracing::info!(%member, generation, "member left"),
        Event::Dropped {
            generation,
            members,
        } => {
            tracing::warn!(generation, members = ?members, "released on a quorum without these members, who are dropped")
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::default_receivers;

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
}
