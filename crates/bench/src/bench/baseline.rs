//! The course handout's protocol (`bench --baseline`): its participants and
//! its counting monitor, as written there, with the deviations
//! docs/BENCHMARKS.md lists.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use sqs_barrier::Sqs;

use super::{Failure, sdk};
use sqs_barrier::clock::wall_us;

/// The queues of the handout's protocol. Two of each, used by episode
/// parity, so that a participant released early cannot take a release
/// message left for a slower one (see `docs/BENCHMARKS.md`).
#[derive(Debug)]
pub(super) struct BaselineQueues {
    pub(super) checkin: [String; 2],
    pub(super) release: [String; 2],
}

impl BaselineQueues {
    fn names(prefix: &str) -> [String; 4] {
        [
            format!("{prefix}-BarrierQueue-0"),
            format!("{prefix}-BarrierQueue-1"),
            format!("{prefix}-ReleaseQueue-0"),
            format!("{prefix}-ReleaseQueue-1"),
        ]
    }

    pub(super) async fn create(sqs: &Sqs, prefix: &str) -> Result<Self, Failure> {
        let mut urls = Vec::new();
        for name in Self::names(prefix) {
            let out = sqs
                .client()
                .create_queue()
                .queue_name(&name)
                .send()
                .await
                .map_err(|e| Failure::infra(sdk("CreateQueue", e)))?;
            urls.push(out.queue_url.unwrap_or_default());
        }
        Ok(Self::from_urls(urls))
    }

    pub(super) async fn open(sqs: &Sqs, prefix: &str) -> Result<Self, Failure> {
        let mut urls = Vec::new();
        for name in Self::names(prefix) {
            let out = sqs
                .client()
                .get_queue_url()
                .queue_name(&name)
                .send()
                .await
                .map_err(|e| Failure::infra(sdk("GetQueueUrl", e)))?;
            urls.push(out.queue_url.unwrap_or_default());
        }
        Ok(Self::from_urls(urls))
    }

    fn from_urls(u: Vec<String>) -> Self {
        Self {
            checkin: [u[0].clone(), u[1].clone()],
            release: [u[2].clone(), u[3].clone()],
        }
    }

    pub(super) async fn delete(&self, sqs: &Sqs) {
        for url in self.checkin.iter().chain(&self.release) {
            let _ = sqs.client().delete_queue().queue_url(url).send().await;
        }
    }
}

/// Step 3 of the handout: a participant's check-in for episode `k`.
pub(super) async fn check_in(
    sqs: &Sqs,
    queues: &BaselineQueues,
    id: &str,
    k: u64,
) -> Result<(), String> {
    let q = (k % 2) as usize;
    sqs.client()
        .send_message()
        .queue_url(&queues.checkin[q])
        .message_body(format!("Process {id} completed phase {k}"))
        .send()
        .await
        .map_err(|e| format!("episode {k}: participant {id}: {}", sdk("SendMessage", e)))?;
    Ok(())
}

/// A participant's wait for the release of episode `k`, after its
/// check-in: the instant released, in microseconds. Fails if `timeout` has
/// passed since `started`.
pub(super) async fn wait(
    sqs: &Sqs,
    queues: &BaselineQueues,
    id: &str,
    k: u64,
    started: Instant,
    timeout: Duration,
) -> Result<u64, String> {
    let q = (k % 2) as usize;
    // Step 5: poll the release queue, short polling, one message,
    // one second between polls.
    loop {
        let out = sqs
            .client()
            .receive_message()
            .queue_url(&queues.release[q])
            .max_number_of_messages(1)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "episode {k}: participant {id}: {}",
                    sdk("ReceiveMessage", e)
                )
            })?;
        if let Some(m) = out.messages.unwrap_or_default().into_iter().next() {
            let released = wall_us();
            // Not in the handout: without it the message comes back
            // after the visibility timeout and releases someone in a
            // later episode.
            if let Some(r) = m.receipt_handle {
                sqs.client()
                    .delete_message()
                    .queue_url(&queues.release[q])
                    .receipt_handle(r)
                    .send()
                    .await
                    .map_err(|e| {
                        format!("episode {k}: participant {id}: {}", sdk("DeleteMessage", e))
                    })?;
            }
            return Ok(released);
        }
        if started.elapsed() > timeout {
            return Err(format!(
                "episode {k}: participant {id} was not released within {:.0} s",
                timeout.as_secs_f64()
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The handout's monitor: poll the check-in count every second; at N, send
/// one release message per participant, then delete the check-ins.
pub(super) async fn monitor(
    sqs: Sqs,
    queues: Arc<BaselineQueues>,
    n: usize,
    episodes: u64,
    timeout: Duration,
    decided: Arc<Mutex<BTreeMap<u64, u64>>>,
) -> Result<(), String> {
    for k in 0..episodes {
        let q = (k % 2) as usize;
        let started = Instant::now();
        loop {
            let out = sqs
                .client()
                .get_queue_attributes()
                .queue_url(&queues.checkin[q])
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .send()
                .await
                .map_err(|e| sdk("GetQueueAttributes", e))?;
            let count: usize = out
                .attributes
                .as_ref()
                .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if count >= n {
                break;
            }
            if started.elapsed() > timeout {
                return Err(format!(
                    "episode {k}: the monitor counted {count} of {n} check-ins for {:.0} s",
                    timeout.as_secs_f64()
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        for _ in 0..n {
            sqs.client()
                .send_message()
                .queue_url(&queues.release[q])
                .message_body(format!("release phase {k}"))
                .send()
                .await
                .map_err(|e| sdk("SendMessage", e))?;
        }
        decided.lock().expect("lock").insert(k, wall_us());
        // Clean-up: PurgeQueue works once a minute; receive and delete the N
        // check-ins instead.
        let mut deleted = 0;
        while deleted < n {
            if started.elapsed() > timeout {
                return Err(format!(
                    "episode {k}: the monitor deleted only {deleted} of {n} check-ins"
                ));
            }
            let out = sqs
                .client()
                .receive_message()
                .queue_url(&queues.checkin[q])
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .map_err(|e| sdk("ReceiveMessage", e))?;
            let receipts: Vec<String> = out
                .messages
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.receipt_handle)
                .collect();
            deleted += sqs
                .delete_batch(&queues.checkin[q], &receipts)
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
