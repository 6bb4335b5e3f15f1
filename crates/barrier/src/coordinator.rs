//! Running a barrier's coordinator: the driver of the core's coordinator
//! state machine over SQS.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
};
use sqs_barrier_core::coordinator::{CoordinatorOptions as CoreOptions, Event, Transmit};
use sqs_barrier_core::standby::{
    Event as StandbyEvent, Standby, StandbyOptions, Transmit as StandbyTransmit,
};
use sqs_barrier_core::state::PublishedState;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::admin::{self, BarrierInfo};
use crate::error::{Error, Result};
use crate::notices;
use crate::participant::{mono_now, send_checkin_queue, wall_now};
use crate::sqs::Sqs;

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
    /// Concurrent long polls on the check-in queue while check-ins come in
    /// (default: `max(2, min(8, N/50))`): two at least, so that one empty
    /// answer does not leave the coordinator deaf. While nothing comes in
    /// (idle, or members working or waiting for a straggler), one long poll
    /// of 20 s listens: three requests a minute.
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

/// How an active coordinator's run ended without an error.
enum Ended {
    Shutdown,
    Superseded { by: String },
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
    let info = admin::open(sqs, name).await?;
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
            sqs: sqs.clone(),
            info: info.clone(),
            core,
            held: HashMap::new(),
            opts: opts.clone(),
            events: events.clone(),
        };
        match driver.run(shutdown.as_mut()).await? {
            Ended::Shutdown => return Ok(()),
            Ended::Superseded { by } => {
                tracing::warn!(barrier = name, coordinator = %id, other = %by, "another coordinator took over; standing by");
            }
        }
    }
}

