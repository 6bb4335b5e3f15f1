//! SQS conformance suite: one set of test bodies, run through the real
//! `aws-sdk-sqs` client against the embedded endpoint and against moto.
//!
//! The expected behaviour is what the AWS documentation states, not what
//! either implementation happens to do. Where moto departs from AWS, the test
//! says so at that spot (`if ctx.target == Moto { /* moto differs: ... */ }`)
//! with the AWS page that documents the real behaviour; the embedded endpoint
//! gets no such exceptions.
//!
//! Every test gets its own server (moto takes about half a second to start),
//! so tests are isolated even when they list or purge queues. Timeouts are
//! kept small (visibility 1-2 s, waits of 1-2 s) to keep the run short.
//!
//! Run one target with `cargo test -p sqs-barrier-local --test conformance moto::`
//! (or `embedded::`). moto comes from `scripts/test`, which sets
//! `SQS_BARRIER_MOTO_SERVER`.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};
use md5::{Digest, Md5};
use sqs_barrier_testkit::Target::{self, Moto};
use sqs_barrier_testkit::TestEndpoint;

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// Generates `mod embedded` and `mod moto`, each with one `#[tokio::test]` per
/// listed test body, so `cargo test embedded::` / `moto::` selects a target.
macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Ctx::start(super::Target::Embedded).await).await;
                }
            )*
        }
        mod moto {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Ctx::start(super::Target::Moto).await).await;
                }
            )*
        }
    };
}

conformance_tests!(
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
    send_message_batch_succeeds_and_enforces_limits,
    receive_hides_message_for_visibility_timeout,
    receive_with_visibility_timeout_zero_leaves_message_visible,
    long_poll_wakes_up_on_send,
    long_poll_returns_empty_after_wait,
    queue_receive_wait_time_is_default_long_poll,
    delete_message_and_invalid_receipt_handle,
    delete_message_batch_reports_per_entry,
    change_message_visibility_single_and_batch,
    delay_seconds_per_message_and_per_queue,
    message_attributes_round_trip_with_md5,
    redrive_moves_to_dead_letter_queue,
    tags_set_list_and_remove,
    fifo_name_and_attribute_must_pair,
    fifo_requires_group_and_dedup_id,
    fifo_orders_within_group_and_blocks_group_in_flight,
    fifo_dedup_id_drops_repeats_even_after_delete,
    fifo_content_based_deduplication,
    fifo_sequence_numbers,
    sqs_managed_sse_is_reported,
    queue_names_are_checked,
    deleted_queue_name_is_blocked_for_60_seconds,
    queue_attribute_ranges_are_enforced,
    request_parameter_ranges_are_enforced,
    batch_entry_ids_are_checked,
    batch_total_size_is_at_most_1_mib,
    message_size_is_at_most_1_mib_or_the_queue_maximum,
    message_attributes_are_at_most_10_with_valid_names,
    tags_are_at_most_50_with_checked_keys_and_values,
    tagging_actions_are_throttled_over_5_per_second,
);

/// One test's endpoint and a client for it.
struct Ctx {
    target: Target,
    client: Client,
    // Keeps the server alive for the test's duration.
    _endpoint: TestEndpoint,
}

impl Ctx {
    async fn start(target: Target) -> Ctx {
        let endpoint = sqs_barrier_testkit::start(target).await;
        Ctx {
            target,
            client: endpoint.client(),
            _endpoint: endpoint,
        }
    }

