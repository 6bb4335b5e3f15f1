//! Receiving: visibility timeouts, long polls, ChangeMessageVisibility (single
//! and batch) and redrive to a dead-letter queue.

use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};
use sqs_barrier_testkit::Target;

use crate::support::{Ctx, bodies, md5_hex, sys_attr};

sqs_barrier_testkit::both_endpoints!(
    receive_hides_message_for_visibility_timeout,
    receive_with_visibility_timeout_zero_leaves_message_visible,
    long_poll_wakes_up_on_send,
    long_poll_returns_empty_after_wait,
    queue_receive_wait_time_is_default_long_poll,
    change_message_visibility_single_and_batch,
    redrive_moves_to_dead_letter_queue,
    standard_queue_ignores_receive_request_attempt_id,
);

fn receive_count(message: &Message) -> u32 {
    sys_attr(message, MessageSystemAttributeName::ApproximateReceiveCount)
        .expect("ApproximateReceiveCount")
        .parse()
        .expect("ApproximateReceiveCount is a number")
}

/// A received message is hidden for the visibility timeout, then delivered
/// again with a new receipt handle and ApproximateReceiveCount 2.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html>
async fn receive_hides_message_for_visibility_timeout(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("visibility", &[]).await;
    let id = ctx.send(&url, "hello").await;

    let first = ctx
        .receive_n(&url, 1, Some(2), Duration::from_secs(3))
        .await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].message_id(), Some(id.as_str()));
    assert_eq!(first[0].body(), Some("hello"));
    assert_eq!(first[0].md5_of_body(), Some(md5_hex(b"hello").as_str()));
    assert_eq!(receive_count(&first[0]), 1);
    for attr in [
        MessageSystemAttributeName::SentTimestamp,
        MessageSystemAttributeName::ApproximateFirstReceiveTimestamp,
        MessageSystemAttributeName::SenderId,
    ] {
        assert!(sys_attr(&first[0], attr.clone()).is_some(), "{attr}");
    }

    assert!(
        ctx.receive(&url, 10, 0, None).await.is_empty(),
        "hidden while in flight"
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let second = ctx
        .receive_n(&url, 1, Some(30), Duration::from_secs(3))
        .await;
    assert_eq!(second.len(), 1, "visible again after the timeout");
    assert_eq!(second[0].message_id(), Some(id.as_str()));
    assert_eq!(receive_count(&second[0]), 2);
    assert_ne!(
        second[0].receipt_handle(),
        first[0].receipt_handle(),
        "each receive gets a new receipt handle"
    );
}

async fn receive_with_visibility_timeout_zero_leaves_message_visible(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("vis-zero", &[]).await;
    ctx.send(&url, "stay").await;
    let first = ctx
        .receive_n(&url, 1, Some(0), Duration::from_secs(3))
        .await;
    assert_eq!(first.len(), 1);
    let again = ctx
        .receive_n(&url, 1, Some(0), Duration::from_secs(3))
        .await;
    assert_eq!(again.len(), 1, "VisibilityTimeout=0 leaves it visible");
    assert_eq!(again[0].message_id(), first[0].message_id());
    assert_eq!(receive_count(&again[0]), 2);
}

/// "The ReceiveMessage call returns as soon as a message is available".
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html>
async fn long_poll_wakes_up_on_send(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("long-poll", &[]).await;
    let client = ctx.client.clone();
    let sender_url = url.clone();
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        client
            .send_message()
            .queue_url(sender_url)
            .message_body("wake")
            .send()
            .await
            .unwrap();
    });
    let start = Instant::now();
    let got = ctx.receive(&url, 1, 5, None).await;
    let elapsed = start.elapsed();
    sender.await.unwrap();
    assert_eq!(bodies(&got), ["wake"]);
    assert!(
        elapsed < Duration::from_millis(3000),
        "long poll returned after {elapsed:?}, not promptly after the send at 0.5 s"
    );
}

async fn long_poll_returns_empty_after_wait(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("long-empty", &[]).await;
    let start = Instant::now();
    let got = ctx.receive(&url, 10, 1, None).await;
    let elapsed = start.elapsed();
    assert!(got.is_empty());
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(4)).contains(&elapsed),
        "empty long poll of 1 s took {elapsed:?}"
    );
}

/// ReceiveMessageWaitTimeSeconds on the queue is the wait of a receive that
/// does not give WaitTimeSeconds.
async fn queue_receive_wait_time_is_default_long_poll(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx
        .queue(
            "queue-wait",
            &[(QueueAttributeName::ReceiveMessageWaitTimeSeconds, "1")],
        )
        .await;
    let start = Instant::now();
    let out = ctx
        .client
        .receive_message()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    let elapsed = start.elapsed();
    assert!(out.messages().is_empty());
    assert!(
        elapsed >= Duration::from_millis(900),
        "queue default wait of 1 s not applied: {elapsed:?}"
    );
}

