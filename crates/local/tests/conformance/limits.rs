//! SQS's documented limits and the errors for going beyond them: queue names,
//! attribute and parameter ranges, batch entry ids and sizes, message sizes and
//! message attributes.

use std::time::Duration;

use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
use sqs_barrier_testkit::Target::{self, Moto};

use crate::support::{Ctx, batch_entry, code_of, error_code};

sqs_barrier_testkit::both_endpoints!(
    queue_names_are_checked,
    deleted_queue_name_is_blocked_for_60_seconds,
    queue_attribute_ranges_are_enforced,
    request_parameter_ranges_are_enforced,
    batch_entry_ids_are_checked,
    batch_total_size_is_at_most_1_mib,
    message_size_is_at_most_1_mib_or_the_queue_maximum,
    message_attributes_are_at_most_10_with_valid_names,
);

/// "A queue name can have up to 80 characters. Valid values: alphanumeric
/// characters, hyphens (-), and underscores (_). A FIFO queue name must end
/// with the .fifo suffix", which counts towards the 80.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html>
async fn queue_names_are_checked(target: Target) {
    let ctx = Ctx::start(target).await;
    ctx.queue(&"n".repeat(80), &[]).await;
    ctx.fifo_queue(&format!("{}.fifo", "f".repeat(75)), false)
        .await;
    for bad in ["n".repeat(81), "a b".to_owned(), "a!b".to_owned()] {
        let result = ctx.client.create_queue().queue_name(&bad).send().await;
        assert_eq!(
            error_code(result, &bad),
            "InvalidParameterValue",
            "[{}] {bad:?}",
            ctx.target
        );
    }
    let long_fifo = format!("{}.fifo", "f".repeat(76));
    let result = ctx
        .client
        .create_queue()
        .queue_name(&long_fifo)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await;
    assert_eq!(
        error_code(result, "81-character FIFO name"),
        "InvalidParameterValue"
    );
}

/// "You must wait 60 seconds after deleting a queue before you can create
/// another queue with the same name" (QueueDeletedRecently). The end of the
/// 60 s is checked by the model's unit tests on a virtual clock.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteQueue.html>
async fn deleted_queue_name_is_blocked_for_60_seconds(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("short-lived", &[]).await;
    ctx.client
        .delete_queue()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    let again = ctx
        .client
        .create_queue()
        .queue_name("short-lived")
        .send()
        .await;
    if ctx.target == Moto {
        // moto differs: it creates the queue again at once; AWS doc:
        // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteQueue.html
        assert!(again.is_ok(), "{again:?}");
        return;
    }
    let err = again.expect_err("the name of a queue deleted just now");
    assert_eq!(
        err.code(),
        Some("AWS.SimpleQueueService.QueueDeletedRecently")
    );
    assert!(err.into_service_error().is_queue_deleted_recently());
    // Other names are not affected, and the deleted queue stays deleted.
    ctx.queue("short-lived-2", &[]).await;
    let lookup = ctx
        .client
        .get_queue_url()
        .queue_name("short-lived")
        .send()
        .await;
    assert!(
        lookup
            .unwrap_err()
            .into_service_error()
            .is_queue_does_not_exist()
    );
}

/// The ranged queue attributes take their bounds and refuse one beyond them
/// with InvalidAttributeValue, in CreateQueue and in SetQueueAttributes.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html>
async fn queue_attribute_ranges_are_enforced(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("ranges", &[]).await;
    let ranges = [
        (QueueAttributeName::DelaySeconds, 0, 900),
        (QueueAttributeName::MaximumMessageSize, 1024, 1_048_576),
        (QueueAttributeName::MessageRetentionPeriod, 60, 1_209_600),
        (QueueAttributeName::ReceiveMessageWaitTimeSeconds, 0, 20),
        (QueueAttributeName::VisibilityTimeout, 0, 43_200),
    ];
    for (name, min, max) in ranges {
        for good in [min, max] {
            ctx.client
                .set_queue_attributes()
                .queue_url(&url)
                .attributes(name.clone(), good.to_string())
                .send()
                .await
                .unwrap_or_else(|e| panic!("[{}] {name}={good}: {e:?}", ctx.target));
        }
        let mut bad = vec![max + 1];
        if min > 0 {
            bad.push(min - 1);
        }
        for value in bad {
            let set = ctx
                .client
                .set_queue_attributes()
                .queue_url(&url)
                .attributes(name.clone(), value.to_string())
                .send()
                .await;
            let create = ctx
                .client
                .create_queue()
                .queue_name(format!("ranges-{value}"))
                .attributes(name.clone(), value.to_string())
                .send()
                .await;
            for (op, result) in [
                ("SetQueueAttributes", code_of(set)),
                ("CreateQueue", code_of(create)),
            ] {
                if ctx.target == Moto
                    && !(op == "CreateQueue" && name == QueueAttributeName::MaximumMessageSize)
                {
                    // moto differs: it range-checks only MaximumMessageSize and
                    // only in CreateQueue; AWS doc:
                    // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html
                    continue;
                }
                assert_eq!(
                    result,
                    Err("InvalidAttributeValue".to_owned()),
                    "[{}] {op} {name}={value}",
                    ctx.target
                );
            }
        }
    }
}

