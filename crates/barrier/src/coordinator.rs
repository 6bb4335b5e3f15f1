//! Running a barrier's coordinator: the driver of the core's coordinator
//! state machine over SQS.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageAttributeValue, SendMessageBatchRequestEntry,
};
use sqs_barrier_core::coordinator::{CoordinatorOptions as CoreOptions, Event, Transmit};
use sqs_barrier_core::state::PublishedState;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::admin::{self, BarrierInfo};
use crate::error::{Error, Result};
use crate::participant::wall_now;
use crate::sqs::Sqs;

/// Tunables of a running coordinator.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CoordinatorOptions {
    /// The core's tunables (heartbeat, write interval).
    pub core: CoreOptions,
    /// Start even if another coordinator's heartbeat is recent.
    pub force: bool,
    /// The visibility timeout of received check-ins; held ones are extended
    /// before it lapses. A successor sees a dead coordinator's check-ins
    /// after at most this long.
    pub visibility: Duration,
    /// How long a receiver's long poll waits while the barrier is busy (a
    /// generation is being collected, or check-ins came in the last 20 s);
    /// 20 s otherwise. Short, so that a long poll that answers nothing
    /// although check-ins are waiting (SQS warns of rare empty answers)
    /// delays a release by this much at most; an idle barrier still polls
    /// every 20 s.
    pub busy_wait: Duration,
    /// Concurrent long polls on the check-in queue (default:
    /// `max(2, min(8, N/50))`). Two at least, so that a long poll that
    /// answers empty although check-ins are waiting (SQS warns this happens,
    /// rarely) does not leave the coordinator deaf for up to 20 s.
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
}

