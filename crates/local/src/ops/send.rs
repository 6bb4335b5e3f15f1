//! SendMessage and SendMessageBatch.

use std::collections::HashMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{BatchFailure, check_batch_ids, in_range, required};
use crate::chaos::Counted;
use crate::error::{ErrorCode, Result, SqsError};
use crate::model::Queue;
use crate::model::{AttributeValue, MessageAttribute, NewMessage, SendReceipt, hex};
use crate::service::{RequestContext, Service, now};

/// Most bytes (bodies plus attributes) in one `SendMessageBatch`.
const MAX_BATCH_BYTES: usize = 1_048_576;

/// A message attribute value as the wire carries it.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireAttributeValue {
    data_type: Option<String>,
    string_value: Option<String>,
    /// Base64, as AWS JSON encodes blobs.
    binary_value: Option<String>,
    #[serde(default)]
    string_list_values: Vec<String>,
    #[serde(default)]
    binary_list_values: Vec<String>,
}

fn convert_attributes(wire: HashMap<String, WireAttributeValue>) -> Result<Vec<MessageAttribute>> {
    let mut attributes = Vec::with_capacity(wire.len());
    for (name, value) in wire {
        let invalid = |what: &str| {
            SqsError::invalid_parameter(format!("The message attribute '{name}' {what}."))
        };
        if !value.string_list_values.is_empty() || !value.binary_list_values.is_empty() {
            return Err(invalid("uses list values, which SQS does not support yet"));
        }
        let data_type = value
            .data_type
            .filter(|t| !t.is_empty())
            .ok_or_else(|| invalid("must contain non-empty message attribute type"))?;
        let value = if data_type.starts_with("Binary") {
            let encoded = value.binary_value.ok_or_else(|| {
                invalid("must contain a non-empty value of message attribute type Binary")
            })?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| invalid("has a BinaryValue that is not valid base64"))?;
            if bytes.is_empty() {
                return Err(invalid("must contain a non-empty value"));
            }
            AttributeValue::Binary(bytes.into_boxed_slice())
        } else {
            let text = value
                .string_value
                .filter(|s| !s.is_empty())
                .ok_or_else(|| invalid("must contain a non-empty message attribute value"))?;
            AttributeValue::String(text.into_boxed_str())
        };
        attributes.push(MessageAttribute {
            name: name.into_boxed_str(),
            data_type: data_type.into_boxed_str(),
            value,
        });
    }
    Ok(attributes)
}

/// The fields a message has in both `SendMessage` and a batch entry.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct WireMessage {
    message_body: Option<String>,
    delay_seconds: Option<i64>,
    #[serde(default)]
    message_attributes: HashMap<String, WireAttributeValue>,
    #[serde(default)]
    message_system_attributes: HashMap<String, WireAttributeValue>,
    message_deduplication_id: Option<String>,
    message_group_id: Option<String>,
}

impl WireMessage {
    fn into_model(self) -> Result<NewMessage> {
        let mut message = NewMessage::new(required(self.message_body, "MessageBody")?);
        message.delay_seconds = self
            .delay_seconds
            .map(|d| in_range(d, "DelaySeconds", 0..=900))
            .transpose()?;
        message.attributes = convert_attributes(self.message_attributes)?;
        message.system_attributes = convert_attributes(self.message_system_attributes)?;
        message.group_id = self.message_group_id;
        message.deduplication_id = self.message_deduplication_id;
        Ok(message)
    }
}

/// `SendMessage` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessage {
    pub(crate) queue_url: Option<String>,
    #[serde(flatten)]
    message: WireMessage,
}

#[derive(Serialize)]
pub(crate) struct SendOutput {
    #[serde(rename = "MD5OfMessageBody")]
    md5_of_message_body: String,
    #[serde(
        rename = "MD5OfMessageAttributes",
        skip_serializing_if = "Option::is_none"
    )]
    md5_of_message_attributes: Option<String>,
    #[serde(
        rename = "MD5OfMessageSystemAttributes",
        skip_serializing_if = "Option::is_none"
    )]
    md5_of_message_system_attributes: Option<String>,
    #[serde(rename = "MessageId")]
    message_id: String,
    #[serde(rename = "SequenceNumber", skip_serializing_if = "Option::is_none")]
    sequence_number: Option<String>,
}

