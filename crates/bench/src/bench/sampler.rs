//! `bench --sample-queues SECS`: the approximate message counts of the
//! barrier's six queues over the run, read with `GetQueueAttributes` on a
//! client of its own (its requests are not counted in the figures).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName as A;
use serde::Serialize;
use sqs_barrier::Sqs;
use sqs_barrier::core::names::QueueNames;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Failure, sdk};

/// The time series (`queue_series` in the JSON report).
#[derive(Serialize, Debug, Clone, Default)]
pub(super) struct QueueSeries {
    /// Seconds between samples.
    pub(super) interval_s: f64,
    /// The queues, in the order of every sample's arrays: the dead-letter
    /// queue, the check-in queue, release-0, release-1.
    pub(super) queues: Vec<String>,
    pub(super) samples: Vec<QueueSample>,
    /// Reads that failed (their sample is left out).
    pub(super) errors: u64,
    /// The first failure, if any.
    pub(super) first_error: Option<String>,
}

/// One reading of the six queues.
#[derive(Serialize, Debug, Clone)]
pub(super) struct QueueSample {
    /// Seconds since sampling began (right after the barrier's setup).
    pub(super) t_s: f64,
    /// Episodes complete (every participant released), warm-up included.
    pub(super) episodes: u64,
    /// `ApproximateNumberOfMessages` (stored, visible) per queue.
    pub(super) visible: Vec<u64>,
    /// `ApproximateNumberOfMessagesNotVisible` (in flight) per queue.
    pub(super) in_flight: Vec<u64>,
    /// `ApproximateNumberOfMessagesDelayed` per queue.
    pub(super) delayed: Vec<u64>,
}

impl QueueSeries {
    /// The largest count of `f` over the samples, per queue.
    pub(super) fn max_of(&self, f: impl Fn(&QueueSample) -> &Vec<u64>) -> Vec<u64> {
        let mut out = vec![0; self.queues.len()];
        for s in &self.samples {
            for (o, v) in out.iter_mut().zip(f(s)) {
                *o = (*o).max(*v);
            }
        }
        out
    }
}

/// A running sampler: stop it to get the series.
pub(super) struct Sampler {
    stop: oneshot::Sender<()>,
    task: JoinHandle<QueueSeries>,
}

impl Sampler {
    /// Starts reading the queues of barrier `name` every `every`;
    /// `episodes` is the run's count of complete episodes.
    pub(super) async fn start(
        sqs: Sqs,
        name: &str,
        every: Duration,
        episodes: Arc<AtomicU64>,
    ) -> Result<Self, Failure> {
        let names = QueueNames::new(name, false);
        let mut urls = Vec::new();
        for q in names.all() {
            let url = sqs
                .client()
                .get_queue_url()
                .queue_name(q)
                .send()
                .await
                .map_err(|e| Failure::infra(sdk("GetQueueUrl", e)))?
                .queue_url
                .unwrap_or_default();
            urls.push(url);
        }
        let mut series = QueueSeries {
            interval_s: every.as_secs_f64(),
            queues: names.all().iter().map(|q| (*q).to_owned()).collect(),
            ..QueueSeries::default()
        };
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            let began = Instant::now();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let last = tokio::select! {
                    _ = tick.tick() => false,
                    _ = &mut stopped => true,
                };
                let t_s = began.elapsed().as_secs_f64();
                let done = episodes.load(Ordering::Relaxed);
                match read(&sqs, &urls).await {
                    Ok((visible, in_flight, delayed)) => series.samples.push(QueueSample {
                        t_s: (t_s * 1e3).round() / 1e3,
                        episodes: done,
                        visible,
                        in_flight,
                        delayed,
                    }),
                    Err(e) => {
                        series.errors += 1;
                        series.first_error.get_or_insert(e);
                    }
                }
                if last {
                    return series;
                }
            }
        });
        Ok(Self { stop, task })
    }

    /// Takes a last sample and returns the series.
    pub(super) async fn stop(self) -> QueueSeries {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

type Counts3 = (Vec<u64>, Vec<u64>, Vec<u64>);

/// Reads the counts of every queue, all at once.
async fn read(sqs: &Sqs, urls: &[String]) -> Result<Counts3, String> {
    let mut reads = tokio::task::JoinSet::new();
    for (i, u) in urls.iter().enumerate() {
        let call = sqs
            .client()
            .get_queue_attributes()
            .queue_url(u)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(A::ApproximateNumberOfMessagesDelayed)
            .send();
        reads.spawn(async move { (i, call.await) });
    }
    let mut answers: Vec<_> = reads.join_all().await;
    answers.sort_by_key(|(i, _)| *i);
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for (_, r) in answers {
        let attrs = r
            .map_err(|e| sdk("GetQueueAttributes", e))?
            .attributes
            .unwrap_or_default();
        let get = |k: A| {
            attrs
                .get(&k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        out.0.push(get(A::ApproximateNumberOfMessages));
        out.1.push(get(A::ApproximateNumberOfMessagesNotVisible));
        out.2.push(get(A::ApproximateNumberOfMessagesDelayed));
    }
    Ok(out)
}
