//! Queues and their attributes: CreateQueue, GetQueueUrl, ListQueues,
//! GetQueueAttributes, SetQueueAttributes, DeleteQueue and PurgeQueue.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::types::QueueAttributeName;
use sqs_barrier_testkit::Target::{self, Moto};

use crate::support::Ctx;

sqs_barrier_testkit::both_endpoints!(
    create_queue_is_idempotent_only_with_equal_attributes,
    get_queue_url_of_existing_and_missing_queue,
    list_queues_by_prefix_and_pages,
    get_queue_attributes_all_and_by_name,
    approximate_counts_follow_the_queue,
    set_queue_attributes_round_trip,
    set_queue_attributes_rejects_out_of_range_value,
    delete_queue_removes_it,
    operations_on_a_missing_queue_fail_typed,
    purge_queue_empties_and_limits_rate,
    sqs_managed_sse_is_reported,
);

fn now_epoch_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// "If you specify the name of an existing queue and provide the exact same
/// names and values for all its attributes, CreateQueue returns the URL of the
/// existing queue"; different values are an error (QueueNameExists).
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html>
async fn create_queue_is_idempotent_only_with_equal_attributes(target: Target) {
    let ctx = Ctx::start(target).await;
    let attrs = [(QueueAttributeName::VisibilityTimeout, "5")];
    let first = ctx.queue("idem", &attrs).await;
    let second = ctx.queue("idem", &attrs).await;
    assert_eq!(first, second, "same name and attributes: same URL");
    assert!(
        first.ends_with("/idem"),
        "queue URL ends in the name: {first}"
    );

    let err = ctx
        .client
        .create_queue()
        .queue_name("idem")
        .attributes(QueueAttributeName::VisibilityTimeout, "6")
        .send()
        .await
        .expect_err("different attribute value must fail");
    assert!(
        err.into_service_error().is_queue_name_exists(),
        "QueueNameExists"
    );
}

async fn get_queue_url_of_existing_and_missing_queue(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("lookup", &[]).await;
    let got = ctx
        .client
        .get_queue_url()
        .queue_name("lookup")
        .send()
        .await
        .unwrap();
    assert_eq!(got.queue_url(), Some(url.as_str()));

    let err = ctx
        .client
        .get_queue_url()
        .queue_name("no-such-queue")
        .send()
        .await
        .expect_err("missing queue");
    assert!(err.into_service_error().is_queue_does_not_exist());
}

/// ListQueues filters by prefix; with MaxResults it pages with NextToken,
/// and "NextToken is null if there are no additional results".
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListQueues.html>
async fn list_queues_by_prefix_and_pages(target: Target) {
    let ctx = Ctx::start(target).await;
    let mut expected = Vec::new();
    for i in 0..5 {
        expected.push(ctx.queue(&format!("page-{i}"), &[]).await);
    }
    ctx.queue("other-queue", &[]).await;

    let all = ctx
        .client
        .list_queues()
        .queue_name_prefix("page-")
        .send()
        .await
        .unwrap();
    let mut urls = all.queue_urls().to_vec();
    urls.sort();
    assert_eq!(urls, expected, "prefix filter");
    assert!(
        all.next_token().is_none(),
        "no NextToken without MaxResults"
    );

    let mut paged = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let page = ctx
            .client
            .list_queues()
            .queue_name_prefix("page-")
            .max_results(2)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(page.queue_urls().len() <= 2, "MaxResults bounds a page");
        paged.extend(page.queue_urls().iter().cloned());
        token = page.next_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
        assert!(pages < 10, "paging does not end");
    }
    paged.sort();
    assert_eq!(paged, expected, "pages cover every queue once");
    assert_eq!(pages, 3, "5 queues in pages of 2");
}

