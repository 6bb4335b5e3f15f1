//! What the coordinator sends besides state writes: notices to the release
//! queues, sweeps of the notices nobody needs any more, and dead letters.
//! Shared by the process coordinator and the Lambda handler.
//!
//! Participants read a release queue with a visibility timeout of 0, so a
//! notice stays visible to all of them and nothing is ever in flight. What
//! a receive with visibility 0 would keep returning is an old notice: the
//! core asks for a [`Transmit::Sweep`] of the queue the participants are
//! about to read, and [`sweep`] deletes what may go.
//!
//! [`Transmit::Sweep`]: sqs_barrier_core::coordinator::Transmit::Sweep

use std::time::Duration;

use aws_sdk_sqs::types::MessageAttributeValue;
use sqs_barrier_core::BarrierConfig;
use sqs_barrier_core::coordinator::sweepable;

use crate::error::Result;
use crate::info::BarrierInfo;
use crate::sqs::Sqs;

/// Attempts at sending one notice (each with the SDK's own retries).
const SEND_ATTEMPTS: u32 = 5;

/// How long a sweep hides what it received while it decides: the receipt
/// handle of a hidden message is the latest one, which a delete needs (SQS
/// may ignore a delete with an older handle).
const SWEEP_HIDE: i32 = 10;

/// Receives of one sweep at most (ten messages each).
const SWEEP_ROUNDS: usize = 10;

/// Sends one notice to the release queue `url`, retrying transient failures
/// with backoff. A notice that cannot be sent is not lost for good: the
/// published state records the release, and every participant's next status
/// read takes it as its release.
pub(crate) async fn send_notice(sqs: &Sqs, url: &str, body: &str) -> Result<()> {
    let mut backoff = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        let sent = sqs
            .client()
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await;
        match sent.map_err(|e| sqs.error("SendMessage", e)) {
            Ok(_) => return Ok(()),
            Err(e) if e.is_transient() && attempt < SEND_ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "sending a notice failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Sweeps the release queue `url`: deletes every message that is not a
/// notice of this barrier instance for a generation at or above `below`,
/// and makes the others visible again at once. Best effort (failures are
/// logged): a notice missed here expires with the queue's 60 s retention,
/// and a participant that reads one deletes it itself.
pub(crate) async fn sweep(sqs: Sqs, url: String, cfg: BarrierConfig, below: u64) {
    for _ in 0..SWEEP_ROUNDS {
        // A long poll of 1 s: a short poll samples a subset of SQS's servers
        // and may miss what is there; an empty queue costs this detached
        // task a second.
        let received = sqs
            .client()
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(SWEEP_HIDE)
            .wait_time_seconds(1)
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                let e = sqs.error("ReceiveMessage", e);
                tracing::warn!(queue = %url, error = %e, "could not sweep a release queue");
                return;
            }
        };
        let full = messages.len() == 10;
        let mut gone = Vec::new();
        let mut kept = Vec::new();
        for m in messages {
            let Some(handle) = m.receipt_handle else {
                continue;
            };
            if sweepable(&cfg, m.body.as_deref().unwrap_or_default(), below) {
                gone.push(handle);
            } else {
                kept.push(handle);
            }
        }
        tracing::debug!(queue = %url, below, swept = gone.len(), kept = kept.len(), "sweep");
        if !kept.is_empty() {
            // A current notice: visible again at once for its readers.
            if let Err(e) = sqs.change_visibility(&url, &kept, 0).await {
                tracing::warn!(queue = %url, error = %e, "a sweep could not make a notice visible again; it reappears within {SWEEP_HIDE} s");
            }
        }
        if let Err(e) = sqs.delete_batch(&url, &gone).await {
            tracing::warn!(queue = %url, error = %e, "a sweep could not delete old notices; they expire within 60 s");
        }
        if !full {
            return;
        }
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

/// Moves a rejected message's body to the barrier's dead-letter queue, with
/// the reason as the `sqs-barrier-reason` attribute.
pub(crate) async fn send_dead_letter(
    sqs: &Sqs,
    info: &BarrierInfo,
    body: &str,
    reason: &str,
) -> Result<()> {
    tracing::warn!(%reason, "moving a message to the dead-letter queue");
    let (body, reason) = fit_dead_letter(body, reason);
    let mut req = sqs
        .client()
        .send_message()
        .queue_url(&info.urls.dead_letter)
        .message_body(body)
        .message_attributes(
            REASON_ATTRIBUTE,
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(reason)
                .build()
                .expect("type set"),
        );
    if info.config.fifo {
        req = req
            .message_group_id("dead-letters")
            .message_deduplication_id(format!("{:016x}", rand::random::<u64>()));
    }
    req.send().await.map_err(|e| sqs.error("SendMessage", e))?;
    Ok(())
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
