//! An emulator of an SQS event source mapping: what AWS Lambda runs to
//! invoke a function with batches of messages from a queue. It behaves as
//! the Lambda documentation says a mapping does, so that a function's real
//! handler can be tested against any SQS endpoint:
//!
//! * pollers long-poll the queue and invoke the handler with batches of up
//!   to `batch_size` records (at most 10 here: the FIFO maximum, and one
//!   receive); `max_concurrency` invocations run at once (Lambda's minimum
//!   `MaximumConcurrency` is 2);
//! * messages are received with the queue's own visibility timeout;
//! * a successful invocation's records are deleted except those the
//!   handler names as failures (`ReportBatchItemFailures`), which come back
//!   after the visibility timeout;
//! * an invocation that fails, times out or is killed deletes nothing: the
//!   whole batch comes back;
//! * delivery is at least once (the endpoint may duplicate; a record
//!   handed back comes again).
//!
//! Faults on top: `kill_rate` kills an invocation at a random moment of
//! its run (the handler's future is dropped, as a crashed or timed-out
//! function stops), `error_rate` fails an invocation after the handler
//! finished (its work done, its batch returned anyway).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// One record of a batch, as the mapping hands it to the function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EsmRecord {
    /// The message id (what `batchItemFailures` names).
    pub message_id: String,
    /// The receipt handle of this delivery.
    pub receipt_handle: String,
    /// The body.
    pub body: String,
    /// The queue's ARN.
    pub event_source_arn: String,
    /// The FIFO message group, if any.
    pub message_group_id: Option<String>,
    /// The message's system attributes (`ApproximateReceiveCount`,
    /// `SentTimestamp`, ...), by name.
    pub attributes: BTreeMap<String, String>,
    /// The MD5 digest of the body, as SQS reports it.
    pub md5_of_body: String,
}

/// The event Lambda hands the function for `records`: the JSON document of
/// the `aws:sqs` event source (`{"Records": [...]}`) with the fields AWS
/// documents, for a function run behind a Runtime API.
pub fn sqs_event(records: &[EsmRecord], region: &str) -> String {
    let records: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            serde_json::json!({
                "messageId": r.message_id,
                "receiptHandle": r.receipt_handle,
                "body": r.body,
                "attributes": r.attributes,
                "messageAttributes": {},
                "md5OfBody": r.md5_of_body,
                "eventSource": "aws:sqs",
                "eventSourceARN": r.event_source_arn,
                "awsRegion": region,
            })
        })
        .collect();
    serde_json::json!({ "Records": records }).to_string()
}

/// The record ids a function's partial-batch response names
/// (`{"batchItemFailures": [{"itemIdentifier": ID}, ...]}`); an error if
/// the response is not one.
pub fn batch_item_failures(response: &str) -> Result<Vec<String>, String> {
    let v: serde_json::Value = serde_json::from_str(response)
        .map_err(|e| format!("a response that is not JSON ({e}): {response}"))?;
    let Some(items) = v.get("batchItemFailures").and_then(|f| f.as_array()) else {
        return Err(format!("a response without batchItemFailures: {response}"));
    };
    items
        .iter()
        .map(|i| {
            i.get("itemIdentifier")
                .and_then(|s| s.as_str())
                .map(str::to_owned)
                .ok_or_else(|| format!("a failure without itemIdentifier: {response}"))
        })
        .collect()
}

/// The function: a batch in, the message ids to report as failures out; an
/// `Err` is a failed invocation.
pub type Handler = Arc<
    dyn Fn(Vec<EsmRecord>) -> Pin<Box<dyn Future<Output = Result<Vec<String>, String>> + Send>>
        + Send
        + Sync,
>;

/// How the mapping is set up, and the faults to inject.
#[derive(Clone, Debug)]
pub struct EsmConfig {
    /// Records per invocation, 1 to 10.
    pub batch_size: i32,
    /// Invocations at once (Lambda's `MaximumConcurrency`, at least 2).
    pub max_concurrency: usize,
    /// An invocation still running after this is stopped (as a timed-out
    /// function): nothing is deleted.
    pub function_timeout: Duration,
    /// Share of invocations killed at a random moment of their run.
    pub kill_rate: f64,
    /// Share of invocations that fail after the handler finished.
    pub error_rate: f64,
    /// Seed of the fault choices.
    pub seed: u64,
}

impl Default for EsmConfig {
    fn default() -> Self {
        Self {
            batch_size: 10,
            max_concurrency: 2,
            function_timeout: Duration::from_secs(10),
            kill_rate: 0.0,
            error_rate: 0.0,
            seed: 1,
        }
    }
}

