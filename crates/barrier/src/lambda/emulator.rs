//! An emulator of an SQS event source mapping: what AWS Lambda runs to
//! invoke a function with batches of messages from a queue. It behaves as
//! the Lambda documentation says a mapping does, so that a function's real
//! handler can be run (by `sqs-barrier bench` and `demo` with
//! `--coordinator lambda`, and by the tests) against any SQS endpoint:
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
//!
//! [`EmulatedCoordinator`] puts the pieces together for one barrier: the
//! mapping on its check-in queue invoking [`handle_batch`], and the
//! schedule invoking [`handle_tick`], as `deploy/template.yaml` sets them
//! up in AWS.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use sqs_barrier_core::coordinator::Event;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::{Barriers, BatchOutcome, LambdaOptions, Record, handle_batch, handle_tick};
use crate::admin;
use crate::error::Result;
use crate::sqs::Sqs;

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
    /// The invocations' time, summed (µs): what Lambda bills as duration.
    pub busy_us: AtomicU64,
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
        let began = std::time::Instant::now();
        let ran = tokio::time::timeout(limit, run).await;
        p.stats
            .busy_us
            .fetch_add(began.elapsed().as_micros() as u64, Ordering::Relaxed);
        let failures = match ran {
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

/// How an [`EmulatedCoordinator`] is deployed: the mapping, the function's
/// settings, and the schedule.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Deployment {
    /// The event source mapping on the check-in queue.
    pub mapping: EsmConfig,
    /// The function's settings (its environment in AWS).
    pub function: LambdaOptions,
    /// The schedule's interval: the function is invoked with a tick this
    /// often (`None`: never).
    pub ticks: Option<Duration>,
}

impl Deployment {
    /// As `deploy/template.yaml` deploys it: batches of 10,
    /// `MaximumConcurrency` 2, a function timeout of 5 s, the function's
    /// defaults (a 60 s heartbeat, the 30 s visibility `setup` gives the
    /// check-in queue), a tick every 60 s.
    pub fn as_in_template() -> Self {
        let function = LambdaOptions::default();
        Self {
            mapping: EsmConfig {
                function_timeout: Duration::from_secs(5),
                ..EsmConfig::default()
            },
            ticks: Some(function.heartbeat),
            function,
        }
    }
}

/// What the function did so far, over its invocations.
#[derive(Debug, Default)]
pub struct FunctionStats {
    /// Scheduled invocations (ticks).
    pub ticks: AtomicU64,
    /// Races lost to a concurrent invocation (each cost a round more).
    pub races: AtomicU64,
    /// Of `races`, writes erased by a concurrent invocation's (found at
    /// the re-read).
    pub erased: AtomicU64,
    /// Invocations that returned an error (their batch came back whole).
    pub errors: AtomicU64,
}

/// The Lambda coordinator of one barrier, emulated: an
/// [`EventSourceMapping`] on the check-in queue invoking [`handle_batch`],
/// and a schedule invoking [`handle_tick`]. Every invocation rebuilds the
/// coordinator from the published state (the handler keeps nothing but the
/// queue URLs between invocations, as a warm function instance does).
pub struct EmulatedCoordinator {
    mapping: EventSourceMapping,
    schedule: Option<JoinHandle<()>>,
    function: Arc<FunctionStats>,
}

