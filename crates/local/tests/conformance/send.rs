//! Sending: SendMessageBatch, delays, and message attributes with their MD5.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
use sqs_barrier_testkit::Target;

use crate::support::{Ctx, batch_entry, bodies, md5_hex};

sqs_barrier_testkit::both_endpoints!(
    send_message_batch_succeeds_and_enforces_limits,
    delay_seconds_per_message_and_per_queue,
    message_attributes_round_trip_with_md5,
);

/// MD5 of message attributes as AWS documents it: attributes sorted by name;
/// for each, the length-prefixed (4-byte big-endian) name and data type, a
/// transport byte (1 = string value, 2 = binary value), and the
/// length-prefixed value.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html#sqs-attributes-md5-message-digest-calculation>
fn md5_of_attributes(attributes: &HashMap<String, MessageAttributeValue>) -> String {
    fn put(buf: &mut Vec<u8>, bytes: &[u8]) {
        buf.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        buf.extend_from_slice(bytes);
    }
    let mut names: Vec<&String> = attributes.keys().collect();
    names.sort();
    let mut buf = Vec::new();
    for name in names {
        let value = &attributes[name];
        put(&mut buf, name.as_bytes());
        put(&mut buf, value.data_type().as_bytes());
        if let Some(binary) = value.binary_value() {
            buf.push(2);
            put(&mut buf, binary.as_ref());
        } else {
            buf.push(1);
            put(&mut buf, value.string_value().unwrap_or("").as_bytes());
        }
    }
    md5_hex(&buf)
}

/// Batches hold 1..10 entries with distinct ids.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html>
async fn send_message_batch_succeeds_and_enforces_limits(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("batch", &[]).await;
    let out = ctx
        .client
        .send_message_batch()
        .queue_url(&url)
        .entries(batch_entry("a", "alpha"))
        .entries(batch_entry("b", "beta"))
        .send()
        .await
        .unwrap();
    assert!(out.failed().is_empty(), "no failures: {:?}", out.failed());
    let mut ids: Vec<&str> = out.successful().iter().map(|s| s.id()).collect();
    ids.sort();
    assert_eq!(ids, ["a", "b"]);
    for ok in out.successful() {
        let body = if ok.id() == "a" { "alpha" } else { "beta" };
        assert_eq!(ok.md5_of_message_body(), md5_hex(body.as_bytes()));
        assert!(!ok.message_id().is_empty());
    }
    let mut got = bodies(&ctx.receive_n(&url, 2, None, Duration::from_secs(5)).await)
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    got.sort();
    assert_eq!(got, ["alpha", "beta"]);

    let eleven: Vec<_> = (0..11)
        .map(|i| batch_entry(&format!("e{i}"), "x"))
        .collect();
    let err = ctx
        .client
        .send_message_batch()
        .queue_url(&url)
        .set_entries(Some(eleven))
        .send()
        .await
        .expect_err("11 entries");
    assert!(
        err.into_service_error()
            .is_too_many_entries_in_batch_request()
    );

    let err = ctx
        .client
        .send_message_batch()
        .queue_url(&url)
        .entries(batch_entry("same", "1"))
        .entries(batch_entry("same", "2"))
        .send()
        .await
        .expect_err("duplicate ids");
    assert!(err.into_service_error().is_batch_entry_ids_not_distinct());

    let err = ctx
        .client
        .send_message_batch()
        .queue_url(&url)
        .set_entries(Some(Vec::new()))
        .send()
        .await
        .expect_err("empty batch");
    assert!(err.into_service_error().is_empty_batch_request());
}

/// DelaySeconds (per message, or the queue's default) keeps a new message
/// invisible, counted as delayed, until the delay has passed.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-delay-queues.html>
async fn delay_seconds_per_message_and_per_queue(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("delay", &[]).await;
    ctx.client
        .send_message()
        .queue_url(&url)
        .message_body("delayed")
        .delay_seconds(1)
        .send()
        .await
        .unwrap();
    assert!(ctx.receive(&url, 10, 0, None).await.is_empty(), "delayed");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let got = ctx.receive_n(&url, 1, None, Duration::from_secs(3)).await;
    assert_eq!(bodies(&got), ["delayed"]);

    let delayed_queue = ctx
        .queue("delay-queue", &[(QueueAttributeName::DelaySeconds, "1")])
        .await;
    ctx.send(&delayed_queue, "queue-delayed").await;
    ctx.expect_counts(&delayed_queue, 0, 0, 1).await;
    assert!(ctx.receive(&delayed_queue, 10, 0, None).await.is_empty());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let got = ctx
        .receive_n(&delayed_queue, 1, None, Duration::from_secs(3))
        .await;
    assert_eq!(bodies(&got), ["queue-delayed"]);
}

async fn message_attributes_round_trip_with_md5(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("msg-attrs", &[]).await;
    let mut attributes = HashMap::new();
    attributes.insert(
        "text".to_owned(),
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value("grüße")
            .build()
            .unwrap(),
    );
    attributes.insert(
        "count".to_owned(),
        MessageAttributeValue::builder()
            .data_type("Number")
            .string_value("42")
            .build()
            .unwrap(),
    );
    attributes.insert(
        "raw".to_owned(),
        MessageAttributeValue::builder()
            .data_type("Binary")
            .binary_value(Blob::new(vec![0u8, 1, 2, 255]))
            .build()
            .unwrap(),
    );
    attributes.insert(
        "custom".to_owned(),
        MessageAttributeValue::builder()
            .data_type("String.json")
            .string_value("{}")
            .build()
            .unwrap(),
    );
    let body = "body with attributes";
    let sent = ctx
        .client
        .send_message()
        .queue_url(&url)
        .message_body(body)
        .set_message_attributes(Some(attributes.clone()))
        .send()
        .await
        .unwrap();
    let want_body_md5 = md5_hex(body.as_bytes());
    let want_attr_md5 = md5_of_attributes(&attributes);
    assert_eq!(sent.md5_of_message_body(), Some(want_body_md5.as_str()));
    assert_eq!(
        sent.md5_of_message_attributes(),
        Some(want_attr_md5.as_str())
    );

    let got = ctx.receive_n(&url, 1, None, Duration::from_secs(3)).await;
    assert_eq!(got.len(), 1);
    let message = &got[0];
    assert_eq!(message.md5_of_body(), Some(want_body_md5.as_str()));
    assert_eq!(
        message.md5_of_message_attributes(),
        Some(want_attr_md5.as_str())
    );
    let received = message.message_attributes().expect("attributes returned");
    assert_eq!(received, &attributes);
}