    /// Creates a queue with the given attributes and returns its URL.
    async fn queue(&self, name: &str, attributes: &[(QueueAttributeName, &str)]) -> String {
        let mut request = self.client.create_queue().queue_name(name);
        for (key, value) in attributes {
            request = request.attributes(key.clone(), *value);
        }
        let out = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("[{}] CreateQueue {name}: {e:?}", self.target));
        out.queue_url()
            .expect("CreateQueue returns QueueUrl")
            .to_owned()
    }

    /// Creates a FIFO queue (`name` must end in `.fifo`).
    async fn fifo_queue(&self, name: &str, content_dedup: bool) -> String {
        let dedup = if content_dedup { "true" } else { "false" };
        self.queue(
            name,
            &[
                (QueueAttributeName::FifoQueue, "true"),
                (QueueAttributeName::ContentBasedDeduplication, dedup),
            ],
        )
        .await
    }

    async fn send(&self, url: &str, body: &str) -> String {
        let out = self
            .client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("[{}] SendMessage: {e:?}", self.target));
        out.message_id().expect("MessageId").to_owned()
    }

    async fn send_fifo(&self, url: &str, body: &str, group: &str, dedup: Option<&str>) {
        self.client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .message_group_id(group)
            .set_message_deduplication_id(dedup.map(str::to_owned))
            .send()
            .await
            .unwrap_or_else(|e| panic!("[{}] SendMessage (FIFO): {e:?}", self.target));
    }

    /// ReceiveMessage asking for every system and message attribute.
    async fn receive(
        &self,
        url: &str,
        max: i32,
        wait_seconds: i32,
        visibility: Option<i32>,
    ) -> Vec<Message> {
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait_seconds)
            .set_visibility_timeout(visibility)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap_or_else(|e| panic!("[{}] ReceiveMessage: {e:?}", self.target));
        out.messages.unwrap_or_default()
    }

    /// Receives until `count` messages arrived or `within` passed. AWS short
    /// polls sample a subset of servers, so one empty answer proves nothing.
    async fn receive_n(
        &self,
        url: &str,
        count: usize,
        visibility: Option<i32>,
        within: Duration,
    ) -> Vec<Message> {
        let deadline = Instant::now() + within;
        let mut got = Vec::new();
        while got.len() < count && Instant::now() < deadline {
            let max = (count - got.len()).min(10) as i32;
            got.extend(self.receive(url, max, 1, visibility).await);
        }
        got
    }

    async fn attributes(&self, url: &str, names: &[QueueAttributeName]) -> HashMap<String, String> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("[{}] GetQueueAttributes: {e:?}", self.target));
        out.attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.as_str().to_owned(), v))
            .collect()
    }

    async fn attribute(&self, url: &str, name: QueueAttributeName) -> Option<String> {
        let key = name.as_str().to_owned();
        self.attributes(url, &[name]).await.remove(&key)
    }

    /// Parses a queue timestamp attribute: whole seconds since the epoch.
    /// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html>
    fn epoch_seconds(&self, value: &str) -> i64 {
        if self.target == Moto {
            // moto differs: it reports fractional seconds ("1795472158.345435");
            // AWS doc: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_GetQueueAttributes.html
            return value.parse::<f64>().expect("epoch seconds") as i64;
        }
        value
            .parse()
            .unwrap_or_else(|_| panic!("[{}] {value:?} is not whole epoch seconds", self.target))
    }

    async fn arn(&self, url: &str) -> String {
        self.attribute(url, QueueAttributeName::QueueArn)
            .await
            .expect("QueueArn")
    }

    /// Polls the three approximate counters until they match. They are
    /// eventually consistent on AWS, so a test waits instead of sampling once.
    async fn expect_counts(&self, url: &str, visible: u32, in_flight: u32, delayed: u32) {
        let want = [visible, in_flight, delayed];
        let names = [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ];
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let attrs = self.attributes(url, &names).await;
            let got = names.clone().map(|n| {
                attrs
                    .get(n.as_str())
                    .and_then(|v| v.parse::<u32>().ok())
                    .unwrap_or(u32::MAX)
            });
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "[{}] counts (visible, in flight, delayed) = {got:?}, want {want:?}",
                self.target
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn sys_attr(message: &Message, name: MessageSystemAttributeName) -> Option<&str> {
    message
        .attributes()
        .and_then(|a| a.get(&name))
        .map(String::as_str)
}

fn receive_count(message: &Message) -> u32 {
    sys_attr(message, MessageSystemAttributeName::ApproximateReceiveCount)
        .expect("ApproximateReceiveCount")
        .parse()
        .expect("ApproximateReceiveCount is a number")
}

fn bodies(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.body().unwrap_or("")).collect()
}

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

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