impl Default for CoordinatorOptions {
    fn default() -> Self {
        Self {
            core: CoreOptions::default(),
            force: false,
            visibility: Duration::from_secs(30),
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

/// Runs the coordinator of barrier `name` until `shutdown` resolves or an
/// error occurs. Every event is sent to `events` if given.
///
/// On shutdown the check-ins it holds are made visible again at once, so a
/// successor can take over without waiting for the visibility timeout.
pub async fn run_coordinator(
    sqs: &Sqs,
    name: &str,
    opts: CoordinatorOptions,
    events: Option<mpsc::UnboundedSender<Event>>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let info = admin::open(sqs, name).await?;
    let restored = admin::read_state(sqs, &info.urls.checkin).await?;
    if let Some(st) = &restored {
        let age = Duration::from_millis(admin::now_ms().saturating_sub(st.heartbeat_ms));
        if !opts.force && st.looks_alive(admin::now_ms()) {
            return Err(Error::CoordinatorRunning {
                barrier: name.into(),
                id: st.coordinator.clone(),
                age,
            });
        }
    }
    let id = format!("{:08x}@{}", rand::random::<u32>(), hostname());
    tracing::info!(barrier = name, coordinator = %id, "coordinator starting");
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
        info,
        core,
        id,
        held: HashMap::new(),
        last_write_ms: 0,
        opts,
        events,
    };
    driver.run(shutdown).await
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("pid{}", std::process::id()))
}

struct Driver {
    sqs: Sqs,
    info: BarrierInfo,
    core: sqs_barrier_core::Coordinator<String>,
    id: String,
    /// Receipt handles held, with when their visibility was last set.
    held: HashMap<String, Instant>,
    /// When we last published (ms since the epoch); 0 before the first write.
    last_write_ms: u64,
    opts: CoordinatorOptions,
    events: Option<mpsc::UnboundedSender<Event>>,
}

impl Driver {
    async fn run(&mut self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let n = self.info.config.members.len();
        let receivers = self.opts.receivers.unwrap_or((n / 50).clamp(2, 8));
        let (tx, mut rx) = mpsc::channel::<Result<Vec<Received>>>(receivers * 4);
        // The receivers' long-poll wait, in seconds: short while busy.
        let busy_wait = self.opts.busy_wait.as_secs().clamp(1, 20) as i32;
        let wait_for = move |busy: bool| if busy { busy_wait } else { 20 };
        let mut last_batch: Option<Instant> = None;
        let (wait_tx, wait_rx) = watch::channel(wait_for(self.core.is_collecting()));
        let mut pollers = JoinSet::new();
        for _ in 0..receivers {
            pollers.spawn(poll_checkins(
                self.sqs.clone(),
                self.info.urls.checkin.clone(),
                self.opts.visibility,
                wait_rx.clone(),
                tx.clone(),
            ));
        }
        drop(tx);
        tokio::pin!(shutdown);
        let result = loop {
            let now = wall_now();
            let wake = self
                .core
                .poll_timeout()
                .map_or(Duration::from_secs(1), |t| t.saturating_sub(now))
                .min(self.opts.visibility / 3);
            tokio::select! {
                _ = &mut shutdown => break Ok(()),
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
                    None => break Ok(()),
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
            if let Err(e) = self.extend_visibility().await {
                tracing::warn!(error = %e, "could not extend the visibility of held check-ins");
            }
            let busy = self.core.is_collecting()
                || last_batch.is_some_and(|t| t.elapsed() < Duration::from_secs(20));
            wait_tx.send_if_modified(|w| {
                let want = wait_for(busy);
                std::mem::replace(w, want) != want
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
        tracing::info!(barrier = %self.info.config.name, "coordinator stopped");
        result
    }

    /// Carries out everything the core asks for, until it asks nothing more.
    async fn carry_out(&mut self) -> Result<()> {
        while let Some(t) = self.core.poll_transmit() {
            match t {
                Transmit::Notify {
                    generation,
                    copies,
                    body,
                } => {
                    let url = self.info.urls.release_for(generation).to_owned();
                    send_copies(&self.sqs, &url, &body, copies).await?;
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
                    Ok(()) => self.core.handle_state_written(version),
                    Err(e @ Error::Superseded { .. }) => return Err(e),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not publish the coordinator state; retrying");
                        self.core.handle_state_write_failed();
                    }
                },
            }
        }
        while let Some(e) = self.core.poll_event() {
            log_event(&e);
            if let Some(tx) = &self.events {
                let _ = tx.send(e);
            }
        }
        Ok(())
    }

    /// Publishes the state: read, merge, write.
    ///
    /// Tags are last-writer-wins, so the current state is read first. If
    /// another coordinator wrote after our last write, two are running and
    /// the older one (us) stands down. Whatever another coordinator recorded
    /// is merged into ours before we overwrite it.
    async fn write_state(&mut self, mut state: PublishedState) -> Result<()> {
        let current = admin::list_tags(&self.sqs, &self.info.urls.checkin).await?;
        if let Some(other) = admin::decode_state(&current).filter(|o| o.coordinator != self.id) {
            if self.last_write_ms != 0 && other.heartbeat_ms > self.last_write_ms {
                return Err(Error::Superseded {
                    barrier: self.info.config.name.clone(),
                    other: other.coordinator,
                });
            }
            self.core.handle_state_observed(&other, wall_now());
            // The merge may have changed what we publish.
            state = self.core.snapshot(wall_now());
        }
        admin::write_state(&self.sqs, &self.info.urls.checkin, &state, &current).await?;
        self.last_write_ms = state.heartbeat_ms;
        Ok(())
    }

    async fn delete(&self, receipts: Vec<String>) -> Result<()> {
        for chunk in receipts.chunks(10) {
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
            let out = self
                .sqs
                .client()
                .delete_message_batch()
                .queue_url(&self.info.urls.checkin)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| self.sqs.error("DeleteMessageBatch", e))?;
            for f in out.failed {
                // Harmless: the message comes back and is recognised as
                // already counted.
                tracing::debug!(code = %f.code, "delete of a check-in failed");
            }
        }
        Ok(())
    }

    async fn dead_letter(&self, body: &str, reason: &str) -> Result<()> {
        tracing::warn!(%reason, "moving a message to the dead-letter queue");
        let (body, reason) = fit_dead_letter(body, reason);
        let mut req = self
            .sqs
            .client()
            .send_message()
            .queue_url(&self.info.urls.dead_letter)
            .message_body(body)
            .message_attributes(
                REASON_ATTRIBUTE,
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(reason)
                    .build()
                    .expect("type set"),
            );
        if self.info.config.fifo {
            req = req
                .message_group_id("dead-letters")
                .message_deduplication_id(format!("{:016x}", rand::random::<u64>()));
        }
        req.send()
            .await
            .map_err(|e| self.sqs.error("SendMessage", e))?;
        Ok(())
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

/// The attribute of a dead letter that says why it was rejected.
const REASON_ATTRIBUTE: &str = "sqs-barrier-reason";
/// The largest SQS message: body and attributes together.
const MAX_MESSAGE_BYTES: usize = 1_048_576;

/// The body and reason of a dead letter, cut so that body and reason
/// attribute together fit in one SQS message. A check-in-queue message of the
/// maximum size plus the reason attribute would not: the send would fail for
/// ever and stop every coordinator that receives the message.
fn fit_dead_letter<'a>(body: &'a str, reason: &str) -> (&'a str, String) {
    let mut reason: String = reason.chars().take(1024).collect();
    // Name, data type, value, and room for the note below.
    let overhead = REASON_ATTRIBUTE.len() + "String".len() + reason.len() + 64;
    let budget = MAX_MESSAGE_BYTES - overhead;
    if body.len() <= budget {
        return (body, reason);
    }
    let mut cut = budget;
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    reason.push_str(&format!(" (body cut from {} to {cut} bytes)", body.len()));
    (&body[..cut], reason)
}

/// Sends `copies` copies of `body` to `url`, ten per request, several
/// requests at once.
async fn send_copies(sqs: &Sqs, url: &str, body: &str, copies: usize) -> Result<()> {
    const IN_FLIGHT: usize = 8;
    let mut remaining = copies;
    let mut tasks = JoinSet::new();
    while remaining > 0 || !tasks.is_empty() {
        while remaining > 0 && tasks.len() < IN_FLIGHT {
            let n = remaining.min(10);
            remaining -= n;
            tasks.spawn(send_batch(sqs.clone(), url.to_owned(), body.to_owned(), n));
        }
        if let Some(r) = tasks.join_next().await {
            r.map_err(|e| Error::Sqs {
                endpoint: sqs.endpoint().into(),
                operation: "SendMessageBatch",
                detail: e.to_string(),
            })??;
        }
    }
    Ok(())
}

async fn send_batch(sqs: Sqs, url: String, body: String, n: usize) -> Result<()> {
    let mut pending: Vec<usize> = (0..n).collect();
    for _attempt in 0..5 {
        let entries: Vec<_> = pending
            .iter()
            .map(|i| {
                SendMessageBatchRequestEntry::builder()
                    .id(format!("c{i}"))
                    .message_body(&body)
                    .build()
                    .expect("id and body set")
            })
            .collect();
        let out = sqs
            .client()
            .send_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sqs.error("SendMessageBatch", e))?;
        pending = out
            .failed
            .iter()
            .filter_map(|f| f.id.strip_prefix('c').and_then(|i| i.parse().ok()))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
    }
    Err(Error::Sqs {
        endpoint: sqs.endpoint().into(),
        operation: "SendMessageBatch",
        detail: format!("{} notice copies kept failing", pending.len()),
    })
}

async fn poll_checkins(
    sqs: Sqs,
    url: String,
    visibility: Duration,
    wait: watch::Receiver<i32>,
    tx: mpsc::Sender<Result<Vec<Received>>>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let wait_seconds = *wait.borrow();
        let r = sqs
            .client()
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility.as_secs() as i32)
            .wait_time_seconds(wait_seconds)
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
        Event::Resent { generation, member } => {
            tracing::info!(generation, %member, "notice sent again")
        }
        Event::Broken {
            from_gen,
            cause,
            missing,
        } => tracing::warn!(from_gen, %cause, missing = ?missing, "barrier broken"),
        Event::Rejected { reason } => tracing::warn!(%reason, "message rejected"),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_fit_in_one_message() {
        let big = "x".repeat(MAX_MESSAGE_BYTES);
        let reason = "r".repeat(5000);
        let (body, reason) = fit_dead_letter(&big, &reason);
        let size = body.len() + REASON_ATTRIBUTE.len() + "String".len() + reason.len();
        assert!(size <= MAX_MESSAGE_BYTES, "{size}");
        assert!(reason.ends_with(&format!(
            "(body cut from {MAX_MESSAGE_BYTES} to {} bytes)",
            body.len()
        )));
        // Multi-byte characters are not split.
        let wide = "\u{1F4A5}".repeat(MAX_MESSAGE_BYTES / 4);
        let (body, _) = fit_dead_letter(&wide, "why");
        assert!(body.chars().all(|c| c == '\u{1F4A5}'));
        // Small messages pass unchanged.
        assert_eq!(fit_dead_letter("small", "why"), ("small", "why".to_owned()));
    }
}
