//! Fault injection, through the HTTP server and the real aws-sdk-sqs client:
//! each fault's effect, the SDK's view of the injected errors, and seeding.

use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::error::ProvideErrorMetadata;
use sqs_barrier_local::{ChaosSpec, Options, Server};

async fn server(spec: &str, seed: u64) -> Server {
    let spec: ChaosSpec = spec.parse().expect("valid spec");
    Server::bind_with(
        "127.0.0.1:0".parse().unwrap(),
        Options::default().with_chaos(spec, Some(seed)),
    )
    .await
    .unwrap()
}

/// A client that retries like the SDK's default (standard mode, 3 attempts),
/// with short back-offs.
fn retrying_client(url: &str) -> Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .credentials_provider(Credentials::new("t", "t", None, None, "test"))
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1)),
        )
        .build();
    Client::from_conf(config)
}

async fn queue(client: &Client, name: &str) -> String {
    client
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

async fn receive_bodies(client: &Client, url: &str, wait: i32) -> Vec<String> {
    client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait)
        .send()
        .await
        .unwrap()
        .messages()
        .iter()
        .map(|m| m.body().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_a_retryable_400_and_applies_nothing() {
    let s = server("send.throttle=1", 1).await;
    let client = sqs_barrier_testkit::sdk_client(&s.endpoint_url());
    let url = queue(&client, "q").await;
    let mut codes = Vec::new();
    for _ in 0..8 {
        let err = client
            .send_message()
            .queue_url(&url)
            .message_body("m")
            .send()
            .await
            .unwrap_err();
        let service = err.as_service_error().expect("a service error");
        codes.push(service.code().unwrap_or_default().to_owned());
        assert_eq!(err.raw_response().unwrap().status().as_u16(), 400);
    }
    assert!(
        codes
            .iter()
            .all(|c| c == "RequestThrottled" || c == "ThrottlingException"),
        "{codes:?}"
    );
    assert!(receive_bodies(&client, &url, 0).await.is_empty());
    // The SDK retries it: 3 attempts per call.
    let before = s.chaos_counts().unwrap().throttle;
    let _ = retrying_client(&s.endpoint_url())
        .send_message()
        .queue_url(&url)
        .message_body("m")
        .send()
        .await
        .unwrap_err();
    assert_eq!(s.chaos_counts().unwrap().throttle - before, 3);
    assert!(receive_bodies(&client, &url, 0).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_before_apply_is_a_5xx_and_applies_nothing() {
    let s = server("send.error=1", 2).await;
    let client = sqs_barrier_testkit::sdk_client(&s.endpoint_url());
    let url = queue(&client, "q").await;
    let mut statuses = std::collections::BTreeSet::new();
    for _ in 0..8 {
        let err = client
            .send_message()
            .queue_url(&url)
            .message_body("m")
            .send()
            .await
            .unwrap_err();
        statuses.insert(err.raw_response().unwrap().status().as_u16());
    }
    assert!(
        statuses.iter().all(|s| *s == 500 || *s == 503),
        "{statuses:?}"
    );
    assert!(receive_bodies(&client, &url, 0).await.is_empty());
    assert_eq!(s.chaos_counts().unwrap().error, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_after_apply_makes_sdk_retries_add_copies() {
    let s = server("send.error_after=1", 3).await;
    let plain = sqs_barrier_testkit::sdk_client(&s.endpoint_url());
    let url = queue(&plain, "q").await;
    // Without retries: an error, but the message is there.
    assert!(
        plain
            .send_message()
            .queue_url(&url)
            .message_body("once")
            .send()
            .await
            .is_err()
    );
    assert_eq!(receive_bodies(&plain, &url, 0).await, ["once"]);
    // With the SDK's retries: three attempts, three copies (AWS's hazard).
    assert!(
        retrying_client(&s.endpoint_url())
            .send_message()
            .queue_url(&url)
            .message_body("thrice")
            .send()
            .await
            .is_err()
    );
    let mut all = Vec::new();
    for _ in 0..3 {
        all.extend(receive_bodies(&plain, &url, 0).await);
    }
    assert_eq!(all, ["thrice", "thrice", "thrice"]);
    assert_eq!(s.chaos_counts().unwrap().error_after, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_responses_add_latency() {
    let s = server("any.delay_ms=150-200", 4).await;
    let client = sqs_barrier_testkit::sdk_client(&s.endpoint_url());
    let started = Instant::now();
    let _url = queue(&client, "q").await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(150), "{took:?}");
    assert_eq!(s.chaos_counts().unwrap().slow, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_messages_become_visible_after_the_delay() {
    let s = server("send.late=1:700-700", 5).await;
    let client = sqs_barrier_testkit::sdk_client(&s.endpoint_url());
    let url = queue(&client, "q").await;
    client
        .send_message()
        .queue_url(&url)
        .message_body("late")
        .send()
        .await
        .unwrap();
    assert!(receive_bodies(&client, &url, 0).await.is_empty());
    let started = Instant::now();
    assert_eq!(receive_bodies(&client, &url, 5).await, ["late"]);
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(s.chaos_counts().unwrap().late, 1);
    // FIFO queues are left alone.
    let fifo = client
        .create_queue()
        .queue_name("f.fifo")
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    client
        .send_message()
        .queue_url(&fifo)
        .message_body("on time")
        .message_group_id("g")
        .message_deduplication_id("d")
        .send()
        .await
        .unwrap();
    assert_eq!(receive_bodies(&client, &fifo, 0).await, ["on time"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_redeliver_in_flight_and_deleted_messages_once() {
    let s = server("receive.duplicate=1", 6).await;
    let client = sqs_barrier_testkit::sdk_client(&s.endpoint_url());
    let url = queue(&client, "q").await;
    client
        .send_message()
        .queue_url(&url)
        .message_body("m")
        .send()
        .await
        .unwrap();
    let receive = || async {
        client
            .receive_message()
            .queue_url(&url)
            .visibility_timeout(600)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap()
            .messages
            .unwrap_or_default()
    };
    let first = receive().await;
    assert_eq!(first.len(), 1);
    // Still in flight for 10 minutes, yet delivered again: the visibility
    // lapsed early.
    let second = receive().await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].message_id, first[0].message_id);
    assert_eq!(s.chaos_counts().unwrap().duplicate, 1);
    client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(second[0].receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    // Deleted, yet delivered once more ...
    let third = receive().await;
    assert_eq!(third.len(), 1);
    assert_eq!(third[0].message_id, first[0].message_id);
    assert_eq!(s.chaos_counts().unwrap().resurrected, 1);
    client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(third[0].receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    // ... and once only.
    assert!(receive().await.is_empty());
    assert!(receive().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorder_returns_newer_messages_first() {
    let s = server("receive.reorder=1", 7).await;
    let client = sqs_barrier_testkit::sdk_client(&s.endpoint_url());
    let url = queue(&client, "q").await;
    for i in 0..20 {
        client
            .send_message()
            .queue_url(&url)
            .message_body(format!("{i:02}"))
            .send()
            .await
            .unwrap();
    }
    let mut order = Vec::new();
    for _ in 0..20 {
        let out = client
            .receive_message()
            .queue_url(&url)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap();
        order.extend(out.messages().iter().map(|m| m.body().unwrap().to_owned()));
    }
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted.len(), 20, "every message delivered once: {order:?}");
    sorted.dedup();
    assert_eq!(sorted.len(), 20);
    assert_ne!(order, sorted, "not oldest first");
    assert!(s.chaos_counts().unwrap().reorder >= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_answers_come_early_although_messages_exist() {
    let s = server("receive.empty=1:100-100", 8).await;
    let client = sqs_barrier_testkit::sdk_client(&s.endpoint_url());
    let url = queue(&client, "q").await;
    client
        .send_message()
        .queue_url(&url)
        .message_body("here")
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    assert!(receive_bodies(&client, &url, 5).await.is_empty());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(100) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(s.chaos_counts().unwrap().empty, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_decisions_are_seeded() {
    async fn pattern(seed: u64) -> Vec<bool> {
        let s = server("send.error=0.5", seed).await;
        let client = sqs_barrier_testkit::sdk_client(&s.endpoint_url());
        let url = queue(&client, "q").await;
        let mut out = Vec::new();
        for _ in 0..40 {
            out.push(
                client
                    .send_message()
                    .queue_url(&url)
                    .message_body("m")
                    .send()
                    .await
                    .is_ok(),
            );
        }
        assert_eq!(s.chaos_seed(), Some(seed));
        out
    }
    let a = pattern(42).await;
    assert_eq!(a, pattern(42).await);
    assert_ne!(a, pattern(43).await);
    let ok = a.iter().filter(|x| **x).count();
    assert!((8..=32).contains(&ok), "{ok} of 40 at p = 0.5");
}

/// A client signing with access key id `key`, without retries.
fn keyed_client(url: &str, key: &str) -> Client {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .credentials_provider(Credentials::new(key, "secret", None, None, "test"))
        .region(Region::new("us-east-1"))
        .endpoint_url(url)
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            aws_sdk_sqs::config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_secs(10))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

/// The HTTP status of an injected error, or `None` if the call worked.
async fn send_status(client: &Client, url: &str) -> Option<u16> {
    match client
        .send_message()
        .queue_url(url)
        .message_body("m")
        .send()
        .await
    {
        Ok(_) => None,
        Err(err) => Some(
            err.raw_response()
                .expect("an HTTP answer")
                .status()
                .as_u16(),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_cut_one_client_off_one_kind_of_queue_for_a_while() {
    // The server's clock starts between these two.
    let started = Instant::now();
    let s = server("any[queue=-x;key=bad;from=0;to=2].error=1", 5).await;
    let bound = Instant::now();
    let good = keyed_client(&s.endpoint_url(), "good");
    let bad = keyed_client(&s.endpoint_url(), "bad");
    let x = queue(&good, "q-x").await;
    let y = queue(&good, "q-y").await;

    // Inside the window: `bad` gets 5xx for every operation on q-x...
    for _ in 0..5 {
        let status = send_status(&bad, &x).await;
        assert!(matches!(status, Some(500 | 503)), "{status:?}");
    }
    let receive = bad.receive_message().queue_url(&x).send().await;
    assert!(receive.is_err(), "{receive:?}");
    let attributes = bad.get_queue_attributes().queue_url(&x).send().await;
    assert!(attributes.is_err(), "{attributes:?}");
    let create = bad.create_queue().queue_name("q-x").send().await; // by QueueName
    assert!(create.is_err(), "{create:?}");
    // ... but not on q-y, nor for requests naming no queue.
    for _ in 0..5 {
        assert_eq!(send_status(&bad, &y).await, None);
    }
    assert_eq!(receive_bodies(&bad, &y, 0).await.len(), 5);
    bad.list_queues()
        .send()
        .await
        .expect("ListQueues names no queue");
    // Another key works on q-x.
    for _ in 0..5 {
        assert_eq!(send_status(&good, &x).await, None);
    }
    assert_eq!(receive_bodies(&good, &x, 0).await.len(), 5);
    let in_window = started.elapsed();
    assert!(
        in_window < Duration::from_secs(2),
        "the checks took {in_window:?}, longer than the window"
    );
    let errors = s.chaos_counts().unwrap().error;
    assert_eq!(errors, 5 + 3);
    assert_eq!(s.chaos_counts().unwrap().total(), errors);

    // After the window `bad` works on q-x again.
    tokio::time::sleep_until((bound + Duration::from_millis(2050)).into()).await;
    for _ in 0..3 {
        assert_eq!(send_status(&bad, &x).await, None);
    }
    assert_eq!(receive_bodies(&bad, &x, 0).await.len(), 3);
    assert_eq!(s.chaos_counts().unwrap().error, errors);
}

async fn fifo_queue_with_token(client: &Client, name: &str) -> String {
    let url = client
        .create_queue()
        .queue_name(name)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::ContentBasedDeduplication,
            "true",
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    client
        .send_message()
        .queue_url(&url)
        .message_body("token")
        .message_group_id("lease")
        .send()
        .await
        .unwrap();
    url
}

/// The receive's own answer: (receipt handle, ApproximateReceiveCount) of
/// each message.
fn received(
    out: &aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput,
) -> Vec<(String, String)> {
    out.messages()
        .iter()
        .map(|m| {
            let count = m
                .attributes()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                })
                .cloned()
                .unwrap_or_default();
            (m.receipt_handle().unwrap_or_default().to_owned(), count)
        })
        .collect()
}

async fn receive_with_attempt(
    client: &Client,
    url: &str,
    attempt_id: &str,
) -> Result<
    aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput,
    aws_sdk_sqs::error::SdkError<aws_sdk_sqs::operation::receive_message::ReceiveMessageError>,
> {
    client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(30)
        .receive_request_attempt_id(attempt_id)
        .message_system_attribute_names(
            aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
        )
        .send()
        .await
}

/// `error_after` on a FIFO receive: the receive took effect (the token is in
/// flight, its group locked), then a 5xx. The retry with the same
/// `ReceiveRequestAttemptId` gets the token, with the receipt handle of that
/// receive; another id gets nothing while the group is locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_receive_whose_answer_was_lost_is_answered_again_to_its_retry() {
    let s = server("receive[key=lossy].error_after=1", 6).await;
    let lossy = keyed_client(&s.endpoint_url(), "lossy");
    let plain = keyed_client(&s.endpoint_url(), "plain");
    let url = fifo_queue_with_token(&plain, "lease.fifo").await;

    let lost = receive_with_attempt(&lossy, &url, "take-1").await;
    let status = lost
        .expect_err("error_after")
        .raw_response()
        .map(|r| r.status().as_u16());
    assert!(matches!(status, Some(500 | 503)), "{status:?}");
    assert_eq!(s.chaos_counts().unwrap().error_after, 1);

    // The retry (here from a client whose answers are not lost).
    let retry = received(&receive_with_attempt(&plain, &url, "take-1").await.unwrap());
    assert_eq!(retry.len(), 1, "the token, received by the lost call");
    assert_eq!(retry[0].1, "1", "the same receive, not a second one");
    // Another attempt finds the group locked by the token.
    let other = receive_with_attempt(&plain, &url, "take-2").await.unwrap();
    assert!(other.messages().is_empty(), "{other:?}");
    // And the retry is answered the same again.
    let again = received(&receive_with_attempt(&plain, &url, "take-1").await.unwrap());
    assert_eq!(again, retry);
    plain
        .delete_message()
        .queue_url(&url)
        .receipt_handle(&retry[0].0)
        .send()
        .await
        .expect("the retried handle deletes the token");
    assert!(receive_bodies(&plain, &url, 0).await.is_empty());
}

/// The SDK's own retries after `error_after`: every call that ends well gets
/// the token from the receive that took it (its receive count goes up by one
/// per call), although earlier attempts of the call lost their answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_retries_of_a_lost_fifo_receive_get_the_token() {
    let s = server("receive.error_after=0.5", 7).await;
    let plain = sqs_barrier_testkit::sdk_client(&s.endpoint_url());
    let retrying = retrying_client(&s.endpoint_url());
    let url = fifo_queue_with_token(&plain, "lease.fifo").await;
    let mut lost_then_retried = 0;
    for call in 1..=16 {
        let attempt_id = format!("take-{call}");
        let before = s.chaos_counts().unwrap().error_after;
        // Three attempts may all lose their answer: call again with the same id.
        let out = loop {
            if let Ok(out) = receive_with_attempt(&retrying, &url, &attempt_id).await {
                break out;
            }
        };
        if s.chaos_counts().unwrap().error_after > before {
            lost_then_retried += 1;
        }
        let got = received(&out);
        assert_eq!(got.len(), 1, "call {call}: the token, not an empty answer");
        assert_eq!(
            got[0].1,
            call.to_string(),
            "call {call}: one receive per call"
        );
        // Give the lease back.
        plain
            .change_message_visibility()
            .queue_url(&url)
            .receipt_handle(&got[0].0)
            .visibility_timeout(0)
            .send()
            .await
            .expect("the retried handle is the current one");
    }
    assert!(
        lost_then_retried >= 4,
        "{lost_then_retried} of 16 calls lost an answer"
    );
}