impl From<SendReceipt> for SendOutput {
    fn from(receipt: SendReceipt) -> Self {
        SendOutput {
            md5_of_message_body: hex(&receipt.md5_of_body),
            md5_of_message_attributes: receipt.md5_of_attributes.map(|d| hex(&d)),
            md5_of_message_system_attributes: receipt.md5_of_system_attributes.map(|d| hex(&d)),
            message_id: receipt.message_id.to_string(),
            sequence_number: receipt.sequence_number,
        }
    }
}

impl SendMessage {
    pub(crate) fn apply(self, service: &Service, ctx: &RequestContext<'_>) -> Result<SendOutput> {
        let slot = service.resolve_url(&required(self.queue_url, "QueueUrl")?)?;
        let message = self.message.into_model()?;
        let receipt = {
            let mut queue = slot.lock();
            let now = now();
            let receipt = queue.send(message, now)?;
            if !receipt.duplicate {
                maybe_late(&mut queue, ctx, now);
            }
            receipt
        };
        if !receipt.duplicate {
            slot.wakeup.notify_waiters();
        }
        Ok(receipt.into())
    }
}

/// One entry of `SendMessageBatch`.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessageBatchEntry {
    id: Option<String>,
    #[serde(flatten)]
    message: WireMessage,
}

/// `SendMessageBatch` input.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessageBatch {
    queue_url: Option<String>,
    entries: Option<Vec<SendMessageBatchEntry>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SendBatchSuccess {
    id: String,
    #[serde(flatten)]
    output: SendOutput,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct SendBatchOutput {
    successful: Vec<SendBatchSuccess>,
    failed: Vec<BatchFailure>,
}

impl SendMessageBatch {
    pub(crate) fn apply(
        self,
        service: &Service,
        ctx: &RequestContext<'_>,
    ) -> Result<SendBatchOutput> {
        let slot = service.resolve_url(&required(self.queue_url, "QueueUrl")?)?;
        let entries = self.entries.unwrap_or_default();
        let mut ids = Vec::with_capacity(entries.len());
        for entry in &entries {
            ids.push(required(entry.id.as_deref(), "Id")?);
        }
        check_batch_ids(ids.iter().copied(), "SendMessageBatchRequestEntry")?;
        let mut prepared = Vec::with_capacity(entries.len());
        let mut total = 0usize;
        for entry in entries {
            let id = entry.id.unwrap_or_default();
            let message = entry.message.into_model();
            if let Ok(message) = &message {
                total += message.size();
            }
            prepared.push((id, message));
        }
        if total > MAX_BATCH_BYTES {
            return Err(SqsError::new(
                ErrorCode::BatchRequestTooLong,
                format!(
                    "Batch requests cannot be longer than {MAX_BATCH_BYTES} bytes. You have sent {total} bytes."
                ),
            ));
        }
        let mut output = SendBatchOutput {
            successful: Vec::new(),
            failed: Vec::new(),
        };
        let mut enqueued = false;
        {
            let mut queue = slot.lock();
            let now = now();
            for (id, message) in prepared {
                match message.and_then(|m| queue.send(m, now)) {
                    Ok(receipt) => {
                        if !receipt.duplicate {
                            maybe_late(&mut queue, ctx, now);
                        }
                        enqueued |= !receipt.duplicate;
                        output.successful.push(SendBatchSuccess {
                            id,
                            output: receipt.into(),
                        });
                    }
                    Err(error) => output.failed.push(BatchFailure::new(&id, error)),
                }
            }
        }
        if enqueued {
            slot.wakeup.notify_waiters();
        }
        Ok(output)
    }
}

/// Fault injection: the message just sent may become visible only later.
fn maybe_late(queue: &mut Queue, ctx: &RequestContext<'_>, now: crate::model::Millis) {
    if let Some((chaos, decision)) = ctx.chaos
        && let Some(ms) = chaos.late(&decision)
        && queue.hold_back_last(ms, now)
    {
        chaos.count(Counted::Late);
    }
}