/// Stands by until this process should coordinate: returns the published
/// state to start from, or `None` on shutdown.
async fn stand_by<S: Future<Output = ()>>(
    sqs: &Sqs,
    info: &BarrierInfo,
    id: &str,
    opts: &CoordinatorOptions,
    force: bool,
    mut shutdown: Pin<&mut S>,
) -> Result<Option<Option<PublishedState>>> {
    let name = &info.config.name;
    let mut sopts = opts.standby.clone();
    sopts.force = force;
    let mut sb = Standby::new(&info.config, id, sopts, mono_now());
    loop {
        while let Some(t) = sb.poll_transmit() {
            match t {
                StandbyTransmit::ReadState => {
                    match admin::read_state(sqs, &info.urls.checkin).await {
                        Ok(state) => sb.handle_state(state, mono_now()),
                        Err(e) if e.is_transient() => {
                            tracing::warn!(error = %e, "standby: could not read the coordinator's state");
                            sb.handle_read_failed(mono_now());
                        }
                        Err(e) => return Err(e),
                    }
                }
                StandbyTransmit::Probe(body) => {
                    let group = format!("probe.{id}");
                    match send_checkin_queue(sqs, info, &body, &group).await {
                        Ok(()) => {}
                        Err(e) if e.is_transient() => {
                            tracing::warn!(error = %e, "standby: could not send a probe")
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        while let Some(e) = sb.poll_event() {
            match e {
                StandbyEvent::StandingBy { active } => tracing::info!(
                    barrier = %name,
                    coordinator = %id,
                    %active,
                    "standing by: another coordinator is alive; taking over when it is gone"
                ),
                StandbyEvent::TakeOver {
                    reason,
                    from,
                    state,
                } => {
                    tracing::info!(
                        barrier = %name,
                        coordinator = %id,
                        from = from.as_deref().unwrap_or("-"),
                        %reason,
                        "coordinator active"
                    );
                    return Ok(Some(state.map(|s| *s)));
                }
                _ => {}
            }
        }
        let wake = sb
            .poll_timeout()
            .map_or(Duration::from_secs(1), |t| t.saturating_sub(mono_now()));
        tokio::select! {
            _ = shutdown.as_mut() => return Ok(None),
            _ = tokio::time::sleep(wake) => {}
        }
        sb.handle_timeout(mono_now());
    }
}

struct Driver {
    sqs: Sqs,
    info: BarrierInfo,
    core: sqs_barrier_core::Coordinator<String>,
    /// Receipt handles held, with when their visibility was last set.
    held: HashMap<String, Instant>,
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
        let receivers = self.opts.receivers.unwrap_or((n / 50).clamp(2, 8)).max(1);
        let (tx, mut rx) = mpsc::channel::<Result<Vec<Received>>>(receivers * 4);
        // Busy (a batch within the last `busy_wait`): every receiver, short
        // polls. Quiet: one receiver, 20 s polls.
        let busy_wait = self.opts.busy_wait.as_secs().clamp(1, 20) as i32;
        let polling_for = move |busy: bool| {
            if busy {
                Polling {
                    receivers,
                    wait: busy_wait,
                }
            } else {
                Polling {
                    receivers: 1,
                    wait: 20,
                }
            }
        };
        let mut last_batch: Option<Instant> = None;
        let (polling_tx, polling_rx) = watch::channel(polling_for(false));
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
            let now = wall_now();
            let wake = self
                .core
                .poll_timeout()
                .map_or(Duration::from_secs(1), |t| t.saturating_sub(now))
                .min(self.opts.visibility / 3);
            tokio::select! {
                _ = shutdown.as_mut() => break Ok(Ended::Shutdown),
                batch = rx.recv() => match batch {
                    Some(Ok(batch)) => {
                        last_batch = Some(Instant::now());
                        let now = wall_now();
                        for m in batch {
                            self.held.insert(m.receipt.clone(), Instant::now());
                            self.core.handle_message(m.receipt, &m.body, now);
                        }
                    }
                    Some(Err(e)) => break Err(e),
                    None => break Ok(Ended::Shutdown),
                },
                _ = tokio::time::sleep(wake) => {}
            }
            self.core.handle_timeout(wall_now());
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
            // them) then delays a check-in 5 s at most, not 20.
            let busy = last_batch.is_some_and(|t| t.elapsed() < self.opts.busy_wait);
            polling_tx.send_if_modified(|p| {
                let want = polling_for(busy);
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
            }
        };
        pollers.abort_all();
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
        tracing::info!(barrier = %self.info.config.name, coordinator = %self.core.id(), "coordinator stopped");
        result
    }

    /// Carries out everything the core asks for, until it asks nothing more.
    async fn carry_out(&mut self) -> Result<()> {
        self.publish_events();
        while let Some(t) = self.core.poll_transmit() {
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
                    self.delete(receipts).await?;
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
                    self.delete(vec![token]).await?;
                }
                Transmit::WriteState { version, state } => match self.write_state(*state).await {
                    Ok(true) => self.core.handle_state_written(version),
                    // Superseded: the core asks nothing more.
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "could not publish the coordinator state; retrying");
                        self.core.handle_state_write_failed();
                    }
                },
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

    /// Publishes the state: read, check (or stand down), write. Returns
    /// whether it wrote.
    ///
    /// Tags are last-writer-wins, so the current state is read first: a
    /// coordinator writes only over a state it knows completely (the core
    /// decides, see
    /// [`sqs_barrier_core::Coordinator::handle_state_observed`]); anything
    /// else means another coordinator is active, and this one stands down.
    async fn write_state(&mut self, state: PublishedState) -> Result<bool> {
        let current = admin::list_tags(&self.sqs, &self.info.urls.checkin).await?;
        if let Some(other) =
            admin::decode_state(&current).filter(|o| o.coordinator != self.core.id())
        {
            self.core.handle_state_observed(&other, wall_now());
            if self.core.superseded().is_some() {
                return Ok(false);
            }
        }
        admin::write_state(&self.sqs, &self.info.urls.checkin, &state).await?;
        Ok(true)
    }

    /// On a clean stop: publishes the last state, marked `stopped`, unless
    /// another coordinator has written since our last write.
    async fn write_final_state(&mut self) -> Result<()> {
        let current = admin::list_tags(&self.sqs, &self.info.urls.checkin).await?;
        let ours = admin::decode_state(&current).is_none_or(|s| s.coordinator == self.core.id());
        if ours {
            let state = self.core.final_snapshot(wall_now());
            admin::write_state(&self.sqs, &self.info.urls.checkin, &state).await?;
        }
        Ok(())
    }

    async fn delete(&self, receipts: Vec<String>) -> Result<()> {
        // The batches go out several at a time: one after another, the
        // check-ins of a large barrier would hold the coordinator's loop (and
        // with it the counting of the next generation and its release) for
        // N / 10 round trips after every state write.
        let mut chunks = receipts.chunks(10);
        let mut running = JoinSet::new();
        loop {
            while running.len() < DELETES_IN_FLIGHT {
                let Some(chunk) = chunks.next() else { break };
                let entries: Vec<_> = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(r)
                            .build()
                            .expect("id and handle set")
                    })
                    .collect();
                let (sqs, url) = (self.sqs.clone(), self.info.urls.checkin.clone());
                running.spawn(async move {
                    let out = sqs
                        .client()
                        .delete_message_batch()
                        .queue_url(&url)
                        .set_entries(Some(entries))
                        .send()
                        .await
                        .map_err(|e| sqs.error("DeleteMessageBatch", e))?;
                    for f in out.failed {
                        // Harmless: the message comes back and is recognised
                        // as already counted.
                        tracing::debug!(code = %f.code, "delete of a check-in failed");
                    }
                    Ok::<(), Error>(())
                });
            }
            let Some(done) = running.join_next().await else {
                return Ok(());
            };
            done.map_err(|e| Error::Sqs {
                endpoint: self.sqs.endpoint().into(),
                operation: "DeleteMessageBatch",
                detail: e.to_string(),
            })??;
        }
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
        for chunk in receipts.chunks(10) {
            let entries: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .visibility_timeout(secs)
                        .build()
                        .expect("id and handle set")
                })
                .collect();
            self.sqs
                .client()
                .change_message_visibility_batch()
                .queue_url(&self.info.urls.checkin)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.sqs.error("ChangeMessageVisibilityBatch", e))?;
        }
        Ok(())
    }
}

/// `DeleteMessageBatch` requests of the check-in queue in flight at once.
const DELETES_IN_FLIGHT: usize = 8;

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
        _ => {}
    }
}