/// Request parameters out of their documented ranges fail with
/// InvalidParameterValue: MaxNumberOfMessages 1..10, WaitTimeSeconds 0..20,
/// VisibilityTimeout 0..43,200 (receive and change), DelaySeconds 0..900.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html>
async fn request_parameter_ranges_are_enforced(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("params", &[]).await;
    ctx.send(&url, "m").await;
    let receive = || ctx.client.receive_message().queue_url(&url);
    let mut failures = Vec::new();
    for (what, result) in [
        (
            "MaxNumberOfMessages=0",
            receive().max_number_of_messages(0).send().await,
        ),
        (
            "MaxNumberOfMessages=11",
            receive().max_number_of_messages(11).send().await,
        ),
        (
            "WaitTimeSeconds=21",
            receive().wait_time_seconds(21).send().await,
        ),
        (
            "WaitTimeSeconds=-1",
            receive().wait_time_seconds(-1).send().await,
        ),
        (
            "VisibilityTimeout=43201",
            receive().visibility_timeout(43_201).send().await,
        ),
        (
            "VisibilityTimeout=-1",
            receive().visibility_timeout(-1).send().await,
        ),
    ] {
        failures.push((what, code_of(result)));
    }
    let delayed = ctx
        .client
        .send_message()
        .queue_url(&url)
        .message_body("late")
        .delay_seconds(901)
        .send()
        .await;
    failures.push(("DelaySeconds=901", code_of(delayed)));
    let got = ctx
        .receive_n(&url, 1, Some(30), Duration::from_secs(3))
        .await;
    let changed = ctx
        .client
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(got[0].receipt_handle().unwrap())
        .visibility_timeout(43_201)
        .send()
        .await;
    failures.push(("ChangeMessageVisibility 43201", code_of(changed)));
    for (what, result) in failures {
        if ctx.target == Moto
            && matches!(
                what,
                "WaitTimeSeconds=-1" | "VisibilityTimeout=43201" | "VisibilityTimeout=-1"
            )
        {
            // moto differs: it accepts these; AWS doc:
            // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html
            continue;
        }
        assert_eq!(
            result,
            Err("InvalidParameterValue".to_owned()),
            "[{}] {what}",
            ctx.target
        );
    }
}

/// "A batched message ID can have up to 80 characters. The following
/// characters are accepted: alphanumeric characters, hyphens (-), and
/// underscores (_)"; others fail the batch with InvalidBatchEntryId.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html>
async fn batch_entry_ids_are_checked(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("batch-ids", &[]).await;
    let longest = "i".repeat(80);
    let out = ctx
        .client
        .send_message_batch()
        .queue_url(&url)
        .entries(batch_entry(&longest, "a"))
        .entries(batch_entry("A-z_09", "b"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.successful().len(), 2, "{:?}", out.failed());
    for bad in [
        "i".repeat(81),
        "with space".to_owned(),
        "dot.ted".to_owned(),
    ] {
        let err = ctx
            .client
            .send_message_batch()
            .queue_url(&url)
            .entries(batch_entry(&bad, "x"))
            .send()
            .await
            .expect_err("malformed id");
        assert!(
            err.into_service_error().is_invalid_batch_entry_id(),
            "[{}] {bad:?}",
            ctx.target
        );
    }
}

/// "The maximum allowed individual message size and the maximum total payload
/// size (the sum of the individual lengths of all of the batched messages)
/// are both 1 MiB 1,048,576 bytes" (BatchRequestTooLong).
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html>
async fn batch_total_size_is_at_most_1_mib(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("batch-size", &[]).await;
    let half = "h".repeat(512 * 1024);
    let out = ctx
        .client
        .send_message_batch()
        .queue_url(&url)
        .entries(batch_entry("a", &half))
        .entries(batch_entry("b", &half))
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.successful().len(),
        2,
        "exactly 1 MiB: {:?}",
        out.failed()
    );
    let err = ctx
        .client
        .send_message_batch()
        .queue_url(&url)
        .entries(batch_entry("a", &half))
        .entries(batch_entry("b", &format!("{half}+")))
        .send()
        .await
        .expect_err("1 MiB + 1 byte");
    assert!(err.into_service_error().is_batch_request_too_long());
}