impl EmulatedCoordinator {
    /// Maps barrier `name`'s check-in queue to the function. The function
    /// makes its requests with `function`; the mapping polls and deletes
    /// with `mapping` (which may share `function`'s counter or not). The
    /// core's events of every invocation go to `events`.
    pub async fn start(
        function: &Sqs,
        mapping: aws_sdk_sqs::Client,
        name: &str,
        deployment: Deployment,
        events: Option<UnboundedSender<Event>>,
    ) -> Result<Self> {
        let info = admin::open(function, name).await?;
        let arn = admin::queue_arn(function, &info.urls.checkin).await?;
        let stats = Arc::new(FunctionStats::default());
        let barriers = Barriers::new();
        let handler: Handler = {
            let (sqs, barriers, opts) = (
                function.clone(),
                barriers.clone(),
                deployment.function.clone(),
            );
            let (stats, events) = (stats.clone(), events.clone());
            Arc::new(move |records| {
                let (sqs, barriers, opts) = (sqs.clone(), barriers.clone(), opts.clone());
                let (stats, events) = (stats.clone(), events.clone());
                Box::pin(async move {
                    let records = records
                        .into_iter()
                        .map(|r| Record {
                            message_id: r.message_id,
                            body: r.body,
                            event_source_arn: r.event_source_arn,
                            message_group_id: r.message_group_id,
                        })
                        .collect();
                    let out = handle_batch(&sqs, &barriers, records, &opts).await;
                    settle(&stats, events.as_ref(), out).map(|o| o.failures)
                })
            })
        };
        let schedule = deployment.ticks.map(|every| {
            let (sqs, name, opts) = (
                function.clone(),
                name.to_owned(),
                deployment.function.clone(),
            );
            let stats = stats.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(every);
                interval.tick().await;
                loop {
                    interval.tick().await;
                    stats.ticks.fetch_add(1, Ordering::Relaxed);
                    let out = handle_tick(&sqs, &barriers, &name, &opts).await;
                    let _ = settle(&stats, events.as_ref(), out);
                }
            })
        });
        let mapping = EventSourceMapping::start(
            mapping,
            &info.urls.checkin,
            &arn,
            deployment.mapping,
            handler,
        );
        Ok(Self {
            mapping,
            schedule,
            function: stats,
        })
    }

    /// What the mapping did so far (counted on as it goes on).
    pub fn mapping(&self) -> Arc<EsmStats> {
        self.mapping.stats.clone()
    }

    /// What the function did so far (counted on as it goes on).
    pub fn function(&self) -> Arc<FunctionStats> {
        self.function.clone()
    }

    /// Its counters, to read as it goes on.
    pub fn counters(&self) -> Counters {
        Counters {
            mapping: self.mapping.stats.clone(),
            function: self.function.clone(),
        }
    }

    /// Stops the schedule and the mapping (an invocation under way is
    /// stopped as a killed one).
    pub async fn stop(self) {
        if let Some(s) = self.schedule {
            s.abort();
            let _ = s.await;
        }
        self.mapping.stop().await;
    }
}

/// The counters of an [`EmulatedCoordinator`] (the mapping's and the
/// function's), readable while it runs and after.
#[derive(Clone, Debug)]
pub struct Counters {
    mapping: Arc<EsmStats>,
    function: Arc<FunctionStats>,
}

impl Counters {
    /// Reads them.
    pub fn read(&self) -> Counts {
        let (m, f) = (&self.mapping, &self.function);
        Counts {
            invocations: m.invocations.load(Ordering::Relaxed),
            records: m.records.load(Ordering::Relaxed),
            handed_back: m.reported.load(Ordering::Relaxed),
            failed: m.failed.load(Ordering::Relaxed) + f.errors.load(Ordering::Relaxed),
            ticks: f.ticks.load(Ordering::Relaxed),
            races: f.races.load(Ordering::Relaxed),
            erased: f.erased.load(Ordering::Relaxed),
            busy_us: m.busy_us.load(Ordering::Relaxed),
        }
    }
}

/// A reading of [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counts {
    /// Batch invocations.
    pub invocations: u64,
    /// Records handed to the function (redeliveries included).
    pub records: u64,
    /// Records the function handed back (`batchItemFailures`).
    pub handed_back: u64,
    /// Invocations that failed, timed out or were killed (their batch came
    /// back whole).
    pub failed: u64,
    /// Scheduled invocations.
    pub ticks: u64,
    /// Races lost to a concurrent invocation.
    pub races: u64,
    /// Of `races`, writes erased by a concurrent invocation's.
    pub erased: u64,
    /// The batch invocations' time, summed (µs).
    pub busy_us: u64,
}

impl Counts {
    /// What was counted since `earlier`.
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            invocations: self.invocations.saturating_sub(earlier.invocations),
            records: self.records.saturating_sub(earlier.records),
            handed_back: self.handed_back.saturating_sub(earlier.handed_back),
            failed: self.failed.saturating_sub(earlier.failed),
            ticks: self.ticks.saturating_sub(earlier.ticks),
            races: self.races.saturating_sub(earlier.races),
            erased: self.erased.saturating_sub(earlier.erased),
            busy_us: self.busy_us.saturating_sub(earlier.busy_us),
        }
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} batch invocations ({} records, {} handed back, {} failed), {} ticks, {} races lost ({} writes erased)",
            self.invocations,
            self.records,
            self.handed_back,
            self.failed,
            self.ticks,
            self.races,
            self.erased
        )
    }
}

/// Counts an invocation's races or error and passes its events on.
fn settle(
    stats: &FunctionStats,
    events: Option<&UnboundedSender<Event>>,
    out: Result<BatchOutcome>,
) -> std::result::Result<BatchOutcome, String> {
    match out {
        Ok(mut o) => {
            stats.races.fetch_add(o.races as u64, Ordering::Relaxed);
            stats.erased.fetch_add(o.erased as u64, Ordering::Relaxed);
            for e in o.events.drain(..) {
                if let Some(tx) = events {
                    let _ = tx.send(e);
                }
            }
            Ok(o)
        }
        Err(e) => {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            Err(e.to_string())
        }
    }
}
