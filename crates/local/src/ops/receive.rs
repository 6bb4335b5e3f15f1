//! ReceiveMessage, with event-driven long polling.
//!
//! A long poll loops: register interest in the queue's `Notify` *before* looking at the
//! queue (so a send between the look and the wait is not missed), try the model, and if
//! nothing came back sleep until the first of: a wake-up (send, visibility change,
//! redrive, queue deletion, a delete that makes room under the in-flight quota), the model's next timer ([`Queue::next_event`]: a delay
//! ending or a visibility timeout lapsing), the end of the wait, or server shutdown.
//!
//! On a FIFO queue a `ReceiveRequestAttemptId` goes to the model
//! ([`Queue::receive_attempt`]): the retry of a receive it remembers is answered on the
//! first try, with the same messages and receipt handles.
//!
//! [`Queue::next_event`]: crate::model::Queue::next_event
//! [`Queue::receive_attempt`]: crate::model::Queue::receive_attempt

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{in_range, required};
use crate::chaos::{Counted, EmptyAfter};
use crate::error::{ErrorCode, Result};
use crate::model::{
    AttributeValue, Delivery, MessageAttribute, ReceiveOutcome, hex, validate_attempt_id,
};
use crate::service::{QueueSlot, RequestContext, Service, now};

/// `ReceiveMessage` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct ReceiveMessage {
    queue_url: Option<String>,
    /// Legacy name of `MessageSystemAttributeNames`; both are honoured.
    #[serde(default)]
    attribute_names: Vec<String>,
    #[serde(default)]
    message_system_attribute_names: Vec<String>,
    #[serde(default)]
    message_attribute_names: Vec<String>,
    max_number_of_messages: Option<i64>,
    visibility_timeout: Option<i64>,
    wait_time_seconds: Option<i64>,
    /// FIFO retry token: a retry with the same id gets the same messages (see
    /// `model::Queue::receive_attempt`); standard queues ignore it.
    receive_request_attempt_id: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireAttributeOut {
    data_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    string_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    binary_value: Option<String>,
}

#[derive(Serialize)]
pub(crate) struct WireMessageOut {
    #[serde(rename = "MessageId")]
    message_id: String,
    #[serde(rename = "ReceiptHandle")]
    receipt_handle: String,
    #[serde(rename = "MD5OfBody")]
    md5_of_body: String,
    #[serde(rename = "Body")]
    body: Box<str>,
    #[serde(rename = "Attributes", skip_serializing_if = "BTreeMap::is_empty")]
    attributes: BTreeMap<&'static str, String>,
    #[serde(
        rename = "MD5OfMessageAttributes",
        skip_serializing_if = "Option::is_none"
    )]
    md5_of_message_attributes: Option<String>,
    #[serde(
        rename = "MessageAttributes",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    message_attributes: BTreeMap<String, WireAttributeOut>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ReceiveOutput {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    messages: Vec<WireMessageOut>,
}

/// System attribute names a receive may ask for.
const SYSTEM_ATTRIBUTES: &[&str] = &[
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageDeduplicationId",
    "MessageGroupId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
];

fn wants_attribute(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| {
        p == "All"
            || p == ".*"
            || p == name
            || p.strip_suffix(".*").is_some_and(|prefix| {
                name.strip_prefix(prefix)
                    .is_some_and(|r| r.starts_with('.'))
            })
    })
}

fn wire_attribute(attribute: &MessageAttribute) -> WireAttributeOut {
    let (string_value, binary_value) = match &attribute.value {
        AttributeValue::String(s) => (Some(s.to_string()), None),
        AttributeValue::Binary(b) => (
            None,
            Some(base64::engine::general_purpose::STANDARD.encode(b)),
        ),
    };
    WireAttributeOut {
        data_type: attribute.data_type.to_string(),
        string_value,
        binary_value,
    }
}

