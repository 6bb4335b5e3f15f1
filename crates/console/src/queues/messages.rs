//! Messages: send one, poll (receive, as the SQS console does: the
//! messages polled are then in flight), delete those selected.

use std::time::{Duration, Instant};

use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName as A,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};
use sqs_barrier::Sqs;

use super::errors::{self, Failure, Outcome};

/// The longest poll, seconds.
pub(crate) const MAX_POLL_SECS: u64 = 120;
/// The most messages one poll returns.
pub(crate) const MAX_POLL_COUNT: u64 = 100;
/// The most receipt handles one delete takes.
pub(crate) const MAX_DELETE: usize = 100;

fn message_attributes(
    input: Option<&Value>,
) -> Result<Vec<(String, MessageAttributeValue)>, Failure> {
    let Some(input) = input.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Some(map) = input.as_object() else {
        return Err(Failure::bad(
            "attributes must be an object: {\"NAME\": {\"type\": \"String\", \"value\": \"...\"}}",
        ));
    };
    if map.len() > 10 {
        return Err(Failure::bad("a message carries at most 10 attributes"));
    }
    let mut out = Vec::new();
    for (name, a) in map {
        let name_ok = !name.is_empty()
            && name.len() <= 256
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
            && !name.starts_with('.')
            && !name.ends_with('.')
            && !name.contains("..")
            && !name.to_ascii_lowercase().starts_with("aws.")
            && !name.to_ascii_lowercase().starts_with("amazon.");
        if !name_ok {
            return Err(Failure::bad(format!(
                "attribute name {name:?}: up to 256 letters, digits, '_', '-' and '.', not starting with AWS. or Amazon."
            )));
        }
        let kind = a.get("type").and_then(Value::as_str).unwrap_or("String");
        let value = a
            .get("value")
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_default();
        let base = kind.split('.').next().unwrap_or_default();
        let mut v = MessageAttributeValue::builder().data_type(kind);
        v = match base {
            "String" => v.string_value(value),
            "Number" => {
                if value.trim().parse::<f64>().is_err() {
                    return Err(Failure::bad(format!(
                        "attribute {name}: {value:?} is not a number"
                    )));
                }
                v.string_value(value.trim())
            }
            "Binary" => match B64.decode(value.trim()) {
                Ok(bytes) => v.binary_value(Blob::new(bytes)),
                Err(_) => {
                    return Err(Failure::bad(format!(
                        "attribute {name}: a Binary value is sent in base64"
                    )));
                }
            },
            _ => {
                return Err(Failure::bad(format!(
                    "attribute {name}: type must be String, Number or Binary (optionally .label)"
                )));
            }
        };
        let v = v
            .build()
            .map_err(|e| Failure::bad(format!("attribute {name}: {e}")))?;
        out.push((name.clone(), v));
    }
    Ok(out)
}

/// Sends one message (see the API documentation).
pub(crate) async fn send(sqs: &Sqs, url: &str, fifo: bool, body: &Map<String, Value>) -> Outcome {
    let text = body.get("body").and_then(Value::as_str).unwrap_or_default();
    if text.is_empty() {
        return Err(Failure::bad(
            "a message needs a body (1 character at least)",
        ));
    }
    let attributes = message_attributes(body.get("attributes"))?;
    let delay = match body.get("delay_seconds") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(d) if d <= 900 => Some(d as i32),
            _ => return Err(Failure::bad("delay_seconds must be from 0 to 900")),
        },
    };
    let group = body
        .get("group_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let dedup = body
        .get("deduplication_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    if fifo {
        if group.is_none() {
            return Err(Failure::bad("a FIFO queue's message needs a group_id"));
        }
        if delay.is_some_and(|d| d > 0) {
            return Err(Failure::bad(
                "a FIFO queue takes no delay per message: set the queue's DelaySeconds instead",
            ));
        }
    } else if group.is_some() || dedup.is_some() {
        return Err(Failure::bad(
            "group_id and deduplication_id apply to FIFO queues only",
        ));
    }
    let mut req = sqs
        .client()
        .send_message()
        .queue_url(url)
        .message_body(text)
        .set_delay_seconds(delay.filter(|_| !fifo))
        .set_message_group_id(group.map(str::to_owned))
        .set_message_deduplication_id(dedup.map(str::to_owned));
    for (name, v) in attributes {
        req = req.message_attributes(name, v);
    }
    let out = req
        .send()
        .await
        .map_err(|e| errors::sqs("SendMessage", e))?;
    Ok(json!({
        "message_id": out.message_id,
        "md5_of_body": out.md5_of_message_body,
        "sequence_number": out.sequence_number,
    }))
}

