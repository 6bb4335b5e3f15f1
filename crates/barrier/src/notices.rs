//! The coordinator's side of the release queues: sending a notice, and
//! sweeping away the notices nobody needs any more.
//!
//! Participants read a release queue with a visibility timeout of 0, so a
//! notice stays visible to all of them and nothing is ever in flight. What
//! a receive with visibility 0 would keep returning is an old notice: the
//! core asks for a [`Transmit::Sweep`] of the queue the participants are
//! about to read, and [`sweep`] deletes what may go.
//!
//! [`Transmit::Sweep`]: sqs_barrier_core::coordinator::Transmit::Sweep

use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
};
use sqs_barrier_core::BarrierConfig;
use sqs_barrier_core::coordinator::sweepable;

use crate::error::Result;
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
        for (i, m) in messages.into_iter().enumerate() {
            let Some(handle) = m.receipt_handle else {
                continue;
            };
            if sweepable(&cfg, m.body.as_deref().unwrap_or_default(), below) {
                gone.push(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(format!("s{i}"))
                        .receipt_handle(handle)
                        .build()
                        .expect("id and handle set"),
                );
            } else {
                kept.push(
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(format!("k{i}"))
                        .receipt_handle(handle)
                        .visibility_timeout(0)
                        .build()
                        .expect("id and handle set"),
                );
            }
        }
        tracing::debug!(queue = %url, below, swept = gone.len(), kept = kept.len(), "sweep");
        if !kept.is_empty() {
            // A current notice: visible again at once for its readers.
            let r = sqs
                .client()
                .change_message_visibility_batch()
                .queue_url(&url)
                .set_entries(Some(kept))
                .send()
                .await;
            if let Err(e) = r {
                let e = sqs.error("ChangeMessageVisibilityBatch", e);
                tracing::warn!(queue = %url, error = %e, "a sweep could not make a notice visible again; it reappears within {SWEEP_HIDE} s");
            }
        }
        if !gone.is_empty() {
            let r = sqs
                .client()
                .delete_message_batch()
                .queue_url(&url)
                .set_entries(Some(gone))
                .send()
                .await;
            if let Err(e) = r {
                let e = sqs.error("DeleteMessageBatch", e);
                tracing::warn!(queue = %url, error = %e, "a sweep could not delete old notices; they expire within 60 s");
            }
        }
        if !full {
            return;
        }
    }
}