/// ChangeMessageVisibility restarts the timeout from now: 0 makes the
/// message visible at once, a longer value keeps it hidden.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html>
async fn change_message_visibility_single_and_batch(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("change-vis", &[]).await;
    ctx.send(&url, "m").await;
    let got = ctx
        .receive_n(&url, 1, Some(30), Duration::from_secs(3))
        .await;
    assert_eq!(got.len(), 1);
    ctx.client
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(got[0].receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .unwrap();
    let again = ctx
        .receive_n(&url, 1, Some(1), Duration::from_secs(3))
        .await;
    assert_eq!(again.len(), 1, "visible after ChangeMessageVisibility(0)");

    // Extend the 1 s timeout to 3 s: after 1.5 s it is still hidden.
    let entry = |id: &str, handle: &str, seconds: i32| {
        ChangeMessageVisibilityBatchRequestEntry::builder()
            .id(id)
            .receipt_handle(handle)
            .visibility_timeout(seconds)
            .build()
            .unwrap()
    };
    let out = ctx
        .client
        .change_message_visibility_batch()
        .queue_url(&url)
        .entries(entry("extend", again[0].receipt_handle().unwrap(), 3))
        .entries(entry("bad", "not-a-receipt-handle", 3))
        .send()
        .await
        .unwrap();
    let ok: Vec<&str> = out.successful().iter().map(|s| s.id()).collect();
    assert_eq!(ok, ["extend"]);
    assert_eq!(out.failed().len(), 1);
    assert_eq!(out.failed()[0].id(), "bad");
    assert_eq!(out.failed()[0].code(), "ReceiptHandleIsInvalid");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        ctx.receive(&url, 10, 0, None).await.is_empty(),
        "extended visibility timeout still hides the message"
    );

    let err = ctx
        .client
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle("not-a-receipt-handle")
        .visibility_timeout(5)
        .send()
        .await
        .expect_err("garbage receipt handle");
    assert!(err.into_service_error().is_receipt_handle_is_invalid());
}

/// With a redrive policy, a message received maxReceiveCount times and not
/// deleted moves to the dead-letter queue, keeping its message id.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html>
async fn redrive_moves_to_dead_letter_queue(target: Target) {
    let ctx = Ctx::start(target).await;
    let dlq = ctx.queue("dead-letters", &[]).await;
    let dlq_arn = ctx.arn(&dlq).await;
    let policy = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":2}}"#);
    let url = ctx
        .queue("redriven", &[(QueueAttributeName::RedrivePolicy, &policy)])
        .await;
    let stored = ctx
        .attribute(&url, QueueAttributeName::RedrivePolicy)
        .await
        .expect("RedrivePolicy");
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["deadLetterTargetArn"], dlq_arn.as_str());
    let id = ctx.send(&url, "poison").await;

    for n in 1..=2 {
        let got = ctx
            .receive_n(&url, 1, Some(0), Duration::from_secs(3))
            .await;
        assert_eq!(got.len(), 1, "receive {n} of maxReceiveCount 2");
        assert_eq!(receive_count(&got[0]), n);
    }
    // The third receive finds the count exceeded and moves the message.
    assert!(ctx.receive(&url, 10, 1, Some(0)).await.is_empty());
    let dead = ctx.receive_n(&dlq, 1, None, Duration::from_secs(3)).await;
    assert_eq!(dead.len(), 1, "message in the dead-letter queue");
    assert_eq!(dead[0].message_id(), Some(id.as_str()));
    assert_eq!(dead[0].body(), Some("poison"));

    let sources = ctx
        .client
        .list_dead_letter_source_queues()
        .queue_url(&dlq)
        .send()
        .await
        .unwrap();
    assert_eq!(sources.queue_urls(), [url]);
}

/// `ReceiveRequestAttemptId` "applies only to FIFO (first-in-first-out)
/// queues": on a standard queue two receives with the same id are two
/// receives. (FIFO queues: see `attempts`.)
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html>
async fn standard_queue_ignores_receive_request_attempt_id(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("attempts", &[]).await;
    ctx.send(&url, "m1").await;
    ctx.send(&url, "m2").await;
    let mut got = Vec::new();
    for _ in 0..2 {
        let out = ctx
            .client
            .receive_message()
            .queue_url(&url)
            .visibility_timeout(30)
            .receive_request_attempt_id("take-1")
            .send()
            .await
            .unwrap_or_else(|e| panic!("[{}] ReceiveMessage: {e:?}", ctx.target));
        got.extend(out.messages.unwrap_or_default());
    }
    let mut received = bodies(&got);
    received.sort_unstable();
    assert_eq!(
        received,
        ["m1", "m2"],
        "no deduplication on a standard queue"
    );
}
