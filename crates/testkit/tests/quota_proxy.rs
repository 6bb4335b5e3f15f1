//! The tagging quota's proxy, in front of the embedded endpoint with the
//! endpoint's own quota off, so that only the proxy limits: it answers the
//! tagging actions over the quota as SQS does, forwards everything else
//! unchanged (long polls included), and does the same as a process
//! (`sqs-barrier-quota-proxy`). moto behind the proxy is covered by the
//! conformance suite (`tagging_actions_are_throttled_over_5_per_second`).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use sqs_barrier_local::{Options, Server};
use sqs_barrier_testkit::{QuotaProxy, sdk_client};

/// The embedded endpoint without its own tagging quota.
async fn unlimited() -> Server {
    Server::bind_with(
        "127.0.0.1:0".parse().unwrap(),
        Options::default().with_tagging_tps(0),
    )
    .await
    .unwrap()
}

/// Sends `n` ListQueueTags at once; returns how many passed and the errors
/// (code, message) of the others.
async fn list_tags_at_once(client: &Client, url: &str, n: usize) -> (usize, Vec<(String, String)>) {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let request = client.list_queue_tags().queue_url(url);
            tokio::spawn(async move { request.send().await })
        })
        .collect();
    let mut passed = 0;
    let mut errors = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => passed += 1,
            Err(e) => errors.push((
                e.code().unwrap_or("<no code>").to_owned(),
                e.message().unwrap_or("<no message>").to_owned(),
            )),
        }
    }
    (passed, errors)
}

fn throttled(n: usize) -> Vec<(String, String)> {
    vec![("RequestThrottled".to_owned(), "Rate exceeded".to_owned()); n]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_throttles_tagging_and_forwards_the_rest() {
    let upstream = unlimited().await;
    let proxy = QuotaProxy::start(upstream.local_addr()).unwrap();
    assert_eq!(proxy.tagging_tps(), 5);
    assert_eq!(proxy.upstream(), upstream.local_addr());
    let client = sdk_client(&proxy.endpoint_url());

    let url = client
        .create_queue()
        .queue_name("behind")
        .tags("team", "infra")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    assert!(
        url.starts_with(&proxy.endpoint_url()),
        "the Host header is forwarded, so queue URLs name the proxy: {url}"
    );

    assert_eq!(list_tags_at_once(&client, &url, 7).await, (5, throttled(2)));
    // Directly, the endpoint (quota off) answers at once.
    let direct = sdk_client(&upstream.endpoint_url());
    assert_eq!(list_tags_at_once(&direct, &url, 7).await, (7, Vec::new()));

    // Other operations pass while the quota is used up, a long poll too.
    let waiting = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move {
            let start = Instant::now();
            let out = client
                .receive_message()
                .queue_url(&url)
                .wait_time_seconds(10)
                .send()
                .await
                .unwrap();
            (out.messages.unwrap_or_default().len(), start.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    client
        .send_message()
        .queue_url(&url)
        .message_body("through the proxy")
        .send()
        .await
        .unwrap();
    let (got, took) = tokio::time::timeout(Duration::from_secs(15), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, 1);
    assert!(took < Duration::from_secs(5), "woken by the send: {took:?}");

    // A second later the burst is back.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(list_tags_at_once(&client, &url, 6).await, (5, throttled(1)));

    // Errors of the upstream come through unchanged.
    let missing = client
        .get_queue_url()
        .queue_name("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        missing.code(),
        Some("AWS.SimpleQueueService.NonExistentQueue")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_without_quota_forwards_everything() {
    let upstream = unlimited().await;
    let proxy = QuotaProxy::start_with(upstream.local_addr(), 0).unwrap();
    let client = sdk_client(&proxy.endpoint_url());
    let url = client
        .create_queue()
        .queue_name("free")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    assert_eq!(list_tags_at_once(&client, &url, 20).await, (20, Vec::new()));
}

/// The proxy process, killed when dropped.
struct ProxyProcess(Child);

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_binary_prints_its_url_and_throttles() {
    let upstream = unlimited().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sqs-barrier-quota-proxy"))
        .args(["--upstream", &upstream.local_addr().to_string()])
        .args(["--tagging-tps", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _process = ProxyProcess(child);
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .unwrap()
    .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    assert!(line.contains("3 tagging actions per second"), "{line}");

    let client = sdk_client(url);
    let queue = client
        .create_queue()
        .queue_name("via-process")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    assert_eq!(
        list_tags_at_once(&client, &queue, 4).await,
        (3, throttled(1))
    );
}

#[test]
fn the_proxy_binary_refuses_bad_arguments() {
    for args in [
        &[][..],
        &["--tagging-tps", "5"][..],
        &["--upstream"][..],
        &["--upstream", "127.0.0.1:1", "--tagging-tps", "many"][..],
        &["--upstream", "127.0.0.1:1", "--extra"][..],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_sqs-barrier-quota-proxy"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("usage:"), "{args:?}: {stderr}");
    }
}
