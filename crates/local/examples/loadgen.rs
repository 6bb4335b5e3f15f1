//! A quick load generator for the embedded endpoint: sequential SendMessage latency,
//! send-to-long-poll hand-off, and a deep queue (memory and flat per-call cost).
//!
//! `cargo run --release -p sqs-barrier-local --example loadgen [depth]`
//!
//! It speaks raw HTTP/1.1 over one keep-alive TCP connection per client so the
//! numbers measure the server, not an SDK.

use std::time::{Duration, Instant};

use sqs_barrier_local::Server;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Client {
    stream: BufReader<TcpStream>,
    host: String,
}

impl Client {
    async fn connect(server: &Server) -> Client {
        let stream = TcpStream::connect(server.local_addr())
            .await
            .expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Client {
            stream: BufReader::new(stream),
            host: server.local_addr().to_string(),
        }
    }

    async fn call(&mut self, op: &str, body: &str) -> String {
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-amz-json-1.0\r\nX-Amz-Target: AmazonSQS.{op}\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        self.stream
            .get_mut()
            .write_all(request.as_bytes())
            .await
            .expect("write");
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).await.expect("read");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().expect("length");
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await.expect("body");
        String::from_utf8(body).expect("utf-8")
    }
}

fn field<'a>(json: &'a str, name: &str) -> Vec<&'a str> {
    let key = format!("\"{name}\":\"");
    json.match_indices(&key)
        .filter_map(|(at, _)| {
            let rest = &json[at + key.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() as f64 - 1.0) * p) as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let depth: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let server = Server::bind("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("bind");
    let mut client = Client::connect(&server).await;
    let created = client.call("CreateQueue", r#"{"QueueName":"bench"}"#).await;
    let url = field(&created, "QueueUrl")[0].to_owned();

    // Sequential SendMessage.
    let n = 20_000;
    let body = format!(
        r#"{{"QueueUrl":"{url}","MessageBody":"{}"}}"#,
        "x".repeat(200)
    );
    let mut samples = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        client.call("SendMessage", &body).await;
        samples.push(t.elapsed());
    }
    let total = start.elapsed();
    println!(
        "SendMessage x{n}: mean {:?}, p50 {:?}, p99 {:?} (client round trip)",
        total / n as u32,
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99)
    );
    client
        .call("PurgeQueue", &format!(r#"{{"QueueUrl":"{url}"}}"#))
        .await;

    // Send -> waiting long poll hand-off.
    let mut poller = Client::connect(&server).await;
    let receive = format!(r#"{{"QueueUrl":"{url}","WaitTimeSeconds":20}}"#);
    let mut handoffs = Vec::new();
    for _ in 0..300 {
        let receive = receive.clone();
        let waiter = tokio::spawn(async move {
            let answer = poller.call("ReceiveMessage", &receive).await;
            (poller, answer, Instant::now())
        });
        tokio::time::sleep(Duration::from_millis(2)).await;
        let sent_at = Instant::now();
        client.call("SendMessage", &body).await;
        let (p, answer, got_at) = waiter.await.expect("join");
        poller = p;
        handoffs.push(got_at - sent_at);
        let handle = field(&answer, "ReceiptHandle")[0].to_owned();
        client
            .call(
                "DeleteMessage",
                &format!(r#"{{"QueueUrl":"{url}","ReceiptHandle":"{handle}"}}"#),
            )
            .await;
    }
    println!(
        "send -> long poll: p50 {:?}, p99 {:?}",
        percentile(&mut handoffs, 0.5),
        percentile(&mut handoffs, 0.99)
    );

    // Deep queue.
    let rss_before = rss_mib();
    let entries: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"Id":"e{i}","MessageBody":"{}"}}"#, "y".repeat(200)))
        .collect();
    let batch = format!(
        r#"{{"QueueUrl":"{url}","Entries":[{}]}}"#,
        entries.join(",")
    );
    let start = Instant::now();
    for i in 0..depth / 10 {
        client.call("SendMessageBatch", &batch).await;
        if i > 0 && i % (depth / 40).max(1) == 0 {
            println!(
                "  depth {:>8}: {:?}/batch",
                i * 10,
                start.elapsed() / i as u32
            );
        }
    }
    println!(
        "{depth} messages of 200 bytes: {:?}, RSS +{:.0} MiB (total {:.0} MiB)",
        start.elapsed(),
        rss_mib() - rss_before,
        rss_mib()
    );
    let mut samples = Vec::new();
    let receive = format!(r#"{{"QueueUrl":"{url}","MaxNumberOfMessages":10}}"#);
    for _ in 0..2000 {
        let t = Instant::now();
        let answer = client.call("ReceiveMessage", &receive).await;
        for handle in field(&answer, "ReceiptHandle") {
            client
                .call(
                    "DeleteMessage",
                    &format!(r#"{{"QueueUrl":"{url}","ReceiptHandle":"{handle}"}}"#),
                )
                .await;
        }
        samples.push(t.elapsed());
    }
    println!(
        "at depth, receive 10 + delete 10: p50 {:?}",
        percentile(&mut samples, 0.5)
    );
    server.shutdown().await;
}