async fn get_queue_attributes_all_and_by_name(target: Target) {
    let ctx = Ctx::start(target).await;
    let before = now_epoch_seconds();
    let url = ctx
        .queue("attrs", &[(QueueAttributeName::VisibilityTimeout, "7")])
        .await;
    let all = ctx.attributes(&url, &[QueueAttributeName::All]).await;

    let arn = &all["QueueArn"];
    assert!(arn.starts_with("arn:aws:sqs:us-east-1:"), "QueueArn {arn}");
    assert!(arn.ends_with(":attrs"), "QueueArn {arn}");
    let account = arn.split(':').nth(4).unwrap();
    assert!(
        account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()),
        "account id in {arn}"
    );
    for counter in [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ] {
        assert_eq!(all.get(counter).map(String::as_str), Some("0"), "{counter}");
    }
    for stamp in ["CreatedTimestamp", "LastModifiedTimestamp"] {
        let value = ctx.epoch_seconds(&all[stamp]);
        assert!(
            (before - 5..=now_epoch_seconds() + 5).contains(&value),
            "{stamp} = {value} is epoch seconds of now"
        );
    }
    // Documented defaults, and the one attribute set at creation.
    assert_eq!(all["VisibilityTimeout"], "7");
    assert_eq!(all["DelaySeconds"], "0");
    assert_eq!(all["ReceiveMessageWaitTimeSeconds"], "0");
    assert_eq!(all["MessageRetentionPeriod"], "345600");
    let max_size: u32 = all["MaximumMessageSize"].parse().unwrap();
    assert!((1024..=1_048_576).contains(&max_size), "MaximumMessageSize");
    assert!(
        !all.contains_key("FifoQueue"),
        "FifoQueue only on FIFO queues"
    );

    let some = ctx
        .attributes(
            &url,
            &[
                QueueAttributeName::QueueArn,
                QueueAttributeName::VisibilityTimeout,
            ],
        )
        .await;
    let mut keys: Vec<&str> = some.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["QueueArn", "VisibilityTimeout"],
        "only the names asked"
    );
}

async fn approximate_counts_follow_the_queue(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("counts", &[]).await;
    ctx.send(&url, "a").await;
    ctx.send(&url, "b").await;
    ctx.client
        .send_message()
        .queue_url(&url)
        .message_body("later")
        .delay_seconds(60)
        .send()
        .await
        .unwrap();
    ctx.expect_counts(&url, 2, 0, 1).await;
    let got = ctx
        .receive_n(&url, 1, Some(30), Duration::from_secs(3))
        .await;
    assert_eq!(got.len(), 1);
    ctx.expect_counts(&url, 1, 1, 1).await;
}

async fn set_queue_attributes_round_trip(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("settable", &[]).await;
    let settings = [
        (QueueAttributeName::VisibilityTimeout, "7"),
        (QueueAttributeName::DelaySeconds, "1"),
        (QueueAttributeName::MessageRetentionPeriod, "120"),
        (QueueAttributeName::ReceiveMessageWaitTimeSeconds, "2"),
        (QueueAttributeName::MaximumMessageSize, "2048"),
    ];
    let mut request = ctx.client.set_queue_attributes().queue_url(&url);
    for (key, value) in &settings {
        request = request.attributes(key.clone(), *value);
    }
    request.send().await.unwrap();

    let all = ctx.attributes(&url, &[QueueAttributeName::All]).await;
    for (key, value) in &settings {
        assert_eq!(
            all.get(key.as_str()).map(String::as_str),
            Some(*value),
            "{key}"
        );
    }
    let created = ctx.epoch_seconds(&all["CreatedTimestamp"]);
    let modified = ctx.epoch_seconds(&all["LastModifiedTimestamp"]);
    assert!(
        modified >= created,
        "LastModifiedTimestamp >= CreatedTimestamp"
    );
}

