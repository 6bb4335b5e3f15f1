//! Deleting: DeleteMessage and DeleteMessageBatch.

use std::time::Duration;

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use sqs_barrier_testkit::Target::{self, Moto};

use crate::support::Ctx;

sqs_barrier_testkit::both_endpoints!(
    delete_message_and_invalid_receipt_handle,
    delete_message_batch_reports_per_entry,
);

async fn delete_message_and_invalid_receipt_handle(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("delete", &[]).await;
    ctx.send(&url, "bye").await;
    let got = ctx
        .receive_n(&url, 1, Some(1), Duration::from_secs(3))
        .await;
    assert_eq!(got.len(), 1);
    ctx.client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(got[0].receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        ctx.receive(&url, 10, 1, None).await.is_empty(),
        "deleted message came back"
    );
    ctx.expect_counts(&url, 0, 0, 0).await;

    let err = ctx
        .client
        .delete_message()
        .queue_url(&url)
        .receipt_handle("not-a-receipt-handle")
        .send()
        .await
        .expect_err("garbage receipt handle");
    assert!(err.into_service_error().is_receipt_handle_is_invalid());
}

/// DeleteMessageBatch reports each entry; an invalid handle is a per-entry
/// failure with code ReceiptHandleIsInvalid, the batch limits are as for
/// SendMessageBatch.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteMessageBatch.html>
async fn delete_message_batch_reports_per_entry(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("delete-batch", &[]).await;
    ctx.send(&url, "one").await;
    let got = ctx
        .receive_n(&url, 1, Some(30), Duration::from_secs(3))
        .await;
    assert_eq!(got.len(), 1);
    let entry = |id: &str, handle: &str| {
        DeleteMessageBatchRequestEntry::builder()
            .id(id)
            .receipt_handle(handle)
            .build()
            .unwrap()
    };
    let out = ctx
        .client
        .delete_message_batch()
        .queue_url(&url)
        .entries(entry("good", got[0].receipt_handle().unwrap()))
        .entries(entry("bad", "not-a-receipt-handle"))
        .send()
        .await
        .unwrap();
    let ok: Vec<&str> = out.successful().iter().map(|s| s.id()).collect();
    assert_eq!(ok, ["good"]);
    assert_eq!(out.failed().len(), 1);
    let failed = &out.failed()[0];
    assert_eq!(failed.id(), "bad");
    assert_eq!(failed.code(), "ReceiptHandleIsInvalid");
    assert!(failed.sender_fault());
    ctx.expect_counts(&url, 0, 0, 0).await;

    let eleven: Vec<_> = (0..11).map(|i| entry(&format!("e{i}"), "h")).collect();
    let err = ctx
        .client
        .delete_message_batch()
        .queue_url(&url)
        .set_entries(Some(eleven))
        .send()
        .await
        .expect_err("11 entries");
    if ctx.target == Moto {
        // moto differs: it answers 11 distinct entries with
        // BatchEntryIdsNotDistinct ("Id e1 repeated"); AWS doc:
        // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteMessageBatch.html
        assert!(err.into_service_error().is_batch_entry_ids_not_distinct());
    } else {
        assert!(
            err.into_service_error()
                .is_too_many_entries_in_batch_request()
        );
    }
    let duplicates = ctx
        .client
        .delete_message_batch()
        .queue_url(&url)
        .entries(entry("x", "h1"))
        .entries(entry("x", "h2"))
        .send()
        .await;
    if ctx.target == Moto {
        // moto differs: it processes entries with duplicate ids one by one
        // instead of rejecting the batch with BatchEntryIdsNotDistinct; AWS doc:
        // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteMessageBatch.html
    } else {
        let err = duplicates.expect_err("duplicate ids");
        assert!(err.into_service_error().is_batch_entry_ids_not_distinct());
    }
    let err = ctx
        .client
        .delete_message_batch()
        .queue_url(&url)
        .set_entries(Some(Vec::new()))
        .send()
        .await
        .expect_err("empty batch");
    assert!(err.into_service_error().is_empty_batch_request());
}
