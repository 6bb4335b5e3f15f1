//! Messages: what a producer sends ([`NewMessage`]), what a queue stores
//! ([`StoredMessage`]) and hands out ([`Delivery`]), their ids and receipt handles.

use std::fmt;

use base64::Engine as _;

use super::Millis;

/// The value of a message attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttributeValue {
    /// For data types `String` and `Number` (and their custom sub-types).
    String(Box<str>),
    /// For data type `Binary` (and its custom sub-types).
    Binary(Box<[u8]>),
}

/// One message attribute (or message system attribute).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageAttribute {
    /// Attribute name.
    pub name: Box<str>,
    /// `String`, `Number` or `Binary`, optionally followed by `.custom`.
    pub data_type: Box<str>,
    /// The value.
    pub value: AttributeValue,
}

impl MessageAttribute {
    /// Bytes this attribute counts towards `MaximumMessageSize`.
    pub(super) fn size(&self) -> usize {
        let value = match &self.value {
            AttributeValue::String(s) => s.len(),
            AttributeValue::Binary(b) => b.len(),
        };
        self.name.len() + self.data_type.len() + value
    }
}

/// A message to send.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewMessage {
    /// The body.
    pub body: String,
    /// User message attributes.
    pub attributes: Vec<MessageAttribute>,
    /// Message system attributes (only `AWSTraceHeader` exists).
    pub system_attributes: Vec<MessageAttribute>,
    /// Per-message delay, overriding the queue's (standard queues only).
    pub delay_seconds: Option<u32>,
    /// FIFO: message group (required on FIFO queues).
    pub group_id: Option<String>,
    /// FIFO: deduplication id.
    pub deduplication_id: Option<String>,
}

impl NewMessage {
    /// A message with only a body.
    pub fn new(body: impl Into<String>) -> Self {
        NewMessage {
            body: body.into(),
            ..Self::default()
        }
    }

    /// Sets the FIFO group and (optionally) deduplication id.
    pub fn in_group(mut self, group: &str, dedup: Option<&str>) -> Self {
        self.group_id = Some(group.to_owned());
        self.deduplication_id = dedup.map(str::to_owned);
        self
    }

    /// Bytes this message counts towards `MaximumMessageSize` and batch limits.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(MessageAttribute::size)
                .sum::<usize>()
    }
}

/// A message id, rendered as a UUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MessageId(pub(super) u128);

impl MessageId {
    /// A deterministic, well-spread id for message `seq` of queue incarnation `salt`.
    pub(super) fn derive(salt: u64, seq: u64) -> Self {
        let hi = splitmix64(salt ^ seq.rotate_left(17));
        let lo = splitmix64(hi ^ seq);
        let raw = (u128::from(hi) << 64) | u128::from(lo);
        // Mark as a version-4, RFC 4122 variant UUID so it looks like what SQS sends.
        let raw = (raw & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
        MessageId(raw)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::service::uuid_text(self.0))
    }
}

pub(super) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// What `SendMessage` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendReceipt {
    /// Id of the message (of the original one for a FIFO duplicate).
    pub message_id: MessageId,
    /// MD5 of the body.
    pub md5_of_body: [u8; 16],
    /// MD5 of the message attributes, if any.
    pub md5_of_attributes: Option<[u8; 16]>,
    /// MD5 of the message system attributes, if any.
    pub md5_of_system_attributes: Option<[u8; 16]>,
    /// FIFO sequence number.
    pub sequence_number: Option<String>,
    /// True when a FIFO deduplication id matched and nothing was enqueued.
    pub duplicate: bool,
}

/// Where a stored message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    Delayed,
    Visible,
    InFlight,
}

/// Rarely used parts of a message, boxed so plain messages stay small.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Extras {
    pub(super) attributes: Vec<MessageAttribute>,
    pub(super) attributes_md5: Option<[u8; 16]>,
    pub(super) system_attributes: Vec<MessageAttribute>,
    pub(super) system_attributes_md5: Option<[u8; 16]>,
    pub(super) group_id: Option<Box<str>>,
    pub(super) deduplication_id: Option<Box<str>>,
    /// In a dead-letter queue: the ARN of the queue the message was moved out of
    /// after `maxReceiveCount` receives (`DeadLetterQueueSourceArn`).
    pub(super) dead_letter_source: Option<Box<str>>,
}