impl ReceiveMessage {
    fn render(&self, delivery: Delivery, sender_id: &str) -> WireMessageOut {
        let requested: Vec<&str> = self
            .attribute_names
            .iter()
            .chain(&self.message_system_attribute_names)
            .map(String::as_str)
            .collect();
        let all = requested.contains(&"All");
        let mut attributes = BTreeMap::new();
        for &name in SYSTEM_ATTRIBUTES {
            if !all && !requested.contains(&name) {
                continue;
            }
            let value = match name {
                "SenderId" => Some(sender_id.to_owned()),
                "SentTimestamp" => Some(delivery.sent_at.to_string()),
                "ApproximateReceiveCount" => Some(delivery.receive_count.to_string()),
                "ApproximateFirstReceiveTimestamp" => Some(delivery.first_receive_at.to_string()),
                "SequenceNumber" => delivery.sequence_number.clone(),
                "MessageDeduplicationId" => delivery.deduplication_id.as_deref().map(str::to_owned),
                "MessageGroupId" => delivery.group_id.as_deref().map(str::to_owned),
                "DeadLetterQueueSourceArn" => {
                    delivery.dead_letter_source.as_deref().map(str::to_owned)
                }
                "AWSTraceHeader" => delivery
                    .system_attributes
                    .iter()
                    .find(|a| &*a.name == "AWSTraceHeader")
                    .and_then(|a| match &a.value {
                        AttributeValue::String(s) => Some(s.to_string()),
                        AttributeValue::Binary(_) => None,
                    }),
                _ => None,
            };
            if let Some(value) = value {
                attributes.insert(name, value);
            }
        }
        let message_attributes = delivery
            .attributes
            .iter()
            .filter(|a| wants_attribute(&self.message_attribute_names, &a.name))
            .map(|a| (a.name.to_string(), wire_attribute(a)))
            .collect();
        WireMessageOut {
            message_id: delivery.message_id.to_string(),
            receipt_handle: delivery.receipt_handle,
            md5_of_body: hex(&delivery.md5_of_body),
            body: delivery.body,
            attributes,
            md5_of_message_attributes: delivery.md5_of_attributes.map(|d| hex(&d)),
            message_attributes,
        }
    }

    /// One non-blocking attempt: receive, move dead letters, and report when the
    /// queue changes by itself next.
    ///
    /// At the in-flight quota a standard queue answers `OverLimit`, which SQS
    /// returns to short polls only: a long poll (`long_poll`) sees "nothing yet"
    /// and waits for room.
    fn attempt(
        &self,
        service: &Service,
        slot: &QueueSlot,
        max: usize,
        visibility: Option<u32>,
        long_poll: bool,
        ctx: &RequestContext<'_>,
    ) -> Result<(Vec<Delivery>, Option<u64>)> {
        let now = now();
        let (outcome, next_event, dlq_arn) = {
            let mut queue = slot.lock();
            let reorder = ctx.chaos.and_then(|(chaos, d)| Some((chaos, d.reorder?)));
            let attempt_id = self.receive_request_attempt_id.as_deref();
            let result = match (reorder, attempt_id) {
                (Some((chaos, start)), _) if !queue.is_fifo() => {
                    if queue.counts(now).visible >= 2 {
                        chaos.count(Counted::Reorder);
                    }
                    queue.receive_from(max, visibility, now, start)
                }
                (_, Some(id)) => queue.receive_attempt(id, max, visibility, now),
                _ => queue.receive(max, visibility, now),
            };
            let outcome = match result {
                Ok(outcome) => outcome,
                Err(error) if long_poll && error.code == ErrorCode::OverLimit => {
                    ReceiveOutcome::default()
                }
                Err(error) => return Err(error),
            };
            let dlq = queue
                .attributes()
                .redrive_policy
                .as_ref()
                .map(|p| p.dead_letter_target_arn.clone());
            (outcome, queue.next_event(), dlq)
        };
        if !outcome.dead_letters.is_empty() {
            // The source lock is released before the target's is taken, so two queues
            // that name each other as DLQ cannot deadlock.
            match dlq_arn.and_then(|arn| service.get_by_arn(&arn)) {
                Some(dlq) => {
                    let mut target = dlq.lock();
                    for message in outcome.dead_letters {
                        target.accept_dead_letter(message, &slot.arn, now);
                    }
                    drop(target);
                    dlq.wakeup.notify_waiters();
                }
                None => {
                    // The DLQ was deleted: keep the messages rather than lose them.
                    let mut queue = slot.lock();
                    for message in outcome.dead_letters {
                        queue.take_back(message, now);
                    }
                }
            }
        }
        Ok((outcome.deliveries, next_event))
    }

