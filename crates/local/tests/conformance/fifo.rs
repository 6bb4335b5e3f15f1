//! FIFO queues: naming, required ids, order within a group, deduplication and
//! sequence numbers.

use std::time::Duration;

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use sqs_barrier_testkit::Target::{self, Moto};

use crate::support::{Ctx, bodies, sys_attr};

sqs_barrier_testkit::both_endpoints!(
    fifo_name_and_attribute_must_pair,
    fifo_requires_group_and_dedup_id,
    fifo_orders_within_group_and_blocks_group_in_flight,
    fifo_dedup_id_drops_repeats_even_after_delete,
    fifo_content_based_deduplication,
    fifo_sequence_numbers,
);

/// A FIFO queue's name ends in `.fifo` and it is created with FifoQueue=true;
/// either half alone is rejected (a standard queue name may not contain '.').
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html>
async fn fifo_name_and_attribute_must_pair(target: Target) {
    let ctx = Ctx::start(target).await;
    let no_suffix = ctx
        .client
        .create_queue()
        .queue_name("plain-name")
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await;
    let err = no_suffix.expect_err("FifoQueue=true needs a .fifo name");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));

    let no_attribute = ctx
        .client
        .create_queue()
        .queue_name("named.fifo")
        .send()
        .await;
    if ctx.target == Moto {
        // moto differs: it creates a standard queue named "named.fifo"; AWS
        // allows only alphanumerics, '-' and '_' in standard queue names; doc:
        // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html
    } else {
        assert!(
            no_attribute.is_err(),
            "a .fifo name needs FifoQueue=true: {no_attribute:?}"
        );
    }

    let url = ctx.fifo_queue("proper.fifo", false).await;
    let all = ctx.attributes(&url, &[QueueAttributeName::All]).await;
    assert_eq!(all.get("FifoQueue").map(String::as_str), Some("true"));
    assert_eq!(
        all.get("ContentBasedDeduplication").map(String::as_str),
        Some("false")
    );
}

/// On a FIFO queue, SendMessage needs MessageGroupId (MissingParameter), and a
/// MessageDeduplicationId unless ContentBasedDeduplication is on.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>
async fn fifo_requires_group_and_dedup_id(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.fifo_queue("strict.fifo", false).await;
    let err = ctx
        .client
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .message_deduplication_id("d")
        .send()
        .await
        .expect_err("MessageGroupId is required");
    assert_eq!(err.code(), Some("MissingParameter"), "{err:?}");

    let err = ctx
        .client
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .message_group_id("g")
        .send()
        .await
        .expect_err("dedup id required without content-based dedup");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
}

/// Messages of one group come in send order, and while one of them is in
/// flight no later message of that group is returned; other groups flow.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-understanding-logic.html>
async fn fifo_orders_within_group_and_blocks_group_in_flight(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.fifo_queue("ordered.fifo", true).await;
    for body in ["a1", "a2", "a3"] {
        ctx.send_fifo(&url, body, "A", None).await;
    }
    ctx.send_fifo(&url, "b1", "B", None).await;

    let first = ctx.receive(&url, 1, 1, Some(30)).await;
    assert_eq!(bodies(&first), ["a1"], "oldest message of the oldest group");

    // a1 is in flight: group A is blocked, B is not.
    let next = ctx
        .receive_n(&url, 1, Some(30), Duration::from_secs(3))
        .await;
    assert_eq!(bodies(&next), ["b1"]);
    assert!(
        ctx.receive(&url, 10, 0, Some(30)).await.is_empty(),
        "a2 must wait while a1 is in flight"
    );

    ctx.client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(first[0].receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    let rest = ctx
        .receive_n(&url, 2, Some(30), Duration::from_secs(3))
        .await;
    assert_eq!(bodies(&rest), ["a2", "a3"], "order within the group");
}

/// A MessageDeduplicationId seen in the last 5 minutes is accepted but not
/// delivered again, also when the first message was already deleted.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/using-messagededuplicationid-property.html>
async fn fifo_dedup_id_drops_repeats_even_after_delete(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.fifo_queue("dedup.fifo", false).await;
    ctx.send_fifo(&url, "first", "g", Some("d1")).await;
    ctx.send_fifo(&url, "repeat", "g", Some("d1")).await;
    let got = ctx.receive(&url, 10, 1, Some(30)).await;
    assert_eq!(bodies(&got), ["first"], "the repeat is dropped");
    assert_eq!(
        sys_attr(&got[0], MessageSystemAttributeName::MessageDeduplicationId),
        Some("d1")
    );
    ctx.client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(got[0].receipt_handle().unwrap())
        .send()
        .await
        .unwrap();

    ctx.send_fifo(&url, "after delete", "g", Some("d1")).await;
    let after = ctx.receive(&url, 10, 1, Some(30)).await;
    if ctx.target == Moto {
        // moto differs: it forgets a dedup id once its message is deleted and
        // delivers the repeat; AWS doc:
        // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/using-messagededuplicationid-property.html
        return;
    }
    assert!(
        after.is_empty(),
        "dedup id within 5 minutes dropped even after delete: {:?}",
        bodies(&after)
    );
}

/// With ContentBasedDeduplication the dedup id is the SHA-256 of the body.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-exactly-once-processing.html>
async fn fifo_content_based_deduplication(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.fifo_queue("content.fifo", true).await;
    ctx.send_fifo(&url, "same", "g", None).await;
    ctx.send_fifo(&url, "same", "g", None).await;
    ctx.send_fifo(&url, "different", "g", None).await;
    let got = ctx
        .receive_n(&url, 2, Some(30), Duration::from_secs(3))
        .await;
    assert_eq!(bodies(&got), ["same", "different"]);
    assert!(ctx.receive(&url, 10, 0, Some(30)).await.is_empty());
}

/// FIFO sends return a SequenceNumber; received messages carry it with their
/// MessageGroupId, and it grows within a group.
async fn fifo_sequence_numbers(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.fifo_queue("sequence.fifo", true).await;
    let mut sent = Vec::new();
    for body in ["s1", "s2"] {
        let out = ctx
            .client
            .send_message()
            .queue_url(&url)
            .message_body(body)
            .message_group_id("g")
            .send()
            .await
            .unwrap();
        if ctx.target == Moto {
            // moto differs: it reports no SequenceNumber, neither from
            // SendMessage nor on received messages; AWS doc:
            // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
            continue;
        }
        let number: u128 = out
            .sequence_number()
            .expect("SequenceNumber on FIFO send")
            .parse()
            .expect("SequenceNumber is numeric");
        sent.push(number);
    }
    if ctx.target != Moto {
        assert!(sent[0] < sent[1], "sequence numbers grow: {sent:?}");
    }

    let got = ctx
        .receive_n(&url, 2, Some(30), Duration::from_secs(3))
        .await;
    assert_eq!(got.len(), 2);
    let mut received = Vec::new();
    for message in &got {
        assert_eq!(
            sys_attr(message, MessageSystemAttributeName::MessageGroupId),
            Some("g")
        );
        if ctx.target == Moto {
            continue; // no SequenceNumber in moto, see above
        }
        let number: u128 = sys_attr(message, MessageSystemAttributeName::SequenceNumber)
            .expect("SequenceNumber on a received FIFO message")
            .parse()
            .expect("SequenceNumber is numeric");
        received.push(number);
    }
    if ctx.target != Moto {
        assert!(
            received[0] < received[1],
            "received in sequence: {received:?}"
        );
        assert_eq!(received, sent, "send and receive report the same numbers");
    }
}
