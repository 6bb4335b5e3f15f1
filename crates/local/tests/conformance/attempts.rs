//! `ReceiveRequestAttemptId`: FIFO receives deduplicated by attempt id.
//!
//! "During a visibility timeout, subsequent calls with the same
//! `ReceiveRequestAttemptId` return the same messages and receipt handles. If a
//! retry occurs within the deduplication interval, it resets the visibility
//! timeout." (Amazon SQS API Reference, ReceiveMessage,
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html>).
//!
//! **Embedded endpoint only.** moto (5.x) accepts the parameter and ignores it: a
//! retry gets nothing (its messages are in flight) and no id is checked. (The tests
//! of an expired visibility timeout and of a deleted message pass on moto too, but
//! only because it ignores the id.) That a standard queue ignores the parameter is
//! checked on both endpoints, in `receive`.

use std::time::Duration;

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use sqs_barrier_testkit::Target;

use crate::support::{Ctx, bodies, sys_attr};

embedded_only!(
    attempt_retry_returns_the_same_messages_and_handles,
    attempt_another_id_gets_nothing_of_a_locked_group,
    attempt_after_the_visibility_timeout_the_old_handle_is_not_returned,
    attempt_a_deleted_message_is_not_returned_again,
    attempt_ids_are_checked,
);

impl Ctx {
    /// ReceiveMessage with `ReceiveRequestAttemptId`, asking for the system
    /// attributes; panics on an error.
    async fn receive_attempt(
        &self,
        url: &str,
        attempt_id: &str,
        max: i32,
        visibility: i32,
    ) -> Vec<Message> {
        self.try_receive_attempt(url, attempt_id, max, visibility)
            .await
            .unwrap_or_else(|e| panic!("[{}] ReceiveMessage ({attempt_id}): {e:?}", self.target))
            .messages
            .unwrap_or_default()
    }

    async fn try_receive_attempt(
        &self,
        url: &str,
        attempt_id: &str,
        max: i32,
        visibility: i32,
    ) -> Result<ReceiveMessageOutput, aws_sdk_sqs::Error> {
        Ok(self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max)
            .visibility_timeout(visibility)
            .receive_request_attempt_id(attempt_id)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await?)
    }

    /// A FIFO queue with a1, a2 in group A and b1 in group B.
    async fn two_groups(&self, name: &str) -> String {
        let url = self.fifo_queue(name, true).await;
        for (body, group) in [("a1", "A"), ("a2", "A"), ("b1", "B")] {
            self.send_fifo(&url, body, group, None).await;
        }
        url
    }
}

fn handles(messages: &[Message]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m.receipt_handle().unwrap_or(""))
        .collect()
}

fn receive_count(message: &Message) -> &str {
    sys_attr(message, MessageSystemAttributeName::ApproximateReceiveCount).unwrap_or("")
}

/// A retry with the same id returns the same messages with the same receipt
/// handles (not a second receive), and restarts their visibility timeout.
async fn attempt_retry_returns_the_same_messages_and_handles(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.two_groups("retry.fifo").await;
    let first = ctx.receive_attempt(&url, "take-1", 10, 3).await;
    assert_eq!(bodies(&first), ["a1", "a2", "b1"]);

    tokio::time::sleep(Duration::from_secs(2)).await;
    let retry = ctx.receive_attempt(&url, "take-1", 10, 3).await;
    assert_eq!(bodies(&retry), bodies(&first));
    assert_eq!(handles(&retry), handles(&first), "same receipt handles");
    assert!(
        retry.iter().all(|m| receive_count(m) == "1"),
        "the same receive, not a second one"
    );

    // 4 s after the first receive (3 s timeout), 2 s after the retry: still
    // hidden, because the retry reset the visibility timeout.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let other = ctx.receive(&url, 10, 0, Some(3)).await;
    assert!(
        other.is_empty(),
        "the retry reset the visibility timeout: {:?}",
        bodies(&other)
    );
    for handle in handles(&retry) {
        ctx.client
            .delete_message()
            .queue_url(&url)
            .receipt_handle(handle)
            .send()
            .await
            .expect("the retry's handles delete");
    }
    ctx.expect_counts(&url, 0, 0, 0).await;
}

/// While a message of a group is in flight, a receive with another attempt id
/// gets no message of that group (other groups flow); the first id still gets
/// its message back.
async fn attempt_another_id_gets_nothing_of_a_locked_group(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.two_groups("locked.fifo").await;
    let first = ctx.receive_attempt(&url, "take-1", 1, 30).await;
    assert_eq!(bodies(&first), ["a1"]);

    let other = ctx.receive_attempt(&url, "take-2", 10, 30).await;
    assert_eq!(bodies(&other), ["b1"], "group A is locked by a1");
    let third = ctx.receive_attempt(&url, "take-3", 10, 30).await;
    assert!(third.is_empty(), "nothing new: {:?}", bodies(&third));

    let retry = ctx.receive_attempt(&url, "take-1", 1, 30).await;
    assert_eq!(handles(&retry), handles(&first));
}

/// Once the visibility timeout expired, the same id no longer returns the old
/// receipt handle: the message is received again, with a new handle and
/// receive count 2.
async fn attempt_after_the_visibility_timeout_the_old_handle_is_not_returned(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.two_groups("expired.fifo").await;
    let first = ctx.receive_attempt(&url, "take-1", 1, 1).await;
    assert_eq!(bodies(&first), ["a1"]);

    tokio::time::sleep(Duration::from_millis(1500)).await;
    let retry = ctx.receive_attempt(&url, "take-1", 1, 30).await;
    assert_eq!(
        bodies(&retry),
        ["a1"],
        "a1 is visible again, first in order"
    );
    assert_ne!(handles(&retry), handles(&first), "a new receipt handle");
    assert_eq!(receive_count(&retry[0]), "2");
}

/// A message deleted after the receive is not returned to the retry.
async fn attempt_a_deleted_message_is_not_returned_again(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.two_groups("deleted.fifo").await;
    let first = ctx.receive_attempt(&url, "take-1", 1, 30).await;
    assert_eq!(bodies(&first), ["a1"]);
    ctx.client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(handles(&first)[0])
        .send()
        .await
        .unwrap();

    let retry = ctx.receive_attempt(&url, "take-1", 1, 30).await;
    assert_eq!(bodies(&retry), ["a2"], "a1 is gone; the call receives anew");
    ctx.expect_counts(&url, 1, 1, 0).await;
}

/// An attempt id has up to 128 characters of a-z, A-Z, 0-9 and punctuation
/// (else `InvalidParameterValue`).
async fn attempt_ids_are_checked(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.two_groups("checked.fifo").await;
    let longest = format!(
        "{}{}",
        r##"!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"##,
        "x".repeat(96)
    );
    assert_eq!(longest.len(), 128);
    let got = ctx.receive_attempt(&url, &longest, 1, 30).await;
    assert_eq!(bodies(&got), ["a1"]);
    for bad in ["x".repeat(129), "with space".to_owned(), "naïve".to_owned()] {
        let err = ctx
            .try_receive_attempt(&url, &bad, 1, 30)
            .await
            .expect_err("an invalid attempt id");
        assert_eq!(
            err.code(),
            Some("InvalidParameterValue"),
            "{bad:?}: {err:?}"
        );
    }
}