/// A message held by a queue. Opaque outside the model; moved between queues on redrive.
#[derive(Clone, Debug)]
pub struct StoredMessage {
    pub(super) id: MessageId,
    pub(super) body: Box<str>,
    pub(super) body_md5: [u8; 16],
    pub(super) sent_at: Millis,
    /// When this queue got it (retention counts from here).
    pub(super) enqueued_at: Millis,
    pub(super) first_receive_at: Option<Millis>,
    pub(super) receive_count: u32,
    pub(super) state: State,
    /// End of the delay or of the visibility timeout, for `Delayed` and `InFlight`.
    pub(super) due: Millis,
    pub(super) extras: Option<Box<Extras>>,
    /// Fault injection: delivered again after a delete already, so it is not
    /// remembered for that a second time.
    pub(super) resurrected: bool,
}

impl StoredMessage {
    pub(super) fn group(&self) -> Option<&str> {
        self.extras.as_ref()?.group_id.as_deref()
    }
}

/// One message handed out by [`Queue::receive`](super::Queue::receive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Message id.
    pub message_id: MessageId,
    /// Handle for delete / change visibility; new on every receive.
    pub receipt_handle: String,
    /// Body.
    pub body: Box<str>,
    /// MD5 of the body.
    pub md5_of_body: [u8; 16],
    /// `SentTimestamp`.
    pub sent_at: Millis,
    /// `ApproximateFirstReceiveTimestamp`.
    pub first_receive_at: Millis,
    /// `ApproximateReceiveCount`, this receive included.
    pub receive_count: u32,
    /// Message attributes.
    pub attributes: Vec<MessageAttribute>,
    /// MD5 of all message attributes.
    pub md5_of_attributes: Option<[u8; 16]>,
    /// Message system attributes (`AWSTraceHeader`).
    pub system_attributes: Vec<MessageAttribute>,
    /// FIFO group.
    pub group_id: Option<Box<str>>,
    /// FIFO deduplication id.
    pub deduplication_id: Option<Box<str>>,
    /// FIFO sequence number.
    pub sequence_number: Option<String>,
    /// `DeadLetterQueueSourceArn`: in a dead-letter queue, the ARN of the queue the
    /// message was moved out of.
    pub dead_letter_source: Option<Box<str>>,
}

/// What [`Queue::receive`](super::Queue::receive) produced.
#[derive(Debug, Default)]
pub struct ReceiveOutcome {
    /// Messages for the caller, now in flight.
    pub deliveries: Vec<Delivery>,
    /// Messages past `maxReceiveCount`, removed from this queue: hand them to the
    /// dead-letter queue named by
    /// [`QueueAttributes::redrive_policy`](super::QueueAttributes::redrive_policy).
    pub dead_letters: Vec<StoredMessage>,
}

/// Exact message counts (SQS calls them approximate).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Ready to be received.
    pub visible: usize,
    /// Received and not yet deleted or lapsed.
    pub in_flight: usize,
    /// Waiting for their delay to end.
    pub delayed: usize,
}

/// A parsed receipt handle: which queue incarnation, which message, which receive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ReceiptHandle {
    pub(super) incarnation: u64,
    pub(super) seq: u64,
    pub(super) receive: u32,
}

impl ReceiptHandle {
    const MAGIC: [u8; 2] = *b"rh";
    const LEN: usize = 2 + 8 + 8 + 4;

    pub(super) fn encode(self) -> String {
        let mut raw = [0u8; Self::LEN];
        raw[..2].copy_from_slice(&Self::MAGIC);
        raw[2..10].copy_from_slice(&self.incarnation.to_be_bytes());
        raw[10..18].copy_from_slice(&self.seq.to_be_bytes());
        raw[18..].copy_from_slice(&self.receive.to_be_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    }

    pub(super) fn decode(text: &str) -> Option<Self> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        let raw: [u8; Self::LEN] = raw.try_into().ok()?;
        if raw[..2] != Self::MAGIC {
            return None;
        }
        Some(ReceiptHandle {
            incarnation: u64::from_be_bytes(raw[2..10].try_into().ok()?),
            seq: u64::from_be_bytes(raw[10..18].try_into().ok()?),
            receive: u32::from_be_bytes(raw[18..].try_into().ok()?),
        })
    }
}
