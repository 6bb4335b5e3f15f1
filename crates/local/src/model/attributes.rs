//! Queue attributes: validation, defaults and rendering of the settable ones.
//!
//! SQS transports every attribute as a string. Values are parsed once, when set, into
//! typed fields the model uses on the hot path; [`QueueAttributes::get`] renders them back.

use crate::error::{ErrorCode, Result, SqsError};

/// Read-only attributes computed by the queue, accepted by `GetQueueAttributes`.
pub const READ_ONLY: &[&str] = &[
    "QueueArn",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
    "CreatedTimestamp",
    "LastModifiedTimestamp",
];

/// Attributes that `CreateQueue` / `SetQueueAttributes` accept, in the order `All` lists them.
pub const SETTABLE: &[&str] = &[
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "Policy",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
];

/// Attributes that only FIFO queues have.
const FIFO_ONLY: &[&str] = &[
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
];

/// A dead-letter queue target and how many receives a message gets before it moves there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedrivePolicy {
    /// ARN of the dead-letter queue.
    pub dead_letter_target_arn: String,
    /// Receives allowed before the message is moved (1..=1000).
    pub max_receive_count: u32,
}

/// Which messages a deduplication id is compared against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeduplicationScope {
    /// All messages of the queue (the default).
    Queue,
    /// Messages of the same message group.
    MessageGroup,
}

/// The settable attributes of one queue, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueAttributes {
    /// Default delay of new messages, seconds (0..=900).
    pub delay_seconds: u32,
    /// Largest body plus attributes, bytes (1024..=1048576).
    pub maximum_message_size: u32,
    /// How long a message is kept, seconds (60..=1209600).
    pub message_retention_period: u32,
    /// Default long-poll wait, seconds (0..=20).
    pub receive_message_wait_time_seconds: u32,
    /// Default visibility timeout, seconds (0..=43200).
    pub visibility_timeout: u32,
    /// Access policy, stored and reported, not enforced.
    pub policy: Option<String>,
    /// Dead-letter queue settings.
    pub redrive_policy: Option<RedrivePolicy>,
    /// Which queues may use this one as DLQ; stored and reported, not enforced.
    pub redrive_allow_policy: Option<String>,
    /// Whether this is a FIFO queue; fixed at creation.
    pub fifo_queue: bool,
    /// FIFO: derive the deduplication id from the body's SHA-256.
    pub content_based_deduplication: bool,
    /// FIFO: scope of deduplication.
    pub deduplication_scope: DeduplicationScope,
    /// FIFO: `perQueue` or `perMessageGroupId`; reported only (no throttling here).
    pub fifo_throughput_limit_per_group: bool,
    /// KMS key id; reported only (messages are not encrypted).
    pub kms_master_key_id: Option<String>,
    /// KMS data key reuse period, seconds (60..=86400).
    pub kms_data_key_reuse_period_seconds: u32,
    /// SSE with SQS-owned keys; reported only.
    pub sqs_managed_sse_enabled: bool,
}

impl Default for QueueAttributes {
    fn default() -> Self {
        QueueAttributes {
            delay_seconds: 0,
            maximum_message_size: 1_048_576,
            message_retention_period: 345_600,
            receive_message_wait_time_seconds: 0,
            visibility_timeout: 30,
            policy: None,
            redrive_policy: None,
            redrive_allow_policy: None,
            fifo_queue: false,
            content_based_deduplication: false,
            deduplication_scope: DeduplicationScope::Queue,
            fifo_throughput_limit_per_group: false,
            kms_master_key_id: None,
            kms_data_key_reuse_period_seconds: 300,
            sqs_managed_sse_enabled: true,
        }
    }
}

fn invalid_value(name: &str) -> SqsError {
    SqsError::new(
        ErrorCode::InvalidAttributeValue,
        format!("Invalid value for the parameter {name}."),
    )
}

fn unknown_name(name: &str) -> SqsError {
    SqsError::new(
        ErrorCode::InvalidAttributeName,
        format!("Unknown Attribute {name}."),
    )
}

fn parse_range(name: &str, value: &str, min: u32, max: u32) -> Result<u32> {
    match value.trim().parse::<u32>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(invalid_value(name)),
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(invalid_value(name))
    }
}

fn parse_json_object(name: &str, value: &str) -> Result<Option<String>> {
    if value.is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<serde_json::Value>(value) {
        Ok(serde_json::Value::Object(_)) => Ok(Some(value.to_owned())),
        _ => Err(invalid_value(name)),
    }
}

