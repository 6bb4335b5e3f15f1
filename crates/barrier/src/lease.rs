//! The coordinators' lease over SQS: the token in the barrier's lease queue
//! (`NAME-lease.fifo`) and the requests that take, keep and give it back.
//! The holder's timing is the core's [`Lease`]; docs/PROTOCOL.md ("The
//! lease") says why a FIFO queue's in-flight message is a lock.

use std::time::Duration;

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use sqs_barrier_core::lease::{LEASE_MARGIN, Lease};
use tokio::sync::watch;

use crate::clock::{mono_now, wall_ms};
use crate::error::Result;
use crate::sqs::Sqs;

/// The message group of every token: while one message of it is in
/// flight, SQS returns no other (so extra tokens change nothing).
const GROUP: &str = "lease";

/// The token's body, for people who look into the queue.
const BODY: &str = r#"{"v":1,"type":"lease"}"#;

/// A token older than this (from its send) is replaced by a fresh one: by
/// its holder while it holds it (the lease is free for a moment), or when
/// it is given back. SQS keeps a message in flight for 12 hours at most
/// (counted from a receive, so at most from its send) and keeps a message
/// for the queue's retention (14 days) from its send, whatever its
/// receives.
const TOKEN_MAX_AGE: Duration = Duration::from_secs(11 * 3600);

/// A token received: the lease, while its visibility lasts.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    receipt: String,
    /// How old the token was (from its send) when it was received.
    age: Duration,
    /// The token message's id and how often SQS had handed it out, this
    /// receive included (`ApproximateReceiveCount`): a holder that gave
    /// the lease back and takes it again tells from them whether anybody
    /// else received the token in between.
    message_id: String,
    receives: u64,
}

impl Token {
    /// Whether `self`, received after `given_back` was given back, is the
    /// same token received by nobody else in between.
    fn follows(&self, given_back: &Token) -> bool {
        self.message_id == given_back.message_id && self.receives == given_back.receives + 1
    }
}

/// Puts a token into the lease queue: `setup` does, and a coordinator that
/// found none (a queue that kept no message for SQS's 14 days of
/// retention). `dedup` names it: two puts with the same id within SQS's
/// 5-minute deduplication interval put one token. A second token is
/// harmless: it shares the first one's message group.
pub(crate) async fn put_token(sqs: &Sqs, url: &str, dedup: &str) -> Result<()> {
    sqs.client()
        .send_message()
        .queue_url(url)
        .message_group_id(GROUP)
        .message_deduplication_id(dedup)
        .message_body(BODY)
        .send()
        .await
        .map_err(|e| sqs.error("SendMessage", e))?;
    Ok(())
}

