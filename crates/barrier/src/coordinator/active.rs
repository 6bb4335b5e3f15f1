//! The active coordinator's loop: the receivers that long-poll the
//! check-in queue (how many, how long each waits: quiet, busy, in a burst),
//! the loop that feeds the core and fires its timers while it holds the
//! lease, and the stop (letting the requests under way land, handing the
//! held check-ins back, the last state, the lease given back).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::{Driver, Ended, default_max_held, default_receivers, lease_lost};
use crate::clock::mono_now;
use crate::error::Result;
use crate::sqs::Sqs;

struct Received {
    receipt: String,
    body: String,
}

/// What a receive returned: check-ins, or, while resting, a look at the
/// queue that hid nothing.
struct Batch {
    /// Received with a visibility timeout of 0: the messages stay visible
    /// to every receiver, and their receipt handles are not kept.
    peek: bool,
    messages: Vec<Received>,
}

/// What the receivers do: how many long-poll, how long each waits, and
/// whether they only look (while resting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Polling {
    receivers: usize,
    wait: i32,
    peek: bool,
}

/// Resting: one receiver looks at the queue, hiding nothing (see
/// `poll_checkins`).
const RESTING: Polling = Polling {
    receivers: 1,
    wait: 20,
    peek: true,
};

impl Driver {
    pub(super) async fn run<S: Future<Output = ()>>(
        &mut self,
        mut shutdown: Pin<&mut S>,
    ) -> Result<Ended> {
        let n = self.info.config.members.len();
        let receivers = self.opts.receivers.unwrap_or(default_receivers(n)).max(1);
        let max_held = self.opts.max_held.unwrap_or(default_max_held(n)).max(1);
        let mut full = false;
        let (tx, mut rx) = mpsc::channel::<Result<Batch>>(receivers * 4);
        // Quiet: one receiver, 20 s polls. Busy (a batch within the last
        // `busy_wait`): two receivers, short polls. In a burst (check-ins
        // coming fast, within the last `busy_wait`): every receiver.
        let busy_wait = self.opts.busy_wait.as_secs().clamp(1, 20) as i32;
        let polling_for = move |busy: bool, burst: bool| {
            if busy {
                Polling {
                    receivers: if burst { receivers } else { receivers.min(2) },
                    wait: busy_wait,
                    peek: false,
                }
            } else {
                Polling {
                    receivers: 1,
                    wait: 20,
                    peek: false,
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
        // Resting: a check-in is waiting in the queue (it takes the lease
        // again, then receives it).
        let mut doorbell = false;
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
            // And when it may rest, so that the lease goes back on time.
            let rest_in = self
                .opts
                .rest_after
                .filter(|_| self.resting.is_none())
                .zip(last_batch)
                .map(|(after, t)| (t + after).saturating_duration_since(Instant::now()))
                .filter(|d| !d.is_zero());
            let wake = rest_in.map_or(wake, |d| wake.min(d));
            tokio::select! {
                _ = shutdown.as_mut() => break Ok(Ended::Shutdown),
                batch = rx.recv() => match batch {
                    Some(Ok(Batch { peek, messages })) => {
                        let at = Instant::now();
                        last_batch = Some(at);
                        if self.resting.is_some() {
                            doorbell = true;
                            if !peek {
                                // Received by a poll sent before it rested:
                                // handed back at once, for whoever holds the
                                // lease by now.
                                let receipts: Vec<String> =
                                    messages.into_iter().map(|m| m.receipt).collect();
                                if let Err(e) = self.change_visibility(&receipts, 0).await {
                                    tracing::warn!(error = %e, "could not hand back check-ins received while resting; they reappear after the visibility timeout");
                                }
                            }
                        } else if !peek {
                            recent.push_back((at, messages.len()));
                            while recent.front().is_some_and(|(t, _)| at.duration_since(*t) > BURST_WINDOW) {
                                recent.pop_front();
                            }
                            if recent.iter().map(|(_, n)| n).sum::<usize>() >= BURST_CHECKINS {
                                last_burst = Some(at);
                            }
                            let now = mono_now();
                            for m in messages {
                                self.held.insert(m.receipt.clone(), Instant::now());
                                self.core.handle_message(m.receipt, &m.body, now);
                            }
                        }
                        // (A look that came after the wake: its check-ins
                        // are received for real now.)
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
            // Resting: a check-in, or a decision due, takes the lease again.
            let mut fire_timers = true;
            if self.resting.is_some() {
                let now = mono_now();
                if doorbell || self.core.poll_decision_timeout().is_some_and(|t| t <= now) {
                    match self.wake().await {
                        // Its receivers now receive what rang: busy from
                        // now (a new mode unparks the receiver that looked),
                        // and it rests again only once nothing came for
                        // `rest_after`.
                        Ok(None) => {
                            doorbell = false;
                            last_batch = Some(Instant::now());
                        }
                        Ok(Some(why)) => break Ok(Ended::Displaced { why }),
                        Err(e) if e.is_transient() => {
                            tracing::warn!(error = %e, "could not take the coordinator lease again; trying again");
                        }
                        Err(e) => break Err(e),
                    }
                }
                // Still resting: only heartbeats may be written.
                fire_timers = self.resting.is_none()
                    || self
                        .core
                        .poll_decision_timeout()
                        .is_none_or(|t| t > mono_now());
            } else if !self.holds_lease() {
                break Ok(Ended::LeaseLost);
            }
            if let Some(lease) = &self.lease {
                lease.alive();
            }
            if fire_timers {
                self.core.handle_timeout(mono_now());
            }
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
            if self.may_rest(last_batch) {
                self.rest().await;
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
            // Holding as many as it may: receiving waits for writes to land
            // (and their deletes), the check-ins in the queue meanwhile.
            if full != (self.held.len() >= max_held) {
                full = !full;
                if full {
                    tracing::warn!(
                        held = self.held.len(),
                        max_held,
                        "holding as many check-ins as allowed (the state cannot be written?); receiving waits"
                    );
                } else {
                    tracing::info!(held = self.held.len(), "receiving check-ins again");
                }
            }
            polling_tx.send_if_modified(|p| {
                let mut want = if self.resting.is_some() {
                    RESTING
                } else {
                    polling_for(busy, burst)
                };
                if full {
                    want.receivers = 0;
                }
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
        // A coordinator that is no longer active holds nothing.
        if let Some(g) = &self.opts.gauges {
            g.held.store(0, Ordering::Relaxed);
            g.receipts.store(0, Ordering::Relaxed);
            g.resting.store(false, Ordering::Relaxed);
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
}

/// A burst: at least this many check-ins received within [`BURST_WINDOW`].
const BURST_CHECKINS: usize = 3;
const BURST_WINDOW: Duration = Duration::from_secs(1);

/// How long a stopping coordinator waits for its writes and deletes under
/// way.
const SETTLE: Duration = Duration::from_secs(10);

/// One receiver of the check-in queue. Resting ([`RESTING`]), it only
/// looks: a receive with a visibility timeout of 0 leaves what it returns
/// visible to every other receiver (a coordinator that took the lease
/// meanwhile receives it at once), and after one that found something it
/// waits for the next change of mode (the coordinator, woken, receives
/// for real; or stands down).
async fn poll_checkins(
    index: usize,
    sqs: Sqs,
    url: String,
    visibility: Duration,
    mut polling: watch::Receiver<Polling>,
    tx: mpsc::Sender<Result<Batch>>,
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
            .max_number_of_messages(if p.peek { 1 } else { 10 })
            .visibility_timeout(if p.peek {
                0
            } else {
                visibility.as_secs() as i32
            })
            .wait_time_seconds(p.wait)
            .send()
            .await;
        let batch = match r {
            Ok(out) => Ok(Batch {
                peek: p.peek,
                messages: out
                    .messages
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|m| {
                        Some(Received {
                            receipt: m.receipt_handle?,
                            body: m.body.unwrap_or_default(),
                        })
                    })
                    .collect::<Vec<_>>(),
            }),
            Err(e) => Err(sqs.error("ReceiveMessage", e)),
        };
        match &batch {
            Ok(b) if b.messages.is_empty() => continue,
            Ok(b) => {
                tracing::trace!(
                    messages = b.messages.len(),
                    peek = b.peek,
                    "received from the check-in queue"
                );
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
        if p.peek && polling.changed().await.is_err() {
            return;
        }
    }
}