fn attribute_json(v: &MessageAttributeValue) -> Value {
    let value = match (&v.string_value, &v.binary_value) {
        (Some(s), _) => Value::String(s.clone()),
        (None, Some(b)) => Value::String(B64.encode(b.as_ref())),
        _ => Value::Null,
    };
    json!({"type": v.data_type, "value": value})
}

/// Polls for messages: receives (long polls of up to 20 s) until
/// `max_count` messages or `duration_secs` have passed.
pub(crate) async fn poll(sqs: &Sqs, url: &str, body: &Map<String, Value>) -> Outcome {
    let duration = match body.get("duration_secs") {
        None | Some(Value::Null) => 20,
        Some(v) => match v.as_u64() {
            Some(d) if d <= MAX_POLL_SECS => d,
            _ => {
                return Err(Failure::bad(format!(
                    "duration_secs must be from 0 to {MAX_POLL_SECS}"
                )));
            }
        },
    };
    let max = match body.get("max_count") {
        None | Some(Value::Null) => 10,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_POLL_COUNT).contains(&n) => n,
            _ => {
                return Err(Failure::bad(format!(
                    "max_count must be from 1 to {MAX_POLL_COUNT}"
                )));
            }
        },
    };
    let visibility = sqs
        .client()
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| errors::sqs("GetQueueAttributes", e))?
        .attributes
        .and_then(|a| {
            a.get(&A::VisibilityTimeout)
                .and_then(|v| v.parse::<u64>().ok())
        });
    let end = Instant::now() + Duration::from_secs(duration);
    let mut messages = Vec::new();
    let mut receives = 0;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let wanted = (max - messages.len() as u64).min(10) as i32;
        let out = sqs
            .client()
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(wanted)
            .wait_time_seconds(left.as_secs().min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| errors::sqs("ReceiveMessage", e))?;
        receives += 1;
        for m in out.messages.unwrap_or_default() {
            let sys = m.attributes.clone().unwrap_or_default();
            let num =
                |k: MessageSystemAttributeName| sys.get(&k).and_then(|v| v.parse::<u64>().ok());
            let text = |k: MessageSystemAttributeName| sys.get(&k).cloned();
            messages.push(json!({
                "message_id": m.message_id,
                "receipt_handle": m.receipt_handle,
                "body": m.body,
                "md5_of_body": m.md5_of_body,
                "receive_count": num(MessageSystemAttributeName::ApproximateReceiveCount),
                "sent_ms": num(MessageSystemAttributeName::SentTimestamp),
                "first_received_ms": num(MessageSystemAttributeName::ApproximateFirstReceiveTimestamp),
                "group_id": text(MessageSystemAttributeName::MessageGroupId),
                "deduplication_id": text(MessageSystemAttributeName::MessageDeduplicationId),
                "sequence_number": text(MessageSystemAttributeName::SequenceNumber),
                "attributes": sys.iter().map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone()))).collect::<Map<_, _>>(),
                "message_attributes": m.message_attributes.as_ref().map(|a| {
                    a.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect::<Map<_, _>>()
                }).unwrap_or_default(),
            }));
        }
        if messages.len() as u64 >= max || Instant::now() + Duration::from_millis(500) >= end {
            break;
        }
    }
    let in_flight = match visibility {
        Some(v) => format!(
            "The {} message(s) polled are now in flight: no consumer receives them again for the queue's visibility timeout ({v} s), unless they are deleted first.",
            messages.len()
        ),
        None => "The messages polled are now in flight for the queue's visibility timeout.".into(),
    };
    Ok(json!({
        "messages": messages,
        "count": messages.len(),
        "receives": receives,
        "visibility_timeout_secs": visibility,
        "in_flight_note": in_flight,
    }))
}

/// Deletes the messages whose receipt handles are given
/// (`DeleteMessageBatch`, 10 a request).
pub(crate) async fn delete(sqs: &Sqs, url: &str, body: &Map<String, Value>) -> Outcome {
    let handles: Vec<&str> = match body.get("receipt_handles") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if handles.is_empty() || handles.len() > MAX_DELETE {
        return Err(Failure::bad(format!(
            "receipt_handles must list 1 to {MAX_DELETE} receipt handles (from a poll)"
        )));
    }
    let mut deleted = 0;
    let mut failed = Vec::new();
    for chunk in handles.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, h)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(*h)
                    .build()
                    .map_err(|e| Failure::bad(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = sqs
            .client()
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| errors::sqs("DeleteMessageBatch", e))?;
        deleted += out.successful.len();
        for f in out.failed {
            let handle = f.id.parse::<usize>().ok().and_then(|i| chunk.get(i));
            failed.push(json!({
                "receipt_handle": handle,
                "sqs_code": f.code,
                "error": f.message.unwrap_or_else(|| "not deleted".into()),
            }));
        }
    }
    Ok(json!({"deleted": deleted, "failed": failed}))
}