fn parse_redrive_policy(value: &str) -> Result<Option<RedrivePolicy>> {
    const NAME: &str = "RedrivePolicy";
    if value.is_empty() {
        return Ok(None);
    }
    let json: serde_json::Value = serde_json::from_str(value).map_err(|_| invalid_value(NAME))?;
    let arn = json
        .get("deadLetterTargetArn")
        .and_then(|v| v.as_str())
        .filter(|arn| arn.starts_with("arn:"))
        .ok_or_else(|| invalid_value(NAME))?;
    // SQS accepts the count as a number or as a string of digits.
    let count = match json.get("maxReceiveCount") {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse::<u64>().ok(),
        _ => None,
    }
    .filter(|c| (1..=1000).contains(c))
    .and_then(|c| u32::try_from(c).ok())
    .ok_or_else(|| invalid_value(NAME))?;
    Ok(Some(RedrivePolicy {
        dead_letter_target_arn: arn.to_owned(),
        max_receive_count: count,
    }))
}

impl QueueAttributes {
    /// Attributes of a new queue called `name` from the `Attributes` of `CreateQueue`.
    ///
    /// Checks that a `.fifo` name and `FifoQueue=true` go together.
    pub fn for_new_queue<'a>(
        name: &str,
        attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self> {
        let mut attrs = QueueAttributes::default();
        let mut rest = Vec::new();
        for (key, value) in attributes {
            if key == "FifoQueue" {
                attrs.fifo_queue = parse_bool(key, value)?;
            } else {
                rest.push((key, value));
            }
        }
        if attrs.fifo_queue != name.ends_with(".fifo") {
            return Err(SqsError::invalid_parameter(if attrs.fifo_queue {
                "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length."
            } else {
                "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length"
            }));
        }
        for (key, value) in rest {
            attrs.set(key, value)?;
        }
        Ok(attrs)
    }

