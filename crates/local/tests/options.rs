//! The embedded endpoint's own settings, through the real aws-sdk-sqs client and raw
//! TCP: a lowered in-flight quota, the tagging quota lowered or off, the latency model,
//! the header-read timeout and the connection cap. moto has none of these (it has no
//! in-flight quota at all), so these tests run against the embedded endpoint only. All
//! on loopback, every wait bounded.

use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::QueueAttributeName;
use sqs_barrier_local::{LatencySpec, Options, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn server(options: Options) -> (Server, Client) {
    let server = Server::bind_with("127.0.0.1:0".parse().unwrap(), options)
        .await
        .unwrap();
    let client = sqs_barrier_testkit::sdk_client(&server.endpoint_url());
    (server, client)
}

async fn queue(client: &Client, name: &str) -> String {
    let mut request = client.create_queue().queue_name(name);
    if name.ends_with(".fifo") {
        request = request
            .attributes(QueueAttributeName::FifoQueue, "true")
            .attributes(QueueAttributeName::ContentBasedDeduplication, "true");
    }
    request.send().await.unwrap().queue_url.unwrap()
}

async fn receive(client: &Client, url: &str, wait: i32) -> Result<Vec<String>, String> {
    client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(600)
        .wait_time_seconds(wait)
        .send()
        .await
        .map(|out| {
            out.messages()
                .iter()
                .map(|m| m.receipt_handle().unwrap().to_owned())
                .collect()
        })
        .map_err(|e| e.code().unwrap_or("<no code>").to_owned())
}

/// `with_max_in_flight(3)`: a standard queue delivers up to the quota, then answers a
/// short poll with OverLimit and a long poll with nothing (no error) until a delete
/// makes room, which wakes the waiting long poll at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowered_in_flight_quota_on_a_standard_queue() {
    let (_server, client) = server(Options::default().with_max_in_flight(3)).await;
    let url = queue(&client, "standard").await;
    for i in 0..5 {
        client
            .send_message()
            .queue_url(&url)
            .message_body(format!("m{i}"))
            .send()
            .await
            .unwrap();
    }
    let held = receive(&client, &url, 0).await.unwrap();
    assert_eq!(held.len(), 3, "only as many as the quota allows");
    assert_eq!(receive(&client, &url, 0).await, Err("OverLimit".to_owned()));
    let start = Instant::now();
    assert_eq!(receive(&client, &url, 1).await, Ok(Vec::new()));
    assert!(start.elapsed() >= Duration::from_millis(900), "waited");

    let waiting = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move {
            let start = Instant::now();
            (receive(&client, &url, 10).await, start.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(&held[0])
        .send()
        .await
        .unwrap();
    let (got, took) = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.map(|h| h.len()), Ok(1), "one place was freed");
    assert!(
        took < Duration::from_secs(5),
        "woken by the delete: {took:?}"
    );
}

/// On a FIFO queue the quota gives no error: nothing more is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowered_in_flight_quota_on_a_fifo_queue() {
    let (_server, client) = server(Options::default().with_max_in_flight(2)).await;
    let url = queue(&client, "quota.fifo").await;
    for i in 0..4 {
        client
            .send_message()
            .queue_url(&url)
            .message_body(format!("m{i}"))
            .message_group_id(format!("g{i}"))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(receive(&client, &url, 0).await.map(|h| h.len()), Ok(2));
    assert_eq!(receive(&client, &url, 0).await, Ok(Vec::new()));
    assert_eq!(receive(&client, &url, 1).await, Ok(Vec::new()));
}

/// Without options the quota is SQS's 120,000: the 120,001st message is not
/// delivered, and the short poll for it answers OverLimit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_in_flight_quota_is_120000() {
    let (_server, client) = server(Options::default()).await;
    let url = queue(&client, "deep").await;
    const TOTAL: usize = 120_000;
    // Four concurrent senders and receivers keep the run to a few seconds.
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            for batch in 0..TOTAL / 40 {
                let entries = (0..10)
                    .map(|i| {
                        aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                            .id(format!("e{i}"))
                            .message_body(format!("{worker}-{batch}-{i}"))
                            .build()
                            .unwrap()
                    })
                    .collect();
                let out = client
                    .send_message_batch()
                    .queue_url(&url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .unwrap();
                assert!(out.failed().is_empty());
            }
        }));
    }
    for task in tasks.drain(..) {
        task.await.unwrap();
    }
    client
        .send_message()
        .queue_url(&url)
        .message_body("one too many")
        .send()
        .await
        .unwrap();
    for _ in 0..4 {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..TOTAL / 40 {
                assert_eq!(receive(&client, &url, 0).await.map(|h| h.len()), Ok(10));
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(receive(&client, &url, 0).await, Err("OverLimit".to_owned()));
}

/// `with_latency(50ms)`: one request takes at least 50 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_delays_every_response() {
    let latency: LatencySpec = "50ms".parse().unwrap();
    let (_server, client) = server(Options::default().with_latency(latency)).await;
    let start = Instant::now();
    client.list_queues().send().await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(50),
        "{:?}",
        start.elapsed()
    );
    // Errors are delayed too.
    let start = Instant::now();
    let err = client
        .get_queue_url()
        .queue_name("missing")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_queue_does_not_exist());
    assert!(
        start.elapsed() >= Duration::from_millis(50),
        "{:?}",
        start.elapsed()
    );
}