/// What the mapping did so far.
#[derive(Debug, Default)]
pub struct EsmStats {
    /// Invocations started.
    pub invocations: AtomicU64,
    /// Records handed to the function (redeliveries included).
    pub records: AtomicU64,
    /// Records the function named as failures.
    pub reported: AtomicU64,
    /// Invocations killed, timed out or failed (their batch came back).
    pub failed: AtomicU64,
}

/// A running mapping; it stops when dropped or with [`Self::stop`].
pub struct EventSourceMapping {
    stop: watch::Sender<bool>,
    pollers: JoinSet<()>,
    stats: Arc<EsmStats>,
}

impl EventSourceMapping {
    /// Starts polling `queue_url` (whose ARN is `queue_arn`) for `handler`.
    pub fn start(
        client: aws_sdk_sqs::Client,
        queue_url: &str,
        queue_arn: &str,
        config: EsmConfig,
        handler: Handler,
    ) -> Self {
        assert!((1..=10).contains(&config.batch_size), "batch size 1..=10");
        let (stop, stopped) = watch::channel(false);
        let stats = Arc::new(EsmStats::default());
        let mut pollers = JoinSet::new();
        for i in 0..config.max_concurrency.max(1) {
            pollers.spawn(poll(
                Poller {
                    client: client.clone(),
                    url: queue_url.to_owned(),
                    arn: queue_arn.to_owned(),
                    config: config.clone(),
                    handler: handler.clone(),
                    stats: stats.clone(),
                    rng: Rng(config.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64 + 1)),
                },
                stopped.clone(),
            ));
        }
        Self {
            stop,
            pollers,
            stats,
        }
    }

    /// What it did so far.
    pub fn stats(&self) -> &EsmStats {
        &self.stats
    }

    /// Stops polling; an invocation under way is stopped as a killed one.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        self.pollers.abort_all();
        while self.pollers.join_next().await.is_some() {}
    }
}

struct Poller {
    client: aws_sdk_sqs::Client,
    url: String,
    arn: String,
    config: EsmConfig,
    handler: Handler,
    stats: Arc<EsmStats>,
    rng: Rng,
}

/// A small deterministic generator (xorshift64*), enough for fault choices.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

async fn poll(mut p: Poller, mut stopped: watch::Receiver<bool>) {
    loop {
        if *stopped.borrow() {
            return;
        }
        let receive = p
            .client
            .receive_message()
            .queue_url(&p.url)
            .max_number_of_messages(p.config.batch_size)
            .wait_time_seconds(20)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send();
        let out = tokio::select! {
            r = receive => r,
            _ = stopped.changed() => return,
        };
        let messages = match out {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(_) => {
                // The mapping backs off and polls again.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        let records: Vec<EsmRecord> = messages
            .into_iter()
            .map(|m| {
                let attributes: BTreeMap<String, String> = m
                    .attributes
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v))
                    .collect();
                EsmRecord {
                    message_id: m.message_id.unwrap_or_default(),
                    receipt_handle: m.receipt_handle.unwrap_or_default(),
                    body: m.body.unwrap_or_default(),
                    event_source_arn: p.arn.clone(),
                    message_group_id: attributes.get("MessageGroupId").cloned(),
                    attributes,
                    md5_of_body: m.md5_of_body.unwrap_or_default(),
                }
            })
            .collect();
        p.stats.invocations.fetch_add(1, Ordering::Relaxed);
        p.stats
            .records
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        let kill = p.rng.unit() < p.config.kill_rate;
        let error = p.rng.unit() < p.config.error_rate;
        let limit = if kill {
            // Killed somewhere in its run: after 0 to 50 ms.
            Duration::from_micros((p.rng.unit() * 50_000.0) as u64)
        } else {
            p.config.function_timeout
        };
        let run = (p.handler)(records.clone());
        let failures = match tokio::time::timeout(limit, run).await {
            Ok(Ok(failures)) if !error => failures,
            _ => {
                // Killed, timed out or failed: nothing is deleted.
                p.stats.failed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        p.stats
            .reported
            .fetch_add(failures.len() as u64, Ordering::Relaxed);
        let entries: Vec<_> = records
            .iter()
            .filter(|r| !failures.contains(&r.message_id))
            .enumerate()
            .map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("r{i}"))
                    .receipt_handle(&r.receipt_handle)
                    .build()
                    .expect("id and handle set")
            })
            .collect();
        if !entries.is_empty() {
            // A failed delete leaves the records to come back: at least once.
            let _ = p
                .client
                .delete_message_batch()
                .queue_url(&p.url)
                .set_entries(Some(entries))
                .send()
                .await;
        }
    }
}
