//! End-to-end smoke test of the embedded endpoint through the real aws-sdk-sqs client:
//! a round trip, a refused oversized request, and a prompt shutdown while a long poll
//! is waiting. The full behaviour is covered by `conformance/` and the boto3 suite.

use std::time::{Duration, Instant};

use sqs_barrier_local::Server;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_oversize_and_prompt_shutdown() {
    let server = Server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let client = sqs_barrier_testkit::sdk_client(&server.endpoint_url());
    let url = client
        .create_queue()
        .queue_name("smoke")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    assert_eq!(url, format!("{}/000000000000/smoke", server.endpoint_url()));
    let sent = client
        .send_message()
        .queue_url(&url)
        .message_body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(
        sent.md5_of_message_body(),
        Some("5d41402abc4b2a76b9719d911017c592")
    );
    let received = client
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    assert_eq!(received.messages()[0].body(), Some("hello"));

    // A body over the limit is refused from its Content-Length, without reading it.
    let mut raw = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    raw.write_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.0\r\n\
          X-Amz-Target: AmazonSQS.ListQueues\r\nContent-Length: 50000000\r\n\r\n{",
    )
    .await
    .unwrap();
    let mut answer = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), raw.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("RequestEntityTooLarge"), "{answer}");

    // Shutdown ends a waiting 20 s long poll at once.
    let poll = tokio::spawn(async move {
        client
            .receive_message()
            .queue_url(&url)
            .wait_time_seconds(20)
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    server.shutdown().await;
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    let answer = tokio::time::timeout(Duration::from_secs(2), poll)
        .await
        .expect("long poll ended with the server")
        .unwrap();
    assert!(answer.map_or(true, |out| out.messages().is_empty()));
}