    pub(crate) async fn apply(
        self,
        service: &Service,
        ctx: &RequestContext<'_>,
    ) -> Result<ReceiveOutput> {
        let slot = service.resolve_url(required(self.queue_url.as_deref(), "QueueUrl")?)?;
        let max = match self.max_number_of_messages {
            Some(n) => in_range(n, "MaxNumberOfMessages", 1..=10)? as usize,
            None => 1,
        };
        let visibility = self
            .visibility_timeout
            .map(|v| in_range(v, "VisibilityTimeout", 0..=43_200))
            .transpose()?;
        let wait = match self.wait_time_seconds {
            Some(w) => in_range(w, "WaitTimeSeconds", 0..=20)?,
            None => slot.lock().attributes().receive_message_wait_time_seconds,
        };
        if let Some(id) = self.receive_request_attempt_id.as_deref()
            && slot.lock().is_fifo()
        {
            // Checked before the receive's own faults (`empty`, `duplicate`); the model
            // checks it again.
            validate_attempt_id(id)?;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(wait));
        let mut shutdown = service.shutdown.clone();
        tracing::trace!(queue = %slot.lock().name(), wait, "receive");
        if let Some((chaos, decision)) = ctx.chaos {
            if let Some(empty) = decision.empty {
                // An empty answer although messages may exist, before the
                // wait ends.
                chaos.count(Counted::Empty);
                let wait_ms = u64::from(wait) * 1000;
                let after = match empty {
                    EmptyAfter::Fraction(f) => (wait_ms as f64 * f) as u64,
                    EmptyAfter::Millis(ms) => ms.min(wait_ms),
                };
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(after)) => {}
                    _ = crate::server::stopped(&mut shutdown) => {}
                }
                return Ok(ReceiveOutput::default());
            }
            if let Some(pick) = decision.duplicate {
                // A message delivered again: one deleted recently (once), or
                // one in flight whose visibility lapses early.
                let now = now();
                let mut queue = slot.lock();
                let counted = if pick & 1 == 0 {
                    if queue.resurrect(pick >> 1, now) {
                        Some(Counted::Resurrected)
                    } else {
                        queue
                            .redeliver_early(pick >> 1, now)
                            .then_some(Counted::Duplicate)
                    }
                } else if queue.redeliver_early(pick >> 1, now) {
                    Some(Counted::Duplicate)
                } else {
                    queue
                        .resurrect(pick >> 1, now)
                        .then_some(Counted::Resurrected)
                };
                drop(queue);
                if let Some(what) = counted {
                    chaos.count(what);
                    slot.wakeup.notify_waiters();
                }
            }
        }
        loop {
            let notified = slot.wakeup.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let (deliveries, next_event) =
                self.attempt(service, &slot, max, visibility, wait > 0, ctx)?;
            if !deliveries.is_empty() {
                tracing::trace!(queue = %slot.lock().name(), n = deliveries.len(), "receive answered");
                let messages = deliveries
                    .into_iter()
                    .map(|d| self.render(d, &service.account_id))
                    .collect();
                return Ok(ReceiveOutput { messages });
            }
            let now_instant = tokio::time::Instant::now();
            if now_instant >= deadline || slot.is_deleted() || *shutdown.borrow() {
                return Ok(ReceiveOutput::default());
            }
            let wake_at = match next_event {
                Some(at) => {
                    // +1 ms: the model counts a timer as due at `due <= now`, and the
                    // millisecond clock truncates.
                    let delay = Duration::from_millis(at.saturating_sub(now()) + 1);
                    deadline.min(now_instant + delay)
                }
                None => deadline,
            };
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(wake_at) => {}
                _ = crate::server::stopped(&mut shutdown) => {
                    return Ok(ReceiveOutput::default());
                }
            }
        }
    }
}