/// Twenty concurrent requests with 100 ms latency each finish together in about
/// 100 ms, not one after the other (2 s): the delay blocks only its own request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_does_not_serialise_concurrent_requests() {
    let latency: LatencySpec = "100ms".parse().unwrap();
    let (_server, client) = server(Options::default().with_latency(latency)).await;
    let start = Instant::now();
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.list_queues().send().await.unwrap() })
        })
        .collect();
    for request in requests {
        request.await.unwrap();
    }
    let took = start.elapsed();
    eprintln!("20 concurrent requests with 100 ms latency took {took:?}");
    assert!(took >= Duration::from_millis(100), "{took:?}");
    assert!(took < Duration::from_millis(1000), "serialised? {took:?}");
}

/// A long poll waits its full time and its answer then comes the latency later:
/// the delay is added to the response, not taken from the wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_is_added_to_a_long_poll_answer() {
    let latency: LatencySpec = "300ms".parse().unwrap();
    let (_server, client) = server(Options::default().with_latency(latency)).await;
    let url = queue(&client, "slow").await;
    let start = Instant::now();
    assert_eq!(receive(&client, &url, 1).await, Ok(Vec::new()));
    let took = start.elapsed();
    eprintln!("a 1 s long poll with 300 ms latency took {took:?}");
    // CreateQueue's latency is not in here: 1 s of waiting + 300 ms.
    assert!(took >= Duration::from_millis(1300), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// A client that sends half a request head is disconnected once the header-read
/// timeout passes (without it, the connection stayed open for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_request_head_is_cut_off_after_the_header_read_timeout() {
    let timeout = Duration::from_millis(500);
    let (server, _client) = server(Options::default().with_header_read_timeout(timeout)).await;
    let mut raw = TcpStream::connect(server.local_addr()).await.unwrap();
    raw.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Ty")
        .await
        .unwrap();
    let start = Instant::now();
    let mut answer = Vec::new();
    // EOF (possibly after an error answer) ends the read; a hang fails the test.
    tokio::time::timeout(Duration::from_secs(10), raw.read_to_end(&mut answer))
        .await
        .expect("the endpoint closed the connection")
        .ok();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "closed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

/// Sends one ListQueues request on `stream` and reads the answer's status line.
async fn list_queues(stream: &mut TcpStream) -> std::io::Result<String> {
    stream
        .write_all(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.0\r\n\
              X-Amz-Target: AmazonSQS.ListQueues\r\nContent-Length: 2\r\n\r\n{}",
        )
        .await?;
    let mut buffer = vec![0; 4096];
    let n = stream.read(&mut buffer).await?;
    Ok(String::from_utf8_lossy(&buffer[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned())
}

/// With `with_max_connections(2)` a third connection is not served while two are
/// open, and is served as soon as one of them closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let (server, _client) = server(Options::default().with_max_connections(2)).await;
    let addr = server.local_addr();
    let mut first = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    assert_eq!(list_queues(&mut first).await.unwrap(), "HTTP/1.1 200 OK");
    assert_eq!(list_queues(&mut second).await.unwrap(), "HTTP/1.1 200 OK");

    // The kernel completes the handshake (listen backlog), but nobody reads.
    let mut third = TcpStream::connect(addr).await.unwrap();
    let pending = tokio::spawn(async move {
        let status = list_queues(&mut third).await;
        (status, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!pending.is_finished(), "a third connection was served");

    let closed_at = Instant::now();
    drop(first);
    let (status, answered_at) = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("served once a place was free")
        .unwrap();
    assert_eq!(status.unwrap(), "HTTP/1.1 200 OK");
    assert!(answered_at.duration_since(closed_at) < Duration::from_secs(5));
    // The remaining connection still works.
    assert_eq!(list_queues(&mut second).await.unwrap(), "HTTP/1.1 200 OK");
}

/// Sends `n` ListQueueTags at once; returns how many passed and the error codes of
/// the others.
async fn list_tags_at_once(client: &Client, url: &str, n: usize) -> (usize, Vec<String>) {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let request = client.list_queue_tags().queue_url(url);
            tokio::spawn(async move { request.send().await })
        })
        .collect();
    let mut passed = 0;
    let mut codes = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => passed += 1,
            Err(e) => codes.push(e.code().unwrap_or("<no code>").to_owned()),
        }
    }
    (passed, codes)
}

/// `with_tagging_tps(0)` turns the tagging quota off: 30 tagging actions at once all
/// pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_quota_off_never_throttles() {
    let (_server, client) = server(Options::default().with_tagging_tps(0)).await;
    let url = queue(&client, "untouched").await;
    assert_eq!(list_tags_at_once(&client, &url, 30).await, (30, Vec::new()));
    for i in 0..10 {
        client
            .tag_queue()
            .queue_url(&url)
            .tags(format!("k{i}"), "v")
            .send()
            .await
            .unwrap();
    }
}

/// `with_tagging_tps(2)`: a burst of 2, then one more every 500 ms; a refused
/// TagQueue has no effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowered_tagging_quota() {
    let (_server, client) = server(Options::default().with_tagging_tps(2)).await;
    let url = queue(&client, "slow-tags").await;
    let (passed, codes) = list_tags_at_once(&client, &url, 4).await;
    assert_eq!((passed, codes), (2, vec!["RequestThrottled".to_owned(); 2]));

    tokio::time::sleep(Duration::from_millis(600)).await;
    client
        .tag_queue()
        .queue_url(&url)
        .tags("kept", "1")
        .send()
        .await
        .unwrap();
    let refused = client
        .tag_queue()
        .queue_url(&url)
        .tags("dropped", "1")
        .send()
        .await
        .expect_err("the quota's one token was taken");
    assert_eq!(refused.code(), Some("RequestThrottled"));

    tokio::time::sleep(Duration::from_millis(600)).await;
    let tags = client
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap_or_default();
    assert_eq!(tags.keys().collect::<Vec<_>>(), ["kept"]);
}