fn now_epoch_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn batch_entry(id: &str, body: &str) -> SendMessageBatchRequestEntry {
    SendMessageBatchRequestEntry::builder()
        .id(id)
        .message_body(body)
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// Queues
// ---------------------------------------------------------------------------

/// "If you specify the name of an existing queue and provide the exact same
/// names and values for all its attributes, CreateQueue returns the URL of the
/// existing queue"; different values are an error (QueueNameExists).
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html>
async fn create_queue_is_idempotent_only_with_equal_attributes(ctx: Ctx) {
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

async fn get_queue_url_of_existing_and_missing_queue(ctx: Ctx) {
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
async fn list_queues_by_prefix_and_pages(ctx: Ctx) {
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

async fn get_queue_attributes_all_and_by_name(ctx: Ctx) {
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

async fn approximate_counts_follow_the_queue(ctx: Ctx) {
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

async fn set_queue_attributes_round_trip(ctx: Ctx) {
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
async fn set_queue_attributes_rejects_out_of_range_value(ctx: Ctx) {
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
async fn delete_queue_removes_it(ctx: Ctx) {
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

async fn operations_on_a_missing_queue_fail_typed(ctx: Ctx) {
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
async fn purge_queue_empties_and_limits_rate(ctx: Ctx) {
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

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/// Batches hold 1..10 entries with distinct ids.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html>
async fn send_message_batch_succeeds_and_enforces_limits(ctx: Ctx) {
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

/// A received message is hidden for the visibility timeout, then delivered
/// again with a new receipt handle and ApproximateReceiveCount 2.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html>
async fn receive_hides_message_for_visibility_timeout(ctx: Ctx) {
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

async fn receive_with_visibility_timeout_zero_leaves_message_visible(ctx: Ctx) {
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
async fn long_poll_wakes_up_on_send(ctx: Ctx) {
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

async fn long_poll_returns_empty_after_wait(ctx: Ctx) {
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
async fn queue_receive_wait_time_is_default_long_poll(ctx: Ctx) {
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

async fn delete_message_and_invalid_receipt_handle(ctx: Ctx) {
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
async fn delete_message_batch_reports_per_entry(ctx: Ctx) {
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

/// ChangeMessageVisibility restarts the timeout from now: 0 makes the
/// message visible at once, a longer value keeps it hidden.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ChangeMessageVisibility.html>
async fn change_message_visibility_single_and_batch(ctx: Ctx) {
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

/// DelaySeconds (per message, or the queue's default) keeps a new message
/// invisible, counted as delayed, until the delay has passed.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-delay-queues.html>
async fn delay_seconds_per_message_and_per_queue(ctx: Ctx) {
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

async fn message_attributes_round_trip_with_md5(ctx: Ctx) {
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

/// With a redrive policy, a message received maxReceiveCount times and not
/// deleted moves to the dead-letter queue, keeping its message id.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-dead-letter-queues.html>
async fn redrive_moves_to_dead_letter_queue(ctx: Ctx) {
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

/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-queue-tags.html>
async fn tags_set_list_and_remove(ctx: Ctx) {
    let out = ctx
        .client
        .create_queue()
        .queue_name("tagged")
        .tags("team", "infra")
        .tags("env", "test")
        .send()
        .await
        .unwrap();
    let url = out.queue_url().unwrap().to_owned();
    let tags = |map: Option<&HashMap<String, String>>| {
        let mut pairs: Vec<(String, String)> =
            map.cloned().unwrap_or_default().into_iter().collect();
        pairs.sort();
        pairs
    };
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());

    let listed = ctx
        .client
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags(listed.tags()),
        [pair("env", "test"), pair("team", "infra")]
    );

    ctx.client
        .tag_queue()
        .queue_url(&url)
        .tags("env", "prod")
        .tags("owner", "me")
        .send()
        .await
        .unwrap();
    ctx.client
        .untag_queue()
        .queue_url(&url)
        .tag_keys("team")
        .send()
        .await
        .unwrap();
    let listed = ctx
        .client
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags(listed.tags()),
        [pair("env", "prod"), pair("owner", "me")]
    );
}

// ---------------------------------------------------------------------------
// FIFO queues
// ---------------------------------------------------------------------------

/// A FIFO queue's name ends in `.fifo` and it is created with FifoQueue=true;
/// either half alone is rejected (a standard queue name may not contain '.').
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html>
async fn fifo_name_and_attribute_must_pair(ctx: Ctx) {
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
async fn fifo_requires_group_and_dedup_id(ctx: Ctx) {
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
async fn fifo_orders_within_group_and_blocks_group_in_flight(ctx: Ctx) {
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
async fn fifo_dedup_id_drops_repeats_even_after_delete(ctx: Ctx) {
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
async fn fifo_content_based_deduplication(ctx: Ctx) {
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
async fn fifo_sequence_numbers(ctx: Ctx) {
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

/// New queues have SSE-SQS on by default and report SqsManagedSseEnabled.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-server-side-encryption.html>
async fn sqs_managed_sse_is_reported(ctx: Ctx) {
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

// ---------------------------------------------------------------------------
// Quotas
// ---------------------------------------------------------------------------

/// The error code an SDK call failed with (the query-protocol code SQS sends
/// in `x-amzn-query-error`), or a panic if it succeeded.
fn error_code<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug>(
    result: Result<T, E>,
    what: &str,
) -> String {
    let err = result.expect_err(what);
    err.code()
        .unwrap_or_else(|| panic!("{what}: no error code in {err:?}"))
        .to_owned()
}

/// What an SDK call came to: `Ok(())` or the error code it failed with.
fn code_of<T, E: ProvideErrorMetadata>(result: Result<T, E>) -> Result<(), String> {
    result
        .map(|_| ())
        .map_err(|e| e.code().unwrap_or("<no code>").to_owned())
}

/// "A queue name can have up to 80 characters. Valid values: alphanumeric
/// characters, hyphens (-), and underscores (_). A FIFO queue name must end
/// with the .fifo suffix", which counts towards the 80.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html>
async fn queue_names_are_checked(ctx: Ctx) {
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
async fn deleted_queue_name_is_blocked_for_60_seconds(ctx: Ctx) {
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
async fn queue_attribute_ranges_are_enforced(ctx: Ctx) {
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
async fn request_parameter_ranges_are_enforced(ctx: Ctx) {
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
async fn batch_entry_ids_are_checked(ctx: Ctx) {
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
async fn batch_total_size_is_at_most_1_mib(ctx: Ctx) {
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
async fn message_size_is_at_most_1_mib_or_the_queue_maximum(ctx: Ctx) {
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
async fn message_attributes_are_at_most_10_with_valid_names(ctx: Ctx) {
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

/// Queue tags: keys 1..128 and values up to 256 characters; SQS refuses more
/// than 50 tags per queue (the docs call more "not recommended").
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html>
async fn tags_are_at_most_50_with_checked_keys_and_values(ctx: Ctx) {
    let url = ctx.queue("many-tags", &[]).await;
    let tag = |request: aws_sdk_sqs::operation::tag_queue::builders::TagQueueFluentBuilder,
               range: std::ops::Range<usize>| {
        range.fold(request, |r, i| r.tags(format!("k{i}"), "v"))
    };
    tag(ctx.client.tag_queue().queue_url(&url), 0..50)
        .send()
        .await
        .unwrap();
    let more = tag(ctx.client.tag_queue().queue_url(&url), 50..51)
        .send()
        .await;
    if ctx.target == Moto {
        // moto differs: it counts only the tags of one request, not the
        // queue's; AWS doc:
        // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html
        assert!(more.is_ok(), "{more:?}");
    } else {
        assert_eq!(error_code(more, "the 51st tag"), "InvalidParameterValue");
    }
    let other = ctx.queue("many-tags-at-once", &[]).await;
    let at_once = tag(ctx.client.tag_queue().queue_url(&other), 0..51)
        .send()
        .await;
    assert_eq!(
        error_code(at_once, "51 tags at once"),
        "InvalidParameterValue"
    );
    // Overwriting one of the 50 is fine.
    ctx.client
        .tag_queue()
        .queue_url(&url)
        .tags("k0", "w")
        .send()
        .await
        .unwrap();

    // Four tagging actions so far, three to come: stay within SQS's 5 per
    // second (see tagging_actions_are_throttled_over_5_per_second).
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let fresh = ctx.queue("checked-tags", &[]).await;
    let longest = ctx
        .client
        .tag_queue()
        .queue_url(&fresh)
        .tags("k".repeat(128), "v".repeat(256))
        .send()
        .await;
    assert!(longest.is_ok(), "[{}] {longest:?}", ctx.target);
    for (key, value) in [
        ("k".repeat(129), "v".to_owned()),
        ("k".to_owned(), "v".repeat(257)),
    ] {
        let result = ctx
            .client
            .tag_queue()
            .queue_url(&fresh)
            .tags(&key, &value)
            .send()
            .await;
        if ctx.target == Moto {
            // moto differs: it does not check tag lengths; AWS doc:
            // https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html
            assert!(result.is_ok(), "{result:?}");
            continue;
        }
        assert_eq!(
            error_code(result, "tag too long"),
            "InvalidParameterValue",
            "[{}] {} / {}",
            ctx.target,
            key.len(),
            value.len()
        );
    }
}

/// Requests to run at once, each reduced to its outcome (see [`code_of`]).
type Requests = Vec<std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>>;

/// Runs `requests` at once (each as a task of its own) and returns their
/// outcomes in order: `Ok(())` or the error code.
async fn at_once(requests: Requests) -> Vec<Result<(), String>> {
    let tasks: Vec<_> = requests.into_iter().map(tokio::spawn).collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("request task"));
    }
    outcomes
}

/// SQS limits the tagging actions (TagQueue, UntagQueue and ListQueueTags,
/// together) per AWS account; a request over the quota fails with
/// `RequestThrottled` (HTTP 400). The embedded endpoint allows 5 per second
/// with a burst of 5 and answers "Rate exceeded", and so does the test kit's
/// proxy in front of moto (moto itself has no such quota). CreateQueue with
/// tags and the other operations are not counted.
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html>
/// <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ListQueueTags.html>
async fn tagging_actions_are_throttled_over_5_per_second(ctx: Ctx) {
    let out = ctx
        .client
        .create_queue()
        .queue_name("throttled")
        .tags("team", "infra")
        .send()
        .await
        .unwrap();
    let url = out.queue_url().unwrap().to_owned();
    let list = |client: &Client| {
        let request = client.list_queue_tags().queue_url(&url);
        async move { request.send().await }
    };

    // Six ListQueueTags in a burst: five pass, the sixth is throttled.
    let start = Instant::now();
    let tasks: Vec<_> = (0..6).map(|_| tokio::spawn(list(&ctx.client))).collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    let took = start.elapsed();
    let (passed, throttled): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
    assert_eq!(
        (passed.len(), throttled.len()),
        (5, 1),
        "[{}] a burst of 6 within {took:?}",
        ctx.target
    );
    let error = throttled.into_iter().next().unwrap().unwrap_err();
    assert_eq!(error.code(), Some("RequestThrottled"), "{error:?}");
    assert_eq!(error.message(), Some("Rate exceeded"), "{error:?}");
    assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(400));
    assert!(
        error
            .as_service_error()
            .is_some_and(|e| e.is_request_throttled()),
        "the SDK's typed RequestThrottled: {error:?}"
    );

    // A second later the quota has refilled.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let listed = list(&ctx.client).await.unwrap();
    assert_eq!(
        listed
            .tags()
            .and_then(|t| t.get("team"))
            .map(String::as_str),
        Some("infra")
    );

    // All three actions count together; nothing else counts.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let c = &ctx.client;
    let tagging: Requests = vec![
        Box::pin(code_of_later(
            c.tag_queue().queue_url(&url).tags("a", "1").send(),
        )),
        Box::pin(code_of_later(
            c.tag_queue().queue_url(&url).tags("b", "2").send(),
        )),
        Box::pin(code_of_later(
            c.untag_queue().queue_url(&url).tag_keys("x").send(),
        )),
        Box::pin(code_of_later(
            c.untag_queue().queue_url(&url).tag_keys("y").send(),
        )),
        Box::pin(code_of_later(c.list_queue_tags().queue_url(&url).send())),
        Box::pin(code_of_later(c.list_queue_tags().queue_url(&url).send())),
    ];
    let others: Requests = vec![
        Box::pin(code_of_later(
            c.create_queue()
                .queue_name("tagged-too")
                .tags("k", "v")
                .send(),
        )),
        Box::pin(code_of_later(
            c.send_message().queue_url(&url).message_body("m").send(),
        )),
        Box::pin(code_of_later(c.list_queues().send())),
        Box::pin(code_of_later(
            c.get_queue_url().queue_name("throttled").send(),
        )),
    ];
    let start = Instant::now();
    let (tagging, others) = tokio::join!(at_once(tagging), at_once(others));
    let took = start.elapsed();
    let refused: Vec<_> = tagging.iter().filter_map(|r| r.clone().err()).collect();
    assert_eq!(
        refused,
        ["RequestThrottled"],
        "[{}] six tagging actions of three kinds within {took:?}: {tagging:?}",
        ctx.target
    );
    assert!(others.iter().all(Result::is_ok), "{others:?}");
}

/// [`code_of`] of a request still to be awaited.
async fn code_of_later<T, E: ProvideErrorMetadata>(
    request: impl Future<Output = Result<T, E>>,
) -> Result<(), String> {
    code_of(request.await)
}