    /// Sets one attribute as `SetQueueAttributes` does. `FifoQueue` cannot change.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        if FIFO_ONLY.contains(&name) && !self.fifo_queue {
            return Err(unknown_name(name));
        }
        match name {
            "DelaySeconds" => self.delay_seconds = parse_range(name, value, 0, 900)?,
            "MaximumMessageSize" => {
                self.maximum_message_size = parse_range(name, value, 1024, 1_048_576)?
            }
            "MessageRetentionPeriod" => {
                self.message_retention_period = parse_range(name, value, 60, 1_209_600)?
            }
            "ReceiveMessageWaitTimeSeconds" => {
                self.receive_message_wait_time_seconds = parse_range(name, value, 0, 20)?
            }
            "VisibilityTimeout" => self.visibility_timeout = parse_range(name, value, 0, 43_200)?,
            "Policy" => self.policy = parse_json_object(name, value)?,
            "RedrivePolicy" => self.redrive_policy = parse_redrive_policy(value)?,
            "RedriveAllowPolicy" => self.redrive_allow_policy = parse_json_object(name, value)?,
            "FifoQueue" => {
                if parse_bool(name, value)? != self.fifo_queue {
                    return Err(invalid_value(name));
                }
            }
            "ContentBasedDeduplication" => {
                self.content_based_deduplication = parse_bool(name, value)?
            }
            "DeduplicationScope" => {
                self.deduplication_scope = match value {
                    "queue" => DeduplicationScope::Queue,
                    "messageGroup" => DeduplicationScope::MessageGroup,
                    _ => return Err(invalid_value(name)),
                }
            }
            "FifoThroughputLimit" => {
                self.fifo_throughput_limit_per_group = match value {
                    "perQueue" => false,
                    "perMessageGroupId" => true,
                    _ => return Err(invalid_value(name)),
                }
            }
            "KmsMasterKeyId" => {
                self.kms_master_key_id = (!value.is_empty()).then(|| value.to_owned());
                if self.kms_master_key_id.is_some() {
                    // SSE-KMS and SSE-SQS exclude each other.
                    self.sqs_managed_sse_enabled = false;
                }
            }
            "KmsDataKeyReusePeriodSeconds" => {
                self.kms_data_key_reuse_period_seconds = parse_range(name, value, 60, 86_400)?
            }
            "SqsManagedSseEnabled" => {
                self.sqs_managed_sse_enabled = parse_bool(name, value)?;
                if self.sqs_managed_sse_enabled {
                    self.kms_master_key_id = None;
                }
            }
            _ => return Err(unknown_name(name)),
        }
        Ok(())
    }

    /// The value of a settable attribute as SQS reports it; `None` when unset or not
    /// applicable to this kind of queue.
    pub fn get(&self, name: &str) -> Option<String> {
        if FIFO_ONLY.contains(&name) && !self.fifo_queue {
            return None;
        }
        let bool_str = |b: bool| if b { "true" } else { "false" }.to_owned();
        Some(match name {
            "DelaySeconds" => self.delay_seconds.to_string(),
            "MaximumMessageSize" => self.maximum_message_size.to_string(),
            "MessageRetentionPeriod" => self.message_retention_period.to_string(),
            "ReceiveMessageWaitTimeSeconds" => self.receive_message_wait_time_seconds.to_string(),
            "VisibilityTimeout" => self.visibility_timeout.to_string(),
            "Policy" => self.policy.clone()?,
            "RedrivePolicy" => {
                let policy = self.redrive_policy.as_ref()?;
                serde_json::json!({
                    "deadLetterTargetArn": policy.dead_letter_target_arn,
                    "maxReceiveCount": policy.max_receive_count,
                })
                .to_string()
            }
            "RedriveAllowPolicy" => self.redrive_allow_policy.clone()?,
            "FifoQueue" => bool_str(self.fifo_queue),
            "ContentBasedDeduplication" => bool_str(self.content_based_deduplication),
            "DeduplicationScope" => match self.deduplication_scope {
                DeduplicationScope::Queue => "queue".to_owned(),
                DeduplicationScope::MessageGroup => "messageGroup".to_owned(),
            },
            "FifoThroughputLimit" => if self.fifo_throughput_limit_per_group {
                "perMessageGroupId"
            } else {
                "perQueue"
            }
            .to_owned(),
            "KmsMasterKeyId" => self.kms_master_key_id.clone()?,
            "KmsDataKeyReusePeriodSeconds" => {
                self.kms_master_key_id.as_ref()?;
                self.kms_data_key_reuse_period_seconds.to_string()
            }
            "SqsManagedSseEnabled" => bool_str(self.sqs_managed_sse_enabled),
            _ => return None,
        })
    }

    /// Whether `name` = `value` already holds, for idempotent `CreateQueue`.
    pub fn matches(&self, name: &str, value: &str) -> bool {
        let mut probe = self.clone();
        match probe.set(name, value) {
            Ok(()) => probe == *self,
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_name_and_attribute_go_together() {
        assert!(QueueAttributes::for_new_queue("a.fifo", [("FifoQueue", "true")]).is_ok());
        assert!(QueueAttributes::for_new_queue("a", [("FifoQueue", "true")]).is_err());
        assert!(QueueAttributes::for_new_queue("a.fifo", []).is_err());
        assert!(QueueAttributes::for_new_queue("a", [("FifoQueue", "false")]).is_ok());
    }

    #[test]
    fn every_ranged_attribute_takes_its_bounds_and_nothing_beyond() {
        for (name, min, max) in [
            ("DelaySeconds", 0, 900),
            ("MaximumMessageSize", 1024, 1_048_576),
            ("MessageRetentionPeriod", 60, 1_209_600),
            ("ReceiveMessageWaitTimeSeconds", 0, 20),
            ("VisibilityTimeout", 0, 43_200),
            ("KmsDataKeyReusePeriodSeconds", 60, 86_400),
        ] {
            let mut a = QueueAttributes::default();
            a.set(name, &min.to_string()).unwrap();
            a.set(name, &max.to_string()).unwrap();
            let mut beyond = vec![(max + 1).to_string(), "x".to_owned(), "-1".to_owned()];
            if min > 0 {
                beyond.push((min - 1).to_string());
            }
            for value in beyond {
                assert_eq!(
                    a.set(name, &value).unwrap_err().code,
                    ErrorCode::InvalidAttributeValue,
                    "{name}={value}"
                );
            }
            assert_eq!(
                a.get(name).as_deref().unwrap_or(&max.to_string()),
                max.to_string()
            );
        }
    }

    #[test]
    fn ranges_and_names_are_checked() {
        let mut a = QueueAttributes::default();
        assert_eq!(
            a.set("VisibilityTimeout", "43201").unwrap_err().code,
            ErrorCode::InvalidAttributeValue
        );
        assert_eq!(
            a.set("Bogus", "1").unwrap_err().code,
            ErrorCode::InvalidAttributeName
        );
        assert_eq!(
            a.set("ContentBasedDeduplication", "true").unwrap_err().code,
            ErrorCode::InvalidAttributeName
        );
        a.set(
            "RedrivePolicy",
            r#"{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:0:d","maxReceiveCount":"3"}"#,
        )
        .unwrap();
        assert_eq!(a.redrive_policy.as_ref().unwrap().max_receive_count, 3);
        assert!(
            a.get("RedrivePolicy")
                .unwrap()
                .contains("\"maxReceiveCount\":3")
        );
        assert!(a.matches("VisibilityTimeout", "30"));
        assert!(!a.matches("VisibilityTimeout", "31"));
    }
}