/// VisibilityTimeout is 0..43,200 seconds; outside it SetQueueAttributes fails
/// with InvalidAttributeValue.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html>
async fn set_queue_attributes_rejects_out_of_range_value(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("range", &[]).await;
    let result = ctx
        .client
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::VisibilityTimeout, "43201")
        .send()
        .await;
    if ctx.target == Moto {
        // moto differs: it stores any VisibilityTimeout without a range check;
        // AWS doc: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html
        return;
    }
    let err = result.expect_err("VisibilityTimeout 43201 is out of range");
    assert!(
        err.into_service_error().is_invalid_attribute_value(),
        "InvalidAttributeValue"
    );
    assert_eq!(
        ctx.attribute(&url, QueueAttributeName::VisibilityTimeout)
            .await
            .as_deref(),
        Some("30"),
        "a rejected change leaves the queue as it was"
    );
}

/// After DeleteQueue the queue goes away ("the deletion process takes up to
/// 60 seconds"), so this polls briefly rather than asserting at once.
async fn delete_queue_removes_it(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("doomed", &[]).await;
    ctx.client
        .delete_queue()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let result = ctx.client.get_queue_url().queue_name("doomed").send().await;
        match result {
            Err(err) => {
                assert!(err.into_service_error().is_queue_does_not_exist());
                break;
            }
            Ok(_) => assert!(Instant::now() < deadline, "queue still there after 5 s"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = ctx.client.list_queues().send().await.unwrap();
    assert!(!listed.queue_urls().contains(&url), "deleted queue listed");
}

async fn operations_on_a_missing_queue_fail_typed(target: Target) {
    let ctx = Ctx::start(target).await;
    // A URL of the right shape for this endpoint, naming no queue.
    let url = ctx
        .queue("exists", &[])
        .await
        .replace("/exists", "/missing");
    let err = ctx
        .client
        .send_message()
        .queue_url(&url)
        .message_body("x")
        .send()
        .await
        .expect_err("send to missing queue");
    assert!(err.into_service_error().is_queue_does_not_exist());
    let err = ctx
        .client
        .receive_message()
        .queue_url(&url)
        .send()
        .await
        .expect_err("receive from missing queue");
    assert!(err.into_service_error().is_queue_does_not_exist());
    let err = ctx
        .client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect_err("attributes of missing queue");
    assert!(err.into_service_error().is_queue_does_not_exist());
}

/// PurgeQueue deletes the messages; "Only one PurgeQueue operation on a queue
/// is allowed every 60 seconds", a second one fails with PurgeQueueInProgress.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_PurgeQueue.html>
async fn purge_queue_empties_and_limits_rate(target: Target) {
    let ctx = Ctx::start(target).await;
    let url = ctx.queue("purge", &[]).await;
    for body in ["1", "2", "3"] {
        ctx.send(&url, body).await;
    }
    ctx.client
        .purge_queue()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    ctx.expect_counts(&url, 0, 0, 0).await;
    assert!(ctx.receive(&url, 10, 1, None).await.is_empty());

    let second = ctx.client.purge_queue().queue_url(&url).send().await;
    let err = second.expect_err("second purge within 60 s");
    assert!(err.into_service_error().is_purge_queue_in_progress());
}

/// New queues have SSE-SQS on by default and report SqsManagedSseEnabled.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-server-side-encryption.html>
async fn sqs_managed_sse_is_reported(target: Target) {
    let ctx = Ctx::start(target).await;
    let default = ctx.queue("sse-default", &[]).await;
    let reported = ctx
        .attribute(&default, QueueAttributeName::SqsManagedSseEnabled)
        .await;
    assert_eq!(reported.as_deref(), Some("true"), "SSE-SQS on by default");

    let off = ctx
        .queue(
            "sse-off",
            &[(QueueAttributeName::SqsManagedSseEnabled, "false")],
        )
        .await;
    let reported = ctx
        .attribute(&off, QueueAttributeName::SqsManagedSseEnabled)
        .await;
    assert_eq!(reported.as_deref(), Some("false"));
}