/// Tries to take the lease: one receive that waits up to `wait` seconds
/// (0 to 20) for a token, hiding it for the lease's term, then an extension
/// that confirms it. `Some` once the lease is held, from the returned
/// instant (this clock, before the extension went out).
///
/// A receive attempt id makes the SDK's retries of a receive whose answer
/// was lost return the same token rather than nothing.
pub(crate) async fn acquire(
    sqs: &Sqs,
    url: &str,
    lease: &Lease,
    wait: i32,
) -> Result<Option<(Token, Duration)>> {
    let out = sqs
        .client()
        .receive_message()
        .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
        .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(lease.term().as_secs() as i32)
        .wait_time_seconds(wait)
        .receive_request_attempt_id(format!("{:016x}", rand::random::<u64>()))
        .send()
        .await
        .map_err(|e| sqs.error("ReceiveMessage", e))?;
    // Only a message of the token's group is a token: its group is locked
    // while it is in flight. A message of another group (nobody's token:
    // sent by hand, or by something else) would be handed to a second
    // coordinator while the holder holds the lease, so it goes.
    let (tokens, strays): (Vec<_>, Vec<_>) = out
        .messages
        .unwrap_or_default()
        .into_iter()
        .partition(|m| attribute(m, MessageSystemAttributeName::MessageGroupId) == Some(GROUP));
    let strays: Vec<String> = strays
        .into_iter()
        .filter_map(|m| m.receipt_handle)
        .collect();
    if !strays.is_empty() {
        tracing::warn!(
            queue = url,
            count = strays.len(),
            "the coordinator lease queue held messages that are not lease tokens; deleting them"
        );
        let _ = sqs.delete_batch(url, &strays).await;
    }
    let mut tokens = tokens.into_iter();
    let Some(first) = tokens.next() else {
        return Ok(None);
    };
    let sent_ms = attribute(&first, MessageSystemAttributeName::SentTimestamp)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(wall_ms);
    let age = Duration::from_millis(wall_ms().saturating_sub(sent_ms));
    let receives = attribute(&first, MessageSystemAttributeName::ApproximateReceiveCount)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let message_id = first.message_id.clone().unwrap_or_default();
    let Some(receipt) = first.receipt_handle else {
        return Ok(None);
    };
    // Extra tokens (each put of a coordinator that found none) go; one
    // stays. Best effort: they change nothing while they share the group.
    let extra: Vec<String> = tokens.filter_map(|m| m.receipt_handle).collect();
    if !extra.is_empty() {
        let _ = sqs.delete_batch(url, &extra).await;
    }
    // The token's visibility runs from when SQS handed it over, somewhere
    // in the long poll: from `sent` at the earliest. Counted from `sent`, a
    // token that came late in a long poll would be held for nothing. So the
    // lease starts with an extension sent now, which counts from now.
    let token = Token {
        receipt,
        age,
        message_id,
        receives,
    };
    for _ in 0..3 {
        let sent = mono_now();
        match extend(sqs, url, &token, lease).await {
            Ok(Extended::Kept) => return Ok(Some((token, sent))),
            // Its visibility lapsed before the answer came (or somebody
            // else's receive took it): not ours.
            Ok(Extended::Lost) => return Ok(None),
            Err(e) if e.is_transient() => {
                tracing::debug!(error = %e, "could not confirm the coordinator lease; trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    }
    // Not confirmed: it lapses within the lease's term.
    Ok(None)
}

/// A system attribute of a received message.
fn attribute(m: &Message, name: MessageSystemAttributeName) -> Option<&str> {
    m.attributes.as_ref()?.get(&name).map(String::as_str)
}

/// How an extension ended.
pub(crate) enum Extended {
    /// The token's visibility runs for the lease's term from now.
    Kept,
    /// SQS no longer knows the receipt (the token's visibility lapsed):
    /// the lease is lost.
    Lost,
}

/// Extends the token's visibility to the lease's term.
///
/// One attempt, sent now, given up after [`LEASE_MARGIN`]: the SDK's
/// retries are off. The holder counts the lease from the send of the
/// extension that was answered; a retry the SDK sent later (after its
/// backoff, or after an attempt that timed out) could go out after the
/// lease ran out on the holder's clock, when the token may be somebody
/// else's. The keeper tries again by itself, every 250 ms, each try
/// checked against the lease first.
pub(crate) async fn extend(sqs: &Sqs, url: &str, token: &Token, lease: &Lease) -> Result<Extended> {
    let one_attempt = aws_sdk_sqs::config::Builder::default()
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(LEASE_MARGIN)
                .operation_attempt_timeout(LEASE_MARGIN)
                .operation_timeout(LEASE_MARGIN)
                .build(),
        );
    match sqs
        .client()
        .change_message_visibility()
        .queue_url(url)
        .receipt_handle(&token.receipt)
        .visibility_timeout(lease.term().as_secs() as i32)
        .customize()
        .config_override(one_attempt)
        .send()
        .await
    {
        Ok(_) => Ok(Extended::Kept),
        Err(e) => {
            let code = e
                .as_service_error()
                .and_then(aws_sdk_sqs::error::ProvideErrorMetadata::code)
                .unwrap_or("");
            if code.contains("MessageNotInflight") || code.contains("ReceiptHandleIsInvalid") {
                Ok(Extended::Lost)
            } else {
                Err(sqs.error("ChangeMessageVisibility", e))
            }
        }
    }
}

/// Gives the lease back (a clean stop, a rest): the token is visible at
/// once, and a standby waiting for it takes it. Best effort: otherwise it
/// comes back when its visibility lapses. A token held `held` and older
/// than [`TOKEN_MAX_AGE`] is replaced by a fresh one instead: then `false`.
pub(crate) async fn release(sqs: &Sqs, url: &str, token: &Token, held: Duration) -> bool {
    if token.age + held >= TOKEN_MAX_AGE {
        renew(sqs, url, token).await;
        return false;
    }
    let _ = sqs
        .client()
        .change_message_visibility()
        .queue_url(url)
        .receipt_handle(&token.receipt)
        .visibility_timeout(0)
        .send()
        .await;
    true
}

/// Puts a fresh token, then deletes `token` (held): the lease is free for
/// whoever receives the fresh one first. Best effort: a token not deleted
/// comes back when its visibility lapses, beside the fresh one (two tokens
/// in one group change nothing).
async fn renew(sqs: &Sqs, url: &str, token: &Token) {
    let dedup = format!("renew-{:016x}", rand::random::<u64>());
    if let Err(e) = put_token(sqs, url, &dedup).await {
        tracing::warn!(error = %e, "could not put a fresh coordinator lease token; keeping the old one");
        return;
    }
    let _ = sqs
        .client()
        .delete_message()
        .queue_url(url)
        .receipt_handle(&token.receipt)
        .send()
        .await;
}

/// Keeps a held lease: extends it while the returned receiver is alive,
/// publishing until when (on [`mono_now`]'s clock) the holder may decide;
/// `None` once it is lost. Dropping the handle stops it (without giving the
/// lease back: see [`Keeper::release`]).
pub(crate) struct Keeper {
    until: watch::Receiver<Option<Duration>>,
    task: tokio::task::JoinHandle<()>,
    sqs: Sqs,
    url: String,
    token: Token,
    /// When it was taken (this clock).
    taken: Duration,
    /// The slowest extension's round trip so far, in microseconds: how
    /// close a request came to the lease's margin.
    slowest: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// When the holder last made progress ([`Keeper::alive`]), in
    /// microseconds on [`mono_now`]'s clock.
    progress: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// A holder whose work made no progress for this long is not kept: its
/// lease runs out, and another coordinator takes over. Without this, a
/// coordinator whose loop hung (while its extension task ran on) would
/// keep everyone else out for ever.
const STALL: Duration = Duration::from_secs(6);

impl Keeper {
    /// Starts keeping `token`, received by a request sent at `sent`.
    pub(crate) fn start(sqs: &Sqs, url: &str, token: Token, sent: Duration) -> Self {
        let mut lease = Lease::default();
        lease.handle_acquired(sent);
        let (tx, rx) = watch::channel(lease.held_until());
        let (task_sqs, task_url, task_token) = (sqs.clone(), url.to_owned(), token.clone());
        let slowest = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let task_slowest = slowest.clone();
        let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(
            mono_now().as_micros() as u64,
        ));
        let task_progress = progress.clone();
        let task = tokio::spawn(async move {
            loop {
                let Some(at) = lease.poll_timeout() else {
                    let _ = tx.send(None);
                    return;
                };
                tokio::time::sleep(at.saturating_sub(mono_now())).await;
                let now = mono_now();
                if task_token.age + now.saturating_sub(sent) >= TOKEN_MAX_AGE {
                    // Before SQS's 12-hour cap on a message in flight: a
                    // fresh token, and the lease is free for a moment.
                    lease.handle_lost();
                    let _ = tx.send(None);
                    renew(&task_sqs, &task_url, &task_token).await;
                    return;
                }
                let last =
                    Duration::from_micros(task_progress.load(std::sync::atomic::Ordering::Relaxed));
                if now.saturating_sub(last) >= STALL && lease.is_held(now) {
                    tracing::warn!(
                        stalled = ?now.saturating_sub(last),
                        "the coordinator made no progress; letting its lease run out"
                    );
                    lease.handle_extend_failed(now);
                    let _ = tx.send(lease.held_until());
                    continue;
                }
                if !lease.poll_extend(now) {
                    let _ = tx.send(lease.held_until().filter(|_| lease.is_held(now)));
                    continue;
                }
                let answer = extend(&task_sqs, &task_url, &task_token, &lease).await;
                let took = mono_now().saturating_sub(now);
                task_slowest.fetch_max(
                    took.as_micros() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                if took >= LEASE_MARGIN / 2 {
                    tracing::warn!(?took, margin = ?LEASE_MARGIN, "an extension of the coordinator lease was slow");
                }
                match answer {
                    Ok(Extended::Kept) => lease.handle_extended(now),
                    Ok(Extended::Lost) => lease.handle_lost(),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not extend the coordinator lease; trying again");
                        lease.handle_extend_failed(mono_now());
                    }
                }
                let _ = tx.send(lease.held_until());
            }
        });
        Self {
            until: rx,
            task,
            sqs: sqs.clone(),
            url: url.to_owned(),
            token,
            taken: sent,
            slowest,
            progress,
        }
    }

    /// The holder made progress (a step of its loop, a request of its
    /// round): the lease is kept while it does (see [`STALL`]).
    pub(crate) fn alive(&self) {
        self.progress.store(
            mono_now().as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// The slowest extension's round trip so far.
    pub(crate) fn slowest_extension(&self) -> Duration {
        Duration::from_micros(self.slowest.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Whether the holder may decide now.
    pub(crate) fn is_held(&self) -> bool {
        mono_now() < self.until()
    }

    /// Until when (on [`mono_now`]'s clock) the holder may decide, as far
    /// as it knows now (zero once lost).
    pub(crate) fn until(&self) -> Duration {
        self.until.borrow().unwrap_or_default()
    }

    /// Resolves once the lease is no longer held (lost, or run out).
    pub(crate) async fn lost(&mut self) {
        loop {
            let until = *self.until.borrow_and_update();
            match until {
                None => return,
                Some(u) => {
                    let left = u.saturating_sub(mono_now());
                    if left.is_zero() {
                        return;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(left) => {}
                        changed = self.until.changed() => {
                            if changed.is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Stops keeping the lease and gives it back. The token given back, to
    /// tell whether anybody else received it when it is taken again
    /// ([`take_again`]); `None` if a fresh one replaced it.
    pub(crate) async fn release(self) -> Option<Token> {
        self.task.abort();
        let held = mono_now().saturating_sub(self.taken);
        release(&self.sqs, &self.url, &self.token, held)
            .await
            .then(|| self.token.clone())
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What taking the lease again after resting came to.
pub(crate) enum Retaken {
    /// Held again, and nobody else received the token in between (as far
    /// as its receive count tells; `given_back` unknown: not checked).
    Held(Keeper),
    /// Somebody else holds it or held it since: why, for the log. The
    /// token received again, if it was (given back again at once), for the
    /// next try.
    Elsewhere(String, Option<Token>),
}

/// Takes the lease again after resting: one receive with a 1 s long poll
/// (an empty answer then means the token is in flight: somebody else holds
/// it), then the confirming extension. If the token received is not the
/// one given back (`given_back`) received once more, somebody else took
/// the lease in between, and it is given back at once.
pub(crate) async fn take_again(
    sqs: &Sqs,
    url: &str,
    given_back: Option<&Token>,
) -> Result<Retaken> {
    let Some((token, sent)) = acquire(sqs, url, &Lease::default(), 1).await? else {
        return Ok(Retaken::Elsewhere(
            "another coordinator holds the lease".into(),
            given_back.cloned(),
        ));
    };
    if let Some(before) = given_back
        && !token.follows(before)
    {
        let why = if token.message_id == before.message_id {
            format!(
                "another coordinator received the lease token since this one gave it back ({} receive(s))",
                token.receives.saturating_sub(before.receives + 1)
            )
        } else {
            "the lease token was replaced since this coordinator gave it back".to_owned()
        };
        let again = release(sqs, url, &token, Duration::ZERO).await;
        return Ok(Retaken::Elsewhere(why, again.then_some(token)));
    }
    Ok(Retaken::Held(Keeper::start(sqs, url, token, sent)))
}

/// Whether the lease queue holds no token at all, neither visible nor in
/// flight. SQS's counts are approximate: a wrong "empty" only puts a second
/// token, which changes nothing.
async fn is_empty(sqs: &Sqs, url: &str) -> Result<bool> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = sqs
        .client()
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| sqs.error("GetQueueAttributes", e))?;
    let attrs = out.attributes.unwrap_or_default();
    let count = |a: A| {
        attrs
            .get(&a)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(count(A::ApproximateNumberOfMessages) == 0
        && count(A::ApproximateNumberOfMessagesNotVisible) == 0)
}

/// Waits for the lease: long polls until the token is received, `patience`
/// has passed (then `None`), or an error. If none came within
/// `missing_after` and the queue holds none at all (SQS's retention ended
/// it, or somebody purged the queue), a new one is put.
pub(crate) async fn wait_for(
    sqs: &Sqs,
    url: &str,
    patience: Option<Duration>,
    missing_after: Option<Duration>,
    dedup_base: &str,
) -> Result<Option<Keeper>> {
    let lease = Lease::default();
    let started = mono_now();
    let mut put = false;
    let mut tried = false;
    loop {
        let waited = mono_now().saturating_sub(started);
        let left = patience.map(|p| p.saturating_sub(waited));
        // At least one try, also with no patience at all.
        if tried && left.is_some_and(|l| l.is_zero()) {
            return Ok(None);
        }
        tried = true;
        let wait = left.map_or(20, |l| l.as_secs().clamp(0, 20) as i32);
        match acquire(sqs, url, &lease, wait).await {
            Ok(Some((token, sent))) => return Ok(Some(Keeper::start(sqs, url, token, sent))),
            Ok(None) => {}
            Err(e) if e.is_transient() => {
                tracing::warn!(error = %e, "could not read the lease queue; trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e),
        }
        if !put
            && missing_after.is_some_and(|m| mono_now().saturating_sub(started) >= m)
            && is_empty(sqs, url).await?
        {
            tracing::warn!(
                queue = url,
                "the coordinator lease queue holds no token; putting one"
            );
            put = true;
            put_token(
                sqs,
                url,
                &format!("{dedup_base}-{:016x}", rand::random::<u64>()),
            )
            .await?;
        }
    }
}