/// "The maximum size is 1 MiB or 1,048,576 bytes" (since 2025; 256 KiB
/// before), body and message attributes together, or the queue's smaller
/// MaximumMessageSize; more fails with InvalidParameterValue.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>
async fn message_size_is_at_most_1_mib_or_the_queue_maximum(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("big", &[]).await;
    let mib = "m".repeat(1_048_576);
    ctx.send(&url, &mib).await;
    let got = ctx
        .receive_n(&url, 1, Some(30), Duration::from_secs(5))
        .await;
    assert_eq!(got[0].body().map(str::len), Some(1_048_576));
    let over = ctx
        .client
        .send_message()
        .queue_url(&url)
        .message_body(format!("{mib}+"))
        .send()
        .await;
    assert_eq!(error_code(over, "1 MiB + 1 byte"), "InvalidParameterValue");
    // Attributes count: name, type and value.
    let with_attribute = ctx
        .client
        .send_message()
        .queue_url(&url)
        .message_body(&mib[..1_048_576 - 10])
        .message_attributes(
            "k",
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value("vvvv")
                .build()
                .unwrap(),
        )
        .send()
        .await;
    if ctx.target == Moto {
        // moto differs: it counts only the body; AWS doc:
        // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html
        assert!(with_attribute.is_ok(), "{with_attribute:?}");
    } else {
        assert_eq!(
            error_code(with_attribute, "body + attribute over 1 MiB"),
            "InvalidParameterValue"
        );
    }

    let small = ctx
        .queue("small", &[(QueueAttributeName::MaximumMessageSize, "1024")])
        .await;
    ctx.send(&small, &"s".repeat(1024)).await;
    let over = ctx
        .client
        .send_message()
        .queue_url(&small)
        .message_body("s".repeat(1025))
        .send()
        .await;
    assert_eq!(
        error_code(over, "over the queue's maximum"),
        "InvalidParameterValue"
    );
}

/// "A message can contain up to 10 metadata attributes"; names may not start
/// with "AWS." or "Amazon.", nor start, end or repeat a period, and hold only
/// A-Z a-z 0-9 _ - . (InvalidParameterValue).
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html>
async fn message_attributes_are_at_most_10_with_valid_names(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("attr-limits", &[]).await;
    let value = || {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value("v")
            .build()
            .unwrap()
    };
    let with = |names: Vec<String>| {
        let mut request = ctx.client.send_message().queue_url(&url).message_body("b");
        for name in names {
            request = request.message_attributes(name, value());
        }
        request.send()
    };
    with((0..10).map(|i| format!("a{i}")).collect())
        .await
        .unwrap_or_else(|e| panic!("[{}] 10 attributes: {e:?}", ctx.target));
    let eleven = with((0..11).map(|i| format!("a{i}")).collect()).await;
    if ctx.target == Moto {
        // moto differs: it takes any number of attributes; AWS doc:
        // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html
        assert!(eleven.is_ok(), "{eleven:?}");
    } else {
        assert_eq!(error_code(eleven, "11 attributes"), "InvalidParameterValue");
    }
    for bad in ["AWS.x", "amazon.x", ".a", "a.", "a..b", "a b", "ä"] {
        let result = with(vec![bad.to_owned()]).await;
        if ctx.target == Moto && !bad.contains([' ', 'ä']) {
            // moto differs: it checks only the characters, not the reserved
            // prefixes or the periods; AWS doc:
            // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html
            assert!(result.is_ok(), "{bad:?}: {result:?}");
            continue;
        }
        assert_eq!(
            error_code(result, bad),
            "InvalidParameterValue",
            "[{}] {bad:?}",
            ctx.target
        );
    }
}
